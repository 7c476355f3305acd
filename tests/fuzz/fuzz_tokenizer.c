/* libFuzzer target for the tokenizer (src/tokenizer/). Every input is used twice:
 *  (a) as a tokenizer.json: g4c_tok_load_buffer must load it or fail with a message; a tokenizer that loads is
 *      exercised (encode of a few fixed strings and of the input, both ways of parse_special; decode of the ids and
 *      of the first ids of the vocabulary; streaming) so ASan sees any bad table it built;
 *  (b) as text for a small valid built-in tokenizer (Gemma's normalizer / pre-tokenizer / byte fallback, merges,
 *      special and non-special added tokens that overlap): encode both ways must agree with the snprintf-style
 *      count contract, and decode(encode(x)) must give x back byte for byte (U+2581 reads as a space) for every x,
 *      valid UTF-8 or not (all 256 byte tokens exist); the streaming detokenizer must give the same bytes.
 * Build: cmake -B build-fz -DCMAKE_C_COMPILER=clang -DG4C_FUZZ=ON && cmake --build build-fz --target fuzz_tokenizer
 * Run:   ./build-fz/tests/fuzz/fuzz_tokenizer -max_total_time=30 tests/fuzz/corpus/tokenizer */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

#define SP "\xe2\x96\x81" /* U+2581 */

static void check(int ok) {
    if (!ok) __builtin_trap();
}

/* ---- the built-in tokenizer --------------------------------------------------------------------------------- */

static const char *const PIECES[] = {"<pad>", "<eos>", "<bos>", "<unk>", "a", "b", "c", "ab", "bc", "abc", "aa", SP,
                                     SP "a", SP SP, "h", "i", "hi", SP "hi", "\n", "\n\n", "<", "|", ">", "|>",
                                     "\xc3\xa9", "\xc3\xa9\x61" /* éa */, "t", "u", "r", "n", "tu", "rn", "turn"};
static const char *const MERGES[] = {"b c", "a b", "ab c", "a a", SP " a", "h i", SP " hi", "\n \n", SP " " SP,
                                     "| >", "\xc3\xa9 a", "t u", "r n", "tu rn"};
/* added tokens beyond the vocabulary: {content, special} */
static const struct { const char *s; int special; } ADDED[] = {
    {"<|turn>", 1}, {"<turn|>", 1}, {"<|", 0}, {"<b>", 0}, {"<|turn|>", 0}, {SP SP SP, 0}, {"\t\t", 0}};

static void put(char **p, size_t *n, size_t *cap, const char *s) {
    size_t l = strlen(s);
    if (*n + l + 1 > *cap) {
        *cap = 2 * (*n + l + 1);
        *p = realloc(*p, *cap);
        check(*p != NULL);
    }
    memcpy(*p + *n, s, l + 1);
    *n += l;
}

static void put_json_str(char **p, size_t *n, size_t *cap, const char *s) {
    put(p, n, cap, "\"");
    for (; *s; s++) {
        char e[8] = {*s, 0};
        if (*s == '"' || *s == '\\') e[0] = '\\', e[1] = *s, e[2] = 0;
        else if ((unsigned char)*s < 0x20) snprintf(e, sizeof e, "\\u%04x", (unsigned char)*s);
        put(p, n, cap, e);
    }
    put(p, n, cap, "\"");
}

static g4c_tokenizer *builtin(void) {
    static g4c_tokenizer *t;
    if (t) return t;
    char *j = NULL, tmp[64];
    size_t n = 0, cap = 0;
    const int np = (int)(sizeof PIECES / sizeof PIECES[0]), na = (int)(sizeof ADDED / sizeof ADDED[0]);
    put(&j, &n, &cap, "{\"added_tokens\":[");
    for (int i = 0; i < 4; i++) {
        snprintf(tmp, sizeof tmp, "{\"id\":%d,\"content\":", i);
        put(&j, &n, &cap, tmp);
        put_json_str(&j, &n, &cap, PIECES[i]);
        put(&j, &n, &cap, ",\"special\":true},");
    }
    put(&j, &n, &cap, "{\"id\":18,\"content\":\"\\n\",\"special\":false},{\"id\":19,\"content\":\"\\n\\n\",\"special\":false}");
    for (int i = 0; i < na; i++) {
        snprintf(tmp, sizeof tmp, ",{\"id\":%d,\"content\":", np + 256 + i);
        put(&j, &n, &cap, tmp);
        put_json_str(&j, &n, &cap, ADDED[i].s);
        put(&j, &n, &cap, ADDED[i].special ? ",\"special\":true}" : ",\"special\":false}");
    }
    put(&j, &n, &cap, "],\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"" SP "\"},"
                      "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":"
                      "\"MergedWithPrevious\",\"invert\":false},\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\","
                      "\"fuse_unk\":true,\"byte_fallback\":true,\"vocab\":{");
    for (int i = 0; i < np; i++) {
        put_json_str(&j, &n, &cap, PIECES[i]);
        snprintf(tmp, sizeof tmp, ":%d,", i);
        put(&j, &n, &cap, tmp);
    }
    for (int i = 0; i < 256; i++) {
        snprintf(tmp, sizeof tmp, "\"<0x%02X>\":%d%s", i, np + i, i < 255 ? "," : "");
        put(&j, &n, &cap, tmp);
    }
    put(&j, &n, &cap, "},\"merges\":[");
    for (size_t i = 0; i < sizeof MERGES / sizeof MERGES[0]; i++) {
        if (i) put(&j, &n, &cap, ",");
        put_json_str(&j, &n, &cap, MERGES[i]);
    }
    put(&j, &n, &cap, "]}}");
    g4c_err err = {0};
    if (g4c_tok_load_buffer(&t, j, n, "builtin", &err) != G4C_OK) {
        fprintf(stderr, "fuzz_tokenizer: the built-in tokenizer does not load: %s\n", err.msg);
        __builtin_trap();
    }
    free(j);
    return t;
}

/* ---- helpers ------------------------------------------------------------------------------------------------- */

/* Encode, checking the count contract (a short buffer gets a prefix and the full count). malloc'd ids or NULL. */
static int32_t *encode(const g4c_tokenizer *t, const char *s, size_t n, int ps, int *count) {
    g4c_err err = {0};
    int c = g4c_tok_encode(t, s, n, ps, NULL, 0, &err);
    if (c < 0) {
        check(err.msg[0] != 0);
        return NULL;
    }
    int32_t *ids = malloc(sizeof(int32_t) * ((size_t)c + 1));
    check(ids != NULL);
    check(g4c_tok_encode(t, s, n, ps, ids, c, &err) == c);
    if (c > 1 && n <= 512) { /* a short buffer: same count, same prefix */
        int32_t *half = malloc(sizeof(int32_t) * (size_t)(c / 2));
        check(half != NULL);
        check(g4c_tok_encode(t, s, n, ps, half, c / 2, &err) == c);
        check(memcmp(half, ids, sizeof(int32_t) * (size_t)(c / 2)) == 0);
        free(half);
    }
    for (int i = 0; i < c; i++) check(ids[i] >= 0 && ids[i] < g4c_tok_n_vocab(t));
    *count = c;
    return ids;
}

/* Decode (checking the snprintf contract and the streaming detokenizer); malloc'd text, length in *len. */
static char *decode(const g4c_tokenizer *t, const int32_t *ids, int n, size_t *len) {
    int need = g4c_tok_decode(t, ids, n, NULL, 0);
    check(need >= 0);
    char *s = malloc((size_t)need + 1);
    check(s != NULL);
    check(g4c_tok_decode(t, ids, n, s, (size_t)need + 1) == need);
    check(s[need] == 0);
    if (need > 2) { /* cut short: a NUL-terminated prefix, same return value */
        char small[3];
        check(g4c_tok_decode(t, ids, n, small, sizeof small) == need);
        check(small[2] == 0 && memcmp(small, s, 2) == 0);
    }
    /* streaming: the pieces put together are the whole text */
    g4c_tok_stream st = {0};
    char *acc = malloc((size_t)need + 1), buf[1024];
    check(acc != NULL);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        int m = g4c_tok_stream_push(t, &st, ids[i], buf, sizeof buf);
        if (m >= (int)sizeof buf) { /* a long piece: ask again with room for it */
            char *big = malloc((size_t)m + 1);
            check(big != NULL);
            check(g4c_tok_stream_push(t, &st, ids[i], big, (size_t)m + 1) == m);
            check(at + (size_t)m <= (size_t)need);
            memcpy(acc + at, big, (size_t)m);
            free(big);
        } else {
            check(m >= 0 && at + (size_t)m <= (size_t)need);
            memcpy(acc + at, buf, (size_t)m);
        }
        at += (size_t)m;
    }
    int m = g4c_tok_stream_flush(&st, buf, sizeof buf);
    check(m >= 0 && m <= 3 && at + (size_t)m == (size_t)need);
    memcpy(acc + at, buf, (size_t)m);
    check(memcmp(acc, s, (size_t)need) == 0);
    free(acc);
    *len = (size_t)need;
    return s;
}

/* (b): round trip through the built-in tokenizer. */
static void round_trip(const char *data, size_t size) {
    const g4c_tokenizer *t = builtin();
    char *want = malloc(size + 1);
    check(want != NULL);
    size_t wl = 0;
    for (size_t i = 0; i < size;) {
        if (i + 3 <= size && memcmp(data + i, SP, 3) == 0) want[wl++] = ' ', i += 3;
        else want[wl++] = data[i++];
    }
    for (int ps = 0; ps < 2; ps++) {
        int n = 0;
        size_t len = 0;
        int32_t *ids = encode(t, data, size, ps, &n);
        check(ids != NULL);
        char *back = decode(t, ids, n, &len);
        check(len == wl && memcmp(back, want, wl) == 0);
        free(back);
        free(ids);
    }
    free(want);
}

/* (a): whatever loaded must be usable. */
static void exercise(const g4c_tokenizer *t, const char *data, size_t size) {
    static const char *const TEXTS[] = {"", "hello world", "  a  b  ", "<|turn>user\n<turn|>", "\xff\xc3\x28\xe2\x82",
                                        "\xf0\x9f\x98\x80 \xc3\xa9\n\n\t"};
    int nv = g4c_tok_n_vocab(t);
    check(nv > 0);
    for (size_t k = 0; k <= sizeof TEXTS / sizeof TEXTS[0]; k++) {
        const char *s = k < sizeof TEXTS / sizeof TEXTS[0] ? TEXTS[k] : data;
        size_t n = k < sizeof TEXTS / sizeof TEXTS[0] ? strlen(s) : (size > 1024 ? 1024 : size);
        for (int ps = 0; ps < 2; ps++) {
            int c = 0;
            size_t len;
            int32_t *ids = encode(t, s, n, ps, &c);
            if (!ids) continue;
            free(decode(t, ids, c, &len));
            free(ids);
        }
    }
    int m = nv < 512 ? nv : 512;
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
    round_trip((const char *)data, size > 2048 ? 2048 : size); /* long inputs are tokenizer.json files */
    return 0;
}
