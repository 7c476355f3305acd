/* Helpers shared by the tests that run the reference fixtures (test_model, test_mlx, test_vision, test_gguf_model,
 * tests/cuda/test_cuda; test_gguf for its scratch directory): ref/<tag>.json and its .npy logits, a model loaded with
 * n threads, a session, the worst per-position relative L2, the patches of a reference's resized image, the
 * malformed-checkpoint tools (a safetensors file rewritten with one tensor changed, an expected load error), the list
 * of text-fixture tests, and removing a scratch directory. `fix` is the fixtures directory (G4C_FIXTURES, or
 * test_cuda's argument). Header-only: static inline (or __attribute__((unused))) helpers, so that a test using only
 * some of them compiles without warnings under -Wall -Wextra -Werror. */
#ifndef G4C_TESTS_FIXTURE_H
#define G4C_TESTS_FIXTURE_H

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/formats.h"
#include "runtime/runtime.h"
#include "test.h"

/* What ref/<tag>.json holds (tools/make_fixtures.py, tools/make_mlx_fixtures.py), and its logits when asked for. */
typedef struct {
    int32_t prompt[256], greedy[64];
    int n_prompt, n_greedy;
    float *logits;   /* [n_prompt][vocab], transformers in float32 (FIXTURE_LOGITS) */
    float *logits64; /* the same in float64: the exact function (FIXTURE_LOGITS64) */
    double hf_err;   /* transformers f32 vs f64, worst position */
    int64_t vocab;
    char source[64]; /* a quantized fixture's unquantized source tag ("" if none) */
} fixture_ref;

enum { FIXTURE_LOGITS = 1, FIXTURE_LOGITS64 = 2 };

/* An [rows][cols] float32 .npy (rows < 0: any count), malloc'd; NULL and a message when missing or of another shape. */
static inline float *fixture_read_npy(const char *path, int64_t rows, int64_t *cols) {
    float *d = NULL;
    int nd;
    int64_t sh[4];
    g4c_err err = {0};
    if (g4c_npy_read_f32(path, &d, &nd, sh, &err) != G4C_OK || nd != 2 || (rows >= 0 && sh[0] != rows)) {
        fprintf(stderr, "  %s: bad reference %s\n", path, err.msg);
        free(d);
        return NULL;
    }
    if (cols) *cols = sh[1];
    return d;
}

/* fix/ref/<tag>.json (prompt, greedy, transformers' f32 error, source), then the logits `what` asks for
 * (FIXTURE_LOGITS, FIXTURE_LOGITS64). Without logits: 1 when there is a prompt; with: 1 when they all load, of
 * n_prompt rows and one vocabulary. Unloaded logits stay NULL; fixture_free_ref frees them. */
static inline int fixture_load_ref(fixture_ref *r, const char *fix, const char *tag, int what) {
    memset(r, 0, sizeof *r);
    char path[512];
    snprintf(path, sizeof path, "%s/ref/%s.json", fix, tag);
    cJSON *j;
    g4c_err err = {0};
    if (g4c_json_read_file(&j, path, &err) != G4C_OK) {
        fprintf(stderr, "  %s\n", err.msg);
        return 0;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "prompt")) r->prompt[r->n_prompt++] = (int32_t)it->valuedouble;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "greedy")) r->greedy[r->n_greedy++] = (int32_t)it->valuedouble;
    r->hf_err = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "hf_f32_vs_f64_worst_rel_l2"));
    const char *src = cJSON_GetStringValue(cJSON_GetObjectItem(j, "source"));
    snprintf(r->source, sizeof r->source, "%s", src ? src : "");
    cJSON_Delete(j);
    if (!what) return r->n_prompt > 0;
    if (what & FIXTURE_LOGITS) {
        snprintf(path, sizeof path, "%s/ref/%s.logits.npy", fix, tag);
        if (!(r->logits = fixture_read_npy(path, r->n_prompt, &r->vocab))) return 0;
    }
    if (what & FIXTURE_LOGITS64) {
        int64_t v = 0;
        snprintf(path, sizeof path, "%s/ref/%s.logits64.npy", fix, tag);
        if (!(r->logits64 = fixture_read_npy(path, r->n_prompt, &v)) || v != r->vocab) return 0;
    }
    return 1;
}

static inline void fixture_free_ref(fixture_ref *r) {
    free(r->logits);
    free(r->logits64);
    r->logits = r->logits64 = NULL;
}

/* g4c_model_load of a checkpoint directory or GGUF file with n_threads (and an mmproj file, or NULL). */
static inline g4c_status fixture_model_load(g4c_model **m, const char *path, int n_threads, const char *mmproj,
                                            g4c_err *err) {
    g4c_model_params mp = g4c_model_default_params();
    mp.n_threads = n_threads;
    mp.mmproj_path = mmproj;
    *m = NULL;
    return g4c_model_load(m, path, &mp, err);
}

/* The same, NULL (with the error on stderr) when it fails: the caller CHECKs the pointer. */
static inline g4c_model *fixture_load(const char *path, int n_threads, const char *mmproj) {
    g4c_model *m;
    g4c_err err = {0};
    if (fixture_model_load(&m, path, n_threads, mmproj, &err) != G4C_OK)
        fprintf(stderr, "  load %s: %s\n", path, err.msg);
    return m;
}

/* A session of n_ctx positions and n_ubatch-token chunks on `device` (< 0: the default, env G4C_DEVICE); NULL (with
 * the error on stderr) when it fails. */
static inline g4c_session *fixture_session(g4c_model *m, int n_ctx, int n_ubatch, int device) {
    g4c_session_params sp = g4c_session_default_params();
    sp.n_ctx = n_ctx;
    sp.n_ubatch = n_ubatch;
    if (device >= 0) sp.device = device;
    g4c_session *s = NULL;
    g4c_err err = {0};
    if (g4c_session_init(&s, m, &sp, &err) != G4C_OK) {
        if (device >= 0) fprintf(stderr, "  session (device %d): %s\n", device, err.msg);
        else fprintf(stderr, "  session: %s\n", err.msg);
    }
    return s;
}

/* Worst per-position relative L2 error of lg against want ([n][V]), and (*at) its position. nan_worst: a NaN
 * position counts as worse than any (else it is passed over). */
static inline double fixture_worst_rel(const float *lg, const float *want, int n, int64_t V, int nan_worst, int *at) {
    double worst = 0;
    for (int t = 0; t < n; t++) {
        const double e = test_rel_l2(lg + (size_t)t * V, want + (size_t)t * V, (size_t)V);
        if (nan_worst ? !(e <= worst) : e > worst) worst = e, *at = t;
    }
    return worst;
}

/* fix/ref/img/<tag>.resized.npy, a resized uint8 image [th][tw][3] -> patches [n][768] ((row, col, channel) inside a
 * patch, patches row-major), positions (x, y); values u8 · (1/255) in f32 like torch's rescale. Returns n (0: no
 * image); the caller frees both. */
static inline int fixture_patchify(const char *fix, const char *tag, float **patches, int32_t **pos) {
    char path[512];
    snprintf(path, sizeof path, "%s/ref/img/%s.resized.npy", fix, tag);
    float *img;
    int nd;
    int64_t sh[4];
    g4c_err err = {0};
    if (g4c_npy_read_f32(path, &img, &nd, sh, &err) != G4C_OK) {
        fprintf(stderr, "  %s\n", err.msg);
        return 0;
    }
    const int th = (int)sh[0], tw = (int)sh[1], ph = th / 16, pw = tw / 16, n = ph * pw;
    *patches = malloc(sizeof(float) * (size_t)n * 768);
    *pos = malloc(sizeof(int32_t) * (size_t)n * 2);
    const float scale = (float)(1.0 / 255.0);
    for (int r = 0; r < ph; r++)
        for (int c = 0; c < pw; c++) {
            const int i = r * pw + c;
            (*pos)[2 * i] = c;
            (*pos)[2 * i + 1] = r;
            for (int py = 0; py < 16; py++)
                for (int px = 0; px < 16; px++)
                    for (int ch = 0; ch < 3; ch++)
                        (*patches)[(size_t)i * 768 + (py * 16 + px) * 3 + ch] =
                            img[((size_t)(r * 16 + py) * tw + (c * 16 + px)) * 3 + ch] * scale;
        }
    free(img);
    return n;
}

/* g4c_model_load(dir) must fail with `code` and a message holding needle1 (and needle2 unless NULL). */
static inline void fixture_expect_load_error(const char *dir, g4c_status code, const char *needle1,
                                             const char *needle2) {
    g4c_model *m = NULL;
    g4c_err err = {0};
    g4c_status st = g4c_model_load(&m, dir, NULL, &err);
    CHECKF(st == code && m == NULL, "status %d (%s), want %d", st, err.msg, code);
    CHECKF(strstr(err.msg, needle1) && (!needle2 || strstr(err.msg, needle2)), "message '%s' lacks '%s'/'%s'",
           err.msg, needle1, needle2 ? needle2 : "");
    g4c_model_free(m);
}

/* One tensor changed in a rewritten safetensors file (malformed-checkpoint tests). */
typedef struct {
    const char *name;  /* tensor to change */
    int drop;          /* 1: leave it out */
    const char *dtype; /* new dtype name (same byte size), or NULL */
    int ndim;          /* > 0: new shape (same byte size) */
    int64_t shape[4];
} fixture_tensor_edit;

/* Rewrite the safetensors file src as dst with ed applied (NULL: unchanged), offsets contiguous. */
static inline void fixture_write_st(const char *src, const char *dst, const fixture_tensor_edit *ed) {
    g4c_tensor_set *ts;
    CHECK(g4c_st_open_file(&ts, src, NULL) == G4C_OK);
    cJSON *h = cJSON_CreateObject();
    size_t off = 0;
    for (int i = 0; i < ts->n_tensors; i++) {
        const g4c_st_tensor *t = &ts->tensors[i];
        const int hit = ed && !strcmp(t->name, ed->name);
        if (hit && ed->drop) continue;
        cJSON *e = cJSON_AddObjectToObject(h, t->name);
        cJSON_AddStringToObject(e, "dtype", hit && ed->dtype ? ed->dtype : g4c_dtype_infos[t->dtype].name);
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        const int nd = hit && ed->ndim ? ed->ndim : t->ndim;
        for (int d = 0; d < nd; d++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)(hit && ed->ndim ? ed->shape[d] : t->shape[d])));
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(off + t->size_bytes)));
        off += t->size_bytes;
    }
    char *js = cJSON_PrintUnformatted(h);
    uint64_t n = strlen(js);
    FILE *f = fopen(dst, "wb");
    CHECK(f != NULL);
    if (f) {
        unsigned char len[8];
        for (int i = 0; i < 8; i++) len[i] = (unsigned char)(n >> (8 * i));
        fwrite(len, 1, 8, f);
        fwrite(js, 1, n, f);
        for (int i = 0; i < ts->n_tensors; i++)
            if (!(ed && ed->drop && !strcmp(ts->tensors[i].name, ed->name)))
                fwrite(ts->tensors[i].data, 1, ts->tensors[i].size_bytes, f);
        fclose(f);
    }
    free(js);
    cJSON_Delete(h);
    g4c_st_free(ts);
}

/* The text fixtures, one test each (test_model, test_cuda): FIXTURE_TEXT_TESTS(check) defines test_dense_f32 ...
 * test_text_only_layout as check(tag); FIXTURE_RUN_TEXT_TESTS() runs them in that order. */
#define FIXTURE_TEXT_TESTS(check)                                                            \
    static void test_dense_f32(void) { check("dense-f32"); }                                 \
    static void test_dense_bf16(void) { check("dense-bf16"); }                               \
    static void test_moe_f32(void) { check("moe-f32"); }                                     \
    static void test_moe_bf16(void) { check("moe-bf16"); }                                   \
    static void test_e_f32(void) { check("e-f32"); }                                         \
    static void test_e_bf16(void) { check("e-bf16"); }                                       \
    static void test_text_only_layout(void) { check("dense-text-f32"); }

#define FIXTURE_RUN_TEXT_TESTS()                                                             \
    do {                                                                                     \
        RUN(test_dense_f32);                                                                 \
        RUN(test_dense_bf16);                                                                \
        RUN(test_moe_f32);                                                                   \
        RUN(test_moe_bf16);                                                                  \
        RUN(test_e_f32);                                                                     \
        RUN(test_e_bf16);                                                                    \
        RUN(test_text_only_layout);                                                          \
    } while (0)

/* Remove a scratch directory and everything below it. Not inline: inlined, it trips -Wformat-truncation. */
__attribute__((unused)) static void fixture_rm_rf(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (!lstat(p, &sb) && S_ISDIR(sb.st_mode)) fixture_rm_rf(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

#endif
