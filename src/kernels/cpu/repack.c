/* Weights repacked for the CPU integer kernels: 8 rows interleaved block by block (the "x8" layout of g4c_wmat).
 *
 * Why: the decode step is a stream of weight bytes. Read row by row, a 4-row tile walks four streams 18 or 34 bytes
 * at a time and needs a horizontal sum per row; interleaved, eight rows arrive as one sequential stream and the
 * integer products of eight rows land in the eight 32-bit lanes of one register, so no horizontal sums are needed.
 *
 * Layout of group g (rows 8g .. 8g+7), block b (32 columns), for Q4_0 (144 bytes) and Q8_0 (272 bytes):
 *   bytes [0, 16)            the 8 rows' f16 scales d, row order;
 *   bytes [16 + 32j, 48 + 32j)  vector j: bytes 4k .. 4k+3 are row k's quant bytes 4j .. 4j+3.
 * Q8_0: vector j (0..7) holds elements 4j .. 4j+3 of each row. Q4_0 (ggml: byte i holds element i in its low nibble,
 * i + 16 in its high nibble): vector j (0..3) holds elements 4j .. 4j+3 in the low nibbles and 16+4j .. 16+4j+3 in
 * the high nibbles. A group takes exactly the bytes of its 8 rows, so group g starts at 8g · row bytes. */
#include <string.h>

#include "kernels/ops.h"

size_t g4c_cpu_repack_bytes(const g4c_wmat *w) {
#if !defined(__x86_64__)
    return 0; /* the kernels for this layout are AVX2 only (avx2_x8.c) */
#endif
    if ((w->dtype != G4C_DTYPE_Q4_0 && w->dtype != G4C_DTYPE_Q8_0) || w->rows <= 0 || w->rows % 8) return 0;
    return (size_t)w->rows * g4c_wmat_row_bytes(w);
}

void g4c_cpu_repack(void *dst, const g4c_wmat *w) {
    const size_t bsz = g4c_dtype_infos[w->dtype].size, rb = g4c_wmat_row_bytes(w);
    const int64_t nb = w->cols / 32;
    const int nvec = (int)(bsz - 2) / 4; /* 32-byte vectors per group block: 4 (Q4_0) or 8 (Q8_0) */
    uint8_t *out = dst;
    for (int64_t g = 0; g < w->rows / 8; g++)
        for (int64_t b = 0; b < nb; b++, out += 8 * bsz)
            for (int k = 0; k < 8; k++) {
                const uint8_t *blk = (const uint8_t *)w->data + (size_t)(8 * g + k) * rb + (size_t)b * bsz;
                memcpy(out + 2 * k, blk, 2);
                for (int j = 0; j < nvec; j++) memcpy(out + 16 + 32 * j + 4 * k, blk + 2 + 4 * j, 4);
            }
}
