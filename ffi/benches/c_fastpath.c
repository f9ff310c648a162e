/*
 * c_fastpath.c — the cost of tandem.h's inline fast paths, in ns per operation.
 *
 * Allocation: bursts of allocations, each small enough not to trigger a collection, timed
 * as a whole (so TLAB refills are included), with an untimed tandem_collect between
 * bursts; the median burst is reported. Barriers and the safepoint poll: a loop over a
 * 1024-slot array with a compiler barrier after every operation, so the barrier's test is
 * re-executed each time (no hoisting) as in real interpreter code; compared with the same
 * loop doing a plain store or load. No collection is in progress, so every barrier takes
 * its inactive fast path.
 *
 * Built and run by benches/fastpath.rs. Usage: c_fastpath [scale]  (default 1; smaller is
 * faster and noisier, e.g. 0.01 as a smoke test).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tandem.h"

#define COMPILER_BARRIER() __asm__ __volatile__("" ::: "memory")
#define SLOTS 1024
#define BURST 100000
#define REPEATS 9

static double scale = 1.0;
static volatile uintptr_t sink;

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void fail(const char *what) {
    fprintf(stderr, "%s failed: %s\n", what, tandem_last_error());
    exit(1);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static tandem_type_id cons_type, array_type;

/* ---- Allocation ---------------------------------------------------------------------- */

static long burst_size(void) {
    long n = (long)(BURST * (scale < 1 ? scale : 1));
    return n < 1000 ? 1000 : n;
}

/* Median ns per object over bursts of tandem_alloc (or, if !inline_path, of its slow path). */
static double bench_alloc(tandem_mutator *m, tandem_type_id type, size_t length, int inline_path) {
    int bursts = 5 + (int)(45 * scale);
    long per_burst = burst_size();
    double *v = malloc(sizeof(double) * (size_t)bursts);
    if (v == NULL) fail("malloc");
    for (int b = 0; b < bursts; b++) {
        uintptr_t x = 0;
        double t0 = now_ns();
        if (inline_path) {
            for (long i = 0; i < per_burst; i++) {
                void *p = tandem_alloc(m, type, length);
                if (p == NULL) fail("tandem_alloc");
                x ^= (uintptr_t)p;
            }
        } else {
            for (long i = 0; i < per_burst; i++) {
                void *p = tandem_alloc_slow(m, type, length);
                if (p == NULL) fail("tandem_alloc_slow");
                x ^= (uintptr_t)p;
            }
        }
        v[b] = (now_ns() - t0) / (double)per_burst;
        sink ^= x;
        if (tandem_collect(m) != TANDEM_OK) fail("tandem_collect"); /* untimed */
    }
    double r = median(v, bursts);
    free(v);
    return r;
}

/* ---- Barriers ------------------------------------------------------------------------ */

enum op { PLAIN_STORE, WRITE_REF, OBJECT_BARRIER, PLAIN_LOAD, READ_REF, EMPTY, SAFEPOINT, OPS };

/* Eight operations per loop iteration (slots i..i+7), each followed by a compiler barrier. */
#define UNROLL 8
#define X8(body)                                                                           \
    do {                                                                                   \
        for (long i = 0; i < n; i += UNROLL) {                                             \
            void **s_ = &slots[i & (SLOTS - 1)];                                           \
            body(0); body(1); body(2); body(3); body(4); body(5); body(6); body(7);        \
        }                                                                                  \
    } while (0)

#define DO_PLAIN_STORE(k) { s_[k] = v; COMPILER_BARRIER(); }
#define DO_WRITE_REF(k) { tandem_write_ref(m, obj, &s_[k], v); COMPILER_BARRIER(); }
#define DO_OBJECT_BARRIER(k) { tandem_object_barrier(m, obj); s_[k] = v; COMPILER_BARRIER(); }
#define DO_PLAIN_LOAD(k) { x += (uintptr_t)s_[k]; COMPILER_BARRIER(); }
#define DO_READ_REF(k) { x += (uintptr_t)tandem_read_ref(m, obj, &s_[k]); COMPILER_BARRIER(); }
#define DO_EMPTY(k) { (void)s_; COMPILER_BARRIER(); }
#define DO_SAFEPOINT(k) { (void)s_; x += (uintptr_t)tandem_safepoint(m); COMPILER_BARRIER(); }

/* ns per operation of one timed run of `op`. */
static double run_op(tandem_mutator *m, enum op op, void *obj, void **slots, void *v, long n) {
    uintptr_t x = 0;
    double t0 = now_ns();
    switch (op) {
    case PLAIN_STORE: X8(DO_PLAIN_STORE); break;
    case WRITE_REF: X8(DO_WRITE_REF); break;
    case OBJECT_BARRIER: X8(DO_OBJECT_BARRIER); break;
    case PLAIN_LOAD: X8(DO_PLAIN_LOAD); break;
    case READ_REF: X8(DO_READ_REF); break;
    case EMPTY: X8(DO_EMPTY); break;
    case SAFEPOINT: X8(DO_SAFEPOINT); break;
    case OPS: break;
    }
    double t = (now_ns() - t0) / (double)n;
    sink ^= x;
    return t;
}

/* Fastest of REPEATS rounds for every op, the ops interleaved within each round so that a
 * burst of load from other processes does not single one out. */
static void bench_ops(tandem_mutator *m, void *obj, void **slots, void *v, double best[OPS]) {
    long n = (long)(50e6 * scale) / UNROLL * UNROLL;
    if (n < 100000) n = 100000;
    for (int op = 0; op < OPS; op++) best[op] = 1e9;
    for (int r = 0; r < REPEATS; r++) {
        for (int op = 0; op < OPS; op++) {
            double t = run_op(m, (enum op)op, obj, slots, v, n);
            if (t < best[op]) best[op] = t;
        }
    }
}

static void register_types(void) {
    static const size_t cons_refs[] = {8, 16};
    static const size_t item_refs[] = {0};
    tandem_type_info t = {0};
    t.size = sizeof t;
    t.fixed_size = 24;
    t.ref_offsets = cons_refs;
    t.n_ref_offsets = 2;
    if (tandem_register_type(&t, &cons_type) != TANDEM_OK) fail("register cons");
    tandem_type_info a = {0};
    a.size = sizeof a;
    a.fixed_size = 16;
    a.item_size = 8;
    a.length_offset = 8;
    a.item_ref_offsets = item_refs;
    a.n_item_ref_offsets = 1;
    if (tandem_register_type(&a, &array_type) != TANDEM_OK) fail("register array");
}

int main(int argc, char **argv) {
    if (argc > 1) scale = atof(argv[1]);
    if (!(scale > 0 && scale <= 10)) {
        fprintf(stderr, "scale must be in (0, 10]\n");
        return 2;
    }
    tandem_options opts = {0};
    opts.size = sizeof opts;
    opts.threads = 1;
    opts.mode = "stw"; /* short collections between bursts; the fast paths are the same */
    if (tandem_init(&opts) != TANDEM_OK) fail("tandem_init");
    register_types();
    tandem_mutator *m = tandem_attach_thread();
    if (m == NULL) fail("tandem_attach_thread");

    printf("C, allocation (ns/object, median burst of %ld, TLAB refills included):\n",
           burst_size());
    printf("  tandem_alloc inline, 24 B cons          %6.2f\n", bench_alloc(m, cons_type, 0, 1));
    printf("  tandem_alloc inline, 48 B array[4]      %6.2f\n", bench_alloc(m, array_type, 4, 1));
    printf("  tandem_alloc_slow (checked call), 24 B  %6.2f\n", bench_alloc(m, cons_type, 0, 0));

    /* The barrier loops work on a rooted 1024-slot array object. */
    void **arr = tandem_alloc(m, array_type, SLOTS);
    if (arr == NULL || tandem_push_root(m, arr) != TANDEM_OK) fail("allocating the array");
    void *v = tandem_alloc(m, cons_type, 0);
    if (v == NULL || tandem_push_root(m, v) != TANDEM_OK) fail("allocating the value");
    arr = *tandem_root_slot(m, 1);
    void **slots = arr + 2; /* items start after the header and the length */

    double t[OPS];
    bench_ops(m, arr, slots, v, t);
    printf("C, inactive barriers (ns/op, fastest of %d; 8 ops per loop iteration; delta over\n"
           "the plain operation):\n", REPEATS);
    printf("  plain store                             %6.3f\n", t[PLAIN_STORE]);
    printf("  tandem_write_ref                        %6.3f  %+.3f\n", t[WRITE_REF],
           t[WRITE_REF] - t[PLAIN_STORE]);
    printf("  tandem_object_barrier + plain store     %6.3f  %+.3f\n", t[OBJECT_BARRIER],
           t[OBJECT_BARRIER] - t[PLAIN_STORE]);
    printf("  plain load                              %6.3f\n", t[PLAIN_LOAD]);
    printf("  tandem_read_ref                         %6.3f  %+.3f\n", t[READ_REF],
           t[READ_REF] - t[PLAIN_LOAD]);
    printf("  nothing (compiler barrier only)         %6.3f\n", t[EMPTY]);
    printf("  tandem_safepoint                        %6.3f  %+.3f\n", t[SAFEPOINT],
           t[SAFEPOINT] - t[EMPTY]);

    (void)tandem_pop_root(m);
    (void)tandem_pop_root(m);
    if (tandem_detach_thread(m) != TANDEM_OK) fail("tandem_detach_thread");
    if (tandem_shutdown() != TANDEM_OK) fail("tandem_shutdown");
    return 0;
}
