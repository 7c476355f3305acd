/* libFuzzer target: HTTP request bodies -> the OpenAI chat-completions parser (src/server/openai.c), then the
 * response builders on what it parsed. Any body must either be refused with a 400/500 error whose JSON reads back,
 * or parse into a request that satisfies the limits; text that goes back out must be valid UTF-8. Also checks the
 * base64 decoder and the UTF-8 sanitizer on the raw bytes. openai.c is compiled in here (it needs only cJSON), so
 * the harness does not link libmicrohttpd. */
#include "server/openai.c"

static int valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        const unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!len || i + len > n) return 0;
        uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3Fu);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += len;
    }
    return 1;
}

static void check_json(char *s) {
    if (!s) return; /* out of memory */
    cJSON *j = cJSON_Parse(s);
    if (!j || !valid_utf8((const unsigned char *)s, strlen(s))) __builtin_trap();
    cJSON_Delete(j);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the parser */
    oai_limits lim = oai_default_limits();
    oai_request req;
    oai_error e = {0};
    if (oai_parse_request((const char *)data, size, &lim, &req, &e)) {
        if ((e.status != 400 && e.status != 500) || !e.message[0] || req.msgs || req.n_msgs) __builtin_trap();
        check_json(oai_error_json(&e));
    } else {
        if (req.n_msgs < 1 || req.n_msgs > lim.max_messages || req.n_images > lim.max_images ||
            req.n_stop > lim.max_stop || (req.max_tokens != -1 && req.max_tokens < 1) || req.thinking < -1 ||
            req.thinking > 1)
            __builtin_trap();
        if (req.has_temperature && !(req.temperature >= 0 && req.temperature <= 2)) __builtin_trap();
        if (req.has_top_p && !(req.top_p >= 0 && req.top_p <= 1)) __builtin_trap();
        int images = 0;
        srv_buf text = {0};
        for (int m = 0; m < req.n_msgs; m++) {
            const oai_msg *msg = &req.msgs[m];
            if (msg->role < OAI_ROLE_SYSTEM || msg->role > OAI_ROLE_ASSISTANT) __builtin_trap();
            for (int k = 0; k < msg->n_parts; k++) {
                const oai_part *p = &msg->parts[k];
                if (p->is_image) {
                    images++;
                    if (msg->role != OAI_ROLE_USER || !p->data || !p->n_data || p->path || p->text) __builtin_trap();
                } else {
                    if (!p->text) __builtin_trap();
                    oai_utf8_append(&text, p->text, strlen(p->text));
                }
            }
        }
        if (images != req.n_images) __builtin_trap();
        for (int i = 0; i < req.n_stop; i++)
            if (!req.stop[i][0] || strlen(req.stop[i]) > (size_t)lim.max_stop_len) __builtin_trap();
        /* echo the text through both response builders */
        const g4c_gen_stats st = {.n_prompt = 3, .n_gen = 2, .t_prefill_ms = 1, .t_gen_ms = 2};
        const oai_result r = {.id = "chatcmpl-x", .model = req.model ? req.model : "m", .created = 1,
                              .content = text.p ? text.p : "", .reasoning = req.thinking == 1 ? "" : NULL,
                              .finish_reason = "stop", .n_prompt = 3, .n_gen = 2, .st = &st};
        if (!text.oom) check_json(oai_completion_json(&r));
        srv_buf sse = {0};
        oai_chunk_sse(&sse, r.id, r.model, 1, 1, r.content, NULL, NULL, NULL, 0);
        oai_chunk_sse(&sse, r.id, r.model, 1, 0, NULL, NULL, "length", &r, 1);
        if (!sse.oom && sse.p && (strncmp(sse.p, "data: {", 7) || !valid_utf8((unsigned char *)sse.p, sse.len)))
            __builtin_trap();
        srv_buf_free(&sse);
        srv_buf_free(&text);
        oai_request_free(&req);
    }
    /* the UTF-8 sanitizer: always valid output; valid input passes unchanged */
    srv_buf u = {0};
    oai_utf8_append(&u, (const char *)data, size);
    if (!u.oom) {
        if (!valid_utf8((const unsigned char *)(u.p ? u.p : ""), u.len)) __builtin_trap();
        if (valid_utf8(data, size) && (u.len != size || (size && memcmp(u.p, data, size)))) __builtin_trap();
    }
    srv_buf_free(&u);
    /* base64: decoding never overruns; re-encoding what decoded and decoding again gives the same bytes */
    size_t n = 0, bad = 0;
    unsigned char *dec = oai_base64_decode((const char *)data, size, &n, &bad);
    if (dec) {
        static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *enc = malloc((n + 2) / 3 * 4 + 1);
        if (enc) {
            size_t o = 0;
            for (size_t i = 0; i < n; i += 3) {
                const uint32_t v = (uint32_t)dec[i] << 16 | (i + 1 < n ? (uint32_t)dec[i + 1] << 8 : 0) |
                                   (i + 2 < n ? dec[i + 2] : 0);
                enc[o++] = al[v >> 18 & 63];
                enc[o++] = al[v >> 12 & 63];
                enc[o++] = i + 1 < n ? al[v >> 6 & 63] : '=';
                enc[o++] = i + 2 < n ? al[v & 63] : '=';
            }
            size_t n2 = 0;
            unsigned char *dec2 = oai_base64_decode(enc, o, &n2, &bad);
            if (!dec2 || n2 != n || (n && memcmp(dec, dec2, n))) __builtin_trap();
            free(dec2);
            free(enc);
        }
        free(dec);
    } else if (bad > size) {
        __builtin_trap();
    }
    return 0;
}
