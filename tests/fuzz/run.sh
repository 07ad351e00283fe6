#!/usr/bin/env bash
# Bounded fuzzing, as the test command runs it:
#
#   tests/fuzz/run.sh BUILD_DIR
#
# BUILD_DIR is a build configured with TRACKPOINT_BUILD_FUZZERS=ON (clang).
# For each target it first replays the inputs saved under
# tests/fuzz/regressions/<target>/ (each once, no length cap), then fuzzes for
# TRACKPOINT_FUZZ_SECONDS seconds (default 30) from the fixture seeds
# (tests/fuzz/make_seeds.py) plus the corpus kept in BUILD_DIR/fuzz/corpus.
# The state-file target is Python (atheris, installed with pip when missing;
# skipped with a message when it cannot be). A crash fails the run and leaves
# the input in BUILD_DIR/fuzz/artifacts/: fix the bug, add a unit test next to
# the code's other tests, and save the input under tests/fuzz/regressions/.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:?usage: tests/fuzz/run.sh BUILD_DIR}
PYTHON=${PYTHON:-python3}
SECONDS_PER_TARGET=${TRACKPOINT_FUZZ_SECONDS:-30}
WORK="$BUILD/fuzz"

rm -rf "$WORK/seeds"
mkdir -p "$WORK/artifacts"
"$PYTHON" tests/fuzz/make_seeds.py "$WORK/seeds" > /dev/null
COMMON=(-timeout=10 -rss_limit_mb=2048 -artifact_prefix="$WORK/artifacts/")

# run_target NAME COMMAND...: replay the regressions, then fuzz.
run_target() {
  local name=$1
  shift
  local corpus="$WORK/corpus/$name" log="$WORK/$name.log"
  mkdir -p "$corpus"
  local saved=()
  if [ -d "tests/fuzz/regressions/$name" ]; then
    mapfile -t saved < <(find "tests/fuzz/regressions/$name" -type f | sort)
  fi
  if [ "${#saved[@]}" -gt 0 ] &&
     ! "$@" "${COMMON[@]}" "${saved[@]}" > "$log.regressions" 2>&1; then
    tail -40 "$log.regressions"
    echo "fuzz $name: FAILED: a saved regression input (tests/fuzz/regressions/$name) fails again"
    return 1
  fi
  if ! "$@" "${COMMON[@]}" -max_len=16384 -print_final_stats=1 \
       -max_total_time="$SECONDS_PER_TARGET" "$corpus" "$WORK/seeds/$name" > "$log" 2>&1; then
    tail -60 "$log"
    echo "fuzz $name: FAILED: crash input in $WORK/artifacts/ (log: $log)"
    return 1
  fi
  local runs
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  echo "fuzz $name: ${runs:-?} executions in ${SECONDS_PER_TARGET} s, ${#saved[@]} regression inputs replayed, no crash"
}

status=0
for target in table bundle_proto object_graph bundle_reader; do
  binary="$BUILD/tests/fuzz/${target}_fuzzer"
  if [ ! -x "$binary" ]; then
    echo "fuzz $target: FAILED: $binary was not built (TRACKPOINT_BUILD_FUZZERS=ON?)"
    status=1
    continue
  fi
  run_target "$target" "$binary" || status=1
done

if "$PYTHON" -c "import atheris" 2> /dev/null ||
   "$PYTHON" -m pip install --quiet atheris > /dev/null 2>&1; then
  run_target state_file "$PYTHON" tests/fuzz/state_file_fuzzer.py || status=1
else
  echo "fuzz state_file: SKIPPED: atheris is not installed and 'pip install atheris' failed"
fi
exit "$status"
