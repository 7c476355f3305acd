/* Single ops on host arrays for the conformance test (tests/cuda/test_cuda.c): upload the inputs, run the same
 * launcher the forward pass uses, download the result. Slow by design (every call allocates); never on a hot path.
 * Also the ceilings and the GEMV comparison for bench/bench_cuda.c. */
#include <algorithm>
#include <cuda_profiler_api.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/cuda/cuda_model.cuh"

namespace {

/* Device copies freed together at the end of an op. */
struct scope {
    void *p[16];
    int n = 0;
    ~scope() {
        for (int i = 0; i < n; i++) cudaFree(p[i]);
    }
    template <typename T>
    cudaError_t up(T **d, const T *h, size_t count) {
        cudaError_t e = cudaMalloc((void **)d, sizeof(T) * (count ? count : 1));
        if (e != cudaSuccess) return e;
        p[n++] = *d;
        return h ? cudaMemcpy(*d, h, sizeof(T) * count, cudaMemcpyHostToDevice) : cudaSuccess;
    }
};

/* A throwaway model holding one matrix, uploaded exactly as the real upload does. */
g4c_status upload_one(g4c_cuda_model **M, cu_mat *d, const g4c_wmat *w, g4c_err *err) {
    static g4c_config cfg; /* an empty model: no layers */
    static g4c_weights ws;
    memset(&cfg, 0, sizeof cfg);
    memset(&ws, 0, sizeof ws);
    cfg.n_embd = (int)w->cols;
    cfg.tie_embeddings = 1;
    ws.embed = *w;
    ws.lm_head = *w;
    float *ones = (float *)malloc(sizeof(float) * (size_t)w->cols);
    if (!ones) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    for (int64_t i = 0; i < w->cols; i++) ones[i] = 1.f;
    ws.final_norm = ones;
    g4c_status st = g4c_cuda_model_upload(M, &cfg, &ws, err);
    free(ones);
    if (st == G4C_OK) *d = (*M)->embed;
    return st;
}

double median(double *v, int n) {
    std::sort(v, v + n);
    return v[n / 2];
}

} // namespace

extern "C" g4c_status g4c_cuda_op_matmul(float *y, const float *x, const g4c_wmat *w, int n, int path, g4c_err *err) {
    g4c_cuda_model *M = NULL;
    cu_mat d;
    G4C_TRY(upload_one(&M, &d, w, err));
    scope sc;
    float *dx, *dy;
    cu_mm mm = {};
    g4c_status st = G4C_OK;
    cudaError_t e = sc.up(&dx, x, (size_t)n * d.cols);
    if (e == cudaSuccess) e = sc.up<float>(&dy, NULL, (size_t)n * d.rows);
    if (e == cudaSuccess) e = cudaMemset(dy, 0xff, sizeof(float) * n * d.rows); /* NaN poison: every output written */
    if (e != cudaSuccess) st = G4C_FAIL(err, G4C_E_IO, "CUDA: %s", cudaGetErrorString(e));
    if (st == G4C_OK && cublasCreate(&mm.blas) != CUBLAS_STATUS_SUCCESS) st = G4C_FAIL(err, G4C_E_IO, "cuBLAS init failed");
    if (st == G4C_OK) st = cu_mm_init(&mm, n, d.cols, d.rows, err);
    if (st == G4C_OK) {
        mm.force = path;
        st = cu_matmul(&mm, dy, d.rows, dx, d.cols, &d, n, err);
    }
    if (st == G4C_OK && (e = cudaMemcpy(y, dy, sizeof(float) * n * d.rows, cudaMemcpyDeviceToHost)) != cudaSuccess)
        st = G4C_FAIL(err, G4C_E_IO, "CUDA: %s", cudaGetErrorString(e));
    cu_mm_free(&mm);
    if (mm.blas) cublasDestroy(mm.blas);
    g4c_cuda_model_free(M);
    return st;
}

extern "C" g4c_status g4c_cuda_op_moe_experts(float *y, const float *x, const g4c_wmat *w, int n_expert, const int *sel,
                                              int n_pairs, int x_div, int path, g4c_err *err) {
    g4c_cuda_model *M = NULL;
    cu_mat d;
    G4C_TRY(upload_one(&M, &d, w, err));
    d.rows /= n_expert; /* the experts' matrices stacked, as the model's exp_gu / exp_down */
    scope sc;
    float *dxf, *dy;
    int *dsel, *doff, *dlist, *dtiles;
    const int max_tiles = cu_moe_tiles_max(n_pairs, n_expert);
    int8_t *xq;
    float2 *xd;
    const int nx = (n_pairs + x_div - 1) / x_div, cols32 = (d.cols + 31) & ~31;
    g4c_status st = G4C_OK;
    cudaError_t e = sc.up(&dxf, x, (size_t)nx * d.cols);
    if (e == cudaSuccess) e = sc.up<float>(&dy, NULL, (size_t)n_pairs * d.rows);
    if (e == cudaSuccess) e = cudaMemset(dy, 0xff, sizeof(float) * n_pairs * d.rows); /* NaN poison */
    if (e == cudaSuccess) e = sc.up(&dsel, sel, (size_t)n_pairs);
    if (e == cudaSuccess) e = sc.up<int>(&doff, NULL, (size_t)n_expert + 1);
    if (e == cudaSuccess) e = sc.up<int>(&dlist, NULL, (size_t)n_pairs);
    if (e == cudaSuccess) e = sc.up<int>(&dtiles, NULL, 1 + 2 * (size_t)max_tiles);
    __nv_bfloat16 *xb = NULL;
    if (e == cudaSuccess) e = sc.up<__nv_bfloat16>(&xb, NULL, cu_moe_mma_scratch(max_tiles, d.cols));
    if (e == cudaSuccess) e = sc.up<int8_t>(&xq, NULL, (size_t)nx * cols32);
    if (e == cudaSuccess) e = sc.up<float2>(&xd, NULL, (size_t)nx * cols32 / 32);
    if (e == cudaSuccess) e = cu_moe_plan(0, dsel, n_pairs, n_expert, doff, dlist, dtiles);
    if (e == cudaSuccess && path == 1) e = cu_quantize_act(0, xq, xd, dxf, d.cols, 0, nx, 1, d.cols);
    if (e == cudaSuccess)
        e = path == 1 ? cu_qgemv_grouped(0, dy, d.rows, xq, xd, x_div, &d, doff, dlist, dtiles, max_tiles)
                      : cu_moe_mma(0, dy, d.rows, dxf, d.cols, x_div, &d, doff, dlist, dtiles, max_tiles, xb);
    if (e == cudaSuccess) e = cudaMemcpy(y, dy, sizeof(float) * n_pairs * d.rows, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) st = G4C_FAIL(err, G4C_E_IO, "CUDA: %s", cudaGetErrorString(e));
    g4c_cuda_model_free(M);
    return st;
}

extern "C" g4c_status g4c_cuda_op_topk(float *vals, int *ids, float *stats, const float *x, int n, int k, float temp,
                                       g4c_err *err) {
    scope sc;
    float *dx, *dt, *dscr, *dout;
    G4C_CU(sc.up(&dx, x, (size_t)n));
    G4C_CU(sc.up(&dt, &temp, 1));
    G4C_CU(sc.up<float>(&dscr, NULL, cu_topk_scratch_floats(n, k)));
    G4C_CU(sc.up<float>(&dout, NULL, 2 * (size_t)k + 2));
    G4C_CU(cu_topk(0, dx, n, k, dt, dscr, dout, (int *)(dout + k), dout + 2 * k));
    G4C_CU(cudaMemcpy(vals, dout, sizeof(float) * k, cudaMemcpyDeviceToHost));
    G4C_CU(cudaMemcpy(ids, dout + k, sizeof(int) * k, cudaMemcpyDeviceToHost));
    G4C_CU(cudaMemcpy(stats, dout + 2 * k, sizeof(float) * 2, cudaMemcpyDeviceToHost));
    return G4C_OK;
}

extern "C" g4c_status g4c_cuda_op_rms_norm(float *y, const float *x, const float *w, int n_rows, int dim, float eps,
                                           g4c_err *err) {
    scope sc;
    float *dx, *dw = NULL;
    G4C_CU(sc.up(&dx, x, (size_t)n_rows * dim));
    if (w) G4C_CU(sc.up(&dw, w, (size_t)dim));
    G4C_CU(cu_rms_norm(0, dx, dim, dx, dim, dw, n_rows, dim, eps));
    G4C_CU(cudaMemcpy(y, dx, sizeof(float) * n_rows * dim, cudaMemcpyDeviceToHost));
    return G4C_OK;
}

extern "C" g4c_status g4c_cuda_op_gelu_mul(float *y, const float *gate, const float *up, int n, g4c_err *err) {
    scope sc;
    float *dg, *du, *dy;
    G4C_CU(sc.up(&dg, gate, (size_t)n));
    G4C_CU(sc.up(&du, up, (size_t)n));
    G4C_CU(sc.up<float>(&dy, NULL, (size_t)n));
    /* as rows of 97 with a tail row: exercises the strided form the model uses */
    const int dim = 97, rows = n / dim, rest = n - rows * dim;
    if (rows) G4C_CU(cu_gelu_mul(0, dy, dim, dg, dim, du, dim, rows, dim));
    if (rest)
        G4C_CU(cu_gelu_mul(0, dy + (size_t)rows * dim, rest, dg + (size_t)rows * dim, rest, du + (size_t)rows * dim, rest, 1,
                           rest));
    G4C_CU(cudaMemcpy(y, dy, sizeof(float) * n, cudaMemcpyDeviceToHost));
    return G4C_OK;
}

extern "C" g4c_status g4c_cuda_op_softcap(float *x, int n, float cap, g4c_err *err) {
    scope sc;
    float *dx;
    G4C_CU(sc.up(&dx, x, (size_t)n));
    G4C_CU(cu_softcap(0, dx, (size_t)n, cap));
    G4C_CU(cudaMemcpy(x, dx, sizeof(float) * n, cudaMemcpyDeviceToHost));
    return G4C_OK;
}

extern "C" g4c_status g4c_cuda_op_norm_rope(float *x, const float *w, int n_tok, int n_heads, int head_dim, float eps,
                                            const float *inv_freq, int pos0, g4c_err *err) {
    scope sc;
    float *dx, *dq, *dw = NULL, *df;
    const size_t n = (size_t)n_tok * n_heads * head_dim;
    G4C_CU(sc.up(&dx, x, n));
    G4C_CU(sc.up<float>(&dq, NULL, n));
    if (w) G4C_CU(sc.up(&dw, w, (size_t)head_dim));
    G4C_CU(sc.up(&df, inv_freq, (size_t)head_dim / 2));
    /* the position from device memory (the decode graph's form): half of it there, half as the argument */
    int *dpos;
    const int half = pos0 / 2;
    G4C_CU(sc.up(&dpos, &half, 1));
    G4C_CU(cu_qkv_prep(0, dx, (long)n_heads * head_dim, n_tok, n_heads, 1, head_dim, 0, dw, NULL, eps, df, pos0 - half,
                       dpos, dq, NULL, NULL, 1));
    G4C_CU(cudaMemcpy(x, dq, sizeof(float) * n, cudaMemcpyDeviceToHost));
    return G4C_OK;
}

namespace {

/* Device room for an op's int8 output rows (only when the host asked for them). */
cudaError_t q8_alloc(scope &sc, cu_q8 *q, const g4c_cuda_q8 *h, int rows, int cols) {
    *q = {};
    if (!h || !h->q) return cudaSuccess;
    cudaError_t e = sc.up<int8_t>(&q->xq, NULL, (size_t)rows * cols);
    if (e == cudaSuccess) e = sc.up<float2>(&q->dx, NULL, (size_t)rows * (cols / 32));
    if (e == cudaSuccess) e = cudaMemset(q->xq, 0x55, (size_t)rows * cols); /* poison: every code written */
    if (e == cudaSuccess) e = cudaMemset(q->dx, 0xff, sizeof(float2) * rows * (cols / 32));
    return e;
}

cudaError_t q8_down(g4c_cuda_q8 *h, const cu_q8 &q, int rows, int cols) {
    if (!h || !h->q) return cudaSuccess;
    const size_t nb = (size_t)rows * (cols / 32);
    cudaError_t e = cudaMemcpy(h->q, q.xq, (size_t)rows * cols, cudaMemcpyDeviceToHost);
    float2 *dx = (float2 *)malloc(sizeof(float2) * (nb ? nb : 1));
    if (!dx) return cudaErrorMemoryAllocation;
    if (e == cudaSuccess) e = cudaMemcpy(dx, q.dx, sizeof(float2) * nb, cudaMemcpyDeviceToHost);
    for (size_t b = 0; b < nb && e == cudaSuccess; b++) {
        int bits;
        memcpy(&bits, &dx[b].y, sizeof bits);
        h->d[b] = dx[b].x;
        h->sum[2 * b] = (int)(short)(bits & 0xffff);
        h->sum[2 * b + 1] = bits >> 16;
    }
    free(dx);
    return e;
}

} // namespace

extern "C" g4c_status g4c_cuda_op_rms_norm_q8(float *y, g4c_cuda_q8 *q, const float *x, const float *w, int n_rows,
                                              int dim, float eps, g4c_err *err) {
    scope sc;
    float *dx, *dy, *dw = NULL;
    cu_q8 dq;
    G4C_CU(sc.up(&dx, x, (size_t)n_rows * dim));
    G4C_CU(sc.up<float>(&dy, NULL, (size_t)n_rows * dim));
    if (w) G4C_CU(sc.up(&dw, w, (size_t)dim));
    G4C_CU(q8_alloc(sc, &dq, q, n_rows, dim));
    G4C_CU(cu_rms_norm(0, dy, dim, dx, dim, dw, n_rows, dim, eps, dq));
    G4C_CU(cudaMemcpy(y, dy, sizeof(float) * n_rows * dim, cudaMemcpyDeviceToHost));
    G4C_CU(q8_down(q, dq, n_rows, dim));
    return G4C_OK;
}

extern "C" g4c_status g4c_cuda_op_norm_add_q8(float *res, float *y, g4c_cuda_q8 *qres, g4c_cuda_q8 *qy, const float *a,
                                              const float *w, const float *w_out, int n_out, int n_rows, int dim,
                                              float eps, float scale, g4c_err *err) {
    if (n_out < 0 || n_out > CU_NORM_OUTS) return G4C_FAIL(err, G4C_E_ARG, "norm_add: %d outputs", n_out);
    scope sc;
    const size_t n = (size_t)n_rows * dim;
    float *dres, *da, *dw, *dwo = NULL, *dy = NULL;
    cu_q8 dqr, dqy[CU_NORM_OUTS];
    G4C_CU(sc.up(&dres, res, n));
    G4C_CU(sc.up(&da, a, n));
    G4C_CU(sc.up(&dw, w, (size_t)dim));
    if (n_out) {
        G4C_CU(sc.up(&dwo, w_out, (size_t)n_out * dim));
        G4C_CU(sc.up<float>(&dy, NULL, (size_t)n_out * n));
    }
    G4C_CU(q8_alloc(sc, &dqr, qres, n_rows, dim));
    cu_norm_out o[CU_NORM_OUTS];
    for (int k = 0; k < n_out; k++) {
        G4C_CU(q8_alloc(sc, &dqy[k], qy ? &qy[k] : NULL, n_rows, dim));
        o[k] = {dy + (size_t)k * n, dwo + (size_t)k * dim, dqy[k]};
    }
    G4C_CU(cu_rms_norm_add_ex(0, dres, da, dw, n_rows, dim, eps, scale, dqr, o, n_out));
    G4C_CU(cudaMemcpy(res, dres, sizeof(float) * n, cudaMemcpyDeviceToHost));
    if (n_out) G4C_CU(cudaMemcpy(y, dy, sizeof(float) * n_out * n, cudaMemcpyDeviceToHost));
    G4C_CU(q8_down(qres, dqr, n_rows, dim));
    for (int k = 0; k < n_out && qy; k++) G4C_CU(q8_down(&qy[k], dqy[k], n_rows, dim));
    return G4C_OK;
}

extern "C" g4c_status g4c_cuda_op_gelu_mul_q8(float *y, g4c_cuda_q8 *q, const float *gate, const float *up, int n_rows,
                                              int dim, g4c_err *err) {
    scope sc;
    const size_t n = (size_t)n_rows * dim;
    float *dg, *du, *dy;
    cu_q8 dq;
    G4C_CU(sc.up(&dg, gate, n));
    G4C_CU(sc.up(&du, up, n));
    G4C_CU(sc.up<float>(&dy, NULL, n));
    G4C_CU(q8_alloc(sc, &dq, q, n_rows, dim));
    G4C_CU(cu_gelu_mul(0, dy, dim, dg, dim, du, dim, n_rows, dim, dq));
    G4C_CU(cudaMemcpy(y, dy, sizeof(float) * n, cudaMemcpyDeviceToHost));
    G4C_CU(q8_down(q, dq, n_rows, dim));
    return G4C_OK;
}

extern "C" g4c_status g4c_cuda_op_moe_norm2(float *y, float *b, const float *a, const float *wa, const float *ey,
                                            const float *wt, int n_slot, const float *wb, int n_rows, int dim, float eps,
                                            g4c_err *err) {
    scope sc;
    const size_t n = (size_t)n_rows * dim;
    float *da, *dwa, *dey, *dwt, *dwb, *db, *dy;
    G4C_CU(sc.up(&da, a, n));
    G4C_CU(sc.up(&dwa, wa, (size_t)dim));
    G4C_CU(sc.up(&dey, ey, n * n_slot));
    G4C_CU(sc.up(&dwt, wt, (size_t)n_rows * n_slot));
    G4C_CU(sc.up(&dwb, wb, (size_t)dim));
    G4C_CU(sc.up<float>(&db, NULL, n));
    G4C_CU(sc.up<float>(&dy, NULL, n));
    G4C_CU(cu_rms_norm2_sum(0, dy, da, dwa, db, dwb, n_rows, dim, eps, dey, dwt, n_slot));
    G4C_CU(cudaMemcpy(y, dy, sizeof(float) * n, cudaMemcpyDeviceToHost));
    G4C_CU(cudaMemcpy(b, db, sizeof(float) * n, cudaMemcpyDeviceToHost));
    return G4C_OK;
}

extern "C" g4c_status g4c_cuda_op_attention(float *out, const float *q, const g4c_kv_view *kv, int n_tok, int pos0,
                                            int n_head, int n_split, g4c_err *err) {
    return g4c_cuda_op_attention_q8(out, NULL, q, kv, n_tok, pos0, n_head, n_split, err);
}

extern "C" g4c_status g4c_cuda_op_attention_q8(float *out, g4c_cuda_q8 *q8, const float *q, const g4c_kv_view *kv,
                                               int n_tok, int pos0, int n_head, int n_split, g4c_err *err) {
    scope sc;
    const int hd = kv->head_dim;
    const size_t nkv = (size_t)kv->cap * kv->n_kv_head * hd, nq = (size_t)n_tok * n_head * hd;
    float *dq, *dk, *dv, *dout, *part;
    int *dhi = NULL;
    G4C_CU(sc.up(&dq, q, nq));
    G4C_CU(sc.up(&dk, kv->k, nkv));
    G4C_CU(sc.up(&dv, kv->v, nkv));
    G4C_CU(sc.up<float>(&dout, NULL, nq));
    G4C_CU(cudaMemset(dout, 0xff, sizeof(float) * nq));
    G4C_CU(sc.up<float>(&part, NULL, cu_attention_part_floats(hd)));
    G4C_CU(cu_attention_part_init(part));
    if (kv->hi) G4C_CU(sc.up(&dhi, kv->hi, (size_t)n_tok));
    const cu_kv v = {dk, dv, kv->cap, kv->n_kv_head, hd, kv->window, dhi};
    if (n_split <= 0) n_split = cu_attention_splits(n_tok, n_head, pos0 + n_tok);
    /* single queries take their position from device memory (the decode graph's form) */
    int *dpos = NULL;
    if (n_tok == 1) G4C_CU(sc.up(&dpos, &pos0, 1));
    cu_q8 dq8;
    G4C_CU(q8_alloc(sc, &dq8, q8, n_tok, n_head * hd));
    if (cu_attention_variant() == G4C_CUDA_ATTN_TC && !dpos && !q8)
        G4C_CU(cu_attention_tc(0, dout, dq, &v, n_tok, pos0, n_head));
    else
        G4C_CU(cu_attention(0, dout, dq, &v, n_tok, dpos ? 0 : pos0, dpos, n_head, n_split, part, dq8));
    G4C_CU(cudaMemcpy(out, dout, sizeof(float) * nq, cudaMemcpyDeviceToHost));
    G4C_CU(q8_down(q8, dq8, n_tok, n_head * hd));
    return G4C_OK;
}

extern "C" g4c_status g4c_cuda_op_router_topk(int *sel, float *wt, const float *logits, int n, int n_expert, int k,
                                              const float *per_expert_scale, g4c_err *err) {
    scope sc;
    float *dl, *dp, *dw;
    int *ds;
    G4C_CU(sc.up(&dl, logits, (size_t)n * n_expert));
    G4C_CU(sc.up(&dp, per_expert_scale, (size_t)n_expert));
    G4C_CU(sc.up<float>(&dw, NULL, (size_t)n * k));
    G4C_CU(sc.up<int>(&ds, NULL, (size_t)n * k));
    G4C_CU(cu_router_topk(0, dl, n, n_expert, k, dp, ds, dw));
    G4C_CU(cudaMemcpy(sel, ds, sizeof(int) * n * k, cudaMemcpyDeviceToHost));
    G4C_CU(cudaMemcpy(wt, dw, sizeof(float) * n * k, cudaMemcpyDeviceToHost));
    return G4C_OK;
}

/* ---- measurements ---- */

extern "C" double g4c_cuda_copy_bandwidth(size_t bytes, int reps) {
    void *a = NULL, *b = NULL;
    if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) {
        cudaFree(a);
        return 0;
    }
    cudaMemset(a, 1, bytes);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    double t[64];
    reps = reps > 64 ? 64 : reps;
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice); /* warm-up */
    for (int i = 0; i < reps; i++) {
        cudaEventRecord(e0);
        cudaMemcpy(i & 1 ? a : b, i & 1 ? b : a, bytes, cudaMemcpyDeviceToDevice);
        cudaEventRecord(e1);
        cudaEventSynchronize(e1);
        float ms;
        cudaEventElapsedTime(&ms, e0, e1);
        t[i] = ms;
    }
    const double ms = median(t, reps);
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    cudaFree(a), cudaFree(b);
    return 2.0 * bytes / (ms * 1e-3) / 1e9;
}

extern "C" void g4c_cuda_set_attention_variant(int variant) { cu_attention_set_variant(variant); }

extern "C" double g4c_cuda_attention_time(int n, int pos0, int n_head, int n_kv_head, int head_dim, int cap, int window,
                                          int reps) {
    scope sc;
    float *q, *k, *v, *out, *part;
    const size_t nkv = (size_t)cap * n_kv_head * head_dim, nq = (size_t)n * n_head * head_dim;
    if (sc.up<float>(&q, NULL, nq) || sc.up<float>(&k, NULL, nkv) || sc.up<float>(&v, NULL, nkv) ||
        sc.up<float>(&out, NULL, nq) || sc.up<float>(&part, NULL, cu_attention_part_floats(head_dim)) ||
        cu_attention_part_init(part))
        return -1;
    cu_mat mq = cu_dense(CU_F32, q, n * n_head, head_dim, head_dim), mk = cu_dense(CU_F32, k, cap * n_kv_head, head_dim, head_dim);
    cu_mat mv = mk;
    mv.p = v;
    cu_fill_random(0, &mq, mq.rows, 1, 0.5f), cu_fill_random(0, &mk, mk.rows, 2, 0.5f), cu_fill_random(0, &mv, mv.rows, 3, 1.f);
    const cu_kv view = {k, v, cap, n_kv_head, head_dim, window, NULL};
    int max_len = pos0 + n;
    if (window && window < max_len) max_len = window + n;
    const int split = cu_attention_splits(n, n_head, max_len);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    double t[64];
    reps = reps > 64 ? 64 : reps;
    for (int i = -2; i < reps; i++) {
        cudaEventRecord(e0);
        if (cu_attention(0, out, q, &view, n, pos0, nullptr, n_head, split, part) != cudaSuccess) return -1;
        cudaEventRecord(e1);
        cudaEventSynchronize(e1);
        float ms;
        cudaEventElapsedTime(&ms, e0, e1);
        if (i >= 0) t[i] = ms * 1e3;
    }
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    return cudaDeviceSynchronize() == cudaSuccess ? median(t, reps) : -1;
}

extern "C" void g4c_cuda_profiler(int on) {
    cudaDeviceSynchronize();
    if (on) cudaProfilerStart();
    else cudaProfilerStop();
}

extern "C" double g4c_cuda_gemm_rate(int size, int reps) {
    const size_t n = (size_t)size * size;
    cu_mat m = cu_dense(CU_BF16, NULL, size, size, size);
    void *b = NULL;
    float *c = NULL;
    cublasHandle_t h = NULL;
    double rate = 0;
    if (cudaMalloc(&m.p, n * 2) == cudaSuccess && cudaMalloc(&b, n * 2) == cudaSuccess &&
        cudaMalloc((void **)&c, n * 4) == cudaSuccess && cublasCreate(&h) == CUBLAS_STATUS_SUCCESS) {
        cu_fill_random(0, &m, size, 7, 1.f); /* random data: zeros run faster (METHOD.md) */
        cu_mat mb = m;
        mb.p = b;
        cu_fill_random(0, &mb, size, 11, 1.f);
        const float one = 1.f, zero = 0.f;
        cudaEvent_t e0, e1;
        cudaEventCreate(&e0), cudaEventCreate(&e1);
        double t[64];
        reps = reps > 64 ? 64 : reps;
        for (int i = -2; i < reps; i++) {
            cudaEventRecord(e0);
            cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, size, size, size, &one, m.p, CUDA_R_16BF, size, b, CUDA_R_16BF, size,
                         &zero, c, CUDA_R_32F, size, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
            cudaEventRecord(e1);
            cudaEventSynchronize(e1);
            float ms;
            cudaEventElapsedTime(&ms, e0, e1);
            if (i >= 0) t[i] = ms;
        }
        rate = 2.0 * size * (double)size * size / (median(t, reps) * 1e-3) / 1e12;
        cudaEventDestroy(e0), cudaEventDestroy(e1);
    }
    if (h) cublasDestroy(h);
    cudaFree(m.p), cudaFree(b), cudaFree(c);
    return rate;
}

extern "C" g4c_status g4c_cuda_gemv_compare(int rows, int cols, int n, int reps, double *us_gemv, double *us_cublas,
                                            g4c_err *err) {
    /* several copies of the matrix, rotated, so that no run finds its weights in the 50 MB L2 */
    const int copies = 4;
    cu_mat m[copies];
    scope sc;
    float *x, *y;
    __nv_bfloat16 *xb;
    for (int i = 0; i < copies; i++) {
        m[i] = cu_dense(CU_BF16, NULL, rows, cols, cu_round8(cols));
        __nv_bfloat16 *p;
        G4C_CU(sc.up<__nv_bfloat16>(&p, NULL, (size_t)rows * m[i].ld));
        m[i].p = p;
        G4C_CU(cu_fill_random(0, &m[i], rows, 100 + i, 1.f));
    }
    G4C_CU(sc.up<float>(&x, NULL, (size_t)n * cols));
    G4C_CU(sc.up<float>(&y, NULL, (size_t)n * rows));
    G4C_CU(sc.up<__nv_bfloat16>(&xb, NULL, (size_t)n * m[0].ld));
    cu_mat xm = cu_dense(CU_F32, x, n, cols, cols);
    G4C_CU(cu_fill_random(0, &xm, n, 5, 1.f));
    cu_mat xbm = cu_dense(CU_BF16, xb, n, cols, m[0].ld);
    G4C_CU(cu_fill_random(0, &xbm, n, 6, 1.f));
    cublasHandle_t h;
    G4C_BLAS(cublasCreate(&h));
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    double t[2][256];
    reps = reps > 256 ? 256 : reps;
    const float one = 1.f, zero = 0.f;
    g4c_status st = G4C_OK;
    for (int kind = 0; kind < 2 && st == G4C_OK; kind++)
        for (int i = -4; i < reps; i++) {
            const cu_mat *w = &m[(i + 4) % copies];
            cudaEventRecord(e0);
            if (kind == 0) {
                if (cu_gemv(0, y, rows, x, cols, w, n) != cudaSuccess) st = G4C_FAIL(err, G4C_E_IO, "gemv launch failed");
            } else if (cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, rows, n, cols, &one, w->p, CUDA_R_16BF, w->ld, xb,
                                    CUDA_R_16BF, w->ld, &zero, y, CUDA_R_32F, rows, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS) {
                st = G4C_FAIL(err, G4C_E_IO, "cublasGemmEx failed");
            }
            cudaEventRecord(e1);
            cudaEventSynchronize(e1);
            float ms;
            cudaEventElapsedTime(&ms, e0, e1);
            if (i >= 0) t[kind][i] = ms * 1e3;
        }
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    cublasDestroy(h);
    G4C_TRY(st);
    G4C_CU(cudaDeviceSynchronize());
    *us_gemv = median(t[0], reps);
    *us_cublas = median(t[1], reps);
    return G4C_OK;
}

extern "C" g4c_status g4c_cuda_qgemv_time(int dtype, int rows, int cols, int n, int reps, double *us, double *bytes,
                                          g4c_err *err) {
    int dt = -1;
    switch (dtype) {
    case G4C_DTYPE_Q4_0: dt = CU_Q4_0; break;
    case G4C_DTYPE_Q8_0: dt = CU_Q8_0; break;
    case G4C_DTYPE_Q4_K: dt = CU_Q4_K; break;
    case G4C_DTYPE_Q5_K: dt = CU_Q5_K; break;
    case G4C_DTYPE_Q6_K: dt = CU_Q6_K; break;
    default: return G4C_FAIL(err, G4C_E_ARG, "not a GPU quant type");
    }
    const cu_qlayout L = cu_q_layout(dt);
    if (cols % L.block) return G4C_FAIL(err, G4C_E_ARG, "cols %d not a multiple of %d", cols, L.block);
    const int copies = 4;
    cu_mat m[copies];
    scope sc;
    const size_t nblk = (size_t)rows * (cols / L.block);
    for (int i = 0; i < copies; i++) {
        m[i] = cu_dense(dt, NULL, rows, cols, cols);
        m[i].nb = cols / L.block;
        uint8_t *p;
        G4C_CU(sc.up<uint8_t>(&p, NULL, nblk * (L.qb + L.mb + L.hb + L.sb)));
        m[i].p = p, m[i].m = p + nblk * L.qb;
        m[i].h = L.hb ? p + nblk * (L.qb + L.mb) : NULL;
        m[i].s = L.sb ? p + nblk * (L.qb + L.mb + L.hb) : NULL;
        G4C_CU(cu_fill_random_q(0, &m[i], rows, 100 + i, 0.02f));
    }
    float *x, *y;
    float2 *dx;
    int8_t *xq;
    G4C_CU(sc.up<float>(&x, NULL, (size_t)n * cols));
    G4C_CU(sc.up<float>(&y, NULL, (size_t)n * rows));
    G4C_CU(sc.up<int8_t>(&xq, NULL, (size_t)n * cols));
    G4C_CU(sc.up<float2>(&dx, NULL, (size_t)n * cols / 32));
    cu_mat xm = cu_dense(CU_F32, x, n, cols, cols);
    G4C_CU(cu_fill_random(0, &xm, n, 5, 1.f));
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    double t[256];
    reps = reps > 256 ? 256 : reps;
    g4c_status st = G4C_OK;
    for (int i = -4; i < reps && st == G4C_OK; i++) {
        const cu_mat *w = &m[(i + 4) % copies];
        cudaEventRecord(e0);
        if (cu_quantize_act(0, xq, dx, x, cols, 0, n, 1, cols) != cudaSuccess ||
            cu_qgemv(0, y, rows, 0, xq, dx, 0, w, n, nullptr, 1) != cudaSuccess)
            st = G4C_FAIL(err, G4C_E_IO, "qgemv launch failed");
        cudaEventRecord(e1);
        cudaEventSynchronize(e1);
        float ms;
        cudaEventElapsedTime(&ms, e0, e1);
        if (i >= 0) t[i] = ms * 1e3;
    }
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    G4C_TRY(st);
    G4C_CU(cudaDeviceSynchronize());
    *us = median(t, reps);
    *bytes = (double)nblk * (L.qb + L.mb + L.hb + L.sb);
    return G4C_OK;
}

extern "C" g4c_status g4c_cuda_op_argmax(int *out, const float *x, int n, g4c_err *err) {
    scope sc;
    float *dx;
    int *dout;
    G4C_CU(sc.up(&dx, x, (size_t)n));
    G4C_CU(sc.up<int>(&dout, NULL, 1));
    G4C_CU(cu_argmax(0, dout, dx, n));
    G4C_CU(cudaMemcpy(out, dout, sizeof(int), cudaMemcpyDeviceToHost));
    return G4C_OK;
}
