/* AVX2 + FMA (+ F16C) kernels, compiled with target attributes and chosen at run time (cpu.c), so one binary
 * runs everywhere. The matrix kernel computes tiles of 4 weight rows x up to 3 tokens; every output is one 8-lane
 * FMA accumulator over the row, reduced in a fixed order, plus a scalar tail: the same arithmetic whatever the
 * tile shape, so a token gives bit-identical results in a 1-token decode and in a 512-token prefill.
 * Weights are read in their stored type (f32, bf16, f16) and widened in registers. */
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/cpu_int.h"

#define TGT __attribute__((target("avx2,fma,f16c")))

TGT static inline __m256 load8(const void *w, int dt, int64_t k) {
    switch (dt) {
    case CPU_W_BF16: {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + k));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    case CPU_W_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + k)));
    default:
        return _mm256_loadu_ps((const float *)w + k);
    }
}

/* fixed-order horizontal sum: (0+4, 1+5, 2+6, 3+7) then pairs */
TGT static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* y[t][r] for r < nr (<= 4), t < nt (<= 3) */
TGT static void tile(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const char *w, size_t wstride,
                     int dt, int nr, int64_t cols) {
    __m256 acc[4][3];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 3; t++) acc[r][t] = _mm256_setzero_ps();
    const int64_t c8 = cols & ~(int64_t)7;
    if (nr == 4 && nt == 3) { /* the hot case, unrolled for the register allocator */
        for (int64_t k = 0; k < c8; k += 8) {
            const __m256 x0 = _mm256_loadu_ps(x + k), x1 = _mm256_loadu_ps(x + ldx + k),
                         x2 = _mm256_loadu_ps(x + 2 * ldx + k);
            for (int r = 0; r < 4; r++) {
                const __m256 wv = load8(w + r * wstride, dt, k);
                acc[r][0] = _mm256_fmadd_ps(wv, x0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(wv, x1, acc[r][1]);
                acc[r][2] = _mm256_fmadd_ps(wv, x2, acc[r][2]);
            }
        }
    } else if (nt == 1) { /* decode: a bandwidth race; each row's bytes asked for G4C_PF_AHEAD ahead, a line at a time */
        const int64_t line = dt == CPU_W_F32 ? 16 : 32; /* elements per 64-byte line */
        for (int64_t k = 0; k < c8; k += 8) {
            if (k % line == 0)
                for (int r = 0; r < nr; r++) _mm_prefetch(w + r * wstride + (k / line) * 64 + G4C_PF_AHEAD, _MM_HINT_T0);
            for (int r = 0; r < nr; r++) acc[r][0] = _mm256_fmadd_ps(load8(w + r * wstride, dt, k), _mm256_loadu_ps(x + k), acc[r][0]);
        }
    } else {
        for (int64_t k = 0; k < c8; k += 8)
            for (int r = 0; r < nr; r++) {
                const __m256 wv = load8(w + r * wstride, dt, k);
                for (int t = 0; t < nt; t++) acc[r][t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * ldx + k), acc[r][t]);
            }
    }
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) {
            float s = hsum(acc[r][t]);
            for (int64_t k = c8; k < cols; k++) s += g4c_cpu_w_at(w + r * wstride, dt, k) * x[t * ldx + k];
            y[t * ldy + r] = s;
        }
}

TGT void g4c_avx2_rows(float *y, int64_t ldy, const float *x, int64_t ldx, int n_tok, const void *w, size_t wstride,
                       int dt, int n_rows, int64_t cols) {
    for (int t0 = 0; t0 < n_tok; t0 += 3) {
        const int nt = n_tok - t0 < 3 ? n_tok - t0 : 3;
        for (int r0 = 0; r0 < n_rows; r0 += 4)
            tile(y + (size_t)t0 * ldy + r0, ldy, x + (size_t)t0 * ldx, ldx, nt, (const char *)w + (size_t)r0 * wstride,
                 wstride, dt, n_rows - r0 < 4 ? n_rows - r0 : 4, cols);
    }
}

TGT float g4c_avx2_dot(const float *a, const float *b, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    const int64_t n8 = n & ~(int64_t)7;
    for (int64_t k = 0; k < n8; k += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), acc);
    float s = hsum(acc);
    for (int64_t k = n8; k < n; k++) s += a[k] * b[k];
    return s;
}

/* out += p · v over n floats */
TGT void g4c_avx2_axpy(float *out, float p, const float *v, int64_t n) {
    const __m256 pv = _mm256_set1_ps(p);
    const int64_t n8 = n & ~(int64_t)7;
    for (int64_t k = 0; k < n8; k += 8)
        _mm256_storeu_ps(out + k, _mm256_fmadd_ps(pv, _mm256_loadu_ps(v + k), _mm256_loadu_ps(out + k)));
    for (int64_t k = n8; k < n; k++) out[k] += p * v[k];
}

/* CPUID: AVX2 (leaf 7 EBX bit 5), FMA (leaf 1 ECX bit 12), F16C (ECX bit 29), and the OS saving YMM state
 * (OSXSAVE, ECX bit 27, then XCR0 bits 1-2). (clang 14's __builtin_cpu_supports does not know "f16c".) */
int g4c_avx2_supported(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int fma = (c >> 12) & 1, f16c = (c >> 29) & 1, osxsave = (c >> 27) & 1;
    if (!fma || !f16c || !osxsave) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return 0;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 5) & 1;
}

/* ---- attention (g4c_attention's AVX2 path) ------------------------------------------------------------------ */

#define INL __attribute__((always_inline)) inline

/* s[h * G4C_ATT_KB + t] = q_h · k_t for HT heads x KT keys: one 8-lane accumulator per pair over the head dimension
 * (the KT keys hide the FMA latency that one dot product alone waits on), reduced in hsum's fixed order, so a
 * score does not depend on the tile shape it was computed in */
TGT static INL void att_scores(float *s, const float *q, int hd, const float *const *k, int HT, int KT) {
    __m256 acc[4][4];
    for (int h = 0; h < HT; h++)
        for (int t = 0; t < KT; t++) acc[h][t] = _mm256_setzero_ps();
    const int d8 = hd & ~7;
    for (int c = 0; c < d8; c += 8) {
        __m256 kv[4];
        for (int t = 0; t < KT; t++) kv[t] = _mm256_loadu_ps(k[t] + c);
        for (int h = 0; h < HT; h++) {
            const __m256 qv = _mm256_loadu_ps(q + (size_t)h * hd + c);
            for (int t = 0; t < KT; t++) acc[h][t] = _mm256_fmadd_ps(qv, kv[t], acc[h][t]);
        }
    }
    for (int h = 0; h < HT; h++)
        for (int t = 0; t < KT; t++) {
            float x = hsum(acc[h][t]);
            for (int c = d8; c < hd; c++) x += q[(size_t)h * hd + c] * k[t][c];
            s[h * G4C_ATT_KB + t] = x;
        }
}

/* out_h[c, c + 8W) += Σ_t p[h * G4C_ATT_KB + t] · v_t[c, c + 8W) over nk keys, for HT heads: each output column gets
 * the same FMA sequence (keys in order) whatever HT and W */
TGT static INL void att_pv(float *out, int hd, const float *p, const float *const *v, int nk, int c, int HT, int W) {
    __m256 acc[4][2];
    for (int h = 0; h < HT; h++)
        for (int w = 0; w < W; w++) acc[h][w] = _mm256_loadu_ps(out + (size_t)h * hd + c + 8 * w);
    for (int t = 0; t < nk; t++) {
        __m256 vv[2];
        for (int w = 0; w < W; w++) vv[w] = _mm256_loadu_ps(v[t] + c + 8 * w);
        for (int h = 0; h < HT; h++) {
            const __m256 pb = _mm256_set1_ps(p[h * G4C_ATT_KB + t]);
            for (int w = 0; w < W; w++) acc[h][w] = _mm256_fmadd_ps(pb, vv[w], acc[h][w]);
        }
    }
    for (int h = 0; h < HT; h++)
        for (int w = 0; w < W; w++) _mm256_storeu_ps(out + (size_t)h * hd + c + 8 * w, acc[h][w]);
}

/* HT (<= 4) heads of one block: scores 3-4 keys at a time, then the values 16 columns at a time */
TGT static INL void att_heads(float *out, float *s, const float *q, int hd, const float *const *kr,
                              const float *const *vr, int nk, int phase, int HT) {
    if (phase == 0) {
        /* registers: HT·KT accumulators + KT keys + 1 query vector. 4 heads x 3 keys (12 FMA chains) scored E2B-shaped
         * prefill attention 15-20% faster than 4 x 2 on this VM (Zen 3: FMA latency 5, two pipes, 8 chains left it
         * latency-bound); bench/RESULTS.md, ninth session */
        enum { KT_FEW = 4, KT_MANY = 3 };
        const int KT = HT <= 2 ? KT_FEW : KT_MANY;
        int t = 0;
        for (; t + KT <= nk; t += KT) att_scores(s + t, q, hd, kr + t, HT, KT);
        for (; t < nk; t++) att_scores(s + t, q, hd, kr + t, HT, 1);
        return;
    }
    const int d8 = hd & ~7;
    int c = 0;
    for (; c + 16 <= d8; c += 16) att_pv(out, hd, s, vr, nk, c, HT, 2);
    for (; c < d8; c += 8) att_pv(out, hd, s, vr, nk, c, HT, 1);
    g4c_att_pv_tail(out, hd, s, vr, nk, c, HT);
}

TGT static void att_heads_any(float *out, float *s, const float *q, int hd, const float *const *kr,
                              const float *const *vr, int nk, int ht, int phase) {
    G4C_NT_DISPATCH(att_heads, ht, out, s, q, hd, kr, vr, nk, phase)
}

TGT void g4c_avx2_attend(float *out, const float *q, int gh, int hd, const float *k, const float *v, size_t stride,
                         int cap, int lo, int hi) {
    g4c_cpu_attend(att_heads_any, out, q, gh, hd, k, v, stride, cap, lo, hi);
}

TGT void g4c_cpu_attend(g4c_att_heads_fn heads, float *out, const float *q, int gh, int hd, const float *k,
                        const float *v, size_t stride, int cap, int lo, int hi) {
    float s[G4C_ATT_HEADS * G4C_ATT_KB], m[G4C_ATT_HEADS], l[G4C_ATT_HEADS];
    const float *kr[G4C_ATT_KB], *vr[G4C_ATT_KB];
    for (int h = 0; h < gh; h++) m[h] = -INFINITY, l[h] = 0;
    memset(out, 0, sizeof(float) * (size_t)gh * (size_t)hd);
    for (int j0 = lo; j0 <= hi; j0 += G4C_ATT_KB) {
        const int nk = hi - j0 + 1 < G4C_ATT_KB ? hi - j0 + 1 : G4C_ATT_KB;
        /* ring slots without a division per key (64 of them cost as much as a 2-head block's scores) */
        for (int t = 0, slot = j0 % cap; t < nk; t++, slot = slot + 1 == cap ? 0 : slot + 1) {
            const size_t row = (size_t)slot * stride;
            kr[t] = k + row, vr[t] = v + row;
        }
        for (int h0 = 0; h0 < gh; h0 += 4)
            heads(out + (size_t)h0 * hd, s + h0 * G4C_ATT_KB, q + (size_t)h0 * hd, hd, kr, vr, nk,
                  gh - h0 < 4 ? gh - h0 : 4, 0);
        /* online softmax: the block's weights relative to the running max; what was accumulated under an older
         * max is scaled down to the new one (exp(-inf) = 0 for the first block) */
        for (int h = 0; h < gh; h++) {
            float *sh = s + h * G4C_ATT_KB, mx = m[h];
            for (int t = 0; t < nk; t++) mx = sh[t] > mx ? sh[t] : mx;
            /* no subnormal weights (g4c_avx2_softmax_exp): a rescale below its floor is 0 */
            const float scale = m[h] - mx >= G4C_SOFTMAX_FLOOR ? expf(m[h] - mx) : 0.0f;
            const float sum = g4c_avx2_softmax_exp(sh, nk, mx);
            l[h] = l[h] * scale + sum;
            m[h] = mx;
            if (scale != 1.0f) {
                float *oh = out + (size_t)h * hd;
                for (int c = 0; c < hd; c++) oh[c] *= scale;
            }
        }
        for (int h0 = 0; h0 < gh; h0 += 4)
            heads(out + (size_t)h0 * hd, s + h0 * G4C_ATT_KB, q + (size_t)h0 * hd, hd, kr, vr, nk,
                  gh - h0 < 4 ? gh - h0 : 4, 1);
    }
    for (int h = 0; h < gh; h++) {
        const float inv = 1.0f / l[h];
        float *oh = out + (size_t)h * hd;
        for (int c = 0; c < hd; c++) oh[c] *= inv;
    }
}
