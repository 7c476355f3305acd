/* CPU weight layout: the text decoder's Q4_0 / Q8_0 / Q4_K / Q6_K matrices copied once into the 8-row interleaved layout the
 * integer kernels stream fastest (kernels/cpu/repack.c explains the layout and why). Done by the first CPU session
 * of a model; CUDA sessions and the reference path keep reading the ggml layout in the mapped file. The source pages
 * are dropped from memory afterwards (they stay in the page cache and re-fault if something reads them, e.g. the
 * embedding rows of a tied head), so a repacked model costs about the same resident memory as a mapped one.
 * G4C_NO_REPACK=1 in the environment keeps the mapped layout (for A/B measurements). Also the weight accounting
 * `info` and `bench` print: what the repack copies, and the bytes one decoded token reads. */
#define _DEFAULT_SOURCE /* madvise */
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

/* slices of at most SLICE rows (whole groups of 8), so one large matrix (the tied head) spreads over the threads */
enum { SLICE = 2048 };

typedef struct {
    g4c_wmat **mats;
    char **dst;
    int *slice_mat;      /* [n_slices] matrix index */
    int64_t *slice_row;  /* [n_slices] first row */
} repack_job;

/* drop a repacked slice's source pages from this process (whole pages inside it only), at once: the peak stays
 * near one copy of the weights (a 14 GB model on a 24 GB machine must not hold both) */
static void drop_source(const g4c_wmat *w) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)w->data,
                    e = a + (uintptr_t)w->rows * g4c_wmat_row_bytes(w);
    const uintptr_t lo = (a + page - 1) / page * page, hi = e / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

static void repack_task(void *ctx, int i_task, int i_thread) {
    (void)i_thread;
    const repack_job *j = ctx;
    const g4c_wmat *w = j->mats[j->slice_mat[i_task]];
    const int64_t r0 = j->slice_row[i_task], n = w->rows - r0 < SLICE ? w->rows - r0 : SLICE;
    const g4c_wmat s = g4c_wmat_rows(*w, r0, n);
    g4c_cpu_repack(j->dst[j->slice_mat[i_task]] + (size_t)r0 * g4c_wmat_x8_row_bytes(w), &s);
    drop_source(&s);
}

g4c_status g4c_weights_repack_cpu(g4c_weights *w, const g4c_config *c, g4c_pool *pool, g4c_err *err) {
    (void)err; /* out of memory only costs speed: a warning, and the mapped layout */
    if (w->repack_done) return G4C_OK;
    w->repack_done = 1;
    const char *off = getenv("G4C_NO_REPACK");
    if (off && *off && *off != '0') return G4C_OK;
    const int cap = 2 + MAX_MATS * c->n_layer;
    g4c_wmat **mats = g4c_malloc((size_t)cap, sizeof *mats, err);
    char **dst = mats ? g4c_calloc((size_t)cap, sizeof *dst, err) : NULL;
    if (!dst) {
        free(mats);
        g4c_log(G4C_LOG_WARN, "no memory to repack the CPU weights: using the mapped layout");
        return G4C_OK;
    }
    const int n = text_mats(w, c, mats, cap);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (g4c_cpu_repack_bytes(mats[i]) + 63) / 64 * 64;
    int n_slices = 0;
    for (int i = 0; i < n; i++)
        if (g4c_cpu_repack_bytes(mats[i])) n_slices += (int)((mats[i]->rows + SLICE - 1) / SLICE);
    int *slice_mat = total ? g4c_malloc((size_t)n_slices, sizeof *slice_mat, err) : NULL;
    int64_t *slice_row = slice_mat ? g4c_malloc((size_t)n_slices, sizeof *slice_row, err) : NULL;
    /* on 2 MiB pages (g4c_amalloc): decode streams it */
    void *buf = total && slice_row ? g4c_amalloc(total, 1, NULL) : NULL;
    if (total && !buf) /* not fatal: the kernels read the mapped layout, a little slower */
        g4c_log(G4C_LOG_WARN, "no memory for the repacked CPU weights (%.1f MiB): using the mapped layout",
                total / 1048576.0);
    if (total && buf) {
        size_t at = 0;
        n_slices = 0;
        for (int i = 0; i < n; i++) {
            const size_t b = g4c_cpu_repack_bytes(mats[i]);
            if (!b) continue;
            dst[i] = (char *)buf + at;
            at += (b + 63) / 64 * 64;
            for (int64_t r = 0; r < mats[i]->rows; r += SLICE) slice_mat[n_slices] = i, slice_row[n_slices++] = r;
        }
        repack_job j = {mats, dst, slice_mat, slice_row};
        g4c_pool_run(pool, repack_task, &j, n_slices);
        for (int i = 0; i < n; i++)
            if (dst[i]) mats[i]->x8 = dst[i];
        w->repacked = buf;
        w->repacked_bytes = total;
    }
    free(slice_mat);
    free(slice_row);
    free(mats);
    free(dst);
    return G4C_OK;
}

size_t g4c_weights_repack_estimate(g4c_weights *w, const g4c_config *c, int *n_mats) {
    g4c_wmat *mats[2 + MAX_MATS * 256];
    const int n = c->n_layer <= 256 ? text_mats(w, c, mats, 2 + MAX_MATS * 256) : 0;
    size_t total = 0;
    *n_mats = 0;
    for (int i = 0; i < n; i++) {
        const size_t b = g4c_cpu_repack_bytes(mats[i]);
        total += b;
        *n_mats += b > 0;
    }
    return total;
}

static size_t mat_bytes(const g4c_wmat *m) { return m->rows > 0 ? (size_t)m->rows * g4c_wmat_row_bytes(m) : 0; }

size_t g4c_weights_token_bytes(const g4c_weights *w, const g4c_config *c) {
    size_t total = mat_bytes(&w->lm_head) + mat_bytes(&w->ple_model_proj);
    if (w->embed.rows > 0) total += g4c_wmat_row_bytes(&w->embed);         /* the token's embedding row */
    if (w->ple_embed.rows > 0) total += g4c_wmat_row_bytes(&w->ple_embed); /* and its per-layer row */
    for (int i = 0; i < c->n_layer; i++) {
        const g4c_layer_w *L = &w->layers[i];
        const g4c_wmat *dense[] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down, &L->router, &L->ple_gate,
                                   &L->ple_proj};
        for (size_t k = 0; k < sizeof dense / sizeof *dense; k++) total += mat_bytes(dense[k]);
        const size_t experts = mat_bytes(&L->exp_gate_up) + mat_bytes(&L->exp_gate) + mat_bytes(&L->exp_up) +
                               mat_bytes(&L->exp_down);
        if (experts && c->n_expert > 0) total += experts / (size_t)c->n_expert * (size_t)c->n_expert_used;
    }
    return total;
}

void g4c_weights_repack_free(g4c_weights *w) {
    g4c_afree(w->repacked);
    w->repacked = NULL;
    w->repacked_bytes = 0;
}
