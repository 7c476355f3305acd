/* gemma4c — run Google's Gemma 4 models in C11.
 *
 * Basic usage:
 *     g4c_err err;
 *     g4c_model *m;
 *     g4c_model_params mp = g4c_model_default_params();
 *     if (g4c_model_load(&m, "path/to/checkpoint_dir", &mp, &err) != G4C_OK) { puts(err.msg); return 1; }
 *     g4c_session *s;
 *     g4c_session_params sp = g4c_session_default_params();
 *     g4c_session_init(&s, m, &sp, &err);
 *     float *logits = malloc(sizeof(float) * g4c_model_n_vocab(m));
 *     g4c_session_eval(s, tokens, n_tokens, logits, G4C_LOGITS_LAST, &err);   // prefill
 *     ...                                                                     // then one token at a time
 *     g4c_session_free(s); g4c_model_free(m);
 *
 * Errors: every call that can fail returns g4c_status (G4C_OK = 0, negative = error) and fills *err (may be NULL)
 * with a message that names the file, tensor, field or argument at fault. The library never exits or aborts on bad
 * input and prints nothing; a log callback can be installed with g4c_log_set.
 * Thread safety: a g4c_model is read-only after loading and may back several sessions; one session must be used by
 * one thread at a time.
 */
#ifndef GEMMA4C_H
#define GEMMA4C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(G4C_BUILD_SHARED)
#define G4C_API __attribute__((visibility("default")))
#else
#define G4C_API
#endif

typedef enum {
    G4C_OK = 0,
    G4C_E_IO = -1,          /* a file could not be opened, read, mapped or written */
    G4C_E_FORMAT = -2,      /* a file's bytes are malformed (safetensors, JSON, npy...) */
    G4C_E_CONFIG = -3,      /* config.json is missing a field or contradicts itself or the weights */
    G4C_E_NOMEM = -4,       /* an allocation failed */
    G4C_E_ARG = -5,         /* a caller's argument is out of range (token id, context length...) */
    G4C_E_UNSUPPORTED = -6, /* valid input this build does not handle (dtype, rope type...) */
} g4c_status;

typedef struct {
    int code;           /* the g4c_status of the failure */
    char msg[512];      /* human-readable, names what and where */
    const char *file;   /* source location that raised it (for bug reports) */
    int line;
} g4c_err;

typedef struct g4c_model g4c_model;
typedef struct g4c_session g4c_session;

typedef struct {
    uint32_t struct_size; /* sizeof(g4c_model_params): lets the struct grow without breaking callers */
    int n_threads;        /* worker threads for matrix work; 0 = number of online CPUs */
    const char *mmproj_path; /* GGUF models: the vision projector (mmproj) GGUF; NULL = the *mmproj*.gguf beside the
                                model when the two are the only .gguf files in their directory */
} g4c_model_params;

typedef struct {
    uint32_t struct_size;
    int n_ctx;            /* maximum sequence length the KV cache holds; 0 = 4096 (capped by the model's limit) */
    int n_ubatch;         /* tokens per forward chunk during prefill; 0 = 512 (an image block of a "vision"-masked
                             model must fit in one chunk) */
    int device;           /* G4C_DEVICE_CPU (0) or G4C_DEVICE_CUDA (1: the text decoder on the GPU; needs a build
                             with -DGEMMA4C_CUDA=ON, else session init fails with G4C_E_UNSUPPORTED). Default: env
                             G4C_DEVICE=cpu|cuda|auto (auto = cuda when built with it and a GPU is present), else cpu;
                             the CLI sets it from --device, default auto */
} g4c_session_params;

enum { G4C_DEVICE_CPU = 0, G4C_DEVICE_CUDA = 1 };

enum { G4C_LOGITS_NONE = 0, G4C_LOGITS_LAST = 1, G4C_LOGITS_ALL = 2 };

G4C_API g4c_model_params g4c_model_default_params(void);
G4C_API g4c_session_params g4c_session_default_params(void);

/* Load a checkpoint directory (config.json + model.safetensors or model.safetensors.index.json + shards).
 * Weights are memory-mapped read-only. On failure *out is NULL. */
G4C_API g4c_status g4c_model_load(g4c_model **out, const char *path, const g4c_model_params *params, g4c_err *err);
G4C_API void g4c_model_free(g4c_model *model);
G4C_API int g4c_model_n_vocab(const g4c_model *model);
G4C_API int g4c_model_n_layer(const g4c_model *model);
G4C_API int g4c_model_n_ctx_train(const g4c_model *model);
/* True (1) when token is one of the model's end-of-generation ids (config eos_token_id). */
G4C_API int g4c_model_is_eog(const g4c_model *model, int32_t token);
/* Writes a multi-line, human-readable description (config, tensors, memory) snprintf-style; returns the length
 * it needed. */
G4C_API size_t g4c_model_describe(const g4c_model *model, char *buf, size_t size);

G4C_API g4c_status g4c_session_init(g4c_session **out, g4c_model *model, const g4c_session_params *params,
                                    g4c_err *err);
G4C_API void g4c_session_free(g4c_session *s);
/* Forget every token: the next eval starts at position 0. */
G4C_API void g4c_session_reset(g4c_session *s);
/* Number of tokens evaluated so far (the next token's position). */
G4C_API int g4c_session_n_past(const g4c_session *s);
/* The context length the session was created with. */
G4C_API int g4c_session_n_ctx(const g4c_session *s);
/* Forget the tokens after the first n (n <= n_past), to continue from there. A sliding layer's ring keeps only
 * n_ubatch positions beyond its window, so a longer rewind fails with G4C_E_UNSUPPORTED (then reset and
 * re-evaluate). */
G4C_API g4c_status g4c_session_truncate(g4c_session *s, int n, g4c_err *err);

/* Append n tokens at positions n_past..n_past+n-1 and run the decoder over them, in chunks of n_ubatch.
 * logits_mode G4C_LOGITS_LAST writes [n_vocab] floats for the last token, G4C_LOGITS_ALL writes [n][n_vocab],
 * G4C_LOGITS_NONE writes nothing (logits may be NULL). Logits are final-softcapped, as the model defines them.
 * Fails with G4C_E_ARG (nothing evaluated) if a token is out of range or the context would overflow. */
G4C_API g4c_status g4c_session_eval(g4c_session *s, const int32_t *tokens, int n, float *logits, int logits_mode,
                                    g4c_err *err);

/* ---- images (spec §4) ---- */
/* Hidden size of the text model: the width of one soft token. */
G4C_API int g4c_model_n_embd(const g4c_model *model);
/* 1 when the checkpoint has a usable vision tower. */
G4C_API int g4c_model_has_vision(const g4c_model *model);
/* Token id of the image soft-token placeholder (<|image|>) and the begin/end-of-image markers. */
G4C_API int32_t g4c_model_image_token(const g4c_model *model);
G4C_API int32_t g4c_model_boi_token(const g4c_model *model);
G4C_API int32_t g4c_model_eoi_token(const g4c_model *model);
/* Encode one preprocessed image: patches [n_patches][768] (values in [0,1]) and positions [n_patches][2] = (x, y).
 * Writes n_patches / 9 soft tokens of g4c_model_n_embd floats each to out. Runs on the GPU once a CUDA session of
 * the model exists (env G4C_CUDA_VISION=0 keeps it on the CPU), else on the CPU. */
G4C_API g4c_status g4c_model_encode_image(g4c_model *model, const float *patches, const int32_t *positions,
                                          int n_patches, float *out, g4c_err *err);
/* Like g4c_session_eval, for a prompt that contains image placeholders: soft [n_soft][n_embd] replaces the
 * placeholder tokens in order; n_soft must equal the number of placeholders in tokens (the error says both). */
G4C_API g4c_status g4c_session_eval_mm(g4c_session *s, const int32_t *tokens, int n, const float *soft, int n_soft,
                                       float *logits, int logits_mode, g4c_err *err);

/* Sampling (spec §7). temperature <= 0 means greedy (argmax, lowest id wins ties). */
/* Order: penalties (on the raw logits) -> temperature -> top-k -> top-p -> min-p -> draw. */
typedef struct {
    uint32_t struct_size;
    float temperature;      /* 1.0 in Gemma 4's generation_config */
    int top_k;              /* 64; <= 0 disables */
    float top_p;            /* 0.95; >= 1 disables */
    uint64_t seed;          /* xorshift state seed: the same seed replays the same choices */
    float min_p;            /* drop tokens below min_p x the top probability; 0 disables */
    float repeat_penalty;   /* > 1 discourages tokens among the last penalty_last_n (llama.cpp style); 1 disables */
    float presence_penalty; /* subtracted once from the logit of every token among the last penalty_last_n */
    int penalty_last_n;     /* history window for the penalties (64) */
} g4c_sampler_params;

typedef struct g4c_sampler g4c_sampler;
G4C_API g4c_sampler_params g4c_sampler_default_params(void);
G4C_API g4c_status g4c_sampler_init(g4c_sampler **out, const g4c_sampler_params *params, int n_vocab, g4c_err *err);
G4C_API void g4c_sampler_free(g4c_sampler *s);
/* Pick a token from logits [n_vocab] (not modified). Call g4c_sampler_accept with every token that enters the
 * sequence (prompt included, if the penalties should see it). */
G4C_API int32_t g4c_sampler_sample(g4c_sampler *s, const float *logits);
G4C_API void g4c_sampler_accept(g4c_sampler *s, int32_t token);
/* Sampling defaults from the checkpoint's generation_config.json (temperature/top_k/top_p; greedy when do_sample
 * is false), else Gemma 4's published 1.0 / 64 / 0.95. */
G4C_API g4c_sampler_params g4c_model_sampler_defaults(const g4c_model *model);

typedef void (*g4c_log_fn)(int level, const char *msg, void *user);
enum { G4C_LOG_ERROR = 0, G4C_LOG_WARN = 1, G4C_LOG_INFO = 2, G4C_LOG_DEBUG = 3 };
/* Install a process-wide log callback (NULL = silent, the default). */
G4C_API void g4c_log_set(g4c_log_fn fn, void *user);

G4C_API const char *g4c_status_str(g4c_status s);
G4C_API const char *g4c_version(void);

#ifdef __cplusplus
}
#endif
#endif /* GEMMA4C_H */
