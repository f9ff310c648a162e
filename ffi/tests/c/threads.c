/*
 * threads.c — threads that end in ways a VM's threads do (argv[1]: "stw" or "concurrent").
 *
 * Proves, with a collecting thread running throughout and an alarm ending a hang:
 *  1. A thread whose exit code (a pthread key destructor, as a VM's thread-state
 *     destructor running a __del__) attaches and allocates, and exits still attached, is
 *     detached: later collections do not wait for it (they waited for ever).
 *  2. A thread auto-detached at exit that attaches again from a later key destructor is
 *     detached again (the attach failed with an internal error and a Rust panic).
 *  3. Threads cancelled (pthread_cancel, deferred) while they loop over collections,
 *     allocations, polls and native regions end cleanly: the process does not abort
 *     (glibc's cancellation unwind, started inside a Tandem call, was caught there, and
 *     glibc aborted with "FATAL: exception not rethrown").
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "node.h"

#define EXIT_ROUNDS 20
#define CANCEL_ROUNDS 30
#define VICTIMS 4

static int stop;
static pthread_key_t attach_at_exit; /* its destructor attaches and allocates */

static void *collector(void *arg) {
    (void)arg;
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        for (int i = 0; i < 2000; i++) CHECK(new_node(m, (uint64_t)i, NULL) != NULL);
        CHECK_OK(tandem_collect_ex(m, TANDEM_COLLECT_START));
        CHECK_OK(tandem_safepoint(m));
    }
    CHECK_OK(tandem_detach_thread(m));
    return NULL;
}

/* Thread-exit code of the VM: attaches (again, in part 2) and allocates, never detaches. */
static void attach_in_exit_code(void *value) {
    (void)value;
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    void *n = new_node(m, 7, NULL);
    CHECK(n != NULL);
    CHECK(((node *)n)->value == 7);
}

static void *exits_attached_from_its_exit_code(void *arg) {
    int attached_before = *(int *)arg;
    if (attached_before) {
        /* Part 2: exits attached; Tandem's own exit step detaches it, then the key's
         * destructor below attaches again. */
        tandem_mutator *m = tandem_attach_thread();
        CHECK(m != NULL);
        CHECK(new_node(m, 1, NULL) != NULL);
    }
    CHECK(pthread_setspecific(attach_at_exit, (void *)1) == 0);
    return NULL;
}

static void threads_attached_in_their_exit_code_are_detached(tandem_mutator *m) {
    for (int part = 0; part < 2; part++) {
        for (int round = 0; round < EXIT_ROUNDS; round++) {
            pthread_t t;
            CHECK(pthread_create(&t, NULL, exits_attached_from_its_exit_code, &part) == 0);
            CHECK_OK(tandem_enter_native(m)); /* blocks: collections must not wait for it */
            CHECK(pthread_join(t, NULL) == 0);
            CHECK_OK(tandem_leave_native(m));
            CHECK_OK(tandem_collect(m)); /* waited for ever for the exited thread */
        }
    }
}

static void *victim(void *arg) {
    int kind = (int)(intptr_t)arg;
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    for (;;) {
        switch (kind) {
        case 0:
            CHECK_OK(tandem_collect(m));
            break;
        case 1:
            CHECK_OK(tandem_collect_ex(m, TANDEM_COLLECT_START));
            break;
        case 2:
            CHECK(new_node(m, 3, NULL) != NULL);
            CHECK_OK(tandem_safepoint(m));
            break;
        default:
            CHECK_OK(tandem_enter_native(m));
            CHECK_OK(tandem_leave_native(m));
            break;
        }
        pthread_testcancel();
    }
    return NULL;
}

static void cancelled_threads_end_cleanly(tandem_mutator *m) {
    for (int round = 0; round < CANCEL_ROUNDS; round++) {
        pthread_t t[VICTIMS];
        for (int i = 0; i < VICTIMS; i++) {
            CHECK(pthread_create(&t[i], NULL, victim, (void *)(intptr_t)((round + i) % 4)) == 0);
        }
        CHECK_OK(tandem_enter_native(m));
        struct timespec pause = {0, 2 * 1000 * 1000};
        nanosleep(&pause, NULL);
        for (int i = 0; i < VICTIMS; i++) CHECK(pthread_cancel(t[i]) == 0);
        for (int i = 0; i < VICTIMS; i++) {
            void *result = NULL;
            CHECK(pthread_join(t[i], &result) == 0);
            CHECK(result == PTHREAD_CANCELED);
        }
        CHECK_OK(tandem_leave_native(m));
        CHECK_OK(tandem_collect(m)); /* the cancelled threads were detached at their exit */
    }
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "concurrent";
    alarm(120); /* a hang fails the test instead of stalling it */
    start_node_heap(mode);
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    /* Created after Tandem's own thread-exit key (the attach above made it), so that in
     * part 2 Tandem's exit step runs first and this destructor attaches afterwards. */
    CHECK(pthread_key_create(&attach_at_exit, attach_in_exit_code) == 0);
    pthread_t busy;
    CHECK(pthread_create(&busy, NULL, collector, NULL) == 0);

    threads_attached_in_their_exit_code_are_detached(m);
    cancelled_threads_end_cleanly(m);

    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    CHECK_OK(tandem_enter_native(m));
    CHECK(pthread_join(busy, NULL) == 0);
    CHECK_OK(tandem_leave_native(m));
    tandem_stats s = check_stats();
    CHECK(s.verify_errors == 0);
    CHECK_OK(tandem_detach_thread(m));
    CHECK_OK(tandem_shutdown());
    printf("threads %s: all checks passed\n", mode);
    return 0;
}
