/* kernels: the math of one forward pass, as plain functions over f32 activations. Two implementations of every op:
 *   g4c_ref_*  (kernels/ref/)  scalar C, f64 accumulation, no threads: the oracle;
 *   g4c_*      (kernels/cpu/)  the fast CPU path the model calls, tested against the oracle (tests/unit/test_ops.c).
 * Arguments run outputs, inputs, then dimensions. Shapes are row-major, written [rows][cols].
 * Formulas: docs/gemma4-spec.md §2 (RMSNorm with the stored weight, tanh GELU, softcap), §3.4-3.5 (attention, RoPE). */
#ifndef G4C_KERNELS_OPS_H
#define G4C_KERNELS_OPS_H

#include <math.h>

#include "base/base.h"

/* A weight matrix as stored: [rows][cols] (PyTorch Linear [out][in]) of any dtype, any alignment.
 * Block types (Q4_0 ... Q6_K) hold each row as cols / block blocks. MLX affine matrices (dtype U32, spec §8.3) hold
 * each row as cols·bits/32 u32 words of codes packed LSB-first (one little-endian bit stream, so 3/5/6-bit codes
 * may straddle words), and w = scale · q + bias per group of `group`
 * columns, scales/biases [rows][cols / group] of scale_dtype. */
typedef struct {
    g4c_dtype dtype;
    const void *data;
    int64_t rows, cols;
    const void *scales, *biases; /* MLX affine only */
    g4c_dtype scale_dtype;
    int group, bits;
    /* Optional copy of the same matrix for the CPU integer kernels, 8 rows interleaved block by block
     * (kernels/cpu/repack.c; Q4_0, Q8_0, Q4_K, Q6_K with rows % 8 == 0), or NULL. `data` stays the ggml layout. */
    const void *x8;
} g4c_wmat;

/* Bytes of one stored row. */
static inline size_t g4c_wmat_row_bytes(const g4c_wmat *w) {
    return w->dtype == G4C_DTYPE_U32 ? (size_t)w->cols * (size_t)w->bits / 8 : g4c_dtype_bytes(w->dtype, w->cols);
}

/* Bytes per row of the 8-row interleaved copy (kernels/cpu/repack.c) of a block type dt: the stored row's, except
 * Q4_K whose scales and mins are kept unpacked to bytes (148 per 256 columns instead of 144). A group of 8 rows
 * takes 8 times this. */
static inline size_t g4c_x8_row_bytes(g4c_dtype dt, int64_t cols) {
    return dt == G4C_DTYPE_Q4_K ? (size_t)(cols / 256) * 148 : g4c_dtype_bytes(dt, cols);
}
static inline size_t g4c_wmat_x8_row_bytes(const g4c_wmat *w) { return g4c_x8_row_bytes(w->dtype, w->cols); }

/* Rows [r0, r0 + n) of w as a matrix of their own. */
static inline g4c_wmat g4c_wmat_rows(g4c_wmat w, int64_t r0, int64_t n) {
    g4c_wmat s = w;
    s.data = (const char *)w.data + (size_t)r0 * g4c_wmat_row_bytes(&w);
    if (w.dtype == G4C_DTYPE_U32) {
        const size_t per_row = (size_t)(w.cols / w.group) * g4c_dtype_infos[w.scale_dtype].size;
        s.scales = (const char *)w.scales + (size_t)r0 * per_row;
        s.biases = (const char *)w.biases + (size_t)r0 * per_row;
    }
    /* the interleaved copy has the same bytes per row, in groups of 8 rows */
    s.x8 = w.x8 && r0 % 8 == 0 && n % 8 == 0 ? (const char *)w.x8 + (size_t)r0 * g4c_wmat_x8_row_bytes(&w) : NULL;
    s.rows = n;
    return s;
}

/* Dequantize n elements (a multiple of the block size) of any block or plain type (kernels/ref/quants.c). */
void g4c_dequant(float *dst, const void *src, g4c_dtype t, int64_t n);
/* Row r of w as f32 [cols], for every storage kind (plain, block, MLX affine). */
void g4c_wmat_row_f32(const g4c_wmat *w, int64_t r, float *dst);

/* Attention over a KV cache for a chunk of queries.
 * k, v: [cap][n_kv_head][head_dim]; position p lives in slot p % cap (a ring for sliding layers).
 * Query t (position pos0 + t) attends to positions j with j <= pos0 + t and, when window > 0,
 * pos0 + t - j < window (spec §3.4). Scores are q·k (scale 1.0), softmax in f32/f64. */
typedef struct {
    const float *k, *v;
    int cap;
    int n_kv_head;
    int head_dim;
    int window;     /* 0 = unlimited (full attention) */
    const int *hi;  /* optional [n_tok]: the last position query t may see (>= its own; image blocks and the
                       vision encoder look ahead); NULL = causal. The window bounds only the past side. */
} g4c_kv_view;

/* ---- oracle --------------------------------------------------------------------------------------------- */
void g4c_ref_matmul(float *y, const float *x, const g4c_wmat *w, int n);  /* y[n][rows] = x[n][cols] · wᵀ */
void g4c_ref_rms_norm(float *y, const float *x, const float *w, int n_rows, int dim, float eps); /* w may be NULL */
void g4c_ref_gelu_mul(float *y, const float *gate, const float *up, int n); /* y = gelu_tanh(gate) * up */
void g4c_ref_rope(float *x, int n_heads, int head_dim, const float *cos, const float *sin); /* one token, [n_heads][head_dim], cos/sin [head_dim/2] */
void g4c_ref_softcap(float *x, int n, float cap);
void g4c_ref_attention(float *out, const float *q, const g4c_kv_view *kv, int n_tok, int pos0, int n_head);

/* ---- fast CPU path ---------------------------------------------------------------------------------------- */
/* ISA the fast path uses: 0 = portable C, 1 = AVX2 + FMA + F16C (x86-64) or NEON (aarch64), 2 = level 1 plus the
 * AVX-512 VNNI integer kernels (Q4_0 / Q8_0, bit-identical to level 1). A level the CPU lacks falls back to the best
 * below it; the default is the best the CPU has. g4c_cpu_isa() tells the level in use. Tests run each. */
void g4c_cpu_set_isa(int level);
int g4c_cpu_isa(void);
const char *g4c_cpu_isa_name(void); /* the level in use, in words ("AVX2 + FMA + F16C", ...) */
/* Weights not stored as aligned f32 are converted a block of rows at a time into the pool's per-thread scratch:
 * reserve g4c_matmul_scratch_bytes(widest cols) with g4c_pool_reserve first (the model does at load; a missing
 * reservation is a bug and asserts). */
size_t g4c_matmul_scratch_bytes(int64_t max_cols);
/* Bytes of w's 8-row interleaved copy (w->x8), or 0 when its type or shape has none. g4c_cpu_repack writes it to
 * dst (64-byte aligned, g4c_cpu_repack_bytes(w) long); the caller owns dst and sets w->x8 = dst. */
size_t g4c_cpu_repack_bytes(const g4c_wmat *w);
void g4c_cpu_repack(void *dst, const g4c_wmat *w);
void g4c_matmul(g4c_pool *pool, float *y, const float *x, const g4c_wmat *w, int n);
/* The machine's read rate in GB/s (best of reps): the pool's threads read `bytes` (far above the caches; 2 MiB
 * pages) sequentially in long stretches, as decode reads the weights. 0 when the buffer cannot be had. */
double g4c_read_bandwidth(g4c_pool *pool, size_t bytes, int reps);
/* The rate the machine keeps up, not its bursts: the same loops read `bytes` over and over, taking turns, for at
 * least `ms` milliseconds; the best loop's mean rate (its bytes over its time). *peak (or NULL): the fastest single
 * pass, what g4c_read_bandwidth reports. On a shared host the peak of short passes runs 10-25% above what the very
 * same loop sustains over seconds (bench/RESULTS.md, twelfth session): decode's floor is the sustained rate. */
double g4c_read_sustained(g4c_pool *pool, size_t bytes, double ms, double *peak);
/* Several products in one pass of the pool: mm[i].y[n][rows] = mm[i].x[n][cols] · mm[i].wᵀ, count <= 32. Inputs
 * given by the same pointer are quantized once (q/k/v, gate/up, a token's experts); every output is computed
 * exactly as g4c_matmul computes it. Decode runs ~300 products a token: one dispatch for several saves the
 * wake-ups and the ramp-up of each short weight stream. */
typedef struct {
    float *y;
    const float *x;
    const g4c_wmat *w;
} g4c_mm;
void g4c_matmul_many(g4c_pool *pool, const g4c_mm *mm, int count, int n);
/* Row-wise RMS norm, element-wise GELU(gate)·up and cap·tanh(x / cap); large calls are split over pool (NULL: this
 * thread only). */
void g4c_rms_norm(g4c_pool *pool, float *y, const float *x, const float *w, int n_rows, int dim, float eps);
void g4c_gelu_mul(g4c_pool *pool, float *y, const float *gate, const float *up, int n);
void g4c_softcap(g4c_pool *pool, float *x, int n, float cap);
void g4c_rope(float *x, int n_heads, int head_dim, const float *cos, const float *sin);
/* out, q: [n_tok][n_head][head_dim]. scratch: per-thread score buffers, n_threads * (max position + 1) floats. */
void g4c_attention(g4c_pool *pool, float *out, const float *q, const g4c_kv_view *kv, int n_tok, int pos0,
                   int n_head, float *scratch, int scratch_per_thread);

static inline float g4c_gelu_tanh(float x) {
    /* 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) — HF gelu_pytorch_tanh, spec §2 */
    const float k0 = 0.7978845608028654f, k1 = 0.044715f;
    return 0.5f * x * (1.0f + tanhf(k0 * (x + k1 * x * x * x)));
}

/* ---- quantization (kernels/ref/quants.c) --------------------------------------------------------------------- */
/* f32 -> n elements (a multiple of t's block) of any block type, as valid ggml blocks (the layouts g4c_dequant
 * reads); plain types are converted (F16/BF16 round to nearest even). Not U32 (MLX codes). */
void g4c_quantize(void *dst, const float *src, g4c_dtype t, int64_t n);

#endif
