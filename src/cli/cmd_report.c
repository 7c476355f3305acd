/* gemma4c report: RUN folders of gemma4c perf / eval / score -> one self-contained HTML report with its figures as
 * PNG files and a Markdown summary (issue 7, docs/REPORT.md). The drawing is in src/report/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "report/report.h"

static const char *const report_help =
    "usage: gemma4c report RUN... --out REPORT [--title TEXT] [--overlays N] [--examples N]\n"
    "Draws the notebook's pictures from run folders into REPORT/index.html (self-contained: every figure inlined),\n"
    "REPORT/fig-*.png and REPORT/summary.md.\n"
    "  RUN                 a folder made by gemma4c perf (perf.json) or gemma4c eval / score (metrics.json), or a\n"
    "                      folder holding such folders (their system is then named after it); NAME=RUN names the\n"
    "                      system. Runs of one system share a column; several systems are shown side by side.\n"
    "  -o, --out REPORT    the report folder (created)\n"
    "      --title TEXT    the page title (default \"gemma4c report\")\n"
    "      --overlays N    ground truth vs prediction pictures per COCO run (default 6)\n"
    "      --examples N    correct and incorrect VQA answers shown per run (default 4 each)\n";

static int count_arg(const char *flag, const char *v, int *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < 1 || x > 1000) {
        fprintf(stderr, "gemma4c report: %s needs an integer in [1, 1000]\n", flag);
        return 1;
    }
    *out = (int)x;
    return 0;
}

int cmd_report(int argc, char **argv) {
    rp_report_opts o = {0};
    char **dirs = NULL, **labels = NULL;
    int n = 0, rc = 0;
    g4c_err err = {0};
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos = 0;
    if (!pos) return 1;
    for (int i = 2; i < argc && !rc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(report_help, stdout); rc = -1; break; }
        const int valued = !strcmp(a, "-o") || !strcmp(a, "--out") || !strcmp(a, "--title") ||
                           !strcmp(a, "--overlays") || !strcmp(a, "--examples");
        if (valued && !v) { fprintf(stderr, "gemma4c report: %s needs a value\n", a); rc = 2; break; }
        if (!strcmp(a, "-o") || !strcmp(a, "--out")) o.out_dir = v, i++;
        else if (!strcmp(a, "--title")) o.title = v, i++;
        else if (!strcmp(a, "--overlays")) rc = count_arg(a, v, &o.max_overlays) ? 2 : 0, i++;
        else if (!strcmp(a, "--examples")) rc = count_arg(a, v, &o.max_examples) ? 2 : 0, i++;
        else if (a[0] == '-' && a[1]) { fprintf(stderr, "gemma4c report: unknown option '%s'\n", a); rc = 2; }
        else pos[npos++] = a;
    }
    if (!rc && !o.out_dir) { fprintf(stderr, "gemma4c report: --out REPORT is required\n%s", report_help); rc = 2; }
    if (!rc && !npos) { fprintf(stderr, "gemma4c report: give at least one RUN folder\n%s", report_help); rc = 2; }
    for (int p = 0; p < npos && !rc; p++) {
        /* NAME=RUN, unless the whole argument is a folder */
        const char *a = pos[p];
        struct stat sb;
        const char *eq = strchr(a, '=');
        char name[256] = "";
        const char *path = a;
        if (eq && !(stat(a, &sb) == 0 && S_ISDIR(sb.st_mode)) && eq - a < (long)sizeof name) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
            path = eq + 1;
        }
        const int first = n;
        if (rp_find_runs(path, &dirs, &labels, &n, &err) != G4C_OK) { cli_die_err("report", &err); rc = 1; break; }
        for (int k = first; name[0] && k < n; k++) {
            free(labels[k]);
            labels[k] = strdup(name);
        }
    }
    free(pos);
    rp_run *runs = calloc((size_t)(n ? n : 1), sizeof *runs);
    int loaded = 0;
    if (!runs) rc = 1;
    for (int i = 0; i < n && !rc; i++, loaded++)
        if (rp_run_load(&runs[i], dirs[i], labels[i], &err) != G4C_OK) { cli_die_err("report", &err); rc = 1; }
    char gen[64];
    snprintf(gen, sizeof gen, "gemma4c %s", g4c_version());
    o.generator = gen;
    rp_report_stats st = {0};
    if (!rc && rp_report(runs, n, &o, &st, &err) != G4C_OK) { cli_die_err("report", &err); rc = 1; }
    if (!rc)
        printf("wrote %s/index.html, %s/summary.md and %d figures from %d run%s\n", o.out_dir, o.out_dir, st.n_figures,
               n, n > 1 ? "s" : "");
    for (int i = 0; i < loaded; i++) rp_run_free(&runs[i]);
    for (int i = 0; i < n; i++) free(dirs[i]), free(labels[i]);
    free(runs), free(dirs), free(labels);
    rp_shutdown();
    return rc < 0 ? 0 : rc;
}
