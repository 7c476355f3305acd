/* Attention's inner blocks with 512-bit registers (ISA level 2), under avx2.c's walk over key blocks and its online
 * softmax (g4c_cpu_attend). Twice the lanes of avx2.c's tiles and twice the registers: scores of 4 heads x 6 keys
 * (24 accumulators, each one score over the head dimension) and values 64 columns at a time. As in avx2.c, a score
 * is one accumulator reduced in a fixed order and each output column gets the same FMA sequence (keys in order),
 * whatever the tile, so a head's result does not depend on how many heads or keys came with it (decode ==
 * prefill). */
#include <immintrin.h>

#include "kernels/cpu/cpu_int.h"

#define TGT __attribute__((target("avx2,fma,avx512f")))
#define INL __attribute__((always_inline)) inline

/* s[h · G4C_ATT_KB + t] = q_h · k_t for HT heads x KT keys */
TGT static INL void scores(float *s, const float *q, int hd, const float *const *k, int HT, int KT) {
    __m512 acc[4][8];
    for (int h = 0; h < HT; h++)
        for (int t = 0; t < KT; t++) acc[h][t] = _mm512_setzero_ps();
    const int d16 = hd & ~15;
    for (int c = 0; c < d16; c += 16) {
        __m512 kv[8];
        for (int t = 0; t < KT; t++) kv[t] = _mm512_loadu_ps(k[t] + c);
        for (int h = 0; h < HT; h++) {
            const __m512 qv = _mm512_loadu_ps(q + (size_t)h * hd + c);
            for (int t = 0; t < KT; t++) acc[h][t] = _mm512_fmadd_ps(qv, kv[t], acc[h][t]);
        }
    }
    for (int h = 0; h < HT; h++)
        for (int t = 0; t < KT; t++) {
            float x = _mm512_reduce_add_ps(acc[h][t]);
            for (int c = d16; c < hd; c++) x += q[(size_t)h * hd + c] * k[t][c];
            s[h * G4C_ATT_KB + t] = x;
        }
}

/* out_h[c, c + 16W) += Σ_t p[h · G4C_ATT_KB + t] · v_t[c, c + 16W) over nk keys, for HT heads */
TGT static INL void pv(float *out, int hd, const float *p, const float *const *v, int nk, int c, int HT, int W) {
    __m512 acc[4][4];
    for (int h = 0; h < HT; h++)
        for (int w = 0; w < W; w++) acc[h][w] = _mm512_loadu_ps(out + (size_t)h * hd + c + 16 * w);
    for (int t = 0; t < nk; t++) {
        __m512 vv[4];
        for (int w = 0; w < W; w++) vv[w] = _mm512_loadu_ps(v[t] + c + 16 * w);
        for (int h = 0; h < HT; h++) {
            const __m512 pb = _mm512_set1_ps(p[h * G4C_ATT_KB + t]);
            for (int w = 0; w < W; w++) acc[h][w] = _mm512_fmadd_ps(pb, vv[w], acc[h][w]);
        }
    }
    for (int h = 0; h < HT; h++)
        for (int w = 0; w < W; w++) _mm512_storeu_ps(out + (size_t)h * hd + c + 16 * w, acc[h][w]);
}

/* registers: HT·KT accumulators + KT keys + a query vector (31 of 32 at 4 x 6); decode's tasks hold 2 heads (cpu.c)
 * and take 8 keys */
TGT static INL void heads(float *out, float *s, const float *q, int hd, const float *const *kr,
                          const float *const *vr, int nk, int phase, int HT) {
    if (phase == 0) {
        const int KT = HT <= 2 ? 8 : 6;
        int t = 0;
        for (; t + KT <= nk; t += KT) scores(s + t, q, hd, kr + t, HT, KT);
        for (; t < nk; t++) scores(s + t, q, hd, kr + t, HT, 1);
        return;
    }
    const int d16 = hd & ~15;
    int c = 0;
    for (; c + 64 <= d16; c += 64) pv(out, hd, s, vr, nk, c, HT, 4);
    for (; c < d16; c += 16) pv(out, hd, s, vr, nk, c, HT, 1);
    g4c_att_pv_tail(out, hd, s, vr, nk, c, HT);
}

TGT static void heads_any(float *out, float *s, const float *q, int hd, const float *const *kr,
                          const float *const *vr, int nk, int ht, int phase) {
    G4C_NT_DISPATCH(heads, ht, out, s, q, hd, kr, vr, nk, phase)
}

void g4c_avx512_attend(float *out, const float *q, int gh, int hd, const float *k, const float *v, size_t stride,
                       int cap, int lo, int hi) {
    g4c_cpu_attend(heads_any, out, q, gh, hd, k, v, stride, cap, lo, hi);
}
