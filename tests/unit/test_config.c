/* config.json parsing: every fixture config yields the per-layer shapes the reference model has; the legacy
 * global_head_dim style parses to the same layers; every bad config is refused with G4C_E_CONFIG or
 * G4C_E_UNSUPPORTED and a message naming the offending field, without leaking (run under ASan/LSan).
 * Temporary files live in a fresh mkdtemp directory under /tmp, removed at the end. */
#include <unistd.h>

#include "model/model.h"
#include "test.h"

static char tmp_root[64];

#define S "\"sliding_attention\""
#define F "\"full_attention\""

/* A valid bare gemma4_text config shaped like the dense fixture; bad configs are this with fields changed. */
#define TEXT_FIELDS                                                                                          \
    "\"vocab_size\":512,\"hidden_size\":64,\"num_hidden_layers\":6,\"num_attention_heads\":4,"               \
    "\"num_key_value_heads\":2,\"head_dim\":32,\"intermediate_size\":128,\"attention_k_eq_v\":true,"         \
    "\"layer_types\":[" S "," S "," F "," S "," S "," F "],"                                                 \
    "\"per_layer_config\":{\"2\":{\"head_dim\":64,\"num_key_value_heads\":1},"                               \
    "\"5\":{\"head_dim\":64,\"num_key_value_heads\":1}}"
static const char BASE[] = "{\"model_type\":\"gemma4_text\"," TEXT_FIELDS "}";
static const char WRAPPED[] = "{\"model_type\":\"gemma4\",\"text_config\":{\"model_type\":\"gemma4_text\"," TEXT_FIELDS "}}";
/* Two layers [sliding, full]; used for the KV-sharing rules. */
static const char TWO[] = "{\"model_type\":\"gemma4_text\",\"vocab_size\":64,\"hidden_size\":16,\"num_hidden_layers\":2,"
                          "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"head_dim\":8,\"intermediate_size\":32,"
                          "\"global_head_dim\":16,\"layer_types\":[" S "," F "]}";

/* base with the members of patch (a JSON object) put in place of (or added to) its own, and `remove` deleted.
 * With `in_text`, both apply to base's text_config. */
static cJSON *mutate(const char *base, const char *patch, const char *remove, int in_text) {
    cJSON *root = cJSON_Parse(base);
    CHECK(root != NULL);
    if (!root) return NULL;
    cJSON *obj = in_text ? cJSON_GetObjectItemCaseSensitive(root, "text_config") : root;
    if (remove) cJSON_DeleteItemFromObjectCaseSensitive(obj, remove);
    if (patch) {
        cJSON *p = cJSON_Parse(patch);
        CHECKF(p != NULL, "bad patch %s", patch);
        for (cJSON *it = p ? p->child : NULL; it; it = it->next) {
            cJSON_DeleteItemFromObjectCaseSensitive(obj, it->string);
            cJSON_AddItemToObject(obj, it->string, cJSON_Duplicate(it, 1));
        }
        cJSON_Delete(p);
    }
    return root;
}

/* Parse json text through g4c_json_parse + g4c_config_parse. */
static g4c_status parse_text(const char *text, g4c_config *cfg, g4c_err *err) {
    cJSON *root = NULL;
    g4c_status st = g4c_json_parse(&root, text, strlen(text), "test.json", err);
    if (st != G4C_OK) return st;
    st = g4c_config_parse(cfg, root, "test.json", err);
    cJSON_Delete(root);
    return st;
}

/* g4c_config_parse(root) must fail with code (0: CONFIG or UNSUPPORTED) naming `what` and needle; root is freed. */
static void expect_bad_root(cJSON *root, g4c_status code, const char *needle, int line) {
    g4c_config cfg;
    memset(&cfg, 0xab, sizeof cfg);
    g4c_err err = {0};
    g4c_status st = root ? g4c_config_parse(&cfg, root, "bad.json", &err) : G4C_E_ARG;
    if (code)
        CHECKF(st == code, "line %d: status %d, want %d (%s)", line, st, code, err.msg);
    else
        CHECKF(st == G4C_E_CONFIG || st == G4C_E_UNSUPPORTED, "line %d: status %d (%s)", line, st, err.msg);
    CHECKF(st == G4C_OK || err.code == (int)st, "line %d: err.code %d", line, err.code);
    CHECKF(strstr(err.msg, "bad.json") != NULL, "line %d: message does not name the source: %s", line, err.msg);
    CHECKF(!needle || strstr(err.msg, needle), "line %d: message lacks \"%s\": %s", line, needle, err.msg);
    if (st == G4C_OK) g4c_config_free(&cfg);
    else CHECKF(cfg.layers == NULL, "line %d: layers not freed on failure", line);
    cJSON_Delete(root);
}
/* BAD(patch, remove, code, needle) on BASE; BADW on WRAPPED's text_config; BADT on TWO. */
#define BAD(patch, remove, code, needle) expect_bad_root(mutate(BASE, patch, remove, 0), code, needle, __LINE__)
#define BADW(patch, remove, code, needle) expect_bad_root(mutate(WRAPPED, patch, remove, 1), code, needle, __LINE__)
#define BADT(patch, code, needle) expect_bad_root(mutate(TWO, patch, NULL, 0), code, needle, __LINE__)

static int load(g4c_config *cfg, const char *fixture, const char *file) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", G4C_FIXTURES, fixture, file);
    g4c_err err = {0};
    g4c_status st = g4c_config_load(cfg, path, &err);
    CHECKF(st == G4C_OK, "%s: %s", path, err.msg);
    return st == G4C_OK;
}

static int same_layers(const g4c_config *a, const g4c_config *b) {
    if (a->n_layer != b->n_layer || a->n_kv_slots != b->n_kv_slots) return 0;
    int ok = 1;
    for (int i = 0; i < a->n_layer; i++) {
        const g4c_layer_cfg *x = &a->layers[i], *y = &b->layers[i];
        int same = x->type == y->type && x->head_dim == y->head_dim && x->n_kv_head == y->n_kv_head &&
                   x->k_eq_v == y->k_eq_v && x->kv_source == y->kv_source && x->kv_slot == y->kv_slot &&
                   x->ffn_dim == y->ffn_dim;
        CHECKF(same, "layer %d: type %d/%d head_dim %d/%d kv %d/%d k_eq_v %d/%d src %d/%d slot %d/%d ffn %d/%d", i,
               x->type, y->type, x->head_dim, y->head_dim, x->n_kv_head, y->n_kv_head, x->k_eq_v, y->k_eq_v,
               x->kv_source, y->kv_source, x->kv_slot, y->kv_slot, x->ffn_dim, y->ffn_dim);
        ok &= same;
    }
    return ok;
}

/* ---- fixtures ------------------------------------------------------------------------------------------------- */

/* The dense fixture's layers: full attention on 2 and 5 with head_dim 64, 1 kv head and k_eq_v. */
static void check_dense_layers(const g4c_config *c) {
    CHECK(c->n_layer == 6 && c->n_embd == 64 && c->n_vocab == 512 && c->n_head == 4 && c->n_kv_slots == 6);
    for (int i = 0; i < c->n_layer && i < 6; i++) {
        const g4c_layer_cfg *l = &c->layers[i];
        int full = i == 2 || i == 5;
        CHECKF(l->type == (full ? G4C_LAYER_FULL : G4C_LAYER_SLIDING), "layer %d type", i);
        CHECKF(l->head_dim == (full ? 64 : 32) && l->n_kv_head == (full ? 1 : 2) && l->k_eq_v == full,
               "layer %d: head_dim %d kv %d k_eq_v %d", i, l->head_dim, l->n_kv_head, l->k_eq_v);
        CHECKF(l->kv_source == i && l->kv_slot == i && l->ffn_dim == 128, "layer %d", i);
    }
}

static void check_dense(const g4c_config *c) {
    check_dense_layers(c);
    CHECK(c->n_kv_slots == 6 && c->n_kv_shared == 0 && !c->moe && c->ple_dim == 0 && c->k_eq_v);
    CHECK(c->sliding_window == 8 && c->max_pos == 4096 && c->final_softcap == 30.0f && c->eps == 1e-6f);
    CHECK(c->tie_embeddings && c->bidir_vision && !c->double_wide_mlp);
    CHECK(c->rope[G4C_LAYER_SLIDING].type == G4C_ROPE_DEFAULT && c->rope[G4C_LAYER_SLIDING].theta == 10000.0f);
    CHECK(c->rope[G4C_LAYER_FULL].type == G4C_ROPE_PROPORTIONAL && c->rope[G4C_LAYER_FULL].theta == 1e6f &&
          c->rope[G4C_LAYER_FULL].partial_rotary == 0.25f && c->rope[G4C_LAYER_FULL].factor == 1.0f);
    CHECK(c->bos_id == 2 && c->pad_id == 0 && c->n_eos == 1 && c->eos_ids[0] == 1);
}

static void test_dense(void) {
    g4c_config c, b;
    if (!load(&c, "dense-f32", "config.json")) return;
    check_dense(&c);
    CHECK(c.layers[2].type == G4C_LAYER_FULL);
    CHECK(c.image_token_id == 502 && c.video_token_id == 503 && c.audio_token_id == 506 && c.boi_token_id == 500 &&
          c.eoi_token_id == 501);
    if (load(&b, "dense-bf16", "config.json")) {
        check_dense(&b);
        CHECK(same_layers(&b, &c));
        g4c_config_free(&b);
    }
    g4c_config_free(&c);
    CHECK(c.layers == NULL);
    g4c_config_free(&c); /* twice is harmless */
}

static void test_moe(void) {
    static const char *const fx[] = {"moe-f32", "moe-bf16"};
    for (int f = 0; f < 2; f++) {
        g4c_config c;
        if (!load(&c, fx[f], "config.json")) continue;
        CHECK(c.moe == 1 && c.n_expert == 8 && c.n_expert_used == 2 && c.moe_ffn_dim == 32);
        CHECK(c.n_layer == 4 && c.n_kv_slots == 4);
        for (int i = 0; i < 4; i++) {
            const g4c_layer_cfg *l = &c.layers[i];
            int full = i == 3;
            CHECKF(l->type == (full ? G4C_LAYER_FULL : G4C_LAYER_SLIDING) && l->head_dim == (full ? 64 : 32) &&
                   l->n_kv_head == (full ? 1 : 2) && l->k_eq_v == full && l->ffn_dim == 48 && l->kv_slot == i,
                   "%s layer %d", fx[f], i);
        }
        g4c_config_free(&c);
    }
}

static void test_e(void) {
    static const char *const fx[] = {"e-f32", "e-bf16"};
    for (int f = 0; f < 2; f++) {
        g4c_config c;
        if (!load(&c, fx[f], "config.json")) continue;
        CHECK(c.ple_dim == 16 && c.ple_vocab == 512 && c.n_kv_shared == 4 && c.n_layer == 8 && c.n_kv_slots == 4);
        CHECK(c.double_wide_mlp && !c.k_eq_v && !c.bidir_vision && !c.moe);
        for (int i = 0; i < 8; i++) {
            const g4c_layer_cfg *l = &c.layers[i];
            int full = i == 3 || i == 7;
            CHECKF(l->type == (full ? G4C_LAYER_FULL : G4C_LAYER_SLIDING) && l->head_dim == (full ? 64 : 32) &&
                   l->n_kv_head == 1 && !l->k_eq_v, "%s layer %d", fx[f], i);
            if (i < 4)
                CHECKF(l->kv_slot == i && l->kv_source == i && l->ffn_dim == 96, "%s layer %d: slot %d src %d ffn %d",
                       fx[f], i, l->kv_slot, l->kv_source, l->ffn_dim);
            else
                CHECKF(l->kv_slot == -1 && l->kv_source == (full ? 3 : 2) && l->ffn_dim == 192,
                       "%s layer %d: slot %d src %d ffn %d", fx[f], i, l->kv_slot, l->kv_source, l->ffn_dim);
        }
        g4c_config_free(&c);
    }
}

static void test_dense_text(void) {
    g4c_config t, d;
    if (!load(&t, "dense-text-f32", "config.json")) return;
    if (load(&d, "dense-f32", "config.json")) {
        check_dense(&t);
        CHECK(same_layers(&t, &d));
        CHECK(t.n_embd == d.n_embd && t.n_vocab == d.n_vocab && t.n_head == d.n_head && t.eps == d.eps &&
              t.final_softcap == d.final_softcap && t.sliding_window == d.sliding_window);
        g4c_config_free(&d);
    }
    CHECK(t.image_token_id == 258880); /* no multimodal wrapper: defaults */
    g4c_config_free(&t);
}

static void test_legacy_matches(void) {
    g4c_config a, b;
    if (!load(&a, "dense-f32", "config.json")) return;
    if (load(&b, "dense-f32", "config_legacy.json")) {
        CHECK(same_layers(&a, &b));
        check_dense(&b);
        g4c_config_free(&b);
    }
    g4c_config_free(&a);
}

/* The built-in base configs parse (so each bad case fails for its own reason). */
static void test_bases_valid(void) {
    static const char *const bases[] = {BASE, WRAPPED, TWO};
    for (int i = 0; i < 3; i++) {
        g4c_config c;
        g4c_err err = {0};
        CHECKF(parse_text(bases[i], &c, &err) == G4C_OK, "base %d: %s", i, err.msg);
        if (i < 2 && c.layers) check_dense_layers(&c);
        if (c.layers) g4c_config_free(&c);
    }
}

/* global_head_dim / num_global_key_value_heads: kv override only with attention_k_eq_v; head_dim default 512. */
static void test_legacy_rules(void) {
    static const char *const variants[] = {
        "{\"attention_k_eq_v\":false,\"global_head_dim\":64,\"num_global_key_value_heads\":1}",
        "{\"attention_k_eq_v\":true,\"global_head_dim\":64,\"num_global_key_value_heads\":1}",
        "{\"attention_k_eq_v\":true}",
        "{\"attention_k_eq_v\":false,\"num_global_key_value_heads\":1}",
    };
    /* expected full-layer {head_dim, n_kv_head, k_eq_v} */
    static const int want[][3] = {{64, 2, 0}, {64, 1, 1}, {512, 2, 1}, {512, 2, 0}};
    for (int v = 0; v < 4; v++) {
        cJSON *root = mutate(BASE, variants[v], "per_layer_config", 0);
        g4c_config c;
        g4c_err err = {0};
        g4c_status st = root ? g4c_config_parse(&c, root, "legacy", &err) : G4C_E_ARG;
        cJSON_Delete(root);
        CHECKF(st == G4C_OK, "variant %d: %s", v, err.msg);
        if (st != G4C_OK) continue;
        for (int i = 0; i < c.n_layer; i++) {
            const g4c_layer_cfg *l = &c.layers[i];
            if (l->type == G4C_LAYER_FULL)
                CHECKF(l->head_dim == want[v][0] && l->n_kv_head == want[v][1] && l->k_eq_v == want[v][2],
                       "variant %d layer %d: head_dim %d kv %d k_eq_v %d", v, i, l->head_dim, l->n_kv_head, l->k_eq_v);
            else
                CHECKF(l->head_dim == 32 && l->n_kv_head == 2 && !l->k_eq_v, "variant %d layer %d", v, i);
        }
        g4c_config_free(&c);
    }
}

/* Defaults for absent optional fields: 5 sliding then 1 full, last layer forced full, HF rope defaults. */
static void test_defaults(void) {
    cJSON *root = mutate(BASE, "{\"num_hidden_layers\":7}", "layer_types", 0);
    cJSON_DeleteItemFromObjectCaseSensitive(root, "per_layer_config");
    g4c_config c;
    g4c_err err = {0};
    g4c_status st = g4c_config_parse(&c, root, "defaults", &err);
    cJSON_Delete(root);
    CHECKF(st == G4C_OK, "%s", err.msg);
    if (st != G4C_OK) return;
    for (int i = 0; i < 7; i++)
        CHECKF(c.layers[i].type == (i == 5 || i == 6 ? G4C_LAYER_FULL : G4C_LAYER_SLIDING), "layer %d type", i);
    CHECK(c.layers[5].head_dim == 512 && c.layers[0].head_dim == 32 && c.sliding_window == 512 && c.ple_dim == 256);
    CHECK(c.rope[G4C_LAYER_FULL].type == G4C_ROPE_PROPORTIONAL && c.rope[G4C_LAYER_FULL].partial_rotary == 0.25f);
    CHECK(c.tie_embeddings == 1 && c.n_eos == 1 && c.eos_ids[0] == 1 && c.bos_id == 2);
    g4c_config_free(&c);
}

/* ---- bad configs ---------------------------------------------------------------------------------------------- */

static void test_not_object(void) {
    expect_bad_root(cJSON_Parse("[1, 2]"), G4C_E_CONFIG, "not a JSON object", __LINE__);
    expect_bad_root(cJSON_Parse("\"gemma4\""), G4C_E_CONFIG, "not a JSON object", __LINE__);
    expect_bad_root(cJSON_Parse("null"), G4C_E_CONFIG, "not a JSON object", __LINE__);
}

static void test_model_type(void) {
    BAD("{\"model_type\":\"llama\"}", NULL, G4C_E_UNSUPPORTED, "model_type");
    BAD(NULL, "model_type", G4C_E_UNSUPPORTED, "model_type");
    BAD("{\"model_type\":4}", NULL, G4C_E_CONFIG, "model_type");
    BADW("{\"model_type\":\"gemma3_text\"}", NULL, G4C_E_CONFIG, "model_type");
}

static void test_missing_text_config(void) {
    expect_bad_root(cJSON_Parse("{\"model_type\":\"gemma4\"}"), G4C_E_CONFIG, "text_config", __LINE__);
    expect_bad_root(cJSON_Parse("{\"model_type\":\"gemma4\",\"text_config\":null}"), G4C_E_CONFIG, "text_config",
                    __LINE__);
    expect_bad_root(cJSON_Parse("{\"model_type\":\"gemma4\",\"text_config\":[]}"), G4C_E_CONFIG, "text_config",
                    __LINE__);
    expect_bad_root(mutate(BASE, "{\"model_type\":\"gemma4\"}", NULL, 0), G4C_E_CONFIG, "text_config", __LINE__);
}

static void test_missing_required(void) {
    static const char *const req[] = {"hidden_size", "num_hidden_layers", "vocab_size", "head_dim",
                                      "num_attention_heads", "num_key_value_heads", "intermediate_size"};
    for (size_t i = 0; i < sizeof req / sizeof *req; i++) {
        BAD(NULL, req[i], G4C_E_CONFIG, req[i]);
        BADW(NULL, req[i], G4C_E_CONFIG, req[i]);
        char patch[128];
        snprintf(patch, sizeof patch, "{\"%s\":null}", req[i]);
        BAD(patch, NULL, G4C_E_CONFIG, req[i]);
    }
}

static void test_wrong_types(void) {
    BAD("{\"hidden_size\":\"64\"}", NULL, G4C_E_CONFIG, "hidden_size");
    BAD("{\"hidden_size\":true}", NULL, G4C_E_CONFIG, "hidden_size");
    BAD("{\"hidden_size\":1e12}", NULL, G4C_E_CONFIG, "hidden_size");
    BAD("{\"vocab_size\":0}", NULL, G4C_E_CONFIG, "vocab_size");
    BAD("{\"tie_word_embeddings\":\"yes\"}", NULL, G4C_E_CONFIG, "tie_word_embeddings");
    BAD("{\"attention_k_eq_v\":1}", NULL, G4C_E_CONFIG, "attention_k_eq_v");
    BAD("{\"rms_norm_eps\":\"1e-6\"}", NULL, G4C_E_CONFIG, "rms_norm_eps");
    BAD("{\"rms_norm_eps\":0}", NULL, G4C_E_CONFIG, "rms_norm_eps");
    BAD("{\"final_logit_softcapping\":-1}", NULL, G4C_E_CONFIG, "final_logit_softcapping");
    BAD("{\"sliding_window\":0}", NULL, G4C_E_CONFIG, "sliding_window");
    BAD("{\"head_dim\":33}", NULL, G4C_E_CONFIG, "head_dim");
    BAD("{\"attention_bias\":true}", NULL, G4C_E_UNSUPPORTED, "attention_bias");
    BAD("{\"bos_token_id\":512}", NULL, G4C_E_CONFIG, "bos_token_id");
    BAD("{\"pad_token_id\":-1}", NULL, G4C_E_CONFIG, "pad_token_id");
    expect_bad_root(mutate(WRAPPED, "{\"image_token_id\":-5}", NULL, 0), G4C_E_CONFIG, "image_token_id", __LINE__);
    expect_bad_root(mutate(WRAPPED, "{\"boi_token_id\":1.5}", NULL, 0), G4C_E_CONFIG, "boi_token_id", __LINE__);
}

static void test_bad_num_heads(void) {
    BAD("{\"num_attention_heads\":-4}", NULL, G4C_E_CONFIG, "num_attention_heads");
    BAD("{\"num_attention_heads\":4.5}", NULL, G4C_E_CONFIG, "num_attention_heads");
    BAD("{\"num_attention_heads\":0}", NULL, G4C_E_CONFIG, "num_attention_heads");
    BAD("{\"num_attention_heads\":3}", NULL, G4C_E_CONFIG, "num_attention_heads"); /* 3 % 2 kv heads */
    BAD("{\"num_key_value_heads\":0}", NULL, G4C_E_CONFIG, "num_key_value_heads");
    BAD("{\"num_key_value_heads\":-2}", NULL, G4C_E_CONFIG, "num_key_value_heads");
    BAD("{\"per_layer_config\":{\"2\":{\"num_key_value_heads\":3}}}", NULL, G4C_E_CONFIG, "num_attention_heads");
}

static void test_bad_layer_types(void) {
    BAD("{\"layer_types\":[" S "," S "," F "," S "," F "]}", NULL, G4C_E_CONFIG, "layer_types");
    BAD("{\"layer_types\":[" S "," S "," F "," S "," S "," F "," F "]}", NULL, G4C_E_CONFIG, "layer_types");
    BAD("{\"layer_types\":[" S ",\"banana\"," F "," S "," S "," F "]}", NULL, G4C_E_CONFIG, "layer_types[1]");
    BAD("{\"layer_types\":[" S ",1," F "," S "," S "," F "]}", NULL, G4C_E_CONFIG, "layer_types[1]");
    BAD("{\"layer_types\":\"full_attention\"}", NULL, G4C_E_CONFIG, "layer_types");
    BAD("{\"layer_types\":[]}", NULL, G4C_E_CONFIG, "layer_types");
}

static void test_bad_per_layer_config(void) {
    BAD("{\"per_layer_config\":{\"6\":{\"head_dim\":64}}}", NULL, G4C_E_CONFIG, "per_layer_config");
    BAD("{\"per_layer_config\":{\"-1\":{\"head_dim\":64}}}", NULL, G4C_E_CONFIG, "per_layer_config");
    BAD("{\"per_layer_config\":{\"x\":{\"head_dim\":64}}}", NULL, G4C_E_CONFIG, "per_layer_config");
    BAD("{\"per_layer_config\":{\"2x\":{\"head_dim\":64}}}", NULL, G4C_E_CONFIG, "per_layer_config");
    BAD("{\"per_layer_config\":{\"\":{\"head_dim\":64}}}", NULL, G4C_E_CONFIG, "per_layer_config");
    BAD("{\"per_layer_config\":{\"99999999999999999999\":{}}}", NULL, G4C_E_CONFIG, "per_layer_config");
    BAD("{\"per_layer_config\":{\"2\":64}}", NULL, G4C_E_CONFIG, "per_layer_config");
    BAD("{\"per_layer_config\":[1,2]}", NULL, G4C_E_CONFIG, "per_layer_config");
    BAD("{\"per_layer_config\":{\"2\":{\"sliding_window\":4}}}", NULL, G4C_E_UNSUPPORTED, "sliding_window");
    BAD("{\"per_layer_config\":{\"2\":{\"head_dim\":64,\"rope_theta\":5}}}", NULL, G4C_E_UNSUPPORTED,
        "per_layer_config.2.rope_theta");
    BAD("{\"per_layer_config\":{\"2\":{\"head_dim\":\"64\"}}}", NULL, G4C_E_CONFIG, "head_dim");
    BAD("{\"per_layer_config\":{\"2\":{\"head_dim\":63}}}", NULL, G4C_E_CONFIG, "head_dim");
    /* full layers 2 and 5 with different head_dim: one RoPE table per type */
    BAD("{\"per_layer_config\":{\"2\":{\"head_dim\":64,\"num_key_value_heads\":1},"
        "\"5\":{\"head_dim\":128,\"num_key_value_heads\":1}}}", NULL, G4C_E_CONFIG, "head_dim");
}

static void test_bad_rope(void) {
    static const char *const full = "\"full_attention\":{\"rope_type\":\"proportional\",\"rope_theta\":1e6,"
                                    "\"partial_rotary_factor\":0.25}";
    char patch[512];
    snprintf(patch, sizeof patch, "{\"rope_parameters\":{\"sliding_attention\":{\"rope_type\":\"yarn\"},%s}}", full);
    BAD(patch, NULL, G4C_E_UNSUPPORTED, "rope_type");
    BAD("{\"rope_parameters\":{\"sliding_attention\":{\"rope_type\":\"default\"},\"full_attention\":"
        "{\"rope_type\":\"proportional\",\"partial_rotary_factor\":2}}}", NULL, G4C_E_CONFIG, "partial_rotary_factor");
    BAD("{\"rope_parameters\":{\"sliding_attention\":{\"rope_type\":\"default\"},\"full_attention\":"
        "{\"rope_type\":\"proportional\",\"partial_rotary_factor\":-0.5}}}", NULL, G4C_E_CONFIG,
        "partial_rotary_factor");
    BAD("{\"rope_parameters\":{\"sliding_attention\":{\"rope_type\":\"default\",\"rope_theta\":0},"
        "\"full_attention\":{}}}", NULL, G4C_E_CONFIG, "rope_theta");
    snprintf(patch, sizeof patch, "{\"rope_parameters\":{%s}}", full);
    BAD(patch, NULL, G4C_E_CONFIG, "sliding_attention");
    snprintf(patch, sizeof patch, "{\"rope_parameters\":{\"sliding_attention\":{\"rope_type\":7},%s}}", full);
    BAD(patch, NULL, G4C_E_CONFIG, "rope_type");
    snprintf(patch, sizeof patch,
             "{\"rope_parameters\":{\"sliding_attention\":{\"rope_type\":\"default\",\"factor\":8},%s}}", full);
    BAD(patch, NULL, G4C_E_UNSUPPORTED, "factor");
}

static void test_bad_kv_sharing(void) {
    BAD("{\"num_kv_shared_layers\":7}", NULL, G4C_E_CONFIG, "num_kv_shared_layers");
    BAD("{\"num_kv_shared_layers\":-1}", NULL, G4C_E_CONFIG, "num_kv_shared_layers");
    BAD("{\"num_kv_shared_layers\":6}", NULL, G4C_E_CONFIG, "num_kv_shared_layers");
    /* [sliding, full] with the last layer shared: no earlier full layer to read from */
    BADT("{\"num_kv_shared_layers\":1}", G4C_E_CONFIG, "num_kv_shared_layers");
    /* a shared layer whose kv heads differ from its source's */
    BAD("{\"num_kv_shared_layers\":3,\"per_layer_config\":{\"2\":{\"head_dim\":64,\"num_key_value_heads\":1},"
        "\"5\":{\"head_dim\":64,\"num_key_value_heads\":2}}}", NULL, G4C_E_CONFIG, "shares KV");
    /* and the valid case: layers 3..5 read 1 (sliding) and 2 (full) */
    g4c_config c;
    g4c_err err = {0};
    cJSON *root = mutate(BASE, "{\"num_kv_shared_layers\":3,\"use_double_wide_mlp\":true}", NULL, 0);
    CHECKF(g4c_config_parse(&c, root, "share", &err) == G4C_OK, "%s", err.msg);
    cJSON_Delete(root);
    if (!c.layers) return;
    CHECK(c.n_kv_slots == 3 && c.layers[3].kv_source == 1 && c.layers[4].kv_source == 1 && c.layers[5].kv_source == 2);
    CHECK(c.layers[5].kv_slot == -1 && c.layers[5].ffn_dim == 256 && c.layers[2].ffn_dim == 128);
    g4c_config_free(&c);
}

static void test_bad_moe(void) {
    BAD("{\"enable_moe_block\":true}", NULL, G4C_E_CONFIG, "num_experts");
    BAD("{\"enable_moe_block\":true,\"num_experts\":null,\"top_k_experts\":null}", NULL, G4C_E_CONFIG, "num_experts");
    BAD("{\"enable_moe_block\":true,\"num_experts\":8}", NULL, G4C_E_CONFIG, "top_k_experts");
    BAD("{\"enable_moe_block\":true,\"num_experts\":8,\"top_k_experts\":2}", NULL, G4C_E_CONFIG,
        "moe_intermediate_size");
    BAD("{\"enable_moe_block\":true,\"num_experts\":8,\"top_k_experts\":9,\"moe_intermediate_size\":32}", NULL,
        G4C_E_CONFIG, "top_k_experts");
    BAD("{\"enable_moe_block\":true,\"num_experts\":0,\"top_k_experts\":1,\"moe_intermediate_size\":32}", NULL,
        G4C_E_CONFIG, "num_experts");
    BAD("{\"enable_moe_block\":\"true\"}", NULL, G4C_E_CONFIG, "enable_moe_block");
}

static void test_bad_activation_and_attention(void) {
    BAD("{\"hidden_activation\":\"relu\"}", NULL, G4C_E_UNSUPPORTED, "hidden_activation");
    BAD("{\"hidden_activation\":1}", NULL, G4C_E_CONFIG, "hidden_activation");
    BAD("{\"use_bidirectional_attention\":\"all\"}", NULL, G4C_E_UNSUPPORTED, "use_bidirectional_attention");
    BAD("{\"use_bidirectional_attention\":true}", NULL, G4C_E_CONFIG, "use_bidirectional_attention");
}

static void test_bad_eos(void) {
    BAD("{\"eos_token_id\":512}", NULL, G4C_E_CONFIG, "eos_token_id");
    BAD("{\"eos_token_id\":-1}", NULL, G4C_E_CONFIG, "eos_token_id");
    BAD("{\"eos_token_id\":[1, 600]}", NULL, G4C_E_CONFIG, "eos_token_id");
    BAD("{\"eos_token_id\":[1, 2.5]}", NULL, G4C_E_CONFIG, "eos_token_id");
    BAD("{\"eos_token_id\":[1, \"2\"]}", NULL, G4C_E_CONFIG, "eos_token_id");
    BAD("{\"eos_token_id\":[1,2,3,4,5,6,7,8,9]}", NULL, G4C_E_CONFIG, "eos_token_id");
    BAD("{\"eos_token_id\":\"1\"}", NULL, G4C_E_CONFIG, "eos_token_id");
    /* the wrapper's top-level list is checked against the text vocabulary too */
    expect_bad_root(mutate(WRAPPED, "{\"eos_token_id\":[1, 9999]}", NULL, 0), G4C_E_CONFIG, "eos_token_id", __LINE__);
    /* and a good list is read */
    g4c_config c;
    g4c_err err = {0};
    cJSON *root = mutate(WRAPPED, "{\"eos_token_id\":[1, 106]}", NULL, 0);
    CHECKF(g4c_config_parse(&c, root, "eos", &err) == G4C_OK, "%s", err.msg);
    cJSON_Delete(root);
    if (!c.layers) return;
    CHECK(c.n_eos == 2 && c.eos_ids[0] == 1 && c.eos_ids[1] == 106);
    g4c_config_free(&c);
}

static void test_load_errors(void) {
    char path[256];
    g4c_config c;
    g4c_err err = {0};
    snprintf(path, sizeof path, "%s/config.json", tmp_root);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs("{\"model_type\": \"gemma4_text\", \"vocab_size\": 512,", f);
    fclose(f);
    memset(&c, 0xab, sizeof c);
    CHECK(g4c_config_load(&c, path, &err) == G4C_E_FORMAT && c.layers == NULL);
    CHECKF(strstr(err.msg, path) != NULL, "%s", err.msg);
    /* valid JSON but a bad config: the message names the file */
    f = fopen(path, "w");
    fputs("{\"model_type\": \"gemma4_text\", \"vocab_size\": 512}", f);
    fclose(f);
    memset(&c, 0xab, sizeof c);
    CHECK(g4c_config_load(&c, path, &err) == G4C_E_CONFIG && c.layers == NULL);
    CHECKF(strstr(err.msg, path) && strstr(err.msg, "hidden_size"), "%s", err.msg);
    unlink(path);
    memset(&c, 0xab, sizeof c);
    CHECK(g4c_config_load(&c, path, &err) == G4C_E_IO && c.layers == NULL);
    CHECKF(strstr(err.msg, path) != NULL, "%s", err.msg);
    memset(&c, 0xab, sizeof c);
    CHECK(g4c_config_load(&c, tmp_root, &err) == G4C_E_IO && c.layers == NULL); /* a directory */
}

int main(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/g4c_test_cfg_XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_dense);
    RUN(test_moe);
    RUN(test_e);
    RUN(test_dense_text);
    RUN(test_legacy_matches);
    RUN(test_bases_valid);
    RUN(test_legacy_rules);
    RUN(test_defaults);
    RUN(test_not_object);
    RUN(test_model_type);
    RUN(test_missing_text_config);
    RUN(test_missing_required);
    RUN(test_wrong_types);
    RUN(test_bad_num_heads);
    RUN(test_bad_layer_types);
    RUN(test_bad_per_layer_config);
    RUN(test_bad_rope);
    RUN(test_bad_kv_sharing);
    RUN(test_bad_moe);
    RUN(test_bad_activation_and_attention);
    RUN(test_bad_eos);
    RUN(test_load_errors);
    rmdir(tmp_root);
    return TEST_REPORT();
}
