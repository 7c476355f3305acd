/* Kernel throughput: matrix-vector (decode: GB/s of weights read) and matrix-matrix (prefill: GFLOP/s) for each
 * weight type, portable vs SIMD. A benchmark, not a test: run build/bench_ops [threads]. */
#include <stdio.h>
#include <stdlib.h>

#include "kernels/ops.h"

static double bench(g4c_pool *pool, g4c_wmat *w, float *x, float *y, int n, int reps) {
    g4c_matmul(pool, y, x, w, n); /* warm */
    double t0 = g4c_time_ms();
    for (int i = 0; i < reps; i++) g4c_matmul(pool, y, x, w, n);
    return (g4c_time_ms() - t0) / reps;
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    const int64_t rows = 4096, cols = 4096;
    g4c_pool *pool;
    if (g4c_pool_init(&pool, threads, NULL) || g4c_pool_reserve(pool, g4c_matmul_scratch_bytes(cols), NULL)) return 1;
    float *wf = malloc(sizeof(float) * rows * cols), *x = malloc(sizeof(float) * 64 * cols), *y = malloc(sizeof(float) * 64 * rows);
    uint16_t *wb = malloc(2 * rows * cols);
    for (int64_t i = 0; i < rows * cols; i++) wf[i] = (float)((i * 7919) % 2001 - 1000) * 1e-3f, wb[i] = g4c_f32_to_bf16(wf[i]);
    for (int64_t i = 0; i < 64 * cols; i++) x[i] = (float)((i * 31) % 201 - 100) * 1e-2f;
    printf("matmul %lldx%lld, %d threads\n%-9s %-6s %12s %12s\n", (long long)rows, (long long)cols, threads, "isa", "type",
           "n=1 GB/s", "n=64 GFLOP/s");
    for (int isa = 0; isa < 2; isa++) {
        g4c_cpu_set_isa(isa);
        if (isa && !g4c_cpu_isa()) break;
        for (int t = 0; t < 2; t++) {
            g4c_wmat w = {.dtype = t ? G4C_DTYPE_BF16 : G4C_DTYPE_F32, .data = t ? (void *)wb : (void *)wf, .rows = rows, .cols = cols};
            double ms1 = bench(pool, &w, x, y, 1, 20), ms64 = bench(pool, &w, x, y, 64, 3);
            printf("%-9s %-6s %12.1f %12.1f\n", isa ? "avx2" : "portable", t ? "bf16" : "f32",
                   (double)g4c_wmat_row_bytes(&w) * rows / (ms1 * 1e6), 2.0 * rows * cols * 64 / (ms64 * 1e6));
        }
    }
    g4c_pool_free(pool);
    free(wf), free(x), free(y), free(wb);
    return 0;
}
