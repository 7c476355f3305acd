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
 * the high nibbles. A group takes exactly the bytes of its 8 rows, so group g starts at 8g · row bytes.
 *
 * Q6_K (256 columns per block, 6-bit codes q with w = d · sc[e / 16] · (q − 32)), 1680 bytes per group block:
 *   bytes [0, 16)      the 8 rows' f16 d;
 *   bytes [16, 144)    int8 scales: sub-block s (16 columns), row k at 16 + 8s + k;
 *   then per chunk c of 32 columns (c = 0..7, 192 bytes at 144 + 192c), for element e = 32c + 4j + i of row k:
 *     the low 4 bits of q in vector j % 4 (32 bytes), byte 4k + i, low nibble for j < 4, high nibble for j >= 4;
 *     the high 2 bits in vector 4 + j / 4, byte 4k + i, bits [2(j % 4), 2(j % 4) + 2).
 *
 * Q4_K (256 columns per block, 8 sub-blocks s of 32, w = d · sc_s · q − dmin · m_s with 6-bit sc and m), 1184 bytes
 * per group block (the only layout larger than its source: 148 instead of 144 bytes per row and block):
 *   bytes [0, 16) d, [16, 32) dmin (f16, row order); [32, 96) sc and [96, 160) m as bytes, sub-block s, row k at
 *   32 + 8s + k and 96 + 8s + k; then sub-block s's 128 bytes at 160 + 128s, laid out as a Q4_0 block (vector j,
 *   byte 4k + i: element 4j + i low nibble, 16 + 4j + i high nibble). */
#include <string.h>

#include "kernels/ops.h"

size_t g4c_cpu_repack_bytes(const g4c_wmat *w) {
#if !defined(__x86_64__)
    return 0; /* the kernels for this layout are AVX2 only (avx2_x8.c) */
#endif
    if (!g4c_cpu_isa()) return 0; /* no AVX2 here: the portable path reads the ggml layout */
    const int ok = w->dtype == G4C_DTYPE_Q4_0 || w->dtype == G4C_DTYPE_Q8_0 || w->dtype == G4C_DTYPE_Q4_K ||
                   w->dtype == G4C_DTYPE_Q6_K;
    if (!ok || w->rows <= 0 || w->rows % 8) return 0;
    return (size_t)w->rows * g4c_wmat_x8_row_bytes(w);
}

/* ggml's Q6_K block: ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16], f16 d. Element n·128 + l + 32·p
 * (half n, l < 32, part p < 4) takes its low bits from ql[64n + l + 32(p & 1)] (nibble p >> 1) and its high bits
 * from qh[32n + l] bits 2p .. 2p+1. Returns the 256 codes in 0..63. */
static void q6_k_codes(const uint8_t *blk, uint8_t q[256]) {
    for (int n = 0; n < 2; n++)
        for (int l = 0; l < 32; l++)
            for (int p = 0; p < 4; p++) {
                const uint8_t lo = blk[64 * n + l + 32 * (p & 1)], hi = blk[128 + 32 * n + l];
                q[128 * n + 32 * p + l] = (uint8_t)((p >> 1 ? lo >> 4 : lo & 0xF) | ((hi >> (2 * p)) & 3) << 4);
            }
}

static void repack_q6_k(uint8_t *out, const g4c_wmat *w) {
    const size_t rb = g4c_wmat_row_bytes(w);
    const int64_t nb = w->cols / 256;
    uint8_t q[8][256];
    for (int64_t g = 0; g < w->rows / 8; g++)
        for (int64_t b = 0; b < nb; b++, out += 8 * 210) {
            memset(out, 0, 8 * 210);
            for (int k = 0; k < 8; k++) {
                const uint8_t *blk = (const uint8_t *)w->data + (size_t)(8 * g + k) * rb + (size_t)b * 210;
                q6_k_codes(blk, q[k]);
                memcpy(out + 2 * k, blk + 208, 2);
                for (int s = 0; s < 16; s++) out[16 + 8 * s + k] = blk[192 + s];
            }
            for (int c = 0; c < 8; c++) {
                uint8_t *ch = out + 144 + 192 * c;
                for (int k = 0; k < 8; k++)
                    for (int j = 0; j < 8; j++)
                        for (int i = 0; i < 4; i++) {
                            const uint8_t v = q[k][32 * c + 4 * j + i];
                            ch[32 * (j % 4) + 4 * k + i] |= (uint8_t)((v & 0xF) << (j < 4 ? 0 : 4));
                            ch[128 + 32 * (j / 4) + 4 * k + i] |= (uint8_t)((v >> 4) << (2 * (j % 4)));
                        }
            }
        }
}

/* ggml's Q4_K block: f16 d, f16 dmin, scales[12] (6-bit sc and m of 8 sub-blocks), qs[128]; sub-block 2p takes the
 * low nibbles of qs[32p .. 32p + 31], 2p + 1 the high ones */
static void q4_k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void repack_q4_k(uint8_t *out, const g4c_wmat *w) {
    const size_t rb = g4c_wmat_row_bytes(w);
    const int64_t nb = w->cols / 256;
    for (int64_t g = 0; g < w->rows / 8; g++)
        for (int64_t b = 0; b < nb; b++, out += 1184)
            for (int k = 0; k < 8; k++) {
                const uint8_t *blk = (const uint8_t *)w->data + (size_t)(8 * g + k) * rb + (size_t)b * 144;
                memcpy(out + 2 * k, blk, 2);
                memcpy(out + 16 + 2 * k, blk + 2, 2);
                for (int s = 0; s < 8; s++) {
                    q4_k_scale_min(s, blk + 4, &out[32 + 8 * s + k], &out[96 + 8 * s + k]);
                    const uint8_t *qs = blk + 16 + 32 * (s / 2);
                    uint8_t *o = out + 160 + 128 * s;
                    for (int e = 0; e < 16; e++) { /* element e and 16 + e of the sub-block share a byte */
                        const int lo = s % 2 ? qs[e] >> 4 : qs[e] & 0xF, hi = s % 2 ? qs[16 + e] >> 4 : qs[16 + e] & 0xF;
                        o[32 * (e / 4) + 4 * k + e % 4] = (uint8_t)(lo | hi << 4);
                    }
                }
            }
}

void g4c_cpu_repack(void *dst, const g4c_wmat *w) {
    if (w->dtype == G4C_DTYPE_Q6_K) {
        repack_q6_k(dst, w);
        return;
    }
    if (w->dtype == G4C_DTYPE_Q4_K) {
        repack_q4_k(dst, w);
        return;
    }
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
