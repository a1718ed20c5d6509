/* dn_predict_input.c - the predictor's samples: reads a file or standard
 * input, tells its format from the content (IDX, CSV text or raw float32)
 * unless --input-format says it, checks all of it against the model, and
 * later hands batches of it to the network as floats. Second step of the
 * predictor (see dn_predict.h).
 *
 * Whole inputs are read by dn_file_read_stream, IDX files (gzip too) by
 * dn_idx_load, CSV text is split by the runtime's dn_csv tokenizer.
 * Parsers return 0, -1 (err set: one line naming the input and the byte,
 * or line:column, where it goes wrong) or -2 (out of memory).
 */
#include "dn_predict.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dn_pr_input_free(dn_pr_input *in) {
    free(in->values);
    free(in->bytes);
    dn_idx_free(&in->idx);
    memset(in, 0, sizeof *in);
}

/* ---- format detection ------------------------------------------------------- */

/* IDX header bytes 0..3: 00 00 TYPE NDIM with an IDX type code and 1..4 dims. */
static int dn_pr_looks_idx(const unsigned char *b, size_t len) {
    if (len < 4 || b[0] != 0 || b[1] != 0 || b[3] < 1 || b[3] > 4)
        return 0;
    return b[2] == 0x08 || b[2] == 0x09 || (b[2] >= 0x0b && b[2] <= 0x0e);
}

/* The gzip magic 1f 8b. */
static int dn_pr_looks_gzip(const unsigned char *b, size_t len) {
    return len >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

/* Only printable ASCII, tab, CR and LF, after a UTF-8 byte order mark. */
static int dn_pr_looks_text(const unsigned char *b, size_t len) {
    size_t i = len >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf ? 3 : 0;
    for (; i < len; i++)
        if (!((b[i] >= 0x20 && b[i] < 0x7f) || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
            return 0;
    return 1;
}

/* ---- IDX --------------------------------------------------------------------- */

/* Checks that an IDX shape holds samples for the model: [n, rows, cols] with
 * rows*cols = n_inputs, or [n, n_inputs]. */
static int dn_pr_check_idx_shape(const dn_infer_model *m, const char *name, int ndim,
                                 const uint32_t *dims, char *err) {
    uint64_t per = 0;
    if (ndim == 3)
        per = (uint64_t)dims[1] * dims[2];
    else if (ndim == 2)
        per = dims[1];
    if ((ndim == 2 || ndim == 3) && per == (uint64_t)m->n_inputs)
        return 0;
    char shape[80];
    size_t sl = 0;
    for (int i = 0; i < ndim; i++)
        sl += (size_t)snprintf(shape + sl, sizeof shape - sl, "%s%lu", i ? " x " : "",
                               (unsigned long)dims[i]);
    dn_errf(err,
            "%s: IDX dimensions %s (at byte 4) do not hold samples of %d values: expected "
            "[n, rows, cols] with rows*cols = %d, or [n, %d]",
            name, shape, m->n_inputs, m->n_inputs, m->n_inputs);
    return -1;
}

/* Reads the IDX header of b[0..len) with dn_idx_load's checks (type 0x08,
 * 1..4 dimensions): *ndim, dims, and *hdr its size. Returns 0 or -1. */
static int dn_pr_idx_header(const char *name, const unsigned char *b, size_t len, int *ndim,
                            uint32_t *dims, size_t *hdr, char *err) {
    if (len < 4) {
        dn_errf(err, "%s: truncated header: input has %zu bytes, the IDX header needs 4", name, len);
        return -1;
    }
    if (b[0] != 0 || b[1] != 0) {
        dn_errf(err, "%s: bad magic 0x%02x%02x at byte 0 (expected 0x0000, not an IDX file)", name,
                b[0], b[1]);
        return -1;
    }
    if (b[2] != 0x08) {
        dn_errf(err, "%s: unsupported data type 0x%02x at byte 2 (only 0x08, unsigned byte)", name,
                b[2]);
        return -1;
    }
    *ndim = b[3];
    if (*ndim < 1 || *ndim > 4) {
        dn_errf(err, "%s: number of dimensions %d at byte 3 is out of range 1..4", name, *ndim);
        return -1;
    }
    *hdr = 4 + 4 * (size_t)*ndim;
    if (len < *hdr) {
        dn_errf(err, "%s: truncated header: input has %zu bytes, the IDX header needs %zu", name,
                len, *hdr);
        return -1;
    }
    for (int i = 0; i < *ndim; i++) {
        const unsigned char *d = b + 4 + 4 * i;
        dims[i] = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
    }
    return 0;
}

/* Checks that the payload after a header of hdr bytes, in an input of len
 * bytes, holds exactly n samples of the model. Returns 0 or -1. */
static int dn_pr_idx_payload(const dn_infer_model *m, const char *name, uint32_t n, size_t hdr,
                             size_t len, char *err) {
    /* n * n_inputs < 2^32 * 2^31: no overflow in 64 bits. */
    uint64_t want = (uint64_t)n * (uint64_t)m->n_inputs;
    size_t payload = len - hdr;
    if ((uint64_t)payload < want) {
        dn_errf(err,
                "%s: truncated IDX data: the header (%lu samples) needs %" PRIu64
                " bytes from byte %zu, the input ends at byte %zu",
                name, (unsigned long)n, want, hdr, len);
        return -1;
    }
    if ((uint64_t)payload > want) {
        dn_errf(err,
                "%s: %zu bytes of trailing data at byte %" PRIu64 " (the header says %lu "
                "samples, %" PRIu64 " bytes)",
                name, payload - (size_t)want, (uint64_t)hdr + want, (unsigned long)n, want);
        return -1;
    }
    return 0;
}

/* Parses an IDX image in memory, reporting byte offsets. */
static int dn_pr_parse_idx_mem(const dn_infer_model *m, const char *name, const unsigned char *b,
                               size_t len, dn_pr_input *in, char *err) {
    int ndim = 0;
    uint32_t dims[4];
    size_t hdr = 0;
    if (dn_pr_idx_header(name, b, len, &ndim, dims, &hdr, err) != 0 ||
        dn_pr_check_idx_shape(m, name, ndim, dims, err) != 0 ||
        dn_pr_idx_payload(m, name, dims[0], hdr, len, err) != 0)
        return -1;
    in->kind = DN_PR_IN_IDX;
    in->n = dims[0];
    in->pixels = b + hdr;
    return 0;
}

/* Loads an IDX file (gzip-compressed or not) with dn_idx_load and checks
 * its shape. */
static int dn_pr_load_idx_file(const dn_infer_model *m, const char *path, dn_pr_input *in,
                               char *err) {
    if (dn_idx_load(path, &in->idx, err) != 0)
        return -1;
    if (dn_pr_check_idx_shape(m, path, in->idx.ndim, in->idx.dims, err) != 0)
        return -1;
    in->kind = DN_PR_IN_IDX;
    in->n = in->idx.dims[0];
    in->pixels = in->idx.data;
    return 0;
}

/* ---- raw float32 -------------------------------------------------------------- */

/* Float from 4 little-endian bytes. */
static float dn_pr_le_f32(const unsigned char *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Raw float32: the length must be a multiple of a sample; values finite. */
static int dn_pr_parse_raw(const dn_infer_model *m, const char *name, const unsigned char *b,
                           size_t len, dn_pr_input *in, char *err) {
    size_t per = 4 * (size_t)m->n_inputs;
    if (len % per != 0) {
        dn_errf(err,
                "%s: raw float32 input is %zu bytes, not a multiple of %zu (%d values x 4 "
                "bytes): %zu bytes left over at byte %zu",
                name, len, per, m->n_inputs, len % per, len - len % per);
        return -1;
    }
    for (size_t i = 0; i < len; i += 4) {
        float f = dn_pr_le_f32(b + i);
        if (!isfinite(f)) {
            dn_errf(err, "%s: value at byte %zu (sample %zu, value %zu) is %s, not a finite number",
                    name, i, i / per, (i % per) / 4 + 1, isnan(f) ? "NaN" : "infinite");
            return -1;
        }
    }
    in->kind = DN_PR_IN_RAW;
    in->n = len / per;
    in->raw = b;
    return 0;
}

/* ---- CSV ------------------------------------------------------------------------ */

/* Growable float array. */
typedef struct {
    float *v;
    size_t n, cap;
} dn_pr_floats;

/* Appends x. Returns 0, or -1 when out of memory. */
static int dn_pr_floats_push(dn_pr_floats *a, float x) {
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 1024;
        if (ncap > SIZE_MAX / sizeof *a->v)
            return -1;
        float *nv = realloc(a->v, ncap * sizeof *nv);
        if (!nv)
            return -1;
        a->v = nv;
        a->cap = ncap;
    }
    a->v[a->n++] = x;
    return 0;
}

/* Field f of the current line as a float32 into *x. Returns 0 or -1. */
static int dn_pr_csv_value(const dn_csv *c, const dn_csv_field *f, float *x, char *err) {
    char q[DN_CSV_QUOTE_MAX + 4];
    double v = 0;
    int rc = f->n ? dn_csv_number(f->p, f->n, &v) : DN_CSV_NUM_SYNTAX;
    if (rc == DN_CSV_NUM_OK && fabs(v) > FLT_MAX)
        rc = DN_CSV_NUM_RANGE;
    if (rc == DN_CSV_NUM_OK) {
        *x = (float)v;
        return 0;
    }
    if (f->n == 0)
        dn_csv_errf(c, f->col, err, DN_ERR_MAX, "expected a number, got an empty field");
    else if (rc == DN_CSV_NUM_RANGE)
        dn_csv_errf(c, f->col, err, DN_ERR_MAX, "number '%s' is out of range for float32",
                    dn_csv_quote(f->p, f->n, q));
    else if (rc == DN_CSV_NUM_LONG)
        dn_csv_errf(c, f->col, err, DN_ERR_MAX, "number '%s' is longer than %d bytes",
                    dn_csv_quote(f->p, f->n, q), DN_CSV_NUM_MAX - 1);
    else
        dn_csv_errf(c, f->col, err, DN_ERR_MAX, "expected a number, got '%s'", dn_csv_quote(f->p, f->n, q));
    return -1;
}

/* The current line of c as one sample: exactly n_inputs numbers, into a. */
static int dn_pr_csv_line(const dn_infer_model *m, dn_csv *c, dn_pr_floats *a, char *err) {
    dn_csv_field f;
    int count = 0;
    while (dn_csv_next_field(c, &f)) {
        if (count == m->n_inputs) {
            dn_csv_errf(c, f.col, err, DN_ERR_MAX, "more than %d values on the line (the model takes %d)",
                        m->n_inputs, m->n_inputs);
            return -1;
        }
        float x;
        if (dn_pr_csv_value(c, &f, &x, err) != 0)
            return -1;
        if (dn_pr_floats_push(a, x) != 0)
            return -2;
        count++;
    }
    if (count < m->n_inputs) {
        dn_csv_errf(c, c->n + 1, err, DN_ERR_MAX, "%d value%s on the line, the model takes %d", count,
                    count == 1 ? "" : "s", m->n_inputs);
        return -1;
    }
    return 0;
}

/* The current line (the first that is not blank) is a header: its first
 * field does not start with a number. */
static int dn_pr_csv_is_header(dn_csv *c) {
    dn_csv_field f;
    dn_csv_next_field(c, &f);
    dn_csv_rewind(c);
    return dn_csv_scan_number(f.p, f.n) == 0;
}

/* CSV text: an optional header, then one sample per non-blank line. */
static int dn_pr_parse_csv(const dn_infer_model *m, const char *name, const unsigned char *b,
                           size_t len, dn_pr_input *in, char *err) {
    dn_csv c;
    dn_pr_floats a = {NULL, 0, 0};
    int rc = 0;
    dn_csv_init(&c, name, (const char *)b, len);
    for (int first = 1; rc == 0 && dn_csv_next_record(&c); first = 0)
        if (!(first && dn_pr_csv_is_header(&c)))
            rc = dn_pr_csv_line(m, &c, &a, err);
    if (rc != 0) {
        free(a.v);
        return rc;
    }
    in->kind = DN_PR_IN_CSV;
    in->n = a.n / (size_t)m->n_inputs;
    in->values = a.v;
    return 0;
}

/* ---- reading ---------------------------------------------------------------------- */

/* Parses a .npy array in memory: float32, float64 or uint8 of shape [n, ...]
 * with n_inputs values per sample, each finite, into in->values. */
static int dn_pr_parse_npy(const dn_infer_model *m, const char *name, const unsigned char *b, size_t len,
                           dn_pr_input *in, char *err) {
    dn_npy a;
    if (dn_npy_parse(name, b, len, &a, err) != 0)
        return -1;
    uint64_t per = a.ndim >= 1 && a.shape[0] ? a.count / a.shape[0] : 0;
    if (a.ndim < 1 || (a.shape[0] && per != (uint64_t)m->n_inputs) || (a.kind != 'f' && !(a.kind == 'u' && a.size == 1))) {
        dn_errf(err, "%s: expected float32, float64 or uint8 samples [n, ...] of %d values each", name,
                m->n_inputs);
        return -1;
    }
    in->kind = DN_PR_IN_CSV; /* values as written */
    in->n = (size_t)a.shape[0];
    in->values = malloc((a.count ? a.count : 1) * sizeof *in->values);
    if (!in->values)
        return -2;
    for (uint64_t i = 0; i < a.count; i++) {
        const unsigned char *p = (const unsigned char *)a.data + i * (uint64_t)a.size;
        float f;
        double d;
        if (a.kind == 'u')
            f = p[0];
        else if (a.size == 4)
            memcpy(&f, p, 4);
        else {
            memcpy(&d, p, 8);
            f = (float)d;
        }
        if (!isfinite(f)) {
            dn_errf(err, "%s: sample %llu, value %llu is not a finite float", name,
                    (unsigned long long)(i / per), (unsigned long long)(i % per));
            return -1;
        }
        in->values[i] = f;
    }
    return 0;
}

/* Parses an input read into memory (stdin, or a file that is not IDX), in
 * format fmt or, for DN_PR_IN_AUTO, the one its content shows. */
static int dn_pr_parse_buffer(const dn_infer_model *m, const char *name, int fmt,
                              const unsigned char *b, size_t len, dn_pr_input *in, char *err) {
    if (fmt == DN_PR_IN_AUTO) {
        if (dn_pr_looks_gzip(b, len)) {
            dn_errf(err, "%s: gzip-compressed input is read from files only (give the file name)", name);
            return -1;
        }
        if (dn_pr_looks_idx(b, len))
            fmt = DN_PR_IN_IDX;
        else if (len >= 6 && memcmp(b, "\x93NUMPY", 6) == 0)
            fmt = DN_PR_IN_NPY;
        else
            fmt = dn_pr_looks_text(b, len) ? DN_PR_IN_CSV : DN_PR_IN_RAW;
    }
    if (fmt == DN_PR_IN_IDX)
        return dn_pr_parse_idx_mem(m, name, b, len, in, err);
    if (fmt == DN_PR_IN_RAW)
        return dn_pr_parse_raw(m, name, b, len, in, err);
    if (fmt == DN_PR_IN_NPY)
        return dn_pr_parse_npy(m, name, b, len, in, err);
    return dn_pr_parse_csv(m, name, b, len, in, err);
}

/* Reads f to its end into in->bytes (*len bytes). */
static int dn_pr_read_stream(FILE *f, const char *name, dn_pr_input *in, size_t *len, char *err) {
    char why[DN_ERR_MAX];
    int rc = dn_file_read_stream(f, 0, &in->bytes, len, why);
    if (rc == DN_FILE_NOMEM)
        return -2;
    if (rc != 0) {
        dn_errf(err, "%s: read error: %s", name, why);
        return -1;
    }
    return 0;
}

/* Reads the file o->input: an IDX file (by its first bytes, or
 * --input-format idx) is loaded as such; anything else is read whole into
 * in->bytes (*len bytes) for dn_pr_parse_buffer. */
static int dn_pr_read_file(const dn_infer_model *m, const dn_pr_opts *o, dn_pr_input *in,
                           size_t *len, char *err) {
    FILE *f = fopen(o->input, "rb");
    if (!f) {
        dn_errf(err, "%s: cannot open: %s", o->input, strerror(errno));
        return -1;
    }
    unsigned char head[4];
    size_t got = fread(head, 1, sizeof head, f);
    int idx = o->input_format == DN_PR_IN_IDX ||
              (o->input_format == DN_PR_IN_AUTO &&
               (dn_pr_looks_idx(head, got) || dn_pr_looks_gzip(head, got)));
    if (idx && !ferror(f)) {
        fclose(f);
        return dn_pr_load_idx_file(m, o->input, in, err);
    }
    rewind(f);
    int rc = dn_pr_read_stream(f, o->input, in, len, err);
    fclose(f);
    return rc;
}

int dn_pr_load_input(const dn_infer_model *m, const dn_pr_opts *o, dn_pr_input *in) {
    char err[DN_ERR_MAX];
    int from_stdin = !o->input || strcmp(o->input, "-") == 0;
    const char *name = from_stdin ? "<stdin>" : o->input;
    size_t len = 0;
    memset(in, 0, sizeof *in);
    int rc = from_stdin ? dn_pr_read_stream(stdin, name, in, &len, err)
                        : dn_pr_read_file(m, o, in, &len, err);
    if (rc == 0 && in->bytes)
        rc = dn_pr_parse_buffer(m, name, o->input_format, (const unsigned char *)in->bytes, len, in, err);
    if (rc == 0)
        return DN_PR_EXIT_OK;
    if (rc == -2)
        fprintf(stderr, "%s: out of memory reading %s\n", o->prog, name);
    else
        fprintf(stderr, "%s: %s\n", o->prog, err);
    dn_pr_input_free(in);
    return rc == -2 ? DN_PR_EXIT_NOMEM : DN_PR_EXIT_INPUT;
}

/* ---- to the network -------------------------------------------------------------- */

void dn_pr_gather(const dn_infer_model *m, const dn_pr_input *in, int normalize, size_t first,
                  int rows, float *x) {
    size_t nf = (size_t)m->n_inputs, count = (size_t)rows * nf, off = first * nf;
    float mean = m->norm_mean, sd = m->norm_std;
    for (size_t i = 0; i < count; i++) {
        float v;
        if (in->kind == DN_PR_IN_RAW) {
            x[i] = dn_pr_le_f32(in->raw + 4 * (off + i));
            continue;
        }
        v = in->kind == DN_PR_IN_IDX ? (float)in->pixels[off + i] : in->values[off + i];
        if (m->shift) /* table data: the training rows' scaling, as dn_data_gather */
            x[i] = normalize ? (v - m->shift[i % nf]) / m->scale[i % nf] : v;
        else /* as dn_dataset_gather, i.e. torchvision ToTensor + Normalize */
            x[i] = normalize ? (v / 255.0f - mean) / sd : v;
    }
}
