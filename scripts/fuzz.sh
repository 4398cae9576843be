#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) and runs each for a bounded time.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 60)
# Environment:
#   FUZZ_JOBS=N        targets run side by side (default: the number of cores, at most 3)
#   FUZZ_TARGETS="a b" only these targets
#   FUZZ_BUILD_DIR=d   build directory (default build-fuzz in the repository)
#   FUZZ_KEEP=1        keep the temporary directory (logs, corpora, artifacts) even on success
# Each target first replays its regression inputs (fuzz/regressions/<target>/),
# then fuzzes a temporary COPY of its seed corpus (fuzz/corpus/<target>/): the
# repository is never written to. Exits non-zero when a regression input or
# the fuzzer finds a crash, a leak, a timeout or an out-of-memory; the log and
# the artifact (the input that did it) are kept and their paths printed.
# Needs (Debian 12): clang libclang-rt-14-dev llvm cmake ninja-build libssl-dev libboost1.81-dev.
set -uo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "usage: $0 [seconds-per-target]" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
targets=(${FUZZ_TARGETS:-protocol_fuzzer token_fuzzer http_upgrade_fuzzer ws_reader_fuzzer})
cores="$(nproc 2>/dev/null || echo 1)"
jobs="${FUZZ_JOBS:-$((cores < 3 ? cores : 3))}"
((jobs >= 1)) || jobs=1

# The largest input each target is allowed to generate.
declare -A max_len=([protocol_fuzzer]=8192 [token_fuzzer]=8192 [http_upgrade_fuzzer]=20480 [ws_reader_fuzzer]=16384)

for tool in clang++ cmake ninja; do
  if ! command -v "$tool" >/dev/null; then
    echo "fuzz: $tool not found (apt-get install clang libclang-rt-14-dev cmake ninja-build)" >&2
    exit 2
  fi
done
if ! command -v llvm-symbolizer >/dev/null; then
  for s in /usr/bin/llvm-symbolizer-14 /usr/lib/llvm-14/bin/llvm-symbolizer; do
    [[ -x "$s" ]] && export ASAN_SYMBOLIZER_PATH="$s" && break
  done
fi

# --- build (idempotent: configures once, then rebuilds what changed)
start=$SECONDS
build_log="$(mktemp -t notify-fuzz-build.XXXXXX.log)"
if [[ ! -f "$build/build.ninja" ]]; then
  if ! cmake -S "$root/fuzz" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build_log" 2>&1; then
    tail -n 40 "$build_log"
    echo "fuzz: configuring failed (log: $build_log)" >&2
    exit 2
  fi
fi
if ! cmake --build "$build" -j "$cores" >>"$build_log" 2>&1; then
  grep -E "error|Error" "$build_log" | head -n 40
  echo "fuzz: build failed (log: $build_log)" >&2
  exit 2
fi
rm -f "$build_log"
echo "fuzz: built ${targets[*]} in $((SECONDS - start)) s; running each for ${seconds} s, ${jobs} at a time"

work="$(mktemp -d -t notify-fuzz.XXXXXX)"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# Runs one target; writes $work/<target>/status ("ok" or a reason) and logs.
run_target() {
  local t="$1" dir="$work/$1" bin="$build/$1"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp -R "$root/fuzz/corpus/$t/." "$dir/corpus/" 2>/dev/null || true
  local common=(-timeout=10 -rss_limit_mb=2048 -max_len="${max_len[$t]:-4096}" -artifact_prefix="$dir/artifacts/")
  if [[ -f "$root/fuzz/dict/$t.dict" ]]; then common+=(-dict="$root/fuzz/dict/$t.dict"); fi
  local status=ok

  # 1. Known crashers stay fixed. Each input runs once, from a copy.
  local regressions=()
  if [[ -d "$root/fuzz/regressions/$t" ]]; then
    mkdir -p "$dir/regressions"
    while IFS= read -r -d '' f; do
      cp "$f" "$dir/regressions/"
      regressions+=("$dir/regressions/$(basename "$f")")
    done < <(find "$root/fuzz/regressions/$t" -maxdepth 1 -type f ! -name '*.md' ! -name '.*' -print0 | sort -z)
  fi
  echo "${#regressions[@]}" >"$dir/regression_count"
  if ((${#regressions[@]} > 0)); then
    if ! "$bin" "${common[@]}" "${regressions[@]}" >"$dir/regressions.log" 2>&1; then
      status="regression input fails"
    fi
  fi

  # 2. Fuzz, starting from the seeds (and the regression inputs, if they pass).
  local corpora=("$dir/corpus")
  if [[ "$status" == ok && ${#regressions[@]} -gt 0 ]]; then corpora+=("$dir/regressions"); fi
  "$bin" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 "${corpora[@]}" >"$dir/fuzz.log" 2>&1
  local rc=$?
  if ((rc != 0)); then
    local kind
    kind="$(ls "$dir/artifacts" 2>/dev/null | head -n 1 | cut -d- -f1)"
    if [[ "$status" == ok ]]; then status="fuzzer found a ${kind:-failure} (exit $rc)"; else status="$status; fuzzer found a ${kind:-failure} (exit $rc)"; fi
  fi
  echo "$status" >"$dir/status"
}

# A job pool of $jobs targets at a time.
running=0
for t in "${targets[@]}"; do
  if [[ ! -x "$build/$t" ]]; then
    echo "fuzz: unknown target $t" >&2
    exit 2
  fi
  run_target "$t" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n
    running=$((running - 1))
  fi
done
wait

# --- summary
final_stat() { grep -m1 "^stat::$2:" "$1" 2>/dev/null | awk '{print $2}'; }
failed=0
for t in "${targets[@]}"; do
  dir="$work/$t"
  log="$dir/fuzz.log"
  status="$(cat "$dir/status" 2>/dev/null || echo "did not run")"
  last="$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|NEW|REDUCE|pulse|RELOAD)' "$log" 2>/dev/null | tail -n 1)"
  cov="$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")"
  ft="$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")"
  corp="$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$last")"
  printf '%-20s %-4s execs=%s exec/s=%s cov=%s ft=%s corpus=%s new=%s rss=%sMB regressions=%s\n' \
    "$t" "$([[ "$status" == ok ]] && echo OK || echo FAIL)" "$(final_stat "$log" number_of_executed_units)" \
    "$(final_stat "$log" average_exec_per_sec)" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$(final_stat "$log" new_units_added)" \
    "$(final_stat "$log" peak_rss_mb)" "$(cat "$dir/regression_count" 2>/dev/null || echo 0)"
  if [[ "$status" != ok ]]; then
    failed=1
    echo "  $t: $status"
    if [[ "$status" == "regression input fails"* ]]; then
      echo "  --- regression replay ($dir/regressions.log):"
      grep -E "^Running: |ERROR:|runtime error|invariant violated|SUMMARY|uncaught|what\(\)" "$dir/regressions.log" | sed 's/^/    /' | head -n 20
    fi
    if ls "$dir/artifacts"/* >/dev/null 2>&1; then
      echo "  --- fuzzing ($log):"
      grep -E "ERROR:|runtime error|invariant violated|SUMMARY|uncaught|what\(\)|Test unit written" "$log" | sed 's/^/    /' | head -n 20
      for a in "$dir/artifacts"/*; do echo "  artifact: $a"; done
      echo "  reproduce: $build/$t <artifact>; keep it as fuzz/regressions/$t/<name> (see fuzz/README.md)"
    elif [[ -s "$log" ]] && ! grep -q "^Done [0-9]* runs" "$log"; then
      tail -n 20 "$log" | sed 's/^/    /'
    fi
  fi
done

if ((failed)) || [[ "${FUZZ_KEEP:-}" == 1 ]]; then
  echo "fuzz: logs, corpora and artifacts kept in $work"
else
  rm -rf "$work"
fi
echo "fuzz: total $((SECONDS - start)) s"
exit "$failed"
