/* replay.c - runs the fuzz seed corpora and crash reproducers through the
 * libFuzzer harnesses, without libFuzzer (a CTest test, built by the normal
 * compiler; in the sanitizer build it also catches memory errors).
 *
 * Each harness file tests/fuzz/fuzz_<name>.c is compiled into this program
 * with -DLLVMFuzzerTestOneInput=fuzz_<name>_one, so the replay runs exactly
 * the harness code, invariant checks included (they abort on a violation).
 *
 * Inputs:  tests/fuzz/corpus/<name>/...  seeds of harness <name>
 *          tests/fuzz/regress/<name>-<n> reproducers of findings of harness <name>
 *
 * Usage: fuzz_replay [FUZZ_DIR]          every input under FUZZ_DIR
 *                                        (default: the source tree's tests/fuzz)
 *        fuzz_replay -h NAME FILE...     the given files through harness NAME
 * Each input is named on stderr before it runs, so a crash points at it. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fuzz_spec_one(const uint8_t *data, size_t size);
int fuzz_idx_one(const uint8_t *data, size_t size);
int fuzz_safetensors_one(const uint8_t *data, size_t size);
int fuzz_csv_one(const uint8_t *data, size_t size);
int fuzz_table_one(const uint8_t *data, size_t size);
int fuzz_npy_one(const uint8_t *data, size_t size);

typedef struct {
    const char *name;
    int (*run)(const uint8_t *data, size_t size);
    int inputs;
} replay_harness;

static replay_harness harnesses[] = {
    {"spec", fuzz_spec_one, 0},
    {"idx", fuzz_idx_one, 0},
    {"safetensors", fuzz_safetensors_one, 0},
    {"csv", fuzz_csv_one, 0},
    {"table", fuzz_table_one, 0},
    {"npy", fuzz_npy_one, 0},
};
#define N_HARNESSES (sizeof harnesses / sizeof harnesses[0])

/* The harness called name (len bytes), or NULL. */
static replay_harness *find_harness(const char *name, size_t len) {
    for (size_t i = 0; i < N_HARNESSES; i++)
        if (strlen(harnesses[i].name) == len && !strncmp(harnesses[i].name, name, len))
            return &harnesses[i];
    return NULL;
}

/* Runs one file through a harness. Returns 0, or -1 if it cannot be read. */
static int replay_file(replay_harness *h, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap)
            break;
        uint8_t *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
        } else {
            buf = nb;
            cap *= 2;
        }
    }
    int bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: read error or out of memory\n", path);
        free(buf);
        return -1;
    }
    /* An exactly sized copy, so reading past the input is caught (ASan). */
    uint8_t *data = malloc(len ? len : 1);
    if (!data) {
        free(buf);
        return -1;
    }
    memcpy(data, buf, len);
    free(buf);
    fprintf(stderr, "replay %-11s %s\n", h->name, path);
    fflush(stderr);
    h->run(data, len);
    free(data);
    h->inputs++;
    return 0;
}

/* Sorts directory entries by name (stable, reproducible order). */
static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int not_hidden(const struct dirent *e) { return e->d_name[0] != '.'; }

/* Replays every file in dir. With h == NULL, each file name picks its
 * harness by its "<name>-" prefix. Returns the number of failures. */
static int replay_dir(const char *dir, replay_harness *h) {
    struct dirent **list;
    int n = scandir(dir, &list, not_hidden, by_name);
    if (n < 0) {
        perror(dir);
        return 1;
    }
    int failures = 0;
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        replay_harness *use = h;
        if (!use) {
            const char *dash = strrchr(name, '-');
            use = dash ? find_harness(name, (size_t)(dash - name)) : NULL;
            if (!use) {
                fprintf(stderr, "%s/%s: name must be <harness>-<n>\n", dir, name);
                failures++;
            }
        }
        if (use) {
            size_t plen = strlen(dir) + strlen(name) + 2;
            char *path = malloc(plen);
            if (!path) {
                failures++;
            } else {
                snprintf(path, plen, "%s/%s", dir, name);
                failures += replay_file(use, path) != 0;
                free(path);
            }
        }
        free(list[i]);
    }
    free(list);
    return failures;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "-h")) {
        replay_harness *h = find_harness(argv[2], strlen(argv[2]));
        if (!h) {
            fprintf(stderr, "fuzz_replay: unknown harness '%s'\n", argv[2]);
            return 2;
        }
        int failures = 0;
        for (int i = 3; i < argc; i++)
            failures += replay_file(h, argv[i]) != 0;
        return failures ? 1 : 0;
    }
#ifdef DNGEN_FUZZ_DIR
    const char *root = argc > 1 ? argv[1] : DNGEN_FUZZ_DIR;
#else
    if (argc < 2) {
        fprintf(stderr, "usage: fuzz_replay FUZZ_DIR | fuzz_replay -h NAME FILE...\n");
        return 2;
    }
    const char *root = argv[1];
#endif
    size_t cap = strlen(root) + 64;
    char *dir = malloc(cap);
    if (!dir)
        return 2;
    int failures = 0;
    for (size_t i = 0; i < N_HARNESSES; i++) {
        snprintf(dir, cap, "%s/corpus/%s", root, harnesses[i].name);
        failures += replay_dir(dir, &harnesses[i]);
        if (harnesses[i].inputs == 0) {
            fprintf(stderr, "%s: no seed inputs\n", dir);
            failures++;
        }
    }
    snprintf(dir, cap, "%s/regress", root);
    failures += replay_dir(dir, NULL);
    free(dir);
    for (size_t i = 0; i < N_HARNESSES; i++)
        printf("fuzz_replay: %-11s %d inputs\n", harnesses[i].name, harnesses[i].inputs);
    if (failures)
        fprintf(stderr, "fuzz_replay: %d failure(s)\n", failures);
    return failures ? 1 : 0;
}
