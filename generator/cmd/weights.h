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
    /* CSV and NPY data (spec format csv or npy): */
    float *shift, *scale; /* [input] the training rows' feature scaling (data.shift, data.scale) */
    char **class_names;   /* the class names (metadata class_names), or NULL */
    int n_classes;
} dn_weights;

/* Loads the safetensors file at path and checks it against the spec (names,
 * F32, shapes, finite values; `optimizer.*` tensors ignored, others
 * rejected). For csv and npy data, also the scaling (required) and the
 * class names (when the labels were names: as many as the outputs). Returns 0, or -1 after one line on err naming file and tensor. */
int dn_weights_load(const char *path, const dn_spec *s, dn_weights *w, FILE *err);
void dn_weights_free(dn_weights *w);

#endif
