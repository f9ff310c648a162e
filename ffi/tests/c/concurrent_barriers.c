/*
 * concurrent_barriers.c — the barrier slow paths keep the snapshot while concurrent
 * marking runs (TANDEM_MODE=concurrent, the default).
 *
 * Each round waits until this thread's barrier byte shows TANDEM_BARRIER_WRITE, then moves every
 * reference out of 32 rooted arrays into fresh arrays (allocated black, so the marker never
 * traces them) and clears the old slots. An object moved before the marker scanned its old
 * array is reachable only through a black array: it survives only if the barrier logged
 * the overwritten reference. Rounds rotate through the three barriers: tandem_write_ref
 * per field, tandem_object_barrier per object, tandem_array_copy_refs per range.
 *
 * Proves: after many such rounds every moved object is intact (tag and type), and heap
 * verification finds no reachable object left unmarked.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>

#include "check.h"

typedef struct pair {
    uint64_t header;
    void *a;
    void *b;
    uint64_t tag;
} pair;

typedef struct array {
    uint64_t header;
    size_t length;
    void *items[];
} array;

#define ARRAYS 32
#define SLOTS_PER_ARRAY 2048
#define BALLAST 200000 /* pairs kept live so that marking takes a while */
#define ROUNDS 9

static tandem_type_id pair_type, array_type;

/* Shadow-stack depths from the top. */
enum { D_HOLDER = 0, D_ZEROS, D_BALLAST };

static void register_types(void) {
    static const size_t pair_refs[] = {offsetof(pair, a), offsetof(pair, b)};
    static const size_t item_ref[] = {0};
    tandem_type_info t;
    memset(&t, 0, sizeof t);
    t.size = sizeof t;
    t.fixed_size = sizeof(pair);
    t.ref_offsets = pair_refs;
    t.n_ref_offsets = 2;
    CHECK_OK(tandem_register_type(&t, &pair_type));
    memset(&t, 0, sizeof t);
    t.size = sizeof t;
    t.fixed_size = offsetof(array, items);
    t.item_size = sizeof(void *);
    t.length_offset = offsetof(array, length);
    t.item_ref_offsets = item_ref;
    t.n_item_ref_offsets = 1;
    CHECK_OK(tandem_register_type(&t, &array_type));
}

static array *new_array(tandem_mutator *m, size_t n) {
    array *a = tandem_alloc(m, array_type, n);
    CHECK(a != NULL && a->length == n);
    return a;
}

static pair *new_pair(tandem_mutator *m, uint64_t tag) {
    pair *p = tandem_alloc(m, pair_type, 0);
    CHECK(p != NULL);
    p->tag = tag;
    return p;
}

/* Pushes a list of n pairs. */
static void push_ballast(tandem_mutator *m, size_t n) {
    CHECK_OK(tandem_push_root(m, NULL));
    for (size_t i = 0; i < n; i++) {
        pair *p = new_pair(m, i);
        tandem_write_ref(m, p, &p->a, *tandem_root_slot(m, 0));
        *tandem_root_slot(m, 0) = p;
        if (i % 1024 == 0) CHECK_OK(tandem_safepoint(m));
    }
}

static void check_ballast(tandem_mutator *m, pair *p, size_t n) {
    for (size_t i = n; i-- > 0;) {
        CHECK(p != NULL && (p->header >> 32) == pair_type && p->tag == i);
        p = tandem_read_ref(m, p, &p->a);
    }
    CHECK(p == NULL);
}

/* Pushes the holder: ARRAYS arrays of SLOTS_PER_ARRAY pairs, pair (k, i) tagged
 * k * SLOTS_PER_ARRAY + i. */
static void push_holder(tandem_mutator *m) {
    CHECK_OK(tandem_push_root(m, new_array(m, ARRAYS)));
    for (size_t k = 0; k < ARRAYS; k++) {
        CHECK_OK(tandem_push_root(m, new_array(m, SLOTS_PER_ARRAY)));
        for (size_t i = 0; i < SLOTS_PER_ARRAY; i++) {
            pair *p = new_pair(m, k * SLOTS_PER_ARRAY + i);
            array *a = *tandem_root_slot(m, 0);
            tandem_write_ref(m, a, &a->items[i], p);
        }
        array *a = tandem_pop_root(m);
        array *h = *tandem_root_slot(m, 0);
        tandem_write_ref(m, h, &h->items[k], a);
    }
}

static void check_holder(tandem_mutator *m) {
    array *h = *tandem_root_slot(m, D_HOLDER);
    CHECK((h->header >> 32) == array_type && h->length == ARRAYS);
    for (size_t k = 0; k < ARRAYS; k++) {
        array *a = tandem_read_ref(m, h, &h->items[k]);
        CHECK(a != NULL && (a->header >> 32) == array_type && a->length == SLOTS_PER_ARRAY);
        for (size_t i = 0; i < SLOTS_PER_ARRAY; i++) {
            pair *p = tandem_read_ref(m, a, &a->items[i]);
            CHECK(p != NULL);
            CHECK((p->header >> 32) == pair_type);
            CHECK(p->tag == k * SLOTS_PER_ARRAY + i);
        }
    }
}

/* Allocates garbage and polls until marking is (or is not) running. */
static void wait_for_marking(tandem_mutator *m, int marking) {
    for (long i = 0;; i++) {
        if (((m->barriers & TANDEM_BARRIER_WRITE) != 0) == marking) return;
        CHECK(tandem_alloc(m, pair_type, 0) != NULL);
        CHECK_OK(tandem_safepoint(m));
        CHECK(i < 200L * 1000 * 1000);
    }
}

/* Moves every pair of array k of the holder into a fresh array, with barrier `variant`. */
static void move_array(tandem_mutator *m, size_t k, int variant) {
    array *b = new_array(m, SLOTS_PER_ARRAY); /* may poll: read everything else after */
    array *h = *tandem_root_slot(m, D_HOLDER);
    array *zeros = *tandem_root_slot(m, D_ZEROS);
    array *a = tandem_read_ref(m, h, &h->items[k]);
    switch (variant) {
    case 0: /* field barrier on every store */
        for (size_t i = 0; i < SLOTS_PER_ARRAY; i++) {
            tandem_write_ref(m, b, &b->items[i], tandem_read_ref(m, a, &a->items[i]));
            tandem_write_ref(m, a, &a->items[i], NULL);
        }
        break;
    case 1: /* object barrier once per object, then plain stores until the next poll; the
             * loads still go through the load barrier (rule 3: a raw load while LOAD is on
             * may return an object's old copy, which the cycle then frees) */
        tandem_object_barrier(m, a);
        tandem_object_barrier(m, b);
        for (size_t i = 0; i < SLOTS_PER_ARRAY; i++) {
            b->items[i] = tandem_read_ref(m, a, &a->items[i]);
            a->items[i] = NULL;
        }
        break;
    default: /* range copies: into b, then NULLs over a */
        tandem_array_copy_refs(m, b, b->items, a, a->items, SLOTS_PER_ARRAY);
        tandem_array_copy_refs(m, a, a->items, zeros, zeros->items, SLOTS_PER_ARRAY);
        break;
    }
    tandem_write_ref(m, h, &h->items[k], b);
}

int main(void) {
    tandem_options opts = check_options();
    opts.heap_min = 32u << 20;
    opts.heap_max = 128u << 20;
    opts.threads = 2;
    opts.verify = 1;
    /* opts.mode stays NULL: the default mode, which marks concurrently. */
    CHECK_OK(tandem_init(&opts));
    register_types();
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);

    push_ballast(m, BALLAST);
    CHECK_OK(tandem_push_root(m, new_array(m, SLOTS_PER_ARRAY))); /* all NULL */
    push_holder(m);
    check_holder(m);

    long moved_while_marking = 0;
    for (int round = 0; round < ROUNDS; round++) {
        wait_for_marking(m, 1);
        for (size_t k = 0; k < ARRAYS; k++) {
            move_array(m, k, round % 3);
            if (m->barriers & TANDEM_BARRIER_WRITE) moved_while_marking++;
        }
        wait_for_marking(m, 0);
        check_holder(m);
    }
    CHECK_OK(tandem_collect(m)); /* one more full cycle, verified */
    check_holder(m);
    check_ballast(m, *tandem_root_slot(m, D_BALLAST), BALLAST);

    tandem_stats s = check_stats();
    printf("%d rounds, %ld of %d arrays moved while marking, %llu collections, verify errors "
           "%llu\n",
           ROUNDS, moved_while_marking, ROUNDS * ARRAYS, (unsigned long long)s.gcs,
           (unsigned long long)s.verify_errors);
    CHECK(moved_while_marking > 0);
    CHECK(s.verify_errors == 0);
    CHECK(s.cycles > 0 && s.cycles <= s.gcs);
    uint64_t stops = 0;
    for (int i = 0; i < 32; i++) stops += s.mutator_stop_histogram[i];
    CHECK(stops > 0 && s.mutator_stop_max_ns > 0); /* the poll loops above park */
    CHECK_OK(tandem_detach_thread(m));
    CHECK_OK(tandem_shutdown());
    return 0;
}
