/* Gemma 4 chat template (spec §6), rendered in C instead of Jinja. Follows Google's canonical template of
 * 2026-07-09 (ollama testdata gemma4_31b_chat_template.jinja2) for text, images, system turns and thinking;
 * tool declarations/calls come with the server (issue 8). Release-era (April) differences are style flags:
 * images wrapped in "\n\n" and "<|think|>" without its newline.
 *   <bos>[<|turn>system\n[<|think|>\n]{system}<turn|>\n]{<|turn>{role}\n{content}<turn|>\n}...<|turn>model\n
 *   + "<|channel>thought\n<channel|>" when thinking is off and the template is the 26B/31B one. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/model.h"

typedef struct {
    char *buf;
    size_t size, len;
    uint8_t *mask; /* optional [size]: 1 for bytes the template wrote, 0 for message content */
    int content;   /* writing message content now */
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (b->len < b->size) {
        size_t room = b->size - b->len - 1, k = n < room ? n : room;
        memcpy(b->buf + b->len, s, k);
        if (b->mask) memset(b->mask + b->len, !b->content, k);
        b->buf[b->len + k] = 0;
    }
    b->len += n;
}
static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

/* Jinja's trim: strip leading and trailing whitespace. */
static void put_trimmed(sbuf *b, const char *s, size_t n) {
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    put(b, s, n);
}

/* strip_thinking: split on "<channel|>", keep each part up to its "<|channel>" (if any), join, trim. */
static void put_stripped(sbuf *b, const char *s) {
    static const char open[] = "<|channel>", close[] = "<channel|>";
    const size_t n = strlen(s);
    char *kept = malloc(n + 1); /* the kept text is never longer than the input */
    if (!kept) return;
    size_t k = 0;
    for (const char *p = s;;) {
        const char *c = strstr(p, close);
        const size_t part = c ? (size_t)(c - p) : strlen(p);
        size_t keep = part;
        for (size_t q = 0; q + sizeof open - 1 <= part; q++)
            if (!memcmp(p + q, open, sizeof open - 1)) { keep = q; break; }
        memcpy(kept + k, p, keep);
        k += keep;
        if (!c) break;
        p = c + sizeof close - 1;
    }
    put_trimmed(b, kept, k);
    free(kept);
}

size_t g4c_chat_render(const g4c_chat_msg *msgs, int n, const g4c_chat_style *st, int add_generation_prompt,
                       char *buf, size_t size) {
    return g4c_chat_render_masked(msgs, n, st, add_generation_prompt, buf, NULL, size);
}

size_t g4c_chat_render_masked(const g4c_chat_msg *msgs, int n, const g4c_chat_style *st, int add_generation_prompt,
                              char *buf, uint8_t *mask, size_t size) {
    sbuf b = {buf, size, 0, mask, 0};
    if (buf && size) buf[0] = 0;
    puts_(&b, "<bos>");
    int first = 0;
    const int has_system = n > 0 && msgs[0].role == G4C_ROLE_SYSTEM;
    if (st->thinking || has_system) {
        puts_(&b, "<|turn>system\n");
        if (st->thinking) puts_(&b, st->think_no_newline ? "<|think|>" : "<|think|>\n");
        b.content = 1;
        if (has_system)
            for (int i = 0; i < msgs[0].n_items; i++)
                if (!msgs[0].items[i].is_image) put_trimmed(&b, msgs[0].items[i].text, strlen(msgs[0].items[i].text));
        b.content = 0;
        puts_(&b, "<turn|>\n");
        first = has_system;
    }
    for (int m = first; m < n; m++) {
        const g4c_chat_msg *msg = &msgs[m];
        const char *role = msg->role == G4C_ROLE_MODEL ? "model" : msg->role == G4C_ROLE_SYSTEM ? "system" : "user";
        /* consecutive model messages continue one model turn */
        const int continues = msg->role == G4C_ROLE_MODEL && m > first && msgs[m - 1].role == G4C_ROLE_MODEL;
        if (!continues) {
            puts_(&b, "<|turn>");
            puts_(&b, role);
            puts_(&b, "\n");
        }
        for (int i = 0; i < msg->n_items; i++) {
            const g4c_chat_item *it = &msg->items[i];
            b.content = !it->is_image;
            if (it->is_image)
                puts_(&b, st->image_newlines ? "\n\n<|image|>\n\n" : "<|image|>");
            else if (msg->role == G4C_ROLE_MODEL)
                put_stripped(&b, it->text);
            else
                put_trimmed(&b, it->text, strlen(it->text));
            b.content = 0;
        }
        const int next_is_model = m + 1 < n && msgs[m + 1].role == G4C_ROLE_MODEL;
        if (!(msg->role == G4C_ROLE_MODEL && next_is_model)) puts_(&b, "<turn|>\n");
    }
    if (add_generation_prompt) {
        puts_(&b, "<|turn>model\n");
        if (!st->thinking && st->empty_thought_channel) puts_(&b, "<|channel>thought\n<channel|>");
    }
    return b.len;
}

g4c_chat_style g4c_chat_style_for(const g4c_config *cfg, const char *template_text) {
    g4c_chat_style st = {0};
    /* The 26B/31B templates pre-fill an empty thought channel when thinking is off; E2B/E4B's do not (ollama
     * issue 15536). Trust the checkpoint's template when we have it, else tell the sizes apart by PLE. */
    if (template_text)
        st.empty_thought_channel = strstr(template_text, "<|channel>thought\\n<channel|>") != NULL;
    else
        st.empty_thought_channel = cfg->ple_dim == 0;
    if (template_text && !strstr(template_text, "<|think|>\\n")) st.think_no_newline = 1;
    if (template_text && strstr(template_text, "\\n\\n<|image|>\\n\\n")) st.image_newlines = 1;
    return st;
}
