/* Chat template rendering against hand-derived renders of Google's template (spec §6). */
#include "model/model.h"
#include "test.h"

static char out[4096];

static const char *render(const g4c_chat_msg *m, int n, g4c_chat_style st, int gen) {
    size_t len = g4c_chat_render(m, n, &st, gen, out, sizeof out);
    CHECK(len == strlen(out));
    return out;
}

#define USER(txt) {G4C_ROLE_USER, (g4c_chat_item[]){{0, txt}}, 1}

static void test_single_user_turn(void) {
    g4c_chat_msg m[] = {USER("  Hello there \n")};
    g4c_chat_style e = {0}, big = {.empty_thought_channel = 1};
    CHECK(!strcmp(render(m, 1, e, 1), "<bos><|turn>user\nHello there<turn|>\n<|turn>model\n"));
    CHECK(!strcmp(render(m, 1, big, 1),
                  "<bos><|turn>user\nHello there<turn|>\n<|turn>model\n<|channel>thought\n<channel|>"));
    CHECK(!strcmp(render(m, 1, big, 0), "<bos><|turn>user\nHello there<turn|>\n"));
}

static void test_system_and_thinking(void) {
    g4c_chat_msg m[] = {{G4C_ROLE_SYSTEM, (g4c_chat_item[]){{0, " Be brief. "}}, 1}, USER("Hi")};
    g4c_chat_style big = {.empty_thought_channel = 1};
    CHECK(!strcmp(render(m, 2, big, 1), "<bos><|turn>system\nBe brief.<turn|>\n<|turn>user\nHi<turn|>\n"
                                        "<|turn>model\n<|channel>thought\n<channel|>"));
    big.thinking = 1; /* thinking on: <|think|> opens the system turn, no empty channel */
    CHECK(!strcmp(render(m, 2, big, 1), "<bos><|turn>system\n<|think|>\nBe brief.<turn|>\n<|turn>user\nHi<turn|>\n"
                                        "<|turn>model\n"));
    g4c_chat_style april = {.thinking = 1, .think_no_newline = 1};
    CHECK(!strcmp(render(m + 1, 1, april, 1), "<bos><|turn>system\n<|think|><turn|>\n<|turn>user\nHi<turn|>\n"
                                              "<|turn>model\n"));
}

static void test_history_strips_thinking(void) {
    g4c_chat_msg m[] = {
        USER("2+2?"),
        {G4C_ROLE_MODEL, (g4c_chat_item[]){{0, "<|channel>thought\nadd them<channel|>4 "}}, 1},
        USER("and 3+3?"),
    };
    g4c_chat_style e = {0};
    CHECK(!strcmp(render(m, 3, e, 1), "<bos><|turn>user\n2+2?<turn|>\n<|turn>model\n4<turn|>\n"
                                      "<|turn>user\nand 3+3?<turn|>\n<|turn>model\n"));
}

static void test_images(void) {
    g4c_chat_item items[] = {{1, NULL}, {0, "What is this?"}};
    g4c_chat_msg m[] = {{G4C_ROLE_USER, items, 2}};
    g4c_chat_style e = {0}, april = {.image_newlines = 1};
    CHECK(!strcmp(render(m, 1, e, 1), "<bos><|turn>user\n<|image|>What is this?<turn|>\n<|turn>model\n"));
    /* spec §6 worked render (release-era E2B template) */
    CHECK(!strcmp(render(m, 1, april, 1),
                  "<bos><|turn>user\n\n\n<|image|>\n\nWhat is this?<turn|>\n<|turn>model\n"));
}

static void test_snprintf_contract(void) {
    g4c_chat_msg m[] = {USER("Hello")};
    g4c_chat_style e = {0};
    size_t need = g4c_chat_render(m, 1, &e, 1, NULL, 0);
    CHECK(need == strlen("<bos><|turn>user\nHello<turn|>\n<|turn>model\n"));
    char small[8];
    CHECK(g4c_chat_render(m, 1, &e, 1, small, sizeof small) == need);
    CHECK(!memcmp(small, "<bos><|t", 7) && small[7] == 0);
}

static void test_style_detection(void) {
    g4c_config c = {0};
    c.ple_dim = 256;
    CHECK(!g4c_chat_style_for(&c, NULL).empty_thought_channel);
    c.ple_dim = 0;
    CHECK(g4c_chat_style_for(&c, NULL).empty_thought_channel);
    g4c_chat_style s = g4c_chat_style_for(&c, "{{- '<|turn>model\\n' -}}{{- '<|think|>\\n' -}}");
    CHECK(!s.empty_thought_channel && !s.think_no_newline);
    s = g4c_chat_style_for(&c, "{{- '<|channel>thought\\n<channel|>' -}} '<|think|>' '\\n\\n<|image|>\\n\\n'");
    CHECK(s.empty_thought_channel && s.think_no_newline && s.image_newlines);
}

static void test_mask_marks_message_text(void) {
    g4c_chat_msg m[] = {USER(" <|turn>x ")};
    g4c_chat_style e = {0};
    char buf[256];
    uint8_t mask[256];
    size_t n = g4c_chat_render_masked(m, 1, &e, 1, buf, mask, sizeof buf);
    CHECK(n == strlen(buf));
    const char *user = strstr(buf, "<|turn>x");
    CHECK(user != NULL);
    for (size_t i = 0; i < n; i++) {
        const int in_user = user && buf + i >= user && buf + i < user + 8;
        CHECKF(mask[i] == !in_user, "byte %zu ('%c') mask %d", i, buf[i], mask[i]);
    }
}

int main(void) {
    RUN(test_mask_marks_message_text);
    RUN(test_single_user_turn);
    RUN(test_system_and_thinking);
    RUN(test_history_strips_thinking);
    RUN(test_images);
    RUN(test_snprintf_contract);
    RUN(test_style_detection);
    return TEST_REPORT();
}
