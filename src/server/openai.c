/* OpenAI chat-completions requests and responses. Requests are untrusted: the nesting depth is checked before
 * cJSON sees the text, every field's type and range is checked, and every refusal names the field at fault. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

/* ---- srv_buf ---- */

int srv_buf_put(srv_buf *b, const void *s, size_t n) {
    if (b->oom) return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) {
            if (cap > SIZE_MAX / 2) { b->oom = 1; return -1; }
            cap *= 2;
        }
        char *g = realloc(b->p, cap);
        if (!g) { b->oom = 1; return -1; }
        b->p = g;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

int srv_buf_puts(srv_buf *b, const char *s) { return srv_buf_put(b, s, strlen(s)); }

int srv_buf_printf(srv_buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    if ((size_t)n < sizeof tmp) return srv_buf_put(b, tmp, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) { b->oom = 1; return -1; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = srv_buf_put(b, big, (size_t)n);
    free(big);
    return rc;
}

void srv_buf_free(srv_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- errors ---- */

int oai_fail(oai_error *e, int status, const char *type, const char *param, const char *code, const char *fmt, ...) {
    e->status = status;
    e->type = type;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

static cJSON *str_or_null(const char *s) { return s && *s ? cJSON_CreateString(s) : cJSON_CreateNull(); }

/* cJSON copies bytes >= 0x80 verbatim: keep JSON text valid UTF-8 by sanitizing first. */
static cJSON *utf8_string(const char *s) {
    srv_buf b = {0};
    oai_utf8_append(&b, s ? s : "", s ? strlen(s) : 0);
    cJSON *j = cJSON_CreateString(b.p ? b.p : "");
    srv_buf_free(&b);
    return j;
}

char *oai_error_json(const oai_error *e) {
    cJSON *root = cJSON_CreateObject(), *err = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "error", err);
    cJSON_AddItemToObject(err, "message", utf8_string(e->message));
    cJSON_AddStringToObject(err, "type", e->type ? e->type : "invalid_request_error");
    cJSON_AddItemToObject(err, "param", str_or_null(e->param));
    cJSON_AddItemToObject(err, "code", str_or_null(e->code));
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

/* ---- helpers ---- */

int oai_json_depth(const char *s, size_t n) {
    int depth = 0, max = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        const char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max) max = depth;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return max;
}

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62; /* '-' and '_': the URL-safe alphabet */
    if (c == '/' || c == '_') return 63;
    return -1;
}

unsigned char *oai_base64_decode(const char *s, size_t n, size_t *out_len, size_t *bad_at) {
    *out_len = 0;
    *bad_at = 0;
    unsigned char *out = malloc(n / 4 * 3 + 3);
    if (!out) return NULL;
    size_t o = 0, pad = 0;
    uint32_t acc = 0;
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') {
            pad++;
            continue;
        }
        const int v = b64_value(c);
        if (v < 0 || pad) { /* a data character after padding is not base64 either */
            *bad_at = i;
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        if (++k == 4) {
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
            k = 0;
        }
    }
    if (k == 1 || pad > 2 || (pad && (k + pad) % 4)) { /* 1 leftover character cannot encode a byte */
        *bad_at = n;
        free(out);
        return NULL;
    }
    if (k == 2) out[o++] = (unsigned char)(acc >> 4);
    if (k == 3) {
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
    }
    *out_len = o;
    return out;
}

void oai_utf8_append(srv_buf *b, const char *s, size_t n) {
    static const char repl[] = "\xEF\xBF\xBD";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0; /* valid bytes not yet copied start at i - run */
    while (i < n) {
        const unsigned char c = u[i];
        size_t len = 0;
        uint32_t cp = 0, min = 0;
        if (c < 0x80) len = 1;
        else if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
        int ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) {
            if ((u[i + k] & 0xC0) != 0x80) ok = 0;
            else cp = cp << 6 | (u[i + k] & 0x3F);
        }
        if (ok && len > 1 && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = 0;
        if (ok) {
            i += len;
            run += len;
            continue;
        }
        srv_buf_put(b, s + i - run, run);
        srv_buf_put(b, repl, 3);
        run = 0;
        i++;
    }
    srv_buf_put(b, s + n - run, run);
}

oai_limits oai_default_limits(void) {
    return (oai_limits){.max_depth = 32, .max_messages = 1024, .max_images = 16, .max_stop = 16,
                        .max_stop_len = 256, .local_dir = NULL};
}

/* ---- request parsing ---- */

#define BAD(param, ...) oai_fail(e, 400, "invalid_request_error", param, NULL, __VA_ARGS__)

static const char *type_name(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "invalid";
}

/* A number field in [lo, hi]; absent or null leaves *out unchanged and returns 0 with *has = 0. */
static int get_num(const cJSON *root, const char *key, double lo, double hi, double *out, int *has, oai_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (has) *has = 0;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) return BAD(key, "'%s' must be a number, got %s", key, type_name(v));
    if (!isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return BAD(key, "'%s' must be between %g and %g, got %g", key, lo, hi, v->valuedouble);
    *out = v->valuedouble;
    if (has) *has = 1;
    return 0;
}

static int get_int(const cJSON *root, const char *key, double lo, double hi, double *out, int *has, oai_error *e) {
    int h = 0;
    if (get_num(root, key, lo, hi, out, &h, e)) return -1;
    if (h && *out != floor(*out)) return BAD(key, "'%s' must be an integer, got %g", key, *out);
    if (has) *has = h;
    return 0;
}

static int get_bool(const cJSON *root, const char *key, int *out, oai_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) return BAD(key, "'%s' must be a boolean, got %s", key, type_name(v));
    *out = cJSON_IsTrue(v);
    return 0;
}

static char *dup_str(const char *s, oai_error *e) {
    char *d = strdup(s);
    if (!d) oai_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    return d;
}

/* "data:[<mediatype>][;base64],<data>" -> bytes; file:// URLs and plain paths -> a path inside local_dir. */
static int parse_image_url(oai_part *p, const char *url, const char *field, const oai_limits *lim, oai_error *e) {
    if (!strncmp(url, "data:", 5)) {
        const char *comma = strchr(url, ',');
        if (!comma) return BAD(field, "%s: a data: URL needs a ',' before its data", field);
        const size_t hl = (size_t)(comma - url);
        if (hl < 12 || memcmp(comma - 7, ";base64", 7))
            return BAD(field, "%s: only base64 data: URLs are accepted (data:image/png;base64,...)", field);
        size_t n, bad;
        p->data = oai_base64_decode(comma + 1, strlen(comma + 1), &n, &bad);
        if (!p->data) return BAD(field, "%s: invalid base64 at offset %zu of the data", field, bad);
        p->n_data = n;
        if (!n) return BAD(field, "%s: the image data is empty", field);
        return 0;
    }
    if (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8))
        return BAD(field, "%s: remote image URLs are not fetched; send the image as a data: URL "
                   "(data:image/jpeg;base64,...)", field);
    const char *path = !strncmp(url, "file://", 7) ? url + 7 : url;
    if (!lim->local_dir)
        return BAD(field, "%s: expected a data: URL (local files are served only with --allow-local-files)", field);
    if (!*path) return BAD(field, "%s: empty path", field);
    char full[4096], real[PATH_MAX];
    if (path[0] == '/') snprintf(full, sizeof full, "%s", path);
    else snprintf(full, sizeof full, "%s/%s", lim->local_dir, path);
    const size_t dl = strlen(lim->local_dir);
    if (!realpath(full, real) || strncmp(real, lim->local_dir, dl) || (real[dl] != '/' && real[dl] != 0))
        return BAD(field, "%s: no such file inside the --allow-local-files directory", field);
    p->path = dup_str(real, e);
    return p->path ? 0 : -1;
}

static int parse_part(const cJSON *it, oai_part *p, int role, const oai_limits *lim, int *n_images, oai_error *e) {
    char f[160];
    if (!cJSON_IsObject(it)) return BAD(p->field, "%s must be an object, got %s", p->field, type_name(it));
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(it, "type");
    snprintf(f, sizeof f, "%s.type", p->field);
    if (!cJSON_IsString(type)) return BAD(f, "%s must be a string", f);
    if (!strcmp(type->valuestring, "text")) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "text");
        snprintf(f, sizeof f, "%s.text", p->field);
        if (!cJSON_IsString(t)) return BAD(f, "%s must be a string, got %s", f, type_name(t));
        p->text = dup_str(t->valuestring, e);
        return p->text ? 0 : -1;
    }
    if (strcmp(type->valuestring, "image_url"))
        return BAD(f, "%s: unsupported content part type '%.40s' (text and image_url are)", f, type->valuestring);
    if (role != OAI_ROLE_USER) return BAD(p->field, "%s: images are accepted in user messages only", p->field);
    if (++*n_images > lim->max_images)
        return BAD(p->field, "%s: at most %d images per request", p->field, lim->max_images);
    p->is_image = 1;
    const cJSON *iu = cJSON_GetObjectItemCaseSensitive(it, "image_url");
    snprintf(f, sizeof f, "%s.image_url", p->field);
    const cJSON *url = iu;
    if (cJSON_IsObject(iu)) {
        url = cJSON_GetObjectItemCaseSensitive(iu, "url");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(iu, "detail");
        if (d && !cJSON_IsNull(d)) {
            if (!cJSON_IsString(d) || (strcmp(d->valuestring, "low") && strcmp(d->valuestring, "high") &&
                                       strcmp(d->valuestring, "auto")))
                return BAD(f, "%s.detail must be \"low\", \"high\" or \"auto\"", f);
            p->detail_low = !strcmp(d->valuestring, "low");
        }
        snprintf(f, sizeof f, "%s.image_url.url", p->field);
    }
    if (!cJSON_IsString(url)) return BAD(f, "%s must be a string (a data: URL), got %s", f, type_name(url));
    return parse_image_url(p, url->valuestring, f, lim, e);
}

static int parse_message(const cJSON *m, int idx, oai_msg *msg, const oai_limits *lim, int *n_images, oai_error *e) {
    char f[64];
    snprintf(f, sizeof f, "messages[%d]", idx);
    if (!cJSON_IsObject(m)) return BAD(f, "%s must be an object, got %s", f, type_name(m));
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    char fr[80];
    snprintf(fr, sizeof fr, "%s.role", f);
    if (!cJSON_IsString(role)) return BAD(fr, "%s must be a string, got %s", fr, role ? type_name(role) : "nothing");
    const char *r = role->valuestring;
    if (!strcmp(r, "system") || !strcmp(r, "developer")) msg->role = OAI_ROLE_SYSTEM;
    else if (!strcmp(r, "user")) msg->role = OAI_ROLE_USER;
    else if (!strcmp(r, "assistant")) msg->role = OAI_ROLE_ASSISTANT;
    else
        return BAD(fr, "%s: unknown role '%.40s' (system, developer, user and assistant are accepted)", fr, r);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
    char fc[80];
    snprintf(fc, sizeof fc, "%s.content", f);
    if (cJSON_IsString(c)) {
        msg->parts = calloc(1, sizeof *msg->parts);
        if (!msg->parts) return oai_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        msg->n_parts = 1;
        snprintf(msg->parts[0].field, sizeof msg->parts[0].field, "%s", fc);
        msg->parts[0].text = dup_str(c->valuestring, e);
        return msg->parts[0].text ? 0 : -1;
    }
    if ((!c || cJSON_IsNull(c)) && msg->role == OAI_ROLE_ASSISTANT) return 0; /* an empty assistant turn */
    if (!cJSON_IsArray(c))
        return BAD(fc, "%s must be a string or an array of content parts, got %s", fc, c ? type_name(c) : "nothing");
    const int n = cJSON_GetArraySize(c);
    if (n > 4096) return BAD(fc, "%s: at most 4096 content parts", fc);
    msg->parts = calloc((size_t)(n ? n : 1), sizeof *msg->parts);
    if (!msg->parts) return oai_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    int i = 0;
    for (const cJSON *it = c->child; it; it = it->next, i++) {
        oai_part *p = &msg->parts[msg->n_parts++];
        snprintf(p->field, sizeof p->field, "%s[%d]", fc, i);
        if (parse_part(it, p, msg->role, lim, n_images, e)) return -1;
    }
    return 0;
}

static int parse_stop(const cJSON *st, oai_request *r, const oai_limits *lim, oai_error *e) {
    if (!st || cJSON_IsNull(st)) return 0;
    const int n = cJSON_IsString(st) ? 1 : cJSON_IsArray(st) ? cJSON_GetArraySize(st) : -1;
    if (n < 0) return BAD("stop", "'stop' must be a string or an array of strings, got %s", type_name(st));
    if (n > lim->max_stop) return BAD("stop", "'stop' holds at most %d strings", lim->max_stop);
    r->stop = calloc((size_t)(n ? n : 1), sizeof *r->stop);
    if (!r->stop) return oai_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    const cJSON *it = cJSON_IsString(st) ? st : st->child;
    for (int i = 0; i < n; i++, it = it->next) {
        char f[32];
        snprintf(f, sizeof f, cJSON_IsString(st) ? "stop" : "stop[%d]", i);
        if (!cJSON_IsString(it)) return BAD(f, "%s must be a string, got %s", f, type_name(it));
        const size_t l = strlen(it->valuestring);
        if (!l) return BAD(f, "%s must not be empty", f);
        if (l > (size_t)lim->max_stop_len) return BAD(f, "%s is longer than %d bytes", f, lim->max_stop_len);
        if (!(r->stop[r->n_stop++] = dup_str(it->valuestring, e))) return -1;
    }
    return 0;
}

static int parse_fields(const cJSON *root, oai_request *r, const oai_limits *lim, oai_error *e) {
    if (!cJSON_IsObject(root)) return BAD(NULL, "the request body must be a JSON object, got %s", type_name(root));
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (model && !cJSON_IsNull(model)) {
        if (!cJSON_IsString(model)) return BAD("model", "'model' must be a string, got %s", type_name(model));
        if (!(r->model = dup_str(model->valuestring, e))) return -1;
    }
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!msgs) return BAD("messages", "'messages' is required");
    if (!cJSON_IsArray(msgs)) return BAD("messages", "'messages' must be an array, got %s", type_name(msgs));
    const int n = cJSON_GetArraySize(msgs);
    if (n == 0) return BAD("messages", "'messages' must hold at least one message");
    if (n > lim->max_messages) return BAD("messages", "'messages' holds at most %d messages", lim->max_messages);
    r->msgs = calloc((size_t)n, sizeof *r->msgs);
    if (!r->msgs) return oai_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    int i = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, i++) {
        r->n_msgs++;
        if (parse_message(m, i, &r->msgs[i], lim, &r->n_images, e)) return -1;
    }
    double v;
    int has;
    if (get_bool(root, "stream", &r->stream, e)) return -1;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) return BAD("stream_options", "'stream_options' must be an object");
        const cJSON *iu = cJSON_GetObjectItemCaseSensitive(so, "include_usage");
        if (iu && !cJSON_IsNull(iu) && !cJSON_IsBool(iu))
            return BAD("stream_options.include_usage", "'stream_options.include_usage' must be a boolean");
        r->include_usage = cJSON_IsTrue(iu);
    }
    r->max_tokens = -1;
    if (get_int(root, "max_tokens", 1, INT_MAX, &v, &has, e)) return -1;
    if (has) r->max_tokens = (int)v;
    if (get_int(root, "max_completion_tokens", 1, INT_MAX, &v, &has, e)) return -1;
    if (has) r->max_tokens = (int)v;
    if (get_num(root, "temperature", 0, 2, &v, &r->has_temperature, e)) return -1;
    if (r->has_temperature) r->temperature = (float)v;
    if (get_num(root, "top_p", 0, 1, &v, &r->has_top_p, e)) return -1;
    if (r->has_top_p) r->top_p = (float)v;
    if (get_int(root, "top_k", 0, 1 << 20, &v, &r->has_top_k, e)) return -1;
    if (r->has_top_k) r->top_k = (int)v;
    if (get_num(root, "min_p", 0, 1, &v, &has, e)) return -1;
    if (has) r->min_p = (float)v;
    if (get_num(root, "presence_penalty", -2, 2, &v, &has, e)) return -1;
    if (has) r->presence_penalty = (float)v;
    if (get_num(root, "frequency_penalty", -2, 2, &v, &has, e)) return -1;
    if (has) r->frequency_penalty = (float)v;
    r->repeat_penalty = 1.0f;
    if (get_num(root, "repeat_penalty", 0.01, 10, &v, &has, e)) return -1;
    if (has) r->repeat_penalty = (float)v;
    if (get_int(root, "seed", -9007199254740992.0, 9007199254740992.0, &v, &r->has_seed, e)) return -1;
    if (r->has_seed) r->seed = (uint64_t)(int64_t)v;
    if (get_int(root, "n", 1, 1, &v, &has, e)) {
        snprintf(e->message, sizeof e->message, "'n' must be 1: one choice per request is supported");
        return -1;
    }
    int b = 0;
    if (get_bool(root, "logprobs", &b, e)) return -1;
    if (b) return BAD("logprobs", "'logprobs' is not supported");
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    if (tools && !cJSON_IsNull(tools) && !(cJSON_IsArray(tools) && !cJSON_GetArraySize(tools)))
        return BAD("tools", "'tools' (function calling) is not supported");
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(root, "response_format");
    if (rf && !cJSON_IsNull(rf)) {
        const cJSON *t = cJSON_IsObject(rf) ? cJSON_GetObjectItemCaseSensitive(rf, "type") : NULL;
        if (!cJSON_IsString(t) || strcmp(t->valuestring, "text"))
            return BAD("response_format", "'response_format' other than {\"type\": \"text\"} is not supported");
    }
    if (parse_stop(cJSON_GetObjectItemCaseSensitive(root, "stop"), r, lim, e)) return -1;
    r->thinking = -1;
    const cJSON *ctk = cJSON_GetObjectItemCaseSensitive(root, "chat_template_kwargs");
    if (ctk && !cJSON_IsNull(ctk)) {
        if (!cJSON_IsObject(ctk)) return BAD("chat_template_kwargs", "'chat_template_kwargs' must be an object");
        const cJSON *et = cJSON_GetObjectItemCaseSensitive(ctk, "enable_thinking");
        if (et && !cJSON_IsNull(et)) {
            if (!cJSON_IsBool(et))
                return BAD("chat_template_kwargs.enable_thinking", "'enable_thinking' must be a boolean");
            r->thinking = cJSON_IsTrue(et);
        }
    }
    const cJSON *re = cJSON_GetObjectItemCaseSensitive(root, "reasoning_effort");
    if (re && !cJSON_IsNull(re)) {
        if (!cJSON_IsString(re)) return BAD("reasoning_effort", "'reasoning_effort' must be a string");
        const char *s = re->valuestring;
        if (!strcmp(s, "none")) r->thinking = 0;
        else if (!strcmp(s, "minimal") || !strcmp(s, "low") || !strcmp(s, "medium") || !strcmp(s, "high"))
            r->thinking = 1;
        else
            return BAD("reasoning_effort", "'reasoning_effort' must be none, minimal, low, medium or high");
    }
    return 0;
}

int oai_parse_request(const char *body, size_t len, const oai_limits *lim, oai_request *req, oai_error *e) {
    memset(req, 0, sizeof *req);
    req->thinking = -1;
    req->max_tokens = -1;
    if (!len) return BAD(NULL, "the request body is empty (expected a JSON object)");
    const int depth = oai_json_depth(body, len);
    if (depth > lim->max_depth) return BAD(NULL, "the JSON body nests %d levels deep; the limit is %d", depth,
                                           lim->max_depth);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        const size_t at = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        return BAD(NULL, "the request body is not valid JSON (error near byte %zu)", at);
    }
    for (; end && end < body + len; end++) /* only whitespace may follow the value */
        if (*end != ' ' && *end != '\n' && *end != '\r' && *end != '\t' && *end != 0) {
            cJSON_Delete(root);
            return BAD(NULL, "the request body is not valid JSON (text after the value at byte %zu)",
                       (size_t)(end - body));
        }
    const int rc = parse_fields(root, req, lim, e);
    cJSON_Delete(root);
    if (rc) oai_request_free(req);
    return rc;
}

void oai_request_free(oai_request *req) {
    for (int i = 0; i < req->n_msgs; i++) {
        for (int k = 0; k < req->msgs[i].n_parts; k++) {
            free(req->msgs[i].parts[k].text);
            free(req->msgs[i].parts[k].data);
            free(req->msgs[i].parts[k].path);
        }
        free(req->msgs[i].parts);
    }
    free(req->msgs);
    for (int i = 0; i < req->n_stop; i++) free(req->stop[i]);
    free(req->stop);
    free(req->model);
    memset(req, 0, sizeof *req);
}

/* ---- responses ---- */

static void add_usage_timings(cJSON *o, const oai_result *r) {
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", r->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", r->n_gen);
    cJSON_AddNumberToObject(u, "total_tokens", r->n_prompt + r->n_gen);
    if (!r->st) return;
    /* llama-server's names, which UIs already read */
    const g4c_gen_stats *st = r->st;
    cJSON *t = cJSON_AddObjectToObject(o, "timings");
    cJSON_AddNumberToObject(t, "prompt_n", st->n_prompt);
    cJSON_AddNumberToObject(t, "prompt_ms", st->t_prefill_ms);
    cJSON_AddNumberToObject(t, "prompt_per_token_ms", st->n_prompt ? st->t_prefill_ms / st->n_prompt : 0);
    cJSON_AddNumberToObject(t, "prompt_per_second", st->t_prefill_ms > 0 ? st->n_prompt * 1e3 / st->t_prefill_ms : 0);
    cJSON_AddNumberToObject(t, "predicted_n", st->n_gen);
    cJSON_AddNumberToObject(t, "predicted_ms", st->t_gen_ms);
    cJSON_AddNumberToObject(t, "predicted_per_token_ms", st->n_gen ? st->t_gen_ms / st->n_gen : 0);
    cJSON_AddNumberToObject(t, "predicted_per_second", st->t_gen_ms > 0 ? st->n_gen * 1e3 / st->t_gen_ms : 0);
}

char *oai_completion_json(const oai_result *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "object", "chat.completion");
    cJSON_AddNumberToObject(o, "created", (double)r->created);
    cJSON_AddItemToObject(o, "model", utf8_string(r->model));
    cJSON_AddStringToObject(o, "system_fingerprint", "gemma4c");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON *msg = cJSON_AddObjectToObject(c, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    cJSON_AddStringToObject(msg, "content", r->content ? r->content : ""); /* already valid UTF-8 */
    if (r->reasoning) cJSON_AddStringToObject(msg, "reasoning_content", r->reasoning);
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", r->finish_reason);
    add_usage_timings(o, r);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

void oai_chunk_sse(srv_buf *b, const char *id, const char *model, long long created, int role, const char *content,
                   const char *reasoning, const char *finish, const oai_result *r, int usage_only) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(o, "created", (double)created);
    cJSON_AddItemToObject(o, "model", utf8_string(model));
    cJSON_AddStringToObject(o, "system_fingerprint", "gemma4c");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    if (!usage_only) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddItemToArray(choices, c);
        cJSON_AddNumberToObject(c, "index", 0);
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        if (role) cJSON_AddStringToObject(d, "role", "assistant");
        if (content) cJSON_AddStringToObject(d, "content", content);
        if (reasoning) cJSON_AddStringToObject(d, "reasoning_content", reasoning);
        cJSON_AddNullToObject(c, "logprobs");
        if (finish) cJSON_AddStringToObject(c, "finish_reason", finish);
        else cJSON_AddNullToObject(c, "finish_reason");
    }
    if (r) add_usage_timings(o, r);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) {
        b->oom = 1;
        return;
    }
    srv_buf_puts(b, "data: ");
    srv_buf_puts(b, s);
    srv_buf_puts(b, "\n\n");
    free(s);
}

char *oai_models_json(const char *model, long long created, int single) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddItemToObject(m, "id", utf8_string(model));
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)created);
    cJSON_AddStringToObject(m, "owned_by", "gemma4c");
    cJSON *o = m;
    if (!single) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "object", "list");
        cJSON *d = cJSON_AddArrayToObject(o, "data");
        cJSON_AddItemToArray(d, m);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}
