/* libFuzzer target: sharded safetensors checkpoints, model.safetensors.index.json -> g4c_st_open_dir. The input is
 * the index; LLVMFuzzerInitialize writes three small valid shards into a temporary folder (removed at exit):
 * a.safetensors {x F32 [2], y F16 [3]}, b.safetensors {z BF16 [2, 2], w F32 []}, c.safetensors {x F32 [1]} (a
 * name that is also in a). Every index must open or fail with a message; what opens must have readable tensors,
 * each found by name, from at most the three shards. Seeds: tests/fuzz/corpus/st_index. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/formats.h"

volatile unsigned char fuzz_sink;
static char dir[256];
static const char *const files[] = {"a.safetensors", "b.safetensors", "c.safetensors", "model.safetensors.index.json"};

static void cleanup(void) {
    char p[400];
    for (int i = 0; i < 4; i++) snprintf(p, sizeof p, "%s/%s", dir, files[i]), unlink(p);
    rmdir(dir);
}

static void put_file(const char *name, const void *a, size_t na, const void *b, size_t nb) {
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || (na && fwrite(a, 1, na, f) != na) || (nb && fwrite(b, 1, nb, f) != nb) || fclose(f)) __builtin_trap();
}

static void shard(const char *name, const char *hdr, size_t n_data) {
    unsigned char buf[512] = {0}, data[64];
    const size_t n = strlen(hdr);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, hdr, n);
    for (size_t i = 0; i < n_data; i++) data[i] = (unsigned char)(i * 37 + 1);
    put_file(name, buf, 8 + n, data, n_data);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/g4c-fuzz-st-index-XXXXXX", base);
    if (!mkdtemp(dir)) __builtin_trap();
    atexit(cleanup);
    shard(files[0], "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"y\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[8,14]}}", 14);
    shard(files[1], "{\"__metadata__\":{\"format\":\"pt\"},\"z\":{\"dtype\":\"BF16\",\"shape\":[2,2],"
                    "\"data_offsets\":[0,8]},\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[8,12]}}", 12);
    shard(files[2], "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65536) return 0;
    put_file(files[3], data, size, NULL, 0);
    g4c_tensor_set *ts = NULL;
    g4c_err err = {0};
    if (g4c_st_open_dir(&ts, dir, &err) != G4C_OK) {
        if (!err.msg[0] || ts) __builtin_trap(); /* every failure says why, keeps nothing */
        return 0;
    }
    if (ts->n_files < 1 || ts->n_files > 3 || ts->n_tensors > 4) __builtin_trap();
    for (int i = 0; i < ts->n_tensors; i++) {
        const g4c_st_tensor *t = &ts->tensors[i];
        const unsigned char *p = t->data;
        for (size_t j = 0; j < t->size_bytes; j++) fuzz_sink ^= p[j];
        if (g4c_st_find(ts, t->name) != t || t->i_file < 0 || t->i_file >= ts->n_files) __builtin_trap();
    }
    g4c_st_free(ts);
    return 0;
}
