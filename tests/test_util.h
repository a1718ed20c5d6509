/* test_util.h - helpers for suites that generate, compile and run trainers. */
#ifndef DNGEN_TEST_UTIL_H
#define DNGEN_TEST_UTIL_H
#include <stddef.h>

/* Runs `cmd` through /bin/sh with stderr merged into stdout. Returns the exit
 * status (or -1 if it could not run / was killed by a signal: 128 + signal).
 * If out != NULL, *out receives the malloc'd output (caller frees). */
int tu_run(const char *cmd, char **out);

/* printf-style tu_run. */
int tu_runf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Creates (emptying first) DNGEN_TEST_TMP/name and returns its path (static
 * storage, one per call site is enough: copy it if needed). */
const char *tu_dir(const char *name);

/* Writes text to path; aborts the test on failure. */
void tu_write(const char *path, const char *text);

/* Reads a whole file (malloc'd, NUL-terminated); NULL if unreadable. */
char *tu_read(const char *path, size_t *len);

/* Generates dir/name.c from spec with dngen (extra dngen options in `opts`)
 * and compiles it into dir/name, linking the runtime library (or standalone
 * when opts contains --standalone). cflags are added to the compile line.
 * Returns 0 on success; on failure prints the output and returns -1. */
int tu_build_trainer(const char *spec, const char *dir, const char *name, const char *opts,
                     const char *cflags);

/* Compiles tests/probe.c with dir/name.c into dir/name_probe. */
int tu_build_probe(const char *dir, const char *name, const char *model_symbol);

/* Writes an IDX dataset of n samples (features = rows*cols) to dir with the
 * standard names for prefix ("train"/"t10k"): a synthetic, learnable
 * problem: class c has bright pixels in band c. Returns 0 on success. */
int tu_write_synthetic_idx(const char *dir, const char *prefix, int n, int rows, int cols, int classes,
                           unsigned seed);

/* Runs cmd and asserts (Check) that it exits with `want`, printing its
 * output when not. Returns the output (caller frees). */
char *tu_expect_run(int want, const char *cmd);

/* True when files dir/a and dir/b have the same bytes; asserts that both
 * can be read. */
int tu_same_files(const char *dir, const char *a, const char *b);

/* The last "test_acc X" a trainer printed in out, or -1. */
double tu_last_test_acc(const char *out);

#endif
