/* dn_tensor.c - between the parameter buffer's layout (what the generated
 * kernels want: weights in panels, padded) and PyTorch's (what checkpoints,
 * fixtures and users see). See dn_tensor_info in dn_runtime.h. */
#include "dn_runtime.h"

#include <string.h>

void dn_tensor_export(const dn_tensor_info *t, const float *buf, float *dst) {
    if (t->panel == 0) {
        memcpy(dst, buf + t->offset, t->count * sizeof *dst);
        return;
    }
    for (size_t e = 0; e < t->count; e++)
        dst[e] = buf[dn_tensor_index(t, e)];
}

void dn_tensor_import(const dn_tensor_info *t, float *buf, const float *src) {
    memset(buf + t->offset, 0, t->stored * sizeof *buf);
    if (t->panel == 0) {
        memcpy(buf + t->offset, src, t->count * sizeof *src);
        return;
    }
    for (size_t e = 0; e < t->count; e++)
        buf[dn_tensor_index(t, e)] = src[e];
}

size_t dn_model_param_count(const dn_model *m) {
    size_t n = 0;
    for (int k = 0; k < m->n_tensors; k++)
        if (!m->tensors[k].state)
            n += m->tensors[k].count;
    return n;
}

size_t dn_model_tensor_count(const dn_model *m) {
    size_t n = 0;
    for (int k = 0; k < m->n_tensors; k++)
        n += m->tensors[k].count;
    return n;
}
