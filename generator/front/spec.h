/* spec.h - the validated network description (the IR) that every emitter reads.
 *
 * Data flow:  YAML file --yaml_tree--> node tree (with line:col)
 *                       --validate-->  dn_spec (this file; fully checked, offsets resolved)
 *                       --emit------>  C source
 *
 * Contract: a dn_spec produced by dn_spec_load() (or, with a command's
 * overrides, dn_spec_parse_with()) is valid. Emitters never re-check user
 * input; anything unexpected in a dn_spec is an internal bug.
 */
#ifndef DNGEN_SPEC_H
#define DNGEN_SPEC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DN_NAME_MAX 63                 /* longest C identifier accepted for a name */
#define DN_MAX_LAYERS 64               /* more layers than this is rejected */
#define DN_MAX_PARAMS ((size_t)1 << 28) /* total parameter count limit */
#define DN_MAX_UNITS (1 << 24)          /* per-layer width / input size limit */
#define DN_MAX_WINDOW 1024              /* largest kernel, stride or padding side of an image layer */

/* X-macro tables: adding an activation or loss is one line here.
 * X(ENUM_SUFFIX, "yaml spelling") */
#define DN_ACTIVATIONS(X)       \
    X(RELU, "relu")             \
    X(TANH, "tanh")             \
    X(SIGMOID, "sigmoid")       \
    X(LINEAR, "linear")         \
    X(SOFTMAX, "softmax")       \
    X(LEAKY_RELU, "leaky_relu") \
    X(ELU, "elu")               \
    X(GELU, "gelu")             \
    X(SILU, "silu")             \
    X(SOFTPLUS, "softplus")

#define DN_LOSSES(X)                                \
    X(CROSS_ENTROPY, "cross_entropy")               \
    X(MSE, "mse")                                   \
    X(BINARY_CROSS_ENTROPY, "binary_cross_entropy")

#define DN_OPTIMIZERS(X)   \
    X(ADAM, "adam")        \
    X(ADAMW, "adamw")      \
    X(SGD, "sgd")          \
    X(RMSPROP, "rmsprop")

/* Learning-rate schedules (`train.schedule.type`); NONE keeps lr fixed. */
#define DN_SCHEDULES(X)            \
    X(NONE, "none")                \
    X(STEP, "step")                \
    X(EXPONENTIAL, "exponential")  \
    X(COSINE, "cosine")            \
    X(PLATEAU, "plateau")

typedef enum {
#define X(e, s) DN_ACT_##e,
    DN_ACTIVATIONS(X)
#undef X
    DN_ACT_COUNT
} dn_act;

typedef enum {
#define X(e, s) DN_LOSS_##e,
    DN_LOSSES(X)
#undef X
    DN_LOSS_COUNT
} dn_loss;

typedef enum {
#define X(e, s) DN_OPT_##e,
    DN_OPTIMIZERS(X)
#undef X
    DN_OPT_COUNT
} dn_opt;

typedef enum {
#define X(e, s) DN_SCHED_KIND_##e,
    DN_SCHEDULES(X)
#undef X
    DN_SCHED_KIND_COUNT
} dn_sched_kind;

/* Spelling of an enum value as written in YAML ("relu", "mse", ...). */
const char *dn_act_name(dn_act a);
const char *dn_loss_name(dn_loss l);
const char *dn_opt_name(dn_opt o);
const char *dn_sched_name(dn_sched_kind k);

/* 1-based position of a YAML node in the spec file. */
typedef struct {
    int line;
    int col;
} dn_loc;

/* Width of a weight panel and of the kernels' vectors (floats). */
#define DN_PANEL 8

/* One dense layer: y = act(x W^T + b), then noise and dropout; with
 * batchnorm, y = act(BN(x W^T + b)) (PyTorch's Linear -> BatchNorm1d ->
 * activation -> Dropout). W is [units, in] as
 * PyTorch has it; the parameter buffer keeps it in panels of DN_PANEL units,
 * each input-major: W[o][i] at w_off + (o / DN_PANEL) * in * DN_PANEL +
 * i * DN_PANEL + o % DN_PANEL, the units past `units` zero (see
 * dn_tensor_info in runtime/dn_runtime.h). */
/* The layer types of the spec language (`type:`). */
#define DN_LAYER_TYPES(X)           \
    X(DENSE, "dense")               \
    X(CONV2D, "conv2d")             \
    X(MAXPOOL2D, "maxpool2d")       \
    X(AVGPOOL2D, "avgpool2d")       \
    X(FLATTEN, "flatten")

typedef enum {
#define X(e, s) DN_LAYER_##e,
    DN_LAYER_TYPES(X)
#undef X
    DN_LAYER_TYPE_COUNT
} dn_layer_type;

const char *dn_layer_type_name(dn_layer_type t);

/* The shape of one sample as it flows between layers: flat (rank 1, `c`
 * features) or an image (rank 3: [c, h, w], PyTorch's C, H, W order). */
typedef struct {
    int rank;
    int c, h, w;
} dn_shape;

/* Elements of one sample of shape s. */
static inline int dn_shape_size(dn_shape s) { return s.rank == 1 ? s.c : s.c * s.h * s.w; }

/* One layer. A dense layer (type DN_LAYER_DENSE) is described below; the
 * image layers (conv2d, pools, flatten) use in_shape/out_shape and the
 * window fields, and `in`/`units` are their shapes' sizes. A conv2d's W is
 * [filters, c, kh, kw] in PyTorch's layout at w_off, its bias [filters] at
 * b_off; pools and flatten have no parameters.
 *
 * Dense: */
typedef struct {
    char name[DN_NAME_MAX + 1]; /* C identifier, unique in the spec */
    dn_layer_type type;
    dn_shape in_shape, out_shape; /* one sample's input and output */
    int kh, kw, sh, sw;         /* conv2d and pools: window and stride */
    int pad_top, pad_left;      /* conv2d: zero padding before the rows and columns (after: what `same` needs) */
    int pad_bottom, pad_right;
    int dropout_channel;        /* 1: dropout zeroes whole channels (nn.Dropout2d), else elements */
    int in;                     /* fan-in: previous layer's units or the input size */
    int units;                  /* fan-out */
    int stride;                 /* units rounded up to DN_PANEL: row stride of the layer's buffers */
    dn_act act;
    double act_alpha;           /* leaky_relu: negative slope (0.01); elu: alpha (1); softplus: beta (1) */
    double act_threshold;       /* softplus: threshold (20) */
    int act_tanh;               /* gelu: the tanh approximation (PyTorch's approximate='tanh'), else erf */
    double dropout;             /* PyTorch p in [0,1); 0 = no dropout */
    double noise;               /* std of Gaussian noise added to the output in training; 0 = none */
    int batchnorm;              /* 1: BatchNorm1d (dense) or BatchNorm2d (conv2d) between the product and the activation */
    double bn_momentum, bn_eps; /* its momentum and eps, as PyTorch's (0.1 and 1e-5 by default) */
    size_t w_off;               /* offset (floats) of W's panels (stride * in floats) in the buffer */
    size_t b_off;               /* offset (floats) of b (stride floats, zero past units) */
    size_t g_off, beta_off;     /* batchnorm: gamma and beta (dn_bn_stride floats each), trained */
    size_t rm_off, rv_off;      /* batchnorm: running mean and variance (dn_bn_stride floats each), state */
    dn_loc loc;                 /* where the layer's mapping starts */
} dn_layer;

/* The optimizer, as torch.optim has it: Adam/AdamW read beta1, beta2, eps;
 * SGD momentum, dampening, nesterov; RMSprop alpha, eps, momentum,
 * centered. Fields another type does not read keep their defaults. */
typedef struct {
    dn_opt type;
    double lr, beta1, beta2, eps, weight_decay;
    double momentum, dampening, alpha; /* sgd, rmsprop */
    int nesterov, centered;            /* sgd; rmsprop */
} dn_optimizer;

/* The learning-rate schedule (docs/spec.md#schedule): StepLR and
 * ExponentialLR per epoch, warmup + cosine per optimizer step,
 * ReduceLROnPlateau per epoch on the validation loss or accuracy. */
typedef struct {
    dn_sched_kind type;
    int step_size;          /* step */
    double gamma;           /* step, exponential */
    long long warmup_steps; /* cosine */
    double min_lr;          /* cosine, plateau */
    double factor, threshold;  /* plateau */
    int patience, cooldown;    /* plateau */
    int metric_acc;            /* plateau: 1 = val accuracy (max), 0 = val loss (min) */
} dn_schedule;

typedef struct {
    int batch_size;  /* >= 1 */
    int epochs;      /* >= 1 */
    uint64_t seed;
    dn_loss loss;
    double label_smoothing;  /* cross_entropy: PyTorch's label_smoothing in [0, 1); 0 = none */
    dn_optimizer opt;
    dn_schedule schedule;
    double clip_grad_norm; /* > 0: clip the gradient's global 2-norm to it; 0: off */
} dn_train;

#define DN_DATA_MAX_COLS 32   /* column selectors in data.target or data.ignore */
#define DN_DATA_COL_MAX 128   /* bytes of one selector, terminator included */

/* data.normalize of CSV and NPY data: x' = (x - mean) / std per feature. */
typedef enum {
    DN_NORM_NONE,      /* raw values (the default) */
    DN_NORM_FIXED,     /* {mean, std}: the same two numbers for every feature */
    DN_NORM_STANDARD,  /* each feature's mean and standard deviation over the training rows */
    DN_NORM_MINMAX     /* each feature's minimum, and maximum - minimum */
} dn_norm;

typedef struct {
    char format[16];   /* "idx", "csv" or "npy" */
    char dir[4096];    /* idx: default data directory, as written in the spec */
    double mean, std;  /* idx: normalization on the [0,1] pixel scale; csv/npy: DN_NORM_FIXED; std > 0 */
    /* csv and npy (files as written in the spec; "" when absent): */
    char train[4096], train_y[4096];  /* npy: features and targets files */
    char test[4096], test_y[4096];
    double test_split;                /* (0, 1): test rows split off train; 0: none */
    int header;                       /* csv: the first line names the columns */
    int skip;                         /* csv: lines dropped at the start */
    char delimiter;                   /* csv */
    int n_target, n_ignore;           /* csv: column selectors (names or 0-based indices) */
    char target[DN_DATA_MAX_COLS][DN_DATA_COL_MAX];
    char ignore[DN_DATA_MAX_COLS][DN_DATA_COL_MAX];
    int values;                       /* targets are real values (regression; multi-label 0/1), not class labels */
    dn_norm normalize;
} dn_data;

typedef struct {
    char name[DN_NAME_MAX + 1]; /* model name: C identifier, prefixes generated symbols */
    char path[4096];            /* spec file path as given (for banners and diagnostics) */
    char description[1024];     /* optional free text (`description:`); emitters must escape it */
    uint64_t hash;              /* FNV-1a 64 of the spec file's bytes */
    int input;                  /* input size (features of one sample) */
    dn_shape input_shape;       /* the same as a shape: [input] or `input: {shape: [c, h, w]}` */
    double input_dropout;       /* dropout on the input, [0,1) */
    int n_layers;               /* 1..DN_MAX_LAYERS */
    dn_layer layers[DN_MAX_LAYERS];
    size_t n_params;            /* parameters (the PyTorch model's count; running statistics excluded) */
    size_t n_train_floats;      /* floats of the buffer's trained part (parameters plus padding) */
    size_t n_floats;            /* floats in the flat parameter buffer (then the state tensors) */
    int n_batchnorm;            /* layers with batchnorm */
    dn_train train;
    dn_data data;
} dn_spec;

/* The features batch norm normalizes apart in layer l: a dense layer's
 * units (BatchNorm1d), a conv2d's channels (BatchNorm2d, each over the batch
 * and its plane). Its gamma, beta and running statistics hold one float per
 * feature, stored dn_bn_stride(l) long (zero past the features). */
static inline int dn_bn_features(const dn_layer *l) { return l->type == DN_LAYER_CONV2D ? l->out_shape.c : l->units; }
static inline int dn_bn_stride(const dn_layer *l) { return (dn_bn_features(l) + DN_PANEL - 1) / DN_PANEL * DN_PANEL; }

/* Parameter buffer layout: first the trained tensors in PyTorch state_dict
 * order, layers[0].W, layers[0].b (then its gamma and beta with batchnorm),
 * layers[1].W, ... up to n_train_floats; then the state: the running mean
 * and variance of each batchnorm layer, up to n_floats. Each tensor is
 * padded as dn_layer says; strides, offsets and counts are filled by
 * validation. */

/* ---- diagnostics ---------------------------------------------------------- */

typedef enum { DN_NOTE, DN_WARNING, DN_ERROR } dn_severity;

/* Collects diagnostics in compiler form: "file:line:col: error: message".
 * Printing goes to `out` (stderr in the CLI, a memory stream in tests).
 * After `max_errors` errors further errors are counted but not printed. */
typedef struct {
    FILE *out;
    const char *file;  /* name printed in front of each diagnostic */
    int n_errors;
    int n_warnings;
    int max_errors;    /* 0 = default (20) */
} dn_diag;

void dn_diag_init(dn_diag *d, FILE *out, const char *file);
/* Reports one diagnostic at loc (line 0 = no location: "file: error: ..."). */
void dn_diag_report(dn_diag *d, dn_severity sev, dn_loc loc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* ---- front end entry points ----------------------------------------------- */

/* Loads, validates and lays out a spec from YAML text.
 * `path` is used only in diagnostics and recorded in spec->path.
 * Returns 0 when the spec is valid (warnings may have been reported),
 * -1 when any error was reported through `d` (spec contents then undefined). */
int dn_spec_parse(const char *text, size_t len, const char *path, dn_spec *spec, dn_diag *d);

/* Reads the file at `path` and calls dn_spec_parse. An unreadable file is
 * reported as an error without location and returns -2. */
int dn_spec_load(const char *path, dn_spec *spec, dn_diag *d);

/* Spec files are small; a bigger file is not a spec. */
#define DN_SPEC_MAX_BYTES ((size_t)16 << 20)

/* Reads the spec file at `path` (at most DN_SPEC_MAX_BYTES) into a malloc'd,
 * NUL-terminated buffer. Returns it with *len set, or NULL after reporting
 * "cannot read spec: REASON" (no location) through d. */
char *dn_spec_read(const char *path, size_t *len, dn_diag *d);

/* A value that a command sets in place of the spec file's, e.g. one dropout
 * rate of a `dngen sweep` variant: key `key` of the layer named `layer`
 * (its given name, or the default fcN) takes `value`, YAML text read as if
 * the file said `key: value` in that layer. */
typedef struct {
    const char *layer;
    const char *key;    /* a layer key other than `name`: "dropout", "noise", "units", ... */
    const char *value;  /* "0.3" */
} dn_override;

/* The overrides of one spec and who sets them. */
typedef struct {
    const dn_override *items;
    int n;
    const char *origin; /* named in notes: "dngen sweep" */
} dn_overrides;

/* dn_spec_parse with overrides (NULL: none) applied before validation, so
 * every rule of validate.c holds for them as for the file's own values: a
 * rejected override is an error at the value it replaces (or at its layer,
 * when the file has no such key), and each layer whose check reported
 * something gets a note per override naming it and ov->origin. An override
 * of a key or layer that does not exist is an error without location. The
 * spec's hash stays that of the text. */
int dn_spec_parse_with(const char *text, size_t len, const char *path, const dn_overrides *ov,
                       dn_spec *spec, dn_diag *d);

/* 64-bit FNV-1a of bytes (used for the spec hash). */
uint64_t dn_fnv1a64(const void *data, size_t len);

#endif
