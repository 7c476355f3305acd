#!/bin/sh
# CLI end to end: the oracle hooks reproduce the transformers reference, and bad input fails cleanly.
# usage: test_cli.sh GEMMA4C FIXTURES
set -u
G=$1
FIX=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

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

# errors: non-zero exit and a message naming the problem, no output file left behind
expect_fail() { # name, needle, command...
  name=$1; needle=$2; shift 2
  out=$("$@" 2>&1); rc=$?
  if [ $rc -ne 0 ] && echo "$out" | grep -q -- "$needle"; then ok "$name"; else bad "$name (rc=$rc: $out)"; fi
}
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

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
