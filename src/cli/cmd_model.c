/* Subcommands that load a checkpoint: info, logits (fidelity oracle hook), generate (token ids in, ids out). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h" // g4c_npy_write_f32, g4c_time_ms
#include "cli/cli.h"
#include "image/image.h"
#include "runtime/runtime.h" // g4c_session_eval_greedy, g4c_sampler_is_greedy

static g4c_model *load_model(const cli_opts *o, const char *cmd) {
    if (!o->model) {
        fprintf(stderr, "gemma4c %s: --model MODEL is required\n", cmd);
        return NULL;
    }
    g4c_err err = {0};
    g4c_model_params mp = g4c_model_default_params();
    mp.n_threads = o->n_threads;
    mp.mmproj_path = o->mmproj;
    g4c_model *m = NULL;
    if (g4c_model_load(&m, o->model, &mp, &err) != G4C_OK) {
        cli_die_err("cannot load model", &err);
        return NULL;
    }
    return m;
}

static g4c_session *new_session(g4c_model *m, const cli_opts *o, int need) {
    g4c_err err = {0};
    g4c_session_params sp = g4c_session_default_params();
    sp.n_ctx = o->n_ctx ? o->n_ctx : (need > 4096 ? need : 4096);
    if (sp.n_ctx > g4c_model_n_ctx_train(m)) sp.n_ctx = g4c_model_n_ctx_train(m);
    if (o->n_ubatch) sp.n_ubatch = o->n_ubatch;
    g4c_session *s = NULL;
    if (g4c_session_init(&s, m, &sp, &err) != G4C_OK) cli_die_err("cannot create session", &err);
    return s;
}

static const char *const logits_help =
    "usage: gemma4c logits --model MODEL --tokens 2,5,9 --out L.npy [--image F]... [--image-budget N] [-t N] [-ub N]\n"
    "Runs the decoder over the tokens (one prefill) and writes float32 logits [n_tokens, vocab] as .npy v1.0.\n"
    "With images, the token list must already hold each image's expanded placeholders, in order\n"
    "(<|image> + N x <|image|> + <image|>; see gemma4c preprocess for N).\n";

/* Encode every --image into soft tokens [n][n_embd]; returns the soft-token count or -1. */
static int encode_images(g4c_model *m, const cli_opts *o, float **soft) {
    *soft = NULL;
    int total = 0;
    const int H = g4c_model_n_embd(m);
    for (int i = 0; i < o->n_images; i++) {
        g4c_err err = {0};
        g4c_image img = {0};
        g4c_image_patches ip = {0};
        if (g4c_image_load(&img, o->images[i], 0, &err) != G4C_OK ||
            g4c_image_preprocess(&img, o->image_budget, &ip, &err) != G4C_OK) {
            cli_die_err(o->images[i], &err);
            g4c_image_free(&img);
            return -1;
        }
        g4c_image_free(&img);
        float *g = realloc(*soft, sizeof(float) * (size_t)(total + ip.n_soft_tokens) * (size_t)H);
        if (!g) { g4c_image_patches_free(&ip); return -1; }
        *soft = g;
        if (g4c_model_encode_image(m, ip.patches, ip.positions, ip.n_patches, *soft + (size_t)total * H, &err) != G4C_OK) {
            cli_die_err(o->images[i], &err);
            g4c_image_patches_free(&ip);
            return -1;
        }
        total += ip.n_soft_tokens;
        g4c_image_patches_free(&ip);
    }
    return total;
}

static const char *const features_help =
    "usage: gemma4c image-features --model MODEL --image F [--image-budget N] --out S.npy\n"
    "Writes the projected soft tokens of one image, float32 [N, hidden] (what replaces its placeholders).\n";

int cmd_image_features(int argc, char **argv) {
    if (argc > 2 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))) { fputs(features_help, stdout); return 0; }
    cli_opts o;
    if (cli_parse(&o, argc, argv, 2, "image-features")) return 2;
    if (!o.out || o.n_images != 1) { fprintf(stderr, "gemma4c image-features: one --image and --out are required\n%s", features_help); return 2; }
    g4c_model *m = load_model(&o, "image-features");
    if (!m) return 1;
    float *soft = NULL;
    int n = encode_images(m, &o, &soft), rc = 1;
    if (n > 0) {
        int64_t shape[2] = {n, g4c_model_n_embd(m)};
        g4c_err err = {0};
        if (g4c_npy_write_f32(o.out, soft, 2, shape, &err) != G4C_OK) cli_die_err("write", &err);
        else rc = 0;
    }
    free(soft);
    g4c_model_free(m);
    return rc;
}

int cmd_logits(int argc, char **argv) {
    if (argc > 2 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))) { fputs(logits_help, stdout); return 0; }
    cli_opts o;
    if (cli_parse(&o, argc, argv, 2, "logits")) return 2;
    if (!o.out) { fprintf(stderr, "gemma4c logits: --out FILE is required\n%s", logits_help); return 2; }
    int32_t *ids;
    int n = cli_parse_tokens(o.tokens, &ids);
    if (n < 0) return 2;
    int rc = 1;
    g4c_model *m = load_model(&o, "logits");
    g4c_session *s = m ? new_session(m, &o, n) : NULL;
    float *logits = NULL, *soft = NULL;
    int n_soft = s ? encode_images(m, &o, &soft) : -1;
    if (s && n_soft >= 0) {
        const size_t V = (size_t)g4c_model_n_vocab(m);
        logits = malloc(sizeof(float) * V * (size_t)n);
        g4c_err err = {0};
        if (!logits) {
            fprintf(stderr, "gemma4c logits: out of memory\n");
        } else if (g4c_session_eval_mm(s, ids, n, soft, n_soft, logits, G4C_LOGITS_ALL, &err) != G4C_OK) {
            cli_die_err("eval", &err);
        } else {
            int64_t shape[2] = {n, (int64_t)V};
            if (g4c_npy_write_f32(o.out, logits, 2, shape, &err) != G4C_OK) cli_die_err("write", &err);
            else rc = 0;
        }
    }
    free(logits);
    free(soft);
    free(ids);
    g4c_session_free(s);
    g4c_model_free(m);
    return rc;
}

static const char *const generate_help =
    "usage: gemma4c generate --model MODEL --tokens 2,5,9 [-n 16] [--temp 0] [--top-k 64] [--top-p 0.95]\n"
    "                        [--seed 42] [--print-ids] [--ignore-eos] [-c CTX] [-t N]\n"
    "Prefills the prompt once, then decodes one token at a time with the KV cache. --temp 0 is greedy.\n"
    "--print-ids prints the generated ids comma-separated on one line; timings go to stderr.\n";

int cmd_generate(int argc, char **argv) {
    if (argc > 2 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))) { fputs(generate_help, stdout); return 0; }
    cli_opts o;
    if (cli_parse(&o, argc, argv, 2, "generate")) return 2;
    int32_t *ids;
    int n = cli_parse_tokens(o.tokens, &ids);
    if (n < 0) return 2;
    int rc = 1;
    g4c_model *m = load_model(&o, "generate");
    g4c_session *s = m ? new_session(m, &o, n + o.n_predict) : NULL;
    g4c_sampler *smp = NULL;
    float *logits = NULL;
    int32_t *out = malloc(sizeof(int32_t) * ((size_t)o.n_predict + 1));
    g4c_err err = {0};
    if (!s || !out) goto done;
    logits = malloc(sizeof(float) * (size_t)g4c_model_n_vocab(m));
    g4c_sampler_params spp = g4c_sampler_default_params();
    spp.temperature = o.temp;
    spp.top_k = o.top_k;
    spp.top_p = o.top_p;
    spp.seed = o.seed;
    if (!logits || g4c_sampler_init(&smp, &spp, g4c_model_n_vocab(m), &err) != G4C_OK) {
        cli_die_err("sampler", &err);
        goto done;
    }
    double t0 = g4c_time_ms();
    if (g4c_session_eval(s, ids, n, logits, G4C_LOGITS_LAST, &err) != G4C_OK) { cli_die_err("prefill", &err); goto done; }
    double t1 = g4c_time_ms();
    int n_out = 0;
    const int greedy = g4c_sampler_is_greedy(smp); /* argmax with each step (on a GPU only the id comes down) */
    int32_t next = -1;
    while (n_out < o.n_predict) {
        int32_t tok = next >= 0 ? next : g4c_sampler_sample(smp, logits);
        out[n_out++] = tok;
        if (!o.ignore_eos && g4c_model_is_eog(m, tok)) break;
        if (n_out == o.n_predict) break;
        const g4c_status st = greedy ? g4c_session_eval_greedy(s, tok, &next, logits, &err)
                                     : g4c_session_eval(s, &tok, 1, logits, G4C_LOGITS_LAST, &err);
        if (st != G4C_OK) { cli_die_err("decode", &err); goto done; }
    }
    double t2 = g4c_time_ms();
    for (int i = 0; i < n_out; i++) printf("%s%d", i ? "," : "", out[i]);
    printf("\n");
    fprintf(stderr, "prompt %d tokens in %.1f ms (%.1f tok/s); generated %d tokens in %.1f ms (%.1f tok/s)\n", n,
            t1 - t0, n / ((t1 - t0) / 1e3 + 1e-12), n_out, t2 - t1, n_out > 1 ? (n_out - 1) / ((t2 - t1) / 1e3 + 1e-12) : 0.0);
    rc = 0;
done:
    g4c_sampler_free(smp);
    free(logits);
    free(out);
    free(ids);
    g4c_session_free(s);
    g4c_model_free(m);
    return rc;
}

int cmd_info(int argc, char **argv) {
    if (argc > 2 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))) {
        puts("usage: gemma4c info --model MODEL\nPrints the parsed configuration, per-layer shapes and tensor totals, the KV\n"
             "cache of a default session (n_ctx 4096), which matrices the first CPU session repacks (and how many MiB)\n"
             "and the weight bytes one decoded token reads (decode speed <= memory bandwidth / that).");
        return 0;
    }
    cli_opts o;
    if (cli_parse(&o, argc, argv, 2, "info")) return 2;
    g4c_model *m = load_model(&o, "info");
    if (!m) return 1;
    size_t n = g4c_model_describe(m, NULL, 0);
    char *buf = malloc(n + 1);
    if (buf) {
        g4c_model_describe(m, buf, n + 1);
        fputs(buf, stdout);
    }
    free(buf);
    g4c_model_free(m);
    return buf ? 0 : 1;
}
