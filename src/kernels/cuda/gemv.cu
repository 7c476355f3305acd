/* Matrix-vector products for decode (1..CU_GEMV_MAX_TOK tokens): a stream of weight bytes, so each warp owns one
 * output row and reads it with 16-byte loads (8 bf16 or 2×4 f32 per lane), four loads in flight per lane before the
 * first use; the few activation rows come through L1 (every warp of the block reads the same ones). f32
 * accumulation; the NT tokens of a launch share each weight load. */
#include "kernels/cuda/cuda_int.cuh"

namespace {

constexpr int WARPS = 4; /* rows per block */
constexpr int UNROLL = 4;

__device__ __forceinline__ void load8(const __nv_bfloat16 *p, float f[8]) {
    const uint4 u = __ldg(reinterpret_cast<const uint4 *>(p));
    const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = __uint_as_float(w[i] << 16);
        f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}
__device__ __forceinline__ void load8(const float *p, float f[8]) {
    const float4 a = __ldg(reinterpret_cast<const float4 *>(p)), b = __ldg(reinterpret_cast<const float4 *>(p) + 1);
    f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}
__device__ __forceinline__ float load1(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ float load1(const float *p) { return *p; }

/* acc += w[0..8) · x[0..8), x read as two float4 when aligned */
__device__ __forceinline__ float dot8(const float w[8], const float *x, bool xvec, float acc) {
    if (xvec) {
        const float4 a = *reinterpret_cast<const float4 *>(x), b = *(reinterpret_cast<const float4 *>(x) + 1);
        acc = fmaf(w[0], a.x, acc), acc = fmaf(w[1], a.y, acc), acc = fmaf(w[2], a.z, acc), acc = fmaf(w[3], a.w, acc);
        acc = fmaf(w[4], b.x, acc), acc = fmaf(w[5], b.y, acc), acc = fmaf(w[6], b.z, acc), acc = fmaf(w[7], b.w, acc);
    } else {
#pragma unroll
        for (int i = 0; i < 8; i++) acc = fmaf(w[i], x[i], acc);
    }
    return acc;
}

/* One warp per row r of w (rows at stride ld), NT token rows of x. With sel: blockIdx.y = t·n_slot + k picks the
 * expert's block of rows, and the (t, k) input/output rows. */
template <typename WT, int NT>
__global__ void __launch_bounds__(WARPS * 32) k_gemv(float *__restrict__ y, long ys, long yks,
                                                     const float *__restrict__ x, long xs, long xks,
                                                     const WT *__restrict__ w, int rows, int cols, int ld, int n,
                                                     const int *__restrict__ sel, int n_slot, int xvec) {
    cu_pdl_wait();
    cu_pdl_launch();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int r = blockIdx.x * WARPS + warp;
    if (r >= rows) return;
    const WT *wr;
    const float *xb;
    float *yb;
    int nt;
    if (sel) {
        const int g = blockIdx.y, t = g / n_slot, k = g - t * n_slot;
        wr = w + ((long)sel[g] * rows + r) * ld;
        xb = x + t * xs + k * xks;
        yb = y + t * ys + k * yks;
        nt = 1;
    } else {
        const int t0 = blockIdx.y * NT;
        wr = w + (long)r * ld;
        xb = x + t0 * xs;
        yb = y + t0 * ys;
        nt = min(NT, n - t0);
    }
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.f;
    const int c8 = cols & ~7;
    const bool xv = xvec != 0;
    int c = lane * 8;
    for (; c + (UNROLL - 1) * 256 < c8; c += UNROLL * 256) {
        float wf[UNROLL][8];
#pragma unroll
        for (int u = 0; u < UNROLL; u++) load8(wr + c + u * 256, wf[u]);
#pragma unroll
        for (int u = 0; u < UNROLL; u++)
#pragma unroll
            for (int t = 0; t < NT; t++)
                if (t < nt) acc[t] = dot8(wf[u], xb + t * xs + c + u * 256, xv, acc[t]);
    }
    for (; c < c8; c += 256) {
        float wf[8];
        load8(wr + c, wf);
#pragma unroll
        for (int t = 0; t < NT; t++)
            if (t < nt) acc[t] = dot8(wf, xb + t * xs + c, xv, acc[t]);
    }
    for (c = c8 + lane; c < cols; c += 32) {
        const float wv = load1(wr + c);
#pragma unroll
        for (int t = 0; t < NT; t++)
            if (t < nt) acc[t] = fmaf(wv, xb[t * xs + c], acc[t]);
    }
#pragma unroll
    for (int t = 0; t < NT; t++) {
        float v = acc[t];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0 && t < nt) yb[t * ys + r] = v;
    }
}

template <typename WT>
cudaError_t launch(cudaStream_t st, float *y, long ys, long yks, const float *x, long xs, long xks, const cu_mat *w,
                   int n, const int *sel, int n_slot) {
    const WT *wp = static_cast<const WT *>(w->p);
    /* vector x loads need 16-byte aligned rows at every used offset */
    const int xvec = ((uintptr_t)x % 16 == 0) && xs % 4 == 0 && xks % 4 == 0;
    dim3 grid((w->rows + WARPS - 1) / WARPS, 1);
    if (sel) {
        grid.y = n * n_slot;
        return cu_launch(k_gemv<WT, 1>, grid, dim3(WARPS * 32), 0, st, y, ys, yks, x, xs, xks, wp, w->rows, w->cols,
                         w->ld, n, sel, n_slot, xvec);
    }
#define G4C_GEMV_NT(NT)                                                                                               \
    case NT:                                                                                                          \
        return cu_launch(k_gemv<WT, NT>, grid, dim3(WARPS * 32), 0, st, y, ys, 0L, x, xs, 0L, wp, w->rows, w->cols, \
                         w->ld, n, (const int *)nullptr, 1, xvec);
    switch (n) {
        G4C_GEMV_NT(1)
        G4C_GEMV_NT(2)
        G4C_GEMV_NT(3)
        G4C_GEMV_NT(4)
        G4C_GEMV_NT(5)
        G4C_GEMV_NT(6)
        G4C_GEMV_NT(7)
        G4C_GEMV_NT(8)
    default: return cudaErrorInvalidValue;
    }
#undef G4C_GEMV_NT
    return cudaGetLastError();
}

} // namespace

cudaError_t cu_gemv(cudaStream_t st, float *y, long ys, const float *x, long xs, const cu_mat *w, int n) {
    if (n < 1 || n > CU_GEMV_MAX_TOK) return cudaErrorInvalidValue;
    return w->dt == CU_BF16 ? launch<__nv_bfloat16>(st, y, ys, 0, x, xs, 0, w, n, nullptr, 1)
                            : launch<float>(st, y, ys, 0, x, xs, 0, w, n, nullptr, 1);
}

cudaError_t cu_gemv_sel(cudaStream_t st, float *y, long ys, long yks, const float *x, long xs, long xks,
                        const cu_mat *w, const int *sel, int n, int n_slot) {
    if (n < 1 || n * n_slot > 65535) return cudaErrorInvalidValue;
    return w->dt == CU_BF16 ? launch<__nv_bfloat16>(st, y, ys, yks, x, xs, xks, w, n, sel, n_slot)
                            : launch<float>(st, y, ys, yks, x, xs, xks, w, n, sel, n_slot);
}
