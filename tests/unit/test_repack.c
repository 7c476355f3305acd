/* The 8-row interleaved CPU layout (kernels/cpu/repack.c, avx2_x8.c): the repacked bytes against the layout's
 * definition, and g4c_matmul through the repacked copy against the f64 reference on the dequantized weights and
 * against the row-major integer kernel, on random data of several shapes; a token's outputs must not depend on how
 * many tokens share the call (decode == prefill). */
#include <stdlib.h>

#include "kernels/ops.h"
#include "test.h"

static g4c_pool *pool;

static void *random_matrix(g4c_dtype t, int rows, int cols, uint64_t *seed) {
    float *f = malloc(sizeof(float) * (size_t)rows * cols);
    test_fill(f, (size_t)rows * cols, seed);
    void *q = malloc(g4c_dtype_bytes(t, (int64_t)rows * cols));
    g4c_quantize(q, f, t, (int64_t)rows * cols);
    free(f);
    return q;
}

/* layout definition, element by element: vector j byte 4k+i is row k's quant byte 4j+i */
static void test_layout(void) {
    const g4c_dtype types[2] = {G4C_DTYPE_Q4_0, G4C_DTYPE_Q8_0};
    uint64_t seed = 7;
    for (int ti = 0; ti < 2; ti++) {
        const g4c_dtype t = types[ti];
        const int rows = 16, cols = 96, bsz = (int)g4c_dtype_infos[t].size, nb = cols / 32;
        uint8_t *q = random_matrix(t, rows, cols, &seed);
        g4c_wmat w = {.dtype = t, .data = q, .rows = rows, .cols = cols};
        const size_t n = g4c_cpu_repack_bytes(&w);
        CHECK(n == (size_t)rows * nb * bsz);
        uint8_t *p = malloc(n);
        g4c_cpu_repack(p, &w);
        int bad = 0;
        for (int g = 0; g < rows / 8; g++)
            for (int b = 0; b < nb; b++) {
                const uint8_t *blk = p + ((size_t)g * nb + b) * 8 * bsz;
                for (int k = 0; k < 8; k++) {
                    const uint8_t *src = q + ((size_t)(8 * g + k) * nb + b) * bsz;
                    bad += blk[2 * k] != src[0] || blk[2 * k + 1] != src[1];
                    for (int e = 0; e < bsz - 2; e++) bad += blk[16 + 32 * (e / 4) + 4 * k + e % 4] != src[2 + e];
                }
            }
        CHECKF(!bad, "%s: %d bytes misplaced", g4c_dtype_infos[t].name, bad);
        /* shapes without a layout */
        g4c_wmat odd = w;
        odd.rows = 12;
        CHECK(g4c_cpu_repack_bytes(&odd) == 0);
        odd = w;
        odd.dtype = G4C_DTYPE_Q4_K;
        CHECK(g4c_cpu_repack_bytes(&odd) == 0);
        free(p);
        free(q);
    }
}

/* The K-quant layouts: element e (of its 256-column block) of row k of a group, read from the interleaved bytes by
 * the layout's definition (kernels/cpu/repack.c) */
static float f16_at(const uint8_t *p) { return g4c_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

static float q6_k_at(const uint8_t *blk, int k, int e) {
    const int c = e / 32, j = e % 32 / 4, i = e % 4;
    const uint8_t *ch = blk + 144 + 192 * c;
    const int lo = (ch[32 * (j % 4) + 4 * k + i] >> (j < 4 ? 0 : 4)) & 0xF;
    const int hi = (ch[128 + 32 * (j / 4) + 4 * k + i] >> (2 * (j % 4))) & 3;
    return f16_at(blk + 2 * k) * (float)((int8_t)blk[16 + 8 * (e / 16) + k] * ((lo | hi << 4) - 32));
}

static float q4_k_at(const uint8_t *blk, int k, int e) {
    const int s = e / 32, f = e % 32;
    const uint8_t byte = blk[160 + 128 * s + 32 * (f % 16 / 4) + 4 * k + f % 4];
    const int qv = f < 16 ? byte & 0xF : byte >> 4;
    return f16_at(blk + 2 * k) * (float)blk[32 + 8 * s + k] * (float)qv - f16_at(blk + 16 + 2 * k) * (float)blk[96 + 8 * s + k];
}

/* every element read back equals the ggml dequant of the source */
static void check_layout_k(g4c_dtype t, size_t group_block, float (*at)(const uint8_t *, int, int), uint64_t seed) {
    const int rows = 16, cols = 512;
    uint8_t *q = random_matrix(t, rows, cols, &seed);
    g4c_wmat w = {.dtype = t, .data = q, .rows = rows, .cols = cols};
    CHECK(g4c_cpu_repack_bytes(&w) == (size_t)(rows / 8) * (cols / 256) * group_block);
    uint8_t *p = malloc(g4c_cpu_repack_bytes(&w));
    g4c_cpu_repack(p, &w);
    float *want = malloc(sizeof(float) * cols);
    int bad = 0;
    for (int r = 0; r < rows; r++) {
        g4c_wmat_row_f32(&w, r, want);
        for (int e = 0; e < cols; e++) {
            const float v = at(p + ((size_t)(r / 8) * (cols / 256) + e / 256) * group_block, r % 8, e % 256);
            bad += fabsf(v - want[e]) > 1e-5f * (fabsf(want[e]) + 1e-3f);
        }
    }
    CHECKF(!bad, "%s: %d elements differ", g4c_dtype_infos[t].name, bad);
    free(want), free(p), free(q);
}

static void test_layout_q6_k(void) { check_layout_k(G4C_DTYPE_Q6_K, 1680, q6_k_at, 5); }
static void test_layout_q4_k(void) { check_layout_k(G4C_DTYPE_Q4_K, 1184, q4_k_at, 9); }

static void test_matmul(void) {
    const g4c_dtype types[4] = {G4C_DTYPE_Q4_0, G4C_DTYPE_Q8_0, G4C_DTYPE_Q6_K, G4C_DTYPE_Q4_K};
    const int shapes[][3] = {{8, 32, 1}, {16, 64, 3}, {40, 96, 5}, {24, 320, 9}, {64, 1024, 2}, {136, 256, 13},
                             {16, 768, 6}, {264, 256, 3}, {1032, 64, 1}};
    uint64_t seed = 11;
    for (int ti = 0; ti < 4; ti++)
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
            const g4c_dtype t = types[ti];
            const int rows = shapes[si][0], cols = shapes[si][1], n = shapes[si][2];
            if (cols % g4c_dtype_infos[t].block) continue;
            void *q = random_matrix(t, rows, cols, &seed);
            float *x = malloc(sizeof(float) * (size_t)n * cols);
            test_fill(x, (size_t)n * cols, &seed);
            g4c_wmat w = {.dtype = t, .data = q, .rows = rows, .cols = cols};
            float *ref = malloc(sizeof(float) * (size_t)n * rows), *rowmaj = malloc(sizeof(float) * (size_t)n * rows);
            float *got = malloc(sizeof(float) * (size_t)n * rows), *one = malloc(sizeof(float) * (size_t)rows);
            g4c_ref_matmul(ref, x, &w, n);
            g4c_matmul(pool, rowmaj, x, &w, n);
            void *p = aligned_alloc(64, (g4c_cpu_repack_bytes(&w) + 63) / 64 * 64);
            g4c_cpu_repack(p, &w);
            w.x8 = p;
            g4c_matmul(pool, got, x, &w, n);
            /* 8-bit activations: the same bound as the row-major integer kernel (test_ops.c) */
            const double e = test_rel_l2(got, ref, (size_t)n * rows), e_rm = test_rel_l2(rowmaj, ref, (size_t)n * rows);
            CHECKF(e < 2e-2 && e < 1.5 * e_rm + 1e-6, "%s %dx%d n=%d: rel L2 %.3g vs reference (row-major kernel %.3g)",
                   g4c_dtype_infos[t].name, rows, cols, n, e, e_rm);
            int same = 1;
            for (int i = 0; i < n; i++) {
                g4c_matmul(pool, one, x + (size_t)i * cols, &w, 1);
                same &= !memcmp(one, got + (size_t)i * rows, sizeof(float) * (size_t)rows);
            }
            CHECKF(same, "%s %dx%d n=%d: a token's outputs differ between n=1 and n=%d", g4c_dtype_infos[t].name,
                   rows, cols, n, n);
            /* a slice of whole groups keeps its copy (MoE experts) */
            if (rows >= 16) {
                g4c_wmat s = g4c_wmat_rows(w, 8, 8);
                CHECK(s.x8 == (const char *)p + 8 * g4c_wmat_x8_row_bytes(&w));
                g4c_matmul(pool, one, x, &s, 1);
                CHECK(!memcmp(one, got + 8, sizeof(float) * 8) || n == 0);
                CHECK(g4c_wmat_rows(w, 4, 8).x8 == NULL);
            }
            free(p), free(q), free(x), free(ref), free(rowmaj), free(got), free(one);
        }
}

/* Activations for the exactness tests: integers of magnitude <= 127 with a +-127 in every block (so the 8-bit
 * quantization has scale 1 and is exact): token 0 all -127, token 1 all +127, token 2 alternating, then random. */
static void extreme_activations(float *x, int n, int cols, uint64_t *seed) {
    for (int t = 0; t < n; t++)
        for (int c = 0; c < cols; c++) {
            const uint64_t v = test_rng_u64(seed);
            const int rnd = c % 32 == 5 ? 127 : (int)(v % 255) - 127;
            x[t * cols + c] = (float)(t == 0 ? -127 : t == 1 ? 127 : t == 2 ? (c % 2 ? 127 : -127) : rnd);
        }
}

/* w repacked, against x [n][cols]: every output of the prefill kernel (all n tokens at once) and of decode (one at a
 * time) must equal want [n][rows] exactly */
static void check_exact(g4c_wmat w, const float *x, int n, const int64_t *want, const char *what) {
    const int rows = (int)w.rows;
    float *got = malloc(sizeof(float) * (size_t)n * rows), *one = malloc(sizeof(float) * (size_t)rows);
    void *p = aligned_alloc(64, (g4c_cpu_repack_bytes(&w) + 63) / 64 * 64);
    g4c_cpu_repack(p, &w);
    w.x8 = p;
    g4c_matmul(pool, got, x, &w, n);
    int bad = 0, bad1 = 0;
    for (int t = 0; t < n; t++) {
        g4c_matmul(pool, one, x + (size_t)t * w.cols, &w, 1);
        for (int r = 0; r < rows; r++) {
            bad += got[t * rows + r] != (float)want[t * rows + r];
            bad1 += one[r] != (float)want[t * rows + r];
        }
    }
    CHECKF(!bad && !bad1, "%s: %d prefill and %d decode outputs differ from the exact sums", what, bad, bad1);
    free(p), free(got), free(one);
}

/* Q8_0 at the extremes of its integer range (weights -128, +-127; activations +-127, where the prefill kernel's
 * maddubs lanes come closest to int16 saturation): scales of 1, so every output is an exact integer and must equal
 * Σ w·x, for the 16-row prefill kernel (n = 8, odd row count: the last group alone) and for decode (n = 1). */
static void test_q8_extremes(void) {
    const int rows = 40, cols = 160, n = 8, nb = cols / 32;
    uint64_t seed = 3;
    int8_t *wq = malloc((size_t)rows * cols);
    uint8_t *q = malloc((size_t)rows * nb * 34);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            const uint64_t v = test_rng_u64(&seed);
            /* rows 0-7 all -128, rows 8-15 +-127 alternating by column, the rest random with extra -128 / 127 */
            const int rnd = v % 4 == 0 ? -128 : v % 4 == 1 ? 127 : (int)(v >> 8 & 255) - 128;
            wq[r * cols + c] = (int8_t)(r < 8 ? -128 : r < 16 ? (c % 2 ? 127 : -127) : rnd);
        }
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) {
            uint8_t *blk = q + ((size_t)r * nb + b) * 34;
            blk[0] = 0x00, blk[1] = 0x3C; /* f16 1.0 */
            memcpy(blk + 2, wq + r * cols + 32 * b, 32);
        }
    float *x = malloc(sizeof(float) * n * cols);
    extreme_activations(x, n, cols, &seed);
    int64_t *want = malloc(sizeof(int64_t) * n * rows);
    for (int t = 0; t < n; t++)
        for (int r = 0; r < rows; r++) {
            want[t * rows + r] = 0;
            for (int c = 0; c < cols; c++) want[t * rows + r] += (int64_t)wq[r * cols + c] * (int64_t)x[t * cols + c];
        }
    check_exact((g4c_wmat){.dtype = G4C_DTYPE_Q8_0, .data = q, .rows = rows, .cols = cols}, x, n, want,
                "Q8_0 extremes");
    free(q), free(wq), free(x), free(want);
}

/* Q6_K at the extremes of the decode kernel's int16 lanes (avx2_x8.c, dot_q6_half): codes 0 and 63 against
 * activations of +-127, where the unsigned sums and the offset correction come closest to int16 limits. d = 1,
 * activation scales of 1 and small sub-block scales (-4..4), so every output is an exact integer below 2^24 and must
 * equal Σ sc·(q − 32)·x, for decode (n = 1) and prefill (n = 5: a quad and one token). */
static void test_q6_k_extremes(void) {
    const int rows = 24, cols = 512, n = 5, nb = cols / 256;
    uint64_t seed = 5;
    uint8_t *code = malloc((size_t)rows * cols), *blocks = malloc((size_t)rows * nb * 210);
    int8_t *sc = malloc((size_t)rows * cols / 16);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            const uint64_t v = test_rng_u64(&seed);
            const int rnd = v % 4 == 0 ? 0 : v % 4 == 1 ? 63 : (int)(v >> 8 & 63);
            code[r * cols + c] = (uint8_t)(r < 8 ? 0 : r < 16 ? 63 : rnd);
            if (c % 16 == 0) sc[(r * cols + c) / 16] = (int8_t)((int)((v >> 20) % 9) - 4);
        }
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) {
            uint8_t *blk = blocks + ((size_t)r * nb + b) * 210;
            const uint8_t *q = code + r * cols + 256 * b;
            memset(blk, 0, 210);
            /* the inverse of repack.c's q6_k_codes: element 128n + 32p + l */
            for (int nn = 0; nn < 2; nn++)
                for (int l = 0; l < 32; l++)
                    for (int pp = 0; pp < 4; pp++) {
                        const uint8_t v = q[128 * nn + 32 * pp + l];
                        blk[64 * nn + l + 32 * (pp & 1)] |= (uint8_t)((v & 0xF) << (pp >> 1 ? 4 : 0));
                        blk[128 + 32 * nn + l] |= (uint8_t)((v >> 4) << (2 * pp));
                    }
            for (int s = 0; s < 16; s++) blk[192 + s] = (uint8_t)sc[(r * cols + 256 * b) / 16 + s];
            blk[208] = 0x00, blk[209] = 0x3C; /* f16 1.0 */
        }
    float *x = malloc(sizeof(float) * n * cols);
    extreme_activations(x, n, cols, &seed);
    int64_t *want = malloc(sizeof(int64_t) * n * rows);
    for (int t = 0; t < n; t++)
        for (int r = 0; r < rows; r++) {
            want[t * rows + r] = 0;
            for (int c = 0; c < cols; c++)
                want[t * rows + r] +=
                    (int64_t)sc[(r * cols + c) / 16] * (code[r * cols + c] - 32) * (int64_t)x[t * cols + c];
        }
    check_exact((g4c_wmat){.dtype = G4C_DTYPE_Q6_K, .data = blocks, .rows = rows, .cols = cols}, x, n, want,
                "Q6_K extremes");
    free(code), free(blocks), free(sc), free(x), free(want);
}

/* ISA level 2 (AVX-512 VNNI kernels of the interleaved layout) against level 1 (AVX2): the same integer sums and
 * f32 steps, so every output must be bit-identical, decode and prefill, odd row counts (a lone 8-row group) included.
 * Runs only where the CPU has AVX-512 VNNI (not this project's CI machine: tests/cuda/run_device.sh runs it on the
 * GPU host's CPU); says so otherwise. */
static void test_vnni_same(void) {
    g4c_cpu_set_isa(2);
    const int have = g4c_cpu_isa() == 2;
    g4c_cpu_set_isa(1);
    if (!have) {
        printf("  (no AVX-512 VNNI on this CPU: level 2 not compared)\n");
        return;
    }
    const g4c_dtype types[4] = {G4C_DTYPE_Q4_0, G4C_DTYPE_Q8_0, G4C_DTYPE_Q4_K, G4C_DTYPE_Q6_K};
    const int shapes[][3] = {{8, 32, 1}, {16, 64, 3}, {40, 96, 5}, {24, 320, 9}, {136, 256, 13}, {264, 1024, 1},
                             {48, 1536, 4}, {1032, 64, 7}, {32, 256, 2}, {48, 64, 6}, {8, 512, 2}, {24, 768, 6}};
    uint64_t seed = 17;
    int compared = 0;
    for (int ti = 0; ti < 4; ti++)
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
            const g4c_dtype t = types[ti];
            const int rows = shapes[si][0], cols = shapes[si][1], n = shapes[si][2];
            if (cols % g4c_dtype_infos[t].block) continue; /* K-quants: 256-column blocks */
            void *q = random_matrix(t, rows, cols, &seed);
            float *x = malloc(sizeof(float) * (size_t)n * cols);
            test_fill(x, (size_t)n * cols, &seed);
            g4c_wmat w = {.dtype = t, .data = q, .rows = rows, .cols = cols};
            void *p = aligned_alloc(64, (g4c_cpu_repack_bytes(&w) + 63) / 64 * 64);
            g4c_cpu_repack(p, &w);
            w.x8 = p;
            float *a = malloc(sizeof(float) * (size_t)n * rows), *b = malloc(sizeof(float) * (size_t)n * rows);
            g4c_cpu_set_isa(1);
            g4c_matmul(pool, a, x, &w, n);
            g4c_cpu_set_isa(2);
            g4c_matmul(pool, b, x, &w, n);
            g4c_cpu_set_isa(1);
            CHECKF(!memcmp(a, b, sizeof(float) * (size_t)n * rows), "%s %dx%d n=%d: AVX-512 VNNI differs from AVX2",
                   g4c_dtype_infos[t].name, rows, cols, n);
            compared++;
            free(p), free(q), free(x), free(a), free(b);
        }
    CHECK(compared == 2 * 12 + 2 * 6); /* every type ran (6 shapes have 256-column blocks) */
    g4c_cpu_set_isa(2); /* back to the default: the best the CPU has */
}

int main(void) {
    g4c_err err = {0};
    if (g4c_pool_init(&pool, 2, &err) != G4C_OK || g4c_pool_reserve(pool, g4c_matmul_scratch_bytes(1024), &err)) {
        fprintf(stderr, "pool: %s\n", err.msg);
        return 1;
    }
    if (!g4c_cpu_isa()) {
        printf("no AVX2: the interleaved layout is not used here\n");
    } else {
        RUN(test_layout);
        RUN(test_layout_q6_k);
        RUN(test_layout_q4_k);
        RUN(test_matmul);
        RUN(test_q8_extremes);
        RUN(test_q6_k_extremes);
        RUN(test_vnni_same);
    }
    g4c_pool_free(pool);
    return TEST_REPORT();
}
