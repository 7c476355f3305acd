#!/bin/sh
# gemma4c perf / segment / report end to end (ctest -L report).
# usage: test_report.sh GEMMA4C
#  1. segment without a model (--response): a polygon answer is drawn, a broken one becomes a message on the image
#     (exit 0, "ok": false), bad flags fail;
#  2. score the built-in sample set with hand-written answers (tests/report/data) and report it: index.html,
#     summary.md, the figures; every image inlined; the value labels in the page;
#  3. with the real vocabulary (G4C_TOKENIZER_JSON or scripts/fetch-tokenizer.sh): a tiny random-weight model
#     (gemma4c synth) through perf (--ignore-eos, 3 tokens a test), segment, eval vqa, and a report of them side
#     by side with step 2's runs. Skipped (noted) without the tokenizer.
set -u
G=$1
D=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$D/../.." && pwd)
. "$(dirname "$0")/../lib.sh"
IMG=$ROOT/tests/fixtures/images/coffee.jpg
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# ---- 1. segment without a model ----
R='Here you go:
```json
{"polygon": [[300, 100], [700, 100], [700, 760], [300, 760]], "label": "cup"}
```'
if "$G" segment --image "$IMG" --response "$R" --out "$T/seg.png" --json >"$T/seg.json" 2>"$T/err"; then
  [ "$(json "$T/seg.json" "d['ok'], len(d['polygons'][0]['points']), d['polygons'][0]['label'], d['polygons'][0]['points'][0]")" = "True 4 cup [180, 40]" ] &&
    ok "segment --response: a fenced polygon, scaled to pixels" || bad "segment json: $(cat "$T/seg.json")"
  [ -s "$T/seg.png" ] && ok "segment writes the overlay" || bad "no overlay"
else bad "segment --response: $(cat "$T/err")"; fi
if "$G" segment --image "$IMG" --response "I can't draw polygons." --out "$T/fail.png" --json >"$T/fail.json" 2>"$T/err"; then
  [ "$(json "$T/fail.json" "d['ok'], d['polygons']")" = "False []" ] && grep -q "no JSON" "$T/fail.json" &&
    ok "segment: a parse failure is reported, not a crash" || bad "failure json: $(cat "$T/fail.json")"
  [ -s "$T/fail.png" ] && ok "segment: the failure is drawn on the image" || bad "no failure overlay"
else bad "segment parse failure exits non-zero: $(cat "$T/err")"; fi
printf '%s' '[{"label": "dog", "segmentation": [[100, 100, 500, 100, 500, 500]]}, {"name": "cat", "points": [{"x": 600, "y": 600}, {"x": 900, "y": 600}, {"x": 900, "y": 900}]}]' >"$T/two.txt"
"$G" segment --image "$IMG" --response-file "$T/two.txt" --out "$T/two.png" --max-width 300 >"$T/out" 2>&1 &&
  grep -q 'polygon 2: 3 points, label "cat"' "$T/out" && ok "segment: two objects, alternative keys" || bad "two objects: $(cat "$T/out")"
expect_fail "segment needs an image" "give one --image" "$G" segment --response x
expect_fail "segment needs a model or a response" "is required" "$G" segment --image "$IMG"
expect_fail "segment: a missing image" "cannot read the image" "$G" segment --image "$T/none.png" --response x
expect_fail "report needs --out" "--out REPORT is required" "$G" report "$T"
expect_fail "report: a folder without runs" "holds no RUN folder" "$G" report "$T" --out "$T/r0"
expect_fail "perf needs a model" "are required" "$G" perf --out "$T/p0"

# ---- 2. the built-in sample set, scored, reported ----
S=$T/runs/sample
"$G" score vqa --predictions "$D/data/sample_vqa_pred.jsonl" --out "$S/vqa" >/dev/null 2>"$T/err" &&
  "$G" score coco --predictions "$D/data/sample_coco_pred.jsonl" --out "$S/coco" >/dev/null 2>>"$T/err" &&
  ok "score the sample set" || bad "score: $(cat "$T/err")"
check_report() { # name, dir, needles...
  name=$1; dir=$2; shift 2
  [ -s "$dir/index.html" ] && [ -s "$dir/summary.md" ] || { bad "$name: no index.html / summary.md"; return; }
  n=$(ls "$dir" | grep -c '^fig-.*\.png$')
  inl=$(grep -o 'src="data:image/png;base64,' "$dir/index.html" | wc -l)
  ext=$(grep -o 'src="[^d][^"]*"' "$dir/index.html" | head -n 3)
  [ "$n" -ge 8 ] && [ "$inl" -ge "$n" ] && [ -z "$ext" ] && ok "$name: $n figures, $inl inlined images" ||
    bad "$name: $n figures, $inl inlined, external: $ext"
  for s in "$@"; do grep -qF -- "$s" "$dir/index.html" || bad "$name: '$s' not in the page"; done
}
if "$G" report "$S" --out "$T/rep1" --title "Sample set" >"$T/out" 2>"$T/err"; then
  ok "report of the sample set"
  [ ! -s "$T/err" ] && ok "report: no warnings (no overlapping text)" || bad "report warnings: $(cat "$T/err")"
  check_report "sample report" "$T/rep1" "61.5% / 78.5%" "60.4% / 100.0%" "0.759" "3/3" "A camera" "strict 61.5%"
  grep -q "| VQA accuracy (strict / official) | 61.5% / 78.5% |" "$T/rep1/summary.md" && ok "summary.md table" ||
    bad "summary.md: $(cat "$T/rep1/summary.md")"
else bad "report: $(cat "$T/err")"; fi

# ---- 3. the tiny model ----
TOK=${G4C_TOKENIZER_JSON:-}
[ -n "$TOK" ] || TOK=$(sh "$ROOT/scripts/fetch-tokenizer.sh" 2>/dev/null) || true
if [ -z "$TOK" ] || [ ! -s "$TOK" ]; then
  echo "note: no tokenizer.json (G4C_TOKENIZER_JSON): the model steps are skipped"
else
  M=$T/tiny
  "$G" synth --preset tiny --out "$M" --tokenizer "$TOK" -t 2 >/dev/null 2>&1 && ok "synth tiny" || bad "synth tiny"
  P=$T/runs/tiny/perf
  if "$G" perf -m "$M" --out "$P" --ignore-eos -n 3 -t 2 >"$T/out" 2>"$T/err"; then
    ok "perf on the tiny model"
    got=$(json "$P/perf.json" "len(d['tests']), sorted(set(t['gen_tokens'] for t in d['tests'])), all(t['peak_mib'] > 1 for t in d['tests']), all(t['prompt_tok_s'] > 0 and t['gen_tok_s'] > 0 for t in d['tests']), [t['modality'] for t in d['tests']].count('image'), d['framework'], d['ignore_eos']")
    [ "$got" = "6 [3] True True 3 gemma4c True" ] && ok "perf.json: 6 tests, full lengths, peak memory measured" ||
      bad "perf.json: $got"
    grep -q "image-long" "$T/out" && grep -q "MiB" "$T/out" && ok "perf prints the table" || bad "perf output: $(cat "$T/out")"
    [ -s "$P/perf.md" ] && grep -q "| text-short | 3 |" "$P/perf.md" && ok "perf.md" || bad "perf.md"
  else bad "perf: $(cat "$T/err")"; fi
  "$G" perf -m "$M" --out "$T/p2" --tests text-short -n 2 --no-warmup -t 2 --json >"$T/p2.json" 2>"$T/err" &&
    [ "$(json "$T/p2.json" "[t['name'] for t in d['tests']]")" = "['text-short']" ] && ok "perf --tests --json" ||
    bad "perf --tests: $(cat "$T/err")"
  if "$G" segment -m "$M" --image "$IMG" --object "the cup" -n 6 -t 2 --out "$T/tiny-seg.png" --json >"$T/ts.json" 2>"$T/err"; then
    [ -s "$T/tiny-seg.png" ] && json "$T/ts.json" "d['ok'] in (True, False)" | grep -q True && ok "segment on the tiny model" ||
      bad "segment tiny: $(cat "$T/ts.json")"
  else bad "segment tiny: $(cat "$T/err")"; fi
  "$G" eval vqa -m "$M" --n 2 --out "$T/runs/tiny/vqa" -t 2 >/dev/null 2>"$T/err" && ok "eval vqa on the tiny model" ||
    bad "eval: $(cat "$T/err")"
  if "$G" report "$T/runs/tiny" "example answers=$S" --out "$T/rep2" >"$T/out" 2>"$T/err"; then
    ok "report: two systems side by side"
    check_report "side by side" "$T/rep2" "<th>tiny</th>" "<th>example answers</th>" "Generation speed" "gemma4c 0.1"
  else bad "report side by side: $(cat "$T/err")"; fi
fi

finish
