/* Public API: loading a checkpoint directory and evaluating tokens in a session. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/runtime.h"
#ifdef G4C_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

g4c_model_params g4c_model_default_params(void) {
    return (g4c_model_params){.struct_size = sizeof(g4c_model_params), .n_threads = 0};
}

/* The default device: env G4C_DEVICE=cuda|cpu|auto (auto: cuda when this build has it and a GPU is there); unset:
 * cpu. The CLI sets it from --device (default auto). */
static int default_device(void) {
    const char *e = getenv("G4C_DEVICE");
    if (!e) return G4C_DEVICE_CPU;
    if (!strcmp(e, "cuda")) return G4C_DEVICE_CUDA;
#ifdef G4C_HAVE_CUDA
    static int avail = -1;
    if (!strcmp(e, "auto") && avail < 0) avail = g4c_cuda_available(NULL, 0);
    if (!strcmp(e, "auto") && avail > 0) return G4C_DEVICE_CUDA;
#endif
    return G4C_DEVICE_CPU;
}

g4c_session_params g4c_session_default_params(void) {
    return (g4c_session_params){
        .struct_size = sizeof(g4c_session_params), .n_ctx = 4096, .n_ubatch = 512, .device = default_device()};
}

/* generation_config.json (optional): stop ids such as <|tool_response> and the sampling defaults (spec §7). */
static g4c_status read_generation_config(g4c_config *cfg, g4c_sampler_params *sp, const char *dir, g4c_err *err) {
    *sp = g4c_sampler_default_params();
    char path[4096];
    G4C_TRY(g4c_path_join(path, sizeof path, dir, "generation_config.json", err));
    if (access(path, F_OK) != 0) return G4C_OK;
    cJSON *root;
    G4C_TRY(g4c_json_read_file(&root, path, err));
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    g4c_status st = G4C_OK;
    if (cJSON_IsNumber(e) || cJSON_IsArray(e)) {
        const cJSON *it = cJSON_IsArray(e) ? e->child : e;
        for (; it; it = cJSON_IsArray(e) ? it->next : NULL) {
            if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= cfg->n_vocab) {
                st = G4C_FAIL(err, G4C_E_CONFIG, "%s: eos_token_id holds a value that is not a token id", path);
                break;
            }
            int id = (int)it->valuedouble, seen = 0;
            for (int i = 0; i < cfg->n_eos; i++) seen |= cfg->eos_ids[i] == id;
            if (!seen && cfg->n_eos < G4C_MAX_EOS) cfg->eos_ids[cfg->n_eos++] = id;
        }
    }
    double v;
    int found = 0, do_sample = 1;
    if (st == G4C_OK) st = g4c_json_get_num(root, "temperature", &v, &found, path, err);
    if (st == G4C_OK && found) sp->temperature = (float)v;
    if (st == G4C_OK) st = g4c_json_get_num(root, "top_p", &v, &found, path, err);
    if (st == G4C_OK && found) sp->top_p = (float)v;
    int64_t k = 0;
    if (st == G4C_OK) st = g4c_json_get_int(root, "top_k", 0, 1 << 30, &k, &found, path, err);
    if (st == G4C_OK && found) sp->top_k = (int)k;
    if (st == G4C_OK) st = g4c_json_get_bool(root, "do_sample", &do_sample, &found, path, err);
    if (st == G4C_OK && found && !do_sample) sp->temperature = 0;
    cJSON_Delete(root);
    return st;
}

g4c_sampler_params g4c_model_sampler_defaults(const g4c_model *m) { return m->sampling; }

g4c_status g4c_model_load(g4c_model **out, const char *path, const g4c_model_params *params, g4c_err *err) {
    *out = NULL;
    if (!path) return G4C_FAIL(err, G4C_E_ARG, "no model path given");
    g4c_model_params p = g4c_model_default_params();
    if (params) memcpy(&p, params, params->struct_size < sizeof p ? params->struct_size : sizeof p);
    g4c_model *m = g4c_calloc(1, sizeof *m, err);
    if (!m) return G4C_E_NOMEM;
    char cfg_path[4096], gguf[4096], mmproj[4096];
    /* a GGUF file (or a directory holding one) instead of a Hugging Face directory (spec §8.2, gguf_model.c) */
    const int is_gguf = g4c_gguf_resolve(path, p.mmproj_path, gguf, sizeof gguf, mmproj, sizeof mmproj, err);
    g4c_status st = is_gguf < 0 ? (g4c_status)is_gguf : G4C_OK;
    if (st == G4C_OK && !is_gguf && p.mmproj_path && *p.mmproj_path)
        st = G4C_FAIL(err, G4C_E_ARG, "mmproj %s given, but %s is not a GGUF model (a Hugging Face checkpoint holds its "
                      "vision tower)", p.mmproj_path, path);
    if (st == G4C_OK && is_gguf) {
        st = g4c_gguf_load_model(&m->cfg, &m->ts, gguf, mmproj[0] ? mmproj : NULL, err);
        if (!mmproj[0])
            snprintf(m->vision_err, sizeof m->vision_err, "a GGUF model needs its mmproj GGUF for images (--mmproj)");
        char *slash = strrchr(gguf, '/'); /* generation_config.json beside the file, if any */
        if (slash) *slash = 0;
        if (st == G4C_OK) st = read_generation_config(&m->cfg, &m->sampling, slash ? gguf : ".", err);
    } else if (st == G4C_OK) {
        st = g4c_path_join(cfg_path, sizeof cfg_path, path, "config.json", err);
        if (st == G4C_OK) st = g4c_config_load(&m->cfg, cfg_path, err);
        if (st == G4C_OK) st = read_generation_config(&m->cfg, &m->sampling, path, err);
        if (st == G4C_OK) st = g4c_st_open_dir(&m->ts, path, err);
    }
    if (st == G4C_OK) st = g4c_weights_bind(&m->w, &m->cfg, m->ts, err);
    if (st == G4C_OK && m->cfg.vision.present) {
        /* a checkpoint converted without its vision tower still runs text; images then fail with this reason */
        g4c_err verr = {0};
        if (g4c_vision_bind(&m->vw, &m->cfg, m->ts, &verr) == G4C_OK) {
            m->has_vision = 1;
        } else {
            snprintf(m->vision_err, sizeof m->vision_err, "%s", verr.msg);
            g4c_log(G4C_LOG_WARN, "vision tower not loaded: %s", verr.msg);
        }
    }
    if (st == G4C_OK) st = g4c_pool_init(&m->pool, p.n_threads, err);
    if (st == G4C_OK) {
        /* widest matrix row the decoder multiplies by: hidden, q width, FFN width, PLE */
        int64_t cols = m->cfg.n_embd;
        for (int i = 0; i < m->cfg.n_layer; i++) {
            const g4c_layer_cfg *l = &m->cfg.layers[i];
            if ((int64_t)m->cfg.n_head * l->head_dim > cols) cols = (int64_t)m->cfg.n_head * l->head_dim;
            if (l->ffn_dim > cols) cols = l->ffn_dim;
        }
        if (m->cfg.moe_ffn_dim > cols) cols = m->cfg.moe_ffn_dim;
        if (m->has_vision) {
            const g4c_vision_cfg *v = &m->cfg.vision;
            const int64_t vc[3] = {3LL * v->patch_size * v->patch_size, v->ffn_dim, (int64_t)v->n_head * v->head_dim};
            for (int i = 0; i < 3; i++) cols = vc[i] > cols ? vc[i] : cols;
        }
        st = g4c_pool_reserve(m->pool, g4c_matmul_scratch_bytes(cols), err);
    }
    if (st == G4C_OK && !(m->path = strdup(path))) st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    if (st != G4C_OK) {
        g4c_model_free(m);
        return st;
    }
    *out = m;
    return G4C_OK;
}

void g4c_model_free(g4c_model *m) {
    if (!m) return;
#ifdef G4C_HAVE_CUDA
    g4c_cuda_model_free(m->cuda);
#endif
    g4c_pool_free(m->pool);
    g4c_vision_free(&m->vw);
    g4c_weights_free(&m->w);
    g4c_st_free(m->ts);
    g4c_config_free(&m->cfg);
    free(m->path);
    free(m);
}

int g4c_model_n_vocab(const g4c_model *m) { return m->cfg.n_vocab; }
int g4c_model_n_embd(const g4c_model *m) { return m->cfg.n_embd; }
int g4c_model_has_vision(const g4c_model *m) { return m->has_vision; }
int32_t g4c_model_image_token(const g4c_model *m) { return m->cfg.image_token_id; }
int32_t g4c_model_boi_token(const g4c_model *m) { return m->cfg.boi_token_id; }
int32_t g4c_model_eoi_token(const g4c_model *m) { return m->cfg.eoi_token_id; }

g4c_status g4c_model_encode_image(g4c_model *m, const float *patches, const int32_t *positions, int n_patches,
                                  float *out, g4c_err *err) {
    if (!m->has_vision)
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: no usable vision tower%s%s", m->path, m->vision_err[0] ? ": " : "",
                        m->vision_err);
#ifdef G4C_HAVE_CUDA
    /* once a CUDA session uploaded the model, its images are encoded there too (docs/CUDA.md) */
    if (m->cuda && g4c_cuda_vision_enabled())
        return g4c_cuda_vision_encode(m->cuda, &m->vw, patches, positions, n_patches, out, err);
#endif
    return g4c_vision_encode(&m->cfg, &m->vw, m->pool, patches, positions, n_patches, out, err);
}
int g4c_model_n_layer(const g4c_model *m) { return m->cfg.n_layer; }
int g4c_model_n_ctx_train(const g4c_model *m) { return m->cfg.max_pos; }

int g4c_model_is_eog(const g4c_model *m, int32_t token) {
    for (int i = 0; i < m->cfg.n_eos; i++)
        if (m->cfg.eos_ids[i] == token) return 1;
    return 0;
}

size_t g4c_model_describe(const g4c_model *m, char *buf, size_t size) {
    const g4c_config *c = &m->cfg;
    size_t n = 0, bytes = 0;
    for (int i = 0; i < m->ts->n_tensors; i++) bytes += m->ts->tensors[i].size_bytes;
#define P(...) n += (size_t)snprintf(buf + (n < size ? n : size), n < size ? size - n : 0, __VA_ARGS__)
    P("path            %s\n", m->path);
    P("tensors         %d in %d file(s), %.1f MiB mapped\n", m->ts->n_tensors, m->ts->n_files, bytes / 1048576.0);
    P("vocab           %d\nhidden          %d\nlayers          %d\nheads           %d\n", c->n_vocab, c->n_embd,
      c->n_layer, c->n_head);
    P("sliding window  %d\nsoftcap         %g\nk_eq_v          %d\nmoe             %d", c->sliding_window,
      c->final_softcap, c->k_eq_v, c->moe);
    if (c->moe) P(" (%d experts, top %d, ffn %d)", c->n_expert, c->n_expert_used, c->moe_ffn_dim);
    P("\nple dim         %d\nkv shared       %d\nkv caches       %d\n", c->ple_dim, c->n_kv_shared, c->n_kv_slots);
    /* memory: the KV cache of a default session (f32; sliding layers keep window - 1 + n_ubatch positions) */
    const int n_ctx = c->max_pos < 4096 ? c->max_pos : 4096, n_ubatch = 512;
    const size_t kv = g4c_kv_bytes(c, n_ctx, n_ubatch);
    int n_rep = 0;
    const size_t rep = g4c_weights_repack_estimate((g4c_weights *)&m->w, c, &n_rep);
    P("kv cache        %.1f MiB at n_ctx %d (f32, sliding layers hold window - 1 + n_ubatch %d positions)\n",
      kv / 1048576.0, n_ctx, n_ubatch);
    P("cpu kernels     %s\n", g4c_cpu_isa_name());
    if (rep)
        P("cpu layout      %d matrices (%.1f MiB) copied 8 rows interleaved for the SIMD integer kernels at the first "
          "CPU session; their mapped pages are released (G4C_NO_REPACK=1 keeps the mapping)\n", n_rep,
          rep / 1048576.0);
    else
        P("cpu layout      weights read in place from the mapping\n");
    const size_t tb = g4c_weights_token_bytes(&m->w, c);
    P("decode reads    %.1f MiB of weights per token (%zu bytes): tokens/s <= memory read bandwidth / this\n",
      tb / 1048576.0, tb);
    P("layers:\n");
    for (int i = 0; i < c->n_layer; i++) {
        const g4c_layer_cfg *l = &c->layers[i];
        P("  %3d %-7s head_dim %-4d kv_heads %-3d ffn %-6d %s\n", i, l->type == G4C_LAYER_FULL ? "full" : "sliding",
          l->head_dim, l->n_kv_head, l->ffn_dim, l->kv_slot >= 0 ? (l->k_eq_v ? "kv (k=v)" : "kv") : "shares kv");
        (void)0;
    }
#undef P
    return n;
}

/* ---- device sessions (issue 9, docs/CUDA.md): the text decoder on the GPU, images still encoded on the CPU ---- */

static g4c_status cuda_session_init(g4c_session *s, g4c_model *m, const g4c_session_params *p, g4c_err *err) {
#ifdef G4C_HAVE_CUDA
    if (!m->cuda) { /* the first CUDA session uploads the weights; later ones share them */
        g4c_cuda_model *cm = NULL;
        G4C_TRY(g4c_cuda_model_upload(&cm, &m->cfg, &m->w, err));
        m->cuda = cm;
    }
    g4c_cuda_text *t = NULL;
    G4C_TRY(g4c_cuda_text_init(&t, m->cuda, p->n_ctx, p->n_ubatch, err));
    s->cuda = t;
    s->st.n_ctx = p->n_ctx;
    s->st.n_ubatch = p->n_ubatch < p->n_ctx ? p->n_ubatch : p->n_ctx;
    return G4C_OK;
#else
    (void)s, (void)m, (void)p;
    return G4C_FAIL(err, G4C_E_UNSUPPORTED, "device cuda: this build of gemma4c has no CUDA backend (configure with "
                    "-DGEMMA4C_CUDA=ON, docs/CUDA.md)");
#endif
}

/* One chunk through the session's device. */
static g4c_status forward_chunk(g4c_session *s, const int32_t *tokens, const float *mm, int n, float *logits, int all,
                                g4c_err *err) {
#ifdef G4C_HAVE_CUDA
    if (s->cuda) {
        G4C_TRY(g4c_cuda_text_forward(s->cuda, tokens, mm, n, s->st.n_past, s->st.bidir_off, logits, all, err));
        s->st.n_past += n;
        return G4C_OK;
    }
#endif
    (void)err;
    g4c_text_forward(&s->st, &s->model->cfg, &s->model->w, s->model->pool, tokens, mm, n, logits, all);
    return G4C_OK;
}

g4c_status g4c_session_init(g4c_session **out, g4c_model *m, const g4c_session_params *params, g4c_err *err) {
    *out = NULL;
    g4c_session_params p = g4c_session_default_params();
    if (params) memcpy(&p, params, params->struct_size < sizeof p ? params->struct_size : sizeof p);
    if (p.n_ctx <= 0) p.n_ctx = 4096;
    if (p.n_ubatch <= 0) p.n_ubatch = 512;
    if (p.n_ctx > m->cfg.max_pos)
        return G4C_FAIL(err, G4C_E_ARG, "context %d is longer than the model's max_position_embeddings %d", p.n_ctx,
                        m->cfg.max_pos);
    if (p.device != G4C_DEVICE_CPU && p.device != G4C_DEVICE_CUDA)
        return G4C_FAIL(err, G4C_E_ARG, "device %d is neither cpu (0) nor cuda (1)", p.device);
    g4c_session *s = g4c_calloc(1, sizeof *s, err);
    if (!s) return G4C_E_NOMEM;
    s->model = m;
    g4c_status st = G4C_OK;
    if (p.device == G4C_DEVICE_CPU) { /* the first CPU session lays the weights out for the CPU kernels */
        g4c_pool_lock(m->pool);
        st = g4c_weights_repack_cpu(&m->w, &m->cfg, m->pool, err);
        g4c_pool_unlock(m->pool);
    }
    if (st == G4C_OK)
        st = p.device == G4C_DEVICE_CUDA
                 ? cuda_session_init(s, m, &p, err)
                 : g4c_text_state_init(&s->st, &m->cfg, p.n_ctx, p.n_ubatch, g4c_pool_n_threads(m->pool), err);
    if (st != G4C_OK) {
        free(s);
        return st;
    }
    *out = s;
    return G4C_OK;
}

void g4c_session_free(g4c_session *s) {
    if (!s) return;
#ifdef G4C_HAVE_CUDA
    g4c_cuda_text_free(s->cuda);
#endif
    g4c_text_state_free(&s->st);
    free(s);
}

void g4c_session_reset(g4c_session *s) { s->st.n_past = 0; }
int g4c_session_n_past(const g4c_session *s) { return s->st.n_past; }
int g4c_session_n_ctx(const g4c_session *s) { return s->st.n_ctx; }

g4c_status g4c_session_truncate(g4c_session *s, int n, g4c_err *err) {
    if (n < 0 || n > s->st.n_past)
        return G4C_FAIL(err, G4C_E_ARG, "cannot truncate to %d tokens: the session holds %d", n, s->st.n_past);
    const int back = s->st.n_past - n;
    const int W = s->model->cfg.sliding_window;
#ifdef G4C_HAVE_CUDA
    if (s->cuda && back > g4c_cuda_text_rewind_limit(s->cuda))
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "cannot rewind %d tokens: sliding layers keep %d past their window", back,
                        g4c_cuda_text_rewind_limit(s->cuda));
#endif
    for (int i = 0; i < s->st.n_kv_slots; i++) {
        const g4c_kv_layer *kv = &s->st.kv[i];
        /* a ring slot written after position n may have overwritten a key that position n still needs */
        if (kv->cap < s->st.n_ctx && back > kv->cap - W + 1)
            return G4C_FAIL(err, G4C_E_UNSUPPORTED, "cannot rewind %d tokens: sliding layers keep %d past their window",
                            back, kv->cap - W + 1);
    }
    s->st.n_past = n;
    return G4C_OK;
}

/* What every evaluation checks first: tokens that fit the context and the vocabulary, one soft token per image
 * placeholder. */
static g4c_status check_eval(const g4c_session *s, const int32_t *tokens, int n, const float *soft, int n_soft,
                             g4c_err *err) {
    const g4c_config *c = &s->model->cfg;
    if (n <= 0 || !tokens) return G4C_FAIL(err, G4C_E_ARG, "no tokens to evaluate");
    if (n > s->st.n_ctx - s->st.n_past)
        return G4C_FAIL(err, G4C_E_ARG, "%d tokens do not fit: %d of the %d-token context are used", n, s->st.n_past,
                        s->st.n_ctx);
    int n_ph = 0;
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= c->n_vocab)
            return G4C_FAIL(err, G4C_E_ARG, "token %d at index %d is outside the vocabulary [0, %d)", tokens[i], i,
                            c->n_vocab);
        n_ph += g4c_is_mm_placeholder(c, tokens[i]);
    }
    if (n_ph != n_soft || (n_soft && !soft))
        return G4C_FAIL(err, G4C_E_ARG, "the prompt has %d image placeholder tokens but %d soft tokens were given",
                        n_ph, soft ? n_soft : 0);
    return G4C_OK;
}

g4c_status g4c_session_eval_greedy(g4c_session *s, int32_t token, int32_t *next, float *logits, g4c_err *err) {
#ifdef G4C_HAVE_CUDA
    if (s->cuda) {
        G4C_TRY(check_eval(s, &token, 1, NULL, 0, err));
        G4C_TRY(g4c_cuda_text_forward_greedy(s->cuda, &token, NULL, 1, s->st.n_past, s->st.bidir_off, next, NULL, err));
        s->st.n_past++;
        return G4C_OK;
    }
#endif
    G4C_TRY(g4c_session_eval(s, &token, 1, logits, G4C_LOGITS_LAST, err));
    *next = g4c_argmax(logits, s->model->cfg.n_vocab);
    return G4C_OK;
}

g4c_status g4c_session_eval_topk(g4c_session *s, int32_t token, int k, float temperature, float *logit, int32_t *id,
                                 float *stats, int *n_out, float *logits, g4c_err *err) {
    *n_out = 0;
#ifdef G4C_HAVE_CUDA
    if (s->cuda && k <= G4C_SESSION_TOPK_MAX && temperature > 0 &&
        g4c_cuda_topk_supported(s->model->cfg.n_vocab, k)) {
        G4C_TRY(check_eval(s, &token, 1, NULL, 0, err));
        G4C_TRY(g4c_cuda_text_forward_topk(s->cuda, token, s->st.n_past, s->st.bidir_off, k, temperature, logit, id,
                                           stats, err));
        s->st.n_past++;
        *n_out = k;
        return G4C_OK;
    }
#else
    (void)k, (void)temperature, (void)logit, (void)id, (void)stats;
#endif
    return g4c_session_eval(s, &token, 1, logits, G4C_LOGITS_LAST, err);
}

g4c_status g4c_session_eval(g4c_session *s, const int32_t *tokens, int n, float *logits, int logits_mode,
                            g4c_err *err) {
    return g4c_session_eval_mm(s, tokens, n, NULL, 0, logits, logits_mode, err);
}

g4c_status g4c_session_eval_mm(g4c_session *s, const int32_t *tokens, int n, const float *soft, int n_soft,
                               float *logits, int logits_mode, g4c_err *err) {
    const g4c_model *m = s->model;
    const g4c_config *c = &m->cfg;
    if (n <= 0 || !tokens) return G4C_FAIL(err, G4C_E_ARG, "no tokens to evaluate");
    if (logits_mode != G4C_LOGITS_NONE && !logits) return G4C_FAIL(err, G4C_E_ARG, "logits buffer is NULL");
    G4C_TRY(check_eval(s, tokens, n, soft, n_soft, err));
    const size_t V = (size_t)c->n_vocab, H = (size_t)c->n_embd;
    const int U = s->st.n_ubatch;
    /* chunk boundaries: never inside a placeholder run of a "vision"-masked model (it looks ahead in its run) */
    for (int i = 0, used = 0; i < n;) {
        int end = n - i < U ? n : i + U;
        if (c->bidir_vision && end < n)
            while (end > i && g4c_is_mm_placeholder(c, tokens[end - 1]) && g4c_is_mm_placeholder(c, tokens[end]))
                end--;
        if (end == i)
            return G4C_FAIL(err, G4C_E_ARG, "an image block longer than the %d-token ubatch at index %d: raise n_ubatch",
                            U, i);
        int k = end - i, n_here = 0;
        for (int t = i; t < end; t++) n_here += g4c_is_mm_placeholder(c, tokens[t]);
        float *out = NULL;
        int all = 0;
        if (logits_mode == G4C_LOGITS_ALL) {
            out = logits + (size_t)i * V;
            all = 1;
        } else if (logits_mode == G4C_LOGITS_LAST && end == n) {
            out = logits;
        }
        G4C_TRY(forward_chunk(s, tokens + i, n_here ? soft + (size_t)used * H : NULL, k, out, all, err));
        used += n_here;
        i = end;
    }
    return G4C_OK;
}
