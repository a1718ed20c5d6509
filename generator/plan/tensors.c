/* tensors.c - the tensors of each layer as PyTorch's state_dict names them,
 * where they sit in the parameter buffer and how they are initialized
 * (plan.h, dn_layer_tensors). */
#include <stdio.h>
#include <string.h>

#include "plan.h"

/* A [features] tensor of a batchnorm layer at offset (dn_bn_features: units
 * or channels); fill is its init value. */
static void bn_tensor(dn_plan_tensor *t, const dn_layer *L, const char *what, size_t offset, float fill,
                      int state) {
    snprintf(t->name, sizeof t->name, "%s_bn.%s", L->name, what);
    t->info.ndim = 1;
    t->info.shape[0] = dn_bn_features(L);
    t->info.offset = offset;
    t->info.count = (size_t)dn_bn_features(L);
    t->info.stored = (size_t)dn_bn_stride(L);
    t->info.fill = fill;
    t->info.state = state;
}

/* conv2d: weight [F, C, KH, KW] and bias [F] in PyTorch's layout,
 * initialized uniform in +-1/sqrt(C * KH * KW) as PyTorch's default. */
static int conv_tensors(const dn_layer *L, dn_plan_tensor t[DN_LAYER_TENSORS]) {
    const int fan_in = L->in_shape.c * L->kh * L->kw;
    snprintf(t[0].name, sizeof t[0].name, "%s.weight", L->name);
    t[0].info.ndim = 4;
    t[0].info.shape[0] = L->out_shape.c;
    t[0].info.shape[1] = L->in_shape.c;
    t[0].info.shape[2] = L->kh;
    t[0].info.shape[3] = L->kw;
    t[0].info.count = (size_t)L->out_shape.c * (size_t)fan_in;
    t[0].info.offset = L->w_off;
    snprintf(t[1].name, sizeof t[1].name, "%s.bias", L->name);
    t[1].info.ndim = 1;
    t[1].info.shape[0] = L->out_shape.c;
    t[1].info.count = (size_t)L->out_shape.c;
    t[1].info.offset = L->b_off;
    for (int j = 0; j < 2; j++) {
        t[j].info.fan_in = fan_in;
        t[j].info.stored = t[j].info.count;
    }
    return 2;
}

/* Batch norm's four tensors of layer L from t on (none without it): gamma,
 * beta, then the running statistics (state). Returns the count. */
static int bn_tensors(const dn_layer *L, dn_plan_tensor *t) {
    if (!L->batchnorm)
        return 0;
    bn_tensor(&t[0], L, "weight", L->g_off, 1.0f, 0);
    bn_tensor(&t[1], L, "bias", L->beta_off, 0.0f, 0);
    bn_tensor(&t[2], L, "running_mean", L->rm_off, 0.0f, 1);
    bn_tensor(&t[3], L, "running_var", L->rv_off, 1.0f, 1);
    return 4;
}

/* dense: weight [units, in] in panels and bias [units]; returns 2. */
static int dense_tensors(const dn_layer *L, dn_plan_tensor t[DN_LAYER_TENSORS]) {
    snprintf(t[0].name, sizeof t[0].name, "%s.weight", L->name);
    t[0].info.ndim = 2;
    t[0].info.shape[0] = L->units;
    t[0].info.shape[1] = L->in;
    t[0].info.offset = L->w_off;
    t[0].info.count = (size_t)L->units * (size_t)L->in;
    t[0].info.fan_in = L->in;
    t[0].info.panel = DN_PANEL;
    t[0].info.stored = (size_t)L->stride * (size_t)L->in;
    snprintf(t[1].name, sizeof t[1].name, "%s.bias", L->name);
    t[1].info.ndim = 1;
    t[1].info.shape[0] = L->units;
    t[1].info.offset = L->b_off;
    t[1].info.count = (size_t)L->units;
    t[1].info.fan_in = L->in;
    t[1].info.stored = (size_t)L->stride;
    return 2;
}

int dn_layer_tensors(const dn_layer *L, dn_plan_tensor t[DN_LAYER_TENSORS]) {
    memset(t, 0, DN_LAYER_TENSORS * sizeof *t);
    int n = L->type == DN_LAYER_CONV2D ? conv_tensors(L, t) : L->type == DN_LAYER_DENSE ? dense_tensors(L, t) : 0;
    if (n) n += bn_tensors(L, t + n);
    for (int j = 0; j < n; j++) t[j].info.name = t[j].name;
    return n;
}

