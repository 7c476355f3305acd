/* MoE routing (spec §3.8, HF Gemma4TextRouter): softmax over the router logits, top-k by probability (ties to the
 * lower expert id), weights renormalized over the k and scaled per expert. One thread per token: E is at most a few
 * hundred, and this runs once per layer. The experts themselves run in forward.cu (gathered GEMV for decode, a
 * per-expert loop over cuBLAS for prefill). */
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

} // namespace

cudaError_t cu_router_topk(cudaStream_t st, float *logits, int n, int n_expert, int k, const float *per_expert_scale,
                           int *sel, float *wt) {
    if (n <= 0) return cudaSuccess;
    if (k > n_expert) return cudaErrorInvalidValue;
    k_router_topk<<<(n + 63) / 64, 64, 0, st>>>(logits, n, n_expert, k, per_expert_scale, sel, wt);
    return cudaGetLastError();
}
