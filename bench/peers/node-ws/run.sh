#!/usr/bin/env bash
# Starts the node-ws peer (Node.js http + ws, one process) in the foreground
# on 127.0.0.1:<port>. `exec` makes the PID seen by `run.sh & echo $!` the
# node process itself. Needs `npm ci` here first (bench/peers/install-peers.sh).
#   bench/peers/node-ws/run.sh <port>
set -euo pipefail
if [[ $# -ne 1 ]]; then
  echo "usage: $0 <port>" >&2
  exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ ! -d $here/node_modules/ws ]]; then
  echo "node-ws: $here/node_modules is missing; run bench/peers/install-peers.sh" >&2
  exit 1
fi
# 19,000+ sockets: raise the soft limit to 20000 (the hard limit here).
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
cd "$here"
exec node server.js "$1"
