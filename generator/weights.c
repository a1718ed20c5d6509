/* weights.c - reads trained weights (safetensors) for `dngen --inference`,
 * checked against the validated spec: every layer's `<name>.weight`
 * [units, in] and `<name>.bias` [units] as F32, finite; optimizer state of a
 * full training checkpoint (`optimizer.*`) is ignored; anything else is an
 * error, so a file made for another network is never silently used. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dn_runtime.h"
#include "weights.h"

/* Checks one tensor against the expected shape; copies it into dst. */
static int check_copy(const dn_st_file *f, const char *path, const char *name, int ndim, int64_t d0,
                      int64_t d1, float *dst, FILE *err) {
    const dn_st_info *t = dn_st_find(f, name);
    if (!t) {
        fprintf(err, "%s: tensor '%s' is missing\n", path, name);
        return -1;
    }
    if (strcmp(t->dtype, "F32") != 0) {
        fprintf(err, "%s: tensor '%s' is %s, expected F32\n", path, name, t->dtype);
        return -1;
    }
    int64_t want[2] = {d0, d1};
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        if (ndim == 2)
            fprintf(err, "%s: tensor '%s' does not have the spec's shape [%lld, %lld]\n", path, name,
                    (long long)d0, (long long)d1);
        else
            fprintf(err, "%s: tensor '%s' does not have the spec's shape [%lld]\n", path, name, (long long)d0);
        return -1;
    }
    size_t count = (size_t)d0 * (size_t)(ndim == 2 ? d1 : 1);
    memcpy(dst, t->data, count * sizeof(float)); /* little-endian host assumed, as the runtime does */
    for (size_t i = 0; i < count; i++)
        if (!isfinite(dst[i])) {
            fprintf(err, "%s: tensor '%s' holds a non-finite value at element %zu\n", path, name, i);
            return -1;
        }
    return 0;
}

/* Rejects tensors that are neither parameters of the spec nor optimizer state. */
static int check_extra(const dn_st_file *f, const char *path, const dn_spec *s, FILE *err) {
    for (int i = 0; i < dn_st_count(f); i++) {
        const char *name = dn_st_get(f, i)->name;
        if (strncmp(name, "optimizer.", 10) == 0) continue;
        int known = 0;
        for (int k = 0; k < s->n_layers && !known; k++) {
            size_t n = strlen(s->layers[k].name);
            known = strncmp(name, s->layers[k].name, n) == 0 &&
                    (strcmp(name + n, ".weight") == 0 || strcmp(name + n, ".bias") == 0);
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

void dn_layer_tensors(const dn_layer *L, dn_tensor_info t[2]) {
    memset(t, 0, 2 * sizeof *t);
    t[0].ndim = 2;
    t[0].shape[0] = L->units;
    t[0].shape[1] = L->in;
    t[0].offset = L->w_off;
    t[0].count = (size_t)L->units * (size_t)L->in;
    t[0].fan_in = L->in;
    t[0].panel = DN_PANEL;
    t[0].stored = (size_t)L->stride * (size_t)L->in;
    t[1].ndim = 1;
    t[1].shape[0] = L->units;
    t[1].offset = L->b_off;
    t[1].count = (size_t)L->units;
    t[1].fan_in = L->in;
    t[1].stored = (size_t)L->stride;
}

int dn_weights_load(const char *path, const dn_spec *s, dn_weights *w, FILE *err) {
    char msg[DN_ERR_MAX];
    dn_st_file *f = NULL;
    memset(w, 0, sizeof *w);
    if (dn_st_open(path, &f, msg) != 0) {
        fprintf(err, "%s\n", msg);
        return -1;
    }
    size_t most = 0; /* the largest tensor, as a staging area in PyTorch layout */
    for (int k = 0; k < s->n_layers; k++) {
        size_t c = (size_t)s->layers[k].units * (size_t)s->layers[k].in;
        most = c > most ? c : most;
    }
    float *p = calloc(s->n_floats, sizeof(float)), *stage = malloc(most * sizeof(float));
    int bad = !p || !stage || check_extra(f, path, s, err) != 0;
    if (!p || !stage) fprintf(err, "dngen: out of memory for %zu weights\n", s->n_params);
    for (int k = 0; k < s->n_layers && !bad; k++) {
        const dn_layer *L = &s->layers[k];
        dn_tensor_info t[2];
        dn_layer_tensors(L, t);
        char name[DN_NAME_MAX + 16];
        snprintf(name, sizeof name, "%s.weight", L->name);
        bad = check_copy(f, path, name, 2, L->units, L->in, stage, err) != 0;
        if (!bad) dn_tensor_import(&t[0], p, stage);
        snprintf(name, sizeof name, "%s.bias", L->name);
        bad = bad || check_copy(f, path, name, 1, L->units, 0, stage, err) != 0;
        if (!bad) dn_tensor_import(&t[1], p, stage);
    }
    dn_st_close(f);
    free(stage);
    if (bad) {
        free(p);
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
}
