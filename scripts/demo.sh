#!/bin/sh
# Build gemma4c and run it on the bundled tiny Gemma 4 checkpoint (random weights, 31B-style architecture):
# greedy generation from a token prompt, then the same through the KV cache with sampling.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target gemma4c >/dev/null
M=tests/fixtures/dense-f32
echo "== gemma4c info --model $M"
./build/gemma4c info --model $M | head -12
echo "== gemma4c generate --model $M --tokens 2,105,17,107 -n 12 --temp 0 --print-ids"
./build/gemma4c generate --model $M --tokens 2,105,17,107 -n 12 --temp 0 --print-ids --ignore-eos
echo "== sampled (temp 1.0, top-k 64, top-p 0.95, seed 7)"
./build/gemma4c generate --model $M --tokens 2,105,17,107 -n 12 --temp 1.0 --seed 7 --print-ids --ignore-eos
