/* Token sampling (spec §7): greedy, or temperature -> top-k -> top-p -> draw, with an explicit xorshift64* state so
 * a seed replays the same choices. Gemma 4 -it defaults: temperature 1.0, top_k 64, top_p 0.95. */
#include <math.h>
#include <stdlib.h>

#include "runtime/runtime.h"

typedef struct {
    float p;
    int id;
} cand;

struct g4c_sampler {
    g4c_sampler_params p;
    int n_vocab;
    uint64_t rng;
    cand *c;     /* [n_vocab] candidates */
};

g4c_sampler_params g4c_sampler_default_params(void) {
    return (g4c_sampler_params){.struct_size = sizeof(g4c_sampler_params), .temperature = 1.0f, .top_k = 64,
                                .top_p = 0.95f, .seed = 42};
}

g4c_status g4c_sampler_init(g4c_sampler **out, const g4c_sampler_params *params, int n_vocab, g4c_err *err) {
    *out = NULL;
    if (n_vocab <= 0) return G4C_FAIL(err, G4C_E_ARG, "n_vocab %d", n_vocab);
    g4c_sampler *s = g4c_calloc(1, sizeof *s, err);
    if (!s) return G4C_E_NOMEM;
    s->p = g4c_sampler_default_params();
    if (params) memcpy(&s->p, params, params->struct_size < sizeof s->p ? params->struct_size : sizeof s->p);
    if (!isfinite(s->p.temperature) || !isfinite(s->p.top_p)) {
        free(s);
        return G4C_FAIL(err, G4C_E_ARG, "temperature and top_p must be finite");
    }
    s->n_vocab = n_vocab;
    s->rng = s->p.seed ? s->p.seed : 0x9E3779B97F4A7C15ull;
    s->c = g4c_malloc((size_t)n_vocab, sizeof *s->c, err);
    if (!s->c) {
        g4c_sampler_free(s);
        return G4C_E_NOMEM;
    }
    *out = s;
    return G4C_OK;
}

void g4c_sampler_free(g4c_sampler *s) {
    if (!s) return;
    free(s->c);
    free(s);
}

static uint64_t xorshift(uint64_t *st) {
    uint64_t x = *st;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *st = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static int by_prob_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id - y->id;
}

int32_t g4c_sampler_sample(g4c_sampler *s, const float *logits) {
    const int V = s->n_vocab;
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (s->p.temperature <= 0) return best;
    /* softmax(logits / T), candidates sorted by probability (ties: lower id first) */
    float sum = 0;
    for (int i = 0; i < V; i++) {
        s->c[i].id = i;
        sum += (s->c[i].p = expf((logits[i] - logits[best]) / s->p.temperature));
    }
    for (int i = 0; i < V; i++) s->c[i].p /= sum;
    qsort(s->c, (size_t)V, sizeof *s->c, by_prob_desc);
    int n = V;
    if (s->p.top_k > 0 && s->p.top_k < n) n = s->p.top_k;
    float mass = 0;
    for (int i = 0; i < n; i++) mass += s->c[i].p;
    if (s->p.top_p < 1.0f) {
        float acc = 0;
        for (int i = 0; i < n; i++) {
            acc += s->c[i].p / mass;
            if (acc >= s->p.top_p) {
                n = i + 1;
                break;
            }
        }
        mass = 0;
        for (int i = 0; i < n; i++) mass += s->c[i].p;
    }
    float r = (float)((xorshift(&s->rng) >> 40) * 0x1p-24) * mass;
    float acc = 0;
    for (int i = 0; i < n; i++) {
        acc += s->c[i].p;
        if (r < acc) return s->c[i].id;
    }
    return s->c[n - 1].id;
}
