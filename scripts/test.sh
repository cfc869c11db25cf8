#!/usr/bin/env bash
# Installs what is missing, builds wsbridge three ways and runs every test:
#   1. ASan+UBSan build: unit tests, fuzz corpus replays and end-to-end tests;
#   2. clang libFuzzer build: a short run of every fuzz target;
#   3. release build with -Werror: the whole suite (its ctest summary is printed last).
# Usage: scripts/test.sh [--quick]   (--quick: only step 3)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
quick=0
[ "${1:-}" = "--quick" ] && quick=1
jobs=$(nproc 2>/dev/null || echo 2)
fuzz_seconds=${WSB_FUZZ_SECONDS:-20}

scripts/install-deps.sh

build() {  # dir, targets... : quiet unless it fails
  local dir=$1 log
  shift
  log=$(mktemp)
  if ! cmake --build "$dir" -j"$jobs" "$@" >"$log" 2>&1; then
    grep -E "error|FAILED" -A5 "$log" | head -n 60
    echo "build in $dir failed (full log: $log)"
    exit 1
  fi
  rm -f "$log"
}

configure() {  # dir, extra cmake args...
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSBRIDGE_WERROR=ON "$@" >/dev/null
}

if [ $quick = 0 ]; then
  echo "== ASan+UBSan build"
  configure build-asan -DWSBRIDGE_SANITIZE=ON
  build build-asan
  echo "== ASan+UBSan tests"
  (cd build-asan && E2E_MESSAGES=1000 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest -j"$jobs" --output-on-failure -LE heavy) | tail -n 25

  if command -v clang++ >/dev/null; then
    echo "== libFuzzer targets (${fuzz_seconds}s each)"
    CC=clang CXX=clang++ configure build-fuzz -DWSBRIDGE_FUZZ=ON -DWSBRIDGE_E2E=OFF
    build build-fuzz --target $(cd build-fuzz && ninja -t targets all | grep -o '^[a-z0-9_]*_fuzz:' | tr -d ':' | sort -u | tr '\n' ' ')
    for fuzzer in build-fuzz/tests/fuzz/*_fuzz; do
      name=$(basename "$fuzzer" _fuzz)
      work=$(mktemp -d)
      cp -r tests/fuzz/corpus/"$name"/. "$work"/ 2>/dev/null || true
      if ! (cd "$work" && "$root/$fuzzer" -max_total_time="$fuzz_seconds" -print_final_stats=0 \
              "$work" >"$work/log" 2>&1); then
        # A finding is printed and kept, not fatal by default: a random short run must not make
        # CI flaky. Fix it, then add the input to the corpus (it replays as a test above).
        # WSB_FUZZ_STRICT=1 makes findings fatal.
        mkdir -p build-fuzz/findings
        cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* build-fuzz/findings/ 2>/dev/null || true
        grep -E "SUMMARY|ERROR|Test unit written" "$work/log" | head -n 5
        echo "FUZZ FINDING in $name: reproducer kept in build-fuzz/findings/"
        if [ "${WSB_FUZZ_STRICT:-0}" = 1 ]; then exit 1; fi
      fi
      echo "fuzz $name: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/log" || grep -o '#[0-9]* *DONE.*' "$work/log" | tail -1 || echo ok)"
      rm -rf "$work"
    done
  fi
fi

echo "== release build (-Werror)"
configure build
build build
echo "== tests"
cd build
status=0
ctest -j"$jobs" --output-on-failure | tee ctest.log || status=$?
if [ "$status" != 0 ] && [ -f Testing/Temporary/LastTestsFailed.log ]; then
  # The failures' own output again, last, where a CI excerpt (the log's tail) shows it; then the
  # summary line once more, so it stays the last thing printed.
  cut -d: -f2- Testing/Temporary/LastTestsFailed.log | while read -r name; do
    echo "== output of $name (tail)"
    awk -v t="Testing: $name" '$0 ~ t"$" {on=1} on && /^<end of output>/ {exit} on' \
        Testing/Temporary/LastTest.log | tail -n 40
  done
  grep -E "tests passed|tests failed" ctest.log | tail -n 1
fi
exit "$status"
