/* Checkpoint-side settings shared by the commands that talk to a model (run, chat, eval): the chat template text
 * and the image soft-token budget a checkpoint declares. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "image/image.h"

static char *read_text_file(const char *path) {
    char *buf = NULL;
    size_t n;
    if (access(path, F_OK) != 0 || g4c_read_file(path, (size_t)16 << 20, &buf, &n, NULL) != G4C_OK) return NULL;
    return buf;
}

char *cli_template_text(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
    char *t = read_text_file(p);
    if (t) return t;
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    char *js = read_text_file(p);
    if (!js) return NULL;
    cJSON *j = cJSON_Parse(js);
    free(js);
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(j, "chat_template");
    t = cJSON_IsString(ct) ? strdup(ct->valuestring) : NULL;
    cJSON_Delete(j);
    return t;
}

int cli_default_budget(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s/processor_config.json", dir);
    char *js = read_text_file(p);
    int b = G4C_IMAGE_DEFAULT_BUDGET;
    if (!js) return b;
    cJSON *j = cJSON_Parse(js);
    free(js);
    const cJSON *ip = cJSON_GetObjectItemCaseSensitive(j, "image_processor");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_IsObject(ip) ? ip : j, "max_soft_tokens");
    if (cJSON_IsNumber(v) && (v->valueint == 70 || v->valueint == 140 || v->valueint == 280 || v->valueint == 560 ||
                              v->valueint == 1120))
        b = v->valueint;
    cJSON_Delete(j);
    return b;
}
