/* AVX2 integer kernels over the 8-row interleaved layout (kernels/cpu/repack.c) against 8-bit activations
 * (g4c_q8_block). Per block and token: the integer products of the 8 rows accumulate in the 8 int32 lanes of one
 * register (activations broadcast 4 bytes at a time), then one f32 step per lane:
 *   Q4_0: acc_k += d_k · (dx · Σ q·qx − 8 · dx · Σ qx)    (q the unsigned nibble; dx·Σqx is the block's s)
 *   Q8_0: acc_k += d_k · (dx · Σ q·qx)
 *   Q6_K: acc_k += d_k · Σ_chunks dx · Σ_sub sc_k,sub · Σ (q − 32)·qx   (per 256-column block)
 *   Q4_K: see group_q4_k
 * Prefill of Q4_0 and Q8_0 (4 tokens at a time) runs two groups per pass in inline assembly (group_q4_16x4,
 * group_q8_16x4, the latter on the activations as g4c_q8s_block) with the same arithmetic. Every output's arithmetic
 * is the same whatever the number of tokens, so decode == prefill bit for bit. */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/cpu_int.h"

#define TGT __attribute__((target("avx2,fma,f16c")))
#define INL __attribute__((always_inline)) inline

enum { MAX_T = 4 }; /* tokens per pass over a group's weights */

/* Decode streams each thread's rows as one sequence, its bytes asked for G4C_PF_AHEAD ahead (cpu_int.h) and
 * G4C_PF_FAR ahead into the L2 alone, as the AVX-512 kernels do (on the Xeon with the AVX2 kernels forced,
 * E2B Q4_0 tg 12.2-13.9 -> 13.0-15.9 tok/s, Q8_0 7.7-7.9 -> 9.0-9.3; bench/RESULTS.md, twelfth session).
 * PF_SPREAD: the K-quant blocks (1184 and 1680 bytes per group) ask for their bytes an eighth at a time, once per
 * 32-column chunk. All 19-27 prefetches at the block's start left the Q6_K head at ~87% of the read rate (the
 * requests queue behind the line-fill buffers while the loads wait); spread, ~96% (bench/RESULTS.md, ninth session). */
TGT static INL void prefetch_span(const uint8_t *p, size_t n) {
    for (size_t o = 0; o < n; o += 64) _mm_prefetch((const char *)p + G4C_PF_AHEAD + o, _MM_HINT_T0);
    for (size_t o = 0; o < n; o += 64) _mm_prefetch((const char *)p + G4C_PF_FAR + o, _MM_HINT_T2);
}

TGT static INL __m256i bcast4(const int8_t *x) {
    int32_t v;
    memcpy(&v, x, 4);
    return _mm256_set1_epi32(v);
}

/* Q4_0: 8 vectors of unsigned nibbles; vector j holds elements 4j..4j+3 of each row */
TGT static INL void unpack_q4(const uint8_t *q, __m256i w[8]) {
    const __m256i m = _mm256_set1_epi8(0x0F);
    for (int v = 0; v < 4; v++) {
        const __m256i r = _mm256_loadu_si256((const __m256i *)(q + 32 * v));
        w[v] = _mm256_and_si256(r, m);
        w[4 + v] = _mm256_and_si256(_mm256_srli_epi16(r, 4), m);
    }
}

/* Σ over the block per row lane. Each maddubs lane is at most 2·15·127 = 3810, eight of them 30480 < 2^15: the
 * sums stay exact in int16 until the one widening madd. */
TGT static INL __m256i dot_q4(const __m256i w[8], const int8_t *x) {
    __m256i s = _mm256_maddubs_epi16(w[0], bcast4(x));
    for (int j = 1; j < 8; j++) s = _mm256_add_epi16(s, _mm256_maddubs_epi16(w[j], bcast4(x + 4 * j)));
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
}

/* Q8_0: signed × signed through maddubs(|w|, sign(x, w)); a lane may reach 2·127·127, so widen every vector */
TGT static INL __m256i dot_q8(const uint8_t *q, const int8_t *x) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i s = _mm256_setzero_si256();
    for (int j = 0; j < 8; j++) {
        const __m256i w = _mm256_loadu_si256((const __m256i *)(q + 32 * j));
        const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(bcast4(x + 4 * j), w));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(p, ones));
    }
    return s;
}

/* 8 rows (one group) x NT tokens; NT a compile-time constant after inlining, so the accumulators stay in registers */
TGT static INL void group_q4(float *y, int64_t ldy, const g4c_q8_block *xq, int64_t nb, const uint8_t *g, int NT) {
    __m256 acc[MAX_T];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++, g += 144) {
        prefetch_span(g, 144);
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        __m256i w[8];
        unpack_q4(g + 16, w);
        for (int t = 0; t < NT; t++) {
            const g4c_q8_block *x = xq + (size_t)t * nb + b;
            const __m256 f = _mm256_cvtepi32_ps(dot_q4(w, x->q));
            const __m256 v = _mm256_fmsub_ps(f, _mm256_set1_ps(x->d), _mm256_set1_ps(8.0f * x->s));
            acc[t] = _mm256_fmadd_ps(v, d, acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + t * ldy, acc[t]);
}

/* Q4_0 prefill: 16 rows (two consecutive groups) x 4 tokens per pass, in inline assembly. Each activation broadcast
 * then meets the weights of both groups (8 broadcasts per 512 MACs instead of 16; with the int16 adds they share
 * the vector ports the maddubs leave free, the bound of the 8-row kernel). Registers: ymm0/1 the two groups' nibbles
 * of one 4-column slice (ymm4/5 their raw bytes), ymm8-15 the int16 sums of 2 groups x 4 tokens, ymm2/3 scratch;
 * the f32 accumulators and the two scale vectors live in memory, touched once per block. In C (group_q4 with 8
 * rows) GCC spills the weights and accumulators inside the token loop instead. Same integer sums and the same f32
 * operations in the same order as group_q4, so the results are bit-identical to it (and to decode). */
#define Q16_X0 "(%[x])"
#define Q16_X1 "(%[x],%[st],1)"
#define Q16_X2 "(%[x],%[st],2)"
#define Q16_X3 "(%[x],%[st3],1)"
/* column slice at byte OFF of each activation block, first slice: the sums start from its products */
#define Q16_FIRST(OFF, X, S0, S1)                                                                                   \
    "vpbroadcastd " #OFF X ", %%ymm2\n\t"                                                                           \
    "vpmaddubsw %%ymm2, %%ymm0, %%ymm" #S0 "\n\t"                                                                   \
    "vpmaddubsw %%ymm2, %%ymm1, %%ymm" #S1 "\n\t"
#define Q16_STEP(OFF, X, S0, S1)                                                                                    \
    "vpbroadcastd " #OFF X ", %%ymm2\n\t"                                                                           \
    "vpmaddubsw %%ymm2, %%ymm0, %%ymm3\n\t"                                                                         \
    "vpmaddubsw %%ymm2, %%ymm1, %%ymm2\n\t"                                                                         \
    "vpaddw %%ymm3, %%ymm" #S0 ", %%ymm" #S0 "\n\t"                                                                 \
    "vpaddw %%ymm2, %%ymm" #S1 ", %%ymm" #S1 "\n\t"
#define Q16_TOKENS(OFF, M) M(OFF, Q16_X0, 8, 9) M(OFF, Q16_X1, 10, 11) M(OFF, Q16_X2, 12, 13) M(OFF, Q16_X3, 14, 15)
/* raw vector at OFF of both groups: low nibbles = slice v, then high nibbles = slice 4 + v (unpack_q4) */
#define Q16_LO(OFF)                                                                                                 \
    "vmovdqu " #OFF "(%[g]), %%ymm4\n\t"                                                                            \
    "vmovdqu " #OFF "(%[g],%[gb],1), %%ymm5\n\t"                                                                    \
    "vpand %[mask], %%ymm4, %%ymm0\n\t"                                                                             \
    "vpand %[mask], %%ymm5, %%ymm1\n\t"
#define Q16_HI                                                                                                      \
    "vpsrlw $4, %%ymm4, %%ymm4\n\t"                                                                                 \
    "vpsrlw $4, %%ymm5, %%ymm5\n\t"                                                                                 \
    "vpand %[mask], %%ymm4, %%ymm0\n\t"                                                                             \
    "vpand %[mask], %%ymm5, %%ymm1\n\t"
/* both groups' f32 sums of one token (ymm S0, S1) times the block scales d into acc[A0], acc[A1] (bytes) */
#define G16_ACC(S0, S1, A0, A1)                                                                                     \
    "vmovaps " #A0 "(%[acc]), %%ymm0\n\t"                                                                           \
    "vmovaps " #A1 "(%[acc]), %%ymm1\n\t"                                                                           \
    "vfmadd231ps 0(%[d]), %%ymm" #S0 ", %%ymm0\n\t"                                                                 \
    "vfmadd231ps 32(%[d]), %%ymm" #S1 ", %%ymm1\n\t"                                                                \
    "vmovaps %%ymm0, " #A0 "(%[acc])\n\t"                                                                           \
    "vmovaps %%ymm1, " #A1 "(%[acc])\n\t"

/* group_q4's f32 step for one token, both groups: acc += d · (dx · Σ q·qx − 8 · s) */
#define Q16_F32(X, S0, S1, A0, A1)                                                                                  \
    "vbroadcastss 0" X ", %%ymm2\n\t"                                                                               \
    "vbroadcastss 4" X ", %%ymm3\n\t"                                                                               \
    "vmulps %[eight], %%ymm3, %%ymm3\n\t"                                                                           \
    "vpmaddwd %[ones], %%ymm" #S0 ", %%ymm" #S0 "\n\t"                                                              \
    "vpmaddwd %[ones], %%ymm" #S1 ", %%ymm" #S1 "\n\t"                                                              \
    "vcvtdq2ps %%ymm" #S0 ", %%ymm" #S0 "\n\t"                                                                      \
    "vcvtdq2ps %%ymm" #S1 ", %%ymm" #S1 "\n\t"                                                                      \
    "vfmsub132ps %%ymm2, %%ymm3, %%ymm" #S0 "\n\t"                                                                  \
    "vfmsub132ps %%ymm2, %%ymm3, %%ymm" #S1 "\n\t"                                                                  \
    G16_ACC(S0, S1, A0, A1)

/* the 16-row x 4-token kernels' int16 ones (vpmaddwd pair sums) and their result: acc[2t], acc[2t + 1] = token t's
 * rows 0-7 and 8-15 */
static const int16_t ones16[16] __attribute__((aligned(32))) = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
/* zeroed with vector stores: the initializer "= {{0}}" became a rep stosq, ~3% of a Q8_0 prefill (perf annotate) */
TGT static INL void zero_16x4(float acc[8][8]) {
    for (int i = 0; i < 8; i++) _mm256_store_ps(acc[i], _mm256_setzero_ps());
}
TGT static INL void store_16x4(float *y, int64_t ldy, float acc[8][8]) {
    for (int t = 0; t < 4; t++) {
        _mm256_storeu_ps(y + t * ldy, _mm256_load_ps(acc[2 * t]));
        _mm256_storeu_ps(y + t * ldy + 8, _mm256_load_ps(acc[2 * t + 1]));
    }
}

/* rows of the groups at g and g + nb · 144, tokens xq[0..3]: y[t * ldy + 0..15] */
TGT static void group_q4_16x4(float *y, int64_t ldy, const g4c_q8_block *xq, int64_t nb, const uint8_t *g) {
    static const uint8_t mask[32] __attribute__((aligned(32))) = {
        15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
        15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15};
    static const float eight[8] __attribute__((aligned(32))) = {8, 8, 8, 8, 8, 8, 8, 8};
    float acc[8][8] __attribute__((aligned(32))), d[2][8] __attribute__((aligned(32)));
    zero_16x4(acc);
    const int64_t st = nb * (int64_t)sizeof(g4c_q8_block), st3 = 3 * st, gb = nb * 144;
    const g4c_q8_block *x = xq;
    for (int64_t b = 0; b < nb; b++, g += 144, x++) {
        __asm__("prefetcht0 %c[pf0](%[g])\n\t"
                "prefetcht0 %c[pf1](%[g])\n\t"
                "prefetcht0 %c[pf2](%[g])\n\t"
                "prefetcht0 %c[pf0](%[g],%[gb],1)\n\t"
                "prefetcht0 %c[pf1](%[g],%[gb],1)\n\t"
                "prefetcht0 %c[pf2](%[g],%[gb],1)\n\t"
                "vcvtph2ps (%[g]), %%ymm0\n\t"
                "vcvtph2ps (%[g],%[gb],1), %%ymm1\n\t"
                "vmovaps %%ymm0, 0(%[d])\n\t"
                "vmovaps %%ymm1, 32(%[d])\n\t"
                Q16_LO(16) Q16_TOKENS(8, Q16_FIRST) Q16_HI Q16_TOKENS(24, Q16_STEP)
                Q16_LO(48) Q16_TOKENS(12, Q16_STEP) Q16_HI Q16_TOKENS(28, Q16_STEP)
                Q16_LO(80) Q16_TOKENS(16, Q16_STEP) Q16_HI Q16_TOKENS(32, Q16_STEP)
                Q16_LO(112) Q16_TOKENS(20, Q16_STEP) Q16_HI Q16_TOKENS(36, Q16_STEP)
                Q16_F32(Q16_X0, 8, 9, 0, 32) Q16_F32(Q16_X1, 10, 11, 64, 96) Q16_F32(Q16_X2, 12, 13, 128, 160)
                Q16_F32(Q16_X3, 14, 15, 192, 224)
                :
                : [g] "r"(g), [gb] "r"(gb), [x] "r"(x), [st] "r"(st), [st3] "r"(st3), [acc] "r"(acc), [d] "r"(d),
                  [ones] "m"(ones16), [mask] "m"(mask), [eight] "m"(eight), [pf0] "i"(G4C_PF_AHEAD),
                  [pf1] "i"(G4C_PF_AHEAD + 64), [pf2] "i"(G4C_PF_AHEAD + 128)
                : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
                  "xmm14", "xmm15", "memory");
    }
    store_16x4(y, ldy, acc);
}

TGT static INL void group_q8(float *y, int64_t ldy, const g4c_q8_block *xq, int64_t nb, const uint8_t *g, int NT) {
    __m256 acc[MAX_T];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++, g += 272) {
        prefetch_span(g, 272);
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        for (int t = 0; t < NT; t++) {
            const g4c_q8_block *x = xq + (size_t)t * nb + b;
            const __m256 f = _mm256_cvtepi32_ps(dot_q8(g + 16, x->q));
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(f, _mm256_set1_ps(x->d)), d, acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + t * ldy, acc[t]);
}

/* Q8_0 prefill, the same pairing, against the activations as g4c_q8s_block (cpu_int.h): per 4-column slice the raw
 * weights of both groups in ymm0/1 (loaded once for the 4 tokens), per token |q| broadcast in ymm2 and its sign
 * mask in ymm7; maddubs(|q|, w ^ m) then needs no vpsignb per group and token (vpsignb issues on 2 of the 4 vector
 * pipes, one of them a multiplier that maddubs and madd need: with it the kernel took ~15 cycles per 256 MACs in L1,
 * without it ~11.5; bench/RESULTS.md, fifth session). Each maddubs lane is a0·b0 + a1·b1 with b = w ^ m in
 * [-128, 127] and a = |q| <= 127 where m = 0, <= 128 where m = -1 (then b = -w - 1): each product lies in
 * [-16384, 16256], the lane in [-32768, 32512], so maddubs never saturates. The int32 sums of 2 groups x 4 tokens
 * stay in ymm8-15 and start from k (Σ_{q<0} |q|, what the flipped bits took away). Exact integer sums, then
 * group_q8's f32 steps: bit-identical to group_q8, so decode == prefill still holds. */
#define Q8S_PROD(J, X)                                                                                              \
    "vpbroadcastd 8+4*" #J X ", %%ymm2\n\t"                                                                         \
    "vpbroadcastd 40+4*" #J X ", %%ymm7\n\t"                                                                        \
    "vpxor %%ymm7, %%ymm0, %%ymm3\n\t"                                                                              \
    "vpxor %%ymm7, %%ymm1, %%ymm7\n\t"                                                                              \
    "vpmaddubsw %%ymm3, %%ymm2, %%ymm3\n\t"                                                                         \
    "vpmaddubsw %%ymm7, %%ymm2, %%ymm2\n\t"                                                                         \
    "vpmaddwd %%ymm6, %%ymm3, %%ymm3\n\t"                                                                           \
    "vpmaddwd %%ymm6, %%ymm2, %%ymm2\n\t"
/* first slice of a block: the sums start from k */
#define Q8S_FIRST(J, X, S0, S1)                                                                                     \
    Q8S_PROD(J, X)                                                                                                  \
    "vpbroadcastd 4" X ", %%ymm7\n\t"                                                                               \
    "vpaddd %%ymm7, %%ymm3, %%ymm" #S0 "\n\t"                                                                       \
    "vpaddd %%ymm7, %%ymm2, %%ymm" #S1 "\n\t"
#define Q8S_STEP(J, X, S0, S1)                                                                                      \
    Q8S_PROD(J, X)                                                                                                  \
    "vpaddd %%ymm3, %%ymm" #S0 ", %%ymm" #S0 "\n\t"                                                                 \
    "vpaddd %%ymm2, %%ymm" #S1 ", %%ymm" #S1 "\n\t"
#define Q8S_SLICE(J, M)                                                                                             \
    "vmovdqu 16+32*" #J "(%[g]), %%ymm0\n\t"                                                                        \
    "vmovdqu 16+32*" #J "(%[g],%[gb],1), %%ymm1\n\t"                                                                \
    M(J, Q16_X0, 8, 9) M(J, Q16_X1, 10, 11) M(J, Q16_X2, 12, 13) M(J, Q16_X3, 14, 15)
/* group_q8's f32 step for one token, both groups: acc += (Σ w·qx · dx) · d */
#define Q8P_F32(X, S0, S1, A0, A1)                                                                                  \
    "vbroadcastss 0" X ", %%ymm2\n\t"                                                                               \
    "vcvtdq2ps %%ymm" #S0 ", %%ymm" #S0 "\n\t"                                                                      \
    "vcvtdq2ps %%ymm" #S1 ", %%ymm" #S1 "\n\t"                                                                      \
    "vmulps %%ymm2, %%ymm" #S0 ", %%ymm" #S0 "\n\t"                                                                 \
    "vmulps %%ymm2, %%ymm" #S1 ", %%ymm" #S1 "\n\t"                                                                 \
    G16_ACC(S0, S1, A0, A1)

TGT void g4c_avx2_q8_signs(g4c_q8s_block *dst, const g4c_q8_block *src, int64_t n_blocks) {
    const __m256i z = _mm256_setzero_si256();
    for (int64_t i = 0; i < n_blocks; i++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)src[i].q);
        const __m256i a = _mm256_abs_epi8(q), m = _mm256_cmpgt_epi8(z, q);
        const __m256i s = _mm256_sad_epu8(_mm256_and_si256(a, m), z); /* Σ_{q<0} |q| in 4 partial sums */
        __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        t = _mm_add_epi64(t, _mm_unpackhi_epi64(t, t));
        dst[i].d = src[i].d;
        dst[i].k = _mm_cvtsi128_si32(t);
        _mm256_storeu_si256((__m256i *)dst[i].a, a);
        _mm256_storeu_si256((__m256i *)dst[i].m, m);
    }
}

TGT static void group_q8_16x4(float *y, int64_t ldy, const g4c_q8s_block *xs, int64_t nb, const uint8_t *g) {
    float acc[8][8] __attribute__((aligned(32))), d[2][8] __attribute__((aligned(32)));
    zero_16x4(acc);
    const int64_t st = nb * (int64_t)sizeof(g4c_q8s_block), st3 = 3 * st, gb = nb * 272;
    const g4c_q8s_block *x = xs;
    for (int64_t b = 0; b < nb; b++, g += 272, x++) {
        __asm__("prefetcht0 %c[pf](%[g])\n\t"
                "prefetcht0 %c[pf]+64(%[g])\n\t"
                "prefetcht0 %c[pf]+128(%[g])\n\t"
                "prefetcht0 %c[pf]+192(%[g])\n\t"
                "prefetcht0 %c[pf]+256(%[g])\n\t"
                "prefetcht0 %c[pf](%[g],%[gb],1)\n\t"
                "prefetcht0 %c[pf]+64(%[g],%[gb],1)\n\t"
                "prefetcht0 %c[pf]+128(%[g],%[gb],1)\n\t"
                "prefetcht0 %c[pf]+192(%[g],%[gb],1)\n\t"
                "prefetcht0 %c[pf]+256(%[g],%[gb],1)\n\t"
                "vmovdqa %[ones], %%ymm6\n\t"
                "vcvtph2ps (%[g]), %%ymm0\n\t"
                "vcvtph2ps (%[g],%[gb],1), %%ymm1\n\t"
                "vmovaps %%ymm0, 0(%[d])\n\t"
                "vmovaps %%ymm1, 32(%[d])\n\t"
                Q8S_SLICE(0, Q8S_FIRST) Q8S_SLICE(1, Q8S_STEP) Q8S_SLICE(2, Q8S_STEP) Q8S_SLICE(3, Q8S_STEP)
                Q8S_SLICE(4, Q8S_STEP) Q8S_SLICE(5, Q8S_STEP) Q8S_SLICE(6, Q8S_STEP) Q8S_SLICE(7, Q8S_STEP)
                Q8P_F32(Q16_X0, 8, 9, 0, 32) Q8P_F32(Q16_X1, 10, 11, 64, 96) Q8P_F32(Q16_X2, 12, 13, 128, 160)
                Q8P_F32(Q16_X3, 14, 15, 192, 224)
                :
                : [g] "r"(g), [gb] "r"(gb), [x] "r"(x), [st] "r"(st), [st3] "r"(st3), [acc] "r"(acc), [d] "r"(d),
                  [ones] "m"(ones16), [pf] "i"(G4C_PF_AHEAD)
                : "xmm0", "xmm1", "xmm2", "xmm3", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
                  "xmm14", "xmm15", "memory");
    }
    store_16x4(y, ldy, acc);
}

/* Q6_K: the 8 code vectors (0..63) of chunk c, vector j = elements 4j..4j+3 of each row */
TGT static INL void unpack_q6(const uint8_t *ch, __m256i w[8]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const __m256i h0 = _mm256_loadu_si256((const __m256i *)(ch + 128)), h1 = _mm256_loadu_si256((const __m256i *)(ch + 160));
    for (int v = 0; v < 4; v++) {
        const __m256i n = _mm256_loadu_si256((const __m256i *)(ch + 32 * v));
        /* bits 2v..2v+1 of the high-bit vector moved to bits 4..5 of each byte (epi16 shifts, then the byte mask) */
        __m256i a, b;
        switch (v) {
        case 0: a = _mm256_slli_epi16(h0, 4), b = _mm256_slli_epi16(h1, 4); break;
        case 1: a = _mm256_slli_epi16(h0, 2), b = _mm256_slli_epi16(h1, 2); break;
        case 2: a = h0, b = h1; break;
        default: a = _mm256_srli_epi16(h0, 2), b = _mm256_srli_epi16(h1, 2); break;
        }
        w[v] = _mm256_or_si256(_mm256_and_si256(n, m4), _mm256_and_si256(a, m30));
        w[4 + v] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(n, 4), m4), _mm256_and_si256(b, m30));
    }
}

/* The scales of chunk c's two sub-blocks (16 bytes: 8 rows of s0, then of s1) as int16 vectors s[0], s[1], lanes 2k
 * and 2k+1 = row k's scale: one widening, one cross-lane permute (quads s0 r0-3, s1 r0-3 | s0 r4-7, s1 r4-7), then
 * each lane half's quads duplicated pairwise */
TGT static INL void scales_q6(const uint8_t *sc, __m256i s[2]) {
    const __m256i v = _mm256_permute4x64_epi64(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc)), 0xD8);
    s[0] = _mm256_unpacklo_epi16(v, v);
    s[1] = _mm256_unpackhi_epi16(v, v);
}

/* Σ (q − 32)·qx over one 8-column half of a chunk (vectors w[0], w[1]) as int16, exact: the unsigned codes times
 * the activations (each maddubs lane at most 2·63·127 = 16002, two of them 32004: no saturation), minus what the
 * offset 32 adds, 32·Σ qx over the lane's four columns (xo, g4c_q6_offsets). The true value of a lane lies in
 * 4·[−32·127, 31·127], so the int16 wrap-around of the subtraction cannot change it. Without the sign instructions
 * of a signed (q − 32) the decode kernel issues ~30% fewer vector ops per chunk (it was compute-bound at 17.5 of
 * 25.6 GB/s on the tied head, bench_ops 262144x1536). */
TGT static INL __m256i dot_q6_half(const __m256i *w, const int8_t *x, const int32_t *xo) {
    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(w[0], bcast4(x)), _mm256_maddubs_epi16(w[1], bcast4(x + 4)));
    return _mm256_sub_epi16(p, _mm256_set1_epi32(*xo));
}

TGT static INL void group_q6_k(float *y, int64_t ldy, const g4c_q8_block *xq, const int32_t *xo, int64_t nb32,
                               const uint8_t *g, int NT) {
    __m256 acc[MAX_T];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb32 / 8; b++, g += 1680) {
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        __m256 blk[MAX_T];
        for (int t = 0; t < NT; t++) blk[t] = _mm256_setzero_ps();
        for (int c = 0; c < 8; c++) {
            prefetch_span(g + 210 * c, 210); /* an eighth of the block per chunk (PF_SPREAD) */
            __m256i w[8];
            unpack_q6(g + 144 + 192 * c, w);
            __m256i sc[2];
            scales_q6(g + 16 + 16 * c, sc);
            const __m256i s0 = sc[0], s1 = sc[1];
            for (int t = 0; t < NT; t++) {
                const size_t at = (size_t)t * nb32 + 8 * b + c;
                const int8_t *x = xq[at].q;
                const int32_t *o = xo + 4 * at;
                /* the sub-block sums of the old signed kernel, two halves each, the same int32 per row */
                const __m256i i0 = _mm256_add_epi32(_mm256_madd_epi16(dot_q6_half(w, x, o), s0),
                                                    _mm256_madd_epi16(dot_q6_half(w + 2, x + 8, o + 1), s0));
                const __m256i i1 = _mm256_add_epi32(_mm256_madd_epi16(dot_q6_half(w + 4, x + 16, o + 2), s1),
                                                    _mm256_madd_epi16(dot_q6_half(w + 6, x + 24, o + 3), s1));
                blk[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(i0, i1)), _mm256_set1_ps(xq[at].d), blk[t]);
            }
        }
        for (int t = 0; t < NT; t++) acc[t] = _mm256_fmadd_ps(blk[t], d, acc[t]);
    }
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + t * ldy, acc[t]);
}

/* Q4_K: per sub-block of 32 columns the Q4_0 unpacking (unsigned nibbles), the rows' 6-bit scales applied in the
 * widening madd (at most 63 · 30480 per lane pair), the mins through the activations' block sums s = dx · Σ qx:
 *   acc_k += d_k · Σ_s dx_s · sc_k,s · Σ q·qx − dmin_k · Σ_s m_k,s · s_s */
TGT static INL void group_q4_k(float *y, int64_t ldy, const g4c_q8_block *xq, int64_t nb32, const uint8_t *g, int NT) {
    __m256 acc[MAX_T];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb32 / 8; b++, g += 1184) {
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + 16)));
        __m256 bs[MAX_T], bm[MAX_T];
        for (int t = 0; t < NT; t++) bs[t] = bm[t] = _mm256_setzero_ps();
        for (int c = 0; c < 8; c++) {
            prefetch_span(g + 148 * c, 148); /* an eighth of the block per chunk (PF_SPREAD) */
            __m256i w[8];
            unpack_q4(g + 160 + 128 * c, w);
            int64_t v;
            memcpy(&v, g + 32 + 8 * c, 8);
            const __m256i s32 = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(v));
            const __m256i sc = _mm256_blend_epi16(s32, _mm256_slli_epi32(s32, 16), 0xAA);
            memcpy(&v, g + 96 + 8 * c, 8);
            const __m256 m = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(v)));
            for (int t = 0; t < NT; t++) {
                const g4c_q8_block *x = xq + (size_t)t * nb32 + 8 * b + c;
                __m256i s16 = _mm256_maddubs_epi16(w[0], bcast4(x->q));
                for (int j = 1; j < 8; j++) s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(w[j], bcast4(x->q + 4 * j)));
                bs[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(s16, sc)), _mm256_set1_ps(x->d), bs[t]);
                bm[t] = _mm256_fmadd_ps(m, _mm256_set1_ps(x->s), bm[t]);
            }
        }
        for (int t = 0; t < NT; t++) acc[t] = _mm256_fnmadd_ps(dmin, bm[t], _mm256_fmadd_ps(d, bs[t], acc[t]));
    }
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + t * ldy, acc[t]);
}

TGT void g4c_avx2_rows_x8(float *y, int64_t ldy, const g4c_q8_block *xq, const g4c_q8s_block *xs, const int32_t *xo,
                          int n_tok, const void *x8, g4c_dtype dt, int n_rows, int64_t cols) {
    const int64_t nb = cols / 32;
    const size_t gbytes = 8 * g4c_x8_row_bytes(dt, cols);
    for (int r0 = 0; r0 < n_rows;) {
        const uint8_t *g = (const uint8_t *)x8 + (size_t)(r0 / 8) * gbytes;
        if ((dt == G4C_DTYPE_Q4_0 || (dt == G4C_DTYPE_Q8_0 && xs)) && n_tok >= 4 && r0 + 16 <= n_rows) {
            /* prefill: two groups at once for whole quads of tokens, each group alone for the 1-3 left. Q8_0 runs
             * two such pairs per quad where it can, so the second reads the quad's activations (72 bytes per block
             * and token) from L1/L2 instead of L3. */
            const int pairs = dt == G4C_DTYPE_Q8_0 && r0 + 32 <= n_rows ? 2 : 1;
            int t0 = 0;
            for (; t0 + 4 <= n_tok; t0 += 4) {
                float *yt = y + (size_t)t0 * ldy + r0;
                const g4c_q8_block *xt = xq + (size_t)t0 * nb;
                if (dt == G4C_DTYPE_Q4_0) group_q4_16x4(yt, ldy, xt, nb, g);
                else
                    for (int p = 0; p < pairs; p++)
                        group_q8_16x4(yt + 16 * p, ldy, xs + (size_t)t0 * nb, nb, g + 2 * p * gbytes);
            }
            if (t0 < n_tok)
                for (int h = 0; h < 2 * pairs; h++) {
                    float *yt = y + (size_t)t0 * ldy + r0 + 8 * h;
                    const g4c_q8_block *xt = xq + (size_t)t0 * nb;
                    if (dt == G4C_DTYPE_Q4_0) {
                        G4C_NT_DISPATCH(group_q4, n_tok - t0, yt, ldy, xt, nb, g + h * gbytes)
                    } else {
                        G4C_NT_DISPATCH(group_q8, n_tok - t0, yt, ldy, xt, nb, g + h * gbytes)
                    }
                }
            r0 += 16 * pairs;
            continue;
        }
        for (int t0 = 0; t0 < n_tok; t0 += MAX_T) {
            const int nt = n_tok - t0 < MAX_T ? n_tok - t0 : MAX_T;
            float *yt = y + (size_t)t0 * ldy + r0;
            const g4c_q8_block *xt = xq + (size_t)t0 * nb;
            if (dt == G4C_DTYPE_Q4_0) {
                G4C_NT_DISPATCH(group_q4, nt, yt, ldy, xt, nb, g)
            } else if (dt == G4C_DTYPE_Q4_K) {
                G4C_NT_DISPATCH(group_q4_k, nt, yt, ldy, xt, nb, g)
            } else if (dt == G4C_DTYPE_Q6_K) {
                G4C_NT_DISPATCH(group_q6_k, nt, yt, ldy, xt, xo + (size_t)t0 * nb * 4, nb, g)
            } else {
                G4C_NT_DISPATCH(group_q8, nt, yt, ldy, xt, nb, g)
            }
        }
        r0 += 8;
    }
}
