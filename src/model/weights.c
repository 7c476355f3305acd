/* Bind the text decoder's tensors by name and check every shape against the config (spec §8.1).
 * Matrices stay in the read-only mapping in their stored dtype; norm vectors and scalars are converted to f32
 * once here (they are tiny and read on every token). Tensors the decoder does not use (vision tower, the k/v
 * projections some checkpoints still carry on KV-shared layers) are ignored.
 * MLX checkpoints (mlx-vlm conversions, spec §8.3): any matrix whose X.weight is U32 is MLX affine — codes
 * [..., rows, cols·bits/32] with X.scales / X.biases [..., rows, cols/group] — using the group/bits config.json's
 * "quantization" block gives its module path X; MoE experts come split as experts.switch_glu.{gate,up,down}_proj. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/model.h"

typedef struct {
    const g4c_tensor_set *ts;
    const g4c_quant_cfg *quant;
    const char *prefix;
    g4c_weights *w;
    size_t n_owned, cap_owned;
    float **owned;
    g4c_err *err;
} binder;

static const g4c_st_tensor *find(binder *b, const char *name, char *full, size_t size) {
    snprintf(full, size, "%s%s", b->prefix, name);
    return g4c_st_find(b->ts, full);
}

static void shape_str(char *buf, size_t size, const g4c_st_tensor *t) {
    int n = snprintf(buf, size, "[");
    for (int i = 0; i < t->ndim && n < (int)size; i++)
        n += snprintf(buf + n, size - (size_t)n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (n < (int)size) snprintf(buf + n, size - (size_t)n, "] %s", g4c_dtype_infos[t->dtype].name);
}

static void dims_str(char *buf, size_t size, int ndim, const int64_t *dims) {
    int n = snprintf(buf, size, "[");
    for (int i = 0; i < ndim && n < (int)size; i++)
        n += snprintf(buf + n, size - (size_t)n, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (n < (int)size) snprintf(buf + n, size - (size_t)n, "]");
}

static int same_shape(const g4c_st_tensor *t, int ndim, const int64_t *dims) {
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == dims[i];
    return ok;
}

/* Find name and check its shape is exactly dims[0..ndim). */
static g4c_status get(binder *b, const g4c_st_tensor **out, const char *name, int ndim, const int64_t *dims) {
    char full[512];
    const g4c_st_tensor *t = find(b, name, full, sizeof full);
    if (!t) return G4C_FAIL(b->err, G4C_E_CONFIG, "tensor %s is missing from the checkpoint", full);
    if (!same_shape(t, ndim, dims)) {
        char got[128], want[128];
        dims_str(want, sizeof want, ndim, dims);
        shape_str(got, sizeof got, t);
        return G4C_FAIL(b->err, G4C_E_CONFIG, "tensor %s: config.json implies shape %s, file has %s", full, want, got);
    }
    *out = t;
    return G4C_OK;
}

static int float_dtype(g4c_dtype d) { return d == G4C_DTYPE_F32 || d == G4C_DTYPE_F16 || d == G4C_DTYPE_BF16; }

/* The scales or biases of an MLX matrix: [lead..., rows, cols / group] of a float dtype. */
static g4c_status mlx_side(binder *b, const g4c_st_tensor **out, const char *module, const char *which, int ndim,
                           const int64_t *dims, const char *weight) {
    char full[512];
    snprintf(full, sizeof full, "%s.%s", module, which);
    const g4c_st_tensor *t = g4c_st_find(b->ts, full);
    if (!t)
        return G4C_FAIL(b->err, G4C_E_CONFIG, "tensor %s is missing from the checkpoint (%s holds MLX quantized codes, "
                        "which need %s.scales and %s.biases)", full, weight, module, module);
    if (!same_shape(t, ndim, dims) || !float_dtype(t->dtype)) {
        char got[128], want[128];
        dims_str(want, sizeof want, ndim, dims);
        shape_str(got, sizeof got, t);
        return G4C_FAIL(b->err, G4C_E_CONFIG, "tensor %s: MLX %s must be %s of F32, F16 or BF16 (one per group of its "
                        "matrix's columns), file has %s", full, which, want, got);
    }
    *out = t;
    return G4C_OK;
}

/* An MLX affine matrix (spec §8.3): t is "<module>.weight", U32 codes of a matrix whose logical shape is dims. */
static g4c_status mlx_mat(binder *b, g4c_wmat *m, const g4c_st_tensor *t, int ndim, const int64_t *dims) {
    const char *full = t->name;
    const size_t len = strlen(full);
    if (len < 8 || len >= 512 || strcmp(full + len - 7, ".weight") != 0)
        return G4C_FAIL(b->err, G4C_E_CONFIG, "tensor %s is U32 but not an MLX quantized X.weight", full);
    char module[512];
    memcpy(module, full, len - 7);
    module[len - 7] = 0;
    if (!b->quant || !b->quant->present)
        return G4C_FAIL(b->err, G4C_E_CONFIG, "tensor %s holds MLX quantized codes (U32) but config.json has no "
                        "\"quantization\" block giving their group_size and bits", full);
    int group, bits;
    g4c_quant_lookup(b->quant, module, &group, &bits);
    if (!bits)
        return G4C_FAIL(b->err, G4C_E_CONFIG, "tensor %s is quantized (U32) but config.json's quantization block marks "
                        "%s as unquantized (false)", full, module);
    const int64_t cols = dims[ndim - 1];
    if (cols % group)
        return G4C_FAIL(b->err, G4C_E_CONFIG, "tensor %s: quantization group_size %d does not divide its %lld columns",
                        full, group, (long long)cols);
    if (cols * bits % 32)
        return G4C_FAIL(b->err, G4C_E_CONFIG, "tensor %s: %lld columns of %d-bit codes do not fill whole u32 words",
                        full, (long long)cols, bits);
    int64_t cd[G4C_MAX_DIMS], sd[G4C_MAX_DIMS], rows = 1;
    for (int i = 0; i < ndim - 1; i++) rows *= (cd[i] = sd[i] = dims[i]);
    cd[ndim - 1] = cols * bits / 32;
    sd[ndim - 1] = cols / group;
    if (!same_shape(t, ndim, cd)) {
        char got[128], want[128], logical[128];
        dims_str(want, sizeof want, ndim, cd);
        dims_str(logical, sizeof logical, ndim, dims);
        shape_str(got, sizeof got, t);
        return G4C_FAIL(b->err, G4C_E_CONFIG, "tensor %s: config.json implies a %s matrix, stored as %d-bit MLX codes "
                        "%s U32 (group_size %d), file has %s", full, logical, bits, want, group, got);
    }
    const g4c_st_tensor *sc, *bi;
    G4C_TRY(mlx_side(b, &sc, module, "scales", ndim, sd, full));
    G4C_TRY(mlx_side(b, &bi, module, "biases", ndim, sd, full));
    if (sc->dtype != bi->dtype)
        return G4C_FAIL(b->err, G4C_E_CONFIG, "tensor %s: scales are %s but biases %s", full,
                        g4c_dtype_infos[sc->dtype].name, g4c_dtype_infos[bi->dtype].name);
    *m = (g4c_wmat){.dtype = G4C_DTYPE_U32, .data = t->data, .rows = rows, .cols = cols, .scales = sc->data,
                    .biases = bi->data, .scale_dtype = sc->dtype, .group = group, .bits = bits};
    return G4C_OK;
}

/* A [lead...][rows][cols] tensor viewed as one [prod(lead)·rows][cols] matrix: plain, blocks or MLX affine. */
static g4c_status matn(binder *b, g4c_wmat *m, const char *name, int ndim, const int64_t *dims) {
    char full[512];
    const g4c_st_tensor *t = find(b, name, full, sizeof full);
    if (t && t->dtype == G4C_DTYPE_U32) return mlx_mat(b, m, t, ndim, dims);
    G4C_TRY(get(b, &t, name, ndim, dims));
    int64_t rows = 1;
    for (int i = 0; i < ndim - 1; i++) rows *= dims[i];
    *m = (g4c_wmat){.dtype = t->dtype, .data = t->data, .rows = rows, .cols = dims[ndim - 1]};
    return G4C_OK;
}

static g4c_status mat(binder *b, g4c_wmat *m, const char *name, int64_t rows, int64_t cols) {
    const int64_t d[2] = {rows, cols};
    return matn(b, m, name, 2, d);
}

/* A 3-D [n][rows][cols] stack (MoE experts) viewed as one [n*rows][cols] matrix. */
static g4c_status mat3(binder *b, g4c_wmat *m, const char *name, int64_t n, int64_t rows, int64_t cols) {
    const int64_t d[3] = {n, rows, cols};
    return matn(b, m, name, 3, d);
}

/* Convert a whole tensor to a new f32 array owned by the weights. */
static g4c_status vec_from(binder *b, float **out, const g4c_st_tensor *t) {
    if (!float_dtype(t->dtype))
        return G4C_FAIL(b->err, G4C_E_CONFIG, "tensor %s: dtype %s where a F32, F16 or BF16 vector is expected",
                        t->name, g4c_dtype_infos[t->dtype].name);
    if (b->n_owned == b->cap_owned) {
        size_t cap = b->cap_owned ? 2 * b->cap_owned : 64;
        float **grown = realloc(b->owned, cap * sizeof *grown);
        if (!grown) return G4C_FAIL(b->err, G4C_E_NOMEM, "out of memory");
        b->owned = grown;
        b->cap_owned = cap;
    }
    const size_t n = (size_t)g4c_st_numel(t);
    float *v = g4c_malloc(n ? n : 1, sizeof(float), b->err);
    if (!v) return G4C_E_NOMEM;
    g4c_to_f32(v, t->data, t->dtype, n);
    b->owned[b->n_owned++] = v;
    *out = v;
    return G4C_OK;
}

static g4c_status vec(binder *b, float **out, const char *name, int64_t n) {
    const g4c_st_tensor *t;
    G4C_TRY(get(b, &t, name, 1, &n));
    return vec_from(b, out, t);
}

/* A scalar stored as shape [] or [1]. */
static g4c_status scalar(binder *b, float *out, const char *name) {
    char full[512];
    const g4c_st_tensor *t = find(b, name, full, sizeof full);
    if (!t) return G4C_FAIL(b->err, G4C_E_CONFIG, "tensor %s is missing from the checkpoint", full);
    if (g4c_st_numel(t) != 1 || t->ndim > 1 || !float_dtype(t->dtype))
        return G4C_FAIL(b->err, G4C_E_CONFIG, "tensor %s: expected a F32, F16 or BF16 scalar", full);
    g4c_to_f32(out, t->data, t->dtype, 1);
    return G4C_OK;
}

static g4c_status bind_layer(binder *b, const g4c_config *c, int il) {
    const g4c_layer_cfg *lc = &c->layers[il];
    g4c_layer_w *L = &b->w->layers[il];
    const int64_t H = c->n_embd, hd = lc->head_dim;
    char n[256];
#define NAME(s) (snprintf(n, sizeof n, "layers.%d.%s", il, (s)), n)
    G4C_TRY(vec(b, &L->attn_norm, NAME("input_layernorm.weight"), H));
    G4C_TRY(vec(b, &L->post_attn_norm, NAME("post_attention_layernorm.weight"), H));
    G4C_TRY(vec(b, &L->pre_ffn_norm, NAME("pre_feedforward_layernorm.weight"), H));
    G4C_TRY(vec(b, &L->post_ffn_norm, NAME("post_feedforward_layernorm.weight"), H));
    float *scalar;
    G4C_TRY(vec(b, &scalar, NAME("layer_scalar"), 1));
    L->layer_scalar = scalar[0];
    G4C_TRY(mat(b, &L->q, NAME("self_attn.q_proj.weight"), c->n_head * hd, H));
    G4C_TRY(mat(b, &L->o, NAME("self_attn.o_proj.weight"), H, c->n_head * hd));
    G4C_TRY(vec(b, &L->q_norm, NAME("self_attn.q_norm.weight"), hd));
    if (lc->kv_slot >= 0) {
        G4C_TRY(mat(b, &L->k, NAME("self_attn.k_proj.weight"), lc->n_kv_head * hd, H));
        G4C_TRY(vec(b, &L->k_norm, NAME("self_attn.k_norm.weight"), hd));
        if (!lc->k_eq_v) G4C_TRY(mat(b, &L->v, NAME("self_attn.v_proj.weight"), lc->n_kv_head * hd, H));
    }
    G4C_TRY(mat(b, &L->gate, NAME("mlp.gate_proj.weight"), lc->ffn_dim, H));
    G4C_TRY(mat(b, &L->up, NAME("mlp.up_proj.weight"), lc->ffn_dim, H));
    G4C_TRY(mat(b, &L->down, NAME("mlp.down_proj.weight"), H, lc->ffn_dim));
    if (c->moe) {
        const int64_t E = c->n_expert, I = c->moe_ffn_dim;
        G4C_TRY(mat(b, &L->router, NAME("router.proj.weight"), E, H));
        G4C_TRY(vec(b, &L->router_scale, NAME("router.scale"), H));
        G4C_TRY(vec(b, &L->per_expert_scale, NAME("router.per_expert_scale"), E));
        char full[512];
        if (find(b, NAME("experts.switch_glu.gate_proj.weight"), full, sizeof full)) {
            /* mlx-vlm splits gate_up_proj [E][2I][H] into switch_glu.gate_proj (rows [0, I) of each expert) and
             * up_proj (rows [I, 2I)); text.c moe() reads exp_gate/exp_up when they are set */
            G4C_TRY(mat3(b, &L->exp_gate, NAME("experts.switch_glu.gate_proj.weight"), E, I, H));
            G4C_TRY(mat3(b, &L->exp_up, NAME("experts.switch_glu.up_proj.weight"), E, I, H));
            G4C_TRY(mat3(b, &L->exp_down, NAME("experts.switch_glu.down_proj.weight"), E, H, I));
        } else {
            G4C_TRY(mat3(b, &L->exp_gate_up, NAME("experts.gate_up_proj"), E, 2 * I, H));
            G4C_TRY(mat3(b, &L->exp_down, NAME("experts.down_proj"), E, H, I));
        }
        G4C_TRY(vec(b, &L->pre_ffn_norm_2, NAME("pre_feedforward_layernorm_2.weight"), H));
        G4C_TRY(vec(b, &L->post_ffn_norm_1, NAME("post_feedforward_layernorm_1.weight"), H));
        G4C_TRY(vec(b, &L->post_ffn_norm_2, NAME("post_feedforward_layernorm_2.weight"), H));
    }
    if (c->ple_dim) {
        G4C_TRY(mat(b, &L->ple_gate, NAME("per_layer_input_gate.weight"), c->ple_dim, H));
        G4C_TRY(mat(b, &L->ple_proj, NAME("per_layer_projection.weight"), H, c->ple_dim));
        G4C_TRY(vec(b, &L->ple_post_norm, NAME("post_per_layer_input_norm.weight"), H));
    }
#undef NAME
    return G4C_OK;
}

static const char *const prefixes[] = {
    "model.language_model.", /* Gemma4ForConditionalGeneration */
    "model.",                /* Gemma4ForCausalLM (gemma4_text) */
    "language_model.model.", /* mlx-vlm conversions */
};

g4c_status g4c_weights_bind(g4c_weights *w, const g4c_config *c, const g4c_tensor_set *ts, g4c_err *err) {
    memset(w, 0, sizeof *w);
    binder b = {.ts = ts, .quant = &c->quant, .w = w, .err = err};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes && !b.prefix; i++) {
        char full[256];
        snprintf(full, sizeof full, "%sembed_tokens.weight", prefixes[i]);
        if (g4c_st_find(ts, full)) b.prefix = prefixes[i];
    }
    if (!b.prefix)
        return G4C_FAIL(err, G4C_E_CONFIG, "no embed_tokens.weight found (tried model.language_model., model., "
                        "language_model.model.)");
    g4c_status st = G4C_OK;
    w->layers = g4c_calloc((size_t)c->n_layer, sizeof *w->layers, err);
    if (!w->layers) { st = G4C_E_NOMEM; goto done; }
    const int64_t H = c->n_embd;
    if ((st = mat(&b, &w->embed, "embed_tokens.weight", c->n_vocab, H)) != G4C_OK) goto done;
    if ((st = vec(&b, &w->final_norm, "norm.weight", H)) != G4C_OK) goto done;
    if (c->tie_embeddings) {
        w->lm_head = w->embed;
    } else {
        const char *save = b.prefix;
        b.prefix = "";
        st = mat(&b, &w->lm_head, "lm_head.weight", c->n_vocab, H);
        b.prefix = save;
        if (st != G4C_OK) goto done;
    }
    if (c->ple_dim) {
        const int64_t LP = (int64_t)c->n_layer * c->ple_dim;
        if ((st = mat(&b, &w->ple_embed, "embed_tokens_per_layer.weight", c->ple_vocab, LP)) != G4C_OK) goto done;
        if ((st = mat(&b, &w->ple_model_proj, "per_layer_model_projection.weight", LP, H)) != G4C_OK) goto done;
        if ((st = vec(&b, &w->ple_proj_norm, "per_layer_projection_norm.weight", c->ple_dim)) != G4C_OK) goto done;
    }
    for (int il = 0; il < c->n_layer && st == G4C_OK; il++) st = bind_layer(&b, c, il);
done:
    w->owned = b.owned;
    w->n_owned = b.n_owned;
    if (st != G4C_OK) g4c_weights_free(w);
    return st;
}

/* ---- vision ---- */

static g4c_status clip_linear(binder *b, g4c_clip_linear *l, const char *name, int clipped, int64_t rows,
                              int64_t cols) {
    char n[256];
    snprintf(n, sizeof n, "%s.linear.weight", name);
    G4C_TRY(mat(b, &l->w, n, rows, cols));
    l->clip[0] = l->clip[2] = -INFINITY;
    l->clip[1] = l->clip[3] = INFINITY;
    if (!clipped) return G4C_OK;
    static const char *const which[4] = {"input_min", "input_max", "output_min", "output_max"};
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "%s.%s", name, which[i]);
        G4C_TRY(scalar(b, &l->clip[i], n));
    }
    return G4C_OK;
}

g4c_status g4c_vision_bind(g4c_vision_w *w, const g4c_config *c, const g4c_tensor_set *ts, g4c_err *err) {
    memset(w, 0, sizeof *w);
    const g4c_vision_cfg *v = &c->vision;
    if (!v->present) return G4C_FAIL(err, G4C_E_CONFIG, "config.json has no vision_config: not an image model");
    binder b = {.ts = ts, .quant = &c->quant, .err = err};
    b.prefix = g4c_st_find(ts, "model.vision_tower.patch_embedder.input_proj.weight") ? "model.vision_tower."
                                                                                      : "vision_tower.";
    g4c_status st = G4C_OK;
    const int64_t Hv = v->n_embd, hd = v->head_dim, F = v->ffn_dim, P = 3LL * v->patch_size * v->patch_size;
    w->layers = g4c_calloc((size_t)v->n_layer, sizeof *w->layers, err);
    if (!w->layers) { st = G4C_E_NOMEM; goto done; }
    if ((st = mat(&b, &w->patch_proj, "patch_embedder.input_proj.weight", Hv, P)) != G4C_OK) goto done;
    {
        const g4c_st_tensor *t;
        int64_t d[3] = {2, v->n_pos, Hv};
        if ((st = get(&b, &t, "patch_embedder.position_embedding_table", 3, d)) != G4C_OK) goto done;
        /* borrow vec()'s ownership list: convert the whole table to f32 */
        if ((st = vec_from(&b, &w->pos_table, t)) != G4C_OK) goto done;
    }
    for (int il = 0; il < v->n_layer && st == G4C_OK; il++) {
        g4c_vlayer_w *L = &w->layers[il];
        char n[256];
#define VN(s) (snprintf(n, sizeof n, "encoder.layers.%d.%s", il, (s)), n)
        if ((st = vec(&b, &L->attn_norm, VN("input_layernorm.weight"), Hv)) ||
            (st = vec(&b, &L->post_attn_norm, VN("post_attention_layernorm.weight"), Hv)) ||
            (st = vec(&b, &L->pre_ffn_norm, VN("pre_feedforward_layernorm.weight"), Hv)) ||
            (st = vec(&b, &L->post_ffn_norm, VN("post_feedforward_layernorm.weight"), Hv)) ||
            (st = vec(&b, &L->q_norm, VN("self_attn.q_norm.weight"), hd)) ||
            (st = vec(&b, &L->k_norm, VN("self_attn.k_norm.weight"), hd)) ||
            (st = clip_linear(&b, &L->q, VN("self_attn.q_proj"), v->clipped_linears, v->n_head * hd, Hv)) ||
            (st = clip_linear(&b, &L->k, VN("self_attn.k_proj"), v->clipped_linears, v->n_head * hd, Hv)) ||
            (st = clip_linear(&b, &L->v, VN("self_attn.v_proj"), v->clipped_linears, v->n_head * hd, Hv)) ||
            (st = clip_linear(&b, &L->o, VN("self_attn.o_proj"), v->clipped_linears, Hv, v->n_head * hd)) ||
            (st = clip_linear(&b, &L->gate, VN("mlp.gate_proj"), v->clipped_linears, F, Hv)) ||
            (st = clip_linear(&b, &L->up, VN("mlp.up_proj"), v->clipped_linears, F, Hv)) ||
            (st = clip_linear(&b, &L->down, VN("mlp.down_proj"), v->clipped_linears, Hv, F)))
            goto done;
#undef VN
    }
    if (v->standardize &&
        ((st = vec(&b, &w->std_bias, "std_bias", Hv)) || (st = vec(&b, &w->std_scale, "std_scale", Hv))))
        goto done;
    b.prefix = g4c_st_find(ts, "model.embed_vision.embedding_projection.weight") ? "model.embed_vision." : "embed_vision.";
    st = mat(&b, &w->mm_proj, "embedding_projection.weight", c->n_embd, Hv);
done:
    w->owned = b.owned;
    w->n_owned = b.n_owned;
    if (st != G4C_OK) g4c_vision_free(w);
    return st;
}

void g4c_vision_free(g4c_vision_w *w) {
    for (size_t i = 0; i < w->n_owned; i++) free(w->owned[i]);
    free(w->owned);
    free(w->layers);
    memset(w, 0, sizeof *w);
}

void g4c_weights_free(g4c_weights *w) {
    g4c_weights_repack_free(w);
    for (size_t i = 0; i < w->n_owned; i++) free(w->owned[i]);
    free(w->owned);
    free(w->layers);
    memset(w, 0, sizeof *w);
}
