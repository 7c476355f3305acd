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

/* ---- GGUF (gguf.c reader, gguf_writer.c writer; docs/SECURITY.md "GGUF") ---- */
#ifndef G4C_FORMATS_GGUF
#define G4C_FORMATS_GGUF
/* GGUF v2/v3, little-endian (ggml's docs/gguf.md): magic "GGUF", u32 version, u64 tensor count, u64 metadata count,
 * the metadata key/values, the tensor infos (name, dims innermost first, ggml type, offset), padding to the
 * alignment (general.alignment, default 32), the tensor data. Tensors are exposed as a g4c_tensor_set (dims
 * reversed to PyTorch order, outermost first) pointing into the read-only mapping. */
typedef enum {
    G4C_GGUF_U8 = 0, G4C_GGUF_I8 = 1, G4C_GGUF_U16 = 2, G4C_GGUF_I16 = 3, G4C_GGUF_U32 = 4, G4C_GGUF_I32 = 5,
    G4C_GGUF_F32 = 6, G4C_GGUF_BOOL = 7, G4C_GGUF_STR = 8, G4C_GGUF_ARR = 9, G4C_GGUF_U64 = 10, G4C_GGUF_I64 = 11,
    G4C_GGUF_F64 = 12, G4C_GGUF_NTYPES
} g4c_gguf_type;
#define G4C_GGUF_MAX_DEPTH 4      /* arrays of arrays nest at most this deep */
#define G4C_GGUF_MAX_NAME 255     /* tensor name bytes (llama.cpp: 63) */
#define G4C_GGUF_MAX_KEY 65535    /* metadata key bytes */
#define G4C_GGUF_DEFAULT_ALIGN 32

typedef struct {
    const char *key;          /* into the file: NOT NUL-terminated */
    size_t key_len;
    g4c_gguf_type type;
    g4c_gguf_type arr_type;   /* element type when type is ARR */
    uint64_t n;               /* ARR: elements; STR: bytes; scalars: 1 */
    const uint8_t *data;      /* STR: the bytes; ARR: the first element; scalars: the value */
    size_t size;              /* bytes of the value after its type tag (ARR: after the array header) */
} g4c_gguf_kv;

typedef struct g4c_gguf {
    char *what;               /* path, for messages */
    uint32_t version, alignment;
    int64_t n_kv;
    g4c_gguf_kv *kv;          /* file order */
    g4c_gguf_kv **kv_sorted;  /* kv sorted by key */
    g4c_tensor_set *ts;       /* the tensors; owns the mapping (ts->files[0]) when opened from a file */
    uint64_t data_offset;     /* start of the tensor data in the file */
    const uint8_t *base;      /* the whole file */
    size_t size;
} g4c_gguf;

/* Open (mmap) and validate a GGUF file; every failure names the file and the key or tensor at fault. */
g4c_status g4c_gguf_open(g4c_gguf **out, const char *path, g4c_err *err);
/* The same over a file image in memory (tests, fuzzing); tensors point into buf. */
g4c_status g4c_gguf_parse_buffer(g4c_gguf **out, const void *buf, size_t len, const char *what, g4c_err *err);
void g4c_gguf_free(g4c_gguf *g);
const char *g4c_gguf_type_name(g4c_gguf_type t);
/* ggml tensor type name ("Q4_K", "IQ4_XS"...) for any id, "?" when unknown. */
const char *g4c_ggml_type_name(int ggml_type);

const g4c_gguf_kv *g4c_gguf_find(const g4c_gguf *g, const char *key);
/* Typed getters. When the key is absent: with found != NULL, *found = 0 and *out is left alone; with found NULL the
 * key is required and its absence is an error. A present key of the wrong type or out of range is an error naming
 * the file and the key (G4C_E_FORMAT). Integers accept any GGUF integer type; reals accept F32/F64. */
g4c_status g4c_gguf_get_int(const g4c_gguf *g, const char *key, int64_t lo, int64_t hi, int64_t *out, int *found,
                            g4c_err *err);
g4c_status g4c_gguf_get_real(const g4c_gguf *g, const char *key, double *out, int *found, g4c_err *err);
g4c_status g4c_gguf_get_bool(const g4c_gguf *g, const char *key, int *out, int *found, g4c_err *err);
/* The string's bytes (not NUL-terminated) and length. */
g4c_status g4c_gguf_get_str(const g4c_gguf *g, const char *key, const char **s, size_t *len, int *found,
                            g4c_err *err);
/* An integer scalar (copied to all n) or an integer array of exactly n elements, each in [lo, hi]. */
g4c_status g4c_gguf_get_ints(const g4c_gguf *g, const char *key, int64_t lo, int64_t hi, int64_t *out, int64_t n,
                             int *found, g4c_err *err);
/* A bool (or integer 0/1) array of exactly n elements, or a scalar bool copied to all n. */
g4c_status g4c_gguf_get_bools(const g4c_gguf *g, const char *key, int *out, int64_t n, int *found, g4c_err *err);
/* An array of element type t (any length); *kv_out is the key's record. */
g4c_status g4c_gguf_get_arr(const g4c_gguf *g, const char *key, g4c_gguf_type t, const g4c_gguf_kv **kv_out,
                            int *found, g4c_err *err);
/* Element i of an array of numbers (any integer, real or bool element type), as double / int64. */
double g4c_gguf_arr_real(const g4c_gguf_kv *kv, uint64_t i);
int64_t g4c_gguf_arr_int(const g4c_gguf_kv *kv, uint64_t i);
/* Walk an array of strings: start with *pos = 0; returns 0 at the end. */
int g4c_gguf_arr_str_next(const g4c_gguf_kv *kv, size_t *pos, const char **s, size_t *len);

/* Streaming GGUF v3 writer (constant memory in the tensor data): declare the metadata (kv_*) and every tensor
 * (add_tensor, PyTorch-order shape), then open (writes header, metadata and tensor infos to PATH.tmp), append each
 * tensor's bytes in declaration order in chunks of any size (write; the padding to the alignment is inserted), and
 * finish (checks every byte arrived, fsyncs, renames to PATH). Freeing an unfinished writer removes PATH.tmp.
 * Tensors are packed in order, each padded to the alignment, as ggml requires. */
typedef struct g4c_gguf_writer g4c_gguf_writer;
g4c_status g4c_ggw_new(g4c_gguf_writer **out, g4c_err *err);
void g4c_ggw_free(g4c_gguf_writer *w);
/* A key set twice keeps its last value (in the position of the first). general.alignment is written by open. */
g4c_status g4c_ggw_kv_u32(g4c_gguf_writer *w, const char *key, uint32_t v, g4c_err *err);
g4c_status g4c_ggw_kv_i32(g4c_gguf_writer *w, const char *key, int32_t v, g4c_err *err);
g4c_status g4c_ggw_kv_f32(g4c_gguf_writer *w, const char *key, float v, g4c_err *err);
g4c_status g4c_ggw_kv_bool(g4c_gguf_writer *w, const char *key, int v, g4c_err *err);
g4c_status g4c_ggw_kv_str(g4c_gguf_writer *w, const char *key, const char *s, size_t len, g4c_err *err);
/* An array of n fixed-size elements of type t (not STR/ARR), copied from data (little-endian element layout). */
g4c_status g4c_ggw_kv_arr(g4c_gguf_writer *w, const char *key, g4c_gguf_type t, const void *data, uint64_t n,
                          g4c_err *err);
/* An array of n strings; lens may be NULL (strlen). */
g4c_status g4c_ggw_kv_arr_str(g4c_gguf_writer *w, const char *key, const char *const *s, const size_t *lens,
                              uint64_t n, g4c_err *err);
/* Copy a key/value from a file being read (any type, nested arrays included). */
g4c_status g4c_ggw_kv_copy(g4c_gguf_writer *w, const g4c_gguf_kv *kv, g4c_err *err);
g4c_status g4c_ggw_add_tensor(g4c_gguf_writer *w, const char *name, g4c_dtype dtype, int ndim, const int64_t *shape,
                              g4c_err *err);
int g4c_ggw_n_tensors(const g4c_gguf_writer *w);
uint64_t g4c_ggw_tensor_bytes(const g4c_gguf_writer *w, int i);
g4c_status g4c_ggw_open(g4c_gguf_writer *w, const char *path, uint32_t alignment, g4c_err *err);
g4c_status g4c_ggw_write(g4c_gguf_writer *w, const void *data, size_t n, g4c_err *err);
g4c_status g4c_ggw_finish(g4c_gguf_writer *w, g4c_err *err);
#endif
