/* The tokenizer of a GGUF file, and the other way: a tokenizer written as GGUF metadata (spec §5, §8.2).
 * llama.cpp stores Gemma 4's vocabulary as tokenizer.ggml.model = "gemma4": tokens (by id), token_type (1 normal,
 * 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte), scores (unused by BPE) and merges ("left right", by rank).
 * Loading synthesizes the tokenizer.json Hugging Face would have — model.vocab from the tokens, added_tokens from the
 * control (special) and user-defined (non-special) tokens, the merges, Gemma's normalizer (' ' -> '▁') and byte
 * fallback — and runs it through the tokenizer.json loader, so both paths share one set of rules and checks.
 * Writing reads the loaded tokenizer's tables back out (tokenizer internals), with llama.cpp's conventions: special
 * added tokens are control, other added tokens user-defined, except that the seven tool/thinking markers that must
 * show in output (<|channel> ... <|"|>) are user-defined as llama.cpp's converter writes them (and read back as
 * special). */
#include <stdio.h>
#include <stdlib.h>

#include "formats/formats.h"
#include "tokenizer/tok_internal.h"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

typedef struct { char *p; size_t n, cap; int oom; } sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (n + 1 > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (n + 1 > cap - b->n) {
            if (cap > SIZE_MAX / 2) { b->oom = 1; return; }
            cap *= 2;
        }
        char *g = realloc(b->p, cap);
        if (!g) { b->oom = 1; return; }
        b->p = g;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static void put_json(sbuf *b, const char *s, size_t n) {
    puts_(b, "\"");
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c != '"' && c != '\\' && c >= 0x20) { run++; continue; }
        put(b, s + i - run, run);
        run = 0;
        char e[8];
        if (c == '"' || c == '\\') e[0] = '\\', e[1] = (char)c, e[2] = 0;
        else snprintf(e, sizeof e, "\\u%04x", c);
        puts_(b, e);
    }
    put(b, s + n - run, run);
    puts_(b, "\"");
}

/* The tool/thinking markers llama.cpp stores as user-defined (so they render) though they are special. */
static int visible_marker(const char *s, size_t n) {
    static const char *const V[] = {"<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<|tool_response>",
                                    "<tool_response|>", "<|\"|>"};
    for (size_t i = 0; i < sizeof V / sizeof *V; i++)
        if (strlen(V[i]) == n && !memcmp(s, V[i], n)) return 1;
    return 0;
}

g4c_status g4c_tok_load_gguf(g4c_tokenizer **out, const char *path, g4c_err *err) {
    *out = NULL;
    g4c_gguf *g = NULL;
    G4C_TRY(g4c_gguf_open(&g, path, err));
    g4c_status st = g4c_tok_from_gguf(out, g, err);
    g4c_gguf_free(g);
    return st;
}

g4c_status g4c_tok_from_gguf(g4c_tokenizer **out, const g4c_gguf *g, g4c_err *err) {
    *out = NULL;
    const char *path = g->what;
    const char *model;
    size_t mlen;
    const g4c_gguf_kv *toks, *types = NULL, *merges;
    g4c_status st = g4c_gguf_get_str(g, "tokenizer.ggml.model", &model, &mlen, NULL, err);
    if (st == G4C_OK && !(mlen == 6 && !memcmp(model, "gemma4", 6)))
        st = G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: tokenizer.ggml.model is \"%.*s\"; only \"gemma4\" (BPE with merges) "
                      "is supported", path, (int)(mlen > 40 ? 40 : mlen), model);
    if (st == G4C_OK) st = g4c_gguf_get_arr(g, "tokenizer.ggml.tokens", G4C_GGUF_STR, &toks, NULL, err);
    if (st == G4C_OK) st = g4c_gguf_get_arr(g, "tokenizer.ggml.merges", G4C_GGUF_STR, &merges, NULL, err);
    int have_types = 0;
    if (st == G4C_OK) st = g4c_gguf_get_arr(g, "tokenizer.ggml.token_type", G4C_GGUF_I32, &types, &have_types, err);
    if (st == G4C_OK && have_types && types->n != toks->n)
        st = G4C_FAIL(err, G4C_E_FORMAT, "%s: tokenizer.ggml.token_type has %llu entries for %llu tokens", path,
                      (unsigned long long)types->n, (unsigned long long)toks->n);
    if (st == G4C_OK && (toks->n == 0 || toks->n > (1 << 24)))
        st = G4C_FAIL(err, G4C_E_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries", path, (unsigned long long)toks->n);
    int64_t unk = -1;
    int ignore_merges = 0;
    if (st == G4C_OK) st = g4c_gguf_get_int(g, "tokenizer.ggml.unknown_token_id", 0, (int64_t)toks->n - 1, &unk,
                                            &(int){0}, err);
    if (st == G4C_OK) st = g4c_gguf_get_bool(g, "tokenizer.ggml.ignore_merges", &ignore_merges, &(int){0}, err);
    sbuf b = {0}, added = {0};
    if (st == G4C_OK) {
        const char *unk_piece = NULL;
        size_t unk_len = 0, pos = 0, len;
        const char *s;
        puts_(&b, "{\"model\":{\"type\":\"BPE\",\"dropout\":null,\"continuing_subword_prefix\":null,"
                  "\"end_of_word_suffix\":null,\"fuse_unk\":true,\"byte_fallback\":true,\"ignore_merges\":");
        puts_(&b, ignore_merges ? "true" : "false");
        puts_(&b, ",\"vocab\":{");
        puts_(&added, "[");
        for (uint64_t id = 0; g4c_gguf_arr_str_next(toks, &pos, &s, &len); id++) {
            if (!len || memchr(s, 0, len)) {
                st = G4C_FAIL(err, G4C_E_FORMAT, "%s: tokenizer.ggml.tokens[%llu] is empty or holds a NUL byte", path,
                              (unsigned long long)id);
                break;
            }
            const int64_t tt = have_types ? g4c_gguf_arr_int(types, id) : TT_NORMAL;
            if (id) puts_(&b, ",");
            put_json(&b, s, len);
            char num[48];
            snprintf(num, sizeof num, ":%llu", (unsigned long long)id);
            puts_(&b, num);
            if (tt == TT_CONTROL || tt == TT_USER) {
                snprintf(num, sizeof num, "%s{\"id\":%llu,\"content\":", added.n > 1 ? "," : "", (unsigned long long)id);
                puts_(&added, num);
                put_json(&added, s, len);
                const int special = tt == TT_CONTROL || visible_marker(s, len);
                puts_(&added, special ? ",\"special\":true}" : ",\"special\":false}");
            }
            if ((int64_t)id == unk || (unk < 0 && tt == TT_UNKNOWN && !unk_piece)) unk_piece = s, unk_len = len;
        }
        puts_(&b, "},\"unk_token\":");
        if (unk_piece) put_json(&b, unk_piece, unk_len);
        else puts_(&b, "null");
        puts_(&b, ",\"merges\":[");
        pos = 0;
        for (uint64_t k = 0; st == G4C_OK && g4c_gguf_arr_str_next(merges, &pos, &s, &len); k++) {
            /* "left right": split at the first space after the first byte (llama.cpp's rule) */
            const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
            if (!sp) {
                st = G4C_FAIL(err, G4C_E_FORMAT, "%s: tokenizer.ggml.merges[%llu] = \"%.*s\" is not \"left right\"", path,
                              (unsigned long long)k, (int)(len > 60 ? 60 : len), s);
                break;
            }
            puts_(&b, k ? ",[" : "[");
            put_json(&b, s, (size_t)(sp - s));
            puts_(&b, ",");
            put_json(&b, sp + 1, len - (size_t)(sp - s) - 1);
            puts_(&b, "]");
        }
        puts_(&added, "]");
        puts_(&b, "]},\"added_tokens\":");
        if (!added.oom) put(&b, added.p, added.n);
        puts_(&b, ",\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xe2\x96\x81\"},"
                  "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":"
                  "\"MergedWithPrevious\",\"invert\":false}}");
        if (st == G4C_OK && (b.oom || added.oom)) st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    }
    if (st == G4C_OK) st = g4c_tok_load_buffer(out, b.p, b.n, path, err);
    if (st == G4C_OK && (*out)->n_vocab == 262144) {
        g4c_err ignore = {0}; /* a Gemma 3 vocabulary: give it Gemma 4's control tokens (a no-op on Gemma 4's) */
        g4c_tok_apply_gemma4_specials(*out, &ignore);
    }
    free(b.p);
    free(added.p);
    return st;
}

/* ---- writing --------------------------------------------------------------------------------------------------- */

static int cmp_rank(const void *a, const void *b) {
    const tok_pair *x = a, *y = b;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}


g4c_status g4c_tok_write_gguf(const g4c_tokenizer *t, g4c_gguf_writer *w, int n_vocab, g4c_err *err) {
    if (n_vocab <= 0) n_vocab = t->n_vocab;
    const char **s = g4c_malloc((size_t)n_vocab, sizeof *s, err);
    size_t *len = g4c_malloc((size_t)n_vocab, sizeof *len, err);
    float *score = g4c_malloc((size_t)n_vocab, sizeof *score, err);
    int32_t *type = g4c_malloc((size_t)n_vocab, sizeof *type, err);
    char *pads = g4c_malloc((size_t)n_vocab, 20, err);
    tok_pair *m = NULL;
    char *mtext = NULL;
    const char **ms = NULL;
    g4c_status st = s && len && score && type && pads ? G4C_OK : G4C_E_NOMEM;
    for (int id = 0; st == G4C_OK && id < n_vocab; id++) {
        score[id] = -1000.0f; /* llama.cpp's converter writes this placeholder for BPE vocabularies */
        if (id >= t->n_vocab) { /* the model has more embedding rows than the tokenizer has ids */
            s[id] = pads + (size_t)id * 20;
            len[id] = (size_t)snprintf(pads + (size_t)id * 20, 20, "[PAD%d]", id);
            type[id] = TT_UNUSED;
            continue;
        }
        const tok_piece *p = &t->pc[id];
        s[id] = p->s;
        len[id] = p->len;
        type[id] = p->flags & TOK_SPECIAL ? TT_CONTROL
                 : p->flags & TOK_ADDED   ? TT_USER
                 : p->flags & TOK_BYTE    ? TT_BYTE
                 : id == t->unk_id        ? TT_UNKNOWN
                                          : TT_NORMAL;
        if (type[id] == TT_CONTROL && visible_marker(p->s, p->len)) type[id] = TT_USER;
    }
    /* merges in rank order, as "left right" */
    size_t n_m = 0, bytes = 0;
    for (uint32_t i = 0; st == G4C_OK && i <= t->merges.mask && t->merges.e; i++)
        if (t->merges.e[i].key != TOK_PAIR_EMPTY) n_m++;
    if (st == G4C_OK && !(m = g4c_malloc(n_m ? n_m : 1, sizeof *m, err))) st = G4C_E_NOMEM;
    n_m = 0;
    for (uint32_t i = 0; st == G4C_OK && i <= t->merges.mask && t->merges.e; i++)
        if (t->merges.e[i].key != TOK_PAIR_EMPTY) {
            const tok_pair *e = &t->merges.e[i]; /* merges of pieces past a smaller n_vocab are dropped */
            if ((uint32_t)(e->key >> 32) >= (uint32_t)n_vocab || (uint32_t)e->key >= (uint32_t)n_vocab ||
                e->new_id >= n_vocab)
                continue;
            m[n_m++] = *e;
            bytes += t->pc[(uint32_t)(t->merges.e[i].key >> 32)].len + t->pc[(uint32_t)t->merges.e[i].key].len + 2;
        }
    if (st == G4C_OK) qsort(m, n_m, sizeof *m, cmp_rank);
    if (st == G4C_OK && (!(mtext = g4c_malloc(bytes ? bytes : 1, 1, err)) || !(ms = g4c_malloc(n_m ? n_m : 1, sizeof *ms, err))))
        st = G4C_E_NOMEM;
    char *at = mtext;
    for (size_t i = 0; st == G4C_OK && i < n_m; i++) {
        const tok_piece *a = &t->pc[(uint32_t)(m[i].key >> 32)], *b = &t->pc[(uint32_t)m[i].key];
        ms[i] = at;
        memcpy(at, a->s, a->len);
        at[a->len] = ' ';
        memcpy(at + a->len + 1, b->s, b->len);
        at[a->len + 1 + b->len] = 0;
        at += a->len + b->len + 2;
    }
    if (st == G4C_OK) st = g4c_ggw_kv_str(w, "tokenizer.ggml.model", "gemma4", 6, err);
    if (st == G4C_OK) st = g4c_ggw_kv_str(w, "tokenizer.ggml.pre", "gemma4", 6, err);
    if (st == G4C_OK) st = g4c_ggw_kv_arr_str(w, "tokenizer.ggml.tokens", s, len, (uint64_t)n_vocab, err);
    if (st == G4C_OK) st = g4c_ggw_kv_arr(w, "tokenizer.ggml.scores", G4C_GGUF_F32, score, (uint64_t)n_vocab, err);
    if (st == G4C_OK) st = g4c_ggw_kv_arr(w, "tokenizer.ggml.token_type", G4C_GGUF_I32, type, (uint64_t)n_vocab, err);
    if (st == G4C_OK) st = g4c_ggw_kv_arr_str(w, "tokenizer.ggml.merges", ms, NULL, n_m, err);
    if (st == G4C_OK && t->unk_id >= 0 && t->unk_id < n_vocab)
        st = g4c_ggw_kv_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk_id, err);
    free(s);
    free(len);
    free(score);
    free(type);
    free(pads);
    free(m);
    free(mtext);
    free(ms);
    return st;
}
