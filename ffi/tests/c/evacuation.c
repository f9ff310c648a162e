/*
 * evacuation.c — four threads read and write a shared graph through the inline barriers
 * while the collector moves its objects (argv[1]: "stw" or "concurrent"; then "all": the
 * torture setting TANDEM_EVACUATE_ALL over dense blocks; "gen": TANDEM_GENERATIONAL, so
 * stores into old cells and into the table go through the REMEMBER barrier).
 *
 * A table of SLOTS references (a large array: it never moves) is shared by every thread
 * through a global root. Each slot holds a cell that records its own identity hash and a
 * checksum of its contents, and links to another cell. Threads repeatedly pick slots,
 * check the cell found there (and the cell it links to) through tandem_read_ref, replace
 * some cells, relink others with tandem_write_ref, pin a few around a safepoint, and
 * allocate nine garbage cells for every kept one, so that every block is left sparse and
 * the collector evacuates it.
 *
 * Proves: after every move each cell keeps its contents and its identity hash, a pinned
 * cell keeps its address across safepoints, objects did move, and heap verification finds
 * nothing wrong.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>

#include "check.h"

typedef struct cell {
    uint64_t header;
    void *link;     /* another cell, or NULL */
    uint64_t value; /* any number */
    uint64_t check; /* mix(value) */
    uint64_t hash;  /* the cell's identity hash, taken when it was made */
} cell;

typedef struct table {
    uint64_t header;
    size_t length;
    void *items[];
} table;

#define THREADS 4
#define SLOTS 4096
#define STEPS 120000
/* Garbage cells allocated per kept one: 9 leaves every block sparse; with argv[2] "all"
 * (TANDEM_EVACUATE_ALL and TANDEM_TORTURE, the torture settings) 1, and dense blocks
 * move too. */
static int garbage_per_cell = 9;
/* argv "gen": TANDEM_GENERATIONAL, and the run must include nursery cycles. */
static int generational;

static tandem_type_id cell_type, table_type;
static void *shared; /* the table, a global root */

static uint64_t mix(uint64_t v) {
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdULL;
    v ^= v >> 33;
    return v;
}

static uint64_t next_random(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The cell in slot i, read through the load barrier. */
static cell *slot(tandem_mutator *m, size_t i) {
    table *t = shared;
    return tandem_read_ref(m, t, &t->items[i]);
}

/* Checks a cell found in the table (and, one step, what it links to). */
static void check_cell(tandem_mutator *m, cell *c, int follow) {
    CHECK(c != NULL);
    CHECK(c->check == mix(c->value));
    CHECK(tandem_identity_hash(m, c) == c->hash);
    if (follow) {
        cell *l = tandem_read_ref(m, c, &c->link);
        if (l != NULL) check_cell(m, l, 0);
    }
}

/* A new cell holding value, hashed; may collect. */
static cell *make_cell(tandem_mutator *m, uint64_t value) {
    cell *c = tandem_alloc(m, cell_type, 0);
    CHECK(c != NULL);
    c->value = value;
    c->check = mix(value);
    c->hash = tandem_identity_hash(m, c);
    return c;
}

static void *run(void *arg) {
    uint64_t seed = 0x9E3779B97F4A7C15ULL * (uint64_t)((intptr_t)arg + 1);
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    for (long step = 0; step < STEPS; step++) {
        size_t i = (size_t)(next_random(&seed) % SLOTS);
        size_t j = (size_t)(next_random(&seed) % SLOTS);
        check_cell(m, slot(m, i), 1);
        switch (next_random(&seed) % 8) {
        case 0: { /* replace slot i with a new cell linking to slot j's */
            for (int g = 0; g < garbage_per_cell; g++) CHECK(tandem_alloc(m, cell_type, 0));
            cell *c = make_cell(m, next_random(&seed));
            /* Initialising stores after the last allocation need no barrier. */
            table *t = shared;
            c->link = tandem_read_ref(m, t, &t->items[j]);
            tandem_write_ref(m, t, &t->items[i], c);
            break;
        }
        case 1: { /* relink slot i's cell to slot j's */
            cell *c = slot(m, i);
            tandem_write_ref(m, c, &c->link, slot(m, j));
            break;
        }
        case 2: { /* a pinned (and rooted) cell keeps its address across a safepoint */
            cell *c = slot(m, i);
            CHECK_OK(tandem_pin(m, c));
            CHECK(tandem_is_pinned(m, c));
            /* A pin does not keep the cell alive: another thread may replace slot i. */
            CHECK_OK(tandem_push_root(m, c));
            CHECK_OK(tandem_safepoint(m));
            for (int g = 0; g < garbage_per_cell; g++) CHECK(tandem_alloc(m, cell_type, 0));
            CHECK(*tandem_root_slot(m, 0) == c); /* not moved */
            check_cell(m, c, 1); /* still at its address: freed memory would be poisoned */
            CHECK(tandem_pop_root(m) == c);
            CHECK_OK(tandem_unpin(m, c));
            break;
        }
        default:
            CHECK_OK(tandem_safepoint(m));
            break;
        }
    }
    CHECK_OK(tandem_detach_thread(m));
    return NULL;
}

int main(int argc, char **argv) {
    static const size_t cell_refs[] = {offsetof(cell, link)};
    static const size_t item_ref[] = {0};
    tandem_options opts;
    memset(&opts, 0, sizeof opts);
    opts.size = sizeof opts;
    opts.mode = argc > 1 ? argv[1] : NULL;
    for (int a = 2; a < argc; a++) {
        if (strcmp(argv[a], "all") == 0) {
            CHECK(setenv("TANDEM_EVACUATE_ALL", "1", 1) == 0);
            CHECK(setenv("TANDEM_TORTURE", "3000", 0) == 0); /* and cycles often */
            garbage_per_cell = 1;
        }
        if (strcmp(argv[a], "gen") == 0) {
            CHECK(setenv("TANDEM_GENERATIONAL", "1", 1) == 0);
            generational = 1;
        }
    }
    opts.verify = 1;
    opts.threads = 2;
    opts.heap_min = 1 << 20; /* collect often: the live set is small */
    CHECK_OK(tandem_init(&opts));

    tandem_type_info t;
    memset(&t, 0, sizeof t);
    t.size = sizeof t;
    t.fixed_size = sizeof(cell);
    t.ref_offsets = cell_refs;
    t.n_ref_offsets = 1;
    CHECK_OK(tandem_register_type(&t, &cell_type));
    memset(&t, 0, sizeof t);
    t.size = sizeof t;
    t.fixed_size = offsetof(table, items);
    t.item_size = sizeof(void *);
    t.length_offset = offsetof(table, length);
    t.item_ref_offsets = item_ref;
    t.n_item_ref_offsets = 1;
    CHECK_OK(tandem_register_type(&t, &table_type));

    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    CHECK_OK(tandem_add_root(&shared));
    shared = tandem_alloc(m, table_type, SLOTS);
    CHECK(shared != NULL);
    for (size_t i = 0; i < SLOTS; i++) {
        for (int g = 0; g < garbage_per_cell; g++) CHECK(tandem_alloc(m, cell_type, 0));
        cell *c = make_cell(m, i);
        table *tb = shared;
        tandem_write_ref(m, tb, &tb->items[i], c);
    }
    CHECK_OK(tandem_enter_native(m));

    pthread_t threads[THREADS];
    for (intptr_t i = 0; i < THREADS; i++) {
        CHECK(pthread_create(&threads[i], NULL, run, (void *)i) == 0);
    }
    for (int i = 0; i < THREADS; i++) CHECK(pthread_join(threads[i], NULL) == 0);

    CHECK_OK(tandem_leave_native(m));
    CHECK_OK(tandem_collect(m));
    for (size_t i = 0; i < SLOTS; i++) check_cell(m, slot(m, i), 1);
    tandem_stats s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    CHECK_OK(tandem_get_stats(&s));
    printf("gcs %llu (nursery cycles %llu), evacuated %llu objects (%llu KiB), verify errors "
           "%llu\n",
           (unsigned long long)s.gcs, (unsigned long long)s.nursery_cycles,
           (unsigned long long)s.evacuated_objects, (unsigned long long)(s.evacuated_bytes >> 10),
           (unsigned long long)s.verify_errors);
    CHECK(s.verify_errors == 0);
    CHECK(!generational || s.nursery_cycles > 0);
    CHECK(s.evacuated_objects > 0);
    CHECK_OK(tandem_detach_thread(m));
    CHECK_OK(tandem_remove_root(&shared));
    CHECK_OK(tandem_shutdown());
    return 0;
}
