/* The decode floor: how fast this machine's threads read memory. Decode streams every weight byte once per token,
 * so tokens/s x bytes/token can at best equal this rate (bench/RESULTS.md states tg as a fraction of it).
 * Plain sequential reads of a buffer far larger than the caches, split into long stretches over the pool's threads,
 * on 2 MiB pages as the repacked weights are (model/repack.c); each repetition three times: plain, with software
 * prefetch G4C_PF_AHEAD ahead, and with that plus requests into the L2 G4C_PF_FAR ahead (what the decode kernels do;
 * cpu_int.h), and the best of all counts: on the AMD VM the plain loop is faster (~22-25 vs ~18-22 GB/s), on the GPU
 * hosts' Xeon the kernels with prefetch read ~10% faster than the plain loop (bench/RESULTS.md, ninth session), on
 * the Xeon the L2 requests add ~10% more (eleventh session), so no one loop is the floor.
 * Two rates: the fastest single pass (the peak), and the best loop's mean over seconds of passes (sustained). A
 * decode is seconds of reading, so it is held against the sustained rate; on the 2-vCPU Xeon single passes
 * of the same loop swing 10-29 GB/s and the best of a few runs 10-25% above the mean of 8 s (twelfth session). */
#include <string.h>

#include "kernels/cpu/cpu_int.h"

typedef struct {
    const uint64_t *buf;
    size_t n; /* uint64 words */
    int n_tasks;
    int prefetch, far; /* bytes ahead (into the L1, into the L2 alone), or 0 */
    int simd;          /* g4c_simd_supported(), asked once: CPUID traps to the hypervisor in a VM */
    uint64_t sink; /* every task's XOR, so the loads are not dead code */
} read_job;

#if defined(__x86_64__)
#include <immintrin.h>
/* 32-byte loads, four independent chains: limited by memory, not by the loop */
__attribute__((target("avx2"))) static uint64_t read_avx2(const __m256i *p, size_t n_vec, int prefetch, int far) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i + 4 <= n_vec; i += 4) {
        if (prefetch) { /* the 128 bytes this iteration reads, `prefetch` bytes on */
            _mm_prefetch((const char *)(p + i) + prefetch, _MM_HINT_T0);
            _mm_prefetch((const char *)(p + i) + prefetch + 64, _MM_HINT_T0);
        }
        if (far) { /* and `far` bytes on, into the L2 */
            _mm_prefetch((const char *)(p + i) + far, _MM_HINT_T2);
            _mm_prefetch((const char *)(p + i) + far + 64, _MM_HINT_T2);
        }
        a = _mm256_xor_si256(a, _mm256_load_si256(p + i));
        b = _mm256_xor_si256(b, _mm256_load_si256(p + i + 1));
        c = _mm256_xor_si256(c, _mm256_load_si256(p + i + 2));
        d = _mm256_xor_si256(d, _mm256_load_si256(p + i + 3));
    }
    a = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    return (uint64_t)_mm256_extract_epi64(a, 0);
}
#endif

static void read_task(void *ctx, int i_task, int i_thread) {
    (void)i_thread;
    read_job *j = ctx;
    const size_t per = j->n / (size_t)j->n_tasks / 4 * 4, lo = per * (size_t)i_task;
    uint64_t a = 0, b = 0, c = 0, d = 0;
#if defined(__x86_64__)
    if (j->simd) a = read_avx2((const __m256i *)(j->buf + lo), per / 4, j->prefetch, j->far);
    else
#endif
        for (size_t i = lo; i + 4 <= lo + per; i += 4) a ^= j->buf[i], b ^= j->buf[i + 1], c ^= j->buf[i + 2], d ^= j->buf[i + 3];
    __atomic_fetch_xor(&j->sink, a ^ b ^ c ^ d, __ATOMIC_RELAXED);
}

/* Passes over one buffer, the three loops taking turns: at least `passes` of them and until `ms` have passed.
 * *best: the fastest single pass (GB/s); the return: the best loop's mean over its passes (its bytes / its time). */
static double read_passes(g4c_pool *pool, size_t bytes, int passes, double ms, double *best) {
    *best = 0;
    const size_t n = bytes / sizeof(uint64_t);
    if (!n || passes < 1) return 0;
    uint64_t *buf = g4c_amalloc(n, sizeof *buf, NULL); /* 2 MiB pages; so large a block goes back to the system */
    if (!buf) return 0;
    memset(buf, 1, n * sizeof *buf);
    /* 64 stretches, or one per thread where the pool is larger; each a whole number of 32-byte loads */
    const int nt = g4c_pool_n_threads(pool) > 64 ? g4c_pool_n_threads(pool) : 64;
    const size_t read = (size_t)nt * (n / (size_t)nt / 4 * 4) * sizeof *buf; /* what the tasks read (read_task) */
    read_job j = {buf, n, nt, 0, 0, g4c_simd_supported(), 0};
    double fastest = 1e30, spent[3] = {0}, done[3] = {0};
    const double start = g4c_time_ms();
    for (int r = 0; r < passes || g4c_time_ms() - start < ms; r++) {
        j.prefetch = r % 3 ? G4C_PF_AHEAD : 0; /* the portable loop has none: the variants are the same there */
        j.far = r % 3 == 2 ? G4C_PF_FAR : 0;
        const double t0 = g4c_time_ms();
        g4c_pool_run(pool, read_task, &j, j.n_tasks);
        const double t = g4c_time_ms() - t0;
        fastest = t < fastest ? t : fastest;
        spent[r % 3] += t, done[r % 3] += (double)read;
    }
    g4c_afree(buf);
    double mean = 0;
    for (int v = 0; v < 3; v++)
        if (spent[v] > 0 && done[v] / (spent[v] * 1e6) > mean) mean = done[v] / (spent[v] * 1e6);
    *best = (double)read / (fastest * 1e6);
    return mean;
}

double g4c_read_bandwidth(g4c_pool *pool, size_t bytes, int reps) {
    double best;
    read_passes(pool, bytes, 3 * reps, 0, &best);
    return best;
}

double g4c_read_sustained(g4c_pool *pool, size_t bytes, double ms, double *peak) {
    double best;
    const double mean = read_passes(pool, bytes, 3, ms, &best);
    if (peak) *peak = best;
    return mean;
}
