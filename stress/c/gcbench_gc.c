/*
 * gcbench_gc.c — the same GCBench as gcbench_tandem.c, written against gc.h as libgc's
 * documentation recommends: GC_INIT first, GC_MALLOC for nodes, GC_MALLOC_ATOMIC for the
 * pointer-free array. This is Boehm's own benchmark in its own collector's idiom.
 *
 * Usage: gcbench_gc [STRETCH_DEPTH]   (as gcbench_tandem)
 * Prints one JSON line: wall seconds, a check sum and libgc's collection count and heap.
 */
#include "bench.h"

#include <gc.h>

typedef struct node {
    struct node *left;
    struct node *right;
    int i, j;
} node;

enum { ARRAY_SIZE = 500000, MIN_TREE_DEPTH = 4 };
static int stretch_depth = 18, long_lived_depth = 16, max_depth = 16;

static long tree_size(int d) { return (1L << (d + 1)) - 1; }
static long num_iters(int d) { return 2 * tree_size(stretch_depth) / tree_size(d); }

static node *new_node(void) {
    node *n = GC_MALLOC(sizeof(node));
    BENCH_CHECK(n != NULL);
    return n;
}

static void populate(int depth, node *n) {
    if (depth <= 0) {
        return;
    }
    depth--;
    n->left = new_node();
    n->right = new_node();
    populate(depth, n->left);
    populate(depth, n->right);
}

static node *make_tree(int depth) {
    if (depth <= 0) {
        return new_node();
    }
    node *l = make_tree(depth - 1);
    node *r = make_tree(depth - 1);
    node *n = new_node();
    n->left = l;
    n->right = r;
    return n;
}

static long count(const node *n) {
    return n == NULL ? 0 : 1 + count(n->left) + count(n->right);
}

static void time_construction(int depth) {
    long iters = num_iters(depth);
    for (long i = 0; i < iters; i++) {
        node *volatile t = new_node();
        populate(depth, t);
    }
    for (long i = 0; i < iters; i++) {
        node *volatile t = make_tree(depth);
        (void)t;
    }
}

int main(int argc, char **argv) {
    stretch_depth = (int)bench_arg(argc, argv, 1, 18);
    BENCH_CHECK(stretch_depth >= 8 && stretch_depth <= 26);
    long_lived_depth = max_depth = stretch_depth - 2;
    double t0 = bench_now();
    GC_INIT();
    (void)make_tree(stretch_depth);
    node *volatile long_lived = new_node();
    populate(long_lived_depth, long_lived);
    double *volatile array = GC_MALLOC_ATOMIC(sizeof(double) * ARRAY_SIZE);
    BENCH_CHECK(array != NULL);
    for (int i = 0; i < ARRAY_SIZE / 2; i++) {
        array[i] = 1.0 / i;
    }
    for (int d = MIN_TREE_DEPTH; d <= max_depth; d += 2) {
        time_construction(d);
    }
    BENCH_CHECK(array[1000] == 1.0 / 1000);
    long check = count(long_lived);
    BENCH_CHECK(check == tree_size(long_lived_depth));
    double wall = bench_now() - t0;
    printf("{\"wall_s\":%.6f,\"check\":%ld,\"gcs\":%lu,\"cycles\":%lu,\"heap_peak\":%lu}\n", wall,
           check, (unsigned long)GC_get_gc_no(), (unsigned long)GC_get_gc_no(),
           (unsigned long)GC_get_heap_size());
    return 0;
}
