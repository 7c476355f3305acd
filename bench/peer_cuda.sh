#!/bin/sh
# gemma4c vs llama.cpp on the GPU machine, same synthesized GGUF files, back to back (bench/RESULTS.md, issue 9).
# For each PRESET:TYPE: `gemma4c synth --format gguf` writes model.gguf + mmproj.gguf (random weights, real shapes);
# then `gemma4c bench` (pp512, tg128, one image) and llama.cpp's llama-bench (same tests, default flags, -ngl 99) and
# llama-mtmd-cli (one 960x672 image: 60x42 patches = 280 soft tokens) run on the same files. The file is deleted
# afterwards (the machine's disk holds one 31B at a time). llama.cpp is not built here: LLAMA_BIN is a directory
# with llama-bench, llama-mtmd-cli and their libraries, built from source beforehand.
# llama.cpp needs the vocabulary in the GGUF: TOKENIZER (a tokenizer.json, `sh scripts/fetch-tokenizer.sh`) goes
# into synth --tokenizer.
# Usage: bench/peer_cuda.sh GEMMA4C LLAMA_BIN TOKENIZER "PRESET:TYPE ..." [REPS]     logs to $OUT (default /tmp/out)
set -u
G=$1
L=$2
TOK=$3
REPS=${5:-3}
OUT=${OUT:-/tmp/out}
W=${PEER_DIR:-/tmp/peer}
mkdir -p "$OUT" "$W"
export LD_LIBRARY_PATH=$L:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee -a "$OUT/peer.log"
# a 960x672 RGB image (PPM, which llama.cpp's stb_image reads)
python3 -c "
import sys
w, h = 960, 672
px = bytearray()
for y in range(h):
    for x in range(w):
        px += bytes(((x * 255) // w, (y * 255) // h, ((x ^ y) * 7) & 255))
open('$W/img.ppm', 'wb').write(b'P6 %d %d 255\n' % (w, h) + bytes(px))"
for mt in $4; do
    p=${mt%%:*}; t=${mt#*:}; d=$W/$p-$t
    echo "== $p $t ($(date -u +%H:%M:%S) UTC)" | tee -a "$OUT/peer.log"
    s0=$(date +%s)
    timeout 300 "$G" synth --preset "$p" --format gguf --type "$t" --tokenizer "$TOK" --out "$d" >"$OUT/synth-$p-$t.log" 2>&1 ||
        { echo "synth failed: $(tail -2 "$OUT/synth-$p-$t.log")" | tee -a "$OUT/peer.log"; continue; }
    echo "synth $(($(date +%s) - s0)) s, $(du -h "$d/model.gguf" | cut -f1) + mmproj $(du -h "$d/mmproj.gguf" | cut -f1)" | tee -a "$OUT/peer.log"
    cat "$d/model.gguf" >/dev/null # page cache: neither side pays the disk
    echo "-- gemma4c" | tee -a "$OUT/peer.log"
    timeout 300 "$G" bench -m "$d/model.gguf" --mmproj "$d/mmproj.gguf" -p 512 -n 128 -r "$REPS" --image-budget 280 \
        --device cuda 2>&1 | tee -a "$OUT/peer.log"
    echo "-- llama.cpp" | tee -a "$OUT/peer.log"
    timeout 300 "$L/llama-bench" -m "$d/model.gguf" -p 512 -n 128 -r "$REPS" -ngl 99 2>&1 | grep -E "^\|| error|failed" | tee -a "$OUT/peer.log"
    # the synthesized GGUF carries no chat template: llama.cpp's built-in "gemma" one
    timeout 200 "$L/llama-mtmd-cli" -m "$d/model.gguf" --mmproj "$d/mmproj.gguf" --image "$W/img.ppm" -p "Describe." \
        -n 1 -ngl 99 --temp 0 --chat-template gemma >"$OUT/mtmd-$p-$t.log" 2>&1
    grep -iE "encoded in|image.*tokens|n_tokens|error|failed" "$OUT/mtmd-$p-$t.log" | head -6 | tee -a "$OUT/peer.log"
    rm -rf "$d"
done
