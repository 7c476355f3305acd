/* MLX-quantized checkpoints (issue 5, spec §8.3): affine dequantization of hand-packed codes, the mlx-vlm-layout
 * fixtures (tools/make_mlx_fixtures.py: the tiny HF fixtures quantized as mlx-vlm does, 4-bit group 64 and 8-bit
 * group 32 with bf16 scales) against transformers run on their dequantized weights, and malformed MLX checkpoints.
 * Bar: relative L2 <= 1e-4 per position (logits) and for the vision soft tokens. */
#include <unistd.h>

#include "fixture.h"

#define FIX G4C_FIXTURES
static const double TOL = 1e-4;

/* ---- dequantization ------------------------------------------------------------------------------------------ */

static g4c_wmat mlx_wmat(const void *codes, const void *scales, const void *biases, g4c_dtype sdt, int64_t rows,
                         int64_t cols, int group, int bits) {
    return (g4c_wmat){.dtype = G4C_DTYPE_U32, .data = codes, .rows = rows, .cols = cols, .scales = scales,
                      .biases = biases, .scale_dtype = sdt, .group = group, .bits = bits};
}

static void test_dequant_hand_packed(void) {
    float out[64];
    /* 4 bits: code n of a word at bits [4n, 4n+4); two groups of 8 with their own scale and bias */
    const uint32_t w4[2] = {0x76543210u, 0xFEDCBA98u};
    const float s4[2] = {0.5f, -0.25f}, b4[2] = {1.0f, 2.0f};
    g4c_wmat m = mlx_wmat(w4, s4, b4, G4C_DTYPE_F32, 1, 16, 8, 4);
    g4c_wmat_row_f32(&m, 0, out);
    for (int c = 0; c < 16; c++)
        CHECKF(out[c] == (c < 8 ? 0.5f * c + 1.0f : -0.25f * c + 2.0f), "4-bit col %d: %g", c, out[c]);
    /* 8 bits, bf16 scales and biases, two rows: the second row's scales follow the first's */
    const uint32_t w8[4] = {0x03020100u, 0xFF80407Fu, 0x0A0B0C0Du, 0x00000001u};
    const uint16_t s8[2] = {g4c_f32_to_bf16(0.125f), g4c_f32_to_bf16(-2.0f)};
    const uint16_t b8[2] = {g4c_f32_to_bf16(-3.0f), g4c_f32_to_bf16(0.5f)};
    m = mlx_wmat(w8, s8, b8, G4C_DTYPE_BF16, 2, 8, 8, 8);
    const int q8[2][8] = {{0, 1, 2, 3, 0x7F, 0x40, 0x80, 0xFF}, {0x0D, 0x0C, 0x0B, 0x0A, 1, 0, 0, 0}};
    for (int r = 0; r < 2; r++) {
        g4c_wmat_row_f32(&m, r, out);
        for (int c = 0; c < 8; c++) {
            const float want = r ? -2.0f * q8[r][c] + 0.5f : 0.125f * q8[r][c] - 3.0f;
            CHECKF(out[c] == want, "8-bit row %d col %d: %g want %g", r, c, out[c], want);
        }
    }
    g4c_wmat r1 = g4c_wmat_rows(m, 1, 1); /* a row view carries its scales along */
    g4c_wmat_row_f32(&r1, 0, out);
    CHECK(out[0] == -2.0f * 13 + 0.5f && out[4] == -2.0f + 0.5f);
    /* 2 bits: 0xE4 = codes 0, 1, 2, 3 */
    const uint32_t w2[1] = {0xE4E4E4E4u};
    const float one = 1.0f, zero = 0.0f;
    m = mlx_wmat(w2, &one, &zero, G4C_DTYPE_F32, 1, 16, 16, 2);
    g4c_wmat_row_f32(&m, 0, out);
    for (int c = 0; c < 16; c++) CHECKF(out[c] == (float)(c % 4), "2-bit col %d: %g", c, out[c]);
    /* 3 bits: MLX packs 8 codes in 3 bytes (bytes 88 C6 FA = codes 0..7), so codes straddle words */
    uint8_t w3[12];
    for (int i = 0; i < 4; i++) w3[3 * i] = 0x88, w3[3 * i + 1] = 0xC6, w3[3 * i + 2] = 0xFA;
    m = mlx_wmat(w3, &one, &zero, G4C_DTYPE_F32, 1, 32, 32, 3);
    g4c_wmat_row_f32(&m, 0, out);
    for (int c = 0; c < 32; c++) CHECKF(out[c] == (float)(c % 8), "3-bit col %d: %g", c, out[c]);
    /* 6 bits: 4 codes in 3 bytes; 1, 2, 3, 63 = 81 30 FC (mlx extract_bits) */
    uint8_t w6[12];
    for (int i = 0; i < 4; i++) w6[3 * i] = 0x81, w6[3 * i + 1] = 0x30, w6[3 * i + 2] = 0xFC;
    m = mlx_wmat(w6, &one, &zero, G4C_DTYPE_F32, 1, 16, 16, 6);
    g4c_wmat_row_f32(&m, 0, out);
    const float q6[4] = {1, 2, 3, 63};
    for (int c = 0; c < 16; c++) CHECKF(out[c] == q6[c % 4], "6-bit col %d: %g", c, out[c]);
}

/* Every supported width against a bit-by-bit reading of the stream, then the fast matmul against the oracle. */
static void test_dequant_random_widths(void) {
    enum { R = 37, C = 128, G = 32 };
    static uint32_t codes[R * C / 4];
    static uint16_t sc[R * C / G], bi[R * C / G];
    uint64_t seed = 5;
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) codes[i] = (uint32_t)test_rng_u64(&seed);
    for (int i = 0; i < R * C / G; i++) {
        sc[i] = g4c_f32_to_bf16(test_rng_f(&seed) * 0.1f);
        bi[i] = g4c_f32_to_bf16(test_rng_f(&seed));
    }
    g4c_pool *pool;
    CHECK(g4c_pool_init(&pool, 2, NULL) == G4C_OK);
    CHECK(g4c_pool_reserve(pool, g4c_matmul_scratch_bytes(C), NULL) == G4C_OK);
    static const int widths[] = {2, 3, 4, 5, 6, 8};
    float row[C], x[3 * C], y[3 * R], yr[3 * R];
    test_fill(x, 3 * C, &seed);
    for (size_t k = 0; k < sizeof widths / sizeof *widths; k++) {
        const int bits = widths[k];
        g4c_wmat m = mlx_wmat(codes, sc, bi, G4C_DTYPE_BF16, R, C, G, bits);
        const uint8_t *bytes = (const uint8_t *)codes;
        int bad = 0;
        for (int r = 0; r < R; r++) {
            g4c_wmat_row_f32(&m, r, row);
            for (int c = 0; c < C; c++) {
                unsigned q = 0;
                for (int b = 0; b < bits; b++) {
                    const size_t bit = (size_t)r * C * bits + (size_t)c * bits + (size_t)b;
                    q |= (unsigned)((bytes[bit / 8] >> (bit % 8)) & 1) << b;
                }
                const int gi = r * (C / G) + c / G;
                const float want = g4c_bf16_to_f32(sc[gi]) * (float)q + g4c_bf16_to_f32(bi[gi]);
                bad += row[c] != want;
            }
        }
        CHECKF(!bad, "%d-bit: %d values differ from the bit-stream reading", bits, bad);
        g4c_matmul(pool, y, x, &m, 3);
        g4c_ref_matmul(yr, x, &m, 3);
        const double e = test_rel_l2(y, yr, 3 * R);
        CHECKF(e < 1e-5, "%d-bit matmul vs oracle rel L2 %.3g", bits, e);
    }
    g4c_pool_free(pool);
}

/* ---- fixtures ------------------------------------------------------------------------------------------------ */

/* A fixture's reference (logits: transformers on the dequantized weights) and base: the unquantized source model's
 * logits, [n_prompt][vocab]. */
static int load_ref(fixture_ref *r, float **base, const char *tag) {
    *base = NULL;
    if (!fixture_load_ref(r, FIX, tag, FIXTURE_LOGITS)) return 0;
    char path[512];
    snprintf(path, sizeof path, "%s/ref/%s.logits.npy", FIX, r->source);
    int64_t v2 = 0;
    *base = fixture_read_npy(path, r->n_prompt, &v2);
    return *base && v2 == r->vocab;
}

static g4c_model *load(const char *dir) { return fixture_load(dir, 2, NULL); }

static void check_logits(g4c_model *m, const fixture_ref *r, const float *base, int n_ubatch, const char *tag) {
    g4c_session *s = fixture_session(m, 128, n_ubatch, -1);
    CHECK(s != NULL);
    if (!s) return;
    g4c_err err = {0};
    float *lg = malloc(sizeof(float) * (size_t)r->n_prompt * r->vocab);
    for (int i = 0; i < r->n_prompt; i += n_ubatch) { /* chunks through the KV cache */
        const int n = r->n_prompt - i < n_ubatch ? r->n_prompt - i : n_ubatch;
        CHECK(g4c_session_eval(s, r->prompt + i, n, lg + (size_t)i * r->vocab, G4C_LOGITS_ALL, &err) == G4C_OK);
    }
    int at = -1, atb = -1;
    const double e = fixture_worst_rel(lg, r->logits, r->n_prompt, r->vocab, 0, &at),
                 eb = fixture_worst_rel(lg, base, r->n_prompt, r->vocab, 0, &atb);
    CHECKF(e <= TOL, "%s ubatch %d: worst rel L2 %.3g at position %d", tag, n_ubatch, e, at);
    /* the quantized weights are really used: the unquantized source model's logits are far away */
    CHECKF(eb > 10 * TOL, "%s: only %.3g from the unquantized model", tag, eb);
    printf("     %-16s ubatch %-2d worst rel L2 vs dequantized reference %.2e (unquantized model: %.2e)\n", tag,
           n_ubatch, e, eb);
    free(lg);
    g4c_session_free(s);
}

static void check_fixture(const char *tag) {
    fixture_ref r;
    float *base;
    CHECK(load_ref(&r, &base, tag));
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", FIX, tag);
    g4c_model *m = load(dir);
    CHECK(m != NULL);
    if (m && r.logits) {
        const g4c_weights *w = &m->w;
        CHECK(w->embed.dtype == G4C_DTYPE_U32 && w->lm_head.data == w->embed.data); /* tied head = the embedding */
        CHECK(w->layers[0].q.dtype == G4C_DTYPE_U32 && w->layers[0].o.dtype == G4C_DTYPE_U32);
        if (m->cfg.moe) {
            const g4c_layer_w *L = &w->layers[0];
            CHECK(L->router.dtype == G4C_DTYPE_U32 && L->router.bits == 8 && L->router.group == 64);
            CHECK(L->exp_gate.data && L->exp_up.data && !L->exp_gate_up.data && L->exp_gate.dtype == G4C_DTYPE_U32);
            CHECK(L->exp_gate.rows == (int64_t)m->cfg.n_expert * m->cfg.moe_ffn_dim);
        }
        check_logits(m, &r, base, 64, tag);
        check_logits(m, &r, base, 7, tag);
    }
    g4c_model_free(m);
    fixture_free_ref(&r);
    free(base);
}

static void test_mlx_dense_4bit(void) { check_fixture("mlx-dense-4bit"); }
static void test_mlx_moe_4bit(void) { check_fixture("mlx-moe-4bit"); }
static void test_mlx_e_4bit(void) { check_fixture("mlx-e-4bit"); }
static void test_mlx_moe_8bit(void) { check_fixture("mlx-moe-8bit"); }

/* The group-64 fixtures keep what mlx leaves alone (last dimension not a multiple of 64), the group-32 one does
 * not: the 8-bit fixture has quantized down-projection experts (3-D codes) and a quantized embed_vision. */
static void test_mixed_layouts(void) {
    g4c_model *a = load(FIX "/mlx-moe-4bit"), *b = load(FIX "/mlx-moe-8bit"), *e = load(FIX "/mlx-e-4bit");
    CHECK(a && b && e);
    if (a && b && e) {
        CHECK(a->w.layers[0].exp_down.dtype == G4C_DTYPE_F32); /* [E, 64, 32]: 32 % 64 */
        CHECK(a->w.layers[0].down.dtype == G4C_DTYPE_F32);     /* [64, 48] */
        CHECK(a->w.layers[0].gate.dtype == G4C_DTYPE_U32 && a->w.layers[0].gate.bits == 4);
        const g4c_wmat *d = &b->w.layers[1].exp_down;
        CHECK(d->dtype == G4C_DTYPE_U32 && d->bits == 8 && d->group == 32 && d->scale_dtype == G4C_DTYPE_BF16);
        CHECK(b->w.layers[0].router.bits == 8 && b->w.layers[0].router.group == 64);
        CHECK(b->has_vision && b->vw.mm_proj.dtype == G4C_DTYPE_U32 && b->vw.layers[0].q.w.dtype == G4C_DTYPE_BF16);
        CHECK(e->w.ple_embed.dtype == G4C_DTYPE_U32 && e->w.ple_model_proj.dtype == G4C_DTYPE_U32);
        CHECK(e->w.layers[0].ple_gate.dtype == G4C_DTYPE_U32 && e->w.layers[0].ple_proj.dtype == G4C_DTYPE_F32);
        CHECK(e->w.layers[7].k.data == NULL); /* KV-shared layer: mlx-vlm drops its k/v */
    }
    g4c_model_free(a);
    g4c_model_free(b);
    g4c_model_free(e);
}

static void test_vision(void) {
    float *patches = NULL;
    int32_t *pos = NULL;
    const int n = fixture_patchify(FIX, "astronaut384_b70", &patches, &pos);
    CHECK(n > 0);
    int64_t H = 0;
    float *want = fixture_read_npy(FIX "/ref/mlx-moe-8bit.features.npy", -1, &H);
    g4c_model *q = load(FIX "/mlx-moe-8bit"), *a = load(FIX "/mlx-dense-4bit"), *f = load(FIX "/dense-f32");
    CHECK(want && q && a && f);
    if (n > 0 && want && q && a && f) {
        const int n_soft = n / 9;
        float *o = malloc(sizeof(float) * (size_t)n_soft * H), *o2 = malloc(sizeof(float) * (size_t)n_soft * H);
        g4c_err err = {0};
        /* quantized embed_vision against transformers on its dequantized weights */
        CHECK(g4c_model_encode_image(q, patches, pos, n, o, &err) == G4C_OK);
        const double e = test_rel_l2(o, want, (size_t)n_soft * H);
        CHECKF(e <= TOL, "mlx-moe-8bit soft tokens rel L2 %.3g", e);
        printf("     mlx-moe-8bit vision soft tokens [%d, %lld]: rel L2 %.2e\n", n_soft, (long long)H, e);
        /* group 64 leaves the tiny tower and its [64, 32] projection unquantized: the same numbers as the HF file */
        CHECK(g4c_model_encode_image(a, patches, pos, n, o, &err) == G4C_OK);
        CHECK(g4c_model_encode_image(f, patches, pos, n, o2, &err) == G4C_OK);
        CHECK(memcmp(o, o2, sizeof(float) * (size_t)n_soft * H) == 0);
        free(o);
        free(o2);
    }
    g4c_model_free(q);
    g4c_model_free(a);
    g4c_model_free(f);
    free(want);
    free(patches);
    free(pos);
}

/* ---- malformed checkpoints ------------------------------------------------------------------------------------ */

static char tmpdir[64];
static const char *const SRC = FIX "/mlx-dense-4bit";
#define Q0 "language_model.model.layers.0.self_attn.q_proj"

/* Rewrite the fixture's safetensors into tmpdir with one tensor dropped or relabelled (contiguous offsets). */
static void write_st(const fixture_tensor_edit *ed) {
    char src[512], dst[512];
    snprintf(src, sizeof src, "%s/model.safetensors", SRC);
    snprintf(dst, sizeof dst, "%s/model.safetensors", tmpdir);
    fixture_write_st(src, dst, ed);
}

/* The fixture's config.json with quantization (and quantization_config) replaced by q (NULL: removed). */
static void write_config(const char *q_json) {
    cJSON *cfg;
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", SRC);
    CHECK(g4c_json_read_file(&cfg, p, NULL) == G4C_OK);
    cJSON_DeleteItemFromObject(cfg, "quantization");
    cJSON_DeleteItemFromObject(cfg, "quantization_config");
    if (q_json) cJSON_AddItemToObject(cfg, "quantization", cJSON_Parse(q_json));
    char *js = cJSON_Print(cfg);
    snprintf(p, sizeof p, "%s/config.json", tmpdir);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(js, f);
        fclose(f);
    }
    free(js);
    cJSON_Delete(cfg);
}

#define QDEF "{\"group_size\": 64, \"bits\": 4, \"mode\": \"affine\"}"

static void expect(g4c_status code, const char *needle1, const char *needle2) {
    fixture_expect_load_error(tmpdir, code, needle1, needle2);
}

static void test_malformed(void) {
    CHECK(access(FIX "/mlx-dense-4bit/model.safetensors", R_OK) == 0);
    if (access(FIX "/mlx-dense-4bit/model.safetensors", R_OK) != 0) return;
    strcpy(tmpdir, "/tmp/g4c_mlx_XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
    /* the unmodified copy loads */
    write_config(QDEF);
    write_st(NULL);
    g4c_model *m = load(tmpdir);
    CHECK(m != NULL);
    g4c_model_free(m);

    fixture_tensor_edit ed = {.name = Q0 ".scales", .drop = 1};
    write_st(&ed);
    expect(G4C_E_CONFIG, Q0 ".scales is missing", "which need");
    ed = (fixture_tensor_edit){.name = Q0 ".biases", .drop = 1};
    write_st(&ed);
    expect(G4C_E_CONFIG, Q0 ".biases is missing", NULL);
    /* q_proj is [128, 64]: scales [128, 1] */
    ed = (fixture_tensor_edit){.name = Q0 ".scales", .ndim = 2, .shape = {1, 128}};
    write_st(&ed);
    expect(G4C_E_CONFIG, Q0 ".scales", "[128, 1]");
    ed = (fixture_tensor_edit){.name = Q0 ".scales", .dtype = "U32"};
    write_st(&ed);
    expect(G4C_E_CONFIG, Q0 ".scales", "F32, F16 or BF16");
    /* codes [128, 8] relabelled [64, 16]: same bytes, wrong shape */
    ed = (fixture_tensor_edit){.name = Q0 ".weight", .ndim = 2, .shape = {64, 16}};
    write_st(&ed);
    expect(G4C_E_CONFIG, Q0 ".weight", "[128, 8] U32");
    /* a norm weight that is not a float vector */
    ed = (fixture_tensor_edit){.name = "language_model.model.norm.weight", .dtype = "U32"};
    write_st(&ed);
    expect(G4C_E_CONFIG, "norm.weight", "dtype U32");
    write_st(NULL);

    /* config side */
    write_config(NULL);
    expect(G4C_E_CONFIG, "embed_tokens.weight", "no \"quantization\" block");
    write_config("{\"group_size\": 64, \"bits\": 7}");
    expect(G4C_E_UNSUPPORTED, "bits 7", NULL);
    write_config("{\"group_size\": 64, \"bits\": 4, \"" Q0 "\": {\"group_size\": 64, \"bits\": 1}}");
    expect(G4C_E_UNSUPPORTED, Q0, "bits 1");
    write_config("{\"group_size\": 64, \"bits\": 4, \"mode\": \"mxfp4\"}");
    expect(G4C_E_UNSUPPORTED, "mxfp4", NULL);
    write_config("{\"quant_method\": \"gptq\", \"bits\": 4}");
    expect(G4C_E_UNSUPPORTED, "gptq", NULL);
    write_config("{\"group_size\": 48, \"bits\": 4}");
    expect(G4C_E_CONFIG, "group_size 48 does not divide its 64 columns", NULL);
    /* codes of 4 bits read as 8: [512, 8] where 8-bit codes need [512, 16] */
    write_config("{\"group_size\": 64, \"bits\": 8}");
    expect(G4C_E_CONFIG, "embed_tokens.weight", "8-bit MLX codes [512, 16]");
    write_config("{\"group_size\": 64, \"bits\": 4, \"" Q0 "\": {\"group_size\": 32, \"bits\": 4}}");
    expect(G4C_E_CONFIG, Q0 ".scales", "[128, 2]");
    write_config("{\"group_size\": 64, \"bits\": 4, \"" Q0 "\": false}");
    expect(G4C_E_CONFIG, Q0, "unquantized");
    /* mlx-vlm's second copy alone is read too */
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", tmpdir);
    write_config(NULL);
    {
        cJSON *cfg;
        CHECK(g4c_json_read_file(&cfg, p, NULL) == G4C_OK);
        cJSON_AddItemToObject(cfg, "quantization_config", cJSON_Parse(QDEF));
        char *js = cJSON_Print(cfg);
        FILE *f = fopen(p, "w");
        if (f) fputs(js, f), fclose(f);
        free(js);
        cJSON_Delete(cfg);
        m = load(tmpdir);
        CHECK(m != NULL && m->cfg.quant.present && m->cfg.quant.bits == 4);
        g4c_model_free(m);
    }
    remove(p);
    snprintf(p, sizeof p, "%s/model.safetensors", tmpdir);
    remove(p);
    rmdir(tmpdir);
}

/* The quantization block as parsed: defaults and per-module overrides. */
static void test_config_block(void) {
    g4c_config c;
    CHECK(g4c_config_load(&c, FIX "/mlx-moe-8bit/config.json", NULL) == G4C_OK);
    CHECK(c.quant.present && c.quant.group == 32 && c.quant.bits == 8 && c.quant.n_entries == c.n_layer);
    int g = 0, b = 0;
    g4c_quant_lookup(&c.quant, "language_model.model.layers.2.router.proj", &g, &b);
    CHECK(g == 64 && b == 8);
    g4c_quant_lookup(&c.quant, "language_model.model.layers.2.mlp.gate_proj", &g, &b);
    CHECK(g == 32 && b == 8);
    g4c_config_free(&c);
    CHECK(g4c_config_load(&c, FIX "/dense-f32/config.json", NULL) == G4C_OK);
    CHECK(!c.quant.present);
    g4c_config_free(&c);
}

int main(void) {
    RUN(test_dequant_hand_packed);
    RUN(test_dequant_random_widths);
    RUN(test_config_block);
    RUN(test_mlx_dense_4bit);
    RUN(test_mlx_moe_4bit);
    RUN(test_mlx_e_4bit);
    RUN(test_mlx_moe_8bit);
    RUN(test_mixed_layouts);
    RUN(test_vision);
    RUN(test_malformed);
    return TEST_REPORT();
}
