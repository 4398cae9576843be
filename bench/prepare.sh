#!/usr/bin/env bash
# What every benchmark script needs first: the build dependencies, the peers
# (nginx + nchan, Node's ws, redis-server, gnuplot) and a Release build of
# notify-gateway, the load generator and the epoll ceiling in $BUILD_DIR
# (default build-bench/). Safe to run again: installs and builds only what is
# missing or changed.
#   bench/prepare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/install-deps.sh
bench/peers/install-peers.sh
build=${BUILD_DIR:-$root/build-bench}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNOTIFY_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target notify-gateway notify-loadgen epoll-ceiling
