/* validate_layout.c - every layer's input and output shape from the
 * input's, impossible shapes reported at their layer, then the parameter
 * buffer's layout (offsets, counts) in PyTorch's state_dict order. */
#include <stdint.h>

#include "validate.h"

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
        return (uint64_t)l->out_shape.c * ((uint64_t)l->in_shape.c * (uint64_t)(l->kh * l->kw) + 1) +
               (l->batchnorm ? 2 * (uint64_t)l->out_shape.c : 0);
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

/* Lays out batch norm's gamma and beta of layer l from `floats` on (when
 * it has batch norm); returns the new end. */
static uint64_t layout_bn(dn_layer *l, uint64_t floats) {
    if (!l->batchnorm)
        return floats;
    l->g_off = (size_t)floats;
    l->beta_off = (size_t)(floats + (uint64_t)dn_bn_stride(l));
    return floats + 2 * (uint64_t)dn_bn_stride(l);
}

/* Lays out layer l's trained tensors from `floats` on; returns the new end. */
static uint64_t layout_layer(dn_layer *l, uint64_t floats) {
    if (l->type == DN_LAYER_CONV2D) {
        l->w_off = (size_t)floats;
        floats += (uint64_t)l->out_shape.c * (uint64_t)l->in_shape.c * (uint64_t)(l->kh * l->kw);
        l->b_off = (size_t)floats;
        return layout_bn(l, floats + (uint64_t)l->out_shape.c);
    }
    if (l->type != DN_LAYER_DENSE)
        return floats;
    l->w_off = (size_t)floats;
    floats += (uint64_t)l->stride * (uint64_t)l->in;
    l->b_off = (size_t)floats;
    floats += (uint64_t)l->stride;
    return layout_bn(l, floats);
}

/* Fills shapes, in/stride and the offsets in state_dict order (W, b, then
 * gamma and beta with batchnorm, per layer, dense weights padded to panels;
 * the running statistics after all of them), n_params, n_train_floats and
 * n_floats, when the input and every layer are valid. The parameter count
 * may not exceed DN_MAX_PARAMS; the error sits at the layer that crosses
 * the limit. Widths are <= 2^24, so stride * in <= 2^48 fits in uint64_t;
 * the running totals stay far below 2^64. */
void dnv_layout_params(vctx *v) {
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
        l->rv_off = (size_t)(floats + (uint64_t)dn_bn_stride(l));
        floats += 2 * (uint64_t)dn_bn_stride(l);
    }
    v->s->n_floats = (size_t)floats;
}

