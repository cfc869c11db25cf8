#!/usr/bin/env bash
# One command for the chat-rooms example: builds wsbridge if needed, starts a throwaway Redis, two
# chat server processes sharing rooms through it, the page's web server and wsbridge in front of
# both servers, and prints what to open. Ctrl-C stops them all.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# Every ${NAME} in wsbridge.toml must exist in the environment: defaults for the demo.
export WSBRIDGE_PORT="${WSBRIDGE_PORT:-8080}"
export CHAT_PORT_A="${CHAT_PORT_A:-3001}"
export CHAT_PORT_B="${CHAT_PORT_B:-3002}"
export JWT_SECRET="${JWT_SECRET:-chat-rooms-demo-secret}"
REDIS_PORT="${REDIS_PORT:-6390}"
WEB_PORT="${WEB_PORT:-8000}"

bin="${WSBRIDGE_BIN:-$root/build/wsbridge}"   # WSBRIDGE_BIN: use another build
if [[ ! -x "$bin" ]]; then
  cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$root/build" -j"$(nproc 2>/dev/null || echo 2)" --target wsbridge
fi
[[ -d "$root/examples/node_modules/@socket.io/redis-adapter" ]] ||
  (cd "$root/examples" && npm ci --no-audit)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# Loopback only, nothing written to disk: the adapter's pub/sub needs no persistence.
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no >/dev/null &
pids+=($!)
for _ in {1..50}; do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$REDIS_PORT" ping >/dev/null || { echo "redis did not start on $REDIS_PORT" >&2; exit 1; }

page="http://127.0.0.1:$WEB_PORT"
for s in A B; do
  port_var="CHAT_PORT_$s"
  PORT="${!port_var}" NAME="${s,,}" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" PAGE_ORIGIN="$page" \
    node "$here/server.js" &
  pids+=($!)
done
PORT="$WEB_PORT" WSBRIDGE_URL="http://127.0.0.1:$WSBRIDGE_PORT" node "$here/web.js" &
pids+=($!)
"$bin" run -c "$here/wsbridge.toml" &
pids+=($!)

cat <<MSG

  redis on 127.0.0.1:$REDIS_PORT, chat servers a and b on 127.0.0.1:$CHAT_PORT_A and :$CHAT_PORT_B,
  wsbridge on http://127.0.0.1:$WSBRIDGE_PORT (socket.io path /socket.io/).

  Open $page/ in two browser windows, log in as two users (say alice and bob),
  join the same room and chat; they land on different servers (the login line says which).

  Ctrl-C stops everything.

MSG
wait -n "${pids[@]}"
