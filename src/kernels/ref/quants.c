/* Dequantization of every stored weight type: the reference the fast kernels and the GGUF/MLX loaders are tested
 * against. Block layouts are ggml's (llama.cpp's ggml-common.h), so GGUF tensors are read in place; MLX affine is
 * spec §8.3. All scalar C, little-endian reads through memcpy (any alignment). */
#include "kernels/ops.h"

static float f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return g4c_f16_to_f32(h);
}

/* Q4_0: x = (q - 8)·d; byte j holds element j (low nibble) and j + 16 (high nibble). */
static void dq_q4_0(float *y, const uint8_t *b) {
    const float d = f16(b);
    for (int j = 0; j < 16; j++) {
        y[j] = ((b[2 + j] & 0xF) - 8) * d;
        y[j + 16] = ((b[2 + j] >> 4) - 8) * d;
    }
}

/* Q4_1: x = q·d + m */
static void dq_q4_1(float *y, const uint8_t *b) {
    const float d = f16(b), m = f16(b + 2);
    for (int j = 0; j < 16; j++) {
        y[j] = (b[4 + j] & 0xF) * d + m;
        y[j + 16] = (b[4 + j] >> 4) * d + m;
    }
}

/* Q5_0: 5th bit of element j in bit j of the u32 qh; x = (q - 16)·d */
static void dq_q5_0(float *y, const uint8_t *b) {
    const float d = f16(b);
    uint32_t qh;
    memcpy(&qh, b + 2, 4);
    for (int j = 0; j < 16; j++) {
        const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
        y[j] = (((b[6 + j] & 0xF) | h0) - 16) * d;
        y[j + 16] = (((b[6 + j] >> 4) | h1) - 16) * d;
    }
}

/* Q5_1: x = q·d + m */
static void dq_q5_1(float *y, const uint8_t *b) {
    const float d = f16(b), m = f16(b + 2);
    uint32_t qh;
    memcpy(&qh, b + 4, 4);
    for (int j = 0; j < 16; j++) {
        const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
        y[j] = ((b[8 + j] & 0xF) | h0) * d + m;
        y[j + 16] = ((b[8 + j] >> 4) | h1) * d + m;
    }
}

/* Q8_0: x = q·d */
static void dq_q8_0(float *y, const uint8_t *b) {
    const float d = f16(b);
    for (int j = 0; j < 32; j++) y[j] = (int8_t)b[2 + j] * d;
}

/* K-quants: 6-bit scale and min of sub-block j (0..7) packed in 12 bytes (ggml get_scale_min_k4). */
static void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q4_K: 256 elements in 8 sub-blocks of 32; x = d·sc·q − dmin·m; 64 elements per 32 bytes of nibbles
 * (low nibbles first sub-block, high nibbles the next). */
static void dq_q4_k(float *y, const uint8_t *b) {
    const float d = f16(b), dmin = f16(b + 2);
    const uint8_t *sc = b + 4, *q = b + 16;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
        int s1, m1, s2, m2;
        scale_min_k4(is, sc, &s1, &m1);
        scale_min_k4(is + 1, sc, &s2, &m2);
        const float d1 = d * s1, o1 = dmin * m1, d2 = d * s2, o2 = dmin * m2;
        for (int l = 0; l < 32; l++) y[j + l] = d1 * (q[l] & 0xF) - o1;
        for (int l = 0; l < 32; l++) y[j + 32 + l] = d2 * (q[l] >> 4) - o2;
    }
}

/* Q5_K: Q4_K plus a 5th bit per element in qh[32] (bit pair u1/u2 advances by 2 per 64 elements). */
static void dq_q5_k(float *y, const uint8_t *b) {
    const float d = f16(b), dmin = f16(b + 2);
    const uint8_t *sc = b + 4, *qh = b + 16, *ql = b + 48;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
        int s1, m1, s2, m2;
        scale_min_k4(is, sc, &s1, &m1);
        scale_min_k4(is + 1, sc, &s2, &m2);
        const float d1 = d * s1, o1 = dmin * m1, d2 = d * s2, o2 = dmin * m2;
        for (int l = 0; l < 32; l++) y[j + l] = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - o1;
        for (int l = 0; l < 32; l++) y[j + 32 + l] = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - o2;
    }
}

/* Q6_K: 4 low bits in ql[128], 2 high bits in qh[64], 16 int8 scales, f16 d at the end; x = d·sc·(q − 32). */
static void dq_q6_k(float *y, const uint8_t *b) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const float d = f16(b + 208);
    for (int n = 0; n < 256; n += 128, ql += 64, qh += 32, sc += 8, y += 128)
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            const int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * sc[is] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
}

typedef void (*dq_block_fn)(float *y, const uint8_t *b);
static const dq_block_fn dq_block[G4C_DTYPE_COUNT] = {
    [G4C_DTYPE_Q4_0] = dq_q4_0, [G4C_DTYPE_Q4_1] = dq_q4_1, [G4C_DTYPE_Q5_0] = dq_q5_0,
    [G4C_DTYPE_Q5_1] = dq_q5_1, [G4C_DTYPE_Q8_0] = dq_q8_0, [G4C_DTYPE_Q4_K] = dq_q4_k,
    [G4C_DTYPE_Q5_K] = dq_q5_k, [G4C_DTYPE_Q6_K] = dq_q6_k,
};

void g4c_dequant(float *dst, const void *src, g4c_dtype t, int64_t n) {
    if (!dq_block[t]) { /* plain types */
        g4c_to_f32(dst, src, t, (size_t)n);
        return;
    }
    const int bs = g4c_dtype_infos[t].block;
    const size_t sz = g4c_dtype_infos[t].size;
    for (int64_t i = 0; i < n / bs; i++) dq_block[t](dst + i * bs, (const uint8_t *)src + (size_t)i * sz);
}

void g4c_wmat_row_f32(const g4c_wmat *w, int64_t r, float *dst) {
    const char *row = (const char *)w->data + (size_t)r * g4c_wmat_row_bytes(w);
    if (w->dtype != G4C_DTYPE_U32) {
        g4c_dequant(dst, row, w->dtype, w->cols);
        return;
    }
    /* MLX affine (spec §8.3): a row's codes form one little-endian bit stream, code c at bits [bits·c, bits·(c+1)).
     * For 2/4/8 bits that is code n of u32 word k at bits [bits·n, bits·(n+1)); MLX's 3/5/6-bit packing (8 codes in
     * 3 or 5 bytes, 4 codes in 3 bytes, mlx/backend/cpu/quantized.cpp extract_bits) is the same stream. */
    const int64_t n_groups = w->cols / w->group;
    const size_t ss = g4c_dtype_infos[w->scale_dtype].size;
    const unsigned bits = (unsigned)w->bits, mask = (1u << bits) - 1u;
    const uint8_t *q = (const uint8_t *)row;
    for (int64_t g = 0; g < n_groups; g++) {
        float scale, bias;
        g4c_to_f32(&scale, (const char *)w->scales + ((size_t)r * (size_t)n_groups + (size_t)g) * ss, w->scale_dtype, 1);
        g4c_to_f32(&bias, (const char *)w->biases + ((size_t)r * (size_t)n_groups + (size_t)g) * ss, w->scale_dtype, 1);
        for (int64_t c = g * w->group; c < (g + 1) * w->group; c++) {
            const size_t bit = (size_t)c * bits, at = bit / 8;
            const unsigned sh = (unsigned)(bit % 8);
            unsigned v = q[at];
            if (sh + bits > 8) v |= (unsigned)q[at + 1] << 8; /* bits <= 8: a code spans at most two bytes */
            dst[c] = scale * (float)((v >> sh) & mask) + bias;
        }
    }
}
