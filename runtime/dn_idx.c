/* dn_idx.c - IDX (MNIST) file loading, raw or gzip-compressed, and
 * normalized batch gathering. */
#include "dn_runtime.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifndef DN_NO_ZLIB
#include <zlib.h>
#endif

/* Largest payload accepted from a header (2^34 bytes). */
static const uint64_t dn_idx_max_payload = (uint64_t)1 << 34;
/* Beyond the header's count, at most this many extra bytes are counted to
 * report the real payload size. */
static const uint64_t dn_idx_max_excess = (uint64_t)1 << 26;
enum { dn_idx_inbuf_size = 1 << 16 };

/* A byte source: a plain file, or a gzip stream (possibly multi-member)
 * decoded from it. */
typedef struct {
    FILE *f;
    const char *path;
    int gz;
#ifndef DN_NO_ZLIB
    z_stream zs;
    int zs_live;          /* inflateInit2 succeeded */
    int zs_done;          /* last member finished and nothing follows */
    unsigned char *inbuf; /* dn_idx_inbuf_size bytes */
    uint64_t file_read;   /* compressed bytes fread so far */
#endif
} dn_idx_src;

#ifndef DN_NO_ZLIB
/* Ensures at least `need` compressed bytes are buffered unless the file ends
 * first. Returns 0, or -1 with err set on a read error. */
static int dn_idx_gz_fill(dn_idx_src *s, size_t need, char *err) {
    if (s->zs.avail_in >= need)
        return 0;
    if (s->zs.avail_in > 0 && s->zs.next_in != s->inbuf)
        memmove(s->inbuf, s->zs.next_in, s->zs.avail_in);
    s->zs.next_in = s->inbuf;
    while (s->zs.avail_in < need) {
        size_t got = fread(s->inbuf + s->zs.avail_in, 1, dn_idx_inbuf_size - s->zs.avail_in, s->f);
        if (got == 0) {
            if (ferror(s->f)) {
                dn_errf(err, "%s: read error: %s", s->path, strerror(errno));
                return -1;
            }
            return 0;
        }
        s->zs.avail_in += (uInt)got;
        s->file_read += got;
    }
    return 0;
}

/* After a gzip member ends: starts the next member if one follows, marks the
 * stream done at end of file, and rejects anything else. Returns 0 or -1. */
static int dn_idx_gz_member_end(dn_idx_src *s, char *err) {
    if (dn_idx_gz_fill(s, 2, err) != 0)
        return -1;
    if (s->zs.avail_in == 0) {
        s->zs_done = 1;
        return 0;
    }
    if (s->zs.avail_in >= 2 && s->zs.next_in[0] == 0x1f && s->zs.next_in[1] == 0x8b) {
        if (inflateReset(&s->zs) != Z_OK) {
            dn_errf(err, "%s: gzip reset failed", s->path);
            return -1;
        }
        return 0;
    }
    dn_errf(err, "%s: trailing garbage after gzip data at byte %llu", s->path,
             (unsigned long long)(s->file_read - s->zs.avail_in));
    return -1;
}

/* Decompresses up to n bytes into dst. Returns the count (short only at the
 * end of the data), or -1 with err set. */
static long long dn_idx_gz_read(dn_idx_src *s, uint8_t *dst, size_t n, char *err) {
    size_t done = 0;
    while (done < n && !s->zs_done) {
        if (dn_idx_gz_fill(s, 1, err) != 0)
            return -1;
        if (s->zs.avail_in == 0) {
            dn_errf(err, "%s: truncated gzip data (unexpected end of file at byte %llu)", s->path,
                     (unsigned long long)s->file_read);
            return -1;
        }
        size_t want = n - done > (1u << 30) ? (1u << 30) : n - done;
        s->zs.next_out = dst + done;
        s->zs.avail_out = (uInt)want;
        int ret = inflate(&s->zs, Z_NO_FLUSH);
        done += want - s->zs.avail_out;
        if (ret == Z_STREAM_END) {
            if (dn_idx_gz_member_end(s, err) != 0)
                return -1;
        } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
            dn_errf(err, "%s: corrupt gzip data: %s", s->path,
                     s->zs.msg ? s->zs.msg : "inflate failed");
            return -1;
        }
    }
    return (long long)done;
}
#endif

/* Reads up to n bytes from the source. Returns the count read (short only at
 * the end of the data), or -1 with err set. */
static long long dn_idx_src_read(dn_idx_src *s, uint8_t *dst, size_t n, char *err) {
#ifndef DN_NO_ZLIB
    if (s->gz)
        return dn_idx_gz_read(s, dst, n, err);
#endif
    size_t got = fread(dst, 1, n, s->f);
    if (got < n && ferror(s->f)) {
        dn_errf(err, "%s: read error: %s", s->path, strerror(errno));
        return -1;
    }
    return (long long)got;
}

/* Opens path (or path.gz if path does not exist) and sniffs gzip magic.
 * *opened receives a malloc'd copy of the name actually opened. */
static int dn_idx_src_open(dn_idx_src *s, const char *path, char **opened, char *err) {
    memset(s, 0, sizeof *s);
    size_t len = strlen(path);
    char *name = malloc(len + 4);
    if (!name) {
        dn_errf(err, "%s: out of memory", path);
        return -1;
    }
    memcpy(name, path, len + 1);
    s->f = fopen(name, "rb");
    if (!s->f && errno == ENOENT) {
        memcpy(name + len, ".gz", 4);
        s->f = fopen(name, "rb");
        if (!s->f && errno == ENOENT) {
            dn_errf(err, "%s: no such file (nor %s)", path, name);
            free(name);
            return -1;
        }
    }
    if (!s->f) {
        dn_errf(err, "%s: cannot open: %s", name, strerror(errno));
        free(name);
        return -1;
    }
    *opened = name;
    s->path = name;
    int c0 = getc(s->f), c1 = c0 == EOF ? EOF : getc(s->f);
    if (ferror(s->f)) {
        dn_errf(err, "%s: read error: %s", name, strerror(errno));
        return -1;
    }
    s->gz = c0 == 0x1f && c1 == 0x8b;
    rewind(s->f);
    if (!s->gz)
        return 0;
#ifdef DN_NO_ZLIB
    dn_errf(err, "%s: gzip support not compiled in", name);
    return -1;
#else
    s->inbuf = malloc(dn_idx_inbuf_size);
    if (!s->inbuf) {
        dn_errf(err, "%s: out of memory", name);
        return -1;
    }
    if (inflateInit2(&s->zs, 15 + 16) != Z_OK) {
        dn_errf(err, "%s: cannot initialize zlib", name);
        return -1;
    }
    s->zs_live = 1;
    return 0;
#endif
}

/* Releases everything dn_idx_src_open acquired (safe after a failed open). */
static void dn_idx_src_close(dn_idx_src *s) {
#ifndef DN_NO_ZLIB
    if (s->zs_live)
        inflateEnd(&s->zs);
    free(s->inbuf);
#endif
    if (s->f)
        fclose(s->f);
    memset(s, 0, sizeof *s);
}

/* Reads and checks the IDX header: magic, type 0x08, ndim 1..4, and a dims
 * product that neither overflows nor exceeds dn_idx_max_payload. */
static int dn_idx_read_header(dn_idx_src *s, dn_idx *out, char *err) {
    uint8_t h[20];
    long long got = dn_idx_src_read(s, h, 4, err);
    if (got < 0)
        return -1;
    if (got < 4) {
        dn_errf(err, "%s: truncated header: file has %lld bytes, the IDX header needs 4", s->path,
                 got);
        return -1;
    }
    if (h[0] != 0 || h[1] != 0) {
        dn_errf(err, "%s: bad magic 0x%02x%02x at byte 0 (expected 0x0000, not an IDX file)",
                 s->path, h[0], h[1]);
        return -1;
    }
    if (h[2] != 0x08) {
        dn_errf(err, "%s: unsupported data type 0x%02x at byte 2 (only 0x08, unsigned byte)",
                 s->path, h[2]);
        return -1;
    }
    if (h[3] < 1 || h[3] > 4) {
        dn_errf(err, "%s: number of dimensions %d at byte 3 is out of range 1..4", s->path, h[3]);
        return -1;
    }
    out->ndim = h[3];
    size_t need = 4 * (size_t)out->ndim;
    got = dn_idx_src_read(s, h + 4, need, err);
    if (got < 0)
        return -1;
    if ((size_t)got < need) {
        dn_errf(err, "%s: truncated header: file has %lld bytes, the IDX header needs %zu",
                 s->path, got + 4, need + 4);
        return -1;
    }
    uint64_t prod = 1;
    int overflow = 0;
    char dims[80];
    size_t dl = 0;
    for (int i = 0; i < out->ndim; i++) {
        const uint8_t *b = h + 4 + 4 * i;
        uint32_t d = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        out->dims[i] = d;
        dl += (size_t)snprintf(dims + dl, sizeof dims - dl, "%s%lu", i ? " x " : "",
                               (unsigned long)d);
        if (d != 0 && prod > UINT64_MAX / d)
            overflow = 1;
        else
            prod *= d;
    }
    if (overflow) {
        dn_errf(err, "%s: dimensions %s overflow 64 bits", s->path, dims);
        return -1;
    }
    if (prod > dn_idx_max_payload || prod > SIZE_MAX) {
        dn_errf(err, "%s: dimensions %s = %llu bytes exceed the limit of %llu bytes", s->path,
                 dims, (unsigned long long)prod, (unsigned long long)dn_idx_max_payload);
        return -1;
    }
    out->count = (size_t)prod;
    return 0;
}

/* Counts the bytes left in the source (at most dn_idx_max_excess + 1).
 * Returns the count or -1 with err set. */
static long long dn_idx_count_rest(dn_idx_src *s, char *err) {
    uint8_t scratch[4096];
    uint64_t total = 0;
    while (total <= dn_idx_max_excess) {
        long long got = dn_idx_src_read(s, scratch, sizeof scratch, err);
        if (got < 0)
            return -1;
        if (got == 0)
            break;
        total += (uint64_t)got;
    }
    return (long long)total;
}

/* The most payload the open file can hold: its size, times deflate's
 * largest expansion (1032:1) when gzip. A header claiming more is lying, so
 * no allocation is ever sized from it beyond this bound. */
static size_t dn_idx_plausible_bytes(const dn_idx_src *s) {
    struct stat st;
    if (fstat(fileno(s->f), &st) != 0 || st.st_size <= 0)
        return (size_t)1 << 20;
    uint64_t n = (uint64_t)st.st_size * (s->gz ? 1032u : 1u);
    return n > (uint64_t)SIZE_MAX ? SIZE_MAX : (size_t)n;
}

/* Reads exactly out->count payload bytes, then checks that nothing follows.
 * The buffer starts at min(count, what the file can plausibly hold), which is
 * the exact size for real data (one allocation, no copies: peak memory equals
 * the data), and grows only as data arrives otherwise, so a lying header
 * cannot cause a huge allocation. */
static int dn_idx_read_payload(dn_idx_src *s, dn_idx *out, char *err) {
    size_t plausible = dn_idx_plausible_bytes(s);
    size_t cap = out->count < plausible ? out->count : plausible;
    size_t have = 0;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) {
        dn_errf(err, "%s: out of memory", s->path);
        return -1;
    }
    for (;;) {
        long long got = dn_idx_src_read(s, buf + have, cap - have, err);
        if (got < 0)
            goto fail;
        have += (size_t)got;
        if (have < cap) {
            dn_errf(err, "%s: payload is %zu bytes, header says %zu", s->path, have, out->count);
            goto fail;
        }
        if (cap == out->count)
            break;
        size_t ncap = cap > out->count / 2 ? out->count : cap * 2;
        uint8_t *nb = realloc(buf, ncap);
        if (!nb) {
            dn_errf(err, "%s: out of memory for %zu bytes", s->path, ncap);
            goto fail;
        }
        buf = nb;
        cap = ncap;
    }
    long long extra = dn_idx_count_rest(s, err);
    if (extra < 0)
        goto fail;
    if (extra > 0) {
        int many = (uint64_t)extra > dn_idx_max_excess;
        unsigned long long total =
            (unsigned long long)out->count + (many ? dn_idx_max_excess : (uint64_t)extra);
        dn_errf(err, "%s: payload is %s%llu bytes, header says %zu (trailing data)", s->path,
                 many ? "more than " : "", total, out->count);
        goto fail;
    }
    out->data = buf;
    return 0;
fail:
    free(buf);
    return -1;
}

int dn_idx_load(const char *path, dn_idx *out, char *err) {
    memset(out, 0, sizeof *out);
    dn_idx_src s;
    char *opened = NULL;
    int rc = dn_idx_src_open(&s, path, &opened, err);
    if (rc == 0)
        rc = dn_idx_read_header(&s, out, err);
    if (rc == 0)
        rc = dn_idx_read_payload(&s, out, err);
    dn_idx_src_close(&s);
    free(opened);
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

void dn_idx_free(dn_idx *idx) {
    if (!idx)
        return;
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}

/* Builds "dir/prefix-kind" into a malloc'd string (NULL when out of memory). */
static char *dn_idx_join(const char *dir, const char *prefix, const char *kind) {
    size_t n = strlen(dir) + strlen(prefix) + strlen(kind) + 3;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s-%s", dir, prefix, kind);
    return p;
}

/* Checks the loaded image/label pair against each other and the caller's
 * expectations; fills ds->n and ds->features. */
static int dn_idx_check_pair(const dn_idx *im, const dn_idx *lb, const char *ipath, const char *lpath,
                          uint32_t expected_features, int n_classes, dn_dataset *ds, char *err) {
    if (im->ndim != 3) {
        dn_errf(err, "%s: images must be 3-d (n, rows, cols), got %d-d", ipath, im->ndim);
        return -1;
    }
    if (lb->ndim != 1) {
        dn_errf(err, "%s: labels must be 1-d (n), got %d-d", lpath, lb->ndim);
        return -1;
    }
    if (im->dims[0] != lb->dims[0]) {
        dn_errf(err, "%s: %lu labels, but %s has %lu images", lpath, (unsigned long)lb->dims[0],
                 ipath, (unsigned long)im->dims[0]);
        return -1;
    }
    uint64_t feat = (uint64_t)im->dims[1] * im->dims[2];
    if (feat > UINT32_MAX || (expected_features != 0 && feat != expected_features)) {
        dn_errf(err, "%s: images are %lux%lu = %llu features, expected %lu", ipath,
                 (unsigned long)im->dims[1], (unsigned long)im->dims[2], (unsigned long long)feat,
                 (unsigned long)expected_features);
        return -1;
    }
    for (size_t i = 0; i < lb->count; i++) {
        if ((int)lb->data[i] >= n_classes) {
            dn_errf(err, "%s: label %d at index %zu is out of range for %d classes", lpath,
                     lb->data[i], i, n_classes);
            return -1;
        }
    }
    ds->n = im->dims[0];
    ds->features = (uint32_t)feat;
    return 0;
}

/* Where data comes from, said when a data set is missing: the trainer's
 * default directory is the spec's (data/fashion-mnist for the seed specs),
 * which a checkout does not have. */
#define DN_IDX_DATA_HINT                                                                        \
    "give the data directory with --data DIR (Fashion-MNIST: Debian package "                    \
    "dataset-fashion-mnist, installed in /usr/share/datasets/fashion-mnist)"

/* After the images of a set failed to load: when they are missing (no
 * directory, or no file with or without .gz), err says so and where data
 * comes from; other errors are left as they are. */
static void dn_idx_missing_hint(const char *dir, const char *ipath, char *err) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        dn_errf(err, "%s: no such directory; " DN_IDX_DATA_HINT, dir);
        return;
    }
    size_t n = strlen(ipath);
    char *gz = malloc(n + 4);
    if (!gz)
        return;
    memcpy(gz, ipath, n);
    memcpy(gz + n, ".gz", 4);
    if (stat(ipath, &st) != 0 && errno == ENOENT && stat(gz, &st) != 0 && errno == ENOENT)
        dn_errf(err, "%s: no such file (nor %s); " DN_IDX_DATA_HINT, ipath, gz);
    free(gz);
}

int dn_dataset_load(const char *dir, const char *prefix, uint32_t expected_features, int n_classes,
                    dn_dataset *ds, char *err) {
    memset(ds, 0, sizeof *ds);
    dn_idx im = {0}, lb = {0};
    char *ipath = dn_idx_join(dir, prefix, "images-idx3-ubyte");
    char *lpath = dn_idx_join(dir, prefix, "labels-idx1-ubyte");
    int rc = -1;
    if (!ipath || !lpath)
        dn_errf(err, "%s: out of memory", dir);
    else if (dn_idx_load(ipath, &im, err) != 0)
        dn_idx_missing_hint(dir, ipath, err);
    else if (dn_idx_load(lpath, &lb, err) == 0)
        rc = dn_idx_check_pair(&im, &lb, ipath, lpath, expected_features, n_classes, ds, err);
    if (rc == 0) {
        ds->images = im.data;
        ds->labels = lb.data;
    } else {
        dn_idx_free(&im);
        dn_idx_free(&lb);
        memset(ds, 0, sizeof *ds);
    }
    free(ipath);
    free(lpath);
    return rc;
}

void dn_dataset_free(dn_dataset *ds) {
    if (!ds)
        return;
    free(ds->images);
    free(ds->labels);
    dn_data_src_release(ds->src);
    memset(ds, 0, sizeof *ds);
}

/* Pixel rows to floats, (px/255 - mean)/std: the same three correctly
 * rounded operations per pixel in every version, so the same floats. The
 * table version looks each pixel up in value[256]; on x86 with AVX2 or
 * AVX-512 (asked of the CPU at run time, whatever the build's -march) 8 or
 * 16 pixels go at once. On Zen 5 with AVX-512: 64 cached rows 14.8 -> 4.2
 * us; 64 random Fashion-MNIST rows, the trainer's batch, 21.6 -> 10.2 us on
 * one thread (then bound by memory), about 2% of a 1-thread epoch. */
typedef enum { DN_ROW_TABLE, DN_ROW_AVX2, DN_ROW_AVX512 } dn_row_kind;

static void dn_row_table(const uint8_t *src, float *dst, size_t nf, const float *value) {
    for (size_t k = 0; k < nf; k++)
        dst[k] = value[src[k]];
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define DN_ROW_SIMD 1

__attribute__((target("avx2"))) static void dn_row_avx2(const uint8_t *src, float *dst, size_t nf, float mean,
                                                       float std, const float *value) {
    const __m256 c255 = _mm256_set1_ps(255.0f), m = _mm256_set1_ps(mean), s = _mm256_set1_ps(std);
    size_t k = 0;
    for (; k + 8 <= nf; k += 8) {
        long long b;
        memcpy(&b, src + k, 8);
        const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(b)));
        _mm256_storeu_ps(dst + k, _mm256_div_ps(_mm256_sub_ps(_mm256_div_ps(f, c255), m), s));
    }
    dn_row_table(src + k, dst + k, nf - k, value);
}

__attribute__((target("avx512f"))) static void dn_row_avx512(const uint8_t *src, float *dst, size_t nf, float mean,
                                                            float std, const float *value) {
    const __m512 c255 = _mm512_set1_ps(255.0f), m = _mm512_set1_ps(mean), s = _mm512_set1_ps(std);
    size_t k = 0;
    for (; k + 16 <= nf; k += 16) {
        const __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(src + k))));
        _mm512_storeu_ps(dst + k, _mm512_div_ps(_mm512_sub_ps(_mm512_div_ps(f, c255), m), s));
    }
    dn_row_table(src + k, dst + k, nf - k, value);
}
#endif

/* The fastest version this CPU runs; DN_GATHER_ISA=table or avx2 asks for
 * a slower one (the tests check each version against the formula). */
static dn_row_kind dn_row_kind_to_use(void) {
    dn_row_kind best = DN_ROW_TABLE;
#ifdef DN_ROW_SIMD
    if (__builtin_cpu_supports("avx512f"))
        best = DN_ROW_AVX512;
    else if (__builtin_cpu_supports("avx2"))
        best = DN_ROW_AVX2;
#endif
    const char *want = getenv("DN_GATHER_ISA");
    if (want && strcmp(want, "table") == 0)
        return DN_ROW_TABLE;
    if (want && strcmp(want, "avx2") == 0 && best > DN_ROW_AVX2)
        return DN_ROW_AVX2;
    return best;
}

static void dn_row(dn_row_kind kind, const uint8_t *src, float *dst, size_t nf, float mean, float std,
                   const float *value) {
#ifdef DN_ROW_SIMD
    if (kind == DN_ROW_AVX512) {
        dn_row_avx512(src, dst, nf, mean, std, value);
        return;
    }
    if (kind == DN_ROW_AVX2) {
        dn_row_avx2(src, dst, nf, mean, std, value);
        return;
    }
#else
    (void)mean, (void)std, (void)kind;
#endif
    dn_row_table(src, dst, nf, value);
}

/* Row r of x gets image idx[r] as (px/255 - mean)/std in float32, the same
 * arithmetic as torchvision's ToTensor + Normalize; y[r] its label (y may be
 * NULL). Rows are independent, so any thread split gives the same result. */
void dn_dataset_gather(const dn_dataset *ds, const uint32_t *idx, int n, float mean, float std,
                       float *x, int32_t *y) {
    if (!ds->images) {
        dn_data_gather(ds, idx, n, x, y);
        return;
    }
    const size_t nf = ds->features;
    float value[256]; /* the formula's result for every pixel value: one lookup per pixel */
    for (int v = 0; v < 256; v++)
        value[v] = ((float)v / 255.0f - mean) / std;
    const dn_row_kind kind = dn_row_kind_to_use();
#ifdef _OPENMP
#pragma omp parallel if (n > 16)
#endif
    {
#if defined(__GNUC__)
        /* The rows lie scattered over the whole set: ask for all of this
         * thread's rows first, so that their cache misses overlap instead of
         * coming one after another. */
#ifdef _OPENMP
#pragma omp for schedule(static) nowait
#endif
        for (int r = 0; r < n; r++) {
            const uint8_t *src = ds->images + (size_t)idx[r] * nf;
            for (size_t k = 0; k < nf; k += 64)
                __builtin_prefetch(src + k);
        }
#endif
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int r = 0; r < n; r++) {
            dn_row(kind, ds->images + (size_t)idx[r] * nf, x + (size_t)r * nf, nf, mean, std, value);
            if (y)
                y[r] = ds->labels[idx[r]];
        }
    }
}
