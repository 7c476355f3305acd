/* The COCO part of gemma4c report: localization bars, prediction status counts, per-image precision vs recall,
 * the IoU histogram, per-class coarse recall, ground truth vs prediction overlays, best and worst image. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/page.h"

static double box_iou(const rp_obox *a, const rp_obox *b) {
    const double iw = fmin(a->x2, b->x2) - fmax(a->x1, b->x1), ih = fmin(a->y2, b->y2) - fmax(a->y1, b->y1);
    if (iw <= 0 || ih <= 0) return 0;
    const double in = iw * ih;
    const double u = (a->x2 - a->x1) * (a->y2 - a->y1) + (b->x2 - b->x1) * (b->y2 - b->y1) - in;
    return u > 0 ? in / u : 0;
}

typedef struct {
    double iou;
    int p, g;
} pair;

static int cmp_pair(const void *a, const void *b) {
    const pair *x = a, *y = b;
    if (x->iou != y->iou) return x->iou < y->iou ? 1 : -1;
    if (x->p != y->p) return x->p - y->p;
    return x->g - y->g;
}

/* eval's greedy class-aware matching at thr (same-class pairs by descending IoU, ties by prediction then ground
 * truth index): gt_hit[g] = 1 when ground truth g is matched. Returns the matches, -1 without memory. */
static int match(const rp_coco_sample *s, double thr, int *gt_hit) {
    pair *pr = malloc(sizeof *pr * (size_t)(s->n_pred * s->n_gt + 1));
    int *used = calloc((size_t)s->n_pred + 1, sizeof *used);
    if (!pr || !used) { free(pr); free(used); return -1; }
    int n = 0;
    for (int p = 0; p < s->n_pred; p++)
        for (int g = 0; g < s->n_gt; g++) {
            if (strcmp(s->pred[p].label, s->gt[g].label)) continue;
            const double v = box_iou(&s->pred[p], &s->gt[g]);
            if (v >= thr) pr[n++] = (pair){v, p, g};
        }
    qsort(pr, (size_t)n, sizeof *pr, cmp_pair);
    memset(gt_hit, 0, sizeof(int) * (size_t)s->n_gt);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!used[pr[i].p] && !gt_hit[pr[i].g]) used[pr[i].p] = 1, gt_hit[pr[i].g] = 1, m++;
    free(pr);
    free(used);
    return m;
}

static const char *base(const char *p) {
    const char *s = p ? strrchr(p, '/') : NULL;
    return s ? s + 1 : p ? p : "?";
}

/* one overlay figure for sample s of run r */
static void overlay(page *pg, const rp_run *r, const rp_coco_sample *s, const char *slug, const char *what) {
    g4c_image img;
    const int have = pg_load_image(r, s->image, &img) == G4C_OK;
    char cap[512], alt[600];
    snprintf(cap, sizeof cap, "%s · P %.2f R %.2f F1 %.2f · strict TP %d", base(s->image), s->precision, s->recall,
             s->f1, s->tp_strict);
    snprintf(alt, sizeof alt, "%s%s", what, cap);
    rp_canvas c;
    g4c_err e = {0};
    const int w = s->width > 0 ? s->width : 640, h = s->height > 0 ? s->height : 480;
    if (rp_overlay_boxes(&c, have ? &img : NULL, w, h, s->gt, s->n_gt, s->pred, s->n_pred, 400, 300, cap, NULL, &e) ==
        G4C_OK) {
        char text[900];
        int st[RP_N_ST] = {0};
        for (int i = 0; i < s->n_pred; i++)
            if (s->pred[i].status >= 0 && s->pred[i].status < RP_N_ST) st[s->pred[i].status]++;
        snprintf(text, sizeof text, "%s: %d ground truth, %d predictions (TP %d, near %d, class %d, FP %d)",
                 base(s->image), s->n_gt, s->n_pred, st[0], st[1], st[2], st[3]);
        pg_figure(pg, &c, slug, alt, text);
        rp_canvas_free(&c);
    } else {
        rp_puts(&pg->html, "<p class=\"note\">");
        rp_esc(&pg->html, e.msg);
        rp_puts(&pg->html, "</p>\n");
    }
    if (have) g4c_image_free(&img);
}

/* class counts of one image: ground truth, predicted, matched at IoU 0.3 */
static void class_table(page *pg, const rp_coco_sample *s) {
    int *hit = calloc((size_t)s->n_gt + 1, sizeof *hit);
    if (!hit) return;
    if (match(s, 0.3, hit) < 0) { free(hit); return; }
    rp_puts(&pg->html, "<table>\n<tr><th>class</th><th class=\"n\">ground truth</th><th class=\"n\">predicted</th>"
                       "<th class=\"n\">matched @0.3</th></tr>\n");
    const char *seen[128];
    int ns = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < (pass ? s->n_pred : s->n_gt); i++) {
            const char *l = pass ? s->pred[i].label : s->gt[i].label;
            int have = 0;
            for (int k = 0; k < ns; k++) have |= !strcmp(seen[k], l);
            if (have || ns == 128) continue;
            seen[ns++] = l;
            int g = 0, p = 0, m = 0;
            for (int k = 0; k < s->n_gt; k++)
                if (!strcmp(s->gt[k].label, l)) g++, m += hit[k];
            for (int k = 0; k < s->n_pred; k++) p += !strcmp(s->pred[k].label, l);
            rp_puts(&pg->html, "<tr><td>");
            rp_esc(&pg->html, l);
            rp_printf(&pg->html, "</td><td class=\"n\">%d</td><td class=\"n\">%d</td><td class=\"n\">%d</td></tr>\n", g,
                      p, m);
        }
    rp_puts(&pg->html, "</table>\n");
    free(hit);
}

static const rp_coco_sample *const *sorted_by_f1(const rp_run *r) {
    const rp_coco_sample **v = malloc(sizeof *v * (size_t)(r->n_coco + 1));
    if (!v) return NULL;
    for (int i = 0; i < r->n_coco; i++) v[i] = &r->coco[i];
    for (int i = 1; i < r->n_coco; i++) /* stable insertion sort: F1 descending, then more ground truth first */
        for (int j = i; j > 0; j--) {
            const rp_coco_sample *a = v[j - 1], *b = v[j];
            const double fa = isnan(a->f1) ? -1 : a->f1, fb = isnan(b->f1) ? -1 : b->f1;
            if (fa > fb || (fa == fb && a->n_gt >= b->n_gt)) break;
            v[j - 1] = b, v[j] = a;
        }
    return (const rp_coco_sample *const *)v;
}

static void overlays(page *pg, const pg_sys *s) {
    const rp_run *r = s->coco;
    if (!r->n_coco) return;
    const rp_coco_sample *const *v = sorted_by_f1(r);
    if (!v) return;
    const int m = r->n_coco < pg->o->max_overlays ? r->n_coco : pg->o->max_overlays;
    rp_puts(&pg->html, "<h3>");
    rp_esc(&pg->html, s->label);
    rp_printf(&pg->html, ": ground truth vs predictions, %d of %d images (by coarse F1)</h3>\n", m, r->n_coco);
    rp_puts(&pg->html, "<p class=\"note\">Dashed blue: ground truth. Predictions: <span style=\"color:#2ea043\">green "
                       "TP</span> (strict match, IoU \xe2\x89\xa5 0.5), <span style=\"color:#c88500\">amber near miss</span> "
                       "(same class, IoU \xe2\x89\xa5 0.3), <span style=\"color:#8e44ad\">purple class mismatch</span> (IoU "
                       "\xe2\x89\xa5 0.5 with another class), <span style=\"color:#d62728\">red FP</span>; the number is the "
                       "best same-class IoU.</p>\n<div class=\"grid3\">\n");
    for (int k = 0; k < m; k++) {
        const int i = m > 1 ? (int)lround((double)k * (r->n_coco - 1) / (m - 1)) : 0;
        overlay(pg, r, v[i], "overlay", "GT vs predictions: ");
    }
    rp_puts(&pg->html, "</div>\n");
    /* best and worst by coarse F1, with their class counts */
    const rp_coco_sample *best = v[0], *worst = v[r->n_coco - 1];
    rp_puts(&pg->html, "<h3>");
    rp_esc(&pg->html, s->label);
    rp_puts(&pg->html, best == worst ? ": the only image</h3>\n" : ": best and worst image by coarse F1</h3>\n");
    rp_puts(&pg->html, "<div class=\"grid\">\n");
    for (int k = 0; k < (best == worst ? 1 : 2); k++) {
        rp_puts(&pg->html, "<div>\n");
        overlay(pg, r, k ? worst : best, k ? "worst" : "best", k ? "worst image: " : "best image: ");
        class_table(pg, k ? worst : best);
        rp_puts(&pg->html, "</div>\n");
    }
    rp_puts(&pg->html, "</div>\n");
    free((void *)v);
}

/* per-class coarse recall: the 10 classes with the most ground truth */
static void per_class(page *pg, const pg_sys *s) {
    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(s->coco->json, "per_class"), *e;
    const cJSON *top[10];
    int n = 0;
    cJSON_ArrayForEach(e, pc) {
        const double g = rp_jnum(e, "n_gt");
        if (!(g > 0)) continue;
        int at = n < 10 ? n : 10;
        while (at > 0 && rp_jnum(top[at - 1], "n_gt") < g) at--;
        if (at >= 10) continue;
        if (n < 10) n++;
        memmove(&top[at + 1], &top[at], sizeof *top * (size_t)(n - 1 - at));
        top[at] = e;
    }
    if (!n) return;
    const char *cats[10];
    double v[10];
    char lab[10][32];
    const char *labp[10];
    rp_rgb col[10];
    rp_buf cap = {0};
    rp_printf(&cap, "%s: coarse recall per class (matched at IoU 0.3 / ground truth):", s->label);
    for (int i = 0; i < n; i++) {
        cats[i] = top[i]->string;
        v[i] = rp_jnum(top[i], "recall");
        snprintf(lab[i], sizeof lab[i], "%.0f/%.0f", rp_jnum(top[i], "tp"), rp_jnum(top[i], "n_gt"));
        labp[i] = lab[i];
        col[i] = v[i] >= 0.5 ? rp_status_rgb[RP_ST_TP] : v[i] >= 0.25 ? rp_status_rgb[RP_ST_NEAR] : rp_status_rgb[RP_ST_FP];
        rp_printf(&cap, " %s %s%s", cats[i], lab[i], i + 1 < n ? "," : "");
    }
    static const char *const leg[3] = {"recall \xe2\x89\xa5 50%", "\xe2\x89\xa5 25%", "< 25%"};
    const rp_rgb legc[3] = {rp_status_rgb[RP_ST_TP], rp_status_rgb[RP_ST_NEAR], rp_status_rgb[RP_ST_FP]};
    char title[200];
    snprintf(title, sizeof title, "Per-class coarse recall, top %d classes (%.100s)", n, s->label);
    rp_bars b = {.title = title, .value_label = "coarse recall (IoU 0.3)", .n_cat = n, .cats = cats, .n_series = 1,
                 .v = v, .bar_color = col, .bar_label = labp, .percent = 1, .vmax = 1, .horizontal = 1, .n_legend = 3,
                 .legend = leg, .legend_color = legc};
    pg_chart(pg, 580, 110 + 30 * n, "per-class-recall", title, cap.p, 0, &b);
    free(cap.p);
}

static void iou_hist(page *pg, const pg_sys *s) {
    const rp_run *r = s->coco;
    int n = 0, strict = 0;
    for (int i = 0; i < r->n_coco; i++) n += r->coco[i].n_pred;
    double *v = malloc(sizeof *v * (size_t)(n + 1));
    if (!v) return;
    n = 0;
    for (int i = 0; i < r->n_coco; i++)
        for (int k = 0; k < r->coco[i].n_pred; k++) {
            const rp_obox *b = &r->coco[i].pred[k];
            if (b->iou > 0) v[n++] = b->iou;
            strict += b->status == RP_ST_TP;
        }
    char title[200], cap[400];
    snprintf(title, sizeof title, "IoU with the best same-class ground truth (%.100s)", s->label);
    snprintf(cap, sizeof cap, "%s: %d predictions overlap a ground-truth box of their class; %d are strict matches "
                              "(TP, IoU \xe2\x89\xa5 0.5, right of the dashed line)", s->label, n, strict);
    rp_hist h = {.title = title, .x_label = "IoU", .y_label = "predictions", .v = v, .n = n, .lo = 0, .hi = 1,
                 .bins = 20, .ref = 0.5, .ref_on = 1, .ref_label = "strict 0.5", .below = rp_status_rgb[RP_ST_NEAR],
                 .above = rp_status_rgb[RP_ST_TP]};
    pg_chart(pg, 580, 340, "iou-histogram", title, cap, 2, &h);
    free(v);
}

void pg_coco_section(page *pg) {
    const pg_sys *S[RP_MAX_SERIES];
    int m = 0;
    for (int s = 0; s < pg->n_sys; s++)
        if (pg->sys[s].coco) S[m++] = &pg->sys[s];
    if (!m) return;
    rp_puts(&pg->html, "<h2>COCO class-aware localization</h2>\n<div class=\"grid\">\n");
    const char *names[RP_MAX_SERIES];
    for (int k = 0; k < m; k++) names[k] = S[k]->label;
    /* the four headline figures */
    static const char *const cats[4] = {"precision @0.3", "recall @0.3", "strict recall @0.5", "mean strict TP IoU"};
    static const char *const keys[4] = {"precision", "recall", "strict_recall", "mean_tp_iou"};
    double v[RP_MAX_SERIES * 4];
    char lab[RP_MAX_SERIES * 4][24];
    const char *labp[RP_MAX_SERIES * 4];
    rp_buf cap = {0};
    rp_puts(&cap, "Localization:");
    for (int k = 0; k < m; k++) {
        if (m > 1) rp_printf(&cap, "%s %s:", k ? ";" : "", S[k]->label);
        for (int c = 0; c < 4; c++) {
            v[k * 4 + c] = rp_jnum(S[k]->coco->json, keys[c]);
            pg_fmt(lab[k * 4 + c], sizeof lab[0], v[k * 4 + c], "%.3f");
            labp[k * 4 + c] = lab[k * 4 + c];
            rp_printf(&cap, " %s %s%s", cats[c], lab[k * 4 + c], c < 3 ? "," : "");
        }
    }
    rp_bars b = {.title = "Localization (coarse IoU 0.3, strict IoU 0.5)", .value_label = "score (0-1)", .n_cat = 4,
                 .cats = cats, .n_series = m, .series = names, .v = v, .bar_label = labp, .vmax = 1};
    pg_chart(pg, 580, 340, "coco-localization", "COCO localization", cap.p, 0, &b);
    free(cap.p);
    /* prediction status counts */
    static const char *const stc[4] = {"TP", "near miss", "class mismatch", "FP"};
    double sv[RP_MAX_SERIES * 4];
    char sl[RP_MAX_SERIES * 4][24];
    const char *slp[RP_MAX_SERIES * 4];
    rp_rgb scol[RP_MAX_SERIES * 4];
    rp_buf c2 = {0};
    rp_puts(&c2, "Prediction status counts:");
    for (int k = 0; k < m; k++) {
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(S[k]->coco->json, "status_counts");
        if (m > 1) rp_printf(&c2, "%s %s:", k ? ";" : "", S[k]->label);
        for (int c = 0; c < 4; c++) {
            const int j = k * 4 + c;
            sv[j] = rp_jnum(sc, rp_status_names[c]);
            pg_fmt(sl[j], sizeof sl[0], sv[j], "%.0f");
            slp[j] = sl[j];
            scol[j] = m > 1 ? rp_series_rgb(k) : rp_status_rgb[c];
            rp_printf(&c2, " %s %s%s", stc[c], sl[j], c < 3 ? "," : "");
        }
    }
    rp_bars b2 = {.title = "Predictions by status", .value_label = "predictions", .n_cat = 4, .cats = stc,
                  .n_series = m, .series = names, .v = sv, .bar_color = scol, .bar_label = slp, .fmt = "%.0f"};
    pg_chart(pg, 580, 340, "coco-status", "COCO prediction status", c2.p, 0, &b2);
    free(c2.p);
    /* per-image precision vs recall */
    double *px[RP_MAX_SERIES], *py[RP_MAX_SERIES];
    int pn[RP_MAX_SERIES], total = 0;
    for (int k = 0; k < m; k++) {
        const rp_run *r = S[k]->coco;
        px[k] = malloc(sizeof(double) * (size_t)(r->n_coco + 1));
        py[k] = malloc(sizeof(double) * (size_t)(r->n_coco + 1));
        pn[k] = 0;
        for (int i = 0; px[k] && py[k] && i < r->n_coco; i++)
            if (!isnan(r->coco[i].recall) && !isnan(r->coco[i].precision))
                px[k][pn[k]] = r->coco[i].recall, py[k][pn[k]++] = r->coco[i].precision;
        total += pn[k];
    }
    if (total) {
        rp_buf c3 = {0};
        rp_puts(&c3, "Per-image precision vs recall (coarse, IoU 0.3); the cross is the mean:");
        for (int k = 0; k < m; k++) {
            double mx = 0, my = 0;
            for (int i = 0; i < pn[k]; i++) mx += px[k][i], my += py[k][i];
            if (pn[k]) rp_printf(&c3, "%s %s mean P %.2f R %.2f over %d images", k ? ";" : "", S[k]->label,
                                 my / pn[k], mx / pn[k], pn[k]);
        }
        rp_scatter sc = {.title = "Per-image precision vs recall (IoU 0.3)", .x_label = "recall", .y_label = "precision",
                         .n_sets = m, .set_names = names, .n = pn, .x = (const double *const *)px,
                         .y = (const double *const *)py, .show_mean = 1, .mean_fmt = "mean R %.2f P %.2f",
                         .x0 = 0, .x1 = 1, .y0 = 0, .y1 = 1};
        pg_chart(pg, 580, 380, "precision-recall", "Per-image precision vs recall", c3.p, 1, &sc);
        free(c3.p);
    }
    for (int k = 0; k < m; k++) free(px[k]), free(py[k]);
    for (int k = 0; k < m; k++) {
        if (S[k]->coco->n_coco) iou_hist(pg, S[k]);
        per_class(pg, S[k]);
    }
    rp_puts(&pg->html, "</div>\n");
    for (int k = 0; k < m; k++) overlays(pg, S[k]);
}
