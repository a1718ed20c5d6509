/* kinds.c - the table from op kinds to their emitter modules: adding a
 * kind is one line here, beside its module and its planning in plan.c. */
#include "kind.h"

static const dn_kind *const KINDS[DN_OP_KIND_COUNT] = {
    [DN_OP_DROPOUT] = &dn_kind_dropout,
    [DN_OP_DENSE] = &dn_kind_dense,
    [DN_OP_BATCHNORM] = &dn_kind_batchnorm,
    [DN_OP_CONV2D] = &dn_kind_conv2d,
    [DN_OP_POOL2D] = &dn_kind_pool2d,
};

const dn_kind *dn_kind_of(dn_op_kind k) { return KINDS[k]; }
