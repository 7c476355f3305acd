/* Gemma 4 vision tower: pixel patches of one image -> soft tokens in the text model's space (spec §4.2-§4.6).
 * Mirrors HF Gemma4VisionModel + Gemma4MultimodalEmbedder for a single unpadded image (no attention mask needed):
 *   patch embed (2·(p − ½)) · Wᵀ + pos[0][x] + pos[1][y]
 *   × n_layer: sandwich-normed bidirectional attention (QK-norm, V-norm, scale 1, 2-D RoPE θ=100) and GeGLU MLP,
 *              every linear optionally clipped (Gemma4ClippableLinear, E-models)
 *   3×3 average pool by position × √n_embd_v, standardize (large models), RMSNorm (no scale) · embedding_projectionᵀ
 * Activations f32 throughout (spec §10.9: no f16 accumulation). Buffers are allocated per image. */
#include <math.h>
#include <stdlib.h>

#include "model/model.h"

/* y = clamp(clamp(x, in_min, in_max) · Wᵀ, out_min, out_max); tmp holds the clamped input. */
static void clip_linear(g4c_pool *pool, float *y, const float *x, float *tmp, const g4c_clip_linear *l, int n) {
    const float *in = x;
    const size_t nin = (size_t)n * (size_t)l->w.cols, nout = (size_t)n * (size_t)l->w.rows;
    if (l->clip[0] > -INFINITY || l->clip[1] < INFINITY) {
        for (size_t i = 0; i < nin; i++) tmp[i] = fminf(fmaxf(x[i], l->clip[0]), l->clip[1]);
        in = tmp;
    }
    g4c_matmul(pool, y, in, &l->w, n);
    if (l->clip[2] > -INFINITY || l->clip[3] < INFINITY)
        for (size_t i = 0; i < nout; i++) y[i] = fminf(fmaxf(y[i], l->clip[2]), l->clip[3]);
}

/* 2-D RoPE (HF apply_multidimensional_rope): the first half of each head rotates by x, the second by y, each
 * half split-half style with inv_freq[k] = θ^(−2k/(hd/2)), k < hd/4. cs/sn: [n][2][hd/4] (x then y). */
static void rope2d(float *v, int n, int n_head, int hd, const float *cs, const float *sn) {
    const int q = hd / 4;
    for (int t = 0; t < n; t++)
        for (int h = 0; h < n_head; h++) {
            float *head = v + ((size_t)t * n_head + h) * hd;
            g4c_rope(head, 1, hd / 2, cs + (size_t)t * 2 * q, sn + (size_t)t * 2 * q);
            g4c_rope(head + hd / 2, 1, hd / 2, cs + (size_t)t * 2 * q + q, sn + (size_t)t * 2 * q + q);
        }
}

void g4c_vision_rope_tables(const g4c_vision_cfg *v, const int32_t *pos, int n, float *cs, float *sn) {
    const int hd = v->head_dim;
    /* f32 like HF: angle = pos · inv_freq (rounded), then cos/sin */
    for (int i = 0; i < n; i++)
        for (int axis = 0; axis < 2; axis++)
            for (int j = 0; j < hd / 4; j++) {
                const float inv = 1.0f / powf(v->rope_theta, (float)(2 * j) / (float)(hd / 2));
                const float ang = (float)pos[2 * i + axis] * inv;
                cs[(size_t)i * hd / 2 + axis * (hd / 4) + j] = cosf(ang);
                sn[(size_t)i * hd / 2 + axis * (hd / 4) + j] = sinf(ang);
            }
}

g4c_status g4c_vision_grid(const g4c_config *c, const int32_t *pos, int n, int *pw_out, int *ph_out, g4c_err *err) {
    const g4c_vision_cfg *v = &c->vision;
    const int k = v->pool;
    if (!v->present) return G4C_FAIL(err, G4C_E_ARG, "this model has no vision tower");
    int pw = 0, ph = 0;
    for (int i = 0; i < n; i++) {
        if (pos[2 * i] < 0 || pos[2 * i + 1] < 0 || pos[2 * i] >= v->n_pos || pos[2 * i + 1] >= v->n_pos)
            return G4C_FAIL(err, G4C_E_ARG, "patch %d position (%d, %d) outside the %d-entry position table", i,
                            pos[2 * i], pos[2 * i + 1], v->n_pos);
        if (pos[2 * i] + 1 > pw) pw = pos[2 * i] + 1;
        if (pos[2 * i + 1] + 1 > ph) ph = pos[2 * i + 1] + 1;
    }
    if (n <= 0 || pw * ph != n || pw % k || ph % k)
        return G4C_FAIL(err, G4C_E_ARG, "%d patches do not form a %d x %d grid with sides divisible by %d", n, pw, ph, k);
    *pw_out = pw, *ph_out = ph;
    return G4C_OK;
}

g4c_status g4c_vision_encode(const g4c_config *c, const g4c_vision_w *w, g4c_pool *pool, const float *patches,
                             const int32_t *pos, int n, float *out, g4c_err *err) {
    const g4c_vision_cfg *v = &c->vision;
    const int Hv = v->n_embd, nh = v->n_head, hd = v->head_dim, F = v->ffn_dim, k = v->pool;
    const int P = 3 * v->patch_size * v->patch_size;
    int pw = 0, ph = 0;
    G4C_TRY(g4c_vision_grid(c, pos, n, &pw, &ph, err));
    const int n_out = n / (k * k);
    const size_t wide = (size_t)(F > nh * hd ? F : nh * hd) > (size_t)P ? (size_t)(F > nh * hd ? F : nh * hd) : (size_t)P;
    float *x = g4c_amalloc((size_t)n * Hv, sizeof(float), err), *a = g4c_amalloc((size_t)n * Hv, sizeof(float), err);
    float *q = g4c_amalloc((size_t)n * nh * hd, sizeof(float), err), *kk = g4c_amalloc((size_t)n * nh * hd, sizeof(float), err);
    float *vv = g4c_amalloc((size_t)n * nh * hd, sizeof(float), err), *att = g4c_amalloc((size_t)n * nh * hd, sizeof(float), err);
    float *f1 = g4c_amalloc((size_t)n * F, sizeof(float), err), *f2 = g4c_amalloc((size_t)n * F, sizeof(float), err);
    float *tmp = g4c_amalloc((size_t)n * wide, sizeof(float), err);
    float *cs = g4c_amalloc((size_t)n * hd / 2, sizeof(float), err), *sn = g4c_amalloc((size_t)n * hd / 2, sizeof(float), err);
    const int nt = g4c_pool_n_threads(pool);
    float *scratch = g4c_amalloc((size_t)nt * (size_t)n, sizeof(float), err);
    int *hi = malloc(sizeof(int) * (size_t)n);
    float *pooled = g4c_amalloc((size_t)n_out * Hv, sizeof(float), err);
    g4c_status st = G4C_OK;
    if (!x || !a || !q || !kk || !vv || !att || !f1 || !f2 || !tmp || !cs || !sn || !scratch || !hi || !pooled) {
        st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory encoding a %d-patch image", n);
        goto done;
    }

    /* §4.2 patch embedding: HF pixel_values = 2 * (pixel_values - 0.5) */
    for (size_t i = 0; i < (size_t)n * P; i++) tmp[i] = 2.0f * (patches[i] - 0.5f);
    g4c_matmul(pool, x, tmp, &w->patch_proj, n);
    for (int i = 0; i < n; i++) {
        const float *px = w->pos_table + (size_t)pos[2 * i] * Hv;
        const float *py = w->pos_table + ((size_t)v->n_pos + (size_t)pos[2 * i + 1]) * Hv;
        for (int d = 0; d < Hv; d++) x[(size_t)i * Hv + d] += px[d] + py[d];
    }
    g4c_vision_rope_tables(v, pos, n, cs, sn);
    for (int i = 0; i < n; i++) hi[i] = n - 1; /* every patch sees every patch */

    /* §4.3 encoder blocks */
    for (int il = 0; il < v->n_layer; il++) {
        const g4c_vlayer_w *L = &w->layers[il];
        g4c_rms_norm(pool, a, x, L->attn_norm, n, Hv, v->eps);
        clip_linear(pool, q, a, tmp, &L->q, n);
        clip_linear(pool, kk, a, tmp, &L->k, n);
        clip_linear(pool, vv, a, tmp, &L->v, n);
        g4c_rms_norm(pool, q, q, L->q_norm, n * nh, hd, v->eps);
        g4c_rms_norm(pool, kk, kk, L->k_norm, n * nh, hd, v->eps);
        g4c_rms_norm(pool, vv, vv, NULL, n * nh, hd, v->eps);
        rope2d(q, n, nh, hd, cs, sn);
        rope2d(kk, n, nh, hd, cs, sn);
        g4c_kv_view view = {.k = kk, .v = vv, .cap = n, .n_kv_head = nh, .head_dim = hd, .window = 0, .hi = hi};
        g4c_attention(pool, att, q, &view, n, 0, nh, scratch, n);
        clip_linear(pool, a, att, tmp, &L->o, n);
        g4c_rms_norm(pool, a, a, L->post_attn_norm, n, Hv, v->eps);
        for (size_t i = 0; i < (size_t)n * Hv; i++) x[i] += a[i];

        g4c_rms_norm(pool, a, x, L->pre_ffn_norm, n, Hv, v->eps);
        clip_linear(pool, f1, a, tmp, &L->gate, n);
        clip_linear(pool, f2, a, tmp, &L->up, n);
        g4c_gelu_mul(pool, f1, f1, f2, n * F);
        clip_linear(pool, a, f1, tmp, &L->down, n);
        g4c_rms_norm(pool, a, a, L->post_ffn_norm, n, Hv, v->eps);
        for (size_t i = 0; i < (size_t)n * Hv; i++) x[i] += a[i];
    }

    /* §4.4 pooler: token (x/k) + (pw/k)·(y/k) = mean of its k² patches (HF: one_hot / k² then a matmul, summed in
     * patch order), then × √n_embd_v; §4.5 standardize */
    memset(pooled, 0, sizeof(float) * (size_t)n_out * Hv);
    const float inv_k2 = 1.0f / (float)(k * k), root = sqrtf((float)Hv);
    for (int i = 0; i < n; i++) {
        const int o = pos[2 * i] / k + (pw / k) * (pos[2 * i + 1] / k);
        for (int d = 0; d < Hv; d++) pooled[(size_t)o * Hv + d] += x[(size_t)i * Hv + d] * inv_k2;
    }
    for (size_t i = 0; i < (size_t)n_out * Hv; i++) {
        pooled[i] *= root;
        if (v->standardize) pooled[i] = (pooled[i] - w->std_bias[i % Hv]) * w->std_scale[i % Hv];
    }
    /* §4.6 projector: RMSNorm without scale, then embedding_projection */
    g4c_rms_norm(pool, pooled, pooled, NULL, n_out, Hv, v->eps);
    g4c_matmul(pool, out, pooled, &w->mm_proj, n_out);
done:
    g4c_afree(x), g4c_afree(a), g4c_afree(q), g4c_afree(kk), g4c_afree(vv), g4c_afree(att), g4c_afree(f1);
    g4c_afree(f2), g4c_afree(tmp), g4c_afree(cs), g4c_afree(sn), g4c_afree(scratch), free(hi), g4c_afree(pooled);
    return st;
}
