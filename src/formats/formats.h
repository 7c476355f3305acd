/* formats: bytes on disk -> typed, validated tensor views and parsed JSON. Knows nothing about Gemma.
 * safetensors (single file or sharded with model.safetensors.index.json), JSON (cJSON with size limits).
 * Validation rules are listed in docs/SECURITY.md. */
#ifndef G4C_FORMATS_FORMATS_H
#define G4C_FORMATS_FORMATS_H

#include <cjson/cJSON.h>

#include "base/base.h"

#define G4C_MAX_DIMS 4
#define G4C_ST_MAX_HEADER ((size_t)100 << 20) /* safetensors header cap: 100 MB */
#define G4C_JSON_MAX_SIZE ((size_t)64 << 20)  /* config / index JSON cap */

typedef struct {
    char *name;                  /* tensor name as stored */
    g4c_dtype dtype;
    int ndim;
    int64_t shape[G4C_MAX_DIMS]; /* outermost first (PyTorch order) */
    const void *data;            /* into the read-only mapping; any alignment */
    size_t size_bytes;
    int i_file;                  /* which mapped file holds it */
} g4c_st_tensor;

typedef struct {
    char *path;
    void *map;        /* PROT_READ mapping of the whole file (NULL for an in-memory buffer) */
    size_t size;
} g4c_st_file;

typedef struct {
    g4c_st_file *files;
    int n_files;
    g4c_st_tensor *tensors; /* sorted by name */
    int n_tensors;
} g4c_tensor_set;

/* Open a checkpoint directory: model.safetensors.index.json + shards if present, else model.safetensors. */
g4c_status g4c_st_open_dir(g4c_tensor_set **out, const char *dir, g4c_err *err);
/* Open one .safetensors file. */
g4c_status g4c_st_open_file(g4c_tensor_set **out, const char *path, g4c_err *err);
/* Validate a whole safetensors image held in memory (fuzzing, tests). Tensors point into buf. */
g4c_status g4c_st_parse_buffer(g4c_tensor_set **out, const void *buf, size_t len, const char *what, g4c_err *err);
void g4c_st_free(g4c_tensor_set *ts);
const g4c_st_tensor *g4c_st_find(const g4c_tensor_set *ts, const char *name);
/* Number of elements (product of the shape). */
int64_t g4c_st_numel(const g4c_st_tensor *t);

/* ---- JSON ---- */
/* Parse a JSON file (size <= G4C_JSON_MAX_SIZE). Free with cJSON_Delete. */
g4c_status g4c_json_read_file(cJSON **out, const char *path, g4c_err *err);
g4c_status g4c_json_parse(cJSON **out, const char *text, size_t len, const char *what, g4c_err *err);
/* Typed getters for object members. Each fails with G4C_E_CONFIG naming `what` and the key when the member is
 * present with the wrong type; when absent, *out keeps its value and *found (if given) is set to 0. */
g4c_status g4c_json_get_int(const cJSON *obj, const char *key, int64_t lo, int64_t hi, int64_t *out, int *found,
                            const char *what, g4c_err *err);
g4c_status g4c_json_get_num(const cJSON *obj, const char *key, double *out, int *found, const char *what,
                            g4c_err *err);
g4c_status g4c_json_get_bool(const cJSON *obj, const char *key, int *out, int *found, const char *what,
                             g4c_err *err);
/* Returns the string (owned by obj) or NULL when absent or null; a non-string is an error. */
g4c_status g4c_json_get_str(const cJSON *obj, const char *key, const char **out, const char *what, g4c_err *err);

#endif

/* ---- safetensors writer (st_writer.c) ---- */
#ifndef G4C_FORMATS_ST_WRITER
#define G4C_FORMATS_ST_WRITER
/* Streams one safetensors file with constant memory: declare every tensor (add; optionally sort), then open (writes
 * the header to PATH.tmp), append each tensor's bytes in declaration order in chunks of any size (write), and
 * finish (checks every byte arrived, fsyncs, renames PATH.tmp to PATH). Freeing a writer that did not finish
 * removes its temporary file, so a failed or interrupted write leaves nothing behind. */
typedef struct g4c_st_writer g4c_st_writer;
typedef struct {
    char *name;
    g4c_dtype dtype;
    int ndim;                    /* 0 for a scalar (shape []) */
    int64_t shape[G4C_MAX_DIMS];
    uint64_t numel, nbytes;
    int tag;                     /* caller's value, carried along (e.g. how to fill the tensor) */
} g4c_stw_tensor;
g4c_status g4c_stw_new(g4c_st_writer **out, g4c_err *err);
g4c_status g4c_stw_add(g4c_st_writer *w, const char *name, g4c_dtype dtype, int ndim, const int64_t *shape, int tag,
                       g4c_err *err);
/* Order as Python safetensors writes: wider dtypes first (keeps every tensor aligned), then by name. */
void g4c_stw_sort(g4c_st_writer *w);
int g4c_stw_count(const g4c_st_writer *w);
const g4c_stw_tensor *g4c_stw_get(const g4c_st_writer *w, int i); /* in file order */
uint64_t g4c_stw_data_size(const g4c_st_writer *w);               /* sum of the tensors' bytes */
uint64_t g4c_stw_file_size(const g4c_st_writer *w);               /* with the 8-byte length and the header */
uint64_t g4c_stw_written(const g4c_st_writer *w);                 /* data bytes written so far */
g4c_status g4c_stw_open(g4c_st_writer *w, const char *path, g4c_err *err);
g4c_status g4c_stw_write(g4c_st_writer *w, const void *data, size_t n, g4c_err *err);
g4c_status g4c_stw_finish(g4c_st_writer *w, g4c_err *err);
void g4c_stw_free(g4c_st_writer *w);
#endif
