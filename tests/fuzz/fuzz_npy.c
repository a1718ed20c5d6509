/* fuzz_npy.c - libFuzzer harness for the .npy reader (dn_npy_parse,
 * dn_npy_table_load).
 *
 * Build and run (from the source root; tests/fuzz/run.sh npy does this):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L -Iruntime \
 *     tests/fuzz/fuzz_npy.c runtime/dn_npy.c runtime/dn_table.c runtime/dn_file.c \
 *     runtime/dn_io.c -o /tmp/fuzz_npy
 *
 * Each input is parsed from memory: a success must describe exactly the
 * input (data offset plus count * size is its length, count the product of
 * the shape). Then it is written to a scratch file (mkstemp in $TMPDIR or
 * /tmp, rewritten per input) and loaded as features and as class labels,
 * then as value targets, of itself: a success must hold finite features,
 * labels in range, and as many rows as the header's first dimension; a
 * failure one non-empty line and an empty table. Violations abort(). */
#include "dn_runtime.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FNPY_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_npy: invariant failed: %s (%s:%d)\n", #cond, __FILE__,      \
                    __LINE__);                                                                \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

static char fnpy_path[4096];

/* Writes the input to the scratch file (created on first use). */
static void fnpy_write(const uint8_t *data, size_t size) {
    if (!fnpy_path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(fnpy_path, sizeof fnpy_path, "%s/fuzz_npy.XXXXXX", dir && *dir ? dir : "/tmp");
        int fd = mkstemp(fnpy_path);
        FNPY_CHECK(fd >= 0);
        close(fd);
    }
    FILE *f = fopen(fnpy_path, "wb");
    FNPY_CHECK(f != NULL);
    FNPY_CHECK(fwrite(data, 1, size, f) == size);
    FNPY_CHECK(fclose(f) == 0);
}

/* Loads the scratch file as features and targets of kind `kind`. */
static void fnpy_load(int kind, const dn_npy *a, int parsed) {
    dn_table t;
    char err[DN_ERR_MAX];
    if (dn_npy_table_load(fnpy_path, fnpy_path, kind, &t, err) == 0) {
        FNPY_CHECK(parsed && t.n == a->shape[0] && t.n >= 1 && t.features >= 1);
        for (uint64_t i = 0; i < (uint64_t)t.n * t.features; i++)
            FNPY_CHECK(isfinite(t.x[i]));
        for (uint32_t r = 0; kind == DN_TARGET_CLASS && r < t.n; r++)
            FNPY_CHECK(t.y[r] >= 0 && t.y[r] < t.n_classes && t.n_classes <= DN_TABLE_MAX_CLASSES);
        for (uint64_t i = 0; kind == DN_TARGET_VALUE && i < (uint64_t)t.n * t.targets; i++)
            FNPY_CHECK(isfinite(t.t[i]));
    } else {
        FNPY_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
        FNPY_CHECK(t.n == 0 && t.x == NULL && t.y == NULL && t.t == NULL && t.map == NULL);
    }
    dn_table_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dn_npy a;
    char err[DN_ERR_MAX];
    int parsed = dn_npy_parse("fuzz.npy", data, size, &a, err) == 0;
    if (parsed) {
        uint64_t count = 1;
        for (int d = 0; d < a.ndim; d++)
            count *= a.shape[d];
        FNPY_CHECK(a.ndim <= 8 && count == a.count);
        FNPY_CHECK(a.offset <= size && a.count * (uint64_t)a.size == size - a.offset);
        FNPY_CHECK((const uint8_t *)a.data == data + a.offset);
    } else {
        FNPY_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
    }
    fnpy_write(data, size);
    fnpy_load(DN_TARGET_CLASS, &a, parsed);
    fnpy_load(DN_TARGET_VALUE, &a, parsed);
    return 0;
}
