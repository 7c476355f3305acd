#!/bin/sh
# On the GPU machine (docs/CUDA.md "Conformance on the GPU machine"): the conformance program, then the quantized
# GEMV table and pp512/tg128 of random-weight models. Binaries from build-cuda-local/dev (bin/, lib/); logs to $OUT.
# Usage: tests/cuda/run_device.sh [conformance] [cli] [apps] [qgemv] [bench "MODEL:TYPE[:nograph] ..."] [cpu]
#   cpu: the CPU kernel tests and bench_ops on the GPU host's own CPU (it has AVX-512 VNNI, this project's CI machine
#   does not): test_repack compares the VNNI kernels with AVX2 bit for bit. D=DIR picks the binaries' folder.
#   apps: run (text and image), eval vqa and serve on the tiny synthesized model with the real vocabulary, CPU vs
#   GPU: identical greedy outputs expected. Needs the tokenizer packed as build-cuda-local/devpack/tokenizer.json.xz
#   (the device machine cannot reach npm: xz -c "$(sh scripts/fetch-tokenizer.sh)" > that file).
#   e.g. tests/cuda/run_device.sh conformance qgemv bench "e4b:q4_0 26b-a4b:q4_0 31b:q4_0 e4b:q4_0:nograph"
D=${D:-build-cuda-local/dev}
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
    apps) G=$D/bin/gemma4c; A=/tmp/apps; rm -rf $A; mkdir -p $A
        xz -dc build-cuda-local/devpack/tokenizer.json.xz >$A/tok.json
        $G synth --preset tiny --out $A/m --tokenizer $A/tok.json >/dev/null 2>&1 || echo "apps: synth failed"
        norec() { python3 -c "import json,sys
for l in open(sys.argv[1]):
    r=json.loads(l)
    for k in ('time_ms','tok_s','prompt_tok_s','gen_tok_s','elapsed_ms','peak_rss_mb'): r.pop(k,None)
    print(json.dumps(r,sort_keys=True))" "$1"; }
        same() { if [ -z "$2" ]; then echo "$1: NO OUTPUT"; elif [ "$2" = "$3" ]; then echo "$1: identical ($(echo "$2" | head -c 70 | tr '\n' ' ')...)"
                 else printf '%s: DIFFERENT\n  cpu:  %s\n  cuda: %s\n' "$1" "$2" "$3"; fi; }
        for dv in cpu cuda; do
            # greedy (the device argmax path; the tiny random model repeats one invisible token, so the JSON record is
            # compared) and seeded sampling (visible text: logits agree to ~1e-6, far from any sampling threshold)
            $G run -m $A/m -p "Describe a cat in one line." -n 24 --temp 0 --json --device $dv 2>/dev/null |
                sed 's/"prompt_tok_per_s.*"stop"/"stop"/' >$A/run-$dv.txt
            $G run -m $A/m -p "Describe a cat in one line." -n 24 --temp 1 --seed 5 --device $dv 2>/dev/null >$A/runs-$dv.txt
            $G run -m $A/m --image tests/fixtures/images/chelsea.png --image-budget 280 -p "What is this?" -n 16 --temp 1 \
                --seed 7 --device $dv 2>$A/img-$dv.err >$A/img-$dv.txt
            $G eval vqa -m $A/m --out $A/vqa-$dv --image-budget 70 --device $dv >/dev/null 2>$A/vqa-$dv.err
            norec $A/vqa-$dv/samples.jsonl >$A/vqa-$dv.rec 2>/dev/null
            $G serve -m $A/m --port 18080 --device $dv >$A/serve-$dv.log 2>&1 & sp=$!
            for i in $(seq 1 60); do python3 -c "import urllib.request;urllib.request.urlopen('http://127.0.0.1:18080/health')" 2>/dev/null && break; sleep 0.5; done
            python3 -c "import json,urllib.request
req=urllib.request.Request('http://127.0.0.1:18080/v1/chat/completions',data=json.dumps({'messages':[{'role':'user','content':'Name three colors.'}],'max_tokens':20,'temperature':1,'seed':11}).encode(),headers={'Content-Type':'application/json'})
print(json.load(urllib.request.urlopen(req))['choices'][0]['message']['content'])" >$A/serve-$dv.txt 2>&1
            kill $sp; wait $sp 2>/dev/null
        done
        { same "run text greedy (24 tokens, JSON record without timings)" "$(cat $A/run-cpu.txt)" "$(cat $A/run-cuda.txt)"
          same "run text sampled (24 tokens, seed 5)" "$(cat $A/runs-cpu.txt)" "$(cat $A/runs-cuda.txt)"
          same "run image (budget 280, 16 tokens, seed 7)" "$(cat $A/img-cpu.txt)" "$(cat $A/img-cuda.txt)"
          same "eval vqa (13 questions, records without timings)" "$(cat $A/vqa-cpu.rec)" "$(cat $A/vqa-cuda.rec)"
          echo "  vqa lines: $(wc -l <$A/vqa-cpu.rec) cpu, $(wc -l <$A/vqa-cuda.rec) cuda"
          same "serve chat completion (20 tokens, seed 11)" "$(cat $A/serve-cpu.txt)" "$(cat $A/serve-cuda.txt)"
          grep -h "image\|encode" $A/img-cuda.err | head -3; cat $A/vqa-cuda.err | tail -3; } 2>&1 | tee "$OUT/apps.log" ;;
    cpu) { grep -m1 "model name" /proc/cpuinfo; nproc
           echo "flags: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E 'avx512|vnni|bf16' | tr '\n' ' ')"
           for t in test_repack test_ops test_quants; do timeout 300 $D/bin/$t >"$OUT/$t.log" 2>&1; echo "$t rc $?: $(tail -1 "$OUT/$t.log")"; done
           grep -h "VNNI\|vnni" "$OUT/test_repack.log"
           for th in 2 8; do timeout 200 $D/bin/bench_ops $th 16384 4096; done; } 2>&1 | tee "$OUT/cpu.log" ;;
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
