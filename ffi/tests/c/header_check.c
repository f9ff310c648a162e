/*
 * header_check.c — compiled (not linked) by tests/c_tests.rs with every C compiler found,
 * under -std=c11 -Wall -Wextra -Werror -pedantic: tandem.h and each of its inline fast
 * paths must compile without a warning. Every inline function is used here, so that each
 * is compiled even by compilers that skip unused static inline functions.
 */
#include "tandem.h"

/* tandem.h must be self-contained: it may come first and alone. */

void *header_check_all_inline_paths(tandem_mutator *m, tandem_type_id type, void **obj);

void *header_check_all_inline_paths(tandem_mutator *m, tandem_type_id type, void **obj) {
    void *o = tandem_alloc(m, type, 0);
    if (tandem_push_root(m, o) != TANDEM_OK) {
        return NULL;
    }
    void **slot = tandem_root_slot(m, 0);
    size_t depth = tandem_root_depth(m);
    tandem_write_ref(m, obj, &obj[1], *slot);
    tandem_object_barrier(m, obj);
    tandem_array_copy_refs(m, obj, &obj[1], obj, &obj[2], depth);
    void *v = tandem_read_ref(m, obj, &obj[1]);
    if (tandem_safepoint(m) != TANDEM_OK) {
        return NULL;
    }
    (void)tandem_pop_root(m);
    return v;
}
