/* AVX2 integer kernels for the ggml types avx2_q8.c does not cover: Q4_1, Q5_0, Q5_1 (32 per block) and Q5_K
 * (256 per block), against the same 8-bit activations (g4c_q8_block: x ≈ d·q, s = d·Σq). Layouts: kernels/ref/quants.c.
 *   Q5_0   w = d·(q − 16), q in [0, 31]:  Σ w·x = d·dx·Σ (q − 16)·qx           (signed codes, exact int32 dot)
 *   Q4_1   w = d·q + m,    q in [0, 15]:  Σ w·x = d·dx·Σ q·qx + m·s
 *   Q5_1   w = d·q + m,    q in [0, 31]:  the same with a 5th bit per element from the u32 qh
 *   Q5_K   w = d·sc_j·q − dmin·m_j per sub-block j of 32 (Q4_K's scales plus a 5th bit from qh[32])
 * Per output the arithmetic is fixed (blocks in order, one 8-lane f32 FMA accumulator, the offset terms in one scalar
 * summed in order), whatever the tile: a token gets the same result in a decode step and in a prefill.
 * Checked against the f64 reference on random blocks by tests/unit/test_ops.c. */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/cpu_int.h"

#define TGT __attribute__((target("avx2,fma,f16c")))
#define INL TGT static inline __attribute__((always_inline))

INL float f16x(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

INL float hsumx(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 16 bytes of nibbles -> 32 bytes, element order: bytes 0-15 the low nibbles (elements 0-15), 16-31 the high */
INL __m256i nibbles(const uint8_t *p) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)p), m4 = _mm_set1_epi8(0xF);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), _mm_and_si128(raw, m4));
}

/* bit i of the little-endian u32 at p -> byte i = 0x10 or 0 (the 5th bit of element i) */
INL __m256i fifth_bits(const uint8_t *p) {
    uint32_t qh;
    memcpy(&qh, p, 4);
    /* byte i takes byte i / 8 of qh (shuffles stay in 128-bit lanes: lane 1 indexes its own copy) */
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh),
                                               _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                                                2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

/* Σ u·x over 32 bytes, u unsigned (<= 31), x signed: 8 int32 lanes as floats */
INL __m256 udot(__m256i u, __m256i x) {
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1)));
}

INL __m256i xq32(const g4c_q8_block *x) { return _mm256_loadu_si256((const __m256i *)x->q); }

/* one 32-element block of a legacy type against nt (<= 2) tokens' activation blocks x[t]: the codes are unpacked
 * once, acc[t] += the integer part, off[t] += the offset term */
INL void block32(g4c_dtype dt, const uint8_t *b, const g4c_q8_block *const *x, int nt, __m256 *acc, float *off) {
    const float d = f16x(b);
    if (dt == G4C_DTYPE_Q5_0) {
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(nibbles(b + 6), fifth_bits(b + 2)), _mm256_set1_epi8(16));
        /* |q| and the sign moved onto the activations, as in sdot, with |q| shared by the tokens */
        const __m256i aq = _mm256_sign_epi8(q, q);
        for (int t = 0; t < nt; t++)
            acc[t] = _mm256_fmadd_ps(udot(aq, _mm256_sign_epi8(xq32(x[t]), q)), _mm256_set1_ps(d * x[t]->d), acc[t]);
        return;
    }
    const __m256i q = dt == G4C_DTYPE_Q4_1 ? nibbles(b + 4) : _mm256_or_si256(nibbles(b + 8), fifth_bits(b + 4));
    const float m = f16x(b + 2);
    for (int t = 0; t < nt; t++) {
        off[t] += m * x[t]->s;
        acc[t] = _mm256_fmadd_ps(udot(q, xq32(x[t])), _mm256_set1_ps(d * x[t]->d), acc[t]);
    }
}

/* K-quant 6-bit scale and min of sub-block j (ggml get_scale_min_k4) */
static inline void scale_min_k4x(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* one Q5_K block (176 bytes: f16 d, dmin; scales[12]; qh[32]; qs[128]) against nt tokens' 8 activation blocks each.
 * 64 elements per 32 bytes of qs: low nibbles sub-block 2j, high nibbles 2j + 1; their 5th bits are bits 2j and
 * 2j + 1 of qh[l] for element l of the sub-block. */
INL void block_q5_k(const uint8_t *b, const g4c_q8_block *const *x, int nt, __m256 *acc, float *off) {
    const float d = f16x(b), dmin = f16x(b + 2);
    const uint8_t *sc = b + 4;
    const __m256i hb = _mm256_loadu_si256((const __m256i *)(b + 16)), m4 = _mm256_set1_epi8(0xF),
                  one = _mm256_set1_epi8(1);
    for (int j = 0; j < 4; j++) {
        const __m256i raw = _mm256_loadu_si256((const __m256i *)(b + 48 + 32 * j));
        /* bit 2j (2j + 1) of each byte to bit 4: shifts of 16-bit lanes, masked to one bit per byte first */
        const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j), one), 4);
        const __m256i h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j + 1), one), 4);
        const __m256i lo = _mm256_or_si256(_mm256_and_si256(raw, m4), h1);
        const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(raw, 4), m4), h2);
        int s1, n1, s2, n2;
        scale_min_k4x(2 * j, sc, &s1, &n1);
        scale_min_k4x(2 * j + 1, sc, &s2, &n2);
        for (int t = 0; t < nt; t++) {
            const g4c_q8_block *x1 = &x[t][2 * j], *x2 = &x[t][2 * j + 1];
            acc[t] = _mm256_fmadd_ps(udot(lo, xq32(x1)), _mm256_set1_ps(d * (float)s1 * x1->d), acc[t]);
            acc[t] = _mm256_fmadd_ps(udot(hi, xq32(x2)), _mm256_set1_ps(d * (float)s2 * x2->d), acc[t]);
            off[t] -= dmin * ((float)n1 * x1->s + (float)n2 * x2->s);
        }
    }
}

/* y[t * ldy + r] for r < nr (<= 4), t < nt (<= 2): each weight block unpacked once for both tokens */
INL void tile(g4c_dtype dt, float *y, int64_t ldy, const g4c_q8_block *xq, int64_t nb32, int nt, const uint8_t *w,
              size_t wstride, int nr) {
    const size_t bsz = g4c_dtype_infos[dt].size;
    const int per = dt == G4C_DTYPE_Q5_K ? 8 : 1; /* activation blocks per weight block */
    const int64_t nbw = nb32 / per;
    __m256 acc[4][2];
    float off[4][2];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 2; t++) acc[r][t] = _mm256_setzero_ps(), off[r][t] = 0;
    for (int64_t b = 0; b < nbw; b++) {
        const g4c_q8_block *x[2] = {xq + (size_t)b * (size_t)per, xq + (size_t)nb32 + (size_t)b * (size_t)per};
        for (int r = 0; r < nr; r++) {
            const uint8_t *blk = w + r * wstride + (size_t)b * bsz;
            if (dt == G4C_DTYPE_Q5_K) block_q5_k(blk, x, nt, acc[r], off[r]);
            else block32(dt, blk, x, nt, acc[r], off[r]);
        }
    }
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) y[t * ldy + r] = hsumx(acc[r][t]) + off[r][t];
}

INL void rows(g4c_dtype dt, float *y, int64_t ldy, const g4c_q8_block *xq, int n_tok, const uint8_t *w,
              size_t wstride, int n_rows, int64_t cols) {
    const int64_t nb32 = cols / 32;
    for (int t0 = 0; t0 < n_tok; t0 += 2) {
        const int nt = n_tok - t0 < 2 ? n_tok - t0 : 2;
        for (int r0 = 0; r0 < n_rows; r0 += 4)
            tile(dt, y + (size_t)t0 * ldy + r0, ldy, xq + (size_t)t0 * nb32, nb32, nt, w + (size_t)r0 * wstride,
                 wstride, n_rows - r0 < 4 ? n_rows - r0 : 4);
    }
}

/* one instance per type, so each inner loop is specialized */
TGT void g4c_avx2_rows_q8x(float *y, int64_t ldy, const g4c_q8_block *xq, int n_tok, const void *w, size_t wstride,
                           g4c_dtype dt, int n_rows, int64_t cols) {
    switch (dt) {
    case G4C_DTYPE_Q4_1: rows(G4C_DTYPE_Q4_1, y, ldy, xq, n_tok, w, wstride, n_rows, cols); break;
    case G4C_DTYPE_Q5_0: rows(G4C_DTYPE_Q5_0, y, ldy, xq, n_tok, w, wstride, n_rows, cols); break;
    case G4C_DTYPE_Q5_1: rows(G4C_DTYPE_Q5_1, y, ldy, xq, n_tok, w, wstride, n_rows, cols); break;
    case G4C_DTYPE_Q5_K: rows(G4C_DTYPE_Q5_K, y, ldy, xq, n_tok, w, wstride, n_rows, cols); break;
    default: G4C_ASSERT(!"g4c_avx2_rows_q8x: not Q4_1 / Q5_0 / Q5_1 / Q5_K");
    }
}
