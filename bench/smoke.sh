#!/usr/bin/env bash
# CI smoke scenario for the load generator (no speed is asserted): starts the
# real notify-gateway on free loopback ports, connects a few hundred clients,
# broadcasts and notifies (calls and NotifyStream) for a few seconds, and fails unless every connection
# opened, nothing was lost or duplicated, and the report carries its figures.
# Then --mode receive against frame-blaster: frames counted, none duplicated.
#   bench/smoke.sh <notify-gateway binary> <notify-loadgen binary> <frame-blaster binary>
set -euo pipefail
gateway=${1:?usage: smoke.sh GATEWAY LOADGEN BLASTER}
loadgen=${2:?usage: smoke.sh GATEWAY LOADGEN BLASTER}
blaster=${3:?usage: smoke.sh GATEWAY LOADGEN BLASTER}
work=$(mktemp -d)
pid=
blaster_pid=
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  # frame-blaster has no SIGTERM handler: its status is 143.
  [[ -n "$blaster_pid" ]] && kill "$blaster_pid" 2>/dev/null && { wait "$blaster_pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

"$gateway" --insecure-dev --bind 127.0.0.1 --ws-port 0 --grpc-port 0 --metrics-port 0 --threads 2 \
  --max-connections-per-ip 0 --log-level info >"$work/gateway.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  grep -q 'listening' "$work/gateway.log" && break
  sleep 0.1
done
line=$(grep -m1 'listening' "$work/gateway.log") || { cat "$work/gateway.log"; exit 1; }
ws_port=$(sed -E 's/.*ws_port=([0-9]+).*/\1/' <<<"$line")
grpc_port=$(sed -E 's/.*grpc_port=([0-9]+).*/\1/' <<<"$line")

run() {
  "$loadgen" --url "ws://127.0.0.1:$ws_port/ws" --grpc "127.0.0.1:$grpc_port" --server-pid "$pid" \
    --quiet --check --hold-seconds 0.5 --step-seconds 2 "$@" | tee -a "$work/report.txt"
}
run --label smoke-broadcast -c 300 --sources 4 --ramp 2000 --mode broadcast --rates 20,50 --payload-bytes 64
run --label smoke-notify -c 300 --sources 4 --mode notify --rates 200 --batch 5 --payload-bytes 1024
run --label smoke-notify-stream -c 300 --sources 4 --mode notify --publish-via grpc-stream --rates 500 --batch 1 \
  --payload-bytes 64

# Each report's last line is its JSON; check the figures are there and sane.
grep '^{' "$work/report.txt" | python3 -c '
import json, sys
reports = [json.loads(line) for line in sys.stdin]
assert len(reports) == 3, reports
for r in reports:
    c = r["connections"]
    assert c["open"] == 300 and c["failed"] == 0, c
    assert c["handshakes_per_second"] > 0 and c["handshake_ms"]["count"] == 300, c
    assert r["server"]["rss_connected_bytes"] > 0 and r["server"]["processes"] == 1, r["server"]
    assert r["steps"], r
    for s in r["steps"]:
        assert s["published"] > 0 and s["expected"] > 0, s
        assert s["delivered"] == s["expected"] and s["lost"] == 0 and s["duplicates"] == 0, s
        assert s["latency_ms"]["count"] == s["delivered"] and s["latency_ms"]["max"] > 0, s
        assert s["deliveries_per_second"] > 0 and s["server_cpu_seconds"] >= 0, s
    assert r["healthy"], r
print("smoke: %d reports, figures present, nothing lost" % len(reports))
'

# The load generator's own receive path, against a server that only sends.
"$blaster" 0 64 64 >"$work/blaster.out" 2>&1 &
blaster_pid=$!
for _ in $(seq 100); do
  grep -q 'listening' "$work/blaster.out" && break
  sleep 0.1
done
blaster_port=$(sed -nE 's/listening port=([0-9]+)/\1/p' "$work/blaster.out")
[[ -n "$blaster_port" ]] || { cat "$work/blaster.out"; exit 1; }
"$loadgen" --url "ws://127.0.0.1:$blaster_port/ws" --mode receive -c 200 --sources 4 --ramp 0 --quiet \
  --hold-seconds 0.2 --step-seconds 1 --warmup 0 | tail -1 | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
rx = r["receive"]
assert r["connections"]["open"] == 200 and r["connections"]["failed"] == 0, r["connections"]
assert rx["frames"] > 10000 and rx["duplicates"] == 0 and rx["reordered"] == 0, rx
assert rx["frames_per_second"] > 0 and rx["loadgen_cpu_seconds"] > 0, rx
print("smoke: receive mode counted %d frames, no duplicate" % rx["frames"])
'
