/* Fast CPU path: f32 arithmetic, weights converted from their stored dtype a row block at a time, work split
 * over the thread pool. Loops are written with independent accumulators so the compiler vectorizes them without
 * -ffast-math (portable across x86 and ARM). Hand-written SIMD and quantized kernels come with issue 5.
 * Checked against kernels/ref by tests/unit/test_ops.c. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_int.h"

enum { ROW_BLOCK = 16 };

/* Chosen once: the best level the CPU has (env G4C_CPU_ISA=0|1|2 caps it, for comparisons), else as
 * g4c_cpu_set_isa says. */
static int use_avx2 = -1;
#if defined(__x86_64__)
static int use_vnni = -1; /* AVX-512 kernels (level 2): VNNI for the interleaved layout, zmm FMA for bf16/f16 */
#endif
static void choose_isa(void) {
    const char *e = getenv("G4C_CPU_ISA");
    g4c_cpu_set_isa(e && *e >= '0' && *e <= '2' && !e[1] ? *e - '0' : 2);
}
static int avx2(void) {
    if (use_avx2 < 0) choose_isa();
    return use_avx2;
}
#if defined(__x86_64__)
static int vnni(void) {
    if (use_vnni < 0) choose_isa();
    return use_vnni;
}
#else
static int vnni(void) { return 0; }
#endif

void g4c_cpu_set_isa(int level) {
    use_avx2 = level == 0 ? 0 : g4c_simd_supported();
#if defined(__x86_64__)
    use_vnni = level >= 2 && use_avx2 && g4c_avx512_vnni_supported();
#endif
}
int g4c_cpu_isa(void) { return avx2() ? 1 + vnni() : 0; }

const char *g4c_cpu_isa_name(void) {
    if (!avx2()) return "portable C";
#if defined(__aarch64__)
    return g4c_neon_has_dotprod() ? "NEON + dot product (SDOT)" : "NEON";
#else
    return vnni() ? "AVX2 + FMA + F16C, AVX-512 (VNNI for Q4_0, Q8_0, Q4_K, Q6_K; bf16, f16)" : "AVX2 + FMA + F16C";
#endif
}

/* The scalar activation quantizer: the reference every SIMD one must equal (x·(1/d) rounded to nearest even). */
void g4c_quantize_q8(g4c_q8_block *dst, const float *x, int64_t cols) {
    for (int64_t b = 0; b < cols / 32; b++) {
        const float *v = x + b * 32;
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(v[i]));
        const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        dst[b].d = d;
        int sum = 0;
        for (int i = 0; i < 32; i++) sum += (dst[b].q[i] = (int8_t)lrintf(v[i] * id));
        dst[b].s = d * (float)sum;
    }
}

void g4c_q6_offsets(int32_t *dst, const g4c_q8_block *src, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++)
        for (int h = 0; h < 4; h++) {
            const int8_t *q = src[b].q + 8 * h;
            const int even = 32 * (q[0] + q[1] + q[4] + q[5]), odd = 32 * (q[2] + q[3] + q[6] + q[7]);
            dst[4 * b + h] = (int32_t)((uint32_t)(uint16_t)even | (uint32_t)(uint16_t)odd << 16);
        }
}

void g4c_q6_sums(int32_t *dst, const g4c_q8_block *src, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++)
        for (int h = 0; h < 2; h++) {
            int32_t sum = 0;
            for (int i = 0; i < 16; i++) sum += src[b].q[16 * h + i];
            dst[2 * b + h] = -32 * sum;
        }
}

void g4c_q8_bias_sums(int32_t *dst, const g4c_q8_block *src, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++) {
        int32_t sum = 0;
        for (int i = 0; i < 32; i++) sum += src[b].q[i];
        dst[b] = -128 * sum;
    }
}

static float dot_portable(const float *a, const float *b, int64_t n) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += a[i + k] * b[i + k];
    float r = 0;
    for (; i < n; i++) r += a[i] * b[i];
    return r + ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

static float dot(const float *a, const float *b, int64_t n) {
    return avx2() ? g4c_simd_dot(a, b, n) : dot_portable(a, b, n);
}

typedef struct {
    g4c_pool *pool; /* its per-thread scratch holds converted weight rows (g4c_matmul_scratch_bytes) */
    float *y;
    const float *x;
    const g4c_wmat *w;
    int n;
    const g4c_q8_block *xq; /* activations quantized once per call, for the integer kernels (else NULL) */
    const g4c_q8s_block *xs; /* the same for the Q8_0 prefill kernel (cpu_int.h), or NULL */
    const int32_t *xo;       /* g4c_q6_offsets of xq for the Q6_K kernel, or NULL */
    const int32_t *xk;       /* for the VNNI kernels: g4c_q8_bias_sums (Q8_0) or g4c_q6_sums (Q6_K) of xq, or NULL */
    g4c_rows_q8_fn rows_q8; /* the integer kernel for w's type, with xq */
    int64_t task_rows;      /* rows per pool task (ROW_BLOCK), unless bounds is set */
    const int32_t *bounds;  /* the interleaved layout: task i covers 8-row groups bounds[i] .. bounds[i + 1] - 1 */
} matmul_job;

/* float weights (CPU_W_*) against f32 activations: bf16 and f16 on AVX-512 where the level has it (the widening
 * is half the work per lane there); f32 stays on AVX2, whose prefill was faster on the GPU host's Xeon (bench_ops
 * 16384x4096 n=64, 2 threads: 47.8 vs 35.6 GMAC/s; bf16 42.6 vs 56.5) */
static void rows_f(float *y, int64_t ldy, const float *x, int64_t ldx, int n_tok, const void *w, size_t wstride,
                   int dt, int n_rows, int64_t cols) {
#if defined(__x86_64__)
    if (vnni() && dt != CPU_W_F32) {
        g4c_avx512_rows(y, ldy, x, ldx, n_tok, w, wstride, dt, n_rows, cols);
        return;
    }
#endif
    g4c_simd_rows(y, ldy, x, ldx, n_tok, w, wstride, dt, n_rows, cols);
}

static void matmul_task(void *ctx, int i_task, int i_thread) {
    const matmul_job *j = ctx;
    const g4c_wmat *w = j->w;
    int64_t r0 = (int64_t)i_task * j->task_rows, nr = w->rows - r0 < j->task_rows ? w->rows - r0 : j->task_rows;
    if (j->bounds) r0 = 8 * (int64_t)j->bounds[i_task], nr = 8 * (int64_t)j->bounds[i_task + 1] - r0;
    const int64_t cols = w->cols;
#if defined(__x86_64__)
    if (j->xq && w->x8 && vnni()) {
        g4c_avx512_rows_x8(j->y + r0, w->rows, j->xq, j->xk, j->n,
                           (const char *)w->x8 + (size_t)r0 * g4c_wmat_x8_row_bytes(w), w->dtype, (int)nr, cols);
        return;
    }
    if (j->xq && w->x8) {
        g4c_avx2_rows_x8(j->y + r0, w->rows, j->xq, j->xs, j->xo, j->n,
                         (const char *)w->x8 + (size_t)r0 * g4c_wmat_x8_row_bytes(w), w->dtype, (int)nr, cols);
        return;
    }
#endif
    if (j->xq) {
        const size_t rb = g4c_wmat_row_bytes(w);
        j->rows_q8(j->y + r0, w->rows, j->xq, j->n, (const char *)w->data + (size_t)r0 * rb, rb, w->dtype,
                         (int)nr, cols);
        return;
    }
    if (avx2() && (w->dtype == G4C_DTYPE_F32 || w->dtype == G4C_DTYPE_BF16 || w->dtype == G4C_DTYPE_F16)) {
        const int dt = w->dtype == G4C_DTYPE_BF16 ? CPU_W_BF16 : w->dtype == G4C_DTYPE_F16 ? CPU_W_F16 : CPU_W_F32;
        const size_t rb = g4c_wmat_row_bytes(w);
        rows_f(j->y + r0, w->rows, j->x, cols, j->n, (const char *)w->data + (size_t)r0 * rb, rb, dt, (int)nr, cols);
        return;
    }
    size_t have = 0;
    float *s = g4c_pool_scratch(j->pool, i_thread, &have);
    const float *wb;
    if (w->dtype == G4C_DTYPE_F32 && ((uintptr_t)w->data % sizeof(float)) == 0) {
        wb = (const float *)w->data + (size_t)r0 * (size_t)cols;
    } else if (have >= (size_t)(nr * cols) * sizeof(float)) {
        for (int64_t r = 0; r < nr; r++) g4c_wmat_row_f32(w, r0 + r, s + (size_t)r * (size_t)cols);
        wb = s;
    } else {
        G4C_ASSERT(!"g4c_matmul: reserve g4c_matmul_scratch_bytes(cols) with g4c_pool_reserve first");
        return;
    }
    if (avx2()) {
        rows_f(j->y + r0, w->rows, j->x, cols, j->n, wb, (size_t)cols * sizeof(float), CPU_W_F32, (int)nr, cols);
        return;
    }
    for (int i = 0; i < j->n; i++) {
        const float *xi = j->x + (size_t)i * (size_t)cols;
        float *yi = j->y + (size_t)i * (size_t)w->rows + r0;
        for (int64_t r = 0; r < nr; r++) yi[r] = dot(xi, wb + (size_t)r * (size_t)cols, cols);
    }
}

size_t g4c_matmul_scratch_bytes(int64_t max_cols) { return (size_t)ROW_BLOCK * (size_t)max_cols * sizeof(float); }

/* What an integer kernel reads beside the 8-bit activations, built from them once per call (cpu_int.h): |q| and
 * sign masks (the AVX2 Q8_0 prefill), the Q6_K offset sums (AVX2), −128·Σq (the VNNI Q8_0 kernel), −32·Σq per 16
 * columns (the VNNI Q6_K kernel). Bytes per block. */
enum { EX_SIGNS, EX_Q6_OFFSETS, EX_BIAS_SUMS, EX_Q6_SUMS, N_EX };
static const size_t ex_bytes[N_EX] = {sizeof(g4c_q8s_block), 4 * sizeof(int32_t), sizeof(int32_t),
                                      2 * sizeof(int32_t)};

/* the extras w's kernel reads at n tokens, as a bit mask */
static unsigned extras_for(const g4c_wmat *w, int n) {
    unsigned m = 0;
#if defined(__x86_64__)
    if (w->x8 && w->dtype == G4C_DTYPE_Q8_0 && vnni()) m |= 1u << EX_BIAS_SUMS;
    if (w->x8 && w->dtype == G4C_DTYPE_Q8_0 && !vnni() && n >= 4) m |= 1u << EX_SIGNS;
    if (w->x8 && w->dtype == G4C_DTYPE_Q6_K) m |= 1u << (vnni() ? EX_Q6_SUMS : EX_Q6_OFFSETS);
#else
    (void)w, (void)n;
#endif
    return m;
}

static void build_extra(int e, void *dst, const g4c_q8_block *src, int64_t n_blocks) {
    switch (e) {
#if defined(__x86_64__)
    case EX_SIGNS: g4c_avx2_q8_signs(dst, src, n_blocks); break;
#endif
    case EX_Q6_OFFSETS: g4c_q6_offsets(dst, src, n_blocks); break;
    case EX_BIAS_SUMS: g4c_q8_bias_sums(dst, src, n_blocks); break;
    case EX_Q6_SUMS: g4c_q6_sums(dst, src, n_blocks); break;
    default: break;
    }
}

typedef struct {
    g4c_q8_block *xq;
    void *ex[N_EX]; /* each extra [n][cols / 32 blocks], or NULL */
    const float *x;
    int64_t cols;
    int n, n_tasks;
} quant_job;

static void quant_task(void *ctx, int i_task, int i_thread) {
    (void)i_thread;
    const quant_job *q = ctx;
    const int a = q->n * i_task / q->n_tasks, b = q->n * (i_task + 1) / q->n_tasks;
    const int64_t nb = q->cols / 32;
    for (int t = a; t < b; t++) {
        g4c_simd_quantize_q8(q->xq + (size_t)t * nb, q->x + (size_t)t * q->cols, q->cols);
        for (int e = 0; e < N_EX; e++)
            if (q->ex[e]) build_extra(e, (char *)q->ex[e] + ex_bytes[e] * (size_t)t * (size_t)nb, q->xq + (size_t)t * nb, nb);
    }
}

enum { MAX_MM = 32 };

typedef struct {
    const matmul_job *jobs;
    const int *first; /* [count + 1]: the first task of each product */
    int count;
} many_job;

static void many_task(void *ctx, int i_task, int i_thread) {
    const many_job *m = ctx;
    int i = 0;
    while (i + 1 < m->count && i_task >= m->first[i + 1]) i++;
    matmul_task((void *)&m->jobs[i], i_task - m->first[i], i_thread);
}

void g4c_matmul_many(g4c_pool *pool, const g4c_mm *mm, int count, int n) {
    G4C_ASSERT(count >= 1 && count <= MAX_MM);
    matmul_job jobs[MAX_MM];
    int first[MAX_MM + 1], src[MAX_MM]; /* src[i]: the earlier product whose quantized input i shares, or i */
    unsigned need[MAX_MM] = {0};        /* input i's extras (extras_for) */
    size_t at[MAX_MM], at_ex[MAX_MM][N_EX], total = 0;
    g4c_pool_lock(pool);
    /* block types with an integer kernel on the SIMD path (cpu_int.h): integer dot products against 8-bit activations
     * (quantized once per input, shared by the tasks) */
    for (int i = 0; i < count; i++) {
        const g4c_wmat *w = mm[i].w;
        jobs[i] = (matmul_job){.pool = pool, .y = mm[i].y, .x = mm[i].x, .w = w, .n = n, .task_rows = ROW_BLOCK};
        const g4c_rows_q8_fn rows_q8 = avx2() ? g4c_simd_rows_q8_for(w->dtype) : NULL;
        src[i] = -1;
        if (!rows_q8 || w->cols % g4c_dtype_infos[w->dtype].block) continue;
        jobs[i].rows_q8 = rows_q8;
        src[i] = i;
        for (int k = 0; k < i; k++)
            if (src[k] == k && mm[k].x == mm[i].x && mm[k].w->cols == w->cols) src[i] = k;
        if (src[i] == i) {
            at[i] = total;
            total += sizeof(g4c_q8_block) * (size_t)(w->cols / 32) * (size_t)n;
        }
        need[src[i]] |= extras_for(w, n);
    }
    for (int i = 0; i < count; i++)
        for (int e = 0; e < N_EX; e++)
            if (src[i] == i && need[i] >> e & 1) {
                at_ex[i][e] = total;
                total += ex_bytes[e] * (size_t)(mm[i].w->cols / 32) * (size_t)n;
            }
    char *xq = total ? g4c_pool_shared(pool, total) : NULL;
    for (int i = 0; i < count; i++) {
        if (src[i] < 0) continue;
        if (!xq) { /* no shared buffer: the float path */
            jobs[i].rows_q8 = NULL;
            continue;
        }
        void *ex[N_EX];
        for (int e = 0; e < N_EX; e++) ex[e] = need[src[i]] >> e & 1 ? xq + at_ex[src[i]][e] : NULL;
        jobs[i].xq = (const g4c_q8_block *)(xq + at[src[i]]);
        jobs[i].xs = ex[EX_SIGNS], jobs[i].xo = ex[EX_Q6_OFFSETS];
        jobs[i].xk = ex[EX_BIAS_SUMS] ? ex[EX_BIAS_SUMS] : ex[EX_Q6_SUMS]; /* one of them per weight type */
        if (src[i] != i) continue;
        /* prefill: quantizing the activations is a few % of the time, so it is split too */
        quant_job qj = {(g4c_q8_block *)(xq + at[i]), {0}, mm[i].x, mm[i].w->cols, n, n >= 8 ? (n < 64 ? n : 64) : 1};
        memcpy(qj.ex, ex, sizeof ex);
        if (qj.n_tasks > 1) g4c_pool_run(pool, quant_task, &qj, qj.n_tasks);
        else quant_task(&qj, 0, 0);
    }
    /* The interleaved layout reads each task's rows as one sequential stream, and a few long streams per thread keep
     * the hardware prefetcher busier than many 16-row ones (decode is a bandwidth race). Guided chunks: each task
     * takes a quarter per thread of the groups left in the whole pass, down to MIN_WORK (and 2 groups, one
     * AVX-512 pair), so the first tasks are long and the last short and the threads finish a pass nearly together.
     * Equal tasks (4 per thread) left each thread idle ~6 µs of a ~300 µs E2B decode pass waiting for the other
     * (bench/RESULTS.md, seventh session). A task costs ~0.5 µs to claim and start its streams: a floor of 2 groups
     * made the 1536 x 256 per-layer-embedding product (1.1 KB groups) ~20 tasks of 2.3 KB; 32 KB took its read rate
     * from 0.54 to 0.60 of the probe and one E2B token's products from 0.81-0.85 to 0.85-0.87 (eleventh session).
     * The floor is in work, bytes x tokens: a prompt's last tasks stay short, or one thread finishes them alone. */
    enum { MIN_WORK = 32 << 10, MAX_TASKS = 64 };
    int32_t bounds[MAX_MM][MAX_TASKS + 1];
    int64_t left = 0; /* 8-row groups of the interleaved products not yet given to a task */
    for (int i = 0; i < count; i++)
        if (jobs[i].xq && mm[i].w->x8) left += mm[i].w->rows / 8;
    const int64_t per = 2 * (int64_t)g4c_pool_n_threads(pool);
    first[0] = 0;
    for (int i = 0; i < count; i++) {
        const g4c_wmat *w = mm[i].w;
        if (jobs[i].xq && w->x8) {
            const int64_t n_groups = w->rows / 8, gbytes = 8 * (int64_t)g4c_wmat_x8_row_bytes(w);
            const int64_t min_work = (int64_t)MIN_WORK / n, fit = (min_work + gbytes - 1) / gbytes,
                          min_groups = fit > 2 ? fit : 2;
            int k = 0;
            bounds[i][0] = 0;
            for (int64_t g = 0; g < n_groups; k++) {
                int64_t c = left / per > min_groups ? left / per : min_groups;
                if (c > n_groups - g || k == MAX_TASKS - 1) c = n_groups - g;
                g += c, left -= c;
                bounds[i][k + 1] = (int32_t)g;
            }
            jobs[i].bounds = bounds[i];
            first[i + 1] = first[i] + k;
            continue;
        }
        first[i + 1] = first[i] + (int)((w->rows + jobs[i].task_rows - 1) / jobs[i].task_rows);
    }
    many_job m = {jobs, first, count};
    g4c_pool_run(pool, many_task, &m, first[count]);
    g4c_pool_unlock(pool);
}

void g4c_matmul(g4c_pool *pool, float *y, const float *x, const g4c_wmat *w, int n) {
    const g4c_mm m = {y, x, w};
    g4c_matmul_many(pool, &m, 1, n);
}

/* Element-wise work of a long prompt (norms over 512 x 1536, GELU over 512 x 12288: ~4% of an E2B prefill when
 * one thread did it) and the softcap over a decoded token's 262,144 logits, split over the pool in equal slices; a
 * row's or an element's result does not depend on the slice it falls in, so the split changes no bit. Small calls
 * (decode's norms, a per-layer-embedding GELU) stay on the calling thread. */
typedef struct ew_job ew_job;
struct ew_job {
    void (*span)(const ew_job *j, int64_t lo, int64_t hi); /* units [lo, hi): rows (norm) or elements */
    float *y;
    const float *a, *b, *w;
    int64_t n; /* units */
    int dim, n_tasks;
    float f; /* the norm's eps or the softcap's cap */
};

enum { EW_SPLIT = 1 << 17 }; /* norm elements' worth of work from which a call is split (a 512-token prompt's norm: 786K) */

static void ew_task(void *ctx, int i_task, int i_thread) {
    (void)i_thread;
    const ew_job *j = ctx;
    j->span(j, j->n * i_task / j->n_tasks, j->n * (i_task + 1) / j->n_tasks);
}

/* j->span over all j->n units: in slices over the pool from EW_SPLIT on (units x unit_cost, a unit's work in norm
 * elements) */
static void ew_run(g4c_pool *pool, ew_job *j, int64_t unit_cost) {
    j->n_tasks = pool && j->n * unit_cost >= EW_SPLIT ? 2 * g4c_pool_n_threads(pool) : 1;
    if (j->n_tasks > j->n) j->n_tasks = (int)j->n;
    if (j->n_tasks > 1) g4c_pool_run(pool, ew_task, j, j->n_tasks);
    else j->span(j, 0, j->n);
}

static void rms_span(const ew_job *j, int64_t lo, int64_t hi) {
    /* HF Gemma4RMSNorm: x * pow(mean(x²) + eps, -0.5) * w, in f32 */
    const int dim = j->dim;
    for (int64_t i = lo; i < hi; i++) {
        const float *xi = j->a + (size_t)i * dim;
        float *yi = j->y + (size_t)i * dim;
        float inv = 1.0f / sqrtf(dot(xi, xi, dim) / (float)dim + j->f);
        if (j->w)
            for (int c = 0; c < dim; c++) yi[c] = xi[c] * inv * j->w[c];
        else
            for (int c = 0; c < dim; c++) yi[c] = xi[c] * inv;
    }
}

void g4c_rms_norm(g4c_pool *pool, float *y, const float *x, const float *w, int n_rows, int dim, float eps) {
    ew_job j = {.span = rms_span, .y = y, .a = x, .w = w, .n = n_rows, .dim = dim, .f = eps};
    ew_run(pool, &j, dim);
}

static void gelu_span(const ew_job *j, int64_t lo, int64_t hi) {
#if defined(__x86_64__)
    if (avx2()) {
        g4c_avx2_gelu_mul(j->y + lo, j->a + lo, j->b + lo, hi - lo);
        return;
    }
#endif
    for (int64_t i = lo; i < hi; i++) j->y[i] = g4c_gelu_tanh(j->a[i]) * j->b[i];
}

/* An element of GELU (a tanh) costs ~30 of a norm's: one thread took 17 µs over a decoded E2B token's 12288, twenty
 * times a token, with the other thread idle; so it splits from 4096 elements (EW_SPLIT / 32) on. */
void g4c_gelu_mul(g4c_pool *pool, float *y, const float *gate, const float *up, int n) {
    ew_job j = {.span = gelu_span, .y = y, .a = gate, .b = up, .n = n};
    ew_run(pool, &j, 32);
}

void g4c_rope(float *x, int n_heads, int head_dim, const float *cos, const float *sin) {
    const int half = head_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *a = x + (size_t)h * head_dim, *b = a + half;
        for (int k = 0; k < half; k++) {
            float x0 = a[k], x1 = b[k];
            a[k] = x0 * cos[k] - x1 * sin[k];
            b[k] = x1 * cos[k] + x0 * sin[k];
        }
    }
}

static void softcap_span(const ew_job *j, int64_t lo, int64_t hi) {
    const float cap = j->f, inv = 1.0f / cap;
    float *x = j->y;
#if defined(__x86_64__)
    if (avx2()) {
        for (int64_t i = lo; i < hi; i++) x[i] *= inv;
        g4c_avx2_tanh(x + lo, x + lo, hi - lo);
        for (int64_t i = lo; i < hi; i++) x[i] *= cap;
        return;
    }
#endif
    for (int64_t i = lo; i < hi; i++) x[i] = cap * tanhf(x[i] * inv);
}

void g4c_softcap(g4c_pool *pool, float *x, int n, float cap) {
    ew_job j = {.span = softcap_span, .y = x, .n = n, .f = cap};
    ew_run(pool, &j, 1);
}

typedef struct {
    float *out;
    const float *q;
    const g4c_kv_view *kv;
    int pos0, n_head;
    float *scratch;
    int scratch_per_thread;
    int gs; /* query heads per task (attn_group_task) */
} attn_job;

static void attn_task(void *ctx, int i_task, int i_thread) {
    const attn_job *j = ctx;
    const g4c_kv_view *kv = j->kv;
    const int t = i_task / j->n_head, h = i_task % j->n_head;
    const int hd = kv->head_dim, kvh = h / (j->n_head / kv->n_kv_head);
    const int pos = j->pos0 + t;
    const int lo = kv->window > 0 && pos - kv->window + 1 > 0 ? pos - kv->window + 1 : 0;
    const int hi = kv->hi ? kv->hi[t] : pos;
    const float *qh = j->q + ((size_t)t * j->n_head + h) * hd;
    float *p = j->scratch + (size_t)i_thread * j->scratch_per_thread;
    const size_t stride = (size_t)kv->n_kv_head * hd;
    float mx = -INFINITY;
    for (int jj = lo; jj <= hi; jj++) {
        float s = dot(qh, kv->k + (size_t)(jj % kv->cap) * stride + (size_t)kvh * hd, hd);
        p[jj - lo] = s;
        if (s > mx) mx = s;
    }
    float sum = 0;
    for (int jj = 0; jj <= hi - lo; jj++) sum += (p[jj] = expf(p[jj] - mx));
    const float inv = 1.0f / sum;
    float *oh = j->out + ((size_t)t * j->n_head + h) * hd;
    for (int c = 0; c < hd; c++) oh[c] = 0;
    for (int jj = lo; jj <= hi; jj++) {
        const float *vj = kv->v + (size_t)(jj % kv->cap) * stride + (size_t)kvh * hd;
        const float pj = p[jj - lo] * inv;
        if (avx2()) g4c_simd_axpy(oh, pj, vj, hd);
        else
            for (int c = 0; c < hd; c++) oh[c] += pj * vj[c];
    }
}

#if defined(__x86_64__)
/* One task = gs query heads of one token that share a KV head (GQA): they see the same positions (the mask depends
 * on the token only), so each K and V row is read once for all of them. Per head, one query at a time, the cache
 * of a long prompt streams from L3 once per head (E2B: 8 heads per KV head, 1 MB of K and V per layer at 512
 * positions, more than L2); and one dot product at a time waits on its FMA chain. */
static void attn_group_task(void *ctx, int i_task, int i_thread) {
    (void)i_thread;
    const attn_job *j = ctx;
    const g4c_kv_view *kv = j->kv;
    const int per_tok = j->n_head / j->gs, t = i_task / per_tok, h0 = i_task % per_tok * j->gs;
    const int hd = kv->head_dim, kvh = h0 / (j->n_head / kv->n_kv_head);
    const int pos = j->pos0 + t;
    const int lo = kv->window > 0 && pos - kv->window + 1 > 0 ? pos - kv->window + 1 : 0;
    const int hi = kv->hi ? kv->hi[t] : pos;
    const size_t at = ((size_t)t * j->n_head + h0) * hd;
    (vnni() ? g4c_avx512_attend : g4c_avx2_attend)(j->out + at, j->q + at, j->gs, hd, kv->k + (size_t)kvh * hd,
                                                   kv->v + (size_t)kvh * hd, (size_t)kv->n_kv_head * hd, kv->cap,
                                                   lo, hi);
}
#endif

void g4c_attention(g4c_pool *pool, float *out, const float *q, const g4c_kv_view *kv, int n_tok, int pos0,
                   int n_head, float *scratch, int scratch_per_thread) {
    /* each query scores at most hi - lo + 1 <= scratch_per_thread keys (callers size it from the cache) */
    attn_job j = {out, q, kv, pos0, n_head, scratch, scratch_per_thread, 1};
#if defined(__x86_64__)
    if (avx2()) {
        /* the whole GQA group per task, halved while that leaves fewer than two tasks per thread (decode); a head's
         * result does not depend on the group size */
        int gs = n_head / kv->n_kv_head;
        while (gs > G4C_ATT_HEADS && gs % 2 == 0) gs /= 2;
        if (gs > G4C_ATT_HEADS) gs = 1;
        while (gs % 2 == 0 && n_tok * (n_head / gs) < 2 * g4c_pool_n_threads(pool)) gs /= 2;
        j.gs = gs;
        g4c_pool_run(pool, attn_group_task, &j, n_tok * (n_head / gs));
        return;
    }
#endif
    g4c_pool_run(pool, attn_task, &j, n_tok * n_head);
}
