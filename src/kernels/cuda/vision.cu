/* The vision tower on the GPU (issue 9): model/vision.c's g4c_vision_encode, op for op (spec §4.2-§4.6), so the CPU
 * path is its reference. The first image uploads the tower's weights into the model (as the decoder's: f32 stays
 * f32, GPU quant types stay quantized, the rest bf16); the scratch grows with the largest image seen.
 *
 * Matrix products go through cu_matmul (cuBLAS above 8 rows, the prefill mode's precision). Attention over all
 * patches (bidirectional, scale 1, head dims 64 / 72) is two strided-batched GEMMs around a row softmax:
 * S = Q·Kᵀ per head, softmax per row, O = S·V. f32 GEMMs by default (SGEMM-class); the bf16 prefill mode lets
 * cuBLAS use TF32 tensor cores. The heads are taken a few at a time so that S (n² floats a head) stays within L2:
 * at 2520 patches (280 soft tokens) one head's scores are 25 MB. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_model.cuh"

namespace {

struct vlinear {
    cu_mat w;
    float clip[4]; /* input min/max, output min/max (±inf when unclipped) */
};
struct vlayer {
    vlinear q, k, v, o, gate, up, down;
    float *attn_norm, *post_attn_norm, *pre_ffn_norm, *post_ffn_norm, *q_norm, *k_norm;
};

/* L2-resident budget for one batch of attention scores */
constexpr size_t SCORE_BYTES = (size_t)24 << 20;

__global__ void k_patch_in(float *x, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = 2.0f * (x[i] - 0.5f); /* HF: pixel_values = 2 * (pixel_values - 0.5) */
}

/* x[i] += pos_table[0][px] + pos_table[1][py] */
__global__ void k_pos_add(float *x, const float *__restrict__ table, const int *__restrict__ pos, int dim, int n_pos) {
    const int i = blockIdx.x;
    const float *px = table + (size_t)pos[2 * i] * dim, *py = table + ((size_t)n_pos + pos[2 * i + 1]) * dim;
    for (int d = threadIdx.x; d < dim; d += blockDim.x) x[(size_t)i * dim + d] += px[d] + py[d];
}

__global__ void k_clamp(float *y, const float *x, size_t n, float lo, float hi) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fminf(fmaxf(x[i], lo), hi);
}

/* 2-D RoPE on v [n][nh][hd]: the first half of each head rotates by the x angles, the second by the y angles, each
 * half split-half (model/vision.c rope2d, g4c_rope's arithmetic without contraction). cs/sn [n][2][hd/4]. */
__global__ void k_rope2d(float *v, int nh, int hd, const float *__restrict__ cs, const float *__restrict__ sn) {
    const int t = blockIdx.x, q = hd / 4;
    for (int e = threadIdx.x; e < nh * 2 * q; e += blockDim.x) {
        const int h = e / (2 * q), axis = (e % (2 * q)) / q, j = e % q;
        float *a = v + ((size_t)t * nh + h) * hd + axis * (hd / 2), *b = a + q;
        const float c = cs[(size_t)t * 2 * q + axis * q + j], s = sn[(size_t)t * 2 * q + axis * q + j];
        const float x0 = a[j], x1 = b[j];
        a[j] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
        b[j] = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s));
    }
}

__device__ float block_reduce(float v, int is_max) {
    __shared__ float red[32];
    for (int o = 16; o > 0; o >>= 1) {
        const float u = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, u) : v + u;
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < nw ? red[lane] : (is_max ? -INFINITY : 0.f);
    for (int o = 16; o > 0; o >>= 1) {
        const float u = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, u) : v + u;
    }
    return v;
}

/* Softmax of each row of n scores, in place. */
__global__ void k_softmax_rows(float *s, int n) {
    float *r = s + (size_t)blockIdx.x * n;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, r[j]);
    m = block_reduce(m, 1);
    float sum = 0.f;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        const float e = expf(r[j] - m);
        r[j] = e;
        sum += e;
    }
    const float inv = 1.0f / block_reduce(sum, 0);
    for (int j = threadIdx.x; j < n; j += blockDim.x) r[j] *= inv;
}

/* §4.4-§4.5: out[o] = (Σ over its k² patches, in patch order, of x·(1/k²)) · √dim, standardized when sb != NULL.
 * idx [n_out][k2]: the patch indices of each output token, ascending. */
__global__ void k_pool(float *out, const float *__restrict__ x, const int *__restrict__ idx, int k2, int dim,
                       float inv_k2, float root, const float *__restrict__ sb, const float *__restrict__ ss) {
    const int o = blockIdx.x;
    for (int d = threadIdx.x; d < dim; d += blockDim.x) {
        float acc = 0.f;
        for (int m = 0; m < k2; m++) acc = __fadd_rn(acc, __fmul_rn(x[(size_t)idx[o * k2 + m] * dim + d], inv_k2));
        acc = __fmul_rn(acc, root);
        if (sb) acc = __fmul_rn(__fsub_rn(acc, sb[d]), ss[d]);
        out[(size_t)o * dim + d] = acc;
    }
}

unsigned blocks(size_t n, int t) { return (unsigned)((n + t - 1) / t); }

} // namespace

struct cu_vision {
    cu_mat patch, proj;
    float *pos_table, *std_bias, *std_scale;
    vlayer *layers;
    cudaStream_t st;
    cu_mm mm;
    int cap;        /* patches the scratch holds */
    int heads_per;  /* heads per attention batch at that size */
    float *x, *a, *q, *k, *v, *att, *f1, *f2, *tmp, *cs, *sn, *scores, *pooled, *out;
    int *pos, *idx;
};

void cu_vision_free(cu_vision *V) {
    if (!V) return;
    cu_mm_free(&V->mm);
    float *bufs[] = {V->x, V->a, V->q, V->k, V->v, V->att, V->f1, V->f2, V->tmp, V->cs, V->sn, V->scores, V->pooled, V->out};
    for (float *b : bufs) cudaFree(b);
    cudaFree(V->pos);
    cudaFree(V->idx);
    if (V->mm.blas) cublasDestroy(V->mm.blas);
    if (V->st) cudaStreamDestroy(V->st);
    free(V->layers);
    free(V);
}

namespace {

g4c_status up_linear(g4c_cuda_model *M, vlinear *d, const g4c_clip_linear *l, g4c_err *err) {
    memcpy(d->clip, l->clip, sizeof d->clip);
    return cu_model_upload_mat(M, &d->w, &l->w, err);
}

g4c_status vision_upload(g4c_cuda_model *M, const g4c_vision_w *w, g4c_err *err) {
    const g4c_vision_cfg *c = &M->c->vision;
    cu_vision *V = (cu_vision *)calloc(1, sizeof *V);
    if (!V) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    M->vision = V; /* freed with the model from here on */
    V->layers = (vlayer *)calloc((size_t)c->n_layer, sizeof *V->layers);
    if (!V->layers) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    G4C_CU(cudaStreamCreateWithFlags(&V->st, cudaStreamNonBlocking));
    G4C_BLAS(cublasCreate(&V->mm.blas));
    G4C_BLAS(cublasSetStream(V->mm.blas, V->st));
    V->mm.stream = V->st;
    G4C_TRY(cu_model_upload_mat(M, &V->patch, &w->patch_proj, err));
    G4C_TRY(cu_model_upload_mat(M, &V->proj, &w->mm_proj, err));
    G4C_TRY(cu_model_upload_vec(M, &V->pos_table, w->pos_table, 2 * c->n_pos * c->n_embd, err));
    if (c->standardize) {
        G4C_TRY(cu_model_upload_vec(M, &V->std_bias, w->std_bias, c->n_embd, err));
        G4C_TRY(cu_model_upload_vec(M, &V->std_scale, w->std_scale, c->n_embd, err));
    }
    for (int il = 0; il < c->n_layer; il++) {
        const g4c_vlayer_w *L = &w->layers[il];
        vlayer *D = &V->layers[il];
        G4C_TRY(up_linear(M, &D->q, &L->q, err));
        G4C_TRY(up_linear(M, &D->k, &L->k, err));
        G4C_TRY(up_linear(M, &D->v, &L->v, err));
        G4C_TRY(up_linear(M, &D->o, &L->o, err));
        G4C_TRY(up_linear(M, &D->gate, &L->gate, err));
        G4C_TRY(up_linear(M, &D->up, &L->up, err));
        G4C_TRY(up_linear(M, &D->down, &L->down, err));
        G4C_TRY(cu_model_upload_vec(M, &D->attn_norm, L->attn_norm, c->n_embd, err));
        G4C_TRY(cu_model_upload_vec(M, &D->post_attn_norm, L->post_attn_norm, c->n_embd, err));
        G4C_TRY(cu_model_upload_vec(M, &D->pre_ffn_norm, L->pre_ffn_norm, c->n_embd, err));
        G4C_TRY(cu_model_upload_vec(M, &D->post_ffn_norm, L->post_ffn_norm, c->n_embd, err));
        G4C_TRY(cu_model_upload_vec(M, &D->q_norm, L->q_norm, c->head_dim, err));
        G4C_TRY(cu_model_upload_vec(M, &D->k_norm, L->k_norm, c->head_dim, err));
    }
    G4C_CU(cudaDeviceSynchronize());
    return G4C_OK;
}

/* Scratch for n patches (kept, grown when a larger image comes). */
g4c_status vision_reserve(cu_vision *V, const g4c_config *cfg, int n, g4c_err *err) {
    if (n <= V->cap) return G4C_OK;
    const g4c_vision_cfg *c = &cfg->vision;
    const int Hv = c->n_embd, qd = c->n_head * c->head_dim, F = c->ffn_dim, P = 3 * c->patch_size * c->patch_size;
    const int k2 = c->pool * c->pool, wide = F > qd ? (F > P ? F : P) : (qd > P ? qd : P);
    G4C_CU(cudaStreamSynchronize(V->st));
    float **bufs[] = {&V->x, &V->a, &V->q, &V->k, &V->v, &V->att, &V->f1, &V->f2, &V->tmp, &V->cs, &V->sn, &V->scores,
                      &V->pooled, &V->out};
    for (float **b : bufs) cudaFree(*b), *b = NULL;
    cudaFree(V->pos), cudaFree(V->idx), V->pos = V->idx = NULL;
    cu_mm_free(&V->mm);
    V->cap = 0;
    const size_t N = (size_t)n, per_head = N * N * sizeof(float);
    V->heads_per = per_head >= SCORE_BYTES ? 1 : (int)(SCORE_BYTES / per_head);
    if (V->heads_per > c->n_head) V->heads_per = c->n_head;
    const size_t sizes[] = {N * Hv, N * Hv, N * qd, N * qd, N * qd, N * qd, N * F, N * F, N * wide, N * c->head_dim / 2,
                            N * c->head_dim / 2, N * N * V->heads_per, N / k2 * Hv, N / k2 * cfg->n_embd};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) G4C_CU(cudaMalloc(bufs[i], sizes[i] * sizeof(float)));
    G4C_CU(cudaMalloc(&V->pos, sizeof(int) * 2 * N));
    G4C_CU(cudaMalloc(&V->idx, sizeof(int) * N));
    const int max_cols = wide > Hv ? wide : Hv;
    const int max_out = (wide > Hv ? wide : Hv) > cfg->n_embd ? (wide > Hv ? wide : Hv) : cfg->n_embd;
    G4C_TRY(cu_mm_init(&V->mm, n, max_cols, (size_t)max_out, err));
    V->cap = n;
    return G4C_OK;
}

/* y = clamp(clamp(x)·Wᵀ) (model/vision.c clip_linear); tmp holds the clamped input */
g4c_status clip_linear(cu_vision *V, float *y, const float *x, const vlinear *l, int n, g4c_err *err) {
    const float *in = x;
    const size_t nin = (size_t)n * l->w.cols, nout = (size_t)n * l->w.rows;
    if (l->clip[0] > -INFINITY || l->clip[1] < INFINITY) {
        k_clamp<<<blocks(nin, 256), 256, 0, V->st>>>(V->tmp, x, nin, l->clip[0], l->clip[1]);
        G4C_CHECK_LAUNCH();
        in = V->tmp;
    }
    G4C_TRY(cu_matmul(&V->mm, y, l->w.rows, in, l->w.cols, &l->w, n, err));
    if (l->clip[2] > -INFINITY || l->clip[3] < INFINITY) {
        k_clamp<<<blocks(nout, 256), 256, 0, V->st>>>(y, y, nout, l->clip[2], l->clip[3]);
        G4C_CHECK_LAUNCH();
    }
    return G4C_OK;
}

/* Bidirectional attention of all n patches: att = softmax(q·kᵀ)·v per head (scale 1, spec §4.3). */
g4c_status attention(cu_vision *V, const g4c_vision_cfg *c, int n, g4c_err *err) {
    const int nh = c->n_head, hd = c->head_dim, ld = nh * hd;
    const float one = 1.f, zero = 0.f;
    const cublasComputeType_t ct =
        g4c_cuda_prefill_mode() == G4C_CUDA_PREFILL_BF16 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    const long long nn = (long long)n * n;
    for (int h0 = 0; h0 < nh; h0 += V->heads_per) {
        const int hb = nh - h0 < V->heads_per ? nh - h0 : V->heads_per;
        /* column-major: S_h (keys × queries, ld n) = K_hᵀ · Q_h, i.e. row-major S_h[query][key] */
        G4C_BLAS(cublasGemmStridedBatchedEx(V->mm.blas, CUBLAS_OP_T, CUBLAS_OP_N, n, n, hd, &one, V->k + h0 * hd,
                                            CUDA_R_32F, ld, hd, V->q + h0 * hd, CUDA_R_32F, ld, hd, &zero, V->scores,
                                            CUDA_R_32F, n, nn, hb, ct, CUBLAS_GEMM_DEFAULT));
        k_softmax_rows<<<(unsigned)((size_t)n * hb), 256, 0, V->st>>>(V->scores, n);
        G4C_CHECK_LAUNCH();
        /* O_h (hd × queries, ld nh·hd) = V_h (hd × keys) · P_h (keys × queries) */
        G4C_BLAS(cublasGemmStridedBatchedEx(V->mm.blas, CUBLAS_OP_N, CUBLAS_OP_N, hd, n, n, &one, V->v + h0 * hd,
                                            CUDA_R_32F, ld, hd, V->scores, CUDA_R_32F, n, nn, &zero, V->att + h0 * hd,
                                            CUDA_R_32F, ld, hd, hb, ct, CUBLAS_GEMM_DEFAULT));
    }
    return G4C_OK;
}

} // namespace

extern "C" int g4c_cuda_vision_enabled(void) { return cu_env_switch("G4C_CUDA_VISION") != 0; }

extern "C" g4c_status g4c_cuda_vision_encode(g4c_cuda_model *M, const g4c_vision_w *w, const float *patches,
                                             const int32_t *pos, int n, float *out, g4c_err *err) {
    const g4c_config *cfg = M->c;
    const g4c_vision_cfg *c = &cfg->vision;
    int pw = 0, ph = 0;
    G4C_TRY(g4c_vision_grid(cfg, pos, n, &pw, &ph, err));
    if (!M->vision) G4C_TRY(vision_upload(M, w, err));
    cu_vision *V = M->vision;
    G4C_TRY(vision_reserve(V, cfg, n, err));
    const int Hv = c->n_embd, nh = c->n_head, hd = c->head_dim, F = c->ffn_dim, k = c->pool, k2 = k * k;
    const int P = 3 * c->patch_size * c->patch_size, n_out = n / k2;

    /* host-side tables: the CPU's RoPE angles, and each output token's patches in ascending order */
    float *cs = (float *)malloc(sizeof(float) * (size_t)n * hd / 2), *sn = (float *)malloc(sizeof(float) * (size_t)n * hd / 2);
    int *idx = (int *)malloc(sizeof(int) * (size_t)n), *fill = (int *)calloc((size_t)n_out, sizeof(int));
    g4c_status st = cs && sn && idx && fill ? G4C_OK : G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    if (st == G4C_OK) {
        g4c_vision_rope_tables(c, pos, n, cs, sn);
        for (int i = 0; i < n; i++) {
            const int o = pos[2 * i] / k + (pw / k) * (pos[2 * i + 1] / k);
            idx[o * k2 + fill[o]++] = i;
        }
        cudaError_t e = cudaMemcpyAsync(V->tmp, patches, sizeof(float) * (size_t)n * P, cudaMemcpyHostToDevice, V->st);
        if (e == cudaSuccess) e = cudaMemcpyAsync(V->cs, cs, sizeof(float) * (size_t)n * hd / 2, cudaMemcpyHostToDevice, V->st);
        if (e == cudaSuccess) e = cudaMemcpyAsync(V->sn, sn, sizeof(float) * (size_t)n * hd / 2, cudaMemcpyHostToDevice, V->st);
        if (e == cudaSuccess) e = cudaMemcpyAsync(V->idx, idx, sizeof(int) * (size_t)n, cudaMemcpyHostToDevice, V->st);
        if (e == cudaSuccess) e = cudaMemcpyAsync(V->pos, pos, sizeof(int) * 2 * (size_t)n, cudaMemcpyHostToDevice, V->st);
        if (e == cudaSuccess) e = cudaStreamSynchronize(V->st); /* the host tables are freed below */
        if (e != cudaSuccess) st = G4C_FAIL(err, G4C_E_IO, "CUDA: image upload: %s", cudaGetErrorString(e));
    }
    free(cs), free(sn), free(idx), free(fill);
    G4C_TRY(st);

    /* §4.2 patch embedding and position table */
    k_patch_in<<<blocks((size_t)n * P, 256), 256, 0, V->st>>>(V->tmp, (size_t)n * P);
    G4C_CHECK_LAUNCH();
    G4C_TRY(cu_matmul(&V->mm, V->x, Hv, V->tmp, P, &V->patch, n, err));
    k_pos_add<<<n, 256, 0, V->st>>>(V->x, V->pos_table, V->pos, Hv, c->n_pos);
    G4C_CHECK_LAUNCH();

    /* §4.3 encoder blocks; each block's last residual add also writes the next block's input norm */
    G4C_CU(cu_rms_norm(V->st, V->a, Hv, V->x, Hv, V->layers[0].attn_norm, n, Hv, c->eps));
    for (int il = 0; il < c->n_layer; il++) {
        const vlayer *L = &V->layers[il];
        G4C_TRY(clip_linear(V, V->q, V->a, &L->q, n, err));
        G4C_TRY(clip_linear(V, V->k, V->a, &L->k, n, err));
        G4C_TRY(clip_linear(V, V->v, V->a, &L->v, n, err));
        G4C_CU(cu_rms_norm(V->st, V->q, hd, V->q, hd, L->q_norm, n * nh, hd, c->eps));
        G4C_CU(cu_rms_norm(V->st, V->k, hd, V->k, hd, L->k_norm, n * nh, hd, c->eps));
        G4C_CU(cu_rms_norm(V->st, V->v, hd, V->v, hd, NULL, n * nh, hd, c->eps));
        k_rope2d<<<n, 128, 0, V->st>>>(V->q, nh, hd, V->cs, V->sn);
        G4C_CHECK_LAUNCH();
        k_rope2d<<<n, 128, 0, V->st>>>(V->k, nh, hd, V->cs, V->sn);
        G4C_CHECK_LAUNCH();
        G4C_TRY(attention(V, c, n, err));
        G4C_TRY(clip_linear(V, V->a, V->att, &L->o, n, err));
        G4C_CU(cu_rms_norm_add(V->st, V->x, V->a, L->post_attn_norm, n, Hv, c->eps, 1.f, V->a, L->pre_ffn_norm));
        G4C_TRY(clip_linear(V, V->f1, V->a, &L->gate, n, err));
        G4C_TRY(clip_linear(V, V->f2, V->a, &L->up, n, err));
        G4C_CU(cu_gelu_mul(V->st, V->f1, F, V->f1, F, V->f2, F, n, F));
        G4C_TRY(clip_linear(V, V->a, V->f1, &L->down, n, err));
        const int last = il + 1 == c->n_layer;
        G4C_CU(cu_rms_norm_add(V->st, V->x, V->a, L->post_ffn_norm, n, Hv, c->eps, 1.f, last ? NULL : V->a,
                               last ? NULL : V->layers[il + 1].attn_norm));
    }

    /* §4.4 pooling, §4.5 standardize, §4.6 projector */
    k_pool<<<n_out, 256, 0, V->st>>>(V->pooled, V->x, V->idx, k2, Hv, 1.0f / (float)k2, sqrtf((float)Hv),
                                     c->standardize ? V->std_bias : NULL, V->std_scale);
    G4C_CHECK_LAUNCH();
    G4C_CU(cu_rms_norm(V->st, V->pooled, Hv, V->pooled, Hv, NULL, n_out, Hv, c->eps));
    G4C_TRY(cu_matmul(&V->mm, V->out, cfg->n_embd, V->pooled, Hv, &V->proj, n_out, err));
    G4C_CU(cudaMemcpyAsync(out, V->out, sizeof(float) * (size_t)n_out * cfg->n_embd, cudaMemcpyDeviceToHost, V->st));
    G4C_CU(cudaStreamSynchronize(V->st));
    return G4C_OK;
}
