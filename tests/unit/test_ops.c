/* Every fast CPU op against its scalar reference on fresh random inputs, odd shapes included
 * (style.md §7.4). Tolerance: relative L2 error; f32 accumulation vs f64 over <= 4096 terms. */
#include "kernels/cpu/cpu_int.h"
#include "kernels/ops.h"
#include "test.h"

static uint64_t seed = 1234;

static void check_close(const char *what, const float *got, const float *want, size_t n, double tol) {
    double e = test_rel_l2(got, want, n);
    CHECKF(e <= tol, "%s: rel L2 %.3g > %.3g", what, e, tol);
}

static void *to_dtype(const float *src, size_t n, g4c_dtype dt, float *rounded) {
    /* store src in dtype dt (one byte past an aligned start, to exercise unaligned reads); rounded gets the
     * values the dtype can hold */
    char *buf = malloc(n * 4 + 1);
    void *p = buf + 1;
    for (size_t i = 0; i < n; i++) {
        if (dt == G4C_DTYPE_F32) {
            memcpy((char *)p + 4 * i, &src[i], 4);
            rounded[i] = src[i];
        } else {
            uint16_t h = dt == G4C_DTYPE_BF16 ? g4c_f32_to_bf16(src[i]) : g4c_f32_to_f16(src[i]);
            memcpy((char *)p + 2 * i, &h, 2);
            rounded[i] = dt == G4C_DTYPE_BF16 ? g4c_bf16_to_f32(h) : g4c_f16_to_f32(h);
        }
    }
    return buf;
}

static void test_matmul(void) {
    static const int shapes[][3] = {{1, 1, 1}, {1, 17, 5}, {3, 64, 33}, {7, 255, 17}, {64, 128, 96}, {2, 4096, 40}};
    g4c_pool *pool;
    CHECK(g4c_pool_init(&pool, 3, NULL) == G4C_OK);
    CHECK(g4c_pool_reserve(pool, g4c_matmul_scratch_bytes(4096), NULL) == G4C_OK);
    {
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int dt = 0; dt <= G4C_DTYPE_BF16; dt++) {
            const int n = shapes[s][0], cols = shapes[s][1], rows = shapes[s][2];
            float *x = malloc(sizeof(float) * n * cols), *w = malloc(sizeof(float) * rows * cols);
            float *wr = malloc(sizeof(float) * rows * cols);
            float *y = malloc(sizeof(float) * n * rows), *yr = malloc(sizeof(float) * n * rows);
            test_fill(x, (size_t)n * cols, &seed);
            test_fill(w, (size_t)rows * cols, &seed);
            char *buf = to_dtype(w, (size_t)rows * cols, (g4c_dtype)dt, wr);
            g4c_wmat m = {.dtype = (g4c_dtype)dt, .data = buf + 1, .rows = rows, .cols = cols};
            g4c_matmul(pool, y, x, &m, n);
            g4c_ref_matmul(yr, x, &m, n);
            char what[64];
            snprintf(what, sizeof what, "matmul %dx%dx%d %s", n, cols, rows, g4c_dtype_infos[dt].name);
            check_close(what, y, yr, (size_t)n * rows, 1e-6);
            /* decode == prefill: each token alone gives the bits it got in the batch */
            for (int t = 0; t < n && n > 1; t++) {
                g4c_matmul(pool, yr, x + (size_t)t * cols, &m, 1);
                CHECKF(!memcmp(yr, y + (size_t)t * rows, sizeof(float) * rows), "%s: token %d alone differs", what, t);
            }
            /* sub-matrix view: rows [1, rows) */
            if (rows > 1) {
                g4c_wmat sub = g4c_wmat_rows(m, 1, rows - 1);
                g4c_matmul(pool, y, x, &sub, n);
                g4c_ref_matmul(yr, x, &sub, n);
                check_close("matmul rows view", y, yr, (size_t)n * (rows - 1), 1e-6);
            }
            free(x), free(w), free(wr), free(y), free(yr), free(buf);
        }
    }
    g4c_pool_free(pool);
}

/* random but valid ggml blocks: scale d as f16, codes uniform */
static void *random_blocks(g4c_dtype t, int64_t rows, int64_t cols) {
    const size_t n = g4c_dtype_bytes(t, rows * cols);
    uint8_t *b = malloc(n + 1), *p = b + 1; /* odd address: kernels must not assume alignment */
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)test_rng_u64(&seed);
    const size_t bs = g4c_dtype_infos[t].size;
    /* byte offsets of the f16 fields of each block layout (base/half.c) */
    const int two = t == G4C_DTYPE_Q4_1 || t == G4C_DTYPE_Q5_1 || t == G4C_DTYPE_Q4_K || t == G4C_DTYPE_Q5_K;
    const size_t off0 = t == G4C_DTYPE_Q6_K ? 208 : 0;
    for (size_t i = 0; i < n / bs; i++) {
        uint16_t d = g4c_f32_to_f16(0.001f + 0.02f * (test_rng_f(&seed) + 1.0f));
        memcpy(p + i * bs + off0, &d, 2);
        if (two) {
            uint16_t m = g4c_f32_to_f16(0.02f * test_rng_f(&seed));
            memcpy(p + i * bs + 2, &m, 2);
        }
        if (t == G4C_DTYPE_Q8_0)
            for (int k = 0; k < 32; k++) if (p[i * bs + 2 + k] == 0x80) p[i * bs + 2 + k] = 0x81; /* ggml: [-127, 127] */
    }
    return b;
}

/* |got − want| <= bound elementwise */
static void check_bound(const char *what, const float *got, const double *want, const double *bound, size_t n) {
    size_t worst = 0;
    double excess = -1;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)got[i] - want[i]) - bound[i];
        if (e > excess || i == 0) excess = e, worst = i;
    }
    CHECKF(excess <= 0, "%s: output %zu off by %.3g, bound %.3g", what, worst, fabs((double)got[worst] - want[worst]),
           bound[worst]);
}

/* y[t][r] = Σ_c a[t][c]·b[r][c] in f64 */
static void matmul_f64(double *y, const float *a, const float *b, int n, int rows, int cols) {
    for (int t = 0; t < n; t++)
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int c = 0; c < cols; c++) s += (double)a[(size_t)t * cols + c] * b[(size_t)r * cols + c];
            y[(size_t)t * rows + r] = s;
        }
}

/* Block types with an integer kernel on the SIMD path (cpu_int.h g4c_simd_rows_q8_for), per output (bounds relative
 * to Σ|w·x|, not to the result, which may cancel to ~0 on one row of 32): within the 8-bit activations' rounding of
 * the f64 result, Σ_blocks d/2 · Σ|w| (+ 1e-5 Σ|w·x|); within 1e-5 Σ|w·x| of the f64 result on the same 8-bit
 * activations (the integer arithmetic itself); the SIMD quantizer equal to the scalar one; each token alone
 * bit-identical to its row of the batch (decode == prefill). Other types and the portable path: dequantize + f32,
 * within 1e-6 Σ|w·x|. */
static void test_matmul_quant(void) {
    static const int shapes[][3] = {{1, 32, 1},   {1, 64, 7},   {2, 96, 5},    {3, 160, 11}, {5, 256, 33},
                                    {1, 256, 5}, {4, 768, 13}, {64, 512, 40}, {3, 4096, 9}};
    static const g4c_dtype types[] = {G4C_DTYPE_Q8_0, G4C_DTYPE_Q4_0, G4C_DTYPE_Q4_1, G4C_DTYPE_Q5_0,
                                      G4C_DTYPE_Q5_1, G4C_DTYPE_Q4_K, G4C_DTYPE_Q5_K, G4C_DTYPE_Q6_K};
    g4c_pool *pool;
    CHECK(g4c_pool_init(&pool, 3, NULL) == G4C_OK);
    CHECK(g4c_pool_reserve(pool, g4c_matmul_scratch_bytes(4096), NULL) == G4C_OK);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
            const g4c_dtype t = types[ti];
            const int n = shapes[s][0], cols = shapes[s][1], rows = shapes[s][2];
            if (cols % g4c_dtype_infos[t].block) continue;
            uint8_t *buf = random_blocks(t, rows, cols);
            g4c_wmat w = {.dtype = t, .data = buf + 1, .rows = rows, .cols = cols};
            float *x = malloc(sizeof(float) * n * cols), *xd = malloc(sizeof(float) * n * cols);
            float *y = malloc(sizeof(float) * n * rows), *yr = malloc(sizeof(float) * n * rows);
            float *wf = malloc(sizeof(float) * rows * cols), *wa = malloc(sizeof(float) * rows * cols);
            float *xa = malloc(sizeof(float) * n * cols), *xh = malloc(sizeof(float) * n * cols);
            const size_t ny = (size_t)n * rows;
            double *want = malloc(sizeof(double) * ny), *mag = malloc(sizeof(double) * ny);
            double *bound = malloc(sizeof(double) * ny), *hstep = malloc(sizeof(double) * ny);
            test_fill(x, (size_t)n * cols, &seed);
            for (int r = 0; r < rows; r++) g4c_wmat_row_f32(&w, r, wf + (size_t)r * cols);
            for (size_t i = 0; i < (size_t)rows * cols; i++) wa[i] = fabsf(wf[i]);
            for (size_t i = 0; i < (size_t)n * cols; i++) xa[i] = fabsf(x[i]);
            matmul_f64(want, x, wf, n, rows, cols);
            matmul_f64(mag, xa, wa, n, rows, cols);
            g4c_matmul(pool, y, x, &w, n);
            char what[64];
            snprintf(what, sizeof what, "matmul %s %dx%dx%d", g4c_dtype_infos[t].name, n, cols, rows);
            const int int8_path = g4c_cpu_isa() && g4c_simd_rows_q8_for(t) != NULL;
            if (int8_path) { /* half a quantization step of each activation block, times Σ|w| over the block */
                g4c_q8_block *q = malloc(sizeof(g4c_q8_block) * (size_t)n * cols / 32);
                for (int i = 0; i < n; i++) g4c_quantize_q8(q + (size_t)i * cols / 32, x + (size_t)i * cols, cols);
                for (int64_t b = 0; b < (int64_t)n * cols / 32; b++)
                    for (int k = 0; k < 32; k++) xh[b * 32 + k] = q[b].d / 2;
                matmul_f64(hstep, xh, wa, n, rows, cols);
                free(q);
            }
            for (size_t i = 0; i < ny; i++) bound[i] = int8_path ? hstep[i] + 1e-5 * mag[i] : 1e-6 * mag[i];
            check_bound(what, y, want, bound, ny);
            if (int8_path) { /* same 8-bit activations in the reference: only rounding of the f32 sums differs */
                g4c_q8_block *q = malloc(sizeof(g4c_q8_block) * (size_t)n * cols / 32);
                g4c_q8_block *q2 = malloc(sizeof(g4c_q8_block) * (size_t)n * cols / 32);
                for (int i = 0; i < n; i++) {
                    g4c_quantize_q8(q + (size_t)i * cols / 32, x + (size_t)i * cols, cols);
                    g4c_simd_quantize_q8(q2 + (size_t)i * cols / 32, x + (size_t)i * cols, cols);
                }
                CHECKF(!memcmp(q, q2, sizeof(g4c_q8_block) * (size_t)n * cols / 32), "%s: SIMD quantizer differs", what);
                for (int64_t b = 0; b < (int64_t)n * cols / 32; b++)
                    for (int k = 0; k < 32; k++) xd[b * 32 + k] = q[b].d * q[b].q[k];
                matmul_f64(want, xd, wf, n, rows, cols);
                for (size_t i = 0; i < ny; i++) bound[i] = 1e-5 * mag[i];
                check_bound(what, y, want, bound, ny);
                int same = 1;
                for (int i = 0; i < n; i++) {
                    g4c_matmul(pool, yr, x + (size_t)i * cols, &w, 1);
                    same &= !memcmp(yr, y + (size_t)i * rows, sizeof(float) * rows);
                }
                CHECKF(same, "%s: a token alone differs from its row of the batch", what);
                free(q), free(q2);
            }
            free(buf), free(x), free(xd), free(y), free(yr), free(wf), free(wa), free(xa), free(xh);
            free(want), free(mag), free(bound), free(hstep);
        }
    g4c_pool_free(pool);
}

static void test_rms_norm(void) {
    static const int dims[] = {1, 16, 17, 64, 255, 5376};
    for (size_t d = 0; d < sizeof dims / sizeof *dims; d++) {
        const int dim = dims[d], rows = 3;
        float *x = malloc(sizeof(float) * rows * dim), *w = malloc(sizeof(float) * dim);
        float *y = malloc(sizeof(float) * rows * dim), *yr = malloc(sizeof(float) * rows * dim);
        test_fill(x, (size_t)rows * dim, &seed);
        test_fill(w, (size_t)dim, &seed);
        for (int with_w = 0; with_w < 2; with_w++) {
            g4c_rms_norm(NULL, y, x, with_w ? w : NULL, rows, dim, 1e-6f);
            g4c_ref_rms_norm(yr, x, with_w ? w : NULL, rows, dim, 1e-6f);
            check_close("rms_norm", y, yr, (size_t)rows * dim, 1e-6);
        }
        /* in place */
        memcpy(y, x, sizeof(float) * rows * dim);
        g4c_rms_norm(NULL, y, y, w, rows, dim, 1e-6f);
        g4c_ref_rms_norm(yr, x, w, rows, dim, 1e-6f);
        check_close("rms_norm in place", y, yr, (size_t)rows * dim, 1e-6);
        free(x), free(w), free(y), free(yr);
    }
}

/* A long prompt's norm and GELU and the logits' softcap are split over the pool: bit-identical to one thread, in
 * place too, at sizes around the split threshold and with row / element counts that do not divide evenly */
static void test_split_over_pool(void) {
    g4c_pool *pool;
    CHECK(g4c_pool_init(&pool, 3, NULL) == G4C_OK);
    /* {1, 12288}, {1, 4101}: a decoded token's FFN GELU, split from 4096 elements (odd slices: the padded tail) */
    static const int shapes[][2] = {{85, 1536}, {512, 256}, {7, 40000}, {1, 1 << 18},
                                    {300, 437}, {1, 12288}, {1, 4101}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const int rows = shapes[i][0], dim = shapes[i][1];
        const size_t n = (size_t)rows * dim;
        float *x = malloc(sizeof(float) * n), *u = malloc(sizeof(float) * n), *w = malloc(sizeof(float) * dim);
        float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
        test_fill(x, n, &seed);
        test_fill(u, n, &seed);
        test_fill(w, (size_t)dim, &seed);
        g4c_rms_norm(NULL, a, x, w, rows, dim, 1e-6f);
        g4c_rms_norm(pool, b, x, w, rows, dim, 1e-6f);
        CHECKF(!memcmp(a, b, sizeof(float) * n), "rms_norm %dx%d: the pool's split differs", rows, dim);
        memcpy(b, x, sizeof(float) * n);
        g4c_rms_norm(pool, b, b, w, rows, dim, 1e-6f);
        CHECKF(!memcmp(a, b, sizeof(float) * n), "rms_norm %dx%d in place: the pool's split differs", rows, dim);
        g4c_gelu_mul(NULL, a, x, u, (int)n);
        g4c_gelu_mul(pool, b, x, u, (int)n);
        CHECKF(!memcmp(a, b, sizeof(float) * n), "gelu_mul %zu: the pool's split differs", n);
        g4c_ref_gelu_mul(b, x, u, (int)n);
        check_close("gelu_mul split", a, b, n, 1e-6);
        for (size_t k = 0; k < n; k++) a[k] = b[k] = x[k] * 40;
        g4c_softcap(NULL, a, (int)n, 30.0f);
        g4c_softcap(pool, b, (int)n, 30.0f);
        CHECKF(!memcmp(a, b, sizeof(float) * n), "softcap %zu: the pool's split differs", n);
        free(x), free(u), free(w), free(a), free(b);
    }
    g4c_pool_free(pool);
}

static void test_gelu_mul_softcap(void) {
    enum { N = 1001 };
    float g[N], u[N], y[N], yr[N];
    test_fill(g, N, &seed);
    test_fill(u, N, &seed);
    for (int i = 0; i < N; i++) g[i] *= 8; /* cover the tails of tanh */
    g4c_gelu_mul(NULL, y, g, u, N);
    g4c_ref_gelu_mul(yr, g, u, N);
    check_close("gelu_mul", y, yr, N, 1e-6);
    for (int i = 0; i < N; i++) y[i] = yr[i] = g[i] * 10;
    g4c_softcap(NULL, y, N, 30.0f);
    g4c_ref_softcap(yr, N, 30.0f);
    check_close("softcap", y, yr, N, 1e-6);
}

/* tanh (softcap with cap 1) over a dense sweep against libm in f64: every branch of a vectorized tanh, tiny
 * values, the switch points and the saturated tails */
static void test_tanh_sweep(void) {
    enum { N = 400001 };
    float *x = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) x[i] = -20.0f + 40.0f * (float)i / (N - 1);
    x[0] = 1e-30f, x[1] = -3e-8f, x[2] = 0.625f, x[3] = -0.625f, x[4] = 0.62499994f, x[5] = 100.0f, x[6] = -1e4f;
    float *y = malloc(sizeof(float) * N);
    memcpy(y, x, sizeof(float) * N);
    g4c_softcap(NULL, y, N, 1.0f);
    double worst_abs = 0, worst_rel = 0;
    for (int i = 0; i < N; i++) {
        const double t = tanh((double)x[i]), e = fabs((double)y[i] - t);
        worst_abs = e > worst_abs ? e : worst_abs;
        if (t != 0) worst_rel = e / fabs(t) > worst_rel ? e / fabs(t) : worst_rel;
    }
    CHECKF(worst_abs <= 2.5e-7 && worst_rel <= 5e-7, "tanh: worst abs %.3g, rel %.3g", worst_abs, worst_rel);
    free(x), free(y);
}

#if defined(__x86_64__)
/* The attention's softmax weights (AVX2): e^(x − mx) against f64 exp over [−100, 0] at every length 1..67 (the 8-lane
 * tails), exactly 0 below the floor (no subnormals), and their sum */
static void test_softmax_exp(void) {
    if (!g4c_cpu_isa()) return;
    enum { N = 67 };
    float p[N], x[N];
    double worst = 0;
    int bad_zero = 0;
    for (int n = 1; n <= N; n++)
        for (int rep = 0; rep < 40; rep++) {
            const float mx = 5.0f * test_rng_f(&seed);
            for (int i = 0; i < n; i++) x[i] = p[i] = mx - 100.0f * fabsf(test_rng_f(&seed));
            x[0] = p[0] = mx; /* the block's maximum */
            const float sum = g4c_avx2_softmax_exp(p, n, mx);
            double want_sum = 0;
            for (int i = 0; i < n; i++) {
                const double d = (double)(x[i] - mx), e = exp(d); /* the f32 argument, as the kernel forms it */
                if (d < G4C_SOFTMAX_FLOOR) {
                    bad_zero += p[i] != 0.0f;
                    continue;
                }
                want_sum += e;
                const double r = fabs((double)p[i] - e) / e;
                worst = r > worst ? r : worst;
            }
            const double rs = fabs((double)sum - want_sum) / want_sum;
            worst = rs > worst ? rs : worst;
        }
    CHECKF(worst <= 3e-7 && !bad_zero, "softmax exp: worst relative error %.3g, %d nonzero below the floor", worst,
           bad_zero);
}
#endif

static void test_rope(void) {
    static const int hds[] = {2, 32, 64, 256, 512};
    for (size_t i = 0; i < sizeof hds / sizeof *hds; i++) {
        const int hd = hds[i], nh = 3;
        float *x = malloc(sizeof(float) * nh * hd), *xr = malloc(sizeof(float) * nh * hd);
        float *c = malloc(sizeof(float) * hd / 2), *s = malloc(sizeof(float) * hd / 2);
        test_fill(x, (size_t)nh * hd, &seed);
        memcpy(xr, x, sizeof(float) * nh * hd);
        for (int k = 0; k < hd / 2; k++) {
            float a = 3.0f * test_rng_f(&seed);
            c[k] = cosf(a);
            s[k] = sinf(a);
        }
        g4c_rope(x, nh, hd, c, s);
        g4c_ref_rope(xr, nh, hd, c, s);
        check_close("rope", x, xr, (size_t)nh * hd, 1e-6);
        free(x), free(xr), free(c), free(s);
    }
}

static void test_attention(void) {
    /* {n_tok, pos0, n_head, n_kv_head, head_dim, window, cap} */
    static const int cases[][7] = {
        {1, 0, 1, 1, 8, 0, 16},   {5, 0, 4, 2, 32, 0, 16},  {1, 15, 4, 1, 64, 0, 16}, {7, 9, 8, 2, 16, 4, 10},
        {12, 30, 4, 4, 32, 8, 19}, {3, 100, 2, 1, 512, 0, 103},
        /* whole GQA groups per task on the AVX2 path: 8 heads over two key blocks, 3 heads with a window over a
         * ring that wraps (head_dim 24: 16- and 8-column steps), 16 heads split in two */
        {9, 70, 8, 1, 64, 0, 79}, {4, 140, 6, 2, 24, 100, 128}, {2, 5, 16, 1, 16, 0, 8},
    };
    g4c_pool *pool;
    CHECK(g4c_pool_init(&pool, 2, NULL) == G4C_OK);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const int n = cases[i][0], pos0 = cases[i][1], nh = cases[i][2], nkv = cases[i][3], hd = cases[i][4];
        const int win = cases[i][5], cap = cases[i][6];
        const size_t kvn = (size_t)cap * nkv * hd, qn = (size_t)n * nh * hd;
        float *k = malloc(sizeof(float) * kvn), *v = malloc(sizeof(float) * kvn), *q = malloc(sizeof(float) * qn);
        float *o = malloc(sizeof(float) * qn), *orf = malloc(sizeof(float) * qn);
        test_fill(k, kvn, &seed);
        test_fill(v, kvn, &seed);
        test_fill(q, qn, &seed);
        for (size_t j = 0; j < qn; j++) q[j] *= 4; /* peakier softmax */
        int *hi = malloc(sizeof(int) * n);
        const int per_thread = pos0 + n;
        float *scratch = malloc(sizeof(float) * 2 * per_thread);
        for (int look = 0; look < 2; look++) {
            /* look = 1: queries also see up to 3 later positions of the chunk (image blocks, vision encoder) */
            for (int t = 0; t < n; t++) hi[t] = pos0 + t + 3 < pos0 + n - 1 ? pos0 + t + 3 : pos0 + n - 1;
            g4c_kv_view kv = {k, v, cap, nkv, hd, win, look ? hi : NULL};
            g4c_attention(pool, o, q, &kv, n, pos0, nh, scratch, per_thread);
            g4c_ref_attention(orf, q, &kv, n, pos0, nh);
            /* 4e-6, not 1e-6: with q × 4 and head_dim up to 512 the scores reach ~30, and an f32 rounding δ of a
             * score is a relative error δ of its softmax weight (measured up to 2.9e-6 over 12 seeds) */
            check_close(look ? "attention look-ahead" : "attention", o, orf, qn, 4e-6);
            /* decode == prefill: each token alone (fewer heads per task, cpu.c) gets the bits it got in the chunk */
            for (int t = 0; t < n && !look; t++) {
                g4c_attention(pool, orf, q + (size_t)t * nh * hd, &kv, 1, pos0 + t, nh, scratch, per_thread);
                CHECKF(!memcmp(orf, o + (size_t)t * nh * hd, sizeof(float) * (size_t)nh * hd),
                       "attention case %zu: token %d alone differs", i, t);
            }
        }
        free(k), free(v), free(q), free(o), free(orf), free(scratch), free(hi);
    }
    /* scores spread over hundreds: most softmax weights underflow (the AVX2 path drops those under e^-80, the
     * reference's expf reaches 0 or a subnormal) */
    {
        const int n = 6, pos0 = 90, nh = 8, hd = 64, cap = 96;
        const size_t kvn = (size_t)cap * hd, qn = (size_t)n * nh * hd;
        float *k = malloc(sizeof(float) * kvn), *v = malloc(sizeof(float) * kvn), *q = malloc(sizeof(float) * qn);
        float *o = malloc(sizeof(float) * qn), *orf = malloc(sizeof(float) * qn), *scratch = malloc(sizeof(float) * 2 * cap);
        test_fill(k, kvn, &seed);
        test_fill(v, kvn, &seed);
        test_fill(q, qn, &seed);
        for (size_t j = 0; j < qn; j++) q[j] *= 60;
        g4c_kv_view kv = {k, v, cap, 1, hd, 0, NULL};
        g4c_attention(pool, o, q, &kv, n, pos0, nh, scratch, cap);
        g4c_ref_attention(orf, q, &kv, n, pos0, nh);
        check_close("attention, underflowing weights", o, orf, qn, 4e-6);
        free(k), free(v), free(q), free(o), free(orf), free(scratch);
    }
    g4c_pool_free(pool);
}

/* the decode floor's probe (bandwidth.c): a positive, finite rate over a buffer past the L2, 0 for no work */
static void test_read_bandwidth(void) {
    g4c_pool *pool;
    CHECK(!g4c_pool_init(&pool, 2, NULL));
    const double r = g4c_read_bandwidth(pool, (size_t)16 << 20, 1);
    CHECKF(r > 0.05 && r < 1e4, "%g GB/s", r);
    CHECK(g4c_read_bandwidth(pool, 0, 1) == 0);
    CHECK(g4c_read_bandwidth(pool, (size_t)1 << 20, 0) == 0);
    /* sustained: the best loop's mean over >= 20 ms, at most its fastest pass (up to timer rounding) */
    double peak = -1;
    const double t0 = g4c_time_ms(), s = g4c_read_sustained(pool, (size_t)16 << 20, 20, &peak);
    CHECKF(s > 0.05 && s <= peak * 1.001 && g4c_time_ms() - t0 >= 20, "sustained %g, peak %g GB/s", s, peak);
    CHECK(g4c_read_sustained(pool, 0, 5, &peak) == 0 && peak == 0);
    CHECK(g4c_read_sustained(pool, (size_t)1 << 20, 0, NULL) > 0);
    g4c_pool_free(pool);
}

int main(void) {
    /* every case on the portable path, then on the SIMD path and the AVX-512 level when this CPU has them */
    for (int isa = 0; isa < 3; isa++) {
        g4c_cpu_set_isa(isa);
        if (g4c_cpu_isa() != isa) {
            printf(isa == 1 ? "skip SIMD path: this CPU lacks AVX2/FMA/F16C\n"
                            : "skip level 2: no AVX-512 VNNI on this CPU\n");
            break;
        }
#if defined(__aarch64__)
        printf("-- %s\n", isa ? (g4c_neon_has_dotprod() ? "NEON + dotprod" : "NEON (no dotprod)") : "portable");
#else
        printf("-- %s\n", isa == 2 ? "AVX-512" : isa ? "AVX2" : "portable");
#endif
        RUN(test_matmul);
        RUN(test_matmul_quant);
        RUN(test_rms_norm);
        RUN(test_split_over_pool);
        RUN(test_gelu_mul_softcap);
        RUN(test_tanh_sweep);
#if defined(__x86_64__)
        RUN(test_softmax_exp);
#endif
        RUN(test_rope);
        RUN(test_attention);
        RUN(test_read_bandwidth);
    }
    return TEST_REPORT();
}
