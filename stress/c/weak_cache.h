/*
 * weak_cache.h — the weak-cache workload both weak-cache clients run: what a Python
 * program's weakref.WeakValueDictionary cache with __del__ on some values asks of its VM.
 *
 * Each thread owns a cache of WEAK_CACHE_KEYS slots, each empty or holding a weak
 * reference to a value, and a ring of the WEAK_CACHE_RECENT values it used last (the
 * program's strong references; a value dies some time after it leaves the ring). Each
 * operation polls, allocates a temporary, picks a random key and looks its weak reference
 * up: a hit checks the value; a miss (no weakref, or its value died) allocates the value,
 * registers a finalizer on one value in WEAK_CACHE_FINALIZE_EVERY, and stores a new
 * weakref. Either way the value goes into the ring. Every WEAK_CACHE_DRAIN_EVERY
 * operations the thread runs the finalizers that are due, and each finalizer checks its
 * value. How many lookups hit depends on how soon the collector finds values dead, so the
 * work done differs a little between collectors; the hit, miss and finalizer counts are
 * printed to stderr.
 */
#ifndef TANDEM_WEAK_CACHE_H
#define TANDEM_WEAK_CACHE_H

#include "bench.h"

#include <stdint.h>

enum {
    WEAK_CACHE_KEYS = 1 << 16,
    WEAK_CACHE_RECENT = 1 << 12,
    WEAK_CACHE_FINALIZE_EVERY = 8,
    WEAK_CACHE_DRAIN_EVERY = 64,
    WEAK_CACHE_MAX_THREADS = 64,
};

/* A value's fields after the collector's header (libgc has none): its key, a check word
 * derived from it, a payload and a reference. */
#define WEAK_CACHE_VALUE_FIELDS                                                           \
    int64_t key;                                                                          \
    int64_t check;                                                                        \
    int64_t payload[3];                                                                   \
    struct value *next;

static inline int64_t weak_cache_check_of(int64_t key) { return key * 31 + 7; }

static inline int weak_cache_valid(int64_t key, int64_t check) {
    return key >= 0 && key < WEAK_CACHE_KEYS && check == weak_cache_check_of(key);
}

static inline int weak_cache_finalizable(uint64_t key) {
    return key % WEAK_CACHE_FINALIZE_EVERY == 0;
}

static inline uint64_t weak_cache_seed(int index) {
    return 0x9e3779b97f4a7c15ULL * (uint64_t)(index + 1);
}

/* xorshift64*. */
static inline uint64_t weak_cache_next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (*s * 0x2545f4914f6cdd1dULL) >> 16;
}

/* The command line: OPS_PER_THREAD THREADS. */
typedef struct weak_cache_args {
    long ops;
    int threads;
} weak_cache_args;

static inline weak_cache_args weak_cache_parse(int argc, char **argv) {
    weak_cache_args a;
    a.ops = bench_arg(argc, argv, 1, 2000000);
    a.threads = (int)bench_arg(argc, argv, 2, 2);
    BENCH_CHECK(a.threads <= WEAK_CACHE_MAX_THREADS);
    return a;
}

/* One thread's counts. */
typedef struct weak_cache_thread {
    int index;
    long hits;
    long misses;
} weak_cache_thread;

/* Runs worker(&threads[i]) on `n` threads and waits for them. A macro, so that the
 * pthread_create it names is the one the client's headers define (gc.h redirects it). */
#define WEAK_CACHE_RUN(worker, threads, n)                                                \
    do {                                                                                  \
        pthread_t tids_[WEAK_CACHE_MAX_THREADS];                                          \
        for (int i_ = 0; i_ < (n); i_++) {                                                \
            (threads)[i_] = (weak_cache_thread){.index = i_};                             \
            BENCH_CHECK(pthread_create(&tids_[i_], NULL, (worker), &(threads)[i_]) == 0); \
        }                                                                                 \
        for (int i_ = 0; i_ < (n); i_++) {                                                \
            BENCH_CHECK(pthread_join(tids_[i_], NULL) == 0);                              \
        }                                                                                 \
    } while (0)

/* Prints the counts to stderr, checks that every operation was counted and returns the
 * check sum (the operations done). */
static inline long weak_cache_report(const weak_cache_thread *t, weak_cache_args a,
                                     long finalized) {
    long hits = 0, misses = 0;
    for (int i = 0; i < a.threads; i++) {
        hits += t[i].hits;
        misses += t[i].misses;
    }
    BENCH_CHECK(hits + misses == a.ops * a.threads);
    BENCH_CHECK(finalized <= misses);
    fprintf(stderr, "weak-cache: %ld hits, %ld misses, %ld finalized\n", hits, misses,
            finalized);
    return hits + misses;
}

#endif
