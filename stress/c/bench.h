/*
 * bench.h — what the C benchmark clients share: a failure exit, a monotonic clock and the
 * one-line JSON result the bench parses. The clients themselves are written the way a VM
 * author would write them: against tandem.h alone, or against gc.h alone for libgc.
 */
#ifndef TANDEM_BENCH_H
#define TANDEM_BENCH_H

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Exits with a message naming the failed condition (status 2: a benchmark failure). */
#define BENCH_CHECK(cond)                                                                 \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);      \
            exit(2);                                                                      \
        }                                                                                 \
    } while (0)

/* Seconds on the monotonic clock. */
static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A positive integer argument, or the default when absent. */
static inline long bench_arg(int argc, char **argv, int i, long dflt) {
    if (argc <= i) {
        return dflt;
    }
    char *end;
    long v = strtol(argv[i], &end, 10);
    BENCH_CHECK(*end == '\0' && v > 0);
    return v;
}

/* binary-trees' command line: MAX_DEPTH THREADS [bottom-up|top-down]. */
typedef struct bench_trees_args {
    int max_depth;
    int threads;
    int top_down; /* each node allocated before its children */
} bench_trees_args;

/* The smallest depth binary-trees builds short-lived trees at. */
#define BENCH_MIN_DEPTH 4

static inline bench_trees_args bench_trees_parse(int argc, char **argv) {
    bench_trees_args a;
    a.max_depth = (int)bench_arg(argc, argv, 1, 16);
    a.threads = (int)bench_arg(argc, argv, 2, 1);
    BENCH_CHECK(a.max_depth >= BENCH_MIN_DEPTH + 2 && a.threads <= 64);
    a.top_down = argc > 3 && strcmp(argv[3], "top-down") == 0;
    BENCH_CHECK(argc <= 3 || a.top_down || strcmp(argv[3], "bottom-up") == 0);
    return a;
}

#endif
