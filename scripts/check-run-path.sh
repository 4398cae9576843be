#!/usr/bin/env bash
# Proves that the run path (scripts/run.sh) needs none of the test-only
# packages: it builds notify-gateway and notifyctl and sends a first
# notification on a machine where those packages can't be seen.
#
# The test-only packages are hidden by scripts/without-test-packages.sh (a
# private mount namespace with overlays over /usr, /etc and /opt from which
# their files are removed): CMake, the compiler, the linker and the dynamic
# loader all see a machine without them, so a find_package(GTest), an
# #include <gtest/gtest.h> or a link to a test-only library in the run path
# fails here even where the packages are installed.
#
# In the namespace: scripts/build.sh (configure and build as run.sh does, into
# build/), then the gateway is started on free loopback ports, and with only
# bash and notifyctl: the health check, GET /, a WebSocket connection as
# alice that receives the notification notifyctl sends, presence, disconnect,
# and SIGTERM ending the gateway with exit code 0.
#
# Needs root (unshare, mount). Extra arguments go to scripts/build.sh.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."

if [[ "${NOTIFY_RUN_PATH_INSIDE:-}" != 1 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "check-run-path: needs root to hide packages in a mount namespace" \
      "(scripts/test.sh: NOTIFY_TEST_SKIP_RUN_PATH=1 skips this stage)" >&2
    exit 1
  fi
  exec scripts/without-test-packages.sh env NOTIFY_RUN_PATH_INSIDE=1 "$self" "$@"
fi

# ---- without the test-only packages
work=$(mktemp -d /tmp/notify-run-path.XXXXXX)
trap 'rm -rf "$work"' EXIT
scripts/build.sh "$@"

fail() {
  echo "check-run-path: FAILED: $*" >&2
  [[ -f $work/gateway.log ]] && sed 's/^/  gateway: /' "$work/gateway.log" >&2
  exit 1
}
trap 'fail "unexpected error at line $LINENO"' ERR

build/notify-gateway --bind 127.0.0.1 --ws-port 0 --grpc-port 0 --metrics-port 0 --log-format json \
  --insecure-dev --close-timeout 0.2 >"$work/gateway.log" 2>&1 &
gateway=$!
trap 'kill -KILL "$gateway" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  listening=$(grep -m1 '"msg":"listening"' "$work/gateway.log" || true)
  [[ -n $listening ]] && break
  kill -0 "$gateway" 2>/dev/null || fail "the gateway exited at start"
  sleep 0.1
done
[[ -n $listening ]] || fail "no \"listening\" log line within 10 s"
ws_port=$(sed -E 's/.*"ws_port":([0-9]+).*/\1/' <<<"$listening")
grpc_port=$(sed -E 's/.*"grpc_port":([0-9]+).*/\1/' <<<"$listening")
ctl() { build/notifyctl --server "127.0.0.1:$grpc_port" "$@"; }
expect() {  # expect WHAT ACTUAL EXPECTED-GLOB
  # shellcheck disable=SC2053
  [[ $2 == $3 ]] || fail "$1: got '$2', expected '$3'"
  echo "check-run-path: ok: $1: $2"
}

expect "notifyctl health" "$(ctl health)" '{"status":"SERVING"}'

exec 3<>"/dev/tcp/127.0.0.1/$ws_port"
printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
page=$(timeout 5 cat <&3 | tr -d '\0' || true)
exec 3<&-
expect "GET / (status line)" "${page%%$'\r'*}" 'HTTP/1.1 200 OK'
expect "GET / (the page)" "$(grep -c 'notify-gateway' <<<"$page")" '[1-9]*'

# A WebSocket client in bash: the upgrade by hand, then every byte the
# server sends until it closes the connection.
exec 4<>"/dev/tcp/127.0.0.1/$ws_port"
printf 'GET /ws?user=alice HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n' \
  "dGhlIHNhbXBsZSBub25jZQ==" >&4
for _ in $(seq 50); do
  presence=$(ctl presence --user alice || true)
  [[ $presence == '{"connections":{"alice":1}}' ]] && break
  sleep 0.1
done
expect "notifyctl presence" "$presence" '{"connections":{"alice":1}}'
expect "notifyctl notify" "$(ctl notify --user alice --event like --data '{"post":42}')" \
  '{"id":"*","deliveredConnections":1,"offlineUserIds":[]}'
expect "notifyctl disconnect" "$(ctl disconnect --user alice --reason bye)" '{"closedConnections":1}'
received=$(timeout 5 cat <&4 | tr -d '\0' || true)
exec 4<&-
expect "WebSocket upgrade" "${received%%$'\r'*}" 'HTTP/1.1 101 Switching Protocols'
expect "WebSocket notification" "$(grep -o '"event":"like"[^}]*}' <<<"$received")" '"event":"like","data":{"post":42}'

kill -TERM "$gateway"
status=0
wait "$gateway" || status=$?
expect "exit status after SIGTERM" "$status" 0
trap - EXIT
rm -rf "$work"
echo "check-run-path: the run path builds and works without the test-only packages"
