/* cli: the gemma4c command. Only this layer prints, reads argv and exits. */
#ifndef G4C_CLI_CLI_H
#define G4C_CLI_CLI_H

#include <stdint.h>

#include "gemma4c.h"

/* Options shared by the model subcommands, llama.cpp spelling where one exists. */
typedef struct {
    const char *model;   /* -m, --model: a checkpoint directory or a .gguf file */
    const char *mmproj;  /* -mm, --mmproj FILE: a GGUF model's vision projector (else the one found beside it) */
    const char *tokens;  /* --tokens 2,5,9 */
    const char *out;     /* -o, --out FILE */
    int n_predict;       /* -n, --max-tokens */
    int n_threads;       /* -t, --threads */
    int n_ctx;           /* -c, --ctx-size */
    int n_ubatch;        /* -ub, --ubatch-size */
    float temp;          /* --temp */
    int top_k;           /* --top-k */
    float top_p;         /* --top-p */
    uint64_t seed;       /* --seed */
    int print_ids;       /* --print-ids */
    int ignore_eos;      /* --ignore-eos */
    int json;            /* --json */
    /* run / chat */
    const char *prompt;  /* -p, --prompt */
    const char *system;  /* --system */
    const char *images[16]; /* --image F (repeatable) */
    int n_images;
    int image_budget;    /* --image-budget (0 = processor_config.json, else 280) */
    const char *stops[16]; /* --stop STR (repeatable) */
    int n_stops;
    int think;           /* --think */
    int show_thinking;   /* --show-thinking */
    const char *chat_style; /* --chat-style auto|small|large */
    float min_p;         /* --min-p */
    float repeat_penalty;   /* --repeat-penalty */
    float presence_penalty; /* --presence-penalty */
    int set_temp, set_top_k, set_top_p; /* given on the command line (else generation_config.json) */
} cli_opts;

/* Parse argv[first..] into o; prints the problem and returns nonzero on a bad flag. */
int cli_parse(cli_opts *o, int argc, char **argv, int first, const char *cmd);
/* "2,5,9" -> malloc'd ids; returns count, or -1 after printing why. */
int cli_parse_tokens(const char *s, int32_t **out);
void cli_die_err(const char *what, const g4c_err *err);
/* Peak resident memory in MiB: VmHWM, else the process' getrusage high-water mark (then *per_test = 0, when
 * per_test is given). cli_reset_peak starts a new high-water mark (Linux: "5" to /proc/self/clear_refs); 0 when it
 * cannot. */
double cli_peak_mib(int *per_test);
int cli_reset_peak(void);
/* convo.c: a checkpoint's chat template text (chat_template.jinja, else tokenizer_config.json "chat_template"; NULL
 * when neither, malloc'd) and its image soft-token budget (processor_config.json max_soft_tokens, else 280). */
char *cli_template_text(const char *dir);
int cli_default_budget(const char *dir);

int cmd_logits(int argc, char **argv);
int cmd_image_features(int argc, char **argv);
int cmd_preprocess(int argc, char **argv);  /* cmd_image.c */
int cmd_tokenize(int argc, char **argv);    /* cmd_tok.c */
int cmd_detokenize(int argc, char **argv);  /* cmd_tok.c */
int cmd_run(int argc, char **argv);         /* cmd_run.c */
int cmd_chat(int argc, char **argv);
int cmd_bench(int argc, char **argv);       /* cmd_bench.c */        /* cmd_run.c */
int cmd_serve(int argc, char **argv);       /* cmd_serve.c */
int cmd_generate(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_synth(int argc, char **argv);       /* cmd_synth.c */
int cmd_quantize(int argc, char **argv);    /* cmd_quant.c */
int cmd_eval(int argc, char **argv);        /* cmd_eval.c */
int cmd_score(int argc, char **argv);       /* cmd_eval.c */
int cmd_perf(int argc, char **argv);        /* cmd_perf.c */
int cmd_segment(int argc, char **argv);     /* cmd_segment.c */
int cmd_report(int argc, char **argv);      /* cmd_report.c */

#endif
