/* plot.c - `dngen plot`: the command line, file input, and the SVG writer.
 *
 * The chart follows the matplotlib figure in the dropout article the project
 * started from: accuracy (or loss) per epoch, train dashed and test solid
 * (or the learning rate per epoch, one solid line per run),
 * one colour per run, labeled axes, title, legend and grid. The SVG is built
 * in memory and written in one go (atomically for files), so an error never
 * leaves a partial chart behind. Output bytes depend only on the inputs. */
#include "plot.h"

#include "dn_runtime.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define PLOT_ERR_MAX 1024

/* ---- growable output buffer ---------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    int failed; /* an allocation failed; further output is dropped */
} svg_buf;

/* Makes room for `extra` more bytes plus a NUL. Returns 0, or -1 (and sets
 * b->failed) when memory runs out. */
static int buf_reserve(svg_buf *b, size_t extra) {
    if (b->failed)
        return -1;
    if (extra < b->cap - b->len)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len <= extra) {
        if (cap > ((size_t)-1) / 2) {
            b->failed = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Appends n raw bytes. */
static void buf_put(svg_buf *b, const char *s, size_t n) {
    if (buf_reserve(b, n) != 0)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Appends printf-formatted text (trusted: callers format numbers and fixed markup). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static void buf_printf(svg_buf *b, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
    } else if (buf_reserve(b, (size_t)n) == 0) {
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

/* Length of the well-formed UTF-8 sequence at s that is a legal XML character
 * (not U+FFFE/U+FFFF), or 0 if s starts an invalid one. s is NUL-terminated
 * and *s >= 0x80. */
static size_t utf8_seq_len(const unsigned char *s) {
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F; /* no surrogates */
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    if (c == 0xEF && s[1] == 0xBF && (s[2] == 0xBE || s[2] == 0xBF))
        return 0;
    return n;
}

/* Appends user text s XML-escaped (& < > " '), with control characters
 * replaced by '?' and invalid UTF-8 by U+FFFD. Returns the number of
 * characters (code points) appended, for width estimates. */
static size_t buf_text(svg_buf *b, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t chars = 0;
    while (*p) {
        size_t n = 1;
        switch (*p) {
        case '&': buf_put(b, "&amp;", 5); break;
        case '<': buf_put(b, "&lt;", 4); break;
        case '>': buf_put(b, "&gt;", 4); break;
        case '"': buf_put(b, "&quot;", 6); break;
        case '\'': buf_put(b, "&apos;", 6); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                buf_put(b, "?", 1);
            } else if (*p < 0x80) {
                buf_put(b, (const char *)p, 1);
            } else if ((n = utf8_seq_len(p)) > 0) {
                buf_put(b, (const char *)p, n);
            } else {
                n = 1;
                buf_put(b, "\xEF\xBF\xBD", 3);
            }
        }
        p += n;
        chars++;
    }
    return chars;
}

/* Number of characters buf_text would append for s. */
static size_t text_chars(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t chars = 0;
    while (*p) {
        size_t n = *p >= 0x80 ? utf8_seq_len(p) : 1;
        p += n ? n : 1;
        chars++;
    }
    return chars;
}

/* Formats a pixel coordinate with two decimals into buf (>= 32 bytes),
 * never as "-0.00". */
static const char *fmt_px(double v, char *buf) {
    double r = round(v * 100.0) / 100.0;
    if (r == 0.0)
        r = 0.0;
    snprintf(buf, 32, "%.2f", r);
    return buf;
}

/* ---- axes ------------------------------------------------------------------ */

typedef struct {
    double lo, hi;   /* axis range */
    double step;     /* tick spacing */
    double first;    /* tick index of the first tick: ticks are (first+i)*step */
    int nticks;      /* 0..PLOT_MAX_TICKS */
    int decimals;    /* for %.*f tick labels; -1 means use %g */
} plot_axis;

#define PLOT_MAX_TICKS 40

/* The smallest 1, 2 or 5 x 10^k that is >= raw (raw > 0, finite). */
static double nice_step(double raw) {
    double k = floor(log10(raw));
    double base = pow(10.0, k);
    double f = raw / base;
    double m = f <= 1.0 + 1e-9 ? 1.0 : f <= 2.0 + 1e-9 ? 2.0 : f <= 5.0 + 1e-9 ? 5.0 : 10.0;
    return m * base;
}

/* Chooses ticks at multiples of a->step inside [a->lo, a->hi] and a label
 * format. Returns 0, or -1 if the numbers are not representable. */
static int axis_ticks(plot_axis *a) {
    double i0 = ceil(a->lo / a->step - 1e-9);
    double i1 = floor(a->hi / a->step + 1e-9);
    if (!isfinite(i0) || !isfinite(i1))
        return -1;
    double count = i1 - i0 + 1.0;
    a->first = i0;
    a->nticks = count < 0 ? 0 : count > PLOT_MAX_TICKS ? PLOT_MAX_TICKS : (int)count;
    double mag = fmax(fabs(a->lo), fabs(a->hi));
    if (a->step >= 1.0 && mag < 1e15)
        a->decimals = 0;
    else if (a->step >= 1e-6 && mag < 1e15)
        a->decimals = (int)ceil(-log10(a->step) - 1e-9);
    else
        a->decimals = -1;
    return 0;
}

/* Value axis over data [dmin, dmax] (dmin <= dmax; both finite): padded by
 * 5%, extended to multiples of a 1-2-5 step (about 6 intervals), kept
 * non-negative when the data are, and accuracy inside [0, 1] when the data are. Returns 0, or -1 if the range is not representable. */
static int axis_values(double dmin, double dmax, int is_acc, plot_axis *a) {
    double span = dmax - dmin;
    double mag = fmax(fabs(dmin), fabs(dmax));
    if (!isfinite(span))
        return -1;
    double lo, hi;
    if (span <= fmax(mag * 1e-6, 1e-100)) { /* constant, near enough */
        double half = fmax(mag * 0.05, 1e-100);
        double mid = dmin + span / 2.0;
        lo = mid - half;
        hi = mid + half;
    } else {
        lo = dmin - span * 0.05;
        hi = dmax + span * 0.05;
    }
    if (dmin >= 0.0 && lo < 0.0) /* accuracy and loss are never negative */
        lo = 0.0;
    if (is_acc && dmax <= 1.0 && hi > 1.0)
        hi = 1.0;
    if (!isfinite(lo) || !isfinite(hi) || !isfinite(hi - lo) || !(hi > lo))
        return -1;
    a->step = nice_step((hi - lo) / 6.0);
    a->lo = floor(lo / a->step) * a->step;
    a->hi = ceil(hi / a->step) * a->step;
    if (!isfinite(a->step) || !(a->step > 0.0) || !isfinite(a->lo) || !isfinite(a->hi) ||
        !isfinite(a->hi - a->lo) || !(a->hi > a->lo))
        return -1;
    return axis_ticks(a);
}

/* Epoch axis over [xmin, xmax]: 5% margins, integer ticks (step >= 1).
 * Returns 0, or -1 if the range is not representable. */
static int axis_epochs(double xmin, double xmax, plot_axis *a) {
    double span = xmax - xmin;
    if (!isfinite(span))
        return -1;
    double pad = span > 0.0 ? span * 0.05 : fmax(1.0, fabs(xmin) * 1e-6);
    a->lo = xmin - pad;
    a->hi = xmax + pad;
    if (!isfinite(a->lo) || !isfinite(a->hi) || !isfinite(a->hi - a->lo) || !(a->hi > a->lo))
        return -1;
    a->step = fmax(1.0, nice_step((a->hi - a->lo) / 8.0));
    if (!isfinite(a->step))
        return -1;
    return axis_ticks(a);
}

/* Formats tick number i of axis a into buf (>= 64 bytes). */
static const char *fmt_tick(const plot_axis *a, int i, char *buf) {
    double v = (a->first + i) * a->step;
    if (fabs(v) < a->step * 1e-6)
        v = 0.0;
    if (a->decimals >= 0)
        snprintf(buf, 64, "%.*f", a->decimals, v);
    else
        snprintf(buf, 64, "%.6g", v);
    return buf;
}

/* ---- chart model ---------------------------------------------------------- */

#define SVG_HEIGHT 500.0
#define PANEL_WIDTH_SINGLE 800.0
#define PANEL_WIDTH_BOTH 600.0

static const char *const plot_palette[] = {
    "#1f77b4", "#2ca02c", "#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
};
#define PLOT_PALETTE_N (sizeof plot_palette / sizeof plot_palette[0])

/* The three series kinds drawn per run in a panel. */
typedef struct {
    const char *name;  /* legend prefix */
    const char *dash;  /* stroke-dasharray, or NULL for solid */
} series_style;

static const series_style plot_styles[3] = {
    {"Train", "6,4"},
    {"Test", NULL},
    {"Validation", "2,3"},
};

/* The learning-rate panel's one series kind. */
static const series_style lr_styles[3] = {
    {"Learning rate", NULL},
    {"", NULL},
    {"", NULL},
};

/* One panel: which metric, and where it sits. */
typedef struct {
    int is_acc;
    int is_lr;            /* the learning rate (one series per run) */
    int rmse;             /* the accuracy panel shows regression runs' RMSE */
    int cols[3];          /* train, test, validation column ids; -1: none */
    const series_style *styles; /* their legend names and dashes */
    double left, right;   /* plot area, pixels */
    double top, bottom;
    plot_axis x, y;
} plot_panel;

/* Sets up panel geometry for a panel of `metric` (DNGEN_PLOT_METRIC_ACC,
 * _LOSS or _LR) starting at x0 with width w. */
static void panel_init(plot_panel *p, int metric, double x0, double w) {
    int is_acc = metric == DNGEN_PLOT_METRIC_ACC;
    p->is_acc = is_acc;
    p->is_lr = metric == DNGEN_PLOT_METRIC_LR;
    p->styles = p->is_lr ? lr_styles : plot_styles;
    p->cols[0] = p->is_lr ? DNGEN_PLOT_LR : is_acc ? DNGEN_PLOT_TRAIN_ACC : DNGEN_PLOT_TRAIN_LOSS;
    p->cols[1] = p->is_lr ? -1 : is_acc ? DNGEN_PLOT_TEST_ACC : DNGEN_PLOT_TEST_LOSS;
    p->cols[2] = p->is_lr ? -1 : is_acc ? DNGEN_PLOT_VAL_ACC : DNGEN_PLOT_VAL_LOSS;
    p->left = x0 + 76.0;
    p->right = x0 + w - 24.0;
    p->top = 56.0;
    p->bottom = SVG_HEIGHT - 64.0;
}

/* Number of present (non-NaN) values of column c in m (0 if absent or c < 0). */
static size_t series_points(const dngen_plot_metrics *m, int c) {
    size_t k = 0;
    if (c < 0 || !m->col[c])
        return 0;
    for (size_t i = 0; i < m->n; i++)
        k += !isnan(m->col[c][i]);
    return k;
}

/* Computes both axes of panel p from the runs. With no values at all the
 * value axis spans [0, 1]. Returns 0 or -1 (range not representable). */
static int panel_axes(plot_panel *p, const dngen_plot_run *runs, size_t n) {
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (size_t r = 0; r < n; r++) {
        const dngen_plot_metrics *m = runs[r].m;
        if (m->n == 0)
            continue;
        xmin = fmin(xmin, m->epoch[0]);
        xmax = fmax(xmax, m->epoch[m->n - 1]);
        for (int s = 0; s < 3; s++) {
            const double *v = p->cols[s] >= 0 ? m->col[p->cols[s]] : NULL;
            for (size_t i = 0; v && i < m->n; i++) {
                if (!isnan(v[i])) {
                    ymin = fmin(ymin, v[i]);
                    ymax = fmax(ymax, v[i]);
                }
            }
        }
    }
    if (xmin > xmax)
        xmin = xmax = 1.0;
    if (ymin > ymax) {
        ymin = 0.0;
        ymax = 1.0;
    }
    if (axis_epochs(xmin, xmax, &p->x) != 0)
        return -1;
    return axis_values(ymin, ymax, p->is_acc, &p->y);
}

/* Pixel x of epoch value v in panel p. */
static double panel_px(const plot_panel *p, double v) {
    return p->left + (v - p->x.lo) / (p->x.hi - p->x.lo) * (p->right - p->left);
}

/* Pixel y of metric value v in panel p (larger values are higher up). */
static double panel_py(const plot_panel *p, double v) {
    return p->bottom - (v - p->y.lo) / (p->y.hi - p->y.lo) * (p->bottom - p->top);
}

/* ---- SVG drawing ------------------------------------------------------------ */

/* Draws grid lines, tick labels and the frame of panel p. */
static void draw_grid(svg_buf *b, const plot_panel *p) {
    char s1[32], s2[32], s3[32], s4[32], t[64];
    buf_printf(b, "<g stroke=\"#dddddd\" stroke-width=\"1\">\n");
    for (int i = 0; i < p->x.nticks; i++) {
        double x = panel_px(p, (p->x.first + i) * p->x.step);
        buf_printf(b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", fmt_px(x, s1),
                   fmt_px(p->top, s2), fmt_px(x, s3), fmt_px(p->bottom, s4));
    }
    for (int i = 0; i < p->y.nticks; i++) {
        double y = panel_py(p, (p->y.first + i) * p->y.step);
        buf_printf(b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", fmt_px(p->left, s1),
                   fmt_px(y, s2), fmt_px(p->right, s3), fmt_px(y, s4));
    }
    buf_printf(b, "</g>\n<g font-size=\"12\" fill=\"#333333\" text-anchor=\"middle\">\n");
    for (int i = 0; i < p->x.nticks; i++) {
        double x = panel_px(p, (p->x.first + i) * p->x.step);
        buf_printf(b, "<text x=\"%s\" y=\"%s\">%s</text>\n", fmt_px(x, s1),
                   fmt_px(p->bottom + 18.0, s2), fmt_tick(&p->x, i, t));
    }
    buf_printf(b, "</g>\n<g font-size=\"12\" fill=\"#333333\" text-anchor=\"end\">\n");
    for (int i = 0; i < p->y.nticks; i++) {
        double y = panel_py(p, (p->y.first + i) * p->y.step);
        buf_printf(b, "<text x=\"%s\" y=\"%s\">%s</text>\n", fmt_px(p->left - 8.0, s1),
                   fmt_px(y + 4.0, s2), fmt_tick(&p->y, i, t));
    }
    buf_printf(b, "</g>\n<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"none\" "
               "stroke=\"#333333\" stroke-width=\"1\"/>\n",
               fmt_px(p->left, s1), fmt_px(p->top, s2), fmt_px(p->right - p->left, s3),
               fmt_px(p->bottom - p->top, s4));
}

/* Draws the axis labels of panel p. */
static void draw_axis_labels(svg_buf *b, const plot_panel *p) {
    char s1[32], s2[32];
    double cx = (p->left + p->right) / 2.0, cy = (p->top + p->bottom) / 2.0;
    double lx = p->left - 56.0;
    buf_printf(b, "<text x=\"%s\" y=\"%s\" font-size=\"14\" text-anchor=\"middle\">Epoch</text>\n",
               fmt_px(cx, s1), fmt_px(p->bottom + 44.0, s2));
    buf_printf(b, "<text x=\"%s\" y=\"%s\" font-size=\"14\" text-anchor=\"middle\" ",
               fmt_px(lx, s1), fmt_px(cy, s2));
    buf_printf(b, "transform=\"rotate(-90 %s %s)\">%s</text>\n", fmt_px(lx, s1), fmt_px(cy, s2),
               p->is_lr ? "Learning rate" : p->is_acc ? (p->rmse ? "RMSE" : "Accuracy") : "Loss");
}

/* Appends a legend/series name "Kind (label)", escaped. */
static void put_series_name(svg_buf *b, const series_style *st, const char *label) {
    buf_printf(b, "%s (", st->name);
    buf_text(b, label);
    buf_put(b, ")", 1);
}

/* Draws one series (column c of run r) as a polyline with a title, plus
 * small markers when there are few points. Nothing if it has no points. */
static void draw_series(svg_buf *b, const plot_panel *p, const dngen_plot_run *run, int c,
                        const series_style *st, const char *color) {
    const dngen_plot_metrics *m = run->m;
    size_t npts = series_points(m, c);
    char s1[32], s2[32];
    if (npts == 0)
        return;
    buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"", color);
    if (st->dash)
        buf_printf(b, " stroke-dasharray=\"%s\"", st->dash);
    buf_printf(b, " points=\"");
    const char *sep = "";
    for (size_t i = 0; i < m->n; i++) {
        if (isnan(m->col[c][i]))
            continue;
        buf_printf(b, "%s%s,%s", sep, fmt_px(panel_px(p, m->epoch[i]), s1),
                   fmt_px(panel_py(p, m->col[c][i]), s2));
        sep = " ";
    }
    buf_printf(b, "\"><title>");
    put_series_name(b, st, run->label);
    buf_printf(b, "</title></polyline>\n");
    if (npts > 60)
        return;
    buf_printf(b, "<g fill=\"%s\">\n", color);
    for (size_t i = 0; i < m->n; i++)
        if (!isnan(m->col[c][i]))
            buf_printf(b, "<circle cx=\"%s\" cy=\"%s\" r=\"2.5\"/>\n",
                       fmt_px(panel_px(p, m->epoch[i]), s1),
                       fmt_px(panel_py(p, m->col[c][i]), s2));
    buf_printf(b, "</g>\n");
}

/* Counts legend entries of panel p and the widest entry, in characters. */
static size_t legend_size(const plot_panel *p, const dngen_plot_run *runs, size_t n,
                          size_t *widest) {
    size_t entries = 0;
    *widest = 0;
    for (size_t r = 0; r < n; r++) {
        for (int s = 0; s < 3; s++) {
            if (series_points(runs[r].m, p->cols[s]) == 0)
                continue;
            size_t w = strlen(p->styles[s].name) + 3 + text_chars(runs[r].label);
            *widest = w > *widest ? w : *widest;
            entries++;
        }
    }
    return entries;
}

/* Draws the legend box of panel p: bottom right for accuracy (curves rise),
 * top right for loss (curves fall). */
static void draw_legend(svg_buf *b, const plot_panel *p, const dngen_plot_run *runs, size_t n) {
    size_t widest;
    size_t entries = legend_size(p, runs, n, &widest);
    char s1[32], s2[32], s3[32], s4[32];
    if (entries == 0)
        return;
    double w = fmin(48.0 + 7.0 * (double)widest, p->right - p->left - 20.0);
    double h = 10.0 + 18.0 * (double)entries;
    double x = p->right - 10.0 - w;
    double y = p->is_acc && !p->rmse ? p->bottom - 10.0 - h : p->top + 10.0; /* RMSE falls */
    y = fmax(y, p->top + 10.0);
    buf_printf(b, "<g font-size=\"12\">\n<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" "
               "fill=\"#ffffff\" fill-opacity=\"0.9\" stroke=\"#bbbbbb\"/>\n",
               fmt_px(x, s1), fmt_px(y, s2), fmt_px(w, s3), fmt_px(h, s4));
    double ey = y + 14.0;
    for (size_t r = 0; r < n; r++) {
        const char *color = plot_palette[r % PLOT_PALETTE_N];
        for (int s = 0; s < 3; s++) {
            if (series_points(runs[r].m, p->cols[s]) == 0)
                continue;
            buf_printf(b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" stroke=\"%s\" "
                       "stroke-width=\"2\"",
                       fmt_px(x + 8.0, s1), fmt_px(ey - 4.0, s2), fmt_px(x + 38.0, s3),
                       fmt_px(ey - 4.0, s4), color);
            if (p->styles[s].dash)
                buf_printf(b, " stroke-dasharray=\"%s\"", p->styles[s].dash);
            buf_printf(b, "/>\n<text x=\"%s\" y=\"%s\">", fmt_px(x + 44.0, s1), fmt_px(ey, s2));
            put_series_name(b, &p->styles[s], runs[r].label);
            buf_printf(b, "</text>\n");
            ey += 18.0;
        }
    }
    buf_printf(b, "</g>\n");
}

/* Draws one whole panel. */
static void draw_panel(svg_buf *b, const plot_panel *p, const dngen_plot_run *runs, size_t n) {
    buf_printf(b, "<g>\n");
    draw_grid(b, p);
    draw_axis_labels(b, p);
    for (size_t r = 0; r < n; r++)
        for (int s = 0; s < 3; s++)
            if (p->cols[s] >= 0)
                draw_series(b, p, &runs[r], p->cols[s], &p->styles[s], plot_palette[r % PLOT_PALETTE_N]);
    draw_legend(b, p, runs, n);
    buf_printf(b, "</g>\n");
}

/* The default title for a metric choice (rmse: regression runs). */
static const char *default_title(int metric, int rmse) {
    switch (metric) {
    case DNGEN_PLOT_METRIC_LOSS: return "Training vs Test Loss";
    case DNGEN_PLOT_METRIC_BOTH: return rmse ? "Training vs Test RMSE and Loss" : "Training vs Test Accuracy and Loss";
    case DNGEN_PLOT_METRIC_LR: return "Learning Rate";
    default: return rmse ? "Training vs Test RMSE" : "Training vs Test Accuracy";
    }
}

/* Copies one formatted message into err[0..errlen). */
static void plot_seterr(char *err, size_t errlen, const char *msg) {
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

int dngen_plot_render(const dngen_plot_run *runs, size_t n, int metric, const char *title,
                      char **svg, size_t *len, char *err, size_t errlen) {
    *svg = NULL;
    *len = 0;
    if (metric != DNGEN_PLOT_METRIC_LOSS && metric != DNGEN_PLOT_METRIC_BOTH && metric != DNGEN_PLOT_METRIC_LR)
        metric = DNGEN_PLOT_METRIC_ACC;
    int both = metric == DNGEN_PLOT_METRIC_BOTH;
    plot_panel panels[2];
    int npanels = both ? 2 : 1;
    double pw = both ? PANEL_WIDTH_BOTH : PANEL_WIDTH_SINGLE;
    double width = pw * npanels;
    int rmse = n > 0 && runs[0].m->rmse;
    for (size_t r = 1; r < n; r++)
        if (runs[r].m->rmse != rmse && metric != DNGEN_PLOT_METRIC_LOSS) {
            plot_seterr(err, errlen, "error: the runs mix accuracy and RMSE (classification and regression)");
            return -1;
        }
    for (int i = 0; i < npanels; i++) {
        int panel_metric = both ? (i == 0 ? DNGEN_PLOT_METRIC_ACC : DNGEN_PLOT_METRIC_LOSS) : metric;
        panel_init(&panels[i], panel_metric, pw * i, pw);
        panels[i].rmse = rmse;
        if (panel_axes(&panels[i], runs, n) != 0) {
            plot_seterr(err, errlen, "error: the values span too large a range to plot");
            return -1;
        }
    }
    if (!title)
        title = default_title(metric, rmse);
    svg_buf b = {NULL, 0, 0, 0};
    buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" "
                   "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n<title>",
               width, SVG_HEIGHT, width, SVG_HEIGHT);
    buf_text(&b, title);
    buf_printf(&b, "</title>\n<rect width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", width,
               SVG_HEIGHT);
    buf_printf(&b, "<text x=\"%.0f\" y=\"32\" font-size=\"18\" font-weight=\"bold\" "
                   "text-anchor=\"middle\">", width / 2.0);
    buf_text(&b, title);
    buf_printf(&b, "</text>\n");
    for (int i = 0; i < npanels; i++)
        draw_panel(&b, &panels[i], runs, n);
    buf_printf(&b, "</svg>\n");
    if (b.failed) {
        free(b.p);
        plot_seterr(err, errlen, "error: out of memory");
        return -1;
    }
    *svg = b.p;
    *len = b.len;
    return 0;
}

/* ---- command line ------------------------------------------------------------ */

static const char plot_usage[] =
    "usage: dngen plot RUN.csv [RUN.csv ...] -o OUT.svg [--metric acc|loss|both|lr] "
    "[--title TEXT] [--label NAME ...]\n";

typedef struct {
    const char **inputs;
    size_t n_inputs;
    const char **labels;
    size_t n_labels;
    const char *output;
    const char *title;
    int metric; /* 0 until given */
    int help;
} plot_opts;

/* Prints a usage error (message + usage line) and returns 2. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static int usage_error(FILE *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("dngen plot: error: ", err);
    vfprintf(err, fmt, ap);
    fputs("\n", err);
    fputs(plot_usage, err);
    va_end(ap);
    return 2;
}

/* If argv[*i] is option `name` (as "NAME VALUE" or "NAME=VALUE"), stores its
 * value in *val, advances *i past it and returns 1; returns -1 if the value
 * is missing; 0 if argv[*i] is another option. */
static int take_value(int argc, char **argv, int *i, const char *name, const char **val) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=' && name[1] == '-') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *i += 1;
    *val = argv[*i];
    return 1;
}

/* Stores a once-only option value; usage error (2) if given twice. */
static int set_once(FILE *err, const char *opt, const char **slot, const char *val) {
    if (*slot)
        return usage_error(err, "option '%s' given more than once", opt);
    *slot = val;
    return 0;
}

/* Parses the --metric value. Returns 0, or a usage error (2). */
static int parse_metric(FILE *err, const char *val, int *metric) {
    if (*metric)
        return usage_error(err, "option '--metric' given more than once");
    if (strcmp(val, "acc") == 0)
        *metric = DNGEN_PLOT_METRIC_ACC;
    else if (strcmp(val, "loss") == 0)
        *metric = DNGEN_PLOT_METRIC_LOSS;
    else if (strcmp(val, "both") == 0)
        *metric = DNGEN_PLOT_METRIC_BOTH;
    else if (strcmp(val, "lr") == 0)
        *metric = DNGEN_PLOT_METRIC_LR;
    else
        return usage_error(err, "unknown metric '%s' (expected acc, loss, both or lr)", val);
    return 0;
}

/* Handles the option at argv[*i]. Returns 0 or a usage error (2). */
static int parse_option(int argc, char **argv, int *i, plot_opts *o, FILE *err) {
    static const char *const names[] = {"-o", "--output", "--metric", "--title", "--label"};
    const char *a = argv[*i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
        o->help = 1;
        return 0;
    }
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const char *val = NULL;
        int t = take_value(argc, argv, i, names[k], &val);
        if (t == 0)
            continue;
        if (t < 0)
            return usage_error(err, "option '%s' needs a value", names[k]);
        if (k <= 1)
            return set_once(err, "-o", &o->output, val);
        if (k == 2)
            return parse_metric(err, val, &o->metric);
        if (k == 3)
            return set_once(err, "--title", &o->title, val);
        o->labels[o->n_labels++] = val;
        return 0;
    }
    return usage_error(err, "unknown option '%s'", a);
}

/* Whether the -o argument names what the writer writes: "-" (stdout) or a
 * file ending in .svg, in any case. Anything else (curves.png, chart.pdf,
 * a name without a suffix) would put an SVG document under a name that says
 * otherwise, which viewers refuse or misread. */
static int is_svg_name(const char *path) {
    size_t n = strlen(path);
    if (strcmp(path, "-") == 0)
        return 1;
    if (n < 4)
        return 0;
    const char *ext = path + n - 4;
    return ext[0] == '.' && tolower((unsigned char)ext[1]) == 's' &&
           tolower((unsigned char)ext[2]) == 'v' && tolower((unsigned char)ext[3]) == 'g';
}

/* Parses argv[1..argc) into *o (arrays sized argc by the caller).
 * Returns 0, or 2 after printing a usage error. */
static int parse_args(int argc, char **argv, plot_opts *o, FILE *err) {
    int only_inputs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_inputs || a[0] != '-' || a[1] == '\0') {
            o->inputs[o->n_inputs++] = a;
        } else if (strcmp(a, "--") == 0) {
            only_inputs = 1;
        } else {
            int rc = parse_option(argc, argv, &i, o, err);
            if (rc != 0)
                return rc;
            if (o->help)
                return 0;
        }
    }
    if (o->n_inputs == 0)
        return usage_error(err, "no input files");
    if (!o->output)
        return usage_error(err, "no output file (use -o OUT.svg, or -o - for stdout)");
    if (!is_svg_name(o->output))
        return usage_error(err, "cannot write '%s': the chart is SVG, so the output name must end "
                           "in .svg (or be - for stdout)", o->output);
    if (o->n_labels != 0 && o->n_labels != o->n_inputs)
        return usage_error(err, "%zu --label value(s) for %zu input file(s)", o->n_labels,
                           o->n_inputs);
    if (!o->metric)
        o->metric = DNGEN_PLOT_METRIC_ACC;
    return 0;
}

/* ---- inputs ---------------------------------------------------------------- */

/* Reads the whole file at path into a malloc'd buffer (*data, *len), refusing
 * files over DNGEN_PLOT_MAX_BYTES. Returns 0, or -1 with err set
 * ("run.csv: error: cannot open: No such file or directory"). */
static int read_input(const char *path, char **data, size_t *len, char *err, size_t errlen) {
    char why[DN_ERR_MAX];
    int rc = dn_file_read(path, DNGEN_PLOT_MAX_BYTES, data, len, why);
    if (rc == 0)
        return 0;
    const char *step = rc == DN_FILE_OPEN ? "cannot open: " : rc == DN_FILE_READ ? "cannot read: " : "";
    snprintf(err, errlen, "%s: error: %s%s", path, step, why);
    return -1;
}

/* Column masks (want, need) for a metric choice. */
static void metric_masks(int metric, unsigned *want, unsigned *need) {
    if (metric == DNGEN_PLOT_METRIC_LR) {
        *want = *need = DNGEN_PLOT_BIT(DNGEN_PLOT_LR);
        return;
    }
    unsigned acc = DNGEN_PLOT_BIT(DNGEN_PLOT_TRAIN_ACC) | DNGEN_PLOT_BIT(DNGEN_PLOT_TEST_ACC);
    unsigned loss = DNGEN_PLOT_BIT(DNGEN_PLOT_TRAIN_LOSS) | DNGEN_PLOT_BIT(DNGEN_PLOT_TEST_LOSS);
    *need = (metric & DNGEN_PLOT_METRIC_ACC ? acc : 0) | (metric & DNGEN_PLOT_METRIC_LOSS ? loss : 0);
    *want = *need;
    if (metric & DNGEN_PLOT_METRIC_ACC)
        *want |= DNGEN_PLOT_BIT(DNGEN_PLOT_VAL_ACC);
    if (metric & DNGEN_PLOT_METRIC_LOSS)
        *want |= DNGEN_PLOT_BIT(DNGEN_PLOT_VAL_LOSS);
}

/* The default legend label of a path: its base name without ".csv"
 * (malloc'd; NULL on allocation failure). */
static char *default_label(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".csv") == 0)
        n -= 4;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, base, n);
        s[n] = '\0';
    }
    return s;
}

/* Reads and parses input file path into *m. Returns 0 or -1 with err set. */
static int load_run(const char *path, int metric, dngen_plot_metrics *m, char *err,
                    size_t errlen) {
    char *data;
    size_t len;
    unsigned want, need;
    memset(m, 0, sizeof *m);
    if (read_input(path, &data, &len, err, errlen) != 0)
        return -1;
    metric_masks(metric, &want, &need);
    int rc = dngen_plot_csv_parse(path, data, len, want, need, m, err, errlen);
    free(data);
    return rc;
}

/* Writes the finished SVG to o->output ("-" = out). Returns 0 or 2. */
static int write_output(const plot_opts *o, const char *svg, size_t len, FILE *out, FILE *err) {
    if (strcmp(o->output, "-") == 0) {
        if (fwrite(svg, 1, len, out) != len || fflush(out) != 0) {
            fprintf(err, "dngen plot: error: cannot write to standard output\n");
            return 2;
        }
        return 0;
    }
    char werr[DN_ERR_MAX];
    werr[0] = '\0';
    if (dn_write_file_atomic(o->output, svg, len, werr) != 0) {
        fprintf(err, "dngen plot: error: %s\n", werr[0] ? werr : o->output);
        return 2;
    }
    return 0;
}

/* Loads every input, renders and writes. Returns the exit status. */
static int plot_run(const plot_opts *o, dngen_plot_metrics *ms, dngen_plot_run *runs,
                    char **own_labels, FILE *out, FILE *err) {
    char msg[PLOT_ERR_MAX];
    for (size_t i = 0; i < o->n_inputs; i++) {
        if (load_run(o->inputs[i], o->metric, &ms[i], msg, sizeof msg) != 0) {
            fprintf(err, "%s\n", msg);
            return 1;
        }
        if (o->n_labels) {
            runs[i].label = o->labels[i];
        } else {
            own_labels[i] = default_label(o->inputs[i]);
            if (!own_labels[i]) {
                fprintf(err, "dngen plot: error: out of memory\n");
                return 1;
            }
            runs[i].label = own_labels[i];
        }
        runs[i].m = &ms[i];
    }
    char *svg;
    size_t len;
    if (dngen_plot_render(runs, o->n_inputs, o->metric, o->title, &svg, &len, msg, sizeof msg)) {
        fprintf(err, "dngen plot: %s\n", msg);
        return 1;
    }
    int rc = write_output(o, svg, len, out, err);
    free(svg);
    return rc;
}

int dngen_plot_main(int argc, char **argv, FILE *out, FILE *err) {
    size_t cap = argc > 0 ? (size_t)argc : 1;
    plot_opts o;
    memset(&o, 0, sizeof o);
    o.inputs = calloc(cap, sizeof *o.inputs);
    o.labels = calloc(cap, sizeof *o.labels);
    dngen_plot_metrics *ms = calloc(cap, sizeof *ms);
    dngen_plot_run *runs = calloc(cap, sizeof *runs);
    char **own_labels = calloc(cap, sizeof *own_labels);
    int rc;
    if (!o.inputs || !o.labels || !ms || !runs || !own_labels) {
        fprintf(err, "dngen plot: error: out of memory\n");
        rc = 1;
    } else if ((rc = parse_args(argc, argv, &o, err)) == 0) {
        if (o.help)
            fputs(plot_usage, out);
        else
            rc = plot_run(&o, ms, runs, own_labels, out, err);
    }
    for (size_t i = 0; ms && own_labels && i < cap; i++) {
        dngen_plot_metrics_free(&ms[i]);
        free(own_labels[i]);
    }
    free(o.inputs);
    free(o.labels);
    free(ms);
    free(runs);
    free(own_labels);
    return rc;
}
