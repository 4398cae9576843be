#!/usr/bin/env bash
# What history costs (docs/benchmarks.md#history): the same workloads with
# history on (the default, --history-size 100) and off (--history-size 0),
# in the process and in Redis (one replica with --redis-url), through
# notify-loadgen at a fixed rate:
#   notify  2,000 connections (one user each), Notify to one user at 5,000/s
#   fanout  2,000 connections, 50 broadcasts/s to everyone (the "all" stream)
# CPU of the gateway (plus redis-server with Redis) per notification and per
# delivery, medians of --runs; then the memory one kept notification takes:
# 100,000 Notify calls (64-byte data) to 1,000 users nobody holds, RSS (in
# the process) or Redis used_memory before and after. The peer: Nchan with
# its message buffer at 100 per channel (1 h) and at 0, the same workloads
# published over HTTP (CPU only).
#
#   bench/history.sh [--runs 3] [--seconds 10] [--no-nchan]
# Prints a Markdown table; raw lines in bench/results/history-<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
runs=3
seconds=10
nchan=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --no-nchan) nchan=0; shift ;;
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
build=${BUILD_DIR:-$root/build}
loadgen=$build/bench/notify-loadgen
notifyctl=$build/notifyctl
[[ -x $loadgen && -x $build/notify-gateway ]] || { echo "build first: $loadgen and $build/notify-gateway" >&2; exit 1; }
out=$root/bench/results/history-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
source bench/lib.sh
ws_port=28080 grpc_port=28051 metrics_port=28100 redis_port=28379
ensure_free $ws_port $grpc_port $metrics_port $redis_port
trap stop_pids EXIT

# start <history-size> <redis 0|1>: a gateway (and its Redis); sets gateway_pid.
start() {
  local size=$1 redis=$2 extra=()
  if [[ $redis == 1 ]]; then
    redis-server --bind 127.0.0.1 --port $redis_port --save "" --appendonly no >>"$out/redis.log" 2>&1 &
    pids+=($!)
    wait_port $redis_port "${pids[-1]}" "$out/redis.log"
    extra=(--redis-url "redis://127.0.0.1:$redis_port")
  fi
  "$build/notify-gateway" --insecure-dev --bind 127.0.0.1 --ws-port $ws_port --grpc-port $grpc_port \
    --metrics-port $metrics_port --max-connections-per-ip 0 --log-level warn --history-size "$size" \
    --history-ttl 3600 "${extra[@]}" >>"$out/gateway.log" 2>&1 &
  pids+=($!)
  gateway_pid=${pids[-1]}
  wait_port $ws_port "$gateway_pid" "$out/gateway.log"
  wait_port $grpc_port "$gateway_pid" "$out/gateway.log"
}

stop() { stop_pids; sleep 0.5; }

# start_nchan <buffer>: nginx + Nchan keeping <buffer> messages per channel.
start_nchan() {
  NCHAN_BUFFER=$1 NCHAN_TIMEOUT=3600s bench/peers/nchan/run.sh $ws_port >>"$out/nchan.log" 2>&1 &
  pids+=($!)
  wait_port $ws_port "${pids[-1]}" "$out/nchan.log"
}

# run <config> <scenario> <loadgen args...>: one step; appends a JSON line.
run() {
  local config=$1 scenario=$2
  shift 2
  local pid_list
  pid_list=$(IFS=,; echo "${pids[*]}")
  local publish=(--publish-via grpc --grpc "127.0.0.1:$grpc_port")
  [[ $config == nchan* ]] && publish=(--publish-via http --http "127.0.0.1:$ws_port")
  "$loadgen" --label "$config" --url "ws://127.0.0.1:$ws_port/ws" "${publish[@]}" \
    --server-pid "$pid_list" --sources 8 -q "$@" --step-seconds "$seconds" | tail -1 |
    python3 -c "import json,sys; d=json.load(sys.stdin); s=d['steps'][0]; print(json.dumps({'config':'$config',
'scenario':'$scenario','cpu':s['server_cpu_seconds'],'published':s['published'],'delivered':s['delivered'],
'lost':s['lost'],'p99':s['latency_ms']['p99']}))" >>"$out/results.jsonl"
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
redis_used() { redis-cli -p $redis_port info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r'; }

# memory <config> <history-size> <redis>: bytes per kept notification.
memory() {
  local config=$1 size=$2 redis=$3 before after n=100000
  start "$size" "$redis"
  sleep 1
  python3 - "$n" >"$out/stream.jsonl" <<'EOF'
import json, sys
n = int(sys.argv[1])
for i in range(n):
    print(json.dumps({"user_ids": [f"off{i % 1000}"],
                      "notification": {"event": "n", "data_json": json.dumps({"seq": i, "pad": "x" * 40})}}))
EOF
  if [[ $redis == 1 ]]; then before=$(redis_used); else before=$(($(rss_kib "$gateway_pid") * 1024)); fi
  NOTIFY_SERVER=127.0.0.1:$grpc_port "$notifyctl" stream --file "$out/stream.jsonl" >/dev/null
  sleep 1
  if [[ $redis == 1 ]]; then after=$(redis_used); else after=$(($(rss_kib "$gateway_pid") * 1024)); fi
  printf '{"config":"%s","scenario":"memory","bytes":%d,"kept":%d}\n' "$config" $((after - before)) \
    $((size < 100 ? size * 1000 : n)) >>"$out/results.jsonl"
  stop
}

configs=("in-process on:100:0" "in-process off:0:0" "redis on:100:1" "redis off:0:1")
for r in $(seq "$runs"); do
  for c in "${configs[@]}"; do
    IFS=: read -r name size redis <<<"$c"
    echo "--- run $r: $name" >&2
    start "$size" "$redis"
    run "$name" notify -c 2000 --mode notify --batch 1 --payload-bytes 64 --rates 5000
    stop
    start "$size" "$redis"
    run "$name" fanout -c 2000 --mode broadcast --payload-bytes 64 --rates 50
    stop
  done
  if [[ $nchan == 1 ]]; then
    for buffer in 100 0; do
      name="nchan $([[ $buffer == 0 ]] && echo off || echo on)"
      echo "--- run $r: $name" >&2
      start_nchan "$buffer"
      run "$name" notify -c 2000 --mode notify --batch 1 --payload-bytes 64 --rates 5000
      stop
      start_nchan "$buffer"
      run "$name" fanout -c 2000 --mode broadcast --payload-bytes 64 --rates 50
      stop
    done
  fi
done
for c in "${configs[@]}"; do
  IFS=: read -r name size redis <<<"$c"
  memory "$name" "$size" "$redis"
done

python3 - "$out/results.jsonl" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(config, scenario, f):
    v = [f(r) for r in rows if r["config"] == config and r["scenario"] == scenario]
    return statistics.median(v) if v else float("nan")
configs = [c for c in ["in-process on", "in-process off", "redis on", "redis off", "nchan on", "nchan off"]
           if any(r["config"] == c for r in rows)]
print("| | notify: CPU µs per notification | fanout: CPU µs per delivery | p99 notify / fanout (ms) | lost | memory per kept notification |")
print("| --- | --- | --- | --- | --- | --- |")
for c in configs:
    n = med(c, "notify", lambda r: r["cpu"] * 1e6 / max(r["published"], 1))
    f = med(c, "fanout", lambda r: r["cpu"] * 1e6 / max(r["delivered"], 1))
    p = (med(c, "notify", lambda r: r["p99"]), med(c, "fanout", lambda r: r["p99"]))
    lost = sum(r["lost"] for r in rows if r["config"] == c and "lost" in r)
    mem = [r for r in rows if r["config"] == c and r["scenario"] == "memory"]
    m = (f'{mem[0]["bytes"] / mem[0]["kept"]:.0f} B' if mem and mem[0]["kept"] else "-")
    print(f"| {c} | {n:.1f} | {f:.2f} | {p[0]:.2f} / {p[1]:.2f} | {lost} | {m} |")
for on, off in (("in-process on", "in-process off"), ("redis on", "redis off"), ("nchan on", "nchan off")):
    if on not in configs or off not in configs:
        continue
    n = med(on, "notify", lambda r: r["cpu"] / max(r["published"], 1)) / med(off, "notify", lambda r: r["cpu"] / max(r["published"], 1))
    f = med(on, "fanout", lambda r: r["cpu"] / max(r["delivered"], 1)) / med(off, "fanout", lambda r: r["cpu"] / max(r["delivered"], 1))
    print(f"\n{on} / {off}: {n:.2f}× CPU per notification, {f:.2f}× per fan-out delivery", end="")
print()
EOF
echo "raw: $out" >&2
