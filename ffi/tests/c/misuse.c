/*
 * misuse.c — every misuse of the C ABI we can think of returns an error code (or NULL) and
 * sets a message for tandem_last_error() that names the problem; none aborts the process.
 * Also: out of memory calls the OOM handler and is recoverable, a thread that exits while
 * attached is detached, tandem_shutdown from an attached thread does not deadlock with a
 * pending collection, and the runtime can be initialised again after a shutdown.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "check.h"

/* Sets the last error to a known, unrelated message, so that a later check of the message
 * proves the call under test set it. */
static void mark_last_error(void) {
    CHECK_RESULT(tandem_get_stats(NULL), TANDEM_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("tandem_get_stats");
}

/* Checks that a pointer-returning call fails with NULL and a message mentioning needle. */
#define CHECK_NULL_WITH(expr, needle)                                                      \
    do {                                                                                   \
        mark_last_error();                                                                 \
        CHECK((expr) == NULL);                                                             \
        CHECK_ERROR_MENTIONS(needle);                                                      \
    } while (0)

/* Test types. */
static tandem_type_id pair_type;  /* header, two references */
static tandem_type_id array_type; /* header, length, references */
static tandem_type_id blob_type;  /* header, length, bytes */

static tandem_type_info type_info(size_t fixed_size, size_t item_size, size_t length_offset) {
    tandem_type_info t;
    memset(&t, 0, sizeof t);
    t.size = sizeof t;
    t.fixed_size = fixed_size;
    t.item_size = item_size;
    t.length_offset = length_offset;
    return t;
}

static void register_types(void) {
    static const size_t pair_refs[] = {8, 16};
    static const size_t item_refs[] = {0};
    tandem_type_info t = type_info(24, 0, 0);
    t.ref_offsets = pair_refs;
    t.n_ref_offsets = 2;
    t.name = "pair";
    CHECK_OK(tandem_register_type(&t, &pair_type));
    t = type_info(16, 8, 8);
    t.item_ref_offsets = item_refs;
    t.n_item_ref_offsets = 1;
    t.name = "array";
    CHECK_OK(tandem_register_type(&t, &array_type));
    t = type_info(16, 1, 8);
    t.name = "blob";
    CHECK_OK(tandem_register_type(&t, &blob_type));
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- Before tandem_init ------------------------------------------------------------- */

static void calls_before_init_fail_with_not_initialized(void) {
    CHECK(tandem_last_error() != NULL);
    CHECK(strcmp(tandem_last_error(), "") == 0); /* no error yet */
    CHECK(tandem_version() != NULL && tandem_version()[0] != '\0');

    CHECK_NULL_WITH(tandem_attach_thread(), "tandem_init");
    CHECK_FAILS(tandem_shutdown(), TANDEM_ERR_NOT_INITIALIZED, "tandem_init");
    tandem_type_info t = type_info(16, 0, 0);
    tandem_type_id id = 0;
    CHECK_FAILS(tandem_register_type(&t, &id), TANDEM_ERR_NOT_INITIALIZED, "tandem_init");
    CHECK(id == 0);
    static void *slot;
    CHECK_FAILS(tandem_add_root(&slot), TANDEM_ERR_NOT_INITIALIZED, "tandem_init");
    CHECK_FAILS(tandem_set_root_callback(NULL, NULL), TANDEM_ERR_NOT_INITIALIZED, "tandem_init");
    CHECK_FAILS(tandem_set_oom_handler(NULL, NULL), TANDEM_ERR_NOT_INITIALIZED, "tandem_init");
    tandem_stats s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    CHECK_FAILS(tandem_get_stats(&s), TANDEM_ERR_NOT_INITIALIZED, "tandem_init");
    CHECK_FAILS(tandem_collect(NULL), TANDEM_ERR_BAD_MUTATOR, "NULL");
}

/* ---- tandem_init --------------------------------------------------------------------- */

static void bad_options_fail_with_a_message_naming_them(void) {
    CHECK(tandem_abi_version() == TANDEM_ABI_VERSION);
    CHECK_FAILS(tandem_init_abi(TANDEM_ABI_VERSION + 1, NULL), TANDEM_ERR_STATE,
                "TANDEM_ABI_VERSION");

    tandem_options o = check_options();
    o.size = 4;
    CHECK_FAILS(tandem_init(&o), TANDEM_ERR_INVALID_ARGUMENT, "tandem_options.size");

    CHECK(setenv("TANDEM_THREADS", "abc", 1) == 0);
    CHECK_FAILS(tandem_init(NULL), TANDEM_ERR_CONFIG, "TANDEM_THREADS");
    CHECK_FAILS(tandem_init(NULL), TANDEM_ERR_CONFIG, "abc"); /* the bad value is shown */
    CHECK(unsetenv("TANDEM_THREADS") == 0);

    CHECK(setenv("TANDEM_HEAP_MAX", "12Q", 1) == 0);
    CHECK_FAILS(tandem_init(NULL), TANDEM_ERR_CONFIG, "TANDEM_HEAP_MAX");
    CHECK(unsetenv("TANDEM_HEAP_MAX") == 0);

    o = check_options();
    o.mode = "fast";
    CHECK_FAILS(tandem_init(&o), TANDEM_ERR_CONFIG, "TANDEM_MODE");

    o = check_options();
    o.heap_max = 1u << 20; /* below the minimum heap */
    CHECK_FAILS(tandem_init(&o), TANDEM_ERR_CONFIG, "TANDEM_HEAP_MAX");

    o = check_options();
    o.heap_min = 256u << 20;
    o.heap_max = 64u << 20;
    CHECK_FAILS(tandem_init(&o), TANDEM_ERR_CONFIG, "TANDEM_HEAP_MIN");

    /* A misspelt variable is an error naming the option it resembles. */
    CHECK(setenv("TANDEM_HEAP_MAXX", "64M", 1) == 0);
    CHECK_FAILS(tandem_init(NULL), TANDEM_ERR_CONFIG, "did you mean TANDEM_HEAP_MAX?");
    CHECK(unsetenv("TANDEM_HEAP_MAXX") == 0);

    o = check_options();
    o.gc_trigger = "150%";
    CHECK_FAILS(tandem_init(&o), TANDEM_ERR_CONFIG, "TANDEM_GC_TRIGGER");
    o = check_options();
    o.conc_threads = 64;
    o.threads = 2;
    CHECK_FAILS(tandem_init(&o), TANDEM_ERR_CONFIG, "TANDEM_CONC_THREADS");
    o = check_options();
    o.gc_trigger = "2G";
    o.heap_max = 64u << 20;
    CHECK_FAILS(tandem_init(&o), TANDEM_ERR_CONFIG, "never reach it");
    o = check_options();
    o.log = "[[[not a filter";
    CHECK_FAILS(tandem_init(&o), TANDEM_ERR_CONFIG, "TANDEM_LOG");
    o = check_options();
    o.reserved = 7;
    CHECK_FAILS(tandem_init(&o), TANDEM_ERR_INVALID_ARGUMENT, "reserved");

    /* None of the failures initialised anything. */
    CHECK_NULL_WITH(tandem_attach_thread(), "tandem_init");
    tandem_options got = check_options();
    CHECK_FAILS(tandem_get_options(&got), TANDEM_ERR_NOT_INITIALIZED, "tandem_init");
}

/* Every option can be set from C and read back as the runtime applied it. */
static void options_are_set_and_read_back(void) {
    tandem_options o = check_options();
    o.threads = 2;
    o.conc_threads = 1;
    o.heap_max = 8u << 20; /* alone below the default minimum: the minimum follows it */
    o.mode = "concurrent";
    o.gc_trigger = "70%";
    o.uncommit_delay = "250ms";
    o.gc_growth = "1.5";
    CHECK_OK(tandem_init(&o));
    tandem_options got = check_options();
    CHECK_OK(tandem_get_options(&got));
    CHECK(got.threads == 2 && got.conc_threads == 1);
    CHECK(got.heap_min == 8u << 20 && got.heap_max == 8u << 20);
    CHECK(strcmp(got.mode, "concurrent") == 0);
    CHECK(strcmp(got.gc_trigger, "70%") == 0);
    CHECK(strcmp(got.log, "") == 0);
    CHECK(strcmp(got.uncommit_delay, "250ms") == 0);
    CHECK(strcmp(got.gc_growth, "1.5") == 0);
    got.size = 4;
    CHECK_FAILS(tandem_get_options(&got), TANDEM_ERR_INVALID_ARGUMENT, "tandem_options.size");
    CHECK_OK(tandem_shutdown());
}

static void init_with_test_options(void) {
    tandem_options o = check_options();
    o.threads = 2;
    o.heap_min = 16u << 20;
    o.heap_max = 64u << 20;
    o.shadow_stack_slots = 4096;
    o.mode = "stw";
    CHECK_OK(tandem_init(&o));
    CHECK_FAILS(tandem_init(&o), TANDEM_ERR_ALREADY_INITIALIZED, "twice");
    CHECK_FAILS(tandem_init(NULL), TANDEM_ERR_ALREADY_INITIALIZED, "twice");
}

/* ---- Types --------------------------------------------------------------------------- */

static void bad_type_descriptions_are_rejected(void) {
    tandem_type_id id = 0;
    tandem_type_info t = type_info(4, 0, 0);
    CHECK_FAILS(tandem_register_type(&t, &id), TANDEM_ERR_BAD_TYPE, "fixed_size");
    t.name = "tiny";
    CHECK_FAILS(tandem_register_type(&t, &id), TANDEM_ERR_BAD_TYPE, "\"tiny\"");

    static const size_t outside[] = {24};
    t = type_info(24, 0, 0);
    t.ref_offsets = outside;
    t.n_ref_offsets = 1;
    CHECK_FAILS(tandem_register_type(&t, &id), TANDEM_ERR_BAD_TYPE, "reference offset 24");

    static const size_t misaligned[] = {12};
    t.ref_offsets = misaligned;
    CHECK_FAILS(tandem_register_type(&t, &id), TANDEM_ERR_BAD_TYPE, "reference offset 12");

    t = type_info(16, 8, 20); /* var-size, length field outside the fixed part */
    CHECK_FAILS(tandem_register_type(&t, &id), TANDEM_ERR_BAD_TYPE, "length_offset");

    t = type_info(24, 0, 8); /* a length field on a fixed-size type */
    CHECK_FAILS(tandem_register_type(&t, &id), TANDEM_ERR_BAD_TYPE, "length_offset 8");

    static const size_t twice[] = {8, 16, 8};
    t = type_info(24, 0, 0);
    t.ref_offsets = twice;
    t.n_ref_offsets = 3;
    CHECK_FAILS(tandem_register_type(&t, &id), TANDEM_ERR_BAD_TYPE, "reference offset 8 is given twice");

    t = type_info(24, 0, 0);
    t.ref_offsets = NULL;
    t.n_ref_offsets = 2;
    CHECK_FAILS(tandem_register_type(&t, &id), TANDEM_ERR_INVALID_ARGUMENT, "ref_offsets");

    t = type_info(24, 0, 0);
    t.size = 8;
    CHECK_FAILS(tandem_register_type(&t, &id), TANDEM_ERR_INVALID_ARGUMENT,
                "tandem_type_info.size");
    CHECK_FAILS(tandem_register_type(NULL, &id), TANDEM_ERR_INVALID_ARGUMENT, "NULL");
    t = type_info(24, 0, 0);
    CHECK_FAILS(tandem_register_type(&t, NULL), TANDEM_ERR_INVALID_ARGUMENT, "NULL");
    CHECK(id == 0); /* never written by a failed registration */
}

/* ---- Mutators ------------------------------------------------------------------------ */

static void null_and_foreign_mutators_are_rejected(tandem_mutator *m) {
    CHECK_FAILS(tandem_collect(NULL), TANDEM_ERR_BAD_MUTATOR, "NULL");
    CHECK_FAILS(tandem_safepoint_slow(NULL), TANDEM_ERR_BAD_MUTATOR, "NULL");
    CHECK_FAILS(tandem_enter_native(NULL), TANDEM_ERR_BAD_MUTATOR, "NULL");
    CHECK_FAILS(tandem_push_root_slow(NULL, NULL), TANDEM_ERR_BAD_MUTATOR, "NULL");
    CHECK_FAILS(tandem_pop_roots_to_slow(NULL, 1), TANDEM_ERR_BAD_MUTATOR, "NULL");
    CHECK_FAILS(tandem_detach_thread(NULL), TANDEM_ERR_BAD_MUTATOR, "NULL");
    CHECK_NULL_WITH(tandem_alloc_slow(NULL, pair_type, 0), "NULL");
    CHECK_NULL_WITH(tandem_pop_root_slow(NULL), "NULL");

    /* A zeroed look-alike: its empty bump window sends tandem_alloc to the checked path. */
    tandem_mutator fake;
    memset(&fake, 0, sizeof fake);
    CHECK_NULL_WITH(tandem_alloc(&fake, pair_type, 0), "not an attached mutator");
    CHECK_FAILS(tandem_collect(&fake), TANDEM_ERR_BAD_MUTATOR, "not an attached mutator");
    CHECK_FAILS(tandem_safepoint_slow(&fake), TANDEM_ERR_BAD_MUTATOR, "not an attached");
    void *junk = calloc(1, 256);
    CHECK(junk != NULL);
    CHECK_FAILS(tandem_collect((tandem_mutator *)junk), TANDEM_ERR_BAD_MUTATOR,
                "not an attached mutator");
    free(junk);

    /* Attaching a thread twice. */
    CHECK_NULL_WITH(tandem_attach_thread(), "already attached");
    /* The real mutator still works after all that. */
    CHECK_OK(tandem_collect(m));
}

typedef struct {
    tandem_mutator *other; /* the main thread's mutator */
    tandem_mutator *own;   /* the one this thread attached (then exited with) */
} thread_args;

/* Uses another thread's mutator (rejected; the thread keeps its own message), then
 * attaches and exits without detaching. */
static void *use_other_threads_mutator(void *p) {
    thread_args *a = p;
    CHECK(strcmp(tandem_last_error(), "") == 0); /* messages are per thread */
    CHECK_FAILS(tandem_collect(a->other), TANDEM_ERR_WRONG_THREAD, "another thread");
    CHECK_FAILS(tandem_detach_thread(a->other), TANDEM_ERR_WRONG_THREAD, "another thread");
    CHECK_FAILS(tandem_enter_native(a->other), TANDEM_ERR_WRONG_THREAD, "another thread");
    CHECK_NULL_WITH(tandem_alloc_slow(a->other, pair_type, 0), "another thread");
    a->own = tandem_attach_thread();
    CHECK(a->own != NULL);
    CHECK(tandem_alloc(a->own, pair_type, 0) != NULL);
    return NULL; /* exits attached: Tandem detaches it */
}

static void mutators_belong_to_their_thread(tandem_mutator *m) {
    mark_last_error();
    thread_args a = {m, NULL};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, use_other_threads_mutator, &a) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_ERROR_MENTIONS("tandem_get_stats"); /* the other thread's errors are its own */
    /* The exited thread was detached: a collection does not wait for it, and its old
     * handle is no longer a live mutator of any thread. */
    CHECK_OK(tandem_collect(m));
    CHECK_FAILS(tandem_collect(a.own), TANDEM_ERR_BAD_MUTATOR, "not an attached mutator");
}

/* ---- Allocation ---------------------------------------------------------------------- */

static void bad_allocations_return_null(tandem_mutator *m) {
    CHECK_NULL_WITH(tandem_alloc(m, 4242, 0), "unknown type id 4242");
    CHECK_NULL_WITH(tandem_alloc(m, 0, 0), "unknown type id 0");
    CHECK_NULL_WITH(tandem_alloc(m, 70000, 0), "unknown type id 70000");
    CHECK_NULL_WITH(tandem_alloc_nonmoving(m, 4242, 0), "unknown type id 4242");
    CHECK_NULL_WITH(tandem_alloc(m, array_type, SIZE_MAX / 2), "size overflow");
    CHECK_NULL_WITH(tandem_alloc(m, blob_type, SIZE_MAX), "size overflow");
    CHECK_NULL_WITH(tandem_alloc(m, blob_type, (size_t)1 << 40), "does not fit");
    CHECK_NULL_WITH(tandem_alloc_nonmoving(m, array_type, SIZE_MAX / 2), "size overflow");
    /* ... and good ones still work. */
    void **arr = tandem_alloc(m, array_type, 3);
    CHECK(arr != NULL);
    CHECK(*(size_t *)((char *)arr + 8) == 3);
    CHECK(tandem_alloc_nonmoving(m, pair_type, 0) != NULL);
    /* Uninitialised allocation is for pointer-free types only. */
    CHECK_NULL_WITH(tandem_alloc_uninit(m, array_type, 3), "has references");
    CHECK_NULL_WITH(tandem_alloc_uninit(m, pair_type, 0), "has references");
    CHECK_NULL_WITH(tandem_alloc_uninit(m, 4242, 0), "unknown type id 4242");
    unsigned char *b = tandem_alloc_uninit(m, blob_type, 100000);
    CHECK(b != NULL);
    CHECK(*(size_t *)(b + 8) == 100000);
    CHECK(tandem_sizeof(b) >= 100000);
}

/* ---- Roots --------------------------------------------------------------------------- */

static void shadow_stack_underflow_and_overflow_are_reported(tandem_mutator *m) {
    CHECK(tandem_root_depth(m) == 0);
    CHECK_NULL_WITH(tandem_pop_root(m), "empty shadow stack");
    CHECK(tandem_root_depth(m) == 0);
    size_t pushed = 0;
    while (pushed < 4096) {
        CHECK_OK(tandem_push_root(m, NULL));
        pushed++;
    }
    CHECK_FAILS(tandem_push_root(m, NULL), TANDEM_ERR_SHADOW_STACK, "overflow");
    CHECK(tandem_root_depth(m) == 4096);
    CHECK_OK(tandem_collect(m)); /* a full stack of NULL roots is fine */
    while (pushed-- > 0) {
        CHECK(tandem_pop_root(m) == NULL);
    }
    CHECK_NULL_WITH(tandem_pop_root(m), "empty shadow stack");
}

static void global_root_misuse_is_reported(void) {
    static void *slot;
    CHECK_FAILS(tandem_remove_root(&slot), TANDEM_ERR_ROOT, "never registered");
    CHECK_FAILS(tandem_add_root(NULL), TANDEM_ERR_INVALID_ARGUMENT, "null");
    CHECK_FAILS(tandem_add_root((void **)((char *)&slot + 1)), TANDEM_ERR_INVALID_ARGUMENT,
                "aligned");
    CHECK_OK(tandem_add_root(&slot));
    CHECK_FAILS(tandem_add_root(&slot), TANDEM_ERR_ROOT, "already registered");
    CHECK_OK(tandem_remove_root(&slot));
    CHECK_FAILS(tandem_remove_root(&slot), TANDEM_ERR_ROOT, "never registered");
    CHECK_OK(tandem_set_root_callback(NULL, NULL)); /* clearing when none is set is fine */
}

/* ---- Native regions, barriers, statistics -------------------------------------------- */

static void native_region_misuse_is_reported(tandem_mutator *m) {
    CHECK_FAILS(tandem_leave_native(m), TANDEM_ERR_STATE, "not in a native region");
    void *w = tandem_weakref_new(m, NULL);
    CHECK(w != NULL);
    CHECK_OK(tandem_push_root(m, w));
    CHECK_OK(tandem_enter_native(m));
    CHECK_FAILS(tandem_enter_native(m), TANDEM_ERR_STATE, "already in a native region");
    /* Touching the heap inside the region is refused, and the region holds. */
    CHECK_NULL_WITH(tandem_alloc_slow(m, pair_type, 0), "inside a native region");
    CHECK_FAILS(tandem_collect(m), TANDEM_ERR_STATE, "inside a native region");
    CHECK_FAILS(tandem_collect_ex(m, TANDEM_COLLECT_FULL), TANDEM_ERR_STATE, "inside a native region");
    int phase = -1;
    CHECK_FAILS(tandem_collect_step(m, &phase), TANDEM_ERR_STATE, "inside a native region");
    CHECK(phase == -1);
    CHECK_NULL_WITH(tandem_weakref_new(m, NULL), "inside a native region");
    CHECK_NULL_WITH(tandem_weakref_get(m, *tandem_root_slot(m, 0)), "inside a native region");
    CHECK_OK(tandem_leave_native(m));
    CHECK_FAILS(tandem_leave_native(m), TANDEM_ERR_STATE, "not in a native region");
    CHECK(tandem_pop_root(m) != NULL);
}

static void bad_barrier_and_stats_arguments_are_reported(tandem_mutator *m) {
    void **pair = tandem_alloc(m, pair_type, 0);
    CHECK(pair != NULL);
    CHECK_FAILS(tandem_write_ref_slow(m, NULL, &pair[1], NULL), TANDEM_ERR_INVALID_ARGUMENT,
                "tandem_write_ref");
    CHECK_FAILS(tandem_write_ref_slow(m, pair, NULL, NULL), TANDEM_ERR_INVALID_ARGUMENT,
                "slot");
    CHECK_FAILS(tandem_object_barrier_slow(m, NULL), TANDEM_ERR_INVALID_ARGUMENT,
                "tandem_object_barrier");
    CHECK_NULL_WITH(tandem_read_ref_slow(m, pair, (void **)((char *)pair + 9)), "misaligned");
    CHECK_NULL_WITH(tandem_read_ref_slow(m, NULL, &pair[1]), "tandem_read_ref: 0x0");
    CHECK_FAILS(tandem_array_copy_refs_slow(m, NULL, NULL, pair, NULL, 0),
                TANDEM_ERR_INVALID_ARGUMENT, "dst_obj");
    mark_last_error();
    CHECK(tandem_identity_hash(m, NULL) == 0);
    CHECK_ERROR_MENTIONS("tandem_identity_hash");
    /* Memory that is not the heap's (malloc'd, or on the stack) is refused, never written. */
    uint64_t foreign[4] = {0, 0, 0, 0};
    CHECK_FAILS(tandem_pin(m, foreign), TANDEM_ERR_INVALID_ARGUMENT, "not an object of the Tandem heap");
    CHECK(foreign[0] == 0);
    mark_last_error();
    CHECK(tandem_id(m, foreign) == 0);
    CHECK_ERROR_MENTIONS("tandem_id");
    CHECK(tandem_weakref_new(m, foreign) == NULL);
    CHECK_ERROR_MENTIONS("not an object of the Tandem heap");
    CHECK(foreign[0] == 0);
    /* An object that is not a weakref, a finalizer queue that was never created. */
    CHECK_NULL_WITH(tandem_weakref_get(m, pair), "not a weakref");
    CHECK(tandem_last_error_code() == TANDEM_ERR_INVALID_ARGUMENT);
    CHECK_NULL_WITH(tandem_next_dead(m, 4000000000u), "not a finalizer queue");
    CHECK(tandem_last_error_code() == TANDEM_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(tandem_register_finalizer(m, 4000000000u, pair), TANDEM_ERR_INVALID_ARGUMENT,
                "not a finalizer queue");
    /* The checked slow paths work on good arguments. */
    CHECK_OK(tandem_write_ref_slow(m, pair, &pair[1], pair));
    CHECK(tandem_read_ref_slow(m, pair, &pair[1]) == pair);
    CHECK_OK(tandem_object_barrier_slow(m, pair));
    CHECK(tandem_identity_hash(m, pair) != 0);

    tandem_stats s;
    memset(&s, 0, sizeof s);
    s.size = 16;
    CHECK_FAILS(tandem_get_stats(&s), TANDEM_ERR_INVALID_ARGUMENT, "tandem_stats.size");
    CHECK_FAILS(tandem_get_stats(NULL), TANDEM_ERR_INVALID_ARGUMENT, "NULL");
    /* A client built against the first layout (up to longest_wait_ns) gets those fields and
     * nothing is written past them. */
    memset(&s, 0xAB, sizeof s);
    s.size = offsetof(tandem_stats, assist_ns);
    CHECK_OK(tandem_get_stats(&s));
    CHECK(s.size == offsetof(tandem_stats, assist_ns));
    CHECK(s.gcs != 0xABABABABABABABABull && s.longest_wait_ns != 0xABABABABABABABABull);
    CHECK(s.assist_ns == 0xABABABABABABABABull && s.assist_objects == 0xABABABABABABABABull);
    /* One built against the layout before the resume statistics gets none of them. */
    memset(&s, 0xAB, sizeof s);
    s.size = offsetof(tandem_stats, mutator_resume_max_ns);
    CHECK_OK(tandem_get_stats(&s));
    CHECK(s.memory_pressure != 0xABABABABABABABABull);
    CHECK(s.mutator_resume_max_ns == 0xABABABABABABABABull);
    /* One built before the collector's CPU time gets the resume statistics only. */
    memset(&s, 0xAB, sizeof s);
    s.size = offsetof(tandem_stats, collector_cpu_ns);
    CHECK_OK(tandem_get_stats(&s));
    CHECK(s.mutator_resume_max_ns != 0xABABABABABABABABull);
    CHECK(s.collector_cpu_ns == 0xABABABABABABABABull);
    /* One built before the young generation gets the CPU time only. */
    memset(&s, 0xAB, sizeof s);
    s.size = offsetof(tandem_stats, nursery_cycles);
    CHECK_OK(tandem_get_stats(&s));
    CHECK(s.collector_cpu_ns != 0xABABABABABABABABull);
    CHECK(s.nursery_cycles == 0xABABABABABABABABull);
    /* The whole layout: a stop's part after the resume is part of the stop, and the
     * collector's CPU time is written. */
    memset(&s, 0xAB, sizeof s);
    s.size = sizeof s;
    CHECK_OK(tandem_get_stats(&s));
    CHECK(s.mutator_resume_max_ns <= s.mutator_stop_max_ns);
    CHECK(s.collector_cpu_ns != 0xABABABABABABABABull);
    CHECK(s.nursery_cycles == 0);
}

static void detaching_twice_is_reported(tandem_mutator *m) {
    CHECK_OK(tandem_detach_thread(m));
    CHECK_FAILS(tandem_detach_thread(m), TANDEM_ERR_BAD_MUTATOR, "not an attached mutator");
    CHECK_FAILS(tandem_collect(m), TANDEM_ERR_BAD_MUTATOR, "already detached");
}

/* ---- Shutdown ------------------------------------------------------------------------ */

static tandem_result collector_result;
static atomic_int collector_attached;

/* Requests a collection, which waits for the main thread to reach a safepoint. */
static void *collect_in_thread(void *p) {
    (void)p;
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    atomic_store(&collector_attached, 1);
    collector_result = tandem_collect(m);
    CHECK_OK(tandem_detach_thread(m));
    return NULL;
}

static void shutdown_from_an_attached_thread_does_not_wait_for_itself(tandem_mutator *m) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, collect_in_thread, NULL) == 0);
    while (!atomic_load(&collector_attached)) {
        sleep_ms(1);
    }
    /* This thread runs without polling, so the collection cannot stop the world... */
    sleep_ms(100);
    /* ... until shutdown lets it: shutdown waits for the collection to end. */
    CHECK_OK(tandem_shutdown());
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(collector_result == TANDEM_OK || collector_result == TANDEM_ERR_NOT_INITIALIZED);
    CHECK(tandem_safepoint(m) == TANDEM_OK);
}

static void calls_after_shutdown_fail_with_not_initialized(tandem_mutator *m) {
    CHECK_FAILS(tandem_collect(m), TANDEM_ERR_NOT_INITIALIZED, "shut down");
    CHECK_NULL_WITH(tandem_attach_thread(), "already attached"); /* m is still attached */
    CHECK_FAILS(tandem_shutdown(), TANDEM_ERR_NOT_INITIALIZED, "tandem_init");
    tandem_type_info t = type_info(16, 0, 0);
    tandem_type_id id = 0;
    CHECK_FAILS(tandem_register_type(&t, &id), TANDEM_ERR_NOT_INITIALIZED, "tandem_init");
    static void *slot;
    CHECK_FAILS(tandem_add_root(&slot), TANDEM_ERR_NOT_INITIALIZED, "tandem_init");
    /* A mutator outliving its runtime can still be detached. */
    CHECK_OK(tandem_detach_thread(m));
    CHECK_NULL_WITH(tandem_attach_thread(), "tandem_init");
}

/* ---- Out of memory ------------------------------------------------------------------- */

typedef struct {
    int calls;
    size_t last_size;
    tandem_mutator *m;     /* the allocating thread's mutator */
    int reentry_refused;   /* calls with it from the handler that failed as they must */
} oom_record;

/* A call with the failing thread's mutator from the handler fails with TANDEM_ERR_STATE
 * (it answered TANDEM_ERR_INTERNAL with a Rust panic on stderr). */
static int refused_in_callback(tandem_result r) {
    return r == TANDEM_ERR_STATE && strstr(tandem_last_error(), "callback") != NULL;
}

static void on_oom(size_t size, void *data) {
    oom_record *r = data;
    r->calls++;
    r->last_size = size;
    r->reentry_refused = refused_in_callback(tandem_collect(r->m)) &&
                         tandem_alloc_slow(r->m, blob_type, 16) == NULL &&
                         refused_in_callback(tandem_last_error_code()) &&
                         refused_in_callback(tandem_collect_ex(r->m, TANDEM_COLLECT_FULL));
}

/* Fills the heap with rooted objects of `length` bytes until allocation fails; returns how
 * many were allocated (all left on the shadow stack). */
static size_t fill_heap(tandem_mutator *m, size_t length) {
    size_t n = 0;
    for (;;) {
        void *o = tandem_alloc(m, blob_type, length);
        if (o == NULL) {
            return n;
        }
        CHECK_OK(tandem_push_root(m, o));
        n++;
        CHECK(n < 100000);
    }
}

static void out_of_memory_calls_the_handler_and_is_recoverable(void) {
    tandem_options o = check_options();
    o.heap_min = 4u << 20;
    o.heap_max = 8u << 20;
    o.threads = 2;
    o.shadow_stack_slots = 1u << 16;
    CHECK_OK(tandem_init(&o));
    register_types();
    static oom_record rec;
    CHECK_OK(tandem_set_oom_handler(on_oom, &rec));
    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    rec.m = m;

    /* Small objects. */
    mark_last_error();
    size_t n = fill_heap(m, 1000);
    CHECK_ERROR_MENTIONS("out of memory");
    CHECK(tandem_last_error_code() == TANDEM_ERR_OUT_OF_MEMORY);
    CHECK(rec.calls == 1);
    CHECK(rec.reentry_refused);
    CHECK(rec.last_size >= 1000 && rec.last_size < 2048);
    CHECK(n * 1016 > (4u << 20) && n * 1016 <= (8u << 20)); /* most of the heap was usable */
    tandem_stats s = check_stats();
    CHECK(s.out_of_memory == 1);
    printf("out of memory after %zu rooted 1 KB objects (%zu KiB)\n", n, n * 1016 / 1024);

    /* Dropping the roots makes the memory available again. */
    while (tandem_root_depth(m) > 0) {
        CHECK(tandem_pop_root(m) != NULL);
    }
    CHECK_OK(tandem_collect(m));
    CHECK(tandem_alloc(m, blob_type, 1000) != NULL);

    /* Large objects (out of line). */
    mark_last_error();
    n = fill_heap(m, 64u << 10);
    CHECK_ERROR_MENTIONS("out of memory");
    CHECK(tandem_last_error_code() == TANDEM_ERR_OUT_OF_MEMORY);
    CHECK(rec.calls == 2);
    CHECK(rec.last_size >= (64u << 10));
    CHECK(n >= 32 && n <= 128);
    CHECK(check_stats().out_of_memory == 2);
    printf("out of memory after %zu rooted 64 KiB objects\n", n);
    while (tandem_root_depth(m) > 0) {
        CHECK(tandem_pop_root(m) != NULL);
    }
    CHECK_OK(tandem_collect(m));
    CHECK(tandem_alloc(m, blob_type, 64u << 10) != NULL);

    CHECK_OK(tandem_set_oom_handler(NULL, NULL));
    CHECK_OK(tandem_detach_thread(m));
    CHECK_OK(tandem_shutdown());
}

int main(void) {
    calls_before_init_fail_with_not_initialized();
    bad_options_fail_with_a_message_naming_them();
    options_are_set_and_read_back();
    init_with_test_options();
    bad_type_descriptions_are_rejected();
    register_types();

    tandem_mutator *m = tandem_attach_thread();
    CHECK(m != NULL);
    null_and_foreign_mutators_are_rejected(m);
    mutators_belong_to_their_thread(m);
    bad_allocations_return_null(m);
    shadow_stack_underflow_and_overflow_are_reported(m);
    global_root_misuse_is_reported();
    native_region_misuse_is_reported(m);
    bad_barrier_and_stats_arguments_are_reported(m);
    detaching_twice_is_reported(m);

    m = tandem_attach_thread(); /* a detached thread may attach again */
    CHECK(m != NULL);
    shutdown_from_an_attached_thread_does_not_wait_for_itself(m);
    calls_after_shutdown_fail_with_not_initialized(m);

    out_of_memory_calls_the_handler_and_is_recoverable(); /* and init works again */
    printf("misuse: all checks passed\n");
    return 0;
}
