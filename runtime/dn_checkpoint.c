/* dn_checkpoint.c - model-aware checkpoints on top of the safetensors API.
 *
 * A checkpoint holds the weights under their PyTorch state_dict names and
 * shapes ([out, in] weights, [out] biases; batch norm's weight, bias,
 * running_mean and running_var as <layer>_bn.*), so
 *   model.load_state_dict(safetensors.torch.load_file(path), strict=False)
 * works. A full training state adds the optimizer's state of the
 * parameters under PyTorch's names (dn_ckpt_opt_buf_name) as
 *   optimizer.exp_avg.<name>, optimizer.exp_avg_sq.<name>       (Adam, AdamW)
 *   optimizer.momentum_buffer.<name>                            (SGD, momentum)
 *   optimizer.square_avg.<name> [, .momentum_buffer, .grad_avg] (RMSprop)
 * and the run's position, settings and schedule state as metadata (see
 * dn_cp_add_state_meta).
 * With early stopping it also holds the best epoch's weights as
 *   best.<name>
 * and the best-so-far bookkeeping as metadata.
 */
#include "dn_runtime.h"
#include "dn_train.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DN_CP_FORMAT "dngen-checkpoint-1"
#define DN_CP_OPTIMIZER "optimizer."
#define DN_CP_BEST "best."
#define DN_CP_MAX_META 48
#define DN_CP_META_VALUE 48

/* Formats one error line into err (DN_ERR_MAX bytes). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static void dn_cp_errf(char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, DN_ERR_MAX, fmt, ap);
    va_end(ap);
}

/* ---- saving ---------------------------------------------------------------- */

/* Metadata under construction; values that are not static strings live in
 * buf. */
typedef struct {
    dn_st_meta items[DN_CP_MAX_META];
    char buf[DN_CP_MAX_META][DN_CP_META_VALUE];
    int n;
} dn_cp_meta;

/* Appends key = static string value. */
static void dn_cp_meta_str(dn_cp_meta *mt, const char *key, const char *value) {
    mt->items[mt->n].key = key;
    mt->items[mt->n].value = value;
    mt->n++;
}

/* Appends key = formatted value. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static void dn_cp_meta_fmt(dn_cp_meta *mt, const char *key, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(mt->buf[mt->n], DN_CP_META_VALUE, fmt, ap);
    va_end(ap);
    dn_cp_meta_str(mt, key, mt->buf[mt->n]);
}

/* The optimizer's name as the metadata spells it. */
static const char *dn_cp_optimizer_name(const dn_train_state *st) {
    if (st->optim.type == DN_OPTIM_SGD)
        return "sgd";
    if (st->optim.type == DN_OPTIM_RMSPROP)
        return "rmsprop";
    return st->adam.decoupled ? "adamw" : "adam";
}

const char *dn_ckpt_opt_buf_name(const dn_train_state *st, int slot) {
    const dn_optim *o = &st->optim;
    if (o->type == DN_OPTIM_SGD)
        return slot == 0 && o->momentum != 0.0f ? "momentum_buffer" : NULL;
    if (o->type == DN_OPTIM_RMSPROP) {
        if (slot == 0)
            return o->momentum > 0.0f ? "momentum_buffer" : NULL;
        return slot == 1 ? "square_avg" : o->centered ? "grad_avg" : NULL;
    }
    return slot == 0 ? "exp_avg" : slot == 1 ? "exp_avg_sq" : NULL;
}

/* The optimizer's settings and the schedule's state: the keys its type
 * reads (floats %.9g), the lr in effect (%.17g) and, once a plateau
 * schedule has a best metric, its bookkeeping. */
static void dn_cp_add_optimizer_meta(dn_cp_meta *mt, const dn_train_state *st) {
    const dn_optim *o = &st->optim;
    dn_cp_meta_str(mt, "optimizer", dn_cp_optimizer_name(st));
    dn_cp_meta_fmt(mt, "lr", "%.9g", (double)st->adam.lr);
    if (o->type == DN_OPTIM_ADAM) {
        dn_cp_meta_fmt(mt, "beta1", "%.9g", (double)st->adam.beta1);
        dn_cp_meta_fmt(mt, "beta2", "%.9g", (double)st->adam.beta2);
    } else {
        dn_cp_meta_fmt(mt, "momentum", "%.9g", (double)o->momentum);
        dn_cp_meta_fmt(mt, "dampening", "%.9g", (double)o->dampening);
        dn_cp_meta_fmt(mt, "alpha", "%.9g", (double)o->alpha);
        dn_cp_meta_fmt(mt, "nesterov", "%d", o->nesterov ? 1 : 0);
        dn_cp_meta_fmt(mt, "centered", "%d", o->centered ? 1 : 0);
    }
    dn_cp_meta_fmt(mt, "eps", "%.9g", (double)st->adam.eps);
    dn_cp_meta_fmt(mt, "weight_decay", "%.9g", (double)st->adam.weight_decay);
    dn_cp_meta_fmt(mt, "lr_now", "%.17g", st->lrs.lr);
    dn_cp_meta_fmt(mt, "schedule_epochs", "%" PRId64, st->lrs.epochs);
    if (st->lrs.has_best)
        dn_cp_meta_fmt(mt, "plateau_best", "%.17g", st->lrs.best);
    dn_cp_meta_fmt(mt, "plateau_bad_epochs", "%" PRId64, st->lrs.bad_epochs);
    dn_cp_meta_fmt(mt, "plateau_cooldown", "%" PRId64, st->lrs.cooldown_left);
}

/* Adds the training-state keys. Floats use %.9g and doubles %.17g, which
 * read back bit-exactly. */
static void dn_cp_add_state_meta(dn_cp_meta *mt, const dn_train_state *st) {
    dn_cp_meta_fmt(mt, "step", "%" PRId64, st->step);
    dn_cp_meta_fmt(mt, "epoch", "%" PRId64, st->epoch);
    dn_cp_meta_fmt(mt, "batch", "%" PRId64, st->batch);
    dn_cp_meta_fmt(mt, "seed", "%" PRIu64, st->seed);
    dn_cp_meta_fmt(mt, "batch_size", "%d", st->batch_size);
    dn_cp_meta_fmt(mt, "shuffle", "%d", st->shuffle ? 1 : 0);
    dn_cp_meta_fmt(mt, "n_train", "%" PRIu32, st->n_train);
    dn_cp_meta_fmt(mt, "epoch_loss_sum", "%.17g", st->loss_sum);
    dn_cp_meta_fmt(mt, "epoch_correct", "%" PRId64, st->correct);
    dn_cp_meta_fmt(mt, "epoch_seen", "%" PRId64, st->seen);
    dn_cp_add_optimizer_meta(mt, st);
    dn_cp_meta_fmt(mt, "val_split", "%.17g", st->val_split);
    if (st->patience > 0) {
        dn_cp_meta_fmt(mt, "early_stopping", "%d", st->patience);
        dn_cp_meta_fmt(mt, "best_epoch", "%" PRId64, st->best_epoch);
        dn_cp_meta_fmt(mt, "best_val_acc", "%.17g", st->best_val_acc);
        dn_cp_meta_fmt(mt, "epochs_since_best", "%" PRId64, st->since_best);
    }
}

/* Describes tensor ti under name `name`, with its data (PyTorch layout) at data. */
static dn_st_tensor dn_cp_tensor(const dn_tensor_info *ti, const char *name, const float *data) {
    dn_st_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.ndim = ti->ndim;
    for (int d = 0; d < ti->ndim && d < 4; d++)
        t.shape[d] = ti->shape[d];
    t.data = data;
    return t;
}

/* The model's tensors from parameter-layout buffer buf, in PyTorch layout,
 * one after another into canon (dn_model_tensor_count floats). */
static void dn_cp_export(const dn_model *m, const float *buf, float *canon) {
    for (int k = 0; k < m->n_tensors; k++) {
        dn_tensor_export(&m->tensors[k], buf, canon);
        canon += m->tensors[k].count;
    }
}

/* Builds "<prefix><name>" for every model tensor into one malloc'd block;
 * names[k] points into it. Returns the block, or NULL when out of memory. */
static char *dn_cp_prefixed_names(const dn_model *m, const char *prefix, const char **names) {
    size_t total = 0, plen = strlen(prefix);
    for (int k = 0; k < m->n_tensors; k++)
        total += plen + strlen(m->tensors[k].name) + 1;
    char *block = malloc(total ? total : 1);
    if (!block)
        return NULL;
    char *p = block;
    for (int k = 0; k < m->n_tensors; k++) {
        size_t len = strlen(m->tensors[k].name);
        memcpy(p, prefix, plen);
        memcpy(p + plen, m->tensors[k].name, len + 1);
        names[k] = p;
        p += plen + len + 1;
    }
    return block;
}

/* Appends the model's tensors (with params_only, its parameters: no state
 * tensors, which have no optimizer moments), named "<prefix><name>", with
 * data from canon (as dn_cp_export leaves it) to t (at *n) and their names
 * to names (at *n on entry). Returns the names' block (to free) or NULL
 * when out of memory. */
static char *dn_cp_add_group(const dn_model *m, const char *prefix, int params_only, const float *canon,
                             dn_st_tensor *t, const char **names, int *n) {
    int nt = m->n_tensors, first = *n;
    const char **own = names + first;
    char *block = dn_cp_prefixed_names(m, prefix, own);
    for (int k = 0; block && k < nt; k++) {
        if (!(params_only && m->tensors[k].state))
            t[(*n)++] = dn_cp_tensor(&m->tensors[k], own[k], canon);
        canon += m->tensors[k].count;
    }
    return block;
}

/* Table data (CSV, NPY): the feature scaling as tensors data.shift and
 * data.scale, the class names as metadata class_names. Returns the
 * metadata value to free after the write (NULL: none). */
static char *dn_cp_add_data(const dn_data_info *d, dn_st_tensor *t, int *n, dn_cp_meta *mt) {
    if (!d)
        return NULL;
    dn_st_tensor shift = {"data.shift", 1, {(int64_t)d->features, 0, 0, 0}, d->shift};
    dn_st_tensor scale = {"data.scale", 1, {(int64_t)d->features, 0, 0, 0}, d->scale};
    t[(*n)++] = shift;
    t[(*n)++] = scale;
    char *names = d->n_classes ? dn_data_names_encode(d->class_names, d->n_classes) : NULL;
    if (names)
        dn_cp_meta_str(mt, "class_names", names);
    return names;
}

/* The groups of tensors a checkpoint holds, in file order: the weights,
 * the optimizer buffers in use, the best weights; their data and prefixes.
 * Returns the count. */
static int dn_cp_groups(const float *params, const dn_opt_bufs *ob, const float *best,
                        const dn_train_state *st, const float **data, char (*prefix)[48], int *params_only) {
    int n = 0;
    data[n] = params;
    prefix[n][0] = '\0';
    params_only[n++] = 0;
    for (int s = 0; st && ob && s < DN_OPT_BUFS; s++) {
        const char *name = dn_ckpt_opt_buf_name(st, s);
        if (!name)
            continue;
        data[n] = ob->b[s];
        snprintf(prefix[n], sizeof prefix[n], "%s%s.", DN_CP_OPTIMIZER, name);
        params_only[n++] = 1;
    }
    if (st && st->patience > 0 && best) {
        data[n] = best;
        snprintf(prefix[n], sizeof prefix[n], "%s", DN_CP_BEST);
        params_only[n++] = 0;
    }
    return n;
}

int dn_ckpt_save(const dn_model *m, const char *path, const float *params, const dn_opt_bufs *ob,
                 const float *best, const dn_train_state *st, char *err) {
    enum { MAX_GROUPS = DN_OPT_BUFS + 2 };
    const float *data[MAX_GROUPS];
    char prefix[MAX_GROUPS][48];
    int params_only[MAX_GROUPS];
    int nt = m->n_tensors, n = nt;
    int n_groups = dn_cp_groups(params, ob, best, st, data, prefix, params_only);
    size_t per = dn_model_tensor_count(m);
    dn_st_tensor *t = calloc((size_t)nt * MAX_GROUPS + 2, sizeof *t); /* + data.shift, data.scale */
    const char **names = calloc((size_t)nt * MAX_GROUPS + 1, sizeof *names);
    float *canon = malloc(((size_t)n_groups * per + 1) * sizeof *canon);
    char *blocks[MAX_GROUPS] = {NULL}, *names_meta = NULL;
    int rc = -1;
    if (!t || !names || !canon)
        goto oom;
    for (int g = 0; g < n_groups; g++)
        dn_cp_export(m, data[g], canon + (size_t)g * per);
    const float *c = canon;
    for (int k = 0; k < nt; k++) {
        t[k] = dn_cp_tensor(&m->tensors[k], m->tensors[k].name, c);
        c += m->tensors[k].count;
    }
    for (int g = 1; g < n_groups; g++)
        if (!(blocks[g] = dn_cp_add_group(m, prefix[g], params_only[g], canon + (size_t)g * per, t,
                                          names, &n)))
            goto oom;
    dn_cp_meta mt;
    mt.n = 0;
    dn_cp_meta_str(&mt, "format", DN_CP_FORMAT);
    dn_cp_meta_str(&mt, "dngen_version", m->dngen_version);
    dn_cp_meta_str(&mt, "model", m->name);
    dn_cp_meta_str(&mt, "spec_hash", m->spec_hash);
    if (st)
        dn_cp_add_state_meta(&mt, st);
    names_meta = dn_cp_add_data(dn_data_info_current(), t, &n, &mt);
    rc = dn_st_write(path, t, n, mt.items, mt.n, err);
    goto done;
oom:
    dn_cp_errf(err, "%s: out of memory while preparing the checkpoint", path);
done:
    free(names_meta);
    for (int g = 0; g < MAX_GROUPS; g++)
        free(blocks[g]);
    free(canon);
    free(names);
    free(t);
    return rc;
}

/* ---- loading --------------------------------------------------------------- */

/* Index of the model tensor called name, or -1. */
static int dn_cp_model_tensor(const dn_model *m, const char *name) {
    for (int k = 0; k < m->n_tensors; k++)
        if (strcmp(m->tensors[k].name, name) == 0)
            return k;
    return -1;
}

/* A list of tensor names for an error message: "'a', 'b', ...". */
typedef struct {
    char text[DN_ERR_MAX / 2];
    int count;
} dn_cp_names;

/* Adds 'name' to the list; once the text is full, it ends with ", ...". */
static void dn_cp_names_add(dn_cp_names *l, const char *name) {
    size_t len = l->count ? strlen(l->text) : 0, cap = sizeof l->text;
    if (l->count++ == 0)
        l->text[0] = '\0';
    if (len >= 3 && strcmp(l->text + len - 3, "...") == 0)
        return;
    int w = snprintf(l->text + len, cap - len, "%s'%s'", len ? ", " : "", name);
    if (w < 0 || (size_t)w >= cap - len - 5)
        snprintf(l->text + len, cap - len, "%s...", len ? ", " : "");
}

/* Fails, naming them, when the file has tensors that are neither model
 * tensors nor optimizer.* or best.* entries. */
static int dn_cp_check_unknown(const dn_model *m, const dn_st_file *f, const char *path, char *err) {
    dn_cp_names bad = {.count = 0};
    int n = dn_st_count(f);
    for (int i = 0; i < n; i++) {
        const char *name = dn_st_get(f, i)->name;
        if (dn_cp_model_tensor(m, name) < 0 && strncmp(name, "optimizer.", 10) != 0 &&
            strncmp(name, "data.", 5) != 0 &&
            strncmp(name, DN_CP_BEST, strlen(DN_CP_BEST)) != 0)
            dn_cp_names_add(&bad, name);
    }
    if (!bad.count)
        return 0;
    dn_cp_errf(err, "%s: unexpected tensor%s %s (not %s of model '%s')", path,
            bad.count > 1 ? "s" : "", bad.text, bad.count > 1 ? "parameters" : "a parameter",
            m->name);
    return -1;
}

/* Formats a shape as "[a, b]". */
static void dn_cp_shape_text(const int64_t *shape, int ndim, char *buf, size_t cap) {
    size_t len = 0;
    buf[len++] = '[';
    for (int d = 0; d < ndim && len < cap; d++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%" PRId64, d ? ", " : "", shape[d]);
    if (len + 2 <= cap) {
        buf[len++] = ']';
        buf[len] = '\0';
    } else {
        buf[cap - 1] = '\0';
    }
}

/* Checks dtype and shape of file tensor `in` against model tensor ti. */
static int dn_cp_check_tensor(const dn_tensor_info *ti, const dn_st_info *in, const char *path,
                           char *err) {
    if (strcmp(in->dtype, "F32") != 0) {
        dn_cp_errf(err, "%s: tensor '%s' has dtype %s, model expects F32", path, in->name, in->dtype);
        return -1;
    }
    int same = in->ndim == ti->ndim;
    for (int d = 0; same && d < ti->ndim; d++)
        same = in->shape[d] == ti->shape[d];
    if (!same) {
        char have[160], want[64];
        dn_cp_shape_text(in->shape, in->ndim < 8 ? in->ndim : 8, have, sizeof have);
        dn_cp_shape_text(ti->shape, ti->ndim, want, sizeof want);
        dn_cp_errf(err, "%s: tensor '%s' has shape %s, model expects %s", path, in->name, have, want);
        return -1;
    }
    if (in->nbytes != ti->count * 4) {
        dn_cp_errf(err, "%s: tensor '%s' holds %zu bytes, expected %zu", path, in->name, in->nbytes,
                ti->count * 4);
        return -1;
    }
    return 0;
}

/* Stores tensor ti from count little-endian F32 values at possibly
 * unaligned src into the parameter buffer buf (padding zeroed). */
static void dn_cp_import_f32le(const dn_tensor_info *ti, float *buf, const void *src) {
    const unsigned char *p = src;
    memset(buf + ti->offset, 0, ti->stored * sizeof *buf);
    for (size_t e = 0; e < ti->count; e++, p += 4) {
        uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24;
        memcpy(&buf[dn_tensor_index(ti, e)], &u, 4);
    }
}

/* Loads every model tensor (with params_only, every parameter), named
 * "<prefix><name>", into the parameter buffer buf. Missing tensors are
 * reported together. */
static int dn_cp_load_group(const dn_model *m, const dn_st_file *f, const char *path,
                         const char *prefix, int params_only, float *buf, char *err) {
    char name[512];
    dn_cp_names missing = {.count = 0};
    for (int k = 0; k < m->n_tensors; k++) {
        if (params_only && m->tensors[k].state)
            continue;
        snprintf(name, sizeof name, "%s%s", prefix, m->tensors[k].name);
        if (!dn_st_find(f, name))
            dn_cp_names_add(&missing, name);
    }
    if (missing.count) {
        dn_cp_errf(err, "%s: missing tensor%s %s", path, missing.count > 1 ? "s" : "", missing.text);
        return -1;
    }
    for (int k = 0; k < m->n_tensors; k++) {
        if (params_only && m->tensors[k].state)
            continue;
        snprintf(name, sizeof name, "%s%s", prefix, m->tensors[k].name);
        const dn_st_info *in = dn_st_find(f, name);
        if (dn_cp_check_tensor(&m->tensors[k], in, path, err) != 0)
            return -1;
        dn_cp_import_f32le(&m->tensors[k], buf, in->data);
    }
    return 0;
}

/* Compares the file's spec_hash with the model's. A mismatch (or, when
 * strict, an absent hash) is an error when strict, else a warning. */
static int dn_cp_check_hash(const dn_model *m, const dn_st_file *f, const char *path, int strict,
                         char *warn, char *err) {
    const char *hash = dn_st_meta_get(f, "spec_hash");
    const char *model = dn_st_meta_get(f, "model");
    if (!hash) {
        if (!strict)
            return 0;
        dn_cp_errf(err, "%s: no 'spec_hash' metadata; not a checkpoint written by a dngen trainer",
                path);
        return -1;
    }
    if (strcmp(hash, m->spec_hash) == 0 || (!strict && !warn))
        return 0;
    dn_cp_errf(strict ? err : warn,
            "%s: written by model '%s' with spec hash %s, this trainer's spec hash is %s%s", path,
            model ? model : "?", hash, m->spec_hash,
            strict ? "; a run can only be resumed by the trainer that saved it" : "");
    return strict ? -1 : 0;
}

/* Reads metadata key as a whole decimal integer in [lo, hi]. */
static int dn_cp_meta_i64(const dn_st_file *f, const char *path, const char *key, int64_t lo,
                       int64_t hi, int64_t *v, char *err) {
    const char *s = dn_st_meta_get(f, key);
    if (!s) {
        dn_cp_errf(err, "%s: metadata '%s' is missing", path, key);
        return -1;
    }
    int64_t x;
    if (dn_parse_i64(s, &x) != 0 || x < lo || x > hi) {
        dn_cp_errf(err, "%s: metadata '%s' is '%s', expected an integer in [%" PRId64 ", %" PRId64 "]",
                path, key, s, lo, hi);
        return -1;
    }
    *v = x;
    return 0;
}

/* Reads metadata key as a finite number. */
static int dn_cp_meta_f64(const dn_st_file *f, const char *path, const char *key, double *v,
                       char *err) {
    const char *s = dn_st_meta_get(f, key);
    if (!s) {
        dn_cp_errf(err, "%s: metadata '%s' is missing", path, key);
        return -1;
    }
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(x)) {
        dn_cp_errf(err, "%s: metadata '%s' is '%s', expected a finite number", path, key, s);
        return -1;
    }
    *v = x;
    return 0;
}

/* Reads metadata key as an unsigned 64-bit integer (digits only). */
static int dn_cp_meta_u64(const dn_st_file *f, const char *path, const char *key, uint64_t *v,
                       char *err) {
    const char *s = dn_st_meta_get(f, key);
    if (!s) {
        dn_cp_errf(err, "%s: metadata '%s' is missing", path, key);
        return -1;
    }
    if (dn_parse_u64(s, v) != 0) {
        dn_cp_errf(err, "%s: metadata '%s' is '%s', expected an unsigned integer", path, key, s);
        return -1;
    }
    return 0;
}

/* Reads a float setting of the optimizer (metadata key). */
static int dn_cp_meta_float(const dn_st_file *f, const char *path, const char *key, float *v, char *err) {
    double x;
    if (dn_cp_meta_f64(f, path, key, &x, err))
        return -1;
    *v = (float)x;
    return 0;
}

/* Reads the optimizer settings of a training state. */
static int dn_cp_read_optimizer(const dn_st_file *f, const char *path, dn_train_state *st, char *err) {
    static const char *const names[] = {"adam", "adamw", "sgd", "rmsprop"};
    const char *opt = dn_st_meta_get(f, "optimizer");
    int k = 0;
    while (opt && k < 4 && strcmp(opt, names[k]) != 0)
        k++;
    if (!opt || k == 4) {
        dn_cp_errf(err, "%s: metadata 'optimizer' is '%s', expected adam, adamw, sgd or rmsprop", path,
                opt ? opt : "(missing)");
        return -1;
    }
    dn_adam *a = &st->adam;
    dn_optim *o = &st->optim;
    a->decoupled = k == 1;
    o->type = k < 2 ? DN_OPTIM_ADAM : k == 2 ? DN_OPTIM_SGD : DN_OPTIM_RMSPROP;
    if (dn_cp_meta_float(f, path, "lr", &a->lr, err) || dn_cp_meta_float(f, path, "eps", &a->eps, err) ||
        dn_cp_meta_float(f, path, "weight_decay", &a->weight_decay, err))
        return -1;
    o->eps = a->eps;
    o->weight_decay = a->weight_decay;
    if (k < 2)
        return dn_cp_meta_float(f, path, "beta1", &a->beta1, err) ||
                       dn_cp_meta_float(f, path, "beta2", &a->beta2, err)
                   ? -1
                   : 0;
    int64_t nesterov, centered;
    if (dn_cp_meta_float(f, path, "momentum", &o->momentum, err) ||
        dn_cp_meta_float(f, path, "dampening", &o->dampening, err) ||
        dn_cp_meta_float(f, path, "alpha", &o->alpha, err) ||
        dn_cp_meta_i64(f, path, "nesterov", 0, 1, &nesterov, err) ||
        dn_cp_meta_i64(f, path, "centered", 0, 1, &centered, err))
        return -1;
    o->nesterov = (int)nesterov;
    o->centered = (int)centered;
    return 0;
}

/* Reads the schedule's state; checkpoints from before schedules have none
 * and stood at the base lr. */
static int dn_cp_read_schedule(const dn_st_file *f, const char *path, dn_train_state *st, char *err) {
    dn_lr_state *l = &st->lrs;
    memset(l, 0, sizeof *l);
    l->lr = dn_adam_as_typed(st->adam.lr);
    if (!dn_st_meta_get(f, "lr_now"))
        return 0;
    if (dn_cp_meta_f64(f, path, "lr_now", &l->lr, err) ||
        dn_cp_meta_i64(f, path, "schedule_epochs", 0, INT64_MAX, &l->epochs, err) ||
        dn_cp_meta_i64(f, path, "plateau_bad_epochs", 0, INT64_MAX, &l->bad_epochs, err) ||
        dn_cp_meta_i64(f, path, "plateau_cooldown", 0, INT64_MAX, &l->cooldown_left, err))
        return -1;
    l->has_best = dn_st_meta_get(f, "plateau_best") != NULL;
    return l->has_best ? dn_cp_meta_f64(f, path, "plateau_best", &l->best, err) : 0;
}

/* Reads the training-state metadata into *st. */
static int dn_cp_read_state(const dn_st_file *f, const char *path, dn_train_state *st, char *err) {
    int64_t bs, shuffle, n_train;
    if (dn_cp_meta_i64(f, path, "step", 0, INT64_MAX, &st->step, err) ||
        dn_cp_meta_i64(f, path, "epoch", 0, INT64_MAX, &st->epoch, err) ||
        dn_cp_meta_i64(f, path, "batch", 0, INT64_MAX, &st->batch, err) ||
        dn_cp_meta_u64(f, path, "seed", &st->seed, err) ||
        dn_cp_meta_i64(f, path, "batch_size", 1, INT32_MAX, &bs, err) ||
        dn_cp_meta_i64(f, path, "shuffle", 0, 1, &shuffle, err) ||
        dn_cp_meta_i64(f, path, "n_train", 1, UINT32_MAX, &n_train, err) ||
        dn_cp_meta_f64(f, path, "epoch_loss_sum", &st->loss_sum, err) ||
        dn_cp_meta_i64(f, path, "epoch_correct", 0, INT64_MAX, &st->correct, err) ||
        dn_cp_meta_i64(f, path, "epoch_seen", 0, INT64_MAX, &st->seen, err) ||
        dn_cp_read_optimizer(f, path, st, err) || dn_cp_read_schedule(f, path, st, err))
        return -1;
    st->batch_size = (int)bs;
    st->shuffle = (int)shuffle;
    st->n_train = (uint32_t)n_train;
    return 0;
}

/* Reads the optional keys: val_split (0 when absent, as in checkpoints of
 * runs before validation splits) and the early-stopping state. */
static int dn_cp_read_split_state(const dn_st_file *f, const char *path, dn_train_state *st,
                               char *err) {
    st->val_split = 0;
    if (dn_st_meta_get(f, "val_split") &&
        (dn_cp_meta_f64(f, path, "val_split", &st->val_split, err) != 0))
        return -1;
    if (!(st->val_split >= 0 && st->val_split < 1)) {
        dn_cp_errf(err, "%s: metadata 'val_split' is %.17g, expected a number in [0, 1)", path,
                st->val_split);
        return -1;
    }
    st->patience = 0;
    st->best_epoch = st->since_best = 0;
    st->best_val_acc = 0;
    if (!dn_st_meta_get(f, "early_stopping"))
        return 0;
    int64_t patience;
    if (dn_cp_meta_i64(f, path, "early_stopping", 1, INT32_MAX, &patience, err) ||
        dn_cp_meta_i64(f, path, "best_epoch", 0, INT64_MAX, &st->best_epoch, err) ||
        dn_cp_meta_f64(f, path, "best_val_acc", &st->best_val_acc, err) ||
        dn_cp_meta_i64(f, path, "epochs_since_best", 0, INT64_MAX, &st->since_best, err))
        return -1;
    st->patience = (int)patience;
    return 0;
}

/* Loads the optimizer buffers the saved optimizer (st) uses into ob. */
static int dn_cp_load_opt_bufs(const dn_model *m, const dn_st_file *f, const char *path,
                               const dn_opt_bufs *ob, const dn_train_state *st, char *err) {
    for (int s = 0; s < DN_OPT_BUFS; s++) {
        const char *name = dn_ckpt_opt_buf_name(st, s);
        char prefix[48];
        if (!name)
            continue;
        snprintf(prefix, sizeof prefix, "%s%s.", DN_CP_OPTIMIZER, name);
        if (!ob->b[s]) {
            dn_cp_errf(err, "%s: holds the optimizer's %s, which this run has no room for", path, name);
            return -1;
        }
        if (dn_cp_load_group(m, f, path, prefix, 1, ob->b[s], err) != 0)
            return -1;
    }
    return 0;
}

/* Resume-only part: format, state metadata, optimizer buffers and, when
 * the file tracks early stopping and best != NULL, the best weights. */
static int dn_cp_load_resume(const dn_model *m, const dn_st_file *f, const char *path,
                          const dn_opt_bufs *ob, float *best, dn_train_state *st, char *err) {
    const char *format = dn_st_meta_get(f, "format");
    if (!format || strcmp(format, DN_CP_FORMAT) != 0) {
        dn_cp_errf(err, "%s: metadata 'format' is '%s', expected '%s'", path,
                format ? format : "(missing)", DN_CP_FORMAT);
        return -1;
    }
    if (!dn_st_meta_get(f, "step")) {
        dn_cp_errf(err, "%s: holds weights only, not a training state (save one with --checkpoint-every)",
                path);
        return -1;
    }
    if (dn_cp_read_state(f, path, st, err) != 0 || dn_cp_read_split_state(f, path, st, err) != 0 ||
        dn_cp_load_opt_bufs(m, f, path, ob, st, err) != 0)
        return -1;
    if (st->patience > 0 && best && dn_cp_load_group(m, f, path, DN_CP_BEST, 0, best, err) != 0)
        return -1;
    return 0;
}

int dn_ckpt_load(const dn_model *m, const char *path, float *params, const dn_opt_bufs *ob,
                 float *best, dn_train_state *st, char *warn, char *err) {
    int resume = ob != NULL;
    dn_st_file *f = NULL;
    if (warn)
        warn[0] = '\0';
    if (dn_st_open(path, &f, err) != 0)
        return -1;
    int rc = -1;
    if (dn_cp_check_unknown(m, f, path, err) == 0 && dn_cp_load_group(m, f, path, "", 0, params, err) == 0 &&
        dn_cp_check_hash(m, f, path, resume, warn, err) == 0 &&
        (!resume || dn_cp_load_resume(m, f, path, ob, best, st, err) == 0))
        rc = 0;
    dn_st_close(f);
    return rc;
}
