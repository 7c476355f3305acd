/* NEON kernels for aarch64 (compiled only there; cpu_int.h maps cpu.c's SIMD path onto them). Advanced SIMD and
 * the f16 conversions are part of ARMv8-A, so g4c_neon_supported() is 1; the integer kernels come in two builds of
 * neon_q8.inc, one with the dot-product instructions (SDOT, vdotq_s32; Armv8.2 optional, Armv8.4 mandatory) and one
 * with widening multiplies (vmull_s8 + vpadalq_s16), picked at run time from getauxval(AT_HWCAP).
 * The f32 matrix kernel mirrors avx2.c: tiles of 4 weight rows x up to 3 tokens, one 4-lane FMA accumulator per
 * output reduced in a fixed order plus a scalar tail, so a token's result does not depend on the tile it lands in.
 * Weights are read in their stored type (f32, bf16, f16) through byte loads (mapped files need not be aligned). */
#include <arm_neon.h>
#include <math.h>
#include <string.h>
#include <sys/auxv.h>

#include "kernels/cpu/cpu_int.h"

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20) /* Linux arch/arm64 uapi hwcap.h */
#endif

/* GCC builds the SDOT kernels with a target pragma; clang's arm_neon.h (up to 15 at least) declares vdotq_s32 only
 * when the whole file targets dotprod, so there the SDOT build exists only with -march=...+dotprod. */
#if defined(__clang__) && !defined(__ARM_FEATURE_DOTPROD)
#define G4C_NEON_SDOT 0
#else
#define G4C_NEON_SDOT 1
#endif

int g4c_neon_supported(void) { return 1; }

int g4c_neon_has_dotprod(void) {
    static int has = -1; /* a benign race: every thread computes the same value */
    if (has < 0) has = G4C_NEON_SDOT && (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
    return has;
}

static inline float32x4_t load4(const uint8_t *w, int dt, int64_t k) {
    switch (dt) {
    case CPU_W_BF16: return vreinterpretq_f32_u32(vshll_n_u16(vreinterpret_u16_u8(vld1_u8(w + 2 * k)), 16));
    case CPU_W_F16: return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(w + 2 * k)));
    default: return vreinterpretq_f32_u8(vld1q_u8(w + 4 * k));
    }
}

/* fixed-order horizontal sum: (0 + 2) + (1 + 3) */
static inline float hsum(float32x4_t v) {
    const float32x2_t s = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(s, 0) + vget_lane_f32(s, 1);
}

/* y[t][r] for r < nr (<= 4), t < nt (<= 3) */
static void tile(float *y, int64_t ldy, const float *x, int64_t ldx, int nt, const uint8_t *w, size_t wstride, int dt,
                 int nr, int64_t cols) {
    float32x4_t acc[4][3];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 3; t++) acc[r][t] = vdupq_n_f32(0);
    const int64_t c4 = cols & ~(int64_t)3;
    if (nr == 4 && nt == 3) { /* the hot case, with constant bounds for the register allocator */
        for (int64_t k = 0; k < c4; k += 4) {
            const float32x4_t x0 = vld1q_f32(x + k), x1 = vld1q_f32(x + ldx + k), x2 = vld1q_f32(x + 2 * ldx + k);
            for (int r = 0; r < 4; r++) {
                const float32x4_t wv = load4(w + r * wstride, dt, k);
                acc[r][0] = vfmaq_f32(acc[r][0], wv, x0);
                acc[r][1] = vfmaq_f32(acc[r][1], wv, x1);
                acc[r][2] = vfmaq_f32(acc[r][2], wv, x2);
            }
        }
    } else {
        for (int64_t k = 0; k < c4; k += 4)
            for (int r = 0; r < nr; r++) {
                const float32x4_t wv = load4(w + r * wstride, dt, k);
                for (int t = 0; t < nt; t++) acc[r][t] = vfmaq_f32(acc[r][t], wv, vld1q_f32(x + t * ldx + k));
            }
    }
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) {
            float s = hsum(acc[r][t]);
            for (int64_t k = c4; k < cols; k++) s += g4c_cpu_w_at(w + r * wstride, dt, k) * x[t * ldx + k];
            y[t * ldy + r] = s;
        }
}

void g4c_neon_rows(float *y, int64_t ldy, const float *x, int64_t ldx, int n_tok, const void *w, size_t wstride,
                   int dt, int n_rows, int64_t cols) {
    for (int t0 = 0; t0 < n_tok; t0 += 3) {
        const int nt = n_tok - t0 < 3 ? n_tok - t0 : 3;
        for (int r0 = 0; r0 < n_rows; r0 += 4)
            tile(y + (size_t)t0 * ldy + r0, ldy, x + (size_t)t0 * ldx, ldx, nt, (const uint8_t *)w + (size_t)r0 * wstride,
                 wstride, dt, n_rows - r0 < 4 ? n_rows - r0 : 4, cols);
    }
}

float g4c_neon_dot(const float *a, const float *b, int64_t n) {
    float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0);
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        a0 = vfmaq_f32(a0, vld1q_f32(a + k), vld1q_f32(b + k));
        a1 = vfmaq_f32(a1, vld1q_f32(a + k + 4), vld1q_f32(b + k + 4));
    }
    if (k + 4 <= n) a0 = vfmaq_f32(a0, vld1q_f32(a + k), vld1q_f32(b + k)), k += 4;
    float s = hsum(vaddq_f32(a0, a1));
    for (; k < n; k++) s += a[k] * b[k];
    return s;
}

/* out += p · v over n floats */
void g4c_neon_axpy(float *out, float p, const float *v, int64_t n) {
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) vst1q_f32(out + k, vfmaq_n_f32(vld1q_f32(out + k), vld1q_f32(v + k), p));
    for (; k < n; k++) out[k] += p * v[k];
}

/* the same values as g4c_quantize_q8: the same f32 product v·id, rounded to nearest even (vcvtnq, as lrintf) */
void g4c_neon_quantize_q8(g4c_q8_block *dst, const float *x, int64_t cols) {
    for (int64_t b = 0; b < cols / 32; b++) {
        const float *v = x + b * 32;
        float32x4_t f[8];
        float32x4_t m = vdupq_n_f32(0);
        for (int i = 0; i < 8; i++) f[i] = vld1q_f32(v + 4 * i), m = vmaxq_f32(m, vabsq_f32(f[i]));
        const float d = vmaxvq_f32(m) / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        dst[b].d = d;
        int16x8_t h[4];
        for (int i = 0; i < 4; i++)
            h[i] = vcombine_s16(vqmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(f[2 * i], id))),
                                vqmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(f[2 * i + 1], id))));
        const int8x16_t q0 = vcombine_s8(vqmovn_s16(h[0]), vqmovn_s16(h[1]));
        const int8x16_t q1 = vcombine_s8(vqmovn_s16(h[2]), vqmovn_s16(h[3]));
        vst1q_s8(dst[b].q, q0);
        vst1q_s8(dst[b].q + 16, q1);
        dst[b].s = d * (float)(vaddlvq_s8(q0) + vaddlvq_s8(q1));
    }
}

/* ---- integer kernels: two builds of neon_q8.inc ------------------------------------------------------------------ */

static inline float f16(const uint8_t *p) {
    __fp16 h;
    memcpy(&h, p, 2);
    return (float)h;
}

static inline uint32_t u32le(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* the low / high nibbles of 16 bytes as int8 in [0, 15] */
static inline int8x16_t nib_lo(uint8x16_t raw) { return vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0xF))); }
static inline int8x16_t nib_hi(uint8x16_t raw) { return vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)); }

/* bits 0-15 of qh -> 16 bytes of 0x10 or 0 (Q5_0 / Q5_1: the 5th bit of element i is bit i) */
static inline int8x16_t fifth16(uint32_t qh) {
    const uint8x16_t bytes = vcombine_u8(vdup_n_u8((uint8_t)qh), vdup_n_u8((uint8_t)(qh >> 8)));
    const uint8x16_t bit = vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201ULL));
    return vreinterpretq_s8_u8(vandq_u8(vtstq_u8(bytes, bit), vdupq_n_u8(0x10)));
}

/* K-quant 6-bit scale and min of sub-block j (ggml get_scale_min_k4) */
static inline void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Σ a·b over 16 int8 pairs into 4 int32 lanes without SDOT: products pairwise in int16 (|a·b| <= 128·127, two fit),
 * then widened and added pairwise */
static inline int32x4_t sum16_mull(int32x4_t acc, int8x16_t a, int8x16_t b) {
    int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    p = vmlal_high_s8(p, a, b);
    return vpadalq_s16(acc, p);
}

#define Q8_FN(name) name##_mull
#define Q8_DOT16(acc, a, b) sum16_mull(acc, a, b)
#include "kernels/cpu/neon_q8.inc"
#undef Q8_FN
#undef Q8_DOT16

#if G4C_NEON_SDOT
#if !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod") /* arm_neon.h declares vdotq_s32 so; CPUs with SDOT are 8.2+ */
#endif
#define Q8_FN(name) name##_sdot
#define Q8_DOT16(acc, a, b) vdotq_s32(acc, a, b)
#include "kernels/cpu/neon_q8.inc"
#undef Q8_FN
#undef Q8_DOT16
#if !defined(__clang__)
#pragma GCC pop_options
#endif
#endif

void g4c_neon_rows_q8(float *y, int64_t ldy, const g4c_q8_block *xq, int n_tok, const void *w, size_t wstride,
                      g4c_dtype dt, int n_rows, int64_t cols) {
#if G4C_NEON_SDOT
    if (g4c_neon_has_dotprod()) {
        rows_q8_sdot(y, ldy, xq, n_tok, w, wstride, dt, n_rows, cols);
        return;
    }
#endif
    rows_q8_mull(y, ldy, xq, n_tok, w, wstride, dt, n_rows, cols);
}
