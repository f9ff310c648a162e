/*
 * binary_trees_tandem.c — binary-trees from the Computer Language Benchmarks Game, written
 * against tandem.h only, as a VM's compiled code would use it: children are stored through
 * the write barrier, and the check walk polls the safepoint at every node. Trees are built
 * bottom-up as the published programs build them (both children, then the node), or with
 * `top-down` each node before its children (as an interpreter that allocates an object
 * and then fills its fields does).
 *
 * Usage: binary_trees_tandem MAX_DEPTH THREADS [bottom-up|top-down]
 * Prints one JSON line: wall seconds, the check sum and the collector's statistics.
 * Options come from TANDEM_* variables (the bench sets only TANDEM_MODE and TANDEM_HEAP_MAX).
 *
 * Rooting: a node held in a C local across an allocation or a poll is reachable from the
 * shadow stack. The check walk keeps the path from the tree's root to the node it visits
 * on the shadow stack and reloads nodes from there after each poll: another thread's
 * allocation may start a collection at any of the walk's polls, and collections move
 * objects.
 */
#include "bench_tandem.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct node {
    uint64_t header;
    void *left;
    void *right;
} node;

#define MIN_DEPTH BENCH_MIN_DEPTH

static tandem_type_id node_type;
static int max_depth;

static int top_down;

/* A complete tree of `depth`, the node allocated before its children; unrooted on return. */
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

/* A complete tree of `depth`, the children allocated before the node; unrooted on return. */
static node *bottom_up_tree(tandem_mutator *m, int depth) {
    if (depth == 0) {
        node *n = tandem_alloc(m, node_type, 0);
        BENCH_CHECK(n != NULL);
        return n;
    }
    BENCH_CHECK(tandem_push_root(m, bottom_up_tree(m, depth - 1)) == TANDEM_OK);
    BENCH_CHECK(tandem_push_root(m, bottom_up_tree(m, depth - 1)) == TANDEM_OK);
    node *n = tandem_alloc(m, node_type, 0);
    BENCH_CHECK(n != NULL);
    node *right = tandem_pop_root(m);
    node *left = tandem_pop_root(m);
    tandem_write_ref(m, n, &n->left, left);
    tandem_write_ref(m, n, &n->right, right);
    return n;
}

static node *tree(tandem_mutator *m, int depth) {
    return top_down ? top_down_tree(m, depth) : bottom_up_tree(m, depth);
}

/* Counts the nodes of the tree in root slot 0, polling at every node. */
static long item_check(tandem_mutator *m) {
    BENCH_CHECK(tandem_safepoint(m) == TANDEM_OK);
    node *n = *tandem_root_slot(m, 0);
    node *left = tandem_read_ref(m, n, &n->left);
    if (left == NULL) {
        return 1;
    }
    BENCH_CHECK(tandem_push_root(m, left) == TANDEM_OK);
    long check = 1 + item_check(m);
    tandem_pop_root(m);
    n = *tandem_root_slot(m, 0); /* it may have moved */
    BENCH_CHECK(tandem_push_root(m, tandem_read_ref(m, n, &n->right)) == TANDEM_OK);
    check += item_check(m);
    tandem_pop_root(m);
    return check;
}

/* Checks the tree `t`, rooted for the walk. */
static long rooted_check(tandem_mutator *m, node *t) {
    BENCH_CHECK(tandem_push_root(m, t) == TANDEM_OK);
    long check = item_check(m);
    tandem_pop_root(m);
    return check;
}

/* One depth of the main loop: `iterations` trees built and checked. */
static long depth_check(tandem_mutator *m, int depth) {
    long iterations = 1L << (max_depth - depth + MIN_DEPTH);
    long check = 0;
    for (long i = 0; i < iterations; i++) {
        check += rooted_check(m, tree(m, depth));
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
    bench_trees_args args = bench_trees_parse(argc, argv);
    max_depth = args.max_depth;
    top_down = args.top_down;
    int threads = args.threads;
    double t0 = bench_now();
    bench_tandem_init();
    static const size_t refs[] = {offsetof(node, left), offsetof(node, right)};
    node_type = bench_tandem_type("node", sizeof(node), refs, 2, 0, 0);
    tandem_mutator *m = tandem_attach_thread();
    BENCH_CHECK(m != NULL);

    long check = rooted_check(m, tree(m, max_depth + 1));
    BENCH_CHECK(tandem_push_root(m, tree(m, max_depth)) == TANDEM_OK);

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
    check += item_check(m);
    tandem_pop_root(m);
    double wall = bench_now() - t0;

    bench_tandem_finish(m, wall, check);
    return 0;
}
