#!/bin/sh
# On the GPU machine (docs/CUDA.md "Conformance on the GPU machine"): the conformance program, then the quantized
# GEMV table and pp512/tg128 of random-weight models. Binaries from build-cuda-local/dev (bin/, lib/); logs to $OUT.
# Usage: tests/cuda/run_device.sh [conformance] [cli] [qgemv] [bench "MODEL:TYPE[:nograph] ..."]
#   e.g. tests/cuda/run_device.sh conformance qgemv bench "e4b:q4_0 26b-a4b:q4_0 31b:q4_0 e4b:q4_0:nograph"
D=build-cuda-local/dev
export LD_LIBRARY_PATH=$PWD/$D/lib:/usr/local/cuda/lib64:$LD_LIBRARY_PATH
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv | tee "$OUT/gpu.txt"
while [ $# -gt 0 ]; do
    case "$1" in
    conformance) timeout 300 $D/bin/test_cuda tests/fixtures >"$OUT/conformance.log" 2>&1; echo "conformance rc $?"
        grep -E "FAIL|fail|passed" "$OUT/conformance.log" | tail -15 ;;
    cli) # --device on the commands: greedy ids on CPU and GPU (fixtures and a Q4_0 GGUF of one), bench on the GPU
        for m in dense-bf16 moe-bf16 e-bf16 dense-f32; do
            a=$($D/bin/gemma4c generate --model tests/fixtures/$m --tokens 2,10,20,30,40 -n 24 --print-ids --device cpu 2>/dev/null)
            b=$($D/bin/gemma4c generate --model tests/fixtures/$m --tokens 2,10,20,30,40 -n 24 --print-ids --device cuda 2>/dev/null)
            echo "generate $m cpu:  $a"; echo "generate $m cuda: $b"; [ "$a" = "$b" ] && echo "  identical" || echo "  DIFFERENT"
        done 2>&1 | tee "$OUT/cli.log"
        $D/bin/gemma4c quantize tests/fixtures/dense-f32 /tmp/d-q4_0.gguf --type q4_0 >/dev/null 2>&1
        for dv in cpu cuda; do
            echo "generate dense-f32 q4_0 $dv: $($D/bin/gemma4c generate --model /tmp/d-q4_0.gguf --tokens 2,10,20,30,40 -n 24 --print-ids --device $dv 2>/dev/null)"
        done 2>&1 | tee -a "$OUT/cli.log"
        $D/bin/gemma4c bench -m tests/fixtures/dense-bf16 -p 64 -n 16 -r 2 --device cuda 2>&1 | tee -a "$OUT/cli.log" ;;
    qgemv) timeout 120 $D/bin/bench_cuda --qgemv 2>&1 | tee "$OUT/qgemv.log" ;;
    bench) for mt in $2; do # MODEL:TYPE[:nograph]
            m=$(echo "$mt" | cut -d: -f1); t=$(echo "$mt" | cut -d: -f2); g=$(echo "$mt" | cut -d: -f3)
            echo "== $m $t $g" | tee -a "$OUT/bench.log"
            if [ "$g" = nograph ]; then export G4C_CUDA_GRAPH=0; else unset G4C_CUDA_GRAPH; fi
            timeout 150 $D/bin/bench_cuda --random "$m" --type "$t" 2>&1 | tee -a "$OUT/bench.log"
        done; unset G4C_CUDA_GRAPH; shift ;;
    esac
    shift
done
