/* The text decoder's forward pass on the device: model/text.c g4c_text_forward, op for op, over the weights of
 * weights.cu and one sequence's state (KV cache + activations, sized for n_ubatch tokens). Everything stays on the
 * device except: token ids, the PLE table rows of the chunk's tokens, image soft tokens and attention upper bounds
 * go up; the logits come down; MoE prefill (> CU_GEMV_MAX_TOK tokens) reads the routing back to run each expert
 * over its tokens. One stream per session; the call returns after the stream has drained.
 * Decode steps (one token, logits wanted) run as a CUDA graph captured at the first step and replayed afterwards:
 * the position is read from device memory, the attention splits fixed by the cache size, the host's inputs staged
 * in pinned buffers (env G4C_CUDA_GRAPH=0: plain launches). With g4c_cuda_text_forward_greedy the argmax runs on the
 * device too and only the token id comes down. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_model.cuh"

struct g4c_cuda_text {
    g4c_cuda_model *M;
    const g4c_config *c;
    int n_ctx, U;
    cu_mm mm;
    int n_slots;
    float **kc, **vc;
    int *cap;
    float *x, *a, *h2, *moe_out, *qkv, *q, *attn, *gu, *ffc, *ple, *ple_tok, *pg, *logits, *part;
    int logit_rows;
    float *router, *d_wt, *d_gw, *moe_in, *moe_h, *moe_gu, *moe_c, *moe_y;
    int *d_off;            /* MoE prefill: per-expert offsets into d_gidx (the pair ids grouped by expert) */
    int *d_tiles;          /* MoE prefill: cu_moe_plan's work tiles */
    __nv_bfloat16 *moe_xb; /* MoE prefill: cu_moe_mma's activation tiles */
    int8_t *pxq, *pxq2;    /* MoE prefill: the experts' inputs as int8 (tokens; then the pairs' GeGLU outputs) */
    float2 *pdx, *pdx2;
    int8_t *xq2; /* decode: the MoE experts' input as int8 activations (alive across the dense MLP's products) */
    float2 *dx2;
    int *d_sel, *d_gidx, *d_ids, *d_hi;
    int *h_ids, *h_hi, *h_sel, *h_gidx, *h_count;
    int *d_pos, *h_pos, *d_next, *h_next; /* decode graph: position up, greedy token down */
    cudaGraphExec_t graph;                /* the captured decode step (n = 1), NULL until the first */
    int graph_hi, graph_mode, graph_k;
    /* top-k sampling on the device (logits mode 3): k, the temperature up (pinned h_tk[0]), the k best values, their
     * ids and the two statistics down (pinned h_tk: values, then ids, then stats) */
    int tk_k;
    float *d_temp, *d_tk, *d_tk_out, *h_tk;
    int pdl, fuse; /* decode: programmatic dependent launch, int8 activations written by their producers */
    float *h_wt, *h_gw, *h_ple;
    void **allocs;
    size_t n_allocs, cap_allocs;
};

namespace {

g4c_status dev(g4c_cuda_text *s, void **p, size_t bytes, int pinned, g4c_err *err) {
    if (s->n_allocs == s->cap_allocs) {
        const size_t cap = s->cap_allocs ? 2 * s->cap_allocs : 64;
        void **a = (void **)realloc(s->allocs, cap * sizeof *a);
        if (!a) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
        s->allocs = a, s->cap_allocs = cap;
    }
    cudaError_t e = pinned ? cudaMallocHost(p, bytes ? bytes : 16) : cudaMalloc(p, bytes ? bytes : 16);
    if (e != cudaSuccess)
        return G4C_FAIL(err, G4C_E_NOMEM, "CUDA: cannot allocate %.1f MiB of %s memory for the session: %s",
                        bytes / 1048576.0, pinned ? "pinned host" : "device", cudaGetErrorString(e));
    s->allocs[s->n_allocs++] = pinned ? (void *)((uintptr_t)*p | 1) : *p; /* low bit: pinned */
    return G4C_OK;
}
#define DEVF(ptr, n) G4C_TRY(dev(s, (void **)&(ptr), sizeof(float) * (size_t)(n), 0, err))
#define DEVI(ptr, n) G4C_TRY(dev(s, (void **)&(ptr), sizeof(int) * (size_t)(n), 0, err))
#define HOSTF(ptr, n) G4C_TRY(dev(s, (void **)&(ptr), sizeof(float) * (size_t)(n), 1, err))
#define HOSTI(ptr, n) G4C_TRY(dev(s, (void **)&(ptr), sizeof(int) * (size_t)(n), 1, err))

/* MoE prefill with quantized experts, expert-major with the routing grouped on the device (cu_moe_plan, no host
 * round trip): 1 = int8 activations (cu_qgemv_grouped, the CPU's arithmetic) when the quantized prefill runs the
 * CPU's arithmetic (G4C_CUDA_QPREFILL=gemv); 2 = bf16 tensor cores on weights dequantized in shared memory
 * (cu_moe_mma) in the bf16 and auto modes; 0 = the per-expert loop through cuBLAS (unquantized experts, the split
 * mode, or env G4C_CUDA_MOE_GROUPED=0). */
int grouped_moe(const cu_layer *L, const g4c_config *c) {
    static const int env = cu_env_switch("G4C_CUDA_MOE_GROUPED");
    if (env == 0 || !c->moe || !cu_is_quant(&L->exp_gu) || !cu_is_quant(&L->exp_down) || c->n_embd % 32 ||
        c->moe_ffn_dim % 32)
        return 0;
    if (g4c_cuda_qprefill() == G4C_CUDA_QPREFILL_GEMV) return 1;
    return cu_fast_prefill(&L->exp_gu) ? 2 : 0;
}

/* grouped_moe for a session's layer: 0 without the grouped path's scratch (no layer's experts quantized) */
int moe_grouped(const g4c_cuda_text *s, const cu_layer *D) { return s->moe_xb ? grouped_moe(D, s->c) : 0; }

int is_placeholder(const g4c_config *c, int tok) {
    return tok == c->image_token_id || tok == c->video_token_id || tok == c->audio_token_id;
}

g4c_status init(g4c_cuda_text *s, g4c_err *err) {
    const g4c_config *c = s->c;
    const size_t U = (size_t)s->U, H = (size_t)c->n_embd;
    size_t max_qkv = 0, max_qd = 0, max_ffn = 0, max_hd = 0;
    for (int i = 0; i < c->n_layer; i++) {
        const g4c_layer_cfg *l = &c->layers[i];
        const size_t qd = (size_t)c->n_head * l->head_dim, kvd = (size_t)l->n_kv_head * l->head_dim;
        const size_t qkv = qd + (l->kv_slot < 0 ? 0 : l->k_eq_v ? kvd : 2 * kvd);
        max_qkv = qkv > max_qkv ? qkv : max_qkv;
        max_qd = qd > max_qd ? qd : max_qd;
        max_ffn = (size_t)l->ffn_dim > max_ffn ? (size_t)l->ffn_dim : max_ffn;
        max_hd = (size_t)l->head_dim > max_hd ? (size_t)l->head_dim : max_hd;
    }
    /* KV cache: model/kv_cache.c's capacities */
    s->n_slots = c->n_kv_slots;
    s->kc = (float **)calloc((size_t)s->n_slots + 1, sizeof(float *));
    s->vc = (float **)calloc((size_t)s->n_slots + 1, sizeof(float *));
    s->cap = (int *)calloc((size_t)s->n_slots + 1, sizeof(int));
    if (!s->kc || !s->vc || !s->cap) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    for (int i = 0; i < c->n_layer; i++) {
        const g4c_layer_cfg *l = &c->layers[i];
        if (l->kv_slot < 0) continue;
        const int cap = g4c_kv_cap(c, l, s->n_ctx, s->U);
        s->cap[l->kv_slot] = cap;
        const size_t n = (size_t)cap * l->n_kv_head * l->head_dim;
        DEVF(s->kc[l->kv_slot], n);
        DEVF(s->vc[l->kv_slot], n);
        G4C_CU(cudaMemset(s->kc[l->kv_slot], 0, n * sizeof(float)));
        G4C_CU(cudaMemset(s->vc[l->kv_slot], 0, n * sizeof(float)));
    }
    DEVF(s->x, U * H);
    DEVF(s->a, U * H);
    DEVF(s->h2, U * H);
    DEVF(s->qkv, U * max_qkv);
    DEVF(s->q, U * max_qd);
    DEVF(s->attn, U * max_qd);
    DEVF(s->gu, U * 2 * max_ffn);
    DEVF(s->ffc, U * max_ffn);
    DEVF(s->part, cu_attention_part_floats((int)max_hd));
    G4C_CU(cu_attention_part_init(s->part));
    s->logit_rows = s->U < 64 ? s->U : 64;
    DEVF(s->logits, (size_t)s->logit_rows * c->n_vocab);
    DEVI(s->d_ids, U);
    DEVI(s->d_hi, U);
    DEVI(s->d_pos, 1);
    DEVI(s->d_next, 1);
    HOSTI(s->h_pos, 1);
    HOSTI(s->h_next, 1);
    DEVF(s->d_temp, 1);
    DEVF(s->d_tk, cu_topk_scratch_floats(c->n_vocab, CU_TOPK_MAX));
    DEVF(s->d_tk_out, 2 * CU_TOPK_MAX + 2);
    HOSTF(s->h_tk, 2 * CU_TOPK_MAX + 3);
    HOSTI(s->h_ids, U);
    HOSTI(s->h_hi, U);
    size_t max_cols = H > max_qd ? H : max_qd, max_out = max_qkv > H ? max_qkv : H;
    max_cols = max_ffn > max_cols ? max_ffn : max_cols;
    max_out = 2 * max_ffn > max_out ? 2 * max_ffn : max_out;
    if (c->ple_dim) {
        const size_t LP = (size_t)c->n_layer * c->ple_dim;
        DEVF(s->ple, U * LP);
        DEVF(s->ple_tok, U * LP);
        DEVF(s->pg, U * c->ple_dim);
        HOSTF(s->h_ple, U * LP);
        max_out = LP > max_out ? LP : max_out;
    }
    if (c->moe) {
        const size_t E = (size_t)c->n_expert, K = (size_t)c->n_expert_used, I = (size_t)c->moe_ffn_dim;
        const size_t R = U * K > CU_GEMV_MAX_TOK * K ? U * K : CU_GEMV_MAX_TOK * K; /* (token, slot) pairs */
        DEVF(s->moe_out, U * H);
        DEVF(s->moe_in, U * H);
        DEVF(s->moe_h, U * H);
        DEVF(s->router, U * E);
        DEVI(s->d_sel, U * K);
        DEVF(s->d_wt, U * K);
        DEVI(s->d_gidx, U * K);
        DEVF(s->d_gw, U * K);
        DEVF(s->moe_gu, R * 2 * I);
        DEVF(s->moe_c, R * I);
        DEVF(s->moe_y, R * H);
        HOSTI(s->h_sel, U * K);
        HOSTF(s->h_wt, U * K);
        HOSTI(s->h_gidx, U * K);
        HOSTF(s->h_gw, U * K);
        HOSTI(s->h_count, 2 * E + 1);
        DEVI(s->d_off, E + 1);
        DEVI(s->d_tiles, 1 + 2 * (size_t)cu_moe_tiles_max((int)(U * K), (int)E));
        int quant_experts = 0; /* the grouped prefill's scratch, when some layer's experts are quantized */
        for (int i = 0; i < c->n_layer; i++)
            quant_experts |= cu_is_quant(&s->M->layers[i].exp_gu) && cu_is_quant(&s->M->layers[i].exp_down);
        if (quant_experts) {
            const size_t xbe = cu_moe_mma_scratch(cu_moe_tiles_max((int)(U * K), (int)E), (int)(H > I ? H : I));
            G4C_TRY(dev(s, (void **)&s->moe_xb, sizeof(__nv_bfloat16) * xbe, 0, err));
            G4C_TRY(dev(s, (void **)&s->pxq, U * H, 0, err));
            G4C_TRY(dev(s, (void **)&s->pdx, sizeof(float2) * U * H / 32, 0, err));
            G4C_TRY(dev(s, (void **)&s->pxq2, R * I, 0, err));
            G4C_TRY(dev(s, (void **)&s->pdx2, sizeof(float2) * R * I / 32, 0, err));
        }
        max_out = 2 * I > max_out ? 2 * I : max_out;
        max_out = E > max_out ? E : max_out;
    }
    G4C_CU(cudaStreamCreateWithFlags(&s->mm.stream, cudaStreamNonBlocking));
    G4C_BLAS(cublasCreate(&s->mm.blas));
    G4C_BLAS(cublasSetStream(s->mm.blas, s->mm.stream));
    G4C_TRY(cu_mm_init(&s->mm, s->U, (int)max_cols, max_out, err));
    /* Programmatic dependent launch: on (bench/RESULTS.md: E4B and 26B-A4B tg128 +11% and +13% on an H100; 31B +6%
     * on an H200 once the norms kept their rows in registers). The fused int8 activations: on for the latency-bound
     * small models, off for wide ones (31B: 126.9 tok/s without, 126.0 with, H200). Env G4C_CUDA_PDL /
     * G4C_CUDA_FUSE = 0|1 override. */
    const int small = c->n_embd <= 4096;
    const int env_pdl = cu_env_switch("G4C_CUDA_PDL"), env_fuse = cu_env_switch("G4C_CUDA_FUSE");
    s->pdl = env_pdl >= 0 ? env_pdl : 1;
    s->fuse = env_fuse >= 0 ? env_fuse : small;
    if (c->moe) {
        G4C_TRY(dev(s, (void **)&s->xq2, (size_t)CU_GEMV_MAX_TOK * s->mm.qx_cols, 0, err));
        G4C_TRY(dev(s, (void **)&s->dx2, sizeof(float2) * CU_GEMV_MAX_TOK * (s->mm.qx_cols / 32), 0, err));
    }
    return G4C_OK;
}

/* Decode: the int8 activations of a product's input, written by the kernel that produces the input (norm, GeGLU,
 * attention) instead of a separate quantization launch; empty ({}) when w is not quantized, for more than
 * CU_GEMV_MAX_TOK tokens, or when the session does not fuse (s->fuse). Slot 0 is the matmul scratch (consumed by the next
 * product), slot 1 the MoE experts' input. */
cu_q8 q_in(const g4c_cuda_text *s, const cu_mat *w, int n, int slot) {
    if (!s->fuse || !cu_is_quant(w) || n > CU_GEMV_MAX_TOK || w->cols > s->mm.qx_cols || w->cols % 32) return {};
    if (slot) return s->xq2 ? cu_q8{s->xq2, s->dx2} : cu_q8{};
    return cu_q8{s->mm.xq, s->mm.dx};
}

/* y = x·wᵀ, from q's int8 activations when the producer wrote them. */
g4c_status mm(g4c_cuda_text *s, float *y, long ys, const float *x, long xs, const cu_mat *w, int n, cu_q8 q,
              g4c_err *err) {
    return q.xq ? cu_matmul_q8(&s->mm, y, ys, q, w, n, err) : cu_matmul(&s->mm, y, ys, x, xs, w, n, err);
}

/* §3.8 MoE branch on the residual x: router input moe_in = norm(x)·router_scale and expert input
 * moe_h = pre_ffn_norm_2(x) (q_h: its int8 form) come from the post-attention norm's launch. Decode (n <=
 * CU_GEMV_MAX_TOK) and the grouped prefill (grouped_moe): the K experts' outputs -> moe_y [n][K][H] (their weighted
 * sum is formed by cu_rms_norm2_sum); the per-expert prefill: the weighted sum -> moe_out. */
g4c_status moe(g4c_cuda_text *s, const cu_layer *D, int n, cu_q8 q_h, g4c_err *err) {
    const g4c_config *c = s->c;
    const int H = c->n_embd, E = c->n_expert, K = c->n_expert_used, I = c->moe_ffn_dim;
    cudaStream_t st = s->mm.stream;
    G4C_TRY(cu_matmul(&s->mm, s->router, E, s->moe_in, H, &D->router, n, err));
    G4C_CU(cu_router_topk(st, s->router, n, E, K, D->per_expert_scale, s->d_sel, s->d_wt));
    if (n <= CU_GEMV_MAX_TOK) { /* decode: every (token, slot) reads its expert's rows, no host round trip */
        if (q_h.xq)
            G4C_TRY(cu_matmul_sel_q8(&s->mm, s->moe_gu, (long)K * 2 * I, 2 * I, q_h, 0, &D->exp_gu, s->d_sel, n, K, err));
        else
            G4C_TRY(cu_matmul_sel(&s->mm, s->moe_gu, (long)K * 2 * I, 2 * I, s->moe_h, H, 0, &D->exp_gu, s->d_sel, n, K,
                                  err));
        const cu_q8 q_c = q_in(s, &D->exp_down, n, 0);
        G4C_CU(cu_gelu_mul(st, s->moe_c, I, s->moe_gu, 2 * I, s->moe_gu + I, 2 * I, n * K, I, q_c));
        if (q_c.xq)
            G4C_TRY(cu_matmul_sel_q8(&s->mm, s->moe_y, (long)K * H, H, q_c, 1, &D->exp_down, s->d_sel, n, K, err));
        else
            G4C_TRY(cu_matmul_sel(&s->mm, s->moe_y, (long)K * H, H, s->moe_c, (long)K * I, I, &D->exp_down, s->d_sel, n,
                                  K, err));
        return G4C_OK;
    }
    const int grouped = moe_grouped(s, D);
    if (grouped) G4C_CU(cu_moe_plan(st, s->d_sel, n * K, E, s->d_off, s->d_gidx, s->d_tiles));
    const int mt = cu_moe_tiles_max(n * K, E);
    if (grouped == 2) { /* prefill, expert-major on tensor cores */
        G4C_CU(cu_moe_mma(st, s->moe_gu, 2 * I, s->moe_h, H, K, &D->exp_gu, s->d_off, s->d_gidx, s->d_tiles, mt, s->moe_xb));
        G4C_CU(cu_gelu_mul(st, s->moe_c, I, s->moe_gu, 2 * I, s->moe_gu + I, 2 * I, n * K, I));
        G4C_CU(cu_moe_mma(st, s->moe_y, H, s->moe_c, I, 1, &D->exp_down, s->d_off, s->d_gidx, s->d_tiles, mt, s->moe_xb));
        return G4C_OK;
    }
    if (grouped == 1) { /* prefill, expert-major on int8 activations */
        G4C_CU(cu_quantize_act(st, s->pxq, s->pdx, s->moe_h, H, 0, n, 1, H));
        G4C_CU(cu_qgemv_grouped(st, s->moe_gu, 2 * I, s->pxq, s->pdx, K, &D->exp_gu, s->d_off, s->d_gidx, s->d_tiles, mt));
        G4C_CU(cu_gelu_mul(st, s->moe_c, I, s->moe_gu, 2 * I, s->moe_gu + I, 2 * I, n * K, I, cu_q8{s->pxq2, s->pdx2}));
        G4C_CU(cu_qgemv_grouped(st, s->moe_y, H, s->pxq2, s->pdx2, 1, &D->exp_down, s->d_off, s->d_gidx, s->d_tiles, mt));
        return G4C_OK;
    }
    /* prefill: each expert once over the tokens routed to it (text.c's loop) */
    G4C_CU(cudaMemcpyAsync(s->h_sel, s->d_sel, sizeof(int) * n * K, cudaMemcpyDeviceToHost, st));
    G4C_CU(cudaMemcpyAsync(s->h_wt, s->d_wt, sizeof(float) * n * K, cudaMemcpyDeviceToHost, st));
    G4C_CU(cudaStreamSynchronize(st));
    int *cnt = s->h_count;
    memset(cnt, 0, sizeof(int) * (E + 1));
    for (int i = 0; i < n * K; i++) {
        if (s->h_sel[i] < 0 || s->h_sel[i] >= E) return G4C_FAIL(err, G4C_E_IO, "CUDA MoE: router chose expert %d", s->h_sel[i]);
        cnt[s->h_sel[i] + 1]++;
    }
    for (int e = 0; e < E; e++) cnt[e + 1] += cnt[e]; /* offsets; then a counting sort, tokens in order per expert */
    int *cur = s->h_count + E + 1;
    memcpy(cur, cnt, sizeof(int) * E);
    for (int t = 0; t < n; t++)
        for (int k = 0; k < K; k++) {
            const int e = s->h_sel[t * K + k], at = cur[e]++;
            s->h_gidx[at] = t, s->h_gw[at] = s->h_wt[t * K + k];
        }
    G4C_CU(cudaMemcpyAsync(s->d_gidx, s->h_gidx, sizeof(int) * n * K, cudaMemcpyHostToDevice, st));
    G4C_CU(cudaMemcpyAsync(s->d_gw, s->h_gw, sizeof(float) * n * K, cudaMemcpyHostToDevice, st));
    G4C_CU(cudaMemsetAsync(s->moe_out, 0, sizeof(float) * n * H, st));
    for (int e = 0; e < E; e++) {
        const int off = cnt[e], m = cnt[e + 1] - cnt[e];
        if (!m) continue;
        const cu_mat gu = cu_mat_rows(&D->exp_gu, (long)e * D->exp_gu.rows, D->exp_gu.rows);
        const cu_mat dn = cu_mat_rows(&D->exp_down, (long)e * D->exp_down.rows, D->exp_down.rows);
        G4C_CU(cu_gather_rows(st, s->moe_in, s->moe_h, s->d_gidx + off, m, H));
        G4C_TRY(cu_matmul(&s->mm, s->moe_gu, 2 * I, s->moe_in, H, &gu, m, err));
        G4C_CU(cu_gelu_mul(st, s->moe_c, I, s->moe_gu, 2 * I, s->moe_gu + I, 2 * I, m, I));
        G4C_TRY(cu_matmul(&s->mm, s->moe_y, H, s->moe_c, I, &dn, m, err));
        G4C_CU(cu_scatter_add(st, s->moe_out, s->moe_y, s->d_gidx + off, s->d_gw + off, m, H));
    }
    return G4C_OK;
}

} // namespace

extern "C" g4c_status g4c_cuda_text_init(g4c_cuda_text **out, g4c_cuda_model *m, int n_ctx, int n_ubatch,
                                         g4c_err *err) {
    *out = NULL;
    if (n_ctx < 1 || n_ubatch < 1)
        return G4C_FAIL(err, G4C_E_ARG, "n_ctx (%d) and n_ubatch (%d) must be positive", n_ctx, n_ubatch);
    g4c_cuda_text *s = (g4c_cuda_text *)calloc(1, sizeof *s);
    if (!s) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    s->M = m, s->c = m->c, s->n_ctx = n_ctx, s->U = n_ubatch < n_ctx ? n_ubatch : n_ctx;
    g4c_status st = init(s, err);
    if (st != G4C_OK) {
        g4c_cuda_text_free(s);
        return st;
    }
    *out = s;
    return G4C_OK;
}

extern "C" void g4c_cuda_text_free(g4c_cuda_text *s) {
    if (!s) return;
    if (s->mm.stream) cudaStreamSynchronize(s->mm.stream);
    if (s->graph) cudaGraphExecDestroy(s->graph);
    cu_mm_free(&s->mm);
    if (s->mm.blas) cublasDestroy(s->mm.blas);
    if (s->mm.stream) cudaStreamDestroy(s->mm.stream);
    for (size_t i = 0; i < s->n_allocs; i++) {
        const uintptr_t p = (uintptr_t)s->allocs[i];
        if (p & 1) cudaFreeHost((void *)(p & ~(uintptr_t)1));
        else cudaFree((void *)p);
    }
    free(s->allocs);
    free(s->kc);
    free(s->vc);
    free(s->cap);
    free(s);
}

extern "C" int g4c_cuda_text_rewind_limit(const g4c_cuda_text *s) {
    int lim = INT_MAX;
    for (int i = 0; i < s->n_slots; i++)
        if (s->cap[i] < s->n_ctx && s->cap[i] - s->c->sliding_window + 1 < lim) lim = s->cap[i] - s->c->sliding_window + 1;
    return lim;
}

extern "C" g4c_status g4c_cuda_text_sync(g4c_cuda_text *s, g4c_err *err) {
    G4C_CU(cudaStreamSynchronize(s->mm.stream));
    return G4C_OK;
}

namespace {

/* Host side of a forward: token ids (placeholders look up pad), the PLE table rows, the image-block bounds and the
 * position into the pinned staging buffers (a replayed decode graph copies them up). */
void prep_host(g4c_cuda_text *s, const int32_t *tokens, int n, int n_past, int use_hi) {
    const g4c_config *c = s->c;
    for (int t = 0; t < n; t++) s->h_ids[t] = is_placeholder(c, tokens[t]) ? c->pad_id : tokens[t];
    if (c->ple_dim) {
        const int LP = c->n_layer * c->ple_dim;
        const g4c_wmat *pe = &s->M->w->ple_embed;
        for (int t = 0; t < n; t++) {
            float *row = s->h_ple + (size_t)t * LP;
            if (pe->data) g4c_wmat_row_f32(pe, s->h_ids[t], row);
            else memset(row, 0, sizeof(float) * LP);
        }
    }
    if (use_hi) g4c_text_visible_hi(c, tokens, n, n_past, s->h_hi);
    s->h_pos[0] = n_past;
}

/* The device work of one forward (g4c_text_forward op for op). graph: the position comes from device memory (d_pos,
 * copied up from h_pos inside the work) and the attention splits are fixed by the cache sizes, so the captured work
 * serves every decode step. logits_mode: 0 none, 1 the softcapped logits into s->logits (rows first.. of the chunk,
 * LR at a time; the caller copies), 2 also the argmax of the last row into d_next, 3 instead its top s->tk_k for
 * sampling into d_tk_out (values, ids, the largest value and the sum of exp((v - largest) / T), T from h_tk[0]). */
g4c_status enqueue_work(g4c_cuda_text *s, const int32_t *tokens, const float *mm_embd, int n, int n_past,
                        int use_hi, int graph, int logits_mode, int all_logits, float *logits, g4c_err *err) {
    const g4c_config *c = s->c;
    const g4c_cuda_model *M = s->M;
    const int H = c->n_embd, V = c->n_vocab;
    cudaStream_t st = s->mm.stream;
    const int *pos_dev = graph ? s->d_pos : NULL;
    const int pos0 = graph ? 0 : n_past;
    if (graph) G4C_CU(cudaMemcpyAsync(s->d_pos, s->h_pos, sizeof(int), cudaMemcpyHostToDevice, st));

    /* the host's inputs first (every copy before the first kernel: the kernels may overlap their predecessor) */
    G4C_CU(cudaMemcpyAsync(s->d_ids, s->h_ids, sizeof(int) * n, cudaMemcpyHostToDevice, st));
    if (c->ple_dim)
        G4C_CU(cudaMemcpyAsync(s->ple_tok, s->h_ple, sizeof(float) * n * c->n_layer * c->ple_dim,
                               cudaMemcpyHostToDevice, st));
    if (use_hi) G4C_CU(cudaMemcpyAsync(s->d_hi, s->h_hi, sizeof(int) * n, cudaMemcpyHostToDevice, st));
    if (logits_mode == 3) G4C_CU(cudaMemcpyAsync(s->d_temp, s->h_tk, sizeof(float), cudaMemcpyHostToDevice, st));
    /* §3.1 embeddings; placeholders look up pad, then take the soft tokens unscaled */
    G4C_CU(cu_embed(st, s->x, &M->embed, s->d_ids, n, sqrtf((float)H)));
    for (int t = 0, m = 0; t < n && mm_embd; t++)
        if (g4c_is_mm_placeholder(c, tokens[t]))
            G4C_CU(cudaMemcpyAsync(s->x + (size_t)t * H, mm_embd + (size_t)m++ * H, sizeof(float) * H,
                                   cudaMemcpyHostToDevice, st));
    /* §3.2 per-layer inputs: projection of the embeddings on the device, table rows gathered on the host */
    if (c->ple_dim) {
        const int P = c->ple_dim, LP = c->n_layer * P;
        G4C_TRY(cu_matmul(&s->mm, s->ple, LP, s->x, H, &M->ple_model_proj, n, err));
        G4C_CU(cu_ple_prep(st, s->ple, s->ple_tok, M->ple_proj_norm, n * c->n_layer, P, c->eps, 1.0f / sqrtf((float)H),
                           sqrtf((float)P), 1.0f / sqrtf(2.0f)));
    }

    for (int il = 0; il < c->n_layer; il++) {
        const g4c_layer_cfg *lc = &c->layers[il];
        const cu_layer *D = &M->layers[il];
        const int nq = c->n_head, hd = lc->head_dim, nkv = lc->n_kv_head, dq = nq * hd, ldq = D->qkv.rows;
        /* §3.4 attention: x += post_attn_norm(o(attn(rope(norm(q, k)), v))) */
        const cu_q8 q_qkv = q_in(s, &D->qkv, n, 0); /* the previous layer's last norm wrote it (as here for il 0) */
        if (il == 0) G4C_CU(cu_rms_norm(st, s->a, H, s->x, H, D->attn_norm, n, H, c->eps, q_qkv)); /* else fused below */
        G4C_TRY(mm(s, s->qkv, ldq, s->a, H, &D->qkv, n, q_qkv, err));
        const int own = lc->kv_slot;
        G4C_CU(cu_qkv_prep(st, s->qkv, ldq, n, nq, nkv, hd, lc->k_eq_v, D->q_norm, D->k_norm, c->eps,
                           M->inv_freq[lc->type], pos0, pos_dev, s->q, own >= 0 ? s->kc[own] : NULL,
                           own >= 0 ? s->vc[own] : NULL, own >= 0 ? s->cap[own] : 1));
        const int src = c->layers[lc->kv_source].kv_slot;
        const int sliding = lc->type == G4C_LAYER_SLIDING;
        const cu_kv view = {s->kc[src], s->vc[src], s->cap[src], nkv, hd, sliding ? c->sliding_window : 0,
                            sliding && use_hi ? s->d_hi : NULL};
        int max_len = graph ? s->n_ctx : n_past + n; /* graph: any position */
        if (sliding && c->sliding_window < max_len) max_len = c->sliding_window + n;
        const cu_q8 q_o = q_in(s, &D->o, n, 0);
        if (n >= 16 && !pos_dev && cu_fast_prefill(&D->qkv) && cu_attention_tc_ok(hd))
            G4C_CU(cu_attention_tc(st, s->attn, s->q, &view, n, pos0, nq));
        else
            G4C_CU(cu_attention(st, s->attn, s->q, &view, n, pos0, pos_dev, nq, cu_attention_splits(n, nq, max_len),
                                s->part, q_o));
        G4C_TRY(mm(s, s->a, H, s->attn, dq, &D->o, n, q_o, err));
        /* x += post_attn_norm(a); h2 = pre_ffn_norm(x) in the same launch (MoE: also the router's and the experts'
         * inputs, norms of the same x) */
        const int F = lc->ffn_dim;
        const cu_q8 q_gu = q_in(s, &D->gate_up, n, 0), q_eh = c->moe ? q_in(s, &D->exp_gu, n, 1) : cu_q8{};
        const cu_norm_out outs[3] = {{s->h2, D->pre_ffn_norm, q_gu},
                                     {s->moe_in, D->router_scale, {}},
                                     {s->moe_h, D->pre_ffn_norm_2, q_eh}};
        G4C_CU(cu_rms_norm_add_ex(st, s->x, s->a, D->post_attn_norm, n, H, c->eps, 1.f, cu_q8{}, outs, c->moe ? 3 : 1));

        /* §3.7 feed-forward: GeGLU over the fused gate|up product [+ §3.8 MoE branch] */
        G4C_TRY(mm(s, s->gu, 2 * F, s->h2, H, &D->gate_up, n, q_gu, err));
        const cu_q8 q_dn = q_in(s, &D->down, n, 0);
        G4C_CU(cu_gelu_mul(st, s->ffc, F, s->gu, 2 * F, s->gu + F, 2 * F, n, F, q_dn));
        G4C_TRY(mm(s, s->a, H, s->ffc, F, &D->down, n, q_dn, err));
        if (c->moe) {
            G4C_TRY(moe(s, D, n, q_eh, err));
            /* the experts' weighted sum formed in the norm's launch from moe_y [n][K][H] (decode, grouped prefill) */
            const int dec = n <= CU_GEMV_MAX_TOK || moe_grouped(s, D);
            G4C_CU(cu_rms_norm2_sum(st, s->a, s->a, D->post_ffn_norm_1, s->moe_out, D->post_ffn_norm_2, n, H, c->eps,
                                    dec ? s->moe_y : NULL, dec ? s->d_wt : NULL, c->n_expert_used));
        }
        if (c->ple_dim) { /* §3.3: x += norm(proj(gelu(gate(x)) ⊙ ple[l])), then the layer scalar */
            const int P = c->ple_dim, LP = c->n_layer * P;
            const cu_q8 q_pg = q_in(s, &D->ple_gate, n, 0), q_pp = q_in(s, &D->ple_proj, n, 0);
            G4C_CU(cu_rms_norm_add_ex(st, s->x, s->a, D->post_ffn_norm, n, H, c->eps, 1.f, q_pg, NULL, 0));
            G4C_TRY(mm(s, s->pg, P, s->x, H, &D->ple_gate, n, q_pg, err));
            G4C_CU(cu_gelu_mul(st, s->pg, P, s->pg, P, s->ple + (size_t)il * P, LP, n, P, q_pp));
            G4C_TRY(mm(s, s->a, H, s->pg, P, &D->ple_proj, n, q_pp, err));
        }
        /* x = (x + norm(a)) · layer_scalar, and the next layer's input norm (attn_norm) into a in the same launch */
        const int last = il + 1 == c->n_layer;
        const cu_norm_out next = {s->a, last ? NULL : M->layers[il + 1].attn_norm,
                                  last ? cu_q8{} : q_in(s, &M->layers[il + 1].qkv, n, 0)};
        G4C_CU(cu_rms_norm_add_ex(st, s->x, s->a, c->ple_dim ? D->ple_post_norm : D->post_ffn_norm, n, H, c->eps,
                                  D->layer_scalar, cu_q8{}, &next, last ? 0 : 1));
    }
    /* §3.9 final norm, tied head, softcap; logits come down LR rows at a time */
    if (!logits_mode) return G4C_OK;
    const int first = all_logits ? 0 : n - 1, m = n - first;
    for (int r0 = 0; r0 < m; r0 += s->logit_rows) {
        const int k = m - r0 < s->logit_rows ? m - r0 : s->logit_rows;
        const cu_q8 q_head = q_in(s, &M->head, k, 0);
        G4C_CU(cu_rms_norm(st, s->a, H, s->x + (size_t)(first + r0) * H, H, M->final_norm, k, H, c->eps, q_head));
        G4C_TRY(mm(s, s->logits, V, s->a, H, &M->head, k, q_head, err));
        if (c->final_softcap > 0) G4C_CU(cu_softcap(st, s->logits, (size_t)k * V, c->final_softcap));
        if (logits_mode == 2 && r0 + k == m) G4C_CU(cu_argmax(st, s->d_next, s->logits + (size_t)(k - 1) * V, V));
        if (logits_mode == 3 && r0 + k == m) {
            const int K = s->tk_k;
            G4C_CU(cu_topk(st, s->logits + (size_t)(k - 1) * V, V, K, s->d_temp, s->d_tk, s->d_tk_out,
                           (int *)(s->d_tk_out + K), s->d_tk_out + 2 * K));
        }
        if (logits)
            G4C_CU(cudaMemcpyAsync(logits + (size_t)r0 * V, s->logits, sizeof(float) * k * V, cudaMemcpyDeviceToHost, st));
    }
    return G4C_OK;
}

/* enqueue_work with the session's launch mode (kernels launched with programmatic dependent launch or not). */
g4c_status enqueue(g4c_cuda_text *s, const int32_t *tokens, const float *mm_embd, int n, int n_past, int use_hi,
                   int graph, int logits_mode, int all_logits, float *logits, g4c_err *err) {
    cu_pdl_set(s->pdl);
    const g4c_status st =
        enqueue_work(s, tokens, mm_embd, n, n_past, use_hi, graph, logits_mode, all_logits, logits, err);
    cu_pdl_set(-1);
    return st;
}

int graphs_enabled(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("G4C_CUDA_GRAPH");
        on = !(e && !strcmp(e, "0"));
    }
    return on;
}

/* One decode step (n = 1, logits of that token) through the captured graph: captured at the first step (and again
 * when use_hi or the mode changes), replayed afterwards; only the pinned staging buffers change between steps. */
g4c_status decode_graph(g4c_cuda_text *s, const int32_t *tok, int n_past, int use_hi, int logits_mode, g4c_err *err) {
    cudaStream_t st = s->mm.stream;
    if (s->graph && (s->graph_hi != use_hi || s->graph_mode != logits_mode || (logits_mode == 3 && s->graph_k != s->tk_k))) {
        cudaGraphExecDestroy(s->graph);
        s->graph = NULL;
    }
    if (!s->graph) {
        G4C_CU(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
        g4c_status e = enqueue(s, tok, NULL, 1, n_past, use_hi, 1, logits_mode, 0, NULL, err);
        cudaGraph_t g = NULL;
        const cudaError_t ce = cudaStreamEndCapture(st, &g);
        if (e != G4C_OK) {
            if (g) cudaGraphDestroy(g);
            return e;
        }
        G4C_CU(ce);
        const cudaError_t ie = cudaGraphInstantiate(&s->graph, g, 0);
        cudaGraphDestroy(g);
        G4C_CU(ie);
        s->graph_hi = use_hi, s->graph_mode = logits_mode, s->graph_k = s->tk_k;
    }
    G4C_CU(cudaGraphLaunch(s->graph, st));
    return G4C_OK;
}

/* tk_out (top-k mode, s->tk_k and h_tk[0] set): the k values, ids and two statistics, as d_tk_out holds them */
g4c_status forward(g4c_cuda_text *s, const int32_t *tokens, const float *mm_embd, int n, int n_past, int bidir_off,
                   float *logits, int all_logits, int32_t *next, g4c_err *err, float *tk_out = nullptr) {
    const g4c_config *c = s->c;
    if (n < 1 || n > s->U || n_past < 0 || n_past + n > s->n_ctx)
        return G4C_FAIL(err, G4C_E_ARG, "CUDA forward: %d tokens at position %d (ubatch %d, context %d)", n, n_past,
                        s->U, s->n_ctx);
    cudaStream_t st = s->mm.stream;
    s->mm.force = G4C_CUDA_MM_AUTO;
    const int use_hi = c->bidir_vision && !bidir_off;
    const int mode = tk_out ? 3 : next ? 2 : logits ? 1 : 0;
    prep_host(s, tokens, n, n_past, use_hi);
    const int graph = n == 1 && mode && graphs_enabled() && !(mm_embd && g4c_is_mm_placeholder(c, tokens[0]));
    if (graph) {
        G4C_TRY(decode_graph(s, tokens, n_past, use_hi, mode, err));
        if (logits) G4C_CU(cudaMemcpyAsync(logits, s->logits, sizeof(float) * c->n_vocab, cudaMemcpyDeviceToHost, st));
    } else
        G4C_TRY(enqueue(s, tokens, mm_embd, n, n_past, use_hi, 0, mode, all_logits, logits, err));
    if (next) G4C_CU(cudaMemcpyAsync(s->h_next, s->d_next, sizeof(int), cudaMemcpyDeviceToHost, st));
    const size_t tk_bytes = sizeof(float) * (2 * (size_t)s->tk_k + 2);
    if (tk_out) G4C_CU(cudaMemcpyAsync(s->h_tk + 1, s->d_tk_out, tk_bytes, cudaMemcpyDeviceToHost, st));
    G4C_CU(cudaStreamSynchronize(st));
    if (next) *next = s->h_next[0];
    if (tk_out) memcpy(tk_out, s->h_tk + 1, tk_bytes);
    return G4C_OK;
}

} // namespace

extern "C" g4c_status g4c_cuda_text_forward(g4c_cuda_text *s, const int32_t *tokens, const float *mm_embd, int n,
                                            int n_past, int bidir_off, float *logits, int all_logits, g4c_err *err) {
    return forward(s, tokens, mm_embd, n, n_past, bidir_off, logits, all_logits, NULL, err);
}

extern "C" g4c_status g4c_cuda_text_forward_topk(g4c_cuda_text *s, int32_t token, int n_past, int bidir_off, int k,
                                                 float temperature, float *logit, int32_t *id, float *stats,
                                                 g4c_err *err) {
    if (!g4c_cuda_topk_supported(s->c->n_vocab, k) || !(temperature > 0))
        return G4C_FAIL(err, G4C_E_ARG, "CUDA top-k: k %d (1..%d) at temperature %g", k, CU_TOPK_MAX, temperature);
    float out[2 * CU_TOPK_MAX + 2];
    s->tk_k = k;
    s->h_tk[0] = temperature; /* copied up by the forward's first copies (the graph's too) */
    G4C_TRY(forward(s, &token, NULL, 1, n_past, bidir_off, NULL, 0, NULL, err, out));
    memcpy(logit, out, sizeof(float) * k);
    memcpy(id, out + k, sizeof(int32_t) * k);
    stats[0] = out[2 * k], stats[1] = out[2 * k + 1];
    return G4C_OK;
}

extern "C" g4c_status g4c_cuda_text_forward_greedy(g4c_cuda_text *s, const int32_t *tokens, const float *mm_embd, int n,
                                                   int n_past, int bidir_off, int32_t *next, float *logits,
                                                   g4c_err *err) {
    return forward(s, tokens, mm_embd, n, n_past, bidir_off, logits, 0, next, err);
}
