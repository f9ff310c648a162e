/*
 * node.h — the linked node the C tests share: a header, one reference and a value, with
 * an allocator that keeps `next` rooted while it allocates. A test that includes it sets
 * node_type (tandem_register_type with node_type_info) before allocating nodes.
 */
#ifndef TANDEM_TEST_NODE_H
#define TANDEM_TEST_NODE_H

#include <stdint.h>

#include "check.h"

typedef struct node {
    uint64_t header;
    void *next;
    uint64_t value;
} node;

static tandem_type_id node_type;
static const size_t node_refs[] = {8};

/* The node's type description (call tandem_register_type with it once). */
static inline tandem_type_info node_type_info(void) {
    tandem_type_info t;
    memset(&t, 0, sizeof t);
    t.size = sizeof t;
    t.fixed_size = sizeof(node);
    t.ref_offsets = node_refs;
    t.n_ref_offsets = 1;
    t.name = "node";
    return t;
}

/* A new node holding value and linking to next (kept rooted across the allocation). */
static inline void *new_node(tandem_mutator *m, uint64_t value, void *next) {
    CHECK_OK(tandem_push_root(m, next));
    node *n = tandem_alloc(m, node_type, 0);
    CHECK(n != NULL);
    n->next = tandem_pop_root(m);
    n->value = value;
    return n;
}

#endif
