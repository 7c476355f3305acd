/* Attention over the KV cache (kernels/ops.h g4c_attention semantics: scale 1, window bounds the past side, hi
 * the last visible position per query; ring slots p % cap). One block per (query head, token, key split): each
 * warp walks its share of the keys with an online softmax (running max, sum and a head_dim accumulator spread
 * over the lanes, element c on lane c % 32), the warps merge through shared memory. Decode (few tokens) splits the
 * keys over several blocks (flash-decoding) and a second kernel merges the partial results.
 * Not yet: tiling queries that share keys (prefill re-reads K/V per head and token from L2), bf16 KV. */
#include <math.h>

#include "kernels/cuda/cuda_int.cuh"

namespace {

constexpr int NW = 4;          /* warps per block */
constexpr int MAX_SPLIT = 64;
constexpr int MAX_PART_BLOCKS = 2048; /* n_tok · n_head · n_split when splitting */

template <int P> /* head_dim = 32·P */
__global__ void __launch_bounds__(NW * 32) k_attn(float *__restrict__ out, const float *__restrict__ q,
                                                  const float *__restrict__ kc, const float *__restrict__ vc, int cap,
                                                  int nkv, int n_head, int pos0, int window,
                                                  const int *__restrict__ hi_arr, int n_split, float *__restrict__ part) {
    extern __shared__ float sm[]; /* [NW][hd] accumulators, then m[NW], l[NW] */
    constexpr int hd = 32 * P;
    const int h = blockIdx.x, t = blockIdx.y, sp = blockIdx.z;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int kvh = h / (n_head / nkv);
    const int pos = pos0 + t;
    const int lo = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
    const int hi = hi_arr ? hi_arr[t] : pos;
    const int len = hi - lo + 1, chunk = (len + n_split - 1) / n_split;
    const int j0 = lo + sp * chunk, j1 = min(hi + 1, j0 + chunk);

    const float *qh = q + ((long)t * n_head + h) * hd;
    float qr[P], acc[P];
#pragma unroll
    for (int p = 0; p < P; p++) qr[p] = qh[lane + 32 * p], acc[p] = 0.f;
    float m = -INFINITY, l = 0.f;
    for (int j = j0 + warp; j < j1; j += NW) {
        const long off = ((long)(j % cap) * nkv + kvh) * hd;
        const float *kj = kc + off, *vj = vc + off;
        float kv[P], vv[P];
#pragma unroll
        for (int p = 0; p < P; p++) kv[p] = kj[lane + 32 * p], vv[p] = vj[lane + 32 * p];
        float s = 0.f;
#pragma unroll
        for (int p = 0; p < P; p++) s = fmaf(qr[p], kv[p], s);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        const float mn = fmaxf(m, s), corr = expf(m - mn), pj = expf(s - mn);
        l = l * corr + pj;
#pragma unroll
        for (int p = 0; p < P; p++) acc[p] = fmaf(pj, vv[p], acc[p] * corr);
        m = mn;
    }
    float *sacc = sm, *sm_m = sm + NW * hd, *sm_l = sm_m + NW;
#pragma unroll
    for (int p = 0; p < P; p++) sacc[warp * hd + lane + 32 * p] = acc[p];
    if (lane == 0) sm_m[warp] = m, sm_l[warp] = l;
    __syncthreads();
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < NW; w++) M = fmaxf(M, sm_m[w]);
    float scale[NW], L = 0.f;
#pragma unroll
    for (int w = 0; w < NW; w++) {
        scale[w] = sm_m[w] == -INFINITY ? 0.f : expf(sm_m[w] - M);
        L += sm_l[w] * scale[w];
    }
    if (n_split == 1) {
        float *o = out + ((long)t * n_head + h) * hd;
        for (int c = threadIdx.x; c < hd; c += NW * 32) {
            float a = 0.f;
#pragma unroll
            for (int w = 0; w < NW; w++) a += sacc[w * hd + c] * scale[w];
            o[c] = a / L;
        }
        return;
    }
    float *pp = part + (((long)t * n_head + h) * n_split + sp) * (hd + 2);
    for (int c = threadIdx.x; c < hd; c += NW * 32) {
        float a = 0.f;
#pragma unroll
        for (int w = 0; w < NW; w++) a += sacc[w * hd + c] * scale[w];
        pp[c] = a;
    }
    if (threadIdx.x == 0) pp[hd] = M, pp[hd + 1] = L;
}

__global__ void k_attn_combine(float *__restrict__ out, const float *__restrict__ part, int n_head, int hd, int n_split) {
    const int h = blockIdx.x, t = blockIdx.y;
    const float *pp = part + ((long)t * n_head + h) * n_split * (hd + 2);
    float M = -INFINITY;
    for (int s = 0; s < n_split; s++) M = fmaxf(M, pp[s * (hd + 2) + hd]);
    float L = 0.f;
    for (int s = 0; s < n_split; s++) {
        const float ms = pp[s * (hd + 2) + hd];
        if (ms != -INFINITY) L += pp[s * (hd + 2) + hd + 1] * expf(ms - M);
    }
    float *o = out + ((long)t * n_head + h) * hd;
    for (int c = threadIdx.x; c < hd; c += blockDim.x) {
        float a = 0.f;
        for (int s = 0; s < n_split; s++) {
            const float ms = pp[s * (hd + 2) + hd];
            if (ms != -INFINITY) a += pp[s * (hd + 2) + c] * expf(ms - M);
        }
        o[c] = a / L;
    }
}

} // namespace

int cu_attention_splits(int n_tok, int n_head, int max_len) {
    const int blocks = n_tok * n_head;
    if (blocks >= 264) return 1; /* two blocks per SM already */
    int s = (264 + blocks - 1) / blocks;
    const int by_len = (max_len + 4 * NW - 1) / (4 * NW); /* at least 4 keys per warp */
    if (s > by_len) s = by_len;
    if (s > MAX_SPLIT) s = MAX_SPLIT;
    while (s > 1 && blocks * s > MAX_PART_BLOCKS) s--;
    return s < 1 ? 1 : s;
}

size_t cu_attention_part_floats(int max_head_dim) { return (size_t)MAX_PART_BLOCKS * (max_head_dim + 2); }

cudaError_t cu_attention(cudaStream_t st, float *out, const float *q, const cu_kv *kv, int n, int pos0, int n_head,
                         int n_split, float *part) {
    if (n <= 0) return cudaSuccess;
    const int hd = kv->head_dim;
    if (hd % 32 || hd > 512 || n_head % kv->n_kv_head) return cudaErrorInvalidValue;
    if (n_split < 1) n_split = 1;
    if (n_split > 1 && (n * n_head * n_split > MAX_PART_BLOCKS || !part)) return cudaErrorInvalidValue;
    const dim3 grid(n_head, n, n_split);
    const size_t smem = sizeof(float) * (NW * hd + 2 * NW);
#define G4C_ATTN_P(P)                                                                                               \
    case P:                                                                                                         \
        k_attn<P><<<grid, NW * 32, smem, st>>>(out, q, kv->k, kv->v, kv->cap, kv->n_kv_head, n_head, pos0, kv->window, \
                                               kv->hi, n_split, part);                                              \
        break;
    switch (hd / 32) {
        G4C_ATTN_P(1)
        G4C_ATTN_P(2)
        G4C_ATTN_P(3)
        G4C_ATTN_P(4)
        G4C_ATTN_P(5)
        G4C_ATTN_P(6)
        G4C_ATTN_P(7)
        G4C_ATTN_P(8)
        G4C_ATTN_P(9)
        G4C_ATTN_P(10)
        G4C_ATTN_P(11)
        G4C_ATTN_P(12)
        G4C_ATTN_P(13)
        G4C_ATTN_P(14)
        G4C_ATTN_P(15)
        G4C_ATTN_P(16)
    default: return cudaErrorInvalidValue;
    }
#undef G4C_ATTN_P
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess || n_split == 1) return e;
    k_attn_combine<<<dim3(n_head, n), 128, 0, st>>>(out, part, n_head, hd, n_split);
    return cudaGetLastError();
}
