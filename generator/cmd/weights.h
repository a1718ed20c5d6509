/* weights.h - trained weights for `dngen --inference`. */
#ifndef DNGEN_WEIGHTS_H
#define DNGEN_WEIGHTS_H
#include <stdint.h>
#include <stdio.h>

#include "dn_runtime.h"
#include "spec.h"

typedef struct {
    float *params; /* n (= spec n_floats) floats in the parameter buffer's layout */
    size_t n;
    uint64_t hash; /* FNV-1a 64 of the file's bytes */
} dn_weights;

/* Loads the safetensors file at path and checks it against the spec (names,
 * F32, shapes, finite values; `optimizer.*` tensors ignored, others
 * rejected). Returns 0, or -1 after one line on err naming file and tensor. */
int dn_weights_load(const char *path, const dn_spec *s, dn_weights *w, FILE *err);
void dn_weights_free(dn_weights *w);

/* One tensor of a layer: its description (info.name points at name). */
#define DN_LAYER_TENSORS 6
typedef struct {
    dn_tensor_info info;
    char name[DN_NAME_MAX + 24];
} dn_layer_tensor;

/* The tensors of layer L in state_dict order: "<L>.weight", "<L>.bias", and
 * with batchnorm "<L>_bn.weight", "<L>_bn.bias", "<L>_bn.running_mean",
 * "<L>_bn.running_var" (the last two state). What the generated tensor
 * table says and what dn_tensor_index() reads. Returns the count (2 or 6). */
int dn_layer_tensors(const dn_layer *L, dn_layer_tensor t[DN_LAYER_TENSORS]);

#endif
