/* safetensors reader: valid files load with the right names, shapes, dtypes and bytes; every malformed file is
 * refused with the right status and a message naming the file and tensor; no input crashes it (run under ASan).
 * Temporary files live in a fresh mkdtemp directory under /tmp, removed at the end. */
#include <dirent.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "formats/formats.h"
#include "test.h"

static char tmp_root[64];

static void rm_rf(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            char sub[4096];
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
                if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub) rm_rf(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* <tmp_root>/<name> into buf (static size 4096). */
static const char *tpath(char *buf, const char *name) {
    snprintf(buf, 4096, "%s/%s", tmp_root, name);
    return buf;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECKF(f != NULL, "cannot create %s", path);
    if (!f) return;
    CHECK(fwrite(p, 1, n, f) == n);
    fclose(f);
}

/* ---- the in-test writer: u64 LE header length, header text, data bytes ---------------------------------------- */

typedef struct { unsigned char *p; size_t n; } image;

/* data may be NULL: n_data filler bytes */
static image make_image_len(uint64_t n_hdr_field, const char *hdr, const void *data, size_t n_data) {
    size_t n_hdr = strlen(hdr);
    image im = {malloc(8 + n_hdr + n_data + 1), 8 + n_hdr + n_data};
    for (int i = 0; i < 8; i++) im.p[i] = (unsigned char)(n_hdr_field >> (8 * i));
    memcpy(im.p + 8, hdr, n_hdr);
    if (data) memcpy(im.p + 8 + n_hdr, data, n_data);
    else memset(im.p + 8 + n_hdr, 0x5a, n_data);
    return im;
}
static image make_image(const char *hdr, const void *data, size_t n_data) {
    return make_image_len(strlen(hdr), hdr, data, n_data);
}

/* The small valid image used by several tests: header out of name order, spans out of header order, metadata,
 * a scalar and a zero-size tensor. */
static const char TINY_HDR[] =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"c_bf16\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[16,24]},"
    "\"a_f16\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
    "\"b_f32\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[24,48]},"
    "\"d_scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[8,12]},"
    "\"e_empty\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[48,48]},"
    "\"z_last\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}";
static const uint16_t TINY_F16[4] = {0x3C00, 0xC000, 0x3800, 0x7BFF};  /* 1, -2, 0.5, 65504 */
static const uint16_t TINY_BF16[4] = {0x3F80, 0xC000, 0x3F00, 0x4040}; /* 1, -2, 0.5, 3 */
static const float TINY_F32[6] = {0.0f, 0.25f, 0.5f, 0.75f, 1.0f, -1.25f};

static void put_le(unsigned char *dst, uint64_t v, int n) {
    for (int i = 0; i < n; i++) dst[i] = (unsigned char)(v >> (8 * i));
}

static image tiny_image(const char *pad) {
    unsigned char data[48];
    for (int i = 0; i < 4; i++) put_le(data + 2 * i, TINY_F16[i], 2);
    float s = 42.0f, z = -7.0f;
    uint32_t u;
    memcpy(&u, &s, 4), put_le(data + 8, u, 4);
    memcpy(&u, &z, 4), put_le(data + 12, u, 4);
    for (int i = 0; i < 4; i++) put_le(data + 16 + 2 * i, TINY_BF16[i], 2);
    for (int i = 0; i < 6; i++) memcpy(&u, &TINY_F32[i], 4), put_le(data + 24 + 4 * i, u, 4);
    char hdr[1024];
    snprintf(hdr, sizeof hdr, "%s%s", TINY_HDR, pad);
    return make_image(hdr, data, sizeof data);
}

static void check_tiny(const g4c_tensor_set *ts) {
    CHECK(ts->n_tensors == 6);
    if (ts->n_tensors != 6) return;
    static const char *names[6] = {"a_f16", "b_f32", "c_bf16", "d_scalar", "e_empty", "z_last"};
    for (int i = 0; i < 6; i++) CHECKF(strcmp(ts->tensors[i].name, names[i]) == 0, "[%d] %s", i, ts->tensors[i].name);
    const g4c_st_tensor *a = g4c_st_find(ts, "a_f16"), *b = g4c_st_find(ts, "b_f32"), *c = g4c_st_find(ts, "c_bf16");
    const g4c_st_tensor *d = g4c_st_find(ts, "d_scalar"), *e = g4c_st_find(ts, "e_empty");
    CHECK(g4c_st_find(ts, "__metadata__") == NULL && g4c_st_find(ts, "nope") == NULL && g4c_st_find(ts, "") == NULL);
    CHECK(a && b && c && d && e);
    if (!a || !b || !c || !d || !e) return;
    CHECK(a->dtype == G4C_DTYPE_F16 && a->ndim == 1 && a->shape[0] == 4 && a->size_bytes == 8 && g4c_st_numel(a) == 4);
    CHECK(b->dtype == G4C_DTYPE_F32 && b->ndim == 2 && b->shape[0] == 2 && b->shape[1] == 3 && b->size_bytes == 24);
    CHECK(c->dtype == G4C_DTYPE_BF16 && c->ndim == 2 && c->shape[0] == 2 && c->shape[1] == 2 && c->size_bytes == 8);
    CHECK(d->dtype == G4C_DTYPE_F32 && d->ndim == 0 && g4c_st_numel(d) == 1 && d->size_bytes == 4);
    CHECK(e->ndim == 2 && e->shape[0] == 0 && e->shape[1] == 3 && g4c_st_numel(e) == 0 && e->size_bytes == 0);
    float f[6];
    g4c_to_f32(f, a->data, a->dtype, 4);
    CHECK(f[0] == 1.0f && f[1] == -2.0f && f[2] == 0.5f && f[3] == 65504.0f);
    g4c_to_f32(f, c->data, c->dtype, 4);
    CHECK(f[0] == 1.0f && f[1] == -2.0f && f[2] == 0.5f && f[3] == 3.0f);
    g4c_to_f32(f, b->data, b->dtype, 6);
    for (int i = 0; i < 6; i++) CHECKF(f[i] == TINY_F32[i], "b_f32[%d] = %g", i, f[i]);
    g4c_to_f32(f, d->data, d->dtype, 1);
    CHECK(f[0] == 42.0f);
}

/* Writes img to <tmp>/<name>, opens it with g4c_st_open_file (and, when `buffer`, g4c_st_parse_buffer with
 * what = name): each must fail with `code`, a message naming the file, and containing needle (if non-NULL). */
static void expect_fail_img(const char *name, image im, g4c_status code, const char *needle, int buffer, int line) {
    char path[4096];
    tpath(path, name);
    write_bytes(path, im.p, im.n);
    g4c_tensor_set *ts = (g4c_tensor_set *)1;
    g4c_err err = {0};
    g4c_status st = g4c_st_open_file(&ts, path, &err);
    CHECKF(st == code && err.code == (int)code, "line %d: %s: status %d, want %d (%s)", line, name, st, code, err.msg);
    CHECKF(ts == NULL, "line %d: *out not NULL on failure", line);
    CHECKF(strstr(err.msg, path) != NULL, "line %d: message does not name the file: %s", line, err.msg);
    CHECKF(!needle || strstr(err.msg, needle), "line %d: message lacks \"%s\": %s", line, needle, err.msg);
    if (st == G4C_OK) g4c_st_free(ts);
    if (buffer) {
        g4c_err err2 = {0};
        ts = (g4c_tensor_set *)1;
        st = g4c_st_parse_buffer(&ts, im.p, im.n, name, &err2);
        CHECKF(st == code, "line %d: buffer %s: status %d, want %d (%s)", line, name, st, code, err2.msg);
        CHECKF(ts == NULL && strstr(err2.msg, name), "line %d: buffer message lacks the name: %s", line, err2.msg);
        CHECKF(!needle || strstr(err2.msg, needle), "line %d: buffer message lacks \"%s\": %s", line, needle, err2.msg);
        if (st == G4C_OK) g4c_st_free(ts);
    }
    free(im.p);
}
/* HDR_FAIL(name, header, data bytes, status, needle); ONE(tensor, dtype, shape, offsets) is a one-tensor header. */
#define ONE(t, dt, shape, offs) "{\"" t "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":" offs "}}"
#define HDR_FAIL(name, hdr, n_data, code, needle) \
    expect_fail_img(name, make_image(hdr, NULL, n_data), code, needle, 1, __LINE__)

/* Runs fn in a child process so that a crash shows up as a failed check rather than ending the run. */
static void in_child(void (*fn)(void), const char *what) {
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid < 0) return;
    if (pid == 0) {
        test_failed_checks = 0;
        fn();
        fflush(NULL);
        exit(test_failed_checks ? 3 : 0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (WIFSIGNALED(status))
        CHECKF(0, "%s: child killed by signal %d (crash)", what, WTERMSIG(status));
    else
        CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
               "%s: child exited with %d (3 = failed checks, other = sanitizer report above)", what,
               WEXITSTATUS(status));
}

/* ---- valid input ---------------------------------------------------------------------------------------------- */

/* Writes im to <tmp>/<name> (freeing im) and opens it, which must succeed. */
static g4c_tensor_set *write_open(const char *name, image im) {
    char path[4096];
    write_bytes(tpath(path, name), im.p, im.n);
    free(im.p);
    g4c_tensor_set *ts = NULL;
    g4c_err err = {0};
    CHECKF(g4c_st_open_file(&ts, path, &err) == G4C_OK, "%s: %s", name, err.msg);
    return ts;
}

static void test_valid_tiny_file(void) {
    g4c_tensor_set *ts = write_open("tiny", tiny_image(""));
    if (ts) {
        CHECK(ts->n_files == 1 && ts->files[0].map != NULL && ts->files[0].size == 8 + strlen(TINY_HDR) + 48);
        check_tiny(ts);
        g4c_st_free(ts);
    }
    /* headers padded with spaces (what writers do to align the data) */
    if ((ts = write_open("tiny_pad", tiny_image("      ")))) check_tiny(ts), g4c_st_free(ts);
    /* an empty header with no data is a valid empty set */
    if ((ts = write_open("empty_set", make_image("{}", NULL, 0)))) {
        CHECK(ts->n_tensors == 0);
        g4c_st_free(ts);
    }
}

static void test_valid_tiny_buffer(void) {
    image im = tiny_image("");
    g4c_tensor_set *ts = NULL;
    g4c_err err = {0};
    CHECKF(g4c_st_parse_buffer(&ts, im.p, im.n, "tiny", &err) == G4C_OK, "%s", err.msg);
    if (ts) {
        check_tiny(ts);
        const g4c_st_tensor *b = g4c_st_find(ts, "b_f32");
        CHECK(b && (const unsigned char *)b->data == im.p + 8 + strlen(TINY_HDR) + 24); /* points into buf */
        g4c_st_free(ts);
    }
    free(im.p);
}

static void test_fixture_dense(void) {
    g4c_tensor_set *ts = NULL;
    g4c_err err = {0};
    CHECKF(g4c_st_open_dir(&ts, G4C_FIXTURES "/dense-f32", &err) == G4C_OK, "%s", err.msg);
    if (!ts) return;
    CHECK(ts->n_files == 1 && ts->n_tensors > 0);
    for (int i = 1; i < ts->n_tensors; i++) CHECK(strcmp(ts->tensors[i - 1].name, ts->tensors[i].name) < 0);
    const g4c_st_tensor *t = g4c_st_find(ts, "model.language_model.embed_tokens.weight");
    CHECK(t && t->dtype == G4C_DTYPE_F32 && t->ndim == 2 && t->shape[0] == 512 && t->shape[1] == 64);
    g4c_st_free(ts);
    /* bf16 fixture too */
    ts = NULL;
    CHECKF(g4c_st_open_dir(&ts, G4C_FIXTURES "/dense-bf16", &err) == G4C_OK, "%s", err.msg);
    if (!ts) return;
    t = g4c_st_find(ts, "model.language_model.embed_tokens.weight");
    CHECK(t && t->dtype == G4C_DTYPE_BF16 && t->shape[0] == 512 && t->shape[1] == 64);
    g4c_st_free(ts);
}

static void test_fixture_moe_sharded(void) {
    g4c_tensor_set *ts = NULL;
    g4c_err err = {0};
    CHECKF(g4c_st_open_dir(&ts, G4C_FIXTURES "/moe-f32", &err) == G4C_OK, "%s", err.msg);
    if (!ts) return;
    CHECKF(ts->n_files == 29, "n_files %d", ts->n_files);
    CHECK(ts->n_tensors > 0);
    for (int i = 1; i < ts->n_tensors; i++) CHECK(strcmp(ts->tensors[i - 1].name, ts->tensors[i].name) < 0);
    const g4c_st_tensor *t = g4c_st_find(ts, "model.language_model.embed_tokens.weight");
    CHECK(t && t->ndim == 2 && t->shape[0] == 512 && t->shape[1] == 64);
    CHECK(t && strstr(ts->files[t->i_file].path, "model-00004-of-00029.safetensors"));
    CHECK(g4c_st_find(ts, "model.language_model.layers.0.experts.gate_up_proj") != NULL);
    g4c_st_free(ts);
}

/* ---- malformed single files ----------------------------------------------------------------------------------- */

/* A malloc'd copy of the first n bytes of buf. */
static image prefix(const char *buf, size_t n) {
    image im = {malloc(n ? n : 1), n};
    memcpy(im.p, buf, n);
    return im;
}

static void test_truncated_fixture(void) {
    char *buf = NULL;
    size_t n = 0;
    g4c_err err = {0};
    CHECKF(g4c_read_file(G4C_FIXTURES "/dense-f32/model.safetensors", (size_t)64 << 20, &buf, &n, &err) == G4C_OK,
           "%s", err.msg);
    if (!buf) return;
    uint64_t n_hdr = 0;
    for (int i = 0; i < 8; i++) n_hdr |= (uint64_t)(unsigned char)buf[i] << (8 * i);
    /* in the middle of the data (the last tensors run past the end), inside the header, one byte short */
    expect_fail_img("trunc_data", prefix(buf, n / 2), G4C_E_FORMAT, "tensor model.", 0, __LINE__);
    expect_fail_img("trunc_hdr", prefix(buf, 8 + (size_t)n_hdr / 2), G4C_E_FORMAT, "header length", 0, __LINE__);
    expect_fail_img("trunc_one", prefix(buf, n - 1), G4C_E_FORMAT, "tensor model.", 1, __LINE__);
    free(buf);
}

static void test_too_short(void) {
    static const char zeros[8] = {0};
    expect_fail_img("short7", prefix(zeros, 7), G4C_E_FORMAT, "too short", 1, __LINE__);
    expect_fail_img("empty", prefix(zeros, 0), G4C_E_FORMAT, "too short", 1, __LINE__);
    expect_fail_img("len0", prefix(zeros, 8), G4C_E_FORMAT, "header length", 1, __LINE__); /* header length 0 */
}

static void test_header_len(void) {
    const char *h = ONE("w", "F32", "[1]", "[0,4]");
    expect_fail_img("hdr_past_end", make_image_len(strlen(h) + 5, h, NULL, 4), G4C_E_FORMAT, "not fit", 1, __LINE__);
    expect_fail_img("hdr_huge", make_image_len(UINT64_MAX, h, NULL, 4), G4C_E_FORMAT, "100 MB", 1, __LINE__);
    expect_fail_img("hdr_100mb", make_image_len(G4C_ST_MAX_HEADER + 1, h, NULL, 4), G4C_E_FORMAT, "100 MB", 1,
                    __LINE__);
}

static void test_header_not_json(void) {
    HDR_FAIL("notjson", "{not json at all}", 0, G4C_E_FORMAT, "JSON");
    HDR_FAIL("notjson2", "{\"w\":{\"dtype\":\"F32\",", 0, G4C_E_FORMAT, "JSON");
    HDR_FAIL("notjson3", "hello world", 0, G4C_E_FORMAT, NULL);
}

static void test_header_not_object(void) {
    HDR_FAIL("array", "[1, 2, 3]", 0, G4C_E_FORMAT, "header");
    HDR_FAIL("string", "\"abc\"", 0, G4C_E_FORMAT, "header");
    HDR_FAIL("number", "12345", 0, G4C_E_FORMAT, "header");
}

static void test_entry_not_object(void) {
    HDR_FAIL("entry_num", "{\"w\": 5}", 0, G4C_E_FORMAT, "tensor w");
    HDR_FAIL("entry_arr", "{\"w\": [\"F32\", [1], [0, 4]]}", 4, G4C_E_FORMAT, "tensor w");
    HDR_FAIL("meta_arr", "{\"__metadata__\": [1]}", 0, G4C_E_FORMAT, "__metadata__");
}

static void test_missing_fields(void) {
    HDR_FAIL("no_dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, G4C_E_FORMAT, "tensor w");
    HDR_FAIL("no_shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, G4C_E_FORMAT, "tensor w");
    HDR_FAIL("no_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, G4C_E_FORMAT, "tensor w");
    HDR_FAIL("offsets1", ONE("w", "F32", "[1]", "[4]"), 4, G4C_E_FORMAT, "tensor w");
    HDR_FAIL("offsets3", ONE("w", "F32", "[1]", "[0,4,4]"), 4, G4C_E_FORMAT, "tensor w");
    HDR_FAIL("dtype_num", "{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, G4C_E_FORMAT, "tensor w");
    HDR_FAIL("shape_str", ONE("w", "F32", "\"1\"", "[0,4]"), 4, G4C_E_FORMAT, "tensor w");
    HDR_FAIL("offsets_str", ONE("w", "F32", "[1]", "[\"0\",4]"), 4, G4C_E_FORMAT, "tensor w");
}

static void test_unknown_dtype(void) {
    /* Not a safetensors dtype at all. The reader reports every dtype it cannot use as UNSUPPORTED; FORMAT would be
     * as acceptable for a name no writer produces. */
    const char *h = ONE("w", "Q9", "[1]", "[0,4]");
    image im = make_image(h, NULL, 4);
    g4c_tensor_set *ts = NULL;
    g4c_err err = {0};
    g4c_status st = g4c_st_parse_buffer(&ts, im.p, im.n, "q9.safetensors", &err);
    CHECKF(st == G4C_E_UNSUPPORTED || st == G4C_E_FORMAT, "status %d", st);
    CHECKF(strstr(err.msg, "q9.safetensors") && strstr(err.msg, "tensor w") && strstr(err.msg, "Q9"), "%s", err.msg);
    free(im.p);
    HDR_FAIL("q9", h, 4, st, "Q9");
    HDR_FAIL("lowercase", ONE("w", "f32", "[1]", "[0,4]"), 4, st, "tensor w");
}

static void test_unsupported_dtype(void) {
    HDR_FAIL("i64", ONE("w", "I64", "[1]", "[0,8]"), 8, G4C_E_UNSUPPORTED, "I64");
    HDR_FAIL("f8", ONE("w", "F8_E4M3", "[4]", "[0,4]"), 4, G4C_E_UNSUPPORTED, "tensor w");
    HDR_FAIL("bool", ONE("w", "BOOL", "[4]", "[0,4]"), 4, G4C_E_UNSUPPORTED, "tensor w");
}

static void test_bad_shape_entries(void) {
    HDR_FAIL("neg", ONE("w", "F32", "[-1]", "[0,4]"), 4, G4C_E_FORMAT, "tensor w");
    HDR_FAIL("neg2", ONE("w", "F32", "[-2,-2]", "[0,16]"), 16, G4C_E_FORMAT, "tensor w");
    HDR_FAIL("frac", ONE("w", "F32", "[1.5, 2]", "[0,12]"), 12, G4C_E_FORMAT, "tensor w");
    HDR_FAIL("shape_null", ONE("w", "F32", "[null]", "[0,4]"), 4, G4C_E_FORMAT, "tensor w");
    HDR_FAIL("offsets_neg", ONE("w", "F32", "[1]", "[-4,0]"), 4, G4C_E_FORMAT, "tensor w");
    HDR_FAIL("offsets_frac", ONE("w", "F32", "[1]", "[0.5,4.5]"), 5, G4C_E_FORMAT, "tensor w");
}

static void test_wrong_shape(void) {
    HDR_FAIL("wrong_shape", ONE("w", "F32", "[3]", "[0,8]"), 8, G4C_E_FORMAT, "tensor w");
    HDR_FAIL("wrong_dtype", ONE("w", "BF16", "[2]", "[0,8]"), 8, G4C_E_FORMAT, "tensor w");
}

#define TWO_HDR(oa, ob) "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":" oa "}," \
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":" ob "}}"

static void test_overlap(void) {
    HDR_FAIL("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, G4C_E_FORMAT, "overlap");
    HDR_FAIL("same_span", TWO_HDR("[0,4]", "[0,4]"), 4, G4C_E_FORMAT, "overlap");
}

static void test_hole(void) {
    HDR_FAIL("hole", TWO_HDR("[0,4]", "[8,12]"), 12, G4C_E_FORMAT, "tensor b");
    HDR_FAIL("hole_front", ONE("a", "F32", "[1]", "[4,8]"), 8, G4C_E_FORMAT, "tensor a");
}

static void test_trailing(void) {
    HDR_FAIL("trailing", ONE("a", "F32", "[1]", "[0,4]"), 5, G4C_E_FORMAT, "trailing");
    HDR_FAIL("empty_trailing", "{}", 3, G4C_E_FORMAT, "trailing");
}

static void test_begin_gt_end(void) {
    HDR_FAIL("begin_gt_end", ONE("a", "F32", "[0]", "[4,0]"), 4, G4C_E_FORMAT, "tensor a");
}

static void test_offsets_past_end(void) {
    HDR_FAIL("past_end", ONE("a", "F32", "[2]", "[0,8]"), 4, G4C_E_FORMAT, "tensor a");
    HDR_FAIL("way_past", ONE("a", "F32", "[1]", "[9007199254740988,9007199254740992]"), 4, G4C_E_FORMAT, "tensor a");
}

/* cJSON keeps both members of an object with a repeated key */
static const char DUP_HDR[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                              "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";

static void test_duplicate_in_file(void) {
    expect_fail_img("dup", make_image(DUP_HDR, NULL, 8), G4C_E_FORMAT, "tensor a appears twice", 0, __LINE__);
}

static void dup_buffer_body(void) {
    image im = make_image(DUP_HDR, NULL, 8);
    g4c_tensor_set *ts = NULL;
    g4c_err err = {0};
    g4c_status st = g4c_st_parse_buffer(&ts, im.p, im.n, "dupbuf", &err);
    CHECKF(st == G4C_E_FORMAT && strstr(err.msg, "tensor a"), "status %d: %s", st, err.msg);
    if (st == G4C_OK) g4c_st_free(ts);
    free(im.p);
}
/* The same through g4c_st_parse_buffer (no file list), in a child in case it crashes. */
static void test_duplicate_in_buffer(void) { in_child(dup_buffer_body, "duplicate name via g4c_st_parse_buffer"); }

static void test_metadata_non_string(void) {
    HDR_FAIL("meta_num", "{\"__metadata__\":{\"format\":\"pt\",\"step\":5}}", 0, G4C_E_FORMAT, "step");
    HDR_FAIL("meta_obj", "{\"__metadata__\":{\"x\":{}}}", 0, G4C_E_FORMAT, "__metadata__");
}

static void test_too_many_dims(void) {
    HDR_FAIL("dims5", ONE("w", "F32", "[1,1,1,1,1]", "[0,4]"), 4, G4C_E_UNSUPPORTED, "tensor w");
}

static void test_shape_overflow(void) {
    HDR_FAIL("ovf", ONE("w", "F32", "[4294967296,4294967296,16]", "[0,0]"), 0, G4C_E_FORMAT, "tensor w");
    HDR_FAIL("ovf2", ONE("w", "F32", "[9007199254740992,2048]", "[0,4]"), 4, G4C_E_FORMAT, "tensor w");
    /* 2^62 elements: the count fits in 64 bits, the byte size does not */
    HDR_FAIL("ovf_bytes", ONE("w", "F32", "[4611686018427387904]", "[0,0]"), 0, G4C_E_FORMAT, "tensor w");
    HDR_FAIL("huge_entry", ONE("w", "F32", "[1e300]", "[0,4]"), 4, G4C_E_FORMAT, "tensor w");
}

/* ---- sharded checkpoints -------------------------------------------------------------------------------------- */

/* Makes <tmp>/<name>/ and returns its path in buf. */
static const char *make_dir(char *buf, const char *name) {
    tpath(buf, name);
    CHECKF(mkdir(buf, 0700) == 0, "mkdir %s", buf);
    return buf;
}

/* Writes <dir>/<file> holding F32 [1] tensors with the given names (NULL-terminated). */
static void write_shard(const char *dir, const char *file, const char *const *names) {
    char hdr[2048] = "{", ent[256], path[4096];
    int n = 0;
    for (; names[n]; n++) {
        snprintf(ent, sizeof ent, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%d,%d]}", n ? "," : "",
                 names[n], 4 * n, 4 * n + 4);
        strncat(hdr, ent, sizeof hdr - strlen(hdr) - 1);
    }
    strncat(hdr, "}", sizeof hdr - strlen(hdr) - 1);
    image im = make_image(hdr, NULL, (size_t)4 * n);
    CHECK(g4c_path_join(path, sizeof path, dir, file, NULL) == G4C_OK);
    write_bytes(path, im.p, im.n);
    free(im.p);
}

static void write_text(const char *dir, const char *file, const char *text) {
    char path[4096];
    CHECK(g4c_path_join(path, sizeof path, dir, file, NULL) == G4C_OK);
    write_bytes(path, text, strlen(text));
}

/* g4c_st_open_dir(dir) must fail with code and a message containing needle1 and needle2 (if non-NULL). */
static void expect_dir_fail(const char *dir, g4c_status code, const char *needle1, const char *needle2, int line) {
    g4c_tensor_set *ts = (g4c_tensor_set *)1;
    g4c_err err = {0};
    g4c_status st = g4c_st_open_dir(&ts, dir, &err);
    CHECKF(st == code && err.code == (int)code, "line %d: status %d, want %d (%s)", line, st, code, err.msg);
    CHECKF(ts == NULL, "line %d: *out not NULL on failure", line);
    CHECKF(!needle1 || strstr(err.msg, needle1), "line %d: message lacks \"%s\": %s", line, needle1, err.msg);
    CHECKF(!needle2 || strstr(err.msg, needle2), "line %d: message lacks \"%s\": %s", line, needle2, err.msg);
    if (st == G4C_OK) g4c_st_free(ts);
}

static const char *const AB[] = {"a", "b", NULL};
static const char *const CD[] = {"c", "d", NULL};
#define INDEX "model.safetensors.index.json"
#define WM(members) "{\"weight_map\": {" members "}}"

/* Makes <tmp>/<name>/ holding shard s1 (tensors a, b), shard s2 (tensors s2, if given) and the index text. */
static const char *sharded(char *dir, const char *name, const char *const *s2, const char *index) {
    make_dir(dir, name);
    write_shard(dir, "s1", AB);
    if (s2) write_shard(dir, "s2", s2);
    write_text(dir, INDEX, index);
    return dir;
}

static void test_index_not_json(void) {
    char dir[4096];
    sharded(dir, "idx_notjson", NULL, "{\"weight_map\": {\"a\": \"s1\",");
    expect_dir_fail(dir, G4C_E_FORMAT, INDEX, "JSON", __LINE__);
}

static void test_index_no_weight_map(void) {
    char dir[4096];
    sharded(dir, "idx_nomap", NULL, "{\"metadata\": {}}");
    expect_dir_fail(dir, G4C_E_FORMAT, INDEX, "weight_map", __LINE__);
    write_text(dir, INDEX, "{\"weight_map\": [\"s1\"]}");
    expect_dir_fail(dir, G4C_E_FORMAT, INDEX, "weight_map", __LINE__);
    write_text(dir, INDEX, "[1]");
    expect_dir_fail(dir, G4C_E_FORMAT, INDEX, "weight_map", __LINE__);
}

static void test_index_unsafe_names(void) {
    char dir[4096];
    static const char *const bad[] = {
        WM("\"a\": \"s1\", \"b\": \"../idx_unsafe/s1\""), WM("\"a\": \"s1\", \"b\": \"..\""),
        WM("\"a\": \"s1\", \"b\": \"/etc/passwd\""),      WM("\"a\": \"s1\", \"b\": \"sub/s1\""),
        WM("\"a\": \"s1\", \"b\": \"\""),                 WM("\"a\": \"s1\", \"b\": \".\""),
        WM("\"a\": \"s1\", \"b\": 3"),
    };
    sharded(dir, "idx_unsafe", NULL, "{}");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_text(dir, INDEX, bad[i]);
        expect_dir_fail(dir, G4C_E_FORMAT, INDEX, "weight_map[\"b\"]", __LINE__);
    }
}

static void test_index_missing_shard(void) {
    char dir[4096];
    sharded(dir, "idx_missing", NULL, WM("\"a\": \"s1\", \"b\": \"s1\", \"c\": \"s2\""));
    expect_dir_fail(dir, G4C_E_IO, "idx_missing/s2", NULL, __LINE__);
}

static void test_index_tensor_not_in_shard(void) {
    char dir[4096];
    /* "x" is in no shard */
    sharded(dir, "idx_wrong", CD, WM("\"a\": \"s1\", \"x\": \"s1\", \"c\": \"s2\""));
    expect_dir_fail(dir, G4C_E_FORMAT, "tensor x", "shard s1", __LINE__);
    /* "c" exists, but in s2, not in s1 as the index says */
    write_text(dir, INDEX, WM("\"a\": \"s1\", \"d\": \"s2\", \"c\": \"s1\""));
    expect_dir_fail(dir, G4C_E_FORMAT, "tensor c", "shard s1", __LINE__);
    /* a correct index over the same shards loads */
    write_text(dir, INDEX, WM("\"a\": \"s1\", \"b\": \"s1\", \"c\": \"s2\", \"d\": \"s2\""));
    g4c_tensor_set *ts = NULL;
    g4c_err err = {0};
    CHECKF(g4c_st_open_dir(&ts, dir, &err) == G4C_OK, "%s", err.msg);
    if (ts) {
        CHECK(ts->n_files == 2 && ts->n_tensors == 4 && g4c_st_find(ts, "d") && g4c_st_find(ts, "d")->i_file == 1);
        g4c_st_free(ts);
    }
}

static void test_duplicate_across_shards(void) {
    char dir[4096];
    static const char *const AC[] = {"a", "c", NULL};
    sharded(dir, "idx_dup", AC, WM("\"a\": \"s1\", \"b\": \"s1\", \"c\": \"s2\""));
    expect_dir_fail(dir, G4C_E_FORMAT, "tensor a appears twice", "idx_dup/s2", __LINE__);
}

static void test_bad_shard_content(void) {
    char dir[4096];
    sharded(dir, "idx_badshard", NULL, WM("\"a\": \"s1\", \"c\": \"s2\""));
    write_text(dir, "s2", "garbage!garbage!");
    expect_dir_fail(dir, G4C_E_FORMAT, "idx_badshard/s2", NULL, __LINE__);
}

static void test_nonexistent(void) {
    char path[4096];
    g4c_tensor_set *ts = (g4c_tensor_set *)1;
    g4c_err err = {0};
    CHECK(g4c_st_open_file(&ts, tpath(path, "no_such.safetensors"), &err) == G4C_E_IO && ts == NULL);
    CHECKF(strstr(err.msg, path), "%s", err.msg);
    expect_dir_fail(tpath(path, "no_such_dir"), G4C_E_IO, "no_such_dir/model.safetensors", NULL, __LINE__);
    make_dir(path, "empty_dir");
    expect_dir_fail(path, G4C_E_IO, "empty_dir/model.safetensors", NULL, __LINE__);
    ts = (g4c_tensor_set *)1;
    CHECK(g4c_st_open_file(&ts, tmp_root, &err) == G4C_E_IO && ts == NULL); /* a directory, not a file */
    CHECKF(strstr(err.msg, tmp_root), "%s", err.msg);
}

/* ---- robustness sweeps (in a child: a crash is reported, not fatal) -------------------------------------------- */

static void parse_one(const unsigned char *img, size_t n, int must_fail, size_t i, int v) {
    unsigned char *copy = prefix((const char *)img, n).p; /* exact size so ASan sees any over-read */
    g4c_tensor_set *ts = NULL;
    g4c_err err = {0};
    g4c_status st = g4c_st_parse_buffer(&ts, copy, n, "sweep", &err);
    if (st == G4C_OK) {
        CHECKF(!must_fail, "length %zu accepted", n);
        CHECK(ts != NULL);
        float f[64];
        for (int k = 0; ts && k < ts->n_tensors; k++) { /* touch every tensor's bytes */
            const g4c_st_tensor *t = &ts->tensors[k];
            size_t esz = g4c_dtype_infos[t->dtype].size;
            CHECK(t->size_bytes == (size_t)g4c_st_numel(t) * esz);
            CHECK((const unsigned char *)t->data >= copy && (const unsigned char *)t->data + t->size_bytes <= copy + n);
            for (size_t o = 0; o < t->size_bytes / esz; o += 64)
                g4c_to_f32(f, (const unsigned char *)t->data + o * esz, t->dtype,
                           t->size_bytes / esz - o < 64 ? t->size_bytes / esz - o : 64);
            if (k) CHECK(strcmp(ts->tensors[k - 1].name, t->name) < 0);
        }
        g4c_st_free(ts);
    } else {
        CHECKF(st < 0 && err.code == (int)st && err.msg[0] && ts == NULL, "pos %zu value %d: status %d msg \"%s\"",
               i, v, st, err.msg);
    }
    free(copy);
}

static void byte_flip_body(void) {
    image im = tiny_image("");
    const size_t hdr_end = 8 + strlen(TINY_HDR);
    static const int vals[] = {0x00, 0xff, '"', '9', '{', '}', ',', '-', ']'};
    unsigned char *work = malloc(im.n);
    for (size_t i = 0; i < hdr_end; i++)
        for (size_t v = 0; v < sizeof vals / sizeof *vals; v++) {
            memcpy(work, im.p, im.n);
            work[i] = (unsigned char)vals[v];
            parse_one(work, im.n, 0, i, vals[v]);
        }
    free(work);
    free(im.p);
}
static void test_byte_flip_sweep(void) { in_child(byte_flip_body, "byte-flip sweep"); }

static void truncation_body(void) {
    image im = tiny_image("");
    for (size_t n = 0; n <= im.n; n++) parse_one(im.p, n, n < im.n, n, -1);
    free(im.p);
    im = tiny_image("   "); /* padded header */
    for (size_t n = 0; n <= im.n; n++) parse_one(im.p, n, n < im.n, n, -1);
    free(im.p);
}
static void test_truncation_sweep(void) { in_child(truncation_body, "truncation sweep"); }

int main(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/g4c_test_st_XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_valid_tiny_file);
    RUN(test_valid_tiny_buffer);
    RUN(test_fixture_dense);
    RUN(test_fixture_moe_sharded);
    RUN(test_truncated_fixture);
    RUN(test_too_short);
    RUN(test_header_len);
    RUN(test_header_not_json);
    RUN(test_header_not_object);
    RUN(test_entry_not_object);
    RUN(test_missing_fields);
    RUN(test_unknown_dtype);
    RUN(test_unsupported_dtype);
    RUN(test_bad_shape_entries);
    RUN(test_wrong_shape);
    RUN(test_overlap);
    RUN(test_hole);
    RUN(test_trailing);
    RUN(test_begin_gt_end);
    RUN(test_offsets_past_end);
    RUN(test_duplicate_in_file);
    RUN(test_duplicate_in_buffer);
    RUN(test_metadata_non_string);
    RUN(test_too_many_dims);
    RUN(test_shape_overflow);
    RUN(test_index_not_json);
    RUN(test_index_no_weight_map);
    RUN(test_index_unsafe_names);
    RUN(test_index_missing_shard);
    RUN(test_index_tensor_not_in_shard);
    RUN(test_duplicate_across_shards);
    RUN(test_bad_shard_content);
    RUN(test_nonexistent);
    RUN(test_byte_flip_sweep);
    RUN(test_truncation_sweep);
    rm_rf(tmp_root);
    return TEST_REPORT();
}
