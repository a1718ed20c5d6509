/* dn_dataset.c - the trainer's CSV and NPY data: the train file (and a test
 * file, or a seeded test split of the train file) read into tables, checked
 * against the network, and the feature scaling computed from the training
 * rows; then rows gathered into batches like IDX images are.
 *
 * The test split is a pure function of (spec seed, n, fraction): a
 * Fisher-Yates permutation on the DN_RNG_SPLIT stream with a = 1 (the
 * validation split uses a = 0) whose first round(F * n) entries are the
 * test rows; both parts keep file order. The spec's seed, not --seed, so
 * that `train --seed S` and `eval` see the same test rows. */
#include "dn_runtime.h"
#include "dn_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a table dataset owns; shared by the train and test datasets made
 * from one load, freed with the last of them. */
struct dn_data_src {
    dn_table train, test;      /* the test table only with a separate test file */
    uint32_t *fit, *held;      /* test split: train rows, test rows (file order) */
    uint32_t n_fit, n_held;
    float *shift, *scale;      /* [features] */
    int refs;
};

/* The table data of the last dn_data_load with a train set (see
 * dn_data_info_current); info.features == 0 when none. */
static dn_data_info dn_ds_info;
static const dn_data_src *dn_ds_info_src;

const dn_data_info *dn_data_info_current(void) { return dn_ds_info.features ? &dn_ds_info : NULL; }

void dn_data_src_release(dn_data_src *s) {
    if (!s || --s->refs > 0)
        return;
    if (s == dn_ds_info_src) {
        memset(&dn_ds_info, 0, sizeof dn_ds_info);
        dn_ds_info_src = NULL;
    }
    dn_table_free(&s->train);
    dn_table_free(&s->test);
    free(s->fit);
    free(s->held);
    free(s->shift);
    free(s->scale);
    free(s);
}

/* Loads one table (csv: path; npy: path and y_path). */
static int dn_ds_load_table(const dn_data_spec *d, const char *path, const char *y_path, dn_table *t,
                            char *err) {
    if (d->format == DN_DATA_NPY)
        return dn_npy_table_load(path, y_path, d->csv.kind, t, err);
    return dn_csv_table_load(path, &d->csv, t, err);
}

/* A multi-label model's targets in table t (from path, columns from spec d)
 * are each 0 or 1; else an error naming the first other value's row
 * (1-based, among the data rows) and target column. */
static int dn_ds_check_labels(const dn_data_spec *d, const dn_table *t, const char *path, char *err) {
    const size_t k = t->targets;
    for (size_t i = 0; i < (size_t)t->n * k; i++) {
        float v = t->t[i];
        if (v == 0.0f || v == 1.0f)
            continue;
        size_t col = i % k;
        const char *name = d && d->format == DN_DATA_CSV && (int)col < d->csv.n_target ? d->csv.target[col] : NULL;
        char what[160];
        if (name)
            snprintf(what, sizeof what, "target column %zu ('%.100s')", col + 1, name);
        else
            snprintf(what, sizeof what, "target column %zu", col + 1);
        dn_errf(err, "%s: row %zu, %s: %g, but multi-label binary_cross_entropy takes targets 0 and 1", path,
                i / k + 1, what, (double)v);
        return -1;
    }
    return 0;
}

/* Checks that table t (from path) fits model m: as many features as the
 * input, labels within the outputs or as many targets as outputs (0 or 1
 * each for a multi-label model). */
static int dn_ds_check(const dn_model *m, const dn_table *t, const char *path, char *err) {
    if (t->features != (uint32_t)m->n_inputs) {
        dn_errf(err, "%s: %u features per row, but the network's input takes %d (spec `input:`)", path,
                t->features, m->n_inputs);
        return -1;
    }
    if (t->targets == 0 && t->n_classes > dn_model_classes(m)) {
        if (m->loss == DN_MODEL_LOSS_BCE)
            dn_errf(err, "%s: %d classes (labels 0..%d), but binary_cross_entropy takes labels 0 and 1", path,
                    t->n_classes, t->n_classes - 1);
        else
            dn_errf(err, "%s: %d classes (labels 0..%d), but the network has %d outputs", path, t->n_classes,
                    t->n_classes - 1, m->n_outputs);
        return -1;
    }
    if (t->targets != 0 && t->targets != (uint32_t)m->n_outputs) {
        dn_errf(err, "%s: %u target columns, but the network has %d outputs", path, t->targets,
                m->n_outputs);
        return -1;
    }
    if (m->multilabel && t->targets == 0) {
        dn_errf(err, "%s: class labels, but a multi-label network takes %d target values 0 or 1 per row", path,
                m->n_outputs);
        return -1;
    }
    return m->multilabel ? dn_ds_check_labels(m->defaults.data, t, path, err) : 0;
}

/* Splits the train table's rows into fit and held (the test rows). */
static int dn_ds_split(dn_data_src *s, double frac, uint64_t seed, const char *path, char *err) {
    uint32_t n = s->train.n;
    double v = round(frac * (double)n);
    s->n_held = v <= 0 ? 0 : v >= (double)n ? n : (uint32_t)v;
    s->n_fit = n - s->n_held;
    if (s->n_held == 0 || s->n_fit == 0) {
        dn_errf(err, "%s: test_split %g of %u rows leaves %s", path, frac, n,
                s->n_held ? "no training rows" : "no test rows");
        return -1;
    }
    uint32_t *perm = malloc((size_t)n * sizeof *perm);
    unsigned char *held = calloc(n, 1);
    s->fit = malloc((size_t)s->n_fit * sizeof *s->fit);
    s->held = malloc((size_t)s->n_held * sizeof *s->held);
    int ok = perm && held && s->fit && s->held;
    if (ok) {
        for (uint32_t i = 0; i < n; i++)
            perm[i] = i;
        for (uint32_t i = n; i-- > 1;) {
            uint32_t w = dn_rand_u32(seed, DN_RNG_SPLIT, 1, 0, 0, i);
            uint32_t j = (uint32_t)(((uint64_t)w * ((uint64_t)i + 1)) >> 32), tmp = perm[i];
            perm[i] = perm[j];
            perm[j] = tmp;
        }
        for (uint32_t k = 0; k < s->n_held; k++)
            held[perm[k]] = 1;
        uint32_t a = 0, b = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (held[i])
                s->held[b++] = i;
            else
                s->fit[a++] = i;
        }
    } else {
        dn_errf(err, "%s: out of memory", path);
    }
    free(perm);
    free(held);
    return ok ? 0 : -1;
}

/* Row i of the training rows: through fit when split. */
static const float *dn_ds_train_row(const dn_data_src *s, uint32_t i) {
    uint32_t r = s->fit ? s->fit[i] : i;
    return s->train.x + (size_t)r * s->train.features;
}

/* The first pass over the n training rows: per feature k, sum (standard)
 * into a[k], or minimum into a[k] and maximum into b[k] (minmax). */
static void dn_ds_pass1(const dn_data_src *s, int scale, uint32_t n, double *a, double *b) {
    uint32_t f = s->train.features;
    for (uint32_t k = 0; k < f; k++) {
        a[k] = scale == DN_SCALE_MINMAX ? INFINITY : 0;
        b[k] = scale == DN_SCALE_MINMAX ? -INFINITY : 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        const float *x = dn_ds_train_row(s, i);
        for (uint32_t k = 0; k < f; k++) {
            if (scale == DN_SCALE_MINMAX) {
                a[k] = x[k] < a[k] ? x[k] : a[k];
                b[k] = x[k] > b[k] ? x[k] : b[k];
            } else {
                a[k] += x[k];
            }
        }
    }
}

/* The second pass of standard scaling: squared deviations from the mean
 * (a[k] / n) into b[k]. */
static void dn_ds_pass2(const dn_data_src *s, uint32_t n, const double *a, double *b) {
    uint32_t f = s->train.features;
    for (uint32_t i = 0; i < n; i++) {
        const float *x = dn_ds_train_row(s, i);
        for (uint32_t k = 0; k < f; k++) {
            double e = x[k] - a[k] / n;
            b[k] += e * e;
        }
    }
}

/* Per-feature shift and scale from the training rows (sums in row order,
 * in double): standard = mean and population standard deviation, minmax =
 * minimum and range, fixed = the spec's mean and std, none = 0 and 1; a
 * constant feature gets scale 1. */
static int dn_ds_scaling(dn_data_src *s, const dn_data_spec *d, char *err) {
    uint32_t f = s->train.features, n = s->fit ? s->n_fit : s->train.n;
    s->shift = calloc(f, sizeof *s->shift);
    s->scale = malloc((size_t)f * sizeof *s->scale);
    double *a = calloc(f, sizeof *a), *b = calloc(f, sizeof *b);
    int ok = s->shift && s->scale && a && b, sc = d->scale;
    if (ok && sc >= DN_SCALE_STANDARD)
        dn_ds_pass1(s, sc, n, a, b);
    if (ok && sc == DN_SCALE_STANDARD)
        dn_ds_pass2(s, n, a, b);
    for (uint32_t k = 0; ok && k < f; k++) {
        double shift = sc == DN_SCALE_FIXED ? d->mean : sc == DN_SCALE_STANDARD ? a[k] / n : sc == DN_SCALE_MINMAX ? a[k] : 0;
        double scale = sc == DN_SCALE_FIXED ? d->std : sc == DN_SCALE_STANDARD ? sqrt(b[k] / n)
                       : sc == DN_SCALE_MINMAX ? b[k] - a[k] : 1;
        s->shift[k] = (float)shift;
        s->scale[k] = (float)scale > 0 && isfinite((float)scale) ? (float)scale : 1.0f;
    }
    free(a);
    free(b);
    if (!ok)
        dn_errf(err, "out of memory");
    return ok ? 0 : -1;
}

/* Points ds at table t's rows (rows NULL: all of them, n of them). */
static void dn_ds_view(dn_dataset *ds, dn_data_src *s, const dn_table *t, const uint32_t *rows,
                       uint32_t n) {
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->features = t->features;
    ds->rows = rows;
    ds->x = t->x;
    ds->y = t->y;
    ds->t = t->t;
    ds->targets = t->targets;
    ds->shift = s->shift;
    ds->scale = s->scale;
    ds->src = s;
    s->refs++;
}

/* Reads the train table and, when there is one, the test table; splits. */
static int dn_ds_read(const dn_model *m, const dn_opts *o, dn_data_src *s, char *err) {
    const dn_data_spec *d = m->defaults.data;
    if (dn_ds_load_table(d, o->train, o->train_y, &s->train, err) != 0 ||
        dn_ds_check(m, &s->train, o->train, err) != 0)
        return -1;
    if (o->test && (dn_ds_load_table(d, o->test, o->test_y, &s->test, err) != 0 ||
                    dn_ds_check(m, &s->test, o->test, err) != 0))
        return -1;
    if (!o->test && d->test_split > 0 &&
        dn_ds_split(s, d->test_split, m->defaults.seed, o->train, err) != 0)
        return -1;
    return dn_ds_scaling(s, d, err);
}

int dn_data_load(const dn_model *m, const dn_opts *o, dn_dataset *train, dn_dataset *test,
                 int *has_test, char *err) {
    dn_data_src *s = calloc(1, sizeof *s);
    if (!s) {
        dn_errf(err, "out of memory");
        return -1;
    }
    s->refs = 1;
    int rc = dn_ds_read(m, o, s, err);
    *has_test = rc == 0 && (o->test || s->held);
    if (rc == 0 && train) {
        dn_ds_view(train, s, &s->train, s->fit, s->fit ? s->n_fit : s->train.n);
        dn_data_info info = {s->train.features, s->shift, s->scale,
                             s->train.class_names ? s->train.n_classes : 0, s->train.class_names};
        dn_ds_info = info;
        dn_ds_info_src = s;
    }
    if (rc == 0 && test && o->test)
        dn_ds_view(test, s, &s->test, NULL, s->test.n);
    else if (rc == 0 && test && s->held)
        dn_ds_view(test, s, &s->train, s->held, s->n_held);
    dn_data_src_release(s);
    return rc;
}

void dn_data_gather(const dn_dataset *ds, const uint32_t *idx, int n, float *x, int32_t *y) {
    const size_t nf = ds->features;
    for (int r = 0; r < n; r++) {
        uint32_t row = ds->rows ? ds->rows[idx[r]] : idx[r];
        const float *src = ds->x + (size_t)row * nf;
        float *dst = x + (size_t)r * nf;
        for (size_t k = 0; k < nf; k++)
            dst[k] = (src[k] - ds->shift[k]) / ds->scale[k];
        if (y)
            y[r] = ds->y ? ds->y[row] : 0;
    }
}

void dn_data_gather_targets(const dn_dataset *ds, const uint32_t *idx, int n, float *t) {
    const size_t k = ds->targets;
    for (int r = 0; r < n; r++) {
        uint32_t row = ds->rows ? ds->rows[idx[r]] : idx[r];
        memcpy(t + (size_t)r * k, ds->t + (size_t)row * k, k * sizeof *t);
    }
}

/* ---- class names in checkpoints ----------------------------------------------- */

/* A byte that names keep as it is. */
static int dn_ds_plain(unsigned char c) { return c > 0x20 && c < 0x7f && c != '%' && c != ','; }

char *dn_data_names_encode(char *const *names, int n) {
    static const char hex[] = "0123456789ABCDEF";
    size_t len = 1;
    for (int i = 0; i < n; i++)
        for (const unsigned char *c = (const unsigned char *)names[i]; *c; c++)
            len += dn_ds_plain(*c) ? 1 : 3;
    char *out = malloc(len + (size_t)n), *o = out;
    for (int i = 0; out && i < n; i++) {
        if (i)
            *o++ = ',';
        for (const unsigned char *c = (const unsigned char *)names[i]; *c; c++) {
            if (dn_ds_plain(*c)) {
                *o++ = (char)*c;
            } else {
                *o++ = '%';
                *o++ = hex[*c >> 4];
                *o++ = hex[*c & 15];
            }
        }
    }
    if (out)
        *o = '\0';
    return out;
}

/* The value of hex digit c, or -1. */
static int dn_ds_hex(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes s[0..len) into a malloc'd string; NULL when malformed or out of memory. */
static char *dn_ds_unescape(const char *s, size_t len) {
    char *out = malloc(len + 1), *o = out;
    for (size_t i = 0; out && i < len; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        int hi = i + 2 < len ? dn_ds_hex(s[i + 1]) : -1;
        int lo = hi >= 0 ? dn_ds_hex(s[i + 2]) : -1;
        if (lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        *o++ = (char)(hi * 16 + lo);
        i += 2;
    }
    if (out)
        *o = '\0';
    return out;
}

int dn_data_names_decode(const char *s, char ***names, int *n) {
    int count = 1;
    for (const char *c = s; *c; c++)
        count += *c == ',';
    char **v = calloc((size_t)count, sizeof *v);
    int k = 0;
    for (const char *start = s; v && k < count; k++) {
        const char *end = strchr(start, ',');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        if (!(v[k] = dn_ds_unescape(start, len)))
            break;
        start += len + (end != NULL);
    }
    if (!v || k < count) {
        for (int i = 0; v && i < k; i++)
            free(v[i]);
        free(v);
        return -1;
    }
    *names = v;
    *n = count;
    return 0;
}
