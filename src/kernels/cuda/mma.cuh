/* Tensor-core building blocks shared by the flash-attention kernels (vision.cu, attention.cu): cp.async staging,
 * ldmatrix fragment loads and the bf16 m16n8k16 mma with f32 accumulation (PTX ISA, "warp-level matrix
 * instructions"). Fragment layouts: A 16x16 row-major in four registers, B 16x8 column-major in two, C 16x8 f32
 * in four: c[0..1] row lane/4, c[2..3] row lane/4 + 8, columns 2·(lane%4) + {0, 1}. */
#ifndef G4C_KERNELS_CUDA_MMA_CUH
#define G4C_KERNELS_CUDA_MMA_CUH

#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>

constexpr float LOG2E = 1.4426950408889634f;

static __device__ __forceinline__ unsigned smem_addr(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }
static __device__ __forceinline__ void cp_async16(void *s, const void *g) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(smem_addr(s)), "l"(g));
}
static __device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int N> static __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }
/* Four 8x8 bf16 matrices; lane i gives the address of row i % 8 of matrix i / 8 (.trans: transposed). */
static __device__ __forceinline__ void ldsm4(uint32_t (&r)[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
static __device__ __forceinline__ void ldsm4_t(uint32_t (&r)[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
/* c (16x8 f32) += a (16x16 bf16, row) · b (16x8 bf16, col) */
static __device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
static __device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t *>(&v);
}

/* FlashAttention's online softmax over one tile of scores, per warp of 16 query rows: s [NS][4] the tile's scores
 * of rows lane/4 and lane/4 + 8 (mma accumulator layout; -inf where a key is invisible), m/l those rows' running
 * maximum and sum, o [NO][4] their output accumulators, rescaled to the new maximum; pf receives the tile's
 * probabilities as the bf16 A fragments of P·V (the accumulator and A layouts match). A row that has seen no key
 * keeps the maximum -inf and takes 0 as its base, so that exp2 gives 0 and not NaN. */
template <int NS, int NO>
static __device__ __forceinline__ void softmax_tile(float (&s)[NS][4], float &m0, float &m1, float &l0, float &l1,
                                                    float (&o)[NO][4], uint32_t (&pf)[NS / 2][4]) {
    float mx0 = m0, mx1 = m1;
#pragma unroll
    for (int t = 0; t < NS; t++) {
        mx0 = fmaxf(mx0, fmaxf(s[t][0], s[t][1]));
        mx1 = fmaxf(mx1, fmaxf(s[t][2], s[t][3]));
    }
#pragma unroll
    for (int sh = 1; sh < 4; sh <<= 1) {
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, sh));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, sh));
    }
    const float b0 = (mx0 == -INFINITY ? 0.f : mx0) * LOG2E, b1 = (mx1 == -INFINITY ? 0.f : mx1) * LOG2E;
    const float a0 = exp2f(fmaf(m0, LOG2E, -b0)), a1 = exp2f(fmaf(m1, LOG2E, -b1));
    m0 = mx0, m1 = mx1, l0 *= a0, l1 *= a1;
#pragma unroll
    for (int i = 0; i < NO; i++) o[i][0] *= a0, o[i][1] *= a0, o[i][2] *= a1, o[i][3] *= a1;
#pragma unroll
    for (int t = 0; t < NS; t++) {
        const float p0 = exp2f(fmaf(s[t][0], LOG2E, -b0)), p1 = exp2f(fmaf(s[t][1], LOG2E, -b0));
        const float p2 = exp2f(fmaf(s[t][2], LOG2E, -b1)), p3 = exp2f(fmaf(s[t][3], LOG2E, -b1));
        l0 += p0 + p1, l1 += p2 + p3;
        pf[t / 2][(t & 1) * 2] = pack_bf16(p0, p1);
        pf[t / 2][(t & 1) * 2 + 1] = pack_bf16(p2, p3);
    }
}

/* o [NO][4] += P·V for a tile of 16·NP keys: pf from softmax_tile, v the tile's first key row (bf16, rows lds
 * apart) at the warp's first output dim. */
template <int NP, int NO>
static __device__ __forceinline__ void pv_tile(float (&o)[NO][4], const uint32_t (&pf)[NP][4], const __nv_bfloat16 *v,
                                               int lds) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int kk = 0; kk < NP; kk++)
#pragma unroll
        for (int dp = 0; dp < NO / 2; dp++) {
            uint32_t b[4];
            ldsm4_t(b, v + (kk * 16 + (lane & 15)) * lds + dp * 16 + (lane >> 4) * 8);
            mma16816(o[2 * dp], pf[kk], b[0], b[1]);
            mma16816(o[2 * dp + 1], pf[kk], b[2], b[3]);
        }
}

#endif
