/* Tensor-core building blocks shared by the flash-attention kernels (vision.cu, attention.cu): cp.async staging,
 * ldmatrix fragment loads and the bf16 m16n8k16 mma with f32 accumulation (PTX ISA, "warp-level matrix
 * instructions"). Fragment layouts: A 16x16 row-major in four registers, B 16x8 column-major in two, C 16x8 f32
 * in four: c[0..1] row lane/4, c[2..3] row lane/4 + 8, columns 2·(lane%4) + {0, 1}. */
#ifndef G4C_KERNELS_CUDA_MMA_CUH
#define G4C_KERNELS_CUDA_MMA_CUH

#include <cuda_bf16.h>
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

#endif
