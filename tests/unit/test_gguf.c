/* GGUF files (formats/gguf.c, gguf_writer.c; tokenizer/tok_gguf.c):
 *   - a hand-built file parses, and every field corrupted in turn (magic, version, counts, lengths, types, alignment,
 *     dims, offsets: misaligned / overlapping / out of bounds, duplicates, nesting) fails with a message, as does
 *     every truncated prefix (no crash: run under ASan/UBSan);
 *   - writer -> reader round trip: every metadata type, nested arrays copied, tensors of every type byte-identical;
 *   - the tokenizer written as GGUF metadata loads back equal (a small vocabulary; with G4C_TOKENIZER_JSON the real
 *     one, on every string of the tokenizer corpus).
 * The fixtures as GGUF (quantize, config, logits, mmproj): test_gguf_model.c. */
#include "fixture.h"
#include "tokenizer/tokenizer.h"

#define FIX G4C_FIXTURES

/* ---- a byte builder for hand-made files -------------------------------------------------------------------------- */

typedef struct { uint8_t p[4096]; size_t n; } bb;
static size_t b_put(bb *b, const void *d, size_t n) {
    size_t at = b->n;
    memcpy(b->p + b->n, d, n);
    b->n += n;
    return at;
}
static size_t b_u32(bb *b, uint32_t v) { uint8_t t[4]; for (int i = 0; i < 4; i++) t[i] = (uint8_t)(v >> 8 * i); return b_put(b, t, 4); }
static size_t b_u64(bb *b, uint64_t v) { uint8_t t[8]; for (int i = 0; i < 8; i++) t[i] = (uint8_t)(v >> 8 * i); return b_put(b, t, 8); }
static size_t b_str(bb *b, const char *s) { size_t at = b_u64(b, strlen(s)); b_put(b, s, strlen(s)); return at; }
static void set_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static void set_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i); }

/* Offsets of the fields the corruption tests change. */
typedef struct {
    size_t version, n_t, n_kv, key0_len, type0, arr_type, arr_n, strarr_len0, nested_n, bool_val, align_val;
    size_t t0_ndims, t0_dim0, t0_dim1, t0_type, t0_name, t1_dim0, t1_off, data, end_min;
} layout;

/* GGUF v3: 7 metadata entries (string, u32 alignment, i32 array, string array, array of u8 arrays, bool, f32) and two
 * tensors: t0 F32 [2][4] at 0, t1 Q8_0 [32] at 32. */
static void canonical(bb *b, layout *L) {
    b->n = 0;
    b_put(b, "GGUF", 4);
    L->version = b_u32(b, 3);
    L->n_t = b_u64(b, 2);
    L->n_kv = b_u64(b, 7);
    L->key0_len = b_str(b, "general.architecture");
    L->type0 = b_u32(b, G4C_GGUF_STR);
    b_str(b, "test");
    b_str(b, "general.alignment");
    b_u32(b, G4C_GGUF_U32);
    L->align_val = b_u32(b, 32);
    b_str(b, "a.ints");
    b_u32(b, G4C_GGUF_ARR);
    L->arr_type = b_u32(b, G4C_GGUF_I32);
    L->arr_n = b_u64(b, 3);
    b_u32(b, 1), b_u32(b, (uint32_t)-2), b_u32(b, 3);
    b_str(b, "a.strs");
    b_u32(b, G4C_GGUF_ARR);
    b_u32(b, G4C_GGUF_STR);
    b_u64(b, 2);
    L->strarr_len0 = b_str(b, "x");
    b_str(b, "yz");
    b_str(b, "a.nested");
    b_u32(b, G4C_GGUF_ARR);
    b_u32(b, G4C_GGUF_ARR);
    L->nested_n = b_u64(b, 2);
    b_u32(b, G4C_GGUF_U8), b_u64(b, 2), b_put(b, "\x01\x02", 2);
    b_u32(b, G4C_GGUF_U8), b_u64(b, 1), b_put(b, "\x03", 1);
    b_str(b, "a.bool");
    b_u32(b, G4C_GGUF_BOOL);
    L->bool_val = b_put(b, "\x01", 1);
    b_str(b, "a.real");
    b_u32(b, G4C_GGUF_F32);
    float f = 0.5f;
    b_put(b, &f, 4);
    L->t0_name = b_str(b, "t0");
    L->t0_ndims = b_u32(b, 2);
    L->t0_dim0 = b_u64(b, 4);
    L->t0_dim1 = b_u64(b, 2);
    L->t0_type = b_u32(b, 0);
    b_u64(b, 0);
    b_str(b, "t1");
    b_u32(b, 1);
    L->t1_dim0 = b_u64(b, 32);
    b_u32(b, 8);
    L->t1_off = b_u64(b, 32);
    while (b->n % 32) b_put(b, "\0", 1);
    L->data = b->n;
    for (int i = 0; i < 96; i++) b_put(b, (uint8_t[]){(uint8_t)i}, 1);
    L->end_min = L->data + 32 + 34; /* the last tensor's padding may be missing */
}

static g4c_status parse(const bb *b, size_t n, g4c_err *err) {
    g4c_gguf *g = NULL;
    g4c_status st = g4c_gguf_parse_buffer(&g, b->p, n, "test.gguf", err);
    g4c_gguf_free(g);
    return st;
}

static void test_canonical_parses(void) {
    bb b;
    layout L;
    canonical(&b, &L);
    g4c_gguf *g = NULL;
    g4c_err err = {0};
    CHECKF(g4c_gguf_parse_buffer(&g, b.p, b.n, "test.gguf", &err) == G4C_OK, "%s", err.msg);
    if (!g) return;
    CHECK(g->version == 3 && g->n_kv == 7 && g->ts->n_tensors == 2 && g->data_offset == L.data);
    const char *s;
    size_t n;
    CHECK(g4c_gguf_get_str(g, "general.architecture", &s, &n, NULL, &err) == G4C_OK && n == 4 && !memcmp(s, "test", 4));
    int64_t ints[3];
    CHECK(g4c_gguf_get_ints(g, "a.ints", -10, 10, ints, 3, NULL, &err) == G4C_OK && ints[1] == -2);
    CHECK(g4c_gguf_get_ints(g, "a.ints", 0, 10, ints, 3, NULL, &err) == G4C_E_FORMAT && strstr(err.msg, "a.ints[1]"));
    CHECK(g4c_gguf_get_ints(g, "a.ints", -10, 10, ints, 2, NULL, &err) == G4C_E_FORMAT);
    const g4c_gguf_kv *kv;
    CHECK(g4c_gguf_get_arr(g, "a.strs", G4C_GGUF_STR, &kv, NULL, &err) == G4C_OK);
    size_t pos = 0;
    CHECK(g4c_gguf_arr_str_next(kv, &pos, &s, &n) && n == 1 && s[0] == 'x');
    CHECK(g4c_gguf_arr_str_next(kv, &pos, &s, &n) && n == 2 && !memcmp(s, "yz", 2));
    CHECK(!g4c_gguf_arr_str_next(kv, &pos, &s, &n));
    kv = g4c_gguf_find(g, "a.nested");
    CHECK(kv && kv->type == G4C_GGUF_ARR && kv->arr_type == G4C_GGUF_ARR && kv->n == 2);
    int bv = 0, found = 1;
    double r = 0;
    CHECK(g4c_gguf_get_bool(g, "a.bool", &bv, NULL, &err) == G4C_OK && bv == 1);
    CHECK(g4c_gguf_get_real(g, "a.real", &r, NULL, &err) == G4C_OK && r == 0.5);
    /* typed getters name the key on a type mismatch or absence */
    int64_t iv;
    CHECK(g4c_gguf_get_int(g, "a.real", 0, 9, &iv, NULL, &err) == G4C_E_FORMAT && strstr(err.msg, "a.real"));
    CHECK(g4c_gguf_get_int(g, "no.such", 0, 9, &iv, &found, &err) == G4C_OK && !found);
    CHECK(g4c_gguf_get_int(g, "no.such", 0, 9, &iv, NULL, &err) == G4C_E_FORMAT && strstr(err.msg, "no.such"));
    CHECK(g4c_gguf_get_str(g, "a.bool", &s, &n, NULL, &err) == G4C_E_FORMAT && strstr(err.msg, "a.bool"));
    const g4c_st_tensor *t0 = g4c_st_find(g->ts, "t0"), *t1 = g4c_st_find(g->ts, "t1");
    CHECK(t0 && t0->ndim == 2 && t0->shape[0] == 2 && t0->shape[1] == 4 && t0->dtype == G4C_DTYPE_F32 &&
          t0->data == b.p + L.data && t0->size_bytes == 32);
    CHECK(t1 && t1->dtype == G4C_DTYPE_Q8_0 && t1->data == b.p + L.data + 32 && t1->size_bytes == 34);
    g4c_gguf_free(g);
}

typedef struct { size_t at; int width; uint64_t v; g4c_status want; const char *needle; } corruption;

static void test_corruptions(void) {
    bb b;
    layout L;
    canonical(&b, &L);
    const corruption C[] = {
        {0, 4, 0x58554747u, G4C_E_FORMAT, "magic"},                 /* "GGUX" */
        {L.version, 4, 1, G4C_E_UNSUPPORTED, "version 1"},
        {L.version, 4, 4, G4C_E_UNSUPPORTED, "version 4"},
        {L.version, 4, 0x03000000u, G4C_E_UNSUPPORTED, "big-endian"},
        {L.n_t, 8, 1ull << 60, G4C_E_FORMAT, "tensors"},
        {L.n_kv, 8, 1ull << 60, G4C_E_FORMAT, "metadata"},
        {L.n_kv, 8, 8, G4C_E_FORMAT, NULL},                           /* one more entry than there is */
        {L.key0_len, 8, 1ull << 62, G4C_E_FORMAT, "string length"},
        {L.key0_len, 8, 0, G4C_E_FORMAT, "empty key"},
        {L.type0, 4, 13, G4C_E_FORMAT, "not a GGUF type"},
        {L.arr_type, 4, 99, G4C_E_FORMAT, "a.ints"},
        {L.arr_n, 8, 1ull << 40, G4C_E_FORMAT, "a.ints"},
        {L.strarr_len0, 8, 1ull << 50, G4C_E_FORMAT, "a.strs"},
        {L.nested_n, 8, 1ull << 40, G4C_E_FORMAT, "a.nested"},
        {L.bool_val, 1, 2, G4C_E_FORMAT, "a.bool"},
        {L.align_val, 4, 3, G4C_E_FORMAT, "power of two"},
        {L.align_val, 4, 0, G4C_E_FORMAT, "power of two"},
        {L.t0_ndims, 4, 5, G4C_E_FORMAT, "dimensions"},
        {L.t0_dim0, 8, 1ull << 63, G4C_E_FORMAT, "overflows"},
        {L.t0_dim0, 8, 1ull << 33, G4C_E_FORMAT, NULL},              /* 2^34 elements: past the data */
        {L.t0_type, 4, 99, G4C_E_FORMAT, "not a ggml type"},
        {L.t0_type, 4, 23, G4C_E_UNSUPPORTED, "IQ4_XS"},
        {L.t1_dim0, 8, 31, G4C_E_FORMAT, "block"},
        {L.t1_off, 8, 8, G4C_E_FORMAT, "alignment"},
        {L.t1_off, 8, 0, G4C_E_FORMAT, "overlap"},
        {L.t1_off, 8, 64, G4C_E_FORMAT, "outside"},
        {L.t1_off, 8, (uint64_t)-32, G4C_E_FORMAT, "outside"},
        {L.t0_name + 9, 1, '1', G4C_E_FORMAT, "twice"},            /* t0 renamed t1 */
    };
    for (size_t i = 0; i < sizeof C / sizeof *C; i++) {
        bb c = b;
        if (C[i].width == 8) set_u64(c.p + C[i].at, C[i].v);
        else if (C[i].width == 4) set_u32(c.p + C[i].at, (uint32_t)C[i].v);
        else c.p[C[i].at] = (uint8_t)C[i].v;
        g4c_err err = {0};
        g4c_status st = parse(&c, c.n, &err);
        CHECKF(st == C[i].want && err.msg[0] && strstr(err.msg, "test.gguf") &&
                   (!C[i].needle || strstr(err.msg, C[i].needle)),
               "case %zu: status %d, message \"%s\"", i, st, err.msg);
    }
}

/* Hand-built files for duplicate keys, deep nesting and a wrongly typed alignment. */
static void test_more_corruptions(void) {
    bb b = {0};
    g4c_err err = {0};
    b_put(&b, "GGUF", 4), b_u32(&b, 3), b_u64(&b, 0), b_u64(&b, 2);
    b_str(&b, "k.dup"), b_u32(&b, G4C_GGUF_U8), b_put(&b, "\x01", 1);
    b_str(&b, "k.dup"), b_u32(&b, G4C_GGUF_U8), b_put(&b, "\x02", 1);
    CHECKF(parse(&b, b.n, &err) == G4C_E_FORMAT && strstr(err.msg, "k.dup") && strstr(err.msg, "twice"), "%s", err.msg);
    b.n = 0; /* arrays nested deeper than G4C_GGUF_MAX_DEPTH */
    b_put(&b, "GGUF", 4), b_u32(&b, 3), b_u64(&b, 0), b_u64(&b, 1);
    b_str(&b, "deep"), b_u32(&b, G4C_GGUF_ARR);
    for (int d = 0; d < 6; d++) b_u32(&b, G4C_GGUF_ARR), b_u64(&b, 1);
    b_u32(&b, G4C_GGUF_U8), b_u64(&b, 0);
    CHECKF(parse(&b, b.n, &err) == G4C_E_FORMAT && strstr(err.msg, "nested"), "%s", err.msg);
    b.n = 0;
    b_put(&b, "GGUF", 4), b_u32(&b, 3), b_u64(&b, 0), b_u64(&b, 1);
    b_str(&b, "general.alignment"), b_u32(&b, G4C_GGUF_U64), b_u64(&b, 32);
    CHECKF(parse(&b, b.n, &err) == G4C_E_FORMAT && strstr(err.msg, "u32"), "%s", err.msg);
    b.n = 0; /* empty file of metadata only: valid */
    b_put(&b, "GGUF", 4), b_u32(&b, 2), b_u64(&b, 0), b_u64(&b, 0);
    CHECKF(parse(&b, b.n, &err) == G4C_OK, "%s", err.msg);
}

static void test_truncations(void) {
    bb b;
    layout L;
    canonical(&b, &L);
    int bad = 0;
    for (size_t k = 0; k < b.n; k++) {
        g4c_err err = {0};
        g4c_status st = parse(&b, k, &err);
        if (k < L.end_min && (st == G4C_OK || !err.msg[0])) bad++;
        if (k >= L.end_min && st != G4C_OK) bad++;
    }
    CHECKF(!bad, "%d prefixes misjudged", bad);
}

static char tmpdir[256];

static void test_open_file(void) {
    bb b;
    layout L;
    canonical(&b, &L);
    char path[512];
    snprintf(path, sizeof path, "%s/canon.gguf", tmpdir);
    FILE *f = fopen(path, "wb");
    fwrite(b.p, 1, b.n, f);
    fclose(f);
    g4c_gguf *g = NULL;
    g4c_err err = {0};
    CHECKF(g4c_gguf_open(&g, path, &err) == G4C_OK, "%s", err.msg);
    CHECK(g && g->ts->n_files == 1 && g4c_st_find(g->ts, "t1"));
    g4c_gguf_free(g);
    f = fopen(path, "wb");
    fwrite(b.p, 1, 10, f);
    fclose(f);
    CHECK(g4c_gguf_open(&g, path, &err) == G4C_E_FORMAT && strstr(err.msg, path));
    CHECK(g4c_gguf_open(&g, "/nonexistent/x.gguf", &err) == G4C_E_IO);
}

/* ---- writer -> reader -------------------------------------------------------------------------------------------- */

static void test_writer_round_trip(void) {
    bb cb;
    layout L;
    canonical(&cb, &L);
    g4c_gguf *src = NULL, *g = NULL;
    g4c_err err = {0};
    CHECK(g4c_gguf_parse_buffer(&src, cb.p, cb.n, "canon", &err) == G4C_OK);
    g4c_gguf_writer *w;
    CHECK(g4c_ggw_new(&w, &err) == G4C_OK);
    const int32_t ints[4] = {-1, 0, 7, INT32_MAX};
    const double dbl[2] = {0.25, -1e300};
    const uint8_t bools[3] = {1, 0, 1};
    const char *strs[3] = {"", "▁hello", "a\"b\\c\n"};
    g4c_status st = G4C_OK;
#define T(call) if (st == G4C_OK) st = (call)
    T(g4c_ggw_kv_u32(w, "k.u32", 4000000000u, &err));
    T(g4c_ggw_kv_i32(w, "k.i32", -5, &err));
    T(g4c_ggw_kv_f32(w, "k.f32", 1.5f, &err));
    T(g4c_ggw_kv_bool(w, "k.bool", 1, &err));
    T(g4c_ggw_kv_str(w, "k.str", "x\0y", 3, &err));
    T(g4c_ggw_kv_u32(w, "k.later", 1, &err));
    T(g4c_ggw_kv_arr(w, "k.ints", G4C_GGUF_I32, ints, 4, &err));
    T(g4c_ggw_kv_arr(w, "k.f64", G4C_GGUF_F64, dbl, 2, &err));
    T(g4c_ggw_kv_arr(w, "k.bools", G4C_GGUF_BOOL, bools, 3, &err));
    T(g4c_ggw_kv_arr_str(w, "k.strs", strs, NULL, 3, &err));
    T(g4c_ggw_kv_arr(w, "k.empty", G4C_GGUF_U8, NULL, 0, &err));
    T(g4c_ggw_kv_copy(w, g4c_gguf_find(src, "a.nested"), &err));
    T(g4c_ggw_kv_copy(w, g4c_gguf_find(src, "a.strs"), &err));
    T(g4c_ggw_kv_u32(w, "k.later", 2, &err)); /* overwritten in place */
    CHECKF(st == G4C_OK, "%s", err.msg);
    CHECK(g4c_ggw_kv_u32(w, "general.alignment", 64, &err) == G4C_E_ARG);
    /* one tensor of every type, random bytes */
    uint64_t seed = 3;
    uint8_t *blob[G4C_DTYPE_COUNT] = {0};
    int nt = 0;
    for (int d = 0; d < G4C_DTYPE_COUNT; d++) {
        if (g4c_dtype_infos[d].ggml_type < 0) continue;
        const int64_t shape[3] = {2, 3, 2 * g4c_dtype_infos[d].block};
        char name[32];
        snprintf(name, sizeof name, "t.%s", g4c_dtype_infos[d].name);
        T(g4c_ggw_add_tensor(w, name, (g4c_dtype)d, 3, shape, &err));
        const size_t n = g4c_dtype_bytes((g4c_dtype)d, 12 * g4c_dtype_infos[d].block);
        blob[d] = malloc(n);
        for (size_t i = 0; i < n; i++) blob[d][i] = (uint8_t)test_rng_u64(&seed);
        nt++;
    }
    const int64_t scal[1] = {0};
    T(g4c_ggw_add_tensor(w, "t.scalar", G4C_DTYPE_F32, 0, scal, &err));
    T(g4c_ggw_add_tensor(w, "t.empty", G4C_DTYPE_F16, 1, scal, &err));
    CHECKF(st == G4C_OK, "%s", err.msg);
    const int64_t bad[1] = {31};
    CHECK(g4c_ggw_add_tensor(w, "t.bad", G4C_DTYPE_Q4_0, 1, bad, &err) == G4C_E_ARG && strstr(err.msg, "block"));
    CHECK(g4c_ggw_add_tensor(w, "t.F32", G4C_DTYPE_F32, 1, bad, &err) == G4C_E_ARG && strstr(err.msg, "twice"));
    char path[512];
    snprintf(path, sizeof path, "%s/rt.gguf", tmpdir);
    T(g4c_ggw_open(w, path, 64, &err));
    for (int d = 0; d < G4C_DTYPE_COUNT; d++) /* in odd-sized chunks */
        if (blob[d]) {
            const size_t n = g4c_dtype_bytes((g4c_dtype)d, 12 * g4c_dtype_infos[d].block);
            for (size_t at = 0; at < n && st == G4C_OK; at += 7) T(g4c_ggw_write(w, blob[d] + at, n - at < 7 ? n - at : 7, &err));
        }
    const float one = 1.0f;
    T(g4c_ggw_write(w, &one, 4, &err));
    CHECKF(st == G4C_OK, "%s", err.msg);
    CHECK(g4c_ggw_write(w, &one, 1, &err) == G4C_E_ARG); /* past the last tensor */
    T(g4c_ggw_finish(w, &err));
    CHECKF(st == G4C_OK, "%s", err.msg);
    g4c_ggw_free(w);
#undef T
    CHECK(access(path, F_OK) == 0);
    CHECKF(g4c_gguf_open(&g, path, &err) == G4C_OK, "%s", err.msg);
    if (g) {
        int64_t v = 0;
        double r = 0;
        int b = 0;
        const char *s;
        size_t n;
        CHECK(g->alignment == 64 && g->version == 3);
        CHECK(g4c_gguf_get_int(g, "k.u32", 0, INT64_MAX, &v, NULL, &err) == G4C_OK && v == 4000000000LL);
        CHECK(g4c_gguf_get_int(g, "k.i32", -9, 9, &v, NULL, &err) == G4C_OK && v == -5);
        CHECK(g4c_gguf_get_int(g, "k.later", 0, 9, &v, NULL, &err) == G4C_OK && v == 2);
        CHECK(g4c_gguf_get_real(g, "k.f32", &r, NULL, &err) == G4C_OK && r == 1.5);
        CHECK(g4c_gguf_get_bool(g, "k.bool", &b, NULL, &err) == G4C_OK && b == 1);
        CHECK(g4c_gguf_get_str(g, "k.str", &s, &n, NULL, &err) == G4C_OK && n == 3 && !memcmp(s, "x\0y", 3));
        const g4c_gguf_kv *kv = g4c_gguf_find(g, "k.ints");
        CHECK(kv && kv->n == 4 && g4c_gguf_arr_int(kv, 0) == -1 && g4c_gguf_arr_int(kv, 3) == INT32_MAX);
        kv = g4c_gguf_find(g, "k.f64");
        CHECK(kv && kv->arr_type == G4C_GGUF_F64 && g4c_gguf_arr_real(kv, 1) == -1e300);
        int bl[3];
        CHECK(g4c_gguf_get_bools(g, "k.bools", bl, 3, NULL, &err) == G4C_OK && bl[0] && !bl[1] && bl[2]);
        kv = g4c_gguf_find(g, "k.strs");
        size_t pos = 0;
        int ok = kv != NULL;
        for (int i = 0; ok && i < 3; i++) ok = g4c_gguf_arr_str_next(kv, &pos, &s, &n) && n == strlen(strs[i]) && !memcmp(s, strs[i], n);
        CHECK(ok);
        CHECK((kv = g4c_gguf_find(g, "k.empty")) && kv->n == 0);
        const g4c_gguf_kv *a = g4c_gguf_find(g, "a.nested"), *o = g4c_gguf_find(src, "a.nested");
        CHECK(a && o && a->size == o->size && !memcmp(a->data, o->data, a->size) && a->n == 2);
        CHECK(g->ts->n_tensors == nt + 2);
        for (int d = 0; d < G4C_DTYPE_COUNT; d++)
            if (blob[d]) {
                char name[32];
                snprintf(name, sizeof name, "t.%s", g4c_dtype_infos[d].name);
                const g4c_st_tensor *t = g4c_st_find(g->ts, name);
                const size_t nb = g4c_dtype_bytes((g4c_dtype)d, 12 * g4c_dtype_infos[d].block);
                CHECKF(t && (int)t->dtype == d && t->ndim == 3 && t->shape[0] == 2 && t->shape[1] == 3 &&
                           t->shape[2] == 2 * g4c_dtype_infos[d].block && t->size_bytes == nb &&
                           !memcmp(t->data, blob[d], nb) && ((const uint8_t *)t->data - g->base - g->data_offset) % 64 == 0,
                       "%s", name);
            }
        const g4c_st_tensor *sc = g4c_st_find(g->ts, "t.scalar");
        CHECK(sc && sc->ndim == 0 && !memcmp(sc->data, &one, 4));
        CHECK(g4c_st_find(g->ts, "t.empty") && g4c_st_find(g->ts, "t.empty")->size_bytes == 0);
        g4c_gguf_free(g);
    }
    for (int d = 0; d < G4C_DTYPE_COUNT; d++) free(blob[d]);
    g4c_gguf_free(src);
    /* an unfinished writer leaves nothing behind */
    snprintf(path, sizeof path, "%s/partial.gguf", tmpdir);
    CHECK(g4c_ggw_new(&w, &err) == G4C_OK);
    const int64_t sh[1] = {4};
    CHECK(g4c_ggw_add_tensor(w, "x", G4C_DTYPE_F32, 1, sh, &err) == G4C_OK && g4c_ggw_open(w, path, 0, &err) == G4C_OK);
    CHECK(g4c_ggw_finish(w, &err) == G4C_E_ARG && strstr(err.msg, "incomplete"));
    g4c_ggw_free(w);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0 && access(path, F_OK) != 0);
}

/* ---- tokenizer ---------------------------------------------------------------------------------------------------- */


/* Write t's metadata to a GGUF, load it back, and compare pieces, specials and a few encodings and decodings.
 * Returns the tokenizer loaded from the GGUF (or NULL). */
static g4c_tokenizer *tok_round_trip(g4c_tokenizer *t, const char *const *texts, int n_texts, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    g4c_gguf_writer *w = NULL;
    g4c_err err = {0};
    g4c_status st = g4c_ggw_new(&w, &err);
    if (st == G4C_OK) st = g4c_tok_write_gguf(t, w, 0, &err);
    if (st == G4C_OK) st = g4c_ggw_open(w, path, 0, &err);
    if (st == G4C_OK) st = g4c_ggw_finish(w, &err);
    g4c_ggw_free(w);
    CHECKF(st == G4C_OK, "%s", err.msg);
    g4c_tokenizer *u = NULL;
    CHECKF(g4c_tok_load_gguf(&u, path, &err) == G4C_OK, "%s", err.msg);
    if (!u) return NULL;
    const int n = g4c_tok_n_vocab(t);
    CHECK(g4c_tok_n_vocab(u) == n);
    int bad = 0;
    for (int32_t id = 0; id < n && bad < 5; id++)
        if (strcmp(g4c_tok_piece(t, id), g4c_tok_piece(u, id)) || g4c_tok_is_special(t, id) != g4c_tok_is_special(u, id)) {
            fprintf(stderr, "  id %d: \"%s\"/%d vs \"%s\"/%d\n", (int)id, g4c_tok_piece(t, id), g4c_tok_is_special(t, id),
                    g4c_tok_piece(u, id), g4c_tok_is_special(u, id));
            bad++;
        }
    CHECK(!bad);
    for (int i = 0; i < n_texts; i++)
        for (int sp = 0; sp < 2; sp++) {
            int32_t a[512], b[512];
            const int na = g4c_tok_encode(t, texts[i], strlen(texts[i]), sp, a, 512, &err);
            const int nb = g4c_tok_encode(u, texts[i], strlen(texts[i]), sp, b, 512, &err);
            CHECKF(na == nb && na >= 0 && na <= 512 && !memcmp(a, b, sizeof(int32_t) * (size_t)na), "\"%s\" special %d",
                   texts[i], sp);
            char da[2048], db[2048];
            if (na > 0 && na <= 512) {
                g4c_tok_decode(t, a, na, da, sizeof da);
                g4c_tok_decode(u, a, na, db, sizeof db);
                CHECK(!strcmp(da, db));
            }
        }
    return u;
}

static void test_tokenizer_gguf(void) {
    /* a small Gemma-style BPE: specials, bytes, pieces with ▁, merges, a non-special added token */
    char json[32768];
    int n = snprintf(json, sizeof json, "{\"added_tokens\":[{\"id\":0,\"content\":\"<pad>\",\"special\":true},"
                     "{\"id\":1,\"content\":\"<eos>\",\"special\":true},{\"id\":2,\"content\":\"<bos>\",\"special\":true},"
                     "{\"id\":3,\"content\":\"<unk>\",\"special\":true},{\"id\":4,\"content\":\"<|turn>\",\"special\":true},"
                     "{\"id\":5,\"content\":\"<unused0>\",\"special\":false},"
                     "{\"id\":6,\"content\":\"<|channel>\",\"special\":true}],"
                     "\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xe2\x96\x81\"},"
                     "\"pre_tokenizer\":null,\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"fuse_unk\":true,"
                     "\"byte_fallback\":true,\"vocab\":{\"<pad>\":0,\"<eos>\":1,\"<bos>\":2,\"<unk>\":3,\"<|turn>\":4,"
                     "\"<unused0>\":5,\"<|channel>\":6");
    for (int i = 0; i < 256; i++) n += snprintf(json + n, sizeof json - (size_t)n, ",\"<0x%02X>\":%d", i, 7 + i);
    static const char *const P[] = {"\xe2\x96\x81", "h", "e", "l", "o", "w", "r", "d", "he", "ll", "hell", "hello",
                                    "\xe2\x96\x81hello", "\xe2\x96\x81w", "or", "\xe2\x96\x81wor", "\xe2\x96\x81world", "ld"};
    for (size_t i = 0; i < sizeof P / sizeof *P; i++) n += snprintf(json + n, sizeof json - (size_t)n, ",\"%s\":%d", P[i], 263 + (int)i);
    n += snprintf(json + n, sizeof json - (size_t)n, "},\"merges\":[\"h e\",\"l l\",\"he ll\",\"hell o\",\"\xe2\x96\x81 hello\","
                  "\"\xe2\x96\x81 w\",\"o r\",\"\xe2\x96\x81w or\",\"\xe2\x96\x81wor ld\",\"l d\"]}}");
    g4c_tokenizer *t = NULL;
    g4c_err err = {0};
    CHECKF(g4c_tok_load_buffer(&t, json, (size_t)n, "mini", &err) == G4C_OK, "%s", err.msg);
    if (!t) return;
    static const char *const texts[] = {"hello hello world", "<|turn>hello<unused0> wor<eos>", "h\xc3\xa9llo \xf0\x9f\x98\x80",
                                        "", "  he  ll  o ", "<|channel>x"};
    g4c_tok_free(tok_round_trip(t, texts, 6, "tok-mini.gguf"));
    g4c_tok_free(t);
    /* the real Gemma vocabulary, when available (G4C_TOKENIZER_JSON=$(sh scripts/fetch-tokenizer.sh)) */
    const char *real = getenv("G4C_TOKENIZER_JSON");
    if (real && *real && g4c_tok_load(&t, real, &err) == G4C_OK) {
        g4c_tok_apply_gemma4_specials(t, &err);
        static const char *const rt[] = {"Hello, world! How are you?", "  hello\n\n\tworld", "<|turn>user\nHi<turn|>\n",
                                         "Zażółć gęślą jaźń 日本語 🎉", "def f(x):\n    return x ** 2\n", "12345 <|image|>"};
        g4c_tokenizer *u = tok_round_trip(t, rt, 6, "tok-real.gguf");
        /* every string of the tokenizer corpus (which tokenizer.json gets right: test_tok_corpus) encodes alike */
        char *buf = NULL;
        size_t len = 0;
        int n_lines = 0, bad = 0;
        if (u && g4c_read_file(FIX "/tokenizer/corpus.jsonl", (size_t)64 << 20, &buf, &len, &err) == G4C_OK) {
            int32_t *a = malloc(sizeof(int32_t) * 65536), *b = malloc(sizeof(int32_t) * 65536);
            for (char *line = buf, *nl; line < buf + len; line = nl + 1) {
                if (!(nl = strchr(line, '\n'))) nl = buf + len;
                cJSON *j = cJSON_ParseWithLength(line, (size_t)(nl - line));
                const cJSON *tx = cJSON_GetObjectItem(j, "text");
                if (cJSON_IsString(tx)) {
                    n_lines++;
                    for (int sp = 0; sp < 2; sp++) {
                        const size_t tl = strlen(tx->valuestring);
                        int na = g4c_tok_encode(t, tx->valuestring, tl, sp, a, 65536, &err);
                        int nb = g4c_tok_encode(u, tx->valuestring, tl, sp, b, 65536, &err);
                        bad += na != nb || na < 0 || na > 65536 || memcmp(a, b, sizeof(int32_t) * (size_t)na);
                    }
                }
                cJSON_Delete(j);
            }
            free(a);
            free(b);
            free(buf);
        }
        CHECKF(n_lines > 5000 && !bad, "%d of %d corpus strings encode differently", bad, n_lines);
        g4c_tok_free(u);
        g4c_tok_free(t);
        printf("     real Gemma vocabulary from GGUF: %d corpus strings encode as from tokenizer.json\n", n_lines);
    }
    /* a GGUF whose tokenizer is not gemma4's, or is missing */
    char path[512];
    snprintf(path, sizeof path, "%s/tok-bad.gguf", tmpdir);
    g4c_gguf_writer *w = NULL;
    g4c_ggw_new(&w, &err);
    g4c_ggw_kv_str(w, "tokenizer.ggml.model", "llama", 5, &err);
    g4c_ggw_open(w, path, 0, &err);
    g4c_ggw_finish(w, &err);
    g4c_ggw_free(w);
    CHECK(g4c_tok_load_gguf(&t, path, &err) == G4C_E_UNSUPPORTED && strstr(err.msg, "llama"));
    snprintf(path, sizeof path, "%s/rt.gguf", tmpdir);
    CHECK(g4c_tok_load_gguf(&t, path, &err) == G4C_E_FORMAT && strstr(err.msg, "tokenizer.ggml.model"));
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/g4c_gguf_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    RUN(test_canonical_parses);
    RUN(test_corruptions);
    RUN(test_more_corruptions);
    RUN(test_truncations);
    RUN(test_open_file);
    RUN(test_writer_round_trip);
    RUN(test_tokenizer_gguf);
    fixture_rm_rf(tmpdir);
    return TEST_REPORT();
}
