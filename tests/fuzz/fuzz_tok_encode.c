/* libFuzzer target: tokenizer encode/decode on arbitrary bytes, against a small valid tokenizer built once in
 * LLVMFuzzerInitialize (Gemma's normalizer / pre-tokenizer / byte fallback, merges, special and non-special added
 * tokens that overlap). Encode both ways of parse_special must keep the snprintf-style count contract, and
 * decode(encode(x)) must give x back byte for byte (U+2581 reads as a space) for every x, valid UTF-8 or not (all
 * 256 byte tokens exist); the streaming detokenizer must give the same bytes. Inputs over 512 bytes are skipped (the
 * work is linear; longer texts add nothing but time).
 * Run: ./build-fuzz/tests/fuzz/fuzz_tok_encode -max_total_time=30 tests/fuzz/corpus/tok_encode */
#include "tok_common.h"

#define SP "\xe2\x96\x81" /* U+2581 */

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

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    (void)builtin();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 512) return 0;
    round_trip((const char *)data, size);
    return 0;
}
