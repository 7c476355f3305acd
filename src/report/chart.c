/* A small chart library on cairo: a canvas that records every text box it draws (tests prove that no two texts
 * overlap), nice ticks, legends, value labels; grouped bars (vertical or horizontal), scatter, histogram.
 * Text is DejaVu Sans through cairo's toy font API; strings are cleaned to valid UTF-8 before drawing (cairo
 * stops drawing on a context after invalid UTF-8). */
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

#define RP_PI 3.14159265358979323846
#define FONT "DejaVu Sans"

const rp_rgb rp_status_rgb[RP_N_ST] = {{0x2e, 0xa0, 0x43}, {0xf0, 0xa2, 0x02}, {0x8e, 0x44, 0xad}, {0xd6, 0x27, 0x28}};
const char *const rp_status_names[RP_N_ST] = {"tp", "near", "class", "fp"};
const char *const rp_status_titles[RP_N_ST] = {"TP", "near miss", "class mismatch", "FP"};
const rp_rgb RP_GT = {0x1f, 0x6f, 0xd0};
const rp_rgb RP_TEXT_MOD = {0x3b, 0x75, 0xaf}, RP_IMAGE_MOD = {0xef, 0x8a, 0x17};
const rp_rgb RP_INK = {0x22, 0x22, 0x22}, RP_MUTED = {0x6b, 0x6b, 0x6b}, RP_GRID = {0xe3, 0xe3, 0xe3};

static const rp_rgb series_palette[] = {{0x3b, 0x75, 0xaf}, {0xef, 0x8a, 0x17}, {0x51, 0x9e, 0x3e}, {0xc5, 0x3a, 0x32},
                                        {0x84, 0x5b, 0x97}, {0x8d, 0x69, 0x5d}, {0xd5, 0x7e, 0xc0}, {0x17, 0xbe, 0xcf}};

rp_rgb rp_series_rgb(int i) {
    const int n = (int)(sizeof series_palette / sizeof *series_palette);
    return series_palette[((i % n) + n) % n];
}

int rp_status_from_name(const char *s) {
    for (int i = 0; s && i < RP_N_ST; i++)
        if (!strcmp(s, rp_status_names[i])) return i;
    return -1;
}

/* ---- canvas ---- */

g4c_status rp_canvas_init(rp_canvas *c, int w, int h, g4c_err *err) {
    memset(c, 0, sizeof *c);
    if (w <= 0 || h <= 0 || w > 16384 || h > 16384) return G4C_FAIL(err, G4C_E_ARG, "canvas size %dx%d", w, h);
    c->surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    if (cairo_surface_status(c->surf) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(c->surf);
        c->surf = NULL;
        return G4C_FAIL(err, G4C_E_NOMEM, "cannot create a %dx%d canvas", w, h);
    }
    c->cr = cairo_create(c->surf);
    c->w = w, c->h = h;
    cairo_set_source_rgb(c->cr, 1, 1, 1);
    cairo_paint(c->cr);
    return G4C_OK;
}

void rp_shutdown(void) {
    cairo_debug_reset_static_data();
    FcFini();
}

void rp_canvas_free(rp_canvas *c) {
    if (c->cr) cairo_destroy(c->cr);
    if (c->surf) cairo_surface_destroy(c->surf);
    free(c->texts);
    memset(c, 0, sizeof *c);
}

typedef struct {
    unsigned char *p;
    size_t n, cap;
    int oom;
} membuf;

static cairo_status_t png_write(void *closure, const unsigned char *data, unsigned int len) {
    membuf *b = closure;
    if (b->n + len > b->cap) {
        size_t cap = (b->n + len) * 2;
        unsigned char *g = realloc(b->p, cap);
        if (!g) { b->oom = 1; return CAIRO_STATUS_WRITE_ERROR; }
        b->p = g, b->cap = cap;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
    return CAIRO_STATUS_SUCCESS;
}

g4c_status rp_canvas_png(rp_canvas *c, unsigned char **out, size_t *n, g4c_err *err) {
    membuf b = {0};
    cairo_surface_flush(c->surf);
    cairo_status_t s = cairo_surface_write_to_png_stream(c->surf, png_write, &b);
    if (s != CAIRO_STATUS_SUCCESS || b.oom) {
        free(b.p);
        return G4C_FAIL(err, G4C_E_NOMEM, "cannot encode a PNG: %s", cairo_status_to_string(s));
    }
    *out = b.p;
    *n = b.n;
    return G4C_OK;
}

g4c_status rp_canvas_write_png(rp_canvas *c, const char *path, g4c_err *err) {
    unsigned char *png;
    size_t n;
    G4C_TRY(rp_canvas_png(c, &png, &n, err));
    FILE *f = fopen(path, "wb");
    if (!f) { free(png); return G4C_FAIL(err, G4C_E_IO, "cannot create %s", path); }
    int ok = fwrite(png, 1, n, f) == n;
    ok &= fclose(f) == 0;
    free(png);
    return ok ? G4C_OK : G4C_FAIL(err, G4C_E_IO, "cannot write %s", path);
}

rp_rgb rp_canvas_pixel(rp_canvas *c, int x, int y) {
    rp_rgb p = {0, 0, 0};
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return p;
    cairo_surface_flush(c->surf);
    const unsigned char *d = cairo_image_surface_get_data(c->surf);
    const int stride = cairo_image_surface_get_stride(c->surf);
    uint32_t v;
    memcpy(&v, d + (size_t)y * stride + (size_t)x * 4, 4);
    p.r = (uint8_t)(v >> 16), p.g = (uint8_t)(v >> 8), p.b = (uint8_t)v;
    return p;
}

int rp_rect_hit(rp_rect a, rp_rect b) {
    return a.x0 < b.x1 - 0.5 && b.x0 < a.x1 - 0.5 && a.y0 < b.y1 - 0.5 && b.y0 < a.y1 - 0.5;
}

int rp_canvas_collides(const rp_canvas *c, rp_rect r) {
    for (int i = 0; i < c->n_texts; i++)
        if (rp_rect_hit(c->texts[i], r)) return 1;
    return 0;
}

void rp_canvas_record(rp_canvas *c, rp_rect r) {
    if (c->n_texts == c->cap_texts) {
        int cap = c->cap_texts ? c->cap_texts * 2 : 64;
        rp_rect *g = realloc(c->texts, sizeof *g * (size_t)cap);
        if (!g) return;
        c->texts = g, c->cap_texts = cap;
    }
    c->texts[c->n_texts++] = r;
}

int rp_canvas_overlaps(const rp_canvas *c) {
    int n = 0;
    for (int i = 0; i < c->n_texts; i++)
        for (int j = i + 1; j < c->n_texts; j++) n += rp_rect_hit(c->texts[i], c->texts[j]);
    return n;
}

int rp_canvas_outside(const rp_canvas *c) {
    int n = 0;
    for (int i = 0; i < c->n_texts; i++) {
        const rp_rect r = c->texts[i];
        n += r.x0 < -0.5 || r.y0 < -0.5 || r.x1 > c->w + 0.5 || r.y1 > c->h + 0.5;
    }
    return n;
}

void rp_set(cairo_t *cr, rp_rgb c, double alpha) {
    cairo_set_source_rgba(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0, alpha);
}

/* ---- text ---- */

/* valid UTF-8 copy (bad bytes -> '?', control characters -> ' '), at most n - 1 bytes, whole characters */
static void utf8_clean(const char *s, char *out, size_t n) {
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p && o + 1 < n) {
        int len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
        int ok = len > 0 && !(len == 2 && *p < 0xc2) && !(len == 4 && *p > 0xf4);
        for (int k = 1; ok && k < len; k++) ok = (p[k] & 0xc0) == 0x80;
        if (ok && len == 3) {
            const unsigned cp = ((p[0] & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6);
            ok = cp >= 0x800 && !(cp >= 0xd800 && cp <= 0xdfff);
        }
        if (ok && len == 4) ok = !(p[0] == 0xf0 && p[1] < 0x90) && !(p[0] == 0xf4 && p[1] >= 0x90);
        if (!ok) {
            out[o++] = '?';
            p++;
            continue;
        }
        if (o + (size_t)len >= n) break;
        if (len == 1 && *p < 0x20) out[o++] = ' ';
        else memcpy(out + o, p, (size_t)len), o += (size_t)len;
        p += len;
    }
    out[o] = 0;
}

static void set_font(cairo_t *cr, double size, int bold) {
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

double rp_text_width(rp_canvas *c, const char *s, double size, int bold) {
    char buf[1024];
    utf8_clean(s, buf, sizeof buf);
    set_font(c->cr, size, bold);
    cairo_text_extents_t te;
    cairo_text_extents(c->cr, buf, &te);
    return te.x_advance;
}

double rp_text_height(rp_canvas *c, double size) {
    set_font(c->cr, size, 0);
    cairo_font_extents_t fe;
    cairo_font_extents(c->cr, &fe);
    return fe.ascent + fe.descent;
}

rp_rect rp_text(rp_canvas *c, double x, double y, const char *s, double size, int bold, rp_rgb col, int ha, int va,
                int vertical) {
    char buf[1024];
    utf8_clean(s, buf, sizeof buf);
    cairo_t *cr = c->cr;
    set_font(cr, size, bold);
    cairo_font_extents_t fe;
    cairo_text_extents_t te;
    cairo_font_extents(cr, &fe);
    cairo_text_extents(cr, buf, &te);
    const double len = te.x_advance, th = fe.ascent + fe.descent;
    const double bw = vertical ? th : len, bh = vertical ? len : th;
    const double bx = x - (ha == 1 ? bw / 2 : ha == 2 ? bw : 0);
    const double by = y - (va == 1 ? bh / 2 : va == 2 ? bh : 0);
    rp_set(cr, col, 1);
    cairo_save(cr);
    if (vertical) {
        cairo_translate(cr, bx + fe.ascent, by + bh);
        cairo_rotate(cr, -RP_PI / 2);
        cairo_move_to(cr, 0, 0);
    } else {
        cairo_move_to(cr, bx, by + fe.ascent);
    }
    cairo_show_text(cr, buf);
    cairo_restore(cr);
    cairo_new_path(cr);
    rp_rect r = {bx, by, bx + bw, by + bh};
    rp_canvas_record(c, r);
    return r;
}

void rp_fit_text(rp_canvas *c, const char *s, double size, int bold, double width, char *out, size_t n) {
    utf8_clean(s, out, n);
    if (rp_text_width(c, out, size, bold) <= width) return;
    size_t len = strlen(out);
    char tmp[1040];
    while (len > 0) {
        do len--; while (len > 0 && ((unsigned char)out[len] & 0xc0) == 0x80); /* whole characters */
        if (len == 0) break;
        snprintf(tmp, sizeof tmp, "%.*s\xe2\x80\xa6", (int)len, out);
        if (rp_text_width(c, tmp, size, bold) <= width) break;
    }
    if (len == 0) { /* one character and the ellipsis */
        size_t k = 1;
        while (out[k] && ((unsigned char)out[k] & 0xc0) == 0x80) k++;
        snprintf(tmp, sizeof tmp, "%.*s\xe2\x80\xa6", (int)k, out);
    }
    snprintf(out, n, "%s", tmp);
}

/* ---- layout helpers ---- */

#define PAD 12.0
#define TITLE_SIZE 15.0
#define LABEL_SIZE 11.0
#define TICK_SIZE 10.5

static double nice_step(double range, int target) {
    if (!(range > 0)) return 1;
    const double raw = range / target, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
}

static void fmt_tick(char *b, size_t n, double v, double step, int percent) {
    if (percent) {
        v *= 100, step *= 100;
    }
    int dig = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dig > 6) dig = 6;
    if (fabs(v) < 1e-12) v = 0;
    snprintf(b, n, percent ? "%.*f%%" : "%.*f", dig, v);
}

static void fmt_value(char *b, size_t n, double v, const char *fmt, int percent) {
    if (isnan(v)) { snprintf(b, n, "n/a"); return; }
    char f[32];
    snprintf(f, sizeof f, "%s%s", fmt ? fmt : (percent ? "%.1f" : "%.3g"), percent ? "%%" : "");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(b, n, f, percent ? v * 100 : v);
#pragma GCC diagnostic pop
}

static void line(cairo_t *cr, double x0, double y0, double x1, double y1, rp_rgb c, double width, int dashed) {
    rp_set(cr, c, 1);
    cairo_set_line_width(cr, width);
    if (dashed) {
        const double d[2] = {6, 4};
        cairo_set_dash(cr, d, 2, 0);
    }
    cairo_move_to(cr, x0, y0);
    cairo_line_to(cr, x1, y1);
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
}

static void fill_rect(cairo_t *cr, double x, double y, double w, double h, rp_rgb c, double alpha) {
    rp_set(cr, c, alpha);
    cairo_rectangle(cr, x, y, w, h);
    cairo_fill(cr);
}

/* The title at the top; returns the y below it. */
static double draw_title(rp_canvas *c, const char *title) {
    if (!title || !*title) return PAD;
    char t[512];
    rp_fit_text(c, title, TITLE_SIZE, 1, c->w - 2 * PAD, t, sizeof t);
    rp_rect r = rp_text(c, PAD, PAD, t, TITLE_SIZE, 1, RP_INK, 0, 0, 0);
    return r.y1 + 8;
}

double rp_legend(rp_canvas *c, double x0, double y, double width, int n, const char *const *names,
                 const rp_rgb *colors, int draw) {
    if (n <= 0) return 0;
    const double th = rp_text_height(c, LABEL_SIZE), sw = 12, gap = 16;
    double x = x0, rows = 1;
    for (int i = 0; i < n; i++) {
        char t[256];
        rp_fit_text(c, names[i] ? names[i] : "", LABEL_SIZE, 0, width - sw - 6, t, sizeof t);
        const double ew = sw + 5 + rp_text_width(c, t, LABEL_SIZE, 0);
        if (x > x0 && x + ew > x0 + width) x = x0, rows++;
        const double yy = y + (rows - 1) * (th + 4);
        if (draw) {
            fill_rect(c->cr, x, yy + (th - sw) / 2, sw, sw, colors[i], 1);
            rp_text(c, x + sw + 5, yy, t, LABEL_SIZE, 0, RP_INK, 0, 0, 0);
        }
        x += ew + gap;
    }
    return rows * (th + 4) + 4;
}

static double legend(rp_canvas *c, double y, int n, const char *const *names, const rp_rgb *colors, int draw) {
    return rp_legend(c, PAD, y, c->w - 2 * PAD, n, names, colors, draw);
}

/* the label and legend entries of a bar chart */
static void bar_legend(const rp_bars *b, int *n, const char *const **names, rp_rgb *cols) {
    *n = 0;
    if (b->n_legend > 0) {
        *n = b->n_legend < RP_MAX_SERIES ? b->n_legend : RP_MAX_SERIES;
        *names = b->legend;
        for (int i = 0; i < *n; i++) cols[i] = b->legend_color[i];
    } else if (b->n_series > 1 && b->series) {
        *n = b->n_series;
        *names = b->series;
        for (int i = 0; i < *n; i++) cols[i] = b->series_color ? b->series_color[i] : rp_series_rgb(i);
    }
}

/* Wrap s into at most 3 lines of width w at font size; returns the line count, 0 when it does not fit without
 * cutting a word. */
static int wrap(rp_canvas *c, const char *s, double size, double w, char lines[3][128]) {
    char buf[384];
    snprintf(buf, sizeof buf, "%s", s ? s : "");
    int n = 0;
    lines[0][0] = 0;
    for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
        char cand[260];
        if (n > 0 && lines[n - 1][0]) {
            snprintf(cand, sizeof cand, "%s %s", lines[n - 1], tok);
            if (strlen(cand) < 128 && rp_text_width(c, cand, size, 0) <= w) {
                memcpy(lines[n - 1], cand, strlen(cand) + 1);
                continue;
            }
        }
        if (rp_text_width(c, tok, size, 0) > w || n == 3) return 0;
        snprintf(lines[n++], 128, "%s", tok);
    }
    if (n == 0) { lines[0][0] = 0; n = 1; }
    return n;
}

/* the category labels of vertical bars: size and lines fitting slot width w */
static int cat_lines(rp_canvas *c, const char *s, double w, double *size, char lines[3][128]) {
    for (double sz = LABEL_SIZE; sz >= 8.5; sz -= 1) {
        int n = wrap(c, s, sz, w, lines);
        if (n) { *size = sz; return n; }
    }
    *size = 8.5;
    rp_fit_text(c, s, 8.5, 0, w, lines[0], 128);
    return 1;
}

/* ---- bars ---- */

static double bar_value(const rp_bars *b, int s, int k) { return b->v[(size_t)s * b->n_cat + k]; }

static void bar_label(const rp_bars *b, int s, int k, char *out, size_t n) {
    const char *o = b->bar_label ? b->bar_label[(size_t)s * b->n_cat + k] : NULL;
    if (o) snprintf(out, n, "%s", o);
    else fmt_value(out, n, bar_value(b, s, k), b->fmt, b->percent);
}

static rp_rgb bar_rgb(const rp_bars *b, int s, int k) {
    if (b->bar_color) return b->bar_color[(size_t)s * b->n_cat + k];
    return b->series_color ? b->series_color[s] : rp_series_rgb(s);
}

static double data_max(const rp_bars *b) {
    double m = 0;
    for (int s = 0; s < b->n_series; s++)
        for (int k = 0; k < b->n_cat; k++)
            if (!isnan(bar_value(b, s, k)) && bar_value(b, s, k) > m) m = bar_value(b, s, k);
    if (b->ref_on && b->ref > m) m = b->ref;
    return m;
}

/* axis maximum and tick step */
static void value_axis(const rp_bars *b, double *vmax, double *step) {
    double m = b->vmax > 0 ? b->vmax : data_max(b) * 1.08;
    if (!(m > 0)) m = b->percent ? 1 : 1;
    *step = nice_step(m, 5);
    *vmax = b->vmax > 0 ? b->vmax : ceil(m / *step - 1e-9) * *step;
}

static void ref_line_label(rp_canvas *c, const rp_bars *b, double x0, double x1, double y0, double y1, int horiz) {
    if (!b->ref_label) return;
    const double th = rp_text_height(c, TICK_SIZE), tw = rp_text_width(c, b->ref_label, TICK_SIZE, 0);
    /* candidates next to the line, inside the plot: the first that hits no text */
    rp_rect cand[4];
    if (!horiz) { /* horizontal line at y0 from x0 to x1 */
        cand[0] = (rp_rect){x1 - tw - 2, y0 - th - 2, x1 - 2, y0 - 2};
        cand[1] = (rp_rect){x1 - tw - 2, y0 + 2, x1 - 2, y0 + th + 2};
        cand[2] = (rp_rect){x0 + 2, y0 - th - 2, x0 + tw + 2, y0 - 2};
        cand[3] = (rp_rect){x0 + 2, y0 + 2, x0 + tw + 2, y0 + th + 2};
    } else { /* vertical line at x0 from y0 (top) to y1 */
        cand[0] = (rp_rect){x0 + 3, y0, x0 + 3 + tw, y0 + th};
        cand[1] = (rp_rect){x0 - 3 - tw, y0, x0 - 3, y0 + th};
        cand[2] = (rp_rect){x0 + 3, y1 - th - 2, x0 + 3 + tw, y1 - 2};
        cand[3] = (rp_rect){x0 - 3 - tw, y1 - th - 2, x0 - 3, y1 - 2};
    }
    for (int i = 0; i < 4; i++)
        if (!rp_canvas_collides(c, cand[i]) && cand[i].x0 >= 0 && cand[i].x1 <= c->w) {
            rp_text(c, cand[i].x0, cand[i].y0, b->ref_label, TICK_SIZE, 0, RP_MUTED, 0, 0, 0);
            return;
        }
}

/* Title, legend and value axis, shared by both orientations; returns the y below the legend. */
static double bars_head(rp_canvas *c, const rp_bars *b, double *vmax, double *step) {
    double y = draw_title(c, b->title);
    int nl;
    const char *const *ln = NULL;
    rp_rgb lc[RP_MAX_SERIES];
    bar_legend(b, &nl, &ln, lc);
    y += legend(c, y, nl, ln, lc, 1);
    value_axis(b, vmax, step);
    return y;
}

static g4c_status bars_vertical(rp_canvas *c, const rp_bars *b) {
    cairo_t *cr = c->cr;
    double vmax, step, y = bars_head(c, b, &vmax, &step);
    const int nt = (int)floor(vmax / step + 1e-9);
    double tick_w = 0;
    char t[64];
    for (int i = 0; i <= nt; i++) {
        fmt_tick(t, sizeof t, i * step, step, b->percent);
        const double w = rp_text_width(c, t, TICK_SIZE, 0);
        if (w > tick_w) tick_w = w;
    }
    const double th = rp_text_height(c, LABEL_SIZE);
    const double axis_title_w = b->value_label ? rp_text_height(c, LABEL_SIZE) + 6 : 0;
    const double left = PAD + axis_title_w + tick_w + 6, right = c->w - PAD;
    const double slot = (right - left) / (b->n_cat > 0 ? b->n_cat : 1);
    /* category labels: the tallest wrap decides the bottom margin */
    int max_lines = 1;
    for (int k = 0; k < b->n_cat; k++) {
        char lines[3][128];
        double sz;
        int n = cat_lines(c, b->cats[k], slot - 4, &sz, lines);
        if (n > max_lines) max_lines = n;
    }
    const double bottom = c->h - PAD - max_lines * th - 6;
    /* bars and value labels: the font shrinks until a label fits its bar's pitch; else labels stand upright */
    const int ns = b->n_series > 0 ? b->n_series : 1;
    const double group = slot * (ns > 1 ? 0.8 : 0.62), bw = group / ns;
    double vsize = LABEL_SIZE;
    double maxw = 0;
    for (;; vsize -= 0.5) {
        maxw = 0;
        for (int s = 0; s < ns; s++)
            for (int k = 0; k < b->n_cat; k++) {
                bar_label(b, s, k, t, sizeof t);
                const double w = rp_text_width(c, t, vsize, 0);
                if (w > maxw) maxw = w;
            }
        if (maxw <= bw - 2 || vsize <= 8) break;
    }
    const int upright = maxw > bw - 2;
    const double band = upright ? maxw + 4 : rp_text_height(c, vsize) + 4;
    const double top = y + band;
    if (bottom - top < 20) return G4C_E_ARG;
    const double scale = (bottom - top) / vmax;
    /* grid, ticks */
    for (int i = 0; i <= nt; i++) {
        const double yy = bottom - i * step * scale;
        if (i > 0) line(cr, left, yy, right, yy, RP_GRID, 1, 0);
        fmt_tick(t, sizeof t, i * step, step, b->percent);
        rp_text(c, left - 6, yy, t, TICK_SIZE, 0, RP_MUTED, 2, 1, 0);
    }
    if (b->value_label) {
        char vl[256];
        rp_fit_text(c, b->value_label, LABEL_SIZE, 0, bottom - top, vl, sizeof vl);
        rp_text(c, PAD, (top + bottom) / 2, vl, LABEL_SIZE, 0, RP_MUTED, 0, 1, 1);
    }
    for (int k = 0; k < b->n_cat; k++) {
        const double gx = left + k * slot + (slot - group) / 2;
        for (int s = 0; s < ns; s++) {
            const double v = bar_value(b, s, k), x = gx + s * bw;
            const double hh = isnan(v) ? 0 : (v > vmax ? vmax : v < 0 ? 0 : v) * scale;
            if (hh > 0) fill_rect(cr, x + 1, bottom - hh, bw - 2, hh, bar_rgb(b, s, k), 1);
            bar_label(b, s, k, t, sizeof t);
            rp_text(c, x + bw / 2, bottom - hh - 2, t, vsize, 0, isnan(v) ? RP_MUTED : RP_INK, 1, 2, upright);
        }
        char lines[3][128];
        double sz;
        const int n = cat_lines(c, b->cats[k], slot - 4, &sz, lines);
        for (int i = 0; i < n; i++)
            rp_text(c, left + (k + 0.5) * slot, bottom + 5 + i * th, lines[i], sz, 0, RP_INK, 1, 0, 0);
    }
    line(cr, left, bottom + 0.5, right, bottom + 0.5, RP_INK, 1, 0);
    if (b->ref_on && b->ref <= vmax) {
        const double yy = bottom - b->ref * scale;
        line(cr, left, yy, right, yy, RP_INK, 1.2, 1);
        ref_line_label(c, b, left, right, yy, yy, 0);
    }
    return G4C_OK;
}

static g4c_status bars_horizontal(rp_canvas *c, const rp_bars *b) {
    cairo_t *cr = c->cr;
    double vmax, step, y = bars_head(c, b, &vmax, &step);
    const int ns = b->n_series > 0 ? b->n_series : 1;
    char t[256];
    double cat_w = 0, val_w = 0;
    const double cat_max = c->w * 0.35;
    for (int k = 0; k < b->n_cat; k++) {
        rp_fit_text(c, b->cats[k], LABEL_SIZE, 0, cat_max, t, sizeof t);
        const double w = rp_text_width(c, t, LABEL_SIZE, 0);
        if (w > cat_w) cat_w = w;
        for (int s = 0; s < ns; s++) {
            bar_label(b, s, k, t, sizeof t);
            const double v = rp_text_width(c, t, LABEL_SIZE, 0);
            if (v > val_w) val_w = v;
        }
    }
    const double tth = rp_text_height(c, TICK_SIZE);
    const double left = PAD + cat_w + 8, right = c->w - PAD - val_w - 6;
    const double bottom = c->h - PAD - tth - 4 - (b->value_label ? rp_text_height(c, LABEL_SIZE) + 4 : 0);
    const double top = y + 2;
    const double slot = (bottom - top) / (b->n_cat > 0 ? b->n_cat : 1);
    const double group = slot * 0.74, bh = group / ns;
    double vsize = LABEL_SIZE;
    while (vsize > 8 && rp_text_height(c, vsize) > bh + 1) vsize -= 0.5;
    double csize = LABEL_SIZE;
    while (csize > 8 && rp_text_height(c, csize) > slot) csize -= 0.5;
    if (right - left < 40 || slot < 6) return G4C_E_ARG;
    const double scale = (right - left) / vmax;
    const int nt = (int)floor(vmax / step + 1e-9);
    /* tick labels: skip some when they would touch */
    double tick_w = 0;
    for (int i = 0; i <= nt; i++) {
        fmt_tick(t, sizeof t, i * step, step, b->percent);
        const double w = rp_text_width(c, t, TICK_SIZE, 0);
        if (w > tick_w) tick_w = w;
    }
    const int every = (int)ceil((tick_w + 8) / (step * scale));
    for (int i = 0; i <= nt; i++) {
        const double xx = left + i * step * scale;
        if (i > 0) line(cr, xx, top, xx, bottom, RP_GRID, 1, 0);
        if (i % (every > 0 ? every : 1)) continue;
        fmt_tick(t, sizeof t, i * step, step, b->percent);
        rp_text(c, xx, bottom + 4, t, TICK_SIZE, 0, RP_MUTED, 1, 0, 0);
    }
    if (b->value_label) rp_text(c, (left + right) / 2, c->h - PAD, b->value_label, LABEL_SIZE, 0, RP_MUTED, 1, 2, 0);
    for (int k = 0; k < b->n_cat; k++) {
        const double gy = top + k * slot + (slot - group) / 2;
        for (int s = 0; s < ns; s++) {
            const double v = bar_value(b, s, k), yy = gy + s * bh;
            const double ww = isnan(v) ? 0 : (v > vmax ? vmax : v < 0 ? 0 : v) * scale;
            if (ww > 0) fill_rect(cr, left, yy + 0.5, ww, bh - 1, bar_rgb(b, s, k), 1);
            bar_label(b, s, k, t, sizeof t);
            rp_text(c, left + ww + 4, yy + bh / 2, t, vsize, 0, isnan(v) ? RP_MUTED : RP_INK, 0, 1, 0);
        }
        rp_fit_text(c, b->cats[k], csize, 0, cat_max, t, sizeof t);
        rp_text(c, left - 8, top + (k + 0.5) * slot, t, csize, 0, RP_INK, 2, 1, 0);
    }
    line(cr, left - 0.5, top, left - 0.5, bottom, RP_INK, 1, 0);
    if (b->ref_on && b->ref <= vmax) {
        const double xx = left + b->ref * scale;
        line(cr, xx, top, xx, bottom, RP_INK, 1.2, 1);
        ref_line_label(c, b, xx, xx, top, bottom, 1);
    }
    return G4C_OK;
}

g4c_status rp_draw_bars(rp_canvas *c, const rp_bars *b, g4c_err *err) {
    if (b->n_cat <= 0 || b->n_cat > RP_MAX_CATS || b->n_series <= 0 || b->n_series > RP_MAX_SERIES || !b->v)
        return G4C_FAIL(err, G4C_E_ARG, "bar chart '%s': %d categories, %d series", b->title ? b->title : "",
                        b->n_cat, b->n_series);
    g4c_status st = b->horizontal ? bars_horizontal(c, b) : bars_vertical(c, b);
    if (st != G4C_OK)
        return G4C_FAIL(err, G4C_E_ARG, "bar chart '%s' does not fit %dx%d", b->title ? b->title : "", c->w, c->h);
    return G4C_OK;
}

/* ---- scatter and histogram: a plot frame with two numeric axes ---- */

typedef struct {
    double left, right, top, bottom;
    double x0, x1, y0, y1;
} frame;

static double fx(const frame *f, double x) { return f->left + (x - f->x0) / (f->x1 - f->x0) * (f->right - f->left); }
static double fy(const frame *f, double y) { return f->bottom - (y - f->y0) / (f->y1 - f->y0) * (f->bottom - f->top); }

/* axes with ticks (every xstep / ystep) and titles; top is where the plot may start */
static g4c_status axes(rp_canvas *c, frame *f, double top, double xstep, double ystep, int xpct, int ypct,
                       const char *xl, const char *yl) {
    char t[64];
    double tick_w = 0;
    for (double v = f->y0; v <= f->y1 + 1e-9; v += ystep) {
        fmt_tick(t, sizeof t, v, ystep, ypct);
        const double w = rp_text_width(c, t, TICK_SIZE, 0);
        if (w > tick_w) tick_w = w;
    }
    const double lh = rp_text_height(c, LABEL_SIZE), th = rp_text_height(c, TICK_SIZE);
    f->left = PAD + (yl ? lh + 6 : 0) + tick_w + 6;
    f->right = c->w - PAD - 8;
    f->top = top + th / 2;
    f->bottom = c->h - PAD - th * 1.5 - 4 - (xl ? lh + 4 : 0);
    if (f->right - f->left < 40 || f->bottom - f->top < 40) return G4C_E_ARG;
    for (double v = f->y0; v <= f->y1 + 1e-9; v += ystep) {
        const double yy = fy(f, v);
        if (v > f->y0 + 1e-9) line(c->cr, f->left, yy, f->right, yy, RP_GRID, 1, 0);
        fmt_tick(t, sizeof t, v, ystep, ypct);
        rp_text(c, f->left - 6, yy, t, TICK_SIZE, 0, RP_MUTED, 2, 1, 0);
    }
    double xw = 0;
    for (double v = f->x0; v <= f->x1 + 1e-9; v += xstep) {
        fmt_tick(t, sizeof t, v, xstep, xpct);
        const double w = rp_text_width(c, t, TICK_SIZE, 0);
        if (w > xw) xw = w;
    }
    const double px = (f->right - f->left) * xstep / (f->x1 - f->x0);
    const int every = px > 0 ? (int)ceil((xw + 8) / px) : 1;
    int i = 0;
    for (double v = f->x0; v <= f->x1 + 1e-9; v += xstep, i++) {
        const double xx = fx(f, v);
        if (v > f->x0 + 1e-9) line(c->cr, xx, f->top, xx, f->bottom, RP_GRID, 1, 0);
        if (i % (every > 0 ? every : 1)) continue;
        fmt_tick(t, sizeof t, v, xstep, xpct);
        rp_text(c, xx, f->bottom + th / 2 + 4, t, TICK_SIZE, 0, RP_MUTED, 1, 0, 0); /* clear of the y tick at 0 */
    }
    line(c->cr, f->left, f->bottom + 0.5, f->right, f->bottom + 0.5, RP_INK, 1, 0);
    line(c->cr, f->left - 0.5, f->top, f->left - 0.5, f->bottom, RP_INK, 1, 0);
    if (xl) rp_text(c, (f->left + f->right) / 2, c->h - PAD, xl, LABEL_SIZE, 0, RP_MUTED, 1, 2, 0);
    if (yl) {
        char v[256];
        rp_fit_text(c, yl, LABEL_SIZE, 0, f->bottom - f->top, v, sizeof v);
        rp_text(c, PAD, (f->top + f->bottom) / 2, v, LABEL_SIZE, 0, RP_MUTED, 0, 1, 1);
    }
    return G4C_OK;
}

/* a label near (x, y) inside the frame where it hits no other text */
static void place_label(rp_canvas *c, const frame *f, double x, double y, const char *s, double size, rp_rgb col) {
    const double w = rp_text_width(c, s, size, 1), h = rp_text_height(c, size);
    const double dx[] = {10, 10, -10 - w, -10 - w, -w / 2, -w / 2};
    const double dy[] = {-10 - h, 10, -10 - h, 10, -14 - h, 14};
    for (int shift = 0; shift < 12; shift++)
        for (int i = 0; i < 6; i++) {
            const double sy = (i % 2 ? 1 : -1) * shift * (h + 2);
            rp_rect r = {x + dx[i], y + dy[i] + sy, x + dx[i] + w, y + dy[i] + sy + h};
            if (r.x0 < f->left + 2 || r.x1 > f->right - 2 || r.y0 < f->top || r.y1 > f->bottom - 2) continue;
            if (rp_canvas_collides(c, r)) continue;
            rp_text(c, r.x0, r.y0, s, size, 1, col, 0, 0, 0);
            return;
        }
}

g4c_status rp_draw_scatter(rp_canvas *c, const rp_scatter *s, g4c_err *err) {
    double y = draw_title(c, s->title);
    rp_rgb lc[RP_MAX_SERIES];
    const int ns = s->n_sets < RP_MAX_SERIES ? s->n_sets : RP_MAX_SERIES;
    for (int i = 0; i < ns; i++) lc[i] = s->set_color ? s->set_color[i] : rp_series_rgb(i);
    if (ns > 1 && s->set_names) y += legend(c, y, ns, s->set_names, lc, 1);
    frame f = {0, 0, 0, 0, s->x0, s->x1, s->y0, s->y1};
    if (!(f.x1 > f.x0) || !(f.y1 > f.y0)) return G4C_FAIL(err, G4C_E_ARG, "scatter: empty axis range");
    if (axes(c, &f, y, nice_step(f.x1 - f.x0, 5), nice_step(f.y1 - f.y0, 5), s->percent, s->percent, s->x_label,
             s->y_label) != G4C_OK)
        return G4C_FAIL(err, G4C_E_ARG, "scatter '%s' does not fit %dx%d", s->title ? s->title : "", c->w, c->h);
    cairo_t *cr = c->cr;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s->n[k]; i++) {
            const double px = fx(&f, s->x[k][i]), py = fy(&f, s->y[k][i]);
            cairo_arc(cr, px, py, 4.5, 0, 2 * RP_PI);
            rp_set(cr, lc[k], 0.55);
            cairo_fill_preserve(cr);
            rp_set(cr, lc[k], 1);
            cairo_set_line_width(cr, 1);
            cairo_stroke(cr);
        }
    for (int k = 0; s->show_mean && k < ns; k++) {
        if (!s->n[k]) continue;
        double mx = 0, my = 0;
        for (int i = 0; i < s->n[k]; i++) mx += s->x[k][i], my += s->y[k][i];
        mx /= s->n[k], my /= s->n[k];
        const double px = fx(&f, mx), py = fy(&f, my);
        const rp_rgb dark = {(uint8_t)(lc[k].r * 0.6), (uint8_t)(lc[k].g * 0.6), (uint8_t)(lc[k].b * 0.6)};
        rp_set(cr, dark, 1);
        cairo_set_line_width(cr, 3);
        cairo_move_to(cr, px - 7, py - 7), cairo_line_to(cr, px + 7, py + 7);
        cairo_move_to(cr, px - 7, py + 7), cairo_line_to(cr, px + 7, py - 7);
        cairo_stroke(cr);
        char t[128];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(t, sizeof t, s->mean_fmt ? s->mean_fmt : "mean (%.2f, %.2f)", mx, my);
#pragma GCC diagnostic pop
        place_label(c, &f, px, py, t, LABEL_SIZE, dark);
    }
    return G4C_OK;
}

g4c_status rp_draw_hist(rp_canvas *c, const rp_hist *h, g4c_err *err) {
    const int nb = h->bins > 0 && h->bins <= 200 ? h->bins : 20;
    if (!(h->hi > h->lo)) return G4C_FAIL(err, G4C_E_ARG, "histogram: empty range");
    int count[200] = {0}, cmax = 0;
    for (int i = 0; i < h->n; i++) {
        int k = (int)floor((h->v[i] - h->lo) / (h->hi - h->lo) * nb);
        if (k == nb && h->v[i] <= h->hi) k = nb - 1;
        if (k < 0 || k >= nb) continue;
        if (++count[k] > cmax) cmax = count[k];
    }
    const double y = draw_title(c, h->title);
    const double lh = rp_text_height(c, TICK_SIZE);
    double ystep = nice_step(cmax > 0 ? cmax * 1.1 : 1, 4);
    if (ystep < 1) ystep = 1;
    const double ymax = ceil((cmax > 0 ? cmax * 1.1 : 1) / ystep) * ystep;
    frame f = {0, 0, 0, 0, h->lo, h->hi, 0, ymax};
    if (axes(c, &f, y + lh + 4, nice_step(h->hi - h->lo, 10), ystep, 0, 0, h->x_label, h->y_label) != G4C_OK)
        return G4C_FAIL(err, G4C_E_ARG, "histogram '%s' does not fit %dx%d", h->title ? h->title : "", c->w, c->h);
    const double bw = (f.right - f.left) / nb;
    double size = TICK_SIZE;
    while (size > 7.5 && rp_text_width(c, "000", size, 0) > bw - 1) size -= 0.5;
    for (int k = 0; k < nb; k++) {
        if (!count[k]) continue;
        const double x0 = f.left + k * bw, mid = h->lo + (k + 0.5) * (h->hi - h->lo) / nb;
        const double top = fy(&f, count[k]);
        fill_rect(c->cr, x0 + 1, top, bw - 2, f.bottom - top, h->ref_on && mid < h->ref ? h->below : h->above, 1);
        char t[16];
        snprintf(t, sizeof t, "%d", count[k]);
        rp_text(c, x0 + bw / 2, top - 2, t, size, 0, RP_INK, 1, 2, 0);
    }
    if (h->ref_on) {
        const double xx = fx(&f, h->ref);
        line(c->cr, xx, f.top, xx, f.bottom, RP_INK, 1.5, 1);
        if (h->ref_label) {
            rp_bars b = {.ref_label = h->ref_label};
            ref_line_label(c, &b, xx, xx, f.top, f.bottom, 1);
        }
    }
    return G4C_OK;
}
