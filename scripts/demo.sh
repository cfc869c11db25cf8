#!/usr/bin/env bash
# The first command of the README: installs what is missing, builds wsbridge, and runs it on its
# embedded default config (ws://127.0.0.1:8080/ -> ws://127.0.0.1:9000/) in front of the
# quickstart backend. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target wsbridge

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

node examples/quickstart/backend.js &
pids+=($!)
# Run from a directory without a wsbridge.toml, so the embedded default is what runs.
(cd examples/quickstart && exec ../../build/wsbridge run) &
pids+=($!)

cat <<MSG

  wsbridge is relaying ws://127.0.0.1:8080/ to the quickstart backend on 127.0.0.1:9000.
  Open http://127.0.0.1:9000/ in a browser (two tabs to chat), or in another terminal:
      node examples/quickstart/client.js
  Ctrl-C stops both.

MSG
wait -n "${pids[@]}"
