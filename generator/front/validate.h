/* validate.h - what the front end's validation files share (not an API:
 * spec.h is). validate.c checks the top level, input, train and data
 * sections and runs the passes in order; validate_optim.c the optimizer,
 * schedule and clipping of train; validate_layers.c checks the
 * layers (and applies a command's overrides to them); validate_layout.c
 * infers every layer's shape and lays out the parameter buffer. */
#ifndef DNGEN_VALIDATE_H
#define DNGEN_VALIDATE_H

#include "spec.h"
#include "yaml_get.h"
#include "yaml_tree.h"

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

/* Spellings of activations and layer types, in enum order. */
extern const char *const dnv_act_names[DN_ACT_COUNT];
extern const char *const dnv_type_names[DN_LAYER_TYPE_COUNT];

/* Raw text of a scalar node, for "got ..." parts of range messages. */
const char *dnv_raw(const dn_ynode *n, char buf[DN_YTEXT_BUF]);
/* A number in [0, 1); a number > 0 (strict) or >= 0; an int in [lo, hi].
 * Each reports at n and returns -1 when the value is not one. */
int dnv_get_fraction(vctx *v, const dn_ynode *n, const char *key, double *out);
int dnv_get_positive(vctx *v, const dn_ynode *n, const char *key, int strict, double *out);
int dnv_get_int(vctx *v, const dn_ynode *n, const char *key, int lo, int hi, int *out);

/* `layers` (validate_layers.c): a non-empty sequence of at most
 * DN_MAX_LAYERS layer mappings into v->s->layers, with their positions in
 * v->src; then every override must have named a layer. */
void dnv_check_layers(vctx *v, const dn_ynode *n);
void dnv_check_overrides_used(vctx *v);

/* `optimizer` (validate_optim.c): a mapping of the keys its type takes,
 * or the type alone; into *o, which holds the defaults. */
void dnv_check_optimizer(vctx *v, const dn_ynode *n, dn_optimizer *o);
/* `schedule`: a mapping with `type` and the keys that type takes, into *s
 * (holding the defaults); lr is the optimizer's, which min_lr must stay below. */
void dnv_check_schedule(vctx *v, const dn_ynode *n, double lr, dn_schedule *s);
/* `data` (validate_data.c): the format, its files and CSV layout, the
 * targets' kind and the feature scaling. Needs the loss (train) checked. */
void dnv_check_data(vctx *v, const dn_ynode *n);
/* Whether the loss is multi-label binary cross-entropy (binary_cross_entropy
 * on an output layer of 2 or more units; needs the layers checked). */
int dnv_multilabel(const vctx *v);

/* Shapes and the parameter layout (validate_layout.c), when the input and
 * every layer are valid. */
void dnv_layout_params(vctx *v);

#endif
