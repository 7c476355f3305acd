/* Matrix products y[n][rows] = x[n][cols] · wᵀ: the GEMV kernel (gemv.cu) for decode-sized n, cuBLAS for prefill.
 *
 * Row-major y = x·wᵀ is, in cuBLAS's column-major terms, C (rows × n, ldc = ys) = op(A)·B with A = w seen as a
 * (ld × rows) matrix transposed and B = x seen as (cols × n) with ldb = xs.
 * f32 weights: GemmEx in f32 with f32 compute (no TF32), so results match the CPU to f32 rounding.
 * bf16 weights: the activations are converted to bf16 first. Rounding them alone costs ~2e-3 per product, which
 * the random fixture models amplify to 1e-1 in the logits; the default splits x = hi + lo (two bf16 rows, ~16
 * mantissa bits) and runs one GEMM over the 2n columns, then sums the halves (G4C_CUDA_PREFILL_SPLIT). */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_int.cuh"

namespace {

int g_mode = -1;

__global__ void k_split_bf16(__nv_bfloat16 *__restrict__ dst, int ldd, const float *__restrict__ x, long xs, int n,
                             int cols, int split) {
    const long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    const int t = blockIdx.y;
    if (i >= ldd) return;
    const float v = i < cols ? x[t * xs + i] : 0.f;
    const __nv_bfloat16 hi = __float2bfloat16_rn(v);
    dst[(long)t * ldd + i] = hi;
    if (split) dst[(long)(n + t) * ldd + i] = __float2bfloat16_rn(v - __bfloat162float(hi));
}

__global__ void k_sum_halves(float *__restrict__ y, long ys, const float *__restrict__ ysc, int rows, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x, t = blockIdx.y;
    if (i >= rows) return;
    y[t * ys + i] = ysc[(long)t * rows + i] + ysc[(long)(n + t) * rows + i];
}

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

template <typename T>
__global__ void k_fill_random(T *p, long rows, int cols, int ld, uint64_t seed, float amp) {
    const long n = rows * ld;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        const int c = (int)(i % ld);
        float v = 0.f;
        if (c < cols) v = amp * ((float)(mix64(seed + (uint64_t)i * 0x9E3779B97F4A7C15ull) >> 40) * 0x1p-23f - 1.0f);
        if constexpr (sizeof(T) == 4) p[i] = v;
        else p[i] = __float2bfloat16_rn(v);
    }
}

} // namespace

namespace {
thread_local int t_pdl = -1; /* the forward pass's choice for its launches on this thread; -1: outside one */
}

int cu_env_switch(const char *name) {
    const char *e = getenv(name);
    return !e || !*e ? -1 : strcmp(e, "0") != 0;
}

int cu_pdl_enabled(void) {
    if (t_pdl >= 0) return t_pdl;
    static const int env = cu_env_switch("G4C_CUDA_PDL");
    return env != 0;
}

void cu_pdl_set(int on) { t_pdl = on; }

extern "C" void g4c_cuda_set_prefill_mode(int mode) {
    g_mode = mode == G4C_CUDA_PREFILL_SPLIT || mode == G4C_CUDA_PREFILL_BF16 ? mode : G4C_CUDA_PREFILL_AUTO;
}
extern "C" int g4c_cuda_prefill_mode(void) {
    if (g_mode < 0) {
        const char *e = getenv("G4C_CUDA_PREFILL");
        g_mode = e && !strcmp(e, "bf16")    ? G4C_CUDA_PREFILL_BF16
                 : e && !strcmp(e, "split") ? G4C_CUDA_PREFILL_SPLIT
                                            : G4C_CUDA_PREFILL_AUTO;
    }
    return g_mode;
}

int cu_fast_prefill(const cu_mat *w) {
    const int mode = g4c_cuda_prefill_mode();
    return mode == G4C_CUDA_PREFILL_BF16 ||
           (mode == G4C_CUDA_PREFILL_AUTO && cu_is_quant(w) && g4c_cuda_qprefill() != G4C_CUDA_QPREFILL_GEMV);
}

cudaError_t cu_fill_random(cudaStream_t st, cu_mat *m, int total_rows, uint64_t seed, float amp) {
    const int threads = 256, blocks = 132 * 16;
    if (m->dt == CU_F32) k_fill_random<float><<<blocks, threads, 0, st>>>((float *)m->p, total_rows, m->cols, m->ld, seed, amp);
    else
        k_fill_random<__nv_bfloat16><<<blocks, threads, 0, st>>>((__nv_bfloat16 *)m->p, total_rows, m->cols, m->ld,
                                                                 seed, amp);
    return cudaGetLastError();
}

g4c_status cu_mm_init(cu_mm *mm, int max_n, int max_cols, size_t max_out, g4c_err *err) {
    mm->xb_elems = (size_t)2 * max_n * cu_round8(max_cols);
    mm->ysc_elems = (size_t)2 * max_n * max_out;
    mm->qx_cols = (max_cols + 31) & ~31;
    G4C_CU(cudaMalloc(&mm->xb, mm->xb_elems * sizeof(__nv_bfloat16)));
    G4C_CU(cudaMalloc(&mm->ysc, mm->ysc_elems * sizeof(float)));
    G4C_CU(cudaMalloc(&mm->xq, (size_t)CU_QX_ROWS * mm->qx_cols));
    G4C_CU(cudaMalloc(&mm->dx, sizeof(float2) * CU_QX_ROWS * (mm->qx_cols / 32)));
    return G4C_OK;
}

void cu_mm_free(cu_mm *mm) {
    cudaFree(mm->xb);
    cudaFree(mm->ysc);
    cudaFree(mm->xq);
    cudaFree(mm->dx);
    cudaFree(mm->wt);
    mm->xb = NULL;
    mm->ysc = NULL;
    mm->xq = NULL;
    mm->dx = NULL;
    mm->wt = NULL;
}

namespace {

/* Elements of the bf16 tile that quantized prefill dequantizes into (256 MiB, allocated at the first quantized
 * prefill): fewer, larger GEMMs. H100, 31B Q4_0 pp512 by tile size (env G4C_CUDA_TILE_MB): 16 MiB 3949 tok/s, 32
 * 4845, 64 5211, 128 5429, 256 5631, 512 5642 (bench/RESULTS.md). */
constexpr size_t WT_ELEMS = (size_t)128 << 20;

/* quant_tile: w is a dequantized tile of a quantized matrix (the auto prefill mode rounds its activations) */
g4c_status gemm_dense(cu_mm *mm, float *y, long ys, const float *x, long xs, const cu_mat *w, int n, int quant_tile,
                      g4c_err *err);

/* x (n rows of cols) rounded to bf16 into mm->xb, rows cu_round8(cols) apart (zero padded) */
g4c_status to_bf16(cu_mm *mm, const float *x, long xs, int n, int cols, g4c_err *err) {
    const int ldb = cu_round8(cols);
    k_split_bf16<<<dim3((ldb + 255) / 256, n), 256, 0, mm->stream>>>(mm->xb, ldb, x, xs, n, cols, 0);
    G4C_CHECK_LAUNCH();
    return G4C_OK;
}

/* y = xb · wᵀ for bf16 w and the n bf16 activation rows that to_bf16 left in mm->xb */
g4c_status gemm_bf16_ready(cu_mm *mm, float *y, long ys, const cu_mat *w, int n, g4c_err *err) {
    const float one = 1.f, zero = 0.f;
    G4C_BLAS(cublasGemmEx(mm->blas, CUBLAS_OP_T, CUBLAS_OP_N, w->rows, n, w->cols, &one, w->p, CUDA_R_16BF, w->ld,
                          mm->xb, CUDA_R_16BF, cu_round8(w->cols), &zero, y, CUDA_R_32F, (int)ys, CUBLAS_COMPUTE_32F,
                          CUBLAS_GEMM_DEFAULT));
    return G4C_OK;
}

/* Quantized weights: int8 activations + cu_qgemv up to CU_GEMV_MAX_TOK tokens; above, tiles of rows dequantized to
 * bf16 and the bf16 GEMM. */
g4c_status matmul_q(cu_mm *mm, float *y, long ys, const float *x, long xs, const cu_mat *w, int n, int use_gemv,
                    g4c_err *err) {
    if (w->cols > mm->qx_cols && use_gemv)
        return G4C_FAIL(err, G4C_E_IO, "CUDA matmul: activation scratch too small for %d columns", w->cols);
    if (use_gemv) {
        for (int t0 = 0; t0 < n; t0 += CU_GEMV_MAX_TOK) {
            const int k = n - t0 < CU_GEMV_MAX_TOK ? n - t0 : CU_GEMV_MAX_TOK;
            G4C_CU(cu_quantize_act(mm->stream, mm->xq, mm->dx, x + t0 * xs, xs, 0, k, 1, w->cols));
            G4C_CU(cu_qgemv(mm->stream, y + t0 * ys, ys, 0, mm->xq, mm->dx, 0, w, k, nullptr, 1));
        }
        return G4C_OK;
    }
    if (!mm->wt) {
        mm->wt_elems = WT_ELEMS;
        const char *e = getenv("G4C_CUDA_TILE_MB"); /* measurements: another tile size in MiB */
        if (e && atoi(e) >= 1 && atoi(e) <= 1024) mm->wt_elems = (size_t)atoi(e) << 19;
        G4C_CU(cudaMalloc(&mm->wt, mm->wt_elems * sizeof(__nv_bfloat16)));
    }
    /* Tiles of whole 128-row multiples: each tile's output y + r0 then stays 16-byte aligned, which cuBLAS needs
     * for its sm90 kernels (an odd r0 made it fall back to an sm75 kernel at a fifth of the rate). */
    int tile = (int)(mm->wt_elems / (size_t)w->cols);
    if (tile >= 128) tile &= ~127;
    if (tile > w->rows) tile = w->rows;
    if (tile < 1) return G4C_FAIL(err, G4C_E_IO, "CUDA matmul: a row of %d columns exceeds the dequant tile", w->cols);
    /* bf16 activations (the auto/bf16 modes): rounded once for all tiles */
    const int once = g4c_cuda_prefill_mode() != G4C_CUDA_PREFILL_SPLIT && (size_t)n * cu_round8(w->cols) <= mm->xb_elems;
    if (once) G4C_TRY(to_bf16(mm, x, xs, n, w->cols, err));
    for (int r0 = 0; r0 < w->rows; r0 += tile) {
        const int m = w->rows - r0 < tile ? w->rows - r0 : tile;
        G4C_CU(cu_dequant_bf16(mm->stream, mm->wt, w, r0, m));
        cu_mat b = {};
        b.dt = CU_BF16, b.p = mm->wt, b.rows = m, b.cols = w->cols, b.ld = w->cols;
        if (once) G4C_TRY(gemm_bf16_ready(mm, y + r0, ys, &b, n, err));
        else G4C_TRY(gemm_dense(mm, y + r0, ys, x, xs, &b, n, 1, err));
    }
    return G4C_OK;
}

} // namespace

g4c_status cu_matmul_q8(cu_mm *mm, float *y, long ys, cu_q8 q, const cu_mat *w, int n, g4c_err *err) {
    if (!cu_is_quant(w) || n < 1 || n > CU_GEMV_MAX_TOK || !q.xq)
        return G4C_FAIL(err, G4C_E_IO, "CUDA matmul: int8 activations need a quantized matrix and 1..%d tokens",
                        CU_GEMV_MAX_TOK);
    G4C_CU(cu_qgemv(mm->stream, y, ys, 0, q.xq, q.dx, 0, w, n, nullptr, 1));
    return G4C_OK;
}

g4c_status cu_matmul_sel_q8(cu_mm *mm, float *y, long ys, long yks, cu_q8 q, int x_per_slot, const cu_mat *w,
                            const int *sel, int n, int n_slot, g4c_err *err) {
    if (!cu_is_quant(w) || !q.xq || (x_per_slot ? n * n_slot : n) > CU_QX_ROWS)
        return G4C_FAIL(err, G4C_E_IO, "CUDA MoE: int8 activations need a quantized matrix and <= %d rows", CU_QX_ROWS);
    G4C_CU(cu_qgemv(mm->stream, y, ys, yks, q.xq, q.dx, x_per_slot, w, n, sel, n_slot));
    return G4C_OK;
}

g4c_status cu_matmul_sel(cu_mm *mm, float *y, long ys, long yks, const float *x, long xs, long xks, const cu_mat *w,
                         const int *sel, int n, int n_slot, g4c_err *err) {
    if (!cu_is_quant(w)) {
        G4C_CU(cu_gemv_sel(mm->stream, y, ys, yks, x, xs, xks, w, sel, n, n_slot));
        return G4C_OK;
    }
    const int rows_x = xks ? n * n_slot : n;
    if (rows_x > CU_QX_ROWS || w->cols > mm->qx_cols)
        return G4C_FAIL(err, G4C_E_IO, "CUDA MoE: %d activation rows of %d columns exceed the scratch", rows_x, w->cols);
    G4C_CU(cu_quantize_act(mm->stream, mm->xq, mm->dx, x, xs, xks, n, xks ? n_slot : 1, w->cols));
    G4C_CU(cu_qgemv(mm->stream, y, ys, yks, mm->xq, mm->dx, xks != 0, w, n, sel, n_slot));
    return G4C_OK;
}

g4c_status cu_matmul(cu_mm *mm, float *y, long ys, const float *x, long xs, const cu_mat *w, int n, g4c_err *err) {
    if (n <= 0) return G4C_OK;
    const int use_gemv = mm->force == G4C_CUDA_MM_GEMV || (mm->force != G4C_CUDA_MM_GEMM && n <= CU_GEMV_MAX_TOK);
    if (cu_is_quant(w))
        return matmul_q(mm, y, ys, x, xs, w, n,
                        use_gemv || (mm->force == G4C_CUDA_MM_AUTO && g4c_cuda_qprefill() == G4C_CUDA_QPREFILL_GEMV), err);
    if (use_gemv) {
        for (int t0 = 0; t0 < n; t0 += CU_GEMV_MAX_TOK) {
            const int k = n - t0 < CU_GEMV_MAX_TOK ? n - t0 : CU_GEMV_MAX_TOK;
            G4C_CU(cu_gemv(mm->stream, y + t0 * ys, ys, x + t0 * xs, xs, w, k));
        }
        return G4C_OK;
    }
    return gemm_dense(mm, y, ys, x, xs, w, n, 0, err);
}

namespace {

g4c_status gemm_dense(cu_mm *mm, float *y, long ys, const float *x, long xs, const cu_mat *w, int n, int quant_tile,
                      g4c_err *err) {
    const float one = 1.f, zero = 0.f;
    if (w->dt == CU_F32) {
        G4C_BLAS(cublasGemmEx(mm->blas, CUBLAS_OP_T, CUBLAS_OP_N, w->rows, n, w->cols, &one, w->p, CUDA_R_32F, w->ld, x,
                              CUDA_R_32F, (int)xs, &zero, y, CUDA_R_32F, (int)ys, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        return G4C_OK;
    }
    const int mode = g4c_cuda_prefill_mode();
    const int split = mode == G4C_CUDA_PREFILL_SPLIT || (mode == G4C_CUDA_PREFILL_AUTO && !quant_tile);
    const int ldb = cu_round8(w->cols);
    /* chunks of tokens that fit the scratch (the LM head over many tokens is the widest) */
    int step = n;
    if ((size_t)2 * step * ldb > mm->xb_elems) step = (int)(mm->xb_elems / (2 * (size_t)ldb));
    if (split && (size_t)2 * step * w->rows > mm->ysc_elems) step = (int)(mm->ysc_elems / (2 * (size_t)w->rows));
    if (step < 1) return G4C_FAIL(err, G4C_E_IO, "CUDA matmul: scratch too small for a %d x %d matrix", w->rows, w->cols);
    for (int t0 = 0; t0 < n; t0 += step) {
        const int m = n - t0 < step ? n - t0 : step;
        if (!split) {
            G4C_TRY(to_bf16(mm, x + t0 * xs, xs, m, w->cols, err));
            G4C_TRY(gemm_bf16_ready(mm, y + t0 * ys, ys, w, m, err));
            continue;
        }
        k_split_bf16<<<dim3((ldb + 255) / 256, m), 256, 0, mm->stream>>>(mm->xb, ldb, x + t0 * xs, xs, m, w->cols, 1);
        G4C_CHECK_LAUNCH();
        G4C_BLAS(cublasGemmEx(mm->blas, CUBLAS_OP_T, CUBLAS_OP_N, w->rows, 2 * m, w->cols, &one, w->p, CUDA_R_16BF,
                              w->ld, mm->xb, CUDA_R_16BF, ldb, &zero, mm->ysc, CUDA_R_32F, w->rows, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
        k_sum_halves<<<dim3((w->rows + 255) / 256, m), 256, 0, mm->stream>>>(y + t0 * ys, ys, mm->ysc, w->rows, m);
        G4C_CHECK_LAUNCH();
    }
    return G4C_OK;
}

} // namespace
