/*
 * binary_trees.c — four threads run the binary-trees benchmark on one small heap through
 * the inline fast paths of tandem.h (allocation, shadow stack, barriers, safepoint polls).
 *
 * Proves: with several collections triggered by allocation while four threads mutate, every
 * tree has exactly the nodes it was built with and every node its payload, heap
 * verification finds nothing, and each thread attaches and detaches cleanly.
 *
 * Rooting discipline (any allocation may collect, and a later collector may move objects):
 * an object held in a C local across an allocation is pushed on the shadow stack first
 * and read back from its slot afterwards. Safepoints are polled only where no unrooted
 * object pointer is live.
 *
 * Usage: binary_trees [mode [max_depth]]   (mode: stw or concurrent, default the library's;
 * max_depth default 14)
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>

#include "check.h"

#define THREADS 4

/* A node: Tandem's header, two children (node *; reference fields are declared void * so
 * that their addresses are the void ** the barriers take) and the depth it was built at. */
typedef struct node {
    uint64_t header;
    void *left;
    void *right;
    int64_t depth;
} node;

static tandem_type_id node_type;
static int max_depth = 14;

static node *new_node(tandem_mutator *m, int64_t depth) {
    node *n = tandem_alloc(m, node_type, 0);
    CHECK(n != NULL);
    CHECK(n->left == NULL && n->right == NULL); /* Fresh objects are zeroed. */
    n->depth = depth;                           /* Not a reference: no barrier. */
    return n;
}

/* Builds a complete tree of the given depth; the result is unrooted (the caller roots it). */
static node *bottom_up_tree(tandem_mutator *m, int depth) {
    node *n = new_node(m, depth);
    if (depth > 0) {
        CHECK_OK(tandem_push_root(m, n));
        node *left = bottom_up_tree(m, depth - 1);  /* may collect: n is rooted */
        CHECK_OK(tandem_push_root(m, left));
        node *right = bottom_up_tree(m, depth - 1); /* may collect: n and left are rooted */
        /* Nothing allocates from here on, so plain locals are safe until the return. */
        left = *tandem_root_slot(m, 0);
        n = *tandem_root_slot(m, 1);
        tandem_write_ref(m, n, &n->left, left);
        tandem_write_ref(m, n, &n->right, right);
        CHECK(tandem_pop_root(m) == left);
        CHECK(tandem_pop_root(m) == n);
    }
    return n;
}

/* Counts the nodes of a tree and checks each one's shape and payload. Does not allocate
 * or poll, so the unrooted interior pointers stay valid. */
static long item_check(tandem_mutator *m, node *n, int64_t depth) {
    CHECK(n != NULL);
    CHECK(n->depth == depth);
    CHECK((n->header >> 32) == node_type);
    node *left = tandem_read_ref(m, n, &n->left);
    node *right = tandem_read_ref(m, n, &n->right);
    if (depth == 0) {
        CHECK(left == NULL && right == NULL);
        return 1;
    }
    return 1 + item_check(m, left, depth - 1) + item_check(m, right, depth - 1);
}

static long tree_size(int depth) {
    return (1L << (depth + 1)) - 1;
}

static void *run(void *arg) {
    long id = (long)(intptr_t)arg;
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    size_t base_depth = tandem_root_depth(m);

    /* A stretch tree, built and dropped. */
    node *stretch = bottom_up_tree(m, max_depth + 1);
    CHECK(item_check(m, stretch, max_depth + 1) == tree_size(max_depth + 1));
    CHECK_OK(tandem_safepoint(m));

    /* A long-lived tree, rooted for the whole run. */
    CHECK_OK(tandem_push_root(m, bottom_up_tree(m, max_depth)));

    for (int d = 4; d <= max_depth; d += 2) {
        long iterations = 1L << (max_depth - d + 4);
        long check = 0;
        for (long i = 0; i < iterations; i++) {
            node *t = bottom_up_tree(m, d);
            check += item_check(m, t, d);
            CHECK_OK(tandem_safepoint(m)); /* t is dead here */
        }
        CHECK(check == iterations * tree_size(d));
        printf("thread %ld: %ld trees of depth %d, check %ld\n", id, iterations, d, check);
    }

    /* The long-lived tree survived every collection; re-read it from its slot. */
    node *long_lived = *tandem_root_slot(m, 0);
    CHECK(item_check(m, long_lived, max_depth) == tree_size(max_depth));
    CHECK(tandem_pop_root(m) == long_lived);
    CHECK(tandem_root_depth(m) == base_depth);
    CHECK_OK(tandem_detach_thread(m));
    return NULL;
}

int main(int argc, char **argv) {
    tandem_options opts = check_options();
    if (argc > 1) {
        opts.mode = argv[1];
    }
    if (argc > 2) {
        max_depth = atoi(argv[2]);
        CHECK(max_depth >= 4 && max_depth <= 20);
    }
    opts.heap_max = 64u << 20; /* small, so that allocation triggers collections */
    opts.heap_min = 16u << 20;
    opts.threads = 2;
    opts.verify = 1;
    CHECK_OK(tandem_init(&opts));

    static const size_t node_refs[] = {offsetof(node, left), offsetof(node, right)};
    tandem_type_info info;
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    info.fixed_size = sizeof(node);
    info.ref_offsets = node_refs;
    info.n_ref_offsets = 2;
    info.name = "node";
    CHECK_OK(tandem_register_type(&info, &node_type));
    CHECK(node_type != 0);

    pthread_t threads[THREADS];
    for (long i = 0; i < THREADS; i++) {
        CHECK(pthread_create(&threads[i], NULL, run, (void *)(intptr_t)i) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
    }

    tandem_stats s = check_stats();
    printf("gcs %llu, allocated %llu MiB, max pause %llu us, live %llu KiB, verify errors "
           "%llu\n",
           (unsigned long long)s.gcs, (unsigned long long)(s.bytes_allocated >> 20),
           (unsigned long long)(s.pause_max_ns / 1000), (unsigned long long)(s.heap_live >> 10),
           (unsigned long long)s.verify_errors);
    CHECK(s.gcs > 0);
    CHECK(s.verify_errors == 0);
    CHECK(s.out_of_memory == 0);
    CHECK(s.bytes_allocated > (uint64_t)opts.heap_max);
    CHECK(s.cycles > 0 && s.heap_live > 0);

    /* The pause log agrees with the totals and carries each pause's kind and timing. */
    static tandem_pause log[4096];
    size_t n = 0;
    CHECK_OK(tandem_get_pauses(log, 4096, &n));
    CHECK(n > 0 && n <= 4096 && (n == s.gcs || n == 4096));
    uint64_t max_ns = 0;
    size_t init_marks = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK(log[i].kind <= TANDEM_PAUSE_DEGENERATE && log[i].cause <= TANDEM_CAUSE_EXPLICIT);
        CHECK(log[i].duration_ns >= log[i].ttsp_ns);
        CHECK(i == 0 || log[i].start_ns >= log[i - 1].start_ns);
        max_ns = log[i].duration_ns > max_ns ? log[i].duration_ns : max_ns;
        init_marks += log[i].kind == TANDEM_PAUSE_INIT_MARK;
    }
    CHECK(max_ns <= s.pause_max_ns);
    CHECK(s.longest_wait_ns >= s.pause_max_ns && s.longest_wait_ns >= s.stall_max_ns);
    CHECK(s.longest_wait_ns >= s.mutator_stop_max_ns);
    tandem_options eff = check_options();
    CHECK_OK(tandem_get_options(&eff));
    CHECK((init_marks > 0) == (strcmp(eff.mode, "concurrent") == 0));
    CHECK_FAILS(tandem_get_pauses(NULL, 4, &n), TANDEM_ERR_INVALID_ARGUMENT, "NULL");
    CHECK_OK(tandem_shutdown());
    return 0;
}
