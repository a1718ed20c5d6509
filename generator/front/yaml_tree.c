/* yaml_tree.c - libyaml events -> dn_ynode tree with 1-based positions.
 *
 * Uses the libyaml event API (not the document API) so that aliases, extra
 * documents and over-deep nesting can be rejected where they appear, with
 * the position of the offending event. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "yaml_tree.h"

typedef struct {
    yaml_parser_t parser;
    dn_diag *d;
    const char *text;
    size_t len;
} builder;

static int clamp_int(size_t v) { return v >= (size_t)INT_MAX ? INT_MAX : (int)v; }

/* libyaml marks are 0-based; diagnostics are 1-based. */
static dn_loc mark_loc(yaml_mark_t m) {
    return (dn_loc){clamp_int(m.line + 1), clamp_int(m.column + 1)};
}

/* Position of byte `offset` in the text (for reader errors, which carry only
 * an offset). Columns count UTF-8 characters, like libyaml's marks. */
static dn_loc offset_loc(const char *text, size_t len, size_t offset) {
    size_t line = 1, col = 1;
    if (offset > len)
        offset = len;
    for (size_t i = 0; i < offset; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') {
            line++;
            col = 1;
        } else if ((c & 0xC0) != 0x80) {
            col++;
        }
    }
    return (dn_loc){clamp_int(line), clamp_int(col)};
}

/* Reports the error libyaml just returned, at its problem position, with a
 * note at the context position ("while parsing a block mapping ..."). */
static void report_parser_error(builder *b) {
    yaml_parser_t *p = &b->parser;
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_MEMORY_ERROR) {
        dn_diag_report(b->d, DN_ERROR, (dn_loc){0, 0}, "out of memory while reading yaml");
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        dn_loc loc = offset_loc(b->text, b->len, p->problem_offset);
        if (p->problem_value >= 0)
            dn_diag_report(b->d, DN_ERROR, loc, "invalid input: %s (0x%X)", problem,
                           (unsigned)p->problem_value);
        else
            dn_diag_report(b->d, DN_ERROR, loc, "invalid input: %s", problem);
        return;
    }
    dn_diag_report(b->d, DN_ERROR, mark_loc(p->problem_mark), "syntax error: %s", problem);
    if (p->context)
        dn_diag_report(b->d, DN_NOTE, mark_loc(p->context_mark), "%s that starts here",
                       p->context);
}

/* Pulls the next event. Returns 0, or -1 after reporting a syntax error. */
static int next_event(builder *b, yaml_event_t *ev) {
    if (yaml_parser_parse(&b->parser, ev))
        return 0;
    report_parser_error(b);
    return -1;
}

static void report_oom(builder *b) {
    dn_diag_report(b->d, DN_ERROR, (dn_loc){0, 0}, "out of memory while reading yaml");
}

static dn_ynode *node_new(builder *b, dn_ykind kind, yaml_mark_t m) {
    dn_ynode *n = calloc(1, sizeof *n);
    if (!n) {
        report_oom(b);
        return NULL;
    }
    n->kind = kind;
    n->loc = mark_loc(m);
    return n;
}

void dn_ynode_free(dn_ynode *n) {
    if (!n)
        return;
    free(n->text);
    for (size_t i = 0; i < n->n_items; i++)
        dn_ynode_free(n->items[i]);
    free(n->items);
    for (size_t i = 0; i < n->n_pairs; i++) {
        dn_ynode_free(n->pairs[i].key);
        dn_ynode_free(n->pairs[i].value);
    }
    free(n->pairs);
    free(n);
}

/* Anchors and tags are legal YAML the spec language does not use; they are
 * reported (the node itself is kept, so validation can go on). */
static void reject_anchor_tag(builder *b, yaml_mark_t m, const yaml_char_t *anchor,
                              const yaml_char_t *tag) {
    if (anchor)
        dn_diag_report(b->d, DN_ERROR, mark_loc(m), "anchors are not supported (&%s)",
                       (const char *)anchor);
    if (tag) {
        /* libyaml expands "!!x" to "tag:yaml.org,2002:x"; show it as written. */
        static const char core[] = "tag:yaml.org,2002:";
        const char *t = (const char *)tag;
        int is_core = strncmp(t, core, sizeof core - 1) == 0;
        dn_diag_report(b->d, DN_ERROR, mark_loc(m), "tags are not supported (%s%s)",
                       is_core ? "!!" : "", is_core ? t + sizeof core - 1 : t);
    }
}

static dn_ynode *build_node(builder *b, yaml_event_t *ev, int depth);

/* Consumes a SCALAR event. */
static dn_ynode *build_scalar(builder *b, yaml_event_t *ev) {
    reject_anchor_tag(b, ev->start_mark, ev->data.scalar.anchor, ev->data.scalar.tag);
    dn_ynode *n = node_new(b, DN_Y_SCALAR, ev->start_mark);
    if (n) {
        n->len = ev->data.scalar.length;
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        n->text = malloc(n->len + 1);
        if (!n->text) {
            report_oom(b);
            free(n);
            n = NULL;
        } else {
            memcpy(n->text, ev->data.scalar.value, n->len);
            n->text[n->len] = '\0';
        }
    }
    yaml_event_delete(ev);
    return n;
}

/* Grows *arr (of elem-sized entries) so that index `need` fits. */
static int grow(builder *b, void **arr, size_t *cap, size_t need, size_t elem) {
    if (need < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    if (ncap <= need || ncap > SIZE_MAX / elem) {
        report_oom(b);
        return -1;
    }
    void *p = realloc(*arr, ncap * elem);
    if (!p) {
        report_oom(b);
        return -1;
    }
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Reads child events until SEQUENCE_END into n->items. 0 or -1 (reported). */
static int fill_seq(builder *b, dn_ynode *n, int depth) {
    size_t cap = 0;
    for (;;) {
        yaml_event_t ev;
        if (next_event(b, &ev))
            return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (grow(b, (void **)&n->items, &cap, n->n_items, sizeof *n->items)) {
            yaml_event_delete(&ev);
            return -1;
        }
        dn_ynode *item = build_node(b, &ev, depth + 1);
        if (!item)
            return -1;
        n->items[n->n_items++] = item;
    }
}

/* Reads key/value event pairs until MAPPING_END into n->pairs. */
static int fill_map(builder *b, dn_ynode *n, int depth) {
    size_t cap = 0;
    for (;;) {
        yaml_event_t ev;
        if (next_event(b, &ev))
            return -1;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (grow(b, (void **)&n->pairs, &cap, n->n_pairs, sizeof *n->pairs)) {
            yaml_event_delete(&ev);
            return -1;
        }
        dn_ynode *key = build_node(b, &ev, depth + 1);
        if (!key)
            return -1;
        /* Store the key at once so it is freed with n on any later failure. */
        n->pairs[n->n_pairs].key = key;
        n->pairs[n->n_pairs].value = NULL;
        n->n_pairs++;
        if (next_event(b, &ev))
            return -1;
        dn_ynode *value = build_node(b, &ev, depth + 1);
        if (!value)
            return -1;
        n->pairs[n->n_pairs - 1].value = value;
    }
}

/* Consumes a SEQUENCE_START or MAPPING_START event and its whole content. */
static dn_ynode *build_collection(builder *b, yaml_event_t *ev, int depth) {
    int is_seq = ev->type == YAML_SEQUENCE_START_EVENT;
    yaml_mark_t m = ev->start_mark;
    if (is_seq)
        reject_anchor_tag(b, m, ev->data.sequence_start.anchor, ev->data.sequence_start.tag);
    else
        reject_anchor_tag(b, m, ev->data.mapping_start.anchor, ev->data.mapping_start.tag);
    yaml_event_delete(ev);
    if (depth >= DN_YAML_MAX_DEPTH) {
        dn_diag_report(b->d, DN_ERROR, mark_loc(m), "nesting is too deep (more than %d levels)",
                       DN_YAML_MAX_DEPTH);
        return NULL;
    }
    dn_ynode *n = node_new(b, is_seq ? DN_Y_SEQ : DN_Y_MAP, m);
    if (!n)
        return NULL;
    if (is_seq ? fill_seq(b, n, depth) : fill_map(b, n, depth)) {
        dn_ynode_free(n);
        return NULL;
    }
    return n;
}

/* Turns one node-starting event (consumed) into a node. NULL on a fatal
 * error (reported). An alias becomes a DN_Y_INVALID node after an error. */
static dn_ynode *build_node(builder *b, yaml_event_t *ev, int depth) {
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return build_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        return build_collection(b, ev, depth);
    case YAML_ALIAS_EVENT: {
        dn_diag_report(b->d, DN_ERROR, mark_loc(ev->start_mark), "aliases are not supported (*%s)",
                       (const char *)ev->data.alias.anchor);
        dn_ynode *n = node_new(b, DN_Y_INVALID, ev->start_mark);
        yaml_event_delete(ev);
        return n;
    }
    default:
        /* libyaml guarantees a node event here; anything else is a bug. */
        dn_diag_report(b->d, DN_ERROR, mark_loc(ev->start_mark),
                       "internal error: unexpected yaml event %d", (int)ev->type);
        yaml_event_delete(ev);
        return NULL;
    }
}

/* Expects an event of `type` (after a successful parse libyaml guarantees
 * the order, so this only guards against surprises). */
static int expect_event(builder *b, yaml_event_type_t type) {
    yaml_event_t ev;
    if (next_event(b, &ev))
        return -1;
    int ok = ev.type == type;
    if (!ok)
        dn_diag_report(b->d, DN_ERROR, mark_loc(ev.start_mark),
                       "internal error: unexpected yaml event %d", (int)ev.type);
    yaml_event_delete(&ev);
    return ok ? 0 : -1;
}

/* After the first document: only the end of the stream may follow. */
static int expect_stream_end(builder *b) {
    yaml_event_t ev;
    if (next_event(b, &ev))
        return -1;
    int ok = ev.type == YAML_STREAM_END_EVENT;
    if (!ok)
        dn_diag_report(b->d, DN_ERROR, mark_loc(ev.start_mark),
                       "multiple documents are not supported; a spec is one yaml document");
    yaml_event_delete(&ev);
    return ok ? 0 : -1;
}

/* Parses the single document of the stream. NULL if none or on error. */
static dn_ynode *load_document(builder *b) {
    yaml_event_t ev;
    if (expect_event(b, YAML_STREAM_START_EVENT) || next_event(b, &ev))
        return NULL;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        dn_diag_report(b->d, DN_ERROR, (dn_loc){0, 0}, "spec is empty");
        return NULL;
    }
    yaml_event_delete(&ev); /* DOCUMENT_START */
    if (next_event(b, &ev))
        return NULL;
    dn_ynode *root = build_node(b, &ev, 0);
    if (!root || expect_event(b, YAML_DOCUMENT_END_EVENT) || expect_stream_end(b)) {
        dn_ynode_free(root);
        return NULL;
    }
    return root;
}

dn_ynode *dn_yaml_load(const char *text, size_t len, dn_diag *d) {
    builder b;
    memset(&b, 0, sizeof b);
    b.d = d;
    b.text = text;
    b.len = len;
    if (!yaml_parser_initialize(&b.parser)) {
        report_oom(&b);
        return NULL;
    }
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);
    dn_ynode *root = load_document(&b);
    yaml_parser_delete(&b.parser);
    if (root && root->kind == DN_Y_SCALAR && !root->quoted && root->len == 0) {
        /* "---" alone, or a document holding only an empty value */
        dn_diag_report(d, DN_ERROR, (dn_loc){0, 0}, "spec is empty");
        dn_ynode_free(root);
        return NULL;
    }
    return root;
}
