/*
 * check.h — assertions for the C tests of tandem.h. A failed check prints where it failed,
 * what was expected and the thread's last Tandem error, then exits with status 1 (which
 * the Rust driver, tests/c_tests.rs, reports with the program's output).
 */
#ifndef TANDEM_TEST_CHECK_H
#define TANDEM_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tandem.h"

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n  last error: \"%s\"\n", __FILE__,  \
                    __LINE__, #cond, tandem_last_error());                                 \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

/* Checks a tandem_result against an expected code. */
#define CHECK_RESULT(expr, expected)                                                       \
    do {                                                                                   \
        tandem_result check_r_ = (expr);                                                   \
        if (check_r_ != (expected)) {                                                      \
            fprintf(stderr, "%s:%d: %s returned %d, expected %s (%d)\n  last error: \"%s\"\n", \
                    __FILE__, __LINE__, #expr, (int)check_r_, #expected, (int)(expected),  \
                    tandem_last_error());                                                  \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

#define CHECK_OK(expr) CHECK_RESULT(expr, TANDEM_OK)

/* Checks that the thread's last error message mentions `needle`. */
#define CHECK_ERROR_MENTIONS(needle)                                                       \
    do {                                                                                   \
        const char *check_e_ = tandem_last_error();                                        \
        if (check_e_ == NULL || check_e_[0] == '\0' || strstr(check_e_, (needle)) == NULL) { \
            fprintf(stderr, "%s:%d: last error \"%s\" does not mention \"%s\"\n", __FILE__, \
                    __LINE__, check_e_ ? check_e_ : "(null)", (needle));                  \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

/* Checks a call's result code and that its message mentions `needle`. */
#define CHECK_FAILS(expr, expected, needle)                                                \
    do {                                                                                   \
        CHECK_RESULT(expr, expected);                                                      \
        CHECK_ERROR_MENTIONS(needle);                                                      \
    } while (0)

/* Zeroed options with the size set, as tandem_init expects. */
static inline tandem_options check_options(void) {
    tandem_options o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    return o;
}

/* The current statistics (exits if they cannot be read). */
static inline tandem_stats check_stats(void) {
    tandem_stats s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    CHECK_OK(tandem_get_stats(&s));
    return s;
}

#endif /* TANDEM_TEST_CHECK_H */
