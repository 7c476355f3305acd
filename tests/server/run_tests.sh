#!/bin/sh
# gemma4c serve end to end (ctest -L server). Builds nothing: takes the gemma4c binary, makes a random-weight tiny
# model with `gemma4c synth` (real Gemma vocabulary: $G4C_TOKENIZER_JSON, else scripts/fetch-tokenizer.sh), installs
# the official openai npm client into tests/server/node_modules (npm install --no-save), then
#   1. starts `gemma4c serve` on 127.0.0.1 (a free port), runs test_api.mjs against it, stops it (SIGTERM, exit 0);
#   2. starts it again and runs the bounded load test (load_test.mjs), stops it.
# Usage: run_tests.sh GEMMA4C_BINARY [MODEL_DIR]      (exit 77 = skipped: no node/npm/tokenizer)
# Env: LOAD_N, LOAD_C, LOAD_BAD (load size), SERVE_SKIP_LOAD=1 (API tests only), LOAD_OUT (figures as JSON),
#      SERVE_WRAP (a command prefix for the server, e.g. for valgrind).
set -eu
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
command -v node >/dev/null 2>&1 || { echo "server tests: node is not installed; skipped"; exit 77; }
command -v npm >/dev/null 2>&1 || { echo "server tests: npm is not installed; skipped"; exit 77; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/g4c-serve.XXXXXX")
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -TERM "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

MODEL=${2:-}
if [ -z "$MODEL" ]; then
  TOK=${G4C_TOKENIZER_JSON:-}
  [ -n "$TOK" ] || TOK=$(sh "$ROOT/scripts/fetch-tokenizer.sh" 2>/dev/null) || true
  [ -n "$TOK" ] && [ -s "$TOK" ] || { echo "server tests: no tokenizer.json (set G4C_TOKENIZER_JSON); skipped"; exit 77; }
  MODEL="$WORK/tiny"
  "$BIN" synth --preset tiny --out "$MODEL" --tokenizer "$TOK" >/dev/null
fi

if [ ! -f "$HERE/node_modules/openai/package.json" ]; then
  echo "server tests: npm install --no-save openai" >&2
  (cd "$HERE" && npm install --no-save --no-package-lock --no-audit --no-fund openai >/dev/null 2>&1) || {
    echo "server tests: cannot install the openai npm package (registry unreachable?); skipped"; exit 77; }
fi

# start_server LOGFILE ARGS...: sets SERVER_PID and URL
start_server() {
  log=$1
  shift
  ${SERVE_WRAP:-} "$BIN" serve -m "$MODEL" --host 127.0.0.1 --port 0 "$@" 2>"$log" &
  SERVER_PID=$!
  i=0
  while :; do
    port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$log" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server did not start:"; cat "$log"; exit 1; }
    i=$((i + 1))
    [ $i -lt 600 ] || { echo "server did not start in 60 s:"; cat "$log"; exit 1; }
    sleep 0.1
  done
  URL="http://127.0.0.1:$port"
}
# stop_server LOGFILE: SIGTERM, the server must exit 0 within 60 s
stop_server() {
  kill -TERM "$SERVER_PID"
  i=0
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -ge 600 ]; then kill -KILL "$SERVER_PID"; echo "server did not stop in 60 s"; cat "$1"; exit 1; fi
    sleep 0.1
  done
  rc=0
  wait "$SERVER_PID" || rc=$?
  SERVER_PID=""
  [ "$rc" = 0 ] || { echo "server exited with $rc:"; tail -n 30 "$1"; exit 1; }
}

KEY="test-key-$$"
mkdir -p "$WORK/local"
status=0
start_server "$WORK/serve1.log" --api-key "$KEY" --queue 2 --max-body 1 --timeout 300 -c 8192 \
  --allow-local-files "$WORK/local"
echo "== API tests against $URL"
G4C_URL=$URL G4C_API_KEY=$KEY G4C_BIN=$BIN G4C_MODEL=$MODEL G4C_LOCAL_DIR=$WORK/local \
  node "$HERE/test_api.mjs" || status=1
stop_server "$WORK/serve1.log"

if [ "${SERVE_SKIP_LOAD:-0}" != 1 ]; then
  start_server "$WORK/serve2.log" --api-key "$KEY" --queue 64 --max-body 1 --timeout 300 -c 2048
  echo "== load test against $URL (pid $SERVER_PID)"
  G4C_URL=$URL G4C_API_KEY=$KEY G4C_SERVER_PID=$SERVER_PID node "$HERE/load_test.mjs" || status=1
  stop_server "$WORK/serve2.log"
fi
[ $status = 0 ] && echo "server tests passed" || echo "server tests FAILED"
exit $status
