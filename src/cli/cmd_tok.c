/* gemma4c tokenize / detokenize: text <-> token ids with a checkpoint's tokenizer.json (docs/gemma4-spec.md §5).
 * The tokenizer is DIR/tokenizer.json (-m) or any tokenizer.json (--tokenizer); the Gemma 4 special-token table is
 * applied to it (a no-op on a real Gemma 4 file; makes Gemma 3's stand in for it), and a vocabulary that is not
 * Gemma's is used as it is. Flags are parsed here (they are not the model subcommands' options). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "formats/formats.h"     // cJSON
#include "tokenizer/tokenizer.h"

#define BOS_ID 2

static const char *const tokenize_help =
    "usage: gemma4c tokenize (-m MODEL_DIR | --tokenizer tokenizer.json) (-p TEXT | -f FILE | --jsonl IN.jsonl)\n"
    "                        [--bos] [--no-special]\n"
    "Prints the token ids of TEXT (or of FILE's bytes; - is stdin) comma-separated on one line, as\n"
    "'gemma4c generate --tokens' takes them.\n"
    "  -m, --model DIR      use DIR/tokenizer.json\n"
    "  --tokenizer FILE     use this tokenizer.json\n"
    "  -p, --prompt TEXT    the text to tokenize\n"
    "  -f, --file FILE      tokenize the whole file (- for stdin)\n"
    "  --jsonl IN.jsonl     one JSON object per line with a \"text\" string (or \"text_hex\": the bytes as hex); writes\n"
    "                       {\"text\": ..., \"ids\": [...], \"decoded\": ...} per line to stdout (\"decoded_hex\" when\n"
    "                       the decoded bytes are not valid UTF-8). - is stdin; blank lines are skipped\n"
    "  --bos                put the BOS id (2) first; the text itself should then not start with \"<bos>\"\n"
    "  --no-special         special-token strings (<bos>, <|turn>, <|image|>...) are tokenized as plain text\n"
    "The Gemma 4 special-token names (spec §5) are applied to the tokenizer, so a Gemma 3 tokenizer.json works too.\n";

static const char *const detokenize_help =
    "usage: gemma4c detokenize (-m MODEL_DIR | --tokenizer tokenizer.json) --ids 2,9259,1902\n"
    "Prints the text of the ids followed by a newline. Byte tokens (<0xHH>) give raw bytes, so the output may be\n"
    "partial UTF-8 where the ids are; special tokens print as their strings (<bos>, <|turn>...).\n"
    "  -m, --model DIR      use DIR/tokenizer.json\n"
    "  --tokenizer FILE     use this tokenizer.json\n"
    "  --ids LIST           comma-separated token ids (--tokens is the same)\n";

typedef struct {
    const char *model, *tokenizer, *prompt, *file, *jsonl, *ids;
    int bos, no_special;
} tok_opts;

/* Flags of both commands; tokenize_cmd says which are allowed. Returns 0, 1 after printing the problem, or -1 for
 * -h / --help. */
static int parse(tok_opts *o, int argc, char **argv, int tokenize_cmd) {
    const char *cmd = tokenize_cmd ? "tokenize" : "detokenize";
    memset(o, 0, sizeof *o);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **dst = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return -1;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) dst = &o->model;
        else if (!strcmp(a, "--tokenizer")) dst = &o->tokenizer;
        else if (tokenize_cmd && (!strcmp(a, "-p") || !strcmp(a, "--prompt"))) dst = &o->prompt;
        else if (tokenize_cmd && (!strcmp(a, "-f") || !strcmp(a, "--file"))) dst = &o->file;
        else if (tokenize_cmd && !strcmp(a, "--jsonl")) dst = &o->jsonl;
        else if (!tokenize_cmd && (!strcmp(a, "--ids") || !strcmp(a, "--tokens"))) dst = &o->ids;
        else if (tokenize_cmd && !strcmp(a, "--bos")) o->bos = 1;
        else if (tokenize_cmd && !strcmp(a, "--no-special")) o->no_special = 1;
        else {
            fprintf(stderr, "gemma4c %s: unknown option '%s' (see gemma4c %s --help)\n", cmd, a, cmd);
            return 1;
        }
        if (dst) {
            if (!v) {
                fprintf(stderr, "gemma4c %s: %s needs a value\n", cmd, a);
                return 1;
            }
            *dst = v;
            i++;
        }
    }
    if (!o->model == !o->tokenizer) {
        fprintf(stderr, "gemma4c %s: give one of -m MODEL_DIR or --tokenizer tokenizer.json\n", cmd);
        return 1;
    }
    if (tokenize_cmd && !!o->prompt + !!o->file + !!o->jsonl != 1) {
        fprintf(stderr, "gemma4c tokenize: give one of -p TEXT, -f FILE or --jsonl IN.jsonl\n");
        return 1;
    }
    if (!tokenize_cmd && !o->ids) {
        fprintf(stderr, "gemma4c detokenize: --ids LIST is required\n");
        return 1;
    }
    return 0;
}

static g4c_tokenizer *load_tokenizer(const tok_opts *o, const char *cmd) {
    char path[4096];
    g4c_err err = {0};
    if (o->model) {
        if (g4c_path_join(path, sizeof path, o->model, "tokenizer.json", &err) != G4C_OK) {
            fprintf(stderr, "gemma4c %s: %s\n", cmd, err.msg);
            return NULL;
        }
    } else {
        snprintf(path, sizeof path, "%s", o->tokenizer);
    }
    g4c_tokenizer *t = NULL;
    if (g4c_tok_load(&t, path, &err) != G4C_OK) {
        fprintf(stderr, "gemma4c %s: cannot load the tokenizer: %s\n", cmd, err.msg);
        return NULL;
    }
    /* a small (test) vocabulary is silently used as it is; a Gemma-sized one that does not fit is worth a note */
    if (g4c_tok_apply_gemma4_specials(t, &err) != G4C_OK && g4c_tok_n_vocab(t) >= 262144)
        fprintf(stderr, "gemma4c %s: note: %s; the tokenizer is used as it is\n", cmd, err.msg);
    return t;
}

/* ids of text[0..len) (with BOS first when asked); malloc'd, count in *n. NULL after printing why. */
static int32_t *encode(const g4c_tokenizer *t, const tok_opts *o, const char *text, size_t len, int *n) {
    g4c_err err = {0};
    int cnt = g4c_tok_encode(t, text, len, !o->no_special, NULL, 0, &err);
    int32_t *ids = cnt >= 0 ? malloc(sizeof(int32_t) * ((size_t)cnt + 1)) : NULL;
    if (ids) {
        if (o->bos) ids[0] = BOS_ID;
        cnt = g4c_tok_encode(t, text, len, !o->no_special, ids + o->bos, cnt, &err);
    }
    if (cnt < 0 || !ids) {
        fprintf(stderr, "gemma4c tokenize: %s\n", cnt < 0 ? err.msg : "out of memory");
        free(ids);
        return NULL;
    }
    *n = cnt + o->bos;
    return ids;
}

/* Decoded text, malloc'd and NUL-terminated, length in *len. NULL after printing why. */
static char *decode(const g4c_tokenizer *t, const int32_t *ids, int n, size_t *len, const char *cmd) {
    int need = g4c_tok_decode(t, ids, n, NULL, 0);
    if (need < 0) {
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= g4c_tok_n_vocab(t)) {
                fprintf(stderr, "gemma4c %s: token id %d is outside the vocabulary (0..%d)\n", cmd, (int)ids[i],
                        g4c_tok_n_vocab(t) - 1);
                return NULL;
            }
        fprintf(stderr, "gemma4c %s: cannot decode the ids\n", cmd);
        return NULL;
    }
    char *s = malloc((size_t)need + 1);
    if (!s) {
        fprintf(stderr, "gemma4c %s: out of memory\n", cmd);
        return NULL;
    }
    g4c_tok_decode(t, ids, n, s, (size_t)need + 1);
    *len = (size_t)need;
    return s;
}

static void print_ids(FILE *f, const int32_t *ids, int n) {
    for (int i = 0; i < n; i++) fprintf(f, "%s%d", i ? "," : "", (int)ids[i]);
}

/* 1 when s[0..n) is well-formed UTF-8. */
static int utf8_ok(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], lo = 0x80, hi = 0xBF;
        size_t L;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) L = 2;
        else if (c >= 0xE0 && c <= 0xEF) { L = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
        else if (c >= 0xF0 && c <= 0xF4) { L = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
        else return 0;
        if (i + L > n || s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k < L; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        i += L;
    }
    return 1;
}

/* "key": "<JSON string>" when s is valid UTF-8, else "key_hex": "<hex bytes>". */
static void put_text(FILE *f, const char *key, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    if (!utf8_ok(u, n)) {
        fprintf(f, "\"%s_hex\": \"", key);
        for (size_t i = 0; i < n; i++) fprintf(f, "%02x", u[i]);
        fputc('"', f);
        return;
    }
    fprintf(f, "\"%s\": \"", key);
    for (size_t i = 0; i < n; i++) {
        unsigned c = u[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c < 0x20 || c == 0x7F) fprintf(f, "\\u%04x", c);
        else fputc((int)c, f);
    }
    fputc('"', f);
}

static int hexval(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The text of one JSONL record: "text" (string) or "text_hex"; malloc'd into *out. Returns NULL, or why not. */
static const char *record_text(const char *line, size_t len, char **out, size_t *out_len) {
    static char why[96];
    const char *end = NULL, *msg = NULL;
    *out = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!o) {
        snprintf(why, sizeof why, "invalid JSON near byte %zu", end && end >= line ? (size_t)(end - line) + 1 : 1);
        return why;
    }
    while (end < line + len && (*end == ' ' || *end == '\t' || *end == '\r')) end++;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "text"), *h = cJSON_GetObjectItemCaseSensitive(o, "text_hex");
    if (end != line + len) {
        snprintf(why, sizeof why, "unexpected text after the JSON value at byte %zu", (size_t)(end - line) + 1);
        msg = why;
    } else if (!cJSON_IsObject(o)) {
        msg = "not a JSON object";
    } else if (cJSON_IsString(s)) {
        /* cJSON keeps strings NUL-terminated: text with an escaped NUL (\u0000) needs "text_hex" */
        *out_len = strlen(s->valuestring);
        if ((*out = malloc(*out_len + 1))) memcpy(*out, s->valuestring, *out_len + 1);
        else msg = "out of memory";
    } else if (cJSON_IsString(h)) {
        size_t n = strlen(h->valuestring);
        if (n % 2) msg = "\"text_hex\" has an odd number of digits";
        else if (!(*out = malloc(n / 2 + 1))) msg = "out of memory";
        for (size_t i = 0; !msg && i < n / 2; i++) {
            int a = hexval((unsigned char)h->valuestring[2 * i]), b = hexval((unsigned char)h->valuestring[2 * i + 1]);
            if (a < 0 || b < 0) msg = "\"text_hex\" holds a non-hex character";
            else (*out)[i] = (char)(a * 16 + b);
        }
        *out_len = n / 2;
    } else {
        msg = s || h ? "\"text\" is not a string" : "no \"text\" member";
    }
    cJSON_Delete(o);
    if (msg) {
        free(*out);
        *out = NULL;
    }
    return msg;
}

static int tokenize_jsonl(const g4c_tokenizer *t, const tok_opts *o) {
    int from_stdin = !strcmp(o->jsonl, "-");
    FILE *in = from_stdin ? stdin : fopen(o->jsonl, "rb");
    if (!in) {
        fprintf(stderr, "gemma4c tokenize: %s: cannot open: %s\n", o->jsonl, strerror(errno));
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    long lineno = 0;
    while (rc == 0 && (len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        size_t n = (size_t)len;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        size_t k = 0;
        while (k < n && (line[k] == ' ' || line[k] == '\t')) k++;
        if (k == n) continue; /* blank line */
        char *text = NULL;
        size_t text_len = 0;
        const char *why = record_text(line, n, &text, &text_len);
        if (why) {
            fprintf(stderr, "gemma4c tokenize: %s:%ld: %s\n", from_stdin ? "<stdin>" : o->jsonl, lineno, why);
            rc = 1;
            break;
        }
        int nid = 0;
        size_t dlen = 0;
        int32_t *ids = encode(t, o, text, text_len, &nid);
        char *dec = ids ? decode(t, ids, nid, &dlen, "tokenize") : NULL;
        if (dec) {
            fputc('{', stdout);
            put_text(stdout, "text", text, text_len);
            fputs(", \"ids\": [", stdout);
            print_ids(stdout, ids, nid);
            fputs("], ", stdout);
            put_text(stdout, "decoded", dec, dlen);
            fputs("}\n", stdout);
        } else {
            rc = 1;
        }
        free(dec);
        free(ids);
        free(text);
    }
    if (rc == 0 && ferror(in)) {
        fprintf(stderr, "gemma4c tokenize: %s: read error\n", o->jsonl);
        rc = 1;
    }
    free(line);
    if (!from_stdin) fclose(in);
    return rc;
}

/* The whole of FILE (or stdin for "-"), malloc'd. */
static char *read_all(const char *path, size_t *len) {
    g4c_err err = {0};
    if (strcmp(path, "-") != 0) {
        char *buf = NULL;
        if (g4c_read_file(path, (size_t)1 << 30, &buf, len, &err) != G4C_OK) {
            fprintf(stderr, "gemma4c tokenize: %s\n", err.msg);
            return NULL;
        }
        return buf;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, stdin);
        if (n < cap) break;
        char *nb = cap < ((size_t)1 << 30) ? realloc(buf, cap *= 2) : NULL;
        if (!nb) free(buf);
        buf = nb;
    }
    if (!buf || ferror(stdin)) {
        fprintf(stderr, "gemma4c tokenize: cannot read stdin%s\n", buf ? "" : " (out of memory or over 1 GiB)");
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

int cmd_tokenize(int argc, char **argv) {
    tok_opts o;
    int pr = parse(&o, argc, argv, 1);
    if (pr < 0) {
        fputs(tokenize_help, stdout);
        return 0;
    }
    if (pr) return 2;
    g4c_tokenizer *t = load_tokenizer(&o, "tokenize");
    if (!t) return 1;
    int rc = 1;
    if (o.jsonl) {
        rc = tokenize_jsonl(t, &o);
    } else {
        size_t len = 0;
        char *buf = o.file ? read_all(o.file, &len) : NULL;
        const char *text = o.file ? buf : o.prompt;
        if (!o.file) len = strlen(o.prompt);
        int n = 0;
        int32_t *ids = text ? encode(t, &o, text, len, &n) : NULL;
        if (ids) {
            print_ids(stdout, ids, n);
            fputc('\n', stdout);
            rc = 0;
        }
        free(ids);
        free(buf);
    }
    g4c_tok_free(t);
    if (fflush(stdout) != 0) rc = 1;
    return rc;
}

int cmd_detokenize(int argc, char **argv) {
    tok_opts o;
    int pr = parse(&o, argc, argv, 0);
    if (pr < 0) {
        fputs(detokenize_help, stdout);
        return 0;
    }
    if (pr) return 2;
    int32_t *ids = NULL;
    int n = cli_parse_tokens(o.ids, &ids);
    if (n < 0) return 2;
    g4c_tokenizer *t = load_tokenizer(&o, "detokenize");
    int rc = 1;
    size_t len = 0;
    char *s = t ? decode(t, ids, n, &len, "detokenize") : NULL;
    if (s) {
        fwrite(s, 1, len, stdout);
        fputc('\n', stdout);
        rc = fflush(stdout) != 0;
    }
    free(s);
    free(ids);
    g4c_tok_free(t);
    return rc;
}
