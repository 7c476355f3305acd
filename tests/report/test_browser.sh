#!/bin/sh
# The report in a real browser (ctest -L report): headless Chromium renders index.html of a report made from the
# built-in sample set, without errors, and the screenshot is a page (size, many colors, the status colors).
# usage: test_browser.sh GEMMA4C TEST_REPORT     (exit 77 = skipped: no chromium)
set -u
G=$1
CHECK=$2
D=$(cd "$(dirname "$0")" && pwd)
B=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$B" ] || { echo "no chromium: skipped"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$G" score vqa --predictions "$D/data/sample_vqa_pred.jsonl" --out "$T/runs/sample/vqa" >/dev/null &&
  "$G" score coco --predictions "$D/data/sample_coco_pred.jsonl" --out "$T/runs/sample/coco" >/dev/null &&
  "$G" report "$T/runs/sample" --out "$T/rep" >/dev/null || { echo "FAIL making the report"; exit 1; }
# a private profile; no network is needed (the page references nothing outside itself)
timeout 120 "$B" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$T/profile" \
  --screenshot="$T/shot.png" --window-size=1280,2400 "file://$T/rep/index.html" >"$T/log" 2>&1
rc=$?
[ $rc -eq 0 ] && [ -s "$T/shot.png" ] || { echo "FAIL chromium exited $rc"; tail -n 20 "$T/log"; exit 1; }
if grep -E "Uncaught|ERR_FILE_NOT_FOUND|net::ERR|CONSOLE" "$T/log"; then echo "FAIL page errors"; exit 1; fi
"$CHECK" --check-screenshot "$T/shot.png" 1280 2400 || { echo "FAIL screenshot"; exit 1; }
echo "ok   the report renders in headless chromium"
echo "1 passed, 0 failed"
