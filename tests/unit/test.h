/* A minimal test harness: CHECK records a failure and continues; the run ends with "N passed, N failed".
 * Each test_*.c defines its tests as functions and lists them in main with RUN(fn). */
#ifndef G4C_TESTS_TEST_H
#define G4C_TESTS_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failed_checks __attribute__((unused)), test_passed, test_failed;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                \
            test_failed_checks++;                                                            \
        }                                                                                    \
    } while (0)

#define CHECKF(cond, ...)                                                                    \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fputc('\n', stderr);                                                             \
            test_failed_checks++;                                                            \
        }                                                                                    \
    } while (0)

#define RUN(fn)                                                                              \
    do {                                                                                     \
        int before_ = test_failed_checks;                                                    \
        fn();                                                                                \
        if (test_failed_checks == before_) {                                                 \
            test_passed++;                                                                   \
            printf("ok   %s\n", #fn);                                                        \
        } else {                                                                             \
            test_failed++;                                                                   \
            printf("FAIL %s\n", #fn);                                                        \
        }                                                                                    \
    } while (0)

#define TEST_REPORT()                                                                        \
    (printf("%d passed, %d failed\n", test_passed, test_failed), test_failed ? 1 : 0)

/* Deterministic inputs: splitmix64 -> uniform [-1, 1). */
static inline uint64_t test_rng_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline float test_rng_f(uint64_t *s) { return (float)((test_rng_u64(s) >> 40) * 0x1p-23) - 1.0f; }
static inline void test_fill(float *x, size_t n, uint64_t *s) {
    for (size_t i = 0; i < n; i++) x[i] = test_rng_f(s);
}

/* ||a - b|| / ||b||, the relative L2 error used for logits (issue 2: <= 1e-5 per position). */
static inline double test_rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

#endif
