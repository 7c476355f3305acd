/* Command-line flag parsing shared by the subcommands. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"

void cli_die_err(const char *what, const g4c_err *err) {
    fprintf(stderr, "gemma4c: %s: %s\n", what, err->msg);
}

double cli_peak_mib(int *per_test) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = atof(line + 6);
    if (f) fclose(f);
    if (kb > 0) return kb / 1024;
    if (per_test) *per_test = 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

int cli_reset_peak(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    int ok = fputs("5", f) >= 0;
    ok &= fclose(f) == 0;
    return ok;
}

static int parse_int(const char *flag, const char *v, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || x < lo || x > hi) {
        fprintf(stderr, "gemma4c: %s needs an integer in [%ld, %ld], got '%s'\n", flag, lo, hi, v ? v : "");
        return 1;
    }
    *out = (int)x;
    return 0;
}

static int parse_float(const char *flag, const char *v, float *out) {
    char *end;
    float x = v ? strtof(v, &end) : 0;
    if (!v || !*v || *end || !isfinite(x)) {
        fprintf(stderr, "gemma4c: %s needs a number, got '%s'\n", flag, v ? v : "");
        return 1;
    }
    *out = x;
    return 0;
}

int cli_parse(cli_opts *o, int argc, char **argv, int first, const char *cmd) {
    memset(o, 0, sizeof *o);
    o->n_predict = 16;
    o->temp = 0.0f;
    o->top_k = 64;
    o->top_p = 0.95f;
    o->seed = 42;
    o->repeat_penalty = 1.0f;
    o->chat_style = "auto";
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define IS(s1, s2) (strcmp(a, s1) == 0 || strcmp(a, s2) == 0)
#define NEED_VALUE                                                        \
    do {                                                                  \
        if (!v) {                                                         \
            fprintf(stderr, "gemma4c %s: %s needs a value\n", cmd, a);    \
            return 1;                                                     \
        }                                                                 \
        i++;                                                              \
    } while (0)
        if (IS("-m", "--model")) { NEED_VALUE; o->model = v; }
        else if (IS("-mm", "--mmproj")) { NEED_VALUE; o->mmproj = v; }
        else if (IS("--tokens", "--prompt-ids")) { NEED_VALUE; o->tokens = v; }
        else if (IS("-o", "--out")) { NEED_VALUE; o->out = v; }
        else if (IS("-n", "--max-tokens") || IS("--n-predict", "--predict")) { NEED_VALUE; if (parse_int(a, v, 0, INT_MAX, &o->n_predict)) return 1; }
        else if (IS("-t", "--threads")) { NEED_VALUE; if (parse_int(a, v, 0, 1024, &o->n_threads)) return 1; }
        else if (IS("-c", "--ctx-size")) { NEED_VALUE; if (parse_int(a, v, 0, 1 << 30, &o->n_ctx)) return 1; }
        else if (IS("-ub", "--ubatch-size")) { NEED_VALUE; if (parse_int(a, v, 1, 1 << 20, &o->n_ubatch)) return 1; }
        else if (IS("--temp", "--temperature")) { NEED_VALUE; if (parse_float(a, v, &o->temp)) return 1; o->set_temp = 1; }
        else if (IS("--top-k", "--top_k")) { NEED_VALUE; if (parse_int(a, v, 0, INT_MAX, &o->top_k)) return 1; o->set_top_k = 1; }
        else if (IS("--top-p", "--top_p")) { NEED_VALUE; if (parse_float(a, v, &o->top_p)) return 1; o->set_top_p = 1; }
        else if (IS("--min-p", "--min_p")) { NEED_VALUE; if (parse_float(a, v, &o->min_p)) return 1; }
        else if (IS("--repeat-penalty", "--repetition-penalty")) { NEED_VALUE; if (parse_float(a, v, &o->repeat_penalty)) return 1; }
        else if (IS("--presence-penalty", "--presence_penalty")) { NEED_VALUE; if (parse_float(a, v, &o->presence_penalty)) return 1; }
        else if (IS("-p", "--prompt")) { NEED_VALUE; o->prompt = v; }
        else if (IS("--system", "-sys")) { NEED_VALUE; o->system = v; }
        else if (IS("--image", "--img")) {
            NEED_VALUE;
            if (o->n_images == 16) { fprintf(stderr, "gemma4c %s: at most 16 images\n", cmd); return 1; }
            o->images[o->n_images++] = v;
        }
        else if (IS("--image-budget", "--max-soft-tokens")) {
            NEED_VALUE;
            if (parse_int(a, v, 70, 1120, &o->image_budget)) return 1;
            if (o->image_budget != 70 && o->image_budget != 140 && o->image_budget != 280 && o->image_budget != 560 &&
                o->image_budget != 1120) {
                fprintf(stderr, "gemma4c %s: --image-budget must be 70, 140, 280, 560 or 1120\n", cmd);
                return 1;
            }
        }
        else if (IS("--stop", "-r")) {
            NEED_VALUE;
            if (o->n_stops == 16) { fprintf(stderr, "gemma4c %s: at most 16 stop strings\n", cmd); return 1; }
            o->stops[o->n_stops++] = v;
        }
        else if (IS("--think", "--thinking")) o->think = 1;
        else if (IS("--show-thinking", "--show_thinking")) o->show_thinking = 1;
        else if (IS("--chat-style", "--template-style")) {
            NEED_VALUE;
            if (strcmp(v, "auto") && strcmp(v, "small") && strcmp(v, "large")) {
                fprintf(stderr, "gemma4c %s: --chat-style must be auto, small (E2B/E4B) or large (26B/31B)\n", cmd);
                return 1;
            }
            o->chat_style = v;
        }
        else if (IS("--seed", "-s")) {
            NEED_VALUE;
            char *end;
            errno = 0;
            unsigned long long x = strtoull(v, &end, 10);
            if (!*v || *end || errno) { fprintf(stderr, "gemma4c: --seed needs a non-negative integer\n"); return 1; }
            o->seed = x;
        }
        else if (IS("--print-ids", "--ids")) o->print_ids = 1;
        else if (IS("--ignore-eos", "--ignore_eos")) o->ignore_eos = 1;
        else if (IS("--json", "-j")) o->json = 1;
        else {
            fprintf(stderr, "gemma4c %s: unknown option '%s' (see gemma4c %s --help)\n", cmd, a, cmd);
            return 1;
        }
#undef IS
#undef NEED_VALUE
    }
    return 0;
}

int cli_parse_tokens(const char *s, int32_t **out) {
    *out = NULL;
    if (!s || !*s) {
        fprintf(stderr, "gemma4c: --tokens needs a comma-separated list of token ids\n");
        return -1;
    }
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return -1;
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            fprintf(stderr, "gemma4c: --tokens: bad id at character %d of '%s'\n", (int)(p - s) + 1, s);
            free(ids);
            return -1;
        }
        ids[n++] = (int32_t)v;
        if (!*end) break;
        p = end + 1;
    }
    *out = ids;
    return n;
}
