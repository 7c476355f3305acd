/* The report's figures checked by content (src/report, docs/REPORT.md): canvas and PNG sizes, bar heights in
 * proportion to their values, status colors exactly on box edges, translucent polygon interiors, no overlapping
 * text, robust polygon parsing, and a whole report from crafted RUN folders: the HTML parses (tag balance), every
 * image is inlined and decodes, the value labels are in the page.
 * `test_report --check-screenshot FILE W H` checks a browser screenshot (tests/report/test_report.sh). */
#include <cairo.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/report.h"
#include "test.h"

static int same(rp_rgb a, rp_rgb b, int tol) {
    return abs(a.r - b.r) <= tol && abs(a.g - b.g) <= tol && abs(a.b - b.b) <= tol;
}

static void show(const char *what, rp_rgb p) { fprintf(stderr, "  %s: pixel %d,%d,%d\n", what, p.r, p.g, p.b); }

/* ---- PNG decoding through cairo ---- */

typedef struct {
    const unsigned char *p;
    size_t n, off;
} rd;

static cairo_status_t png_read(void *closure, unsigned char *data, unsigned int len) {
    rd *r = closure;
    if (r->off + len > r->n) return CAIRO_STATUS_READ_ERROR;
    memcpy(data, r->p + r->off, len);
    r->off += len;
    return CAIRO_STATUS_SUCCESS;
}

/* size of a PNG in memory; 0 when it does not decode */
static int png_size(const unsigned char *p, size_t n, int *w, int *h) {
    if (n < 8 || memcmp(p, "\x89PNG\r\n\x1a\n", 8)) return 0;
    rd r = {p, n, 0};
    cairo_surface_t *s = cairo_image_surface_create_from_png_stream(png_read, &r);
    const int ok = cairo_surface_status(s) == CAIRO_STATUS_SUCCESS;
    if (ok) *w = cairo_image_surface_get_width(s), *h = cairo_image_surface_get_height(s);
    cairo_surface_destroy(s);
    return ok;
}

static void test_canvas_png(void) {
    rp_canvas c;
    CHECK(rp_canvas_init(&c, 123, 45, NULL) == G4C_OK);
    CHECK(same(rp_canvas_pixel(&c, 5, 5), (rp_rgb){255, 255, 255}, 0));
    unsigned char *png;
    size_t n;
    int w = 0, h = 0;
    CHECK(rp_canvas_png(&c, &png, &n, NULL) == G4C_OK);
    CHECK(png_size(png, n, &w, &h) && w == 123 && h == 45);
    free(png);
    /* the text registry: two texts on the same spot overlap, one past the edge is outside */
    rp_text(&c, 10, 10, "hello", 12, 0, RP_INK, 0, 0, 0);
    CHECK(rp_canvas_overlaps(&c) == 0 && rp_canvas_outside(&c) == 0);
    rp_text(&c, 14, 12, "world", 12, 0, RP_INK, 0, 0, 0);
    CHECK(rp_canvas_overlaps(&c) == 1);
    rp_text(&c, 120, 40, "edge", 12, 0, RP_INK, 0, 0, 0);
    CHECK(rp_canvas_outside(&c) == 1);
    /* invalid UTF-8 is drawn as '?' and does not break the context */
    rp_text(&c, 10, 30, "bad \xff\xfe utf8", 10, 0, RP_INK, 0, 0, 0);
    CHECK(cairo_status(c.cr) == CAIRO_STATUS_SUCCESS);
    char fit[64];
    rp_fit_text(&c, "a very long label that cannot fit", 11, 0, 40, fit, sizeof fit);
    CHECK(rp_text_width(&c, fit, 11, 0) <= 40 && strstr(fit, "\xe2\x80\xa6"));
    rp_canvas_free(&c);
}

/* runs of one exact color along row y: their centers, up to max */
static int runs(rp_canvas *c, int y, rp_rgb col, int *center, int max) {
    int n = 0, start = -1;
    for (int x = 0; x <= c->w; x++) {
        const int on = x < c->w && same(rp_canvas_pixel(c, x, y), col, 0);
        if (on && start < 0) start = x;
        if (!on && start >= 0) {
            if (x - start >= 3 && n < max) center[n++] = (start + x) / 2;
            start = -1;
        }
    }
    return n;
}

/* the vertical extent of color col in column x through row y */
static int extent(rp_canvas *c, int x, int y, rp_rgb col) {
    int top = y, bot = y;
    while (top > 0 && same(rp_canvas_pixel(c, x, top - 1), col, 0)) top--;
    while (bot < c->h - 1 && same(rp_canvas_pixel(c, x, bot + 1), col, 0)) bot++;
    return bot - top + 1;
}

static void test_bars_vertical(void) {
    static const char *const cats[6] = {"text short", "text medium", "text long", "image short", "image medium",
                                        "image long with a long name"};
    const double v[6] = {40, 60, 80, 100, 70, 50};
    static const char *const lab[6] = {"40.0", "60.0", "80.0", "100.0", "70.0", "50.0"};
    rp_rgb col[6];
    for (int i = 0; i < 6; i++) col[i] = i < 3 ? RP_TEXT_MOD : RP_IMAGE_MOD;
    static const char *const leg[2] = {"text", "image"};
    const rp_rgb legc[2] = {RP_TEXT_MOD, RP_IMAGE_MOD};
    rp_bars b = {.title = "Generation speed", .value_label = "tokens / s", .n_cat = 6, .cats = cats, .n_series = 1,
                 .v = v, .bar_color = col, .bar_label = lab, .n_legend = 2, .legend = leg, .legend_color = legc};
    rp_canvas c;
    CHECK(rp_canvas_init(&c, 400, 320, NULL) == G4C_OK);
    CHECK(rp_draw_bars(&c, &b, NULL) == G4C_OK);
    CHECKF(rp_canvas_overlaps(&c) == 0 && rp_canvas_outside(&c) == 0, "%d overlaps, %d outside",
           rp_canvas_overlaps(&c), rp_canvas_outside(&c));
    /* the row through the middle of the plot crosses 3 blue bars, then 3 orange ones (text vs image) */
    int xb[8], xo[8];
    const int y = 230;
    const int nb = runs(&c, y, RP_TEXT_MOD, xb, 8), no = runs(&c, y, RP_IMAGE_MOD, xo, 8);
    CHECKF(nb == 3 && no == 3, "%d blue, %d orange runs", nb, no);
    if (nb == 3 && no == 3) {
        CHECK(xb[2] < xo[0]);
        /* heights in proportion to the values (within 2 px) */
        const int x[6] = {xb[0], xb[1], xb[2], xo[0], xo[1], xo[2]};
        double hh[6];
        for (int i = 0; i < 6; i++) hh[i] = extent(&c, x[i], y, col[i]);
        for (int i = 1; i < 6; i++)
            CHECKF(fabs(hh[i] / hh[0] * v[0] - v[i]) <= 2.0 * v[0] / hh[0] + 0.5, "bar %d: %.0f px vs %.0f px", i,
                   hh[i], hh[0]);
    }
    /* a bigger canvas of the same chart: the same relation */
    rp_canvas_free(&c);
    /* grouped: 2 series x 2 categories, series colors by default */
    const double g[4] = {0.615, 0.785, 0.2, 0.35};
    static const char *const gc[2] = {"strict exact match", "official VQA accuracy"};
    static const char *const gs[2] = {"model A", "model B"};
    rp_bars gb = {.title = "VQA accuracy", .n_cat = 2, .cats = gc, .n_series = 2, .series = gs, .v = g, .percent = 1,
                  .vmax = 1};
    CHECK(rp_canvas_init(&c, 580, 340, NULL) == G4C_OK);
    CHECK(rp_draw_bars(&c, &gb, NULL) == G4C_OK);
    CHECK(rp_canvas_overlaps(&c) == 0 && rp_canvas_outside(&c) == 0);
    int xa[4], xbb[4];
    CHECK(runs(&c, 300, rp_series_rgb(0), xa, 4) == 2 && runs(&c, 300, rp_series_rgb(1), xbb, 4) == 2);
    rp_canvas_free(&c);
    /* a chart that cannot fit fails cleanly */
    CHECK(rp_canvas_init(&c, 60, 40, NULL) == G4C_OK);
    CHECK(rp_draw_bars(&c, &b, NULL) != G4C_OK);
    rp_canvas_free(&c);
}

static long count_color(rp_canvas *c, rp_rgb col) {
    long n = 0;
    for (int y = 0; y < c->h; y++)
        for (int x = 0; x < c->w; x++) n += same(rp_canvas_pixel(c, x, y), col, 0);
    return n;
}

static void test_bars_horizontal(void) {
    static const char *const cats[3] = {"person", "dining table", "cell phone"};
    const double v[3] = {0.8, 0.3, 0.1};
    static const char *const lab[3] = {"8/10", "3/10", "1/10"};
    const rp_rgb col[3] = {rp_status_rgb[RP_ST_TP], rp_status_rgb[RP_ST_NEAR], rp_status_rgb[RP_ST_FP]};
    rp_bars b = {.title = "Per-class coarse recall", .n_cat = 3, .cats = cats, .n_series = 1, .v = v, .bar_color = col,
                 .bar_label = lab, .percent = 1, .vmax = 1, .horizontal = 1};
    rp_canvas c;
    CHECK(rp_canvas_init(&c, 500, 200, NULL) == G4C_OK);
    CHECK(rp_draw_bars(&c, &b, NULL) == G4C_OK);
    CHECK(rp_canvas_overlaps(&c) == 0 && rp_canvas_outside(&c) == 0);
    /* equal heights: the pixel counts of the three colors go as the values */
    const long g = count_color(&c, col[0]), a = count_color(&c, col[1]), r = count_color(&c, col[2]);
    CHECKF(g > 0 && fabs((double)a / g - 0.3 / 0.8) < 0.04 && fabs((double)r / g - 0.1 / 0.8) < 0.04,
           "green %ld amber %ld red %ld", g, a, r);
    rp_canvas_free(&c);
}

static void test_scatter_hist(void) {
    const double x[5] = {0.1, 0.5, 0.9, 1.0, 0.0}, y[5] = {0.2, 0.6, 0.9, 1.0, 0.0};
    const double *xs[1] = {x}, *ys[1] = {y};
    const int n[1] = {5};
    rp_scatter s = {.title = "precision vs recall", .x_label = "recall", .y_label = "precision", .n_sets = 1, .n = n,
                    .x = xs, .y = ys, .show_mean = 1, .mean_fmt = "mean R %.2f P %.2f", .x0 = 0, .x1 = 1, .y0 = 0,
                    .y1 = 1};
    rp_canvas c;
    CHECK(rp_canvas_init(&c, 580, 380, NULL) == G4C_OK);
    CHECK(rp_draw_scatter(&c, &s, NULL) == G4C_OK);
    CHECKF(rp_canvas_overlaps(&c) == 0 && rp_canvas_outside(&c) == 0, "%d overlaps", rp_canvas_overlaps(&c));
    rp_canvas_free(&c);
    const double iou[7] = {0.42, 0.51, 0.55, 0.87, 0.95, 0.99, 1.0};
    rp_hist h = {.title = "IoU", .x_label = "IoU", .y_label = "predictions", .v = iou, .n = 7, .lo = 0, .hi = 1,
                 .bins = 20, .ref = 0.5, .ref_on = 1, .ref_label = "strict 0.5", .below = rp_status_rgb[RP_ST_NEAR],
                 .above = rp_status_rgb[RP_ST_TP]};
    CHECK(rp_canvas_init(&c, 580, 340, NULL) == G4C_OK);
    CHECK(rp_draw_hist(&c, &h, NULL) == G4C_OK);
    CHECK(rp_canvas_overlaps(&c) == 0 && rp_canvas_outside(&c) == 0);
    /* 1 bin below the line (0.42), 5 bins above: the green area is 6 units of count, amber 1 */
    const long g = count_color(&c, rp_status_rgb[RP_ST_TP]), a = count_color(&c, rp_status_rgb[RP_ST_NEAR]);
    CHECKF(a > 0 && fabs((double)g / a - 6.0) < 0.4, "green %ld amber %ld", g, a);
    rp_canvas_free(&c);
}

static g4c_image uniform(int w, int h, uint8_t v) {
    g4c_image img = {w, h, malloc((size_t)w * h * 3)};
    memset(img.rgb, v, (size_t)w * h * 3);
    return img;
}

static void test_overlay_boxes(void) {
    /* the same picture drawn 1:1 (300 x 200) and scaled by 1/2 (600 x 400 -> 300 x 200) */
    for (int scaled = 0; scaled < 2; scaled++) {
        const double k = scaled ? 2 : 1;
        g4c_image img = uniform((int)(300 * k), (int)(200 * k), 128);
        const rp_obox gt[1] = {{10 * k, 150 * k, 60 * k, 190 * k, "cat", 0, -1}};
        const rp_obox pred[4] = {{20 * k, 20 * k, 80 * k, 90 * k, "dog", RP_ST_TP, 0.81},
                                 {110 * k, 30 * k, 150 * k, 80 * k, "dog", RP_ST_NEAR, 0.41},
                                 {180 * k, 40 * k, 230 * k, 100 * k, "cat", RP_ST_CLASS, 0},
                                 {250 * k, 60 * k, 290 * k, 140 * k, "person", RP_ST_FP, 0}};
        rp_canvas c;
        rp_place pl;
        const int maxw = scaled ? 300 : 0;
        CHECK(rp_overlay_boxes(&c, &img, 0, 0, gt, 1, pred, 4, maxw, 0, "caption", &pl, NULL) == G4C_OK);
        CHECK(fabs(pl.scale - (scaled ? 0.5 : 1.0)) < 1e-12);
        CHECK(c.w >= pl.w && pl.w == 300 && pl.h == 200);
        CHECK(c.h > pl.h); /* the legend and caption under the photo */
        for (int i = 0; i < 4; i++) { /* the left edge, half-way down: exactly the status color */
            const int x = (int)floor(pl.ox + pred[i].x1 * pl.scale);
            const int y = (int)floor(pl.oy + (pred[i].y1 + pred[i].y2) / 2 * pl.scale);
            const rp_rgb p = rp_canvas_pixel(&c, x, y);
            CHECKF(same(p, rp_status_rgb[pred[i].status], 0), "box %d (%s) at %d,%d scaled %d: %d,%d,%d", i,
                   rp_status_names[pred[i].status], x, y, scaled, p.r, p.g, p.b);
            /* the right edge too, and the inside is the photo */
            const int xr = (int)floor(pl.ox + pred[i].x2 * pl.scale);
            CHECK(same(rp_canvas_pixel(&c, xr, y), rp_status_rgb[pred[i].status], 0));
            CHECK(same(rp_canvas_pixel(&c, (x + xr) / 2, y), (rp_rgb){128, 128, 128}, 0));
        }
        /* ground truth: blue at the start of its dashed top edge */
        const int gx = (int)floor(pl.ox + gt[0].x1 * pl.scale) + 2, gy = (int)floor(pl.oy + gt[0].y1 * pl.scale);
        CHECK(same(rp_canvas_pixel(&c, gx, gy), RP_GT, 0));
        CHECKF(rp_canvas_overlaps(&c) == 0 && rp_canvas_outside(&c) == 0, "scaled %d: %d overlaps", scaled,
               rp_canvas_overlaps(&c));
        rp_canvas_free(&c);
        if (scaled) { /* no photo: a gray placeholder of the given size */
            CHECK(rp_overlay_boxes(&c, NULL, 400, 300, gt, 1, pred, 4, 200, 0, NULL, &pl, NULL) == G4C_OK);
            CHECK(pl.w == 200 && pl.h == 150);
            CHECK(same(rp_canvas_pixel(&c, (int)pl.ox + 5, 100), (rp_rgb){0xd0, 0xd0, 0xd0}, 0));
            rp_canvas_free(&c);
        }
        g4c_image_free(&img);
    }
}

static void test_overlay_polygon(void) {
    g4c_image img = uniform(300, 200, 200);
    double sq[8] = {50, 50, 150, 50, 150, 150, 50, 150};
    rp_polygon p = {sq, 4, "dog"};
    rp_canvas c;
    rp_place pl;
    CHECK(rp_overlay_polygons(&c, &img, &p, 1, NULL, 0, 0, &pl, NULL) == G4C_OK);
    CHECK(c.w == 300 && c.h == 200);
    const rp_rgb col = rp_poly_rgb(0);
    const rp_rgb want = {(uint8_t)lround(200 * (1 - RP_POLY_ALPHA) + col.r * RP_POLY_ALPHA),
                         (uint8_t)lround(200 * (1 - RP_POLY_ALPHA) + col.g * RP_POLY_ALPHA),
                         (uint8_t)lround(200 * (1 - RP_POLY_ALPHA) + col.b * RP_POLY_ALPHA)};
    rp_rgb in = rp_canvas_pixel(&c, 100, 110);
    if (!same(in, want, 2)) show("interior", in);
    CHECK(same(in, want, 2));                                                /* translucent fill */
    CHECK(same(rp_canvas_pixel(&c, 250, 180), (rp_rgb){200, 200, 200}, 0)); /* outside: the photo */
    rp_rgb edge = rp_canvas_pixel(&c, 50, 110);
    if (!same(edge, col, 3)) show("outline", edge);
    CHECK(same(edge, col, 3)); /* the outline: opaque */
    CHECK(c.n_texts == 1);     /* the label */
    rp_canvas_free(&c);
    /* a message in a red banner across the top; the photo below it untouched */
    CHECK(rp_overlay_polygons(&c, &img, NULL, 0, "No polygon in the answer: the JSON has no polygon", 0, 0, NULL,
                              NULL) == G4C_OK);
    const rp_rgb banner = {(uint8_t)lround(200 * 0.12 + 0xb0 * 0.88), (uint8_t)lround(200 * 0.12 + 0x1c * 0.88),
                           (uint8_t)lround(200 * 0.12 + 0x1c * 0.88)};
    CHECK(same(rp_canvas_pixel(&c, 295, 2), banner, 2));
    CHECK(same(rp_canvas_pixel(&c, 150, 190), (rp_rgb){200, 200, 200}, 0));
    CHECK(rp_canvas_outside(&c) == 0);
    rp_canvas_free(&c);
    g4c_image_free(&img);
}

/* parse and compare: n polygons, the first one's points (pixels) and label */
static int parsed(const char *resp, int w, int h, int want_n, const double *pts, int n_pts, const char *label) {
    rp_polygon *p = NULL;
    char why[256];
    const int n = rp_parse_polygons(resp, w, h, &p, why, sizeof why);
    int ok = n == want_n;
    if (ok && n > 0) {
        ok = p[0].n == n_pts && (label ? p[0].label && !strcmp(p[0].label, label) : !p[0].label);
        for (int i = 0; ok && i < 2 * n_pts; i++) ok = fabs(p[0].xy[i] - pts[i]) < 1e-9;
    }
    if (ok && n == 0) ok = why[0] != 0;
    if (!ok) fprintf(stderr, "  parse '%s': %d polygons (%s)\n", resp ? resp : "(null)", n, n ? "" : why);
    rp_polygons_free(p, n > 0 ? n : 0);
    return ok;
}

static void test_parse_polygons(void) {
    const double tri[6] = {100, 100, 300, 100, 300, 200}; /* [100,200],[300,200],[300,400] on 1000 x 500 */
    CHECK(parsed("{\"polygon\": [[100, 200], [300, 200], [300, 400]], \"label\": \"dog\"}", 1000, 500, 1, tri, 3, "dog"));
    CHECK(parsed("Sure! Here it is:\n```json\n{\"polygon\": [[100, 200], [300, 200], [300, 400]], \"label\": \"dog\"}\n```\n"
                 "Hope that helps.", 1000, 500, 1, tri, 3, "dog"));
    CHECK(parsed("{\"label\": \"dog\", \"segmentation\": [[100, 200, 300, 200, 300, 400]]}", 1000, 500, 1, tri, 3, "dog"));
    CHECK(parsed("{\"points\": [{\"x\": 100, \"y\": 200}, {\"x\": 300, \"y\": 200}, {\"x\": 300, \"y\": 400}]}", 1000,
                 500, 1, tri, 3, NULL));
    CHECK(parsed("[[100, 200], [300, 200], [300, 400]]", 1000, 500, 1, tri, 3, NULL));
    CHECK(parsed("[{\"polygon\": [[100, 200], [300, 200], [300, 400]], \"label\": \"dog\"}, {\"polygon\": [[0, 0], "
                 "[10, 0], [10, 10], [0, 10]], \"label\": \"cat\"}]", 1000, 500, 2, tri, 3, "dog"));
    CHECK(parsed("{\"objects\": [{\"name\": \"dog\", \"vertices\": [[100, 200], [300, 200], [300, 400]]}]}", 1000, 500,
                 1, tri, 3, "dog"));
    CHECK(parsed("{\"polygon\": [[0.1, 0.2], [0.3, 0.2], [0.3, 0.4]]}", 1000, 500, 1, tri, 3, NULL)); /* fractions */
    const double clip[6] = {0, 0, 200, 100, 200, 50};
    CHECK(parsed("{\"polygon\": [[-50, -20], [1500, 1200], [1000, 500]]}", 200, 100, 1, clip, 3, NULL));
    CHECK(parsed("broken { [1, 2 then {\"polygon\": [[100, 200], [300, 200], [300, 400]]}", 1000, 500, 1, tri, 3, NULL));
    /* failures: zero polygons and a reason, never a crash */
    CHECK(parsed("I cannot outline objects.", 100, 100, 0, NULL, 0, NULL));
    CHECK(parsed("{\"label\": \"dog\"}", 100, 100, 0, NULL, 0, NULL));
    CHECK(parsed("{\"polygon\": [[1, 2], [3, 4]]}", 100, 100, 0, NULL, 0, NULL));
    CHECK(parsed("{\"polygon\": \"around the dog\"}", 100, 100, 0, NULL, 0, NULL));
    CHECK(parsed("```json\n{\"polygon\": [[1, 2], [3, \n```", 100, 100, 0, NULL, 0, NULL));
    CHECK(parsed("", 100, 100, 0, NULL, 0, NULL));
    CHECK(parsed(NULL, 100, 100, 0, NULL, 0, NULL));
    CHECK(parsed("\xff\xfe [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]] \xe2\x9c\x93", 100, 100, 0,
                 NULL, 0, NULL));
    char *pr = rp_segment_prompt("the dog");
    CHECK(pr && strstr(pr, "the dog") && strstr(pr, "\"polygon\"") && strstr(pr, "[0, 1000]"));
    free(pr);
}

static void test_base64(void) {
    const unsigned char d[5] = {0, 0xff, 'a', 'b', 'c'};
    for (size_t n = 0; n <= 5; n++) {
        char *e = rp_base64(d, n);
        size_t m = 99;
        unsigned char *back = rp_base64_decode(e, strlen(e), &m);
        CHECK(e && strlen(e) == (n + 2) / 3 * 4 && back && m == n && !memcmp(back, d, n));
        free(e), free(back);
    }
    char *e = rp_base64((const unsigned char *)"Man", 3);
    CHECK(!strcmp(e, "TWFu"));
    free(e);
    size_t m;
    CHECK(rp_base64_decode("TW!u", 4, &m) == NULL);
}

/* ---- the whole report from crafted RUN folders ---- */

static void put(const char *dir, const char *name, const char *text) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) fputs(text, f), fclose(f);
}

static void sub(const char *root, const char *name, char *out, size_t n) {
    if (snprintf(out, n, "%s/%s", root, name) >= (int)n) return;
    mkdir(out, 0755);
}

/* Tag balance: every non-void element closed in order, nothing after </html>. Returns 1 when it parses. */
static int html_balanced(const char *s, char *why, size_t wn) {
    static const char *const voids[] = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                                        "source", "track", "wbr"};
    char stack[64][16];
    int depth = 0, seen_html = 0;
    for (const char *p = s; *p; p++) {
        if (*p != '<') continue;
        if (!strncmp(p, "<!--", 4)) {
            const char *e = strstr(p, "-->");
            if (!e) { snprintf(why, wn, "unclosed comment"); return 0; }
            p = e + 2;
            continue;
        }
        if (p[1] == '!') { p = strchr(p, '>'); if (!p) return 0; continue; }
        const int closing = p[1] == '/';
        const char *q = p + 1 + closing;
        char name[16];
        size_t k = 0;
        while ((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9')) {
            if (k + 1 < sizeof name) name[k++] = *q;
            q++;
        }
        name[k] = 0;
        if (!k) { snprintf(why, wn, "a bare '<' at offset %ld", (long)(p - s)); return 0; }
        char quote = 0; /* the end of the tag, quotes respected */
        while (*q && (quote || *q != '>')) {
            if (quote && *q == quote) quote = 0;
            else if (!quote && (*q == '"' || *q == '\'')) quote = *q;
            q++;
        }
        if (!*q) { snprintf(why, wn, "unterminated <%s", name); return 0; }
        const int self = q[-1] == '/';
        p = q;
        if (closing) {
            if (!depth || strcmp(stack[depth - 1], name)) {
                snprintf(why, wn, "</%s> closes <%s>", name, depth ? stack[depth - 1] : "nothing");
                return 0;
            }
            depth--;
            if (!strcmp(name, "html")) seen_html = 1;
            continue;
        }
        if (seen_html) { snprintf(why, wn, "<%s> after </html>", name); return 0; }
        int is_void = self;
        for (size_t v = 0; v < sizeof voids / sizeof *voids; v++) is_void |= !strcmp(name, voids[v]);
        if (is_void) continue;
        if (depth == 64) { snprintf(why, wn, "too deep"); return 0; }
        snprintf(stack[depth++], sizeof stack[0], "%s", name);
        if (!strcmp(name, "style") || !strcmp(name, "script")) { /* raw text up to its end tag */
            char end[24];
            snprintf(end, sizeof end, "</%s>", name);
            const char *e = strstr(p, end);
            if (!e) { snprintf(why, wn, "unclosed <%s>", name); return 0; }
            p = e - 1;
        }
    }
    if (depth) { snprintf(why, wn, "<%s> never closed", stack[depth - 1]); return 0; }
    if (!seen_html) { snprintf(why, wn, "no </html>"); return 0; }
    return 1;
}

static char *slurp(const char *path, size_t *n) {
    char *b = NULL;
    if (g4c_read_file(path, (size_t)1 << 30, &b, n, NULL) != G4C_OK) return NULL;
    return b;
}

static void test_report_page(void) {
    char root[] = "/tmp/g4c-report-test.XXXXXX";
    if (!mkdtemp(root)) { CHECK(0); return; }
    char a[600], b[600], va[600], co[600], out[600];
    sub(root, "sysA", a, sizeof a);
    sub(root, "sysB", b, sizeof b);
    char pa[700], pb[700];
    sub(a, "perf", pa, sizeof pa);
    sub(b, "perf", pb, sizeof pb);
    sub(a, "vqa", va, sizeof va);
    sub(a, "coco", co, sizeof co);
    static const char *perf_fmt =
        "{\"kind\": \"perf\", \"model\": \"/models/%s\", \"framework\": \"gemma4c\", \"version\": \"0.1.0\", "
        "\"device\": \"cpu\", \"hardware\": {\"cpu\": \"Test CPU\", \"cores\": 8, \"memory_gib\": 31.2}, "
        "\"ignore_eos\": true, \"peak_mib\": %s, \"tests\": ["
        "{\"name\": \"text-short\", \"modality\": \"text\", \"prompt\": \"What is 2+2?\", \"max_tokens\": 50, "
        "\"prompt_tokens\": 18, \"gen_tokens\": 50, \"prompt_tok_s\": %s, \"gen_tok_s\": %s, \"ttft_ms\": 40, "
        "\"total_s\": 1.23, \"peak_mib\": 2345.5, \"stop\": \"length\", \"response\": \"4 <b>&</b>\"}, "
        "{\"name\": \"image-short\", \"modality\": \"image\", \"prompt\": \"What is this?\", \"max_tokens\": 50, "
        "\"prompt_tokens\": 290, \"gen_tokens\": 50, \"prompt_tok_s\": 812.5, \"gen_tok_s\": 17.25, \"ttft_ms\": 400, "
        "\"total_s\": 3.5, \"peak_mib\": 2500, \"stop\": \"length\", \"response\": \"A cup.\"}]}\n";
    char js[4096];
    snprintf(js, sizeof js, perf_fmt, "e2b-q4", "2500", "345.6", "19.88");
    put(pa, "perf.json", js);
    snprintf(js, sizeof js, perf_fmt, "e2b-bf16", "9100", "123.4", "7.5");
    put(pb, "perf.json", js);
    put(va, "metrics.json", "{\"task\": \"vqa\", \"strict_accuracy\": 0.5, \"vqa_accuracy\": 0.65, \"n\": 2, "
                            "\"per_answer_type\": {\"other\": {\"n\": 2, \"vqa_accuracy\": 0.65, \"strict_accuracy\": 0.5}}}\n");
    char line[4096];
    snprintf(line, sizeof line,
             "{\"key\": \"1\", \"image\": \"%s/images/coffee.jpg\", \"question\": \"What drink <is> it?\", "
             "\"prediction\": \"Coffee\", \"answer\": \"coffee\", \"strict\": 1, \"vqa\": 1}\n"
             "{\"key\": \"2\", \"image\": \"missing.jpg\", \"question\": \"How many spoons?\", \"prediction\": \"Two\", "
             "\"answer\": \"1\", \"strict\": 0, \"vqa\": 0.3}\n", G4C_FIXTURES);
    put(va, "samples.jsonl", line);
    put(co, "metrics.json", "{\"task\": \"coco\", \"precision\": 0.604, \"recall\": 0.917, \"f1\": 0.7, \"strict_precision\": "
                            "0.5, \"strict_recall\": 0.833, \"strict_f1\": 0.6, \"mean_tp_iou\": 0.759, \"total_tp\": 3, "
                            "\"total_pred\": 5, \"total_gt\": 4, \"n_images\": 2, \"status_counts\": {\"tp\": 3, \"near\": 1, "
                            "\"class\": 0, \"fp\": 1}, \"per_class\": {\"cup\": {\"n_gt\": 1, \"tp\": 1, \"recall\": 1}, "
                            "\"spoon\": {\"n_gt\": 3, \"tp\": 1, \"recall\": 0.3333}}}\n");
    snprintf(line, sizeof line,
             "{\"key\": \"1\", \"image\": \"%s/images/coffee.jpg\", \"width\": 600, \"height\": 400, "
             "\"predictions\": [{\"label\": \"cup\", \"box\": [170, 20, 410, 300], \"status\": \"tp\", \"iou\": 0.95}, "
             "{\"label\": \"spoon\", \"box\": [336, 180, 420, 360], \"status\": \"near\", \"iou\": 0.42}, "
             "{\"label\": \"bowl\", \"box\": [90, 250, 520, 390], \"status\": \"fp\", \"iou\": 0}], "
             "\"ground_truth\": [{\"label\": \"cup\", \"box\": [172, 18, 410, 305]}, {\"label\": \"spoon\", \"box\": "
             "[325, 66, 425, 326]}], \"n_pred\": 3, \"n_gt\": 2, \"tp\": 2, \"tp_strict\": 1, \"precision\": 0.667, "
             "\"recall\": 1, \"f1\": 0.8, \"strict_recall\": 0.5, \"mean_tp_iou\": 0.95}\n"
             "{\"key\": \"2\", \"image\": \"nowhere/x.jpg\", \"width\": 300, \"height\": 200, \"predictions\": [], "
             "\"ground_truth\": [{\"label\": \"spoon\", \"box\": [10, 10, 100, 100]}], \"n_pred\": 0, \"n_gt\": 1, "
             "\"tp\": 0, \"tp_strict\": 0, \"precision\": 0, \"recall\": 0, \"f1\": 0, \"strict_recall\": 0, "
             "\"mean_tp_iou\": 0}\n", G4C_FIXTURES);
    put(co, "samples.jsonl", line);
    /* find + load: sysA holds three runs (labelled sysA), sysB one */
    char **dirs = NULL, **labels = NULL;
    int n = 0;
    g4c_err err = {0};
    CHECK(rp_find_runs(a, &dirs, &labels, &n, &err) == G4C_OK && n == 3);
    CHECK(rp_find_runs(pb, &dirs, &labels, &n, &err) == G4C_OK && n == 4 && labels[3] == NULL);
    CHECK(rp_find_runs(root, &dirs, &labels, &n, &err) != G4C_OK); /* no run one level down */
    rp_run runs[4];
    int loaded = 0;
    for (int i = 0; i < n; i++) {
        CHECKF(rp_run_load(&runs[i], dirs[i], labels[i], &err) == G4C_OK, "%s", err.msg);
        loaded++;
    }
    CHECK(loaded == 4 && !strcmp(runs[0].label, "sysA") && !strcmp(runs[3].label, "e2b-bf16"));
    snprintf(out, sizeof out, "%s/report", root);
    rp_report_opts o = {.out_dir = out, .title = "Test <report>", .generator = "gemma4c test"};
    rp_report_stats st = {0};
    CHECKF(rp_report(runs, loaded, &o, &st, &err) == G4C_OK, "%s", err.msg);
    CHECKF(st.n_overlaps == 0, "%d overlapping texts", st.n_overlaps);
    char p[800];
    snprintf(p, sizeof p, "%s/index.html", out);
    size_t hn = 0;
    char *html = slurp(p, &hn);
    CHECK(html != NULL);
    if (html) {
        char why[200] = "";
        CHECKF(html_balanced(html, why, sizeof why), "%s", why);
        /* every image inlined as a PNG that decodes, with the width and height it declares */
        int n_img = 0, bad = 0;
        for (const char *q = html; (q = strstr(q, "<img ")) != NULL; q++) {
            n_img++;
            const char *src = strstr(q, "src=\"");
            const char *gt = strchr(q, '>');
            if (!src || src > gt || strncmp(src + 5, "data:image/png;base64,", 22)) { bad++; continue; }
            const char *d = src + 5 + 22, *e = strchr(d, '"');
            size_t m = 0;
            unsigned char *png = rp_base64_decode(d, (size_t)(e - d), &m);
            int w = 0, h = 0, dw = -1, dh = -1;
            const char *ws = strstr(e, "width=\""), *hs = strstr(e, "height=\"");
            if (ws && ws < gt) dw = atoi(ws + 7);
            if (hs && hs < gt) dh = atoi(hs + 8);
            if (!png || !png_size(png, m, &w, &h) || w != dw || h != dh) bad++;
            free(png);
        }
        CHECKF(n_img >= st.n_figures + 1 && bad == 0, "%d images, %d bad, %d figures", n_img, bad, st.n_figures);
        CHECK(!strstr(html, "src=\"http") && !strstr(html, "<link") && !strstr(html, "<script") && !strstr(html, "url("));
        /* the value labels of the charts, as text in the page */
        static const char *const want[] = {"19.88", "345.6", "17.25", "812.5", "7.50", "50.0%", "65.0%", "0.604",
                                           "0.917", "0.759", "1/1", "1/3", "2.29 GiB", "8.89 GiB", "e2b-bf16", "sysA",
                                           "Test CPU (8 cores) · 31.2 GiB RAM", "Test &lt;report&gt;",
                                           "What drink &lt;is&gt; it?", "4 &lt;b&gt;&amp;&lt;/b&gt;", "image not found",
                                           "TP 3, near miss 1, class mismatch 0, FP 1"};
        for (size_t k = 0; k < sizeof want / sizeof *want; k++) CHECKF(strstr(html, want[k]), "'%s' missing", want[k]);
        free(html);
    }
    /* the figure files: as many as the report says, PNGs of the drawn sizes */
    int w = 0, h = 0;
    size_t m = 0;
    snprintf(p, sizeof p, "%s/fig-01-generation-speed.png", out);
    unsigned char *png = (unsigned char *)slurp(p, &m);
    CHECK(png && png_size(png, m, &w, &h) && w == 400 && h == 320);
    free(png);
    snprintf(p, sizeof p, "%s/fig-%02d-worst.png", out, st.n_figures);
    png = (unsigned char *)slurp(p, &m);
    CHECKF(png && png_size(png, m, &w, &h) && w == 360, "%s: %dx%d", p, w, h); /* the 300x200 placeholder, 360 wide */
    free(png);
    snprintf(p, sizeof p, "%s/summary.md", out);
    char *md = slurp(p, &m);
    CHECK(md && strstr(md, "| Generation speed, text (tok/s) | 19.88 | 7.50 |") && strstr(md, "](fig-01-generation-speed.png)"));
    free(md);
    for (int i = 0; i < loaded; i++) rp_run_free(&runs[i]);
    for (int i = 0; i < n; i++) free(dirs[i]), free(labels[i]);
    free(dirs), free(labels);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
}

/* a browser screenshot: the given size, and a page (many colors), not a blank or an error page */
static int check_screenshot(const char *path, int want_w, int want_h) {
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) { fprintf(stderr, "%s: not a PNG\n", path); return 1; }
    const int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    const unsigned char *d = cairo_image_surface_get_data(s);
    const int stride = cairo_image_surface_get_stride(s);
    static unsigned char seen[1 << 15];
    int colors = 0;
    long status[RP_N_ST] = {0};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint32_t v;
            memcpy(&v, d + (size_t)y * stride + (size_t)x * 4, 4);
            const unsigned k = ((v >> 19) & 31) << 10 | ((v >> 11) & 31) << 5 | ((v >> 3) & 31);
            if (!seen[k]) seen[k] = 1, colors++;
            const rp_rgb p = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
            for (int i = 0; i < RP_N_ST; i++) status[i] += same(p, rp_status_rgb[i], 0);
        }
    cairo_surface_destroy(s);
    printf("%s: %dx%d, %d colors, status pixels %ld/%ld/%ld/%ld\n", path, w, h, colors, status[0], status[1],
           status[2], status[3]);
    return w == want_w && h == want_h && colors > 200 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "--check-screenshot")) {
        const int rc = check_screenshot(argv[2], atoi(argv[3]), atoi(argv[4]));
        rp_shutdown();
        return rc;
    }
    RUN(test_canvas_png);
    RUN(test_bars_vertical);
    RUN(test_bars_horizontal);
    RUN(test_scatter_hist);
    RUN(test_overlay_boxes);
    RUN(test_overlay_polygon);
    RUN(test_parse_polygons);
    RUN(test_base64);
    RUN(test_report_page);
    rp_shutdown();
    return TEST_REPORT();
}
