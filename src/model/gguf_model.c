/* llama.cpp GGUF checkpoints -> the same g4c_config and tensors as a Hugging Face checkpoint (spec §8.2).
 * Text: general.architecture "gemma4", hyperparameters under "gemma4.*" (per-layer arrays allowed for the FFN width and
 * KV heads, a bool array marking sliding layers), tensors "token_embd.weight", "blk.N.attn_q.weight", ... Vision: an
 * mmproj GGUF (general.architecture "clip", clip.vision.projector_type "gemma4v") with "v.*" / "mm.*" tensors.
 * The tensors are re-exposed under their Hugging Face names (model.language_model.*, model.vision_tower.*,
 * model.embed_vision.*) in a tensor set that owns the mappings, so g4c_weights_bind and g4c_vision_bind work
 * unchanged and the weights stay in the mapped files. Two tensors are materialized (in an anonymous mapping owned by
 * the set): the conv-form patch embedding [Hv, 3, p, p] permuted to our [Hv, p·p·3] (row, col, channel) order, and
 * layer_scalar = 1 for a layer without layer_output_scale (llama.cpp treats it as optional).
 * Facts llama.cpp's metadata does not carry are read from "gemma4c.*" keys our writer adds (image/video token ids, the
 * EOS list, use_bidirectional_attention); without them: ids found by name in the vocabulary, else the released
 * models' ids, and the "vision" attention mask when full layers share K and V (the 26B/31B layout). */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "model/model.h"

/* ---- names --------------------------------------------------------------------------------------------------- */

static const char *const TEXT_GLOBAL[][2] = {
    {"token_embd.weight", "embed_tokens.weight"},
    {"output_norm.weight", "norm.weight"},
    {"per_layer_token_embd.weight", "embed_tokens_per_layer.weight"},
    {"per_layer_model_proj.weight", "per_layer_model_projection.weight"},
    {"per_layer_proj_norm.weight", "per_layer_projection_norm.weight"},
};
static const char *const TEXT_LAYER[][2] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_q_norm.weight", "self_attn.q_norm.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_k_norm.weight", "self_attn.k_norm.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"post_attention_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_norm.weight", "pre_feedforward_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
    {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"},
    {"layer_output_scale.weight", "layer_scalar"},
    {"inp_gate.weight", "per_layer_input_gate.weight"},
    {"proj.weight", "per_layer_projection.weight"},
    {"post_norm.weight", "post_per_layer_input_norm.weight"},
    {"ffn_gate_inp.weight", "router.proj.weight"},
    {"ffn_gate_inp.scale", "router.scale"},
    {"ffn_gate_up_exps.weight", "experts.gate_up_proj"},
    {"ffn_down_exps.weight", "experts.down_proj"},
    {"ffn_down_exps.scale", "router.per_expert_scale"},
    {"pre_ffw_norm_2.weight", "pre_feedforward_layernorm_2.weight"},
    {"post_ffw_norm_1.weight", "post_feedforward_layernorm_1.weight"},
    {"post_ffw_norm_2.weight", "post_feedforward_layernorm_2.weight"},
};
static const char *const VIS_GLOBAL[][2] = {
    {"v.patch_embd.weight", "model.vision_tower.patch_embedder.input_proj.weight"},
    {"v.position_embd.weight", "model.vision_tower.patch_embedder.position_embedding_table"},
    {"v.std_bias", "model.vision_tower.std_bias"},
    {"v.std_scale", "model.vision_tower.std_scale"},
    {"v.std_bias.weight", "model.vision_tower.std_bias"},
    {"v.std_scale.weight", "model.vision_tower.std_scale"},
    {"mm.input_projection.weight", "model.embed_vision.embedding_projection.weight"},
};
static const char *const VIS_NORM[][2] = {
    {"ln1", "input_layernorm"},         {"attn_post_norm", "post_attention_layernorm"},
    {"ln2", "pre_feedforward_layernorm"}, {"ffn_post_norm", "post_feedforward_layernorm"},
    {"attn_q_norm", "self_attn.q_norm"}, {"attn_k_norm", "self_attn.k_norm"},
};
static const char *const VIS_LINEAR[][2] = {
    {"attn_q", "self_attn.q_proj"},   {"attn_k", "self_attn.k_proj"}, {"attn_v", "self_attn.v_proj"},
    {"attn_out", "self_attn.o_proj"}, {"ffn_gate", "mlp.gate_proj"},  {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};
static const char *const CLIP_SUFFIX[4] = {"input_min", "input_max", "output_min", "output_max"};

/* "blk.12.rest" -> 12 and rest; -1 if name does not start with prefix followed by a layer number and a dot. */
static int layer_of(const char *name, const char *prefix, const char **rest) {
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0) return -1;
    const char *p = name + n;
    int il = 0, digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 6) il = il * 10 + (*p++ - '0'), digits++;
    if (!digits || *p != '.' || (digits > 1 && name[n] == '0')) return -1;
    *rest = p + 1;
    return il;
}

int g4c_gguf_name_to_hf(const char *g, char *hf, size_t size) {
    const char *rest;
    int il, n = -1;
    for (size_t i = 0; i < sizeof TEXT_GLOBAL / sizeof *TEXT_GLOBAL && n < 0; i++)
        if (!strcmp(g, TEXT_GLOBAL[i][0])) n = snprintf(hf, size, "model.language_model.%s", TEXT_GLOBAL[i][1]);
    if (n < 0 && !strcmp(g, "output.weight")) n = snprintf(hf, size, "lm_head.weight");
    for (size_t i = 0; i < sizeof VIS_GLOBAL / sizeof *VIS_GLOBAL && n < 0; i++)
        if (!strcmp(g, VIS_GLOBAL[i][0])) n = snprintf(hf, size, "%s", VIS_GLOBAL[i][1]);
    if (n < 0 && (il = layer_of(g, "blk.", &rest)) >= 0)
        for (size_t i = 0; i < sizeof TEXT_LAYER / sizeof *TEXT_LAYER && n < 0; i++)
            if (!strcmp(rest, TEXT_LAYER[i][0]))
                n = snprintf(hf, size, "model.language_model.layers.%d.%s", il, TEXT_LAYER[i][1]);
    if (n < 0 && (il = layer_of(g, "v.blk.", &rest)) >= 0) {
        const char *const pre = "model.vision_tower.encoder.layers.";
        for (size_t i = 0; i < sizeof VIS_NORM / sizeof *VIS_NORM && n < 0; i++) {
            size_t k = strlen(VIS_NORM[i][0]);
            if (!strncmp(rest, VIS_NORM[i][0], k) && !strcmp(rest + k, ".weight"))
                n = snprintf(hf, size, "%s%d.%s.weight", pre, il, VIS_NORM[i][1]);
        }
        for (size_t i = 0; i < sizeof VIS_LINEAR / sizeof *VIS_LINEAR && n < 0; i++) {
            size_t k = strlen(VIS_LINEAR[i][0]);
            if (strncmp(rest, VIS_LINEAR[i][0], k) || rest[k] != '.') continue;
            if (!strcmp(rest + k + 1, "weight")) n = snprintf(hf, size, "%s%d.%s.linear.weight", pre, il, VIS_LINEAR[i][1]);
            for (int c = 0; c < 4 && n < 0; c++)
                if (!strcmp(rest + k + 1, CLIP_SUFFIX[c]))
                    n = snprintf(hf, size, "%s%d.%s.%s", pre, il, VIS_LINEAR[i][1], CLIP_SUFFIX[c]);
        }
    }
    return n >= 0 && (size_t)n < size;
}

int g4c_hf_name_to_gguf(const char *hf, char *g, size_t size) {
    const char *rest;
    int il, n = -1;
    const char *const tp = "model.language_model.";
    if (!strcmp(hf, "lm_head.weight")) n = snprintf(g, size, "output.weight");
    if (n < 0 && !strncmp(hf, tp, strlen(tp))) {
        const char *s = hf + strlen(tp);
        for (size_t i = 0; i < sizeof TEXT_GLOBAL / sizeof *TEXT_GLOBAL && n < 0; i++)
            if (!strcmp(s, TEXT_GLOBAL[i][1])) n = snprintf(g, size, "%s", TEXT_GLOBAL[i][0]);
        if (n < 0 && (il = layer_of(s, "layers.", &rest)) >= 0)
            for (size_t i = 0; i < sizeof TEXT_LAYER / sizeof *TEXT_LAYER && n < 0; i++)
                if (!strcmp(rest, TEXT_LAYER[i][1])) n = snprintf(g, size, "blk.%d.%s", il, TEXT_LAYER[i][0]);
    }
    for (size_t i = 0; i < sizeof VIS_GLOBAL / sizeof *VIS_GLOBAL && n < 0; i++)
        if (!strcmp(hf, VIS_GLOBAL[i][1])) n = snprintf(g, size, "%s", VIS_GLOBAL[i][0]);
    if (n < 0 && (il = layer_of(hf, "model.vision_tower.encoder.layers.", &rest)) >= 0) {
        for (size_t i = 0; i < sizeof VIS_NORM / sizeof *VIS_NORM && n < 0; i++) {
            size_t k = strlen(VIS_NORM[i][1]);
            if (!strncmp(rest, VIS_NORM[i][1], k) && !strcmp(rest + k, ".weight"))
                n = snprintf(g, size, "v.blk.%d.%s.weight", il, VIS_NORM[i][0]);
        }
        for (size_t i = 0; i < sizeof VIS_LINEAR / sizeof *VIS_LINEAR && n < 0; i++) {
            size_t k = strlen(VIS_LINEAR[i][1]);
            if (strncmp(rest, VIS_LINEAR[i][1], k) || rest[k] != '.') continue;
            if (!strcmp(rest + k + 1, "linear.weight")) n = snprintf(g, size, "v.blk.%d.%s.weight", il, VIS_LINEAR[i][0]);
            for (int c = 0; c < 4 && n < 0; c++)
                if (!strcmp(rest + k + 1, CLIP_SUFFIX[c]))
                    n = snprintf(g, size, "v.blk.%d.%s.%s", il, VIS_LINEAR[i][0], CLIP_SUFFIX[c]);
        }
    }
    return n >= 0 && (size_t)n < size;
}

/* ---- config ---------------------------------------------------------------------------------------------------- */

#define BIG (1 << 24)

static g4c_status arch_is(const g4c_gguf *g, const char *want, g4c_err *err) {
    const char *a;
    size_t n;
    G4C_TRY(g4c_gguf_get_str(g, "general.architecture", &a, &n, NULL, err));
    if (n != strlen(want) || memcmp(a, want, n))
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: general.architecture is \"%.*s\", expected \"%s\"", g->what,
                        (int)(n > 40 ? 40 : n), a, want);
    return G4C_OK;
}

/* key "gemma4.<name>" */
static const char *K(char *buf, const char *name) {
    snprintf(buf, 128, "gemma4.%s", name);
    return buf;
}

static int geti(const g4c_gguf *g, const char *key, int64_t lo, int64_t hi, int dflt, g4c_status *st, g4c_err *err) {
    int64_t v = dflt;
    int found = 0;
    if (*st == G4C_OK) *st = g4c_gguf_get_int(g, key, lo, hi, &v, dflt == INT32_MIN ? NULL : &found, err);
    return (int)v;
}

/* id of a piece in tokenizer.ggml.tokens, or -1 */
static int token_id(const g4c_gguf *g, const char *piece) {
    const g4c_gguf_kv *kv = g4c_gguf_find(g, "tokenizer.ggml.tokens");
    if (!kv || kv->type != G4C_GGUF_ARR || kv->arr_type != G4C_GGUF_STR) return -1;
    size_t pos = 0, len, n = strlen(piece);
    const char *s;
    for (int id = 0; g4c_gguf_arr_str_next(kv, &pos, &s, &len); id++)
        if (len == n && !memcmp(s, piece, n)) return id;
    return -1;
}

/* The KV-sharing map and per-layer checks (the rules of config.c's parse_text, spec §1.2). */
static g4c_status finish_layers(g4c_config *c, const char *what, g4c_err *err) {
    for (int i = 0; i < c->n_layer; i++)
        for (int j = 0; j < i; j++)
            if (c->layers[j].type == c->layers[i].type && c->layers[j].head_dim != c->layers[i].head_dim)
                return G4C_FAIL(err, G4C_E_CONFIG, "%s: layers %d and %d are of one type but have head_dim %d and %d",
                                what, j, i, c->layers[j].head_dim, c->layers[i].head_dim);
    const int first_shared = c->n_layer - c->n_kv_shared;
    for (int i = 0; i < c->n_layer; i++) {
        g4c_layer_cfg *lc = &c->layers[i];
        if (lc->head_dim % 2 || c->n_head % lc->n_kv_head)
            return G4C_FAIL(err, G4C_E_CONFIG, "%s: layer %d: head_dim %d must be even and %d query heads a multiple of "
                            "%d kv heads", what, i, lc->head_dim, c->n_head, lc->n_kv_head);
        lc->k_eq_v = c->k_eq_v && lc->type == G4C_LAYER_FULL;
        if (i < first_shared) {
            lc->kv_source = i;
            lc->kv_slot = c->n_kv_slots++;
            continue;
        }
        lc->kv_slot = lc->kv_source = -1;
        for (int j = first_shared - 1; j >= 0 && lc->kv_source < 0; j--)
            if (c->layers[j].type == lc->type) lc->kv_source = j;
        if (lc->kv_source < 0)
            return G4C_FAIL(err, G4C_E_CONFIG, "%s: layer %d shares KV but no earlier non-shared layer of its type "
                            "exists (shared_kv_layers %d)", what, i, c->n_kv_shared);
        const g4c_layer_cfg *src = &c->layers[lc->kv_source];
        if (src->head_dim != lc->head_dim || src->n_kv_head != lc->n_kv_head)
            return G4C_FAIL(err, G4C_E_CONFIG, "%s: layer %d shares KV with layer %d but their shapes differ", what, i,
                            lc->kv_source);
    }
    return G4C_OK;
}

/* Full layers: rope_freqs [hd/2] = f (k < n_rot) then >= 1e29 ("no rotation"), the converter's proportional RoPE. */
static g4c_status full_rope(g4c_config *c, const g4c_gguf *g, int hd, int n_rot_dims, g4c_err *err) {
    g4c_rope_cfg *r = &c->rope[G4C_LAYER_FULL];
    const g4c_st_tensor *t = g4c_st_find(g->ts, "rope_freqs.weight");
    if (n_rot_dims != hd)
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: gemma4.rope.dimension_count %d differs from the full layers' "
                        "head size %d (partial rotation is expressed with rope_freqs)", g->what, n_rot_dims, hd);
    if (!t) {
        r->type = G4C_ROPE_DEFAULT, r->partial_rotary = 1, r->factor = 1;
        return G4C_OK;
    }
    if (t->dtype != G4C_DTYPE_F32 || t->ndim != 1 || t->shape[0] != hd / 2)
        return G4C_FAIL(err, G4C_E_CONFIG, "%s: rope_freqs.weight must be F32 [%d] (one divisor per rotated pair)",
                        g->what, hd / 2);
    float f[4096];
    if (hd / 2 > 4096) return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: head size %d", g->what, hd);
    memcpy(f, t->data, sizeof(float) * (size_t)(hd / 2));
    int n = 0;
    while (n < hd / 2 && f[n] < 1e29f) n++;
    for (int k = 0; k < hd / 2; k++)
        if (!(k < n ? f[k] == f[0] && f[k] > 0 : f[k] >= 1e29f))
            return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: rope_freqs.weight[%d] = %g: only a constant divisor followed "
                            "by >= 1e29 (proportional RoPE) is supported", g->what, k, (double)f[k]);
    r->type = G4C_ROPE_PROPORTIONAL;
    r->factor = n ? f[0] : 1.0f;
    r->partial_rotary = (float)(2.0 * n / hd);
    while ((int)floor((double)r->partial_rotary * hd / 2.0) < n) r->partial_rotary = nextafterf(r->partial_rotary, 2);
    return G4C_OK;
}

static g4c_status text_config(g4c_config *c, const g4c_gguf *g, g4c_err *err) {
    char kb[128];
    g4c_status st = arch_is(g, "gemma4", err);
    const int L = geti(g, K(kb, "block_count"), 1, 4096, INT32_MIN, &st, err);
    c->n_layer = L;
    c->n_embd = geti(g, K(kb, "embedding_length"), 1, BIG, INT32_MIN, &st, err);
    c->max_pos = geti(g, K(kb, "context_length"), 1, 1 << 30, 131072, &st, err);
    c->sliding_window = geti(g, K(kb, "attention.sliding_window"), 1, BIG, INT32_MIN, &st, err);
    c->n_kv_shared = geti(g, K(kb, "attention.shared_kv_layers"), 0, L, 0, &st, err);
    c->ple_dim = geti(g, K(kb, "embedding_length_per_layer_input"), 0, 1 << 16, 0, &st, err);
    c->n_expert = geti(g, K(kb, "expert_count"), 0, 4096, 0, &st, err);
    const int hd_full = geti(g, K(kb, "attention.key_length"), 2, 4096, INT32_MIN, &st, err);
    const int hv_full = geti(g, K(kb, "attention.value_length"), 2, 4096, hd_full, &st, err);
    const int hd_swa = geti(g, K(kb, "attention.key_length_swa"), 2, 4096, hd_full, &st, err);
    const int hv_swa = geti(g, K(kb, "attention.value_length_swa"), 2, 4096, hd_swa, &st, err);
    const int rot_full = geti(g, K(kb, "rope.dimension_count"), 0, 4096, hd_full, &st, err);
    const int rot_swa = geti(g, K(kb, "rope.dimension_count_swa"), 0, 4096, rot_full, &st, err);
    if (st != G4C_OK) return st;
    if (c->n_expert) {
        c->moe = 1;
        c->n_expert_used = geti(g, K(kb, "expert_used_count"), 1, c->n_expert, INT32_MIN, &st, err);
        c->moe_ffn_dim = geti(g, K(kb, "expert_feed_forward_length"), 1, 1 << 20, INT32_MIN, &st, err);
    }
    double eps = 0, softcap = 0, base = 10000, base_swa;
    if (st == G4C_OK) st = g4c_gguf_get_real(g, K(kb, "attention.layer_norm_rms_epsilon"), &eps, NULL, err);
    if (st == G4C_OK) st = g4c_gguf_get_real(g, K(kb, "final_logit_softcapping"), &softcap, &(int){0}, err);
    if (st == G4C_OK) st = g4c_gguf_get_real(g, K(kb, "rope.freq_base"), &base, &(int){0}, err);
    base_swa = base;
    if (st == G4C_OK) st = g4c_gguf_get_real(g, K(kb, "rope.freq_base_swa"), &base_swa, &(int){0}, err);
    if (st != G4C_OK) return st;
    if (!(eps > 0 && eps <= 1) || !(softcap >= 0) || !(base > 1) || !(base_swa > 1))
        return G4C_FAIL(err, G4C_E_CONFIG, "%s: layer_norm_rms_epsilon, final_logit_softcapping or rope.freq_base out "
                        "of range", g->what);
    if (hd_full != hv_full || hd_swa != hv_swa)
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: key_length != value_length (Gemma 4 needs equal K and V heads)",
                        g->what);
    if (rot_swa != hd_swa)
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: gemma4.rope.dimension_count_swa %d differs from the sliding head "
                        "size %d", g->what, rot_swa, hd_swa);
    c->eps = (float)eps;
    c->final_softcap = (float)softcap;
    c->rope[G4C_LAYER_SLIDING] = (g4c_rope_cfg){G4C_ROPE_DEFAULT, (float)base_swa, 1.0f, 1.0f};
    c->rope[G4C_LAYER_FULL].theta = (float)base;
    G4C_TRY(full_rope(c, g, hd_full, rot_full, err));

    int64_t *tmp = g4c_malloc((size_t)L, 3 * sizeof(int64_t), err);
    int *swa = g4c_malloc((size_t)L, sizeof(int), err);
    c->layers = g4c_calloc((size_t)L, sizeof *c->layers, err);
    if (!tmp || !swa || !c->layers) st = G4C_E_NOMEM;
    int64_t *nh = tmp, *nkv = tmp + L, *ffn = tmp + 2 * L;
    if (st == G4C_OK) st = g4c_gguf_get_ints(g, K(kb, "attention.head_count"), 1, 4096, nh, L, NULL, err);
    for (int i = 0; st == G4C_OK && i < L; i++) nkv[i] = nh[i];
    if (st == G4C_OK) st = g4c_gguf_get_ints(g, K(kb, "attention.head_count_kv"), 1, 4096, nkv, L, &(int){0}, err);
    if (st == G4C_OK) st = g4c_gguf_get_ints(g, K(kb, "feed_forward_length"), 1, 1 << 20, ffn, L, NULL, err);
    if (st == G4C_OK) st = g4c_gguf_get_bools(g, K(kb, "attention.sliding_window_pattern"), swa, L, NULL, err);
    for (int i = 0; st == G4C_OK && i < L; i++) {
        if (nh[i] != nh[0])
            st = G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: gemma4.attention.head_count differs between layers", g->what);
        g4c_layer_cfg *lc = &c->layers[i];
        lc->type = swa[i] ? G4C_LAYER_SLIDING : G4C_LAYER_FULL;
        lc->head_dim = swa[i] ? hd_swa : hd_full;
        lc->n_kv_head = (int)nkv[i];
        lc->ffn_dim = (int)ffn[i];
    }
    c->n_head = L && st == G4C_OK ? (int)nh[0] : 0; /* nh is NULL when the allocation failed */
    free(tmp);
    free(swa);
    return st;
}

static g4c_status tensors_config(g4c_config *c, const g4c_gguf *g, g4c_err *err) {
    const g4c_st_tensor *emb = g4c_st_find(g->ts, "token_embd.weight");
    if (!emb || emb->ndim != 2 || emb->shape[0] < 1 || emb->shape[0] > (1 << 24))
        return G4C_FAIL(err, G4C_E_CONFIG, "%s: token_embd.weight is missing or not a [vocab, hidden] matrix", g->what);
    c->n_vocab = (int)emb->shape[0];
    c->tie_embeddings = g4c_st_find(g->ts, "output.weight") == NULL;
    c->ple_vocab = 262144; /* transformers' default, unused without per-layer embeddings */
    if (c->ple_dim) {
        const g4c_st_tensor *pe = g4c_st_find(g->ts, "per_layer_token_embd.weight");
        if (!pe || pe->ndim != 2 || pe->shape[0] < 1 || pe->shape[0] > (1 << 24))
            return G4C_FAIL(err, G4C_E_CONFIG, "%s: per_layer_token_embd.weight is missing or not 2-D", g->what);
        c->ple_vocab = (int)pe->shape[0];
    }
    /* K = V on full layers: inferred from the absence of attn_v on every full layer that computes KV */
    int with_v = 0, without_v = 0;
    for (int i = 0; i < c->n_layer - c->n_kv_shared; i++) {
        if (c->layers[i].type != G4C_LAYER_FULL) continue;
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", i);
        if (g4c_st_find(g->ts, name)) with_v++;
        else without_v++;
    }
    if (with_v && without_v)
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: some full-attention layers have attn_v and some do not", g->what);
    c->k_eq_v = without_v > 0;
    return G4C_OK;
}

static g4c_status token_config(g4c_config *c, const g4c_gguf *g, g4c_err *err) {
    g4c_status st = G4C_OK;
    const int V = c->n_vocab;
    c->bos_id = geti(g, "tokenizer.ggml.bos_token_id", 0, V - 1, V > 2 ? 2 : 0, &st, err);
    c->pad_id = geti(g, "tokenizer.ggml.padding_token_id", 0, V - 1, 0, &st, err);
    const int eos = geti(g, "tokenizer.ggml.eos_token_id", 0, V - 1, V > 1 ? 1 : 0, &st, err);
    if (st != G4C_OK) return st;
    const g4c_gguf_kv *list = g4c_gguf_find(g, "gemma4c.eos_token_ids");
    c->n_eos = 0;
    if (list) {
        if (list->type != G4C_GGUF_ARR || list->n < 1 || list->n > G4C_MAX_EOS)
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: gemma4c.eos_token_ids must be an array of 1 to %d ids", g->what,
                            G4C_MAX_EOS);
        for (uint64_t i = 0; i < list->n; i++) {
            int64_t id = g4c_gguf_arr_int(list, i);
            if (id < 0 || id >= V) return G4C_FAIL(err, G4C_E_FORMAT, "%s: gemma4c.eos_token_ids[%llu] is not a token id",
                                                   g->what, (unsigned long long)i);
            c->eos_ids[c->n_eos++] = (int)id;
        }
    } else {
        /* -it checkpoints also stop on <turn|> and <|tool_response> (spec §7) */
        int ids[3] = {eos, token_id(g, "<turn|>"), token_id(g, "<|tool_response>")};
        for (int i = 0; i < 3; i++) {
            int seen = ids[i] < 0;
            for (int j = 0; j < c->n_eos && !seen; j++) seen = c->eos_ids[j] == ids[i];
            if (!seen) c->eos_ids[c->n_eos++] = ids[i];
        }
    }
    static const struct { const char *key, *piece; int dflt; } MM[5] = {
        {"gemma4c.image_token_id", "<|image|>", 258880}, {"gemma4c.video_token_id", "<|video|>", 258884},
        {"gemma4c.audio_token_id", "<|audio|>", 258881}, {"gemma4c.boi_token_id", "<|image>", 255999},
        {"gemma4c.eoi_token_id", "<image|>", 258882}};
    int *dst[5] = {&c->image_token_id, &c->video_token_id, &c->audio_token_id, &c->boi_token_id, &c->eoi_token_id};
    for (int i = 0; i < 5 && st == G4C_OK; i++) {
        int id = token_id(g, MM[i].piece);
        *dst[i] = geti(g, MM[i].key, 0, 1 << 30, id >= 0 ? id : MM[i].dflt, &st, err);
    }
    const char *bd;
    size_t bn;
    int found = 0;
    if (st == G4C_OK) st = g4c_gguf_get_str(g, "gemma4c.use_bidirectional_attention", &bd, &bn, &found, err);
    if (st == G4C_OK) {
        if (found && !(bn == 6 && !memcmp(bd, "vision", 6)) && !(bn == 4 && !memcmp(bd, "none", 4)))
            return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: gemma4c.use_bidirectional_attention must be \"vision\" or "
                            "\"none\"", g->what);
        c->bidir_vision = found ? bn == 6 : c->k_eq_v;
    }
    return st;
}

g4c_status g4c_config_from_gguf(g4c_config *c, const g4c_gguf *g, g4c_err *err) {
    memset(c, 0, sizeof *c);
    g4c_status st = text_config(c, g, err);
    if (st == G4C_OK) st = tensors_config(c, g, err);
    if (st == G4C_OK) st = token_config(c, g, err);
    if (st == G4C_OK) st = finish_layers(c, g->what, err);
    if (st != G4C_OK) g4c_config_free(c);
    return st;
}

/* clip.* metadata of a gemma4v mmproj -> vision config (spec §8.2; hard-coded in llama.cpp: pooling 3, RoPE θ 100). */
g4c_status g4c_vision_cfg_from_gguf(g4c_vision_cfg *v, const g4c_gguf *g, g4c_err *err) {
    memset(v, 0, sizeof *v);
    G4C_TRY(arch_is(g, "clip", err));
    const char *pt = NULL;
    size_t pn = 0;
    int found = 0;
    G4C_TRY(g4c_gguf_get_str(g, "clip.vision.projector_type", &pt, &pn, &found, err));
    if (!found) G4C_TRY(g4c_gguf_get_str(g, "clip.projector_type", &pt, &pn, NULL, err));
    if (pn != 7 || memcmp(pt, "gemma4v", 7))
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: projector type \"%.*s\" (only gemma4v)", g->what,
                        (int)(pn > 40 ? 40 : pn), pt);
    g4c_status st = G4C_OK;
    v->present = 1;
    v->n_embd = geti(g, "clip.vision.embedding_length", 4, 1 << 16, INT32_MIN, &st, err);
    v->ffn_dim = geti(g, "clip.vision.feed_forward_length", 1, 1 << 20, INT32_MIN, &st, err);
    v->n_layer = geti(g, "clip.vision.block_count", 1, 1024, INT32_MIN, &st, err);
    v->n_head = geti(g, "clip.vision.attention.head_count", 1, 1024, INT32_MIN, &st, err);
    v->patch_size = geti(g, "clip.vision.patch_size", 1, 1024, INT32_MIN, &st, err);
    v->pool = geti(g, "gemma4c.vision.pooling_kernel_size", 1, 64, 3, &st, err);
    double eps = 1e-6, theta = 100;
    if (st == G4C_OK) st = g4c_gguf_get_real(g, "clip.vision.attention.layer_norm_epsilon", &eps, &(int){0}, err);
    if (st == G4C_OK) st = g4c_gguf_get_real(g, "gemma4c.vision.rope_theta", &theta, &(int){0}, err);
    if (st != G4C_OK) return st;
    if (v->n_embd % v->n_head || !(eps > 0 && eps <= 1) || !(theta > 1))
        return G4C_FAIL(err, G4C_E_CONFIG, "%s: vision hidden %d is not a multiple of its %d heads, or eps / rope theta "
                        "out of range", g->what, v->n_embd, v->n_head);
    v->head_dim = geti(g, "gemma4c.vision.head_dim", 4, 4096, v->n_embd / v->n_head, &st, err);
    if (st != G4C_OK) return st;
    if (v->head_dim % 4)
        return G4C_FAIL(err, G4C_E_CONFIG, "%s: vision head size %d: 2-D RoPE needs a multiple of 4", g->what,
                        v->head_dim);
    v->eps = (float)eps;
    v->rope_theta = (float)theta;
    const g4c_st_tensor *pe = g4c_st_find(g->ts, "v.position_embd.weight");
    if (!pe || pe->ndim != 3 || pe->shape[0] != 2 || pe->shape[1] < 1 || pe->shape[1] > (1 << 20))
        return G4C_FAIL(err, G4C_E_CONFIG, "%s: v.position_embd.weight must be [2, n_pos, %d]", g->what, v->n_embd);
    v->n_pos = (int)pe->shape[1];
    v->clipped_linears = g4c_st_find(g->ts, "v.blk.0.attn_q.input_min") != NULL;
    v->standardize = g4c_st_find(g->ts, "v.std_bias") || g4c_st_find(g->ts, "v.std_bias.weight");
    return G4C_OK;
}

/* ---- the tensors under Hugging Face names ---------------------------------------------------------------------- */

typedef struct {
    g4c_tensor_set *ts;
    int cap;
    g4c_err *err;
} view;

static g4c_status add_file(view *v, g4c_st_file f) {
    g4c_st_file *grown = realloc(v->ts->files, sizeof *grown * (size_t)(v->ts->n_files + 1));
    if (!grown) return G4C_FAIL(v->err, G4C_E_NOMEM, "out of memory");
    v->ts->files = grown;
    v->ts->files[v->ts->n_files++] = f;
    return G4C_OK;
}

static g4c_status add_tensor(view *v, const char *name, const g4c_st_tensor *like, const void *data, int i_file) {
    if (v->ts->n_tensors == v->cap) {
        int cap = v->cap ? 2 * v->cap : 256;
        g4c_st_tensor *g = realloc(v->ts->tensors, sizeof *g * (size_t)cap);
        if (!g) return G4C_FAIL(v->err, G4C_E_NOMEM, "out of memory");
        v->ts->tensors = g;
        v->cap = cap;
    }
    g4c_st_tensor t = *like;
    t.data = data;
    t.i_file = i_file;
    if (!(t.name = strdup(name))) return G4C_FAIL(v->err, G4C_E_NOMEM, "out of memory");
    v->ts->tensors[v->ts->n_tensors++] = t;
    return G4C_OK;
}

/* Take over g's mapping (so freeing g later leaves it alone); returns its file index in the view, or -1. */
static int adopt(view *v, g4c_gguf *g, g4c_status *st) {
    if (!g->ts->n_files) return -1;
    *st = add_file(v, g->ts->files[0]);
    if (*st != G4C_OK) return -1;
    free(g->ts->files);
    g->ts->files = NULL;
    g->ts->n_files = 0;
    return v->ts->n_files - 1;
}

/* Map every tensor of g with a Hugging Face name into the view. */
static g4c_status map_all(view *v, const g4c_gguf *g, int i_file) {
    for (int i = 0; i < g->ts->n_tensors; i++) {
        const g4c_st_tensor *t = &g->ts->tensors[i];
        char hf[512];
        if (!strcmp(t->name, "v.patch_embd.weight")) continue; /* materialized */
        if (!g4c_gguf_name_to_hf(t->name, hf, sizeof hf)) {
            if (strcmp(t->name, "rope_freqs.weight"))
                g4c_log(G4C_LOG_DEBUG, "%s: tensor %s is not used by gemma4c", g->what, t->name);
            continue;
        }
        G4C_TRY(add_tensor(v, hf, t, t->data, i_file));
    }
    return G4C_OK;
}

static int cmp_tname(const void *a, const void *b) {
    return strcmp(((const g4c_st_tensor *)a)->name, ((const g4c_st_tensor *)b)->name);
}

/* The view of text (and vision) GGUFs; takes over their mappings. */
static g4c_status build_view(g4c_tensor_set **out, g4c_gguf *tg, g4c_gguf *vg, const g4c_config *c, g4c_err *err) {
    view v = {.err = err};
    if (!(v.ts = g4c_calloc(1, sizeof *v.ts, err))) return G4C_E_NOMEM;
    g4c_status st = G4C_OK;
    const int ft = adopt(&v, tg, &st);
    const int fv = st == G4C_OK && vg ? adopt(&v, vg, &st) : -1;
    if (st == G4C_OK) st = map_all(&v, tg, ft);
    if (st == G4C_OK && vg) st = map_all(&v, vg, fv);
    /* materialized tensors: layer_scalar = 1 where layer_output_scale is absent; the patch embedding permuted */
    const g4c_st_tensor *pe = vg ? g4c_st_find(vg->ts, "v.patch_embd.weight") : NULL;
    const int64_t Hv = c->vision.n_embd, p = c->vision.patch_size;
    if (vg && (!pe || pe->ndim != 4 || pe->shape[0] != Hv || pe->shape[1] != 3 || pe->shape[2] != p ||
               pe->shape[3] != p || (pe->dtype != G4C_DTYPE_F32 && pe->dtype != G4C_DTYPE_F16 &&
                                     pe->dtype != G4C_DTYPE_BF16)))
        st = G4C_FAIL(err, G4C_E_CONFIG, "%s: v.patch_embd.weight must be an F32/F16/BF16 [%lld, 3, %lld, %lld] conv "
                      "kernel", vg->what, (long long)Hv, (long long)p, (long long)p);
    int n_missing = 0;
    for (int i = 0; i < c->n_layer; i++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.layer_output_scale.weight", i);
        n_missing += !g4c_st_find(tg->ts, name);
    }
    const size_t patch_n = vg ? (size_t)(Hv * 3 * p * p) : 0, bytes = sizeof(float) * (patch_n + (size_t)n_missing);
    if (st == G4C_OK && bytes) {
        float *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (buf == MAP_FAILED) st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory (%zu bytes)", bytes);
        if (st == G4C_OK) {
            g4c_st_file f = {.path = strdup("(converted from GGUF)"), .map = buf, .size = bytes};
            if (!f.path || (st = add_file(&v, f)) != G4C_OK) {
                munmap(buf, bytes);
                free(f.path);
                if (st == G4C_OK) st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
            }
        }
        if (st == G4C_OK) {
            const int fx = v.ts->n_files - 1;
            if (vg) { /* conv [Hv][c][py][px] -> [Hv][(py·p + px)·3 + c] */
                const int64_t pp = p * p;
                float *row = malloc(sizeof(float) * (size_t)(3 * pp));
                if (!row) st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
                for (int64_t h = 0; h < Hv && st == G4C_OK; h++) {
                    g4c_to_f32(row, (const char *)pe->data + (size_t)(h * 3 * pp) * g4c_dtype_infos[pe->dtype].size,
                               pe->dtype, (size_t)(3 * pp));
                    for (int64_t ch = 0; ch < 3; ch++)
                        for (int64_t k = 0; k < pp; k++) buf[h * 3 * pp + k * 3 + ch] = row[ch * pp + k];
                }
                free(row);
                g4c_st_tensor like = {.dtype = G4C_DTYPE_F32, .ndim = 2, .shape = {Hv, 3 * pp},
                                      .size_bytes = sizeof(float) * patch_n};
                if (st == G4C_OK)
                    st = add_tensor(&v, "model.vision_tower.patch_embedder.input_proj.weight", &like, buf, fx);
            }
            float *one = buf + patch_n;
            for (int i = 0; i < c->n_layer && st == G4C_OK; i++) {
                char name[64], hf[96];
                snprintf(name, sizeof name, "blk.%d.layer_output_scale.weight", i);
                if (g4c_st_find(tg->ts, name)) continue;
                *one = 1.0f;
                snprintf(hf, sizeof hf, "model.language_model.layers.%d.layer_scalar", i);
                g4c_st_tensor like = {.dtype = G4C_DTYPE_F32, .ndim = 1, .shape = {1}, .size_bytes = 4};
                st = add_tensor(&v, hf, &like, one++, fx);
            }
            mprotect(buf, bytes, PROT_READ);
        }
    }
    if (st == G4C_OK) {
        qsort(v.ts->tensors, (size_t)v.ts->n_tensors, sizeof *v.ts->tensors, cmp_tname);
        for (int i = 1; i < v.ts->n_tensors && st == G4C_OK; i++)
            if (!strcmp(v.ts->tensors[i - 1].name, v.ts->tensors[i].name))
                st = G4C_FAIL(err, G4C_E_FORMAT, "%s: two GGUF tensors map to %s", tg->what, v.ts->tensors[i].name);
    }
    if (st != G4C_OK) {
        g4c_st_free(v.ts);
        return st;
    }
    *out = v.ts;
    return G4C_OK;
}

g4c_status g4c_gguf_load_model(g4c_config *cfg, g4c_tensor_set **ts, const char *path, const char *mmproj,
                               g4c_err *err) {
    memset(cfg, 0, sizeof *cfg);
    *ts = NULL;
    g4c_gguf *tg = NULL, *vg = NULL;
    g4c_status st = g4c_gguf_open(&tg, path, err);
    if (st == G4C_OK) st = g4c_config_from_gguf(cfg, tg, err);
    if (st == G4C_OK && mmproj) {
        st = g4c_gguf_open(&vg, mmproj, err);
        if (st == G4C_OK) st = g4c_vision_cfg_from_gguf(&cfg->vision, vg, err);
    }
    if (st == G4C_OK) st = build_view(ts, tg, vg, cfg, err);
    g4c_gguf_free(tg);
    g4c_gguf_free(vg);
    if (st != G4C_OK) g4c_config_free(cfg);
    return st;
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

/* The one file in dir that ends in .gguf and whose name does (want_mmproj) or does not contain "mmproj":
 * 1 found, 0 none, -1 several (out holds the first two names). */
static int scan_dir(const char *dir, int want_mmproj, char *out, size_t size, char *second, size_t ssize) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!ends_with(e->d_name, ".gguf") || (strstr(e->d_name, "mmproj") != NULL) != want_mmproj) continue;
        char path[4096];
        struct stat sb;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path) continue;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        if (n == 0) snprintf(out, size, "%s", path);
        else if (n == 1) snprintf(second, ssize, "%s", e->d_name);
        n++;
    }
    closedir(d);
    return n > 1 ? -1 : n;
}

int g4c_gguf_resolve(const char *path, const char *mmproj, char *gguf, size_t gsize, char *mm, size_t msize,
                     g4c_err *err) {
    char dir[4096], other[512];
    struct stat sb;
    gguf[0] = mm[0] = 0;
    if (ends_with(path, ".gguf")) {
        if ((size_t)snprintf(gguf, gsize, "%s", path) >= gsize) return G4C_FAIL(err, G4C_E_ARG, "path too long");
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
    } else {
        char f[4096];
        if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) return 0;
        /* a Hugging Face directory holds safetensors; one with a config.json and only a .gguf (gemma4c synth
         * --format gguf writes both) is read as the GGUF */
        static const char *const hf[2] = {"model.safetensors", "model.safetensors.index.json"};
        for (int i = 0; i < 2; i++)
            if ((size_t)snprintf(f, sizeof f, "%s/%s", path, hf[i]) < sizeof f && stat(f, &sb) == 0) return 0;
        int n = scan_dir(path, 0, gguf, gsize, other, sizeof other);
        if (n == 0) return 0;
        if (n < 0)
            return G4C_FAIL(err, G4C_E_ARG, "%s holds several .gguf models (%s, %s, ...): name the file", path, gguf,
                            other);
        snprintf(dir, sizeof dir, "%s", path);
    }
    if (mmproj && *mmproj) {
        if ((size_t)snprintf(mm, msize, "%s", mmproj) >= msize) return G4C_FAIL(err, G4C_E_ARG, "path too long");
        return 1;
    }
    /* only where the pairing is unambiguous: one model and one mmproj in the directory */
    char model1[4096];
    if (scan_dir(dir, 0, model1, sizeof model1, other, sizeof other) != 1) return 1;
    int n = scan_dir(dir, 1, mm, msize, other, sizeof other);
    if (n < 0) {
        g4c_log(G4C_LOG_WARN, "%s holds several mmproj files (%s, %s, ...): none used; name one with --mmproj", dir,
                mm, other);
        mm[0] = 0;
    }
    return 1;
}
