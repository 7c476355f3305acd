/* gemma4c: command dispatch. Each subcommand lives in its own function (cli.h) and returns the exit status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    {"generate", cmd_generate, "generate token ids from token ids (greedy or sampled), KV-cached"},
    {"logits", cmd_logits, "write the logits of every prompt position as .npy (fidelity oracle hook)"},
    {"run", cmd_run, "answer a prompt (text and images) with streaming output and statistics"},
    {"chat", cmd_chat, "interactive multi-turn chat (/image PATH, /reset, /stats)"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server (chat completions, images, streaming)"},
    {"bench", cmd_bench, "llama-bench style throughput: pp512 / tg128 / image encode, mean ± sd"},
    {"info", cmd_info, "print a checkpoint's configuration and per-layer shapes"},
    {"synth", cmd_synth, "write a random-weight checkpoint of a Gemma 4 size"},
    {"quantize", cmd_quantize, "write a llama.cpp-loadable GGUF (q8_0 q4_0 q4_k_m ... f16) from a checkpoint"},
    {"eval", cmd_eval, "run the VQA or COCO benchmark on a model or an OpenAI-compatible server"},
    {"score", cmd_score, "score saved model outputs on VQA or COCO (no model needed)"},
    {"perf", cmd_perf, "the notebook's throughput suite: six text/image prompts, tok/s, time, peak memory"},
    {"segment", cmd_segment, "ask for a polygon around an object and draw it over the image"},
    {"report", cmd_report, "HTML report + PNG figures + summary.md from perf / eval / score runs"},
    {"image-features", cmd_image_features, "write an image's projected soft tokens as .npy (fidelity hook)"},
    {"preprocess", cmd_preprocess, "decode + resize + patchify an image as the model sees it (.npy)"},
    {"tokenize", cmd_tokenize, "text -> token ids"},
    {"detokenize", cmd_detokenize, "token ids -> text"},
};

static void usage(FILE *f) {
    fprintf(f, "gemma4c %s - run Google's Gemma 4 models locally\n\nusage: gemma4c <command> [options]\n\ncommands:\n",
            g4c_version());
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'gemma4c <command> --help' describes a command's options. Every command that runs the model takes\n"
               "--device cpu|cuda (default: cuda when built with -DGEMMA4C_CUDA=ON and a GPU is present).\n");
}

/* Library warnings and errors go to stderr; GEMMA4C_LOG=info|debug shows more. */
static int log_level = G4C_LOG_WARN;
static void log_stderr(int level, const char *msg, void *user) {
    (void)user;
    static const char *const names[] = {"error", "warning", "info", "debug"};
    if (level <= log_level) fprintf(stderr, "gemma4c: %s: %s\n", names[level < 0 ? 0 : level > 3 ? 3 : level], msg);
}

int main(int argc, char **argv) {
    const char *lv = getenv("GEMMA4C_LOG");
    if (lv) log_level = !strcmp(lv, "debug") ? G4C_LOG_DEBUG : !strcmp(lv, "info") ? G4C_LOG_INFO : G4C_LOG_WARN;
    g4c_log_set(log_stderr, NULL);
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("gemma4c %s\n", g4c_version());
        return 0;
    }
    /* --device cpu|cuda (any command but perf, which takes its own): where the text decoder runs, through the
     * session defaults (runtime/api.c); default cuda when this build has it and a GPU is there */
    if (strcmp(argv[1], "perf")) {
        int j = 2;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--device") && i + 1 < argc) {
                if (strcmp(argv[i + 1], "cpu") && strcmp(argv[i + 1], "cuda")) {
                    fprintf(stderr, "gemma4c: --device must be cpu or cuda\n");
                    return 2;
                }
                setenv("G4C_DEVICE", argv[++i], 1);
                continue;
            }
            argv[j++] = argv[i];
        }
        argc = j;
        argv[argc] = NULL;
    }
    setenv("G4C_DEVICE", "auto", 0);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc, argv);
    fprintf(stderr, "gemma4c: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
