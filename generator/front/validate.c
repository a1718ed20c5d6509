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
#include "yaml_get.h"
#include "yaml_tree.h"

/* ---- enum spellings ------------------------------------------------------- */

static const char *const act_names[] = {
#define X(e, s) s,
    DN_ACTIVATIONS(X)
#undef X
};
static const char *const loss_names[] = {
#define X(e, s) s,
    DN_LOSSES(X)
#undef X
};
static const char *const opt_names[] = {
#define X(e, s) s,
    DN_OPTIMIZERS(X)
#undef X
};

static const char *const type_names[] = {
#define X(e, s) s,
    DN_LAYER_TYPES(X)
#undef X
};

const char *dn_layer_type_name(dn_layer_type t) {
    return (unsigned)t < DN_LAYER_TYPE_COUNT ? type_names[t] : "invalid";
}

const char *dn_act_name(dn_act a) {
    return (unsigned)a < DN_ACT_COUNT ? act_names[a] : "invalid";
}
const char *dn_loss_name(dn_loss l) {
    return (unsigned)l < DN_LOSS_COUNT ? loss_names[l] : "invalid";
}
const char *dn_opt_name(dn_opt o) {
    return (unsigned)o < DN_OPT_COUNT ? opt_names[o] : "invalid";
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

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Where each layer's values sit in the file, for rules checked later. */
typedef struct {
    const dn_ynode *map;     /* the layer mapping (NULL if the item was not one) */
    const dn_ynode *name;    /* `name` value, NULL when defaulted */
    const dn_ynode *units;   /* `units` value */
    const dn_ynode *act;     /* `activation` value */
    int name_ok, units_ok, act_ok;
} layer_src;

/* One override while validation applies it. */
typedef struct {
    dn_ynode node;  /* its value as a plain scalar, where the layer check reads it */
    int used;       /* it named a layer of the spec */
} ov_slot;

typedef struct {
    dn_diag *d;
    dn_spec *s;
    const dn_overrides *ov;      /* NULL: none */
    ov_slot *slots;              /* ov->n of them */
    int input_ok;
    int layers_ok;               /* layers present, count in range */
    layer_src src[DN_MAX_LAYERS];
    const dn_ynode *loss;        /* `loss` value, NULL when defaulted */
    int loss_ok;
    const dn_ynode *batch_size;  /* `batch_size` value, NULL when defaulted */
} vctx;

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
    memcpy(s->data.format, "idx", 4);
    memcpy(s->data.dir, "data/fashion-mnist", sizeof "data/fashion-mnist");
    s->data.mean = 0.5;
    s->data.std = 0.5;
}

/* Raw text of a scalar node, for "got ..." parts of range messages. */
static const char *raw(const dn_ynode *n, char buf[DN_YTEXT_BUF]) {
    return dn_yquote(n->text, n->len, buf);
}

/* Reads a number that must lie in [lo, hi) ("must be in [0, 1), got 1"). */
static int get_fraction(vctx *v, const dn_ynode *n, const char *key, double *out) {
    char q[DN_YTEXT_BUF];
    double x;
    if (dn_yget_number(v->d, n, key, &x))
        return -1;
    if (!(x >= 0.0 && x < 1.0)) {
        dn_diag_report(v->d, DN_ERROR, n->loc, "%s must be in [0, 1), got %s", key, raw(n, q));
        return -1;
    }
    *out = x;
    return 0;
}

/* Reads a number that must be > 0 (strict) or >= 0. */
static int get_positive(vctx *v, const dn_ynode *n, const char *key, int strict, double *out) {
    char q[DN_YTEXT_BUF];
    double x;
    if (dn_yget_number(v->d, n, key, &x))
        return -1;
    if (strict ? !(x > 0.0) : !(x >= 0.0)) {
        dn_diag_report(v->d, DN_ERROR, n->loc, "%s must be %s 0, got %s", key, strict ? ">" : ">=",
                       raw(n, q));
        return -1;
    }
    *out = x;
    return 0;
}

/* Reads an int-sized integer in [lo, hi]. */
static int get_int(vctx *v, const dn_ynode *n, const char *key, int lo, int hi, int *out) {
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
        if (get_int(v, n->items[i], what[i], 1, DN_MAX_UNITS, &x[i]))
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
        v->input_ok = get_int(v, n, "input", 1, DN_MAX_UNITS, &v->s->input) == 0;
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
        v->input_ok = get_int(v, f[0].value, "input size", 1, DN_MAX_UNITS, &v->s->input) == 0;
        v->s->input_shape = (dn_shape){1, v->s->input, 1, 1};
    }
    if (f[1].value && get_fraction(v, f[1].value, "input dropout", &v->s->input_dropout) == 0 &&
        v->s->input_dropout > 0.5)
        dn_diag_report(v->d, DN_WARNING, f[1].value->loc, "input dropout %s is unusually high",
                       raw(f[1].value, q));
}

/* ---- layers --------------------------------------------------------------- */

/* `dropout` of layer i: a rate in [0, 1) (each element), or {rate, mode:
 * element | channel} (channel: nn.Dropout2d, image layers only); 0 on the
 * output layer. */
static void check_layer_dropout(vctx *v, const dn_ynode *n, dn_layer *l, int is_last) {
    static const char *const keys[] = {"rate", "mode"};
    static const char *const modes[] = {"element", "channel"};
    dn_yfield f[COUNT(keys)];
    char q[DN_YTEXT_BUF];
    if (n->kind == DN_Y_MAP) {
        if (dn_ymap_fields(v->d, n, "in dropout", keys, COUNT(keys), f) ||
            dn_yrequire(v->d, n, &f[0], "rate", "in dropout"))
            return;
        if (f[1].value && dn_yget_enum(v->d, f[1].value, "dropout mode", modes, COUNT(modes), &l->dropout_channel))
            return;
        if (l->dropout_channel && (l->type == DN_LAYER_DENSE || l->type == DN_LAYER_FLATTEN)) {
            dn_diag_report(v->d, DN_ERROR, f[1].value->loc,
                           "dropout mode channel needs an image layer (conv2d or a pool); '%s' is %s", l->name,
                           dn_layer_type_name(l->type));
            return;
        }
        n = f[0].value;
    }
    if (get_fraction(v, n, "dropout", &l->dropout))
        return;
    if (is_last && l->dropout > 0.0)
        dn_diag_report(v->d, DN_ERROR, n->loc,
                       "dropout is not allowed on the output layer, got %s", raw(n, q));
    else if (l->dropout > 0.8)
        dn_diag_report(v->d, DN_WARNING, n->loc, "dropout %s is unusually high", raw(n, q));
}

/* The `noise` of a layer: std >= 0 of the Gaussian noise added to its output
 * in training; not on the output layer. */
static void check_layer_noise(vctx *v, const dn_ynode *n, dn_layer *l, int is_last) {
    char q[DN_YTEXT_BUF];
    if (get_positive(v, n, "noise", 0, &l->noise))
        return;
    if (is_last && l->noise > 0.0)
        dn_diag_report(v->d, DN_ERROR, n->loc, "noise is not allowed on the output layer, got %s", raw(n, q));
    else if (l->noise > 1.0)
        dn_diag_report(v->d, DN_WARNING, n->loc, "noise %s is unusually high", raw(n, q));
}

/* `batchnorm: true | false | {momentum: M, eps: E}` of a layer: momentum in
 * [0, 1], eps > 0 (PyTorch's BatchNorm1d defaults 0.1 and 1e-5). */
static void check_layer_batchnorm(vctx *v, const dn_ynode *n, dn_layer *l) {
    static const char *const flags[] = {"false", "true"};
    static const char *const keys[] = {"momentum", "eps"};
    dn_yfield f[COUNT(keys)];
    char q[DN_YTEXT_BUF];
    int on = 0;
    if (n->kind == DN_Y_SCALAR) {
        if (dn_yget_enum(v->d, n, "batchnorm value", flags, COUNT(flags), &on) == 0)
            l->batchnorm = on;
        return;
    }
    if (n->kind == DN_Y_SEQ) {
        dn_diag_report(v->d, DN_ERROR, n->loc, "expected true, false or a mapping, got a sequence");
        return;
    }
    if (dn_ymap_fields(v->d, n, "in batchnorm", keys, COUNT(keys), f))
        return;
    l->batchnorm = 1;
    double x;
    if (f[0].value && dn_yget_number(v->d, f[0].value, "batchnorm momentum", &x) == 0) {
        if (x >= 0.0 && x <= 1.0)
            l->bn_momentum = x;
        else
            dn_diag_report(v->d, DN_ERROR, f[0].value->loc, "batchnorm momentum must be in [0, 1], got %s",
                           raw(f[0].value, q));
    }
    if (f[1].value && get_positive(v, f[1].value, "batchnorm eps", 1, &x) == 0)
        l->bn_eps = x;
}

/* ---- overrides ------------------------------------------------------------- */

/* Who sets the overrides, for messages. */
static const char *ov_origin(const vctx *v) {
    return v->ov->origin ? v->ov->origin : "an override";
}

/* Index of key in keys[0..n), or n. */
static size_t key_index(const char *const *keys, size_t n, const char *key) {
    size_t i = 0;
    while (i < n && strcmp(keys[i], key) != 0)
        i++;
    return i;
}

/* Puts the overrides of the layer called `name` (NULL: its name is
 * invalid, nothing applies) in place of its fields f (by keys[0..nkeys),
 * keys[0] being "name"): each becomes a plain scalar located at the value it
 * replaces, or at the layer mapping `map`. Returns how many were applied. */
static int apply_overrides(vctx *v, const dn_ynode *map, const char *name, const char *const *keys,
                           size_t nkeys, dn_yfield *f) {
    int applied = 0;
    for (int k = 0; v->ov && name && k < v->ov->n; k++) {
        const dn_override *o = &v->ov->items[k];
        if (strcmp(o->layer, name) != 0)
            continue;
        v->slots[k].used = 1;
        size_t i = key_index(keys, nkeys, o->key);
        if (i == 0 || i == nkeys) {
            dn_diag_report(v->d, DN_ERROR, (dn_loc){0, 0},
                           "%s sets '%s' of layer '%s', which is not a key it can set", ov_origin(v), o->key, name);
            continue;
        }
        dn_ynode *node = &v->slots[k].node;
        *node = (dn_ynode){.kind = DN_Y_SCALAR, .loc = f[i].value ? f[i].value->loc : map->loc,
                           .text = (char *)o->value, .len = strlen(o->value)};
        f[i].value = node;
        applied++;
    }
    return applied;
}

/* Notes, after a diagnostic about the layer called `name`, each override
 * that set one of its values. */
static void note_overrides(vctx *v, const char *name) {
    char q[DN_YTEXT_BUF];
    for (int k = 0; k < v->ov->n; k++) {
        const dn_override *o = &v->ov->items[k];
        if (strcmp(o->layer, name) == 0 && v->slots[k].node.kind == DN_Y_SCALAR)
            dn_diag_report(v->d, DN_NOTE, v->slots[k].node.loc,
                           "%s %s of layer '%s' is set by %s, not by the spec file", o->key,
                           dn_yquote(o->value, strlen(o->value), q), name, ov_origin(v));
    }
}

/* Every override must name a layer of the spec (checked once the layers
 * were read). */
static void check_overrides_used(vctx *v) {
    for (int k = 0; v->ov && k < v->ov->n; k++) {
        const dn_override *o = &v->ov->items[k];
        if (!v->slots[k].used)
            dn_diag_report(v->d, DN_ERROR, (dn_loc){0, 0},
                           "%s sets '%s' of layer '%s', but the spec has no layer named '%s'", ov_origin(v),
                           o->key, o->layer, o->layer);
    }
}

/* ---- layers, continued ------------------------------------------------------ */

/* The `name` of a layer (n; NULL keeps the default fcN): a C identifier,
 * not "input". Sets src->name and src->name_ok. */
static void check_layer_name(vctx *v, const dn_ynode *n, dn_layer *l, layer_src *src) {
    src->name = n;
    src->name_ok = !n || dn_yget_ident(v->d, n, "layer name", l->name) == 0;
    if (n && src->name_ok && strcmp(l->name, "input") == 0) {
        dn_diag_report(v->d, DN_ERROR, n->loc, "layer name 'input' is reserved for the input");
        src->name_ok = 0;
    }
}

/* The values of a layer besides its name, fields f in check_layer's key
 * order; records the nodes of units and activation in src. */
static void check_layer_values(vctx *v, const dn_ynode *n, const dn_yfield *f, dn_layer *l,
                               layer_src *src, int is_last) {
    src->units = f[1].value;
    src->act = f[2].value;
    if (dn_yrequire(v->d, n, &f[1], "units", "in layer") == 0)
        src->units_ok = get_int(v, f[1].value, "units", 1, DN_MAX_UNITS, &l->units) == 0;
    if (dn_yrequire(v->d, n, &f[2], "activation", "in layer") == 0) {
        int a = 0;
        src->act_ok = dn_yget_enum(v->d, f[2].value, "activation", act_names, COUNT(act_names),
                                   &a) == 0;
        if (src->act_ok)
            l->act = (dn_act)a;
        if (src->act_ok && l->act == DN_ACT_SOFTMAX && !is_last) {
            dn_diag_report(v->d, DN_ERROR, f[2].value->loc,
                           "softmax is only allowed on the output layer");
            src->act_ok = 0;
        }
    }
    if (f[3].value)
        check_layer_dropout(v, f[3].value, l, is_last);
    if (f[4].value)
        check_layer_noise(v, f[4].value, l, is_last);
    if (f[5].value)
        check_layer_batchnorm(v, f[5].value, l);
}

/* The keys of a layer mapping; each type allows some (see layer_allows). */
enum { K_NAME, K_UNITS, K_ACT, K_DROPOUT, K_NOISE, K_BATCHNORM, K_TYPE, K_FILTERS, K_KERNEL, K_STRIDE, K_PADDING,
       K_COUNT };
static const char *const layer_keys[K_COUNT] = {"name",      "units", "activation", "dropout", "noise", "batchnorm",
                                                "type",      "filters", "kernel",   "stride",  "padding"};

/* Whether a layer of type t may have key k. */
static int layer_allows(dn_layer_type t, int k) {
    switch (t) {
    case DN_LAYER_CONV2D:
        return k != K_UNITS && k != K_NOISE;
    case DN_LAYER_MAXPOOL2D:
    case DN_LAYER_AVGPOOL2D:
        return k == K_NAME || k == K_TYPE || k == K_KERNEL || k == K_STRIDE || k == K_DROPOUT;
    case DN_LAYER_FLATTEN:
        return k == K_NAME || k == K_TYPE;
    case DN_LAYER_DENSE:
    case DN_LAYER_TYPE_COUNT:
        break;
    }
    return k < K_TYPE || k == K_TYPE;
}

/* A window size or stride: N or [h, w], each in [1, 1024]. */
static int get_pair(vctx *v, const dn_ynode *n, const char *key, int *h, int *w) {
    char what[64];
    if (n->kind == DN_Y_SCALAR) {
        if (get_int(v, n, key, 1, 1024, h))
            return -1;
        *w = *h;
        return 0;
    }
    if (dn_yexpect(v->d, n, DN_Y_SEQ))
        return -1;
    if (n->n_items != 2) {
        dn_diag_report(v->d, DN_ERROR, n->loc, "%s must be a number or [height, width], got %zu numbers", key,
                       n->n_items);
        return -1;
    }
    snprintf(what, sizeof what, "%s height", key);
    if (get_int(v, n->items[0], what, 1, 1024, h))
        return -1;
    snprintf(what, sizeof what, "%s width", key);
    return get_int(v, n->items[1], what, 1, 1024, w);
}

/* `padding: N | [h, w] | same` of a conv2d: zeros around the input; `same`
 * as PyTorch's (stride 1; for an even kernel the extra row and column go
 * after). */
static int check_padding(vctx *v, const dn_ynode *n, dn_layer *l) {
    if (n->kind == DN_Y_SCALAR && n->len == 4 && memcmp(n->text, "same", 4) == 0) {
        if (l->sh != 1 || l->sw != 1) {
            dn_diag_report(v->d, DN_ERROR, n->loc, "padding 'same' needs stride 1 (as in PyTorch), got %dx%d",
                           l->sh, l->sw);
            return -1;
        }
        l->pad_top = (l->kh - 1) / 2, l->pad_bottom = l->kh - 1 - l->pad_top;
        l->pad_left = (l->kw - 1) / 2, l->pad_right = l->kw - 1 - l->pad_left;
        return 0;
    }
    int ph, pw;
    if (n->kind == DN_Y_SCALAR) {
        if (get_int(v, n, "padding", 0, 1024, &ph))
            return -1;
        pw = ph;
    } else {
        if (dn_yexpect(v->d, n, DN_Y_SEQ))
            return -1;
        if (n->n_items != 2) {
            dn_diag_report(v->d, DN_ERROR, n->loc, "padding must be a number, [height, width] or same");
            return -1;
        }
        if (get_int(v, n->items[0], "padding height", 0, 1024, &ph) ||
            get_int(v, n->items[1], "padding width", 0, 1024, &pw))
            return -1;
    }
    l->pad_top = l->pad_bottom = ph;
    l->pad_left = l->pad_right = pw;
    return 0;
}

/* The values of an image layer (conv2d, a pool, flatten): its window and,
 * for conv2d, filters and activation. Shapes are checked later, when the
 * input of every layer is known (infer_shapes). */
static void check_image_values(vctx *v, const dn_ynode *n, const dn_yfield *f, dn_layer *l, layer_src *src,
                               int is_last) {
    const char *where = l->type == DN_LAYER_CONV2D ? "in conv2d layer" : "in pool layer";
    int ok = 1;
    src->act_ok = !is_last;
    l->act = DN_ACT_LINEAR;
    if (is_last) { /* reported once: the loss rules skip a layer whose activation is not ok */
        dn_diag_report(v->d, DN_ERROR, f[K_TYPE].value->loc, "the output layer must be dense, got type '%s'",
                       dn_layer_type_name(l->type));
        src->act_ok = 0;
        ok = 0;
    }
    if (l->type == DN_LAYER_FLATTEN) {
        src->units_ok = ok;
        return;
    }
    if (dn_yrequire(v->d, n, &f[K_KERNEL], "kernel", where) || get_pair(v, f[K_KERNEL].value, "kernel", &l->kh, &l->kw))
        ok = 0;
    l->sh = l->kh, l->sw = l->kw; /* pools: stride defaults to the window */
    if (l->type == DN_LAYER_CONV2D) {
        l->sh = l->sw = 1;
        if (dn_yrequire(v->d, n, &f[K_FILTERS], "filters", where) ||
            get_int(v, f[K_FILTERS].value, "filters", 1, 65536, &l->out_shape.c))
            ok = 0;
        src->act = f[K_ACT].value;
        if (dn_yrequire(v->d, n, &f[K_ACT], "activation", where) == 0) {
            int a = 0;
            src->act_ok = dn_yget_enum(v->d, f[K_ACT].value, "activation", act_names, COUNT(act_names), &a) == 0 &&
                          !is_last;
            l->act = (dn_act)a;
            if (src->act_ok && l->act == DN_ACT_SOFTMAX) {
                dn_diag_report(v->d, DN_ERROR, f[K_ACT].value->loc, "softmax is only allowed on the output layer");
                src->act_ok = 0;
            }
        }
        if (f[K_BATCHNORM].value) {
            dn_diag_report(v->d, DN_ERROR, f[K_BATCHNORM].value->loc,
                           "batchnorm on conv2d layers (BatchNorm2d) is not supported yet");
            ok = 0;
        }
    }
    if (f[K_STRIDE].value && get_pair(v, f[K_STRIDE].value, "stride", &l->sh, &l->sw))
        ok = 0;
    if (ok && f[K_PADDING].value && check_padding(v, f[K_PADDING].value, l))
        ok = 0;
    if (f[K_DROPOUT].value)
        check_layer_dropout(v, f[K_DROPOUT].value, l, is_last);
    src->units_ok = ok;
}

/* The type of a layer (default dense) and its default name: fcN for dense
 * layers, convN, poolN or flattenN for the others, N its position. */
static void check_layer_type(vctx *v, const dn_yfield *f, dn_layer *l, int i) {
    static const char *const prefix[DN_LAYER_TYPE_COUNT] = {"fc", "conv", "pool", "pool", "flatten"};
    int t = DN_LAYER_DENSE;
    if (f[K_TYPE].value && dn_yget_enum(v->d, f[K_TYPE].value, "layer type", type_names, COUNT(type_names), &t))
        t = DN_LAYER_DENSE;
    l->type = (dn_layer_type)t;
    snprintf(l->name, sizeof l->name, "%s%d", prefix[t], i + 1);
    for (int k = 0; k < K_COUNT; k++)
        if (f[k].value && !layer_allows(l->type, k))
            dn_diag_report(v->d, DN_ERROR, f[k].key->loc, "key '%s' is not allowed in a %s layer", layer_keys[k],
                           dn_layer_type_name(l->type));
}

/* One layer mapping (layer_keys) into layers[i], with the overrides of its
 * name applied; records node positions in v->src[i]. `is_last` marks the
 * output layer. */
static void check_layer(vctx *v, const dn_ynode *n, int i, int is_last) {
    const char *const *keys = layer_keys;
    dn_yfield f[K_COUNT];
    dn_layer *l = &v->s->layers[i];
    layer_src *src = &v->src[i];
    l->bn_momentum = 0.1;
    l->bn_eps = 1e-5;
    l->loc = n->loc;
    if (dn_ymap_fields(v->d, n, "in layer", keys, K_COUNT, f))
        return;
    src->map = n;
    check_layer_type(v, f, l, i);
    check_layer_name(v, f[0].value, l, src);
    int applied = apply_overrides(v, n, src->name_ok ? l->name : NULL, keys, K_COUNT, f);
    int reported = v->d->n_errors + v->d->n_warnings;
    if (l->type == DN_LAYER_DENSE)
        check_layer_values(v, n, f, l, src, is_last);
    else
        check_image_values(v, n, f, l, src, is_last);
    if (applied && v->d->n_errors + v->d->n_warnings != reported)
        note_overrides(v, l->name);
}

/* Layer names (given or default fcN) must be unique: error at the later
 * one, note at the earlier. */
static void check_layer_names(vctx *v) {
    for (int i = 1; i < v->s->n_layers; i++) {
        const layer_src *a = &v->src[i];
        if (!a->map || !a->name_ok)
            continue;
        for (int j = 0; j < i; j++) {
            const layer_src *b = &v->src[j];
            if (!b->map || !b->name_ok || strcmp(v->s->layers[i].name, v->s->layers[j].name))
                continue;
            const char *name = v->s->layers[i].name;
            dn_diag_report(v->d, DN_ERROR, a->name ? a->name->loc : a->map->loc,
                           "duplicate layer name '%s'", name);
            if (b->name)
                dn_diag_report(v->d, DN_NOTE, b->name->loc, "'%s' first used here", name);
            else
                dn_diag_report(v->d, DN_NOTE, b->map->loc, "layer %d is named '%s' by default",
                               j + 1, name);
            break;
        }
    }
}

/* A batchnorm layer X owns the tensor names "X_bn.*", so no layer may be
 * called X_bn. */
static void check_bn_names(vctx *v) {
    for (int i = 0; i < v->s->n_layers; i++) {
        const dn_layer *a = &v->s->layers[i];
        if (!v->src[i].map || !a->batchnorm)
            continue;
        for (int j = 0; j < v->s->n_layers; j++) {
            const char *b = v->s->layers[j].name;
            size_t n = strlen(a->name);
            if (!v->src[j].map || strncmp(b, a->name, n) != 0 || strcmp(b + n, "_bn") != 0)
                continue;
            const layer_src *s = &v->src[j];
            dn_diag_report(v->d, DN_ERROR, s->name ? s->name->loc : s->map->loc,
                           "layer name '%s' clashes with the batch norm tensors of layer '%s' ('%s.weight', ...)", b,
                           a->name, b);
        }
    }
}

/* `layers`: a non-empty sequence of at most DN_MAX_LAYERS layer mappings. */
static void check_layers(vctx *v, const dn_ynode *n) {
    if (dn_yexpect(v->d, n, DN_Y_SEQ))
        return;
    if (n->n_items == 0) {
        dn_diag_report(v->d, DN_ERROR, n->loc, "layers must not be empty");
        return;
    }
    if (n->n_items > DN_MAX_LAYERS) {
        dn_diag_report(v->d, DN_ERROR, n->items[DN_MAX_LAYERS]->loc,
                       "too many layers (%zu, at most %d)", n->n_items, DN_MAX_LAYERS);
        return;
    }
    v->s->n_layers = (int)n->n_items;
    v->layers_ok = 1;
    for (int i = 0; i < v->s->n_layers; i++)
        check_layer(v, n->items[i], i, i == v->s->n_layers - 1);
    check_layer_names(v);
    check_bn_names(v);
}

/* ---- train ---------------------------------------------------------------- */

/* `betas: [b1, b2]`, each in [0, 1). */
static void check_betas(vctx *v, const dn_ynode *n, dn_optimizer *o) {
    if (dn_yexpect(v->d, n, DN_Y_SEQ))
        return;
    if (n->n_items != 2) {
        dn_diag_report(v->d, DN_ERROR, n->loc, "betas must have exactly 2 numbers, got %zu",
                       n->n_items);
        return;
    }
    get_fraction(v, n->items[0], "betas[0]", &o->beta1);
    get_fraction(v, n->items[1], "betas[1]", &o->beta2);
}

/* `optimizer`: a mapping {type, lr, betas, eps, weight_decay}, or just the
 * type as a scalar (`optimizer: adamw`). */
static void check_optimizer(vctx *v, const dn_ynode *n, dn_optimizer *o) {
    static const char *const keys[] = {"type", "lr", "betas", "eps", "weight_decay"};
    dn_yfield f[COUNT(keys)];
    char q[DN_YTEXT_BUF];
    int t;
    if (n->kind == DN_Y_SCALAR) {
        if (dn_yget_enum(v->d, n, "optimizer", opt_names, COUNT(opt_names), &t) == 0)
            o->type = (dn_opt)t;
        return;
    }
    if (dn_ymap_fields(v->d, n, "in optimizer", keys, COUNT(keys), f))
        return;
    if (f[0].value && dn_yget_enum(v->d, f[0].value, "optimizer", opt_names, COUNT(opt_names),
                                   &t) == 0)
        o->type = (dn_opt)t;
    if (f[1].value && get_positive(v, f[1].value, "lr", 1, &o->lr) == 0 && o->lr > 0.1)
        dn_diag_report(v->d, DN_WARNING, f[1].value->loc, "lr %s is unusually high",
                       raw(f[1].value, q));
    if (f[2].value)
        check_betas(v, f[2].value, o);
    if (f[3].value)
        get_positive(v, f[3].value, "eps", 1, &o->eps);
    if (f[4].value)
        get_positive(v, f[4].value, "weight_decay", 0, &o->weight_decay);
}

/* `train`: {batch_size, epochs, seed, loss, optimizer}; absent keys keep
 * their defaults. Records the loss node for the output-layer check. */
static void check_train(vctx *v, const dn_ynode *n) {
    static const char *const keys[] = {"batch_size", "epochs", "seed", "loss", "optimizer"};
    dn_yfield f[COUNT(keys)];
    dn_train *t = &v->s->train;
    char q[DN_YTEXT_BUF];
    if (dn_ymap_fields(v->d, n, "in train", keys, COUNT(keys), f))
        return;
    v->batch_size = f[0].value;
    if (f[0].value && get_int(v, f[0].value, "batch_size", 1, 65536, &t->batch_size) == 0 &&
        t->batch_size > 4096)
        dn_diag_report(v->d, DN_WARNING, f[0].value->loc, "batch_size %s is unusually large",
                       raw(f[0].value, q));
    if (f[1].value)
        get_int(v, f[1].value, "epochs", 1, 1000000, &t->epochs);
    if (f[2].value)
        dn_yget_u64(v->d, f[2].value, "seed", &t->seed);
    if (f[3].value) {
        int l;
        v->loss = f[3].value;
        v->loss_ok = dn_yget_enum(v->d, f[3].value, "loss", loss_names, COUNT(loss_names), &l) == 0;
        if (v->loss_ok)
            t->loss = (dn_loss)l;
    }
    if (f[4].value)
        check_optimizer(v, f[4].value, &t->opt);
}

/* ---- data ----------------------------------------------------------------- */

/* `normalize: {mean, std}`: mean finite, std > 0. */
static void check_normalize(vctx *v, const dn_ynode *n) {
    static const char *const keys[] = {"mean", "std"};
    dn_yfield f[COUNT(keys)];
    if (dn_ymap_fields(v->d, n, "in normalize", keys, COUNT(keys), f))
        return;
    if (f[0].value)
        dn_yget_number(v->d, f[0].value, "mean", &v->s->data.mean);
    if (f[1].value)
        get_positive(v, f[1].value, "std", 1, &v->s->data.std);
}

/* `data`: {format, dir, normalize}; format is "idx", dir a non-empty path. */
static void check_data(vctx *v, const dn_ynode *n) {
    static const char *const keys[] = {"format", "dir", "normalize"};
    static const char *const formats[] = {"idx"};
    dn_yfield f[COUNT(keys)];
    int fmt;
    if (dn_ymap_fields(v->d, n, "in data", keys, COUNT(keys), f))
        return;
    if (f[0].value && dn_yget_enum(v->d, f[0].value, "data format", formats, COUNT(formats),
                                   &fmt) == 0)
        memcpy(v->s->data.format, formats[fmt], strlen(formats[fmt]) + 1);
    if (f[1].value)
        dn_yget_string(v->d, f[1].value, "dir", v->s->data.dir, sizeof v->s->data.dir, 0);
    if (f[2].value)
        check_normalize(v, f[2].value);
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
 * >= 2 units; mse needs linear, sigmoid or tanh. Errors at the output
 * layer's activation / units values. */
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

/* ---- shapes and the parameter layout -------------------------------------- */

/* Output size of a window of k with stride st over n with padding p0 + p1,
 * or 0 when the window does not fit. */
static int window_out(int n, int p0, int p1, int k, int st) {
    return n + p0 + p1 < k ? 0 : (n + p0 + p1 - k) / st + 1;
}

/* The output shape of image layer l on input shape in (rank 3 unless l is
 * dense), into l->out_shape; reports an impossible shape at the layer.
 * Returns 0 or -1. */
static int infer_image_shape(vctx *v, dn_layer *l, dn_shape in) {
    const char *type = dn_layer_type_name(l->type);
    if (in.rank != 3) {
        dn_diag_report(v->d, DN_ERROR, l->loc, "%s layer '%s' needs an image input [channels, height, width], but "
                       "its input is flat (%d features); give the input as {shape: [c, h, w]}",
                       type, l->name, in.c);
        return -1;
    }
    if (l->type == DN_LAYER_FLATTEN) {
        l->out_shape = (dn_shape){1, in.c * in.h * in.w, 1, 1};
        return 0;
    }
    int oh = window_out(in.h, l->pad_top, l->pad_bottom, l->kh, l->sh);
    int ow = window_out(in.w, l->pad_left, l->pad_right, l->kw, l->sw);
    if (oh == 0 || ow == 0) {
        dn_diag_report(v->d, DN_ERROR, l->loc, "%s layer '%s': its %dx%d window does not fit its %dx%d input%s", type,
                       l->name, l->kh, l->kw, in.h, in.w,
                       l->pad_top + l->pad_left ? " (with its padding)" : "");
        return -1;
    }
    if (in.h * in.w > 16384 || oh * ow > 16384) {
        dn_diag_report(v->d, DN_ERROR, l->loc, "%s layer '%s': planes of more than 16384 pixels are not supported",
                       type, l->name);
        return -1;
    }
    int c = l->type == DN_LAYER_CONV2D ? l->out_shape.c : in.c;
    l->out_shape = (dn_shape){3, c, oh, ow};
    return 0;
}

/* Every layer's input and output shape from the input's: a dense layer
 * needs a flat input (an image needs a flatten first), image layers an
 * image. Sets in/units/stride (rows rounded up to DN_PANEL). Returns 0, or
 * -1 after reporting the first impossible shape. */
static int infer_shapes(vctx *v) {
    dn_shape cur = v->s->input_shape;
    for (int i = 0; i < v->s->n_layers; i++) {
        dn_layer *l = &v->s->layers[i];
        l->in_shape = cur;
        if (l->type == DN_LAYER_DENSE && cur.rank != 1) {
            dn_diag_report(v->d, DN_ERROR, l->loc, "dense layer '%s' on an image input [%d, %d, %d]: put a "
                           "{type: flatten} layer before it", l->name, cur.c, cur.h, cur.w);
            return -1;
        }
        if (l->type == DN_LAYER_DENSE)
            l->out_shape = (dn_shape){1, l->units, 1, 1};
        else if (infer_image_shape(v, l, cur))
            return -1;
        l->in = dn_shape_size(cur);
        l->units = dn_shape_size(l->out_shape);
        if (l->units > DN_MAX_UNITS) {
            dn_diag_report(v->d, DN_ERROR, l->loc, "layer '%s' has %d outputs per sample, at most %d", l->name,
                           l->units, DN_MAX_UNITS);
            return -1;
        }
        l->stride = (l->units + DN_PANEL - 1) / DN_PANEL * DN_PANEL;
        cur = l->out_shape;
    }
    return 0;
}

/* Parameters of layer l (PyTorch's count) and floats it occupies in the
 * buffer's trained part: dense weights in panels, conv in PyTorch's layout. */
static uint64_t layer_params(const dn_layer *l) {
    switch (l->type) {
    case DN_LAYER_CONV2D:
        return (uint64_t)l->out_shape.c * ((uint64_t)l->in_shape.c * (uint64_t)(l->kh * l->kw) + 1);
    case DN_LAYER_DENSE:
    case DN_LAYER_TYPE_COUNT:
        return (uint64_t)l->units * (uint64_t)l->in + (uint64_t)l->units * (l->batchnorm ? 3 : 1);
    case DN_LAYER_MAXPOOL2D:
    case DN_LAYER_AVGPOOL2D:
    case DN_LAYER_FLATTEN:
        break;
    }
    return 0;
}

/* Lays out layer l's trained tensors from `floats` on; returns the new end. */
static uint64_t layout_layer(dn_layer *l, uint64_t floats) {
    if (l->type == DN_LAYER_CONV2D) {
        l->w_off = (size_t)floats;
        floats += (uint64_t)l->out_shape.c * (uint64_t)l->in_shape.c * (uint64_t)(l->kh * l->kw);
        l->b_off = (size_t)floats;
        return floats + (uint64_t)l->out_shape.c;
    }
    if (l->type != DN_LAYER_DENSE)
        return floats;
    l->w_off = (size_t)floats;
    floats += (uint64_t)l->stride * (uint64_t)l->in;
    l->b_off = (size_t)floats;
    floats += (uint64_t)l->stride;
    if (l->batchnorm) {
        l->g_off = (size_t)floats;
        l->beta_off = (size_t)(floats + (uint64_t)l->stride);
        floats += 2 * (uint64_t)l->stride;
    }
    return floats;
}

/* Fills shapes, in/stride and the offsets in state_dict order (W, b, then
 * gamma and beta with batchnorm, per layer, dense weights padded to panels;
 * the running statistics after all of them), n_params, n_train_floats and
 * n_floats, when the input and every layer are valid. The parameter count
 * may not exceed DN_MAX_PARAMS; the error sits at the layer that crosses
 * the limit. Widths are <= 2^24, so stride * in <= 2^48 fits in uint64_t;
 * the running totals stay far below 2^64. */
static void layout_params(vctx *v) {
    if (!v->input_ok || !v->layers_ok)
        return;
    for (int i = 0; i < v->s->n_layers; i++)
        if (!v->src[i].units_ok)
            return;
    if (infer_shapes(v))
        return;
    uint64_t total = 0, floats = 0;
    for (int i = 0; i < v->s->n_layers; i++) {
        dn_layer *l = &v->s->layers[i];
        total += layer_params(l);
        if (total > (uint64_t)DN_MAX_PARAMS) {
            dn_diag_report(v->d, DN_ERROR, l->loc,
                           "too many parameters: layer '%s' brings the total to %llu "
                           "(at most %zu)",
                           l->name, (unsigned long long)total, DN_MAX_PARAMS);
            return;
        }
        floats = layout_layer(l, floats);
    }
    v->s->n_params = (size_t)total;
    v->s->n_train_floats = (size_t)floats;
    v->s->n_batchnorm = 0;
    for (int i = 0; i < v->s->n_layers; i++) {
        dn_layer *l = &v->s->layers[i];
        if (!l->batchnorm)
            continue;
        v->s->n_batchnorm++;
        l->rm_off = (size_t)floats;
        l->rv_off = (size_t)(floats + (uint64_t)l->stride);
        floats += 2 * (uint64_t)l->stride;
    }
    v->s->n_floats = (size_t)floats;
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
        check_layers(v, f[3].value);
    if (v->layers_ok)
        check_overrides_used(v);
    if (f[4].value)
        check_train(v, f[4].value);
    if (f[5].value)
        check_data(v, f[5].value);
    check_output_vs_loss(v);
    if (v->layers_ok)
        check_bn_batch(v);
    layout_params(v);
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
