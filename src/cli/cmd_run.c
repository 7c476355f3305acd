/* gemma4c run (placeholder). */
#include <stdio.h>

#include "cli/cli.h"

int cmd_run(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "gemma4c run: not implemented yet\n");
    return 2;
}
