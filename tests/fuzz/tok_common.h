/* Shared by the tokenizer harnesses: the count contract of g4c_tok_encode and the snprintf contract of
 * g4c_tok_decode, checked on every call, and the streaming detokenizer checked against decode. */
#ifndef G4C_FUZZ_TOK_COMMON_H
#define G4C_FUZZ_TOK_COMMON_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

static void check(int ok) {
    if (!ok) __builtin_trap();
}

/* ---- helpers ------------------------------------------------------------------------------------------------- */

/* Encode, checking the count contract (a short buffer gets a prefix and the full count). malloc'd ids or NULL. */
static int32_t *encode(const g4c_tokenizer *t, const char *s, size_t n, int ps, int *count) {
    g4c_err err = {0};
    /* one call with room for 3 ids a byte (byte fallback of a 3-byte normalized space); a longer result comes
     * back as a prefix and the full count, and is asked for again with room for it */
    const size_t cap = 3 * n + 16 < (size_t)INT32_MAX ? 3 * n + 16 : (size_t)INT32_MAX;
    int32_t *ids = malloc(sizeof(int32_t) * cap);
    check(ids != NULL);
    const int c = g4c_tok_encode(t, s, n, ps, ids, (int)cap, &err);
    if (c < 0) {
        check(err.msg[0] != 0);
        free(ids);
        return NULL;
    }
    if ((size_t)c > cap) {
        int32_t *all = malloc(sizeof(int32_t) * (size_t)c);
        check(all != NULL);
        check(g4c_tok_encode(t, s, n, ps, all, c, &err) == c);
        check(memcmp(all, ids, sizeof(int32_t) * cap) == 0); /* the prefix was right */
        free(ids);
        ids = all;
    } else if (c > 1 && n <= 64) { /* short texts: the count alone, and a short buffer (same count, same prefix) */
        check(g4c_tok_encode(t, s, n, ps, NULL, 0, &err) == c);
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

#endif
