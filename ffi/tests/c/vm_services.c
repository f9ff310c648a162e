/*
 * vm_services.c — what a Python VM asks of tandem.h beyond allocation (argv[1]: "stw" or
 * "concurrent"): weak references, finalizer queues with a trigger that runs VM code,
 * destructors that free malloc'd memory, id, sizeof, shrink, memory pressure, collection
 * levels and gc.disable()/gc.enable().
 *
 * Then THREADS threads keep weak caches under concurrent collections: each holds strong
 * references to some objects and weak references to more, and reads every weakref back
 * again and again. Proves: a weakref's target is either NULL (only when nothing else held
 * it) or an intact object; a weakref to a strongly held object is never cleared; and
 * heap verification finds nothing wrong.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>

#include "check.h"
#include "node.h"

typedef struct buffer_owner {
    uint64_t header;
    char *raw; /* malloc'd, freed by the destructor */
} buffer_owner;

typedef struct array {
    uint64_t header;
    size_t length;
    void *items[];
} array;

static tandem_type_id owner_type, array_type;
static const char *o_mode;
static _Thread_local tandem_mutator *self;
static tandem_finalizer_queue queue;
static uint64_t finalized_values[16];
static int n_finalized, trigger_runs;
static int destructed;

/* The finalizer queue's trigger: VM code on a mutator thread; it may allocate. */
static void on_dead(void *data) {
    CHECK(data == &queue);
    trigger_runs++;
    void *o;
    while ((o = tandem_next_dead(self, queue)) != NULL) {
        CHECK(n_finalized < 16);
        finalized_values[n_finalized++] = ((node *)o)->value;
        CHECK(new_node(self, 99, NULL) != NULL);
    }
}

static void free_raw(void *obj) {
    buffer_owner *b = obj;
    free(b->raw);
    __atomic_fetch_add(&destructed, 1, __ATOMIC_RELAXED);
}

/* A destructor that breaks the rules: it allocates inline with the main thread's mutator.
 * Under TANDEM_VERIFY (start_node_heap turns it on) the layout table sends every allocation
 * out of line, so the call fails with a message instead of corrupting the heap. */
static tandem_mutator *main_mutator;
static int greedy_runs, greedy_caught;

static int refused_here(void) {
    return tandem_last_error_code() == TANDEM_ERR_STATE && strstr(tandem_last_error(), "destructor") != NULL;
}

/* It also tries calls that need no mutator, and to attach its thread (a collector thread:
 * in stw mode that attach waited on its own stop). Each must fail the same way. */
static void greedy(void *obj) {
    (void)obj;
    __atomic_fetch_add(&greedy_runs, 1, __ATOMIC_RELAXED);
    int caught = tandem_alloc(main_mutator, node_type, 0) == NULL && refused_here();
    tandem_stats s = {.size = sizeof s};
    caught &= tandem_get_stats(&s) == TANDEM_ERR_STATE && refused_here();
    caught &= tandem_attach_thread() == NULL && refused_here();
    if (caught) __atomic_fetch_add(&greedy_caught, 1, __ATOMIC_RELAXED);
}

static void collect_full(tandem_mutator *m) {
    CHECK_OK(tandem_collect_ex(m, TANDEM_COLLECT_FULL));
}

static void weakrefs_and_finalizers(tandem_mutator *m) {
    /* a -> b -> c, a and c finalizable; w: a weakref to a. */
    void *c = new_node(m, 3, NULL);
    CHECK_OK(tandem_register_finalizer(m, queue, c));
    void *b = new_node(m, 2, c);
    void *a = new_node(m, 1, b);
    CHECK_OK(tandem_register_finalizer(m, queue, a));
    void *w = tandem_weakref_new(m, a);
    CHECK(w != NULL);
    CHECK(((node *)tandem_weakref_get(m, w))->value == 1);
    CHECK_OK(tandem_push_root(m, w));
    void *keep = new_node(m, 7, NULL);
    CHECK_OK(tandem_push_root(m, keep));
    void *wk = tandem_weakref_new(m, keep);
    CHECK_OK(tandem_push_root(m, wk));

    collect_full(m);
    CHECK(trigger_runs == 1);
    CHECK(n_finalized == 1 && finalized_values[0] == 1); /* a first: it reaches c */
    CHECK(tandem_weakref_get(m, *tandem_root_slot(m, 2)) == NULL);
    CHECK(tandem_weakref_get(m, *tandem_root_slot(m, 0)) == *tandem_root_slot(m, 1));
    CHECK(tandem_weakref_get(m, *tandem_root_slot(m, 1)) == NULL); /* not a weakref */
    CHECK(tandem_last_error_code() == TANDEM_ERR_INVALID_ARGUMENT);
    collect_full(m);
    CHECK(n_finalized == 2 && finalized_values[1] == 3); /* then c */
    collect_full(m);
    CHECK(n_finalized == 2); /* once each */
    tandem_pop_root(m);
    tandem_pop_root(m);
    tandem_pop_root(m);
}

/* A trigger runs at the start of an allocation's slow path, before the thread holds the
 * object it allocates: run after it, with that object kept in a root slot, a collection the
 * trigger made handed the object to the verify hook before its allocator had stored
 * anything in it (an outside VM's checksum hook failed under TANDEM_VERIFY). Every node
 * reachable here holds a non-zero value once new_node returns. */
static tandem_finalizer_queue collecting_queue;
static int collecting_runs;
static long unstored;
static void collect_on_dead(void *data) {
    CHECK(data == &collecting_queue);
    collecting_runs++;
    while (tandem_next_dead(self, collecting_queue) != NULL) {
    }
    CHECK_OK(tandem_collect(self));
}

static int check_stored(void *obj, void *data) {
    CHECK(data == &unstored);
    uint32_t type = (uint32_t)(*(uint64_t *)obj >> 32);
    if (type == node_type && ((node *)obj)->value == 0) __atomic_fetch_add(&unstored, 1, __ATOMIC_RELAXED);
    return 0;
}

static void triggers_before_allocation(tandem_mutator *m) {
    CHECK_OK(tandem_finalizer_queue_new(collect_on_dead, &collecting_queue, &collecting_queue));
    CHECK_OK(tandem_set_verify_hook(check_stored, &unstored));
    for (int i = 1; i <= 20; i++) {
        CHECK_OK(tandem_register_finalizer(m, collecting_queue, new_node(m, 5, NULL)));
        /* The node dies; a cycle that starts now makes the trigger due for the next slow
         * path (tandem_collect runs no triggers itself). */
        CHECK_OK(tandem_collect(m));
        int before = collecting_runs;
        CHECK_OK(tandem_push_root(m, new_node(m, (uint64_t)i, NULL)));
        CHECK(collecting_runs == before + 1); /* every allocation is out of line here */
        CHECK(((node *)tandem_pop_root(m))->value == (uint64_t)i);
    }
    CHECK_OK(tandem_set_verify_hook(NULL, NULL));
    CHECK(__atomic_load_n(&unstored, __ATOMIC_RELAXED) == 0);
}

/* Inside a native region an allocation fails, and runs no trigger: the VM code a trigger
 * runs must not touch the heap there. */
static void no_triggers_in_a_native_region(tandem_mutator *m) {
    int before = collecting_runs;
    CHECK_OK(tandem_register_finalizer(m, collecting_queue, new_node(m, 5, NULL)));
    CHECK_OK(tandem_collect(m)); /* the node dies: the trigger is due */
    CHECK_OK(tandem_enter_native(m));
    CHECK(tandem_alloc_slow(m, node_type, 0) == NULL);
    CHECK(tandem_last_error_code() == TANDEM_ERR_STATE);
    CHECK(collecting_runs == before);
    CHECK_OK(tandem_leave_native(m));
    CHECK(new_node(m, 6, NULL) != NULL);
    CHECK(collecting_runs == before + 1);
}

static void destructors(tandem_mutator *m) {
    for (int i = 0; i < 100; i++) {
        buffer_owner *o = tandem_alloc(m, owner_type, 0);
        CHECK(o != NULL);
        o->raw = malloc(1000);
        CHECK(o->raw != NULL);
        CHECK_OK(tandem_add_memory_pressure(m, o, 1000));
        if (i == 0) {
            CHECK_OK(tandem_push_root(m, o));
        }
    }
    collect_full(m);
    collect_full(m);
    CHECK(__atomic_load_n(&destructed, __ATOMIC_RELAXED) == 99);
    tandem_stats s = {.size = sizeof s};
    CHECK_OK(tandem_get_stats(&s));
    CHECK(s.memory_pressure == 1000);
    CHECK(s.destructed == 99);
    buffer_owner *o = tandem_pop_root(m);
    char *raw = o->raw;
    CHECK_OK(tandem_ignore_finalizer(m, o));
    collect_full(m);
    CHECK(__atomic_load_n(&destructed, __ATOMIC_RELAXED) == 99);
    free(raw);
}

static void destructor_allocating(tandem_mutator *m, tandem_type_id greedy_type) {
    CHECK(tandem_type_layouts[node_type].fixed_size == 0); /* verify: nothing inline */
    main_mutator = m;
    for (int i = 0; i < 10; i++) {
        CHECK(tandem_alloc(m, greedy_type, 0) != NULL);
    }
    collect_full(m);
    collect_full(m);
    CHECK(__atomic_load_n(&greedy_runs, __ATOMIC_RELAXED) == 10);
    CHECK(__atomic_load_n(&greedy_caught, __ATOMIC_RELAXED) == 10);
}

static void identity_and_sizes(tandem_mutator *m) {
    void *n = new_node(m, 5, NULL);
    CHECK(tandem_sizeof(n) == sizeof(node));
    uint64_t id = tandem_id(m, n);
    CHECK(id == (uint64_t)(uintptr_t)n);
    CHECK(tandem_can_move(n) == 0);
    CHECK_OK(tandem_push_root(m, n));
    collect_full(m);
    CHECK(tandem_id(m, *tandem_root_slot(m, 0)) == id);
    tandem_pop_root(m);

    array *a = tandem_alloc(m, array_type, 100);
    CHECK(a != NULL && tandem_sizeof(a) == 16 + 8 * 100);
    CHECK(tandem_shrink(m, a, 200) == 0);
    CHECK(tandem_shrink(m, a, 10) == 1);
    CHECK(a->length == 10 && tandem_sizeof(a) == 16 + 8 * 10);
    CHECK(tandem_shrink(m, n, 0) == 0);
    CHECK(tandem_sizeof(NULL) == 0);
    CHECK(tandem_last_error_code() == TANDEM_ERR_INVALID_ARGUMENT);
}

static int referents_seen;
static void count_referent(void *r, void *data) {
    CHECK(data == &referents_seen && ((node *)r)->value == 41);
    referents_seen++;
}

/* A callback that collects (Python's gc.get_referents builds a list, which may start a
 * collection) halfway: the object and its referents move meanwhile, and every referent it
 * is handed afterwards must still be the right one. */
#define REFERENTS 32
static int referent_index, referents_wrong, referents_moved;
static void collecting_referent(void *r, void *data) {
    tandem_mutator *m = data;
    if (((node *)r)->value != (uint64_t)(1000 + referent_index)) referents_wrong++;
    if (++referent_index == REFERENTS / 4) {
        void *before = *tandem_root_slot(m, 0);
        for (int i = 0; i < 20 && *tandem_root_slot(m, 0) == before; i++) {
            CHECK_OK(tandem_collect(m));
            for (int j = 0; j < 20000; j++) CHECK(new_node(m, 0, NULL) != NULL);
        }
        referents_moved = *tandem_root_slot(m, 0) != before;
    }
}

static void referents_of_a_moving_object(tandem_mutator *m) {
    array *a = tandem_alloc(m, array_type, REFERENTS);
    CHECK(a != NULL);
    CHECK_OK(tandem_push_root(m, a));
    for (int i = 0; i < REFERENTS; i++) {
        node *n = new_node(m, (uint64_t)(1000 + i), NULL);
        a = *tandem_root_slot(m, 0);
        tandem_write_ref(m, a, &a->items[i], n);
        for (int j = 0; j < 200; j++) CHECK(new_node(m, 0, NULL) != NULL); /* sparse blocks */
    }
    CHECK_OK(tandem_referents(m, *tandem_root_slot(m, 0), collecting_referent, m));
    CHECK(referent_index == REFERENTS);
    CHECK(referents_wrong == 0);
    /* TANDEM_EVACUATE_ALL (main) moves them: the check above saw them move under the
     * callback, unless the environment turned evacuation off. */
    CHECK(referents_moved || getenv("TANDEM_EVACUATION") != NULL);
    CHECK(tandem_pop_root(m) != NULL);
}

/* A callback that shrinks the object it walks: the cut-off slots are not walked. */
static int shrink_calls;
static void shrinking_referent(void *r, void *data) {
    (void)r;
    if (shrink_calls++ == 0) CHECK(tandem_shrink(data, *tandem_root_slot(data, 0), 4) == 1);
}

static void referents_of_a_shrinking_object(tandem_mutator *m) {
    array *a = tandem_alloc(m, array_type, 16);
    CHECK(a != NULL);
    CHECK_OK(tandem_push_root(m, a));
    for (int i = 0; i < 16; i++) {
        node *n = new_node(m, (uint64_t)i, NULL);
        a = *tandem_root_slot(m, 0);
        tandem_write_ref(m, a, &a->items[i], n);
    }
    CHECK_OK(tandem_referents(m, *tandem_root_slot(m, 0), shrinking_referent, m));
    CHECK(shrink_calls == 4);
    CHECK(tandem_pop_root(m) != NULL);
}

static long verified;
/* The VM's verify hook: every reachable object is of a type this VM registered. */
static int check_type(void *obj, void *data) {
    CHECK(data == &verified);
    __atomic_fetch_add(&verified, 1, __ATOMIC_RELAXED);
    tandem_type_id type;
    CHECK_OK(tandem_type_of(obj, &type)); /* a read: allowed inside the hook */
    CHECK(type == (uint32_t)(*(uint64_t *)obj >> 32));
    return type == node_type || type == owner_type || type == array_type ? 0 : 1;
}

static int cycle_events, pause_events;
static void on_gc(const tandem_gc_event *e, void *data) {
    CHECK(data == &cycle_events);
    if (e->kind == TANDEM_EVENT_CYCLE) {
        cycle_events++;
        CHECK(e->cycle > 0);
    } else {
        CHECK(e->kind == TANDEM_EVENT_PAUSE && e->pause_kind <= TANDEM_PAUSE_DEGENERATE);
        pause_events++;
    }
    CHECK(new_node(self, 1, NULL) != NULL); /* VM code may allocate */
}

static int roots_seen;
static void count_root(void **slot, void *data) {
    CHECK(data == &roots_seen && slot != NULL);
    roots_seen++;
}

static void introspection(tandem_mutator *m) {
    CHECK_OK(tandem_set_gc_hook(on_gc, &cycle_events));
    collect_full(m);
    CHECK_OK(tandem_safepoint(m));
    CHECK(cycle_events >= 1 && pause_events >= 1);
    CHECK_OK(tandem_set_gc_hook(NULL, NULL));
    referents_of_a_moving_object(m);
    referents_of_a_shrinking_object(m);
    void *n = new_node(m, 42, new_node(m, 41, NULL));
    CHECK_OK(tandem_referents(m, n, count_referent, &referents_seen));
    CHECK(referents_seen == 1);
    CHECK_RESULT(tandem_referents(m, n, NULL, NULL), TANDEM_ERR_INVALID_ARGUMENT);
    CHECK_OK(tandem_push_root(m, n));
    CHECK_OK(tandem_walk_roots(count_root, &roots_seen));
    CHECK(roots_seen >= 1);
    /* A dump: the header line, then at least the two rooted nodes, n first to be found. */
    FILE *f = tmpfile();
    CHECK(f != NULL);
    CHECK_OK(tandem_dump_heap(fileno(f)));
    rewind(f);
    char line[256];
    int lines = 0, found = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lines++;
        unsigned long long addr = 0, size = 0;
        unsigned type = 0;
        if (line[0] != '#' && sscanf(line, "%llx %u %llu", &addr, &type, &size) == 3 &&
            addr == (unsigned long long)(uintptr_t)n) {
            CHECK(type == node_type && size == sizeof(node));
            found = 1;
        }
    }
    fclose(f);
    CHECK(lines >= 3 && found);
    CHECK_RESULT(tandem_dump_heap(-1), TANDEM_ERR_INVALID_ARGUMENT);
    CHECK_OK(tandem_set_verify_hook(check_type, &verified));
    collect_full(m);
    CHECK(__atomic_load_n(&verified, __ATOMIC_RELAXED) >= 2);
    CHECK_OK(tandem_set_verify_hook(NULL, NULL));
    tandem_type_id t;
    CHECK_RESULT(tandem_type_of(NULL, &t), TANDEM_ERR_INVALID_ARGUMENT);
    CHECK_RESULT(tandem_type_of(n, NULL), TANDEM_ERR_INVALID_ARGUMENT);
    tandem_pop_root(m);
}

static void collection_control(tandem_mutator *m) {
    tandem_stats s = {.size = sizeof s};
    CHECK_OK(tandem_get_stats(&s));
    uint64_t cycles = s.cycles;
    CHECK_OK(tandem_gc_disable());
    for (int i = 0; i < 200000; i++) {
        CHECK(new_node(m, 0, NULL) != NULL);
    }
    CHECK_OK(tandem_get_stats(&s));
    CHECK(s.cycles == cycles);
    CHECK_OK(tandem_collect_ex(m, TANDEM_COLLECT_START));
    CHECK_OK(tandem_collect_ex(m, TANDEM_COLLECT_FINISH));
    CHECK_OK(tandem_get_stats(&s));
    CHECK(s.cycles > cycles);
    CHECK_OK(tandem_gc_enable());
    CHECK_RESULT(tandem_collect_ex(m, 7), TANDEM_ERR_INVALID_ARGUMENT);
    int phase = -1, steps = 0;
    do {
        CHECK_OK(tandem_collect_step(m, &phase));
        steps++;
        CHECK(new_node(m, 0, NULL) != NULL); /* the program runs between steps */
    } while (phase != TANDEM_PHASE_IDLE && steps < 10);
    /* Three steps from idle; fewer when a cycle (the trigger's, torture's) was already
     * past a boundary when stepping began. A stw collection is one step. */
    CHECK(phase == TANDEM_PHASE_IDLE && steps <= (strcmp(o_mode, "stw") == 0 ? 1 : 3));
    CHECK_RESULT(tandem_collect_step(m, NULL), TANDEM_ERR_INVALID_ARGUMENT);
    CHECK_RESULT(tandem_set_heap_max(1), TANDEM_ERR_CONFIG);
    CHECK_OK(tandem_set_heap_max(48u << 20));
}

/* ---- Weak caches in several threads ------------------------------------------------- */

#define THREADS 4
#define CACHE 512
#define ROUNDS 60

static void *cache_thread(void *arg) {
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    self = m;
    /* Root 0: the weakrefs; root 1: the strongly held targets (every third). */
    array *weak = tandem_alloc(m, array_type, CACHE);
    CHECK(weak != NULL);
    CHECK_OK(tandem_push_root(m, weak));
    array *strong = tandem_alloc(m, array_type, CACHE);
    CHECK(strong != NULL);
    CHECK_OK(tandem_push_root(m, strong));
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t i = 0; i < CACHE; i++) {
            uint64_t v = seed * 1000003u + (uint64_t)round * CACHE + i;
            void *n = new_node(m, v, NULL);
            void *w = tandem_weakref_new(m, n);
            CHECK(w != NULL);
            array *ws = *tandem_root_slot(m, 1);
            tandem_write_ref(m, ws, &ws->items[i], w);
            array *ss = *tandem_root_slot(m, 0);
            tandem_write_ref(m, ss, &ss->items[i], NULL);
            if (i % 3 == 0) {
                /* hold the target, not the weakref: re-read the target through it */
                void *t = tandem_weakref_get(m, w);
                CHECK(t != NULL && ((node *)t)->value == v);
                tandem_write_ref(m, ss, &ss->items[i], t);
            }
            for (int k = 0; k < 4; k++) {
                CHECK(new_node(m, 0, NULL) != NULL); /* garbage */
            }
        }
        for (size_t i = 0; i < CACHE; i++) {
            array *ws = *tandem_root_slot(m, 1);
            array *ss = *tandem_root_slot(m, 0);
            void *w = tandem_read_ref(m, ws, &ws->items[i]);
            void *t = tandem_weakref_get(m, w);
            void *held = tandem_read_ref(m, ss, &ss->items[i]);
            uint64_t v = seed * 1000003u + (uint64_t)round * CACHE + i;
            if (held != NULL) {
                CHECK(t == held);
            }
            if (t != NULL) {
                CHECK(((node *)t)->value == v);
            }
            CHECK_OK(tandem_safepoint(m));
        }
    }
    CHECK_OK(tandem_detach_thread(m));
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "concurrent";
    o_mode = mode;
    /* A cycle every 1000 polls or allocation slow paths of each thread, unless the
     * environment says otherwise: many cycles see the weak caches mid-update. */
    CHECK(setenv("TANDEM_TORTURE", "1000", 0) == 0);
    /* Objects move whenever they can, under every service. */
    CHECK(setenv("TANDEM_EVACUATE_ALL", "1", 0) == 0);
    start_node_heap(mode);
    tandem_type_info oi = {.size = sizeof oi, .fixed_size = sizeof(buffer_owner), .destructor = free_raw, .name = "owner"};
    CHECK_OK(tandem_register_type(&oi, &owner_type));
    tandem_type_info gi = {.size = sizeof gi, .fixed_size = 16, .destructor = greedy, .name = "greedy"};
    tandem_type_id greedy_type;
    CHECK_OK(tandem_register_type(&gi, &greedy_type));
    size_t item_refs[] = {0};
    tandem_type_info ai = {.size = sizeof ai, .fixed_size = 16, .item_size = 8, .length_offset = 8, .item_ref_offsets = item_refs, .n_item_ref_offsets = 1, .name = "array"};
    CHECK_OK(tandem_register_type(&ai, &array_type));
    CHECK_OK(tandem_finalizer_queue_new(on_dead, &queue, &queue));

    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    self = m;
    weakrefs_and_finalizers(m);
    triggers_before_allocation(m);
    no_triggers_in_a_native_region(m);
    destructors(m);
    destructor_allocating(m, greedy_type);
    identity_and_sizes(m);
    introspection(m);
    collection_control(m);
    CHECK_OK(tandem_detach_thread(m));

    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++) {
        CHECK(pthread_create(&t[i], NULL, cache_thread, (void *)(i + 1)) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(t[i], NULL) == 0);
    }
    tandem_stats s = {.size = sizeof s};
    CHECK_OK(tandem_get_stats(&s));
    printf("vm_services %s: cycles %llu, weakrefs cleared %llu, finalized %llu, destructed %llu, verify errors %llu\n",
           mode, (unsigned long long)s.cycles, (unsigned long long)s.weakrefs_cleared,
           (unsigned long long)s.finalized, (unsigned long long)s.destructed,
           (unsigned long long)s.verify_errors);
    CHECK(s.verify_errors == 0);
    CHECK(s.weakrefs_cleared > 0);
    CHECK_OK(tandem_shutdown());
    printf("vm_services %s: all checks passed\n", mode);
    return 0;
}
