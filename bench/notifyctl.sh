#!/usr/bin/env bash
# What notifyctl costs a shell or a script, side by side with the peer's
# equivalent: publishing to Nchan with curl (one HTTP POST per notification).
#   bench/notifyctl.sh [CALLS] [STREAM_REQUESTS]      (defaults 50 and 100000)
# Prints, for one notification per process (notifyctl notify / curl POST),
# the median and 90th percentile wall time of CALLS sequential calls; and for
# bulk sends the rate of `notifyctl stream` over STREAM_REQUESTS JSON lines,
# against the same number of notifications through one curl process (HTTP/1.1
# keep-alive, one POST each, curl's --parallel off). Median of 3 runs each.
# Needs build/notify-gateway and build/notifyctl (scripts/build.sh), nginx +
# libnginx-mod-nchan (bench/peers/install-peers.sh) and curl. Both servers run
# on free loopback ports with nobody subscribed, so the figures are the
# publishing path alone.
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-50}
requests=${2:-100000}
work=$(mktemp -d /tmp/notifyctl-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
p90() { sort -n | awk '{a[NR]=$1} END{i=int(NR*0.9); if(i<1)i=1; print a[i]}'; }

build/notify-gateway --bind 127.0.0.1 --ws-port 0 --grpc-port 0 --metrics-port 0 --log-format json \
  --insecure-dev >"$work/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '"msg":"listening"' "$work/gateway.log" 2>/dev/null && break; sleep 0.1; done
grpc=$(grep -m1 '"msg":"listening"' "$work/gateway.log" | sed -E 's/.*"grpc_port":([0-9]+).*/\1/')
nchan_port=$(free_port)
NCHAN_WORKDIR="$work/nchan" bench/peers/nchan/run.sh "$nchan_port" >"$work/nchan.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$nchan_port/" && break; sleep 0.1; done

export NOTIFY_SERVER=127.0.0.1:$grpc
one_call() {  # one_call COMMAND...: wall ms
  local start
  start=$(now_ms)
  "$@" >/dev/null
  echo $(($(now_ms) - start))
}
for i in $(seq "$calls"); do
  one_call build/notifyctl notify --user "u$i" --event like --data '{"post":42}'
done >"$work/notifyctl.ms"
for i in $(seq "$calls"); do
  one_call curl -sf -X POST --data '{"post":42}' "http://127.0.0.1:$nchan_port/notify?user=u$i"
done >"$work/curl.ms"

awk -v n="$requests" 'BEGIN{for(i=0;i<n;i++) printf "{\"user_ids\":[\"u%d\"],\"notification\":{\"event\":\"like\",\"data_json\":\"{\\\"post\\\":42}\"}}\n", i%1000}' \
  >"$work/requests.jsonl"
# One curl process, one keep-alive connection, one POST per notification.
for i in $(seq 0 $((requests - 1))); do
  printf 'url = "http://127.0.0.1:%s/notify?user=u%d"\noutput = "/dev/null"\n' "$nchan_port" $((i % 1000))
done >"$work/curl.cfg"
for run in 1 2 3; do
  start=$(now_ms)
  build/notifyctl stream --file "$work/requests.jsonl" >"$work/results.jsonl"
  ms=$(($(now_ms) - start))
  [[ $(grep -c '"code":0' "$work/results.jsonl") == "$requests" ]] || { echo "not every request succeeded" >&2; exit 1; }
  echo $((requests * 1000 / ms)) >>"$work/stream.rate"
  start=$(now_ms)
  curl -sf -X POST --data '{"post":42}' -K "$work/curl.cfg"
  ms=$(($(now_ms) - start))
  echo $((requests * 1000 / ms)) >>"$work/curl.rate"
done

printf '%-44s %10s %10s\n' "one notification per process (ms)" median p90
printf '%-44s %10s %10s\n' "notifyctl notify (gRPC, notify-gateway)" "$(median <"$work/notifyctl.ms")" "$(p90 <"$work/notifyctl.ms")"
printf '%-44s %10s %10s\n' "curl -X POST (HTTP, Nchan)" "$(median <"$work/curl.ms")" "$(p90 <"$work/curl.ms")"
printf '\n%-44s %10s\n' "$requests notifications from one process (/s)" median
printf '%-44s %10s\n' "notifyctl stream (NotifyStream)" "$(median <"$work/stream.rate")"
printf '%-44s %10s\n' "curl, keep-alive, one POST each (Nchan)" "$(median <"$work/curl.rate")"
