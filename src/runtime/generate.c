/* The generation loop shared by `run`, `chat`, the server and the evaluators: prefill once, then sample and
 * decode one token at a time; stream the text as complete UTF-8; route Gemma's thought channel
 * (<|channel> ... <channel|>, spec §6) apart from the answer; stop on end-of-generation ids, on stop strings
 * (also when they span tokens: text that could still become a stop string is held back), on the token limit or
 * when *cancel becomes nonzero. */
#include <stdlib.h>

#include "runtime/runtime.h"

static void emit(const g4c_gen_opts *o, const char *text, size_t len, int thinking) {
    if (len && o->on_text) o->on_text(o->user, text, len, thinking);
}

static void release(g4c_stop_filter *f, const char *text, size_t len) {
    if (len && f->emit) f->emit(f->user, text, len);
}

int g4c_stop_filter_push(g4c_stop_filter *f, const char *text, size_t len) {
    if (f->stopped) return 1;
    if (!f->n_stop) {
        release(f, text, len);
        return 0;
    }
    if (f->n_held + len + 1 > f->cap_held) {
        size_t cap = (f->n_held + len + 1) * 2;
        char *g = realloc(f->held, cap);
        if (!g) { /* cannot hold back: release everything and give up matching across this boundary */
            release(f, f->held, f->n_held);
            release(f, text, len);
            f->n_held = 0;
            return 0;
        }
        f->held = g;
        f->cap_held = cap;
    }
    memcpy(f->held + f->n_held, text, len);
    f->n_held += len;
    f->held[f->n_held] = 0;
    /* the earliest complete stop string ends the text there */
    size_t cut = (size_t)-1;
    for (int i = 0; i < f->n_stop; i++) {
        const char *hit = f->stop[i][0] ? strstr(f->held, f->stop[i]) : NULL;
        if (hit && (size_t)(hit - f->held) < cut) cut = (size_t)(hit - f->held);
    }
    if (cut != (size_t)-1) {
        release(f, f->held, cut);
        f->n_held = 0;
        f->stopped = 1;
        return 1;
    }
    /* the longest suffix that is a proper prefix of some stop string stays held */
    size_t keep = 0;
    for (int i = 0; i < f->n_stop; i++) {
        const size_t ls = strlen(f->stop[i]);
        for (size_t k = ls ? (ls - 1 < f->n_held ? ls - 1 : f->n_held) : 0; k > keep; k--)
            if (!memcmp(f->held + f->n_held - k, f->stop[i], k)) {
                keep = k;
                break;
            }
    }
    release(f, f->held, f->n_held - keep);
    memmove(f->held, f->held + f->n_held - keep, keep);
    f->n_held = keep;
    return 0;
}

void g4c_stop_filter_finish(g4c_stop_filter *f) {
    if (!f->stopped) release(f, f->held, f->n_held);
    f->n_held = 0;
    free(f->held);
    f->held = NULL;
    f->cap_held = 0;
}

static void emit_answer(void *user, const char *text, size_t len) { emit(user, text, len, 0); }

g4c_status g4c_generate(g4c_session *s, const g4c_tokenizer *tok, g4c_sampler *smp, const int32_t *prompt,
                        int n_prompt, const float *soft, int n_soft, const g4c_gen_opts *o, g4c_gen_stats *stats,
                        g4c_err *err) {
    const g4c_model *m = s->model;
    memset(stats, 0, sizeof *stats);
    const int V = m->cfg.n_vocab;
    float *logits = g4c_malloc((size_t)V, sizeof(float), err);
    if (!logits) return G4C_E_NOMEM;
    const int32_t ch_open = g4c_tok_find(tok, "<|channel>"), ch_close = g4c_tok_find(tok, "<channel|>");
    g4c_stop_filter st = {.stop = o->stop, .n_stop = o->n_stop, .emit = emit_answer, .user = (void *)o};
    g4c_tok_stream ds = {0};
    char piece[256];
    int thinking = 0, thought_header = 0;
    const double t0 = g4c_time_ms();
    g4c_status rc = g4c_session_eval_mm(s, prompt, n_prompt, soft, n_soft, logits, G4C_LOGITS_LAST, err);
    const double t1 = g4c_time_ms();
    stats->n_prompt = n_prompt;
    stats->t_prefill_ms = t1 - t0;
    stats->stop = G4C_STOP_LENGTH;
    for (int i = 0; i < n_prompt && rc == G4C_OK; i++) g4c_sampler_accept(smp, prompt[i]);
    /* plain greedy: each step's argmax comes with its evaluation (on a GPU session only the id comes down) */
    const int greedy = g4c_sampler_is_greedy(smp);
    int32_t next = -1; /* that argmax for the coming step, when greedy */
    /* top-k sampling: on a GPU session only the k best logits come down (g4c_session_eval_topk) */
    const int topk = g4c_sampler_topk(smp); /* 0 when greedy */
    float cand_logit[G4C_SESSION_TOPK_MAX], cand_stats[2];
    int32_t cand_id[G4C_SESSION_TOPK_MAX];
    int n_cand = 0; /* > 0: the coming step samples from those instead of logits */
    while (rc == G4C_OK && stats->n_gen < o->max_tokens) {
        if (o->cancel && *o->cancel) {
            stats->stop = G4C_STOP_CANCEL;
            break;
        }
        const int32_t t = next >= 0  ? next
                          : n_cand > 0 ? g4c_sampler_sample_topk(smp, cand_logit, cand_id, n_cand, cand_stats[0], cand_stats[1])
                                       : g4c_sampler_sample(smp, logits);
        if (stats->n_gen == 0) stats->t_first_ms = g4c_time_ms() - t0;
        stats->n_gen++;
        g4c_sampler_accept(smp, t);
        if (g4c_model_is_eog(m, t)) {
            stats->stop = G4C_STOP_EOG;
            break;
        }
        if (t == ch_open || t == ch_close) { /* thought channel markers are routing, not text */
            int n = g4c_tok_stream_flush(&ds, piece, sizeof piece);
            if (n > 0) {
                if (thinking) emit(o, piece, (size_t)n, 1);
                else if (g4c_stop_filter_push(&st, piece, (size_t)n)) {
                    stats->stop = G4C_STOP_STRING;
                    break;
                }
            }
            thinking = t == ch_open;
            thought_header = thinking;
        } else if (!g4c_tok_is_special(tok, t)) {
            int n = g4c_tok_stream_push(tok, &ds, t, piece, sizeof piece);
            if (n > 0 && (size_t)n < sizeof piece) {
                const char *p = piece;
                if (thinking && thought_header) { /* the channel opens with its name: "thought\n" */
                    thought_header = 0;
                    if (!strncmp(p, "thought", 7)) p += 7, n -= 7;
                    if (n > 0 && *p == '\n') p++, n--;
                }
                if (thinking) emit(o, p, (size_t)n, 1);
                else if (g4c_stop_filter_push(&st, p, (size_t)n)) {
                    stats->stop = G4C_STOP_STRING;
                    break;
                }
            }
        }
        if (stats->n_gen == o->max_tokens) break;
        if (greedy) rc = g4c_session_eval_greedy(s, t, &next, logits, err);
        else if (topk) /* a k above G4C_SESSION_TOPK_MAX, or a CPU session: logits (n_cand 0) */
            rc = g4c_session_eval_topk(s, t, topk, g4c_sampler_temperature(smp), cand_logit, cand_id, cand_stats, &n_cand,
                                       logits, err);
        else rc = g4c_session_eval(s, &t, 1, logits, G4C_LOGITS_LAST, err);
    }
    if (stats->stop != G4C_STOP_STRING) {
        int n = g4c_tok_stream_flush(&ds, piece, sizeof piece);
        if (n > 0) {
            if (thinking) emit(o, piece, (size_t)n, 1);
            else if (g4c_stop_filter_push(&st, piece, (size_t)n)) stats->stop = G4C_STOP_STRING;
        }
    }
    g4c_stop_filter_finish(&st);
    stats->t_total_ms = g4c_time_ms() - t0;
    stats->t_gen_ms = stats->t_total_ms - stats->t_prefill_ms;
    free(logits);
    return rc;
}
