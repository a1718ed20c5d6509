/* emit.h - turns a validated dn_spec into the C source of a trainer.
 *
 * emit.c        drives: template expansion, banner, runtime, model-level code
 *               (buffers, init, train step, eval, the dn_model descriptor);
 * emit_layer.c  writes the per-layer kernels (forward, weight and input
 *               gradients) with every size a literal constant;
 * emit_bn.c     the kernels of batch norm layers;
 * emit_buf.c    the output buffer and the escaping of text from the spec.
 *
 * Emitters trust the dn_spec completely (see spec.h).
 */
#ifndef DNGEN_EMIT_H
#define DNGEN_EMIT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "spec.h"

/* ---- output buffer --------------------------------------------------------- */

/* Growable text buffer. On allocation failure `oom` is set and further writes
 * are dropped; check it once at the end. */
typedef struct {
    char *data;
    size_t len, cap;
    int indent; /* levels of 4 spaces applied by dn_buf_line */
    int oom;
} dn_buf;

void dn_buf_free(dn_buf *b);
void dn_buf_append(dn_buf *b, const char *s, size_t n);
void dn_buf_printf(dn_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* One line: indentation, the formatted text, newline. */
void dn_buf_line(dn_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* An empty line. */
void dn_buf_blank(dn_buf *b);

/* Ends a block: one indentation level less, then a line "}". */
void dn_buf_close(dn_buf *b);

/* Appends `s` so that it is inert inside a C block comment: no comment
 * terminator, no control characters, no trigraph or line splice. Newlines
 * become "\n" + `newline_prefix`. */
void dn_buf_comment_text(dn_buf *b, const char *s, const char *newline_prefix);

/* Appends `s` as the contents of a C string literal (without the quotes):
 * printable ASCII except backslash, quote and '?' as is, the rest as octal escapes. */
void dn_buf_c_string(dn_buf *b, const char *s);

/* ---- emitters ---------------------------------------------------------------- */

typedef enum { DN_TARGET_NATIVE, DN_TARGET_X86_64_V3, DN_TARGET_GENERIC } dn_target;

typedef struct {
    int standalone;   /* paste the runtime into the output */
    int inference;    /* an inference-only program (see dn_emit_predictor) */
    dn_target target; /* the -march the banner's build command uses */
} dn_emit_opts;

/* Writes the complete trainer source for `s` into `out` (appending).
 * Returns 0, or -1 when out of memory or an embedded file is missing
 * (both internal failures). */
int dn_emit_trainer(const dn_spec *s, const dn_emit_opts *o, dn_buf *out);

/* Writes an inference-only program for `s` with the trained parameters
 * `params` (s->n_params floats, spec layout; file hash `weights_hash`) as const
 * data: eval mode, dropout kept only for MC dropout, no backward pass, no
 * optimizer; always standalone. Returns 0, or -1 as dn_emit_trainer. */
int dn_emit_predictor(const dn_spec *s, const float *params, uint64_t weights_hash, const dn_emit_opts *o,
                      dn_buf *out);

/* True when layer L's output is randomized in training (dropout or noise),
 * so it has an output buffer h beside its activation a. */
int dn_layer_stochastic(const dn_layer *L);

/* Per-layer kernels of layer k (emit_layer.c); forward only with `forward_only`.
 * Without the last layer's input gradient when the head is fused. */
void dn_emit_layer_kernels(dn_buf *b, const dn_spec *s, int k, int forward_only);

/* True when the training steps run the last layer's forward, the loss and
 * the last layer's input gradient as one kernel, <model>_head (emit_layer.c):
 * a last layer after another one, without batch norm, dropout or noise,
 * whose units fit one forward tile and whose W^T fits a thread's stack. */
int dn_fused_head(const dn_spec *s);

/* True when layer k's input gradient is a kernel of its own: k > 0, and
 * not the last layer of a fused head. */
int dn_own_backward_x(const dn_spec *s, int k);

/* The fused head kernel (for a spec where dn_fused_head holds). */
void dn_emit_head(dn_buf *b, const dn_spec *s);

/* The loss of one row r (emit.c): from zr (the last layer's row), rowloss[r]
 * and hits[r] when y != NULL, the output into p when p != NULL, and the
 * gradient into row r of d (row stride: the last layer's) when d != NULL.
 * With `train`: y and d are set and there is no p, so no tests. Needs
 * inv_n = 1/n in scope. */
void dn_emit_loss_row(dn_buf *b, const dn_spec *s, int train);

/* Declares float mk[rows][width] and, in training (h != NULL), fills it
 * with layer k's dropout scales for rows [r0, r0 + nr) and units [u0, u0 +
 * width) (u0 a C expression) by one dn_dropout_block. */
void dn_emit_dropout_block(dn_buf *b, const dn_spec *s, int k, int rows, int width, const char *u0);

/* The batch norm kernels of layer k (emit_bn.c, for a batchnorm layer):
 * batch and running statistics, the normalization with activation, noise
 * and dropout (through the layer's finish function), and unless
 * `forward_only` the backward pass through batch norm. */
void dn_emit_bn_kernels(dn_buf *b, const dn_spec *s, int k, int forward_only);

/* Name of the C expression for the activation's derivative in terms of the
 * activation's output `a` (emit_layer.c); e.g. "(a > 0.0f ? 1.0f : 0.0f)". */
const char *dn_act_derivative(dn_act act);

/* Dropout constants exactly as the runtime defines them: units whose random
 * word is below the threshold are dropped; survivors are scaled by
 * 1/(1-p) computed in float, as PyTorch does. */
uint32_t dn_dropout_threshold_of(double p);
float dn_dropout_scale(double p);

/* A C float literal that reads back as exactly x ("2.0f", "1.42857146f"). */
void dn_float_literal(char *dst, size_t n, float x);

/* Human text for a dropout rate, shortest form that round-trips ("0.5"). */
void dn_format_rate(char *dst, size_t n, double p);

#endif
