/* gemma4c segment: the notebook's prompted polygon (issue 7, docs/REPORT.md). Asks the model for
 * {"polygon": [[x, y], ...], "label": "..."} in [0, 1000] about one image, parses the answer robustly
 * (report/segment.c) and draws a translucent filled polygon with its outline and label over the photo. An answer
 * without a usable polygon is not an error: the overlay shows why, in a red banner, and the exit status is 0.
 * --response / --response-file draw a given answer without a model (docs, tests, answers from other engines). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "image/image.h"
#include "report/report.h"
#include "runtime/runtime.h"

typedef struct {
    char *text;
    size_t n;
} answer_buf;

static void on_text(void *user, const char *t, size_t len, int thinking) {
    answer_buf *a = user;
    if (thinking) return;
    char *g = realloc(a->text, a->n + len + 1);
    if (!g) return;
    memcpy(g + a->n, t, len);
    a->n += len;
    g[a->n] = 0;
    a->text = g;
}

/* Load the model and answer prompt about image (greedy unless --temp). */
static int ask(const cli_opts *o, const char *prompt, const char *image, int max_tokens, answer_buf *out) {
    g4c_err err = {0};
    g4c_model *m = NULL;
    g4c_tokenizer *tok = NULL;
    g4c_session *s = NULL;
    g4c_sampler *smp = NULL;
    g4c_image_patches ip = {0};
    float *soft = NULL;
    int32_t *ids = NULL;
    int rc = 1, n = 0;
    g4c_model_params mp = g4c_model_default_params();
    mp.n_threads = o->n_threads;
    mp.mmproj_path = o->mmproj;
    struct stat sb;
    const int is_file = stat(o->model, &sb) == 0 && S_ISREG(sb.st_mode);
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", o->model);
    if (g4c_model_load(&m, o->model, &mp, &err) != G4C_OK) { cli_die_err("cannot load the model", &err); goto done; }
    if (!g4c_model_has_vision(m)) {
        fprintf(stderr, "gemma4c segment: %s has no usable vision tower: %s\n", o->model, m->vision_err);
        goto done;
    }
    if ((is_file ? g4c_tok_load_gguf(&tok, o->model, &err) : g4c_tok_load(&tok, path, &err)) != G4C_OK) {
        cli_die_err("cannot load the tokenizer", &err);
        goto done;
    }
    g4c_tok_apply_gemma4_specials(tok, NULL);
    char *tt = is_file ? NULL : cli_template_text(o->model);
    g4c_chat_style style = g4c_chat_style_for(&m->cfg, tt);
    free(tt);
    style.thinking = 0;
    const int budget = o->image_budget ? o->image_budget : is_file ? G4C_IMAGE_DEFAULT_BUDGET : cli_default_budget(o->model);
    if (g4c_image_preprocess_file(image, budget, &ip, &err) != G4C_OK) { cli_die_err(image, &err); goto done; }
    soft = malloc(sizeof(float) * (size_t)ip.n_soft_tokens * (size_t)g4c_model_n_embd(m));
    if (!soft || g4c_model_encode_image(m, ip.patches, ip.positions, ip.n_patches, soft, &err) != G4C_OK) {
        cli_die_err(image, &err);
        goto done;
    }
    g4c_chat_item items[2] = {{.is_image = 1}, {.text = prompt}};
    g4c_chat_msg msg = {G4C_ROLE_USER, items, 2};
    if (g4c_prompt_build(m, tok, &style, &msg, 1, 1, &ip.n_soft_tokens, 1, &ids, &n, &err) != G4C_OK) {
        cli_die_err("prompt", &err);
        goto done;
    }
    g4c_session_params sp = g4c_session_default_params();
    sp.n_ctx = o->n_ctx ? o->n_ctx : 4096;
    if (sp.n_ctx > g4c_model_n_ctx_train(m)) sp.n_ctx = g4c_model_n_ctx_train(m);
    if (sp.n_ctx < n + 1) {
        fprintf(stderr, "gemma4c segment: the prompt is %d tokens, the context holds %d (raise -c)\n", n, sp.n_ctx);
        goto done;
    }
    if (g4c_session_init(&s, m, &sp, &err) != G4C_OK) { cli_die_err("cannot create a session", &err); goto done; }
    g4c_sampler_params spp = g4c_sampler_default_params();
    spp.temperature = o->set_temp ? o->temp : 0;
    spp.seed = o->seed;
    if (g4c_sampler_init(&smp, &spp, g4c_model_n_vocab(m), &err) != G4C_OK) { cli_die_err("sampler", &err); goto done; }
    g4c_gen_opts go = {.max_tokens = max_tokens < sp.n_ctx - n ? max_tokens : sp.n_ctx - n, .on_text = on_text,
                       .user = out};
    g4c_gen_stats st;
    if (g4c_generate(s, tok, smp, ids, n, soft, ip.n_soft_tokens, &go, &st, &err) != G4C_OK) {
        cli_die_err("generation failed", &err);
        goto done;
    }
    rc = 0;
done:
    free(ids);
    free(soft);
    g4c_image_patches_free(&ip);
    g4c_sampler_free(smp);
    g4c_session_free(s);
    g4c_tok_free(tok);
    g4c_model_free(m);
    return rc;
}

static const char *const segment_help =
    "usage: gemma4c segment -m MODEL --image F [--object TEXT | -p PROMPT] [--out overlay.png] [options]\n"
    "Asks for {\"polygon\": [[x, y], ...], \"label\": \"...\"} in [0, 1000] and draws it over the image: a translucent\n"
    "filled polygon, its outline and its label. An answer without a polygon is drawn as a message on the image.\n"
    "  -m, --model DIR|GGUF     the checkpoint (needs a vision tower)\n"
    "      --mmproj FILE        a GGUF model's vision projector (default: the *mmproj*.gguf beside the model)\n"
    "      --image F            the image (JPEG or PNG)\n"
    "      --object TEXT        what to outline (default \"the main object\"), put into the built-in prompt\n"
    "  -p, --prompt TEXT        the whole prompt instead of the built-in one\n"
    "  -o, --out F              the overlay PNG (default overlay.png)\n"
    "      --response TEXT      draw this answer instead of running a model (no -m needed)\n"
    "      --response-file F    the same, from a file\n"
    "      --max-width N        scale the overlay down to at most N pixels wide\n"
    "  -n, --max-tokens N       (default 1024)   --image-budget N   --temp T (default greedy)   -t, -c\n"
    "      --json               print {\"ok\", \"polygons\": [{\"label\", \"points\"}] (pixels), \"why\", \"response\"}\n";

int cmd_segment(int argc, char **argv) {
    const char *object = NULL, *response = NULL, *response_file = NULL;
    int max_w = 0, capped = 0;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) return 1;
    int nr = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (i >= 2 && (!strcmp(a, "-h") || !strcmp(a, "--help"))) { fputs(segment_help, stdout); free(rest); return 0; }
        capped |= i >= 2 && (!strcmp(a, "-n") || !strcmp(a, "--max-tokens"));
        const int valued = i >= 2 && (!strcmp(a, "--object") || !strcmp(a, "--response") ||
                                      !strcmp(a, "--response-file") || !strcmp(a, "--max-width"));
        if (valued && i + 1 >= argc) { fprintf(stderr, "gemma4c segment: %s needs a value\n", a); free(rest); return 2; }
        if (!valued) { rest[nr++] = argv[i]; continue; }
        const char *v = argv[++i];
        if (!strcmp(a, "--object")) object = v;
        else if (!strcmp(a, "--response")) response = v;
        else if (!strcmp(a, "--response-file")) response_file = v;
        else {
            char *end;
            long x = strtol(v, &end, 10);
            if (!*v || *end || x < 16 || x > 16384) {
                fprintf(stderr, "gemma4c segment: --max-width needs an integer in [16, 16384]\n");
                free(rest);
                return 2;
            }
            max_w = (int)x;
        }
    }
    cli_opts o;
    int rc = cli_parse(&o, nr, rest, 2, "segment");
    free(rest);
    if (rc) return 2;
    if (!capped) o.n_predict = 1024;
    if (o.n_images != 1) { fprintf(stderr, "gemma4c segment: give one --image F\n%s", segment_help); return 2; }
    if (!o.model && !response && !response_file) {
        fprintf(stderr, "gemma4c segment: -m MODEL (or --response TEXT) is required\n");
        return 2;
    }
    const char *out = o.out ? o.out : "overlay.png";
    g4c_err err = {0};
    g4c_image img = {0};
    if (g4c_image_load(&img, o.images[0], 0, &err) != G4C_OK) { cli_die_err("cannot read the image", &err); return 1; }
    answer_buf ans = {0};
    char *prompt = o.prompt ? strdup(o.prompt) : rp_segment_prompt(object);
    if (response) ans.text = strdup(response);
    else if (response_file) {
        if (g4c_read_file(response_file, (size_t)16 << 20, &ans.text, &ans.n, &err) != G4C_OK) {
            cli_die_err("--response-file", &err);
            rc = 1;
        }
    } else if (prompt) {
        rc = ask(&o, prompt, o.images[0], o.n_predict, &ans);
    }
    if (!rc && !ans.text) ans.text = strdup("");
    rp_polygon *poly = NULL;
    int np = 0;
    char why[256] = "", msg[1024] = "";
    if (!rc) {
        np = rp_parse_polygons(ans.text, img.width, img.height, &poly, why, sizeof why);
        if (np < 0) { fprintf(stderr, "gemma4c segment: out of memory\n"); rc = 1; }
    }
    if (!rc && np == 0) {
        char shown[200];
        snprintf(shown, sizeof shown, "%s", ans.text);
        for (char *q = shown; *q; q++)
            if (*q == '\n' || *q == '\r' || *q == '\t') *q = ' ';
        snprintf(msg, sizeof msg, "No polygon in the answer: %s. The answer was: \"%s%s\"", why, shown,
                 strlen(ans.text) >= sizeof shown ? "..." : "");
    }
    if (!rc) {
        rp_canvas c = {0};
        if (rp_overlay_polygons(&c, &img, poly, np, np ? NULL : msg, max_w, 0, NULL, &err) != G4C_OK ||
            rp_canvas_write_png(&c, out, &err) != G4C_OK) {
            cli_die_err("overlay", &err);
            rc = 1;
        }
        if (c.surf) rp_canvas_free(&c);
    }
    if (!rc && o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddBoolToObject(j, "ok", np > 0);
        cJSON *pa = cJSON_AddArrayToObject(j, "polygons");
        for (int k = 0; k < np; k++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "label", poly[k].label ? poly[k].label : "");
            cJSON *pts = cJSON_AddArrayToObject(e, "points");
            for (int i = 0; i < poly[k].n; i++) {
                cJSON *pt = cJSON_CreateArray();
                cJSON_AddItemToArray(pt, cJSON_CreateNumber((double)(long)(poly[k].xy[2 * i] * 10 + 0.5) / 10));
                cJSON_AddItemToArray(pt, cJSON_CreateNumber((double)(long)(poly[k].xy[2 * i + 1] * 10 + 0.5) / 10));
                cJSON_AddItemToArray(pts, pt);
            }
            cJSON_AddItemToArray(pa, e);
        }
        if (!np) cJSON_AddStringToObject(j, "why", why);
        cJSON_AddStringToObject(j, "response", ans.text);
        cJSON_AddStringToObject(j, "overlay", out);
        char *s = cJSON_PrintUnformatted(j);
        if (s) puts(s);
        free(s);
        cJSON_Delete(j);
    } else if (!rc) {
        if (!response && !response_file) printf("%s\n", ans.text);
        for (int k = 0; k < np; k++)
            printf("polygon %d: %d points, label \"%s\"\n", k + 1, poly[k].n, poly[k].label ? poly[k].label : "");
        if (!np) fprintf(stderr, "gemma4c segment: no polygon in the answer (%s); the overlay says so\n", why);
        printf("wrote %s\n", out);
    }
    rp_polygons_free(poly, np);
    free(prompt);
    free(ans.text);
    g4c_image_free(&img);
    rp_shutdown();
    return rc;
}
