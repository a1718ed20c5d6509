/* fuzz_table.c - libFuzzer harness for the CSV dataset reader
 * (dn_csv_table_parse).
 *
 * Build and run (from the source root; tests/fuzz/run.sh table does this):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L -Iruntime \
 *     tests/fuzz/fuzz_table.c runtime/dn_data_csv.c runtime/dn_table.c runtime/dn_csv.c \
 *     runtime/dn_file.c runtime/dn_io.c -lz -o /tmp/fuzz_table
 *
 * The first byte of an input picks the options (delimiter, header, class
 * labels or value targets, which column is the target, lines to skip); the
 * rest is the CSV text. Besides the sanitizers' checks, the reader's
 * contract is asserted: on success at least one row and one feature, every
 * value finite, labels within 0..n_classes-1, names present; on failure one
 * non-empty line and an empty table. A second check reads the text as one
 * number field: the reader must agree with strtod (rounded to float)
 * exactly, and accept whatever dn_csv_number accepts. */
#include "dn_runtime.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FTAB_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_table: invariant failed: %s (%s:%d)\n", #cond, __FILE__,    \
                    __LINE__);                                                                \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* Checks a successful parse. */
static void ftab_check_ok(const dn_table *t) {
    FTAB_CHECK(t->n >= 1 && t->features >= 1 && t->x != NULL);
    for (size_t i = 0; i < (size_t)t->n * t->features; i++)
        FTAB_CHECK(isfinite(t->x[i]));
    if (t->targets) {
        FTAB_CHECK(t->t != NULL && t->y == NULL);
        for (size_t i = 0; i < (size_t)t->n * t->targets; i++)
            FTAB_CHECK(isfinite(t->t[i]));
    } else {
        FTAB_CHECK(t->y != NULL && t->t == NULL);
        FTAB_CHECK(t->n_classes >= 1 && t->n_classes <= DN_TABLE_MAX_CLASSES);
        for (uint32_t r = 0; r < t->n; r++)
            FTAB_CHECK(t->y[r] >= 0 && t->y[r] < t->n_classes);
        for (int k = 0; t->class_names && k < t->n_classes; k++)
            FTAB_CHECK(t->class_names[k] != NULL);
    }
    for (uint32_t k = 0; t->feature_names && k < t->features; k++)
        FTAB_CHECK(t->feature_names[k] != NULL);
}

/* Checks a failed parse. */
static void ftab_check_fail(const dn_table *t, const char *err) {
    FTAB_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
    FTAB_CHECK(t->n == 0 && t->x == NULL && t->y == NULL && t->t == NULL);
    FTAB_CHECK(t->class_names == NULL && t->feature_names == NULL);
}

/* The text as a single number field "<text>,0" against strtod. */
static void ftab_check_number(const char *p, size_t n) {
    if (n == 0 || n > 64 || memchr(p, ',', n) || memchr(p, '\n', n) || memchr(p, '"', n) ||
        memchr(p, '#', n) || memchr(p, '\r', n) || p[0] == ' ' || p[n - 1] == ' ' ||
        p[0] == '\t' || p[n - 1] == '\t' || memchr(p, '\0', n) ||
        (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)) /* a byte order mark is skipped */
        return;
    char text[80];
    memcpy(text, p, n);
    memcpy(text + n, ",0", 3);
    double want;
    int ok = dn_csv_number(p, n, &want) == DN_CSV_NUM_OK && isfinite((float)want);
    dn_csv_opts o = {0};
    dn_table t;
    char err[DN_ERR_MAX];
    int rc = dn_csv_table_parse("n.csv", text, n + 2, &o, &t, err);
    FTAB_CHECK(rc == (ok ? 0 : -1));
    if (rc == 0) {
        text[n] = '\0';
        float f = (float)strtod(text, NULL);
        FTAB_CHECK(memcmp(&f, &t.x[0], sizeof f) == 0);
    }
    dn_table_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    static const char delims[4] = {',', ';', '\t', '|'};
    static const char *const sel[4] = {"0", "-1", "b", "1"};
    unsigned c = data[0];
    const char *target[1] = {sel[(c >> 4) & 3]};
    dn_csv_opts o = {.delimiter = delims[c & 3], .header = (c >> 2) & 1, .kind = (c >> 3) & 1,
                     .skip = (c >> 6) & 1, .target = target, .n_target = (c >> 7) & 1};
    const char *text = (const char *)data + 1;
    dn_table t;
    char err[DN_ERR_MAX];
    if (dn_csv_table_parse("fuzz.csv", text, size - 1, &o, &t, err) == 0)
        ftab_check_ok(&t);
    else
        ftab_check_fail(&t, err);
    dn_table_free(&t);
    ftab_check_number(text, size - 1);
    return 0;
}
