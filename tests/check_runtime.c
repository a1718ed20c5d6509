/* check_runtime.c - unit tests of the runtime primitives: Philox streams,
 * shuffling, dropout thresholds, Adam (against torch.optim numbers), IDX
 * loading, safetensors I/O, atomic file writes, and the whole-file and CSV
 * readers. */
#include "dn_runtime.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- helpers -------------------------------------------------------------- */

/* Returns a static path DNGEN_TEST_TMP/check_runtime/<name>. */
static const char *tpath(const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/check_runtime/%s", DNGEN_TEST_TMP, name);
    return buf[k];
}

/* Creates directory path if missing. */
static void ensure_dir(const char *path) {
    ck_assert_msg(mkdir(path, 0777) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
}

/* Writes len bytes to path with stdio. */
static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* Writes len bytes gzip-compressed to path with zlib's gzopen. */
static void write_gz(const char *path, const void *data, size_t len) {
    gzFile g = gzopen(path, "wb");
    ck_assert_msg(g != NULL, "cannot create %s", path);
    if (len)
        ck_assert_int_eq(gzwrite(g, data, (unsigned)len), (int)len);
    ck_assert_int_eq(gzclose(g), Z_OK);
}

/* Reads a whole file into a malloc'd buffer; *len gets its size. */
static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
    }
    ck_assert_int_eq(ferror(f), 0);
    fclose(f);
    *len = n;
    return buf;
}

/* Asserts that err contains want. */
#define assert_err(err, want)                                                                      \
    ck_assert_msg(strstr((err), (want)) != NULL, "error \"%s\" lacks \"%s\"", (err), (want))

/* ---- Philox, streams, shuffle, dropout --------------------------------------- */

START_TEST(test_philox_kat) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/philox4x32_10_kat.txt", DNGEN_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char line[512];
    int n10 = 0, n7 = 0;
    while (fgets(line, sizeof line, f)) {
        char name[32];
        unsigned rounds;
        uint32_t w[10];
        if (line[0] == '#' || line[0] == '\n')
            continue;
        int got = sscanf(line,
                         "%31s %u %" SCNx32 " %" SCNx32 " %" SCNx32 " %" SCNx32 " %" SCNx32
                         " %" SCNx32 " %" SCNx32 " %" SCNx32 " %" SCNx32 " %" SCNx32,
                         name, &rounds, &w[0], &w[1], &w[2], &w[3], &w[4], &w[5], &w[6], &w[7],
                         &w[8], &w[9]);
        ck_assert_msg(got == 12 && !strcmp(name, "philox4x32"), "bad fixture line: %s", line);
        dn_u32x4 ctr = {{w[0], w[1], w[2], w[3]}};
        dn_u32x4 r = dn_philox4x32_10(ctr, w[4], w[5]);
        int same = !memcmp(r.v, &w[6], sizeof r.v);
        if (rounds == 10) {
            for (int k = 0; k < 4; k++)
                ck_assert_msg(r.v[k] == w[6 + k], "word %d: got %08" PRIx32 ", want %08" PRIx32, k,
                              r.v[k], w[6 + k]);
            n10++;
        } else {
            ck_assert_uint_eq(rounds, 7);
            ck_assert_msg(!same, "10-round Philox reproduces a 7-round vector");
            n7++;
        }
    }
    fclose(f);
    ck_assert_int_eq(n10, 3);
    ck_assert_int_eq(n7, 3);
}
END_TEST

START_TEST(test_rand_u32_pure) {
    const uint64_t seed = 0x0123456789abcdefull;
    for (uint32_t i = 0; i < 16; i++) {
        uint32_t a = dn_rand_u32(seed, DN_RNG_DROPOUT, 5, 7, 3, i);
        ck_assert_uint_eq(a, dn_rand_u32(seed, DN_RNG_DROPOUT, 5, 7, 3, i));
        /* the documented definition */
        dn_u32x4 ctr = {{i / 4, 5, 7, ((uint32_t)DN_RNG_DROPOUT << 24) | 3}};
        dn_u32x4 r = dn_philox4x32_10(ctr, (uint32_t)seed, (uint32_t)(seed >> 32));
        ck_assert_uint_eq(a, r.v[i % 4]);
    }
    /* c keeps only 24 bits; every other input changes the word */
    uint32_t base = dn_rand_u32(seed, DN_RNG_INIT, 1, 2, 3, 4);
    ck_assert_uint_eq(base, dn_rand_u32(seed, DN_RNG_INIT, 1, 2, 3 | 0x5000000u, 4));
    ck_assert_uint_ne(base, dn_rand_u32(seed + 1, DN_RNG_INIT, 1, 2, 3, 4));
    ck_assert_uint_ne(base, dn_rand_u32(seed ^ (1ull << 40), DN_RNG_INIT, 1, 2, 3, 4));
    ck_assert_uint_ne(base, dn_rand_u32(seed, DN_RNG_SHUFFLE, 1, 2, 3, 4));
    ck_assert_uint_ne(base, dn_rand_u32(seed, DN_RNG_INIT, 9, 2, 3, 4));
    ck_assert_uint_ne(base, dn_rand_u32(seed, DN_RNG_INIT, 1, 9, 3, 4));
    ck_assert_uint_ne(base, dn_rand_u32(seed, DN_RNG_INIT, 1, 2, 9, 4));
    ck_assert_uint_ne(base, dn_rand_u32(seed, DN_RNG_INIT, 1, 2, 3, 5));
}
END_TEST

START_TEST(test_shuffle) {
    enum { N = 1000 };
    static uint32_t p1[N], p2[N], p3[N], p4[N];
    static unsigned char seen[N];
    dn_shuffle(p1, N, 42, 0);
    for (int i = 0; i < N; i++) {
        ck_assert_uint_lt(p1[i], N);
        ck_assert_int_eq(seen[p1[i]], 0);
        seen[p1[i]] = 1;
    }
    dn_shuffle(p2, N, 42, 0);
    ck_assert_int_eq(memcmp(p1, p2, sizeof p1), 0);
    dn_shuffle(p3, N, 42, 1);
    ck_assert_int_ne(memcmp(p1, p3, sizeof p1), 0);
    dn_shuffle(p4, N, 43, 0);
    ck_assert_int_ne(memcmp(p1, p4, sizeof p1), 0);
    int fixed = 0;
    for (int i = 0; i < N; i++)
        fixed += p1[i] == (uint32_t)i;
    ck_assert_int_lt(fixed, 10); /* expected about 1 */

    /* n = 2: one step, j = (rand(1) * 2) >> 32 */
    uint32_t two[2];
    for (uint32_t e = 0; e < 8; e++) {
        dn_shuffle(two, 2, 7, e);
        uint32_t w = dn_rand_u32(7, DN_RNG_SHUFFLE, e, 0, 0, 1);
        uint32_t want0 = w < 0x80000000u ? 1 : 0;
        ck_assert_uint_eq(two[0], want0);
        ck_assert_uint_eq(two[1], 1 - want0);
    }
    uint32_t one[1] = {99};
    dn_shuffle(one, 1, 7, 0);
    ck_assert_uint_eq(one[0], 0);
    dn_shuffle(NULL, 0, 7, 0);
}
END_TEST

START_TEST(test_dropout_rate) {
    const double ps[3] = {0.1, 0.3, 0.5};
    const uint32_t n = 1000000;
    ck_assert_uint_eq(dn_dropout_threshold(0.0), 0);
    ck_assert_uint_eq(dn_dropout_threshold(0.5), 0x80000000u);
    for (int k = 0; k < 3; k++) {
        uint32_t thr = dn_dropout_threshold(ps[k]);
        uint32_t dropped = 0;
        for (uint32_t i = 0; i < n; i++)
            dropped += dn_rand_u32(2024, DN_RNG_DROPOUT, i / 1000, 3, 1, i % 1000) < thr;
        double rate = (double)dropped / n;
        double sigma = sqrt(ps[k] * (1 - ps[k]) / n);
        ck_assert_msg(fabs(rate - ps[k]) < 4 * sigma, "p=%g: rate %g (sigma %g)", ps[k], rate,
                      sigma);
    }
}
END_TEST

/* ---- Adam ------------------------------------------------------------------- */

/* Pasted verbatim from `/usr/bin/python3 tools/adam_reference.py` (do not edit). */
/* clang-format off */
/* generated by tools/adam_reference.py with torch 1.13.0a0 */
static const float adam_ref_adam_p[5][6] = {
    {0.49000001, -1.24000001, 1.99000001, 0, -0.38499999, 3.00999999},
    {0.480678201, -1.23009193, 1.9806782, 0, -0.384473681, 3.0198257},
    {0.479570359, -1.22442019, 1.9711349, 0, -0.389456093, 3.0292511},
    {0.474375516, -1.2190448, 1.96583283, 0, -0.393537402, 3.03577948},
    {0.467422962, -1.21758831, 1.96048117, 0, -0.395824879, 3.03908801},
};
static const float adam_ref_adam_m[6] = {0.0751325041, -0.0284799971, 0.142810002, 0, 0.0261774957, -0.176569968};
static const float adam_ref_adam_v[6] = {0.000347488414, 0.00113780017, 0.00211888226, 0, 0.000389688357, 0.00847503264};
static const float adam_ref_adam_l2_p[5][6] = {
    {0.49000001, -1.24000001, 1.99000001, 0, -0.38499999, 3.00999999},
    {0.4806256, -1.23008645, 1.98065019, 0, -0.384321779, 3.01982093},
    {0.479081511, -1.22426903, 1.97108746, 0, -0.389220804, 3.02922821},
    {0.473662138, -1.2187202, 1.96560323, 0, -0.393196553, 3.03563833},
    {0.4666062, -1.21701825, 1.96005332, 0, -0.395353377, 3.03874707},
};
static const float adam_ref_adam_l2_m[6] = {0.0771118999, -0.0335210077, 0.150916815, 0, 0.0245959964, -0.164199367};
static const float adam_ref_adam_l2_v[6] = {0.000355391792, 0.00115428481, 0.00220030965, 0, 0.000386961678, 0.00830073003};
static const float adam_ref_adamw_p[5][6] = {
    {0.489950001, -1.23987496, 1.98979998, 0, -0.384962499, 3.00970006},
    {0.480579197, -1.2298429, 1.98027921, 0, -0.384397686, 3.01922464},
    {0.479423285, -1.22404814, 1.9705379, 0, -0.389341652, 3.02834797},
    {0.47418049, -1.21855032, 1.96503878, 0, -0.39338401, 3.03457355},
    {0.46718052, -1.21697199, 1.95949054, 0, -0.395632148, 3.03757858},
};
static const float adam_ref_adamw_m[6] = {0.0751325041, -0.0284799971, 0.142810002, 0, 0.0261774957, -0.176569968};
static const float adam_ref_adamw_v[6] = {0.000347488414, 0.00113780017, 0.00211888226, 0, 0.000389688357, 0.00847503264};
/* clang-format on */

static const float adam_p0[6] = {0.5f, -1.25f, 2.0f, 0.0f, -0.375f, 3.0f};
static const float adam_grads[5][6] = {
    {0.125f, -0.5f, 1.0f, 0.0f, 0.25f, -2.0f},  {0.0625f, -0.75f, 0.5f, 0.0f, -0.25f, -1.5f},
    {-0.125f, 0.25f, 0.75f, 0.0f, 0.5f, -1.0f}, {0.25f, -0.125f, -0.5f, 0.0f, 0.0f, 0.5f},
    {0.5f, 0.5f, 0.25f, 0.0f, -0.125f, 1.0f},
};

/* Asserts got ~= want to 1e-6 relative. */
static void assert_close(float got, float want, const char *what, int i) {
    double tol = 1e-6 * fabs((double)want) + 1e-12;
    ck_assert_msg(fabs((double)got - (double)want) <= tol, "%s[%d]: got %.9g, want %.9g", what, i,
                  (double)got, (double)want);
}

/* Runs the 5 reference steps and compares against torch's numbers. */
static void check_adam(float wd, int decoupled, const float ref_p[5][6], const float *ref_m,
                       const float *ref_v) {
    dn_adam cfg = {0.01f, 0.9f, 0.999f, 1e-8f, wd, decoupled};
    float p[6], m[6] = {0}, v[6] = {0};
    memcpy(p, adam_p0, sizeof p);
    for (int t = 0; t < 5; t++) {
        dn_adam_step(&cfg, p, adam_grads[t], m, v, 6, t + 1);
        for (int i = 0; i < 6; i++)
            assert_close(p[i], ref_p[t][i], "p", t * 6 + i);
    }
    for (int i = 0; i < 6; i++) {
        assert_close(m[i], ref_m[i], "m", i);
        assert_close(v[i], ref_v[i], "v", i);
    }
}

START_TEST(test_adam_torch) {
    check_adam(0.0f, 0, adam_ref_adam_p, adam_ref_adam_m, adam_ref_adam_v);
}
END_TEST

START_TEST(test_adam_l2_torch) {
    check_adam(0.01f, 0, adam_ref_adam_l2_p, adam_ref_adam_l2_m, adam_ref_adam_l2_v);
}
END_TEST

START_TEST(test_adamw_torch) {
    check_adam(0.01f, 1, adam_ref_adamw_p, adam_ref_adamw_m, adam_ref_adamw_v);
}
END_TEST

/* Same results with 1 thread and several (elementwise code). */
START_TEST(test_adam_threads) {
    enum { N = 200003 };
    float *buf = malloc(sizeof(float) * N * 7);
    ck_assert_ptr_nonnull(buf);
    float *p1 = buf, *m1 = buf + N, *v1 = buf + 2 * N, *p2 = buf + 3 * N, *m2 = buf + 4 * N;
    float *v2 = buf + 5 * N, *g = buf + 6 * N;
    for (int i = 0; i < N; i++) {
        p1[i] = p2[i] =
            (float)dn_u32_to_unit(dn_rand_u32(1, DN_RNG_TEST, 0, 0, 0, (uint32_t)i)) - 0.5f;
        g[i] = (float)dn_u32_to_unit(dn_rand_u32(1, DN_RNG_TEST, 1, 0, 0, (uint32_t)i)) - 0.5f;
        m1[i] = m2[i] = v1[i] = v2[i] = 0.0f;
    }
    dn_adam cfg = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0};
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    for (int t = 1; t <= 3; t++)
        dn_adam_step(&cfg, p1, g, m1, v1, N, t);
#ifdef _OPENMP
    omp_set_num_threads(4);
#endif
    for (int t = 1; t <= 3; t++)
        dn_adam_step(&cfg, p2, g, m2, v2, N, t);
    ck_assert_int_eq(memcmp(p1, p2, sizeof(float) * N * 3), 0);
    free(buf);
}
END_TEST

/* ---- IDX ---------------------------------------------------------------------- */

/* Builds an IDX image in buf: header (magic 0 0 type ndim, big-endian dims)
 * then payload bytes 0, 1, 2, ... Returns the total length. */
static size_t make_idx(unsigned char *buf, int type, int ndim, const uint32_t *dims,
                       size_t payload) {
    size_t n = 0;
    buf[n++] = 0;
    buf[n++] = 0;
    buf[n++] = (unsigned char)type;
    buf[n++] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++) {
        buf[n++] = (unsigned char)(dims[i] >> 24);
        buf[n++] = (unsigned char)(dims[i] >> 16);
        buf[n++] = (unsigned char)(dims[i] >> 8);
        buf[n++] = (unsigned char)dims[i];
    }
    for (size_t k = 0; k < payload; k++)
        buf[n++] = (unsigned char)(k * 7 + 1);
    return n;
}

/* Loads path expecting failure with an error containing want. */
static void expect_idx_error(const char *path, const char *want) {
    dn_idx idx;
    char err[DN_ERR_MAX] = "";
    ck_assert_int_eq(dn_idx_load(path, &idx, err), -1);
    ck_assert_ptr_null(idx.data);
    assert_err(err, want);
}

/* Checks a loaded 2x3x4 IDX made by make_idx. */
static void check_idx_234(const char *path) {
    dn_idx idx;
    char err[DN_ERR_MAX] = "";
    ck_assert_msg(dn_idx_load(path, &idx, err) == 0, "%s", err);
    ck_assert_int_eq(idx.ndim, 3);
    ck_assert_uint_eq(idx.dims[0], 2);
    ck_assert_uint_eq(idx.dims[1], 3);
    ck_assert_uint_eq(idx.dims[2], 4);
    ck_assert_uint_eq(idx.count, 24);
    for (size_t k = 0; k < 24; k++)
        ck_assert_uint_eq(idx.data[k], (unsigned char)(k * 7 + 1));
    dn_idx_free(&idx);
    ck_assert_ptr_null(idx.data);
}

START_TEST(test_idx_good) {
    unsigned char buf[128];
    const uint32_t dims[3] = {2, 3, 4};
    size_t n = make_idx(buf, 0x08, 3, dims, 24);
    write_bytes(tpath("good-raw"), buf, n);
    check_idx_234(tpath("good-raw"));
    /* only good-gz.gz exists: the .gz fallback */
    write_gz(tpath("good-gz.gz"), buf, n);
    check_idx_234(tpath("good-gz"));
    /* gzip detected by content, not by name */
    write_gz(tpath("good-gz-noext"), buf, n);
    check_idx_234(tpath("good-gz-noext"));
    /* concatenated gzip members form one stream */
    write_gz(tpath("part1.gz"), buf, 10);
    write_gz(tpath("part2.gz"), buf + 10, n - 10);
    size_t l1, l2;
    unsigned char *a = read_all(tpath("part1.gz"), &l1), *b = read_all(tpath("part2.gz"), &l2);
    unsigned char *cat = malloc(l1 + l2);
    ck_assert_ptr_nonnull(cat);
    memcpy(cat, a, l1);
    memcpy(cat + l1, b, l2);
    write_bytes(tpath("multi.gz"), cat, l1 + l2);
    check_idx_234(tpath("multi.gz"));
    free(a);
    free(b);
    free(cat);
    /* 1-d and 4-d; an empty dataset */
    const uint32_t d1[1] = {5}, d4[4] = {1, 2, 1, 2}, d0[2] = {0, 28};
    dn_idx idx;
    char err[DN_ERR_MAX] = "";
    n = make_idx(buf, 0x08, 1, d1, 5);
    write_bytes(tpath("one-d"), buf, n);
    ck_assert_msg(dn_idx_load(tpath("one-d"), &idx, err) == 0, "%s", err);
    ck_assert_uint_eq(idx.count, 5);
    dn_idx_free(&idx);
    n = make_idx(buf, 0x08, 4, d4, 4);
    write_bytes(tpath("four-d"), buf, n);
    ck_assert_msg(dn_idx_load(tpath("four-d"), &idx, err) == 0, "%s", err);
    ck_assert_int_eq(idx.ndim, 4);
    dn_idx_free(&idx);
    n = make_idx(buf, 0x08, 2, d0, 0);
    write_bytes(tpath("empty"), buf, n);
    ck_assert_msg(dn_idx_load(tpath("empty"), &idx, err) == 0, "%s", err);
    ck_assert_uint_eq(idx.count, 0);
    dn_idx_free(&idx);
}
END_TEST

START_TEST(test_idx_header_errors) {
    unsigned char buf[128];
    const uint32_t dims[3] = {2, 3, 4};
    expect_idx_error(tpath("does-not-exist"), "does-not-exist: no such file (nor ");
    write_bytes(tpath("short"), "\0\0\x08", 3);
    expect_idx_error(tpath("short"),
                     "short: truncated header: file has 3 bytes, the IDX header needs 4");
    size_t n = make_idx(buf, 0x08, 3, dims, 0);
    write_bytes(tpath("short-dims"), buf, 10);
    expect_idx_error(tpath("short-dims"),
                     "truncated header: file has 10 bytes, the IDX header needs 16");
    n = make_idx(buf, 0x08, 3, dims, 24);
    buf[0] = 0x01;
    write_bytes(tpath("magic"), buf, n);
    expect_idx_error(tpath("magic"), "magic: bad magic 0x0100 at byte 0");
    n = make_idx(buf, 0x0D, 3, dims, 24);
    write_bytes(tpath("type"), buf, n);
    expect_idx_error(tpath("type"), "type: unsupported data type 0x0d at byte 2");
    n = make_idx(buf, 0x08, 0, dims, 0);
    write_bytes(tpath("ndim0"), buf, n);
    expect_idx_error(tpath("ndim0"), "number of dimensions 0 at byte 3 is out of range 1..4");
    const uint32_t d5[5] = {1, 1, 1, 1, 1};
    n = make_idx(buf, 0x08, 5, d5, 1);
    write_bytes(tpath("ndim5"), buf, n);
    expect_idx_error(tpath("ndim5"), "number of dimensions 5 at byte 3 is out of range 1..4");
    const uint32_t big[3] = {0xffffffffu, 0xffffffffu, 0xffffffffu};
    n = make_idx(buf, 0x08, 3, big, 4);
    write_bytes(tpath("overflow"), buf, n);
    expect_idx_error(tpath("overflow"),
                     "overflow: dimensions 4294967295 x 4294967295 x 4294967295 overflow 64 bits");
    const uint32_t huge[3] = {65536, 65536, 16};
    n = make_idx(buf, 0x08, 3, huge, 4);
    write_bytes(tpath("huge"), buf, n);
    expect_idx_error(
        tpath("huge"),
        "dimensions 65536 x 65536 x 16 = 68719476736 bytes exceed the limit of 17179869184 bytes");
}
END_TEST

START_TEST(test_idx_length_errors) {
    static unsigned char buf[2048];
    const uint32_t mnist[3] = {60000, 28, 28};
    size_t n = make_idx(buf, 0x08, 3, mnist, 1000);
    write_bytes(tpath("short-payload"), buf, n);
    expect_idx_error(tpath("short-payload"),
                     "short-payload: payload is 1000 bytes, header says 47040000");
    write_gz(tpath("short-payload-gz.gz"), buf, n);
    expect_idx_error(tpath("short-payload-gz"),
                     "short-payload-gz.gz: payload is 1000 bytes, header says 47040000");
    /* a lying gz header near the limit fails on the data, not on allocation */
    const uint32_t lie[3] = {65536, 65536, 4};
    n = make_idx(buf, 0x08, 3, lie, 10);
    write_gz(tpath("lie.gz"), buf, n);
    expect_idx_error(tpath("lie.gz"), "payload is 10 bytes, header says 17179869184");
    const uint32_t ten[1] = {10};
    n = make_idx(buf, 0x08, 1, ten, 12);
    write_bytes(tpath("long-payload"), buf, n);
    expect_idx_error(tpath("long-payload"), "payload is 12 bytes, header says 10 (trailing data)");
    write_gz(tpath("long-payload.gz"), buf, n);
    expect_idx_error(tpath("long-payload.gz"),
                     "payload is 12 bytes, header says 10 (trailing data)");
}
END_TEST

START_TEST(test_idx_gzip_errors) {
    unsigned char buf[128];
    const uint32_t dims[3] = {2, 3, 4};
    size_t n = make_idx(buf, 0x08, 3, dims, 24), glen;
    write_gz(tpath("g.gz"), buf, n);
    unsigned char *gz = read_all(tpath("g.gz"), &glen);
    unsigned char *junk = malloc(glen + 4);
    ck_assert_ptr_nonnull(junk);
    memcpy(junk, gz, glen);
    memcpy(junk + glen, "junk", 4);
    write_bytes(tpath("junk.gz"), junk, glen + 4);
    char want[64];
    snprintf(want, sizeof want, "junk.gz: trailing garbage after gzip data at byte %zu", glen);
    expect_idx_error(tpath("junk.gz"), want);
    write_bytes(tpath("trunc.gz"), gz, glen / 2);
    expect_idx_error(tpath("trunc.gz"), "trunc.gz: truncated gzip data (unexpected end of file");
    write_bytes(tpath("trunc-trailer.gz"), gz, glen - 4); /* payload intact, length field cut */
    expect_idx_error(tpath("trunc-trailer.gz"), "truncated gzip data");
    memcpy(junk, gz, glen);
    junk[glen - 8] ^= 0xff; /* CRC */
    write_bytes(tpath("crc.gz"), junk, glen);
    expect_idx_error(tpath("crc.gz"), "crc.gz: corrupt gzip data: incorrect data check");
    free(junk);
    free(gz);
}
END_TEST

/* Writes DIR/train-images-idx3-ubyte (n x rows x cols, pixel = 10*i + k) and
 * DIR/train-labels-idx1-ubyte with the given labels. */
static void write_dataset(const char *dir, uint32_t n, uint32_t rows, uint32_t cols,
                          const unsigned char *labels, uint32_t n_labels) {
    char path[1024];
    unsigned char buf[512];
    const uint32_t dims[3] = {n, rows, cols};
    size_t len = make_idx(buf, 0x08, 3, dims, 0);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < rows * cols; k++)
            buf[len++] = (unsigned char)(10 * i + k);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    write_bytes(path, buf, len);
    const uint32_t ld[1] = {n_labels};
    len = make_idx(buf, 0x08, 1, ld, 0);
    memcpy(buf + len, labels, n_labels);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    write_gz(path, buf, len + n_labels); /* gz content under the plain name */
}

/* Each of the gather's versions (table, AVX2, AVX-512 as far as the CPU has
 * them, picked by DN_GATHER_ISA) against the formula: every pixel value, in
 * rows of 789 pixels (not a multiple of 16, so the scalar tail runs too),
 * under several normalizations, with more rows than the gather keeps on
 * one thread. */
START_TEST(test_dataset_gather_all_pixels) {
    enum { N = 40, F = 789 };
    static uint8_t images[N * F], labels[N];
    for (int i = 0; i < N * F; i++)
        images[i] = (uint8_t)(i * 7 + i / 256);
    for (int i = 0; i < N; i++)
        labels[i] = (uint8_t)(i % 10);
    dn_dataset ds = {.n = N, .features = F, .images = images, .labels = labels};
    uint32_t idx[N];
    for (uint32_t r = 0; r < N; r++)
        idx[r] = (r * 17 + 3) % N;
    static float x[N * F];
    int32_t y[N];
    const float norm[3][2] = {{0.5f, 0.5f}, {0.1307f, 0.3081f}, {0.2860f, 0.3530f}};
    int seen[256] = {0};
    const char *isa[3] = {"table", "avx2", "avx512"};
    for (int t = 0; t < 9; t++) {
        setenv("DN_GATHER_ISA", isa[t / 3], 1);
        memset(x, 0, sizeof x);
        dn_dataset_gather(&ds, idx, N, norm[t % 3][0], norm[t % 3][1], x, y);
        for (int r = 0; r < N; r++) {
            ck_assert_int_eq(y[r], labels[idx[r]]);
            for (int k = 0; k < F; k++) {
                const uint8_t px = images[(size_t)idx[r] * F + (size_t)k];
                const float want = ((float)px / 255.0f - norm[t % 3][0]) / norm[t % 3][1];
                seen[px] = 1;
                ck_assert_msg(memcmp(&x[r * F + k], &want, sizeof want) == 0,
                              "%s: row %d pixel %d (value %d): %.9g, want %.9g", isa[t / 3], r, k, px,
                              (double)x[r * F + k], (double)want);
            }
        }
    }
    unsetenv("DN_GATHER_ISA");
    for (int v = 0; v < 256; v++)
        ck_assert_msg(seen[v], "pixel value %d not covered", v);
}
END_TEST

START_TEST(test_dataset) {
    const char *dir = tpath("ds");
    ensure_dir(dir);
    const unsigned char labels[4] = {3, 0, 9, 1};
    write_dataset(dir, 4, 2, 3, labels, 4);
    dn_dataset ds;
    char err[DN_ERR_MAX] = "";
    ck_assert_msg(dn_dataset_load(dir, "train", 6, 10, &ds, err) == 0, "%s", err);
    ck_assert_uint_eq(ds.n, 4);
    ck_assert_uint_eq(ds.features, 6);
    ck_assert_uint_eq(ds.images[2 * 6 + 5], 25);
    ck_assert_uint_eq(ds.labels[2], 9);

    const uint32_t idx[3] = {2, 0, 3};
    float x[18];
    int32_t y[3];
    dn_dataset_gather(&ds, idx, 3, 0.5f, 0.5f, x, y);
    ck_assert_int_eq(y[0], 9);
    ck_assert_int_eq(y[1], 3);
    ck_assert_int_eq(y[2], 1);
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 6; k++) {
            float px = (float)(10 * idx[r] + (uint32_t)k);
            ck_assert_float_eq(x[r * 6 + k], (px / 255.0f - 0.5f) / 0.5f);
        }
    ck_assert_float_eq(x[6], -1.0f); /* pixel 0 -> (0 - 0.5) / 0.5 */
    dn_dataset_gather(&ds, idx, 1, 0.1307f, 0.3081f, x, NULL);
    ck_assert_float_eq(x[1], (21.0f / 255.0f - 0.1307f) / 0.3081f);
    dn_dataset_free(&ds);
    ck_assert_ptr_null(ds.images);

    ck_assert_msg(dn_dataset_load(dir, "train", 0, 10, &ds, err) == 0, "%s", err);
    dn_dataset_free(&ds);
    ck_assert_int_eq(dn_dataset_load(dir, "train", 784, 10, &ds, err), -1);
    assert_err(err, "train-images-idx3-ubyte: images are 2x3 = 6 features, expected 784");
    ck_assert_ptr_null(ds.images);
    ck_assert_int_eq(dn_dataset_load(dir, "train", 6, 9, &ds, err), -1);
    assert_err(err, "train-labels-idx1-ubyte: label 9 at index 2 is out of range for 9 classes");
    ck_assert_int_eq(dn_dataset_load(dir, "t10k", 6, 10, &ds, err), -1);
    assert_err(err, "t10k-images-idx3-ubyte: no such file");

    write_dataset(dir, 4, 2, 3, labels, 3);
    ck_assert_int_eq(dn_dataset_load(dir, "train", 6, 10, &ds, err), -1);
    assert_err(err, "train-labels-idx1-ubyte: 3 labels, but ");
    assert_err(err, "train-images-idx3-ubyte has 4 images");

    unsigned char buf[64];
    const uint32_t d2[2] = {4, 6};
    char path[1024];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    write_bytes(path, buf, make_idx(buf, 0x08, 2, d2, 24));
    ck_assert_int_eq(dn_dataset_load(dir, "train", 6, 10, &ds, err), -1);
    assert_err(err, "images must be 3-d (n, rows, cols), got 2-d");
}
END_TEST

/* ---- safetensors ---------------------------------------------------------- */

static const float sample_w[6] = {1.5f, -2.0f, 0.25f, 3.0f, -0.0f, 1e-20f};
static const float sample_b[2] = {0.5f, -0.5f};
static const float sample_s[1] = {42.0f};
static const char sample_odd_name[] = "we\"ird\\na\nme\x01\xc3\xa9";

/* Writes the round-trip test file to path. */
static int write_sample(const char *path, char *err) {
    const dn_st_tensor t[4] = {
        {"fc1.weight", 2, {2, 3}, sample_w},
        {"fc1.bias", 1, {2}, sample_b},
        {sample_odd_name, 0, {0}, sample_s},
        {"empty", 2, {0, 4}, NULL},
    };
    const dn_st_meta meta[2] = {{"format", "pt"},
                                {"note", "quote \" backslash \\ tab \t \xe2\x82\xac"}};
    return dn_st_write(path, t, 4, meta, 2, err);
}

START_TEST(test_st_roundtrip) {
    char err[DN_ERR_MAX] = "";
    const char *path = tpath("rt.safetensors");
    ck_assert_msg(write_sample(path, err) == 0, "%s", err);
    dn_st_file *f;
    ck_assert_msg(dn_st_open(path, &f, err) == 0, "%s", err);
    ck_assert_int_eq(dn_st_count(f), 4);
    const char *names[4] = {"fc1.weight", "fc1.bias", sample_odd_name, "empty"};
    const int ndims[4] = {2, 1, 0, 2};
    const int64_t shapes[4][2] = {{2, 3}, {2, 0}, {0, 0}, {0, 4}};
    const void *data[4] = {sample_w, sample_b, sample_s, NULL};
    const size_t nbytes[4] = {24, 8, 4, 0};
    for (int i = 0; i < 4; i++) {
        const dn_st_info *t = dn_st_get(f, i);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(t->name, names[i]);
        ck_assert_str_eq(t->dtype, "F32");
        ck_assert_int_eq(t->ndim, ndims[i]);
        for (int d = 0; d < t->ndim; d++)
            ck_assert_int_eq(t->shape[d], shapes[i][d]);
        ck_assert_uint_eq(t->nbytes, nbytes[i]);
        if (nbytes[i])
            ck_assert_int_eq(memcmp(t->data, data[i], nbytes[i]), 0); /* little-endian host */
        ck_assert_ptr_eq(dn_st_find(f, names[i]), t);
    }
    ck_assert_ptr_null(dn_st_get(f, 4));
    ck_assert_ptr_null(dn_st_get(f, -1));
    ck_assert_ptr_null(dn_st_find(f, "fc2.weight"));
    ck_assert_str_eq(dn_st_meta_get(f, "format"), "pt");
    ck_assert_str_eq(dn_st_meta_get(f, "note"), "quote \" backslash \\ tab \t \xe2\x82\xac");
    ck_assert_ptr_null(dn_st_meta_get(f, "missing"));
    dn_st_close(f);
}
END_TEST

START_TEST(test_st_format_deterministic) {
    char err[DN_ERR_MAX] = "";
    ck_assert_msg(write_sample(tpath("d1.safetensors"), err) == 0, "%s", err);
    ck_assert_msg(write_sample(tpath("d2.safetensors"), err) == 0, "%s", err);
    size_t l1, l2;
    unsigned char *a = read_all(tpath("d1.safetensors"), &l1);
    unsigned char *b = read_all(tpath("d2.safetensors"), &l2);
    ck_assert_uint_eq(l1, l2);
    ck_assert_int_eq(memcmp(a, b, l1), 0);
    free(a);
    free(b);

    /* exact bytes of a small file */
    const float v[2] = {1.0f, -2.0f};
    const dn_st_tensor t[1] = {{"a", 1, {2}, v}};
    const dn_st_meta meta[1] = {{"format", "pt"}};
    ck_assert_msg(dn_st_write(tpath("small.safetensors"), t, 1, meta, 1, err) == 0, "%s", err);
    unsigned char *s = read_all(tpath("small.safetensors"), &l1);
    const char json[] = "{\"__metadata__\":{\"format\":\"pt\"},"
                        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    size_t jl = strlen(json), padded = (jl + 7) / 8 * 8;
    ck_assert_uint_eq(l1, 8 + padded + 8);
    ck_assert_uint_eq(s[0], padded);
    for (int k = 1; k < 8; k++)
        ck_assert_uint_eq(s[k], 0);
    ck_assert_int_eq(memcmp(s + 8, json, jl), 0);
    for (size_t k = jl; k < padded; k++)
        ck_assert_uint_eq(s[8 + k], ' ');
    const unsigned char le[8] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0};
    ck_assert_int_eq(memcmp(s + 8 + padded, le, 8), 0);
    free(s);

    /* JSON escapes in the header */
    const dn_st_tensor t2[1] = {{"q\"\\\n\x1f", 0, {0}, v}};
    ck_assert_msg(dn_st_write(tpath("esc.safetensors"), t2, 1, NULL, 0, err) == 0, "%s", err);
    s = read_all(tpath("esc.safetensors"), &l1);
    const char json2[] =
        "{\"q\\\"\\\\\\n\\u001f\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}";
    ck_assert_int_eq(memcmp(s + 8, json2, strlen(json2)), 0);
    free(s);
}
END_TEST

/* Writes a safetensors file with the given header length field, JSON text
 * and data_len data bytes. */
static void write_st_raw(const char *path, uint64_t hlen, const char *json, size_t data_len) {
    size_t jl = strlen(json);
    unsigned char *buf = calloc(1, 8 + jl + data_len);
    ck_assert_ptr_nonnull(buf);
    for (int k = 0; k < 8; k++)
        buf[k] = (unsigned char)(hlen >> (8 * k));
    memcpy(buf + 8, json, jl);
    write_bytes(path, buf, 8 + jl + data_len);
    free(buf);
}

/* Writes json + data_len bytes as w.safetensors and expects dn_st_open to
 * fail with a message containing want. */
static void expect_st_error(const char *json, size_t data_len, const char *want) {
    const char *path = tpath("w.safetensors");
    write_st_raw(path, strlen(json), json, data_len);
    dn_st_file *f = (dn_st_file *)&f;
    char err[DN_ERR_MAX] = "";
    ck_assert_msg(dn_st_open(path, &f, err) == -1, "accepted: %s", json);
    ck_assert_ptr_null(f);
    assert_err(err, want);
}

START_TEST(test_st_reject_structure) {
    const char *path = tpath("w.safetensors");
    dn_st_file *f;
    char err[DN_ERR_MAX] = "";
    write_st_raw(path, 1ull << 63, "{}", 0);
    ck_assert_int_eq(dn_st_open(path, &f, err), -1);
    assert_err(
        err,
        "w.safetensors: header length 9223372036854775808 exceeds the limit (100000000 bytes)");
    write_st_raw(path, 100, "{}      ", 12);
    ck_assert_int_eq(dn_st_open(path, &f, err), -1);
    assert_err(err,
               "w.safetensors: header length 100 exceeds the file's remaining size (20 bytes)");
    write_bytes(path, "\x02\0\0\0", 4);
    ck_assert_int_eq(dn_st_open(path, &f, err), -1);
    assert_err(err, "w.safetensors: file is 4 bytes, too short for the 8-byte header length");
    ck_assert_int_eq(dn_st_open(tpath("nope.safetensors"), &f, err), -1);
    assert_err(err, "nope.safetensors: cannot open: No such file or directory");
    /* an empty header object is a valid file */
    write_st_raw(path, 8, "{}      ", 0);
    ck_assert_msg(dn_st_open(path, &f, err) == 0, "%s", err);
    ck_assert_int_eq(dn_st_count(f), 0);
    dn_st_close(f);
}
END_TEST

START_TEST(test_st_reject_json) {
    expect_st_error("", 0, "w.safetensors: bad JSON header at byte 8: expected '{'");
    expect_st_error("[]", 0, "bad JSON header at byte 8: expected '{'");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",}}", 0,
                    "bad JSON header at byte 28: expected a string");
    expect_st_error("{\"a\" {}}", 0, "bad JSON header at byte 13: expected ':'");
    expect_st_error("{} x", 0,
                    "bad JSON header at byte 11: trailing characters after the header object");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                    "bad JSON header at byte 37: only integers are allowed");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4,
                    "leading zero in integer");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":true,\"data_offsets\":[0,4]}}", 4,
                    "bad JSON header at byte 36: expected '['");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                    "bad JSON header at byte 37: shape must be a non-negative integer");
    expect_st_error(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551616]}}", 4,
        "integer too large");
    expect_st_error(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
        "shape has more than 8 entries");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
                    "data_offsets has more than 2 entries");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                    "data_offsets must have 2 entries");
    expect_st_error("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                    "w.safetensors: tensor 'a' at byte 13: missing \"dtype\"");
    expect_st_error(
        "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
        "tensor 'a': unexpected or repeated key \"dtype\" at byte 28");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"extra\":1,\"shape\":[1],\"data_offsets\":[0,4]}}",
                    4, "unexpected or repeated key \"extra\"");
    expect_st_error("{\"a\":7}", 0, "w.safetensors: tensor 'a': expected an object at byte 13");
    expect_st_error("{\"a\\x\":{}}", 0, "bad JSON header at byte 11: bad escape in string");
    expect_st_error("{\"\\ud800\":{}}", 0, "bad JSON header at byte 10: unpaired high surrogate");
    expect_st_error("{\"\\udc00\":{}}", 0, "unpaired low surrogate");
    expect_st_error("{\"\\u00zz\":{}}", 0, "bad hex digit in \\u escape");
    expect_st_error("{\"\\u0000\":{}}", 0, "NUL character in string");
    expect_st_error("{\"a\xff\":{}}", 0, "bad JSON header at byte 11: invalid UTF-8 in string");
    expect_st_error("{\"\xc0\x80\":{}}", 0, "invalid UTF-8 in string");
    expect_st_error("{\"a\tb\":{}}", 0, "bad JSON header at byte 11: control character in string");
    expect_st_error("{\"abc", 0, "bad JSON header at byte 9: unterminated string");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4,
                    "expected ',' or '}'");
    expect_st_error("{\"__metadata__\":{\"k\":1}}", 0,
                    "w.safetensors: __metadata__ value for 'k' at byte 29 must be a string");
    expect_st_error("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0,
                    "__metadata__ value for 'k' at byte 29 must be a string");
    expect_st_error("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0,
                    "duplicate __metadata__ key 'k' at byte 33");
    expect_st_error("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "repeated \"__metadata__\"");
}
END_TEST

START_TEST(test_st_reject_tensors) {
    expect_st_error("{\"a\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
                    "w.safetensors: tensor 'a': unknown dtype \"F8\" at byte 22");
    expect_st_error(
        "{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[256,784],\"data_offsets\":[0,1000]}}", 1000,
        "w.safetensors: tensor 'fc1.weight': data_offsets [0, 1000] do not match shape "
        "[256, 784] of F32 (802816 bytes)");
    expect_st_error(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,0]}}", 0,
        "do not match shape [4611686018427387904, 4] of F32 (size overflows)");
    expect_st_error(
        "{\"a\":{\"dtype\":\"I64\",\"shape\":[9223372036854775808],\"data_offsets\":[0,0]}}", 0,
        "(size overflows)");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[8,4]}}", 8,
                    "tensor 'a': data_offsets [8, 4] do not match shape [] of F32 (4 bytes)");
    expect_st_error(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
        "w.safetensors: tensor 'a': data_offsets [0, 16] lie outside the data area (8 bytes)");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                    12, "w.safetensors: tensors 'a' [0, 8] and 'b' [4, 12] overlap");
    expect_st_error("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}",
                    8, "tensors 'a' [0, 8] and 'b' [2, 4] overlap");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                    8, "w.safetensors: duplicate tensor name 'a' at byte 62");

    /* every dtype, a shared empty range, gaps and escapes are accepted */
    const char *json =
        "{\"f64\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},"
        "\"i64\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[8,16]},"
        "\"u64\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[16,24]},"
        "\"f32\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[24,28]},"
        "\"i32\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[28,32]},"
        "\"u32\":{\"dtype\":\"U32\",\"shape\":[1],\"data_offsets\":[32,36]},"
        "\"f16\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[36,38]},"
        "\"bf16\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[38,40]},"
        "\"i16\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[40,42]},"
        "\"u16\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[42,44]},"
        "\"i8\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[44,45]},"
        "\"u8\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[45,46]},"
        "\"bool\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[46,47]},"
        "\"e1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
        " \"\\u00e9\\ud83d\\ude00\\/\\t\" : { \"data_offsets\" : [ 48 , 52 ] , \"shape\" : [ 1 ] ,"
        " \"dtype\" : \"F32\" } ,\n\"__metadata__\":{\"\\u20ac\":\"v\"}}";
    const char *path = tpath("ok.safetensors");
    write_st_raw(path, strlen(json), json, 56);
    dn_st_file *f;
    char err[DN_ERR_MAX] = "";
    ck_assert_msg(dn_st_open(path, &f, err) == 0, "%s", err);
    ck_assert_int_eq(dn_st_count(f), 15);
    ck_assert_str_eq(dn_st_get(f, 6)->dtype, "F16");
    ck_assert_uint_eq(dn_st_find(f, "bf16")->nbytes, 2);
    const dn_st_info *u = dn_st_find(f, "\xc3\xa9\xf0\x9f\x98\x80/\t");
    ck_assert_ptr_nonnull(u);
    ck_assert_uint_eq(((uintptr_t)u->data) % 16, 0); /* data area is aligned */
    ck_assert_str_eq(dn_st_meta_get(f, "\xe2\x82\xac"), "v");
    dn_st_close(f);
}
END_TEST

/* ---- atomic writes -------------------------------------------------------- */

/* Number of entries in dir whose name contains part. */
static int count_entries(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, part) != NULL;
    closedir(d);
    return n;
}

START_TEST(test_atomic_basic) {
    const char *dir = tpath("atomic1");
    ensure_dir(dir);
    char path[1024], err[DN_ERR_MAX] = "";
    snprintf(path, sizeof path, "%s/out.bin", dir);
    mode_t old_mask = umask(022);
    ck_assert_msg(dn_write_file_atomic(path, "first", 5, err) == 0, "%s", err);
    ck_assert_msg(dn_write_file_atomic(path, "second!", 7, err) == 0, "%s", err);
    umask(old_mask);
    size_t len;
    unsigned char *s = read_all(path, &len);
    ck_assert_uint_eq(len, 7);
    ck_assert_int_eq(memcmp(s, "second!", 7), 0);
    free(s);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0644);
    ck_assert_int_eq(count_entries(dir, ".tmp."), 0);
    ck_assert_msg(dn_write_file_atomic(path, "", 0, err) == 0, "%s", err);

    snprintf(path, sizeof path, "%s/no/such/dir/out.safetensors", dir);
    ck_assert_int_eq(dn_write_file_atomic(path, "x", 1, err), -1);
    assert_err(err, "dir/out.safetensors: cannot create temporary file in '");
    assert_err(err, "/no/such/dir': No such file or directory");
    const dn_st_tensor t[1] = {{"a", 1, {2}, sample_b}};
    ck_assert_int_eq(dn_st_write(path, t, 1, NULL, 0, err), -1);
    assert_err(err, "No such file or directory");
    ck_assert_int_eq(dn_write_file_atomic(dir, "x", 1, err), -1); /* a directory */
}
END_TEST

START_TEST(test_atomic_failure_keeps_old) {
    const char *dir = tpath("atomic2");
    ensure_dir(dir);
    char path[1024], err[DN_ERR_MAX] = "";
    snprintf(path, sizeof path, "%s/out.safetensors", dir);
    ck_assert_msg(write_sample(path, err) == 0, "%s", err);
    size_t old_len;
    unsigned char *old = read_all(path, &old_len);

    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* child: the file size limit makes write() fail with EFBIG */
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {4096, 4096};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(2);
        static unsigned char big[100000];
        char cerr[DN_ERR_MAX] = "";
        int rc = dn_write_file_atomic(path, big, sizeof big, cerr);
        _exit(rc == -1 && strstr(cerr, "out.safetensors: write failed: File too large") ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    size_t len;
    unsigned char *now = read_all(path, &len);
    ck_assert_uint_eq(len, old_len);
    ck_assert_int_eq(memcmp(now, old, len), 0);
    ck_assert_int_eq(count_entries(dir, ".tmp."), 0);
    free(now);
    free(old);
}
END_TEST

/* ---- suite ------------------------------------------------------------------- */

/* ---- whole files (dn_file.c) ---------------------------------------------------- */

/* Contents with a NUL after them; sizes around the buffer's growth steps;
 * the cap is inclusive; an empty file is an empty buffer. */
START_TEST(test_file_read) {
    static const size_t sizes[] = {0, 1, 65535, 65536, 65537, 200000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        unsigned char *want = malloc(n ? n : 1);
        ck_assert_ptr_nonnull(want);
        for (size_t i = 0; i < n; i++)
            want[i] = (unsigned char)(i * 7 + (i >> 9)); /* NUL bytes included */
        write_bytes(tpath("whole.bin"), want, n);
        char *data = NULL, why[DN_ERR_MAX];
        size_t len = 1;
        ck_assert_int_eq(dn_file_read(tpath("whole.bin"), 0, &data, &len, why), 0);
        ck_assert_uint_eq(len, n);
        ck_assert(memcmp(data, want, n) == 0 && data[n] == '\0');
        free(data);
        ck_assert_int_eq(dn_file_read(tpath("whole.bin"), n ? n : 1, &data, &len, why), 0);
        ck_assert_uint_eq(len, n);
        free(data);
        if (n > 0) {
            ck_assert_int_eq(dn_file_read(tpath("whole.bin"), n - 1 ? n - 1 : 0, &data, &len, why),
                             n - 1 ? DN_FILE_BIG : 0);
            if (n - 1) {
                ck_assert_ptr_null(data);
                ck_assert_uint_eq(len, 0);
                char msg[64];
                snprintf(msg, sizeof msg, "file is larger than %zu bytes", n - 1);
                ck_assert_str_eq(why, msg);
            }
            free(data);
        }
        free(want);
    }
}
END_TEST

/* Reasons without the file's name: strerror's, for the caller to place. */
START_TEST(test_file_read_errors) {
    char *data = (char *)1, why[DN_ERR_MAX];
    size_t len = 7;
    ck_assert_int_eq(dn_file_read(tpath("no-such-file"), 0, &data, &len, why), DN_FILE_OPEN);
    ck_assert_ptr_null(data);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(why, "No such file or directory");
    ck_assert_int_eq(dn_file_read(DNGEN_TEST_TMP, 0, &data, &len, why), DN_FILE_READ);
    ck_assert_str_eq(why, "Is a directory");
    ck_assert_int_eq(dn_file_read(tpath("no-such-file"), 0, &data, &len, NULL), DN_FILE_OPEN);
}
END_TEST

/* A stream from where it stands: the rest of a file after a peek. */
START_TEST(test_file_read_stream) {
    write_bytes(tpath("stream.txt"), "headbody", 8);
    FILE *f = fopen(tpath("stream.txt"), "rb");
    ck_assert_ptr_nonnull(f);
    char head[4], *data = NULL, why[DN_ERR_MAX];
    size_t len = 0;
    ck_assert_uint_eq(fread(head, 1, 4, f), 4);
    ck_assert_int_eq(dn_file_read_stream(f, 0, &data, &len, why), 0);
    ck_assert_uint_eq(len, 4);
    ck_assert_str_eq(data, "body");
    free(data);
    rewind(f);
    ck_assert_int_eq(dn_file_read_stream(f, 3, &data, &len, why), DN_FILE_BIG);
    ck_assert_str_eq(why, "file is larger than 3 bytes");
    fclose(f);
}
END_TEST

/* ---- CSV (dn_csv.c) ---------------------------------------------------------------- */

/* Lines: LF or CRLF, the last without one, a byte order mark skipped,
 * blank lines skipped by next_record only; fields trimmed, with columns. */
START_TEST(test_csv_lines_and_fields) {
    static const char text[] = "\xEF\xBB\xBF" "a, b ,\tc\r\n\n  \r\nx,,y\n,\nlast";
    dn_csv c;
    dn_csv_field f;
    dn_csv_init(&c, "t.csv", text, sizeof text - 1);
    ck_assert_int_eq(dn_csv_next_record(&c), 1);
    ck_assert_uint_eq(c.line, 1);
    ck_assert_uint_eq(dn_csv_count_fields(&c), 3);
    static const char *const want1[] = {"a", "b", "c"};
    static const size_t col1[] = {1, 4, 8};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(dn_csv_next_field(&c, &f), 1);
        ck_assert_uint_eq(f.n, strlen(want1[i]));
        ck_assert(memcmp(f.p, want1[i], f.n) == 0);
        ck_assert_uint_eq(f.col, col1[i]);
    }
    ck_assert_int_eq(dn_csv_next_field(&c, &f), 0);
    dn_csv_rewind(&c);
    ck_assert_int_eq(dn_csv_next_field(&c, &f), 1);
    ck_assert_uint_eq(f.col, 1);
    ck_assert_int_eq(dn_csv_next_line(&c), 1); /* line 2: empty, one empty field */
    ck_assert(dn_csv_blank(&c));
    ck_assert_uint_eq(dn_csv_count_fields(&c), 1);
    ck_assert_int_eq(dn_csv_next_field(&c, &f), 1);
    ck_assert_uint_eq(f.n, 0);
    ck_assert_int_eq(dn_csv_next_field(&c, &f), 0);
    ck_assert_int_eq(dn_csv_next_record(&c), 1); /* past line 3 (blanks and a CR) */
    ck_assert_uint_eq(c.line, 4);
    ck_assert_uint_eq(dn_csv_count_fields(&c), 3);
    ck_assert_int_eq(dn_csv_next_record(&c), 1); /* ",": two empty fields */
    ck_assert_uint_eq(dn_csv_count_fields(&c), 2);
    ck_assert(dn_csv_next_field(&c, &f) && f.n == 0 && f.col == 1);
    ck_assert(dn_csv_next_field(&c, &f) && f.n == 0 && f.col == 2);
    ck_assert_int_eq(dn_csv_next_field(&c, &f), 0);
    ck_assert_int_eq(dn_csv_next_record(&c), 1);
    ck_assert_uint_eq(c.line, 6);
    ck_assert(c.n == 4 && memcmp(c.text, "last", 4) == 0);
    ck_assert_int_eq(dn_csv_next_record(&c), 0);
    dn_csv_init(&c, NULL, "", 0);
    ck_assert_int_eq(dn_csv_next_line(&c), 0);
    ck_assert_str_eq(c.name, "(input)");
}
END_TEST

/* Numbers: the decimal grammar, whole field only, finite doubles. */
START_TEST(test_csv_numbers) {
    static const struct {
        const char *text;
        int rc;
        double v;
    } cases[] = {
        {"0", DN_CSV_NUM_OK, 0},        {"-1.5", DN_CSV_NUM_OK, -1.5},  {"+.5", DN_CSV_NUM_OK, 0.5},
        {"5.", DN_CSV_NUM_OK, 5},       {"1e3", DN_CSV_NUM_OK, 1000},   {"2E-2", DN_CSV_NUM_OK, 0.02},
        {"1e", DN_CSV_NUM_SYNTAX, 0},   {".", DN_CSV_NUM_SYNTAX, 0},    {"", DN_CSV_NUM_SYNTAX, 0},
        {"0x10", DN_CSV_NUM_SYNTAX, 0}, {"1 2", DN_CSV_NUM_SYNTAX, 0},  {"abc", DN_CSV_NUM_SYNTAX, 0},
        {"nan", DN_CSV_NUM_NONFINITE, 0}, {"-Inf", DN_CSV_NUM_NONFINITE, 0},
        {"INFINITY", DN_CSV_NUM_NONFINITE, 0}, {"nan(0x1)", DN_CSV_NUM_NONFINITE, 0},
        {"1e999", DN_CSV_NUM_RANGE, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        double v = -7;
        int rc = dn_csv_number(cases[k].text, strlen(cases[k].text), &v);
        ck_assert_msg(rc == cases[k].rc, "'%s': %d", cases[k].text, rc);
        if (rc == DN_CSV_NUM_OK)
            ck_assert_msg(v == cases[k].v, "'%s': %g", cases[k].text, v);
    }
    char big[DN_CSV_NUM_MAX + 1];
    memset(big, '1', sizeof big);
    double v;
    ck_assert_int_eq(dn_csv_number(big, DN_CSV_NUM_MAX - 1, &v), DN_CSV_NUM_RANGE); /* 1e510 */
    memset(big, '0', sizeof big);
    ck_assert_int_eq(dn_csv_number(big, DN_CSV_NUM_MAX - 1, &v), DN_CSV_NUM_OK);
    ck_assert_int_eq(dn_csv_number(big, DN_CSV_NUM_MAX, &v), DN_CSV_NUM_LONG);
    /* not NUL-terminated: the number ends where the length says */
    ck_assert_int_eq(dn_csv_number("12345", 2, &v), DN_CSV_NUM_OK);
    ck_assert(v == 12);
    ck_assert_uint_eq(dn_csv_scan_number("1.5e+3x", 7), 6);
    ck_assert_uint_eq(dn_csv_scan_number("1e+x", 4), 1);
    ck_assert_uint_eq(dn_csv_scan_number("-x", 2), 0);
}
END_TEST

/* Messages: "NAME:LINE:COL: ", quoted fields cut and made printable, a
 * small buffer truncated, control bytes of names as '?'. */
START_TEST(test_csv_messages) {
    static const char text[] = "a\nb,'q'\x01z\n";
    dn_csv c;
    dn_csv_field f;
    char err[128], q[DN_CSV_QUOTE_MAX + 4];
    dn_csv_init(&c, "dir/t.csv", text, sizeof text - 1);
    ck_assert(dn_csv_next_line(&c) && dn_csv_next_line(&c));
    ck_assert(dn_csv_next_field(&c, &f) && dn_csv_next_field(&c, &f));
    dn_csv_errf(&c, f.col, err, sizeof err, "got '%s'", dn_csv_quote(f.p, f.n, q));
    ck_assert_str_eq(err, "dir/t.csv:2:3: got '?q??z'");
    dn_csv_errf(&c, 0, err, sizeof err, "whole line");
    ck_assert_str_eq(err, "dir/t.csv:2: whole line");
    dn_csv_errf(&c, 3, err, 6, "long message");
    ck_assert_str_eq(err, "dir/t");
    dn_csv_errf(&c, 3, NULL, 0, "nothing");
    const char name[] = {'a', '\n', 'b', '\0'};
    dn_csv_init(&c, name, text, 1);
    ck_assert(dn_csv_next_line(&c));
    dn_csv_errf(&c, 1, err, sizeof err, "x");
    ck_assert_str_eq(err, "a?b:1:1: x");
    char long_field[40];
    memset(long_field, '7', sizeof long_field);
    ck_assert_str_eq(dn_csv_quote(long_field, sizeof long_field, q), "77777777777777777777777777777777...");
}
END_TEST

/* ---- learning-rate schedules ------------------------------------------------ */

/* The F64 tensor `name` of schedules.safetensors (count values, copied out:
 * safetensors promises no alignment). */
static double *sched_f64(const dn_st_file *f, const char *name, size_t *count) {
    const dn_st_info *t = dn_st_find(f, name);
    ck_assert_msg(t && strcmp(t->dtype, "F64") == 0, "fixture tensor %s", name);
    double *v = malloc(t->nbytes + 8);
    ck_assert_ptr_nonnull(v);
    memcpy(v, t->data, t->nbytes);
    *count = t->nbytes / 8;
    return v;
}

/* The schedules of tests/fixtures/schedules.safetensors (tools/torch_reference.py):
 * StepLR, ExponentialLR, warmup + cosine (PyTorch's LinearLR + CosineAnnealingLR
 * chain) and ReduceLROnPlateau on a loss and on an accuracy. The settings
 * pass through float as a spec's do in a generated trainer. */
static const char *const sched_names[] = {"step", "exponential", "cosine", "cosine_nowarmup", "plateau_loss",
                                          "plateau_acc"};

/* Each schedule's learning rates equal PyTorch's: the per-epoch ones bit for
 * bit (the same double operations), cosine (a closed form against PyTorch's
 * recursive chain) within 1e-12 relative. */
START_TEST(test_schedules_torch) {
    char path[4096], name[64], err[DN_ERR_MAX];
    snprintf(path, sizeof path, "%s/tests/fixtures/schedules.safetensors", DNGEN_SOURCE_DIR);
    dn_st_file *f;
    ck_assert_msg(dn_st_open(path, &f, err) == 0, "%s", err);
    const char *sn = sched_names[_i];
    size_t nc, nl, nm = 0;
    snprintf(name, sizeof name, "%s.config", sn);
    double *c = sched_f64(f, name, &nc), *metric = NULL;
    snprintf(name, sizeof name, "%s.lr", sn);
    double *want = sched_f64(f, name, &nl);
    ck_assert_int_eq(nc, 12);
    dn_lr_sched s = {.type = (int)c[0], .step_size = (int)c[2], .gamma = (float)c[3], .warmup_steps = (int64_t)c[4],
                     .min_lr = (float)c[5], .factor = (float)c[6], .threshold = (float)c[7], .patience = (int)c[8],
                     .cooldown = (int)c[9], .metric_acc = (int)c[10]};
    const double base = dn_adam_as_typed((float)c[1]);
    const int64_t total = (int64_t)c[11];
    ck_assert_int_eq(nl, total);
    if (s.type == DN_LRS_PLATEAU) {
        snprintf(name, sizeof name, "%s.metric", sn);
        metric = sched_f64(f, name, &nm);
        ck_assert_int_eq(nm, total);
    }
    dn_lr_state st;
    dn_lrs_start(&s, base, &st);
    for (int64_t k = 0; k < total; k++) {
        double got = dn_lrs_at(&s, &st, base, k, total);
        if (s.type == DN_LRS_COSINE)
            ck_assert_msg(fabs(got - want[k]) <= 1e-12 * want[k], "%s step %lld: %.17g vs %.17g", sn, (long long)k,
                          got, want[k]);
        else
            ck_assert_msg(got == want[k], "%s epoch %lld: %.17g vs %.17g", sn, (long long)k, got, want[k]);
        if (s.type != DN_LRS_COSINE)
            dn_lrs_epoch_end(&s, &st, metric ? metric[k] : 0.0);
    }
    free(c);
    free(want);
    free(metric);
    dn_st_close(f);
}
END_TEST

static Suite *runtime_suite(void) {
    Suite *s = suite_create("check_runtime");
    TCase *rng = tcase_create("rng");
    tcase_add_test(rng, test_philox_kat);
    tcase_add_test(rng, test_rand_u32_pure);
    tcase_add_test(rng, test_shuffle);
    tcase_add_test(rng, test_dropout_rate);
    suite_add_tcase(s, rng);
    TCase *adam = tcase_create("adam");
    tcase_add_test(adam, test_adam_torch);
    tcase_add_test(adam, test_adam_l2_torch);
    tcase_add_test(adam, test_adamw_torch);
    tcase_add_test(adam, test_adam_threads);
    tcase_add_loop_test(adam, test_schedules_torch, 0, (int)(sizeof sched_names / sizeof sched_names[0]));
    suite_add_tcase(s, adam);
    TCase *idx = tcase_create("idx");
    tcase_add_test(idx, test_idx_good);
    tcase_add_test(idx, test_idx_header_errors);
    tcase_add_test(idx, test_idx_length_errors);
    tcase_add_test(idx, test_idx_gzip_errors);
    tcase_add_test(idx, test_dataset);
    tcase_add_test(idx, test_dataset_gather_all_pixels);
    suite_add_tcase(s, idx);
    TCase *st = tcase_create("safetensors");
    tcase_add_test(st, test_st_roundtrip);
    tcase_add_test(st, test_st_format_deterministic);
    tcase_add_test(st, test_st_reject_structure);
    tcase_add_test(st, test_st_reject_json);
    tcase_add_test(st, test_st_reject_tensors);
    tcase_add_test(st, test_atomic_basic);
    tcase_add_test(st, test_atomic_failure_keeps_old);
    suite_add_tcase(s, st);
    TCase *files = tcase_create("files");
    tcase_add_test(files, test_file_read);
    tcase_add_test(files, test_file_read_errors);
    tcase_add_test(files, test_file_read_stream);
    tcase_add_test(files, test_csv_lines_and_fields);
    tcase_add_test(files, test_csv_numbers);
    tcase_add_test(files, test_csv_messages);
    suite_add_tcase(s, files);
    return s;
}

int main(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/check_runtime", DNGEN_TEST_TMP);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", dir, strerror(errno));
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(runtime_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
