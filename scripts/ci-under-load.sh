#!/usr/bin/env bash
# Runs the test suite (or CI) several times in a row while a bounded CPU load keeps every core busy, as on
# the shared CI machine: a test that depends on wall-clock speed fails here first.
#
#   bash scripts/ci-under-load.sh [--runs N] [--burners N] [--max-seconds S] [--ci] [--log FILE]
#
#   --runs N         consecutive runs; stops at the first failure (default 3)
#   --burners N      busy-loop processes beside the tests (default: the number of cores)
#   --max-seconds S  each burner ends by itself after S seconds, whatever happens to this script (default 5400)
#   --ci             run `bash .ci/run` instead of `CALLSHEET_REQUIRE_SERVER=1 npm test`
#   --log FILE       append each run's full output to FILE (default: a temporary file, named at the end)
#
# Exits 0 only when every run passed. Prints one line per run: result, duration, load averages.
set -uo pipefail

RUNS=3
BURNERS=$(nproc)
MAX_SECONDS=5400
USE_CI=0
LOG=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --burners) BURNERS=$2; shift 2 ;;
    --max-seconds) MAX_SECONDS=$2; shift 2 ;;
    --ci) USE_CI=1; shift ;;
    --log) LOG=$2; shift 2 ;;
    *) echo "unknown option: $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
[ -n "$LOG" ] || LOG=$(mktemp /tmp/ci-under-load.XXXXXX.log)

cd "$(dirname "${BASH_SOURCE[0]}")/.."

burner_pids=()
stop_burners() {
  for pid in "${burner_pids[@]}"; do kill "$pid" 2>/dev/null; done
  wait "${burner_pids[@]}" 2>/dev/null
  burner_pids=()
}
trap stop_burners EXIT INT TERM

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

for _ in $(seq 1 "$BURNERS"); do
  timeout "$MAX_SECONDS" sh -c 'while :; do :; done' &
  burner_pids+=($!)
done
echo "[under-load] $BURNERS busy loops on $(nproc) cores (each ends by itself after ${MAX_SECONDS}s); log: $LOG"
sleep 5

passed=0
for run in $(seq 1 "$RUNS"); do
  before=$(loadavg)
  started=$SECONDS
  out="$LOG.run$run"
  if [ "$USE_CI" = 1 ]; then
    CI=true bash .ci/run >"$out" 2>&1
  else
    CALLSHEET_REQUIRE_SERVER=1 npm test >"$out" 2>&1
  fi
  status=$?
  summary=$(grep -E '^tests: [0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
  cat "$out" >>"$LOG" && rm -f "$out"
  echo "[under-load] run $run/$RUNS: $([ $status -eq 0 ] && echo PASSED || echo "FAILED (exit $status)") in $((SECONDS - started)) s; ${summary:-no test summary}; load before $before, after $(loadavg)"
  [ $status -eq 0 ] || break
  passed=$((passed + 1))
done

stop_burners
echo "[under-load] $passed of $RUNS runs passed in a row with $BURNERS busy loops on $(nproc) cores"
[ "$passed" -eq "$RUNS" ]
