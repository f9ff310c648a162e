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

#endif
