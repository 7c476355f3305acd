/* Q4_0 and Q8_0 in the 8-row interleaved layout (repack.c) on CPUs with AVX-512 VNNI: vpdpbusd (512-bit)
 * adds four u8 x s8 products straight into each int32 lane, where AVX2 needs vpmaddubsw, an
 * int16 sum and a widening vpmaddwd (avx2_x8.c). Same layout, same integer sums and the same f32 steps in the same
 * order as avx2_x8.c's group_q4 / group_q8, so the outputs are bit-identical to the AVX2 kernels (test_repack.c
 * checks it where the CPU has VNNI) and decode == prefill still holds:
 *   Q4_0: Σ q·x with q the unsigned nibble (u8 operand) and x the activation (s8 operand)
 *   Q8_0: Σ (w + 128)·x − 128·Σx = Σ w·x (w ^ 0x80 is w + 128 as u8; int32 lanes never overflow: <= 32·255·127)
 * Two groups (16 rows, one 512-bit register) x up to 4 tokens per pass. */
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

/* each group's bytes ~1.5 KB ahead, as avx2_x8.c's decode asks for them (one sequential stream per group) */
TGT static INL void prefetch_groups(const uint8_t *g, int64_t gb, int G, int n) {
    for (int gi = 0; gi < G; gi++)
        for (int o = 0; o < n; o += 64) _mm_prefetch((const char *)g + gi * gb + 1536 + o, _MM_HINT_T0);
}

/* Two groups in one 512-bit register (lanes 0-7 the first group's rows, 8-15 the second's; each 32-byte vector
 * loaded from its group and inserted): on the GPU host's Xeon a zmm vpdpbusd issues as often as a ymm one (4.0 vs
 * 3.9 G/s per core, register-only loop), so it does twice the products. G = 1 (a lone last group): gb = 0 loads
 * the group into both halves and only the low half is stored. */
TGT static INL __m512i load2(const uint8_t *g, int64_t gb) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)g)),
                              _mm256_loadu_si256((const __m256i *)(g + gb)), 1);
}
TGT static INL __m512 scales2(const uint8_t *g, int64_t gb) {
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)g)),
                                                   _mm_loadu_si128((const __m128i *)(g + gb)), 1));
}
TGT static INL __m512i bcast4z(const int8_t *x) {
    int32_t v;
    memcpy(&v, x, 4);
    return _mm512_set1_epi32(v);
}

TGT static INL void store2(float *y, __m512 v, int G) {
    if (G == 2) _mm512_storeu_ps(y, v);
    else _mm256_storeu_ps(y, _mm512_castps512_ps256(v));
}

TGT static INL void pass_q4(float *y, int64_t ldy, const g4c_q8_block *xq, int64_t nb, const uint8_t *g, int64_t gb,
                            int G, int NT) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[4];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, g += 144) {
        prefetch_groups(g, gb, G, 144);
        __m512i is[4];
        for (int t = 0; t < NT; t++) is[t] = _mm512_setzero_si512();
        for (int v = 0; v < 4; v++) {
            const __m512i r = load2(g + 16 + 32 * v, gb);
            const __m512i lo = _mm512_and_si512(r, m4), hi = _mm512_and_si512(_mm512_srli_epi16(r, 4), m4);
            for (int t = 0; t < NT; t++) {
                const int8_t *x = xq[(size_t)t * nb + b].q;
                is[t] = _mm512_dpbusd_epi32(is[t], lo, bcast4z(x + 4 * v));
                is[t] = _mm512_dpbusd_epi32(is[t], hi, bcast4z(x + 16 + 4 * v));
            }
        }
        const __m512 d = scales2(g, gb);
        for (int t = 0; t < NT; t++) {
            const g4c_q8_block *x = xq + (size_t)t * nb + b;
            const __m512 v = _mm512_fmsub_ps(_mm512_cvtepi32_ps(is[t]), _mm512_set1_ps(x->d), _mm512_set1_ps(8.0f * x->s));
            acc[t] = _mm512_fmadd_ps(v, d, acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) store2(y + t * ldy, acc[t], G);
}

/* Σ (w + 128)·x per lane (w ^ 0x80 as u8) from xk = −128·Σx per block and token (g4c_q8_bias_sums, once per call:
 * computing it here, per pass, took a fifth of the pass's vector instructions): the exact Σ w·x */
TGT static INL void pass_q8(float *y, int64_t ldy, const g4c_q8_block *xq, const int32_t *xk, int64_t nb,
                            const uint8_t *g, int64_t gb, int G, int NT) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512 acc[4];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, g += 272) {
        prefetch_groups(g, gb, G, 272);
        __m512i is[4];
        for (int t = 0; t < NT; t++) is[t] = _mm512_set1_epi32(xk[(size_t)t * nb + b]);
        for (int j = 0; j < 8; j++) {
            const __m512i u = _mm512_xor_si512(load2(g + 16 + 32 * j, gb), flip);
            for (int t = 0; t < NT; t++) is[t] = _mm512_dpbusd_epi32(is[t], u, bcast4z(xq[(size_t)t * nb + b].q + 4 * j));
        }
        const __m512 d = scales2(g, gb);
        for (int t = 0; t < NT; t++) {
            const __m512 f = _mm512_cvtepi32_ps(is[t]);
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(f, _mm512_set1_ps(xq[(size_t)t * nb + b].d)), d, acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) store2(y + t * ldy, acc[t], G);
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
                G4C_NT_DISPATCH(pass_q4, nt, yt, ldy, xt, nb, g, two ? gb : 0, two ? 2 : 1)
            } else {
                G4C_NT_DISPATCH(pass_q8, nt, yt, ldy, xt, kt, nb, g, two ? gb : 0, two ? 2 : 1)
            }
        }
        r0 += two ? 16 : 8;
    }
}
