/* report: the notebook's pictures, drawn with cairo (issue 7, docs/REPORT.md).
 *   chart.c    a small chart library: a canvas that remembers every text box it drew (so tests can prove that no
 *              two texts overlap), axes with nice ticks, legends, value labels; bars (grouped, vertical or
 *              horizontal), scatter, histogram
 *   overlay.c  pictures over photos: ground truth vs predicted boxes in status colors with IoU labels,
 *              translucent polygons with outline and label, a message drawn on the image
 *   segment.c  the polygon answer of `gemma4c segment`, parsed robustly
 *   html.c     a growing text buffer, HTML escaping, base64, the page skeleton with inlined PNGs
 *   runs.c     RUN folders (gemma4c perf / eval / score) read into memory
 *   page.c     gemma4c report: the figures, index.html, summary.md
 * Depends on base/, formats/ (cJSON), image/ (decoding photos) and cairo; not on the runtime. */
#ifndef G4C_REPORT_REPORT_H
#define G4C_REPORT_REPORT_H

#include <cairo.h>
#include <stdint.h>

#include "base/base.h"
#include "image/image.h"

/* ---- colors ---- */
typedef struct {
    uint8_t r, g, b;
} rp_rgb;

/* prediction status, in eval's order (eval_status_names: tp, near, class, fp) */
enum { RP_ST_TP = 0, RP_ST_NEAR, RP_ST_CLASS, RP_ST_FP, RP_N_ST };
extern const rp_rgb rp_status_rgb[RP_N_ST]; /* green, amber, purple, red */
extern const char *const rp_status_names[RP_N_ST];
extern const char *const rp_status_titles[RP_N_ST]; /* "TP", "near miss", "class mismatch", "FP" */
extern const rp_rgb RP_GT;                         /* ground-truth boxes: blue, dashed */
extern const rp_rgb RP_TEXT_MOD, RP_IMAGE_MOD;      /* throughput: text prompts, image prompts */
extern const rp_rgb RP_INK, RP_MUTED, RP_GRID;
/* the i-th series color (runs side by side); cycles */
rp_rgb rp_series_rgb(int i);
/* status name ("tp", "near", "class", "fp") -> RP_ST_*, or -1 */
int rp_status_from_name(const char *s);

/* ---- canvas (chart.c) ---- */
typedef struct {
    double x0, y0, x1, y1;
} rp_rect;

typedef struct {
    cairo_surface_t *surf;
    cairo_t *cr;
    int w, h;
    rp_rect *texts; /* the box of every text drawn */
    int n_texts, cap_texts;
} rp_canvas;

/* A white w x h RGB canvas. */
g4c_status rp_canvas_init(rp_canvas *c, int w, int h, g4c_err *err);
void rp_canvas_free(rp_canvas *c);
/* Release cairo's and fontconfig's caches (at exit, so leak checkers see a clean process). */
void rp_shutdown(void);
/* PNG bytes of the canvas (malloc'd). */
g4c_status rp_canvas_png(rp_canvas *c, unsigned char **out, size_t *n, g4c_err *err);
g4c_status rp_canvas_write_png(rp_canvas *c, const char *path, g4c_err *err);
/* The pixel at (x, y) (tests). */
rp_rgb rp_canvas_pixel(rp_canvas *c, int x, int y);
/* Pairs of drawn texts whose boxes overlap by more than half a pixel each way (0 = none), and texts reaching
 * outside the canvas. */
int rp_canvas_overlaps(const rp_canvas *c);
int rp_canvas_outside(const rp_canvas *c);

/* Text. ha: 0 left, 1 center, 2 right of x; va: 0 top, 1 middle, 2 bottom of y (the box spans the font's ascent
 * + descent). vertical = 1 draws it rotated 90 degrees counter-clockwise (reading upwards). Returns its box,
 * which is recorded for the overlap check unless the canvas is drawn over a photo (record = 0). */
rp_rect rp_text(rp_canvas *c, double x, double y, const char *s, double size, int bold, rp_rgb col, int ha, int va,
                int vertical);
double rp_text_width(rp_canvas *c, const char *s, double size, int bold);
double rp_text_height(rp_canvas *c, double size); /* ascent + descent */
int rp_rect_hit(rp_rect a, rp_rect b);            /* the two boxes overlap (more than half a pixel) */
/* 1 when r overlaps any recorded text */
int rp_canvas_collides(const rp_canvas *c, rp_rect r);
void rp_canvas_record(rp_canvas *c, rp_rect r);
void rp_set(cairo_t *cr, rp_rgb c, double alpha);
/* A legend (color swatch + name per entry) in rows of at most width from (x, y); draw = 0 only measures.
 * Returns its height. */
double rp_legend(rp_canvas *c, double x, double y, double width, int n, const char *const *names,
                 const rp_rgb *colors, int draw);
/* "…"-shortened copy of s that fits width (at least one character), into out. */
void rp_fit_text(rp_canvas *c, const char *s, double size, int bold, double width, char *out, size_t n);

/* ---- charts (chart.c); each draws over a whole canvas ---- */
#define RP_MAX_SERIES 8
#define RP_MAX_CATS 64

typedef struct {
    const char *title;
    const char *value_label;          /* the value axis' title (may be NULL) */
    int n_cat;
    const char *const *cats;          /* category labels */
    int n_series;
    const char *const *series;        /* legend names; the legend shows when n_series > 1 */
    const double *v;                  /* [n_series][n_cat]; NAN = no value ("n/a") */
    const rp_rgb *series_color;       /* [n_series] or NULL (rp_series_rgb) */
    const rp_rgb *bar_color;          /* [n_series][n_cat] overrides or NULL */
    const char *const *bar_label;     /* [n_series][n_cat] value label overrides or NULL */
    const char *fmt;                  /* value label format of v (default "%.3g"); percent: of 100 v */
    int percent;                      /* values are fractions: axis and labels in % */
    double vmax;                      /* axis maximum; 0 = from the data */
    double ref;                       /* dashed reference line at this value when ref_on */
    int ref_on;
    const char *ref_label;
    int horizontal;                   /* categories down the left side, bars to the right */
    int n_legend;                     /* extra legend entries (e.g. text / image), drawn instead of series */
    const char *const *legend;
    const rp_rgb *legend_color;
} rp_bars;
g4c_status rp_draw_bars(rp_canvas *c, const rp_bars *b, g4c_err *err);

typedef struct {
    const char *title, *x_label, *y_label;
    int n_sets;
    const char *const *set_names;     /* legend when n_sets > 1 */
    const rp_rgb *set_color;          /* or NULL */
    const int *n;                     /* points per set */
    const double *const *x, *const *y;
    int show_mean;                    /* a cross and "mean (x, y)" per set */
    const char *mean_fmt;             /* e.g. "mean P %.2f R %.2f" */
    double x0, x1, y0, y1;            /* axis ranges */
    int percent;                      /* axis ticks in % */
} rp_scatter;
g4c_status rp_draw_scatter(rp_canvas *c, const rp_scatter *s, g4c_err *err);

typedef struct {
    const char *title, *x_label, *y_label;
    const double *v;
    int n;
    double lo, hi;
    int bins;
    double ref;                       /* a dashed line here (ref_on) */
    int ref_on;
    const char *ref_label;
    rp_rgb below, above;              /* bins left / right of ref */
} rp_hist;
g4c_status rp_draw_hist(rp_canvas *c, const rp_hist *h, g4c_err *err);

/* ---- overlays (overlay.c) ---- */
typedef struct {
    double x1, y1, x2, y2;            /* pixels of the original image */
    const char *label;
    int status;                       /* RP_ST_*; ignored for ground truth */
    double iou;                       /* < 0: not shown */
} rp_obox;

typedef struct {
    double scale;                     /* canvas pixel = off + scale * image pixel */
    double ox, oy;
    int w, h;                         /* drawn image size */
} rp_place;

/* A canvas holding the photo (NULL: a gray placeholder of img_w x img_h saying so) scaled down to at most
 * max_w x max_h, ground truth dashed blue, predictions in status colors (3 px, over the exact box edges) each
 * with "label IoU 0.62" on a tag, then a legend row and an optional caption under it. */
g4c_status rp_overlay_boxes(rp_canvas *c, const g4c_image *img, int img_w, int img_h, const rp_obox *gt, int n_gt,
                            const rp_obox *pred, int n_pred, int max_w, int max_h, const char *caption, rp_place *pl,
                            g4c_err *err);

typedef struct {
    double *xy;                       /* [n][2] pixels of the image: x, y */
    int n;
    char *label;
} rp_polygon;

#define RP_POLY_ALPHA 0.35
/* The photo with each polygon filled translucently (RP_POLY_ALPHA of color i), outlined and labelled; when
 * message is not NULL it is drawn on the image in a red banner (a parse failure, say). */
g4c_status rp_overlay_polygons(rp_canvas *c, const g4c_image *img, const rp_polygon *p, int n, const char *message,
                               int max_w, int max_h, rp_place *pl, g4c_err *err);
/* the i-th polygon color (cycles) */
rp_rgb rp_poly_rgb(int i);
/* Copy an RGB image onto the canvas at (x, y) scaled by s. */
g4c_status rp_draw_image(rp_canvas *c, const g4c_image *img, double x, double y, double s, g4c_err *err);

/* ---- segment.c ---- */
/* The prompt of gemma4c segment for an object description ("the dog"): answer {"polygon": [[x, y], ...],
 * "label": "..."} in [0, 1000]. malloc'd. */
char *rp_segment_prompt(const char *object);
/* Parse a polygon answer: code fences stripped, the first JSON value found (object or array) parsed; polygons
 * under the keys polygon / segmentation / points / vertices (or a bare array of points), each point [x, y] or
 * {"x", "y"}, or a flat [x0, y0, x1, y1, ...]; several objects give several polygons. Coordinates are in
 * [0, 1000] (x first) scaled to w x h pixels and clipped; polygons of fewer than 3 points are dropped. Returns
 * the number of polygons (*out malloc'd, free with rp_polygons_free), 0 with *why saying what was wrong, or -1
 * when memory runs out. Never fails on bad text. */
int rp_parse_polygons(const char *response, int w, int h, rp_polygon **out, char *why, size_t why_size);
void rp_polygons_free(rp_polygon *p, int n);

/* ---- html.c ---- */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} rp_buf;
void rp_put(rp_buf *b, const char *s, size_t n);
void rp_puts(rp_buf *b, const char *s);
void rp_printf(rp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rp_esc(rp_buf *b, const char *s);  /* HTML-escaped (& < > " ') */
void rp_md_esc(rp_buf *b, const char *s); /* for a Markdown table cell (| and newlines) */
char *rp_base64(const unsigned char *data, size_t n);
/* malloc'd, *n bytes; NULL on a bad character */
unsigned char *rp_base64_decode(const char *s, size_t len, size_t *n);
void rp_html_begin(rp_buf *b, const char *title);
void rp_html_end(rp_buf *b);
/* <figure><img src="data:image/png;base64,..." alt width height><figcaption>...</figcaption></figure> */
void rp_html_figure(rp_buf *b, const unsigned char *png, size_t n, int w, int h, const char *alt, const char *caption);
/* write data to dir/name through a temporary file and rename */
g4c_status rp_write_file(const char *dir, const char *name, const char *data, size_t n, g4c_err *err);
g4c_status rp_mkdir_p(const char *dir, g4c_err *err);

/* ---- runs.c: RUN folders ---- */
typedef struct {
    char *name, *modality, *prompt, *response, *stop;
    int max_tokens, prompt_tokens, gen_tokens;
    double prompt_tok_s, gen_tok_s, ttft_ms, total_s, image_ms, peak_mib;
} rp_perf_test;

typedef struct {
    char *key, *image, *question, *prediction, *answer;
    double strict, vqa;
} rp_vqa_sample;

typedef struct {
    char *key, *image;
    int width, height, n_pred, n_gt, tp, tp_strict;
    double precision, recall, f1, strict_recall, mean_tp_iou;
    rp_obox *pred, *gt; /* labels point into labels[] */
    char **labels;
    int n_labels;
} rp_coco_sample;

typedef struct {
    char *dir;
    char *label;      /* the system it belongs to (runs side by side) */
    int kind;         /* RP_RUN_PERF / VQA / COCO */
    void *json;       /* cJSON: perf.json or metrics.json */
    void *run_json;   /* run.json or NULL */
    rp_perf_test *perf;
    int n_perf;
    rp_vqa_sample *vqa;
    int n_vqa;
    rp_coco_sample *coco;
    int n_coco;
} rp_run;
enum { RP_RUN_PERF = 0, RP_RUN_VQA, RP_RUN_COCO };

/* Read one RUN folder: perf.json (gemma4c perf) or metrics.json (+ samples.jsonl, run.json) of gemma4c
 * eval/score. label: the system name to show (NULL = derived from the run: model folder or endpoint model). */
g4c_status rp_run_load(rp_run *r, const char *dir, const char *label, g4c_err *err);
void rp_run_free(rp_run *r);
/* The RUN folders under path: path itself when it holds perf.json or metrics.json, else its sub-folders that
 * do (sorted; label = path's base name). Appends to *dirs / *labels (malloc'd strings). */
g4c_status rp_find_runs(const char *path, char ***dirs, char ***labels, int *n, g4c_err *err);
/* Read a number from a cJSON object (NAN when absent) / a string (NULL when absent). */
double rp_jnum(const void *obj, const char *key);
const char *rp_jstr(const void *obj, const char *key);

/* ---- page.c: gemma4c report ---- */
typedef struct {
    const char *out_dir;
    const char *title;
    const char *generator; /* "gemma4c 0.1.0": named in the page footer */
    int max_overlays;     /* overlay images per COCO run (default 6) */
    int max_examples;     /* correct / incorrect VQA examples shown (default 4 each) */
} rp_report_opts;

typedef struct {
    int n_figures;        /* PNG files written */
    int n_overlaps;       /* text overlaps found in the figures (0 is the goal; logged as warnings) */
} rp_report_stats;

g4c_status rp_report(rp_run *runs, int n_runs, const rp_report_opts *o, rp_report_stats *st, g4c_err *err);

#endif
