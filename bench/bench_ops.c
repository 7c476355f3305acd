/* Kernel throughput, a benchmark (not a test): build/bench_ops [threads] [rows] [cols] [type, e.g. q6_k].
 * Per weight type and layout: matrix-vector GB/s of weight bytes (the decode case; the matrix is larger than the
 * caches) and matrix-matrix GMAC/s at 64 tokens (prefill), best of several repetitions (robust to a busy machine),
 * next to the read bandwidth of the same threads over a 1 GiB buffer: the decode floor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernels/ops.h"

static double best_ms(g4c_pool *pool, g4c_wmat *w, float *x, float *y, int n, int reps) {
    g4c_matmul(pool, y, x, w, n); /* warm */
    double best = 1e30;
    for (int i = 0; i < reps; i++) {
        const double t0 = g4c_time_ms();
        g4c_matmul(pool, y, x, w, n);
        const double t = g4c_time_ms() - t0;
        best = t < best ? t : best;
    }
    return best;
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    const int64_t rows = argc > 2 ? atoll(argv[2]) : 16384, cols = argc > 3 ? atoll(argv[3]) : 4096;
    const char *only = argc > 4 ? argv[4] : NULL; /* one weight type (its name, any case), else all */
    g4c_pool *pool;
    if (g4c_pool_init(&pool, threads, NULL) || g4c_pool_reserve(pool, g4c_matmul_scratch_bytes(cols), NULL)) return 1;
    const int n_pp = 64;
    float *wf = malloc(sizeof(float) * (size_t)(rows * cols)), *x = malloc(sizeof(float) * n_pp * cols);
    float *y = malloc(sizeof(float) * n_pp * rows);
    for (int64_t i = 0; i < rows * cols; i++) wf[i] = (float)((i * 7919) % 2001 - 1000) * 1e-3f;
    for (int64_t i = 0; i < n_pp * cols; i++) x[i] = (float)((i * 31) % 201 - 100) * 1e-2f;

    /* the floor: reads of 1 GiB by the same pool (g4c_read_bandwidth: plain and prefetching loops, the better) */
    printf("read bandwidth (%d threads, 1 GiB, plain and prefetching reads, best of 5 each): %.1f GB/s\n", threads, g4c_read_bandwidth(pool, 1u << 30, 5));

    printf("matmul %lldx%lld, %d threads, best of n\n%-9s %-6s %-5s %10s %10s %14s\n", (long long)rows,
           (long long)cols, threads, "isa", "type", "layout", "MB", "n=1 GB/s", "n=64 GMAC/s");
    const g4c_dtype types[] = {G4C_DTYPE_F32, G4C_DTYPE_BF16, G4C_DTYPE_Q8_0, G4C_DTYPE_Q4_0,
                               G4C_DTYPE_Q4_K, G4C_DTYPE_Q6_K};
    static const char *const isa_name[3] = {"portable", "simd", "avx512"};
    for (int isa = 2; isa >= 0; isa--) {
        g4c_cpu_set_isa(isa);
        if (g4c_cpu_isa() != isa) continue;
        for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
            const g4c_dtype t = types[ti];
            if (only && strcasecmp(only, g4c_dtype_infos[t].name)) continue;
            if (!isa && t != G4C_DTYPE_BF16 && t != G4C_DTYPE_Q4_0) continue; /* portable: two samples suffice */
            void *q = malloc(g4c_dtype_bytes(t, rows * cols));
            g4c_quantize(q, wf, t, rows * cols);
            g4c_wmat w = {.dtype = t, .data = q, .rows = rows, .cols = cols};
            void *p = NULL;
            for (int layout = 0; layout < 2; layout++) {
                const int is_float = t == G4C_DTYPE_F32 || t == G4C_DTYPE_BF16;
                if (isa == 2 && !layout && !is_float) continue; /* VNNI kernels read the interleaved layout only */
                if (layout) {
                    const size_t nb = g4c_cpu_repack_bytes(&w);
                    if (!nb || !isa) break;
                    p = g4c_amalloc(nb, 1, NULL); /* from 4 MiB on 2 MiB pages, like the model's weights */
                    g4c_cpu_repack(p, &w);
                    w.x8 = p;
                }
                const double bytes = (double)g4c_wmat_row_bytes(&w) * (double)rows;
                const double ms1 = best_ms(pool, &w, x, y, 1, 20), ms64 = best_ms(pool, &w, x, y, n_pp, 3);
                printf("%-9s %-6s %-5s %10.1f %10.1f %14.1f\n", isa_name[isa], g4c_dtype_infos[t].name,
                       layout ? "x8" : "rows", bytes / 1e6, bytes / (ms1 * 1e6),
                       (double)rows * (double)cols * n_pp / (ms64 * 1e6));
            }
            g4c_afree(p);
            free(q);
        }
    }
    g4c_pool_free(pool);
    free(wf), free(x), free(y);
    return 0;
}
