/* Gemma 4 text decoder forward pass over one ubatch of tokens (spec §3). Activations f32, [n_tok][dim] row-major;
 * weights in their stored dtype through kernels/ops.h. The layer reads like HF Gemma4TextDecoderLayer.forward:
 * sandwich norms around attention and FFN, optional MoE branch, optional per-layer-embedding block, and the whole
 * residual stream scaled by layer_scalar at the end. */
#include <math.h>

#include "model/model.h"

/* §3.1 embedding and §3.2 per-layer embeddings. Multimodal placeholders are looked up as pad (HF Gemma4Model),
 * their rows are overwritten by vision soft tokens (issue 3). */
static int is_placeholder(const g4c_config *c, int tok) {
    return tok == c->image_token_id || tok == c->video_token_id || tok == c->audio_token_id;
}

int g4c_is_mm_placeholder(const g4c_config *c, int32_t tok) {
    return tok == c->image_token_id || tok == c->video_token_id;
}

static void embed(g4c_text_state *s, const g4c_config *c, const g4c_weights *w, g4c_pool *pool,
                  const int32_t *tokens, const float *mm_embd, int n) {
    const int H = c->n_embd;
    /* HF: embed_tokens(ids) * embed_scale, embed_scale = sqrt(hidden_size) in the weight dtype (f32 here: exact) */
    const float scale = sqrtf((float)H);
    for (int t = 0; t < n; t++) {
        const int tok = is_placeholder(c, tokens[t]) ? c->pad_id : tokens[t];
        float *xt = s->x + (size_t)t * H;
        g4c_wmat_row_f32(&w->embed, tok, xt);
        for (int i = 0; i < H; i++) xt[i] *= scale;
    }
    /* soft tokens overwrite the placeholder rows, unscaled (HF masked_scatter) */
    for (int t = 0, m = 0; t < n && mm_embd; t++)
        if (g4c_is_mm_placeholder(c, tokens[t])) memcpy(s->x + (size_t)t * H, mm_embd + (size_t)m++ * H, sizeof(float) * H);
    if (!c->ple_dim) return;
    const int P = c->ple_dim, LP = c->n_layer * P;
    const float tok_scale = sqrtf((float)P), proj_scale = 1.0f / sqrtf((float)H), mix = 1.0f / sqrtf(2.0f);
    /* ctx_pl = rmsnorm((h0 · W_plmpᵀ) · H^-½) per layer chunk; tok_pl = E_pl[tok] · √P; ple = (ctx + tok) · 2^-½ */
    g4c_matmul(pool, s->ple, s->x, &w->ple_model_proj, n);
    for (size_t i = 0; i < (size_t)n * LP; i++) s->ple[i] *= proj_scale;
    g4c_rms_norm(pool, s->ple, s->ple, w->ple_proj_norm, n * c->n_layer, P, c->eps);
    for (int t = 0; t < n; t++) {
        const int tok = is_placeholder(c, tokens[t]) ? c->pad_id : tokens[t];
        float *tp = s->ple_tmp + (size_t)t * LP, *pt = s->ple + (size_t)t * LP;
        g4c_wmat_row_f32(&w->ple_embed, tok, tp);
        for (int i = 0; i < LP; i++) pt[i] = (pt[i] + tp[i] * tok_scale) * mix;
    }
}

/* §3.5: cos/sin per position, f32 like HF (angle = pos · inv_freq rounded to f32, then cos/sin). */
static void rope_tables(g4c_text_state *s, int n) {
    for (int t = 0; t < 2; t++) {
        const int half = s->rope_hd[t] / 2;
        for (int i = 0; i < n; i++) {
            const float pos = (float)(s->n_past + i);
            for (int k = 0; k < half; k++) {
                const float ang = pos * s->inv_freq[t][k];
                s->rope_cos[t][(size_t)i * half + k] = cosf(ang);
                s->rope_sin[t][(size_t)i * half + k] = sinf(ang);
            }
        }
    }
}

/* §3.4 attention sub-block: returns o_proj output in s->a. */
static void attention(g4c_text_state *s, const g4c_config *c, const g4c_weights *w, g4c_pool *pool, int il, int n) {
    const g4c_layer_cfg *lc = &c->layers[il];
    const g4c_layer_w *L = &w->layers[il];
    const int hd = lc->head_dim, nq = c->n_head, nkv = lc->n_kv_head, half = hd / 2;
    const float *cs = s->rope_cos[lc->type], *sn = s->rope_sin[lc->type];

    /* q, k and v read the same input: one pass of the pool */
    const g4c_mm qkv[3] = {{s->q, s->a, &L->q}, {s->kbuf, s->a, &L->k}, {s->vbuf, s->a, &L->v}};
    g4c_matmul_many(pool, qkv, lc->kv_slot < 0 ? 1 : lc->k_eq_v ? 2 : 3, n);
    g4c_rms_norm(pool, s->q, s->q, L->q_norm, n * nq, hd, c->eps);
    for (int t = 0; t < n; t++) g4c_rope(s->q + (size_t)t * nq * hd, nq, hd, cs + (size_t)t * half, sn + (size_t)t * half);

    if (lc->kv_slot >= 0) {
        g4c_kv_layer *kv = &s->kv[lc->kv_slot];
        if (lc->k_eq_v) /* V = v_norm(raw k projection), before k_norm and RoPE (spec §3.4, pitfall 4) */
            memcpy(s->vbuf, s->kbuf, sizeof(float) * (size_t)n * nkv * hd);
        g4c_rms_norm(pool, s->kbuf, s->kbuf, L->k_norm, n * nkv, hd, c->eps);
        g4c_rms_norm(pool, s->vbuf, s->vbuf, NULL, n * nkv, hd, c->eps);
        for (int t = 0; t < n; t++) {
            g4c_rope(s->kbuf + (size_t)t * nkv * hd, nkv, hd, cs + (size_t)t * half, sn + (size_t)t * half);
            const size_t slot = (size_t)((s->n_past + t) % kv->cap) * nkv * hd;
            memcpy(kv->k + slot, s->kbuf + (size_t)t * nkv * hd, sizeof(float) * (size_t)nkv * hd);
            memcpy(kv->v + slot, s->vbuf + (size_t)t * nkv * hd, sizeof(float) * (size_t)nkv * hd);
        }
    }
    const g4c_kv_layer *src = &s->kv[c->layers[lc->kv_source].kv_slot];
    const int sliding = lc->type == G4C_LAYER_SLIDING;
    g4c_kv_view view = {src->k, src->v, src->cap, nkv, hd, sliding ? c->sliding_window : 0,
                        sliding && c->bidir_vision && !s->bidir_off ? s->attn_hi : NULL};
    g4c_attention(pool, s->attn, s->q, &view, n, s->n_past, nq, s->attn_scratch, s->attn_scratch_per_thread);
    g4c_matmul(pool, s->a, s->attn, &L->o, n);
}

/* GeGLU MLP (§3.7): out[n][H] = down(gelu(gate(in)) ⊙ up(in)). also: one more product (or NULL) computed in the
 * gate/up pass (the MoE router: a small f32 matrix that streams poorly alone, ~3% of a 26B-A4B token). */
static void mlp(g4c_text_state *s, g4c_pool *pool, float *out, const float *in, const g4c_wmat *gate,
                const g4c_wmat *up, const g4c_wmat *down, int n, const g4c_mm *also) {
    const g4c_mm gu[3] = {{s->ffn_a, in, gate}, {s->ffn_b, in, up}, also ? *also : (g4c_mm){0}};
    g4c_matmul_many(pool, gu, also ? 3 : 2, n);
    g4c_gelu_mul(pool, s->ffn_c, s->ffn_a, s->ffn_b, n * (int)gate->rows);
    g4c_matmul(pool, out, s->ffn_c, down, n);
}

/* Expert e's gate (which 0), up (1) or down (2) rows: fused (HF gate_up_proj: per expert I gate rows then I up
 * rows) or split (mlx-vlm switch_glu) */
static g4c_wmat expert_rows(const g4c_layer_w *L, int which, int e, int I, int H) {
    const int split = L->exp_gate.data != NULL;
    if (which == 2) return g4c_wmat_rows(L->exp_down, (int64_t)e * H, H);
    if (split) return g4c_wmat_rows(which ? L->exp_up : L->exp_gate, (int64_t)e * I, I);
    return g4c_wmat_rows(L->exp_gate_up, (int64_t)e * 2 * I + (which ? I : 0), I);
}

/* One token: its K experts' gate and up products in one pool pass, their down products in a second, summed in
 * expert order as the general path does (the same arithmetic per output, so decode == prefill still holds). */
static void moe_decode(g4c_text_state *s, const g4c_config *c, const g4c_layer_w *L, g4c_pool *pool) {
    const int H = c->n_embd, K = c->n_expert_used, I = c->moe_ffn_dim;
    int sel[16];
    float wt[16];
    for (int k = 0; k < K; k++) sel[k] = s->sel_expert[k], wt[k] = s->sel_weight[k];
    for (int a = 1; a < K; a++) /* by expert id (insertion sort of <= 16) */
        for (int b = a; b > 0 && sel[b] < sel[b - 1]; b--) {
            const int ti = sel[b];
            const float tw = wt[b];
            sel[b] = sel[b - 1], wt[b] = wt[b - 1];
            sel[b - 1] = ti, wt[b - 1] = tw;
        }
    float *gate = s->moe_dec, *up = gate + (size_t)K * I, *act = up + (size_t)K * I, *down = act + (size_t)K * I;
    g4c_wmat w[48] = {{0}};
    g4c_mm mm[32] = {{0}};
    for (int k = 0; k < K; k++) {
        w[3 * k] = expert_rows(L, 0, sel[k], I, H);
        w[3 * k + 1] = expert_rows(L, 1, sel[k], I, H);
        w[3 * k + 2] = expert_rows(L, 2, sel[k], I, H);
        mm[2 * k] = (g4c_mm){gate + (size_t)k * I, s->h2, &w[3 * k]};
        mm[2 * k + 1] = (g4c_mm){up + (size_t)k * I, s->h2, &w[3 * k + 1]};
    }
    g4c_matmul_many(pool, mm, 2 * K, 1);
    g4c_gelu_mul(pool, act, gate, up, K * I);
    for (int k = 0; k < K; k++) mm[k] = (g4c_mm){down + (size_t)k * H, act + (size_t)k * I, &w[3 * k + 2]};
    g4c_matmul_many(pool, mm, K, 1);
    for (int k = 0; k < K; k++)
        for (int i = 0; i < H; i++) s->moe_out[i] += wt[k] * down[(size_t)k * H + i];
}

/* §3.8 the router's input in s->moe_in: it reads the un-normalized residual, rmsnorm_noscale(x) · scale · H^-½
 * (HF Gemma4TextRouter). Its product (s->router_logits) runs in the dense MLP's gate/up pass. */
static void router_input(g4c_text_state *s, const g4c_config *c, const g4c_layer_w *L, g4c_pool *pool, int n) {
    const int H = c->n_embd;
    g4c_rms_norm(pool, s->moe_in, s->x, NULL, n, H, c->eps);
    const float root = 1.0f / sqrtf((float)H);
    for (int t = 0; t < n; t++)
        for (int i = 0; i < H; i++) s->moe_in[(size_t)t * H + i] *= L->router_scale[i] * root;
}

/* §3.8 MoE branch on the residual x, from the router logits: top-k -> experts, result in s->moe_out. */
static void moe(g4c_text_state *s, const g4c_config *c, const g4c_layer_w *L, g4c_pool *pool, int n) {
    const int H = c->n_embd, E = c->n_expert, K = c->n_expert_used, I = c->moe_ffn_dim;
    for (int t = 0; t < n; t++) {
        float *lg = s->router_logits + (size_t)t * E;
        float mx = -INFINITY, sum = 0;
        for (int e = 0; e < E; e++) mx = lg[e] > mx ? lg[e] : mx;
        for (int e = 0; e < E; e++) sum += (lg[e] = expf(lg[e] - mx));
        for (int e = 0; e < E; e++) lg[e] /= sum;
        /* top-k by probability; ties go to the lower expert id */
        int *sel = s->sel_expert + (size_t)t * K;
        float *wt = s->sel_weight + (size_t)t * K, tot = 0;
        for (int k = 0; k < K; k++) {
            int best = -1;
            for (int e = 0; e < E; e++) {
                int taken = 0;
                for (int j = 0; j < k; j++) taken |= sel[j] == e;
                if (!taken && (best < 0 || lg[e] > lg[best])) best = e;
            }
            sel[k] = best;
            wt[k] = lg[best];
            tot += wt[k];
        }
        for (int k = 0; k < K; k++) wt[k] = wt[k] / tot * L->per_expert_scale[sel[k]];
    }
    /* experts see rmsnorm(x, pre_feedforward_layernorm_2); run each expert once over the tokens routed to it */
    g4c_rms_norm(pool, s->h2, s->x, L->pre_ffn_norm_2, n, H, c->eps);
    memset(s->moe_out, 0, sizeof(float) * (size_t)n * H);
    if (n == 1 && s->moe_dec && K <= 16) {
        moe_decode(s, c, L, pool);
        return;
    }
    for (int e = 0; e < E; e++) {
        int m = 0;
        for (int t = 0; t < n; t++)
            for (int k = 0; k < K; k++)
                if (s->sel_expert[(size_t)t * K + k] == e) {
                    s->gather_idx[m] = t;
                    s->gather_w[m] = s->sel_weight[(size_t)t * K + k];
                    memcpy(s->moe_in + (size_t)m * H, s->h2 + (size_t)t * H, sizeof(float) * H);
                    m++;
                }
        if (!m) continue;
        const g4c_wmat gate = expert_rows(L, 0, e, I, H), up = expert_rows(L, 1, e, I, H),
                       down = expert_rows(L, 2, e, I, H);
        mlp(s, pool, s->a, s->moe_in, &gate, &up, &down, m, NULL);
        for (int r = 0; r < m; r++) {
            float *dst = s->moe_out + (size_t)s->gather_idx[r] * H;
            const float *src = s->a + (size_t)r * H, gw = s->gather_w[r];
            for (int i = 0; i < H; i++) dst[i] += gw * src[i];
        }
    }
}

/* §3.10 (transformers 5.17): on sliding layers of "vision" models a placeholder may also see the later tokens
 * of its own run; the window still bounds the past side. Everything else is causal. */
void g4c_text_visible_hi(const g4c_config *c, const int32_t *tokens, int n, int n_past, int *hi) {
    for (int t = n - 1; t >= 0; t--) {
        hi[t] = n_past + t;
        if (g4c_is_mm_placeholder(c, tokens[t]) && t + 1 < n && g4c_is_mm_placeholder(c, tokens[t + 1]))
            hi[t] = hi[t + 1];
    }
}

void g4c_text_forward(g4c_text_state *s, const g4c_config *c, const g4c_weights *w, g4c_pool *pool,
                      const int32_t *tokens, const float *mm_embd, int n, float *logits, int all_logits) {
    G4C_ASSERT(n > 0 && n <= s->n_ubatch && s->n_past + n <= s->n_ctx);
    const int H = c->n_embd;
    const size_t nH = (size_t)n * H;
    embed(s, c, w, pool, tokens, mm_embd, n);
    g4c_text_visible_hi(c, tokens, n, s->n_past, s->attn_hi);
    rope_tables(s, n);
    if (s->trace) s->trace(s->trace_user, "embed", -1, s->x, n, H);
    for (int il = 0; il < c->n_layer; il++) {
        const g4c_layer_w *L = &w->layers[il];
        /* attention: x += post_attn_norm(attn(input_norm(x))) */
        g4c_rms_norm(pool, s->a, s->x, L->attn_norm, n, H, c->eps);
        attention(s, c, w, pool, il, n);
        g4c_rms_norm(pool, s->a, s->a, L->post_attn_norm, n, H, c->eps);
        for (size_t i = 0; i < nH; i++) s->x[i] += s->a[i];

        /* feed-forward: x += post_ffn_norm(mlp(pre_ffn_norm(x)) [+ MoE branch]) */
        g4c_rms_norm(pool, s->h2, s->x, L->pre_ffn_norm, n, H, c->eps);
        if (c->moe) router_input(s, c, L, pool, n);
        const g4c_mm router = {s->router_logits, s->moe_in, &L->router};
        mlp(s, pool, s->a, s->h2, &L->gate, &L->up, &L->down, n, c->moe ? &router : NULL);
        if (c->moe) {
            g4c_rms_norm(pool, s->a, s->a, L->post_ffn_norm_1, n, H, c->eps);
            float *dense = s->attn; /* free until the next layer (sized >= n_embd per token) */
            memcpy(dense, s->a, sizeof(float) * nH);
            moe(s, c, L, pool, n);
            g4c_rms_norm(pool, s->moe_out, s->moe_out, L->post_ffn_norm_2, n, H, c->eps);
            for (size_t i = 0; i < nH; i++) s->a[i] = dense[i] + s->moe_out[i];
        }
        g4c_rms_norm(pool, s->a, s->a, L->post_ffn_norm, n, H, c->eps);
        for (size_t i = 0; i < nH; i++) s->x[i] += s->a[i];

        /* per-layer embedding block (§3.2/§3.3): x += norm(proj(gelu(gate(x)) ⊙ ple[l])) */
        if (c->ple_dim) {
            const int P = c->ple_dim;
            g4c_matmul(pool, s->ffn_a, s->x, &L->ple_gate, n);
            for (int t = 0; t < n; t++) {
                float *g = s->ffn_a + (size_t)t * P;
                g4c_gelu_mul(pool, g, g, s->ple + ((size_t)t * c->n_layer + il) * P, P);
            }
            g4c_matmul(pool, s->a, s->ffn_a, &L->ple_proj, n);
            g4c_rms_norm(pool, s->a, s->a, L->ple_post_norm, n, H, c->eps);
            for (size_t i = 0; i < nH; i++) s->x[i] += s->a[i];
        }
        for (size_t i = 0; i < nH; i++) s->x[i] *= L->layer_scalar;
        if (s->trace) s->trace(s->trace_user, "layer_out", il, s->x, n, H);
    }
    s->n_past += n;
    if (!logits) return;
    /* §3.9: final norm, tied head, softcap */
    const int first = all_logits ? 0 : n - 1, m = n - first;
    g4c_rms_norm(pool, s->a, s->x + (size_t)first * H, w->final_norm, m, H, c->eps);
    g4c_matmul(pool, logits, s->a, &w->lm_head, m);
    if (c->final_softcap > 0) g4c_softcap(pool, logits, m * c->n_vocab, c->final_softcap);
}
