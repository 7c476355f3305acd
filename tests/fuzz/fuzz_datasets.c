/* libFuzzer target: the benchmark data loaders (src/eval/datasets.c): VQAv2 question + annotation files, COCO
 * instances files and JSONL manifests of either task. The first byte picks the loader (byte % 4: 0 COCO instances,
 * 1 VQAv2, 2 VQA manifest, 3 COCO manifest; the seeds start with '0' to '3'); the rest is the file (VQAv2: the
 * questions file, then the annotations file after a line "----"; without that line both files hold the whole rest). The loaders read paths, so the bytes
 * are written to a temporary folder (made once, removed at exit). Every input must load or fail with a message;
 * a set that loads must hold complete samples, and keep/sample/index/find must work on it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/eval.h"

static char dir[256], path_a[300], path_b[300];

static void cleanup(void) {
    unlink(path_a);
    unlink(path_b);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/g4c-fuzz-datasets-XXXXXX", base);
    if (!mkdtemp(dir)) __builtin_trap();
    snprintf(path_a, sizeof path_a, "%s/a.json", dir);
    snprintf(path_b, sizeof path_b, "%s/b.json", dir);
    atexit(cleanup);
    return 0;
}

static void put_file(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f)) __builtin_trap();
}

static void check(int ok) {
    if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 65536) return 0;
    const int mode = data[0] % 4;
    const uint8_t *p = data + 1;
    size_t n = size - 1, n_a = n;
    static const char sep[] = "\n----\n";
    for (size_t i = 0; mode == 1 && i + sizeof sep - 1 <= n; i++)
        if (memcmp(p + i, sep, sizeof sep - 1) == 0) { n_a = i; break; }
    put_file(path_a, p, n_a);
    if (mode == 1) {
        if (n_a < n) put_file(path_b, p + n_a + sizeof sep - 1, n - n_a - (sizeof sep - 1));
        else put_file(path_b, p, n);
    }
    eval_set s;
    g4c_err err = {0};
    g4c_status st = mode == 0   ? eval_load_coco(&s, path_a, "images", &err)
                    : mode == 1 ? eval_load_vqa(&s, path_a, path_b, "images", &err)
                                : eval_load_manifest(&s, mode == 2 ? EVAL_VQA : EVAL_COCO, path_a, &err);
    if (st != G4C_OK) {
        check(err.msg[0] && s.n == 0 && !s.s && !s.by_key); /* says why, keeps nothing */
        return 0;
    }
    const eval_task task = mode == 1 || mode == 2 ? EVAL_VQA : EVAL_COCO;
    check(s.task == task && s.n >= 0);
    for (int i = 0; i < s.n; i++) {
        const eval_sample *e = &s.s[i];
        check(e->key && e->image && e->n_gt >= 0 && e->width >= 0 && e->height >= 0);
        if (task == EVAL_VQA) {
            check(e->question && e->mc_answer && e->n_answers >= 0);
            for (int k = 0; k < e->n_answers; k++) check(e->answers[k] != NULL);
        }
        for (int k = 0; k < e->n_gt; k++)
            check(e->gt[k].cls >= 0 && e->gt[k].cls < EVAL_COCO_N_CLASSES);
    }
    for (int round = 0; round < 2; round++) {
        if (eval_set_index(&s, &err) == G4C_OK) {
            for (int i = 0; i < s.n; i++) check(eval_set_find(&s, s.s[i].key) == i);
            check(eval_set_find(&s, "no such key \x01") == -1);
        } else {
            check(err.msg[0] != 0);
        }
        const int before = s.n;
        if (eval_set_sample(&s, (int)(size % 5), size, &err) != G4C_OK) __builtin_trap();
        check(s.n <= before);
        if (task == EVAL_COCO) eval_set_keep_eligible(&s);
    }
    eval_set_free(&s);
    return 0;
}
