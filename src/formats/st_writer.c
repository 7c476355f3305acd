/* Streaming safetensors writer: every tensor is declared first (name, dtype, shape), which fixes the header and the
 * offsets; then the data is appended tensor by tensor in declaration order, any chunk size, with constant memory.
 * The file is written as PATH.tmp and renamed to PATH only once every byte is there, so a failed or interrupted
 * write never leaves a truncated checkpoint behind. The output obeys the reader's rules (safetensors.c): offsets tile
 * the data contiguously from 0, the header is JSON padded with spaces to a multiple of 8 bytes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "formats/formats.h"

struct g4c_st_writer {
    g4c_stw_tensor *t;
    int n, cap;
    char *path, *tmp; /* final and temporary paths (set by open) */
    int fd;           /* -1 when not open */
    int cur;          /* tensor being written */
    uint64_t cur_done; /* bytes of tensor cur already written */
    uint64_t written;  /* data bytes written so far */
    int finished;
    int created;      /* the temporary file is ours to remove */
};

g4c_status g4c_stw_new(g4c_st_writer **out, g4c_err *err) {
    *out = g4c_calloc(1, sizeof **out, err);
    if (!*out) return G4C_E_NOMEM;
    (*out)->fd = -1;
    return G4C_OK;
}

g4c_status g4c_stw_add(g4c_st_writer *w, const char *name, g4c_dtype dtype, int ndim, const int64_t *shape, int tag,
                       g4c_err *err) {
    if (w->fd >= 0 || w->finished) return G4C_FAIL(err, G4C_E_ARG, "safetensors writer: add after open");
    if (!name || !*name || (int)dtype < 0 || dtype >= G4C_DTYPE_COUNT || ndim < 0 || ndim > G4C_MAX_DIMS)
        return G4C_FAIL(err, G4C_E_ARG, "safetensors writer: bad tensor %s", name ? name : "(null)");
    uint64_t numel = 1;
    int ok = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return G4C_FAIL(err, G4C_E_ARG, "safetensors writer: %s: negative dimension", name);
        numel = g4c_mul_u64(numel, (uint64_t)shape[i], &ok);
    }
    uint64_t nbytes = g4c_mul_u64(numel, g4c_dtype_infos[dtype].size, &ok);
    if (!ok || nbytes > (UINT64_C(1) << 53))
        return G4C_FAIL(err, G4C_E_ARG, "safetensors writer: %s: size overflows", name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 256;
        g4c_stw_tensor *g = realloc(w->t, sizeof *g * (size_t)cap);
        if (!g) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
        w->t = g;
        w->cap = cap;
    }
    g4c_stw_tensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = numel;
    t->nbytes = nbytes;
    t->tag = tag;
    w->n++;
    return G4C_OK;
}

static int cmp_py(const void *a, const void *b) {
    const g4c_stw_tensor *x = a, *y = b;
    size_t sx = g4c_dtype_infos[x->dtype].size, sy = g4c_dtype_infos[y->dtype].size;
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

void g4c_stw_sort(g4c_st_writer *w) {
    if (w->fd < 0 && !w->finished && w->n) qsort(w->t, (size_t)w->n, sizeof *w->t, cmp_py);
}

int g4c_stw_count(const g4c_st_writer *w) { return w->n; }

const g4c_stw_tensor *g4c_stw_get(const g4c_st_writer *w, int i) { return i >= 0 && i < w->n ? &w->t[i] : NULL; }

uint64_t g4c_stw_data_size(const g4c_st_writer *w) {
    uint64_t s = 0;
    for (int i = 0; i < w->n; i++) s += w->t[i].nbytes;
    return s;
}

uint64_t g4c_stw_written(const g4c_st_writer *w) { return w->written; }

/* ---- header ---- */

typedef struct { char *p; size_t n, cap; int oom; } sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *g = realloc(b->p, cap);
        if (!g) { b->oom = 1; return; }
        b->p = g;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static void put_json_str(sbuf *b, const char *s) {
    puts_(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[8];
        if (*p == '"' || *p == '\\') { e[0] = '\\'; e[1] = (char)*p; put(b, e, 2); }
        else if (*p < 0x20) { snprintf(e, sizeof e, "\\u%04x", *p); puts_(b, e); }
        else put(b, (const char *)p, 1);
    }
    puts_(b, "\"");
}

/* The header JSON padded with spaces so that 8 + its length is a multiple of 8; offsets follow declaration order. */
static g4c_status build_header(const g4c_st_writer *w, sbuf *b, g4c_err *err) {
    memset(b, 0, sizeof *b);
    puts_(b, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t at = 0;
    for (int i = 0; i < w->n; i++) {
        const g4c_stw_tensor *t = &w->t[i];
        char num[64];
        puts_(b, ",");
        put_json_str(b, t->name);
        puts_(b, ":{\"dtype\":\"");
        puts_(b, g4c_dtype_infos[t->dtype].name);
        puts_(b, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t->shape[d]);
            puts_(b, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)at,
                 (unsigned long long)(at + t->nbytes));
        puts_(b, num);
        at += t->nbytes;
    }
    puts_(b, "}");
    while (!b->oom && b->n % 8) puts_(b, " ");
    if (b->oom) {
        free(b->p);
        return G4C_FAIL(err, G4C_E_NOMEM, "out of memory for the safetensors header");
    }
    if (b->n > G4C_ST_MAX_HEADER) {
        free(b->p);
        return G4C_FAIL(err, G4C_E_ARG, "safetensors header of %zu bytes exceeds the 100 MB limit", b->n);
    }
    return G4C_OK;
}

uint64_t g4c_stw_file_size(const g4c_st_writer *w) {
    sbuf b;
    if (build_header(w, &b, NULL) != G4C_OK) return 0;
    free(b.p);
    return 8 + b.n + g4c_stw_data_size(w);
}

static g4c_status write_all(g4c_st_writer *w, const void *data, size_t n, g4c_err *err) {
    const char *p = data;
    while (n) {
        ssize_t k = write(w->fd, p, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return G4C_FAIL(err, G4C_E_IO, "%s: write failed: %s", w->tmp, k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
    }
    return G4C_OK;
}

static int cmp_name_ptr(const void *a, const void *b) {
    return strcmp((*(const g4c_stw_tensor *const *)a)->name, (*(const g4c_stw_tensor *const *)b)->name);
}

g4c_status g4c_stw_open(g4c_st_writer *w, const char *path, g4c_err *err) {
    if (w->fd >= 0 || w->finished || w->path) return G4C_FAIL(err, G4C_E_ARG, "safetensors writer: opened twice");
    /* duplicate names would make an unreadable file */
    if (w->n > 1) {
        const g4c_stw_tensor **by = malloc(sizeof *by * (size_t)w->n);
        if (!by) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
        for (int i = 0; i < w->n; i++) by[i] = &w->t[i];
        qsort(by, (size_t)w->n, sizeof *by, cmp_name_ptr);
        for (int i = 1; i < w->n; i++)
            if (!strcmp(by[i - 1]->name, by[i]->name)) {
                g4c_status st = G4C_FAIL(err, G4C_E_ARG, "safetensors writer: tensor %s declared twice", by[i]->name);
                free(by);
                return st;
            }
        free(by);
    }
    sbuf b;
    G4C_TRY(build_header(w, &b, err));
    size_t n = strlen(path);
    w->path = strdup(path);
    w->tmp = malloc(n + 5);
    if (!w->path || !w->tmp) { free(b.p); return G4C_FAIL(err, G4C_E_NOMEM, "out of memory"); }
    memcpy(w->tmp, path, n);
    memcpy(w->tmp + n, ".tmp", 5);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (w->fd < 0) {
        free(b.p);
        return G4C_FAIL(err, G4C_E_IO, "%s: cannot create: %s", w->tmp, strerror(errno));
    }
    w->created = 1;
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)b.n >> (8 * i));
    g4c_status st = write_all(w, len, 8, err);
    if (st == G4C_OK) st = write_all(w, b.p, b.n, err);
    free(b.p);
    w->cur = 0;
    w->cur_done = 0;
    w->written = 0;
    while (w->cur < w->n && w->t[w->cur].nbytes == 0) w->cur++;
    return st;
}

g4c_status g4c_stw_write(g4c_st_writer *w, const void *data, size_t n, g4c_err *err) {
    if (w->fd < 0) return G4C_FAIL(err, G4C_E_ARG, "safetensors writer: write before open");
    if (w->cur >= w->n || n > w->t[w->cur].nbytes - w->cur_done)
        return G4C_FAIL(err, G4C_E_ARG, "safetensors writer: %zu bytes overrun tensor %s", n,
                        w->cur < w->n ? w->t[w->cur].name : "(past the last tensor)");
    G4C_TRY(write_all(w, data, n, err));
    w->cur_done += n;
    w->written += n;
    if (w->cur_done == w->t[w->cur].nbytes) {
        w->cur_done = 0;
        do w->cur++; while (w->cur < w->n && w->t[w->cur].nbytes == 0);
    }
    return G4C_OK;
}

g4c_status g4c_stw_finish(g4c_st_writer *w, g4c_err *err) {
    if (w->fd < 0) return G4C_FAIL(err, G4C_E_ARG, "safetensors writer: finish before open");
    if (w->cur < w->n)
        return G4C_FAIL(err, G4C_E_ARG, "safetensors writer: tensor %s is incomplete (%llu of %llu bytes)",
                        w->t[w->cur].name, (unsigned long long)w->cur_done, (unsigned long long)w->t[w->cur].nbytes);
    if (fsync(w->fd) != 0) return G4C_FAIL(err, G4C_E_IO, "%s: fsync failed: %s", w->tmp, strerror(errno));
    int rc = close(w->fd);
    w->fd = -1;
    if (rc != 0) return G4C_FAIL(err, G4C_E_IO, "%s: close failed: %s", w->tmp, strerror(errno));
    if (rename(w->tmp, w->path) != 0)
        return G4C_FAIL(err, G4C_E_IO, "cannot rename %s to %s: %s", w->tmp, w->path, strerror(errno));
    w->finished = 1;
    return G4C_OK;
}

void g4c_stw_free(g4c_st_writer *w) {
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    if (w->created && !w->finished) unlink(w->tmp); /* never leave a partial file */
    for (int i = 0; i < w->n; i++) free(w->t[i].name);
    free(w->t);
    free(w->path);
    free(w->tmp);
    free(w);
}
