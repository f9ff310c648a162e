/*
 * binary_trees_tandem.c — binary-trees from the Computer Language Benchmarks Game, written
 * against tandem.h only, as a VM's compiled code would use it: each node is allocated
 * before its children (top-down, as the Java and PyPy versions allocate), children are
 * stored through the write barrier, and the check walk polls the safepoint at every node.
 *
 * Usage: binary_trees_tandem MAX_DEPTH THREADS
 * Prints one JSON line: wall seconds, the check sum and the collector's statistics.
 * Options come from TANDEM_* variables (the bench sets only TANDEM_MODE and TANDEM_HEAP_MAX).
 *
 * Rooting: a node held in a C local across an allocation is on the shadow stack. The walk
 * polls with interior pointers in C locals: valid because Tandem does not move objects
 * that a thread's locals hold at a poll today; a moving configuration would root the path.
 */
#include "bench.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tandem.h"

typedef struct node {
    uint64_t header;
    void *left;
    void *right;
} node;

#define MIN_DEPTH 4

static tandem_type_id node_type;
static int max_depth;

/* A complete tree of `depth`, unrooted on return. */
static node *top_down_tree(tandem_mutator *m, int depth) {
    node *n = tandem_alloc(m, node_type, 0);
    BENCH_CHECK(n != NULL);
    if (depth > 0) {
        BENCH_CHECK(tandem_push_root(m, n) == TANDEM_OK);
        node *left = top_down_tree(m, depth - 1);
        n = *tandem_root_slot(m, 0);
        tandem_write_ref(m, n, &n->left, left);
        node *right = top_down_tree(m, depth - 1);
        n = tandem_pop_root(m);
        tandem_write_ref(m, n, &n->right, right);
    }
    return n;
}

static long item_check(tandem_mutator *m, node *n) {
    BENCH_CHECK(tandem_safepoint(m) == TANDEM_OK);
    node *left = tandem_read_ref(m, n, &n->left);
    if (left == NULL) {
        return 1;
    }
    node *right = tandem_read_ref(m, n, &n->right);
    return 1 + item_check(m, left) + item_check(m, right);
}

/* One depth of the main loop: `iterations` trees built and checked. */
static long depth_check(tandem_mutator *m, int depth) {
    long iterations = 1L << (max_depth - depth + MIN_DEPTH);
    long check = 0;
    for (long i = 0; i < iterations; i++) {
        check += item_check(m, top_down_tree(m, depth));
    }
    return check;
}

typedef struct job {
    int first; /* depths first, first + 2 * threads, ... */
    int stride;
    long check;
} job;

static void *worker(void *arg) {
    job *j = arg;
    tandem_mutator *m = tandem_attach_thread();
    BENCH_CHECK(m != NULL);
    for (int d = j->first; d <= max_depth; d += j->stride) {
        j->check += depth_check(m, d);
    }
    BENCH_CHECK(tandem_detach_thread(m) == TANDEM_OK);
    return NULL;
}

int main(int argc, char **argv) {
    max_depth = (int)bench_arg(argc, argv, 1, 16);
    int threads = (int)bench_arg(argc, argv, 2, 1);
    BENCH_CHECK(max_depth >= MIN_DEPTH + 2 && threads <= 64);
    double t0 = bench_now();
    if (tandem_init(NULL) != TANDEM_OK) {
        fprintf(stderr, "tandem_init: %s\n", tandem_last_error());
        return 2;
    }
    static const size_t refs[] = {offsetof(node, left), offsetof(node, right)};
    tandem_type_info info;
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    info.fixed_size = sizeof(node);
    info.ref_offsets = refs;
    info.n_ref_offsets = 2;
    info.name = "node";
    BENCH_CHECK(tandem_register_type(&info, &node_type) == TANDEM_OK);
    tandem_mutator *m = tandem_attach_thread();
    BENCH_CHECK(m != NULL);

    long check = item_check(m, top_down_tree(m, max_depth + 1));
    BENCH_CHECK(tandem_push_root(m, top_down_tree(m, max_depth)) == TANDEM_OK);

    job jobs[64];
    pthread_t tids[64];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){MIN_DEPTH + 2 * t, 2 * threads, 0};
    }
    /* The main thread waits in native code while the workers run: it holds up no pause. */
    BENCH_CHECK(tandem_enter_native(m) == TANDEM_OK);
    for (int t = 0; t < threads; t++) {
        BENCH_CHECK(pthread_create(&tids[t], NULL, worker, &jobs[t]) == 0);
    }
    for (int t = 0; t < threads; t++) {
        BENCH_CHECK(pthread_join(tids[t], NULL) == 0);
        check += jobs[t].check;
    }
    BENCH_CHECK(tandem_leave_native(m) == TANDEM_OK);
    node *long_lived = tandem_pop_root(m);
    check += item_check(m, long_lived);
    double wall = bench_now() - t0;

    tandem_stats s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    BENCH_CHECK(tandem_get_stats(&s) == TANDEM_OK);
    printf("{\"wall_s\":%.6f,\"check\":%ld,\"gcs\":%llu,\"cycles\":%llu,"
           "\"pause_max_ns\":%llu,\"longest_wait_ns\":%llu,\"heap_peak\":%llu}\n",
           wall, check, (unsigned long long)s.gcs, (unsigned long long)s.cycles,
           (unsigned long long)s.pause_max_ns, (unsigned long long)s.longest_wait_ns,
           (unsigned long long)s.heap_peak);
    BENCH_CHECK(tandem_detach_thread(m) == TANDEM_OK);
    BENCH_CHECK(tandem_shutdown() == TANDEM_OK);
    return 0;
}
