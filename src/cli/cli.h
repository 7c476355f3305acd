/* cli: the gemma4c command. Only this layer prints, reads argv and exits. */
#ifndef G4C_CLI_CLI_H
#define G4C_CLI_CLI_H

#include <stdint.h>

#include "gemma4c.h"

/* Options shared by the model subcommands, llama.cpp spelling where one exists. */
typedef struct {
    const char *model;   /* -m, --model DIR */
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
} cli_opts;

/* Parse argv[first..] into o; prints the problem and returns nonzero on a bad flag. */
int cli_parse(cli_opts *o, int argc, char **argv, int first, const char *cmd);
/* "2,5,9" -> malloc'd ids; returns count, or -1 after printing why. */
int cli_parse_tokens(const char *s, int32_t **out);
void cli_die_err(const char *what, const g4c_err *err);

int cmd_logits(int argc, char **argv);
int cmd_preprocess(int argc, char **argv);  /* cmd_image.c */
int cmd_tokenize(int argc, char **argv);    /* cmd_tok.c */
int cmd_detokenize(int argc, char **argv);  /* cmd_tok.c */
int cmd_run(int argc, char **argv);         /* cmd_run.c */
int cmd_generate(int argc, char **argv);
int cmd_info(int argc, char **argv);

#endif
