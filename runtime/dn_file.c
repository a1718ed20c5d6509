/* dn_file.c - whole files into memory: the one reader behind spec files,
 * metrics CSVs and the predictor's input (dngen links the runtime, so the
 * generator's commands use it too).
 *
 * The buffer doubles from 64 KiB up to one byte past the caller's size cap,
 * so a file that is too large is noticed without reading all of it, and
 * gets a NUL byte after the data for parsers that like one. */
#include "dn_runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DN_FILE_FIRST_CHUNK ((size_t)1 << 16)
#define DN_FILE_NO_LIMIT (SIZE_MAX / 4) /* "no cap": more than memory can hold */

/* Writes the reason for failure rc into why (DN_ERR_MAX bytes; NULL: none):
 * the text of errno value e for DN_FILE_OPEN and DN_FILE_READ, else a fixed
 * phrase. Returns rc. */
static int dn_file_fail(char *why, int rc, int e, size_t limit) {
    if (rc == DN_FILE_BIG)
        dn_errf(why, "file is larger than %zu bytes", limit);
    else if (rc == DN_FILE_NOMEM)
        dn_errf(why, "out of memory");
    else
        dn_errf(why, "%s", e ? strerror(e) : rc == DN_FILE_OPEN ? "cannot be opened" : "read error");
    return rc;
}

/* Grows *buf to hold twice *cap data bytes (64 KiB at first) plus a NUL,
 * but never more than limit + 1 data bytes: one byte past the cap is how a
 * too-large file shows. Returns 0, or -1 when out of memory (*buf kept). */
static int dn_file_grow(char **buf, size_t *cap, size_t limit) {
    size_t ncap = *cap ? *cap * 2 : DN_FILE_FIRST_CHUNK;
    if (ncap > limit + 1)
        ncap = limit + 1;
    char *nb = realloc(*buf, ncap + 1);
    if (!nb)
        return -1;
    *buf = nb;
    *cap = ncap;
    return 0;
}

/* Reads f to its end, or to limit + 1 bytes, into *buf (capacity *cap,
 * *n bytes held). Returns 0, DN_FILE_READ (*e = errno) or DN_FILE_NOMEM. */
static int dn_file_slurp(FILE *f, size_t limit, char **buf, size_t *cap, size_t *n, int *e) {
    for (;;) {
        if (*n == *cap) {
            if (*n > limit)
                return 0;
            if (dn_file_grow(buf, cap, limit) != 0)
                return DN_FILE_NOMEM;
        }
        size_t want = *cap - *n;
        errno = 0;
        size_t got = fread(*buf + *n, 1, want, f);
        *n += got;
        if (got < want) {
            *e = errno;
            return ferror(f) ? DN_FILE_READ : 0;
        }
    }
}

int dn_file_read_stream(FILE *f, size_t max, char **data, size_t *len, char *why) {
    size_t limit = max ? max : DN_FILE_NO_LIMIT, cap = 0, n = 0;
    char *buf = NULL;
    int e = 0;
    int rc = dn_file_slurp(f, limit, &buf, &cap, &n, &e);
    *data = NULL;
    *len = 0;
    if (rc == 0 && n > limit)
        rc = DN_FILE_BIG;
    if (rc != 0) {
        free(buf);
        return dn_file_fail(why, rc, e, limit);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

int dn_file_read(const char *path, size_t max, char **data, size_t *len, char *why) {
    *data = NULL;
    *len = 0;
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return dn_file_fail(why, DN_FILE_OPEN, errno, 0);
    int rc = dn_file_read_stream(f, max, data, len, why);
    fclose(f);
    return rc;
}
