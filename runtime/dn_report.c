/* dn_report.c - what training writes besides the epoch lines: the --metrics
 * file (CSV or JSON Lines), the --log-steps file and the progress bar shown
 * on a terminal. */
#include "dn_runtime.h"
#include "dn_train.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define DN_RP_CSV_HEADER "epoch,step,train_loss,train_acc,test_loss,test_acc,seconds,val_loss,val_acc,lr\n"
/* Headers of older trainers' metrics files, which a resumed run continues:
 * before the lr column, and before the validation columns. */
#define DN_RP_CSV_HEADER_V2 "epoch,step,train_loss,train_acc,test_loss,test_acc,seconds,val_loss,val_acc\n"
#define DN_RP_CSV_HEADER_V1 "epoch,step,train_loss,train_acc,test_loss,test_acc,seconds\n"
/* Regression runs: RMSE where accuracy was, then MAE and R^2. */
#define DN_RP_CSV_HEADER_REG                                                                    \
    "epoch,step,train_loss,train_rmse,test_loss,test_rmse,seconds,val_loss,val_rmse,test_mae,"    \
    "test_r2,val_mae,val_r2,lr\n"
#define DN_RP_STEP_HEADER "step,epoch,loss,acc\n"
#define DN_RP_MAX_OLD ((long)64 << 20) /* largest metrics file kept on resume */
#define DN_RP_STEP_BUF (1 << 16)       /* stdio buffer of the step log */
#define DN_RP_BAR 20                   /* progress bar cells */
#define DN_RP_REDRAW 0.1               /* seconds between progress redraws */

const char *dn_plural(int64_t n) { return n == 1 ? "" : "s"; }

/* ---- metrics file ---------------------------------------------------------- */

/* Appends len bytes to the metrics text, growing it. Returns 0 or -1. */
static int dn_rp_append(dn_metrics *mt, const char *s, size_t len) {
    if (mt->len + len + 1 > mt->cap) {
        size_t cap = (mt->cap ? mt->cap * 2 : 4096) + len;
        char *p = realloc(mt->buf, cap);
        if (!p)
            return -1;
        mt->buf = p;
        mt->cap = cap;
    }
    memcpy(mt->buf + mt->len, s, len);
    mt->len += len;
    mt->buf[mt->len] = '\0';
    return 0;
}

/* Reads a whole small file into a malloc'd string; NULL if absent/unreadable. */
static char *dn_rp_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && size <= DN_RP_MAX_OLD &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1)) != NULL) {
        if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
            free(buf);
            buf = NULL;
        } else {
            buf[size] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/* The epoch a metrics line is about ("N," in CSV, "{"epoch":N," in JSON
 * Lines), or -1. */
static int64_t dn_rp_line_epoch(const char *line, int jsonl) {
    if (jsonl) {
        if (strncmp(line, "{\"epoch\":", 9) != 0)
            return -1;
        line += 9;
    }
    if (!isdigit((unsigned char)line[0]))
        return -1;
    char *end;
    long long e = strtoll(line, &end, 10);
    return *end == ',' ? (int64_t)e : -1;
}

/* Where the rows of an old metrics file start (NULL: not a metrics file of
 * this format); *pad: the empty columns its rows lack (older headers). */
static const char *dn_rp_old_rows(const dn_metrics *mt, const char *old, const char **pad) {
    static const struct {
        const char *header, *pad;
    } formats[] = {{DN_RP_CSV_HEADER, ""}, {DN_RP_CSV_HEADER_V2, ","}, {DN_RP_CSV_HEADER_V1, ",,,"}};
    *pad = "";
    if (mt->jsonl)
        return old;
    if (mt->regression) {
        size_t nr = strlen(DN_RP_CSV_HEADER_REG);
        return strncmp(old, DN_RP_CSV_HEADER_REG, nr) == 0 ? old + nr : NULL;
    }
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
        size_t n = strlen(formats[k].header);
        if (strncmp(old, formats[k].header, n) == 0) {
            *pad = formats[k].pad;
            return old + n;
        }
    }
    return NULL;
}

/* Copies the complete rows of an existing metrics file for epochs
 * 1..done_epochs, in increasing order, so that a resumed run's file still
 * covers the whole run. */
static int dn_rp_keep_old(dn_metrics *mt, int64_t done_epochs) {
    char *old = dn_rp_read_text(mt->path);
    if (!old)
        return 0;
    int rc = 0;
    const char *pad;
    int64_t last = 0;
    for (const char *line = dn_rp_old_rows(mt, old, &pad); line && *line && rc == 0;) {
        const char *nl = strchr(line, '\n');
        if (!nl)
            break; /* an unterminated last line is not a complete row */
        int64_t e = dn_rp_line_epoch(line, mt->jsonl);
        if (e > last && e <= done_epochs) {
            rc = dn_rp_append(mt, line, (size_t)(nl - line));
            if (rc == 0 && *pad)
                rc = dn_rp_append(mt, pad, strlen(pad));
            if (rc == 0)
                rc = dn_rp_append(mt, "\n", 1);
            last = e;
        }
        line = nl + 1;
    }
    free(old);
    return rc;
}

static int dn_rp_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int dn_metrics_open(dn_metrics *mt, const char *path, int64_t keep_epochs, int regression,
                    const char *prog) {
    memset(mt, 0, sizeof *mt);
    if (!path)
        return DN_EXIT_OK;
    mt->path = path;
    mt->jsonl = dn_rp_ends_with(path, ".jsonl");
    mt->regression = regression;
    const char *header = regression ? DN_RP_CSV_HEADER_REG : DN_RP_CSV_HEADER;
    int rc = dn_rp_append(mt, "", 0);
    if (rc == 0 && !mt->jsonl)
        rc = dn_rp_append(mt, header, strlen(header));
    if (rc == 0 && keep_epochs >= 0)
        rc = dn_rp_keep_old(mt, keep_epochs);
    if (rc != 0) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return DN_EXIT_FAIL;
    }
    return DN_EXIT_OK;
}

/* "X,Y" (loss %.6g, accuracy %.6f) or "," when absent. */
static void dn_rp_csv_pair(char *buf, size_t cap, int have, double loss, double acc) {
    if (have)
        snprintf(buf, cap, "%.6g,%.6f", loss, acc);
    else
        snprintf(buf, cap, ",");
}

/* A JSON number in format fmt, or null when absent or not finite. */
static void dn_rp_json_num(char *buf, size_t cap, int have, const char *fmt, double v) {
    if (have && isfinite(v))
        snprintf(buf, cap, fmt, v);
    else
        snprintf(buf, cap, "null");
}

/* A regression run's row: the accuracy columns hold RMSE, MAE and R^2 follow. */
static int dn_rp_format_reg_row(const dn_metrics *mt, const dn_epoch_row *e, char *buf, size_t cap) {
    char v[12][40];
    const char *num = mt->jsonl ? "null" : "";
    double x[12] = {e->train_loss, e->train_acc, e->test_loss, e->test_acc, e->seconds, e->val_loss,
                    e->val_acc, e->test_mae, e->test_r2, e->val_mae, e->val_r2, e->lr};
    const int have[12] = {1, 1, e->has_test, e->has_test, 1, e->has_val, e->has_val, e->has_test,
                          e->has_test, e->has_val, e->has_val, 1};
    for (int k = 0; k < 12; k++) {
        if (have[k] && isfinite(x[k]))
            snprintf(v[k], sizeof v[k], k == 4 ? "%.3f" : k == 0 || k == 2 || k == 5 || k == 11 ? "%.6g" : "%.6f",
                     x[k]);
        else
            snprintf(v[k], sizeof v[k], "%s", num);
    }
    if (!mt->jsonl)
        return snprintf(buf, cap, "%" PRId64 ",%" PRId64 ",%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", e->epoch,
                        e->step, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]);
    return snprintf(buf, cap,
                    "{\"epoch\":%" PRId64 ",\"step\":%" PRId64 ",\"train_loss\":%s,\"train_rmse\":%s,"
                    "\"test_loss\":%s,\"test_rmse\":%s,\"seconds\":%s,\"val_loss\":%s,\"val_rmse\":%s,"
                    "\"test_mae\":%s,\"test_r2\":%s,\"val_mae\":%s,\"val_r2\":%s,\"lr\":%s}\n",
                    e->epoch, e->step, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]);
}

/* Formats the epoch's row into buf; returns its length (>= cap: too long). */
static int dn_rp_format_row(const dn_metrics *mt, const dn_epoch_row *e, char *buf, size_t cap) {
    if (mt->regression)
        return dn_rp_format_reg_row(mt, e, buf, cap);
    if (!mt->jsonl) {
        char test[96], val[96];
        dn_rp_csv_pair(test, sizeof test, e->has_test, e->test_loss, e->test_acc);
        dn_rp_csv_pair(val, sizeof val, e->has_val, e->val_loss, e->val_acc);
        return snprintf(buf, cap, "%" PRId64 ",%" PRId64 ",%.6g,%.6f,%s,%.3f,%s,%.6g\n", e->epoch,
                        e->step, e->train_loss, e->train_acc, test, e->seconds, val, e->lr);
    }
    char v[8][40];
    dn_rp_json_num(v[0], sizeof v[0], 1, "%.6g", e->train_loss);
    dn_rp_json_num(v[1], sizeof v[1], 1, "%.6f", e->train_acc);
    dn_rp_json_num(v[2], sizeof v[2], e->has_test, "%.6g", e->test_loss);
    dn_rp_json_num(v[3], sizeof v[3], e->has_test, "%.6f", e->test_acc);
    dn_rp_json_num(v[4], sizeof v[4], 1, "%.3f", e->seconds);
    dn_rp_json_num(v[5], sizeof v[5], e->has_val, "%.6g", e->val_loss);
    dn_rp_json_num(v[6], sizeof v[6], e->has_val, "%.6f", e->val_acc);
    dn_rp_json_num(v[7], sizeof v[7], 1, "%.6g", e->lr);
    return snprintf(buf, cap,
                    "{\"epoch\":%" PRId64 ",\"step\":%" PRId64 ",\"train_loss\":%s,\"train_acc\":%s,"
                    "\"test_loss\":%s,\"test_acc\":%s,\"seconds\":%s,\"val_loss\":%s,\"val_acc\":%s,"
                    "\"lr\":%s}\n",
                    e->epoch, e->step, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
}

int dn_metrics_add(dn_metrics *mt, const dn_epoch_row *e, const char *prog) {
    if (!mt->path)
        return DN_EXIT_OK;
    char row[640], err[DN_ERR_MAX];
    int len = dn_rp_format_row(mt, e, row, sizeof row);
    if (len < 0 || (size_t)len >= sizeof row || dn_rp_append(mt, row, (size_t)len) != 0) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return DN_EXIT_FAIL;
    }
    if (dn_write_file_atomic(mt->path, mt->buf, mt->len, err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return DN_EXIT_OUTPUT;
    }
    return DN_EXIT_OK;
}

void dn_metrics_free(dn_metrics *mt) {
    free(mt->buf);
    mt->buf = NULL;
}

/* ---- step log ------------------------------------------------------------- */

/* Opens an existing step log for continuing after step keep: keeps the
 * header and the consecutive complete rows 1..keep, cuts off the rest and
 * leaves the file positioned at the end. *have gets the last row kept.
 * NULL when there is no such file (or it is not a step log). */
static FILE *dn_rp_steplog_reopen(const char *path, int64_t keep, int64_t *have) {
    *have = 0;
    FILE *f = fopen(path, "r+");
    if (!f)
        return NULL;
    setvbuf(f, NULL, _IOFBF, DN_RP_STEP_BUF);
    char line[256];
    if (!fgets(line, sizeof line, f) || strcmp(line, DN_RP_STEP_HEADER) != 0) {
        fclose(f);
        return NULL;
    }
    long off = ftell(f);
    while (*have < keep && fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        char *end;
        long long s = strtoll(line, &end, 10);
        if (len == 0 || line[len - 1] != '\n' || end == line || *end != ',' || s != *have + 1)
            break;
        *have = s;
        off = ftell(f);
    }
    if (off < 0 || fflush(f) != 0 || ftruncate(fileno(f), (off_t)off) != 0 ||
        fseek(f, off, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    return f;
}

int dn_steplog_open(dn_steplog *l, const char *path, int64_t keep_steps, const char *prog) {
    memset(l, 0, sizeof *l);
    if (!path)
        return DN_EXIT_OK;
    l->path = path;
    int64_t have = 0;
    if (keep_steps >= 0)
        l->f = dn_rp_steplog_reopen(path, keep_steps, &have);
    if (!l->f && (l->f = fopen(path, "w")) != NULL) {
        setvbuf(l->f, NULL, _IOFBF, DN_RP_STEP_BUF);
        fputs(DN_RP_STEP_HEADER, l->f);
    }
    if (!l->f) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        return DN_EXIT_OUTPUT;
    }
    if (keep_steps == have + 1)
        fprintf(stderr, "%s: warning: %s: the row of step %" PRId64
                " is missing; the log continues at step %" PRId64 "\n",
                prog, path, keep_steps, keep_steps + 1);
    else if (keep_steps > have)
        fprintf(stderr, "%s: warning: %s: rows of steps %" PRId64 "..%" PRId64
                " are missing; the log continues at step %" PRId64 "\n",
                prog, path, have + 1, keep_steps, keep_steps + 1);
    return DN_EXIT_OK;
}

void dn_steplog_row(dn_steplog *l, int64_t step, int64_t epoch, double loss, double acc) {
    if (l->f)
        fprintf(l->f, "%" PRId64 ",%" PRId64 ",%.9g,%.6f\n", step, epoch, loss, acc);
}

void dn_steplog_flush(dn_steplog *l) {
    if (l->f)
        fflush(l->f);
}

int dn_steplog_close(dn_steplog *l, const char *prog) {
    if (!l->f)
        return DN_EXIT_OK;
    int bad = fflush(l->f) != 0 || ferror(l->f);
    int saved = errno;
    bad |= fclose(l->f) != 0;
    l->f = NULL;
    if (!bad)
        return DN_EXIT_OK;
    fprintf(stderr, "%s: %s: write error: %s\n", prog, l->path, strerror(saved ? saved : errno));
    return DN_EXIT_OUTPUT;
}

/* ---- progress bar --------------------------------------------------------- */

void dn_progress_init(dn_progress *p, int on) {
    memset(p, 0, sizeof *p);
    p->on = on;
}

void dn_progress_epoch(dn_progress *p, const dn_train_state *st) {
    if (!p->on)
        return;
    p->t0 = dn_now_seconds();
    p->last = -1;
    p->batch0 = st->batch;
    p->seen0 = st->seen;
}

/* "3s", "2m05s" or "1h02m". */
static void dn_rp_duration(char *buf, size_t cap, double s) {
    long long t = s < 0 || !isfinite(s) ? 0 : s > 1e9 ? 1000000000LL : (long long)(s + 0.5);
    if (t < 60)
        snprintf(buf, cap, "%llds", t);
    else if (t < 3600)
        snprintf(buf, cap, "%lldm%02llds", t / 60, t % 60);
    else
        snprintf(buf, cap, "%lldh%02lldm", t / 3600, t / 60 % 60);
}

/* Draws "epoch E/N [====>   ] P%  R samples/s  loss L  ETA T" over the old bar. */
static void dn_rp_draw(dn_progress *p, const dn_train_state *st, int epochs, int64_t batches,
                       double now) {
    double el = now - p->t0, frac = batches > 0 ? (double)st->batch / (double)batches : 1.0;
    int fill = (int)(frac * DN_RP_BAR);
    char bar[DN_RP_BAR + 1], eta[32], line[256];
    for (int i = 0; i < DN_RP_BAR; i++)
        bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[DN_RP_BAR] = '\0';
    int64_t done = st->batch - p->batch0;
    double rate = el > 0 ? (double)(st->seen - p->seen0) / el : 0.0;
    dn_rp_duration(eta, sizeof eta, done > 0 ? el / (double)done * (double)(batches - st->batch) : 0.0);
    int len = snprintf(line, sizeof line, "\repoch %" PRId64 "/%d [%s] %d%%  %.0f samples/s  loss %.4f  ETA %s",
                       st->epoch + 1, epochs, bar, (int)(frac * 100), rate,
                       st->seen ? st->loss_sum / (double)st->seen : 0.0, eta);
    if (len < 0 || (size_t)len >= sizeof line)
        return;
    int shown = len - 1;
    while (len < p->drawn + 1 && (size_t)len + 1 < sizeof line)
        line[len++] = ' '; /* cover the end of a longer previous bar */
    line[len] = '\0';
    fputs(line, stderr);
    p->drawn = shown;
}

void dn_progress_step(dn_progress *p, const dn_train_state *st, int epochs, int64_t batches) {
    if (!p->on)
        return;
    double now = dn_now_seconds();
    if (p->last >= 0 && now - p->last < DN_RP_REDRAW)
        return;
    p->last = now;
    dn_rp_draw(p, st, epochs, batches, now);
}

void dn_progress_clear(dn_progress *p) {
    if (!p->on || p->drawn == 0)
        return;
    fprintf(stderr, "\r%*s\r", p->drawn, "");
    p->drawn = 0;
}
