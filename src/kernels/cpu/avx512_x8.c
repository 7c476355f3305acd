/* The 8-row interleaved layout (repack.c) on CPUs with AVX-512 VNNI, all four of its types: vpdpbusd (512-bit)
 * adds four u8 x s8 products straight into each int32 lane, where AVX2 needs vpmaddubsw, an
 * int16 sum and a widening vpmaddwd (avx2_x8.c). Same layout, same integer sums and the same f32 steps in the same
 * order as avx2_x8.c's group_q4 / group_q8 / group_q6_k / group_q4_k, so the outputs are bit-identical to the AVX2
 * kernels (test_repack.c checks it where the CPU has VNNI) and decode == prefill still holds:
 *   Q4_0: Σ q·x with q the unsigned nibble (u8 operand) and x the activation (s8 operand)
 *   Q8_0: Σ (w + 128)·x − 128·Σx = Σ w·x (w ^ 0x80 is w + 128 as u8; int32 lanes never overflow: <= 32·255·127)
 *   Q6_K: per 16-column sub-block Σ q·x − 32·Σx = Σ (q − 32)·x (q the unsigned 6-bit code), times the row's scale
 *   Q4_K: per 32-column sub-block Σ q·x times the row's scale (vpmulld: the int16 madd of AVX2 needs int16 sums)
 * Two groups (16 rows, one 512-bit register) x up to 4 tokens per pass, 8 for Q4_0 and Q8_0 in prefill: the unpacked
 * weights (and, shifts, inserts, scales: ~19 of a Q4_0 block's ~63 port-0/5 vector ops at 4 tokens) then serve twice
 * the tokens; E2B pp512 81.6 -> 100.2 (Q4_0) and 77.5 -> 95.5 tok/s (Q8_0), E4B Q4_0 44.7 -> 53.4 (bench/RESULTS.md,
 * twelfth session). The K-quant passes keep 4: their unpacked codes and per-token sums would not fit the 32 zmm
 * registers at 8. */
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

/* Each group's bytes G4C_PF_AHEAD ahead of byte `at` of it, as avx2_x8.c's decode asks for them (one sequential stream
 * per group). g0: the first group's start; gsz: one group's bytes. Past its group's end a pair's request goes to
 * the same place of the next pair (the next 2·gsz bytes): straight on, the first group's ran into the second's
 * bytes (already being read) and the next pair's second group started cold, ~300 cycles of DRAM latency per pair
 * (the 26B-A4B's 704-column expert down matrices read at 24.5 GMAC/s against 32 for the long rows).
 * And the same bytes G4C_PF_FAR ahead into the L2 alone (cpu_int.h says why), the same walk over pairs, up to
 * `end` (the call's last group: the rows after it are another task's, maybe another core's). */
TGT static INL void prefetch_groups(const uint8_t *g0, int64_t at, int64_t gsz, int G, int n, const uint8_t *end) {
    for (int o = 0; o < n; o += 64) {
        int64_t q = at + G4C_PF_AHEAD + o;
        if (G == 2 && q >= gsz) q += gsz;
        for (int gi = 0; gi < G; gi++) _mm_prefetch((const char *)g0 + gi * gsz + q, _MM_HINT_T0);
    }
    int64_t q = at + G4C_PF_FAR;
    const uint8_t *p = g0;
    if (G == 2)
        for (; q >= gsz; q -= gsz) p += 2 * gsz; /* no division: a few steps (256 Q4_0 columns: 1.1 KB a group) */
    p += q;
    for (int gi = 0; gi < G; gi++)
        if (p + gi * gsz < end)
            for (int o = 0; o < n; o += 64) _mm_prefetch((const char *)p + gi * gsz + o, _MM_HINT_T2);
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
                            const uint8_t *end, int G, int NT) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[8];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    const uint8_t *g0 = g;
    for (int64_t b = 0; b < nb; b++, g += 144) {
        prefetch_groups(g0, 144 * b, 144 * nb, G, 144, end);
        __m512i is[8];
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
                            const uint8_t *g, int64_t gb, const uint8_t *end, int G, int NT) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512 acc[8];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    const uint8_t *g0 = g;
    for (int64_t b = 0; b < nb; b++, g += 272) {
        prefetch_groups(g0, 272 * b, 272 * nb, G, 272, end);
        __m512i is[8];
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

/* 8 bytes of each group (one per row) as the 16 int32 lanes, sign- or zero-extended */
TGT static INL __m512i bytes2(const uint8_t *p, int64_t gb, int is_signed) {
    int64_t a, b;
    memcpy(&a, p, 8);
    memcpy(&b, p + gb, 8);
    const __m128i v = _mm_set_epi64x(b, a);
    return is_signed ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v);
}

/* Q6_K: the 8 code vectors (0..63) of one 32-column chunk of both groups, as avx2_x8.c's unpack_q6 builds them */
TGT static INL void unpack_q6(const uint8_t *ch, int64_t gb, __m512i w[8]) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const __m512i h0 = load2(ch + 128, gb), h1 = load2(ch + 160, gb);
    for (int v = 0; v < 4; v++) {
        const __m512i n = load2(ch + 32 * v, gb);
        __m512i a, b;
        switch (v) {
        case 0: a = _mm512_slli_epi16(h0, 4), b = _mm512_slli_epi16(h1, 4); break;
        case 1: a = _mm512_slli_epi16(h0, 2), b = _mm512_slli_epi16(h1, 2); break;
        case 2: a = h0, b = h1; break;
        default: a = _mm512_srli_epi16(h0, 2), b = _mm512_srli_epi16(h1, 2); break;
        }
        w[v] = _mm512_or_si512(_mm512_and_si512(n, m4), _mm512_and_si512(a, m30));
        w[4 + v] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(n, 4), m4), _mm512_and_si512(b, m30));
    }
}

/* xk: g4c_q6_sums, −32·Σx per 16 columns, the start of each sub-block's sum: Σ (q − 32)·x exactly, as AVX2's int16
 * halves minus g4c_q6_offsets reach after its madd */
TGT static INL void pass_q6_k(float *y, int64_t ldy, const g4c_q8_block *xq, const int32_t *xk, int64_t nb32,
                              const uint8_t *g, int64_t gb, const uint8_t *end, int G, int NT) {
    __m512 acc[4];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    const uint8_t *g0 = g;
    for (int64_t b = 0; b < nb32 / 8; b++, g += 1680) {
        __m512 blk[4];
        for (int t = 0; t < NT; t++) blk[t] = _mm512_setzero_ps();
        for (int c = 0; c < 8; c++) {
            prefetch_groups(g0, 1680 * b + 210 * c, 1680 * (nb32 / 8), G, 210, end); /* an eighth per chunk (PF_SPREAD) */
            __m512i w[8];
            unpack_q6(g + 144 + 192 * c, gb, w);
            const __m512i s0 = bytes2(g + 16 + 16 * c, gb, 1), s1 = bytes2(g + 24 + 16 * c, gb, 1);
            for (int t = 0; t < NT; t++) {
                const size_t at = (size_t)t * nb32 + 8 * b + c;
                const int8_t *x = xq[at].q;
                __m512i i0 = _mm512_set1_epi32(xk[2 * at]), i1 = _mm512_set1_epi32(xk[2 * at + 1]);
                for (int j = 0; j < 4; j++) {
                    i0 = _mm512_dpbusd_epi32(i0, w[j], bcast4z(x + 4 * j));
                    i1 = _mm512_dpbusd_epi32(i1, w[4 + j], bcast4z(x + 16 + 4 * j));
                }
                const __m512i i = _mm512_add_epi32(_mm512_mullo_epi32(i0, s0), _mm512_mullo_epi32(i1, s1));
                blk[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), _mm512_set1_ps(xq[at].d), blk[t]);
            }
        }
        const __m512 d = scales2(g, gb);
        for (int t = 0; t < NT; t++) acc[t] = _mm512_fmadd_ps(blk[t], d, acc[t]);
    }
    for (int t = 0; t < NT; t++) store2(y + t * ldy, acc[t], G);
}

/* Q4_K: acc_k += d_k · Σ_s dx_s · sc_k,s · Σ q·qx − dmin_k · Σ_s m_k,s · s_s (avx2_x8.c group_q4_k) */
TGT static INL void pass_q4_k(float *y, int64_t ldy, const g4c_q8_block *xq, int64_t nb32, const uint8_t *g,
                              int64_t gb, const uint8_t *end, int G, int NT) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[4];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    const uint8_t *g0 = g;
    for (int64_t b = 0; b < nb32 / 8; b++, g += 1184) {
        __m512 bs[4], bm[4];
        for (int t = 0; t < NT; t++) bs[t] = bm[t] = _mm512_setzero_ps();
        for (int c = 0; c < 8; c++) {
            prefetch_groups(g0, 1184 * b + 148 * c, 1184 * (nb32 / 8), G, 148, end); /* an eighth per chunk (PF_SPREAD) */
            __m512i lo[4], hi[4];
            for (int v = 0; v < 4; v++) {
                const __m512i r = load2(g + 160 + 128 * c + 32 * v, gb);
                lo[v] = _mm512_and_si512(r, m4), hi[v] = _mm512_and_si512(_mm512_srli_epi16(r, 4), m4);
            }
            const __m512i sc = bytes2(g + 32 + 8 * c, gb, 0);
            const __m512 m = _mm512_cvtepi32_ps(bytes2(g + 96 + 8 * c, gb, 0));
            for (int t = 0; t < NT; t++) {
                const g4c_q8_block *x = xq + (size_t)t * nb32 + 8 * b + c;
                __m512i is = _mm512_setzero_si512();
                for (int v = 0; v < 4; v++) {
                    is = _mm512_dpbusd_epi32(is, lo[v], bcast4z(x->q + 4 * v));
                    is = _mm512_dpbusd_epi32(is, hi[v], bcast4z(x->q + 16 + 4 * v));
                }
                bs[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(is, sc)), _mm512_set1_ps(x->d), bs[t]);
                bm[t] = _mm512_fmadd_ps(m, _mm512_set1_ps(x->s), bm[t]);
            }
        }
        const __m512 d = scales2(g, gb), dmin = scales2(g + 16, gb);
        for (int t = 0; t < NT; t++) acc[t] = _mm512_fnmadd_ps(dmin, bm[t], _mm512_fmadd_ps(d, bs[t], acc[t]));
    }
    for (int t = 0; t < NT; t++) store2(y + t * ldy, acc[t], G);
}

/* G4C_NT_DISPATCH (1..4 tokens) and a pass of 8 */
#define NT8_DISPATCH(fn, nt, ...)                                                                                   \
    if ((nt) == 8) fn(__VA_ARGS__, 8);                                                                              \
    else G4C_NT_DISPATCH(fn, nt, __VA_ARGS__)

TGT void g4c_avx512_rows_x8(float *y, int64_t ldy, const g4c_q8_block *xq, const int32_t *xk, int n_tok,
                            const void *x8, g4c_dtype dt, int n_rows, int64_t cols) {
    const int64_t nb = cols / 32;
    const int64_t gb = 8 * (int64_t)g4c_x8_row_bytes(dt, cols); /* one 8-row group */
    const uint8_t *end = (const uint8_t *)x8 + (size_t)((n_rows + 7) / 8) * (size_t)gb;
    const int max_nt = dt == G4C_DTYPE_Q4_0 || dt == G4C_DTYPE_Q8_0 ? 8 : 4; /* tokens per pass (the header says why) */
    for (int r0 = 0; r0 < n_rows;) {
        const uint8_t *g = (const uint8_t *)x8 + (size_t)(r0 / 8) * (size_t)gb;
        const int two = r0 + 16 <= n_rows;
        for (int t0 = 0, nt; t0 < n_tok; t0 += nt) {
            nt = n_tok - t0 >= max_nt ? max_nt : n_tok - t0 < 4 ? n_tok - t0 : 4;
            float *yt = y + (size_t)t0 * ldy + r0;
            const g4c_q8_block *xt = xq + (size_t)t0 * nb;
            const int64_t g2 = two ? gb : 0;
            const int G = two ? 2 : 1;
            switch (dt) {
            case G4C_DTYPE_Q4_0: NT8_DISPATCH(pass_q4, nt, yt, ldy, xt, nb, g, g2, end, G) break;
            case G4C_DTYPE_Q8_0: NT8_DISPATCH(pass_q8, nt, yt, ldy, xt, xk + (size_t)t0 * nb, nb, g, g2, end, G) break;
            case G4C_DTYPE_Q6_K: G4C_NT_DISPATCH(pass_q6_k, nt, yt, ldy, xt, xk + 2 * (size_t)t0 * nb, nb, g, g2, end, G) break;
            default: G4C_NT_DISPATCH(pass_q4_k, nt, yt, ldy, xt, nb, g, g2, end, G) break;
            }
        }
        r0 += two ? 16 : 8;
    }
}
