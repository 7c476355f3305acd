/* Streaming GGUF v3 writer. The metadata is serialized into memory as it is declared (tokenizer vocabularies are a
 * few MB; the weights never are); tensors are declared up front so that open can write every tensor info with its
 * offset; then the tensor bytes are streamed in declaration order, each tensor padded to the alignment, as ggml's
 * reader requires (offset[i] = offset[i-1] + pad(size[i-1])). Output goes to PATH.tmp and is renamed into place by
 * finish, so a failed or interrupted write leaves nothing behind. Everything written here passes gguf.c's rules. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "formats/formats.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "GGUF arrays are copied in host byte order: little-endian hosts only"
#endif

typedef struct { uint8_t *p; size_t n, cap; } bytes;

typedef struct {
    char *key;
    size_t at, len; /* the serialized value (type tag included) in w->vals */
} wkv;

typedef struct {
    char *name;
    g4c_dtype dtype;
    int ndim;
    int64_t shape[G4C_MAX_DIMS];
    uint64_t nbytes, offset;
} wtensor;

struct g4c_gguf_writer {
    wkv *kv;
    int n_kv, cap_kv;
    bytes vals;
    wtensor *t;
    int n_t, cap_t;
    uint32_t alignment;
    char *path, *tmp;
    FILE *f;
    int cur;           /* tensor being written */
    uint64_t cur_done; /* its bytes written so far */
    int finished, created, failed;
};

static int grow(bytes *b, size_t n) {
    if (n <= b->cap - b->n) return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->n < n) {
        if (cap > SIZE_MAX / 2) return 0;
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p) return 0;
    b->p = p;
    b->cap = cap;
    return 1;
}

static int put(bytes *b, const void *d, size_t n) {
    if (!grow(b, n)) return 0;
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
    return 1;
}

static int put_le(bytes *b, uint64_t v, int k) {
    uint8_t t[8];
    for (int i = 0; i < k; i++) t[i] = (uint8_t)(v >> (8 * i));
    return put(b, t, (size_t)k);
}

static int put_str(bytes *b, const char *s, size_t n) { return put_le(b, n, 8) && put(b, s, n); }

g4c_status g4c_ggw_new(g4c_gguf_writer **out, g4c_err *err) {
    *out = g4c_calloc(1, sizeof **out, err);
    return *out ? G4C_OK : G4C_E_NOMEM;
}

void g4c_ggw_free(g4c_gguf_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    if (w->created && !w->finished) unlink(w->tmp); /* never leave a partial file */
    for (int i = 0; i < w->n_kv; i++) free(w->kv[i].key);
    for (int i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w->vals.p);
    free(w->path);
    free(w->tmp);
    free(w);
}

/* Start the value of key: returns the record (new, or the existing one being replaced). */
static g4c_status begin_kv(g4c_gguf_writer *w, const char *key, wkv **out, g4c_err *err) {
    if (w->f || w->finished) return G4C_FAIL(err, G4C_E_ARG, "GGUF writer: metadata after open");
    size_t kl = key ? strlen(key) : 0;
    if (!kl || kl > G4C_GGUF_MAX_KEY) return G4C_FAIL(err, G4C_E_ARG, "GGUF writer: bad metadata key");
    if (!strcmp(key, "general.alignment"))
        return G4C_FAIL(err, G4C_E_ARG, "GGUF writer: general.alignment is set by open");
    for (int i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            *out = &w->kv[i];
            return G4C_OK;
        }
    if (w->n_kv == w->cap_kv) {
        int cap = w->cap_kv ? 2 * w->cap_kv : 64;
        wkv *g = realloc(w->kv, sizeof *g * (size_t)cap);
        if (!g) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
        w->kv = g;
        w->cap_kv = cap;
    }
    wkv *k = &w->kv[w->n_kv];
    if (!(k->key = strdup(key))) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    w->n_kv++;
    *out = k;
    return G4C_OK;
}

/* Record that the value of k is vals[at, end) (an older value stays in the buffer, unreferenced). */
static g4c_status end_kv(g4c_gguf_writer *w, wkv *k, size_t at, int ok, g4c_err *err) {
    if (!ok) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory for GGUF metadata %s", k->key);
    k->at = at;
    k->len = w->vals.n - at;
    return G4C_OK;
}

static g4c_status kv_scalar(g4c_gguf_writer *w, const char *key, g4c_gguf_type t, uint64_t bits, int k,
                            g4c_err *err) {
    wkv *r;
    G4C_TRY(begin_kv(w, key, &r, err));
    size_t at = w->vals.n;
    return end_kv(w, r, at, put_le(&w->vals, (uint64_t)t, 4) && put_le(&w->vals, bits, k), err);
}

g4c_status g4c_ggw_kv_u32(g4c_gguf_writer *w, const char *key, uint32_t v, g4c_err *err) {
    return kv_scalar(w, key, G4C_GGUF_U32, v, 4, err);
}
g4c_status g4c_ggw_kv_i32(g4c_gguf_writer *w, const char *key, int32_t v, g4c_err *err) {
    return kv_scalar(w, key, G4C_GGUF_I32, (uint32_t)v, 4, err);
}
g4c_status g4c_ggw_kv_f32(g4c_gguf_writer *w, const char *key, float v, g4c_err *err) {
    uint32_t u;
    memcpy(&u, &v, 4);
    return kv_scalar(w, key, G4C_GGUF_F32, u, 4, err);
}
g4c_status g4c_ggw_kv_bool(g4c_gguf_writer *w, const char *key, int v, g4c_err *err) {
    return kv_scalar(w, key, G4C_GGUF_BOOL, v ? 1 : 0, 1, err);
}

g4c_status g4c_ggw_kv_str(g4c_gguf_writer *w, const char *key, const char *s, size_t len, g4c_err *err) {
    wkv *r;
    G4C_TRY(begin_kv(w, key, &r, err));
    size_t at = w->vals.n;
    return end_kv(w, r, at, put_le(&w->vals, G4C_GGUF_STR, 4) && put_str(&w->vals, s, len), err);
}

static const uint8_t ELEM_SIZE[G4C_GGUF_NTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

g4c_status g4c_ggw_kv_arr(g4c_gguf_writer *w, const char *key, g4c_gguf_type t, const void *data, uint64_t n,
                          g4c_err *err) {
    if ((unsigned)t >= G4C_GGUF_NTYPES || !ELEM_SIZE[t])
        return G4C_FAIL(err, G4C_E_ARG, "GGUF writer: %s: arrays of %s need g4c_ggw_kv_arr_str", key,
                        g4c_gguf_type_name(t));
    if (n > SIZE_MAX / 8) return G4C_FAIL(err, G4C_E_ARG, "GGUF writer: %s: array too long", key);
    wkv *r;
    G4C_TRY(begin_kv(w, key, &r, err));
    size_t at = w->vals.n;
    int ok = put_le(&w->vals, G4C_GGUF_ARR, 4) && put_le(&w->vals, (uint64_t)t, 4) && put_le(&w->vals, n, 8);
    if (ok && t == G4C_GGUF_BOOL) {
        const uint8_t *b = data;
        for (uint64_t i = 0; ok && i < n; i++) ok = put_le(&w->vals, b[i] ? 1 : 0, 1);
    } else if (ok) {
        ok = put(&w->vals, data, (size_t)n * ELEM_SIZE[t]); /* host order = little-endian (checked above) */
    }
    return end_kv(w, r, at, ok, err);
}

g4c_status g4c_ggw_kv_arr_str(g4c_gguf_writer *w, const char *key, const char *const *s, const size_t *lens,
                              uint64_t n, g4c_err *err) {
    wkv *r;
    G4C_TRY(begin_kv(w, key, &r, err));
    size_t at = w->vals.n;
    int ok = put_le(&w->vals, G4C_GGUF_ARR, 4) && put_le(&w->vals, G4C_GGUF_STR, 4) && put_le(&w->vals, n, 8);
    for (uint64_t i = 0; ok && i < n; i++) ok = put_str(&w->vals, s[i], lens ? lens[i] : strlen(s[i]));
    return end_kv(w, r, at, ok, err);
}

g4c_status g4c_ggw_kv_copy(g4c_gguf_writer *w, const g4c_gguf_kv *kv, g4c_err *err) {
    char key[G4C_GGUF_MAX_KEY + 1];
    memcpy(key, kv->key, kv->key_len);
    key[kv->key_len] = 0;
    wkv *r;
    G4C_TRY(begin_kv(w, key, &r, err));
    size_t at = w->vals.n;
    int ok = put_le(&w->vals, (uint64_t)kv->type, 4);
    if (kv->type == G4C_GGUF_ARR) ok = ok && put_le(&w->vals, (uint64_t)kv->arr_type, 4) && put_le(&w->vals, kv->n, 8);
    if (kv->type == G4C_GGUF_STR) ok = ok && put_le(&w->vals, kv->size, 8);
    ok = ok && put(&w->vals, kv->data, kv->size); /* validated by the reader: nested values are self-describing */
    return end_kv(w, r, at, ok, err);
}

g4c_status g4c_ggw_add_tensor(g4c_gguf_writer *w, const char *name, g4c_dtype dtype, int ndim, const int64_t *shape,
                              g4c_err *err) {
    if (w->f || w->finished) return G4C_FAIL(err, G4C_E_ARG, "GGUF writer: tensor after open");
    size_t nl = name ? strlen(name) : 0;
    if (!nl || nl > G4C_GGUF_MAX_NAME || (int)dtype < 0 || dtype >= G4C_DTYPE_COUNT ||
        g4c_dtype_infos[dtype].ggml_type < 0 || ndim < 0 || ndim > G4C_MAX_DIMS)
        return G4C_FAIL(err, G4C_E_ARG, "GGUF writer: bad tensor %s", name ? name : "(null)");
    const int blk = g4c_dtype_infos[dtype].block;
    if (blk > 1 && (!ndim || shape[ndim - 1] % blk))
        return G4C_FAIL(err, G4C_E_ARG, "GGUF writer: %s: rows of %lld are not a multiple of the %s block of %d", name,
                        ndim ? (long long)shape[ndim - 1] : 0LL, g4c_dtype_infos[dtype].name, blk);
    uint64_t numel = 1;
    int ok = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return G4C_FAIL(err, G4C_E_ARG, "GGUF writer: %s: negative dimension", name);
        numel = g4c_mul_u64(numel, (uint64_t)shape[i], &ok);
    }
    uint64_t nbytes = g4c_mul_u64(numel / (uint64_t)blk, g4c_dtype_infos[dtype].size, &ok);
    if (!ok || nbytes > (UINT64_C(1) << 56)) return G4C_FAIL(err, G4C_E_ARG, "GGUF writer: %s: size overflows", name);
    for (int i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) return G4C_FAIL(err, G4C_E_ARG, "GGUF writer: tensor %s added twice", name);
    if (w->n_t == w->cap_t) {
        int cap = w->cap_t ? 2 * w->cap_t : 256;
        wtensor *g = realloc(w->t, sizeof *g * (size_t)cap);
        if (!g) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
        w->t = g;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->nbytes = nbytes;
    w->n_t++;
    return G4C_OK;
}

int g4c_ggw_n_tensors(const g4c_gguf_writer *w) { return w->n_t; }
uint64_t g4c_ggw_tensor_bytes(const g4c_gguf_writer *w, int i) { return i >= 0 && i < w->n_t ? w->t[i].nbytes : 0; }

static g4c_status out(g4c_gguf_writer *w, const void *d, size_t n, g4c_err *err) {
    if (n && fwrite(d, 1, n, w->f) != n) {
        w->failed = 1;
        return G4C_FAIL(err, G4C_E_IO, "%s: write failed: %s", w->tmp, strerror(errno));
    }
    return G4C_OK;
}

static g4c_status pad(g4c_gguf_writer *w, uint64_t at, g4c_err *err) {
    static const uint8_t zeros[256];
    uint64_t k = (w->alignment - at % w->alignment) % w->alignment;
    while (k) {
        size_t n = k > sizeof zeros ? sizeof zeros : (size_t)k;
        G4C_TRY(out(w, zeros, n, err));
        k -= n;
    }
    return G4C_OK;
}

/* Advance past finished (or empty) tensors, writing the padding after each. */
static g4c_status advance(g4c_gguf_writer *w, g4c_err *err) {
    while (w->cur < w->n_t && w->cur_done == w->t[w->cur].nbytes) {
        G4C_TRY(pad(w, w->t[w->cur].nbytes, err));
        w->cur++;
        w->cur_done = 0;
    }
    return G4C_OK;
}

g4c_status g4c_ggw_open(g4c_gguf_writer *w, const char *path, uint32_t alignment, g4c_err *err) {
    if (w->f || w->finished || w->path) return G4C_FAIL(err, G4C_E_ARG, "GGUF writer: opened twice");
    if (!alignment) alignment = G4C_GGUF_DEFAULT_ALIGN;
    if (alignment & (alignment - 1)) return G4C_FAIL(err, G4C_E_ARG, "GGUF writer: alignment %u", alignment);
    w->alignment = alignment;
    /* offsets: packed in order, each padded */
    uint64_t at = 0;
    for (int i = 0; i < w->n_t; i++) {
        w->t[i].offset = at;
        at += w->t[i].nbytes + (alignment - w->t[i].nbytes % alignment) % alignment;
    }
    bytes h = {0};
    int ok = put(&h, "GGUF", 4) && put_le(&h, 3, 4) && put_le(&h, (uint64_t)w->n_t, 8) &&
             put_le(&h, (uint64_t)w->n_kv + (alignment != G4C_GGUF_DEFAULT_ALIGN), 8);
    if (alignment != G4C_GGUF_DEFAULT_ALIGN)
        ok = ok && put_str(&h, "general.alignment", 17) && put_le(&h, G4C_GGUF_U32, 4) && put_le(&h, alignment, 4);
    for (int i = 0; ok && i < w->n_kv; i++)
        ok = put_str(&h, w->kv[i].key, strlen(w->kv[i].key)) && put(&h, w->vals.p + w->kv[i].at, w->kv[i].len);
    for (int i = 0; ok && i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        ok = put_str(&h, t->name, strlen(t->name)) && put_le(&h, (uint64_t)t->ndim, 4);
        for (int d = t->ndim - 1; ok && d >= 0; d--) ok = put_le(&h, (uint64_t)t->shape[d], 8); /* innermost first */
        ok = ok && put_le(&h, (uint64_t)g4c_dtype_infos[t->dtype].ggml_type, 4) && put_le(&h, t->offset, 8);
    }
    if (!ok) {
        free(h.p);
        return G4C_FAIL(err, G4C_E_NOMEM, "out of memory for the GGUF header");
    }
    size_t n = strlen(path);
    w->path = strdup(path);
    w->tmp = malloc(n + 5);
    if (!w->path || !w->tmp) {
        free(h.p);
        return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    }
    memcpy(w->tmp, path, n);
    memcpy(w->tmp + n, ".tmp", 5);
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        free(h.p);
        return G4C_FAIL(err, G4C_E_IO, "%s: cannot create: %s", w->tmp, strerror(errno));
    }
    w->created = 1;
    setvbuf(w->f, NULL, _IOFBF, (size_t)1 << 20);
    g4c_status st = out(w, h.p, h.n, err);
    if (st == G4C_OK && w->n_t) st = pad(w, h.n, err);
    free(h.p);
    w->cur = 0;
    w->cur_done = 0;
    if (st == G4C_OK) st = advance(w, err);
    return st;
}

g4c_status g4c_ggw_write(g4c_gguf_writer *w, const void *data, size_t n, g4c_err *err) {
    if (!w->f || w->failed) return G4C_FAIL(err, G4C_E_ARG, "GGUF writer: write before open (or after a failure)");
    const uint8_t *p = data;
    while (n) {
        if (w->cur >= w->n_t)
            return G4C_FAIL(err, G4C_E_ARG, "GGUF writer: %zu bytes past the last tensor", n);
        uint64_t room = w->t[w->cur].nbytes - w->cur_done;
        size_t k = n < room ? n : (size_t)room;
        G4C_TRY(out(w, p, k, err));
        w->cur_done += k;
        p += k;
        n -= k;
        G4C_TRY(advance(w, err));
    }
    return G4C_OK;
}

g4c_status g4c_ggw_finish(g4c_gguf_writer *w, g4c_err *err) {
    if (!w->f) return G4C_FAIL(err, G4C_E_ARG, "GGUF writer: finish before open");
    if (w->cur < w->n_t)
        return G4C_FAIL(err, G4C_E_ARG, "GGUF writer: tensor %s is incomplete (%llu of %llu bytes)", w->t[w->cur].name,
                        (unsigned long long)w->cur_done, (unsigned long long)w->t[w->cur].nbytes);
    if (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)
        return G4C_FAIL(err, G4C_E_IO, "%s: flush failed: %s", w->tmp, strerror(errno));
    int rc = fclose(w->f);
    w->f = NULL;
    if (rc != 0) return G4C_FAIL(err, G4C_E_IO, "%s: close failed: %s", w->tmp, strerror(errno));
    if (rename(w->tmp, w->path) != 0)
        return G4C_FAIL(err, G4C_E_IO, "cannot rename %s to %s: %s", w->tmp, w->path, strerror(errno));
    w->finished = 1;
    return G4C_OK;
}
