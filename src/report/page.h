/* report internals shared by page.c (summary, throughput, VQA, the page) and page_coco.c (COCO figures). */
#ifndef G4C_REPORT_PAGE_H
#define G4C_REPORT_PAGE_H

#include "report/report.h"

/* the runs shown in one column / series: at most one of each kind */
typedef struct {
    char label[128];
    rp_run *perf, *vqa, *coco;
} pg_sys;

typedef struct {
    const rp_report_opts *o;
    g4c_err *err;
    g4c_status st;      /* the first failure; later steps do nothing */
    rp_buf html, md, figs_md;
    int n_fig, overlaps;
    pg_sys sys[RP_MAX_SERIES];
    int n_sys;
} page;

/* Write the canvas as REPORT/fig-NN-slug.png and inline it in the page with alt text and a caption (the caption
 * repeats the figure's value labels as text). */
void pg_figure(page *pg, rp_canvas *c, const char *slug, const char *alt, const char *caption);
/* A w x h chart (kind 0 bars rp_bars, 1 scatter rp_scatter, 2 histogram rp_hist) through pg_figure. */
void pg_chart(page *pg, int w, int h, const char *slug, const char *alt, const char *caption, int kind,
              const void *spec);
/* A sample's image: the recorded path, else relative to the RUN folder or its parents. */
g4c_status pg_load_image(const rp_run *r, const char *path, g4c_image *img);
void pg_fmt(char *b, size_t n, double v, const char *fmt); /* "n/a" for NAN */
void pg_pct(char *b, size_t n, double v);                  /* 0.625 -> "62.5%" */
void pg_coco_section(page *pg);

#endif
