/* Error records, the log callback and the checked allocators. */
#define _DEFAULT_SOURCE /* madvise */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "base/base.h"

static g4c_log_fn log_fn;
static void *log_user;

void g4c_log_set(g4c_log_fn fn, void *user) {
    log_fn = fn;
    log_user = user;
}

void g4c_log(int level, const char *fmt, ...) {
    if (!log_fn) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_fn(level, buf, log_user);
}

g4c_status g4c_fail(g4c_err *err, g4c_status code, const char *file, int line, const char *fmt, ...) {
    if (err) {
        err->code = code;
        err->file = file;
        err->line = line;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void g4c_assert_fail(const char *cond, const char *file, int line) {
    fprintf(stderr, "gemma4c: internal error: assertion '%s' failed at %s:%d\n", cond, file, line);
    abort();
}

void *g4c_malloc(size_t n, size_t size, g4c_err *err) {
    if (size && n > SIZE_MAX / size) {
        G4C_FAIL(err, G4C_E_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    size_t bytes = n * size;
    void *p = malloc(bytes ? bytes : 1);
    if (!p) G4C_FAIL(err, G4C_E_NOMEM, "out of memory allocating %zu bytes", n * size);
    return p;
}

void *g4c_calloc(size_t n, size_t size, g4c_err *err) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) G4C_FAIL(err, G4C_E_NOMEM, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *g4c_amalloc(size_t n, size_t size, g4c_err *err) {
    if (size && n > (SIZE_MAX - 64) / size) {
        G4C_FAIL(err, G4C_E_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    size_t bytes = (n * size + 63) & ~(size_t)63;
    /* Big buffers (the KV cache, a long prompt's activations) on 2 MiB pages where the kernel allows it (THP in
     * "madvise" mode, as on this project's machines): decode re-reads the cache every token, and 4 KiB pages cost
     * the weights ~10% of their read rate (model/repack.c). Only from 4 MiB, so rounding wastes at most a third. */
    enum { HUGE = 2u << 20 };
    if (bytes >= 2 * HUGE) {
        bytes = (bytes + HUGE - 1) & ~(size_t)(HUGE - 1);
        void *p = aligned_alloc(HUGE, bytes);
        if (!p) G4C_FAIL(err, G4C_E_NOMEM, "out of memory allocating %zu bytes", bytes);
#if defined(MADV_HUGEPAGE)
        else madvise(p, bytes, MADV_HUGEPAGE);
#endif
        return p;
    }
    void *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) G4C_FAIL(err, G4C_E_NOMEM, "out of memory allocating %zu bytes", bytes);
    return p;
}

void g4c_afree(void *p) { free(p); }

const char *g4c_status_str(g4c_status s) {
    switch (s) {
    case G4C_OK: return "ok";
    case G4C_E_IO: return "i/o error";
    case G4C_E_FORMAT: return "malformed file";
    case G4C_E_CONFIG: return "bad configuration";
    case G4C_E_NOMEM: return "out of memory";
    case G4C_E_ARG: return "bad argument";
    case G4C_E_UNSUPPORTED: return "unsupported";
    }
    return "unknown status";
}

const char *g4c_version(void) { return "0.1.0"; }
