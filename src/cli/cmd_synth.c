/* gemma4c synth: write a random-weight Hugging Face checkpoint with the real configuration of a Gemma 4 size
 * (docs/gemma4-spec.md §1 sizes, §8.1 tensor names and shapes). For demos (the `tiny` preset) and for benchmarks at
 * real shapes: the cost of inference does not depend on the weight values.
 *   config.json / generation_config.json / processor_config.json   as transformers 5.17 writes them
 *   model.safetensors     every tensor the loader binds (src/model/weights.c), streamed with constant memory
 *   tokenizer.json        copied from --tokenizer or $G4C_TOKENIZER_JSON (plus a minimal tokenizer_config.json)
 * Weights are a pure function of (--seed, tensor name, element index): matrices uniform with std 1/sqrt(fan_in),
 * embeddings std 1, norm weights in (0.9, 1.1), scalars that must be neutral set to 1 or 0. No NaN, Inf, zero or
 * subnormal values. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <sys/mman.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/synth.h"
#include "formats/formats.h"
#include "runtime/quantize.h"

/* ---- presets (spec §1.1, §1.3) ---- */


static const preset presets[] = {
    {"tiny", "demo size, real vocabulary", 64, 4, 4, 2, 1, 32, 64, 128, 128, 0, 0, 131072, 4,
     1, 0, 0, 0, 0, 1, 32, 2, 2, 16, 64, 0, 1, NULL},
    {"e2b", "Gemma 4 E2B", 1536, 35, 8, 1, 1, 256, 512, 6144, 512, 20, 256, 131072, 5,
     0, 1, 0, 0, 0, 0, 768, 16, 12, 64, 3072, 1, 0,
     "published: 5.1 B with embeddings, 2.3 B effective; both include a ~0.3 B audio tower not written here"},
    {"e4b", "Gemma 4 E4B", 2560, 42, 8, 2, 2, 256, 512, 10240, 512, 18, 256, 131072, 6,
     0, 0, 0, 0, 0, 0, 768, 16, 12, 64, 3072, 1, 0,
     "published: 8 B with embeddings, 4.5 B effective; both include a ~0.3 B audio tower not written here"},
    {"26b-a4b", "Gemma 4 26B-A4B (MoE)", 2816, 30, 16, 8, 2, 256, 512, 2112, 1024, 0, 0, 262144, 6,
     1, 0, 128, 8, 704, 1, 1152, 27, 16, 72, 4304, 0, 1,
     "published: 25.2 B total, 3.8 B active (the text decoder)"},
    {"31b", "Gemma 4 31B", 5376, 60, 32, 16, 4, 256, 512, 21504, 1024, 0, 0, 262144, 6,
     1, 0, 0, 0, 0, 1, 1152, 27, 16, 72, 4304, 0, 1,
     "published: 30.7 B (the text decoder)"},
};

/* ---- tensor list ---- */

enum { K_MAT, K_EMB, K_NORM, K_ONE, K_ZERO, K_CLIP_MIN, K_CLIP_MAX }; /* how a tensor is filled */
enum { P_TEXT, P_EMBED, P_EXPERT, P_VISION };                         /* what it counts towards */
#define TAG(kind, part) ((kind) | (part) << 4)
#define CLIP_VALUE 10.0f

typedef struct {
    g4c_st_writer *w;
    g4c_dtype dt;
    char prefix[64];
    g4c_err *err;
} lister;

static g4c_status add(lister *ls, const char *name, int kind, int part, int ndim, int64_t d0, int64_t d1, int64_t d2) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", ls->prefix, name);
    const int64_t shape[3] = {d0, d1, d2};
    /* the clip bounds are f32 scalars whatever the checkpoint's dtype, as the converter writes them */
    g4c_dtype dt = kind == K_CLIP_MIN || kind == K_CLIP_MAX ? G4C_DTYPE_F32 : ls->dt;
    return g4c_stw_add(ls->w, full, dt, ndim, shape, TAG(kind, part), ls->err);
}
#define MAT(name, r, c) G4C_TRY(add(ls, (name), K_MAT, part, 2, (r), (c), 0))
#define VEC(name, kind, n) G4C_TRY(add(ls, (name), (kind), part, 1, (n), 0, 0))


static g4c_status list_text(lister *ls, const preset *p) {
    const int64_t H = p->H, V = 262144, P = p->ple;
    int part = P_TEXT;
    snprintf(ls->prefix, sizeof ls->prefix, "model.language_model.");
    G4C_TRY(add(ls, "embed_tokens.weight", K_EMB, P_EMBED, 2, V, H, 0));
    VEC("norm.weight", K_NORM, H);
    if (P) {
        G4C_TRY(add(ls, "embed_tokens_per_layer.weight", K_EMB, P_EMBED, 2, V, p->L * P, 0));
        MAT("per_layer_model_projection.weight", p->L * P, H);
        VEC("per_layer_projection_norm.weight", K_NORM, P);
    }
    for (int l = 0; l < p->L; l++) {
        const int full = layer_full(p, l), shared = l >= p->L - p->n_kv_shared;
        const int64_t hd = full ? p->hd_full : p->hd, kv = full ? p->n_kv_full : p->n_kv;
        const int64_t q = (int64_t)p->n_head * hd, ffn = p->double_wide && shared ? 2LL * p->ffn : p->ffn;
        char n[128];
#define LN(s) (snprintf(n, sizeof n, "layers.%d.%s", l, (s)), n)
        VEC(LN("input_layernorm.weight"), K_NORM, H);
        VEC(LN("post_attention_layernorm.weight"), K_NORM, H);
        VEC(LN("pre_feedforward_layernorm.weight"), K_NORM, H);
        VEC(LN("post_feedforward_layernorm.weight"), K_NORM, H);
        VEC(LN("layer_scalar"), K_ONE, 1);
        MAT(LN("self_attn.q_proj.weight"), q, H);
        MAT(LN("self_attn.o_proj.weight"), H, q);
        VEC(LN("self_attn.q_norm.weight"), K_NORM, hd);
        if (!shared) { /* KV-shared layers carry no K/V projections (transformers does not save them) */
            MAT(LN("self_attn.k_proj.weight"), kv * hd, H);
            VEC(LN("self_attn.k_norm.weight"), K_NORM, hd);
            if (!(p->k_eq_v && full)) MAT(LN("self_attn.v_proj.weight"), kv * hd, H);
        }
        MAT(LN("mlp.gate_proj.weight"), ffn, H);
        MAT(LN("mlp.up_proj.weight"), ffn, H);
        MAT(LN("mlp.down_proj.weight"), H, ffn);
        if (p->n_expert) {
            const int64_t E = p->n_expert, I = p->moe_ffn;
            MAT(LN("router.proj.weight"), E, H);
            VEC(LN("router.scale"), K_ONE, H);
            VEC(LN("router.per_expert_scale"), K_ONE, E);
            G4C_TRY(add(ls, LN("experts.gate_up_proj"), K_MAT, P_EXPERT, 3, E, 2 * I, H));
            G4C_TRY(add(ls, LN("experts.down_proj"), K_MAT, P_EXPERT, 3, E, H, I));
            VEC(LN("pre_feedforward_layernorm_2.weight"), K_NORM, H);
            VEC(LN("post_feedforward_layernorm_1.weight"), K_NORM, H);
            VEC(LN("post_feedforward_layernorm_2.weight"), K_NORM, H);
        }
        if (P) {
            MAT(LN("per_layer_input_gate.weight"), P, H);
            MAT(LN("per_layer_projection.weight"), H, P);
            VEC(LN("post_per_layer_input_norm.weight"), K_NORM, H);
        }
#undef LN
    }
    return G4C_OK;
}

static g4c_status clip_linear(lister *ls, const char *name, int64_t rows, int64_t cols, int clipped) {
    char n[160];
    snprintf(n, sizeof n, "%s.linear.weight", name);
    G4C_TRY(add(ls, n, K_MAT, P_VISION, 2, rows, cols, 0));
    if (!clipped) return G4C_OK;
    static const char *const which[4] = {"input_min", "input_max", "output_min", "output_max"};
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "%s.%s", name, which[i]);
        G4C_TRY(add(ls, n, i % 2 ? K_CLIP_MAX : K_CLIP_MIN, P_VISION, 0, 0, 0, 0));
    }
    return G4C_OK;
}

static g4c_status list_vision(lister *ls, const preset *p) {
    const int64_t Hv = p->vH, hd = p->v_hd, q = (int64_t)p->v_heads * p->v_hd, F = p->v_ffn;
    int part = P_VISION;
    snprintf(ls->prefix, sizeof ls->prefix, "model.vision_tower.");
    MAT("patch_embedder.input_proj.weight", Hv, 3 * 16 * 16);
    G4C_TRY(add(ls, "patch_embedder.position_embedding_table", K_EMB, P_VISION, 3, 2, 10240, Hv));
    for (int l = 0; l < p->vL; l++) {
        char n[128];
#define VN(s) (snprintf(n, sizeof n, "encoder.layers.%d.%s", l, (s)), n)
        VEC(VN("input_layernorm.weight"), K_NORM, Hv);
        VEC(VN("post_attention_layernorm.weight"), K_NORM, Hv);
        VEC(VN("pre_feedforward_layernorm.weight"), K_NORM, Hv);
        VEC(VN("post_feedforward_layernorm.weight"), K_NORM, Hv);
        VEC(VN("self_attn.q_norm.weight"), K_NORM, hd);
        VEC(VN("self_attn.k_norm.weight"), K_NORM, hd);
        G4C_TRY(clip_linear(ls, VN("self_attn.q_proj"), q, Hv, p->v_clipped));
        G4C_TRY(clip_linear(ls, VN("self_attn.k_proj"), q, Hv, p->v_clipped));
        G4C_TRY(clip_linear(ls, VN("self_attn.v_proj"), q, Hv, p->v_clipped));
        G4C_TRY(clip_linear(ls, VN("self_attn.o_proj"), Hv, q, p->v_clipped));
        G4C_TRY(clip_linear(ls, VN("mlp.gate_proj"), F, Hv, p->v_clipped));
        G4C_TRY(clip_linear(ls, VN("mlp.up_proj"), F, Hv, p->v_clipped));
        G4C_TRY(clip_linear(ls, VN("mlp.down_proj"), Hv, F, p->v_clipped));
#undef VN
    }
    if (p->v_std) {
        VEC("std_bias", K_ZERO, Hv);
        VEC("std_scale", K_ONE, Hv);
    }
    snprintf(ls->prefix, sizeof ls->prefix, "model.embed_vision.");
    MAT("embedding_projection.weight", p->H, Hv);
    return G4C_OK;
}
#undef MAT
#undef VEC

/* ---- weight values ---- */

static uint64_t mix64(uint64_t z) { /* splitmix64's finalizer */
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}
#define GOLDEN UINT64_C(0x9E3779B97F4A7C15)

static uint64_t tensor_key(uint64_t seed, const char *name) {
    uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * UINT64_C(0x100000001b3);
    return mix64(h ^ mix64(seed + GOLDEN));
}

/* n values of a tensor starting at element i0. Uniform draws are odd multiples of 2^-23 in (-1, 1): never 0, so
 * even the smallest matrix value (2^-23 * sqrt(3/fan_in)) is a normal number in f32 and bf16. */
static void fill(float *dst, size_t n, uint64_t key, uint64_t i0, int kind, float amp) {
    switch (kind) {
    case K_ONE: for (size_t i = 0; i < n; i++) dst[i] = 1.0f; return;
    case K_ZERO: for (size_t i = 0; i < n; i++) dst[i] = 0.0f; return;
    case K_CLIP_MIN: for (size_t i = 0; i < n; i++) dst[i] = -CLIP_VALUE; return;
    case K_CLIP_MAX: for (size_t i = 0; i < n; i++) dst[i] = CLIP_VALUE; return;
    default: break;
    }
    const float off = kind == K_NORM ? 1.0f : 0.0f, a = amp * (1.0f / 8388608.0f);
    uint64_t z = key + i0 * GOLDEN;
    for (size_t i = 0; i < n; i++) {
        z += GOLDEN;
        const int32_t k = (int32_t)(mix64(z) >> 41); /* 23 bits */
        dst[i] = off + (float)(2 * k + 1 - 8388608) * a;
    }
}

/* One chunk of a tensor, filled (and rounded to bf16) by the thread pool in n_tasks slices. */
typedef struct {
    float *buf;
    uint16_t *half; /* NULL for f32 */
    size_t n;
    uint64_t key, at;
    int kind, n_tasks;
    float amp;
} fill_job;

static void fill_task(void *ctx, int i_task, int i_thread) {
    const fill_job *j = ctx;
    const size_t b = j->n * (size_t)i_task / (size_t)j->n_tasks, e = j->n * (size_t)(i_task + 1) / (size_t)j->n_tasks;
    fill(j->buf + b, e - b, j->key, j->at + b, j->kind, j->amp);
    if (!j->half) return;
    for (size_t k = b; k < e; k++) j->half[k] = g4c_f32_to_bf16(j->buf[k]); /* round to nearest even */
}

static float amplitude(const g4c_stw_tensor *t) {
    switch (t->tag & 15) {
    case K_MAT: return sqrtf(3.0f / (float)t->shape[t->ndim - 1]); /* std 1/sqrt(fan_in); fan_in = last dim */
    case K_EMB: return sqrtf(3.0f);                                 /* std 1 */
    case K_NORM: return 0.1f;                                       /* 1 +- 0.1 */
    default: return 0.0f;
    }
}

/* ---- small helpers ---- */

static volatile sig_atomic_t g_signal;
static void on_signal(int sig) { g_signal = sig; }

/* bytes: "9.59 GB"; parameter counts (unit ""): "4.80 B", "168.5 M" */
static const char *human(char *buf, size_t size, double v, const char *unit) {
    if (v >= 1e9) snprintf(buf, size, "%.2f %s", v / 1e9, *unit ? "GB" : "B");
    else if (v >= 1e6) snprintf(buf, size, "%.1f M%s", v / 1e6, unit);
    else if (v >= 1e3) snprintf(buf, size, "%.1f k%s", v / 1e3, unit);
    else snprintf(buf, size, "%.0f%s%s", v, *unit ? " " : "", unit);
    return buf;
}

static const char *commas(char *buf, size_t size, uint64_t v) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v), o = 0;
    for (int i = 0; i < n && o + 2 < (int)size; i++) {
        if (i && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
    return buf;
}

/* mkdir -p */
static int make_dirs(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) { errno = ENAMETOOLONG; return -1; }
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            struct stat st;
            if (stat(buf, &st) != 0) return -1;
            if (!S_ISDIR(st.st_mode)) { errno = ENOTDIR; return -1; }
            *p = c;
            if (!c) break;
        }
    }
    return 0;
}

/* ---- the command ---- */

static const char *const synth_help =
    "usage: gemma4c synth --preset tiny|e2b|e4b|26b-a4b|31b --out DIR [--dtype bf16|f32] [--seed S]\n"
    "                     [--tokenizer tokenizer.json] [--no-vision] [--dry-run] [-t N]\n"
    "                     [--format safetensors|gguf] [--type q4_0|q8_0|q4_k_m|...]\n"
    "Writes a random-weight Hugging Face checkpoint with the real configuration of a Gemma 4 size: config.json,\n"
    "generation_config.json, processor_config.json and model.safetensors (every tensor the loader needs; streamed\n"
    "with constant memory, written as model.safetensors.tmp and renamed when complete). For demos and for\n"
    "benchmarks at real shapes: inference cost does not depend on the weight values. Output is not meaningful text.\n"
    "  --preset NAME       tiny (hidden 64, 4 layers, real 262144 vocabulary, tiny vision tower; ~35 MB in bf16),\n"
    "                      e2b, e4b, 26b-a4b, 31b (spec §1 shapes; no audio tower)\n"
    "  -o, --out DIR       output directory (created if needed)\n"
    "  --dtype bf16|f32    weight dtype (default bf16, as published)\n"
    "  --seed S            weights are a function of S (default 1)\n"
    "  --tokenizer FILE    copy this tokenizer.json into DIR (default: $G4C_TOKENIZER_JSON); a Gemma 3 one works\n"
    "  --no-vision         text decoder only (vision_config null)\n"
    "  --dry-run           print tensor count, bytes and parameter counts; write nothing\n"
    "  -t, --threads N     threads generating the values (default: all cores)\n"
    "  --format gguf       write DIR/model.gguf (and DIR/mmproj.gguf with vision) quantized to --type instead of\n"
    "                      model.safetensors, streamed from the generator: no float checkpoint on disk first. The\n"
    "                      values are the ones `synth` writes (rounded to --dtype), so this equals `synth` followed\n"
    "                      by `gemma4c quantize DIR DIR/model.gguf --type T` byte for byte\n"
    "  --type T            the GGUF's type, as `gemma4c quantize --type` (default q4_0)\n";

typedef struct {
    uint64_t total, text, vision, embed, expert;
} counts;

/* ---- --format gguf: the tensors as a set whose values come from fill() (runtime/quantize.h) ---- */

typedef struct {
    uint64_t key;
    int kind, bf16;
    float amp;
} gen_param;

typedef struct {
    g4c_tensor_set ts;
    gen_param *gp; /* [n_tensors], by the set's (name) order */
    void *zeros;   /* read-only zero pages standing in for the data of large tensors (never read) */
    size_t zeros_size;
} gen_set;

static void gen_source(void *user, const g4c_st_tensor *t, int64_t i0, int64_t n, float *dst) {
    const gen_set *g = user;
    const gen_param *gp = &g->gp[t - g->ts.tensors];
    fill(dst, (size_t)n, gp->key, (uint64_t)i0, gp->kind, gp->amp);
    if (gp->bf16) /* the values synth stores */
        for (int64_t k = 0; k < n; k++) dst[k] = g4c_bf16_to_f32(g4c_f32_to_bf16(dst[k]));
}

static int cmp_st(const void *a, const void *b) {
    return strcmp(((const g4c_st_tensor *)a)->name, ((const g4c_st_tensor *)b)->name);
}

static void gen_set_free(gen_set *g) {
    for (int i = 0; i < g->ts.n_tensors; i++) {
        free(g->ts.tensors[i].name);
        if ((const char *)g->ts.tensors[i].data != (const char *)g->zeros) free((void *)g->ts.tensors[i].data);
    }
    free(g->ts.tensors);
    free(g->gp);
    if (g->zeros) munmap(g->zeros, g->zeros_size);
    memset(g, 0, sizeof *g);
}

/* Tensors up to SMALL elements get their values in memory (binding converts vectors, quantize reorders the patch
 * embedding); larger ones only a stand-in pointer and their generator. */
static int gen_set_build(gen_set *g, const g4c_st_writer *w, uint64_t seed) {
    enum { SMALL = 1 << 22 };
    const int nt = g4c_stw_count(w);
    memset(g, 0, sizeof *g);
    g->ts.tensors = calloc((size_t)nt, sizeof *g->ts.tensors);
    if (!g->ts.tensors) return -1;
    for (int i = 0; i < nt; i++) {
        const g4c_stw_tensor *t = g4c_stw_get(w, i);
        g4c_st_tensor *d = &g->ts.tensors[g->ts.n_tensors];
        if (!(d->name = strdup(t->name))) return -1;
        g->ts.n_tensors++;
        d->dtype = G4C_DTYPE_F32;
        d->ndim = t->ndim;
        memcpy(d->shape, t->shape, sizeof d->shape);
        d->size_bytes = (size_t)t->numel * sizeof(float);
        d->i_file = t->tag; /* carried until the generator parameters are laid out below */
        if (t->numel > SMALL && d->size_bytes > g->zeros_size) g->zeros_size = d->size_bytes;
    }
    if (g->zeros_size) {
        g->zeros = mmap(NULL, g->zeros_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (g->zeros == MAP_FAILED) {
            g->zeros = NULL;
            return -1;
        }
    }
    qsort(g->ts.tensors, (size_t)g->ts.n_tensors, sizeof *g->ts.tensors, cmp_st);
    if (!(g->gp = calloc((size_t)nt, sizeof *g->gp))) return -1;
    for (int i = 0; i < nt; i++) {
        g4c_st_tensor *d = &g->ts.tensors[i];
        g4c_stw_tensor like = {.ndim = d->ndim, .tag = d->i_file}; /* what amplitude() reads */
        memcpy(like.shape, d->shape, sizeof like.shape);
        g->gp[i] = (gen_param){tensor_key(seed, d->name), d->i_file & 15, 0, amplitude(&like)};
        d->i_file = 0;
        const size_t n = d->size_bytes / sizeof(float);
        if (n > SMALL) {
            d->data = g->zeros;
            continue;
        }
        float *v = malloc(n ? d->size_bytes : 1);
        if (!v) return -1;
        d->data = v;
    }
    return 0;
}

static void on_tensor(void *user, int i, int n, const char *name, g4c_dtype type) {
    (void)user;
    if (isatty(2)) fprintf(stderr, "\r[%4d/%4d] %-40s %-5s", i + 1, n, name, g4c_dtype_infos[type].name);
}

/* --format gguf: DIR's side files, then the GGUF(s) straight from the generator */
static int write_gguf(const char *out, const preset *p, g4c_dtype dt, int vision, const char *tok, int ftype,
                      int n_threads, uint64_t seed, const g4c_st_writer *w, char *path, size_t path_size) {
    if (synth_write_side_files(out, p, dt, vision, tok)) return 1;
    gen_set g;
    g4c_err err = {0};
    if (gen_set_build(&g, w, seed) != 0) {
        gen_set_free(&g);
        fprintf(stderr, "gemma4c synth: out of memory\n");
        return 1;
    }
    for (int i = 0; i < g.ts.n_tensors; i++) {
        g.gp[i].bf16 = dt == G4C_DTYPE_BF16;
        const g4c_st_tensor *t = &g.ts.tensors[i];
        if (t->data != g.zeros) gen_source(&g, t, 0, (int64_t)(t->size_bytes / sizeof(float)), (float *)t->data);
    }
    char mm[4200];
    snprintf(path, path_size, "%s/model.gguf", out);
    snprintf(mm, sizeof mm, "%s/mmproj.gguf", out);
    g4c_quantize_params qp = {.ftype = (g4c_ftype)ftype, .mmproj_out = vision ? mm : NULL, .n_threads = n_threads,
                              .progress = on_tensor, .source = gen_source, .source_user = &g};
    const double t0 = g4c_time_ms();
    const g4c_status st = g4c_quantize_generated(out, &g.ts, path, &qp, &err);
    gen_set_free(&g);
    if (isatty(2)) fprintf(stderr, "\r%70s\r", "");
    if (st != G4C_OK) {
        cli_die_err("synth", &err);
        return 1;
    }
    fprintf(stderr, "wrote %s (%s) in %.1f s\n", path, g4c_ftype_name((g4c_ftype)ftype), (g4c_time_ms() - t0) / 1e3);
    return 0;
}

int cmd_synth(int argc, char **argv) {
    const char *preset_name = NULL, *out = NULL, *tok = NULL;
    g4c_dtype dt = G4C_DTYPE_BF16;
    uint64_t seed = 1;
    int vision = 1, dry = 0, n_threads = 0, gguf = 0, ftype = G4C_FT_Q4_0;
    g4c_pool *pool = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = !strcmp(a, "--preset") || !strcmp(a, "--out") || !strcmp(a, "-o") || !strcmp(a, "--dtype") ||
                    !strcmp(a, "--seed") || !strcmp(a, "--tokenizer") || !strcmp(a, "-t") ||
                    !strcmp(a, "--threads") || !strcmp(a, "--format") || !strcmp(a, "--type");
        if (takes && !v) { fprintf(stderr, "gemma4c synth: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(synth_help, stdout); return 0; }
        else if (!strcmp(a, "--preset")) preset_name = v;
        else if (!strcmp(a, "--out") || !strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--tokenizer")) tok = v;
        else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "bf16") || !strcmp(v, "bfloat16")) dt = G4C_DTYPE_BF16;
            else if (!strcmp(v, "f32") || !strcmp(v, "float32")) dt = G4C_DTYPE_F32;
            else { fprintf(stderr, "gemma4c synth: --dtype must be bf16 or f32, got '%s'\n", v); return 2; }
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (!*v || *end || errno || *v == '-') {
                fprintf(stderr, "gemma4c synth: --seed needs a non-negative integer, got '%s'\n", v);
                return 2;
            }
            seed = s;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            char *end;
            long t = strtol(v, &end, 10);
            if (!*v || *end || t < 0 || t > 1024) {
                fprintf(stderr, "gemma4c synth: %s needs an integer in [0, 1024], got '%s'\n", a, v);
                return 2;
            }
            n_threads = (int)t;
        } else if (!strcmp(a, "--format")) {
            if (!strcmp(v, "gguf")) gguf = 1;
            else if (!strcmp(v, "safetensors")) gguf = 0;
            else { fprintf(stderr, "gemma4c synth: --format must be safetensors or gguf, got '%s'\n", v); return 2; }
        } else if (!strcmp(a, "--type")) {
            if ((ftype = g4c_ftype_parse(v)) < 0) {
                fprintf(stderr, "gemma4c synth: unknown --type '%s' (f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k_m "
                        "q5_k_m q6_k)\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--no-vision")) vision = 0;
        else if (!strcmp(a, "--dry-run")) dry = 1;
        else { fprintf(stderr, "gemma4c synth: unknown option '%s' (see gemma4c synth --help)\n", a); return 2; }
        i += takes;
    }
    const preset *p = NULL;
    for (size_t i = 0; preset_name && i < sizeof presets / sizeof *presets; i++)
        if (!strcmp(preset_name, presets[i].name)) p = &presets[i];
    if (!p) {
        if (preset_name) fprintf(stderr, "gemma4c synth: unknown preset '%s'", preset_name);
        else fprintf(stderr, "gemma4c synth: --preset is required");
        fprintf(stderr, " (tiny, e2b, e4b, 26b-a4b, 31b)\n");
        return 2;
    }
    if (!out && !dry) { fprintf(stderr, "gemma4c synth: --out DIR is required\n%s", synth_help); return 2; }
    if (!tok && !dry) {
        const char *env = getenv("G4C_TOKENIZER_JSON");
        if (env && *env) tok = env;
    }

    /* every tensor, in file order */
    g4c_err err = {0};
    g4c_st_writer *w = NULL;
    lister ls = {.dt = dt, .err = &err};
    int rc = 1;
    if (g4c_stw_new(&w, &err) != G4C_OK) { cli_die_err("synth", &err); return 1; }
    ls.w = w;
    if (list_text(&ls, p) != G4C_OK || (vision && list_vision(&ls, p) != G4C_OK)) {
        cli_die_err("synth", &err);
        g4c_stw_free(w);
        return 1;
    }
    g4c_stw_sort(w);
    counts c = {0};
    const int nt = g4c_stw_count(w);
    for (int i = 0; i < nt; i++) {
        const g4c_stw_tensor *t = g4c_stw_get(w, i);
        const int part = t->tag >> 4;
        c.total += t->numel;
        if (part == P_VISION) c.vision += t->numel;
        else c.text += t->numel;
        if (part == P_EMBED) c.embed += t->numel;
        if (part == P_EXPERT) c.expert += t->numel;
    }
    const uint64_t file_size = g4c_stw_file_size(w), data_size = g4c_stw_data_size(w);

    char path[4096];
    struct sigaction sa = {0}, old_int, old_term, old_hup;
    int handlers = 0, created_dir = 0;
    if (!dry) {
        if (tok && access(tok, R_OK) != 0) {
            fprintf(stderr, "gemma4c synth: cannot read tokenizer %s: %s\n", tok, strerror(errno));
            goto done;
        }
        created_dir = access(out, F_OK) != 0;
        if (make_dirs(out) != 0) {
            fprintf(stderr, "gemma4c synth: cannot create the output directory %s: %s\n", out, strerror(errno));
            goto done;
        }
        if (access(out, W_OK) != 0) {
            fprintf(stderr, "gemma4c synth: the output directory %s is not writable: %s\n", out, strerror(errno));
            goto done;
        }
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", out);
        if (access(path, F_OK) == 0) {
            fprintf(stderr, "gemma4c synth: %s already holds a sharded checkpoint (model.safetensors.index.json), "
                    "which the loader would read instead; choose another --out\n", out);
            goto done;
        }
        if (gguf) {
            if (write_gguf(out, p, dt, vision, tok, ftype, n_threads, seed, w, path, sizeof path)) goto done;
            goto summary;
        }
        struct statvfs fs;
        if (statvfs(out, &fs) == 0 && (uint64_t)fs.f_bavail * fs.f_frsize < file_size + ((uint64_t)64 << 20)) {
            char need[32], have[32];
            fprintf(stderr, "gemma4c synth: not enough space in %s: the checkpoint needs %s, %s is free\n", out,
                    human(need, sizeof need, (double)file_size, "B"),
                    human(have, sizeof have, (double)fs.f_bavail * fs.f_frsize, "B"));
            goto done;
        }
        snprintf(path, sizeof path, "%s/model.safetensors", out);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        g_signal = 0;
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        sigaction(SIGHUP, &sa, &old_hup);
        handlers = 1;
        if (g4c_pool_init(&pool, n_threads, &err) != G4C_OK || g4c_stw_open(w, path, &err) != G4C_OK) {
            cli_die_err("synth", &err);
            goto done;
        }
        enum { CHUNK = 1 << 18 }; /* elements: 1 MB of f32, 512 KB of bf16 */
        float *buf = malloc(sizeof(float) * CHUNK);
        uint16_t *half = malloc(sizeof(uint16_t) * CHUNK);
        if (!buf || !half) {
            free(buf);
            free(half);
            fprintf(stderr, "gemma4c synth: out of memory\n");
            goto done;
        }
        const int tty = isatty(2);
        double t0 = g4c_time_ms(), last = 0;
        g4c_status st = G4C_OK;
        for (int i = 0; i < nt && st == G4C_OK && !g_signal; i++) {
            const g4c_stw_tensor *t = g4c_stw_get(w, i);
            const uint64_t key = tensor_key(seed, t->name);
            const float amp = amplitude(t);
            for (uint64_t at = 0; at < t->numel && st == G4C_OK && !g_signal; at += CHUNK) {
                const size_t n = (size_t)(t->numel - at < CHUNK ? t->numel - at : CHUNK);
                const int bf16 = t->dtype == G4C_DTYPE_BF16;
                fill_job job = {buf, bf16 ? half : NULL, n, key, at, t->tag & 15, n < 8192 ? 1 : 32, amp};
                if (job.n_tasks == 1) fill_task(&job, 0, 0);
                else g4c_pool_run(pool, fill_task, &job, job.n_tasks);
                st = bf16 ? g4c_stw_write(w, half, n * 2, &err) : g4c_stw_write(w, buf, n * 4, &err);
                double now = g4c_time_ms();
                if (tty && now - last > 200) {
                    last = now;
                    double done_b = (double)g4c_stw_written(w);
                    fprintf(stderr, "\rwriting %.1f / %.1f GB (%.0f%%, %.2f GB/s) ", done_b / 1e9, data_size / 1e9,
                            100.0 * done_b / (data_size ? data_size : 1), done_b / 1e6 / (now - t0 + 1e-9));
                }
            }
        }
        free(buf);
        free(half);
        if (tty) fprintf(stderr, "\r%60s\r", "");
        if (g_signal) {
            fprintf(stderr, "gemma4c synth: interrupted; removed the partial %s.tmp\n", path);
            rc = 128 + g_signal;
            goto done;
        }
        if (st == G4C_OK) st = g4c_stw_finish(w, &err);
        if (st != G4C_OK) { cli_die_err("synth", &err); goto done; }
        double secs = (g4c_time_ms() - t0) / 1e3;
        if (synth_write_side_files(out, p, dt, vision, tok)) goto done;
        fprintf(stderr, "wrote %.2f GB in %.1f s (%.2f GB/s)\n", file_size / 1e9, secs, file_size / 1e9 / (secs + 1e-9));
    }

summary:; /* summary */
    char a[40], b[40];
    printf("preset      %s (%s)%s\n", p->name, p->label, vision ? "" : ", no vision");
    printf("dtype       %s, seed %llu\n", dt == G4C_DTYPE_BF16 ? "bf16" : "f32", (unsigned long long)seed);
    printf("tensors     %d\n", nt);
    if (!gguf)
        printf("bytes       %s (%s)\n", commas(a, sizeof a, file_size), human(b, sizeof b, (double)file_size, "B"));
    printf("params      %s (%s)\n", commas(a, sizeof a, c.total), human(b, sizeof b, (double)c.total, ""));
    printf("  text      %s (%s)\n", commas(a, sizeof a, c.text), human(b, sizeof b, (double)c.text, ""));
    if (vision) printf("  vision    %s (%s)\n", commas(a, sizeof a, c.vision), human(b, sizeof b, (double)c.vision, ""));
    printf("  embedding %s (%s; without embedding tables %s)\n", commas(a, sizeof a, c.embed),
           human(b, sizeof b, (double)c.embed, ""), human((char[40]){0}, 40, (double)(c.total - c.embed), ""));
    if (p->n_expert) {
        const uint64_t active = c.text - c.expert + c.expert / (uint64_t)p->n_expert * (uint64_t)p->top_k;
        printf("  active    %s (%s per token in the text decoder: %d of %d experts)\n", commas(a, sizeof a, active),
               human(b, sizeof b, (double)active, ""), p->top_k, p->n_expert);
    }
    if (p->published) printf("note        %s\n", p->published);
    printf("path        %s\n", dry ? "(dry run: nothing written)" : path);
    rc = 0;
done:
    if (handlers) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        sigaction(SIGHUP, &old_hup, NULL);
    }
    g4c_stw_free(w); /* removes model.safetensors.tmp unless it was completed */
    if (rc != 0 && created_dir) rmdir(out); /* a directory we made, if still empty */
    g4c_pool_free(pool);
    return rc;
}
