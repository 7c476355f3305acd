/* CUPTI activity tracing for bench_cuda --profile (kernel_trace.h). */
#include "kernel_trace.h"

#include <cupti.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[96];
    int grid, block;
    uint64_t start, end;
} kernel_rec;

static kernel_rec *recs;
static size_t n_recs, cap_recs;

/* "_ZN12_GLOBAL__N_17k_qgemvILi4EEEvPf..." -> "k_qgemv<I Li4 E>": the first length-prefixed identifier that starts
 * with "k_" (our kernels' names), plus its template arguments raw; other names (cuBLAS) cut to their first 60 bytes */
static void short_name(char *out, size_t size, const char *m) {
    for (const char *p = m; *p; p++) {
        if (*p < '0' || *p > '9' || (p > m && p[-1] >= '0' && p[-1] <= '9')) continue;
        char *end;
        const long len = strtol(p, &end, 10);
        if (len <= 2 || strncmp(end, "k_", 2) || (long)strnlen(end, (size_t)len) < len) continue;
        int o = snprintf(out, size, "%.*s", (int)len, end);
        const char *t = end + len;
        if (*t == 'I' && o > 0 && (size_t)o < size) { /* template arguments up to the matching E */
            int depth = 0;
            const char *s = t;
            do {
                if (*s == 'I') depth++;
                else if (*s == 'E') depth--;
                s++;
            } while (*s && depth > 0);
            snprintf(out + o, size - (size_t)o, "<%.*s>", (int)(s - t - 2 > 0 ? s - t - 2 : 0), t + 1);
        }
        return;
    }
    snprintf(out, size, "%.60s", m);
}

static void CUPTIAPI buffer_requested(uint8_t **buffer, size_t *size, size_t *max_records) {
    *size = (size_t)8 << 20;
    *buffer = aligned_alloc(8, *size);
    *max_records = 0;
}

static void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size, size_t valid) {
    (void)ctx, (void)stream, (void)size;
    CUpti_Activity *rec = NULL;
    while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
        if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL && rec->kind != CUPTI_ACTIVITY_KIND_KERNEL) continue;
        const CUpti_ActivityKernel10 *k = (const CUpti_ActivityKernel10 *)rec;
        if (n_recs == cap_recs) {
            const size_t cap = cap_recs ? 2 * cap_recs : 4096;
            kernel_rec *r = realloc(recs, cap * sizeof *r);
            if (!r) break;
            recs = r, cap_recs = cap;
        }
        kernel_rec *r = &recs[n_recs++];
        short_name(r->name, sizeof r->name, k->name ? k->name : "?");
        r->grid = k->gridX * k->gridY * k->gridZ, r->block = k->blockX * k->blockY * k->blockZ;
        r->start = k->start, r->end = k->end;
    }
    free(buffer);
}

int kernel_trace_start(void) {
    if (cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed) != CUPTI_SUCCESS ||
        cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS) {
        fprintf(stderr, "kernel trace: CUPTI activity recording unavailable\n");
        return 1;
    }
    return 0;
}

typedef struct {
    char name[96];
    int grid, block;
    int n;
    double us;
} group;

static int by_time(const void *a, const void *b) {
    const double x = ((const group *)a)->us, y = ((const group *)b)->us;
    return (x < y) - (x > y);
}

void kernel_trace_report(FILE *f, int tokens, double weight_bytes, double bw_gbs) {
    cuptiActivityFlushAll(1);
    cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
    if (!n_recs || tokens < 1) {
        fprintf(f, "kernel trace: no kernels recorded\n");
        return;
    }
    group *g = calloc(n_recs, sizeof *g);
    size_t n_g = 0;
    uint64_t lo = UINT64_MAX, hi = 0;
    double sum = 0, gemv = 0;
    for (size_t i = 0; i < n_recs && g; i++) {
        const kernel_rec *r = &recs[i];
        const double us = (double)(r->end - r->start) / 1e3;
        sum += us;
        if (strstr(r->name, "gemv")) gemv += us;
        if (r->start < lo) lo = r->start;
        if (r->end > hi) hi = r->end;
        size_t k = 0;
        while (k < n_g && (strcmp(g[k].name, r->name) || g[k].grid != r->grid || g[k].block != r->block)) k++;
        if (k == n_g) {
            memcpy(g[k].name, r->name, sizeof g[k].name);
            g[k].grid = r->grid, g[k].block = r->block, n_g++;
        }
        g[k].n++, g[k].us += us;
    }
    if (!g) return;
    qsort(g, n_g, sizeof *g, by_time);
    const double span = (double)(hi - lo) / 1e3 / tokens, floor_us = weight_bytes / (bw_gbs * 1e3);
    fprintf(f, "%zu kernels per token; summed kernel time %.1f us per token, wall span %.1f us per token (first start "
               "to last end; sum > span where kernels overlap)\n",
            n_recs / (size_t)tokens, sum / tokens, span);
    fprintf(f, "weight-reading kernels (*gemv*): %.1f us per token against a floor of %.1f us (%.3f GB at %.0f GB/s): "
               "%.0f%% of the floor's speed; all other kernels %.1f us per token\n\n",
            gemv / tokens, floor_us, weight_bytes / 1e9, bw_gbs, 100.0 * floor_us / (gemv / tokens),
            (sum - gemv) / tokens);
    fprintf(f, "| kernel | grid | block | launches / token | us / token | us / launch | share of summed time |\n");
    fprintf(f, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (size_t k = 0; k < n_g; k++)
        fprintf(f, "| %s | %d | %d | %g | %.1f | %.2f | %.1f%% |\n", g[k].name, g[k].grid, g[k].block,
                (double)g[k].n / tokens, g[k].us / tokens, g[k].us / g[k].n, 100.0 * g[k].us / sum);
    free(g);
    free(recs);
    recs = NULL, n_recs = cap_recs = 0;
}
