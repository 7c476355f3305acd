/* Text output for the report: a growing buffer, HTML and Markdown escaping, base64, the page skeleton (inline CSS,
 * no scripts, no external resources: the page works offline) and figures as inlined PNGs. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/report.h"

void rp_put(rp_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *g = realloc(b->p, cap);
        if (!g) { b->oom = 1; return; }
        b->p = g, b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void rp_puts(rp_buf *b, const char *s) { rp_put(b, s, strlen(s)); }

void rp_printf(rp_buf *b, const char *fmt, ...) {
    char tmp[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) { rp_put(b, tmp, (size_t)n); return; }
    char *big = malloc((size_t)n + 1);
    if (!big) { b->oom = 1; return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    rp_put(b, big, (size_t)n);
    free(big);
}

void rp_esc(rp_buf *b, const char *s) {
    for (const char *p = s ? s : ""; *p; p++) {
        switch (*p) {
        case '&': rp_puts(b, "&amp;"); break;
        case '<': rp_puts(b, "&lt;"); break;
        case '>': rp_puts(b, "&gt;"); break;
        case '"': rp_puts(b, "&quot;"); break;
        case '\'': rp_puts(b, "&#39;"); break;
        default: rp_put(b, p, 1);
        }
    }
}

void rp_md_esc(rp_buf *b, const char *s) {
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '|') rp_puts(b, "\\|");
        else if (*p == '\n' || *p == '\r') rp_puts(b, " ");
        else rp_put(b, p, 1);
    }
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *rp_base64(const unsigned char *d, size_t n) {
    char *o = malloc((n + 2) / 3 * 4 + 1), *q = o;
    if (!o) return NULL;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        const unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8 | d[i + 2];
        *q++ = b64[v >> 18], *q++ = b64[v >> 12 & 63], *q++ = b64[v >> 6 & 63], *q++ = b64[v & 63];
    }
    if (i < n) {
        const unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0);
        *q++ = b64[v >> 18], *q++ = b64[v >> 12 & 63];
        *q++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
        *q++ = '=';
    }
    *q = 0;
    return o;
}

unsigned char *rp_base64_decode(const char *s, size_t len, size_t *n) {
    unsigned char *o = malloc(len / 4 * 3 + 3);
    if (!o) return NULL;
    size_t k = 0;
    unsigned v = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < len; i++) {
        const char *p = s[i] ? strchr(b64, s[i]) : NULL;
        if (s[i] == '=') { pad++; continue; }
        if (!p || pad) { free(o); return NULL; }
        v = v << 6 | (unsigned)(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (unsigned char)(v >> bits);
        }
    }
    if (pad > 2 || (len % 4)) { free(o); return NULL; }
    *n = k;
    return o;
}

static const char *const css =
    "body{font-family:'DejaVu Sans',Verdana,sans-serif;color:#222;margin:0;background:#f5f5f2}"
    "main{max-width:1240px;margin:0 auto;padding:18px 20px 40px}"
    "h1{font-size:24px;margin:6px 0 2px}"
    "h2{font-size:19px;margin:30px 0 10px;padding-bottom:4px;border-bottom:2px solid #ddd}"
    "h3{font-size:15px;margin:18px 0 8px}"
    ".sub{color:#666;font-size:13px;margin:2px 0 10px}"
    "p.note{color:#555;font-size:12.5px;margin:6px 0}"
    "table{border-collapse:collapse;font-size:13px;background:#fff;margin:4px 0 10px}"
    "th,td{border:1px solid #ddd;padding:4px 9px;text-align:left;vertical-align:top}"
    "th{background:#f0f0ec}"
    "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px}"
    ".grid3{display:grid;grid-template-columns:repeat(auto-fill,minmax(370px,1fr));gap:14px}"
    "figure{margin:0;background:#fff;border:1px solid #e0e0dc;border-radius:6px;padding:8px}"
    "figure img{display:block;max-width:100%;height:auto;margin:0 auto}"
    "figcaption{font-size:12px;color:#555;margin-top:6px;line-height:1.4}"
    ".ok{color:#2ea043;font-weight:bold;white-space:nowrap}.bad{color:#d62728;font-weight:bold;white-space:nowrap}"
    "img.thumb{display:block;border-radius:3px}"
    "footer{margin-top:30px;color:#777;font-size:12px}";

void rp_html_begin(rp_buf *b, const char *title) {
    rp_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    rp_esc(b, title);
    rp_puts(b, "</title>\n<style>");
    rp_puts(b, css);
    rp_puts(b, "</style>\n</head>\n<body>\n<main>\n");
}

void rp_html_end(rp_buf *b) { rp_puts(b, "</main>\n</body>\n</html>\n"); }

void rp_html_figure(rp_buf *b, const unsigned char *png, size_t n, int w, int h, const char *alt, const char *caption) {
    char *s = rp_base64(png, n);
    if (!s) { b->oom = 1; return; }
    rp_printf(b, "<figure><img src=\"data:image/png;base64,");
    rp_puts(b, s);
    rp_printf(b, "\" width=\"%d\" height=\"%d\" alt=\"", w, h);
    rp_esc(b, alt);
    rp_puts(b, "\">");
    if (caption && *caption) {
        rp_puts(b, "<figcaption>");
        rp_esc(b, caption);
        rp_puts(b, "</figcaption>");
    }
    rp_puts(b, "</figure>\n");
    free(s);
}

g4c_status rp_mkdir_p(const char *dir, g4c_err *err) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return G4C_FAIL(err, G4C_E_ARG, "path too long: %s", dir);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s) continue;
        const char c = *s;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return G4C_FAIL(err, G4C_E_IO, "cannot create the folder %s: %s", p, strerror(errno));
        if (!c) break;
        *s = c;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return G4C_FAIL(err, G4C_E_IO, "%s is not a folder", dir);
    return G4C_OK;
}

g4c_status rp_write_file(const char *dir, const char *name, const char *data, size_t n, g4c_err *err) {
    char path[4096], tmp[4200];
    G4C_TRY(g4c_path_join(path, sizeof path, dir, name, err));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return G4C_FAIL(err, G4C_E_IO, "cannot create %s: %s", tmp, strerror(errno));
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            close(fd);
            unlink(tmp);
            return G4C_FAIL(err, G4C_E_IO, "cannot write %s: %s", tmp, strerror(errno));
        }
        off += (size_t)w;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return G4C_FAIL(err, G4C_E_IO, "cannot write %s: %s", path, strerror(errno));
    }
    return G4C_OK;
}
