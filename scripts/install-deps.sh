#!/usr/bin/env bash
# Installs what notify-gateway needs from Debian 12's own packages, and only
# what is missing. Run as root (or with sudo available).
#   scripts/install-deps.sh           build and run
#   scripts/install-deps.sh --test    also the test suite's tools
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config ccache
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  prometheus-cpp-dev libcli11-dev libssl-dev
)
if [[ "${1:-}" == "--test" ]]; then
  # GoogleTest, the standard gRPC protos (health/reflection clients), promtool,
  # a real browser for the end-to-end test, clang + libFuzzer for the fuzzers
  # (llvm for symbolized reports).
  packages+=(libgtest-dev grpc-proto prometheus chromium nodejs clang-format clang libclang-rt-14-dev llvm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm may come with nodejs (nodesource) or as its own package (Debian).
if [[ "${1:-}" == "--test" ]] && ! command -v npm >/dev/null; then missing+=(npm); fi

if ((${#missing[@]} == 0)); then
  echo "install-deps: everything is installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
