/*
 * hello_gc.c — embedding Tandem in a C program: the smallest complete example.
 *
 * Build and run (from the repository root):
 *
 *   cargo build --release -p tandem-ffi
 *   cc -std=c11 -O2 -I ffi/include ffi/examples/hello_gc.c target/release/libtandem.a \
 *      -lpthread -ldl -lm -o hello_gc
 *   ./hello_gc
 *
 * What it shows, in order: start the runtime with options; describe two object types (a
 * cons cell and a variable-size array); attach the thread; allocate a list while keeping
 * it reachable through the shadow stack; run a collection; print statistics; detach; shut
 * down. Every Tandem call reports failure through its result (or NULL) plus a message from
 * tandem_last_error(); nothing aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tandem.h"

/* ---- The VM's object layouts --------------------------------------------------------
 * Every object starts with Tandem's 8-byte header. Reference fields are void * so that
 * their addresses can be passed to the barriers (tandem_write_ref, tandem_read_ref). */

/* A cons cell: (car . cdr). car holds a boxed integer here; cdr the rest of the list. */
typedef struct cons {
    uint64_t header;
    void *car; /* reference */
    void *cdr; /* reference */
} cons;

/* A variable-size array of references; Tandem writes `length` when allocating. */
typedef struct array {
    uint64_t header;
    size_t length;
    void *items[]; /* references */
} array;

static tandem_type_id cons_type, array_type;

/* Prints the message of a failed call and exits. */
static void die(const char *what) {
    fprintf(stderr, "%s failed: %s\n", what, tandem_last_error());
    exit(1);
}

static void register_types(void) {
    /* A fixed-size type: its size and where its references are. */
    static const size_t cons_refs[] = {offsetof(cons, car), offsetof(cons, cdr)};
    tandem_type_info info = {0};
    info.size = sizeof info; /* always set size: it is the ABI version check */
    info.fixed_size = sizeof(cons);
    info.ref_offsets = cons_refs;
    info.n_ref_offsets = 2;
    info.name = "cons";
    if (tandem_register_type(&info, &cons_type) != TANDEM_OK) die("registering cons");

    /* A var-size type: the fixed part, the item size, where the length goes, and where
     * the references are inside each item (offset 0: each item is one reference). */
    static const size_t item_refs[] = {0};
    tandem_type_info arr = {0};
    arr.size = sizeof arr;
    arr.fixed_size = offsetof(array, items);
    arr.item_size = sizeof(void *);
    arr.length_offset = offsetof(array, length);
    arr.item_ref_offsets = item_refs;
    arr.n_item_ref_offsets = 1;
    arr.name = "array";
    if (tandem_register_type(&arr, &array_type) != TANDEM_OK) die("registering array");
}

/* Builds the list (0 1 2 ... n-1), each car an array of length i. The list head lives in a
 * shadow-stack slot, because every allocation may run a collection: an object that is
 * only in a C local variable is not seen by the collector. */
static void push_list(tandem_mutator *m, size_t n) {
    if (tandem_push_root(m, NULL) != TANDEM_OK) die("push"); /* the (empty) list */
    for (size_t i = n; i-- > 0;) {
        array *a = tandem_alloc(m, array_type, i); /* zeroed; a->length == i */
        if (a == NULL) die("allocating an array");
        if (tandem_push_root(m, a) != TANDEM_OK) die("push"); /* keep a across the next alloc */

        cons *c = tandem_alloc(m, cons_type, 0);
        if (c == NULL) die("allocating a cons");

        /* Read both back from their slots: Tandem moves objects (concurrent compaction)
         * and updates the slots, not our locals. */
        a = tandem_pop_root(m);
        cons *rest = *tandem_root_slot(m, 0);
        tandem_write_ref(m, c, &c->car, a);
        tandem_write_ref(m, c, &c->cdr, rest);
        *tandem_root_slot(m, 0) = c; /* the new head */

        tandem_safepoint(m); /* poll regularly, e.g. on loop back-edges */
    }
}

int main(void) {
    /* 1. Start the runtime. Zero the options, set size, set what you need; TANDEM_*
     *    environment variables (e.g. TANDEM_THREADS=4) override these. */
    tandem_options opts = {0};
    opts.size = sizeof opts;
    opts.heap_max = 64u << 20; /* 64 MiB */
    opts.threads = 2;          /* GC worker threads */
    if (tandem_init(&opts) != TANDEM_OK) die("tandem_init");

    /* 2. Describe the object types, once. */
    register_types();

    /* 3. Every thread that touches the heap attaches and gets its own mutator. */
    tandem_mutator *m = tandem_attach_thread();
    if (m == NULL) die("tandem_attach_thread");

    /* 4. Allocate a list, kept alive by a shadow-stack root, and make some garbage. */
    push_list(m, 1000);
    for (int i = 0; i < 100000; i++) {
        if (tandem_alloc(m, cons_type, 0) == NULL) die("allocating garbage");
        tandem_safepoint(m);
    }

    /* 5. Collect: the list survives, the garbage is freed. */
    if (tandem_collect(m) != TANDEM_OK) die("tandem_collect");
    size_t length = 0, items = 0;
    for (cons *c = *tandem_root_slot(m, 0); c != NULL; c = tandem_read_ref(m, c, &c->cdr)) {
        array *a = tandem_read_ref(m, c, &c->car);
        items += a->length;
        length++;
    }
    printf("list of %zu conses holding arrays of %zu items in all\n", length, items);

    /* 6. Statistics. */
    tandem_stats s = {0};
    s.size = sizeof s;
    if (tandem_get_stats(&s) != TANDEM_OK) die("tandem_get_stats");
    printf("tandem %s: %llu collections, %llu KiB allocated, %llu KiB live, longest pause "
           "%llu us\n",
           tandem_version(), (unsigned long long)s.gcs,
           (unsigned long long)(s.bytes_allocated >> 10), (unsigned long long)(s.heap_live >> 10),
           (unsigned long long)(s.pause_max_ns / 1000));

    /* 7. Drop the root, detach the thread, shut down. */
    (void)tandem_pop_root(m);
    if (tandem_detach_thread(m) != TANDEM_OK) die("tandem_detach_thread");
    if (tandem_shutdown() != TANDEM_OK) die("tandem_shutdown");
    return length == 1000 && items == 1000 * 999 / 2 ? 0 : 1;
}
