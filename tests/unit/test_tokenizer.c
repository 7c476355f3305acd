/* tokenizer (src/tokenizer/, docs/gemma4-spec.md §5-6).
 * Default (ctest "tokenizer", label unit): a small tokenizer.json written by this test proves the BPE merge order
 * (lowest rank first, leftmost on ties, stale heap entries skipped), byte fallback (also for invalid UTF-8 and NUL),
 * <unk> fusing, added-token splitting (longest match; special ones only with parse_special, as tokenizers does),
 * the normalizer and pre-tokenizer variants, decode round trips, the snprintf contracts, the streaming detokenizer,
 * the Gemma 4 special-token patch on a synthetic 262144-piece vocabulary, and that malformed files are refused
 * with the right status and a message naming the file and field.
 * With --real (ctest "tokenizer_real", label tokenizer): the real Gemma vocabulary from $G4C_TOKENIZER_JSON
 * (sh scripts/fetch-tokenizer.sh prints one), checked against all 29 cases (the spec counts 28; one is the empty
 * string) of ollama's model/models/gemma4/tokenizer_reference_test.go (ids from the Rust tokenizers library on a
 * Gemma 4 GGUF's vocabulary), both ways of parse_special, with decode round trips, and the spec's chat-template
 * ids; also measures load time and encode speed. Skips (exit 0) when the variable is unset. */
#include <stdarg.h>
#include <unistd.h>

#include "test.h"
#include "tokenizer/tokenizer.h"

static char tmp_root[64];

/* ---- a growable string, and JSON string escaping ----------------------------------------------------------- */

typedef struct { char *p; size_t n, cap; } sbuf;

static void sb_addn(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_add(sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }
static void sb_addf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_addf(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_addn(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}
static void sb_json_str(sbuf *b, const char *s) {
    sb_add(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') sb_addf(b, "\\%c", c);
        else if (c < 0x20) sb_addf(b, "\\u%04x", c);
        else sb_addn(b, (const char *)&c, 1);
    }
    sb_add(b, "\"");
}

/* ---- the small tokenizer ----------------------------------------------------------------------------------- */

#define SP "\xe2\x96\x81" /* U+2581, what ' ' becomes */
/* model.vocab: these pieces at ids 0.., then the 256 byte tokens "<0x00>".."<0xFF>". */
static const char *const MINI[] = {"<pad>", "<eos>", "<bos>", "<unk>", "a", "b", "c", "ab", "bc", "abc", "aa",
                                   SP, SP "a", "h", "i", "hi", SP "hi", "\n", "\n\n", "x", "y", "z", "xy", "xyz",
                                   SP SP, "\xc3\xa9" /* é */};
#define N_MINI ((int)(sizeof MINI / sizeof MINI[0]))
/* Merge ranks 0..: b+c before a+b proves rank beats position. */
static const char *const MINI_MERGES[][2] = {{"b", "c"}, {"a", "b"}, {"ab", "c"}, {"a", "a"}, {SP, "a"}, {"h", "i"},
                                             {SP, "hi"}, {"\n", "\n"}, {"x", "y"}, {"xy", "z"}, {SP, SP}};
#define N_MERGES ((int)(sizeof MINI_MERGES / sizeof MINI_MERGES[0]))
/* Added tokens beyond model.vocab (ids N_MINI + 256 ..). */
static const struct { const char *s; int special; } EXTRA[] = {{"<b>", 0}, {"<|turn>", 1}, {"<|", 0}};
#define N_EXTRA 3

typedef struct {
    int pair_merges;          /* merges as ["a", "b"] instead of "a b" */
    int byte_fallback;        /* default 1 */
    int fuse_unk;
    int ignore_merges;
    const char *normalizer;   /* JSON; NULL: Gemma's Replace ' ' -> '▁' */
    const char *pre_tokenizer;/* JSON; NULL: Gemma's Split ' ' MergedWithPrevious */
} mini_opts;

static char *mini_json(const mini_opts *o) {
    sbuf b = {0};
    sb_add(&b, "{\"version\":\"1.0\",\"added_tokens\":[");
    for (int i = 0; i < 4; i++) {
        sb_addf(&b, "{\"id\":%d,\"content\":", i);
        sb_json_str(&b, MINI[i]);
        sb_add(&b, ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},");
    }
    sb_add(&b, "{\"id\":17,\"content\":\"\\n\",\"special\":false},"
               "{\"id\":18,\"content\":\"\\n\\n\",\"special\":false}");
    for (int i = 0; i < N_EXTRA; i++) {
        sb_addf(&b, ",{\"id\":%d,\"content\":", N_MINI + 256 + i);
        sb_json_str(&b, EXTRA[i].s);
        sb_addf(&b, ",\"special\":%s}", EXTRA[i].special ? "true" : "false");
    }
    sb_add(&b, "],\"normalizer\":");
    sb_add(&b, o->normalizer ? o->normalizer
                             : "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"" SP "\"}");
    sb_add(&b, ",\"pre_tokenizer\":");
    sb_add(&b, o->pre_tokenizer ? o->pre_tokenizer
                                : "{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},"
                                  "\"behavior\":\"MergedWithPrevious\",\"invert\":false}");
    sb_add(&b, ",\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"" SP
               "\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]}");
    sb_addf(&b, ",\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\",\"fuse_unk\":%s,"
                "\"byte_fallback\":%s,\"ignore_merges\":%s,\"continuing_subword_prefix\":null,\"vocab\":{",
            o->fuse_unk ? "true" : "false", o->byte_fallback ? "true" : "false", o->ignore_merges ? "true" : "false");
    for (int i = 0; i < N_MINI; i++) {
        sb_json_str(&b, MINI[i]);
        sb_addf(&b, ":%d,", i);
    }
    for (int i = 0; i < 256; i++) sb_addf(&b, "\"<0x%02X>\":%d%s", i, N_MINI + i, i < 255 ? "," : "");
    sb_add(&b, "},\"merges\":[");
    for (int i = 0; i < N_MERGES; i++) {
        if (i) sb_add(&b, ",");
        if (o->pair_merges) {
            sb_add(&b, "[");
            sb_json_str(&b, MINI_MERGES[i][0]);
            sb_add(&b, ",");
            sb_json_str(&b, MINI_MERGES[i][1]);
            sb_add(&b, "]");
        } else {
            char m[64];
            snprintf(m, sizeof m, "%s %s", MINI_MERGES[i][0], MINI_MERGES[i][1]);
            sb_json_str(&b, m);
        }
    }
    sb_add(&b, "]}}");
    return b.p;
}

static g4c_tokenizer *mini_load(const mini_opts *o) {
    char *js = mini_json(o);
    g4c_tokenizer *t = NULL;
    g4c_err err = {0};
    g4c_status st = g4c_tok_load_buffer(&t, js, strlen(js), "mini.json", &err);
    CHECKF(st == G4C_OK, "%s", err.msg);
    free(js);
    return t;
}
static const mini_opts DEFAULT_OPTS = {.byte_fallback = 1};
static int no_roundtrip; /* set where the pre-tokenizer drops text on purpose */

/* Encode and compare with the expected pieces (a NULL-terminated list); prints both on mismatch. */
static void check_enc_n(const g4c_tokenizer *t, const char *text, size_t len, int parse_special,
                        const char *const *want, int line) {
    int32_t got[256];
    g4c_err err = {0};
    int n = g4c_tok_encode(t, text, len, parse_special, got, 256, &err);
    int nw = 0, ok = n >= 0;
    while (want[nw]) nw++;
    ok = ok && n == nw;
    for (int i = 0; ok && i < nw; i++) ok = got[i] == g4c_tok_find(t, want[i]);
    if (!ok) {
        fprintf(stderr, "  FAIL line %d: encode(\"%.*s\", special=%d) =", line, (int)len, text, parse_special);
        for (int i = 0; i < n && i < 256; i++) fprintf(stderr, " %d(%s)", got[i], g4c_tok_piece(t, got[i]));
        fprintf(stderr, "%s\n    want", n < 0 ? err.msg : "");
        for (int i = 0; i < nw; i++) fprintf(stderr, " %d(%s)", g4c_tok_find(t, want[i]), want[i]);
        fputc('\n', stderr);
        test_failed_checks++;
    }
    /* and decoding gives the text back (invalid UTF-8 included: byte tokens carry raw bytes) */
    if (n > 0 && n <= 256 && !no_roundtrip) {
        char back[1024];
        int m = g4c_tok_decode(t, got, n, back, sizeof back);
        CHECKF(m == (int)len && memcmp(back, text, len) == 0, "line %d: decode gives \"%s\"", line, back);
    }
}
#define ENC(t, text, ps, ...) check_enc_n(t, text, strlen(text), ps, (const char *const[]){__VA_ARGS__, NULL}, __LINE__)
#define ENCN(t, text, len, ps, ...) check_enc_n(t, text, len, ps, (const char *const[]){__VA_ARGS__, NULL}, __LINE__)

static void test_merge_order(void) {
    g4c_tokenizer *t = mini_load(&DEFAULT_OPTS);
    if (!t) return;
    ENC(t, "abc", 1, "a", "bc");          /* b+c (rank 0) before a+b (rank 1), though a+b is leftmost */
    ENC(t, "ab", 1, "ab");
    ENC(t, "aba", 1, "ab", "a");
    ENC(t, "aaa", 1, "aa", "a");          /* equal ranks: leftmost first */
    ENC(t, "aaaa", 1, "aa", "aa");        /* the entry for the middle pair is stale after the first merge */
    ENC(t, "xyz", 1, "xyz");              /* chained: x+y, then xy+z */
    ENC(t, " hi", 1, SP "hi");            /* ' ' -> '▁', then h+i, then ▁+hi */
    ENC(t, "hi a", 1, "hi", SP "a");
    ENC(t, "  a", 1, SP, SP "a");         /* ▁+a (rank 4) wins over ▁+▁ (rank 10) */
    ENC(t, "  ", 1, SP SP);
    ENC(t, "\xc3\xa9" "a", 1, "\xc3\xa9", "a");
    int32_t one;
    CHECK(g4c_tok_encode(t, "", 0, 1, &one, 1, NULL) == 0);
    CHECK(g4c_tok_encode(t, NULL, 0, 1, NULL, 0, NULL) == 0);
    g4c_tok_free(t);
    /* merges written as pairs load to the same table */
    mini_opts o = DEFAULT_OPTS;
    o.pair_merges = 1;
    t = mini_load(&o);
    if (!t) return;
    ENC(t, "abc", 1, "a", "bc");
    ENC(t, "aaa xyz", 1, "aa", "a", SP, "xyz");
    g4c_tok_free(t);
}

static void test_byte_fallback(void) {
    g4c_tokenizer *t = mini_load(&DEFAULT_OPTS);
    if (!t) return;
    ENC(t, "\xe2\x82\xac", 1, "<0xE2>", "<0x82>", "<0xAC>");   /* € is not in the vocabulary */
    ENC(t, "a\xe2\x82\xac" "b", 1, "a", "<0xE2>", "<0x82>", "<0xAC>", "b");
    ENC(t, "\xff", 1, "<0xFF>");                                /* invalid UTF-8 is not an error */
    ENC(t, "a\xe2\x82", 1, "a", "<0xE2>", "<0x82>");            /* truncated sequence */
    ENC(t, "\xc0\xaf", 1, "<0xC0>", "<0xAF>");                  /* overlong encoding */
    ENCN(t, "a\0b", 3, 1, "a", "<0x00>", "b");                  /* NUL goes through too */
    ENC(t, "q", 1, "<0x71>");
    g4c_tok_free(t);
    /* without byte fallback: <unk>, fused or not */
    mini_opts o = DEFAULT_OPTS;
    o.byte_fallback = 0;
    o.fuse_unk = 1;
    t = mini_load(&o);
    if (!t) return;
    int32_t ids[8];
    CHECK(g4c_tok_encode(t, "\xe2\x82\xacqa", 5, 1, ids, 8, NULL) == 2 && ids[0] == 3 && ids[1] == 4);
    g4c_tok_free(t);
    o.fuse_unk = 0;
    t = mini_load(&o);
    if (!t) return;
    CHECK(g4c_tok_encode(t, "\xe2\x82\xacqa", 5, 1, ids, 8, NULL) == 3 && ids[0] == 3 && ids[1] == 3 && ids[2] == 4);
    g4c_tok_free(t);
}

static void test_added_tokens(void) {
    g4c_tokenizer *t = mini_load(&DEFAULT_OPTS);
    if (!t) return;
    CHECK(g4c_tok_n_vocab(t) == N_MINI + 256 + N_EXTRA);
    CHECK(g4c_tok_find(t, "<|turn>") == N_MINI + 256 + 1);
    CHECK(g4c_tok_is_special(t, 2) && g4c_tok_is_special(t, N_MINI + 256 + 1));
    CHECK(!g4c_tok_is_special(t, 4) && !g4c_tok_is_special(t, N_MINI + 256) && !g4c_tok_is_special(t, -1));
    CHECK(g4c_tok_piece(t, -1) == NULL && g4c_tok_piece(t, g4c_tok_n_vocab(t)) == NULL);
    CHECK(g4c_tok_find(t, "nope") == -1);
    ENC(t, "<bos>ab<eos>", 1, "<bos>", "ab", "<eos>");
    ENC(t, "<bos>", 0, "<0x3C>", "b", "<0x6F>", "<0x73>", "<0x3E>"); /* without parse_special: plain text */
    ENC(t, "x<b>y", 0, "x", "<b>", "y");                             /* non-special added: always split */
    ENC(t, "x<b>y", 1, "x", "<b>", "y");
    ENC(t, "<|turn>hi", 1, "<|turn>", "hi");
    ENC(t, "<|x", 1, "<|", "x");
    ENC(t, "<|turx", 1, "<|", "<0x74>", "<0x75>", "<0x72>", "x");     /* longest match falls back to "<|" */
    /* a special match skipped without parse_special stays text as a whole (no "<|" inside it) */
    ENC(t, "<|turn>", 0, "<0x3C>", "<0x7C>", "<0x74>", "<0x75>", "<0x72>", "<0x6E>", "<0x3E>");
    ENC(t, "a\n\n\nb", 0, "a", "\n\n", "\n", "b");                   /* leftmost-longest over whitespace tokens */
    ENC(t, "a <b> a", 1, "a", SP, "<b>", SP "a");                    /* segments are tokenized separately */
    g4c_tok_free(t);
}

static void test_normalizer_pretokenizer(void) {
    static const struct { const char *pre; const char *const want[6]; } CASES[] = {
        {"\"Isolated\"", {"hi", SP, SP, "a"}},
        {"\"Removed\"", {"hi", "a"}},
        {"\"MergedWithPrevious\"", {"hi", SP, SP, "a"}}, /* "hi▁" "▁" "a": only the first ▁ merges */
        {"\"MergedWithNext\"", {"hi", SP, SP "a"}},      /* "hi" "▁" "▁a" */
        {"\"Contiguous\"", {"hi", SP SP, "a"}},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        char pre[256];
        snprintf(pre, sizeof pre, "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\","
                 "\"pattern\":{\"String\":\"" SP "\"},\"behavior\":%s,\"invert\":false}]}", CASES[i].pre);
        mini_opts o = DEFAULT_OPTS;
        o.pre_tokenizer = pre;
        g4c_tokenizer *t = mini_load(&o);
        if (!t) continue;
        no_roundtrip = strcmp(CASES[i].pre, "\"Removed\"") == 0;
        check_enc_n(t, "hi  a", 5, 1, CASES[i].want, __LINE__);
        no_roundtrip = 0;
        g4c_tok_free(t);
    }
    mini_opts o = DEFAULT_OPTS;
    o.normalizer = "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"" SP "\"},"
                   "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"" SP "\"}]}";
    o.pre_tokenizer = "null";
    g4c_tokenizer *t = mini_load(&o);
    if (t) {
        int32_t ids[8];
        int n = g4c_tok_encode(t, "a<b>hi", 6, 1, ids, 8, NULL); /* each segment gets the prefix */
        CHECK(n == 3 && ids[0] == g4c_tok_find(t, SP "a") && ids[1] == g4c_tok_find(t, "<b>") &&
              ids[2] == g4c_tok_find(t, SP "hi"));
        g4c_tok_free(t);
    }
    o = DEFAULT_OPTS;
    o.ignore_merges = 1;
    t = mini_load(&o);
    if (t) {
        ENC(t, "abc", 1, "abc"); /* the word is a piece: no merging */
        ENC(t, "abcc", 1, "a", "bc", "c");
        g4c_tok_free(t);
    }
}

static void test_snprintf_contracts(void) {
    g4c_tokenizer *t = mini_load(&DEFAULT_OPTS);
    if (!t) return;
    g4c_err err = {0};
    int32_t ids[8] = {-7, -7, -7, -7, -7, -7, -7, -7};
    CHECK(g4c_tok_encode(t, "abcabc", 6, 1, NULL, 0, &err) == 4);
    CHECK(g4c_tok_encode(t, "abcabc", 6, 1, ids, 1, &err) == 4);
    CHECK(ids[0] == 4 && ids[1] == -7);
    CHECK(g4c_tok_encode(t, "abcabc", 6, 1, ids, 4, &err) == 4 && ids[3] == 8 && ids[4] == -7);
    CHECK(g4c_tok_encode(t, "a", 1, 1, NULL, 3, &err) == G4C_E_ARG && strstr(err.msg, "NULL"));
    CHECK(g4c_tok_encode(t, NULL, 3, 1, ids, 3, &err) == G4C_E_ARG);
    CHECK(g4c_tok_encode(NULL, "a", 1, 1, ids, 3, &err) == G4C_E_ARG);

    int32_t seq[3] = {g4c_tok_find(t, SP "hi"), g4c_tok_find(t, "<0xE2>"), 2};
    char buf[32];
    memset(buf, 'Z', sizeof buf);
    CHECK(g4c_tok_decode(t, seq, 3, buf, sizeof buf) == 9 && memcmp(buf, " hi\xe2<bos>", 10) == 0);
    memset(buf, 'Z', sizeof buf);
    CHECK(g4c_tok_decode(t, seq, 3, buf, 3) == 9 && memcmp(buf, " h\0Z", 4) == 0);
    memset(buf, 'Z', sizeof buf);
    CHECK(g4c_tok_decode(t, seq, 3, buf, 5) == 9 && memcmp(buf, " hi\xe2\0Z", 6) == 0);
    CHECK(g4c_tok_decode(t, seq, 3, buf, 1) == 9 && buf[0] == 0);
    CHECK(g4c_tok_decode(t, seq, 3, NULL, 0) == 9);
    CHECK(g4c_tok_decode(t, seq, 0, buf, sizeof buf) == 0 && buf[0] == 0);
    int32_t bad[2] = {4, g4c_tok_n_vocab(t)};
    CHECK(g4c_tok_decode(t, bad, 2, buf, sizeof buf) == G4C_E_ARG);
    bad[1] = -1;
    CHECK(g4c_tok_decode(t, bad, 2, buf, sizeof buf) == G4C_E_ARG);
    g4c_tok_free(t);
}

static void test_stream(void) {
    g4c_tokenizer *t = mini_load(&DEFAULT_OPTS);
    if (!t) return;
    g4c_tok_stream s = {0};
    char buf[64];
    int e2 = g4c_tok_find(t, "<0xE2>"), x82 = g4c_tok_find(t, "<0x82>"), xac = g4c_tok_find(t, "<0xAC>");
    CHECK(g4c_tok_stream_push(t, &s, g4c_tok_find(t, SP "hi"), buf, sizeof buf) == 3 && strcmp(buf, " hi") == 0);
    CHECK(g4c_tok_stream_push(t, &s, e2, buf, sizeof buf) == 0 && buf[0] == 0);
    CHECK(g4c_tok_stream_push(t, &s, x82, buf, sizeof buf) == 0);
    CHECK(g4c_tok_stream_push(t, &s, xac, buf, 3) == 3 && s.n_pending == 2); /* too small: needs 4, unchanged */
    CHECK(g4c_tok_stream_push(t, &s, xac, buf, sizeof buf) == 3 && strcmp(buf, "\xe2\x82\xac") == 0);
    CHECK(s.n_pending == 0);
    /* a lead byte followed by a non-continuation is emitted as is, not held forever */
    CHECK(g4c_tok_stream_push(t, &s, e2, buf, sizeof buf) == 0);
    CHECK(g4c_tok_stream_push(t, &s, 4, buf, sizeof buf) == 2 && strcmp(buf, "\xe2" "a") == 0);
    CHECK(g4c_tok_stream_push(t, &s, e2, buf, sizeof buf) == 0);
    CHECK(g4c_tok_stream_flush(&s, buf, sizeof buf) == 1 && strcmp(buf, "\xe2") == 0 && s.n_pending == 0);
    CHECK(g4c_tok_stream_flush(&s, buf, sizeof buf) == 0);
    CHECK(g4c_tok_stream_push(t, &s, -1, buf, sizeof buf) == G4C_E_ARG);
    g4c_tok_free(t);
}

/* ---- malformed files ---------------------------------------------------------------------------------------- */

#define V2 "{\"a\":0,\"b\":1,\"ab\":2}"
#define MODEL(vocab, merges) "{\"model\":{\"type\":\"BPE\",\"vocab\":" vocab ",\"merges\":" merges "}"

static void expect_bad(const char *json, g4c_status want, const char *msg_part, int line) {
    g4c_tokenizer *t = NULL;
    g4c_err err = {0};
    g4c_status st = g4c_tok_load_buffer(&t, json, strlen(json), "bad.json", &err);
    if (st != want || !strstr(err.msg, msg_part) || !strstr(err.msg, "bad.json") || t) {
        fprintf(stderr, "  FAIL line %d: status %d (want %d), message \"%s\" (want \"%s\")\n", line, st, want, err.msg,
                msg_part);
        test_failed_checks++;
    }
    g4c_tok_free(t);
}
#define BAD(json, st, part) expect_bad(json, st, part, __LINE__)

static void test_malformed(void) {
    BAD("not json", G4C_E_FORMAT, "invalid JSON");
    BAD("[1,2]", G4C_E_FORMAT, "not a JSON object");
    BAD("{\"version\":\"1.0\"}", G4C_E_FORMAT, "no \"model\" object");
    BAD("{\"model\":[]}", G4C_E_FORMAT, "no \"model\" object");
    BAD("{\"model\":{\"vocab\":" V2 ",\"merges\":[]}}", G4C_E_FORMAT, "model.type is missing");
    BAD("{\"model\":{\"type\":\"WordPiece\",\"vocab\":" V2 "}}", G4C_E_UNSUPPORTED, "only \"BPE\"");
    BAD("{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",0.0]]}}", G4C_E_UNSUPPORTED, "\"Unigram\"");
    BAD(MODEL("[\"a\",\"b\"]", "[]") "}", G4C_E_FORMAT, "model.vocab is missing or not an object");
    BAD("{\"model\":{\"type\":\"BPE\",\"merges\":[]}}", G4C_E_FORMAT, "model.vocab is missing");
    BAD("{\"model\":{\"type\":\"BPE\",\"vocab\":" V2 "}}", G4C_E_FORMAT, "model.merges is missing");
    BAD(MODEL("{}", "[]") "}", G4C_E_FORMAT, "model.vocab is empty");
    BAD(MODEL(V2, "[\"a zz\"]") "}", G4C_E_FORMAT, "model.merges[0]: piece \"zz\" is not in model.vocab");
    BAD(MODEL(V2, "[[\"a\",\"b\"],[\"q\",\"a\"]]") "}", G4C_E_FORMAT, "model.merges[1]: piece \"q\"");
    BAD(MODEL(V2, "[\"b a\"]") "}", G4C_E_FORMAT, "model.merges[0]: the merged piece \"ba\" is not in model.vocab");
    BAD(MODEL(V2, "[\"ab\"]") "}", G4C_E_FORMAT, "model.merges[0] = \"ab\" is not two pieces");
    BAD(MODEL(V2, "[\"a b c\"]") "}", G4C_E_FORMAT, "is not two pieces");
    BAD(MODEL(V2, "[\"a b\",7]") "}", G4C_E_FORMAT, "model.merges[1] is neither");
    BAD(MODEL(V2, "[[\"a\"]]") "}", G4C_E_FORMAT, "model.merges[0] is neither");
    BAD(MODEL("{\"a\":0,\"b\":3}", "[]") "}", G4C_E_FORMAT, "\"b\" has id 3, outside 0..1");
    BAD(MODEL("{\"a\":0,\"b\":-1}", "[]") "}", G4C_E_FORMAT, "has id -1, outside");
    BAD(MODEL("{\"a\":0,\"b\":0.5}", "[]") "}", G4C_E_FORMAT, "the id of \"b\" is not an integer");
    BAD(MODEL("{\"a\":0,\"b\":\"1\"}", "[]") "}", G4C_E_FORMAT, "the id of \"b\" is not an integer");
    BAD(MODEL("{\"a\":1,\"b\":1}", "[]") "}", G4C_E_FORMAT, "duplicate id 1 (\"a\" and \"b\")");
    BAD(MODEL("{\"a\":0,\"a\":1}", "[]") "}", G4C_E_FORMAT, "piece \"a\" appears twice (ids 0 and 1)");
    BAD(MODEL("{\"\":0}", "[]") "}", G4C_E_FORMAT, "empty piece");
    BAD(MODEL(V2, "[]") ",\"added_tokens\":{}}", G4C_E_FORMAT, "added_tokens is not an array");
    BAD(MODEL(V2, "[]") ",\"added_tokens\":[7]}", G4C_E_FORMAT, "added_tokens[0] is not an object");
    BAD(MODEL(V2, "[]") ",\"added_tokens\":[{\"id\":1,\"content\":\"a\"}]}", G4C_E_FORMAT,
        "added_tokens[0]: \"a\" has id 1 but is already id 0");
    BAD(MODEL(V2, "[]") ",\"added_tokens\":[{\"id\":1,\"content\":\"<x>\"}]}", G4C_E_FORMAT,
        "id 1 of \"<x>\" is already the piece \"b\"");
    BAD(MODEL(V2, "[]") ",\"added_tokens\":[{\"id\":9,\"content\":\"<x>\"}]}", G4C_E_FORMAT,
        "id 9 of \"<x>\" is out of range");
    BAD(MODEL(V2, "[]") ",\"added_tokens\":[{\"id\":0,\"content\":\"a\"},{\"id\":4,\"content\":\"<x>\"}]}",
        G4C_E_FORMAT, "no token has id 3");
    BAD(MODEL(V2, "[]") ",\"added_tokens\":[{\"id\":3,\"content\":\"<x>\"},{\"id\":3,\"content\":\"<y>\"}]}",
        G4C_E_FORMAT, "duplicate id 3 (\"<x>\" and \"<y>\")");
    BAD(MODEL(V2, "[]") ",\"added_tokens\":[{\"id\":3,\"content\":\"\"}]}", G4C_E_FORMAT, "non-empty string");
    BAD(MODEL(V2, "[]") ",\"added_tokens\":[{\"content\":\"<x>\"}]}", G4C_E_FORMAT, "\"id\" must be");
    BAD(MODEL(V2, "[]") ",\"added_tokens\":[{\"id\":3,\"content\":\"<x>\",\"special\":1}]}", G4C_E_FORMAT,
        "\"special\" must be true or false");
    BAD("{\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"vocab\":" V2 ",\"merges\":[]}}", G4C_E_FORMAT,
        "model.unk_token \"<unk>\" is not in model.vocab");
    BAD("{\"model\":{\"type\":\"BPE\",\"byte_fallback\":\"yes\",\"vocab\":" V2 ",\"merges\":[]}}", G4C_E_FORMAT,
        "model.byte_fallback must be true or false");
    BAD("{\"model\":{\"type\":\"BPE\",\"dropout\":0.1,\"vocab\":" V2 ",\"merges\":[]}}", G4C_E_UNSUPPORTED,
        "dropout");
    BAD("{\"model\":{\"type\":\"BPE\",\"continuing_subword_prefix\":\"##\",\"vocab\":" V2 ",\"merges\":[]}}",
        G4C_E_UNSUPPORTED, "continuing_subword_prefix");
    BAD(MODEL(V2, "[]") ",\"normalizer\":{\"type\":\"NFKC\"}}", G4C_E_UNSUPPORTED, "normalizer type \"NFKC\"");
    BAD(MODEL(V2, "[]") ",\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" +\"},\"content\":\"_\"}}",
        G4C_E_UNSUPPORTED, "Regex");
    BAD(MODEL(V2, "[]") ",\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"}}}", G4C_E_FORMAT,
        "no \"content\"");
    BAD(MODEL(V2, "[]") ",\"normalizer\":7}", G4C_E_FORMAT, "normalizer is not an object");
    BAD(MODEL(V2, "[]") ",\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}", G4C_E_UNSUPPORTED,
        "pre_tokenizer type \"ByteLevel\"");
    BAD(MODEL(V2, "[]") ",\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"X\"}}",
        G4C_E_FORMAT, "behavior");
    BAD(MODEL(V2, "[]") ",\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\"\"},\"behavior\":"
        "\"Isolated\"}}", G4C_E_FORMAT, "non-empty");
    BAD(MODEL(V2, "[]") ",\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":"
        "\"Isolated\",\"invert\":true}}", G4C_E_UNSUPPORTED, "invert");

    /* the minimal valid file, and file-level errors naming the path */
    g4c_tokenizer *t = NULL;
    g4c_err err = {0};
    const char *ok = MODEL(V2, "[\"a b\"]") "}";
    CHECKF(g4c_tok_load_buffer(&t, ok, strlen(ok), "ok.json", &err) == G4C_OK, "%s", err.msg);
    if (t) {
        int32_t ids[2];
        CHECK(g4c_tok_n_vocab(t) == 3 && g4c_tok_encode(t, "ab", 2, 1, ids, 2, NULL) == 1 && ids[0] == 2);
        CHECK(g4c_tok_apply_gemma4_specials(t, &err) == G4C_E_ARG && strstr(err.msg, "not a Gemma 3/4 vocabulary"));
        g4c_tok_free(t);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer.json", tmp_root);
    CHECK(g4c_tok_load(&t, path, &err) == G4C_E_IO && strstr(err.msg, path) && t == NULL);
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(MODEL(V2, "[\"a c\"]") "}", f);
        fclose(f);
    }
    CHECK(g4c_tok_load(&t, path, &err) == G4C_E_FORMAT && strstr(err.msg, path) && strstr(err.msg, "\"c\"") && !t);
    unlink(path);
}

/* ---- the Gemma 4 patch on a synthetic Gemma-sized vocabulary ------------------------------------------------- */

static const struct { int id; const char *g3, *g4; } G4[] = {
    {46, "<unused40>", "<|tool>"}, {47, "<unused41>", "<tool|>"}, {48, "<unused42>", "<|tool_call>"},
    {49, "<unused43>", "<tool_call|>"}, {50, "<unused44>", "<|tool_response>"}, {51, "<unused45>", "<tool_response|>"},
    {52, "<unused46>", "<|\"|>"}, {98, "<unused92>", "<|think|>"}, {100, "<unused94>", "<|channel>"},
    {101, "<unused95>", "<channel|>"}, {105, "<start_of_turn>", "<|turn>"}, {106, "<end_of_turn>", "<turn|>"},
    {255999, "<start_of_image>", "<|image>"}, {256000, "<end_of_image>", "<|audio>"},
    {258880, "<unused2978>", "<|image|>"}, {258881, "<unused2979>", "<|audio|>"}, {258882, "<unused2980>", "<image|>"},
    {258883, "<unused2981>", "<audio|>"}, {258884, "<unused2982>", "<|video|>"},
};
#define N_G4 ((int)(sizeof G4 / sizeof G4[0]))

/* 262144 pieces shaped like Gemma's: specials 0-3, Gemma 3 (gemma4 = 0) or Gemma 4 strings at the table ids,
 * "\n" at 107, the byte tokens at 238.., "a", "b", "ab", "▁" and filler; plus Gemma 3's extra 262144. */
static char *gemma_like_json(int gemma4, const char *id46) {
    sbuf b = {0};
    static const char *const SPECIAL[] = {"<pad>", "<eos>", "<bos>", "<unk>"};
    sb_add(&b, "{\"added_tokens\":[");
    for (int i = 0; i < 4; i++) sb_addf(&b, "{\"id\":%d,\"content\":\"%s\",\"special\":true},", i, SPECIAL[i]);
    for (int i = 0; i < N_G4; i++) {
        sb_addf(&b, "{\"id\":%d,\"content\":", G4[i].id);
        sb_json_str(&b, G4[i].id == 46 && id46 ? id46 : gemma4 ? G4[i].g4 : G4[i].g3);
        sb_addf(&b, ",\"special\":%s},", G4[i].id == 105 || G4[i].id == 106 || G4[i].id >= 255999 ? "true" : "false");
    }
    sb_add(&b, "{\"id\":107,\"content\":\"\\n\",\"special\":false}");
    if (!gemma4) sb_add(&b, ",{\"id\":262144,\"content\":\"<image_soft_token>\",\"special\":true}");
    sb_add(&b, "],\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"" SP "\"},"
               "\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"unk_token\":\"<unk>\",\"vocab\":{");
    int g = 0;
    for (int id = 0; id < 262144; id++) {
        if (id) sb_add(&b, ",");
        if (id < 4) sb_addf(&b, "\"%s\":%d", SPECIAL[id], id);
        else if (id == 107) sb_add(&b, "\"\\n\":107");
        else if (id >= 238 && id < 238 + 256) sb_addf(&b, "\"<0x%02X>\":%d", id - 238, id);
        else if (id == 600) sb_add(&b, "\"a\":600");
        else if (id == 601) sb_add(&b, "\"b\":601");
        else if (id == 602) sb_add(&b, "\"ab\":602");
        else if (id == 603) sb_add(&b, "\"" SP "\":603");
        else if (g < N_G4 && id == G4[g].id) {
            sb_json_str(&b, id == 46 && id46 ? id46 : gemma4 ? G4[g].g4 : G4[g].g3);
            sb_addf(&b, ":%d", id);
            g++;
        } else {
            sb_addf(&b, "\"p%d\":%d", id, id);
        }
    }
    sb_add(&b, "},\"merges\":[\"a b\"]}}");
    return b.p;
}

static void test_gemma4_specials(void) {
    char *js = gemma_like_json(0, NULL);
    g4c_tokenizer *t = NULL;
    g4c_err err = {0};
    CHECKF(g4c_tok_load_buffer(&t, js, strlen(js), "gemma3-like", &err) == G4C_OK, "%s", err.msg);
    free(js);
    if (!t) return;
    int32_t ids[16];
    CHECK(g4c_tok_n_vocab(t) == 262145);
    CHECK(g4c_tok_encode(t, "<start_of_turn>ab<unused40>", 27, 1, ids, 16, NULL) == 3 && ids[0] == 105 &&
          ids[1] == 602 && ids[2] == 46);
    for (int round = 0; round < 2; round++) { /* twice: the second call must change nothing */
        CHECKF(g4c_tok_apply_gemma4_specials(t, &err) == G4C_OK, "%s", err.msg);
        CHECK(g4c_tok_n_vocab(t) == 262144);
        CHECK(g4c_tok_find(t, "<image_soft_token>") == -1 && g4c_tok_piece(t, 262144) == NULL);
        CHECK(g4c_tok_find(t, "<start_of_turn>") == -1 && g4c_tok_find(t, "<unused40>") == -1);
        for (int i = 0; i < N_G4; i++) {
            CHECKF(g4c_tok_find(t, G4[i].g4) == G4[i].id && strcmp(g4c_tok_piece(t, G4[i].id), G4[i].g4) == 0 &&
                   g4c_tok_is_special(t, G4[i].id), "id %d", G4[i].id);
        }
        const char *s = "<|turn>ab\n<|image><|image|><image|><turn|>";
        int n = g4c_tok_encode(t, s, strlen(s), 1, ids, 16, NULL);
        CHECK(n == 7 && ids[0] == 105 && ids[1] == 602 && ids[2] == 107 && ids[3] == 255999 && ids[4] == 258880 &&
              ids[5] == 258882 && ids[6] == 106);
        char back[128];
        CHECK(g4c_tok_decode(t, ids, n, back, sizeof back) == (int)strlen(s) && strcmp(back, s) == 0);
        /* user text does not turn into control tokens without parse_special */
        n = g4c_tok_encode(t, "<|turn>", 7, 0, ids, 16, NULL);
        CHECK(n == 7 && ids[0] == 238 + '<' && ids[1] == 238 + '|');
    }
    g4c_tok_free(t);

    /* a vocabulary that already has the Gemma 4 strings: only marked special, nothing else changes */
    js = gemma_like_json(1, NULL);
    CHECKF(g4c_tok_load_buffer(&t, js, strlen(js), "gemma4-like", &err) == G4C_OK, "%s", err.msg);
    free(js);
    if (t) {
        CHECK(g4c_tok_n_vocab(t) == 262144);
        CHECK(g4c_tok_is_special(t, 46) && g4c_tok_is_special(t, 98)); /* control strings are special on load */
        CHECK(g4c_tok_encode(t, "<|tool>", 7, 1, ids, 16, NULL) == 1 && ids[0] == 46);
        CHECKF(g4c_tok_apply_gemma4_specials(t, &err) == G4C_OK, "%s", err.msg);
        CHECK(g4c_tok_n_vocab(t) == 262144 && g4c_tok_find(t, "<|tool>") == 46 && g4c_tok_find(t, "ab") == 602);
        g4c_tok_free(t);
    }

    /* an id holding neither string: refused, nothing changed */
    js = gemma_like_json(0, "<something>");
    CHECKF(g4c_tok_load_buffer(&t, js, strlen(js), "other", &err) == G4C_OK, "%s", err.msg);
    free(js);
    if (t) {
        CHECK(g4c_tok_apply_gemma4_specials(t, &err) == G4C_E_ARG && strstr(err.msg, "id 46 is \"<something>\""));
        CHECK(g4c_tok_n_vocab(t) == 262145 && g4c_tok_find(t, "<start_of_turn>") == 105);
        g4c_tok_free(t);
    }
}

/* ---- the real vocabulary ------------------------------------------------------------------------------------ */

/* ollama model/models/gemma4/tokenizer_reference_test.go: ids from the Rust tokenizers library. */
static const struct { const char *name, *text; int n; int32_t ids[12]; } REF[] = {
    {"basic word", "hello", 1, {23391}},
    {"two words", "hello world", 2, {23391, 1902}},
    {"punctuation", "Hello, World!", 4, {9259, 236764, 4109, 236888}},
    {"leading space", " hello", 1, {29104}},
    {"double leading space", "  hello", 2, {138, 23391}},
    {"double space between words", "hello  world", 3, {23391, 138, 12392}},
    {"only spaces", "   ", 1, {139}},
    {"repeated spaces", "      ", 1, {142}},
    {"leading spaces phrase", " leading spaces", 2, {5830, 9952}},
    {"multiple interior spaces", "multiple    spaces", 3, {43819, 140, 35220}},
    {"polish diacritics", "ąęśćżźółń", 7, {237198, 237202, 14732, 237277, 238992, 24875, 238041}},
    {"polish sentence", "Zażółć gęślą jaźń", 11,
     {236953, 40512, 24875, 237289, 549, 237202, 62081, 237198, 4828, 238992, 238041}},
    {"french accents", "café résumé naïve", 4, {123125, 236859, 118515, 120362}},
    {"french with apostrophe", "L'élève a mangé", 6, {236798, 236789, 161654, 496, 14695, 236859}},
    {"german umlauts", "über Straße Größe", 3, {28223, 80176, 112880}},
    {"codepoints in gpt2 byte range", "ąęćł", 3, {237198, 226110, 237114}},
    {"latin extended A", "ĀāĂăĄą", 6, {241920, 237448, 241645, 237106, 243514, 237198}},
    {"chinese", "你好世界", 2, {144626, 12811}},
    {"japanese hiragana", "こんにちは", 1, {85141}},
    {"mixed scripts", "hello ąęść world café 你好", 9,
     {23391, 236743, 237198, 237202, 14732, 1902, 33443, 43758, 237389}},
    {"empty string", "", 0, {0}},
    {"newlines", "\n\n", 1, {108}},
    {"tabs", "\t\t", 1, {255969}},
    {"python code", "def foo(x): return x + 1", 10,
     {2063, 46293, 236769, 236781, 1473, 994, 1123, 900, 236743, 236770}},
    {"json", "{\"key\": \"value\"}", 6, {14937, 2478, 1083, 623, 2394, 25938}},
    {"repeated char", "aaaaaa", 2, {50354, 9236}},
    {"emoji", "hello 👋 world", 3, {23391, 155818, 1902}},
    {"digits", "12345", 5, {236770, 236778, 236800, 236812, 236810}},
    {"float", "3.14159", 7, {236800, 236761, 236770, 236812, 236770, 236810, 236819}},
};
#define N_REF ((int)(sizeof REF / sizeof REF[0]))

/* Spec §5-6 (with the Gemma 4 renaming; parse_special on). */
static const struct { const char *text; int n; int32_t ids[12]; } SPEC[] = {
    {"<|turn>user\n", 3, {105, 2364, 107}},
    {"<|turn>model\n", 3, {105, 4368, 107}},
    {"<turn|>\n", 2, {106, 107}},
    {"thought\n", 2, {45518, 107}},
    {"\n\n\n", 1, {109}},
    {"<bos><|turn>user\n", 4, {2, 105, 2364, 107}},
    {"<|channel>thought\n<channel|>", 4, {100, 45518, 107, 101}},
    {"\n\n<|image><|image|><|image|><image|>\n\n", 6, {108, 255999, 258880, 258880, 258882, 108}},
    {"<|tool_call>call:f{a:<|\"|>x<|\"|>}<tool_call|>", 0, {0}}, /* only checked to start/end with 48/49 */
    {"<|think|><|tool><tool|><|tool_response><tool_response|><|audio><|audio|><audio|><|video|>", 9,
     {98, 46, 47, 50, 51, 256000, 258881, 258883, 258884}},
};

static int ids_equal(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

static g4c_tokenizer *real_t;

static void real_load(void) {
    const char *path = getenv("G4C_TOKENIZER_JSON");
    g4c_err err = {0};
    double t0 = g4c_time_ms();
    g4c_status st = g4c_tok_load(&real_t, path, &err);
    double t_load = g4c_time_ms() - t0;
    CHECKF(st == G4C_OK, "cannot load %s: %s", path, err.msg);
    if (st != G4C_OK) return;
    int n_before = g4c_tok_n_vocab(real_t);
    st = g4c_tok_apply_gemma4_specials(real_t, &err);
    printf("loaded %s in %.0f ms: %d ids (%d after the Gemma 4 patch)\n", path, t_load, n_before,
           g4c_tok_n_vocab(real_t));
    CHECKF(st == G4C_OK, "%s", err.msg);
    CHECK(g4c_tok_n_vocab(real_t) == 262144);
}

static void real_reference_cases(void) {
    const g4c_tokenizer *t = real_t;
    CHECK(t != NULL);
    if (!t) return;
    int32_t ids[256];
    char back[1024];
    g4c_err err = {0};
    int n_ok = 0;
    for (int i = 0; i < N_REF; i++) {
        size_t len = strlen(REF[i].text);
        int ok = 1;
        for (int ps = 0; ps < 2; ps++) {
            int n = g4c_tok_encode(t, REF[i].text, len, ps, ids, 256, &err);
            if (!ids_equal(ids, n, REF[i].ids, REF[i].n)) {
                ok = 0;
                fprintf(stderr, "  FAIL %s (parse_special=%d): got", REF[i].name, ps);
                for (int k = 0; k < n && k < 32; k++) fprintf(stderr, " %d", ids[k]);
                fputc('\n', stderr);
                continue;
            }
            int m = g4c_tok_decode(t, ids, n, back, sizeof back);
            if (m != (int)len || memcmp(back, REF[i].text, len) != 0) {
                ok = 0;
                fprintf(stderr, "  FAIL %s: decode gives \"%s\"\n", REF[i].name, back);
            }
        }
        n_ok += ok;
        if (!ok) test_failed_checks++;
    }
    printf("reference cases (ollama tokenizer_reference_test.go): %d/%d identical, all decode back\n", n_ok, N_REF);
}

static void real_spec_ids(void) {
    const g4c_tokenizer *t = real_t;
    CHECK(t != NULL);
    if (!t) return;
    int32_t ids[256];
    char back[1024];
    for (size_t i = 0; i < sizeof SPEC / sizeof SPEC[0]; i++) {
        size_t len = strlen(SPEC[i].text);
        int n = g4c_tok_encode(t, SPEC[i].text, len, 1, ids, 256, NULL);
        if (SPEC[i].n)
            CHECKF(ids_equal(ids, n, SPEC[i].ids, SPEC[i].n), "spec case %zu: %d ids, first %d", i, n,
                   n > 0 ? ids[0] : -1);
        else
            CHECKF(n > 2 && ids[0] == 48 && ids[n - 1] == 49 && ids[1] != 52, "spec case %zu", i);
        int m = g4c_tok_decode(t, ids, n, back, sizeof back);
        CHECKF(m == (int)len && memcmp(back, SPEC[i].text, len) == 0, "spec case %zu decodes to \"%s\"", i, back);
    }
    /* control strings in user text stay text without parse_special */
    int n = g4c_tok_encode(t, "<|turn>user", 11, 0, ids, 256, NULL);
    CHECK(n > 2 && ids[0] != 105);
    for (int k = 0; k < n; k++) CHECK(!g4c_tok_is_special(t, ids[k]));
    CHECK(g4c_tok_find(t, "<|turn>") == 105 && g4c_tok_find(t, "<start_of_turn>") == -1);
    CHECK(g4c_tok_is_special(t, 105) && g4c_tok_is_special(t, 258880) && !g4c_tok_is_special(t, 107));
    CHECK(strcmp(g4c_tok_piece(t, 23391), "hello") == 0);
}

static void real_long_text(void) {
    const g4c_tokenizer *t = real_t;
    CHECK(t != NULL);
    if (!t) return;
    /* ~1 MB of mixed text (the reference strings, prose, code) and its round trip */
    sbuf big = {0};
    while (big.n < (1u << 20)) {
        for (int i = 0; i < N_REF; i++) {
            sb_add(&big, REF[i].text);
            sb_add(&big, i % 5 == 0 ? "\n\n" : " ");
        }
        sb_add(&big, "The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.\n"
                     "for (int i = 0; i < n; i++) { sum += x[i] * w[i]; }\n");
    }
    g4c_err err = {0};
    int need = g4c_tok_encode(t, big.p, big.n, 1, NULL, 0, &err);
    int32_t *ids = malloc(sizeof *ids * (size_t)(need > 0 ? need : 1));
    char *back = malloc(big.n + 1);
    double t0 = g4c_time_ms();
    int got = g4c_tok_encode(t, big.p, big.n, 1, ids, need, &err);
    double t_enc = g4c_time_ms() - t0;
    CHECK(need > 0 && got == need);
    CHECK(g4c_tok_decode(t, ids, got, back, big.n + 1) == (int)big.n && memcmp(back, big.p, big.n) == 0);
    /* one long line without added tokens to cut it: a single ~100 KB BPE word */
    sbuf line = {0};
    while (line.n < 100000) sb_add(&line, "hello world café 你好 aaaaaa 12345 ");
    t0 = g4c_time_ms();
    int nl = g4c_tok_encode(t, line.p, line.n, 1, NULL, 0, &err);
    double t_line = g4c_time_ms() - t0;
    CHECK(nl > 0);
    if (t_enc <= 0) t_enc = 1e-3;
    printf("encode: %.2f MB in %.1f ms = %.1f MB/s, %d tokens = %.2f M tokens/s; one 100 KB line: %.1f ms\n",
           big.n / 1e6, t_enc, big.n / 1e3 / t_enc, got, got / 1e3 / t_enc, t_line);
    free(ids);
    free(back);
    free(big.p);
    free(line.p);
}

/* every id decodes, one at a time and through the streaming helper with a 128-byte buffer */
static void real_all_ids(void) {
    const g4c_tokenizer *t = real_t;
    CHECK(t != NULL);
    if (!t) return;
    g4c_tok_stream s = {0};
    char piece[256];
    int bad = 0;
    for (int32_t id = 0; id < g4c_tok_n_vocab(t); id++) {
        int m = g4c_tok_decode(t, &id, 1, piece, sizeof piece);
        if (m < 0 || m >= (int)sizeof piece) bad++;
        int k = g4c_tok_stream_push(t, &s, id, piece, 128); /* the header promises 128 bytes suffice */
        if (k < 0 || k >= 128) bad++;
    }
    CHECK(bad == 0);
}

static int real_main(void) {
    const char *path = getenv("G4C_TOKENIZER_JSON");
    if (!path || !*path) {
        printf("skip: G4C_TOKENIZER_JSON is not set (G4C_TOKENIZER_JSON=$(sh scripts/fetch-tokenizer.sh))\n");
        printf("0 passed, 0 failed, 1 skipped\n");
        return 0;
    }
    RUN(real_load);
    RUN(real_reference_cases);
    RUN(real_spec_ids);
    RUN(real_long_text);
    RUN(real_all_ids);
    g4c_tok_free(real_t);
    return TEST_REPORT();
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--real") == 0) return real_main();
    snprintf(tmp_root, sizeof tmp_root, "/tmp/g4c_test_tok_XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_merge_order);
    RUN(test_byte_fallback);
    RUN(test_added_tokens);
    RUN(test_normalizer_pretokenizer);
    RUN(test_snprintf_contracts);
    RUN(test_stream);
    RUN(test_malformed);
    RUN(test_gemma4_specials);
    rmdir(tmp_root);
    return TEST_REPORT();
}
