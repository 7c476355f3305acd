/* CUDA backend internals shared by the .cu files: error macros, device matrices, the matmul context and the
 * kernel launchers of each op family (gemv.cu, matmul.cu, elementwise.cu, rope.cu, attention.cu, moe.cu). Every
 * launcher queues work on the given stream and returns cudaGetLastError() (or a g4c_status). */
#ifndef G4C_KERNELS_CUDA_INT_CUH
#define G4C_KERNELS_CUDA_INT_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

/* base.h is C11: give C++ its _Noreturn */
#ifndef _Noreturn
#define _Noreturn [[noreturn]]
#endif
extern "C" {
#include "model/model.h"
}
#include "kernels/cuda/cuda_backend.h"

#define G4C_CU(call)                                                                                        \
    do {                                                                                                    \
        cudaError_t e_ = (call);                                                                            \
        if (e_ != cudaSuccess)                                                                              \
            return G4C_FAIL(err, e_ == cudaErrorMemoryAllocation ? G4C_E_NOMEM : G4C_E_IO, "CUDA: %s (%s)", \
                            cudaGetErrorString(e_), #call);                                                 \
    } while (0)
#define G4C_BLAS(call)                                                                                       \
    do {                                                                                                     \
        cublasStatus_t b_ = (call);                                                                          \
        if (b_ != CUBLAS_STATUS_SUCCESS)                                                                     \
            return G4C_FAIL(err, G4C_E_IO, "cuBLAS: %s (%s)", cublasGetStatusString(b_), #call);             \
    } while (0)
#define G4C_CHECK_LAUNCH() G4C_CU(cudaGetLastError())

/* A weight matrix on the device: [rows][ld] row-major, ld a multiple of 8 elements (16-byte aligned rows, zero
 * padded), f32 or bf16. Expert-stacked matrices hold n_expert blocks of `rows` rows each.
 * Quantized (CU_Q*, quant.cu): ggml blocks repacked per block into separate arrays so that every quant load is 16
 * bytes and aligned: p = the quant bytes [total rows][nb][QB], m = per-block metadata [..][nb][MB], h = high bits
 * [..][nb][HB] (Q5_K, Q6_K), s = f16 super-block scale [..][nb] (Q6_K); nb = blocks per row, ld = cols:
 *   Q4_0: QB 16 (nibbles as ggml), MB 2 (f16 d)          Q8_0: QB 32, MB 2
 *   Q4_K: QB 128, MB 16 (d, dmin, 12 scale bytes)        Q5_K: Q4_K + HB 32 (qh)
 *   Q6_K: QB 128 (ql), HB 64 (qh), MB 16 (int8 scales), s (f16 d)
 *   Q5_0: QB 16 (low nibbles as ggml), MB 2 (f16 d), HB 4 (qh, the 32 fifth bits)
 * MLX affine (spec §8.3; w = scale·q + bias per group of `group` columns, group 32, 64 or 128): blocks of 32
 * elements, the group's scale and bias as two f32 (exact) in m [..][cols / group][2], so MB = 256 / group per block:
 *   MLX4: QB 16, byte j = code j | code 16 + j << 4 (the Q4_0 nibble order, repacked from MLX's LSB-first words)
 *   MLX8: QB 32, byte j = code j ^ 0x80 (signed, for dp4a; the kernels add 128 back) */
enum { CU_F32 = 0, CU_BF16 = 1, CU_Q4_0 = 2, CU_Q8_0 = 3, CU_Q4_K = 4, CU_Q5_K = 5, CU_Q6_K = 6, CU_Q5_0 = 7,
       CU_MLX4 = 8, CU_MLX8 = 9 };
typedef struct {
    int dt;
    void *p;
    int rows, cols, ld;
    void *m, *h, *s; /* quantized only */
    int nb;
    int group; /* MLX only: columns per scale/bias group */
} cu_mat;

static inline cu_mat cu_dense(int dt, void *p, int rows, int cols, int ld) {
    cu_mat m = {};
    m.dt = dt, m.p = p, m.rows = rows, m.cols = cols, m.ld = ld;
    return m;
}
static inline size_t cu_mat_elsize(const cu_mat *m) { return m->dt == CU_F32 ? 4 : 2; }
static inline int cu_round8(int n) { return (n + 7) & ~7; }
static inline int cu_is_quant(const cu_mat *m) { return m->dt >= CU_Q4_0; }
/* Per-block bytes of a quantized type: quants, metadata, high bits, f16 scale; elements per block. MLX types: the
 * metadata bytes per block of 32 for the given group size. */
typedef struct {
    int qb, mb, hb, sb, block;
} cu_qlayout;
static inline cu_qlayout cu_q_layout(int dt, int group = 64) {
    switch (dt) {
    case CU_Q5_0: return {16, 2, 4, 0, 32};
    case CU_MLX4: return {16, 256 / group, 0, 0, 32};
    case CU_MLX8: return {32, 256 / group, 0, 0, 32};
    case CU_Q4_0: return {16, 2, 0, 0, 32};
    case CU_Q8_0: return {32, 2, 0, 0, 32};
    case CU_Q4_K: return {128, 16, 0, 0, 256};
    case CU_Q5_K: return {128, 16, 32, 0, 256};
    case CU_Q6_K: return {128, 16, 64, 2, 256};
    default: return {0, 0, 0, 0, 1};
    }
}
/* Rows [r0, r0 + rows) of w as a matrix of their own (an expert's block), any dtype. */
static inline cu_mat cu_mat_rows(const cu_mat *w, long r0, int rows) {
    cu_mat v = *w;
    v.rows = rows;
    if (!cu_is_quant(w)) {
        v.p = (char *)w->p + (size_t)r0 * w->ld * cu_mat_elsize(w);
        return v;
    }
    const cu_qlayout L = cu_q_layout(w->dt, w->group);
    const size_t b0 = (size_t)r0 * w->nb;
    v.p = (char *)w->p + b0 * L.qb;
    v.m = (char *)w->m + b0 * L.mb;
    if (w->h) v.h = (char *)w->h + b0 * L.hb;
    if (w->s) v.s = (char *)w->s + b0 * L.sb;
    return v;
}

/* What the matmul dispatcher needs: stream, cuBLAS handle and the scratch of the bf16 prefill path. */
typedef struct {
    cudaStream_t stream;
    cublasHandle_t blas;
    __nv_bfloat16 *xb;  /* [2 * max_n][max_cols8] activations split to bf16 hi/lo */
    size_t xb_elems;
    float *ysc;         /* [2 * max_n][rows] both halves' products, summed afterwards */
    size_t ysc_elems;
    int force;          /* G4C_CUDA_MM_* (tests) */
    int8_t *xq;         /* quantized weights, decode: activations as int8 [CU_QX_ROWS][max_cols32] ... */
    float2 *dx;         /* ... per 32: f32 scale, the two 16-element code sums as int16 ([CU_QX_ROWS][max_cols32 / 32]) */
    int qx_cols;        /* max_cols rounded up to 32 */
    __nv_bfloat16 *wt;  /* quantized weights, prefill: a tile of rows dequantized to bf16 (allocated on first use) */
    size_t wt_elems;
} cu_mm;

/* ---- launch helpers (cuda_int.cuh) ----
 * Programmatic dependent launch (sm_90+): a kernel launched through cu_launch may start while the previous kernel
 * of the stream still runs; it must call cu_pdl_wait() before it reads anything an earlier kernel wrote (or writes
 * anything an earlier kernel reads), and calls cu_pdl_launch() to let the next kernel start early. Work that reads
 * only the weights (the decode GEMVs' first loads) goes before the wait. Both are no-ops for a normal launch.
 * Whether cu_launch asks for it: the forward pass decides per session (cu_pdl_set around its launches, see
 * forward.cu); elsewhere (tests, benchmarks) on unless env G4C_CUDA_PDL=0. */
__device__ __forceinline__ void cu_pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void cu_pdl_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}
int cu_pdl_enabled(void);
/* This thread's launches: 1 with, 0 without programmatic dependent launch, -1 back to the default. */
void cu_pdl_set(int on);
/* Env switch name: -1 unset, 0 when "0", else 1. */
int cu_env_switch(const char *name);
template <typename... KArgs, typename... Args>
static inline cudaError_t cu_launch(void (*k)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t st,
                                    Args... args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid, cfg.blockDim = block, cfg.dynamicSmemBytes = smem, cfg.stream = st;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at, cfg.numAttrs = cu_pdl_enabled() ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, k, static_cast<KArgs>(args)...);
}

/* Int8 activations written by the kernel that produces them (decode): row r of xq [..][cols] and dx [..][cols/32],
 * cols = the producer's row length, as cu_quantize_act writes them. NULL xq: none. */
typedef struct {
    int8_t *xq;
    float2 *dx;
} cu_q8;
/* Element i of a row (v its f32 value, exactly as stored) into q's row: called by the 32 lanes of a warp at once with
 * i = 32·b + lane (one quantization block), the CPU's g4c_quantize_q8 formula (cu_quantize_act's, bit for bit). */
__device__ __forceinline__ void cu_quant32(const cu_q8 &q, long row, int cols, int i, float v) {
    const int lane = threadIdx.x & 31;
    float amax = fabsf(v);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float d = amax / 127.f, id = d > 0.f ? 1.0f / d : 0.f;
    const int c = (int)rintf(__fmul_rn(v, id));
    q.xq[row * cols + i] = (int8_t)c;
    int s = c;
#pragma unroll
    for (int o = 8; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o); /* sums within each half of 16 */
    const int s_hi = __shfl_sync(0xffffffffu, s, 16);
    if (lane == 0) q.dx[row * (cols >> 5) + (i >> 5)] = make_float2(d, __int_as_float((s_hi << 16) | (s & 0xffff)));
}

/* Rows of quantized activations the decode scratch holds (CU_GEMV_MAX_TOK tokens x up to 8 MoE slots). */
#define CU_QX_ROWS 64

/* Token count up to which matrix products use the GEMV kernel (weights read once for all tokens). */
#define CU_GEMV_MAX_TOK 8

/* ---- gemv.cu ---- */
/* y[t][r] = Σ_c w[r][c]·x[t][c] for t < n (n <= CU_GEMV_MAX_TOK); x rows at stride xs, y rows at stride ys. */
cudaError_t cu_gemv(cudaStream_t st, float *y, long ys, const float *x, long xs, const cu_mat *w, int n);
/* MoE: for token t and slot k (n_slot slots), expert e = sel[t·n_slot + k]: y[t][k] = W_e · x[t][k], W_e the rows
 * [e·w->rows, (e+1)·w->rows) of w. x of (t, k) at x + t·xs + k·xks (xks 0: one input per token). */
cudaError_t cu_gemv_sel(cudaStream_t st, float *y, long ys, long yks, const float *x, long xs, long xks,
                        const cu_mat *w, const int *sel, int n, int n_slot);

/* ---- quant.cu ---- */
/* x rows (t, k) at x + t·xs + k·xks (n_slot slots per token; n_slot 1 and xks 0: one row per token) -> row
 * t·n_slot + k of xq [..][cols] (int8) and dx [..][cols/32]: per 32 elements d = max|x| / 127, q = rint(x·(1/d))
 * (the CPU's g4c_quantize_q8, bit for bit), dx = {d, the two 16-code sums as int16 in the bits}. cols % 32 == 0. */
cudaError_t cu_quantize_act(cudaStream_t st, int8_t *xq, float2 *dx, const float *x, long xs, long xks, int n,
                            int n_slot, int cols);
/* y[t][r] = Σ_c w[r][c]·x̃[t][c], w quantized, x̃ the int8 activations of cu_quantize_act (n <= CU_GEMV_MAX_TOK).
 * With sel (MoE): blockIdx over t·n_slot + k, expert sel[t·n_slot + k]'s rows, activation row t·n_slot + k when
 * x_per_slot else t, y at y + t·ys + k·yks. */
cudaError_t cu_qgemv(cudaStream_t st, float *y, long ys, long yks, const int8_t *xq, const float2 *dx, int x_per_slot,
                     const cu_mat *w, int n, const int *sel, int n_slot);
/* MoE prefill, expert-major over cu_moe_plan's work tiles (max_tiles: cu_moe_tiles_max): w holds the experts'
 * matrices of w.rows rows each (expert e's rows from e·w.rows); for each expert e and each pair p in
 * list[off[e] .. off[e + 1]): y[p][r] = Σ_c w_e[r][c]·x̃[p / x_div][c]. */
cudaError_t cu_qgemv_grouped(cudaStream_t st, float *y, long ys, const int8_t *xq, const float2 *dx, int x_div,
                             const cu_mat *w, const int *off, const int *list, const int *tiles, int max_tiles);
/* cu_qgemv_grouped's product on bf16 tensor cores from f32 activations x [..][xs] (weights rounded to bf16 as
 * cu_dequant_bf16 does, activations rounded to bf16, f32 accumulation), over cu_moe_plan's work tiles (max_tiles:
 * cu_moe_tiles_max): the fast prefill precision. w.cols % 8 == 0; xb: scratch of cu_moe_mma_scratch elements. */
cudaError_t cu_moe_mma(cudaStream_t st, float *y, long ys, const float *x, long xs, int x_div, const cu_mat *w,
                       const int *off, const int *list, const int *tiles, int max_tiles, __nv_bfloat16 *xb);
/* Rows [r0, r0 + m) of quantized w dequantized to bf16 [m][w.cols] (prefill tiles for cuBLAS). */
cudaError_t cu_dequant_bf16(cudaStream_t st, __nv_bfloat16 *out, const cu_mat *w, long r0, int m);
/* x[t] = row ids[t] of quantized e · scale. */
cudaError_t cu_embed_q(cudaStream_t st, float *x, const cu_mat *e, const int *ids, int n, float scale);
/* Random quantized blocks for benchmarks: quant bytes uniform, scales sized so weights are ~amp. */
cudaError_t cu_fill_random_q(cudaStream_t st, cu_mat *m, long total_rows, uint64_t seed, float amp);

/* ---- matmul.cu ---- */
/* y[n][w.rows] = x[n][w.cols] · wᵀ: GEMV kernel up to CU_GEMV_MAX_TOK tokens, cuBLAS above (f32: SGEMM-class
 * GemmEx; bf16: the prefill mode's split or rounded activations). */
g4c_status cu_matmul(cu_mm *mm, float *y, long ys, const float *x, long xs, const cu_mat *w, int n, g4c_err *err);
/* Decode products whose input a producer kernel already wrote as int8 activations (cu_q8, rows of w.cols): the
 * quantized GEMV alone (w quantized, n <= CU_GEMV_MAX_TOK). */
g4c_status cu_matmul_q8(cu_mm *mm, float *y, long ys, cu_q8 q, const cu_mat *w, int n, g4c_err *err);
/* The fast prefill precision for a product with weights w (docs/CUDA.md "Precision"): bf16 activations, attention
 * and MoE experts on bf16 tensor cores, images in bf16 — in the bf16 mode, or in auto when w is quantized (its own
 * error dwarfs bf16's) unless the quantized prefill runs the CPU's arithmetic (G4C_CUDA_QPREFILL=gemv). */
int cu_fast_prefill(const cu_mat *w);
/* MoE decode on int8 activations (cu_qgemv's sel form: row t·n_slot + k when x_per_slot, else t). */
g4c_status cu_matmul_sel_q8(cu_mm *mm, float *y, long ys, long yks, cu_q8 q, int x_per_slot, const cu_mat *w,
                            const int *sel, int n, int n_slot, g4c_err *err);
/* MoE decode (cu_gemv_sel's arguments): bf16/f32 through cu_gemv_sel, quantized through cu_qgemv. */
g4c_status cu_matmul_sel(cu_mm *mm, float *y, long ys, long yks, const float *x, long xs, long xks, const cu_mat *w,
                         const int *sel, int n, int n_slot, g4c_err *err);
g4c_status cu_mm_init(cu_mm *mm, int max_n, int max_cols, size_t max_out, g4c_err *err);
void cu_mm_free(cu_mm *mm);
/* Fill [rows][ld] with uniform [-amp, amp) values (pad columns zero), for random-weight benchmarks. */
cudaError_t cu_fill_random(cudaStream_t st, cu_mat *m, int total_rows, uint64_t seed, float amp);

/* ---- elementwise.cu ---- */
/* y = x·(mean(x²)+eps)^-½·w per row (w NULL = 1); y may be x. q: y as int8 activations too (dim % 32 == 0). */
cudaError_t cu_rms_norm(cudaStream_t st, float *y, long ys, const float *x, long xs, const float *w, int n_rows,
                        int dim, float eps, cu_q8 q = {});
/* res = (res + rmsnorm(a)·w) · scale per row; then, when y2 != NULL, y2 = rmsnorm(res)·w2 (the next norm, fused). */
cudaError_t cu_rms_norm_add(cudaStream_t st, float *res, const float *a, const float *w, int n_rows, int dim,
                            float eps, float scale, float *y2, const float *w2);
/* The same with up to CU_NORM_OUTS norms of the updated row: out[k].y = rmsnorm(res)·out[k].w (y may be NULL when
 * only the int8 form is wanted), out[k].q its int8 activations; qres: the updated res itself as int8 activations.
 * Every int8 output needs dim % 32 == 0. */
#define CU_NORM_OUTS 3
typedef struct {
    float *y;
    const float *w;
    cu_q8 q;
} cu_norm_out;
cudaError_t cu_rms_norm_add_ex(cudaStream_t st, float *res, const float *a, const float *w, int n_rows, int dim,
                               float eps, float scale, cu_q8 qres, const cu_norm_out *out, int n_out);
/* y = rmsnorm(a)·wa + rmsnorm(b)·wb per row (the MoE layer's two branches). With moe_y (decode's gathered
 * experts, [n][n_slot][dim]): b[t] = Σ_k moe_wt[t][k]·moe_y[t][k] (summed in slot order) is formed here first and
 * written to b, instead of read. */
cudaError_t cu_rms_norm2_sum(cudaStream_t st, float *y, const float *a, const float *wa, float *b, const float *wb,
                             int n_rows, int dim, float eps, const float *moe_y = nullptr,
                             const float *moe_wt = nullptr, int n_slot = 0);
/* y[t][i] = gelu_tanh(g[t][i])·u[t][i], i < dim; q: y as int8 activations too (dim % 32 == 0). */
cudaError_t cu_gelu_mul(cudaStream_t st, float *y, long ys, const float *g, long gs, const float *u, long us,
                        int n_rows, int dim, cu_q8 q = {});
cudaError_t cu_softcap(cudaStream_t st, float *x, size_t n, float cap);
/* x[t] = row ids[t] of the embedding matrix · scale. */
cudaError_t cu_embed(cudaStream_t st, float *x, const cu_mat *e, const int *ids, int n, float scale);
/* PLE inputs (spec §3.2): ple[t][l] = (rmsnorm(ple[t][l]·proj_scale)·w + tok[t][l]·tok_scale)·mix, in place. */
cudaError_t cu_ple_prep(cudaStream_t st, float *ple, const float *tok, const float *w, int n_rows, int dim,
                        float eps, float proj_scale, float tok_scale, float mix);
/* MoE: dst[r] = src[idx[r]] (rows of dim). */
cudaError_t cu_gather_rows(cudaStream_t st, float *dst, const float *src, const int *idx, int m, int dim);
/* MoE: dst[idx[r]] += w[r]·src[r]. */
cudaError_t cu_scatter_add(cudaStream_t st, float *dst, const float *src, const int *idx, const float *w, int m,
                           int dim);

/* ---- rope.cu ---- (pos_dev: when not NULL, the positions start at pos0 + *pos_dev, read on the device, so that
 * a captured decode graph serves every position; the same in cu_attention) */
/* The attention inputs of one layer from the fused projection qkv [n][ldq] = q heads | k heads | v heads:
 * q: RMSNorm(q_norm) + RoPE -> qout [n][nq][hd]; when kc != NULL, k: RMSNorm(k_norm) + RoPE and v: RMSNorm
 * (no scale; from the k part when k_eq_v) are written to cache slot (pos0 + t) % cap of kc/vc [cap][nkv][hd]. */
cudaError_t cu_qkv_prep(cudaStream_t st, const float *qkv, long ldq, int n, int nq, int nkv, int hd, int k_eq_v,
                        const float *qw, const float *kw, float eps, const float *inv_freq, int pos0,
                        const int *pos_dev, float *qout, float *kc, float *vc, int cap);

/* ---- attention.cu ---- */
/* Attention of n query tokens (positions pos0..) over a device KV view (kernels/ops.h semantics: window, hi).
 * n_split 0: choose. part: scratch of cu_attention_part_floats floats. */
typedef struct {
    const float *k, *v;
    int cap, n_kv_head, head_dim, window;
    const int *hi; /* device [n] or NULL */
} cu_kv;
int cu_attention_splits(int n_tok, int n_head, int max_len);
/* Prefill kernel choice (benchmarks; env G4C_CUDA_ATTN=auto|query|t16|t8|t4): 0 auto, 1 per-query, 2/3/4 tiles. */
void cu_attention_set_variant(int v);
int cu_attention_variant(void);
size_t cu_attention_part_floats(int max_head_dim);
/* Once after allocating the scratch: zero the merge counters at its start (each launch leaves them zero again). */
cudaError_t cu_attention_part_init(float *part);
/* qo: the output rows [n][n_head·hd] as int8 activations too (the per-query decode kernel and its merge only). */
cudaError_t cu_attention(cudaStream_t st, float *out, const float *q, const cu_kv *kv, int n, int pos0,
                         const int *pos_dev, int n_head, int n_split, float *part, cu_q8 qo = {});
/* Prefill attention on bf16 tensor cores (Q, K, V, P rounded to bf16, f32 accumulation and softmax): the fast
 * prefill precision (G4C_CUDA_PREFILL=bf16, or auto with quantized weights); same semantics as cu_attention
 * without its decode options. cu_attention_tc_ok: the head dim has a kernel (32, 64, 128, 256, 512) and
 * G4C_CUDA_ATTN_TC is not 0. */
int cu_attention_tc_ok(int head_dim);
cudaError_t cu_attention_tc(cudaStream_t st, float *out, const float *q, const cu_kv *kv, int n, int pos0, int n_head);
/* Index of the largest of x[0..n) (the first on ties) -> *out (device), one block. */
cudaError_t cu_argmax(cudaStream_t st, int *out, const float *x, int n);
/* Sampling's top-k of x [n] (k <= CU_TOPK_MAX; NaN as -inf): the k best by (value desc, id asc) into out_v/out_i
 * (sorted), stats[0] = the largest value, stats[1] = Σ exp((x - largest) / *temp) (temp in device memory, so that a
 * captured graph serves every temperature). scratch: cu_topk_scratch_floats(n, k) floats. */
#define CU_TOPK_MAX 64
size_t cu_topk_scratch_floats(int n, int k);
cudaError_t cu_topk(cudaStream_t st, const float *x, int n, int k, const float *temp, float *scratch, float *out_v,
                    int *out_i, float *stats);

/* ---- moe.cu ---- */
/* Router probabilities (softmax of logits [n][E], in place), top-k (ties to the lower id) and renormalized weights
 * times per_expert_scale: sel/wt [n][k]. */
cudaError_t cu_router_topk(cudaStream_t st, float *logits, int n, int n_expert, int k, const float *per_expert_scale,
                           int *sel, float *wt);
/* MoE prefill: the n_pairs (token, slot) pairs of sel [n_pairs] grouped by expert: list [n_pairs] holds the pair
 * ids of expert e at off[e] .. off[e + 1] (off [n_expert + 1]); order within an expert unspecified. tiles [1 + 2 ·
 * cu_moe_tiles_max]: the count, then (expert, first list index) of each run of up to CU_MOE_TILE pairs of one
 * expert, so that a crowded expert spreads over several blocks. */
#define CU_MOE_TILE 32
static inline int cu_moe_tiles_max(int n_pairs, int n_expert) { return n_pairs / CU_MOE_TILE + n_expert; }
/* bf16 elements of cu_moe_mma's scratch xb (the work tiles' activation rows) */
static inline size_t cu_moe_mma_scratch(int max_tiles, int cols) { return (size_t)max_tiles * CU_MOE_TILE * cols; }
cudaError_t cu_moe_plan(cudaStream_t st, const int *sel, int n_pairs, int n_expert, int *off, int *list, int *tiles);

#endif
