/* validate_data.c - the `data` section: where the examples come from (IDX
 * files in a directory, or CSV and NPY files named one by one), how a CSV
 * file is laid out, what its targets are, and how features are scaled.
 * Keys that belong to another format are errors at the key. */
#include "validate.h"

#include <string.h>

static const char *const formats[] = {"idx", "csv", "npy"};
enum { FMT_IDX, FMT_CSV, FMT_NPY };

/* The keys of `data`, in this order in the field array. */
static const char *const data_keys[] = {"format", "dir", "normalize", "train", "train_y", "test",
                                        "test_y", "test_split", "target", "ignore", "header",
                                        "skip", "delimiter", "targets"};
enum { K_FORMAT, K_DIR, K_NORMALIZE, K_TRAIN, K_TRAIN_Y, K_TEST, K_TEST_Y, K_TEST_SPLIT,
       K_TARGET, K_IGNORE, K_HEADER, K_SKIP, K_DELIMITER, K_TARGETS };

/* `normalize: {mean, std}`: mean finite, std > 0. */
static void check_fixed_normalize(vctx *v, const dn_ynode *n) {
    static const char *const keys[] = {"mean", "std"};
    dn_yfield f[COUNT(keys)];
    if (dn_ymap_fields(v->d, n, "in normalize", keys, COUNT(keys), f))
        return;
    if (f[0].value)
        dn_yget_number(v->d, f[0].value, "mean", &v->s->data.mean);
    if (f[1].value)
        dnv_get_positive(v, f[1].value, "std", 1, &v->s->data.std);
}

/* `normalize`: {mean, std}, or (csv, npy) none | standard | minmax. */
static void check_normalize(vctx *v, const dn_ynode *n, int fmt) {
    static const char *const modes[] = {"none", "standard", "minmax"};
    static const dn_norm norms[] = {DN_NORM_NONE, DN_NORM_STANDARD, DN_NORM_MINMAX};
    int k;
    if (n->kind != DN_Y_SCALAR) {
        check_fixed_normalize(v, n);
        v->s->data.normalize = DN_NORM_FIXED;
    } else if (fmt == FMT_IDX) {
        dn_diag_report(v->d, DN_ERROR, n->loc, "normalize of idx data is a mapping {mean, std}; "
                       "none, standard and minmax need format csv or npy");
    } else if (dn_yget_enum(v->d, n, "normalize", modes, COUNT(modes), &k) == 0) {
        v->s->data.normalize = norms[k];
    }
}

/* One column selector (a name or an index) into buf. */
static void get_selector(vctx *v, const dn_ynode *n, const char *key, char *buf) {
    dn_yget_string(v->d, n, key, buf, DN_DATA_COL_MAX, 0);
}

/* `target` or `ignore`: one selector or a sequence of them, into
 * sel[0..*count). */
static void check_selectors(vctx *v, const dn_ynode *n, const char *key,
                            char sel[DN_DATA_MAX_COLS][DN_DATA_COL_MAX], int *count) {
    if (n->kind == DN_Y_SCALAR) {
        get_selector(v, n, key, sel[0]);
        *count = 1;
        return;
    }
    if (dn_yexpect(v->d, n, DN_Y_SEQ) != 0)
        return;
    if (n->n_items == 0 || n->n_items > DN_DATA_MAX_COLS) {
        dn_diag_report(v->d, DN_ERROR, n->loc, "%s must list 1 to %d columns, got %zu", key,
                       DN_DATA_MAX_COLS, n->n_items);
        return;
    }
    for (size_t i = 0; i < n->n_items; i++)
        get_selector(v, n->items[i], key, sel[i]);
    *count = (int)n->n_items;
}

/* `delimiter`: one byte that cannot start a field or end a line. */
static void check_delimiter(vctx *v, const dn_ynode *n) {
    char buf[8];
    if (dn_yget_string(v->d, n, "delimiter", buf, sizeof buf, 0) != 0)
        return;
    if (strlen(buf) != 1 || strchr("\"\r\n#", buf[0]))
        dn_diag_report(v->d, DN_ERROR, n->loc,
                       "delimiter must be one byte other than a quote, '#' or a line end");
    else
        v->s->data.delimiter = buf[0];
}

/* Reports each key present in f that format `fmt` does not take. */
static void check_format_keys(vctx *v, const dn_yfield *f, int fmt) {
    for (size_t k = 0; k < COUNT(data_keys); k++) {
        if (!f[k].key)
            continue;
        int idx_only = k == K_DIR, table_only = k >= K_TRAIN && k != K_TARGETS;
        int csv_only = k >= K_TARGET && k <= K_DELIMITER, npy_only = k == K_TRAIN_Y || k == K_TEST_Y;
        const char *needs = idx_only && fmt != FMT_IDX      ? "format idx (csv and npy name their files with train and test)"
                            : table_only && fmt == FMT_IDX  ? "format csv or npy"
                            : csv_only && fmt != FMT_CSV    ? "format csv"
                            : npy_only && fmt != FMT_NPY    ? "format npy (a csv file holds its targets)"
                                                            : NULL;
        if (needs)
            dn_diag_report(v->d, DN_ERROR, f[k].key->loc, "data key '%s' applies to %s", data_keys[k], needs);
    }
}

/* The files of csv and npy data, and the test split. */
static void check_files(vctx *v, const dn_ynode *map, const dn_yfield *f, int fmt) {
    dn_data *dd = &v->s->data;
    const char *where = "in data";
    if (dn_yrequire(v->d, map, &f[K_TRAIN], "train", where) == 0)
        dn_yget_string(v->d, f[K_TRAIN].value, "train", dd->train, sizeof dd->train, 0);
    if (f[K_TEST].value)
        dn_yget_string(v->d, f[K_TEST].value, "test", dd->test, sizeof dd->test, 0);
    if (fmt == FMT_NPY && dn_yrequire(v->d, map, &f[K_TRAIN_Y], "train_y", where) == 0)
        dn_yget_string(v->d, f[K_TRAIN_Y].value, "train_y", dd->train_y, sizeof dd->train_y, 0);
    if (fmt == FMT_NPY && f[K_TEST].value && dn_yrequire(v->d, map, &f[K_TEST_Y], "test_y", where) == 0)
        dn_yget_string(v->d, f[K_TEST_Y].value, "test_y", dd->test_y, sizeof dd->test_y, 0);
    if (fmt == FMT_NPY && f[K_TEST_Y].value && !f[K_TEST].value)
        dn_diag_report(v->d, DN_ERROR, f[K_TEST_Y].key->loc, "test_y needs test (the test features)");
    if (!f[K_TEST_SPLIT].value)
        return;
    if (f[K_TEST].value)
        dn_diag_report(v->d, DN_ERROR, f[K_TEST_SPLIT].key->loc,
                       "test_split and test exclude each other: the test rows come from one or the other");
    else if (dnv_get_fraction(v, f[K_TEST_SPLIT].value, "test_split", &dd->test_split) == 0 &&
             dd->test_split == 0)
        dn_diag_report(v->d, DN_ERROR, f[K_TEST_SPLIT].value->loc, "test_split must be in (0, 1), got 0");
}

/* The csv layout keys. */
static void check_csv(vctx *v, const dn_yfield *f) {
    static const char *const bools[] = {"false", "true"};
    dn_data *dd = &v->s->data;
    if (f[K_HEADER].value)
        dn_yget_enum(v->d, f[K_HEADER].value, "header", bools, 2, &dd->header);
    if (f[K_SKIP].value)
        dnv_get_int(v, f[K_SKIP].value, "skip", 0, 1000000000, &dd->skip);
    if (f[K_DELIMITER].value)
        check_delimiter(v, f[K_DELIMITER].value);
    if (f[K_TARGET].value)
        check_selectors(v, f[K_TARGET].value, "target", dd->target, &dd->n_target);
    if (f[K_IGNORE].value)
        check_selectors(v, f[K_IGNORE].value, "ignore", dd->ignore, &dd->n_ignore);
}

/* Whether the loss is multi-label binary cross-entropy: a sigmoid output
 * layer of 2 or more units, each a label 0/1 of its own (real-valued
 * targets, like mse's, that must be 0 or 1). */
int dnv_multilabel(const vctx *v) {
    return v->layers_ok && v->s->train.loss == DN_LOSS_BINARY_CROSS_ENTROPY &&
           v->s->layers[v->s->n_layers - 1].units >= 2;
}

/* `targets`: classes or values; values by default with loss mse or
 * multi-label binary cross-entropy on csv or npy data. Class labels need a
 * multi-class loss; values need one of those two. */
static void check_targets(vctx *v, const dn_yfield *f, int fmt) {
    static const char *const kinds[] = {"classes", "values"};
    dn_data *dd = &v->s->data;
    int valued = v->s->train.loss == DN_LOSS_MSE || dnv_multilabel(v);
    dd->values = fmt != FMT_IDX && valued;
    if (!f[K_TARGETS].value || dn_yget_enum(v->d, f[K_TARGETS].value, "targets", kinds, 2, &dd->values))
        return;
    if (dd->values && (fmt == FMT_IDX || !valued))
        dn_diag_report(v->d, DN_ERROR, f[K_TARGETS].value->loc, "targets: values needs %s",
                       fmt == FMT_IDX ? "format csv or npy (idx labels are classes)"
                                      : "loss mse (or binary_cross_entropy with 2 or more sigmoid units: multi-label)");
}

/* Class labels come from one column; multi-label targets from as many
 * columns as the output layer has units (n_target 0 means the last column). */
static void check_target_columns(vctx *v, const dn_ynode *map, const dn_yfield *f) {
    const dn_data *dd = &v->s->data;
    if (!dd->values && dd->n_target > 1)
        dn_diag_report(v->d, DN_ERROR, f[K_TARGET].value->loc,
                       "class labels come from one target column, got %d (several need targets: values and loss mse, "
                       "or binary_cross_entropy with as many sigmoid units)",
                       dd->n_target);
    if (!dd->values || !dnv_multilabel(v))
        return;
    int units = v->s->layers[v->s->n_layers - 1].units;
    if (!f[K_TARGET].value)
        dn_diag_report(v->d, DN_ERROR, map->loc,
                       "multi-label binary_cross_entropy with %d output units needs `target` listing %d columns "
                       "(one 0/1 label each); without it the target is the last column alone", units, units);
    else if (dd->n_target != units)
        dn_diag_report(v->d, DN_ERROR, f[K_TARGET].value->loc,
                       "multi-label binary_cross_entropy with %d output units needs `target` listing %d columns "
                       "(one 0/1 label each), got %d", units, units, dd->n_target);
}

void dnv_check_data(vctx *v, const dn_ynode *n) {
    dn_yfield f[COUNT(data_keys)];
    int fmt = FMT_IDX;
    if (dn_ymap_fields(v->d, n, "in data", data_keys, COUNT(data_keys), f))
        return;
    if (f[K_FORMAT].value &&
        dn_yget_enum(v->d, f[K_FORMAT].value, "data format", formats, COUNT(formats), &fmt) == 0)
        memcpy(v->s->data.format, formats[fmt], strlen(formats[fmt]) + 1);
    check_format_keys(v, f, fmt);
    if (fmt == FMT_IDX && f[K_DIR].value)
        dn_yget_string(v->d, f[K_DIR].value, "dir", v->s->data.dir, sizeof v->s->data.dir, 0);
    if (fmt != FMT_IDX) {
        v->s->data.dir[0] = '\0';
        v->s->data.delimiter = ',';
        check_files(v, n, f, fmt);
    }
    if (fmt == FMT_CSV)
        check_csv(v, f);
    if (f[K_NORMALIZE].value)
        check_normalize(v, f[K_NORMALIZE].value, fmt);
    check_targets(v, f, fmt);
    if (fmt == FMT_CSV)
        check_target_columns(v, n, f);
}
