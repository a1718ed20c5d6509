/* fuzz_spec.c - libFuzzer harness for the spec front end (YAML -> dn_spec).
 *
 * Build and run (from the source root; tests/fuzz/run.sh does this):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L \
 *     -Igenerator/front -Iruntime tests/fuzz/fuzz_spec.c generator/front/diag.c \
 *     generator/front/yaml_tree.c generator/front/yaml_get.c generator/front/validate.c \
 *     runtime/dn_file.c runtime/dn_io.c $(pkg-config --cflags --libs yaml-0.1) -o /tmp/fuzz_spec
 *   /tmp/fuzz_spec -max_total_time=60 -dict=tests/fuzz/spec.dict CORPUS_COPY
 *
 * Each input is parsed as a whole spec file with diagnostics captured in a
 * memory stream. Besides the sanitizers' checks, the front end's contract
 * (spec.h, docs/spec.md) is asserted:
 *  - the return value is 0 exactly when no error was reported, else -1;
 *  - every diagnostic is one line "fuzz.yaml[:line[:col]]: severity: ...";
 *  - on success the spec is valid: names are C identifiers (unique among the
 *    layers), counts and values within their documented ranges, and the
 *    parameter layout is consecutive (w_off, b_off, then with batchnorm
 *    g_off, beta_off increasing; the running statistics after all of them;
 *    n_params = sum of units * (in + 1), plus 2 * units per batchnorm layer,
 *    <= DN_MAX_PARAMS);
 *  - an accepted spec parsed again with overrides (dn_spec_parse_with) of
 *    its hidden layers' dropout, by text from the input's last bytes, keeps
 *    all of the above: overrides are validated like the file's own values.
 * A violated invariant calls abort(), which libFuzzer reports as a crash. */
#include "spec.h"
#include "yaml_get.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FSPEC_FILE "fuzz.yaml"

/* Aborts (a finding) unless cond holds; names the failed check on stderr. */
#define FSPEC_CHECK(cond)                                                                     \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_spec: invariant failed: %s (%s:%d)\n", #cond, __FILE__,     \
                    __LINE__);                                                                \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* 1 if buf[0..cap) holds a NUL-terminated string. */
static int fspec_terminated(const char *buf, size_t cap) { return memchr(buf, '\0', cap) != NULL; }

/* 1 if s is a C identifier that dngen accepts as a name. */
static int fspec_is_ident(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > DN_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return !dn_is_c_keyword(s);
}

/* 1 if p is a valid dropout probability. */
static int fspec_is_prob(double p) { return isfinite(p) && p >= 0.0 && p < 1.0; }

/* The files and CSV layout of a data section: idx has none; csv and npy a
 * train file (npy: targets file too, and test_y exactly with test), at most
 * one of test and test_split, a usable delimiter, selectors in bounds. */
static void fspec_check_data_files(const dn_data *dd, int idx, int npy) {
    const char *files[4] = {dd->train, dd->train_y, dd->test, dd->test_y};
    for (int k = 0; k < 4; k++)
        FSPEC_CHECK(fspec_terminated(files[k], sizeof dd->train));
    FSPEC_CHECK((dd->train[0] != '\0') == !idx);
    FSPEC_CHECK((dd->train_y[0] != '\0') == npy);
    FSPEC_CHECK((dd->test_y[0] != '\0') == (npy && dd->test[0] != '\0'));
    FSPEC_CHECK(!idx || (dd->test[0] == '\0' && dd->test_split == 0));
    FSPEC_CHECK(dd->test_split >= 0 && dd->test_split < 1 && !(dd->test_split > 0 && dd->test[0]));
    FSPEC_CHECK(idx || (dd->delimiter != 0 && !strchr("\"\r\n#", dd->delimiter)));
    FSPEC_CHECK(dd->n_target >= 0 && dd->n_target <= DN_DATA_MAX_COLS);
    FSPEC_CHECK(dd->n_ignore >= 0 && dd->n_ignore <= DN_DATA_MAX_COLS);
    FSPEC_CHECK(dd->skip >= 0);
}

/* Checks a spec that dn_spec_parse accepted. */
static void fspec_check_spec(const dn_spec *s, const uint8_t *data, size_t size) {
    FSPEC_CHECK(fspec_terminated(s->name, sizeof s->name) && fspec_is_ident(s->name));
    FSPEC_CHECK(fspec_terminated(s->path, sizeof s->path) && !strcmp(s->path, FSPEC_FILE));
    FSPEC_CHECK(fspec_terminated(s->description, sizeof s->description));
    FSPEC_CHECK(s->hash == dn_fnv1a64(data, size));
    FSPEC_CHECK(s->input >= 1 && s->input <= DN_MAX_UNITS);
    FSPEC_CHECK(fspec_is_prob(s->input_dropout));
    FSPEC_CHECK(s->n_layers >= 1 && s->n_layers <= DN_MAX_LAYERS);

    size_t total = 0, floats = 0;
    int in = s->input, n_bn = 0;
    const dn_train *t0 = &s->train;
    for (int i = 0; i < s->n_layers; i++) {
        const dn_layer *l = &s->layers[i];
        int last = i == s->n_layers - 1;
        FSPEC_CHECK(fspec_terminated(l->name, sizeof l->name) && fspec_is_ident(l->name));
        for (int j = 0; j < i; j++)
            FSPEC_CHECK(strcmp(l->name, s->layers[j].name) != 0);
        FSPEC_CHECK(l->units >= 1 && l->units <= DN_MAX_UNITS);
        FSPEC_CHECK(l->in == in);
        FSPEC_CHECK((unsigned)l->act < DN_ACT_COUNT);
        FSPEC_CHECK(l->act != DN_ACT_SOFTMAX || last);
        FSPEC_CHECK(isfinite(l->act_alpha) && isfinite(l->act_threshold) && (l->act_tanh == 0 || l->act_tanh == 1));
        FSPEC_CHECK(l->act != DN_ACT_SOFTPLUS || l->act_alpha > 0.0);
        FSPEC_CHECK(fspec_is_prob(l->dropout));
        FSPEC_CHECK(!last || l->dropout == 0.0);
        FSPEC_CHECK(l->loc.line >= 1 && l->loc.col >= 1);
        /* Consecutive layout, padded to panels; every partial sum stays
         * within the limit, so none of these products or sums can overflow
         * size_t. */
        FSPEC_CHECK(l->stride >= l->units && l->stride < l->units + DN_PANEL && l->stride % DN_PANEL == 0);
        FSPEC_CHECK((size_t)l->units * (size_t)l->in <= DN_MAX_PARAMS - total);
        total += (size_t)l->units * (size_t)l->in;
        FSPEC_CHECK((size_t)l->units <= DN_MAX_PARAMS - total);
        total += (size_t)l->units;
        FSPEC_CHECK(l->w_off == floats);
        floats += (size_t)l->stride * (size_t)l->in;
        FSPEC_CHECK(l->b_off == floats);
        floats += (size_t)l->stride;
        FSPEC_CHECK(l->batchnorm == 0 || l->batchnorm == 1);
        if (l->batchnorm) {
            FSPEC_CHECK(l->bn_momentum >= 0.0 && l->bn_momentum <= 1.0 && l->bn_eps > 0.0 && isfinite(l->bn_eps));
            FSPEC_CHECK(t0->batch_size >= 2);
            FSPEC_CHECK(2 * (size_t)l->units <= DN_MAX_PARAMS - total);
            total += 2 * (size_t)l->units;
            FSPEC_CHECK(l->g_off == floats && l->beta_off == floats + (size_t)l->stride);
            floats += 2 * (size_t)l->stride;
            n_bn++;
        }
        in = l->units;
    }
    FSPEC_CHECK(s->n_params == total && s->n_params <= DN_MAX_PARAMS && s->n_train_floats == floats);
    FSPEC_CHECK(s->n_batchnorm == n_bn);
    for (int i = 0; i < s->n_layers; i++) {
        const dn_layer *l = &s->layers[i];
        if (!l->batchnorm) continue;
        FSPEC_CHECK(l->rm_off == floats && l->rv_off == floats + (size_t)l->stride);
        floats += 2 * (size_t)l->stride;
    }
    FSPEC_CHECK(s->n_floats == floats);

    const dn_layer *out = &s->layers[s->n_layers - 1];
    const dn_train *t = &s->train;
    FSPEC_CHECK(t->batch_size >= 1 && t->batch_size <= 65536);
    FSPEC_CHECK(t->epochs >= 1 && t->epochs <= 1000000);
    FSPEC_CHECK((unsigned)t->loss < DN_LOSS_COUNT);
    FSPEC_CHECK(t->label_smoothing >= 0.0 && t->label_smoothing <= 1.0);
    FSPEC_CHECK(t->loss == DN_LOSS_CROSS_ENTROPY || t->label_smoothing == 0.0);
    if (t->loss == DN_LOSS_CROSS_ENTROPY)
        FSPEC_CHECK(out->act == DN_ACT_SOFTMAX && out->units >= 2);
    else if (t->loss == DN_LOSS_BINARY_CROSS_ENTROPY)
        FSPEC_CHECK(out->act == DN_ACT_SIGMOID && out->units == 1);
    else
        FSPEC_CHECK(out->act == DN_ACT_LINEAR || out->act == DN_ACT_SIGMOID ||
                    out->act == DN_ACT_TANH);
    FSPEC_CHECK((unsigned)t->opt.type < DN_OPT_COUNT);
    FSPEC_CHECK(isfinite(t->opt.lr) && t->opt.lr > 0.0);
    FSPEC_CHECK(fspec_is_prob(t->opt.beta1) && fspec_is_prob(t->opt.beta2));
    FSPEC_CHECK(isfinite(t->opt.eps) && t->opt.eps > 0.0);
    FSPEC_CHECK(isfinite(t->opt.weight_decay) && t->opt.weight_decay >= 0.0);

    const dn_data *dd = &s->data;
    FSPEC_CHECK(fspec_terminated(dd->format, sizeof dd->format));
    int idx = !strcmp(dd->format, "idx"), npy = !strcmp(dd->format, "npy");
    FSPEC_CHECK(idx || npy || !strcmp(dd->format, "csv"));
    FSPEC_CHECK(fspec_terminated(dd->dir, sizeof dd->dir) && (dd->dir[0] != '\0') == idx);
    FSPEC_CHECK(isfinite(dd->mean));
    FSPEC_CHECK(isfinite(dd->std) && dd->std > 0.0);
    fspec_check_data_files(dd, idx, npy);
    FSPEC_CHECK((unsigned)dd->normalize <= DN_NORM_MINMAX);
    FSPEC_CHECK(!dd->values || (!idx && t->loss == DN_LOSS_MSE));
}

/* Checks the captured diagnostics: complete lines, each with the file name
 * and a severity in front of the message, no NUL bytes. */
static void fspec_check_diags(const char *text, size_t len, const dn_diag *d, int rc) {
    FSPEC_CHECK(strlen(text) == len);
    FSPEC_CHECK(len == 0 || text[len - 1] == '\n');
    if (rc != 0)
        FSPEC_CHECK(len > 0);
    for (const char *line = text; line < text + len;) {
        const char *nl = strchr(line, '\n');
        FSPEC_CHECK(nl != NULL);
        FSPEC_CHECK(!strncmp(line, FSPEC_FILE ":", strlen(FSPEC_FILE ":")));
        char *end = NULL;
        const char *p = line + strlen(FSPEC_FILE ":");
        /* Optional "line:" and "col:", each a positive integer. */
        for (int k = 0; k < 2 && *p >= '0' && *p <= '9'; k++) {
            long v = strtol(p, &end, 10);
            FSPEC_CHECK(v >= 1 && *end == ':');
            p = end + 1;
        }
        FSPEC_CHECK(!strncmp(p, " error: ", 8) || !strncmp(p, " warning: ", 10) ||
                    !strncmp(p, " note: ", 7));
        line = nl + 1;
    }
    FSPEC_CHECK(d->n_errors >= 0 && d->n_warnings >= 0);
}

/* Parses data again with every hidden layer's dropout overridden by the
 * text of the input's last (up to 8) bytes, and checks the same contract;
 * when accepted, those layers all have that one rate. */
static void fspec_check_overrides(const dn_spec *s, const uint8_t *data, size_t size) {
    char value[9] = {0};
    size_t n = size < 8 ? size : 8;
    memcpy(value, data + size - n, n);
    dn_override ov[DN_MAX_LAYERS];
    for (int i = 0; i + 1 < s->n_layers; i++)
        ov[i] = (dn_override){s->layers[i].name, "dropout", value};
    dn_overrides set = {ov, s->n_layers - 1, "fuzz"};
    dn_spec *v = malloc(sizeof *v);
    char *text = NULL;
    size_t len = 0;
    FILE *out = v ? open_memstream(&text, &len) : NULL;
    if (!out) {
        free(v);
        return;
    }
    dn_diag d;
    dn_diag_init(&d, out, FSPEC_FILE);
    int rc = dn_spec_parse_with((const char *)data, size, FSPEC_FILE, &set, v, &d);
    FSPEC_CHECK(fclose(out) == 0);
    FSPEC_CHECK(rc == 0 || rc == -1);
    FSPEC_CHECK((rc == 0) == (d.n_errors == 0));
    fspec_check_diags(text, len, &d, rc);
    if (rc == 0) {
        fspec_check_spec(v, data, size);
        for (int i = 0; i + 1 < v->n_layers; i++)
            FSPEC_CHECK(v->layers[i].dropout == v->layers[0].dropout);
    }
    free(text);
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dn_spec *spec = malloc(sizeof *spec);
    if (!spec)
        return 0;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) {
        free(spec);
        return 0;
    }
    dn_diag d;
    dn_diag_init(&d, out, FSPEC_FILE);
    int rc = dn_spec_parse((const char *)data, size, FSPEC_FILE, spec, &d);
    FSPEC_CHECK(fclose(out) == 0);
    FSPEC_CHECK(rc == 0 || rc == -1);
    FSPEC_CHECK((rc == 0) == (d.n_errors == 0));
    fspec_check_diags(text, len, &d, rc);
    if (rc == 0) {
        fspec_check_spec(spec, data, size);
        fspec_check_overrides(spec, data, size);
    }
    free(text);
    free(spec);
    return 0;
}
