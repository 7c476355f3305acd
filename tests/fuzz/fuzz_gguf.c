/* libFuzzer target: a whole GGUF file image -> g4c_gguf_parse_buffer, then everything that consumes a parsed file:
 * every tensor's bytes are read (ASan sees any view outside the buffer), every key goes through every typed getter,
 * string arrays are walked, keys are copied into a writer, and the gemma4 config, the mmproj vision config and the
 * tokenizer are built from the metadata. Every failure must come with a message. Seeds: tests/fuzz/corpus/gguf
 * (a hand-made file, a tiny gemma4 model with a tokenizer, a tiny gemma4v mmproj). */
#include <stdio.h>

#include "formats/formats.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

volatile unsigned char fuzz_sink;

static void need_msg(g4c_status st, const g4c_err *err) {
    if (st != G4C_OK && !err->msg[0]) __builtin_trap(); /* every failure must say why */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    g4c_gguf *g = NULL;
    g4c_err err = {0};
    g4c_status st = g4c_gguf_parse_buffer(&g, data, size, "fuzz", &err);
    need_msg(st, &err);
    if (st != G4C_OK) return 0;
    for (int i = 0; i < g->ts->n_tensors; i++) {
        const unsigned char *p = g->ts->tensors[i].data;
        for (size_t j = 0; j < g->ts->tensors[i].size_bytes; j++) fuzz_sink ^= p[j];
    }
    g4c_gguf_writer *w = NULL;
    g4c_ggw_new(&w, &err);
    for (int64_t i = 0; i < g->n_kv && i < 64; i++) {
        const g4c_gguf_kv *kv = &g->kv[i];
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(kv->key_len < 200 ? kv->key_len : 200), kv->key);
        int64_t v[8];
        int b[8], found;
        double r;
        const char *s;
        size_t n, pos = 0;
        const g4c_gguf_kv *arr;
        err.msg[0] = 0, need_msg(g4c_gguf_get_int(g, key, -5, 1 << 20, v, &found, &err), &err);
        err.msg[0] = 0, need_msg(g4c_gguf_get_real(g, key, &r, &found, &err), &err);
        err.msg[0] = 0, need_msg(g4c_gguf_get_bool(g, key, b, &found, &err), &err);
        err.msg[0] = 0, need_msg(g4c_gguf_get_str(g, key, &s, &n, &found, &err), &err);
        err.msg[0] = 0, need_msg(g4c_gguf_get_ints(g, key, 0, 100, v, 3, &found, &err), &err);
        err.msg[0] = 0, need_msg(g4c_gguf_get_bools(g, key, b, 2, &found, &err), &err);
        if (g4c_gguf_get_arr(g, key, G4C_GGUF_STR, &arr, &found, &err) == G4C_OK && found)
            while (g4c_gguf_arr_str_next(arr, &pos, &s, &n)) fuzz_sink ^= n ? (unsigned char)s[0] : 0;
        if (kv->type == G4C_GGUF_ARR && kv->n) fuzz_sink ^= (unsigned char)g4c_gguf_arr_int(kv, kv->n - 1);
        if (w && strcmp(key, "general.alignment")) g4c_ggw_kv_copy(w, kv, &err);
    }
    g4c_ggw_free(w);
    g4c_config c;
    err.msg[0] = 0;
    st = g4c_config_from_gguf(&c, g, &err);
    need_msg(st, &err);
    if (st == G4C_OK) g4c_config_free(&c);
    g4c_vision_cfg v;
    err.msg[0] = 0, need_msg(g4c_vision_cfg_from_gguf(&v, g, &err), &err);
    g4c_tokenizer *t = NULL;
    err.msg[0] = 0;
    st = g4c_tok_from_gguf(&t, g, &err);
    need_msg(st, &err);
    if (st == G4C_OK) {
        int32_t ids[64];
        g4c_tok_encode(t, "hello world <|turn>", 19, 1, ids, 64, &err);
        g4c_tok_free(t);
    }
    g4c_gguf_free(g);
    return 0;
}
