/*
 * weak_cache_tandem.c — a Python-style weak-value cache (weakref.WeakValueDictionary with
 * __del__ on some values), written against tandem.h only, the way a VM's runtime would
 * implement those services. See weak_cache.h for the workload.
 *
 * Weak references are tandem_weakref_new / tandem_weakref_get; the finalizers are one
 * finalizer queue that every thread drains with tandem_next_dead, as PyPy's
 * FinalizerQueue is drained.
 *
 * Usage: weak_cache_tandem [OPS_PER_THREAD [THREADS]]
 * Prints one JSON line: wall seconds, a check sum (operations done) and the collector's
 * statistics; the hit, miss and finalizer counts go to stderr.
 */
#include "bench_tandem.h"
#include "weak_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct value {
    uint64_t header;
    WEAK_CACHE_VALUE_FIELDS
} value;

typedef struct refs {
    uint64_t header;
    size_t length;
    void *items[];
} refs;

static tandem_type_id value_type, refs_type;
static tandem_finalizer_queue queue;
static long ops_per_thread;
static atomic_long finalized;

static void *new_refs(tandem_mutator *m, size_t n) {
    refs *r = tandem_alloc(m, refs_type, n);
    BENCH_CHECK(r != NULL);
    return r;
}

/* Runs the finalizers of every dead value the queue holds. */
static void drain(tandem_mutator *m) {
    value *v;
    long n = 0;
    while ((v = tandem_next_dead(m, queue)) != NULL) {
        BENCH_CHECK(weak_cache_valid(v->key, v->check));
        n++;
    }
    BENCH_CHECK(tandem_last_error_code() == TANDEM_OK);
    atomic_fetch_add_explicit(&finalized, n, memory_order_relaxed);
}

/* Root slots while the loop runs: the cache (depth 1) and the recent ring (depth 0). */
static void *worker(void *arg) {
    weak_cache_thread *t = arg;
    tandem_mutator *m = tandem_attach_thread();
    BENCH_CHECK(m != NULL);
    BENCH_CHECK(tandem_push_root(m, new_refs(m, WEAK_CACHE_KEYS)) == TANDEM_OK);
    BENCH_CHECK(tandem_push_root(m, new_refs(m, WEAK_CACHE_RECENT)) == TANDEM_OK);
    uint64_t rng = weak_cache_seed(t->index);
    for (long op = 0; op < ops_per_thread; op++) {
        BENCH_CHECK(tandem_safepoint(m) == TANDEM_OK);
        uint64_t key = weak_cache_next(&rng) % WEAK_CACHE_KEYS;
        /* The temporary an interpreter makes on the way (a boxed int, a bound method). */
        value *tmp = tandem_alloc(m, value_type, 0);
        BENCH_CHECK(tmp != NULL);
        tmp->key = (int64_t)key;
        refs *cache = *tandem_root_slot(m, 1);
        void *wr = tandem_read_ref(m, cache, &cache->items[key]);
        value *v = wr != NULL ? tandem_weakref_get(m, wr) : NULL;
        if (v != NULL) {
            BENCH_CHECK(v->key == (int64_t)key && weak_cache_valid(v->key, v->check));
            t->hits++;
        } else {
            t->misses++;
            v = tandem_alloc(m, value_type, 0);
            BENCH_CHECK(v != NULL);
            v->key = (int64_t)key;
            v->check = weak_cache_check_of((int64_t)key);
            BENCH_CHECK(tandem_push_root(m, v) == TANDEM_OK);
            if (weak_cache_finalizable(key)) {
                BENCH_CHECK(tandem_register_finalizer(m, queue, v) == TANDEM_OK);
            }
            void *nwr = tandem_weakref_new(m, v);
            BENCH_CHECK(nwr != NULL);
            v = tandem_pop_root(m);
            cache = *tandem_root_slot(m, 1);
            tandem_write_ref(m, cache, &cache->items[key], nwr);
        }
        refs *recent = *tandem_root_slot(m, 0);
        tandem_write_ref(m, recent, &recent->items[op % WEAK_CACHE_RECENT], v);
        if (op % WEAK_CACHE_DRAIN_EVERY == 0) {
            drain(m);
        }
    }
    drain(m);
    tandem_pop_root(m);
    tandem_pop_root(m);
    BENCH_CHECK(tandem_detach_thread(m) == TANDEM_OK);
    return NULL;
}

static void register_types(void) {
    static const size_t value_refs[] = {offsetof(value, next)};
    static const size_t item_refs[] = {0};
    value_type = bench_tandem_type("value", sizeof(value), value_refs, 1, 0, 0);
    tandem_type_info info;
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    info.fixed_size = sizeof(refs);
    info.item_size = sizeof(void *);
    info.length_offset = offsetof(refs, length);
    info.item_ref_offsets = item_refs;
    info.n_item_ref_offsets = 1;
    info.name = "refs";
    BENCH_CHECK(tandem_register_type(&info, &refs_type) == TANDEM_OK);
}

int main(int argc, char **argv) {
    weak_cache_args a = weak_cache_parse(argc, argv);
    ops_per_thread = a.ops;
    double t0 = bench_now();
    bench_tandem_init();
    register_types();
    BENCH_CHECK(tandem_finalizer_queue_new(NULL, NULL, &queue) == TANDEM_OK);
    weak_cache_thread threads[WEAK_CACHE_MAX_THREADS];
    WEAK_CACHE_RUN(worker, threads, a.threads);
    tandem_mutator *m = tandem_attach_thread();
    BENCH_CHECK(m != NULL);
    double wall = bench_now() - t0;
    long check = weak_cache_report(threads, a, atomic_load(&finalized));
    bench_tandem_finish(m, wall, check);
    return 0;
}
