/* check_data.c - the dataset readers: CSV tables (dn_data_csv.c) and NumPy
 * arrays (dn_npy.c). Good files are numpy's own (tests/fixtures/data/, made
 * by tools/data_fixtures.py, values given there as formulas recomputed
 * here) or small texts written below; hostile ones must each give one error
 * line naming the file and the place, and leave the table empty. */
#include "dn_runtime.h"
#include "dn_train.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define FIX DNGEN_SOURCE_DIR "/tests/fixtures/data/"

/* ---- helpers -------------------------------------------------------------- */

/* A static path DNGEN_TEST_TMP/check_data/<name>. */
static const char *tpath(const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    mkdir(DNGEN_TEST_TMP "/check_data", 0777);
    snprintf(buf[k], sizeof buf[k], "%s/check_data/%s", DNGEN_TEST_TMP, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_gz(const char *path, const void *data, size_t len) {
    gzFile g = gzopen(path, "wb");
    ck_assert_msg(g != NULL, "cannot create %s", path);
    ck_assert_int_eq(gzwrite(g, data, (unsigned)len), (int)len);
    ck_assert_int_eq(gzclose(g), Z_OK);
}

/* Asserts a failed read: err contains want, is one line, the table empty. */
static void expect_fail(int rc, const dn_table *t, const char *err, const char *want) {
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
    ck_assert_ptr_null(strchr(err, '\n'));
    ck_assert_ptr_null(t->x);
    ck_assert_ptr_null(t->y);
    ck_assert_ptr_null(t->t);
    ck_assert_uint_eq(t->n, 0);
}

#define assert_contains(err, want)                                                                 \
    ck_assert_msg(strstr((err), (want)) != NULL, "error \"%s\" lacks \"%s\"", (err), (want))

/* Parses text with options o. */
static int parse(const char *text, const dn_csv_opts *o, dn_table *t, char *err) {
    return dn_csv_table_parse("t.csv", text, strlen(text), o, t, err);
}

/* Parses text that must fail with want. */
static void csv_fail(const char *text, const dn_csv_opts *o, const char *want) {
    dn_table t;
    char err[DN_ERR_MAX];
    expect_fail(parse(text, o, &t, err), &t, err, want);
}

/* ---- CSV ------------------------------------------------------------------ */

START_TEST(test_csv_numbers_and_labels) {
    dn_csv_opts o = {0};
    dn_table t;
    char err[DN_ERR_MAX];
    ck_assert_msg(parse("1,2.5,0\n-3e2,+.5,2\r\n\n# comment\n 4 , 5 ,1", &o, &t, err) == 0, "%s", err);
    ck_assert_uint_eq(t.n, 3);
    ck_assert_uint_eq(t.features, 2);
    ck_assert_uint_eq(t.targets, 0);
    ck_assert_int_eq(t.n_classes, 3);
    ck_assert_ptr_null(t.class_names);
    ck_assert_ptr_null(t.feature_names);
    const float x[] = {1, 2.5f, -300, 0.5f, 4, 5};
    const int32_t y[] = {0, 2, 1};
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(t.x[i], x[i]);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(t.y[i], y[i]);
    dn_table_free(&t);
    ck_assert_ptr_null(t.x);
}
END_TEST

/* Every number a row can hold reads as strtod reads it, rounded to float:
 * short decimals (the fast path), long ones, large exponents (strtod). */
START_TEST(test_csv_numbers_as_strtod) {
    static const char *const fmt[] = {"%.17g", "%.9g", "%g", "%.3f", "%.12e", "%.0f"};
    char *text = malloc(1 << 20), *p = text;
    ck_assert_ptr_nonnull(text);
    uint64_t s = 12345;
    int n = 0;
    for (int r = 0; r < 3000; r++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double v = ldexp((double)(s >> 11) / 9007199254740992.0, (int)((s >> 3) % 160) - 80);
        v = (s & 1) ? -v : v;
        p += sprintf(p, fmt[r % 6], v);
        p += sprintf(p, r % 7 == 0 ? ",0000123.4500e-2,1\n" : ",%llu,1\n", (unsigned long long)(s % 1000000007));
        n++;
    }
    dn_csv_opts o = {0};
    dn_table t;
    char err[DN_ERR_MAX];
    ck_assert_msg(parse(text, &o, &t, err) == 0, "%s", err);
    ck_assert_uint_eq(t.n, (unsigned)n);
    const char *line = text;
    for (int r = 0; r < n; r++) {
        char *end;
        double a = strtod(line, &end);
        double b = strtod(end + 1, &end);
        ck_assert_msg(t.x[2 * r] == (float)a && t.x[2 * r + 1] == (float)b, "row %d: %.9g %.9g vs %.9g %.9g",
                      r, (double)t.x[2 * r], (double)t.x[2 * r + 1], a, b);
        line = strchr(line, '\n') + 1;
    }
    dn_table_free(&t);
    free(text);
}
END_TEST

/* Decimals next to a float rounding midpoint (the hard case of the fast
 * paths), in 17 to 30 digits, read exactly as (float)strtod reads them. */
START_TEST(test_csv_near_midpoints) {
    static const char *const fmt[] = {"%.17g", "%.19g", "%.21g", "%.30g", "%.18g"};
    char *text = malloc(1 << 20), *p = text;
    ck_assert_ptr_nonnull(text);
    uint64_t s = 7;
    for (int r = 0; r < 20000; r++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        float a = ldexpf((float)((s >> 40) | 1) / 16777216.0f, (int)((s >> 8) % 120) - 60);
        double mid = ((double)a + (double)nextafterf(a, INFINITY)) / 2;
        if (s & 2)
            mid = nextafter(mid, (s & 4) ? INFINITY : -INFINITY);
        p += sprintf(p, fmt[r % 5], (s & 8) ? -mid : mid);
        p += sprintf(p, ",0\n");
    }
    dn_csv_opts o = {0};
    dn_table t;
    char err[DN_ERR_MAX];
    ck_assert_msg(parse(text, &o, &t, err) == 0, "%s", err);
    const char *line = text;
    for (uint32_t r = 0; r < t.n; r++) {
        float want = (float)strtod(line, NULL);
        ck_assert_msg(memcmp(&want, &t.x[r], sizeof want) == 0, "row %u: %.9g, strtod %.9g", r,
                      (double)t.x[r], (double)want);
        line = strchr(line, '\n') + 1;
    }
    dn_table_free(&t);
    free(text);
}
END_TEST

START_TEST(test_csv_header_names_quotes) {
    const char *text = "id;\"size; cm\";colour;\"the \"\"kind\"\"\";w\n"
                       "1;2,5;red;\"b \"\"x\"\"\";7\n"
                       "2;\"3\";blue;a;8\n"
                       "3;4;red;c;9\n";
    const char *target[] = {"the \"kind\""};
    const char *ignore[] = {"id", "2"};
    dn_csv_opts o = {.delimiter = ';', .header = 1, .target = target, .n_target = 1,
                     .ignore = ignore, .n_ignore = 2};
    dn_table t;
    char err[DN_ERR_MAX];
    /* "2,5" is no number with ';' as the delimiter: the decimal point is '.' */
    ck_assert_int_eq(parse(text, &o, &t, err), -1);
    ck_assert_str_eq(err, "t.csv:2:3: not a number '2,5' in column 'size; cm'");
    const char *ignore2[] = {"id", "colour"};
    o.ignore = ignore2;
    const char *ok = "id;\"size; cm\";colour;\"the \"\"kind\"\"\";w\n"
                     "1;2.5;red;\"b \"\"x\"\"\";7\n"
                     "2;\"3\";blue;a;8\n"
                     "3;4;red;c;9\n";
    ck_assert_msg(parse(ok, &o, &t, err) == 0, "%s", err);
    ck_assert_uint_eq(t.n, 3);
    ck_assert_uint_eq(t.features, 2);
    ck_assert_str_eq(t.feature_names[0], "size; cm");
    ck_assert_str_eq(t.feature_names[1], "w");
    /* names numbered in sorted byte order: "a" < "b \"x\"" < "c" */
    ck_assert_int_eq(t.n_classes, 3);
    ck_assert_str_eq(t.class_names[0], "a");
    ck_assert_str_eq(t.class_names[1], "b \"x\"");
    ck_assert_str_eq(t.class_names[2], "c");
    ck_assert_int_eq(t.y[0], 1);
    ck_assert_int_eq(t.y[1], 0);
    ck_assert_int_eq(t.y[2], 2);
    ck_assert_float_eq(t.x[4], 4);
    ck_assert_float_eq(t.x[5], 9);
    dn_table_free(&t);
}
END_TEST

/* A space or a tab as the delimiter is not a blank around fields. */
START_TEST(test_csv_space_delimiter) {
    dn_csv_opts o = {.delimiter = ' ', .kind = DN_TARGET_VALUE};
    dn_table t;
    char err[DN_ERR_MAX];
    ck_assert_msg(parse("59 2 32.1 151\n48 1 21.6 75\n", &o, &t, err) == 0, "%s", err);
    ck_assert_uint_eq(t.features, 3);
    ck_assert_float_eq(t.x[5], 21.6f);
    ck_assert_float_eq(t.t[1], 75);
    dn_table_free(&t);
    csv_fail("1  2 3\n", &o, "t.csv:1:3: missing value '' in column '1'");
    dn_csv_opts tab = {.delimiter = '\t'};
    ck_assert_msg(parse(" 1\t 2 \t0\n", &tab, &t, err) == 0, "%s", err);
    ck_assert_float_eq(t.x[1], 2);
    dn_table_free(&t);
}
END_TEST

START_TEST(test_csv_value_targets_skip_index) {
    const char *text = "made by a tool\nsecond junk line\nt1,a,t2,b\n1.5,1,-2,2\n2.5,3,-4,4\n";
    const char *target[] = {"0", "-2"};
    dn_csv_opts o = {.skip = 2, .header = 1, .target = target, .n_target = 2, .kind = DN_TARGET_VALUE};
    dn_table t;
    char err[DN_ERR_MAX];
    ck_assert_msg(parse(text, &o, &t, err) == 0, "%s", err);
    ck_assert_uint_eq(t.n, 2);
    ck_assert_uint_eq(t.features, 2);
    ck_assert_uint_eq(t.targets, 2);
    ck_assert_ptr_null(t.y);
    const float x[] = {1, 2, 3, 4}, tv[] = {1.5f, -2, 2.5f, -4};
    for (int i = 0; i < 4; i++) {
        ck_assert_float_eq(t.x[i], x[i]);
        ck_assert_float_eq(t.t[i], tv[i]);
    }
    dn_table_free(&t);
}
END_TEST

/* numpy.savetxt's file: ';', a '# ' header line read as a comment. */
START_TEST(test_csv_numpy_savetxt_and_gzip) {
    dn_csv_opts o = {.delimiter = ';'};
    dn_table t;
    char err[DN_ERR_MAX];
    ck_assert_msg(dn_csv_table_load(FIX "table.csv", &o, &t, err) == 0, "%s", err);
    ck_assert_uint_eq(t.n, 4);
    ck_assert_uint_eq(t.features, 2);
    for (int i = 0; i < 4; i++) {
        ck_assert_float_eq(t.x[2 * i], (float)(i / 7.0));
        ck_assert_float_eq(t.x[2 * i + 1], (float)(1e-3 * (i + 1)));
        ck_assert_int_eq(t.y[i], i % 2);
    }
    dn_table_free(&t);
    /* the same bytes gzip-compressed, twice as two members */
    char *raw = NULL;
    size_t len = 0;
    ck_assert_int_eq(dn_file_read(FIX "table.csv", 0, &raw, &len, err), 0);
    write_gz(tpath("table.csv.gz"), raw, len);
    ck_assert_msg(dn_csv_table_load(tpath("table.csv.gz"), &o, &t, err) == 0, "%s", err);
    ck_assert_uint_eq(t.n, 4);
    ck_assert_float_eq(t.x[2], (float)(1 / 7.0));
    dn_table_free(&t);
    /* truncated */
    FILE *f = fopen(tpath("table.csv.gz"), "rb");
    unsigned char gz[4096];
    size_t glen = fread(gz, 1, sizeof gz, f);
    fclose(f);
    write_bytes(tpath("cut.csv.gz"), gz, glen - 9);
    expect_fail(dn_csv_table_load(tpath("cut.csv.gz"), &o, &t, err), &t, err,
                "cut.csv.gz: truncated gzip data");
    o.max_bytes = 100; /* the inflated text is larger */
    expect_fail(dn_csv_table_load(tpath("table.csv.gz"), &o, &t, err), &t, err,
                "table.csv.gz: decompressed data is too large");
    expect_fail(dn_csv_table_load(FIX "table.csv", &o, &t, err), &t, err,
                "table.csv: file is larger than 100 bytes");
    expect_fail(dn_csv_table_load(tpath("none.csv"), &o, &t, err), &t, err,
                "none.csv: No such file or directory");
    free(raw);
}
END_TEST

START_TEST(test_csv_hostile) {
    dn_csv_opts o = {0};
    csv_fail("", &o, "t.csv: no data rows");
    csv_fail("# only a comment\n\n", &o, "t.csv: no data rows");
    dn_csv_opts h = {.header = 1};
    csv_fail("a,b,c\n", &h, "t.csv: a header but no data rows");
    csv_fail("1,2,3\n4,5\n", &o, "t.csv:2:4: row has 2 fields, expected 3");
    csv_fail("1,2,3\n4,5,6,7\n", &o, "t.csv:2:7: row has more than the 3 fields expected");
    csv_fail("a,b,c\n1,2,3\n4,5\n", &h, "t.csv:3:4: row has 2 fields, expected 3");
    csv_fail("1,2,3\n4,NaN,0\n", &o, "t.csv:2:3: not a finite number 'NaN' in column '1'");
    csv_fail("1,-inf,3\n", &o, "t.csv:1:3: not a finite number '-inf' in column '1'");
    csv_fail("1,1e39,3\n", &o, "t.csv:1:3: out of the range of a float '1e39'");
    csv_fail("1,1e400,3\n", &o, "t.csv:1:3: out of the range of a float '1e400'");
    csv_fail("1,,3\n", &o, "t.csv:1:3: missing value '' in column '1'");
    csv_fail("a,b,c\n1,0x10,3\n", &h, "t.csv:2:3: not a number '0x10' in column 'b'");
    csv_fail("1,\"2,3\n", &o, "t.csv:1:3: unterminated quoted field");
    csv_fail("1,\"2\"x,3\n", &o, "t.csv:1:6: unexpected 'x' after a quoted field");
    dn_csv_opts v = {.kind = DN_TARGET_VALUE};
    csv_fail("1,2,red\n", &v, "t.csv:1:5: not a number 'red' in column '2'");
    csv_fail("1,2,99999999\n", &o, "t.csv:1: class label 99999999 is too large");
    const char *bad[] = {"nope"};
    dn_csv_opts n = {.header = 1, .target = bad, .n_target = 1};
    csv_fail("a,b\n1,2\n", &n, "t.csv: no column named 'nope' in the header");
    dn_csv_opts n2 = {.target = bad, .n_target = 1};
    csv_fail("1,2\n", &n2, "t.csv: column 'nope' needs a header row");
    const char *far[] = {"5"};
    dn_csv_opts n3 = {.target = far, .n_target = 1};
    csv_fail("1,2\n", &n3, "t.csv: column '5' is out of range");
    const char *dup[] = {"x"};
    dn_csv_opts n4 = {.header = 1, .target = dup, .n_target = 1};
    csv_fail("x,x,y\n1,2,3\n", &n4, "more than one column named 'x'");
    const char *two[] = {"0", "1"};
    dn_csv_opts n5 = {.target = two, .n_target = 2};
    csv_fail("1,2,3\n", &n5, "class labels come from exactly one column");
    dn_csv_opts n6 = {.ignore = two, .n_ignore = 2};
    csv_fail("1,2,3\n", &n6, "no feature columns are left");
    /* a NUL byte inside a name, control bytes shown as '?' */
    dn_table t;
    char err[DN_ERR_MAX];
    expect_fail(dn_csv_table_parse("t.csv", "a\0b,c\n1,2\n", 10, &h, &t, err), &t, err,
                "t.csv:1:1: a name holds a NUL byte");
    csv_fail("1,\x1b[31m,2\n", &o, "not a number '?[31m'");
    /* many distinct labels: a regression target read as classes */
    char *text = malloc(1 << 16), *p = text;
    for (int i = 0; i < DN_TABLE_MAX_CLASSES + 5; i++)
        p += sprintf(p, "1,%d.5\n", i);
    csv_fail(text, &o, "more than 1024 distinct class labels");
    free(text);
}
END_TEST

/* Names from data that would break C or printf stay bytes as given. */
START_TEST(test_csv_hostile_names) {
    const char *text = "\"*/ x\",\"\"\"q\"\"\\\",\"?\?=%n\",lab\n"
                       "1,2,3,\"*/ end\"\n"
                       "4,5,6,\"\xff\xfe bad utf-8\"\n"
                       "7,8,9,\"a\\\"\n";
    dn_csv_opts o = {.header = 1};
    dn_table t;
    char err[DN_ERR_MAX];
    ck_assert_msg(parse(text, &o, &t, err) == 0, "%s", err);
    ck_assert_str_eq(t.feature_names[0], "*/ x");
    ck_assert_str_eq(t.feature_names[1], "\"q\"\\");
    ck_assert_str_eq(t.feature_names[2], "?\?=%n");
    ck_assert_int_eq(t.n_classes, 3);
    ck_assert_str_eq(t.class_names[0], "*/ end");
    ck_assert_str_eq(t.class_names[1], "a\\");
    ck_assert_str_eq(t.class_names[2], "\xff\xfe bad utf-8");
    dn_table_free(&t);
}
END_TEST

/* ---- NPY ------------------------------------------------------------------ */

START_TEST(test_npy_numpy_files) {
    dn_table t;
    char err[DN_ERR_MAX];
    ck_assert_msg(dn_npy_table_load(FIX "x_f32.npy", FIX "y_i64.npy", DN_TARGET_CLASS, &t, err) == 0,
                  "%s", err);
    ck_assert_uint_eq(t.n, 5);
    ck_assert_uint_eq(t.features, 3);
    ck_assert_ptr_nonnull(t.map); /* float32 is used in place */
    ck_assert_ptr_null(t.x_own);
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < 3; j++)
            ck_assert_float_eq(t.x[i * 3 + j], (float)(i * 0.5 - j / 3.0));
        ck_assert_int_eq(t.y[i], (i * 2) % 3);
    }
    ck_assert_int_eq(t.n_classes, 3);
    dn_table_free(&t);
    ck_assert_msg(dn_npy_table_load(FIX "x_f64.npy", FIX "t_f64.npy", DN_TARGET_VALUE, &t, err) == 0,
                  "%s", err);
    ck_assert_uint_eq(t.n, 4);
    ck_assert_uint_eq(t.features, 6);
    ck_assert_uint_eq(t.targets, 1);
    ck_assert_ptr_null(t.map);
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 6; j++)
            ck_assert_float_eq(t.x[i * 6 + j], (float)((i * 6 + j) * 0.25 - 1));
        ck_assert_float_eq(t.t[i], (float)(-i / 8.0));
    }
    dn_table_free(&t);
    ck_assert_msg(dn_npy_table_load(FIX "x_f32.npy", FIX "t_f32.npy", DN_TARGET_VALUE, &t, err) == 0,
                  "%s", err);
    ck_assert_uint_eq(t.targets, 2);
    for (int i = 0; i < 10; i++)
        ck_assert_float_eq(t.t[i], (float)(i / 2 + (i % 2) / 4.0));
    dn_table_free(&t);
    ck_assert_msg(dn_npy_table_load(FIX "x_u8.npy", FIX "y_i64.npy", DN_TARGET_CLASS, &t, err) == -1, "loaded");
    ck_assert_str_eq(err, FIX "y_i64.npy: labels must have shape [3] (one per feature row), got 1 dimensions, 5 elements");
    ck_assert_msg(dn_npy_table_load(FIX "x_f64.npy", FIX "y_u8.npy", DN_TARGET_CLASS, &t, err) == 0, "%s", err);
    ck_assert_int_eq(t.n_classes, 4);
    ck_assert_int_eq(t.y[3], 3);
    dn_table_free(&t);
    expect_fail(dn_npy_table_load(FIX "x_u8.npy", FIX "t_f64.npy", DN_TARGET_VALUE, &t, err), &t, err,
                "t_f64.npy: targets must have shape [3] or [3, k], got 1 dimensions, 4 elements");
}
END_TEST

START_TEST(test_npy_u8_features) {
    dn_table t;
    char err[DN_ERR_MAX];
    ck_assert_msg(dn_npy_table_load(FIX "x_u8.npy", FIX "x_u8.npy", DN_TARGET_VALUE, &t, err) == 0, "%s", err);
    ck_assert_uint_eq(t.targets, 4); /* uint8 targets [3, 4] are numbers too */
    ck_assert_float_eq(t.t[5], 41);
    dn_table_free(&t);
    ck_assert_msg(dn_npy_table_load(FIX "x_u8.npy", FIX "y_u8.npy", DN_TARGET_CLASS, &t, err) == -1, "loaded");
    /* a [3] label file made here */
    static const char hdr[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }";
    unsigned char buf[256];
    memset(buf, ' ', sizeof buf);
    memcpy(buf, hdr, sizeof hdr - 1);
    buf[127] = '\n';
    buf[128] = 2;
    buf[129] = 0;
    buf[130] = 1;
    write_bytes(tpath("y3.npy"), buf, 131);
    ck_assert_msg(dn_npy_table_load(FIX "x_u8.npy", tpath("y3.npy"), DN_TARGET_CLASS, &t, err) == 0, "%s", err);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            ck_assert_float_eq(t.x[i * 4 + j], (float)(i * 40 + j));
    ck_assert_int_eq(t.y[0], 2);
    ck_assert_int_eq(t.n_classes, 3);
    dn_table_free(&t);
}
END_TEST

/* Writes a version-1 .npy with header dict `dict` and `data` bytes. */
static void write_npy(const char *path, const char *dict, const void *data, size_t len) {
    unsigned char buf[1024];
    size_t dl = strlen(dict), hl = (10 + dl + 1 + 63) / 64 * 64 - 10;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)hl;
    buf[9] = (unsigned char)(hl >> 8);
    memset(buf + 10, ' ', hl);
    memcpy(buf + 10, dict, dl);
    buf[10 + hl - 1] = '\n';
    memcpy(buf + 10 + hl, data, len);
    write_bytes(path, buf, 10 + hl + len);
}

/* Loads x_dict/x_data as features (labels: y3.npy-like [2] u1) and expects want. */
static void npy_fail(const char *dict, const void *data, size_t len, const char *want) {
    static const unsigned char y[2] = {0, 1};
    write_npy(tpath("bad.npy"), dict, data, len);
    write_npy(tpath("y2.npy"), "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", y, 2);
    dn_table t;
    char err[DN_ERR_MAX];
    expect_fail(dn_npy_table_load(tpath("bad.npy"), tpath("y2.npy"), DN_TARGET_CLASS, &t, err), &t, err,
                want);
    ck_assert_msg(strncmp(err, tpath("bad.npy"), strlen(tpath("bad.npy"))) == 0 ||
                      strstr(err, "y2.npy") != NULL,
                  "error does not name its file: %s", err);
}

START_TEST(test_npy_hostile) {
    const float f[4] = {1, 2, 3, 4};
    const float nanv[4] = {1, 2, NAN, 4};
    npy_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", nanv, 16,
             "bad.npy: element [1, 0] is NaN");
    npy_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 2), }", f, 16,
             "bad.npy: byte 128: the file holds 16 data bytes, the header's shape needs 8796093022208");
    npy_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904), }",
             f, 16, "the shape's element count overflows");
    npy_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", f, 12,
             "the file holds 12 data bytes, the header's shape needs 16");
    npy_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }", f, 16,
             "the file holds 16 data bytes, the header's shape needs 8");
    npy_fail("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", f, 16,
             "bad.npy: byte 20: unsupported dtype '<c8'");
    npy_fail("{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", f, 16, "unsupported dtype '<U3'");
    npy_fail("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", f, 16,
             "structured dtypes are not supported");
    npy_fail("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", f, 16,
             "features must be float32, float64 or uint8");
    npy_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f, 4, "features must be");
    npy_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 2), }", f, 0, "features must be");
    npy_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}", f, 16,
             "unknown key in the header");
    npy_fail("{'descr': '<f4', 'shape': (2, 2), }", f, 16, "the header lacks descr, fortran_order or shape");
    npy_fail("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", f, 16,
             "a key appears twice");
    npy_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2}", f, 16, "expected ',' or ')'");
    npy_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), } junk", f, 16,
             "unexpected text after the header's dict");
    npy_fail("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 2), }", f, 16, "expected True or False");
    npy_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), ", f, 16, "expected a quoted string");
}
END_TEST

START_TEST(test_npy_hostile_files) {
    dn_table t;
    char err[DN_ERR_MAX];
    expect_fail(dn_npy_table_load(FIX "x_big.npy", FIX "y_u8.npy", DN_TARGET_CLASS, &t, err), &t, err,
                "x_big.npy: byte 20: big-endian dtype '>f4' is not supported");
    expect_fail(dn_npy_table_load(FIX "x_fortran.npy", FIX "y_u8.npy", DN_TARGET_CLASS, &t, err), &t, err,
                "Fortran-order arrays are not supported");
    expect_fail(dn_npy_table_load(FIX "x_f32.npy", FIX "t_f32.npy", DN_TARGET_CLASS, &t, err), &t, err,
                "t_f32.npy: class labels must be integers, got float32");
    expect_fail(dn_npy_table_load(FIX "table.csv", FIX "y_u8.npy", DN_TARGET_CLASS, &t, err), &t, err,
                "table.csv: byte 0: not a .npy file");
    expect_fail(dn_npy_table_load(tpath("missing.npy"), FIX "y_u8.npy", DN_TARGET_CLASS, &t, err), &t, err,
                "missing.npy: No such file or directory");
    write_bytes(tpath("empty.npy"), "", 0);
    expect_fail(dn_npy_table_load(tpath("empty.npy"), FIX "y_u8.npy", DN_TARGET_CLASS, &t, err), &t, err,
                "empty.npy: byte 0: not a .npy file");
    static const unsigned char v9[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', 9, 0, 0, 0, 0, 0};
    write_bytes(tpath("v9.npy"), v9, sizeof v9);
    expect_fail(dn_npy_table_load(tpath("v9.npy"), FIX "y_u8.npy", DN_TARGET_CLASS, &t, err), &t, err,
                "v9.npy: byte 6: unsupported .npy version 9.0");
    static const unsigned char longhdr[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xff, 0xff, 0xff, 0x7f};
    write_bytes(tpath("long.npy"), longhdr, sizeof longhdr);
    expect_fail(dn_npy_table_load(tpath("long.npy"), FIX "y_u8.npy", DN_TARGET_CLASS, &t, err), &t, err,
                "long.npy: byte 8: header length 2147483647 runs past the end of the file");
    /* negative and huge labels */
    static const int64_t neg[5] = {0, 1, -3, 1, 0};
    write_npy(tpath("neg.npy"), "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }", neg, sizeof neg);
    expect_fail(dn_npy_table_load(FIX "x_f32.npy", tpath("neg.npy"), DN_TARGET_CLASS, &t, err), &t, err,
                "neg.npy: label -3 at index 2 is out of the range 0..1023");
}
END_TEST

/* ---- the trainer's datasets (dn_dataset.c) -------------------------------- */

/* Writes a 40-row CSV: a = i, b = (i * 7) % 11 + 100.5, y = i % 3. */
static const char *write_rows40(void) {
    static char text[4096];
    char *p = text + sprintf(text, "a,b,y\n");
    for (int i = 0; i < 40; i++)
        p += sprintf(p, "%d,%g,%d\n", i, (i * 7) % 11 + 100.5, i % 3);
    const char *path = tpath("rows40.csv");
    write_bytes(path, text, strlen(text));
    return path;
}

/* Loads rows40.csv with scaling `scale` and test split 0.25 (seed). */
static void load40(dn_data_spec *d, dn_model *m, dn_opts *o, int scale, uint64_t seed, dn_dataset *tr,
                   dn_dataset *te) {
    memset(d, 0, sizeof *d);
    memset(m, 0, sizeof *m);
    memset(o, 0, sizeof *o);
    d->format = DN_DATA_CSV;
    d->test_split = 0.25;
    d->csv.header = 1;
    d->scale = scale;
    m->n_inputs = 2;
    m->n_outputs = 3;
    m->defaults.seed = seed;
    m->defaults.data = d;
    o->train = write_rows40();
    int has_test = 0;
    char err[DN_ERR_MAX];
    ck_assert_msg(dn_data_load(m, o, tr, te, &has_test, err) == 0, "%s", err);
    ck_assert_int_eq(has_test, 1);
}

START_TEST(test_dataset_split) {
    dn_data_spec d;
    dn_model m;
    dn_opts o;
    dn_dataset tr, te, tr2, te2;
    load40(&d, &m, &o, DN_SCALE_NONE, 42, &tr, &te);
    ck_assert_uint_eq(tr.n, 30);
    ck_assert_uint_eq(te.n, 10); /* round(0.25 * 40) */
    int seen[40] = {0};
    for (uint32_t i = 0; i < tr.n; i++) {
        seen[tr.rows[i]]++;
        ck_assert(i == 0 || tr.rows[i] > tr.rows[i - 1]); /* file order */
    }
    for (uint32_t i = 0; i < te.n; i++) {
        seen[te.rows[i]]++;
        ck_assert(i == 0 || te.rows[i] > te.rows[i - 1]);
    }
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(seen[i], 1); /* a partition of the rows */
    /* gathered rows are the file's rows, unscaled */
    uint32_t idx[10];
    float x[20];
    int32_t y[10];
    for (int i = 0; i < 10; i++)
        idx[i] = (uint32_t)(9 - i);
    dn_dataset_gather(&te, idx, 10, 0.5f, 0.5f, x, y);
    for (int i = 0; i < 10; i++) {
        uint32_t row = te.rows[9 - i];
        ck_assert_float_eq(x[2 * i], (float)row);
        ck_assert_float_eq(x[2 * i + 1], (float)((row * 7) % 11 + 100.5));
        ck_assert_int_eq(y[i], (int)row % 3);
    }
    /* the same seed, the same split; another seed, another */
    load40(&d, &m, &o, DN_SCALE_NONE, 42, &tr2, &te2);
    ck_assert_mem_eq(te.rows, te2.rows, 10 * sizeof *te.rows);
    dn_dataset_free(&tr2);
    dn_dataset_free(&te2);
    load40(&d, &m, &o, DN_SCALE_NONE, 43, &tr2, &te2);
    ck_assert(memcmp(te.rows, te2.rows, 10 * sizeof *te.rows) != 0);
    dn_dataset_free(&tr2);
    dn_dataset_free(&te2);
    dn_dataset_free(&tr);
    ck_assert_uint_eq(te.n, 10); /* the test set outlives the train set */
    dn_dataset_gather(&te, idx, 10, 0, 1, x, y);
    dn_dataset_free(&te);
}
END_TEST

/* Scaling from the training rows only, recomputed here in double. */
START_TEST(test_dataset_scaling) {
    dn_data_spec d;
    dn_model m;
    dn_opts o;
    dn_dataset tr, te;
    for (int scale = DN_SCALE_STANDARD; scale <= DN_SCALE_MINMAX; scale++) {
        load40(&d, &m, &o, scale, 7, &tr, &te);
        double sum[2] = {0}, sq[2] = {0}, lo[2] = {1e30, 1e30}, hi[2] = {-1e30, -1e30};
        for (uint32_t i = 0; i < tr.n; i++)
            for (int k = 0; k < 2; k++) {
                double v = k ? (tr.rows[i] * 7) % 11 + 100.5 : tr.rows[i];
                sum[k] += v;
                lo[k] = v < lo[k] ? v : lo[k];
                hi[k] = v > hi[k] ? v : hi[k];
            }
        for (uint32_t i = 0; i < tr.n; i++)
            for (int k = 0; k < 2; k++) {
                double v = k ? (tr.rows[i] * 7) % 11 + 100.5 : tr.rows[i];
                sq[k] += (v - sum[k] / tr.n) * (v - sum[k] / tr.n);
            }
        uint32_t idx[10];
        float x[20];
        for (int i = 0; i < 10; i++)
            idx[i] = (uint32_t)i;
        dn_dataset_gather(&te, idx, 10, 0, 1, x, NULL);
        for (int i = 0; i < 10; i++)
            for (int k = 0; k < 2; k++) {
                double v = k ? (te.rows[i] * 7) % 11 + 100.5 : te.rows[i];
                double want = scale == DN_SCALE_STANDARD ? (v - sum[k] / tr.n) / sqrt(sq[k] / tr.n)
                                                         : (v - lo[k]) / (hi[k] - lo[k]);
                ck_assert_msg(fabs(x[2 * i + k] - want) <= 1e-5 * fmax(1, fabs(want)),
                              "scale %d row %d feature %d: %g vs %g", scale, i, k, (double)x[2 * i + k], want);
            }
        dn_dataset_free(&tr);
        dn_dataset_free(&te);
    }
}
END_TEST

START_TEST(test_dataset_mismatch) {
    dn_data_spec d = {.format = DN_DATA_CSV, .csv = {.header = 1}};
    dn_model m = {.n_inputs = 3, .n_outputs = 3};
    m.defaults.data = &d;
    dn_opts o = {0};
    o.train = write_rows40();
    dn_dataset tr;
    int has_test = 1;
    char err[DN_ERR_MAX];
    ck_assert_int_eq(dn_data_load(&m, &o, &tr, NULL, &has_test, err), -1);
    assert_contains(err, "rows40.csv: 2 features per row, but the network's input takes 3 (spec `input:`)");
    m.n_inputs = 2;
    m.n_outputs = 2;
    ck_assert_int_eq(dn_data_load(&m, &o, &tr, NULL, &has_test, err), -1);
    assert_contains(err, "rows40.csv: 3 classes (labels 0..2), but the network has 2 outputs");
    m.n_outputs = 3;
    ck_assert_msg(dn_data_load(&m, &o, &tr, NULL, &has_test, err) == 0, "%s", err);
    ck_assert_int_eq(has_test, 0);
    ck_assert_uint_eq(tr.n, 40);
    dn_dataset_free(&tr);
    d.test_split = 0.001;
    ck_assert_int_eq(dn_data_load(&m, &o, &tr, NULL, &has_test, err), -1);
    assert_contains(err, "test_split 0.001 of 40 rows leaves no test rows");
}
END_TEST

/* Class names survive the checkpoint metadata encoding byte for byte. */
START_TEST(test_names_encoding) {
    char *names[5] = {"plain", "a,b%c", "*/ \"q\" \\ \n\t", "\xff\xfe", ""};
    char *enc = dn_data_names_encode(names, 5);
    ck_assert_ptr_nonnull(enc);
    ck_assert_str_eq(enc, "plain,a%2Cb%25c,*/%20\"q\"%20\\%20%0A%09,%FF%FE,");
    char **dec = NULL;
    int n = 0;
    ck_assert_int_eq(dn_data_names_decode(enc, &dec, &n), 0);
    ck_assert_int_eq(n, 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_str_eq(dec[i], names[i]);
        free(dec[i]);
    }
    free(dec);
    free(enc);
    ck_assert_int_eq(dn_data_names_decode("a,%0", &dec, &n), -1);
    ck_assert_int_eq(dn_data_names_decode("%00", &dec, &n), -1);
    ck_assert_int_eq(dn_data_names_decode("%zz", &dec, &n), -1);
}
END_TEST

static Suite *data_suite(void) {
    Suite *s = suite_create("check_data");
    TCase *csv = tcase_create("csv");
    tcase_add_test(csv, test_csv_numbers_and_labels);
    tcase_add_test(csv, test_csv_numbers_as_strtod);
    tcase_add_test(csv, test_csv_near_midpoints);
    tcase_add_test(csv, test_csv_header_names_quotes);
    tcase_add_test(csv, test_csv_value_targets_skip_index);
    tcase_add_test(csv, test_csv_space_delimiter);
    tcase_add_test(csv, test_csv_numpy_savetxt_and_gzip);
    tcase_add_test(csv, test_csv_hostile);
    tcase_add_test(csv, test_csv_hostile_names);
    suite_add_tcase(s, csv);
    TCase *npy = tcase_create("npy");
    tcase_add_test(npy, test_npy_numpy_files);
    tcase_add_test(npy, test_npy_u8_features);
    tcase_add_test(npy, test_npy_hostile);
    tcase_add_test(npy, test_npy_hostile_files);
    suite_add_tcase(s, npy);
    TCase *ds = tcase_create("dataset");
    tcase_add_test(ds, test_dataset_split);
    tcase_add_test(ds, test_dataset_scaling);
    tcase_add_test(ds, test_dataset_mismatch);
    tcase_add_test(ds, test_names_encoding);
    suite_add_tcase(s, ds);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(data_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
