/* Vision tower, soft-token placement and image-aware attention against transformers 5.17
 * (tests/fixtures/ref/mm, tools/make_image_fixtures.py): a two-image prompt (chelsea + astronaut at the 70-token
 * budget) on E-style (clipped linears, causal) and large-style (standardize, bidirectional) models.
 * Pixel patches are built from the reference's resized images, so this test does not depend on the decoder or
 * resampler (tests/unit/test_image.c covers those). Bar: relative L2 <= 1e-4 (issue 3). */
#include "fixture.h"

#define FIX G4C_FIXTURES
static const double TOL = 1e-4;

typedef struct {
    int32_t tokens[512];
    int n_tokens;
    float *features, *logits; /* [n_soft][H], [n_tokens][V] */
    int64_t n_soft, H, V;
    double bidir_diff;        /* transformers: max |logits(bidirectional) - logits(causal)| */
} mm_ref;

static int load_mm(mm_ref *r, const char *tag) {
    char path[512];
    snprintf(path, sizeof path, "%s/ref/mm/%s.json", FIX, tag);
    cJSON *j;
    g4c_err err = {0};
    if (g4c_json_read_file(&j, path, &err) != G4C_OK) return 0;
    r->n_tokens = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "tokens")) r->tokens[r->n_tokens++] = (int32_t)it->valuedouble;
    r->bidir_diff = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "bidirectional_vs_causal_max_abs"));
    cJSON_Delete(j);
    int nd;
    int64_t sh[4];
    snprintf(path, sizeof path, "%s/ref/mm/%s.features.npy", FIX, tag);
    if (g4c_npy_read_f32(path, &r->features, &nd, sh, &err) != G4C_OK) return 0;
    r->n_soft = sh[0], r->H = sh[1];
    snprintf(path, sizeof path, "%s/ref/mm/%s.logits.npy", FIX, tag);
    if (g4c_npy_read_f32(path, &r->logits, &nd, sh, &err) != G4C_OK) return 0;
    r->V = sh[1];
    return sh[0] == r->n_tokens;
}

static void check_model(const char *tag, int expect_bidir) {
    mm_ref r;
    CHECK(load_mm(&r, tag));
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", FIX, tag);
    g4c_model *m;
    g4c_err err = {0};
    CHECKF(fixture_model_load(&m, dir, 2, NULL, &err) == G4C_OK, "%s", err.msg);
    if (!m) return;
    CHECK(g4c_model_has_vision(m));
    /* features of both images, concatenated like transformers' get_image_features */
    float *soft = malloc(sizeof(float) * (size_t)r.n_soft * r.H);
    int at = 0;
    const char *imgs[2] = {"chelsea_b70", "astronaut384_b70"};
    for (int i = 0; i < 2; i++) {
        float *p = NULL;
        int32_t *pos = NULL;
        int n = fixture_patchify(FIX, imgs[i], &p, &pos);
        CHECK(n > 0 && at + n / 9 <= r.n_soft);
        if (n > 0 && at + n / 9 <= r.n_soft)
            CHECKF(g4c_model_encode_image(m, p, pos, n, soft + (size_t)at * r.H, &err) == G4C_OK, "%s", err.msg);
        at += n / 9;
        free(p), free(pos);
    }
    CHECK(at == r.n_soft);
    double ef = test_rel_l2(soft, r.features, (size_t)r.n_soft * r.H);
    CHECKF(ef <= TOL, "%s: features rel L2 %.3g", tag, ef);

    /* the whole prompt, in one chunk and in small chunks (image blocks are never split) */
    float *lg = malloc(sizeof(float) * (size_t)r.n_tokens * r.V);
    const int ubatches[2] = {512, 7};
    for (int u = 0; u < 2; u++) {
        g4c_session_params sp = g4c_session_default_params();
        sp.n_ctx = 256;
        sp.n_ubatch = ubatches[u] > 70 || !expect_bidir ? ubatches[u] : 70;
        g4c_session *s = NULL;
        CHECK(g4c_session_init(&s, m, &sp, &err) == G4C_OK);
        CHECKF(g4c_session_eval_mm(s, r.tokens, r.n_tokens, soft, (int)r.n_soft, lg, G4C_LOGITS_ALL, &err) == G4C_OK,
               "%s", err.msg);
        int at = -1;
        const double worst = fixture_worst_rel(lg, r.logits, r.n_tokens, r.V, 0, &at);
        CHECKF(worst <= TOL, "%s ubatch %d: logits worst rel L2 %.3g", tag, sp.n_ubatch, worst);
        printf("     %-16s features rel L2 %.2e, logits worst %.2e (ubatch %d)\n", tag, ef, worst, sp.n_ubatch);
        g4c_session_free(s);
    }
    /* the bidirectional image block matters exactly where the config asks for it */
    g4c_session *s = NULL;
    g4c_session_params sp = g4c_session_default_params();
    sp.n_ctx = 256;
    CHECK(g4c_session_init(&s, m, &sp, &err) == G4C_OK);
    s->st.bidir_off = 1;
    float *lc = malloc(sizeof(float) * (size_t)r.n_tokens * r.V);
    CHECK(g4c_session_eval_mm(s, r.tokens, r.n_tokens, soft, (int)r.n_soft, lc, G4C_LOGITS_ALL, &err) == G4C_OK);
    double d = 0;
    for (size_t i = 0; i < (size_t)r.n_tokens * r.V; i++) d = fabs(lc[i] - lg[i]) > d ? fabs(lc[i] - lg[i]) : d;
    if (expect_bidir)
        CHECKF(d > 0.1 && r.bidir_diff > 0.1, "%s: causal vs bidirectional max |diff| %.3g (transformers %.3g)", tag,
               d, r.bidir_diff);
    else
        CHECKF(d == 0 && r.bidir_diff == 0, "%s: E-model logits changed without bidirectional attention", tag);
    g4c_session_free(s);

    /* a count mismatch is an error naming both numbers */
    s = NULL;
    CHECK(g4c_session_init(&s, m, &sp, &err) == G4C_OK);
    CHECK(g4c_session_eval_mm(s, r.tokens, r.n_tokens, soft, (int)r.n_soft - 1, lg, G4C_LOGITS_LAST, &err) ==
          G4C_E_ARG);
    char want[64];
    snprintf(want, sizeof want, "%d image placeholder tokens but %d", (int)r.n_soft, (int)r.n_soft - 1);
    CHECKF(strstr(err.msg, want) != NULL, "message: %s", err.msg);
    g4c_session_free(s);
    free(lc), free(lg), free(soft), free(r.features), free(r.logits);
    g4c_model_free(m);
}

static void test_e_f32(void) { check_model("e-f32", 0); }
static void test_e_bf16(void) { check_model("e-bf16", 0); }
static void test_dense_f32(void) { check_model("dense-f32-w128", 1); }
static void test_dense_bf16(void) { check_model("dense-bf16-w128", 1); }
static void test_moe_f32(void) { check_model("moe-f32-w128", 1); }

static void test_bad_grid(void) {
    g4c_model *m = NULL;
    CHECK(g4c_model_load(&m, FIX "/e-f32", NULL, NULL) == G4C_OK);
    if (!m) return;
    float p[768 * 4] = {0}, out[64];
    int32_t pos[8] = {0, 0, 1, 0, 0, 1, 1, 1}; /* 2x2: not divisible by the 3x3 pooler */
    g4c_err err = {0};
    CHECK(g4c_model_encode_image(m, p, pos, 4, out, &err) == G4C_E_ARG && strstr(err.msg, "grid"));
    pos[0] = 999; /* outside the 64-entry position table */
    CHECK(g4c_model_encode_image(m, p, pos, 4, out, &err) == G4C_E_ARG && strstr(err.msg, "position table"));
    g4c_model_free(m);
}

/* The image block on sliding layers (spec §3.10, transformers 5.17): a placeholder sees the rest of its run at any
 * distance, earlier tokens only inside the window; text stays causal; two adjacent images' runs are separate only
 * when a non-placeholder token (their <image|> / <|image>) sits between them. */
static void test_block_mask_and_window_clamp(void) {
    g4c_config c = {0};
    c.image_token_id = 502, c.video_token_id = 503, c.audio_token_id = 506;
    int32_t tok[30];
    int hi[30];
    for (int i = 0; i < 30; i++) tok[i] = 7;
    for (int i = 3; i < 23; i++) tok[i] = 502; /* a 20-token image block, longer than an 8-token window */
    tok[24] = tok[25] = 502;                    /* a second block after one text token */
    g4c_text_visible_hi(&c, tok, 30, 100, hi);
    for (int i = 0; i < 30; i++) {
        const int want = i >= 3 && i < 23 ? 100 + 22 : i == 24 || i == 25 ? 100 + 25 : 100 + i;
        CHECKF(hi[i] == want, "token %d: hi %d, want %d", i, hi[i], want);
    }
    /* kernel: window 8 clamps only the past side; query 3 (block start, position 103) sees 96..122 */
    enum { N = 30, HD = 4 };
    float k[N * HD], v[N * HD], q[HD] = {0, 0, 0, 0}, o[HD], orf[HD];
    for (int j = 0; j < N; j++)
        for (int d = 0; d < HD; d++) k[j * HD + d] = 0, v[j * HD + d] = (float)j; /* uniform attention: mean of positions */
    int hi1 = 22;
    g4c_kv_view kv = {k, v, N, 1, HD, 8, &hi1};
    float scratch[64];
    g4c_attention(NULL, o, q, &kv, 1, 3, 1, scratch, 64);
    g4c_ref_attention(orf, q, &kv, 1, 3, 1);
    /* positions max(0, 3 - 7) .. 22: mean 11 */
    CHECKF(fabsf(o[0] - 11.0f) < 1e-5f && fabsf(orf[0] - 11.0f) < 1e-5f, "mean %g / %g", o[0], orf[0]);
    int hi2 = 22;
    kv.hi = &hi2;
    g4c_attention(NULL, o, q, &kv, 1, 20, 1, scratch, 64); /* query at 20: 13 .. 22 -> mean 17.5 */
    CHECKF(fabsf(o[0] - 17.5f) < 1e-5f, "mean %g", o[0]);
}

int main(void) {
    RUN(test_block_mask_and_window_clamp);
    RUN(test_e_f32);
    RUN(test_e_bf16);
    RUN(test_dense_f32);
    RUN(test_dense_bf16);
    RUN(test_moe_f32);
    RUN(test_bad_grid);
    return TEST_REPORT();
}
