/*
 * bench_tandem.h — what the Tandem C clients share beyond bench.h: starting the runtime,
 * registering a type, and ending with the one-line JSON result and a clean shutdown.
 */
#ifndef TANDEM_BENCH_TANDEM_H
#define TANDEM_BENCH_TANDEM_H

#include "bench.h"


#include "tandem.h"

/* Starts Tandem with the environment's options (TANDEM_*), exiting with its message. */
static inline void bench_tandem_init(void) {
    if (tandem_init(NULL) != TANDEM_OK) {
        fprintf(stderr, "tandem_init: %s\n", tandem_last_error());
        exit(2);
    }
}

/* Registers a type: `fixed` bytes with `n_refs` reference offsets, or, with `item_size`,
 * a var-size type of pointer-free items whose length sits at `length_offset`. */
static inline tandem_type_id bench_tandem_type(const char *name, size_t fixed,
                                               const size_t *refs, size_t n_refs,
                                               size_t item_size, size_t length_offset) {
    tandem_type_info info;
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    info.fixed_size = fixed;
    info.ref_offsets = refs;
    info.n_ref_offsets = n_refs;
    info.item_size = item_size;
    info.length_offset = length_offset;
    info.name = name;
    tandem_type_id id = 0;
    BENCH_CHECK(tandem_register_type(&info, &id) == TANDEM_OK);
    return id;
}

/* Prints the result line (wall seconds, the check sum, the collector's statistics), then
 * detaches `m` and shuts the runtime down. */
static inline void bench_tandem_finish(tandem_mutator *m, double wall, long check) {
    tandem_stats s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    BENCH_CHECK(tandem_get_stats(&s) == TANDEM_OK);
    printf("{\"wall_s\":%.6f,\"check\":%ld,\"gcs\":%llu,\"cycles\":%llu,"
           "\"pause_max_ns\":%llu,\"ttsp_max_ns\":%llu,\"longest_wait_ns\":%llu,"
           "\"resume_max_ns\":%llu,\"heap_peak\":%llu,\"gc_cpu_ns\":%llu}\n",
           wall, check, (unsigned long long)s.gcs, (unsigned long long)s.cycles,
           (unsigned long long)s.pause_max_ns, (unsigned long long)s.ttsp_max_ns,
           (unsigned long long)s.longest_wait_ns, (unsigned long long)s.mutator_resume_max_ns,
           (unsigned long long)s.heap_peak,
           (unsigned long long)(s.collector_cpu_ns + s.assist_ns));
    BENCH_CHECK(tandem_detach_thread(m) == TANDEM_OK);
    BENCH_CHECK(tandem_shutdown() == TANDEM_OK);
}

#endif
