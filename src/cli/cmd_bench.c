/* gemma4c bench: llama-bench's conventions. pp<N> = prompt processing of N tokens from an empty cache, tg<N> =
 * generating N tokens one at a time (after a 1-token prompt), each repeated -r times and reported as mean ± sd
 * tokens/s; tokenization and sampling are excluded (random token ids, logits of the last position only).
 * Also the image encode time at a soft-token budget (random pixels) and the peak resident memory. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "runtime/runtime.h"

typedef struct {
    const char *name; /* "pp512", "tg128", "img280" */
    double mean, sd;  /* tokens/s (images: ms per image) */
    int n;
} result;

static void stats(const double *v, int n, double *mean, double *sd) {
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

/* The read-rate probe's buffer is not the model's memory: take the peak before it, then start the peak afresh
 * after it (Linux: "5" to clear_refs resets VmHWM to the current RSS). Returns the sustained rate over `ms`, *burst
 * the fastest single pass (g4c_read_sustained). */
static double read_rate_probe(g4c_pool *pool, double ms, double *peak, double *burst) {
    const double before = cli_peak_mib(NULL);
    *peak = before > *peak ? before : *peak;
    *burst = 0;
    if (!cli_reset_peak()) return 0; /* the probe would count in the peak: no floor then */
    const double r = g4c_read_sustained(pool, (size_t)512 << 20, ms, burst);
    cli_reset_peak();
    return r;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static int32_t rand_token(int n_vocab) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (int32_t)(3 + rng % (uint64_t)(n_vocab > 100 ? 97 : n_vocab - 3)); /* ordinary ids 3..99 (cost does not depend on the id) */
}

static const char *const bench_help =
    "usage: gemma4c bench -m MODEL [-p 512] [-n 128] [-r 5] [-t N] [--image-budget N [--mmproj F]] [-o md|json|csv]\n"
    "llama-bench style throughput: pp<p> (prompt tokens/s from an empty cache), tg<n> (generated tokens/s, one at a\n"
    "time), and with --image-budget the vision encode time of one image; mean ± sd over -r repetitions after one\n"
    "warm-up. -p 0 or -n 0 skips that test. tg tests also give the weight bytes a token reads and the read rate they\n"
    "imply; on the CPU also that rate as a fraction of the machine's read bandwidth (decode's floor: every weight\n"
    "byte once per token): the rate a read loop sustains, for half a repetition's time (0.5-4 s) just before and just\n"
    "after each repetition, and, for reference, the fastest single read among them (the peak).\n";

int cmd_bench(int argc, char **argv) {
    if (argc > 2 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))) { fputs(bench_help, stdout); return 0; }
    /* bench's own flags first (-p is a count here, -r repetitions, -o format); the rest go to cli_parse */
    int n_pp = 512, n_tg = 128, reps = 5;
    const char *fmt = "md";
    char *rest[64];
    int n_rest = 0;
    rest[n_rest++] = argv[0];
    rest[n_rest++] = argv[1];
    for (int i = 2; i < argc && n_rest < 62; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if ((!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) && v) n_pp = atoi(v), i++;
        else if ((!strcmp(a, "-n") || !strcmp(a, "--n-gen")) && v) n_tg = atoi(v), i++;
        else if ((!strcmp(a, "-r") || !strcmp(a, "--repetitions")) && v) reps = atoi(v), i++;
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && v) fmt = v, i++;
        else rest[n_rest++] = argv[i];
    }
    if (n_pp < 0 || n_tg < 0 || reps < 1 || reps > 1000 || (strcmp(fmt, "md") && strcmp(fmt, "json") && strcmp(fmt, "csv"))) {
        fprintf(stderr, "gemma4c bench: -p/-n >= 0, -r in [1, 1000], -o md|json|csv\n");
        return 2;
    }
    cli_opts o;
    if (cli_parse(&o, n_rest, rest, 2, "bench")) return 2;
    if (!o.model) { fprintf(stderr, "gemma4c bench: -m MODEL (a checkpoint directory or a .gguf) is required\n%s", bench_help); return 2; }
    g4c_err err = {0};
    g4c_model_params mp = g4c_model_default_params();
    mp.n_threads = o.n_threads;
    mp.mmproj_path = o.mmproj;
    g4c_model *m = NULL;
    if (g4c_model_load(&m, o.model, &mp, &err) != G4C_OK) { cli_die_err("cannot load model", &err); return 1; }
    g4c_session_params sp = g4c_session_default_params();
    sp.n_ctx = n_pp + n_tg + 8;
    if (o.n_ubatch) sp.n_ubatch = o.n_ubatch;
    g4c_session *s = NULL;
    if (g4c_session_init(&s, m, &sp, &err) != G4C_OK) { cli_die_err("session", &err); g4c_model_free(m); return 1; }
    const int V = g4c_model_n_vocab(m);
    float *logits = malloc(sizeof(float) * (size_t)V);
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)(n_pp + 1));
    double *v = malloc(sizeof(double) * (size_t)reps);
    result res[3];
    int n_res = 0, rc = 0;
    if (!logits || !toks || !v) { rc = 1; goto done; }
    if (n_pp > 0) {
        for (int r = -1; r < reps && !rc; r++) { /* r = -1: warm-up */
            for (int i = 0; i < n_pp; i++) toks[i] = rand_token(V);
            g4c_session_reset(s);
            double t0 = g4c_time_ms();
            if (g4c_session_eval(s, toks, n_pp, logits, G4C_LOGITS_LAST, &err) != G4C_OK) rc = 1;
            if (r >= 0) v[r] = n_pp / ((g4c_time_ms() - t0) / 1e3);
        }
        static char name[32];
        snprintf(name, sizeof name, "pp%d", n_pp);
        res[n_res].name = name;
        stats(v, reps, &res[n_res].mean, &res[n_res].sd);
        res[n_res++].n = n_pp;
    }
    /* decode's floor on the CPU: the rate at which the machine keeps reading memory, measured between the tg
     * repetitions (this class of machine drifts by 10-25% within minutes): each repetition against the mean of the
     * sustained reads just before and just after it, for half as long as the warm-up took (0.5-4 s) each; of_floor
     * is its fraction of that, averaged over the repetitions. Single fast reads run 10-25% above what a loop keeps
     * up over seconds (bench/RESULTS.md, twelfth session): of_peak holds the repetition against the fastest. */
    const int on_cpu = g4c_session_default_params().device != G4C_DEVICE_CUDA;
    const double gb_token = g4c_weights_token_bytes(&m->w, &m->cfg) / 1e9;
    double read_rate = 0, of_floor = 0, peak_rate = 0, of_peak = 0, peak = 0, probe = 0, burst = 0, probe_ms = 0;
    if (n_tg > 0 && !rc) {
        for (int r = -1; r < reps && !rc; r++) {
            if (r == 0 && on_cpu) probe = read_rate_probe(m->pool, probe_ms, &peak, &burst); /* after the warm-up */
            g4c_session_reset(s);
            int32_t t = 2;
            if (g4c_session_eval(s, &t, 1, logits, G4C_LOGITS_LAST, &err) != G4C_OK) rc = 1;
            double t0 = g4c_time_ms();
            for (int i = 0; i < n_tg && !rc; i++) {
                t = rand_token(V);
                if (g4c_session_eval(s, &t, 1, logits, G4C_LOGITS_LAST, &err) != G4C_OK) rc = 1;
            }
            const double ms = g4c_time_ms() - t0;
            if (r < 0) {
                probe_ms = ms / 2 < 500 ? 500 : ms / 2 > 4000 ? 4000 : ms / 2;
                continue;
            }
            v[r] = n_tg / (ms / 1e3);
            if (on_cpu && !rc) {
                double burst_after;
                const double after = read_rate_probe(m->pool, probe_ms, &peak, &burst_after);
                const double floor_r = (after + probe) / 2, peak_r = burst_after > burst ? burst_after : burst;
                read_rate += floor_r / reps, peak_rate += peak_r / reps;
                of_floor += after > 0 && probe > 0 ? v[r] * gb_token / floor_r / reps : 0;
                of_peak += peak_r > 0 ? v[r] * gb_token / peak_r / reps : 0;
                probe = after, burst = burst_after;
            }
        }
        static char name[32];
        snprintf(name, sizeof name, "tg%d", n_tg);
        res[n_res].name = name;
        stats(v, reps, &res[n_res].mean, &res[n_res].sd);
        res[n_res++].n = n_tg;
    }
    if (o.image_budget && !rc) {
        if (!g4c_model_has_vision(m)) {
            fprintf(stderr, "gemma4c bench: this model has no vision tower (--image-budget)\n");
            rc = 1;
        } else {
            /* a square image at the budget: side = 48·floor(sqrt(budget)) gives (side/16)² / 9 <= budget tokens */
            const int g = (int)floor(sqrt((double)o.image_budget)) * 3, n = g * g;
            float *p = malloc(sizeof(float) * (size_t)n * 768), *out = malloc(sizeof(float) * (size_t)(n / 9) * g4c_model_n_embd(m));
            int32_t *pos = malloc(sizeof(int32_t) * (size_t)n * 2);
            if (!p || !out || !pos) rc = 1;
            for (int i = 0; !rc && i < n; i++) pos[2 * i] = i % g, pos[2 * i + 1] = i / g;
            for (size_t i = 0; !rc && i < (size_t)n * 768; i++) p[i] = (float)((i * 2654435761u) % 256) / 255.0f;
            for (int r = -1; r < reps && !rc; r++) {
                double t0 = g4c_time_ms();
                if (g4c_model_encode_image(m, p, pos, n, out, &err) != G4C_OK) rc = 1;
                if (r >= 0) v[r] = g4c_time_ms() - t0;
            }
            static char name[32];
            snprintf(name, sizeof name, "img%d", n / 9);
            res[n_res].name = name;
            stats(v, reps, &res[n_res].mean, &res[n_res].sd);
            res[n_res++].n = n / 9;
            free(p), free(out), free(pos);
        }
    }
    if (rc) {
        if (err.msg[0]) cli_die_err("bench", &err);
        goto done;
    }
    const double now = cli_peak_mib(NULL);
    peak = now > peak ? now : peak;
    const int threads = o.n_threads ? o.n_threads : g4c_n_cpus();
    /* decode is a stream of weight bytes: tg tests also report the weight bytes a token reads and the read rate
     * they imply, to hold against the machine's memory bandwidth (the floor, bench/RESULTS.md) */
    double gb_s = 0; /* the tg test's weight read rate (of_floor: its fraction of the read rate, 0: none) */
    for (int i = 0; i < n_res; i++)
        if (!strncmp(res[i].name, "tg", 2)) gb_s = res[i].mean * gb_token;
    if (!strcmp(fmt, "json")) {
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < n_res; i++) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "model", o.model);
            cJSON_AddNumberToObject(j, "threads", threads);
            cJSON_AddStringToObject(j, "test", res[i].name);
            cJSON_AddStringToObject(j, "unit", !strncmp(res[i].name, "img", 3) ? "ms" : "t/s");
            cJSON_AddNumberToObject(j, "avg", res[i].mean);
            cJSON_AddNumberToObject(j, "stddev", res[i].sd);
            cJSON_AddNumberToObject(j, "repetitions", reps);
            cJSON_AddNumberToObject(j, "peak_memory_mib", peak);
            if (!strncmp(res[i].name, "tg", 2)) {
                cJSON_AddNumberToObject(j, "weights_gb_per_token", gb_token);
                cJSON_AddNumberToObject(j, "weights_gb_per_s", gb_s);
                if (of_floor > 0) {
                    cJSON_AddNumberToObject(j, "read_gb_per_s", read_rate);
                    cJSON_AddNumberToObject(j, "of_floor", of_floor);
                    cJSON_AddNumberToObject(j, "peak_read_gb_per_s", peak_rate);
                    cJSON_AddNumberToObject(j, "of_peak", of_peak);
                }
            }
            cJSON_AddItemToArray(arr, j);
        }
        char *txt = cJSON_Print(arr);
        if (txt) puts(txt);
        free(txt);
        cJSON_Delete(arr);
    } else if (!strcmp(fmt, "csv")) {
        puts("model,threads,test,unit,avg,stddev,repetitions,peak_memory_mib,weights_gb_per_token,weights_gb_per_s,"
             "read_gb_per_s,of_floor,peak_read_gb_per_s,of_peak");
        for (int i = 0; i < n_res; i++) {
            printf("%s,%d,%s,%s,%.3f,%.3f,%d,%.0f", o.model, threads, res[i].name,
                   !strncmp(res[i].name, "img", 3) ? "ms" : "t/s", res[i].mean, res[i].sd, reps, peak);
            if (!strncmp(res[i].name, "tg", 2)) {
                printf(",%.4f,%.6g", gb_token, gb_s);
                if (of_floor > 0) printf(",%.6g,%.6g,%.6g,%.6g\n", read_rate, of_floor, peak_rate, of_peak);
                else printf(",,,,\n");
            } else {
                printf(",,,,,,\n");
            }
        }
    } else {
        printf("| model | backend | threads | test | t/s |\n| --- | --- | ---: | --- | ---: |\n");
        const char *be = g4c_session_default_params().device == G4C_DEVICE_CUDA ? "CUDA" : "CPU"; /* --device */
        for (int i = 0; i < n_res; i++) {
            if (!strncmp(res[i].name, "img", 3))
                printf("| %s | %s | %d | %s | %.2f ± %.2f ms |\n", o.model, be, threads, res[i].name, res[i].mean, res[i].sd);
            else
                printf("| %s | %s | %d | %s | %.2f ± %.2f |\n", o.model, be, threads, res[i].name, res[i].mean, res[i].sd);
        }
        printf("\npeak memory %.0f MiB\n", peak);
        for (int i = 0; i < n_res; i++)
            if (!strncmp(res[i].name, "tg", 2)) {
                printf("%s reads %.3f GB of weights per token: %.1f GB/s", res[i].name, gb_token, gb_s);
                if (of_floor > 0)
                    printf(", %.0f%% of the machine's sustained read rate (%.1f GB/s: each repetition against the mean of "
                           "%.1f s of reads just before and just after it); %.0f%% of its peak (%.1f GB/s)",
                           100 * of_floor, read_rate, probe_ms / 1e3, 100 * of_peak, peak_rate);
                putchar('\n');
            }
    }
done:
    free(logits), free(toks), free(v);
    g4c_session_free(s);
    g4c_model_free(m);
    return rc;
}
