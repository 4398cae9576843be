#!/usr/bin/env bash
# Runs the benchmark scenarios against each system with the same load
# generator, one system at a time on this machine, and prints one table:
# figure x system, with notify-gateway's ratio to each peer.
#
#   bench/compare.sh [--systems gateway,ceiling,nchan,node-ws] [--runs 3] [--quick]
#                    [--scenarios idle,storm,fanout,fanout1k,notify,notify-batch] [--out DIR]
#
# Needs the binaries from a Release build in $BUILD_DIR (default build-bench/:
# notify-gateway, bench/notify-loadgen, bench/epoll-ceiling) and the peers
# installed (bench/peers/install-peers.sh); bench/run.sh does both.
# Every scenario starts the system afresh (memory figures must not inherit a
# previous scenario's heap) and stops it after. Raw results: one JSON line per
# scenario run in $OUT/results.jsonl; the table is bench/report.py's.
# Replicas: gateway-redis-2 and gateway-redis-3 are 2 or 3 notify-gateway
# processes sharing one redis-server (--redis-url), nchan-redis two nginx +
# nchan instances sharing one; subscribers are spread over the replicas,
# publishers call the first, and the CPU and memory figures are the sum of
# every process, redis-server included (bench/replicas.sh runs these).
# The notify scenario runs the gateway's ladder twice: a Notify call per
# publish (notify-1) and over NotifyStream (notify-stream-1); peers publish
# one HTTP POST per notification.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${BUILD_DIR:-$root/build-bench}
systems=gateway,ceiling,nchan,node-ws
runs=3
quick=0
scenarios=idle,storm,fanout,fanout1k,notify,notify-batch
out=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --systems) systems=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --scenarios) scenarios=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
out=${out:-$root/bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
loadgen=$build/bench/notify-loadgen
for bin in "$build/notify-gateway" "$loadgen" "$build/bench/epoll-ceiling"; do
  [[ -x $bin ]] || { echo "missing $bin: run bench/run.sh (or build with BUILD_DIR=$build)" >&2; exit 1; }
done
ulimit -n 20000

# Step lengths: --quick trades precision for time.
if [[ $quick == 1 ]]; then step=3; hold=2; else step=5; hold=3; fi

ws_port=28080
grpc_port=28051
metrics_port=28100
redis_port=28379
cores=$(nproc)
source bench/lib.sh  # pids: every process of the system under test (replicas, Redis)
ws_urls=""      # its WebSocket endpoints, comma-separated: the load generator spreads connections over them

# spawn <log> <command...>: starts one process of the system.
spawn() {
  local log=$1
  shift
  "$@" >>"$log" 2>&1 &
  pids+=($!)
}

# A Redis of our own on a spare port: no persistence, the replicas' broker.
start_redis() {
  ensure_free $redis_port
  spawn "$out/redis.log" redis-server --bind 127.0.0.1 --port $redis_port --save "" --appendonly no \
    --maxclients 20000
  wait_port $redis_port "${pids[-1]}" "$out/redis.log"
}

# gateway-redis-<n>: n replicas sharing one Redis, each on its own ports;
# publishers call the first replica, subscribers are spread over all. The
# replicas share the machine's cores as pods share a node: each runs
# cores/n event loops (at least 1), what NOTIFY_THREADS=0 picks under a CPU
# limit of cores/n.
start_gateway() {
  local replicas=$1 redis=() i
  ((replicas == 0)) || {
    start_redis
    redis=(--redis-url "redis://127.0.0.1:$redis_port" --threads $((cores / replicas > 0 ? cores / replicas : 1)))
  }
  ws_urls=""
  for ((i = 0; i < (replicas > 0 ? replicas : 1); i++)); do
    spawn "$out/$system.log" "$build/notify-gateway" --insecure-dev --bind 127.0.0.1 --ws-port $((ws_port + i)) \
      --grpc-port $((grpc_port + i)) --metrics-port $((metrics_port + i)) --max-connections-per-ip 0 \
      --log-level warn "${redis[@]}"
    ws_urls+="${ws_urls:+,}ws://127.0.0.1:$((ws_port + i))/ws"
  done
  for ((i = 0; i < (replicas > 0 ? replicas : 1); i++)); do
    wait_port $((ws_port + i)) "${pids[-1]}" "$out/$system.log"
    wait_port $((grpc_port + i)) "${pids[-1]}" "$out/$system.log"
  done
}

start_system() {
  local system=$1 log=$out/$1.log
  pids=()
  ws_urls="ws://127.0.0.1:$ws_port/ws"
  case $system in
    gateway) start_gateway 0 ;;
    gateway-redis-[0-9]) start_gateway "${system##*-}" ;;
    ceiling) spawn "$log" env EPOLL_CEILING_BIN="$build/bench/epoll-ceiling" bench/peers/epoll-ceiling/run.sh $ws_port ;;
    nchan) spawn "$log" bench/peers/nchan/run.sh $ws_port ;;
    # Two nginx instances sharing one Redis (nchan's way to scale out),
    # cores/2 workers each; publishers POST to the first.
    nchan-redis)
      start_redis
      local workers=$((cores / 2 > 0 ? cores / 2 : 1))
      spawn "$log" env NCHAN_REDIS_URL="redis://127.0.0.1:$redis_port" NCHAN_WORKERS=$workers \
        bench/peers/nchan/run.sh $ws_port
      spawn "$log" env NCHAN_REDIS_URL="redis://127.0.0.1:$redis_port" NCHAN_WORKERS=$workers \
        bench/peers/nchan/run.sh $((ws_port + 1))
      ws_urls+=",ws://127.0.0.1:$((ws_port + 1))/ws"
      wait_port $((ws_port + 1)) "${pids[-1]}" "$log"
      ;;
    node-ws) spawn "$log" bench/peers/node-ws/run.sh $ws_port ;;
    *) echo "unknown system $system" >&2; exit 2 ;;
  esac
  wait_port $ws_port "${pids[-1]}" "$log"
}

stop_system() {
  ((${#pids[@]} > 0)) || return 0
  stop_pids  # replicas first, Redis (started first) last
  sleep 0.5  # TIME_WAIT sockets and the ports free up
}
trap stop_system EXIT

# loadgen <system> <scenario> <run> <args...>: one scenario on a fresh server.
loadgen_run() {
  local system=$1 scenario=$2 run=$3
  shift 3
  local publish=(--publish-via http --http 127.0.0.1:$ws_port)
  [[ $system == gateway* ]] && publish=(--publish-via "$gateway_publish" --grpc 127.0.0.1:$grpc_port)
  start_system "$system"
  echo "--- $system / $scenario / run $run" >&2
  local line pid_list
  pid_list=$(IFS=,; echo "${pids[*]}")
  line=$("$loadgen" --label "$system" --url "$ws_urls" "${publish[@]}" --server-pid "$pid_list" \
    --hold-seconds "$hold" --sources 16 "$@" | tee -a "$out/tables.txt" | tail -1)
  stop_system
  printf '{"system":"%s","scenario":"%s","run":%d,"report":%s}\n' "$system" "$scenario" "$run" "$line" \
    >>"$out/results.jsonl"
}

has() { [[ ",$scenarios," == *",$1,"* ]]; }

# How the gateway is published to: a gRPC call per publish, except in the
# notify-stream-1 ladder (NotifyStream).
gateway_publish=grpc

# Rate ladders (publishes per second); each stops at its first failing step.
fanout_rates=1,2,5,10,20,30,50,75,100,150,200
notify_rates=1000,2000,5000,10000,15000,20000,30000,40000,50000,75000,100000
batch_rates=20,50,100,200,300,500,750,1000,1500,2000
IFS=, read -ra system_list <<<"$systems"
for run in $(seq "$runs"); do
  for system in "${system_list[@]}"; do
    if has idle; then
      loadgen_run "$system" idle-10k "$run" -c 10000 --ramp 10000 --mode idle
      loadgen_run "$system" idle-19k "$run" -c 19000 --ramp 10000 --mode idle
    fi
    has storm && loadgen_run "$system" storm-5k "$run" -c 5000 --ramp 0 --mode idle
    if has fanout; then
      loadgen_run "$system" fanout-64 "$run" -c 10000 --ramp 10000 --mode broadcast --payload-bytes 64 \
        --rates "$fanout_rates" --step-seconds "$step" --stop-on-failure --always-run-up-to 10
    fi
    if has fanout1k; then
      loadgen_run "$system" fanout-1k "$run" -c 10000 --ramp 10000 --mode broadcast --payload-bytes 1024 \
        --rates "$fanout_rates" --step-seconds "$step" --stop-on-failure --always-run-up-to 10
    fi
    if has notify; then
      loadgen_run "$system" notify-1 "$run" -c 10000 --ramp 10000 --mode notify --batch 1 --payload-bytes 64 \
        --rates "$notify_rates" --step-seconds "$step" --stop-on-failure
      # The same ladder through NotifyStream, the API for publishing many.
      if [[ $system == gateway* ]]; then
        gateway_publish=grpc-stream
        loadgen_run "$system" notify-stream-1 "$run" -c 10000 --ramp 10000 --mode notify --batch 1 \
          --payload-bytes 64 --rates "$notify_rates" --step-seconds "$step" --stop-on-failure
        gateway_publish=grpc
      fi
    fi
    # nchan publishes to one channel per request: no multi-user POST to batch with.
    if has notify-batch && [[ $system != nchan ]]; then
      loadgen_run "$system" notify-100 "$run" -c 10000 --ramp 10000 --mode notify --batch 100 --payload-bytes 64 \
        --rates "$batch_rates" --step-seconds "$step" --stop-on-failure
    fi
  done
done
python3 bench/report.py "$out/results.jsonl" | tee "$out/summary.md"
echo "results: $out" >&2
