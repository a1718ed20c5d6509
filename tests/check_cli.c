/* check_cli.c - the dngen command line: options, exit statuses, diagnostics
 * as the CLI prints them, the output file contract (atomic, untouched on any
 * error, deterministic), hostile spec text that must not inject code, and
 * the standalone build command.
 *
 * dngen runs in-process through dngen_main() with memory streams for its
 * standard output and error, so every test pins the exact bytes it prints.
 * Only the compilers and the built trainer run as child processes. Message
 * texts of the front end are covered by check_spec; here the point is what
 * the command does with them (status, count line, files left behind). */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "test_util.h"
#include "version.h"

#define SPECS DNGEN_SOURCE_DIR "/specs"
#define MLP SPECS "/mlp.yaml"

/* ---- helpers ------------------------------------------------------------------ */

/* What one dngen_main() call did. */
typedef struct {
    int rc;
    char *out, *err; /* everything written to standard output / error */
    size_t out_len, err_len;
} run;

/* Runs dngen_main("dngen", args[0..n-1]) with memory streams. */
static void run_args(run *r, int n, const char *const *args) {
    char *argv[64];
    ck_assert_int_lt(n, 63);
    argv[0] = strdup("dngen");
    for (int i = 0; i < n; i++) argv[i + 1] = strdup(args[i]);
    argv[n + 1] = NULL;
    FILE *o = open_memstream(&r->out, &r->out_len);
    FILE *e = open_memstream(&r->err, &r->err_len);
    ck_assert_ptr_nonnull(o);
    ck_assert_ptr_nonnull(e);
    r->rc = dngen_main(n + 1, argv, o, e);
    fclose(o);
    fclose(e);
    for (int i = 0; i <= n; i++) free(argv[i]);
}

#define DNGEN(r, ...)                                                                             \
    run_args((r), (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)), \
             (const char *[]){__VA_ARGS__})

static void run_free(run *r) {
    free(r->out);
    free(r->err);
}

/* malloc'd printf. */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    ck_assert_int_ge(n, 0);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

/* A fresh, empty DNGEN_TEST_TMP/name (malloc'd path). */
static char *fresh_dir(const char *name) { return strdup(tu_dir(name)); }

/* Replaces every '@' in tmpl by path (malloc'd). */
static char *subst_path(const char *tmpl, const char *path) {
    size_t n = 0, pl = strlen(path);
    for (const char *p = tmpl; *p; p++) n += *p == '@' ? pl : 1;
    char *s = malloc(n + 1), *d = s;
    ck_assert_ptr_nonnull(s);
    for (const char *p = tmpl; *p; p++) {
        if (*p == '@') {
            memcpy(d, path, pl);
            d += pl;
        } else {
            *d++ = *p;
        }
    }
    *d = '\0';
    return s;
}

static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *s = strstr(hay, needle); s; s = strstr(s + 1, needle)) n++;
    return n;
}

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static char *read_file(const char *path, size_t *len) {
    char *s = tu_read(path, len);
    ck_assert_msg(s != NULL, "cannot read %s", path);
    return s;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Asserts that dir holds exactly the entries in names (n of them): no
 * temporary file or other leftover. */
static void expect_dir(const char *dir, const char *const *names, int n) {
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open directory %s", dir);
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        int known = 0;
        for (int i = 0; i < n; i++) known |= strcmp(e->d_name, names[i]) == 0;
        ck_assert_msg(known, "unexpected file '%s' left in %s", e->d_name, dir);
        seen++;
    }
    closedir(d);
    ck_assert_msg(seen == n, "%s holds %d entries, want %d", dir, seen, n);
}

/* 64-bit FNV-1a, written here independently of the generator's. */
static uint64_t fnv1a(const char *p, size_t n) {
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211u;
    }
    return h;
}

/* Compiles a generated file as the brief's hostile-input check does; returns
 * the exit status and prints the compiler output on failure. */
static int compile_syntax(const char *c_file) {
    char *out = NULL;
    int st = tu_runf(&out, "'%s' -std=c11 -Wall -Wextra -Werror -fsyntax-only -I'%s/runtime' '%s' 2>&1", DNGEN_CC,
                     DNGEN_SOURCE_DIR, c_file);
    if (st != 0) fprintf(stderr, "compiling %s failed (%d):\n%s\n", c_file, st, out ? out : "");
    free(out);
    return st;
}

/* The text a C11 compiler sees once comments are gone (translation phases
 * 1-3): trigraphs replaced, line splices joined (GCC also joins a backslash
 * followed by blanks and a newline, or a lone CR), every comment replaced by
 * one space; string and character literals kept as written. Counts the comments in
 * *n_comments. NULL when a comment is not terminated. */
static char *strip_comments(const char *src, int *n_comments) {
    size_t n = strlen(src);
    char *a = malloc(n + 1), *out = malloc(n + 1);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(out);
    static const char tri_in[] = "=(/)'<!>-", tri_out[] = "#[\\]^{|}~";
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t;
        if (src[i] == '?' && src[i + 1] == '?' && src[i + 2] != '\0' && (t = strchr(tri_in, src[i + 2])) != NULL) {
            a[k++] = tri_out[t - tri_in];
            i += 2;
        } else {
            a[k++] = src[i];
        }
    }
    a[k] = '\0';
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        if (a[i] == '\\') {
            size_t j = i + 1;
            while (a[j] == ' ' || a[j] == '\t') j++;
            if (a[j] == '\r' && a[j + 1] == '\n') j++;
            if (a[j] == '\n' || a[j] == '\r') { /* GCC also ends lines at a lone CR */
                i = j;
                continue;
            }
        }
        a[m++] = a[i];
    }
    a[m] = '\0';
    size_t o = 0, i = 0;
    *n_comments = 0;
    while (i < m) {
        if (a[i] == '/' && a[i + 1] == '*') {
            const char *end = strstr(a + i + 2, "*/");
            if (!end) {
                free(a);
                free(out);
                return NULL;
            }
            i = (size_t)(end - a) + 2;
            out[o++] = ' ';
            ++*n_comments;
        } else if (a[i] == '/' && a[i + 1] == '/') {
            while (i < m && a[i] != '\n') i++;
            out[o++] = ' ';
            ++*n_comments;
        } else if (a[i] == '"' || a[i] == '\'') {
            char q = a[i];
            out[o++] = a[i++];
            while (i < m && a[i] != q && a[i] != '\n') {
                if (a[i] == '\\' && i + 1 < m) out[o++] = a[i++];
                out[o++] = a[i++];
            }
            if (i < m && a[i] == q) out[o++] = a[i++];
        } else {
            out[o++] = a[i++];
        }
    }
    out[o] = '\0';
    free(a);
    return out;
}

/* Small building blocks for spec texts (the same shapes as check_spec). */
#define H "name: t\ninput: 4\n"
#define L "layers:\n  - {units: 3, activation: relu}\n  - {units: 2, activation: softmax}\n"
#define V H L
#define LAY(a, b) "layers:\n  - {" a "}\n  - {" b "}\n"
#define OUT2 "units: 2, activation: softmax"

/* ---- options and exit statuses ------------------------------------------------ */

START_TEST(test_help) {
    run r;
    DNGEN(&r, "--help");
    ck_assert_int_eq(r.rc, DNGEN_EXIT_OK);
    ck_assert_str_eq(r.err, "");
    ck_assert_msg(starts_with(r.out, "dngen " DNGEN_VERSION " - "), "help starts with: %.80s", r.out);
    /* every option the parser accepts, the subcommand, and the statuses */
    const char *must[] = {"usage: dngen SPEC.yaml -o OUT.c [--standalone]",
                          "dngen SPEC.yaml --check",
                          "  -o FILE",
                          "--output FILE",
                          "'-' for standard output",
                          "  --standalone ",
                          "  --check ",
                          "  -h, --help ",
                          "  --version ",
                          "  plot ",
                          "  sweep ",
                          "  summary ",
                          "       dngen sweep SPEC.yaml ",
                          "       dngen summary SPEC.yaml\n",
                          "exit status: 0 success, 1 the spec is invalid, 2 usage or I/O error\n"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        ck_assert_msg(strstr(r.out, must[i]) != NULL, "--help does not mention '%s':\n%s", must[i], r.out);
    run h;
    DNGEN(&h, "-h");
    ck_assert_int_eq(h.rc, DNGEN_EXIT_OK);
    ck_assert_str_eq(h.out, r.out);
    run_free(&h);
    run_free(&r);
}
END_TEST

START_TEST(test_version) {
    run r;
    DNGEN(&r, "--version");
    ck_assert_int_eq(r.rc, DNGEN_EXIT_OK);
    ck_assert_str_eq(r.out, "dngen " DNGEN_VERSION "\n");
    ck_assert_str_eq(r.err, "");
    /* a real version, not an unexpanded template */
    ck_assert_msg(DNGEN_VERSION[0] >= '0' && DNGEN_VERSION[0] <= '9' && strchr(DNGEN_VERSION, '.'),
                  "version '%s'", DNGEN_VERSION);
    run_free(&r);
}
END_TEST

#define USAGE_LINE "usage: dngen SPEC.yaml -o OUT.c [--standalone] [--mpi] [--target portable|native|x86-64-v3|generic]\n"

START_TEST(test_no_spec) {
    run r;
    run_args(&r, 0, NULL);
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_str_eq(r.out, "");
    ck_assert_msg(starts_with(r.err, "dngen: no spec file given\n" USAGE_LINE), "stderr:\n%s", r.err);
    run_free(&r);
    /* options without a spec */
    DNGEN(&r, "--check");
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_msg(starts_with(r.err, "dngen: no spec file given\n" USAGE_LINE), "stderr:\n%s", r.err);
    run_free(&r);
}
END_TEST

START_TEST(test_unknown_option) {
    const char *bad[] = {"--frobnicate", "-x", "--check=yes", "--standalon"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run r;
        DNGEN(&r, MLP, bad[i], "-o", "-");
        ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
        ck_assert_str_eq(r.out, ""); /* nothing generated */
        char *want = fmt("dngen: unknown option '%s'\n" USAGE_LINE, bad[i]);
        ck_assert_msg(starts_with(r.err, want), "stderr:\n%s", r.err);
        free(want);
        run_free(&r);
    }
}
END_TEST

START_TEST(test_two_specs) {
    run r;
    DNGEN(&r, MLP, SPECS "/keras_example.yaml", "-o", "-");
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_str_eq(r.out, "");
    ck_assert_str_eq(r.err, "dngen: more than one spec given ('" MLP "' and '" SPECS "/keras_example.yaml')\n");
    run_free(&r);
}
END_TEST

START_TEST(test_missing_output) {
    run r;
    DNGEN(&r, MLP);
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_str_eq(r.out, "");
    ck_assert_str_eq(r.err,
                     "dngen: no output given: use -o OUT.c (or -o - for standard output, --check to validate only)\n");
    run_free(&r);
    DNGEN(&r, MLP, "--standalone");
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    run_free(&r);
    /* -o as the last argument */
    DNGEN(&r, MLP, "-o");
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_str_eq(r.err, "dngen: -o needs a file name\n");
    run_free(&r);
    DNGEN(&r, MLP, "--output");
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_str_eq(r.err, "dngen: --output needs a file name\n");
    run_free(&r);
}
END_TEST

START_TEST(test_unreadable_spec) {
    char *dir = fresh_dir("cli_unreadable");
    char *missing = fmt("%s/no-such-spec.yaml", dir), *outc = fmt("%s/kept.c", dir);
    tu_write(outc, "int kept;\n");
    run r;
    DNGEN(&r, missing, "-o", outc);
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE); /* I/O, not an invalid spec */
    ck_assert_str_eq(r.out, "");
    char *want = fmt("%s: error: cannot read spec: No such file or directory\n", missing);
    ck_assert_str_eq(r.err, want); /* names the file; no "N errors" count line */
    free(want);
    run_free(&r);
    /* a directory is not a spec either */
    DNGEN(&r, dir, "--check");
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    want = fmt("%s: error: cannot read spec: ", dir);
    ck_assert_msg(starts_with(r.err, want) && count_of(r.err, "\n") == 1, "stderr:\n%s", r.err);
    free(want);
    run_free(&r);
    size_t n;
    char *kept = read_file(outc, &n);
    ck_assert_str_eq(kept, "int kept;\n");
    free(kept);
    expect_dir(dir, (const char *[]){"kept.c"}, 1);
    free(missing);
    free(outc);
    free(dir);
}
END_TEST

/* specs/NAME.yaml files (malloc'd paths), at most max. */
static int example_specs(char **paths, int max) {
    DIR *d = opendir(SPECS);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0) paths[n++] = fmt("%s/%s", SPECS, e->d_name);
    }
    closedir(d);
    return n;
}

START_TEST(test_check_examples) {
    char *paths[32];
    int n = example_specs(paths, 32);
    ck_assert_int_ge(n, 3);
    for (int i = 0; i < n; i++) {
        run r;
        DNGEN(&r, paths[i], "--check");
        ck_assert_msg(r.rc == DNGEN_EXIT_OK, "%s: status %d\n%s", paths[i], r.rc, r.err);
        ck_assert_msg(r.out_len == 0 && r.err_len == 0, "%s: --check printed '%s' / '%s'", paths[i], r.out, r.err);
        run_free(&r);
        free(paths[i]);
    }
}
END_TEST

/* The value of the top-level `name:` of a spec file (malloc'd). */
static char *spec_name(const char *path) {
    char *text = read_file(path, NULL);
    char *p = starts_with(text, "name: ") ? text : strstr(text, "\nname: ");
    ck_assert_msg(p != NULL, "%s has no name line", path);
    p += *p == '\n' ? 7 : 6;
    size_t n = strcspn(p, " \n#");
    char *name = strndup(p, n);
    free(text);
    return name;
}

START_TEST(test_stdout_output) {
    char *paths[32];
    int n = example_specs(paths, 32);
    ck_assert_int_ge(n, 3);
    for (int i = 0; i < n; i++) {
        run r;
        DNGEN(&r, paths[i], "-o", "-");
        ck_assert_msg(r.rc == DNGEN_EXIT_OK, "%s: status %d\n%s", paths[i], r.rc, r.err);
        ck_assert_str_eq(r.err, "");
        char *name = spec_name(paths[i]);
        char *want = fmt("/* %s - generated by dngen " DNGEN_VERSION " from %s (spec hash ", name, paths[i]);
        ck_assert_msg(starts_with(r.out, want), "%s: output starts with:\n%.200s", paths[i], r.out);
        ck_assert_uint_eq(strlen(r.out), r.out_len); /* text, no NUL bytes */
        ck_assert_msg(r.out_len > 10000 && r.out[r.out_len - 1] == '\n', "%s: %zu bytes", paths[i], r.out_len);
        char *main_line = fmt("int main(int argc, char **argv) { return dn_main(&%s_model, argc, argv); }", name);
        ck_assert_msg(strstr(r.out, main_line) != NULL, "%s: no main()", paths[i]);
        free(main_line);
        free(want);
        free(name);
        run_free(&r);
        free(paths[i]);
    }
}
END_TEST

START_TEST(test_plot_dispatch) {
    run r;
    DNGEN(&r, "plot");
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_str_eq(r.out, "");
    ck_assert_msg(strstr(r.err, "usage: dngen plot ") != NULL, "stderr:\n%s", r.err);
    run_free(&r);
}
END_TEST

/* ---- dngen summary --------------------------------------------------------------- */

/* A dense net with input dropout and batch norm. Expected figures, by hand
 * from the definitions (docs/summary.md): a multiply-add is 2 FLOP; a
 * layer's training step is its forward, its weight gradient (= forward) and,
 * unless it is the first layer, its input gradient (= forward again); batch
 * norm is 4 FLOP per unit forward, twice that backward; dropout 1 per unit
 * forward, nothing backward for the input's. Batch 50.
 *   input dropout: fwd 784, step 784, batch 784 * 50 = 39,200
 *   fc1 (784 -> 256, first layer): params 784 * 256 + 256 = 200,960;
 *       fwd 2 * 784 * 256 = 401,408; step 2 * 401,408 = 802,816; batch 40,140,800
 *   fc1_bn: params gamma + beta = 512; fwd 4 * 256 = 1,024; step 3,072; batch 153,600
 *   fc2 (256 -> 100): params 25,700; fwd 51,200; step 153,600; batch 7,680,000
 *   fc3 (100 -> 10): params 1,010; fwd 2,000; step 6,000; batch 300,000
 *   total: params 228,182; fwd 456,416; step 966,272; batch 48,313,600
 * in MFLOP with 3 decimals, rounded half up (0.1536 -> 0.154).
 * Memory: rows = max(batch 50, the trainer's eval batch 256) = 256.
 *   parameter buffer: weights padded to panels of 8 units: fc1 256 * 784 +
 *     256 (b) + 512 (gamma, beta) = 201,472; fc2 stride 104: 104 * 256 + 104
 *     = 26,728; fc3 stride 16: 16 * 100 + 16 = 1,616; running mean and var
 *     512: 230,328 floats; 3 copies (params, Adam m, v) = 2,763,936 bytes = 2.64 MiB
 *   work space per row: input mask and h 2 * 784; fc1 a, mask, h, d, z
 *     5 * 256; fc2 a, d 2 * 104; fc3 a, d 2 * 16; row loss and hit 2:
 *     3,090; once: fc1's statistics 5 * 256 + its sums in double (2 * 256
 *     doubles) 4 * 256 + W^T scratch of fc2 256 * 104 = 28,928 (fc3 is the
 *     fused head: its W^T lives on the stack);
 *     256 * 3,090 + 28,928 = 819,968 floats = 3,279,872 bytes = 3.13 MiB
 *   input batch: 256 * 784 floats = 802,816 bytes = 0.77 MiB
 *   total 6,846,624 bytes = 6.53 MiB */
static const char summary_dense_yaml[] =
    "name: d\n"
    "input: {size: 784, dropout: 0.2}\n"
    "layers:\n"
    "  - {name: fc1, units: 256, activation: relu, batchnorm: true, dropout: 0.5}\n"
    "  - {name: fc2, units: 100, activation: relu}\n"
    "  - {name: fc3, units: 10, activation: softmax}\n"
    "train: {batch_size: 50}\n";

static const char summary_dense_table[] =
    "layer   type       output  dropout   params  fwd MFLOP  step MFLOP  batch MFLOP\n"
    "-------------------------------------------------------------------------------\n"
    "input   dropout    [784]   0.2            0      0.001       0.001        0.039\n"
    "fc1     dense      [256]            200,960      0.401       0.803       40.141\n"
    "fc1_bn  batchnorm  [256]   0.5          512      0.001       0.003        0.154\n"
    "fc2     dense      [100]             25,700      0.051       0.154        7.680\n"
    "fc3     dense      [10]               1,010      0.002       0.006        0.300\n"
    "-------------------------------------------------------------------------------\n"
    "total                               228,182      0.456       0.966       48.314\n"
    "\n"
    "fwd: forward pass per sample; step: forward and backward per sample; batch: step x 50\n"
    "(a multiply-add is 2 FLOP; the loss and Adam's update are not counted)\n"
    "\n"
    "memory a training run allocates: 6.53 MiB (float32; the data set not counted)\n"
    "  parameters, Adam m and v  3 x 230,328 floats                    2.64 MiB\n"
    "  work space                256 rows x 3,090 + 28,928 floats      3.13 MiB\n"
    "  input batch               256 rows x 784 floats                 0.77 MiB\n"
    "  (256 rows: training batches of 50, evaluation batches of 256)\n";

/* A small conv net: conv, max pool with channel dropout, flatten, dense.
 * Batch 32; figures by hand as above:
 *   conv1 (1 -> 8 filters 3x3 on 28x28: [8, 26, 26], first layer): params
 *       8 * (9 + 1) = 80; fwd 2 * 8 * 26 * 26 * 9 = 97,344; step 194,688;
 *       batch 6,230,016
 *   pool1 (2x2: [8, 13, 13]): a compare or add per window element: fwd
 *       8 * 13 * 13 * 4 = 5,408; step 10,816 (its input gradient); batch 346,112
 *   flat: [1352], no op, nothing
 *   fc1 (1352 -> 10): params 13,530; fwd 27,040; step 81,120; batch 2,595,840
 *   total: params 13,610; fwd 129,792; step 286,624; batch 9,171,968
 * Memory, 256 rows:
 *   parameters: conv1 72 + 8, fc1 16 * 1352 + 16: 21,728 floats; 3 copies
 *     260,736 bytes = 0.25 MiB
 *   work space per row: conv1 a, d 2 * 5,408; pool1 a, mask, h, d and the
 *     argmax 5 * 1,352; fc1 a, d 2 * 16; row loss and hit 2: 17,610; once:
 *     fc1's W^T scratch 1,352 * 16 = 21,632 (too big for the fused head's
 *     stack); 256 * 17,610 + 21,632 = 4,529,792 floats = 18,119,168 bytes
 *     = 17.28 MiB
 *   input batch 0.77 MiB; total 19,182,720 bytes = 18.29 MiB */
static const char summary_conv_yaml[] =
    "name: c\n"
    "input: {shape: [1, 28, 28]}\n"
    "layers:\n"
    "  - {name: conv1, type: conv2d, filters: 8, kernel: 3, activation: relu}\n"
    "  - {name: pool1, type: maxpool2d, kernel: 2, dropout: {rate: 0.25, mode: channel}}\n"
    "  - {name: flat, type: flatten}\n"
    "  - {name: fc1, units: 10, activation: softmax}\n"
    "train: {batch_size: 32}\n";

static const char summary_conv_table[] =
    "layer  type       output       dropout       params  fwd MFLOP  step MFLOP  batch MFLOP\n"
    "---------------------------------------------------------------------------------------\n"
    "input  input      [1, 28, 28]                     0      0.000       0.000        0.000\n"
    "conv1  conv2d     [8, 26, 26]                    80      0.097       0.195        6.230\n"
    "pool1  maxpool2d  [8, 13, 13]  0.25 channel       0      0.005       0.011        0.346\n"
    "flat   flatten    [1352]                          0      0.000       0.000        0.000\n"
    "fc1    dense      [10]                       13,530      0.027       0.081        2.596\n"
    "---------------------------------------------------------------------------------------\n"
    "total                                        13,610      0.130       0.287        9.172\n"
    "\n"
    "fwd: forward pass per sample; step: forward and backward per sample; batch: step x 32\n"
    "(a multiply-add is 2 FLOP; the loss and Adam's update are not counted)\n"
    "\n"
    "memory a training run allocates: 18.29 MiB (float32; the data set not counted)\n"
    "  parameters, Adam m and v  3 x 21,728 floats                      0.25 MiB\n"
    "  work space                256 rows x 17,610 + 21,632 floats     17.28 MiB\n"
    "  input batch               256 rows x 784 floats                  0.77 MiB\n"
    "  (256 rows: training batches of 32, evaluation batches of 256)\n";

/* A conv with BatchNorm2d, by hand as above, batch 16:
 *   conv1 (1 -> 4 filters 3x3 on 6x6: [4, 4, 4], first layer): params
 *       4 * (9 + 1) = 40; fwd 2 * 4 * 4 * 4 * 9 = 1,152; step 2,304; batch 36,864
 *   conv1_bn: params gamma + beta, one per channel: 8; 4 FLOP per value
 *       forward: fwd 4 * 64 = 256; step 768; batch 12,288
 *   fc1 (64 -> 3): params 195; fwd 384; step 1,152; batch 18,432
 *   total: params 243; fwd 1,792; step 4,224; batch 67,584
 * Memory, 256 rows:
 *   parameters: conv1 36 + 4, gamma and beta 8 + 8 (channels rounded up to
 *     8), fc1 8 * 64 + 8, running mean and var 8 + 8: 592 floats; 3 copies
 *     7,104 bytes = 0.01 MiB
 *   work space per row: conv1 a, mask, h, d and z 5 * 64; fc1 a, d 2 * 8;
 *     row loss and hit 2: 338; once: conv1's statistics 5 * 8 and its sums
 *     in double (2 * 8 doubles) 4 * 8 = 72 (fc1 is the fused head);
 *     256 * 338 + 72 = 86,600 floats = 346,400 bytes = 0.33 MiB
 *   input batch 256 * 36 floats = 36,864 bytes = 0.04 MiB; total 390,368
 *   bytes = 0.37 MiB */
static const char summary_bn2d_yaml[] =
    "name: b\n"
    "input: {shape: [1, 6, 6]}\n"
    "layers:\n"
    "  - {name: conv1, type: conv2d, filters: 4, kernel: 3, activation: relu, batchnorm: true, dropout: 0.2}\n"
    "  - {name: flat, type: flatten}\n"
    "  - {name: fc1, units: 3, activation: softmax}\n"
    "train: {batch_size: 16}\n";

static const char summary_bn2d_table[] =
    "layer     type         output     dropout  params  fwd MFLOP  step MFLOP  batch MFLOP\n"
    "-------------------------------------------------------------------------------------\n"
    "input     input        [1, 6, 6]                0      0.000       0.000        0.000\n"
    "conv1     conv2d       [4, 4, 4]               40      0.001       0.002        0.037\n"
    "conv1_bn  batchnorm2d  [4, 4, 4]  0.2           8      0.000       0.001        0.012\n"
    "flat      flatten      [64]                     0      0.000       0.000        0.000\n"
    "fc1       dense        [3]                    195      0.000       0.001        0.018\n"
    "-------------------------------------------------------------------------------------\n"
    "total                                         243      0.002       0.004        0.068\n"
    "\n"
    "fwd: forward pass per sample; step: forward and backward per sample; batch: step x 16\n"
    "(a multiply-add is 2 FLOP; the loss and Adam's update are not counted)\n"
    "\n"
    "memory a training run allocates: 0.37 MiB (float32; the data set not counted)\n"
    "  parameters, Adam m and v  3 x 592 floats                  0.01 MiB\n"
    "  work space                256 rows x 338 + 72 floats      0.33 MiB\n"
    "  input batch               256 rows x 36 floats            0.04 MiB\n"
    "  (256 rows: training batches of 16, evaluation batches of 256)\n";

/* Writes yaml to DIR/name.yaml, runs `dngen summary` on it and checks the
 * whole output: the model line, then table. */
static void expect_summary(const char *name, const char *yaml, const char *model_line, const char *table) {
    char *dir = fresh_dir(name);
    char *spec = fmt("%s/%s.yaml", dir, name);
    tu_write(spec, yaml);
    run r;
    DNGEN(&r, "summary", spec);
    ck_assert_msg(r.rc == DNGEN_EXIT_OK, "status %d\n%s", r.rc, r.err);
    ck_assert_str_eq(r.err, "");
    char *want = fmt("model %s (%s): %s\n\n%s", name, spec, model_line, table);
    ck_assert_msg(strcmp(r.out, want) == 0, "--- got\n%s--- expected\n%s", r.out, want);
    free(want);
    run_free(&r);
    free(spec);
    free(dir);
}

START_TEST(test_summary_dense) {
    expect_summary("d", summary_dense_yaml, "input [784], batch 50, loss cross_entropy, optimizer adam",
                   summary_dense_table);
}
END_TEST

START_TEST(test_summary_conv) {
    expect_summary("c", summary_conv_yaml, "input [1, 28, 28], batch 32, loss cross_entropy, optimizer adam",
                   summary_conv_table);
}
END_TEST

START_TEST(test_summary_bn2d) {
    expect_summary("b", summary_bn2d_yaml, "input [1, 6, 6], batch 16, loss cross_entropy, optimizer adam",
                   summary_bn2d_table);
}
END_TEST

/* The memory line counts the copies of the parameter buffer each optimizer
 * writes: the gradient unless Adam runs fused, and its state. */
START_TEST(test_summary_optimizers) {
    static const struct {
        const char *train, *line, *note;
    } cases[] = {
        {"{optimizer: {type: adam}, clip_grad_norm: 1.0}", "  parameters, gradient, Adam m and v  4 x 7,504 floats",
         "Adam's update"},
        {"{optimizer: {type: sgd}}", "  parameters, gradient      2 x 7,504 floats", "SGD's update"},
        {"{optimizer: {type: sgd, momentum: 0.9}}", "  parameters, gradient, momentum  3 x 7,504 floats",
         "SGD's update"},
        {"{optimizer: {type: rmsprop, momentum: 0.9, centered: true}}",
         "  parameters, gradient, RMSprop state  5 x 7,504 floats", "RMSprop's update"},
    };
    char *dir = fresh_dir("summary_optimizers");
    char *spec = fmt("%s/o.yaml", dir);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char *yaml = fmt("name: o\ninput: 100\nlayers:\n  - {units: 64, activation: relu}\n"
                         "  - {units: 10, activation: softmax}\ntrain: %s\n", cases[k].train);
        tu_write(spec, yaml);
        run r;
        DNGEN(&r, "summary", spec);
        ck_assert_msg(r.rc == DNGEN_EXIT_OK, "%s", r.err);
        ck_assert_msg(strstr(r.out, cases[k].line) != NULL, "no '%s' in\n%s", cases[k].line, r.out);
        ck_assert_msg(strstr(r.out, cases[k].note) != NULL, "no '%s' in\n%s", cases[k].note, r.out);
        run_free(&r);
        free(yaml);
    }
    free(spec);
    free(dir);
}
END_TEST

/* A batch above the eval batch sizes the run: batch rows, no note. */
START_TEST(test_summary_big_batch) {
    char *dir = fresh_dir("summary_big_batch");
    char *spec = fmt("%s/d.yaml", dir);
    char *yaml = strdup(summary_dense_yaml);
    char *b = strstr(yaml, "batch_size: 50");
    ck_assert_ptr_nonnull(b);
    memcpy(b + strlen("batch_size: "), "99", 2); /* 50 -> 99: same length */
    tu_write(spec, yaml);
    run r;
    DNGEN(&r, "summary", spec);
    ck_assert_int_eq(r.rc, DNGEN_EXIT_OK);
    ck_assert_msg(strstr(r.out, "; batch: step x 99\n") != NULL, "%s", r.out);
    /* fc1: step 802,816 FLOP * 99 = 79.478784 MFLOP */
    ck_assert_msg(strstr(r.out, "0.803       79.479\n") != NULL, "%s", r.out);
    ck_assert_msg(strstr(r.out, "(256 rows: training batches of 99, evaluation batches of 256)") != NULL, "%s",
                  r.out);
    run_free(&r);
    free(yaml);
    tu_write(spec, "name: d\ninput: 784\nlayers:\n  - {units: 10, activation: softmax}\ntrain: {batch_size: 300}\n");
    DNGEN(&r, "summary", spec);
    ck_assert_int_eq(r.rc, DNGEN_EXIT_OK);
    /* rows = 300: 300 * (fc1 a, d 2 * 16 + 2) = 10,200 floats; parameters 3 * (16 * 784 + 16) */
    ck_assert_msg(strstr(r.out, "  work space                300 rows x 34 floats ") != NULL, "%s", r.out);
    ck_assert_msg(strstr(r.out, "  input batch               300 rows x 784 floats ") != NULL, "%s", r.out);
    ck_assert_msg(strstr(r.out, "3 x 12,560 floats") != NULL, "%s", r.out);
    ck_assert_msg(strstr(r.out, "evaluation batches") == NULL, "%s", r.out);
    run_free(&r);
    free(spec);
    free(dir);
}
END_TEST

/* The example net of PyTorch's MNIST example (specs/cnn.yaml), as the issue
 * counts it: 1,199,882 parameters (PyTorch's own count) and about 72 MFLOP
 * per training sample; by hand, steps of conv1 2 * (2*32*26*26*9) = 778,752,
 * conv2 3 * (2*64*24*24*32*9) = 63,700,992, pool1 2 * (64*12*12*4) = 73,728,
 * fc1 3 * (2*9216*128) = 7,077,888, fc2 3 * (2*128*10) = 7,680: 71,639,040.
 * Every spec in specs/ summarizes. */
START_TEST(test_summary_specs) {
    run r;
    DNGEN(&r, "summary", SPECS "/cnn.yaml");
    ck_assert_int_eq(r.rc, DNGEN_EXIT_OK);
    ck_assert_msg(strstr(r.out, "\ntotal ") != NULL && strstr(strstr(r.out, "\ntotal "), " 1,199,882 ") != NULL,
                  "%s", r.out);
    ck_assert_msg(strstr(r.out, "     71.639 ") != NULL, "%s", r.out);
    run_free(&r);
    char *paths[32];
    int n = example_specs(paths, 32);
    for (int i = 0; i < n; i++) {
        DNGEN(&r, "summary", paths[i]);
        ck_assert_msg(r.rc == DNGEN_EXIT_OK && r.err_len == 0, "%s: %d %s", paths[i], r.rc, r.err);
        ck_assert_msg(starts_with(r.out, "model "), "%s: %s", paths[i], r.out);
        run_free(&r);
        free(paths[i]);
    }
}
END_TEST

START_TEST(test_summary_usage) {
    run r;
    DNGEN(&r, "summary");
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_str_eq(r.out, "");
    ck_assert_str_eq(r.err, "dngen summary: no spec file given\nusage: dngen summary SPEC.yaml\n");
    run_free(&r);
    DNGEN(&r, "summary", MLP, "-o", "x");
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_str_eq(r.out, "");
    ck_assert_str_eq(r.err, "dngen summary: unknown option '-o'\nusage: dngen summary SPEC.yaml\n");
    run_free(&r);
    DNGEN(&r, "summary", MLP, MLP);
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_str_eq(r.err, "dngen summary: more than one spec given ('" MLP "' and '" MLP "')\n");
    run_free(&r);
    DNGEN(&r, "summary", SPECS "/no-such.yaml");
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_str_eq(r.out, "");
    ck_assert_str_eq(r.err, SPECS "/no-such.yaml: error: cannot read spec: No such file or directory\n");
    run_free(&r);
    DNGEN(&r, "summary", "--help");
    ck_assert_int_eq(r.rc, DNGEN_EXIT_OK);
    ck_assert_msg(starts_with(r.out, "usage: dngen summary SPEC.yaml\n"), "%s", r.out);
    ck_assert_str_eq(r.err, "");
    run_free(&r);
}
END_TEST

/* ---- broken specs through the CLI ------------------------------------------- */

typedef struct {
    const char *name;
    const char *yaml;
    const char *expect; /* the diagnostics before the count line; '@' stands for the spec path */
} broken_case;

static const broken_case broken[] = {
    {"unknown_key_suggest", H LAY("unit: 3, activation: relu", OUT2),
     "@:4:6: error: unknown key 'unit' in layer; did you mean 'units'? (allowed: name, units, activation, dropout, noise, batchnorm, type, filters, kernel, stride, padding)\n"},
    {"dropout_1_5", H LAY("units: 3, activation: relu, dropout: 1.5", OUT2),
     "@:4:43: error: dropout must be in [0, 1), got 1.5\n"},
    {"dropout_output", H LAY("units: 3, activation: relu", OUT2 ", dropout: 0.5"),
     "@:5:46: error: dropout is not allowed on the output layer, got 0.5\n"},
    {"softmax_hidden", H LAY("units: 3, activation: softmax", OUT2),
     "@:4:28: error: softmax is only allowed on the output layer\n"},
    {"mse_softmax", V "train: {loss: mse}\n",
     "@:5:28: error: loss mse needs a linear, sigmoid or tanh output layer, got activation 'softmax'\n"
     "@:6:15: note: loss is set to mse here\n"},
    {"ce_linear_default", H LAY("units: 3, activation: relu", "units: 2, activation: linear"),
     "@:5:28: error: loss cross_entropy needs a softmax output layer, got activation 'linear'\n"
     "@: note: cross_entropy is the default loss; set train.loss to mse for other outputs\n"},
    {"negative_units", H LAY("units: -3, activation: relu", OUT2),
     "@:4:13: error: units must be in [1, 16777216], got -3\n"},
    {"yaml_syntax", H "layers:\n  - {units: 3, activation: relu\n",
     "@:5:1: error: syntax error: did not find expected ',' or '}'\n"
     "@:4:5: note: while parsing a flow mapping that starts here\n"},
    {"duplicate_key", V "input: 5\n", "@:6:1: error: duplicate key 'input'\n@:2:1: note: 'input' first defined here\n"},
    {"wrong_type", "name: t\ninput: \"784\"\n" L, "@:2:8: error: expected an integer, got a string\n"},
    {"bad_name", "name: 9lives\ninput: 4\n" L,
     "@:1:7: error: invalid model name '9lives': use letters, digits and underscores, not starting with a digit\n"},
    {"lr_zero", V "train:\n  optimizer: {lr: 0}\n", "@:7:19: error: lr must be > 0, got 0\n"},
    {"betas_length", V "train:\n  optimizer: {betas: [0.9, 0.99, 0.999]}\n",
     "@:7:22: error: betas must have exactly 2 numbers, got 3\n"},
    {"duplicate_layer_names", H LAY("name: a, units: 3, activation: relu", "name: a, " OUT2),
     "@:5:12: error: duplicate layer name 'a'\n@:4:12: note: 'a' first used here\n"},
    {"missing_layers", H, "@:1:1: error: missing required key 'layers' at top level\n"},
    {"unknown_activation", H LAY("units: 3, activation: rleu", OUT2),
     "@:4:28: error: unknown activation 'rleu'; did you mean 'relu'? (allowed: relu, tanh, sigmoid, linear, softmax, "
     "leaky_relu, elu, gelu, silu, softplus, swish)\n"},
    {"empty_file", "", "@: error: spec is empty\n"},
    {"anchor", "name: t\ninput: &n 4\n" L, "@:2:8: error: anchors are not supported (&n)\n"},
    {"control_char", V "\x01\n", "@:6:1: error: invalid input: control characters are not allowed (0x1)\n"},
    {"units_1e12", H LAY("units: 1000000000000, activation: relu", OUT2),
     "@:4:13: error: units must be in [1, 16777216], got 1000000000000\n"},
    {"units_1e20", H LAY("units: 99999999999999999999, activation: relu", OUT2),
     "@:4:13: error: units must be in [1, 16777216], got 99999999999999999999\n"},
};

#define N_BROKEN ((int)(sizeof broken / sizeof broken[0]))

/* Each mistake: status 1, exactly one error line (at the right place) then
 * the count line, nothing on stdout, and the existing output file kept
 * byte for byte with no temporary file left beside it. `dngen summary`
 * reports a bad spec exactly as generation does. */
START_TEST(test_broken_spec) {
    const broken_case *c = &broken[_i];
    char *dirname = fmt("cli_broken_%s", c->name);
    char *dir = fresh_dir(dirname);
    char *spec = fmt("%s/%s.yaml", dir, c->name), *outdir = fmt("%s/out", dir), *outc = fmt("%s/out/existing.c", dir);
    ck_assert_int_eq(mkdir(outdir, 0777), 0);
    tu_write(spec, c->yaml);
    const char *old = "/* the previous output */\nint previous;\n";
    tu_write(outc, old);

    char *diags = subst_path(c->expect, spec);
    char *want = fmt("%s%s: 1 error\n", diags, spec);
    const char *modes[][3] = {{"-o", outc, NULL}, {"--standalone", "-o", outc}, {"-o", "-", NULL}, {"--check", NULL, NULL}};
    for (int m = 0; m < 5; m++) {
        const char *args[4] = {spec, NULL, NULL, NULL};
        int n = 1;
        if (m < 4) {
            memcpy(args + 1, modes[m], sizeof modes[m]);
            while (n < 4 && args[n]) n++;
        } else { /* dngen summary SPEC */
            args[0] = "summary";
            args[1] = spec;
            n = 2;
        }
        run r;
        run_args(&r, n, args);
        ck_assert_msg(r.rc == DNGEN_EXIT_INVALID_SPEC, "case %s mode %d: status %d\n%s", c->name, m, r.rc, r.err);
        ck_assert_msg(strcmp(r.err, want) == 0, "case %s:\n--- got\n%s--- expected\n%s", c->name, r.err, want);
        ck_assert_int_eq(count_of(r.err, ": error: "), 1);
        ck_assert_msg(r.out_len == 0, "case %s: wrote %zu bytes to stdout", c->name, r.out_len);
        run_free(&r);
        size_t len;
        char *now = read_file(outc, &len);
        ck_assert_msg(len == strlen(old) && memcmp(now, old, len) == 0, "case %s: existing output changed", c->name);
        free(now);
        expect_dir(outdir, (const char *[]){"existing.c"}, 1);
        expect_dir(dir, (const char *[]){"out", strrchr(spec, '/') + 1}, 2);
    }
    free(want);
    free(diags);
    free(spec);
    free(outdir);
    free(outc);
    free(dir);
    free(dirname);
}
END_TEST

/* Several mistakes: all reported, and the count line says how many. */
START_TEST(test_error_count_line) {
    char *dir = fresh_dir("cli_error_count");
    char *spec = fmt("%s/many.yaml", dir);
    tu_write(spec, "name: 1x\ninput: 0\nlayers:\n  - {units: 0, activation: relu, dropout: 2}\n  - {" OUT2 "}\n");
    run r;
    DNGEN(&r, spec, "--check");
    ck_assert_int_eq(r.rc, DNGEN_EXIT_INVALID_SPEC);
    ck_assert_int_eq(count_of(r.err, ": error: "), 4);
    char *tail = fmt("\n%s: 4 errors\n", spec);
    ck_assert_msg(r.err_len > strlen(tail) && strcmp(r.err + r.err_len - strlen(tail), tail) == 0, "stderr:\n%s",
                  r.err);
    free(tail);
    run_free(&r);
    free(spec);
    free(dir);
}
END_TEST

/* Warnings alone: status 0, the file is written, no count line. */
START_TEST(test_warnings_only) {
    char *dir = fresh_dir("cli_warnings");
    char *spec = fmt("%s/warn.yaml", dir), *outc = fmt("%s/warn.c", dir);
    tu_write(spec, H LAY("units: 3, activation: relu, dropout: 0.9", OUT2));
    run r;
    DNGEN(&r, spec, "-o", outc);
    ck_assert_int_eq(r.rc, DNGEN_EXIT_OK);
    char *want = fmt("%s:4:43: warning: dropout 0.9 is unusually high\n", spec);
    ck_assert_str_eq(r.err, want);
    ck_assert_str_eq(r.out, "");
    ck_assert(exists(outc));
    free(want);
    run_free(&r);
    free(spec);
    free(outc);
    free(dir);
}
END_TEST

/* ---- the output file ---------------------------------------------------------- */

/* Generates spec into out (in-process); asserts success. */
static void generate(const char *spec, const char *out, int standalone) {
    run r;
    if (standalone)
        DNGEN(&r, spec, "--standalone", "-o", out);
    else
        DNGEN(&r, spec, "-o", out);
    ck_assert_msg(r.rc == DNGEN_EXIT_OK, "dngen %s -o %s: status %d\n%s", spec, out, r.rc, r.err);
    ck_assert_str_eq(r.err, "");
    ck_assert_str_eq(r.out, "");
    run_free(&r);
}

START_TEST(test_deterministic) {
    char *dir = fresh_dir("cli_determinism");
    for (int sa = 0; sa < 2; sa++) {
        char *a = fmt("%s/a%d.c", dir, sa), *b = fmt("%s/b%d.c", dir, sa);
        generate(MLP, a, sa);
        generate(MLP, b, sa);
        size_t la, lb;
        char *ta = read_file(a, &la), *tb = read_file(b, &lb);
        ck_assert_msg(la == lb && memcmp(ta, tb, la) == 0, "two runs differ (standalone %d)", sa);
        if (!sa) { /* -o - prints the same bytes */
            run r;
            DNGEN(&r, MLP, "-o", "-");
            ck_assert_int_eq(r.rc, 0);
            ck_assert_msg(r.out_len == la && memcmp(r.out, ta, la) == 0, "-o - differs from -o FILE");
            run_free(&r);
        }
        free(ta);
        free(tb);
        free(a);
        free(b);
    }
    free(dir);
}
END_TEST

/* The hash printed for a spec (the "(spec hash X)" of the banner), malloc'd. */
static char *banner_hash(const char *text) {
    const char *p = strstr(text, "(spec hash ");
    ck_assert_ptr_nonnull(p);
    return strndup(p + 11, 16);
}

START_TEST(test_spec_change_changes_output) {
    char *dir = fresh_dir("cli_change");
    char *spec = fmt("%s/net.yaml", dir), *c1 = fmt("%s/1.c", dir), *c2 = fmt("%s/2.c", dir), *c3 = fmt("%s/3.c", dir);
    const char *base = "name: net\ninput: 8\nlayers:\n  - {units: 4, activation: relu}\n  - {" OUT2 "}\n"
                       "train: {optimizer: {lr: 0.001}}\n";
    tu_write(spec, base);
    generate(spec, c1, 0);
    /* a different learning rate: different code and hash */
    tu_write(spec, "name: net\ninput: 8\nlayers:\n  - {units: 4, activation: relu}\n  - {" OUT2 "}\n"
                   "train: {optimizer: {lr: 0.002}}\n");
    generate(spec, c2, 0);
    /* only a comment added: the hash still changes (it covers every byte) */
    char *commented = fmt("# a comment\n%s", base);
    tu_write(spec, commented);
    generate(spec, c3, 0);
    char *t1 = read_file(c1, NULL), *t2 = read_file(c2, NULL), *t3 = read_file(c3, NULL);
    ck_assert_str_ne(t1, t2);
    ck_assert_str_ne(t1, t3);
    ck_assert(strstr(t1, "lr = 0.001f,") != NULL);
    ck_assert(strstr(t2, "lr = 0.002f,") != NULL);
    char *h1 = banner_hash(t1), *h2 = banner_hash(t2), *h3 = banner_hash(t3);
    ck_assert_str_ne(h1, h2);
    ck_assert_str_ne(h1, h3);
    ck_assert_str_ne(h2, h3);
    free(h1);
    free(h2);
    free(h3);
    free(t1);
    free(t2);
    free(t3);
    free(commented);
    free(spec);
    free(c1);
    free(c2);
    free(c3);
    free(dir);
}
END_TEST

START_TEST(test_banner_path_hash) {
    char *dir = fresh_dir("cli_banner");
    char *outc = fmt("%s/mlp.c", dir);
    generate(MLP, outc, 0);
    size_t slen;
    char *spec = read_file(MLP, &slen), *text = read_file(outc, NULL);
    char hash[17];
    snprintf(hash, sizeof hash, "%016" PRIx64, fnv1a(spec, slen));
    char *line = fmt("/* mlp - generated by dngen " DNGEN_VERSION " from " MLP " (spec hash %s).\n", hash);
    ck_assert_msg(starts_with(text, line), "banner:\n%.300s\nwant:\n%s", text, line);
    char *field = fmt(".spec_hash = \"%s\",", hash);
    ck_assert_msg(strstr(text, field) != NULL, "no %s", field);
    ck_assert(strstr(text, ".spec_path = \"" MLP "\",") != NULL);
    free(field);
    free(line);
    free(spec);
    free(text);
    free(outc);
    free(dir);
}
END_TEST

START_TEST(test_output_dir_missing) {
    char *dir = fresh_dir("cli_nodir");
    char *outc = fmt("%s/no/such/dir/out.c", dir);
    run r;
    DNGEN(&r, MLP, "-o", outc);
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_str_eq(r.out, "");
    char *want = fmt("dngen: %s: ", outc);
    ck_assert_msg(starts_with(r.err, want) && strstr(r.err, "No such file or directory\n") &&
                      count_of(r.err, "\n") == 1,
                  "stderr:\n%s", r.err);
    free(want);
    run_free(&r);
    expect_dir(dir, NULL, 0); /* nothing created, not even the directory */
    free(outc);
    free(dir);
}
END_TEST

START_TEST(test_output_is_directory) {
    char *dir = fresh_dir("cli_outdir");
    char *target = fmt("%s/target", dir), *inner = fmt("%s/target/inside.txt", dir);
    ck_assert_int_eq(mkdir(target, 0777), 0);
    tu_write(inner, "keep\n");
    run r;
    DNGEN(&r, MLP, "-o", target);
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_str_eq(r.out, "");
    char *want = fmt("dngen: %s: ", target);
    ck_assert_msg(starts_with(r.err, want) && strstr(r.err, "Is a directory\n"), "stderr:\n%s", r.err);
    free(want);
    run_free(&r);
    /* a trailing slash names a directory, never a file */
    char *slash = fmt("%s/", target);
    DNGEN(&r, MLP, "-o", slash);
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    want = fmt("dngen: %s: not a file name\n", slash);
    ck_assert_str_eq(r.err, want);
    free(want);
    run_free(&r);
    /* an empty file name */
    DNGEN(&r, MLP, "-o", "");
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_str_eq(r.out, "");
    run_free(&r);
    /* the directory and its content untouched, no temporary file anywhere */
    struct stat st;
    ck_assert_int_eq(stat(target, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    expect_dir(dir, (const char *[]){"target"}, 1);
    expect_dir(target, (const char *[]){"inside.txt"}, 1);
    char *kept = read_file(inner, NULL);
    ck_assert_str_eq(kept, "keep\n");
    free(kept);
    free(slash);
    free(target);
    free(inner);
    free(dir);
}
END_TEST

/* A valid spec replaces an existing output completely, leaving nothing else;
 * --check never writes, even with -o. */
START_TEST(test_output_replaced) {
    char *dir = fresh_dir("cli_replace");
    char *outc = fmt("%s/mlp.c", dir), *unwritten = fmt("%s/never.c", dir);
    /* longer than the new content would be if it were only overwritten in place */
    char *junk = malloc(1 << 20);
    ck_assert_ptr_nonnull(junk);
    memset(junk, 'x', (1 << 20) - 1);
    junk[(1 << 20) - 1] = '\0';
    tu_write(outc, junk);
    free(junk);
    generate(MLP, outc, 0);
    run r;
    DNGEN(&r, MLP, "-o", "-");
    size_t len;
    char *text = read_file(outc, &len);
    ck_assert_msg(len == r.out_len && memcmp(text, r.out, len) == 0, "the output was not replaced");
    free(text);
    run_free(&r);
    DNGEN(&r, MLP, "--check", "-o", unwritten);
    ck_assert_int_eq(r.rc, DNGEN_EXIT_OK);
    ck_assert(!exists(unwritten));
    run_free(&r);
    expect_dir(dir, (const char *[]){"mlp.c"}, 1);
    free(unwritten);
    free(outc);
    free(dir);
}
END_TEST

/* Index of a line of text that is a quoted #include, or -1. */
static int quoted_include_line(const char *text, const char *prefix) {
    int line = 1;
    for (const char *p = text; *p; line++) {
        const char *q = p + strspn(p, " \t");
        if (*q == '#') {
            q += 1 + strspn(q + 1, " \t");
            if (strncmp(q, "include", 7) == 0) {
                q += 7 + strspn(q + 7, " \t");
                if (starts_with(q, prefix)) return line;
            }
        }
        const char *nl = strchr(p, '\n');
        if (!nl) break;
        p = nl + 1;
    }
    return -1;
}

START_TEST(test_standalone_no_runtime_includes) {
    char *dir = fresh_dir("cli_standalone");
    char *lib = fmt("%s/lib.c", dir), *sa = fmt("%s/sa.c", dir);
    generate(MLP, lib, 0);
    generate(MLP, sa, 1);
    char *tl = read_file(lib, NULL), *ts = read_file(sa, NULL);
    /* the linked flavour does include the runtime header: the check can see it */
    ck_assert_int_gt(quoted_include_line(tl, "\"dn_"), 0);
    int line = quoted_include_line(ts, "\"dn_");
    ck_assert_msg(line < 0, "--standalone output includes a runtime header at line %d", line);
    line = quoted_include_line(ts, "\"");
    ck_assert_msg(line < 0, "--standalone output has a quoted #include at line %d", line);
    ck_assert(strstr(ts, "int main(int argc, char **argv)") != NULL);
    free(tl);
    free(ts);
    free(lib);
    free(sa);
    free(dir);
}
END_TEST

/* ---- hostile spec text -------------------------------------------------------- */

/* Each description mixes comment terminators and openers, trigraphs, line
 * splices, quotes, control bytes and non-ASCII with ZQ markers: if any text
 * escaped the comment, a marker would be left once comments are stripped.
 * (Trigraphs are spelled ?\? here so that this file has none.) */
static const char *const hostile_descriptions[] = {
    /* YAML double-quoted: escapes make newlines, backslashes, controls */
    "description: \"ZQ1 */ ZQ2 /* ZQ3 ?\?/\\nZQ4 \\\\\\nZQ5 \\\" ZQ6 \\x01\\x1b\\x7f\\t\\r\\f\\v\\e ZQ7 "
    "\\u00e9\\u4e2d\\U0001F600\\u0085\\u2028 ZQ8 *\\\\\\n/ ZQ9 ?\\\\\\n?/ ZQ10 ?\?' ?\?= ?\?( ZQ11 // ZQ12 "
    "*\\n/ ZQ13 *\\\\\\r/ ZQ14 *\\\\\\r\\n/ ZQ15 \\\\\"\n",
    /* YAML literal block: the text as typed, raw UTF-8 included */
    "description: |\n"
    "  ZQ20 */ int injected_zq = 1; /*\n"
    "  ZQ21 \\\n"
    "  ZQ22 ?\?/\n"
    "  ZQ23 \xc3\xa9\xe2\x80\x94 */ #include <stdlib.h>\n"
    "  ZQ24 \\ \n"
    "  */ZQ25\n",
    /* plain scalar ending in a star and a backslash */
    "description: ZQ30 *\\\n",
    /* single-quoted: terminators back to back */
    "description: '*/ZQ40*/*/ /*ZQ41 ?\?/'\n",
};

#define N_HOSTILE ((int)(sizeof hostile_descriptions / sizeof hostile_descriptions[0]))
#define BENIGN_BODY "input: 4\nlayers:\n  - {units: 3, activation: relu, dropout: 0.5}\n  - {" OUT2 "}\n"

/* Generates spec (as given on the command line) into dir/NAME{,_sa}.c, checks
 * both compile, and returns the two texts. */
static void generate_both(const char *spec, const char *dir, const char *name, char **lib, char **sa) {
    char *cl = fmt("%s/%s.c", dir, name), *cs = fmt("%s/%s_sa.c", dir, name);
    generate(spec, cl, 0);
    generate(spec, cs, 1);
    ck_assert_msg(compile_syntax(cl) == 0, "%s (from %s) does not compile", cl, spec);
    ck_assert_msg(compile_syntax(cs) == 0, "%s (from %s) does not compile", cs, spec);
    *lib = read_file(cl, NULL);
    *sa = read_file(cs, NULL);
    free(cl);
    free(cs);
}

/* The hostile output has as many comments as the baseline, and markers
 * only where expected (markers_in_strings times, in string literals) once
 * comments are stripped. With raw_delims, it also has exactly as many
 * comment delimiters as the baseline anywhere in the text. */
static void expect_contained(const char *hostile, const char *baseline, const char *marker, int markers_in_strings,
                             int raw_delims) {
    if (raw_delims) {
        ck_assert_int_eq(count_of(hostile, "*/"), count_of(baseline, "*/"));
        ck_assert_int_eq(count_of(hostile, "/*"), count_of(baseline, "/*"));
    }
    int nc, base_nc;
    char *code = strip_comments(hostile, &nc), *base_code = strip_comments(baseline, &base_nc);
    ck_assert_msg(code != NULL, "unterminated comment");
    ck_assert_ptr_nonnull(base_code);
    ck_assert_int_eq(nc, base_nc);
    /* the stripper works: comment text gone, code kept */
    ck_assert(strstr(baseline, "Do not edit; regenerate.") && !strstr(base_code, "Do not edit; regenerate."));
    ck_assert(strstr(base_code, "int main(int argc, char **argv)") != NULL);
    int n = count_of(code, marker);
    if (n != markers_in_strings) {
        const char *p = strstr(code, marker);
        ck_assert_msg(0, "%d '%s' markers outside comments (want %d), first: ...%.120s", n, marker,
                      markers_in_strings, p && p > code + 60 ? p - 60 : code);
    }
    free(code);
    free(base_code);
}

START_TEST(test_hostile_description) {
    char *dir = fresh_dir("cli_hostile_desc");
    char *spec = fmt("%s/evil.yaml", dir);
    char *bl, *bs, *hl, *hs;
    /* the baseline at the same path: only the description differs */
    tu_write(spec, "name: evil\n" BENIGN_BODY);
    generate_both(spec, dir, "base", &bl, &bs);
    char *text = fmt("name: evil\n%s" BENIGN_BODY, hostile_descriptions[_i]);
    tu_write(spec, text);
    free(text);
    generate_both(spec, dir, "hostile", &hl, &hs);
    ck_assert_msg(strstr(hl, "ZQ") != NULL, "no description in the banner");
    expect_contained(hl, bl, "ZQ", 0, 1);
    expect_contained(hs, bs, "ZQ", 0, 1);
    free(bl);
    free(bs);
    free(hl);
    free(hs);
    free(spec);
    free(dir);
}
END_TEST

/* The longest description, made only of comment terminators. */
START_TEST(test_hostile_description_longest) {
    char *dir = fresh_dir("cli_hostile_long");
    char *spec = fmt("%s/long.yaml", dir);
    char desc[1024];
    for (int i = 0; i < 1023; i++) desc[i] = i % 2 ? '/' : '*';
    desc[1023] = '\0';
    char *bl, *bs, *hl, *hs;
    tu_write(spec, "name: evil\n" BENIGN_BODY);
    generate_both(spec, dir, "base", &bl, &bs);
    char *text = fmt("name: evil\ndescription: '%s'\n" BENIGN_BODY, desc);
    tu_write(spec, text);
    free(text);
    generate_both(spec, dir, "long", &hl, &hs);
    expect_contained(hl, bl, "ZQ", 0, 1);
    expect_contained(hs, bs, "ZQ", 0, 1);
    /* one byte more is refused */
    text = fmt("name: evil\ndescription: '%s*'\n" BENIGN_BODY, desc);
    tu_write(spec, text);
    free(text);
    run r;
    DNGEN(&r, spec, "--check");
    ck_assert_int_eq(r.rc, DNGEN_EXIT_INVALID_SPEC);
    char *want = fmt("%s:2:14: error: description is too long (1024 bytes, at most 1023)\n%s: 1 error\n", spec, spec);
    ck_assert_str_eq(r.err, want);
    free(want);
    run_free(&r);
    free(bl);
    free(bs);
    free(hl);
    free(hs);
    free(spec);
    free(dir);
}
END_TEST

/* A spec path with a comment terminator, a quote, a trigraph, a backslash
 * and a newline: it appears in the banner comment and in a C string. */
START_TEST(test_hostile_path) {
    char *dir = fresh_dir("cli_hostile_path");
    /* directories a*, b??, "ZQP1 \<newline>ZQP2 * and the file ZQP3 é.yaml */
    char *d1 = fmt("%s/a*", dir), *d2 = fmt("%s/b?\?", d1), *d3 = fmt("%s/\"ZQP1 \\\nZQP2 *", d2);
    ck_assert_int_eq(mkdir(d1, 0777), 0);
    ck_assert_int_eq(mkdir(d2, 0777), 0);
    ck_assert_int_eq(mkdir(d3, 0777), 0);
    char *spec = fmt("%s/ZQP3 \xc3\xa9.yaml", d3);
    char *benign = fmt("%s/benign.yaml", dir);
    ck_assert(strstr(spec, "*/") && strstr(spec, "?\?/") && strchr(spec, '"'));
    tu_write(spec, "name: evil\n" BENIGN_BODY);
    tu_write(benign, "name: evil\n" BENIGN_BODY);
    char *bl, *bs, *hl, *hs;
    generate_both(benign, dir, "base", &bl, &bs);
    generate_both(spec, dir, "hostile", &hl, &hs);
    /* each marker is left once, in the .spec_path string, escaped */
    expect_contained(hl, bl, "ZQP1", 1, 0);
    expect_contained(hl, bl, "ZQP2", 1, 0);
    expect_contained(hs, bs, "ZQP1", 1, 0);
    expect_contained(hs, bs, "ZQP2", 1, 0);
    expect_contained(hl, bl, "ZQP3", 1, 0);
    expect_contained(hs, bs, "ZQP3", 1, 0);
    const char *sp = strstr(hl, ".spec_path = \"");
    ck_assert_ptr_nonnull(sp);
    const char *eol = strchr(sp, '\n');
    ck_assert_msg(strstr(sp, "ZQP1") < eol && strstr(sp, "ZQP3") < eol, "the path is not one string literal");
    /* the banner names the file too (in a comment) */
    ck_assert(strstr(hl, "ZQP1") < strstr(hl, "(spec hash"));
    free(bl);
    free(bs);
    free(hl);
    free(hs);
    free(benign);
    free(spec);
    free(d1);
    free(d2);
    free(d3);
    free(dir);
}
END_TEST

/* Names that are no C identifiers, or keywords: rejected before any code. */
typedef struct {
    const char *yaml;
    const char *expect; /* '@' is the path */
} name_case;

static const name_case bad_names[] = {
    {"name: x; system(\"rm\")\ninput: 4\n" L,
     "@:1:7: error: invalid model name 'x; system(\"rm\")': use letters, digits and underscores, "
     "not starting with a digit\n"},
    {"name: a-b\ninput: 4\n" L,
     "@:1:7: error: invalid model name 'a-b': use letters, digits and underscores, not starting with a digit\n"},
    {"name: int\ninput: 4\n" L, "@:1:7: error: model name 'int' is a C keyword\n"},
    {"name: _Bool\ninput: 4\n" L, "@:1:7: error: model name '_Bool' is a C keyword\n"},
    {"name: static_assert\ninput: 4\n" L, "@:1:7: error: model name 'static_assert' is a C keyword\n"},
    {"name: 'a*/b'\ninput: 4\n" L,
     "@:1:7: error: invalid model name 'a*/b': use letters, digits and underscores, not starting with a digit\n"},
    {"name: \"a\\nb\"\ninput: 4\n" L, NULL}, /* message not pinned: status and count only */
    {H LAY("name: for, units: 3, activation: relu", OUT2), "@:4:12: error: layer name 'for' is a C keyword\n"},
    {H LAY("name: 'x;y', units: 3, activation: relu", OUT2),
     "@:4:12: error: invalid layer name 'x;y': use letters, digits and underscores, not starting with a digit\n"},
    {H LAY("name: 'fc1.weight', units: 3, activation: relu", OUT2),
     "@:4:12: error: invalid layer name 'fc1.weight': use letters, digits and underscores, "
     "not starting with a digit\n"},
};

START_TEST(test_bad_names) {
    char *dir = fresh_dir("cli_bad_names");
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        char *spec = fmt("%s/n%zu.yaml", dir, i), *outc = fmt("%s/n%zu.c", dir, i);
        tu_write(spec, bad_names[i].yaml);
        run r;
        DNGEN(&r, spec, "-o", outc);
        ck_assert_msg(r.rc == DNGEN_EXIT_INVALID_SPEC, "case %zu: status %d\n%s", i, r.rc, r.err);
        ck_assert_int_eq(count_of(r.err, ": error: "), 1);
        if (bad_names[i].expect) {
            char *d = subst_path(bad_names[i].expect, spec), *want = fmt("%s%s: 1 error\n", d, spec);
            ck_assert_str_eq(r.err, want);
            free(d);
            free(want);
        }
        ck_assert(!exists(outc));
        run_free(&r);
        free(spec);
        free(outc);
    }
    free(dir);
}
END_TEST

/* Names the validator accepts although they are reserved identifiers or
 * collide with names in the C library, the runtime or the generated code:
 * an accepted name must give a trainer that compiles (or be rejected). */
typedef struct {
    const char *model;
    const char *layer;  /* name of the first (hidden) layer, or NULL */
    int input_dropout;
} odd_name;

static const odd_name odd_names[] = {
    {"__x", NULL, 0},          {"_X", NULL, 0},          {"main", NULL, 0},
    {"dn_model", NULL, 0},     {"printf", NULL, 0},      {"NULL", NULL, 0},
    {"size_t", NULL, 0},       {"errno", NULL, 0},       {"model", NULL, 0},
    {"m", "main", 1},          {"m", "__x", 1},          {"m", "rowloss", 1},
    {"m", "hits", 1},          {"m", "params", 1},       {"m", "bf", 1},
    {"m", "in", 0},            {"m", "NULL", 1},         {"m", "errno", 1},
    /* once collisions with runtime / generated symbols: now rejected (dn, dn_*)
     * or harmless (the runtime's own names all start with dn_) */
    {"dn", NULL, 0},           /* dn_model: the runtime's type */
    {"dn_cmd", NULL, 0},       /* dn_cmd_eval: a runtime function (standalone) */
    {"tr_csv", NULL, 0},       /* was tr_csv_init, a runtime function (standalone) */
    {"ev", NULL, 0},           /* was ev_buffers, a runtime type (standalone) */
    {"m", "in", 1},            /* was in_mask, in_h: the input dropout buffers */
};

#define N_ODD ((int)(sizeof odd_names / sizeof odd_names[0]))

START_TEST(test_odd_names_compile) {
    const odd_name *c = &odd_names[_i];
    char *dir = fresh_dir("cli_odd_name");
    char *spec = fmt("%s/odd.yaml", dir);
    char *layer = c->layer ? fmt("name: %s, ", c->layer) : strdup("");
    char *text = fmt("name: %s\ninput: {size: 4, dropout: %s}\nlayers:\n"
                     "  - {%sunits: 3, activation: relu, dropout: 0.5}\n  - {" OUT2 "}\n",
                     c->model, c->input_dropout ? "0.2" : "0", layer);
    tu_write(spec, text);
    run r;
    DNGEN(&r, spec, "--check");
    if (r.rc != DNGEN_EXIT_INVALID_SPEC) {
        ck_assert_msg(r.rc == DNGEN_EXIT_OK, "model %s layer %s: status %d\n%s", c->model, c->layer, r.rc, r.err);
        char *l, *s;
        generate_both(spec, dir, "odd", &l, &s);
        free(l);
        free(s);
    }
    run_free(&r);
    free(text);
    free(layer);
    free(spec);
    free(dir);
}
END_TEST

/* Numbers far out of range: status 1 and a short, clear message. */
typedef struct {
    const char *yaml;
    const char *expect_prefix; /* the error line starts so ('@' = path) */
} huge_case;

#define NINES_64 "9999999999999999999999999999999999999999999999999999999999999999"
#define NINES_1K NINES_64 NINES_64 NINES_64 NINES_64 NINES_64 NINES_64 NINES_64 NINES_64
static const huge_case huge[] = {
    {H LAY("units: 1000000000000, activation: relu", OUT2),
     "@:4:13: error: units must be in [1, 16777216], got 1000000000000\n"},
    {H LAY("units: 99999999999999999999, activation: relu", OUT2),
     "@:4:13: error: units must be in [1, 16777216], got 99999999999999999999\n"},
    {H LAY("units: -99999999999999999999, activation: relu", OUT2),
     "@:4:13: error: units must be in [1, 16777216], got -99999999999999999999\n"},
    {H LAY("units: " NINES_1K NINES_1K NINES_1K NINES_1K ", activation: relu", OUT2),
     "@:4:13: error: units must be in [1, 16777216], got 99999999"},
    {"name: t\ninput: 99999999999999999999\n" L, "@:2:8: error: input must be in [1, 16777216], got 99999999999999999999\n"},
    {V "train: {epochs: 4294967297}\n", "@:6:17: error: epochs must be in [1, 1000000], got 4294967297\n"},
    {V "train: {batch_size: 18446744073709551617}\n",
     "@:6:21: error: batch_size must be in [1, 65536], got 18446744073709551617\n"},
    {V "train: {seed: 18446744073709551616}\n",
     "@:6:15: error: seed must be in [0, 18446744073709551615], got 18446744073709551616\n"},
    {V "train:\n  optimizer: {lr: 1e400}\n", "@:7:19: error: lr must be a finite number, got 1e400\n"},
    {"name: t\ninput: 16777216\n" LAY("units: 16777216, activation: relu", OUT2),
     "@:4:5: error: too many parameters: layer 'fc1' brings the total to "},
};

START_TEST(test_huge_numbers) {
    char *dir = fresh_dir("cli_huge");
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        char *spec = fmt("%s/h%zu.yaml", dir, i);
        tu_write(spec, huge[i].yaml);
        run r;
        DNGEN(&r, spec, "-o", "-");
        ck_assert_msg(r.rc == DNGEN_EXIT_INVALID_SPEC, "case %zu: status %d\n%s", i, r.rc, r.err);
        ck_assert_int_eq(r.out_len, 0);
        char *want = subst_path(huge[i].expect_prefix, spec);
        ck_assert_msg(starts_with(r.err, want), "case %zu:\n--- got\n%.400s\n--- want\n%s", i, r.err, want);
        ck_assert_int_eq(count_of(r.err, ": error: "), 1);
        /* a clear message: one short line, then the count */
        ck_assert_msg(strcspn(r.err, "\n") < 300, "case %zu: error line of %zu bytes", i, strcspn(r.err, "\n"));
        char *tail = fmt("\n%s: 1 error\n", spec);
        ck_assert(r.err_len > strlen(tail) && strcmp(r.err + r.err_len - strlen(tail), tail) == 0);
        free(tail);
        free(want);
        run_free(&r);
        free(spec);
    }
    free(dir);
}
END_TEST

/* ---- the README build command ------------------------------------------------- */

START_TEST(test_standalone_builds) {
    char *dir = fresh_dir("cli_build");
    char *c = fmt("%s/mlp.c", dir);
    generate(MLP, c, 1);
    char *out = NULL;
    int st = tu_runf(&out, "cd '%s' && '%s' -O2 -fopenmp mlp.c -o mlp -lz -lm 2>&1", dir, DNGEN_CC);
    ck_assert_msg(st == 0, "cc -O2 -fopenmp mlp.c -o mlp -lz -lm: status %d\n%s", st, out);
    free(out);
    st = tu_runf(&out, "cd '%s' && ./mlp --help 2>&1", dir);
    ck_assert_msg(st == 0, "./mlp --help: status %d\n%s", st, out);
    ck_assert_msg(starts_with(out, "Usage: mlp ") && strstr(out, "Trainer for model 'mlp'") &&
                      strstr(out, "generated by dngen " DNGEN_VERSION " from " MLP),
                  "./mlp --help:\n%s", out);
    free(out);
    st = tu_runf(&out, "cd '%s' && ./mlp --bogus-option 2>&1", dir);
    ck_assert_msg(st == 2, "./mlp --bogus-option: status %d\n%s", st, out);
    free(out);
    free(c);
    free(dir);
}
END_TEST

/* ---- suite -------------------------------------------------------------------- */

int main(void) {
    Suite *s = suite_create("check_cli");

    TCase *tc = tcase_create("options");
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_no_spec);
    tcase_add_test(tc, test_unknown_option);
    tcase_add_test(tc, test_two_specs);
    tcase_add_test(tc, test_missing_output);
    tcase_add_test(tc, test_unreadable_spec);
    tcase_add_test(tc, test_check_examples);
    tcase_add_test(tc, test_stdout_output);
    tcase_add_test(tc, test_plot_dispatch);
    tcase_add_test(tc, test_summary_dense);
    tcase_add_test(tc, test_summary_conv);
    tcase_add_test(tc, test_summary_bn2d);
    tcase_add_test(tc, test_summary_optimizers);
    tcase_add_test(tc, test_summary_big_batch);
    tcase_add_test(tc, test_summary_specs);
    tcase_add_test(tc, test_summary_usage);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("broken");
    tcase_add_loop_test(tc, test_broken_spec, 0, N_BROKEN);
    tcase_add_test(tc, test_error_count_line);
    tcase_add_test(tc, test_warnings_only);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("output");
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_spec_change_changes_output);
    tcase_add_test(tc, test_banner_path_hash);
    tcase_add_test(tc, test_output_dir_missing);
    tcase_add_test(tc, test_output_is_directory);
    tcase_add_test(tc, test_output_replaced);
    tcase_add_test(tc, test_standalone_no_runtime_includes);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_add_loop_test(tc, test_hostile_description, 0, N_HOSTILE);
    tcase_add_test(tc, test_hostile_description_longest);
    tcase_add_test(tc, test_hostile_path);
    tcase_add_test(tc, test_bad_names);
    tcase_add_loop_test(tc, test_odd_names_compile, 0, N_ODD);
    tcase_add_test(tc, test_huge_numbers);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("build");
    tcase_add_test(tc, test_standalone_builds);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
