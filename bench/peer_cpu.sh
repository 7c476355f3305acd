#!/bin/sh
# gemma4c vs llama.cpp on a CPU, same synthesized GGUF files, same threads, back to back (bench/RESULTS.md, issue 5).
# Runs on the issue's reference machine (2 cores, AVX-512 VNNI) or pinned to 2 cores of a bigger host (the GPU hosts):
# for each PRESET:TYPE, `gemma4c synth --format gguf --no-vision` writes model.gguf (random weights, real shapes;
# skipped when it is already there), then llama-bench and `gemma4c bench` run pp512 + tg128, then pp512 once more
# in the other order (the host drifts; the pairs compare, not single numbers). Files are kept for a later call unless
# DROP=1. llama.cpp is not built here: LLAMA_BIN is a directory with llama-bench and its libraries, built from
# source beforehand. TOKENIZER: a tokenizer.json (llama.cpp needs the vocabulary in the GGUF).
# Usage: bench/peer_cpu.sh GEMMA4C LLAMA_BIN TOKENIZER "PRESET:TYPE ..." [REPS]   logs to $OUT (default /tmp/out)
#   CPUS=0,1 (taskset list; default the first two cores), TESTS="pp tg pp2" (subset to run)
set -u
G=$1
L=$2
TOK=$3
REPS=${5:-3}
CPUS=${CPUS:-0,1}
TESTS=${TESTS:-pp tg pp2}
OUT=${OUT:-/tmp/out}
W=${PEER_DIR:-/tmp/peer}
mkdir -p "$OUT" "$W"
export LD_LIBRARY_PATH=$L:${LD_LIBRARY_PATH:-}
NT=$(echo "$CPUS" | tr ',' '\n' | wc -l)
log() { tee -a "$OUT/peer_cpu.log"; }
{ grep -m1 "model name" /proc/cpuinfo; echo "cores pinned: $CPUS ($NT threads); nproc $(nproc)"
  echo "flags: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E 'avx512|vnni|bf16|amx' | tr '\n' ' ')"
  lscpu -e=CPU,CORE,SOCKET 2>/dev/null | head -5; } | log
llama() { # $1 model, $2 prompt, $3 generated
    echo "-- llama.cpp $(date -u +%H:%M:%S) -p $2 -n $3" | log
    timeout 580 taskset -c "$CPUS" "$L/llama-bench" -m "$1" -p "$2" -n "$3" -r "$REPS" -t "$NT" 2>&1 |
        grep -E "^\|| error|failed" | log
}
g4c() {
    echo "-- gemma4c $(date -u +%H:%M:%S) -p $2 -n $3" | log
    timeout 580 taskset -c "$CPUS" "$G" bench -m "$1" -p "$2" -n "$3" -r "$REPS" -t "$NT" --device cpu 2>&1 | log
}
for mt in $4; do
    p=${mt%%:*}; t=${mt#*:}; d=$W/$p-$t
    echo "== $p $t ($(date -u +%H:%M:%S) UTC)" | log
    if [ ! -f "$d/model.gguf" ]; then
        s0=$(date +%s)
        timeout 400 "$G" synth --preset "$p" --format gguf --type "$t" --no-vision --tokenizer "$TOK" --out "$d" \
            >"$OUT/synth-$p-$t.log" 2>&1 || { echo "synth failed: $(tail -2 "$OUT/synth-$p-$t.log")" | log; continue; }
        echo "synth $(($(date +%s) - s0)) s, $(du -h "$d/model.gguf" | cut -f1)" | log
    fi
    cat "$d/model.gguf" >/dev/null # page cache: neither side pays the disk
    for x in $TESTS; do
        case $x in
        pp) llama "$d/model.gguf" 512 0; g4c "$d/model.gguf" 512 0 ;;
        tg) llama "$d/model.gguf" 0 128; g4c "$d/model.gguf" 0 128 ;;
        pp2) g4c "$d/model.gguf" 512 0; llama "$d/model.gguf" 512 0 ;;
        esac
    done
    [ "${DROP:-0}" = 1 ] && rm -rf "$d"
done
