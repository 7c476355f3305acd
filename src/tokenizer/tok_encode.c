/* Encoding text -> ids, the way Hugging Face "tokenizers" runs a BPE tokenizer.json (docs/gemma4-spec.md §5):
 *   1. added tokens are cut out of the raw text: scanning left to right, the longest added token starting at the
 *      leftmost position wins (aho-corasick LeftmostLongest). A special one matched without parse_special stays
 *      text, and scanning resumes after it (tokenizers' encode_special_tokens does exactly that).
 *   2. every segment between them is normalized (Replace / Prepend, in order), split by the pre-tokenizer's
 *      literal-string Splits (with tokenizers' MergedWithPrevious / ... folding rules), and each word is BPE'd:
 *   3. BPE (tokenizers' Word::merge_all): one symbol per UTF-8 character (a character missing from model.vocab
 *      becomes its <0xHH> byte tokens when byte_fallback and all of them exist, else <unk>, fused when fuse_unk;
 *      with neither it is dropped); a min-heap of adjacent pairs ordered by (merge rank, position) pops the best
 *      pair, skips stale entries (the pair at that position no longer merges to the same id), merges it into the
 *      left symbol and pushes the two new neighbour pairs. O(n log n) per word; symbols live in a linked list.
 * Gemma's tokenizer.json pre-splits on " " after " " became "▁", i.e. not at all: a whole segment is one word. */
#include <limits.h>
#include <stdlib.h>

#include "tokenizer/tok_internal.h"

typedef struct { int32_t id, prev, next, len; } sym; /* len 0: merged away */
typedef struct { int32_t rank, pos, new_id; } qitem;
typedef struct { size_t off, len; int match; } span;

typedef struct {
    const g4c_tokenizer *t;
    int32_t *ids;
    size_t n_max, count;
    g4c_err *err;
    char *nb[2];     /* normalization buffers (ping-pong) */
    size_t nb_cap[2];
    span *w, *w2, *tmp; /* pre-tokenized words, the next split's output, one word's matches */
    size_t w_cap, w2_cap, tmp_cap;
    sym *sy;
    size_t sy_cap;
    qitem *q;
    size_t q_cap;
} enc;

static int grow(void **p, size_t *cap, size_t need, size_t elem, g4c_err *err) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *np = c <= SIZE_MAX / elem ? realloc(*p, c * elem) : NULL;
    if (!np) {
        G4C_FAIL(err, G4C_E_NOMEM, "tokenizer: out of memory for %zu x %zu bytes of scratch", c, elem);
        return 0;
    }
    *p = np;
    *cap = c;
    return 1;
}
#define GROW(e, arr, cap, need) grow((void **)&(e)->arr, &(e)->cap, (need), sizeof *(e)->arr, (e)->err)

static inline void emit(enc *e, int32_t id) {
    if (e->count < e->n_max) e->ids[e->count] = id;
    e->count++;
}

static inline int32_t model_lookup(const g4c_tokenizer *t, const char *s, size_t n) {
    int32_t id = tok_lookup(t, s, n);
    return id >= 0 && (t->pc[id].flags & TOK_MODEL) ? id : -1;
}

/* ---- BPE ---------------------------------------------------------------------------------------------------- */

static inline int q_less(const qitem *a, const qitem *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void q_push(qitem *q, size_t *n, qitem it) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!q_less(&it, &q[p])) break;
        q[i] = q[p];
        i = p;
    }
    q[i] = it;
}

static qitem q_pop(qitem *q, size_t *n) {
    qitem top = q[0], last = q[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && q_less(&q[c + 1], &q[c])) c++;
        if (!q_less(&q[c], &last)) break;
        q[i] = q[c];
        i = c;
    }
    if (m) q[i] = last;
    return top;
}

static inline void add_sym(sym *sy, size_t *ns, int32_t id, size_t len) {
    sy[*ns] = (sym){.id = id, .prev = (int32_t)*ns - 1, .next = (int32_t)*ns + 1, .len = (int32_t)len};
    (*ns)++;
}

/* Push the merge of the pair starting at symbol pos, if there is one. */
static inline void push_pair(const g4c_tokenizer *t, const sym *sy, qitem *q, size_t *nq, int32_t pos) {
    int32_t next = sy[pos].next, rank, new_id;
    if (next >= 0 && tok_pair_get(&t->merges, sy[pos].id, sy[next].id, &rank, &new_id))
        q_push(q, nq, (qitem){.rank = rank, .pos = pos, .new_id = new_id});
}

static g4c_status bpe_word(enc *e, const char *s, size_t n) {
    const g4c_tokenizer *t = e->t;
    if (t->ignore_merges) {
        int32_t id = model_lookup(t, s, n);
        if (id >= 0) {
            emit(e, id);
            return G4C_OK;
        }
    }
    if (n > INT32_MAX / 4) return G4C_FAIL(e->err, G4C_E_ARG, "tokenizer: a %zu-byte word is too long", n);
    if (!GROW(e, sy, sy_cap, n) || !GROW(e, q, q_cap, 3 * n)) return G4C_E_NOMEM;
    sym *sy = e->sy;
    size_t ns = 0, unk_len = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *c = (const unsigned char *)s + i;
        size_t L = tok_utf8_len(c, n - i);
        int32_t id = L == 1 && c[0] < 128 ? t->ascii_id[c[0]] : model_lookup(t, s + i, L);
        int bytes_ok = id < 0 && t->byte_fallback;
        for (size_t k = 0; bytes_ok && k < L; k++) bytes_ok = t->byte_id[c[k]] >= 0;
        if (id >= 0 || bytes_ok) {
            if (unk_len) add_sym(sy, &ns, t->unk_id, unk_len), unk_len = 0;
            if (id >= 0) add_sym(sy, &ns, id, L);
            else for (size_t k = 0; k < L; k++) add_sym(sy, &ns, t->byte_id[c[k]], 1);
        } else if (t->unk_id >= 0) {
            if (unk_len && !t->fuse_unk) add_sym(sy, &ns, t->unk_id, unk_len), unk_len = 0;
            unk_len += L;
        } /* else: no byte token and no unk token: the character is dropped, as tokenizers does */
        i += L;
    }
    if (unk_len) add_sym(sy, &ns, t->unk_id, unk_len);
    if (ns == 0) return G4C_OK;
    sy[ns - 1].next = -1;

    qitem *q = e->q;
    size_t nq = 0;
    for (size_t i = 0; i + 1 < ns; i++) push_pair(t, sy, q, &nq, (int32_t)i);
    while (nq) {
        qitem top = q_pop(q, &nq);
        sym *a = &sy[top.pos];
        if (a->len == 0 || a->next < 0) continue;
        sym *b = &sy[a->next];
        int32_t rank, new_id;
        if (!tok_pair_get(&t->merges, a->id, b->id, &rank, &new_id) || new_id != top.new_id) continue; /* stale */
        a->id = new_id;
        a->len += b->len;
        a->next = b->next;
        b->len = 0;
        if (a->next >= 0) sy[a->next].prev = top.pos;
        if (a->prev >= 0) push_pair(t, sy, q, &nq, a->prev);
        push_pair(t, sy, q, &nq, top.pos);
    }
    for (int32_t i = 0; i >= 0; i = sy[i].next) emit(e, sy[i].id); /* symbol 0 is never merged away */
    return G4C_OK;
}

/* ---- normalization and pre-tokenization ------------------------------------------------------------------- */

static const char *find(const char *s, size_t n, const char *pat, size_t m) {
    while (n >= m) {
        const char *p = memchr(s, pat[0], n - m + 1);
        if (!p) return NULL;
        if (memcmp(p, pat, m) == 0) return p;
        n -= (size_t)(p - s) + 1;
        s = p + 1;
    }
    return NULL;
}

/* Apply the normalizer steps; *out points at s itself or at one of the scratch buffers. */
static g4c_status normalize(enc *e, const char *s, size_t n, const char **out, size_t *out_n) {
    int which = 0;
    /* Replace steps may lengthen the text, and chained they multiply (a hostile tokenizer.json turned 1.6 KB into
     * gigabytes, found by fuzzing). Real ones stay within a few times the input (Gemma: " " -> "\xe2\x96\x81"). */
    const size_t n0 = n, limit = n > (SIZE_MAX - 65536) / 16 ? SIZE_MAX : 16 * n + 65536;
    for (int k = 0; k < e->t->n_norm; k++) {
        const tok_norm_op *op = &e->t->norm[k];
        size_t need = 0;
        if (op->kind == TOK_NORM_PREPEND) {
            if (n == 0) continue;
            need = op->to_len + n;
        } else {
            for (const char *p = s, *end = s + n, *f; p < end; p = f + op->from_len) {
                f = find(p, (size_t)(end - p), op->from, op->from_len);
                if (!f) {
                    need += (size_t)(end - p);
                    break;
                }
                need += (size_t)(f - p) + op->to_len;
            }
        }
        if (need > limit)
            return G4C_FAIL(e->err, G4C_E_FORMAT, "tokenizer: the normalizer expands %zu input bytes beyond %zu (step %d)",
                            n0, limit, k);
        if (!grow((void **)&e->nb[which], &e->nb_cap[which], need + 1, 1, e->err)) return G4C_E_NOMEM;
        char *d = e->nb[which];
        if (op->kind == TOK_NORM_PREPEND) {
            memcpy(d, op->to, op->to_len);
            memcpy(d + op->to_len, s, n);
        } else {
            for (const char *p = s, *end = s + n, *f; p < end; p = f + op->from_len) {
                f = find(p, (size_t)(end - p), op->from, op->from_len);
                size_t keep = (size_t)((f ? f : end) - p);
                memcpy(d, p, keep);
                d += keep;
                if (!f) break;
                memcpy(d, op->to, op->to_len);
                d += op->to_len;
            }
        }
        s = e->nb[which];
        n = need;
        which ^= 1;
    }
    *out = s;
    *out_n = n;
    return G4C_OK;
}

/* Split every word of e->w (n_w of them) on one literal pattern; the result replaces e->w. */
static g4c_status split_words(enc *e, const char *s, size_t *n_w, const tok_split_op *op) {
    size_t n_out = 0;
    for (size_t wi = 0; wi < *n_w; wi++) {
        span w = e->w[wi];
        size_t nt = 0; /* matches and gaps of this word, in order */
        for (size_t p = w.off, end = w.off + w.len; p < end;) {
            const char *f = find(s + p, end - p, op->pat, op->len);
            size_t fo = f ? (size_t)(f - s) : end;
            if (!GROW(e, tmp, tmp_cap, nt + 2)) return G4C_E_NOMEM;
            if (fo > p) e->tmp[nt++] = (span){p, fo - p, 0};
            if (!f) break;
            e->tmp[nt++] = (span){fo, op->len, 1};
            p = fo + op->len;
        }
        if (!GROW(e, w2, w2_cap, n_out + nt)) return G4C_E_NOMEM;
        size_t first = n_out;
        int prev_match = 0;
        if (op->behavior == TOK_SPLIT_MERGED_NEXT) {
            /* fold from the right, then restore the order */
            for (size_t k = nt; k-- > 0;) {
                span x = e->tmp[k];
                int m = x.match;
                x.match = 0;
                if (m && !prev_match && n_out > first) {
                    span *last = &e->w2[n_out - 1];
                    last->len += last->off - x.off;
                    last->off = x.off;
                } else {
                    e->w2[n_out++] = x;
                }
                prev_match = m;
            }
            for (size_t a = first, b = n_out; a + 1 < b; a++, b--) {
                span x = e->w2[a];
                e->w2[a] = e->w2[b - 1];
                e->w2[b - 1] = x;
            }
            continue;
        }
        for (size_t k = 0; k < nt; k++) {
            span x = e->tmp[k];
            int m = x.match, merge = 0;
            x.match = 0;
            switch (op->behavior) {
            case TOK_SPLIT_REMOVED: if (m) goto next; break;
            case TOK_SPLIT_ISOLATED: break;
            case TOK_SPLIT_MERGED_PREV: merge = m && !prev_match; break;
            default: /* CONTIGUOUS */ merge = m == prev_match; break;
            }
            if (merge && n_out > first) e->w2[n_out - 1].len = x.off + x.len - e->w2[n_out - 1].off;
            else e->w2[n_out++] = x;
        next:
            prev_match = m;
        }
    }
    span *sw = e->w;
    size_t sc = e->w_cap;
    e->w = e->w2, e->w_cap = e->w2_cap;
    e->w2 = sw, e->w2_cap = sc;
    *n_w = n_out;
    return G4C_OK;
}

static g4c_status encode_segment(enc *e, const char *s, size_t n) {
    if (n == 0) return G4C_OK;
    G4C_TRY(normalize(e, s, n, &s, &n));
    if (e->t->n_split == 0) return n ? bpe_word(e, s, n) : G4C_OK;
    if (!GROW(e, w, w_cap, 1)) return G4C_E_NOMEM;
    size_t n_w = 0;
    if (n) e->w[n_w++] = (span){0, n, 0};
    for (int k = 0; k < e->t->n_split; k++) G4C_TRY(split_words(e, s, &n_w, &e->t->split[k]));
    for (size_t i = 0; i < n_w; i++) G4C_TRY(bpe_word(e, s + e->w[i].off, e->w[i].len));
    return G4C_OK;
}

/* ---- API ------------------------------------------------------------------------------------------------------ */

static int encode_impl(const g4c_tokenizer *t, const char *text, size_t len, int parse_special,
                       const uint8_t *special_ok, int32_t *ids, int n_max, g4c_err *err) {
    if (!t) return G4C_FAIL(err, G4C_E_ARG, "g4c_tok_encode: no tokenizer");
    if (!text && len) return G4C_FAIL(err, G4C_E_ARG, "g4c_tok_encode: text is NULL");
    if (n_max < 0 || (n_max > 0 && !ids))
        return G4C_FAIL(err, G4C_E_ARG, "g4c_tok_encode: n_max = %d with ids %s", n_max, ids ? "given" : "NULL");
    if (len > INT_MAX) return G4C_FAIL(err, G4C_E_ARG, "g4c_tok_encode: %zu bytes of text is too long", len);
    enc e = {.t = t, .ids = ids, .n_max = (size_t)n_max, .err = err};
    const unsigned char *u = (const unsigned char *)text;
    g4c_status st = G4C_OK;
    size_t seg = 0, i = 0;
    while (i < len && st == G4C_OK) {
        int32_t node = t->trie_root[u[i]], best = -1;
        size_t best_len = 0;
        for (size_t j = i; node;) {
            if (t->trie[node].id >= 0) best = t->trie[node].id, best_len = j + 1 - i;
            if (++j >= len) break;
            int32_t c = t->trie[node].child;
            while (c && t->trie[c].byte != u[j]) c = t->trie[c].sibling;
            node = c;
        }
        if (best < 0) {
            i++;
        } else if ((t->pc[best].flags & TOK_SPECIAL) && (special_ok ? !special_ok[i] : !parse_special)) {
            i += best_len; /* stays part of the text */
        } else {
            st = encode_segment(&e, text + seg, i - seg);
            emit(&e, best);
            i += best_len;
            seg = i;
        }
    }
    if (st == G4C_OK) st = encode_segment(&e, text + seg, len - seg);
    free(e.nb[0]);
    free(e.nb[1]);
    free(e.w);
    free(e.w2);
    free(e.tmp);
    free(e.sy);
    free(e.q);
    if (st != G4C_OK) return st;
    if (e.count > INT_MAX) return G4C_FAIL(err, G4C_E_ARG, "g4c_tok_encode: the text encodes to over INT_MAX ids");
    return (int)e.count;
}

int g4c_tok_encode(const g4c_tokenizer *t, const char *text, size_t len, int parse_special, int32_t *ids, int n_max,
                   g4c_err *err) {
    return encode_impl(t, text, len, parse_special, NULL, ids, n_max, err);
}

int g4c_tok_encode_masked(const g4c_tokenizer *t, const char *text, size_t len, const uint8_t *special_ok,
                          int32_t *ids, int n_max, g4c_err *err) {
    return encode_impl(t, text, len, 1, special_ok, ids, n_max, err);
}
