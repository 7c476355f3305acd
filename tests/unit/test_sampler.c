/* Sampling and stop strings (issue 4): seeded determinism, greedy ties, top-k / top-p / min-p truncation and the
 * penalties on hand-made distributions, and stop strings that span token boundaries. */
#include "runtime/runtime.h"
#include "test.h"

enum { V = 8 };

/* logits whose softmax is exactly probs (log-probabilities) */
static void logits_of(float *lg, const double *probs) {
    for (int i = 0; i < V; i++) lg[i] = probs[i] > 0 ? (float)log(probs[i]) : -1e30f;
}

/* empirical distribution over n draws */
static void histogram(const g4c_sampler_params *p, const float *lg, int n, double *freq) {
    g4c_sampler *s;
    CHECK(g4c_sampler_init(&s, p, V, NULL) == G4C_OK);
    for (int i = 0; i < V; i++) freq[i] = 0;
    for (int i = 0; i < n; i++) freq[g4c_sampler_sample(s, lg)] += 1.0 / n;
    g4c_sampler_free(s);
}

static const double probs[V] = {0.4, 0.25, 0.15, 0.1, 0.05, 0.03, 0.015, 0.005};

static void test_greedy_and_ties(void) {
    g4c_sampler_params p = g4c_sampler_default_params();
    p.temperature = 0;
    g4c_sampler *s;
    CHECK(g4c_sampler_init(&s, &p, V, NULL) == G4C_OK);
    float lg[V] = {1, 3, 3, 2, 0, 0, 0, 0};
    CHECK(g4c_sampler_sample(s, lg) == 1); /* tie -> lowest id */
    g4c_sampler_free(s);
}

static void test_seed_determinism(void) {
    float lg[V];
    logits_of(lg, probs);
    g4c_sampler_params p = g4c_sampler_default_params();
    p.seed = 1234;
    int32_t a[200], b[200], c[200];
    g4c_sampler *s;
    for (int run = 0; run < 3; run++) {
        if (run == 2) p.seed = 99;
        CHECK(g4c_sampler_init(&s, &p, V, NULL) == G4C_OK);
        for (int i = 0; i < 200; i++) (run == 0 ? a : run == 1 ? b : c)[i] = g4c_sampler_sample(s, lg);
        g4c_sampler_free(s);
    }
    CHECK(!memcmp(a, b, sizeof a));
    CHECK(memcmp(a, c, sizeof a) != 0);
}

static void test_truncation(void) {
    float lg[V];
    logits_of(lg, probs);
    double f[V];
    g4c_sampler_params p = g4c_sampler_default_params();
    p.top_p = 1.0f;
    p.top_k = 2; /* only the two most likely, renormalized: 0.4/0.65, 0.25/0.65 */
    histogram(&p, lg, 20000, f);
    CHECK(f[2] == 0 && f[7] == 0);
    CHECKF(fabs(f[0] - 0.4 / 0.65) < 0.02, "top-k f0 %.3f", f[0]);
    p.top_k = 0;
    p.top_p = 0.8f; /* 0.4 + 0.25 + 0.15 = 0.8 reaches p: three tokens */
    histogram(&p, lg, 20000, f);
    CHECK(f[3] == 0 && f[2] > 0.1);
    p.top_p = 1.0f;
    p.min_p = 0.3f; /* keep p >= 0.3 x 0.4 = 0.12: ids 0, 1, 2 */
    histogram(&p, lg, 20000, f);
    CHECK(f[3] == 0 && f[2] > 0.1);
    p.min_p = 0;
    p.temperature = 1.0f; /* untruncated: matches the distribution */
    histogram(&p, lg, 40000, f);
    for (int i = 0; i < V; i++) CHECKF(fabs(f[i] - probs[i]) < 0.01, "id %d: %.3f vs %.3f", i, f[i], probs[i]);
}

static void test_penalties(void) {
    float lg[V] = {2.0f, 1.9f, -1, -1, -1, -1, -1, -1};
    g4c_sampler_params p = g4c_sampler_default_params();
    p.temperature = 0;
    p.repeat_penalty = 1.5f;
    g4c_sampler *s;
    CHECK(g4c_sampler_init(&s, &p, V, NULL) == G4C_OK);
    CHECK(g4c_sampler_sample(s, lg) == 0);
    g4c_sampler_accept(s, 0); /* 2.0 / 1.5 < 1.9 */
    CHECK(g4c_sampler_sample(s, lg) == 1);
    CHECK(lg[0] == 2.0f); /* the caller's logits are untouched */
    g4c_sampler_free(s);
    p.repeat_penalty = 1.0f;
    p.presence_penalty = 0.5f;
    CHECK(g4c_sampler_init(&s, &p, V, NULL) == G4C_OK);
    g4c_sampler_accept(s, 0);
    g4c_sampler_accept(s, 0); /* counted once */
    CHECK(g4c_sampler_sample(s, lg) == 1);
    g4c_sampler_free(s);
    p.presence_penalty = 0.0f;
    p.min_p = 2.0f;
    CHECK(g4c_sampler_init(&s, &p, V, NULL) == G4C_E_ARG);
}

typedef struct {
    char out[256];
    size_t n;
} sink;
static void collect(void *user, const char *t, size_t len) {
    sink *k = user;
    memcpy(k->out + k->n, t, len);
    k->n += len;
    k->out[k->n] = 0;
}

/* The GPU's path (g4c_sampler_sample_topk: the k best logits, the largest and the vocabulary's exp-sum computed
 * elsewhere) draws what g4c_sampler_sample draws from the full logits, step for step with the same seed; and
 * g4c_sampler_topk says when that holds (no penalties, temperature > 0, top_k > 0). */
static void test_topk_candidates(void) {
    enum { N = 3000 };
    float *lg = malloc(sizeof(float) * N);
    uint64_t r = 77;
    for (int i = 0; i < N; i++) lg[i] = (float)((r = r * 6364136223846793005ull + 1) >> 40) / 16777216.f * 12.f;
    lg[10] = lg[20] = 13.f; /* a tie at the top */
    const float temps[2] = {1.0f, 0.6f};
    const float top_ps[2] = {0.95f, 1.0f};
    for (int c = 0; c < 2; c++) {
        g4c_sampler_params p = g4c_sampler_default_params();
        p.temperature = temps[c], p.top_p = top_ps[c], p.top_k = 40, p.min_p = c ? 0.05f : 0.f, p.seed = 99 + c;
        g4c_sampler *a, *b;
        CHECK(g4c_sampler_init(&a, &p, N, NULL) == G4C_OK && g4c_sampler_init(&b, &p, N, NULL) == G4C_OK);
        CHECK(g4c_sampler_topk(a) == 40);
        /* the candidates as a device would give them: the 40 best by value (ties to the lower id), in any order */
        int ids[N];
        for (int i = 0; i < N; i++) ids[i] = i;
        for (int i = 0; i < 40; i++)
            for (int j = i + 1; j < N; j++)
                if (lg[ids[j]] > lg[ids[i]] || (lg[ids[j]] == lg[ids[i]] && ids[j] < ids[i])) {
                    const int t = ids[i];
                    ids[i] = ids[j], ids[j] = t;
                }
        float cv[40];
        int32_t ci[40];
        for (int i = 0; i < 40; i++) cv[39 - i] = lg[ids[i]], ci[39 - i] = ids[i]; /* reversed: order does not matter */
        double sum = 0;
        for (int i = 0; i < N; i++) sum += exp((lg[i] - lg[ids[0]]) / temps[c]);
        int same = 1;
        for (int step = 0; step < 500; step++)
            same &= g4c_sampler_sample(a, lg) == g4c_sampler_sample_topk(b, cv, ci, 40, lg[ids[0]], (float)sum);
        CHECK(same);
        g4c_sampler_free(a), g4c_sampler_free(b);
    }
    g4c_sampler_params p = g4c_sampler_default_params();
    g4c_sampler *s;
    p.repeat_penalty = 1.1f; /* penalties change the logits: the full path */
    CHECK(g4c_sampler_init(&s, &p, N, NULL) == G4C_OK && g4c_sampler_topk(s) == 0);
    g4c_sampler_free(s);
    p = g4c_sampler_default_params(), p.top_k = 0; /* no top-k: every logit is a candidate */
    CHECK(g4c_sampler_init(&s, &p, N, NULL) == G4C_OK && g4c_sampler_topk(s) == 0);
    g4c_sampler_free(s);
    p = g4c_sampler_default_params(), p.temperature = 0;
    CHECK(g4c_sampler_init(&s, &p, N, NULL) == G4C_OK && g4c_sampler_topk(s) == 0);
    g4c_sampler_free(s);
    free(lg);
}

static void test_stop_strings_across_tokens(void) {
    const char *stops[] = {"STOP", "\n\nUser:"};
    const char *pieces[] = {"Hello", " wor", "ld\n", "\nUs", "er:", " never"};
    sink k = {{0}, 0};
    g4c_stop_filter f = {.stop = stops, .n_stop = 2, .emit = collect, .user = &k};
    int hit = 0, at = -1;
    for (int i = 0; i < 6 && !hit; i++)
        if ((hit = g4c_stop_filter_push(&f, pieces[i], strlen(pieces[i])))) at = i;
    g4c_stop_filter_finish(&f);
    CHECK(hit && at == 4);
    CHECKF(!strcmp(k.out, "Hello world"), "got '%s'", k.out); /* the held "\n" before the stop never shows */
    /* a partial match that turns out not to be a stop string is released */
    sink k2 = {{0}, 0};
    g4c_stop_filter f2 = {.stop = stops, .n_stop = 2, .emit = collect, .user = &k2};
    CHECK(!g4c_stop_filter_push(&f2, "ST", 2));
    CHECK(k2.n == 0);
    CHECK(!g4c_stop_filter_push(&f2, "OOP", 3));
    CHECK(!strcmp(k2.out, "STOOP"));
    CHECK(!g4c_stop_filter_push(&f2, "ST", 2));
    g4c_stop_filter_finish(&f2); /* end of text: held text is released */
    CHECK(!strcmp(k2.out, "STOOPST"));
    /* the stop string inside one piece */
    sink k3 = {{0}, 0};
    g4c_stop_filter f3 = {.stop = stops, .n_stop = 2, .emit = collect, .user = &k3};
    CHECK(g4c_stop_filter_push(&f3, "abcSTOPdef", 10));
    g4c_stop_filter_finish(&f3);
    CHECK(!strcmp(k3.out, "abc"));
}

int main(void) {
    RUN(test_greedy_and_ties);
    RUN(test_seed_determinism);
    RUN(test_truncation);
    RUN(test_penalties);
    RUN(test_stop_strings_across_tokens);
    RUN(test_topk_candidates);
    return TEST_REPORT();
}
