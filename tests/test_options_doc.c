/* test_options_doc.c - README.md's table of options says what the option
 * table (MHI_OPTIONS, src/options.h) says, and verbose=1 prints it.
 *
 * The README is argv[1], or, run without arguments, the path compiled in
 * as MHEAP_README (tests/options_doc.cmake).
 *
 * 1. Under "## Options", each row "| `key` | default | meaning |" names an
 *    entry of mhi_option_table with that default and exactly that meaning;
 *    every entry has one row.  Each mismatch is printed.  The comparison is
 *    also run on a README made from the option table, where it must find
 *    nothing, and on altered copies of it (a default or a meaning changed,
 *    a row dropped, repeated, unknown or malformed, the section renamed),
 *    where it must find each.
 * 2. A fresh copy of this program, exec'd with MHEAP_OPTIONS=verbose=1,
 *    scavenge_delay_ms=250 (options are read once, at load), writes one
 *    line per option on stderr, in table order:
 *    "mheap: option <name>=<value> (default <d>): <doc>", the values those
 *    set and the defaults elsewhere, and nothing else. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "child.h"
#include "mheap.h"
#include "options.h"
#include "pageheap.h"

#define CHILD_ARG "--verbose-child"

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 4096 > cap) buf = realloc(buf, cap *= 2);
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        if (r == 0) break;
        n += r;
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* One table cell of line [p, end): trimmed of blanks, into out. */
static bool next_cell(const char **p, const char *end, char *out, size_t outsz) {
    const char *s = *p;
    while (s < end && *s == ' ') s++;
    const char *bar = memchr(s, '|', (size_t)(end - s));
    if (!bar) return false;
    const char *e = bar;
    while (e > s && e[-1] == ' ') e--;
    size_t len = (size_t)(e - s);
    if (len >= outsz) return false;
    memcpy(out, s, len);
    out[len] = '\0';
    *p = bar + 1;
    return true;
}

/* Compare the options table of README text with mhi_option_table;
 * returns the number of mismatches, each printed if report. */
static int compare_readme(const char *text, bool report) {
    int bad = 0, rows[MHI_OPT_COUNT] = {0};
#define MISMATCH(...)                                                  \
    do {                                                               \
        bad++;                                                         \
        if (report) fprintf(stderr, "README.md: " __VA_ARGS__);        \
    } while (0)
    const char *sec = strstr(text, "\n## Options\n");
    if (!sec) {
        MISMATCH("no \"## Options\" section\n");
        return bad;
    }
    const char *p = sec + 1;
    p = strchr(p, '\n') + 1;
    bool in_table = false;
    while (*p && strncmp(p, "## ", 3) != 0) {
        const char *end = strchr(p, '\n');
        if (!end) end = p + strlen(p);
        if (*p == '|') {
            in_table = true;
            const char *q = p + 1;
            char key[128], dflt[64], doc[1024];
            bool ok = next_cell(&q, end, key, sizeof key) &&
                      next_cell(&q, end, dflt, sizeof dflt) &&
                      next_cell(&q, end, doc, sizeof doc);
            size_t klen = ok ? strlen(key) : 0;
            if (ok && (strcmp(key, "key") == 0 || key[0] == '-')) {
                /* the header and its rule */
            } else if (!ok || klen < 3 || key[0] != '`' || key[klen - 1] != '`') {
                MISMATCH("malformed row: %.*s\n", (int)(end - p), p);
            } else {
                key[klen - 1] = '\0';
                const char *name = key + 1;
                int i = mhi_option_find(name);
                char *dend;
                errno = 0;
                long d = strtol(dflt, &dend, 10);
                if (i < 0) {
                    MISMATCH("row `%s`: no such option\n", name);
                } else {
                    if (++rows[i] > 1) MISMATCH("row `%s` appears %d times\n", name, rows[i]);
                    if (dflt[0] == '\0' || *dend != '\0' || errno != 0)
                        MISMATCH("row `%s`: default \"%s\" is not a number\n", name, dflt);
                    else if (d != mhi_option_table[i].dflt)
                        MISMATCH("row `%s`: default %ld, the table says %ld\n", name, d,
                                 mhi_option_table[i].dflt);
                    if (strcmp(doc, mhi_option_table[i].doc) != 0)
                        MISMATCH("row `%s`: meaning\n  \"%s\"\n  the table says\n  \"%s\"\n", name,
                                 doc, mhi_option_table[i].doc);
                }
            }
        } else if (in_table && end > p) {
            break; /* the table ended */
        }
        p = *end ? end + 1 : end;
    }
    for (int i = 0; i < MHI_OPT_COUNT; i++)
        if (rows[i] == 0) MISMATCH("no row for option `%s`\n", mhi_option_table[i].name);
#undef MISMATCH
    return bad;
}

/* text with the first occurrence of from (after the Options heading)
 * replaced by to; NULL if from is not there. */
static char *altered(const char *text, const char *from, const char *to) {
    const char *sec = strstr(text, "\n## Options\n");
    const char *at = sec ? strstr(sec, from) : NULL;
    if (!at) return NULL;
    size_t head = (size_t)(at - text), flen = strlen(from), tlen = strlen(to);
    size_t rest = strlen(at + flen);
    char *out = malloc(head + tlen + rest + 1);
    memcpy(out, text, head);
    memcpy(out + head, to, tlen);
    memcpy(out + head + tlen, at + flen, rest + 1);
    return out;
}

static void expect_found(const char *text, const char *what, const char *from, const char *to) {
    char *t = altered(text, from, to);
    CHECK(t != NULL);
    if (!t) {
        fprintf(stderr, "  %s: \"%s\" not in the table\n", what, from);
        return;
    }
    int n = compare_readme(t, false);
    CHECK(n >= 1);
    if (n < 1) fprintf(stderr, "  %s: not found\n", what);
    free(t);
}

/* A README made from the option table itself: the comparison must pass
 * on it, and find each alteration of it. */
static void self_test(void) {
    static char text[16384];
    size_t n = (size_t)snprintf(text, sizeof text,
                                "# t\n\n## Options\n\nIntro.\n\n| key | default | meaning |\n"
                                "|---|---|---|\n");
    for (int i = 0; i < MHI_OPT_COUNT; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "| `%s` | %ld | %s |\n",
                              mhi_option_table[i].name, mhi_option_table[i].dflt,
                              mhi_option_table[i].doc);
    snprintf(text + n, sizeof text - n, "\n## Misuse\n\n| `stats` | 7 | after the table |\n");
    CHECK_EQ(compare_readme(text, true), 0);

    char from[2048], row[2 * sizeof from + 64];
    const mhi_option_info *o = &mhi_option_table[MHI_OPT_scavenge_delay_ms];
    snprintf(from, sizeof from, "| `%s` | %ld |", o->name, o->dflt);
    snprintf(row, sizeof row, "| `%s` | %ld |", o->name, o->dflt + 1);
    expect_found(text, "changed default", from, row);
    snprintf(row, sizeof row, "| `%s` | x%ld |", o->name, o->dflt);
    expect_found(text, "default not a number", from, row);

    o = &mhi_option_table[MHI_OPT_stats];
    snprintf(from, sizeof from, "%s |\n", o->doc);
    snprintf(row, sizeof row, "%s. |\n", o->doc);
    expect_found(text, "changed meaning", from, row);

    /* A row dropped, repeated, for no option, or not a row. */
    o = &mhi_option_table[MHI_OPT_abort_on_oom];
    snprintf(from, sizeof from, "| `%s` | %ld | %s |\n", o->name, o->dflt, o->doc);
    expect_found(text, "row dropped", from, "");
    snprintf(row, sizeof row, "%s%s", from, from);
    expect_found(text, "row repeated", from, row);
    snprintf(row, sizeof row, "%s| `no_such_option` | 0 | nothing |\n", from);
    expect_found(text, "unknown row", from, row);
    snprintf(row, sizeof row, "%s| abort_on_oom | 0 |\n", from);
    expect_found(text, "malformed row", from, row);
    expect_found(text, "no section", "## Options", "## Settings");
}

/* ---- verbose=1 ---- */

static int verbose_child(void) {
    /* Options were read at load, from the environment the parent set. */
    if (mh_option_get("verbose") != 1) return 3;
    if (mh_option_get("scavenge_delay_ms") != 250) return 4;
    if (mhi_heap_scavenge_delay() != 250) return 5; /* applied */
    return 0;
}

static void verbose_lists_options(const char *self) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        close(fds[1]);
        setenv("MHEAP_OPTIONS", "verbose=1,scavenge_delay_ms=250", 1);
        execl(self, self, CHILD_ARG, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    static char out[16384];
    child_read_all(fds[0], out, sizeof out);
    int st = child_wait(pid);
    bool exited = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    CHECK(exited);
    if (!exited) fprintf(stderr, "  verbose child: status %#x\n", st);

    static char want[16384];
    size_t w = 0;
    for (int i = 0; i < MHI_OPT_COUNT; i++) {
        const mhi_option_info *o = &mhi_option_table[i];
        long v = i == MHI_OPT_verbose ? 1 : i == MHI_OPT_scavenge_delay_ms ? 250 : o->dflt;
        w += (size_t)snprintf(want + w, sizeof want - w, "mheap: option %s=%ld (default %ld): %s\n",
                              o->name, v, o->dflt, o->doc);
    }
    CHECK(strcmp(out, want) == 0);
    if (strcmp(out, want) != 0) fprintf(stderr, "  verbose=1 printed:\n%s  wanted:\n%s", out, want);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], CHILD_ARG) == 0) return verbose_child();
    const char *readme = argc > 1 ? argv[1] : NULL;
#ifdef MHEAP_README
    if (!readme) readme = MHEAP_README;
#endif
    if (!readme) {
        fprintf(stderr, "usage: %s README.md\n", argv[0]);
        return 2;
    }
    char *text = read_file(readme);
    if (!text) {
        fprintf(stderr, "test_options_doc: cannot read %s\n", readme);
        return 1;
    }
    CHECK_EQ(compare_readme(text, true), 0);
    free(text);
    self_test();

    verbose_lists_options("/proc/self/exe");
    return check_done("test_options_doc");
}
