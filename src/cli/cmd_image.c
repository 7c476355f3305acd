/* gemma4c preprocess (placeholder until the image module lands). */
#include <stdio.h>

#include "cli/cli.h"

int cmd_preprocess(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "gemma4c preprocess: not implemented yet\n");
    return 2;
}
