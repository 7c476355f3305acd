/* Private to kernels/cpu: the ISA-specific kernels cpu.c dispatches to. */
#ifndef G4C_KERNELS_CPU_CPU_INT_H
#define G4C_KERNELS_CPU_CPU_INT_H

#include <string.h>

#include "kernels/ops.h"

enum { CPU_W_F32 = 0, CPU_W_BF16 = 1, CPU_W_F16 = 2 };

/* How far ahead (bytes) the decode kernels ask for each weight stream's bytes (software prefetch), and the read
 * probe's prefetching loops with them. The hardware prefetcher alone kept the AVX2 decode at ~80% of the read
 * bandwidth (bench_ops, 2 threads: 15.3 of 19.1 GB/s); 1.5-2 KB ahead reaches ~99%; 0 / 768 / 3072 / 6144 on the
 * GPU hosts' Xeon were no better (bench/RESULTS.md, eighth session).
 * G4C_PF_FAR: the x86 decode kernels also ask for the bytes 4 KB ahead into the L2 only (prefetcht2). A core's own
 * misses are bounded by its ~16 L1 fill buffers: ~1 KB in flight, ~11 GB/s per core on the 2-vCPU Xeon,
 * where requests into the L2 alone are tracked by its ~48-entry queue. There a plain read loop sustained 20-26
 * GB/s on both cores and one with L2 requests 4-8 KB ahead 24-27; one E2B token's products read 0.87 -> 0.94-0.96
 * of the probe (bench/RESULTS.md, eleventh session). */
enum { G4C_PF_AHEAD = 1536, G4C_PF_FAR = 4096 };

/* Element k of a weight row stored as CPU_W_* dt, at any alignment (weights in a mapped file need not be aligned):
 * the scalar column tails of the float tiles (avx2.c, avx512_rows.c, neon.c). bf16 and f16 widen exactly. */
static inline float g4c_cpu_w_at(const void *w, int dt, int64_t k) {
    if (dt == CPU_W_F32) {
        float f;
        memcpy(&f, (const char *)w + 4 * k, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, (const char *)w + 2 * k, 2);
    return dt == CPU_W_BF16 ? g4c_bf16_to_f32(h) : g4c_f16_to_f32(h);
}

/* 1 when this CPU runs the AVX2 + FMA + F16C kernels. */
int g4c_avx2_supported(void);
/* y[t * ldy + r] = dot(x[t * ldx ...], row r of w) for t < n_tok, r < n_rows; rows wstride bytes apart, stored
 * as CPU_W_* dt. */
void g4c_avx2_rows(float *y, int64_t ldy, const float *x, int64_t ldx, int n_tok, const void *w, size_t wstride,
                   int dt, int n_rows, int64_t cols);
float g4c_avx2_dot(const float *a, const float *b, int64_t n);
void g4c_avx2_axpy(float *out, float p, const float *v, int64_t n);

/* fn(args..., NT) with NT = nt (1..4; more runs 4) a compile-time constant after inlining, so a kernel's per-token
 * (or, in attention, per-head) accumulators stay in registers */
#define G4C_NT_DISPATCH(fn, nt, ...)                                                                                \
    switch (nt) {                                                                                                   \
    case 1: fn(__VA_ARGS__, 1); break;                                                                              \
    case 2: fn(__VA_ARGS__, 2); break;                                                                              \
    case 3: fn(__VA_ARGS__, 3); break;                                                                              \
    default: fn(__VA_ARGS__, 4); break;                                                                             \
    }

/* Activations quantized for integer dot products: per 32 values one f32 scale d and 32 int8 (x ≈ d·q), and
 * s = d·Σq (the block's sum, for weight formats with an offset: Q4_K's mins). */
typedef struct {
    float d, s;
    int8_t q[32];
} g4c_q8_block;

/* The same activations as the Q8_0 prefill kernel reads them (avx2_x8.c, group_q8_16x4): per block d, |q|, the
 * sign mask m of q (0 or -1 per byte) and k = Σ_{q<0} |q|. That kernel multiplies |q| (unsigned) by the weights with
 * their bits flipped where q < 0 (w ^ -1 = -w - 1, no sign instruction per row and token) and adds k back:
 * Σ |q|·(w ^ m) + k = Σ q·w, exactly. Built once per call (cpu.c), shared by all rows. */
typedef struct {
    float d;
    int32_t k;
    uint8_t a[32];
    int8_t m[32];
} g4c_q8s_block;
void g4c_avx2_q8_signs(g4c_q8s_block *dst, const g4c_q8_block *src, int64_t n_blocks);

/* What the Q6_K decode kernel (avx2_x8.c, dot_q6_half) subtracts for the codes' offset 32: per activation block and
 * each 8-column half h, the int16 pair (32·(q[8h] + q[8h+1] + q[8h+4] + q[8h+5]), 32·(q[8h+2] + q[8h+3] + q[8h+6] +
 * q[8h+7])) in one int32 (low, high): the columns of one row's even and odd int16 lanes. dst [4 · n_blocks]. */
void g4c_q6_offsets(int32_t *dst, const g4c_q8_block *src, int64_t n_blocks);
/* −128·Σq per activation block: what the VNNI Q8_0 kernel's products of w + 128 overcount (avx512_x8.c). */
void g4c_q8_bias_sums(int32_t *dst, const g4c_q8_block *src, int64_t n_blocks);
/* −32·Σq over columns 0..15 and 16..31 of each activation block (dst [2 · n_blocks]): what the VNNI Q6_K kernel's
 * products of the unsigned codes overcount (avx512_x8.c). */
void g4c_q6_sums(int32_t *dst, const g4c_q8_block *src, int64_t n_blocks);

/* x [cols] (cols a multiple of 32) -> cols / 32 blocks, round to nearest, d = max|x| / 127. */
void g4c_quantize_q8(g4c_q8_block *dst, const float *x, int64_t cols);
void g4c_avx2_quantize_q8(g4c_q8_block *dst, const float *x, int64_t cols);
/* y[t * ldy + r] for Q8_0 / Q4_0 / Q4_K / Q6_K weights against quantized activations xq [n_tok][cols / 32]. */
void g4c_avx2_rows_q8(float *y, int64_t ldy, const g4c_q8_block *xq, int n_tok, const void *w, size_t wstride,
                      g4c_dtype dt, int n_rows, int64_t cols);
/* The same for Q4_1 / Q5_0 / Q5_1 / Q5_K weights (avx2_q8x.c). */
void g4c_avx2_rows_q8x(float *y, int64_t ldy, const g4c_q8_block *xq, int n_tok, const void *w, size_t wstride,
                       g4c_dtype dt, int n_rows, int64_t cols);
/* Attention of gh (<= G4C_ATT_HEADS) query heads that share one KV head, over positions lo..hi (cpu.c:
 * g4c_attention). q, out: [gh][hd]; position p's key and value rows at k / v + (p % cap) · stride. Softmax online
 * over blocks of keys, so it needs no scratch; each head's arithmetic does not depend on gh. */
enum { G4C_ATT_HEADS = 8 };
void g4c_avx2_attend(float *out, const float *q, int gh, int hd, const float *k, const float *v, size_t stride,
                     int cap, int lo, int hi);
/* The same with 512-bit registers (avx512_att.c), at ISA level 2: other reduction order than AVX2, so not
 * bit-identical to it, but again independent of gh and of the key block's length (decode == prefill). */
void g4c_avx512_attend(float *out, const float *q, int gh, int hd, const float *k, const float *v, size_t stride,
                       int cap, int lo, int hi);
/* What both share (avx2.c): the walk over blocks of G4C_ATT_KB keys with the online softmax, calling heads for
 * ht (<= 4) heads of a block: phase 0 scores, s[h · G4C_ATT_KB + t] = q_h · k_t for t < nk (q: ht rows of hd);
 * phase 1 adds the weighted values, out_h += Σ_t s[h · G4C_ATT_KB + t] · v_t. */
enum { G4C_ATT_KB = 64 };
typedef void (*g4c_att_heads_fn)(float *out, float *s, const float *q, int hd, const float *const *kr,
                                 const float *const *vr, int nk, int ht, int phase);
void g4c_cpu_attend(g4c_att_heads_fn heads, float *out, const float *q, int gh, int hd, const float *k,
                    const float *v, size_t stride, int cap, int lo, int hi);
/* Phase 1's columns [c, hd) past the last full vector, one at a time, keys in order (both tile sets) */
static inline void g4c_att_pv_tail(float *out, int hd, const float *s, const float *const *vr, int nk, int c, int ht) {
    for (; c < hd; c++)
        for (int h = 0; h < ht; h++)
            for (int t = 0; t < nk; t++) out[(size_t)h * hd + c] += s[h * G4C_ATT_KB + t] * vr[t][c];
}
/* Vectorized tanh and GELU·up (avx2_math.c), within a few 1e-7 of libm; the softmax weights of one key block of
 * g4c_cpu_attend: p[t] = e^(p[t] − mx), 0 where p[t] − mx < G4C_SOFTMAX_FLOOR (no subnormals), returning their
 * sum. */
#define G4C_SOFTMAX_FLOOR (-80.0f)
float g4c_avx2_softmax_exp(float *p, int n, float mx);
void g4c_avx2_tanh(float *y, const float *x, int64_t n);
void g4c_avx2_gelu_mul(float *y, const float *gate, const float *up, int64_t n);
/* Q4_0 / Q8_0 / Q4_K / Q6_K weights in the 8-row interleaved layout (g4c_wmat.x8, repack.c; avx2_x8.c);
 * n_rows % 8 == 0. xs: xq as g4c_q8s_block, or NULL; Q8_0 runs its 16-row prefill kernel (n_tok >= 4) only with it.
 * xo: g4c_q6_offsets of xq, needed for Q6_K (else NULL). */
void g4c_avx2_rows_x8(float *y, int64_t ldy, const g4c_q8_block *xq, const g4c_q8s_block *xs, const int32_t *xo,
                      int n_tok, const void *x8, g4c_dtype dt, int n_rows, int64_t cols);

/* The same on CPUs with AVX-512 VNNI (avx512_x8.c, vpdpbusd on 512-bit registers): bit-identical outputs. cpu.c
 * takes it at ISA level 2 (g4c_cpu_set_isa) where g4c_avx512_vnni_supported(). xk: g4c_q8_bias_sums of xq for Q8_0,
 * g4c_q6_sums for Q6_K (else NULL). */
int g4c_avx512_vnni_supported(void);
/* g4c_avx2_rows with 512-bit registers (avx512_rows.c), taken at the same level for bf16 / f16 weights: f32
 * activations, each output one 16-lane accumulator (so not bit-identical to AVX2, but decode == prefill within the
 * level). */
void g4c_avx512_rows(float *y, int64_t ldy, const float *x, int64_t ldx, int n_tok, const void *w, size_t wstride,
                     int dt, int n_rows, int64_t cols);
void g4c_avx512_rows_x8(float *y, int64_t ldy, const g4c_q8_block *xq, const int32_t *xk, int n_tok, const void *x8,
                        g4c_dtype dt, int n_rows, int64_t cols);

/* aarch64 (neon.c): the same contracts. NEON itself is part of ARMv8-A; the integer kernels use the dot-product
 * instructions (SDOT) when getauxval(AT_HWCAP) reports them, else widening multiplies. Weight types: all eight
 * ggml block types. */
int g4c_neon_supported(void);
int g4c_neon_has_dotprod(void);
void g4c_neon_rows(float *y, int64_t ldy, const float *x, int64_t ldx, int n_tok, const void *w, size_t wstride,
                   int dt, int n_rows, int64_t cols);
float g4c_neon_dot(const float *a, const float *b, int64_t n);
void g4c_neon_axpy(float *out, float p, const float *v, int64_t n);
void g4c_neon_quantize_q8(g4c_q8_block *dst, const float *x, int64_t cols);
void g4c_neon_rows_q8(float *y, int64_t ldy, const g4c_q8_block *xq, int n_tok, const void *w, size_t wstride,
                      g4c_dtype dt, int n_rows, int64_t cols);

typedef void (*g4c_rows_q8_fn)(float *y, int64_t ldy, const g4c_q8_block *xq, int n_tok, const void *w,
                               size_t wstride, g4c_dtype dt, int n_rows, int64_t cols);

/* The SIMD path cpu.c dispatches to (g4c_cpu_set_isa level 1): AVX2 (avx2*.c) on x86-64, NEON (neon.c) on aarch64. */
#if defined(__aarch64__)
#define g4c_simd_supported g4c_neon_supported
#define g4c_simd_rows g4c_neon_rows
#define g4c_simd_dot g4c_neon_dot
#define g4c_simd_axpy g4c_neon_axpy
#define g4c_simd_quantize_q8 g4c_neon_quantize_q8
#else
#define g4c_simd_supported g4c_avx2_supported
#define g4c_simd_rows g4c_avx2_rows
#define g4c_simd_dot g4c_avx2_dot
#define g4c_simd_axpy g4c_avx2_axpy
#define g4c_simd_quantize_q8 g4c_avx2_quantize_q8
#endif

/* The SIMD path's integer kernel for weights of type dt against g4c_q8_block activations, or NULL (then the weights
 * are dequantized to f32). Weight rows hold whole blocks (cols a multiple of dt's block). */
static inline g4c_rows_q8_fn g4c_simd_rows_q8_for(g4c_dtype dt) {
    switch (dt) {
#if defined(__aarch64__)
    case G4C_DTYPE_Q8_0: case G4C_DTYPE_Q4_0: case G4C_DTYPE_Q4_1: case G4C_DTYPE_Q5_0:
    case G4C_DTYPE_Q5_1: case G4C_DTYPE_Q4_K: case G4C_DTYPE_Q5_K: case G4C_DTYPE_Q6_K: return g4c_neon_rows_q8;
#else
    case G4C_DTYPE_Q8_0: case G4C_DTYPE_Q4_0: case G4C_DTYPE_Q4_K: case G4C_DTYPE_Q6_K: return g4c_avx2_rows_q8;
    case G4C_DTYPE_Q4_1: case G4C_DTYPE_Q5_0: case G4C_DTYPE_Q5_1: case G4C_DTYPE_Q5_K: return g4c_avx2_rows_q8x;
#endif
    default: return NULL;
    }
}

#endif
