/* weights.c - reads trained weights (safetensors) for `dngen --inference`,
 * checked against the validated spec: every layer's tensors (dn_layer_tensors
 * in plan/tensors.c: `<name>.weight` [units, in] or [filters, c, kh, kw],
 * `<name>.bias`, with batchnorm also `<name>_bn.*` [units or filters]) as
 * F32, finite; optimizer state of a full training checkpoint (`optimizer.*`,
 * `best.*`) is ignored; anything else is an error, so a file made for
 * another network is never silently used. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dn_runtime.h"
#include "plan.h"
#include "weights.h"

/* Checks the file's tensor t->name against t's shape; copies it into dst
 * (PyTorch layout). */
static int check_copy(const dn_st_file *f, const char *path, const dn_tensor_info *t, float *dst, FILE *err) {
    const dn_st_info *in = dn_st_find(f, t->name);
    if (!in) {
        fprintf(err, "%s: tensor '%s' is missing\n", path, t->name);
        return -1;
    }
    if (strcmp(in->dtype, "F32") != 0) {
        fprintf(err, "%s: tensor '%s' is %s, expected F32\n", path, t->name, in->dtype);
        return -1;
    }
    int ok = in->ndim == t->ndim;
    for (int i = 0; ok && i < t->ndim; i++) ok = in->shape[i] == t->shape[i];
    if (!ok) {
        char shape[96];
        int len = snprintf(shape, sizeof shape, "%lld", (long long)t->shape[0]);
        for (int i = 1; i < t->ndim; i++)
            len += snprintf(shape + len, sizeof shape - (size_t)len, ", %lld", (long long)t->shape[i]);
        fprintf(err, "%s: tensor '%s' does not have the spec's shape [%s]\n", path, t->name, shape);
        return -1;
    }
    memcpy(dst, in->data, t->count * sizeof(float)); /* little-endian host assumed, as the runtime does */
    for (size_t i = 0; i < t->count; i++)
        if (!isfinite(dst[i])) {
            fprintf(err, "%s: tensor '%s' holds a non-finite value at element %zu\n", path, t->name, i);
            return -1;
        }
    return 0;
}

/* Rejects tensors that are neither tensors of the spec's layers nor
 * optimizer state or best weights. */
static int check_extra(const dn_st_file *f, const char *path, const dn_spec *s, FILE *err) {
    for (int i = 0; i < dn_st_count(f); i++) {
        const char *name = dn_st_get(f, i)->name;
        if (strncmp(name, "optimizer.", 10) == 0 || strncmp(name, "best.", 5) == 0) continue;
        if (strcmp(s->data.format, "idx") != 0 && (!strcmp(name, "data.shift") || !strcmp(name, "data.scale")))
            continue;
        int known = 0;
        for (int k = 0; k < s->n_layers && !known; k++) {
            dn_plan_tensor t[DN_LAYER_TENSORS];
            int n = dn_layer_tensors(&s->layers[k], t);
            for (int j = 0; j < n && !known; j++) known = strcmp(name, t[j].name) == 0;
        }
        if (!known) {
            fprintf(err, "%s: tensor '%s' is not a parameter of model '%s'\n", path, name, s->name);
            return -1;
        }
    }
    return 0;
}

/* FNV-1a 64 of the file's bytes; 0 if unreadable (then dn_st_open fails too). */
static uint64_t file_hash(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    uint64_t h = 0xcbf29ce484222325ull;
    int c;
    while ((c = getc(fp)) != EOF) {
        h ^= (uint64_t)(unsigned char)c;
        h *= 0x100000001b3ull;
    }
    fclose(fp);
    return h;
}

/* One of data.shift and data.scale: F32 [input], finite; scale > 0. */
static float *load_scaling(const dn_st_file *f, const char *path, const dn_spec *s, const char *name, FILE *err) {
    const dn_st_info *in = dn_st_find(f, name);
    if (!in || strcmp(in->dtype, "F32") != 0 || in->ndim != 1 || in->shape[0] != s->input) {
        fprintf(err, "%s: %s %s (F32 [%d], the feature scaling a %s trainer of this spec saves)\n", path,
                in ? "has a malformed tensor" : "lacks the tensor", name, s->input, s->data.format);
        return NULL;
    }
    float *v = malloc((size_t)s->input * sizeof *v);
    for (int i = 0; v && i < s->input; i++) {
        memcpy(&v[i], (const char *)in->data + 4 * (size_t)i, 4);
        if (!isfinite(v[i]) || (name[5] == 's' && name[6] == 'c' && !(v[i] > 0))) {
            fprintf(err, "%s: tensor '%s' holds an invalid value at element %d\n", path, name, i);
            free(v);
            return NULL;
        }
    }
    return v;
}

/* The scaling and class names of csv and npy data into w. */
static int load_data_info(const dn_st_file *f, const char *path, const dn_spec *s, dn_weights *w, FILE *err) {
    if (strcmp(s->data.format, "idx") == 0) return 0;
    if (!(w->shift = load_scaling(f, path, s, "data.shift", err)) ||
        !(w->scale = load_scaling(f, path, s, "data.scale", err)))
        return -1;
    const char *names = dn_st_meta_get(f, "class_names");
    int outputs = s->layers[s->n_layers - 1].units;
    if (!names) return 0;
    if (dn_data_names_decode(names, &w->class_names, &w->n_classes) != 0 || w->n_classes > outputs) {
        fprintf(err, "%s: malformed class_names metadata (percent-encoded names, at most %d)\n", path, outputs);
        return -1;
    }
    return 0;
}

int dn_weights_load(const char *path, const dn_spec *s, dn_weights *w, FILE *err) {
    char msg[DN_ERR_MAX];
    dn_st_file *f = NULL;
    memset(w, 0, sizeof *w);
    if (dn_st_open(path, &f, msg) != 0) {
        fprintf(err, "%s\n", msg);
        return -1;
    }
    size_t most = 1; /* the largest tensor, as a staging area in PyTorch layout */
    for (int k = 0; k < s->n_layers; k++) {
        dn_plan_tensor t[DN_LAYER_TENSORS];
        int n = dn_layer_tensors(&s->layers[k], t);
        for (int j = 0; j < n; j++) most = t[j].info.count > most ? t[j].info.count : most;
    }
    float *p = calloc(s->n_floats, sizeof(float)), *stage = malloc(most * sizeof(float));
    int bad = !p || !stage || check_extra(f, path, s, err) != 0;
    if (!p || !stage) fprintf(err, "dngen: out of memory for %zu weights\n", s->n_params);
    for (int k = 0; k < s->n_layers && !bad; k++) {
        dn_plan_tensor t[DN_LAYER_TENSORS];
        int n = dn_layer_tensors(&s->layers[k], t);
        for (int j = 0; j < n && !bad; j++) {
            bad = check_copy(f, path, &t[j].info, stage, err) != 0;
            if (!bad) dn_tensor_import(&t[j].info, p, stage);
        }
    }
    if (!bad) bad = load_data_info(f, path, s, w, err) != 0;
    dn_st_close(f);
    free(stage);
    if (bad) {
        free(p);
        dn_weights_free(w);
        return -1;
    }
    w->params = p;
    w->n = s->n_floats;
    w->hash = file_hash(path);
    return 0;
}

void dn_weights_free(dn_weights *w) {
    free(w->params);
    w->params = NULL;
    free(w->shift);
    free(w->scale);
    for (int i = 0; w->class_names && i < w->n_classes; i++) free(w->class_names[i]);
    free(w->class_names);
    w->shift = w->scale = NULL;
    w->class_names = NULL;
    w->n_classes = 0;
}
