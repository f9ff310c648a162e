/*
 * faults.c — a collector that fails must end as an error the host sees, never as a hang.
 * A type's trace callback hands the collector a NULL slot; the collection that traces it
 * fails, and from then on: tandem_collect returns TANDEM_ERR_INTERNAL with the message,
 * a second thread blocked in the collection wakes with the same error, a poll reports it,
 * and allocation returns NULL after calling the OOM handler. Usage: faults stw|concurrent
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"

static tandem_type_id pair_type; /* header, two references */
static tandem_type_id bad_type;  /* header, one word; its tracer is broken */
static atomic_int oom_calls;

static void bad_trace(void *obj, tandem_visit_fn visit, void *ctx) {
    (void)obj;
    visit(NULL, ctx); /* the VM bug under test: not a slot */
}

static void on_oom(size_t size, void *data) {
    (void)size;
    (void)data;
    atomic_fetch_add(&oom_calls, 1);
}

static void register_types(void) {
    static const size_t pair_refs[] = {8, 16};
    tandem_type_info t;
    memset(&t, 0, sizeof t);
    t.size = sizeof t;
    t.fixed_size = 24;
    t.ref_offsets = pair_refs;
    t.n_ref_offsets = 2;
    CHECK_OK(tandem_register_type(&t, &pair_type));
    memset(&t, 0, sizeof t);
    t.size = sizeof t;
    t.fixed_size = 16;
    t.trace = bad_trace;
    CHECK_OK(tandem_register_type(&t, &bad_type));
}

static atomic_int other_ready;
static tandem_result other_result;

/* A second thread that allocates and polls until the runtime reports an error. */
static void *other_thread(void *p) {
    (void)p;
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    atomic_store(&other_ready, 1);
    for (;;) {
        tandem_result r = tandem_safepoint(m);
        if (r != TANDEM_OK) {
            other_result = r;
            break;
        }
        if (tandem_alloc(m, pair_type, 0) == NULL) {
            other_result = tandem_last_error_code();
            break;
        }
    }
    CHECK_OK(tandem_detach_thread(m));
    return NULL;
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    tandem_options o = check_options();
    o.threads = 2;
    o.heap_max = 32u << 20;
    o.mode = argv[1];
    CHECK_OK(tandem_init(&o));
    register_types();
    CHECK_OK(tandem_set_oom_handler(on_oom, NULL));
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);

    pthread_t t;
    CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0);
    while (!atomic_load(&other_ready)) {
        CHECK_OK(tandem_safepoint(m));
    }

    /* A pair referring to the broken object, so a GC worker traces it. */
    void *bad = tandem_alloc(m, bad_type, 0);
    CHECK(bad != NULL);
    CHECK_OK(tandem_push_root(m, bad));
    void *pair = tandem_alloc(m, pair_type, 0);
    CHECK(pair != NULL);
    tandem_write_ref(m, pair, (void **)((char *)pair + 8), tandem_root_slot(m, 0)[0]);
    tandem_root_slot(m, 0)[0] = pair;

    CHECK_FAILS(tandem_collect(m), TANDEM_ERR_INTERNAL, "invalid slot");
    CHECK_FAILS(tandem_collect(m), TANDEM_ERR_INTERNAL, "invalid slot");
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(other_result == TANDEM_ERR_INTERNAL);

    /* Allocation fails like out of memory: NULL, after the handler. */
    void *p = NULL;
    for (int i = 0; i < 1000000; i++) {
        p = tandem_alloc(m, pair_type, 0);
        if (p == NULL) {
            break;
        }
    }
    CHECK(p == NULL);
    CHECK(tandem_last_error_code() == TANDEM_ERR_INTERNAL);
    CHECK_ERROR_MENTIONS("invalid slot");
    CHECK(atomic_load(&oom_calls) >= 1);

    CHECK_OK(tandem_detach_thread(m));
    CHECK_OK(tandem_shutdown());
    printf("faults %s: all checks passed\n", argv[1]);
    return 0;
}
