#!/usr/bin/env bash
# The scale run: many WebSocket connections across several notify-gateway
# replicas sharing one Redis, then broadcasts to all of them.
#
#   bench/scale.sh [--replicas 6] [--connections 100000] [--broadcasts 10] [--rate 1]
#                  [--ramp 1500] [--out DIR]
#
# One load generator process per replica (a process may hold 20,000 open
# files here), each opening connections/replicas WebSocket connections to its
# own replica as distinct users. All but the last only receive (--mode
# receive); the last also publishes: --broadcasts Broadcast calls to everyone
# at --rate per second through the first replica's gRPC API. Every replica
# receives each broadcast once from Redis and delivers it to its connections.
#
# Printed (and written to $OUT/scale.json): connections open, connect rate
# (all connections / time from the first connect until the replicas' gauges
# add up to all of them), resident memory per connection of each replica,
# deliveries expected and received (lost, duplicated), broadcast latency p50
# and p99 over every delivery (the load generators' histograms merged), and
# the CPU seconds of redis-server and of everything (replicas + Redis) during
# the broadcasts.
# Needs a Release build in $BUILD_DIR (default build-bench/, bench/run.sh makes
# it) and redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${BUILD_DIR:-$root/build-bench}
replicas=6
connections=100000
broadcasts=10
rate=1
ramp=1500
out=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --replicas) replicas=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --broadcasts) broadcasts=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --ramp) ramp=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
out=${out:-$root/bench/results/scale-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
loadgen=$build/bench/notify-loadgen
for bin in "$build/notify-gateway" "$loadgen"; do
  [[ -x $bin ]] || { echo "missing $bin: build with bench/run.sh first (or set BUILD_DIR)" >&2; exit 1; }
done
command -v redis-server >/dev/null || { echo "redis-server is missing (bench/peers/install-peers.sh)" >&2; exit 1; }
ulimit -n 20000
# connections/replicas each, the first connections%replicas one more.
per=$(((connections + replicas - 1) / replicas))
((per <= 19000)) || { echo "$per connections per replica: above what one process may hold here (19,000)" >&2; exit 2; }
share=()
for ((i = 0; i < replicas; i++)); do share+=($((connections / replicas + (i < connections % replicas ? 1 : 0)))); done

ws_port=28080
grpc_port=28051
metrics_port=28100
redis_port=28379
# The replicas share the cores as pods share a node (see bench/compare.sh).
threads=$(($(nproc) / replicas > 0 ? $(nproc) / replicas : 1))
source bench/lib.sh
trap stop_pids EXIT
ensure_free $redis_port
for ((i = 0; i < replicas; i++)); do ensure_free $((ws_port + i)) $((grpc_port + i)) $((metrics_port + i)); done

redis-server --bind 127.0.0.1 --port $redis_port --save "" --appendonly no >"$out/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
wait_port $redis_port "$redis_pid" "$out/redis.log"
gateway_pids=()
for ((i = 0; i < replicas; i++)); do
  "$build/notify-gateway" --insecure-dev --bind 127.0.0.1 --ws-port $((ws_port + i)) --grpc-port $((grpc_port + i)) \
    --metrics-port $((metrics_port + i)) --max-connections-per-ip 0 --max-connections 20000 --log-level warn \
    --threads "$threads" \
    --redis-url "redis://127.0.0.1:$redis_port" >"$out/gateway-$i.log" 2>&1 &
  pids+=($!)
  gateway_pids+=($!)
done
for ((i = 0; i < replicas; i++)); do
  wait_port $((ws_port + i)) "${gateway_pids[i]}" "$out/gateway-$i.log"
  wait_port $((grpc_port + i)) "${gateway_pids[i]}" "$out/gateway-$i.log"
done

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
open_total() {
  local sum=0 i v
  for ((i = 0; i < replicas; i++)); do
    v=$(curl -s "http://127.0.0.1:$((metrics_port + i))/metrics" | awk '/^notify_connections_open / {print $2}')
    sum=$((sum + ${v%.*}))
  done
  echo "$sum"
}
redis_memory() { redis-cli -p $redis_port info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r'; }

baseline_rss=()
for pid in "${gateway_pids[@]}"; do baseline_rss+=("$(rss_kib "$pid")"); done
redis_before=$(redis_memory)

# All load generators start together at the same ramp. The receivers (replicas
# 0 .. n-2) listen long enough to cover the connects, the broadcasts and their
# drain; the publisher (replica n-1) waits 5 s after its own last handshake
# before it publishes, and the check below says whether every connection was
# open by then.
receive_seconds=$((connections / ramp / replicas + broadcasts / rate + 40))
start=$(date +%s.%N)
loadgen_pids=()
for ((i = 0; i < replicas - 1; i++)); do
  "$loadgen" --label "receiver-$i" --url "ws://127.0.0.1:$((ws_port + i))/ws" --user-prefix "r$i-" -c "${share[i]}" \
    --ramp "$ramp" --sources 16 --mode receive --step-seconds "$receive_seconds" --warmup 0 --connect-timeout 300 -q \
    >"$out/receiver-$i.out" 2>"$out/receiver-$i.err" &
  loadgen_pids+=($!)
done
last=$((replicas - 1))
"$loadgen" --label "publisher" --url "ws://127.0.0.1:$((ws_port + last))/ws" --user-prefix "p-" -c "${share[last]}" \
  --ramp "$ramp" --sources 16 --mode broadcast --publish-via grpc --grpc "127.0.0.1:$grpc_port" --rates "$rate" \
  --step-seconds "$(((broadcasts + rate - 1) / rate))" --warmup 0 --hold-seconds 5 --drain-seconds 15 -q \
  --server-pid "$(IFS=,; echo "${pids[*]}")" >"$out/publisher.out" 2>"$out/publisher.err" &
publisher=$!
# All connected: the moment the replicas' gauges add up to every connection.
connected_at=""
for _ in $(seq 3000); do
  n=$(open_total)
  if ((n >= connections)); then connected_at=$(date +%s.%N); break; fi
  kill -0 "$publisher" 2>/dev/null || break
  sleep 0.2
done
held_rss=()
for pid in "${gateway_pids[@]}"; do held_rss+=("$(rss_kib "$pid")"); done
redis_held=$(redis_memory)
[[ -n $connected_at ]] || echo "warning: the replicas never held all $connections connections at once" >&2
# Redis's CPU from here to the end of the publisher's run: its broadcasts
# (and the publisher's last second of holding, idle).
cpu_redis_before=$(cpu_ticks "$redis_pid")
wait "$publisher" || true
cpu_redis=$(($(cpu_ticks "$redis_pid") - cpu_redis_before))
for pid in "${loadgen_pids[@]}"; do wait "$pid" || true; done

/usr/bin/env python3 - "$out" "$replicas" "$connections" "$start" "${connected_at:-0}" "$(getconf CLK_TCK)" "$cpu_redis" \
  "$redis_before" "$redis_held" "${baseline_rss[*]}" "${held_rss[*]}" "${share[*]}" <<'PY'
import glob, json, sys
out, replicas, connections = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
start, connected_at, tck = float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
cpu_redis = int(sys.argv[7]) / tck
redis_before, redis_held = int(sys.argv[8]), int(sys.argv[9])
base = [int(v) for v in sys.argv[10].split()]
held = [int(v) for v in sys.argv[11].split()]
shares = [int(v) for v in sys.argv[12].split()]

def last_json(path):
    lines = [l for l in open(path) if l.startswith("{")]
    return json.loads(lines[-1]) if lines else None

buckets, received, dup, reordered, opened = {}, 0, 0, 0, 0
for path in sorted(glob.glob(f"{out}/receiver-*.out")):
    r = last_json(path)
    if r is None:
        sys.exit(f"{path}: no report (see {path[:-4]}.err)")
    opened += r["connections"]["open"] - r["connections"]["closed_later"]
    received += r["receive"]["data_frames"]
    dup += r["receive"]["duplicates"]
    reordered += r["receive"]["reordered"]
    for bound, n in r["receive"]["latency_buckets_us"]:
        buckets[bound] = buckets.get(bound, 0) + n
p = last_json(f"{out}/publisher.out")
if p is None:
    sys.exit(f"publisher: no report (see {out}/publisher.err)")
opened += p["connections"]["open"] - p["connections"]["closed_later"]
step = p["steps"][0]
published = step["published"] - step["publish_errors"]
received += step["delivered"]
dup += step["duplicates"]
for bound, n in step["latency_buckets_us"]:
    buckets[bound] = buckets.get(bound, 0) + n
expected = published * connections

def quantile(q):
    total = sum(buckets.values())
    rank, seen = max(1, round(q * total)), 0
    for bound in sorted(buckets):
        seen += buckets[bound]
        if seen >= rank:
            return bound / 1000.0
    return 0.0

connect_seconds = connected_at - start if connected_at > start else 0
result = {
    "replicas": replicas,
    "connections": connections,
    "connections_open_at_end": opened,
    "connect_seconds": round(connect_seconds, 2),
    "connects_per_second": round(connections / connect_seconds) if connect_seconds else 0,
    "kib_per_connection_by_replica": [round((h - b) / n, 2) for b, h, n in zip(base, held, shares)],
    "rss_mib_by_replica": [round(h / 1024, 1) for h in held],
    "redis_used_memory_mib": round(redis_held / 1048576, 1),
    "redis_bytes_per_connection": round((redis_held - redis_before) / connections, 1),
    "broadcasts": published,
    "deliveries_expected": expected,
    "deliveries_received": received,
    "lost": expected - received,
    "duplicates": dup,
    "reordered": reordered,
    "latency_p50_ms": quantile(0.5),
    "latency_p99_ms": quantile(0.99),
    "latency_max_ms": max(buckets) / 1000.0 if buckets else 0,
    "cpu_seconds_redis_during_broadcasts": round(cpu_redis, 2),
    # Every replica and redis-server, over the publishing step (from the
    # publisher's /proc samples).
    "cpu_seconds_all_during_broadcasts": round(step["server_cpu_seconds"], 2),
    "cpu_us_per_delivery_all": round(step["server_cpu_seconds"] / received * 1e6, 3) if received else 0,
}
json.dump(result, open(f"{out}/scale.json", "w"), indent=1)
for k, v in result.items():
    print(f"{k:32} {v}")
PY
echo "results: $out" >&2
