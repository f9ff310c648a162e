/*
 * tandem.h — the C ABI of Tandem, a parallel, low-pause garbage collector for language VMs.
 *
 * Link with libtandem.a (plus -lpthread -ldl -lm) or libtandem.so. C11; every function
 * below is thread-safe unless it takes a tandem_mutator, which belongs to the thread that
 * attached it.
 *
 * Errors: functions return a tandem_result (TANDEM_OK is 0) or NULL/0, and set a message
 * for the calling thread, read with tandem_last_error(). No misuse aborts the process.
 *
 * Callbacks (finalizer triggers, the GC hook, the out-of-memory handler, destructors, trace
 * and visit functions) must return: leaving one by longjmp, pthread_exit or a C++
 * exception unwinds through the collector's frames, which is not supported (glibc then
 * aborts the process). A VM that must end a thread from one (CPython's exit of a daemon
 * thread at finalization) sets a flag and exits after the Tandem call returns.
 * Callbacks that run inside the collector's work (trace functions, the root callback,
 * destructors, the verify hook, tandem_walk_roots' callback) must not call Tandem to wait,
 * collect, allocate, walk the heap, attach, detach or shut down: such a call (any call with
 * a mutator included) fails with TANDEM_ERR_STATE naming the callback. Reading stays
 * allowed (tandem_sizeof, tandem_get_stats...), except from a destructor, which may call
 * nothing.
 *
 * Typical use:
 *   tandem_init(NULL);                       // defaults, overridden by TANDEM_* env vars
 *   tandem_register_type(&info, &my_type);   // once per type, before use
 *   tandem_mutator *m = tandem_attach_thread();   // in every thread that touches the heap
 *   void *obj = tandem_alloc(m, my_type, 0);      // inline fast path
 *   tandem_push_root(m, obj);                     // keep obj alive across allocations
 *   tandem_safepoint(m);                          // poll regularly (loops, calls)
 *   tandem_detach_thread(m);
 *   tandem_shutdown();
 */
#ifndef TANDEM_H
#define TANDEM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TANDEM_LIKELY(x) __builtin_expect(!!(x), 1)
#define TANDEM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define TANDEM_LIKELY(x) (x)
#define TANDEM_UNLIKELY(x) (x)
#endif

/* ---- Results ------------------------------------------------------------------------ */

/** Result of a Tandem call: TANDEM_OK or one of the error codes below. */
typedef int32_t tandem_result;

#define TANDEM_OK 0                    /**< Success. */
/** A NULL or malformed argument. An object argument outside the heap's address range
 *  (malloc'd or stack memory) is one; a pointer inside the heap that is not a live
 *  object's start is not detected (TANDEM_VERIFY checks the objects barriers see). */
#define TANDEM_ERR_INVALID_ARGUMENT 1
#define TANDEM_ERR_NOT_INITIALIZED 2   /**< Before tandem_init or after tandem_shutdown. */
#define TANDEM_ERR_ALREADY_INITIALIZED 3 /**< tandem_init called twice. */
#define TANDEM_ERR_CONFIG 4            /**< A bad option or TANDEM_* variable. */
#define TANDEM_ERR_BAD_TYPE 5          /**< A malformed type description. */
#define TANDEM_ERR_UNKNOWN_TYPE 6      /**< A type id that was never registered. */
#define TANDEM_ERR_SIZE_OVERFLOW 7     /**< An object size that overflows the heap. */
#define TANDEM_ERR_OUT_OF_MEMORY 8     /**< No memory left after a full collection. */
#define TANDEM_ERR_BAD_MUTATOR 9       /**< NULL, foreign or detached mutator. */
#define TANDEM_ERR_WRONG_THREAD 10     /**< A mutator used from another thread. */
#define TANDEM_ERR_SHADOW_STACK 11     /**< Shadow-stack overflow or underflow. */
#define TANDEM_ERR_ROOT 12             /**< Unknown or duplicate global root slot. */
#define TANDEM_ERR_STATE 13            /**< Not allowed in the current state. */
#define TANDEM_ERR_OS 14               /**< The OS refused memory or a thread. */
#define TANDEM_ERR_INTERNAL 15         /**< An internal error was caught. */

/** The calling thread's last error message ("" if none); valid until its next error. */
const char *tandem_last_error(void);

/** The calling thread's last error code (TANDEM_OK if none): the reason behind a NULL
 *  result. Like the message, it is kept until the thread's next error. */
tandem_result tandem_last_error_code(void);

/** The library version, e.g. "0.1.0". */
const char *tandem_version(void);

/* ---- Lifecycle ---------------------------------------------------------------------- */

/** Options for tandem_init. Zero-initialise, set size, then set what you need; a zero
 *  field means "default". TANDEM_* environment variables override these. */
typedef struct tandem_options {
    uint32_t size;               /**< sizeof(tandem_options): the ABI version check. */
    uint32_t threads;            /**< GC worker threads (TANDEM_THREADS). */
    uint64_t heap_min;           /**< Bytes kept committed (TANDEM_HEAP_MIN). */
    uint64_t heap_max;           /**< Heap limit in bytes (TANDEM_HEAP_MAX). */
    uint32_t verify;             /**< Non-zero: verify the heap at each GC and audit every tandem_write_ref (TANDEM_VERIFY). */
    uint32_t affinity;           /**< Non-zero: pin GC workers (TANDEM_AFFINITY). */
    uint64_t shadow_stack_slots; /**< Root slots per thread (TANDEM_SHADOW_STACK). */
    const char *mode;            /**< "stw", "concurrent" or NULL (TANDEM_MODE). */
    uint32_t conc_threads;       /**< Concurrent marking workers (TANDEM_CONC_THREADS). */
    uint32_t reserved;           /**< Zero. */
    const char *gc_trigger;      /**< "auto", "70%", "256M" or NULL (TANDEM_GC_TRIGGER). */
    const char *log;             /**< A log filter such as "info", or NULL (TANDEM_LOG): GC
                                      logs go to stderr unless the process has a Rust
                                      `tracing` subscriber already. */
    const char *uncommit_delay;  /**< "5s", "250ms", "0" or NULL: how long free memory stays
                                      committed before it is returned
                                      (TANDEM_UNCOMMIT_DELAY). */
    const char *gc_growth;       /**< "2.5" (default), "3" or NULL: heap growth over live
                                      bytes before a cycle: the heap may hold the
                                      survivors' lines plus (growth - 1) times their
                                      bytes (TANDEM_GC_GROWTH). */
} tandem_options;

/** Starts the runtime. opts may be NULL (defaults). Fails with TANDEM_ERR_CONFIG and a
 *  message naming the variable when an option or environment variable is bad, and with
 *  TANDEM_ERR_STATE when the library implements another TANDEM_ABI_VERSION than the
 *  header the caller was compiled with (through the macro below). */
tandem_result tandem_init(const tandem_options *opts);
/** tandem_init that first checks the caller's TANDEM_ABI_VERSION (what the macro calls). */
tandem_result tandem_init_abi(uint32_t abi_version, const tandem_options *opts);
/** The TANDEM_ABI_VERSION the library implements. */
uint32_t tandem_abi_version(void);
#define tandem_init(opts) tandem_init_abi(TANDEM_ABI_VERSION, (opts))

/** Fills *out (set out->size first) with the options the runtime runs with, after the
 *  defaults and the environment were applied: conc_threads is the number of concurrent
 *  workers actually used; the strings stay valid until the next tandem_init. */
tandem_result tandem_get_options(tandem_options *out);

/** Stops the runtime. Threads still attached keep allocating from the memory the heap
 *  holds (nothing is freed any more) until it is full or they need a collection, which
 *  fails with TANDEM_ERR_NOT_INITIALIZED; detach them first. The heap's memory goes back
 *  once the last of them detaches. tandem_init may be called again afterwards. */
tandem_result tandem_shutdown(void);

/* ---- Types (RPython-shaped) ---------------------------------------------------------- */

/** A registered type's id (never 0). */
typedef uint32_t tandem_type_id;

/** Called by a trace function for each reference slot. */
typedef void (*tandem_visit_fn)(void **slot, void *ctx);
/** A type's own tracer: calls visit(slot, ctx) for every reference slot of obj. The
 *  collector scans a long array described by item_ref_offsets a few hundred items at a
 *  time (bounded mark stack, parallel scan); an object with a tracer is visited whole in
 *  one call, so describe large arrays by their offsets rather than with a tracer. In
 *  concurrent mode it runs on a GC thread while the program runs: a field it reads to
 *  find the slots (a length, a stack pointer) may change meanwhile, so it reads each such
 *  field once, and every slot it may visit holds a reference or NULL at every moment
 *  (stores to them go through the barriers, like any reference field's). */
typedef void (*tandem_trace_fn)(void *obj, tandem_visit_fn visit, void *ctx);
/** A type's destructor (PyPy's light finalizer): called exactly once for each dead object
 *  of the type, on a GC thread, after the cycle that found it dead and before its memory
 *  is reused. It may read the object's own non-reference fields and free raw memory it
 *  owns; it must not allocate, call Tandem, or touch other GC objects (they may be dead
 *  too). Objects of such types always take the out-of-line allocation path. A Tandem call
 *  from a destructor fails with TANDEM_ERR_STATE ("called from a destructor"); with
 *  TANDEM_VERIFY every allocation goes out of line, so an inline tandem_alloc is caught
 *  too (without it, an inline allocation from a destructor is undetected and corrupts
 *  the heap). */
typedef void (*tandem_destructor_fn)(void *obj);

/** A type description. Objects start with Tandem's 8-byte header, so offsets are >= 8.
 *  Var-size types store a size_t length at length_offset (written by the allocator, read
 *  by the collector for the object's size: the VM must not change it; tandem_shrink
 *  shortens an object) and their items start at fixed_size. Sizes are rounded up to 8.
 *  A reference offset given twice, or a length_offset on a fixed-size type (item_size 0;
 *  leave it 0), fails with TANDEM_ERR_BAD_TYPE. */
typedef struct tandem_type_info {
    uint32_t size;                    /**< sizeof(tandem_type_info). */
    uint32_t flags;                   /**< VM flags, kept with the type. */
    size_t fixed_size;                /**< Bytes of the fixed part, header included. */
    size_t item_size;                 /**< Bytes per item; 0 for fixed-size types. */
    size_t length_offset;             /**< Offset of the size_t length (var-size only). */
    const size_t *ref_offsets;        /**< Offsets of references in the fixed part. */
    size_t n_ref_offsets;             /**< How many. */
    const size_t *item_ref_offsets;   /**< Offsets of references inside each item. */
    size_t n_item_ref_offsets;        /**< How many. */
    tandem_trace_fn trace;            /**< Optional tracer used instead of the offsets. */
    const char *name;                 /**< Optional name for messages; may be NULL. */
    /* Added later: a client built against a header without it passes the smaller size. */
    tandem_destructor_fn destructor;  /**< Optional destructor; may be NULL. */
} tandem_type_info;

/** Registers a type and stores its id in *out. The description is copied. */
tandem_result tandem_register_type(const tandem_type_info *info, tandem_type_id *out);

/** Most type ids a process can register. */
#define TANDEM_MAX_TYPES 65536

/** One entry of the layout table the inline allocator reads (all zero if unregistered;
 *  fixed_size is 0 for types the inline path must not allocate: types with a destructor,
 *  and every type under TANDEM_VERIFY). */
typedef struct tandem_type_layout {
    uint32_t fixed_size;
    uint32_t item_size;
    uint32_t length_offset;
    uint32_t flags;
} tandem_type_layout;

/** The layout table, indexed by type id; filled by tandem_register_type. Read-only for
 *  the VM (not const in C because Tandem writes it when types are registered). */
extern tandem_type_layout tandem_type_layouts[TANDEM_MAX_TYPES];

/* ---- Threads ------------------------------------------------------------------------ */

/** A thread's handle. Its first fields are read by the inline fast paths below; the rest
 *  is private. Never copy it or use it from another thread. */
typedef struct tandem_mutator {
    uintptr_t cursor;       /**< TLAB: next free byte. */
    uintptr_t limit;        /**< TLAB: end of the bump window. */
    void **ss_top;          /**< Shadow stack: one past the top slot. */
    void **ss_limit;        /**< Shadow stack: one past the last usable slot. */
    void **ss_base;         /**< Shadow stack: first slot. */
    uint32_t state;         /**< Safepoint state word (atomic; written by Tandem). */
    union {
        uint8_t barriers;   /**< The barriers on for this thread: TANDEM_BARRIER_* bits. */
        uint8_t gc_state;   /**< The first header's name for `barriers` (deprecated). */
    };
} tandem_mutator;

/** Attaches the calling thread (once per thread); NULL on error. */
tandem_mutator *tandem_attach_thread(void);

/** Detaches m; a second detach fails with TANDEM_ERR_BAD_MUTATOR. Threads that exit while
 *  attached are detached automatically, by a pthread key destructor of Tandem's: after
 *  the thread's C++ thread_local destructors, which may use the mutator; the thread's other
 *  pthread key destructors run before or after it (in key order), and one that finds the
 *  thread detached may attach again (it is detached in the next round). A thread
 *  cancelled (pthread_cancel) while inside a Tandem call acts on it at its next
 *  cancellation point after the call returns: every call runs with cancellation disabled,
 *  callbacks it makes (finalizer triggers, the out-of-memory handler) included. */
tandem_result tandem_detach_thread(tandem_mutator *m);

/* ---- Allocation --------------------------------------------------------------------- */

/** Objects larger than this go to the large-object space (out of line). */
#define TANDEM_LARGE_OBJECT_THRESHOLD 8192
/** Lengths at or above this always take the slow path (keeps the size sum overflow-free). */
#define TANDEM_INLINE_MAX_LENGTH (1u << 24)

/** Slow path of tandem_alloc; NULL on error (OOM calls the OOM handler first). */
void *tandem_alloc_slow(tandem_mutator *m, tandem_type_id type, size_t length);

/** Allocates a zeroed object of `type` with `length` items (ignored for fixed-size
 *  types): the header and length field are set, every other byte is 0. Returns NULL on
 *  error (unknown type, size overflow, out of memory, bad mutator). May collect: keep live
 *  objects rooted. */
static inline void *tandem_alloc(tandem_mutator *m, tandem_type_id type, size_t length) {
    if (TANDEM_LIKELY(type < TANDEM_MAX_TYPES && length < TANDEM_INLINE_MAX_LENGTH)) {
        const tandem_type_layout *t = &tandem_type_layouts[type];
        uint64_t size = ((uint64_t)t->fixed_size + (uint64_t)t->item_size * length + 7) & ~(uint64_t)7;
        if (TANDEM_LIKELY(t->fixed_size != 0 && size <= TANDEM_LARGE_OBJECT_THRESHOLD)) {
            uintptr_t p = m->cursor;
            uintptr_t n = p + (uintptr_t)size;
            if (TANDEM_LIKELY(n <= m->limit)) {
                m->cursor = n;
                *(uint64_t *)p = (uint64_t)type << 32;
                if (t->item_size != 0) {
                    *(size_t *)(p + t->length_offset) = length;
                }
                return (void *)p;
            }
        }
    }
    return tandem_alloc_slow(m, type, length);
}

/** Allocates an object that will never move (for buffers handed to native code). */
void *tandem_alloc_nonmoving(tandem_mutator *m, tandem_type_id type, size_t length);

/** Allocates an object of a type without references (no ref offsets, no trace function:
 *  strings, byte and number arrays) whose bytes the VM writes itself, like RPython's
 *  non-clearing mallocs: the header and length are set, but a large object's bytes are
 *  whatever its reused pages held (a small one is zeroed all the same), so a VM that fills
 *  the object at once does not write it twice. NULL with TANDEM_ERR_INVALID_ARGUMENT for a
 *  type with references; otherwise as tandem_alloc (a safepoint). */
void *tandem_alloc_uninit(tandem_mutator *m, tandem_type_id type, size_t length);

/** Identity hash of obj, stable for its whole life, across moves; 0 on error. */
uint64_t tandem_identity_hash(tandem_mutator *m, void *obj);

/* ---- Moving and pinning ------------------------------------------------------------- */

/*
 * The collector compacts the heap by moving objects out of sparse blocks
 * (TANDEM_EVACUATION: `concurrent` by default, `pause`, `off`). A moved object keeps its
 * contents and identity hash; the VM sees the new address through its root slots and
 * tandem_read_ref (see the barrier rules below). An object handed to native code that
 * may run across a safepoint (I/O buffers, callbacks) must be pinned first, or allocated
 * with tandem_alloc_nonmoving. Objects over TANDEM_LARGE_OBJECT_THRESHOLD never move.
 * With `pause` objects move only while every thread is stopped, so the LOAD bit never
 * turns on; in concurrent mode a heap left fragmented is then compacted by one
 * stop-the-world collection (a long pause: the whole trace and the copying).
 */

/** Pins obj: it does not move until as many tandem_unpin calls (counted, thread-safe, at
 *  most 65535 pins at once: one more fails with TANDEM_ERR_STATE). A pin does not keep
 *  obj alive: keep it reachable (a root slot) for as long as native code uses it. */
tandem_result tandem_pin(tandem_mutator *m, void *obj);
/** Removes one pin of obj; TANDEM_ERR_STATE when it has none (non-moving objects are
 *  pinned for life and have no count to remove). */
tandem_result tandem_unpin(tandem_mutator *m, void *obj);
/** 1 when obj is pinned (counted pins or allocated non-moving), else 0 (also on error). */
int tandem_is_pinned(tandem_mutator *m, void *obj);

/* ---- Roots -------------------------------------------------------------------------- */

/** Slow path of tandem_push_root: reports overflow. */
tandem_result tandem_push_root_slow(tandem_mutator *m, void *value);
/** Slow path of tandem_pop_root: reports underflow, returns NULL. */
void *tandem_pop_root_slow(tandem_mutator *m);

/** Pushes value (may be NULL) on the shadow stack. Objects referenced only from C locals
 *  must be pushed before anything that may collect (allocation, safepoint, collect). */
static inline tandem_result tandem_push_root(tandem_mutator *m, void *value) {
    if (TANDEM_UNLIKELY(m->ss_top == m->ss_limit)) {
        return tandem_push_root_slow(m, value);
    }
    *m->ss_top++ = value;
    return TANDEM_OK;
}

/** Pops the top root and returns its (possibly updated) value; NULL with an error set
 *  when the stack is empty. */
static inline void *tandem_pop_root(tandem_mutator *m) {
    if (TANDEM_UNLIKELY(m->ss_top == m->ss_base)) {
        return tandem_pop_root_slow(m);
    }
    return *--m->ss_top;
}

/** The address of the root slot `depth` below the top (0 = top); read roots back through
 *  it after anything that may collect. No bounds check: depth < tandem_root_depth(m). */
static inline void **tandem_root_slot(tandem_mutator *m, size_t depth) {
    return m->ss_top - 1 - depth;
}

/** Number of roots on the shadow stack. */
static inline size_t tandem_root_depth(const tandem_mutator *m) {
    return (size_t)(m->ss_top - m->ss_base);
}

/** Slow path of tandem_pop_roots_to: reports a depth above the current one. */
tandem_result tandem_pop_roots_to_slow(tandem_mutator *m, size_t depth);

/** Drops every root above depth, as that many pops would: for a non-local exit (a
 *  longjmp back to a frame that saved tandem_root_depth, a caught exception) and coroutine
 *  switches. A depth above the current one fails with TANDEM_ERR_SHADOW_STACK and drops
 *  nothing. The shadow stack is one per thread: a coroutine's or generator's saved values
 *  live in a heap object the VM keeps reachable (a frame), in global roots, or in slots
 *  the root callback reports, and are copied onto the shadow stack while it runs. */
static inline tandem_result tandem_pop_roots_to(tandem_mutator *m, size_t depth) {
    if (TANDEM_UNLIKELY(depth > (size_t)(m->ss_top - m->ss_base))) {
        return tandem_pop_roots_to_slow(m, depth);
    }
    m->ss_top = m->ss_base + depth;
    return TANDEM_OK;
}

/** Registers a global root slot (kept valid by the VM until removed). A NULL or
 *  misaligned slot fails with TANDEM_ERR_INVALID_ARGUMENT, one already registered with
 *  TANDEM_ERR_ROOT. */
tandem_result tandem_add_root(void **slot);
/** Unregisters a global root slot. */
tandem_result tandem_remove_root(void **slot);

/** The VM's root scanner: calls visit(slot, ctx) for each extra root slot. Runs on a GC
 *  thread while mutators are stopped; must not call Tandem. */
typedef void (*tandem_root_fn)(tandem_visit_fn visit, void *ctx, void *data);
/** Sets (NULL clears) the root callback, called at every collection with data. */
tandem_result tandem_set_root_callback(tandem_root_fn fn, void *data);

/* ---- Barriers ----------------------------------------------------------------------- */

/*
 * The barrier byte (m->barriers). Each inline fast path below tests one bit of it, so the
 * collector can turn any barrier on for any reason (concurrent marking, evacuation, the
 * generational mode's remembered set) without the VM being recompiled. The bits change
 * only while the thread is stopped at a safepoint: between two calls that may collect
 * (see below), a thread sees one value.
 *
 * Calls that may collect ("safepoints"): tandem_alloc and the other allocation functions
 * (tandem_alloc_slow, tandem_alloc_nonmoving, tandem_alloc_uninit), tandem_safepoint (and
 * its slow path),
 * tandem_collect and tandem_leave_native. Nothing else collects or changes the barrier
 * byte: the barriers' slow paths, tandem_identity_hash, pinning and the root functions
 * do not.
 *
 * Rules for a VM (the JIT's inline code must follow them too):
 *  1. Every store of a reference into a heap object goes through tandem_write_ref, or
 *     follows a tandem_object_barrier call on that object made since the thread's last
 *     safepoint.
 *  2. Skipping the barrier: the stores that initialise an object returned by an
 *     allocation function need no barrier until the thread's next safepoint (including
 *     the next allocation). Why: barriers turn on only at a safepoint. If marking was
 *     already on when the object was allocated, it is allocated black and has no snapshot
 *     values to preserve; if marking was off, it stays off until the next safepoint, and
 *     an object's fields at the snapshot are whatever they hold then. With
 *     TANDEM_GENERATIONAL such an object is young until the next cycle has marked it
 *     (a large one allocated during marking too), so no remembered set needs its
 *     stores. After the next safepoint the object is like any other. (TANDEM_VERIFY's
 *     store audit sees only the stores that go through tandem_write_ref.)
 *  3. Every load of a reference from a heap object goes through tandem_read_ref (the load
 *     barrier: while objects move, it returns the object's current address and repairs
 *     the field). Raw loads of reference fields are allowed only while the LOAD bit is off
 *     and only for references that are not kept past the thread's next safepoint.
 *  4. References kept across a safepoint live in root slots (shadow stack, global roots,
 *     the root callback) and are read back from the slot afterwards: the collector may
 *     move objects and updates root slots, never C locals. Between two safepoints a
 *     reference in a local stays valid. Two references are equal exactly when they are
 *     the same pointer (the collector never lets a thread hold two addresses of one
 *     object).
 *  5. Non-reference fields (numbers, bytes) are plain memory: read and write them directly
 *     through the address the thread holds.
 *
 * Memory order: tandem_write_ref stores with release and tandem_read_ref loads with
 * acquire (plain moves on x86-64), so an object's initialising stores are visible to any
 * thread that loads a reference to it, and threads may share objects without a lock (no
 * C11 data race on reference fields). A VM that writes reference fields with raw stores
 * in initialisation (rule 2) publishes the object with a later tandem_write_ref.
 */

/** The ABI this header describes; tandem_init checks it against the library's. */
#define TANDEM_ABI_VERSION 4u

/** barriers bit: tandem_write_ref takes its slow path (logs the overwritten reference). */
#define TANDEM_BARRIER_WRITE 1u
/** barriers bit: tandem_object_barrier logs objects whose LOGGED flag is clear. */
#define TANDEM_BARRIER_OBJECT 2u
/** barriers bit: tandem_array_copy_refs takes its slow path. */
#define TANDEM_BARRIER_ARRAY_COPY 4u
/** barriers bit: tandem_read_ref takes its slow path (resolves moved objects). */
#define TANDEM_BARRIER_LOAD 8u
/** barriers bit: tandem_write_ref takes its slow path for every store, null field or not
 *  (WRITE alone skips stores into null fields). TANDEM_VERIFY keeps it on to audit each
 *  store (obj an object, slot one of its reference fields, value NULL or an object: a
 *  violation counts in stats.verify_errors); a remembered set would use it. */
#define TANDEM_BARRIER_STORE 16u
/** barriers bit (TANDEM_GENERATIONAL): a store into an object whose header has
 *  TANDEM_FLAG_REMEMBER (an old object not yet in the remembered set), an object barrier
 *  on one, or an array copy into one, takes its slow path, which records the object. */
#define TANDEM_BARRIER_REMEMBER 32u

/** Deprecated names of the first header: "marking is on" and "objects may move". */
#define TANDEM_GC_MARKING (TANDEM_BARRIER_WRITE | TANDEM_BARRIER_OBJECT | TANDEM_BARRIER_ARRAY_COPY)
#define TANDEM_GC_EVACUATING TANDEM_BARRIER_LOAD
#define TANDEM_GC_UPDATING_REFS TANDEM_BARRIER_LOAD

/** Header flag: the object's fields were logged this cycle (object barrier). */
#define TANDEM_FLAG_LOGGED (1u << 5)
/** Header flag: an old object that the REMEMBER barrier must record before a reference is
 *  stored into it (generational mode). */
#define TANDEM_FLAG_REMEMBER ((uint64_t)1 << 25)

tandem_result tandem_write_ref_slow(tandem_mutator *m, void *obj, void **slot, void *value);
tandem_result tandem_object_barrier_slow(tandem_mutator *m, void *obj);
tandem_result tandem_array_copy_refs_slow(tandem_mutator *m, void *dst_obj, void **dst,
                                          void *src_obj, void *const *src, size_t n);
void *tandem_read_ref_slow(tandem_mutator *m, void *obj, void **slot);

/** Stores value into the reference field *slot of obj (write barrier + release store). */
static inline void tandem_write_ref(tandem_mutator *m, void *obj, void **slot, void *value) {
    const uint8_t barriers = m->barriers;
    if (TANDEM_UNLIKELY(barriers & (TANDEM_BARRIER_WRITE | TANDEM_BARRIER_STORE |
                                    TANDEM_BARRIER_REMEMBER))) {
        /* SATB logs only the reference a store overwrites: a null field (the first store into
         * a fresh object) needs no call, unless STORE asks to see every store. REMEMBER
         * calls out only for an old object not yet remembered. */
        if ((barriers & TANDEM_BARRIER_STORE) ||
            ((barriers & TANDEM_BARRIER_WRITE) && __atomic_load_n(slot, __ATOMIC_RELAXED) != NULL) ||
            ((barriers & TANDEM_BARRIER_REMEMBER) &&
             (__atomic_load_n((const uint64_t *)obj, __ATOMIC_RELAXED) & TANDEM_FLAG_REMEMBER))) {
            (void)tandem_write_ref_slow(m, obj, slot, value);
            return;
        }
    }
    /* Release: whoever loads value from this field (a marker, another thread) sees the
     * object value points to as it was initialised. */
    __atomic_store_n(slot, value, __ATOMIC_RELEASE);
}

/** Call before the first store into obj's reference fields after a safepoint (RPython's
 *  object-granularity barrier); then plain stores may follow until the next safepoint.
 *  It covers stores only: loads still go through tandem_read_ref while the LOAD bit is on
 *  (rule 3; a raw load may return an old copy, which the cycle frees). Its slow path
 *  records every reference slot of obj (once per object and cycle): for a long array that
 *  a VM stores into a few items at a time, tandem_write_ref per store costs far less than
 *  recording a million slots. */
static inline void tandem_object_barrier(tandem_mutator *m, void *obj) {
    /* An acquire load (a plain load on x86-64, ldar on AArch64):
     * the stores that follow must not become visible before the LOGGED flag was seen, or
     * the thread that logged the object could have read the new values. */
    const uint8_t barriers = m->barriers;
    if (TANDEM_UNLIKELY(barriers & (TANDEM_BARRIER_OBJECT | TANDEM_BARRIER_REMEMBER))) {
        const uint64_t h = __atomic_load_n((const uint64_t *)obj, __ATOMIC_ACQUIRE);
        if (((barriers & TANDEM_BARRIER_OBJECT) && !(h & TANDEM_FLAG_LOGGED)) ||
            ((barriers & TANDEM_BARRIER_REMEMBER) && (h & TANDEM_FLAG_REMEMBER))) {
            (void)tandem_object_barrier_slow(m, obj);
        }
    }
}

/** Copies n reference slots from src (in src_obj) to dst (in dst_obj); overlap allowed. */
static inline void tandem_array_copy_refs(tandem_mutator *m, void *dst_obj, void **dst,
                                          void *src_obj, void *const *src, size_t n) {
    size_t i;
    const uint8_t barriers = m->barriers;
    if (TANDEM_UNLIKELY((barriers & TANDEM_BARRIER_ARRAY_COPY) ||
                        ((barriers & TANDEM_BARRIER_REMEMBER) &&
                         (__atomic_load_n((const uint64_t *)dst_obj, __ATOMIC_RELAXED) &
                          TANDEM_FLAG_REMEMBER)))) {
        (void)tandem_array_copy_refs_slow(m, dst_obj, dst, src_obj, src, n);
        return;
    }
    /* Slot by slot, as tandem_read_ref and tandem_write_ref would, in the direction that
     * is safe for overlapping ranges. */
    if ((uintptr_t)dst < (uintptr_t)src) {
        for (i = 0; i < n; i++) {
            __atomic_store_n(&dst[i], __atomic_load_n(&src[i], __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
        }
    } else {
        for (i = n; i > 0; i--) {
            __atomic_store_n(&dst[i - 1], __atomic_load_n(&src[i - 1], __ATOMIC_ACQUIRE),
                             __ATOMIC_RELEASE);
        }
    }
}

/** Loads the reference field *slot of obj (acquire load + load-reference barrier). */
static inline void *tandem_read_ref(tandem_mutator *m, void *obj, void **slot) {
    if (TANDEM_UNLIKELY(m->barriers & TANDEM_BARRIER_LOAD)) {
        return tandem_read_ref_slow(m, obj, slot);
    }
    return __atomic_load_n(slot, __ATOMIC_ACQUIRE);
}

/* ---- Safepoints --------------------------------------------------------------------- */

/** State-word bit set while the collector needs this thread stopped. */
#define TANDEM_STOP_REQUESTED 4u
/** State-word bit set while the collector asks this thread to hand over its barrier
 *  buffers at its next poll (a handshake; the thread does not stop). */
#define TANDEM_HANDSHAKE_REQUESTED 8u
/** The state-word bits the safepoint poll tests. */
#define TANDEM_POLL_MASK (TANDEM_STOP_REQUESTED | TANDEM_HANDSHAKE_REQUESTED)

/** Slow path of tandem_safepoint. */
tandem_result tandem_safepoint_slow(tandem_mutator *m);

/** The safepoint poll: call it regularly (loop back-edges, calls). Parks while a
 *  collection needs the world stopped, and answers the collector's handshakes. A stop waits
 *  for every attached thread that is not in a native region: one that has not polled after
 *  a second is named (OS thread id and name) in a warning on the TANDEM_LOG output, and
 *  again each time the wait doubles. */
static inline tandem_result tandem_safepoint(tandem_mutator *m) {
    if (TANDEM_UNLIKELY(__atomic_load_n(&m->state, __ATOMIC_RELAXED) & TANDEM_POLL_MASK)) {
        return tandem_safepoint_slow(m);
    }
    return TANDEM_OK;
}

/** Enters a native region (a blocking call): collections may run meanwhile, so the thread
 *  must not touch the heap until tandem_leave_native, except the non-reference bytes of
 *  pinned objects (tandem_pin, tandem_alloc_nonmoving) the VM keeps reachable: those stay
 *  where they are, and native code may read and write them. An allocation's slow path, a
 *  collection (tandem_collect, _ex, _step) or tandem_weakref_new inside the region fails
 *  with TANDEM_ERR_STATE (the region holds); the inline fast paths cannot check, so keep
 *  them out of it. tandem_detach_thread inside a region leaves it first, and a thread may
 *  exit inside one. */
tandem_result tandem_enter_native(tandem_mutator *m);
/** Leaves a native region, waiting while a collection runs. */
tandem_result tandem_leave_native(tandem_mutator *m);

/* ---- Control and information -------------------------------------------------------- */

/** Runs a full collection and returns when it is done. */
tandem_result tandem_collect(tandem_mutator *m);

/** Called with the size of an allocation that failed after a full collection, before
 *  the allocation returns NULL (it is not retried: memory the handler frees serves the
 *  next allocation). Must not call Tandem with the failing thread's mutator: such a call
 *  fails with TANDEM_ERR_STATE (an inline fast path is not checked). */
typedef void (*tandem_oom_fn)(size_t size, void *data);
/** Sets (NULL clears) the out-of-memory handler. */
tandem_result tandem_set_oom_handler(tandem_oom_fn fn, void *data);

/** Statistics. Set size = sizeof(tandem_stats) before calling tandem_get_stats. */
typedef struct tandem_stats {
    uint32_t size;             /**< sizeof(tandem_stats). */
    uint32_t reserved;         /**< Zero. */
    uint64_t gcs;              /**< Pauses so far, every kind (not cycles). */
    uint64_t pause_total_ns;   /**< Sum of pauses. */
    uint64_t pause_max_ns;     /**< Longest pause. */
    uint64_t pause_last_ns;    /**< Most recent pause. */
    uint64_t ttsp_max_ns;      /**< Longest time-to-safepoint. */
    uint64_t bytes_allocated;  /**< Bytes handed out to objects. */
    uint64_t heap_live;        /**< Live bytes after the last completed cycle. */
    uint64_t heap_in_use;      /**< Live bytes plus bytes allocated since. */
    uint64_t heap_committed;   /**< Bytes committed now. */
    uint64_t heap_peak;        /**< Most bytes committed at once. */
    uint64_t out_of_memory;    /**< Allocations failed after a full collection. */
    uint64_t verify_errors;    /**< Problems found by heap verification. */
    uint64_t pause_histogram[32]; /**< Pauses in [2^i, 2^(i+1)) microseconds. */
    uint64_t cycles;           /**< Completed collection cycles (concurrent: two pauses each). */
    uint64_t stall_ns;         /**< Time mutators stalled in allocation waiting for a GC. */
    /** Longest time one mutator stood still at a safepoint, as that thread saw it: from
     *  noticing the stop until running again, so it includes waiting for a core after the
     *  resume when the machine has more runnable threads than cores. */
    uint64_t mutator_stop_max_ns;
    uint64_t mutator_stop_histogram[32]; /**< Mutator stops in [2^i, 2^(i+1)) microseconds. */
    uint64_t stall_max_ns;     /**< Longest single allocation stall. */
    uint64_t longest_wait_ns;  /**< Longest any thread waited on the collector: the longest
                                    pause, observed stop or allocation stall. */
    /* Added later: a client built against a header without the fields below passes the
     * smaller size and gets the fields above. */
    uint64_t assist_ns;        /**< Time mutators spent marking in assists: paying for what
                                    they allocate while concurrent marking runs. */
    uint64_t assist_objects;   /**< Objects mutators scanned in assists. */
    /* Added with TANDEM_ABI_VERSION 2 (the two older sizes are still accepted). */
    uint64_t evacuated_bytes;  /**< Bytes copied to compact the heap (TANDEM_EVACUATION). */
    uint64_t evacuated_objects; /**< Objects copied to compact the heap. */
    /* Added with the VM services (the older sizes are still accepted). */
    uint64_t weakrefs_cleared; /**< Weak references cleared because their target died. */
    uint64_t finalized;        /**< Objects delivered to finalizer queues. */
    uint64_t destructed;       /**< Destructors called. */
    uint64_t memory_pressure;  /**< Raw memory owned by live objects (add_memory_pressure). */
    /* Added with the resume statistics (the older sizes are still accepted). */
    /** Longest a mutator took to run again after a resume (its wake-up, then the wait for a
     *  core): the part of a mutator stop the pause itself did not take. */
    uint64_t mutator_resume_max_ns;
    uint64_t mutator_resume_histogram[32]; /**< That part of each stop, in [2^i, 2^(i+1)) us. */
    /* Added with the collector's CPU time (the older sizes are still accepted). */
    /** CPU time the collector's own threads (GC workers, control thread) have used, as of
     *  the last cycle's end; with assist_ns, what collecting has cost in CPU time (set it
     *  against the process's, e.g. getrusage, for the collector's share). 0 where thread
     *  CPU clocks cannot be read. */
    uint64_t collector_cpu_ns;
    /* Added with the young generation (the older sizes are still accepted). */
    uint64_t nursery_cycles; /**< Of `cycles`, nursery cycles (TANDEM_GENERATIONAL). */
} tandem_stats;

/** Pause kinds (tandem_pause.kind). */
#define TANDEM_PAUSE_STW 0        /**< A whole stop-the-world collection. */
#define TANDEM_PAUSE_INIT_MARK 1  /**< Start of a concurrent cycle. */
#define TANDEM_PAUSE_FINAL_MARK 2 /**< End of concurrent marking. */
#define TANDEM_PAUSE_DEGENERATE 3 /**< A final mark that finished the whole trace. */
/** Why a collection ran (tandem_pause.cause). */
#define TANDEM_CAUSE_TRIGGER 0
#define TANDEM_CAUSE_ALLOCATION_FAILURE 1
#define TANDEM_CAUSE_EXPLICIT 2
#define TANDEM_CAUSE_YOUNG 3

/** One pause of the log. */
typedef struct tandem_pause {
    uint32_t kind;        /**< TANDEM_PAUSE_*. */
    uint32_t cause;       /**< TANDEM_CAUSE_*. */
    uint64_t start_ns;    /**< From tandem_init to the stop request. */
    uint64_t duration_ns; /**< Stop request to resume. */
    uint64_t ttsp_ns;     /**< Stop request until every thread had stopped. */
    uint64_t heap_before; /**< Heap bytes in use when the cycle started. */
    uint64_t heap_after;  /**< Live bytes after the cycle: on stw and final-mark/degenerate
                               records (the latter once the concurrent sweep ended); 0 on
                               init-mark records and while not known. */
} tandem_pause;

/** Copies the most recent pauses (at most capacity, oldest first; the runtime keeps the
 *  last 65536) to out and their number to *written. */
tandem_result tandem_get_pauses(tandem_pause *out, size_t capacity, size_t *written);

/** Fills *out with the current statistics. */
tandem_result tandem_get_stats(tandem_stats *out);

/* ---- Services for language VMs (Python's weakref, __del__, id, gc module) ----------- */

/*
 * The collector settles weak references, finalizers and destructors at the end of each
 * cycle's marking (stw mode: in its pause; concurrent mode: right after the pause that ends
 * marking, while the program runs, except the weak slots of at most 16384 weakrefs, which
 * that pause settles itself; with more, a tandem_weakref_get made meanwhile answers as the
 * settled slot will, and the pause stays as short as with none), in this order:
 *   1. every weak reference whose target is unreachable is cleared (so no weakref hands
 *      out an object a finalizer or destructor is about to see);
 *   2. unreachable objects registered with a finalizer queue are kept alive, with
 *      everything they reach, and delivered to their queue: an object is delivered once
 *      no other unreachable finalizable object outside its cycle reaches it (if A reaches
 *      B and both die, A comes first and B in a later cycle; objects in a reference cycle
 *      come together, in any order);
 *   3. unreachable objects of types with a destructor (still unreachable after step 2)
 *      have their destructor called once, before their memory is reused.
 * With TANDEM_GENERATIONAL a young-only (nursery) cycle cannot tell which old objects
 * died, so it delivers no finalizable object: it keeps them, with what they reach, for the
 * next full cycle (at most 8 nursery cycles later, or tandem_collect_ex FULL). Weak
 * references and destructors of young objects are settled in every cycle.
 */

/** A new weak reference (a small GC object) to target (NULL: an empty one). target need
 *  not be rooted across the call; the weakref itself is an ordinary object to root. NULL
 *  on error. There are no ephemerons: a weak-keyed table (Lua's weak tables, JavaScript's
 *  WeakMap) whose values refer to their keys keeps those keys alive. */
void *tandem_weakref_new(tandem_mutator *m, void *target);
/** The target of weakref wr, or NULL once the target died (NULL with
 *  TANDEM_ERR_INVALID_ARGUMENT for an object that is not a weakref, TANDEM_ERR_STATE inside
 *  a native region). During concurrent marking the result is kept alive by the cycle, so
 *  it may be stored anywhere. Weak references follow their targets when they move. */
void *tandem_weakref_get(tandem_mutator *m, void *wr);

/** A finalizer queue (PyPy's FinalizerQueue). */
typedef uint32_t tandem_finalizer_queue;
/** Called on a mutator thread (in a safepoint poll, at the start of an allocation slow
 *  path, before it allocates, or in tandem_collect_ex FULL or YOUNG; never re-entrantly,
 *  never on a GC thread, never inside a native region) after a cycle that delivered
 *  objects to the queue. It may call Tandem with that thread's mutator, take the objects
 *  with tandem_next_dead and run the VM's finalizers. Since it runs inside those calls, a
 *  thread must not make them while holding a (non-recursive) lock its finalizers take: it
 *  would wait on itself. Release such a lock first, or have the finalizers take it with
 *  trylock and defer their work when it is held. (A separate matter: a thread that waits
 *  for a lock another thread holds across collections waits inside a native region, so
 *  that collections need not wait for it.) */
typedef void (*tandem_trigger_fn)(void *data);
/** Creates a queue; trigger may be NULL (the VM then polls tandem_next_dead). At most
 *  65536 queues: one more fails with TANDEM_ERR_STATE. */
tandem_result tandem_finalizer_queue_new(tandem_trigger_fn trigger, void *data,
                                         tandem_finalizer_queue *out);
/** Registers obj with queue q: once obj is unreachable, it is delivered to q (once per
 *  registration: registered twice, it is delivered twice; register again to finalize a
 *  resurrected object again). */
tandem_result tandem_register_finalizer(tandem_mutator *m, tandem_finalizer_queue q, void *obj);
/** Takes the next dead object of q (it and what it reaches stay alive until then, and
 *  after as long as the VM holds it); NULL when q has none (NULL with
 *  TANDEM_ERR_INVALID_ARGUMENT for a queue that was never created, as
 *  tandem_register_finalizer fails). */
void *tandem_next_dead(tandem_mutator *m, tandem_finalizer_queue q);
/** Neither obj's destructor nor a finalizer queue will see obj die. */
tandem_result tandem_ignore_finalizer(tandem_mutator *m, void *obj);

/** An integer unique among live objects and stable for obj's whole life (Python's id()):
 *  its address, after which the object never moves (as if allocated non-moving). 0 on
 *  error. */
uint64_t tandem_id(tandem_mutator *m, void *obj);
/** The size of obj in bytes, header included, and the word that keeps an identity hash
 *  once the object moved after tandem_identity_hash (8 bytes more from then on); 0 on
 *  error. */
size_t tandem_sizeof(void *obj);
/** Stores obj's type in *out: one the VM registered, or Tandem's own weakref type. A
 *  verify hook or heap walk uses it to skip objects it did not register. */
tandem_result tandem_type_of(void *obj, tandem_type_id *out);
/** 1 when the collector may move obj, 0 when it will not (while pinned; never: allocated
 *  non-moving, an id taken, a large object, TANDEM_EVACUATION=off) or on error. */
int tandem_can_move(void *obj);

/** Counts bytes of raw memory owned by obj (malloc'd buffers) toward the next collection's
 *  trigger; stats.memory_pressure reports what live owners hold. */
tandem_result tandem_add_memory_pressure(tandem_mutator *m, void *obj, size_t bytes);
/** Shrinks the var-size obj to new_length items in place: 1 when done; 0 when it cannot
 *  (a fixed-size type, a longer length, an object that carries a moved identity hash) or
 *  on error (tandem_last_error_code tells). */
int tandem_shrink(tandem_mutator *m, void *obj, size_t new_length);
/** Changes the heap maximum at run time, between 4 MiB and the maximum given at init. */
tandem_result tandem_set_heap_max(size_t bytes);

/** Called with each referent of an object. */
typedef void (*tandem_referent_fn)(void *referent, void *data);
/** Calls fn(referent, data) for each non-null reference of obj, in slot order, read
 *  through the load barrier (PyPy's get_rpy_referents). fn may call Tandem, collections
 *  included: each slot is read when its turn comes (a store fn made into a later slot is
 *  seen; slots cut off by tandem_shrink are not). fn must leave the shadow stack as deep
 *  as it found it; otherwise the walk ends with TANDEM_ERR_STATE, and the extra roots (and
 *  obj, which the walk keeps on the shadow stack) stay for the VM to pop. */
tandem_result tandem_referents(tandem_mutator *m, void *obj, tandem_referent_fn fn, void *data);

/** Called with each root slot. */
typedef void (*tandem_root_slot_fn)(void **slot, void *data);
/** Calls fn(slot, data) for every root slot (shadow stacks of every thread, global slots,
 *  the root callback's, finalizer queues') while every thread is stopped between cycles
 *  (PyPy's get_rpy_roots). fn must only read: the calling thread waits in a native region
 *  meanwhile, so fn must not call Tandem with a mutator. */
tandem_result tandem_walk_roots(tandem_root_slot_fn fn, void *data);
/** Writes every object reachable from the roots to the open file descriptor fd, while
 *  every thread is stopped between cycles: a `#` header line, then one line per object,
 *  "address type size referent referent ...", with hexadecimal addresses (0x...) and
 *  decimal type ids and sizes. `tandem-stress heap-summary FILE` sums a dump by type. */
tandem_result tandem_dump_heap(int fd);

/** The VM's check of one reachable object: 0 when it is fine. */
typedef int (*tandem_verify_fn)(void *obj, void *data);
/** Sets (NULL clears) a check run on a GC thread on every reachable object after each
 *  cycle when verification is on (TANDEM_VERIFY); a non-zero result counts as a
 *  verification error (stats.verify_errors) naming the object. It must only read obj.
 *  The objects include Tandem's own weakrefs (a type the VM did not register: see
 *  tandem_type_of), and objects whose initialising stores a thread has not made yet
 *  (stopped at a poll or in another allocation since it allocated them): their fields
 *  read as zero, or for tandem_alloc_uninit's large objects as the memory held before. */
tandem_result tandem_set_verify_hook(tandem_verify_fn fn, void *data);

/*
 * fork(): tandem_init registers pthread_atfork handlers. Before the fork they wait for the
 * cycle in progress, hold new ones off and stop every thread at a safepoint; in the parent
 * everything resumes; in the child only the forking thread exists, so it alone stays
 * attached (other threads' mutators are gone), and the collector's threads start anew.
 * Fork from an attached thread or from one that is not; avoid forking while other threads
 * call Tandem without a mutator (statistics, type registration), as with any library.
 */

/** An event for the GC hook. */
#define TANDEM_EVENT_PAUSE 0 /**< A pause ended. */
#define TANDEM_EVENT_CYCLE 1 /**< A cycle ended (its sweep included). */
typedef struct tandem_gc_event {
    uint32_t kind;             /**< TANDEM_EVENT_*. */
    uint32_t pause_kind;       /**< TANDEM_PAUSE_* (pause events). */
    uint32_t cause;            /**< TANDEM_CAUSE_*. */
    uint32_t reserved;         /**< Zero. */
    uint64_t duration_ns;      /**< The pause, or the whole cycle. */
    uint64_t heap_before;      /**< Heap bytes in use when the cycle started. */
    uint64_t heap_after;       /**< Heap bytes live after the cycle (0 while not known). */
    uint64_t cycle;            /**< The cycle's number, from 1. */
    uint64_t allocated;        /**< Bytes allocated since the previous cycle (cycles). */
    uint64_t weakrefs_cleared; /**< Weak references the cycle cleared (cycles). */
    uint64_t finalized;        /**< Objects delivered to finalizer queues (cycles). */
    uint64_t destructed;       /**< Destructors called (cycles). */
} tandem_gc_event;
/** The GC hook (Python's gc.callbacks): called on a mutator thread, like a finalizer
 *  trigger, after each pause and each cycle (events wait for the next poll; at most 1024
 *  wait). It may call Tandem with that thread's mutator. */
typedef void (*tandem_gc_hook_fn)(const tandem_gc_event *event, void *data);
/** Sets (NULL clears) the GC hook. No call of the old hook begins after this returns (the
 *  events not yet handled go to the new hook, or nowhere); a call another thread began
 *  before may still be running: a VM frees the old hook's data once such calls are over
 *  (its own lock around the hook's body tells). It does not wait for them itself, so that
 *  a VM whose hook takes a lock the setter holds (a GIL) cannot deadlock. */
tandem_result tandem_set_gc_hook(tandem_gc_hook_fn fn, void *data);

/** Levels of tandem_collect_ex. */
#define TANDEM_COLLECT_START 0  /**< Start a cycle (unless one runs) and return at once. */
#define TANDEM_COLLECT_FINISH 1 /**< Wait for the cycle in progress, or run one. */
#define TANDEM_COLLECT_FULL 2   /**< Run a cycle that starts after the call, then run the
                                     finalizer triggers it made due, on this thread (those
                                     an earlier cycle made due may run on another thread,
                                     at its next poll, meanwhile or after). */
#define TANDEM_COLLECT_YOUNG 3  /**< As FULL, but a nursery cycle (TANDEM_GENERATIONAL;
                                     otherwise a whole one): Python's gc.collect(0). */
/** Runs a collection to level. */
tandem_result tandem_collect_ex(tandem_mutator *m, int level);
/** Phases reported by tandem_collect_step. */
#define TANDEM_PHASE_IDLE 0     /**< No cycle runs (the step ended one). */
#define TANDEM_PHASE_MARKING 1  /**< Concurrent marking is next (after init mark). */
#define TANDEM_PHASE_SWEEPING 2 /**< The sweep is next (after final mark). */
/** Advances the collector by one phase, starting a cycle when none runs, and stores the
 *  phase reached in *phase: MARKING, SWEEPING, then IDLE in concurrent mode; IDLE at once
 *  in stw mode (one pause). Between steps the cycle waits and the program runs on; any
 *  other wait for the collector (tandem_collect, an allocation that needs memory or is at
 *  the heap's limit, fork, tandem_dump_heap) ends the stepping and holds it off while it
 *  waits (a step another thread takes meanwhile does not hold the cycle again), so an
 *  abandoned step never blocks anyone, and the heap grows past its limit no further than
 *  without stepping. Stepping ends with the cycle it drove: later cycles run on their own.
 *  A step after such a wait finished the cycle starts the next one, so a loop that steps
 *  one cycle to its end also stops once stats.cycles has grown since its first step. */
tandem_result tandem_collect_step(tandem_mutator *m, int *phase);
/** Stops automatic collections (gc.disable()): only explicit ones run, and an allocation
 *  the heap cannot hold returns NULL as out of memory. Not counted, like Python's: one
 *  tandem_gc_enable undoes any number of calls. */
tandem_result tandem_gc_disable(void);
/** Restarts automatic collections (gc.enable()). */
tandem_result tandem_gc_enable(void);

#ifdef __cplusplus
}
#endif

#endif /* TANDEM_H */
