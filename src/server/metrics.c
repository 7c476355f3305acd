/* Server metrics in the Prometheus text exposition format (version 0.0.4): requests by status, tokens in and
 * out, queue depth, prompt and generation speed, and a request latency histogram. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
#define N_BUCKETS (int)(sizeof buckets / sizeof *buckets)
static const int codes[] = {200, 400, 401, 404, 405, 413, 500, 503};
#define N_CODES (int)(sizeof codes / sizeof *codes)

struct srv_metrics {
    pthread_mutex_t mu;
    unsigned long long by_code[N_CODES + 1]; /* last: any other status */
    unsigned long long hist[N_BUCKETS + 1];  /* non-cumulative; last = above every bound */
    double latency_sum;
    unsigned long long n_requests;
    unsigned long long prompt_tokens, gen_tokens, n_generations;
    double prefill_s, gen_s;                 /* totals */
    double last_prompt_tps, last_gen_tps;
};

srv_metrics *srv_metrics_new(void) {
    srv_metrics *m = calloc(1, sizeof *m);
    if (m) pthread_mutex_init(&m->mu, NULL);
    return m;
}

void srv_metrics_free(srv_metrics *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void srv_metrics_request(srv_metrics *m, int status, double seconds) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < N_CODES && codes[i] != status) i++;
    m->by_code[i]++;
    int b = 0;
    while (b < N_BUCKETS && seconds > buckets[b]) b++;
    m->hist[b]++;
    m->latency_sum += seconds > 0 ? seconds : 0;
    m->n_requests++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_tokens(srv_metrics *m, int n_prompt, int n_gen, double prefill_ms, double gen_ms) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += (unsigned long long)(n_prompt > 0 ? n_prompt : 0);
    m->gen_tokens += (unsigned long long)(n_gen > 0 ? n_gen : 0);
    m->n_generations++;
    m->prefill_s += prefill_ms / 1e3;
    m->gen_s += gen_ms / 1e3;
    if (prefill_ms > 0) m->last_prompt_tps = n_prompt / (prefill_ms / 1e3);
    if (gen_ms > 0) m->last_gen_tps = n_gen / (gen_ms / 1e3);
    pthread_mutex_unlock(&m->mu);
}

static void metric(srv_buf *b, const char *name, const char *type, const char *help) {
    srv_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *srv_metrics_render(srv_metrics *m, int queue_depth, int queue_cap, int busy, int workers) {
    srv_buf b = {0};
    pthread_mutex_lock(&m->mu);
    metric(&b, "gemma4c_requests_total", "counter", "HTTP requests answered, by status code.");
    for (int i = 0; i <= N_CODES; i++)
        if (i < N_CODES) srv_buf_printf(&b, "gemma4c_requests_total{code=\"%d\"} %llu\n", codes[i], m->by_code[i]);
        else srv_buf_printf(&b, "gemma4c_requests_total{code=\"other\"} %llu\n", m->by_code[i]);
    metric(&b, "gemma4c_prompt_tokens_total", "counter", "Prompt tokens evaluated (image soft tokens included).");
    srv_buf_printf(&b, "gemma4c_prompt_tokens_total %llu\n", m->prompt_tokens);
    metric(&b, "gemma4c_completion_tokens_total", "counter", "Tokens generated.");
    srv_buf_printf(&b, "gemma4c_completion_tokens_total %llu\n", m->gen_tokens);
    metric(&b, "gemma4c_generations_total", "counter", "Generations run by the workers.");
    srv_buf_printf(&b, "gemma4c_generations_total %llu\n", m->n_generations);
    metric(&b, "gemma4c_prompt_seconds_total", "counter", "Time spent evaluating prompts.");
    srv_buf_printf(&b, "gemma4c_prompt_seconds_total %.6f\n", m->prefill_s);
    metric(&b, "gemma4c_generation_seconds_total", "counter", "Time spent generating tokens.");
    srv_buf_printf(&b, "gemma4c_generation_seconds_total %.6f\n", m->gen_s);
    metric(&b, "gemma4c_prompt_tokens_per_second", "gauge", "Prompt evaluation speed of the last generation.");
    srv_buf_printf(&b, "gemma4c_prompt_tokens_per_second %.3f\n", m->last_prompt_tps);
    metric(&b, "gemma4c_generation_tokens_per_second", "gauge", "Generation speed of the last generation.");
    srv_buf_printf(&b, "gemma4c_generation_tokens_per_second %.3f\n", m->last_gen_tps);
    metric(&b, "gemma4c_request_duration_seconds", "histogram", "Time from request arrival to the last byte queued.");
    unsigned long long cum = 0;
    for (int i = 0; i < N_BUCKETS; i++) {
        cum += m->hist[i];
        srv_buf_printf(&b, "gemma4c_request_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets[i], cum);
    }
    cum += m->hist[N_BUCKETS];
    srv_buf_printf(&b, "gemma4c_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    srv_buf_printf(&b, "gemma4c_request_duration_seconds_sum %.6f\n", m->latency_sum);
    srv_buf_printf(&b, "gemma4c_request_duration_seconds_count %llu\n", m->n_requests);
    pthread_mutex_unlock(&m->mu);
    metric(&b, "gemma4c_queue_depth", "gauge", "Requests waiting for a worker.");
    srv_buf_printf(&b, "gemma4c_queue_depth %d\n", queue_depth);
    metric(&b, "gemma4c_queue_capacity", "gauge", "Requests that may wait before new ones get 503.");
    srv_buf_printf(&b, "gemma4c_queue_capacity %d\n", queue_cap);
    metric(&b, "gemma4c_requests_processing", "gauge", "Requests a worker is running.");
    srv_buf_printf(&b, "gemma4c_requests_processing %d\n", busy);
    metric(&b, "gemma4c_workers", "gauge", "Worker sessions (--parallel).");
    srv_buf_printf(&b, "gemma4c_workers %d\n", workers);
    if (b.oom) {
        srv_buf_free(&b);
        return NULL;
    }
    return b.p;
}
