/* server: `gemma4c serve`, an OpenAI-compatible HTTP server (issue 8, docs/SERVER.md).
 *
 *   http.c    libmicrohttpd plumbing: routing, API key, body limits, waiting for a job, server-sent events
 *   openai.c  OpenAI request parsing/validation (untrusted JSON -> oai_request) and response/error JSON
 *   worker.c  the bounded job queue, request preparation (images -> patches, chat -> token ids, context check)
 *             and the worker threads: each owns one g4c_model instance + session and runs one job at a time
 *   metrics.c counters, gauges and the latency histogram, rendered as Prometheus text
 *
 * Threads: libmicrohttpd runs one thread per connection. A connection thread parses and prepares its request,
 * enqueues a job and waits for it (polling its socket, so a client that hangs up cancels its generation); the
 * worker streams text into the job under the job's lock. A job is reference-counted by the two sides. */
#ifndef G4C_SERVER_SERVER_H
#define G4C_SERVER_SERVER_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "image/image.h"
#include "runtime/runtime.h"

/* ---- growable byte buffer ---- */
typedef struct {
    char *p;
    size_t len, cap;
    int oom; /* an append failed: the content is incomplete */
} srv_buf;
int srv_buf_put(srv_buf *b, const void *s, size_t n);
int srv_buf_puts(srv_buf *b, const char *s);
int srv_buf_printf(srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void srv_buf_free(srv_buf *b);

/* ---- OpenAI requests (openai.c) ---- */

typedef struct {
    int status;         /* HTTP status: 400, 401, 404, 405, 413, 500, 503 */
    const char *type;   /* "invalid_request_error", "authentication_error", "server_error", ... */
    char param[128];    /* the offending field ("messages[1].content[0].image_url.url"), "" = null */
    char code[48];      /* machine-readable code, "" = null */
    char message[640];
} oai_error;
int oai_fail(oai_error *e, int status, const char *type, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* {"error": {"message", "type", "param", "code"}} (malloc'd, NULL when out of memory). */
char *oai_error_json(const oai_error *e);

enum { OAI_ROLE_SYSTEM, OAI_ROLE_USER, OAI_ROLE_ASSISTANT };

typedef struct {
    int is_image;
    char *text;            /* text part (owned) */
    unsigned char *data;   /* image: decoded bytes of a data: URL (owned), or */
    size_t n_data;
    char *path;            /* image: a local file (resolved real path, inside the allowed directory) */
    int detail_low;        /* image_url.detail == "low": the smallest soft-token budget */
    char field[96];        /* "messages[2].content[1]" for error messages */
} oai_part;

typedef struct {
    int role;
    oai_part *parts;
    int n_parts;
} oai_msg;

typedef struct {
    oai_msg *msgs;
    int n_msgs;
    int n_images;
    char *model;           /* requested model name (NULL: not given) */
    int stream, include_usage;
    int max_tokens;        /* -1: not given */
    int has_temperature, has_top_p, has_top_k, has_seed;
    float temperature, top_p, min_p, presence_penalty, frequency_penalty, repeat_penalty;
    int top_k;
    uint64_t seed;
    char **stop;
    int n_stop;
    int thinking;          /* -1: server default; else chat_template_kwargs.enable_thinking / reasoning_effort */
} oai_request;

typedef struct {
    int max_depth;         /* JSON nesting limit */
    int max_messages;
    int max_images;
    int max_stop;          /* stop strings */
    int max_stop_len;      /* bytes per stop string */
    const char *local_dir; /* --allow-local-files: resolved directory, NULL = local paths refused */
} oai_limits;
oai_limits oai_default_limits(void);

/* Parse and validate a /v1/chat/completions body. On failure fills e (status 400 with the field) and leaves req
 * empty; on success req must be released with oai_request_free. Never reads past len; body need not be
 * NUL-terminated. */
int oai_parse_request(const char *body, size_t len, const oai_limits *lim, oai_request *req, oai_error *e);
void oai_request_free(oai_request *req);

/* Helpers, exposed for the fuzz harness and tests. */
int oai_json_depth(const char *s, size_t n);            /* maximum [ / { nesting outside strings */
/* Strict RFC 4648 base64 (whitespace skipped, padding optional): malloc'd bytes, or NULL when the text is not
 * base64 (*bad_at = offset of the offending character). */
unsigned char *oai_base64_decode(const char *s, size_t n, size_t *out_len, size_t *bad_at);
/* Append s to b with invalid UTF-8 replaced by U+FFFD (responses must be valid JSON text). */
void oai_utf8_append(srv_buf *b, const char *s, size_t n);

/* ---- responses (openai.c) ---- */
typedef struct {
    const char *id, *model;
    long long created;
    const char *content, *reasoning; /* reasoning NULL: no reasoning_content field */
    const char *finish_reason;       /* "stop" | "length" */
    int n_prompt, n_gen;
    const g4c_gen_stats *st;
} oai_result;
char *oai_completion_json(const oai_result *r);
/* One SSE event "data: {chat.completion.chunk}\n\n" appended to b. role: the first chunk's delta has the role;
 * content / reasoning: delta text (NULL = absent); finish: NULL = null; r (optional) adds usage and timings;
 * usage_only: the include_usage chunk (empty choices). */
void oai_chunk_sse(srv_buf *b, const char *id, const char *model, long long created, int role, const char *content,
                   const char *reasoning, const char *finish, const oai_result *r, int usage_only);
char *oai_models_json(const char *model, long long created, int single);

/* ---- metrics (metrics.c) ---- */
typedef struct srv_metrics srv_metrics;
srv_metrics *srv_metrics_new(void);
void srv_metrics_free(srv_metrics *m);
void srv_metrics_request(srv_metrics *m, int status, double seconds);
void srv_metrics_tokens(srv_metrics *m, int n_prompt, int n_gen, double prefill_ms, double gen_ms);
/* Prometheus text exposition format 0.0.4; queue depth and busy workers are sampled by the caller. */
char *srv_metrics_render(srv_metrics *m, int queue_depth, int queue_cap, int busy, int workers);

/* ---- the server (worker.c) ---- */
typedef struct {
    const char *model_dir;
    const char *mmproj;      /* a GGUF model's vision projector; NULL = the *mmproj*.gguf beside it */
    const char *host;
    int port;                /* 0: any free port (printed) */
    const char *api_key;     /* NULL: no authentication */
    int parallel;            /* worker sessions */
    int n_ctx;               /* per session; 0 = 8192 capped by the model */
    int n_threads;           /* CPU threads in all (split over workers); 0 = all */
    int image_budget;        /* 0: processor_config.json, else 280 */
    size_t max_body;         /* bytes */
    int timeout_s;           /* per request, queue wait included; 0 = none */
    int queue_size;          /* jobs waiting (not running) */
    int max_conn;            /* simultaneous connections */
    int think;               /* thinking on by default */
    int default_max_tokens;  /* when the request gives none; 0 = the room left in the context */
    uint64_t max_pixels;     /* decoded image pixel limit */
    const char *alias;       /* model id in responses (default: the directory's name) */
    const char *chat_style;  /* auto | small | large */
    int cache_prompt;        /* reuse the KV cache for a common prompt prefix */
    int verbose;             /* one access-log line per request on stderr */
    oai_limits lim;
} srv_config;

typedef struct srv_job srv_job;

typedef struct {
    unsigned char *data;     /* the image file's bytes (taken from the request), or */
    size_t n_data;
    char *path;              /* a local file (--allow-local-files) */
    int budget;              /* soft-token budget */
    int n_soft;              /* soft tokens, as counted when the request was checked */
    char field[96];          /* for messages */
} srv_image;

typedef struct srv {
    srv_config cfg;
    g4c_model **models;      /* [parallel]: one instance per worker (weights are shared through the page cache) */
    g4c_tokenizer *tok;
    g4c_chat_style style;
    g4c_sampler_params sdef;
    int budget, n_ctx, has_vision;
    char model_id[256];
    long long started;
    /* queue */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    srv_job **q;
    int q_head, q_len, busy, stopping;
    struct srv_worker *workers; /* [parallel] */
    int n_workers_started;
    uint64_t next_id;
    srv_metrics *metrics;
    struct http_state *http;
    /* at most img_max connection threads decode images at once (bounds their memory) */
    pthread_mutex_t img_mu;
    pthread_cond_t img_cv;
    int img_busy, img_max;
} srv;

struct srv_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    /* input, fixed once queued */
    int32_t *prompt;
    int n_prompt;
    srv_image *imgs;         /* compressed: decoded again by the worker right before encoding */
    int n_imgs;
    g4c_sampler_params sp;
    int max_tokens;
    char **stop;
    int n_stop;
    int stream, include_usage, thinking;
    char id[48];
    const char *model;       /* the server's model id */
    long long created;
    double t_start;          /* ms, when the request arrived */
    double deadline;         /* ms, 0 = none (--timeout) */
    /* control */
    volatile int cancel;     /* client gone, timeout or shutdown: the generation stops at the next token */
    int timed_out;
    int started, done;
    /* output */
    srv_buf content, reasoning; /* non-streaming */
    srv_buf sse;                /* streaming: events not yet sent start at sse_off */
    size_t sse_off;
    g4c_gen_stats st;
    const char *finish;         /* "stop" | "length" */
    oai_error err;              /* err.status != 0: failed */
};

/* Load model(s), tokenizer and chat style; start workers. Prints problems to stderr; returns 0 on success. */
int srv_init(srv *s, const srv_config *cfg);
void srv_shutdown(srv *s);   /* cancel everything, join workers (call after the HTTP side has stopped) */
void srv_free(srv *s);

/* Turn a parsed request into a job (check and count images, render + tokenize, check the context). Runs in the
 * connection's thread; takes the image bytes out of req. Returns NULL and fills e on failure. t_start: the
 * request's arrival (ms). */
srv_job *srv_job_prepare(srv *s, oai_request *req, double t_start, oai_error *e);
/* Enqueue (takes a reference for the worker); 503 into e when the queue is full or the server is stopping. */
int srv_job_submit(srv *s, srv_job *j, oai_error *e);
/* Remove a job that is still waiting; 1 if it was (the caller then owns its answer), 0 if a worker has it. */
int srv_job_unqueue(srv *s, srv_job *j);
void srv_job_release(srv_job *j);
int srv_queue_depth(srv *s, int *busy);

/* ---- HTTP (http.c) ---- */
int http_start(srv *s);      /* binds cfg.host:cfg.port; prints the address */
int http_port(const srv *s);
void http_stop(srv *s);

#endif
