/* Attention over the KV cache (kernels/ops.h g4c_attention semantics: scale 1, window bounds the past side, hi
 * the last visible position per query; ring slots p % cap). One block per (query head, token, key split): each
 * warp walks its share of the keys with an online softmax (running max, sum and a head_dim accumulator spread
 * over the lanes, element c on lane c % 32), the warps merge through shared memory. Decode (few tokens) splits the
 * keys over several blocks (flash-decoding); the last block of a (token, head) to finish merges the partial
 * results. Prefill (>= 8 tokens)
 * uses query tiles that share K/V tiles in shared memory (k_attn_tiled), in f32 on CUDA cores, or (the fast prefill
 * precision, cu_attention_tc) a flash-attention kernel on bf16 tensor cores (k_attn_mma).
 * Not yet: sharing K/V across the heads of a GQA group, bf16 KV. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_int.cuh"
#include "kernels/cuda/mma.cuh"

namespace {

constexpr int NW = 4;          /* warps per block */
int g_variant = -1;            /* G4C_CUDA_ATTN: 0 auto, 1 per-query kernel, 2/3/4 query tiles of 16/8/4 */
constexpr int MAX_SPLIT = 64;
constexpr int MAX_PART_BLOCKS = 2048; /* n_tok · n_head · n_split when splitting */

/* Merge the n_split partial results of (token t, head h) (each: hd accumulators, max, sum) into the output row; the
 * partials were written by other blocks, so they are read from L2 (__ldcg). */
__device__ void attn_merge(float *__restrict__ out, const float *pp, int n_head, int hd, int n_split, int t, int h,
                           cu_q8 qo) {
    float M = -INFINITY;
    for (int s = 0; s < n_split; s++) M = fmaxf(M, __ldcg(pp + s * (hd + 2) + hd));
    float L = 0.f;
    for (int s = 0; s < n_split; s++) {
        const float ms = __ldcg(pp + s * (hd + 2) + hd);
        if (ms != -INFINITY) L += __ldcg(pp + s * (hd + 2) + hd + 1) * expf(ms - M);
    }
    float *o = out + ((long)t * n_head + h) * hd;
    for (int c = threadIdx.x; c < hd; c += blockDim.x) {
        float a = 0.f;
        for (int s = 0; s < n_split; s++) {
            const float ms = __ldcg(pp + s * (hd + 2) + hd);
            if (ms != -INFINITY) a += __ldcg(pp + s * (hd + 2) + c) * expf(ms - M);
        }
        const float v = a / L;
        o[c] = v;
        if (qo.xq) cu_quant32(qo, t, n_head * hd, h * hd + c, v);
    }
}

template <int P> /* head_dim = 32·P */
__global__ void __launch_bounds__(NW * 32) k_attn(float *__restrict__ out, const float *__restrict__ q,
                                                  const float *__restrict__ kc, const float *__restrict__ vc, int cap,
                                                  int nkv, int n_head, int pos0, const int *__restrict__ pos_dev,
                                                  int window, const int *__restrict__ hi_arr, int n_split,
                                                  float *__restrict__ part, int *__restrict__ cnt, cu_q8 qo) {
    extern __shared__ float sm[]; /* [NW][hd] accumulators, then m[NW], l[NW] */
    constexpr int hd = 32 * P;
    cu_pdl_wait();
    cu_pdl_launch();
    const int h = blockIdx.x, t = blockIdx.y, sp = blockIdx.z;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int kvh = h / (n_head / nkv);
    const int pos = pos0 + (pos_dev ? *pos_dev : 0) + t;
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
            const float v = a / L;
            o[c] = v;
            if (qo.xq) cu_quant32(qo, t, n_head * hd, h * hd + c, v);
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
    /* the last of the n_split blocks of (t, h) to finish merges the partials (instead of a second launch); it resets
     * the counter for the next launch */
    __shared__ int last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(cnt + (long)t * n_head + h, 1) == n_split - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    attn_merge(out, part + ((long)t * n_head + h) * n_split * (hd + 2), n_head, hd, n_split, t, h, qo);
    if (threadIdx.x == 0) cnt[(long)t * n_head + h] = 0;
}

/* Prefill: one block per (query head, tile of TQ consecutive tokens). K/V tiles of KT keys go through shared memory
 * once for the TQ queries (instead of once per query); each warp owns TQ/NW queries and, per key tile, computes the
 * KT scores of a query (warp reductions), rescales once per tile and accumulates p·V. */
template <int P, int TQ>
__global__ void __launch_bounds__(NW * 32) k_attn_tiled(float *__restrict__ out, const float *__restrict__ q,
                                                        const float *__restrict__ kc, const float *__restrict__ vc,
                                                        int cap, int nkv, int n_head, int n, int pos0, int window,
                                                        const int *__restrict__ hi_arr) {
    constexpr int hd = 32 * P, KT = P <= 8 ? 16 : 8, QW = TQ / NW; /* 32 KB of K + V tiles */
    __shared__ __align__(16) float sk[KT * hd], sv[KT * hd];
    const int h = blockIdx.x, t0 = blockIdx.y * TQ, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int kvh = h / (n_head / nkv);
    /* the tile's key range: the union of its queries' [lo, hi] */
    int lo_min = INT_MAX, hi_max = -1;
    int lo_q[QW], hi_q[QW];
    for (int t = t0; t < t0 + TQ && t < n; t++) {
        const int pos = pos0 + t, lo = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
        const int hi = hi_arr ? hi_arr[t] : pos;
        lo_min = min(lo_min, lo), hi_max = max(hi_max, hi);
    }
    float qr[QW][P], acc[QW][P], m[QW], l[QW];
#pragma unroll
    for (int i = 0; i < QW; i++) {
        const int t = t0 + warp * QW + i, pos = pos0 + t;
        lo_q[i] = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
        hi_q[i] = t < n ? (hi_arr ? hi_arr[t] : pos) : -1; /* past the chunk: sees nothing */
        m[i] = -INFINITY, l[i] = 0.f;
#pragma unroll
        for (int p = 0; p < P; p++) {
            qr[i][p] = t < n ? q[((long)t * n_head + h) * hd + lane + 32 * p] : 0.f;
            acc[i][p] = 0.f;
        }
    }
    for (int j0 = lo_min; j0 <= hi_max; j0 += KT) {
        __syncthreads(); /* the previous tile is consumed */
        for (int e = threadIdx.x; e < KT * hd / 4; e += NW * 32) {
            const int kk = e / (hd / 4), c4 = e % (hd / 4), j = j0 + kk;
            float4 kv4 = make_float4(0.f, 0.f, 0.f, 0.f), vv4 = kv4;
            if (j <= hi_max) {
                const long off = ((long)(j % cap) * nkv + kvh) * hd;
                kv4 = reinterpret_cast<const float4 *>(kc + off)[c4];
                vv4 = reinterpret_cast<const float4 *>(vc + off)[c4];
            }
            reinterpret_cast<float4 *>(sk)[e] = kv4;
            reinterpret_cast<float4 *>(sv)[e] = vv4;
        }
        __syncthreads();
#pragma unroll
        for (int i = 0; i < QW; i++) {
            const int jlo = max(j0, lo_q[i]), jhi = min(j0 + KT - 1, hi_q[i]);
            if (jlo > jhi) continue; /* warp-uniform */
            float s[KT], tmax = -INFINITY;
#pragma unroll
            for (int kk = 0; kk < KT; kk++) {
                float d = 0.f;
#pragma unroll
                for (int p = 0; p < P; p++) d = fmaf(qr[i][p], sk[kk * hd + lane + 32 * p], d);
#pragma unroll
                for (int o = 16; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
                const int j = j0 + kk;
                s[kk] = j >= jlo && j <= jhi ? d : -INFINITY;
                tmax = fmaxf(tmax, s[kk]);
            }
            const float mn = fmaxf(m[i], tmax), corr = expf(m[i] - mn);
            l[i] *= corr;
#pragma unroll
            for (int p = 0; p < P; p++) acc[i][p] *= corr;
#pragma unroll
            for (int kk = 0; kk < KT; kk++) {
                const float pj = s[kk] == -INFINITY ? 0.f : expf(s[kk] - mn);
                l[i] += pj;
#pragma unroll
                for (int p = 0; p < P; p++) acc[i][p] = fmaf(pj, sv[kk * hd + lane + 32 * p], acc[i][p]);
            }
            m[i] = mn;
        }
    }
#pragma unroll
    for (int i = 0; i < QW; i++) {
        const int t = t0 + warp * QW + i;
        if (t >= n) continue;
        float *o = out + ((long)t * n_head + h) * hd;
#pragma unroll
        for (int p = 0; p < P; p++) o[lane + 32 * p] = acc[i][p] / l[i];
    }
}


/* Prefill on tensor cores: one block per (query head, 64 consecutive tokens). Warp w % 4 owns query rows
 * 16·(w % 4)..+15; for head dims above 256 the output dims are split over warp groups (w / 4: 256 each), each
 * group computing the same scores (their O accumulators, 128 f32 a thread, would not fit twice). Per tile of TK
 * keys: the f32 K/V rows (ring slot j % cap) are rounded to bf16 into shared memory, S = Q·Kᵀ by mma (Q rounded
 * to bf16 once), the mask (window, causal or image-block hi) sets invisible scores to -inf, an online softmax in
 * f32 keeps each row's max and sum, and P rounded to bf16 feeds O += P·V straight from the S accumulators. Rows
 * padded by 8 elements so that ldmatrix's eight 16-byte rows hit distinct banks. */
constexpr int TC_Q = 64, TC_K = 32;
template <int D> __host__ __device__ constexpr int tc_threads() { return 128 * (D > 256 ? D / 256 : 1); }
template <int D> constexpr size_t tc_smem() { return (size_t)(TC_Q + 2 * TC_K) * (D + 8) * 2; }

template <int D>
__global__ void __launch_bounds__(tc_threads<D>()) k_attn_mma(float *__restrict__ out, const float *__restrict__ q,
                                                           const float *__restrict__ kc, const float *__restrict__ vc,
                                                           int cap, int nkv, int n_head, int n, int pos0, int window,
                                                           const int *__restrict__ hi_arr) {
    constexpr int DO = D > 256 ? 256 : D, NT = tc_threads<D>(), LDS = D + 8, C4 = D / 4;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __nv_bfloat16 *sq = reinterpret_cast<__nv_bfloat16 *>(smem_raw), *sk = sq + TC_Q * LDS, *sv = sk + TC_K * LDS;
    __shared__ int blo, bhi;
    const int h = blockIdx.x, t0 = blockIdx.y * TC_Q, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wq = warp & 3, d0 = (warp >> 2) * DO, kvh = h / (n_head / nkv);
    auto lo_of = [&](int t) { const int p = pos0 + t; return window > 0 && p - window + 1 > 0 ? p - window + 1 : 0; };
    auto hi_of = [&](int t) { return t < n ? (hi_arr ? hi_arr[t] : pos0 + t) : -1; };
    if (threadIdx.x == 0) blo = INT_MAX, bhi = -1;
    __syncthreads();
    if (threadIdx.x < TC_Q && t0 + (int)threadIdx.x < n) {
        atomicMin(&blo, lo_of(t0 + threadIdx.x));
        atomicMax(&bhi, hi_of(t0 + threadIdx.x));
    }
    /* the query tile, rounded to bf16 */
    for (int e = threadIdx.x; e < TC_Q * C4; e += NT) {
        const int r = e / C4, c = e % C4, t = t0 + r;
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (t < n) v = reinterpret_cast<const float4 *>(q + ((long)t * n_head + h) * D)[c];
        *reinterpret_cast<uint2 *>(sq + r * LDS + 4 * c) = make_uint2(pack_bf16(v.x, v.y), pack_bf16(v.z, v.w));
    }
    __syncthreads();
    const int lo_min = blo, hi_max = bhi;
    const int r0 = t0 + wq * 16 + (lane >> 2), r1 = r0 + 8;
    const int lo0 = lo_of(r0), hi0 = hi_of(r0), lo1 = lo_of(r1), hi1 = hi_of(r1);
    /* the warp's key range (its 16 rows): tiles outside it are skipped */
    int wlo = min(r0 < n ? lo0 : INT_MAX, r1 < n ? lo1 : INT_MAX), whi = max(hi0, hi1);
#pragma unroll
    for (int sh = 1; sh < 32; sh <<= 1) {
        wlo = min(wlo, __shfl_xor_sync(0xffffffffu, wlo, sh));
        whi = max(whi, __shfl_xor_sync(0xffffffffu, whi, sh));
    }
    float o[DO / 8][4] = {};
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
    for (int j0 = lo_min; j0 <= hi_max; j0 += TC_K) {
        __syncthreads(); /* the previous tile is consumed */
        for (int e = threadIdx.x; e < TC_K * C4; e += NT) {
            const int kk = e / C4, c = e % C4, j = j0 + kk;
            float4 kv = make_float4(0.f, 0.f, 0.f, 0.f), vv = kv;
            if (j <= hi_max) {
                const long off = ((long)(j % cap) * nkv + kvh) * D;
                kv = reinterpret_cast<const float4 *>(kc + off)[c];
                vv = reinterpret_cast<const float4 *>(vc + off)[c];
            }
            *reinterpret_cast<uint2 *>(sk + kk * LDS + 4 * c) = make_uint2(pack_bf16(kv.x, kv.y), pack_bf16(kv.z, kv.w));
            *reinterpret_cast<uint2 *>(sv + kk * LDS + 4 * c) = make_uint2(pack_bf16(vv.x, vv.y), pack_bf16(vv.z, vv.w));
        }
        __syncthreads();
        if (j0 > whi || j0 + TC_K - 1 < wlo) continue; /* warp-uniform: no row of this warp sees the tile */
        float s[TC_K / 8][4] = {};
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            uint32_t a[4];
            ldsm4(a, sq + (wq * 16 + (lane & 15)) * LDS + kk * 16 + (lane >> 4) * 8);
#pragma unroll
            for (int np = 0; np < TC_K / 16; np++) {
                uint32_t b[4];
                ldsm4(b, sk + (np * 16 + (lane & 7) + (lane >> 4) * 8) * LDS + kk * 16 + ((lane >> 3) & 1) * 8);
                mma16816(s[2 * np], a, b[0], b[1]);
                mma16816(s[2 * np + 1], a, b[2], b[3]);
            }
        }
#pragma unroll
        for (int t = 0; t < TC_K / 8; t++)
#pragma unroll
            for (int c = 0; c < 4; c++) {
                const int j = j0 + t * 8 + 2 * (lane & 3) + (c & 1);
                const bool vis = c < 2 ? j >= lo0 && j <= hi0 : j >= lo1 && j <= hi1;
                if (!vis) s[t][c] = -INFINITY;
            }
        uint32_t pf[TC_K / 16][4];
        softmax_tile(s, m0, m1, l0, l1, o, pf);
        pv_tile(o, pf, sv + d0, LDS);
    }
#pragma unroll
    for (int sh = 1; sh < 4; sh <<= 1) {
        l0 += __shfl_xor_sync(0xffffffffu, l0, sh);
        l1 += __shfl_xor_sync(0xffffffffu, l1, sh);
    }
    const float i0 = l0 > 0.f ? 1.0f / l0 : 0.f, i1 = l1 > 0.f ? 1.0f / l1 : 0.f;
#pragma unroll
    for (int i = 0; i < DO / 8; i++) {
        const int d = d0 + i * 8 + 2 * (lane & 3);
        if (r0 < n)
            *reinterpret_cast<float2 *>(out + ((long)r0 * n_head + h) * D + d) = make_float2(o[i][0] * i0, o[i][1] * i0);
        if (r1 < n)
            *reinterpret_cast<float2 *>(out + ((long)r1 * n_head + h) * D + d) = make_float2(o[i][2] * i1, o[i][3] * i1);
    }
}

template <int D>
cudaError_t launch_mma(cudaStream_t st, float *out, const float *q, const cu_kv *kv, int n, int pos0, int n_head) {
    constexpr size_t smem = tc_smem<D>();
    static bool attr = false; /* per instantiation, once per process */
    if (!attr) {
        const cudaError_t e = cudaFuncSetAttribute(k_attn_mma<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return e;
        attr = true;
    }
    k_attn_mma<D><<<dim3(n_head, (n + TC_Q - 1) / TC_Q), tc_threads<D>(), smem, st>>>(
        out, q, kv->k, kv->v, kv->cap, kv->n_kv_head, n_head, n, pos0, kv->window, kv->hi);
    return cudaGetLastError();
}

} // namespace

int cu_attention_tc_ok(int head_dim) {
    static const int env = cu_env_switch("G4C_CUDA_ATTN_TC");
    return env != 0 && (head_dim == 32 || head_dim == 64 || head_dim == 128 || head_dim == 256 || head_dim == 512);
}

cudaError_t cu_attention_tc(cudaStream_t st, float *out, const float *q, const cu_kv *kv, int n, int pos0, int n_head) {
    if (n <= 0) return cudaSuccess;
    if (n_head % kv->n_kv_head) return cudaErrorInvalidValue;
    switch (kv->head_dim) {
    case 32: return launch_mma<32>(st, out, q, kv, n, pos0, n_head);
    case 64: return launch_mma<64>(st, out, q, kv, n, pos0, n_head);
    case 128: return launch_mma<128>(st, out, q, kv, n, pos0, n_head);
    case 256: return launch_mma<256>(st, out, q, kv, n, pos0, n_head);
    case 512: return launch_mma<512>(st, out, q, kv, n, pos0, n_head);
    default: return cudaErrorInvalidValue;
    }
}


void cu_attention_set_variant(int v) { g_variant = v; }
int cu_attention_variant(void) {
    if (g_variant < 0) {
        const char *e = getenv("G4C_CUDA_ATTN");
        g_variant = !e ? 0 : !strcmp(e, "query") ? 1 : !strcmp(e, "t16") ? 2 : !strcmp(e, "t8") ? 3 : !strcmp(e, "t4") ? 4 : 0;
    }
    return g_variant;
}

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

/* [MAX_PART_BLOCKS] merge counters (int, zero between launches), then the partial results */
size_t cu_attention_part_floats(int max_head_dim) { return (size_t)MAX_PART_BLOCKS * (max_head_dim + 3); }
cudaError_t cu_attention_part_init(float *part) { return cudaMemset(part, 0, sizeof(int) * MAX_PART_BLOCKS); }

cudaError_t cu_attention(cudaStream_t st, float *out, const float *q, const cu_kv *kv, int n, int pos0,
                         const int *pos_dev, int n_head, int n_split, float *part, cu_q8 qo) {
    if (n <= 0) return cudaSuccess;
    const int hd = kv->head_dim;
    if (hd % 32 || hd > 512 || n_head % kv->n_kv_head) return cudaErrorInvalidValue;
    if (n_split < 1) n_split = 1;
    if (n_split > 1 && (n * n_head * n_split > MAX_PART_BLOCKS || !part)) return cudaErrorInvalidValue;
    if (g_variant < 0) cu_attention_variant();
    if (n_split == 1 && n >= 4 && g_variant != 1 && !pos_dev && !qo.xq) { /* prefill: query tiles share K/V loads */
        int tq = g_variant == 2 ? 16 : g_variant == 3 ? 8 : g_variant == 4 ? 4 : 0;
        if (!tq) /* auto: 8 queries a tile (fastest at 26B/31B shapes), 4 when that leaves SMs short of blocks
                    (E4B's 8 heads); 16 never won (bench_cuda --attention, docs/CUDA.md) */
            tq = n_head * ((n + 7) / 8) >= 4 * 132 ? 8 : 4;
        const dim3 tgrid(n_head, (n + tq - 1) / tq);
#define G4C_ATTN_T(P)                                                                                                \
    case P:                                                                                                          \
        if (tq == 16)                                                                                                \
            k_attn_tiled<P, 16><<<tgrid, NW * 32, 0, st>>>(out, q, kv->k, kv->v, kv->cap, kv->n_kv_head, n_head, n,  \
                                                           pos0, kv->window, kv->hi);                                \
        else if (tq == 8)                                                                                            \
            k_attn_tiled<P, 8><<<tgrid, NW * 32, 0, st>>>(out, q, kv->k, kv->v, kv->cap, kv->n_kv_head, n_head, n,   \
                                                          pos0, kv->window, kv->hi);                                 \
        else                                                                                                         \
            k_attn_tiled<P, 4><<<tgrid, NW * 32, 0, st>>>(out, q, kv->k, kv->v, kv->cap, kv->n_kv_head, n_head, n,   \
                                                          pos0, kv->window, kv->hi);                                 \
        return cudaGetLastError();
        switch (hd / 32) {
            G4C_ATTN_T(1)
            G4C_ATTN_T(2)
            G4C_ATTN_T(4)
            G4C_ATTN_T(8)
            G4C_ATTN_T(16)
        default: break; /* other head sizes: the per-query kernel below */
        }
#undef G4C_ATTN_T
    }
    const dim3 grid(n_head, n, n_split);
    const size_t smem = sizeof(float) * (NW * hd + 2 * NW);
#define G4C_ATTN_P(P)                                                                                             \
    case P:                                                                                                       \
        e = cu_launch(k_attn<P>, grid, dim3(NW * 32), smem, st, out, q, kv->k, kv->v, kv->cap, kv->n_kv_head,     \
                      n_head, pos0, pos_dev, kv->window, kv->hi, n_split, part + MAX_PART_BLOCKS, (int *)part, qo); \
        break;
    cudaError_t e = cudaSuccess;
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
    return e;
}
