/* gemma4c report: RUN folders -> REPORT/index.html (self-contained: every figure inlined as a PNG data URI),
 * REPORT/fig-NN-*.png and REPORT/summary.md. Runs with the same label form one "system"; several systems are
 * shown side by side (columns of the summary table, series of the charts). COCO pictures are in page_coco.c. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report/page.h"

/* ---- figures ---- */

void pg_figure(page *pg, rp_canvas *c, const char *slug, const char *alt, const char *caption) {
    if (pg->st != G4C_OK) return;
    const int ov = rp_canvas_overlaps(c) + rp_canvas_outside(c);
    if (ov) {
        pg->overlaps += ov;
        g4c_log(G4C_LOG_WARN, "report: figure %s has %d overlapping or clipped texts", slug, ov);
    }
    unsigned char *png;
    size_t n;
    if ((pg->st = rp_canvas_png(c, &png, &n, pg->err)) != G4C_OK) return;
    char name[160];
    snprintf(name, sizeof name, "fig-%02d-%.100s.png", ++pg->n_fig, slug);
    pg->st = rp_write_file(pg->o->out_dir, name, (const char *)png, n, pg->err);
    rp_html_figure(&pg->html, png, n, c->w, c->h, alt, caption);
    rp_printf(&pg->figs_md, "- [%s](%s)\n", alt, name);
    free(png);
}

/* a chart canvas, drawn by fn; on a drawing failure the page gets a note instead of the figure */
void pg_chart(page *pg, int w, int h, const char *slug, const char *alt, const char *caption, int kind,
              const void *spec) {
    if (pg->st != G4C_OK) return;
    rp_canvas c;
    g4c_err e = {0};
    if (rp_canvas_init(&c, w, h, &e) != G4C_OK) { pg->st = G4C_FAIL(pg->err, G4C_E_NOMEM, "%s", e.msg); return; }
    g4c_status st = kind == 0   ? rp_draw_bars(&c, spec, &e)
                    : kind == 1 ? rp_draw_scatter(&c, spec, &e)
                                : rp_draw_hist(&c, spec, &e);
    if (st == G4C_OK) pg_figure(pg, &c, slug, alt, caption);
    else {
        rp_puts(&pg->html, "<p class=\"note\">");
        rp_esc(&pg->html, e.msg);
        rp_puts(&pg->html, "</p>\n");
    }
    rp_canvas_free(&c);
}

/* the image of a sample: its path, else relative to the RUN folder or its parents; NULL when missing */
g4c_status pg_load_image(const rp_run *r, const char *path, g4c_image *img) {
    memset(img, 0, sizeof *img);
    if (!path) return G4C_E_IO;
    char p[4400];
    const char *cand[4] = {path, NULL, NULL, NULL};
    char b1[4400], b2[4400], b3[4400];
    snprintf(b1, sizeof b1, "%s/%s", r->dir, path), cand[1] = b1;
    snprintf(b2, sizeof b2, "%s/../%s", r->dir, path), cand[2] = b2;
    snprintf(b3, sizeof b3, "%s/../../%s", r->dir, path), cand[3] = b3;
    for (int i = 0; i < 4; i++) {
        if (i > 0 && path[0] == '/') break;
        snprintf(p, sizeof p, "%s", cand[i]);
        if (g4c_image_load(img, p, 0, NULL) == G4C_OK) return G4C_OK;
    }
    return G4C_E_IO;
}

void pg_fmt(char *b, size_t n, double v, const char *fmt) {
    if (isnan(v)) snprintf(b, n, "n/a");
    else {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(b, n, fmt, v);
#pragma GCC diagnostic pop
    }
}

void pg_pct(char *b, size_t n, double v) {
    if (isnan(v)) snprintf(b, n, "n/a");
    else snprintf(b, n, "%.1f%%", v * 100);
}

static void fmt_mem(char *b, size_t n, double mib) {
    if (isnan(mib) || mib <= 0) snprintf(b, n, "n/a");
    else if (mib >= 1024) snprintf(b, n, "%.2f GiB", mib / 1024);
    else snprintf(b, n, "%.0f MiB", mib);
}

static void fmt_rate(char *b, size_t n, double v) { pg_fmt(b, n, v, v >= 1000 ? "%.0f" : v >= 100 ? "%.1f" : "%.2f"); }

/* "text-short" -> "text short" */
static void display_name(const char *s, char *out, size_t n) {
    snprintf(out, n, "%s", s ? s : "?");
    for (char *p = out; *p; p++)
        if (*p == '-' || *p == '_') *p = ' ';
}

/* ---- systems ---- */

static g4c_status group(page *pg, rp_run *runs, int n) {
    for (int i = 0; i < n; i++) {
        rp_run *r = &runs[i];
        int k = -1;
        for (int s = 0; s < pg->n_sys && k < 0; s++) {
            rp_run *have = r->kind == RP_RUN_PERF ? pg->sys[s].perf : r->kind == RP_RUN_VQA ? pg->sys[s].vqa : pg->sys[s].coco;
            if (!strcmp(pg->sys[s].label, r->label) && !have) k = s;
        }
        if (k < 0) { /* a new system; a second run of the same kind and label is shown as "label (2)" */
            if (pg->n_sys == RP_MAX_SERIES)
                return G4C_FAIL(pg->err, G4C_E_ARG, "at most %d systems side by side", RP_MAX_SERIES);
            k = pg->n_sys++;
            int dup = 1;
            const size_t ll = strlen(r->label);
            for (int s = 0; s < k; s++)
                dup += !strncmp(pg->sys[s].label, r->label, ll) &&
                       (!pg->sys[s].label[ll] || !strncmp(pg->sys[s].label + ll, " (", 2));
            if (dup > 1) snprintf(pg->sys[k].label, sizeof pg->sys[k].label, "%.100s (%d)", r->label, dup);
            else snprintf(pg->sys[k].label, sizeof pg->sys[k].label, "%.120s", r->label);
        }
        if (r->kind == RP_RUN_PERF) pg->sys[k].perf = r;
        else if (r->kind == RP_RUN_VQA) pg->sys[k].vqa = r;
        else pg->sys[k].coco = r;
    }
    return G4C_OK;
}

/* mean of a perf figure over the tests of one modality (NULL = all) */
static double perf_mean(const rp_run *r, const char *modality, int which) {
    double s = 0;
    int n = 0;
    for (int i = 0; r && i < r->n_perf; i++) {
        const rp_perf_test *t = &r->perf[i];
        if (modality && (!t->modality || strcmp(t->modality, modality))) continue;
        const double v = which == 0 ? t->gen_tok_s : t->prompt_tok_s;
        if (!isnan(v)) s += v, n++;
    }
    return n ? s / n : NAN;
}

static double perf_peak(const rp_run *r) {
    double m = rp_jnum(r->json, "peak_mib");
    for (int i = 0; i < r->n_perf; i++)
        if (!isnan(r->perf[i].peak_mib) && !(r->perf[i].peak_mib <= m)) m = r->perf[i].peak_mib;
    return m;
}

/* ---- summary table (HTML and Markdown) ---- */

enum { ROW_MODEL, ROW_FRAMEWORK, ROW_HARDWARE, ROW_PEAK, ROW_GEN_TEXT, ROW_GEN_IMAGE, ROW_PP_TEXT, ROW_PP_IMAGE,
       ROW_VQA, ROW_VQA_N, ROW_LOC, ROW_STRICT, ROW_IOU, ROW_COCO_N, N_ROWS };
static const char *const row_names[N_ROWS] = {
    "Model", "Framework", "Hardware", "Peak memory (RSS)", "Generation speed, text (tok/s)",
    "Generation speed, vision (tok/s)", "Prompt speed, text (tok/s)", "Prompt speed, vision (tok/s)",
    "VQA accuracy (strict / official)", "VQA questions", "Localization P / R @ IoU 0.3", "Strict recall @ IoU 0.5",
    "Mean strict TP IoU", "COCO images"};

static void cell(const pg_sys *s, int row, char *b, size_t n) {
    const cJSON *pj = s->perf ? s->perf->json : NULL;
    const cJSON *vj = s->vqa ? s->vqa->json : NULL, *cj = s->coco ? s->coco->json : NULL;
    char x[64], y[64];
    snprintf(b, n, "—");
    switch (row) {
    case ROW_MODEL: { /* the model folder's name (the full paths are under Runs) */
        const char *m = pj ? rp_jstr(pj, "model") : NULL;
        const rp_run *r = s->vqa ? s->vqa : s->coco;
        const char *be = !m && r && r->run_json ? rp_jstr(r->run_json, "backend") : NULL;
        char path[1024] = "";
        if (m) snprintf(path, sizeof path, "%s", m);
        else if (be && !strncmp(be, "model ", 6)) { /* "model PATH budget N" */
            snprintf(path, sizeof path, "%s", be + 6);
            char *sp = strstr(path, " budget ");
            if (sp) *sp = 0;
        }
        size_t len = strlen(path);
        while (len > 1 && path[len - 1] == '/') path[--len] = 0;
        const char *slash = strrchr(path, '/');
        const char *shown = slash && slash[1] ? slash + 1 : path;
        if (path[0] && strlen(shown) < n) memcpy(b, shown, strlen(shown) + 1);
        else if (be && !strncmp(be, "endpoint ", 9)) snprintf(b, n, "%s", be + 9);
        else if (r) snprintf(b, n, "saved answers");
        break;
    }
    case ROW_FRAMEWORK: {
        const char *f = pj ? rp_jstr(pj, "framework") : NULL, *v = pj ? rp_jstr(pj, "version") : NULL;
        const char *d = pj ? rp_jstr(pj, "device") : NULL;
        const rp_run *r = s->vqa ? s->vqa : s->coco;
        const char *be = r && r->run_json ? rp_jstr(r->run_json, "backend") : NULL;
        if (f) snprintf(b, n, "%s%s%s%s%s", f, v ? " " : "", v ? v : "", d ? " · " : "", d ? d : "");
        else if (be && !strncmp(be, "endpoint ", 9)) snprintf(b, n, "OpenAI-compatible endpoint");
        else if (be) snprintf(b, n, "gemma4c");
        else if (r) snprintf(b, n, "scored by gemma4c score");
        break;
    }
    case ROW_HARDWARE: {
        const cJSON *h = pj ? cJSON_GetObjectItemCaseSensitive(pj, "hardware") : NULL;
        if (!h) break;
        const char *cpu = rp_jstr(h, "cpu"), *gpu = rp_jstr(h, "gpu");
        const double mem = rp_jnum(h, "memory_gib"), cores = rp_jnum(h, "cores");
        char c2[32] = "";
        if (!isnan(cores)) snprintf(c2, sizeof c2, " (%d cores)", (int)cores);
        snprintf(b, n, "%s%s%s%s%s", gpu ? gpu : "", gpu ? " · " : "", cpu ? cpu : "CPU", c2, "");
        if (!isnan(mem)) snprintf(b + strlen(b), n - strlen(b), " · %.1f GiB RAM", mem);
        break;
    }
    case ROW_PEAK:
        if (s->perf) fmt_mem(b, n, perf_peak(s->perf));
        break;
    case ROW_GEN_TEXT: case ROW_GEN_IMAGE: case ROW_PP_TEXT: case ROW_PP_IMAGE:
        if (s->perf)
            fmt_rate(b, n, perf_mean(s->perf, row == ROW_GEN_TEXT || row == ROW_PP_TEXT ? "text" : "image",
                                     row == ROW_GEN_TEXT || row == ROW_GEN_IMAGE ? 0 : 1));
        break;
    case ROW_VQA:
        if (vj) {
            pg_pct(x, sizeof x, rp_jnum(vj, "strict_accuracy"));
            pg_pct(y, sizeof y, rp_jnum(vj, "vqa_accuracy"));
            snprintf(b, n, "%s / %s", x, y);
        }
        break;
    case ROW_VQA_N:
        if (vj) pg_fmt(b, n, rp_jnum(vj, "n"), "%.0f");
        break;
    case ROW_LOC:
        if (cj) {
            pg_pct(x, sizeof x, rp_jnum(cj, "precision"));
            pg_pct(y, sizeof y, rp_jnum(cj, "recall"));
            snprintf(b, n, "%s / %s", x, y);
        }
        break;
    case ROW_STRICT:
        if (cj) pg_pct(b, n, rp_jnum(cj, "strict_recall"));
        break;
    case ROW_IOU:
        if (cj) pg_fmt(b, n, rp_jnum(cj, "mean_tp_iou"), "%.3f");
        break;
    case ROW_COCO_N:
        if (cj) pg_fmt(b, n, rp_jnum(cj, "n_images"), "%.0f");
        break;
    }
}

static void summary_table(page *pg) {
    rp_buf *h = &pg->html, *m = &pg->md;
    rp_puts(h, "<h2>Summary</h2>\n<table class=\"summary\">\n<tr><th></th>");
    rp_puts(m, "## Summary\n\n|  |");
    for (int s = 0; s < pg->n_sys; s++) {
        rp_puts(h, "<th>");
        rp_esc(h, pg->sys[s].label);
        rp_puts(h, "</th>");
        rp_puts(m, " ");
        rp_md_esc(m, pg->sys[s].label);
        rp_puts(m, " |");
    }
    rp_puts(h, "</tr>\n");
    rp_puts(m, "\n|---|");
    for (int s = 0; s < pg->n_sys; s++) rp_puts(m, "---|");
    rp_puts(m, "\n");
    for (int row = 0; row < N_ROWS; row++) {
        char cells[RP_MAX_SERIES][512];
        int any = 0;
        for (int s = 0; s < pg->n_sys; s++) {
            cell(&pg->sys[s], row, cells[s], sizeof cells[s]);
            any |= strcmp(cells[s], "—") != 0;
        }
        if (!any) continue;
        rp_printf(h, "<tr><th>%s</th>", row_names[row]);
        rp_printf(m, "| %s |", row_names[row]);
        for (int s = 0; s < pg->n_sys; s++) {
            rp_puts(h, row >= ROW_PEAK ? "<td class=\"n\">" : "<td>");
            rp_esc(h, cells[s]);
            rp_puts(h, "</td>");
            rp_puts(m, " ");
            rp_md_esc(m, cells[s]);
            rp_puts(m, " |");
        }
        rp_puts(h, "</tr>\n");
        rp_puts(m, "\n");
    }
    rp_puts(h, "</table>\n");
    rp_puts(m, "\n");
}

/* ---- throughput ---- */

static void perf_table(page *pg, const pg_sys *s) {
    rp_buf *h = &pg->html, *m = &pg->md;
    const rp_run *r = s->perf;
    const cJSON *ie = cJSON_GetObjectItemCaseSensitive(r->json, "ignore_eos");
    rp_puts(h, "<h3>");
    rp_esc(h, s->label);
    rp_printf(h, ": %d tests%s</h3>\n", r->n_perf, cJSON_IsTrue(ie) ? " (--ignore-eos: full lengths)" : "");
    const char *model = rp_jstr(r->json, "model"), *image = rp_jstr(r->json, "image");
    if (model || image) {
        rp_puts(h, "<p class=\"note\">");
        if (model) rp_puts(h, "model "), rp_esc(h, model);
        if (image) rp_puts(h, model ? " · image " : "image "), rp_esc(h, image);
        rp_puts(h, "</p>\n");
    }
    rp_puts(h, "<table>\n<tr><th>test</th><th class=\"n\">max tokens</th><th class=\"n\">prompt tokens</th>"
               "<th class=\"n\">generated tokens</th><th class=\"n\">prompt tok/s</th><th class=\"n\">generation tok/s</th>"
               "<th class=\"n\">first token</th><th class=\"n\">time</th><th class=\"n\">peak memory</th><th>stop</th></tr>\n");
    rp_puts(m, "## Throughput: ");
    rp_md_esc(m, s->label);
    rp_puts(m, "\n\n| test | prompt tokens | generated tokens | prompt tok/s | generation tok/s | first token (ms) | "
               "time (s) | peak memory |\n|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < r->n_perf; i++) {
        const rp_perf_test *t = &r->perf[i];
        char name[64], pp[32], tg[32], ft[32], tt[32], pk[32];
        display_name(t->name, name, sizeof name);
        fmt_rate(pp, sizeof pp, t->prompt_tok_s);
        fmt_rate(tg, sizeof tg, t->gen_tok_s);
        pg_fmt(ft, sizeof ft, t->ttft_ms, "%.0f");
        pg_fmt(tt, sizeof tt, t->total_s, "%.2f");
        fmt_mem(pk, sizeof pk, t->peak_mib);
        rp_puts(h, "<tr><td>");
        rp_esc(h, name);
        rp_printf(h, "</td><td class=\"n\">%d</td><td class=\"n\">%d</td><td class=\"n\">%d</td><td class=\"n\">%s</td>"
                     "<td class=\"n\">%s</td><td class=\"n\">%s ms</td><td class=\"n\">%s s</td><td class=\"n\">%s</td><td>",
                  t->max_tokens, t->prompt_tokens, t->gen_tokens, pp, tg, ft, tt, pk);
        rp_esc(h, t->stop ? t->stop : "");
        rp_puts(h, "</td></tr>\n");
        rp_printf(m, "| %s | %d | %d | %s | %s | %s | %s | %s |\n", name, t->prompt_tokens, t->gen_tokens, pp, tg, ft,
                  tt, pk);
    }
    rp_puts(h, "</table>\n<details><summary>prompts and answers</summary>\n<table>\n");
    for (int i = 0; i < r->n_perf; i++) {
        char name[64];
        display_name(r->perf[i].name, name, sizeof name);
        rp_puts(h, "<tr><td>");
        rp_esc(h, name);
        rp_puts(h, "</td><td>");
        rp_esc(h, r->perf[i].prompt);
        rp_puts(h, "</td><td>");
        rp_esc(h, r->perf[i].response);
        rp_puts(h, "</td></tr>\n");
    }
    rp_puts(h, "</table>\n</details>\n");
    rp_puts(m, "\n");
}

static void perf_section(page *pg) {
    const pg_sys *S[RP_MAX_SERIES];
    int m = 0;
    for (int s = 0; s < pg->n_sys; s++)
        if (pg->sys[s].perf) S[m++] = &pg->sys[s];
    if (!m) return;
    rp_puts(&pg->html, "<h2>Throughput</h2>\n<div class=\"grid3\">\n");
    /* categories: the union of the test names, in order */
    const char *cats[RP_MAX_CATS];
    char disp[RP_MAX_CATS][64];
    const char *dcats[RP_MAX_CATS];
    int nc = 0, is_image[RP_MAX_CATS] = {0};
    for (int k = 0; k < m; k++)
        for (int i = 0; i < S[k]->perf->n_perf; i++) {
            const rp_perf_test *t = &S[k]->perf->perf[i];
            int have = 0;
            for (int c = 0; c < nc; c++) have |= !strcmp(cats[c], t->name ? t->name : "?");
            if (have || nc == RP_MAX_CATS) continue;
            is_image[nc] = t->modality && !strcmp(t->modality, "image");
            cats[nc] = t->name ? t->name : "?";
            display_name(cats[nc], disp[nc], sizeof disp[nc]);
            dcats[nc] = disp[nc];
            nc++;
        }
    static const char *const titles[3] = {"Generation speed", "Prompt processing speed", "Total time per test"};
    static const char *const axis[3] = {"tokens / s", "tokens / s", "seconds"};
    static const char *const slugs[3] = {"generation-speed", "prompt-speed", "total-time"};
    static double v[RP_MAX_SERIES * RP_MAX_CATS];
    static char lab[RP_MAX_SERIES * RP_MAX_CATS][24];
    const char *labp[RP_MAX_SERIES * RP_MAX_CATS];
    rp_rgb colors[RP_MAX_SERIES * RP_MAX_CATS];
    const char *names[RP_MAX_SERIES];
    for (int k = 0; k < m; k++) names[k] = S[k]->label;
    for (int f = 0; f < 3; f++) {
        rp_buf cap = {0};
        rp_printf(&cap, "%s (%s)", titles[f], axis[f]);
        for (int k = 0; k < m; k++) {
            if (m > 1) rp_printf(&cap, " · %s:", S[k]->label);
            for (int c = 0; c < nc; c++) {
                double x = NAN;
                for (int i = 0; i < S[k]->perf->n_perf; i++) {
                    const rp_perf_test *t = &S[k]->perf->perf[i];
                    if (!strcmp(t->name ? t->name : "?", cats[c]))
                        x = f == 0 ? t->gen_tok_s : f == 1 ? t->prompt_tok_s : t->total_s;
                }
                const int j = k * nc + c;
                v[j] = x;
                if (f == 2) pg_fmt(lab[j], sizeof lab[j], x, x >= 100 ? "%.0f" : x >= 10 ? "%.1f" : "%.2f");
                else fmt_rate(lab[j], sizeof lab[j], x);
                labp[j] = lab[j];
                colors[j] = m > 1 ? rp_series_rgb(k) : is_image[c] ? RP_IMAGE_MOD : RP_TEXT_MOD;
                rp_printf(&cap, " %s %s%s", dcats[c], lab[j], c + 1 < nc ? "," : "");
            }
        }
        static const char *const mods[2] = {"text prompt", "image + text prompt"};
        const rp_rgb modc[2] = {RP_TEXT_MOD, RP_IMAGE_MOD};
        rp_bars b = {.title = titles[f], .value_label = axis[f], .n_cat = nc, .cats = dcats, .n_series = m,
                     .series = names, .v = v, .bar_color = colors, .bar_label = labp};
        if (m == 1) b.n_legend = 2, b.legend = mods, b.legend_color = modc;
        pg_chart(pg, 400, 320, slugs[f], titles[f], cap.p ? cap.p : "", 0, &b);
        free(cap.p);
    }
    rp_puts(&pg->html, "</div>\n");
    for (int k = 0; k < m; k++) perf_table(pg, S[k]);
}

/* ---- VQA ---- */

static void thumb(page *pg, const rp_run *r, const char *path) {
    g4c_image img;
    rp_canvas c;
    if (pg_load_image(r, path, &img) != G4C_OK) { rp_puts(&pg->html, "(image not found)"); return; }
    const double s = 80.0 / (img.height > img.width ? img.height : img.width);
    const int w = (int)lround(img.width * s), h = (int)lround(img.height * s);
    unsigned char *png = NULL;
    size_t n = 0;
    if (rp_canvas_init(&c, w > 0 ? w : 1, h > 0 ? h : 1, NULL) == G4C_OK) {
        if (rp_draw_image(&c, &img, 0, 0, s, NULL) == G4C_OK && rp_canvas_png(&c, &png, &n, NULL) == G4C_OK) {
            char *b = rp_base64(png, n);
            if (b) {
                rp_puts(&pg->html, "<img class=\"thumb\" src=\"data:image/png;base64,");
                rp_puts(&pg->html, b);
                rp_printf(&pg->html, "\" width=\"%d\" height=\"%d\" alt=\"", w, h);
                rp_esc(&pg->html, path);
                rp_puts(&pg->html, "\">");
                free(b);
            }
        }
        rp_canvas_free(&c);
    }
    free(png);
    g4c_image_free(&img);
}

static void vqa_examples(page *pg, const pg_sys *s) {
    const rp_run *r = s->vqa;
    rp_puts(&pg->html, "<div class=\"grid\">\n");
    for (int ok = 1; ok >= 0; ok--) {
        int shown = 0;
        for (int i = 0; i < r->n_vqa && shown < pg->o->max_examples; i++) shown += (r->vqa[i].strict > 0.5) == ok;
        rp_puts(&pg->html, "<div>\n<h3>");
        rp_esc(&pg->html, s->label);
        if (!shown) {
            rp_printf(&pg->html, ": no %s answers</h3>\n</div>\n", ok ? "correct" : "incorrect");
            continue;
        }
        rp_printf(&pg->html, ": %s answers (%d shown)</h3>\n", ok ? "correct" : "incorrect", shown);
        rp_puts(&pg->html, "<table>\n<tr><th>image</th><th>question</th><th>prediction</th><th>answer</th>"
                           "<th>strict</th><th class=\"n\">VQA acc.</th></tr>\n");
        shown = 0;
        for (int i = 0; i < r->n_vqa && shown < pg->o->max_examples; i++) {
            const rp_vqa_sample *q = &r->vqa[i];
            if ((q->strict > 0.5) != ok) continue;
            shown++;
            rp_puts(&pg->html, "<tr><td>");
            thumb(pg, r, q->image);
            rp_puts(&pg->html, "</td><td>");
            rp_esc(&pg->html, q->question);
            rp_puts(&pg->html, "</td><td>");
            if (q->prediction && *q->prediction) rp_esc(&pg->html, q->prediction);
            else rp_puts(&pg->html, "<span class=\"sub\">(empty)</span>");
            rp_puts(&pg->html, "</td><td>");
            rp_esc(&pg->html, q->answer);
            char a[32];
            pg_pct(a, sizeof a, q->vqa);
            rp_printf(&pg->html, "</td><td class=\"%s\">%s</td><td class=\"n\">%s</td></tr>\n", ok ? "ok" : "bad",
                      ok ? "\xe2\x9c\x93 match" : "\xe2\x9c\x97 no match", a);
        }
        rp_puts(&pg->html, "</table>\n</div>\n");
    }
    rp_puts(&pg->html, "</div>\n");
}

static void vqa_section(page *pg) {
    const pg_sys *S[RP_MAX_SERIES];
    int m = 0;
    for (int s = 0; s < pg->n_sys; s++)
        if (pg->sys[s].vqa) S[m++] = &pg->sys[s];
    if (!m) return;
    rp_puts(&pg->html, "<h2>VQA accuracy</h2>\n<div class=\"grid\">\n");
    static const char *const cats[2] = {"strict exact match", "official VQA accuracy"};
    double v[RP_MAX_SERIES * 2];
    char lab[RP_MAX_SERIES * 2][24];
    const char *labp[RP_MAX_SERIES * 2], *names[RP_MAX_SERIES];
    rp_buf cap = {0};
    rp_puts(&cap, "VQA accuracy:");
    for (int k = 0; k < m; k++) {
        names[k] = S[k]->label;
        v[k * 2] = rp_jnum(S[k]->vqa->json, "strict_accuracy");
        v[k * 2 + 1] = rp_jnum(S[k]->vqa->json, "vqa_accuracy");
        for (int c = 0; c < 2; c++) pg_pct(lab[k * 2 + c], sizeof lab[0], v[k * 2 + c]), labp[k * 2 + c] = lab[k * 2 + c];
        rp_printf(&cap, "%s %s: strict %s, official %s (%.0f questions)", k ? ";" : "", S[k]->label, lab[k * 2],
                  lab[k * 2 + 1], rp_jnum(S[k]->vqa->json, "n"));
    }
    rp_bars b = {.title = "VQA accuracy", .value_label = "accuracy", .n_cat = 2, .cats = cats, .n_series = m,
                 .series = names, .v = v, .bar_label = labp, .percent = 1, .vmax = 1};
    pg_chart(pg, 580, 340, "vqa-accuracy", "VQA accuracy", cap.p, 0, &b);
    free(cap.p);
    /* per answer type (official accuracy), when the metrics have it */
    const char *types[RP_MAX_CATS];
    int nt = 0;
    for (int k = 0; k < m; k++) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(S[k]->vqa->json, "per_answer_type"), *e;
        cJSON_ArrayForEach(e, g) {
            int have = 0;
            for (int t = 0; t < nt; t++) have |= !strcmp(types[t], e->string);
            if (!have && nt < 12) types[nt++] = e->string;
        }
    }
    if (nt > 0) {
        static double tv[RP_MAX_SERIES * 12];
        static char tl[RP_MAX_SERIES * 12][24];
        const char *tlp[RP_MAX_SERIES * 12];
        rp_buf c2 = {0};
        rp_puts(&c2, "Official VQA accuracy per answer type:");
        for (int k = 0; k < m; k++)
            for (int t = 0; t < nt; t++) {
                const cJSON *g = cJSON_GetObjectItemCaseSensitive(S[k]->vqa->json, "per_answer_type");
                const cJSON *e = cJSON_GetObjectItemCaseSensitive(g, types[t]);
                tv[k * nt + t] = e ? rp_jnum(e, "vqa_accuracy") : NAN;
                pg_pct(tl[k * nt + t], sizeof tl[0], tv[k * nt + t]);
                tlp[k * nt + t] = tl[k * nt + t];
                rp_printf(&c2, " %s%s%s %s%s", m > 1 ? S[k]->label : "", m > 1 ? " " : "", types[t], tl[k * nt + t],
                          k + 1 < m || t + 1 < nt ? "," : "");
            }
        rp_bars b2 = {.title = "VQA accuracy per answer type (official)", .value_label = "accuracy", .n_cat = nt,
                      .cats = types, .n_series = m, .series = names, .v = tv, .bar_label = tlp, .percent = 1, .vmax = 1};
        pg_chart(pg, 580, 340, "vqa-answer-types", "VQA accuracy per answer type", c2.p, 0, &b2);
        free(c2.p);
    }
    rp_puts(&pg->html, "</div>\n");
    for (int k = 0; k < m; k++) vqa_examples(pg, S[k]);
}

/* ---- the page ---- */

g4c_status rp_report(rp_run *runs, int n_runs, const rp_report_opts *o, rp_report_stats *stats, g4c_err *err) {
    if (n_runs <= 0) return G4C_FAIL(err, G4C_E_ARG, "no RUN folders");
    rp_report_opts oo = *o;
    if (oo.max_overlays <= 0) oo.max_overlays = 6;
    if (oo.max_examples <= 0) oo.max_examples = 4;
    page *pg = calloc(1, sizeof *pg);
    if (!pg) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    pg->o = &oo;
    pg->err = err;
    G4C_TRY(rp_mkdir_p(oo.out_dir, err));
    pg->st = group(pg, runs, n_runs);
    const char *title = oo.title ? oo.title : "gemma4c report";
    char when[64] = "";
    time_t now = time(NULL);
    struct tm tmv;
    if (gmtime_r(&now, &tmv)) strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tmv);
    rp_html_begin(&pg->html, title);
    rp_puts(&pg->html, "<h1>");
    rp_esc(&pg->html, title);
    rp_printf(&pg->html, "</h1>\n<p class=\"sub\">%d run%s, %d system%s side by side · %s</p>\n", n_runs,
              n_runs > 1 ? "s" : "", pg->n_sys, pg->n_sys > 1 ? "s" : "", when);
    rp_printf(&pg->md, "# %s\n\n%d runs, %d systems · %s\n\n", title, n_runs, pg->n_sys, when);
    if (pg->st == G4C_OK) summary_table(pg);
    if (pg->st == G4C_OK) perf_section(pg);
    if (pg->st == G4C_OK) vqa_section(pg);
    if (pg->st == G4C_OK) pg_coco_section(pg);
    /* the runs, then the footer */
    rp_puts(&pg->html, "<h2>Runs</h2>\n<table>\n<tr><th>system</th><th>kind</th><th>folder</th></tr>\n");
    for (int i = 0; i < n_runs; i++) {
        static const char *const kinds[3] = {"perf", "vqa", "coco"};
        rp_puts(&pg->html, "<tr><td>");
        rp_esc(&pg->html, runs[i].label);
        rp_printf(&pg->html, "</td><td>%s</td><td>", kinds[runs[i].kind]);
        rp_esc(&pg->html, runs[i].dir);
        rp_puts(&pg->html, "</td></tr>\n");
    }
    rp_puts(&pg->html, "</table>\n<footer>Made by ");
    rp_esc(&pg->html, oo.generator ? oo.generator : "gemma4c");
    rp_puts(&pg->html, " (gemma4c report). Definitions: docs/EVAL.md, docs/REPORT.md.</footer>\n");
    rp_html_end(&pg->html);
    if (pg->figs_md.p) {
        rp_puts(&pg->md, "## Figures\n\n");
        rp_puts(&pg->md, pg->figs_md.p);
    }
    if (pg->st == G4C_OK && (pg->html.oom || pg->md.oom || pg->figs_md.oom))
        pg->st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    if (pg->st == G4C_OK) pg->st = rp_write_file(oo.out_dir, "index.html", pg->html.p, pg->html.n, err);
    if (pg->st == G4C_OK) pg->st = rp_write_file(oo.out_dir, "summary.md", pg->md.p, pg->md.n, err);
    if (stats) stats->n_figures = pg->n_fig, stats->n_overlaps = pg->overlaps;
    g4c_status st = pg->st;
    free(pg->html.p), free(pg->md.p), free(pg->figs_md.p);
    free(pg);
    return st;
}
