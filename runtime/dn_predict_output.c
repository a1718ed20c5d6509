/* dn_predict_output.c - the predictor's results: per sample, its top
 * classes (or largest outputs) and, with --mc, entropy and spread, printed
 * as one line of text, CSV or JSON. Last step of the predictor (see
 * dn_predict.h); the formats are documented by --help (dn_predict_cli.c).
 */
#include "dn_predict.h"

#include <math.h>
#include <stdio.h>

/* A number with `prec` decimals; non-finite values as nan/inf (JSON: null). */
static void dn_pr_num(FILE *out, double v, int prec, int json) {
    if (isnan(v))
        fputs(json ? "null" : "nan", out);
    else if (isinf(v))
        fputs(json ? "null" : v > 0 ? "inf" : "-inf", out);
    else
        fprintf(out, "%.*f", prec, v);
}

/* rank[0..k) = indices of the k largest v (ties and NaN: lower index first,
 * NaN after every number). */
static void dn_pr_top(const double *v, int n, int k, int *rank) {
    for (int r = 0; r < k; r++) {
        int best = -1;
        for (int c = 0; c < n; c++) {
            int used = 0;
            for (int q = 0; q < r && !used; q++)
                used = rank[q] == c;
            if (used)
                continue;
            if (best < 0 || (isnan(v[best]) && !isnan(v[c])) || v[c] > v[best])
                best = c;
        }
        rank[r] = best;
    }
}

/* What one line shows. */
typedef struct {
    const double *v;  /* the n_outputs values */
    const int *rank;  /* the indices of the top values, best first */
    int k;            /* how many of them are listed */
    int ce;           /* probabilities (cross entropy) or raw outputs */
    int mc;           /* with MC statistics: */
    double entropy;   /* of the mean probabilities (ce only) */
    double sd;        /* of the best value over the passes */
    const char *const *names; /* class names, or NULL: numbers */
} dn_pr_line;

/* Class c: its number, or its name as given (text), in CSV quotes with ""
 * for a quote (csv), or as a JSON string (json: control bytes as \u00XX,
 * other bytes as they are). */
static void dn_pr_class(FILE *out, const dn_pr_line *l, int c, int fmt) {
    if (!l->names) {
        fprintf(out, "%d", c);
        return;
    }
    const char *s = l->names[c];
    if (fmt == DN_PR_OUT_TEXT) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (fmt == DN_PR_OUT_CSV)
            fputs(*p == '"' ? "\"\"" : (char[2]){(char)*p, 0}, out);
        else if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* Entropy -sum p ln p (nats) of the mean probabilities v[0..n); NaN if
 * any is not finite. */
static double dn_pr_entropy(const double *v, int n) {
    double entropy = 0;
    for (int c = 0; c < n; c++) {
        if (!isfinite(v[c]))
            entropy = NAN;
        else if (v[c] > 0)
            entropy -= v[c] * log(v[c]);
    }
    return entropy < 0 ? 0 : entropy; /* rounding of a mean slightly above 1 */
}

void dn_pr_csv_header(const dn_infer_model *m, const dn_pr_opts *o, FILE *out) {
    if (m->multilabel) { /* index,labels,p_0,...,p_{K-1}[,std_0,...] */
        fputs("index,labels", out);
        for (int j = 0; j < m->n_outputs; j++)
            fprintf(out, ",p_%d", j);
        for (int j = 0; o->mc && j < m->n_outputs; j++)
            fprintf(out, ",std_%d", j);
        fputc('\n', out);
        return;
    }
    int ce = dn_pr_classifier(m);
    const char *cls = ce ? "class" : "output", *val = ce ? "probability" : "value";
    fprintf(out, "index,%s,%s", cls, val);
    for (int r = 2; r <= o->top && o->top > 1; r++)
        fprintf(out, ",%s_%d,%s_%d", cls, r, val, r);
    if (o->mc)
        fputs(ce ? ",entropy,std" : ",std", out);
    fputc('\n', out);
}

/* "0: class 7 p=0.9876", or with K > 1 "0: 7 (0.9876), 2 (0.0100)", then
 * " entropy=E std=S" with --mc. */
static void dn_pr_emit_text(FILE *out, size_t sample, const dn_pr_line *l) {
    fprintf(out, "%zu: ", sample);
    if (l->k == 1) {
        fputs(l->ce ? "class " : "output ", out);
        dn_pr_class(out, l, l->rank[0], DN_PR_OUT_TEXT);
        fputs(l->ce ? " p=" : " value=", out);
        dn_pr_num(out, l->v[l->rank[0]], 4, 0);
    } else {
        for (int r = 0; r < l->k; r++) {
            fputs(r ? ", " : "", out);
            dn_pr_class(out, l, l->rank[r], DN_PR_OUT_TEXT);
            fputs(" (", out);
            dn_pr_num(out, l->v[l->rank[r]], 4, 0);
            fputc(')', out);
        }
    }
    if (l->mc) {
        if (l->ce) {
            fputs(" entropy=", out);
            dn_pr_num(out, l->entropy, 4, 0);
        }
        fputs(" std=", out);
        dn_pr_num(out, l->sd, 4, 0);
    }
}

/* "0,7,0.987600[,2,0.010000...][,E,S]" under dn_pr_csv_header's columns. */
static void dn_pr_emit_csv(FILE *out, size_t sample, const dn_pr_line *l) {
    fprintf(out, "%zu", sample);
    for (int r = 0; r < l->k; r++) {
        fputc(',', out);
        dn_pr_class(out, l, l->rank[r], DN_PR_OUT_CSV);
        fputc(',', out);
        dn_pr_num(out, l->v[l->rank[r]], 6, 0);
    }
    if (l->mc) {
        if (l->ce) {
            fputc(',', out);
            dn_pr_num(out, l->entropy, 6, 0);
        }
        fputc(',', out);
        dn_pr_num(out, l->sd, 6, 0);
    }
}

/* {"index":0,"class":7,"probability":0.987600[,"top":[[7,0.987600],...]]
 * [,"entropy":E][,"std":S]}. */
static void dn_pr_emit_json(FILE *out, size_t sample, const dn_pr_line *l) {
    fprintf(out, l->ce ? "{\"index\":%zu,\"class\":" : "{\"index\":%zu,\"output\":", sample);
    dn_pr_class(out, l, l->rank[0], DN_PR_OUT_JSON);
    fputs(l->ce ? ",\"probability\":" : ",\"value\":", out);
    dn_pr_num(out, l->v[l->rank[0]], 6, 1);
    if (l->k > 1) {
        fputs(",\"top\":[", out);
        for (int r = 0; r < l->k; r++) {
            fputs(r ? ",[" : "[", out);
            dn_pr_class(out, l, l->rank[r], DN_PR_OUT_JSON);
            fputc(',', out);
            dn_pr_num(out, l->v[l->rank[r]], 6, 1);
            fputc(']', out);
        }
        fputc(']', out);
    }
    if (l->mc) {
        if (l->ce) {
            fputs(",\"entropy\":", out);
            dn_pr_num(out, l->entropy, 6, 1);
        }
        fputs(",\"std\":", out);
        dn_pr_num(out, l->sd, 6, 1);
    }
    fputc('}', out);
}

/* The labels predicted 1 (probability above 0.5), joined by sep ("none"
 * in text when there is none). */
static void dn_pr_labels(FILE *out, const double *v, int k, const char *sep, int text) {
    int any = 0;
    for (int j = 0; j < k; j++)
        if (v[j] > 0.5) {
            fprintf(out, "%s%d", any ? sep : "", j);
            any = 1;
        }
    if (!any && text)
        fputs("none", out);
}

/* The standard deviation over `mc` passes from the sum of squared
 * deviations m2. */
static double dn_pr_sd(double m2, int mc) {
    double var = m2 / mc;
    return var > 0 ? sqrt(var) : (isnan(var) ? NAN : 0.0);
}

/* The k values v[j] (prec decimals; with mc > 0, the standard deviations
 * dn_pr_sd(v[j], mc) instead), `first` before them and sep between. */
static void dn_pr_values(FILE *out, const double *v, int k, int mc, int prec, int json, const char *first,
                         const char *sep) {
    for (int j = 0; j < k; j++) {
        fputs(j ? sep : first, out);
        dn_pr_num(out, mc ? dn_pr_sd(v[j], mc) : v[j], prec, json);
    }
}

/* A multi-label model's line: every label's probability v[j] and the labels
 * predicted 1 (probability above 0.5); with --mc, each probability's
 * standard deviation over the passes (m2[j]: sums of squared deviations).
 *   text  "0: labels 0,2 p=0.9123 0.0456 0.8812[ std=S0 S1 S2]"
 *   csv   "0,0;2,0.912300,0.045600,0.881200[,S0,S1,S2]"
 *   json  {"index":0,"labels":[0,2],"probabilities":[...][,"std":[...]]} */
static void dn_pr_emit_multilabel(const dn_infer_model *m, const dn_pr_opts *o, FILE *out, size_t sample,
                                  const double *v, const double *m2) {
    const int k = m->n_outputs;
    if (o->format == DN_PR_OUT_TEXT) {
        fprintf(out, "%zu: labels ", sample);
        dn_pr_labels(out, v, k, ",", 1);
        dn_pr_values(out, v, k, 0, 4, 0, " p=", " ");
        if (o->mc)
            dn_pr_values(out, m2, k, o->mc, 4, 0, " std=", " ");
    } else if (o->format == DN_PR_OUT_JSON) {
        fprintf(out, "{\"index\":%zu,\"labels\":[", sample);
        dn_pr_labels(out, v, k, ",", 0);
        fputc(']', out);
        dn_pr_values(out, v, k, 0, 6, 1, ",\"probabilities\":[", ",");
        fputc(']', out);
        if (o->mc) {
            dn_pr_values(out, m2, k, o->mc, 6, 1, ",\"std\":[", ",");
            fputc(']', out);
        }
        fputc('}', out);
    } else {
        fprintf(out, "%zu,", sample);
        dn_pr_labels(out, v, k, ";", 0);
        dn_pr_values(out, v, k, 0, 6, 0, ",", ",");
        if (o->mc)
            dn_pr_values(out, m2, k, o->mc, 6, 0, ",", ",");
    }
    fputc('\n', out);
}

void dn_pr_emit(const dn_infer_model *m, const dn_pr_opts *o, FILE *out, size_t sample,
                const double *v, const double *m2, int *rank) {
    if (m->multilabel) {
        dn_pr_emit_multilabel(m, o, out, sample, v, m2);
        return;
    }
    double two[2], two_m2[2]; /* binary cross-entropy: classes 0 and 1 from the probability of 1 */
    if (m->loss == DN_MODEL_LOSS_BCE) {
        two[0] = 1.0 - v[0], two[1] = v[0];
        if (m2)
            two_m2[0] = two_m2[1] = m2[0];
        v = two, m2 = m2 ? two_m2 : NULL;
    }
    const int n = dn_pr_listed(m);
    dn_pr_line l = {v, rank, o->top, dn_pr_classifier(m), o->mc != 0, 0, 0,
                    m->n_class_names == n ? m->class_names : NULL};
    dn_pr_top(v, n, l.k, rank);
    if (o->mc) {
        if (l.ce)
            l.entropy = dn_pr_entropy(v, n);
        double var = m2[rank[0]] / o->mc;
        l.sd = var > 0 ? sqrt(var) : (isnan(var) ? NAN : 0.0);
    }
    if (o->format == DN_PR_OUT_TEXT)
        dn_pr_emit_text(out, sample, &l);
    else if (o->format == DN_PR_OUT_CSV)
        dn_pr_emit_csv(out, sample, &l);
    else
        dn_pr_emit_json(out, sample, &l);
    fputc('\n', out);
}
