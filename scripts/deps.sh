#!/usr/bin/env bash
# deps.sh - install what voice-ws needs to build, run and test on Debian 12.
# Idempotent and quiet when everything is already there. Needs root (or sudo).
set -euo pipefail

PKGS=(build-essential cmake pkg-config libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libjansson-dev
      libcurl4-openssl-dev libsqlite3-dev libmariadb-dev mariadb-server
      libssl-dev libcmocka-dev libspeexdsp-dev curl ca-certificates nodejs npm)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs may come from elsewhere on the image (node 20 preinstalled); accept any node >= 18.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Test peers (stand-ins for Twilio, OpenAI, Gemini, AWS) are Node programs; their
# npm packages are pinned in tests/peers/package-lock.json.
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ -f "$here/tests/peers/package.json" ] && [ ! -d "$here/tests/peers/node_modules" ]; then
  echo "deps: installing test peers (npm ci)"
  (cd "$here/tests/peers" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
