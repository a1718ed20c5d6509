/* check_plot.c - tests for `dngen plot` (generator/plot.c, generator/plot_csv.c).
 *
 * Runs dngen_plot_main in-process with memory streams on CSV files written to
 * DNGEN_TEST_TMP, and checks the SVG structurally: well-formed XML (a small
 * checker below), one polyline per series, dash styles, legend text, axis
 * labels, point counts and geometry, determinism, and exact error messages. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "plot.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#ifndef DNGEN_TEST_TMP
#define DNGEN_TEST_TMP "/tmp"
#endif

static const char usage_line[] =
    "usage: dngen plot RUN.csv [RUN.csv ...] -o OUT.svg [--metric acc|loss|both|lr] "
    "[--title TEXT] [--label NAME ...]\n";

/* The two runs of the seed article's chart (No Dropout / With Dropout). */
static const char csv_a[] =
    "epoch,step,train_loss,train_acc,test_loss,test_acc,seconds\n"
    "1,938,0.35,0.8982,0.20,0.9396,3.1\n"
    "2,1876,0.15,0.9555,0.13,0.9613,3.0\n"
    "3,2814,0.11,0.9645,0.11,0.9653,3.0\n"
    "4,3752,0.09,0.9723,0.10,0.9707,3.1\n"
    "5,4690,0.08,0.9757,0.09,0.9719,3.0\n";
static const char csv_b[] =
    "epoch,step,train_loss,train_acc,test_loss,test_acc,seconds\n"
    "1,938,0.55,0.8306,0.22,0.9366,3.4\n"
    "2,1876,0.33,0.9028,0.17,0.9500,3.3\n"
    "3,2814,0.29,0.9142,0.16,0.9515,3.3\n"
    "4,3752,0.26,0.9231,0.15,0.9559,3.4\n"
    "5,4690,0.25,0.9269,0.14,0.9586,3.3\n";

/* ---- helpers --------------------------------------------------------------- */

/* DNGEN_TEST_TMP/plot/name in a static buffer (one of 8 rotating slots). */
static const char *tmp_path(const char *name) {
    static char bufs[8][1024];
    static int slot;
    char *b = bufs[slot++ % 8];
    snprintf(b, sizeof bufs[0], "%s/plot/%s", DNGEN_TEST_TMP, name);
    return b;
}

/* Writes len bytes to path, failing the test on error. */
static void write_bytes(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* Writes a NUL-terminated string to DNGEN_TEST_TMP/plot/<name>; returns the path. */
static const char *write_csv(const char *name, const char *content) {
    const char *p = tmp_path(name);
    write_bytes(p, content, strlen(content));
    return p;
}

/* Reads a whole file (malloc'd, NUL-terminated); NULL if it cannot be opened. */
static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* Result of one in-process `dngen plot` run. */
typedef struct {
    int rc;
    char *out;
    size_t out_len;
    char *err;
    size_t err_len;
} plot_result;

/* Runs dngen_plot_main("plot", args..., NULL) with memory streams. */
static plot_result run_plot(const char *first, ...) {
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)"plot";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *)) {
        ck_assert_int_lt(argc, 63);
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    argv[argc] = NULL;
    plot_result r;
    memset(&r, 0, sizeof r);
    FILE *out = open_memstream(&r.out, &r.out_len);
    FILE *err = open_memstream(&r.err, &r.err_len);
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(err);
    r.rc = dngen_plot_main(argc, argv, out, err);
    fclose(out);
    fclose(err);
    return r;
}

static void result_free(plot_result *r) {
    free(r->out);
    free(r->err);
}

/* ---- a tiny XML well-formedness checker --------------------------------------- */

/* Checks an entity reference at s ('&'); returns its length or 0 if invalid. */
static size_t xml_entity(const char *s) {
    static const char *const names[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (size_t i = 0; i < 5; i++)
        if (strncmp(s, names[i], strlen(names[i])) == 0)
            return strlen(names[i]);
    if (s[1] == '#') {
        size_t i = 2;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
        return (i > 2 && s[i] == ';') ? i + 1 : 0;
    }
    return 0;
}

static int xml_name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static int xml_name_char(char c) {
    return xml_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static int xml_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Returns NULL if doc is well-formed (one root, balanced tags, quoted
 * attributes, escaped text and attribute values), else a static reason. */
static const char *xml_check(const char *doc) {
    const char *stack[64];
    size_t stack_len[64];
    int depth = 0, roots = 0;
    const char *p = doc;
    if (strncmp(p, "<?xml", 5) == 0) {
        p = strstr(p, "?>");
        if (!p)
            return "unterminated prolog";
        p += 2;
    }
    while (*p) {
        if (*p != '<') {
            if (*p == '&') {
                size_t n = xml_entity(p);
                if (!n)
                    return "bad entity in text";
                p += n;
                continue;
            }
            if (*p == '>')
                return "raw '>' in text";
            if (depth == 0 && !xml_space(*p))
                return "text outside the root element";
            p++;
            continue;
        }
        if (strncmp(p, "<!--", 4) == 0) {
            p = strstr(p + 4, "-->");
            if (!p)
                return "unterminated comment";
            p += 3;
            continue;
        }
        if (p[1] == '/') {
            const char *name = p + 2;
            size_t n = 0;
            while (xml_name_char(name[n]))
                n++;
            if (depth == 0 || n != stack_len[depth - 1] || strncmp(name, stack[depth - 1], n))
                return "mismatched end tag";
            depth--;
            p = name + n;
            while (xml_space(*p))
                p++;
            if (*p != '>')
                return "bad end tag";
            p++;
            continue;
        }
        const char *name = p + 1;
        if (!xml_name_start(*name))
            return "bad tag name";
        size_t n = 0;
        while (xml_name_char(name[n]))
            n++;
        p = name + n;
        for (;;) {
            int had_space = 0;
            while (xml_space(*p)) {
                p++;
                had_space = 1;
            }
            if (*p == '>' || (p[0] == '/' && p[1] == '>'))
                break;
            if (!had_space || !xml_name_start(*p))
                return "bad attribute";
            while (xml_name_char(*p))
                p++;
            if (*p++ != '=')
                return "attribute without '='";
            char q = *p++;
            if (q != '"' && q != '\'')
                return "unquoted attribute value";
            while (*p && *p != q) {
                if (*p == '<')
                    return "'<' in attribute value";
                if (*p == '&') {
                    size_t en = xml_entity(p);
                    if (!en)
                        return "bad entity in attribute";
                    p += en;
                } else {
                    p++;
                }
            }
            if (!*p)
                return "unterminated attribute value";
            p++;
        }
        if (depth == 0 && ++roots > 1)
            return "more than one root element";
        if (*p == '/') {
            p += 2;
            continue;
        }
        if (depth == 64)
            return "too deep";
        stack[depth] = name;
        stack_len[depth] = n;
        depth++;
        p++;
    }
    if (depth != 0)
        return "unclosed element";
    return roots == 1 ? NULL : "no root element";
}

/* ---- SVG inspection --------------------------------------------------------- */

typedef struct {
    char title[256];
    char stroke[32];
    int dashed;
    char dash[32];
    int npts;
    double x[64], y[64];
} polyline_info;

/* Copies attribute `name` of the tag starting at tag (up to its '>') into buf. */
static int tag_attr(const char *tag, const char *name, char *buf, size_t cap) {
    const char *end = strchr(tag, '>');
    char pat[64];
    snprintf(pat, sizeof pat, " %s=\"", name);
    const char *a = strstr(tag, pat);
    if (!a || a > end)
        return 0;
    a += strlen(pat);
    const char *q = strchr(a, '"');
    size_t n = (size_t)(q - a);
    ck_assert_uint_lt(n, cap);
    memcpy(buf, a, n);
    buf[n] = '\0';
    return 1;
}

/* Finds every <polyline> in svg; returns how many (at most max). */
static int find_polylines(const char *svg, polyline_info *pl, int max) {
    int k = 0;
    for (const char *p = strstr(svg, "<polyline"); p; p = strstr(p + 1, "<polyline")) {
        ck_assert_int_lt(k, max);
        polyline_info *q = &pl[k++];
        memset(q, 0, sizeof *q);
        ck_assert(tag_attr(p, "stroke", q->stroke, sizeof q->stroke));
        q->dashed = tag_attr(p, "stroke-dasharray", q->dash, sizeof q->dash);
        static char pts[8192];
        ck_assert(tag_attr(p, "points", pts, sizeof pts));
        const char *s = pts;
        int used;
        while (sscanf(s, "%lf,%lf%n", &q->x[q->npts], &q->y[q->npts], &used) == 2) {
            ck_assert_int_lt(q->npts, 63);
            q->npts++;
            s += used;
        }
        const char *t = strstr(p, "<title>");
        const char *te = t ? strstr(t, "</title>") : NULL;
        const char *close = strstr(p, "</polyline>");
        ck_assert_msg(t && te && close && te < close, "polyline without a <title>");
        size_t n = (size_t)(te - t - 7);
        ck_assert_uint_lt(n, sizeof q->title);
        memcpy(q->title, t + 7, n);
        q->title[n] = '\0';
    }
    return k;
}

/* Collects the tick labels of the group whose opening tag is `group`. */
static int tick_labels(const char *svg, const char *group, double *v, int max) {
    const char *g = strstr(svg, group);
    ck_assert_ptr_nonnull(g);
    const char *end = strstr(g, "</g>");
    int k = 0;
    for (const char *t = strstr(g, "<text"); t && t < end; t = strstr(t + 1, "<text")) {
        const char *c = strchr(t, '>');
        ck_assert_int_lt(k, max);
        ck_assert_int_eq(sscanf(c + 1, "%lf", &v[k]), 1);
        k++;
    }
    return k;
}

#define X_TICKS "<g font-size=\"12\" fill=\"#333333\" text-anchor=\"middle\">"
#define Y_TICKS "<g font-size=\"12\" fill=\"#333333\" text-anchor=\"end\">"

/* Runs the two seed runs with extra args; asserts success; returns the SVG. */
static plot_result run_two(const char *metric) {
    const char *a = write_csv("a.csv", csv_a);
    const char *b = write_csv("b.csv", csv_b);
    plot_result r = metric ? run_plot(a, b, "-o", "-", "--metric", metric, NULL)
                           : run_plot(a, b, "-o", "-", NULL);
    ck_assert_msg(r.rc == 0, "rc %d, stderr: %s", r.rc, r.err);
    ck_assert_uint_eq(r.err_len, 0);
    const char *why = xml_check(r.out);
    ck_assert_msg(why == NULL, "not well-formed: %s", why);
    return r;
}

/* ---- chart content ------------------------------------------------------------ */

START_TEST(test_two_runs_structure) {
    plot_result r = run_two(NULL);
    polyline_info pl[8];
    ck_assert_int_eq(find_polylines(r.out, pl, 8), 4);
    static const char *const titles[] = {"Train (a)", "Test (a)", "Train (b)", "Test (b)"};
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(pl[i].title, titles[i]);
        ck_assert_int_eq(pl[i].dashed, i % 2 == 0); /* only train lines are dashed */
        ck_assert_int_eq(pl[i].npts, 5);            /* one point per epoch */
        for (int j = 1; j < pl[i].npts; j++)
            ck_assert(pl[i].x[j] > pl[i].x[j - 1]);
    }
    ck_assert_str_eq(pl[0].stroke, pl[1].stroke); /* one colour per run */
    ck_assert_str_eq(pl[2].stroke, pl[3].stroke);
    ck_assert_str_ne(pl[0].stroke, pl[2].stroke);
    for (int j = 0; j < 5; j++) /* same epochs, same x */
        ck_assert(fabs(pl[0].x[j] - pl[3].x[j]) < 1e-9);
    ck_assert(strstr(r.out, "xmlns=\"http://www.w3.org/2000/svg\""));
    ck_assert(strstr(r.out, "width=\"800\" height=\"500\""));
    ck_assert(strstr(r.out, ">Epoch</text>"));
    ck_assert(strstr(r.out, ">Accuracy</text>"));
    ck_assert(strstr(r.out, ">Training vs Test Accuracy</text>"));
    for (int i = 0; i < 4; i++) { /* legend entries */
        char want[64];
        snprintf(want, sizeof want, ">%s</text>", titles[i]);
        ck_assert_msg(strstr(r.out, want), "legend entry %s missing", titles[i]);
    }
    ck_assert(strstr(r.out, "<script") == NULL);
    ck_assert(strstr(r.out, "@import") == NULL);
    result_free(&r);
}
END_TEST

/* Higher accuracy is drawn higher (smaller y), across all series. */
START_TEST(test_higher_value_drawn_higher) {
    plot_result r = run_two(NULL);
    polyline_info pl[8];
    ck_assert_int_eq(find_polylines(r.out, pl, 8), 4);
    /* Values in series order: train a, test a, train b, test b. */
    static const double v[4][5] = {
        {0.8982, 0.9555, 0.9645, 0.9723, 0.9757},
        {0.9396, 0.9613, 0.9653, 0.9707, 0.9719},
        {0.8306, 0.9028, 0.9142, 0.9231, 0.9269},
        {0.9366, 0.9500, 0.9515, 0.9559, 0.9586},
    };
    for (int s = 0; s < 4; s++)
        for (int i = 0; i < 5; i++)
            for (int t = 0; t < 4; t++)
                for (int j = 0; j < 5; j++)
                    if (v[s][i] > v[t][j])
                        ck_assert_msg(pl[s].y[i] < pl[t].y[j], "%g at y %g vs %g at y %g",
                                      v[s][i], pl[s].y[i], v[t][j], pl[t].y[j]);
    result_free(&r);
}
END_TEST

/* Tick labels: integer epochs; 1-2-5 value steps covering the data. */
START_TEST(test_nice_ticks) {
    plot_result r = run_two(NULL);
    double xt[64], yt[64];
    int nx = tick_labels(r.out, X_TICKS, xt, 64);
    int ny = tick_labels(r.out, Y_TICKS, yt, 64);
    ck_assert_int_eq(nx, 5);
    for (int i = 0; i < nx; i++)
        ck_assert(xt[i] == (double)(i + 1));
    ck_assert_int_ge(ny, 3);
    ck_assert_int_le(ny, 12);
    double step = yt[1] - yt[0];
    double k = floor(log10(step) + 1e-9), m = step / pow(10, k);
    ck_assert_msg(fabs(m - 1) < 1e-6 || fabs(m - 2) < 1e-6 || fabs(m - 5) < 1e-6, "step %g", step);
    for (int i = 1; i < ny; i++)
        ck_assert(fabs(yt[i] - yt[i - 1] - step) < step * 1e-6);
    ck_assert(yt[0] <= 0.8306 && yt[ny - 1] >= 0.9757);
    ck_assert(yt[ny - 1] <= 1.0 + 1e-12); /* accuracy axis stays within [0, 1] */
    ck_assert(yt[0] > 0.5);               /* ... but is not stretched to 0 */
    result_free(&r);
}
END_TEST

START_TEST(test_label_and_title_escaped) {
    const char *a = write_csv("esc_a.csv", csv_a);
    const char *b = write_csv("esc_b.csv", csv_b);
    plot_result r = run_plot(a, b, "-o", "-", "--label", "x<&>\"'y", "--label", "plain",
                             "--title", "A & B <C>", NULL);
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    const char *why = xml_check(r.out);
    ck_assert_msg(why == NULL, "not well-formed: %s", why);
    ck_assert(strstr(r.out, ">Train (x&lt;&amp;&gt;&quot;&apos;y)</text>"));
    ck_assert(strstr(r.out, ">Test (plain)</text>"));
    ck_assert(strstr(r.out, "x<&>") == NULL);
    ck_assert(strstr(r.out, ">A &amp; B &lt;C&gt;</text>"));
    ck_assert(strstr(r.out, "Training vs Test") == NULL);
    polyline_info pl[8];
    ck_assert_int_eq(find_polylines(r.out, pl, 8), 4);
    ck_assert_str_eq(pl[0].title, "Train (x&lt;&amp;&gt;&quot;&apos;y)");
    ck_assert_str_eq(pl[3].title, "Test (plain)");
    result_free(&r);
}
END_TEST

/* Control characters and invalid UTF-8 in labels still give well-formed XML. */
START_TEST(test_label_bad_bytes) {
    const char *a = write_csv("bad_a.csv", csv_a);
    plot_result r = run_plot(a, "-o", "-", "--label", "t\x01\xff\xc3\xa9\xed\xa0\x80", NULL);
    ck_assert_int_eq(r.rc, 0);
    ck_assert(xml_check(r.out) == NULL);
    ck_assert(strstr(r.out, "Train (t?\xEF\xBF\xBD\xC3\xA9\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD)"));
    result_free(&r);
}
END_TEST

START_TEST(test_deterministic_bytes) {
    plot_result r1 = run_two(NULL);
    plot_result r2 = run_two(NULL);
    ck_assert_uint_eq(r1.out_len, r2.out_len);
    ck_assert(memcmp(r1.out, r2.out, r1.out_len) == 0);
    result_free(&r1);
    result_free(&r2);
}
END_TEST

START_TEST(test_metric_loss) {
    plot_result r = run_two("loss");
    polyline_info pl[8];
    ck_assert_int_eq(find_polylines(r.out, pl, 8), 4);
    ck_assert(strstr(r.out, ">Loss</text>"));
    ck_assert(strstr(r.out, ">Accuracy</text>") == NULL);
    ck_assert(strstr(r.out, ">Training vs Test Loss</text>"));
    /* Train loss of run a falls 0.35 -> 0.08: drawn lower each epoch. */
    ck_assert_str_eq(pl[0].title, "Train (a)");
    for (int j = 1; j < 5; j++)
        ck_assert(pl[0].y[j] > pl[0].y[j - 1]);
    /* 0.55 (train b, epoch 1) is the highest value: smallest y of all. */
    for (int s = 0; s < 4; s++)
        for (int j = 0; j < 5; j++)
            ck_assert(pl[2].y[0] <= pl[s].y[j]);
    result_free(&r);
}
END_TEST

/* Loss needs no accuracy columns, and vice versa. */
START_TEST(test_metric_columns_independent) {
    const char *p = write_csv("lossonly.csv", "epoch,train_loss,test_loss\n1,2,3\n2,1,2\n");
    plot_result r = run_plot(p, "-o", "-", "--metric", "loss", NULL);
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    result_free(&r);
    r = run_plot(p, "-o", "-", NULL);
    ck_assert_int_eq(r.rc, 1);
    char want[1200];
    snprintf(want, sizeof want, "%s:1: error: missing column 'train_acc'\n", p);
    ck_assert_str_eq(r.err, want);
    result_free(&r);
}
END_TEST

START_TEST(test_metric_both) {
    plot_result r = run_two("both");
    polyline_info pl[16];
    ck_assert_int_eq(find_polylines(r.out, pl, 16), 8);
    ck_assert(strstr(r.out, "width=\"1200\" height=\"500\""));
    ck_assert(strstr(r.out, ">Accuracy</text>"));
    ck_assert(strstr(r.out, ">Loss</text>"));
    /* The loss panel lies to the right of the accuracy panel. */
    ck_assert(pl[4].x[0] > pl[3].x[4]);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(pl[i].dashed, i % 2 == 0);
    result_free(&r);
}
END_TEST

/* --metric lr: one solid line per run through the lr column (a falling lr
 * is drawn lower each epoch), a "Learning rate" axis; a file without the
 * column is an error naming it. */
START_TEST(test_metric_lr) {
    const char *a = write_csv("lra.csv", "epoch,train_acc,test_acc,lr\n1,0.5,0.5,0.01\n2,0.6,0.6,0.007\n"
                                         "3,0.7,0.7,0.0049\n");
    const char *b = write_csv("lrb.csv", "epoch,lr,seconds\n1,0.001,1\n2,0.001,1\n3,0.0005,1\n");
    plot_result r = run_plot(a, b, "-o", "-", "--metric", "lr", NULL);
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    const char *why = xml_check(r.out);
    ck_assert_msg(why == NULL, "not well-formed: %s", why);
    polyline_info pl[4];
    ck_assert_int_eq(find_polylines(r.out, pl, 4), 2);
    ck_assert_str_eq(pl[0].title, "Learning rate (lra)");
    ck_assert_str_eq(pl[1].title, "Learning rate (lrb)");
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(pl[i].dashed, 0);
        ck_assert_int_eq(pl[i].npts, 3);
    }
    for (int j = 1; j < 3; j++)
        ck_assert(pl[0].y[j] > pl[0].y[j - 1]);
    ck_assert(pl[1].y[0] > pl[0].y[2]); /* 0.001 below 0.0049 */
    ck_assert(strstr(r.out, ">Learning rate</text>"));
    ck_assert(strstr(r.out, ">Learning Rate</text>")); /* the default title */
    ck_assert(strstr(r.out, ">Accuracy</text>") == NULL);
    result_free(&r);
    const char *c = write_csv("nolr.csv", "epoch,train_acc,test_acc\n1,0.5,0.5\n");
    r = run_plot(c, "-o", "-", "--metric", "lr", NULL);
    ck_assert_int_eq(r.rc, 1);
    char want[1200];
    snprintf(want, sizeof want, "%s:1: error: missing column 'lr'\n", c);
    ck_assert_str_eq(r.err, want);
    result_free(&r);
}
END_TEST

/* A validation column adds a dotted line; unknown columns are ignored. */
START_TEST(test_validation_dotted) {
    const char *p = write_csv("val.csv", "epoch,train_acc,test_acc,val_acc,val_loss,lr,note\n"
                                         "1,0.5,0.4,0.45,1,0.1,x\n2,0.6,0.5,0.55,1,0.1,y\n");
    plot_result r = run_plot(p, "-o", "-", NULL);
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    polyline_info pl[8];
    ck_assert_int_eq(find_polylines(r.out, pl, 8), 3);
    ck_assert_str_eq(pl[0].title, "Train (val)");
    ck_assert_str_eq(pl[1].title, "Test (val)");
    ck_assert_str_eq(pl[2].title, "Validation (val)");
    ck_assert(pl[0].dashed && !pl[1].dashed && pl[2].dashed);
    ck_assert_str_ne(pl[0].dash, pl[2].dash);
    ck_assert_str_eq(pl[0].stroke, pl[2].stroke);
    ck_assert(strstr(r.out, ">Validation (val)</text>"));
    result_free(&r);
}
END_TEST

/* An all-empty test column gives no test line; gaps drop points. */
START_TEST(test_missing_values) {
    const char *p = write_csv("notest.csv", "epoch,train_acc,test_acc\n1,0.5,\n2,0.6,\n3,0.7,\n");
    const char *q = write_csv("gaps.csv", "epoch,train_acc,test_acc\n1,0.5,0.4\n2,,0.5\n3,0.7,\n");
    plot_result r = run_plot(p, q, "-o", "-", NULL);
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    polyline_info pl[8];
    ck_assert_int_eq(find_polylines(r.out, pl, 8), 3);
    ck_assert_str_eq(pl[0].title, "Train (notest)");
    ck_assert_int_eq(pl[0].npts, 3);
    ck_assert_str_eq(pl[1].title, "Train (gaps)");
    ck_assert_int_eq(pl[1].npts, 2);
    ck_assert_str_eq(pl[2].title, "Test (gaps)");
    ck_assert_int_eq(pl[2].npts, 2);
    ck_assert(strstr(r.out, "Test (notest)") == NULL);
    result_free(&r);
}
END_TEST

/* CRLF, no trailing newline, a BOM, blank lines, padding and reordered or
 * extra columns all give the same bytes as the plain file. */
START_TEST(test_line_endings_and_layout) {
    const char *plain = write_csv("plain.csv", "epoch,train_acc,test_acc\n1,0.5,0.4\n2,0.6,0.5\n");
    static const char *const variants[] = {
        "epoch,train_acc,test_acc\r\n1,0.5,0.4\r\n2,0.6,0.5\r\n",
        "epoch,train_acc,test_acc\r\n1,0.5,0.4\r\n2,0.6,0.5",
        "epoch,train_acc,test_acc\n1,0.5,0.4\n2,0.6,0.5",
        "\357\273\277epoch,train_acc,test_acc\n\n1,0.5,0.4\n\n2,0.6,0.5\n\n",
        "test_acc,extra,train_acc,epoch\n0.4,zz,0.5,1\n0.5,,0.6,2\n",
        " epoch , train_acc,test_acc \n 1 ,\t0.5,0.40\n2, 0.6 ,5e-1\n",
    };
    plot_result base = run_plot(plain, "-o", "-", "--label", "L", NULL);
    ck_assert_int_eq(base.rc, 0);
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        const char *v = write_csv("variant.csv", variants[i]);
        plot_result r = run_plot(v, "-o", "-", "--label", "L", NULL);
        ck_assert_msg(r.rc == 0, "variant %zu: %s", i, r.err);
        ck_assert_msg(r.out_len == base.out_len && memcmp(r.out, base.out, r.out_len) == 0,
                      "variant %zu differs", i);
        result_free(&r);
    }
    result_free(&base);
}
END_TEST

START_TEST(test_single_row_and_constant) {
    const char *p = write_csv("one.csv", "epoch,train_acc,test_acc\n7,1,1\n");
    plot_result r = run_plot(p, "-o", "-", NULL);
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    ck_assert(xml_check(r.out) == NULL);
    polyline_info pl[4];
    ck_assert_int_eq(find_polylines(r.out, pl, 4), 2);
    ck_assert_int_eq(pl[0].npts, 1);
    ck_assert(strstr(r.out, "nan") == NULL && strstr(r.out, "inf") == NULL);
    ck_assert(strstr(r.out, "<circle")); /* a lone point is still visible */
    result_free(&r);
}
END_TEST

START_TEST(test_help) {
    plot_result r = run_plot("--help", NULL);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_str_eq(r.out, usage_line);
    result_free(&r);
}
END_TEST

/* ---- output files -------------------------------------------------------------- */

START_TEST(test_output_file_matches_stdout) {
    const char *a = write_csv("fa.csv", csv_a);
    const char *out = tmp_path("out.svg");
    remove(out);
    plot_result r = run_plot(a, "-o", out, NULL);
    plot_result s = run_plot(a, "-o", "-", NULL);
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    ck_assert_uint_eq(r.out_len, 0); /* nothing on stdout */
    ck_assert_uint_eq(r.err_len, 0);
    size_t len;
    char *data = read_all(out, &len);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_eq(len, s.out_len);
    ck_assert(memcmp(data, s.out, len) == 0);
    free(data);
    result_free(&r);
    result_free(&s);
}
END_TEST

/* On any error an existing output file is left as it was. */
START_TEST(test_output_untouched_on_error) {
    const char *good = write_csv("ga.csv", csv_a);
    const char *bad = write_csv("bad.csv", "epoch,train_acc,test_acc\n1,0.5,abc\n");
    const char *out = tmp_path("keep.svg");
    write_bytes(out, "OLD CONTENT", 11);
    plot_result r = run_plot(good, bad, "-o", out, NULL);
    ck_assert_int_eq(r.rc, 1);
    ck_assert_uint_eq(r.out_len, 0);
    result_free(&r);
    r = run_plot(good, "-o", out, "--metric", "nope", NULL);
    ck_assert_int_eq(r.rc, 2);
    result_free(&r);
    r = run_plot(good, tmp_path("does-not-exist.csv"), "-o", out, NULL);
    ck_assert_int_eq(r.rc, 1);
    result_free(&r);
    size_t len;
    char *data = read_all(out, &len);
    ck_assert_ptr_nonnull(data);
    ck_assert_str_eq(data, "OLD CONTENT");
    free(data);
}
END_TEST

/* The chart is SVG: an output name that says otherwise (curves.png) is a
 * usage error before any input is read, and no file of that name appears;
 * .svg in any case, and - (stdout), are accepted. */
START_TEST(test_output_name_not_svg) {
    char a[1024]; /* tmp_path's buffers rotate */
    snprintf(a, sizeof a, "%s", write_csv("na.csv", csv_a));
    const char *bad[] = {"curves.png", "chart.pdf", "curves", "x.svg.png", "svg", "dir.svg/curves.jpg"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *out = tmp_path(bad[i]);
        remove(out);
        plot_result r = run_plot(a, "-o", out, NULL);
        char want[2048];
        snprintf(want, sizeof want,
                 "dngen plot: error: cannot write '%s': the chart is SVG, so the output name must end in .svg "
                 "(or be - for stdout)\n%s",
                 out, usage_line);
        ck_assert_int_eq(r.rc, 2);
        ck_assert_str_eq(r.err, want);
        ck_assert_uint_eq(r.out_len, 0);
        struct stat st;
        ck_assert_msg(stat(out, &st) != 0, "%s was created", out);
        result_free(&r);
    }
    /* an existing file of another type is left alone; the name is refused
     * before inputs are read (a missing input would be status 1) */
    const char *keep = tmp_path("keep.png");
    write_bytes(keep, "PNG", 3);
    plot_result r = run_plot(a, "-o", keep, NULL);
    ck_assert_int_eq(r.rc, 2);
    result_free(&r);
    r = run_plot(tmp_path("no-such-input.csv"), "-o", keep, NULL);
    ck_assert_int_eq(r.rc, 2);
    ck_assert_msg(strstr(r.err, "the chart is SVG") != NULL, "%s", r.err);
    result_free(&r);
    size_t len;
    char *data = read_all(keep, &len);
    ck_assert_ptr_nonnull(data);
    ck_assert_str_eq(data, "PNG");
    free(data);
    const char *good[] = {"upper.SVG", "mixed.Svg", "plain.svg"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *out = tmp_path(good[i]);
        remove(out);
        r = run_plot(a, "-o", out, NULL);
        ck_assert_msg(r.rc == 0, "%s: %s", good[i], r.err);
        data = read_all(out, &len);
        ck_assert_ptr_nonnull(data);
        ck_assert(strstr(data, "<svg") != NULL);
        free(data);
        result_free(&r);
    }
}
END_TEST

START_TEST(test_output_unwritable) {
    const char *a = write_csv("ua.csv", csv_a);
    const char *out = tmp_path("no-such-dir/out.svg");
    plot_result r = run_plot(a, "-o", out, NULL);
    ck_assert_int_eq(r.rc, 2);
    ck_assert_msg(strncmp(r.err, "dngen plot: error: ", 19) == 0, "got: %s", r.err);
    ck_assert(strstr(r.err, out));
    ck_assert_int_eq((int)(strchr(r.err, '\n') - r.err), (int)r.err_len - 1); /* one line */
    result_free(&r);
}
END_TEST

/* ---- input errors ------------------------------------------------------------ */

typedef struct {
    const char *csv;    /* file content */
    const char *metric; /* --metric value or NULL */
    const char *msg;    /* expected stderr after "PATH" */
} error_case;

static const error_case error_cases[] = {
    {"", NULL, ": error: empty file\n"},
    {"\r\n  \n", NULL, ": error: empty file\n"},
    {"epoch,step,train_loss,train_acc,test_loss,seconds\n1,1,1,1,1,1\n", NULL,
     ":1: error: missing column 'test_acc'\n"},
    {"epoch,step,train_loss,train_acc,test_acc,seconds\n1,1,1,1,1,1\n", "loss",
     ":1: error: missing column 'test_loss'\n"},
    {"epoch,train_acc,test_acc,train_loss\n1,1,1,1\n", "both",
     ":1: error: missing column 'test_loss'\n"},
    {"step,train_acc,test_acc\n1,1,1\n", NULL, ":1: error: missing column 'epoch'\n"},
    {"epoch,train_acc,test_acc,train_acc\n", NULL, ":1:26: error: duplicate column 'train_acc'\n"},
    {"epoch,train_acc,test_acc\n", NULL, ": error: no data rows\n"},
    {"epoch,train_acc,test_acc\n1,0.5,0.5\n2,0.6\n", NULL,
     ":3: error: expected 3 fields (as in the header), got 2\n"},
    {"epoch,train_acc,test_acc\n1,0.5,0.5,9\n", NULL,
     ":2: error: expected 3 fields (as in the header), got 4\n"},
    {"epoch,train_acc,test_acc\n1,0.5,0.5\n2,0.6,0.6\n3,abc,0.7\n", NULL,
     ":4:3: error: expected a number in column 'train_acc', got 'abc'\n"},
    {"epoch,train_acc,test_acc\n1,0.5,0,5\n", NULL,
     ":2: error: expected 3 fields (as in the header), got 4\n"},
    {"epoch,train_acc,test_acc\n1,0x1p3,0.5\n", NULL,
     ":2:3: error: expected a number in column 'train_acc', got '0x1p3'\n"},
    {"epoch,train_acc,test_acc\n1,0.5,NaN\n", NULL,
     ":2:7: error: non-finite value 'NaN' in column 'test_acc'\n"},
    {"epoch,train_acc,test_acc\n1,-inf,0.5\n", NULL,
     ":2:3: error: non-finite value '-inf' in column 'train_acc'\n"},
    {"epoch,train_acc,test_acc\n1,1e999,0.5\n", NULL,
     ":2:3: error: value '1e999' out of range in column 'train_acc'\n"},
    {"epoch,train_acc,test_acc\n1,0.5,0.5\n2,0.6,0.6\n2,0.7,0.7\n", NULL,
     ":4:1: error: epoch 2 is not greater than the previous epoch 2\n"},
    {"epoch,train_acc,test_acc\n3,0.5,0.5\n1,0.6,0.6\n", NULL,
     ":3:1: error: epoch 1 is not greater than the previous epoch 3\n"},
    {"epoch,train_acc,test_acc\n1,0.5,0.5\n,0.6,0.6\n", NULL,
     ":3:1: error: missing value in column 'epoch'\n"},
    {"epoch,train_acc,test_acc\n1,0.5,'quoted'\n", NULL,
     ":2:7: error: expected a number in column 'test_acc', got '?quoted?'\n"},
    {"epoch,train_acc,test_acc\n1,0.5,0123456789012345678901234567890123456789x\n", NULL,
     ":2:7: error: expected a number in column 'test_acc', got "
     "'01234567890123456789012345678901...'\n"},
};

START_TEST(test_input_error_messages) {
    const error_case *c = &error_cases[_i];
    const char *p = write_csv("err.csv", c->csv);
    plot_result r = c->metric ? run_plot(p, "-o", "-", "--metric", c->metric, NULL)
                              : run_plot(p, "-o", "-", NULL);
    char want[2048];
    snprintf(want, sizeof want, "%s%s", p, c->msg);
    ck_assert_int_eq(r.rc, 1);
    ck_assert_str_eq(r.err, want);
    ck_assert_uint_eq(r.out_len, 0);
    result_free(&r);
}
END_TEST

START_TEST(test_unreadable_inputs) {
    const char *missing = tmp_path("missing.csv");
    remove(missing);
    plot_result r = run_plot(missing, "-o", "-", NULL);
    char want[2048];
    snprintf(want, sizeof want, "%s: error: cannot open: %s\n", missing, strerror(ENOENT));
    ck_assert_int_eq(r.rc, 1);
    ck_assert_str_eq(r.err, want);
    result_free(&r);
    const char *dir = tmp_path("a-directory");
    mkdir(dir, 0777);
    r = run_plot(dir, "-o", "-", NULL);
    ck_assert_int_eq(r.rc, 1);
    snprintf(want, sizeof want, "%s: error: cannot read: %s\n", dir, strerror(EISDIR));
    ck_assert_str_eq(r.err, want);
    result_free(&r);
}
END_TEST

START_TEST(test_size_limits) {
    /* One byte over the size cap. */
    size_t big = DNGEN_PLOT_MAX_BYTES + 1;
    char *data = malloc(big);
    ck_assert_ptr_nonnull(data);
    memset(data, '\n', big);
    const char *p = tmp_path("big.csv");
    write_bytes(p, data, big);
    plot_result r = run_plot(p, "-o", "-", NULL);
    char want[2048];
    snprintf(want, sizeof want, "%s: error: file is larger than 16777216 bytes\n", p);
    ck_assert_int_eq(r.rc, 1);
    ck_assert_str_eq(r.err, want);
    result_free(&r);
    /* Exactly at the cap is fine for the reader (here: blank, so "empty"). */
    write_bytes(p, data, big - 1);
    r = run_plot(p, "-o", "-", NULL);
    snprintf(want, sizeof want, "%s: error: empty file\n", p);
    ck_assert_str_eq(r.err, want);
    result_free(&r);
    /* One row over the row cap. */
    size_t pos = (size_t)sprintf(data, "epoch,train_acc,test_acc\n");
    for (int i = 1; i <= DNGEN_PLOT_MAX_ROWS + 1; i++)
        pos += (size_t)sprintf(data + pos, "%d,0.5,0.5\n", i);
    write_bytes(p, data, pos);
    r = run_plot(p, "-o", "-", NULL);
    snprintf(want, sizeof want, "%s:100002: error: more than 100000 data rows\n", p);
    ck_assert_int_eq(r.rc, 1);
    ck_assert_str_eq(r.err, want);
    result_free(&r);
    /* Exactly at the row cap works (the chart just has many points). */
    pos -= strlen("100001,0.5,0.5\n");
    write_bytes(p, data, pos);
    r = run_plot(p, "-o", "-", NULL);
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    result_free(&r);
    free(data);
}
END_TEST

/* ---- usage errors ------------------------------------------------------------ */

typedef struct {
    const char *args[8];
    const char *msg; /* first line of stderr */
} usage_case;

static const usage_case usage_cases[] = {
    {{"-o", "-", NULL}, "dngen plot: error: no input files\n"},
    {{"A", NULL}, "dngen plot: error: no output file (use -o OUT.svg, or -o - for stdout)\n"},
    {{"A", "-o", "-", "--colour", "red", NULL}, "dngen plot: error: unknown option '--colour'\n"},
    {{"A", "-o", "-", "-x", NULL}, "dngen plot: error: unknown option '-x'\n"},
    {{"A", "B", "-o", "-", "--label", "one", NULL},
     "dngen plot: error: 1 --label value(s) for 2 input file(s)\n"},
    {{"A", "-o", "-", "--label", "1", "--label", "2", NULL},
     "dngen plot: error: 2 --label value(s) for 1 input file(s)\n"},
    {{"A", "-o", "-", "--metric", "f1", NULL},
     "dngen plot: error: unknown metric 'f1' (expected acc, loss, both or lr)\n"},
    {{"A", "-o", NULL}, "dngen plot: error: option '-o' needs a value\n"},
    {{"A", "-o", "x", "--output=y", NULL}, "dngen plot: error: option '-o' given more than once\n"},
    {{"A", "-o", "-", "--title", NULL}, "dngen plot: error: option '--title' needs a value\n"},
};

START_TEST(test_usage_errors) {
    const usage_case *c = &usage_cases[_i];
    const char *a = write_csv("ua2.csv", csv_a);
    const char *args[8];
    for (int i = 0; i < 8; i++)
        args[i] = c->args[i] && strcmp(c->args[i], "A") == 0 ? a
                  : c->args[i] && strcmp(c->args[i], "B") == 0 ? a
                                                               : c->args[i];
    plot_result r = run_plot(args[0], args[1], args[2], args[3], args[4], args[5], args[6],
                             args[7], NULL);
    char want[1024];
    snprintf(want, sizeof want, "%s%s", c->msg, usage_line);
    ck_assert_int_eq(r.rc, 2);
    ck_assert_str_eq(r.err, want);
    ck_assert_uint_eq(r.out_len, 0);
    result_free(&r);
}
END_TEST

/* `--opt=value` forms and `--` before inputs. */
START_TEST(test_option_forms) {
    const char *a = write_csv("of.csv", csv_a);
    plot_result r = run_plot("--metric=loss", "--title=T", "--label=L", "-o", "-", "--", a, NULL);
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    ck_assert(strstr(r.out, ">T</text>"));
    ck_assert(strstr(r.out, ">Train (L)</text>"));
    ck_assert(strstr(r.out, ">Loss</text>"));
    result_free(&r);
}
END_TEST

/* ---- the reader and renderer APIs directly --------------------------------------- */

static const unsigned ACC_MASK =
    DNGEN_PLOT_BIT(DNGEN_PLOT_TRAIN_ACC) | DNGEN_PLOT_BIT(DNGEN_PLOT_TEST_ACC);

/* A regression run's metrics file: RMSE in place of accuracy. */
START_TEST(test_regression_rmse) {
    static const char csv[] =
        "epoch,step,train_loss,train_rmse,test_loss,test_rmse,seconds,val_loss,val_rmse,test_mae,test_r2,val_mae,val_r2\n"
        "1,10,4,2,9,3,0.1,,,2.5,0.1,,\n2,20,1,1,4,2,0.1,,,1.5,0.5,,\n";
    dngen_plot_metrics m, a;
    char err[256];
    ck_assert_int_eq(dngen_plot_csv_parse("r.csv", csv, sizeof csv - 1, ACC_MASK, ACC_MASK, &m, err, sizeof err), 0);
    ck_assert_int_eq(m.rmse, 1);
    ck_assert_double_eq(m.col[DNGEN_PLOT_TEST_ACC][1], 2);
    dngen_plot_run run = {"reg", &m};
    char *svg = NULL;
    size_t len = 0;
    ck_assert_int_eq(dngen_plot_render(&run, 1, DNGEN_PLOT_METRIC_BOTH, NULL, &svg, &len, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(svg, ">RMSE</text>"));
    ck_assert_ptr_nonnull(strstr(svg, "Training vs Test RMSE and Loss"));
    free(svg);
    static const char acc[] = "epoch,train_acc,test_acc\n1,0.5,0.6\n";
    ck_assert_int_eq(dngen_plot_csv_parse("a.csv", acc, sizeof acc - 1, ACC_MASK, ACC_MASK, &a, err, sizeof err), 0);
    dngen_plot_run two[2] = {{"reg", &m}, {"cls", &a}};
    ck_assert_int_eq(dngen_plot_render(two, 2, DNGEN_PLOT_METRIC_ACC, NULL, &svg, &len, err, sizeof err), -1);
    ck_assert_str_eq(err, "error: the runs mix accuracy and RMSE (classification and regression)");
    dngen_plot_metrics_free(&a);
    static const char mixed[] = "epoch,train_acc,test_rmse\n1,0.5,0.6\n";
    ck_assert_int_eq(dngen_plot_csv_parse("x.csv", mixed, sizeof mixed - 1, ACC_MASK, 0, &a, err, sizeof err), -1);
    ck_assert_str_eq(err, "x.csv:1:17: error: both accuracy and RMSE columns");
    dngen_plot_metrics_free(&m);
}
END_TEST

START_TEST(test_parse_values) {
    static const char csv[] = "epoch,seconds,train_acc,test_acc,val_acc\n"
                              "1,junk,0.25,,1e-3\n"
                              "2.5,,-0.5,+.5,3.\n";
    dngen_plot_metrics m;
    char err[256];
    int rc = dngen_plot_csv_parse("m.csv", csv, strlen(csv), ACC_MASK, ACC_MASK, &m, err,
                                  sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_uint_eq(m.n, 2);
    ck_assert(m.epoch[0] == 1.0 && m.epoch[1] == 2.5);
    ck_assert(m.col[DNGEN_PLOT_TRAIN_ACC][0] == 0.25 && m.col[DNGEN_PLOT_TRAIN_ACC][1] == -0.5);
    ck_assert(isnan(m.col[DNGEN_PLOT_TEST_ACC][0]) && m.col[DNGEN_PLOT_TEST_ACC][1] == 0.5);
    ck_assert_ptr_null(m.col[DNGEN_PLOT_VAL_ACC]);   /* not wanted */
    ck_assert_ptr_null(m.col[DNGEN_PLOT_TRAIN_LOSS]); /* absent */
    dngen_plot_metrics_free(&m);
    dngen_plot_metrics_free(&m); /* idempotent */
    rc = dngen_plot_csv_parse("m.csv", csv, strlen(csv),
                              ACC_MASK | DNGEN_PLOT_BIT(DNGEN_PLOT_VAL_ACC), ACC_MASK, &m, err,
                              sizeof err);
    ck_assert_int_eq(rc, 0);
    ck_assert(m.col[DNGEN_PLOT_VAL_ACC][0] == 1e-3 && m.col[DNGEN_PLOT_VAL_ACC][1] == 3.0);
    dngen_plot_metrics_free(&m);
}
END_TEST

/* NUL bytes are data, not terminators; messages stay printable. */
START_TEST(test_parse_nul_bytes) {
    static const char csv[] = "epoch,train_acc,test_acc\n1,0.5\0x,0.5\n";
    dngen_plot_metrics m;
    char err[256];
    int rc = dngen_plot_csv_parse("n.csv", csv, sizeof csv - 1, ACC_MASK, ACC_MASK, &m, err,
                                  sizeof err);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(err, "n.csv:2:3: error: expected a number in column 'train_acc', got "
                          "'0.5?x'");
    ck_assert_uint_eq(m.n, 0);
    ck_assert_ptr_null(m.epoch);
    /* A tiny err buffer is truncated, not overrun. */
    char small[8];
    rc = dngen_plot_csv_parse("n.csv", csv, sizeof csv - 1, ACC_MASK, ACC_MASK, &m, small,
                              sizeof small);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(small, "n.csv:2");
}
END_TEST

START_TEST(test_parse_oversized_buffer) {
    size_t big = DNGEN_PLOT_MAX_BYTES + 1;
    char *data = calloc(big, 1);
    ck_assert_ptr_nonnull(data);
    dngen_plot_metrics m;
    char err[256];
    ck_assert_int_eq(dngen_plot_csv_parse("b", data, big, ACC_MASK, ACC_MASK, &m, err, sizeof err),
                     -1);
    ck_assert_str_eq(err, "b: error: file is larger than 16777216 bytes");
    free(data);
}
END_TEST

/* Values whose range does not fit in a double are refused, not drawn as NaN. */
START_TEST(test_render_extreme_ranges) {
    static const char *const csvs[] = {
        "epoch,train_acc,test_acc\n1,-1e308,1e308\n",
        "epoch,train_acc,test_acc\n-1e308,0,0\n1e308,1,1\n",
    };
    for (int i = 0; i < 2; i++) {
        dngen_plot_metrics m;
        char err[256];
        ck_assert_int_eq(dngen_plot_csv_parse("x", csvs[i], strlen(csvs[i]), ACC_MASK, ACC_MASK,
                                              &m, err, sizeof err),
                         0);
        dngen_plot_run run = {"x", &m};
        char *svg = NULL;
        size_t len = 7;
        ck_assert_int_eq(dngen_plot_render(&run, 1, DNGEN_PLOT_METRIC_ACC, NULL, &svg, &len, err,
                                           sizeof err),
                         -1);
        ck_assert_str_eq(err, "error: the values span too large a range to plot");
        ck_assert_ptr_null(svg);
        ck_assert_uint_eq(len, 0);
        dngen_plot_metrics_free(&m);
    }
    /* Large but representable, and tiny: fine, no nan/inf in the output. */
    static const char *const ok[] = {
        "epoch,train_acc,test_acc\n1,1e300,2e300\n1e15,1e300,1e300\n",
        "epoch,train_acc,test_acc\n1,1e-300,2e-300\n2,0,5e-324\n",
        "epoch,train_acc,test_acc\n1,-5,-5\n2,-5,-5\n",
    };
    for (int i = 0; i < 3; i++) {
        dngen_plot_metrics m;
        char err[256];
        ck_assert_int_eq(dngen_plot_csv_parse("x", ok[i], strlen(ok[i]), ACC_MASK, ACC_MASK, &m,
                                              err, sizeof err),
                         0);
        dngen_plot_run run = {"x", &m};
        char *svg = NULL;
        size_t len = 0;
        ck_assert_msg(dngen_plot_render(&run, 1, DNGEN_PLOT_METRIC_ACC, NULL, &svg, &len, err,
                                        sizeof err) == 0,
                      "case %d: %s", i, err);
        ck_assert(xml_check(svg) == NULL);
        ck_assert_msg(strstr(svg, "nan") == NULL && strstr(svg, "inf") == NULL, "case %d", i);
        ck_assert_uint_eq(strlen(svg), len);
        free(svg);
        dngen_plot_metrics_free(&m);
    }
}
END_TEST

/* More runs than palette colours: colours cycle, every series still drawn. */
START_TEST(test_many_runs) {
    const char *p = write_csv("many.csv", csv_a);
    plot_result r = run_plot(p, p, p, p, p, p, p, p, p, p, "-o", "-", NULL);
    ck_assert_int_eq(r.rc, 0);
    polyline_info pl[24];
    ck_assert_int_eq(find_polylines(r.out, pl, 24), 20);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(pl[2 * i].stroke, pl[2 * j].stroke);
    ck_assert(xml_check(r.out) == NULL);
    result_free(&r);
}
END_TEST

/* Replays the fuzz seed corpus (and any crash reproducers added to it) through
 * the reader under every column selection, checking the reader's contract. */
START_TEST(test_fuzz_corpus_replay) {
#ifdef DNGEN_SOURCE_DIR
    static const unsigned masks[3][2] = {{ACC_MASK, ACC_MASK}, {0x3f, 0}, {0x3f, 0x0f}};
    DIR *d = opendir(DNGEN_SOURCE_DIR "/tests/fuzz/corpus/csv");
    ck_assert_ptr_nonnull(d);
    int files = 0;
    for (struct dirent *e = readdir(d); e; e = readdir(d)) {
        if (e->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/tests/fuzz/corpus/csv/%s", DNGEN_SOURCE_DIR, e->d_name);
        size_t len;
        char *data = read_all(path, &len);
        ck_assert_ptr_nonnull(data);
        for (int k = 0; k < 3; k++) {
            dngen_plot_metrics m;
            char err[512];
            int rc = dngen_plot_csv_parse(e->d_name, data, len, masks[k][0], masks[k][1], &m, err,
                                          sizeof err);
            if (rc == 0) {
                ck_assert_uint_ge(m.n, 1);
                for (size_t i = 1; i < m.n; i++)
                    ck_assert(m.epoch[i] > m.epoch[i - 1]);
            } else {
                ck_assert_int_eq(rc, -1);
                ck_assert_msg(err[0] && !strchr(err, '\n'), "%s: bad message", e->d_name);
                ck_assert_ptr_null(m.epoch);
            }
            dngen_plot_metrics_free(&m);
        }
        free(data);
        files++;
    }
    closedir(d);
    ck_assert_int_ge(files, 5);
#endif
}
END_TEST

/* The checker itself must reject what it is meant to catch. */
START_TEST(test_xml_checker) {
    ck_assert(xml_check("<a><b x=\"1\"/>t &amp; u</a>") == NULL);
    ck_assert(xml_check("<a><b></a></b>") != NULL);
    ck_assert(xml_check("<a x=1/>") != NULL);
    ck_assert(xml_check("<a>x & y</a>") != NULL);
    ck_assert(xml_check("<a>x < y</a>") != NULL);
    ck_assert(xml_check("<a>x > y</a>") != NULL);
    ck_assert(xml_check("<a x=\"<\"/>") != NULL);
    ck_assert(xml_check("<a/><b/>") != NULL);
    ck_assert(xml_check("<a>") != NULL);
}
END_TEST

static Suite *plot_suite(void) {
    Suite *s = suite_create("check_plot");
    TCase *tc = tcase_create("chart");
    tcase_add_test(tc, test_two_runs_structure);
    tcase_add_test(tc, test_regression_rmse);
    tcase_add_test(tc, test_higher_value_drawn_higher);
    tcase_add_test(tc, test_nice_ticks);
    tcase_add_test(tc, test_label_and_title_escaped);
    tcase_add_test(tc, test_label_bad_bytes);
    tcase_add_test(tc, test_deterministic_bytes);
    tcase_add_test(tc, test_metric_loss);
    tcase_add_test(tc, test_metric_columns_independent);
    tcase_add_test(tc, test_metric_both);
    tcase_add_test(tc, test_metric_lr);
    tcase_add_test(tc, test_validation_dotted);
    tcase_add_test(tc, test_missing_values);
    tcase_add_test(tc, test_line_endings_and_layout);
    tcase_add_test(tc, test_single_row_and_constant);
    tcase_add_test(tc, test_many_runs);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_xml_checker);
    suite_add_tcase(s, tc);

    tc = tcase_create("output");
    tcase_add_test(tc, test_output_file_matches_stdout);
    tcase_add_test(tc, test_output_untouched_on_error);
    tcase_add_test(tc, test_output_unwritable);
    tcase_add_test(tc, test_output_name_not_svg);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_input_error_messages, 0,
                        (int)(sizeof error_cases / sizeof error_cases[0]));
    tcase_add_test(tc, test_unreadable_inputs);
    tcase_add_test(tc, test_size_limits);
    tcase_add_loop_test(tc, test_usage_errors, 0,
                        (int)(sizeof usage_cases / sizeof usage_cases[0]));
    tcase_add_test(tc, test_option_forms);
    suite_add_tcase(s, tc);

    tc = tcase_create("api");
    tcase_add_test(tc, test_parse_values);
    tcase_add_test(tc, test_parse_nul_bytes);
    tcase_add_test(tc, test_parse_oversized_buffer);
    tcase_add_test(tc, test_render_extreme_ranges);
    tcase_add_test(tc, test_fuzz_corpus_replay);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    if (mkdir(DNGEN_TEST_TMP "/plot", 0777) != 0 && errno != EEXIST) {
        perror(DNGEN_TEST_TMP "/plot");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(plot_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
