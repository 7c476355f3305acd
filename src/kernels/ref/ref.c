/* Scalar reference of every op: the oracle the fast paths are tested against. f64 accumulation, no threads, no
 * tricks. Spec: docs/gemma4-spec.md §2, §3.4, §3.5. */
#include <math.h>
#include <stdlib.h>

#include "kernels/ops.h"

void g4c_ref_matmul(float *y, const float *x, const g4c_wmat *w, int n) {
    float *row = malloc(sizeof(float) * (size_t)w->cols);
    G4C_ASSERT(row);
    for (int64_t r = 0; r < w->rows; r++) {
        g4c_wmat_row_f32(w, r, row);
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int64_t c = 0; c < w->cols; c++) s += (double)x[(size_t)i * w->cols + c] * row[c];
            y[(size_t)i * w->rows + r] = (float)s;
        }
    }
    free(row);
}

void g4c_ref_rms_norm(float *y, const float *x, const float *w, int n_rows, int dim, float eps) {
    for (int i = 0; i < n_rows; i++) {
        const float *xi = x + (size_t)i * dim;
        double ss = 0;
        for (int c = 0; c < dim; c++) ss += (double)xi[c] * xi[c];
        double inv = 1.0 / sqrt(ss / dim + eps);
        for (int c = 0; c < dim; c++) y[(size_t)i * dim + c] = (float)(xi[c] * inv * (w ? w[c] : 1.0));
    }
}

void g4c_ref_gelu_mul(float *y, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        double g = gate[i];
        double gl = 0.5 * g * (1.0 + tanh(0.7978845608028654 * (g + 0.044715 * g * g * g)));
        y[i] = (float)(gl * up[i]);
    }
}

void g4c_ref_rope(float *x, int n_heads, int head_dim, const float *cos, const float *sin) {
    int half = head_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (int k = 0; k < half; k++) {
            double a = v[k], b = v[k + half];
            v[k] = (float)(a * cos[k] - b * sin[k]);
            v[k + half] = (float)(b * cos[k] + a * sin[k]);
        }
    }
}

void g4c_ref_softcap(float *x, int n, float cap) {
    for (int i = 0; i < n; i++) x[i] = (float)(cap * tanh((double)x[i] / cap));
}

void g4c_ref_attention(float *out, const float *q, const g4c_kv_view *kv, int n_tok, int pos0, int n_head) {
    const int hd = kv->head_dim, group = n_head / kv->n_kv_head;
    int max_hi = pos0 + n_tok - 1;
    for (int t = 0; kv->hi && t < n_tok; t++) max_hi = kv->hi[t] > max_hi ? kv->hi[t] : max_hi;
    double *p = malloc(sizeof(double) * (size_t)(max_hi + 1));
    G4C_ASSERT(p);
    for (int t = 0; t < n_tok; t++) {
        const int pos = pos0 + t;
        const int lo = kv->window > 0 && pos - kv->window + 1 > 0 ? pos - kv->window + 1 : 0;
        const int hi = kv->hi ? kv->hi[t] : pos;
        for (int h = 0; h < n_head; h++) {
            const float *qh = q + ((size_t)t * n_head + h) * hd;
            const int kvh = h / group;
            double mx = -INFINITY, sum = 0;
            for (int j = lo; j <= hi; j++) {
                const float *kj = kv->k + ((size_t)(j % kv->cap) * kv->n_kv_head + kvh) * hd;
                double s = 0;
                for (int c = 0; c < hd; c++) s += (double)qh[c] * kj[c];
                p[j] = s;
                if (s > mx) mx = s;
            }
            for (int j = lo; j <= hi; j++) sum += (p[j] = exp(p[j] - mx));
            float *oh = out + ((size_t)t * n_head + h) * hd;
            for (int c = 0; c < hd; c++) {
                double acc = 0;
                for (int j = lo; j <= hi; j++) acc += p[j] * kv->v[((size_t)(j % kv->cap) * kv->n_kv_head + kvh) * hd + c];
                oh[c] = (float)(acc / sum);
            }
        }
    }
    free(p);
}
