/* validate.c - YAML tree -> validated dn_spec (the front end's last step).
 *
 * One function per section of the spec language (top level, input, layers,
 * train, optimizer, data). Each reports every problem it finds through the
 * dn_diag and keeps going, so one run shows all errors of a file. Rules
 * that span sections (output layer vs loss, parameter layout) run last and
 * only on parts that were valid, so one mistake is not reported twice.
 * A command's overrides (dn_spec_parse_with) take the place of the file's
 * values before a layer is checked, so they meet the same rules here.
 * docs/spec.md describes the language these functions accept. */
#include <stdlib.h>
#include <string.h>

#include "dn_runtime.h"
#include "validate.h"

/* ---- enum spellings ------------------------------------------------------- */

const char *const dnv_act_names[DN_ACT_COUNT] = {
#define X(e, s) s,
    DN_ACTIVATIONS(X)
#undef X
};
static const char *const loss_names[] = {
#define X(e, s) s,
    DN_LOSSES(X)
#undef X
};

const char *const dnv_type_names[DN_LAYER_TYPE_COUNT] = {
#define X(e, s) s,
    DN_LAYER_TYPES(X)
#undef X
};

const char *dn_layer_type_name(dn_layer_type t) {
    return (unsigned)t < DN_LAYER_TYPE_COUNT ? dnv_type_names[t] : "invalid";
}

const char *dn_act_name(dn_act a) {
    return (unsigned)a < DN_ACT_COUNT ? dnv_act_names[a] : "invalid";
}
const char *dn_loss_name(dn_loss l) {
    return (unsigned)l < DN_LOSS_COUNT ? loss_names[l] : "invalid";
}

uint64_t dn_fnv1a64(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* ---- validation context --------------------------------------------------- */

/* Values a missing section or key takes (see docs/spec.md). */
static void set_defaults(dn_spec *s) {
    s->train.batch_size = 64;
    s->train.epochs = 5;
    s->train.seed = 42;
    s->train.loss = DN_LOSS_CROSS_ENTROPY;
    s->train.opt.type = DN_OPT_ADAM;
    s->train.opt.lr = 0.001;
    s->train.opt.beta1 = 0.9;
    s->train.opt.beta2 = 0.999;
    s->train.opt.eps = 1e-8;
    s->train.opt.weight_decay = 0.0;
    s->train.opt.alpha = 0.99;
    s->train.schedule.type = DN_SCHED_KIND_NONE;
    s->train.schedule.gamma = 0.1;
    s->train.schedule.factor = 0.1;
    s->train.schedule.patience = 10;
    s->train.schedule.threshold = 1e-4;
    memcpy(s->data.format, "idx", 4);
    memcpy(s->data.dir, "data/fashion-mnist", sizeof "data/fashion-mnist");
    s->data.mean = 0.5;
    s->data.std = 0.5;
}

/* Raw text of a scalar node, for "got ..." parts of range messages. */
const char *dnv_raw(const dn_ynode *n, char buf[DN_YTEXT_BUF]) {
    return dn_yquote(n->text, n->len, buf);
}

/* Reads a number that must lie in [lo, hi) ("must be in [0, 1), got 1"). */
int dnv_get_fraction(vctx *v, const dn_ynode *n, const char *key, double *out) {
    char q[DN_YTEXT_BUF];
    double x;
    if (dn_yget_number(v->d, n, key, &x))
        return -1;
    if (!(x >= 0.0 && x < 1.0)) {
        dn_diag_report(v->d, DN_ERROR, n->loc, "%s must be in [0, 1), got %s", key, dnv_raw(n, q));
        return -1;
    }
    *out = x;
    return 0;
}

/* Reads a number that must be > 0 (strict) or >= 0. */
int dnv_get_positive(vctx *v, const dn_ynode *n, const char *key, int strict, double *out) {
    char q[DN_YTEXT_BUF];
    double x;
    if (dn_yget_number(v->d, n, key, &x))
        return -1;
    if (strict ? !(x > 0.0) : !(x >= 0.0)) {
        dn_diag_report(v->d, DN_ERROR, n->loc, "%s must be %s 0, got %s", key, strict ? ">" : ">=",
                       dnv_raw(n, q));
        return -1;
    }
    *out = x;
    return 0;
}

/* Reads an int-sized integer in [lo, hi]. */
int dnv_get_int(vctx *v, const dn_ynode *n, const char *key, int lo, int hi, int *out) {
    long long x;
    if (dn_yget_int(v->d, n, key, lo, hi, &x))
        return -1;
    *out = (int)x;
    return 0;
}

/* ---- input ---------------------------------------------------------------- */

/* `shape: [c, h, w]` of the input: an image of c channels. */
static int check_input_shape(vctx *v, const dn_ynode *n) {
    int x[3];
    static const char *const what[] = {"input channels", "input height", "input width"};
    if (dn_yexpect(v->d, n, DN_Y_SEQ))
        return -1;
    if (n->n_items != 3) {
        dn_diag_report(v->d, DN_ERROR, n->loc, "input shape must be [channels, height, width], got %zu numbers",
                       n->n_items);
        return -1;
    }
    for (int i = 0; i < 3; i++)
        if (dnv_get_int(v, n->items[i], what[i], 1, DN_MAX_UNITS, &x[i]))
            return -1;
    if ((long long)x[0] * x[1] * x[2] > DN_MAX_UNITS) {
        dn_diag_report(v->d, DN_ERROR, n->loc, "input shape [%d, %d, %d] has more than %d elements", x[0], x[1],
                       x[2], DN_MAX_UNITS);
        return -1;
    }
    v->s->input_shape = (dn_shape){3, x[0], x[1], x[2]};
    v->s->input = x[0] * x[1] * x[2];
    return 0;
}

/* `input: N`, `input: {size: N, dropout: p}` or `input: {shape: [c, h, w],
 * dropout: p}`. Sets input, input_shape and input_dropout, and v->input_ok
 * when the size or shape is valid. */
static void check_input(vctx *v, const dn_ynode *n) {
    static const char *const keys[] = {"size", "dropout", "shape"};
    dn_yfield f[COUNT(keys)];
    char q[DN_YTEXT_BUF];
    if (n->kind == DN_Y_SCALAR) {
        v->input_ok = dnv_get_int(v, n, "input", 1, DN_MAX_UNITS, &v->s->input) == 0;
        v->s->input_shape = (dn_shape){1, v->s->input, 1, 1};
        return;
    }
    if (n->kind == DN_Y_SEQ) {
        dn_diag_report(v->d, DN_ERROR, n->loc, "expected an integer or a mapping, got a sequence");
        return;
    }
    if (dn_ymap_fields(v->d, n, "in input", keys, COUNT(keys), f))
        return;
    if (f[0].value && f[2].value) {
        dn_diag_report(v->d, DN_ERROR, f[2].value->loc, "input has both size and shape; give one");
    } else if (f[2].value) {
        v->input_ok = check_input_shape(v, f[2].value) == 0;
    } else if (dn_yrequire(v->d, n, &f[0], "size", "in input") == 0) {
        v->input_ok = dnv_get_int(v, f[0].value, "input size", 1, DN_MAX_UNITS, &v->s->input) == 0;
        v->s->input_shape = (dn_shape){1, v->s->input, 1, 1};
    }
    if (f[1].value && dnv_get_fraction(v, f[1].value, "input dropout", &v->s->input_dropout) == 0 &&
        v->s->input_dropout > 0.5)
        dn_diag_report(v->d, DN_WARNING, f[1].value->loc, "input dropout %s is unusually high",
                       dnv_raw(f[1].value, q));
}

/* ---- train ---------------------------------------------------------------- */

/* `loss: NAME` or `loss: {type: NAME, label_smoothing: E}` (E in [0, 1],
 * cross_entropy only, PyTorch's label_smoothing). Records the name's node
 * for the output-layer check. */
static void check_loss(vctx *v, const dn_ynode *n, dn_train *t) {
    static const char *const keys[] = {"type", "label_smoothing"};
    dn_yfield f[COUNT(keys)] = {{0}};
    char q[DN_YTEXT_BUF];
    int l;
    v->loss = n;
    if (n->kind == DN_Y_MAP) {
        if (dn_ymap_fields(v->d, n, "in loss", keys, COUNT(keys), f) ||
            dn_yrequire(v->d, n, &f[0], "type", "in loss"))
            return;
        v->loss = f[0].value;
    }
    v->loss_ok = dn_yget_enum(v->d, v->loss, "loss", loss_names, COUNT(loss_names), &l) == 0;
    if (v->loss_ok)
        t->loss = (dn_loss)l;
    if (n->kind != DN_Y_MAP || !f[1].value || dn_yget_number(v->d, f[1].value, "label_smoothing",
                                                             &t->label_smoothing))
        return;
    if (!(t->label_smoothing >= 0.0 && t->label_smoothing <= 1.0)) {
        dn_diag_report(v->d, DN_ERROR, f[1].value->loc, "label_smoothing must be in [0, 1], got %s",
                       dnv_raw(f[1].value, q));
        t->label_smoothing = 0;
    } else if (v->loss_ok && t->loss != DN_LOSS_CROSS_ENTROPY) {
        dn_diag_report(v->d, DN_ERROR, f[1].key->loc, "label_smoothing needs loss cross_entropy, got %s",
                       dn_loss_name(t->loss));
        t->label_smoothing = 0;
    }
}

/* `train`: {batch_size, epochs, seed, loss, optimizer, schedule,
 * clip_grad_norm}; absent keys keep their defaults. Records the loss node
 * for the output-layer check. */
static void check_train(vctx *v, const dn_ynode *n) {
    static const char *const keys[] = {"batch_size", "epochs", "seed", "loss", "optimizer", "schedule",
                                       "clip_grad_norm"};
    dn_yfield f[COUNT(keys)];
    dn_train *t = &v->s->train;
    char q[DN_YTEXT_BUF];
    if (dn_ymap_fields(v->d, n, "in train", keys, COUNT(keys), f))
        return;
    v->batch_size = f[0].value;
    if (f[0].value && dnv_get_int(v, f[0].value, "batch_size", 1, 65536, &t->batch_size) == 0 &&
        t->batch_size > 4096)
        dn_diag_report(v->d, DN_WARNING, f[0].value->loc, "batch_size %s is unusually large",
                       dnv_raw(f[0].value, q));
    if (f[1].value)
        dnv_get_int(v, f[1].value, "epochs", 1, 1000000, &t->epochs);
    if (f[2].value)
        dn_yget_u64(v->d, f[2].value, "seed", &t->seed);
    if (f[3].value)
        check_loss(v, f[3].value, t);
    if (f[4].value)
        dnv_check_optimizer(v, f[4].value, &t->opt);
    if (f[5].value)
        dnv_check_schedule(v, f[5].value, t->opt.lr, &t->schedule);
    if (f[6].value)
        dnv_get_positive(v, f[6].value, "clip_grad_norm", 1, &t->clip_grad_norm);
}

/* ---- cross-section rules -------------------------------------------------- */

/* Explains where the loss came from, after an output/loss mismatch. */
static void note_loss_origin(vctx *v) {
    if (v->loss)
        dn_diag_report(v->d, DN_NOTE, v->loss->loc, "loss is set to %s here",
                       dn_loss_name(v->s->train.loss));
    else
        dn_diag_report(v->d, DN_NOTE, (dn_loc){0, 0},
                       "cross_entropy is the default loss; set train.loss to mse for other outputs");
}

/* The output layer must suit the loss: cross_entropy needs softmax and
 * >= 2 units; binary_cross_entropy sigmoid and 1 unit; mse needs linear,
 * sigmoid or tanh. Errors at the output
 * layer's activation / units values. */
/* Multi-label binary cross-entropy (units >= 2 sigmoid outputs) needs K
 * 0/1 target values per row: csv or npy data with targets: values (idx data
 * has one class label per image). Reported at the units. */
static void check_multilabel_data(vctx *v, const layer_src *src, int units) {
    if (strcmp(v->s->data.format, "idx") == 0)
        dn_diag_report(v->d, DN_ERROR, src->units->loc,
                       "loss binary_cross_entropy with %d output units is multi-label: it needs csv or npy data "
                       "with %d target columns of 0 and 1 (idx data has one label per image; 1 unit for labels 0 "
                       "and 1)", units, units);
    else if (!v->s->data.values)
        dn_diag_report(v->d, DN_ERROR, src->units->loc,
                       "loss binary_cross_entropy with %d output units is multi-label: its targets are %d values "
                       "0 or 1 per row, not class labels (drop targets: classes)", units, units);
}

static void check_output_vs_loss(vctx *v) {
    if (!v->layers_ok || (v->loss && !v->loss_ok))
        return;
    const dn_layer *out = &v->s->layers[v->s->n_layers - 1];
    const layer_src *src = &v->src[v->s->n_layers - 1];
    if (v->s->train.loss == DN_LOSS_CROSS_ENTROPY) {
        if (src->act_ok && out->act != DN_ACT_SOFTMAX) {
            dn_diag_report(v->d, DN_ERROR, src->act->loc,
                           "loss cross_entropy needs a softmax output layer, got activation '%s'",
                           dn_act_name(out->act));
            note_loss_origin(v);
        }
        if (src->units_ok && out->units < 2)
            dn_diag_report(v->d, DN_ERROR, src->units->loc,
                           "loss cross_entropy needs at least 2 output units, got %d", out->units);
    } else if (v->s->train.loss == DN_LOSS_BINARY_CROSS_ENTROPY) {
        if (src->act_ok && out->act != DN_ACT_SIGMOID) {
            dn_diag_report(v->d, DN_ERROR, src->act->loc,
                           "loss binary_cross_entropy needs a sigmoid output layer, got activation '%s'",
                           dn_act_name(out->act));
            note_loss_origin(v);
        }
        if (src->units_ok && out->units >= 2)
            check_multilabel_data(v, src, out->units);
    } else if (src->act_ok && out->act != DN_ACT_LINEAR && out->act != DN_ACT_SIGMOID &&
               out->act != DN_ACT_TANH) {
        dn_diag_report(v->d, DN_ERROR, src->act->loc,
                       "loss mse needs a linear, sigmoid or tanh output layer, got activation '%s'",
                       dn_act_name(out->act));
        note_loss_origin(v);
    }
}

/* Batch statistics need two rows: with batchnorm, batch_size >= 2. */
static void check_bn_batch(vctx *v) {
    for (int i = 0; i < v->s->n_layers; i++)
        if (v->s->layers[i].batchnorm && v->s->train.batch_size < 2) {
            dn_loc at = v->batch_size ? v->batch_size->loc : v->s->layers[i].loc;
            dn_diag_report(v->d, DN_ERROR, at, "batch_size must be at least 2 with batchnorm (layer '%s'), got %d",
                           v->s->layers[i].name, v->s->train.batch_size);
            return;
        }
}

/* ---- top level ------------------------------------------------------------ */

/* Generated symbols are "<model>_..."; the runtime pasted beside them owns
 * every identifier that starts with dn_ or DN_, so a model may not be called
 * dn or dn_anything. */
static void check_model_name(vctx *v, const dn_ynode *n) {
    const char *s = v->s->name;
    if ((s[0] == 'd' || s[0] == 'D') && (s[1] == 'n' || s[1] == 'N') && (s[2] == '\0' || s[2] == '_'))
        dn_diag_report(v->d, DN_ERROR, n->loc, "model name '%s' is reserved: names starting with 'dn_' belong "
                       "to the dngen runtime", s);
}

/* The root mapping: {name, description, input, layers, train, data}. */
static void check_top(vctx *v, const dn_ynode *root) {
    static const char *const keys[] = {"name", "description", "input", "layers", "train", "data"};
    dn_yfield f[COUNT(keys)];
    const char *where = "at top level";
    if (dn_ymap_fields(v->d, root, where, keys, COUNT(keys), f))
        return;
    if (dn_yrequire(v->d, root, &f[0], "name", where) == 0 &&
        dn_yget_ident(v->d, f[0].value, "model name", v->s->name) == 0)
        check_model_name(v, f[0].value);
    if (f[1].value)
        dn_yget_string(v->d, f[1].value, "description", v->s->description,
                       sizeof v->s->description, 1);
    if (dn_yrequire(v->d, root, &f[2], "input", where) == 0)
        check_input(v, f[2].value);
    if (dn_yrequire(v->d, root, &f[3], "layers", where) == 0)
        dnv_check_layers(v, f[3].value);
    if (v->layers_ok)
        dnv_check_overrides_used(v);
    if (f[4].value)
        check_train(v, f[4].value);
    if (f[5].value)
        dnv_check_data(v, f[5].value);
    check_output_vs_loss(v);
    if (v->layers_ok)
        check_bn_batch(v);
    dnv_layout_params(v);
}

/* ---- entry points --------------------------------------------------------- */

/* Copies path into spec->path, truncating overly long paths. */
static void set_path(dn_spec *spec, const char *path) {
    size_t n = path ? strlen(path) : 0;
    if (n >= sizeof spec->path)
        n = sizeof spec->path - 1;
    if (n)
        memcpy(spec->path, path, n);
    spec->path[n] = '\0';
}

/* Checks the tree at root into spec, with overrides ov (NULL: none). */
static void validate_tree(const dn_ynode *root, const dn_overrides *ov, dn_spec *spec, dn_diag *d) {
    int n_ov = ov ? ov->n : 0;
    vctx *v = calloc(1, sizeof *v);
    ov_slot *slots = n_ov > 0 ? calloc((size_t)n_ov, sizeof *slots) : NULL;
    if (!v || (n_ov > 0 && !slots)) {
        dn_diag_report(d, DN_ERROR, (dn_loc){0, 0}, "out of memory");
    } else {
        v->d = d;
        v->s = spec;
        v->ov = n_ov > 0 ? ov : NULL;
        v->slots = slots;
        check_top(v, root);
    }
    free(slots);
    free(v);
}

int dn_spec_parse_with(const char *text, size_t len, const char *path, const dn_overrides *ov,
                       dn_spec *spec, dn_diag *d) {
    int errors_before = d->n_errors;
    memset(spec, 0, sizeof *spec);
    set_path(spec, path);
    spec->hash = dn_fnv1a64(text, len);
    set_defaults(spec);
    dn_ynode *root = dn_yaml_load(text, len, d);
    if (root) {
        validate_tree(root, ov, spec, d);
        dn_ynode_free(root);
    }
    return d->n_errors > errors_before ? -1 : 0;
}

int dn_spec_parse(const char *text, size_t len, const char *path, dn_spec *spec, dn_diag *d) {
    return dn_spec_parse_with(text, len, path, NULL, spec, d);
}

char *dn_spec_read(const char *path, size_t *len, dn_diag *d) {
    char *text = NULL, why[DN_ERR_MAX];
    if (dn_file_read(path, DN_SPEC_MAX_BYTES, &text, len, why) != 0) {
        dn_diag_report(d, DN_ERROR, (dn_loc){0, 0}, "cannot read spec: %s", why);
        return NULL;
    }
    return text;
}

int dn_spec_load(const char *path, dn_spec *spec, dn_diag *d) {
    size_t len = 0;
    char *text = dn_spec_read(path, &len, d);
    if (!text)
        return -2;
    int rc = dn_spec_parse(text, len, path, spec, d);
    free(text);
    return rc;
}
