/* Row-wise and elementwise ops: RMSNorm (plain, fused with the residual add, and the MoE layer's two-branch sum),
 * GeGLU, softcap, embedding lookup, PLE input preparation, MoE row gather/scatter. Formulas as kernels/cpu/cpu.c
 * (spec §2): f32 throughout, inv = 1 / sqrtf(mean(x²) + eps), y = x·inv·w. */
#include <cooperative_groups.h>

#include "kernels/cuda/cuda_int.cuh"

namespace {

constexpr int NORM_THREADS = 1024;

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

/* Every kernel of this file launched through cu_launch (the decode path's) waits for its predecessor (cu_pdl_wait)
 * before touching memory and lets its successor launch right after.
 *
 * The norms keep their row in registers: thread t holds elements t + k·blockDim.x, k < E (E·blockDim.x >= dim), so
 * a row costs one round trip to memory, not one per pass and per element. A decode row is one block: with a
 * strided loop re-reading memory in each of its 2-3 passes, a 5376-wide norm took 26 us on an H100 (31B decode:
 * 3.1 of 10.5 ms per token, bench_cuda --profile). blockDim is a multiple of 32, so with dim % 32 == 0 each warp's
 * k-th element covers one aligned block of 32 elements (cu_quant32's contract). __launch_bounds__(1024): the
 * register file must hold 1024 threads. */
template <int E> struct row_regs {
    float v[E];
    __device__ __forceinline__ void load(const float *x, int dim) {
#pragma unroll
        for (int k = 0; k < E; k++) {
            const int i = threadIdx.x + k * blockDim.x;
            v[k] = i < dim ? x[i] : 0.f;
        }
    }
    /* 1 / sqrt(mean(v²) + eps) over the row */
    __device__ __forceinline__ float inv_rms(int dim, float eps) const {
        float ss = 0.f;
#pragma unroll
        for (int k = 0; k < E; k++) ss = fmaf(v[k], v[k], ss);
        return 1.0f / sqrtf(block_sum(ss) / (float)dim + eps);
    }
};

template <int E>
__global__ void __launch_bounds__(1024) k_rms_norm(float *y, long ys, const float *x, long xs, const float *__restrict__ w, int dim, float eps,
                           cu_q8 q) {
    cu_pdl_wait();
    cu_pdl_launch();
    row_regs<E> r;
    r.load(x + blockIdx.x * xs, dim);
    float *yr = y + blockIdx.x * ys;
    const float inv = r.inv_rms(dim, eps);
#pragma unroll
    for (int k = 0; k < E; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i >= dim) break;
        const float v = w ? r.v[k] * inv * w[i] : r.v[k] * inv;
        yr[i] = v;
        if (q.xq) cu_quant32(q, blockIdx.x, dim, i, v);
    }
}

struct norm_outs {
    cu_norm_out o[CU_NORM_OUTS];
    int n;
    cu_q8 qres;
};

/* element i of the updated row, already times the row's inverse RMS (r), into each output norm: r · w (f32 and/or int8) */
__device__ __forceinline__ void norm_outs_put(const norm_outs &outs, long row, int dim, int i, float r) {
#pragma unroll
    for (int j = 0; j < CU_NORM_OUTS; j++) {
        if (j >= outs.n) break;
        const cu_norm_out &o = outs.o[j];
        const float v = o.w ? r * o.w[i] : r;
        if (o.y) o.y[row * dim + i] = v;
        if (o.q.xq) cu_quant32(o.q, row, dim, i, v);
    }
}

template <int E>
__global__ void __launch_bounds__(1024) k_rms_norm_add(float *res, const float *__restrict__ a, const float *__restrict__ w, int dim, float eps,
                               float scale, norm_outs outs) {
    cu_pdl_wait();
    cu_pdl_launch();
    row_regs<E> ar, rr;
    ar.load(a + (long)blockIdx.x * dim, dim);
    float *rp = res + (long)blockIdx.x * dim;
    rr.load(rp, dim);
    const float inv = ar.inv_rms(dim, eps);
#pragma unroll
    for (int k = 0; k < E; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i >= dim) break;
        const float v = (rr.v[k] + ar.v[k] * inv * w[i]) * scale;
        rr.v[k] = v;
        rp[i] = v;
        if (outs.qres.xq) cu_quant32(outs.qres, blockIdx.x, dim, i, v);
    }
    if (!outs.n) return;
    /* the next sub-block's input norm(s) of the updated row */
    const float inv2 = rr.inv_rms(dim, eps);
#pragma unroll
    for (int k = 0; k < E; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i >= dim) break;
        norm_outs_put(outs, blockIdx.x, dim, i, rr.v[k] * inv2);
    }
}

/* k_rms_norm_add for the few rows of a decode step: a cluster of NORM_CL blocks per row, each holding a slice of
 * CL_THREADS·E elements in registers, the two row sums exchanged through distributed shared memory. One block per
 * row left a single SM to issue the whole row's loads and run both reductions (31B: 8.6 us per norm, 120 a token).
 * Slices are multiples of 32 elements, so cu_quant32's blocks stay within one warp. */
constexpr int NORM_CL = 8, CL_THREADS = 256;

/* Σ over the cluster of each block's v (every block gets the same total: the partials summed in rank order). */
__device__ __forceinline__ float cluster_sum(float v, float *slot) {
    namespace cg = cooperative_groups;
    cg::cluster_group cl = cg::this_cluster();
    v = block_sum(v);
    if (threadIdx.x == 0) *slot = v;
    cl.sync();
    float t = 0.f;
    for (int r = 0; r < NORM_CL; r++) t += *cl.map_shared_rank(slot, r);
    return t;
}

template <int E>
__global__ void __launch_bounds__(CL_THREADS) k_rms_norm_add_cl(float *res, const float *__restrict__ a,
                                                                const float *__restrict__ w, int dim, int slice,
                                                                float eps, float scale, norm_outs outs) {
    __shared__ float part[2];
    cu_pdl_wait();
    cu_pdl_launch();
    const int row = blockIdx.x / NORM_CL, s0 = (blockIdx.x % NORM_CL) * slice;
    const int s1 = min(dim, s0 + slice);
    const float *ap = a + (long)row * dim;
    float *rp = res + (long)row * dim;
    float av[E], rv[E], wv[E];
#pragma unroll
    for (int k = 0; k < E; k++) {
        const int i = s0 + threadIdx.x + k * CL_THREADS;
        av[k] = i < s1 ? ap[i] : 0.f;
        rv[k] = i < s1 ? rp[i] : 0.f;
        wv[k] = i < s1 ? w[i] : 0.f;
    }
    float ss = 0.f;
#pragma unroll
    for (int k = 0; k < E; k++) ss = fmaf(av[k], av[k], ss);
    const float inv = 1.0f / sqrtf(cluster_sum(ss, &part[0]) / (float)dim + eps);
    float ss2 = 0.f;
#pragma unroll
    for (int k = 0; k < E; k++) {
        const int i = s0 + threadIdx.x + k * CL_THREADS;
        if (i >= s1) break;
        const float v = (rv[k] + av[k] * inv * wv[k]) * scale;
        rv[k] = v;
        rp[i] = v;
        ss2 = fmaf(v, v, ss2);
        if (outs.qres.xq) cu_quant32(outs.qres, row, dim, i, v);
    }
    if (outs.n) {
        const float inv2 = 1.0f / sqrtf(cluster_sum(ss2, &part[1]) / (float)dim + eps);
#pragma unroll
        for (int k = 0; k < E; k++) {
            const int i = s0 + threadIdx.x + k * CL_THREADS;
            if (i >= s1) break;
            norm_outs_put(outs, row, dim, i, rv[k] * inv2);
        }
    }
    cooperative_groups::this_cluster().sync(); /* no block leaves while another may still read its partials */
}

template <int E>
__global__ void __launch_bounds__(1024) k_rms_norm2_sum(float *y, const float *a, const float *__restrict__ wa, float *b,
                                const float *__restrict__ wb, int dim, float eps, const float *__restrict__ moe_y,
                                const float *__restrict__ moe_wt, int n_slot) {
    cu_pdl_wait();
    cu_pdl_launch();
    const long off = (long)blockIdx.x * dim;
    row_regs<E> ar, br;
    ar.load(a + off, dim);
    if (moe_y) { /* the experts' weighted sum first, each thread its own elements */
#pragma unroll
        for (int k = 0; k < E; k++) {
            const int i = threadIdx.x + k * blockDim.x;
            float acc = 0.f;
            if (i < dim)
                for (int s = 0; s < n_slot; s++)
                    acc += moe_wt[blockIdx.x * n_slot + s] * moe_y[((long)blockIdx.x * n_slot + s) * dim + i];
            br.v[k] = acc;
            if (i < dim) b[off + i] = acc;
        }
    } else {
        br.load(b + off, dim);
    }
    const float ia = ar.inv_rms(dim, eps), ib = br.inv_rms(dim, eps);
#pragma unroll
    for (int k = 0; k < E; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i < dim) y[off + i] = ar.v[k] * ia * wa[i] + br.v[k] * ib * wb[i];
    }
}

__device__ __forceinline__ float gelu_tanh(float x) {
    const float k0 = 0.7978845608028654f, k1 = 0.044715f;
    return 0.5f * x * (1.0f + tanhf(k0 * (x + k1 * x * x * x)));
}

__global__ void k_gelu_mul(float *y, long ys, const float *g, long gs, const float *u, long us, int dim, cu_q8 q) {
    cu_pdl_wait();
    cu_pdl_launch();
    const long t = blockIdx.y;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < dim; i += gridDim.x * blockDim.x) {
        const float v = gelu_tanh(g[t * gs + i]) * u[t * us + i];
        y[t * ys + i] = v;
        if (q.xq) cu_quant32(q, t, dim, i, v);
    }
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

int norm_threads(int dim) {
    int t = 32;
    while (t < NORM_THREADS && t < dim) t *= 2;
    return t;
}

/* Launch kernel template K<E> for rows of dim: 1024 threads (fewer for short rows), E = elements per thread. */
#define NORM_LAUNCH(K, n_rows, dim, st, ...)                                                                    \
    [&]() -> cudaError_t {                                                                                     \
        const int t_ = norm_threads(dim), e_ = ((dim) + t_ - 1) / t_;                                          \
        const dim3 g_(n_rows), b_(t_);                                                                         \
        if (e_ <= 1) return cu_launch(K<1>, g_, b_, 0, st, __VA_ARGS__);                                       \
        if (e_ <= 2) return cu_launch(K<2>, g_, b_, 0, st, __VA_ARGS__);                                       \
        if (e_ <= 4) return cu_launch(K<4>, g_, b_, 0, st, __VA_ARGS__);                                       \
        if (e_ <= 8) return cu_launch(K<8>, g_, b_, 0, st, __VA_ARGS__);                                       \
        if (e_ <= 16) return cu_launch(K<16>, g_, b_, 0, st, __VA_ARGS__);                                     \
        return cudaErrorInvalidValue; /* rows over 16384 */                                                    \
    }()

} // namespace

cudaError_t cu_rms_norm(cudaStream_t st, float *y, long ys, const float *x, long xs, const float *w, int n_rows,
                        int dim, float eps, cu_q8 q) {
    if (n_rows <= 0) return cudaSuccess;
    if (q.xq && dim % 32) return cudaErrorInvalidValue;
    return NORM_LAUNCH(k_rms_norm, n_rows, dim, st, y, ys, x, xs, w, dim, eps, q);
}

cudaError_t cu_rms_norm_add_ex(cudaStream_t st, float *res, const float *a, const float *w, int n_rows, int dim,
                               float eps, float scale, cu_q8 qres, const cu_norm_out *out, int n_out) {
    if (n_rows <= 0) return cudaSuccess;
    if (n_out < 0 || n_out > CU_NORM_OUTS) return cudaErrorInvalidValue;
    norm_outs o = {};
    o.n = n_out, o.qres = qres;
    int any_q = qres.xq != nullptr;
    for (int k = 0; k < n_out; k++) o.o[k] = out[k], any_q |= out[k].q.xq != nullptr;
    if (any_q && dim % 32) return cudaErrorInvalidValue;
    /* decode rows of wide models: a cluster per row (env G4C_CUDA_NORM_CL=0 keeps one block) */
    static const int cl_env = cu_env_switch("G4C_CUDA_NORM_CL");
    const int slice = ((dim + NORM_CL - 1) / NORM_CL + 31) & ~31;
    if (cl_env != 0 && n_rows <= CU_GEMV_MAX_TOK && dim >= 2048 && slice <= 4 * CL_THREADS) {
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = dim3(n_rows * NORM_CL), cfg.blockDim = dim3(CL_THREADS), cfg.stream = st;
        cudaLaunchAttribute at[2];
        at[0].id = cudaLaunchAttributeClusterDimension;
        at[0].val.clusterDim.x = NORM_CL, at[0].val.clusterDim.y = 1, at[0].val.clusterDim.z = 1;
        at[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at[1].val.programmaticStreamSerializationAllowed = 1;
        cfg.attrs = at, cfg.numAttrs = cu_pdl_enabled() ? 2 : 1;
        const int e = (slice + CL_THREADS - 1) / CL_THREADS;
        if (e <= 1) return cudaLaunchKernelEx(&cfg, k_rms_norm_add_cl<1>, res, a, w, dim, slice, eps, scale, o);
        if (e <= 2) return cudaLaunchKernelEx(&cfg, k_rms_norm_add_cl<2>, res, a, w, dim, slice, eps, scale, o);
        return cudaLaunchKernelEx(&cfg, k_rms_norm_add_cl<4>, res, a, w, dim, slice, eps, scale, o);
    }
    return NORM_LAUNCH(k_rms_norm_add, n_rows, dim, st, res, a, w, dim, eps, scale, o);
}

cudaError_t cu_rms_norm_add(cudaStream_t st, float *res, const float *a, const float *w, int n_rows, int dim,
                            float eps, float scale, float *y2, const float *w2) {
    const cu_norm_out o = {y2, w2, {}};
    return cu_rms_norm_add_ex(st, res, a, w, n_rows, dim, eps, scale, cu_q8{}, &o, y2 ? 1 : 0);
}

cudaError_t cu_rms_norm2_sum(cudaStream_t st, float *y, const float *a, const float *wa, float *b, const float *wb,
                             int n_rows, int dim, float eps, const float *moe_y, const float *moe_wt, int n_slot) {
    if (n_rows <= 0) return cudaSuccess;
    return NORM_LAUNCH(k_rms_norm2_sum, n_rows, dim, st, y, a, wa, b, wb, dim, eps, moe_y, moe_wt, n_slot);
}

cudaError_t cu_gelu_mul(cudaStream_t st, float *y, long ys, const float *g, long gs, const float *u, long us,
                        int n_rows, int dim, cu_q8 q) {
    if (n_rows <= 0) return cudaSuccess;
    if (q.xq && dim % 32) return cudaErrorInvalidValue;
    const int bx = (dim + 255) / 256 < 64 ? (dim + 255) / 256 : 64;
    return cu_launch(k_gelu_mul, dim3(bx, n_rows), dim3(256), 0, st, y, ys, g, gs, u, us, dim, q);
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

namespace {

/* one block: each thread its strided maximum (first index on ties), then a shared-memory tree. The logits row is
 * read as float4, 8 loads in flight per thread (a plain strided loop kept one load in flight: 53 us for 262144
 * logits on an H100, bench_cuda --profile). */
/* (value, index) a ranks before (value, index) b: the larger value, ties to the lower index (argmax, top-k) */
__device__ __forceinline__ bool better(float av, int ai, float bv, int bi) { return av > bv || (av == bv && ai < bi); }

__device__ __forceinline__ void argmax_take(float v, int i, float &best, int &bi) {
    if (better(v, i, best, bi)) best = v, bi = i;
}

__global__ void k_argmax(int *out, const float *__restrict__ x, int n) {
    __shared__ float sv[1024];
    __shared__ int si[1024];
    float best = -INFINITY;
    int bi = 0x7fffffff;
    int tail = 0;
    if (((uintptr_t)x & 15) == 0) {
        const float4 *x4 = (const float4 *)x;
        const int n4 = n / 4, bd = blockDim.x;
        int j = threadIdx.x;
        for (; j + 7 * bd < n4; j += 8 * bd) {
            float4 v[8];
#pragma unroll
            for (int u = 0; u < 8; u++) v[u] = x4[j + u * bd];
#pragma unroll
            for (int u = 0; u < 8; u++) {
                const int i = 4 * (j + u * bd);
                argmax_take(v[u].x, i, best, bi), argmax_take(v[u].y, i + 1, best, bi);
                argmax_take(v[u].z, i + 2, best, bi), argmax_take(v[u].w, i + 3, best, bi);
            }
        }
        for (; j < n4; j += bd) {
            const float4 v = x4[j];
            argmax_take(v.x, 4 * j, best, bi), argmax_take(v.y, 4 * j + 1, best, bi);
            argmax_take(v.z, 4 * j + 2, best, bi), argmax_take(v.w, 4 * j + 3, best, bi);
        }
        tail = 4 * n4;
    }
    for (int i = tail + threadIdx.x; i < n; i += blockDim.x) argmax_take(x[i], i, best, bi);
    sv[threadIdx.x] = best, si[threadIdx.x] = bi;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            const float v = sv[threadIdx.x + s];
            const int j = si[threadIdx.x + s];
            if (better(v, j, sv[threadIdx.x], si[threadIdx.x])) sv[threadIdx.x] = v, si[threadIdx.x] = j;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) *out = si[0] == 0x7fffffff ? 0 : si[0];
}

/* Top-k for sampling (spec §7; runtime/sampler.c's candidates): slices of TK_SLICE logits, each sorted in shared
 * memory by (value desc, id asc) with a bitonic network, keep their k best, their largest value and the sum of
 * exp((v - largest) / T) over the slice; one block then sorts the slices' candidates the same way and rescales the
 * sums to the overall largest. NaN counts as -inf. */
constexpr int TK_SLICE = 2048;

/* bitonic sort of v/id [n] (n a power of two) in shared memory, best first */
__device__ void tk_sort(float *v, int *id, int n) {
    for (int size = 2; size <= n; size <<= 1)
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            __syncthreads();
            for (int p = threadIdx.x; p < n / 2; p += blockDim.x) {
                const int i = (p / stride) * 2 * stride + p % stride, l = i + stride;
                const bool first_best = (i & size) == 0;
                const bool swap = first_best ? better(v[l], id[l], v[i], id[i]) : better(v[i], id[i], v[l], id[l]);
                if (swap) {
                    const float tv = v[i];
                    const int ti = id[i];
                    v[i] = v[l], id[i] = id[l], v[l] = tv, id[l] = ti;
                }
            }
        }
    __syncthreads();
}

__global__ void k_topk_part(const float *__restrict__ x, int n, int k, const float *__restrict__ temp,
                            float *__restrict__ pv, int *__restrict__ pi, float2 *__restrict__ pstat) {
    __shared__ float v[TK_SLICE];
    __shared__ int id[TK_SLICE];
    __shared__ float red[32];
    const int base = blockIdx.x * TK_SLICE;
    for (int j = threadIdx.x; j < TK_SLICE; j += blockDim.x) {
        const int i = base + j;
        const float xv = i < n ? x[i] : -INFINITY;
        v[j] = xv != xv ? -INFINITY : xv, id[j] = i < n ? i : 0x7fffffff;
    }
    tk_sort(v, id, TK_SLICE);
    for (int j = threadIdx.x; j < k; j += blockDim.x) pv[blockIdx.x * k + j] = v[j], pi[blockIdx.x * k + j] = id[j];
    const float mx = v[0], t = *temp;
    float sum = 0.f;
    if (mx != -INFINITY)
        for (int j = threadIdx.x; j < TK_SLICE; j += blockDim.x) sum += expf((v[j] - mx) / t);
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        float tot = 0.f;
        for (int w = 0; w < (int)(blockDim.x >> 5); w++) tot += red[w];
        pstat[blockIdx.x] = make_float2(mx, tot);
    }
}

__global__ void k_topk_merge(const float *__restrict__ pv, const int *__restrict__ pi, const float2 *__restrict__ pstat,
                             int n_part, int k, int n2, const float *__restrict__ temp, float *__restrict__ out_v,
                             int *__restrict__ out_i, float *__restrict__ stats) {
    extern __shared__ float smf[];
    float *v = smf;
    int *id = reinterpret_cast<int *>(smf + n2);
    for (int j = threadIdx.x; j < n2; j += blockDim.x) {
        const bool in = j < n_part * k;
        v[j] = in ? pv[j] : -INFINITY, id[j] = in ? pi[j] : 0x7fffffff;
    }
    tk_sort(v, id, n2);
    for (int j = threadIdx.x; j < k; j += blockDim.x) out_v[j] = v[j], out_i[j] = id[j];
    if (threadIdx.x == 0) {
        const float mx = v[0], t = *temp;
        float sum = 0.f;
        for (int b = 0; b < n_part; b++)
            if (pstat[b].x != -INFINITY) sum += pstat[b].y * expf((pstat[b].x - mx) / t);
        stats[0] = mx, stats[1] = sum;
    }
}

} // namespace

cudaError_t cu_argmax(cudaStream_t st, int *out, const float *x, int n) {
    k_argmax<<<1, 1024, 0, st>>>(out, x, n);
    return cudaGetLastError();
}

size_t cu_topk_scratch_floats(int n, int k) { return (size_t)3 * ((n + TK_SLICE - 1) / TK_SLICE) * (k + 1); }

extern "C" int g4c_cuda_topk_supported(int n, int k) {
    const long cand = (long)((n + TK_SLICE - 1) / TK_SLICE) * k; /* the merge sorts them in 128 KB of shared memory */
    return k >= 1 && k <= CU_TOPK_MAX && k <= n && cand <= 16384;
}

cudaError_t cu_topk(cudaStream_t st, const float *x, int n, int k, const float *temp, float *scratch, float *out_v,
                    int *out_i, float *stats) {
    const int n_part = (n + TK_SLICE - 1) / TK_SLICE;
    int n2 = 1;
    while (n2 < n_part * k) n2 <<= 1;
    if (!g4c_cuda_topk_supported(n, k)) return cudaErrorInvalidValue;
    float *pv = scratch;
    int *pi = reinterpret_cast<int *>(scratch + (size_t)n_part * k);
    float2 *pstat = reinterpret_cast<float2 *>(scratch + (size_t)2 * n_part * k + ((size_t)2 * n_part * k & 1));
    k_topk_part<<<n_part, 512, 0, st>>>(x, n, k, temp, pv, pi, pstat);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    const size_t smem = (size_t)n2 * (sizeof(float) + sizeof(int));
    static bool attr = false;
    if (!attr) {
        e = cudaFuncSetAttribute(k_topk_merge, cudaFuncAttributeMaxDynamicSharedMemorySize, 16384 * 8);
        if (e != cudaSuccess) return e;
        attr = true;
    }
    k_topk_merge<<<1, 1024, smem, st>>>(pv, pi, pstat, n_part, k, n2, temp, out_v, out_i, stats);
    return cudaGetLastError();
}
