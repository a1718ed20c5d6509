/* dn_io.c - atomic file replacement (POSIX: open/write/fsync/rename), error
 * lines and the number parsing shared by the runtime's command lines. */
#include "dn_runtime.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

void dn_errf(char *err, const char *fmt, ...) {
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, DN_ERR_MAX, fmt, ap);
    va_end(ap);
    for (char *c = err; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
}

int dn_parse_i64(const char *s, int64_t *v) {
    if (!(isdigit((unsigned char)s[0]) || ((s[0] == '-' || s[0] == '+') && isdigit((unsigned char)s[1]))))
        return -1;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *v = (int64_t)x;
    return 0;
}

int dn_parse_u64(const char *s, uint64_t *v) {
    if (!isdigit((unsigned char)s[0]))
        return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *v = (uint64_t)x;
    return 0;
}

/* Splits path into a malloc'd directory ("." if none) and a pointer to the
 * base name inside path. Returns NULL on allocation failure. */
static char *dn_io_dirname(const char *path, const char **base) {
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 1;
    if (slash && dlen == 0)
        dlen = 1; /* "/file" lives in "/" */
    char *dir = malloc(dlen + 1);
    if (!dir)
        return NULL;
    if (slash)
        memcpy(dir, path, dlen);
    else
        dir[0] = '.';
    dir[dlen] = '\0';
    *base = slash ? slash + 1 : path;
    return dir;
}

/* Writes all len bytes to fd, retrying short writes and EINTR.
 * Returns 0, or -1 with errno set. */
static int dn_io_write_all(int fd, const unsigned char *p, size_t len) {
    while (len > 0) {
        size_t chunk = len > ((size_t)1 << 30) ? ((size_t)1 << 30) : len;
        ssize_t w = write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Creates a fresh temp file ".<base>.tmp.<pid>.<n>" in dir with O_EXCL,
 * trying successive n on EEXIST. Stores its malloc'd name in *tmp_out.
 * Returns the fd, or -1 with errno set (and *tmp_out NULL). */
static int dn_io_create_temp(const char *dir, const char *base, char **tmp_out) {
    size_t cap = strlen(dir) + strlen(base) + 64;
    char *tmp = malloc(cap);
    *tmp_out = NULL;
    if (!tmp) {
        errno = ENOMEM;
        return -1;
    }
    for (unsigned n = 0; n < 10000; n++) {
        snprintf(tmp, cap, "%s/.%s.tmp.%ld.%u", dir, base, (long)getpid(), n);
        int fd;
        do
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        while (fd < 0 && errno == EINTR);
        if (fd >= 0) {
            *tmp_out = tmp;
            return fd;
        }
        if (errno != EEXIST)
            break;
    }
    int saved = errno;
    free(tmp);
    errno = saved;
    return -1;
}

/* fsyncs directory dir so a rename inside it is durable. Filesystems that
 * cannot fsync directories (EINVAL, ENOTSUP) are accepted. Returns 0 or -1. */
static int dn_io_fsync_dir(const char *dir) {
    int fd;
    do
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    if (rc != 0 && (saved == EINVAL || saved == ENOTSUP))
        rc = 0;
    close(fd);
    errno = saved;
    return rc;
}

/* Writes data to fd, fsyncs and closes it (fd is closed in every case).
 * On failure sets err naming path and the failed step; returns 0 or -1. */
static int dn_io_fill_and_close(int fd, const char *path, const void *data, size_t len, char *err) {
    const char *step = NULL;
    int saved = 0;
    if (dn_io_write_all(fd, data, len) != 0)
        step = "write";
    else if (fsync(fd) != 0)
        step = "fsync";
    if (step)
        saved = errno;
    if (close(fd) != 0 && !step) {
        step = "close";
        saved = errno;
    }
    if (!step)
        return 0;
    dn_errf(err, "%s: %s failed: %s", path, step, strerror(saved));
    return -1;
}

/* Removes temp files ".<base>.tmp.<pid>.<n>" in dir left by writers that
 * died mid-write (kill -9, power loss): those whose pid no longer exists.
 * Best effort; a live writer's temp file is never touched. */
static void dn_io_remove_stale_temps(const char *dir, const char *base) {
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t blen = strlen(base);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (n[0] != '.' || strncmp(n + 1, base, blen) != 0 || strncmp(n + 1 + blen, ".tmp.", 5) != 0)
            continue;
        char *end = NULL;
        long pid = strtol(n + 1 + blen + 5, &end, 10);
        if (pid <= 0 || !end || *end != '.' || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        size_t plen = strlen(dir) + strlen(n) + 2;
        char *full = malloc(plen);
        if (full) {
            snprintf(full, plen, "%s/%s", dir, n);
            unlink(full);
            free(full);
        }
    }
    closedir(d);
}

int dn_write_file_atomic(const char *path, const void *data, size_t len, char *err) {
    const char *base = NULL;
    if (!path || !*path || path[strlen(path) - 1] == '/') {
        dn_errf(err, "%s: not a file name", path ? path : "(null)");
        return -1;
    }
    char *dir = dn_io_dirname(path, &base);
    if (!dir) {
        dn_errf(err, "%s: out of memory", path);
        return -1;
    }
    char *tmp = NULL;
    int fd = dn_io_create_temp(dir, base, &tmp);
    if (fd < 0) {
        dn_errf(err, "%s: cannot create temporary file in '%s': %s", path, dir, strerror(errno));
        free(dir);
        return -1;
    }
    int rc = dn_io_fill_and_close(fd, path, data, len, err);
    if (rc == 0 && rename(tmp, path) != 0) {
        dn_errf(err, "%s: rename from '%s' failed: %s", path, tmp, strerror(errno));
        rc = -1;
    }
    if (rc != 0) {
        unlink(tmp);
    } else {
        dn_io_remove_stale_temps(dir, base);
    }
    if (rc == 0 && dn_io_fsync_dir(dir) != 0) {
        /* The new file is in place but its rename may not be durable. */
        dn_errf(err, "%s: fsync of directory '%s' failed: %s", path, dir, strerror(errno));
        rc = -1;
    }
    free(tmp);
    free(dir);
    return rc;
}
