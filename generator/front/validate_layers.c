/* validate_layers.c - the `layers` section: each layer's type, name and
 * values (dense or image layers), dropout, noise and batch norm, unique
 * names, and a command's overrides applied before a layer is checked. */
#include <stdio.h>
#include <string.h>

#include "validate.h"

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
    if (dnv_get_fraction(v, n, "dropout", &l->dropout))
        return;
    if (is_last && l->dropout > 0.0)
        dn_diag_report(v->d, DN_ERROR, n->loc,
                       "dropout is not allowed on the output layer, got %s", dnv_raw(n, q));
    else if (l->dropout > 0.8)
        dn_diag_report(v->d, DN_WARNING, n->loc, "dropout %s is unusually high", dnv_raw(n, q));
}

/* The `noise` of a layer: std >= 0 of the Gaussian noise added to its output
 * in training; not on the output layer. */
static void check_layer_noise(vctx *v, const dn_ynode *n, dn_layer *l, int is_last) {
    char q[DN_YTEXT_BUF];
    if (dnv_get_positive(v, n, "noise", 0, &l->noise))
        return;
    if (is_last && l->noise > 0.0)
        dn_diag_report(v->d, DN_ERROR, n->loc, "noise is not allowed on the output layer, got %s", dnv_raw(n, q));
    else if (l->noise > 1.0)
        dn_diag_report(v->d, DN_WARNING, n->loc, "noise %s is unusually high", dnv_raw(n, q));
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
                           dnv_raw(f[0].value, q));
    }
    if (f[1].value && dnv_get_positive(v, f[1].value, "batchnorm eps", 1, &x) == 0)
        l->bn_eps = x;
}

/* ---- activation -------------------------------------------------------------- */

/* The activation's name n (scalar): one of dnv_act_names, or `swish`, the
 * other name of silu. Returns 0 with *a set, else reports at n. */
static int get_act_name(vctx *v, const dn_ynode *n, dn_act *a) {
    const char *names[DN_ACT_COUNT + 1];
    int i = 0;
    memcpy(names, dnv_act_names, sizeof dnv_act_names);
    names[DN_ACT_COUNT] = "swish";
    if (dn_yget_enum(v->d, n, "activation", names, DN_ACT_COUNT + 1, &i))
        return -1;
    *a = i == DN_ACT_COUNT ? DN_ACT_SILU : (dn_act)i;
    return 0;
}

/* The parameter keys of `activation: {type: T, ...}` and the activation
 * each belongs to (beta and threshold: softplus). */
enum { AK_TYPE, AK_SLOPE, AK_ALPHA, AK_BETA, AK_THRESHOLD, AK_APPROXIMATE, AK_COUNT };
static const char *const act_keys[AK_COUNT] = {"type", "slope", "alpha", "beta", "threshold", "approximate"};
static const dn_act act_key_owner[AK_COUNT] = {DN_ACT_COUNT, DN_ACT_LEAKY_RELU, DN_ACT_ELU, DN_ACT_SOFTPLUS,
                                               DN_ACT_SOFTPLUS, DN_ACT_GELU};

/* The parameters of l->act from the fields f of its mapping: each key must
 * belong to that activation; slope and alpha any number, beta > 0,
 * threshold any number, approximate none or tanh. Returns 0 when all are
 * valid. */
static int check_act_params(vctx *v, const dn_yfield *f, dn_layer *l) {
    static const char *const approx[] = {"none", "tanh"};
    int ok = 1;
    for (int k = AK_SLOPE; k < AK_COUNT; k++) {
        if (!f[k].value)
            continue;
        if (act_key_owner[k] != l->act) {
            dn_diag_report(v->d, DN_ERROR, f[k].key->loc, "activation %s has no parameter '%s' (%s has)",
                           dn_act_name(l->act), act_keys[k], dn_act_name(act_key_owner[k]));
            ok = 0;
            continue;
        }
        if (k == AK_BETA)
            ok &= dnv_get_positive(v, f[k].value, "softplus beta", 1, &l->act_alpha) == 0;
        else if (k == AK_THRESHOLD)
            ok &= dn_yget_number(v->d, f[k].value, "softplus threshold", &l->act_threshold) == 0;
        else if (k == AK_APPROXIMATE)
            ok &= dn_yget_enum(v->d, f[k].value, "gelu approximate", approx, COUNT(approx), &l->act_tanh) == 0;
        else
            ok &= dn_yget_number(v->d, f[k].value, k == AK_SLOPE ? "leaky_relu slope" : "elu alpha",
                                 &l->act_alpha) == 0;
    }
    return ok ? 0 : -1;
}

/* `activation: NAME` or `activation: {type: NAME, <its parameters>}` of a
 * layer (n): sets l->act and its parameters (PyTorch's defaults unless
 * given), src->act (the name's node) and src->act_ok. softmax only on the
 * output layer, which is never an image layer (reported by the caller). */
static void check_activation(vctx *v, const dn_ynode *n, dn_layer *l, layer_src *src, int is_last) {
    dn_yfield f[AK_COUNT];
    const int image = l->type != DN_LAYER_DENSE;
    src->act = n;
    src->act_ok = 0;
    if (n->kind == DN_Y_MAP) {
        if (dn_ymap_fields(v->d, n, "in activation", act_keys, AK_COUNT, f) ||
            dn_yrequire(v->d, n, &f[AK_TYPE], "type", "in activation"))
            return;
        src->act = f[AK_TYPE].value;
    }
    if (get_act_name(v, src->act, &l->act))
        return;
    l->act_alpha = l->act == DN_ACT_LEAKY_RELU ? 0.01 : 1.0;
    l->act_threshold = 20.0;
    l->act_tanh = 0;
    if (n->kind == DN_Y_MAP && check_act_params(v, f, l))
        return;
    if (l->act == DN_ACT_SOFTMAX && !is_last) {
        dn_diag_report(v->d, DN_ERROR, src->act->loc, "softmax is only allowed on the output layer");
        return;
    }
    src->act_ok = !image || !is_last;
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
void dnv_check_overrides_used(vctx *v) {
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
        src->units_ok = dnv_get_int(v, f[1].value, "units", 1, DN_MAX_UNITS, &l->units) == 0;
    if (dn_yrequire(v->d, n, &f[2], "activation", "in layer") == 0)
        check_activation(v, f[2].value, l, src, is_last);
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

/* A window size or stride: N or [h, w], each in [1, DN_MAX_WINDOW]. */
static int get_pair(vctx *v, const dn_ynode *n, const char *key, int *h, int *w) {
    char what[64];
    if (n->kind == DN_Y_SCALAR) {
        if (dnv_get_int(v, n, key, 1, DN_MAX_WINDOW, h))
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
    if (dnv_get_int(v, n->items[0], what, 1, DN_MAX_WINDOW, h))
        return -1;
    snprintf(what, sizeof what, "%s width", key);
    return dnv_get_int(v, n->items[1], what, 1, DN_MAX_WINDOW, w);
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
        if (dnv_get_int(v, n, "padding", 0, DN_MAX_WINDOW, &ph))
            return -1;
        pw = ph;
    } else {
        if (dn_yexpect(v->d, n, DN_Y_SEQ))
            return -1;
        if (n->n_items != 2) {
            dn_diag_report(v->d, DN_ERROR, n->loc, "padding must be a number, [height, width] or same");
            return -1;
        }
        if (dnv_get_int(v, n->items[0], "padding height", 0, DN_MAX_WINDOW, &ph) ||
            dnv_get_int(v, n->items[1], "padding width", 0, DN_MAX_WINDOW, &pw))
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
            dnv_get_int(v, f[K_FILTERS].value, "filters", 1, 65536, &l->out_shape.c))
            ok = 0;
        src->act = f[K_ACT].value;
        if (dn_yrequire(v->d, n, &f[K_ACT], "activation", where) == 0)
            check_activation(v, f[K_ACT].value, l, src, is_last);
        if (f[K_BATCHNORM].value) /* BatchNorm2d */
            check_layer_batchnorm(v, f[K_BATCHNORM].value, l);
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
    if (f[K_TYPE].value && dn_yget_enum(v->d, f[K_TYPE].value, "layer type", dnv_type_names, DN_LAYER_TYPE_COUNT, &t))
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
void dnv_check_layers(vctx *v, const dn_ynode *n) {
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

