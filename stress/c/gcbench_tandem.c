/*
 * gcbench_tandem.c — Boehm's GCBench (Ellis, Kovac and Boehm), written against tandem.h
 * only: a stretch tree, a long-lived tree and a 500 000-double array kept live, then for
 * each depth 4, 6, ... 16 as many trees as fit in two stretch trees' worth of nodes, built
 * top-down (Populate: the node first, then its children) and then bottom-up (MakeTree).
 * The array is pointer-free: a type with no reference slots, as GC_MALLOC_ATOMIC is for
 * libgc.
 *
 * Usage: gcbench_tandem [STRETCH_DEPTH]   (18, the published size, by default; the long-lived
 * and largest trees are two levels shallower)
 * Prints one JSON line: wall seconds, a check sum and the collector's statistics.
 */
#include "bench_tandem.h"

#include <stddef.h>
#include <stdint.h>

typedef struct node {
    uint64_t header;
    void *left;
    void *right;
    int32_t i, j;
} node;

typedef struct doubles {
    uint64_t header;
    size_t length;
    double items[];
} doubles;

enum { ARRAY_SIZE = 500000, MIN_TREE_DEPTH = 4 };
static int stretch_depth = 18, long_lived_depth = 16, max_depth = 16;
static tandem_type_id node_type, doubles_type;

static long tree_size(int d) { return (1L << (d + 1)) - 1; }
static long num_iters(int d) { return 2 * tree_size(stretch_depth) / tree_size(d); }

static node *new_node(tandem_mutator *m) {
    node *n = tandem_alloc(m, node_type, 0);
    BENCH_CHECK(n != NULL);
    return n;
}

/* Gives the rooted node at the top of the shadow stack children, `depth` levels down. */
static void populate(tandem_mutator *m, int depth) {
    if (depth <= 0) {
        return;
    }
    depth--;
    node *l = new_node(m);
    node *n = *tandem_root_slot(m, 0);
    tandem_write_ref(m, n, &n->left, l);
    node *r = new_node(m);
    n = *tandem_root_slot(m, 0);
    tandem_write_ref(m, n, &n->right, r);
    BENCH_CHECK(tandem_push_root(m, tandem_read_ref(m, n, &n->left)) == TANDEM_OK);
    populate(m, depth);
    tandem_pop_root(m);
    n = *tandem_root_slot(m, 0);
    BENCH_CHECK(tandem_push_root(m, tandem_read_ref(m, n, &n->right)) == TANDEM_OK);
    populate(m, depth);
    tandem_pop_root(m);
}

/* A tree built bottom-up, unrooted on return. */
static node *make_tree(tandem_mutator *m, int depth) {
    if (depth <= 0) {
        return new_node(m);
    }
    BENCH_CHECK(tandem_push_root(m, make_tree(m, depth - 1)) == TANDEM_OK);
    BENCH_CHECK(tandem_push_root(m, make_tree(m, depth - 1)) == TANDEM_OK);
    node *n = new_node(m);
    node *r = tandem_pop_root(m);
    node *l = tandem_pop_root(m);
    tandem_write_ref(m, n, &n->left, l);
    tandem_write_ref(m, n, &n->right, r);
    return n;
}

static long count(tandem_mutator *m, node *n) {
    if (n == NULL) {
        return 0;
    }
    return 1 + count(m, tandem_read_ref(m, n, &n->left)) +
           count(m, tandem_read_ref(m, n, &n->right));
}

static void time_construction(tandem_mutator *m, int depth) {
    long iters = num_iters(depth);
    for (long i = 0; i < iters; i++) {
        BENCH_CHECK(tandem_push_root(m, new_node(m)) == TANDEM_OK);
        populate(m, depth);
        tandem_pop_root(m);
    }
    for (long i = 0; i < iters; i++) {
        (void)make_tree(m, depth);
    }
}

static void register_types(void) {
    static const size_t refs[] = {offsetof(node, left), offsetof(node, right)};
    node_type = bench_tandem_type("node", sizeof(node), refs, 2, 0, 0);
    doubles_type = bench_tandem_type("double[]", sizeof(doubles), NULL, 0, sizeof(double),
                                     offsetof(doubles, length));
}

int main(int argc, char **argv) {
    stretch_depth = (int)bench_arg(argc, argv, 1, 18);
    BENCH_CHECK(stretch_depth >= 8 && stretch_depth <= 26);
    long_lived_depth = max_depth = stretch_depth - 2;
    double t0 = bench_now();
    bench_tandem_init();
    register_types();
    tandem_mutator *m = tandem_attach_thread();
    BENCH_CHECK(m != NULL);

    (void)make_tree(m, stretch_depth);
    BENCH_CHECK(tandem_push_root(m, new_node(m)) == TANDEM_OK);
    populate(m, long_lived_depth);
    doubles *array = tandem_alloc(m, doubles_type, ARRAY_SIZE);
    BENCH_CHECK(array != NULL);
    for (int i = 0; i < ARRAY_SIZE / 2; i++) {
        array->items[i] = 1.0 / i;
    }
    BENCH_CHECK(tandem_push_root(m, array) == TANDEM_OK);
    for (int d = MIN_TREE_DEPTH; d <= max_depth; d += 2) {
        time_construction(m, d);
    }
    array = tandem_pop_root(m);
    node *long_lived = tandem_pop_root(m);
    BENCH_CHECK(array->items[1000] == 1.0 / 1000);
    long check = count(m, long_lived);
    BENCH_CHECK(check == tree_size(long_lived_depth));
    double wall = bench_now() - t0;

    bench_tandem_finish(m, wall, check);
    return 0;
}
