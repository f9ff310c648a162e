/*
 * shadow_stack.c — objects reachable from each kind of root survive collections intact,
 * and garbage is reclaimed.
 *
 * Roots: the shadow stack (tandem_push_root), a registered global slot (tandem_add_root)
 * and the VM's root callback (tandem_set_root_callback). Objects: fixed-size pairs, byte
 * blobs with payload patterns (small and large), var-size pointer arrays, var-size arrays of
 * {reference, value} items, and a type with its own trace callback. Collections: explicit
 * (tandem_collect) and triggered by allocation, with heap verification on.
 *
 * Proves: every rooted object keeps its payload and references; fresh objects are zeroed
 * even in recycled memory; identity hashes are stable; and heap_live grows with rooted data
 * and falls back when the roots are dropped, for each kind of root.
 *
 * Usage: shadow_stack [mode]   (stw or concurrent; default the library's)
 */
#define _POSIX_C_SOURCE 200809L

#include <stdatomic.h>
#include <stdint.h>

#include "check.h"

/* ---- Object layouts ------------------------------------------------------------------ */

typedef struct pair {
    uint64_t header;
    void *a; /* reference */
    void *b; /* reference */
    uint64_t tag;
} pair;

typedef struct blob {
    uint64_t header;
    size_t length;
    unsigned char bytes[];
} blob;

typedef struct array {
    uint64_t header;
    size_t length;
    uint64_t tag;
    void *items[]; /* references */
} array;

typedef struct entry {
    void *ref; /* reference */
    uint64_t value;
} entry;

typedef struct entry_array {
    uint64_t header;
    size_t length;
    entry items[];
} entry_array;

/* Traced by trace_traced: only the first `count` slots are references. */
typedef struct traced {
    uint64_t header;
    uint64_t count;
    void *slots[4];
} traced;

static tandem_type_id pair_type, blob_type, array_type, entry_array_type, traced_type;
static atomic_long trace_calls;

static void trace_traced(void *obj, tandem_visit_fn visit, void *ctx) {
    traced *t = obj;
    for (uint64_t i = 0; i < t->count; i++) {
        visit(&t->slots[i], ctx);
    }
    atomic_fetch_add(&trace_calls, 1);
}

static tandem_type_id register_type(tandem_type_info t, const char *name) {
    tandem_type_id id = 0;
    t.size = sizeof t;
    t.name = name;
    CHECK_OK(tandem_register_type(&t, &id));
    return id;
}

static void register_types(void) {
    static const size_t pair_refs[] = {offsetof(pair, a), offsetof(pair, b)};
    static const size_t item_ref[] = {0};
    static const size_t entry_ref[] = {offsetof(entry, ref)};
    tandem_type_info t;

    memset(&t, 0, sizeof t);
    t.fixed_size = sizeof(pair);
    t.ref_offsets = pair_refs;
    t.n_ref_offsets = 2;
    pair_type = register_type(t, "pair");

    memset(&t, 0, sizeof t);
    t.fixed_size = offsetof(blob, bytes);
    t.item_size = 1;
    t.length_offset = offsetof(blob, length);
    blob_type = register_type(t, "blob");

    memset(&t, 0, sizeof t);
    t.fixed_size = offsetof(array, items);
    t.item_size = sizeof(void *);
    t.length_offset = offsetof(array, length);
    t.item_ref_offsets = item_ref;
    t.n_item_ref_offsets = 1;
    array_type = register_type(t, "array");

    memset(&t, 0, sizeof t);
    t.fixed_size = offsetof(entry_array, items);
    t.item_size = sizeof(entry);
    t.length_offset = offsetof(entry_array, length);
    t.item_ref_offsets = entry_ref;
    t.n_item_ref_offsets = 1;
    entry_array_type = register_type(t, "entry_array");

    memset(&t, 0, sizeof t);
    t.fixed_size = sizeof(traced);
    t.trace = trace_traced;
    traced_type = register_type(t, "traced");
}

/* ---- Building and checking ----------------------------------------------------------- */

static unsigned char pattern(uint64_t seed, size_t j) {
    return (unsigned char)(seed * 131u + j * 7u + 1u);
}

static void check_zeroed(const void *p, size_t from, size_t to) {
    const unsigned char *b = p;
    for (size_t i = from; i < to; i++) {
        CHECK(b[i] == 0);
    }
}

/* A blob of `length` bytes filled with pattern(seed); unrooted. */
static blob *new_blob(tandem_mutator *m, size_t length, uint64_t seed) {
    blob *b = tandem_alloc(m, blob_type, length);
    CHECK(b != NULL);
    CHECK(b->length == length);
    CHECK((b->header >> 32) == blob_type);
    check_zeroed(b->bytes, 0, length);
    for (size_t j = 0; j < length; j++) {
        b->bytes[j] = pattern(seed, j);
    }
    return b;
}

static void check_blob(const blob *b, size_t length, uint64_t seed) {
    CHECK(b != NULL);
    CHECK((b->header >> 32) == blob_type);
    CHECK(b->length == length);
    for (size_t j = 0; j < length; j++) {
        CHECK(b->bytes[j] == pattern(seed, j));
    }
}

/* Pushes a list of n pairs (tags tag..tag+n-1), each holding a blob of blob_len bytes, and
 * leaves its head on top of the shadow stack. */
static void push_list(tandem_mutator *m, size_t n, size_t blob_len, uint64_t tag) {
    CHECK_OK(tandem_push_root(m, NULL));
    for (size_t i = n; i-- > 0;) {
        CHECK_OK(tandem_push_root(m, new_blob(m, blob_len, tag + i))); /* head is rooted */
        pair *p = tandem_alloc(m, pair_type, 0);                        /* both are rooted */
        CHECK(p != NULL);
        check_zeroed(p, 8, sizeof *p);
        blob *b = tandem_pop_root(m);
        pair *head = *tandem_root_slot(m, 0);
        p->tag = tag + i;
        tandem_write_ref(m, p, &p->a, head);
        tandem_write_ref(m, p, &p->b, b);
        *tandem_root_slot(m, 0) = p;
    }
}

static void check_list(tandem_mutator *m, pair *p, size_t n, size_t blob_len, uint64_t tag) {
    for (size_t i = 0; i < n; i++) {
        CHECK(p != NULL);
        CHECK((p->header >> 32) == pair_type);
        CHECK(p->tag == tag + i);
        check_blob(tandem_read_ref(m, p, &p->b), blob_len, tag + i);
        p = tandem_read_ref(m, p, &p->a);
    }
    CHECK(p == NULL);
}

/* Pushes an array of n blobs (blob i has 100 + i bytes of pattern seed + i). */
static void push_blob_array(tandem_mutator *m, size_t n, uint64_t seed) {
    array *a = tandem_alloc(m, array_type, n);
    CHECK(a != NULL && a->length == n);
    check_zeroed(a->items, 0, n * sizeof(void *));
    a->tag = seed;
    CHECK_OK(tandem_push_root(m, a));
    for (size_t i = 0; i < n; i++) {
        blob *b = new_blob(m, 100 + i, seed + i); /* may collect: the array is rooted */
        a = *tandem_root_slot(m, 0);
        tandem_write_ref(m, a, &a->items[i], b);
    }
}

static void check_blob_array(tandem_mutator *m, array *a, size_t n, uint64_t seed) {
    CHECK(a != NULL && (a->header >> 32) == array_type);
    CHECK(a->length == n && a->tag == seed);
    for (size_t i = 0; i < n; i++) {
        check_blob(tandem_read_ref(m, a, &a->items[i]), 100 + i, seed + i);
    }
}

/* Pushes an entry array of n {pair, value} items; pair i has tag seed + i. */
static void push_entry_array(tandem_mutator *m, size_t n, uint64_t seed) {
    entry_array *e = tandem_alloc(m, entry_array_type, n);
    CHECK(e != NULL && e->length == n);
    CHECK_OK(tandem_push_root(m, e));
    for (size_t i = 0; i < n; i++) {
        pair *p = tandem_alloc(m, pair_type, 0);
        CHECK(p != NULL);
        p->tag = seed + i;
        e = *tandem_root_slot(m, 0);
        tandem_write_ref(m, e, &e->items[i].ref, p);
        e->items[i].value = ~(seed + i);
    }
}

static void check_entry_array(tandem_mutator *m, entry_array *e, size_t n, uint64_t seed) {
    CHECK(e != NULL && (e->header >> 32) == entry_array_type && e->length == n);
    for (size_t i = 0; i < n; i++) {
        pair *p = tandem_read_ref(m, e, &e->items[i].ref);
        CHECK(p != NULL && (p->header >> 32) == pair_type && p->tag == seed + i);
        CHECK(p->a == NULL && p->b == NULL);
        CHECK(e->items[i].value == ~(seed + i));
    }
}

/* Pushes a traced object whose four slots hold blobs of 300 bytes, seeds seed..seed+3. */
static void push_traced(tandem_mutator *m, uint64_t seed) {
    traced *t = tandem_alloc(m, traced_type, 0);
    CHECK(t != NULL);
    CHECK_OK(tandem_push_root(m, t));
    for (uint64_t i = 0; i < 4; i++) {
        blob *b = new_blob(m, 300, seed + i);
        t = *tandem_root_slot(m, 0);
        tandem_write_ref(m, t, &t->slots[i], b);
        t->count = i + 1; /* the tracer sees only the slots filled so far */
    }
}

static void check_traced(tandem_mutator *m, traced *t, uint64_t seed) {
    CHECK(t != NULL && (t->header >> 32) == traced_type && t->count == 4);
    for (uint64_t i = 0; i < 4; i++) {
        check_blob(tandem_read_ref(m, t, &t->slots[i]), 300, seed + i);
    }
}

/* ---- Roots outside the shadow stack -------------------------------------------------- */

#define CALLBACK_SLOTS 8
#define CALLBACK_BLOB (64u << 10) /* large objects */

typedef struct {
    void *slots[CALLBACK_SLOTS]; /* slot 0 stays NULL */
    atomic_long calls;
} callback_roots;

static callback_roots cb_roots;
static void *global_list; /* a registered global root */

static void scan_callback_roots(tandem_visit_fn visit, void *ctx, void *data) {
    callback_roots *r = data;
    CHECK(r == &cb_roots);
    for (int i = 0; i < CALLBACK_SLOTS; i++) {
        visit(&r->slots[i], ctx);
    }
    atomic_fetch_add(&r->calls, 1);
}

/* ---- The test ------------------------------------------------------------------------ */

enum {
    LIST_LEN = 1000,
    LIST_BLOB = 40,
    ARRAY_LEN = 64,
    ENTRIES = 32,
    GLOBAL_LEN = 500,
    GLOBAL_BLOB = 1000,
};

/* Shadow-stack depths of the roots, from the top. */
enum { D_HASHED = 0, D_TRACED, D_ENTRIES, D_LARGE, D_ARRAY, D_LIST, ROOTS };

static uint64_t hash_before;

static void build_roots(tandem_mutator *m) {
    push_list(m, LIST_LEN, LIST_BLOB, 1000);
    push_blob_array(m, ARRAY_LEN, 5000);
    CHECK_OK(tandem_push_root(m, new_blob(m, 100000, 77))); /* a large object */
    push_entry_array(m, ENTRIES, 9000);
    push_traced(m, 12000);
    blob *h = tandem_alloc_nonmoving(m, blob_type, 24);
    CHECK(h != NULL);
    hash_before = tandem_identity_hash(m, h);
    CHECK_OK(tandem_push_root(m, h));
    CHECK(tandem_root_depth(m) == ROOTS);

    push_list(m, GLOBAL_LEN, GLOBAL_BLOB, 20000);
    global_list = tandem_pop_root(m);
    CHECK_OK(tandem_add_root(&global_list));

    for (int i = 1; i < CALLBACK_SLOTS; i++) {
        cb_roots.slots[i] = new_blob(m, CALLBACK_BLOB, 30000 + (uint64_t)i);
        /* rooted from here on: the callback is already installed */
    }
}

static void check_roots(tandem_mutator *m) {
    CHECK(tandem_root_depth(m) == ROOTS);
    check_list(m, *tandem_root_slot(m, D_LIST), LIST_LEN, LIST_BLOB, 1000);
    check_blob_array(m, *tandem_root_slot(m, D_ARRAY), ARRAY_LEN, 5000);
    check_blob(*tandem_root_slot(m, D_LARGE), 100000, 77);
    check_entry_array(m, *tandem_root_slot(m, D_ENTRIES), ENTRIES, 9000);
    check_traced(m, *tandem_root_slot(m, D_TRACED), 12000);
    CHECK(tandem_identity_hash(m, *tandem_root_slot(m, D_HASHED)) == hash_before);
    if (global_list != NULL) {
        check_list(m, global_list, GLOBAL_LEN, GLOBAL_BLOB, 20000);
    }
    CHECK(cb_roots.slots[0] == NULL);
    for (int i = 1; i < CALLBACK_SLOTS; i++) {
        if (cb_roots.slots[i] != NULL) {
            check_blob(cb_roots.slots[i], CALLBACK_BLOB, 30000 + (uint64_t)i);
        }
    }
}

/* Allocates unrooted garbage until `n` more collections have run and at least `bytes`
 * more were allocated; checks that every fresh object is zeroed although its memory was
 * used before. */
static void churn(tandem_mutator *m, uint64_t n, uint64_t bytes) {
    tandem_stats start = check_stats();
    for (long i = 0;; i++) {
        size_t len = 16 + (size_t)(i % 500);
        blob *g = tandem_alloc(m, blob_type, len);
        CHECK(g != NULL && g->length == len);
        check_zeroed(g->bytes, 0, len);
        memset(g->bytes, 0xAB, len); /* dirty the memory for its next use */
        pair *p = tandem_alloc(m, pair_type, 0);
        CHECK(p != NULL);
        check_zeroed(p, 8, sizeof *p);
        p->tag = (uint64_t)i;
        array *a = tandem_alloc(m, array_type, 3);
        CHECK(a != NULL && a->length == 3);
        check_zeroed(a->items, 0, 3 * sizeof(void *));
        memset(a->items, 0xCD, 3 * sizeof(void *)); /* not a reference: a is dead now */
        CHECK_OK(tandem_safepoint(m));
        if (i % 1024 == 0) {
            tandem_stats now = check_stats();
            if (now.gcs >= start.gcs + n && now.bytes_allocated >= start.bytes_allocated + bytes) {
                return;
            }
        }
        CHECK(i < 50L * 1000 * 1000);
    }
}

static uint64_t live_after_collect(tandem_mutator *m) {
    CHECK_OK(tandem_collect(m));
    return check_stats().heap_live;
}

/* A non-local exit (longjmp to a frame that saved the depth) pops to that depth at once;
 * a depth above the current one is refused and drops nothing. */
static void pop_to_depth(tandem_mutator *m) {
    size_t d = tandem_root_depth(m);
    for (int i = 0; i < 5; i++) CHECK_OK(tandem_push_root(m, NULL));
    CHECK(tandem_root_depth(m) == d + 5);
    CHECK_OK(tandem_pop_roots_to(m, d + 2));
    CHECK(tandem_root_depth(m) == d + 2);
    CHECK_RESULT(tandem_pop_roots_to(m, d + 3), TANDEM_ERR_SHADOW_STACK);
    CHECK(tandem_root_depth(m) == d + 2);
    CHECK_OK(tandem_pop_roots_to(m, d));
    CHECK(tandem_root_depth(m) == d);
}

int main(int argc, char **argv) {
    tandem_options opts = check_options();
    if (argc > 1) {
        opts.mode = argv[1];
    }
    opts.heap_min = 8u << 20;
    opts.heap_max = 32u << 20;
    opts.threads = 2;
    opts.verify = 1;
    CHECK_OK(tandem_init(&opts));
    register_types();
    CHECK_OK(tandem_set_root_callback(scan_callback_roots, &cb_roots));
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);

    build_roots(m);
    check_roots(m);
    pop_to_depth(m);
    check_roots(m);

    /* An explicit collection. */
    uint64_t gcs = check_stats().gcs;
    CHECK_OK(tandem_collect(m));
    CHECK(check_stats().gcs > gcs);
    check_roots(m);
    CHECK(atomic_load(&cb_roots.calls) >= 1);
    CHECK(atomic_load(&trace_calls) >= 1);

    /* Collections triggered by allocation. */
    gcs = check_stats().gcs;
    long cb_calls = atomic_load(&cb_roots.calls);
    churn(m, 3, 2 * (uint64_t)opts.heap_max);
    tandem_stats s = check_stats();
    CHECK(s.gcs >= gcs + 3);
    CHECK(atomic_load(&cb_roots.calls) >= cb_calls + 3); /* at least once per collection */
    check_roots(m);

    /* A copy of the blob array made with the array-copy barrier survives too. */
    array *copy = tandem_alloc(m, array_type, ARRAY_LEN);
    CHECK(copy != NULL);
    array *src = *tandem_root_slot(m, D_ARRAY);
    copy->tag = src->tag;
    tandem_array_copy_refs(m, copy, copy->items, src, src->items, ARRAY_LEN);
    CHECK_OK(tandem_push_root(m, copy));
    *tandem_root_slot(m, D_ARRAY + 1) = NULL; /* the original is garbage now */
    CHECK_OK(tandem_collect(m));
    check_blob_array(m, *tandem_root_slot(m, 0), ARRAY_LEN, 5000);
    *tandem_root_slot(m, D_ARRAY + 1) = tandem_pop_root(m);
    check_roots(m);

    /* Garbage is reclaimed: heap_live follows what is rooted, for each kind of root. */
    uint64_t base = live_after_collect(m);
    printf("live with all roots: %llu KiB (allocated %llu MiB in %llu collections)\n",
           (unsigned long long)(base >> 10),
           (unsigned long long)(check_stats().bytes_allocated >> 20),
           (unsigned long long)check_stats().gcs);
    CHECK(base < (4u << 20));
    CHECK(check_stats().bytes_allocated > 2 * (uint64_t)opts.heap_max); /* more than fits */

    /* About 8 MiB more, rooted on the shadow stack: blobs of 100 to 4099 bytes. */
    uint64_t added = offsetof(array, items) + 4000 * sizeof(void *);
    for (size_t i = 0; i < 4000; i++) {
        added += (offsetof(blob, bytes) + 100 + i + 7) & ~(size_t)7;
    }
    push_blob_array(m, 4000, 40000);
    uint64_t more = live_after_collect(m);
    check_blob_array(m, *tandem_root_slot(m, 0), 4000, 40000);
    CHECK(more >= base + added);
    CHECK(more <= base + added + added / 4 + (256u << 10));
    CHECK(tandem_pop_root(m) != NULL);
    uint64_t dropped = live_after_collect(m);
    printf("rooted +%llu KiB: %llu KiB; popped: %llu KiB\n", (unsigned long long)(added >> 10),
           (unsigned long long)(more >> 10), (unsigned long long)(dropped >> 10));
    CHECK(dropped <= base + (256u << 10));

    global_list = NULL; /* the global slot stays registered but holds nothing */
    uint64_t no_global = live_after_collect(m);
    CHECK(no_global + (400u << 10) <= dropped);
    CHECK_OK(tandem_remove_root(&global_list));

    CHECK_OK(tandem_set_root_callback(NULL, NULL));
    cb_calls = atomic_load(&cb_roots.calls);
    uint64_t no_callback = live_after_collect(m);
    CHECK(atomic_load(&cb_roots.calls) == cb_calls); /* cleared: not called again */
    CHECK(no_callback + (400u << 10) <= no_global);
    memset(cb_roots.slots, 0, sizeof cb_roots.slots);
    printf("global list dropped: %llu KiB; callback cleared: %llu KiB\n",
           (unsigned long long)(no_global >> 10), (unsigned long long)(no_callback >> 10));
    check_roots(m); /* the shadow-stack roots are untouched by all this */

    while (tandem_root_depth(m) > 0) {
        (void)tandem_pop_root(m);
    }
    uint64_t empty = live_after_collect(m);
    printf("no roots: %llu KiB\n", (unsigned long long)(empty >> 10));
    CHECK(empty < (256u << 10));

    s = check_stats();
    CHECK(s.verify_errors == 0);
    CHECK(s.out_of_memory == 0);
    CHECK_OK(tandem_detach_thread(m));
    CHECK_OK(tandem_shutdown());
    return 0;
}
