/* gemma4c eval and gemma4c score: the notebook's VQA and COCO benchmarks (issue 6, docs/EVAL.md).
 * eval runs a model (-m MODEL, in process) or an OpenAI-compatible server (--endpoint URL) over a data set and
 * scores it; score scores responses saved earlier. Both write RUN/metrics.json, RUN/summary.md and
 * RUN/samples.jsonl; eval also keeps RUN/results.jsonl, the crash-safe log that --resume continues. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "eval/eval.h"
#include "image/image.h"
#include "runtime/runtime.h"

static volatile int g_cancel;
static void on_sigint(int sig) {
    (void)sig;
    g_cancel = 1;
}

/* ---- the in-process model backend ---- */

typedef struct {
    g4c_model *m;
    g4c_tokenizer *tok;
    g4c_session *s;
    g4c_sampler *smp;
    g4c_chat_style style;
    int budget;
    char *img_path; /* the image whose soft tokens are cached (VQA asks several questions per image) */
    float *soft;
    int n_soft;
    char *text;
    size_t n_text;
    int oom;
} model_ctx;

static void on_text(void *user, const char *t, size_t len, int thinking) {
    model_ctx *c = user;
    if (thinking || c->oom) return;
    char *g = realloc(c->text, c->n_text + len + 1);
    if (!g) { c->oom = 1; return; }
    memcpy(g + c->n_text, t, len);
    c->n_text += len;
    g[c->n_text] = 0;
    c->text = g;
}

static g4c_status model_answer(void *ctx, const eval_sample *s, const char *prompt, int max_tokens, eval_answer *ans,
                               g4c_err *err) {
    model_ctx *c = ctx;
    if (!c->img_path || strcmp(c->img_path, s->image)) {
        free(c->img_path), c->img_path = NULL;
        free(c->soft), c->soft = NULL;
        g4c_image_patches ip = {0};
        G4C_TRY(g4c_image_preprocess_file(s->image, c->budget, &ip, err));
        c->soft = g4c_malloc((size_t)ip.n_soft_tokens * (size_t)g4c_model_n_embd(c->m), sizeof(float), err);
        g4c_status st = c->soft ? g4c_model_encode_image(c->m, ip.patches, ip.positions, ip.n_patches, c->soft, err)
                                : G4C_E_NOMEM;
        c->n_soft = ip.n_soft_tokens;
        g4c_image_patches_free(&ip);
        if (st != G4C_OK) return st;
        c->img_path = strdup(s->image);
    }
    g4c_chat_item items[2] = {{.is_image = 1}, {.text = prompt}};
    g4c_chat_msg msg = {G4C_ROLE_USER, items, 2};
    int32_t *ids = NULL;
    int n = 0;
    G4C_TRY(g4c_prompt_build(c->m, c->tok, &c->style, &msg, 1, 1, &c->n_soft, 1, &ids, &n, err));
    const int room = g4c_session_n_ctx(c->s) - n;
    if (room <= 0) {
        free(ids);
        return G4C_FAIL(err, G4C_E_ARG, "%s: the prompt is %d tokens, the context holds %d (raise -c)", s->image, n,
                        g4c_session_n_ctx(c->s));
    }
    g4c_session_reset(c->s);
    c->n_text = 0;
    c->oom = 0;
    g4c_gen_opts go = {.max_tokens = max_tokens < room ? max_tokens : room, .on_text = on_text, .user = c,
                       .cancel = &g_cancel};
    g4c_gen_stats st = {0};
    g4c_status rc = g4c_generate(c->s, c->tok, c->smp, ids, n, c->soft, c->n_soft, &go, &st, err);
    free(ids);
    if (rc != G4C_OK) return rc;
    if (st.stop == G4C_STOP_CANCEL) return G4C_FAIL(err, G4C_E_IO, "interrupted (--resume continues)");
    if (c->oom) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    ans->text = strdup(c->text ? c->text : "");
    ans->n_prompt = n;
    ans->n_gen = st.n_gen;
    ans->ms = st.t_total_ms;
    return ans->text ? G4C_OK : G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
}

static int model_open(model_ctx *c, const char *dir, const char *mmproj, int n_threads, int n_ctx, int budget) {
    g4c_err err = {0};
    g4c_model_params mp = g4c_model_default_params();
    mp.n_threads = n_threads;
    mp.mmproj_path = mmproj;
    if (g4c_model_load(&c->m, dir, &mp, &err) != G4C_OK) { cli_die_err("cannot load the model", &err); return 1; }
    if (!g4c_model_has_vision(c->m)) {
        fprintf(stderr, "gemma4c eval: %s has no usable vision tower: %s\n", dir, c->m->vision_err);
        return 1;
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    const size_t dl = strlen(dir);
    const int is_gguf = dl > 5 && !strcmp(dir + dl - 5, ".gguf"); /* the vocabulary is in its metadata */
    if ((is_gguf ? g4c_tok_load_gguf(&c->tok, dir, &err) : g4c_tok_load(&c->tok, p, &err)) != G4C_OK) {
        cli_die_err("cannot load the tokenizer", &err);
        return 1;
    }
    g4c_err serr = {0};
    if (g4c_tok_apply_gemma4_specials(c->tok, &serr) != G4C_OK)
        g4c_log(G4C_LOG_WARN, "tokenizer is not Gemma's 262144-piece vocabulary: %s", serr.msg);
    char *tt = cli_template_text(dir);
    c->style = g4c_chat_style_for(&c->m->cfg, tt);
    free(tt);
    c->style.thinking = 0;
    c->budget = budget ? budget : cli_default_budget(dir);
    g4c_session_params sp = g4c_session_default_params();
    sp.n_ctx = n_ctx ? n_ctx : 4096;
    if (sp.n_ctx > g4c_model_n_ctx_train(c->m)) sp.n_ctx = g4c_model_n_ctx_train(c->m);
    if (g4c_session_init(&c->s, c->m, &sp, &err) != G4C_OK) { cli_die_err("cannot create a session", &err); return 1; }
    g4c_sampler_params spp = g4c_sampler_default_params();
    spp.temperature = 0; /* greedy, as the notebook */
    if (g4c_sampler_init(&c->smp, &spp, g4c_model_n_vocab(c->m), &err) != G4C_OK) { cli_die_err("sampler", &err); return 1; }
    return 0;
}

static void model_close(model_ctx *c) {
    g4c_sampler_free(c->smp);
    g4c_session_free(c->s);
    g4c_tok_free(c->tok);
    g4c_model_free(c->m);
    free(c->img_path);
    free(c->soft);
    free(c->text);
}

/* ---- flags ---- */

typedef struct {
    eval_task task;
    const char *model, *mmproj, *endpoint, *api_key, *model_name, *data, *questions, *annotations, *images, *predictions, *out;
    int n, image_budget, resume, n_threads, n_ctx, timeout_s, retries, progress, max_tokens;
    unsigned long long seed;
} eval_opts;

static int int_arg(const char *flag, const char *v, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) {
        fprintf(stderr, "gemma4c: %s needs an integer in [%ld, %ld], got '%s'\n", flag, lo, hi, v);
        return 1;
    }
    *out = (int)x;
    return 0;
}

static int parse(eval_opts *o, int argc, char **argv, const char *cmd, const char *help) {
    memset(o, 0, sizeof *o);
    o->seed = 42;
    o->timeout_s = 600;
    o->retries = 2;
    o->progress = -1;
    if (argc < 3 || (strcmp(argv[2], "vqa") && strcmp(argv[2], "coco"))) {
        if (argc >= 3 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))) { fputs(help, stdout); return -1; }
        fprintf(stderr, "gemma4c %s: the first argument must be vqa or coco\n%s", cmd, help);
        return 2;
    }
    o->task = !strcmp(argv[2], "vqa") ? EVAL_VQA : EVAL_COCO;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        static const char *const valued[] = {"-m", "--model", "--mmproj", "-mm", "--endpoint", "--api-key", "--model-name", "--data",
                                             "--questions", "--annotations", "--images", "--predictions", "--out",
                                             "-o", "--n", "-n", "--seed", "--image-budget", "-t", "--threads", "-c",
                                             "--ctx-size", "--timeout", "--retries", "--max-tokens"};
        int takes = 0;
        for (size_t k = 0; k < sizeof valued / sizeof *valued; k++) takes |= !strcmp(a, valued[k]);
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(help, stdout); return -1; }
        if (takes && !v) { fprintf(stderr, "gemma4c %s: %s needs a value\n", cmd, a); return 2; }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--mmproj") || !strcmp(a, "-mm")) o->mmproj = v;
        else if (!strcmp(a, "--endpoint")) o->endpoint = v;
        else if (!strcmp(a, "--api-key")) o->api_key = v;
        else if (!strcmp(a, "--model-name")) o->model_name = v;
        else if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--questions")) o->questions = v;
        else if (!strcmp(a, "--annotations")) o->annotations = v;
        else if (!strcmp(a, "--images")) o->images = v;
        else if (!strcmp(a, "--predictions")) o->predictions = v;
        else if (!strcmp(a, "--out") || !strcmp(a, "-o")) o->out = v;
        else if (!strcmp(a, "--n") || !strcmp(a, "-n")) { if (int_arg(a, v, 1, INT_MAX, &o->n)) return 2; }
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            o->seed = strtoull(v, &end, 10);
            if (!*v || *end || errno || *v == '-') { fprintf(stderr, "gemma4c %s: --seed needs a non-negative integer\n", cmd); return 2; }
        } else if (!strcmp(a, "--image-budget")) {
            if (int_arg(a, v, 70, 1120, &o->image_budget)) return 2;
            const int b = o->image_budget;
            if (b != 70 && b != 140 && b != 280 && b != 560 && b != 1120) {
                fprintf(stderr, "gemma4c %s: --image-budget must be 70, 140, 280, 560 or 1120\n", cmd);
                return 2;
            }
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { if (int_arg(a, v, 0, 1024, &o->n_threads)) return 2; }
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) { if (int_arg(a, v, 0, 1 << 30, &o->n_ctx)) return 2; }
        else if (!strcmp(a, "--timeout")) { if (int_arg(a, v, 1, 86400, &o->timeout_s)) return 2; }
        else if (!strcmp(a, "--retries")) { if (int_arg(a, v, 0, 100, &o->retries)) return 2; }
        else if (!strcmp(a, "--max-tokens")) { if (int_arg(a, v, 1, 1 << 20, &o->max_tokens)) return 2; }
        else if (!strcmp(a, "--resume")) o->resume = 1;
        else if (!strcmp(a, "--progress")) o->progress = 1;
        else if (!strcmp(a, "--no-progress")) o->progress = 0;
        else { fprintf(stderr, "gemma4c %s: unknown option '%s' (see gemma4c %s --help)\n", cmd, a, cmd); return 2; }
        i += takes;
    }
    if (!o->out) { fprintf(stderr, "gemma4c %s: --out RUN_DIR is required\n", cmd); return 2; }
    return 0;
}

/* --questions/--annotations (official files), --data (manifest or folder), or the built-in sample set */
static int load_data(const eval_opts *o, eval_set *set, const char *cmd) {
    g4c_err err = {0};
    g4c_status st;
    const char *task = o->task == EVAL_VQA ? "vqa" : "coco";
    if (o->questions || (o->annotations && o->task == EVAL_VQA)) {
        if (o->task != EVAL_VQA || !o->questions || !o->annotations) {
            fprintf(stderr, "gemma4c %s: VQAv2 needs both --questions and --annotations%s\n", cmd,
                    o->task == EVAL_COCO ? " (and is not COCO: use --annotations instances.json)" : "");
            return 2;
        }
        st = eval_load_vqa(set, o->questions, o->annotations, o->images, &err);
    } else if (o->annotations) {
        st = eval_load_coco(set, o->annotations, o->images, &err);
    } else {
        const char *d = o->data ? o->data : eval_samples_dir();
        struct stat sb;
        char path[4096];
        if (stat(d, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(path, sizeof path, "%s/%s.jsonl", d, task);
        else snprintf(path, sizeof path, "%s", d);
        st = eval_load_manifest(set, o->task, path, &err);
    }
    if (st != G4C_OK) { cli_die_err("cannot load the data", &err); return 1; }
    return 0;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void print_metrics(eval_task task, const char *out) {
    char p[4096];
    snprintf(p, sizeof p, "%s/metrics.json", out);
    cJSON *m = NULL;
    if (eval_json_read(&m, p, NULL) != G4C_OK) return;
#define N(k) num(m, k)
    if (task == EVAL_VQA)
        printf("VQA: %d questions  strict accuracy %.4f  VQA accuracy %.4f\n", (int)N("n"), N("strict_accuracy"),
               N("vqa_accuracy"));
    else
        printf("COCO: %d images  coarse P/R/F1 %.4f/%.4f/%.4f  strict P/R/F1 %.4f/%.4f/%.4f  mean TP IoU %.4f  "
               "AR %.4f\n", (int)N("n_images"), N("precision"), N("recall"), N("f1"), N("strict_precision"),
               N("strict_recall"), N("strict_f1"), N("mean_tp_iou"), N("ar"));
#undef N
    printf("reports: %s/metrics.json, %s/summary.md, %s/samples.jsonl\n", out, out, out);
    cJSON_Delete(m);
}

static const char *const eval_help =
    "usage: gemma4c eval vqa|coco (-m MODEL | --endpoint URL) --out RUN [data] [options]\n"
    "Runs the notebook's benchmark and scores it (docs/EVAL.md). Every finished sample is appended to\n"
    "RUN/results.jsonl and synced to disk; --resume continues an interrupted run. Reports: RUN/metrics.json,\n"
    "RUN/summary.md, RUN/samples.jsonl.\n"
    "  -m, --model DIR|GGUF   a checkpoint run in this process (greedy)\n"
    "  --mmproj FILE          with a GGUF model: its vision projector (default: the *mmproj*.gguf beside it)\n"
    "  --endpoint URL         an OpenAI-compatible server (http://HOST:PORT[/v1]): llama-server, Ollama, vLLM,\n"
    "                         gemma4c serve; --api-key K, --model-name N (default: the first of /v1/models),\n"
    "                         --timeout S per request (600), --retries N on connection errors and 5xx (2)\n"
    "data (default: the built-in sample set, data/samples):\n"
    "  --data FILE|DIR        a JSONL manifest, or a folder holding vqa.jsonl / coco.jsonl\n"
    "  --questions Q.json --annotations A.json --images DIR    VQAv2's official files\n"
    "  --annotations instances.json --images DIR               COCO (images with >= 2 objects of >= 32x32 px)\n"
    "options:\n"
    "  --n N                  evaluate N samples drawn with --seed S (default 42); default: all\n"
    "  --image-budget N       soft tokens per image: 70, 140, 280, 560, 1120 (default: the checkpoint's)\n"
    "  --resume               continue RUN: skip the samples already in results.jsonl\n"
    "  --max-tokens N         cap the answer (default: the notebook's 20 for VQA, 1024 for COCO)\n"
    "  -t, --threads N        CPU threads    -c, --ctx-size N   context (default 4096)\n"
    "  --progress, --no-progress   the progress bar (default: when stderr is a terminal)\n";

int cmd_eval(int argc, char **argv) {
    eval_opts o;
    int rc = parse(&o, argc, argv, "eval", eval_help);
    if (rc) return rc < 0 ? 0 : rc;
    if (!!o.model == !!o.endpoint) {
        fprintf(stderr, "gemma4c eval: give exactly one of -m MODEL and --endpoint URL\n");
        return 2;
    }
    if (o.predictions) { fprintf(stderr, "gemma4c eval: --predictions belongs to gemma4c score\n"); return 2; }
    eval_set set = {0};
    if ((rc = load_data(&o, &set, "eval"))) return rc;
    g4c_err err = {0};
    if (o.task == EVAL_COCO) eval_set_keep_eligible(&set);
    if (eval_set_sample(&set, o.n, o.seed, &err) != G4C_OK) { cli_die_err("sampling", &err); eval_set_free(&set); return 1; }
    if (!set.n) {
        fprintf(stderr, "gemma4c eval: no samples%s\n", o.task == EVAL_COCO ? " (no image has 2 or more objects of a "
                                                                           "known class and >= 32x32 px)" : "");
        eval_set_free(&set);
        return 1;
    }
    model_ctx mc = {0};
    eval_endpoint ep = {o.endpoint, o.api_key, o.model_name, o.timeout_s, o.retries};
    char backend[4200];
    if (o.model) {
        if ((rc = model_open(&mc, o.model, o.mmproj, o.n_threads, o.n_ctx, o.image_budget))) { model_close(&mc); eval_set_free(&set); return rc; }
        char cwd[2048] = "";
        if (o.model[0] != '/' && !getcwd(cwd, sizeof cwd)) cwd[0] = 0;
        snprintf(backend, sizeof backend, "model %s%s%s budget %d", cwd, cwd[0] ? "/" : "", o.model, mc.budget);
    } else
        snprintf(backend, sizeof backend, "endpoint %s model %s", o.endpoint, o.model_name ? o.model_name : "(default)");
    if (o.max_tokens) {
        const size_t l = strlen(backend);
        snprintf(backend + l, sizeof backend - l, " max_tokens %d", o.max_tokens);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    eval_run_opts ro = {.out_dir = o.out, .resume = o.resume, .backend = o.model ? model_answer : eval_endpoint_answer,
                        .ctx = o.model ? (void *)&mc : (void *)&ep, .backend_name = backend, .progress = o.progress,
                        .cancel = &g_cancel, .max_tokens = o.max_tokens};
    g4c_status st = eval_run(&set, &ro, &err);
    if (st != G4C_OK) cli_die_err("eval", &err);
    else print_metrics(o.task, o.out);
    if (o.model) model_close(&mc);
    eval_set_free(&set);
    return st == G4C_OK ? 0 : 1;
}

static const char *const score_help =
    "usage: gemma4c score vqa|coco --predictions P.jsonl --out RUN [data]\n"
    "Scores saved model outputs without running a model (docs/EVAL.md). P.jsonl holds one line per sample:\n"
    "{\"question_id\": ..., \"response\": \"<raw model text>\"} (VQA) or {\"image_id\": ..., \"response\": ...} (COCO);\n"
    "an eval run's results.jsonl works as is, and VQA also takes the challenge's JSON array of {question_id, answer}.\n"
    "data (default: the built-in sample set):\n"
    "  score vqa --questions Q.json --annotations A.json     VQAv2's official files\n"
    "  score coco --annotations instances.json               COCO (sizes from images[], areas from bbox w x h)\n"
    "  --data FILE|DIR                                      a JSONL manifest, or a folder with vqa.jsonl / coco.jsonl\n"
    "Only the listed samples are scored. Writes RUN/metrics.json, RUN/summary.md, RUN/samples.jsonl.\n";

int cmd_score(int argc, char **argv) {
    eval_opts o;
    int rc = parse(&o, argc, argv, "score", score_help);
    if (rc) return rc < 0 ? 0 : rc;
    if (!o.predictions) { fprintf(stderr, "gemma4c score: --predictions FILE is required\n"); return 2; }
    if (o.model || o.endpoint || o.resume || o.n || o.max_tokens) {
        fprintf(stderr, "gemma4c score: -m, --endpoint, --resume, --n and --max-tokens belong to gemma4c eval\n");
        return 2;
    }
    eval_set set = {0};
    if ((rc = load_data(&o, &set, "score"))) return rc;
    g4c_err err = {0};
    g4c_status st = eval_score_file(&set, o.predictions, o.out, &err);
    if (st != G4C_OK) cli_die_err("score", &err);
    else print_metrics(o.task, o.out);
    eval_set_free(&set);
    return st == G4C_OK ? 0 : 1;
}
