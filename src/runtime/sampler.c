/* Token sampling (spec §7): penalties -> temperature -> top-k -> top-p -> min-p -> draw, with an explicit
 * xorshift64* state so a seed replays the same choices. Gemma 4 -it defaults: temperature 1.0, top_k 64,
 * top_p 0.95, no penalties. Greedy (temperature <= 0) is argmax with ties to the lowest id. */
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
    cand *c;        /* [n_vocab] candidates */
    float *work;    /* [n_vocab] penalized logits */
    int32_t *hist;  /* ring of the last penalty_last_n accepted tokens */
    int n_hist, at_hist;
};

g4c_sampler_params g4c_sampler_default_params(void) {
    return (g4c_sampler_params){.struct_size = sizeof(g4c_sampler_params), .temperature = 1.0f, .top_k = 64,
                                .top_p = 0.95f, .seed = 42, .min_p = 0.0f, .repeat_penalty = 1.0f,
                                .presence_penalty = 0.0f, .penalty_last_n = 64};
}

g4c_status g4c_sampler_init(g4c_sampler **out, const g4c_sampler_params *params, int n_vocab, g4c_err *err) {
    *out = NULL;
    if (n_vocab <= 0) return G4C_FAIL(err, G4C_E_ARG, "n_vocab %d", n_vocab);
    g4c_sampler_params p = g4c_sampler_default_params();
    if (params) memcpy(&p, params, params->struct_size < sizeof p ? params->struct_size : sizeof p);
    if (!isfinite(p.temperature) || !isfinite(p.top_p) || !isfinite(p.min_p) || !isfinite(p.repeat_penalty) ||
        !isfinite(p.presence_penalty) || p.repeat_penalty <= 0 || p.min_p < 0 || p.min_p > 1 || p.penalty_last_n < 0)
        return G4C_FAIL(err, G4C_E_ARG, "sampler: temperature, top_p, min_p in [0,1], repeat_penalty > 0 and "
                        "presence_penalty must be finite numbers");
    g4c_sampler *s = g4c_calloc(1, sizeof *s, err);
    if (!s) return G4C_E_NOMEM;
    s->p = p;
    s->n_vocab = n_vocab;
    s->rng = p.seed ? p.seed : 0x9E3779B97F4A7C15ull;
    s->c = g4c_malloc((size_t)n_vocab, sizeof *s->c, err);
    s->work = g4c_malloc((size_t)n_vocab, sizeof(float), err);
    s->hist = g4c_malloc((size_t)(p.penalty_last_n ? p.penalty_last_n : 1), sizeof(int32_t), err);
    if (!s->c || !s->work || !s->hist) {
        g4c_sampler_free(s);
        return G4C_E_NOMEM;
    }
    *out = s;
    return G4C_OK;
}

void g4c_sampler_free(g4c_sampler *s) {
    if (!s) return;
    free(s->c);
    free(s->work);
    free(s->hist);
    free(s);
}

void g4c_sampler_accept(g4c_sampler *s, int32_t token) {
    if (!s->p.penalty_last_n) return;
    s->hist[s->at_hist] = token;
    s->at_hist = (s->at_hist + 1) % s->p.penalty_last_n;
    if (s->n_hist < s->p.penalty_last_n) s->n_hist++;
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

int32_t g4c_argmax(const float *x, int n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static int has_penalties(const g4c_sampler *s) {
    return s->p.penalty_last_n && (s->p.repeat_penalty != 1.0f || s->p.presence_penalty != 0.0f);
}

int g4c_sampler_is_greedy(const g4c_sampler *s) { return s->p.temperature <= 0 && !has_penalties(s); }

/* The steps after the candidates: s->c[0..n) hold (logit, id); probabilities against the best logit and the sum over
 * the whole vocabulary, then top-p, min-p and the draw. */
static int32_t sample_from(g4c_sampler *s, int n, float best_logit, float sum) {
    for (int i = 0; i < n; i++) s->c[i].p = expf((s->c[i].p - best_logit) / s->p.temperature) / sum;
    qsort(s->c, (size_t)n, sizeof *s->c, by_prob_desc);
    if (s->p.top_p < 1.0f) {
        float mass = 0, acc = 0;
        for (int i = 0; i < n; i++) mass += s->c[i].p;
        for (int i = 0; i < n; i++) {
            acc += s->c[i].p / mass;
            if (acc >= s->p.top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (s->p.min_p > 0)
        for (int i = 1; i < n; i++)
            if (s->c[i].p < s->p.min_p * s->c[0].p) {
                n = i;
                break;
            }
    float mass = 0;
    for (int i = 0; i < n; i++) mass += s->c[i].p;
    float r = (float)((xorshift(&s->rng) >> 40) * 0x1p-24) * mass;
    float acc = 0;
    for (int i = 0; i < n; i++) {
        acc += s->c[i].p;
        if (r < acc) return s->c[i].id;
    }
    return s->c[n - 1].id;
}

int g4c_sampler_topk(const g4c_sampler *s) {
    if (has_penalties(s) || s->p.temperature <= 0 || s->p.top_k <= 0) return 0;
    return s->p.top_k < s->n_vocab ? s->p.top_k : s->n_vocab;
}

float g4c_sampler_temperature(const g4c_sampler *s) { return s->p.temperature; }

int32_t g4c_sampler_sample_topk(g4c_sampler *s, const float *logit, const int32_t *id, int n, float best_logit,
                                float sum) {
    if (n < 1) return 0;
    for (int i = 0; i < n; i++) s->c[i] = (cand){logit[i], id[i]};
    return sample_from(s, n, best_logit, sum);
}

int32_t g4c_sampler_sample(g4c_sampler *s, const float *logits) {
    const int V = s->n_vocab;
    const float *lg = logits;
    if (s->n_hist && (s->p.repeat_penalty != 1.0f || s->p.presence_penalty != 0.0f)) {
        memcpy(s->work, logits, sizeof(float) * (size_t)V);
        for (int i = 0; i < s->n_hist; i++) {
            const int32_t t = s->hist[i];
            if (t < 0 || t >= V) continue;
            int first = 1; /* each distinct token is penalized once */
            for (int j = 0; j < i; j++) first &= s->hist[j] != t;
            if (!first) continue;
            float *v = &s->work[t];
            *v = *v > 0 ? *v / s->p.repeat_penalty : *v * s->p.repeat_penalty;
            *v -= s->p.presence_penalty;
        }
        lg = s->work;
    }
    const int best = g4c_argmax(lg, V);
    if (s->p.temperature <= 0) return best;
    float sum = 0;
    for (int i = 0; i < V; i++) sum += expf((lg[i] - lg[best]) / s->p.temperature);
    /* candidates: with top-k, the k best logits via a min-heap (O(V log k), not a full sort of 262144) */
    int n = V;
    if (s->p.top_k > 0 && s->p.top_k < V) {
        const int k = s->p.top_k;
        n = 0;
        for (int i = 0; i < V; i++) {
            if (n < k) {
                int j = n++;
                s->c[j] = (cand){lg[i], i};
                while (j > 0 && by_prob_desc(&s->c[(j - 1) / 2], &s->c[j]) < 0) { /* parent better -> swap up */
                    cand t = s->c[j];
                    s->c[j] = s->c[(j - 1) / 2];
                    s->c[(j - 1) / 2] = t;
                    j = (j - 1) / 2;
                }
            } else if (lg[i] > s->c[0].p) { /* beats the worst kept: replace the root, sift down */
                s->c[0] = (cand){lg[i], i};
                for (int j = 0;;) {
                    int a = 2 * j + 1, b = a + 1, w = j;
                    if (a < n && by_prob_desc(&s->c[a], &s->c[w]) > 0) w = a;
                    if (b < n && by_prob_desc(&s->c[b], &s->c[w]) > 0) w = b;
                    if (w == j) break;
                    cand t = s->c[j];
                    s->c[j] = s->c[w];
                    s->c[w] = t;
                    j = w;
                }
            }
        }
    } else {
        for (int i = 0; i < V; i++) s->c[i] = (cand){lg[i], i};
    }
    return sample_from(s, n, lg[best], sum);
}
