/* Uploading the decoder's weights once (cuda_model.cuh). f32 matrices stay f32 (exact parity with the CPU), bf16
 * ones are copied as they are, Q4_0/Q5_0/Q8_0/Q4_K/Q5_K/Q6_K blocks and MLX affine 4- and 8-bit codes (groups of
 * 32..256 columns, scales and biases of any float type, kept as f32) are repacked for the quantized kernels
 * (quant.cu), every other dtype (f16, Q4_1/Q5_1, MLX of other widths or groups, mixed-type concatenations) is expanded
 * row by row through g4c_wmat_row_f32 and rounded to bf16. Rows are padded to a multiple of 8 elements so every row
 * starts 16-byte aligned. q/k/v and gate/up are concatenated. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/cuda/cuda_model.cuh"

namespace {

g4c_status track(g4c_cuda_model *M, void *p, g4c_err *err) {
    if (M->n_allocs == M->cap_allocs) {
        const size_t cap = M->cap_allocs ? 2 * M->cap_allocs : 64;
        void **a = (void **)realloc(M->allocs, cap * sizeof *a);
        if (!a) {
            cudaFree(p);
            return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
        }
        M->allocs = a, M->cap_allocs = cap;
    }
    M->allocs[M->n_allocs++] = p;
    return G4C_OK;
}

g4c_status dalloc(g4c_cuda_model *M, void **p, size_t bytes, g4c_err *err) {
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 16);
    if (e != cudaSuccess)
        return G4C_FAIL(err, G4C_E_NOMEM, "CUDA: cannot allocate %.1f MiB of device memory (%.2f GiB uploaded so far): %s",
                        bytes / 1048576.0, M->bytes / 1073741824.0, cudaGetErrorString(e));
    return track(M, *p, err);
}

/* f32 vector of n (host h, or ones when NULL), each element times mul */
g4c_status up_vec(g4c_cuda_model *M, float **d, const float *h, int n, float mul, g4c_err *err) {
    float *tmp = (float *)malloc(sizeof(float) * (n ? n : 1));
    if (!tmp) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) tmp[i] = (h ? h[i] : 1.0f) * mul;
    g4c_status st = dalloc(M, (void **)d, sizeof(float) * n, err);
    if (st == G4C_OK && cudaMemcpy(*d, tmp, sizeof(float) * n, cudaMemcpyHostToDevice) != cudaSuccess)
        st = G4C_FAIL(err, G4C_E_IO, "CUDA: vector upload failed");
    free(tmp);
    M->bytes += sizeof(float) * n;
    return st;
}

/* The GPU kernel type of w, or -1 (expanded to bf16). MLX: 4 or 8 bits in groups of 32..256 columns (a power of
 * two, so that a group holds whole 32-element chunks). */
int cu_qtype(const g4c_wmat *w) {
    switch (w->dtype) {
    case G4C_DTYPE_Q4_0: return CU_Q4_0;
    case G4C_DTYPE_Q5_0: return CU_Q5_0;
    case G4C_DTYPE_Q8_0: return CU_Q8_0;
    case G4C_DTYPE_Q4_K: return CU_Q4_K;
    case G4C_DTYPE_Q5_K: return CU_Q5_K;
    case G4C_DTYPE_Q6_K: return CU_Q6_K;
    case G4C_DTYPE_U32: {
        const int g = w->group;
        if ((w->bits != 4 && w->bits != 8) || g < 32 || g > 256 || (g & (g - 1)) || w->cols % g) return -1;
        const g4c_dtype sd = w->scale_dtype;
        if (sd != G4C_DTYPE_F32 && sd != G4C_DTYPE_F16 && sd != G4C_DTYPE_BF16) return -1;
        return w->bits == 4 ? CU_MLX4 : CU_MLX8;
    }
    default: return -1;
    }
}

/* Rows [r, r + m) of MLX matrix w into the GPU layout (cuda_int.cuh): quants sq [m][cols/32][QB], the groups'
 * (scale, bias) as f32 pairs sm [m][cols/group][2]. MLX codes: little-endian words, code c at bits [b·c, b·(c+1)) of
 * the row (4 bits: byte c/2, low nibble for even c). */
void repack_mlx(uint8_t *sq, float *sm, const g4c_wmat *w, long r, long m) {
    const int cols = (int)w->cols, ng = cols / w->group, nch = cols / 32;
    const size_t rb = g4c_wmat_row_bytes(w), ss = g4c_dtype_infos[w->scale_dtype].size;
    for (long k = 0; k < m; k++) {
        const uint8_t *src = (const uint8_t *)w->data + (size_t)(r + k) * rb;
        if (w->bits == 4)
            for (int c = 0; c < nch; c++) {
                const uint8_t *b = src + 16 * c; /* elements 32c .. 32c + 31 */
                uint8_t *o = sq + ((size_t)k * nch + c) * 16;
                for (int j = 0; j < 16; j++) {
                    const int lo = j % 2 ? b[j / 2] >> 4 : b[j / 2] & 15;
                    const int hi = j % 2 ? b[8 + j / 2] >> 4 : b[8 + j / 2] & 15;
                    o[j] = (uint8_t)(lo | hi << 4);
                }
            }
        else
            for (int c = 0; c < cols; c++) sq[(size_t)k * cols + c] = src[c] ^ 0x80;
        const size_t g0 = (size_t)(r + k) * ng;
        for (int g = 0; g < ng; g++) {
            g4c_to_f32(&sm[((size_t)k * ng + g) * 2], (const char *)w->scales + (g0 + g) * ss, w->scale_dtype, 1);
            g4c_to_f32(&sm[((size_t)k * ng + g) * 2 + 1], (const char *)w->biases + (g0 + g) * ss, w->scale_dtype, 1);
        }
    }
}

/* Quantized parts of one type: the ggml blocks split into the cu_mat arrays (cuda_int.cuh), MLX codes repacked,
 * rows chunked through host staging. Random blocks for parts without data. */
g4c_status up_mat_q(g4c_cuda_model *M, cu_mat *d, const g4c_wmat *const *parts, int n_parts, long rows, int dt,
                    double per_token_share, g4c_err *err) {
    static uint64_t seed = 0x51;
    const int mlx = dt == CU_MLX4 || dt == CU_MLX8;
    const cu_qlayout L = cu_q_layout(dt, mlx ? parts[0]->group : 64);
    const int cols = (int)parts[0]->cols;
    d->dt = dt, d->cols = cols, d->ld = cols, d->rows = (int)rows, d->nb = cols / L.block;
    d->group = mlx ? parts[0]->group : 0;
    const size_t nblk = (size_t)rows * d->nb;
    size_t bytes = nblk * (L.qb + L.mb + L.hb + L.sb);
    G4C_TRY(dalloc(M, &d->p, nblk * L.qb, err));
    G4C_TRY(dalloc(M, &d->m, nblk * L.mb, err));
    if (L.hb) G4C_TRY(dalloc(M, &d->h, nblk * L.hb, err));
    if (L.sb) G4C_TRY(dalloc(M, &d->s, nblk * L.sb, err));
    M->bytes += bytes;
    M->per_token += (size_t)(bytes * per_token_share);
    const size_t gg = mlx ? 0 : g4c_dtype_infos[parts[0]->dtype].size; /* ggml block bytes */
    const long chunk = 1 + (long)((32u << 20) / g4c_wmat_row_bytes(parts[0]));
    uint8_t *stage = NULL;
    long r0 = 0;
    g4c_status st = G4C_OK;
    for (int i = 0; i < n_parts && st == G4C_OK; r0 += parts[i]->rows, i++) {
        const g4c_wmat *w = parts[i];
        if (!w->data) {
            cu_mat v = cu_mat_rows(d, r0, (int)w->rows);
            if (cu_fill_random_q(0, &v, w->rows, seed++ * 0x9E3779B97F4A7C15ull, 0.02f) != cudaSuccess)
                st = G4C_FAIL(err, G4C_E_IO, "CUDA: random fill failed");
            continue;
        }
        if (!stage && !(stage = (uint8_t *)malloc((size_t)chunk * d->nb * (L.qb + L.mb + L.hb + L.sb)))) {
            st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
            break;
        }
        for (long r = 0; r < w->rows && st == G4C_OK; r += chunk) {
            const long m = w->rows - r < chunk ? w->rows - r : chunk;
            const size_t nbk = (size_t)m * d->nb;
            uint8_t *sq = stage, *sm = sq + nbk * L.qb, *sh = sm + nbk * L.mb, *ss = sh + nbk * L.hb;
            const uint8_t *src = (const uint8_t *)w->data + (size_t)r * d->nb * gg;
            if (mlx) repack_mlx(sq, (float *)sm, w, r, m);
            else
                for (size_t b = 0; b < nbk; b++, src += gg) switch (dt) {
                    case CU_Q4_0:
                    case CU_Q8_0: /* f16 d, quants */
                        memcpy(sm + b * 2, src, 2);
                        memcpy(sq + b * L.qb, src + 2, L.qb);
                        break;
                    case CU_Q4_K: /* d, dmin, scales[12] | qs[128] */
                        memcpy(sm + b * 16, src, 16);
                        memcpy(sq + b * 128, src + 16, 128);
                        break;
                    case CU_Q5_0: /* f16 d | qh[4] | qs[16] */
                        memcpy(sm + b * 2, src, 2);
                        memcpy(sh + b * 4, src + 2, 4);
                        memcpy(sq + b * 16, src + 6, 16);
                        break;
                    case CU_Q5_K: /* d, dmin, scales[12] | qh[32] | qs[128] */
                        memcpy(sm + b * 16, src, 16);
                        memcpy(sh + b * 32, src + 16, 32);
                        memcpy(sq + b * 128, src + 48, 128);
                        break;
                    default: /* Q6_K: ql[128] | qh[64] | scales[16] | d */
                        memcpy(sq + b * 128, src, 128);
                        memcpy(sh + b * 64, src + 128, 64);
                        memcpy(sm + b * 16, src + 192, 16);
                        memcpy(ss + b * 2, src + 208, 2);
                        break;
                    }
            const cu_mat v = cu_mat_rows(d, r0 + r, (int)m);
            cudaError_t e = cudaMemcpy(v.p, sq, nbk * L.qb, cudaMemcpyHostToDevice);
            if (e == cudaSuccess) e = cudaMemcpy(v.m, sm, nbk * L.mb, cudaMemcpyHostToDevice);
            if (e == cudaSuccess && L.hb) e = cudaMemcpy(v.h, sh, nbk * L.hb, cudaMemcpyHostToDevice);
            if (e == cudaSuccess && L.sb) e = cudaMemcpy(v.s, ss, nbk * L.sb, cudaMemcpyHostToDevice);
            if (e != cudaSuccess) st = G4C_FAIL(err, G4C_E_IO, "CUDA: weight upload: %s", cudaGetErrorString(e));
        }
    }
    free(stage);
    return st;
}

/* The parts stacked row-wise into one device matrix. block_rows: the rows of one expert block (0 = all). */
g4c_status up_mat(g4c_cuda_model *M, cu_mat *d, const g4c_wmat *const *parts, int n_parts, int block_rows,
                  double per_token_share, g4c_err *err) {
    static uint64_t seed = 1;
    long rows = 0;
    const int cols = (int)parts[0]->cols;
    int all_f32 = 1;
    for (int i = 0; i < n_parts; i++) {
        if (parts[i]->cols != cols) return G4C_FAIL(err, G4C_E_CONFIG, "CUDA upload: parts of one matrix differ in width");
        rows += parts[i]->rows;
        all_f32 &= parts[i]->dtype == G4C_DTYPE_F32 || parts[i]->dtype == G4C_DTYPE_F16; /* f16: exact in f32 */
    }
    if (rows > INT_MAX) return G4C_FAIL(err, G4C_E_UNSUPPORTED, "CUDA upload: a matrix of %ld rows", rows);
    /* every part of one GPU-kernel quant type (MLX: the same width and group size): kept quantized; mixed types
     * (q4_k_m's Q6_K attn_v beside Q4_K q/k) and the other types are expanded to bf16 */
    const int qt = g4c_cuda_quant_enabled() ? cu_qtype(parts[0]) : -1;
    int same = qt >= 0;
    for (int i = 1; i < n_parts; i++)
        same &= cu_qtype(parts[i]) == qt && (parts[0]->dtype != G4C_DTYPE_U32 || parts[i]->group == parts[0]->group);
    if (same) {
        G4C_TRY(up_mat_q(M, d, parts, n_parts, rows, qt, per_token_share, err));
        if (block_rows) d->rows = block_rows;
        return G4C_OK;
    }
    d->dt = all_f32 ? CU_F32 : CU_BF16;
    d->cols = cols;
    d->ld = cu_round8(cols);
    d->rows = (int)rows;
    const size_t es = cu_mat_elsize(d), bytes = (size_t)rows * d->ld * es;
    G4C_TRY(dalloc(M, &d->p, bytes, err));
    M->bytes += bytes;
    M->per_token += (size_t)(bytes * per_token_share);
    if (d->ld != cols) G4C_CU(cudaMemset(d->p, 0, bytes));
    long r0 = 0;
    float *f = NULL;
    void *stage = NULL;
    g4c_status st = G4C_OK;
    for (int i = 0; i < n_parts && st == G4C_OK; r0 += parts[i]->rows, i++) {
        const g4c_wmat *w = parts[i];
        char *dst = (char *)d->p + (size_t)r0 * d->ld * es;
        if (!w->data) { /* random benchmark weights */
            cu_mat v = *d;
            v.p = dst;
            if (cu_fill_random(0, &v, (int)w->rows, seed++ * 0x9E3779B97F4A7C15ull, 0.02f) != cudaSuccess)
                st = G4C_FAIL(err, G4C_E_IO, "CUDA: random fill failed");
            continue;
        }
        if ((w->dtype == G4C_DTYPE_F32 && d->dt == CU_F32) || (w->dtype == G4C_DTYPE_BF16 && d->dt == CU_BF16)) {
            cudaError_t e = cudaMemcpy2D(dst, d->ld * es, w->data, g4c_wmat_row_bytes(w), (size_t)cols * es,
                                         (size_t)w->rows, cudaMemcpyHostToDevice);
            if (e != cudaSuccess) st = G4C_FAIL(err, G4C_E_IO, "CUDA: weight upload: %s", cudaGetErrorString(e));
            continue;
        }
        /* convert a chunk of rows at a time */
        const long chunk = 1 + (long)((64u << 20) / ((size_t)cols * 4));
        if (!f) {
            f = (float *)malloc(sizeof(float) * cols);
            stage = malloc((size_t)chunk * cols * es);
            if (!f || !stage) {
                st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
                break;
            }
        }
        for (long r = 0; r < w->rows && st == G4C_OK; r += chunk) {
            const long m = w->rows - r < chunk ? w->rows - r : chunk;
            for (long k = 0; k < m; k++) {
                g4c_wmat_row_f32(w, r + k, f);
                if (d->dt == CU_F32) memcpy((float *)stage + k * cols, f, sizeof(float) * cols);
                else
                    for (int c = 0; c < cols; c++) ((uint16_t *)stage)[k * cols + c] = g4c_f32_to_bf16(f[c]);
            }
            cudaError_t e = cudaMemcpy2D(dst + (size_t)r * d->ld * es, d->ld * es, stage, (size_t)cols * es,
                                         (size_t)cols * es, (size_t)m, cudaMemcpyHostToDevice);
            if (e != cudaSuccess) st = G4C_FAIL(err, G4C_E_IO, "CUDA: weight upload: %s", cudaGetErrorString(e));
        }
    }
    free(f);
    free(stage);
    if (block_rows) d->rows = block_rows;
    return st;
}

g4c_status up1(g4c_cuda_model *M, cu_mat *d, const g4c_wmat *w, double share, g4c_err *err) {
    const g4c_wmat *p[1] = {w};
    return up_mat(M, d, p, 1, 0, share, err);
}

/* model/kv_cache.c's rope_inv_freq (spec §3.5) */
void rope_inv_freq(float *inv, const g4c_rope_cfg *r, int hd) {
    int n_rot = hd / 2;
    if (r->type == G4C_ROPE_PROPORTIONAL) n_rot = (int)floor((double)r->partial_rotary * hd / 2.0);
    for (int k = 0; k < hd / 2; k++) {
        float f = k < n_rot ? 1.0f / powf(r->theta, (float)(2 * k) / (float)hd) : 0.0f;
        inv[k] = f / r->factor;
    }
}

g4c_status upload_layer(g4c_cuda_model *M, int il, g4c_err *err) {
    const g4c_config *c = M->c;
    const g4c_layer_cfg *lc = &c->layers[il];
    const g4c_layer_w *L = &M->w->layers[il];
    cu_layer *D = &M->layers[il];
    const int H = c->n_embd, hd = lc->head_dim;
    const g4c_wmat *qkv[3] = {&L->q, &L->k, &L->v};
    const int n_qkv = lc->kv_slot < 0 ? 1 : lc->k_eq_v ? 2 : 3;
    G4C_TRY(up_mat(M, &D->qkv, qkv, n_qkv, 0, 1.0, err));
    G4C_TRY(up1(M, &D->o, &L->o, 1.0, err));
    const g4c_wmat *gu[2] = {&L->gate, &L->up};
    G4C_TRY(up_mat(M, &D->gate_up, gu, 2, 0, 1.0, err));
    G4C_TRY(up1(M, &D->down, &L->down, 1.0, err));
    G4C_TRY(up_vec(M, &D->attn_norm, L->attn_norm, H, 1.f, err));
    G4C_TRY(up_vec(M, &D->post_attn_norm, L->post_attn_norm, H, 1.f, err));
    G4C_TRY(up_vec(M, &D->pre_ffn_norm, L->pre_ffn_norm, H, 1.f, err));
    G4C_TRY(up_vec(M, &D->post_ffn_norm, L->post_ffn_norm, H, 1.f, err));
    G4C_TRY(up_vec(M, &D->q_norm, L->q_norm, hd, 1.f, err));
    if (lc->kv_slot >= 0) G4C_TRY(up_vec(M, &D->k_norm, L->k_norm, hd, 1.f, err));
    D->layer_scalar = M->w->layers[il].layer_scalar;
    if (c->moe) {
        const int E = c->n_expert, I = c->moe_ffn_dim;
        const double share = (double)c->n_expert_used / E;
        G4C_TRY(up1(M, &D->router, &L->router, 1.0, err));
        if (L->exp_gate.data) { /* mlx-vlm's split gate/up: interleave per expert */
            g4c_wmat *parts = (g4c_wmat *)malloc(sizeof(g4c_wmat) * 2 * E);
            const g4c_wmat **pp = (const g4c_wmat **)malloc(sizeof(g4c_wmat *) * 2 * E);
            g4c_status st = parts && pp ? G4C_OK : G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
            for (int e = 0; st == G4C_OK && e < E; e++) {
                parts[2 * e] = g4c_wmat_rows(L->exp_gate, (int64_t)e * I, I);
                parts[2 * e + 1] = g4c_wmat_rows(L->exp_up, (int64_t)e * I, I);
                pp[2 * e] = &parts[2 * e], pp[2 * e + 1] = &parts[2 * e + 1];
            }
            if (st == G4C_OK) st = up_mat(M, &D->exp_gu, pp, 2 * E, 2 * I, share, err);
            free(parts);
            free(pp);
            G4C_TRY(st);
        } else {
            const g4c_wmat *p[1] = {&L->exp_gate_up};
            G4C_TRY(up_mat(M, &D->exp_gu, p, 1, 2 * I, share, err));
        }
        const g4c_wmat *pd[1] = {&L->exp_down};
        G4C_TRY(up_mat(M, &D->exp_down, pd, 1, H, share, err));
        G4C_TRY(up_vec(M, &D->router_scale, L->router_scale, H, 1.0f / sqrtf((float)H), err));
        G4C_TRY(up_vec(M, &D->per_expert_scale, L->per_expert_scale, E, 1.f, err));
        G4C_TRY(up_vec(M, &D->pre_ffn_norm_2, L->pre_ffn_norm_2, H, 1.f, err));
        G4C_TRY(up_vec(M, &D->post_ffn_norm_1, L->post_ffn_norm_1, H, 1.f, err));
        G4C_TRY(up_vec(M, &D->post_ffn_norm_2, L->post_ffn_norm_2, H, 1.f, err));
    }
    if (c->ple_dim) {
        G4C_TRY(up1(M, &D->ple_gate, &L->ple_gate, 1.0, err));
        G4C_TRY(up1(M, &D->ple_proj, &L->ple_proj, 1.0, err));
        G4C_TRY(up_vec(M, &D->ple_post_norm, L->ple_post_norm, H, 1.f, err));
    }
    return G4C_OK;
}

} // namespace

g4c_status cu_model_alloc(g4c_cuda_model *M, void **p, size_t bytes, g4c_err *err) { return dalloc(M, p, bytes, err); }
g4c_status cu_model_upload_mat(g4c_cuda_model *M, cu_mat *d, const g4c_wmat *w, g4c_err *err) {
    return up1(M, d, w, 0.0, err);
}
g4c_status cu_model_upload_vec(g4c_cuda_model *M, float **d, const float *h, int n, g4c_err *err) {
    return up_vec(M, d, h, n, 1.f, err);
}

extern "C" int g4c_cuda_available(char *why, size_t size) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        if (why && size) snprintf(why, size, "no CUDA device: %s", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        return 0;
    }
    return 1;
}

extern "C" void g4c_cuda_device_name(char *buf, size_t size) {
    cudaDeviceProp p;
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
        snprintf(buf, size, "unknown CUDA device");
        return;
    }
    snprintf(buf, size, "%s, %d SMs, %.1f GiB, cc %d.%d, L2 %d MiB", p.name, p.multiProcessorCount,
             p.totalGlobalMem / 1073741824.0, p.major, p.minor, p.l2CacheSize >> 20);
}

extern "C" g4c_status g4c_cuda_model_upload(g4c_cuda_model **out, const g4c_config *c, const g4c_weights *w,
                                            g4c_err *err) {
    *out = NULL;
    char why[256];
    if (!g4c_cuda_available(why, sizeof why)) return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s", why);
    g4c_cuda_model *M = (g4c_cuda_model *)calloc(1, sizeof *M);
    if (!M) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    M->c = c, M->w = w;
    g4c_status st = G4C_OK;
    M->layers = (cu_layer *)calloc((size_t)c->n_layer, sizeof *M->layers);
    if (!M->layers) st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    const int tied = c->tie_embeddings && (w->lm_head.data == w->embed.data);
    if (st == G4C_OK) st = up1(M, &M->embed, &w->embed, tied ? 1.0 : 0.0, err);
    if (st == G4C_OK && tied) M->head = M->embed;
    else if (st == G4C_OK) st = up1(M, &M->head, &w->lm_head, 1.0, err);
    if (st == G4C_OK) st = up_vec(M, &M->final_norm, w->final_norm, c->n_embd, 1.f, err);
    if (st == G4C_OK && c->ple_dim) {
        st = up1(M, &M->ple_model_proj, &w->ple_model_proj, 1.0, err);
        if (st == G4C_OK) st = up_vec(M, &M->ple_proj_norm, w->ple_proj_norm, c->ple_dim, 1.f, err);
    }
    for (int il = 0; il < c->n_layer && st == G4C_OK; il++) st = upload_layer(M, il, err);
    for (int t = 0; t < 2 && st == G4C_OK; t++) {
        int hd = 0;
        for (int il = 0; il < c->n_layer; il++)
            if ((int)c->layers[il].type == t) hd = c->layers[il].head_dim;
        M->rope_hd[t] = hd;
        float *inv = (float *)calloc((size_t)(hd / 2 + 1), sizeof(float));
        if (!inv) st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
        if (st == G4C_OK) {
            if (hd) rope_inv_freq(inv, &c->rope[t], hd);
            st = dalloc(M, (void **)&M->inv_freq[t], sizeof(float) * (hd / 2 + 1), err);
            if (st == G4C_OK && cudaMemcpy(M->inv_freq[t], inv, sizeof(float) * (hd / 2 + 1), cudaMemcpyHostToDevice) !=
                                    cudaSuccess)
                st = G4C_FAIL(err, G4C_E_IO, "CUDA: upload failed");
        }
        free(inv);
    }
    if (st == G4C_OK && cudaDeviceSynchronize() != cudaSuccess)
        st = G4C_FAIL(err, G4C_E_IO, "CUDA: upload failed: %s", cudaGetErrorString(cudaGetLastError()));
    if (st != G4C_OK) {
        g4c_cuda_model_free(M);
        return st;
    }
    *out = M;
    return G4C_OK;
}

extern "C" void g4c_cuda_model_free(g4c_cuda_model *M) {
    if (!M) return;
    cu_vision_free(M->vision);
    for (size_t i = 0; i < M->n_allocs; i++) cudaFree(M->allocs[i]);
    free(M->allocs);
    free(M->layers);
    free(M);
}

extern "C" size_t g4c_cuda_model_bytes(const g4c_cuda_model *M, size_t *per_token) {
    if (per_token) *per_token = M->per_token;
    return M->bytes;
}
