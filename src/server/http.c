/* HTTP side of `gemma4c serve` (libmicrohttpd, one thread per connection): routing, API key, body limits checked
 * before anything is buffered, waiting for a job while watching the client's socket (a hang-up cancels the
 * generation), and server-sent events for stream: true. Every error is an OpenAI error object. */
#include <stdatomic.h>
#include <time.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "server/server.h"

struct http_state {
    struct MHD_Daemon *d;
    int port;
};

/* requests between their first callback and MHD's "completed": http_stop lets them finish sending */
static atomic_int g_inflight;

enum { R_NONE, R_CHAT, R_MODELS, R_MODEL, R_HEALTH, R_METRICS };

typedef struct {
    double t0;        /* ms: the request's arrival */
    int route;
    srv_buf body;
    int responded;    /* a response is queued: ignore further upload data */
    int too_big;      /* a chunked body passed --max-body: the rest is discarded, then 413 */
    size_t discarded;
    char method[8], url[64]; /* for the access log */
} conn_ctx;

typedef struct {
    srv *s;
    srv_job *j;
    conn_ctx *cc;
    struct MHD_Connection *c;
    double t0;
    MHD_socket fd;
    double deadline;  /* ms, 0 = none */
    int gone;         /* the client hung up */
} stream_ctx;

/* ---- helpers ---- */

static void log_request(const srv *s, const conn_ctx *cc, int status, double ms) {
    if (s->cfg.verbose) fprintf(stderr, "gemma4c serve: %s %s -> %d (%.1f ms)\n", cc->method, cc->url, status, ms);
}

static enum MHD_Result respond(srv *s, conn_ctx *cc, struct MHD_Connection *c, int status, char *body,
                               const char *ctype, int retry_after, const char *allow) {
    if (!body) { /* out of memory building it */
        status = 500;
        body = strdup("{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,"
                      "\"code\":null}}");
        if (!body) return MHD_NO;
        ctype = "application/json";
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (retry_after) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_after);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (status == 401) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    const enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    const double ms = g4c_time_ms() - cc->t0;
    srv_metrics_request(s->metrics, status, ms / 1e3);
    log_request(s, cc, status, ms);
    cc->responded = 1;
    return ret;
}

static enum MHD_Result respond_error(srv *s, conn_ctx *cc, struct MHD_Connection *c, const oai_error *e,
                                     const char *allow) {
    return respond(s, cc, c, e->status, oai_error_json(e), "application/json", e->status == 503 ? 1 : 0, allow);
}

static enum MHD_Result fail(srv *s, conn_ctx *cc, struct MHD_Connection *c, int status, const char *type,
                            const char *code, const char *allow, const char *msg) {
    oai_error e = {0};
    oai_fail(&e, status, type, NULL, code, "%s", msg);
    return respond_error(s, cc, c, &e, allow);
}

/* 1 when the peer closed the connection (or it broke). */
static int client_gone(MHD_socket fd) {
    if (fd == MHD_INVALID_SOCKET) return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return 1;
    if (p.revents & POLLIN) {
        char ch;
        const ssize_t n = recv(fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0) return 1;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return 1;
    }
    return 0;
}

static MHD_socket conn_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : MHD_INVALID_SOCKET;
}

static void wait_ms(srv_job *j, int ms) { /* with j->mu held */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&j->cv, &j->mu, &ts);
}

static int route_of(const char *url, const char **allow) {
    *allow = "GET, HEAD";
    if (!strcmp(url, "/v1/chat/completions") || !strcmp(url, "/chat/completions")) {
        *allow = "POST";
        return R_CHAT;
    }
    if (!strcmp(url, "/v1/models") || !strcmp(url, "/models")) return R_MODELS;
    if (!strncmp(url, "/v1/models/", 11) && url[11]) return R_MODEL;
    if (!strcmp(url, "/health") || !strcmp(url, "/v1/health")) return R_HEALTH;
    if (!strcmp(url, "/metrics")) return R_METRICS;
    return R_NONE;
}

static int authorized(const srv *s, struct MHD_Connection *c) {
    if (!s->cfg.api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7)) return 0;
    h += 7;
    const size_t lk = strlen(s->cfg.api_key), lh = strlen(h);
    unsigned char diff = lk != lh;
    for (size_t i = 0; i < lh; i++) diff |= (unsigned char)(h[i] ^ s->cfg.api_key[i % (lk ? lk : 1)]);
    return diff == 0;
}

/* Idle keep-alive connections are closed after this many seconds (G4C_SERVE_IDLE_S overrides it, for tests). */
static unsigned idle_timeout_s(void) {
    const char *e = getenv("G4C_SERVE_IDLE_S");
    const long v = e ? strtol(e, NULL, 10) : 0;
    return v > 0 && v < 86400 ? (unsigned)v : 60;
}

/* The time a stream spends waiting for text is not idleness: restart the connection's idle clock (setting the
 * timeout from 0 is what makes libmicrohttpd take "now" as the last activity). */
static void touch(struct MHD_Connection *c) {
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)0);
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, idle_timeout_s());
}

/* ---- streaming ---- */

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    stream_ctx *sc = cls;
    srv_job *j = sc->j;
    (void)pos;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        if (j->sse.len > j->sse_off) {
            size_t n = j->sse.len - j->sse_off;
            if (n > max) n = max;
            memcpy(buf, j->sse.p + j->sse_off, n);
            j->sse_off += n;
            if (j->sse_off == j->sse.len) j->sse_off = j->sse.len = 0;
            pthread_mutex_unlock(&j->mu);
            touch(sc->c);
            return (ssize_t)n;
        }
        if (j->done) {
            pthread_mutex_unlock(&j->mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        wait_ms(j, 50);
        if (j->done || j->sse.len > j->sse_off) continue;
        pthread_mutex_unlock(&j->mu);
        if (client_gone(sc->fd)) {
            sc->gone = 1;
            j->cancel = 1;
            srv_job_unqueue(sc->s, j);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (sc->deadline > 0 && g4c_time_ms() > sc->deadline && !j->timed_out) {
            const int unq = srv_job_unqueue(sc->s, j);
            pthread_mutex_lock(&j->mu);
            j->timed_out = 1;
            j->cancel = 1;
            if (unq) { /* never started: end the stream with an error event */
                oai_error e = {0};
                oai_fail(&e, 503, "server_error", NULL, "timeout", "timed out after %d s waiting for a worker",
                         sc->s->cfg.timeout_s);
                char *ej = oai_error_json(&e);
                srv_buf_printf(&j->sse, "data: %s\n\ndata: [DONE]\n\n", ej ? ej : "{}");
                free(ej);
                j->done = 1;
            }
            continue; /* j->mu is held */
        }
        pthread_mutex_lock(&j->mu);
    }
}

static void sse_free(void *cls) {
    stream_ctx *sc = cls;
    srv_job *j = sc->j;
    pthread_mutex_lock(&j->mu);
    const int complete = j->done && j->sse.len == j->sse_off;
    pthread_mutex_unlock(&j->mu);
    if (!complete) { /* the client went away or the write failed: stop the generation */
        j->cancel = 1;
        srv_job_unqueue(sc->s, j);
    }
    srv_metrics_request(sc->s->metrics, complete ? 200 : 499, (g4c_time_ms() - sc->t0) / 1e3);
    srv_job_release(j);
    free(sc);
}

/* ---- /v1/chat/completions ---- */

static enum MHD_Result chat(srv *s, conn_ctx *cc, struct MHD_Connection *c) {
    oai_request req;
    oai_error e = {0};
    const int prc = oai_parse_request(cc->body.p ? cc->body.p : "", cc->body.len, &s->cfg.lim, &req, &e);
    srv_buf_free(&cc->body);
    if (prc) return respond_error(s, cc, c, &e, NULL);
    if (srv_queue_depth(s, NULL) >= s->cfg.queue_size) { /* before the costly part */
        oai_request_free(&req);
        return fail(s, cc, c, 503, "server_error", "queue_full", NULL, "the server is busy; retry later");
    }
    srv_job *j = srv_job_prepare(s, &req, cc->t0, &e);
    oai_request_free(&req);
    if (!j) return respond_error(s, cc, c, &e, NULL);
    if (srv_job_submit(s, j, &e)) {
        srv_job_release(j);
        return respond_error(s, cc, c, &e, NULL);
    }
    const double deadline = s->cfg.timeout_s > 0 ? cc->t0 + s->cfg.timeout_s * 1e3 : 0;
    const MHD_socket fd = conn_fd(c);
    if (j->stream) {
        stream_ctx *sc = calloc(1, sizeof *sc);
        struct MHD_Response *r =
            sc ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_reader, sc, sse_free) : NULL;
        if (!r) {
            free(sc);
            j->cancel = 1;
            srv_job_unqueue(s, j);
            srv_job_release(j);
            return fail(s, cc, c, 500, "server_error", NULL, NULL, "out of memory");
        }
        *sc = (stream_ctx){.s = s, .j = j, .cc = cc, .c = c, .t0 = cc->t0, .fd = fd, .deadline = deadline};
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(r, "X-Accel-Buffering", "no");
        const enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r); /* sse_free runs when MHD is done with it (or could not queue it) */
        cc->responded = 1;
        return ret;
    }
    /* wait for the answer, watching the socket and the clock */
    pthread_mutex_lock(&j->mu);
    while (!j->done) {
        wait_ms(j, 50);
        if (j->done) break;
        pthread_mutex_unlock(&j->mu);
        if (client_gone(fd)) {
            j->cancel = 1;
            srv_job_unqueue(s, j);
            srv_job_release(j);
            srv_metrics_request(s->metrics, 499, (g4c_time_ms() - cc->t0) / 1e3);
            cc->responded = 1;
            return MHD_NO; /* close the connection */
        }
        if (deadline > 0 && g4c_time_ms() > deadline && !j->timed_out) {
            if (srv_job_unqueue(s, j)) {
                srv_job_release(j);
                oai_fail(&e, 503, "server_error", NULL, "timeout", "timed out after %d s waiting for a worker",
                         s->cfg.timeout_s);
                return respond_error(s, cc, c, &e, NULL);
            }
            j->timed_out = 1; /* running: stop it; the answer so far comes back with finish_reason "length" */
            j->cancel = 1;
        }
        pthread_mutex_lock(&j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    touch(c);
    enum MHD_Result ret;
    if (j->err.status) {
        ret = respond_error(s, cc, c, &j->err, NULL);
    } else if (j->content.oom || j->reasoning.oom) {
        ret = fail(s, cc, c, 500, "server_error", NULL, NULL, "out of memory");
    } else {
        const oai_result r = {.id = j->id, .model = j->model, .created = j->created,
                              .content = j->content.p ? j->content.p : "",
                              .reasoning = j->thinking ? (j->reasoning.p ? j->reasoning.p : "") : NULL,
                              .finish_reason = j->finish ? j->finish : "length",
                              .n_prompt = j->st.n_prompt, .n_gen = j->st.n_gen, .st = &j->st};
        ret = respond(s, cc, c, 200, oai_completion_json(&r), "application/json", 0, NULL);
    }
    srv_job_release(j);
    return ret;
}

/* ---- dispatch ---- */

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size,
                               void **con_cls) {
    srv *s = cls;
    conn_ctx *cc = *con_cls;
    (void)version;
    if (!cc) { /* headers are in; nothing of the body has been read */
        if (!(cc = calloc(1, sizeof *cc))) return MHD_NO;
        cc->t0 = g4c_time_ms();
        *con_cls = cc;
        atomic_fetch_add(&g_inflight, 1);
        snprintf(cc->method, sizeof cc->method, "%s", method);
        snprintf(cc->url, sizeof cc->url, "%s", url);
        const char *allow;
        cc->route = route_of(url, &allow);
        if (cc->route == R_NONE)
            return fail(s, cc, c, 404, "invalid_request_error", "not_found", NULL, "no such endpoint");
        const int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        if (cc->route == R_CHAT ? strcmp(method, "POST") != 0 : !is_get)
            return fail(s, cc, c, 405, "invalid_request_error", "method_not_allowed", allow,
                        "method not allowed for this endpoint");
        if (!strncmp(url, "/v1/", 4) && !authorized(s, c))
            return fail(s, cc, c, 401, "authentication_error", "invalid_api_key", NULL,
                        "Incorrect API key provided (send it as 'Authorization: Bearer KEY')");
        if (cc->route == R_CHAT) {
            const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            const unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
            if (n > s->cfg.max_body) {
                /* Answering now makes libmicrohttpd close the connection with the body unread, and a client still
                 * sending it may see a reset before the answer. So: right away for a client waiting on
                 * "Expect: 100-continue" (it sends nothing) or a body past 4x the limit; else the body is read
                 * and dropped (nothing is kept) and 413 comes at its end. */
                const char *ex = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
                if ((ex && !strcmp(ex, "100-continue")) || n > 4 * (unsigned long long)s->cfg.max_body) {
                    char m[160];
                    snprintf(m, sizeof m, "the request body is larger than the %zu-byte limit (--max-body)",
                             s->cfg.max_body);
                    return fail(s, cc, c, 413, "invalid_request_error", "request_too_large", NULL, m);
                }
                cc->too_big = 1;
            }
            return MHD_YES; /* wait for the body */
        }
        if (cc->route == R_HEALTH) return respond(s, cc, c, 200, strdup("{\"status\":\"ok\"}"), "application/json", 0, NULL);
        if (cc->route == R_MODELS)
            return respond(s, cc, c, 200, oai_models_json(s->model_id, s->started, 0), "application/json", 0, NULL);
        if (cc->route == R_MODEL) {
            if (strcmp(url + 11, s->model_id))
                return fail(s, cc, c, 404, "invalid_request_error", "model_not_found", NULL, "no such model");
            return respond(s, cc, c, 200, oai_models_json(s->model_id, s->started, 1), "application/json", 0, NULL);
        }
        int busy = 0;
        const int depth = srv_queue_depth(s, &busy);
        return respond(s, cc, c, 200, srv_metrics_render(s->metrics, depth, s->cfg.queue_size, busy, s->cfg.parallel),
                       "text/plain; version=0.0.4; charset=utf-8", 0, NULL);
    }
    if (cc->responded) { /* answered already (an error): drop the rest of the body */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        const size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (cc->too_big || cc->body.len + n > s->cfg.max_body) {
            /* A chunked upload has no Content-Length to check first, and libmicrohttpd cannot answer before the
             * body is read: drop the body (nothing is kept) and answer 413 at its end; a sender that goes on past
             * 4x the limit is cut off. */
            srv_buf_free(&cc->body);
            cc->too_big = 1;
            cc->discarded += n;
            if (cc->discarded > 4 * s->cfg.max_body) {
                srv_metrics_request(s->metrics, 413, (g4c_time_ms() - cc->t0) / 1e3);
                cc->responded = 1;
                return MHD_NO;
            }
            return MHD_YES;
        }
        if (srv_buf_put(&cc->body, upload_data, n)) {
            srv_buf_free(&cc->body);
            return fail(s, cc, c, 500, "server_error", NULL, NULL, "out of memory");
        }
        return MHD_YES;
    }
    if (cc->too_big) {
        char m[160];
        snprintf(m, sizeof m, "the request body is larger than the %zu-byte limit (--max-body)", s->cfg.max_body);
        return fail(s, cc, c, 413, "invalid_request_error", "request_too_large", NULL, m);
    }
    return chat(s, cc, c);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)c, (void)toe;
    conn_ctx *cc = *con_cls;
    if (!cc) return;
    atomic_fetch_sub(&g_inflight, 1);
    srv_buf_free(&cc->body);
    free(cc);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    const srv *s = cls;
    if (!getenv("G4C_SERVE_DEBUG")) return;
    (void)s;
    fputs("gemma4c serve: mhd: ", stderr);
    vfprintf(stderr, fmt, ap);
}

int http_start(srv *s) {
    struct http_state *h = calloc(1, sizeof *h);
    if (!h) return 1;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    const int gai = getaddrinfo(s->cfg.host, NULL, &hints, &ai);
    if (gai || !ai) {
        fprintf(stderr, "gemma4c serve: cannot resolve --host %s: %s\n", s->cfg.host, gai_strerror(gai));
        free(h);
        return 1;
    }
    struct sockaddr_storage ss = {0};
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    const int v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    if (v6) ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)s->cfg.port);
    else ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)s->cfg.port);
    const unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                           MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    h->d = MHD_start_daemon(flags, (uint16_t)s->cfg.port, NULL, NULL, handler, s,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->cfg.max_conn,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)idle_timeout_s(),
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                            MHD_OPTION_END);
    if (!h->d) {
        fprintf(stderr, "gemma4c serve: cannot listen on %s:%d (in use, or not an address of this machine?)\n",
                s->cfg.host, s->cfg.port);
        free(h);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : s->cfg.port;
    s->http = h;
    return 0;
}

int http_port(const srv *s) { return s->http ? s->http->port : 0; }

void http_stop(srv *s) {
    if (!s->http) return;
    /* the workers have answered (or cancelled) every job: give the connection threads up to 3 s to send those
     * answers before the daemon closes the sockets (a cut-short answer must still reach its client) */
    for (int i = 0; i < 300 && atomic_load(&g_inflight) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(s->http->d);
    free(s->http);
    s->http = NULL;
}
