/* plan.h - the resolved network: what every emitter reads, and all it reads.
 *
 * Data flow:  dn_spec (front/spec.h, validated)
 *               --dn_plan_build-->  dn_plan (this file)
 *               --emit/-->          C source
 *
 * The plan turns the spec's layers into a chain of ops, each of one kind
 * (dn_op_kind), and resolves once everything the emitters print: shapes and
 * row strides, the names of the buffers each op reads and writes, parameter
 * offsets, which kernels exist (the fused training head, an op's own
 * input-gradient kernel), tile shapes, scratch sizes, the dropout threshold
 * and scale literals, and the tensor table. Emitters decide nothing: a
 * question an emitter would ask of the spec is a field here.
 *
 * A spec layer with batch norm becomes two ops, a dense product (writing
 * z = x W^T + b) or a convolution (z = conv(x, W) + b), and a batchnorm op
 * (normalization, activation, noise and dropout), as PyTorch's Linear ->
 * BatchNorm1d -> activation -> Dropout or Conv2d -> BatchNorm2d ->
 * activation -> Dropout.
 * Input dropout is an op of its own (kind DN_OP_DROPOUT) in front.
 */
#ifndef DNGEN_PLAN_H
#define DNGEN_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "dn_runtime.h"
#include "spec.h"

/* The kinds of op; each has one emitter module behind dn_kind (emit/kind.h). */
typedef enum {
    DN_OP_DROPOUT,   /* dropout of the network's input */
    DN_OP_DENSE,     /* x W^T + b, then activation, noise, dropout (or only the product, before batch norm) */
    DN_OP_BATCHNORM, /* BatchNorm1d or 2d of the product before it, then activation, noise, dropout */
    DN_OP_CONV2D,    /* direct convolution + bias, then activation and dropout (element or channel), or
                        only the sum, before batch norm */
    DN_OP_POOL2D,    /* max or average pooling, then dropout */
    DN_OP_KIND_COUNT
} dn_op_kind;

/* Room for a buffer's C expression, e.g. "(mc ? bf.fc1_h : bf.fc1_a)". */
#define DN_EXPR_MAX (2 * DN_NAME_MAX + 32)

/* A register tile: a x b (rows or inputs x panels or input vectors), vp
 * panels per vector (1: 8 floats, 2: 16 floats with AVX-512). */
typedef struct {
    int a, b, vp;
} dn_tile;

/* The two tile shapes of every tiled kernel: [0] for 16 registers of 8
 * floats, [1] for 32 of 16 (chosen when the trainer is compiled: the
 * prelude's DN_WIDE_TILES). */
typedef struct {
    dn_tile narrow, wide;
} dn_tiles;

/* An activation as the kernels apply and differentiate it. relu, tanh,
 * sigmoid and linear are written inline; the others through functions
 * <fn>_act(x) and <fn>_dact(a) that the op's kernels define (kernels.h). */
typedef struct {
    dn_act type;
    char alpha[40];        /* float literal: leaky_relu's slope, elu's alpha, softplus's beta */
    char threshold[40];    /* float literal: softplus's threshold */
    int tanh;              /* gelu: PyTorch's approximate='tanh' (else the erf form) */
    int from_pre;          /* its derivative is a function of the pre-activation, which the forward pass
                              keeps in training; else of the output a */
    int by_loss;           /* the loss applies it (softmax; sigmoid with binary_cross_entropy): the
                              epilogue leaves the logits in a */
    char fn[2 * DN_NAME_MAX + 2]; /* "<model>_<layer>": prefix of its functions */
} dn_actfn;

/* A value flowing from one op to the next: rows of `width` features, `stride`
 * floats apart, with the buffers that hold it (C expressions in the step
 * functions, where the buffers are `bf`). */
typedef struct {
    int width, stride;
    dn_shape shape;          /* one sample's shape (rank 3: [c, h, w], stored in that order) */
    char owner[DN_NAME_MAX + 1]; /* the layer that made it ("input" for the network's input) */
    char a[DN_EXPR_MAX];     /* the activation ("bf.fc1_a", "bt->x") */
    char train[DN_EXPR_MAX]; /* what the next op reads in training: h when randomized, else a */
    char eval[DN_EXPR_MAX];  /* ... in eval: "(mc ? h : a)" when randomized (MC dropout), else a */
    char d[DN_EXPR_MAX];     /* gradient wrt the pre-activation ("" for the network's input) */
    char mask[DN_EXPR_MAX];  /* dropout scales, or "NULL" */
    int has_mask;            /* mask is a buffer */
    dn_actfn act;            /* the activation that made a (its derivative in backward) */
    char deriv_in[DN_EXPR_MAX]; /* what act's derivative reads: a, or with act.from_pre the
                                   pre-activation ("bf.fc1_pre", written in training only) */
} dn_value;

/* Dropout of an op's output: rate p, and the literals of the runtime's
 * dn_dropout_threshold(p) and 1/(1-p) in float, as PyTorch scales. */
typedef struct {
    double p;                /* 0: no dropout */
    char rate[32];           /* p, shortest round-trip text ("0.5") */
    uint32_t threshold;      /* a unit is dropped when its random word is below this */
    char scale[40];          /* C float literal of 1/(1-p) */
} dn_drop;

/* One op of the chain. */
typedef struct {
    dn_op_kind kind;
    const dn_layer *layer;        /* the spec layer it comes from (NULL for input dropout) */
    char name[DN_NAME_MAX + 1];   /* the layer's name: its kernels are <model>_<name>_... */
    int slot;                     /* RNG slot of its masks and noise: layer index + 1 (input: 0) */
    dn_value in, out;             /* what it reads and what it leaves */

    /* Output epilogue (dense without batch norm, batchnorm, dropout). */
    dn_actfn act;
    dn_drop drop;
    double noise;                 /* std of Gaussian noise in training; 0 = none */
    char noise_text[32], noise_lit[40];
    int stochastic;               /* dropout or noise: a training output h beside a */
    int product_only;             /* dense or conv2d before batch norm: out.a is z (the product plus bias), no
                                     epilogue */

    /* Kernels. */
    int head;                     /* dense: the last layer, fused with the loss in training */
    int own_backward_x;           /* dense: its input gradient is a kernel of its own */
    int panels;                   /* dense: out.stride / DN_PANEL */
    dn_tiles fwd, bw, bx;         /* dense: forward, weight gradient, input gradient tiles */

    /* Image ops (conv2d, pool2d): the window over in.shape giving out.shape. */
    int kh, kw, sh, sw;           /* window and stride */
    int pad_top, pad_left;        /* conv2d: zero padding before rows and columns */
    int pad_bottom, pad_right;    /* ... and after them (more than before: `same` with an even kernel) */
    int pool_max;                 /* pool2d: 1 max (its argmax kept for backward), 0 average */
    int drop_channel;             /* dropout zeroes whole channels (nn.Dropout2d) */
    int plane4;                   /* out.shape h * w rounded up to 4: a channel's span of dropout units */
    char arg[DN_EXPR_MAX];        /* max pool: its argmax buffer (int32, carved as floats) */
    int conv_tiled;               /* conv2d: forward in register tiles (no padding, column stride 1, >= 8 columns) */
    int conv_rows_vec;            /* conv2d: column stride 1: weight gradient and plain taps 8 columns per vector */

    /* Cost per sample, for `dngen summary` and the benchmark: multiply-adds
     * count as 2 FLOP; the backward pass counts both gradients. */
    size_t params;                /* trained parameters (PyTorch's count) */
    double flops_fwd, flops_bwd;

    /* Parameters (floats into the parameter buffer, spec.h's layout). */
    size_t w_off, b_off;          /* dense */
    size_t g_off, beta_off;       /* batchnorm: gamma, beta (trained) */
    size_t rm_off, rv_off;        /* batchnorm: running statistics (state) */
    char z[DN_EXPR_MAX];          /* batchnorm: its input z, the dense product */
    int bn_features;              /* batchnorm: features normalized apart: units, or an image's channels */
    int bn_plane;                 /* batchnorm: values of a feature per sample: 1, or an image's h * w */
    int bn_width;                 /* batchnorm: bn_features rounded up to 8: gamma, beta, running statistics
                                     and each row of stats are that long */
    char stats[DN_EXPR_MAX];      /* batchnorm: its statistics [5][bn_width] */
    char red[DN_EXPR_MAX];        /* batchnorm: its sums [2][bn_width] in double (a double *) */
    char bn_eps_double[40];       /* batchnorm: eps as PyTorch's CPU kernel adds it in training */
    char bn_eps_float[40];        /* ... and in eval (float) */
    char bn_momentum[40];         /* batchnorm: momentum literal */
    char bn_momentum_text[32], bn_eps_text[32]; /* ... both as rates for comments */
} dn_op;

/* A field of the work space struct <model>_buffers, carved per batch. */
typedef struct {
    char name[DN_NAME_MAX + 16];  /* e.g. "fc1_a" */
    int per_row;                  /* 1: floats per row of the batch; 0: floats in all */
    size_t floats;
    char comment[160];            /* what it holds, for the struct's comment */
} dn_plan_buf;

/* One tensor of the parameter buffer, as the generated tensor table lists it. */
typedef struct {
    dn_tensor_info info;          /* info.name points at name */
    char name[DN_NAME_MAX + 24];
} dn_plan_tensor;

#define DN_MAX_OPS (2 * DN_MAX_LAYERS + 1)
#define DN_MAX_BUFS (8 * DN_MAX_LAYERS + 8) /* a layer has at most 8: a, mask, h, d, pre, z, stats, red */
#define DN_MAX_TENSORS (6 * DN_MAX_LAYERS)

/* Round n up to a multiple of m. */
static inline int dn_round_up(int n, int m) { return (n + m - 1) / m * m; }

typedef struct {
    const dn_spec *spec;
    const char *name;             /* the model name: prefixes every symbol */
    int n_ops;
    dn_op ops[DN_MAX_OPS];        /* in forward order */
    const dn_op *last;            /* the op whose output the loss reads */
    int adam;                     /* the optimizer is Adam or AdamW: <model>_adam_apply is emitted */
    int fused_adam;               /* ... and no clipping: the kernels' variants with the update fused in,
                                     and <model>_train_step_adam, are emitted (the runtime's only use) */
    int fused_head;               /* the training steps run last's forward, loss and input gradient as
                                     one kernel, <model>_head (last->head) */
    int randomized;               /* any op has dropout or noise (MC dropout is possible) */
    int smoothing;                /* cross_entropy with label smoothing e over K classes: */
    char smooth_keep[40];         /* ... 1 - e and */
    char smooth_each[40];         /* ... e / K (float literals) */
    size_t wt_floats;             /* W^T scratch of the input-gradient kernels (0: none) */
    size_t head_wt_floats;        /* W^T the fused head keeps on a thread's stack */
    int n_bufs;
    dn_plan_buf bufs[DN_MAX_BUFS];
    int n_tensors;
    dn_plan_tensor tensors[DN_MAX_TENSORS];
    size_t workspace_floats_per_row, workspace_floats_fixed; /* the work space: per batch row, and once */
} dn_plan;

/* The tensors of layer L in state_dict order: dense "<L>.weight" [units,
 * in] (in panels) and "<L>.bias", or conv2d "<L>.weight" [F, C, KH, KW] and
 * "<L>.bias" in PyTorch's layout; then with batchnorm "<L>_bn.weight",
 * "<L>_bn.bias", "<L>_bn.running_mean", "<L>_bn.running_var" [units or F]
 * (the last two state); none for pools and flatten. What the generated tensor table says
 * and what dn_tensor_index() reads. Returns the count (0 to 6). */
#define DN_LAYER_TENSORS 6
int dn_layer_tensors(const dn_layer *L, dn_plan_tensor t[DN_LAYER_TENSORS]);

/* Resolves the plan of a valid spec into *p, which keeps a pointer to s.
 * Never fails: every user error was reported by validation. */
void dn_plan_build(const dn_spec *s, dn_plan *p);

#endif
