/* Checkpoint-side settings shared by the commands that talk to a model (run, chat, eval): the chat template text
 * and the image soft-token budget a checkpoint declares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "runtime/runtime.h"

char *cli_template_text(const char *dir) { return g4c_checkpoint_chat_template(dir); }

int cli_default_budget(const char *dir) { return g4c_checkpoint_image_budget(dir); }
