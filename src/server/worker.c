/* The server's model side: loading, the bounded job queue, request preparation and the worker threads.
 * Each worker owns a g4c_model instance (the weights are memory-mapped, so instances share them through the page
 * cache; a model's thread pool runs one batch at a time, so two sessions must not share it) and one session,
 * and runs one job at a time. A worker keeps the previous prompt in its KV cache and re-evaluates only what
 * differs (up to the first image: placeholders of different images have equal ids). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/server.h"

typedef struct srv_worker {
    srv *s;
    int idx;
    pthread_t thread;
    g4c_session *sess;
    int32_t *cached; /* tokens of the last prompt (its KV entries are valid) */
    int n_cached;
    srv_job *job;    /* the job being run (under s->qmu) */
} srv_worker;

/* ---- checkpoint side files (small local copies of cmd_run.c's helpers) ---- */

/* ---- jobs ---- */

void srv_job_release(srv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    const int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left) return;
    free(j->prompt);
    for (int i = 0; i < j->n_imgs; i++) free(j->imgs[i].data), free(j->imgs[i].path);
    free(j->imgs);
    for (int i = 0; i < j->n_stop; i++) free(j->stop[i]);
    free(j->stop);
    srv_buf_free(&j->content);
    srv_buf_free(&j->reasoning);
    srv_buf_free(&j->sse);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Decode + preprocess one image (connection thread: to check it and count its soft tokens; worker: to encode). */
static g4c_status image_patches(const srv *s, const srv_image *im, g4c_image_patches *out, g4c_err *err) {
    g4c_image img = {0};
    g4c_status st = im->data ? g4c_image_decode(&img, im->data, im->n_data, im->field, s->cfg.max_pixels, err)
                             : g4c_image_load(&img, im->path, s->cfg.max_pixels, err);
    if (st == G4C_OK) st = g4c_image_preprocess(&img, im->budget, out, err);
    g4c_image_free(&img);
    return st;
}

static int load_images(srv *s, oai_request *req, srv_job *j, oai_error *e) {
    if (!req->n_images) return 0;
    j->imgs = calloc((size_t)req->n_images, sizeof *j->imgs);
    if (!j->imgs) return oai_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    pthread_mutex_lock(&s->img_mu);
    while (s->img_busy >= s->img_max) pthread_cond_wait(&s->img_cv, &s->img_mu);
    s->img_busy++;
    pthread_mutex_unlock(&s->img_mu);
    int rc = 0;
    for (int m = 0; m < req->n_msgs && !rc; m++)
        for (int k = 0; k < req->msgs[m].n_parts && !rc; k++) {
            oai_part *p = &req->msgs[m].parts[k];
            if (!p->is_image) continue;
            if (!s->has_vision) {
                rc = oai_fail(e, 400, "invalid_request_error", p->field, "model_not_multimodal",
                              "%s: the model %s has no vision tower; send text only", p->field, s->model_id);
                break;
            }
            srv_image *im = &j->imgs[j->n_imgs++];
            im->data = p->data, im->n_data = p->n_data, im->path = p->path; /* taken from the request */
            p->data = NULL, p->path = NULL;
            im->budget = p->detail_low ? 70 : s->budget;
            snprintf(im->field, sizeof im->field, "%s", p->field);
            g4c_err err = {0};
            g4c_image_patches ip = {0};
            const g4c_status st = image_patches(s, im, &ip, &err);
            im->n_soft = ip.n_soft_tokens;
            g4c_image_patches_free(&ip);
            if (st == G4C_E_NOMEM) rc = oai_fail(e, 500, "server_error", NULL, NULL, "out of memory");
            else if (st != G4C_OK)
                rc = oai_fail(e, 400, "invalid_request_error", p->field, "invalid_image", "%s: cannot use the image: %s",
                              p->field, err.msg);
        }
    pthread_mutex_lock(&s->img_mu);
    s->img_busy--;
    pthread_cond_signal(&s->img_cv);
    pthread_mutex_unlock(&s->img_mu);
    return rc;
}

static int build_prompt(srv *s, const oai_request *req, srv_job *j, oai_error *e) {
    g4c_chat_msg *msgs = calloc((size_t)req->n_msgs, sizeof *msgs);
    g4c_chat_item *items = NULL;
    int n_items = 0;
    for (int m = 0; m < req->n_msgs; m++) n_items += req->msgs[m].n_parts;
    items = calloc((size_t)(n_items ? n_items : 1), sizeof *items);
    int *img_tokens = calloc((size_t)(j->n_imgs ? j->n_imgs : 1), sizeof *img_tokens);
    if (!msgs || !items || !img_tokens) {
        free(msgs), free(items), free(img_tokens);
        return oai_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    }
    int at = 0;
    for (int m = 0; m < req->n_msgs; m++) {
        const oai_msg *om = &req->msgs[m];
        msgs[m].role = om->role == OAI_ROLE_SYSTEM ? G4C_ROLE_SYSTEM
                       : om->role == OAI_ROLE_USER ? G4C_ROLE_USER : G4C_ROLE_MODEL;
        msgs[m].items = items + at;
        msgs[m].n_items = om->n_parts;
        for (int k = 0; k < om->n_parts; k++, at++) {
            items[at].is_image = om->parts[k].is_image;
            items[at].text = om->parts[k].is_image ? NULL : om->parts[k].text;
        }
    }
    for (int i = 0; i < j->n_imgs; i++) img_tokens[i] = j->imgs[i].n_soft;
    g4c_chat_style style = s->style;
    style.thinking = j->thinking;
    g4c_err err = {0};
    g4c_status st = g4c_prompt_build(s->models[0], s->tok, &style, msgs, req->n_msgs, 1, img_tokens, j->n_imgs,
                                     &j->prompt, &j->n_prompt, &err);
    free(msgs), free(items), free(img_tokens);
    if (st != G4C_OK)
        return oai_fail(e, st == G4C_E_NOMEM ? 500 : 400, st == G4C_E_NOMEM ? "server_error" : "invalid_request_error",
                        "messages", NULL, "cannot build the prompt: %s", err.msg);
    return 0;
}

srv_job *srv_job_prepare(srv *s, oai_request *req, double t_start, oai_error *e) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) {
        oai_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 1;
    j->t_start = t_start;
    j->deadline = s->cfg.timeout_s > 0 ? t_start + s->cfg.timeout_s * 1e3 : 0;
    j->model = s->model_id;
    j->created = (long long)time(NULL);
    j->stream = req->stream;
    j->include_usage = req->include_usage;
    j->thinking = req->thinking >= 0 ? req->thinking : s->cfg.think;
    pthread_mutex_lock(&s->qmu);
    const uint64_t serial = ++s->next_id;
    pthread_mutex_unlock(&s->qmu);
    const uint64_t rnd = mix64(serial ^ ((uint64_t)t_start << 20) ^ (uint64_t)(uintptr_t)j);
    snprintf(j->id, sizeof j->id, "chatcmpl-%016llx%08llx", (unsigned long long)rnd,
             (unsigned long long)(serial & 0xffffffffu));
    if (load_images(s, req, j, e) || build_prompt(s, req, j, e)) {
        srv_job_release(j);
        return NULL;
    }
    const int room = s->n_ctx - j->n_prompt;
    if (room <= 0) {
        oai_fail(e, 400, "invalid_request_error", "messages", "context_length_exceeded",
                 "This model's maximum context length is %d tokens. However, your messages resulted in %d tokens.",
                 s->n_ctx, j->n_prompt);
        srv_job_release(j);
        return NULL;
    }
    if (req->max_tokens > room) {
        oai_fail(e, 400, "invalid_request_error", "max_tokens", "context_length_exceeded",
                 "This model's maximum context length is %d tokens. However, you requested %lld tokens (%d in the "
                 "messages, %d in the completion).", s->n_ctx, (long long)j->n_prompt + req->max_tokens,
                 j->n_prompt, req->max_tokens);
        srv_job_release(j);
        return NULL;
    }
    j->max_tokens = req->max_tokens > 0 ? req->max_tokens
                    : s->cfg.default_max_tokens > 0 && s->cfg.default_max_tokens < room ? s->cfg.default_max_tokens
                    : room;
    g4c_sampler_params sp = s->sdef;
    if (req->has_temperature) sp.temperature = req->temperature;
    if (req->has_top_p) sp.top_p = req->top_p;
    if (req->has_top_k) sp.top_k = req->top_k;
    sp.min_p = req->min_p;
    sp.presence_penalty = req->presence_penalty;
    sp.repeat_penalty = req->repeat_penalty;
    sp.seed = req->has_seed ? req->seed : mix64(rnd ^ (uint64_t)time(NULL));
    if (!sp.seed) sp.seed = 1;
    j->sp = sp;
    if (req->n_stop) {
        j->stop = calloc((size_t)req->n_stop, sizeof *j->stop);
        for (int i = 0; j->stop && i < req->n_stop; i++)
            if ((j->stop[i] = strdup(req->stop[i]))) j->n_stop++;
        if (j->n_stop != req->n_stop) {
            oai_fail(e, 500, "server_error", NULL, NULL, "out of memory");
            srv_job_release(j);
            return NULL;
        }
    }
    return j;
}

/* ---- queue ---- */

int srv_job_submit(srv *s, srv_job *j, oai_error *e) {
    pthread_mutex_lock(&s->qmu);
    int rc = 0;
    if (s->stopping) {
        rc = oai_fail(e, 503, "server_error", NULL, "shutting_down", "the server is shutting down");
    } else if (s->q_len == s->cfg.queue_size) {
        rc = oai_fail(e, 503, "server_error", NULL, "queue_full",
                      "the server is busy: %d requests are waiting; retry later", s->q_len);
    } else {
        pthread_mutex_lock(&j->mu);
        j->refs++; /* the worker's */
        pthread_mutex_unlock(&j->mu);
        s->q[(s->q_head + s->q_len) % s->cfg.queue_size] = j;
        s->q_len++;
        pthread_cond_signal(&s->qcv);
    }
    pthread_mutex_unlock(&s->qmu);
    return rc;
}

int srv_job_unqueue(srv *s, srv_job *j) {
    int found = 0;
    pthread_mutex_lock(&s->qmu);
    for (int i = 0; i < s->q_len; i++) {
        const int at = (s->q_head + i) % s->cfg.queue_size;
        if (s->q[at] != j) continue;
        for (int k = i; k + 1 < s->q_len; k++)
            s->q[(s->q_head + k) % s->cfg.queue_size] = s->q[(s->q_head + k + 1) % s->cfg.queue_size];
        s->q_len--;
        found = 1;
        break;
    }
    pthread_mutex_unlock(&s->qmu);
    if (found) srv_job_release(j); /* the worker's reference */
    return found;
}

int srv_queue_depth(srv *s, int *busy) {
    pthread_mutex_lock(&s->qmu);
    const int n = s->q_len;
    if (busy) *busy = s->busy;
    pthread_mutex_unlock(&s->qmu);
    return n;
}

/* ---- running a job ---- */

static void on_text(void *user, const char *text, size_t len, int thinking) {
    srv_job *j = user;
    pthread_mutex_lock(&j->mu);
    if (j->stream) {
        srv_buf t = {0};
        oai_utf8_append(&t, text, len);
        if (t.p) oai_chunk_sse(&j->sse, j->id, j->model, j->created, 0, thinking ? NULL : t.p, thinking ? t.p : NULL,
                               NULL, NULL, 0);
        srv_buf_free(&t);
    } else {
        oai_utf8_append(thinking ? &j->reasoning : &j->content, text, len);
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static void finish_job(srv *s, srv_job *j, g4c_status rc, const g4c_err *err) {
    pthread_mutex_lock(&j->mu);
    if (rc != G4C_OK && !j->err.status)
        oai_fail(&j->err, 500, "server_error", NULL, NULL, "generation failed: %s", err->msg);
    j->finish = j->st.stop == G4C_STOP_EOG || j->st.stop == G4C_STOP_STRING ? "stop" : "length";
    if (j->stream) {
        if (j->err.status) {
            char *ej = oai_error_json(&j->err);
            srv_buf_printf(&j->sse, "data: %s\n\n", ej ? ej : "{\"error\":{\"message\":\"error\"}}");
            free(ej);
        } else {
            const oai_result r = {.n_prompt = j->st.n_prompt, .n_gen = j->st.n_gen, .st = &j->st};
            oai_chunk_sse(&j->sse, j->id, j->model, j->created, 0, NULL, NULL, j->finish, NULL, 0);
            if (j->include_usage) oai_chunk_sse(&j->sse, j->id, j->model, j->created, 0, NULL, NULL, NULL, &r, 1);
        }
        srv_buf_puts(&j->sse, "data: [DONE]\n\n");
    }
    j->done = 1;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (rc == G4C_OK && j->st.t_total_ms > 0) /* a generation ran */
        srv_metrics_tokens(s->metrics, j->st.n_prompt, j->st.n_gen, j->st.t_prefill_ms, j->st.t_gen_ms);
}

static void run_job(srv_worker *w, srv_job *j) {
    srv *s = w->s;
    g4c_model *m = s->models[w->idx];
    g4c_err err = {0};
    if (j->deadline > 0 && g4c_time_ms() > j->deadline && !j->cancel) { /* waited too long: never start it */
        pthread_mutex_lock(&j->mu);
        j->timed_out = 1;
        oai_fail(&j->err, 503, "server_error", NULL, "timeout", "timed out after %d s waiting for a worker",
                 s->cfg.timeout_s);
        pthread_mutex_unlock(&j->mu);
        finish_job(s, j, G4C_OK, &err);
        return;
    }
    pthread_mutex_lock(&j->mu);
    j->started = 1;
    if (j->stream) oai_chunk_sse(&j->sse, j->id, j->model, j->created, 1, "", NULL, NULL, NULL, 0);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (j->cancel) {
        j->st.n_prompt = j->n_prompt;
        j->st.stop = G4C_STOP_CANCEL;
        finish_job(s, j, G4C_OK, &err);
        return;
    }
    /* images -> soft tokens */
    const int H = g4c_model_n_embd(m);
    int n_soft = 0;
    for (int i = 0; i < j->n_imgs; i++) n_soft += j->imgs[i].n_soft;
    float *soft = n_soft ? malloc(sizeof(float) * (size_t)n_soft * (size_t)H) : NULL;
    g4c_status rc = n_soft && !soft ? G4C_FAIL(&err, G4C_E_NOMEM, "out of memory") : G4C_OK;
    for (int i = 0, at = 0; i < j->n_imgs && rc == G4C_OK && !j->cancel; i++) {
        g4c_image_patches ip = {0};
        rc = image_patches(s, &j->imgs[i], &ip, &err);
        if (rc == G4C_OK && ip.n_soft_tokens != j->imgs[i].n_soft) /* a local file changed since the check */
            rc = G4C_FAIL(&err, G4C_E_ARG, "%s: the image changed while the request waited", j->imgs[i].field);
        if (rc == G4C_OK)
            rc = g4c_model_encode_image(m, ip.patches, ip.positions, ip.n_patches, soft + (size_t)at * H, &err);
        g4c_image_patches_free(&ip);
        at += j->imgs[i].n_soft;
    }
    /* the KV cache's common prefix with the last prompt, up to the first image, minus at least one token */
    int from = 0;
    if (rc == G4C_OK && s->cfg.cache_prompt && w->n_cached > 0) {
        while (from < w->n_cached && from < j->n_prompt - 1 && w->cached[from] == j->prompt[from] &&
               !g4c_is_mm_placeholder(&m->cfg, j->prompt[from]))
            from++;
        if (from > 0 && g4c_session_truncate(w->sess, from, NULL) != G4C_OK) from = 0;
    }
    if (!from) g4c_session_reset(w->sess);
    g4c_sampler *smp = NULL;
    if (rc == G4C_OK) rc = g4c_sampler_init(&smp, &j->sp, g4c_model_n_vocab(m), &err);
    if (rc == G4C_OK && !j->cancel) {
        for (int i = 0; i < from; i++) g4c_sampler_accept(smp, j->prompt[i]); /* penalties see the whole prompt */
        g4c_gen_opts go = {.max_tokens = j->max_tokens, .stop = (const char *const *)j->stop, .n_stop = j->n_stop,
                           .on_text = on_text, .user = j, .cancel = &j->cancel};
        rc = g4c_generate(w->sess, s->tok, smp, j->prompt + from, j->n_prompt - from, soft, n_soft, &go, &j->st, &err);
        j->st.n_prompt = j->n_prompt;
    } else if (rc == G4C_OK) {
        j->st.n_prompt = j->n_prompt;
        j->st.stop = G4C_STOP_CANCEL;
    }
    g4c_sampler_free(smp);
    free(soft);
    /* the cache now holds this prompt (and the answer, which the next prefix match stops short of) */
    free(w->cached);
    w->cached = NULL;
    w->n_cached = 0;
    if (rc == G4C_OK && g4c_session_n_past(w->sess) >= j->n_prompt &&
        (w->cached = malloc(sizeof(int32_t) * (size_t)j->n_prompt))) {
        memcpy(w->cached, j->prompt, sizeof(int32_t) * (size_t)j->n_prompt);
        w->n_cached = j->n_prompt;
    }
    if (rc != G4C_OK) g4c_session_reset(w->sess);
    finish_job(s, j, rc, &err);
}

static void *worker_main(void *arg) {
    srv_worker *w = arg;
    srv *s = w->s;
    for (;;) {
        pthread_mutex_lock(&s->qmu);
        while (!s->q_len && !s->stopping) pthread_cond_wait(&s->qcv, &s->qmu);
        if (s->stopping) {
            pthread_mutex_unlock(&s->qmu);
            break;
        }
        srv_job *j = s->q[s->q_head];
        s->q_head = (s->q_head + 1) % s->cfg.queue_size;
        s->q_len--;
        s->busy++;
        w->job = j;
        pthread_mutex_unlock(&s->qmu);
        run_job(w, j);
        pthread_mutex_lock(&s->qmu);
        s->busy--;
        w->job = NULL;
        pthread_mutex_unlock(&s->qmu);
        srv_job_release(j);
    }
    return NULL;
}

/* ---- lifetime ---- */

int srv_init(srv *s, const srv_config *cfg) {
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    pthread_mutex_init(&s->qmu, NULL);
    pthread_cond_init(&s->qcv, NULL);
    pthread_mutex_init(&s->img_mu, NULL);
    pthread_cond_init(&s->img_cv, NULL);
    s->img_max = g4c_n_cpus() > 4 ? g4c_n_cpus() : 4;
    s->started = (long long)time(NULL);
    const srv_config *c = &s->cfg;
    g4c_err err = {0};
    s->models = calloc((size_t)c->parallel, sizeof *s->models);
    s->workers = calloc((size_t)c->parallel, sizeof *s->workers);
    s->q = calloc((size_t)c->queue_size, sizeof *s->q);
    s->metrics = srv_metrics_new();
    if (!s->models || !s->workers || !s->q || !s->metrics) {
        fprintf(stderr, "gemma4c serve: out of memory\n");
        return 1;
    }
    const int total = c->n_threads > 0 ? c->n_threads : g4c_n_cpus();
    g4c_model_params mp = g4c_model_default_params();
    mp.n_threads = total / c->parallel > 0 ? total / c->parallel : 1;
    mp.mmproj_path = c->mmproj;
    for (int i = 0; i < c->parallel; i++)
        if (g4c_model_load(&s->models[i], c->model_dir, &mp, &err) != G4C_OK) {
            fprintf(stderr, "gemma4c serve: cannot load model: %s\n", err.msg);
            return 1;
        }
    char p[4096];
    snprintf(p, sizeof p, "%s/tokenizer.json", c->model_dir);
    const size_t ml = strlen(c->model_dir);
    const int is_gguf = ml > 5 && !strcmp(c->model_dir + ml - 5, ".gguf"); /* the vocabulary is in its metadata */
    if ((is_gguf ? g4c_tok_load_gguf(&s->tok, c->model_dir, &err) : g4c_tok_load(&s->tok, p, &err)) != G4C_OK) {
        fprintf(stderr, "gemma4c serve: cannot load the tokenizer: %s\n", err.msg);
        return 1;
    }
    g4c_err serr = {0};
    if (g4c_tok_apply_gemma4_specials(s->tok, &serr) != G4C_OK)
        fprintf(stderr, "gemma4c serve: warning: tokenizer is not Gemma's 262144-piece vocabulary: %s\n", serr.msg);
    char *tt = g4c_checkpoint_chat_template(c->model_dir);
    s->style = g4c_chat_style_for(&s->models[0]->cfg, tt);
    free(tt);
    if (c->chat_style && !strcmp(c->chat_style, "small")) s->style.empty_thought_channel = 0;
    if (c->chat_style && !strcmp(c->chat_style, "large")) s->style.empty_thought_channel = 1;
    s->budget = c->image_budget ? c->image_budget : g4c_checkpoint_image_budget(c->model_dir);
    s->has_vision = g4c_model_has_vision(s->models[0]);
    s->sdef = g4c_model_sampler_defaults(s->models[0]);
    if (c->alias) {
        snprintf(s->model_id, sizeof s->model_id, "%s", c->alias);
    } else {
        size_t l = strlen(c->model_dir);
        while (l > 1 && c->model_dir[l - 1] == '/') l--;
        size_t b = l;
        while (b > 0 && c->model_dir[b - 1] != '/') b--;
        snprintf(s->model_id, sizeof s->model_id, "%.*s", (int)(l - b), c->model_dir + b);
    }
    g4c_session_params sp = g4c_session_default_params();
    sp.n_ctx = c->n_ctx ? c->n_ctx : 8192;
    if (sp.n_ctx > g4c_model_n_ctx_train(s->models[0])) sp.n_ctx = g4c_model_n_ctx_train(s->models[0]);
    /* a "vision"-masked model evaluates an image block in one chunk: <|image> + budget x <|image|> + <image|> */
    if (s->budget + 2 > 512) sp.n_ubatch = s->budget + 2;
    for (int i = 0; i < c->parallel; i++) {
        srv_worker *w = &s->workers[i];
        w->s = s;
        w->idx = i;
        if (g4c_session_init(&w->sess, s->models[i], &sp, &err) != G4C_OK) {
            fprintf(stderr, "gemma4c serve: cannot create a session: %s\n", err.msg);
            return 1;
        }
    }
    s->n_ctx = g4c_session_n_ctx(s->workers[0].sess);
    for (int i = 0; i < c->parallel; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
            fprintf(stderr, "gemma4c serve: cannot start worker %d\n", i);
            return 1;
        }
        s->n_workers_started++;
    }
    return 0;
}

void srv_shutdown(srv *s) {
    pthread_mutex_lock(&s->qmu);
    s->stopping = 1;
    while (s->q_len) { /* waiting jobs are answered 503 */
        srv_job *j = s->q[s->q_head];
        s->q_head = (s->q_head + 1) % s->cfg.queue_size;
        s->q_len--;
        pthread_mutex_lock(&j->mu);
        oai_fail(&j->err, 503, "server_error", NULL, "shutting_down", "the server is shutting down");
        if (j->stream) {
            char *ej = oai_error_json(&j->err);
            srv_buf_printf(&j->sse, "data: %s\n\ndata: [DONE]\n\n", ej ? ej : "{}");
            free(ej);
        }
        j->done = 1;
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
        pthread_mutex_unlock(&s->qmu);
        srv_job_release(j);
        pthread_mutex_lock(&s->qmu);
    }
    for (int i = 0; i < s->n_workers_started; i++)
        if (s->workers[i].job) s->workers[i].job->cancel = 1;
    pthread_cond_broadcast(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
    for (int i = 0; i < s->n_workers_started; i++) pthread_join(s->workers[i].thread, NULL);
    s->n_workers_started = 0;
}

void srv_free(srv *s) {
    if (s->n_workers_started) srv_shutdown(s);
    for (int i = 0; s->workers && i < s->cfg.parallel; i++) {
        g4c_session_free(s->workers[i].sess);
        free(s->workers[i].cached);
    }
    for (int i = 0; s->models && i < s->cfg.parallel; i++) g4c_model_free(s->models[i]);
    free(s->models);
    free(s->workers);
    free(s->q);
    g4c_tok_free(s->tok);
    srv_metrics_free(s->metrics);
    pthread_mutex_destroy(&s->qmu);
    pthread_cond_destroy(&s->qcv);
    pthread_mutex_destroy(&s->img_mu);
    pthread_cond_destroy(&s->img_cv);
    memset(s, 0, sizeof *s);
}
