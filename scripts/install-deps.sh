#!/usr/bin/env bash
# Installs what notify-gateway needs from Debian 12's own packages, and only
# what is missing. Run as root (or with sudo available).
#   scripts/install-deps.sh             build and run (scripts/run.sh)
#   scripts/install-deps.sh --test      also the test suite's tools (scripts/test.sh)
#   scripts/install-deps.sh --list run|test
#                                       print the run packages, or the test-only
#                                       ones, one a line; install nothing
# The run list is everything scripts/run.sh needs to build and run
# notify-gateway and notifyctl; scripts/check-run-path.sh proves that in CI
# by hiding the test-only packages.
set -euo pipefail

run_packages=(
  g++ cmake ninja-build pkg-config ccache
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  prometheus-cpp-dev libcli11-dev libssl-dev libhiredis-dev
)
# GoogleTest, the standard gRPC protos (reflection client), promtool, a real
# browser and Node.js for the end-to-end test, clang + libFuzzer for the
# fuzzers (llvm for symbolized reports), clang-format; real Redis servers and
# Sentinels for the broker's tests; Python (standard library only) for the
# monitoring test against a real Prometheus and the PrometheusRule check.
test_packages=(libgtest-dev grpc-proto prometheus chromium nodejs clang-format clang libclang-rt-14-dev llvm
  redis-server redis-sentinel python3)
# kubectl renders the Kubernetes overlays (tests/deploy/kubernetes_test.sh):
# Debian's kubernetes-client, unless a kubectl from elsewhere is there (the
# upstream "kubectl" package conflicts with it: both ship /usr/bin/kubectl).
# Once installed it stays in the list, so --list test names the same
# packages before and after an install.
if dpkg-query -W -f='${Status}' kubernetes-client 2>/dev/null | grep -q "install ok installed" ||
  ! command -v kubectl >/dev/null; then
  test_packages+=(kubernetes-client)
fi

case "${1:-}" in
  --list)
    case "${2:-}" in
      run) printf '%s\n' "${run_packages[@]}" ;;
      test) printf '%s\n' "${test_packages[@]}" ;;
      *) echo "usage: $0 --list run|test" >&2; exit 2 ;;
    esac
    exit 0 ;;
  --test) packages=("${run_packages[@]}" "${test_packages[@]}") ;;
  "") packages=("${run_packages[@]}") ;;
  *) echo "usage: $0 [--test | --list run|test]" >&2; exit 2 ;;
esac

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
# One index refresh an hour is enough (test.sh calls this twice in a row).
# apt keeps the servers' dates on the index files, so a stamp of our own
# says when the last refresh was.
stamp=/var/cache/apt/notify-gateway-update.stamp
if [[ -z "$(find "$stamp" -mmin -60 2>/dev/null)" ]]; then
  $SUDO apt-get update -qq
  $SUDO touch "$stamp"
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
