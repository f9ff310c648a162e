/*
 * store_audit.c — with TANDEM_VERIFY the STORE barrier bit stays on between cycles, so every
 * tandem_write_ref reaches the collector, which audits it (argv[1]: "stw" or "concurrent").
 *
 * Proves: the bit is on from attach and again after a collection; stores into null and
 * non-null fields pass the audit; a store through a slot that is not a reference field, a
 * store of a pointer to memory outside the heap, a store into memory outside the heap and a
 * store with a NULL holder each count one verification error (and the program goes on; the
 * last one is also rejected with an error code, but its store is made, as without
 * verification); a collection afterwards finds nothing else wrong.
 */
#include "node.h"

static uint64_t verify_errors(void) {
    tandem_stats s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    CHECK_OK(tandem_get_stats(&s));
    return s.verify_errors;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "concurrent";
    start_node_heap(mode);
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    CHECK(m->barriers & TANDEM_BARRIER_STORE);

    /* Roots, from the top: a at depth 0, b at depth 1. */
    node *b = new_node(m, 2, NULL);
    CHECK_OK(tandem_push_root(m, b));
    node *a = new_node(m, 1, NULL);
    CHECK_OK(tandem_push_root(m, a));
    b = *tandem_root_slot(m, 1);

    /* Good stores: into a null field, over a non-null one, and a null value. */
    tandem_write_ref(m, a, &a->next, b);
    tandem_write_ref(m, a, &a->next, a);
    tandem_write_ref(m, a, &a->next, NULL);
    CHECK(verify_errors() == 0);

    /* A slot that is a data field, not a reference. */
    tandem_write_ref(m, a, (void **)&a->value, b);
    CHECK(verify_errors() == 1);
    a->value = 1;

    /* A value outside the heap, repaired at once (no safepoint between). */
    static node outside;
    tandem_write_ref(m, a, &a->next, &outside);
    CHECK(verify_errors() == 2);
    tandem_write_ref(m, a, &a->next, b);
    CHECK(verify_errors() == 2);

    /* A holder outside the heap. */
    tandem_write_ref(m, &outside, &outside.next, b);
    CHECK(verify_errors() == 3);

    /* A NULL holder: the slow path rejects the call (TANDEM_ERR_INVALID_ARGUMENT) but,
     * as the inline path would have without verification, makes the store; the rejection
     * counts as one more error. */
    tandem_write_ref(m, a, &a->next, NULL);
    tandem_write_ref(m, NULL, &a->next, b);
    CHECK(tandem_last_error_code() == TANDEM_ERR_INVALID_ARGUMENT);
    CHECK(tandem_read_ref(m, a, &a->next) == b);
    CHECK(verify_errors() == 4);

    CHECK_OK(tandem_collect(m));
    CHECK(m->barriers == TANDEM_BARRIER_STORE); /* the resting barriers, after a cycle */
    a = *tandem_root_slot(m, 0);
    b = *tandem_root_slot(m, 1);
    CHECK(tandem_read_ref(m, a, &a->next) == b && b->value == 2 && a->value == 1);
    CHECK(verify_errors() == 4);

    tandem_pop_root(m);
    tandem_pop_root(m);
    CHECK_OK(tandem_detach_thread(m));
    CHECK_OK(tandem_shutdown());
    printf("store_audit %s: all checks passed\n", mode);
    return 0;
}
