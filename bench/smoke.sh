#!/usr/bin/env bash
# bench/smoke: a few seconds of wsbench throughput against echo-backend, directly and through a
# wsbridge relay when that binary is built; passes when messages flowed and nothing failed.
# Usage: smoke.sh WSBENCH ECHO_BACKEND [WSBRIDGE]
set -euo pipefail
wsbench=$1
backend=$2
wsbridge=${3:-}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits up to 5 s for `pattern` in `file`, or for `port` to accept, while `pid` lives.
wait_for() {  # pid kind arg
  for _ in $(seq 1 100); do
    kill -0 "$1" 2>/dev/null || return 1
    case $2 in
      file) grep -q "listening on" "$3" && return 0 ;;
      port) listening "$3" && return 0 ;;
    esac
    sleep 0.05
  done
  return 1
}

measure() {  # name url
  local out
  if ! out=$("$wsbench" throughput -c 4 -d 4 -s 64 -w 0.5 -t 2 --json "$2" 2>&1); then
    echo "$out"
    echo "FAIL: $1: wsbench exited non-zero"
    exit 1
  fi
  echo "$1: $(head -n 1 <<<"$out")"
  if ! grep -q '"ok":true' <<<"$out" || grep -q '"round_trips":0,' <<<"$out"; then
    echo "FAIL: $1: no messages flowed"
    exit 1
  fi
}

"$backend" --port 0 >"$work/backend.out" 2>&1 &
pids+=($!)
if ! wait_for "${pids[0]}" file "$work/backend.out"; then
  cat "$work/backend.out"
  echo "FAIL: echo-backend did not start"
  exit 1
fi
backend_port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$work/backend.out")
measure direct "ws://127.0.0.1:$backend_port/"

if [ -n "$wsbridge" ] && [ -x "$wsbridge" ]; then
  started=0
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 10000))
    listening "$port" && continue
    cat >"$work/wsbridge.toml" <<TOML
[runtime]
workers = 1
log_level = "warn"

[[listener]]
name = "public"
address = "127.0.0.1:$port"

[[route]]
path = "/"
downstream = "websocket"
cluster = "echo"

[cluster.echo]
protocol = "websocket"
endpoints = ["127.0.0.1:$backend_port"]
TOML
    "$wsbridge" run -c "$work/wsbridge.toml" >"$work/wsbridge.log" 2>&1 &
    pid=$!
    if wait_for "$pid" port "$port"; then
      pids+=("$pid")
      started=1
      break
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [ $started = 1 ] || { cat "$work/wsbridge.log"; echo "FAIL: wsbridge did not start"; exit 1; }
  measure wsbridge "ws://127.0.0.1:$port/"
else
  echo "wsbridge: not built, skipped"
fi
echo "bench smoke: ok"
