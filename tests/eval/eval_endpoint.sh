#!/bin/sh
# gemma4c eval --endpoint against a stub OpenAI server (stub_openai.py, 127.0.0.1, stops by itself) on the built-in
# sample set: the request format (checked by the stub), retry after a 503, chunked answers, the API key, clear
# errors; then against gemma4c serve with the tiny model when G4C_TOKENIZER_JSON is set.
# usage: eval_endpoint.sh GEMMA4C
set -u
G=$1
D=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/../lib.sh"
PIDS=""
cleanup() { for p in $PIDS; do kill $p 2>/dev/null; done; }
num() { python3 -c "import json,sys;d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split('.'): d=d[k]
print(d)" "$1" "$2"; }
command -v python3 >/dev/null || { echo "python3 not found: skipped"; exit 77; }
SAMPLES=$(cd "$D/../../data/samples" && pwd)

python3 "$D/stub_openai.py" "$SAMPLES" "$T/port" --lifetime 120 --api-key sekrit >"$T/stub.log" 2>&1 &
PIDS="$PIDS $!"
i=0
while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
PORT=$(cat "$T/port" 2>/dev/null)
[ -n "$PORT" ] || { bad "the stub did not start: $(cat "$T/stub.log")"; echo "$pass passed, $fail failed"; exit 1; }
URL=http://127.0.0.1:$PORT

if "$G" eval vqa --endpoint "$URL" --api-key sekrit --out "$T/vqa" --no-progress >"$T/out" 2>"$T/err"; then
  ok "eval vqa --endpoint (retried a 503, chunked and plain answers)"
  [ "$(num "$T/vqa/metrics.json" n)" = 13 ] && ok "13 questions" || bad "n = $(num "$T/vqa/metrics.json" n)"
  python3 -c "import json,sys;m=json.load(open(sys.argv[1]));sys.exit(0 if abs(m['strict_accuracy']-12/13)<1e-12 and m['vqa_accuracy']==1 else 1)" \
    "$T/vqa/metrics.json" && ok "strict 12/13, official 1 (\"One\" vs \"1\")" || bad "metrics: $(cat "$T/vqa/metrics.json")"
  [ "$(wc -l <"$T/vqa/results.jsonl")" = 13 ] && grep -q '"gen_tokens":5' "$T/vqa/results.jsonl" && ok "usage recorded" || bad "results.jsonl"
else
  bad "eval vqa --endpoint: $(cat "$T/err")"
fi

if "$G" eval coco --endpoint "$URL/v1" --api-key sekrit --model-name stub-model --out "$T/coco" --no-progress >"$T/out" 2>"$T/err"; then
  ok "eval coco --endpoint"
  python3 -c "import json,sys;m=json.load(open(sys.argv[1]))
want={'n_images':2,'total_pred':6,'total_gt':5,'total_tp':5,'total_tp_strict':5}
bad=[k for k,v in want.items() if m[k]!=v]
bad+=['precision'] if abs(m['precision']-(1+2/3)/2)>1e-12 else []
bad+=['strict_f1'] if abs(m['strict_f1']-0.9)>1e-12 else []
bad+=['status'] if m['status_counts']!={'tp':5,'near':0,'class':0,'fp':1} else []
bad+=['ar'] if abs(m['ar']-1)>1e-12 else []
print(bad); sys.exit(1 if bad else 0)" "$T/coco/metrics.json" >"$T/chk" && ok "coco metrics (2 eligible images, 1 false positive)" ||
    bad "coco metrics: $(cat "$T/chk")"
else
  bad "eval coco --endpoint: $(cat "$T/err")"
fi

expect_fail "a wrong API key: the server's message" "HTTP 401: bad api key" \
  "$G" eval vqa --endpoint "$URL" --api-key wrong --model-name stub-model --out "$T/e1" --n 1 --no-progress
# a closed port: a free one, taken and released
FREE=$(python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1]);s.close()")
expect_fail "nothing listening" "cannot connect to 127.0.0.1:$FREE" \
  "$G" eval vqa --endpoint "http://127.0.0.1:$FREE" --retries 0 --out "$T/e2" --n 1 --no-progress
expect_fail "https is refused clearly" "https is not supported" \
  "$G" eval vqa --endpoint "https://127.0.0.1:1" --out "$T/e3" --n 1 --no-progress
expect_fail "-m and --endpoint together" "exactly one" "$G" eval vqa -m x --endpoint "$URL" --out "$T/e4"
[ -s "$T/e1/results.jsonl" ] && bad "a failed request left a result" || ok "a failed request records nothing"

# gemma4c serve: the same answers as the model run in process
if [ -n "${G4C_TOKENIZER_JSON:-}" ] && [ -s "${G4C_TOKENIZER_JSON:-}" ]; then
  M=$T/tiny
  "$G" synth --preset tiny --out "$M" --tokenizer "$G4C_TOKENIZER_JSON" >/dev/null 2>&1 || bad "synth tiny"
  "$G" serve -m "$M" --port 0 -t 2 >"$T/serve.out" 2>&1 &
  SP=$!
  PIDS="$PIDS $SP"
  i=0
  while ! grep -Eq '127\.0\.0\.1:[0-9]+' "$T/serve.out" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
  SPORT=$(grep -Eo '127\.0\.0\.1:[0-9]+' "$T/serve.out" | head -n 1 | cut -d: -f2)
  if [ -n "$SPORT" ] && "$G" eval vqa --endpoint "http://127.0.0.1:$SPORT" --out "$T/srv" --n 3 --max-tokens 6 \
       --no-progress >"$T/out" 2>"$T/err"; then
    ok "eval vqa --endpoint gemma4c serve"
    "$G" eval vqa -m "$M" --out "$T/inproc" --n 3 --max-tokens 6 -t 2 --no-progress >/dev/null 2>&1
    strip() { python3 -c "import json,sys
for l in open(sys.argv[1]): print(json.loads(l)['response'])" "$1"; }
    if [ "$(strip "$T/srv/results.jsonl")" = "$(strip "$T/inproc/results.jsonl")" ]; then ok "serve and -m give the same answers"
    else echo "note: serve and in-process answers differ (sampling settings of the server?)"; fi
  else
    bad "eval against gemma4c serve: $(cat "$T/err") $(tail -3 "$T/serve.out")"
  fi
  kill $SP 2>/dev/null
else
  echo "note: G4C_TOKENIZER_JSON unset: the gemma4c serve part is skipped"
fi

finish
