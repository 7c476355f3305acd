/* eval --endpoint: any OpenAI-compatible chat-completions server (llama-server, Ollama, vLLM, gemma4c serve) over
 * plain HTTP/1.1 on sockets: one request per sample, the image as a base64 data: URL before the text, temperature
 * 0, max_tokens the benchmark's. Every wait has a deadline (connect, send, receive); connection failures and 5xx
 * answers are retried; errors name the URL and quote the server's message. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "eval/eval.h"

#define HTTP_MAX_BODY ((size_t)64 << 20)
#define HTTP_MAX_HEAD ((size_t)64 << 10)

char *eval_base64(const unsigned char *d, size_t n) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n > ((size_t)-1 / 4) * 3 - 3) return NULL;
    char *o = malloc((n + 2) / 3 * 4 + 1), *p = o;
    if (!o) return NULL;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8 | d[i + 2];
        *p++ = t[v >> 18], *p++ = t[v >> 12 & 63], *p++ = t[v >> 6 & 63], *p++ = t[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0);
        *p++ = t[v >> 18], *p++ = t[v >> 12 & 63];
        *p++ = i + 1 < n ? t[v >> 6 & 63] : '=';
        *p++ = '=';
    }
    *p = 0;
    return o;
}

typedef struct {
    char host[256], port[8], path[1024];
} url_parts;

static g4c_status parse_url(const char *url, url_parts *u, g4c_err *err) {
    if (!strncasecmp(url, "https://", 8))
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: https is not supported; use a plain http:// endpoint (or a "
                                                "local TLS proxy)", url);
    if (strncasecmp(url, "http://", 7))
        return G4C_FAIL(err, G4C_E_ARG, "--endpoint %s: expected http://HOST[:PORT][/PATH]", url);
    const char *h = url + 7, *he, *p;
    if (*h == '[') { /* [IPv6] */
        he = strchr(h, ']');
        if (!he) return G4C_FAIL(err, G4C_E_ARG, "--endpoint %s: unclosed '['", url);
        p = he + 1;
        h++;
    } else {
        he = h + strcspn(h, ":/?#");
        p = he;
    }
    if (he == h || (size_t)(he - h) >= sizeof u->host) return G4C_FAIL(err, G4C_E_ARG, "--endpoint %s: bad host", url);
    memcpy(u->host, h, (size_t)(he - h));
    u->host[he - h] = 0;
    snprintf(u->port, sizeof u->port, "80");
    if (*p == ':') {
        p++;
        size_t n = strspn(p, "0123456789");
        long port = n && n < 6 ? strtol(p, NULL, 10) : 0;
        if (port < 1 || port > 65535) return G4C_FAIL(err, G4C_E_ARG, "--endpoint %s: bad port", url);
        snprintf(u->port, sizeof u->port, "%ld", port);
        p += n;
    }
    if (*p && *p != '/') return G4C_FAIL(err, G4C_E_ARG, "--endpoint %s: expected a path after the host", url);
    if (strlen(p) >= sizeof u->path - 32) return G4C_FAIL(err, G4C_E_ARG, "--endpoint %s: path too long", url);
    snprintf(u->path, sizeof u->path, "%s", *p ? p : "/");
    return G4C_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* wait for fd to be ready (events) before the deadline; 0 ok, -1 timeout/error */
static int wait_fd(int fd, short events, double deadline) {
    for (;;) {
        double left = deadline - now_s();
        if (left <= 0) return -1;
        struct pollfd pf = {fd, events, 0};
        int r = poll(&pf, 1, (int)(left * 1000) + 1);
        if (r > 0) return 0;
        if (r < 0 && errno != EINTR) return -1;
    }
}

static int connect_to(const url_parts *u, double deadline, char *why, size_t why_n) {
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(u->host, u->port, &hints, &res);
    if (rc) {
        snprintf(why, why_n, "cannot resolve %s: %s", u->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    snprintf(why, why_n, "cannot connect to %s:%s", u->host, u->port);
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        int c = connect(fd, a->ai_addr, a->ai_addrlen);
        if (c != 0 && errno == EINPROGRESS) {
            int e = 0;
            socklen_t el = sizeof e;
            if (wait_fd(fd, POLLOUT, deadline) != 0) {
                snprintf(why, why_n, "connecting to %s:%s timed out", u->host, u->port);
                c = -1;
            } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e) {
                snprintf(why, why_n, "cannot connect to %s:%s: %s", u->host, u->port, strerror(e ? e : errno));
                c = -1;
            } else c = 0;
        } else if (c != 0) snprintf(why, why_n, "cannot connect to %s:%s: %s", u->host, u->port, strerror(errno));
        if (c != 0) { close(fd); fd = -1; }
    }
    freeaddrinfo(res);
    return fd;
}

static const char *find_header(const char *head, const char *name) {
    const size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n"))
        if (!strncasecmp(p + 2, name, n) && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            while (*v == ' ' || *v == '\t') v++;
            return v;
        }
    return NULL;
}

/* de-chunk in place; returns the new length or -1 */
static long dechunk(char *b, size_t n) {
    size_t r = 0, w = 0;
    for (;;) {
        char *end;
        if (r >= n) return -1;
        unsigned long sz = strtoul(b + r, &end, 16);
        if (end == b + r) return -1;
        char *crlf = memchr(end, '\n', n - (size_t)(end - b));
        if (!crlf) return -1;
        r = (size_t)(crlf - b) + 1;
        if (!sz) return (long)w;
        if (sz > n - r) return -1;
        memmove(b + w, b + r, sz);
        w += sz, r += sz;
        if (r < n && b[r] == '\r') r++;
        if (r < n && b[r] == '\n') r++;
    }
}

static g4c_status http_once(const char *method, const url_parts *u, const char *const *headers, int n_headers,
                            const char *body, size_t body_len, int timeout_s, int *status_out, char **body_out,
                            size_t *len_out, int *retryable, g4c_err *err) {
    const double deadline = now_s() + (timeout_s > 0 ? timeout_s : 600);
    char why[300];
    *retryable = 0;
    int fd = connect_to(u, deadline, why, sizeof why);
    if (fd < 0) {
        *retryable = 1;
        return G4C_FAIL(err, G4C_E_IO, "%s", why);
    }
    char head[2048];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: gemma4c-eval\r\nAccept: application/json\r\n"
                      "Connection: close\r\n",
                      method, u->path, strchr(u->host, ':') ? "[" : "", u->host, strchr(u->host, ':') ? "]" : "",
                      u->port);
    if (body) hn += snprintf(head + hn, sizeof head - (size_t)hn,
                             "Content-Type: application/json\r\nContent-Length: %zu\r\n", body_len);
    g4c_status st = G4C_OK;
    char *resp = NULL;
    size_t rn = 0, rcap = 0;
    /* the header block, the caller's headers, the body */
    const char *parts[3] = {head, NULL, body};
    size_t plen[3] = {(size_t)hn, 0, body ? body_len : 0};
    char *extra = NULL;
    size_t en = 0;
    for (int i = 0; i < n_headers; i++) en += strlen(headers[i]) + 2;
    extra = malloc(en + 3);
    if (!extra) { close(fd); return G4C_FAIL(err, G4C_E_NOMEM, "out of memory"); }
    en = 0;
    for (int i = 0; i < n_headers; i++) en += (size_t)sprintf(extra + en, "%s\r\n", headers[i]);
    en += (size_t)sprintf(extra + en, "\r\n");
    parts[1] = extra, plen[1] = en;
    for (int k = 0; k < 3 && st == G4C_OK; k++) {
        size_t off = 0;
        while (off < plen[k]) {
            if (wait_fd(fd, POLLOUT, deadline) != 0) { st = G4C_FAIL(err, G4C_E_IO, "sending to %s:%s timed out", u->host, u->port); break; }
            ssize_t w = send(fd, parts[k] + off, plen[k] - off, MSG_NOSIGNAL);
            if (w < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (w <= 0) { st = G4C_FAIL(err, G4C_E_IO, "sending to %s:%s: %s", u->host, u->port, strerror(errno)); *retryable = 1; break; }
            off += (size_t)w;
        }
    }
    free(extra);
    /* read to EOF (Connection: close), or until Content-Length is satisfied */
    long want = -1;
    size_t body_at = 0;
    int chunked = 0;
    while (st == G4C_OK) {
        if (body_at && want >= 0 && rn >= body_at + (size_t)want) break;
        /* a chunked body is complete at its zero-size chunk, whether or not the server closes the connection */
        if (body_at && chunked && rn - body_at >= 5 &&
            (!memcmp(resp + rn - 5, "0\r\n\r\n", 5) && (rn - body_at == 5 || resp[rn - 6] == '\n')))
            break;
        if (wait_fd(fd, POLLIN, deadline) != 0) {
            st = G4C_FAIL(err, G4C_E_IO, "no complete answer from %s:%s within %d s (--timeout)", u->host, u->port,
                          timeout_s);
            break;
        }
        if (rcap - rn < 65536) {
            if (rcap > HTTP_MAX_BODY + HTTP_MAX_HEAD) { st = G4C_FAIL(err, G4C_E_FORMAT, "answer from %s:%s is larger than %zu bytes", u->host, u->port, HTTP_MAX_BODY); break; }
            char *g = realloc(resp, rcap + 131072);
            if (!g) { st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory"); break; }
            resp = g, rcap += 131072;
        }
        ssize_t r = recv(fd, resp + rn, rcap - rn - 1, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r < 0) { st = G4C_FAIL(err, G4C_E_IO, "reading from %s:%s: %s", u->host, u->port, strerror(errno)); *retryable = 1; break; }
        if (r == 0) break;
        rn += (size_t)r;
        resp[rn] = 0;
        if (!body_at) {
            char *e = strstr(resp, "\r\n\r\n");
            while (e && !strncmp(resp, "HTTP/1.1 100", 12)) { /* skip 100 Continue */
                size_t skip = (size_t)(e + 4 - resp);
                memmove(resp, resp + skip, rn - skip + 1);
                rn -= skip;
                e = strstr(resp, "\r\n\r\n");
            }
            if (e) {
                body_at = (size_t)(e + 4 - resp);
                e[2] = 0; /* headers end with one \r\n */
                const char *cl = find_header(resp, "Content-Length");
                const char *te = find_header(resp, "Transfer-Encoding");
                chunked = te && !strncasecmp(te, "chunked", 7);
                if (cl && !chunked) want = strtol(cl, NULL, 10);
            } else if (rn > HTTP_MAX_HEAD) { st = G4C_FAIL(err, G4C_E_FORMAT, "%s:%s sent an oversized header", u->host, u->port); break; }
        }
    }
    close(fd);
    if (st == G4C_OK && !body_at) {
        st = G4C_FAIL(err, G4C_E_FORMAT, "%s:%s closed the connection without an HTTP answer", u->host, u->port);
        *retryable = 1;
    }
    int code = 0;
    if (st == G4C_OK && (sscanf(resp, "HTTP/%*d.%*d %d", &code) != 1 || code < 100 || code > 599))
        st = G4C_FAIL(err, G4C_E_FORMAT, "%s:%s: not an HTTP status line: %.60s", u->host, u->port, resp);
    if (st != G4C_OK) { free(resp); return st; }
    size_t blen = rn - body_at;
    if (want >= 0 && blen > (size_t)want) blen = (size_t)want;
    memmove(resp, resp + body_at, blen);
    resp[blen] = 0;
    if (chunked) {
        long dn = dechunk(resp, blen);
        if (dn < 0) {
            free(resp);
            return G4C_FAIL(err, G4C_E_FORMAT, "%s:%s sent a malformed chunked body", u->host, u->port);
        }
        blen = (size_t)dn;
        resp[blen] = 0;
    }
    *status_out = code;
    *body_out = resp;
    *len_out = blen;
    return G4C_OK;
}

static g4c_status http_request(const char *method, const char *url, const char *const *headers, int n_headers,
                               const char *body, size_t body_len, int timeout_s, int retries, int *status_out,
                               char **body_out, size_t *len_out, g4c_err *err) {
    url_parts u;
    G4C_TRY(parse_url(url, &u, err));
    g4c_status st = G4C_OK;
    for (int attempt = 0;; attempt++) {
        int retry = 0;
        *body_out = NULL;
        st = http_once(method, &u, headers, n_headers, body, body_len, timeout_s, status_out, body_out, len_out, &retry,
                       err);
        if (st == G4C_OK && *status_out >= 500) retry = 1;
        if (!retry || attempt >= retries) break;
        if (st == G4C_OK) free(*body_out), *body_out = NULL;
        sleep((unsigned)(attempt + 1));
    }
    return st;
}

g4c_status eval_http_post(const char *url, const char *const *headers, int n_headers, const char *body,
                          size_t body_len, int timeout_s, int *status_out, char **body_out, size_t *len_out,
                          g4c_err *err) {
    return http_request("POST", url, headers, n_headers, body, body_len, timeout_s, 0, status_out, body_out, len_out,
                        err);
}

/* http://host:port[/v1] -> .../v1/chat/completions (a path that already names chat/completions is kept) */
static void api_url(const char *base, const char *what, char *out, size_t n) {
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/') bl--;
    const char *cc = strstr(base, "/chat/completions");
    if (cc) {
        if (!strcmp(what, "chat/completions")) snprintf(out, n, "%s", base);
        else snprintf(out, n, "%.*s/%s", (int)(cc - base), base, what);
        return;
    }
    const int has_v1 = bl >= 3 && !strncmp(base + bl - 3, "/v1", 3);
    snprintf(out, n, "%.*s%s/%s", (int)bl, base, has_v1 ? "" : "/v1", what);
}

static char *error_message(const char *body) {
    cJSON *j = cJSON_Parse(body);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : e;
    char *s = strdup(cJSON_IsString(m) ? m->valuestring : body);
    cJSON_Delete(j);
    return s;
}

/* The request's headers beyond the content type: the API key as a bearer token, when there is one. */
static int auth_header(const eval_endpoint *ep, char *auth, size_t cap, const char *hdr[1]) {
    if (!ep->api_key || !*ep->api_key) return 0;
    snprintf(auth, cap, "Authorization: Bearer %.500s", ep->api_key);
    hdr[0] = auth;
    return 1;
}

/* GET /v1/models: the first model's id (for servers that need "model"); NULL when there is none */
static char *discover_model(const eval_endpoint *ep) {
    char url[1200];
    api_url(ep->url, "models", url, sizeof url);
    char auth[600];
    const char *hdr[1];
    const int nh = auth_header(ep, auth, sizeof auth, hdr);
    int code = 0;
    char *body = NULL;
    size_t len = 0;
    if (http_request("GET", url, hdr, nh, NULL, 0, ep->timeout_s > 0 && ep->timeout_s < 30 ? ep->timeout_s : 30,
                     ep->retries, &code, &body, &len, NULL) != G4C_OK || code != 200) {
        free(body);
        return NULL;
    }
    cJSON *j = cJSON_Parse(body);
    free(body);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "data");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(d, 0), "id");
    char *r = cJSON_IsString(id) ? strdup(id->valuestring) : NULL;
    cJSON_Delete(j);
    return r;
}

static const char *image_mime(const unsigned char *b, size_t n) {
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return "image/jpeg";
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return "image/png";
    if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) return "image/webp";
    if (n >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6))) return "image/gif";
    return "application/octet-stream";
}

g4c_status eval_endpoint_answer(void *ctx, const eval_sample *s, const char *prompt, int max_tokens,
                                eval_answer *ans, g4c_err *err) {
    eval_endpoint *ep = ctx;
    static char *discovered; /* one endpoint per process */
    static int tried;
    const char *model = ep->model_name;
    if (!model) {
        if (!tried) discovered = discover_model(ep), tried = 1;
        model = discovered;
    }
    char *img = NULL;
    size_t n_img = 0;
    G4C_TRY(g4c_read_file(s->image, (size_t)64 << 20, &img, &n_img, err));
    char *b64 = eval_base64((const unsigned char *)img, n_img);
    const char *mime = image_mime((const unsigned char *)img, n_img);
    free(img);
    if (!b64) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    size_t ul = strlen(b64) + 64;
    char *data_url = malloc(ul);
    if (!data_url) { free(b64); return G4C_FAIL(err, G4C_E_NOMEM, "out of memory"); }
    snprintf(data_url, ul, "data:%s;base64,%s", mime, b64);
    free(b64);
    cJSON *req = cJSON_CreateObject(), *msgs = cJSON_AddArrayToObject(req, "messages"), *m = cJSON_CreateObject();
    if (model) cJSON_AddStringToObject(req, "model", model);
    cJSON_AddStringToObject(m, "role", "user");
    cJSON *content = cJSON_AddArrayToObject(m, "content");
    cJSON *pi = cJSON_CreateObject(), *pt = cJSON_CreateObject();
    cJSON_AddStringToObject(pi, "type", "image_url");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(pi, "image_url"), "url", data_url);
    cJSON_AddStringToObject(pt, "type", "text");
    cJSON_AddStringToObject(pt, "text", prompt);
    cJSON_AddItemToArray(content, pi);
    cJSON_AddItemToArray(content, pt);
    cJSON_AddItemToArray(msgs, m);
    cJSON_AddNumberToObject(req, "temperature", 0);
    cJSON_AddNumberToObject(req, "max_tokens", max_tokens);
    cJSON_AddBoolToObject(req, "stream", 0);
    free(data_url);
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (!body) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    char url[1200], auth[600];
    api_url(ep->url, "chat/completions", url, sizeof url);
    const char *hdr[1];
    const int nh = auth_header(ep, auth, sizeof auth, hdr);
    int code = 0;
    char *resp = NULL;
    size_t rl = 0;
    const double t0 = now_s();
    g4c_status st = http_request("POST", url, hdr, nh, body, strlen(body), ep->timeout_s, ep->retries, &code, &resp,
                                 &rl, err);
    free(body);
    if (st != G4C_OK) return st;
    ans->ms = (now_s() - t0) * 1e3;
    if (code != 200) {
        char *msg = error_message(resp);
        st = G4C_FAIL(err, G4C_E_IO, "%s answered HTTP %d: %.300s", url, code, msg ? msg : "");
        free(msg);
        free(resp);
        return st;
    }
    cJSON *j = cJSON_ParseWithLength(resp, rl);
    free(resp);
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(ch, "message");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (!cJSON_IsObject(msg) || !(cJSON_IsString(c) || cJSON_IsNull(c) || cJSON_IsArray(c) || !c)) {
        cJSON_Delete(j);
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: the answer has no choices[0].message.content", url);
    }
    size_t tl = 0;
    char *text = NULL;
    if (cJSON_IsString(c)) text = strdup(c->valuestring);
    else if (cJSON_IsArray(c)) { /* content parts: join their text */
        const cJSON *part;
        cJSON_ArrayForEach(part, c) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (!cJSON_IsString(t)) continue;
            size_t l = strlen(t->valuestring);
            char *g = realloc(text, tl + l + 1);
            if (!g) break;
            text = g;
            memcpy(text + tl, t->valuestring, l + 1);
            tl += l;
        }
    }
    if (!text) text = strdup("");
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
    const cJSON *pt_ = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");
    ans->n_prompt = cJSON_IsNumber(pt_) ? pt_->valueint : 0;
    ans->n_gen = cJSON_IsNumber(ct) ? ct->valueint : 0;
    ans->text = text;
    cJSON_Delete(j);
    return text ? G4C_OK : G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
}
