/* Decoding ids -> text with Gemma's decoder (docs/gemma4-spec.md §5; tokenizer.json "decoder": Sequence of
 * Replace '▁' -> ' ', ByteFallback, Fuse): every piece is copied with U+2581 turned into a space, except "<0xHH>"
 * byte tokens, which become that one raw byte. Unlike tokenizers' ByteFallback (which turns a run of bytes that
 * is not valid UTF-8 into U+FFFD), bytes are kept raw, so concatenating per-token output (streaming) gives the
 * same text as decoding all at once. The streaming helper holds back an incomplete UTF-8 sequence at the end. */
#include <limits.h>

#include "tokenizer/tok_internal.h"

/* Text of one id: writes at most room bytes of it to d and returns its full length. id must be in range. */
static size_t piece_text(const g4c_tokenizer *t, int32_t id, char *d, size_t room) {
    const unsigned char *p = (const unsigned char *)t->pc[id].s;
    size_t n = t->pc[id].len;
    if (t->pc[id].flags & TOK_BYTE) {
        if (room) {
            unsigned v = 0;
            for (int i = 3; i < 5; i++) v = v * 16 + (p[i] <= '9' ? p[i] - 0x30u : (p[i] | 0x20u) - 0x57u);
            d[0] = (char)v;
        }
        return 1;
    }
    size_t out = 0;
    for (size_t i = 0; i < n; out++) {
        int space = i + 3 <= n && p[i] == 0xE2 && p[i + 1] == 0x96 && p[i + 2] == 0x81;
        if (out < room) d[out] = space ? ' ' : (char)p[i];
        i += space ? 3 : 1;
    }
    return out;
}

int g4c_tok_decode(const g4c_tokenizer *t, const int32_t *ids, int n, char *buf, size_t size) {
    if (!t || n < 0 || (n > 0 && !ids) || (size > 0 && !buf)) return G4C_E_ARG;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab) return G4C_E_ARG;
        size_t room = size > 0 && total < size - 1 ? size - 1 - total : 0;
        total += piece_text(t, ids[i], room ? buf + total : NULL, room);
        if (total > INT_MAX) return G4C_E_ARG;
    }
    if (size > 0) buf[total < size ? total : size - 1] = 0;
    return (int)total;
}

/* How many bytes at the end of s[0..n) form an incomplete UTF-8 sequence (0..3). */
static size_t incomplete_tail(const unsigned char *s, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned c = s[n - k];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte: keep looking for the lead */
        size_t need = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 1;
        return need > k ? k : 0;
    }
    return 0;
}

int g4c_tok_stream_push(const g4c_tokenizer *t, g4c_tok_stream *s, int32_t id, char *buf, size_t size) {
    if (!t || !s || s->n_pending < 0 || s->n_pending > 3 || (size > 0 && !buf)) return G4C_E_ARG;
    if (id < 0 || id >= t->n_vocab) return G4C_E_ARG;
    size_t np = (size_t)s->n_pending, len = piece_text(t, id, NULL, 0), total = np + len;
    if (total > INT_MAX - 1) return G4C_E_ARG;
    if (total + 1 > size) return (int)total;
    memcpy(buf, s->pending, np);
    piece_text(t, id, buf + np, len);
    size_t hold = incomplete_tail((const unsigned char *)buf, total);
    memcpy(s->pending, buf + total - hold, hold);
    s->n_pending = (int)hold;
    buf[total - hold] = 0;
    return (int)(total - hold);
}

int g4c_tok_stream_flush(g4c_tok_stream *s, char *buf, size_t size) {
    if (!s || s->n_pending < 0 || s->n_pending > 3 || (size > 0 && !buf)) return G4C_E_ARG;
    size_t np = (size_t)s->n_pending;
    if (np + 1 > size) return (int)np;
    memcpy(buf, s->pending, np);
    buf[np] = 0;
    s->n_pending = 0;
    return (int)np;
}
