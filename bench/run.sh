#!/usr/bin/env bash
# The whole benchmark suite: installs what it needs (build dependencies, nginx
# + nchan, the Node peer's npm packages), builds notify-gateway, the load
# generator and the epoll ceiling server (Release, build-bench/), runs every
# scenario against every system 3 times (bench/compare.sh) and writes the
# summary into docs/benchmarks.md between its "results" markers.
#
#   bench/run.sh            # the full suite (about 35 minutes on 2 cores)
#   bench/run.sh --quick    # 1 run, shorter steps (about 10 minutes)
# Any other arguments are passed to bench/compare.sh (e.g. --systems gateway,ceiling).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
args=(--runs 3)
[[ " $* " == *" --quick "* ]] && args=(--runs 1)

bench/prepare.sh
build=${BUILD_DIR:-$root/build-bench}

out=$root/bench/results/$(date -u +%Y%m%dT%H%M%SZ)
BUILD_DIR=$build bench/compare.sh "${args[@]}" --out "$out" "$@"

# docs/benchmarks.md: replace what is between the markers with this run.
{
  echo "<!-- results:begin (written by bench/run.sh; edit around it, not inside) -->"
  echo
  echo "Run $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -r)), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);"
  echo "notify-gateway $(git rev-parse --short HEAD), node $(node --version), ws $(node -p "require('./bench/peers/node-ws/node_modules/ws/package.json').version" 2>/dev/null || echo '?'),"
  echo "nginx $(nginx -v 2>&1 | sed 's/.*\///'), nchan $(dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null || echo '?')."
  echo
  cat "$out/summary.md"
  echo
  echo "<!-- results:end -->"
} >"$out/section.md"
python3 bench/write-section.py results "$root/docs/benchmarks.md" "$out/section.md"
echo "docs/benchmarks.md updated from $out" >&2
