#!/bin/sh
# Decode A/B on the GPU machine (bench/RESULTS.md): tg128 of random-weight models under several settings, each in its
# own process, the baseline binary first when it was packed (build-cuda-local/dev/bin/bench_cuda_base); then, when
# nsys exists, a per-kernel time summary of a short decode run. Binaries from build-cuda-local/dev; logs to $OUT.
# Usage: tests/cuda/ab_device.sh "MODEL:TYPE ..." "SETTING ..." [nsys "MODEL:TYPE ..."]
#   SETTING: base (the baseline binary), cur (defaults), or VAR=VALUE[,VAR=VALUE] for the current binary, e.g.
#   tests/cuda/ab_device.sh "e4b:q4_0 26b-a4b:q4_0" "base cur G4C_CUDA_PDL=0 G4C_CUDA_FUSE=0" nsys "e4b:q4_0"
D=build-cuda-local/dev
export LD_LIBRARY_PATH=$PWD/$D/lib:/usr/local/cuda/lib64:$LD_LIBRARY_PATH
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
for mt in $1; do
    m=$(echo "$mt" | cut -d: -f1); t=$(echo "$mt" | cut -d: -f2)
    for s in $2; do
        b=$D/bin/bench_cuda; envs=""
        case "$s" in base) b=$D/bin/bench_cuda_base; [ -x "$b" ] || continue ;; cur) ;; *) envs=$(echo "$s" | tr , ' ') ;; esac
        echo "== $m $t $s" | tee -a "$OUT/ab.log"
        env $envs timeout 120 $b --random "$m" --type "$t" 2>&1 | grep -E "^(pp|tg|weights|bench_cuda)" | tee -a "$OUT/ab.log"
    done
done
if [ "$3" = nsys ]; then
    NSYS=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
    if [ -z "$NSYS" ]; then echo "no nsys" | tee -a "$OUT/ab.log"; exit 0; fi
    for mt in $4; do
        m=$(echo "$mt" | cut -d: -f1); t=$(echo "$mt" | cut -d: -f2)
        timeout 70 $NSYS profile --cuda-graph-trace=node -o /tmp/prof_$m -f true $D/bin/bench_cuda --random "$m" --type "$t" --pp 16 --tg 32 >/dev/null 2>&1
        timeout 45 $NSYS stats --report cuda_gpu_kern_sum --format csv -o "$OUT/kern_$m" /tmp/prof_$m.nsys-rep >/dev/null 2>&1
        ls "$OUT" | grep "kern_$m" || echo "nsys $m: no summary" | tee -a "$OUT/ab.log"
    done
fi
