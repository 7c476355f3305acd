/* CUDA backend (issue 9, docs/CUDA.md): the text decoder on one NVIDIA GPU. A plain C interface: no CUDA type
 * appears here, so runtime/ and the tests compile as C11 without nvcc. Built only with -DGEMMA4C_CUDA=ON (which
 * also defines G4C_HAVE_CUDA for the code that calls it).
 *
 * Model: the decoder's weights, uploaded once (f32 matrices stay f32, every other dtype becomes bf16; q/k/v and
 * gate/up are concatenated so one matrix product serves each), the small vectors as f32. The per-layer embedding
 * table of the E models (embed_tokens_per_layer, several GB) stays in host memory: the rows of a chunk's tokens
 * are gathered there and uploaded.
 * Text state: one sequence's KV cache (f32, sliding layers as rings like model/kv_cache.c) and activation buffers,
 * a CUDA stream and a cuBLAS handle. g4c_cuda_text_forward is g4c_text_forward on the device.
 *
 * Errors: device failures come back as G4C_E_IO with the CUDA/cuBLAS message, allocations as G4C_E_NOMEM, a
 * missing device as G4C_E_UNSUPPORTED. */
#ifndef G4C_KERNELS_CUDA_BACKEND_H
#define G4C_KERNELS_CUDA_BACKEND_H

#include "model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct g4c_cuda_model g4c_cuda_model;
typedef struct g4c_cuda_text g4c_cuda_text;

/* 1 when a CUDA device can be used; otherwise 0 and the reason in why (may be NULL). */
int g4c_cuda_available(char *why, size_t size);
/* "NVIDIA H100 80GB HBM3, 132 SMs, 79.1 GiB, cc 9.0" into buf. */
void g4c_cuda_device_name(char *buf, size_t size);

/* Upload the decoder of (c, w). Both must outlive the result (the PLE table is read from w at every forward).
 * A matrix whose data is NULL is filled with uniform random values of amplitude 0.02 on the device, a NULL vector
 * with ones: benchmarks at real shapes without a checkpoint (bench/bench_cuda.c --random). */
g4c_status g4c_cuda_model_upload(g4c_cuda_model **out, const g4c_config *c, const g4c_weights *w, g4c_err *err);
void g4c_cuda_model_free(g4c_cuda_model *m);
/* Device bytes of the uploaded weights; *per_token (may be NULL): weight bytes one decoded token reads (every
 * matrix once, MoE experts scaled by n_expert_used / n_expert, the head, no KV cache). */
size_t g4c_cuda_model_bytes(const g4c_cuda_model *m, size_t *per_token);

g4c_status g4c_cuda_text_init(g4c_cuda_text **out, g4c_cuda_model *m, int n_ctx, int n_ubatch, g4c_err *err);
void g4c_cuda_text_free(g4c_cuda_text *s);
/* How many tokens the session may rewind (truncate) without losing sliding-window keys; INT_MAX when no ring. */
int g4c_cuda_text_rewind_limit(const g4c_cuda_text *s);
/* g4c_text_forward on the device: n (<= n_ubatch) tokens at positions n_past.., their K/V appended to the cache.
 * mm_embd [n_placeholders][n_embd] replaces the image/video placeholder rows (host memory, may be NULL).
 * bidir_off: ignore use_bidirectional_attention (g4c_text_state.bidir_off). Logits as g4c_text_forward (host
 * memory; NULL = none). Returns when the logits are in host memory (or the work is queued, when logits is NULL). */
g4c_status g4c_cuda_text_forward(g4c_cuda_text *s, const int32_t *tokens, const float *mm_embd, int n, int n_past,
                                 int bidir_off, float *logits, int all_logits, g4c_err *err);
/* g4c_cuda_text_forward of the chunk's last token with greedy sampling on the device: *next = argmax of its logits
 * (the first index on ties), the only value that comes down; logits (may be NULL) also receives them. */
g4c_status g4c_cuda_text_forward_greedy(g4c_cuda_text *s, const int32_t *tokens, const float *mm_embd, int n,
                                        int n_past, int bidir_off, int32_t *next, float *logits, g4c_err *err);
/* One decode step (token at n_past) with top-k selection on the device: the k best of its softcapped logits (by
 * value, ties to the lower id; k <= 64) into logit/id (sorted), stats[0] the largest logit, stats[1] the sum over the
 * vocabulary of exp((logit - largest) / temperature): all that g4c_sampler_sample_topk needs, and all that comes down. */
/* 1 when the device takes top-k sampling for this vocabulary size and k (k <= 64, vocab <= ~512k at k = 64). */
int g4c_cuda_topk_supported(int n_vocab, int k);
g4c_status g4c_cuda_text_forward_topk(g4c_cuda_text *s, int32_t token, int n_past, int bidir_off, int k,
                                      float temperature, float *logit, int32_t *id, float *stats, g4c_err *err);
/* g4c_vision_encode on the device (same contract and checks; soft tokens into host memory). The first call uploads
 * the vision tower's weights w into m (kept until g4c_cuda_model_free; m's config must be the one w was bound for).
 * Prefill mode split: f32 attention GEMMs; bf16: bf16 activations and a fused bf16 attention kernel. */
g4c_status g4c_cuda_vision_encode(g4c_cuda_model *m, const g4c_vision_w *w, const float *patches, const int32_t *pos,
                                  int n, float *out, g4c_err *err);
/* 0 when env G4C_CUDA_VISION is "0" (images stay on the CPU although the model has a CUDA session), else 1;
 * read at every call. */
int g4c_cuda_vision_enabled(void);

/* Wait for the session's queued work. */
g4c_status g4c_cuda_text_sync(g4c_cuda_text *s, g4c_err *err);

/* Prefill matrix products with bf16 weights (n > 8 tokens, cuBLAS):
 *   G4C_CUDA_PREFILL_SPLIT: activations as hi + lo bf16 pair, one GEMM over both (about 16 mantissa bits: rel.
 *     error ~1e-5 per product, within the 1e-3 logits bar on the fixtures);
 *   G4C_CUDA_PREFILL_BF16: activations rounded to bf16 (half the FLOPs; 1e-1 logits error on the random fixtures);
 *     the vision tower's fast path (flash attention, bf16 activations);
 *   G4C_CUDA_PREFILL_AUTO (default): split for f32/bf16/f16 weights, bf16 for the dequantized tiles of quantized
 *     weights (their own error — 4-8 bit codes, bf16 tiles — dwarfs bf16 activation rounding, and the CPU path
 *     itself multiplies them by int8 activations); the vision tower as split.
 * Process-wide; also read once from the environment variable G4C_CUDA_PREFILL=split|bf16|auto. */
enum { G4C_CUDA_PREFILL_SPLIT = 0, G4C_CUDA_PREFILL_BF16 = 1, G4C_CUDA_PREFILL_AUTO = 2 };
void g4c_cuda_set_prefill_mode(int mode);
int g4c_cuda_prefill_mode(void);

/* Quantized weights (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K) stay quantized on the device (default, on) or are expanded to
 * bf16 at upload (off). Process-wide, read at upload; also env G4C_CUDA_QUANT=0|1. */
void g4c_cuda_set_quant(int on);
int g4c_cuda_quant_enabled(void);
/* Prefill (> 8 tokens) with quantized weights: TILES (default) dequantizes tiles of rows to bf16 for cuBLAS (the
 * split/bf16 prefill mode applies to the activations); GEMV runs the decode kernel 8 tokens at a time on int8
 * activations, the CPU's arithmetic exactly (the conformance tests' reference; slow for long prompts).
 * Process-wide; also env G4C_CUDA_QPREFILL=tiles|gemv. */
enum { G4C_CUDA_QPREFILL_TILES = 0, G4C_CUDA_QPREFILL_GEMV = 1 };
void g4c_cuda_set_qprefill(int mode);
int g4c_cuda_qprefill(void);

/* Prefill attention kernel (process-wide; also env G4C_CUDA_ATTN=auto|query|t16|t8|t4): AUTO picks the query tile by
 * the grid size; QUERY is the one-query-per-block kernel; T16/T8/T4 force a tile of 16/8/4 queries. */
enum { G4C_CUDA_ATTN_AUTO = 0, G4C_CUDA_ATTN_QUERY = 1, G4C_CUDA_ATTN_T16 = 2, G4C_CUDA_ATTN_T8 = 3, G4C_CUDA_ATTN_T4 = 4,
       G4C_CUDA_ATTN_TC = 5 /* g4c_cuda_op_attention of several tokens: the bf16 tensor-core prefill kernel */ };
void g4c_cuda_set_attention_variant(int variant);

/* ---- single ops on host arrays, for tests/cuda/test_cuda.c (each call uploads, runs, downloads) ---- */
enum { G4C_CUDA_MM_AUTO = 0, G4C_CUDA_MM_GEMV = 1, G4C_CUDA_MM_GEMM = 2 };
/* y[n][rows] = x[n][cols] · wᵀ; w as g4c_cuda_model_upload stores it (f32 stays f32, Q4_0/Q8_0/Q4_K/Q5_K/Q6_K
 * quantized (activations to int8 for GEMV, bf16 tiles for GEMM), other dtypes -> bf16). */
g4c_status g4c_cuda_op_matmul(float *y, const float *x, const g4c_wmat *w, int n, int path, g4c_err *err);
g4c_status g4c_cuda_op_rms_norm(float *y, const float *x, const float *w, int n_rows, int dim, float eps,
                                g4c_err *err);
g4c_status g4c_cuda_op_gelu_mul(float *y, const float *gate, const float *up, int n, g4c_err *err);
g4c_status g4c_cuda_op_softcap(float *x, int n, float cap, g4c_err *err);
/* In place on x [n_tok][n_heads][head_dim]: RMSNorm per head (w may be NULL) then RoPE at positions pos0.. with
 * inv_freq [head_dim/2] (model/kv_cache.c's tables: default or proportional). */
g4c_status g4c_cuda_op_norm_rope(float *x, const float *w, int n_tok, int n_heads, int head_dim, float eps,
                                 const float *inv_freq, int pos0, g4c_err *err);
/* MoE prefill's expert-major product: w stacks n_expert matrices of w->rows / n_expert rows; pair p (sel[p] its
 * expert) gets y[p][r] = Σ_c w_sel[p][r][c]·x[p / x_div][c]. path 1: int8 activations (cu_qgemv_grouped), 2: bf16
 * tensor cores (cu_moe_mma). Quantized w only. */
g4c_status g4c_cuda_op_moe_experts(float *y, const float *x, const g4c_wmat *w, int n_expert, const int *sel,
                                   int n_pairs, int x_div, int path, g4c_err *err);
/* Sampling's top-k on the device (k <= 64): the k best of x [n] by (value desc, id asc; NaN as -inf) into vals/ids
 * (sorted), stats[0] the largest, stats[1] the sum of exp((x - largest) / temp). */
g4c_status g4c_cuda_op_topk(float *vals, int *ids, float *stats, const float *x, int n, int k, float temp,
                            g4c_err *err);
/* g4c_attention on the device; n_split 0 = the forward pass's choice, else that many key splits. */
g4c_status g4c_cuda_op_attention(float *out, const float *q, const g4c_kv_view *kv, int n_tok, int pos0, int n_head,
                                 int n_split, g4c_err *err);

/* Decode's fused int8 activations (the kernel that produces a product's input writes them, docs/CUDA.md): host
 * arrays of an op's output rows of cols elements: codes [rows][cols], per 32 elements the scale d and the two
 * 16-code sums ([rows][cols/32][2]). The ops below return the f32 output and its int8 form (NULL: not asked). */
typedef struct {
    int8_t *q;
    float *d;
    int *sum;
} g4c_cuda_q8;
g4c_status g4c_cuda_op_rms_norm_q8(float *y, g4c_cuda_q8 *q, const float *x, const float *w, int n_rows, int dim,
                                   float eps, g4c_err *err);
/* res = (res + rmsnorm(a)·w)·scale in place, then y[k] = rmsnorm(res)·w_out[k] for k < n_out (y [n_out][n_rows][dim],
 * w_out [n_out][dim]); qres: res as int8, qy[k] (qy may be NULL, or an entry's q NULL): y[k] as int8. */
g4c_status g4c_cuda_op_norm_add_q8(float *res, float *y, g4c_cuda_q8 *qres, g4c_cuda_q8 *qy, const float *a,
                                   const float *w, const float *w_out, int n_out, int n_rows, int dim, float eps,
                                   float scale, g4c_err *err);
g4c_status g4c_cuda_op_gelu_mul_q8(float *y, g4c_cuda_q8 *q, const float *gate, const float *up, int n_rows, int dim,
                                   g4c_err *err);
/* g4c_cuda_op_attention with the int8 form of the output rows [n_tok][n_head·head_dim]. */
g4c_status g4c_cuda_op_attention_q8(float *out, g4c_cuda_q8 *q8, const float *q, const g4c_kv_view *kv, int n_tok,
                                    int pos0, int n_head, int n_split, g4c_err *err);
/* MoE decode's last norm: b[t] = Σ_k wt[t][k]·ey[t][k] (ey [n_rows][n_slot][dim]), y = rmsnorm(a)·wa + rmsnorm(b)·wb. */
g4c_status g4c_cuda_op_moe_norm2(float *y, float *b, const float *a, const float *wa, const float *ey, const float *wt,
                                 int n_slot, const float *wb, int n_rows, int dim, float eps, g4c_err *err);

/* Greedy sampling on the device: *out = the index of the largest x (the first on ties). */
g4c_status g4c_cuda_op_argmax(int *out, const float *x, int n, g4c_err *err);
/* MoE routing of n tokens: logits [n][n_expert] -> sel, wt [n][k] (model/text.c moe()'s top-k and weights). */
g4c_status g4c_cuda_op_router_topk(int *sel, float *wt, const float *logits, int n, int n_expert, int k,
                                   const float *per_expert_scale, g4c_err *err);
/* The vision tower's attention (spec §4.3: bidirectional, scale 1) of q/k/v [n][n_head][head_dim] as the encoder
 * runs it in prefill mode `mode` (G4C_CUDA_PREFILL_*): split = f32 cuBLAS; bf16 = the fused bf16 kernel. */
g4c_status g4c_cuda_op_vision_attention(float *out, const float *q, const float *k, const float *v, int n, int n_head,
                                        int head_dim, int mode, g4c_err *err);

/* ---- measurements for bench/bench_cuda.c ---- */
/* Device-to-device copy of `bytes`: GB/s counting bytes read plus written (median of reps). */
double g4c_cuda_copy_bandwidth(size_t bytes, int reps);
/* Median microseconds of one attention launch over random device data: n queries at positions pos0.., n_head
 * query heads over n_kv_head, head_dim, a cache of cap slots, window (0 = full). */
double g4c_cuda_attention_time(int n, int pos0, int n_head, int n_kv_head, int head_dim, int cap, int window, int reps);
/* Start (on = 1) or stop the profiler's capture (cudaProfilerStart/Stop: ncu --profile-from-start off). */
void g4c_cuda_profiler(int on);
/* bf16 GEMM m=n=k=size through cuBLAS (f32 accumulate): TFLOP/s (median of reps). */
double g4c_cuda_gemm_rate(int size, int reps);
/* A bf16 matrix [rows][cols] times n f32 vectors: median microseconds of the custom GEMV kernel (*us_gemv) and of
 * cublasGemmEx on bf16 copies of the vectors (*us_cublas). */
g4c_status g4c_cuda_gemv_compare(int rows, int cols, int n, int reps, double *us_gemv, double *us_cublas, g4c_err *err);
/* Quantized decode GEMV (activation quantization + kernel, as the forward pass runs them) of a random
 * [rows][cols] matrix of dtype (a g4c_dtype: Q4_0, Q8_0, Q4_K, Q5_K, Q6_K) times n vectors: median microseconds
 * (*us, 4 rotated copies) and the matrix's device bytes (*bytes). */
/* Warps per output row of the quantized decode GEMV: 0 = chosen by the shape (default), 1, 2 or 4 (benchmarks). */
void g4c_cuda_set_qgemv_split(int ks);
g4c_status g4c_cuda_qgemv_time(int dtype, int rows, int cols, int n, int reps, double *us, double *bytes, g4c_err *err);

#ifdef __cplusplus
}
#endif
#endif
