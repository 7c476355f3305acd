/* Per-sequence state: the KV cache (spec §3.6) and the activation buffers of one ubatch.
 * Full layers keep every position (cap = n_ctx). Sliding layers keep a ring of window - 1 + n_ubatch positions:
 * enough for the oldest query of a chunk to see its whole window while the chunk's own keys are written.
 * KV-shared layers (E2B/E4B) own no cache; they read their source layer's. */
#include <math.h>
#include <stdlib.h>

#include "model/model.h"

static float *zalloc(size_t n, g4c_err *err) {
    float *p = g4c_amalloc(n ? n : 1, sizeof(float), err);
    if (p) memset(p, 0, (n ? n : 1) * sizeof(float));
    return p;
}

/* inv_freq of HF's rope init functions, in f32 like torch (spec §3.5):
 *   default:      1 / theta^(2k/hd), k < hd/2
 *   proportional: same for k < floor(partial·hd/2), 0 above (those dims pass through), all divided by factor. */
static void rope_inv_freq(float *inv, const g4c_rope_cfg *r, int hd) {
    int n_rot = hd / 2;
    if (r->type == G4C_ROPE_PROPORTIONAL) n_rot = (int)floor((double)r->partial_rotary * hd / 2.0);
    for (int k = 0; k < hd / 2; k++) {
        float f = k < n_rot ? 1.0f / powf(r->theta, (float)(2 * k) / (float)hd) : 0.0f;
        inv[k] = f / r->factor;
    }
}

int g4c_kv_cap(const g4c_config *c, const g4c_layer_cfg *l, int n_ctx, int n_ubatch) {
    return l->type == G4C_LAYER_SLIDING && c->sliding_window - 1 + n_ubatch < n_ctx ? c->sliding_window - 1 + n_ubatch
                                                                                     : n_ctx;
}

size_t g4c_kv_bytes(const g4c_config *c, int n_ctx, int n_ubatch) {
    size_t b = 0;
    for (int i = 0; i < c->n_layer; i++) {
        const g4c_layer_cfg *l = &c->layers[i];
        if (l->kv_slot >= 0)
            b += 2 * sizeof(float) * (size_t)g4c_kv_cap(c, l, n_ctx, n_ubatch) * (size_t)l->n_kv_head * (size_t)l->head_dim;
    }
    return b;
}

g4c_status g4c_text_state_init(g4c_text_state *s, const g4c_config *c, int n_ctx, int n_ubatch, int n_threads,
                               g4c_err *err) {
    memset(s, 0, sizeof *s);
    if (n_ctx < 1 || n_ubatch < 1)
        return G4C_FAIL(err, G4C_E_ARG, "n_ctx (%d) and n_ubatch (%d) must be positive", n_ctx, n_ubatch);
    if (n_ubatch > n_ctx) n_ubatch = n_ctx;
    s->n_ctx = n_ctx;
    s->n_ubatch = n_ubatch;
    const size_t U = (size_t)n_ubatch, H = (size_t)c->n_embd;
    size_t max_qd = 0, max_kvd = 0, max_ffn = 0;
    for (int i = 0; i < c->n_layer; i++) {
        const g4c_layer_cfg *l = &c->layers[i];
        if ((size_t)(c->n_head * l->head_dim) > max_qd) max_qd = (size_t)c->n_head * l->head_dim;
        if ((size_t)(l->n_kv_head * l->head_dim) > max_kvd) max_kvd = (size_t)l->n_kv_head * l->head_dim;
        if ((size_t)l->ffn_dim > max_ffn) max_ffn = (size_t)l->ffn_dim;
        s->rope_hd[l->type] = l->head_dim;
    }
    if (max_qd < H) max_qd = H; /* attn doubles as MoE scratch */
    if (c->moe && (size_t)(2 * c->moe_ffn_dim) > max_ffn) max_ffn = (size_t)2 * c->moe_ffn_dim;
    if ((size_t)c->ple_dim > max_ffn) max_ffn = (size_t)c->ple_dim;

    s->kv = g4c_calloc((size_t)c->n_kv_slots, sizeof *s->kv, err);
    if (!s->kv) goto nomem;
    for (int i = 0; i < c->n_layer; i++) {
        const g4c_layer_cfg *l = &c->layers[i];
        if (l->kv_slot < 0) continue;
        g4c_kv_layer *kv = &s->kv[l->kv_slot];
        const int cap = g4c_kv_cap(c, l, n_ctx, n_ubatch);
        kv->cap = cap;
        kv->n_kv_head = l->n_kv_head;
        kv->head_dim = l->head_dim;
        const size_t n = (size_t)cap * (size_t)l->n_kv_head * (size_t)l->head_dim;
        if (!(kv->k = zalloc(n, err)) || !(kv->v = zalloc(n, err))) goto nomem;
    }
    if (!(s->x = zalloc(U * H, err)) || !(s->a = zalloc(U * H, err)) || !(s->h2 = zalloc(U * H, err)) ||
        !(s->q = zalloc(U * max_qd, err)) || !(s->attn = zalloc(U * max_qd, err)) ||
        !(s->kbuf = zalloc(U * max_kvd, err)) || !(s->vbuf = zalloc(U * max_kvd, err)) ||
        !(s->ffn_a = zalloc(U * max_ffn, err)) || !(s->ffn_b = zalloc(U * max_ffn, err)) ||
        !(s->ffn_c = zalloc(U * max_ffn, err)))
        goto nomem;
    for (int t = 0; t < 2; t++) {
        const size_t half = (size_t)(s->rope_hd[t] / 2);
        if (!(s->rope_cos[t] = zalloc(U * half, err)) || !(s->rope_sin[t] = zalloc(U * half, err)) ||
            !(s->inv_freq[t] = zalloc(half, err)))
            goto nomem;
        if (half) rope_inv_freq(s->inv_freq[t], &c->rope[t], s->rope_hd[t]);
    }
    if (c->ple_dim) {
        const size_t LP = (size_t)c->n_layer * (size_t)c->ple_dim;
        if (!(s->ple = zalloc(U * LP, err)) || !(s->ple_tmp = zalloc(U * LP, err))) goto nomem;
    }
    if (c->moe) {
        const size_t E = (size_t)c->n_expert, K = (size_t)c->n_expert_used;
        s->sel_expert = g4c_calloc(U * K, sizeof(int), err);
        s->gather_idx = g4c_calloc(U * K, sizeof(int), err);
        if (!s->sel_expert || !s->gather_idx || !(s->router_logits = zalloc(U * E, err)) ||
            !(s->sel_weight = zalloc(U * K, err)) || !(s->gather_w = zalloc(U, err)) || !(s->moe_in = zalloc(U * H, err)) ||
            !(s->moe_out = zalloc(U * H, err)) || !(s->moe_dec = zalloc(K * (3 * (size_t)c->moe_ffn_dim + H), err)))
            goto nomem;
    }
    s->attn_hi = g4c_calloc(U, sizeof(int), err);
    if (!s->attn_hi) goto nomem;
    s->attn_scratch_per_thread = n_ctx;
    if (!(s->attn_scratch = zalloc((size_t)(n_threads > 0 ? n_threads : 1) * (size_t)n_ctx, err))) goto nomem;
    s->n_kv_slots = c->n_kv_slots;
    return G4C_OK;
nomem:
    s->n_kv_slots = c->n_kv_slots;
    g4c_text_state_free(s);
    return G4C_E_NOMEM;
}

void g4c_text_state_free(g4c_text_state *s) {
    if (s->kv)
        for (int i = 0; i < s->n_kv_slots; i++) {
            g4c_afree(s->kv[i].k);
            g4c_afree(s->kv[i].v);
        }
    free(s->kv);
    float *bufs[] = {s->x, s->a, s->h2, s->q, s->attn, s->kbuf, s->vbuf, s->ffn_a, s->ffn_b, s->ffn_c, s->ple,
                     s->ple_tmp, s->rope_cos[0], s->rope_cos[1], s->rope_sin[0], s->rope_sin[1], s->inv_freq[0],
                     s->inv_freq[1], s->attn_scratch, s->router_logits, s->sel_weight, s->gather_w, s->moe_in, s->moe_out, s->moe_dec};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) g4c_afree(bufs[i]);
    free(s->attn_hi);
    free(s->sel_expert);
    free(s->gather_idx);
    memset(s, 0, sizeof *s);
}
