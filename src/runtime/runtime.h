/* runtime: the public API's objects (model = config + weights + thread pool; session = one sequence's state)
 * and sampling. Implements include/gemma4c.h on top of model/. */
#ifndef G4C_RUNTIME_RUNTIME_H
#define G4C_RUNTIME_RUNTIME_H

#include "model/model.h"
#include "tokenizer/tokenizer.h"

struct g4c_model {
    g4c_config cfg;
    g4c_weights w;
    g4c_vision_w vw;
    g4c_sampler_params sampling; /* generation_config.json defaults */
    int has_vision;
    char vision_err[512]; /* why the vision tower is unusable, when has_vision is 0 */
    g4c_tensor_set *ts;
    g4c_pool *pool;
    char *path;
    void *cuda; /* g4c_cuda_model (kernels/cuda/cuda_backend.h): uploaded by the first device=cuda session */
};

struct g4c_session {
    g4c_model *model;
    g4c_text_state st; /* CPU sessions; a CUDA session uses only its n_ctx, n_ubatch, n_past, bidir_off */
    void *cuda;        /* g4c_cuda_text when created with device G4C_DEVICE_CUDA */
};

/* One decoding step whose token is chosen greedily (argmax, lowest id on ties: the greedy sampler's rule): token
 * is evaluated at the session's next position and *next receives the argmax of its logits. A CUDA session takes it
 * on the device so that only the id comes down (g4c_cuda_text_forward_greedy); a CPU session computes the logits
 * into logits [n_vocab] and takes their argmax. Checks as g4c_session_eval. */
g4c_status g4c_session_eval_greedy(g4c_session *s, int32_t token, int32_t *next, float *logits, g4c_err *err);
/* The first index of the largest of x[0..n) by `>`: greedy's choice, ties to the lowest id (sampler.c). */
int32_t g4c_argmax(const float *x, int n);
/* 1 when sampling is plain argmax: temperature <= 0 and no repetition/presence penalty (sampler.c). */
int g4c_sampler_is_greedy(const g4c_sampler *s);
/* k when a step's choice depends only on the k best logits (by value, ties to the lower id), the largest logit and
 * the sum over the vocabulary of exp((logit - largest) / temperature): temperature > 0, top_k = k > 0 (at most the
 * vocabulary), no penalty; else 0 (sampler.c). */
int g4c_sampler_topk(const g4c_sampler *s);
float g4c_sampler_temperature(const g4c_sampler *s);
/* g4c_sampler_sample from those: the n candidates (logit[i], id[i], any order), the largest logit and that sum. */
int32_t g4c_sampler_sample_topk(g4c_sampler *s, const float *logit, const int32_t *id, int n, float best_logit,
                                float sum);
/* One decoding step sampled from the top k on a CUDA session (k <= G4C_SESSION_TOPK_MAX): token is evaluated at the
 * session's next position and only its k best logits, their ids and the two statistics of g4c_sampler_topk come down
 * (*n_out = k). A CPU session, or a k the device does not take, computes the logits into logits [n_vocab] instead
 * (*n_out = 0: sample those). Checks as g4c_session_eval. */
#define G4C_SESSION_TOPK_MAX 64
g4c_status g4c_session_eval_topk(g4c_session *s, int32_t token, int k, float temperature, float *logit, int32_t *id,
                                 float *stats, int *n_out, float *logits, g4c_err *err);

/* ---- generation (generate.c) ---- */

enum { G4C_STOP_LENGTH = 0, G4C_STOP_EOG, G4C_STOP_STRING, G4C_STOP_CANCEL };

typedef struct {
    int max_tokens;
    const char *const *stop; /* stop strings (answer text only; the match is not emitted) */
    int n_stop;
    /* streamed text: complete UTF-8, thinking = 1 for the thought channel */
    void (*on_text)(void *user, const char *text, size_t len, int thinking);
    void *user;
    volatile int *cancel;    /* polled before each token (Ctrl-C) */
} g4c_gen_opts;

typedef struct {
    int n_prompt, n_gen;
    double t_prefill_ms;     /* prompt evaluation */
    double t_first_ms;       /* time to first token: prefill + first sample */
    double t_gen_ms;         /* everything after the prefill */
    double t_total_ms;
    int stop;                /* G4C_STOP_* */
} g4c_gen_stats;

/* A checkpoint directory's chat template text (chat_template.jinja, else tokenizer_config.json "chat_template"),
 * malloc'd, or NULL; and its image soft-token budget (processor_config.json max_soft_tokens, else 280). */
char *g4c_checkpoint_chat_template(const char *dir);
int g4c_checkpoint_image_budget(const char *dir);

/* Render messages with the chat template, tokenize (special tokens parsed) and expand the n_imgs image slots, in
 * order, with img_tokens[i] soft-token placeholders each (prompt.c). *out is malloc'd. */
g4c_status g4c_prompt_build(const g4c_model *m, const g4c_tokenizer *tok, const g4c_chat_style *style,
                            const g4c_chat_msg *msgs, int n_msgs, int add_generation_prompt, const int *img_tokens,
                            int n_imgs, int32_t **out, int *n_out, g4c_err *err);

/* Stop strings over streamed text: text that could still grow into a stop string is held back, so a stop string
 * split across tokens is caught and never shown. Zero-initialize, set stop/n_stop/emit/user. */
typedef struct {
    const char *const *stop;
    int n_stop;
    void (*emit)(void *user, const char *text, size_t len); /* text that is final */
    void *user;
    char *held;
    size_t n_held, cap_held;
    int stopped;
} g4c_stop_filter;
/* Returns 1 once a stop string has matched (the text before it was emitted, nothing after). */
int g4c_stop_filter_push(g4c_stop_filter *f, const char *text, size_t len);
/* End of text: emit what is still held (unless stopped) and free the buffer. */
void g4c_stop_filter_finish(g4c_stop_filter *f);

/* Prefill prompt (with soft tokens for its image placeholders) and generate. */
g4c_status g4c_generate(g4c_session *s, const g4c_tokenizer *tok, g4c_sampler *smp, const int32_t *prompt,
                        int n_prompt, const float *soft, int n_soft, const g4c_gen_opts *o, g4c_gen_stats *stats,
                        g4c_err *err);

#endif
