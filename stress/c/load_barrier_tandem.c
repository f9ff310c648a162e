/*
 * load_barrier_tandem.c — what tandem_read_ref costs, written against tandem.h only.
 *
 * Builds a ring of CELLS cells scattered one in ten among garbage (so every block is sparse
 * and the next cycle evacuates it), collects once, then walks the ring:
 *   raw       plain acquire loads (what a VM could do if there were no load barrier);
 *   off       tandem_read_ref with the LOAD bit off (its inline fast path: one more test);
 *             raw and off alternate three times and each reports its fastest walk;
 *   first     tandem_read_ref with the LOAD bit on, on the first walk after the cycle chose
 *             its collection set (tandem_collect_step): each load resolves its cell, copying
 *             it to to-space, and heals the field;
 *   on        later walks with the bit still on: every load takes the slow path, which
 *             finds the cell already outside the collection set.
 * Usage: load_barrier_tandem [CELLS] [WALKS]   (65536 and 50 by default)
 * Prints one JSON line: nanoseconds per load for each walk, the walks' check sums, and
 * whether the LOAD bit was on (it is off when the collector chose no collection set, for
 * instance with TANDEM_EVACUATION=off).
 */
#include "bench_tandem.h"

#include <stddef.h>
#include <stdint.h>

typedef struct cell {
    uint64_t header;
    void *next;
    uint64_t value;
} cell;

static tandem_type_id cell_type;

/* The sum of `values` over `loads` steps along the ring from `c` through tandem_read_ref. */
static uint64_t walk_barriered(tandem_mutator *m, cell *c, long loads) {
    uint64_t sum = 0;
    for (long i = 0; i < loads; i++) {
        sum += c->value;
        c = tandem_read_ref(m, c, &c->next);
    }
    return sum;
}

/* The same walk with plain acquire loads (legal only while the LOAD bit is off). */
static uint64_t walk_raw(cell *c, long loads) {
    uint64_t sum = 0;
    for (long i = 0; i < loads; i++) {
        sum += c->value;
        c = __atomic_load_n((cell **)&c->next, __ATOMIC_ACQUIRE);
    }
    return sum;
}

/* Nanoseconds per load since `t0` for `loads` loads. */
static double per_load(double t0, long loads) { return (bench_now() - t0) * 1e9 / (double)loads; }

int main(int argc, char **argv) {
    long cells = bench_arg(argc, argv, 1, 65536);
    long walks = bench_arg(argc, argv, 2, 50);
    long loads = cells * walks;
    bench_tandem_init();
    static const size_t refs[] = {offsetof(cell, next)};
    cell_type = bench_tandem_type("cell", sizeof(cell), refs, 1, 0, 0);
    tandem_mutator *m = tandem_attach_thread();
    BENCH_CHECK(m != NULL);
    double t_start = bench_now();

    /* The ring, built backwards: the first cell is the root; each new cell links to the
     * previous one and the first finally links to the last. Nine garbage cells follow each
     * kept one. */
    cell *first = tandem_alloc(m, cell_type, 0);
    BENCH_CHECK(first != NULL);
    first->value = 1;
    /* Roots, by depth from the top: 0 the newest cell, 1 the first cell. */
    BENCH_CHECK(tandem_push_root(m, first) == TANDEM_OK);
    BENCH_CHECK(tandem_push_root(m, first) == TANDEM_OK);
    for (long i = 1; i < cells; i++) {
        for (int g = 0; g < 9; g++) {
            BENCH_CHECK(tandem_alloc(m, cell_type, 0) != NULL);
        }
        cell *c = tandem_alloc(m, cell_type, 0);
        BENCH_CHECK(c != NULL);
        c->value = (uint64_t)i + 1;
        cell *prev = *tandem_root_slot(m, 0);
        tandem_write_ref(m, c, &c->next, prev);
        *tandem_root_slot(m, 0) = c;
        tandem_safepoint(m);
    }
    {
        cell *newest = *tandem_root_slot(m, 0);
        first = *tandem_root_slot(m, 1);
        tandem_write_ref(m, first, &first->next, newest);
    }
    BENCH_CHECK(tandem_collect(m) == TANDEM_OK);

    uint64_t expect = (uint64_t)walks * ((uint64_t)cells * ((uint64_t)cells + 1) / 2);
    uint64_t sum_raw = 0, sum_off = 0, sum_first = 0, sum_on = 0;
    cell *c = *tandem_root_slot(m, 1);
    BENCH_CHECK(walk_raw(c, cells) == expect / (uint64_t)walks); /* a lap to warm the caches */
    /* The two walks alternate, three times each, and each keeps its fastest: the machine's
     * noise only ever adds time, and a fixed order would favour the second. */
    double raw = 1e300, off = 1e300;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = bench_now();
        sum_raw = walk_raw(c, loads);
        double ns = per_load(t0, loads);
        raw = ns < raw ? ns : raw;
        t0 = bench_now();
        sum_off = walk_barriered(m, c, loads);
        ns = per_load(t0, loads);
        off = ns < off ? ns : off;
    }

    /* Init mark: the collection set is chosen and, when it is not empty, the LOAD bit is on
     * until the cycle's sweep. Roots were fixed in the pause: read the ring back. */
    int phase = -1;
    BENCH_CHECK(tandem_collect_step(m, &phase) == TANDEM_OK);
    BENCH_CHECK(phase == TANDEM_PHASE_MARKING);
    int load_bit = (m->barriers & TANDEM_BARRIER_LOAD) != 0;
    c = *tandem_root_slot(m, 1);
    double t0 = bench_now();
    sum_first = walk_barriered(m, c, cells);
    double first_walk = per_load(t0, cells);
    t0 = bench_now();
    sum_on = walk_barriered(m, c, loads);
    double on = per_load(t0, loads);
    while (phase != TANDEM_PHASE_IDLE) {
        BENCH_CHECK(tandem_collect_step(m, &phase) == TANDEM_OK);
    }
    double wall = bench_now() - t_start;

    BENCH_CHECK(sum_raw == expect && sum_off == expect && sum_on == expect);
    BENCH_CHECK(sum_first == expect / (uint64_t)walks);
    printf("{\"wall_s\":%.6f,\"check\":%ld,\"cells\":%ld,\"loads\":%ld,\"load_bit\":%d,"
           "\"raw_ns\":%.3f,\"off_ns\":%.3f,\"first_ns\":%.3f,\"on_ns\":%.3f}\n",
           wall, (long)(sum_on % 1000000007u), cells, loads, load_bit, raw, off, first_walk, on);
    tandem_pop_root(m);
    tandem_pop_root(m);
    BENCH_CHECK(tandem_detach_thread(m) == TANDEM_OK);
    BENCH_CHECK(tandem_shutdown() == TANDEM_OK);
    return 0;
}
