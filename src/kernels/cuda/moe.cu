/* MoE routing (spec §3.8, HF Gemma4TextRouter): softmax over the router logits, top-k by probability (ties to the
 * lower expert id), weights renormalized over the k and scaled per expert. One warp per token (a thread per token
 * for unusual sizes). The experts themselves run in forward.cu (gathered GEMV for decode; for prefill the pairs
 * grouped by expert, cu_moe_plan, then cu_qgemv_grouped; unquantized experts: a per-expert loop over cuBLAS). */
#include <limits.h>
#include <math.h>

#include "kernels/cuda/cuda_int.cuh"

namespace {

__global__ void k_router_topk(float *logits, int n, int E, int K, const float *__restrict__ pes, int *sel, float *wt) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) return;
    float *lg = logits + (long)t * E;
    float mx = -INFINITY, sum = 0.f;
    for (int e = 0; e < E; e++) mx = fmaxf(mx, lg[e]);
    for (int e = 0; e < E; e++) sum += (lg[e] = expf(lg[e] - mx));
    for (int e = 0; e < E; e++) lg[e] /= sum;
    int *s = sel + (long)t * K;
    float *w = wt + (long)t * K, tot = 0.f;
    for (int k = 0; k < K; k++) {
        int best = -1;
        for (int e = 0; e < E; e++) {
            bool taken = false;
            for (int j = 0; j < k; j++) taken |= s[j] == e;
            if (!taken && (best < 0 || lg[e] > lg[best])) best = e;
        }
        s[k] = best;
        w[k] = lg[best];
        tot += w[k];
    }
    for (int k = 0; k < K; k++) w[k] = w[k] / tot * pes[s[k]];
}

/* One warp per token, E <= 32·EPL: each lane holds EPL probabilities in registers; softmax and the k arg-max
 * rounds are warp reductions (an expert already chosen is set to -1). */
template <int EPL>
__global__ void k_router_topk_warp(const float *__restrict__ logits, int n, int E, int K, const float *__restrict__ pes,
                                   int *sel, float *wt) {
    cu_pdl_wait();
    cu_pdl_launch();
    const int t = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (t >= n) return;
    const float *lg = logits + (long)t * E;
    float v[EPL], mx = -INFINITY;
#pragma unroll
    for (int i = 0; i < EPL; i++) {
        const int e = lane + 32 * i;
        v[i] = e < E ? lg[e] : -INFINITY;
        mx = fmaxf(mx, v[i]);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < EPL; i++) sum += (v[i] = lane + 32 * i < E ? expf(v[i] - mx) : 0.f);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
#pragma unroll
    for (int i = 0; i < EPL; i++) v[i] = lane + 32 * i < E ? (v[i] / sum >= 0.f ? v[i] / sum : 0.f) : -1.f; /* NaN -> 0 */
    float tot = 0.f, w_sel = 0.f;
    int my_sel = 0;
    for (int k = 0; k < K; k++) {
        float bv = -2.f;
        int bi = INT_MAX;
#pragma unroll
        for (int i = 0; i < EPL; i++)
            if (v[i] > bv) bv = v[i], bi = lane + 32 * i; /* lane-local: increasing ids, so ties keep the lower */
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (ov > bv || (ov == bv && oi < bi)) bv = ov, bi = oi;
        }
#pragma unroll
        for (int i = 0; i < EPL; i++)
            if (lane + 32 * i == bi) v[i] = -1.f;
        tot += bv;
        if (lane == k) my_sel = bi, w_sel = bv;
    }
    if (lane < K) {
        sel[(long)t * K + lane] = my_sel;
        wt[(long)t * K + lane] = w_sel / tot * pes[my_sel];
    }
}

/* One block: count the pairs of each expert, offsets by a prefix sum, then each pair's slot in its expert's run;
 * and the work tiles (cu_moe_plan). */
__global__ void k_moe_plan(const int *__restrict__ sel, int n_pairs, int E, int *__restrict__ off, int *__restrict__ list,
                           int *__restrict__ tiles) {
    extern __shared__ int sh[]; /* counts [E + 1], then cursors [E] */
    int *cnt = sh, *cur = sh + E + 1;
    for (int e = threadIdx.x; e <= E; e += blockDim.x) cnt[e] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < n_pairs; i += blockDim.x) {
        const int e = sel[i];
        if (e >= 0 && e < E) atomicAdd(&cnt[e + 1], 1);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int e = 0; e < E; e++) cnt[e + 1] += cnt[e];
        int nt = 0;
        for (int e = 0; e < E; e++)
            for (int p = cnt[e]; p < cnt[e + 1]; p += CU_MOE_TILE) tiles[1 + 2 * nt] = e, tiles[2 + 2 * nt] = p, nt++;
        tiles[0] = nt;
    }
    __syncthreads();
    for (int e = threadIdx.x; e <= E; e += blockDim.x) {
        off[e] = cnt[e];
        if (e < E) cur[e] = cnt[e];
    }
    __syncthreads();
    for (int i = threadIdx.x; i < n_pairs; i += blockDim.x) {
        const int e = sel[i];
        if (e >= 0 && e < E) list[atomicAdd(&cur[e], 1)] = i;
    }
}

} // namespace

cudaError_t cu_moe_plan(cudaStream_t st, const int *sel, int n_pairs, int n_expert, int *off, int *list, int *tiles) {
    if (n_expert < 1 || n_expert > 4096) return cudaErrorInvalidValue;
    k_moe_plan<<<1, 1024, sizeof(int) * (2 * n_expert + 1), st>>>(sel, n_pairs, n_expert, off, list, tiles);
    return cudaGetLastError();
}

cudaError_t cu_router_topk(cudaStream_t st, float *logits, int n, int n_expert, int k, const float *per_expert_scale,
                           int *sel, float *wt) {
    if (n <= 0) return cudaSuccess;
    if (k > n_expert) return cudaErrorInvalidValue;
    if (k <= 32 && n_expert <= 256) { /* the released models: 128 experts, top 8 */
        const int epl = (n_expert + 31) / 32, blocks = (n + 3) / 4;
        void (*kf)(const float *, int, int, int, const float *, int *, float *) =
            epl <= 1 ? k_router_topk_warp<1> : epl <= 2 ? k_router_topk_warp<2> : epl <= 4 ? k_router_topk_warp<4>
                                                                                    : k_router_topk_warp<8>;
        return cu_launch(kf, dim3(blocks), dim3(128), 0, st, (const float *)logits, n, n_expert, k, per_expert_scale,
                         sel, wt);
    }
    k_router_topk<<<(n + 63) / 64, 64, 0, st>>>(logits, n, n_expert, k, per_expert_scale, sel, wt);
    return cudaGetLastError();
}
