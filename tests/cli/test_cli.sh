#!/bin/sh
# CLI end to end: the oracle hooks reproduce the transformers reference, and bad input fails cleanly.
# usage: test_cli.sh GEMMA4C FIXTURES
set -u
G=$1
FIX=$2
. "$(dirname "$0")/../lib.sh"

ids() { python3 -c "import json,sys;print(','.join(map(str,json.load(open(sys.argv[1]))[sys.argv[2]])))" "$1" "$2" 2>/dev/null ||
        sed -n "s/.*\"$2\": \[\([^]]*\)\].*/\1/p" "$1" | tr -d ' '; }

for v in dense-f32 moe-bf16 e-f32; do
  prompt=$(ids "$FIX/ref/$v.json" prompt)
  want=$(ids "$FIX/ref/$v.json" greedy)
  got=$("$G" generate --model "$FIX/$v" --tokens "$prompt" --max-tokens 12 --temp 0 --print-ids --ignore-eos -t 2 2>/dev/null)
  [ "$got" = "$want" ] && ok "generate $v greedy" || bad "generate $v: got '$got' want '$want'"
done

prompt=$(ids "$FIX/ref/dense-f32.json" prompt)
if "$G" logits --model "$FIX/dense-f32" --tokens "$prompt" --out "$T/l.npy" -t 2 2>/dev/null &&
   cmp -s "$T/l.npy" "$FIX/ref/dense-f32.logits.npy"; then
  bad "logits: file identical to the reference (test cannot tell)"
elif [ -s "$T/l.npy" ] && [ "$(head -c 6 "$T/l.npy" | tail -c 5)" = "NUMPY" ]; then
  ok "logits writes .npy"
else
  bad "logits did not write an .npy"
fi

# the decode floor's numerator: info's weight bytes per token against an independent count from the headers
if command -v python3 >/dev/null; then
  for v in dense-f32 e-f32 moe-f32 moe-bf16; do
    want=$(python3 "$(dirname "$0")/token_bytes.py" "$FIX/$v")
    got=$("$G" info -m "$FIX/$v" 2>/dev/null | sed -n 's/^decode reads .*(\([0-9]*\) bytes).*/\1/p')
    [ -n "$want" ] && [ "$got" = "$want" ] && ok "info: $v reads $got weight bytes per token" ||
      bad "info: $v weight bytes per token: got '$got' want '$want'"
  done
fi
line=$("$G" bench -m "$FIX/dense-f32" -p 0 -n 4 -r 1 -o csv 2>/dev/null | grep ',tg4,')
echo "$line" | awk -F, '$9 == 0.0014 && $10 > 0 && $10 / ($5 * $9) > 0.98 && $10 / ($5 * $9) < 1.02' | grep -q . &&
  ok "bench csv: tg reads weights_gb_per_token x t/s" || bad "bench csv tg line: '$line'"
# the floor beside it: the machine's read rate, and the read rate over it
echo "$line" | awk -F, '$11 > 0.5 && $12 > 0 && $12 / ($10 / $11) > 0.98 && $12 / ($10 / $11) < 1.02' | grep -q . &&
  ok "bench csv: tg's fraction of the measured read rate" || bad "bench csv read rate: '$line'"

# errors: non-zero exit and a message naming the problem, no output file left behind
expect_fail "missing model dir" "config.json" "$G" generate --model "$T/nope" --tokens 2
expect_fail "token out of vocab" "outside the vocabulary" "$G" generate --model "$FIX/dense-f32" --tokens 2,99999
expect_fail "bad token list" "bad id" "$G" generate --model "$FIX/dense-f32" --tokens 2,x
expect_fail "unknown flag" "unknown option" "$G" generate --bogus
expect_fail "unknown command" "unknown command" "$G" frobnicate
expect_fail "logits needs --out" "--out" "$G" logits --model "$FIX/dense-f32" --tokens 2
expect_fail "logits unwritable out" "cannot create" "$G" logits --model "$FIX/dense-f32" --tokens 2 --out "$T/no/such/dir/l.npy"
[ -z "$(ls "$T/no" 2>/dev/null)" ] && ok "no partial file" || bad "partial file left"
"$G" info --model "$FIX/e-f32" | grep -q "shares kv" && ok "info" || bad "info"
"$G" --help | grep -q generate && ok "help" || bad "help"

# tokenize / detokenize: the small fixture tokenizer always; the real Gemma vocabulary when G4C_TOKENIZER_JSON is set
MINI="$FIX/tokenizer/mini.json"
got=$("$G" tokenize --tokenizer "$MINI" -p "abc hi" 2>&1)
[ "$got" = "4,8,15" ] && ok "tokenize" || bad "tokenize: got '$got' want '4,8,15'"
got=$("$G" tokenize --tokenizer "$MINI" --bos -p "<|turn>hi" 2>&1)
[ "$got" = "2,276,14" ] && ok "tokenize --bos, special token" || bad "tokenize --bos: got '$got' want '2,276,14'"
got=$("$G" tokenize --tokenizer "$MINI" --no-special -p "<|turn>hi" 2>&1)
[ "$got" = "80,144,136,137,134,130,82,14" ] && ok "tokenize --no-special" || bad "tokenize --no-special: got '$got'"
got=$("$G" detokenize --tokenizer "$MINI" --ids 2,276,9,15 2>&1)
[ "$got" = "<bos><|turn>abc hi" ] && ok "detokenize" || bad "detokenize: got '$got'"
got=$(printf '{"text":"abc hi"}\n\n{"text_hex":"ff"}\n' | "$G" tokenize --tokenizer "$MINI" --jsonl - 2>&1)
want='{"text": "abc hi", "ids": [4,8,15], "decoded": "abc hi"}
{"text_hex": "ff", "ids": [275], "decoded_hex": "ff"}'
[ "$got" = "$want" ] && ok "tokenize --jsonl" || bad "tokenize --jsonl: got '$got'"
printf '{"text":"a"}\n{"text": 5}\n' > "$T/bad.jsonl"
expect_fail "tokenize --jsonl malformed line" "bad.jsonl:2:" "$G" tokenize --tokenizer "$MINI" --jsonl "$T/bad.jsonl"
expect_fail "tokenize missing tokenizer" "cannot load the tokenizer: $T/none.json: cannot open" "$G" tokenize --tokenizer "$T/none.json" -p hi
expect_fail "tokenize -m without tokenizer.json" "dense-f32/tokenizer.json: cannot open" "$G" tokenize -m "$FIX/dense-f32" -p hi
expect_fail "tokenize needs a text" "give one of -p" "$G" tokenize --tokenizer "$MINI"
expect_fail "detokenize bad id" "bad id" "$G" detokenize --tokenizer "$MINI" --ids 1,x
expect_fail "detokenize id out of range" "outside the vocabulary" "$G" detokenize --tokenizer "$MINI" --ids 1,279
"$G" tokenize --help | grep -q -- "--jsonl" && "$G" detokenize --help | grep -q -- "--ids" && ok "tokenize/detokenize help" ||
  bad "tokenize/detokenize help"
if [ -n "${G4C_TOKENIZER_JSON:-}" ]; then
  got=$("$G" tokenize --tokenizer "$G4C_TOKENIZER_JSON" -p "Hello world" 2>&1)
  [ "$got" = "9259,1902" ] && ok "tokenize Hello world (Gemma)" || bad "tokenize Hello world: got '$got' want '9259,1902'"
  got=$("$G" tokenize --tokenizer "$G4C_TOKENIZER_JSON" --bos -p "<|turn>user
Hi<turn|>" 2>&1)
  [ "$got" = "2,105,2364,107,10979,106" ] && ok "tokenize Gemma 4 specials" || bad "tokenize Gemma 4 specials: got '$got'"
  got=$("$G" detokenize --tokenizer "$G4C_TOKENIZER_JSON" --ids 9259,1902 2>&1)
  [ "$got" = "Hello world" ] && ok "detokenize Hello world (Gemma)" || bad "detokenize Hello world: got '$got'"
fi

# preprocess: the image pipeline as the model sees it
if "$G" preprocess --image "$FIX/images/chelsea.png" --image-budget 70 --out "$T/p.npy" --positions-out "$T/pos.npy" 2>"$T/pp.err" &&
   grep -q "540 patches, 451x300 -> 480x288, 60 soft tokens" "$T/pp.err" &&
   head -c 128 "$T/p.npy" | grep -q "'descr': '<f4', 'fortran_order': False, 'shape': (540, 768)" &&
   head -c 128 "$T/pos.npy" | grep -q "'descr': '<i4', 'fortran_order': False, 'shape': (540, 2)" &&
   [ "$(wc -c <"$T/p.npy")" -eq $((128 + 540 * 768 * 4)) ] && [ "$(wc -c <"$T/pos.npy")" -eq $((128 + 540 * 8)) ]; then
  ok "preprocess writes patches + positions"; else bad "preprocess: $(cat "$T/pp.err")"; fi
cp "$FIX/images/coffee.jpg" "$T/coffee.png"
"$G" preprocess --image "$T/coffee.png" --out "$T/c.npy" 2>&1 | grep -q "2340 patches, 600x400 -> 960x624, 260 soft tokens" &&
  ok "preprocess: format from the bytes, default budget 280" || bad "preprocess coffee.jpg named .png"
expect_fail "preprocess missing image" "nope.png: cannot open" "$G" preprocess --image "$T/nope.png" --out "$T/x.npy"
expect_fail "preprocess not an image" "not a PNG or JPEG" "$G" preprocess --image "$FIX/ref/img/chelsea_b70.json" --out "$T/x.npy"
head -c 5000 "$FIX/images/chelsea.png" >"$T/cut.png"
expect_fail "preprocess truncated png" "truncated PNG" "$G" preprocess --image "$T/cut.png" --out "$T/x.npy"
expect_fail "preprocess bad budget" "image-budget must be" "$G" preprocess --image "$FIX/images/chelsea.png" --image-budget 100 --out "$T/x.npy"
expect_fail "preprocess needs --out" "--out" "$G" preprocess --image "$FIX/images/chelsea.png"
[ ! -e "$T/x.npy" ] && ok "preprocess: no output on failure" || bad "preprocess left $T/x.npy"
"$G" preprocess --help | grep -q "image-budget" && ok "preprocess help" || bad "preprocess help"

# image hooks: soft tokens of one image; logits of a prompt with two images; a placeholder-count mismatch
MM=$(sed -n 's/.*"tokens": \[\([^]]*\)\].*/\1/p' "$FIX/ref/mm/dense-f32-w128.json" | tr -d ' ')
"$G" image-features --model "$FIX/dense-f32-w128" --image "$FIX/images/chelsea.png" --image-budget 70 --out "$T/f.npy" 2>/dev/null &&
  head -c 128 "$T/f.npy" | grep -q "'shape': (60, 64)" && ok "image-features" || bad "image-features"
"$G" logits --model "$FIX/dense-f32-w128" --tokens "$MM" --image "$FIX/images/chelsea.png" --image "$FIX/images/astronaut384.png" \
  --image-budget 70 --out "$T/lm.npy" 2>/dev/null && head -c 128 "$T/lm.npy" | grep -q "'shape': (144, 512)" &&
  ok "logits with two images" || bad "logits with two images"
expect_fail "logits image count mismatch" "124 image placeholder tokens but 60" "$G" logits --model "$FIX/dense-f32-w128" \
  --tokens "$MM" --image "$FIX/images/chelsea.png" --image-budget 70 --out "$T/lm2.npy"

# --mmproj FILE (llama.cpp's flag): a GGUF model and its vision projector in different folders. Without the flag there
# is no vision tower; with it the soft tokens equal the safetensors checkpoint's (F32 files: bit-identical). The
# default (the one *mmproj*.gguf beside the model) still applies, the flag wins where two would be ambiguous.
mkdir -p "$T/ga" "$T/gb" "$T/gc"
"$G" quantize "$FIX/dense-f32-w128" "$T/ga/m.gguf" --type f32 --mmproj "$T/gb/v.gguf" >/dev/null 2>&1 ||
  bad "quantize with --mmproj"
expect_fail "GGUF without its mmproj: no vision" "needs its mmproj GGUF for images (--mmproj)" "$G" image-features \
  --model "$T/ga/m.gguf" --image "$FIX/images/chelsea.png" --image-budget 70 --out "$T/g0.npy"
"$G" image-features --model "$T/ga/m.gguf" --mmproj "$T/gb/v.gguf" --image "$FIX/images/chelsea.png" \
  --image-budget 70 --out "$T/g1.npy" 2>/dev/null && cmp -s "$T/g1.npy" "$T/f.npy" && ok "--mmproj: same soft tokens" ||
  bad "--mmproj: soft tokens differ from the safetensors checkpoint's"
cp "$T/ga/m.gguf" "$T/gc/m.gguf" && cp "$T/gb/v.gguf" "$T/gc/m-mmproj.gguf"
"$G" image-features --model "$T/gc/m.gguf" --image "$FIX/images/chelsea.png" --image-budget 70 --out "$T/g2.npy" \
  2>/dev/null && cmp -s "$T/g2.npy" "$T/f.npy" && ok "mmproj found beside the model" || bad "mmproj beside the model"
cp "$T/gb/v.gguf" "$T/gc/other-mmproj.gguf"
"$G" image-features --model "$T/gc/m.gguf" --image "$FIX/images/chelsea.png" --image-budget 70 --out "$T/g3.npy" \
  2>"$T/g3.err"; grep -q "several mmproj files" "$T/g3.err" && ok "two mmproj files: none guessed" ||
  bad "two mmproj files: $(cat "$T/g3.err")"
"$G" image-features -m "$T/gc/m.gguf" -mm "$T/gc/other-mmproj.gguf" --image "$FIX/images/chelsea.png" \
  --image-budget 70 --out "$T/g4.npy" 2>/dev/null && cmp -s "$T/g4.npy" "$T/f.npy" && ok "-mm picks one of two" ||
  bad "-mm picks one of two"
expect_fail "--mmproj missing file" "nope.gguf: cannot open" "$G" image-features --model "$T/ga/m.gguf" \
  --mmproj "$T/gb/nope.gguf" --image "$FIX/images/chelsea.png" --out "$T/g5.npy"
expect_fail "--mmproj with a safetensors checkpoint" "is not a GGUF model" "$G" image-features \
  --model "$FIX/dense-f32-w128" --mmproj "$T/gb/v.gguf" --image "$FIX/images/chelsea.png" --out "$T/g6.npy"
expect_fail "--mmproj needs a value" "--mmproj needs a value" "$G" run -m "$T/ga/m.gguf" -p hi --mmproj
for c in run serve eval perf bench; do
  "$G" $c --help 2>&1 | grep -q -- "--mmproj" && ok "$c --help names --mmproj" || bad "$c --help lacks --mmproj"
done
expect_fail "chat takes --mmproj (run's options)" "cannot load model" "$G" chat -m "$T/nope.gguf" --mmproj "$T/gb/v.gguf"

finish
