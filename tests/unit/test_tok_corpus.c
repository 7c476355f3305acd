/* Tokenizer agreement with Hugging Face "tokenizers" on the real Gemma 4 vocabulary (issue 4).
 * tests/fixtures/tokenizer/corpus.jsonl (made by tools/make_tok_corpus.js: >= 5000 strings in many scripts, emoji,
 * code, numbers, whitespace runs, Gemma control strings inside text, invalid UTF-8) holds, for every string, the ids
 * the Rust library gives with special tokens parsed ("ids") and not parsed ("ids_ns", when different), and its
 * decode of each. With $G4C_TOKENIZER_JSON naming Gemma's tokenizer.json (sh scripts/fetch-tokenizer.sh) and the
 * Gemma 4 specials applied, every string must agree:
 *   encode, both ways of parse_special: identical id sequences;
 *   decode: our bytes (byte tokens give raw bytes) turned into text the way the library's ByteFallback decoder does
 *           (a run of byte tokens that is valid UTF-8 is kept, any other run becomes one U+FFFD per byte) must equal
 *           its decode. (Rust's String::from_utf8_lossy, one U+FFFD per maximal invalid subpart, is not what the
 *           library does for e.g. a truncated sequence; the number of strings where the two differ is printed.)
 *   decode(encode(x)) == x byte for byte, with U+2581 read as a space (the decoder's only lossy step), and the
 *   streaming detokenizer gives the same bytes.
 * Skips ("0 passed, 0 failed, 1 skipped") when G4C_TOKENIZER_JSON is unset. argv[1] may name another corpus file. */
#include <time.h>

#include "formats/formats.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

#ifndef G4C_FIXTURES
#define G4C_FIXTURES "tests/fixtures"
#endif

typedef struct {
    int line;
    char cat[16];
    char *text; /* NUL-terminated for printing; may hold NUL (text_len counts) */
    size_t text_len;
    int32_t *ids, *ids_ns; /* ids_ns == ids when the corpus has no "ids_ns" */
    int n_ids, n_ids_ns;
    char *dec, *dec_ns;
    size_t dec_len, dec_ns_len;
} rec;

static rec *recs;
static int n_recs;
static g4c_tokenizer *tok;
static const char *corpus_path = G4C_FIXTURES "/tokenizer/corpus.jsonl";

/* ---- UTF-8 ---------------------------------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0 (Unicode Table 3-7). *sub gets the length of its
 * maximal subpart (the longest prefix of some well-formed sequence, at least 1) for from_utf8_lossy. */
static size_t wf_len(const unsigned char *s, size_t n, size_t *sub) {
    unsigned c = s[0];
    size_t L;
    unsigned lo = 0x80, hi = 0xBF;
    *sub = 1;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) L = 2;
    else if (c >= 0xE0 && c <= 0xEF) { L = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { L = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 0;
    size_t k = 1;
    for (; k < L && k < n; k++) {
        unsigned a = k == 1 ? lo : 0x80, b = k == 1 ? hi : 0xBF;
        if (s[k] < a || s[k] > b) break;
    }
    if (k == L) return L;
    *sub = k;
    return 0;
}

static int utf8_valid(const unsigned char *s, size_t n) {
    size_t sub;
    for (size_t i = 0; i < n;) {
        size_t L = wf_len(s + i, n - i, &sub);
        if (!L) return 0;
        i += L;
    }
    return 1;
}

/* Rust's String::from_utf8_lossy: one U+FFFD per maximal subpart of an ill-formed sequence. out: 3 * n bytes. */
static size_t utf8_lossy(const unsigned char *s, size_t n, char *out) {
    size_t o = 0, sub;
    for (size_t i = 0; i < n;) {
        size_t L = wf_len(s + i, n - i, &sub);
        if (L) {
            memcpy(out + o, s + i, L);
            o += L;
            i += L;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += sub;
        }
    }
    return o;
}

/* ---- reading the corpus --------------------------------------------------------------------------------- */

static int hexval(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A text member given as "key" (a JSON string) or "key_hex" (bytes as hex). Returns 1 when found and well-formed. */
static int get_text(const cJSON *o, const char *key, char **out, size_t *len) {
    char hk[32];
    snprintf(hk, sizeof hk, "%s_hex", key);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, key), *h = cJSON_GetObjectItemCaseSensitive(o, hk);
    if (cJSON_IsString(s)) {
        *len = strlen(s->valuestring);
        *out = malloc(*len + 1);
        if (!*out) return 0;
        memcpy(*out, s->valuestring, *len + 1);
        return 1;
    }
    if (!cJSON_IsString(h)) return 0;
    size_t n = strlen(h->valuestring);
    if (n % 2) return 0;
    *out = malloc(n / 2 + 1);
    if (!*out) return 0;
    for (size_t i = 0; i < n / 2; i++) {
        int a = hexval((unsigned char)h->valuestring[2 * i]), b = hexval((unsigned char)h->valuestring[2 * i + 1]);
        if (a < 0 || b < 0) return 0;
        (*out)[i] = (char)(a * 16 + b);
    }
    (*out)[n / 2] = 0;
    *len = n / 2;
    return 1;
}

static int get_ids(const cJSON *o, const char *key, int32_t **out, int *n) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a)) return 0;
    *n = cJSON_GetArraySize(a);
    *out = malloc(sizeof(int32_t) * (size_t)(*n ? *n : 1));
    if (!*out) return 0;
    int i = 0;
    for (const cJSON *it = a->child; it; it = it->next, i++) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > INT32_MAX ||
            it->valuedouble != (double)(int32_t)it->valuedouble)
            return 0;
        (*out)[i] = (int32_t)it->valuedouble;
    }
    return 1;
}

static void corpus_load(void) {
    char *buf;
    size_t len;
    g4c_err err = {0};
    g4c_status st = g4c_read_file(corpus_path, (size_t)64 << 20, &buf, &len, &err);
    CHECKF(st == G4C_OK, "%s", err.msg);
    if (st != G4C_OK) return;
    int cap = 0, line = 0;
    for (char *p = buf, *end = buf + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line++;
        if (n) {
            cJSON *o = NULL;
            if (g4c_json_parse(&o, p, n, corpus_path, &err) != G4C_OK) {
                CHECKF(0, "line %d: %s", line, err.msg);
                break;
            }
            if (n_recs == cap) {
                cap = cap ? 2 * cap : 8192;
                recs = realloc(recs, sizeof *recs * (size_t)cap);
                if (!recs) abort();
            }
            rec *r = &recs[n_recs];
            memset(r, 0, sizeof *r);
            r->line = line;
            const cJSON *cat = cJSON_GetObjectItemCaseSensitive(o, "cat");
            snprintf(r->cat, sizeof r->cat, "%s", cJSON_IsString(cat) ? cat->valuestring : "?");
            int has_ns = cJSON_GetObjectItemCaseSensitive(o, "ids_ns") != NULL;
            int ok = get_text(o, "text", &r->text, &r->text_len) && get_ids(o, "ids", &r->ids, &r->n_ids) &&
                     get_text(o, "decoded", &r->dec, &r->dec_len) &&
                     (!has_ns || (get_ids(o, "ids_ns", &r->ids_ns, &r->n_ids_ns) &&
                                  get_text(o, "decoded_ns", &r->dec_ns, &r->dec_ns_len)));
            cJSON_Delete(o);
            CHECKF(ok, "line %d: malformed record", line);
            if (!ok) {
                free(r->text), free(r->ids), free(r->dec), free(r->ids_ns), free(r->dec_ns);
                break;
            }
            if (!has_ns) {
                r->ids_ns = r->ids, r->n_ids_ns = r->n_ids;
                r->dec_ns = r->dec, r->dec_ns_len = r->dec_len;
            }
            n_recs++;
        }
        p += n + 1;
    }
    free(buf);
    CHECKF(n_recs >= 5000, "%d strings", n_recs);
}

static void corpus_free(void) {
    for (int i = 0; i < n_recs; i++) {
        if (recs[i].ids_ns != recs[i].ids) free(recs[i].ids_ns);
        if (recs[i].dec_ns != recs[i].dec) free(recs[i].dec_ns);
        free(recs[i].ids);
        free(recs[i].dec);
        free(recs[i].text);
    }
    free(recs);
}

/* ---- helpers -------------------------------------------------------------------------------------------- */

static void print_bytes(const char *label, const char *s, size_t n) {
    fprintf(stderr, "    %s (%zu bytes): \"", label, n);
    for (size_t i = 0; i < n && i < 160; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' || c == '"') fprintf(stderr, "\\%c", c);
        else if (c >= 0x20 && c < 0x7F) fputc(c, stderr);
        else fprintf(stderr, "\\x%02x", c);
    }
    fprintf(stderr, "%s\"\n", n > 160 ? "..." : "");
}

static void print_ids(const char *label, const int32_t *ids, int n) {
    fprintf(stderr, "    %s (%d):", label, n);
    for (int i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "%s\n", n > 40 ? " ..." : "");
}

/* ids of r->text; malloc'd, *n set; NULL on error. */
static int32_t *encode(const rec *r, int parse_special, int *n) {
    g4c_err err = {0};
    int cnt = g4c_tok_encode(tok, r->text, r->text_len, parse_special, NULL, 0, &err);
    if (cnt < 0) return NULL;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(cnt + 1));
    if (!ids) return NULL;
    *n = g4c_tok_encode(tok, r->text, r->text_len, parse_special, ids, cnt, &err);
    if (*n != cnt) {
        free(ids);
        return NULL;
    }
    return ids;
}

/* Our decode of ids, malloc'd, *len set. */
static char *decode(const int32_t *ids, int n, size_t *len) {
    int need = g4c_tok_decode(tok, ids, n, NULL, 0);
    if (need < 0) return NULL;
    char *s = malloc((size_t)need + 1);
    if (s) g4c_tok_decode(tok, ids, n, s, (size_t)need + 1);
    *len = (size_t)need;
    return s;
}

static int is_byte_token(int32_t id) {
    const char *p = g4c_tok_piece(tok, id);
    return p && strlen(p) == 6 && memcmp(p, "<0x", 3) == 0 && p[5] == '>' && hexval((unsigned char)p[3]) >= 0 &&
           hexval((unsigned char)p[4]) >= 0;
}

/* Our decode, id by id, made text the way tokenizers' ByteFallback decoder does. Also checks that the pieces
 * concatenate to the whole decode. out must hold 3 * (decode length) bytes. */
static size_t decode_hf_style(const int32_t *ids, int n, const char *whole, size_t whole_len, char *out, int *pieces_ok) {
    size_t o = 0, run = 0, at = 0; /* run: bytes of pending byte tokens, at out + o */
    char piece[256];
    *pieces_ok = 1;
    for (int i = 0; i <= n; i++) {
        int byte = i < n && is_byte_token(ids[i]);
        if (!byte && run) {
            if (!utf8_valid((const unsigned char *)out + o, run)) {
                for (size_t k = 0; k < run; k++) memcpy(out + o + 3 * k, "\xEF\xBF\xBD", 3);
                run *= 3;
            }
            o += run;
            run = 0;
        }
        if (i == n) break;
        int len = g4c_tok_decode(tok, &ids[i], 1, piece, sizeof piece);
        if (len < 0 || len >= (int)sizeof piece || at + (size_t)len > whole_len || memcmp(whole + at, piece, (size_t)len)) {
            *pieces_ok = 0;
            return 0;
        }
        at += (size_t)len;
        memcpy(out + o + run, piece, (size_t)len);
        if (byte) run += (size_t)len;
        else o += (size_t)len;
    }
    if (at != whole_len) *pieces_ok = 0;
    return o;
}

/* ---- the checks ------------------------------------------------------------------------------------------ */

static int n_enc_ok[2], n_dec_ok[2], n_rt_ok[2], n_lossy_same;
static double enc_ms, enc_bytes;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void check_encode(int parse_special) {
    int bad = 0;
    for (int i = 0; i < n_recs; i++) {
        const rec *r = &recs[i];
        const int32_t *want = parse_special ? r->ids : r->ids_ns;
        int nw = parse_special ? r->n_ids : r->n_ids_ns, n = 0;
        double t0 = now_ms();
        int32_t *got = encode(r, parse_special, &n);
        enc_ms += now_ms() - t0;
        enc_bytes += (double)r->text_len;
        int ok = got && n == nw && (n == 0 || memcmp(got, want, sizeof(int32_t) * (size_t)n) == 0);
        if (ok) n_enc_ok[parse_special]++;
        else if (bad++ < 8) {
            fprintf(stderr, "  encode (parse_special=%d) differs, corpus line %d [%s]:\n", parse_special, r->line, r->cat);
            print_bytes("text", r->text, r->text_len);
            print_ids("tokenizers", want, nw);
            if (got) print_ids("gemma4c   ", got, n);
        }
        free(got);
    }
    CHECKF(bad == 0, "%d of %d strings encode differently (parse_special=%d)", bad, n_recs, parse_special);
}

static void corpus_encode(void) { check_encode(1); }
static void corpus_encode_no_special(void) { check_encode(0); }

static void check_decode(int parse_special) {
    int bad = 0;
    for (int i = 0; i < n_recs; i++) {
        const rec *r = &recs[i];
        const int32_t *ids = parse_special ? r->ids : r->ids_ns;
        int n = parse_special ? r->n_ids : r->n_ids_ns;
        const char *want = parse_special ? r->dec : r->dec_ns;
        size_t want_len = parse_special ? r->dec_len : r->dec_ns_len, len = 0;
        char *raw = decode(ids, n, &len);
        char *hf = raw ? malloc(3 * len + 1) : NULL;
        int pieces_ok = 0;
        size_t hf_len = hf ? decode_hf_style(ids, n, raw, len, hf, &pieces_ok) : 0;
        int ok = hf && pieces_ok && hf_len == want_len && memcmp(hf, want, hf_len) == 0;
        if (ok) n_dec_ok[parse_special]++;
        else if (bad++ < 8) {
            fprintf(stderr, "  decode (parse_special=%d) differs, corpus line %d [%s]%s:\n", parse_special, r->line,
                    r->cat, pieces_ok ? "" : " (per-id decodes do not add up to the whole)");
            print_ids("ids", ids, n);
            print_bytes("tokenizers", want, want_len);
            if (raw) print_bytes("gemma4c raw", raw, len);
            if (hf) print_bytes("gemma4c as HF", hf, hf_len);
        }
        if (parse_special && raw) { /* how the brief's from_utf8_lossy comparison would fare (information only) */
            char *lossy = malloc(3 * len + 1);
            size_t ll = lossy ? utf8_lossy((const unsigned char *)raw, len, lossy) : 0;
            n_lossy_same += lossy && ll == want_len && memcmp(lossy, want, ll) == 0;
            free(lossy);
        }
        /* streaming gives the same bytes */
        g4c_tok_stream s = {0};
        char *st = raw ? malloc(len + 1) : NULL;
        size_t sl = 0;
        char buf[256];
        int sok = st != NULL;
        for (int k = 0; k < n && sok; k++) {
            int m = g4c_tok_stream_push(tok, &s, ids[k], buf, sizeof buf);
            sok = m >= 0 && m < (int)sizeof buf && sl + (size_t)m <= len;
            if (sok) memcpy(st + sl, buf, (size_t)m), sl += (size_t)m;
        }
        if (sok) {
            int m = g4c_tok_stream_flush(&s, buf, sizeof buf);
            sok = m >= 0 && sl + (size_t)m <= len;
            if (sok) memcpy(st + sl, buf, (size_t)m), sl += (size_t)m;
        }
        CHECKF(sok && sl == len && memcmp(st, raw, len) == 0, "line %d: streaming decode differs", r->line);
        free(st);
        free(hf);
        free(raw);
    }
    CHECKF(bad == 0, "%d of %d strings decode differently (parse_special=%d)", bad, n_recs, parse_special);
}

static void corpus_decode(void) { check_decode(1); }
static void corpus_decode_no_special(void) { check_decode(0); }

/* decode(encode(x)) == x byte for byte (U+2581 in x decodes as ' '), both ways of parse_special. */
static void corpus_round_trip(void) {
    int bad = 0;
    for (int i = 0; i < n_recs; i++) {
        const rec *r = &recs[i];
        char *want = malloc(r->text_len + 1);
        size_t wl = 0;
        for (size_t k = 0; k < r->text_len;) {
            if (k + 3 <= r->text_len && memcmp(r->text + k, "\xE2\x96\x81", 3) == 0) want[wl++] = ' ', k += 3;
            else want[wl++] = r->text[k++];
        }
        for (int ps = 0; ps < 2; ps++) {
            int n = 0;
            size_t len = 0;
            int32_t *ids = encode(r, ps, &n);
            char *got = ids ? decode(ids, n, &len) : NULL;
            int ok = got && len == wl && memcmp(got, want, wl) == 0;
            if (ok) n_rt_ok[ps]++;
            else if (bad++ < 5) {
                fprintf(stderr, "  round trip (parse_special=%d) fails, corpus line %d [%s]\n", ps, r->line, r->cat);
                print_bytes("text", r->text, r->text_len);
                if (got) print_bytes("decode(encode)", got, len);
            }
            free(got);
            free(ids);
        }
        free(want);
    }
    CHECKF(bad == 0, "%d round trips fail", bad);
}

int main(int argc, char **argv) {
    const char *path = getenv("G4C_TOKENIZER_JSON");
    if (!path || !*path) {
        printf("G4C_TOKENIZER_JSON is not set (sh scripts/fetch-tokenizer.sh prints one): skipped\n");
        printf("0 passed, 0 failed, 1 skipped\n");
        return 0;
    }
    if (argc > 1) corpus_path = argv[1];
    g4c_err err = {0};
    if (g4c_tok_load(&tok, path, &err) != G4C_OK || g4c_tok_apply_gemma4_specials(tok, &err) != G4C_OK) {
        fprintf(stderr, "cannot load %s: %s\n", path, err.msg);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    RUN(corpus_load);
    if (n_recs > 0) {
        RUN(corpus_encode);
        RUN(corpus_encode_no_special);
        RUN(corpus_decode);
        RUN(corpus_decode_no_special);
        RUN(corpus_round_trip);
    }
    printf("corpus %s: %d strings\n", corpus_path, n_recs);
    printf("  encode, special tokens parsed:      %d / %d identical to tokenizers\n", n_enc_ok[1], n_recs);
    printf("  encode, special tokens not parsed:  %d / %d\n", n_enc_ok[0], n_recs);
    printf("  decode (ByteFallback's U+FFFD rule): %d / %d and %d / %d (not parsed)\n", n_dec_ok[1], n_recs,
           n_dec_ok[0], n_recs);
    printf("  decode(encode(x)) == x:             %d / %d and %d / %d (not parsed)\n", n_rt_ok[1], n_recs, n_rt_ok[0],
           n_recs);
    printf("  (from_utf8_lossy of our decode would match %d / %d)\n", n_lossy_same, n_recs);
    if (enc_ms > 0) printf("  encode: %.1f MB/s over %.0f KB\n", enc_bytes / 1e3 / enc_ms, enc_bytes / 1e3);
    corpus_free();
    g4c_tok_free(tok);
    return TEST_REPORT();
}
