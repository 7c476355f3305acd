/* base: half-precision conversion, thread pool, npy round trip. */
#include <stdatomic.h>
#include <unistd.h>

#include "base/base.h"
#include "test.h"

static void test_bf16_round_trip(void) {
    /* every bf16 value converts to f32 and back unchanged (NaNs stay NaN) */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = g4c_bf16_to_f32((uint16_t)h);
        uint16_t back = g4c_f32_to_bf16(f);
        if (isnan(f)) CHECK(isnan(g4c_bf16_to_f32(back)));
        else CHECKF(back == h, "h=%04x back=%04x", h, back);
    }
    /* round to nearest even at the halfway point */
    CHECK(g4c_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80);           /* tie -> even (down) */
    CHECK(g4c_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81); /* above tie -> up */
}

static void test_f16_round_trip(void) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = g4c_f16_to_f32((uint16_t)h);
        uint16_t back = g4c_f32_to_f16(f);
        if (isnan(f)) CHECK(isnan(g4c_f16_to_f32(back)));
        else CHECKF(back == h, "h=%04x f=%g back=%04x", h, f, back);
    }
    CHECK(g4c_f16_to_f32(0x3c00) == 1.0f);
    CHECK(g4c_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(g4c_f32_to_f16(1e6f) == 0x7c00);
}

static atomic_int hits[1000];
static void count_task(void *ctx, int i, int thr) {
    (void)ctx;
    (void)thr;
    atomic_fetch_add(&hits[i], 1);
}

static void test_pool_runs_every_task_once(void) {
    g4c_pool *p;
    CHECK(g4c_pool_init(&p, 4, NULL) == G4C_OK);
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 1000; i++) atomic_store(&hits[i], 0);
        int n = 1 + round * 19;
        g4c_pool_run(p, count_task, NULL, n);
        for (int i = 0; i < 1000; i++) CHECK(atomic_load(&hits[i]) == (i < n ? 1 : 0));
    }
    g4c_pool_free(p);
    g4c_err err = {0};
    CHECK(g4c_pool_init(&p, 5000, &err) == G4C_E_ARG && strstr(err.msg, "5000"));
}

static void test_npy_round_trip(void) {
    char dir[] = "/tmp/g4c_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/a.npy", dir);
    float data[6] = {1, -2, 3.5f, 0, 1e-7f, 42};
    int64_t shape[2] = {2, 3};
    CHECK(g4c_npy_write_f32(path, data, 2, shape, NULL) == G4C_OK);
    float *back;
    int nd;
    int64_t sh[4];
    CHECK(g4c_npy_read_f32(path, &back, &nd, sh, NULL) == G4C_OK);
    CHECK(nd == 2 && sh[0] == 2 && sh[1] == 3);
    CHECK(memcmp(back, data, sizeof data) == 0);
    free(back);
    /* header is 64-byte aligned as numpy requires */
    FILE *f = fopen(path, "rb");
    unsigned char h[10];
    CHECK(f && fread(h, 1, 10, f) == 10);
    if (f) fclose(f);
    CHECK((10 + (h[8] | h[9] << 8)) % 64 == 0);
    g4c_err err = {0};
    snprintf(path, sizeof path, "%s/missing.npy", dir);
    CHECK(g4c_npy_read_f32(path, &back, &nd, sh, &err) == G4C_E_IO && strstr(err.msg, "missing.npy"));
    snprintf(path, sizeof path, "%s/a.npy", dir);
    remove(path);
    rmdir(dir);
}

int main(void) {
    RUN(test_bf16_round_trip);
    RUN(test_f16_round_trip);
    RUN(test_pool_runs_every_task_once);
    RUN(test_npy_round_trip);
    return TEST_REPORT();
}
