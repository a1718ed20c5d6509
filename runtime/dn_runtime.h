/* dn_runtime.h - the small runtime that dngen-generated trainers link.
 *
 * Everything here is independent of the network spec: the counter-based PRNG,
 * IDX dataset loading, Adam, safetensors checkpoint I/O, atomic file writes,
 * whole-file and CSV reading (which dngen's own commands share), and the
 * trainer driver (CLI, epoch loop, metrics). Generated code describes
 * its network with a dn_model and calls dn_main().
 *
 * Standalone output (`dngen --standalone`) pastes this header and every
 * runtime .c file into the generated file, with their `#include "dn_runtime.h"`
 * lines removed. Hence every identifier a runtime file defines at file scope,
 * static or not (functions, types, macros), starts with dn_/DN_ plus a
 * per-file prefix (dn_idx_, dn_sft_, ...): no two files define the same name,
 * and none can meet a generated symbol, which all start with the model name
 * (the validator reserves dn/dn_* names). Every runtime .c must compile as
 * part of one translation unit.
 *
 * Error convention: functions that can fail return 0 on success and -1 on
 * failure, after writing one line (no trailing newline) into `err`, naming the
 * file and what is wrong and where, e.g.
 *   "data/train-images-idx3-ubyte.gz: file is 1000 bytes, header says 47040016"
 */
#ifndef DN_RUNTIME_H
#define DN_RUNTIME_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DN_ERR_MAX 512 /* size of the err buffers passed around */

/* Header-defined helpers: `static inline`, marked unused so that a file that
 * includes (or, standalone, pastes) this header and skips some of them
 * compiles warning-free under clang too. */
#if defined(__GNUC__)
#define DN_INLINE static inline __attribute__((unused))
#else
#define DN_INLINE static inline
#endif

/* ---- Philox4x32-10 counter-based PRNG -------------------------------------
 * Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC'11).
 * dn_philox4x32_10 is the exact Random123 function (checked against its
 * known-answer vectors). */
typedef struct {
    uint32_t v[4];
} dn_u32x4;

DN_INLINE uint32_t dn_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

DN_INLINE dn_u32x4 dn_philox4x32_10(dn_u32x4 c, uint32_t k0, uint32_t k1) {
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = dn_mulhilo32(0xD2511F53u, c.v[0], &hi0);
        uint32_t lo1 = dn_mulhilo32(0xCD9E8D57u, c.v[2], &hi1);
        dn_u32x4 n = {{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
        c = n;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return c;
}

/* Random streams. Every random number dngen uses is word (i % 4) of
 *   philox4x32_10(ctr = {i / 4, a, b, (domain << 24) | (c & 0xffffff)},
 *                 key = {seed & 0xffffffff, seed >> 32})
 * so it is a pure function of (seed, domain, a, b, c, i): the same whatever
 * the thread count or schedule. */
enum {
    DN_RNG_DROPOUT = 1, /* a = row in batch, b = optimizer step, c = slot (0 input, 1+k layer k), i = unit */
    DN_RNG_INIT = 2,    /* a = tensor index, b = 0, c = 0, i = element */
    DN_RNG_SHUFFLE = 3, /* a = epoch (0-based), b = 0, c = 0, i = position */
    DN_RNG_SPLIT = 4,   /* validation split: a = 0, b = 0, c = 0, i = position */
    DN_RNG_NOISE = 5,   /* gaussian noise: a = row, b = step, c = slot, i = 2*unit and 2*unit+1
                           (Box-Muller: sqrt(-2 ln((w0+1)/2^32)) cos(2 pi w1/2^32)) */
    DN_RNG_MC = 6,      /* MC-dropout at inference: a = row, b = pass, c = slot, i = unit */
    DN_RNG_TEST = 7     /* synthetic data and gradient checks */
};

DN_INLINE uint32_t dn_rand_u32(uint64_t seed, uint32_t domain, uint32_t a, uint32_t b,
                                   uint32_t c, uint32_t i) {
    dn_u32x4 ctr = {{i >> 2, a, b, (domain << 24) | (c & 0xffffffu)}};
    dn_u32x4 r = dn_philox4x32_10(ctr, (uint32_t)seed, (uint32_t)(seed >> 32));
    return r.v[i & 3];
}

/* Dropout: unit is dropped iff its random word < dn_dropout_threshold(p),
 * i.e. with probability floor(p * 2^32) / 2^32. */
DN_INLINE uint32_t dn_dropout_threshold(double p) {
    return (uint32_t)(p * 4294967296.0);
}

/* Uniform in [0, 1) from a random word. */
DN_INLINE double dn_u32_to_unit(uint32_t w) { return w * (1.0 / 4294967296.0); }

/* Fisher-Yates shuffle of perm[0..n) (filled with 0..n-1 first) for `epoch`:
 * for i = n-1 .. 1: j = (rand(i) * (i+1)) >> 32; swap(perm[i], perm[j]). */
void dn_shuffle(uint32_t *perm, uint32_t n, uint64_t seed, uint32_t epoch);

/* ---- IDX datasets (MNIST format) ------------------------------------------ */

typedef struct {
    int ndim;              /* 1..4 */
    uint32_t dims[4];
    size_t count;          /* product of dims */
    uint8_t *data;         /* count unsigned bytes (only type 0x08 is accepted) */
} dn_idx;

/* Loads `path`; if it does not exist, tries `path.gz`. Gzip is detected by
 * content (magic 1f 8b), not by name. Checks magic, type, that the product of
 * the dimensions cannot overflow, and that the payload length equals the
 * header's product exactly. Without zlib (DN_NO_ZLIB) a gzip file is an error. */
int dn_idx_load(const char *path, dn_idx *out, char *err);
void dn_idx_free(dn_idx *idx);

typedef struct dn_data_src dn_data_src;

/* The examples the trainer reads: IDX images and labels, or (table data:
 * images NULL) rows of a CSV or NPY table, scaled when gathered. */
typedef struct {
    uint32_t n;         /* samples */
    uint32_t features;  /* rows * cols of one image; table data: values per row */
    uint8_t *images;    /* [n, features] */
    uint8_t *labels;    /* [n] */
    /* table data (dn_dataset.c): sample i is row rows[i] of the table */
    const uint32_t *rows;
    const float *x;       /* [table rows, features] raw values */
    const int32_t *y;     /* [table rows] class labels, or NULL */
    const float *t;       /* [table rows, targets] real-valued targets, or NULL */
    uint32_t targets;
    const float *shift, *scale; /* [features]: a value v becomes (v - shift[k]) / scale[k] */
    dn_data_src *src;     /* owns all of the above */
} dn_dataset;

/* Loads DIR/PREFIX-images-idx3-ubyte[.gz] and DIR/PREFIX-labels-idx1-ubyte[.gz]
 * (PREFIX "train" or "t10k"); checks that counts agree, that labels are
 * < n_classes and features == expected_features (0 = any). */
int dn_dataset_load(const char *dir, const char *prefix, uint32_t expected_features,
                    int n_classes, dn_dataset *ds, char *err);
void dn_dataset_free(dn_dataset *ds);

/* Writes normalized rows: x[r*features + k] = (img[idx[r]][k]/255 - mean)/std;
 * for table data (images NULL) (v - shift[k]) / scale[k] instead, mean and
 * std unused. */
void dn_dataset_gather(const dn_dataset *ds, const uint32_t *idx, int n, float mean, float std,
                       float *x, int32_t *y);

/* Table data (dn_dataset.c): rows idx[0..n) scaled into x [n, features],
 * their class labels into y (may be NULL), or their targets into t
 * [n, targets]. dn_dataset_gather calls dn_data_gather for table data. */
void dn_data_gather(const dn_dataset *ds, const uint32_t *idx, int n, float *x, int32_t *y);
void dn_data_gather_targets(const dn_dataset *ds, const uint32_t *idx, int n, float *t);

/* Drops one dataset's hold on its table data (dn_dataset_free does it). */
void dn_data_src_release(dn_data_src *s);

/* What a model trained on table data keeps besides its weights: the
 * feature scaling (checkpoint tensors data.shift and data.scale,
 * [features]) and the class names (checkpoint metadata class_names: each
 * name percent-encoded, joined by commas). */
typedef struct {
    uint32_t features;          /* 0: no table data */
    const float *shift, *scale;
    int n_classes;              /* names, or 0 */
    char *const *class_names;
} dn_data_info;

/* The table data the trainer of this process loaded (dn_data_load with a
 * train set), for checkpoints; NULL when none is loaded. */
const dn_data_info *dn_data_info_current(void);

/* The names as one malloc'd string: each name percent-encoded (bytes
 * outside printable ASCII, '%' and ',' as %XX), joined by ','. NULL when
 * out of memory. */
char *dn_data_names_encode(char *const *names, int n);

/* Splits and decodes such a string into *names (malloc'd array of n
 * malloc'd strings). Returns 0, or -1 when malformed (a bad escape, %00) or
 * out of memory. An empty string is one empty name. */
int dn_data_names_decode(const char *s, char ***names, int *n);

/* ---- Adam ----------------------------------------------------------------- */

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    int decoupled; /* 0: torch.optim.Adam (L2 added to the gradient); 1: AdamW */
} dn_adam;

/* The per-step coefficients of Adam in float32, as PyTorch applies them:
 * per element (fma = one rounding; L2 only for Adam with weight decay,
 * shrink != 1 only for AdamW):
 *   p' = p * shrink;  g' = l2 ? fma(p', wd, g) : g
 *   m = fma(g', omb1, m * b1);  v = fma(omb2 * g', g', v * b2)
 *   p = p' + (neg_step * m) / (sqrt(v) / bc2_sqrt + eps)
 * Generated trainers apply this inside their weight-gradient kernels. */
typedef struct {
    float b1, omb1, b2, omb2, eps, neg_step, bc2_sqrt, wd, shrink;
    int l2;
} dn_adam_coef;

/* Coefficients for 1-based step t. */
void dn_adam_coefs(const dn_adam *cfg, int64_t t, dn_adam_coef *c);

/* The same with the learning rate lr in place of cfg->lr: a schedule's,
 * the exact double PyTorch's scheduler would hold. */
void dn_adam_coefs_at(const dn_adam *cfg, double lr, int64_t t, dn_adam_coef *c);

/* One Adam step with coefficients c over n parameters (dn_adam_step's loop). */
void dn_adam_apply(const dn_adam_coef *c, float *p, const float *g, float *m, float *v, size_t n);

/* The double nearest the shortest decimal that rounds to f: the value the
 * user most likely typed (0.9f -> 0.9), which PyTorch computes with. */
double dn_adam_as_typed(float f);

/* One step of Adam over n parameters, as torch.optim.Adam / AdamW do it;
 * `t` is the 1-based step number after this update. Elementwise, so any
 * OpenMP split gives identical results. */
void dn_adam_step(const dn_adam *cfg, float *p, const float *g, float *m, float *v, size_t n,
                  int64_t t);

/* ---- SGD, RMSprop, clipping, learning-rate schedules (dn_optim.c) ----------
 * As torch.optim.SGD / RMSprop, torch.nn.utils.clip_grad_norm_ and
 * torch.optim.lr_scheduler 1.13 (foreach=False), in float32 with PyTorch's
 * fused multiply-adds (see dn_adam.c). Scalars such as lr are doubles, as
 * PyTorch's Python floats are. */

enum { DN_OPTIM_ADAM = 0, DN_OPTIM_SGD = 1, DN_OPTIM_RMSPROP = 2 }; /* AdamW: adam + decoupled_wd */

typedef struct {
    int type;                              /* DN_OPTIM_SGD or DN_OPTIM_RMSPROP */
    float momentum, dampening, alpha, eps, weight_decay;
    int nesterov, centered;
} dn_optim;

/* One SGD step at learning rate lr over n parameters; buf is the momentum
 * buffer (unused when momentum is 0), t the 1-based step (t == 1: the buffer
 * starts as the gradient, as PyTorch's does). Per element:
 *   d = wd ? fma(p, wd, g) : g
 *   buf = t == 1 ? d : fma(d, 1 - dampening, buf * momentum)
 *   d = nesterov ? fma(buf, momentum, d) : buf          (with momentum)
 *   p = fma(d, -lr, p) */
void dn_sgd_step(const dn_optim *o, double lr, float *p, const float *g, float *buf, size_t n, int64_t t);

/* One RMSprop step: square_avg sq, momentum buffer buf (momentum > 0),
 * grad_avg ga (centered), all starting at zero. Per element:
 *   g = wd ? fma(p, wd, g) : g;  sq = fma((1 - alpha) * g, g, sq * alpha)
 *   centered: ga = fma(g, 1 - alpha, ga * alpha); avg = sqrt(fma(-ga, ga, sq)) + eps
 *   else:     avg = sqrt(sq) + eps
 *   momentum: buf = buf * momentum + g / avg;  p = fma(buf, -lr, p)
 *   else:     p = p + (-lr * g) / avg */
void dn_rmsprop_step(const dn_optim *o, double lr, float *p, const float *g, float *sq, float *buf,
                     float *ga, size_t n);

/* The 2-norm of g[0..n), the squares summed in double in 8 interleaved
 * lanes (element i in lane i % 8) added pairwise: one order fixed by n, the
 * same at any thread count. */
double dn_grad_norm(const float *g, size_t n);

/* clip_grad_norm_: g *= min(1, max_norm / (norm + 1e-6)) in float32, where
 * norm is dn_grad_norm(g, n). */
void dn_grad_clip(float *g, size_t n, double max_norm, double norm);

/* Learning-rate schedules. */
enum { DN_LRS_NONE = 0, DN_LRS_STEP, DN_LRS_EXPONENTIAL, DN_LRS_COSINE, DN_LRS_PLATEAU };

typedef struct {
    int type;              /* DN_LRS_* */
    int step_size;         /* step: epochs between decays */
    float gamma;           /* step, exponential: the decay factor */
    int64_t warmup_steps;  /* cosine: optimizer steps of linear warmup */
    float min_lr;          /* cosine: the final lr; plateau: the least lr */
    float factor, threshold; /* plateau: lr *= factor; relative improvement needed */
    int patience, cooldown;  /* plateau: bad epochs tolerated; epochs to wait after a cut */
    int metric_acc;          /* plateau: 1 = validation accuracy (max), 0 = validation loss (min) */
} dn_lr_sched;

/* Where a schedule stands after some epochs (what a checkpoint keeps). */
typedef struct {
    double lr;             /* per-epoch schedules: the lr of the coming epoch */
    int64_t epochs;        /* epochs the schedule has seen end */
    double best;           /* plateau: best metric so far (when has_best) */
    int has_best;
    int64_t bad_epochs, cooldown_left;
} dn_lr_state;

/* The state before the first epoch at base learning rate base. */
void dn_lrs_start(const dn_lr_sched *s, double base, dn_lr_state *st);

/* The lr of 0-based optimizer step `step` of a run of `total` steps:
 * st->lr, except for cosine:
 *   step < W:  base * (step + 1) / W
 *   else:      min_lr + (base - min_lr) * (1 + cos(pi * min(1, (step - W) / (total - W)))) / 2
 *              (total - W counted as at least 1) */
double dn_lrs_at(const dn_lr_sched *s, const dn_lr_state *st, double base, int64_t step, int64_t total);

/* The end of an epoch: StepLR, ExponentialLR or ReduceLROnPlateau (on
 * `metric`) take their step and set st->lr for the next epoch. */
void dn_lrs_epoch_end(const dn_lr_sched *s, dn_lr_state *st, double metric);

/* ---- safetensors ---------------------------------------------------------- */

/* A tensor to write: F32, little-endian, C order. */
typedef struct {
    const char *name;
    int ndim;            /* 0..4 */
    int64_t shape[4];
    const float *data;
} dn_st_tensor;

typedef struct {
    const char *key;
    const char *value;
} dn_st_meta;

/* Writes a safetensors file atomically (temp file beside it, fsync, rename,
 * fsync of the directory). On failure the previous file is untouched. */
int dn_st_write(const char *path, const dn_st_tensor *t, int n, const dn_st_meta *meta,
                int n_meta, char *err);

typedef struct dn_st_file dn_st_file;

/* Reads and validates a whole safetensors file: header length sane and within
 * the file, JSON well-formed, dtypes known, shapes consistent with offsets,
 * offsets inside the data area, no overlaps. */
int dn_st_open(const char *path, dn_st_file **out, char *err);
void dn_st_close(dn_st_file *f);

typedef struct {
    const char *name;
    const char *dtype;     /* "F32", "F64", "I64", ... as in the file */
    int ndim;
    int64_t shape[8];
    const void *data;      /* raw little-endian bytes inside the file image */
    size_t nbytes;
} dn_st_info;

int dn_st_count(const dn_st_file *f);
const dn_st_info *dn_st_get(const dn_st_file *f, int i);
const dn_st_info *dn_st_find(const dn_st_file *f, const char *name); /* NULL if absent */
const char *dn_st_meta_get(const dn_st_file *f, const char *key);    /* NULL if absent */

/* ---- errors ------------------------------------------------------------------ */

/* Formats one error line into err (DN_ERR_MAX bytes; err may be NULL). Any
 * control character (from a file name or a tensor name, say) becomes '?', so
 * the message is always exactly one printable line. */
void dn_errf(char *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- command-line numbers ------------------------------------------------------ */

/* Parse all of s as a decimal integer (optional sign for i64, digits only
 * for u64). Return 0, or -1 for anything else (empty, junk, overflow). */
int dn_parse_i64(const char *s, int64_t *v);
int dn_parse_u64(const char *s, uint64_t *v);

/* ---- atomic output files -------------------------------------------------- */

/* Writes `len` bytes to `path` atomically (temp file in the same directory,
 * fsync, rename, directory fsync). On any failure the temp file is removed,
 * the old file (if any) is unchanged, and -1 is returned with err set. A
 * writer killed mid-write leaves its temp file behind; the next successful
 * write of the same path removes such files of dead processes. */
int dn_write_file_atomic(const char *path, const void *data, size_t len, char *err);

/* ---- whole files (dn_file.c) ----------------------------------------------- */

/* How a whole-file read failed (what dn_file_read returns). */
enum {
    DN_FILE_OPEN = -1,  /* the file could not be opened */
    DN_FILE_READ = -2,  /* reading it failed */
    DN_FILE_BIG = -3,   /* it holds more bytes than the caller accepts */
    DN_FILE_NOMEM = -4  /* out of memory */
};

/* Reads stream f to its end into a malloc'd buffer: *data gets the *len
 * bytes read, then a NUL byte (not counted). More than max bytes (0: no
 * limit) is DN_FILE_BIG. Returns 0, or a DN_FILE_* code with *data NULL and
 * `why` (DN_ERR_MAX bytes, may be NULL) set to the reason alone, without the
 * file's name, for the caller to place: strerror's text for DN_FILE_OPEN and
 * DN_FILE_READ ("Is a directory"), "file is larger than N bytes", "out of
 * memory". */
int dn_file_read_stream(FILE *f, size_t max, char **data, size_t *len, char *why);

/* Opens path and reads it as dn_file_read_stream does. */
int dn_file_read(const char *path, size_t max, char **data, size_t *len, char *why);

/* ---- CSV text (dn_csv.c) ---------------------------------------------------
 * The dialect of metrics files and predictor input: lines end in LF or CRLF
 * (the last one may lack it), a leading UTF-8 byte order mark is skipped,
 * fields are separated by commas (no quoting), spaces and tabs around a
 * field are not part of it, and a line of nothing but blanks is blank. NUL
 * bytes are ordinary characters. Lines and byte columns count from 1. */

typedef struct {
    const char *name;   /* the input's name in messages */
    const char *data;   /* the text, len bytes */
    size_t len;
    size_t pos;         /* where the next line starts */
    size_t line;        /* number of the current line (0 before the first) */
    const char *text;   /* the current line, n bytes without its line end */
    size_t n;
    size_t field;       /* where its next field starts; > n when none is left */
} dn_csv;

typedef struct {
    const char *p;      /* the field without the blanks around it, n bytes */
    size_t n;
    size_t col;         /* 1-based column of p in its line */
} dn_csv_field;

/* Starts reading data[0..len) ("(input)" when name is NULL). */
void dn_csv_init(dn_csv *c, const char *name, const char *data, size_t len);

/* Makes the next line current (its fields from the first). Returns 1, or 0
 * at the end of the text. */
int dn_csv_next_line(dn_csv *c);

/* Like dn_csv_next_line, skipping blank lines. */
int dn_csv_next_record(dn_csv *c);

/* The current line holds only spaces, tabs and carriage returns. */
int dn_csv_blank(const dn_csv *c);

/* Fields on the current line: its commas plus one. */
size_t dn_csv_count_fields(const dn_csv *c);

/* Stores the current line's next field in *f and returns 1; returns 0 when
 * every field was taken. An empty line has one empty field. */
int dn_csv_next_field(dn_csv *c, dn_csv_field *f);

/* Makes the current line's first field the next one again. */
void dn_csv_rewind(dn_csv *c);

/* Length of the decimal number that p[0..n) starts with:
 * [+-] (d+ [. d*] | . d+) [(e|E) [+-] d+]; 0 when it does not start with one. */
size_t dn_csv_scan_number(const char *p, size_t n);

#define DN_CSV_NUM_MAX 512 /* a number token of this many bytes is DN_CSV_NUM_LONG */

enum {
    DN_CSV_NUM_OK,
    DN_CSV_NUM_SYNTAX,     /* not a decimal number (hex, "1e", "abc", empty) */
    DN_CSV_NUM_NONFINITE,  /* nan, inf or infinity, in any case, signed or not */
    DN_CSV_NUM_RANGE,      /* a decimal number too large for a double */
    DN_CSV_NUM_LONG        /* DN_CSV_NUM_MAX bytes or more */
};

/* Reads all of p[0..n) as a finite double into *v. Returns a DN_CSV_NUM_*. */
int dn_csv_number(const char *p, size_t n, double *v);

#define DN_CSV_QUOTE_MAX 32 /* bytes of a field that messages quote */

/* Copies p[0..n) into buf (DN_CSV_QUOTE_MAX + 4 bytes) for a message: at
 * most DN_CSV_QUOTE_MAX bytes, control bytes and quotes as '?', "..." after
 * a cut. Returns buf. */
const char *dn_csv_quote(const char *p, size_t n, char *buf);

/* Writes "NAME:LINE:COL: MESSAGE" (col 0: "NAME:LINE: MESSAGE") about the
 * current line into err[0..errlen), truncating, control bytes as '?'. */
void dn_csv_errf(const dn_csv *c, size_t col, char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* ---- tables: your own data from CSV and NPY files -------------------------
 * dn_data_csv.c reads a dataset from CSV text, dn_npy.c from NumPy .npy
 * arrays; both give a dn_table of raw (not yet normalized) float features
 * and either integer class labels or float targets. Every error is one line
 * naming the file and where: "train.csv:12:7: ..." (line and byte column)
 * for CSV, "x.npy: byte 10: ..." for NPY. On failure the table is empty. */

enum {
    DN_TARGET_CLASS = 0, /* one target column of class labels (y) */
    DN_TARGET_VALUE = 1  /* one or more real-valued target columns (t) */
};

#define DN_TABLE_MAX_CLASSES 1024 /* distinct class labels one table may hold */

typedef struct {
    uint32_t n;           /* rows */
    uint32_t features;    /* feature values per row */
    uint32_t targets;     /* DN_TARGET_VALUE: targets per row; 0 for class labels */
    const float *x;       /* [n, features], raw values as read */
    int32_t *y;           /* [n] class labels (DN_TARGET_CLASS), else NULL */
    float *t;             /* [n, targets] (DN_TARGET_VALUE), else NULL */
    int n_classes;        /* 1 + the largest label (DN_TARGET_CLASS) */
    char **class_names;   /* [n_classes] when the labels were names, else NULL */
    char **feature_names; /* [features] from a CSV header, else NULL */
    float *x_own;         /* x when malloc'd (else NULL) */
    void *map;            /* x inside an mmap'd .npy file (else NULL), map_len bytes */
    size_t map_len;
} dn_table;

/* Frees everything a table holds and zeroes it (an empty table is fine). */
void dn_table_free(dn_table *t);

/* How to read a CSV dataset. Zero-initialized means: comma, no header, no
 * skipped lines, '#' comments, the last column is the class label. */
typedef struct {
    char delimiter;              /* 0: ',' */
    int header;                  /* the first line (after `skip`) names the columns */
    uint32_t skip;               /* lines dropped at the start, before the header */
    char comment;                /* lines starting with it are skipped; 0: '#' */
    const char *const *target;   /* n_target column selectors; 0: the last column */
    int n_target;
    const char *const *ignore;   /* columns that are neither features nor targets */
    int n_ignore;
    int kind;                    /* DN_TARGET_CLASS or DN_TARGET_VALUE */
    size_t max_bytes;            /* larger files (decompressed) are an error; 0: 2^34 */
} dn_csv_opts;

/* A column selector is a name from the header, or a 0-based index written
 * as decimal digits (negative: from the end, -1 being the last column).
 *
 * Reads CSV text data[0..len) named `name` into *t. The dialect: LF or CRLF
 * lines, an optional UTF-8 byte order mark, fields separated by
 * o->delimiter, blanks around a field ignored, fields in double quotes may
 * hold the delimiter and "" for a quote (but no line break), blank lines and
 * comment lines skipped. Every row has as many fields as the first; every
 * feature value and value target is a finite decimal number (missing, NaN,
 * Inf and junk are errors at their line:column). Class labels: when every
 * label is a non-negative integer it is the class; otherwise the labels are
 * names, numbered in sorted (byte) order, kept in class_names. Returns 0 or
 * -1 with err (DN_ERR_MAX bytes) set. */
int dn_csv_table_parse(const char *name, const char *data, size_t len, const dn_csv_opts *o,
                       dn_table *t, char *err);

/* Reads file path (gzip-compressed when it starts with the gzip magic,
 * whatever its name) as dn_csv_table_parse does. */
int dn_csv_table_load(const char *path, const dn_csv_opts *o, dn_table *t, char *err);

/* A parsed .npy array (versions 1.0, 2.0 and 3.0; little-endian or
 * one-byte dtypes, C order). */
typedef struct {
    char kind;            /* 'f' float, 'i' signed int, 'u' unsigned int, 'b' bool */
    int size;             /* bytes per element: 1, 2, 4 or 8 (f: 4 or 8) */
    int ndim;             /* 0..8 */
    uint64_t shape[8];
    uint64_t count;       /* product of shape */
    const void *data;     /* count * size bytes inside the buffer given */
    size_t offset;        /* where they start in it */
} dn_npy;

/* Parses the header of a whole .npy image data[0..len) named `name` and
 * checks that it holds exactly the data its header promises. */
int dn_npy_parse(const char *name, const void *data, size_t len, dn_npy *a, char *err);

/* Loads features from x_path ([N, ...]: float32, float64 or uint8; rows are
 * flattened) and targets from y_path ([N] integers for DN_TARGET_CLASS;
 * [N] or [N, k] numbers for DN_TARGET_VALUE). A little-endian float32 file
 * is mapped into memory, not copied. Non-finite values are errors. */
int dn_npy_table_load(const char *x_path, const char *y_path, int kind, dn_table *t, char *err);

/* ---- the model interface: what generated code provides -------------------- */

/* The loss of a model, and what its outputs are: CE, softmax probabilities of
 * n_outputs classes; MSE, raw outputs (one-hot targets of n_outputs
 * classes); BCE, binary cross-entropy of one output, the probability of
 * class 1 of 2 (labels 0 and 1). */
enum { DN_MODEL_LOSS_CE = 0, DN_MODEL_LOSS_MSE = 1, DN_MODEL_LOSS_BCE = 2 };

/* One tensor of the model and where it lives in the flat parameter buffer:
 * a parameter (trained by the optimizer) or, with state != 0, a running
 * statistic of batch norm (updated by training steps, never by the
 * optimizer; checkpointed like the parameters, without optimizer moments).
 * The buffer's layout is the kernels' business; PyTorch's layout is what
 * checkpoints, fixtures and users see, and dn_tensor_index() maps one to the
 * other:
 *   panel == 0: the count elements in PyTorch (row-major) order at offset;
 *   panel == P: a weight [out, in] kept as ceil(out / P) panels of P output
 *               units, each panel input-major: element (o, i) is at
 *               offset + (o / P) * in * P + i * P + o % P.
 * A tensor occupies `stored` floats from offset (count plus padding); the
 * padding holds zeros, and the kernels keep it zero. */
typedef struct {
    const char *name;   /* PyTorch state_dict name: "fc1.weight" */
    int ndim;           /* 2 for weights [out, in], 4 for conv [out, in, kh, kw], 1 for biases */
    int64_t shape[4];   /* dims past ndim are 0 */
    size_t offset;      /* floats into the flat parameter buffer */
    size_t count;       /* elements (product of shape) */
    int fan_in;         /* init: uniform in +-1/sqrt(fan_in); 0: every element = fill */
    int panel;          /* 0 = PyTorch layout, else the panel width (see above) */
    size_t stored;      /* floats occupied in the buffer, padding included */
    float fill;         /* init value when fan_in == 0 (batch norm: 1 or 0) */
    int state;          /* 1: running statistic (not a parameter) */
} dn_tensor_info;

/* Index into the parameter buffer of element e (0 <= e < count, PyTorch
 * row-major order) of tensor t. */
DN_INLINE size_t dn_tensor_index(const dn_tensor_info *t, size_t e) {
    if (t->panel == 0)
        return t->offset + e;
    const size_t in = (size_t)t->shape[1], p = (size_t)t->panel, o = e / in, i = e % in;
    return t->offset + (o / p) * in * p + i * p + o % p;
}

/* Copies tensor t out of the parameter buffer `buf` into dst (count floats,
 * PyTorch layout). */
void dn_tensor_export(const dn_tensor_info *t, const float *buf, float *dst);

/* Stores src (count floats, PyTorch layout) as tensor t into `buf` and zeroes
 * the tensor's padding. */
void dn_tensor_import(const dn_tensor_info *t, float *buf, const float *src);

typedef struct {
    int n;              /* rows in this batch: 1..max_batch given to workspace_size */
    const float *x;     /* [n, n_inputs] normalized inputs */
    const int32_t *y;   /* [n] class labels in [0, classes): dn_model_classes */
    const float *t;     /* [n, n_outputs] real-valued targets (models with regression or multilabel
                           set: dn_model_targets), else NULL */
    uint64_t seed;      /* dropout masks are a pure function of (seed, step, slot, row, unit) */
    uint64_t step;      /* 0-based optimizer step */
    int mc_dropout;     /* eval only: keep dropout on (MC dropout), masks from (seed, step) */
    int row0;           /* index of row 0 in the whole batch (masks are keyed on it): 0, or under MPI
                           the first row of this process's share */
    int n_total;        /* rows of the whole batch, whose mean loss is taken: 0 (or < n) means n */
} dn_batch;

/* Where CSV and NPY data come from (a spec's `data` section). */
enum { DN_DATA_CSV = 1, DN_DATA_NPY = 2 };
enum { DN_SCALE_NONE, DN_SCALE_FIXED, DN_SCALE_STANDARD, DN_SCALE_MINMAX };

typedef struct dn_data_spec {
    int format;               /* DN_DATA_CSV or DN_DATA_NPY */
    const char *train, *train_y;  /* files (npy: features and targets) */
    const char *test, *test_y;    /* NULL: none, or test_split */
    double test_split;        /* > 0: this fraction of the train rows is the test set */
    dn_csv_opts csv;          /* csv layout; its kind says classes or values */
    int scale;                /* DN_SCALE_* */
    float mean, std;          /* DN_SCALE_FIXED */
} dn_data_spec;

typedef struct {
    int batch_size, epochs;
    int max_batch_size;           /* the largest training batch the kernels' sums over chunks
                                     hold (0: no limit) */
    uint64_t seed;
    float lr, beta1, beta2, eps, weight_decay;
    int decoupled_wd;             /* adamw */
    const char *data_dir;
    float norm_mean, norm_std;
    /* Other optimizers (optim.type DN_OPTIM_ADAM = 0: Adam/AdamW above; the
     * other types read lr, eps and weight_decay above and their own fields
     * in optim), gradient clipping and the schedule; zero: off. */
    dn_optim optim;
    float clip_grad_norm;         /* > 0: clip the gradient's 2-norm to this */
    dn_lr_sched schedule;
    const dn_data_spec *data;     /* CSV or NPY data; NULL: IDX files in data_dir */
} dn_defaults;

typedef struct dn_model {
    const char *name;             /* spec name */
    const char *dngen_version;
    const char *spec_hash;        /* 16 lowercase hex digits */
    const char *spec_path;
    int n_inputs, n_outputs;
    size_t n_params;              /* floats in the parameter buffer (padding and state included) */
    size_t n_trainable;           /* its first n_trainable floats are what the optimizer updates;
                                     the state tensors (offsets >= n_trainable) follow */
    int batchnorm;                /* layers with batch norm: training batches need >= 2 rows */
    int n_tensors;
    const dn_tensor_info *tensors;
    int loss;                     /* DN_MODEL_LOSS_CE, _MSE or _BCE */
    int regression;               /* mse against real-valued targets (dn_batch.t), not class labels:
                                     reported as RMSE, MAE and R^2 instead of accuracy */
    int multilabel;               /* binary cross-entropy on each of n_outputs >= 2 sigmoid units
                                     against 0/1 targets (dn_batch.t), not class labels: reported
                                     as loss and exact-match accuracy (every label right) */
    dn_defaults defaults;

    /* Bytes of scratch memory needed for batches of up to max_batch rows.
     * Callers pass a 64-byte-aligned block of at least this size. */
    size_t (*workspace_size)(int max_batch);

    /* PyTorch's default init into params (nn.Linear: uniform from
     * DN_RNG_INIT streams; batch norm: weight 1, bias 0, running mean 0,
     * running variance 1). */
    void (*init)(float *params, uint64_t seed);

    /* Train-mode forward (dropout on, batch norm on batch statistics), loss,
     * backward. Overwrites grads (n_params floats; zero for state tensors)
     * with d(mean loss over the batch)/d(params). Updates the state tensors
     * (batch norm running statistics) in params as PyTorch's train mode
     * does; the parameters themselves are not changed. Returns the SUM over
     * rows of the per-row loss; adds argmax hits to *correct. With batch
     * norm, b->n must be >= 2. */
    double (*train_step)(float *params, float *grads, void *ws, const dn_batch *b, int *correct);

    /* Eval-mode forward (dropout off, unless b->mc_dropout; batch norm on
     * the running statistics). Writes probabilities (softmax output)
     * or raw outputs to out [n, n_outputs] when out != NULL. Returns the sum
     * of per-row losses when b->y (regression: b->t) != NULL (else 0); adds hits to *correct
     * when both are non-NULL. */
    double (*eval)(const float *params, void *ws, const dn_batch *b, float *out, int *correct);

    /* train_step with Adam fused in: the gradient of each weight tile is
     * applied (coefficients c, moments m and v laid out like params) while it
     * is still in registers; no gradient buffer exists. Same results as
     * train_step followed by dn_adam_step, up to FMA rounding. If the loss of
     * any row is not finite, nothing is updated and the (non-finite) loss is
     * returned (batch norm running statistics included). May be NULL: then
     * use train_step and dn_adam_step over the first n_trainable floats. */
    double (*train_step_adam)(float *params, float *m, float *v, const dn_adam_coef *c, void *ws,
                              const dn_batch *b, int *correct);

    /* Adam over n parameters with a complete gradient g, with the fused
     * kernels' arithmetic (so train_step then adam_apply gives
     * train_step_adam's bits), in the kernels' copy for this CPU. Returns n.
     * May be NULL: then dn_adam_apply. */
    size_t (*adam_apply)(const dn_adam_coef *c, float *p, const float *g, float *m, float *v, size_t n);
} dn_model;

/* Parameters of a model: the sum of its parameter tensors' counts (as
 * PyTorch counts them: state tensors excluded). */
size_t dn_model_param_count(const dn_model *m);

/* The classes of its labels: n_outputs, or 2 for binary cross-entropy's
 * one output. */
DN_INLINE int dn_model_classes(const dn_model *m) { return m->loss == DN_MODEL_LOSS_BCE ? 2 : m->n_outputs; }

/* Whether m's batches carry target values (dn_batch.t, dn_data_gather_targets)
 * rather than class labels: regression and multi-label models. */
DN_INLINE int dn_model_targets(const dn_model *m) { return m->regression || m->multilabel; }

/* Elements of all its tensors, state included (what a checkpoint holds). */
size_t dn_model_tensor_count(const dn_model *m);

/* ---- the inference interface: what `dngen --inference` output provides ---- */

typedef struct dn_infer_model {
    const char *name;           /* spec name */
    const char *dngen_version;
    const char *spec_hash;      /* 16 lowercase hex digits */
    const char *weights_hash;   /* FNV-1a 64 of the weights file, 16 hex digits */
    int n_inputs, n_outputs;
    int loss;                   /* DN_MODEL_LOSS_CE: outputs are probabilities; MSE: raw outputs;
                                   BCE: one output, the probability of class 1 */
    int has_dropout;            /* the network has dropout, so MC dropout is possible */
    float norm_mean, norm_std;  /* inputs given as pixels 0..255 become (x/255 - mean)/std */

    /* Bytes of scratch for batches of up to max_batch rows (64-byte aligned block). */
    size_t (*workspace_size)(int max_batch);

    /* Eval-mode forward of n rows of normalized inputs x [n, n_inputs] with
     * the built-in weights; out [n, n_outputs]. With mc != 0 dropout stays on,
     * masks from (seed, pass) exactly as in training at step `pass`. */
    void (*predict)(void *ws, const float *x, int n, float *out, int mc, uint64_t seed, uint64_t pass);

    const float *shift, *scale; /* table data: [n_inputs], input v becomes (v - shift) / scale
                                   instead; NULL: pixels as above */
    int n_class_names;          /* the class names (n_outputs of them), or 0: class numbers */
    const char *const *class_names;
    int multilabel;             /* BCE on n_outputs >= 2 units: each output the probability of
                                   its own label, 0 or 1 */
} dn_infer_model;

/* The inference CLI of generated predict programs. Returns the exit status. */
int dn_predict_main(const dn_infer_model *m, int argc, char **argv);

/* The trainer CLI: `train`, `eval`, `gradcheck`, `--help`, `--version`.
 * Returns the process exit status. */
int dn_main(const dn_model *m, int argc, char **argv);

/* dn_main under MPI (libdnrt_mpi only; `dngen --mpi` trainers call it):
 * MPI_Init, the command with the batch shared among the processes, process
 * 0 alone writing output, MPI_Finalize. */
int dn_main_mpi(const dn_model *m, int argc, char **argv);

/* Set by dn_main_mpi: combines the processes' shares of per-feature sums
 * (batch norm's) in place; NULL in one process (generated code: the
 * prelude's dn_reduce_across). */
extern void (*dn_batch_reduce)(double *v, int len);

#ifdef __cplusplus
}
#endif
#endif
