#!/usr/bin/env bash
# What the replicas' shared state costs Redis: used_memory (INFO memory) per
# online user and per topic, for notify-gateway (--redis-url) and, per user,
# for nchan with its Redis storage.
#
#   bench/redis-memory.sh [--users 10000] [--out DIR]
#
# Each measurement starts a fresh redis-server and one server, reads Redis's
# used_memory, connects --users WebSocket clients (one user each; with
# topics, each also subscribes to a topic of its own), waits until Redis holds
# a channel subscription for every one of them, and reads used_memory again.
#   gateway, users:         a channel notify:user:<id> + a presence field each
#   gateway, users+topics:  the same + a channel notify:topic:<t> and its count
#   nchan, users:           nchan's channels u_<user> (and "all") in Redis
# Per topic = (users+topics - users) / topics. Prints one markdown table and
# writes $OUT/redis-memory.json. Needs build-bench/ (bench/run.sh) and
# redis-server, nginx + nchan (bench/peers/install-peers.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${BUILD_DIR:-$root/build-bench}
users=10000
out=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --users) users=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
out=${out:-$root/bench/results/redis-memory-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
loadgen=$build/bench/notify-loadgen
for bin in "$build/notify-gateway" "$loadgen"; do
  [[ -x $bin ]] || { echo "missing $bin: build with bench/run.sh first (or set BUILD_DIR)" >&2; exit 1; }
done
ulimit -n 20000
ws_port=28080
grpc_port=28051
metrics_port=28100
redis_port=28379
source bench/lib.sh
trap stop_pids EXIT
redis() { redis-cli -p $redis_port "$@" | tr -d '\r'; }
used_memory() { redis info memory | awk -F: '/^used_memory:/ {print $2}'; }

# measure <system> <topics> <channel pattern> <channels wanted>: sets m_before
# and m_with, Redis's used_memory before and with the clients.
measure() {
  local system=$1 topics=$2 pattern=$3 want=$4
  ensure_free $ws_port $grpc_port $metrics_port $redis_port
  redis-server --bind 127.0.0.1 --port $redis_port --save "" --appendonly no >>"$out/redis.log" 2>&1 &
  pids+=($!)
  wait_port $redis_port "${pids[-1]}" "$out/redis.log"
  case $system in
    gateway)
      "$build/notify-gateway" --insecure-dev --bind 127.0.0.1 --ws-port $ws_port --grpc-port $grpc_port \
        --metrics-port $metrics_port --max-connections-per-ip 0 --log-level warn \
        --redis-url "redis://127.0.0.1:$redis_port" >>"$out/gateway.log" 2>&1 &
      ;;
    nchan) NCHAN_REDIS_URL="redis://127.0.0.1:$redis_port" bench/peers/nchan/run.sh $ws_port >>"$out/nchan.log" 2>&1 & ;;
  esac
  pids+=($!)
  wait_port $ws_port "${pids[-1]}" "$out/$system.log"
  sleep 1
  m_before=$(used_memory)
  "$loadgen" --label "$system" --url "ws://127.0.0.1:$ws_port/ws" -c "$users" --ramp 5000 --sources 16 \
    --topics "$topics" --mode receive --step-seconds 60 --warmup 0 -q >"$out/loadgen-$system-$topics.out" 2>&1 &
  local lg=$!
  local n=0
  for _ in $(seq 600); do
    n=$(redis pubsub channels "$pattern" | wc -l)
    ((n >= want)) && break
    sleep 0.1
  done
  ((n >= want)) || { echo "$system: only $n of $want channels $pattern in Redis" >&2; exit 1; }
  sleep 2  # presence and counts written, nothing in flight
  m_with=$(used_memory)
  kill "$lg" 2>/dev/null || true
  wait "$lg" 2>/dev/null || true
  stop_pids
  sleep 0.5
}

measure gateway 0 'notify:user:*' "$users"
g0=$m_before g1=$m_with
measure gateway "$users" 'notify:topic:*' "$users"
t0=$m_before t1=$m_with
measure nchan 0 '*u_*' "$users"
n0=$m_before n1=$m_with

/usr/bin/env python3 - "$out" "$users" "$g0" "$g1" "$t0" "$t1" "$n0" "$n1" <<'PY'
import json, sys
out, users = sys.argv[1], int(sys.argv[2])
g0, g1, t0, t1, n0, n1 = (int(v) for v in sys.argv[3:9])
per_user = (g1 - g0) / users
per_topic = ((t1 - t0) - (g1 - g0)) / users
nchan_user = (n1 - n0) / users
result = {"users": users, "gateway_bytes_per_user": round(per_user), "gateway_bytes_per_topic": round(per_topic),
          "nchan_bytes_per_user": round(nchan_user),
          "raw": {"gateway": [g0, g1], "gateway_topics": [t0, t1], "nchan": [n0, n1]}}
json.dump(result, open(f"{out}/redis-memory.json", "w"), indent=1)
print(f"| Redis used_memory, {users:,} online | notify-gateway | nchan |")
print("|---|---|---|")
print(f"| bytes per online user | {per_user:,.0f} | {nchan_user:,.0f} |")
print(f"| bytes per topic (one subscriber each) | {per_topic:,.0f} | n/a |")
PY
echo "results: $out" >&2
