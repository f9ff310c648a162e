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

/* Starts Tandem in `mode` ("stw" or "concurrent") with a small verified heap (64 MiB,
 * 4 MiB kept) and registers the node type. */
static inline void start_node_heap(const char *mode) {
    tandem_options o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.mode = mode;
    o.heap_max = 64u << 20;
    o.heap_min = 4u << 20;
    o.verify = 1;
    CHECK_OK(tandem_init(&o));
    tandem_type_info ni = node_type_info();
    CHECK_OK(tandem_register_type(&ni, &node_type));
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
