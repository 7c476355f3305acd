/* tokenizer.json loader and the Gemma 4 special-token patch (docs/gemma4-spec.md §5, §6).
 * Reads what Hugging Face "tokenizers" serializes for a BPE model:
 *   model: {type: "BPE", vocab: {piece: id}, merges: ["a b", ...] or [["a", "b"], ...], byte_fallback, unk_token,
 *           fuse_unk, ignore_merges, dropout (null), continuing_subword_prefix / end_of_word_suffix (null)}
 *   added_tokens: [{id, content, special, ...}]  (ids either equal to the model's id for that piece or beyond the
 *                 model vocabulary, contiguous; lstrip/rstrip/single_word/normalized are not honored, a warning is
 *                 logged when one is true: all are false in Gemma's files), normalizer (Replace with a String pattern,
 *                 Prepend, Sequence),
 *   pre_tokenizer (Split on a String pattern, Sequence). The decoder section is not read: decoding is Gemma's
 *   (Replace '▁' -> ' ', ByteFallback, Fuse; tok_decode.c).
 * Rules (each violation fails naming the file and the field, piece or id): model.vocab ids are exactly 0..n-1 with
 * no duplicate id or piece; every merge names two pieces of model.vocab whose concatenation is one too; added
 * tokens agree with model.vocab and do not collide; unk_token is in model.vocab. Merges are kept as
 * (left id, right id) -> (rank, merged id); a pair listed twice keeps its last rank, as tokenizers does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "formats/formats.h"
#include "tokenizer/tok_internal.h"

#define TOK_MAX_IDS (1 << 24) /* far above any real vocabulary; bounds allocations driven by the file */

/* Gemma 4's control tokens (spec §5 table): id, Gemma 3's string at that id, Gemma 4's string. */
static const struct { int32_t id; const char *g3, *g4; } GEMMA4_CONTROL[] = {
    {0, "<pad>", "<pad>"},                 {1, "<eos>", "<eos>"},
    {2, "<bos>", "<bos>"},                 {3, "<unk>", "<unk>"},
    {46, "<unused40>", "<|tool>"},         {47, "<unused41>", "<tool|>"},
    {48, "<unused42>", "<|tool_call>"},    {49, "<unused43>", "<tool_call|>"},
    {50, "<unused44>", "<|tool_response>"}, {51, "<unused45>", "<tool_response|>"},
    {52, "<unused46>", "<|\"|>"},          {98, "<unused92>", "<|think|>"},
    {100, "<unused94>", "<|channel>"},     {101, "<unused95>", "<channel|>"},
    {105, "<start_of_turn>", "<|turn>"},   {106, "<end_of_turn>", "<turn|>"},
    {255999, "<start_of_image>", "<|image>"}, {256000, "<end_of_image>", "<|audio>"},
    {258880, "<unused2978>", "<|image|>"}, {258881, "<unused2979>", "<|audio|>"},
    {258882, "<unused2980>", "<image|>"},  {258883, "<unused2981>", "<audio|>"},
    {258884, "<unused2982>", "<|video|>"},
};
#define GEMMA_VOCAB 262144

/* ---- hashing ------------------------------------------------------------------------------------------------ */

uint64_t tok_hash(const char *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n, w;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    w = 0;
    memcpy(&w, s, n);
    h ^= w; /* splitmix64's finalizer: every input bit reaches the low bits used as the slot index */
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    return h ^ (h >> 31);
}

int32_t tok_lookup(const g4c_tokenizer *t, const char *s, size_t n) {
    uint64_t h = tok_hash(s, n);
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint32_t i = (uint32_t)h & t->vmask;; i = (i + 1) & t->vmask) {
        uint64_t e = t->vslot[i];
        if (e == TOK_SLOT_EMPTY) return -1;
        if ((uint32_t)(e >> 32) != tag) continue;
        const tok_piece *p = &t->pc[(uint32_t)e];
        if (p->len == n && memcmp(p->s, s, n) == 0) return (int32_t)(uint32_t)e;
    }
}

/* A piece of the model vocabulary only (what BPE works with), or -1. */
static int32_t model_lookup(const g4c_tokenizer *t, const char *s, size_t n) {
    int32_t id = tok_lookup(t, s, n);
    return id >= 0 && (t->pc[id].flags & TOK_MODEL) ? id : -1;
}

/* Insert id; returns the id already holding the same piece, or -1. vslot has room for n_alloc ids. */
static int32_t vocab_insert(g4c_tokenizer *t, int32_t id) {
    const tok_piece *p = &t->pc[id];
    uint64_t h = tok_hash(p->s, p->len), tag = h >> 32;
    uint32_t i = (uint32_t)h & t->vmask;
    for (;; i = (i + 1) & t->vmask) {
        uint64_t e = t->vslot[i];
        if (e == TOK_SLOT_EMPTY) break;
        const tok_piece *o = &t->pc[(uint32_t)e];
        if ((e >> 32) == tag && o->len == p->len && memcmp(o->s, p->s, p->len) == 0) return (int32_t)(uint32_t)e;
    }
    t->vslot[i] = tag << 32 | (uint32_t)id;
    return -1;
}

static uint32_t pow2_at_least(uint64_t n) {
    uint32_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

/* ---- added-token trie ----------------------------------------------------------------------------------------- */

static g4c_status trie_insert(g4c_tokenizer *t, const char *s, size_t n, int32_t id, g4c_err *err) {
    int32_t parent = 0; /* 0: the roots in trie_root */
    for (size_t k = 0; k < n; k++) {
        unsigned char b = (unsigned char)s[k];
        int32_t c = parent ? t->trie[parent].child : t->trie_root[b];
        while (c && t->trie[c].byte != b) c = t->trie[c].sibling;
        if (!c) {
            if (t->n_trie >= t->cap_trie) {
                int cap = t->cap_trie ? 2 * t->cap_trie : 1024;
                tok_trie_node *nt = realloc(t->trie, (size_t)cap * sizeof *nt);
                if (!nt) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory building the added-token trie");
                t->trie = nt;
                t->cap_trie = cap;
            }
            c = t->n_trie++;
            t->trie[c] = (tok_trie_node){.child = 0, .id = -1, .byte = b};
            int32_t *link = parent ? &t->trie[parent].child : &t->trie_root[b];
            t->trie[c].sibling = *link;
            *link = c;
        }
        parent = c;
    }
    t->trie[parent].id = id;
    return G4C_OK;
}

/* (Re)build the string hash over ids < n_vocab (after the Gemma 4 renaming: no duplicate can appear). */
static void rebuild_hash(g4c_tokenizer *t) {
    memset(t->vslot, 0xff, ((size_t)t->vmask + 1) * sizeof *t->vslot);
    for (int32_t id = 0; id < t->n_vocab; id++) vocab_insert(t, id);
}

/* (Re)build the added-token trie over ids < n_vocab. */
static g4c_status build_trie(g4c_tokenizer *t, g4c_err *err) {
    t->n_trie = 1;
    memset(t->trie_root, 0, sizeof t->trie_root);
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->pc[id].flags & TOK_ADDED) G4C_TRY(trie_insert(t, t->pc[id].s, t->pc[id].len, id, err));
    return G4C_OK;
}

/* ---- small JSON helpers (every failure here is a malformed file: G4C_E_FORMAT) ---------------------------- */

static const cJSON *member(const cJSON *o, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return it && !cJSON_IsNull(it) ? it : NULL;
}

static g4c_status opt_bool(const cJSON *o, const char *key, int *out, const char *what, g4c_err *err) {
    const cJSON *it = member(o, key);
    if (!it) return G4C_OK;
    if (!cJSON_IsBool(it)) return G4C_FAIL(err, G4C_E_FORMAT, "%s: model.%s must be true or false", what, key);
    *out = cJSON_IsTrue(it);
    return G4C_OK;
}

/* A string member, or NULL when absent/null; a non-string is an error naming ctx.key. */
static g4c_status opt_str(const cJSON *o, const char *key, const char **out, const char *ctx, const char *what,
                          g4c_err *err) {
    const cJSON *it = member(o, key);
    *out = NULL;
    if (!it) return G4C_OK;
    if (!cJSON_IsString(it)) return G4C_FAIL(err, G4C_E_FORMAT, "%s: %s.%s must be a string", what, ctx, key);
    *out = it->valuestring;
    return G4C_OK;
}

static char *dup_str(const char *s, size_t n, g4c_err *err) {
    char *p = g4c_malloc(n + 1, 1, err);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* pattern: {"String": "..."}; a Regex pattern is not supported. */
static g4c_status literal_pattern(const cJSON *o, const char *ctx, const char **out, const char *what, g4c_err *err) {
    const cJSON *p = member(o, "pattern");
    if (!cJSON_IsObject(p)) return G4C_FAIL(err, G4C_E_FORMAT, "%s: %s has no \"pattern\" object", what, ctx);
    if (member(p, "Regex"))
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: %s with a Regex pattern is not supported (only String)", what,
                        ctx);
    G4C_TRY(opt_str(p, "String", out, ctx, what, err));
    if (!*out || !**out)
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: %s.pattern.String must be a non-empty string", what, ctx);
    return G4C_OK;
}

static g4c_status parse_normalizer(g4c_tokenizer *t, const cJSON *n, int depth, const char *what, g4c_err *err) {
    if (!n) return G4C_OK;
    const char *type;
    if (!cJSON_IsObject(n)) return G4C_FAIL(err, G4C_E_FORMAT, "%s: normalizer is not an object", what);
    G4C_TRY(opt_str(n, "type", &type, "normalizer", what, err));
    if (!type) return G4C_FAIL(err, G4C_E_FORMAT, "%s: normalizer has no \"type\"", what);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = member(n, "normalizers");
        if (!cJSON_IsArray(list) || depth > 8)
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: normalizer Sequence needs a \"normalizers\" array", what);
        for (const cJSON *it = list->child; it; it = it->next) G4C_TRY(parse_normalizer(t, it, depth + 1, what, err));
        return G4C_OK;
    }
    tok_norm_op op = {0};
    const char *from = NULL, *to = NULL;
    if (strcmp(type, "Replace") == 0) {
        op.kind = TOK_NORM_REPLACE;
        G4C_TRY(literal_pattern(n, "normalizer Replace", &from, what, err));
        G4C_TRY(opt_str(n, "content", &to, "normalizer Replace", what, err));
        if (!to) return G4C_FAIL(err, G4C_E_FORMAT, "%s: normalizer Replace has no \"content\" string", what);
    } else if (strcmp(type, "Prepend") == 0) {
        op.kind = TOK_NORM_PREPEND;
        G4C_TRY(opt_str(n, "prepend", &to, "normalizer Prepend", what, err));
        if (!to) return G4C_FAIL(err, G4C_E_FORMAT, "%s: normalizer Prepend has no \"prepend\" string", what);
    } else {
        return G4C_FAIL(err, G4C_E_UNSUPPORTED,
                        "%s: normalizer type \"%.40s\" is not supported (only Replace, Prepend, Sequence)", what, type);
    }
    tok_norm_op *nn = realloc(t->norm, (size_t)(t->n_norm + 1) * sizeof *nn);
    if (!nn) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    t->norm = nn;
    if (from) {
        op.from_len = strlen(from);
        if (!(op.from = dup_str(from, op.from_len, err))) return G4C_E_NOMEM;
    }
    op.to_len = strlen(to);
    if (!(op.to = dup_str(to, op.to_len, err))) {
        free(op.from);
        return G4C_E_NOMEM;
    }
    t->norm[t->n_norm++] = op;
    return G4C_OK;
}

static g4c_status parse_pretok(g4c_tokenizer *t, const cJSON *p, int depth, const char *what, g4c_err *err) {
    static const char *const BEHAVIORS[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                            "Contiguous"};
    if (!p) return G4C_OK;
    const char *type, *pat, *beh;
    if (!cJSON_IsObject(p)) return G4C_FAIL(err, G4C_E_FORMAT, "%s: pre_tokenizer is not an object", what);
    G4C_TRY(opt_str(p, "type", &type, "pre_tokenizer", what, err));
    if (!type) return G4C_FAIL(err, G4C_E_FORMAT, "%s: pre_tokenizer has no \"type\"", what);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = member(p, "pretokenizers");
        if (!cJSON_IsArray(list) || depth > 8)
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: pre_tokenizer Sequence needs a \"pretokenizers\" array", what);
        for (const cJSON *it = list->child; it; it = it->next) G4C_TRY(parse_pretok(t, it, depth + 1, what, err));
        return G4C_OK;
    }
    if (strcmp(type, "Split") != 0)
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: pre_tokenizer type \"%.40s\" is not supported (only Split on a "
                        "String pattern, Sequence)", what, type);
    G4C_TRY(literal_pattern(p, "pre_tokenizer Split", &pat, what, err));
    G4C_TRY(opt_str(p, "behavior", &beh, "pre_tokenizer Split", what, err));
    int b = -1, invert = 0;
    for (int i = 0; beh && i < 5; i++)
        if (strcmp(beh, BEHAVIORS[i]) == 0) b = i;
    if (b < 0) return G4C_FAIL(err, G4C_E_FORMAT, "%s: pre_tokenizer Split has no valid \"behavior\"", what);
    const cJSON *inv = member(p, "invert");
    if (inv && !cJSON_IsBool(inv))
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: pre_tokenizer Split.invert must be true or false", what);
    invert = inv && cJSON_IsTrue(inv);
    if (invert) return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: pre_tokenizer Split with invert is not supported", what);
    tok_split_op *ns = realloc(t->split, (size_t)(t->n_split + 1) * sizeof *ns);
    if (!ns) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    t->split = ns;
    tok_split_op op = {.len = strlen(pat), .behavior = b};
    if (!(op.pat = dup_str(pat, op.len, err))) return G4C_E_NOMEM;
    t->split[t->n_split++] = op;
    return G4C_OK;
}

/* ---- model.vocab, added_tokens, merges -------------------------------------------------------------------- */

static g4c_status parse_vocab(g4c_tokenizer *t, const cJSON *vocab, char **arena, const char *what, g4c_err *err) {
    for (const cJSON *it = vocab->child; it; it = it->next) {
        const char *key = it->string;
        size_t klen = strlen(key);
        if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble))
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: model.vocab: the id of \"%.80s\" is not an integer", what, key);
        double v = it->valuedouble;
        if (v < 0 || v >= t->n_model)
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: model.vocab: \"%.80s\" has id %.0f, outside 0..%d (%d pieces)",
                            what, key, v, t->n_model - 1, t->n_model);
        int32_t id = (int32_t)v;
        if (t->pc[id].s)
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: model.vocab: duplicate id %d (\"%.80s\" and \"%.80s\")", what,
                            (int)id, t->pc[id].s, key);
        if (klen == 0 || klen > UINT32_MAX)
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: model.vocab: id %d has an empty piece", what, (int)id);
        memcpy(*arena, key, klen + 1);
        t->pc[id].s = *arena;
        t->pc[id].len = (uint32_t)klen;
        t->pc[id].flags = TOK_MODEL;
        *arena += klen + 1;
    }
    return G4C_OK;
}

static g4c_status parse_added(g4c_tokenizer *t, const cJSON *added, char **arena, const char *what, g4c_err *err) {
    int k = 0, max_id = t->n_model - 1, n_flagged = 0;
    for (const cJSON *it = added ? added->child : NULL; it; it = it->next, k++) {
        if (!cJSON_IsObject(it)) return G4C_FAIL(err, G4C_E_FORMAT, "%s: added_tokens[%d] is not an object", what, k);
        const cJSON *jid = member(it, "id"), *jsp = member(it, "special");
        const char *content;
        if (!cJSON_IsNumber(jid) || jid->valuedouble < 0 || jid->valuedouble != floor(jid->valuedouble))
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: added_tokens[%d]: \"id\" must be a non-negative integer", what, k);
        G4C_TRY(opt_str(it, "content", &content, "added_tokens[]", what, err));
        if (!content || !*content)
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: added_tokens[%d]: \"content\" must be a non-empty string", what, k);
        if (jsp && !cJSON_IsBool(jsp))
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: added_tokens[%d]: \"special\" must be true or false", what, k);
        static const char *const IGNORED[] = {"lstrip", "rstrip", "single_word", "normalized"};
        for (int i = 0; i < 4; i++) n_flagged += cJSON_IsTrue(member(it, IGNORED[i]));
        double v = jid->valuedouble;
        size_t len = strlen(content);
        int32_t have = tok_lookup(t, content, len);
        if (have >= 0 && v != have)
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: added_tokens[%d]: \"%.80s\" has id %.0f but is already id %d", what,
                            k, content, v, (int)have);
        if (have < 0) {
            if (v < t->n_model)
                return G4C_FAIL(err, G4C_E_FORMAT, "%s: added_tokens[%d]: id %.0f of \"%.80s\" is already the piece "
                                "\"%.80s\"", what, k, v, content, t->pc[(int32_t)v].s);
            if (v >= t->n_alloc)
                return G4C_FAIL(err, G4C_E_FORMAT, "%s: added_tokens[%d]: id %.0f of \"%.80s\" is out of range (the "
                                "ids after model.vocab must be contiguous: at most %d)", what, k, v, content,
                                t->n_alloc - 1);
            have = (int32_t)v;
            if (t->pc[have].s)
                return G4C_FAIL(err, G4C_E_FORMAT, "%s: added_tokens[%d]: duplicate id %d (\"%.80s\" and \"%.80s\")",
                                what, k, (int)have, t->pc[have].s, content);
            memcpy(*arena, content, len + 1);
            t->pc[have].s = *arena;
            t->pc[have].len = (uint32_t)len;
            *arena += len + 1;
            vocab_insert(t, have);
            if (have > max_id) max_id = have;
        }
        t->pc[have].flags |= TOK_ADDED | (jsp && cJSON_IsTrue(jsp) ? TOK_SPECIAL : 0);
    }
    for (int32_t id = t->n_model; id <= max_id; id++)
        if (!t->pc[id].s)
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: added_tokens: no token has id %d (ids after model.vocab must be "
                            "contiguous up to %d)", what, (int)id, max_id);
    t->n_vocab = max_id + 1;
    if (n_flagged)
        g4c_log(G4C_LOG_WARN, "%s: %d lstrip/rstrip/single_word/normalized flags of added tokens are true; they are "
                "ignored (all added tokens are matched verbatim in the raw text)", what, n_flagged);
    return G4C_OK;
}

/* One merge entry as two (pointer, length) pieces. */
static g4c_status merge_parts(const cJSON *it, int k, const char *p[2], size_t n[2], const char *what, g4c_err *err) {
    if (cJSON_IsString(it)) {
        const char *s = it->valuestring, *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' '))
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: model.merges[%d] = \"%.80s\" is not two pieces separated by one "
                            "space", what, k, s);
        p[0] = s, n[0] = (size_t)(sp - s), p[1] = sp + 1, n[1] = strlen(sp + 1);
        return G4C_OK;
    }
    if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(it->child) &&
        cJSON_IsString(it->child->next)) {
        for (int i = 0; i < 2; i++) {
            p[i] = (i ? it->child->next : it->child)->valuestring;
            n[i] = strlen(p[i]);
        }
        return G4C_OK;
    }
    return G4C_FAIL(err, G4C_E_FORMAT, "%s: model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", what, k);
}

/* Model-vocabulary lookups for a batch of strings, staged so the cache misses of the batch overlap: hash and
 * prefetch the slots; find the slot whose tag matches and prefetch its piece; prefetch the piece bytes; verify.
 * Loading Gemma's 514906 merges does 1.5 M lookups, and this halves the load time. */
typedef struct {
    const char *p;
    size_t n;
    uint64_t h;
    int32_t id; /* result: the model-vocabulary id, or -1 */
} tok_batch_lookup;

static void lookup_batch(const g4c_tokenizer *t, tok_batch_lookup *L, int n) {
    for (int i = 0; i < n; i++) {
        L[i].h = tok_hash(L[i].p, L[i].n);
        __builtin_prefetch(&t->vslot[(uint32_t)L[i].h & t->vmask]);
    }
    for (int i = 0; i < n; i++) {
        uint32_t tag = (uint32_t)(L[i].h >> 32);
        L[i].id = -1;
        for (uint32_t k = (uint32_t)L[i].h & t->vmask;; k = (k + 1) & t->vmask) {
            uint64_t e = t->vslot[k];
            if (e == TOK_SLOT_EMPTY) break;
            if ((uint32_t)(e >> 32) == tag) {
                L[i].id = (int32_t)(uint32_t)e;
                __builtin_prefetch(&t->pc[L[i].id]);
                break;
            }
        }
    }
    for (int i = 0; i < n; i++)
        if (L[i].id >= 0) __builtin_prefetch(t->pc[L[i].id].s);
    for (int i = 0; i < n; i++) {
        if (L[i].id < 0) continue; /* no slot with this tag: certainly absent */
        const tok_piece *pc = &t->pc[L[i].id];
        if (pc->len == L[i].n && memcmp(pc->s, L[i].p, L[i].n) == 0)
            L[i].id = pc->flags & TOK_MODEL ? L[i].id : -1;
        else
            L[i].id = model_lookup(t, L[i].p, L[i].n); /* a tag collision: probe properly */
    }
}

#define MERGE_BATCH 64
#define PAIR_KEY(a, b) ((uint64_t)(uint32_t)(a) << 32 | (uint32_t)(b))

static g4c_status parse_merges(g4c_tokenizer *t, const cJSON *merges, const char *what, g4c_err *err) {
    int n = cJSON_GetArraySize(merges);
    tok_pairmap *m = &t->merges;
    uint32_t cap = pow2_at_least(2 * (uint64_t)n);
    int bits = 0;
    while ((1u << bits) < cap) bits++;
    m->mask = cap - 1;
    m->shift = 64 - bits;
    if (!(m->e = g4c_malloc(cap, sizeof *m->e, err))) return G4C_E_NOMEM;
    for (uint32_t i = 0; i < cap; i++) m->e[i].key = TOK_PAIR_EMPTY;
    const size_t cat_max = 2 * t->max_piece_len + 1; /* a concatenation of two vocabulary pieces fits */
    char *cat = g4c_malloc(MERGE_BATCH, cat_max, err);
    tok_batch_lookup *L = g4c_malloc(3 * MERGE_BATCH, sizeof *L, err);
    g4c_status st = cat && L ? G4C_OK : G4C_E_NOMEM;
    const cJSON *it = merges->child;
    for (int k0 = 0; it && st == G4C_OK; k0 += MERGE_BATCH) {
        int nb = 0;
        for (; it && nb < MERGE_BATCH && st == G4C_OK; it = it->next, nb++) {
            const char *p[2] = {NULL, NULL};
            size_t len[2] = {0, 0};
            if ((st = merge_parts(it, k0 + nb, p, len, what, err)) != G4C_OK) break;
            char *c = cat + (size_t)nb * cat_max;
            size_t lc = len[0] + len[1] < cat_max ? len[0] + len[1] : 0; /* too long: a part is not a piece */
            if (lc) {
                memcpy(c, p[0], len[0]);
                memcpy(c + len[0], p[1], len[1]);
            }
            c[lc] = 0;
            L[3 * nb] = (tok_batch_lookup){.p = p[0], .n = len[0]};
            L[3 * nb + 1] = (tok_batch_lookup){.p = p[1], .n = len[1]};
            L[3 * nb + 2] = (tok_batch_lookup){.p = c, .n = lc};
        }
        if (st != G4C_OK) break;
        lookup_batch(t, L, 3 * nb);
        for (int j = 0; j < nb && st == G4C_OK; j++) {
            const tok_batch_lookup *x = &L[3 * j];
            int k = k0 + j;
            for (int i = 0; i < 2 && st == G4C_OK; i++)
                if (x[i].id < 0)
                    st = G4C_FAIL(err, G4C_E_FORMAT, "%s: model.merges[%d]: piece \"%.*s\" is not in model.vocab", what,
                                  k, (int)(x[i].n > 80 ? 80 : x[i].n), x[i].p);
            if (st == G4C_OK && x[2].id < 0)
                st = G4C_FAIL(err, G4C_E_FORMAT, "%s: model.merges[%d]: the merged piece \"%.80s\" is not in "
                              "model.vocab", what, k, x[2].p);
            if (st != G4C_OK) break;
            __builtin_prefetch(&m->e[(uint32_t)((PAIR_KEY(x[0].id, x[1].id) * 0x9E3779B97F4A7C15ull) >> m->shift)]);
        }
        for (int j = 0; j < nb && st == G4C_OK; j++) {
            const tok_batch_lookup *x = &L[3 * j];
            uint64_t key = PAIR_KEY(x[0].id, x[1].id);
            uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> m->shift);
            while (m->e[i].key != TOK_PAIR_EMPTY && m->e[i].key != key) i = (i + 1) & m->mask;
            m->e[i] = (tok_pair){.key = key, .rank = k0 + j, .new_id = x[2].id}; /* repeated pair: last rank wins */
        }
    }
    free(cat);
    free(L);
    return st;
}

/* 0..255 when s is "<0xHH>" (either case of hex digit), else -1. */
static int byte_piece(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        int c = (unsigned char)s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static g4c_status build(g4c_tokenizer *t, const cJSON *root, const char *what, g4c_err *err) {
    if (!cJSON_IsObject(root)) return G4C_FAIL(err, G4C_E_FORMAT, "%s: not a JSON object", what);
    const cJSON *model = member(root, "model");
    if (!cJSON_IsObject(model)) return G4C_FAIL(err, G4C_E_FORMAT, "%s: no \"model\" object", what);
    const char *type, *unk;
    G4C_TRY(opt_str(model, "type", &type, "model", what, err));
    if (!type) return G4C_FAIL(err, G4C_E_FORMAT, "%s: model.type is missing", what);
    if (strcmp(type, "BPE") != 0)
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: model.type is \"%.40s\"; only \"BPE\" is supported", what, type);
    const cJSON *vocab = member(model, "vocab"), *merges = member(model, "merges");
    const cJSON *added = member(root, "added_tokens");
    if (!cJSON_IsObject(vocab)) return G4C_FAIL(err, G4C_E_FORMAT, "%s: model.vocab is missing or not an object", what);
    if (!cJSON_IsArray(merges))
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: model.merges is missing or not an array", what);
    if (added && !cJSON_IsArray(added)) return G4C_FAIL(err, G4C_E_FORMAT, "%s: added_tokens is not an array", what);
    const char *prefix, *suffix;
    G4C_TRY(opt_str(model, "continuing_subword_prefix", &prefix, "model", what, err));
    G4C_TRY(opt_str(model, "end_of_word_suffix", &suffix, "model", what, err));
    if ((prefix && *prefix) || (suffix && *suffix))
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: model.continuing_subword_prefix / end_of_word_suffix are not "
                        "supported", what);
    const cJSON *dropout = member(model, "dropout");
    if (dropout && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: model.dropout must be null (BPE dropout is not supported)", what);
    G4C_TRY(opt_bool(model, "byte_fallback", &t->byte_fallback, what, err));
    G4C_TRY(opt_bool(model, "fuse_unk", &t->fuse_unk, what, err));
    G4C_TRY(opt_bool(model, "ignore_merges", &t->ignore_merges, what, err));
    G4C_TRY(opt_str(model, "unk_token", &unk, "model", what, err));

    int n_model = cJSON_GetArraySize(vocab), n_added = added ? cJSON_GetArraySize(added) : 0;
    if (n_model <= 0) return G4C_FAIL(err, G4C_E_FORMAT, "%s: model.vocab is empty", what);
    if (n_model > TOK_MAX_IDS || n_added > TOK_MAX_IDS)
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: more than %d pieces", what, TOK_MAX_IDS);
    size_t bytes = 0;
    for (const cJSON *it = vocab->child; it; it = it->next) bytes += strlen(it->string) + 1;
    for (const cJSON *it = added ? added->child : NULL; it; it = it->next) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (cJSON_IsString(c)) bytes += strlen(c->valuestring) + 1;
    }
    t->n_model = n_model;
    t->n_alloc = n_model + n_added;
    t->pc = g4c_calloc((size_t)t->n_alloc, sizeof *t->pc, err);
    t->arena = g4c_malloc(bytes, 1, err);
    uint32_t cap = pow2_at_least(2 * (uint64_t)t->n_alloc);
    t->vslot = g4c_malloc(cap, sizeof *t->vslot, err);
    if (!t->pc || !t->arena || !t->vslot) return G4C_E_NOMEM;
    t->vmask = cap - 1;
    memset(t->vslot, 0xff, (size_t)cap * sizeof *t->vslot);

    char *arena = t->arena;
    G4C_TRY(parse_vocab(t, vocab, &arena, what, err));
    t->n_vocab = n_model;
    for (int32_t id = 0; id < n_model; id++) {
        int32_t o = vocab_insert(t, id);
        if (o >= 0)
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: model.vocab: piece \"%.80s\" appears twice (ids %d and %d)", what,
                            t->pc[id].s, (int)o, (int)id);
        if (t->pc[id].len > t->max_piece_len) t->max_piece_len = t->pc[id].len;
    }
    G4C_TRY(parse_added(t, added, &arena, what, err));

    t->unk_id = -1;
    if (unk && (t->unk_id = model_lookup(t, unk, strlen(unk))) < 0)
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: model.unk_token \"%.80s\" is not in model.vocab", what, unk);
    for (int i = 0; i < 256; i++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", (unsigned)i);
        t->byte_id[i] = model_lookup(t, s, 6);
    }
    for (int c = 0; c < 128; c++) {
        char s = (char)c;
        t->ascii_id[c] = model_lookup(t, &s, 1);
    }
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (byte_piece(t->pc[id].s, t->pc[id].len) >= 0) t->pc[id].flags |= TOK_BYTE;

    G4C_TRY(parse_merges(t, merges, what, err));
    G4C_TRY(parse_normalizer(t, member(root, "normalizer"), 0, what, err));
    G4C_TRY(parse_pretok(t, member(root, "pre_tokenizer"), 0, what, err));

    /* Gemma 4's control strings are special wherever they sit at their id, whatever added_tokens says. */
    for (size_t i = 0; i < sizeof GEMMA4_CONTROL / sizeof GEMMA4_CONTROL[0]; i++) {
        int32_t id = GEMMA4_CONTROL[i].id;
        if (id < t->n_vocab && strcmp(t->pc[id].s, GEMMA4_CONTROL[i].g4) == 0)
            t->pc[id].flags |= TOK_ADDED | TOK_SPECIAL;
    }
    return build_trie(t, err);
}

/* ---- API ------------------------------------------------------------------------------------------------------ */

g4c_status g4c_tok_load_buffer(g4c_tokenizer **out, const char *json, size_t len, const char *what, g4c_err *err) {
    *out = NULL;
    cJSON *root;
    G4C_TRY(g4c_json_parse(&root, json, len, what, err));
    g4c_tokenizer *t = g4c_calloc(1, sizeof *t, err);
    if (!t) {
        cJSON_Delete(root);
        return G4C_E_NOMEM;
    }
    g4c_status st = build(t, root, what, err);
    cJSON_Delete(root);
    if (st != G4C_OK) {
        g4c_tok_free(t);
        return st;
    }
    *out = t;
    return G4C_OK;
}

g4c_status g4c_tok_load(g4c_tokenizer **out, const char *path, g4c_err *err) {
    char *buf;
    size_t n;
    *out = NULL;
    G4C_TRY(g4c_read_file(path, G4C_TOK_MAX_JSON, &buf, &n, err));
    g4c_status st = g4c_tok_load_buffer(out, buf, n, path, err);
    free(buf);
    return st;
}

void g4c_tok_free(g4c_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_norm; i++) {
        free(t->norm[i].from);
        free(t->norm[i].to);
    }
    for (int i = 0; i < t->n_split; i++) free(t->split[i].pat);
    free(t->norm);
    free(t->split);
    free(t->merges.e);
    free(t->trie);
    free(t->vslot);
    free(t->arena);
    free(t->pc);
    free(t);
}

g4c_status g4c_tok_apply_gemma4_specials(g4c_tokenizer *t, g4c_err *err) {
    if (!t) return G4C_FAIL(err, G4C_E_ARG, "g4c_tok_apply_gemma4_specials: no tokenizer");
    if (t->n_model != GEMMA_VOCAB)
        return G4C_FAIL(err, G4C_E_ARG, "not a Gemma 3/4 vocabulary: model.vocab has %d pieces, not %d", t->n_model,
                        GEMMA_VOCAB);
    const size_t n = sizeof GEMMA4_CONTROL / sizeof GEMMA4_CONTROL[0];
    for (size_t i = 0; i < n; i++) {
        int32_t id = GEMMA4_CONTROL[i].id;
        const char *p = t->pc[id].s, *g3 = GEMMA4_CONTROL[i].g3, *g4 = GEMMA4_CONTROL[i].g4;
        if (strcmp(p, g3) != 0 && strcmp(p, g4) != 0)
            return G4C_FAIL(err, G4C_E_ARG, "not a Gemma 3/4 vocabulary: id %d is \"%.80s\", neither Gemma 3's \"%s\" "
                            "nor Gemma 4's \"%s\"", (int)id, p, g3, g4);
        int32_t other = tok_lookup(t, g4, strlen(g4));
        if (other >= 0 && other != id && other < GEMMA_VOCAB)
            return G4C_FAIL(err, G4C_E_ARG, "cannot give id %d the Gemma 4 string \"%s\": it is already id %d",
                            (int)id, g4, (int)other);
    }
    for (size_t i = 0; i < n; i++) {
        int32_t id = GEMMA4_CONTROL[i].id;
        t->pc[id].s = GEMMA4_CONTROL[i].g4;
        t->pc[id].len = (uint32_t)strlen(GEMMA4_CONTROL[i].g4);
        t->pc[id].flags |= TOK_ADDED | TOK_SPECIAL;
    }
    if (t->n_vocab > GEMMA_VOCAB) t->n_vocab = GEMMA_VOCAB;
    rebuild_hash(t);
    return build_trie(t, err);
}

int g4c_tok_n_vocab(const g4c_tokenizer *t) { return t ? t->n_vocab : 0; }

const char *g4c_tok_piece(const g4c_tokenizer *t, int32_t id) {
    return t && id >= 0 && id < t->n_vocab ? t->pc[id].s : NULL;
}

int32_t g4c_tok_find(const g4c_tokenizer *t, const char *piece) {
    return t && piece ? tok_lookup(t, piece, strlen(piece)) : -1;
}

int g4c_tok_is_special(const g4c_tokenizer *t, int32_t id) {
    return t && id >= 0 && id < t->n_vocab && (t->pc[id].flags & TOK_SPECIAL) != 0;
}
