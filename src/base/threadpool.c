/* A fixed pool of worker threads that run one batch of tasks at a time. The caller's thread works too, so a pool
 * of n threads starts n-1 workers. Tasks are claimed with an atomic counter (dynamic load balance).
 * Decoding runs hundreds of small batches per token, so waking must be cheap: workers spin on the batch counter
 * for a while before sleeping on a condition variable, and the caller spins for the stragglers. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"

struct g4c_pool {
    int n_threads;
    pthread_t *workers;      /* [n_threads - 1] */
    pthread_mutex_t mu;
    pthread_cond_t cv_start; /* a new batch (generation changed) or shutdown */
    pthread_cond_t cv_done;  /* the last worker left the batch */
    atomic_uint generation;  /* bumped once per batch */
    atomic_int shutdown;
    atomic_int n_busy;       /* workers still inside the current batch */
    atomic_int n_sleeping;   /* workers blocked on cv_start */
    g4c_task_fn fn;
    void *ctx;
    int n_tasks;
    atomic_int next;
    void **scratch;          /* [n_threads] per-thread buffers of scratch_size bytes */
    size_t scratch_size;
    pthread_mutex_t run_mu;  /* recursive: one caller at a time (sessions on other threads wait their turn) */
    void *shared;            /* g4c_pool_shared's buffer */
    size_t shared_size;
};

static void drain(g4c_pool *p, int i_thread) {
    for (;;) {
        int i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n_tasks) break;
        p->fn(p->ctx, i, i_thread);
    }
}

typedef struct { g4c_pool *p; int id; } worker_arg;

/* How long a worker waits for the next batch, and the caller for the stragglers, spinning before it sleeps: a time,
 * not a count of pauses (a pause is 13 ns on the Xeon, ~40 on older Intel, a few on AMD). Between a
 * decoded token's matrix products run attention and norms, 2-60 µs; a worker asleep there wakes ~40 µs into the
 * next product while the caller streams weights alone (E2B Q4_0: a fifth of the products started that way with a
 * 7 µs spin; a token's products with 20 µs gaps read at 0.79-0.87 of the read probe, 0.90-1.02 with 100 µs;
 * bench/RESULTS.md, tenth session). Idle longer than this, threads sleep. */
enum { SPIN_NS = 100000 };

static inline uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* One step of a spin begun at t0: 16 pauses (the clock is read once per 16: a read costs ~20 ns); 1 once SPIN_NS
 * have passed (time to sleep). */
static inline int spin_done(uint64_t t0) {
    for (int i = 0; i < 16; i++) cpu_relax();
    return now_ns() - t0 > SPIN_NS;
}

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    g4c_pool *p = wa.p;
    unsigned seen = 0;
    for (;;) {
        for (const uint64_t t0 = now_ns();
             atomic_load(&p->generation) == seen && !atomic_load(&p->shutdown) && !spin_done(t0);) {}
        if (atomic_load(&p->generation) == seen && !atomic_load(&p->shutdown)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->n_sleeping, 1);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->shutdown)) pthread_cond_wait(&p->cv_start, &p->mu);
            atomic_fetch_sub(&p->n_sleeping, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->shutdown)) break;
        seen = atomic_load(&p->generation);
        drain(p, wa.id);
        if (atomic_fetch_sub(&p->n_busy, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

int g4c_n_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

g4c_status g4c_pool_init(g4c_pool **out, int n_threads, g4c_err *err) {
    *out = NULL;
    if (n_threads <= 0) n_threads = g4c_n_cpus();
    if (n_threads > 1024) return G4C_FAIL(err, G4C_E_ARG, "thread count %d is above 1024", n_threads);
    g4c_pool *p = g4c_calloc(1, sizeof *p, err);
    if (!p) return G4C_E_NOMEM;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&p->run_mu, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_cond_init(&p->cv_start, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    p->workers = g4c_calloc((size_t)n_threads, sizeof(pthread_t), err);
    if (!p->workers) { g4c_pool_free(p); return G4C_E_NOMEM; }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) { p->n_threads = i; g4c_pool_free(p); return G4C_FAIL(err, G4C_E_NOMEM, "out of memory"); }
        wa->p = p;
        wa->id = i;
        if (pthread_create(&p->workers[i - 1], NULL, worker_main, wa) != 0) {
            free(wa);
            p->n_threads = i;
            g4c_pool_free(p);
            return G4C_FAIL(err, G4C_E_NOMEM, "could not start worker thread %d", i);
        }
    }
    *out = p;
    return G4C_OK;
}

void g4c_pool_free(g4c_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->shutdown, 1);
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->workers[i - 1], NULL);
    if (p->scratch)
        for (int i = 0; i < p->n_threads; i++) g4c_afree(p->scratch[i]);
    free(p->scratch);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->run_mu);
    g4c_afree(p->shared);
    pthread_cond_destroy(&p->cv_start);
    pthread_cond_destroy(&p->cv_done);
    free(p->workers);
    free(p);
}

int g4c_pool_n_threads(const g4c_pool *p) { return p ? p->n_threads : 1; }

g4c_status g4c_pool_reserve(g4c_pool *p, size_t size_bytes, g4c_err *err) {
    if (size_bytes <= p->scratch_size) return G4C_OK;
    if (!p->scratch && !(p->scratch = g4c_calloc((size_t)p->n_threads, sizeof(void *), err))) return G4C_E_NOMEM;
    for (int i = 0; i < p->n_threads; i++) {
        void *b = g4c_amalloc(size_bytes, 1, err);
        if (!b) return G4C_E_NOMEM; /* buffers already grown stay valid; scratch_size keeps the old size */
        g4c_afree(p->scratch[i]);
        p->scratch[i] = b;
    }
    p->scratch_size = size_bytes;
    return G4C_OK;
}

void *g4c_pool_scratch(const g4c_pool *p, int i_thread, size_t *size_bytes) {
    if (!p || !p->scratch) {
        *size_bytes = 0;
        return NULL;
    }
    *size_bytes = p->scratch_size;
    return p->scratch[i_thread];
}

void g4c_pool_lock(g4c_pool *p) {
    if (p) pthread_mutex_lock(&p->run_mu);
}
void g4c_pool_unlock(g4c_pool *p) {
    if (p) pthread_mutex_unlock(&p->run_mu);
}

void *g4c_pool_shared(g4c_pool *p, size_t size_bytes) {
    if (!p) return NULL;
    if (size_bytes > p->shared_size) {
        void *b = g4c_amalloc(size_bytes, 1, NULL);
        if (!b) return NULL;
        g4c_afree(p->shared);
        p->shared = b;
        p->shared_size = size_bytes;
    }
    return p->shared;
}

void g4c_pool_run(g4c_pool *p, g4c_task_fn fn, void *ctx, int n_tasks) {
    if (n_tasks <= 0) return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        g4c_pool_lock(p); /* per-thread scratch belongs to one caller at a time */
        for (int i = 0; i < n_tasks; i++) fn(ctx, i, 0);
        g4c_pool_unlock(p);
        return;
    }
    g4c_pool_lock(p);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    atomic_store(&p->n_busy, p->n_threads - 1);
    atomic_fetch_add(&p->generation, 1); /* publishes fn/ctx/n_tasks (seq_cst) */
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv_start);
        pthread_mutex_unlock(&p->mu);
    }
    drain(p, 0);
    for (const uint64_t t0 = now_ns(); atomic_load(&p->n_busy) > 0 && !spin_done(t0);) {}
    if (atomic_load(&p->n_busy) > 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->n_busy) > 0) pthread_cond_wait(&p->cv_done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
    g4c_pool_unlock(p);
}
