/* Quantized weights on the device (cuda_int.cuh cu_mat CU_Q*, CU_MLX*): decode GEMV against int8 activations,
 * dequantized bf16 tiles for prefill, embedding rows, random blocks for benchmarks.
 *
 * Every type is read in "chunks" of 16 (Q8_0, MLX8: 32) quant bytes holding two runs of 16 elements, each run with one
 * multiplier and one offset: value = s·q − m (q a signed or unsigned byte). A warp owns an output row; its lanes
 * take consecutive chunks, so each load instruction of the warp reads 512 contiguous bytes (16 per lane). The
 * activations are quantized once per matrix product to int8 in blocks of 32 with an f32 scale (like the CPU's
 * integer kernels), so a run is four dp4a against one 16-byte activation load:
 *   Σ (s·q − m)·dx·xq = dx·(s·Σ q·xq − m·Σ xq).
 * Chunk maps (element offsets inside a row, b = block, c = chunk inside the block):
 *   Q4_0  chunk = block b: low nibbles -> 32b + 0..15, high -> 32b + 16..31, q − 8
 *   Q8_0  chunk = block b: bytes 0..15 -> 32b + 0..15, 16..31 -> 32b + 16..31
 *   Q4_K  c = 0..7, pair p = c/2, l0 = 16·(c%2): quant bytes 32p + l0.., low nibbles -> 256b + 64p + l0 + 0..15
 *         (sub-block 2p), high -> +32 (sub-block 2p + 1); s = d·sc, m = dmin·min (6-bit, ggml get_scale_min_k4)
 *   Q5_K  Q4_K with bit 2p / 2p + 1 of qh[l0..] as the 5th bit
 *   Q6_K  c = 0..7, half n = c/4, l0 = 16·(c%4): ql bytes 64n + l0.., qh bytes 32n + l0%32..; low nibbles + qh bits
 *         (0 or 2) -> 256b + 128n + l0 + 0..15, high nibbles + qh bits (4 or 6) -> +64; s = d·sc[e/16], q − 32
 *   Q5_0  Q4_0 with bit j of qh as the 5th bit of element 32b + j, q − 16
 *   MLX4  chunk = 32 elements b: low nibbles -> 32b + 0..15, high -> 32b + 16..31 (repacked at upload); s = scale,
 *         m = −bias of group (32b)/group (both runs: a group holds whole chunks)
 *   MLX8  chunk = 32 elements b: bytes 0..15 -> 32b + 0..15, 16..31 -> +16, stored as code − 128 (signed), q + 128 */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_int.cuh"
#include "kernels/cuda/mma.cuh"

namespace {

int g_quant = -1, g_qprefill = -1;
int g_ksplit = 0; /* warps per row of the decode GEMV: 0 = by shape, else 1, 2 or 4 (benchmarks) */

struct run2 {
    uint32_t a[4], b[4]; /* the two runs' 16 bytes each (non-negative codes, or signed for Q8_0) */
    float sa, sb, ma, mb;
    int oa;     /* code offset: value = s·(q − oa) − m (Q4_0 8, Q6_K 32, else 0) */
    int ea, eb; /* element offsets in the row */
};

/* The raw bytes of one chunk, loaded before any is decoded (several chunks in flight per lane). */
struct raw {
    uint4 q, x, m;
};

__device__ __forceinline__ uint4 ld16(const void *p) { return __ldg(reinterpret_cast<const uint4 *>(p)); }
__device__ __forceinline__ uint32_t ld2(const void *p) { return __ldg(reinterpret_cast<const unsigned short *>(p)); }
__device__ __forceinline__ float h2f(uint32_t bits) { return __half2float(__ushort_as_half((unsigned short)bits)); }
__device__ __forceinline__ uint32_t byte_of(uint32_t w, int i) { return (w >> (8 * i)) & 0xffu; }

template <int DT> struct qt;
template <> struct qt<CU_Q4_0> { static constexpr int CPB = 1, SUM = 1; };
template <> struct qt<CU_Q8_0> { static constexpr int CPB = 1, SUM = 0; };
template <> struct qt<CU_Q4_K> { static constexpr int CPB = 8, SUM = 1; };
template <> struct qt<CU_Q5_K> { static constexpr int CPB = 8, SUM = 1; };
template <> struct qt<CU_Q6_K> { static constexpr int CPB = 8, SUM = 1; };
template <> struct qt<CU_Q5_0> { static constexpr int CPB = 1, SUM = 1; };
template <> struct qt<CU_MLX4> { static constexpr int CPB = 1, SUM = 1; };
template <> struct qt<CU_MLX8> { static constexpr int CPB = 1, SUM = 1; };
/* Every GPU quant type once, for the launchers' dispatch switches: X(T) per type. */
#define G4C_CU_QTYPES(X) X(CU_Q4_0) X(CU_Q8_0) X(CU_Q4_K) X(CU_Q5_K) X(CU_Q6_K) X(CU_Q5_0) X(CU_MLX4) X(CU_MLX8)

struct qmat {
    const uint8_t *q, *m, *h, *s;
    int nb;
    int gsh; /* MLX: log2(chunks per group), the group of chunk i of the matrix is i >> gsh */
};

/* The 4 bits of n (0..15) to bit 0 of each byte (Q5_0's fifth bits, 4 elements a word). */
__device__ __forceinline__ uint32_t spread4(uint32_t n) { return (n * 0x00204081u) & 0x01010101u; }

/* K-quant 6-bit scale and min of sub-block j (0..7) from the 12 bytes sc0 | sc1 | sc2 (three words). */
__device__ __forceinline__ void scale_min(int j, uint32_t w0, uint32_t w1, uint32_t w2, float &sc, float &mn) {
    if (j < 4) {
        sc = (float)(byte_of(w0, j) & 63);
        mn = (float)(byte_of(w1, j) & 63);
    } else {
        const int i = j - 4;
        sc = (float)((byte_of(w2, i) & 0xF) | ((byte_of(w0, i) >> 6) << 4));
        mn = (float)((byte_of(w2, i) >> 4) | ((byte_of(w1, i) >> 6) << 4));
    }
}

template <int DT>
__device__ __forceinline__ void load(const qmat &w, long row, int ci, raw &r) {
    if constexpr (DT == CU_Q4_0) {
        const long base = row * w.nb + ci;
        r.q = ld16(w.q + base * 16);
        r.m.x = ld2(w.m + base * 2);
    } else if constexpr (DT == CU_Q8_0) {
        const long base = row * w.nb + ci;
        r.q = ld16(w.q + base * 32);
        r.x = ld16(w.q + base * 32 + 16);
        r.m.x = ld2(w.m + base * 2);
    } else if constexpr (DT == CU_Q4_K || DT == CU_Q5_K) {
        const int blk = ci >> 3, c = ci & 7, p = c >> 1, l0 = (c & 1) * 16;
        const long base = row * w.nb + blk;
        r.q = ld16(w.q + base * 128 + 32 * p + l0);
        r.m = ld16(w.m + base * 16);
        if constexpr (DT == CU_Q5_K) r.x = ld16(w.h + base * 32 + l0);
    } else if constexpr (DT == CU_Q6_K) {
        const int blk = ci >> 3, c = ci & 7, hn = c >> 2, l0 = 16 * (c & 3);
        const long base = row * w.nb + blk;
        r.q = ld16(w.q + base * 128 + 64 * hn + l0);
        r.x = ld16(w.h + base * 64 + 32 * hn + (l0 & 31));
        const int ia = 8 * hn + (l0 >> 4);
        r.m.x = ld2(w.s + base * 2);
        r.m.y = __ldg(w.m + base * 16 + ia);
        r.m.z = __ldg(w.m + base * 16 + ia + 4);
    } else if constexpr (DT == CU_Q5_0) {
        const long base = row * w.nb + ci;
        r.q = ld16(w.q + base * 16);
        r.m.x = ld2(w.m + base * 2);
        r.m.y = __ldg(reinterpret_cast<const unsigned *>(w.h) + base);
    } else { /* MLX4, MLX8: the chunk's quants, its group's f32 scale and bias */
        const long base = row * w.nb + ci;
        if constexpr (DT == CU_MLX4) r.q = ld16(w.q + base * 16);
        else {
            r.q = ld16(w.q + base * 32);
            r.x = ld16(w.q + base * 32 + 16);
        }
        const float2 sb = __ldg(reinterpret_cast<const float2 *>(w.m) + (base >> w.gsh));
        r.m.x = __float_as_uint(sb.x), r.m.y = __float_as_uint(sb.y);
    }
}

template <int DT>
__device__ __forceinline__ void decode(const raw &rw, int ci, run2 &r) {
    const uint32_t v[4] = {rw.q.x, rw.q.y, rw.q.z, rw.q.w};
    if constexpr (DT == CU_Q4_0) {
#pragma unroll
        for (int k = 0; k < 4; k++) {
            r.a[k] = v[k] & 0x0F0F0F0Fu;
            r.b[k] = (v[k] >> 4) & 0x0F0F0F0Fu;
        }
        r.sa = r.sb = h2f(rw.m.x);
        r.ma = r.mb = 0.f;
        r.oa = 8;
        r.ea = 32 * ci, r.eb = 32 * ci + 16;
    } else if constexpr (DT == CU_Q8_0) {
        r.a[0] = v[0], r.a[1] = v[1], r.a[2] = v[2], r.a[3] = v[3];
        r.b[0] = rw.x.x, r.b[1] = rw.x.y, r.b[2] = rw.x.z, r.b[3] = rw.x.w;
        r.sa = r.sb = h2f(rw.m.x);
        r.ma = r.mb = 0.f;
        r.oa = 0;
        r.ea = 32 * ci, r.eb = 32 * ci + 16;
    } else if constexpr (DT == CU_Q4_K || DT == CU_Q5_K) {
        const int blk = ci >> 3, c = ci & 7, p = c >> 1, l0 = (c & 1) * 16;
        const uint32_t hv[4] = {rw.x.x, rw.x.y, rw.x.z, rw.x.w};
#pragma unroll
        for (int k = 0; k < 4; k++) {
            r.a[k] = v[k] & 0x0F0F0F0Fu;
            r.b[k] = (v[k] >> 4) & 0x0F0F0F0Fu;
            if constexpr (DT == CU_Q5_K) {
                r.a[k] |= ((hv[k] >> (2 * p)) & 0x01010101u) << 4;
                r.b[k] |= ((hv[k] >> (2 * p + 1)) & 0x01010101u) << 4;
            }
        }
        const float d = h2f(rw.m.x & 0xffff), dmin = h2f(rw.m.x >> 16);
        float s1, m1, s2, m2;
        scale_min(2 * p, rw.m.y, rw.m.z, rw.m.w, s1, m1);
        scale_min(2 * p + 1, rw.m.y, rw.m.z, rw.m.w, s2, m2);
        r.sa = d * s1, r.ma = dmin * m1, r.sb = d * s2, r.mb = dmin * m2;
        r.oa = 0;
        r.ea = 256 * blk + 64 * p + l0, r.eb = r.ea + 32;
    } else if constexpr (DT == CU_Q5_0) {
        const uint32_t qh = rw.m.y;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            r.a[k] = (v[k] & 0x0F0F0F0Fu) | (spread4((qh >> (4 * k)) & 0xF) << 4);
            r.b[k] = ((v[k] >> 4) & 0x0F0F0F0Fu) | (spread4((qh >> (16 + 4 * k)) & 0xF) << 4);
        }
        r.sa = r.sb = h2f(rw.m.x);
        r.ma = r.mb = 0.f;
        r.oa = 16;
        r.ea = 32 * ci, r.eb = 32 * ci + 16;
    } else if constexpr (DT == CU_MLX4 || DT == CU_MLX8) {
        if constexpr (DT == CU_MLX4) {
#pragma unroll
            for (int k = 0; k < 4; k++) {
                r.a[k] = v[k] & 0x0F0F0F0Fu;
                r.b[k] = (v[k] >> 4) & 0x0F0F0F0Fu;
            }
            r.oa = 0;
        } else {
            r.a[0] = v[0], r.a[1] = v[1], r.a[2] = v[2], r.a[3] = v[3];
            r.b[0] = rw.x.x, r.b[1] = rw.x.y, r.b[2] = rw.x.z, r.b[3] = rw.x.w;
            r.oa = -128; /* stored code − 128: s·(c + 128) + bias */
        }
        r.sa = r.sb = __uint_as_float(rw.m.x);
        r.ma = r.mb = -__uint_as_float(rw.m.y);
        r.ea = 32 * ci, r.eb = 32 * ci + 16;
    } else { /* Q6_K */
        const int blk = ci >> 3, c = ci & 7, hn = c >> 2, l0 = 16 * (c & 3);
        const int sl = (l0 & 32) ? 2 : 0;
        const uint32_t hv[4] = {rw.x.x, rw.x.y, rw.x.z, rw.x.w};
#pragma unroll
        for (int k = 0; k < 4; k++) {
            r.a[k] = (v[k] & 0x0F0F0F0Fu) | (((hv[k] >> sl) & 0x03030303u) << 4);
            r.b[k] = ((v[k] >> 4) & 0x0F0F0F0Fu) | (((hv[k] >> (sl + 4)) & 0x03030303u) << 4);
        }
        const float d = h2f(rw.m.x);
        r.sa = d * (float)(int8_t)rw.m.y, r.sb = d * (float)(int8_t)rw.m.z;
        r.ma = r.mb = 0.f;
        r.oa = 32;
        r.ea = 256 * blk + 128 * hn + l0, r.eb = r.ea + 64;
    }
}

constexpr int WARPS = 4;
constexpr int U = 4; /* chunks in flight per lane */

/* The activation block of element e: its scale d and the sum of the 16 codes of e's half (packed by
 * k_quantize_act as two int16 in the bits of .y). */
__device__ __forceinline__ void act_meta(const float2 *dx, long xrow_nb, int e, float &d, int &sum) {
    const float2 v = __ldg(dx + xrow_nb + (e >> 5));
    const int bits = __float_as_int(v.y);
    d = v.x;
    sum = (e & 16) ? (bits >> 16) : (int)(short)(bits & 0xffff);
}

/* One batch of a lane's chunks (c0, c0 + stride, ... U of them, those < nch): decode each against the activations
 * of the NT tokens (activation rows xr[t]) and accumulate. */
template <int DT, int NT>
__device__ __forceinline__ void qgemv_batch(const raw (&rw)[U], int c0, int stride, int nch, float (&acc)[NT], int nt,
                                            const int8_t *__restrict__ xq, const float2 *__restrict__ dx,
                                            const int (&xr)[NT], int cols, int nb32) {
#pragma unroll
    for (int u = 0; u < U; u++) {
        const int ci = c0 + stride * u;
        if (ci >= nch) break;
        run2 q;
        decode<DT>(rw[u], ci, q);
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t >= nt) break;
            const int8_t *xrow = xq + (long)xr[t] * cols;
            const uint4 xa = ld16(xrow + q.ea), xb = ld16(xrow + q.eb);
            float da, db;
            int sa, sb;
            act_meta(dx, (long)xr[t] * nb32, q.ea, da, sa);
            act_meta(dx, (long)xr[t] * nb32, q.eb, db, sb);
            int ia = __dp4a((int)q.a[0], (int)xa.x, 0);
            ia = __dp4a((int)q.a[1], (int)xa.y, ia);
            ia = __dp4a((int)q.a[2], (int)xa.z, ia);
            ia = __dp4a((int)q.a[3], (int)xa.w, ia);
            int ib = __dp4a((int)q.b[0], (int)xb.x, 0);
            ib = __dp4a((int)q.b[1], (int)xb.y, ib);
            ib = __dp4a((int)q.b[2], (int)xb.z, ib);
            ib = __dp4a((int)q.b[3], (int)xb.w, ib);
            float va, vb;
            if constexpr (qt<DT>::SUM) {
                va = q.sa * (float)(ia - q.oa * sa) - q.ma * (float)sa;
                vb = q.sb * (float)(ib - q.oa * sb) - q.mb * (float)sb;
            } else {
                va = q.sa * (float)ia, vb = q.sb * (float)ib;
            }
            acc[t] = fmaf(da, va, fmaf(db, vb, acc[t]));
        }
    }
}

/* ks warps per output row (ks = 1, 2 or 4: the row's chunks split between them, partial sums added through shared
 * memory; more warps for matrices of few rows, so that the grid fills the GPU in more than one wave), WARPS / ks
 * rows per block; NT tokens share each weight load. PDL: launched with programmatic dependent launch (cu_launch):
 * the first batch of weights is loaded before waiting for the kernel that writes the activations; otherwise a
 * plain launch and a plain loop. */
template <int DT, int NT, bool PDL>
__global__ void __launch_bounds__(WARPS * 32)
    k_qgemv(float *__restrict__ y, long ys, long yks, const int8_t *__restrict__ xq, const float2 *__restrict__ dx,
            int x_per_slot, qmat w, int rows, int cols, int n, const int *__restrict__ sel, int n_slot, int ks) {
    __shared__ float part[WARPS][NT];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int r = blockIdx.x * (WARPS / ks) + warp / ks, kp = warp % ks;
    const bool valid = r < rows;
    long row;
    int xr0, nt;
    float *yb;
    if (PDL && sel) cu_pdl_wait(); /* the experts come from the router kernel */
    if (sel) {
        const int g = blockIdx.y, t = g / n_slot, k = g - t * n_slot;
        row = (long)sel[g] * rows + r;
        xr0 = x_per_slot ? g : t;
        yb = y + t * ys + k * yks;
        nt = 1;
    } else {
        const int t0 = blockIdx.y * NT;
        row = r;
        xr0 = t0;
        yb = y + t0 * ys;
        nt = min(NT, n - t0);
    }
    const int nch = valid ? w.nb * qt<DT>::CPB : 0, nb32 = cols >> 5, stride = 32 * ks;
    float acc[NT];
    int xr[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.f, xr[t] = xr0 + t;
    if constexpr (PDL) {
        int c0 = kp * 32 + lane;
        raw rw[U];
        /* the first U chunks: weights only, so they are loaded before waiting for the kernel that writes the
         * activations (that kernel may still be running) */
#pragma unroll
        for (int u = 0; u < U; u++)
            if (c0 + stride * u < nch) load<DT>(w, row, c0 + stride * u, rw[u]);
        if (!sel) cu_pdl_wait();
        cu_pdl_launch();
        for (; c0 < nch; c0 += stride * U) {
            if (c0 != kp * 32 + lane) {
#pragma unroll
                for (int u = 0; u < U; u++)
                    if (c0 + stride * u < nch) load<DT>(w, row, c0 + stride * u, rw[u]);
            }
            qgemv_batch<DT, NT>(rw, c0, stride, nch, acc, nt, xq, dx, xr, cols, nb32);
        }
    } else {
        for (int c0 = kp * 32 + lane; c0 < nch; c0 += stride * U) {
            raw rw[U];
#pragma unroll
            for (int u = 0; u < U; u++)
                if (c0 + stride * u < nch) load<DT>(w, row, c0 + stride * u, rw[u]);
            qgemv_batch<DT, NT>(rw, c0, stride, nch, acc, nt, xq, dx, xr, cols, nb32);
        }
    }
#pragma unroll
    for (int t = 0; t < NT; t++) {
        float v = acc[t];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        acc[t] = v;
    }
    if (ks == 1) {
        if (valid && lane == 0)
#pragma unroll
            for (int t = 0; t < NT; t++)
                if (t < nt) yb[t * ys + r] = acc[t];
        return;
    }
    if (lane == 0)
#pragma unroll
        for (int t = 0; t < NT; t++) part[warp][t] = acc[t];
    __syncthreads();
    if (valid && lane == 0 && kp == 0)
#pragma unroll
        for (int t = 0; t < NT; t++) {
            float v = part[warp][t];
            for (int k = 1; k < ks; k++) v += part[warp + k][t];
            if (t < nt) yb[t * ys + r] = v;
        }
}

/* MoE prefill, expert-major: block (row group, work tile of cu_moe_plan) runs WARPS rows of the tile's expert e over
 * its up to CU_MOE_TILE pairs (pair p = token·n_slot + slot), 8 at a time: y[p][r] = Σ w_e[r]·x̃[p / x_div]. Each
 * expert's weights are read from memory once per tile (the later groups of its pairs find the row in L1/L2) instead
 * of once per pair, and no routing crosses to the host. */
template <int DT>
__global__ void __launch_bounds__(WARPS * 32)
    k_qgemv_grouped(float *__restrict__ y, long ys, const int8_t *__restrict__ xq, const float2 *__restrict__ dx,
                    int x_div, qmat w, int rows, int cols, const int *__restrict__ off, const int *__restrict__ list,
                    const int *__restrict__ tiles) {
    constexpr int NT = 8;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int r = blockIdx.x * WARPS + warp;
    if ((int)blockIdx.y >= tiles[0] || r >= rows) return; /* no block-wide synchronization below */
    const int e = tiles[1 + 2 * blockIdx.y], p0 = tiles[2 + 2 * blockIdx.y], p1 = min(p0 + CU_MOE_TILE, off[e + 1]);
    const long row = (long)e * rows + r;
    const int nch = w.nb * qt<DT>::CPB, nb32 = cols >> 5;
    for (int g = p0; g < p1; g += NT) {
        const int nt = min(NT, p1 - g);
        int xr[NT], pr[NT];
        float acc[NT];
#pragma unroll
        for (int t = 0; t < NT; t++) {
            pr[t] = t < nt ? list[g + t] : 0;
            xr[t] = pr[t] / x_div, acc[t] = 0.f;
        }
        for (int c0 = lane; c0 < nch; c0 += 32 * U) {
            raw rw[U];
#pragma unroll
            for (int u = 0; u < U; u++)
                if (c0 + 32 * u < nch) load<DT>(w, row, c0 + 32 * u, rw[u]);
            qgemv_batch<DT, NT>(rw, c0, 32, nch, acc, nt, xq, dx, xr, cols, nb32);
        }
#pragma unroll
        for (int t = 0; t < NT; t++) {
            float v = acc[t];
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
            if (lane == t && t < nt) y[(long)pr[t] * ys + r] = v;
        }
    }
}

/* A warp per 32 elements: max |x| by shuffles, each lane rounds its element exactly as the CPU's g4c_quantize_q8
 * (d = amax / 127, q = rint(x · (1 / d))); d and the two 16-element code sums go to dx. */
__global__ void k_quantize_act(int8_t *__restrict__ xq, float2 *__restrict__ dx, const float *__restrict__ x, long xs,
                               long xks, int n_rows, int n_slot, int cols) {
    cu_pdl_wait();
    cu_pdl_launch();
    const int nb32 = cols >> 5;
    const long wid = ((long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (wid >= (long)n_rows * nb32) return;
    const int g = (int)(wid / nb32), b = (int)(wid - (long)g * nb32), t = g / n_slot, k = g - t * n_slot;
    const float v = x[t * xs + k * xks + 32 * b + lane];
    float amax = fabsf(v);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float d = amax / 127.f, id = d > 0.f ? 1.0f / d : 0.f;
    const int q = (int)rintf(__fmul_rn(v, id));
    xq[(long)g * cols + 32 * b + lane] = (int8_t)q;
    int s = q;
#pragma unroll
    for (int o = 8; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o); /* sums within each half of 16 */
    const int s_hi = __shfl_sync(0xffffffffu, s, 16);
    if (lane == 0) dx[(long)g * nb32 + b] = make_float2(d, __int_as_float((s_hi << 16) | (s & 0xffff)));
}

__device__ __forceinline__ float byte_val(uint32_t w, int i) { return (float)(int8_t)(w >> (8 * i)); }

/* A decoded chunk's two runs of 16 weights as bf16 (value = s·(q − o) − m, rounded to nearest even), each as two
 * 16-byte stores at row + ea and row + eb: the tiles for cuBLAS and the MoE kernel's shared-memory weights. */
__device__ __forceinline__ void put_bf16(__nv_bfloat16 *row, const run2 &q) {
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const uint32_t *wv = half ? q.b : q.a;
        const float sc = half ? q.sb : q.sa, mn = half ? q.mb : q.ma;
        uint32_t pk[8];
#pragma unroll
        for (int k = 0; k < 4; k++)
#pragma unroll
            for (int j = 0; j < 2; j++) {
                const float v0 = sc * (byte_val(wv[k], 2 * j) - (float)q.oa) - mn;
                const float v1 = sc * (byte_val(wv[k], 2 * j + 1) - (float)q.oa) - mn;
                pk[2 * k + j] = pack_bf16(v0, v1);
            }
        uint4 *o = reinterpret_cast<uint4 *>(row + (half ? q.eb : q.ea));
        o[0] = make_uint4(pk[0], pk[1], pk[2], pk[3]);
        o[1] = make_uint4(pk[4], pk[5], pk[6], pk[7]);
    }
}


/* A thread per chunk: its two runs as bf16 (or f32 · scale for the embedding). */
template <int DT, typename OT>
__device__ __forceinline__ void write_chunk(OT *out, const qmat &w, long row, int ci, float scale) {
    raw rw;
    load<DT>(w, row, ci, rw);
    run2 q;
    decode<DT>(rw, ci, q);
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const uint32_t *wv = half ? q.b : q.a;
        const float s = half ? q.sb : q.sa, m = half ? q.mb : q.ma;
        OT *o = out + (half ? q.eb : q.ea);
#pragma unroll
        for (int k = 0; k < 4; k++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const float v = (s * (byte_val(wv[k], i) - (float)q.oa) - m) * scale;
                if constexpr (sizeof(OT) == 4) o[4 * k + i] = v;
                else o[4 * k + i] = __float2bfloat16_rn(v);
            }
    }
}

/* A thread per chunk, 256 chunks a block = 8192 consecutive elements of the tile (a row's chunks cover it in order,
 * 8 per K-quant super-block): each run of 16 bf16 goes to shared memory first, then the block writes its 16 KB out
 * in consecutive 16-byte stores (a warp's store covers 512 contiguous bytes; the runs' own 32-byte pieces at a
 * 64-byte stride left every store instruction half a sector each). */
constexpr int DQ_T = 256;
template <int DT>
__global__ void __launch_bounds__(DQ_T) k_dequant(__nv_bfloat16 *__restrict__ out, qmat w, int cols, long r0, int m) {
    __shared__ __align__(16) __nv_bfloat16 sm[DQ_T * 32];
    const int nch = w.nb * qt<DT>::CPB;
    const long i0 = (long)blockIdx.x * DQ_T, i = i0 + threadIdx.x, total = (long)m * nch;
    if (i < total) {
        const long rr = i / nch;
        const int ci = (int)(i - rr * nch);
        raw rw;
        load<DT>(w, r0 + rr, ci, rw);
        run2 q;
        decode<DT>(rw, ci, q);
        put_bf16(sm + rr * cols - i0 * 32, q); /* this row's element 0, relative to the block's first element */
    }
    __syncthreads();
    const long n_el = (total - i0 < DQ_T ? total - i0 : DQ_T) * 32; /* elements of this block */
    uint4 *dst = reinterpret_cast<uint4 *>(out + i0 * 32);
    const uint4 *src = reinterpret_cast<const uint4 *>(sm);
#pragma unroll
    for (int k = 0; k < 4; k++) {
        const int v = k * DQ_T + threadIdx.x; /* 16-byte vector index */
        if ((long)v * 8 < n_el) dst[v] = src[v];
    }
}

/* MoE prefill, expert-major on bf16 tensor cores (the fast prefill precision). k_moe_gather first writes each work
 * tile's (cu_moe_plan) up to 32 activation rows x[p / x_div], rounded to bf16, contiguously into xb [tile][32][ldx].
 * Then block (64-row tile, work tile) of k_moe_mma runs the tile's pairs against expert e's rows: per 256 columns
 * (8 chunks a row: one K-quant super-block) the weights are dequantized into shared memory as k_dequant rounds them
 * (the same bf16 values as the tile path) and mma m16n8k16 multiplies them with the activation tile (warp w: rows
 * 16w..16w+15 x the 32 pairs, f32 accumulation). Pipelined: the next step's weight chunks are loaded into
 * registers and its activation tile is copied (cp.async, two buffers) while this step's products run. Each weight
 * is decoded once per tile of its expert, no dequantized tile goes through memory, no routing crosses to the host. */
constexpr int MM_R = 64, MM_T = CU_MOE_TILE, MM_K = 256, MM_LDS = MM_K + 8;
constexpr size_t MM_SMEM = (size_t)(MM_R + 2 * MM_T) * MM_LDS * sizeof(__nv_bfloat16);

__global__ void k_moe_gather(__nv_bfloat16 *__restrict__ xb, int ldx, const float *__restrict__ x, long xs, int x_div,
                             int cols, const int *__restrict__ off, const int *__restrict__ list,
                             const int *__restrict__ tiles) {
    if ((int)blockIdx.x >= tiles[0]) return;
    const int e = tiles[1 + 2 * blockIdx.x], g = tiles[2 + 2 * blockIdx.x], nt = min(MM_T, off[e + 1] - g);
    const int c4n = ldx / 4;
    for (int i = threadIdx.x; i < MM_T * c4n; i += blockDim.x) {
        const int tt = i / c4n, c = 4 * (i % c4n);
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (tt < nt && c < cols) v = *reinterpret_cast<const float4 *>(x + (long)(list[g + tt] / x_div) * xs + c);
        *reinterpret_cast<uint2 *>(xb + ((long)blockIdx.x * MM_T + tt) * ldx + c) =
            make_uint2(pack_bf16(v.x, v.y), pack_bf16(v.z, v.w));
    }
}

template <int DT>
__global__ void __launch_bounds__(128) k_moe_mma(float *__restrict__ y, long ys, const __nv_bfloat16 *__restrict__ xb,
                                                 int ldx, qmat w, int rows, const int *__restrict__ off,
                                                 const int *__restrict__ list, const int *__restrict__ tiles) {
    constexpr int CPT = MM_R * 8 / 128; /* weight chunks per thread and step */
    extern __shared__ __align__(16) unsigned char smem[];
    __nv_bfloat16 *sw = reinterpret_cast<__nv_bfloat16 *>(smem), *sx = sw + MM_R * MM_LDS; /* sx: two buffers */
    if ((int)blockIdx.y >= tiles[0]) return; /* block-uniform: fewer tiles than the bound */
    const int e = tiles[1 + 2 * blockIdx.y], g = tiles[2 + 2 * blockIdx.y], nt = min(MM_T, off[e + 1] - g);
    const int r0 = blockIdx.x * MM_R, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int nch = w.nb * qt<DT>::CPB, steps = (nch + 7) / 8;
    const __nv_bfloat16 *xt = xb + (long)blockIdx.y * MM_T * ldx;
    auto load_w = [&](int c0, raw (&rw)[CPT]) {
#pragma unroll
        for (int u = 0; u < CPT; u++) {
            const int i = threadIdx.x + 128 * u, r = r0 + (i >> 3), ci = c0 + (i & 7);
            if (r < rows && ci < nch) load<DT>(w, (long)e * rows + r, ci, rw[u]);
        }
    };
    auto load_x = [&](int c0, __nv_bfloat16 *dst) { /* 32 rows x 256 columns (those < ldx; the rest zeroed) */
        for (int i = threadIdx.x; i < MM_T * (MM_K / 8); i += 128) {
            const int tt = i / (MM_K / 8), c = 8 * (i % (MM_K / 8)), col = c0 * 32 + c;
            __nv_bfloat16 *d = dst + tt * MM_LDS + c;
            if (col < ldx) cp_async16(d, xt + (long)tt * ldx + col);
            else *reinterpret_cast<uint4 *>(d) = make_uint4(0, 0, 0, 0);
        }
        cp_async_commit();
    };
    raw rw[CPT];
    load_w(0, rw);
    load_x(0, sx);
    float acc[4][4] = {};
    for (int st = 0; st < steps; st++) {
        const int c0 = st * 8;
        __syncthreads(); /* the previous step's products have read sw and the buffer that load_x refills below */
#pragma unroll
        for (int u = 0; u < CPT; u++) {
            const int i = threadIdx.x + 128 * u, rr = i >> 3, ci = c0 + (i & 7), r = r0 + rr;
            __nv_bfloat16 *dst = sw + rr * MM_LDS - c0 * 32;
            if (r >= rows || ci >= nch) { /* zeros where the chunk's 32 weights would go */
                uint4 *z = reinterpret_cast<uint4 *>(dst + ci * 32);
                z[0] = z[1] = z[2] = z[3] = make_uint4(0, 0, 0, 0);
                continue;
            }
            run2 q;
            decode<DT>(rw[u], ci, q);
            put_bf16(dst, q);
        }
        if (st + 1 < steps) {
            load_w(c0 + 8, rw); /* in flight during this step's products */
            load_x(c0 + 8, sx + ((st + 1) & 1) * MM_T * MM_LDS);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const __nv_bfloat16 *sxs = sx + (st & 1) * MM_T * MM_LDS;
        const int k16 = min(8, nch - c0) * 2;
        for (int kk = 0; kk < k16; kk++) {
            uint32_t a[4];
            ldsm4(a, sw + (warp * 16 + (lane & 15)) * MM_LDS + kk * 16 + (lane >> 4) * 8);
#pragma unroll
            for (int np = 0; np < 2; np++) {
                uint32_t b[4];
                ldsm4(b, sxs + (np * 16 + (lane & 7) + (lane >> 4) * 8) * MM_LDS + kk * 16 + ((lane >> 3) & 1) * 8);
                mma16816(acc[2 * np], a, b[0], b[1]);
                mma16816(acc[2 * np + 1], a, b[2], b[3]);
            }
        }
    }
#pragma unroll
    for (int t = 0; t < 4; t++)
#pragma unroll
        for (int c = 0; c < 4; c++) {
            const int tok = t * 8 + 2 * (lane & 3) + (c & 1), r = r0 + warp * 16 + (lane >> 2) + (c >> 1) * 8;
            if (tok < nt && r < rows) y[(long)list[g + tok] * ys + r] = acc[t][c];
        }
}

template <int DT>
__global__ void k_embed_q(float *__restrict__ x, qmat w, int cols, const int *__restrict__ ids, float scale) {
    const int nch = w.nb * qt<DT>::CPB;
    for (int ci = threadIdx.x; ci < nch; ci += blockDim.x)
        write_chunk<DT>(x + (long)blockIdx.x * cols, w, ids[blockIdx.x], ci, scale);
}

qmat qm(const cu_mat *w) {
    int gsh = 0;
    if (w->dt == CU_MLX4 || w->dt == CU_MLX8)
        while ((32 << gsh) < w->group) gsh++;
    return {(const uint8_t *)w->p, (const uint8_t *)w->m, (const uint8_t *)w->h, (const uint8_t *)w->s, w->nb, gsh};
}

/* chunks per block */
int cpb_of(int dt) { return dt == CU_Q4_K || dt == CU_Q5_K || dt == CU_Q6_K ? 8 : 1; }

/* Warps per row: the fewest that give about three waves of the GPU's resident warps (132 SMs x ~32), at most 4 and
 * at least 64 chunks per warp (bench_cuda --qgemv: 31B down 46.8 -> 37.6 us with 4; E4B qkv slower with 2). */
int k_split(long rows, int nch) {
    const long target = 3L * 132 * 32;
    int ks = rows >= target ? 1 : rows * 2 >= target ? 2 : 4;
    while (ks > 1 && nch < 64 * ks) ks >>= 1; /* small rows: the split's reduction costs more than it brings */
    return ks;
}

template <int DT>
cudaError_t qgemv_t(cudaStream_t st, float *y, long ys, long yks, const int8_t *xq, const float2 *dx, int x_per_slot,
                    const cu_mat *w, int n, const int *sel, int n_slot) {
    const qmat q = qm(w);
    const long work = (long)w->rows * (sel ? n * n_slot : 1);
    const int ks = g_ksplit > 0 ? g_ksplit : k_split(work, w->nb * qt<DT>::CPB);
    dim3 grid((w->rows + WARPS / ks - 1) / (WARPS / ks), 1);
    const bool pdl = cu_pdl_enabled();
    if (sel) {
        grid.y = n * n_slot;
        if (pdl)
            return cu_launch(k_qgemv<DT, 1, true>, grid, dim3(WARPS * 32), 0, st, y, ys, yks, xq, dx, x_per_slot, q,
                             w->rows, w->cols, n, sel, n_slot, ks);
        k_qgemv<DT, 1, false><<<grid, WARPS * 32, 0, st>>>(y, ys, yks, xq, dx, x_per_slot, q, w->rows, w->cols, n, sel,
                                                            n_slot, ks);
        return cudaGetLastError();
    }
#define G4C_QGEMV_NT(NT)                                                                                              \
    case NT:                                                                                                          \
        if (pdl)                                                                                                      \
            return cu_launch(k_qgemv<DT, NT, true>, grid, dim3(WARPS * 32), 0, st, y, ys, 0L, xq, dx, 0, q, w->rows, \
                             w->cols, n, (const int *)nullptr, 1, ks);                                                \
        k_qgemv<DT, NT, false><<<grid, WARPS * 32, 0, st>>>(y, ys, 0, xq, dx, 0, q, w->rows, w->cols, n, nullptr, 1, \
                                                             ks);                                                     \
        break;
    switch (n) {
        G4C_QGEMV_NT(1)
        G4C_QGEMV_NT(2)
        G4C_QGEMV_NT(3)
        G4C_QGEMV_NT(4)
        G4C_QGEMV_NT(5)
        G4C_QGEMV_NT(6)
        G4C_QGEMV_NT(7)
        G4C_QGEMV_NT(8)
    default: return cudaErrorInvalidValue;
    }
#undef G4C_QGEMV_NT
    return cudaGetLastError();
}

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* bytes of n_bytes: uniform random; when half_every > 0, every half_every bytes start with an f16 in
 * [lo, 2·lo) (a block scale) and, when two_halves, a second one after it (K-quant dmin). */
__global__ void k_fill_bytes(uint8_t *p, size_t n_bytes, uint64_t seed, int half_every, int two_halves, float lo) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n_bytes; i += (size_t)gridDim.x * blockDim.x) {
        const uint64_t h = mix64(seed + i * 0x9E3779B97F4A7C15ull);
        uint8_t v = (uint8_t)(h >> 32);
        if (half_every > 0) {
            const size_t off = i % half_every;
            if (off < (size_t)(two_halves ? 4 : 2)) {
                const size_t start = i - off % 2;
                const float f = lo * (1.f + (float)(mix64(seed ^ start) >> 40) * 0x1p-24f);
                const unsigned short hb = __half_as_ushort(__float2half_rn(f));
                v = (uint8_t)(off % 2 ? hb >> 8 : hb & 0xff);
            }
        }
        p[i] = v;
    }
}

/* MLX groups: scale in [lo, 2·lo), bias = −scale·center (codes centred on zero) */
__global__ void k_fill_mlx_meta(float2 *m, size_t n, uint64_t seed, float lo, float center) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float s = lo * (1.f + (float)(mix64(seed + i * 0x9E3779B97F4A7C15ull) >> 40) * 0x1p-24f);
        m[i] = make_float2(s, -s * center);
    }
}

} // namespace

cudaError_t cu_quantize_act(cudaStream_t st, int8_t *xq, float2 *dx, const float *x, long xs, long xks, int n,
                            int n_slot, int cols) {
    if (n <= 0) return cudaSuccess;
    const long warps = (long)n * n_slot * (cols >> 5);
    return cu_launch(k_quantize_act, dim3((unsigned)((warps * 32 + 255) / 256)), dim3(256), 0, st, xq, dx, x, xs, xks,
                     n * n_slot, n_slot, cols);
}

cudaError_t cu_qgemv(cudaStream_t st, float *y, long ys, long yks, const int8_t *xq, const float2 *dx, int x_per_slot,
                     const cu_mat *w, int n, const int *sel, int n_slot) {
    if (n < 1 || (!sel && n > CU_GEMV_MAX_TOK) || (sel && n * n_slot > 65535)) return cudaErrorInvalidValue;
    switch (w->dt) {
#define G4C_CASE(T) \
    case T: return qgemv_t<T>(st, y, ys, yks, xq, dx, x_per_slot, w, n, sel, n_slot);
        G4C_CU_QTYPES(G4C_CASE)
#undef G4C_CASE
    default: return cudaErrorInvalidValue;
    }
}

cudaError_t cu_qgemv_grouped(cudaStream_t st, float *y, long ys, const int8_t *xq, const float2 *dx, int x_div,
                             const cu_mat *w, const int *off, const int *list, const int *tiles, int max_tiles) {
    const qmat q = qm(w);
    const dim3 grid((w->rows + WARPS - 1) / WARPS, max_tiles);
    switch (w->dt) {
#define G4C_CASE(T) \
    case T: k_qgemv_grouped<T><<<grid, WARPS * 32, 0, st>>>(y, ys, xq, dx, x_div, q, w->rows, w->cols, off, list, tiles); break;
        G4C_CU_QTYPES(G4C_CASE)
#undef G4C_CASE
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

namespace {
template <int DT>
cudaError_t moe_mma_t(cudaStream_t st, float *y, long ys, const __nv_bfloat16 *xb, int ldx, const cu_mat *w,
                      const int *off, const int *list, const int *tiles, int max_tiles) {
    static bool attr = false; /* per instantiation, once per process */
    if (!attr) {
        const cudaError_t e = cudaFuncSetAttribute(k_moe_mma<DT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)MM_SMEM);
        if (e != cudaSuccess) return e;
        attr = true;
    }
    k_moe_mma<DT><<<dim3((w->rows + MM_R - 1) / MM_R, max_tiles), 128, MM_SMEM, st>>>(y, ys, xb, ldx, qm(w), w->rows, off,
                                                                                     list, tiles);
    return cudaGetLastError();
}
} // namespace

cudaError_t cu_moe_mma(cudaStream_t st, float *y, long ys, const float *x, long xs, int x_div, const cu_mat *w,
                       const int *off, const int *list, const int *tiles, int max_tiles, __nv_bfloat16 *xb) {
    if (w->cols % 8 || max_tiles < 1) return cudaErrorInvalidValue;
    k_moe_gather<<<max_tiles, 256, 0, st>>>(xb, w->cols, x, xs, x_div, w->cols, off, list, tiles);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    switch (w->dt) {
#define G4C_CASE(T) \
    case T: return moe_mma_t<T>(st, y, ys, xb, w->cols, w, off, list, tiles, max_tiles);
        G4C_CU_QTYPES(G4C_CASE)
#undef G4C_CASE
    default: return cudaErrorInvalidValue;
    }
}

cudaError_t cu_dequant_bf16(cudaStream_t st, __nv_bfloat16 *out, const cu_mat *w, long r0, int m) {
    if (m <= 0) return cudaSuccess;
    const long chunks = (long)m * w->nb * cpb_of(w->dt);
    const unsigned blocks = (unsigned)((chunks + DQ_T - 1) / DQ_T);
    const qmat q = qm(w);
    switch (w->dt) {
#define G4C_CASE(T) \
    case T: k_dequant<T><<<blocks, DQ_T, 0, st>>>(out, q, w->cols, r0, m); break;
        G4C_CU_QTYPES(G4C_CASE)
#undef G4C_CASE
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

cudaError_t cu_embed_q(cudaStream_t st, float *x, const cu_mat *e, const int *ids, int n, float scale) {
    if (n <= 0) return cudaSuccess;
    const qmat q = qm(e);
    switch (e->dt) {
#define G4C_CASE(T) \
    case T: k_embed_q<T><<<n, 128, 0, st>>>(x, q, e->cols, ids, scale); break;
        G4C_CU_QTYPES(G4C_CASE)
#undef G4C_CASE
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

cudaError_t cu_fill_random_q(cudaStream_t st, cu_mat *m, long total_rows, uint64_t seed, float amp) {
    const cu_qlayout L = cu_q_layout(m->dt, m->group);
    const size_t blocks = (size_t)total_rows * m->nb;
    const int threads = 256, grid = 132 * 16;
    /* scales so that |w| ~ amp: the largest code times the scale(s) */
    float lo_q = amp / 8.f, lo_m = amp;
    switch (m->dt) {
    case CU_Q4_0: lo_q = amp / 8.f; break;
    case CU_Q8_0: lo_q = amp / 127.f; break;
    case CU_Q4_K: lo_m = amp / (63.f * 15.f); break;
    case CU_Q5_K: lo_m = amp / (63.f * 31.f); break;
    case CU_Q6_K: lo_q = amp / (127.f * 32.f); break;
    case CU_Q5_0: lo_q = amp / 16.f; break;
    case CU_MLX4: lo_q = amp / 8.f; break;
    case CU_MLX8: lo_q = amp / 128.f; break;
    default: return cudaErrorInvalidValue;
    }
    k_fill_bytes<<<grid, threads, 0, st>>>((uint8_t *)m->p, blocks * L.qb, seed, 0, 0, 0.f);
    if (m->dt == CU_MLX4 || m->dt == CU_MLX8) /* codes random, w = scale·(code − 2^(bits−1)) */
        k_fill_mlx_meta<<<grid, threads, 0, st>>>((float2 *)m->m, blocks * L.mb / 8, seed + 1, lo_q,
                                                  m->dt == CU_MLX4 ? 8.f : 128.f);
    else if (m->dt == CU_Q4_0 || m->dt == CU_Q8_0 || m->dt == CU_Q5_0)
        k_fill_bytes<<<grid, threads, 0, st>>>((uint8_t *)m->m, blocks * L.mb, seed + 1, 2, 0, lo_q);
    else if (m->dt == CU_Q6_K) {
        k_fill_bytes<<<grid, threads, 0, st>>>((uint8_t *)m->m, blocks * L.mb, seed + 1, 0, 0, 0.f);
        k_fill_bytes<<<grid, threads, 0, st>>>((uint8_t *)m->s, blocks * L.sb, seed + 2, 2, 0, lo_q);
    } else
        k_fill_bytes<<<grid, threads, 0, st>>>((uint8_t *)m->m, blocks * L.mb, seed + 1, 16, 1, lo_m);
    if (L.hb) k_fill_bytes<<<grid, threads, 0, st>>>((uint8_t *)m->h, blocks * L.hb, seed + 3, 0, 0, 0.f);
    return cudaGetLastError();
}

extern "C" void g4c_cuda_set_quant(int on) { g_quant = on ? 1 : 0; }
extern "C" int g4c_cuda_quant_enabled(void) {
    if (g_quant < 0) g_quant = cu_env_switch("G4C_CUDA_QUANT") != 0; /* on unless "0" */
    return g_quant;
}
extern "C" void g4c_cuda_set_qprefill(int mode) { g_qprefill = mode == G4C_CUDA_QPREFILL_GEMV ? mode : 0; }
extern "C" int g4c_cuda_qprefill(void) {
    if (g_qprefill < 0) {
        const char *e = getenv("G4C_CUDA_QPREFILL");
        g_qprefill = e && !strcmp(e, "gemv") ? G4C_CUDA_QPREFILL_GEMV : G4C_CUDA_QPREFILL_TILES;
    }
    return g_qprefill;
}
extern "C" void g4c_cuda_set_qgemv_split(int ks) { g_ksplit = ks == 1 || ks == 2 || ks == 4 ? ks : 0; }
