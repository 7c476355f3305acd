/* safetensors reader. Layout: u64 little-endian header length N, N bytes of UTF-8 JSON
 *   {"__metadata__": {str: str}, "<name>": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ...}
 * then the byte buffer. Offsets are relative to the buffer. We require (docs/SECURITY.md): N <= 100 MB and within
 * the file, every entry well-typed, a known dtype, no duplicate names, end - begin == numel * dtype size without
 * overflow, and the spans tiling the buffer exactly: contiguous from 0, no holes, no overlap, ending at file end.
 * Files are mapped read-only; tensors point into the mapping. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/formats.h"

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const g4c_st_tensor *)a)->name, ((const g4c_st_tensor *)b)->name);
}

typedef struct { uint64_t begin, end; const char *name; } span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

void g4c_st_free(g4c_tensor_set *ts) {
    if (!ts) return;
    for (int i = 0; i < ts->n_tensors; i++) free(ts->tensors[i].name);
    for (int i = 0; i < ts->n_files; i++) {
        if (ts->files[i].map) munmap(ts->files[i].map, ts->files[i].size);
        free(ts->files[i].path);
    }
    free(ts->tensors);
    free(ts->files);
    free(ts);
}

int64_t g4c_st_numel(const g4c_st_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

const g4c_st_tensor *g4c_st_find(const g4c_tensor_set *ts, const char *name) {
    if (!ts->n_tensors) return NULL; /* ts->tensors may be NULL: bsearch must not see it */
    g4c_st_tensor key = {.name = (char *)name};
    return bsearch(&key, ts->tensors, (size_t)ts->n_tensors, sizeof key, cmp_name);
}

static int parse_u64(const cJSON *it, uint64_t *out) {
    /* JSON numbers arrive as doubles: exact for integers below 2^53, plenty for any file we can map. */
    if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 9007199254740992.0 ||
        it->valuedouble != (double)(uint64_t)it->valuedouble)
        return 0;
    *out = (uint64_t)it->valuedouble;
    return 1;
}

/* Append the tensors described by one file image (buf, len) to ts, as file index i_file. */
static g4c_status parse_image(g4c_tensor_set *ts, const unsigned char *buf, size_t len, int i_file, const char *what,
                              g4c_err *err) {
    if (len < 8) return G4C_FAIL(err, G4C_E_FORMAT, "%s: %zu bytes is too short for a safetensors file", what, len);
    uint64_t n_hdr = 0;
    for (int i = 0; i < 8; i++) n_hdr |= (uint64_t)buf[i] << (8 * i);
    if (n_hdr > G4C_ST_MAX_HEADER)
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: header length %llu exceeds the 100 MB limit", what,
                        (unsigned long long)n_hdr);
    if (n_hdr < 2 || n_hdr > len - 8)
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: header length %llu does not fit in the %zu-byte file", what,
                        (unsigned long long)n_hdr, len);
    const char *hdr = (const char *)buf + 8;
    if (hdr[0] != '{')
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: header does not start with '{'", what);
    /* The header is one JSON object, optionally padded with spaces (writers align the data to 8 bytes). */
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)n_hdr, &end, 0);
    if (!root) {
        size_t off = end && end >= hdr ? (size_t)(end - hdr) : 0;
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: header is not valid JSON (near byte %zu)", what, 8 + off);
    }
    for (const char *p = end; p < hdr + n_hdr; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: bytes after the header's JSON object (at byte %zu)", what,
                            (size_t)(8 + (p - hdr)));
        }
    g4c_status st = G4C_OK;
    span *spans = NULL;
    if (!cJSON_IsObject(root)) { st = G4C_FAIL(err, G4C_E_FORMAT, "%s: header is not a JSON object", what); goto done; }
    const uint64_t data_size = len - 8 - n_hdr;
    const unsigned char *data = buf + 8 + n_hdr;
    int n_new = 0;
    for (const cJSON *it = root->child; it; it = it->next) n_new += strcmp(it->string, "__metadata__") != 0;
    g4c_st_tensor *grown = realloc(ts->tensors, sizeof *grown * (size_t)(ts->n_tensors + n_new + 1));
    spans = malloc(sizeof *spans * (size_t)(n_new + 1));
    if (!grown || !spans) {
        if (grown) ts->tensors = grown;
        st = G4C_FAIL(err, G4C_E_NOMEM, "%s: out of memory for %d tensors", what, n_new);
        goto done;
    }
    ts->tensors = grown;
    int k = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        const char *name = it->string;
        if (strcmp(name, "__metadata__") == 0) {
            if (!cJSON_IsObject(it)) { st = G4C_FAIL(err, G4C_E_FORMAT, "%s: __metadata__ is not an object", what); goto done; }
            for (const cJSON *m = it->child; m; m = m->next)
                if (!cJSON_IsString(m)) {
                    st = G4C_FAIL(err, G4C_E_FORMAT, "%s: __metadata__.%s is not a string", what, m->string);
                    goto done;
                }
            continue;
        }
        if (!cJSON_IsObject(it)) { st = G4C_FAIL(err, G4C_E_FORMAT, "%s: tensor %s: entry is not an object", what, name); goto done; }
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *jo = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2) {
            st = G4C_FAIL(err, G4C_E_FORMAT, "%s: tensor %s: needs string dtype, array shape and [begin, end] data_offsets",
                          what, name);
            goto done;
        }
        g4c_st_tensor t = {.i_file = i_file, .dtype = G4C_DTYPE_COUNT};
        for (int d = 0; d < G4C_DTYPE_COUNT; d++)
            if (g4c_dtype_infos[d].st_name && strcmp(jd->valuestring, g4c_dtype_infos[d].st_name) == 0)
                t.dtype = (g4c_dtype)d;
        if (t.dtype == G4C_DTYPE_COUNT) {
            static const char *const other[] = {"F64", "I64", "I32", "I16", "I8", "U64", "U16", "U8",
                                                "BOOL", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2"};
            int known = 0;
            for (size_t i = 0; i < sizeof other / sizeof *other; i++) known |= !strcmp(jd->valuestring, other[i]);
            st = G4C_FAIL(err, known ? G4C_E_UNSUPPORTED : G4C_E_FORMAT,
                          "%s: tensor %s: dtype \"%.32s\" is %s (F32, F16, BF16 and MLX's U32 codes are read)",
                          what, name, jd->valuestring, known ? "not supported" : "not a safetensors dtype");
            goto done;
        }
        t.ndim = cJSON_GetArraySize(js);
        if (t.ndim > G4C_MAX_DIMS) {
            st = G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: tensor %s: %d dimensions (at most %d)", what, name, t.ndim,
                          G4C_MAX_DIMS);
            goto done;
        }
        int ok = 1;
        uint64_t numel = 1;
        int d = 0;
        for (const cJSON *e = js->child; e; e = e->next, d++) {
            uint64_t v;
            if (!parse_u64(e, &v)) { ok = 0; break; }
            t.shape[d] = (int64_t)v;
            numel = g4c_mul_u64(numel, v, &ok);
        }
        if (!ok) {
            st = G4C_FAIL(err, G4C_E_FORMAT, "%s: tensor %s: shape must be non-negative integers with a representable product",
                          what, name);
            goto done;
        }
        uint64_t b, e;
        if (!parse_u64(jo->child, &b) || !parse_u64(jo->child->next, &e) || b > e || e > data_size) {
            st = G4C_FAIL(err, G4C_E_FORMAT, "%s: tensor %s: data_offsets out of bounds (data is %llu bytes)", what,
                          name, (unsigned long long)data_size);
            goto done;
        }
        uint64_t want = g4c_mul_u64(numel, g4c_dtype_infos[t.dtype].size, &ok);
        if (!ok || want != e - b) {
            st = G4C_FAIL(err, G4C_E_FORMAT, "%s: tensor %s: shape x dtype is %llu bytes but data_offsets span %llu",
                          what, name, (unsigned long long)want, (unsigned long long)(e - b));
            goto done;
        }
        t.data = data + b;
        t.size_bytes = (size_t)(e - b);
        t.name = strdup(name);
        if (!t.name) { st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory"); goto done; }
        spans[k].begin = b;
        spans[k].end = e;
        spans[k].name = t.name;
        k++;
        ts->tensors[ts->n_tensors++] = t;
    }
    /* The spans must tile [0, data_size) exactly. */
    qsort(spans, (size_t)k, sizeof *spans, cmp_span);
    uint64_t at = 0;
    for (int i = 0; i < k; i++) {
        if (spans[i].begin != at) {
            st = G4C_FAIL(err, G4C_E_FORMAT, "%s: tensor %s: data starts at byte %llu, expected %llu (%s)", what,
                          spans[i].name, (unsigned long long)spans[i].begin, (unsigned long long)at,
                          spans[i].begin < at ? "overlaps the previous tensor" : "leaves a hole");
            goto done;
        }
        at = spans[i].end;
    }
    if (at != data_size) {
        st = G4C_FAIL(err, G4C_E_FORMAT, "%s: tensors cover %llu of %llu data bytes (trailing bytes or truncated file)",
                      what, (unsigned long long)at, (unsigned long long)data_size);
        goto done;
    }
done:
    free(spans);
    cJSON_Delete(root);
    return st;
}

static g4c_status finish(g4c_tensor_set *ts, const char *what, g4c_err *err) {
    if (ts->n_tensors > 1) qsort(ts->tensors, (size_t)ts->n_tensors, sizeof *ts->tensors, cmp_name); /* may be NULL */
    for (int i = 1; i < ts->n_tensors; i++)
        if (strcmp(ts->tensors[i - 1].name, ts->tensors[i].name) == 0) {
            const char *a = ts->n_files ? ts->files[ts->tensors[i - 1].i_file].path : what;
            const char *b = ts->n_files ? ts->files[ts->tensors[i].i_file].path : what;
            return G4C_FAIL(err, G4C_E_FORMAT, "tensor %s appears twice (in %s and %s)", ts->tensors[i].name, a, b);
        }
    return G4C_OK;
}

static g4c_status add_file(g4c_tensor_set *ts, const char *path, g4c_err *err) {
    g4c_st_file *grown = realloc(ts->files, sizeof *grown * (size_t)(ts->n_files + 1));
    if (!grown) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    ts->files = grown;
    g4c_st_file *f = &ts->files[ts->n_files];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    ts->n_files++;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return G4C_FAIL(err, G4C_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return G4C_FAIL(err, G4C_E_IO, "%s: not a regular file", path);
    }
    if (st.st_size < 8) {
        close(fd);
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: %lld bytes is too short for a safetensors file", path,
                        (long long)st.st_size);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return G4C_FAIL(err, G4C_E_IO, "%s: mmap failed: %s", path, strerror(errno));
    f->map = map;
    f->size = (size_t)st.st_size;
    return parse_image(ts, map, f->size, ts->n_files - 1, path, err);
}

g4c_status g4c_st_open_file(g4c_tensor_set **out, const char *path, g4c_err *err) {
    *out = NULL;
    g4c_tensor_set *ts = g4c_calloc(1, sizeof *ts, err);
    if (!ts) return G4C_E_NOMEM;
    g4c_status st = add_file(ts, path, err);
    if (st == G4C_OK) st = finish(ts, path, err);
    if (st != G4C_OK) { g4c_st_free(ts); return st; }
    *out = ts;
    return G4C_OK;
}

g4c_status g4c_st_parse_buffer(g4c_tensor_set **out, const void *buf, size_t len, const char *what, g4c_err *err) {
    *out = NULL;
    g4c_tensor_set *ts = g4c_calloc(1, sizeof *ts, err);
    if (!ts) return G4C_E_NOMEM;
    g4c_status st = parse_image(ts, buf, len, 0, what, err);
    if (st == G4C_OK) st = finish(ts, what, err);
    if (st != G4C_OK) { g4c_st_free(ts); return st; }
    *out = ts;
    return G4C_OK;
}

/* Shard names come from the index; refuse anything that could leave the checkpoint directory. */
static int safe_shard_name(const char *s) {
    return s[0] && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && strlen(s) < 256;
}

g4c_status g4c_st_open_dir(g4c_tensor_set **out, const char *dir, g4c_err *err) {
    *out = NULL;
    char path[4096];
    G4C_TRY(g4c_path_join(path, sizeof path, dir, "model.safetensors.index.json", err));
    if (access(path, F_OK) != 0) {
        G4C_TRY(g4c_path_join(path, sizeof path, dir, "model.safetensors", err));
        return g4c_st_open_file(out, path, err);
    }
    cJSON *idx;
    G4C_TRY(g4c_json_read_file(&idx, path, err));
    g4c_status st = G4C_OK;
    g4c_tensor_set *ts = g4c_calloc(1, sizeof *ts, err);
    if (!ts) { cJSON_Delete(idx); return G4C_E_NOMEM; }
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(idx, "weight_map");
    if (!cJSON_IsObject(wm)) { st = G4C_FAIL(err, G4C_E_FORMAT, "%s: no \"weight_map\" object", path); goto done; }
    if (!wm->child) { st = G4C_FAIL(err, G4C_E_FORMAT, "%s: \"weight_map\" names no tensor", path); goto done; }
    /* Open each distinct shard once, in the order first named. */
    for (const cJSON *it = wm->child; it; it = it->next) {
        if (!cJSON_IsString(it) || !safe_shard_name(it->valuestring)) {
            st = G4C_FAIL(err, G4C_E_FORMAT, "%s: weight_map[\"%s\"] is not a plain file name", path, it->string);
            goto done;
        }
        char shard[4096];
        if ((st = g4c_path_join(shard, sizeof shard, dir, it->valuestring, err)) != G4C_OK) goto done;
        int seen = 0;
        for (int i = 0; i < ts->n_files && !seen; i++) seen = strcmp(ts->files[i].path, shard) == 0;
        if (!seen && (st = add_file(ts, shard, err)) != G4C_OK) goto done;
    }
    if ((st = finish(ts, path, err)) != G4C_OK) goto done;
    /* Every tensor the index names must be in the shard it names. */
    for (const cJSON *it = wm->child; it; it = it->next) {
        const g4c_st_tensor *t = g4c_st_find(ts, it->string);
        const char *file = t ? strrchr(ts->files[t->i_file].path, '/') : NULL;
        if (!t || strcmp(file ? file + 1 : ts->files[t->i_file].path, it->valuestring) != 0) {
            st = G4C_FAIL(err, G4C_E_FORMAT, "%s: tensor %s is not in shard %s", path, it->string, it->valuestring);
            goto done;
        }
    }
done:
    cJSON_Delete(idx);
    if (st != G4C_OK) { g4c_st_free(ts); return st; }
    *out = ts;
    return G4C_OK;
}
