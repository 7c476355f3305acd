/* Attention inputs of one layer (spec §3.4-§3.5) in one launch: per (token, head) block, RMSNorm of the head
 * (q_norm / k_norm / unscaled for v), then rotary embedding on q and k — half-split pairs (i, i + hd/2), angle =
 * pos · inv_freq[i] rounded to f32 like HF, proportional RoPE's zero frequencies pass through — and the K/V rows
 * go straight into their cache slot. One thread per pair, so head_dim <= 1024. */
#include "kernels/cuda/cuda_int.cuh"

namespace {

__global__ void k_qkv_prep(const float *__restrict__ qkv, long ldq, int nq, int nkv, int hd, int k_eq_v,
                           const float *__restrict__ qw, const float *__restrict__ kw, float eps,
                           const float *__restrict__ inv_freq, int pos0, const int *__restrict__ pos_dev,
                           float *__restrict__ qout, float *kc, float *vc, int cap) {
    __shared__ float sh[32];
    cu_pdl_wait();
    cu_pdl_launch();
    const int t = blockIdx.x, h = blockIdx.y, half = hd / 2, i = threadIdx.x;
    const int pos = pos0 + (pos_dev ? *pos_dev : 0) + t;
    const float *row = qkv + t * ldq;
    const float *src, *w;
    float *dst;
    bool rope;
    if (h < nq) {
        src = row + h * hd, w = qw, rope = true;
        dst = qout + ((long)t * nq + h) * hd;
    } else if (h < nq + nkv) {
        const int kh = h - nq;
        src = row + (nq + kh) * hd, w = kw, rope = true;
        dst = kc + ((long)(pos % cap) * nkv + kh) * hd;
    } else {
        const int vh = h - nq - nkv;
        src = row + (k_eq_v ? nq + vh : nq + nkv + vh) * hd, w = nullptr, rope = false;
        dst = vc + ((long)(pos % cap) * nkv + vh) * hd;
    }
    const float a = i < half ? src[i] : 0.f, b = i < half ? src[i + half] : 0.f;
    float ss = a * a + b * b;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const int warp = i >> 5, lane = i & 31, nw = (blockDim.x + 31) >> 5;
    if (lane == 0) sh[warp] = ss;
    __syncthreads();
    float tot = 0.f;
    for (int k = 0; k < nw; k++) tot += sh[k];
    if (i >= half) return;
    const float inv = 1.0f / sqrtf(tot / (float)hd + eps);
    float x0 = a * inv, x1 = b * inv;
    if (w) x0 *= w[i], x1 *= w[i + half];
    if (rope) {
        const float ang = (float)pos * inv_freq[i];
        float s, c;
        sincosf(ang, &s, &c);
        const float r0 = x0 * c - x1 * s, r1 = x1 * c + x0 * s;
        x0 = r0, x1 = r1;
    }
    dst[i] = x0;
    dst[i + half] = x1;
}

} // namespace

cudaError_t cu_qkv_prep(cudaStream_t st, const float *qkv, long ldq, int n, int nq, int nkv, int hd, int k_eq_v,
                        const float *qw, const float *kw, float eps, const float *inv_freq, int pos0,
                        const int *pos_dev, float *qout, float *kc, float *vc, int cap) {
    if (n <= 0) return cudaSuccess;
    if (hd % 2 || hd > 2048) return cudaErrorInvalidValue;
    const int threads = ((hd / 2 + 31) / 32) * 32;
    const int heads = nq + (kc ? 2 * nkv : 0);
    return cu_launch(k_qkv_prep, dim3(n, heads), dim3(threads), 0, st, qkv, ldq, nq, nkv, hd, k_eq_v, qw, kw, eps,
                     inv_freq, pos0, pos_dev, qout, kc, vc, cap);
}
