/* Half-width float weights (bf16, f16 as stored, row-major; f32 too, though cpu.c keeps those on AVX2) on CPUs with
 * AVX-512 (ISA level 2, cpu.c): avx2.c's tile of 4 weight rows x up to 3 tokens with 16-lane registers. On the GPU
 * host's Xeon, bench_ops 16384x4096 bf16, 2 threads: n=64 42.6 -> 56.5 GMAC/s, n=1 17.4 -> 31.1 GB/s (the AVX2
 * widening was the bottleneck). Weights are widened to f32 in registers and the activations stay f32: the same
 * arithmetic class as the AVX2 path (no bf16 activations, which would cost the match with the reference). Every
 * output is one 16-lane FMA accumulator over the row in column order, reduced in a fixed order, plus a scalar tail,
 * whatever the tile shape: a token gives bit-identical results in a 1-token decode and in a long prefill. */
#include <immintrin.h>

#include "kernels/cpu/cpu_int.h"

#define TGT __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw")))
#define INL __attribute__((always_inline)) inline

TGT static INL __m512 load16(const char *w, int dt, int64_t k) {
    switch (dt) {
    case CPU_W_BF16: {
        const __m256i h = _mm256_loadu_si256((const __m256i *)(w + 2 * k));
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    case CPU_W_F16: return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + 2 * k)));
    default: return _mm512_loadu_ps((const float *)(w + 4 * k));
    }
}

/* fixed-order horizontal sum: halves, then avx2.c's order within 8 lanes */
TGT static INL float hsum16(__m512 v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* y[t][r] for r < NR, t < NT (compile-time after inlining: the accumulators stay in registers) */
TGT static INL void tile(float *y, int64_t ldy, const float *x, int64_t ldx, const char *w, size_t wstride, int dt,
                         int64_t cols, int NR, int NT) {
    __m512 acc[4][3];
    for (int r = 0; r < NR; r++)
        for (int t = 0; t < NT; t++) acc[r][t] = _mm512_setzero_ps();
    const int64_t c16 = cols & ~(int64_t)15;
    for (int64_t k = 0; k < c16; k += 16) {
        __m512 xv[3];
        for (int t = 0; t < NT; t++) xv[t] = _mm512_loadu_ps(x + t * ldx + k);
        for (int r = 0; r < NR; r++) {
            const __m512 wv = load16(w + r * wstride, dt, k);
            for (int t = 0; t < NT; t++) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
    for (int r = 0; r < NR; r++)
        for (int t = 0; t < NT; t++) {
            float s = hsum16(acc[r][t]);
            for (int64_t k = c16; k < cols; k++) s += g4c_cpu_w_at(w + r * wstride, dt, k) * x[t * ldx + k];
            y[t * ldy + r] = s;
        }
}

#define TILE_NT(NR, nt, ...)                                                                                        \
    switch (nt) {                                                                                                   \
    case 1: tile(__VA_ARGS__, NR, 1); break;                                                                        \
    case 2: tile(__VA_ARGS__, NR, 2); break;                                                                        \
    default: tile(__VA_ARGS__, NR, 3); break;                                                                       \
    }

TGT void g4c_avx512_rows(float *y, int64_t ldy, const float *x, int64_t ldx, int n_tok, const void *w, size_t wstride,
                         int dt, int n_rows, int64_t cols) {
    for (int t0 = 0; t0 < n_tok; t0 += 3) {
        const int nt = n_tok - t0 < 3 ? n_tok - t0 : 3;
        float *yt = y + (size_t)t0 * ldy;
        const float *xt = x + (size_t)t0 * ldx;
        int r0 = 0;
        for (; r0 + 4 <= n_rows; r0 += 4) {
            TILE_NT(4, nt, yt + r0, ldy, xt, ldx, (const char *)w + (size_t)r0 * wstride, wstride, dt, cols)
        }
        for (; r0 < n_rows; r0++) {
            TILE_NT(1, nt, yt + r0, ldy, xt, ldx, (const char *)w + (size_t)r0 * wstride, wstride, dt, cols)
        }
    }
}
