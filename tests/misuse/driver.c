/* driver.c - runs the misuse cases (cases.c, cases_cxx.cpp) against a
 * build of the library and checks each outcome against the expectation
 * table, tests/misuse/expect.txt.
 *
 * Each case runs in a child: fork, then exec of the case program with
 * LD_PRELOAD=<the library's .so> (so one case binary serves every build,
 * and mheap is the allocator of libc and libstdc++ as in a real program),
 * stderr and stdout on pipes, no core file, 30 s of alarm.  The outcome:
 *   named:<what>   SIGABRT, and stderr is exactly one line
 *                  "mheap: <what>: 0x<hex>" (a parenthesised detail after
 *                  the pointer is allowed: "size mismatch" has one)
 *   signal:<SIG>   killed by a signal, nothing on stderr
 *   unnoticed      exit 0, nothing on stderr or stdout
 *   <word>         exit 0 with one word on stdout: a property case
 *                  (reused / not-reused)
 *   other:...      anything else (a setup error, a mix): never expected
 * In the table, named:* and signal:* accept any <what> / signal, and a
 * cell may list alternatives separated by commas.
 *
 * Usage: misuse_driver --expect FILE --cases PROG --cxx PROG
 *          [--default-lib SO] [--secure-lib SO] ACTION
 *   --run MODE CLASS   run one case under MODE's library; exit 0 iff the
 *                      outcome is MODE's expectation (one CTest each)
 *   --all              run every case under each library given; print the
 *                      whole table and a summary line per mode; exit 0 iff
 *                      every outcome that ran is as expected
 *   --list             the classes, one a line
 *   --markdown         README.md's table (from the expectations)
 *   --check-readme F   exit 0 iff F holds that table between its markers */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../child.h"

enum { MODE_DEFAULT, MODE_SECURE, NMODES };
static const char *const mode_names[NMODES] = {"default", "secure"};

typedef struct {
    char cls[64];
    bool cxx;               /* a case of misuse_cases_cxx */
    char want[NMODES][64];  /* expected outcome per mode */
} row_t;

static row_t rows[512];
static size_t nrows;
static const char *cases_prog, *cxx_prog, *libs[NMODES];

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n')) s[--n] = '\0';
    return s;
}

/* The table: lines "class | c or cxx | default | secure"; # comments. */
static void load(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "misuse_driver: cannot read %s\n", path);
        exit(2);
    }
    char line[512];
    unsigned ln = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char *col[4];
        int n = 0;
        for (char *tok = strtok(s, "|"); tok && n < 4; tok = strtok(NULL, "|")) col[n++] = trim(tok);
        if (n != 4 || nrows == sizeof rows / sizeof *rows) {
            fprintf(stderr, "misuse_driver: %s:%u: want 4 columns\n", path, ln);
            exit(2);
        }
        row_t *r = &rows[nrows++];
        snprintf(r->cls, sizeof r->cls, "%s", col[0]);
        r->cxx = strcmp(col[1], "cxx") == 0;
        snprintf(r->want[0], sizeof r->want[0], "%s", col[2]);
        snprintf(r->want[1], sizeof r->want[1], "%s", col[3]);
    }
    fclose(f);
}

static const row_t *find(const char *cls) {
    for (size_t i = 0; i < nrows; i++)
        if (strcmp(rows[i].cls, cls) == 0) return &rows[i];
    return NULL;
}

/* Is s exactly "mheap: <what>: 0x<hex>\n" (or with " (...)" before the
 * newline)?  <what> into what. */
static bool one_mheap_line(const char *s, char *what, size_t cap) {
    if (strncmp(s, "mheap: ", 7) != 0) return false;
    const char *w = s + 7, *sep = strstr(w, ": 0x");
    if (!sep || sep == w || (size_t)(sep - w) >= cap) return false;
    const char *h = sep + 4, *e = h;
    while ((*e >= '0' && *e <= '9') || (*e >= 'a' && *e <= 'f')) e++;
    if (e == h) return false;
    if (e[0] == ' ' && e[1] == '(') {
        e = strchr(e, ')');
        if (!e) return false;
        e++;
    }
    if (strcmp(e, "\n") != 0) return false;
    memcpy(what, w, (size_t)(sep - w));
    what[sep - w] = '\0';
    return memchr(what, '\n', strlen(what)) == NULL;
}

/* Run row r under lib; its outcome into out, stderr into err. */
static void run_case(const row_t *r, const char *lib, char *out, size_t outsz, char *err,
                     size_t errsz) {
    int ep[2], op[2];
    if (pipe(ep) != 0 || pipe(op) != 0) {
        perror("pipe");
        exit(2);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    const char *prog = r->cxx ? cxx_prog : cases_prog;
    if (pid == 0) {
        struct rlimit nocore = {0, 0};
        setrlimit(RLIMIT_CORE, &nocore);
        alarm(30);
        dup2(ep[1], 2);
        dup2(op[1], 1);
        close(ep[0]);
        close(ep[1]);
        close(op[0]);
        close(op[1]);
        setenv("LD_PRELOAD", lib, 1);
        execl(prog, prog, r->cls, (char *)NULL);
        _exit(127);
    }
    close(ep[1]);
    close(op[1]);
    char sout[256];
    child_read_all(ep[0], err, errsz);
    child_read_all(op[0], sout, sizeof sout);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    char what[128];
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && one_mheap_line(err, what, sizeof what))
        snprintf(out, outsz, "named:%s", what);
    else if (WIFSIGNALED(st) && !err[0])
        snprintf(out, outsz, "signal:SIG%s", sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?");
    else if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && !err[0])
        snprintf(out, outsz, "%s", sout[0] ? trim(sout) : "unnoticed");
    else if (WIFSIGNALED(st))
        snprintf(out, outsz, "other:signal %d with stderr", WTERMSIG(st));
    else
        snprintf(out, outsz, "other:exit %d", WEXITSTATUS(st));
}

static bool matches_one(const char *want, size_t n, const char *got) {
    if (n >= 2 && strncmp(want + n - 2, ":*", 2) == 0) return strncmp(want, got, n - 1) == 0;
    return strlen(got) == n && strncmp(want, got, n) == 0;
}

/* want: one outcome, or alternatives separated by commas (a class whose
 * outcome the secure build's random layout decides). */
static bool matches(const char *want, const char *got) {
    for (;;) {
        const char *comma = strchr(want, ',');
        size_t n = comma ? (size_t)(comma - want) : strlen(want);
        if (matches_one(want, n, got)) return true;
        if (!comma) return false;
        want = comma + 1;
    }
}

static int mode_of(const char *s) {
    for (int m = 0; m < NMODES; m++)
        if (strcmp(s, mode_names[m]) == 0) return m;
    fprintf(stderr, "misuse_driver: no mode %s\n", s);
    exit(2);
}

static int do_run(int m, const char *cls) {
    const row_t *r = find(cls);
    if (!r || !libs[m]) {
        fprintf(stderr, "misuse_driver: %s\n", !r ? "no such class" : "no library for the mode");
        return 2;
    }
    char got[192], err[8192];
    run_case(r, libs[m], got, sizeof got, err, sizeof err);
    bool ok = matches(r->want[m], got);
    printf("%s %s: expected %s, got %s: %s\n", mode_names[m], cls, r->want[m], got,
           ok ? "ok" : "DIFFERS");
    if (err[0]) printf("  stderr: %s", err);
    return ok ? 0 : 1;
}

/* The kind of an outcome, for the summaries. */
static int kind_of(const char *o) {
    if (strncmp(o, "named:", 6) == 0) return 0;
    if (strncmp(o, "signal:", 7) == 0) return 1;
    if (strcmp(o, "unnoticed") == 0) return 2;
    if (strncmp(o, "other:", 6) == 0) return 4;
    return 3; /* property */
}

static int do_all(void) {
    int bad = 0;
    unsigned count[NMODES][5] = {{0}}, differ[NMODES] = {0};
    printf("%-28s %-28s %-28s\n", "class", "default", "secure");
    for (size_t i = 0; i < nrows; i++) {
        const row_t *r = &rows[i];
        char cell[NMODES][256];
        for (int m = 0; m < NMODES; m++) {
            const char *o = r->want[m];
            char got[192], err[8192];
            if (libs[m]) {
                run_case(r, libs[m], got, sizeof got, err, sizeof err);
                o = got;
                if (!matches(r->want[m], got)) {
                    differ[m]++;
                    bad = 1;
                    snprintf(cell[m], sizeof cell[m], "%s (expected %s)", got, r->want[m]);
                } else {
                    snprintf(cell[m], sizeof cell[m], "%s", got);
                }
            } else {
                snprintf(cell[m], sizeof cell[m], "%s (expected, not run)", r->want[m]);
            }
            count[m][kind_of(o)]++;
        }
        printf("%-28s %-28s %-28s\n", r->cls, cell[0], cell[1]);
    }
    for (int m = 0; m < NMODES; m++) {
        unsigned misuse = (unsigned)nrows - count[m][3];
        printf("%s%s: caught with a message %u / %u misuse classes (signal %u, unnoticed %u, "
               "other %u); %u property rows; %u differ from the table\n",
               mode_names[m], libs[m] ? "" : " (expected, not run)", count[m][0], misuse,
               count[m][1], count[m][2], count[m][4], count[m][3], differ[m]);
    }
    return bad;
}

/* ---- README's table ---- */

/* The README row of a class: its group's title. */
static void group_of(const char *c, char *g, size_t cap) {
    static const struct {
        const char *prefix, *title;
    } groups[] = {
        {"over1_", "overflow by 1 byte"},
        {"over32_", "overflow by 32 bytes"},
        {"under1_", "underflow by 1 byte"},
        {"under32_", "underflow by 32 bytes"},
        {"uaf_read_", "read after free"},
        {"uaf_write_", "write after free (the whole block)"},
        {"reuse_", "freed block handed out again at once (property)"},
        {"realloc_away", "write to a block realloc moved away"},
        {"free_sized_wrong", "free_sized with a wrong size"},
        {"delete_sized_wrong", "sized delete with a wrong size"},
        {"malloc0_write", "write into malloc(0)"},
        {"exec_", "executing a heap block"},
        {"poke_over32_", "one byte written 32 bytes past the end, the bytes between untouched"},
        {"poke_under", "one byte written 1 or 32 bytes before a 4 KiB block, its neighbours live"},
        {"uaf_link_", "write after free of the first 8 bytes, then frees before any malloc"},
        {"uaf_exit_", "write after free, then exit"},
    };
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++)
        if (strncmp(c, groups[i].prefix, strlen(groups[i].prefix)) == 0) {
            const char *t = groups[i].title;
            if (strncmp(c, "over", 4) == 0 || strncmp(c, "under", 5) == 0) {
                const char *sz = strchr(strchr(c, '_') + 1, '_') + 1;
                const char *cat = strncmp(sz, "256k", 4) == 0  ? "256 KiB (large)"
                                  : strncmp(sz, "4k", 2) == 0  ? "4 KiB (medium)"
                                  : strncmp(sz, "24_", 3) == 0 ? "24 B (small)"
                                  : strncmp(sz, "64_", 3) == 0 ? "64 B (small)"
                                                               : "1000 B (small)";
                snprintf(g, cap, "%s, %s", t, cat);
            } else {
                snprintf(g, cap, "%s", t);
            }
            return;
        }
    /* <api>_<kind>: grouped by kind */
    static const struct {
        const char *suffix, *title;
    } kinds[] = {
        {"_freed", "double free (free, free_sized, free_aligned_sized, realloc, "
                   "malloc_usable_size, the deletes)"},
        {"_freed_medium", "double free, medium (4 KiB)"},
        {"_freed_large", "double free, large (256 KiB)"},
        {"_stack", "free-like call on a stack address"},
        {"_interior", "free-like call on an interior pointer"},
        {"_p4096", "free-like call on a slot never handed out (p + 4096)"},
        {"_mmap", "free-like call on a page from mmap"},
        {"_minus8", "free-like call 8 bytes before a block"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        size_t n = strlen(c), k = strlen(kinds[i].suffix);
        if (n > k && strcmp(c + n - k, kinds[i].suffix) == 0) {
            snprintf(g, cap, "%s", kinds[i].title);
            return;
        }
    }
    snprintf(g, cap, "%s", c);
}

/* An outcome as README words. */
static void words(const char *o, char *w, size_t cap) {
    if (cap > 64 + 3) cap = 64 + 3; /* (outcomes are at most 63 characters) */
    if (strcmp(o, "named:*,unnoticed") == 0) {
        snprintf(w, cap, "named or unnoticed, by the random layout");
    } else if (strncmp(o, "named:", 6) == 0) {
        if (strcmp(o + 6, "*") == 0) snprintf(w, cap, "named");
        else snprintf(w, cap, "`%s`", o + 6);
    } else if (strncmp(o, "signal:", 7) == 0) {
        if (strcmp(o + 7, "*") == 0) snprintf(w, cap, "signal");
        else snprintf(w, cap, "%s", o + 7);
    } else {
        snprintf(w, cap, "%s", o);
    }
}

/* One README cell: the most frequent outcome of mode m over the rows of
 * group g, then each other outcome with the classes that have it. */
static void cell_of(const char *g, int m, char *out, size_t cap) {
    const row_t *in[64];
    unsigned n = 0;
    for (size_t i = 0; i < nrows && n < 64; i++) {
        char gi[160];
        group_of(rows[i].cls, gi, sizeof gi);
        if (strcmp(gi, g) == 0) in[n++] = &rows[i];
    }
    unsigned best = 0, bestn = 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned c = 0;
        for (unsigned j = 0; j < n; j++) c += strcmp(in[i]->want[m], in[j]->want[m]) == 0;
        if (c > bestn) best = i, bestn = c;
    }
    char w[96];
    words(in[best]->want[m], w, sizeof w);
    size_t len = (size_t)snprintf(out, cap, "%s", w);
    for (unsigned i = 0; i < n && len < cap; i++) {
        bool first = true; /* the first class with this outcome? */
        for (unsigned j = 0; j < i; j++) first &= strcmp(in[i]->want[m], in[j]->want[m]) != 0;
        if (!first || strcmp(in[i]->want[m], in[best]->want[m]) == 0) continue;
        words(in[i]->want[m], w, sizeof w);
        len += (size_t)snprintf(out + len, cap - len, "; %s:", w);
        for (unsigned j = i; j < n && len < cap; j++)
            if (strcmp(in[i]->want[m], in[j]->want[m]) == 0)
                len += (size_t)snprintf(out + len, cap - len, "%s %s", j == i ? "" : ",",
                                        in[j]->cls);
    }
}

#define README_BEGIN "<!-- misuse table: misuse_driver --markdown -->"
#define README_END "<!-- end of misuse table -->"

static void markdown(FILE *f) {
    fprintf(f, "%s\n", README_BEGIN);
    fprintf(f, "| misuse | default build | secure build |\n");
    fprintf(f, "|---|---|---|\n");
    char done[64][160];
    unsigned nd = 0;
    for (size_t i = 0; i < nrows; i++) {
        char g[160];
        group_of(rows[i].cls, g, sizeof g);
        bool dup = false;
        for (unsigned j = 0; j < nd; j++) dup |= strcmp(done[j], g) == 0;
        if (dup || nd == 64) continue;
        snprintf(done[nd++], sizeof done[0], "%s", g);
        char c0[1024], c1[1024];
        cell_of(g, MODE_DEFAULT, c0, sizeof c0);
        cell_of(g, MODE_SECURE, c1, sizeof c1);
        fprintf(f, "| %s | %s | %s |\n", g, c0, c1);
    }
    fprintf(f, "%s\n", README_END);
}

static int check_readme(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "misuse_driver: cannot read %s\n", path);
        return 2;
    }
    static char doc[1 << 20];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    doc[n] = '\0';
    fclose(f);
    char *want = NULL;
    size_t wlen = 0;
    FILE *m = open_memstream(&want, &wlen);
    markdown(m);
    fclose(m);
    char *b = strstr(doc, README_BEGIN);
    bool ok = b && strncmp(b, want, wlen) == 0;
    if (!ok)
        fprintf(stderr, "%s: the misuse table differs from the expectations; it should be:\n%s",
                path, want);
    free(want);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *expect = NULL;
    int i = 1;
    for (; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--expect") == 0) expect = argv[i + 1];
        else if (strcmp(argv[i], "--cases") == 0) cases_prog = argv[i + 1];
        else if (strcmp(argv[i], "--cxx") == 0) cxx_prog = argv[i + 1];
        else if (strcmp(argv[i], "--default-lib") == 0) libs[MODE_DEFAULT] = argv[i + 1];
        else if (strcmp(argv[i], "--secure-lib") == 0) libs[MODE_SECURE] = argv[i + 1];
        else break;
    }
    if (!expect || i >= argc) {
        fprintf(stderr, "usage: see tests/misuse/driver.c\n");
        return 2;
    }
    load(expect);
    const char *act = argv[i];
    if (strcmp(act, "--list") == 0) {
        for (size_t k = 0; k < nrows; k++) printf("%s\n", rows[k].cls);
        return 0;
    }
    if (strcmp(act, "--markdown") == 0) {
        markdown(stdout);
        return 0;
    }
    if (strcmp(act, "--check-readme") == 0 && i + 1 < argc) return check_readme(argv[i + 1]);
    if ((!cases_prog || !cxx_prog) && strcmp(act, "--list") != 0) {
        fprintf(stderr, "misuse_driver: --cases and --cxx are needed\n");
        return 2;
    }
    if (strcmp(act, "--all") == 0) return do_all();
    if (strcmp(act, "--run") == 0 && i + 2 < argc) return do_run(mode_of(argv[i + 1]), argv[i + 2]);
    fprintf(stderr, "misuse_driver: unknown action %s\n", act);
    return 2;
}
