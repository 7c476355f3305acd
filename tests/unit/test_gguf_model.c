/* The fixtures as GGUF (model/gguf_model.c, runtime/gguf_quant.c, `gemma4c quantize`):
 *   - an F32 GGUF equals the safetensors checkpoint: the config read from metadata is config.json's, logits <= 1e-6
 *     apart (bit-identical in practice);
 *   - llama.cpp's metadata rules hold on the three layouts (31B-, 26B-A4B-, E2B-like), and the type rules;
 *   - F16 / Q8_0 / Q4_0 / Q4_K_M logits against transformers' float32 logits within the bounds of docs/testing.md
 *     ("Quantized"): mean KL divergence and top-1 agreement;
 *   - requantizing a GGUF reproduces the directly quantized file; the mmproj's vision tower equals the checkpoint's;
 *   - a directory or file path resolves to the model and its mmproj. */
#include "fixture.h"
#include "runtime/quantize.h"

#define FIX G4C_FIXTURES

static char tmpdir[256];

/* ---- the fixtures as GGUF ---------------------------------------------------------------------------------------- */

static const char *const TAGS[3] = {"dense-f32", "moe-f32", "e-f32"};

/* transformers' float32 logits, [n_prompt][vocab] */
static int load_ref(fixture_ref *r, const char *tag) { return fixture_load_ref(r, FIX, tag, FIXTURE_LOGITS); }

static g4c_model *load(const char *path, const char *mmproj) { return fixture_load(path, 1, mmproj); }

/* logits of every prompt position, malloc'd */
static float *run(g4c_model *m, const fixture_ref *r) {
    g4c_session *s = fixture_session(m, 256, 64, -1);
    g4c_err err = {0};
    float *lg = malloc(sizeof(float) * (size_t)r->n_prompt * (size_t)r->vocab);
    if (!s || g4c_session_eval(s, r->prompt, r->n_prompt, lg, G4C_LOGITS_ALL, &err)) {
        fprintf(stderr, "  eval: %s\n", err.msg);
        free(lg);
        lg = NULL;
    }
    g4c_session_free(s);
    return lg;
}

static int quantize(const char *tag, const char *type, char *out, size_t size, const char *mmproj) {
    g4c_quantize_params qp = {.ftype = (g4c_ftype)g4c_ftype_parse(type), .n_threads = 2, .mmproj_out = mmproj};
    char in[512];
    snprintf(in, sizeof in, "%s/%s", FIX, tag);
    snprintf(out, size, "%s/%s-%s.gguf", tmpdir, tag, type);
    g4c_err err = {0};
    if (g4c_quantize_model(in, out, &qp, &err) != G4C_OK) {
        fprintf(stderr, "  quantize %s %s: %s\n", tag, type, err.msg);
        return 0;
    }
    return 1;
}

/* F32 GGUF == the safetensors checkpoint: same config, logits within 1e-6 (in practice identical). */
static void test_f32_gguf_matches(void) {
    for (int k = 0; k < 3; k++) {
        fixture_ref r;
        char in[512], gg[512];
        snprintf(in, sizeof in, "%s/%s", FIX, TAGS[k]);
        if (!load_ref(&r, TAGS[k]) || !quantize(TAGS[k], "f32", gg, sizeof gg, NULL)) { CHECK(0); continue; }
        g4c_model *a = load(in, NULL), *b = load(gg, NULL);
        CHECK(a && b);
        if (a && b) {
            const g4c_config *x = &a->cfg, *y = &b->cfg;
            int same = x->n_vocab == y->n_vocab && x->n_embd == y->n_embd && x->n_layer == y->n_layer &&
                       x->n_head == y->n_head && x->n_kv_shared == y->n_kv_shared &&
                       x->sliding_window == y->sliding_window && x->max_pos == y->max_pos && x->eps == y->eps &&
                       x->final_softcap == y->final_softcap && x->tie_embeddings == y->tie_embeddings &&
                       x->k_eq_v == y->k_eq_v && x->bidir_vision == y->bidir_vision && x->moe == y->moe &&
                       x->n_expert == y->n_expert && x->n_expert_used == y->n_expert_used &&
                       x->moe_ffn_dim == y->moe_ffn_dim && x->ple_dim == y->ple_dim && x->ple_vocab == y->ple_vocab &&
                       x->n_kv_slots == y->n_kv_slots && x->bos_id == y->bos_id && x->pad_id == y->pad_id &&
                       x->n_eos == y->n_eos && x->image_token_id == y->image_token_id &&
                       x->eoi_token_id == y->eoi_token_id && !memcmp(x->eos_ids, y->eos_ids, sizeof x->eos_ids);
            for (int t = 0; t < 2; t++)
                same &= x->rope[t].type == y->rope[t].type && x->rope[t].theta == y->rope[t].theta &&
                        x->rope[t].factor == y->rope[t].factor &&
                        (x->rope[t].type == G4C_ROPE_DEFAULT || x->rope[t].partial_rotary == y->rope[t].partial_rotary);
            for (int i = 0; i < x->n_layer; i++)
                same &= !memcmp(&x->layers[i], &y->layers[i], sizeof x->layers[i]);
            CHECKF(same, "%s: the config from GGUF metadata differs from config.json's", TAGS[k]);
            float *la = run(a, &r), *lb = run(b, &r);
            double worst = 0;
            for (size_t i = 0; la && lb && i < (size_t)r.n_prompt * (size_t)r.vocab; i++)
                worst = fmax(worst, fabs((double)la[i] - lb[i]));
            CHECKF(la && lb && worst <= 1e-6, "%s: max |logit difference| %g", TAGS[k], worst);
            free(la);
            free(lb);
        }
        g4c_model_free(a);
        g4c_model_free(b);
        fixture_free_ref(&r);
    }
}

/* KL(p_ref || p_q) averaged over positions, and how often the argmax agrees. */
static void compare(const float *ref, const float *q, int n, int64_t V, double *kl, double *top1) {
    *kl = 0, *top1 = 0;
    for (int t = 0; t < n; t++) {
        const float *a = ref + (size_t)t * V, *b = q + (size_t)t * V;
        double ma = -INFINITY, mb = -INFINITY, sa = 0, sb = 0, k = 0;
        int64_t ia = 0, ib = 0;
        for (int64_t i = 0; i < V; i++) {
            if (a[i] > ma) ma = a[i], ia = i;
            if (b[i] > mb) mb = b[i], ib = i;
        }
        for (int64_t i = 0; i < V; i++) sa += exp(a[i] - ma), sb += exp(b[i] - mb);
        for (int64_t i = 0; i < V; i++) {
            const double lpa = a[i] - ma - log(sa), lpb = b[i] - mb - log(sb);
            k += exp(lpa) * (lpa - lpb);
        }
        *kl += k / n;
        *top1 += (ia == ib) / (double)n;
    }
}

/* Quantized files of the fixtures against transformers' float32 logits (bounds and why they are loose: docs/testing.md
 * "Quantized"). These random-weight models are hypersensitive (near-uniform output, entropy 5.7 of ln 512 = 6.2 nats:
 * F16 weights alone move top-1 on 5% of positions), so the bounds catch broken layouts and plumbing, not 1% regressions.
 * Each file is also compared with its own weights dequantized to F32 (requantize to f32): that difference is the
 * fast kernels' alone (8-bit activations). */
static void test_quantized_logits(void) {
    static const struct { const char *type; double max_kl, min_top1, max_kl_own; } B[] = {
        {"f32", 1e-6, 1.0, 0},     {"f16", 1e-3, 0.85, 1e-3}, {"q8_0", 0.1, 0.55, 0.05},
        {"q4_0", 0.6, 0.12, 0.05}, {"q4_k_m", 0.4, 0.2, 0.05}};
    for (int k = 0; k < 3; k++) {
        fixture_ref r;
        if (!load_ref(&r, TAGS[k])) { CHECK(0); continue; }
        double kl_q8 = 0;
        for (size_t b = 0; b < sizeof B / sizeof *B; b++) {
            char gg[512], deq[600];
            if (!quantize(TAGS[k], B[b].type, gg, sizeof gg, NULL)) { CHECK(0); continue; }
            g4c_model *m = load(gg, NULL);
            float *lg = m ? run(m, &r) : NULL, *ld = NULL;
            double kl = 1, top1 = 0, kl_own = 0, top1_own = 1;
            if (lg) compare(r.logits, lg, r.n_prompt, r.vocab, &kl, &top1);
            if (lg && B[b].max_kl_own > 0) { /* the same weights, dequantized, through the f32 path */
                g4c_quantize_params qp = {.ftype = G4C_FT_F32, .n_threads = 1};
                g4c_err err = {0};
                snprintf(deq, sizeof deq, "%s.f32.gguf", gg);
                g4c_model *md = NULL;
                if (g4c_quantize_model(gg, deq, &qp, &err) == G4C_OK && (md = load(deq, NULL)) && (ld = run(md, &r)))
                    compare(ld, lg, r.n_prompt, r.vocab, &kl_own, &top1_own);
                else
                    kl_own = 1;
                g4c_model_free(md);
                unlink(deq);
            }
            printf("     %-9s %-7s vs transformers: mean KL %.2e top-1 %5.1f%%   vs own weights in f32: KL %.1e top-1 "
                   "%5.1f%%\n", TAGS[k], B[b].type, kl, 100 * top1, kl_own, 100 * top1_own);
            CHECKF(lg && kl <= B[b].max_kl && top1 >= B[b].min_top1, "%s %s: KL %g top-1 %g", TAGS[k], B[b].type, kl,
                   top1);
            CHECKF(kl_own <= B[b].max_kl_own, "%s %s: KL vs its own dequantized weights %g", TAGS[k], B[b].type, kl_own);
            if (!strcmp(B[b].type, "q8_0")) kl_q8 = kl;
            if (!strcmp(B[b].type, "q4_0")) CHECKF(kl > kl_q8, "%s: Q4_0 KL %g <= Q8_0 KL %g", TAGS[k], kl, kl_q8);
            free(lg);
            free(ld);
            g4c_model_free(m);
        }
        fixture_free_ref(&r);
    }
}

static g4c_gguf *open_q(const char *tag, const char *type) {
    char gg[512];
    g4c_gguf *g = NULL;
    g4c_err err = {0};
    if (quantize(tag, type, gg, sizeof gg, NULL) && g4c_gguf_open(&g, gg, &err) != G4C_OK)
        fprintf(stderr, "  %s\n", err.msg);
    return g;
}

static int kv_is(const g4c_gguf *g, const char *key, g4c_gguf_type t, g4c_gguf_type et, uint64_t n) {
    const g4c_gguf_kv *kv = g4c_gguf_find(g, key);
    if (!kv || kv->type != t || (t == G4C_GGUF_ARR && (kv->arr_type != et || kv->n != n))) {
        fprintf(stderr, "  %s: key %s missing or mistyped\n", g->what, key);
        return 0;
    }
    return 1;
}

static int64_t kv_int(const g4c_gguf *g, const char *key) {
    int64_t v = -1;
    g4c_err err = {0};
    g4c_gguf_get_int(g, key, INT64_MIN, INT64_MAX, &v, NULL, &err);
    return v;
}

/* What llama.cpp's gemma4 loader needs (issue 5), on the three fixture layouts. */
static void test_llama_cpp_metadata(void) {
    g4c_gguf *d = open_q("dense-f32", "q4_0"), *m = open_q("moe-f32", "q8_0"), *e = open_q("e-f32", "q4_k_m");
    CHECK(d && m && e);
    if (!d || !m || !e) goto done;
    const g4c_gguf *all[3] = {d, m, e};
    for (int i = 0; i < 3; i++) {
        const g4c_gguf *g = all[i];
        CHECK(kv_is(g, "general.architecture", G4C_GGUF_STR, 0, 0) && kv_is(g, "general.file_type", G4C_GGUF_U32, 0, 0));
        CHECK(kv_is(g, "gemma4.block_count", G4C_GGUF_U32, 0, 0) && kv_is(g, "gemma4.embedding_length", G4C_GGUF_U32, 0, 0));
        CHECK(kv_is(g, "gemma4.embedding_length_per_layer_input", G4C_GGUF_U32, 0, 0));
        CHECK(kv_is(g, "gemma4.attention.key_length_swa", G4C_GGUF_U32, 0, 0) &&
              kv_is(g, "gemma4.attention.value_length_swa", G4C_GGUF_U32, 0, 0));
        CHECK(kv_is(g, "gemma4.attention.sliding_window", G4C_GGUF_U32, 0, 0) &&
              kv_is(g, "gemma4.attention.layer_norm_rms_epsilon", G4C_GGUF_F32, 0, 0));
        CHECK(kv_is(g, "gemma4.rope.freq_base", G4C_GGUF_F32, 0, 0) && kv_is(g, "gemma4.rope.freq_base_swa", G4C_GGUF_F32, 0, 0));
        const uint64_t L = (uint64_t)kv_int(g, "gemma4.block_count");
        CHECK(kv_is(g, "gemma4.attention.sliding_window_pattern", G4C_GGUF_ARR, G4C_GGUF_BOOL, L));
        CHECK(kv_int(g, "tokenizer.ggml.bos_token_id") == 2 && kv_int(g, "tokenizer.ggml.eos_token_id") == 1 &&
              kv_int(g, "tokenizer.ggml.unknown_token_id") == 3 && kv_int(g, "tokenizer.ggml.padding_token_id") == 0);
        CHECK(!g4c_st_find(g->ts, "output.weight"));
        /* rope_freqs: F32, 1.0 for the rotated pairs of the full layers' proportional RoPE, then 1e30 */
        const g4c_st_tensor *rf = g4c_st_find(g->ts, "rope_freqs.weight");
        const int64_t hd = kv_int(g, "gemma4.attention.key_length");
        CHECK(rf && rf->dtype == G4C_DTYPE_F32 && rf->ndim == 1 && rf->shape[0] == hd / 2);
        for (int64_t k = 0; rf && k < hd / 2; k++)
            CHECKF(((const float *)rf->data)[k] == (k < hd / 8 ? 1.0f : 1e30f), "rope_freqs[%lld]", (long long)k);
        for (int t = 0; t < g->ts->n_tensors; t++) { /* every 1-D tensor F32 */
            const g4c_st_tensor *x = &g->ts->tensors[t];
            CHECKF(x->ndim >= 2 || x->dtype == G4C_DTYPE_F32, "%s is %s", x->name, g4c_dtype_infos[x->dtype].name);
        }
    }
    /* dense (31B-like): per-layer KV heads as an int32 array, no attn_v on the K=V full layers */
    CHECK(kv_is(d, "gemma4.attention.head_count_kv", G4C_GGUF_ARR, G4C_GGUF_I32, 6));
    const g4c_gguf_kv *kv = g4c_gguf_find(d, "gemma4.attention.head_count_kv");
    CHECK(kv && g4c_gguf_arr_int(kv, 0) == 2 && g4c_gguf_arr_int(kv, 2) == 1);
    CHECK(!g4c_st_find(d->ts, "blk.2.attn_v.weight") && g4c_st_find(d->ts, "blk.1.attn_v.weight"));
    CHECK(kv_int(d, "gemma4.attention.key_length") == 64 && kv_int(d, "gemma4.attention.key_length_swa") == 32);
    const g4c_st_tensor *q = g4c_st_find(d->ts, "blk.0.attn_q.weight");
    CHECK(q && q->dtype == G4C_DTYPE_Q4_0);
    q = g4c_st_find(d->ts, "token_embd.weight"); /* the tied output head: Q6_K, else Q8_0 when 256 does not divide */
    CHECK(q && q->dtype == G4C_DTYPE_Q8_0);
    /* MoE: expert counts, the fused gate_up [E, 2I, H], router and scales F32 */
    CHECK(kv_int(m, "gemma4.expert_count") == 8 && kv_int(m, "gemma4.expert_used_count") == 2 &&
          kv_int(m, "gemma4.expert_feed_forward_length") == 32);
    q = g4c_st_find(m->ts, "blk.0.ffn_gate_up_exps.weight");
    CHECK(q && q->ndim == 3 && q->shape[0] == 8 && q->shape[1] == 64 && q->shape[2] == 64 && q->dtype == G4C_DTYPE_Q8_0);
    q = g4c_st_find(m->ts, "blk.0.ffn_gate_inp.weight");
    CHECK(q && q->dtype == G4C_DTYPE_F32 && g4c_st_find(m->ts, "blk.0.ffn_gate_inp.scale") &&
          g4c_st_find(m->ts, "blk.0.ffn_down_exps.scale") && g4c_st_find(m->ts, "blk.0.layer_output_scale.weight"));
    q = g4c_st_find(m->ts, "blk.0.ffn_down.weight"); /* 48 columns: no 32-block divides them -> F16 */
    CHECK(q && q->dtype == G4C_DTYPE_F16);
    /* E2B-like: double-wide FFN as a per-layer array, KV sharing, per-layer embeddings; q4_k_m falls back to Q5_0
       (64 columns), Q6_K -> Q8_0 on the upgraded layers */
    CHECK(kv_is(e, "gemma4.feed_forward_length", G4C_GGUF_ARR, G4C_GGUF_I32, 8));
    kv = g4c_gguf_find(e, "gemma4.feed_forward_length");
    CHECK(kv && g4c_gguf_arr_int(kv, 0) == 96 && g4c_gguf_arr_int(kv, 7) == 192);
    CHECK(kv_int(e, "gemma4.attention.shared_kv_layers") == 4 && kv_int(e, "gemma4.embedding_length_per_layer_input") == 16);
    CHECK(g4c_st_find(e->ts, "per_layer_token_embd.weight") && !g4c_st_find(e->ts, "blk.5.attn_k.weight"));
    q = g4c_st_find(e->ts, "blk.3.attn_q.weight");
    CHECK(q && q->dtype == G4C_DTYPE_Q5_0);
    q = g4c_st_find(e->ts, "blk.0.attn_v.weight");
    CHECK(q && q->dtype == G4C_DTYPE_Q8_0);
done:
    g4c_gguf_free(d);
    g4c_gguf_free(m);
    g4c_gguf_free(e);
}

/* The type rules on real shapes (llama.cpp's Q4_K_M mix). */
static void test_type_rules(void) {
    const int64_t q[2] = {2048, 1536}, emb[2] = {262144, 1536}, odd[2] = {64, 1600}, v1[1] = {1536};
    CHECK(g4c_quant_choose("blk.5.attn_q.weight", 2, q, G4C_FT_Q4_K_M, 0, 5, 35, 1) == G4C_DTYPE_Q4_K);
    CHECK(g4c_quant_choose("blk.0.attn_v.weight", 2, q, G4C_FT_Q4_K_M, 0, 0, 35, 1) == G4C_DTYPE_Q6_K);
    CHECK(g4c_quant_choose("blk.5.attn_v.weight", 2, q, G4C_FT_Q4_K_M, 0, 5, 35, 1) == G4C_DTYPE_Q4_K);
    CHECK(g4c_quant_choose("blk.6.ffn_down.weight", 2, q, G4C_FT_Q4_K_M, 0, 6, 35, 1) == G4C_DTYPE_Q6_K);
    CHECK(g4c_quant_choose("blk.34.ffn_down.weight", 2, q, G4C_FT_Q4_K_M, 0, 34, 35, 1) == G4C_DTYPE_Q6_K);
    CHECK(g4c_quant_choose("token_embd.weight", 2, emb, G4C_FT_Q4_K_M, 0, -1, 35, 1) == G4C_DTYPE_Q6_K);
    CHECK(g4c_quant_choose("token_embd.weight", 2, emb, G4C_FT_Q4_0, 0, -1, 35, 1) == G4C_DTYPE_Q6_K);
    CHECK(g4c_quant_choose("token_embd.weight", 2, emb, G4C_FT_Q4_0, 1, -1, 35, 1) == G4C_DTYPE_Q4_0);
    CHECK(g4c_quant_choose("token_embd.weight", 2, emb, G4C_FT_Q8_0, 0, -1, 35, 1) == G4C_DTYPE_Q8_0);
    CHECK(g4c_quant_choose("blk.0.attn_q.weight", 2, odd, G4C_FT_Q4_K_M, 0, 9, 35, 1) == G4C_DTYPE_Q5_0);
    CHECK(g4c_quant_choose("blk.0.attn_q.weight", 2, odd, G4C_FT_Q6_K, 0, 9, 35, 1) == G4C_DTYPE_Q8_0);
    CHECK(g4c_quant_choose("blk.0.ffn_gate_inp.weight", 2, q, G4C_FT_Q4_0, 0, 0, 30, 1) == G4C_DTYPE_F32);
    CHECK(g4c_quant_choose("blk.0.attn_norm.weight", 1, v1, G4C_FT_Q4_0, 0, 0, 30, 1) == G4C_DTYPE_F32);
    CHECK(g4c_quant_choose("v.blk.0.attn_q.weight", 2, q, G4C_FT_Q4_0, 0, 0, 27, 1) == G4C_DTYPE_F16);
    CHECK(g4c_ftype_parse("Q4_K_M") == G4C_FT_Q4_K_M && g4c_ftype_parse("q4_k") < 0 && g4c_ftype_parse(NULL) < 0);
}

/* A GGUF requantized from the F32 GGUF equals the checkpoint quantized directly, tensor for tensor. */
static void test_requantize_gguf(void) {
    char f32[512], direct[512], re[512];
    g4c_err err = {0};
    if (!quantize("moe-f32", "f32", f32, sizeof f32, NULL) || !quantize("moe-f32", "q4_k_m", direct, sizeof direct, NULL)) {
        CHECK(0);
        return;
    }
    snprintf(re, sizeof re, "%s/moe-requant.gguf", tmpdir);
    g4c_quantize_params qp = {.ftype = G4C_FT_Q4_K_M, .n_threads = 1};
    CHECKF(g4c_quantize_model(f32, re, &qp, &err) == G4C_OK, "%s", err.msg);
    CHECK(g4c_quantize_model(f32, f32, &qp, &err) == G4C_E_ARG); /* never over the input */
    g4c_gguf *a = NULL, *b = NULL;
    CHECK(g4c_gguf_open(&a, direct, &err) == G4C_OK && g4c_gguf_open(&b, re, &err) == G4C_OK);
    if (a && b) {
        CHECK(a->ts->n_tensors == b->ts->n_tensors);
        for (int i = 0; i < a->ts->n_tensors && i < b->ts->n_tensors; i++) {
            const g4c_st_tensor *x = &a->ts->tensors[i], *y = &b->ts->tensors[i];
            CHECKF(!strcmp(x->name, y->name) && x->dtype == y->dtype && x->size_bytes == y->size_bytes &&
                       !memcmp(x->data, y->data, x->size_bytes), "%s", x->name);
        }
        CHECK(kv_int(b, "general.file_type") == 15 && kv_int(b, "gemma4.expert_count") == 8);
    }
    g4c_gguf_free(a);
    g4c_gguf_free(b);
}

/* mmproj: the vision tower from GGUF (patch embedding permuted back from conv form, clip scalars on E-models) encodes
 * an image exactly as the safetensors checkpoint does. */
static void test_mmproj(void) {
    for (int k = 0; k < 3; k += 2) { /* dense (standardize), e (clipped linears) */
        char in[512], gg[512], mm[512];
        snprintf(in, sizeof in, "%s/%s", FIX, TAGS[k]);
        snprintf(mm, sizeof mm, "%s/%s-mmproj-f32.gguf", tmpdir, TAGS[k]);
        if (!quantize(TAGS[k], "f32", gg, sizeof gg, mm)) { CHECK(0); continue; }
        g4c_model *a = load(in, NULL), *b = load(gg, mm);
        CHECK(a && b && g4c_model_has_vision(a) && g4c_model_has_vision(b));
        if (a && b && g4c_model_has_vision(b)) {
            enum { G = 6, N = G * G };
            float *p = malloc(sizeof(float) * N * 768), *oa = malloc(sizeof(float) * 4 * 64), *ob = malloc(sizeof(float) * 4 * 64);
            int32_t pos[N * 2];
            uint64_t s = 5;
            for (int i = 0; i < N * 768; i++) p[i] = 0.5f + 0.5f * test_rng_f(&s);
            for (int i = 0; i < N; i++) pos[2 * i] = i % G, pos[2 * i + 1] = i / G;
            g4c_err err = {0};
            CHECKF(g4c_model_encode_image(a, p, pos, N, oa, &err) == G4C_OK, "%s", err.msg);
            CHECKF(g4c_model_encode_image(b, p, pos, N, ob, &err) == G4C_OK, "%s", err.msg);
            double worst = 0;
            for (int i = 0; i < 4 * 64; i++) worst = fmax(worst, fabs((double)oa[i] - ob[i]));
            CHECKF(worst <= 1e-6, "%s: vision from the mmproj differs by %g", TAGS[k], worst);
            free(p);
            free(oa);
            free(ob);
        }
        g4c_model_free(a);
        g4c_model_free(b);
        g4c_gguf *v = NULL;
        g4c_err err = {0};
        CHECK(g4c_gguf_open(&v, mm, &err) == G4C_OK);
        if (v) {
            const g4c_st_tensor *pe = g4c_st_find(v->ts, "v.patch_embd.weight");
            CHECK(pe && pe->ndim == 4 && pe->shape[1] == 3 && pe->shape[2] == 16 && pe->shape[3] == 16);
            CHECK(kv_is(v, "clip.vision.projector_type", G4C_GGUF_STR, 0, 0) && g4c_st_find(v->ts, "mm.input_projection.weight"));
            CHECK((k == 2) == (g4c_st_find(v->ts, "v.blk.1.ffn_down.output_max") != NULL));
            g4c_gguf_free(v);
        }
    }
    /* without --mmproj a GGUF model runs text and says why images fail */
    char gg[512];
    snprintf(gg, sizeof gg, "%s/dense-f32-q8_0.gguf", tmpdir);
    g4c_model *m = load(gg, NULL);
    float out[4];
    int32_t pos[2] = {0, 0};
    g4c_err err = {0};
    CHECK(m && !g4c_model_has_vision(m) && g4c_model_encode_image(m, out, pos, 1, out, &err) == G4C_E_UNSUPPORTED &&
          strstr(err.msg, "mmproj"));
    g4c_model_free(m);
}

static void test_resolve(void) {
    char dir[512], p[600], gguf[4096], mm[4096];
    g4c_err err = {0};
    snprintf(dir, sizeof dir, "%s/resolve", tmpdir);
    mkdir(dir, 0755);
    CHECK(g4c_gguf_resolve(dir, NULL, gguf, sizeof gguf, mm, sizeof mm, &err) == 0); /* empty: not GGUF */
    snprintf(p, sizeof p, "%s/model-Q4_0.gguf", dir);
    fclose(fopen(p, "wb"));
    CHECK(g4c_gguf_resolve(dir, NULL, gguf, sizeof gguf, mm, sizeof mm, &err) == 1 && !strcmp(gguf, p) && !mm[0]);
    snprintf(p, sizeof p, "%s/mmproj-model-f16.gguf", dir);
    fclose(fopen(p, "wb"));
    CHECK(g4c_gguf_resolve(dir, NULL, gguf, sizeof gguf, mm, sizeof mm, &err) == 1 && !strcmp(mm, p));
    CHECK(g4c_gguf_resolve(dir, "/x/given.gguf", gguf, sizeof gguf, mm, sizeof mm, &err) == 1 && !strcmp(mm, "/x/given.gguf"));
    snprintf(p, sizeof p, "%s/other.gguf", dir);
    fclose(fopen(p, "wb"));
    CHECK(g4c_gguf_resolve(dir, NULL, gguf, sizeof gguf, mm, sizeof mm, &err) < 0 && strstr(err.msg, "several"));
    CHECK(g4c_gguf_resolve(p, NULL, gguf, sizeof gguf, mm, sizeof mm, &err) == 1 && !mm[0]); /* two models: no pairing */
    /* a config.json beside the GGUFs (gemma4c synth --format gguf writes one) leaves it a GGUF directory; the
     * safetensors make it a Hugging Face one */
    snprintf(p, sizeof p, "%s/config.json", dir);
    fclose(fopen(p, "wb"));
    CHECK(g4c_gguf_resolve(dir, NULL, gguf, sizeof gguf, mm, sizeof mm, &err) < 0 && strstr(err.msg, "several"));
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    fclose(fopen(p, "wb"));
    CHECK(g4c_gguf_resolve(dir, NULL, gguf, sizeof gguf, mm, sizeof mm, &err) == 0);
    g4c_model *m = NULL;
    g4c_model_params mp = g4c_model_default_params();
    snprintf(p, sizeof p, "%s/other.gguf", dir);
    CHECK(g4c_model_load(&m, p, &mp, &err) == G4C_E_FORMAT && !m && strstr(err.msg, "other.gguf")); /* empty file */
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/g4c_ggufm_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    RUN(test_type_rules);
    RUN(test_f32_gguf_matches);
    RUN(test_quantized_logits);
    RUN(test_llama_cpp_metadata);
    RUN(test_requantize_gguf);
    RUN(test_mmproj);
    RUN(test_resolve);
    fixture_rm_rf(tmpdir);
    return TEST_REPORT();
}
