/* Q4_0 and Q8_0 in the 8-row interleaved layout (repack.c) on CPUs with AVX-512 VNNI: vpdpbusd (on 256-bit
 * registers, AVX512VL) adds four u8 x s8 products straight into each int32 lane, where AVX2 needs vpmaddubsw, an
 * int16 sum and a widening vpmaddwd (avx2_x8.c). Same layout, same integer sums and the same f32 steps in the same
 * order as avx2_x8.c's group_q4 / group_q8, so the outputs are bit-identical to the AVX2 kernels (test_repack.c
 * checks it where the CPU has VNNI) and decode == prefill still holds:
 *   Q4_0: Σ q·x with q the unsigned nibble (u8 operand) and x the activation (s8 operand)
 *   Q8_0: Σ (w + 128)·x − 128·Σx = Σ w·x (w ^ 0x80 is w + 128 as u8; int32 lanes never overflow: <= 32·255·127)
 * Two groups (16 rows) x up to 4 tokens per pass where the rows allow: each activation broadcast meets both. */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/cpu_int.h"

#define TGT __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define INL __attribute__((always_inline)) inline

int g4c_avx512_vnni_supported(void) {
    __builtin_cpu_init();
    return g4c_avx2_supported() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
}

TGT static INL __m256i bcast4(const int8_t *x) {
    int32_t v;
    memcpy(&v, x, 4);
    return _mm256_set1_epi32(v);
}

/* each group's bytes ~1.5 KB ahead, as avx2_x8.c's decode asks for them (one sequential stream per group) */
TGT static INL void prefetch_groups(const uint8_t *g, int64_t gb, int G, int n) {
    for (int gi = 0; gi < G; gi++)
        for (int o = 0; o < n; o += 64) _mm_prefetch((const char *)g + gi * gb + 1536 + o, _MM_HINT_T0);
}

/* Σ over one block of G groups (g, g + gb) x NT tokens: isum[gi][t]; then the f32 step of avx2_x8.c per group */
TGT static INL void pass_q4(float *y, int64_t ldy, const g4c_q8_block *xq, int64_t nb, const uint8_t *g, int64_t gb,
                            int G, int NT) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[2][4];
    for (int gi = 0; gi < G; gi++)
        for (int t = 0; t < NT; t++) acc[gi][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++, g += 144) {
        prefetch_groups(g, gb, G, 144);
        __m256i is[2][4];
        for (int gi = 0; gi < G; gi++)
            for (int t = 0; t < NT; t++) is[gi][t] = _mm256_setzero_si256();
        for (int v = 0; v < 4; v++) {
            __m256i lo[2], hi[2];
            for (int gi = 0; gi < G; gi++) {
                const __m256i r = _mm256_loadu_si256((const __m256i *)(g + gi * gb + 16 + 32 * v));
                lo[gi] = _mm256_and_si256(r, m4);
                hi[gi] = _mm256_and_si256(_mm256_srli_epi16(r, 4), m4);
            }
            for (int t = 0; t < NT; t++) {
                const int8_t *x = xq[(size_t)t * nb + b].q;
                const __m256i xl = bcast4(x + 4 * v), xh = bcast4(x + 16 + 4 * v);
                for (int gi = 0; gi < G; gi++) {
                    is[gi][t] = _mm256_dpbusd_epi32(is[gi][t], lo[gi], xl);
                    is[gi][t] = _mm256_dpbusd_epi32(is[gi][t], hi[gi], xh);
                }
            }
        }
        for (int gi = 0; gi < G; gi++) {
            const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + gi * gb)));
            for (int t = 0; t < NT; t++) {
                const g4c_q8_block *x = xq + (size_t)t * nb + b;
                const __m256 f = _mm256_cvtepi32_ps(is[gi][t]);
                const __m256 v = _mm256_fmsub_ps(f, _mm256_set1_ps(x->d), _mm256_set1_ps(8.0f * x->s));
                acc[gi][t] = _mm256_fmadd_ps(v, d, acc[gi][t]);
            }
        }
    }
    for (int gi = 0; gi < G; gi++)
        for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + t * ldy + 8 * gi, acc[gi][t]);
}

/* xk: −128·Σx per block and token (g4c_q8_bias_sums, once per call: computing it here, per pass of 16 rows, took
 * a fifth of the pass's vector instructions) */
TGT static INL void pass_q8(float *y, int64_t ldy, const g4c_q8_block *xq, const int32_t *xk, int64_t nb,
                            const uint8_t *g, int64_t gb, int G, int NT) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    __m256 acc[2][4];
    for (int gi = 0; gi < G; gi++)
        for (int t = 0; t < NT; t++) acc[gi][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++, g += 272) {
        prefetch_groups(g, gb, G, 272);
        /* Σ (w + 128)·x per lane (w ^ 0x80 as u8), then less 128 · Σx: the exact Σ w·x */
        __m256i is[2][4];
        for (int t = 0; t < NT; t++) {
            const __m256i k = _mm256_set1_epi32(xk[(size_t)t * nb + b]);
            for (int gi = 0; gi < G; gi++) is[gi][t] = k;
        }
        for (int j = 0; j < 8; j++) {
            __m256i u[2];
            for (int gi = 0; gi < G; gi++)
                u[gi] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(g + gi * gb + 16 + 32 * j)), flip);
            for (int t = 0; t < NT; t++) {
                const __m256i x = bcast4(xq[(size_t)t * nb + b].q + 4 * j);
                for (int gi = 0; gi < G; gi++) is[gi][t] = _mm256_dpbusd_epi32(is[gi][t], u[gi], x);
            }
        }
        for (int gi = 0; gi < G; gi++) {
            const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + gi * gb)));
            for (int t = 0; t < NT; t++) {
                const __m256 f = _mm256_cvtepi32_ps(is[gi][t]);
                acc[gi][t] = _mm256_fmadd_ps(_mm256_mul_ps(f, _mm256_set1_ps(xq[(size_t)t * nb + b].d)), d, acc[gi][t]);
            }
        }
    }
    for (int gi = 0; gi < G; gi++)
        for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + t * ldy + 8 * gi, acc[gi][t]);
}

/* G and NT as compile-time constants after inlining: the accumulators stay in registers (AVX-512VL has 32) */
#define PASS(fn, G, NT, ...)                                                                                        \
    switch (NT) {                                                                                                   \
    case 1: fn(__VA_ARGS__, G, 1); break;                                                                           \
    case 2: fn(__VA_ARGS__, G, 2); break;                                                                           \
    case 3: fn(__VA_ARGS__, G, 3); break;                                                                           \
    default: fn(__VA_ARGS__, G, 4); break;                                                                          \
    }

TGT void g4c_avx512_rows_x8(float *y, int64_t ldy, const g4c_q8_block *xq, const int32_t *xk, int n_tok,
                            const void *x8, g4c_dtype dt, int n_rows, int64_t cols) {
    const int64_t nb = cols / 32, gb = (int64_t)(dt == G4C_DTYPE_Q4_0 ? 144 : 272) * nb;
    for (int r0 = 0; r0 < n_rows;) {
        const uint8_t *g = (const uint8_t *)x8 + (size_t)(r0 / 8) * (size_t)gb;
        const int two = r0 + 16 <= n_rows;
        for (int t0 = 0; t0 < n_tok; t0 += 4) {
            const int nt = n_tok - t0 < 4 ? n_tok - t0 : 4;
            float *yt = y + (size_t)t0 * ldy + r0;
            const g4c_q8_block *xt = xq + (size_t)t0 * nb;
            const int32_t *kt = xk + (size_t)t0 * nb;
            if (dt == G4C_DTYPE_Q4_0) {
                if (two) { PASS(pass_q4, 2, nt, yt, ldy, xt, nb, g, gb) }
                else { PASS(pass_q4, 1, nt, yt, ldy, xt, nb, g, gb) }
            } else {
                if (two) { PASS(pass_q8, 2, nt, yt, ldy, xt, kt, nb, g, gb) }
                else { PASS(pass_q8, 1, nt, yt, ldy, xt, kt, nb, g, gb) }
            }
        }
        r0 += two ? 16 : 8;
    }
}
