/* gemma4c tokenize / detokenize (placeholder). */
#include <stdio.h>

#include "cli/cli.h"

int cmd_tokenize(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "gemma4c tokenize: not implemented yet\n");
    return 2;
}

int cmd_detokenize(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "gemma4c detokenize: not implemented yet\n");
    return 2;
}
