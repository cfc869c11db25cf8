#!/usr/bin/env bash
# One command for the mini-program voice example: builds wsbridge if needed, starts the socket.io
# voice server and wsbridge in front of it, and prints the two clients to run. Ctrl-C stops both.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# Every ${NAME} in wsbridge.toml must exist in the environment: defaults for the demo.
export WSBRIDGE_PORT="${WSBRIDGE_PORT:-8080}"
export VOICE_SERVER_PORT="${VOICE_SERVER_PORT:-3000}"
export JWT_SECRET="${JWT_SECRET:-miniapp-voice-demo-secret}"
export VOICE_GATEWAY_KEY="${VOICE_GATEWAY_KEY:-miniapp-voice-gateway-key}"

bin="$root/build/wsbridge"
if [[ ! -x "$bin" ]]; then
  cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$root/build" -j"$(nproc 2>/dev/null || echo 2)" --target wsbridge
fi
[[ -d "$root/examples/node_modules/socket.io" ]] || (cd "$root/examples" && npm ci --no-audit)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

PORT="$VOICE_SERVER_PORT" node "$here/server.js" &
pids+=($!)
"$bin" run -c "$here/wsbridge.toml" &
pids+=($!)

base="ws://127.0.0.1:$WSBRIDGE_PORT"
cat <<MSG

  socket.io voice server on 127.0.0.1:$VOICE_SERVER_PORT (namespace /realtime-voice),
  wsbridge on $base. In another terminal (from $here):

    # (a) hand-rolled Engine.IO client through the pass-through route /socket.io/
    node client-eio.js --base $base --drop-after 3
    # (b) envelope client through the translate-up route /voice?token=JWT
    node client-envelope.js --base $base --drop-after 3 --ack
    # a token wsbridge refuses (403 before the server sees anything):
    node client-envelope.js --base $base --token not.a.jwt

  --drop-after 3 drops the network after the third chunk to show the reconnect.
  Ctrl-C stops both.

MSG
wait -n "${pids[@]}"
