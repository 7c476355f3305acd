/* The vision tower on the GPU (issue 9): model/vision.c's g4c_vision_encode, op for op (spec §4.2-§4.6), so the CPU
 * path is its reference. The first image uploads the tower's weights into the model (as the decoder's: f32 stays
 * f32, GPU quant types stay quantized, the rest bf16); the scratch grows with the largest image seen.
 *
 * Matrix products go through cu_matmul (cuBLAS above 8 rows, the prefill mode's precision). Attention over all
 * patches (bidirectional, scale 1, head dims 64 / 72, §4.3):
 *  - split and auto prefill modes (auto, the default, is split here; the conformance reference): two f32
 *    strided-batched GEMMs around a row softmax,
 *    S = Q·Kᵀ per head, softmax per row, O = S·V. The heads are taken a few at a time so that S (n² floats a head)
 *    stays within L2: at 2520 patches (280 soft tokens) one head's scores are 25 MB.
 *  - bf16 prefill mode: one fused kernel (k_flash) on bf16 tensor cores with an online softmax, no score matrix.
 *    Its inputs are bf16 copies of q/k/v, head-major and zero-padded to a multiple of 16 dims, which the kernel
 *    that also applies the q/k/v norms and the RoPE writes (k_heads_bf16). Head dims up to 128 that are multiples
 *    of 8; others take the cuBLAS path (TF32). With bf16 weights the activations between the products stay bf16
 *    too (layers_bf16): the kernel before each product writes its bf16 input, so cu_matmul's conversion pass goes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>

#include "kernels/cuda/cuda_model.cuh"
#include "kernels/cuda/mma.cuh"

namespace {

struct vlinear {
    cu_mat w;
    float clip[4]; /* input min/max, output min/max (±inf when unclipped) */
};
struct vlayer {
    vlinear q, k, v, o, gate, up, down;
    float *attn_norm, *post_attn_norm, *pre_ffn_norm, *post_ffn_norm, *q_norm, *k_norm;
};

/* L2-resident budget for one batch of attention scores */
constexpr size_t SCORE_BYTES = (size_t)24 << 20;

__global__ void k_patch_in(float *x, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = 2.0f * (x[i] - 0.5f); /* HF: pixel_values = 2 * (pixel_values - 0.5) */
}

/* x[i] += pos_table[0][px] + pos_table[1][py] */
__global__ void k_pos_add(float *x, const float *__restrict__ table, const int *__restrict__ pos, int dim, int n_pos) {
    const int i = blockIdx.x;
    const float *px = table + (size_t)pos[2 * i] * dim, *py = table + ((size_t)n_pos + pos[2 * i + 1]) * dim;
    for (int d = threadIdx.x; d < dim; d += blockDim.x) x[(size_t)i * dim + d] += px[d] + py[d];
}

template <typename T> __global__ void k_clamp(T *y, const T *x, size_t n, float lo, float hi) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = (T)fminf(fmaxf((float)x[i], lo), hi);
}

/* 2-D RoPE on v [n][nh][hd]: the first half of each head rotates by the x angles, the second by the y angles, each
 * half split-half (model/vision.c rope2d, g4c_rope's arithmetic without contraction). cs/sn [n][2][hd/4]. */
__global__ void k_rope2d(float *v, int nh, int hd, const float *__restrict__ cs, const float *__restrict__ sn) {
    const int t = blockIdx.x, q = hd / 4;
    for (int e = threadIdx.x; e < nh * 2 * q; e += blockDim.x) {
        const int h = e / (2 * q), axis = (e % (2 * q)) / q, j = e % q;
        float *a = v + ((size_t)t * nh + h) * hd + axis * (hd / 2), *b = a + q;
        const float c = cs[(size_t)t * 2 * q + axis * q + j], s = sn[(size_t)t * 2 * q + axis * q + j];
        const float x0 = a[j], x1 = b[j];
        a[j] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
        b[j] = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s));
    }
}

__device__ float block_reduce(float v, int is_max) {
    __shared__ float red[32];
    for (int o = 16; o > 0; o >>= 1) {
        const float u = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, u) : v + u;
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < nw ? red[lane] : (is_max ? -INFINITY : 0.f);
    for (int o = 16; o > 0; o >>= 1) {
        const float u = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, u) : v + u;
    }
    return v;
}

/* Softmax of each row of n scores, in place. */
__global__ void k_softmax_rows(float *s, int n) {
    float *r = s + (size_t)blockIdx.x * n;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, r[j]);
    m = block_reduce(m, 1);
    float sum = 0.f;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        const float e = expf(r[j] - m);
        r[j] = e;
        sum += e;
    }
    const float inv = 1.0f / block_reduce(sum, 0);
    for (int j = threadIdx.x; j < n; j += blockDim.x) r[j] *= inv;
}

/* §4.4-§4.5: out[o] = (Σ over its k² patches, in patch order, of x·(1/k²)) · √dim, standardized when sb != NULL.
 * idx [n_out][k2]: the patch indices of each output token, ascending. */
__global__ void k_pool(float *out, const float *__restrict__ x, const int *__restrict__ idx, int k2, int dim,
                       float inv_k2, float root, const float *__restrict__ sb, const float *__restrict__ ss) {
    const int o = blockIdx.x;
    for (int d = threadIdx.x; d < dim; d += blockDim.x) {
        float acc = 0.f;
        for (int m = 0; m < k2; m++) acc = __fadd_rn(acc, __fmul_rn(x[(size_t)idx[o * k2 + m] * dim + d], inv_k2));
        acc = __fmul_rn(acc, root);
        if (sb) acc = __fmul_rn(__fsub_rn(acc, sb[d]), ss[d]);
        out[(size_t)o * dim + d] = acc;
    }
}

/* ---- bf16 prefill mode with bf16 weights: activations between the products in bf16 ---- */

/* Per row: res += rmsnorm(a)·w when a (cu_rms_norm_add's arithmetic, scale 1), then y = rmsnorm(res)·w2 as bf16 when
 * y (the next product's input, §4.3's pre-norms). Each thread keeps its NORM_PER elements of the row in registers
 * (blockDim >= dim / NORM_PER), so the row is read once. */
constexpr int NORM_PER = 8;
__global__ void k_norm16(float *res, const float *__restrict__ a, const float *__restrict__ w, __nv_bfloat16 *y,
                         const float *__restrict__ w2, int dim, float eps) {
    float *r = res + (size_t)blockIdx.x * dim;
    float rv[NORM_PER];
#pragma unroll
    for (int e = 0; e < NORM_PER; e++) {
        const int i = threadIdx.x + e * blockDim.x;
        rv[e] = i < dim ? r[i] : 0.f;
    }
    if (a) {
        const float *ar = a + (size_t)blockIdx.x * dim;
        float av[NORM_PER], ss = 0.f;
#pragma unroll
        for (int e = 0; e < NORM_PER; e++) {
            const int i = threadIdx.x + e * blockDim.x;
            av[e] = i < dim ? ar[i] : 0.f;
            ss = fmaf(av[e], av[e], ss);
        }
        const float inv = 1.0f / sqrtf(block_reduce(ss, 0) / (float)dim + eps);
#pragma unroll
        for (int e = 0; e < NORM_PER; e++) {
            const int i = threadIdx.x + e * blockDim.x;
            if (i < dim) r[i] = rv[e] = rv[e] + av[e] * inv * w[i];
        }
    }
    if (!y) return;
    float ss = 0.f;
#pragma unroll
    for (int e = 0; e < NORM_PER; e++) ss = fmaf(rv[e], rv[e], ss);
    const float inv = 1.0f / sqrtf(block_reduce(ss, 0) / (float)dim + eps);
#pragma unroll
    for (int e = 0; e < NORM_PER; e++) {
        const int i = threadIdx.x + e * blockDim.x;
        if (i < dim) y[(size_t)blockIdx.x * dim + i] = __float2bfloat16_rn(rv[e] * inv * w2[i]);
    }
}
/* k_norm16's block: warps enough for NORM_PER elements a thread */
unsigned norm16_threads(int dim) { return std::max(64u, (unsigned)(dim + 32 * NORM_PER - 1) / (32 * NORM_PER) * 32); }

/* g = gelu_tanh(g)·u in place (cu_gelu_mul's formula), bf16 in and out, two elements a thread. */
__device__ __forceinline__ float gelu_mul(float x, float u) {
    const float k0 = 0.7978845608028654f, k1 = 0.044715f;
    return 0.5f * x * (1.0f + tanhf(k0 * (x + k1 * x * x * x))) * u;
}
__global__ void k_gelu16(__nv_bfloat16 *g, const __nv_bfloat16 *__restrict__ u, size_t n) {
    const size_t step = 2 * (size_t)gridDim.x * blockDim.x;
    for (size_t i = 2 * ((size_t)blockIdx.x * blockDim.x + threadIdx.x); i < n; i += step) {
        if (i + 1 == n) {
            g[i] = __float2bfloat16_rn(gelu_mul(__bfloat162float(g[i]), __bfloat162float(u[i])));
            break;
        }
        const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(g + i));
        const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(u + i));
        *reinterpret_cast<__nv_bfloat162 *>(g + i) = __floats2bfloat162_rn(gelu_mul(a.x, b.x), gelu_mul(a.y, b.y));
    }
}

/* ---- bf16 attention (bf16 prefill mode) ---- */

/* Queries per block (4 warps of 16 rows) and keys per shared-memory tile. */
constexpr int FA_Q = 64, FA_K = 64;

/* The padded head dim of the bf16 copies (mma k-steps of 16); 0 when the kernel does not take hd. */
int flash_dim(int hd) { return hd > 0 && hd <= 128 && hd % 8 == 0 ? (hd + 15) & ~15 : 0; }
int round_q(int n) { return (n + FA_Q - 1) / FA_Q * FA_Q; }

struct head_job {
    const void *x;         /* [n][nh][hd], f32 or bf16 (the kernel's T) */
    __nv_bfloat16 *dst;    /* [nh][n_pad][hdp] */
    const float *w;        /* RMSNorm weight (NULL: none) */
    int rope;
};
struct head_jobs {
    head_job j[3];
};

/* One warp per (token, head), blockIdx.y the tensor (q, k, v): RMSNorm over the head when norm (§4.3: q and k with
 * their weights, v without), the 2-D RoPE when the job asks (k_rope2d's arithmetic), then bf16 into the
 * head-major copy with zero pad columns; tokens n..n_pad are zero rows (the last key tile's, masked anyway). Each
 * lane's elements (hd <= 128: up to 4) and their weights and angles are loaded at once, before the reduction. */
template <typename T>
__global__ void k_heads_bf16(head_jobs jobs, int n, int n_pad, int nh, int hd, int hdp, int norm, float eps,
                             const float *__restrict__ cs, const float *__restrict__ sn) {
    __shared__ float buf[4][128];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, task = blockIdx.x * 4 + warp;
    if (task >= n_pad * nh) return;
    const int t = task / nh, h = task % nh;
    const head_job J = blockIdx.y == 0 ? jobs.j[0] : blockIdx.y == 1 ? jobs.j[1] : jobs.j[2]; /* no local copy */
    __nv_bfloat16 *d = J.dst + ((size_t)h * n_pad + t) * hdp;
    if (t >= n) {
        for (int i = lane; i < hdp; i += 32) d[i] = __float2bfloat16_rn(0.f);
        return;
    }
    const T *x = static_cast<const T *>(J.x) + ((size_t)t * nh + h) * hd;
    const int q = hd / 4;
    float xv[4], wv[4], c[4], s[4], ss = 0.f;
#pragma unroll
    for (int e = 0; e < 4; e++) {
        const int i = lane + 32 * e, axis = i >= 2 * q, r = i - axis * 2 * q;
        xv[e] = 0.f, wv[e] = 1.f, c[e] = 1.f, s[e] = 0.f;
        if (i < hd) {
            xv[e] = (float)x[i];
            if (J.w) wv[e] = J.w[i];
            if (J.rope) {
                const size_t a = (size_t)t * 2 * q + axis * q + (r >= q ? r - q : r);
                c[e] = cs[a], s[e] = sn[a];
            }
            ss = fmaf(xv[e], xv[e], ss);
        }
    }
    if (norm) {
        for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        const float inv = 1.0f / sqrtf(ss / (float)hd + eps);
#pragma unroll
        for (int e = 0; e < 4; e++) xv[e] = xv[e] * inv * wv[e];
    }
    if (J.rope) { /* each element's partner in its half: other lanes' values, through shared memory */
        float *b = buf[warp];
#pragma unroll
        for (int e = 0; e < 4; e++)
            if (lane + 32 * e < hd) b[lane + 32 * e] = xv[e];
        __syncwarp();
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int i = lane + 32 * e, r = i - (i >= 2 * q) * 2 * q;
            if (i < hd)
                xv[e] = r < q ? __fsub_rn(__fmul_rn(xv[e], c[e]), __fmul_rn(b[i + q], s[e]))
                              : __fadd_rn(__fmul_rn(xv[e], c[e]), __fmul_rn(b[i - q], s[e]));
        }
    }
#pragma unroll
    for (int e = 0; e < 4; e++)
        if (lane + 32 * e < hdp) d[lane + 32 * e] = __float2bfloat16_rn(xv[e]);
}

__device__ __forceinline__ void store2(float *p, float a, float b) {
    *reinterpret_cast<float2 *>(p) = make_float2(a, b);
}
__device__ __forceinline__ void store2(__nv_bfloat16 *p, float a, float b) {
    *reinterpret_cast<__nv_bfloat162 *>(p) = __floats2bfloat162_rn(a, b);
}

/* Flash attention of one head (blockIdx.y) for FA_Q queries (blockIdx.x): out = softmax(q·kᵀ)·v over all n keys,
 * scale 1 (§4.3), q/k/v the bf16 copies [nh][n_pad][HDP]. Warp w owns query rows 16w..16w+15: S = Q·Kᵀ for a tile
 * of FA_K keys in mma accumulators, the running max and sum per row (online softmax, f32), P rounded to bf16 as the
 * A operand of O += P·V straight from the accumulators (their layouts match). K/V tiles double-buffered through
 * cp.async; the rows are padded by 8 elements so that ldmatrix's eight 16-byte rows hit distinct banks.
 * 31B image (2520 patches, 16 heads of 72 padded to 80): 177 us a layer on an H200, 165 TFLOP/s of real work;
 * 133 registers a thread leave 3 blocks an SM, so its 640 blocks run in 1.6 waves. */
template <int HDP, typename OutT>
__global__ void __launch_bounds__(128) k_flash(OutT *__restrict__ out, const __nv_bfloat16 *__restrict__ q,
                                               const __nv_bfloat16 *__restrict__ k, const __nv_bfloat16 *__restrict__ v,
                                               int n, int n_pad, int nh, int hd) {
    constexpr int LDS = HDP + 8, CH = HDP / 8, TILE = FA_K * LDS;
    extern __shared__ __align__(16) unsigned char smem[];
    __nv_bfloat16 *sm = reinterpret_cast<__nv_bfloat16 *>(smem); /* [stage][K, V][FA_K][LDS] */
    const int h = blockIdx.y, q0 = blockIdx.x * FA_Q, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const size_t head = (size_t)h * n_pad;
    auto load = [&](__nv_bfloat16 *dst, const __nv_bfloat16 *src) { /* 64 rows of HDP */
        for (int c = threadIdx.x; c < FA_K * CH; c += 128)
            cp_async16(dst + (c / CH) * LDS + (c % CH) * 8, src + (size_t)(c / CH) * HDP + (c % CH) * 8);
    };
    /* the query tile passes through stage 1's K slot into registers (A fragments) */
    load(sm + 2 * TILE, q + (head + q0) * HDP);
    load(sm, k + head * HDP);
    load(sm + TILE, v + head * HDP);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    uint32_t qf[HDP / 16][4];
#pragma unroll
    for (int kk = 0; kk < HDP / 16; kk++)
        ldsm4(qf[kk], sm + 2 * TILE + (warp * 16 + (lane & 15)) * LDS + kk * 16 + (lane >> 4) * 8);
    __syncthreads();

    float o[HDP / 8][4] = {};
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f; /* rows lane/4 and lane/4 + 8 of the warp's 16 */
    const int nt = (n + FA_K - 1) / FA_K;
    for (int j = 0; j < nt; j++) {
        const __nv_bfloat16 *ks = sm + (j & 1) * 2 * TILE, *vs = ks + TILE;
        if (j + 1 < nt) {
            __nv_bfloat16 *nx = sm + ((j + 1) & 1) * 2 * TILE;
            load(nx, k + (head + (size_t)(j + 1) * FA_K) * HDP);
            load(nx + TILE, v + (head + (size_t)(j + 1) * FA_K) * HDP);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();

        float s[FA_K / 8][4] = {};
#pragma unroll
        for (int np = 0; np < FA_K / 16; np++)
#pragma unroll
            for (int kk = 0; kk < HDP / 16; kk++) {
                uint32_t b[4];
                ldsm4(b, ks + (np * 16 + (lane & 7) + (lane >> 4) * 8) * LDS + kk * 16 + ((lane >> 3) & 1) * 8);
                mma16816(s[2 * np], qf[kk], b[0], b[1]);
                mma16816(s[2 * np + 1], qf[kk], b[2], b[3]);
            }
        if ((j + 1) * FA_K > n) { /* the last tile: keys past n */
#pragma unroll
            for (int t = 0; t < FA_K / 8; t++)
#pragma unroll
                for (int c = 0; c < 4; c++)
                    if (j * FA_K + t * 8 + 2 * (lane & 3) + (c & 1) >= n) s[t][c] = -INFINITY;
        }

        uint32_t pf[FA_K / 16][4];
        softmax_tile(s, m0, m1, l0, l1, o, pf);
        pv_tile(o, pf, vs, LDS);
        __syncthreads(); /* the next iteration's loads overwrite this stage */
    }
#pragma unroll
    for (int sh = 1; sh < 4; sh <<= 1) {
        l0 += __shfl_xor_sync(0xffffffffu, l0, sh);
        l1 += __shfl_xor_sync(0xffffffffu, l1, sh);
    }
    const float i0 = 1.0f / l0, i1 = 1.0f / l1;
    const int r0 = q0 + warp * 16 + (lane >> 2), r1 = r0 + 8;
#pragma unroll
    for (int i = 0; i < HDP / 8; i++) {
        const int d = i * 8 + 2 * (lane & 3);
        if (i * 8 >= hd) break; /* pad dims */
        if (r0 < n) store2(out + ((size_t)r0 * nh + h) * hd + d, o[i][0] * i0, o[i][1] * i0);
        if (r1 < n) store2(out + ((size_t)r1 * nh + h) * hd + d, o[i][2] * i1, o[i][3] * i1);
    }
}

template <int HDP, typename OutT>
cudaError_t launch_flash(cudaStream_t st, OutT *out, const __nv_bfloat16 *q, const __nv_bfloat16 *k,
                         const __nv_bfloat16 *v, int n, int nh, int hd) {
    const size_t smem = (size_t)4 * FA_K * (HDP + 8) * sizeof(__nv_bfloat16);
    if (smem > 48 * 1024) {
        const cudaError_t e =
            cudaFuncSetAttribute(k_flash<HDP, OutT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return e;
    }
    k_flash<HDP, OutT><<<dim3(round_q(n) / FA_Q, nh), 128, smem, st>>>(out, q, k, v, n, round_q(n), nh, hd);
    return cudaGetLastError();
}

template <typename OutT>
cudaError_t flash(cudaStream_t st, OutT *out, const __nv_bfloat16 *q, const __nv_bfloat16 *k, const __nv_bfloat16 *v,
                  int n, int nh, int hd) {
    switch (flash_dim(hd)) {
    case 16: return launch_flash<16>(st, out, q, k, v, n, nh, hd);
    case 32: return launch_flash<32>(st, out, q, k, v, n, nh, hd);
    case 48: return launch_flash<48>(st, out, q, k, v, n, nh, hd);
    case 64: return launch_flash<64>(st, out, q, k, v, n, nh, hd);
    case 80: return launch_flash<80>(st, out, q, k, v, n, nh, hd);
    case 96: return launch_flash<96>(st, out, q, k, v, n, nh, hd);
    case 112: return launch_flash<112>(st, out, q, k, v, n, nh, hd);
    case 128: return launch_flash<128>(st, out, q, k, v, n, nh, hd);
    default: return cudaErrorInvalidValue;
    }
}

/* bf16 tensors in the encoder's f32 scratch (bf16 prefill mode with bf16 weights) */
__nv_bfloat16 *as16(float *p) { return reinterpret_cast<__nv_bfloat16 *>(p); }

unsigned blocks(size_t n, int t) { return (unsigned)((n + t - 1) / t); }

} // namespace

struct cu_vision {
    cu_mat patch, proj;
    float *pos_table, *std_bias, *std_scale;
    vlayer *layers;
    cudaStream_t st;
    cu_mm mm;
    int cap;        /* patches the scratch holds */
    int heads_per;  /* heads per attention batch at that size */
    int w16;        /* every layer's matrices bf16: the bf16 mode keeps the activations bf16 (layers_bf16) */
    float *x, *a, *q, *k, *v, *att, *f1, *f2, *tmp, *cs, *sn, *scores, *pooled, *out;
    int *pos, *idx;
    __nv_bfloat16 *qkv16; /* bf16 mode: q, k, v as k_heads_bf16 writes them, each [nh][round_q(cap)][flash_dim] */
};

void cu_vision_free(cu_vision *V) {
    if (!V) return;
    cu_mm_free(&V->mm);
    float *bufs[] = {V->x, V->a, V->q, V->k, V->v, V->att, V->f1, V->f2, V->tmp, V->cs, V->sn, V->scores, V->pooled, V->out};
    for (float *b : bufs) cudaFree(b);
    cudaFree(V->pos);
    cudaFree(V->idx);
    cudaFree(V->qkv16);
    if (V->mm.blas) cublasDestroy(V->mm.blas);
    if (V->st) cudaStreamDestroy(V->st);
    free(V->layers);
    free(V);
}

namespace {

g4c_status vision_stream(cu_vision *V, g4c_err *err) {
    G4C_CU(cudaStreamCreateWithFlags(&V->st, cudaStreamNonBlocking));
    G4C_BLAS(cublasCreate(&V->mm.blas));
    G4C_BLAS(cublasSetStream(V->mm.blas, V->st));
    V->mm.stream = V->st;
    return G4C_OK;
}

g4c_status up_linear(g4c_cuda_model *M, vlinear *d, const g4c_clip_linear *l, g4c_err *err) {
    memcpy(d->clip, l->clip, sizeof d->clip);
    return cu_model_upload_mat(M, &d->w, &l->w, err);
}

g4c_status vision_upload(g4c_cuda_model *M, const g4c_vision_w *w, g4c_err *err) {
    const g4c_vision_cfg *c = &M->c->vision;
    cu_vision *V = (cu_vision *)calloc(1, sizeof *V);
    if (!V) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    M->vision = V; /* freed with the model from here on */
    V->layers = (vlayer *)calloc((size_t)c->n_layer, sizeof *V->layers);
    if (!V->layers) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    G4C_TRY(vision_stream(V, err));
    G4C_TRY(cu_model_upload_mat(M, &V->patch, &w->patch_proj, err));
    G4C_TRY(cu_model_upload_mat(M, &V->proj, &w->mm_proj, err));
    G4C_TRY(cu_model_upload_vec(M, &V->pos_table, w->pos_table, 2 * c->n_pos * c->n_embd, err));
    if (c->standardize) {
        G4C_TRY(cu_model_upload_vec(M, &V->std_bias, w->std_bias, c->n_embd, err));
        G4C_TRY(cu_model_upload_vec(M, &V->std_scale, w->std_scale, c->n_embd, err));
    }
    for (int il = 0; il < c->n_layer; il++) {
        const g4c_vlayer_w *L = &w->layers[il];
        vlayer *D = &V->layers[il];
        G4C_TRY(up_linear(M, &D->q, &L->q, err));
        G4C_TRY(up_linear(M, &D->k, &L->k, err));
        G4C_TRY(up_linear(M, &D->v, &L->v, err));
        G4C_TRY(up_linear(M, &D->o, &L->o, err));
        G4C_TRY(up_linear(M, &D->gate, &L->gate, err));
        G4C_TRY(up_linear(M, &D->up, &L->up, err));
        G4C_TRY(up_linear(M, &D->down, &L->down, err));
        G4C_TRY(cu_model_upload_vec(M, &D->attn_norm, L->attn_norm, c->n_embd, err));
        G4C_TRY(cu_model_upload_vec(M, &D->post_attn_norm, L->post_attn_norm, c->n_embd, err));
        G4C_TRY(cu_model_upload_vec(M, &D->pre_ffn_norm, L->pre_ffn_norm, c->n_embd, err));
        G4C_TRY(cu_model_upload_vec(M, &D->post_ffn_norm, L->post_ffn_norm, c->n_embd, err));
        G4C_TRY(cu_model_upload_vec(M, &D->q_norm, L->q_norm, c->head_dim, err));
        G4C_TRY(cu_model_upload_vec(M, &D->k_norm, L->k_norm, c->head_dim, err));
    }
    V->w16 = 1;
    for (int il = 0; il < c->n_layer; il++) {
        const vlayer *D = &V->layers[il];
        for (const vlinear *l : {&D->q, &D->k, &D->v, &D->o, &D->gate, &D->up, &D->down}) V->w16 &= l->w.dt == CU_BF16;
    }
    G4C_CU(cudaDeviceSynchronize());
    return G4C_OK;
}

/* Scratch for n patches (kept, grown when a larger image comes). */
g4c_status vision_reserve(cu_vision *V, const g4c_config *cfg, int n, g4c_err *err) {
    if (n <= V->cap) return G4C_OK;
    const g4c_vision_cfg *c = &cfg->vision;
    const int Hv = c->n_embd, qd = c->n_head * c->head_dim, F = c->ffn_dim, P = 3 * c->patch_size * c->patch_size;
    const int k2 = c->pool * c->pool, wide = std::max(std::max(F, qd), std::max(P, Hv));
    G4C_CU(cudaStreamSynchronize(V->st));
    float **bufs[] = {&V->x, &V->a, &V->q, &V->k, &V->v, &V->att, &V->f1, &V->f2, &V->tmp, &V->cs, &V->sn, &V->scores,
                      &V->pooled, &V->out};
    for (float **b : bufs) cudaFree(*b), *b = NULL;
    cudaFree(V->pos), cudaFree(V->idx), V->pos = V->idx = NULL;
    cudaFree(V->qkv16), V->qkv16 = NULL;
    cu_mm_free(&V->mm);
    V->cap = 0;
    const size_t N = (size_t)n, per_head = N * N * sizeof(float);
    V->heads_per = per_head >= SCORE_BYTES ? 1 : (int)(SCORE_BYTES / per_head);
    if (V->heads_per > c->n_head) V->heads_per = c->n_head;
    const size_t sizes[] = {N * Hv, N * Hv, N * qd, N * qd, N * qd, N * qd, N * F, N * F, N * wide, N * c->head_dim / 2,
                            N * c->head_dim / 2, N * N * V->heads_per, N / k2 * Hv, N / k2 * cfg->n_embd};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) G4C_CU(cudaMalloc(bufs[i], sizes[i] * sizeof(float)));
    G4C_CU(cudaMalloc(&V->pos, sizeof(int) * 2 * N));
    G4C_CU(cudaMalloc(&V->idx, sizeof(int) * N));
    if (flash_dim(c->head_dim))
        G4C_CU(cudaMalloc(&V->qkv16, sizeof(__nv_bfloat16) * 3 * c->n_head * round_q(n) * flash_dim(c->head_dim)));
    G4C_TRY(cu_mm_init(&V->mm, n, wide, (size_t)std::max(wide, cfg->n_embd), err));
    V->cap = n;
    return G4C_OK;
}

/* y = clamp(clamp(x)·Wᵀ) (model/vision.c clip_linear); tmp holds the clamped input */
g4c_status clip_linear(cu_vision *V, float *y, const float *x, const vlinear *l, int n, g4c_err *err) {
    const float *in = x;
    const size_t nin = (size_t)n * l->w.cols, nout = (size_t)n * l->w.rows;
    if (l->clip[0] > -INFINITY || l->clip[1] < INFINITY) {
        k_clamp<float><<<blocks(nin, 256), 256, 0, V->st>>>(V->tmp, x, nin, l->clip[0], l->clip[1]);
        G4C_CHECK_LAUNCH();
        in = V->tmp;
    }
    G4C_TRY(cu_matmul(&V->mm, y, l->w.rows, in, l->w.cols, &l->w, n, err));
    if (l->clip[2] > -INFINITY || l->clip[3] < INFINITY) {
        k_clamp<float><<<blocks(nout, 256), 256, 0, V->st>>>(y, y, nout, l->clip[2], l->clip[3]);
        G4C_CHECK_LAUNCH();
    }
    return G4C_OK;
}

/* y = clamp(clamp(x)·Wᵀ) on bf16 activations (clip_linear's bf16-mode form; bf16 weights): y f32 or bf16 (yt),
 * xc the clamped input's scratch. */
g4c_status clip_linear16(cu_vision *V, void *y, cudaDataType yt, const __nv_bfloat16 *x, __nv_bfloat16 *xc,
                         const vlinear *l, int n, g4c_err *err) {
    const size_t nin = (size_t)n * l->w.cols, nout = (size_t)n * l->w.rows;
    if (l->clip[0] > -INFINITY || l->clip[1] < INFINITY) {
        k_clamp<__nv_bfloat16><<<blocks(nin, 256), 256, 0, V->st>>>(xc, x, nin, l->clip[0], l->clip[1]);
        G4C_CHECK_LAUNCH();
        x = xc;
    }
    const float one = 1.f, zero = 0.f;
    G4C_BLAS(cublasGemmEx(V->mm.blas, CUBLAS_OP_T, CUBLAS_OP_N, l->w.rows, n, l->w.cols, &one, l->w.p, CUDA_R_16BF,
                          l->w.ld, x, CUDA_R_16BF, l->w.cols, &zero, y, yt, l->w.rows, CUBLAS_COMPUTE_32F,
                          CUBLAS_GEMM_DEFAULT));
    if (l->clip[2] > -INFINITY || l->clip[3] < INFINITY) {
        if (yt == CUDA_R_32F)
            k_clamp<float><<<blocks(nout, 256), 256, 0, V->st>>>((float *)y, (float *)y, nout, l->clip[2], l->clip[3]);
        else
            k_clamp<__nv_bfloat16><<<blocks(nout, 256), 256, 0, V->st>>>((__nv_bfloat16 *)y, (__nv_bfloat16 *)y, nout,
                                                                         l->clip[2], l->clip[3]);
        G4C_CHECK_LAUNCH();
    }
    return G4C_OK;
}

/* q, k, v [n][nh][hd] (f32, or bf16 when in16) -> V->qkv16 (k_heads_bf16): with L, the layer's q/k/v norms and the
 * RoPE (§4.3); NULL: conversion only. */
g4c_status heads_bf16(cu_vision *V, const g4c_vision_cfg *c, int n, const vlayer *L, const void *q, const void *k,
                      const void *v, int in16, g4c_err *err) {
    const int nh = c->n_head, hd = c->head_dim, hdp = flash_dim(hd), n_pad = round_q(n);
    const size_t each = (size_t)nh * n_pad * hdp;
    const head_jobs jobs = {{{q, V->qkv16, L ? L->q_norm : NULL, L != NULL},
                             {k, V->qkv16 + each, L ? L->k_norm : NULL, L != NULL},
                             {v, V->qkv16 + 2 * each, NULL, 0}}};
    const dim3 grid(blocks((size_t)n_pad * nh, 4), 3);
    if (in16)
        k_heads_bf16<__nv_bfloat16><<<grid, 128, 0, V->st>>>(jobs, n, n_pad, nh, hd, hdp, L != NULL, c->eps, V->cs,
                                                             V->sn);
    else
        k_heads_bf16<float><<<grid, 128, 0, V->st>>>(jobs, n, n_pad, nh, hd, hdp, L != NULL, c->eps, V->cs, V->sn);
    G4C_CHECK_LAUNCH();
    return G4C_OK;
}

/* Bidirectional attention of all n patches: att = softmax(q·kᵀ)·v per head (scale 1, spec §4.3). bf16 mode with
 * a head dim the fused kernel takes: k_flash on V->qkv16 (heads_bf16 first) into out16 (bf16), or V->att when
 * out16 is NULL; else the cuBLAS path from q/k/v to V->att, f32 (split mode) or TF32 (bf16 mode). */
g4c_status attention(cu_vision *V, const g4c_vision_cfg *c, int n, int mode, __nv_bfloat16 *out16, g4c_err *err) {
    const int nh = c->n_head, hd = c->head_dim, ld = nh * hd;
    if (mode == G4C_CUDA_PREFILL_BF16 && flash_dim(hd)) {
        const size_t each = (size_t)nh * round_q(n) * flash_dim(hd);
        const __nv_bfloat16 *q = V->qkv16, *k = q + each, *v = k + each;
        G4C_CU(out16 ? flash(V->st, out16, q, k, v, n, nh, hd) : flash(V->st, V->att, q, k, v, n, nh, hd));
        return G4C_OK;
    }
    const float one = 1.f, zero = 0.f;
    const cublasComputeType_t ct = mode == G4C_CUDA_PREFILL_BF16 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    const long long nn = (long long)n * n;
    for (int h0 = 0; h0 < nh; h0 += V->heads_per) {
        const int hb = nh - h0 < V->heads_per ? nh - h0 : V->heads_per;
        /* column-major: S_h (keys × queries, ld n) = K_hᵀ · Q_h, i.e. row-major S_h[query][key] */
        G4C_BLAS(cublasGemmStridedBatchedEx(V->mm.blas, CUBLAS_OP_T, CUBLAS_OP_N, n, n, hd, &one, V->k + h0 * hd,
                                            CUDA_R_32F, ld, hd, V->q + h0 * hd, CUDA_R_32F, ld, hd, &zero, V->scores,
                                            CUDA_R_32F, n, nn, hb, ct, CUBLAS_GEMM_DEFAULT));
        k_softmax_rows<<<(unsigned)((size_t)n * hb), 256, 0, V->st>>>(V->scores, n);
        G4C_CHECK_LAUNCH();
        /* O_h (hd × queries, ld nh·hd) = V_h (hd × keys) · P_h (keys × queries) */
        G4C_BLAS(cublasGemmStridedBatchedEx(V->mm.blas, CUBLAS_OP_N, CUBLAS_OP_N, hd, n, n, &one, V->v + h0 * hd,
                                            CUDA_R_32F, ld, hd, V->scores, CUDA_R_32F, n, nn, &zero, V->att + h0 * hd,
                                            CUDA_R_32F, ld, hd, hb, ct, CUBLAS_GEMM_DEFAULT));
    }
    return G4C_OK;
}

/* §4.3 encoder blocks, f32 activations (x -> x); each block's last residual add also writes the next block's input
 * norm. bf16 mode: bf16 products (cu_matmul) and attention (flash_dim) or TF32 attention. */
g4c_status layers(cu_vision *V, const g4c_vision_cfg *c, int n, int mode, g4c_err *err) {
    const int Hv = c->n_embd, nh = c->n_head, hd = c->head_dim, F = c->ffn_dim;
    const int fused = mode == G4C_CUDA_PREFILL_BF16 && flash_dim(hd);
    G4C_CU(cu_rms_norm(V->st, V->a, Hv, V->x, Hv, V->layers[0].attn_norm, n, Hv, c->eps));
    for (int il = 0; il < c->n_layer; il++) {
        const vlayer *L = &V->layers[il];
        G4C_TRY(clip_linear(V, V->q, V->a, &L->q, n, err));
        G4C_TRY(clip_linear(V, V->k, V->a, &L->k, n, err));
        G4C_TRY(clip_linear(V, V->v, V->a, &L->v, n, err));
        if (fused) {
            G4C_TRY(heads_bf16(V, c, n, L, V->q, V->k, V->v, 0, err));
        } else {
            G4C_CU(cu_rms_norm(V->st, V->q, hd, V->q, hd, L->q_norm, n * nh, hd, c->eps));
            G4C_CU(cu_rms_norm(V->st, V->k, hd, V->k, hd, L->k_norm, n * nh, hd, c->eps));
            G4C_CU(cu_rms_norm(V->st, V->v, hd, V->v, hd, NULL, n * nh, hd, c->eps));
            k_rope2d<<<n, 128, 0, V->st>>>(V->q, nh, hd, V->cs, V->sn);
            G4C_CHECK_LAUNCH();
            k_rope2d<<<n, 128, 0, V->st>>>(V->k, nh, hd, V->cs, V->sn);
            G4C_CHECK_LAUNCH();
        }
        G4C_TRY(attention(V, c, n, mode, NULL, err));
        G4C_TRY(clip_linear(V, V->a, V->att, &L->o, n, err));
        G4C_CU(cu_rms_norm_add(V->st, V->x, V->a, L->post_attn_norm, n, Hv, c->eps, 1.f, V->a, L->pre_ffn_norm));
        G4C_TRY(clip_linear(V, V->f1, V->a, &L->gate, n, err));
        G4C_TRY(clip_linear(V, V->f2, V->a, &L->up, n, err));
        G4C_CU(cu_gelu_mul(V->st, V->f1, F, V->f1, F, V->f2, F, n, F));
        G4C_TRY(clip_linear(V, V->a, V->f1, &L->down, n, err));
        const int last = il + 1 == c->n_layer;
        G4C_CU(cu_rms_norm_add(V->st, V->x, V->a, L->post_ffn_norm, n, Hv, c->eps, 1.f, last ? NULL : V->a,
                               last ? NULL : V->layers[il + 1].attn_norm));
    }
    return G4C_OK;
}

/* The same blocks in bf16 mode with bf16 weights: each product reads bf16 activations written by the kernel before
 * it (the pre-norms, the attention, the gated GELU) and writes bf16 (q/k/v, gate/up: the next kernel's input) or f32
 * (o, down: the residual stream stays f32), so no conversion pass runs; bf16 copies live in the f32 scratch. */
g4c_status layers_bf16(cu_vision *V, const g4c_vision_cfg *c, int n, g4c_err *err) {
    const int Hv = c->n_embd;
    const size_t nF = (size_t)n * c->ffn_dim;
    __nv_bfloat16 *a16 = as16(V->tmp), *xc = a16 + (size_t)n * Hv; /* normed input, clamped inputs */
    __nv_bfloat16 *q = as16(V->q), *k = as16(V->k), *v = as16(V->v), *att = as16(V->att), *g = as16(V->f1),
                  *u = as16(V->f2);
    k_norm16<<<n, norm16_threads(Hv), 0, V->st>>>(V->x, NULL, NULL, a16, V->layers[0].attn_norm, Hv, c->eps);
    G4C_CHECK_LAUNCH();
    for (int il = 0; il < c->n_layer; il++) {
        const vlayer *L = &V->layers[il];
        G4C_TRY(clip_linear16(V, q, CUDA_R_16BF, a16, xc, &L->q, n, err));
        G4C_TRY(clip_linear16(V, k, CUDA_R_16BF, a16, xc, &L->k, n, err));
        G4C_TRY(clip_linear16(V, v, CUDA_R_16BF, a16, xc, &L->v, n, err));
        G4C_TRY(heads_bf16(V, c, n, L, q, k, v, 1, err));
        G4C_TRY(attention(V, c, n, G4C_CUDA_PREFILL_BF16, att, err));
        G4C_TRY(clip_linear16(V, V->a, CUDA_R_32F, att, xc, &L->o, n, err));
        k_norm16<<<n, norm16_threads(Hv), 0, V->st>>>(V->x, V->a, L->post_attn_norm, a16, L->pre_ffn_norm, Hv, c->eps);
        G4C_CHECK_LAUNCH();
        G4C_TRY(clip_linear16(V, g, CUDA_R_16BF, a16, xc, &L->gate, n, err));
        G4C_TRY(clip_linear16(V, u, CUDA_R_16BF, a16, xc, &L->up, n, err));
        k_gelu16<<<std::min(blocks((nF + 1) / 2, 256), 132u * 16), 256, 0, V->st>>>(g, u, nF);
        G4C_CHECK_LAUNCH();
        G4C_TRY(clip_linear16(V, V->a, CUDA_R_32F, g, xc, &L->down, n, err));
        const int last = il + 1 == c->n_layer;
        k_norm16<<<n, norm16_threads(Hv), 0, V->st>>>(V->x, V->a, L->post_ffn_norm, last ? NULL : a16,
                                                      last ? NULL : V->layers[il + 1].attn_norm, Hv, c->eps);
        G4C_CHECK_LAUNCH();
    }
    return G4C_OK;
}

} // namespace

extern "C" int g4c_cuda_vision_enabled(void) { return cu_env_switch("G4C_CUDA_VISION") != 0; }

extern "C" g4c_status g4c_cuda_vision_encode(g4c_cuda_model *M, const g4c_vision_w *w, const float *patches,
                                             const int32_t *pos, int n, float *out, g4c_err *err) {
    const g4c_config *cfg = M->c;
    const g4c_vision_cfg *c = &cfg->vision;
    int pw = 0, ph = 0;
    G4C_TRY(g4c_vision_grid(cfg, pos, n, &pw, &ph, err));
    if (!M->vision) G4C_TRY(vision_upload(M, w, err));
    cu_vision *V = M->vision;
    G4C_TRY(vision_reserve(V, cfg, n, err));
    const int Hv = c->n_embd, hd = c->head_dim, k = c->pool, k2 = k * k;
    const int P = 3 * c->patch_size * c->patch_size, n_out = n / k2;
    /* the fast precision (bf16 activations, flash attention) when the decoder's weights are quantized, as for its
     * prefill (docs/CUDA.md "Precision"): a 4-bit model's user gains nothing from an f32-exact tower */
    int mode = g4c_cuda_prefill_mode();
    if (cfg->n_layer > 0 && cu_fast_prefill(&M->layers[0].qkv)) mode = G4C_CUDA_PREFILL_BF16;

    /* host-side tables: the CPU's RoPE angles, and each output token's patches in ascending order */
    float *cs = (float *)malloc(sizeof(float) * (size_t)n * hd / 2), *sn = (float *)malloc(sizeof(float) * (size_t)n * hd / 2);
    int *idx = (int *)malloc(sizeof(int) * (size_t)n), *fill = (int *)calloc((size_t)n_out, sizeof(int));
    g4c_status st = cs && sn && idx && fill ? G4C_OK : G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    if (st == G4C_OK) {
        g4c_vision_rope_tables(c, pos, n, cs, sn);
        for (int i = 0; i < n; i++) {
            const int o = pos[2 * i] / k + (pw / k) * (pos[2 * i + 1] / k);
            idx[o * k2 + fill[o]++] = i;
        }
        cudaError_t e = cudaMemcpyAsync(V->tmp, patches, sizeof(float) * (size_t)n * P, cudaMemcpyHostToDevice, V->st);
        if (e == cudaSuccess) e = cudaMemcpyAsync(V->cs, cs, sizeof(float) * (size_t)n * hd / 2, cudaMemcpyHostToDevice, V->st);
        if (e == cudaSuccess) e = cudaMemcpyAsync(V->sn, sn, sizeof(float) * (size_t)n * hd / 2, cudaMemcpyHostToDevice, V->st);
        if (e == cudaSuccess) e = cudaMemcpyAsync(V->idx, idx, sizeof(int) * (size_t)n, cudaMemcpyHostToDevice, V->st);
        if (e == cudaSuccess) e = cudaMemcpyAsync(V->pos, pos, sizeof(int) * 2 * (size_t)n, cudaMemcpyHostToDevice, V->st);
        if (e == cudaSuccess) e = cudaStreamSynchronize(V->st); /* the host tables are freed below */
        if (e != cudaSuccess) st = G4C_FAIL(err, G4C_E_IO, "CUDA: image upload: %s", cudaGetErrorString(e));
    }
    free(cs), free(sn), free(idx), free(fill);
    G4C_TRY(st);

    /* §4.2 patch embedding and position table */
    k_patch_in<<<blocks((size_t)n * P, 256), 256, 0, V->st>>>(V->tmp, (size_t)n * P);
    G4C_CHECK_LAUNCH();
    G4C_TRY(cu_matmul(&V->mm, V->x, Hv, V->tmp, P, &V->patch, n, err));
    k_pos_add<<<n, 256, 0, V->st>>>(V->x, V->pos_table, V->pos, Hv, c->n_pos);
    G4C_CHECK_LAUNCH();

    /* §4.3 encoder blocks */
    const int bf16_layers = mode == G4C_CUDA_PREFILL_BF16 && flash_dim(hd) && V->w16 && Hv <= 1024 * NORM_PER;
    G4C_TRY(bf16_layers ? layers_bf16(V, c, n, err) : layers(V, c, n, mode, err));

    /* §4.4 pooling, §4.5 standardize, §4.6 projector */
    k_pool<<<n_out, 256, 0, V->st>>>(V->pooled, V->x, V->idx, k2, Hv, 1.0f / (float)k2, sqrtf((float)Hv),
                                     c->standardize ? V->std_bias : NULL, V->std_scale);
    G4C_CHECK_LAUNCH();
    G4C_CU(cu_rms_norm(V->st, V->pooled, Hv, V->pooled, Hv, NULL, n_out, Hv, c->eps));
    G4C_TRY(cu_matmul(&V->mm, V->out, cfg->n_embd, V->pooled, Hv, &V->proj, n_out, err));
    G4C_CU(cudaMemcpyAsync(out, V->out, sizeof(float) * (size_t)n_out * cfg->n_embd, cudaMemcpyDeviceToHost, V->st));
    G4C_CU(cudaStreamSynchronize(V->st));
    return G4C_OK;
}

extern "C" g4c_status g4c_cuda_op_vision_attention(float *out, const float *q, const float *k, const float *v, int n,
                                                   int n_head, int head_dim, int mode, g4c_err *err) {
    /* a tower of these head shapes, no weights: only the attention scratch matters */
    g4c_config cfg = {};
    g4c_vision_cfg *c = &cfg.vision;
    c->n_embd = c->ffn_dim = cfg.n_embd = 8, c->patch_size = c->pool = 1, c->n_head = n_head, c->head_dim = head_dim;
    cu_vision *V = (cu_vision *)calloc(1, sizeof *V);
    if (!V) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    const size_t bytes = sizeof(float) * (size_t)n * n_head * head_dim;
    g4c_status st = vision_stream(V, err);
    if (st == G4C_OK) st = vision_reserve(V, &cfg, n, err);
    cudaError_t e = cudaSuccess;
    if (st == G4C_OK) {
        e = cudaMemcpyAsync(V->q, q, bytes, cudaMemcpyHostToDevice, V->st);
        if (e == cudaSuccess) e = cudaMemcpyAsync(V->k, k, bytes, cudaMemcpyHostToDevice, V->st);
        if (e == cudaSuccess) e = cudaMemcpyAsync(V->v, v, bytes, cudaMemcpyHostToDevice, V->st);
        if (e == cudaSuccess) e = cudaMemsetAsync(V->att, 0xff, bytes, V->st); /* NaN poison: every output written */
    }
    if (st == G4C_OK && e == cudaSuccess && mode == G4C_CUDA_PREFILL_BF16 && flash_dim(head_dim))
        st = heads_bf16(V, c, n, NULL, V->q, V->k, V->v, 0, err);
    if (st == G4C_OK && e == cudaSuccess) st = attention(V, c, n, mode, NULL, err);
    if (st == G4C_OK && e == cudaSuccess) e = cudaMemcpyAsync(out, V->att, bytes, cudaMemcpyDeviceToHost, V->st);
    if (st == G4C_OK && e == cudaSuccess) e = cudaStreamSynchronize(V->st);
    if (st == G4C_OK && e != cudaSuccess) st = G4C_FAIL(err, G4C_E_IO, "CUDA: %s", cudaGetErrorString(e));
    cu_vision_free(V);
    return st;
}
