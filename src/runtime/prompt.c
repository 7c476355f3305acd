/* From chat messages to the token ids the model reads: render the chat template (spec §6), tokenize with
 * special tokens parsed, and expand every <|image|> slot into <|image> + N x <|image|> + <image|> (spec §4.7,
 * HF Gemma4Processor.replace_image_token), N being that image's soft-token count. Shared by run, chat, serve. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "image/image.h"
#include "runtime/runtime.h"

/* A small text file of a checkpoint directory, or NULL when absent or unreadable. */
static char *read_small(const char *dir, const char *name) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p) return NULL;
    char *buf = NULL;
    size_t n;
    if (access(p, F_OK) != 0 || g4c_read_file(p, (size_t)16 << 20, &buf, &n, NULL) != G4C_OK) return NULL;
    return buf;
}

char *g4c_checkpoint_chat_template(const char *dir) {
    char *t = read_small(dir, "chat_template.jinja");
    if (t) return t;
    char *js = read_small(dir, "tokenizer_config.json");
    if (!js) return NULL;
    cJSON *j = cJSON_Parse(js);
    free(js);
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(j, "chat_template");
    t = cJSON_IsString(ct) ? strdup(ct->valuestring) : NULL;
    cJSON_Delete(j);
    return t;
}

int g4c_checkpoint_image_budget(const char *dir) {
    char *js = read_small(dir, "processor_config.json");
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

g4c_status g4c_prompt_build(const g4c_model *m, const g4c_tokenizer *tok, const g4c_chat_style *style,
                            const g4c_chat_msg *msgs, int n_msgs, int add_generation_prompt, const int *img_tokens,
                            int n_imgs, int32_t **out, int *n_out, g4c_err *err) {
    *out = NULL;
    *n_out = 0;
    /* message text is tokenized with special tokens off (a typed "<|turn>" or "<|image|>" stays text); the
     * template's own control tokens are parsed */
    const size_t len = g4c_chat_render(msgs, n_msgs, style, add_generation_prompt, NULL, 0);
    char *text = g4c_malloc(len + 1, 1, err);
    uint8_t *mask = g4c_malloc(len + 1, 1, err);
    if (!text || !mask) {
        free(text), free(mask);
        return G4C_E_NOMEM;
    }
    g4c_chat_render_masked(msgs, n_msgs, style, add_generation_prompt, text, mask, len + 1);
    int n = g4c_tok_encode_masked(tok, text, len, mask, NULL, 0, err);
    int32_t *ids = n > 0 ? g4c_malloc((size_t)n, sizeof(int32_t), err) : NULL;
    if (n > 0 && ids) n = g4c_tok_encode_masked(tok, text, len, mask, ids, n, err);
    free(text);
    free(mask);
    if (n < 0 || !ids) {
        free(ids);
        return n < 0 ? (g4c_status)n : G4C_E_NOMEM;
    }
    const int32_t img = m->cfg.image_token_id;
    size_t total = (size_t)n;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] == img) {
            if (k < n_imgs) total += 1 + (size_t)img_tokens[k];
            k++;
        }
    if (k != n_imgs) {
        free(ids);
        return G4C_FAIL(err, G4C_E_ARG, "the rendered prompt has %d image slots for %d images", k, n_imgs);
    }
    if (total > (size_t)INT32_MAX / 2) {
        free(ids);
        return G4C_FAIL(err, G4C_E_ARG, "prompt too long");
    }
    int32_t *o = g4c_malloc(total, sizeof(int32_t), err);
    if (!o) {
        free(ids);
        return G4C_E_NOMEM;
    }
    size_t j = 0;
    k = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] != img) {
            o[j++] = ids[i];
            continue;
        }
        o[j++] = m->cfg.boi_token_id;
        for (int t = 0; t < img_tokens[k]; t++) o[j++] = img;
        o[j++] = m->cfg.eoi_token_id;
        k++;
    }
    free(ids);
    *out = o;
    *n_out = (int)total;
    return G4C_OK;
}
