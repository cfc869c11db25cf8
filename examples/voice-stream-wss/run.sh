#!/usr/bin/env bash
# One command for the wss:// voice stream example: builds wsbridge if needed, makes a demo CA and
# a server certificate (.certs/, gitignored), starts the plain ws:// backend and wsbridge
# terminating TLS in front of it, and prints the client to run. Ctrl-C stops both.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# Every ${NAME} in wsbridge.toml must exist in the environment: defaults for the demo.
export WSS_PORT="${WSS_PORT:-8443}"
export VOICE_BACKEND_PORT="${VOICE_BACKEND_PORT:-9300}"
export JWT_SECRET="${JWT_SECRET:-voice-stream-demo-secret}"
export CERT_DIR="${CERT_DIR:-$here/.certs}"

bin="$root/build/wsbridge"
if [[ ! -x "$bin" ]]; then
  cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$root/build" -j"$(nproc 2>/dev/null || echo 2)" --target wsbridge
fi
[[ -d "$root/examples/node_modules/ws" ]] || (cd "$root/examples" && npm ci --no-audit)
"$here/make-certs.sh" "$CERT_DIR"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

PORT="$VOICE_BACKEND_PORT" node "$here/backend.js" &
pids+=($!)
"$bin" run -c "$here/wsbridge.toml" &
pids+=($!)

url="wss://localhost:$WSS_PORT/api/realtime-voice/stream"
cat <<MSG

  backend (plain ws, loopback): ws://127.0.0.1:$VOICE_BACKEND_PORT/api/realtime-voice/stream
  wsbridge (TLS, token checked): $url?token=JWT
  In another terminal (from $here):

    node client.js --url $url --ca $CERT_DIR/ca.pem --drop-after 3
    node client.js --url $url --ca $CERT_DIR/ca.pem --token bad       # 403, logged by wsbridge
    node client.js --url $url                                         # CA not trusted
    node client.js --url ${url/wss:/ws:} --ca $CERT_DIR/ca.pem          # ws:// to a TLS port

  Other TLS clients: trust $CERT_DIR/ca.pem (e.g. NODE_EXTRA_CA_CERTS=$CERT_DIR/ca.pem).
  Ctrl-C stops both.

MSG
wait -n "${pids[@]}"
