/* Pictures over photos: ground truth vs predicted boxes colored by status (green TP, amber near miss, purple class
 * mismatch, red FP) with IoU labels; translucent polygons with outline and label; a message drawn on the image.
 * Box edges are drawn 3 px wide centered on the pixel column / row of the scaled box edge, so that pixel has
 * exactly the status color (tests/unit/test_report.c checks it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

#define TAG_SIZE 11.0
#define PAD 10.0

static const rp_rgb poly_palette[] = {{0x00, 0xb4, 0xd8}, {0xe0, 0x1e, 0x8c}, {0x7c, 0xc6, 0x2d}, {0xff, 0x7f, 0x0e}};

rp_rgb rp_poly_rgb(int i) {
    const int n = (int)(sizeof poly_palette / sizeof *poly_palette);
    return poly_palette[((i % n) + n) % n];
}

g4c_status rp_draw_image(rp_canvas *c, const g4c_image *img, double x, double y, double s, g4c_err *err) {
    cairo_surface_t *src = cairo_image_surface_create(CAIRO_FORMAT_RGB24, img->width, img->height);
    if (cairo_surface_status(src) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(src);
        return G4C_FAIL(err, G4C_E_NOMEM, "cannot hold a %dx%d image", img->width, img->height);
    }
    cairo_surface_flush(src);
    unsigned char *d = cairo_image_surface_get_data(src);
    const int stride = cairo_image_surface_get_stride(src);
    for (int yy = 0; yy < img->height; yy++) {
        uint32_t *row = (uint32_t *)(void *)(d + (size_t)yy * stride);
        const uint8_t *p = img->rgb + (size_t)yy * img->width * 3;
        for (int xx = 0; xx < img->width; xx++, p += 3) row[xx] = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    }
    cairo_surface_mark_dirty(src);
    cairo_t *cr = c->cr;
    cairo_save(cr);
    cairo_rectangle(cr, x, y, img->width * s, img->height * s);
    cairo_clip(cr);
    cairo_translate(cr, x, y);
    cairo_scale(cr, s, s);
    cairo_set_source_surface(cr, src, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), s < 1 ? CAIRO_FILTER_GOOD : CAIRO_FILTER_FAST);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_surface_destroy(src);
    return G4C_OK;
}

/* the photo (or a gray placeholder) at pl */
static g4c_status draw_photo(rp_canvas *c, const g4c_image *img, const rp_place *pl, g4c_err *err) {
    if (img && img->rgb) return rp_draw_image(c, img, pl->ox, pl->oy, pl->scale, err);
    const rp_rgb gray = {0xd0, 0xd0, 0xd0};
    rp_set(c->cr, gray, 1);
    cairo_rectangle(c->cr, pl->ox, pl->oy, pl->w, pl->h);
    cairo_fill(c->cr);
    rp_text(c, pl->ox + pl->w / 2.0, pl->oy + pl->h / 2.0, "image not found", 13, 0, RP_MUTED, 1, 1, 0);
    return G4C_OK;
}

static void placement(rp_place *pl, int iw, int ih, int max_w, int max_h) {
    double s = 1;
    if (max_w > 0 && iw > max_w) s = (double)max_w / iw;
    if (max_h > 0 && ih * s > max_h) s = (double)max_h / ih;
    pl->scale = s;
    pl->w = (int)lround(iw * s);
    pl->h = (int)lround(ih * s);
    if (pl->w < 1) pl->w = 1;
    if (pl->h < 1) pl->h = 1;
    pl->ox = pl->oy = 0;
}

/* canvas coordinate of an image coordinate, snapped to a pixel center */
static double snap(double off, double s, double v, int limit) {
    double p = floor(off + v * s);
    if (p > off + limit - 1) p = off + limit - 1;
    if (p < off) p = off;
    return p + 0.5;
}

/* a filled tag with white text near (x, y) (its top-left), moved down when it hits another text; kept on canvas */
static void tag(rp_canvas *c, double x, double y, double y_alt, const char *s, rp_rgb col, const rp_place *pl) {
    const double w = rp_text_width(c, s, TAG_SIZE, 1) + 6, h = rp_text_height(c, TAG_SIZE) + 2;
    const double xmax = pl->ox + pl->w - w, ymax = pl->oy + pl->h - h;
    if (x > xmax) x = xmax;
    if (x < pl->ox) x = pl->ox;
    rp_rect r = {0};
    int placed = 0;
    for (int attempt = 0; attempt < 16 && !placed; attempt++) {
        double yy = (attempt < 8 ? y : y_alt) + (attempt % 8) * (attempt < 8 ? h : -h);
        if (yy > ymax) yy = ymax;
        if (yy < pl->oy) yy = pl->oy;
        r = (rp_rect){x, yy, x + w, yy + h};
        placed = !rp_canvas_collides(c, r);
    }
    rp_set(c->cr, col, 0.92);
    cairo_rectangle(c->cr, r.x0, r.y0, w, h);
    cairo_fill(c->cr);
    const rp_rgb white = {255, 255, 255};
    rp_text(c, r.x0 + 3, r.y0 + 1, s, TAG_SIZE, 1, white, 0, 0, 0);
    if (c->n_texts > 0) c->texts[c->n_texts - 1] = r; /* the whole tag is what must not overlap */
}

static void stroke_box(cairo_t *cr, const rp_place *pl, const rp_obox *b, rp_rgb col, double width, int dashed) {
    const double x1 = snap(pl->ox, pl->scale, b->x1, pl->w), y1 = snap(pl->oy, pl->scale, b->y1, pl->h);
    const double x2 = snap(pl->ox, pl->scale, b->x2, pl->w), y2 = snap(pl->oy, pl->scale, b->y2, pl->h);
    rp_set(cr, col, 1);
    cairo_set_line_width(cr, width);
    if (dashed) {
        const double d[2] = {8, 5};
        cairo_set_dash(cr, d, 2, 0);
    }
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_MITER);
    cairo_rectangle(cr, x1, y1, x2 - x1, y2 - y1);
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
}

/* the legend and caption under the photo; measure only when c is a scratch canvas (draw = 0) */
static double under_photo(rp_canvas *c, double y, int width, const char *const *names, const rp_rgb *cols, int n,
                          const char *caption, int draw) {
    double h = PAD / 2 + rp_legend(c, PAD, y + PAD / 2, width - 2 * PAD, n, names, cols, draw);
    if (caption && *caption) {
        char t[512];
        rp_fit_text(c, caption, 11.5, 0, width - 2 * PAD, t, sizeof t);
        if (draw) rp_text(c, PAD, y + h, t, 11.5, 0, RP_INK, 0, 0, 0);
        h += rp_text_height(c, 11.5) + 4;
    }
    return h + PAD / 2;
}

g4c_status rp_overlay_boxes(rp_canvas *c, const g4c_image *img, int img_w, int img_h, const rp_obox *gt, int n_gt,
                            const rp_obox *pred, int n_pred, int max_w, int max_h, const char *caption, rp_place *pl,
                            g4c_err *err) {
    if (img && img->rgb) img_w = img->width, img_h = img->height;
    if (img_w <= 0 || img_h <= 0) return G4C_FAIL(err, G4C_E_ARG, "overlay: image size %dx%d", img_w, img_h);
    rp_place p;
    placement(&p, img_w, img_h, max_w, max_h);
    const int W = p.w < 360 ? 360 : p.w;
    p.ox = floor((W - p.w) / 2.0);
    /* legend: ground truth and the statuses, with their counts in this image */
    int cnt[RP_N_ST] = {0};
    for (int i = 0; i < n_pred; i++)
        if (pred[i].status >= 0 && pred[i].status < RP_N_ST) cnt[pred[i].status]++;
    char names[RP_N_ST + 1][48];
    const char *np[RP_N_ST + 1];
    rp_rgb cols[RP_N_ST + 1];
    snprintf(names[0], sizeof names[0], "ground truth (%d)", n_gt);
    cols[0] = RP_GT;
    for (int k = 0; k < RP_N_ST; k++) {
        snprintf(names[k + 1], sizeof names[k + 1], "%s (%d)", rp_status_titles[k], cnt[k]);
        cols[k + 1] = rp_status_rgb[k];
    }
    for (int k = 0; k <= RP_N_ST; k++) np[k] = names[k];
    rp_canvas scratch;
    G4C_TRY(rp_canvas_init(&scratch, 8, 8, err));
    const double below = under_photo(&scratch, 0, W, np, cols, RP_N_ST + 1, caption, 0);
    rp_canvas_free(&scratch);
    G4C_TRY(rp_canvas_init(c, W, p.h + (int)ceil(below), err));
    G4C_TRY(draw_photo(c, img, &p, err));
    cairo_t *cr = c->cr;
    for (int i = 0; i < n_gt; i++) stroke_box(cr, &p, &gt[i], RP_GT, 2, 1);
    /* false positives first, true positives last: the best evidence stays on top */
    for (int pass = RP_N_ST - 1; pass >= 0; pass--)
        for (int i = 0; i < n_pred; i++)
            if (pred[i].status == pass) stroke_box(cr, &p, &pred[i], rp_status_rgb[pass], 3, 0);
    /* tags: predictions above their box (inside when there is no room), ground truth at the bottom inside */
    const double th = rp_text_height(c, TAG_SIZE) + 2;
    for (int pass = 0; pass < RP_N_ST; pass++)
        for (int i = 0; i < n_pred; i++) {
            if (pred[i].status != pass) continue;
            char t[160];
            if (pred[i].iou > 0) snprintf(t, sizeof t, "%.60s %.2f", pred[i].label ? pred[i].label : "?", pred[i].iou);
            else snprintf(t, sizeof t, "%.60s", pred[i].label ? pred[i].label : "?");
            const double x = p.ox + pred[i].x1 * p.scale, y = p.oy + pred[i].y1 * p.scale;
            tag(c, x - 1.5, y - th - 1.5 >= p.oy ? y - th - 1.5 : y + 2, y + 2, t, rp_status_rgb[pass], &p);
        }
    for (int i = 0; i < n_gt; i++) {
        const double x = p.ox + gt[i].x1 * p.scale + 3, y = p.oy + gt[i].y2 * p.scale - th - 3;
        tag(c, x, y, y, gt[i].label ? gt[i].label : "?", RP_GT, &p);
    }
    under_photo(c, p.h, W, np, cols, RP_N_ST + 1, caption, 1);
    if (pl) *pl = p;
    return G4C_OK;
}

/* word-wrapped lines of s within width: writes up to max lines into out (each 200 bytes), returns the count */
static int wrap_lines(rp_canvas *c, const char *s, double size, double width, char out[][200], int max) {
    int n = 0;
    const char *p = s;
    while (*p && n < max) {
        while (*p == ' ' || *p == '\n') p++;
        if (!*p) break;
        size_t best = 0, i = 0;
        char tmp[200];
        for (;;) {
            while (p[i] && p[i] != ' ' && p[i] != '\n') i++;
            if (i >= sizeof tmp) break;
            memcpy(tmp, p, i);
            tmp[i] = 0;
            if (rp_text_width(c, tmp, size, 0) > width && best) break;
            best = i;
            if (!p[i] || p[i] == '\n') break;
            i++;
        }
        if (!best) best = i < sizeof tmp ? i : sizeof tmp - 1;
        if (n == max - 1 && p[best]) { /* last line: the rest, shortened */
            rp_fit_text(c, p, size, 0, width, out[n++], 200);
            break;
        }
        snprintf(out[n], 200, "%.*s", (int)best, p);
        rp_fit_text(c, out[n], size, 0, width, out[n], 200);
        n++;
        p += best;
    }
    return n;
}

g4c_status rp_overlay_polygons(rp_canvas *c, const g4c_image *img, const rp_polygon *poly, int n, const char *message,
                               int max_w, int max_h, rp_place *pl, g4c_err *err) {
    if (!img || !img->rgb) return G4C_FAIL(err, G4C_E_ARG, "overlay: no image");
    rp_place p;
    placement(&p, img->width, img->height, max_w, max_h);
    G4C_TRY(rp_canvas_init(c, p.w, p.h, err));
    G4C_TRY(draw_photo(c, img, &p, err));
    cairo_t *cr = c->cr;
    for (int k = 0; k < n; k++) {
        if (poly[k].n < 3) continue;
        cairo_new_path(cr);
        for (int i = 0; i < poly[k].n; i++)
            cairo_line_to(cr, p.ox + poly[k].xy[2 * i] * p.scale, p.oy + poly[k].xy[2 * i + 1] * p.scale);
        cairo_close_path(cr);
        rp_set(cr, rp_poly_rgb(k), RP_POLY_ALPHA);
        cairo_fill_preserve(cr);
        rp_set(cr, rp_poly_rgb(k), 1);
        cairo_set_line_width(cr, 2.5);
        cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
        cairo_stroke(cr);
    }
    const double th = rp_text_height(c, TAG_SIZE) + 2;
    for (int k = 0; k < n; k++) {
        if (poly[k].n < 3) continue;
        double x0 = 1e30, y0 = 1e30;
        for (int i = 0; i < poly[k].n; i++) {
            if (poly[k].xy[2 * i] < x0) x0 = poly[k].xy[2 * i];
            if (poly[k].xy[2 * i + 1] < y0) y0 = poly[k].xy[2 * i + 1];
        }
        const double x = p.ox + x0 * p.scale, y = p.oy + y0 * p.scale;
        tag(c, x, y - th - 2 >= p.oy ? y - th - 2 : y + 2, y + 2,
            poly[k].label && *poly[k].label ? poly[k].label : "object", rp_poly_rgb(k), &p);
    }
    if (message && *message) { /* a red banner across the top */
        const double size = p.w < 320 ? 10 : 12.5;
        char lines[6][200];
        const int nl = wrap_lines(c, message, size, p.w - 16, lines, 6);
        const double lh = rp_text_height(c, size);
        const rp_rgb red = {0xb0, 0x1c, 0x1c}, white = {255, 255, 255};
        rp_set(cr, red, 0.88);
        cairo_rectangle(cr, 0, 0, p.w, nl * lh + 12);
        cairo_fill(cr);
        for (int i = 0; i < nl; i++) rp_text(c, 8, 6 + i * lh, lines[i], size, i == 0, white, 0, 0, 0);
    }
    if (pl) *pl = p;
    return G4C_OK;
}
