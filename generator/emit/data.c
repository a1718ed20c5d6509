/* data.c - emits the dn_data_spec of a spec whose data are CSV or NPY
 * files: file names, the CSV layout, the targets' kind and the scaling. */
#include "data.h"

#include <string.h>

int dn_emit_has_data_spec(const dn_spec *s) { return strcmp(s->data.format, "idx") != 0; }

/* `.field = "escaped",` or nothing for an empty string. */
static void emit_str_field(dn_buf *b, const char *field, const char *v) {
    if (!v[0])
        return;
    dn_buf_printf(b, "%*s.%s = \"", 4 * b->indent, "", field);
    dn_buf_c_string(b, v);
    dn_buf_printf(b, "\",\n");
}

/* `static const char *const <model>_data_<what>[] = {...};` for n > 0. */
static void emit_selectors(dn_buf *b, const char *model, const char *what,
                           const char sel[DN_DATA_MAX_COLS][DN_DATA_COL_MAX], int n) {
    if (n == 0)
        return;
    dn_buf_line(b, "static const char *const %s_data_%s[%d] = {", model, what, n);
    for (int i = 0; i < n; i++) {
        dn_buf_printf(b, "    \"");
        dn_buf_c_string(b, sel[i]);
        dn_buf_printf(b, "\",\n");
    }
    dn_buf_line(b, "};");
}

/* The csv layout as a dn_csv_opts initializer. */
static void emit_csv_opts(dn_buf *b, const dn_spec *s) {
    const dn_data *d = &s->data;
    dn_buf_line(b, ".csv = {");
    b->indent++;
    dn_buf_line(b, ".delimiter = %d, /* '%c' */", d->delimiter ? d->delimiter : ',',
                d->delimiter >= 0x20 && d->delimiter < 0x7f && d->delimiter != '\\' && d->delimiter != '\'' ? d->delimiter : '?');
    dn_buf_line(b, ".header = %d,", d->header);
    dn_buf_line(b, ".skip = %d,", d->skip);
    if (d->n_target)
        dn_buf_line(b, ".target = %s_data_target, .n_target = %d,", s->name, d->n_target);
    if (d->n_ignore)
        dn_buf_line(b, ".ignore = %s_data_ignore, .n_ignore = %d,", s->name, d->n_ignore);
    dn_buf_line(b, ".kind = %s,", d->values ? "DN_TARGET_VALUE" : "DN_TARGET_CLASS");
    b->indent--;
    dn_buf_line(b, "},");
}

void dn_emit_data_spec(dn_buf *b, const dn_spec *s) {
    static const char *const scales[] = {"DN_SCALE_NONE", "DN_SCALE_FIXED", "DN_SCALE_STANDARD",
                                         "DN_SCALE_MINMAX"};
    const dn_data *d = &s->data;
    if (!dn_emit_has_data_spec(s))
        return;
    dn_buf_line(b, "/* ==== data: %s files, %s, read by the runtime (dn_dataset.c) ==== */", d->format,
                d->values ? "real-valued targets" : "class labels");
    dn_buf_blank(b);
    emit_selectors(b, s->name, "target", d->target, d->n_target);
    emit_selectors(b, s->name, "ignore", d->ignore, d->n_ignore);
    dn_buf_line(b, "static const dn_data_spec %s_data = {", s->name);
    b->indent++;
    dn_buf_line(b, ".format = %s,", strcmp(d->format, "npy") == 0 ? "DN_DATA_NPY" : "DN_DATA_CSV");
    emit_str_field(b, "train", d->train);
    emit_str_field(b, "train_y", d->train_y);
    emit_str_field(b, "test", d->test);
    emit_str_field(b, "test_y", d->test_y);
    if (d->test_split > 0)
        dn_buf_line(b, ".test_split = %.17g,", d->test_split);
    emit_csv_opts(b, s);
    dn_buf_line(b, ".scale = %s,", scales[d->normalize]);
    if (d->normalize == DN_NORM_FIXED)
        dn_buf_line(b, ".mean = %.9gf, .std = %.9gf,", (double)(float)d->mean, (double)(float)d->std);
    b->indent--;
    dn_buf_line(b, "};");
    dn_buf_blank(b);
}
