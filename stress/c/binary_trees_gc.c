/*
 * binary_trees_gc.c — the same binary-trees as binary_trees_tandem.c, written against gc.h
 * as libgc's documentation recommends for speed: GC_THREADS (thread-local allocation and
 * GC_pthread_create through gc.h's redirection), GC_INIT first, GC_MALLOC for nodes.
 * Trees are built in the same order as the Tandem client's (bottom-up by default).
 *
 * Usage: binary_trees_gc MAX_DEPTH THREADS [bottom-up|top-down]
 * Prints one JSON line: wall seconds, the check sum and libgc's collection count and heap.
 */
#define GC_THREADS 1
#include "bench.h"

#include <gc.h>
#include <pthread.h>

typedef struct node {
    struct node *left;
    struct node *right;
} node;

#define MIN_DEPTH BENCH_MIN_DEPTH

static int max_depth;

static int top_down;

static node *tree(int depth) {
    if (top_down) {
        node *n = GC_MALLOC(sizeof(node));
        BENCH_CHECK(n != NULL);
        if (depth > 0) {
            n->left = tree(depth - 1);
            n->right = tree(depth - 1);
        }
        return n;
    }
    node *l = depth > 0 ? tree(depth - 1) : NULL;
    node *r = depth > 0 ? tree(depth - 1) : NULL;
    node *n = GC_MALLOC(sizeof(node));
    BENCH_CHECK(n != NULL);
    n->left = l;
    n->right = r;
    return n;
}

static long item_check(const node *n) {
    if (n->left == NULL) {
        return 1;
    }
    return 1 + item_check(n->left) + item_check(n->right);
}

static long depth_check(int depth) {
    long iterations = 1L << (max_depth - depth + MIN_DEPTH);
    long check = 0;
    for (long i = 0; i < iterations; i++) {
        check += item_check(tree(depth));
    }
    return check;
}

typedef struct job {
    int first;
    int stride;
    long check;
} job;

static void *worker(void *arg) {
    job *j = arg;
    for (int d = j->first; d <= max_depth; d += j->stride) {
        j->check += depth_check(d);
    }
    return NULL;
}

int main(int argc, char **argv) {
    bench_trees_args args = bench_trees_parse(argc, argv);
    max_depth = args.max_depth;
    top_down = args.top_down;
    int threads = args.threads;
    double t0 = bench_now();
    GC_INIT();
    long check = item_check(tree(max_depth + 1));
    node *volatile long_lived = tree(max_depth);

    job jobs[64];
    pthread_t tids[64];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){MIN_DEPTH + 2 * t, 2 * threads, 0};
        BENCH_CHECK(pthread_create(&tids[t], NULL, worker, &jobs[t]) == 0);
    }
    for (int t = 0; t < threads; t++) {
        BENCH_CHECK(pthread_join(tids[t], NULL) == 0);
        check += jobs[t].check;
    }
    check += item_check(long_lived);
    double wall = bench_now() - t0;
    printf("{\"wall_s\":%.6f,\"check\":%ld,\"gcs\":%lu,\"cycles\":%lu,\"heap_peak\":%lu}\n", wall,
           check, (unsigned long)GC_get_gc_no(), (unsigned long)GC_get_gc_no(),
           (unsigned long)GC_get_heap_size());
    return 0;
}
