#!/usr/bin/env bash
# Installs what is missing, builds notify-gateway and runs it with its
# embedded defaults: WebSocket + page on :8080, gRPC on :50051, metrics on
# :9100. Extra arguments go to the binary (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target notify-gateway
exec build/notify-gateway "$@"
