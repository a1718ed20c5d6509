/* data.h - the trainer's description of CSV and NPY data (data.c). */
#ifndef DNGEN_EMIT_DATA_H
#define DNGEN_EMIT_DATA_H

#include "spec.h"
#include "text.h"

/* Whether the spec reads CSV or NPY files (then the descriptor's
 * .defaults.data points at <model>_data). */
int dn_emit_has_data_spec(const dn_spec *s);

/* Writes `static const dn_data_spec <model>_data` (and the column selector
 * arrays it points at) for a spec with CSV or NPY data; nothing otherwise.
 * Every file name and column name is written as an escaped C string. */
void dn_emit_data_spec(dn_buf *b, const dn_spec *s);

#endif
