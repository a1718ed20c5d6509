/* sweep.c - `dngen sweep`: grid or random search over dropout rates.
 *
 *   options -> dn_spec_read + dn_spec_parse -> target layers -> variants (rates per target)
 *   -> every variant validated: the spec text again through dn_spec_parse_with,
 *      its rates as overrides (so validate.c alone decides which rates are allowed)
 *   -> per variant, one after another: that parse again into a dn_spec,
 *      dn_emit_trainer (standalone) -> DIR/<name>_v<i>.c -> $CC -> DIR/<name>_v<i>
 *      -> DIR/<name>_v<i> train <trainer options> --metrics DIR/v<i>.csv
 *   -> metrics (plot_csv.c reader) -> table, DIR/sweep.csv, DIR/sweep.svg (plot.c)
 *
 * Children run through posix_spawn with an argv array: no shell, so paths
 * and options need no quoting. Their standard output and error are piped
 * back and written line by line with a "[v1 p=0.3] " prefix. A variant that
 * fails to build or train is reported and the sweep goes on (exit status 3).
 * The seed article picks the dropout rate by comparing validation accuracy
 * over a grid (0.1, 0.3, 0.5) or random rates; that is what the table shows. */
#define _POSIX_C_SOURCE 200809L
#include "sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "dn_runtime.h"
#include "emit.h"
#include "plot.h"
#include "plot_csv.h"
#include "spec.h"

extern char **environ;

#define SWEEP_PATH_MAX 4096
#define SWEEP_RATES_MAX (DN_MAX_LAYERS * 8) /* "0.312/0.455/..." */
#define SWEEP_CC_WORDS 32                   /* words of the compiler command */
#define SWEEP_RNG_TAG 0x535750u             /* 'SWP': the c word of the sweep's DN_RNG_TEST stream */
#define SWEEP_GRID_STEPS 1000.0             /* random rates lie on a 0.001 grid */

static const char sweep_usage[] =
    "usage: dngen sweep SPEC.yaml (--dropout P,P,... | --random K --range LO,HI) [--layer NAME ...]\n"
    "                   [--out-dir DIR] [--cc CC] [--keep] [-- TRAINER-OPTIONS...]\n";

static const char sweep_help[] =
    "\nTrains one variant of the network per dropout rate and compares them.\n\n"
    "  --dropout LIST   grid search: one variant per rate (comma-separated, each in [0, 1)),\n"
    "                   the rate applied to every targeted layer\n"
    "  --random K       random search: K variants, each with its own rate per targeted\n"
    "  --range LO,HI    layer, uniform on the 0.001 grid in [LO, HI) (Philox, seeded by\n"
    "                   the trainer's --seed, else the spec's train.seed)\n"
    "  --layer NAME     target this hidden layer (repeatable); default: every hidden\n"
    "                   layer whose dropout is > 0 in the spec\n"
    "  --out-dir DIR    where sources, binaries and results go (default sweep-<name>)\n"
    "  --cc CC          C compiler command (default: $CC, else cc); split at blanks\n"
    "  --keep           keep each variant's generated source and binary\n"
    "  --               everything after it is passed verbatim to `<trainer> train`\n"
    "                   (e.g. --data DIR --epochs N --seed S --threads T --val-split F)\n\n"
    "Writes DIR/v<i>.csv (metrics per variant), DIR/sweep.csv (the table) and\n"
    "DIR/sweep.svg (train dashed, test solid per variant).\n"
    "exit status: 0 ok, 1 invalid spec, 2 usage or I/O error, 3 a variant failed\n"
    "reference: docs/sweep.md\n";

/* ---- options ------------------------------------------------------------------ */

typedef struct {
    const char *spec;
    const char *dropout;              /* --dropout LIST */
    const char *random;               /* --random K */
    const char *range;                /* --range LO,HI */
    const char *out_dir;              /* --out-dir */
    const char *cc;                   /* --cc */
    const char *layer[DN_MAX_LAYERS]; /* --layer, in command-line order */
    int n_layer;
    int keep, help;
    char **train; /* trainer options: the arguments after "--" */
    int n_train;
} sweep_opts;

/* Prints "dngen sweep: error: MESSAGE" and the usage line to err; returns 2. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static int usage_error(FILE *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("dngen sweep: error: ", err);
    vfprintf(err, fmt, ap);
    fputs("\n", err);
    fputs(sweep_usage, err);
    va_end(ap);
    return DNGEN_EXIT_USAGE;
}

/* If argv[*i] is option `name` ("NAME VALUE" or "NAME=VALUE"), stores the
 * value in *val, moves *i past it and returns 1; returns -1 when the value is
 * missing, 0 when argv[*i] is not this option. */
static int take_value(int argc, char **argv, int *i, const char *name, const char **val) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *i += 1;
    *val = argv[*i];
    return 1;
}

/* Handles the option at argv[*i] (not "--"). Returns 0, or 2 after a usage error. */
static int parse_option(int argc, char **argv, int *i, sweep_opts *o, FILE *err) {
    static const char *const names[] = {"--dropout", "--random", "--range", "--out-dir", "--cc", "--layer"};
    const char *a = argv[*i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
        o->help = 1;
        return 0;
    }
    if (strcmp(a, "--keep") == 0) {
        o->keep = 1;
        return 0;
    }
    const char **slots[] = {&o->dropout, &o->random, &o->range, &o->out_dir, &o->cc, NULL};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const char *val = NULL;
        int t = take_value(argc, argv, i, names[k], &val);
        if (t == 0)
            continue;
        if (t < 0)
            return usage_error(err, "option '%s' needs a value", names[k]);
        if (!slots[k]) { /* --layer */
            if (o->n_layer == DN_MAX_LAYERS)
                return usage_error(err, "more than %d --layer options", DN_MAX_LAYERS);
            o->layer[o->n_layer++] = val;
            return 0;
        }
        if (*slots[k])
            return usage_error(err, "option '%s' given more than once", names[k]);
        *slots[k] = val;
        return 0;
    }
    return usage_error(err, "unknown option '%s' (trainer options go after '--')", a);
}

/* Parses argv[1..argc) into *o. Returns 0, or 2 after a usage error. */
static int parse_args(int argc, char **argv, sweep_opts *o, FILE *err) {
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            o->train = argv + i + 1;
            o->n_train = argc - i - 1;
            break;
        }
        if (a[0] == '-' && a[1] != '\0') {
            int rc = parse_option(argc, argv, &i, o, err);
            if (rc != 0 || o->help)
                return rc;
        } else if (o->spec) {
            return usage_error(err, "more than one spec given ('%s' and '%s')", o->spec, a);
        } else {
            o->spec = a;
        }
    }
    if (!o->spec)
        return usage_error(err, "no spec file given");
    if (!o->dropout == !o->random)
        return usage_error(err, "give exactly one of --dropout LIST and --random K");
    if (o->random && !o->range)
        return usage_error(err, "--random K needs --range LO,HI");
    if (o->range && !o->random)
        return usage_error(err, "--range goes with --random K");
    return 0;
}

/* ---- numbers ------------------------------------------------------------------ */

/* Parses s[0..n) as a plain decimal number ("0.3", ".5", "1e-1", "-0.1";
 * no '+', hex, inf or nan). Returns 0 and stores it in *x, or -1. */
static int parse_decimal(const char *s, size_t n, double *x) {
    char buf[64];
    if (n == 0 || n >= sizeof buf || strspn(s, "0123456789.eE+-") < n || !strchr("0123456789.-", s[0]))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end != '\0' || errno == ERANGE || !isfinite(v))
        return -1;
    *x = v;
    return 0;
}

/* Parses the comma-separated --dropout list into rates[0..*n) (at most max
 * rates). Which rates a layer accepts is validation's business (see
 * check_variants). Returns 0, or 2 after a usage error naming the offending
 * item. */
static int parse_rate_list(const char *text, double *rates, int max, int *n, FILE *err) {
    *n = 0;
    const char *p = text;
    for (;;) {
        size_t len = strcspn(p, ",");
        double v;
        if (parse_decimal(p, len, &v) != 0)
            return usage_error(err, "--dropout: '%.*s' is not a number (in '%s')", (int)len, p, text);
        if (*n == max)
            return usage_error(err, "--dropout: more than %d rates", max);
        rates[(*n)++] = v;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

/* Parses --range "LO,HI" with 0 <= LO < HI <= 1 and turns it into the
 * inclusive grid bounds [*kmin, *kmax] in thousandths (rates kmin/1000 ..
 * kmax/1000, all in [LO, HI)). Returns 0, or 2 after a usage error. */
static int parse_range(const char *text, int *kmin, int *kmax, FILE *err) {
    size_t len = strcspn(text, ",");
    double lo, hi;
    if (text[len] != ',' || parse_decimal(text, len, &lo) != 0 ||
        parse_decimal(text + len + 1, strlen(text + len + 1), &hi) != 0)
        return usage_error(err, "--range: expected LO,HI (two numbers), got '%s'", text);
    if (!(lo >= 0.0 && lo < hi && hi <= 1.0))
        return usage_error(err, "--range: need 0 <= LO < HI <= 1, got '%s'", text);
    *kmin = (int)ceil(lo * SWEEP_GRID_STEPS - 1e-9);
    *kmax = (int)ceil(hi * SWEEP_GRID_STEPS - 1e-9) - 1;
    if (*kmax < *kmin)
        return usage_error(err, "--range: no rate of the 0.001 grid lies in [%s)", text);
    return 0;
}

/* Parses --random K (1..DNGEN_SWEEP_MAX_VARIANTS). Returns 0, or 2 after a usage error. */
static int parse_count(const char *text, int *k, FILE *err) {
    char *end;
    errno = 0;
    long v = text[0] >= '0' && text[0] <= '9' ? strtol(text, &end, 10) : -1;
    if (v < 1 || v > DNGEN_SWEEP_MAX_VARIANTS || errno || *end != '\0')
        return usage_error(err, "--random: expected a count in 1..%d, got '%s'", DNGEN_SWEEP_MAX_VARIANTS, text);
    *k = (int)v;
    return 0;
}

/* Scans the trainer options: stores the value of the last "--seed N" or
 * "--seed=N" in *seed (left as is, the spec's seed, when there is none) and
 * refuses --metrics, which the sweep sets itself. Returns 0, or 2 after a
 * usage error. */
static int scan_trainer_options(const sweep_opts *o, uint64_t *seed, FILE *err) {
    for (int i = 0; i < o->n_train; i++) {
        const char *a = o->train[i], *val = NULL;
        if (strcmp(a, "--metrics") == 0 || strncmp(a, "--metrics=", 10) == 0)
            return usage_error(err, "trainer option --metrics: the sweep writes DIR/v<i>.csv itself");
        if (strcmp(a, "--seed") == 0 && i + 1 < o->n_train)
            val = o->train[++i];
        else if (strncmp(a, "--seed=", 7) == 0)
            val = a + 7;
        if (!val)
            continue;
        char *end;
        errno = 0;
        unsigned long long v = val[0] >= '0' && val[0] <= '9' ? strtoull(val, &end, 10) : 0;
        if (!(val[0] >= '0' && val[0] <= '9') || errno || *end != '\0')
            return usage_error(err, "trainer option --seed: expected an integer in 0..2^64-1, got '%s'", val);
        *seed = (uint64_t)v;
    }
    return 0;
}

/* ---- targets and variants --------------------------------------------------- */

/* One variant of the network and, once run, its results. */
typedef struct {
    double rate[DN_MAX_LAYERS];   /* by targeted layer, in spec order */
    char rates[SWEEP_RATES_MAX];  /* "0.3", or "0.312/0.455" (one per target) */
    char fail[160];               /* "" when it compiled, trained and left metrics */
    dngen_plot_metrics m;         /* its metrics CSV */
    double seconds;               /* sum of the per-epoch seconds */
    double best, final_test, gap; /* table values (NaN when missing) */
} sweep_variant;

/* Fills targets[] with the indices of the layers whose dropout the sweep
 * sets: the --layer names in spec order, each once, else every layer with
 * dropout > 0 (hidden ones: validation allows no other). Whether a layer may
 * take dropout at all is validation's to say (check_variants). Returns
 * their count (>= 1), or -1 after a usage error (unknown name, nothing to
 * target). */
static int resolve_targets(const dn_spec *s, const sweep_opts *o, int *targets, FILE *err) {
    int want[DN_MAX_LAYERS] = {0}, n = 0;
    for (int i = 0; i < o->n_layer; i++) {
        int k = 0;
        while (k < s->n_layers && strcmp(s->layers[k].name, o->layer[i]) != 0)
            k++;
        if (k == s->n_layers) {
            usage_error(err, "--layer: no layer named '%s' in %s", o->layer[i], s->path);
            return -1;
        }
        want[k] = 1;
    }
    for (int k = 0; k < s->n_layers; k++)
        if (o->n_layer ? want[k] : s->layers[k].dropout > 0)
            targets[n++] = k;
    if (n == 0)
        usage_error(err, "no hidden layer of %s has dropout > 0: name the layers with --layer", s->path);
    return n ? n : -1;
}

/* Appends rate text r to v->rates, '/'-separated. */
static void rates_append(sweep_variant *v, const char *r) {
    size_t len = strlen(v->rates);
    snprintf(v->rates + len, sizeof v->rates - len, "%s%s", len ? "/" : "", r);
}

/* Makes the grid variants: variant i applies rates[i] to every target. */
static void make_grid(sweep_variant *vs, const double *rates, int n, int nt) {
    for (int i = 0; i < n; i++) {
        for (int t = 0; t < nt; t++)
            vs[i].rate[t] = rates[i];
        dn_format_rate(vs[i].rates, sizeof vs[i].rates, rates[i]);
    }
}

/* Makes k random variants: the rate of variant i at target layer
 * targets[t] is (kmin + floor(w * (kmax - kmin + 1) / 2^32)) / 1000 with
 * w = dn_rand_u32(seed, DN_RNG_TEST, i, targets[t], SWEEP_RNG_TAG, 0): uniform
 * on the 0.001 grid in [LO, HI), a pure function of (seed, i, layer). */
static void make_random(sweep_variant *vs, int k, const int *targets, int nt, int kmin, int kmax,
                        uint64_t seed) {
    uint64_t span = (uint64_t)(kmax - kmin + 1);
    for (int i = 0; i < k; i++) {
        for (int t = 0; t < nt; t++) {
            uint32_t w = dn_rand_u32(seed, DN_RNG_TEST, (uint32_t)i, (uint32_t)targets[t], SWEEP_RNG_TAG, 0);
            int q = kmin + (int)(((uint64_t)w * span) >> 32);
            char r[16];
            vs[i].rate[t] = q / SWEEP_GRID_STEPS;
            snprintf(r, sizeof r, "%.3f", vs[i].rate[t]);
            rates_append(&vs[i], r);
        }
    }
}

/* Builds the variant list from the options. Returns 0 with *vs (calloc'd)
 * and *nv set, or 2 after a usage error (or out of memory). */
static int make_variants(const sweep_opts *o, const int *targets, int nt, uint64_t seed, sweep_variant **vs,
                         int *nv, FILE *err) {
    double rates[DNGEN_SWEEP_MAX_VARIANTS];
    int n = 0, kmin = 0, kmax = 0, rc;
    if (o->dropout)
        rc = parse_rate_list(o->dropout, rates, DNGEN_SWEEP_MAX_VARIANTS, &n, err);
    else if ((rc = parse_count(o->random, &n, err)) == 0)
        rc = parse_range(o->range, &kmin, &kmax, err);
    if (rc != 0)
        return rc;
    *vs = calloc((size_t)n, sizeof **vs);
    if (!*vs) {
        fprintf(err, "dngen sweep: error: out of memory\n");
        return DNGEN_EXIT_USAGE;
    }
    if (o->dropout)
        make_grid(*vs, rates, n, nt);
    else
        make_random(*vs, n, targets, nt, kmin, kmax, seed);
    *nv = n;
    return 0;
}

/* ---- files -------------------------------------------------------------------- */

/* Creates directory path and its missing parents (like mkdir -p). Returns 0,
 * or -1 with errno set. */
static int make_dirs(const char *path) {
    char buf[SWEEP_PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* Writes len bytes atomically to path. Returns 0, or -1 after a message on err. */
static int write_file(const char *path, const char *data, size_t len, FILE *err) {
    char msg[DN_ERR_MAX];
    msg[0] = '\0';
    if (dn_write_file_atomic(path, data, len, msg) == 0)
        return 0;
    fprintf(err, "dngen sweep: error: %s\n", msg[0] ? msg : path);
    return -1;
}

/* ---- child processes -------------------------------------------------------- */

/* Output of a child read from one pipe and written out line by line. */
typedef struct {
    int fd;    /* read end; -1 once at end of file */
    FILE *dst; /* where the prefixed lines go */
    size_t len;
    char buf[4096];
} line_sink;

/* Writes one line (without its newline or CR) to s->dst behind prefix. */
static void sink_emit(line_sink *s, const char *prefix, const char *line, size_t n) {
    if (n > 0 && line[n - 1] == '\r')
        n--;
    fprintf(s->dst, "%s%.*s\n", prefix, (int)n, line);
    fflush(s->dst);
}

/* Writes out every complete line held in s, and the incomplete rest too at
 * end of file (`eof`) or when it fills the whole buffer. */
static void sink_drain(line_sink *s, const char *prefix, int eof) {
    size_t start = 0;
    for (size_t i = 0; i < s->len; i++) {
        if (s->buf[i] == '\n') {
            sink_emit(s, prefix, s->buf + start, i - start);
            start = i + 1;
        }
    }
    if (start < s->len && (eof || (start == 0 && s->len == sizeof s->buf))) {
        sink_emit(s, prefix, s->buf + start, s->len - start);
        start = s->len;
    }
    memmove(s->buf, s->buf + start, s->len - start);
    s->len -= start;
}

/* Reads what is available on s->fd and writes out the complete lines; at end
 * of file (or a read error) writes the rest and closes the pipe. */
static void sink_read(line_sink *s, const char *prefix) {
    ssize_t got = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (got <= 0) {
        sink_drain(s, prefix, 1);
        close(s->fd);
        s->fd = -1;
        return;
    }
    s->len += (size_t)got;
    sink_drain(s, prefix, 0);
}

/* Copies both pipes to their destinations until both reach end of file. */
static void pump(line_sink *a, line_sink *b, const char *prefix) {
    line_sink *sinks[2] = {a, b};
    while (a->fd >= 0 || b->fd >= 0) {
        struct pollfd p[2];
        line_sink *which[2];
        nfds_t n = 0;
        for (int i = 0; i < 2; i++) {
            if (sinks[i]->fd < 0)
                continue;
            p[n].fd = sinks[i]->fd;
            p[n].events = POLLIN;
            p[n].revents = 0;
            which[n++] = sinks[i];
        }
        if (poll(p, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            for (nfds_t i = 0; i < n; i++) /* cannot wait: read (blocking) in turn */
                while (which[i]->fd >= 0)
                    sink_read(which[i], prefix);
            return;
        }
        for (nfds_t i = 0; i < n; i++)
            if (p[i].revents)
                sink_read(which[i], prefix);
    }
}

/* Marks fd close-on-exec. */
static void set_cloexec(int fd) {
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0)
        fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

/* Runs argv (argv[0] looked up in PATH when `search`) with standard input
 * from /dev/null; each line the child writes to its standard output goes to
 * out_dst, each line of its standard error to err_dst, both behind prefix.
 * Returns the exit status (0..255), 128 + the signal if it was killed, or
 * -1 if it could not be started (reason on err). */
static int run_child(char *const *argv, int search, const char *prefix, FILE *out_dst, FILE *err_dst, FILE *err) {
    int po[2], pe[2];
    if (pipe(po) != 0) {
        fprintf(err, "dngen sweep: error: pipe: %s\n", strerror(errno));
        return -1;
    }
    if (pipe(pe) != 0) {
        fprintf(err, "dngen sweep: error: pipe: %s\n", strerror(errno));
        close(po[0]);
        close(po[1]);
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        set_cloexec(po[i]);
        set_cloexec(pe[i]);
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    fflush(out_dst);
    fflush(err_dst);
    fflush(err);
    pid_t pid;
    int rc = search ? posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ)
                    : posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(po[1]);
    close(pe[1]);
    if (rc != 0) {
        close(po[0]);
        close(pe[0]);
        fprintf(err, "dngen sweep: error: cannot run '%s': %s\n", argv[0], strerror(rc));
        return -1;
    }
    line_sink so = {.fd = po[0], .dst = out_dst}, se = {.fd = pe[0], .dst = err_dst};
    pump(&so, &se, prefix);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

/* Describes a failed child status into v->fail ("compiling failed (exit 1)"). */
static void set_failure(sweep_variant *v, const char *what, int status) {
    if (status < 0)
        snprintf(v->fail, sizeof v->fail, "%s: could not start", what);
    else if (status > 128)
        snprintf(v->fail, sizeof v->fail, "%s: killed by signal %d", what, status - 128);
    else
        snprintf(v->fail, sizeof v->fail, "%s failed (exit %d)", what, status);
}

/* ---- one variant -------------------------------------------------------------- */

/* Everything the variants share. */
typedef struct {
    const sweep_opts *o;
    const char *text;             /* the spec file's text, read once */
    size_t len;
    const dn_spec *spec;          /* the spec as the file says */
    dn_spec *work;                /* the spec of the variant at hand */
    int targets[DN_MAX_LAYERS];   /* indices of the targeted layers, spec order */
    int nt;
    const char *dir;              /* output directory */
    char *cc[SWEEP_CC_WORDS + 1]; /* compiler command words (into cc_text) */
    char cc_text[1024];
    FILE *out, *err;
} sweep_ctx;

/* The compiler command: --cc, else $CC, else "cc", split at blanks into
 * c->cc. Returns 0, or 2 after a usage error (blank, too long, too many words). */
static int split_cc(sweep_ctx *c) {
    const char *env = getenv("CC");
    const char *cmd = c->o->cc ? c->o->cc : env && env[0] ? env : "cc";
    if (strlen(cmd) >= sizeof c->cc_text)
        return usage_error(c->err, "the compiler command is too long");
    strcpy(c->cc_text, cmd);
    int n = 0;
    for (char *p = strtok(c->cc_text, " \t"); p; p = strtok(NULL, " \t")) {
        if (n == SWEEP_CC_WORDS)
            return usage_error(c->err, "the compiler command has more than %d words", SWEEP_CC_WORDS);
        c->cc[n++] = p;
    }
    c->cc[n] = NULL;
    return n ? 0 : usage_error(c->err, "the compiler command is empty");
}

/* Formats DIR/<fmt...> into dst (SWEEP_PATH_MAX bytes). Returns 0, or -1 if it does not fit. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static int path_of(char *dst, const char *dir, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof name)
        return -1;
    n = snprintf(dst, SWEEP_PATH_MAX, "%s/%s", dir, name);
    return n < 0 || n >= SWEEP_PATH_MAX ? -1 : 0;
}

/* Validates the spec text with variant v's rates as overrides (dropout of
 * each target) into *out; diagnostics go to `diag` (NULL: none). Returns
 * 0 when the variant is a valid spec, else -1. */
static int parse_variant(const sweep_ctx *c, const sweep_variant *v, dn_spec *out, FILE *diag) {
    dn_override ov[DN_MAX_LAYERS];
    char rate[DN_MAX_LAYERS][32];
    for (int t = 0; t < c->nt; t++) {
        dn_format_rate(rate[t], sizeof rate[t], v->rate[t]);
        ov[t] = (dn_override){c->spec->layers[c->targets[t]].name, "dropout", rate[t]};
    }
    dn_overrides set = {ov, c->nt, "dngen sweep"};
    dn_diag d;
    dn_diag_init(&d, diag, c->spec->path);
    return dn_spec_parse_with(c->text, c->len, c->spec->path, &set, out, &d) == 0 ? 0 : -1;
}

/* Emits variant v's standalone trainer into src. Returns 0, or -1 with v->fail set. */
static int emit_variant(sweep_ctx *c, sweep_variant *v, const char *src) {
    if (parse_variant(c, v, c->work, NULL) != 0) { /* check_variants passed it: only out of memory */
        snprintf(v->fail, sizeof v->fail, "validating its spec failed (out of memory)");
        return -1;
    }
    dn_buf text = {0};
    dn_emit_opts eo = {.standalone = 1};
    int rc = dn_emit_trainer(c->work, &eo, &text);
    if (rc != 0 || text.oom)
        snprintf(v->fail, sizeof v->fail, "code generation failed (out of memory or missing template)");
    else if ((rc = write_file(src, text.data, text.len, c->err)) != 0)
        snprintf(v->fail, sizeof v->fail, "cannot write the generated source");
    dn_buf_free(&text);
    return rc ? -1 : 0;
}

/* Compiles src into bin with the compiler command. Returns 0, or -1 with v->fail set. */
static int compile_variant(sweep_ctx *c, sweep_variant *v, const char *src, const char *bin, const char *prefix) {
    static const char *const flags[] = {"-std=c11", "-O2", "-march=native", "-fopenmp"};
    char *argv[SWEEP_CC_WORDS + 12];
    int n = 0;
    for (; c->cc[n]; n++)
        argv[n] = c->cc[n];
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        argv[n++] = (char *)flags[i];
    argv[n++] = (char *)src;
    argv[n++] = "-o";
    argv[n++] = (char *)bin;
    argv[n++] = "-lz";
    argv[n++] = "-lm";
    argv[n] = NULL;
    fprintf(c->out, "%scompiling %s\n", prefix, src);
    int st = run_child(argv, 1, prefix, c->err, c->err, c->err);
    if (st == 0)
        return 0;
    set_failure(v, "compiling", st);
    return -1;
}

/* Runs `bin train <trainer options> --metrics csv`. Returns 0, or -1 with v->fail set. */
static int train_variant(sweep_ctx *c, sweep_variant *v, const char *bin, const char *csv, const char *prefix) {
    char **argv = calloc((size_t)c->o->n_train + 5, sizeof *argv);
    if (!argv) {
        snprintf(v->fail, sizeof v->fail, "training: out of memory");
        return -1;
    }
    int n = 0;
    argv[n++] = (char *)bin;
    argv[n++] = "train";
    for (int i = 0; i < c->o->n_train; i++)
        argv[n++] = c->o->train[i];
    argv[n++] = "--metrics";
    argv[n++] = (char *)csv;
    argv[n] = NULL;
    int st = run_child(argv, 0, prefix, c->out, c->err, c->err);
    free(argv);
    if (st == 0)
        return 0;
    set_failure(v, "training", st);
    return -1;
}

/* Index of the field called `name` on the current line of c, or -1. */
static long csv_column(dn_csv *c, const char *name) {
    dn_csv_field f;
    for (long i = 0; dn_csv_next_field(c, &f); i++)
        if (f.n == strlen(name) && memcmp(f.p, name, f.n) == 0)
            return i;
    return -1;
}

/* Sum of the numbers in the column named `name` of CSV text data[0..len)
 * (header first; empty and non-numeric fields skipped). NaN when the
 * column is absent. */
static double csv_column_sum(const char *data, size_t len, const char *name) {
    dn_csv c;
    dn_csv_init(&c, NULL, data, len);
    long col = dn_csv_next_record(&c) ? csv_column(&c, name) : -1;
    if (col < 0)
        return NAN;
    double sum = 0.0, x;
    while (dn_csv_next_record(&c)) {
        dn_csv_field f;
        for (long i = 0; dn_csv_next_field(&c, &f); i++)
            if (i == col && dn_csv_number(f.p, f.n, &x) == DN_CSV_NUM_OK)
                sum += x;
    }
    return sum;
}

/* Reads the metrics CSV of a variant into v->m and v->seconds. Returns 0, or
 * -1 with v->fail set. */
static int load_metrics(sweep_variant *v, const char *csv) {
    size_t len = 0;
    char *data = NULL, why[DN_ERR_MAX];
    int read = dn_file_read(csv, DNGEN_PLOT_MAX_BYTES, &data, &len, why);
    if (read != 0) {
        if (read == DN_FILE_OPEN)
            snprintf(v->fail, sizeof v->fail, "no metrics file (the trainer wrote none)");
        else
            snprintf(v->fail, sizeof v->fail, "cannot read the metrics: %.120s", why);
        return -1;
    }
    unsigned want = 0, need = DNGEN_PLOT_BIT(DNGEN_PLOT_TRAIN_ACC) | DNGEN_PLOT_BIT(DNGEN_PLOT_TEST_ACC);
    for (int col = 0; col < DNGEN_PLOT_NCOLS; col++)
        want |= DNGEN_PLOT_BIT(col);
    char msg[512];
    int rc = dngen_plot_csv_parse(csv, data, len, want, need, &v->m, msg, sizeof msg);
    if (rc != 0)
        snprintf(v->fail, sizeof v->fail, "bad metrics: %.140s", msg);
    else if (v->m.rmse) { /* the table ranks by accuracy, the higher the better */
        snprintf(v->fail, sizeof v->fail, "a regression run (RMSE): sweep compares accuracy only, so far");
        rc = -1;
    } else {
        v->seconds = csv_column_sum(data, len, "seconds");
    }
    free(data);
    return rc;
}

/* Builds, trains and reads the metrics of variant number i (1-based) into
 * v; on failure v->fail says what went wrong (also reported on err). */
static void run_variant(sweep_ctx *c, sweep_variant *v, int i) {
    char src[SWEEP_PATH_MAX], bin[SWEEP_PATH_MAX], csv[SWEEP_PATH_MAX], prefix[SWEEP_RATES_MAX + 32];
    snprintf(prefix, sizeof prefix, "[v%d p=%s] ", i, v->rates);
    if (path_of(src, c->dir, "%s_v%d.c", c->spec->name, i) || path_of(bin, c->dir, "%s_v%d", c->spec->name, i) ||
        path_of(csv, c->dir, "v%d.csv", i)) {
        snprintf(v->fail, sizeof v->fail, "the output directory's name is too long");
    } else if (emit_variant(c, v, src) == 0 && compile_variant(c, v, src, bin, prefix) == 0) {
        if (unlink(csv) != 0 && errno != ENOENT) /* no stale metrics from an earlier sweep */
            snprintf(v->fail, sizeof v->fail, "cannot remove the old metrics: %s", strerror(errno));
        else if (train_variant(c, v, bin, csv, prefix) == 0 && load_metrics(v, csv) == 0 && !c->o->keep) {
            unlink(src);
            unlink(bin);
        }
    }
    if (v->fail[0])
        fprintf(c->err, "dngen sweep: error: v%d (p=%s): %s (its files are left in %s)\n", i, v->rates, v->fail, c->dir);
}

/* ---- results -------------------------------------------------------------------- */

/* Last value of column col of m, or NaN. */
static double last_of(const dngen_plot_metrics *m, int col) {
    return m->col[col] && m->n ? m->col[col][m->n - 1] : NAN;
}

/* Largest non-NaN value of column col of m, or NaN. */
static double max_of(const dngen_plot_metrics *m, int col) {
    double best = NAN;
    for (size_t r = 0; m->col[col] && r < m->n; r++)
        if (!isnan(m->col[col][r]) && !(m->col[col][r] <= best))
            best = m->col[col][r];
    return best;
}

/* Whether every variant that ran has validation accuracy (the selection
 * column is val_acc then, else test_acc). False when none ran. */
static int all_have_val(const sweep_variant *vs, int nv) {
    int any = 0;
    for (int i = 0; i < nv; i++) {
        if (vs[i].fail[0])
            continue;
        if (isnan(max_of(&vs[i].m, DNGEN_PLOT_VAL_ACC)))
            return 0;
        any = 1;
    }
    return any;
}

/* Fills the table values of each variant that ran, selecting on column sel.
 * Returns the index of the best variant by that value (first of equals), or -1. */
static int summarize(sweep_variant *vs, int nv, int sel) {
    int best = -1;
    for (int i = 0; i < nv; i++) {
        sweep_variant *v = &vs[i];
        if (v->fail[0])
            continue;
        v->best = max_of(&v->m, sel);
        v->final_test = last_of(&v->m, DNGEN_PLOT_TEST_ACC);
        v->gap = last_of(&v->m, DNGEN_PLOT_TRAIN_ACC) - v->final_test;
        if (!isnan(v->best) && (best < 0 || v->best > vs[best].best))
            best = i;
    }
    return best;
}

/* Formats x with printf format f into dst (32 bytes), or `missing` when x is NaN. */
static const char *num(char *dst, const char *f, double x, const char *missing) {
    if (isnan(x))
        snprintf(dst, 32, "%s", missing);
    else
        snprintf(dst, 32, f, x);
    return dst;
}

/* Prints the results table (best marked '*') and a line naming the best. */
static void print_table(FILE *out, const sweep_variant *vs, int nv, const char *sel_name, int best) {
    int rw = 15;
    for (int i = 0; i < nv; i++)
        rw = (int)strlen(vs[i].rates) > rw ? (int)strlen(vs[i].rates) : rw;
    int bw = (int)strlen(sel_name);
    fprintf(out, "\n%-7s  %-*s  %s  final_test_acc  train_test_gap  seconds\n", "variant", rw, "rates", sel_name);
    for (int i = 0; i < nv; i++) {
        char name[32], a[32], b[32], g[32], s[32];
        snprintf(name, sizeof name, "v%d%s", i + 1, i == best ? " *" : "");
        fprintf(out, "%-7s  %-*s  ", name, rw, vs[i].rates);
        if (vs[i].fail[0])
            fprintf(out, "FAILED: %s\n", vs[i].fail);
        else
            fprintf(out, "%-*s  %-14s  %-14s  %s\n", bw, num(a, "%.4f", vs[i].best, "-"),
                    num(b, "%.4f", vs[i].final_test, "-"), num(g, "%+.4f", vs[i].gap, "-"),
                    num(s, "%.2f", vs[i].seconds, "-"));
    }
    if (best >= 0)
        fprintf(out, "* best by %s: v%d (p=%s)\n", sel_name, best + 1, vs[best].rates);
}

/* Writes DIR/sweep.csv: the table's columns, empty fields for failed variants.
 * Returns 0, or -1 after a message on err. */
static int write_csv(const sweep_ctx *c, const sweep_variant *vs, int nv, const char *sel_name) {
    char path[SWEEP_PATH_MAX], a[32], b[32], g[32], s[32];
    if (path_of(path, c->dir, "sweep.csv") != 0) {
        fprintf(c->err, "dngen sweep: error: the output directory's name is too long\n");
        return -1;
    }
    dn_buf t = {0};
    dn_buf_printf(&t, "variant,rates,%s,final_test_acc,train_test_gap,seconds\n", sel_name);
    for (int i = 0; i < nv; i++) {
        const sweep_variant *v = &vs[i];
        if (v->fail[0])
            dn_buf_printf(&t, "v%d,%s,,,,\n", i + 1, v->rates);
        else
            dn_buf_printf(&t, "v%d,%s,%s,%s,%s,%s\n", i + 1, v->rates, num(a, "%.6f", v->best, ""),
                          num(b, "%.6f", v->final_test, ""), num(g, "%.6f", v->gap, ""),
                          num(s, "%.3f", v->seconds, ""));
    }
    int rc = -1;
    if (t.oom)
        fprintf(c->err, "dngen sweep: error: out of memory\n");
    else
        rc = write_file(path, t.data, t.len, c->err);
    dn_buf_free(&t);
    return rc;
}

/* Writes DIR/sweep.svg: train (dashed) and test (solid) accuracy of every
 * variant that ran, labeled "p=RATES". Returns 0, or -1 after a message on err. */
static int write_svg(const sweep_ctx *c, const sweep_variant *vs, int nv) {
    char path[SWEEP_PATH_MAX], title[DN_NAME_MAX + 64], msg[512];
    dngen_plot_metrics *ms = calloc((size_t)nv, sizeof *ms);
    dngen_plot_run *runs = calloc((size_t)nv, sizeof *runs);
    char(*labels)[SWEEP_RATES_MAX + 8] = calloc((size_t)nv, sizeof *labels);
    int rc = -1;
    size_t n = 0;
    if (!ms || !runs || !labels || path_of(path, c->dir, "sweep.svg") != 0) {
        fprintf(c->err, "dngen sweep: error: out of memory, or the output directory's name is too long\n");
        goto done;
    }
    for (int i = 0; i < nv; i++) {
        if (vs[i].fail[0])
            continue;
        ms[n] = vs[i].m; /* shallow: only train and test are drawn */
        ms[n].col[DNGEN_PLOT_VAL_ACC] = ms[n].col[DNGEN_PLOT_VAL_LOSS] = NULL;
        snprintf(labels[n], sizeof labels[n], "p=%s", vs[i].rates);
        runs[n].label = labels[n];
        runs[n].m = &ms[n];
        n++;
    }
    snprintf(title, sizeof title, "Dropout sweep of %s: accuracy", c->spec->name);
    char *svg = NULL;
    size_t len = 0;
    if (dngen_plot_render(runs, n, DNGEN_PLOT_METRIC_ACC, title, &svg, &len, msg, sizeof msg) != 0)
        fprintf(c->err, "dngen sweep: %s\n", msg);
    else
        rc = write_file(path, svg, len, c->err);
    free(svg);
done:
    free(ms);
    free(runs);
    free(labels);
    return rc;
}

/* Prints the table and writes sweep.csv and sweep.svg. Returns 0, or -1 if
 * a file could not be written. */
static int report(const sweep_ctx *c, sweep_variant *vs, int nv) {
    int use_val = all_have_val(vs, nv);
    const char *sel_name = use_val ? "best_val_acc" : "best_test_acc";
    int best = summarize(vs, nv, use_val ? DNGEN_PLOT_VAL_ACC : DNGEN_PLOT_TEST_ACC);
    print_table(c->out, vs, nv, sel_name, best);
    if (!use_val)
        fprintf(c->out, "(no val_acc column: selected on test accuracy, an optimistic estimate; "
                        "pass --val-split F to the trainer to select on validation data)\n");
    int rc = write_csv(c, vs, nv, sel_name);
    int ran = 0;
    for (int i = 0; i < nv; i++)
        ran += !vs[i].fail[0];
    if (ran && write_svg(c, vs, nv) != 0)
        rc = -1;
    fprintf(c->out, "wrote %s/sweep.csv%s%s\n", c->dir, ran ? " and " : "", ran ? "sweep.svg" : "");
    fflush(c->out);
    return rc;
}

/* ---- driver -------------------------------------------------------------------- */

/* Reads the spec into *text (*len bytes; the caller frees it; kept so that
 * every variant is the same text) and validates it into *s, diagnostics on
 * err. Returns 0, 1 (invalid) or 2 (unreadable). */
static int load_spec(const char *path, dn_spec *s, char **text, size_t *len, FILE *err) {
    dn_diag d;
    dn_diag_init(&d, err, path);
    *text = dn_spec_read(path, len, &d);
    if (!*text)
        return DNGEN_EXIT_USAGE;
    if (dn_spec_parse(*text, *len, path, s, &d) != 0) {
        fprintf(err, "%s: %d error%s\n", path, d.n_errors, d.n_errors == 1 ? "" : "s");
        return DNGEN_EXIT_INVALID_SPEC;
    }
    return 0;
}

/* Validates every variant before anything is built: rates that the spec's
 * rules refuse (a rate outside [0, 1), dropout on the output layer) stop
 * the sweep as a usage error, with validation's own diagnostics and a note
 * that the value comes from the sweep. Returns 0, or 2. */
static int check_variants(sweep_ctx *c, const sweep_variant *vs, int nv) {
    for (int i = 0; i < nv; i++) {
        if (parse_variant(c, &vs[i], c->work, NULL) == 0)
            continue;
        parse_variant(c, &vs[i], c->work, c->err); /* again, to say why */
        return usage_error(c->err, "v%d (p=%s) is not a valid network (see above)", i + 1, vs[i].rates);
    }
    return 0;
}

/* Prints which layers the sweep targets and where its output goes. */
static void print_plan(const sweep_ctx *c, int nv) {
    fprintf(c->out, "dngen sweep: %d variant%s of %s, dropout of", nv, nv == 1 ? "" : "s", c->spec->name);
    for (int t = 0; t < c->nt; t++)
        fprintf(c->out, "%s %s", t ? "," : "", c->spec->layers[c->targets[t]].name);
    fprintf(c->out, " (%s search), output in %s/\n", c->o->dropout ? "grid" : "random", c->dir);
    fflush(c->out);
}

/* Sets up c (spec loaded into *c->spec beforehand) and the variants.
 * Returns 0, or an exit status after a message. */
static int prepare(sweep_ctx *c, sweep_variant **vs, int *nv, char *dir_buf) {
    uint64_t seed = c->spec->train.seed;
    int rc;
    if ((c->nt = resolve_targets(c->spec, c->o, c->targets, c->err)) < 0)
        return DNGEN_EXIT_USAGE;
    if ((rc = scan_trainer_options(c->o, &seed, c->err)) != 0 || (rc = split_cc(c)) != 0)
        return rc;
    if ((rc = make_variants(c->o, c->targets, c->nt, seed, vs, nv, c->err)) != 0 ||
        (rc = check_variants(c, *vs, *nv)) != 0)
        return rc;
    if (c->o->out_dir)
        snprintf(dir_buf, SWEEP_PATH_MAX, "%s", c->o->out_dir);
    else
        snprintf(dir_buf, SWEEP_PATH_MAX, "sweep-%s", c->spec->name);
    size_t n = strlen(dir_buf);
    while (n > 1 && dir_buf[n - 1] == '/')
        dir_buf[--n] = '\0';
    c->dir = dir_buf;
    if (make_dirs(dir_buf) != 0) {
        fprintf(c->err, "dngen sweep: error: cannot create directory %s: %s\n", dir_buf, strerror(errno));
        return DNGEN_EXIT_USAGE;
    }
    return 0;
}

/* Runs every variant in order, then reports. Returns the exit status. */
static int run_all(sweep_ctx *c, sweep_variant *vs, int nv) {
    print_plan(c, nv);
    int failed = 0;
    for (int i = 0; i < nv; i++) {
        run_variant(c, &vs[i], i + 1);
        failed += vs[i].fail[0] != '\0';
    }
    int rc = report(c, vs, nv);
    if (failed) {
        fprintf(c->err, "dngen sweep: %d of %d variants failed:", failed, nv);
        for (int i = 0; i < nv; i++)
            if (vs[i].fail[0])
                fprintf(c->err, " v%d", i + 1);
        fprintf(c->err, "\n");
        return DNGEN_SWEEP_EXIT_VARIANT;
    }
    return rc == 0 ? DNGEN_EXIT_OK : DNGEN_EXIT_USAGE;
}

int dngen_sweep_main(int argc, char **argv, FILE *out, FILE *err) {
    sweep_opts o;
    int rc = parse_args(argc, argv, &o, err);
    if (rc != 0 || o.help) {
        if (o.help)
            fprintf(out, "%s%s", sweep_usage, sweep_help);
        return rc;
    }
    sweep_ctx *c = calloc(1, sizeof *c);
    dn_spec *spec = calloc(1, sizeof *spec), *work = calloc(1, sizeof *work);
    char *dir = malloc(SWEEP_PATH_MAX);
    char *text = NULL;
    size_t len = 0;
    sweep_variant *vs = NULL;
    int nv = 0;
    if (!c || !spec || !work || !dir) {
        fprintf(err, "dngen sweep: error: out of memory\n");
        rc = DNGEN_EXIT_USAGE;
    } else if ((rc = load_spec(o.spec, spec, &text, &len, err)) == 0) {
        *c = (sweep_ctx){.o = &o, .text = text, .len = len, .spec = spec, .work = work, .out = out, .err = err};
        if ((rc = prepare(c, &vs, &nv, dir)) == 0)
            rc = run_all(c, vs, nv);
    }
    free(text);
    for (int i = 0; i < nv; i++)
        dngen_plot_metrics_free(&vs[i].m);
    free(vs);
    free(dir);
    free(work);
    free(spec);
    free(c);
    return rc;
}
