/* tokenizer: Hugging Face tokenizer.json (model.type "BPE") -> text <-> token ids, as the "tokenizers" library runs
 * Gemma 3 / Gemma 4's SentencePiece-style BPE (docs/gemma4-spec.md §5):
 *   1. added tokens are split out of the raw text first (leftmost, then longest match). Non-special added tokens
 *      (Gemma: whitespace runs, HTML tags, <unusedN>) always are, as HF does; special ones only with parse_special.
 *   2. each remaining segment is normalized (Replace ' ' -> '▁'; Prepend), pre-split (literal-string Split), and
 *      BPE-merged: start from UTF-8 characters, repeatedly merge the adjacent pair of lowest merge rank (leftmost
 *      on ties); characters not in the vocabulary become <0xHH> byte tokens (byte_fallback) or <unk>.
 *   3. decoding: '▁' -> ' ', <0xHH> -> that raw byte, other pieces verbatim (special ones included).
 * Does not add BOS: a Gemma prompt is [2] + encode(rendered text without its leading "<bos>") (spec §5).
 * A loaded tokenizer is read-only: any number of threads may encode/decode with it at once. */
#ifndef G4C_TOKENIZER_TOKENIZER_H
#define G4C_TOKENIZER_TOKENIZER_H

#include "base/base.h"

typedef struct g4c_tokenizer g4c_tokenizer;

#define G4C_TOK_MAX_JSON ((size_t)256 << 20) /* tokenizer.json size cap (Gemma's is 33 MB) */

/* Load a tokenizer.json. Fails with G4C_E_IO (cannot read), G4C_E_FORMAT (malformed: the message names the
 * field, piece or id) or G4C_E_UNSUPPORTED (a model/normalizer/pre-tokenizer type this reader does not run). */
g4c_status g4c_tok_load(g4c_tokenizer **out, const char *tokenizer_json_path, g4c_err *err);
/* The same from a JSON text in memory; `what` names it in messages (tests, fuzzing). */
g4c_status g4c_tok_load_buffer(g4c_tokenizer **out, const char *json, size_t len, const char *what, g4c_err *err);
void g4c_tok_free(g4c_tokenizer *t);

/* Make a Gemma 3 tokenizer.json stand in for Gemma 4's (spec §5 table): ids 46-52, 98, 100, 101, 105, 106,
 * 255999, 256000, 258880-258884 get their Gemma 4 strings (<|tool>, <|turn>, <|image|>...) and become special
 * added tokens; ids >= 262144 (Gemma 3's <image_soft_token>) are dropped. On a real Gemma 4 tokenizer.json
 * (strings already right) it only marks those ids special; calling it twice is harmless. Fails with G4C_E_ARG
 * (nothing changed) when the vocabulary is not a Gemma 3/4 one: too small, or one of those ids holds a string that
 * is neither its Gemma 3 nor its Gemma 4 string. */
g4c_status g4c_tok_apply_gemma4_specials(g4c_tokenizer *t, g4c_err *err);

/* Number of ids (model vocabulary plus added tokens beyond it): ids are 0 .. n_vocab-1. */
int g4c_tok_n_vocab(const g4c_tokenizer *t);
/* The piece as stored in tokenizer.json ("▁hello", "<0x0A>", "<|turn>"), or NULL when id is out of range. */
const char *g4c_tok_piece(const g4c_tokenizer *t, int32_t id);
/* The id of a piece (model vocabulary or added token), or -1. */
int32_t g4c_tok_find(const g4c_tokenizer *t, const char *piece);
/* 1 when id is a special added token (<bos>, <|turn>...), else 0 (also for ids out of range). */
int g4c_tok_is_special(const g4c_tokenizer *t, int32_t id);

/* Encode len bytes of text (need not be NUL-terminated; invalid UTF-8 is not an error: such bytes become byte
 * tokens). Writes at most n_max ids (ids may be NULL when n_max is 0) and returns the total number of ids the
 * text encodes to, like snprintf: a return value > n_max means the output was cut short. With parse_special,
 * special added-token strings ("<bos>", "<|turn>") map to their ids; without, they are tokenized as text.
 * Returns a negative g4c_status on error (bad arguments, out of memory). */
int g4c_tok_encode(const g4c_tokenizer *t, const char *text, size_t len, int parse_special, int32_t *ids, int n_max,
                   g4c_err *err);

/* Like g4c_tok_encode with parse_special, except that a special token is recognized only where special_ok[i] is
 * nonzero for its first byte i: the chat template's own control tokens count, the same strings typed inside a
 * user's message stay text (no prompt injection). Plain text is tokenized exactly as g4c_tok_encode does. */
int g4c_tok_encode_masked(const g4c_tokenizer *t, const char *text, size_t len, const uint8_t *special_ok,
                          int32_t *ids, int n_max, g4c_err *err);

/* Decode n ids into buf (NUL-terminated when size > 0, cut short if it does not fit) and return the full length
 * of the text, like snprintf. Byte tokens give raw bytes, so the text may hold partial or invalid UTF-8 where
 * the ids do. Returns G4C_E_ARG (negative) when an id is out of range. */
int g4c_tok_decode(const g4c_tokenizer *t, const int32_t *ids, int n, char *buf, size_t size);

/* Streaming detokenizer: feed one id at a time, get back only complete UTF-8 characters (an emoji spread over
 * four byte tokens comes out whole, after the fourth). Zero-initialize (or g4c_tok_stream_reset) before use. */
typedef struct {
    unsigned char pending[4]; /* bytes of an incomplete UTF-8 sequence carried to the next call */
    int n_pending;
} g4c_tok_stream;
static inline void g4c_tok_stream_reset(g4c_tok_stream *s) { s->n_pending = 0; }
/* Writes the text now complete to buf (NUL-terminated) and returns its length. If it needs size bytes or more,
 * returns the length needed, writes nothing and leaves the stream unchanged (call again with a larger buffer; for
 * Gemma's vocabulary 128 bytes always suffice). Returns G4C_E_ARG when id is out of range. A malformed sequence
 * is emitted as is (never held back forever). */
int g4c_tok_stream_push(const g4c_tokenizer *t, g4c_tok_stream *s, int32_t id, char *buf, size_t size);
/* Emit whatever is still pending (at the end of generation); same return contract. */
int g4c_tok_stream_flush(g4c_tok_stream *s, char *buf, size_t size);

/* GGUF (tok_gguf.c, spec §8.2): the tokenizer in a GGUF file's tokenizer.ggml.* metadata (model "gemma4": tokens,
 * token_type, merges), checked by the same rules as a tokenizer.json; and t written as that metadata for a vocabulary
 * of n_vocab ids (the model's embedding rows; ids past the tokenizer's become "[PAD<id>]", unused; 0 = t's size). */
g4c_status g4c_tok_load_gguf(g4c_tokenizer **out, const char *gguf_path, g4c_err *err);
struct g4c_gguf_writer;
struct g4c_gguf;
/* The same from a parsed GGUF (formats/formats.h; fuzzing, or a file already open). */
g4c_status g4c_tok_from_gguf(g4c_tokenizer **out, const struct g4c_gguf *g, g4c_err *err);
g4c_status g4c_tok_write_gguf(const g4c_tokenizer *t, struct g4c_gguf_writer *w, int n_vocab, g4c_err *err);

#endif
