/* `gemma4c quantize`: a Hugging Face checkpoint (or a GGUF) -> a GGUF llama.cpp's gemma4 loader accepts (issue 5):
 *   metadata: general.*, gemma4.* (per-layer int32 arrays where the FFN width or KV heads vary, *_swa keys, the bool
 *   sliding_window_pattern, embedding_length_per_layer_input always), tokenizer.ggml.* from tokenizer.json (model
 *   "gemma4", bos 2 / eos 1 / unk 3 / pad 0 from the config), plus gemma4c.* facts llama.cpp does not record;
 *   tensors: llama.cpp names, rope_freqs F32 (1 x rotated pairs, then 1e30), no output.weight when tied, no attn_v on
 *   K=V layers, the fused ffn_gate_up_exps, every 1-D tensor F32 (quantize.h lists the type rules).
 * The source is checked by binding it as the engine would (shapes against the config) before anything is written.
 * Tensors are streamed: a chunk of rows is dequantized to f32 and requantized by the thread pool, written, and the
 * next chunk follows, so memory stays constant whatever the model size. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/quantize.h"
#include "tokenizer/tokenizer.h"

static const struct { const char *name; g4c_dtype base; int llama; } FT[G4C_FT_COUNT] = {
    [G4C_FT_F32] = {"f32", G4C_DTYPE_F32, 0},         [G4C_FT_F16] = {"f16", G4C_DTYPE_F16, 1},
    [G4C_FT_BF16] = {"bf16", G4C_DTYPE_BF16, 32},     [G4C_FT_Q8_0] = {"q8_0", G4C_DTYPE_Q8_0, 7},
    [G4C_FT_Q4_0] = {"q4_0", G4C_DTYPE_Q4_0, 2},      [G4C_FT_Q4_1] = {"q4_1", G4C_DTYPE_Q4_1, 3},
    [G4C_FT_Q5_0] = {"q5_0", G4C_DTYPE_Q5_0, 8},      [G4C_FT_Q5_1] = {"q5_1", G4C_DTYPE_Q5_1, 9},
    [G4C_FT_Q4_K_M] = {"q4_k_m", G4C_DTYPE_Q4_K, 15}, [G4C_FT_Q5_K_M] = {"q5_k_m", G4C_DTYPE_Q5_K, 17},
    [G4C_FT_Q6_K] = {"q6_k", G4C_DTYPE_Q6_K, 18},
};

int g4c_ftype_parse(const char *s) {
    for (int f = 0; f < G4C_FT_COUNT && s; f++) {
        size_t i = 0;
        while (s[i] && FT[f].name[i] && tolower((unsigned char)s[i]) == FT[f].name[i]) i++;
        if (!s[i] && !FT[f].name[i]) return f;
    }
    return -1;
}
const char *g4c_ftype_name(g4c_ftype f) { return (unsigned)f < G4C_FT_COUNT ? FT[f].name : "?"; }
int g4c_ftype_llama(g4c_ftype f) { return (unsigned)f < G4C_FT_COUNT ? FT[f].llama : -1; }

static int ends(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

/* llama.cpp's use_more_bits: the first and last eighth of the layers, and every third one between */
static int more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

g4c_dtype g4c_quant_choose(const char *name, int ndim, const int64_t *shape, g4c_ftype ft, int pure, int il,
                           int n_layer, int tied) {
    const g4c_dtype base = FT[ft].base;
    const int64_t cols = ndim ? shape[ndim - 1] : 1;
    if (ndim < 2 || !strcmp(name, "rope_freqs.weight") || strstr(name, "position_embd") ||
        ends(name, "ffn_gate_inp.weight"))
        return G4C_DTYPE_F32;
    if (!strncmp(name, "v.", 2) || !strncmp(name, "mm.", 3))
        return base == G4C_DTYPE_F32 || base == G4C_DTYPE_BF16 ? base : G4C_DTYPE_F16;
    g4c_dtype t = base;
    const int quantized = g4c_dtype_infos[base].block > 1;
    if (!pure && quantized && base != G4C_DTYPE_Q8_0 &&
        (!strcmp(name, "output.weight") || (tied && !strcmp(name, "token_embd.weight"))))
        t = G4C_DTYPE_Q6_K;
    if (!pure && (ft == G4C_FT_Q4_K_M || ft == G4C_FT_Q5_K_M) && il >= 0 &&
        (ends(name, ".attn_v.weight") || ends(name, ".ffn_down.weight") || ends(name, ".ffn_down_exps.weight")) &&
        more_bits(il, n_layer))
        t = G4C_DTYPE_Q6_K;
    if (cols % g4c_dtype_infos[t].block) /* llama.cpp's fallbacks for rows the k-quant block does not divide */
        t = t == G4C_DTYPE_Q4_K ? G4C_DTYPE_Q5_0 : t == G4C_DTYPE_Q5_K ? G4C_DTYPE_Q5_1
          : t == G4C_DTYPE_Q6_K ? G4C_DTYPE_Q8_0 : t;
    if (cols % g4c_dtype_infos[t].block) t = G4C_DTYPE_F16;
    return t;
}

/* ---- the list of tensors to write ------------------------------------------------------------------------------ */

typedef struct {
    char name[128];            /* GGUF name */
    int ndim, il;
    int64_t shape[G4C_MAX_DIMS];
    g4c_dtype type;
    const g4c_st_tensor *src;  /* source tensor (any stored type), or NULL with gen */
    float *gen;                /* generated f32 data (owned) */
} qt;

typedef struct {
    qt *t;
    int n, cap;
} qlist;

static void qlist_free(qlist *L) {
    for (int i = 0; i < L->n; i++) free(L->t[i].gen);
    free(L->t);
    memset(L, 0, sizeof *L);
}

static g4c_status qlist_add(qlist *L, const char *name, int ndim, const int64_t *shape, const g4c_st_tensor *src,
                            float *gen, g4c_err *err) {
    if (L->n == L->cap) {
        int cap = L->cap ? 2 * L->cap : 256;
        qt *g = realloc(L->t, sizeof *g * (size_t)cap);
        if (!g) {
            free(gen);
            return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
        }
        L->t = g;
        L->cap = cap;
    }
    qt *t = &L->t[L->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim ? ndim : 1; /* scalars become [1], as llama.cpp's converter writes them */
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    if (!ndim) t->shape[0] = 1;
    t->src = src;
    t->gen = gen;
    t->il = strncmp(name, "blk.", 4) ? -1 : atoi(name + 4);
    return G4C_OK;
}

/* globals first, then by layer, then by name */
static int cmp_qt(const void *a, const void *b) {
    const qt *x = a, *y = b;
    if (x->il != y->il) return x->il < y->il ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* ---- streaming conversion -------------------------------------------------------------------------------------- */

typedef struct {
    const qt *t;
    const g4c_quantize_params *p;
    int64_t r0, nr, cols;
    size_t src_row, dst_row;
    uint8_t *out;
    float *scratch; /* [threads][cols] */
    int n_tasks;
} job;

static void run_rows(void *ctx, int i_task, int i_thread) {
    const job *j = ctx;
    const int64_t a = j->nr * i_task / j->n_tasks, b = j->nr * (i_task + 1) / j->n_tasks;
    float *row = j->scratch + (size_t)i_thread * (size_t)j->cols;
    for (int64_t r = a; r < b; r++) {
        const int64_t gr = j->r0 + r;
        if (j->t->gen) memcpy(row, j->t->gen + gr * j->cols, sizeof(float) * (size_t)j->cols);
        else if (j->p->source) j->p->source(j->p->source_user, j->t->src, gr * j->cols, j->cols, row);
        else g4c_dequant(row, (const uint8_t *)j->t->src->data + (size_t)gr * j->src_row, j->t->src->dtype, j->cols);
        g4c_quantize(j->out + (size_t)r * j->dst_row, row, j->t->type, j->cols);
    }
}

static g4c_status write_all(g4c_gguf_writer *w, const qlist *L, g4c_pool *pool, const g4c_quantize_params *p,
                            g4c_err *err) {
    const int nth = g4c_pool_n_threads(pool);
    int64_t max_cols = 1;
    for (int i = 0; i < L->n; i++) max_cols = L->t[i].shape[L->t[i].ndim - 1] > max_cols ? L->t[i].shape[L->t[i].ndim - 1] : max_cols;
    float *scratch = g4c_malloc((size_t)nth * (size_t)max_cols, sizeof(float), err);
    const size_t chunk = (size_t)16 << 20;
    uint8_t *out = g4c_malloc(chunk + (size_t)max_cols * 4, 1, err);
    g4c_status st = scratch && out ? G4C_OK : G4C_E_NOMEM;
    for (int i = 0; i < L->n && st == G4C_OK; i++) {
        const qt *t = &L->t[i];
        if (p->progress) p->progress(p->user, i, L->n, t->name, t->type);
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= t->shape[d];
        const int64_t cols = t->shape[t->ndim - 1], rows = cols ? numel / cols : 0;
        job j = {.t = t, .p = p, .cols = cols, .dst_row = g4c_dtype_bytes(t->type, cols), .out = out, .scratch = scratch};
        if (t->src) j.src_row = g4c_dtype_bytes(t->src->dtype, cols);
        const int64_t per = j.dst_row ? (int64_t)(chunk / j.dst_row) : rows;
        for (int64_t r0 = 0; r0 < rows && st == G4C_OK; r0 += j.nr) {
            j.r0 = r0;
            j.nr = rows - r0 < (per ? per : 1) ? rows - r0 : (per ? per : 1);
            j.n_tasks = j.nr < 4 * nth ? (int)j.nr : 4 * nth;
            g4c_pool_run(pool, run_rows, &j, j.n_tasks);
            st = g4c_ggw_write(w, out, (size_t)j.nr * j.dst_row, err);
        }
    }
    free(scratch);
    free(out);
    return st;
}

static g4c_status declare(g4c_gguf_writer *w, qlist *L, const g4c_quantize_params *p, int n_layer, int tied,
                          g4c_err *err) {
    qsort(L->t, (size_t)L->n, sizeof *L->t, cmp_qt);
    for (int i = 0; i < L->n; i++) {
        qt *t = &L->t[i];
        t->type = g4c_quant_choose(t->name, t->ndim, t->shape, p->ftype, p->pure, t->il, n_layer, tied);
        G4C_TRY(g4c_ggw_add_tensor(w, t->name, t->type, t->ndim, t->shape, err));
    }
    return G4C_OK;
}

/* ---- Hugging Face input ------------------------------------------------------------------------------------------ */

/* The HF name in the multimodal layout (a bare gemma4_text checkpoint says model.layers.N, mlx-vlm
 * language_model.model.layers.N). */
static void canonical(const char *name, char *out, size_t size) {
    if (!strncmp(name, "language_model.model.", 21)) snprintf(out, size, "model.language_model.%s", name + 21);
    else if (!strncmp(name, "vision_tower.", 13) || !strncmp(name, "embed_vision.", 13)) snprintf(out, size, "model.%s", name);
    else if (!strncmp(name, "model.", 6) && strncmp(name, "model.language_model.", 21) &&
             strncmp(name, "model.vision_tower.", 19) && strncmp(name, "model.embed_vision.", 19) &&
             strncmp(name, "model.audio_tower.", 18) && strncmp(name, "model.embed_audio.", 18))
        snprintf(out, size, "model.language_model.%s", name + 6);
    else snprintf(out, size, "%s", name);
}

static g4c_status collect_hf(qlist *text, qlist *vis, const g4c_config *c, const g4c_tensor_set *ts, g4c_err *err) {
    const int first_shared = c->n_layer - c->n_kv_shared;
    for (int i = 0; i < ts->n_tensors; i++) {
        const g4c_st_tensor *t = &ts->tensors[i];
        char hf[512], g[128];
        canonical(t->name, hf, sizeof hf);
        if (!g4c_hf_name_to_gguf(hf, g, sizeof g)) {
            if (!strstr(hf, "audio")) g4c_log(G4C_LOG_INFO, "quantize: %s has no GGUF counterpart; skipped", t->name);
            continue;
        }
        if (t->dtype == G4C_DTYPE_U32)
            return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: MLX-quantized checkpoints cannot be requantized; start from "
                            "the float checkpoint", t->name);
        const int is_vis = !strncmp(g, "v.", 2) || !strncmp(g, "mm.", 3);
        if (!strcmp(g, "output.weight") && c->tie_embeddings) continue;
        if (!strncmp(g, "blk.", 4)) {
            const int il = atoi(g + 4);
            if (il >= c->n_layer) continue;
            if (il >= first_shared && (ends(g, ".attn_k.weight") || ends(g, ".attn_v.weight") || ends(g, ".attn_k_norm.weight")))
                continue; /* KV-shared layers compute no K/V (spec §1.2) */
        }
        if (!strcmp(g, "v.patch_embd.weight")) { /* [Hv][(py·p + px)·3 + c] -> conv [Hv][c][py][px] */
            const int64_t Hv = t->shape[0], p = c->vision.patch_size, pp = p * p;
            if (t->ndim != 2 || t->shape[1] != 3 * pp)
                return G4C_FAIL(err, G4C_E_CONFIG, "%s must be [Hv, %lld]", t->name, (long long)(3 * pp));
            float *src = g4c_malloc((size_t)(Hv * 3 * pp), sizeof(float), err);
            float *conv = g4c_malloc((size_t)(Hv * 3 * pp), sizeof(float), err);
            if (!src || !conv) {
                free(src);
                free(conv);
                return G4C_E_NOMEM;
            }
            g4c_to_f32(src, t->data, t->dtype, (size_t)(Hv * 3 * pp));
            for (int64_t h = 0; h < Hv; h++)
                for (int64_t ch = 0; ch < 3; ch++)
                    for (int64_t k = 0; k < pp; k++) conv[(h * 3 + ch) * pp + k] = src[h * 3 * pp + k * 3 + ch];
            free(src);
            const int64_t shape[4] = {Hv, 3, p, p};
            G4C_TRY(qlist_add(vis, g, 4, shape, NULL, conv, err));
            continue;
        }
        G4C_TRY(qlist_add(is_vis ? vis : text, g, t->ndim, t->shape, t, NULL, err));
    }
    /* rope_freqs: the divisor per rotated pair of the full layers' proportional RoPE; 1e30 stops a pair rotating */
    const g4c_rope_cfg *r = &c->rope[G4C_LAYER_FULL];
    int hd = 0;
    for (int i = 0; i < c->n_layer; i++)
        if (c->layers[i].type == G4C_LAYER_FULL) hd = c->layers[i].head_dim;
    if (r->type == G4C_ROPE_PROPORTIONAL && hd) {
        const int n_rot = (int)floor((double)r->partial_rotary * hd / 2.0);
        float *f = g4c_malloc((size_t)hd / 2, sizeof(float), err);
        if (!f) return G4C_E_NOMEM;
        for (int k = 0; k < hd / 2; k++) f[k] = k < n_rot ? r->factor : 1e30f;
        const int64_t shape[1] = {hd / 2};
        G4C_TRY(qlist_add(text, "rope_freqs.weight", 1, shape, NULL, f, err));
    }
    return G4C_OK;
}

static g4c_status kv_u32s(g4c_gguf_writer *w, const char *key, const int *v, int n, g4c_err *err) {
    int same = 1;
    for (int i = 1; i < n; i++) same &= v[i] == v[0];
    if (same) return g4c_ggw_kv_u32(w, key, (uint32_t)v[0], err);
    int32_t *a = g4c_malloc((size_t)n, sizeof *a, err);
    if (!a) return G4C_E_NOMEM;
    for (int i = 0; i < n; i++) a[i] = v[i];
    g4c_status st = g4c_ggw_kv_arr(w, key, G4C_GGUF_I32, a, (uint64_t)n, err);
    free(a);
    return st;
}

static g4c_status text_meta(g4c_gguf_writer *w, const g4c_config *c, const char *in, const g4c_quantize_params *p,
                            g4c_err *err) {
    const int L = c->n_layer;
    int *ffn = g4c_malloc((size_t)L, 3 * sizeof(int), err);
    uint8_t *swa = g4c_malloc((size_t)L, 1, err);
    if (!ffn || !swa) {
        free(ffn);
        free(swa);
        return G4C_E_NOMEM;
    }
    int *kv = ffn + L, hd[2] = {0, 0};
    for (int i = 0; i < L; i++) {
        ffn[i] = c->layers[i].ffn_dim;
        kv[i] = c->layers[i].n_kv_head;
        swa[i] = c->layers[i].type == G4C_LAYER_SLIDING;
        hd[c->layers[i].type] = c->layers[i].head_dim;
    }
    if (!hd[G4C_LAYER_SLIDING]) hd[G4C_LAYER_SLIDING] = hd[G4C_LAYER_FULL];
    const char *base = strrchr(in, '/');
    base = base && base[1] ? base + 1 : in;
    g4c_status st = G4C_OK;
#define T(call) if (st == G4C_OK) st = (call)
    T(c->rope[G4C_LAYER_SLIDING].type != G4C_ROPE_DEFAULT
          ? G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: sliding layers with proportional RoPE cannot be written as GGUF", in)
          : G4C_OK);
    T(g4c_ggw_kv_str(w, "general.architecture", "gemma4", 6, err));
    T(g4c_ggw_kv_str(w, "general.name", base, strlen(base), err));
    T(g4c_ggw_kv_u32(w, "general.file_type", (uint32_t)FT[p->ftype].llama, err));
    if (g4c_dtype_infos[FT[p->ftype].base].block > 1) T(g4c_ggw_kv_u32(w, "general.quantization_version", 2, err));
    T(g4c_ggw_kv_u32(w, "gemma4.context_length", (uint32_t)c->max_pos, err));
    T(g4c_ggw_kv_u32(w, "gemma4.embedding_length", (uint32_t)c->n_embd, err));
    T(g4c_ggw_kv_u32(w, "gemma4.block_count", (uint32_t)L, err));
    T(kv_u32s(w, "gemma4.feed_forward_length", ffn, L, err));
    T(g4c_ggw_kv_u32(w, "gemma4.attention.head_count", (uint32_t)c->n_head, err));
    T(kv_u32s(w, "gemma4.attention.head_count_kv", kv, L, err));
    T(g4c_ggw_kv_u32(w, "gemma4.attention.key_length", (uint32_t)hd[G4C_LAYER_FULL], err));
    T(g4c_ggw_kv_u32(w, "gemma4.attention.value_length", (uint32_t)hd[G4C_LAYER_FULL], err));
    T(g4c_ggw_kv_u32(w, "gemma4.attention.key_length_swa", (uint32_t)hd[G4C_LAYER_SLIDING], err));
    T(g4c_ggw_kv_u32(w, "gemma4.attention.value_length_swa", (uint32_t)hd[G4C_LAYER_SLIDING], err));
    T(g4c_ggw_kv_u32(w, "gemma4.rope.dimension_count", (uint32_t)hd[G4C_LAYER_FULL], err));
    T(g4c_ggw_kv_u32(w, "gemma4.rope.dimension_count_swa", (uint32_t)hd[G4C_LAYER_SLIDING], err));
    T(g4c_ggw_kv_f32(w, "gemma4.rope.freq_base", c->rope[G4C_LAYER_FULL].theta, err));
    T(g4c_ggw_kv_f32(w, "gemma4.rope.freq_base_swa", c->rope[G4C_LAYER_SLIDING].theta, err));
    T(g4c_ggw_kv_u32(w, "gemma4.attention.sliding_window", (uint32_t)c->sliding_window, err));
    T(g4c_ggw_kv_arr(w, "gemma4.attention.sliding_window_pattern", G4C_GGUF_BOOL, swa, (uint64_t)L, err));
    T(g4c_ggw_kv_u32(w, "gemma4.attention.shared_kv_layers", (uint32_t)c->n_kv_shared, err));
    T(g4c_ggw_kv_f32(w, "gemma4.attention.layer_norm_rms_epsilon", c->eps, err));
    T(g4c_ggw_kv_u32(w, "gemma4.embedding_length_per_layer_input", (uint32_t)c->ple_dim, err));
    if (c->final_softcap > 0) T(g4c_ggw_kv_f32(w, "gemma4.final_logit_softcapping", c->final_softcap, err));
    if (c->moe) {
        T(g4c_ggw_kv_u32(w, "gemma4.expert_count", (uint32_t)c->n_expert, err));
        T(g4c_ggw_kv_u32(w, "gemma4.expert_used_count", (uint32_t)c->n_expert_used, err));
        T(g4c_ggw_kv_u32(w, "gemma4.expert_feed_forward_length", (uint32_t)c->moe_ffn_dim, err));
    }
    T(g4c_ggw_kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos_id, err));
    T(g4c_ggw_kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_ids[0], err));
    T(g4c_ggw_kv_u32(w, "tokenizer.ggml.unknown_token_id", c->n_vocab > 3 ? 3 : 0, err));
    T(g4c_ggw_kv_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)c->pad_id, err));
    T(g4c_ggw_kv_bool(w, "tokenizer.ggml.add_bos_token", 1, err));
    T(g4c_ggw_kv_bool(w, "tokenizer.ggml.add_space_prefix", 0, err));
    /* gemma4c.*: what llama.cpp's metadata does not say, so a GGUF loads to exactly the config it came from */
    int32_t eos[G4C_MAX_EOS];
    for (int i = 0; i < c->n_eos; i++) eos[i] = c->eos_ids[i];
    T(g4c_ggw_kv_arr(w, "gemma4c.eos_token_ids", G4C_GGUF_I32, eos, (uint64_t)c->n_eos, err));
    T(g4c_ggw_kv_u32(w, "gemma4c.image_token_id", (uint32_t)c->image_token_id, err));
    T(g4c_ggw_kv_u32(w, "gemma4c.video_token_id", (uint32_t)c->video_token_id, err));
    T(g4c_ggw_kv_u32(w, "gemma4c.audio_token_id", (uint32_t)c->audio_token_id, err));
    T(g4c_ggw_kv_u32(w, "gemma4c.boi_token_id", (uint32_t)c->boi_token_id, err));
    T(g4c_ggw_kv_u32(w, "gemma4c.eoi_token_id", (uint32_t)c->eoi_token_id, err));
    T(g4c_ggw_kv_str(w, "gemma4c.use_bidirectional_attention", c->bidir_vision ? "vision" : "none",
                     c->bidir_vision ? 6 : 4, err));
#undef T
    free(ffn);
    free(swa);
    return st;
}

static g4c_status vision_meta(g4c_gguf_writer *w, const g4c_config *c, const g4c_quantize_params *p, g4c_err *err) {
    const g4c_vision_cfg *v = &c->vision;
    const float mean[3] = {0, 0, 0}, std[3] = {1, 1, 1};
    g4c_status st = G4C_OK;
#define T(call) if (st == G4C_OK) st = (call)
    T(g4c_ggw_kv_str(w, "general.architecture", "clip", 4, err));
    T(g4c_ggw_kv_u32(w, "general.file_type", p->ftype == G4C_FT_F32 ? 0 : p->ftype == G4C_FT_BF16 ? 32 : 1, err));
    T(g4c_ggw_kv_bool(w, "clip.has_vision_encoder", 1, err));
    T(g4c_ggw_kv_str(w, "clip.vision.projector_type", "gemma4v", 7, err));
    T(g4c_ggw_kv_u32(w, "clip.vision.image_size", 224, err)); /* unused by gemma4v; the converter writes 224 */
    T(g4c_ggw_kv_u32(w, "clip.vision.patch_size", (uint32_t)v->patch_size, err));
    T(g4c_ggw_kv_u32(w, "clip.vision.embedding_length", (uint32_t)v->n_embd, err));
    T(g4c_ggw_kv_u32(w, "clip.vision.feed_forward_length", (uint32_t)v->ffn_dim, err));
    T(g4c_ggw_kv_u32(w, "clip.vision.projection_dim", (uint32_t)c->n_embd, err));
    T(g4c_ggw_kv_u32(w, "clip.vision.block_count", (uint32_t)v->n_layer, err));
    T(g4c_ggw_kv_u32(w, "clip.vision.attention.head_count", (uint32_t)v->n_head, err));
    T(g4c_ggw_kv_f32(w, "clip.vision.attention.layer_norm_epsilon", v->eps, err));
    T(g4c_ggw_kv_arr(w, "clip.vision.image_mean", G4C_GGUF_F32, mean, 3, err));
    T(g4c_ggw_kv_arr(w, "clip.vision.image_std", G4C_GGUF_F32, std, 3, err));
    T(g4c_ggw_kv_u32(w, "gemma4c.vision.head_dim", (uint32_t)v->head_dim, err));
    T(g4c_ggw_kv_u32(w, "gemma4c.vision.pooling_kernel_size", (uint32_t)v->pool, err));
    T(g4c_ggw_kv_f32(w, "gemma4c.vision.rope_theta", v->rope_theta, err));
#undef T
    return st;
}

/* tokenizer.json (and chat_template.jinja) beside the checkpoint, when present */
static g4c_status tok_meta(g4c_gguf_writer *w, const g4c_config *c, const char *dir, g4c_err *err) {
    char path[4096];
    G4C_TRY(g4c_path_join(path, sizeof path, dir, "tokenizer.json", err));
    FILE *f = fopen(path, "rb");
    if (!f) {
        g4c_log(G4C_LOG_WARN, "quantize: %s is missing: the GGUF gets no tokenizer (llama.cpp needs one)", path);
        return G4C_OK;
    }
    fclose(f);
    g4c_tokenizer *t;
    G4C_TRY(g4c_tok_load(&t, path, err));
    if (g4c_tok_n_vocab(t) >= 262144) {
        g4c_err ignore = {0}; /* a Gemma 3 tokenizer.json gets Gemma 4's control tokens (spec §5) */
        g4c_tok_apply_gemma4_specials(t, &ignore);
    }
    g4c_status st = g4c_tok_write_gguf(t, w, c->n_vocab, err);
    g4c_tok_free(t);
    /* the chat template: chat_template.jinja, else tokenizer_config.json's "chat_template" string */
    char *tmpl;
    size_t n;
    if (st == G4C_OK && g4c_path_join(path, sizeof path, dir, "chat_template.jinja", err) == G4C_OK &&
        (f = fopen(path, "rb")) != NULL) {
        fclose(f);
        st = g4c_read_file(path, (size_t)4 << 20, &tmpl, &n, err);
        if (st == G4C_OK) st = g4c_ggw_kv_str(w, "tokenizer.chat_template", tmpl, n, err);
        if (st == G4C_OK) free(tmpl);
    } else if (st == G4C_OK && g4c_path_join(path, sizeof path, dir, "tokenizer_config.json", err) == G4C_OK &&
               (f = fopen(path, "rb")) != NULL) {
        fclose(f);
        cJSON *tc;
        const char *ct = NULL;
        if (g4c_json_read_file(&tc, path, err) == G4C_OK) {
            if (g4c_json_get_str(tc, "chat_template", &ct, path, err) == G4C_OK && ct)
                st = g4c_ggw_kv_str(w, "tokenizer.chat_template", ct, strlen(ct), err);
            cJSON_Delete(tc);
        }
    }
    return st;
}

static g4c_status write_file(const char *out, g4c_gguf_writer *w, qlist *L, g4c_pool *pool,
                             const g4c_quantize_params *p, g4c_err *err) {
    G4C_TRY(g4c_ggw_open(w, out, G4C_GGUF_DEFAULT_ALIGN, err));
    G4C_TRY(write_all(w, L, pool, p, err));
    return g4c_ggw_finish(w, err);
}

/* in: the directory of config.json and tokenizer.json; ts: the tensors (opened from in, or generated) */
static g4c_status from_hf(const char *in, const g4c_tensor_set *given, const char *out, const g4c_quantize_params *p,
                          g4c_pool *pool, g4c_err *err) {
    char path[4096];
    g4c_config c;
    G4C_TRY(g4c_path_join(path, sizeof path, in, "config.json", err));
    G4C_TRY(g4c_config_load(&c, path, err));
    g4c_tensor_set *opened = NULL;
    g4c_weights wt = {0};
    g4c_vision_w vw = {0};
    qlist text = {0}, vis = {0};
    g4c_gguf_writer *w = NULL, *wv = NULL;
    g4c_status st = given ? G4C_OK : g4c_st_open_dir(&opened, in, err);
    const g4c_tensor_set *ts = given ? given : opened;
    if (st == G4C_OK) st = g4c_weights_bind(&wt, &c, ts, err); /* every shape checked against the config */
    if (st == G4C_OK && p->mmproj_out && !c.vision.present)
        st = G4C_FAIL(err, G4C_E_ARG, "%s has no vision tower: nothing to write to %s", in, p->mmproj_out);
    if (st == G4C_OK && p->mmproj_out) st = g4c_vision_bind(&vw, &c, ts, err);
    if (st == G4C_OK && p->mmproj_out && c.vision.head_dim * c.vision.n_head != c.vision.n_embd)
        g4c_log(G4C_LOG_WARN, "quantize: vision head_dim %d x %d heads != hidden %d: llama.cpp will not load this mmproj",
                c.vision.head_dim, c.vision.n_head, c.vision.n_embd);
    if (st == G4C_OK) st = collect_hf(&text, &vis, &c, ts, err);
    if (st == G4C_OK) st = g4c_ggw_new(&w, err);
    if (st == G4C_OK) st = text_meta(w, &c, in, p, err);
    if (st == G4C_OK) st = tok_meta(w, &c, in, err);
    if (st == G4C_OK) st = declare(w, &text, p, c.n_layer, c.tie_embeddings, err);
    if (st == G4C_OK) st = write_file(out, w, &text, pool, p, err);
    if (st == G4C_OK && p->mmproj_out) {
        if ((st = g4c_ggw_new(&wv, err)) == G4C_OK) st = vision_meta(wv, &c, p, err);
        if (st == G4C_OK) st = declare(wv, &vis, p, c.vision.n_layer, 0, err);
        if (st == G4C_OK) st = write_file(p->mmproj_out, wv, &vis, pool, p, err);
    }
    g4c_ggw_free(w);
    g4c_ggw_free(wv);
    qlist_free(&text);
    qlist_free(&vis);
    g4c_vision_free(&vw);
    g4c_weights_free(&wt);
    g4c_st_free(opened);
    g4c_config_free(&c);
    return st;
}

/* ---- GGUF input: same names and metadata, new types ---------------------------------------------------------- */

static int cmp_data(const void *a, const void *b) {
    const g4c_st_tensor *x = *(const g4c_st_tensor *const *)a, *y = *(const g4c_st_tensor *const *)b;
    return x->data < y->data ? -1 : x->data > y->data;
}

static g4c_status from_gguf(const char *in, const char *out, const g4c_quantize_params *p, g4c_pool *pool,
                            g4c_err *err) {
    if (p->mmproj_out)
        return G4C_FAIL(err, G4C_E_ARG, "--mmproj needs a Hugging Face input; requantize an mmproj GGUF by passing it "
                        "as the input");
    g4c_gguf *g;
    G4C_TRY(g4c_gguf_open(&g, in, err));
    g4c_gguf_writer *w = NULL;
    qlist L = {0};
    const g4c_st_tensor **order = g4c_malloc((size_t)g->ts->n_tensors + 1, sizeof *order, err);
    g4c_status st = order ? g4c_ggw_new(&w, err) : G4C_E_NOMEM;
    int64_t n_layer = 0;
    for (int64_t i = 0; i < g->n_kv && st == G4C_OK; i++) {
        const g4c_gguf_kv *kv = &g->kv[i];
        static const char *const SKIP[] = {"general.alignment", "general.file_type", "general.quantization_version"};
        int skip = 0;
        for (int k = 0; k < 3; k++) skip |= kv->key_len == strlen(SKIP[k]) && !memcmp(kv->key, SKIP[k], kv->key_len);
        if (kv->key_len > 12 && !memcmp(kv->key + kv->key_len - 12, ".block_count", 12)) {
            int64_t v = 0;
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)(kv->key_len < 100 ? kv->key_len : 100), kv->key);
            if (g4c_gguf_get_int(g, key, 0, 4096, &v, NULL, err) == G4C_OK) n_layer = v;
        }
        if (!skip) st = g4c_ggw_kv_copy(w, kv, err);
    }
    const g4c_gguf_kv *arch = g4c_gguf_find(g, "general.architecture");
    const int is_clip = arch && arch->type == G4C_GGUF_STR && arch->size == 4 && !memcmp(arch->data, "clip", 4);
    if (st == G4C_OK)
        st = g4c_ggw_kv_u32(w, "general.file_type",
                            (uint32_t)(is_clip ? (p->ftype == G4C_FT_F32 ? 0 : p->ftype == G4C_FT_BF16 ? 32 : 1)
                                               : FT[p->ftype].llama), err);
    if (st == G4C_OK && !is_clip && g4c_dtype_infos[FT[p->ftype].base].block > 1)
        st = g4c_ggw_kv_u32(w, "general.quantization_version", 2, err);
    for (int i = 0; st == G4C_OK && i < g->ts->n_tensors; i++) order[i] = &g->ts->tensors[i];
    if (st == G4C_OK) qsort(order, (size_t)g->ts->n_tensors, sizeof *order, cmp_data); /* file order */
    for (int i = 0; st == G4C_OK && i < g->ts->n_tensors; i++)
        st = qlist_add(&L, order[i]->name, order[i]->ndim, order[i]->shape, order[i], NULL, err);
    if (st == G4C_OK) {
        const int tied = !g4c_st_find(g->ts, "output.weight");
        for (int i = 0; i < L.n && st == G4C_OK; i++) {
            qt *t = &L.t[i];
            t->type = g4c_quant_choose(t->name, t->ndim, t->shape, p->ftype, p->pure, t->il, (int)n_layer, tied);
            st = g4c_ggw_add_tensor(w, t->name, t->type, t->ndim, t->shape, err);
        }
    }
    if (st == G4C_OK) st = write_file(out, w, &L, pool, p, err);
    g4c_ggw_free(w);
    qlist_free(&L);
    free(order);
    g4c_gguf_free(g);
    return st;
}

g4c_status g4c_quantize_model(const char *in, const char *out, const g4c_quantize_params *p, g4c_err *err) {
    if (!in || !out || !p || (unsigned)p->ftype >= G4C_FT_COUNT)
        return G4C_FAIL(err, G4C_E_ARG, "quantize: input, output and a type are required");
    char gguf[4096], mm[4096];
    const int is_gguf = g4c_gguf_resolve(in, NULL, gguf, sizeof gguf, mm, sizeof mm, err);
    if (is_gguf < 0) return (g4c_status)is_gguf;
    if (is_gguf && !strcmp(gguf, out)) return G4C_FAIL(err, G4C_E_ARG, "quantize: the output would overwrite the input");
    g4c_pool *pool;
    G4C_TRY(g4c_pool_init(&pool, p->n_threads, err));
    g4c_quantize_params q = *p;
    q.source = NULL; /* only for generated tensors */
    g4c_status st = is_gguf ? from_gguf(gguf, out, &q, pool, err) : from_hf(in, NULL, out, &q, pool, err);
    g4c_pool_free(pool);
    return st;
}

g4c_status g4c_quantize_generated(const char *dir, const g4c_tensor_set *ts, const char *out,
                                  const g4c_quantize_params *p, g4c_err *err) {
    if (!dir || !ts || !out || !p || !p->source || (unsigned)p->ftype >= G4C_FT_COUNT)
        return G4C_FAIL(err, G4C_E_ARG, "quantize: a directory, tensors, their source, an output and a type are required");
    g4c_pool *pool;
    G4C_TRY(g4c_pool_init(&pool, p->n_threads, err));
    g4c_status st = from_hf(dir, ts, out, p, pool, err);
    g4c_pool_free(pool);
    return st;
}
