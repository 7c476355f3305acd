/* From chat messages to the token ids the model reads: render the chat template (spec §6), tokenize with
 * special tokens parsed, and expand every <|image|> slot into <|image> + N x <|image|> + <image|> (spec §4.7,
 * HF Gemma4Processor.replace_image_token), N being that image's soft-token count. Shared by run, chat, serve. */
#include <stdlib.h>

#include "runtime/runtime.h"

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
