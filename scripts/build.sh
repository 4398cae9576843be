#!/usr/bin/env bash
# Builds the run path into build/: notify-gateway and notifyctl, from the run
# packages alone (scripts/install-deps.sh without --test). The test suite and
# the load generator are not configured here (scripts/test.sh builds them).
# Extra arguments go to CMake's configure step, e.g. -DNOTIFY_WERROR=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNOTIFY_BUILD_TESTS=OFF -DNOTIFY_BUILD_BENCH=OFF \
  "$@" >/dev/null
cmake --build build --target notify-gateway notifyctl
