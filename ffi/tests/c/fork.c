/*
 * fork.c — a process whose threads allocate busily forks, three times (argv[1]: "stw" or
 * "concurrent"). Tandem's pthread_atfork handlers make the child's heap usable.
 *
 * Proves: the child, where only the forking thread exists, allocates well past its heap
 * trigger, collects, attaches a new thread, and finds its data intact, with heap
 * verification clean and without hanging (an alarm ends a hung child), and shuts Tandem
 * down; the parent and its threads carry on. Meanwhile another thread, which never calls
 * Tandem, forks too (the lock its fork handler held stayed held in the child, whose
 * shutdown then hung), and another steps cycles and waits for them.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "node.h"

#define LIST 1000
#define WORKERS 2

static void *list; /* a global root */
static int stop;

static void check_list(tandem_mutator *m) {
    size_t i = LIST;
    for (node *n = list; n != NULL; n = tandem_read_ref(m, n, &n->next)) {
        CHECK(n->value == --i);
    }
    CHECK(i == 0);
}

static void churn(tandem_mutator *m, long n) {
    for (long i = 0; i < n; i++) {
        CHECK(new_node(m, 0, NULL) != NULL);
        CHECK_OK(tandem_safepoint(m));
    }
}

static void *worker(void *arg) {
    (void)arg;
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) churn(m, 1000);
    CHECK_OK(tandem_detach_thread(m));
    return NULL;
}

/* Forks too, at the same time as the main thread (its children leave at once), so that the
 * main thread's forks often come while this thread's fork handlers run. */
static void *other_forker(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) _exit(0);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid);
    }
    return NULL;
}

/* Steps cycles and waits for them: both take the collector's request and step locks in a
 * native region, which the stop before a fork does not hold off (a child forked while this
 * thread held one inherited it locked, and its first tandem_collect waited for ever). */
static void *stepper(void *arg) {
    (void)arg;
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    for (int i = 0; !__atomic_load_n(&stop, __ATOMIC_RELAXED); i++) {
        int phase;
        CHECK_OK(tandem_collect_step(m, &phase));
        if (i % 3 == 0) CHECK_OK(tandem_collect_ex(m, TANDEM_COLLECT_FINISH));
        churn(m, 100);
    }
    CHECK_OK(tandem_detach_thread(m));
    return NULL;
}

static void *child_thread(void *arg) {
    (void)arg;
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    churn(m, 100000);
    check_list(m);
    CHECK_OK(tandem_detach_thread(m));
    return NULL;
}

static void child(tandem_mutator *m) {
    alarm(120); /* a hang ends the child with SIGALRM, which the parent reports */
    tandem_stats s = {.size = sizeof s};
    CHECK_OK(tandem_get_stats(&s));
    uint64_t cycles = s.cycles, cpu = s.collector_cpu_ns;
    churn(m, 400000);
    CHECK_OK(tandem_collect(m));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, child_thread, NULL) == 0);
    CHECK_OK(tandem_enter_native(m));
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_OK(tandem_leave_native(m));
    CHECK_OK(tandem_collect(m));
    check_list(m);
    CHECK_OK(tandem_get_stats(&s));
    CHECK(s.cycles >= cycles + 2);
    CHECK(s.verify_errors == 0);
    /* The child's collector threads are new, their clocks start at 0: the figure adds
     * their time to the parent's, it never goes back. */
    CHECK(s.collector_cpu_ns >= cpu);
    CHECK_OK(tandem_detach_thread(m));
    CHECK_OK(tandem_shutdown());
    fflush(stdout);
    _exit(0);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "concurrent";
    start_node_heap(mode);
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    CHECK_OK(tandem_add_root(&list));
    for (uint64_t i = 0; i < LIST; i++) list = new_node(m, i, list);

    pthread_t w[WORKERS], forker, steps;
    for (int i = 0; i < WORKERS; i++) CHECK(pthread_create(&w[i], NULL, worker, NULL) == 0);
    CHECK(pthread_create(&forker, NULL, other_forker, NULL) == 0);
    CHECK(pthread_create(&steps, NULL, stepper, NULL) == 0);
    for (int round = 0; round < 3; round++) {
        churn(m, 20000);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) child(m);
        int status = 0;
        CHECK_OK(tandem_enter_native(m));
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK_OK(tandem_leave_native(m));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "fork round %d: the child ended with status %#x (signal %d)\n", round,
                    status, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
            return 1;
        }
        check_list(m);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    CHECK_OK(tandem_enter_native(m));
    for (int i = 0; i < WORKERS; i++) CHECK(pthread_join(w[i], NULL) == 0);
    CHECK(pthread_join(forker, NULL) == 0);
    CHECK(pthread_join(steps, NULL) == 0);
    CHECK_OK(tandem_leave_native(m));
    tandem_stats s = {.size = sizeof s};
    CHECK_OK(tandem_get_stats(&s));
    CHECK(s.verify_errors == 0);
    printf("fork %s: 3 children collected; parent cycles %llu\n", mode,
           (unsigned long long)s.cycles);
    CHECK_OK(tandem_detach_thread(m));
    CHECK_OK(tandem_remove_root(&list));
    CHECK_OK(tandem_shutdown());
    printf("fork %s: all checks passed\n", mode);
    return 0;
}
