/* AVX2 integer kernels for Q8_0 and Q4_0 weights (ggml block layouts, base/half.c) against activations quantized
 * to 8 bits per 32 values (llama.cpp does the same; accuracy is tested in test_ops.c against the f32 reference).
 * Per output the arithmetic is fixed — blocks in order, one f32 FMA accumulator of 8 lanes — so a token gets the
 * same result in a decode step and in a prefill tile. */
#include <immintrin.h>
#include <math.h>

#include "kernels/cpu/cpu_int.h"

#define TGT __attribute__((target("avx2,fma,f16c")))

TGT void g4c_avx2_quantize_q8(g4c_q8_block *dst, const float *x, int64_t cols) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < cols / 32; b++) {
        const float *v = x + b * 32;
        __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8), v2 = _mm256_loadu_ps(v + 16),
               v3 = _mm256_loadu_ps(v + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float d = _mm_cvtss_f32(m4) / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        dst[b].d = d;
        const __m256 s = _mm256_set1_ps(id);
        /* round to nearest even, like lrintf in the default rounding mode */
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, s)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, s));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, s)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, s));
        __m256i p01 = _mm256_packs_epi32(i0, i1), p23 = _mm256_packs_epi32(i2, i3);
        __m256i p = _mm256_packs_epi16(p01, p23);
        /* packs interleave 128-bit lanes: restore element order */
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)dst[b].q, p);
        /* Σq: maddubs(1, q) -> int16 pairs -> madd(1) -> int32 lanes */
        __m256i s32 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), p), _mm256_set1_epi16(1));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
        dst[b].s = d * (float)_mm_cvtsi128_si32(s4);
    }
}

/* 32 signed weights of one block as int8 */
TGT static inline __m256i weights_q8_0(const uint8_t *b) { return _mm256_loadu_si256((const __m256i *)(b + 2)); }
TGT static inline __m256i weights_q4_0(const uint8_t *b) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)(b + 2));
    const __m128i lo = _mm_and_si128(raw, _mm_set1_epi8(0xF)), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0xF));
    return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8)); /* elements 0-15 low nibbles, 16-31 high */
}

TGT static inline float f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h); /* F16C: one instruction, no branches */
}

/* Σ w·x over one block as 8 int32 lanes, then as floats */
TGT static inline __m256 block_dot(__m256i w, __m256i x) {
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

TGT static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* the decode case: 4 rows x 1 token with named accumulators (an indexed array would live on the stack) */
TGT static void tile_q8_4x1(float *y, const g4c_q8_block *xq, int64_t nb, const uint8_t *w, size_t wstride,
                            int is_q4) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    const size_t bsz = is_q4 ? 18 : 34;
    const uint8_t *w0 = w, *w1 = w + wstride, *w2 = w + 2 * wstride, *w3 = w + 3 * wstride;
    for (int64_t b = 0; b < nb; b++, w0 += bsz, w1 += bsz, w2 += bsz, w3 += bsz) {
        if ((b & 3) == 0) { /* four row streams: help the prefetcher ~1 KB ahead */
            _mm_prefetch((const char *)w0 + 1024, _MM_HINT_T0);
            _mm_prefetch((const char *)w1 + 1024, _MM_HINT_T0);
            _mm_prefetch((const char *)w2 + 1024, _MM_HINT_T0);
            _mm_prefetch((const char *)w3 + 1024, _MM_HINT_T0);
        }
        const __m256i x = _mm256_loadu_si256((const __m256i *)xq[b].q);
        const float dx = xq[b].d;
        const __m256i q0 = is_q4 ? weights_q4_0(w0) : weights_q8_0(w0), q1 = is_q4 ? weights_q4_0(w1) : weights_q8_0(w1);
        const __m256i q2 = is_q4 ? weights_q4_0(w2) : weights_q8_0(w2), q3 = is_q4 ? weights_q4_0(w3) : weights_q8_0(w3);
        a0 = _mm256_fmadd_ps(block_dot(q0, x), _mm256_set1_ps(f16(w0) * dx), a0);
        a1 = _mm256_fmadd_ps(block_dot(q1, x), _mm256_set1_ps(f16(w1) * dx), a1);
        a2 = _mm256_fmadd_ps(block_dot(q2, x), _mm256_set1_ps(f16(w2) * dx), a2);
        a3 = _mm256_fmadd_ps(block_dot(q3, x), _mm256_set1_ps(f16(w3) * dx), a3);
    }
    y[0] = hsum(a0), y[1] = hsum(a1), y[2] = hsum(a2), y[3] = hsum(a3);
}

/* up to 4 rows x 2 tokens */
TGT static void tile_q8(float *y, int64_t ldy, const g4c_q8_block *xq, int64_t nb, int nt, const uint8_t *w,
                        size_t wstride, int is_q4, int nr) {
    __m256 acc[4][2];
    for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    const size_t bsz = is_q4 ? 18 : 34;
    for (int64_t b = 0; b < nb; b++) {
        const __m256i x0 = _mm256_loadu_si256((const __m256i *)xq[b].q);
        const __m256i x1 = nt > 1 ? _mm256_loadu_si256((const __m256i *)xq[nb + b].q) : x0;
        for (int r = 0; r < nr; r++) {
            const uint8_t *blk = w + r * wstride + (size_t)b * bsz;
            const __m256i wv = is_q4 ? weights_q4_0(blk) : weights_q8_0(blk);
            const float dw = f16(blk);
            acc[r][0] = _mm256_fmadd_ps(block_dot(wv, x0), _mm256_set1_ps(dw * xq[b].d), acc[r][0]);
            if (nt > 1) acc[r][1] = _mm256_fmadd_ps(block_dot(wv, x1), _mm256_set1_ps(dw * xq[nb + b].d), acc[r][1]);
        }
    }
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) y[t * ldy + r] = hsum(acc[r][t]);
}

/* Q4_K (256 per block, 8 sub-blocks of 32 with 6-bit scale and min, base/half.c):
 * Σ w·x = Σ_s dx_s·(d·sc_s·Σ q·qx − dmin·m_s·Σ qx) with q unsigned nibbles: maddubs(q, qx) directly. */
static inline void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

TGT static inline __m256 dot_q4_k(const uint8_t *blk, const g4c_q8_block *x, __m256 acc, float *min_acc) {
    const float d = f16(blk), dmin = f16(blk + 2);
    const uint8_t *sc = blk + 4, *qs = blk + 16;
    const __m256i m4 = _mm256_set1_epi8(0xF), ones = _mm256_set1_epi16(1);
    float mins = 0;
    for (int j = 0; j < 4; j++) {
        const __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
        const __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
        int s1, n1, s2, n2;
        scale_min_k4(2 * j, sc, &s1, &n1);
        scale_min_k4(2 * j + 1, sc, &s2, &n2);
        const g4c_q8_block *x1 = &x[2 * j], *x2 = &x[2 * j + 1];
        const __m256 p1 = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)x1->q)), ones));
        const __m256 p2 = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)x2->q)), ones));
        acc = _mm256_fmadd_ps(p1, _mm256_set1_ps(d * s1 * x1->d), acc);
        acc = _mm256_fmadd_ps(p2, _mm256_set1_ps(d * s2 * x2->d), acc);
        mins += n1 * x1->s + n2 * x2->s;
    }
    *min_acc += dmin * mins;
    return acc;
}

/* Q6_K (256 per block, 16 sub-blocks of 16 with int8 scales, q in [0, 63] − 32): per 32 activations the two
 * 16-element halves take their own scale, applied in the int16 -> int32 step (madd with the scales). */
TGT static inline __m256 dot_q6_k(const uint8_t *blk, const g4c_q8_block *x, __m256 acc) {
    const uint8_t *ql = blk, *qh = blk + 128;
    const int8_t *sc = (const int8_t *)(blk + 192);
    const float d = f16(blk + 208);
    const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
    for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8, x += 4) {
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
        const __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
        q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2), 4));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2), 4));
        for (int k = 0; k < 4; k++) {
            const __m256i w = _mm256_sub_epi8(q[k], off);
            const __m256i xv = _mm256_loadu_si256((const __m256i *)x[k].q);
            const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xv, w));
            /* int16 lanes 0-7 are elements 0-15 (scale sc[2k]), lanes 8-15 elements 16-31 (sc[2k+1]) */
            const __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
            const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, scv));
            acc = _mm256_fmadd_ps(p, _mm256_set1_ps(d * x[k].d), acc);
        }
    }
    return acc;
}

TGT static void tile_k(float *y, int64_t ldy, const g4c_q8_block *xq, int64_t nb32, int nt, const uint8_t *w,
                       size_t wstride, g4c_dtype dt, int nr) {
    const size_t bsz = g4c_dtype_infos[dt].size;
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) {
            __m256 acc = _mm256_setzero_ps();
            float mins = 0;
            const g4c_q8_block *x = xq + (size_t)t * nb32;
            for (int64_t b = 0; b < nb32 / 8; b++) {
                const uint8_t *blk = w + r * wstride + (size_t)b * bsz;
                acc = dt == G4C_DTYPE_Q4_K ? dot_q4_k(blk, x + 8 * b, acc, &mins) : dot_q6_k(blk, x + 8 * b, acc);
            }
            y[t * ldy + r] = hsum(acc) - mins;
        }
}

TGT void g4c_avx2_rows_q8(float *y, int64_t ldy, const g4c_q8_block *xq, int n_tok, const void *w, size_t wstride,
                          g4c_dtype dt, int n_rows, int64_t cols) {
    const int64_t nb = cols / 32;
    if (dt == G4C_DTYPE_Q4_K || dt == G4C_DTYPE_Q6_K) {
        for (int r0 = 0; r0 < n_rows; r0 += 4)
            tile_k(y + r0, ldy, xq, nb, n_tok, (const uint8_t *)w + (size_t)r0 * wstride, wstride, dt,
                   n_rows - r0 < 4 ? n_rows - r0 : 4);
        return;
    }
    const int is_q4 = dt == G4C_DTYPE_Q4_0;
    for (int t0 = 0; t0 < n_tok; t0 += 2) {
        const int nt = n_tok - t0 < 2 ? n_tok - t0 : 2;
        for (int r0 = 0; r0 < n_rows; r0 += 4)
            if (nt == 1 && n_rows - r0 >= 4) /* same arithmetic per output as tile_q8, so decode == prefill */
                tile_q8_4x1(y + (size_t)t0 * ldy + r0, xq + (size_t)t0 * nb, nb, (const uint8_t *)w + (size_t)r0 * wstride,
                            wstride, is_q4);
            else
            tile_q8(y + (size_t)t0 * ldy + r0, ldy, xq + (size_t)t0 * nb, nb, nt,
                    (const uint8_t *)w + (size_t)r0 * wstride, wstride, is_q4, n_rows - r0 < 4 ? n_rows - r0 : 4);
    }
}
