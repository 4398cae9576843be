#!/usr/bin/env bash
# Replicas through Redis, measured: notify-gateway alone, 2 and 3 replicas
# sharing one redis-server, Nchan alone and two Nchan instances sharing one
# Redis; then Redis's memory per user and per topic, and the scale run (100,000
# connections across 6 replicas). Writes the tables into docs/benchmarks.md
# between its "replicas" markers and the charts into docs/benchmarks/.
#
#   bench/replicas.sh              # 3 runs of the ladders, then the rest (about 40 minutes)
#   bench/replicas.sh --quick      # 1 run, shorter steps
#   bench/replicas.sh --no-scale   # without the 100,000-connection run
#   bench/replicas.sh --from bench/results/replicas-<time>
#                                  # rewrite the section and charts from a
#                                  # finished run's files, measuring nothing
#
# The ladders are bench/compare.sh's fan-out (10,000 subscribers, 64 B) and
# targeted Notify scenarios; CPU figures of the *-redis systems include
# redis-server's (see bench/compare.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
runs=3
quick=()
scale=1
from=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) runs=1; quick=(--quick); shift ;;
    --no-scale) scale=0; shift ;;
    --from) from=$(cd "$2" && pwd); shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

systems=gateway,gateway-redis-2,gateway-redis-3,nchan,nchan-redis
if [[ -n $from ]]; then
  out=$from
  [[ -s $out/scale.txt ]] || scale=0
else
  bench/prepare.sh
  export BUILD_DIR=${BUILD_DIR:-$root/build-bench}
  out=$root/bench/results/replicas-$(date -u +%Y%m%dT%H%M%SZ)
  mkdir -p "$out"
  {
    echo "Run $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -r)), notify-gateway $(git rev-parse --short HEAD),"
    echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), nginx $(nginx -v 2>&1 | sed 's/.*\///'),"
    echo "nchan $(dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null || echo '?'); $runs run(s) of each ladder."
  } >"$out/about.md"
  bench/compare.sh --systems "$systems" --scenarios fanout,notify --runs "$runs" "${quick[@]}" --out "$out/ladders"
  bench/redis-memory.sh --out "$out/memory" >"$out/memory.md"
  if [[ $scale == 1 ]]; then
    bench/scale.sh --replicas 6 --connections 100000 --broadcasts 10 --out "$out/scale" >"$out/scale.txt"
  fi
fi
python3 bench/report.py "$out/ladders/results.jsonl" \
  --ratios gateway-redis-2/gateway,gateway-redis-3/gateway,gateway-redis-2/nchan-redis,gateway-redis-3/nchan-redis \
  >"$out/ladders.md"
charts=$root/docs/benchmarks
python3 bench/charts.py "$out/ladders/results.jsonl" "$charts" --systems "$systems" --prefix replicas-

{
  echo "<!-- replicas:begin (written by bench/replicas.sh; edit around it, not inside) -->"
  echo
  cat "$out/about.md"
  echo
  cat "$out/ladders.md"
  echo
  for svg in "$charts"/replicas-*.svg; do
    echo "![$(basename "$svg" .svg)](benchmarks/$(basename "$svg"))"
    echo
  done
  cat "$out/memory.md"
  if [[ $scale == 1 ]]; then
    echo
    echo "Scale run (bench/scale.sh): 6 replicas, one load generator process each, 10 broadcasts to everyone at 1/s:"
    echo
    echo '```'
    cat "$out/scale.txt"
    echo '```'
  fi
  echo
  echo "<!-- replicas:end -->"
} >"$out/section.md"
python3 bench/write-section.py replicas "$root/docs/benchmarks.md" "$out/section.md"
echo "docs/benchmarks.md updated from $out" >&2
