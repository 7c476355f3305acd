/* Allocation-failure injection for the loaders (issue 10, item 4; docs/SECURITY.md).
 *
 * For every loader and every N = 1, 2, ... the N-th allocation the load makes fails; the loop ends at the first N
 * the load never reaches. Each failing load must return an error with a message, leave its out pointer NULL, and
 * release everything it took: no live allocation (tracked here, so the release build checks it too; the ASan build
 * adds LeakSanitizer), no open file descriptor. A load that succeeds although one of its allocations failed must
 * give exactly what the undisturbed load gives (a fingerprint of the result).
 *
 * Mechanism (test only, nothing in the library): this executable is linked with -Wl,--wrap for malloc, calloc,
 * realloc, free, strdup, strndup, aligned_alloc and posix_memalign, so every call the statically linked g4c
 * libraries make goes through the counting wrappers below, and cJSON (a shared library) is routed through them
 * with cJSON_InitHooks. Allocations inside libc itself (fopen's buffer) and other shared libraries are not
 * counted. */
#include <dirent.h>
#include <stdarg.h>
#include <unistd.h>

#include "eval/eval.h"
#include "formats/formats.h"
#include "gemma4c.h"
#include "image/image.h"
#include "model/model.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

/* ---- counting allocator -------------------------------------------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t s);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);

static int armed;              /* count (and fail) only while a load runs */
static long long n_allocs;     /* allocations seen while armed */
static long long fail_at = -1; /* the allocation (1-based) that fails */

/* Live pointers allocated while armed: open addressing, tombstones on removal. */
#define LIVE_CAP (1u << 20)
static void **live;
static size_t n_live;
#define TOMB ((void *)1)

static size_t live_slot(void *p) {
    return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull >> 44) & (LIVE_CAP - 1);
}
static void live_add(void *p) {
    if (!p) return;
    for (size_t i = live_slot(p);; i = (i + 1) & (LIVE_CAP - 1))
        if (!live[i] || live[i] == TOMB) { live[i] = p; n_live++; return; }
}
static void live_del(void *p) {
    if (!p || !n_live) return;
    for (size_t i = live_slot(p); live[i]; i = (i + 1) & (LIVE_CAP - 1))
        if (live[i] == p) { live[i] = TOMB; n_live--; return; }
}
static void live_clear(void) {
    memset(live, 0, sizeof(void *) * LIVE_CAP);
    n_live = 0;
}

static int inject(void) {
    if (!armed) return 0;
    return ++n_allocs == fail_at;
}

void *__wrap_malloc(size_t n) {
    if (inject()) return NULL;
    void *p = __real_malloc(n);
    if (armed) live_add(p);
    return p;
}
void *__wrap_calloc(size_t n, size_t s) {
    if (inject()) return NULL;
    void *p = __real_calloc(n, s);
    if (armed) live_add(p);
    return p;
}
void *__wrap_realloc(void *old, size_t n) {
    if (inject()) return NULL;
    void *p = __real_realloc(old, n);
    if (armed && p) live_del(old), live_add(p);
    return p;
}
void __wrap_free(void *p) {
    if (armed) live_del(p);
    __real_free(p);
}
char *__wrap_strdup(const char *s) {
    if (inject()) return NULL;
    char *p = __real_strdup(s);
    if (armed) live_add(p);
    return p;
}
char *__wrap_strndup(const char *s, size_t n) {
    if (inject()) return NULL;
    char *p = __real_strndup(s, n);
    if (armed) live_add(p);
    return p;
}
void *__wrap_aligned_alloc(size_t a, size_t n) {
    if (inject()) return NULL;
    void *p = __real_aligned_alloc(a, n);
    if (armed) live_add(p);
    return p;
}
int __wrap_posix_memalign(void **out, size_t a, size_t n) {
    if (inject()) return 12; /* ENOMEM */
    int r = __real_posix_memalign(out, a, n);
    if (armed && !r) live_add(*out);
    return r;
}
static void *hook_malloc(size_t n) { return __wrap_malloc(n); }
static void hook_free(void *p) { __wrap_free(p); }

/* The fingerprints run unarmed: they are checks, not part of the load. */
#define UNARMED(stmt)            \
    do {                         \
        const int was_ = armed;  \
        armed = 0;               \
        stmt;                    \
        armed = was_;            \
    } while (0)

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

/* ---- the loaders ------------------------------------------------------------------------------------------------
 * Each loads, fingerprints what it got (FNV-1a over what the load produced), frees it, and returns the status. */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ull;
    return h;
}
#define FNV0 0xcbf29ce484222325ull

static uint64_t fp_tensors(const g4c_tensor_set *ts) {
    uint64_t h = fnv(FNV0, &ts->n_tensors, sizeof ts->n_tensors);
    for (int i = 0; i < ts->n_tensors; i++) {
        const g4c_st_tensor *t = &ts->tensors[i];
        h = fnv(h, t->name, strlen(t->name));
        h = fnv(h, &t->dtype, sizeof t->dtype);
        h = fnv(h, t->shape, sizeof(int64_t) * (size_t)t->ndim);
        h = fnv(h, &t->size_bytes, sizeof t->size_bytes);
        if (t->size_bytes) h = fnv(h, t->data, t->size_bytes < 64 ? t->size_bytes : 64);
    }
    return h;
}

static uint64_t fp_config(const g4c_config *c) {
    uint64_t h = fnv(FNV0, &c->n_layer, sizeof c->n_layer);
    h = fnv(h, &c->n_embd, sizeof c->n_embd);
    h = fnv(h, &c->n_vocab, sizeof c->n_vocab);
    h = fnv(h, c->layers, sizeof *c->layers * (size_t)c->n_layer);
    return h;
}

static uint64_t fp_tok(const g4c_tokenizer *t) {
    int nv = g4c_tok_n_vocab(t);
    uint64_t h = fnv(FNV0, &nv, sizeof nv);
    for (int i = 0; i < nv; i++) {
        const char *p = g4c_tok_piece(t, i);
        if (p) h = fnv(h, p, strlen(p) + 1);
    }
    int32_t ids[64];
    g4c_err err = {0};
    const char *s = "hello world <|turn>user\n\xc3\xa9\xff";
    int n = g4c_tok_encode(t, s, strlen(s), 1, ids, 64, &err);
    h = fnv(h, &n, sizeof n);
    if (n > 0) h = fnv(h, ids, sizeof(int32_t) * (size_t)(n < 64 ? n : 64));
    return h;
}

typedef g4c_status (*load_fn)(const char *path, uint64_t *fp, g4c_err *err);

static g4c_status load_st(const char *dir, uint64_t *fp, g4c_err *err) {
    g4c_tensor_set *ts = (g4c_tensor_set *)1;
    g4c_status st = g4c_st_open_dir(&ts, dir, err);
    if (st != G4C_OK) { CHECK(ts == NULL); return st; }
    UNARMED(*fp = fp_tensors(ts));
    g4c_st_free(ts);
    return st;
}

static g4c_status load_config(const char *path, uint64_t *fp, g4c_err *err) {
    g4c_config c;
    g4c_status st = g4c_config_load(&c, path, err);
    if (st != G4C_OK) return st;
    UNARMED(*fp = fp_config(&c));
    g4c_config_free(&c);
    return st;
}

static g4c_status load_tok(const char *path, uint64_t *fp, g4c_err *err) {
    g4c_tokenizer *t = (g4c_tokenizer *)1;
    g4c_status st = g4c_tok_load(&t, path, err);
    if (st != G4C_OK) { CHECK(t == NULL); return st; }
    UNARMED(*fp = fp_tok(t));
    g4c_tok_free(t);
    return st;
}

/* A gemma4 GGUF: the file, then the model config and the tokenizer from its metadata. */
static g4c_status load_gguf(const char *path, uint64_t *fp, g4c_err *err) {
    g4c_gguf *g = (g4c_gguf *)1;
    g4c_status st = g4c_gguf_open(&g, path, err);
    if (st != G4C_OK) { CHECK(g == NULL); return st; }
    uint64_t h = 0;
    UNARMED(h = fp_tensors(g->ts));
    g4c_config c;
    if ((st = g4c_config_from_gguf(&c, g, err)) == G4C_OK) {
        UNARMED(h ^= fp_config(&c));
        g4c_config_free(&c);
        g4c_tokenizer *t = (g4c_tokenizer *)1;
        if ((st = g4c_tok_from_gguf(&t, g, err)) == G4C_OK) {
            UNARMED(h ^= fp_tok(t) * 3);
            g4c_tok_free(t);
        } else {
            CHECK(t == NULL);
        }
    }
    g4c_gguf_free(g);
    *fp = h;
    return st;
}

/* A gemma4v mmproj GGUF: the file and its vision config. */
static g4c_status load_mmproj(const char *path, uint64_t *fp, g4c_err *err) {
    g4c_gguf *g = NULL;
    g4c_status st = g4c_gguf_open(&g, path, err);
    if (st != G4C_OK) return st;
    g4c_vision_cfg v;
    memset(&v, 0, sizeof v);
    st = g4c_vision_cfg_from_gguf(&v, g, err);
    UNARMED(*fp = fp_tensors(g->ts) ^ fnv(FNV0, &v, sizeof v));
    g4c_gguf_free(g);
    return st;
}

/* config.json + safetensors + the name/shape binding of every weight (what g4c_model_load does before the pool). */
static g4c_status load_weights(const char *dir, uint64_t *fp, g4c_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    g4c_config c;
    g4c_status st = g4c_config_load(&c, path, err);
    if (st != G4C_OK) return st;
    g4c_tensor_set *ts = NULL;
    if ((st = g4c_st_open_dir(&ts, dir, err)) == G4C_OK) {
        g4c_weights w;
        memset(&w, 0, sizeof w);
        if ((st = g4c_weights_bind(&w, &c, ts, err)) == G4C_OK) {
            UNARMED(*fp = fp_tensors(ts) ^ fp_config(&c));
            g4c_weights_free(&w);
        }
        g4c_st_free(ts);
    }
    g4c_config_free(&c);
    return st;
}

/* The public API: a whole model (config, weights, vision tower, thread pool). */
static g4c_status load_model(const char *path, uint64_t *fp, g4c_err *err) {
    g4c_model *m = (g4c_model *)1;
    g4c_model_params mp = g4c_model_default_params();
    mp.n_threads = 1;
    g4c_status st = g4c_model_load(&m, path, &mp, err);
    if (st != G4C_OK) { CHECK(m == NULL); return st; }
    int v[3] = {g4c_model_n_vocab(m), g4c_model_n_layer(m), g4c_model_n_ctx_train(m)};
    *fp = fnv(FNV0, v, sizeof v);
    g4c_model_free(m);
    return st;
}

/* Benchmark data (src/eval/datasets.c): the path names the loader by its prefix ("coco:", "vqa:" = questions and
 * annotations in one file, "mvqa:" / "mcoco:" = JSONL manifests), then indexes the set. */
static uint64_t fp_set(const eval_set *s) {
    uint64_t h = fnv(FNV0, &s->n, sizeof s->n);
    for (int i = 0; i < s->n; i++) {
        const eval_sample *e = &s->s[i];
        h = fnv(h, e->key, strlen(e->key) + 1);
        h = fnv(h, e->image, strlen(e->image) + 1);
        if (e->question) h = fnv(h, e->question, strlen(e->question) + 1);
        if (e->mc_answer) h = fnv(h, e->mc_answer, strlen(e->mc_answer) + 1);
        if (e->qtype) h = fnv(h, e->qtype, strlen(e->qtype) + 1);
        if (e->atype) h = fnv(h, e->atype, strlen(e->atype) + 1);
        for (int k = 0; k < e->n_answers; k++) h = fnv(h, e->answers[k], strlen(e->answers[k]) + 1);
        h = fnv(h, e->gt, sizeof *e->gt * (size_t)e->n_gt);
    }
    return h;
}

static g4c_status load_dataset(const char *spec, uint64_t *fp, g4c_err *err) {
    const char *path = strchr(spec, ':') + 1;
    eval_set s;
    g4c_status st = !strncmp(spec, "coco:", 5)   ? eval_load_coco(&s, path, "images", err)
                    : !strncmp(spec, "vqa:", 4)  ? eval_load_vqa(&s, path, path, "images", err)
                    : !strncmp(spec, "mvqa:", 5) ? eval_load_manifest(&s, EVAL_VQA, path, err)
                                                 : eval_load_manifest(&s, EVAL_COCO, path, err);
    if (st != G4C_OK) return st;
    if ((st = eval_set_index(&s, err)) == G4C_OK) UNARMED(*fp = fp_set(&s));
    eval_set_free(&s);
    return st;
}

/* An image file: decode (PNG / JPEG through libpng / libjpeg, whose own allocations are not counted) and the
 * model's preprocessing at the smallest budget. */
static g4c_status load_image(const char *path, uint64_t *fp, g4c_err *err) {
    g4c_image img;
    g4c_status st = g4c_image_load(&img, path, 0, err);
    if (st != G4C_OK) {
        CHECK(!img.rgb && !img.width && !img.height);
        return st;
    }
    g4c_image_patches p;
    if ((st = g4c_image_preprocess(&img, 70, &p, err)) == G4C_OK) {
        UNARMED(*fp = fnv(fnv(FNV0, img.rgb, (size_t)img.width * (size_t)img.height * 3), p.patches,
                          sizeof(float) * (size_t)p.n_patches * G4C_IMAGE_PATCH_DIM));
        g4c_image_patches_free(&p);
    }
    g4c_image_free(&img);
    return st;
}

/* ---- the loop ---------------------------------------------------------------------------------------------------- */

static void sweep(const char *name, load_fn fn, const char *rel) {
    char path[4096];
    if (fn == load_dataset) snprintf(path, sizeof path, "%s", rel); /* a loader prefix and a full path */
    else snprintf(path, sizeof path, "%s/%s", rel[0] == '@' ? G4C_FUZZ_CORPUS : G4C_FIXTURES, rel + (rel[0] == '@'));
    g4c_err err = {0};
    uint64_t want = 0, got = 0;
    const int fds = count_fds();
    /* the undisturbed load: must succeed, and counts the allocations */
    live_clear();
    n_allocs = 0, fail_at = -1, armed = 1;
    g4c_status st = fn(path, &want, &err);
    armed = 0;
    CHECKF(st == G4C_OK, "%s: %s", name, err.msg);
    if (st != G4C_OK) return;
    CHECKF(n_live == 0, "%s: %zu allocations still live after the free", name, n_live);
    const long long total = n_allocs;
    long long failed = 0, recovered = 0, bad = 0;
    for (long long n = 1; n <= total; n++) {
        live_clear();
        err = (g4c_err){0};
        n_allocs = 0, fail_at = n, armed = 1;
        got = 0;
        st = fn(path, &got, &err);
        armed = 0;
        const int ok_msg = st == G4C_OK || err.msg[0];
        const int ok_result = st != G4C_OK || got == want;
        const int ok_live = n_live == 0, ok_fd = count_fds() == fds;
        if (!ok_msg || !ok_result || !ok_live || !ok_fd) {
            if (bad++ < 8)
                fprintf(stderr, "  %s: allocation %lld of %lld fails: status %d \"%s\"%s%s%s%s\n", name, n, total,
                        (int)st, err.msg, ok_msg ? "" : ", no message", ok_result ? "" : ", success with a different result",
                        ok_live ? "" : ", allocations leaked", ok_fd ? "" : ", a file descriptor leaked");
        }
        if (st == G4C_OK) recovered++;
        else failed++;
    }
    CHECKF(bad == 0, "%s: %lld of %lld injected failures mishandled", name, bad, total);
    printf("     %-28s %6lld allocations: %lld clean errors, %lld loads unaffected\n", name, total, failed, recovered);
    fflush(stdout);
}

static void t_safetensors(void) { sweep("safetensors dense-f32", load_st, "dense-f32"); }
static void t_safetensors_sharded(void) { sweep("safetensors moe-f32 (29 shards)", load_st, "moe-f32"); }
static void t_config(void) {
    sweep("config dense-f32", load_config, "dense-f32/config.json");
    sweep("config dense-f32 legacy", load_config, "dense-f32/config_legacy.json");
    sweep("config e-f32", load_config, "e-f32/config.json");
    sweep("config moe-f32", load_config, "moe-f32/config.json");
    sweep("config mlx-moe-4bit", load_config, "mlx-moe-4bit/config.json");
}
static void t_tokenizer(void) {
    sweep("tokenizer mini.json", load_tok, "tokenizer/mini.json");
    sweep("tokenizer sequence.json", load_tok, "@tokenizer/sequence.json");
    sweep("tokenizer pair_merges.json", load_tok, "@tokenizer/pair_merges.json");
}
static void t_gguf(void) {
    sweep("gguf tiny-gemma4", load_gguf, "@gguf/tiny-gemma4.gguf");
    sweep("gguf tiny-mmproj", load_mmproj, "@gguf/tiny-mmproj.gguf");
}
static void t_weights(void) {
    sweep("weights dense-f32", load_weights, "dense-f32");
    sweep("weights e-bf16", load_weights, "e-bf16");
    sweep("weights mlx-e-4bit", load_weights, "mlx-e-4bit");
}
static void t_image(void) {
    sweep("image tiny.png", load_image, "images/tiny.png");
    sweep("image chelsea_palette.png", load_image, "images/chelsea_palette.png");
    sweep("image camera_16bit.png", load_image, "images/camera_16bit.png");
    sweep("image coffee.jpg", load_image, "images/coffee.jpg");
    sweep("image coffee_cmyk.jpg", load_image, "images/coffee_cmyk.jpg");
}
static void put_tmp(char *path, size_t size, const char *name, const char *text) {
    snprintf(path, size, "%s/g4c-allocfail-%d-%s", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid(), name);
    FILE *f = fopen(path, "wb");
    CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0);
}
static void t_datasets(void) {
    char spec[4200], p1[1024], p2[1024];
    put_tmp(p1, sizeof p1, "coco.json",
            "{\"images\":[{\"id\":1,\"file_name\":\"a.jpg\",\"width\":640,\"height\":480},{\"id\":2}],"
            "\"categories\":[{\"id\":1,\"name\":\"person\"},{\"id\":3,\"name\":\"car\"},{\"id\":9,\"name\":\"x\"}],"
            "\"annotations\":[{\"image_id\":1,\"category_id\":1,\"bbox\":[10,20,100,200]},{\"image_id\":1,"
            "\"category_id\":3,\"bbox\":[0,0,40,40]},{\"image_id\":2,\"category_id\":9,\"bbox\":[1,1,50,50]},"
            "{\"image_id\":2,\"category_id\":1,\"bbox\":[5,5,60,60]}]}");
    put_tmp(p2, sizeof p2, "vqa.json",
            "{\"data_subtype\":\"val2014\",\"questions\":[{\"question_id\":11,\"image_id\":1,\"question\":\"What?\"},"
            "{\"question_id\":12,\"image_id\":2,\"question\":\"How many?\"}],\"annotations\":[{\"question_id\":11,"
            "\"multiple_choice_answer\":\"red\",\"question_type\":\"what\",\"answer_type\":\"other\",\"answers\":"
            "[{\"answer\":\"red\"},{\"answer\":\"dark red\"}]},{\"question_id\":12,\"answers\":[\"2\",\"two\",\"2\"]}]}");
    snprintf(spec, sizeof spec, "coco:%s", p1);
    sweep("datasets COCO instances", load_dataset, spec);
    snprintf(spec, sizeof spec, "vqa:%s", p2);
    sweep("datasets VQAv2", load_dataset, spec);
    snprintf(spec, sizeof spec, "mvqa:%s/samples/vqa.jsonl", G4C_DATA);
    sweep("datasets VQA manifest", load_dataset, spec);
    snprintf(spec, sizeof spec, "mcoco:%s/samples/coco.jsonl", G4C_DATA);
    sweep("datasets COCO manifest", load_dataset, spec);
    remove(p1);
    remove(p2);
}
static void t_model(void) { sweep("model dense-f32", load_model, "dense-f32"); }

int main(void) {
    live = __real_calloc(LIVE_CAP, sizeof(void *));
    if (!live) return 1;
    cJSON_Hooks hooks = {hook_malloc, hook_free};
    cJSON_InitHooks(&hooks);
    if (!getenv("ONLY_DS")) RUN(t_config);
    RUN(t_tokenizer);
    RUN(t_safetensors);
    RUN(t_safetensors_sharded);
    RUN(t_gguf);
    RUN(t_weights);
    RUN(t_model);
    RUN(t_datasets);
    RUN(t_image);
    return TEST_REPORT();
}
