/* GGUF reader (ggml docs/gguf.md, versions 2 and 3, little-endian). Layout:
 *   "GGUF" | u32 version | u64 n_tensors | u64 n_kv | n_kv × (string key, u32 type, value)
 *   | n_tensors × (string name, u32 n_dims, u64 dims[n_dims] innermost first, u32 ggml type, u64 offset)
 *   | padding to the alignment | tensor data (offsets relative to its start)
 * string = u64 length + bytes; array = u32 element type + u64 count + elements (arrays may nest).
 * Rules (docs/SECURITY.md): every count and length is checked against the bytes that remain BEFORE anything is
 * allocated or read, so a file can never make us allocate more than a small multiple of its own size; no
 * arithmetic can overflow (checked multiplications, sizes compared by subtraction); keys are non-empty, unique and at
 * most 65535 bytes; bools are 0 or 1; arrays nest at most G4C_GGUF_MAX_DEPTH deep; general.alignment is a u32 power of
 * two; tensor names are non-empty, unique, at most 255 bytes; at most 4 dims, each < 2^63, with a representable
 * element count and byte size; the ggml type is one gemma4c reads (others: G4C_E_UNSUPPORTED, naming the type);
 * the innermost dim is a multiple of the type's block; offsets are multiples of the alignment, the data lies inside
 * the file, and no two tensors overlap. The file is mapped read-only; tensors point into the mapping. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/formats.h"

static const char *const TYPE_NAMES[G4C_GGUF_NTYPES] = {"u8",  "i8",  "u16",    "i16", "u32", "i32", "f32",
                                                        "bool", "string", "array", "u64", "i64", "f64"};
static const uint8_t TYPE_SIZE[G4C_GGUF_NTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *g4c_gguf_type_name(g4c_gguf_type t) {
    return (unsigned)t < G4C_GGUF_NTYPES ? TYPE_NAMES[t] : "invalid";
}

const char *g4c_ggml_type_name(int t) {
    static const char *const names[] = {
        "F32",    "F16",   "Q4_0",   "Q4_1",    "Q4_2",  "Q4_3",  "Q5_0",   "Q5_1",  "Q8_0",    "Q8_1",   "Q2_K",
        "Q3_K",   "Q4_K",  "Q5_K",   "Q6_K",    "Q8_K",  "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S",
        "IQ2_S",  "IQ4_XS", "I8",    "I16",     "I32",   "I64",   "F64",    "IQ1_M", "BF16",    "Q4_0_4_4", "Q4_0_4_8",
        "Q4_0_8_8", "TQ1_0", "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4", "NVFP4", "Q1_0", "Q2_0"};
    return t >= 0 && t < (int)(sizeof names / sizeof *names) ? names[t] : "?";
}

/* ---- a bounds-checked cursor over the file image ---- */

typedef struct {
    const uint8_t *p;
    size_t n, off;
    const char *what;
    g4c_err *err;
} cursor;

static size_t left(const cursor *c) { return c->n - c->off; }

static g4c_status need(cursor *c, uint64_t k, const char *ctx) {
    if (k > left(c))
        return G4C_FAIL(c->err, G4C_E_FORMAT, "%s: %s needs %llu bytes at offset %zu but only %zu remain (truncated "
                        "file or corrupt length)", c->what, ctx, (unsigned long long)k, c->off, left(c));
    return G4C_OK;
}

static uint64_t le(const uint8_t *p, int k) {
    uint64_t v = 0;
    for (int i = 0; i < k; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static g4c_status rd_u32(cursor *c, uint32_t *v, const char *ctx) {
    G4C_TRY(need(c, 4, ctx));
    *v = (uint32_t)le(c->p + c->off, 4);
    c->off += 4;
    return G4C_OK;
}

static g4c_status rd_u64(cursor *c, uint64_t *v, const char *ctx) {
    G4C_TRY(need(c, 8, ctx));
    *v = le(c->p + c->off, 8);
    c->off += 8;
    return G4C_OK;
}

/* A GGUF string: u64 length, then the bytes (checked against what remains before use). */
static g4c_status rd_str(cursor *c, const char **s, size_t *len, uint64_t max, const char *ctx) {
    uint64_t n;
    G4C_TRY(rd_u64(c, &n, ctx));
    if (n > left(c))
        return G4C_FAIL(c->err, G4C_E_FORMAT, "%s: %s: string length %llu at offset %zu runs past the end of the "
                        "file (%zu bytes remain)", c->what, ctx, (unsigned long long)n, c->off - 8, left(c));
    if (n > max)
        return G4C_FAIL(c->err, G4C_E_FORMAT, "%s: %s: string of %llu bytes exceeds the %llu-byte limit", c->what,
                        ctx, (unsigned long long)n, (unsigned long long)max);
    *s = (const char *)c->p + c->off;
    *len = (size_t)n;
    c->off += (size_t)n;
    return G4C_OK;
}

/* Skip over one value of type t (validating it), depth = array nesting so far. */
static g4c_status skip_value(cursor *c, uint32_t t, int depth, const char *key);

static g4c_status skip_array(cursor *c, int depth, const char *key, uint32_t *et_out, uint64_t *n_out) {
    uint32_t et;
    uint64_t n;
    G4C_TRY(rd_u32(c, &et, key));
    G4C_TRY(rd_u64(c, &n, key));
    if (et >= G4C_GGUF_NTYPES)
        return G4C_FAIL(c->err, G4C_E_FORMAT, "%s: key %s: array element type %u is not a GGUF type", c->what, key, et);
    if (et == G4C_GGUF_ARR && depth + 1 >= G4C_GGUF_MAX_DEPTH)
        return G4C_FAIL(c->err, G4C_E_FORMAT, "%s: key %s: arrays nested more than %d deep", c->what, key,
                        G4C_GGUF_MAX_DEPTH);
    if (et_out) *et_out = et, *n_out = n;
    if (TYPE_SIZE[et]) {
        /* fixed-size elements: the whole array must fit in what remains (n * size cannot overflow: size <= 8 and
           the comparison is against left / size) */
        if (n > left(c) / TYPE_SIZE[et])
            return G4C_FAIL(c->err, G4C_E_FORMAT, "%s: key %s: array of %llu %s elements runs past the end of the file",
                            c->what, key, (unsigned long long)n, TYPE_NAMES[et]);
        if (et == G4C_GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (c->p[c->off + i] > 1)
                    return G4C_FAIL(c->err, G4C_E_FORMAT, "%s: key %s: bool element %llu is %u, not 0 or 1", c->what,
                                    key, (unsigned long long)i, c->p[c->off + i]);
        c->off += (size_t)n * TYPE_SIZE[et];
        return G4C_OK;
    }
    /* strings take >= 8 bytes each, arrays >= 12: a count beyond that cannot be honest */
    if (n > left(c) / (et == G4C_GGUF_STR ? 8 : 12))
        return G4C_FAIL(c->err, G4C_E_FORMAT, "%s: key %s: array of %llu %s elements cannot fit in the %zu bytes left",
                        c->what, key, (unsigned long long)n, TYPE_NAMES[et], left(c));
    for (uint64_t i = 0; i < n; i++) G4C_TRY(skip_value(c, et, depth + 1, key));
    return G4C_OK;
}

static g4c_status skip_value(cursor *c, uint32_t t, int depth, const char *key) {
    if (t >= G4C_GGUF_NTYPES)
        return G4C_FAIL(c->err, G4C_E_FORMAT, "%s: key %s: value type %u is not a GGUF type", c->what, key, t);
    if (t == G4C_GGUF_STR) {
        const char *s;
        size_t n;
        return rd_str(c, &s, &n, UINT64_MAX, key);
    }
    if (t == G4C_GGUF_ARR) return skip_array(c, depth, key, NULL, NULL);
    G4C_TRY(need(c, TYPE_SIZE[t], key));
    if (t == G4C_GGUF_BOOL && c->p[c->off] > 1)
        return G4C_FAIL(c->err, G4C_E_FORMAT, "%s: key %s: bool value is %u, not 0 or 1", c->what, key, c->p[c->off]);
    c->off += TYPE_SIZE[t];
    return G4C_OK;
}

/* ---- parsing ---- */

void g4c_gguf_free(g4c_gguf *g) {
    if (!g) return;
    g4c_st_free(g->ts);
    free(g->kv);
    free(g->kv_sorted);
    free(g->what);
    free(g);
}

static int kvcmp(const g4c_gguf_kv *a, const char *key, size_t n) {
    int r = memcmp(a->key, key, a->key_len < n ? a->key_len : n);
    return r ? r : (a->key_len < n ? -1 : a->key_len > n);
}

static int cmp_kv_ptr(const void *a, const void *b) {
    const g4c_gguf_kv *x = *(const g4c_gguf_kv *const *)a, *y = *(const g4c_gguf_kv *const *)b;
    return kvcmp(x, y->key, y->key_len);
}

const g4c_gguf_kv *g4c_gguf_find(const g4c_gguf *g, const char *key) {
    const size_t n = strlen(key);
    int64_t lo = 0, hi = g->n_kv;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int r = kvcmp(g->kv_sorted[mid], key, n);
        if (!r) return g->kv_sorted[mid];
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

typedef struct { uint64_t begin, end; const char *name; } span;
static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}
static int cmp_tname(const void *a, const void *b) {
    return strcmp(((const g4c_st_tensor *)a)->name, ((const g4c_st_tensor *)b)->name);
}

static g4c_status parse_kvs(g4c_gguf *g, cursor *c, uint64_t n_kv) {
    /* a key/value takes at least 8 (key length) + 1 (key) + 4 (type) + 1 (value) bytes */
    if (n_kv > left(c) / 14)
        return G4C_FAIL(c->err, G4C_E_FORMAT, "%s: header claims %llu metadata entries but only %zu bytes follow",
                        c->what, (unsigned long long)n_kv, left(c));
    g->kv = g4c_calloc((size_t)n_kv, sizeof *g->kv, c->err);
    g->kv_sorted = g4c_malloc((size_t)n_kv, sizeof *g->kv_sorted, c->err);
    if (!g->kv || !g->kv_sorted) return G4C_E_NOMEM;
    for (uint64_t i = 0; i < n_kv; i++) {
        g4c_gguf_kv *kv = &g->kv[i];
        char ctx[64];
        snprintf(ctx, sizeof ctx, "metadata entry %llu", (unsigned long long)i);
        G4C_TRY(rd_str(c, &kv->key, &kv->key_len, G4C_GGUF_MAX_KEY, ctx));
        if (!kv->key_len || memchr(kv->key, 0, kv->key_len))
            return G4C_FAIL(c->err, G4C_E_FORMAT, "%s: %s has an empty key or one holding a NUL byte", c->what, ctx);
        char key[160]; /* the key, NUL-terminated and shortened, for messages */
        snprintf(key, sizeof key, "%.*s", (int)(kv->key_len < 120 ? kv->key_len : 120), kv->key);
        uint32_t t;
        G4C_TRY(rd_u32(c, &t, key));
        if (t >= G4C_GGUF_NTYPES)
            return G4C_FAIL(c->err, G4C_E_FORMAT, "%s: key %s: value type %u is not a GGUF type", c->what, key, t);
        kv->type = (g4c_gguf_type)t;
        kv->n = 1;
        if (t == G4C_GGUF_ARR) {
            uint32_t et;
            uint64_t n;
            const size_t at = c->off + 12;
            G4C_TRY(skip_array(c, 0, key, &et, &n));
            kv->arr_type = (g4c_gguf_type)et;
            kv->n = n;
            kv->data = c->p + at;
            kv->size = c->off - at;
        } else if (t == G4C_GGUF_STR) {
            const char *s;
            size_t n;
            G4C_TRY(rd_str(c, &s, &n, UINT64_MAX, key));
            kv->data = (const uint8_t *)s;
            kv->n = n;
            kv->size = n;
        } else {
            kv->data = c->p + c->off;
            kv->size = TYPE_SIZE[t];
            G4C_TRY(skip_value(c, t, 0, key));
        }
        g->kv_sorted[i] = kv;
    }
    g->n_kv = (int64_t)n_kv;
    qsort(g->kv_sorted, (size_t)n_kv, sizeof *g->kv_sorted, cmp_kv_ptr);
    for (uint64_t i = 1; i < n_kv; i++) {
        const g4c_gguf_kv *a = g->kv_sorted[i - 1], *b = g->kv_sorted[i];
        if (!kvcmp(a, b->key, b->key_len))
            return G4C_FAIL(c->err, G4C_E_FORMAT, "%s: metadata key %.*s appears twice", c->what,
                            (int)(b->key_len < 120 ? b->key_len : 120), b->key);
    }
    return G4C_OK;
}

static g4c_status parse_tensors(g4c_gguf *g, cursor *c, uint64_t n_t) {
    /* a tensor info takes at least 8 + 1 (name) + 4 (n_dims) + 4 (type) + 8 (offset) bytes */
    if (n_t > left(c) / 25)
        return G4C_FAIL(c->err, G4C_E_FORMAT, "%s: header claims %llu tensors but only %zu bytes follow", c->what,
                        (unsigned long long)n_t, left(c));
    g4c_tensor_set *ts = g->ts;
    ts->tensors = g4c_calloc((size_t)n_t, sizeof *ts->tensors, c->err);
    uint64_t *offs = g4c_malloc((size_t)n_t, sizeof *offs, c->err);
    span *spans = g4c_malloc((size_t)n_t, sizeof *spans, c->err);
    g4c_status st = ts->tensors && offs && spans ? G4C_OK : G4C_E_NOMEM;
    for (uint64_t i = 0; i < n_t && st == G4C_OK; i++) {
        g4c_st_tensor *t = &ts->tensors[i];
        char ctx[64];
        snprintf(ctx, sizeof ctx, "tensor info %llu", (unsigned long long)i);
        const char *name;
        size_t nlen;
        if ((st = rd_str(c, &name, &nlen, G4C_GGUF_MAX_NAME, ctx)) != G4C_OK) break;
        if (!nlen || memchr(name, 0, nlen)) {
            st = G4C_FAIL(c->err, G4C_E_FORMAT, "%s: %s: tensor name is empty or holds a NUL byte", c->what, ctx);
            break;
        }
        if (!(t->name = g4c_malloc(nlen + 1, 1, c->err))) { st = G4C_E_NOMEM; break; }
        memcpy(t->name, name, nlen);
        t->name[nlen] = 0;
        ts->n_tensors++;
        uint32_t nd, type;
        if ((st = rd_u32(c, &nd, t->name)) != G4C_OK) break;
        if (nd > G4C_MAX_DIMS) {
            st = G4C_FAIL(c->err, G4C_E_FORMAT, "%s: tensor %s: %u dimensions (at most %d)", c->what, t->name, nd,
                          G4C_MAX_DIMS);
            break;
        }
        uint64_t dims[G4C_MAX_DIMS], numel = 1;
        int ok = 1;
        for (uint32_t d = 0; d < nd && st == G4C_OK; d++) {
            if ((st = rd_u64(c, &dims[d], t->name)) != G4C_OK) break;
            if (dims[d] > (uint64_t)INT64_MAX) ok = 0;
            numel = g4c_mul_u64(numel, dims[d], &ok);
        }
        if (st != G4C_OK) break;
        if (!ok || numel > (uint64_t)INT64_MAX) {
            st = G4C_FAIL(c->err, G4C_E_FORMAT, "%s: tensor %s: the element count overflows", c->what, t->name);
            break;
        }
        if ((st = rd_u32(c, &type, t->name)) != G4C_OK) break;
        t->dtype = G4C_DTYPE_COUNT;
        for (int k = 0; k < G4C_DTYPE_COUNT; k++)
            if (g4c_dtype_infos[k].ggml_type >= 0 && (uint32_t)g4c_dtype_infos[k].ggml_type == type) t->dtype = k;
        if (t->dtype == G4C_DTYPE_COUNT) {
            const char *tn = g4c_ggml_type_name((int)type);
            st = G4C_FAIL(c->err, *tn == '?' ? G4C_E_FORMAT : G4C_E_UNSUPPORTED,
                          "%s: tensor %s: ggml type %u (%s) %s (read: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q4_K Q5_K "
                          "Q6_K)", c->what, t->name, type, tn, *tn == '?' ? "is not a ggml type" : "is not supported");
            break;
        }
        const int blk = g4c_dtype_infos[t->dtype].block;
        if (nd && dims[0] % (uint64_t)blk) {
            st = G4C_FAIL(c->err, G4C_E_FORMAT, "%s: tensor %s: %s rows of %llu elements are not a multiple of its "
                          "%d-element block", c->what, t->name, g4c_dtype_infos[t->dtype].name,
                          (unsigned long long)dims[0], blk);
            break;
        }
        if (!nd && blk != 1) {
            st = G4C_FAIL(c->err, G4C_E_FORMAT, "%s: tensor %s: a scalar cannot be of block type %s", c->what,
                          t->name, g4c_dtype_infos[t->dtype].name);
            break;
        }
        uint64_t nbytes = g4c_mul_u64(numel / (uint64_t)blk, g4c_dtype_infos[t->dtype].size, &ok);
        if (!ok || nbytes > SIZE_MAX) {
            st = G4C_FAIL(c->err, G4C_E_FORMAT, "%s: tensor %s: its byte size overflows", c->what, t->name);
            break;
        }
        t->ndim = (int)nd;
        for (uint32_t d = 0; d < nd; d++) t->shape[d] = (int64_t)dims[nd - 1 - d]; /* PyTorch order */
        t->size_bytes = (size_t)nbytes;
        if ((st = rd_u64(c, &offs[i], t->name)) != G4C_OK) break;
        if (offs[i] % g->alignment) {
            st = G4C_FAIL(c->err, G4C_E_FORMAT, "%s: tensor %s: data offset %llu is not a multiple of the alignment "
                          "%u", c->what, t->name, (unsigned long long)offs[i], g->alignment);
            break;
        }
    }
    if (st == G4C_OK && n_t) {
        /* data starts at the next multiple of the alignment after the tensor infos */
        uint64_t pad = (g->alignment - c->off % g->alignment) % g->alignment;
        if (pad > left(c))
            st = G4C_FAIL(c->err, G4C_E_FORMAT, "%s: the file ends before its tensor data (offset %zu)", c->what,
                          c->off);
        g->data_offset = c->off + pad;
    }
    const uint64_t data_size = st == G4C_OK && n_t ? c->n - g->data_offset : 0;
    for (uint64_t i = 0; i < n_t && st == G4C_OK; i++) {
        g4c_st_tensor *t = &ts->tensors[i];
        if (offs[i] > data_size || t->size_bytes > data_size - offs[i]) {
            st = G4C_FAIL(c->err, G4C_E_FORMAT, "%s: tensor %s: data [%llu, +%zu) lies outside the %llu-byte data "
                          "section (truncated file?)", c->what, t->name, (unsigned long long)offs[i], t->size_bytes,
                          (unsigned long long)data_size);
            break;
        }
        t->data = c->p + g->data_offset + offs[i];
        spans[i] = (span){offs[i], offs[i] + t->size_bytes, t->name};
    }
    if (st == G4C_OK) {
        qsort(spans, (size_t)n_t, sizeof *spans, cmp_span);
        uint64_t end = 0;
        const char *prev = NULL;
        for (uint64_t i = 0; i < n_t; i++) {
            if (spans[i].begin == spans[i].end) continue; /* empty tensors overlap nothing */
            if (prev && spans[i].begin < end) {
                st = G4C_FAIL(c->err, G4C_E_FORMAT, "%s: tensors %s and %s overlap (bytes %llu..%llu)", c->what, prev,
                              spans[i].name, (unsigned long long)spans[i].begin, (unsigned long long)end);
                break;
            }
            end = spans[i].end;
            prev = spans[i].name;
        }
    }
    if (st == G4C_OK) {
        qsort(ts->tensors, (size_t)ts->n_tensors, sizeof *ts->tensors, cmp_tname);
        for (int i = 1; i < ts->n_tensors && st == G4C_OK; i++)
            if (!strcmp(ts->tensors[i - 1].name, ts->tensors[i].name))
                st = G4C_FAIL(c->err, G4C_E_FORMAT, "%s: tensor %s appears twice", c->what, ts->tensors[i].name);
    }
    free(offs);
    free(spans);
    return st;
}

static g4c_status parse(g4c_gguf *g, const uint8_t *buf, size_t len, g4c_err *err) {
    cursor c = {.p = buf, .n = len, .what = g->what, .err = err};
    g->base = buf;
    g->size = len;
    if (len < 4 || memcmp(buf, "GGUF", 4) != 0)
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: not a GGUF file (bad magic)", g->what);
    c.off = 4;
    uint64_t n_t, n_kv;
    G4C_TRY(rd_u32(&c, &g->version, "the version"));
    if (g->version == 1 || g->version > 3)
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: GGUF version %u is not supported (2 and 3 are%s)", g->what,
                        g->version, g->version > 0xFFFF ? "; big-endian files are not" : "");
    if (g->version == 0) return G4C_FAIL(err, G4C_E_FORMAT, "%s: GGUF version 0 is not valid", g->what);
    G4C_TRY(rd_u64(&c, &n_t, "the tensor count"));
    G4C_TRY(rd_u64(&c, &n_kv, "the metadata count"));
    G4C_TRY(parse_kvs(g, &c, n_kv));
    g->alignment = G4C_GGUF_DEFAULT_ALIGN;
    const g4c_gguf_kv *al = g4c_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != G4C_GGUF_U32)
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: general.alignment must be u32, not %s", g->what,
                            g4c_gguf_type_name(al->type));
        g->alignment = (uint32_t)le(al->data, 4);
        if (!g->alignment || (g->alignment & (g->alignment - 1)))
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: general.alignment %u is not a power of two", g->what, g->alignment);
    }
    return parse_tensors(g, &c, n_t);
}

static g4c_status new_gguf(g4c_gguf **out, const char *what, g4c_err *err) {
    g4c_gguf *g = g4c_calloc(1, sizeof *g, err);
    if (!g) return G4C_E_NOMEM;
    g->ts = g4c_calloc(1, sizeof *g->ts, err);
    g->what = strdup(what ? what : "(gguf)");
    if (!g->ts || !g->what) {
        g4c_gguf_free(g);
        return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    }
    *out = g;
    return G4C_OK;
}

g4c_status g4c_gguf_parse_buffer(g4c_gguf **out, const void *buf, size_t len, const char *what, g4c_err *err) {
    *out = NULL;
    g4c_gguf *g = NULL;
    G4C_TRY(new_gguf(&g, what, err));
    g4c_status st = parse(g, buf, len, err);
    if (st != G4C_OK) {
        g4c_gguf_free(g);
        return st;
    }
    *out = g;
    return G4C_OK;
}

g4c_status g4c_gguf_open(g4c_gguf **out, const char *path, g4c_err *err) {
    *out = NULL;
    g4c_gguf *g = NULL;
    G4C_TRY(new_gguf(&g, path, err));
    g4c_status st = G4C_OK;
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0) {
        st = G4C_FAIL(err, G4C_E_IO, "%s: cannot open: %s", path, strerror(errno));
    } else if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = G4C_FAIL(err, G4C_E_IO, "%s: not a regular file", path);
    } else if (sb.st_size < 24) {
        st = G4C_FAIL(err, G4C_E_FORMAT, "%s: %lld bytes is too short for a GGUF file", path, (long long)sb.st_size);
    } else {
        g4c_st_file *f = g4c_calloc(1, sizeof *f, err);
        void *map = f ? mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
        if (!f) {
            st = G4C_E_NOMEM;
        } else if (map == MAP_FAILED) {
            free(f);
            st = G4C_FAIL(err, G4C_E_IO, "%s: mmap failed: %s", path, strerror(errno));
        } else {
            f->map = map;
            f->size = (size_t)sb.st_size;
            f->path = strdup(path);
            g->ts->files = f;
            g->ts->n_files = 1;
            st = f->path ? parse(g, map, f->size, err) : G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
        }
    }
    if (fd >= 0) close(fd);
    if (st != G4C_OK) {
        g4c_gguf_free(g);
        return st;
    }
    *out = g;
    return G4C_OK;
}

/* ---- typed getters ---- */

static int is_int(g4c_gguf_type t) {
    return t == G4C_GGUF_U8 || t == G4C_GGUF_I8 || t == G4C_GGUF_U16 || t == G4C_GGUF_I16 || t == G4C_GGUF_U32 ||
           t == G4C_GGUF_I32 || t == G4C_GGUF_U64 || t == G4C_GGUF_I64;
}

/* Integer value at p of type t; *big = 1 when a u64 does not fit in int64. */
static int64_t int_at(const uint8_t *p, g4c_gguf_type t, int *big) {
    switch (t) {
    case G4C_GGUF_U8: case G4C_GGUF_BOOL: return p[0];
    case G4C_GGUF_I8: return (int8_t)p[0];
    case G4C_GGUF_U16: return (int64_t)le(p, 2);
    case G4C_GGUF_I16: return (int16_t)le(p, 2);
    case G4C_GGUF_U32: return (int64_t)le(p, 4);
    case G4C_GGUF_I32: return (int32_t)le(p, 4);
    case G4C_GGUF_U64: {
        uint64_t v = le(p, 8);
        if (v > (uint64_t)INT64_MAX) *big = 1;
        return (int64_t)(v > (uint64_t)INT64_MAX ? INT64_MAX : v);
    }
    case G4C_GGUF_I64: return (int64_t)le(p, 8);
    default: return 0;
    }
}

static double real_at(const uint8_t *p, g4c_gguf_type t) {
    if (t == G4C_GGUF_F32) {
        uint32_t u = (uint32_t)le(p, 4);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    if (t == G4C_GGUF_F64) {
        uint64_t u = le(p, 8);
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    int big = 0;
    return (double)int_at(p, t, &big);
}

/* Look key up; handles the absent case. Returns 1 when present. */
static int lookup(const g4c_gguf *g, const char *key, const g4c_gguf_kv **kv, int *found, g4c_status *st,
                  g4c_err *err) {
    *kv = g4c_gguf_find(g, key);
    *st = G4C_OK;
    if (found) *found = *kv != NULL;
    if (!*kv && !found) *st = G4C_FAIL(err, G4C_E_FORMAT, "%s: required metadata key %s is missing", g->what, key);
    return *kv != NULL;
}

static g4c_status bad_type(const g4c_gguf *g, const char *key, const g4c_gguf_kv *kv, const char *want, g4c_err *err) {
    return G4C_FAIL(err, G4C_E_FORMAT, "%s: metadata key %s must be %s, not %s%s%s", g->what, key, want,
                    kv->type == G4C_GGUF_ARR ? "an array of " : "",
                    g4c_gguf_type_name(kv->type == G4C_GGUF_ARR ? kv->arr_type : kv->type),
                    kv->type == G4C_GGUF_ARR ? "" : " (scalar)");
}

g4c_status g4c_gguf_get_int(const g4c_gguf *g, const char *key, int64_t lo, int64_t hi, int64_t *out, int *found,
                            g4c_err *err) {
    const g4c_gguf_kv *kv;
    g4c_status st;
    if (!lookup(g, key, &kv, found, &st, err)) return st;
    if (!is_int(kv->type)) return bad_type(g, key, kv, "an integer", err);
    int big = 0;
    int64_t v = int_at(kv->data, kv->type, &big);
    if (big || v < lo || v > hi)
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: metadata key %s = %lld%s is outside [%lld, %lld]", g->what, key,
                        (long long)v, big ? "+" : "", (long long)lo, (long long)hi);
    *out = v;
    return G4C_OK;
}

g4c_status g4c_gguf_get_real(const g4c_gguf *g, const char *key, double *out, int *found, g4c_err *err) {
    const g4c_gguf_kv *kv;
    g4c_status st;
    if (!lookup(g, key, &kv, found, &st, err)) return st;
    if (kv->type != G4C_GGUF_F32 && kv->type != G4C_GGUF_F64) return bad_type(g, key, kv, "f32 or f64", err);
    *out = real_at(kv->data, kv->type);
    return G4C_OK;
}

g4c_status g4c_gguf_get_bool(const g4c_gguf *g, const char *key, int *out, int *found, g4c_err *err) {
    const g4c_gguf_kv *kv;
    g4c_status st;
    if (!lookup(g, key, &kv, found, &st, err)) return st;
    if (kv->type != G4C_GGUF_BOOL) return bad_type(g, key, kv, "a bool", err);
    *out = kv->data[0] != 0;
    return G4C_OK;
}

g4c_status g4c_gguf_get_str(const g4c_gguf *g, const char *key, const char **s, size_t *len, int *found,
                            g4c_err *err) {
    const g4c_gguf_kv *kv;
    g4c_status st;
    if (!lookup(g, key, &kv, found, &st, err)) return st;
    if (kv->type != G4C_GGUF_STR) return bad_type(g, key, kv, "a string", err);
    *s = (const char *)kv->data;
    *len = kv->size;
    return G4C_OK;
}

g4c_status g4c_gguf_get_arr(const g4c_gguf *g, const char *key, g4c_gguf_type t, const g4c_gguf_kv **kv_out,
                            int *found, g4c_err *err) {
    const g4c_gguf_kv *kv;
    g4c_status st;
    if (!lookup(g, key, &kv, found, &st, err)) return st;
    if (kv->type != G4C_GGUF_ARR || kv->arr_type != t) {
        char want[48];
        snprintf(want, sizeof want, "an array of %s", g4c_gguf_type_name(t));
        return bad_type(g, key, kv, want, err);
    }
    *kv_out = kv;
    return G4C_OK;
}

g4c_status g4c_gguf_get_ints(const g4c_gguf *g, const char *key, int64_t lo, int64_t hi, int64_t *out, int64_t n,
                             int *found, g4c_err *err) {
    const g4c_gguf_kv *kv;
    g4c_status st;
    if (!lookup(g, key, &kv, found, &st, err)) return st;
    if (kv->type != G4C_GGUF_ARR) {
        int64_t v = 0;
        G4C_TRY(g4c_gguf_get_int(g, key, lo, hi, &v, NULL, err));
        for (int64_t i = 0; i < n; i++) out[i] = v;
        return G4C_OK;
    }
    if (!is_int(kv->arr_type)) return bad_type(g, key, kv, "an integer or an array of integers", err);
    if (kv->n != (uint64_t)n)
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: metadata key %s has %llu elements, expected %lld (one per layer)",
                        g->what, key, (unsigned long long)kv->n, (long long)n);
    const int es = TYPE_SIZE[kv->arr_type];
    for (int64_t i = 0; i < n; i++) {
        int big = 0;
        int64_t v = int_at(kv->data + (size_t)i * es, kv->arr_type, &big);
        if (big || v < lo || v > hi)
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: metadata key %s[%lld] = %lld is outside [%lld, %lld]", g->what, key,
                            (long long)i, (long long)v, (long long)lo, (long long)hi);
        out[i] = v;
    }
    return G4C_OK;
}

g4c_status g4c_gguf_get_bools(const g4c_gguf *g, const char *key, int *out, int64_t n, int *found, g4c_err *err) {
    const g4c_gguf_kv *kv;
    g4c_status st;
    if (!lookup(g, key, &kv, found, &st, err)) return st;
    if (kv->type == G4C_GGUF_BOOL) {
        for (int64_t i = 0; i < n; i++) out[i] = kv->data[0] != 0;
        return G4C_OK;
    }
    if (kv->type != G4C_GGUF_ARR || (kv->arr_type != G4C_GGUF_BOOL && !is_int(kv->arr_type)))
        return bad_type(g, key, kv, "an array of bool", err);
    if (kv->n != (uint64_t)n)
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: metadata key %s has %llu elements, expected %lld (one per layer)",
                        g->what, key, (unsigned long long)kv->n, (long long)n);
    for (int64_t i = 0; i < n; i++) {
        int big = 0;
        int64_t v = int_at(kv->data + (size_t)i * TYPE_SIZE[kv->arr_type], kv->arr_type, &big);
        if (big || (v != 0 && v != 1))
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: metadata key %s[%lld] is not 0 or 1", g->what, key, (long long)i);
        out[i] = (int)v;
    }
    return G4C_OK;
}

double g4c_gguf_arr_real(const g4c_gguf_kv *kv, uint64_t i) {
    if (kv->type != G4C_GGUF_ARR || i >= kv->n || !TYPE_SIZE[kv->arr_type]) return 0;
    return real_at(kv->data + i * TYPE_SIZE[kv->arr_type], kv->arr_type);
}

int64_t g4c_gguf_arr_int(const g4c_gguf_kv *kv, uint64_t i) {
    if (kv->type != G4C_GGUF_ARR || i >= kv->n || !TYPE_SIZE[kv->arr_type]) return 0;
    if (kv->arr_type == G4C_GGUF_F32 || kv->arr_type == G4C_GGUF_F64) {
        /* saturate (converting a float outside int64 is undefined; NaN reads as 0): callers range-check the result */
        const double r = real_at(kv->data + i * TYPE_SIZE[kv->arr_type], kv->arr_type);
        return r != r ? 0 : r >= 9.2e18 ? INT64_MAX : r <= -9.2e18 ? INT64_MIN : (int64_t)r;
    }
    int big = 0;
    return int_at(kv->data + i * TYPE_SIZE[kv->arr_type], kv->arr_type, &big);
}

int g4c_gguf_arr_str_next(const g4c_gguf_kv *kv, size_t *pos, const char **s, size_t *len) {
    /* the array was validated at parse time: every string lies inside kv->size */
    if (kv->type != G4C_GGUF_ARR || kv->arr_type != G4C_GGUF_STR || *pos + 8 > kv->size) return 0;
    uint64_t n = le(kv->data + *pos, 8);
    if (n > kv->size - *pos - 8) return 0;
    *s = (const char *)kv->data + *pos + 8;
    *len = (size_t)n;
    *pos += 8 + (size_t)n;
    return 1;
}
