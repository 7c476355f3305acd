/* bf16 / f16 <-> f32 conversion. bf16 is the top half of an IEEE f32; f16 is IEEE binary16. */
#include <math.h>

#include "base/base.h"

/* ggml block sizes: Q4_0 {f16 d; u8 qs[16]}, Q4_1 {f16 d, m; u8 qs[16]}, Q5_0 {f16 d; u8 qh[4]; u8 qs[16]},
 * Q5_1 {f16 d, m; u8 qh[4]; u8 qs[16]}, Q8_0 {f16 d; i8 qs[32]}, Q4_K {f16 d, dmin; u8 scales[12]; u8 qs[128]},
 * Q5_K {f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}, Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}. */
const struct g4c_dtype_info g4c_dtype_infos[G4C_DTYPE_COUNT] = {
    [G4C_DTYPE_F32] = {"F32", "F32", 4, 1, 0},      [G4C_DTYPE_F16] = {"F16", "F16", 2, 1, 1},
    [G4C_DTYPE_BF16] = {"BF16", "BF16", 2, 1, 30},  [G4C_DTYPE_Q4_0] = {"Q4_0", NULL, 18, 32, 2},
    [G4C_DTYPE_Q4_1] = {"Q4_1", NULL, 20, 32, 3},   [G4C_DTYPE_Q5_0] = {"Q5_0", NULL, 22, 32, 6},
    [G4C_DTYPE_Q5_1] = {"Q5_1", NULL, 24, 32, 7},   [G4C_DTYPE_Q8_0] = {"Q8_0", NULL, 34, 32, 8},
    [G4C_DTYPE_Q4_K] = {"Q4_K", NULL, 144, 256, 12}, [G4C_DTYPE_Q5_K] = {"Q5_K", NULL, 176, 256, 13},
    [G4C_DTYPE_Q6_K] = {"Q6_K", NULL, 210, 256, 14}, [G4C_DTYPE_U32] = {"U32", "U32", 4, 1, -1},
};
_Static_assert(G4C_DTYPE_COUNT == 12, "update g4c_dtype_infos");

uint16_t g4c_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                          /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float g4c_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: value = man * 2^-24 */
            float f = (float)man * 0x1p-24f;
            memcpy(&u, &f, 4);
            u |= sign;
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 112u) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t g4c_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    float a = fabsf(f);
    if (isnan(f)) return sign | 0x7e00u;
    if (a >= 65520.0f) return sign | 0x7c00u; /* rounds to inf */
    if (a < 0x1p-14f) {                       /* subnormal or zero: multiples of 2^-24, round half even */
        float q = a * 0x1p24f;
        return sign | (uint16_t)nearbyintf(q);
    }
    uint32_t e = ((u >> 23) & 0xffu) - 112u, man = u & 0x7fffffu;
    uint32_t h = (e << 10) | (man >> 13);
    uint32_t rest = man & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
    return sign | (uint16_t)h;
}

void g4c_to_f32(float *dst, const void *src, g4c_dtype dt, size_t n) {
    const unsigned char *s = src;
    switch (dt) {
    case G4C_DTYPE_F32:
        memcpy(dst, src, n * 4);
        break;
    case G4C_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = g4c_bf16_to_f32(h);
        }
        break;
    case G4C_DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = g4c_f16_to_f32(h);
        }
        break;
    default:
        G4C_ASSERT(!"unknown dtype");
    }
}
