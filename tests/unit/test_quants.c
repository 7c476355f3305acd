/* Block types (kernels/ref/quants.c) against ggml's layouts (ggml-common.h, dequantize_row_* in ggml-quants.c):
 * each type's dequantization of hand-built block bytes, where the expected floats are computed here from the layout
 * definition element by element (not with the block loops of quants.c); and quantize -> dequantize error bounds on
 * random data, plus edge cases (zeros, constants, extremes, non-finite input). */
#include "kernels/ops.h"
#include "test.h"

static uint16_t h(float f) { return g4c_f32_to_f16(f); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }

static void check_block(g4c_dtype t, const uint8_t *b, const float *want, const char *what) {
    const int n = g4c_dtype_infos[t].block;
    float got[256];
    g4c_dequant(got, b, t, n);
    int bad = 0;
    for (int i = 0; i < n && bad < 3; i++)
        if (got[i] != want[i]) {
            fprintf(stderr, "  %s element %d: got %g want %g\n", what, i, (double)got[i], (double)want[i]);
            bad++;
        }
    CHECKF(!bad, "%s", what);
}

/* Q8_0 {f16 d; i8 qs[32]}: x_j = qs_j·d */
static void test_q8_0_bytes(void) {
    uint8_t b[34];
    float want[32];
    put16(b, h(0.5f));
    for (int j = 0; j < 32; j++) {
        int8_t q = (int8_t)(j * 9 - 128);
        b[2 + j] = (uint8_t)q;
        want[j] = q * 0.5f;
    }
    check_block(G4C_DTYPE_Q8_0, b, want, "Q8_0");
}

/* Q4_0 {f16 d; u8 qs[16]}: x_j = (lo(qs_j) − 8)·d, x_{j+16} = (hi(qs_j) − 8)·d */
static void test_q4_0_bytes(void) {
    uint8_t b[18];
    float want[32];
    put16(b, h(2.0f));
    for (int j = 0; j < 16; j++) {
        b[2 + j] = (uint8_t)(j | (15 - j) << 4);
        want[j] = (float)(j - 8) * 2.0f;
        want[j + 16] = (float)(15 - j - 8) * 2.0f;
    }
    check_block(G4C_DTYPE_Q4_0, b, want, "Q4_0");
}

/* Q4_1 {f16 d, m; u8 qs[16]}: x = q·d + m */
static void test_q4_1_bytes(void) {
    uint8_t b[20];
    float want[32];
    put16(b, h(0.5f));
    put16(b + 2, h(-1.25f));
    for (int j = 0; j < 16; j++) {
        b[4 + j] = (uint8_t)((j * 3 % 16) | (j * 7 % 16) << 4);
        want[j] = (float)(j * 3 % 16) * 0.5f - 1.25f;
        want[j + 16] = (float)(j * 7 % 16) * 0.5f - 1.25f;
    }
    check_block(G4C_DTYPE_Q4_1, b, want, "Q4_1");
}

/* Q5_0 {f16 d; u32 qh; u8 qs[16]}: the 5th bit of element i is bit i of qh (little-endian); x = (q − 16)·d */
static void test_q5_0_bytes(void) {
    uint8_t b[22];
    float want[32];
    const uint32_t qh = 0xA5C3F00Fu;
    put16(b, h(0.25f));
    for (int k = 0; k < 4; k++) b[2 + k] = (uint8_t)(qh >> (8 * k));
    for (int j = 0; j < 16; j++) {
        int lo = (j * 5 + 3) % 16, hi = (j * 11 + 1) % 16;
        b[6 + j] = (uint8_t)(lo | hi << 4);
        want[j] = (float)((lo | (int)((qh >> j) & 1) << 4) - 16) * 0.25f;
        want[j + 16] = (float)((hi | (int)((qh >> (j + 16)) & 1) << 4) - 16) * 0.25f;
    }
    check_block(G4C_DTYPE_Q5_0, b, want, "Q5_0");
}

/* Q5_1 {f16 d, m; u32 qh; u8 qs[16]}: x = q·d + m */
static void test_q5_1_bytes(void) {
    uint8_t b[24];
    float want[32];
    const uint32_t qh = 0x3C5A96E1u;
    put16(b, h(0.125f));
    put16(b + 2, h(3.0f));
    for (int k = 0; k < 4; k++) b[4 + k] = (uint8_t)(qh >> (8 * k));
    for (int j = 0; j < 16; j++) {
        int lo = (j * 7) % 16, hi = (15 - j);
        b[8 + j] = (uint8_t)(lo | hi << 4);
        want[j] = (float)(lo | (int)((qh >> j) & 1) << 4) * 0.125f + 3.0f;
        want[j + 16] = (float)(hi | (int)((qh >> (j + 16)) & 1) << 4) * 0.125f + 3.0f;
    }
    check_block(G4C_DTYPE_Q5_1, b, want, "Q5_1");
}

/* K-quant 6-bit scales: 12 bytes holding 8 (scale, min) pairs. Sub-block j < 4: scale = s[j] & 63, min = s[j+4] & 63;
 * j >= 4: scale = (s[j+4] & 15) | (s[j-4] >> 6) << 4, min = (s[j+4] >> 4) | (s[j] >> 6) << 4. */
static void pack_scales(uint8_t *s, const int *sc, const int *mn) {
    memset(s, 0, 12);
    for (int j = 0; j < 4; j++) s[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6), s[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
    for (int j = 4; j < 8; j++) s[j + 4] = (uint8_t)((sc[j] & 15) | (mn[j] & 15) << 4);
}

/* Q4_K {f16 d, dmin; u8 scales[12]; u8 qs[128]}: element 64g + l (l < 32) is the low nibble of qs[32g + l] in
 * sub-block 2g, element 64g + 32 + l the high nibble in sub-block 2g + 1; x = d·sc·q − dmin·m. */
static void test_q4_k_bytes(void) {
    uint8_t b[144];
    float want[256];
    const int sc[8] = {1, 63, 17, 40, 5, 33, 62, 48}, mn[8] = {0, 7, 63, 21, 50, 16, 1, 35};
    put16(b, h(0.5f));
    put16(b + 2, h(0.25f));
    pack_scales(b + 4, sc, mn);
    for (int i = 0; i < 128; i++) b[16 + i] = (uint8_t)((i * 7 + 1) & 0xFF);
    for (int e = 0; e < 256; e++) {
        const int g = e / 64, l = e % 32, upper = (e % 64) >= 32, sub = e / 32;
        const int q = upper ? b[16 + 32 * g + l] >> 4 : b[16 + 32 * g + l] & 15;
        want[e] = 0.5f * (float)sc[sub] * (float)q - 0.25f * (float)mn[sub];
    }
    check_block(G4C_DTYPE_Q4_K, b, want, "Q4_K");
}

/* Q5_K {f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: as Q4_K, plus the 5th bit of element e = 32·sub + l in
 * bit sub of qh[l]. */
static void test_q5_k_bytes(void) {
    uint8_t b[176];
    float want[256];
    const int sc[8] = {63, 2, 30, 44, 9, 57, 13, 26}, mn[8] = {4, 63, 0, 12, 39, 28, 61, 3};
    put16(b, h(0.125f));
    put16(b + 2, h(1.5f));
    pack_scales(b + 4, sc, mn);
    for (int i = 0; i < 32; i++) b[16 + i] = (uint8_t)(i * 37 + 11);
    for (int i = 0; i < 128; i++) b[48 + i] = (uint8_t)(i * 13 + 5);
    for (int e = 0; e < 256; e++) {
        const int g = e / 64, l = e % 32, upper = (e % 64) >= 32, sub = e / 32;
        const int lo = upper ? b[48 + 32 * g + l] >> 4 : b[48 + 32 * g + l] & 15;
        const int q = lo | ((b[16 + l] >> sub) & 1) << 4;
        want[e] = 0.125f * (float)sc[sub] * (float)q - 1.5f * (float)mn[sub];
    }
    check_block(G4C_DTYPE_Q5_K, b, want, "Q5_K");
}

/* Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: in each half n (128 elements, ql + 64n, qh + 32n), element
 * 32k + l (k < 4, l < 32) takes low bits from ql[l + 32(k & 1)] (low nibble for k < 2, high for k >= 2) and two high
 * bits (qh[l] >> 2k) & 3; x = d·scale[8n + 2k + l/16]·(q − 32). */
static void test_q6_k_bytes(void) {
    uint8_t b[210];
    float want[256];
    for (int i = 0; i < 128; i++) b[i] = (uint8_t)(i * 29 + 7);
    for (int i = 0; i < 64; i++) b[128 + i] = (uint8_t)(i * 53 + 3);
    const int8_t sc[16] = {-128, 127, 5, -7, 64, -1, 0, 33, -90, 12, 100, -50, 1, -2, 77, 19};
    for (int i = 0; i < 16; i++) b[192 + i] = (uint8_t)sc[i];
    put16(b + 208, h(0.0625f));
    for (int e = 0; e < 256; e++) {
        const int n = e / 128, r = e % 128, k = r / 32, l = r % 32;
        const uint8_t lq = b[64 * n + l + 32 * (k & 1)];
        const int low = k < 2 ? lq & 15 : lq >> 4, high = (b[128 + 32 * n + l] >> (2 * k)) & 3;
        want[e] = 0.0625f * (float)sc[8 * n + 2 * k + l / 16] * (float)((low | high << 4) - 32);
    }
    check_block(G4C_DTYPE_Q6_K, b, want, "Q6_K");
}

/* Several blocks in a row, and g4c_wmat_row_f32 over a block-typed matrix. */
static void test_rows(void) {
    uint8_t b[3 * 34];
    float want[96], got[96];
    for (int k = 0; k < 3; k++) {
        put16(b + 34 * k, h((float)(k + 1)));
        for (int j = 0; j < 32; j++) b[34 * k + 2 + j] = (uint8_t)(int8_t)(j - k), want[32 * k + j] = (float)((j - k) * (k + 1));
    }
    g4c_dequant(got, b, G4C_DTYPE_Q8_0, 96);
    CHECK(!memcmp(got, want, sizeof want));
    g4c_wmat w = {.dtype = G4C_DTYPE_Q8_0, .data = b, .rows = 3, .cols = 32};
    g4c_wmat_row_f32(&w, 2, got);
    CHECK(!memcmp(got, want + 64, 32 * sizeof(float)));
}

/* Roughly Gaussian weights with a few outliers, like a trained matrix. */
static void weights(float *x, int n, uint64_t *s) {
    for (int i = 0; i < n; i++) {
        float g = 0;
        for (int k = 0; k < 4; k++) g += test_rng_f(s);
        x[i] = g * 0.02f;
        if (test_rng_u64(s) % 97 == 0) x[i] *= 6;
    }
}

/* Relative RMS error of quantize -> dequantize on these weights (Gaussian-like with 1% outliers at 6x, which widen
 * their blocks' scales); measured (seed 7, 64 K values): Q8_0 0.0076, Q6_K 0.0228, Q5_K 0.0427, Q5_1 0.0440,
 * Q5_0 0.0609, Q4_K 0.0855, Q4_1 0.0908, Q4_0 0.1223, F16 0.0002, BF16 0.0017; bounds add about 25%. */
static void test_round_trip(void) {
    static const struct { g4c_dtype t; double bound; } T[] = {
        {G4C_DTYPE_Q8_0, 0.0095}, {G4C_DTYPE_Q6_K, 0.028}, {G4C_DTYPE_Q5_K, 0.053}, {G4C_DTYPE_Q5_1, 0.055},
        {G4C_DTYPE_Q5_0, 0.076}, {G4C_DTYPE_Q4_K, 0.107}, {G4C_DTYPE_Q4_1, 0.114}, {G4C_DTYPE_Q4_0, 0.153},
        {G4C_DTYPE_F16, 0.0005}, {G4C_DTYPE_BF16, 0.004}, {G4C_DTYPE_F32, 0}};
    enum { N = 65536 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    uint8_t *q = malloc(N * 4);
    uint64_t s = 7;
    weights(x, N, &s);
    for (size_t k = 0; k < sizeof T / sizeof *T; k++) {
        g4c_quantize(q, x, T[k].t, N);
        g4c_dequant(y, q, T[k].t, N);
        const double e = test_rel_l2(y, x, N);
        printf("     %-5s rel rms error %.5f (bound %.4f)\n", g4c_dtype_infos[T[k].t].name, e, T[k].bound);
        CHECKF(e <= T[k].bound, "%s: %g", g4c_dtype_infos[T[k].t].name, e);
        /* the legacy round-to-nearest types: every element within half a step (plus the f16 rounding of the scale,
           <= 127 x 2^-11 of a step) of its value; Q4_0/Q5_0 map the largest magnitude to -8/-16 steps, so the other
           sign clamps at +7/+15 steps: up to one full step there */
        if (T[k].t == G4C_DTYPE_Q8_0 || T[k].t == G4C_DTYPE_Q4_0 || T[k].t == G4C_DTYPE_Q5_0) {
            const int levels = T[k].t == G4C_DTYPE_Q8_0 ? 127 : T[k].t == G4C_DTYPE_Q4_0 ? 8 : 16;
            const float frac = T[k].t == G4C_DTYPE_Q8_0 ? 0.57f : 1.01f;
            int bad = 0;
            for (int b = 0; b < N / 32; b++) {
                float amax = 0;
                for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * b + j]));
                for (int j = 0; j < 32; j++) bad += fabsf(y[32 * b + j] - x[32 * b + j]) > amax / levels * frac + 1e-7f;
            }
            CHECKF(!bad, "%s: %d elements off by more than half a step", g4c_dtype_infos[T[k].t].name, bad);
        }
    }
    free(x);
    free(y);
    free(q);
}

/* The K-quant search must beat (or match) the plain min/max grid on every block. */
static void test_k_search_not_worse(void) {
    enum { N = 256 * 64 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    uint8_t *q = malloc(N);
    uint64_t s = 11;
    weights(x, N, &s);
    g4c_quantize(q, x, G4C_DTYPE_Q4_K, N);
    g4c_dequant(y, q, G4C_DTYPE_Q4_K, N);
    double e_k = test_rel_l2(y, x, N);
    g4c_quantize(q, x, G4C_DTYPE_Q4_1, N); /* 4 bits, min/max per 32, f16 scale and min: the naive reference */
    g4c_dequant(y, q, G4C_DTYPE_Q4_1, N);
    double e_1 = test_rel_l2(y, x, N);
    CHECKF(e_k < e_1 * 1.05, "Q4_K %g vs Q4_1 %g", e_k, e_1);
    free(x);
    free(y);
    free(q);
}

/* Zeros, constants, one spike, huge values, NaN/Inf: valid blocks, no UB (run under UBSan), exact where exact. */
static void test_edges(void) {
    static const g4c_dtype types[] = {G4C_DTYPE_Q8_0, G4C_DTYPE_Q4_0, G4C_DTYPE_Q4_1, G4C_DTYPE_Q5_0,
                                      G4C_DTYPE_Q5_1, G4C_DTYPE_Q4_K, G4C_DTYPE_Q5_K, G4C_DTYPE_Q6_K};
    float x[256], y[256];
    uint8_t q[512]; /* 256 elements of the widest block type: 8 x 34 bytes of Q8_0 */
    for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
        const g4c_dtype t = types[k];
        const char *nm = g4c_dtype_infos[t].name;
        memset(x, 0, sizeof x);
        g4c_quantize(q, x, t, 256);
        g4c_dequant(y, q, t, 256);
        int nz = 0;
        for (int i = 0; i < 256; i++) nz += y[i] != 0;
        CHECKF(!nz, "%s: zeros dequantize to %d nonzeros", nm, nz);
        for (int i = 0; i < 256; i++) x[i] = i == 77 ? 3.0f : 0.0f; /* one spike survives nearly exactly */
        g4c_quantize(q, x, t, 256);
        g4c_dequant(y, q, t, 256);
        CHECKF(fabsf(y[77] - 3.0f) < 0.02f, "%s: spike 3 -> %g", nm, (double)y[77]);
        for (int i = 0; i < 256; i++) x[i] = -1.5f; /* a negative constant */
        g4c_quantize(q, x, t, 256);
        g4c_dequant(y, q, t, 256);
        CHECKF(fabsf(y[5] + 1.5f) < 0.02f, "%s: constant -1.5 -> %g", nm, (double)y[5]);
        for (int i = 0; i < 256; i++) x[i] = (i & 1 ? 1 : -1) * 6e4f;
        g4c_quantize(q, x, t, 256);
        g4c_dequant(y, q, t, 256);
        const float step = t == G4C_DTYPE_Q4_0 ? 1.0f / 8 : t == G4C_DTYPE_Q5_0 ? 1.0f / 16 : 0.0f; /* clamped side */
        CHECKF(fabsf(y[3] - 6e4f) <= 6e4f * (step + 0.02f), "%s: 6e4 -> %g", nm, (double)y[3]);
        x[0] = NAN, x[1] = INFINITY, x[2] = -INFINITY;
        g4c_quantize(q, x, t, 256); /* unspecified values, but no crash and no UB */
        g4c_dequant(y, q, t, 256);
    }
}

int main(void) {
    RUN(test_q8_0_bytes);
    RUN(test_q4_0_bytes);
    RUN(test_q4_1_bytes);
    RUN(test_q5_0_bytes);
    RUN(test_q5_1_bytes);
    RUN(test_q4_k_bytes);
    RUN(test_q5_k_bytes);
    RUN(test_q6_k_bytes);
    RUN(test_rows);
    RUN(test_round_trip);
    RUN(test_k_search_not_worse);
    RUN(test_edges);
    return TEST_REPORT();
}
