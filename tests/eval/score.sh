#!/bin/sh
# gemma4c score on crafted prediction sets reproduces hand-computed metrics.json (tests/eval/data/expected_*.json).
# usage: score.sh GEMMA4C
#
# COCO (data/instances.json + data/coco_pred.jsonl), by hand:
#  image 1 (100x100): GT dog [0,0,50,50], cat [50,50,100,100]; the 20x20 person (400 px^2 by bbox, although its
#   "area" says 5000) and the saucer (not a COCO class) are dropped. Predictions (y-first /1000):
#   p0 dog [0,0,50,50] IoU 1 -> tp | p1 Dog [0,0,25,50] IoU 0.5 with the dog, which p0 took -> near
#   "kitten" -> not COCO, dropped | p3 dog on the cat, IoU 1 with another class -> class
#   p4 person [90,90,100,100] -> fp | p5 cat [50,50,100,70] IoU 0.4 -> coarse match, not strict -> near
#   coarse tp 2 of 5 predictions, 2 GT: P 0.4 R 1 F1 4/7; strict tp 1: P 0.2 R 0.5 F1 2/7; mean TP IoU 1
#  image 2 (200x100): GT person [0,0,100,100], [100,0,200,100]; "man" [0,0,87.5,100] IoU 0.875, "people" IoU 1
#   -> tp 2 of 2 at both thresholds: P R F1 1; mean TP IoU 0.9375; matched up to IoU 0.85 and 1.0 resp.
#  image 3 (50x50): no GT, no parseable box -> everything 0.   image 4: not in the predictions -> not scored
#  means over 3 images: P (0.4+1+0)/3, R 2/3, F1 (4/7+1)/3 = 11/21, strict P 0.4, R 0.5, F1 (2/7+1)/3 = 3/7,
#  mean TP IoU (1+0.9375)/3; totals tp 4, strict 3, pred 7, gt 4; statuses tp 3 near 2 class 1 fp 1;
#  recall at IoU 0.50..0.85 = 3/4, at 0.90 and 0.95 = 2/4, AR 0.7; per class AR dog 1, cat 0, person
#  (8 x 1 + 2 x 0.5)/10 = 0.9, class mean 1.9/3.
# VQA (data/questions.json + data/annotations.json + data/vqa_pred.jsonl):
#  101 "Two elephants" vs 10 x "2": strict 0, official 0 ("2 elephants")
#  102 "Red." vs mc "red", 7 x "red" + 3 x "dark red": strict 1, official 1 (every subset has >= 6 "red")
#  103 " No" vs 10 x "no": strict 1, official 1
#  104 "An umbrella." vs mc "cane", 2 x "umbrella" + 8 x "cane": strict 0, official 0.6 (2 x 1/3 + 8 x 2/3)/10
#  105 is not in the predictions: not scored. strict 2/4, official 2.6/4; Wilson CI of 2/4 = [0.150, 0.850].
set -u
G=$1
D=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/../lib.sh"
check() { # name got want
  if out=$(python3 "$D/check_metrics.py" "$2" "$3" 2>&1); then ok "$1"; else bad "$1"; echo "$out"; fi
}

if "$G" score coco --annotations "$D/data/instances.json" --predictions "$D/data/coco_pred.jsonl" --out "$T/coco" >"$T/out" 2>"$T/err"; then
  ok "score coco runs"
  check "score coco: hand-computed metrics.json" "$T/coco/metrics.json" "$D/data/expected_coco.json"
  st=$(python3 -c "import json,sys
for l in open(sys.argv[1]):
    r=json.loads(l)
    if r['image_id']==1: print(','.join(p['status'] for p in r['predictions']))" "$T/coco/samples.jsonl")
  [ "$st" = "tp,near,class,fp,near" ] && ok "per-prediction statuses" || bad "statuses: $st"
  [ -s "$T/coco/summary.md" ] && grep -q "strict (IoU 0.5)" "$T/coco/summary.md" && ok "summary.md" || bad "summary.md"
  [ -z "$(ls "$T/coco" | grep '\.tmp$')" ] && ok "no temporary files left" || bad "temporary files left"
else
  bad "score coco: $(cat "$T/err")"
fi

if "$G" score vqa --questions "$D/data/questions.json" --annotations "$D/data/annotations.json" \
     --predictions "$D/data/vqa_pred.jsonl" --out "$T/vqa" >"$T/out" 2>"$T/err"; then
  ok "score vqa runs"
  check "score vqa: hand-computed metrics.json" "$T/vqa/metrics.json" "$D/data/expected_vqa.json"
  grep -q "strict accuracy 0.5000  VQA accuracy 0.6500" "$T/out" && ok "score vqa prints the result" || bad "stdout: $(cat "$T/out")"
  "$G" score vqa --questions "$D/data/questions.json" --annotations "$D/data/annotations.json" \
    --predictions "$D/data/vqa_results.json" --out "$T/vqa2" >/dev/null 2>&1 &&
    cmp -s "$T/vqa/metrics.json" "$T/vqa2/metrics.json" && ok "the challenge's JSON array format gives the same metrics" ||
    bad "JSON array predictions differ"
else
  bad "score vqa: $(cat "$T/err")"
fi

# the built-in sample set is the default data
printf '%s\n' '{"question_id": 1, "response": "Coffee"}' '{"question_id": 8, "response": "A cat."}' >"$T/p.jsonl"
"$G" score vqa --predictions "$T/p.jsonl" --out "$T/s" >"$T/out" 2>&1 && grep -q "2 questions  strict accuracy 0.5000  VQA accuracy 1.0000" "$T/out" &&
  ok "score vqa on the built-in set" || bad "built-in set: $(cat "$T/out")"

# errors: non-zero exit and a message naming the problem
echo '{"question_id": 999, "response": "x"}' >"$T/unknown.jsonl"
expect_fail "an id not in the data" "not in the data" "$G" score vqa --predictions "$T/unknown.jsonl" --out "$T/e1"
echo '{"response": "x"}' >"$T/noid.jsonl"
expect_fail "a record without an id" "has no id" "$G" score vqa --predictions "$T/noid.jsonl" --out "$T/e2"
echo 'not json' >"$T/garbage.jsonl"
expect_fail "a line that is not JSON" "not a JSON object" "$G" score coco --predictions "$T/garbage.jsonl" --out "$T/e3"
expect_fail "--predictions is required" "predictions" "$G" score vqa --out "$T/e4"
expect_fail "--out is required" "--out" "$G" score vqa --predictions "$T/p.jsonl"
expect_fail "vqa or coco" "vqa or coco" "$G" score vqb --predictions "$T/p.jsonl" --out "$T/e5"
expect_fail "missing annotation file" "nope.json" "$G" score coco --annotations "$T/nope.json" --predictions "$T/p.jsonl" --out "$T/e6"
expect_fail "questions without annotations" "both --questions and --annotations" "$G" score vqa --questions "$D/data/questions.json" --predictions "$T/p.jsonl" --out "$T/e7"

finish
