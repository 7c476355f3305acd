#!/bin/sh
# Decode A/B on the GPU machine (bench/RESULTS.md): tg128 of random-weight models under several settings, each in its
# own process, the baseline binary first when it was packed (build-cuda-local/dev/bin/bench_cuda_base); then
# (profile) a per-kernel breakdown of decoded tokens (bench_cuda --profile: CUPTI activity records; Nsight
# Compute is refused the performance counters on the workplace's GPU machines). Binaries from
# build-cuda-local/dev; logs to $OUT.
# Usage: tests/cuda/ab_device.sh "MODEL:TYPE ..." "SETTING ..." [profile "MODEL:TYPE ..."]
#   SETTING: base (the baseline binary), cur (defaults), or VAR=VALUE[,VAR=VALUE] for the current binary, e.g.
#   tests/cuda/ab_device.sh "e4b:q4_0 26b-a4b:q4_0" "base cur G4C_CUDA_PDL=0 G4C_CUDA_FUSE=0" profile "e4b:q4_0"
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
if [ "$3" = profile ]; then
    # per-kernel times of 8 decoded tokens (greedy on the device, the decode graph) from CUPTI activity records
    for mt in $4; do
        m=$(echo "$mt" | cut -d: -f1); t=$(echo "$mt" | cut -d: -f2)
        echo "== $m $t" | tee -a "$OUT/ab.log"
        timeout 120 $D/bin/bench_cuda --random "$m" --type "$t" --pp 0 --tg 128 --profile 8 >"$OUT/kern_${m}_$t.md" 2>&1
        grep -E "^tg|kernels per token|weight-reading" "$OUT/kern_${m}_$t.md" | tee -a "$OUT/ab.log"
    done
fi
