/* CUDA backend benchmark (issue 9, docs/CUDA.md): prefill (pp) and decode (tg) tokens/s of the text decoder on
 * the GPU, next to the card's two ceilings (device-to-device copy bandwidth, bf16 GEMM rate) and a GEMV kernel vs
 * cuBLAS comparison at the real matrix shapes.
 *   bench_cuda --ceilings [--attention]                   copy bandwidth, GEMM rate, GEMV vs cuBLAS [attention kernels]
 *   bench_cuda --model DIR [--pp 512] [--tg 128]          a checkpoint (e.g. from gemma4c synth), public API, device=cuda
 *   bench_cuda --random e4b|26b-a4b|31b [--type T] [--pp N] [--tg N] [--image N] [--profile N] [--profile-pp]
 *                                    the real shapes with random weights made on the GPU (no checkpoint, no disk: 31B
 *                                    bf16 needs 62 GB of GPU memory); T = bf16 (default) or q4_0, q8_0, q4_k, q5_k,
 *                                    q6_k (embedding/head Q6_K, router bf16, as `gemma4c quantize --type q4_0`)
 *   bench_cuda --qgemv                the quantized decode GEMV at the real shapes
 * tg follows llama-bench: tg tokens decoded one at a time from an empty context (greedy on the host logits). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_trace.h"
#include "kernels/cuda/cuda_backend.h"
#include "runtime/runtime.h"

typedef struct {
    const char *name;
    int H, L, n_head, n_kv, n_kv_full, hd, hd_full, ffn, window, n_kv_shared, ple, full_every;
    int k_eq_v, double_wide, n_expert, top_k, moe_ffn, bidir;
} preset; /* src/cli/cmd_synth.c's presets (spec §1.1) */

static const preset presets[] = {
    {"e4b", 2560, 42, 8, 2, 2, 256, 512, 10240, 512, 18, 256, 6, 0, 0, 0, 0, 0, 0},
    {"26b-a4b", 2816, 30, 16, 8, 2, 256, 512, 2112, 1024, 0, 0, 6, 1, 0, 128, 8, 704, 1},
    {"31b", 5376, 60, 32, 16, 4, 256, 512, 21504, 1024, 0, 0, 6, 1, 0, 0, 0, 0, 1},
};

static int layer_full(const preset *p, int i) { return (i + 1) % p->full_every == 0 || i == p->L - 1; }

static cJSON *preset_config(const preset *p) {
    char buf[16384];
    int o = snprintf(buf, sizeof buf,
                     "{\"architectures\":[\"Gemma4ForCausalLM\"],\"model_type\":\"gemma4_text\",\"attention_k_eq_v\":%s,"
                     "\"enable_moe_block\":%s,\"final_logit_softcapping\":30.0,\"head_dim\":%d,\"hidden_size\":%d,"
                     "\"hidden_size_per_layer_input\":%d,\"intermediate_size\":%d,\"max_position_embeddings\":131072,"
                     "\"moe_intermediate_size\":%d,\"num_attention_heads\":%d,\"num_experts\":%d,"
                     "\"num_hidden_layers\":%d,\"num_key_value_heads\":%d,\"num_kv_shared_layers\":%d,"
                     "\"rms_norm_eps\":1e-06,\"sliding_window\":%d,\"tie_word_embeddings\":true,\"top_k_experts\":%d,"
                     "\"use_bidirectional_attention\":%s,\"use_double_wide_mlp\":%s,\"vocab_size\":262144,"
                     "\"vocab_size_per_layer_input\":262144,\"bos_token_id\":2,\"eos_token_id\":1,\"pad_token_id\":0,"
                     "\"rope_parameters\":{\"full_attention\":{\"partial_rotary_factor\":0.25,\"rope_theta\":1000000.0,"
                     "\"rope_type\":\"proportional\"},\"sliding_attention\":{\"rope_theta\":10000.0,\"rope_type\":\"default\"}},"
                     "\"layer_types\":[",
                     p->k_eq_v ? "true" : "false", p->n_expert ? "true" : "false", p->hd, p->H, p->ple, p->ffn,
                     p->moe_ffn, p->n_head, p->n_expert, p->L, p->n_kv, p->n_kv_shared, p->window, p->top_k,
                     p->bidir ? "\"vision\"" : "null", p->double_wide ? "true" : "false");
    for (int i = 0; i < p->L; i++)
        o += snprintf(buf + o, sizeof buf - o, "%s\"%s\"", i ? "," : "", layer_full(p, i) ? "full_attention" : "sliding_attention");
    o += snprintf(buf + o, sizeof buf - o, "],\"per_layer_config\":{");
    for (int i = 0, first = 1; i < p->L; i++)
        if (layer_full(p, i)) {
            o += snprintf(buf + o, sizeof buf - o, "%s\"%d\":{\"head_dim\":%d,\"num_key_value_heads\":%d}", first ? "" : ",",
                          i, p->hd_full, p->n_kv_full);
            first = 0;
        }
    snprintf(buf + o, sizeof buf - o, "}}");
    return cJSON_Parse(buf);
}

/* --type: the bulk of the matrices' type (bf16 or a GPU quant type); quantized presets keep the embedding / tied
 * head in Q6_K and the MoE router in bf16, like `gemma4c quantize --type q4_0` (token_embd Q6_K, router F32). */
static g4c_dtype g_type = G4C_DTYPE_BF16;

static g4c_wmat rnd_mat_t(int64_t rows, int64_t cols, g4c_dtype t) {
    return (g4c_wmat){.dtype = t, .data = NULL, .rows = rows, .cols = cols};
}
static g4c_wmat rnd_mat(int64_t rows, int64_t cols) { return rnd_mat_t(rows, cols, g_type); }

/* Weights with no data: g4c_cuda_model_upload fills them with random values on the device. */
static int random_weights(g4c_weights *w, const g4c_config *c) {
    memset(w, 0, sizeof *w);
    const int64_t H = c->n_embd, V = c->n_vocab, P = c->ple_dim, L = c->n_layer;
    w->embed = w->lm_head = rnd_mat_t(V, H, g_type == G4C_DTYPE_BF16 ? G4C_DTYPE_BF16 : G4C_DTYPE_Q6_K);
    if (P) {
        w->ple_embed = rnd_mat_t(c->ple_vocab, L * P, G4C_DTYPE_BF16); /* stays in host memory (zeros here) */
        w->ple_model_proj = rnd_mat(L * P, H);
    }
    w->layers = calloc((size_t)L, sizeof *w->layers);
    if (!w->layers) return 0;
    for (int i = 0; i < L; i++) {
        const g4c_layer_cfg *lc = &c->layers[i];
        g4c_layer_w *l = &w->layers[i];
        const int64_t qd = (int64_t)c->n_head * lc->head_dim, kvd = (int64_t)lc->n_kv_head * lc->head_dim;
        l->q = rnd_mat(qd, H);
        l->o = rnd_mat(H, qd);
        if (lc->kv_slot >= 0) {
            l->k = rnd_mat(kvd, H);
            if (!lc->k_eq_v) l->v = rnd_mat(kvd, H);
        }
        l->gate = rnd_mat(lc->ffn_dim, H);
        l->up = rnd_mat(lc->ffn_dim, H);
        l->down = rnd_mat(H, lc->ffn_dim);
        if (c->moe) {
            l->router = rnd_mat_t(c->n_expert, H, G4C_DTYPE_BF16);
            l->exp_gate_up = rnd_mat((int64_t)c->n_expert * 2 * c->moe_ffn_dim, H);
            l->exp_down = rnd_mat((int64_t)c->n_expert * H, c->moe_ffn_dim);
        }
        if (P) {
            l->ple_gate = rnd_mat(P, H);
            l->ple_proj = rnd_mat(H, P);
        }
        l->layer_scalar = 1.0f;
    }
    return 1;
}

/* ---- timing through a forward function (internal state or public session) ---- */

typedef struct {
    g4c_session *sess;     /* --model */
    g4c_cuda_text *text;   /* --random */
    int n_past, V;
    float *logits;
} runner;

static int eval(runner *r, const int32_t *toks, int n) {
    g4c_err err = {0};
    g4c_status st;
    if (r->sess) st = g4c_session_eval(r->sess, toks, n, r->logits, G4C_LOGITS_LAST, &err);
    else st = g4c_cuda_text_forward(r->text, toks, NULL, n, r->n_past, 0, r->logits, 0, &err);
    if (st != G4C_OK) {
        fprintf(stderr, "bench_cuda: forward failed: %s\n", err.msg);
        return 0;
    }
    r->n_past += n;
    return 1;
}
static void reset(runner *r) {
    r->n_past = 0;
    if (r->sess) g4c_session_reset(r->sess);
}
static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}
static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run_bench(runner *r, int pp, int tg, size_t per_token, double bw) {
    int32_t *toks = malloc(sizeof(int32_t) * (pp > 16 ? pp : 16));
    uint64_t s = 12345;
    for (int i = 0; i < (pp > 16 ? pp : 16); i++) toks[i] = (int32_t)(3 + (s = s * 6364136223846793005ull + 1) % 200000);
    /* warm-up: module load, cuBLAS heuristics for both paths */
    reset(r);
    if (!eval(r, toks, 16) || !eval(r, toks, 1)) return 0;
    const char *modes[2] = {"split", "bf16"};
    for (int mode = 0; mode < 2 && pp > 0; mode++) {
        g4c_cuda_set_prefill_mode(mode);
        double t[3];
        for (int k = 0; k < 3; k++) {
            reset(r);
            const double t0 = g4c_time_ms();
            if (!eval(r, toks, pp)) return 0;
            t[k] = g4c_time_ms() - t0;
        }
        qsort(t, 3, sizeof *t, cmp_d);
        printf("pp%-4d prefill mode %-5s  %8.1f tok/s   (%.1f ms, median of 3)\n", pp, modes[mode], pp / t[1] * 1e3, t[1]);
    }
    g4c_cuda_set_prefill_mode(G4C_CUDA_PREFILL_AUTO);
    /* runs 1-2: logits to the host, argmax there; runs 3-4 (--random): greedy on the device, only the token crosses */
    for (int k = 0; k < (r->text ? 4 : 2) && tg > 0; k++) {
        reset(r);
        int32_t tok = 2;
        const double t0 = g4c_time_ms();
        for (int i = 0; i < tg; i++) {
            if (k >= 2) {
                g4c_err err = {0};
                int32_t next = 0;
                if (g4c_cuda_text_forward_greedy(r->text, &tok, NULL, 1, r->n_past, 0, &next, NULL, &err) != G4C_OK) {
                    fprintf(stderr, "bench_cuda: forward failed: %s\n", err.msg);
                    return 0;
                }
                r->n_past++;
                tok = next;
                continue;
            }
            if (!eval(r, &tok, 1)) return 0;
            tok = argmax(r->logits, r->V);
        }
        const double ms = g4c_time_ms() - t0, tps = tg / ms * 1e3;
        const double floor_tps = bw * 1e9 / (double)per_token;
        printf("tg%-4d run %d %-11s %8.1f tok/s   (%.3f ms/token; floor %.3f ms = %.1f tok/s from %.2f GB/token at %.0f "
               "GB/s: %.0f%% of it)\n",
               tg, k + 1, k >= 2 ? "gpu-argmax" : "host-argmax", tps, ms / tg, 1e3 / floor_tps, floor_tps,
               per_token / 1e9, bw, 100.0 * tps / floor_tps);
    }
    free(toks);
    return 1;
}

/* --image N (with --random): the preset's vision tower (spec §1.3: E models 768 wide x 16 layers, 12 heads of 64,
 * clipped linears; large models 1152 x 27, 16 heads of 72, standardized) with random bf16 weights, one image of N
 * soft tokens (9N patches, the grid as close to square as N allows), timed through g4c_cuda_vision_encode. */
static int vision_bench(g4c_cuda_model *cm, g4c_config *cfg, const char *preset_name, int n_soft, double gemm_tflops,
                        int profile) {
    const int large = strcmp(preset_name, "e4b") != 0;
    g4c_vision_cfg *v = &cfg->vision;
    *v = (g4c_vision_cfg){.present = 1, .n_embd = large ? 1152 : 768, .n_layer = large ? 27 : 16,
                          .n_head = large ? 16 : 12, .head_dim = large ? 72 : 64, .ffn_dim = large ? 4304 : 3072,
                          .patch_size = 16, .pool = 3, .n_pos = 10240, .clipped_linears = !large,
                          .standardize = large, .eps = 1e-6f, .rope_theta = 100.f};
    const int Hv = v->n_embd, qd = v->n_head * v->head_dim, F = v->ffn_dim, P = 768;
    g4c_vision_w w = {0};
    w.patch_proj = rnd_mat_t(Hv, P, G4C_DTYPE_BF16);
    w.mm_proj = rnd_mat_t(cfg->n_embd, Hv, G4C_DTYPE_BF16);
    w.layers = calloc((size_t)v->n_layer, sizeof *w.layers);
    if (!w.layers) return 0;
    for (int i = 0; i < v->n_layer; i++) {
        g4c_vlayer_w *l = &w.layers[i];
        g4c_clip_linear *ls[7] = {&l->q, &l->k, &l->v, &l->o, &l->gate, &l->up, &l->down};
        const int rows[7] = {qd, qd, qd, Hv, F, F, Hv}, cols[7] = {Hv, Hv, Hv, qd, Hv, Hv, F};
        for (int k = 0; k < 7; k++) {
            ls[k]->w = rnd_mat_t(rows[k], cols[k], G4C_DTYPE_BF16);
            /* E models clip every linear: finite bounds wide enough not to bite, so the clamps run */
            ls[k]->clip[0] = ls[k]->clip[2] = large ? -INFINITY : -1e6f;
            ls[k]->clip[1] = ls[k]->clip[3] = large ? INFINITY : 1e6f;
        }
    }
    /* the grid: 3a x 3b patches, a·b = n_soft, a the largest divisor <= sqrt */
    int a = 1;
    for (int d = 1; d * d <= n_soft; d++)
        if (n_soft % d == 0) a = d;
    const int pw = 3 * a, ph = 3 * (n_soft / a), n = pw * ph;
    float *patches = malloc(sizeof(float) * (size_t)n * P), *out = malloc(sizeof(float) * (size_t)n_soft * cfg->n_embd);
    int32_t *pos = malloc(sizeof(int32_t) * 2 * (size_t)n);
    if (!patches || !out || !pos) return 0;
    uint64_t s = 7;
    for (size_t i = 0; i < (size_t)n * P; i++) patches[i] = (float)((s = s * 6364136223846793005ull + 1) >> 40) / 16777216.f;
    for (int i = 0; i < n; i++) pos[2 * i] = i % pw, pos[2 * i + 1] = i / pw;
    /* MACs: patch embedding, per layer q/k/v/o + gate/up/down + attention (QKᵀ and PV), projector */
    const double macs = (double)n * P * Hv +
                        v->n_layer * ((double)n * (4.0 * Hv * qd + 3.0 * Hv * F) + 2.0 * (double)n * n * qd) +
                        (double)n_soft * Hv * cfg->n_embd;
    const char *modes[2] = {"split", "bf16"};
    int ok = 1;
    for (int mode = 0; mode < 2 && ok; mode++) {
        g4c_cuda_set_prefill_mode(mode);
        g4c_err err = {0};
        double t[5];
        for (int k = -1; k < 5 && ok; k++) { /* k = -1: upload and warm-up */
            const double t0 = g4c_time_ms();
            if (g4c_cuda_vision_encode(cm, &w, patches, pos, n, out, &err) != G4C_OK) {
                fprintf(stderr, "bench_cuda: image: %s\n", err.msg);
                ok = 0;
            }
            if (k >= 0) t[k] = g4c_time_ms() - t0;
        }
        if (!ok) break;
        qsort(t, 5, sizeof *t, cmp_d);
        printf("image %d soft tokens (%dx%d patches), mode %-5s %7.2f ms (median of 5; %.0f GFLOP = %.0f TFLOP/s, %.0f%% "
               "of the %.0f TFLOP/s bf16 GEMM rate)\n",
               n_soft, pw, ph, modes[mode], t[2], 2 * macs / 1e9, 2 * macs / t[2] / 1e9,
               100.0 * 2 * macs / t[2] / 1e9 / gemm_tflops, gemm_tflops);
    }
    if (ok && profile) { /* --profile-pp: the kernels of one encode in the bf16 mode */
        g4c_cuda_set_prefill_mode(G4C_CUDA_PREFILL_BF16);
        g4c_err err = {0};
        ok = !kernel_trace_start() && g4c_cuda_vision_encode(cm, &w, patches, pos, n, out, &err) == G4C_OK;
        if (ok) {
            printf("\nkernels of one image encode, mode bf16 (CUPTI activity records):\n");
            kernel_trace_report(stdout, 1, 0, 1);
        }
    }
    g4c_cuda_set_prefill_mode(G4C_CUDA_PREFILL_AUTO);
    free(patches), free(out), free(pos), free(w.layers);
    return ok;
}

/* --profile N (with --random): N more tokens greedy on the device, their kernels recorded through CUPTI and
 * summarized (kernel_trace.h), also inside the profiler's capture range (ncu --profile-from-start off). */
static int profile_decode(runner *r, int n, size_t per_token, double bw) {
    int32_t tok = 2, next = 0;
    g4c_err err = {0};
    for (int i = 0; i < n + 2; i++, r->n_past++, tok = next) {
        if (i == 2) { /* after two tokens: the greedy decode graph exists */
            g4c_cuda_profiler(1);
            if (kernel_trace_start()) return 0;
        }
        if (g4c_cuda_text_forward_greedy(r->text, &tok, NULL, 1, r->n_past, 0, &next, NULL, &err) != G4C_OK) {
            fprintf(stderr, "bench_cuda: forward failed: %s\n", err.msg);
            return 0;
        }
    }
    g4c_cuda_profiler(0);
    printf("\nkernels of %d decoded tokens (greedy on the device, CUPTI activity records):\n", n);
    kernel_trace_report(stdout, n, (double)per_token, bw);
    return 1;
}

/* --profile-pp (with --random): one --pp-token prefill (default prefill mode) with its kernels recorded through
 * CUPTI and summarized per forward (the "gemv" floor line does not apply: prefill reads each weight once); with
 * --image N also one image encode in the bf16 mode. */
static int profile_prefill(runner *r, int n) {
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)n);
    uint64_t s = 777;
    for (int i = 0; i < n; i++) toks[i] = (int32_t)(3 + (s = s * 6364136223846793005ull + 1) % 200000);
    reset(r);
    int ok = eval(r, toks, n); /* warm-up at this size */
    reset(r);
    if (ok && kernel_trace_start()) ok = 0;
    const double t0 = g4c_time_ms();
    if (ok) ok = eval(r, toks, n);
    const double ms = g4c_time_ms() - t0;
    if (ok) {
        printf("\nkernels of one %d-token prefill (%.1f ms wall, %.0f tok/s; CUPTI activity records):\n", n, ms,
               n / ms * 1e3);
        kernel_trace_report(stdout, 1, 0, 1);
    }
    free(toks);
    return ok;
}

static void ceilings(double *bw) {
    *bw = g4c_cuda_copy_bandwidth((size_t)2 << 30, 20);
    printf("device-to-device copy: %.0f GB/s (2 GiB, read + write, median of 20)\n", *bw);
    printf("bf16 GEMM 8192^3 (cuBLAS, f32 accumulate): %.0f TFLOP/s (median of 10)\n", g4c_cuda_gemm_rate(8192, 10));
    static const struct {
        const char *what;
        int rows, cols;
    } shapes[] = {{"E4B qkv", 3072, 2560},  {"E4B o", 2560, 2048},       {"E4B gate|up", 20480, 2560},
                  {"E4B down", 2560, 10240}, {"E4B head", 262144, 2560}, {"31B qkv", 16384, 5376},
                  {"31B gate|up", 43008, 5376}, {"31B down", 5376, 21504}};
    printf("GEMV (bf16 weights, f32 activations) vs cublasGemmEx (bf16 x bf16 -> f32), median of 50, 4 rotated copies:\n");
    printf("  %-12s %7s %6s %2s %10s %10s %9s %9s\n", "matrix", "rows", "cols", "n", "gemv us", "cublas us", "gemv GB/s",
           "%copy bw");
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int n = 1; n <= 4; n *= 4) {
            double a = 0, b = 0;
            g4c_err err = {0};
            if (g4c_cuda_gemv_compare(shapes[i].rows, shapes[i].cols, n, 50, &a, &b, &err) != G4C_OK) {
                printf("  %s: %s\n", shapes[i].what, err.msg);
                continue;
            }
            const double gbs = 2.0 * shapes[i].rows * shapes[i].cols / (a * 1e-6) / 1e9;
            printf("  %-12s %7d %6d %2d %10.1f %10.1f %9.0f %8.0f%%\n", shapes[i].what, shapes[i].rows, shapes[i].cols, n, a,
                   b, gbs, 100 * gbs / *bw);
        }
}

/* Quantized decode GEMV at the real shapes: time, and bandwidth of the matrix's bytes vs the copy bandwidth. */
static void qgemv_table(double bw) {
    static const struct {
        const char *what;
        int rows, cols;
    } shapes[] = {{"E4B qkv", 3072, 2560},  {"E4B o", 2560, 2048},       {"E4B gate|up", 20480, 2560},
                  {"E4B down", 2560, 10240}, {"E4B head", 262144, 2560}, {"26B expert gu", 1408, 2816},
                  {"31B qkv", 16384, 5376},  {"31B o", 5376, 8192},       {"31B gate|up", 43008, 5376},
                  {"31B down", 5376, 21504}};
    static const g4c_dtype types[] = {G4C_DTYPE_Q4_0, G4C_DTYPE_Q8_0, G4C_DTYPE_Q4_K, G4C_DTYPE_Q5_K, G4C_DTYPE_Q6_K};
    printf("quantized GEMV (int8 activations, quantization launch included), median us of 50, 4 rotated copies:\n");
    printf("  %-14s %7s %6s %-5s %2s %-5s %9s %9s %8s\n", "matrix", "rows", "cols", "type", "n", "warps", "us", "GB/s",
           "%copy");
    for (size_t k = 0; k < sizeof types / sizeof *types; k++)
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
            for (int n = 1; n <= 4; n *= 4)
                for (int ks = 0; ks <= 1; ks++) { /* warps per row: by shape, then 1 (Q4_0 only) */
                    if ((n > 1 || ks) && types[k] != G4C_DTYPE_Q4_0) continue;
                    if (n > 1 && (i > 4 || ks)) continue;
                    g4c_cuda_set_qgemv_split(ks);
                    double us = 0, bytes = 0;
                    g4c_err err = {0};
                    if (g4c_cuda_qgemv_time(types[k], shapes[i].rows, shapes[i].cols, n, 50, &us, &bytes, &err) != G4C_OK) {
                        printf("  %s: %s\n", shapes[i].what, err.msg);
                        continue;
                    }
                    const double gbs = bytes / (us * 1e-6) / 1e9;
                    printf("  %-14s %7d %6d %-5s %2d %-5s %9.1f %9.0f %7.0f%%\n", shapes[i].what, shapes[i].rows,
                           shapes[i].cols, g4c_dtype_infos[types[k]].name, n, ks ? "1" : "auto", us, gbs, 100 * gbs / bw);
                }
    g4c_cuda_set_qgemv_split(0);
}

/* Prefill attention kernels at the real shapes (512 queries from position 0; decode: 1 query at position 4095). */
static void attention_table(void) {
    static const struct {
        const char *what;
        int nh, nkv, hd, window;
    } sh[] = {{"E4B sliding", 8, 2, 256, 512},  {"E4B full", 8, 2, 512, 0},   {"26B sliding", 16, 8, 256, 1024},
              {"26B full", 16, 2, 512, 0},     {"31B sliding", 32, 16, 256, 1024}, {"31B full", 32, 4, 512, 0}};
    static const char *names[] = {"auto", "query", "t16", "t8", "t4"};
    printf("attention, median us of 20 (prefill: 512 queries at 0..511; decode: 1 query at 4095, cache 4096):\n");
    printf("  %-12s %9s %9s %9s %9s %9s %9s\n", "shape", names[0], names[1], names[2], names[3], names[4], "decode");
    for (size_t i = 0; i < sizeof sh / sizeof *sh; i++) {
        printf("  %-12s", sh[i].what);
        for (int v = 0; v <= 4; v++) {
            g4c_cuda_set_attention_variant(v);
            printf(" %9.1f", g4c_cuda_attention_time(512, 0, sh[i].nh, sh[i].nkv, sh[i].hd, 1024, sh[i].window, 20));
        }
        g4c_cuda_set_attention_variant(0);
        printf(" %9.1f\n", g4c_cuda_attention_time(1, 4095, sh[i].nh, sh[i].nkv, sh[i].hd, 4096, sh[i].window, 20));
    }
}

int main(int argc, char **argv) {
    const char *model = NULL, *rnd = NULL;
    int pp = 512, tg = 128, do_ceil = 0, do_attn = 0, do_qgemv = 0, image = 0, profile = 0, profile_pp = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--random") && i + 1 < argc) rnd = argv[++i];
        else if (!strcmp(argv[i], "--pp") && i + 1 < argc) pp = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tg") && i + 1 < argc) tg = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--image") && i + 1 < argc) image = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--profile") && i + 1 < argc) profile = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--profile-pp")) profile_pp = 1;
        else if (!strcmp(argv[i], "--ceilings")) do_ceil = 1;
        else if (!strcmp(argv[i], "--attention")) do_attn = 1;
        else if (!strcmp(argv[i], "--qgemv")) do_qgemv = 1;
        else if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            const char *t = argv[++i];
            g_type = !strcmp(t, "q4_0") ? G4C_DTYPE_Q4_0 : !strcmp(t, "q8_0") ? G4C_DTYPE_Q8_0 : !strcmp(t, "q4_k") ? G4C_DTYPE_Q4_K
                     : !strcmp(t, "q5_k") ? G4C_DTYPE_Q5_K : !strcmp(t, "q6_k") ? G4C_DTYPE_Q6_K : G4C_DTYPE_BF16;
        } else {
            fprintf(stderr, "usage: bench_cuda [--ceilings] [--attention] [--qgemv] [--model DIR | --random e4b|26b-a4b|31b "
                            "[--type bf16|q4_0|q8_0|q4_k|q5_k|q6_k]] [--pp N] [--tg N] [--image N] [--profile N] [--profile-pp]\n");
            return 2;
        }
    }
    char why[256], name[256];
    if (!g4c_cuda_available(why, sizeof why)) {
        fprintf(stderr, "bench_cuda: %s\n", why);
        return 1;
    }
    g4c_cuda_device_name(name, sizeof name);
    printf("device: %s\n", name);
    double bw = 0;
    if (do_ceil) ceilings(&bw);
    else bw = g4c_cuda_copy_bandwidth((size_t)1 << 30, 10);
    if (do_qgemv) qgemv_table(bw);
    if (do_attn) attention_table();
    if (!model && !rnd) return 0;
    g4c_err err = {0};
    runner r = {0};
    g4c_model *m = NULL;
    g4c_config cfg;
    g4c_weights w;
    g4c_cuda_model *cm = NULL;
    size_t per_token = 0, bytes = 0;
    const double t0 = g4c_time_ms();
    if (model) {
        if (g4c_model_load(&m, model, NULL, &err) != G4C_OK) {
            fprintf(stderr, "bench_cuda: %s\n", err.msg);
            return 1;
        }
        g4c_session_params sp = g4c_session_default_params();
        sp.n_ctx = pp + tg + 32, sp.n_ubatch = pp > 16 ? pp : 16, sp.device = G4C_DEVICE_CUDA;
        if (g4c_session_init(&r.sess, m, &sp, &err) != G4C_OK) {
            fprintf(stderr, "bench_cuda: %s\n", err.msg);
            return 1;
        }
        bytes = g4c_cuda_model_bytes(m->cuda, &per_token);
        r.V = m->cfg.n_vocab;
        printf("model %s\n", model);
    } else {
        const preset *p = NULL;
        for (size_t i = 0; i < sizeof presets / sizeof *presets; i++)
            if (!strcmp(rnd, presets[i].name)) p = &presets[i];
        cJSON *j = p ? preset_config(p) : NULL;
        if (!j || g4c_config_parse(&cfg, j, rnd, &err) != G4C_OK || !random_weights(&w, &cfg) ||
            g4c_cuda_model_upload(&cm, &cfg, &w, &err) != G4C_OK ||
            g4c_cuda_text_init(&r.text, cm, pp + tg + 32, pp > 16 ? pp : 16, &err) != G4C_OK) {
            fprintf(stderr, "bench_cuda: --random %s: %s\n", rnd, p ? err.msg : "unknown preset");
            return 1;
        }
        cJSON_Delete(j);
        bytes = g4c_cuda_model_bytes(cm, &per_token);
        r.V = cfg.n_vocab;
        printf("random %s weights at the shapes of %s (made on the GPU)\n", g4c_dtype_infos[g_type].name, rnd);
    }
    printf("weights on the GPU %.2f GB (loaded in %.1f s); bytes read per decoded token %.2f GB\n", bytes / 1e9,
           (g4c_time_ms() - t0) / 1e3, per_token / 1e9);
    r.logits = malloc(sizeof(float) * r.V);
    int ok = run_bench(&r, pp, tg, per_token, bw);
    if (ok && profile > 0 && r.text) ok = profile_decode(&r, profile, per_token, bw);
    if (ok && profile_pp && pp > 0 && r.text) ok = profile_prefill(&r, pp);
    if (ok && image > 0 && cm) ok = vision_bench(cm, &cfg, rnd, image, g4c_cuda_gemm_rate(8192, 5), profile_pp);
    free(r.logits);
    g4c_session_free(r.sess);
    g4c_model_free(m);
    g4c_cuda_text_free(r.text);
    g4c_cuda_model_free(cm);
    return ok ? 0 : 1;
}
