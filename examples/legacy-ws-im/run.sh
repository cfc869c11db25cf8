#!/usr/bin/env bash
# One command for the legacy-ws-im example: builds wsbridge if needed, starts the raw `ws` IM
# server (which also serves the page) and wsbridge in front of it, and prints what to open and
# run. Ctrl-C stops both.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# Every ${NAME} in wsbridge.toml must exist in the environment: defaults for the demo.
export WSBRIDGE_PORT="${WSBRIDGE_PORT:-8080}"
export IM_SERVER_PORT="${IM_SERVER_PORT:-9000}"

bin="${WSBRIDGE_BIN:-$root/build/wsbridge}"   # WSBRIDGE_BIN: use another build
if [[ ! -x "$bin" ]]; then
  cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$root/build" -j"$(nproc 2>/dev/null || echo 2)" --target wsbridge
fi
[[ -d "$root/examples/node_modules/socket.io-client" ]] || (cd "$root/examples" && npm ci --no-audit)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

PORT="$IM_SERVER_PORT" WSBRIDGE_WS="ws://127.0.0.1:$WSBRIDGE_PORT/im" node "$here/server.js" &
pids+=($!)
"$bin" run -c "$here/wsbridge.toml" &
pids+=($!)

cat <<MSG

  legacy IM server on 127.0.0.1:$IM_SERVER_PORT, wsbridge on 127.0.0.1:$WSBRIDGE_PORT.

  Raw WebSocket users: open http://127.0.0.1:$IM_SERVER_PORT/?user=alice and
  http://127.0.0.1:$IM_SERVER_PORT/?user=bob, press connect (they reach ws://127.0.0.1:$WSBRIDGE_PORT/im).
  A socket.io-client user in the same chat, from a terminal (in $here):

    node sio-client.js --url http://127.0.0.1:$WSBRIDGE_PORT --user carol

  Ctrl-C stops both.

MSG
wait -n "${pids[@]}"
