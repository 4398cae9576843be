#!/usr/bin/env bash
# Starts the epoll-ceiling peer (single-threaded epoll server, C++20) in the
# foreground on 127.0.0.1:<port>; `exec` makes the PID seen by
# `run.sh & echo $!` the server itself.
#   bench/peers/epoll-ceiling/run.sh <port>
# The binary comes from the CMake target `epoll-ceiling` (linked with
# OpenSSL::Crypto for SHA-1), by default in <repo>/build-bench/bench/;
# EPOLL_CEILING_BIN=/path overrides that. If that binary does not exist, the
# script compiles epoll_ceiling.cpp with g++ -O2 into /tmp instead (again
# only when the source is newer than the copy there).
set -euo pipefail
if [[ $# -ne 1 ]]; then
  echo "usage: $0 <port>" >&2
  exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
bin=${EPOLL_CEILING_BIN:-$repo/build-bench/bench/epoll-ceiling}
if [[ ! -x $bin ]]; then
  if [[ -n ${EPOLL_CEILING_BIN:-} ]]; then
    echo "epoll-ceiling: EPOLL_CEILING_BIN=$bin is not an executable" >&2
    exit 1
  fi
  bin=/tmp/epoll-ceiling-$(id -u)
  if [[ ! -x $bin || $here/epoll_ceiling.cpp -nt $bin ]]; then
    echo "epoll-ceiling: $repo/build-bench/bench/epoll-ceiling not built; compiling $bin" >&2
    tmp=$(mktemp "$bin.XXXXXX")
    g++ -O2 -std=c++20 "$here/epoll_ceiling.cpp" -lcrypto -o "$tmp"
    mv -f "$tmp" "$bin"
  fi
fi
# 19,000+ sockets: raise the soft limit to 20000 (the hard limit here).
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
exec "$bin" "$1"
