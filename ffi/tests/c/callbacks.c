/*
 * callbacks.c — VM callbacks that call back into Tandem, and what other threads see while
 * callbacks change, through tandem.h alone:
 *   - a trace function, the root callback, the verify hook and tandem_walk_roots' callback
 *     that call Tandem (walk the roots, dump the heap, attach, collect, step, detach) get
 *     TANDEM_ERR_STATE naming the callback, and the collection they are part of ends
 *     (each of these calls used to wait for ever on the stop it ran in);
 *   - calls that only read (tandem_sizeof, tandem_get_stats) work from them;
 *   - once tandem_set_gc_hook(NULL) returns, no call of the old hook begins: the only one
 *     that may still start is the one another thread had begun (it had found the hook), and
 *     that thread's other due calls never reach the old hook;
 *   - tandem_get_stats never shows more cycles than pauses while collections run.
 *
 * Usage: callbacks stw|concurrent
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "node.h"

/* The calls a callback made, by what it called, and their results. */
typedef struct calls {
    int n;
    tandem_result walk, dump, step, attach_code, detach;
    int attach_null;
    char error[160];
} calls;

static void ignore_slot(void **slot, void *data) {
    (void)slot;
    (void)data;
}

static tandem_mutator *main_m;

/* Makes the forbidden calls once and records what they returned. */
static void call_back(calls *c, int with_mutator) {
    if (c->n++ > 0) {
        return;
    }
    c->walk = tandem_walk_roots(ignore_slot, NULL);
    snprintf(c->error, sizeof c->error, "%s", tandem_last_error());
    int devnull = open("/dev/null", O_WRONLY);
    c->dump = tandem_dump_heap(devnull);
    close(devnull);
    tandem_mutator *other = tandem_attach_thread();
    c->attach_null = other == NULL;
    c->attach_code = tandem_last_error_code();
    if (with_mutator) {
        int phase;
        c->step = tandem_collect_step(main_m, &phase);
        c->detach = tandem_detach_thread(main_m);
    }
}

static void check_refused(const calls *c, const char *what, int with_mutator) {
    CHECK(c->n > 0);
    CHECK(c->walk == TANDEM_ERR_STATE);
    CHECK(strstr(c->error, what) != NULL);
    CHECK(c->dump == TANDEM_ERR_STATE);
    CHECK(c->attach_null && c->attach_code == TANDEM_ERR_STATE);
    if (with_mutator) {
        CHECK(c->step == TANDEM_ERR_STATE);
        CHECK(c->detach == TANDEM_ERR_STATE);
    }
}

static calls by_tracer, by_root_callback, by_verify_hook, by_walk;

typedef struct traced {
    uint64_t header;
    void *ref;
} traced;

static void trace_traced(void *obj, tandem_visit_fn visit, void *ctx) {
    call_back(&by_tracer, 0);
    /* Reading is allowed: a tracer may size its object. */
    CHECK(tandem_sizeof(obj) == sizeof(traced));
    visit(&((traced *)obj)->ref, ctx);
}

static void root_callback(tandem_visit_fn visit, void *ctx, void *data) {
    (void)visit;
    (void)ctx;
    (void)data;
    call_back(&by_root_callback, 0);
    tandem_stats s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    CHECK_OK(tandem_get_stats(&s));
}

static int verify_hook(void *obj, void *data) {
    (void)obj;
    (void)data;
    call_back(&by_verify_hook, 0);
    return 0;
}

static void walk_callback(void **slot, void *data) {
    (void)slot;
    (void)data;
    call_back(&by_walk, 1);
}

static void callbacks_inside_the_collector_cannot_call_tandem(tandem_mutator *m) {
    tandem_type_info ti;
    memset(&ti, 0, sizeof ti);
    ti.size = sizeof ti;
    ti.fixed_size = sizeof(traced);
    ti.trace = trace_traced;
    ti.name = "traced";
    tandem_type_id traced_type;
    CHECK_OK(tandem_register_type(&ti, &traced_type));
    traced *t = tandem_alloc(m, traced_type, 0);
    CHECK(t != NULL);
    CHECK_OK(tandem_push_root(m, t));
    CHECK_OK(tandem_set_root_callback(root_callback, NULL));
    CHECK_OK(tandem_set_verify_hook(verify_hook, NULL));
    CHECK_OK(tandem_collect(m));
    CHECK_OK(tandem_collect(m));
    CHECK_OK(tandem_set_root_callback(NULL, NULL));
    CHECK_OK(tandem_set_verify_hook(NULL, NULL));
    check_refused(&by_tracer, "trace function", 0);
    check_refused(&by_root_callback, "root callback", 0);
    check_refused(&by_verify_hook, "verify hook", 0);

    CHECK_OK(tandem_walk_roots(walk_callback, NULL));
    check_refused(&by_walk, "root walk's callback", 1);
    /* The refused detach left the thread attached and running. */
    CHECK(new_node(m, 1, NULL) != NULL);
    CHECK(tandem_pop_root(m) != NULL);
}

/* ---- The GC hook replaced while another thread runs it ---- */

static atomic_int hook_cleared, late_calls, hook_calls, poller_stop, poller_loops;

static void slow_hook(const tandem_gc_event *e, void *data) {
    (void)e;
    (void)data;
    if (atomic_load(&hook_cleared)) {
        atomic_fetch_add(&late_calls, 1);
    }
    atomic_fetch_add(&hook_calls, 1);
    /* Long enough that a clear often finds a call in progress. */
    struct timespec ts = {0, 200 * 1000};
    nanosleep(&ts, NULL);
}

static void *poller(void *arg) {
    (void)arg;
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    while (!atomic_load(&poller_stop)) {
        CHECK(new_node(m, 2, NULL) != NULL);
        CHECK_OK(tandem_safepoint(m));
        atomic_fetch_add(&poller_loops, 1);
    }
    CHECK_OK(tandem_detach_thread(m));
    return NULL;
}

static void a_cleared_gc_hook_is_never_called_again(tandem_mutator *m) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, poller, NULL) == 0);
    int most_late = 0;
    for (int round = 0; round < 40; round++) {
        atomic_store(&hook_cleared, 0);
        atomic_store(&late_calls, 0);
        CHECK_OK(tandem_set_gc_hook(slow_hook, NULL));
        /* A cycle's events: the poller runs the hook for them (or this thread does). */
        CHECK_OK(tandem_collect(m));
        struct timespec ts = {0, (round % 4) * 100 * 1000};
        nanosleep(&ts, NULL);
        CHECK_OK(tandem_set_gc_hook(NULL, NULL));
        atomic_store(&hook_cleared, 1);
        /* The poller's calls in progress end within its next two loops. */
        int loops = atomic_load(&poller_loops);
        while (atomic_load(&poller_loops) < loops + 2) {
            CHECK_OK(tandem_safepoint(m));
        }
        int late = atomic_load(&late_calls);
        CHECK(late <= 1); /* the poller's one call that had found the hook */
        most_late = late > most_late ? late : most_late;
        /* A cycle with no hook: its events reach nobody. */
        CHECK_OK(tandem_collect(m));
        CHECK_OK(tandem_safepoint(m));
        loops = atomic_load(&poller_loops);
        while (atomic_load(&poller_loops) < loops + 2) {
            CHECK_OK(tandem_safepoint(m));
        }
        CHECK(atomic_load(&late_calls) == late);
    }
    atomic_store(&poller_stop, 1);
    CHECK_OK(tandem_enter_native(m));
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_OK(tandem_leave_native(m));
    printf("gc hook: %d calls, at most %d begun after it was cleared in a round\n",
           atomic_load(&hook_calls), most_late);
    CHECK(atomic_load(&hook_calls) > 0);
}

/* ---- Statistics read while collections run ---- */

static atomic_int reader_stop;

static void *stats_reader(void *arg) {
    long *bad = arg;
    while (!atomic_load(&reader_stop)) {
        tandem_stats s;
        memset(&s, 0, sizeof s);
        s.size = sizeof s;
        CHECK_OK(tandem_get_stats(&s));
        if (s.cycles > s.gcs) {
            (*bad)++;
        }
    }
    return NULL;
}

static void statistics_never_show_more_cycles_than_pauses(tandem_mutator *m) {
    long bad = 0;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, stats_reader, &bad) == 0);
    for (int i = 0; i < 200; i++) {
        CHECK_OK(tandem_collect(m));
    }
    atomic_store(&reader_stop, 1);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(bad == 0);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "concurrent";
    start_node_heap(mode);
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    main_m = m;
    callbacks_inside_the_collector_cannot_call_tandem(m);
    a_cleared_gc_hook_is_never_called_again(m);
    statistics_never_show_more_cycles_than_pauses(m);
    CHECK_OK(tandem_detach_thread(m));
    CHECK_OK(tandem_shutdown());
    printf("callbacks %s: all checks passed\n", mode);
    return 0;
}
