/* check_spec.c - unit tests of the spec front end (yaml_tree, validate, diag).
 *
 * Specs are parsed in-process with dn_spec_parse; diagnostics go to a memory
 * stream and are compared byte for byte, so every test pins both the message
 * text and its line:col. The big table covers one rule per row; tests that
 * need generated input or IR inspection follow it. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

/* ---- helpers -------------------------------------------------------------- */

typedef struct {
    int rc;
    dn_diag d;
    char *out; /* every diagnostic printed, NUL-terminated */
    size_t out_len;
    dn_spec *spec;
} parsed;

static void parse_with(parsed *p, const char *text, size_t len, int max_errors) {
    FILE *f = open_memstream(&p->out, &p->out_len);
    ck_assert_ptr_nonnull(f);
    p->spec = malloc(sizeof *p->spec);
    ck_assert_ptr_nonnull(p->spec);
    dn_diag_init(&p->d, f, "t.yaml");
    p->d.max_errors = max_errors;
    p->rc = dn_spec_parse(text, len, "t.yaml", p->spec, &p->d);
    fclose(f);
}

static void parse_text(parsed *p, const char *text) { parse_with(p, text, strlen(text), 0); }

static void parsed_free(parsed *p) {
    free(p->out);
    free(p->spec);
}

static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *s = strstr(hay, needle); s; s = strstr(s + 1, needle))
        n++;
    return n;
}

/* Parses text that must be valid and print nothing. */
static void parse_ok(parsed *p, const char *text) {
    parse_text(p, text);
    ck_assert_msg(p->rc == 0, "expected a valid spec, got:\n%s", p->out);
    ck_assert_str_eq(p->out, "");
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *buf = malloc(1 << 20);
    ck_assert_ptr_nonnull(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* Small building blocks for spec texts. */
#define H "name: t\ninput: 4\n"
#define L "layers:\n  - {units: 3, activation: relu}\n  - {units: 2, activation: softmax}\n"
#define V H L
#define LAY(a, b) "layers:\n  - {" a "}\n  - {" b "}\n"
#define OUT2 "units: 2, activation: softmax"
#define HIDDEN(x) H LAY("units: 3, activation: relu, " x, OUT2)

/* ---- one rule per row ----------------------------------------------------- */

typedef struct {
    const char *name;
    const char *yaml;
    const char *expect; /* the complete diagnostic output */
} spec_case;

static const spec_case cases[] = {
    /* top level */
    {"root_not_mapping", "- a\n", "t.yaml:1:1: error: expected a mapping, got a sequence\n"},
    {"root_scalar", "hello\n", "t.yaml:1:1: error: expected a mapping, got 'hello'\n"},
    {"missing_required", "description: x\n",
     "t.yaml:1:1: error: missing required key 'name' at top level\n"
     "t.yaml:1:1: error: missing required key 'input' at top level\n"
     "t.yaml:1:1: error: missing required key 'layers' at top level\n"},
    {"unknown_top_key_suggest", V "nmae: u\n",
     "t.yaml:6:1: error: unknown key 'nmae' at top level; did you mean 'name'? "
     "(allowed: name, description, input, layers, train, data)\n"},
    {"unknown_top_key_plain", V "zzzzz: 1\n",
     "t.yaml:6:1: error: unknown key 'zzzzz' at top level "
     "(allowed: name, description, input, layers, train, data)\n"},
    {"duplicate_top_key", V "input: 5\n",
     "t.yaml:6:1: error: duplicate key 'input'\n"
     "t.yaml:2:1: note: 'input' first defined here\n"},
    {"name_digit", "name: 9lives\ninput: 4\n" L,
     "t.yaml:1:7: error: invalid model name '9lives': use letters, digits and underscores, "
     "not starting with a digit\n"},
    {"name_dash", "name: my-net\ninput: 4\n" L,
     "t.yaml:1:7: error: invalid model name 'my-net': use letters, digits and underscores, "
     "not starting with a digit\n"},
    {"name_keyword", "name: int\ninput: 4\n" L, "t.yaml:1:7: error: model name 'int' is a C keyword\n"},
    {"name_c23_keyword", "name: bool\ninput: 4\n" L,
     "t.yaml:1:7: error: model name 'bool' is a C keyword\n"},
    {"name_reserved_dn", "name: dn\ninput: 4\n" L,
     "t.yaml:1:7: error: model name 'dn' is reserved: names starting with 'dn_' belong to the dngen "
     "runtime\n"},
    {"name_reserved_dn_prefix", "name: DN_net\ninput: 4\n" L,
     "t.yaml:1:7: error: model name 'DN_net' is reserved: names starting with 'dn_' belong to the "
     "dngen runtime\n"},
    {"name_too_long",
     "name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\ninput: 4\n" L,
     "t.yaml:1:7: error: model name "
     "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' is too long "
     "(64 characters, at most 63)\n"},
    {"name_empty", "name: \"\"\ninput: 4\n" L, "t.yaml:1:7: error: model name must not be empty\n"},
    {"name_seq", "name: [a]\ninput: 4\n" L, "t.yaml:1:7: error: expected a scalar, got a sequence\n"},
    {"description_map", V "description: {a: 1}\n",
     "t.yaml:6:14: error: expected a scalar, got a mapping\n"},

    /* input */
    {"input_zero", "name: t\ninput: 0\n" L,
     "t.yaml:2:8: error: input must be in [1, 16777216], got 0\n"},
    {"input_too_big", "name: t\ninput: 16777217\n" L,
     "t.yaml:2:8: error: input must be in [1, 16777216], got 16777217\n"},
    {"input_float", "name: t\ninput: 1.5\n" L, "t.yaml:2:8: error: expected an integer, got '1.5'\n"},
    {"input_quoted", "name: t\ninput: \"784\"\n" L,
     "t.yaml:2:8: error: expected an integer, got a string\n"},
    {"input_hex", "name: t\ninput: 0x10\n" L, "t.yaml:2:8: error: expected an integer, got '0x10'\n"},
    {"input_plus", "name: t\ninput: +5\n" L, "t.yaml:2:8: error: expected an integer, got '+5'\n"},
    {"input_seq", "name: t\ninput: [4]\n" L,
     "t.yaml:2:8: error: expected an integer or a mapping, got a sequence\n"},
    {"input_empty", "name: t\ninput:\n" L,
     "t.yaml:2:7: error: expected an integer, got an empty value\n"},
    {"input_map_size_zero", "name: t\ninput: {size: 0}\n" L,
     "t.yaml:2:15: error: input size must be in [1, 16777216], got 0\n"},
    {"input_map_missing_size", "name: t\ninput: {dropout: 0.2}\n" L,
     "t.yaml:2:8: error: missing required key 'size' in input\n"},
    {"input_dropout_one", "name: t\ninput: {size: 4, dropout: 1}\n" L,
     "t.yaml:2:27: error: input dropout must be in [0, 1), got 1\n"},
    {"input_dropout_warn", "name: t\ninput: {size: 4, dropout: 0.6}\n" L,
     "t.yaml:2:27: warning: input dropout 0.6 is unusually high\n"},
    {"input_unknown_key", "name: t\ninput: {size: 4, drop: 0.1}\n" L,
     "t.yaml:2:18: error: unknown key 'drop' in input (allowed: size, dropout, shape)\n"},

    /* layers */
    {"layers_map", H "layers: {units: 3}\n", "t.yaml:3:9: error: expected a sequence, got a mapping\n"},
    {"layers_empty", H "layers: []\n", "t.yaml:3:9: error: layers must not be empty\n"},
    {"layer_scalar", H "layers:\n  - 128\n  - {units: 2, activation: softmax}\n",
     "t.yaml:4:5: error: expected a mapping, got '128'\n"},
    {"layer_missing_units", H LAY("activation: relu", OUT2),
     "t.yaml:4:5: error: missing required key 'units' in layer\n"},
    {"layer_missing_activation", H LAY("units: 3", OUT2),
     "t.yaml:4:5: error: missing required key 'activation' in layer\n"},
    {"units_zero", H LAY("units: 0, activation: relu", OUT2),
     "t.yaml:4:13: error: units must be in [1, 16777216], got 0\n"},
    {"units_negative", H LAY("units: -1, activation: relu", OUT2),
     "t.yaml:4:13: error: units must be in [1, 16777216], got -1\n"},
    {"units_too_big", H LAY("units: 16777217, activation: relu", OUT2),
     "t.yaml:4:13: error: units must be in [1, 16777216], got 16777217\n"},
    {"units_huge", H LAY("units: 99999999999999999999999, activation: relu", OUT2),
     "t.yaml:4:13: error: units must be in [1, 16777216], got 99999999999999999999999\n"},
    {"units_float", H LAY("units: 1.5, activation: relu", OUT2),
     "t.yaml:4:13: error: expected an integer, got '1.5'\n"},
    {"units_exp", H LAY("units: 1e3, activation: relu", OUT2),
     "t.yaml:4:13: error: expected an integer, got '1e3'\n"},
    {"units_quoted", H LAY("units: '3', activation: relu", OUT2),
     "t.yaml:4:13: error: expected an integer, got a string\n"},
    {"activation_typo", H LAY("units: 3, activation: rleu", OUT2),
     "t.yaml:4:28: error: unknown activation 'rleu'; did you mean 'relu'? "
     "(allowed: relu, tanh, sigmoid, linear, softmax, leaky_relu, elu, gelu, silu, softplus, swish)\n"},
    {"activation_case", H LAY("units: 3, activation: ReLU", OUT2),
     "t.yaml:4:28: error: unknown activation 'ReLU'; did you mean 'relu'? "
     "(allowed: relu, tanh, sigmoid, linear, softmax, leaky_relu, elu, gelu, silu, softplus, swish)\n"},
    {"activation_unknown", H LAY("units: 3, activation: mish", OUT2),
     "t.yaml:4:28: error: unknown activation 'mish'; did you mean 'swish'? "
     "(allowed: relu, tanh, sigmoid, linear, softmax, leaky_relu, elu, gelu, silu, softplus, swish)\n"},
    {"activation_map_typo", H LAY("units: 3, activation: {type: leaky_relu, slop: 0.2}", OUT2),
     "t.yaml:4:47: error: unknown key 'slop' in activation; did you mean 'slope'? "
     "(allowed: type, slope, alpha, beta, threshold, approximate)\n"},
    {"activation_map_no_type", H LAY("units: 3, activation: {slope: 0.2}", OUT2),
     "t.yaml:4:28: error: missing required key 'type' in activation\n"},
    {"activation_param_of_other", H LAY("units: 3, activation: {type: elu, slope: 0.2}", OUT2),
     "t.yaml:4:40: error: activation elu has no parameter 'slope' (leaky_relu has)\n"},
    {"activation_param_text", H LAY("units: 3, activation: {type: leaky_relu, slope: steep}", OUT2),
     "t.yaml:4:54: error: expected a number, got 'steep'\n"},
    {"activation_beta_zero", H LAY("units: 3, activation: {type: softplus, beta: 0}", OUT2),
     "t.yaml:4:51: error: softplus beta must be > 0, got 0\n"},
    {"activation_gelu_approx", H LAY("units: 3, activation: {type: gelu, approximate: erf}", OUT2),
     "t.yaml:4:54: error: unknown gelu approximate 'erf' (allowed: none, tanh)\n"},
    {"activation_softmax_map_hidden", H LAY("units: 3, activation: {type: softmax}", OUT2),
     "t.yaml:4:35: error: softmax is only allowed on the output layer\n"},
    {"activation_conv_param", "name: t\ninput: {shape: [1, 2, 2]}\nlayers:\n"
     "  - {type: conv2d, filters: 2, kernel: 1, activation: {type: gelu, alpha: 1}}\n"
     "  - {type: flatten}\n  - {units: 2, activation: softmax}\n",
     "t.yaml:4:68: error: activation gelu has no parameter 'alpha' (elu has)\n"},
    {"activation_seq", H LAY("units: 3, activation: [relu]", OUT2),
     "t.yaml:4:28: error: expected a scalar, got a sequence\n"},
    {"softmax_hidden", H LAY("units: 3, activation: softmax", OUT2),
     "t.yaml:4:28: error: softmax is only allowed on the output layer\n"},
    {"dropout_one", HIDDEN("dropout: 1"), "t.yaml:4:43: error: dropout must be in [0, 1), got 1\n"},
    {"dropout_1_5", HIDDEN("dropout: 1.5"),
     "t.yaml:4:43: error: dropout must be in [0, 1), got 1.5\n"},
    {"dropout_negative", HIDDEN("dropout: -0.1"),
     "t.yaml:4:43: error: dropout must be in [0, 1), got -0.1\n"},
    {"dropout_string", HIDDEN("dropout: \"0.5\""),
     "t.yaml:4:43: error: expected a number, got a string\n"},
    {"dropout_word", HIDDEN("dropout: half"), "t.yaml:4:43: error: expected a number, got 'half'\n"},
    {"dropout_nan", HIDDEN("dropout: .nan"),
     "t.yaml:4:43: error: dropout must be a finite number, got .nan\n"},
    {"dropout_inf", HIDDEN("dropout: inf"),
     "t.yaml:4:43: error: dropout must be a finite number, got inf\n"},
    {"dropout_overflow", HIDDEN("dropout: 1e999"),
     "t.yaml:4:43: error: dropout must be a finite number, got 1e999\n"},
    {"dropout_empty",
     H "layers:\n  - units: 3\n    activation: relu\n    dropout:\n  - {units: 2, activation: softmax}\n",
     "t.yaml:6:13: error: expected a number, got an empty value\n"},
    {"dropout_output", H LAY("units: 3, activation: relu", "units: 2, activation: softmax, dropout: 0.5"),
     "t.yaml:5:46: error: dropout is not allowed on the output layer, got 0.5\n"},
    {"dropout_warn", HIDDEN("dropout: 0.9"), "t.yaml:4:43: warning: dropout 0.9 is unusually high\n"},
    {"layer_unknown_key", H LAY("unit: 3, activation: relu", OUT2),
     "t.yaml:4:6: error: unknown key 'unit' in layer; did you mean 'units'? "
     "(allowed: name, units, activation, dropout, noise, batchnorm, type, "
     "filters, kernel, stride, padding)\n"},
    {"layer_duplicate_key",
     H "layers:\n  - units: 3\n    activation: relu\n    units: 4\n  - {units: 2, activation: softmax}\n",
     "t.yaml:6:5: error: duplicate key 'units'\n"
     "t.yaml:4:5: note: 'units' first defined here\n"},
    {"layer_name_invalid", H LAY("name: 'fc 1', units: 3, activation: relu", OUT2),
     "t.yaml:4:12: error: invalid layer name 'fc 1': use letters, digits and underscores, "
     "not starting with a digit\n"},
    {"layer_name_keyword", H LAY("name: for, units: 3, activation: relu", OUT2),
     "t.yaml:4:12: error: layer name 'for' is a C keyword\n"},
    {"layer_noise_negative", H LAY("units: 3, activation: relu, noise: -0.1", OUT2),
     "t.yaml:4:41: error: noise must be >= 0, got -0.1\n"},
    {"layer_noise_output", H LAY("units: 3, activation: relu", OUT2 ", noise: 0.1"),
     "t.yaml:5:44: error: noise is not allowed on the output layer, got 0.1\n"},
    {"bn_not_a_flag", HIDDEN("batchnorm: yes"),
     "t.yaml:4:45: error: unknown batchnorm value 'yes' (allowed: false, true)\n"},
    {"bn_sequence", HIDDEN("batchnorm: [1]"),
     "t.yaml:4:45: error: expected true, false or a mapping, got a sequence\n"},
    {"bn_momentum_range", HIDDEN("batchnorm: {momentum: 1.5}"),
     "t.yaml:4:56: error: batchnorm momentum must be in [0, 1], got 1.5\n"},
    {"bn_momentum_text", HIDDEN("batchnorm: {momentum: x}"),
     "t.yaml:4:56: error: expected a number, got 'x'\n"},
    {"bn_eps_zero", HIDDEN("batchnorm: {eps: 0}"), "t.yaml:4:51: error: batchnorm eps must be > 0, got 0\n"},
    {"bn_unknown_key", HIDDEN("batchnorm: {momentun: 0.1}"),
     "t.yaml:4:46: error: unknown key 'momentun' in batchnorm; did you mean 'momentum'? (allowed: momentum, eps)\n"},
    {"bn_batch_of_one", HIDDEN("batchnorm: true") "train: {batch_size: 1}\n",
     "t.yaml:6:21: error: batch_size must be at least 2 with batchnorm (layer 'fc1'), got 1\n"},
    {"bn_name_clash", H LAY("name: a, units: 3, activation: relu, batchnorm: true", "name: a_bn, " OUT2),
     "t.yaml:5:12: error: layer name 'a_bn' clashes with the batch norm tensors of layer 'a' ('a_bn.weight', ...)\n"},
    {"layer_name_input", H LAY("name: input, units: 3, activation: relu", OUT2),
     "t.yaml:4:12: error: layer name 'input' is reserved for the input\n"},
    {"layer_name_dup", H LAY("name: a, units: 3, activation: relu", "name: a, " OUT2),
     "t.yaml:5:12: error: duplicate layer name 'a'\n"
     "t.yaml:4:12: note: 'a' first used here\n"},
    {"layer_name_dup_default", H LAY("units: 3, activation: relu", "name: fc1, " OUT2),
     "t.yaml:5:12: error: duplicate layer name 'fc1'\n"
     "t.yaml:4:5: note: layer 1 is named 'fc1' by default\n"},

    /* output layer vs loss */
    {"ce_linear_default", H LAY("units: 3, activation: relu", "units: 2, activation: linear"),
     "t.yaml:5:28: error: loss cross_entropy needs a softmax output layer, got activation 'linear'\n"
     "t.yaml: note: cross_entropy is the default loss; set train.loss to mse for other outputs\n"},
    {"ce_linear_explicit",
     H LAY("units: 3, activation: relu", "units: 2, activation: linear") "train: {loss: cross_entropy}\n",
     "t.yaml:5:28: error: loss cross_entropy needs a softmax output layer, got activation 'linear'\n"
     "t.yaml:6:15: note: loss is set to cross_entropy here\n"},
    {"ce_one_unit", H LAY("units: 3, activation: relu", "units: 1, activation: softmax"),
     "t.yaml:5:13: error: loss cross_entropy needs at least 2 output units, got 1\n"},
    {"mse_softmax", V "train: {loss: mse}\n",
     "t.yaml:5:28: error: loss mse needs a linear, sigmoid or tanh output layer, "
     "got activation 'softmax'\n"
     "t.yaml:6:15: note: loss is set to mse here\n"},
    {"mse_relu", H LAY("units: 3, activation: relu", "units: 1, activation: relu") "train: {loss: mse}\n",
     "t.yaml:5:28: error: loss mse needs a linear, sigmoid or tanh output layer, "
     "got activation 'relu'\n"
     "t.yaml:6:15: note: loss is set to mse here\n"},
    {"loss_typo", V "train: {loss: mae}\n",
     "t.yaml:6:15: error: unknown loss 'mae'; did you mean 'mse'? (allowed: cross_entropy, mse, "
     "binary_cross_entropy)\n"},
    {"loss_map_typo", V "train: {loss: {type: mae}}\n",
     "t.yaml:6:22: error: unknown loss 'mae'; did you mean 'mse'? (allowed: cross_entropy, mse, "
     "binary_cross_entropy)\n"},
    {"loss_map_no_type", V "train: {loss: {label_smoothing: 0.1}}\n",
     "t.yaml:6:15: error: missing required key 'type' in loss\n"},
    {"loss_map_unknown_key", V "train: {loss: {type: cross_entropy, smoothing: 0.1}}\n",
     "t.yaml:6:37: error: unknown key 'smoothing' in loss (allowed: type, label_smoothing)\n"},
    {"label_smoothing_range", V "train: {loss: {type: cross_entropy, label_smoothing: 1.5}}\n",
     "t.yaml:6:54: error: label_smoothing must be in [0, 1], got 1.5\n"},
    {"label_smoothing_mse", H LAY("units: 3, activation: relu", "units: 2, activation: linear")
     "train: {loss: {type: mse, label_smoothing: 0.1}}\n",
     "t.yaml:6:27: error: label_smoothing needs loss cross_entropy, got mse\n"},
    {"bce_softmax", V "train: {loss: binary_cross_entropy}\n",
     "t.yaml:5:28: error: loss binary_cross_entropy needs a sigmoid output layer, got activation 'softmax'\n"
     "t.yaml:6:15: note: loss is set to binary_cross_entropy here\n"
     "t.yaml:5:13: error: loss binary_cross_entropy with 2 output units is multi-label: it needs csv or npy data "
     "with 2 target columns of 0 and 1 (idx data has one label per image; 1 unit for labels 0 and 1)\n"},
    /* multi-label: K target columns of csv or npy data */
    {"bce_two_units_idx", H LAY("units: 3, activation: relu", "units: 2, activation: sigmoid")
     "train: {loss: binary_cross_entropy}\n",
     "t.yaml:5:13: error: loss binary_cross_entropy with 2 output units is multi-label: it needs csv or npy data "
     "with 2 target columns of 0 and 1 (idx data has one label per image; 1 unit for labels 0 and 1)\n"},
    {"mlbce_target_count", H LAY("units: 3, activation: relu", "units: 2, activation: sigmoid")
     "train: {loss: binary_cross_entropy}\ndata: {format: csv, train: a.csv, target: [a, b, c]}\n",
     "t.yaml:7:43: error: multi-label binary_cross_entropy with 2 output units needs `target` listing 2 columns "
     "(one 0/1 label each), got 3\n"},
    {"mlbce_no_target", H LAY("units: 3, activation: relu", "units: 2, activation: sigmoid")
     "train: {loss: binary_cross_entropy}\ndata: {format: csv, train: a.csv}\n",
     "t.yaml:7:7: error: multi-label binary_cross_entropy with 2 output units needs `target` listing 2 columns "
     "(one 0/1 label each); without it the target is the last column alone\n"},
    {"mlbce_classes", H LAY("units: 3, activation: relu", "units: 2, activation: sigmoid")
     "train: {loss: binary_cross_entropy}\ndata: {format: npy, train: a.npy, train_y: b.npy, targets: classes}\n",
     "t.yaml:5:13: error: loss binary_cross_entropy with 2 output units is multi-label: its targets are 2 values "
     "0 or 1 per row, not class labels (drop targets: classes)\n"},
    {"bce_one_unit_values", H LAY("units: 3, activation: relu", "units: 1, activation: sigmoid")
     "train: {loss: binary_cross_entropy}\ndata: {format: csv, train: a.csv, targets: values}\n",
     "t.yaml:7:44: error: targets: values needs loss mse (or binary_cross_entropy with 2 or more sigmoid units: "
     "multi-label)\n"},

    /* train */
    {"train_scalar", V "train: fast\n", "t.yaml:6:8: error: expected a mapping, got 'fast'\n"},
    {"train_unknown_key", V "train: {epoch: 3}\n",
     "t.yaml:6:9: error: unknown key 'epoch' in train; did you mean 'epochs'? "
     "(allowed: batch_size, epochs, seed, loss, optimizer, schedule, clip_grad_norm)\n"},
    {"batch_zero", V "train: {batch_size: 0}\n",
     "t.yaml:6:21: error: batch_size must be in [1, 65536], got 0\n"},
    {"batch_too_big", V "train: {batch_size: 65537}\n",
     "t.yaml:6:21: error: batch_size must be in [1, 65536], got 65537\n"},
    {"batch_warn", V "train: {batch_size: 8192}\n",
     "t.yaml:6:21: warning: batch_size 8192 is unusually large\n"},
    {"epochs_zero", V "train: {epochs: 0}\n",
     "t.yaml:6:17: error: epochs must be in [1, 1000000], got 0\n"},
    {"epochs_too_big", V "train: {epochs: 1000001}\n",
     "t.yaml:6:17: error: epochs must be in [1, 1000000], got 1000001\n"},
    {"seed_negative", V "train: {seed: -1}\n",
     "t.yaml:6:15: error: seed must be in [0, 18446744073709551615], got -1\n"},
    {"seed_overflow", V "train: {seed: 18446744073709551616}\n",
     "t.yaml:6:15: error: seed must be in [0, 18446744073709551615], got 18446744073709551616\n"},
    {"seed_float", V "train: {seed: 4.2}\n", "t.yaml:6:15: error: expected an integer, got '4.2'\n"},

    /* optimizer */
    {"opt_type_typo", V "train:\n  optimizer: {type: adamm}\n",
     "t.yaml:7:21: error: unknown optimizer 'adamm'; did you mean 'adam'? (allowed: adam, adamw, sgd, rmsprop)\n"},
    {"opt_scalar_unknown", V "train:\n  optimizer: lbfgs\n",
     "t.yaml:7:14: error: unknown optimizer 'lbfgs' (allowed: adam, adamw, sgd, rmsprop)\n"},
    {"opt_seq", V "train:\n  optimizer: [adam]\n",
     "t.yaml:7:14: error: expected a mapping, got a sequence\n"},
    {"opt_unknown_key", V "train:\n  optimizer: {learning_rate: 0.1}\n",
     "t.yaml:7:15: error: unknown key 'learning_rate' in optimizer "
     "(allowed: type, lr, betas, eps, weight_decay, momentum, dampening, nesterov, alpha, centered)\n"},
    {"sgd_scalar", V "train:\n  optimizer: sgd\n", ""},
    {"sgd_ok", V "train:\n  optimizer: {type: sgd, lr: 0.5, momentum: 0.9, nesterov: true, weight_decay: 1.0e-4}\n", ""},
    {"sgd_foreign_key", V "train:\n  optimizer: {type: sgd, betas: [0.9, 0.99], eps: 1.0e-6}\n",
     "t.yaml:7:26: error: betas does not apply to optimizer sgd "
     "(its keys: type, lr, weight_decay, momentum, dampening, nesterov)\n"
     "t.yaml:7:46: error: eps does not apply to optimizer sgd "
     "(its keys: type, lr, weight_decay, momentum, dampening, nesterov)\n"},
    {"adam_foreign_key", V "train:\n  optimizer: {type: adam, momentum: 0.9}\n",
     "t.yaml:7:27: error: momentum does not apply to optimizer adam "
     "(its keys: type, lr, betas, eps, weight_decay)\n"},
    {"sgd_lr_negative", V "train:\n  optimizer: {type: sgd, lr: -0.1}\n",
     "t.yaml:7:30: error: lr must be > 0, got -0.1\n"},
    {"sgd_lr_warn", V "train:\n  optimizer: {type: sgd, lr: 2}\n",
     "t.yaml:7:30: warning: lr 2 is unusually high\n"},
    {"sgd_momentum_range", V "train:\n  optimizer: {type: sgd, momentum: 1.5}\n",
     "t.yaml:7:36: error: momentum must be in [0, 1), got 1.5\n"},
    {"sgd_dampening_range", V "train:\n  optimizer: {type: sgd, momentum: 0.5, dampening: -1}\n",
     "t.yaml:7:52: error: dampening must be in [0, 1], got -1\n"},
    {"nesterov_no_momentum", V "train:\n  optimizer: {type: sgd, nesterov: true}\n",
     "t.yaml:7:36: error: nesterov needs momentum > 0 (momentum is 0)\n"},
    {"nesterov_dampening", V "train:\n  optimizer: {type: sgd, momentum: 0.9, dampening: 0.1, nesterov: true}\n",
     "t.yaml:7:67: error: nesterov needs dampening 0 (dampening is 0.1)\n"},
    {"nesterov_not_bool", V "train:\n  optimizer: {type: sgd, momentum: 0.9, nesterov: yes}\n",
     "t.yaml:7:51: error: unknown nesterov value 'yes' (allowed: false, true)\n"},
    {"rmsprop_ok", V "train:\n  optimizer: {type: rmsprop, alpha: 0.9, eps: 1.0e-6, momentum: 0.5, centered: true}\n", ""},
    {"rmsprop_alpha_range", V "train:\n  optimizer: {type: rmsprop, alpha: 1.5}\n",
     "t.yaml:7:37: error: alpha must be in [0, 1], got 1.5\n"},
    {"rmsprop_foreign_key", V "train:\n  optimizer: {type: rmsprop, nesterov: true}\n",
     "t.yaml:7:30: error: nesterov does not apply to optimizer rmsprop "
     "(its keys: type, lr, eps, weight_decay, momentum, alpha, centered)\n"},

    /* schedule and clipping */
    {"sched_step_ok", V "train:\n  schedule: {type: step, step_size: 1, gamma: 0.7}\n", ""},
    {"sched_cosine_ok", V "train:\n  schedule: {type: cosine, warmup_steps: 100, min_lr: 1.0e-5}\n", ""},
    {"sched_plateau_ok", V "train:\n  schedule: {type: plateau, factor: 0.5, patience: 2, metric: accuracy, "
     "threshold: 0.001, cooldown: 1, min_lr: 1.0e-5}\n", ""},
    {"sched_scalar", V "train:\n  schedule: step\n", "t.yaml:7:13: error: expected a mapping, got 'step'\n"},
    {"sched_no_type", V "train:\n  schedule: {gamma: 0.5}\n",
     "t.yaml:7:13: error: missing required key 'type' in schedule\n"},
    {"sched_type_typo", V "train:\n  schedule: {type: cosin}\n",
     "t.yaml:7:20: error: unknown schedule 'cosin'; did you mean 'cosine'? "
     "(allowed: none, step, exponential, cosine, plateau)\n"},
    {"sched_step_missing", V "train:\n  schedule: {type: step}\n",
     "t.yaml:7:13: error: missing required key 'step_size' in schedule\n"},
    {"sched_foreign_key", V "train:\n  schedule: {type: exponential, gamma: 0.9, step_size: 2}\n",
     "t.yaml:7:45: error: step_size does not apply to schedule exponential (its keys: type, gamma)\n"},
    {"sched_gamma_range", V "train:\n  schedule: {type: exponential, gamma: 1.5}\n",
     "t.yaml:7:40: error: gamma must be in (0, 1), got 1.5\n"},
    {"sched_min_lr", V "train:\n  schedule: {type: cosine, min_lr: 0.01}\n",
     "t.yaml:7:36: error: min_lr must be below lr (0.001), got 0.01\n"},
    {"sched_warmup_negative", V "train:\n  schedule: {type: cosine, warmup_steps: -1}\n",
     "t.yaml:7:42: error: warmup_steps must be in [0, 1099511627776], got -1\n"},
    {"sched_metric_typo", V "train:\n  schedule: {type: plateau, metric: acuracy}\n",
     "t.yaml:7:37: error: unknown metric 'acuracy'; did you mean 'accuracy'? (allowed: loss, accuracy)\n"},
    {"sched_factor_range", V "train:\n  schedule: {type: plateau, factor: 1}\n",
     "t.yaml:7:37: error: factor must be in (0, 1), got 1\n"},
    {"clip_zero", V "train:\n  clip_grad_norm: 0\n", "t.yaml:7:19: error: clip_grad_norm must be > 0, got 0\n"},
    {"lr_zero", V "train:\n  optimizer: {lr: 0}\n", "t.yaml:7:19: error: lr must be > 0, got 0\n"},
    {"lr_negative", V "train:\n  optimizer: {lr: -0.01}\n",
     "t.yaml:7:19: error: lr must be > 0, got -0.01\n"},
    {"lr_inf", V "train:\n  optimizer: {lr: .inf}\n",
     "t.yaml:7:19: error: lr must be a finite number, got .inf\n"},
    {"lr_warn", V "train:\n  optimizer: {lr: 0.5}\n", "t.yaml:7:19: warning: lr 0.5 is unusually high\n"},
    {"betas_scalar", V "train:\n  optimizer: {betas: 0.9}\n",
     "t.yaml:7:22: error: expected a sequence, got '0.9'\n"},
    {"betas_three", V "train:\n  optimizer: {betas: [0.9, 0.99, 0.999]}\n",
     "t.yaml:7:22: error: betas must have exactly 2 numbers, got 3\n"},
    {"betas_one", V "train:\n  optimizer: {betas: [0.9, 1.0]}\n",
     "t.yaml:7:28: error: betas[1] must be in [0, 1), got 1.0\n"},
    {"betas_string", V "train:\n  optimizer: {betas: [\"0.9\", -0.1]}\n",
     "t.yaml:7:23: error: expected a number, got a string\n"
     "t.yaml:7:30: error: betas[1] must be in [0, 1), got -0.1\n"},
    {"eps_zero", V "train:\n  optimizer: {eps: 0}\n", "t.yaml:7:20: error: eps must be > 0, got 0\n"},
    {"wd_negative", V "train:\n  optimizer: {weight_decay: -1e-4}\n",
     "t.yaml:7:29: error: weight_decay must be >= 0, got -1e-4\n"},

    /* data */
    {"data_seq", V "data: [idx]\n", "t.yaml:6:7: error: expected a mapping, got a sequence\n"},
    {"data_format", V "data: {format: parquet}\n",
     "t.yaml:6:16: error: unknown data format 'parquet' (allowed: idx, csv, npy)\n"},
    {"csv_needs_train", V "data: {format: csv}\n",
     "t.yaml:6:7: error: missing required key 'train' in data\n"},
    {"csv_no_dir", V "data: {format: csv, train: a.csv, dir: d}\n",
     "t.yaml:6:35: error: data key 'dir' applies to format idx (csv and npy name their files with train and test)\n"},
    {"idx_no_train", V "data: {train: a.csv, header: true}\n",
     "t.yaml:6:8: error: data key 'train' applies to format csv or npy\n"
     "t.yaml:6:22: error: data key 'header' applies to format csv or npy\n"},
    {"npy_no_header", V "data: {format: npy, train: x.npy, train_y: y.npy, header: true}\n",
     "t.yaml:6:51: error: data key 'header' applies to format csv\n"},
    {"csv_no_train_y", V "data: {format: csv, train: a.csv, train_y: b}\n",
     "t.yaml:6:35: error: data key 'train_y' applies to format npy (a csv file holds its targets)\n"},
    {"npy_needs_y", V "data: {format: npy, train: x.npy, test: t.npy}\n",
     "t.yaml:6:7: error: missing required key 'train_y' in data\n"
     "t.yaml:6:7: error: missing required key 'test_y' in data\n"},
    {"test_and_split", V "data: {format: csv, train: a.csv, test: b.csv, test_split: 0.2}\n",
     "t.yaml:6:48: error: test_split and test exclude each other: the test rows come from one or the other\n"},
    {"test_split_range", V "data: {format: csv, train: a.csv, test_split: 1}\n",
     "t.yaml:6:47: error: test_split must be in [0, 1), got 1\n"},
    {"test_split_zero", V "data: {format: csv, train: a.csv, test_split: 0}\n",
     "t.yaml:6:47: error: test_split must be in (0, 1), got 0\n"},
    {"csv_delimiter", V "data: {format: csv, train: a.csv, delimiter: '\"'}\n",
     "t.yaml:6:46: error: delimiter must be one byte other than a quote, '#' or a line end\n"},
    {"csv_delimiter_long", V "data: {format: csv, train: a.csv, delimiter: ab}\n",
     "t.yaml:6:46: error: delimiter must be one byte other than a quote, '#' or a line end\n"},
    {"csv_header_bool", V "data: {format: csv, train: a.csv, header: yes}\n",
     "t.yaml:6:43: error: unknown header 'yes' (allowed: false, true)\n"},
    {"csv_skip", V "data: {format: csv, train: a.csv, skip: -1}\n",
     "t.yaml:6:41: error: skip must be in [0, 1000000000], got -1\n"},
    {"csv_target_empty_list", V "data: {format: csv, train: a.csv, target: []}\n",
     "t.yaml:6:43: error: target must list 1 to 32 columns, got 0\n"},
    {"normalize_word", V "data: {format: csv, train: a.csv, normalize: zscore}\n",
     "t.yaml:6:46: error: unknown normalize 'zscore' (allowed: none, standard, minmax)\n"},
    {"classes_one_target", V "data: {format: csv, train: a.csv, target: [a, b]}\n",
     "t.yaml:6:43: error: class labels come from one target column, got 2 (several need targets: values and loss "
     "mse, or binary_cross_entropy with as many sigmoid units)\n"},
    {"values_need_mse", V "data: {format: csv, train: a.csv, targets: values}\n",
     "t.yaml:6:44: error: targets: values needs loss mse (or binary_cross_entropy with 2 or more sigmoid units: "
     "multi-label)\n"},
    {"data_dir_empty", V "data: {dir: ''}\n", "t.yaml:6:13: error: dir must not be empty\n"},
    {"data_dir_map", V "data: {dir: {a: b}}\n", "t.yaml:6:13: error: expected a scalar, got a mapping\n"},
    {"data_dir_nul", V "data: {dir: \"a\\0b\"}\n",
     "t.yaml:6:13: error: dir must not contain NUL characters\n"},
    {"normalize_scalar", V "data: {normalize: 0.5}\n",
     "t.yaml:6:19: error: normalize of idx data is a mapping {mean, std}; none, standard and minmax need format csv or npy\n"},
    {"std_zero", V "data: {normalize: {std: 0}}\n", "t.yaml:6:25: error: std must be > 0, got 0\n"},
    {"mean_nan", V "data: {normalize: {mean: .NaN}}\n",
     "t.yaml:6:26: error: mean must be a finite number, got .NaN\n"},
    {"data_unknown_key", V "data: {normalise: {std: 1}}\n",
     "t.yaml:6:8: error: unknown key 'normalise' in data; did you mean 'normalize'? "
     "(allowed: format, dir, normalize, train, train_y, test, test_y, test_split, target, ignore, "
     "header, skip, delimiter, targets)\n"},

    /* parameter count: error at the layer mapping that crosses the limit */
    {"too_many_params_first", "name: t\ninput: 16777216\n" LAY("units: 16, activation: relu", OUT2),
     "t.yaml:4:5: error: too many parameters: layer 'fc1' brings the total to 268435472 "
     "(at most 268435456)\n"},
    {"too_many_params_second",
     "name: t\ninput: 4096\n" LAY("units: 4096, activation: relu", "units: 65536, activation: softmax"),
     "t.yaml:5:5: error: too many parameters: layer 'fc2' brings the total to 285282304 "
     "(at most 268435456)\n"},

    /* yaml level */
    {"yaml_syntax", H "layers:\n  - {units: 3, activation: relu\n",
     "t.yaml:5:1: error: syntax error: did not find expected ',' or '}'\n"
     "t.yaml:4:5: note: while parsing a flow mapping that starts here\n"},
    {"yaml_bad_indent", "name: t\n input: 4\n",
     "t.yaml:2:7: error: syntax error: mapping values are not allowed in this context\n"},
    {"yaml_multi_doc", V "---\nname: u\n",
     "t.yaml:6:1: error: multiple documents are not supported; a spec is one yaml document\n"},
    {"yaml_empty", "", "t.yaml: error: spec is empty\n"},
    {"yaml_comment_only", "# nothing here\n", "t.yaml: error: spec is empty\n"},
    {"yaml_doc_marker_only", "---\n", "t.yaml: error: spec is empty\n"},
    {"yaml_anchor_alias",
     "name: t\ninput: &n 4\nlayers:\n  - {units: *n, activation: relu}\n  - {" OUT2 "}\n",
     "t.yaml:2:8: error: anchors are not supported (&n)\n"
     "t.yaml:4:13: error: aliases are not supported (*n)\n"},
    {"yaml_tag", "name: t\ninput: !!int 4\n" L, "t.yaml:2:8: error: tags are not supported (!!int)\n"},
    {"yaml_control_char", V "\x01\n",
     "t.yaml:6:1: error: invalid input: control characters are not allowed (0x1)\n"},
    {"yaml_bad_utf8", "name: t\xff\ninput: 4\n" L,
     "t.yaml:1:8: error: invalid input: invalid leading UTF-8 octet (0xFF)\n"},
    {"yaml_complex_key", V "? [a]\n: 1\n", "t.yaml:6:3: error: expected a scalar, got a sequence\n"},

    /* several mistakes: every one reported, in file order, cross checks last */
    {"many_errors",
     "name: 1x\ninput: 0\nlayers:\n  - {units: 0, activation: rleu, dropout: 2}\n"
     "  - {units: 2, activation: softmax, dropout: 0.5}\n"
     "train: {batch_size: 0, epochs: 0, seed: -3, loss: mse}\n",
     "t.yaml:1:7: error: invalid model name '1x': use letters, digits and underscores, "
     "not starting with a digit\n"
     "t.yaml:2:8: error: input must be in [1, 16777216], got 0\n"
     "t.yaml:4:13: error: units must be in [1, 16777216], got 0\n"
     "t.yaml:4:28: error: unknown activation 'rleu'; did you mean 'relu'? "
     "(allowed: relu, tanh, sigmoid, linear, softmax, leaky_relu, elu, gelu, silu, softplus, swish)\n"
     "t.yaml:4:43: error: dropout must be in [0, 1), got 2\n"
     "t.yaml:5:46: error: dropout is not allowed on the output layer, got 0.5\n"
     "t.yaml:6:21: error: batch_size must be in [1, 65536], got 0\n"
     "t.yaml:6:32: error: epochs must be in [1, 1000000], got 0\n"
     "t.yaml:6:41: error: seed must be in [0, 18446744073709551615], got -3\n"
     "t.yaml:5:28: error: loss mse needs a linear, sigmoid or tanh output layer, "
     "got activation 'softmax'\n"
     "t.yaml:6:51: note: loss is set to mse here\n"},
    /* image layers: types, keys, shapes */
    {"conv_on_flat",
     "name: t\ninput: 16\nlayers:\n  - {type: conv2d, filters: 2, kernel: 3, activation: relu}\n  - {type: flatten}\n  - {units: 2, activation: softmax}\n",
     "t.yaml:4:5: error: conv2d layer 'conv1' needs an image input [channels, height, width], but its input is flat (16 features); give the input as {shape: [c, h, w]}\n"},
    {"dense_on_image",
     "name: t\ninput: {shape: [1, 4, 4]}\nlayers:\n  - {units: 3, activation: relu}\n  - {units: 2, activation: softmax}\n",
     "t.yaml:4:5: error: dense layer 'fc1' on an image input [1, 4, 4]: put a {type: flatten} layer before it\n"},
    {"kernel_too_large",
     "name: t\ninput: {shape: [1, 4, 4]}\nlayers:\n  - {type: conv2d, filters: 2, kernel: 5, activation: relu}\n  - {type: flatten}\n  - {units: 2, activation: softmax}\n",
     "t.yaml:4:5: error: conv2d layer 'conv1': its 5x5 window does not fit its 4x4 input\n"},
    {"pool_no_pixel",
     "name: t\ninput: {shape: [2, 5, 5]}\nlayers:\n  - {type: conv2d, filters: 2, kernel: 3, activation: relu}\n  - {type: maxpool2d, kernel: 4}\n  - {type: flatten}\n  - {units: 2, activation: softmax}\n",
     "t.yaml:5:5: error: maxpool2d layer 'pool2': its 4x4 window does not fit its 3x3 input\n"},
    {"stride_zero",
     "name: t\ninput: {shape: [1, 4, 4]}\nlayers:\n  - {type: conv2d, filters: 2, kernel: 3, stride: 0, activation: relu}\n  - {type: flatten}\n  - {units: 2, activation: softmax}\n",
     "t.yaml:4:51: error: stride must be in [1, 1024], got 0\n"},
    {"same_needs_stride1",
     "name: t\ninput: {shape: [1, 8, 8]}\nlayers:\n  - {type: conv2d, filters: 2, kernel: 3, stride: 2, padding: same, activation: relu}\n  - {type: flatten}\n  - {units: 2, activation: softmax}\n",
     "t.yaml:4:63: error: padding 'same' needs stride 1 (as in PyTorch), got 2x2\n"},
    {"conv_output",
     "name: t\ninput: {shape: [1, 4, 4]}\nlayers:\n  - {units: 3, activation: relu}\n  - {type: conv2d, filters: 2, kernel: 3, activation: relu}\n",
     "t.yaml:5:12: error: the output layer must be dense, got type 'conv2d'\n"},
    {"channel_on_dense",
     "name: t\ninput: 4\nlayers:\n  - {units: 3, activation: relu, dropout: {rate: 0.2, mode: channel}}\n  - {units: 2, activation: softmax}\n",
     "t.yaml:4:61: error: dropout mode channel needs an image layer (conv2d or a pool); 'fc1' is dense\n"},
    {"units_in_conv",
     "name: t\ninput: {shape: [1, 4, 4]}\nlayers:\n  - {type: conv2d, units: 4, filters: 2, kernel: 3, activation: relu}\n  - {type: flatten}\n  - {units: 2, activation: softmax}\n",
     "t.yaml:4:20: error: key 'units' is not allowed in a conv2d layer\n"},
    {"bn_on_conv",
     "name: t\ninput: {shape: [1, 4, 4]}\nlayers:\n  - {type: conv2d, filters: 2, kernel: 3, activation: relu, batchnorm: {momentum: 1.5}}\n  - {type: flatten}\n  - {units: 2, activation: softmax}\ntrain: {batch_size: 1}\n",
     "t.yaml:4:83: error: batchnorm momentum must be in [0, 1], got 1.5\n"
     "t.yaml:7:21: error: batch_size must be at least 2 with batchnorm (layer 'conv1'), got 1\n"},
    {"flatten_on_flat",
     "name: t\ninput: 4\nlayers:\n  - {type: flatten}\n  - {units: 2, activation: softmax}\n",
     "t.yaml:4:5: error: flatten layer 'flatten1' needs an image input [channels, height, width], but its input is flat (4 features); give the input as {shape: [c, h, w]}\n"},
    {"bad_type",
     "name: t\ninput: 4\nlayers:\n  - {type: conv3d, units: 3, activation: relu}\n  - {units: 2, activation: softmax}\n",
     "t.yaml:4:12: error: unknown layer type 'conv3d'; did you mean 'conv2d'? (allowed: dense, conv2d, maxpool2d, avgpool2d, flatten)\n"},
    {"input_size_and_shape",
     "name: t\ninput: {size: 16, shape: [1, 4, 4]}\nlayers:\n  - {units: 2, activation: softmax}\n",
     "t.yaml:2:26: error: input has both size and shape; give one\n"},
    {"input_shape_rank",
     "name: t\ninput: {shape: [4, 4]}\nlayers:\n  - {units: 2, activation: softmax}\n",
     "t.yaml:2:16: error: input shape must be [channels, height, width], got 2 numbers\n"},
};

#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

START_TEST(test_table) {
    const spec_case *c = &cases[_i];
    parsed p;
    parse_text(&p, c->yaml);
    ck_assert_msg(strcmp(p.out, c->expect) == 0, "case %s:\n--- got\n%s--- expected\n%s", c->name,
                  p.out, c->expect);
    int errors = count_of(c->expect, ": error: ");
    ck_assert_msg(p.rc == (errors ? -1 : 0), "case %s: rc %d", c->name, p.rc);
    ck_assert_int_eq(p.d.n_errors, errors);
    ck_assert_int_eq(p.d.n_warnings, count_of(c->expect, ": warning: "));
    parsed_free(&p);
}
END_TEST

/* ---- the example specs ---------------------------------------------------- */

static void load_example(parsed *p, const char *file) {
    char path[4096];
    snprintf(path, sizeof path, "%s/specs/%s", DNGEN_SOURCE_DIR, file);
    FILE *f = open_memstream(&p->out, &p->out_len);
    ck_assert_ptr_nonnull(f);
    p->spec = malloc(sizeof *p->spec);
    ck_assert_ptr_nonnull(p->spec);
    dn_diag_init(&p->d, f, path);
    p->rc = dn_spec_load(path, p->spec, &p->d);
    fclose(f);
    ck_assert_msg(p->rc == 0, "%s:\n%s", path, p->out);
    ck_assert_str_eq(p->out, "");
    ck_assert_str_eq(p->spec->path, path);
    size_t len;
    char *bytes = read_all(path, &len);
    ck_assert(p->spec->hash == dn_fnv1a64(bytes, len));
    free(bytes);
}

static void assert_layer(const dn_layer *l, const char *name, int in, int units, dn_act act,
                         double dropout, size_t w_off, size_t b_off) {
    ck_assert_str_eq(l->name, name);
    ck_assert_int_eq(l->in, in);
    ck_assert_int_eq(l->units, units);
    ck_assert_int_eq(l->act, act);
    ck_assert_double_eq(l->dropout, dropout);
    ck_assert_uint_eq(l->w_off, w_off);
    ck_assert_uint_eq(l->b_off, b_off);
}

static void assert_default_train_data(const dn_spec *s) {
    ck_assert_int_eq(s->train.batch_size, 64);
    ck_assert_int_eq(s->train.epochs, 5);
    ck_assert(s->train.seed == 42);
    ck_assert_int_eq(s->train.loss, DN_LOSS_CROSS_ENTROPY);
    ck_assert_int_eq(s->train.opt.type, DN_OPT_ADAM);
    ck_assert_double_eq(s->train.opt.lr, 0.001);
    ck_assert_double_eq(s->train.opt.beta1, 0.9);
    ck_assert_double_eq(s->train.opt.beta2, 0.999);
    ck_assert_double_eq(s->train.opt.eps, 1e-8);
    ck_assert_double_eq(s->train.opt.weight_decay, 0.0);
    ck_assert_str_eq(s->data.format, "idx");
    ck_assert_str_eq(s->data.dir, "data/fashion-mnist");
    ck_assert_double_eq(s->data.mean, 0.5);
    ck_assert_double_eq(s->data.std, 0.5);
}

START_TEST(test_example_mlp) {
    parsed p;
    load_example(&p, "mlp.yaml");
    const dn_spec *s = p.spec;
    ck_assert_str_eq(s->name, "mlp");
    ck_assert_int_eq(s->input, 784);
    ck_assert_double_eq(s->input_dropout, 0.0);
    ck_assert_int_eq(s->n_layers, 3);
    assert_layer(&s->layers[0], "fc1", 784, 256, DN_ACT_RELU, 0.5, 0, 200704);
    assert_layer(&s->layers[1], "fc2", 256, 128, DN_ACT_RELU, 0.3, 200960, 233728);
    assert_layer(&s->layers[2], "fc3", 128, 10, DN_ACT_SOFTMAX, 0.0, 233856, 235904); /* 10 units padded to 16 */
    ck_assert_uint_eq(s->n_floats, 235920);
    ck_assert_uint_eq(s->n_params, 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
    ck_assert_uint_eq(s->n_params, 235146);
    ck_assert_int_eq(s->layers[0].loc.line, 6);
    ck_assert_int_eq(s->layers[0].loc.col, 5);
    ck_assert_int_eq(s->layers[2].loc.line, 8);
    ck_assert_str_eq(s->description, "");
    assert_default_train_data(s); /* mlp.yaml spells out exactly the defaults */
    parsed_free(&p);
}
END_TEST

START_TEST(test_example_nodropout) {
    parsed p, q;
    load_example(&p, "mlp_nodropout.yaml");
    load_example(&q, "mlp.yaml");
    ck_assert_str_eq(p.spec->name, "mlp_nodropout");
    ck_assert_uint_eq(p.spec->n_params, 235146);
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq(p.spec->layers[i].dropout, 0.0);
        ck_assert_uint_eq(p.spec->layers[i].w_off, q.spec->layers[i].w_off);
        ck_assert_uint_eq(p.spec->layers[i].b_off, q.spec->layers[i].b_off);
    }
    ck_assert(p.spec->hash != q.spec->hash);
    parsed_free(&p);
    parsed_free(&q);
}
END_TEST

START_TEST(test_example_keras) {
    parsed p;
    load_example(&p, "keras_example.yaml");
    const dn_spec *s = p.spec;
    ck_assert_str_eq(s->name, "keras_example");
    ck_assert_int_eq(s->n_layers, 3);
    /* no names in the file: fc1..fc3 by position */
    assert_layer(&s->layers[0], "fc1", 784, 128, DN_ACT_RELU, 0.5, 0, 100352);
    assert_layer(&s->layers[1], "fc2", 128, 64, DN_ACT_RELU, 0.3, 100480, 108672);
    assert_layer(&s->layers[2], "fc3", 64, 10, DN_ACT_SOFTMAX, 0.0, 108736, 109760);
    ck_assert_uint_eq(s->n_floats, 109776);
    ck_assert_uint_eq(s->n_params, 109386);
    assert_default_train_data(s); /* no train/data sections at all */
    parsed_free(&p);
}
END_TEST

START_TEST(test_load_missing_file) {
    parsed p;
    FILE *f = open_memstream(&p.out, &p.out_len);
    ck_assert_ptr_nonnull(f);
    p.spec = malloc(sizeof *p.spec);
    dn_diag_init(&p.d, f, "no/such/spec.yaml");
    p.rc = dn_spec_load("no/such/spec.yaml", p.spec, &p.d);
    fclose(f);
    ck_assert_int_eq(p.rc, -2);
    ck_assert_int_eq(p.d.n_errors, 1);
    ck_assert_str_eq(p.out, "no/such/spec.yaml: error: cannot read spec: No such file or directory\n");
    parsed_free(&p);
}
END_TEST

/* A directory is no spec: the reader's reason, after "cannot read spec". */
START_TEST(test_load_directory) {
    parsed p;
    FILE *f = open_memstream(&p.out, &p.out_len);
    ck_assert_ptr_nonnull(f);
    p.spec = malloc(sizeof *p.spec);
    dn_diag_init(&p.d, f, "/");
    p.rc = dn_spec_load("/", p.spec, &p.d);
    fclose(f);
    ck_assert_int_eq(p.rc, -2);
    ck_assert_str_eq(p.out, "/: error: cannot read spec: Is a directory\n");
    parsed_free(&p);
}
END_TEST

/* ---- overrides (dn_spec_parse_with) ---------------------------------------- */

/* Two hidden layers (a with dropout 0.5 at 4:52, b without) and the output. */
#define OV_SPEC                                                        \
    "name: t\ninput: 4\nlayers:\n"                                     \
    "  - {name: a, units: 3, activation: relu, dropout: 0.5}\n"        \
    "  - {name: b, units: 3, activation: relu}\n"                      \
    "  - {name: out, units: 2, activation: softmax}\n"

/* Parses text with overrides ov[0..n) set by "test". */
static void parse_over(parsed *p, const char *text, const dn_override *ov, int n) {
    FILE *f = open_memstream(&p->out, &p->out_len);
    ck_assert_ptr_nonnull(f);
    p->spec = malloc(sizeof *p->spec);
    ck_assert_ptr_nonnull(p->spec);
    dn_diag_init(&p->d, f, "t.yaml");
    dn_overrides set = {ov, n, "test"};
    p->rc = dn_spec_parse_with(text, strlen(text), "t.yaml", &set, p->spec, &p->d);
    fclose(f);
}

/* Overrides replace the file's value or add a missing key; the hash stays
 * the text's; no overrides is dn_spec_parse. */
START_TEST(test_override_applied) {
    static const dn_override ov[] = {{"a", "dropout", "0.25"}, {"b", "dropout", "0.1"}};
    parsed p;
    parse_over(&p, OV_SPEC, ov, 2);
    ck_assert_msg(p.rc == 0, "%s", p.out);
    ck_assert_str_eq(p.out, "");
    ck_assert_double_eq(p.spec->layers[0].dropout, 0.25);
    ck_assert_double_eq(p.spec->layers[1].dropout, 0.1);
    ck_assert_double_eq(p.spec->layers[2].dropout, 0.0);
    ck_assert_uint_eq(p.spec->hash, dn_fnv1a64(OV_SPEC, strlen(OV_SPEC)));
    parsed_free(&p);
    parse_over(&p, OV_SPEC, NULL, 0);
    ck_assert_int_eq(p.rc, 0);
    ck_assert_double_eq(p.spec->layers[0].dropout, 0.5);
    parsed_free(&p);
}
END_TEST

/* Any layer key but the name can be set, and validation lays the spec out
 * with it: wider layers, batch norm. */
START_TEST(test_override_other_keys) {
    static const dn_override ov[] = {{"b", "units", "5"}, {"b", "batchnorm", "true"}};
    parsed p;
    parse_over(&p, OV_SPEC, ov, 2);
    ck_assert_msg(p.rc == 0, "%s", p.out);
    ck_assert_int_eq(p.spec->layers[1].units, 5);
    ck_assert_int_eq(p.spec->layers[1].batchnorm, 1);
    ck_assert_int_eq(p.spec->layers[2].in, 5);
    ck_assert_int_eq(p.spec->n_batchnorm, 1);
    ck_assert_uint_eq(p.spec->n_params, (4 * 3 + 3) + (3 * 5 + 5 * 3) + (5 * 2 + 2));
    parsed_free(&p);
}
END_TEST

/* What validation refuses in a file it refuses as an override: at the value
 * replaced, or at the layer when the file has none, with a note. */
START_TEST(test_override_rejected) {
    static const struct {
        dn_override ov;
        const char *want;
    } rejected[] = {
        {{"out", "dropout", "0.3"},
         "t.yaml:6:5: error: dropout is not allowed on the output layer, got 0.3\n"
         "t.yaml:6:5: note: dropout 0.3 of layer 'out' is set by test, not by the spec file\n"},
        {{"a", "dropout", "1.5"},
         "t.yaml:4:52: error: dropout must be in [0, 1), got 1.5\n"
         "t.yaml:4:52: note: dropout 1.5 of layer 'a' is set by test, not by the spec file\n"},
        {{"b", "dropout", "-0.1"},
         "t.yaml:5:5: error: dropout must be in [0, 1), got -0.1\n"
         "t.yaml:5:5: note: dropout -0.1 of layer 'b' is set by test, not by the spec file\n"},
        {{"a", "dropout", "abc"},
         "t.yaml:4:52: error: expected a number, got 'abc'\n"
         "t.yaml:4:52: note: dropout abc of layer 'a' is set by test, not by the spec file\n"},
        {{"out", "noise", "0.1"},
         "t.yaml:6:5: error: noise is not allowed on the output layer, got 0.1\n"
         "t.yaml:6:5: note: noise 0.1 of layer 'out' is set by test, not by the spec file\n"},
        {{"nope", "dropout", "0.3"},
         "t.yaml: error: test sets 'dropout' of layer 'nope', but the spec has no layer named 'nope'\n"},
        {{"a", "name", "z"}, "t.yaml: error: test sets 'name' of layer 'a', which is not a key it can set\n"},
        {{"a", "colour", "red"}, "t.yaml: error: test sets 'colour' of layer 'a', which is not a key it can set\n"},
    };
    for (size_t k = 0; k < sizeof rejected / sizeof rejected[0]; k++) {
        parsed p;
        parse_over(&p, OV_SPEC, &rejected[k].ov, 1);
        ck_assert_msg(p.rc == -1, "case %zu accepted", k);
        ck_assert_msg(strcmp(p.out, rejected[k].want) == 0, "case %zu:\n%swant:\n%s", k, p.out, rejected[k].want);
        parsed_free(&p);
    }
}
END_TEST

/* A warning on an overridden value is noted too, and does not fail. */
START_TEST(test_override_warning_noted) {
    static const dn_override ov[] = {{"a", "dropout", "0.9"}};
    parsed p;
    parse_over(&p, OV_SPEC, ov, 1);
    ck_assert_int_eq(p.rc, 0);
    ck_assert_str_eq(p.out, "t.yaml:4:52: warning: dropout 0.9 is unusually high\n"
                            "t.yaml:4:52: note: dropout 0.9 of layer 'a' is set by test, not by the spec file\n");
    ck_assert_double_eq(p.spec->layers[0].dropout, 0.9);
    parsed_free(&p);
}
END_TEST

/* ---- defaults and accepted forms ------------------------------------------ */

START_TEST(test_partial_sections_get_defaults) {
    parsed p;
    parse_ok(&p, V "train: {epochs: 3, optimizer: {type: adamw, weight_decay: 0.01}}\n"
                   "data: {dir: /tmp/mnist, normalize: {std: 0.25}}\n");
    const dn_spec *s = p.spec;
    ck_assert_int_eq(s->train.epochs, 3);
    ck_assert_int_eq(s->train.batch_size, 64);
    ck_assert(s->train.seed == 42);
    ck_assert_int_eq(s->train.loss, DN_LOSS_CROSS_ENTROPY);
    ck_assert_int_eq(s->train.opt.type, DN_OPT_ADAMW);
    ck_assert_double_eq(s->train.opt.weight_decay, 0.01);
    ck_assert_double_eq(s->train.opt.lr, 0.001);
    ck_assert_double_eq(s->train.opt.beta2, 0.999);
    ck_assert_double_eq(s->train.opt.eps, 1e-8);
    ck_assert_str_eq(s->data.format, "idx");
    ck_assert_str_eq(s->data.dir, "/tmp/mnist");
    ck_assert_double_eq(s->data.mean, 0.5);
    ck_assert_double_eq(s->data.std, 0.25);
    parsed_free(&p);
}
END_TEST

START_TEST(test_accepted_forms) {
    parsed p;
    parse_ok(&p, "name: _Net2\n"
                 "description: 'two: layers # not a comment'\n"
                 "input: {size: 8, dropout: 0.2}\n"
                 "layers:\n"
                 "  - name: hidden_1\n"
                 "    units: 007\n"
                 "    activation: tanh\n"
                 "    dropout: .25\n"
                 "  - {units: 1, activation: sigmoid, dropout: 0}\n"
                 "train:\n"
                 "  seed: 18446744073709551615\n"
                 "  loss: mse\n"
                 "  optimizer: adamw\n"
                 "  batch_size: 4096\n"
                 "data:\n"
                 "  normalize: {mean: -1.5e0, std: 2}\n");
    const dn_spec *s = p.spec;
    ck_assert_str_eq(s->name, "_Net2");
    ck_assert_str_eq(s->description, "two: layers # not a comment");
    ck_assert_int_eq(s->input, 8);
    ck_assert_double_eq(s->input_dropout, 0.2);
    assert_layer(&s->layers[0], "hidden_1", 8, 7, DN_ACT_TANH, 0.25, 0, 64); /* 7 units padded to 8 */
    assert_layer(&s->layers[1], "fc2", 7, 1, DN_ACT_SIGMOID, 0.0, 72, 128);
    ck_assert_int_eq(s->layers[1].stride, 8);
    ck_assert_uint_eq(s->n_floats, 136);
    ck_assert_uint_eq(s->n_params, 71);
    ck_assert(s->train.seed == UINT64_MAX);
    ck_assert_int_eq(s->train.loss, DN_LOSS_MSE);
    ck_assert_int_eq(s->train.opt.type, DN_OPT_ADAMW);
    ck_assert_double_eq(s->train.opt.lr, 0.001);
    ck_assert_int_eq(s->train.batch_size, 4096);
    ck_assert_double_eq(s->data.mean, -1.5);
    ck_assert_double_eq(s->data.std, 2.0);
    ck_assert_int_eq(s->layers[0].loc.line, 5);
    ck_assert_int_eq(s->layers[0].loc.col, 5);
    parsed_free(&p);
}
END_TEST

/* Activations by name (swish is silu) or as a mapping with parameters,
 * PyTorch's defaults where none is given; a loss as a mapping. */
START_TEST(test_activation_forms) {
    parsed p;
    parse_ok(&p, H "layers:\n"
                   "  - {units: 3, activation: leaky_relu}\n"
                   "  - {units: 3, activation: {type: leaky_relu, slope: -0.2}}\n"
                   "  - {units: 3, activation: {type: elu, alpha: 0.5}}\n"
                   "  - {units: 3, activation: {type: gelu, approximate: tanh}}\n"
                   "  - {units: 3, activation: {type: gelu, approximate: none}}\n"
                   "  - {units: 3, activation: swish}\n"
                   "  - {units: 3, activation: {type: softplus, beta: 2, threshold: 5}}\n"
                   "  - {units: 3, activation: softplus}\n"
                   "  - {units: 2, activation: softmax}\n"
                   "train: {loss: {type: cross_entropy, label_smoothing: 0.1}}\n");
    const dn_layer *l = p.spec->layers;
    ck_assert_int_eq(l[0].act, DN_ACT_LEAKY_RELU);
    ck_assert_double_eq(l[0].act_alpha, 0.01);
    ck_assert_double_eq(l[1].act_alpha, -0.2);
    ck_assert_int_eq(l[2].act, DN_ACT_ELU);
    ck_assert_double_eq(l[2].act_alpha, 0.5);
    ck_assert_int_eq(l[3].act, DN_ACT_GELU);
    ck_assert_int_eq(l[3].act_tanh, 1);
    ck_assert_int_eq(l[4].act_tanh, 0);
    ck_assert_int_eq(l[5].act, DN_ACT_SILU);
    ck_assert_int_eq(l[6].act, DN_ACT_SOFTPLUS);
    ck_assert_double_eq(l[6].act_alpha, 2.0);
    ck_assert_double_eq(l[6].act_threshold, 5.0);
    ck_assert_double_eq(l[7].act_alpha, 1.0);
    ck_assert_double_eq(l[7].act_threshold, 20.0);
    ck_assert_int_eq(p.spec->train.loss, DN_LOSS_CROSS_ENTROPY);
    ck_assert_double_eq(p.spec->train.label_smoothing, 0.1);
    parsed_free(&p);
    parse_ok(&p, H LAY("units: 3, activation: elu", "units: 1, activation: sigmoid")
                 "train: {loss: binary_cross_entropy}\n");
    ck_assert_double_eq(p.spec->layers[0].act_alpha, 1.0);
    ck_assert_int_eq(p.spec->train.loss, DN_LOSS_BINARY_CROSS_ENTROPY);
    ck_assert_double_eq(p.spec->train.label_smoothing, 0.0);
    ck_assert_int_eq(p.spec->data.values, 0); /* one unit: labels 0 and 1 */
    parsed_free(&p);
    /* multi-label: 3 sigmoid units read 3 target columns as values by default */
    parse_ok(&p, H LAY("units: 3, activation: elu", "units: 3, activation: sigmoid")
                 "train: {loss: binary_cross_entropy}\n"
                 "data: {format: csv, train: a.csv, target: [a, b, c]}\n");
    ck_assert_int_eq(p.spec->data.values, 1);
    ck_assert_int_eq(p.spec->data.n_target, 3);
    parsed_free(&p);
    parse_ok(&p, H LAY("units: 3, activation: elu", "units: 2, activation: sigmoid")
                 "train: {loss: binary_cross_entropy}\n"
                 "data: {format: npy, train: a.npy, train_y: b.npy}\n");
    ck_assert_int_eq(p.spec->data.values, 1);
    parsed_free(&p);
}
END_TEST

/* Batch norm: defaults and settings, gamma and beta after each layer's bias,
 * running statistics after every trained tensor, PyTorch's parameter count. */
START_TEST(test_batchnorm_layout) {
    parsed p;
    parse_ok(&p, H "layers:\n  - {units: 3, activation: relu, batchnorm: true}\n"
                   "  - {units: 2, activation: softmax, batchnorm: {momentum: 0.25, eps: 1e-3}}\n");
    const dn_spec *s = p.spec;
    const dn_layer *a = &s->layers[0], *b = &s->layers[1];
    ck_assert_int_eq(a->batchnorm, 1);
    ck_assert_double_eq(a->bn_momentum, 0.1);
    ck_assert_double_eq(a->bn_eps, 1e-5);
    ck_assert_double_eq(b->bn_momentum, 0.25);
    ck_assert_double_eq(b->bn_eps, 1e-3);
    /* fc1: W 8x4 at 0, b at 32, gamma 40, beta 48; fc2: W 8x3 at 56, b 80, gamma 88, beta 96 */
    ck_assert_uint_eq(a->b_off, 32);
    ck_assert_uint_eq(a->g_off, 40);
    ck_assert_uint_eq(a->beta_off, 48);
    ck_assert_uint_eq(b->w_off, 56);
    ck_assert_uint_eq(b->g_off, 88);
    ck_assert_uint_eq(b->beta_off, 96);
    ck_assert_uint_eq(s->n_train_floats, 104);
    ck_assert_uint_eq(a->rm_off, 104);
    ck_assert_uint_eq(a->rv_off, 112);
    ck_assert_uint_eq(b->rm_off, 120);
    ck_assert_uint_eq(b->rv_off, 128);
    ck_assert_uint_eq(s->n_floats, 136);
    ck_assert_uint_eq(s->n_params, 3 * 4 + 3 + 2 * 3 + 2 * 3 + 2 + 2 * 2); /* running stats are not parameters */
    ck_assert_int_eq(s->n_batchnorm, 2);
    parsed_free(&p);
    parse_ok(&p, V); /* off by default, and `false` is off */
    ck_assert_int_eq(p.spec->layers[0].batchnorm, 0);
    ck_assert_int_eq(p.spec->n_batchnorm, 0);
    ck_assert_uint_eq(p.spec->n_train_floats, p.spec->n_floats);
    parsed_free(&p);
    parse_ok(&p, HIDDEN("batchnorm: false"));
    ck_assert_int_eq(p.spec->layers[0].batchnorm, 0);
    parsed_free(&p);
}
END_TEST

/* BatchNorm2d on a conv2d: one gamma, beta and running statistic per
 * channel, stored rounded up to 8 after the conv's bias (its weights are
 * not in panels); PyTorch's parameter count. */
START_TEST(test_batchnorm2d_layout) {
    parsed p;
    parse_ok(&p, "name: t\ninput: {shape: [2, 5, 5]}\nlayers:\n"
                 "  - {type: conv2d, filters: 3, kernel: 3, activation: relu, batchnorm: {momentum: 0.2, eps: 1e-3}}\n"
                 "  - {type: flatten}\n  - {units: 2, activation: softmax, batchnorm: true}\n");
    const dn_spec *s = p.spec;
    const dn_layer *a = &s->layers[0], *b = &s->layers[2];
    ck_assert_int_eq(a->batchnorm, 1);
    ck_assert_double_eq(a->bn_momentum, 0.2);
    ck_assert_double_eq(a->bn_eps, 1e-3);
    ck_assert_int_eq(dn_bn_features(a), 3);
    ck_assert_int_eq(dn_bn_stride(a), 8);
    /* conv1: W 3x2x3x3 at 0, b at 54, gamma 57, beta 65; fc3: W 8x27 at 73, b 289, gamma 297, beta 305 */
    ck_assert_uint_eq(a->b_off, 54);
    ck_assert_uint_eq(a->g_off, 57);
    ck_assert_uint_eq(a->beta_off, 65);
    ck_assert_uint_eq(b->w_off, 73);
    ck_assert_uint_eq(b->g_off, 297);
    ck_assert_uint_eq(s->n_train_floats, 313);
    ck_assert_uint_eq(a->rm_off, 313);
    ck_assert_uint_eq(a->rv_off, 321);
    ck_assert_uint_eq(b->rm_off, 329);
    ck_assert_uint_eq(s->n_floats, 345);
    ck_assert_uint_eq(s->n_params, 3 * 18 + 3 + 2 * 3 + 2 * 27 + 2 + 2 * 2);
    ck_assert_int_eq(s->n_batchnorm, 2);
    parsed_free(&p);
}
END_TEST

/* A csv data section as the spec gives it, and the defaults it implies. */
START_TEST(test_data_csv_fields) {
    parsed p;
    parse_ok(&p, H "layers:\n  - {units: 3, activation: relu}\n  - {units: 2, activation: linear}\n"
                 "train: {loss: mse}\n"
                 "data: {format: csv, train: \"d/a b.csv\", test_split: 0.25, header: true, skip: 2,\n"
                 "       delimiter: \"\\t\", target: [y1, 5], ignore: id, normalize: minmax}\n");
    const dn_data *d = &p.spec->data;
    ck_assert_str_eq(d->format, "csv");
    ck_assert_str_eq(d->train, "d/a b.csv");
    ck_assert_str_eq(d->dir, "");
    ck_assert_double_eq(d->test_split, 0.25);
    ck_assert_int_eq(d->header, 1);
    ck_assert_int_eq(d->skip, 2);
    ck_assert_int_eq(d->delimiter, '\t');
    ck_assert_int_eq(d->n_target, 2);
    ck_assert_str_eq(d->target[0], "y1");
    ck_assert_str_eq(d->target[1], "5");
    ck_assert_int_eq(d->n_ignore, 1);
    ck_assert_str_eq(d->ignore[0], "id");
    ck_assert_int_eq(d->normalize, DN_NORM_MINMAX);
    ck_assert_int_eq(d->values, 1); /* mse on csv data: real-valued targets */
    parsed_free(&p);
    parse_ok(&p, V "data: {format: npy, train: x.npy, train_y: y.npy}\n");
    ck_assert_int_eq(p.spec->data.values, 0);
    ck_assert_int_eq(p.spec->data.normalize, DN_NORM_NONE);
    ck_assert_int_eq(p.spec->data.delimiter, ',');
    parsed_free(&p);
}
END_TEST

START_TEST(test_mse_outputs) {
    static const char *const acts[] = {"linear", "sigmoid", "tanh"};
    for (int i = 0; i < 3; i++) {
        char text[256];
        parsed p;
        snprintf(text, sizeof text, H LAY("units: 3, activation: relu", "units: 1, activation: %s")
                 "train: {loss: mse}\n", acts[i]);
        parse_ok(&p, text);
        ck_assert_int_eq(p.spec->train.loss, DN_LOSS_MSE);
        parsed_free(&p);
    }
}
END_TEST

START_TEST(test_params_at_limit) {
    parsed p;
    /* 16 * 16777215 + 16 = 2^28 exactly: allowed */
    parse_ok(&p, "name: t\ninput: 16777215\nlayers:\n  - {units: 16, activation: softmax}\n");
    ck_assert_uint_eq(p.spec->n_params, DN_MAX_PARAMS);
    parsed_free(&p);
}
END_TEST

START_TEST(test_description_limits) {
    char text[2048];
    parsed p;
    size_t n = (size_t)snprintf(text, sizeof text, V "description: \"");
    memset(text + n, 'd', 1023);
    memcpy(text + n + 1023, "\"\n", 3);
    parse_ok(&p, text);
    ck_assert_uint_eq(strlen(p.spec->description), 1023);
    parsed_free(&p);

    memcpy(text + n + 1023, "d\"\n", 4); /* 1024 characters */
    parse_text(&p, text);
    ck_assert_int_eq(p.rc, -1);
    ck_assert_str_eq(p.out, "t.yaml:6:14: error: description is too long (1024 bytes, at most 1023)\n");
    parsed_free(&p);
}
END_TEST

/* ---- generated inputs ----------------------------------------------------- */

/* A spec with n hidden relu layers of width 2 and a softmax output. */
static char *spec_with_layers(int n) {
    size_t cap = 64 + (size_t)(n + 1) * 48, o = 0;
    char *t = malloc(cap);
    ck_assert_ptr_nonnull(t);
    o += (size_t)snprintf(t + o, cap - o, "name: t\ninput: 4\nlayers:\n");
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(t + o, cap - o, "  - {units: 2, activation: relu}\n");
    snprintf(t + o, cap - o, "  - {units: 2, activation: softmax}\n");
    return t;
}

START_TEST(test_layer_count_limit) {
    parsed p;
    char *t = spec_with_layers(DN_MAX_LAYERS - 1);
    parse_ok(&p, t);
    ck_assert_int_eq(p.spec->n_layers, DN_MAX_LAYERS);
    ck_assert_str_eq(p.spec->layers[DN_MAX_LAYERS - 1].name, "fc64");
    ck_assert_uint_eq(p.spec->n_params, 4 * 2 + 2 + 63 * (2 * 2 + 2));
    parsed_free(&p);
    free(t);

    t = spec_with_layers(DN_MAX_LAYERS);
    parse_text(&p, t);
    ck_assert_int_eq(p.rc, -1);
    /* located at the first layer too many: item 65 is on line 3 + 65 */
    ck_assert_str_eq(p.out, "t.yaml:68:5: error: too many layers (65, at most 64)\n");
    parsed_free(&p);
    free(t);
}
END_TEST

START_TEST(test_deep_nesting) {
    char text[256];
    size_t n = (size_t)snprintf(text, sizeof text, V "data: ");
    memset(text + n, '[', 70);
    memset(text + n + 70, ']', 70);
    memcpy(text + n + 140, "\n", 2);
    parsed p;
    parse_text(&p, text);
    ck_assert_int_eq(p.rc, -1);
    /* the root mapping is level 1; the 64th '[' (column 6 + 64) is level 65 */
    ck_assert_str_eq(p.out, "t.yaml:6:70: error: nesting is too deep (more than 64 levels)\n");
    parsed_free(&p);
}
END_TEST

/* 25 unknown keys: all counted, the first max_errors printed, then one cap line. */
static char *spec_with_unknown_keys(int n) {
    size_t cap = 256 + (size_t)n * 16, o = 0;
    char *t = malloc(cap);
    ck_assert_ptr_nonnull(t);
    o += (size_t)snprintf(t + o, cap - o, V);
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(t + o, cap - o, "bogus%d: 1\n", i);
    return t;
}

START_TEST(test_error_cap_default) {
    char *t = spec_with_unknown_keys(25);
    parsed p;
    parse_text(&p, t);
    ck_assert_int_eq(p.rc, -1);
    ck_assert_int_eq(p.d.n_errors, 25);
    ck_assert_int_eq(count_of(p.out, ": error: unknown key 'bogus"), 20);
    ck_assert_ptr_nonnull(strstr(p.out, "t.yaml:25:1: error: unknown key 'bogus19' at top level"));
    ck_assert_ptr_null(strstr(p.out, "bogus20"));
    const char *tail = "t.yaml: error: too many errors, stopping\n";
    ck_assert_uint_ge(p.out_len, strlen(tail));
    ck_assert_str_eq(p.out + p.out_len - strlen(tail), tail);
    ck_assert_int_eq(count_of(p.out, "too many errors"), 1);
    parsed_free(&p);
    free(t);
}
END_TEST

START_TEST(test_error_cap_custom) {
    char *t = spec_with_unknown_keys(5);
    parsed p;
    parse_with(&p, t, strlen(t), 3);
    ck_assert_int_eq(p.d.n_errors, 5);
    ck_assert_int_eq(count_of(p.out, "\n"), 4);
    ck_assert_ptr_nonnull(strstr(p.out, "bogus2"));
    ck_assert_ptr_null(strstr(p.out, "bogus3"));
    ck_assert_ptr_nonnull(strstr(p.out, "t.yaml: error: too many errors, stopping\n"));
    parsed_free(&p);
    free(t);
}
END_TEST

/* ---- warnings, hashing, reuse ---------------------------------------------- */

START_TEST(test_warnings_do_not_fail) {
    parsed p;
    parse_text(&p, "name: t\ninput: {size: 4, dropout: 0.7}\n" LAY("units: 3, activation: relu, dropout: 0.85", OUT2)
                   "train: {batch_size: 5000, optimizer: {lr: 0.2}}\n");
    ck_assert_int_eq(p.rc, 0);
    ck_assert_int_eq(p.d.n_errors, 0);
    ck_assert_int_eq(p.d.n_warnings, 4);
    ck_assert_str_eq(p.out, "t.yaml:2:27: warning: input dropout 0.7 is unusually high\n"
                            "t.yaml:4:43: warning: dropout 0.85 is unusually high\n"
                            "t.yaml:6:21: warning: batch_size 5000 is unusually large\n"
                            "t.yaml:6:43: warning: lr 0.2 is unusually high\n");
    /* the values are still taken */
    ck_assert_double_eq(p.spec->layers[0].dropout, 0.85);
    ck_assert_int_eq(p.spec->train.batch_size, 5000);
    parsed_free(&p);
}
END_TEST

START_TEST(test_thresholds_are_quiet) {
    parsed p;
    parse_ok(&p, "name: t\ninput: {size: 4, dropout: 0.5}\n" LAY("units: 3, activation: relu, dropout: 0.8", OUT2)
                 "train: {batch_size: 4096, optimizer: {lr: 0.1}}\n");
    ck_assert_int_eq(p.d.n_warnings, 0);
    parsed_free(&p);
}
END_TEST

START_TEST(test_fnv1a64_vectors) {
    ck_assert(dn_fnv1a64("", 0) == 0xcbf29ce484222325ULL);
    ck_assert(dn_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
    ck_assert(dn_fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
}
END_TEST

START_TEST(test_hash_is_of_the_bytes) {
    const char *a = V;
    const char *b = V "# a comment changes the file, so the hash\n";
    parsed p, q, r;
    parse_ok(&p, a);
    parse_ok(&q, a);
    parse_ok(&r, b);
    ck_assert(p.spec->hash == dn_fnv1a64(a, strlen(a)));
    ck_assert(p.spec->hash == q.spec->hash);
    ck_assert(p.spec->hash != r.spec->hash);
    parsed_free(&p);
    parsed_free(&q);
    parsed_free(&r);
}
END_TEST

START_TEST(test_diag_reused_across_specs) {
    /* rc reflects errors of this spec only, even when d already counts some */
    dn_spec *s = malloc(sizeof *s);
    ck_assert_ptr_nonnull(s);
    dn_diag d;
    dn_diag_init(&d, NULL, "t.yaml"); /* NULL out: count without printing */
    const char *bad = "name: t\n", *good = V;
    ck_assert_int_eq(dn_spec_parse(bad, strlen(bad), "t.yaml", s, &d), -1);
    ck_assert_int_eq(d.n_errors, 2);
    ck_assert_int_eq(dn_spec_parse(good, strlen(good), "t.yaml", s, &d), 0);
    ck_assert_int_eq(d.n_errors, 2);
    ck_assert_str_eq(s->name, "t");
    free(s);
}
END_TEST

START_TEST(test_enum_names) {
    ck_assert_str_eq(dn_act_name(DN_ACT_RELU), "relu");
    ck_assert_str_eq(dn_act_name(DN_ACT_SOFTMAX), "softmax");
    ck_assert_str_eq(dn_loss_name(DN_LOSS_CROSS_ENTROPY), "cross_entropy");
    ck_assert_str_eq(dn_loss_name(DN_LOSS_MSE), "mse");
    ck_assert_str_eq(dn_opt_name(DN_OPT_ADAMW), "adamw");
    ck_assert_str_eq(dn_act_name(DN_ACT_COUNT), "invalid");
}
END_TEST

/* ---- diag ----------------------------------------------------------------- */

START_TEST(test_diag_format) {
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    ck_assert_ptr_nonnull(f);
    dn_diag d;
    dn_diag_init(&d, f, "x.yaml");
    dn_diag_report(&d, DN_ERROR, (dn_loc){3, 7}, "bad %s %d", "thing", 5);
    dn_diag_report(&d, DN_WARNING, (dn_loc){0, 0}, "no location");
    dn_diag_report(&d, DN_NOTE, (dn_loc){9, 0}, "line only");
    d.file = NULL;
    dn_diag_report(&d, DN_ERROR, (dn_loc){1, 1}, "unnamed");
    fclose(f);
    ck_assert_str_eq(out, "x.yaml:3:7: error: bad thing 5\n"
                          "x.yaml: warning: no location\n"
                          "x.yaml:9: note: line only\n"
                          "<input>:1:1: error: unnamed\n");
    ck_assert_int_eq(d.n_errors, 2);
    ck_assert_int_eq(d.n_warnings, 1);
    free(out);
}
END_TEST

START_TEST(test_diag_cap_silences_notes_and_warnings) {
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    ck_assert_ptr_nonnull(f);
    dn_diag d;
    dn_diag_init(&d, f, "x.yaml");
    d.max_errors = 1;
    dn_diag_report(&d, DN_ERROR, (dn_loc){1, 1}, "first");
    dn_diag_report(&d, DN_NOTE, (dn_loc){1, 2}, "about first");
    dn_diag_report(&d, DN_ERROR, (dn_loc){2, 1}, "second");
    dn_diag_report(&d, DN_NOTE, (dn_loc){2, 2}, "about second");
    dn_diag_report(&d, DN_WARNING, (dn_loc){3, 1}, "late warning");
    dn_diag_report(&d, DN_ERROR, (dn_loc){4, 1}, "third");
    fclose(f);
    ck_assert_str_eq(out, "x.yaml:1:1: error: first\n"
                          "x.yaml:1:2: note: about first\n"
                          "x.yaml: error: too many errors, stopping\n");
    ck_assert_int_eq(d.n_errors, 3);
    ck_assert_int_eq(d.n_warnings, 1);
    free(out);
}
END_TEST

/* ---- runner --------------------------------------------------------------- */

static Suite *spec_suite(void) {
    Suite *s = suite_create("check_spec");
    TCase *rules = tcase_create("rules");
    tcase_add_loop_test(rules, test_table, 0, N_CASES);
    suite_add_tcase(s, rules);

    TCase *ir = tcase_create("ir");
    tcase_add_test(ir, test_example_mlp);
    tcase_add_test(ir, test_example_nodropout);
    tcase_add_test(ir, test_example_keras);
    tcase_add_test(ir, test_load_missing_file);
    tcase_add_test(ir, test_load_directory);
    tcase_add_test(ir, test_partial_sections_get_defaults);
    tcase_add_test(ir, test_accepted_forms);
    tcase_add_test(ir, test_activation_forms);
    tcase_add_test(ir, test_mse_outputs);
    tcase_add_test(ir, test_data_csv_fields);
    tcase_add_test(ir, test_batchnorm_layout);
    tcase_add_test(ir, test_batchnorm2d_layout);
    tcase_add_test(ir, test_params_at_limit);
    tcase_add_test(ir, test_description_limits);
    tcase_add_test(ir, test_layer_count_limit);
    tcase_add_test(ir, test_deep_nesting);
    suite_add_tcase(s, ir);

    TCase *ov = tcase_create("overrides");
    tcase_add_test(ov, test_override_applied);
    tcase_add_test(ov, test_override_other_keys);
    tcase_add_test(ov, test_override_rejected);
    tcase_add_test(ov, test_override_warning_noted);
    suite_add_tcase(s, ov);

    TCase *misc = tcase_create("diagnostics");
    tcase_add_test(misc, test_error_cap_default);
    tcase_add_test(misc, test_error_cap_custom);
    tcase_add_test(misc, test_warnings_do_not_fail);
    tcase_add_test(misc, test_thresholds_are_quiet);
    tcase_add_test(misc, test_fnv1a64_vectors);
    tcase_add_test(misc, test_hash_is_of_the_bytes);
    tcase_add_test(misc, test_diag_reused_across_specs);
    tcase_add_test(misc, test_enum_names);
    tcase_add_test(misc, test_diag_format);
    tcase_add_test(misc, test_diag_cap_silences_notes_and_warnings);
    suite_add_tcase(s, misc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(spec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
