#!/bin/sh
# gemma4c synth end to end: the tiny preset writes a checkpoint that loads and generates (f32 and bf16), the real
# presets' parameter counts match spec §1 (dry run only: no big files), and bad flags fail with clear messages.
# usage: test_synth.sh GEMMA4C
set -u
G=$1
. "$(dirname "$0")/../lib.sh"
unset G4C_TOKENIZER_JSON

for dt in f32 bf16; do
  M=$T/tiny-$dt
  if "$G" synth --preset tiny --dtype $dt --out "$M" >"$T/out" 2>"$T/err"; then ok "synth tiny $dt"; else bad "synth tiny $dt: $(cat "$T/err")"; fi
  for f in config.json generation_config.json processor_config.json model.safetensors; do
    [ -s "$M/$f" ] || bad "tiny $dt: $f missing"
  done
  [ -z "$(ls "$M" | grep '\.tmp$')" ] && ok "tiny $dt: no temporary files left" || bad "tiny $dt: temporary files left"
  grep -q "tokenizer.json" "$T/err" && ok "tiny $dt: warns about the missing tokenizer" || bad "tiny $dt: no tokenizer warning"
  size=$(wc -c <"$M/model.safetensors")
  if [ $dt = bf16 ]; then max=50000000; else max=100000000; fi
  [ "$size" -lt $max ] && ok "tiny $dt: $size bytes" || bad "tiny $dt: $size bytes (limit $max)"
  "$G" info --model "$M" >"$T/info" 2>&1 && grep -q "vocab *262144" "$T/info" && grep -q "3 full *head_dim 64 *kv_heads 1" "$T/info" &&
    ok "tiny $dt: info" || bad "tiny $dt: info: $(cat "$T/info")"
  got=$("$G" generate --model "$M" --tokens 2,105,2364,107 -n 4 --temp 0 --print-ids -t 2 2>"$T/err")
  echo "$got" | grep -Eq '^[0-9]+(,[0-9]+){0,3}$' && ok "tiny $dt: generate ($got)" || bad "tiny $dt: generate: '$got' $(cat "$T/err")"
  eval "ids_$dt=\$got"
done
# same seed, same weights whatever the dtype: greedy ids agree (random weights, so only as a smoke check of values)
[ "$ids_f32" = "$ids_bf16" ] && ok "f32 and bf16 agree greedily" || echo "note f32 $ids_f32 vs bf16 $ids_bf16 (differ: rounding)"

# deterministic: the same seed gives the same bytes, another seed other bytes
"$G" synth --preset tiny --out "$T/again" >/dev/null 2>&1 && cmp -s "$T/again/model.safetensors" "$T/tiny-bf16/model.safetensors" &&
  ok "deterministic" || bad "same seed, different file"
"$G" synth --preset tiny --out "$T/seed2" --seed 2 -t 1 >/dev/null 2>&1 && ! cmp -s "$T/seed2/model.safetensors" "$T/tiny-bf16/model.safetensors" &&
  ok "--seed changes the weights" || bad "--seed 2 gave the same file"
"$G" synth --preset tiny --out "$T/again" -t 1 >/dev/null 2>&1 && cmp -s "$T/again/model.safetensors" "$T/tiny-bf16/model.safetensors" &&
  ok "thread count does not change the values" || bad "-t 1 gave other bytes"

# config.json: transformers' layout and the real special-token ids
C=$T/tiny-bf16/config.json
for needle in '"model_type": "gemma4"' '"boi_token_id": 255999' '"eoi_token_id": 258882' '"image_token_id": 258880' \
              '"video_token_id": 258884' '"audio_token_id": 258881' '"boa_token_id": 256000' '"eoa_token_index": 258883' \
              '"per_layer_config": {' '"rope_type": "proportional"' '"position_embedding_size": 10240' '"standardize": true' \
              '"rms_norm_eps": 1e-06'; do
  grep -qF "$needle" "$C" || bad "config.json lacks $needle"
done
ok "config.json fields"
grep -q '"max_soft_tokens": 280' "$T/tiny-bf16/processor_config.json" && grep -q '"top_k": 64' "$T/tiny-bf16/generation_config.json" &&
  ok "processor and generation configs" || bad "processor/generation config"

# --no-vision: no vision tensors, vision_config null, still loads
"$G" synth --preset tiny --no-vision --out "$T/nv" >/dev/null 2>&1 && grep -q '"vision_config": null' "$T/nv/config.json" &&
  "$G" generate --model "$T/nv" --tokens 2,105 -n 1 --temp 0 --print-ids >/dev/null 2>&1 && ok "--no-vision" || bad "--no-vision"

# --tokenizer copies the file and writes tokenizer_config.json
printf '{"model": {"type": "BPE"}}\n' >"$T/tok.json"
"$G" synth --preset tiny --out "$T/tk" --tokenizer "$T/tok.json" >/dev/null 2>"$T/err" && cmp -s "$T/tok.json" "$T/tk/tokenizer.json" &&
  [ -s "$T/tk/tokenizer_config.json" ] && ! grep -q warning "$T/err" && ok "--tokenizer" || bad "--tokenizer: $(cat "$T/err")"
G4C_TOKENIZER_JSON=$T/tok.json "$G" synth --preset tiny --out "$T/tk2" >/dev/null 2>&1 && cmp -s "$T/tok.json" "$T/tk2/tokenizer.json" &&
  ok "G4C_TOKENIZER_JSON" || bad "G4C_TOKENIZER_JSON not used"

# parameter counts of the real presets (spec §1): dry run, exact values, and the published sizes they imply
param() { "$G" synth --preset "$1" --dry-run $2 | awk -v k="$3" '$1 == k { gsub(",", "", $2); print $2 }'; }
check() { # name, got, lo, hi
  if [ -n "$2" ] && awk -v g="$2" -v lo="$3" -v hi="$4" 'BEGIN { exit !(g >= lo && g <= hi) }'; then ok "$1 = $2"
  else bad "$1 = '$2' not in [$3, $4]"; fi
}
check "e2b params (text+vision; +0.3 B audio = 5.1 B)" "$(param e2b "" params)" 4.75e9 4.85e9
check "e2b text" "$(param e2b "" text)" 4.6e9 4.65e9
check "e2b vision (~151 M encoder + tables)" "$(param e2b "" vision)" 1.5e8 1.7e8
check "e4b params (+0.3 B audio = 8 B)" "$(param e4b "" params)" 7.55e9 7.7e9
check "26b-a4b text (25.2 B)" "$(param 26b-a4b "" text)" 25.15e9 25.3e9
check "26b-a4b active (3.8 B)" "$(param 26b-a4b "" active)" 3.75e9 3.9e9
check "26b-a4b vision (~550 M)" "$(param 26b-a4b "" vision)" 5.4e8 5.8e8
check "31b text (30.7 B)" "$(param 31b "" text)" 30.65e9 30.75e9
check "31b vision (~550 M)" "$(param 31b "" vision)" 5.4e8 5.8e8
check "31b --no-vision params" "$(param 31b --no-vision params)" 30.65e9 30.75e9
check "31b bf16 bytes" "$(param 31b "" bytes)" 61.4e9 62.6e9
check "31b f32 bytes" "$(param 31b "--dtype f32" bytes)" 122.8e9 125.2e9
check "tiny params" "$(param tiny "" params)" 17e6 18e6
"$G" synth --preset e2b --dry-run --out "$T/dry" >/dev/null 2>&1 && [ ! -e "$T/dry" ] && ok "dry run writes nothing" ||
  bad "dry run wrote files"

# --format gguf: the same bytes as synth followed by quantize (the directory names match: general.name is its name)
mkdir -p "$T/g1" "$T/g2"
if "$G" synth --preset tiny --out "$T/g1/tg" --format gguf --type q8_0 >/dev/null 2>&1 &&
   "$G" synth --preset tiny --out "$T/g2/tg" >/dev/null 2>&1 &&
   "$G" quantize "$T/g2/tg" "$T/g2/tg/model.gguf" --type q8_0 --mmproj "$T/g2/tg/mmproj.gguf" >/dev/null 2>&1 &&
   cmp -s "$T/g1/tg/model.gguf" "$T/g2/tg/model.gguf" && cmp -s "$T/g1/tg/mmproj.gguf" "$T/g2/tg/mmproj.gguf" &&
   [ ! -e "$T/g1/tg/model.safetensors" ]; then
  ok "synth --format gguf == synth + quantize, byte for byte"
else
  bad "synth --format gguf differs from synth + quantize"
fi
"$G" generate -m "$T/g1/tg/model.gguf" --tokens 2,100,200 -n 3 >/dev/null 2>&1 && ok "synthesized GGUF generates" ||
  bad "synthesized GGUF does not generate"
# its directory (config.json beside model.gguf + mmproj.gguf, no safetensors) loads as that GGUF
"$G" generate -m "$T/g1/tg" --tokens 2,100,200 -n 3 >/dev/null 2>&1 && ok "synthesized GGUF directory generates" ||
  bad "-m on synth --format gguf's directory fails"

# errors: non-zero exit and a message naming the problem, nothing left behind
expect_fail "unknown preset" "unknown preset 'e3b'" "$G" synth --preset e3b --out "$T/x"
expect_fail "missing --preset" "--preset is required" "$G" synth --out "$T/x"
expect_fail "missing --out" "--out DIR is required" "$G" synth --preset tiny
expect_fail "bad dtype" "--dtype must be bf16 or f32" "$G" synth --preset tiny --dtype f16 --out "$T/x"
expect_fail "bad seed" "--seed needs" "$G" synth --preset tiny --seed -3 --out "$T/x"
expect_fail "bad format" "--format must be safetensors or gguf" "$G" synth --preset tiny --format npz --out "$T/x"
expect_fail "bad type" "unknown --type 'q3'" "$G" synth --preset tiny --format gguf --type q3 --out "$T/x"
expect_fail "unknown flag" "unknown option" "$G" synth --preset tiny --out "$T/x" --bogus
expect_fail "flag without value" "needs a value" "$G" synth --preset tiny --out
: >"$T/file"
expect_fail "unwritable out dir" "cannot create the output directory" "$G" synth --preset tiny --out "$T/file/sub"
expect_fail "missing tokenizer" "cannot read tokenizer" "$G" synth --preset tiny --out "$T/y" --tokenizer "$T/nope.json"
[ ! -e "$T/x" ] && [ -z "$(ls "$T/y" 2>/dev/null)" ] && ok "failures leave nothing behind" || bad "files left after a failure"
"$G" synth --help | grep -q -- "--preset" && ok "help" || bad "help"
"$G" --help | grep -q synth && ok "listed in gemma4c --help" || bad "not in gemma4c --help"

finish
