/*
 * weak_cache_gc.c — the same weak-value cache as weak_cache_tandem.c (see weak_cache.h),
 * written against gc.h the way libgc's documentation says weak pointers and finalizers
 * are done: a weak reference is a pointer-free (atomic) cell holding the hidden target,
 * registered with GC_general_register_disappearing_link and read under the allocation
 * lock (GC_call_with_alloc_lock, which gc.h requires so that a dying target cannot be
 * revived between the collector's decision and the clearing); finalizers are ordered
 * (GC_register_finalizer) and run on demand (GC_set_finalize_on_demand(1), each thread
 * calling GC_invoke_finalizers when GC_should_invoke_finalizers says some are due), as a
 * VM runs them at its own safe points. GC_THREADS with thread-local allocation.
 *
 * Usage: weak_cache_gc [OPS_PER_THREAD [THREADS]]
 * Prints one JSON line: wall seconds, the check sum and libgc's collection count and heap.
 */
#define GC_THREADS 1
#include "weak_cache.h"

#include <gc.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct value {
    WEAK_CACHE_VALUE_FIELDS
} value;

typedef struct weak {
    GC_hidden_pointer target; /* 0 once cleared */
} weak;

static long ops_per_thread;
static atomic_long finalized;

static void *GC_CALLBACK reveal(void *w) {
    GC_hidden_pointer h = ((weak *)w)->target;
    return h == 0 ? NULL : GC_REVEAL_POINTER(h);
}

static void GC_CALLBACK finalize(void *obj, void *data) {
    (void)data;
    value *v = obj;
    BENCH_CHECK(weak_cache_valid(v->key, v->check));
    atomic_fetch_add_explicit(&finalized, 1, memory_order_relaxed);
}

static void *worker(void *arg) {
    weak_cache_thread *t = arg;
    weak **cache = GC_MALLOC(WEAK_CACHE_KEYS * sizeof(weak *));
    value **recent = GC_MALLOC(WEAK_CACHE_RECENT * sizeof(value *));
    BENCH_CHECK(cache != NULL && recent != NULL);
    uint64_t rng = weak_cache_seed(t->index);
    for (long op = 0; op < ops_per_thread; op++) {
        uint64_t key = weak_cache_next(&rng) % WEAK_CACHE_KEYS;
        value *tmp = GC_MALLOC(sizeof(value));
        BENCH_CHECK(tmp != NULL);
        tmp->key = (int64_t)key;
        weak *w = cache[key];
        value *v = w != NULL ? GC_call_with_alloc_lock(reveal, w) : NULL;
        if (v != NULL) {
            BENCH_CHECK(v->key == (int64_t)key && weak_cache_valid(v->key, v->check));
            t->hits++;
        } else {
            t->misses++;
            v = GC_MALLOC(sizeof(value));
            BENCH_CHECK(v != NULL);
            v->key = (int64_t)key;
            v->check = weak_cache_check_of((int64_t)key);
            if (weak_cache_finalizable(key)) {
                GC_register_finalizer(v, finalize, NULL, NULL, NULL);
            }
            weak *nw = GC_MALLOC_ATOMIC(sizeof(weak));
            BENCH_CHECK(nw != NULL);
            nw->target = GC_HIDE_POINTER(v);
            BENCH_CHECK(GC_general_register_disappearing_link((void **)&nw->target, v) ==
                        GC_SUCCESS);
            cache[key] = nw;
        }
        recent[op % WEAK_CACHE_RECENT] = v;
        if (op % WEAK_CACHE_DRAIN_EVERY == 0 && GC_should_invoke_finalizers()) {
            GC_invoke_finalizers();
        }
    }
    GC_invoke_finalizers();
    return NULL;
}

int main(int argc, char **argv) {
    weak_cache_args a = weak_cache_parse(argc, argv);
    ops_per_thread = a.ops;
    double t0 = bench_now();
    GC_set_finalize_on_demand(1);
    GC_INIT();
    weak_cache_thread threads[WEAK_CACHE_MAX_THREADS];
    WEAK_CACHE_RUN(worker, threads, a.threads);
    double wall = bench_now() - t0;
    long check = weak_cache_report(threads, a, atomic_load(&finalized));
    printf("{\"wall_s\":%.6f,\"check\":%ld,\"gcs\":%lu,\"heap_size\":%lu}\n", wall, check,
           (unsigned long)GC_get_gc_no(), (unsigned long)GC_get_heap_size());
    return 0;
}
