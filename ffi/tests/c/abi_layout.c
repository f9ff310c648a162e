/*
 * abi_layout.c — prints, one "NAME VALUE" per line, every layout fact and constant that
 * tandem.h's inline fast paths share with the Rust core. tests/c_tests.rs compares each with
 * the core's own constant, so a change on either side that the other does not follow fails
 * a test instead of corrupting memory.
 */
#include <stdio.h>

#include "tandem.h"

#define SHOW(name, value) printf("%s %llu\n", name, (unsigned long long)(value))

int main(void) {
    SHOW("offsetof(tandem_mutator, cursor)", offsetof(tandem_mutator, cursor));
    SHOW("offsetof(tandem_mutator, limit)", offsetof(tandem_mutator, limit));
    SHOW("offsetof(tandem_mutator, ss_top)", offsetof(tandem_mutator, ss_top));
    SHOW("offsetof(tandem_mutator, ss_limit)", offsetof(tandem_mutator, ss_limit));
    SHOW("offsetof(tandem_mutator, ss_base)", offsetof(tandem_mutator, ss_base));
    SHOW("offsetof(tandem_mutator, state)", offsetof(tandem_mutator, state));
    SHOW("offsetof(tandem_mutator, barriers)", offsetof(tandem_mutator, barriers));
    SHOW("offsetof(tandem_mutator, gc_state)", offsetof(tandem_mutator, gc_state));
    SHOW("sizeof(tandem_type_layout)", sizeof(tandem_type_layout));
    SHOW("TANDEM_MAX_TYPES", TANDEM_MAX_TYPES);
    SHOW("TANDEM_LARGE_OBJECT_THRESHOLD", TANDEM_LARGE_OBJECT_THRESHOLD);
    SHOW("TANDEM_STOP_REQUESTED", TANDEM_STOP_REQUESTED);
    SHOW("TANDEM_HANDSHAKE_REQUESTED", TANDEM_HANDSHAKE_REQUESTED);
    SHOW("TANDEM_POLL_MASK", TANDEM_POLL_MASK);
    SHOW("TANDEM_BARRIER_WRITE", TANDEM_BARRIER_WRITE);
    SHOW("TANDEM_BARRIER_OBJECT", TANDEM_BARRIER_OBJECT);
    SHOW("TANDEM_BARRIER_ARRAY_COPY", TANDEM_BARRIER_ARRAY_COPY);
    SHOW("TANDEM_BARRIER_LOAD", TANDEM_BARRIER_LOAD);
    SHOW("TANDEM_BARRIER_STORE", TANDEM_BARRIER_STORE);
    SHOW("TANDEM_BARRIER_REMEMBER", TANDEM_BARRIER_REMEMBER);
    SHOW("TANDEM_GC_MARKING", TANDEM_GC_MARKING);
    SHOW("TANDEM_ABI_VERSION", TANDEM_ABI_VERSION);
    SHOW("tandem_abi_version()", tandem_abi_version());
    SHOW("TANDEM_FLAG_LOGGED", TANDEM_FLAG_LOGGED);
    SHOW("TANDEM_FLAG_REMEMBER", TANDEM_FLAG_REMEMBER);
    return 0;
}
