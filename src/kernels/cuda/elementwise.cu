/* Row-wise and elementwise ops: RMSNorm (plain, fused with the residual add, and the MoE layer's two-branch sum),
 * GeGLU, softcap, embedding lookup, PLE input preparation, MoE row gather/scatter. Formulas as kernels/cpu/cpu.c
 * (spec §2): f32 throughout, inv = 1 / sqrtf(mean(x²) + eps), y = x·inv·w. */
#include "kernels/cuda/cuda_int.cuh"

namespace {

constexpr int NORM_THREADS = 256;

/* Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the total. */
__device__ float block_sum(float v) {
    __shared__ float sh[32];
    __shared__ float total;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float s = lane < nw ? sh[lane] : 0.f;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) total = s;
    }
    __syncthreads();
    return total;
}

__device__ __forceinline__ float row_inv_rms(const float *x, int dim, float eps) {
    float ss = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) ss = fmaf(x[i], x[i], ss);
    ss = block_sum(ss);
    return 1.0f / sqrtf(ss / (float)dim + eps);
}

__global__ void k_rms_norm(float *y, long ys, const float *x, long xs, const float *__restrict__ w, int dim, float eps) {
    const float *xr = x + blockIdx.x * xs;
    float *yr = y + blockIdx.x * ys;
    const float inv = row_inv_rms(xr, dim, eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = w ? xr[i] * inv * w[i] : xr[i] * inv;
}

__global__ void k_rms_norm_add(float *res, const float *__restrict__ a, const float *__restrict__ w, int dim, float eps,
                               float scale, float *y2, const float *__restrict__ w2) {
    const float *ar = a + (long)blockIdx.x * dim;
    float *rr = res + (long)blockIdx.x * dim;
    const float inv = row_inv_rms(ar, dim, eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) rr[i] = (rr[i] + ar[i] * inv * w[i]) * scale;
    if (!y2) return;
    /* the next sub-block's input norm of the updated row (each thread re-reads only what it wrote) */
    const float inv2 = row_inv_rms(rr, dim, eps);
    float *yr = y2 + (long)blockIdx.x * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = rr[i] * inv2 * w2[i];
}

__global__ void k_rms_norm2_sum(float *y, const float *a, const float *__restrict__ wa, const float *b,
                                const float *__restrict__ wb, int dim, float eps) {
    const long off = (long)blockIdx.x * dim;
    const float ia = row_inv_rms(a + off, dim, eps), ib = row_inv_rms(b + off, dim, eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) y[off + i] = a[off + i] * ia * wa[i] + b[off + i] * ib * wb[i];
}

__device__ __forceinline__ float gelu_tanh(float x) {
    const float k0 = 0.7978845608028654f, k1 = 0.044715f;
    return 0.5f * x * (1.0f + tanhf(k0 * (x + k1 * x * x * x)));
}

__global__ void k_gelu_mul(float *y, long ys, const float *g, long gs, const float *u, long us, int dim) {
    const long t = blockIdx.y;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < dim; i += gridDim.x * blockDim.x)
        y[t * ys + i] = gelu_tanh(g[t * gs + i]) * u[t * us + i];
}

__global__ void k_softcap(float *x, size_t n, float cap) {
    const float inv = 1.0f / cap;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = cap * tanhf(x[i] * inv);
}

template <typename T>
__global__ void k_embed(float *x, const T *__restrict__ e, int ld, int dim, const int *__restrict__ ids, float scale) {
    const T *row = e + (long)ids[blockIdx.x] * ld;
    float *xr = x + (long)blockIdx.x * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float v;
        if constexpr (sizeof(T) == 4) v = row[i];
        else v = __bfloat162float(row[i]);
        xr[i] = v * scale;
    }
}

__global__ void k_ple_prep(float *ple, const float *__restrict__ tok, const float *__restrict__ w, int dim, float eps,
                           float proj_scale, float tok_scale, float mix) {
    float *p = ple + (long)blockIdx.x * dim;
    const float *tp = tok + (long)blockIdx.x * dim;
    float ss = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        const float v = p[i] * proj_scale;
        p[i] = v;
        ss = fmaf(v, v, ss);
    }
    ss = block_sum(ss);
    const float inv = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) p[i] = (p[i] * inv * w[i] + tp[i] * tok_scale) * mix;
}

__global__ void k_gather_rows(float *dst, const float *__restrict__ src, const int *__restrict__ idx, int dim) {
    const float *s = src + (long)idx[blockIdx.x] * dim;
    float *d = dst + (long)blockIdx.x * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) d[i] = s[i];
}

__global__ void k_scatter_add(float *dst, const float *__restrict__ src, const int *__restrict__ idx,
                              const float *__restrict__ w, int dim) {
    float *d = dst + (long)idx[blockIdx.x] * dim;
    const float *s = src + (long)blockIdx.x * dim;
    const float g = w[blockIdx.x];
    for (int i = threadIdx.x; i < dim; i += blockDim.x) d[i] += g * s[i];
}

__global__ void k_moe_combine(float *out, const float *__restrict__ y, const float *__restrict__ wt, int n_slot, int dim) {
    const int t = blockIdx.x;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float acc = 0.f;
        for (int k = 0; k < n_slot; k++) acc += wt[t * n_slot + k] * y[((long)t * n_slot + k) * dim + i];
        out[(long)t * dim + i] = acc;
    }
}

int norm_threads(int dim) {
    int t = 32;
    while (t < NORM_THREADS && t < dim) t *= 2;
    return t;
}

} // namespace

cudaError_t cu_rms_norm(cudaStream_t st, float *y, long ys, const float *x, long xs, const float *w, int n_rows,
                        int dim, float eps) {
    if (n_rows <= 0) return cudaSuccess;
    k_rms_norm<<<n_rows, norm_threads(dim), 0, st>>>(y, ys, x, xs, w, dim, eps);
    return cudaGetLastError();
}

cudaError_t cu_rms_norm_add(cudaStream_t st, float *res, const float *a, const float *w, int n_rows, int dim,
                            float eps, float scale, float *y2, const float *w2) {
    if (n_rows <= 0) return cudaSuccess;
    k_rms_norm_add<<<n_rows, norm_threads(dim), 0, st>>>(res, a, w, dim, eps, scale, y2, w2);
    return cudaGetLastError();
}

cudaError_t cu_rms_norm2_sum(cudaStream_t st, float *y, const float *a, const float *wa, const float *b,
                             const float *wb, int n_rows, int dim, float eps) {
    if (n_rows <= 0) return cudaSuccess;
    k_rms_norm2_sum<<<n_rows, norm_threads(dim), 0, st>>>(y, a, wa, b, wb, dim, eps);
    return cudaGetLastError();
}

cudaError_t cu_gelu_mul(cudaStream_t st, float *y, long ys, const float *g, long gs, const float *u, long us,
                        int n_rows, int dim) {
    if (n_rows <= 0) return cudaSuccess;
    const int bx = (dim + 255) / 256 < 64 ? (dim + 255) / 256 : 64;
    k_gelu_mul<<<dim3(bx, n_rows), 256, 0, st>>>(y, ys, g, gs, u, us, dim);
    return cudaGetLastError();
}

cudaError_t cu_softcap(cudaStream_t st, float *x, size_t n, float cap) {
    if (!n) return cudaSuccess;
    size_t blocks = (n + 255) / 256;
    if (blocks > 132 * 32) blocks = 132 * 32;
    k_softcap<<<(unsigned)blocks, 256, 0, st>>>(x, n, cap);
    return cudaGetLastError();
}

cudaError_t cu_embed(cudaStream_t st, float *x, const cu_mat *e, const int *ids, int n, float scale) {
    if (n <= 0) return cudaSuccess;
    if (cu_is_quant(e)) return cu_embed_q(st, x, e, ids, n, scale);
    if (e->dt == CU_F32) k_embed<float><<<n, 256, 0, st>>>(x, (const float *)e->p, e->ld, e->cols, ids, scale);
    else k_embed<__nv_bfloat16><<<n, 256, 0, st>>>(x, (const __nv_bfloat16 *)e->p, e->ld, e->cols, ids, scale);
    return cudaGetLastError();
}

cudaError_t cu_ple_prep(cudaStream_t st, float *ple, const float *tok, const float *w, int n_rows, int dim, float eps,
                        float proj_scale, float tok_scale, float mix) {
    if (n_rows <= 0) return cudaSuccess;
    k_ple_prep<<<n_rows, norm_threads(dim), 0, st>>>(ple, tok, w, dim, eps, proj_scale, tok_scale, mix);
    return cudaGetLastError();
}

cudaError_t cu_gather_rows(cudaStream_t st, float *dst, const float *src, const int *idx, int m, int dim) {
    if (m <= 0) return cudaSuccess;
    k_gather_rows<<<m, 256, 0, st>>>(dst, src, idx, dim);
    return cudaGetLastError();
}

cudaError_t cu_scatter_add(cudaStream_t st, float *dst, const float *src, const int *idx, const float *w, int m,
                           int dim) {
    if (m <= 0) return cudaSuccess;
    k_scatter_add<<<m, 256, 0, st>>>(dst, src, idx, w, dim);
    return cudaGetLastError();
}

cudaError_t cu_moe_combine(cudaStream_t st, float *out, const float *y, const float *wt, int n, int n_slot, int dim) {
    if (n <= 0) return cudaSuccess;
    k_moe_combine<<<n, 256, 0, st>>>(out, y, wt, n_slot, dim);
    return cudaGetLastError();
}

namespace {

/* one block: each thread its strided maximum (first index on ties), then a shared-memory tree */
__global__ void k_argmax(int *out, const float *__restrict__ x, int n) {
    __shared__ float sv[1024];
    __shared__ int si[1024];
    float best = -INFINITY;
    int bi = 0x7fffffff;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float v = x[i];
        if (v > best || (v == best && i < bi)) best = v, bi = i;
    }
    sv[threadIdx.x] = best, si[threadIdx.x] = bi;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            const float v = sv[threadIdx.x + s];
            const int j = si[threadIdx.x + s];
            if (v > sv[threadIdx.x] || (v == sv[threadIdx.x] && j < si[threadIdx.x])) sv[threadIdx.x] = v, si[threadIdx.x] = j;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) *out = si[0] == 0x7fffffff ? 0 : si[0];
}

} // namespace

cudaError_t cu_argmax(cudaStream_t st, int *out, const float *x, int n) {
    k_argmax<<<1, 1024, 0, st>>>(out, x, n);
    return cudaGetLastError();
}
