/* gemma4c serve: an OpenAI-compatible HTTP server (issue 8; src/server/, docs/SERVER.md). */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "server/server.h"

static const char *const serve_help =
    "usage: gemma4c serve -m MODEL [options]\n"
    "OpenAI-compatible HTTP server: POST /v1/chat/completions (text, data: URL images, stream: true),\n"
    "GET /v1/models, GET /health, GET /metrics (Prometheus). Stops on SIGINT / SIGTERM. See docs/SERVER.md.\n"
    "  -m, --model DIR|GGUF       a checkpoint directory (config.json, tokenizer.json, *.safetensors) or a .gguf\n"
    "      --mmproj FILE          a GGUF model's vision projector (default: the *mmproj*.gguf beside the model)\n"
    "      --host ADDR            address to bind (default 127.0.0.1; only this address is served)\n"
    "      --port N               TCP port (default 8080; 0 = any free port, printed at start)\n"
    "      --api-key K            require 'Authorization: Bearer K' on /v1/* (default: $GEMMA4C_API_KEY, else none)\n"
    "      --parallel N           worker sessions run at once (default 1); more requests wait in the queue\n"
    "      --queue N              requests that may wait for a worker; beyond that 503 + Retry-After (default 64)\n"
    "  -c, --ctx N                context length per session (default 8192, capped by the model)\n"
    "  -t, --threads N            CPU threads in all, split over the workers (default: all)\n"
    "      --image-budget N       soft tokens per image: 70, 140, 280, 560 or 1120 (default: processor_config.json)\n"
    "      --max-image-mpix N     refuse images above N megapixels before decoding them (default 32)\n"
    "      --max-images N         images per request (default 16)\n"
    "      --max-body MB          request body limit in MiB (default 32)\n"
    "      --timeout S            per-request limit in seconds, queue wait included (default 600; 0 = none)\n"
    "      --max-tokens N         completion length when a request gives none (default: the rest of the context)\n"
    "      --max-conn N           simultaneous connections (default 256)\n"
    "      --allow-local-files DIR  accept image_url paths / file:// URLs inside DIR\n"
    "      --think                thinking on unless a request says otherwise (chat_template_kwargs.enable_thinking)\n"
    "      --chat-style S         auto | small | large (as for run)\n"
    "      --alias NAME           model id reported by /v1/models (default: the directory's name)\n"
    "      --no-cache-prompt      re-evaluate every prompt from the start (default: reuse a common prefix)\n"
    "  -v, --verbose              log every request to stderr\n";

static int num(const char *flag, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || x < lo || x > hi) {
        fprintf(stderr, "gemma4c serve: %s needs an integer in [%ld, %ld], got '%s'\n", flag, lo, hi, v ? v : "");
        return 1;
    }
    *out = x;
    return 0;
}

int cmd_serve(int argc, char **argv) {
    srv_config c = {.host = "127.0.0.1", .port = 8080, .parallel = 1, .max_body = (size_t)32 << 20,
                    .timeout_s = 600, .queue_size = 64, .max_conn = 256, .max_pixels = (uint64_t)32 << 20,
                    .chat_style = "auto", .cache_prompt = 1, .lim = oai_default_limits()};
    c.api_key = getenv("GEMMA4C_API_KEY");
    if (c.api_key && !*c.api_key) c.api_key = NULL;
    const char *local_dir = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x = 0;
#define FLAG(s1, s2) (!strcmp(a, s1) || !strcmp(a, s2))
#define VAL                                                                          \
    do {                                                                             \
        if (!v) {                                                                    \
            fprintf(stderr, "gemma4c serve: %s needs a value\n", a);                 \
            return 2;                                                                \
        }                                                                            \
        i++;                                                                         \
    } while (0)
#define NUM(lo, hi)                            \
    do {                                       \
        VAL;                                   \
        if (num(a, v, lo, hi, &x)) return 2;   \
    } while (0)
        if (FLAG("-h", "--help")) { fputs(serve_help, stdout); return 0; }
        else if (FLAG("-m", "--model")) { VAL; c.model_dir = v; }
        else if (FLAG("-mm", "--mmproj")) { VAL; c.mmproj = v; }
        else if (FLAG("--host", "--host")) { VAL; c.host = v; }
        else if (FLAG("--port", "--port")) { NUM(0, 65535); c.port = (int)x; }
        else if (FLAG("--api-key", "--api-key")) { VAL; c.api_key = *v ? v : NULL; }
        else if (FLAG("--parallel", "-np")) { NUM(1, 64); c.parallel = (int)x; }
        else if (FLAG("--queue", "--queue-size")) { NUM(1, 100000); c.queue_size = (int)x; }
        else if (FLAG("-c", "--ctx") || !strcmp(a, "--ctx-size")) { NUM(0, 1 << 24); c.n_ctx = (int)x; }
        else if (FLAG("-t", "--threads")) { NUM(0, 1024); c.n_threads = (int)x; }
        else if (FLAG("--image-budget", "--max-soft-tokens")) {
            NUM(0, 1120);
            if (x && x != 70 && x != 140 && x != 280 && x != 560 && x != 1120) {
                fprintf(stderr, "gemma4c serve: --image-budget must be 70, 140, 280, 560 or 1120\n");
                return 2;
            }
            c.image_budget = (int)x;
        }
        else if (FLAG("--max-image-mpix", "--max-image-mpix")) { NUM(1, 1024); c.max_pixels = (uint64_t)x << 20; }
        else if (FLAG("--max-images", "--max-images")) { NUM(0, 256); c.lim.max_images = (int)x; }
        else if (FLAG("--max-body", "--max-body")) { NUM(1, 4096); c.max_body = (size_t)x << 20; }
        else if (FLAG("--timeout", "--timeout")) { NUM(0, 86400); c.timeout_s = (int)x; }
        else if (FLAG("--max-tokens", "-n")) { NUM(0, INT_MAX); c.default_max_tokens = (int)x; }
        else if (FLAG("--max-conn", "--max-conn")) { NUM(1, 65536); c.max_conn = (int)x; }
        else if (FLAG("--allow-local-files", "--allow-local-files")) { VAL; local_dir = v; }
        else if (FLAG("--think", "--think")) c.think = 1;
        else if (FLAG("--chat-style", "--chat-style")) {
            VAL;
            if (strcmp(v, "auto") && strcmp(v, "small") && strcmp(v, "large")) {
                fprintf(stderr, "gemma4c serve: --chat-style must be auto, small or large\n");
                return 2;
            }
            c.chat_style = v;
        }
        else if (FLAG("--alias", "--model-name")) { VAL; c.alias = v; }
        else if (FLAG("--no-cache-prompt", "--no-cache-prompt")) c.cache_prompt = 0;
        else if (FLAG("-v", "--verbose")) c.verbose = 1;
        else {
            fprintf(stderr, "gemma4c serve: unknown option '%s'\n%s", a, serve_help);
            return 2;
        }
#undef FLAG
#undef VAL
#undef NUM
    }
    if (!c.model_dir) {
        fprintf(stderr, "gemma4c serve: -m MODEL (a checkpoint directory or a .gguf) is required\n%s", serve_help);
        return 2;
    }
    char local_real[PATH_MAX];
    if (local_dir) {
        if (!realpath(local_dir, local_real)) {
            fprintf(stderr, "gemma4c serve: --allow-local-files %s: %s\n", local_dir, strerror(errno));
            return 2;
        }
        c.lim.local_dir = local_real;
    }
    /* threads started from here on (model pools, workers, libmicrohttpd) inherit this mask: the main thread alone
     * takes SIGINT / SIGTERM, with sigwait */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
#ifdef __GLIBC__
    /* Per-request buffers (logits, sampler, image patches: 1-10 MB) go straight to mmap and back on free, and few
     * malloc arenas serve the connection threads: the resident size stays flat under load instead of keeping a
     * high-water mark per thread arena (glibc's dynamic mmap threshold would otherwise rise to 32 MB). */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    mallopt(M_ARENA_MAX, 4);
#endif
    srv s;
    if (srv_init(&s, &c) || http_start(&s)) {
        srv_free(&s);
        return 1;
    }
    fprintf(stderr,
            "gemma4c serve: listening on http://%s%s%s:%d (model %s, %d worker%s, context %d, queue %d%s)\n",
            strchr(c.host, ':') ? "[" : "", c.host, strchr(c.host, ':') ? "]" : "", http_port(&s), s.model_id,
            c.parallel, c.parallel > 1 ? "s" : "", s.n_ctx, c.queue_size, c.api_key ? ", API key required" : "");
    fflush(stderr);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "gemma4c serve: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    srv_shutdown(&s); /* waiting requests get 503, running ones are cancelled */
    http_stop(&s);
    srv_free(&s);
    return 0;
}
