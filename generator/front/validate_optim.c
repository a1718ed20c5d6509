/* validate_optim.c - the training section's optimizer, learning-rate
 * schedule and gradient clipping (`train.optimizer`, `train.schedule`,
 * `train.clip_grad_norm`). Each key applies to some types only; a key given
 * to a type that does not read it is an error at the key, naming the keys
 * that type takes. Ranges follow torch.optim's own checks where PyTorch has
 * them (nesterov needs momentum > 0 and dampening 0) and are the sensible
 * range elsewhere (docs/spec.md#optimizer, #schedule). */
#include <string.h>

#include "validate.h"

static const char *const opt_names[] = {
#define X(e, s) s,
    DN_OPTIMIZERS(X)
#undef X
};

static const char *const sched_names[] = {
#define X(e, s) s,
    DN_SCHEDULES(X)
#undef X
};

const char *dn_opt_name(dn_opt o) {
    return (unsigned)o < DN_OPT_COUNT ? opt_names[o] : "invalid";
}

const char *dn_sched_name(dn_sched_kind k) {
    return (unsigned)k < DN_SCHED_KIND_COUNT ? sched_names[k] : "invalid";
}

/* Reports every present field whose bit is clear in `allowed` (bit i = keys[i]):
 * "momentum does not apply to optimizer adam (its keys: ...)". Returns the
 * number reported. */
static int reject_foreign(vctx *v, const dn_yfield *f, const char *const *keys, size_t n,
                          unsigned allowed, const char *what, const char *type) {
    char list[256];
    size_t len = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n && len < sizeof list; i++)
        if (allowed >> i & 1u)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "", keys[i]);
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        if (f[i].key && !(allowed >> i & 1u)) {
            dn_diag_report(v->d, DN_ERROR, f[i].key->loc, "%s does not apply to %s %s (its keys: %s)",
                           keys[i], what, type, list);
            bad++;
        }
    return bad;
}

/* ---- optimizer ---------------------------------------------------------- */

enum { OK_TYPE, OK_LR, OK_BETAS, OK_EPS, OK_WD, OK_MOMENTUM, OK_DAMPENING, OK_NESTEROV, OK_ALPHA,
       OK_CENTERED, OK_COUNT };
static const char *const opt_keys[OK_COUNT] = {"type",     "lr",        "betas",    "eps",   "weight_decay",
                                               "momentum", "dampening", "nesterov", "alpha", "centered"};
#define BIT(k) (1u << (k))
/* The keys each optimizer reads (a type added to DN_OPTIMIZERS needs its line). */
static const unsigned opt_allowed[DN_OPT_COUNT] = {
    [DN_OPT_ADAM] = BIT(OK_TYPE) | BIT(OK_LR) | BIT(OK_BETAS) | BIT(OK_EPS) | BIT(OK_WD),
    [DN_OPT_ADAMW] = BIT(OK_TYPE) | BIT(OK_LR) | BIT(OK_BETAS) | BIT(OK_EPS) | BIT(OK_WD),
    [DN_OPT_SGD] = BIT(OK_TYPE) | BIT(OK_LR) | BIT(OK_MOMENTUM) | BIT(OK_DAMPENING) | BIT(OK_NESTEROV) |
                   BIT(OK_WD),
    [DN_OPT_RMSPROP] = BIT(OK_TYPE) | BIT(OK_LR) | BIT(OK_ALPHA) | BIT(OK_EPS) | BIT(OK_MOMENTUM) |
                       BIT(OK_CENTERED) | BIT(OK_WD),
};

/* `betas: [b1, b2]`, each in [0, 1). */
static void check_betas(vctx *v, const dn_ynode *n, dn_optimizer *o) {
    if (dn_yexpect(v->d, n, DN_Y_SEQ))
        return;
    if (n->n_items != 2) {
        dn_diag_report(v->d, DN_ERROR, n->loc, "betas must have exactly 2 numbers, got %zu",
                       n->n_items);
        return;
    }
    dnv_get_fraction(v, n->items[0], "betas[0]", &o->beta1);
    dnv_get_fraction(v, n->items[1], "betas[1]", &o->beta2);
}

/* true or false into *out. */
static int get_flag(vctx *v, const dn_ynode *n, const char *what, int *out) {
    static const char *const flags[] = {"false", "true"};
    return dn_yget_enum(v->d, n, what, flags, COUNT(flags), out);
}

/* A number in [0, 1] ("dampening must be in [0, 1], got 2"). */
static int get_unit(vctx *v, const dn_ynode *n, const char *key, double *out) {
    char q[DN_YTEXT_BUF];
    double x;
    if (dn_yget_number(v->d, n, key, &x))
        return -1;
    if (!(x >= 0.0 && x <= 1.0)) {
        dn_diag_report(v->d, DN_ERROR, n->loc, "%s must be in [0, 1], got %s", key, dnv_raw(n, q));
        return -1;
    }
    *out = x;
    return 0;
}

/* The values of the keys that apply to o->type (reject_foreign passed). */
static void read_optimizer_values(vctx *v, const dn_yfield *f, dn_optimizer *o) {
    char q[DN_YTEXT_BUF];
    double warn_lr = o->type == DN_OPT_SGD ? 1.0 : 0.1; /* SGD commonly runs at 0.1 */
    if (f[OK_LR].value && dnv_get_positive(v, f[OK_LR].value, "lr", 1, &o->lr) == 0 && o->lr > warn_lr)
        dn_diag_report(v->d, DN_WARNING, f[OK_LR].value->loc, "lr %s is unusually high",
                       dnv_raw(f[OK_LR].value, q));
    if (f[OK_BETAS].value)
        check_betas(v, f[OK_BETAS].value, o);
    if (f[OK_EPS].value)
        dnv_get_positive(v, f[OK_EPS].value, "eps", 1, &o->eps);
    if (f[OK_WD].value)
        dnv_get_positive(v, f[OK_WD].value, "weight_decay", 0, &o->weight_decay);
    if (f[OK_MOMENTUM].value)
        dnv_get_fraction(v, f[OK_MOMENTUM].value, "momentum", &o->momentum);
    if (f[OK_DAMPENING].value)
        get_unit(v, f[OK_DAMPENING].value, "dampening", &o->dampening);
    if (f[OK_NESTEROV].value)
        get_flag(v, f[OK_NESTEROV].value, "nesterov value", &o->nesterov);
    if (f[OK_ALPHA].value)
        get_unit(v, f[OK_ALPHA].value, "alpha", &o->alpha);
    if (f[OK_CENTERED].value)
        get_flag(v, f[OK_CENTERED].value, "centered value", &o->centered);
}

/* torch.optim.SGD's rule: "Nesterov momentum requires a momentum and zero dampening". */
static void check_nesterov(vctx *v, const dn_yfield *f, const dn_optimizer *o) {
    if (o->type != DN_OPT_SGD || !o->nesterov)
        return;
    if (o->momentum <= 0.0)
        dn_diag_report(v->d, DN_ERROR, f[OK_NESTEROV].value->loc,
                       "nesterov needs momentum > 0 (momentum is %g)", o->momentum);
    if (o->dampening != 0.0)
        dn_diag_report(v->d, DN_ERROR, f[OK_NESTEROV].value->loc,
                       "nesterov needs dampening 0 (dampening is %g)", o->dampening);
}

void dnv_check_optimizer(vctx *v, const dn_ynode *n, dn_optimizer *o) {
    dn_yfield f[OK_COUNT];
    int t, type_ok = 0;
    if (n->kind == DN_Y_SCALAR) {
        type_ok = dn_yget_enum(v->d, n, "optimizer", opt_names, COUNT(opt_names), &t) == 0;
    } else {
        if (dn_ymap_fields(v->d, n, "in optimizer", opt_keys, COUNT(opt_keys), f))
            return;
        t = DN_OPT_ADAM;
        type_ok = !f[OK_TYPE].value || dn_yget_enum(v->d, f[OK_TYPE].value, "optimizer", opt_names,
                                                    COUNT(opt_names), &t) == 0;
    }
    if (!type_ok)
        return; /* which keys apply is unknown */
    o->type = (dn_opt)t;
    if (o->type == DN_OPT_SGD || o->type == DN_OPT_RMSPROP)
        o->lr = 0.01; /* RMSprop's default in PyTorch; SGD has none there */
    if (n->kind == DN_Y_SCALAR)
        return;
    if (reject_foreign(v, f, opt_keys, OK_COUNT, opt_allowed[o->type], "optimizer", dn_opt_name(o->type)))
        return;
    read_optimizer_values(v, f, o);
    check_nesterov(v, f, o);
}

/* ---- schedule ----------------------------------------------------------- */

enum { SK_TYPE, SK_STEP_SIZE, SK_GAMMA, SK_WARMUP, SK_MIN_LR, SK_FACTOR, SK_PATIENCE, SK_METRIC,
       SK_THRESHOLD, SK_COOLDOWN, SK_COUNT };
static const char *const sched_keys[SK_COUNT] = {"type",    "step_size", "gamma",  "warmup_steps",
                                                 "min_lr",  "factor",    "patience", "metric",
                                                 "threshold", "cooldown"};
/* The keys each schedule reads, and those it requires. */
static const unsigned sched_allowed[DN_SCHED_KIND_COUNT] = {
    [DN_SCHED_KIND_NONE] = BIT(SK_TYPE),
    [DN_SCHED_KIND_STEP] = BIT(SK_TYPE) | BIT(SK_STEP_SIZE) | BIT(SK_GAMMA),
    [DN_SCHED_KIND_EXPONENTIAL] = BIT(SK_TYPE) | BIT(SK_GAMMA),
    [DN_SCHED_KIND_COSINE] = BIT(SK_TYPE) | BIT(SK_WARMUP) | BIT(SK_MIN_LR),
    [DN_SCHED_KIND_PLATEAU] = BIT(SK_TYPE) | BIT(SK_FACTOR) | BIT(SK_PATIENCE) | BIT(SK_METRIC) |
                              BIT(SK_THRESHOLD) | BIT(SK_COOLDOWN) | BIT(SK_MIN_LR),
};
static const unsigned sched_required[DN_SCHED_KIND_COUNT] = {
    [DN_SCHED_KIND_NONE] = BIT(SK_TYPE),
    [DN_SCHED_KIND_STEP] = BIT(SK_TYPE) | BIT(SK_STEP_SIZE),
    [DN_SCHED_KIND_EXPONENTIAL] = BIT(SK_TYPE) | BIT(SK_GAMMA),
    [DN_SCHED_KIND_COSINE] = BIT(SK_TYPE),
    [DN_SCHED_KIND_PLATEAU] = BIT(SK_TYPE),
};

/* A number in (0, 1) ("factor must be in (0, 1), got 1"). */
static int get_open_unit(vctx *v, const dn_ynode *n, const char *key, double *out) {
    char q[DN_YTEXT_BUF];
    double x;
    if (dn_yget_number(v->d, n, key, &x))
        return -1;
    if (!(x > 0.0 && x < 1.0)) {
        dn_diag_report(v->d, DN_ERROR, n->loc, "%s must be in (0, 1), got %s", key, dnv_raw(n, q));
        return -1;
    }
    *out = x;
    return 0;
}

/* The values of the keys that apply to s->type. */
static void read_schedule_values(vctx *v, const dn_yfield *f, dn_schedule *s) {
    static const char *const metrics[] = {"loss", "accuracy"};
    long long w;
    if (f[SK_STEP_SIZE].value)
        dnv_get_int(v, f[SK_STEP_SIZE].value, "step_size", 1, 1000000, &s->step_size);
    if (f[SK_GAMMA].value)
        get_open_unit(v, f[SK_GAMMA].value, "gamma", &s->gamma);
    if (f[SK_WARMUP].value &&
        dn_yget_int(v->d, f[SK_WARMUP].value, "warmup_steps", 0, (long long)1 << 40, &w) == 0)
        s->warmup_steps = w;
    if (f[SK_MIN_LR].value)
        dnv_get_positive(v, f[SK_MIN_LR].value, "min_lr", 0, &s->min_lr);
    if (f[SK_FACTOR].value)
        get_open_unit(v, f[SK_FACTOR].value, "factor", &s->factor);
    if (f[SK_PATIENCE].value)
        dnv_get_int(v, f[SK_PATIENCE].value, "patience", 0, 1000000, &s->patience);
    if (f[SK_METRIC].value)
        dn_yget_enum(v->d, f[SK_METRIC].value, "metric", metrics, COUNT(metrics), &s->metric_acc);
    if (f[SK_THRESHOLD].value)
        dnv_get_fraction(v, f[SK_THRESHOLD].value, "threshold", &s->threshold);
    if (f[SK_COOLDOWN].value)
        dnv_get_int(v, f[SK_COOLDOWN].value, "cooldown", 0, 1000000, &s->cooldown);
}

void dnv_check_schedule(vctx *v, const dn_ynode *n, double lr, dn_schedule *s) {
    dn_yfield f[SK_COUNT];
    int t;
    if (dn_ymap_fields(v->d, n, "in schedule", sched_keys, COUNT(sched_keys), f))
        return;
    if (dn_yrequire(v->d, n, &f[SK_TYPE], "type", "in schedule") ||
        dn_yget_enum(v->d, f[SK_TYPE].value, "schedule", sched_names, COUNT(sched_names), &t))
        return;
    s->type = (dn_sched_kind)t;
    if (reject_foreign(v, f, sched_keys, SK_COUNT, sched_allowed[t], "schedule", sched_names[t]))
        return;
    for (int k = 1; k < SK_COUNT; k++)
        if (sched_required[t] >> k & 1u)
            dn_yrequire(v->d, n, &f[k], sched_keys[k], "in schedule");
    read_schedule_values(v, f, s);
    if (f[SK_MIN_LR].value && s->min_lr >= lr)
        dn_diag_report(v->d, DN_ERROR, f[SK_MIN_LR].value->loc, "min_lr must be below lr (%g), got %g",
                       lr, s->min_lr);
}
