/* Streaming safetensors writer: what it writes the reader accepts (names, dtypes, shapes incl. scalars, bytes),
 * chunked writes equal one-shot ones, misuse is refused, and an unfinished write leaves no file behind.
 * Files live in a fresh mkdtemp directory under /tmp, removed at the end. */
#include <sys/stat.h>
#include <unistd.h>

#include "formats/formats.h"
#include "test.h"

static char dir[64];

static int exists(const char *p) { return access(p, F_OK) == 0; }

/* A writer declaring three tensors: a 2-D bf16, a scalar f32 and a 3-D f32 whose name needs JSON escaping. */
static g4c_st_writer *declare(void) {
    g4c_st_writer *w = NULL;
    g4c_err err = {0};
    CHECK(g4c_stw_new(&w, &err) == G4C_OK);
    const int64_t a[2] = {3, 5}, c[3] = {2, 3, 4};
    CHECK(g4c_stw_add(w, "b.matrix", G4C_DTYPE_BF16, 2, a, 7, &err) == G4C_OK);
    CHECK(g4c_stw_add(w, "c.scalar", G4C_DTYPE_F32, 0, NULL, 8, &err) == G4C_OK);
    CHECK(g4c_stw_add(w, "a.cube \"quoted\"", G4C_DTYPE_F32, 3, c, 9, &err) == G4C_OK);
    return w;
}

static void test_roundtrip(void) {
    g4c_err err = {0};
    for (int chunked = 0; chunked < 2; chunked++) {
        g4c_st_writer *w = declare();
        g4c_stw_sort(w); /* f32 first, then by name: cube, scalar, matrix */
        CHECK(g4c_stw_count(w) == 3);
        CHECK(!strcmp(g4c_stw_get(w, 0)->name, "a.cube \"quoted\"") && g4c_stw_get(w, 0)->tag == 9);
        CHECK(!strcmp(g4c_stw_get(w, 1)->name, "c.scalar") && g4c_stw_get(w, 1)->nbytes == 4);
        CHECK(!strcmp(g4c_stw_get(w, 2)->name, "b.matrix") && g4c_stw_get(w, 2)->nbytes == 30);
        CHECK(g4c_stw_data_size(w) == 96 + 4 + 30);
        char path[128];
        snprintf(path, sizeof path, "%s/m%d.safetensors", dir, chunked);
        CHECK(g4c_stw_open(w, path, &err) == G4C_OK);
        char tmp[160];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        CHECK(exists(tmp) && !exists(path));
        float cube[24], s = 2.5f;
        uint16_t m[15];
        for (int i = 0; i < 24; i++) cube[i] = (float)i - 3.0f;
        for (int i = 0; i < 15; i++) m[i] = g4c_f32_to_bf16((float)i * 0.5f);
        if (chunked) { /* any split, even across tensors' ends, as long as a write stays within one tensor */
            CHECK(g4c_stw_write(w, cube, 10, &err) == G4C_OK);
            CHECK(g4c_stw_write(w, (char *)cube + 10, 86, &err) == G4C_OK);
            CHECK(g4c_stw_write(w, &s, 4, &err) == G4C_OK);
            for (int i = 0; i < 15; i++) CHECK(g4c_stw_write(w, &m[i], 2, &err) == G4C_OK);
        } else {
            CHECK(g4c_stw_write(w, cube, 96, &err) == G4C_OK);
            CHECK(g4c_stw_write(w, &s, 4, &err) == G4C_OK);
            CHECK(g4c_stw_write(w, m, 30, &err) == G4C_OK);
        }
        CHECK(g4c_stw_written(w) == 130);
        CHECK(g4c_stw_write(w, m, 1, &err) != G4C_OK); /* past the last tensor */
        CHECK(g4c_stw_finish(w, &err) == G4C_OK);
        CHECK(exists(path) && !exists(tmp));
        struct stat st;
        CHECK(stat(path, &st) == 0 && (uint64_t)st.st_size == g4c_stw_file_size(w));
        g4c_stw_free(w);
        CHECK(exists(path)); /* a finished file stays */

        g4c_tensor_set *ts = NULL;
        CHECKF(g4c_st_open_file(&ts, path, &err) == G4C_OK, "%s", err.msg);
        if (!ts) continue;
        CHECK(ts->n_tensors == 3);
        const g4c_st_tensor *t = g4c_st_find(ts, "a.cube \"quoted\"");
        CHECK(t && t->dtype == G4C_DTYPE_F32 && t->ndim == 3 && t->shape[2] == 4 && !memcmp(t->data, cube, 96));
        t = g4c_st_find(ts, "c.scalar");
        CHECK(t && t->ndim == 0 && t->size_bytes == 4 && !memcmp(t->data, &s, 4));
        t = g4c_st_find(ts, "b.matrix");
        CHECK(t && t->dtype == G4C_DTYPE_BF16 && t->shape[0] == 3 && t->shape[1] == 5 && !memcmp(t->data, m, 30));
        CHECK(((uintptr_t)g4c_st_find(ts, "a.cube \"quoted\"")->data & 7) == 0); /* header padded to 8 bytes */
        g4c_st_free(ts);
    }
}

static void test_unfinished_leaves_nothing(void) {
    g4c_err err = {0};
    g4c_st_writer *w = declare();
    char path[128], tmp[160];
    snprintf(path, sizeof path, "%s/partial.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(g4c_stw_open(w, path, &err) == G4C_OK);
    uint16_t m[15] = {0};
    CHECK(g4c_stw_write(w, m, 30, &err) == G4C_OK);
    CHECK(g4c_stw_finish(w, &err) != G4C_OK && strstr(err.msg, "incomplete"));
    CHECK(exists(tmp));
    g4c_stw_free(w);
    CHECK(!exists(tmp) && !exists(path));
}

static void test_misuse(void) {
    g4c_err err = {0};
    g4c_st_writer *w = declare();
    const int64_t d[1] = {4};
    CHECK(g4c_stw_add(w, "b.matrix", G4C_DTYPE_F32, 1, d, 0, &err) == G4C_OK); /* caught at open */
    char path[128];
    snprintf(path, sizeof path, "%s/dup.safetensors", dir);
    CHECK(g4c_stw_open(w, path, &err) != G4C_OK && strstr(err.msg, "twice"));
    g4c_stw_free(w);
    CHECK(!exists(path));

    w = declare();
    CHECK(g4c_stw_write(w, d, 4, &err) != G4C_OK); /* before open */
    const int64_t neg[1] = {-1};
    CHECK(g4c_stw_add(w, "neg", G4C_DTYPE_F32, 1, neg, 0, &err) != G4C_OK);
    CHECK(g4c_stw_add(w, "deep", G4C_DTYPE_F32, G4C_MAX_DIMS + 1, d, 0, &err) != G4C_OK);
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    CHECK(g4c_stw_open(w, path, &err) == G4C_OK);
    uint16_t big[64] = {0};
    CHECK(g4c_stw_write(w, big, 98, &err) != G4C_OK && strstr(err.msg, "overrun")); /* cube is 96 bytes */
    CHECK(g4c_stw_add(w, "late", G4C_DTYPE_F32, 1, d, 0, &err) != G4C_OK);
    g4c_stw_free(w);

    w = declare();
    snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", dir);
    CHECK(g4c_stw_open(w, path, &err) == G4C_E_IO && strstr(err.msg, "cannot create"));
    g4c_stw_free(w);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/g4c_stw_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    RUN(test_roundtrip);
    RUN(test_unfinished_leaves_nothing);
    RUN(test_misuse);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return TEST_REPORT();
}
