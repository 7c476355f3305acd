#!/bin/sh
# gemma4c eval end to end with the tiny random model (gemma4c synth --preset tiny) on the built-in sample set, and
# kill-and-resume: SIGKILL mid-run, a torn last line, --resume, the same final results as an uninterrupted run.
# Needs the Gemma tokenizer (G4C_TOKENIZER_JSON, as scripts/test.sh exports); skipped (77) without it.
# usage: eval_model.sh GEMMA4C
set -u
G=$1
. "$(dirname "$0")/../lib.sh"
BG=""
cleanup() { [ -n "$BG" ] && kill -9 $BG 2>/dev/null; }
if [ -z "${G4C_TOKENIZER_JSON:-}" ] || [ ! -s "$G4C_TOKENIZER_JSON" ]; then
  echo "G4C_TOKENIZER_JSON is unset: skipped (G4C_TOKENIZER_JSON=\$(sh scripts/fetch-tokenizer.sh))"
  exit 77
fi
command -v python3 >/dev/null || { echo "python3 not found: skipped"; exit 77; }
M=$T/tiny
"$G" synth --preset tiny --out "$M" --tokenizer "$G4C_TOKENIZER_JSON" >/dev/null 2>"$T/err" || { bad "synth: $(cat "$T/err")"; exit 1; }
val() { python3 -c "import json,sys;print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
# the per-sample records without their timings
records() { python3 -c "import json,sys
for l in open(sys.argv[1]):
    r=json.loads(l)
    for k in ('time_ms','tok_s'): r.pop(k,None)
    print(json.dumps(r,sort_keys=True))" "$1"; }

# end to end: the whole VQA set, COCO with the answer capped (random weights never stop by themselves)
if "$G" eval vqa -m "$M" --out "$T/vqa" --image-budget 70 -t 2 >"$T/out" 2>"$T/err"; then
  ok "eval vqa -m tiny"
  [ "$(val "$T/vqa/metrics.json" n)" = 13 ] && ok "13 questions scored" || bad "n"
  for f in metrics.json summary.md samples.jsonl results.jsonl run.json; do [ -s "$T/vqa/$f" ] || bad "no $f"; done
  [ "$(wc -l <"$T/vqa/samples.jsonl")" = 13 ] && grep -q '"prediction"' "$T/vqa/samples.jsonl" && ok "per-sample records" || bad "samples.jsonl"
  [ ! -s "$T/err" ] && ok "quiet when stderr is not a terminal" || bad "stderr: $(cat "$T/err")"
  grep -q "VQA: 13 questions" "$T/out" && ok "prints the result" || bad "stdout: $(cat "$T/out")"
else
  bad "eval vqa -m tiny: $(cat "$T/err")"
fi
if "$G" eval coco -m "$M" --out "$T/coco" --max-tokens 12 --image-budget 70 -t 2 >"$T/out" 2>"$T/err"; then
  ok "eval coco -m tiny"
  [ "$(val "$T/coco/metrics.json" n_images)" = 2 ] && [ "$(val "$T/coco/metrics.json" total_gt)" = 5 ] &&
    ok "2 eligible images, 5 objects" || bad "coco metrics: $(cat "$T/coco/metrics.json")"
else
  bad "eval coco -m tiny: $(cat "$T/err")"
fi
# the progress bar when asked for
"$G" eval vqa -m "$M" --out "$T/p" --n 2 --max-tokens 4 --image-budget 70 --progress -t 2 >/dev/null 2>"$T/err" && grep -q "\[2/2\].*running accuracy" "$T/err" &&
  ok "progress bar with rate, ETA and running accuracy" || bad "progress: $(cat "$T/err")"

# kill and resume
ARGS="--n 6 --seed 5 --max-tokens 8 --image-budget 70 -t 2"
"$G" eval vqa -m "$M" --out "$T/full" $ARGS >/dev/null 2>"$T/err" || bad "uninterrupted run: $(cat "$T/err")"
"$G" eval vqa -m "$M" --out "$T/kr" $ARGS >/dev/null 2>&1 &
BG=$!
i=0
while [ "$(cat "$T/kr/results.jsonl" 2>/dev/null | wc -l)" -lt 2 ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
kill -9 $BG 2>/dev/null
wait $BG 2>/dev/null
BG=""
n_before=$(wc -l <"$T/kr/results.jsonl")
[ "$n_before" -ge 2 ] && [ "$n_before" -lt 6 ] && ok "killed after $n_before of 6 samples" ||
  echo "note: killed after $n_before of 6 samples"
[ ! -e "$T/kr/metrics.json" ] || [ "$n_before" -ge 6 ] && ok "no reports from a killed run" || bad "reports written early"
printf '{"key":"3","question_id":3,"resp' >>"$T/kr/results.jsonl" # a torn last line
out=$("$G" eval vqa -m "$M" --out "$T/kr" $ARGS 2>&1) && bad "a second run without --resume was accepted" ||
  { echo "$out" | grep -q -- "--resume" && ok "refuses to mix runs without --resume" || bad "message: $out"; }
out=$("$G" eval vqa -m "$M" --out "$T/kr" --n 6 --seed 6 --max-tokens 8 --image-budget 70 --resume 2>&1) && bad "resume with other samples accepted" ||
  { echo "$out" | grep -q "another run" && ok "refuses --resume with other samples" || bad "message: $out"; }
if "$G" eval vqa -m "$M" --out "$T/kr" $ARGS --resume >/dev/null 2>"$T/err"; then
  ok "--resume"
  [ "$(wc -l <"$T/kr/results.jsonl")" = 6 ] && ok "6 results, none repeated, the torn line gone" ||
    bad "results.jsonl has $(wc -l <"$T/kr/results.jsonl") lines"
  [ "$(python3 -c "import json,sys;print(len({json.loads(l)['key'] for l in open(sys.argv[1])}))" "$T/kr/results.jsonl")" = 6 ] ||
    bad "repeated keys"
  cmp -s "$T/full/metrics.json" "$T/kr/metrics.json" && ok "metrics.json identical to the uninterrupted run" || bad "metrics differ"
  [ "$(records "$T/full/samples.jsonl")" = "$(records "$T/kr/samples.jsonl")" ] &&
    ok "per-sample records identical (timings aside)" || bad "samples.jsonl differ"
else
  bad "--resume: $(cat "$T/err")"
fi
# resuming a finished run changes nothing
"$G" eval vqa -m "$M" --out "$T/kr" $ARGS --resume >/dev/null 2>&1 && cmp -s "$T/full/metrics.json" "$T/kr/metrics.json" &&
  [ "$(wc -l <"$T/kr/results.jsonl")" = 6 ] && ok "resuming a finished run" || bad "resuming a finished run"

finish
