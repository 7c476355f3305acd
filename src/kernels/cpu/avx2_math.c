/* AVX2 tanh for GELU and the final softcap: the decode step evaluates ~0.3 M tanh per token (every FFN width, every
 * layer) plus one per vocabulary entry, and libm's scalar tanhf was ~10% of an E2B token. The same e^y serves the
 * attention's softmax (g4c_avx2_softmax_exp).
 *   |x| < 0.625: odd polynomial x + x³·P(x²) (the minimax coefficients of Cephes' tanhf), relative error ~1e-7;
 *   otherwise:   1 − 2 / (e^{2|x|} + 1) with the sign restored, e^y by y = n·ln2 + r (ln2 in two parts) and a
 *                degree-6 polynomial for e^r (Cephes' expf coefficients); 2|x| is clamped at 88 (tanh is 1 there).
 * Checked against libm over a dense sweep in tests/unit/test_ops.c (absolute and relative error bounds). */
#include <immintrin.h>
#include <math.h>

#include "kernels/cpu/cpu_int.h"

#define TGT __attribute__((target("avx2,fma")))

TGT static inline __m256 exp_ps(__m256 y) { /* y in [−86.5, 88]: 2^n with n in [−125, 127], never subnormal */
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(y, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), y);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* × 2^n, added to the exponent field (p in [0.7, 1.42]: biased exponent 126 or 127, plus n stays in 1..254) */
    const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
}

TGT static inline __m256 tanh_ps(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 ax = _mm256_andnot_ps(sign, x);
    /* small: x + x³·P(x²) */
    const __m256 z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
    const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    /* large: 1 − 2 / (e^{2|x|} + 1) */
    const __m256 y = _mm256_min_ps(_mm256_add_ps(ax, ax), _mm256_set1_ps(88.0f));
    const __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                                     _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(exp_ps(y), _mm256_set1_ps(1.0f))));
    const __m256 large = _mm256_or_ps(big, _mm256_and_ps(sign, x));
    return _mm256_blendv_ps(large, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
}

TGT void g4c_avx2_tanh(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, tanh_ps(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float a[8] = {0}, b[8];
        for (int64_t k = i; k < n; k++) a[k - i] = x[k];
        _mm256_storeu_ps(b, tanh_ps(_mm256_loadu_ps(a)));
        for (int64_t k = i; k < n; k++) y[k] = b[k - i];
    }
}

/* y = gelu_tanh(gate) · up = 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³)))·up, the formula of ops.h g4c_gelu_tanh */
TGT void g4c_avx2_gelu_mul(float *y, const float *gate, const float *up, int64_t n) {
    const __m256 k0 = _mm256_set1_ps(0.7978845608028654f), k1 = _mm256_set1_ps(0.044715f), h = _mm256_set1_ps(0.5f),
                 one = _mm256_set1_ps(1.0f);
    /* the tail goes through the same vector code (padded), so an element's result does not depend on where it
     * falls in the array (a token's experts may be one call or several) */
    int64_t i = 0;
    float tg[8] = {0}, tu[8] = {0}, ty[8];
    for (; i < n; i += 8) {
        const int tail = n - i < 8;
        if (tail) {
            for (int64_t k = i; k < n; k++) tg[k - i] = gate[k], tu[k - i] = up[k];
        }
        const __m256 g = _mm256_loadu_ps(tail ? tg : gate + i);
        /* k0·(g + k1·g·g·g), evaluated in the scalar formula's order */
        const __m256 inner = _mm256_mul_ps(k0, _mm256_add_ps(g, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(k1, g), g), g)));
        const __m256 t = tanh_ps(inner);
        const __m256 v = _mm256_mul_ps(_mm256_mul_ps(h, g), _mm256_add_ps(one, t));
        const __m256 r = _mm256_mul_ps(v, _mm256_loadu_ps(tail ? tu : up + i));
        if (!tail) {
            _mm256_storeu_ps(y + i, r);
            continue;
        }
        _mm256_storeu_ps(ty, r);
        for (int64_t k = i; k < n; k++) y[k] = ty[k - i];
    }
}

/* p[t] = e^(p[t] − mx) for t < n (every p[t] <= mx, mx finite), returning Σ p (8 lanes, then the lanes in a fixed
 * order: a result depends on n only, not on where the block sits). Arguments below −80 give 0: e^x < 2e-35 there,
 * nothing beside the block's maximum (which gives 1) in f32, and neither these weights nor their products with the
 * values (|v| > 7e-4) are subnormal. Every subnormal result or operand costs an Intel core a microcode assist: with
 * libm's expf per score, the E2B prefill's attention took 28% of the time on the GPU host's Xeon against 8% on this
 * project's AMD machine. */
TGT float g4c_avx2_softmax_exp(float *p, int n, float mx) {
    const __m256 m = _mm256_set1_ps(mx), lo = _mm256_set1_ps(G4C_SOFTMAX_FLOOR);
    __m256 sum = _mm256_setzero_ps();
    for (int t = 0; t < n; t += 8) {
        const int k = n - t < 8 ? n - t : 8;
        float pad[8];
        for (int i = 0; i < 8; i++) pad[i] = i < k ? p[t + i] : -INFINITY; /* padding lanes give 0 */
        const __m256 y = _mm256_sub_ps(k == 8 ? _mm256_loadu_ps(p + t) : _mm256_loadu_ps(pad), m);
        const __m256 e = _mm256_and_ps(exp_ps(_mm256_max_ps(y, lo)), _mm256_cmp_ps(y, lo, _CMP_GE_OQ));
        sum = _mm256_add_ps(sum, e);
        if (k == 8) _mm256_storeu_ps(p + t, e);
        else {
            _mm256_storeu_ps(pad, e);
            for (int i = 0; i < k; i++) p[t + i] = pad[i];
        }
    }
    float l[8];
    _mm256_storeu_ps(l, sum);
    return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}
