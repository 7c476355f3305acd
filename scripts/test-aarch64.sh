#!/bin/sh
# The NEON kernels (src/kernels/cpu/neon.c) on aarch64, from this x86 machine: cross-build the base + kernels
# libraries and test_ops / test_quants (-DG4C_KERNELS_ONLY=ON with cmake/aarch64-linux-gnu.cmake; the rest of gemma4c
# needs arm64 builds of cJSON, libpng, ...) and run both under qemu-aarch64 on two CPUs: -cpu max (has the dot-product
# instructions: the SDOT kernels) and -cpu cortex-a57 (Armv8.0, none: the widening-multiply kernels).
# Needs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user (scripts/deps.sh installs them when root);
# without them it prints the install command and exits 77 (skipped). ~1 min on 2 cores.
set -eu
cd "$(dirname "$0")/.."
for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "aarch64 tests skipped: $tool missing (apt-get install -y gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"
    exit 77
  fi
done
B=${G4C_ARM_BUILD:-build-arm}
cmake -S . -B "$B" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DG4C_KERNELS_ONLY=ON \
  -DCMAKE_BUILD_TYPE=Release --no-warn-unused-cli >/dev/null
cmake --build "$B" -j"$(nproc)" >/dev/null
fail=0
for cpu in max cortex-a57; do
  for t in ops quants; do
    out=$(qemu-aarch64 -cpu "$cpu" -L /usr/aarch64-linux-gnu "$B/test_$t" 2>&1) || fail=1
    # the ISA headers ("-- NEON + dotprod") say which kernels ran; failures and the summary line
    echo "$out" | grep -E "^--|FAIL|passed, " | sed "s/^/aarch64 $cpu test_$t: /"
  done
done
[ "$fail" = 0 ] || { echo "aarch64 tests FAILED"; exit 1; }
