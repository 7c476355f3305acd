/* gemma4c run and gemma4c chat: talk to a model about text and images (issue 4).
 * A conversation = model + tokenizer + chat style + session + sampler. Each turn renders the whole history with
 * the chat template (spec §6), tokenizes it, expands every <|image|> into <|image> + N x <|image|> + <image|>
 * (spec §4.7) and evaluates only what the KV cache does not already hold; the answer streams to stdout. */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli.h"
#include "image/image.h"
#include "runtime/runtime.h"

static volatile int g_cancel; /* set by SIGINT: stops the current answer, not the program */
static void on_sigint(int sig) {
    (void)sig;
    g_cancel = 1;
}

typedef struct {
    g4c_chat_item *items;
    int n_items;
    g4c_role role;
    char *text; /* owned copy of the text item */
} turn;

typedef struct {
    cli_opts o;
    g4c_model *m;
    g4c_tokenizer *tok;
    g4c_session *s;
    g4c_sampler *smp;
    g4c_chat_style style;
    int budget;
    /* history */
    turn *turns;
    int n_turns;
    float *soft;     /* soft tokens of every image in the history, in order */
    int n_soft, cap_soft;
    int *img_tokens; /* soft-token count per image, in order */
    int n_imgs;
    int32_t *cached; /* tokens the session's KV cache holds */
    int n_cached;
    /* output of the current answer */
    char *answer, *thinking;
    size_t n_answer, n_thinking;
    int in_thinking_shown;
} convo;

static int convo_open(convo *c) {
    g4c_err err = {0};
    g4c_model_params mp = g4c_model_default_params();
    mp.n_threads = c->o.n_threads;
    mp.mmproj_path = c->o.mmproj;
    if (!c->o.model) {
        fprintf(stderr, "gemma4c: -m MODEL (a checkpoint directory or a .gguf) is required\n");
        return 2;
    }
    if (isatty(2)) fprintf(stderr, "loading %s ...\r", c->o.model);
    if (g4c_model_load(&c->m, c->o.model, &mp, &err) != G4C_OK) {
        cli_die_err("cannot load model", &err);
        return 1;
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/tokenizer.json", c->o.model);
    const size_t ml = strlen(c->o.model);
    const int is_gguf = ml > 5 && !strcmp(c->o.model + ml - 5, ".gguf"); /* the vocabulary is in its metadata */
    if ((is_gguf ? g4c_tok_load_gguf(&c->tok, c->o.model, &err) : g4c_tok_load(&c->tok, p, &err)) != G4C_OK) {
        cli_die_err("cannot load the tokenizer", &err);
        return 1;
    }
    g4c_err serr = {0};
    if (g4c_tok_apply_gemma4_specials(c->tok, &serr) != G4C_OK)
        g4c_log(G4C_LOG_WARN, "tokenizer is not Gemma's 262144-piece vocabulary: %s", serr.msg);
    char *tt = cli_template_text(c->o.model);
    c->style = g4c_chat_style_for(&c->m->cfg, tt);
    free(tt);
    if (!strcmp(c->o.chat_style, "small")) c->style.empty_thought_channel = 0;
    if (!strcmp(c->o.chat_style, "large")) c->style.empty_thought_channel = 1;
    c->style.thinking = c->o.think;
    c->budget = c->o.image_budget ? c->o.image_budget : cli_default_budget(c->o.model);
    g4c_session_params sp = g4c_session_default_params();
    sp.n_ctx = c->o.n_ctx ? c->o.n_ctx : 8192;
    if (sp.n_ctx > g4c_model_n_ctx_train(c->m)) sp.n_ctx = g4c_model_n_ctx_train(c->m);
    if (c->o.n_ubatch) sp.n_ubatch = c->o.n_ubatch;
    if (sp.n_ubatch < c->budget + 2) sp.n_ubatch = c->budget + 2; /* an image block never splits (spec §3.10) */
    if (g4c_session_init(&c->s, c->m, &sp, &err) != G4C_OK) {
        cli_die_err("cannot create a session", &err);
        return 1;
    }
    g4c_sampler_params spp = g4c_model_sampler_defaults(c->m);
    if (c->o.set_temp) spp.temperature = c->o.temp;
    if (c->o.set_top_k) spp.top_k = c->o.top_k;
    if (c->o.set_top_p) spp.top_p = c->o.top_p;
    spp.seed = c->o.seed;
    spp.min_p = c->o.min_p;
    spp.repeat_penalty = c->o.repeat_penalty;
    spp.presence_penalty = c->o.presence_penalty;
    if (g4c_sampler_init(&c->smp, &spp, g4c_model_n_vocab(c->m), &err) != G4C_OK) {
        cli_die_err("sampler", &err);
        return 2;
    }
    if (isatty(2)) fprintf(stderr, "%*s\r", (int)strlen(c->o.model) + 12, "");
    return 0;
}

static void convo_close(convo *c) {
    for (int i = 0; i < c->n_turns; i++) {
        free(c->turns[i].items);
        free(c->turns[i].text);
    }
    free(c->turns);
    free(c->soft);
    free(c->img_tokens);
    free(c->cached);
    free(c->answer);
    free(c->thinking);
    g4c_sampler_free(c->smp);
    g4c_session_free(c->s);
    g4c_tok_free(c->tok);
    g4c_model_free(c->m);
}

/* Decode, preprocess and encode one image; its soft tokens join the history's. */
static int add_image(convo *c, const char *path) {
    g4c_err err = {0};
    g4c_image img = {0};
    g4c_image_patches ip = {0};
    if (g4c_image_load(&img, path, 0, &err) != G4C_OK || g4c_image_preprocess(&img, c->budget, &ip, &err) != G4C_OK) {
        cli_die_err(path, &err);
        g4c_image_free(&img);
        return 1;
    }
    g4c_image_free(&img);
    const int H = g4c_model_n_embd(c->m);
    if (c->n_soft + ip.n_soft_tokens > c->cap_soft) {
        int cap = (c->n_soft + ip.n_soft_tokens) * 2;
        float *g = realloc(c->soft, sizeof(float) * (size_t)cap * H);
        if (!g) { free(ip.patches); free(ip.positions); return 1; }
        c->soft = g;
        c->cap_soft = cap;
    }
    int rc = g4c_model_encode_image(c->m, ip.patches, ip.positions, ip.n_patches, c->soft + (size_t)c->n_soft * H,
                                    &err);
    free(ip.patches);
    free(ip.positions);
    if (rc != G4C_OK) {
        cli_die_err(path, &err);
        return 1;
    }
    int *g = realloc(c->img_tokens, sizeof(int) * (size_t)(c->n_imgs + 1));
    if (!g) return 1;
    c->img_tokens = g;
    c->img_tokens[c->n_imgs++] = ip.n_soft_tokens;
    c->n_soft += ip.n_soft_tokens;
    return 0;
}

static int add_turn(convo *c, g4c_role role, const char *text, int n_images) {
    turn *g = realloc(c->turns, sizeof(turn) * (size_t)(c->n_turns + 1));
    if (!g) return 1;
    c->turns = g;
    turn *t = &c->turns[c->n_turns++];
    t->role = role;
    t->text = strdup(text ? text : "");
    t->items = calloc((size_t)n_images + 1, sizeof(g4c_chat_item));
    t->n_items = n_images + 1;
    if (!t->text || !t->items) return 1;
    for (int i = 0; i < n_images; i++) t->items[i].is_image = 1;
    t->items[n_images].text = t->text;
    return 0;
}

/* Render + tokenize the history and expand image placeholders. */
static int32_t *build_prompt(convo *c, int *n_out) {
    g4c_chat_msg *msgs = calloc((size_t)c->n_turns + 1, sizeof *msgs);
    if (!msgs) return NULL;
    for (int i = 0; i < c->n_turns; i++) msgs[i] = (g4c_chat_msg){c->turns[i].role, c->turns[i].items, c->turns[i].n_items};
    int32_t *ids = NULL;
    g4c_err err = {0};
    if (g4c_prompt_build(c->m, c->tok, &c->style, msgs, c->n_turns, 1, c->img_tokens, c->n_imgs, &ids, n_out, &err) !=
        G4C_OK)
        cli_die_err("prompt", &err);
    free(msgs);
    return ids;
}

static void append(char **buf, size_t *n, const char *s, size_t len) {
    char *g = realloc(*buf, *n + len + 1);
    if (!g) return;
    memcpy(g + *n, s, len);
    *n += len;
    g[*n] = 0;
    *buf = g;
}

static void on_text(void *user, const char *text, size_t len, int thinking) {
    convo *c = user;
    if (thinking) {
        append(&c->thinking, &c->n_thinking, text, len);
        if (c->o.show_thinking && !c->o.json) {
            if (!c->in_thinking_shown) fputs("<thinking>\n", stdout), c->in_thinking_shown = 1;
            fwrite(text, 1, len, stdout);
            fflush(stdout);
        }
        return;
    }
    append(&c->answer, &c->n_answer, text, len);
    if (!c->o.json) {
        if (c->in_thinking_shown) fputs("\n</thinking>\n", stdout), c->in_thinking_shown = 0;
        fwrite(text, 1, len, stdout);
        fflush(stdout);
    }
}

static double peak_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

static const char *const stop_names[] = {"length", "eos", "stop string", "cancelled"};

/* One model turn over the current history. */
static int answer(convo *c, g4c_gen_stats *st) {
    int n;
    int32_t *ids = build_prompt(c, &n);
    if (!ids) return 1;
    /* evaluate only what the cache does not hold (the history is re-rendered every turn) */
    int reuse = c->n_cached <= n && c->n_cached > 0 && !memcmp(ids, c->cached, sizeof(int32_t) * (size_t)c->n_cached) &&
                g4c_session_truncate(c->s, c->n_cached, NULL) == G4C_OK; /* drop the previous answer's tokens */
    int from = reuse ? c->n_cached : 0;
    if (!reuse) g4c_session_reset(c->s);
    int soft_from = 0;
    for (int i = 0; i < from; i++) soft_from += g4c_is_mm_placeholder(&c->m->cfg, ids[i]);
    c->n_answer = c->n_thinking = 0;
    if (c->answer) c->answer[0] = 0;
    if (c->thinking) c->thinking[0] = 0;
    const int room = g4c_session_n_ctx(c->s) - n;
    if (room <= 0) {
        fprintf(stderr, "gemma4c: the prompt is %d tokens, the context holds %d (raise -c)\n", n,
                g4c_session_n_ctx(c->s));
        free(ids);
        return 1;
    }
    g4c_gen_opts go = {.max_tokens = c->o.n_predict < room ? c->o.n_predict : room, .stop = c->o.stops,
                       .n_stop = c->o.n_stops, .on_text = on_text, .user = c, .cancel = &g_cancel};
    g4c_err err = {0};
    g_cancel = 0;
    const int H = g4c_model_n_embd(c->m);
    int rc = g4c_generate(c->s, c->tok, c->smp, ids + from, n - from, c->soft + (size_t)soft_from * H,
                          c->n_soft - soft_from, &go, st, &err);
    st->n_prompt = n; /* report the whole prompt even when part of it was cached */
    if (rc != G4C_OK) {
        cli_die_err("generation failed", &err);
        free(ids);
        g4c_session_reset(c->s);
        c->n_cached = 0;
        return 1;
    }
    /* the cache holds the prompt, then the answer's tokens: the next turn keeps the prompt part */
    free(c->cached);
    c->cached = ids;
    c->n_cached = n;
    return 0;
}

static void print_stats(const convo *c, const g4c_gen_stats *st, FILE *f) {
    const double pp = st->t_prefill_ms > 0 ? st->n_prompt / (st->t_prefill_ms / 1e3) : 0;
    const double tg = st->t_gen_ms > 0 && st->n_gen > 1 ? (st->n_gen - 1) / ((st->t_gen_ms - (st->t_first_ms - st->t_prefill_ms)) / 1e3) : 0;
    fprintf(f, "\n[prompt %d tok, %.1f tok/s | generated %d tok, %.1f tok/s | first token %.0f ms | total %.2f s | "
               "peak memory %.0f MiB | stop: %s]\n",
            st->n_prompt, pp, st->n_gen, tg, st->t_first_ms, st->t_total_ms / 1e3, peak_mib(), stop_names[st->stop]);
    (void)c;
}

static const char *const run_help =
    "usage: gemma4c run -m MODEL -p TEXT [--image F]... [options]\n"
    "Answers one prompt about text and images, streaming the answer to stdout; a statistics line follows on stderr.\n"
    "  -m, --model DIR|GGUF     a Hugging Face checkpoint directory (config.json, tokenizer.json, *.safetensors, ...)\n"
    "                           or a GGUF file (tokenizer from its metadata; mmproj found beside it)\n"
    "      --mmproj FILE        a GGUF model's vision projector (default: the *mmproj*.gguf beside the model)\n"
    "  -p, --prompt TEXT        the user message\n"
    "      --image F            an image (JPEG or PNG) shown before the prompt; repeatable\n"
    "      --image-budget N     soft tokens per image: 70, 140, 280, 560 or 1120 (default: processor_config.json, else 280)\n"
    "      --system TEXT        a system message\n"
    "      --think              enable thinking (<|think|>); the thoughts are hidden unless --show-thinking\n"
    "      --show-thinking      print the thought channel too (between <thinking> and </thinking>)\n"
    "      --chat-style S       auto | small (E2B/E4B template) | large (26B/31B: empty thought channel)\n"
    "  -n, --max-tokens N       generate at most N tokens (default 16)\n"
    "      --temp T, --top-k K, --top-p P   sampling (default: generation_config.json, else 1.0 / 64 / 0.95)\n"
    "      --min-p P, --repeat-penalty R, --presence-penalty P, --seed S\n"
    "      --stop STR           stop when the answer contains STR (not printed); repeatable\n"
    "      --json               print one JSON record (answer, thinking, statistics) instead of streaming\n"
    "  -c, --ctx-size N         context length (default 8192)      -t, --threads N   CPU threads (default: all)\n";

int cmd_run(int argc, char **argv) {
    if (argc > 2 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))) { fputs(run_help, stdout); return 0; }
    convo c = {0};
    if (cli_parse(&c.o, argc, argv, 2, "run")) return 2;
    if (!c.o.prompt && !c.o.n_images) { fprintf(stderr, "gemma4c run: -p TEXT (or --image) is required\n%s", run_help); return 2; }
    int rc = convo_open(&c);
    for (int i = 0; i < c.o.n_images && !rc; i++) rc = add_image(&c, c.o.images[i]);
    if (!rc && c.o.system) rc = add_turn(&c, G4C_ROLE_SYSTEM, c.o.system, 0);
    if (!rc) rc = add_turn(&c, G4C_ROLE_USER, c.o.prompt ? c.o.prompt : "", c.o.n_images);
    signal(SIGINT, on_sigint);
    g4c_gen_stats st = {0};
    if (!rc) rc = answer(&c, &st);
    if (!rc && c.o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "answer", c.answer ? c.answer : "");
        cJSON_AddStringToObject(j, "thinking", c.thinking ? c.thinking : "");
        cJSON_AddNumberToObject(j, "prompt_tokens", st.n_prompt);
        cJSON_AddNumberToObject(j, "generated_tokens", st.n_gen);
        cJSON_AddNumberToObject(j, "prompt_tok_per_s", st.t_prefill_ms > 0 ? st.n_prompt / (st.t_prefill_ms / 1e3) : 0);
        cJSON_AddNumberToObject(j, "gen_tok_per_s", st.t_gen_ms > 0 ? st.n_gen / (st.t_gen_ms / 1e3) : 0);
        cJSON_AddNumberToObject(j, "time_to_first_token_ms", st.t_first_ms);
        cJSON_AddNumberToObject(j, "total_ms", st.t_total_ms);
        cJSON_AddNumberToObject(j, "peak_memory_mib", peak_mib());
        cJSON_AddStringToObject(j, "stop", stop_names[st.stop]);
        char *s = cJSON_PrintUnformatted(j);
        if (s) puts(s);
        free(s);
        cJSON_Delete(j);
    } else if (!rc) {
        if (c.in_thinking_shown) fputs("\n</thinking>\n", stdout);
        fflush(stdout);
        print_stats(&c, &st, stderr);
    }
    convo_close(&c);
    return rc;
}

static const char *const chat_help =
    "usage: gemma4c chat -m MODEL [run's options]\n"
    "Interactive multi-turn chat. Commands: /image PATH (attach to the next message), /reset, /stats, /quit.\n"
    "Ctrl-C stops the current answer; Ctrl-D (end of input) quits.\n";

int cmd_chat(int argc, char **argv) {
    if (argc > 2 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))) { fputs(chat_help, stdout); return 0; }
    convo c = {0};
    if (cli_parse(&c.o, argc, argv, 2, "chat")) return 2;
    if (c.o.n_predict == 16) c.o.n_predict = 1024; /* a chat answer is not a probe */
    int rc = convo_open(&c);
    if (rc) { convo_close(&c); return rc; }
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint; /* no SA_RESTART: Ctrl-C at the prompt interrupts the read */
    sigaction(SIGINT, &sa, NULL);
    if (c.o.system) add_turn(&c, G4C_ROLE_SYSTEM, c.o.system, 0);
    const int tty = isatty(0);
    char line[8192];
    int pending_images = 0;
    g4c_gen_stats st = {0};
    for (;;) {
        if (tty) fputs("> ", stdout), fflush(stdout);
        g_cancel = 0;
        if (!fgets(line, sizeof line, stdin)) {
            if (g_cancel && !feof(stdin)) { clearerr(stdin); fputs("\n", stdout); continue; }
            break;
        }
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "/image ", 7)) {
            if (add_image(&c, line + 7) == 0) {
                pending_images++;
                printf("[image %s: %d soft tokens]\n", line + 7, c.img_tokens[c.n_imgs - 1]);
            }
            continue;
        }
        if (!strcmp(line, "/reset")) {
            for (int i = 0; i < c.n_turns; i++) free(c.turns[i].items), free(c.turns[i].text);
            c.n_turns = 0, c.n_soft = 0, c.n_imgs = 0, c.n_cached = 0, pending_images = 0;
            g4c_session_reset(c.s);
            if (c.o.system) add_turn(&c, G4C_ROLE_SYSTEM, c.o.system, 0);
            puts("[history cleared]");
            continue;
        }
        if (!strcmp(line, "/stats")) { print_stats(&c, &st, stdout); continue; }
        if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) break;
        if (!line[0] && !pending_images) continue;
        if (add_turn(&c, G4C_ROLE_USER, line, pending_images)) break;
        pending_images = 0;
        if (answer(&c, &st) == 0) {
            add_turn(&c, G4C_ROLE_MODEL, c.answer ? c.answer : "", 0);
            if (c.in_thinking_shown) fputs("\n</thinking>", stdout), c.in_thinking_shown = 0;
            fputs(st.stop == G4C_STOP_CANCEL ? " [stopped]\n" : "\n", stdout);
            fflush(stdout);
        } else {
            c.n_turns--; /* drop the user turn that failed */
            free(c.turns[c.n_turns].items), free(c.turns[c.n_turns].text);
        }
    }
    convo_close(&c);
    return 0;
}
