#!/usr/bin/env bash
# What the inbox costs (docs/benchmarks.md#inbox-and-acknowledgements), in the
# process and in Redis (one replica with --redis-url), history off so that
# only the inbox is measured:
#   memory  100,000 notifications (64-byte data) sent with persist to 1,000
#           users nobody holds (--inbox-size 100: all kept): the gateway's RSS
#           growth, or Redis used_memory growth. The peer: Nchan keeping 100
#           messages per channel for 1 h, the same 100,000 POSTed to 1,000
#           channels nobody subscribes to: its shared memory in use
#           (nchan_stub_status) before and after.
#   cpu     the same 100,000 over one NotifyStream (notifyctl stream), with
#           persist and without: CPU of the gateway (plus redis-server) per
#           notification, median of --runs.
#
#   bench/inbox.sh [--runs 3] [--no-nchan]
# Prints a Markdown table; raw lines in bench/results/inbox-<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
runs=3
nchan=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --no-nchan) nchan=0; shift ;;
    --runs) runs=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
build=${BUILD_DIR:-$root/build}
notifyctl=$build/notifyctl
[[ -x $build/notify-gateway && -x $notifyctl ]] || { echo "build first: $build/notify-gateway" >&2; exit 1; }
out=$root/bench/results/inbox-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
source bench/lib.sh
ws_port=28080 grpc_port=28051 metrics_port=28100 redis_port=28379
ensure_free $ws_port $grpc_port $metrics_port $redis_port
trap stop_pids EXIT
n=100000

# The requests: 1,000 users, 100 each, 64 bytes of data; $1: persist or not.
requests() {
  python3 - "$n" "$1" <<'PY'
import json, sys
n, persist = int(sys.argv[1]), sys.argv[2] == "1"
for i in range(n):
    note = {"event": "n", "data_json": json.dumps({"seq": i, "pad": "x" * 40})}
    if persist:
        note["persist"] = True
    print(json.dumps({"user_ids": [f"off{i % 1000}"], "notification": note}))
PY
}
requests 1 >"$out/persist.jsonl"
requests 0 >"$out/plain.jsonl"

# start <redis 0|1>: a gateway (and its Redis); sets gateway_pid, redis_pid.
start() {
  local extra=()
  redis_pid=
  if [[ $1 == 1 ]]; then
    redis-server --bind 127.0.0.1 --port $redis_port --save "" --appendonly no >>"$out/redis.log" 2>&1 &
    pids+=($!)
    redis_pid=$!
    wait_port $redis_port "$redis_pid" "$out/redis.log"
    extra=(--redis-url "redis://127.0.0.1:$redis_port")
  fi
  "$build/notify-gateway" --insecure-dev --bind 127.0.0.1 --ws-port $ws_port --grpc-port $grpc_port \
    --metrics-port $metrics_port --log-level warn --history-size 0 --inbox-size 100 "${extra[@]}" \
    >>"$out/gateway.log" 2>&1 &
  pids+=($!)
  gateway_pid=$!
  wait_port $grpc_port "$gateway_pid" "$out/gateway.log"
}
stop() { stop_pids; sleep 0.5; }

ticks() {  # CPU ticks (user + system) of the pids given
  local t=0 p
  for p in "$@"; do [[ -z $p ]] || t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo $t
}
rss() { echo $(($(awk '/^VmRSS/ {print $2}' "/proc/$1/status") * 1024)); }
redis_used() { redis-cli -p $redis_port info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r'; }
send() { NOTIFY_SERVER=127.0.0.1:$grpc_port "$notifyctl" stream --file "$1" >/dev/null; }

hz=$(getconf CLK_TCK)
for config in "in-process:0" "redis:1"; do
  IFS=: read -r name redis <<<"$config"
  for r in $(seq "$runs"); do
    for persist in 1 0; do
      echo "--- run $r: $name, persist $persist" >&2
      start "$redis"
      sleep 0.5
      file=$out/plain.jsonl
      [[ $persist == 1 ]] && file=$out/persist.jsonl
      if [[ $redis == 1 ]]; then before=$(redis_used); else before=$(rss "$gateway_pid"); fi
      t0=$(ticks "$gateway_pid" "$redis_pid")
      send "$file"
      t1=$(ticks "$gateway_pid" "$redis_pid")
      sleep 0.5
      if [[ $redis == 1 ]]; then after=$(redis_used); else after=$(rss "$gateway_pid"); fi
      printf '{"config":"%s","persist":%d,"cpu_us":%.2f,"bytes":%d}\n' "$name" "$persist" \
        "$(echo "($t1 - $t0) * 1000000 / $hz / $n" | bc -l)" $((after - before)) >>"$out/results.jsonl"
      stop
    done
  done
done

if [[ $nchan == 1 ]]; then
  NCHAN_BUFFER=100 NCHAN_TIMEOUT=3600s bench/peers/nchan/run.sh $ws_port >>"$out/nchan.log" 2>&1 &
  pids+=($!)
  wait_port $ws_port "${pids[-1]}" "$out/nchan.log"
  python3 - "$ws_port" "$n" >>"$out/results.jsonl" <<'PY'
import http.client, json, re, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
def used():
    c.request("GET", "/nchan_status")
    text = c.getresponse().read().decode()
    return int(re.search(r"shared memory used: (\d+)K", text).group(1)) * 1024
before = used()
for i in range(n):
    c.request("POST", f"/notify?user=off{i % 1000}", body=json.dumps({"seq": i, "pad": "x" * 40}))
    c.getresponse().read()
print(json.dumps({"config": "nchan", "persist": 1, "cpu_us": None, "bytes": used() - before}))
PY
  stop
fi

python3 - "$out/results.jsonl" "$n" <<'PY'
import json, statistics, sys
rows, n = [json.loads(l) for l in open(sys.argv[1])], int(sys.argv[2])
def med(config, persist, key):
    v = [r[key] for r in rows if r["config"] == config and r["persist"] == persist and r[key] is not None]
    return statistics.median(v) if v else None
print("| | CPU per notification, persist | without | ratio | memory per kept notification |")
print("| --- | --- | --- | --- | --- |")
for c in ("in-process", "redis", "nchan"):
    on, off, mem = med(c, 1, "cpu_us"), med(c, 0, "cpu_us"), med(c, 1, "bytes")
    if mem is None:
        continue
    cpu = f"{on:.1f} µs | {off:.1f} µs | {on / off:.2f}×" if on and off else "- | - | -"
    print(f"| {c} | {cpu} | {mem / n:.0f} B |")
PY
echo "raw: $out" >&2
