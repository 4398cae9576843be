#!/usr/bin/env bash
# Installs what is missing, then checks the formatting and builds and runs the
# whole test suite:
#   0. the run path (scripts/run.sh's build of notify-gateway and notifyctl)
#      with the test-only packages hidden, and a first notification through it
#      (scripts/check-run-path.sh)
#   1. warnings-as-errors build, unit + integration tests (ctest)
#   2. the same tests under AddressSanitizer + UndefinedBehaviorSanitizer (clang)
#   3. the libFuzzer targets, 60 s each (NOTIFY_FUZZ_SECONDS), a crash fails
#   4. the browser end-to-end tests (headless Chromium): the page, and the client library
# Set NOTIFY_TEST_SKIP_RUN_PATH=1, NOTIFY_TEST_SKIP_ASAN=1, NOTIFY_TEST_SKIP_FUZZ=1 or
# NOTIFY_TEST_SKIP_BROWSER=1 to skip a stage locally.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc)

stage() { printf '\n=== %s (at %d:%02d) ===\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }

# The run packages first, then the run path is built and tried before the
# test packages are installed (and, where they already are, with them hidden).
scripts/install-deps.sh
if [[ "${NOTIFY_TEST_SKIP_RUN_PATH:-0}" != 1 ]]; then
  stage "run path, without the test-only packages"
  # Same build folder and flags as the build below, so nothing is compiled twice.
  scripts/check-run-path.sh -DNOTIFY_WERROR=ON
fi
scripts/install-deps.sh --test

stage "format (clang-format)"
find app auth bench broker cli common fuzz gateway services tests -path tests/browser -prune -o \( -name '*.cpp' -o -name '*.hpp' \) -print |
  xargs clang-format --dry-run --Werror

stage "build (warnings as errors)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNOTIFY_WERROR=ON \
  -DNOTIFY_BUILD_TESTS=ON -DNOTIFY_BUILD_BENCH=ON >/dev/null
cmake --build build
stage "tests"
(cd build && ctest --output-on-failure -j "$jobs")

if [[ "${NOTIFY_TEST_SKIP_ASAN:-0}" != 1 ]]; then
  stage "build (ASan + UBSan)"
  # With clang: half the time GCC takes for this instrumented build (4:40
  # against 8:52 here), and the code is checked by both compilers.
  cmake -S . -B build-asan -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DNOTIFY_WERROR=ON \
    -DNOTIFY_BUILD_TESTS=ON -DNOTIFY_BUILD_BENCH=ON -DNOTIFY_SANITIZE=address,undefined >/dev/null
  cmake --build build-asan
  stage "tests under ASan + UBSan"
  # The unit tests run in one process: an instrumented binary takes ~0.7 s
  # to start, which one process per test (ctest) paid 287 times. The
  # integration tests keep a process each; the Docker context check is not
  # about memory and ran above.
  # tests/lsan.supp: OpenSSL state gRPC's threads hold at exit (see there).
  (cd build-asan && export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    LSAN_OPTIONS="suppressions=$PWD/../tests/lsan.supp" &&
    tests/unit_tests --gtest_brief=1 && ctest --output-on-failure -j "$jobs" -LE '^(unit|deploy)$')
fi

if [[ "${NOTIFY_TEST_SKIP_FUZZ:-0}" != 1 ]]; then
  stage "fuzzing"
  scripts/fuzz.sh "${NOTIFY_FUZZ_SECONDS:-60}"
fi

if [[ "${NOTIFY_TEST_SKIP_BROWSER:-0}" != 1 ]]; then
  stage "browser end-to-end test"
  cd "$root/tests/browser"
  npm ci --no-audit --no-fund --loglevel=error
  NOTIFY_GATEWAY_BIN="$root/build/notify-gateway" NOTIFYCTL_BIN="$root/build/notifyctl" node e2e.test.mjs
  stage "browser client library test"
  NOTIFY_GATEWAY_BIN="$root/build/notify-gateway" node client.test.mjs
  stage "failover test (3 replicas + Redis: kill -9, rolling restart)"
  NOTIFY_GATEWAY_BIN="$root/build/notify-gateway" node failover.test.mjs
fi
stage "all tests passed"
