/* gemma4c perf: the notebook's throughput suite (issue 7, docs/REPORT.md). Six prompts — short, medium and long,
 * text only and image + text — with 50 / 300 / 500 new tokens, greedy; per test the prompt and generated tokens,
 * prompt and generation speed, time to first token, total time and the peak resident memory (VmHWM, reset before
 * each test through /proc/self/clear_refs, else the process' getrusage high-water mark). --ignore-eos keeps
 * generating past end-of-generation (its logits are masked) so every engine produces the full length.
 * Writes RUN/perf.json (read by gemma4c report) and RUN/perf.md. */
#include <cjson/cJSON.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "eval/eval.h"
#include "image/image.h"
#include "report/report.h"
#include "runtime/runtime.h"

typedef struct {
    const char *name, *modality, *prompt;
    int max_tokens;
} perf_def;

static const perf_def tests[6] = {
    {"text-short", "text", "What is 2+2?", 50},
    {"text-medium", "text", "Explain the transformer architecture in detail, covering attention, positional encoding, "
                            "and training.", 300},
    {"text-long", "text", "Write a detailed tutorial on building a CNN for image classification in PyTorch. Cover data "
                          "loading, model architecture with conv/pool/fc layers, training loop, evaluation, and common "
                          "pitfalls. Include code snippets.", 500},
    {"image-short", "image", "What is this?", 50},
    {"image-medium", "image", "Describe everything you see in this image in detail.", 300},
    {"image-long", "image", "Analyze this image. Describe the setting, count all people, describe their activities, "
                            "identify all objects, estimate the time of day, and suggest what event is taking place. Be "
                            "thorough.", 500},
};

typedef struct {
    cli_opts o;
    const char *tests, *device, *label;
    int warmup;
    g4c_model *m;
    g4c_tokenizer *tok;
    g4c_session *s;
    g4c_sampler *smp;
    g4c_chat_style style;
    int budget, device_id;
    int32_t *eog;
    int n_eog;
    float *logits;
} perf;

typedef struct {
    int prompt_tokens, gen_tokens;
    double image_ms, prefill_ms, first_ms, decode_ms, total_ms, peak_mib;
    const char *stop;
    char *text;
    size_t n_text;
    int peak_per_test;
} perf_result;

static int perf_open(perf *p) {
    g4c_err err = {0};
    g4c_model_params mp = g4c_model_default_params();
    mp.n_threads = p->o.n_threads;
    mp.mmproj_path = p->o.mmproj;
    if (g4c_model_load(&p->m, p->o.model, &mp, &err) != G4C_OK) { cli_die_err("cannot load the model", &err); return 1; }
    struct stat sb;
    char path[4096];
    const int is_file = stat(p->o.model, &sb) == 0 && S_ISREG(sb.st_mode);
    g4c_status st;
    if (is_file) st = g4c_tok_load_gguf(&p->tok, p->o.model, &err);
    else {
        snprintf(path, sizeof path, "%s/tokenizer.json", p->o.model);
        st = g4c_tok_load(&p->tok, path, &err);
    }
    if (st != G4C_OK) { cli_die_err("cannot load the tokenizer", &err); return 1; }
    g4c_err serr = {0};
    if (g4c_tok_apply_gemma4_specials(p->tok, &serr) != G4C_OK)
        g4c_log(G4C_LOG_WARN, "tokenizer is not Gemma's 262144-piece vocabulary: %s", serr.msg);
    char *tt = is_file ? NULL : cli_template_text(p->o.model);
    p->style = g4c_chat_style_for(&p->m->cfg, tt);
    free(tt);
    p->style.thinking = 0;
    p->budget = p->o.image_budget ? p->o.image_budget : is_file ? G4C_IMAGE_DEFAULT_BUDGET : cli_default_budget(p->o.model);
    g4c_session_params sp = g4c_session_default_params();
    sp.n_ctx = p->o.n_ctx ? p->o.n_ctx : 4096;
    if (sp.n_ctx > g4c_model_n_ctx_train(p->m)) sp.n_ctx = g4c_model_n_ctx_train(p->m);
    if (p->o.n_ubatch) sp.n_ubatch = p->o.n_ubatch;
    sp.device = p->device_id;
    if (g4c_session_init(&p->s, p->m, &sp, &err) != G4C_OK) { cli_die_err("cannot create a session", &err); return 1; }
    g4c_sampler_params spp = g4c_sampler_default_params();
    spp.temperature = p->o.set_temp ? p->o.temp : 0; /* greedy unless asked */
    if (p->o.set_top_k) spp.top_k = p->o.top_k;
    if (p->o.set_top_p) spp.top_p = p->o.top_p;
    spp.seed = p->o.seed;
    if (g4c_sampler_init(&p->smp, &spp, g4c_model_n_vocab(p->m), &err) != G4C_OK) { cli_die_err("sampler", &err); return 1; }
    const int V = g4c_model_n_vocab(p->m);
    p->logits = malloc(sizeof(float) * (size_t)V);
    p->eog = malloc(sizeof(int32_t) * 64);
    if (!p->logits || !p->eog) return 1;
    for (int32_t t = 0; t < V && p->n_eog < 64; t++)
        if (g4c_model_is_eog(p->m, t)) p->eog[p->n_eog++] = t;
    return 0;
}

static void perf_close(perf *p) {
    g4c_sampler_free(p->smp);
    g4c_session_free(p->s);
    g4c_tok_free(p->tok);
    g4c_model_free(p->m);
    free(p->logits);
    free(p->eog);
}

static void add_text(perf_result *r, const char *s, size_t n) {
    char *g = realloc(r->text, r->n_text + n + 1);
    if (!g) return;
    memcpy(g + r->n_text, s, n);
    r->n_text += n;
    g[r->n_text] = 0;
    r->text = g;
}

/* One test: encode the image (timed), prefill, then sample + decode one token at a time. */
static int run_test(perf *p, const char *prompt, const char *image, int max_tokens, perf_result *r) {
    g4c_err err = {0};
    memset(r, 0, sizeof *r);
    r->peak_per_test = cli_reset_peak();
    const double t0 = g4c_time_ms();
    float *soft = NULL;
    int n_soft = 0;
    if (image) {
        g4c_image_patches ip = {0};
        if (g4c_image_preprocess_file(image, p->budget, &ip, &err) != G4C_OK) { cli_die_err(image, &err); return 1; }
        soft = malloc(sizeof(float) * (size_t)ip.n_soft_tokens * (size_t)g4c_model_n_embd(p->m));
        n_soft = ip.n_soft_tokens;
        g4c_status st = soft ? g4c_model_encode_image(p->m, ip.patches, ip.positions, ip.n_patches, soft, &err)
                             : G4C_FAIL(&err, G4C_E_NOMEM, "out of memory");
        g4c_image_patches_free(&ip);
        if (st != G4C_OK) { cli_die_err(image, &err); free(soft); return 1; }
    }
    const double t_img = g4c_time_ms();
    r->image_ms = t_img - t0;
    g4c_chat_item items[2] = {{.is_image = 1}, {.text = prompt}};
    g4c_chat_msg msg = {G4C_ROLE_USER, image ? items : items + 1, image ? 2 : 1};
    int32_t *ids = NULL;
    int n = 0;
    if (g4c_prompt_build(p->m, p->tok, &p->style, &msg, 1, 1, &n_soft, image ? 1 : 0, &ids, &n, &err) != G4C_OK) {
        cli_die_err("prompt", &err);
        free(soft);
        return 1;
    }
    const int room = g4c_session_n_ctx(p->s) - n;
    if (room <= 1) {
        fprintf(stderr, "gemma4c perf: the prompt is %d tokens, the context holds %d (raise -c)\n", n,
                g4c_session_n_ctx(p->s));
        free(ids), free(soft);
        return 1;
    }
    if (max_tokens > room) max_tokens = room;
    g4c_session_reset(p->s);
    r->prompt_tokens = n;
    const double t1 = g4c_time_ms();
    g4c_status st = g4c_session_eval_mm(p->s, ids, n, soft, n_soft, p->logits, G4C_LOGITS_LAST, &err);
    const double t2 = g4c_time_ms();
    r->prefill_ms = t2 - t1;
    for (int i = 0; i < n && st == G4C_OK; i++) g4c_sampler_accept(p->smp, ids[i]);
    free(ids), free(soft);
    g4c_tok_stream ds = {0};
    char piece[256];
    double t_first = t2;
    r->stop = "length";
    while (st == G4C_OK && r->gen_tokens < max_tokens) {
        if (p->o.ignore_eos)
            for (int k = 0; k < p->n_eog; k++) p->logits[p->eog[k]] = -INFINITY;
        const int32_t t = g4c_sampler_sample(p->smp, p->logits);
        if (r->gen_tokens++ == 0) t_first = g4c_time_ms();
        g4c_sampler_accept(p->smp, t);
        if (!p->o.ignore_eos && g4c_model_is_eog(p->m, t)) { r->stop = "eos"; break; }
        if (!g4c_tok_is_special(p->tok, t)) {
            const int k = g4c_tok_stream_push(p->tok, &ds, t, piece, sizeof piece);
            if (k > 0 && (size_t)k < sizeof piece) add_text(r, piece, (size_t)k);
        }
        if (r->gen_tokens == max_tokens) break;
        st = g4c_session_eval(p->s, &t, 1, p->logits, G4C_LOGITS_LAST, &err);
    }
    const int k = g4c_tok_stream_flush(&ds, piece, sizeof piece);
    if (k > 0 && (size_t)k < sizeof piece) add_text(r, piece, (size_t)k);
    const double t3 = g4c_time_ms();
    if (st != G4C_OK) { cli_die_err("generation failed", &err); return 1; }
    r->first_ms = t_first - t0;
    r->decode_ms = t3 - t_first;
    r->total_ms = t3 - t0;
    r->peak_mib = cli_peak_mib(&r->peak_per_test);
    return 0;
}

/* ---- hardware ---- */

static char *first_field(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char line[512], *out = NULL;
    const size_t kl = strlen(key);
    while (!out && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl)) continue;
        char *v = strchr(line + kl, ':');
        if (!v) continue;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = 0;
        out = strdup(v);
    }
    fclose(f);
    return out;
}

static cJSON *hardware(int cuda) {
    cJSON *h = cJSON_CreateObject();
    char *cpu = first_field("/proc/cpuinfo", "model name");
    cJSON_AddStringToObject(h, "cpu", cpu ? cpu : "unknown CPU");
    free(cpu);
    cJSON_AddNumberToObject(h, "cores", g4c_n_cpus());
    char *mem = first_field("/proc/meminfo", "MemTotal");
    if (mem) cJSON_AddNumberToObject(h, "memory_gib", round(atof(mem) / 1048576.0 * 10) / 10);
    free(mem);
    if (cuda) { /* the driver's description of the first GPU */
        glob_t g;
        if (glob("/proc/driver/nvidia/gpus/*/information", 0, NULL, &g) == 0 && g.gl_pathc > 0) {
            char *model = first_field(g.gl_pathv[0], "Model");
            if (model) cJSON_AddStringToObject(h, "gpu", model);
            free(model);
        }
        globfree(&g);
        if (!cJSON_GetObjectItemCaseSensitive(h, "gpu")) cJSON_AddStringToObject(h, "gpu", "CUDA GPU");
    }
    return h;
}

static const char *const perf_help =
    "usage: gemma4c perf -m MODEL --out RUN [options]\n"
    "The notebook's throughput suite: six prompts (text and image + text; short, medium, long) with 50 / 300 / 500\n"
    "new tokens, greedy. Prints a table per test and writes RUN/perf.json (for gemma4c report) and RUN/perf.md.\n"
    "  -m, --model DIR|GGUF     the checkpoint\n"
    "      --mmproj FILE        a GGUF model's vision projector (default: the *mmproj*.gguf beside the model)\n"
    "  -o, --out RUN            the run folder (created)\n"
    "      --image F            the image of the image tests (default: the built-in sample grace_hopper.jpg)\n"
    "      --ignore-eos         keep generating past end-of-generation: full lengths, for fair speed comparisons\n"
    "  -n, --max-tokens N       cap every test's new tokens at N (quick runs)\n"
    "      --tests LIST         a subset: text, image, or names (text-short,image-long,...) separated by commas\n"
    "      --label NAME         the system's name in reports (default: the model folder's name)\n"
    "      --device cpu|cuda    where the text decoder runs (cuda needs a -DGEMMA4C_CUDA=ON build)\n"
    "      --no-warmup          skip the untimed warm-up generation\n"
    "      --image-budget N     soft tokens per image (default: the checkpoint's)\n"
    "      --json               print perf.json to stdout instead of the table\n"
    "  -c, --ctx-size N         context (default 4096)   -t, --threads N   CPU threads   --temp T  (default greedy)\n";

static int selected(const char *list, const perf_def *t) {
    if (!list) return 1;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *s = strtok(buf, ","); s; s = strtok(NULL, ","))
        if (!strcmp(s, t->name) || !strcmp(s, t->modality) || !strcmp(s, "all")) return 1;
    return 0;
}

int cmd_perf(int argc, char **argv) {
    perf p;
    memset(&p, 0, sizeof p);
    p.warmup = 1;
    /* this command's own flags first; the rest are the shared model flags */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) return 1;
    int nr = 0, capped = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        capped |= i >= 2 && (!strcmp(a, "-n") || !strcmp(a, "--max-tokens") || !strcmp(a, "--n-predict") ||
                             !strcmp(a, "--predict"));
        if (i >= 2 && (!strcmp(a, "-h") || !strcmp(a, "--help"))) { fputs(perf_help, stdout); free(rest); return 0; }
        const int valued = i >= 2 && (!strcmp(a, "--tests") || !strcmp(a, "--device") || !strcmp(a, "--label"));
        if (valued && i + 1 >= argc) { fprintf(stderr, "gemma4c perf: %s needs a value\n", a); free(rest); return 2; }
        if (valued && !strcmp(a, "--tests")) p.tests = argv[++i];
        else if (valued && !strcmp(a, "--device")) p.device = argv[++i];
        else if (valued) p.label = argv[++i];
        else if (i >= 2 && !strcmp(a, "--no-warmup")) p.warmup = 0;
        else rest[nr++] = argv[i];
    }
    int rc = cli_parse(&p.o, nr, rest, 2, "perf");
    free(rest);
    if (rc) return 2;
    if (!capped) p.o.n_predict = 0; /* no cap: each test's own limit */
    if (!p.o.model || !p.o.out) { fprintf(stderr, "gemma4c perf: -m MODEL and --out RUN are required\n%s", perf_help); return 2; }
    if (p.device && strcmp(p.device, "cpu") && strcmp(p.device, "cuda")) {
        fprintf(stderr, "gemma4c perf: --device must be cpu or cuda\n");
        return 2;
    }
    p.device_id = p.device && !strcmp(p.device, "cuda") ? G4C_DEVICE_CUDA : G4C_DEVICE_CPU;
    int want[6], n_want = 0, need_image = 0;
    for (int i = 0; i < 6; i++) {
        want[i] = selected(p.tests, &tests[i]);
        n_want += want[i];
        need_image |= want[i] && !strcmp(tests[i].modality, "image");
    }
    if (!n_want) { fprintf(stderr, "gemma4c perf: --tests '%s' selects no test\n", p.tests); return 2; }
    char def_image[4096];
    snprintf(def_image, sizeof def_image, "%s/images/grace_hopper.jpg", eval_samples_dir());
    const char *image = p.o.n_images ? p.o.images[0] : def_image;
    if (need_image && access(image, R_OK) != 0) { fprintf(stderr, "gemma4c perf: cannot read the image %s\n", image); return 2; }
    g4c_err err = {0};
    if (rp_mkdir_p(p.o.out, &err) != G4C_OK) { cli_die_err("--out", &err); return 1; }
    if ((rc = perf_open(&p))) { perf_close(&p); return rc; }
    if (need_image && !g4c_model_has_vision(p.m)) {
        fprintf(stderr, "gemma4c perf: %s has no usable vision tower (%s): use --tests text\n", p.o.model, p.m->vision_err);
        perf_close(&p);
        return 1;
    }
    perf_result r;
    if (p.warmup && (rc = run_test(&p, "Hi", need_image ? image : NULL, 2, &r)) != 0) { perf_close(&p); return rc; }
    if (p.warmup) free(r.text);
    cJSON *root = cJSON_CreateObject(), *arr = NULL;
    char cwd[2048] = "", model[6200];
    if (p.o.model[0] != '/' && !getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    snprintf(model, sizeof model, "%s%s%s", cwd, cwd[0] ? "/" : "", p.o.model);
    cJSON_AddStringToObject(root, "kind", "perf");
    if (p.label) cJSON_AddStringToObject(root, "label", p.label);
    cJSON_AddStringToObject(root, "model", model);
    cJSON_AddStringToObject(root, "framework", "gemma4c");
    cJSON_AddStringToObject(root, "version", g4c_version());
    cJSON_AddStringToObject(root, "device", p.device_id ? "cuda" : "cpu");
    cJSON_AddNumberToObject(root, "threads", p.o.n_threads ? p.o.n_threads : g4c_n_cpus());
    cJSON_AddItemToObject(root, "hardware", hardware(p.device_id));
    cJSON_AddBoolToObject(root, "ignore_eos", p.o.ignore_eos);
    cJSON_AddStringToObject(root, "sampling", p.o.set_temp ? "sampled" : "greedy");
    if (need_image) cJSON_AddStringToObject(root, "image", image), cJSON_AddNumberToObject(root, "image_budget", p.budget);
    arr = cJSON_AddArrayToObject(root, "tests");
    const int tty = isatty(2);
    if (!p.o.json)
        printf("%-13s %5s %7s %6s %13s %10s %12s %9s %12s  %s\n", "test", "max", "prompt", "gen", "prompt tok/s",
               "gen tok/s", "first token", "time", "peak memory", "stop");
    double peak = 0;
    for (int i = 0; i < 6 && !rc; i++) {
        if (!want[i]) continue;
        const perf_def *t = &tests[i];
        const int max = p.o.n_predict > 0 && p.o.n_predict < t->max_tokens ? p.o.n_predict : t->max_tokens;
        if (tty) fprintf(stderr, "%s ...\r", t->name);
        if ((rc = run_test(&p, t->prompt, strcmp(t->modality, "image") ? NULL : image, max, &r))) break;
        const double pp = r.prefill_ms > 0 ? r.prompt_tokens / (r.prefill_ms / 1e3) : 0;
        const double tg = r.gen_tokens > 1 && r.decode_ms > 0 ? (r.gen_tokens - 1) / (r.decode_ms / 1e3) : 0;
        if (r.peak_mib > peak) peak = r.peak_mib;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", t->name);
        cJSON_AddStringToObject(e, "modality", t->modality);
        cJSON_AddStringToObject(e, "prompt", t->prompt);
        cJSON_AddNumberToObject(e, "max_tokens", max);
        cJSON_AddNumberToObject(e, "prompt_tokens", r.prompt_tokens);
        cJSON_AddNumberToObject(e, "gen_tokens", r.gen_tokens);
        cJSON_AddNumberToObject(e, "prompt_tok_s", round(pp * 100) / 100);
        cJSON_AddNumberToObject(e, "gen_tok_s", round(tg * 100) / 100);
        cJSON_AddNumberToObject(e, "image_ms", round(r.image_ms * 100) / 100);
        cJSON_AddNumberToObject(e, "prefill_ms", round(r.prefill_ms * 100) / 100);
        cJSON_AddNumberToObject(e, "ttft_ms", round(r.first_ms * 100) / 100);
        cJSON_AddNumberToObject(e, "decode_ms", round(r.decode_ms * 100) / 100);
        cJSON_AddNumberToObject(e, "total_s", round(r.total_ms / 10) / 100);
        cJSON_AddNumberToObject(e, "peak_mib", round(r.peak_mib * 10) / 10);
        cJSON_AddStringToObject(e, "peak_scope", r.peak_per_test ? "test" : "process");
        cJSON_AddStringToObject(e, "stop", r.stop);
        cJSON_AddStringToObject(e, "response", r.text ? r.text : "");
        cJSON_AddItemToArray(arr, e);
        if (!p.o.json)
            printf("%-13s %5d %7d %6d %13.1f %10.2f %9.0f ms %7.2f s %8.0f MiB  %s\n", t->name, max, r.prompt_tokens,
                   r.gen_tokens, pp, tg, r.first_ms, r.total_ms / 1e3, r.peak_mib, r.stop);
        fflush(stdout);
        free(r.text);
    }
    cJSON_AddNumberToObject(root, "peak_mib", round(peak * 10) / 10);
    if (!rc) { /* perf.json, then perf.md for people */
        char *js = cJSON_Print(root);
        rp_buf md = {0};
        rp_printf(&md, "# gemma4c perf: %s\n\n%s %s · %s · %s%s\n\n", model, "gemma4c", g4c_version(),
                  p.device_id ? "cuda" : "cpu", p.o.ignore_eos ? "--ignore-eos · " : "",
                  p.o.set_temp ? "sampled" : "greedy");
        const cJSON *hw = cJSON_GetObjectItemCaseSensitive(root, "hardware");
        rp_printf(&md, "Hardware: %s%s%s (%d cores, %.1f GiB RAM)\n\n", rp_jstr(hw, "gpu") ? rp_jstr(hw, "gpu") : "",
                  rp_jstr(hw, "gpu") ? " · " : "", rp_jstr(hw, "cpu"), (int)rp_jnum(hw, "cores"), rp_jnum(hw, "memory_gib"));
        rp_puts(&md, "| test | max tokens | prompt tokens | generated tokens | prompt tok/s | generation tok/s | "
                     "first token (ms) | time (s) | peak memory (MiB) | stop |\n|---|---|---|---|---|---|---|---|---|---|\n");
        const cJSON *e;
        cJSON_ArrayForEach(e, arr)
            rp_printf(&md, "| %s | %.0f | %.0f | %.0f | %.1f | %.2f | %.0f | %.2f | %.0f | %s |\n", rp_jstr(e, "name"),
                      rp_jnum(e, "max_tokens"), rp_jnum(e, "prompt_tokens"), rp_jnum(e, "gen_tokens"),
                      rp_jnum(e, "prompt_tok_s"), rp_jnum(e, "gen_tok_s"), rp_jnum(e, "ttft_ms"), rp_jnum(e, "total_s"),
                      rp_jnum(e, "peak_mib"), rp_jstr(e, "stop"));
        rp_puts(&md, "\nPrompt tok/s = prompt tokens / prefill time; generation tok/s = (generated - 1) / time after "
                     "the first token; time includes the image encoding. docs/REPORT.md.\n");
        if (!js || md.oom) rc = 1;
        else if (rp_write_file(p.o.out, "perf.json", js, strlen(js), &err) != G4C_OK ||
                 rp_write_file(p.o.out, "perf.md", md.p, md.n, &err) != G4C_OK) {
            cli_die_err("cannot write the run", &err);
            rc = 1;
        }
        if (!rc && p.o.json) puts(js);
        else if (!rc) printf("wrote %s/perf.json and %s/perf.md\n", p.o.out, p.o.out);
        free(js);
        free(md.p);
    }
    cJSON_Delete(root);
    perf_close(&p);
    return rc;
}
