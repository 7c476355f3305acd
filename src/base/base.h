/* base: what every other module may use — error reporting, logging, half-precision conversion, a thread pool,
 * whole-file I/O helpers and .npy files. Depends on nothing but libc and pthreads. */
#ifndef G4C_BASE_BASE_H
#define G4C_BASE_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gemma4c.h"  // g4c_status, g4c_err

/* ---- errors (style: return a status, fill err; abort only on broken invariants) ---------------------------- */

/* Record a failure in err (may be NULL) and return code. */
g4c_status g4c_fail(g4c_err *err, g4c_status code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define G4C_FAIL(err, code, ...) g4c_fail((err), (code), __FILE__, __LINE__, __VA_ARGS__)
#define G4C_TRY(expr)                       \
    do {                                    \
        g4c_status try_st_ = (expr);        \
        if (try_st_ != G4C_OK) return try_st_; \
    } while (0)
/* Invariants no input can break (internal shape agreement). Stays on in release builds. */
#define G4C_ASSERT(c) ((c) ? (void)0 : g4c_assert_fail(#c, __FILE__, __LINE__))
_Noreturn void g4c_assert_fail(const char *cond, const char *file, int line);

void g4c_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Allocation that reports through err. Sizes are checked for overflow (n * size). */
void *g4c_malloc(size_t n, size_t size, g4c_err *err);
void *g4c_calloc(size_t n, size_t size, g4c_err *err);
/* 64-byte aligned, for SIMD-friendly activations; free with g4c_afree. */
void *g4c_amalloc(size_t n, size_t size, g4c_err *err);
void g4c_afree(void *p);
/* a * b without overflow, or 0 (and *ok = 0) when it would overflow. */
static inline uint64_t g4c_mul_u64(uint64_t a, uint64_t b, int *ok) {
    if (a && b > UINT64_MAX / a) { *ok = 0; return 0; }
    return a * b;
}

/* ---- half precision --------------------------------------------------------------------------------------- */

static inline float g4c_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* Round to nearest even (what torch's .to(bfloat16) does); NaN stays NaN. */
uint16_t g4c_f32_to_bf16(float f);
float g4c_f16_to_f32(uint16_t h);
uint16_t g4c_f32_to_f16(float f);

/* Element types of weight tensors. Block types store `block` elements in `size` bytes (ggml's layouts, so GGUF
 * files map directly; spec §8.2); plain types have block 1. U32 holds MLX's packed 4/8-bit codes (spec §8.3): a
 * matrix of it is read together with its scales and biases (kernels/ops.h g4c_wmat). */
typedef enum {
    G4C_DTYPE_F32 = 0,
    G4C_DTYPE_F16,
    G4C_DTYPE_BF16,
    G4C_DTYPE_Q4_0,
    G4C_DTYPE_Q4_1,
    G4C_DTYPE_Q5_0,
    G4C_DTYPE_Q5_1,
    G4C_DTYPE_Q8_0,
    G4C_DTYPE_Q4_K,
    G4C_DTYPE_Q5_K,
    G4C_DTYPE_Q6_K,
    G4C_DTYPE_U32,
    G4C_DTYPE_COUNT
} g4c_dtype;
extern const struct g4c_dtype_info {
    const char *name;    /* our spelling (safetensors' for F32/F16/BF16/U32, ggml's for the block types) */
    const char *st_name; /* safetensors dtype string, or NULL when safetensors cannot hold it */
    size_t size;         /* bytes per block */
    int block;           /* elements per block */
    int ggml_type;       /* GGUF tensor type id, -1 if none */
} g4c_dtype_infos[G4C_DTYPE_COUNT];
/* Bytes of n elements (n a multiple of the block size). */
static inline size_t g4c_dtype_bytes(g4c_dtype t, int64_t n) {
    return (size_t)(n / g4c_dtype_infos[t].block) * g4c_dtype_infos[t].size;
}
/* Convert n elements of a plain type (F32, F16, BF16) starting at src (any alignment) to f32. Block types are
 * converted by kernels (g4c_dequant in kernels/ops.h). */
void g4c_to_f32(float *dst, const void *src, g4c_dtype dt, size_t n);

/* ---- thread pool ------------------------------------------------------------------------------------------ */

typedef struct g4c_pool g4c_pool;
/* fn(ctx, i_task, i_thread) is called for every i_task in [0, n_tasks); thread ids are in [0, n_threads). */
typedef void (*g4c_task_fn)(void *ctx, int i_task, int i_thread);
g4c_status g4c_pool_init(g4c_pool **out, int n_threads, g4c_err *err);
void g4c_pool_free(g4c_pool *p);
int g4c_pool_n_threads(const g4c_pool *p);
/* Per-thread scratch owned by the pool, so hot loops never allocate. reserve grows every thread's buffer to at
 * least size_bytes (64-byte aligned); scratch returns thread i_thread's buffer and its size. */
g4c_status g4c_pool_reserve(g4c_pool *p, size_t size_bytes, g4c_err *err);
void *g4c_pool_scratch(const g4c_pool *p, int i_thread, size_t *size_bytes);
/* A buffer shared by the tasks of one operation (e.g. quantized activations), grown on demand; NULL when memory
 * runs out (callers then take a path that needs none). Valid until the next call; hold g4c_pool_lock around its
 * use when several threads share the pool. */
void *g4c_pool_shared(g4c_pool *p, size_t size_bytes);
/* Serialize callers: a pool (and its scratch) serves one caller at a time. g4c_pool_run takes the lock itself;
 * the lock is recursive, so an operation may hold it across several runs. */
void g4c_pool_lock(g4c_pool *p);
void g4c_pool_unlock(g4c_pool *p);
/* Runs all tasks (the caller's thread takes part) and returns when every one has finished. Thread-safe: concurrent
 * callers are served one after another. */
void g4c_pool_run(g4c_pool *p, g4c_task_fn fn, void *ctx, int n_tasks);
int g4c_n_cpus(void);

/* ---- files ------------------------------------------------------------------------------------------------ */

/* Read a whole file (at most max_size bytes, else G4C_E_FORMAT) into a NUL-terminated malloc'd buffer. */
g4c_status g4c_read_file(const char *path, size_t max_size, char **out, size_t *out_len, g4c_err *err);
/* Join dir and name into buf; fails if it does not fit. */
g4c_status g4c_path_join(char *buf, size_t size, const char *dir, const char *name, g4c_err *err);

/* Write a float32 C-order array of ndim <= 4 as .npy v1.0, atomically (temp file + rename). */
g4c_status g4c_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape, g4c_err *err);
/* Read a little-endian float32 or uint8 C-order .npy as floats; *data is malloc'd. */
g4c_status g4c_npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[4], g4c_err *err);

double g4c_time_ms(void);

#endif
