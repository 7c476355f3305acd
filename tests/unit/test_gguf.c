/* GGUF (formats/gguf.c, gguf_writer.c; model/gguf_model.c; runtime/gguf_quant.c; tokenizer/tok_gguf.c):
 *   - a hand-built file parses, and every field corrupted in turn (magic, version, counts, lengths, types, alignment,
 *     dims, offsets: misaligned / overlapping / out of bounds, duplicates, nesting) fails with a message, as does
 *     every truncated prefix (no crash: run under ASan/UBSan);
 *   - writer -> reader round trip: every metadata type, nested arrays copied, tensors of every type byte-identical;
 *   - the fixtures quantized by `quantize`: F32 GGUF logits equal the safetensors model's (<= 1e-6), the config read
 *     from metadata equals config.json's, llama.cpp's metadata rules hold, Q8_0 / Q4_0 logits stay within the bounds of
 *     docs/testing.md ("Quantized") against transformers' float32 logits (KL divergence, top-1 agreement), the
 *     mmproj's vision tower equals the safetensors one, requantizing a GGUF equals quantizing the checkpoint;
 *   - the tokenizer written as GGUF metadata loads back equal (a small vocabulary; the real one with
 *     G4C_TOKENIZER_JSON). */
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/formats.h"
#include "runtime/quantize.h"
#include "runtime/runtime.h"
#include "test.h"

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

/* ---- the fixtures as GGUF ---------------------------------------------------------------------------------------- */

static const char *const TAGS[3] = {"dense-f32", "moe-f32", "e-f32"};

typedef struct {
    int32_t prompt[256];
    int n;
    float *logits; /* transformers float32, [n][vocab] */
    int64_t vocab;
} ref_t;

static int load_ref(ref_t *r, const char *tag) {
    char path[512];
    snprintf(path, sizeof path, "%s/ref/%s.json", FIX, tag);
    cJSON *j;
    g4c_err err = {0};
    if (g4c_json_read_file(&j, path, &err) != G4C_OK) return 0;
    r->n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "prompt")) r->prompt[r->n++] = (int32_t)it->valuedouble;
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/ref/%s.logits.npy", FIX, tag);
    int nd;
    int64_t sh[4];
    if (g4c_npy_read_f32(path, &r->logits, &nd, sh, &err) != G4C_OK || nd != 2 || sh[0] != r->n) return 0;
    r->vocab = sh[1];
    return 1;
}

static g4c_model *load(const char *path, const char *mmproj) {
    g4c_model_params mp = g4c_model_default_params();
    mp.n_threads = 1;
    mp.mmproj_path = mmproj;
    g4c_model *m = NULL;
    g4c_err err = {0};
    if (g4c_model_load(&m, path, &mp, &err) != G4C_OK) fprintf(stderr, "  load %s: %s\n", path, err.msg);
    return m;
}

/* logits of every prompt position, malloc'd */
static float *run(g4c_model *m, const ref_t *r) {
    g4c_session_params sp = g4c_session_default_params();
    sp.n_ctx = 256;
    sp.n_ubatch = 64;
    g4c_session *s = NULL;
    g4c_err err = {0};
    float *lg = malloc(sizeof(float) * (size_t)r->n * (size_t)r->vocab);
    if (g4c_session_init(&s, m, &sp, &err) != G4C_OK || g4c_session_eval(s, r->prompt, r->n, lg, G4C_LOGITS_ALL, &err)) {
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
        ref_t r;
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
            for (size_t i = 0; la && lb && i < (size_t)r.n * (size_t)r.vocab; i++)
                worst = fmax(worst, fabs((double)la[i] - lb[i]));
            CHECKF(la && lb && worst <= 1e-6, "%s: max |logit difference| %g", TAGS[k], worst);
            free(la);
            free(lb);
        }
        g4c_model_free(a);
        g4c_model_free(b);
        free(r.logits);
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
        ref_t r;
        if (!load_ref(&r, TAGS[k])) { CHECK(0); continue; }
        double kl_q8 = 0;
        for (size_t b = 0; b < sizeof B / sizeof *B; b++) {
            char gg[512], deq[600];
            if (!quantize(TAGS[k], B[b].type, gg, sizeof gg, NULL)) { CHECK(0); continue; }
            g4c_model *m = load(gg, NULL);
            float *lg = m ? run(m, &r) : NULL, *ld = NULL;
            double kl = 1, top1 = 0, kl_own = 0, top1_own = 1;
            if (lg) compare(r.logits, lg, r.n, r.vocab, &kl, &top1);
            if (lg && B[b].max_kl_own > 0) { /* the same weights, dequantized, through the f32 path */
                g4c_quantize_params qp = {.ftype = G4C_FT_F32, .n_threads = 1};
                g4c_err err = {0};
                snprintf(deq, sizeof deq, "%s.f32.gguf", gg);
                g4c_model *md = NULL;
                if (g4c_quantize_model(gg, deq, &qp, &err) == G4C_OK && (md = load(deq, NULL)) && (ld = run(md, &r)))
                    compare(ld, lg, r.n, r.vocab, &kl_own, &top1_own);
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
        free(r.logits);
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
    snprintf(p, sizeof p, "%s/config.json", dir);
    fclose(fopen(p, "wb"));
    CHECK(g4c_gguf_resolve(dir, NULL, gguf, sizeof gguf, mm, sizeof mm, &err) == 0); /* a Hugging Face directory */
    g4c_model *m = NULL;
    g4c_model_params mp = g4c_model_default_params();
    snprintf(p, sizeof p, "%s/other.gguf", dir);
    CHECK(g4c_model_load(&m, p, &mp, &err) == G4C_E_FORMAT && !m && strstr(err.msg, "other.gguf")); /* empty file */
}

/* ---- tokenizer ---------------------------------------------------------------------------------------------------- */

#include "tokenizer/tokenizer.h"

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

static void rm_rf(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (!lstat(p, &sb) && S_ISDIR(sb.st_mode)) rm_rf(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
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
    RUN(test_type_rules);
    RUN(test_f32_gguf_matches);
    RUN(test_quantized_logits);
    RUN(test_llama_cpp_metadata);
    RUN(test_requantize_gguf);
    RUN(test_mmproj);
    RUN(test_resolve);
    RUN(test_tokenizer_gguf);
    rm_rf(tmpdir);
    return TEST_REPORT();
}
