/* CPU weight layout: the text decoder's Q4_0 / Q8_0 / Q6_K matrices copied once into the 8-row interleaved layout the
 * integer kernels stream fastest (kernels/cpu/repack.c explains the layout and why). Done by the first CPU session
 * of a model; CUDA sessions and the reference path keep reading the ggml layout in the mapped file. The source pages
 * are dropped from memory afterwards (they stay in the page cache and re-fault if something reads them, e.g. the
 * embedding rows of a tied head), so a repacked model costs about the same resident memory as a mapped one.
 * G4C_NO_REPACK=1 in the environment keeps the mapped layout (for A/B measurements). */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, madvise */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model/model.h"

enum { MAX_MATS = 16 };

/* every matrix the decoder multiplies by (the embedding rows are looked up, never multiplied, unless tied) */
static int text_mats(g4c_weights *w, const g4c_config *c, g4c_wmat **out, int cap) {
    int n = 0;
    out[n++] = &w->lm_head;
    out[n++] = &w->ple_model_proj;
    for (int i = 0; i < c->n_layer && n + MAX_MATS <= cap; i++) {
        g4c_layer_w *L = &w->layers[i];
        g4c_wmat *m[] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down, &L->router, &L->exp_gate_up,
                         &L->exp_gate, &L->exp_up, &L->exp_down, &L->ple_gate, &L->ple_proj};
        for (size_t k = 0; k < sizeof m / sizeof *m; k++) out[n++] = m[k];
    }
    return n;
}

typedef struct {
    g4c_wmat **mats;
    char **dst;
} repack_job;

static void repack_task(void *ctx, int i_task, int i_thread) {
    (void)i_thread;
    repack_job *j = ctx;
    g4c_wmat *w = j->mats[i_task];
    if (!j->dst[i_task]) return;
    g4c_cpu_repack(j->dst[i_task], w);
    /* drop the source pages from this process (whole pages inside the tensor only) */
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)w->data,
                    e = a + (uintptr_t)w->rows * g4c_wmat_row_bytes(w);
    const uintptr_t lo = (a + page - 1) / page * page, hi = e / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
    w->x8 = j->dst[i_task];
}

g4c_status g4c_weights_repack_cpu(g4c_weights *w, const g4c_config *c, g4c_pool *pool, g4c_err *err) {
    if (w->repack_done) return G4C_OK;
    w->repack_done = 1;
    const char *off = getenv("G4C_NO_REPACK");
    if (off && *off && *off != '0') return G4C_OK;
    const int cap = 2 + MAX_MATS * c->n_layer;
    g4c_wmat **mats = g4c_malloc((size_t)cap, sizeof *mats, err);
    char **dst = mats ? g4c_calloc((size_t)cap, sizeof *dst, err) : NULL;
    if (!dst) {
        free(mats);
        return G4C_E_NOMEM;
    }
    const int n = text_mats(w, c, mats, cap);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (g4c_cpu_repack_bytes(mats[i]) + 63) / 64 * 64;
    if (total) {
        void *buf = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (buf == MAP_FAILED) {
            free(mats);
            free(dst);
            return G4C_FAIL(err, G4C_E_NOMEM, "cannot map %.1f MiB for the repacked CPU weights", total / 1048576.0);
        }
        size_t at = 0;
        for (int i = 0; i < n; i++) {
            const size_t b = g4c_cpu_repack_bytes(mats[i]);
            if (b) dst[i] = (char *)buf + at;
            at += (b + 63) / 64 * 64;
        }
        repack_job j = {mats, dst};
        g4c_pool_run(pool, repack_task, &j, n);
        w->repacked = buf;
        w->repacked_bytes = total;
    }
    free(mats);
    free(dst);
    return G4C_OK;
}

void g4c_weights_repack_free(g4c_weights *w) {
    if (w->repacked) munmap(w->repacked, w->repacked_bytes);
    w->repacked = NULL;
    w->repacked_bytes = 0;
}
