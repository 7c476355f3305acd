#!/bin/sh
# Make sure the Debian packages gemma4c needs to build and test are installed.
# As root it installs what is missing (apt-get); otherwise it prints the exact command and fails.
set -eu
PKGS="gcc clang make cmake pkg-config libcjson-dev libjpeg62-turbo-dev libpng-dev libmicrohttpd-dev npm"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "gemma4c: installing:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends $missing >&2
else
  echo "gemma4c: missing Debian packages; run:  sudo apt-get install -y$missing" >&2
  exit 1
fi
