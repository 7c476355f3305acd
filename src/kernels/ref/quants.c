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

/* ---- quantization: f32 -> ggml blocks (the layouts dequantized above) ------------------------------------------
 * Legacy types round to nearest like ggml's reference quantizers (Q4_0/Q5_0: the scale maps the element of largest
 * magnitude to -8 / -16 exactly; Q4_1/Q5_1: min and (max - min) / 15 or 31; Q8_0: absmax / 127). K-quants search each
 * sub-block's scale (and min) over a few candidate grids, refit by least squares and keep the best weighted error,
 * then quantize the sub-block scales to 6 bits (Q4_K/Q5_K) or 8 bits (Q6_K) against the super-block's f16 scale,
 * and requantize the values with the scales as stored. Non-finite inputs give unspecified (but valid) blocks. */

static void put_f16(uint8_t *p, float f) {
    uint16_t h = g4c_f32_to_f16(f);
    memcpy(p, &h, 2);
}


/* round(v) for v clamped to [lo, hi] (lo integral): NaN goes to lo, so no out-of-range conversion can happen; plain
 * comparisons and one truncation of a non-negative value (no libm calls: this is the K-quant search's inner loop) */
static inline int rnd(float v, float lo, float hi) {
    v = !(v >= lo) ? lo : v;
    v = v > hi ? hi : v;
    return (int)(v - lo + 0.5f) + (int)lo;
}
static inline int near(float v, int lo, int hi) { return rnd(v, (float)lo, (float)hi); }

static void q_q8_0(uint8_t *b, const float *x) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
    put_f16(b, d);
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)near(x[j] * id, -127, 127);
}

/* Q4_0 / Q5_0: the element of largest magnitude becomes -2^(bits-1) exactly. */
static void q_sym(uint8_t *b, const float *x, int bits) {
    const int half = 1 << (bits - 1), top = 2 * half - 1;
    float amax = 0, max = 0;
    for (int j = 0; j < 32; j++)
        if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
    const float d = max / (float)-half, id = d ? 1.0f / d : 0.0f;
    put_f16(b, d);
    uint8_t *qs = b + (bits == 4 ? 2 : 6);
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        const int q0 = near(x[j] * id + (float)half, 0, top), q1 = near(x[j + 16] * id + (float)half, 0, top);
        qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
        qh |= (uint32_t)(q0 >> 4) << j | (uint32_t)(q1 >> 4) << (j + 16);
    }
    if (bits == 5) memcpy(b + 2, &qh, 4);
}

/* Q4_1 / Q5_1: x = q·d + m with m the minimum. */
static void q_asym(uint8_t *b, const float *x, int bits) {
    const int top = (1 << bits) - 1;
    float mn = x[0], mx = x[0];
    for (int j = 1; j < 32; j++) mn = fminf(mn, x[j]), mx = fmaxf(mx, x[j]);
    const float d = (mx - mn) / (float)top, id = d ? 1.0f / d : 0.0f;
    put_f16(b, d);
    put_f16(b + 2, mn);
    uint8_t *qs = b + (bits == 4 ? 4 : 8);
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        const int q0 = near((x[j] - mn) * id, 0, top), q1 = near((x[j + 16] - mn) * id, 0, top);
        qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
        qh |= (uint32_t)(q0 >> 4) << j | (uint32_t)(q1 >> 4) << (j + 16);
    }
    if (bits == 5) memcpy(b + 4, &qh, 4);
}


/* One sub-block of n (<= 32) values as x ≈ scale·L − mmin with L in [0, nmax], mmin >= 0 (the min is clamped to <= 0,
 * as K-quants store it unsigned). Candidate grids iscale = (nmax - 1 + 0.25·step) / range, each refit by weighted least
 * squares (scale and min, or scale alone when the fitted min would be positive); the weighted error comes from the
 * sums, so each candidate costs one pass. Returns scale. */
static float fit_affine(const float *x, const float *w, int n, int nmax, float *mmin) {
    float mn = x[0], mx = x[0], sw = 0, sx = 0, sx2 = 0;
    for (int i = 0; i < n; i++) {
        mn = fminf(mn, x[i]), mx = fmaxf(mx, x[i]);
        sw += w[i], sx += w[i] * x[i], sx2 += w[i] * x[i] * x[i];
    }
    if (mn > 0) mn = 0;
    if (!(mx > mn)) {
        *mmin = -mn;
        return 0;
    }
    float best_s = (mx - mn) / (float)nmax, best_m = mn, best_e = INFINITY;
    for (int step = -1; step <= 8; step++) {
        /* step -1: the plain min/max grid, not refit */
        const float iscale = step < 0 ? (float)nmax / (mx - mn) : ((float)nmax - 1.0f + 0.25f * (float)step) / (mx - mn);
        float sl = 0, sl2 = 0, sxl = 0;
        for (int i = 0; i < n; i++) {
            const float l = (float)rnd(iscale * (x[i] - mn), 0, (float)nmax);
            sl += w[i] * l, sl2 += w[i] * l * l, sxl += w[i] * x[i] * l;
        }
        float s = 1.0f / iscale, m = mn;
        const float D = sw * sl2 - sl * sl;
        if (step >= 0 && D > 0) {
            s = (sw * sxl - sx * sl) / D;
            m = (sl2 * sx - sl * sxl) / D;
            if (m > 0) m = 0, s = sl2 > 0 ? sxl / sl2 : 0;
        }
        /* sum w (s·L + m − x)^2 expanded */
        const float e = s * s * sl2 + 2 * s * m * sl + m * m * sw - 2 * s * sxl - 2 * m * sx + sx2;
        if (e < best_e && s >= 0) best_e = e, best_s = s, best_m = m;
    }
    *mmin = -best_m;
    return best_s;
}

/* One sub-block of n (<= 16) values as x ≈ scale·L, L in [-nmax, nmax - 1] (Q6_K). Returns scale (any sign). */
static float fit_sym(const float *x, const float *w, int n, int nmax) {
    float amax = 0, max = 0, sx2 = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
        sx2 += w[i] * x[i] * x[i];
    }
    if (amax == 0) return 0;
    float best_s = max / (float)-nmax, best_e = INFINITY;
    for (int step = -4; step <= 4; step++) {
        const float iscale = -((float)nmax + 0.25f * (float)step) / max;
        float sxl = 0, sl2 = 0;
        for (int i = 0; i < n; i++) {
            const float l = (float)rnd(iscale * x[i], (float)-nmax, (float)(nmax - 1));
            sxl += w[i] * x[i] * l, sl2 += w[i] * l * l;
        }
        if (sl2 <= 0) continue;
        const float s = sxl / sl2, e = sx2 - s * sxl; /* least-squares residual */
        if (e < best_e) best_e = e, best_s = s;
    }
    return best_s;
}

/* Importance weights of a 256 block: |x| plus the block's RMS (large values matter more, none is ignored). */
static void k_weights(const float *x, float *w) {
    double ss = 0;
    for (int i = 0; i < 256; i++) ss += (double)x[i] * x[i];
    const float av = (float)sqrt(ss / 256);
    for (int i = 0; i < 256; i++) w[i] = av + fabsf(x[i]);
}

/* Q4_K (bits 4) and Q5_K (bits 5): 8 sub-blocks of 32, 6-bit scales and mins, x = d·sc·q − dmin·m. */
static void q_k45(uint8_t *b, const float *x, int bits) {
    const int nmax = (1 << bits) - 1;
    float w[256], sc[8], mn[8], max_sc = 0, max_mn = 0;
    k_weights(x, w);
    for (int j = 0; j < 8; j++) {
        sc[j] = fit_affine(x + 32 * j, w + 32 * j, 32, nmax, &mn[j]);
        max_sc = fmaxf(max_sc, sc[j]);
        max_mn = fmaxf(max_mn, mn[j]);
    }
    const float isc = max_sc > 0 ? 63.0f / max_sc : 0, imn = max_mn > 0 ? 63.0f / max_mn : 0;
    uint8_t *s = b + 4, ls[8], lm[8];
    memset(s, 0, 12);
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)near(isc * sc[j], 0, 63);
        lm[j] = (uint8_t)near(imn * mn[j], 0, 63);
        if (j < 4) {
            s[j] = ls[j], s[j + 4] = lm[j];
        } else {
            s[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            s[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
    put_f16(b, max_sc / 63.0f);
    put_f16(b + 2, max_mn / 63.0f);
    const float d = f16(b), dmin = f16(b + 2);
    int L[256];
    for (int j = 0; j < 8; j++) {
        const float dd = d * ls[j], dm = dmin * lm[j];
        for (int i = 0; i < 32; i++) L[32 * j + i] = dd > 0 ? near((x[32 * j + i] + dm) / dd, 0, nmax) : 0;
    }
    uint8_t *qh = b + 16, *qs = b + (bits == 4 ? 16 : 48);
    if (bits == 5) memset(qh, 0, 32);
    for (int j = 0, sh = 0; j < 256; j += 64, qs += 32, sh += 2)
        for (int l = 0; l < 32; l++) {
            const int l1 = L[j + l], l2 = L[j + l + 32];
            qs[l] = (uint8_t)((l1 & 0xF) | ((l2 & 0xF) << 4));
            if (bits == 5) qh[l] |= (uint8_t)(((l1 >> 4) << sh) | ((l2 >> 4) << (sh + 1)));
        }
}

/* Q6_K: 16 sub-blocks of 16, int8 scales, x = d·sc·(q − 32). */
static void q_q6_k(uint8_t *b, const float *x) {
    float w[256], sc[16], max_sc = 0, amax_sc = 0;
    k_weights(x, w);
    for (int j = 0; j < 16; j++) {
        sc[j] = fit_sym(x + 16 * j, w + 16 * j, 16, 32);
        if (fabsf(sc[j]) > amax_sc) amax_sc = fabsf(sc[j]), max_sc = sc[j];
    }
    int8_t *s = (int8_t *)(b + 192);
    const float iscale = max_sc ? -128.0f / max_sc : 0;
    for (int j = 0; j < 16; j++) s[j] = (int8_t)near(iscale * sc[j], -128, 127);
    put_f16(b + 208, iscale ? 1.0f / iscale : 0.0f);
    const float d = f16(b + 208);
    int L[256];
    for (int j = 0; j < 16; j++) {
        const float dd = d * s[j];
        for (int i = 0; i < 16; i++) L[16 * j + i] = dd != 0 ? near(x[16 * j + i] / dd, -32, 31) + 32 : 32;
    }
    uint8_t *ql = b, *qh = b + 128;
    for (int n = 0; n < 256; n += 128, ql += 64, qh += 32)
        for (int l = 0; l < 32; l++) {
            const int q1 = L[n + l], q2 = L[n + l + 32], q3 = L[n + l + 64], q4 = L[n + l + 96];
            ql[l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
            ql[l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
            qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
        }
}

void g4c_quantize(void *dst, const float *src, g4c_dtype t, int64_t n) {
    uint8_t *o = dst;
    switch (t) {
    case G4C_DTYPE_F32: memcpy(dst, src, (size_t)n * 4); return;
    case G4C_DTYPE_F16:
    case G4C_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = t == G4C_DTYPE_F16 ? g4c_f32_to_f16(src[i]) : g4c_f32_to_bf16(src[i]);
            memcpy(o + 2 * i, &h, 2);
        }
        return;
    default: break;
    }
    const int bs = g4c_dtype_infos[t].block;
    const size_t sz = g4c_dtype_infos[t].size;
    for (int64_t i = 0; i < n / bs; i++, o += sz, src += bs) switch (t) {
        case G4C_DTYPE_Q8_0: q_q8_0(o, src); break;
        case G4C_DTYPE_Q4_0: q_sym(o, src, 4); break;
        case G4C_DTYPE_Q5_0: q_sym(o, src, 5); break;
        case G4C_DTYPE_Q4_1: q_asym(o, src, 4); break;
        case G4C_DTYPE_Q5_1: q_asym(o, src, 5); break;
        case G4C_DTYPE_Q4_K: q_k45(o, src, 4); break;
        case G4C_DTYPE_Q5_K: q_k45(o, src, 5); break;
        case G4C_DTYPE_Q6_K: q_q6_k(o, src); break;
        default: G4C_ASSERT(!"g4c_quantize: not a quantizable type");
        }
}
