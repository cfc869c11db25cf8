#!/usr/bin/env bash
# The differential test of wsbridge's Socket.IO / Engine.IO decoders against the real JS parsers,
# long: N cases per mode (5 modes; default 2,000,000, i.e. 10 million in all). CI runs 100,000
# per mode (ctest parity/decoders_100k). Usage: scripts/parity.sh [N] [seed]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target parity_cli >/dev/null
node tests/parity/parity.js --cli build/tests/parity/parity_cli --cases "${1:-2000000}" \
  --seed "${2:-$(date +%s)}"
