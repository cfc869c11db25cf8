#!/usr/bin/env bash
# Installs what wsbridge needs to build and test, idempotently: Debian packages, then the
# pinned Node.js peers of tests/e2e (npm ci). Quiet unless something fails.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-dev
  libevent-dev libssl-dev openssl libspdlog-dev catch2 libtomlplusplus-dev libsimdjson-dev
  libhttp-parser-dev libhiredis-dev zlib1g-dev redis-server chromium nodejs npm
)

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# node/npm may come from outside Debian; only ask apt for them when absent.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]}"

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for dir in tests/e2e examples; do
  if [ -f "$dir/package-lock.json" ]; then
    stamp="$dir/node_modules/.wsbridge-lock"
    if ! cmp -s "$dir/package-lock.json" "$stamp" 2>/dev/null; then
      echo "npm ci in $dir"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
      cp "$dir/package-lock.json" "$stamp"
    fi
  fi
done
