/* fuzz_idx.c - libFuzzer harness for the IDX dataset reader (dn_idx_load).
 *
 * Build and run (from the source root; tests/fuzz/run.sh does this):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L \
 *     -Iruntime tests/fuzz/fuzz_idx.c runtime/dn_idx.c runtime/dn_io.c -lz -o /tmp/fuzz_idx
 *   /tmp/fuzz_idx -max_total_time=60 CORPUS_COPY
 *
 * dn_idx_load only reads files, so each input is written to a scratch file
 * (created once with mkstemp in $TMPDIR, or /tmp, and rewritten per input)
 * and loaded three ways:
 *  1. as is: inputs starting with 1f 8b take the gzip path, anything else
 *     the raw path;
 *  2. gzip-compressed by the harness (one member), and
 *  3. gzip-compressed as two members, split at a point the input chooses;
 *     for inputs that are not themselves gzip, 2 and 3 must give exactly
 *     the result of 1 (same status, same dims and payload).
 * A successful raw load must match the bytes: ndim and dims from the header,
 * count = product of dims = payload length, data = the payload. A failure
 * must leave one non-empty line in err and *out zeroed. Violations abort(). */
#include "dn_runtime.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIDX_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_idx: invariant failed: %s (%s:%d)\n", #cond, __FILE__,      \
                    __LINE__);                                                                \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

static char fidx_path[4096];
static int fidx_fd = -1; /* the scratch file, open for writing */

/* Removes the scratch file at exit. */
static void fidx_cleanup(void) {
    if (fidx_fd >= 0)
        close(fidx_fd);
    if (fidx_path[0])
        unlink(fidx_path);
}

/* Creates the scratch file on first use. Returns 0 or -1. */
static int fidx_init(void) {
    if (fidx_path[0])
        return 0;
    const char *dir = getenv("TMPDIR");
    if (!dir || !dir[0])
        dir = "/tmp";
    snprintf(fidx_path, sizeof fidx_path, "%s/fuzz_idx_XXXXXX", dir);
    int fd = mkstemp(fidx_path);
    if (fd < 0) {
        perror(fidx_path);
        fidx_path[0] = '\0';
        return -1;
    }
    fidx_fd = fd;
    atexit(fidx_cleanup);
    return 0;
}

/* Replaces the scratch file's contents with data[0..size): written in place
 * and then cut to length (truncating to zero first would make some file
 * systems flush on every close, which is slow). */
static void fidx_write(const uint8_t *data, size_t size) {
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(fidx_fd, data + done, size - done, (off_t)done);
        FIDX_CHECK(n > 0);
        done += (size_t)n;
    }
    FIDX_CHECK(ftruncate(fidx_fd, (off_t)size) == 0);
}

/* Appends data[0..size) as one complete gzip member to buf at *len
 * (buf has room for compressBound-style worst cases, see fidx_gzip). */
static void fidx_gz_member(uint8_t *buf, size_t cap, size_t *len, const uint8_t *data,
                           size_t size) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    FIDX_CHECK(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)data;
    zs.avail_in = (uInt)size;
    zs.next_out = buf + *len;
    zs.avail_out = (uInt)(cap - *len);
    FIDX_CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    *len = cap - zs.avail_out;
    deflateEnd(&zs);
}

/* gzip of data split into members at the given points (0, 1 or 2 of them
 * used: split < 0 means one member). Returns a malloc'd buffer. */
static uint8_t *fidx_gzip(const uint8_t *data, size_t size, long split, size_t *out_len) {
    size_t cap = 2 * (size + 64) + 256; /* two members' worst-case overhead */
    uint8_t *buf = malloc(cap);
    FIDX_CHECK(buf != NULL);
    size_t len = 0;
    if (split < 0) {
        fidx_gz_member(buf, cap, &len, data, size);
    } else {
        fidx_gz_member(buf, cap, &len, data, (size_t)split);
        fidx_gz_member(buf, cap, &len, data + split, size - (size_t)split);
    }
    *out_len = len;
    return buf;
}

/* Checks err after a failed load: one non-empty line, *out zeroed. */
static void fidx_check_failure(const dn_idx *idx, const char *err) {
    FIDX_CHECK(memchr(err, '\0', DN_ERR_MAX) != NULL);
    FIDX_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
    FIDX_CHECK(strstr(err, fidx_path) != NULL);
    FIDX_CHECK(idx->ndim == 0 && idx->count == 0 && idx->data == NULL);
    for (int i = 0; i < 4; i++)
        FIDX_CHECK(idx->dims[i] == 0);
}

/* Checks a successful load of the IDX bytes content[0..size). */
static void fidx_check_success(const dn_idx *idx, const uint8_t *content, size_t size) {
    FIDX_CHECK(idx->ndim >= 1 && idx->ndim <= 4);
    size_t hdr = 4 + 4 * (size_t)idx->ndim;
    FIDX_CHECK(size >= hdr);
    FIDX_CHECK(content[0] == 0 && content[1] == 0 && content[2] == 0x08 &&
               content[3] == idx->ndim);
    uint64_t prod = 1;
    int zero = 0;
    for (int i = 0; i < idx->ndim; i++) {
        const uint8_t *b = content + 4 + 4 * i;
        uint32_t d = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        FIDX_CHECK(idx->dims[i] == d);
        zero |= d == 0;
    }
    /* Without a zero dim every partial product is at most the payload length. */
    for (int i = 0; i < idx->ndim && !zero; i++) {
        FIDX_CHECK(prod <= size / idx->dims[i]);
        prod *= idx->dims[i];
    }
    if (zero)
        prod = 0;
    for (int i = idx->ndim; i < 4; i++)
        FIDX_CHECK(idx->dims[i] == 0);
    FIDX_CHECK(idx->count == prod && idx->count == size - hdr);
    FIDX_CHECK(idx->data != NULL);
    /* Reads every payload byte (ASan checks the buffer's extent). */
    FIDX_CHECK(memcmp(idx->data, content + hdr, idx->count) == 0);
}

/* Loads the scratch file; checks the result's form. Returns the status. */
static int fidx_load(dn_idx *idx) {
    char err[DN_ERR_MAX];
    memset(err, 0, sizeof err);
    int rc = dn_idx_load(fidx_path, idx, err);
    FIDX_CHECK(rc == 0 || rc == -1);
    if (rc != 0)
        fidx_check_failure(idx, err);
    return rc;
}

/* Two results of the same IDX content must agree. */
static void fidx_check_same(int rc1, const dn_idx *a, int rc2, const dn_idx *b) {
    FIDX_CHECK(rc1 == rc2);
    if (rc1 != 0)
        return;
    FIDX_CHECK(a->ndim == b->ndim && a->count == b->count);
    FIDX_CHECK(memcmp(a->dims, b->dims, sizeof a->dims) == 0);
    FIDX_CHECK(memcmp(a->data, b->data, a->count) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fidx_init() != 0)
        abort();
    int is_gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;

    dn_idx raw;
    fidx_write(data, size);
    int rc = fidx_load(&raw);
    if (rc == 0 && !is_gz)
        fidx_check_success(&raw, data, size);

    if (!is_gz) {
        /* The same content through zlib: one member, then two. */
        long splits[2] = {-1, size ? (long)(data[size - 1] % (size + 1)) : 0};
        for (int k = 0; k < 2; k++) {
            size_t glen;
            uint8_t *gz = fidx_gzip(data, size, splits[k], &glen);
            fidx_write(gz, glen);
            free(gz);
            dn_idx viagz;
            int rcgz = fidx_load(&viagz);
            fidx_check_same(rc, &raw, rcgz, &viagz);
            dn_idx_free(&viagz);
            FIDX_CHECK(viagz.data == NULL && viagz.count == 0);
        }
    }
    dn_idx_free(&raw);
    return 0;
}
