/* tokenizer internals shared by tokenizer.c (loading), tok_encode.c and tok_decode.c. Not part of any API. */
#ifndef G4C_TOKENIZER_TOK_INTERNAL_H
#define G4C_TOKENIZER_TOK_INTERNAL_H

#include "tokenizer/tokenizer.h"

/* Per-id flags. */
enum {
    TOK_MODEL = 1,   /* in model.vocab: BPE may produce it */
    TOK_ADDED = 2,   /* an added token: split out of the raw text before BPE */
    TOK_SPECIAL = 4, /* a special added token: split out only with parse_special */
    TOK_BYTE = 8,    /* "<0xHH>": decodes to one raw byte */
};

/* A normalizer step (applied in order to each text segment between added tokens). */
enum { TOK_NORM_REPLACE, TOK_NORM_PREPEND };
typedef struct {
    int kind;
    char *from; /* REPLACE: the literal pattern */
    size_t from_len;
    char *to;   /* REPLACE: the replacement; PREPEND: the prefix */
    size_t to_len;
} tok_norm_op;

/* A pre-tokenizer Split on a literal string, with HF's SplitDelimiterBehavior. */
enum { TOK_SPLIT_REMOVED, TOK_SPLIT_ISOLATED, TOK_SPLIT_MERGED_PREV, TOK_SPLIT_MERGED_NEXT, TOK_SPLIT_CONTIGUOUS };
typedef struct {
    char *pat;
    size_t len;
    int behavior;
} tok_split_op;

/* Byte trie over the added tokens' strings. Node 0 is unused; roots hang off trie_root[first byte]. */
typedef struct {
    int32_t child, sibling; /* first child, next sibling (0 = none) */
    int32_t id;             /* the added token ending here, or -1 */
    unsigned char byte;
} tok_trie_node;

/* (left id, right id) -> (rank, merged id), open addressing on 64-bit keys. */
typedef struct {
    uint64_t key; /* left << 32 | right; TOK_PAIR_EMPTY when free */
    int32_t rank, new_id;
} tok_pair;
typedef struct {
    tok_pair *e;
    int shift; /* 64 - log2(capacity): Fibonacci hashing takes the top bits */
    uint32_t mask;
} tok_pairmap;
#define TOK_PAIR_EMPTY UINT64_MAX

typedef struct {
    const char *s;        /* NUL-terminated; into arena, or a static string after the Gemma 4 renaming */
    uint32_t len;
    uint8_t flags;        /* TOK_* */
} tok_piece;
#define TOK_SLOT_EMPTY UINT64_MAX

struct g4c_tokenizer {
    int n_vocab;          /* ids in use: 0 .. n_vocab-1 */
    int n_model;          /* model.vocab size (ids below it are TOK_MODEL) */
    int n_alloc;          /* entries in pc */
    tok_piece *pc;        /* by id */
    char *arena;
    uint64_t *vslot;      /* string -> id hash over ids < n_vocab: hash tag << 32 | id, TOK_SLOT_EMPTY = free */
    uint32_t vmask;
    tok_pairmap merges;
    int32_t byte_id[256]; /* "<0xHH>" in the model vocabulary, or -1 */
    int32_t ascii_id[128]; /* single-byte characters in the model vocabulary, or -1 */
    int32_t unk_id;       /* -1 when model.unk_token is null */
    int byte_fallback, fuse_unk, ignore_merges;
    tok_norm_op *norm;
    int n_norm;
    tok_split_op *split;
    int n_split;
    tok_trie_node *trie;
    int n_trie, cap_trie;
    int32_t trie_root[256];
    size_t max_piece_len; /* longest model.vocab piece (sizes the merge-parsing buffer) */
};

uint64_t tok_hash(const char *s, size_t n);
/* Any id < n_vocab whose piece is s[0..n), or -1. */
int32_t tok_lookup(const g4c_tokenizer *t, const char *s, size_t n);

static inline int tok_pair_get(const tok_pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *new_id) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> m->shift);; i = (i + 1) & m->mask) {
        if (m->e[i].key == key) {
            *rank = m->e[i].rank;
            *new_id = m->e[i].new_id;
            return 1;
        }
        if (m->e[i].key == TOK_PAIR_EMPTY) return 0;
    }
}

/* Length of the UTF-8 character at s (n > 0 bytes available): 1..4, or 1 for a byte that does not start a
 * well-formed sequence (it then goes through byte fallback on its own). */
static inline size_t tok_utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t L;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    else if (c >= 0xC2 && c <= 0xDF) L = 2;
    else if (c >= 0xE0 && c <= 0xEF) { L = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { L = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 1;
    if (n < L || s[1] < lo || s[1] > hi) return 1;
    for (size_t k = 2; k < L; k++)
        if (s[k] < 0x80 || s[k] > 0xBF) return 1;
    return L;
}

#endif
