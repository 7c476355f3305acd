/* libFuzzer target: tokenizer.json loading (src/tokenizer/). g4c_tok_load_buffer must load the input or fail with
 * a message; a tokenizer that loads is exercised (encode of one of a few fixed strings and of the input's first
 * 256 bytes, parse_special on or off, chosen by the input's last byte; decode of the ids and of the first ids of
 * the vocabulary; streaming) so ASan sees any bad table it built. Encode/decode of arbitrary text on a fixed tokenizer is fuzz_tok_encode.
 * Run: ./build-fuzz/tests/fuzz/fuzz_tokenizer -max_total_time=30 tests/fuzz/corpus/tokenizer */
#include "tok_common.h"

/* (a): whatever loaded must be usable. */
static void exercise(const g4c_tokenizer *t, const char *data, size_t size) {
    static const char *const TEXTS[] = {"", "hello world", "  a  b  ", "<|turn>user\n<turn|>", "\xff\xc3\x28\xe2\x82",
                                        "\xf0\x9f\x98\x80 \xc3\xa9\n\n\t"};
    int nv = g4c_tok_n_vocab(t);
    check(nv > 0);
    /* One fixed text and the input, each one way, picked by the input's last byte: a hostile normalizer may grow
     * every text to ~64 KiB before BPE, and encoding all of them both ways made this the slowest harness (~400
     * executions/s); over a campaign every text meets both ways anyway. */
    const unsigned h = size ? (unsigned char)data[size - 1] : 0;
    const size_t nt = sizeof TEXTS / sizeof TEXTS[0];
    for (int k = 0; k < 2; k++) {
        const char *s = k == 0 ? TEXTS[h % nt] : data;
        const size_t n = k == 0 ? strlen(s) : (size > 256 ? 256 : size);
        const int ps = (int)(h >> (3 + k)) & 1;
        int c = 0;
        size_t len;
        int32_t *ids = encode(t, s, n, ps, &c);
        if (!ids) continue;
        free(decode(t, ids, c, &len));
        free(ids);
    }
    int m = nv < 320 ? nv : 320; /* all 256 byte tokens of a Gemma-like vocabulary and more */
    int32_t *all = malloc(sizeof(int32_t) * (size_t)m);
    check(all != NULL);
    for (int i = 0; i < m; i++) {
        all[i] = i;
        const char *p = g4c_tok_piece(t, i);
        check(p != NULL);
        int32_t f = g4c_tok_find(t, p);
        check(f >= 0 && f < nv && strcmp(g4c_tok_piece(t, f), p) == 0);
        (void)g4c_tok_is_special(t, i);
    }
    size_t len;
    free(decode(t, all, m, &len));
    free(all);
    check(g4c_tok_piece(t, nv) == NULL && g4c_tok_piece(t, -1) == NULL);
    int32_t bad = nv;
    check(g4c_tok_decode(t, &bad, 1, NULL, 0) < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    g4c_tokenizer *t = NULL;
    g4c_err err = {0};
    if (g4c_tok_load_buffer(&t, (const char *)data, size, "fuzz", &err) == G4C_OK) {
        exercise(t, (const char *)data, size);
        g4c_tok_free(t);
    } else {
        check(err.msg[0] != 0 && t == NULL); /* every failure says why */
    }
    return 0;
}
