/*
 * hook_nesting.c — a GC hook that collects and polls (argv[1]: "stw" or "concurrent").
 * The events of the collection it runs come due while it runs, where nothing runs
 * re-entrantly, and its poll answers the request that announced them: they must still
 * reach the thread's next poll, not wait for an allocation's slow path (a VM whose loop
 * only polls saw them after 1000 polls and more).
 */
#define _POSIX_C_SOURCE 200809L

#include "check.h"
#include "node.h"

static tandem_mutator *self;
static int events, collected;

static void collecting_hook(const tandem_gc_event *e, void *data) {
    (void)e;
    CHECK(data == &events);
    events++;
    if (!collected) {
        collected = 1;
        CHECK_OK(tandem_collect_ex(self, TANDEM_COLLECT_FULL));
        CHECK_OK(tandem_safepoint(self));
    }
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "concurrent";
    start_node_heap(mode);
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    self = m;
    CHECK_OK(tandem_set_gc_hook(collecting_hook, &events));
    CHECK_OK(tandem_gc_disable()); /* no cycles but the two the test runs */
    CHECK_OK(tandem_collect_ex(m, TANDEM_COLLECT_FULL));
    CHECK(collected == 1);
    int seen = events;
    CHECK_OK(tandem_safepoint(m));
    CHECK(events > seen); /* the nested collection's events, at this poll */
    seen = events;
    for (int i = 0; i < 100; i++) CHECK_OK(tandem_safepoint(m));
    CHECK(events == seen); /* each event once */
    CHECK_OK(tandem_set_gc_hook(NULL, NULL));
    CHECK_OK(tandem_gc_enable());
    CHECK_OK(tandem_detach_thread(m));
    CHECK_OK(tandem_shutdown());
    printf("hook_nesting %s: all checks passed\n", mode);
    return 0;
}
