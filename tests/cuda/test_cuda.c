/* CUDA backend conformance (issue 9, docs/CUDA.md): every CUDA op against the CPU oracle (kernels/ref, f64) on fresh
 * random inputs of several shapes, then whole-model logits of every text fixture on the GPU against the CPU path
 * (rel. L2 <= 1e-3 per position, the same greedy tokens), with prefill chunks of 64, 5 and 1 tokens (cuBLAS and
 * GEMV paths, ring wrap-around), token-by-token decode, and an image-placeholder block.
 * Needs a CUDA device. Usage: test_cuda [FIXTURES_DIR]   (default: the source tree's tests/fixtures). */
#include <limits.h>
#include <unistd.h>

#include "../unit/fixture.h"
#include "kernels/cuda/cuda_backend.h"
#include "runtime/quantize.h"

static const char *fix = G4C_FIXTURES;
static uint64_t seed = 0x5eed;

static float *rnd(size_t n, float amp) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = amp * test_rng_f(&seed);
    return p;
}

static int argmax(const float *x, int n);

/* ---- ops ---- */

static const char *path_name(int p) { return p == G4C_CUDA_MM_GEMV ? "gemv" : p == G4C_CUDA_MM_GEMM ? "gemm" : "auto"; }

static void check_matmul(g4c_dtype dt, int rows, int cols, int n, int path, double tol) {
    float *wf = rnd((size_t)rows * cols, 1.f), *x = rnd((size_t)n * cols, 1.f);
    void *data = wf;
    uint16_t *h = NULL;
    if (dt != G4C_DTYPE_F32) {
        h = malloc(sizeof(uint16_t) * (size_t)rows * cols);
        for (size_t i = 0; i < (size_t)rows * cols; i++)
            h[i] = dt == G4C_DTYPE_BF16 ? g4c_f32_to_bf16(wf[i]) : g4c_f32_to_f16(wf[i]);
        data = h;
    }
    g4c_wmat w = {.dtype = dt, .data = data, .rows = rows, .cols = cols};
    float *y = malloc(sizeof(float) * (size_t)n * rows), *ref = malloc(sizeof(float) * (size_t)n * rows);
    g4c_ref_matmul(ref, x, &w, n);
    g4c_err err = {0};
    g4c_status st = g4c_cuda_op_matmul(y, x, &w, n, path, &err);
    CHECKF(st == G4C_OK, "%s", err.msg);
    double e = st == G4C_OK ? test_rel_l2(y, ref, (size_t)n * rows) : 1;
    CHECKF(e <= tol, "matmul %s %dx%d n=%d %s: rel L2 %.3g > %.3g", g4c_dtype_infos[dt].name, rows, cols, n,
           path_name(path), e, tol);
    printf("     matmul %-4s %5d x %-5d n %-3d %-4s rel L2 %.2e\n", g4c_dtype_infos[dt].name, rows, cols, n,
           path_name(path), e);
    free(wf), free(x), free(h), free(y), free(ref);
}

static void test_matmul(void) {
    static const int shapes[][3] = {{64, 64, 1},  {97, 131, 3},  {7, 5, 1},    {1000, 333, 8},  {65, 17, 12},
                                    {300, 1024, 9}, {513, 260, 40}, {2048, 2560, 1}, {256, 4104, 2}, {1, 777, 5}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const int r = shapes[i][0], c = shapes[i][1], n = shapes[i][2];
        for (int p = 0; p < 3; p++) {
            check_matmul(G4C_DTYPE_F32, r, c, n, p, 2e-6);
            /* GEMV: exact bf16 products, f32 sums; GEMM: activations split into two bf16 (~2^-17) */
            check_matmul(G4C_DTYPE_BF16, r, c, n, p, p == G4C_CUDA_MM_GEMV || (p == 0 && n <= 8) ? 2e-6 : 5e-5);
        }
    }
    /* f16 is uploaded as f32 (exact) */
    check_matmul(G4C_DTYPE_F16, 200, 96, 3, 0, 2e-6);
    check_matmul(G4C_DTYPE_F16, 65, 40, 12, 0, 2e-6);
}

/* x as the GPU's decode kernels (and the CPU's integer kernels) see it: per 32 elements d = max|x| / 127,
 * q = rint(x·(1/d)), x̃ = q·d. */
static void quantize_act(float *xt, const float *x, size_t n) {
    for (size_t b = 0; b < n; b += 32) {
        float amax = 0.f;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[b + i]));
        const float d = amax / 127.f, id = d > 0.f ? 1.0f / d : 0.f;
        for (int i = 0; i < 32; i++) xt[b + i] = rintf(x[b + i] * id) * d;
    }
}

/* A quantized test matrix type: a ggml block type, or MLX affine (dt U32: `bits`-bit codes, scale and bias of type
 * sdt per group of `group` columns). */
typedef struct {
    g4c_dtype dt;
    int bits, group;
    g4c_dtype sdt;
} qspec;
static qspec QB(g4c_dtype dt) { return (qspec){dt, 0, 0, G4C_DTYPE_F32}; }
static qspec QMLX(int bits, int group, g4c_dtype sdt) { return (qspec){G4C_DTYPE_U32, bits, group, sdt}; }
static const char *qname(qspec t) {
    static char b[4][32];
    static int k;
    if (t.dt != G4C_DTYPE_U32) return g4c_dtype_infos[t.dt].name;
    k = (k + 1) % 4;
    snprintf(b[k], sizeof b[k], "mlx%d/%d %s", t.bits, t.group, g4c_dtype_infos[t.sdt].name);
    return b[k];
}
static void put_scale(void *p, size_t i, g4c_dtype t, float v) {
    if (t == G4C_DTYPE_F32) ((float *)p)[i] = v;
    else ((uint16_t *)p)[i] = t == G4C_DTYPE_BF16 ? g4c_f32_to_bf16(v) : g4c_f32_to_f16(v);
}
static float get_scale(const void *p, size_t i, g4c_dtype t) {
    float v;
    g4c_to_f32(&v, (const char *)p + i * g4c_dtype_infos[t].size, t, 1);
    return v;
}

/* wf [rows][cols] quantized as t into *w (its data, scales and biases malloc'd; free with free_qmat). MLX: as
 * mlx.core.quantize does (per group scale = (max − min) / (2^bits − 1), bias = min, in sdt; codes rounded against the
 * stored scale and bias), codes packed LSB-first into u32 words. */
static void make_qmat(g4c_wmat *w, qspec t, const float *wf, int rows, int cols) {
    *w = (g4c_wmat){.dtype = t.dt, .rows = rows, .cols = cols};
    if (t.dt != G4C_DTYPE_U32) {
        const size_t rb = g4c_dtype_bytes(t.dt, cols);
        uint8_t *q = malloc(rb * rows);
        for (int r = 0; r < rows; r++) g4c_quantize(q + r * rb, wf + (size_t)r * cols, t.dt, cols);
        w->data = q;
        return;
    }
    const int ng = cols / t.group, qmax = (1 << t.bits) - 1;
    const size_t ss = g4c_dtype_infos[t.sdt].size;
    uint8_t *codes = calloc((size_t)rows * cols * t.bits / 8, 1);
    void *sc = malloc(ss * rows * ng), *bi = malloc(ss * rows * ng);
    for (int r = 0; r < rows; r++)
        for (int g = 0; g < ng; g++) {
            const float *v = wf + (size_t)r * cols + (size_t)g * t.group;
            float lo = v[0], hi = v[0];
            for (int i = 1; i < t.group; i++) lo = fminf(lo, v[i]), hi = fmaxf(hi, v[i]);
            const size_t gi = (size_t)r * ng + g;
            put_scale(sc, gi, t.sdt, (hi - lo) / qmax);
            put_scale(bi, gi, t.sdt, lo);
            const float s = get_scale(sc, gi, t.sdt), b = get_scale(bi, gi, t.sdt);
            for (int i = 0; i < t.group; i++) {
                float c = s > 0.f ? rintf((v[i] - b) / s) : 0.f;
                c = c < 0.f ? 0.f : c > qmax ? (float)qmax : c;
                const size_t bit = ((size_t)r * cols + (size_t)g * t.group + i) * t.bits;
                codes[bit / 8] |= (uint8_t)((unsigned)c << (bit % 8));
            }
        }
    w->data = codes, w->scales = sc, w->biases = bi;
    w->scale_dtype = t.sdt, w->group = t.group, w->bits = t.bits;
}
static void free_qmat(g4c_wmat *w) { free((void *)w->data), free((void *)w->scales), free((void *)w->biases); }

/* Quantized weights (random blocks from g4c_quantize of random floats, or MLX codes). GEMV: against the oracle on the
 * same int8 activations (only f32 rounding differs) and, loosely, on the raw ones; GEMM: dequantized to bf16 tiles
 * (bf16 weight rounding, ~2^-9 per weight). */
static void check_matmul_q(qspec t, int rows, int cols, int n, int path) {
    float *wf = rnd((size_t)rows * cols, 1.f), *x = rnd((size_t)n * cols, 1.f), *xt = malloc(sizeof(float) * n * cols);
    for (size_t i = 0; i < (size_t)n * cols; i += 97) x[i] *= 8.f; /* outliers: blocks with different scales */
    g4c_wmat w;
    make_qmat(&w, t, wf, rows, cols);
    float *y = malloc(sizeof(float) * n * rows), *ref = malloc(sizeof(float) * n * rows);
    float *ref_raw = malloc(sizeof(float) * n * rows);
    quantize_act(xt, x, (size_t)n * cols);
    const int gemv = path == G4C_CUDA_MM_GEMV || (path == G4C_CUDA_MM_AUTO && n <= 8);
    g4c_ref_matmul(ref, gemv ? xt : x, &w, n);
    g4c_ref_matmul(ref_raw, x, &w, n);
    g4c_err err = {0};
    g4c_status st = g4c_cuda_op_matmul(y, x, &w, n, path, &err);
    CHECKF(st == G4C_OK, "%s", err.msg);
    const double e = st == G4C_OK ? test_rel_l2(y, ref, (size_t)n * rows) : 1;
    const double e_raw = st == G4C_OK ? test_rel_l2(y, ref_raw, (size_t)n * rows) : 1;
    /* bf16 weights: few outputs vary more; bf16 activations (the auto prefill mode's quantized tiles) add as much
     * rounding again */
    const double tol = gemv ? 1e-5
                            : ((size_t)rows * n < 64 ? 1e-2 : 5e-3) * (g4c_cuda_prefill_mode() == G4C_CUDA_PREFILL_SPLIT ? 1 : 2);
    CHECKF(e <= tol, "matmul %s %dx%d n=%d %s: rel L2 %.3g > %.3g", qname(t), rows, cols, n, path_name(path), e, tol);
    CHECKF(e_raw <= 2e-2 || (size_t)rows * n < 64, "matmul %s %dx%d n=%d %s vs f32 activations: rel L2 %.3g",
           qname(t), rows, cols, n, path_name(path), e_raw);
    printf("     matmul %-4s %5d x %-5d n %-3d %-4s rel L2 %.2e (vs f32 activations %.2e)\n", qname(t), rows, cols, n,
           path_name(path), e, e_raw);
    free_qmat(&w);
    free(wf), free(x), free(xt), free(y), free(ref), free(ref_raw);
}

/* MoE prefill's expert-major products (rows stacked per expert, pairs routed at random, some experts empty): the
 * int8 path against the oracle on the same int8 activations, the tensor-core path against f32 activations (bf16
 * weights and activations, as the tiles). */
static void check_moe_experts(qspec t, int E, int rows_e, int cols, int n_pairs, int x_div) {
    const int rows = E * rows_e, nx = (n_pairs + x_div - 1) / x_div;
    float *wf = rnd((size_t)rows * cols, 1.f), *x = rnd((size_t)nx * cols, 1.f), *xt = malloc(sizeof(float) * nx * cols);
    quantize_act(xt, x, (size_t)nx * cols);
    g4c_wmat w;
    make_qmat(&w, t, wf, rows, cols);
    int *sel = malloc(sizeof(int) * n_pairs);
    uint64_t s = 99;
    for (int p = 0; p < n_pairs; p++) sel[p] = (int)((s = s * 6364136223846793005ull + 1442695040888963407ull) >> 33) % (E - 1);
    float *all = malloc(sizeof(float) * (size_t)nx * rows), *ref = malloc(sizeof(float) * (size_t)n_pairs * rows_e);
    float *y = malloc(sizeof(float) * (size_t)n_pairs * rows_e);
    for (int path = 1; path <= 2; path++) {
        g4c_ref_matmul(all, path == 1 ? xt : x, &w, nx);
        for (int p = 0; p < n_pairs; p++)
            memcpy(ref + (size_t)p * rows_e, all + (size_t)(p / x_div) * rows + (size_t)sel[p] * rows_e,
                   sizeof(float) * rows_e);
        g4c_err err = {0};
        const g4c_status st = g4c_cuda_op_moe_experts(y, x, &w, E, sel, n_pairs, x_div, path, &err);
        CHECKF(st == G4C_OK, "%s", err.msg);
        const double e = st == G4C_OK ? test_rel_l2(y, ref, (size_t)n_pairs * rows_e) : 1, tol = path == 1 ? 1e-5 : 1e-2;
        CHECKF(e <= tol, "moe experts %s E=%d %dx%d pairs=%d x_div=%d %s: rel L2 %.3g > %.3g", qname(t), E, rows_e, cols,
               n_pairs, x_div, path == 1 ? "int8" : "mma", e, tol);
        printf("     moe experts %-4s E %d %4d x %-4d pairs %-4d x_div %d %-4s rel L2 %.2e\n", qname(t), E, rows_e, cols,
               n_pairs, x_div, path == 1 ? "int8" : "mma", e);
    }
    free_qmat(&w);
    free(wf), free(x), free(xt), free(sel), free(all), free(ref), free(y);
}

static void test_moe_experts(void) {
    const qspec types[] = {QB(G4C_DTYPE_Q4_0), QB(G4C_DTYPE_Q8_0), QB(G4C_DTYPE_Q4_K), QB(G4C_DTYPE_Q5_K),
                           QB(G4C_DTYPE_Q6_K), QB(G4C_DTYPE_Q5_0), QMLX(4, 64, G4C_DTYPE_BF16),
                           QMLX(8, 32, G4C_DTYPE_BF16)};
    for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
        check_moe_experts(types[k], 6, 67, 512, 150, 3);  /* gate|up-like: x per token, 3 slots; the last expert empty */
        check_moe_experts(types[k], 5, 130, 768, 77, 1);  /* down-like: x per pair */
    }
    check_moe_experts(QB(G4C_DTYPE_Q4_0), 9, 64, 96, 300, 8); /* 96 columns: a partial 256-column step */
    check_moe_experts(QB(G4C_DTYPE_Q8_0), 4, 33, 2816, 40, 2);
}

static void test_matmul_quant(void) {
    const qspec types[] = {QB(G4C_DTYPE_Q4_0), QB(G4C_DTYPE_Q8_0), QB(G4C_DTYPE_Q4_K), QB(G4C_DTYPE_Q5_K),
                           QB(G4C_DTYPE_Q6_K), QB(G4C_DTYPE_Q5_0), QMLX(4, 64, G4C_DTYPE_BF16),
                           QMLX(8, 32, G4C_DTYPE_BF16)};
    /* the GEMM path with split activations first (only the tiles' bf16 weights round), then as the default auto mode
     * runs it (bf16 activations for quantized tiles) */
    g4c_cuda_set_prefill_mode(G4C_CUDA_PREFILL_SPLIT);
    static const int shapes[][3] = {{1, 256, 1},    {97, 512, 3},    {7, 768, 8},  {1000, 2560, 1},
                                    {333, 1024, 5}, {65, 256, 12},   {513, 512, 40}, {31, 5376, 2}};
    for (size_t k = 0; k < sizeof types / sizeof *types; k++)
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
            for (int p = 0; p < 3; p++) check_matmul_q(types[k], shapes[i][0], shapes[i][1], shapes[i][2], p);
    /* every warps-per-row split of the decode kernel (odd row count: a block's last rows are past the end) */
    for (size_t k = 0; k < sizeof types / sizeof *types; k++)
        for (int ks = 1; ks <= 4; ks *= 2) {
            g4c_cuda_set_qgemv_split(ks);
            check_matmul_q(types[k], 67, 5376, 3, G4C_CUDA_MM_GEMV);
            check_matmul_q(types[k], 5, 1024, 1, G4C_CUDA_MM_GEMV);
        }
    g4c_cuda_set_qgemv_split(0);
    /* 32-element blocks: widths that are not multiples of 256 */
    check_matmul_q(QB(G4C_DTYPE_Q4_0), 129, 96, 4, 0);
    check_matmul_q(QB(G4C_DTYPE_Q8_0), 3, 2080, 1, 0);
    check_matmul_q(QB(G4C_DTYPE_Q4_0), 77, 64, 20, 0);
    check_matmul_q(QB(G4C_DTYPE_Q5_0), 129, 96, 4, 0);
    check_matmul_q(QB(G4C_DTYPE_Q5_0), 3, 2080, 1, 0);
    /* MLX: every group size (one group, several, a width of 5 groups) and scale type, 4 and 8 bits; GEMV for 1..8
     * tokens, then the tiles */
    static const int groups[] = {32, 64, 128};
    static const g4c_dtype sdts[] = {G4C_DTYPE_F32, G4C_DTYPE_F16, G4C_DTYPE_BF16};
    for (int bits = 4; bits <= 8; bits += 4)
        for (int gi = 0; gi < 3; gi++)
            for (int si = 0; si < 3; si++) {
                const qspec t = QMLX(bits, groups[gi], sdts[si]);
                const int g = groups[gi];
                check_matmul_q(t, 33, g, 1, 0);
                check_matmul_q(t, 257, 3 * g, 2, 0);
                check_matmul_q(t, 5, 5 * g, 8, 0);
                check_matmul_q(t, 1001, 2 * g, 5, G4C_CUDA_MM_GEMV);
                check_matmul_q(t, 71, 4 * g, 17, G4C_CUDA_MM_GEMM);
            }
    /* several dequantization tiles: 16 MiB ones (8 Mi elements: 16384 rows of 512, five tiles, the last partial) */
    setenv("G4C_CUDA_TILE_MB", "16", 1);
    check_matmul_q(QB(G4C_DTYPE_Q6_K), 70000, 512, 9, G4C_CUDA_MM_GEMM);
    check_matmul_q(QMLX(4, 64, G4C_DTYPE_BF16), 70000, 512, 9, G4C_CUDA_MM_GEMM);
    check_matmul_q(QB(G4C_DTYPE_Q4_0), 20000, 992, 3, G4C_CUDA_MM_GEMM); /* 8456 rows a tile, rounded to 8448 */
    unsetenv("G4C_CUDA_TILE_MB");
    g4c_cuda_set_prefill_mode(G4C_CUDA_PREFILL_AUTO);
    for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
        check_matmul_q(types[k], 513, 512, 40, G4C_CUDA_MM_GEMM);
        check_matmul_q(types[k], 31, 5376, 12, G4C_CUDA_MM_AUTO);
    }
}

static void test_argmax(void) {
    static const int ns[] = {1, 7, 1000, 262144};
    for (int k = 0; k < 4; k++) {
        const int n = ns[k];
        float *x = rnd((size_t)n, 30.f);
        if (n > 8) x[n / 3] = x[n / 2] = 40.f; /* a tie: the first wins */
        int got = -1;
        g4c_err err = {0};
        CHECKF(g4c_cuda_op_argmax(&got, x, n, &err) == G4C_OK, "%s", err.msg);
        CHECKF(got == argmax(x, n), "argmax n=%d: %d, want %d", n, got, argmax(x, n));
        free(x);
    }
}

static void test_rms_norm(void) {
    static const int shapes[][2] = {{1, 64}, {7, 2560}, {3, 1000}, {5, 33}, {2, 5376}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int with_w = 0; with_w < 2; with_w++) {
            const int r = shapes[i][0], d = shapes[i][1];
            float *x = rnd((size_t)r * d, 3.f), *w = with_w ? rnd((size_t)d, 1.f) : NULL;
            float *y = malloc(sizeof(float) * r * d), *ref = malloc(sizeof(float) * r * d);
            g4c_ref_rms_norm(ref, x, w, r, d, 1e-6f);
            g4c_err err = {0};
            CHECKF(g4c_cuda_op_rms_norm(y, x, w, r, d, 1e-6f, &err) == G4C_OK, "%s", err.msg);
            double e = test_rel_l2(y, ref, (size_t)r * d);
            CHECKF(e <= 1e-6, "rms_norm %dx%d w=%d: %.3g", r, d, with_w, e);
            free(x), free(w), free(y), free(ref);
        }
}

static void test_gelu_softcap(void) {
    const int ns[] = {1, 1000, 4097};
    for (int i = 0; i < 3; i++) {
        const int n = ns[i];
        float *g = rnd(n, 4.f), *u = rnd(n, 2.f), *y = malloc(sizeof(float) * n), *ref = malloc(sizeof(float) * n);
        g4c_err err = {0};
        g4c_ref_gelu_mul(ref, g, u, n);
        CHECKF(g4c_cuda_op_gelu_mul(y, g, u, n, &err) == G4C_OK, "%s", err.msg);
        double e = test_rel_l2(y, ref, n);
        /* one element may sit near gelu's zero, where f32 tanh differs relatively more */
        CHECKF(e <= (n < 64 ? 1e-4 : 1e-6), "gelu_mul n=%d: %.3g", n, e);
        float *x = rnd(n, 80.f);
        memcpy(ref, x, sizeof(float) * n);
        g4c_ref_softcap(ref, n, 30.f);
        CHECKF(g4c_cuda_op_softcap(x, n, 30.f, &err) == G4C_OK, "%s", err.msg);
        e = test_rel_l2(x, ref, n);
        CHECKF(e <= 1e-6, "softcap n=%d: %.3g", n, e);
        free(g), free(u), free(y), free(ref), free(x);
    }
}

/* ---- decode's fused int8 activations: the form a producer kernel writes must be exactly the CPU's quantization
 * (g4c_quantize_q8: per 32, d = max|x| / 127, q = rint(x·(1/d))) of the f32 output that same kernel wrote ---- */

static g4c_cuda_q8 q8_new(int rows, int cols) {
    const size_t n = (size_t)rows * cols, nb = n / 32;
    g4c_cuda_q8 q = {malloc(n ? n : 1), malloc(sizeof(float) * (nb ? nb : 1)), malloc(sizeof(int) * 2 * (nb ? nb : 1))};
    return q;
}
static void q8_free(g4c_cuda_q8 *q) { free(q->q), free(q->d), free(q->sum); }

static void check_q8(const char *what, const float *y, const g4c_cuda_q8 *q, int rows, int cols) {
    long bad = 0;
    for (size_t b = 0; b < (size_t)rows * cols / 32; b++) {
        const float *x = y + 32 * b;
        float amax = 0.f;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
        const float d = amax / 127.f, id = d > 0.f ? 1.0f / d : 0.f;
        int sum[2] = {0, 0};
        for (int i = 0; i < 32; i++) {
            const int c = (int)rintf(x[i] * id);
            bad += q->q[32 * b + i] != c;
            sum[i >= 16] += c;
        }
        bad += q->d[b] != d;
        bad += q->sum[2 * b] != sum[0] || q->sum[2 * b + 1] != sum[1];
    }
    CHECKF(bad == 0, "%s: %ld int8 codes / scales / sums differ from the quantization of the f32 output", what, bad);
}

static void test_fused_q8(void) {
    static const int shapes[][2] = {{1, 32}, {3, 2560}, {8, 2816}, {5, 96}, {2, 5376}, {64, 704}, {1, 10240}};
    const float eps = 1e-6f;
    g4c_err err = {0};
    char what[128];
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const int r = shapes[i][0], d = shapes[i][1];
        const size_t n = (size_t)r * d;
        /* RMSNorm -> int8 */
        for (int with_w = 0; with_w < 2; with_w++) {
            float *x = rnd(n, 3.f), *w = with_w ? rnd((size_t)d, 1.f) : NULL;
            float *y = malloc(sizeof(float) * n), *ref = malloc(sizeof(float) * n);
            g4c_cuda_q8 q = q8_new(r, d);
            g4c_ref_rms_norm(ref, x, w, r, d, eps);
            CHECKF(g4c_cuda_op_rms_norm_q8(y, &q, x, w, r, d, eps, &err) == G4C_OK, "%s", err.msg);
            const double e = test_rel_l2(y, ref, n);
            CHECKF(e <= 1e-6, "rms_norm+q8 %dx%d w=%d: %.3g", r, d, with_w, e);
            snprintf(what, sizeof what, "rms_norm+q8 %dx%d w=%d", r, d, with_w);
            check_q8(what, y, &q, r, d);
            q8_free(&q), free(x), free(w), free(y), free(ref);
        }
        /* residual add + norm, then 0..3 norms of the sum, every output also as int8 */
        for (int no = 0; no <= 3; no++) {
            float *res = rnd(n, 2.f), *a = rnd(n, 3.f), *w = rnd((size_t)d, 1.f), *wo = rnd((size_t)3 * d, 1.f);
            float *res_ref = malloc(sizeof(float) * n), *t = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * 3 * n);
            float *y_ref = malloc(sizeof(float) * 3 * n);
            const float scale = no == 2 ? 0.75f : 1.f;
            g4c_ref_rms_norm(t, a, w, r, d, eps);
            for (size_t k = 0; k < n; k++) res_ref[k] = (float)(((double)res[k] + t[k]) * scale);
            for (int k = 0; k < no; k++) g4c_ref_rms_norm(y_ref + k * n, res_ref, wo + (size_t)k * d, r, d, eps);
            g4c_cuda_q8 qr = q8_new(r, d), qy[3] = {q8_new(r, d), q8_new(r, d), q8_new(r, d)};
            if (no == 1) free(qy[0].q), qy[0].q = NULL; /* an f32-only output beside int8 ones */
            CHECKF(g4c_cuda_op_norm_add_q8(res, y, &qr, qy, a, w, wo, no, r, d, eps, scale, &err) == G4C_OK, "%s", err.msg);
            double e = test_rel_l2(res, res_ref, n);
            for (int k = 0; k < no; k++) {
                const double ek = test_rel_l2(y + k * n, y_ref + k * n, n);
                e = ek > e ? ek : e;
            }
            CHECKF(e <= 2e-6, "rms_norm_add+q8 %dx%d outputs %d: %.3g", r, d, no, e);
            snprintf(what, sizeof what, "rms_norm_add+q8 %dx%d outputs %d (sum)", r, d, no);
            check_q8(what, res, &qr, r, d);
            for (int k = 0; k < no; k++)
                if (qy[k].q) {
                    snprintf(what, sizeof what, "rms_norm_add+q8 %dx%d outputs %d (norm %d)", r, d, no, k);
                    check_q8(what, y + k * n, &qy[k], r, d);
                }
            q8_free(&qr);
            for (int k = 0; k < 3; k++) q8_free(&qy[k]);
            free(res), free(a), free(w), free(wo), free(res_ref), free(t), free(y), free(y_ref);
        }
        /* GeGLU -> int8 */
        {
            float *g = rnd(n, 4.f), *u = rnd(n, 2.f), *y = malloc(sizeof(float) * n), *ref = malloc(sizeof(float) * n);
            g4c_cuda_q8 q = q8_new(r, d);
            g4c_ref_gelu_mul(ref, g, u, (int)n);
            CHECKF(g4c_cuda_op_gelu_mul_q8(y, &q, g, u, r, d, &err) == G4C_OK, "%s", err.msg);
            const double e = test_rel_l2(y, ref, n);
            CHECKF(e <= (n < 64 ? 1e-4 : 1e-6), "gelu_mul+q8 %dx%d: %.3g", r, d, e);
            snprintf(what, sizeof what, "gelu_mul+q8 %dx%d", r, d);
            check_q8(what, y, &q, r, d);
            q8_free(&q), free(g), free(u), free(y), free(ref);
        }
        /* MoE decode's last norm with the experts' weighted sum formed in the same launch */
        if (r <= 8) {
            const int K = i % 2 ? 8 : 3;
            float *a = rnd(n, 2.f), *wa = rnd((size_t)d, 1.f), *wb = rnd((size_t)d, 1.f), *ey = rnd(n * K, 1.f);
            float *wt = rnd((size_t)r * K, 1.f), *y = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
            float *b_ref = malloc(sizeof(float) * n), *ta = malloc(sizeof(float) * n), *tb = malloc(sizeof(float) * n);
            float *ref = malloc(sizeof(float) * n);
            for (int t = 0; t < r; t++)
                for (int c = 0; c < d; c++) {
                    double acc = 0;
                    for (int k = 0; k < K; k++) acc += (double)wt[t * K + k] * ey[((size_t)t * K + k) * d + c];
                    b_ref[(size_t)t * d + c] = (float)acc;
                }
            g4c_ref_rms_norm(ta, a, wa, r, d, eps);
            g4c_ref_rms_norm(tb, b_ref, wb, r, d, eps);
            for (size_t k = 0; k < n; k++) ref[k] = ta[k] + tb[k];
            CHECKF(g4c_cuda_op_moe_norm2(y, b, a, wa, ey, wt, K, wb, r, d, eps, &err) == G4C_OK, "%s", err.msg);
            const double eb = test_rel_l2(b, b_ref, n), e = test_rel_l2(y, ref, n);
            CHECKF(eb <= 1e-6 && e <= 2e-6, "moe sum+norm2 %dx%d K=%d: sum %.3g, output %.3g", r, d, K, eb, e);
            free(a), free(wa), free(wb), free(ey), free(wt), free(y), free(b), free(b_ref), free(ta), free(tb), free(ref);
        }
    }
    /* attention's output rows -> int8 (the decode kernel with and without key splits, and its combine) */
    static const int att[][8] = {{1, 100, 8, 2, 256, 200, 0, 0},  {1, 100, 8, 2, 256, 200, 0, 1}, {1, 300, 8, 2, 256, 71, 64, 5},
                                 {1, 700, 32, 4, 512, 1024, 0, 0}, {3, 5, 6, 3, 128, 64, 0, 2},  {8, 40, 4, 2, 64, 64, 0, 1},
                                 {2, 0, 2, 2, 96, 8, 0, 0}};
    for (size_t i = 0; i < sizeof att / sizeof *att; i++) {
        const int nt = att[i][0], pos0 = att[i][1], nh = att[i][2], nkv = att[i][3], hd = att[i][4], cap = att[i][5];
        const int window = att[i][6], split = att[i][7];
        const size_t nkvf = (size_t)cap * nkv * hd, nq = (size_t)nt * nh * hd;
        float *k = rnd(nkvf, 0.5f), *v = rnd(nkvf, 1.f), *q = rnd(nq, 0.5f);
        float *out = malloc(sizeof(float) * nq), *ref = malloc(sizeof(float) * nq);
        g4c_kv_view view = {k, v, cap, nkv, hd, window, NULL};
        g4c_ref_attention(ref, q, &view, nt, pos0, nh);
        g4c_cuda_q8 q8 = q8_new(nt, nh * hd);
        CHECKF(g4c_cuda_op_attention_q8(out, &q8, q, &view, nt, pos0, nh, split, &err) == G4C_OK, "%s", err.msg);
        const double e = test_rel_l2(out, ref, nq);
        CHECKF(e <= 1e-5, "attention+q8 n=%d pos0=%d heads=%d/%d hd=%d split=%d: %.3g", nt, pos0, nh, nkv, hd, split, e);
        snprintf(what, sizeof what, "attention+q8 n=%d heads=%d hd=%d split=%d", nt, nh, hd, split);
        check_q8(what, out, &q8, nt, nh * hd);
        q8_free(&q8), free(k), free(v), free(q), free(out), free(ref);
    }
}

/* model/kv_cache.c's inv_freq (spec §3.5) */
static void inv_freq(float *inv, const g4c_rope_cfg *r, int hd) {
    int n_rot = hd / 2;
    if (r->type == G4C_ROPE_PROPORTIONAL) n_rot = (int)floor((double)r->partial_rotary * hd / 2.0);
    for (int k = 0; k < hd / 2; k++) inv[k] = (k < n_rot ? 1.0f / powf(r->theta, (float)(2 * k) / (float)hd) : 0.0f) / r->factor;
}

static void test_norm_rope(void) {
    const g4c_rope_cfg kinds[2] = {{G4C_ROPE_DEFAULT, 10000.f, 1.f, 1.f}, {G4C_ROPE_PROPORTIONAL, 1e6f, 0.25f, 1.f}};
    static const int shapes[][4] = {{1, 8, 256, 0}, {5, 4, 512, 37}, {3, 2, 32, 100000}, {2, 1, 64, 4095}, {4, 16, 256, 1}};
    for (int kd = 0; kd < 2; kd++)
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
            const int nt = shapes[i][0], nh = shapes[i][1], hd = shapes[i][2], pos0 = shapes[i][3], half = hd / 2;
            const size_t n = (size_t)nt * nh * hd;
            float *x = rnd(n, 2.f), *w = rnd(hd, 1.f), *ref = malloc(sizeof(float) * n), *inv = malloc(sizeof(float) * half);
            float *cs = malloc(sizeof(float) * half), *sn = malloc(sizeof(float) * half);
            inv_freq(inv, &kinds[kd], hd);
            g4c_ref_rms_norm(ref, x, w, nt * nh, hd, 1e-6f);
            for (int t = 0; t < nt; t++) {
                for (int k = 0; k < half; k++) {
                    const float ang = (float)(pos0 + t) * inv[k]; /* text.c: f32 angle, then cos/sin */
                    cs[k] = cosf(ang), sn[k] = sinf(ang);
                }
                g4c_ref_rope(ref + (size_t)t * nh * hd, nh, hd, cs, sn);
            }
            g4c_err err = {0};
            CHECKF(g4c_cuda_op_norm_rope(x, w, nt, nh, hd, 1e-6f, inv, pos0, &err) == G4C_OK, "%s", err.msg);
            double e = test_rel_l2(x, ref, n);
            CHECKF(e <= 2e-6, "norm+rope %s n=%d heads=%d hd=%d pos0=%d: %.3g", kd ? "proportional" : "default", nt, nh,
                   hd, pos0, e);
            free(x), free(w), free(ref), free(inv), free(cs), free(sn);
        }
}

static double attn_bound = 1e-5;

static void check_attention(int nt, int pos0, int nh, int nkv, int hd, int cap, int window, int look_ahead, int split) {
    const size_t nkvf = (size_t)cap * nkv * hd, nq = (size_t)nt * nh * hd;
    float *k = rnd(nkvf, 0.5f), *v = rnd(nkvf, 1.f), *q = rnd(nq, 0.5f);
    float *out = malloc(sizeof(float) * nq), *ref = malloc(sizeof(float) * nq);
    int *hi = NULL;
    if (look_ahead) { /* an image block: tokens [2, nt - 2) see the end of their run */
        hi = malloc(sizeof(int) * nt);
        for (int t = 0; t < nt; t++) hi[t] = t >= 2 && t < nt - 2 ? pos0 + nt - 3 : pos0 + t;
    }
    g4c_kv_view view = {k, v, cap, nkv, hd, window, hi};
    g4c_ref_attention(ref, q, &view, nt, pos0, nh);
    g4c_err err = {0};
    CHECKF(g4c_cuda_op_attention(out, q, &view, nt, pos0, nh, split, &err) == G4C_OK, "%s", err.msg);
    double e = test_rel_l2(out, ref, nq);
    CHECKF(e <= attn_bound, "attention n=%d pos0=%d heads=%d/%d hd=%d cap=%d window=%d hi=%d split=%d: %.3g", nt, pos0, nh, nkv,
           hd, cap, window, look_ahead, split, e);
    printf("     attention n %-3d pos0 %-4d heads %2d/%-2d hd %-3d cap %-4d window %-3d hi %d split %-2d rel L2 %.2e\n", nt,
           pos0, nh, nkv, hd, cap, window, look_ahead, split, e);
    free(k), free(v), free(q), free(out), free(ref), free(hi);
}

static void test_attention(void) {
    check_attention(1, 100, 8, 2, 256, 200, 0, 0, 0);   /* decode, auto split */
    check_attention(1, 100, 8, 2, 256, 200, 0, 0, 1);
    check_attention(1, 100, 8, 2, 256, 200, 0, 0, 7);
    check_attention(1, 700, 32, 4, 512, 1024, 0, 0, 0);  /* 31B full layer */
    check_attention(1, 300, 8, 2, 256, 71, 64, 0, 0);    /* sliding ring wrapped several times */
    check_attention(40, 0, 4, 1, 512, 64, 0, 0, 0);      /* prefill */
    check_attention(5, 37, 4, 2, 32, 12, 8, 0, 0);       /* chunk in a ring */
    check_attention(12, 30, 4, 2, 64, 19, 8, 1, 0);      /* image block looking ahead, window 8 */
    check_attention(12, 30, 4, 2, 64, 19, 8, 1, 3);
    check_attention(3, 5, 6, 3, 128, 64, 0, 0, 2);
    check_attention(2, 0, 2, 2, 96, 8, 0, 0, 0);
    /* prefill (one split) with every kernel variant: partial tiles, rings, windows, look-ahead, GQA, head sizes */
    for (int v = G4C_CUDA_ATTN_AUTO; v <= G4C_CUDA_ATTN_T4; v++) {
        g4c_cuda_set_attention_variant(v);
        printf("     prefill attention variant %d\n", v);
        check_attention(37, 11, 8, 2, 256, 48, 0, 0, 0);
        check_attention(64, 100, 8, 1, 512, 300, 0, 0, 0);
        check_attention(29, 50, 4, 2, 256, 40, 12, 0, 0); /* window 12, ring of 40 */
        check_attention(23, 3, 4, 2, 128, 64, 0, 1, 0);
        check_attention(20, 60, 4, 2, 64, 27, 8, 1, 0);   /* look-ahead in a ring */
        check_attention(8, 0, 2, 1, 32, 8, 0, 0, 0);
        check_attention(5, 0, 2, 1, 32, 8, 0, 0, 0);
        check_attention(9, 4, 6, 3, 96, 13, 0, 0, 0);     /* hd 96: always the per-query kernel */
    }
    /* the bf16 tensor-core prefill kernel (head dims 32..512): Q, K, V and P rounded to bf16 (2^-9 each), f32
     * accumulation and softmax; measured 2-4e-3 */
    g4c_cuda_set_attention_variant(G4C_CUDA_ATTN_TC);
    attn_bound = 1e-2;
    printf("     prefill attention on tensor cores (bf16)\n");
    check_attention(37, 11, 8, 2, 256, 48, 0, 0, 0);
    check_attention(64, 100, 8, 1, 512, 300, 0, 0, 0);
    check_attention(200, 0, 16, 8, 256, 1200, 0, 0, 0);  /* several query tiles, causal */
    check_attention(130, 1000, 8, 2, 512, 1200, 0, 0, 0); /* full layer after a long past */
    check_attention(29, 50, 4, 2, 256, 40, 12, 0, 0);    /* window 12, ring of 40 */
    check_attention(150, 90, 4, 2, 256, 300, 64, 0, 0);  /* window 64 across query tiles */
    check_attention(23, 3, 4, 2, 128, 64, 0, 1, 0);
    check_attention(100, 60, 4, 2, 64, 230, 0, 1, 0);    /* look-ahead */
    check_attention(20, 60, 4, 2, 64, 27, 8, 1, 0);      /* look-ahead in a ring */
    check_attention(8, 0, 2, 1, 32, 8, 0, 0, 0);
    check_attention(5, 0, 2, 1, 32, 8, 0, 0, 0);
    attn_bound = 1e-5;
    g4c_cuda_set_attention_variant(G4C_CUDA_ATTN_AUTO);
}

/* sampling's top-k: the same candidates as the CPU sampler's heap (value desc, ties to the lower id; NaN as -inf),
 * the largest logit, and the sum of exp((x - largest) / T) against f64 */
static int tk_cmp(const void *a, const void *b) {
    const float *x = *(const float *const *)a, *y = *(const float *const *)b;
    if (*x != *y) return *x > *y ? -1 : 1;
    return x < y ? -1 : x > y;
}

static void test_topk(void) {
    static const int cfg[][2] = {{262144, 64}, {262144, 1}, {262144, 40}, {1000, 64}, {70, 64}, {5000, 7}};
    for (size_t c = 0; c < sizeof cfg / sizeof *cfg; c++) {
        const int n = cfg[c][0], k = cfg[c][1];
        float *x = rnd((size_t)n, 8.f);
        for (int i = 0; i < n; i += 97) x[i] = x[(i * 7 + 13) % n]; /* ties */
        x[n / 3] = NAN, x[n / 2] = -INFINITY, x[n - 1] = 9.f, x[0] = 9.f;       /* a NaN, a -inf, a tie at the top */
        const float **order = malloc(sizeof(float *) * n);
        float *xs = malloc(sizeof(float) * n);
        for (int i = 0; i < n; i++) xs[i] = x[i] != x[i] ? -INFINITY : x[i], order[i] = xs + i;
        qsort(order, (size_t)n, sizeof *order, tk_cmp);
        const float T = c % 2 ? 0.7f : 1.0f;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += exp(((double)xs[i] - *order[0]) / T);
        float vals[64], stats[2];
        int ids[64];
        g4c_err err = {0};
        const g4c_status st = g4c_cuda_op_topk(vals, ids, stats, x, n, k, T, &err);
        CHECKF(st == G4C_OK, "%s", err.msg);
        int same = st == G4C_OK;
        for (int j = 0; j < k && same; j++) same = ids[j] == (int)(order[j] - xs) && vals[j] == *order[j];
        const double es = fabs(stats[1] - sum) / sum;
        CHECKF(same && stats[0] == *order[0] && es <= 1e-5, "top-k n=%d k=%d: candidates %s, max %g vs %g, sum rel %.3g",
               n, k, same ? "same" : "DIFFERENT", stats[0], *order[0], es);
        printf("     top-k n %-6d k %-2d T %.1f: candidates identical, sum rel error %.2e\n", n, k, T, es);
        free(x), free(xs), free(order);
    }
}

/* model/text.c moe()'s routing, in f64 */
static void ref_topk(int *sel, double *wt, const float *lg, int E, int K, const float *pes) {
    double p[512], mx = -INFINITY, sum = 0, tot = 0;
    for (int e = 0; e < E; e++) mx = lg[e] > mx ? lg[e] : mx;
    for (int e = 0; e < E; e++) sum += (p[e] = exp(lg[e] - mx));
    for (int k = 0; k < K; k++) {
        int best = -1;
        for (int e = 0; e < E; e++) {
            int taken = 0;
            for (int j = 0; j < k; j++) taken |= sel[j] == e;
            if (!taken && (best < 0 || p[e] > p[best])) best = e;
        }
        sel[k] = best, wt[k] = p[best] / sum, tot += wt[k];
    }
    for (int k = 0; k < K; k++) wt[k] = wt[k] / tot * pes[sel[k]];
}

static void test_router_topk(void) {
    static const int cfg[][3] = {{8, 2, 5}, {128, 8, 37}, {128, 8, 1}, {40, 3, 9}, {300, 4, 3}}; /* E, K, n */
    for (size_t c = 0; c < sizeof cfg / sizeof *cfg; c++) {
        const int E = cfg[c][0], K = cfg[c][1], n = cfg[c][2];
        float *lg = rnd((size_t)n * E, 4.f), *pes = rnd(E, 1.f), *wt = malloc(sizeof(float) * n * K);
        int *sel = malloc(sizeof(int) * n * K), rs[16];
        double rw[16], worst = 0;
        g4c_err err = {0};
        CHECKF(g4c_cuda_op_router_topk(sel, wt, lg, n, E, K, pes, &err) == G4C_OK, "%s", err.msg);
        int same = 1;
        for (int t = 0; t < n; t++) {
            ref_topk(rs, rw, lg + (size_t)t * E, E, K, pes);
            for (int k = 0; k < K; k++) {
                same &= rs[k] == sel[t * K + k];
                const double e = fabs(rw[k] - wt[t * K + k]) / (fabs(rw[k]) + 1e-30);
                worst = e > worst ? e : worst;
            }
        }
        CHECKF(same && worst <= 1e-5, "router top-k E=%d K=%d n=%d: same experts %d, worst weight rel error %.3g", E, K,
               n, same, worst);
        free(lg), free(pes), free(wt), free(sel);
    }
}

/* ---- whole model ---- */

/* The reference prompt and transformers' greedy tokens (no logits: the GPU is compared with the CPU). */
static int load_ref(fixture_ref *r, const char *tag) { return fixture_load_ref(r, fix, tag, 0); }

/* A fixture model by tag (4 threads); NULL, counted as a failure, when it does not load. */
static g4c_model *load_tag(const char *tag) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", fix, tag);
    g4c_model *m = fixture_load(dir, 4, NULL);
    CHECKF(m != NULL, "load %s", dir);
    return m;
}

static g4c_session *session(g4c_model *m, int device, int n_ctx, int n_ubatch) {
    return fixture_session(m, n_ctx, n_ubatch, device);
}

/* a NaN position counts as the worst */
static double worst_rel(const float *a, const float *b, int n, int V, int *at) {
    return fixture_worst_rel(a, b, n, V, 1, at);
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static const double MODEL_TOL = 1e-3;

/* Prefill logits of every position, GPU vs CPU, with the given ubatch. */
static void check_prefill(g4c_model *m, const int32_t *toks, int n, const float *soft, int n_soft, int ubatch,
                          const char *what) {
    const int V = g4c_model_n_vocab(m);
    g4c_session *cpu = session(m, 0, 128, ubatch), *gpu = session(m, 1, 128, ubatch);
    CHECK(cpu && gpu);
    if (cpu && gpu) {
        float *a = malloc(sizeof(float) * n * V), *b = malloc(sizeof(float) * n * V);
        g4c_err err = {0};
        CHECKF(g4c_session_eval_mm(cpu, toks, n, soft, n_soft, a, G4C_LOGITS_ALL, &err) == G4C_OK, "%s", err.msg);
        CHECKF(g4c_session_eval_mm(gpu, toks, n, soft, n_soft, b, G4C_LOGITS_ALL, &err) == G4C_OK, "%s", err.msg);
        int at = -1;
        const double e = worst_rel(b, a, n, V, &at);
        CHECKF(e <= MODEL_TOL, "%s ubatch %d: GPU vs CPU worst rel L2 %.3g at position %d", what, ubatch, e, at);
        printf("     %-22s ubatch %-2d prefill  worst rel L2 GPU vs CPU %.2e\n", what, ubatch, e);
        free(a), free(b);
    }
    g4c_session_free(cpu);
    g4c_session_free(gpu);
}

/* Greedy decode on the GPU (prefill, then one token at a time): the transformers tokens, and each step's logits
 * against the CPU session doing the same. */
static void check_greedy(g4c_model *m, const fixture_ref *r, const char *what) {
    const int V = g4c_model_n_vocab(m);
    g4c_session *cpu = session(m, 0, 128, 64), *gpu = session(m, 1, 128, 64);
    CHECK(cpu && gpu);
    if (!cpu || !gpu) {
        g4c_session_free(cpu), g4c_session_free(gpu);
        return;
    }
    float *a = malloc(sizeof(float) * V), *b = malloc(sizeof(float) * V);
    g4c_err err = {0};
    CHECKF(g4c_session_eval(cpu, r->prompt, r->n_prompt, a, G4C_LOGITS_LAST, &err) == G4C_OK, "%s", err.msg);
    CHECKF(g4c_session_eval(gpu, r->prompt, r->n_prompt, b, G4C_LOGITS_LAST, &err) == G4C_OK, "%s", err.msg);
    int same_ref = 1, same_cpu = 1;
    double worst = 0;
    for (int i = 0; i < r->n_greedy; i++) {
        const double e = test_rel_l2(b, a, V);
        if (!(e <= worst)) worst = e;
        const int tg = argmax(b, V), tc = argmax(a, V);
        same_ref &= tg == r->greedy[i];
        same_cpu &= tg == tc;
        if (i + 1 == r->n_greedy) break;
        int32_t t = tc; /* both follow the CPU's choice so that a mismatch does not cascade */
        CHECK(g4c_session_eval(cpu, &t, 1, a, G4C_LOGITS_LAST, &err) == G4C_OK);
        CHECKF(g4c_session_eval(gpu, &t, 1, b, G4C_LOGITS_LAST, &err) == G4C_OK, "%s", err.msg);
    }
    CHECKF(same_ref, "%s: GPU greedy tokens differ from transformers", what);
    CHECKF(same_cpu, "%s: GPU greedy tokens differ from the CPU", what);
    CHECKF(worst <= MODEL_TOL, "%s: decode logits GPU vs CPU rel L2 %.3g", what, worst);
    printf("     %-22s decode %d tokens: greedy %s, worst rel L2 GPU vs CPU %.2e\n", what, r->n_greedy,
           same_ref && same_cpu ? "identical" : "DIFFERENT", worst);
    free(a), free(b);
    g4c_session_free(cpu), g4c_session_free(gpu);
}

static void check_variant(const char *tag) {
    fixture_ref r;
    CHECK(load_ref(&r, tag));
    g4c_model *m = load_tag(tag);
    if (!m) return;
    check_prefill(m, r.prompt, r.n_prompt, NULL, 0, 64, tag);
    check_prefill(m, r.prompt, r.n_prompt, NULL, 0, 5, tag);
    check_prefill(m, r.prompt, r.n_prompt, NULL, 0, 1, tag);
    check_greedy(m, &r, tag);
    g4c_model_free(m);
}

FIXTURE_TEXT_TESTS(check_variant)

/* ---- GGUF (quantized) models: the fixtures through `gemma4c quantize`, GPU vs CPU of the same file ---- */

static char qdir[256];
/* Quantized files: decode and the GEMV prefill mode run the CPU's arithmetic (int8 activations quantized by the same
 * formula, the same integer dot products), so GPU and CPU agree to f32 rounding (~3e-7) until an activation lands
 * within an ulp of a rounding boundary: then the f32 rounding differences upstream (norms, attention) flip one
 * int8 code, which these random tiny models amplify to up to ~5e-2 in the logits (measured on an H100). Bounds:
 * rel. L2 <= QTOL and the same top-1 at >= 95% of the positions; greedy tokens identical except at near-ties (the
 * two choices' CPU logits closer than 4x the step's perturbation). The default prefill (bf16 tiles for cuBLAS) rounds
 * the weights to bf16, an error of the size of the int8 activations' own (docs/CUDA.md): top-1 >= 70%, numbers
 * printed. */
static const double QTOL = 1e-1;

static void gguf_prefill(g4c_model *m, const fixture_ref *r, int ubatch, int qprefill, const char *what, int gate) {
    const int V = g4c_model_n_vocab(m);
    g4c_cuda_set_qprefill(qprefill);
    g4c_session *cpu = session(m, 0, 128, ubatch), *gpu = session(m, 1, 128, ubatch);
    g4c_err err = {0};
    CHECK(cpu && gpu);
    if (cpu && gpu) {
        const int n = r->n_prompt;
        float *a = malloc(sizeof(float) * n * V), *b = malloc(sizeof(float) * n * V);
        CHECKF(g4c_session_eval(cpu, r->prompt, n, a, G4C_LOGITS_ALL, &err) == G4C_OK, "%s", err.msg);
        CHECKF(g4c_session_eval(gpu, r->prompt, n, b, G4C_LOGITS_ALL, &err) == G4C_OK, "%s", err.msg);
        int at = -1, same = 0;
        const double e = worst_rel(b, a, n, V, &at);
        for (int t = 0; t < n; t++) same += argmax(a + (size_t)t * V, V) == argmax(b + (size_t)t * V, V);
        if (gate == 1) {
            CHECKF(e <= QTOL, "%s ubatch %d: GPU vs CPU worst rel L2 %.3g at position %d", what, ubatch, e, at);
            CHECKF(same * 20 >= n * 19, "%s ubatch %d: top-1 equal at %d of %d positions", what, ubatch, same, n);
        }
        if (gate == 2)
            CHECKF(same * 10 >= n * 7, "%s ubatch %d %s: top-1 equal at %d of %d positions", what, ubatch,
                   qprefill ? "gemv" : "tiles", same, n);
        printf("     %-22s ubatch %-2d prefill %-5s worst rel L2 GPU vs CPU %.2e, top-1 equal %d/%d\n", what, ubatch,
               qprefill ? "gemv" : "tiles", e, same, n);
        free(a), free(b);
    }
    g4c_session_free(cpu), g4c_session_free(gpu);
    g4c_cuda_set_qprefill(G4C_CUDA_QPREFILL_TILES);
}

/* Greedy decode (32 tokens, both sessions following the CPU's choice) after a GEMV-mode prefill, GPU vs CPU:
 * tokens identical except at near-ties (the CPU's two choices closer than 4x the step's perturbation). gate: 1 =
 * that and rel. L2 <= QTOL; 2 = the tokens only; 0 = print only. */
static void qdecode(g4c_model *m, const fixture_ref *r, const char *what, int gate) {
    const int V = g4c_model_n_vocab(m);
    g4c_err err = {0};
    g4c_cuda_set_qprefill(G4C_CUDA_QPREFILL_GEMV);
    g4c_session *cpu = session(m, 0, 128, 64), *gpu = session(m, 1, 128, 64);
    CHECK(cpu && gpu);
    if (cpu && gpu) {
        float *a = malloc(sizeof(float) * V), *b = malloc(sizeof(float) * V);
        CHECK(g4c_session_eval(cpu, r->prompt, r->n_prompt, a, G4C_LOGITS_LAST, &err) == G4C_OK);
        CHECKF(g4c_session_eval(gpu, r->prompt, r->n_prompt, b, G4C_LOGITS_LAST, &err) == G4C_OK, "%s", err.msg);
        int same = 1, ties = 0;
        double worst = 0;
        for (int i = 0; i < 32; i++) {
            const double e = test_rel_l2(b, a, V);
            if (!(e <= worst)) worst = e;
            const int tc = argmax(a, V), tg = argmax(b, V);
            if (tg != tc) {
                double ss = 0;
                for (int k = 0; k < V; k++) ss += (double)a[k] * a[k];
                if (a[tc] - a[tg] <= 4 * e * sqrt(ss / V)) ties++;
                else same = 0;
            }
            int32_t t = tc;
            CHECK(g4c_session_eval(cpu, &t, 1, a, G4C_LOGITS_LAST, &err) == G4C_OK);
            CHECKF(g4c_session_eval(gpu, &t, 1, b, G4C_LOGITS_LAST, &err) == G4C_OK, "%s", err.msg);
        }
        if (gate) CHECKF(same, "%s: GPU greedy tokens differ from the CPU", what);
        if (gate == 1) CHECKF(worst <= QTOL, "%s: decode logits GPU vs CPU rel L2 %.3g", what, worst);
        printf("     %-22s decode 32 tokens: greedy %s (%d near-ties), worst rel L2 GPU vs CPU %.2e\n", what,
               same ? "identical" : "DIFFERENT", ties, worst);
        free(a), free(b);
    }
    g4c_session_free(cpu), g4c_session_free(gpu);
    g4c_cuda_set_qprefill(G4C_CUDA_QPREFILL_TILES);
}

/* gate: 1 = rel. L2 <= QTOL and the same greedy tokens; 0 = print only */
static void check_gguf(const char *tag, const char *type, int gate) {
    fixture_ref r;
    CHECK(load_ref(&r, tag));
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/%s", fix, tag);
    snprintf(out, sizeof out, "%s/%s-%s.gguf", qdir, tag, type);
    g4c_quantize_params qp = {.ftype = (g4c_ftype)g4c_ftype_parse(type), .n_threads = 4};
    g4c_err err = {0};
    CHECKF(g4c_quantize_model(in, out, &qp, &err) == G4C_OK, "quantize %s %s: %s", tag, type, err.msg);
    g4c_model *m;
    CHECKF(fixture_model_load(&m, out, 4, NULL, &err) == G4C_OK, "load %s: %s", out, err.msg);
    if (!m) return;
    char what[64];
    snprintf(what, sizeof what, "%s %s", tag, type);
    gguf_prefill(m, &r, 64, G4C_CUDA_QPREFILL_GEMV, what, gate);
    gguf_prefill(m, &r, 5, G4C_CUDA_QPREFILL_GEMV, what, gate);
    gguf_prefill(m, &r, 1, G4C_CUDA_QPREFILL_GEMV, what, gate);
    gguf_prefill(m, &r, 64, G4C_CUDA_QPREFILL_TILES, what, gate ? 2 : 0);
    /* greedy decode after a GEMV-mode prefill: the same tokens as the CPU on the same file */
    qdecode(m, &r, what, gate);
    g4c_model_free(m);
    remove(out);
}

static void test_gguf_q8_0(void) {
    check_gguf("dense-f32", "q8_0", 1);
    check_gguf("moe-f32", "q8_0", 1);
    check_gguf("e-f32", "q8_0", 1);
}
static void test_gguf_q4_0(void) {
    check_gguf("dense-f32", "q4_0", 1);
    check_gguf("moe-f32", "q4_0", 1);
    check_gguf("e-f32", "q4_0", 1);
}
/* q4_k_m on the tiny fixtures: rows of 64 fall back to Q5_0 / Q8_0 / F16 (Q5_0 kept quantized on the GPU since the
 * Q5_0 kernel; concatenations of parts of different types still expanded to bf16, which the CPU multiplies on int8
 * activations): the mixed upload runs; numbers printed */
static void test_gguf_q4_k_m(void) { check_gguf("dense-f32", "q4_k_m", 0); }

/* ---- MLX affine models (tests/fixtures/mlx-*: every linear and the tied embedding quantized as mlx-vlm does, the
 * 4-bit ones in groups of 64 with f32 scales (the MoE router 8-bit), mlx-moe-8bit 8-bit in groups of 32 with bf16
 * scales): GPU vs CPU of the same files. The CPU multiplies MLX weights (dequantized to f32) by f32 activations; the
 * GPU keeps them quantized (CU_MLX4 / CU_MLX8), so its decode and GEMV-mode prefill products see int8 activations
 * (per 32: d = max|x| / 127, an rms error of ~0.5% per product, twice the bf16 rounding of activations that these
 * random models amplify to 0.1-0.3 in the logits, docs/CUDA.md "Precision") and its default prefill bf16-rounded
 * weights and activations (the q4_0/q8_0 files' tiles: 0.3-0.7). Nothing exact is left to compare at the model
 * level (the products themselves are checked exactly in test_matmul_quant), so the bound is the tiles' one: the same
 * top-1 at >= 70% of positions in every prefill mode, greedy tokens identical except at near-ties (qdecode); the
 * weights must be kept quantized (device bytes below the bf16 expansion's); rel. L2 printed, beside the bf16
 * expansion's (G4C_CUDA_QUANT=0, the previous upload: bf16 weights on f32 activations). */
static void check_mlx(const char *tag) {
    fixture_ref r;
    CHECK(load_ref(&r, tag));
    size_t bytes[2] = {0, 0};
    for (int quant = 1; quant >= 0; quant--) {
        g4c_cuda_set_quant(quant);
        g4c_model *m = load_tag(tag);
        if (!m) break;
        char what[64];
        snprintf(what, sizeof what, "%s%s", tag, quant ? "" : " bf16");
        const int gate = quant ? 2 : 0;
        gguf_prefill(m, &r, 64, G4C_CUDA_QPREFILL_TILES, what, gate);
        gguf_prefill(m, &r, 64, G4C_CUDA_QPREFILL_GEMV, what, gate);
        gguf_prefill(m, &r, 5, G4C_CUDA_QPREFILL_TILES, what, gate);
        gguf_prefill(m, &r, 1, G4C_CUDA_QPREFILL_TILES, what, gate);
        qdecode(m, &r, what, quant ? 2 : 0);
        if (m->cuda) bytes[quant] = g4c_cuda_model_bytes(m->cuda, NULL);
        g4c_model_free(m);
    }
    g4c_cuda_set_quant(1);
    CHECKF(bytes[1] && bytes[1] < bytes[0], "%s: %zu device bytes quantized, %zu expanded to bf16", tag, bytes[1],
           bytes[0]);
    printf("     %-22s device bytes: %zu quantized, %zu as bf16\n", tag, bytes[1], bytes[0]);
}

static void test_mlx_models(void) {
    check_mlx("mlx-dense-4bit");
    check_mlx("mlx-moe-4bit");
    check_mlx("mlx-e-4bit");
    check_mlx("mlx-moe-8bit");
}

/* Soft tokens replacing an image block (bidirectional on sliding layers of "vision" models): GPU vs CPU. */
static void test_image_block(void) {
    const char *tags[2] = {"dense-f32", "moe-bf16"};
    for (int k = 0; k < 2; k++) {
        fixture_ref r;
        CHECK(load_ref(&r, tags[k]));
        g4c_model *m = load_tag(tags[k]);
        if (!m) continue;
        int32_t toks[64];
        int n = 0;
        for (int i = 0; i < 12; i++) toks[n++] = r.prompt[i];
        toks[n++] = g4c_model_boi_token(m);
        for (int i = 0; i < 6; i++) toks[n++] = g4c_model_image_token(m);
        toks[n++] = g4c_model_eoi_token(m);
        for (int i = 12; i < 24; i++) toks[n++] = r.prompt[i];
        float *soft = rnd((size_t)6 * g4c_model_n_embd(m), 1.f);
        check_prefill(m, toks, n, soft, 6, 64, tags[k]);
        check_prefill(m, toks, n, soft, 6, 8, tags[k]);
        free(soft);
        g4c_model_free(m);
    }
}

/* f64 reference of the vision tower's attention (spec §4.3): softmax(q·kᵀ)·v per head over all n, scale 1. */
static void vision_attention_ref(float *out, const float *q, const float *k, const float *v, int n, int nh, int hd) {
    double *p = malloc(sizeof(double) * n), *o = malloc(sizeof(double) * hd);
    for (int h = 0; h < nh; h++)
        for (int i = 0; i < n; i++) {
            const float *qi = q + ((size_t)i * nh + h) * hd;
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < n; j++) {
                const float *kj = k + ((size_t)j * nh + h) * hd;
                double s = 0;
                for (int d = 0; d < hd; d++) s += (double)qi[d] * kj[d];
                p[j] = s;
                mx = s > mx ? s : mx;
            }
            for (int d = 0; d < hd; d++) o[d] = 0;
            for (int j = 0; j < n; j++) {
                const float *vj = v + ((size_t)j * nh + h) * hd;
                const double e = exp(p[j] - mx);
                sum += e;
                for (int d = 0; d < hd; d++) o[d] += e * vj[d];
            }
            for (int d = 0; d < hd; d++) out[((size_t)i * nh + h) * hd + d] = (float)(o[d] / sum);
        }
    free(p), free(o);
}

/* The vision tower: its attention op in both prefill modes against f64 (the bf16 kernel's key tiles of 64: partial
 * last tiles, one query, the 31B image's 2520 patches; head dims 64 and 72 (padded to 80), 16 and 128), then
 * g4c_model_encode_image on the CPU (no CUDA session yet), then on the GPU (once a CUDA session uploaded the model),
 * same patches; positions shuffled so that pooling must follow them, not the patch order. */
static void test_vision(void) {
    static const int ns[] = {1, 7, 64, 129, 2520}, hds[] = {64, 72, 16, 128};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (size_t b = 0; b < sizeof hds / sizeof *hds; b++) {
            const int n = ns[a], hd = hds[b], nh = n > 1000 ? 1 : 3;
            if (n > 1000 && hd != 64 && hd != 72) continue;
            const size_t cnt = (size_t)n * nh * hd;
            float *q = rnd(cnt, 1.5f), *k = rnd(cnt, 1.5f), *v = rnd(cnt, 1.f), *ref = malloc(sizeof(float) * cnt),
                  *out = malloc(sizeof(float) * cnt);
            vision_attention_ref(ref, q, k, v, n, nh, hd);
            g4c_err err = {0};
            double e[2] = {1, 1};
            for (int mode = 0; mode < 2; mode++) {
                const g4c_status st = g4c_cuda_op_vision_attention(out, q, k, v, n, nh, hd, mode, &err);
                CHECKF(st == G4C_OK, "%s", err.msg);
                if (st == G4C_OK) e[mode] = test_rel_l2(out, ref, cnt);
            }
            CHECKF(e[0] <= 1e-5, "vision attention n %d hd %d: f32 rel L2 %.3g", n, hd, e[0]);
            CHECKF(e[1] <= 1e-2, "vision attention n %d hd %d: bf16 rel L2 %.3g", n, hd, e[1]);
            printf("     vision attention n %4d x %d heads of %3d vs f64: f32 cuBLAS rel L2 %.2e, bf16 kernel %.2e\n", n,
                   nh, hd, e[0], e[1]);
            free(q), free(k), free(v), free(ref), free(out);
        }
    const char *tags[4] = {"dense-f32", "e-f32", "dense-bf16", "mlx-e-4bit"};
    for (int k = 0; k < 4; k++) {
        g4c_model *m = load_tag(tags[k]);
        if (!m) continue;
        g4c_err err = {0};
        CHECKF(g4c_model_has_vision(m), "%s: no vision tower", tags[k]);
        const int H = g4c_model_n_embd(m);
        static const int grids[2][2] = {{9, 6}, {3, 12}}; /* patches wide x high (pool 3) */
        for (int g = 0; g < 2; g++) {
            const int pw = grids[g][0], ph = grids[g][1], n = pw * ph, n_out = n / 9;
            float *patches = rnd((size_t)n * 768, 0.5f);
            for (size_t i = 0; i < (size_t)n * 768; i++) patches[i] += 0.5f; /* pixels in [0, 1] */
            int32_t *pos = malloc(sizeof(int32_t) * 2 * n);
            for (int i = 0; i < n; i++) pos[2 * i] = i % pw, pos[2 * i + 1] = i / pw;
            for (int i = n - 1; i > 0; i--) { /* shuffle the patch order (patch rows move with their positions) */
                const int j = rand() % (i + 1);
                int32_t t0 = pos[2 * i], t1 = pos[2 * i + 1];
                pos[2 * i] = pos[2 * j], pos[2 * i + 1] = pos[2 * j + 1], pos[2 * j] = t0, pos[2 * j + 1] = t1;
            }
            float *cpu = malloc(sizeof(float) * n_out * H), *gpu = malloc(sizeof(float) * n_out * H);
            g4c_session *s = g == 0 ? NULL : session(m, 1, 64, 64); /* the CPU first, then a CUDA session exists */
            if (g == 0) {
                CHECKF(g4c_model_encode_image(m, patches, pos, n, cpu, &err) == G4C_OK, "%s", err.msg);
                s = session(m, 1, 64, 64);
            } else {
                /* the CPU reference while the model has a CUDA session: the environment switch */
                setenv("G4C_CUDA_VISION", "0", 1);
                CHECKF(g4c_model_encode_image(m, patches, pos, n, cpu, &err) == G4C_OK, "%s", err.msg);
                unsetenv("G4C_CUDA_VISION");
            }
            CHECK(s != NULL);
            /* the f32 precision (split), which auto keeps for unquantized decoders (mlx-e-4bit's is quantized: auto
             * would take bf16 there) */
            g4c_cuda_set_prefill_mode(G4C_CUDA_PREFILL_SPLIT);
            CHECKF(g4c_model_encode_image(m, patches, pos, n, gpu, &err) == G4C_OK, "%s", err.msg);
            const double e = test_rel_l2(gpu, cpu, (size_t)n_out * H);
            CHECKF(e <= 1e-3, "%s %dx%d: vision GPU vs CPU rel L2 %.3g", tags[k], pw, ph, e);
            g4c_cuda_set_prefill_mode(G4C_CUDA_PREFILL_BF16);
            CHECKF(g4c_model_encode_image(m, patches, pos, n, gpu, &err) == G4C_OK, "%s", err.msg);
            const double eb = test_rel_l2(gpu, cpu, (size_t)n_out * H);
            g4c_cuda_set_prefill_mode(G4C_CUDA_PREFILL_AUTO);
            printf("     %-12s %2dx%-2d patches: soft tokens GPU vs CPU rel L2 %.2e (bf16 activations and attention "
                   "%.2e)\n", tags[k], pw, ph, e, eb);
            /* a bad grid is refused on the GPU path as on the CPU */
            pos[0] = 1000;
            CHECK(g4c_model_encode_image(m, patches, pos, n, gpu, &err) != G4C_OK);
            g4c_session_free(s);
            free(patches), free(pos), free(cpu), free(gpu);
        }
        g4c_model_free(m);
    }
}

int main(int argc, char **argv) {
    if (argc > 1) fix = argv[1];
    char why[256], name[256];
    if (!g4c_cuda_available(why, sizeof why)) {
        printf("%s\n0 passed, 1 failed\n", why);
        return 1;
    }
    g4c_cuda_device_name(name, sizeof name);
    printf("device: %s; fixtures: %s; prefill mode %s\n", name, fix,
           g4c_cuda_prefill_mode() == G4C_CUDA_PREFILL_SPLIT  ? "split"
           : g4c_cuda_prefill_mode() == G4C_CUDA_PREFILL_BF16 ? "bf16"
                                                              : "auto");
    RUN(test_matmul);
    RUN(test_matmul_quant);
    RUN(test_moe_experts);
    RUN(test_argmax);
    RUN(test_topk);
    RUN(test_rms_norm);
    RUN(test_gelu_softcap);
    RUN(test_fused_q8);
    RUN(test_norm_rope);
    RUN(test_attention);
    RUN(test_router_topk);
    FIXTURE_RUN_TEXT_TESTS();
    RUN(test_image_block);
    RUN(test_vision);
    snprintf(qdir, sizeof qdir, "/tmp/g4c_cuda_q_XXXXXX");
    if (mkdtemp(qdir)) {
        RUN(test_gguf_q8_0);
        RUN(test_gguf_q4_0);
        RUN(test_gguf_q4_k_m);
        rmdir(qdir);
    }
    RUN(test_mlx_models);
    return TEST_REPORT();
}
