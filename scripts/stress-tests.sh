#!/usr/bin/env bash
# Runs the end-to-end and fault suites N times in a row (default 10) while both cores are kept
# busy by stress-ng, and reports each run's result: a test that fails on a loaded machine is a
# bug (a timer margin too tight, a sleep used as synchronisation). Not part of .ci/run.
#   scripts/stress-tests.sh [N] [ctest -R regex]   e.g. scripts/stress-tests.sh 10 'e2e/'
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
filter=${2:-'^(e2e|faults)/'}
jobs=$(nproc 2>/dev/null || echo 2)

scripts/install-deps.sh
if ! command -v stress-ng >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends stress-ng >/dev/null
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSBRIDGE_WERROR=ON >/dev/null
cmake --build build -j"$jobs" >/dev/null

stress-ng --cpu "$jobs" --cpu-method all --quiet &
load=$!
trap 'kill "$load" 2>/dev/null; wait "$load" 2>/dev/null || true' EXIT

failed_runs=0
logs=$(mktemp -d)
for ((i = 1; i <= runs; i++)); do
  log="$logs/run-$i.log"
  started=$(date +%s)
  if (cd build && ctest -j"$jobs" -R "$filter" --output-on-failure) >"$log" 2>&1; then
    result=passed
  else
    result=FAILED
    failed_runs=$((failed_runs + 1))
  fi
  summary=$(grep -E 'tests passed|tests failed' "$log" | tail -n 1)
  echo "run $i/$runs: $result in $(($(date +%s) - started)) s: $summary"
  grep -E '^\s+[0-9]+ - .*\((Failed|Timeout)\)' "$log" || true
done
echo "stress: $((runs - failed_runs))/$runs runs passed under stress-ng --cpu $jobs (logs: $logs)"
[ "$failed_runs" -eq 0 ]
