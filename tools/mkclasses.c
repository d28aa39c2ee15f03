/* mkclasses.c - generates mheap's size-class tables.
 *
 * Usage: mkclasses OUTDIR
 *
 * Writes OUTDIR/sizeclass_table.h and OUTDIR/sizeclass_table.c.  The output
 * is byte-for-byte deterministic (integer arithmetic only, no timestamps);
 * the checked-in copies live in src/ and the test sizeclass_table_uptodate
 * fails when they differ from what this program writes (re-run
 * `mkclasses src` from the top of the source tree after editing it).
 *
 * The method follows the spirit of Go's runtime/mksizeclasses.go:
 *
 *  1. Candidate sizes step up from 16 with an alignment that grows with the
 *     size, so that consecutive candidates are at most 1/8 apart:
 *       16..128 by 16, 128..256 by 16, 256..512 by 32, 512..1024 by 64,
 *       1024..2048 by 128, and 2048..32768 by 256.
 *     Every size is a multiple of 16, and every size above 1024 a multiple
 *     of 128 (so the 128-granular lookup table works).
 *
 *  2. Each candidate gets the smallest number of pages (at most MAX_NPAGES)
 *     whose span wastes at most 1/8 at the tail.  For sizes up to 8 KiB the
 *     span must also hold at least MIN_OBJS objects (this always fits the
 *     tail bound: a span of ceil(8*size/8192) pages leaves a tail smaller
 *     than one object, which is less than 1/8 of the span).
 *
 *  3. A candidate with the same pages-per-span and objects-per-span as the
 *     class below it replaces that class (the larger size is kept) - as Go
 *     does - but only when the merged class still meets the rounding bound
 *     below.  Where the bound forbids it, both classes stay.
 *
 *  4. As in Go, a class is then grown to the largest aligned size that fits
 *     the same number of objects into the same span - again only as far as
 *     the rounding bound allows and staying below the next class.  Steps 3
 *     and 4 repeat until nothing changes (growing a class can make a merge
 *     above it legal).  A grown class keeps its span even where a smaller
 *     span would now meet the tail bound (as in Go: the larger span packs
 *     its objects tighter).
 *
 * Rounding bound: for class c with previous class size p (0 for class 1),
 * the worst request is p+1, and (size(c) - (p+1)) / size(c) <= 1/8.  The
 * only exceptions are the classes of 16..112 bytes, which are spaced 16
 * bytes apart (the minimum alignment) and so cannot meet it.
 *
 * Everything is checked before anything is written; on any failure the
 * program prints why and exits with status 1.  In particular the division
 * magic divmul = 0xFFFFFFFF / size + 1 is verified exhaustively: for every
 * offset in [0, npages * 8192), (off * divmul) >> 32 == off / size. */

#if defined(__unix__) || defined(__APPLE__)
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <sys/stat.h>
#include <sys/types.h>
#define HAVE_MKDIR 1
#endif

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_SIZE 8192u
#define SMALL_SIZE_MAX 32768u
#define STEP16_MAX 1024u
#define MIN_ALIGN 16u
#define MAX_NPAGES 10u
#define MIN_OBJS 8u
#define MIN_OBJS_SIZE_MAX 8192u /* MIN_OBJS applies to sizes up to here */
#define EXCEPTION_SIZE_MAX 112u /* rounding bound exceptions: 16..112 */
#define MAX_CLASSES 256         /* class numbers must fit a uint8_t */

#define CLASS16_LEN (STEP16_MAX / 16 + 1)
#define CLASS128_LEN ((SMALL_SIZE_MAX - STEP16_MAX) / 128 + 1)

struct sizeclass {
    uint32_t size;
    uint32_t npages;
    uint32_t nobjs;
    uint32_t divmul;
};

static struct sizeclass classes[MAX_CLASSES];
static unsigned nclasses; /* including class 0 */
static uint8_t class16[CLASS16_LEN];
static uint8_t class128[CLASS128_LEN];

static void die(const char *fmt, ...) {
    va_list ap;
    fputs("mkclasses: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static int is_pow2(uint32_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* The granule a class size must be a multiple of. */
static uint32_t size_align(uint32_t size) { return size > STEP16_MAX ? 128u : MIN_ALIGN; }

/* The rounding bound, with its documented exceptions. */
static int rounding_ok(uint32_t prev, uint32_t size) {
    if (size <= EXCEPTION_SIZE_MAX && size - prev == MIN_ALIGN)
        return 1;
    return (uint64_t)(size - prev - 1) * 8 <= size;
}

static int tail_ok(uint32_t span, uint32_t size) {
    return span >= size && (uint64_t)(span % size) * 8 <= span;
}

/* Pages per span for a candidate size, or 0 when no span of at most
 * MAX_NPAGES pages meets the tail bound. */
static uint32_t pages_for(uint32_t size) {
    uint32_t n;
    if (size <= MIN_OBJS_SIZE_MAX) {
        for (n = 1; n <= MAX_NPAGES; n++) {
            uint32_t span = n * PAGE_SIZE;
            if (tail_ok(span, size) && span / size >= MIN_OBJS)
                return n;
        }
    }
    for (n = 1; n <= MAX_NPAGES; n++)
        if (tail_ok(n * PAGE_SIZE, size))
            return n;
    return 0;
}

static void remove_class(unsigned i) {
    memmove(&classes[i], &classes[i + 1], (nclasses - i - 1) * sizeof classes[0]);
    nclasses--;
}

/* Step 1-3: candidates, spans, merges while adding. */
static void make_candidates(void) {
    uint32_t size, align = MIN_ALIGN;

    memset(classes, 0, sizeof classes);
    nclasses = 1; /* class 0: large objects */
    for (size = MIN_ALIGN; size <= SMALL_SIZE_MAX; size += align) {
        uint32_t npages, nobjs;
        if (is_pow2(size)) {
            if (size >= 2048)
                align = 256;
            else if (size >= 128)
                align = size / 8;
        }
        npages = pages_for(size);
        if (npages == 0)
            continue; /* no usable span: requests go to the next class */
        nobjs = npages * PAGE_SIZE / size;
        if (nclasses > 1) {
            struct sizeclass *last = &classes[nclasses - 1];
            uint32_t prev = classes[nclasses - 2].size;
            if (last->npages == npages && last->nobjs == nobjs && rounding_ok(prev, size)) {
                last->size = size;
                continue;
            }
        }
        if (nclasses == MAX_CLASSES)
            die("too many size classes (more than %u)", MAX_CLASSES - 1);
        classes[nclasses].size = size;
        classes[nclasses].npages = npages;
        classes[nclasses].nobjs = nobjs;
        nclasses++;
    }
}

/* Step 3 again on the whole list; returns whether anything changed. */
static int merge_pass(void) {
    int changed = 0;
    unsigned i = 2;
    while (i < nclasses) {
        struct sizeclass *lo = &classes[i - 1], *hi = &classes[i];
        if (lo->npages == hi->npages && lo->nobjs == hi->nobjs &&
            rounding_ok(classes[i - 2].size, hi->size)) {
            remove_class(i - 1);
            changed = 1;
            continue; /* the merged class now sits at i - 1 */
        }
        i++;
    }
    return changed;
}

/* Step 4; returns whether anything changed. */
static int grow_pass(void) {
    int changed = 0;
    unsigned i;
    for (i = 1; i < nclasses; i++) {
        struct sizeclass *c = &classes[i];
        uint32_t prev = classes[i - 1].size;
        uint32_t limit = i + 1 < nclasses ? classes[i + 1].size : SMALL_SIZE_MAX + 1;
        uint32_t span = c->npages * PAGE_SIZE;
        uint32_t want = span / c->nobjs;
        want -= want % size_align(want);
        while (want > c->size && (want >= limit || !rounding_ok(prev, want)))
            want -= size_align(want);
        if (want > c->size) {
            c->size = want;
            changed = 1;
        }
    }
    return changed;
}

static void make_classes(void) {
    int rounds = 0;
    make_candidates();
    for (;;) {
        int changed = merge_pass();
        changed |= grow_pass();
        if (!changed)
            break;
        if (++rounds > 1000)
            die("merging and growing classes does not settle");
    }
}

/* Smallest class whose size is >= size, by linear search. */
static unsigned class_of(uint32_t size) {
    unsigned c;
    for (c = 1; c < nclasses; c++)
        if (classes[c].size >= size)
            return c;
    die("no class for size %u", size);
    return 0;
}

static void make_tables(void) {
    unsigned i;
    for (i = 1; i < nclasses; i++)
        classes[i].divmul = (uint32_t)(0xFFFFFFFFu / classes[i].size + 1);
    for (i = 0; i < CLASS16_LEN; i++)
        class16[i] = (uint8_t)class_of(i == 0 ? 1 : i * 16);
    for (i = 0; i < CLASS128_LEN; i++)
        class128[i] = (uint8_t)class_of(STEP16_MAX + i * 128);
}

/* Checks every promise the tables make; dies on the first broken one. */
static void verify(void) {
    unsigned i;
    uint32_t size, off;

    if (nclasses < 2 || nclasses > MAX_CLASSES)
        die("bad number of classes %u", nclasses);
    if (classes[0].size || classes[0].npages || classes[0].nobjs || classes[0].divmul)
        die("class 0 must be all zero");
    if (classes[1].size != MIN_ALIGN)
        die("smallest class is %u, not %u", classes[1].size, MIN_ALIGN);
    if (classes[nclasses - 1].size != SMALL_SIZE_MAX)
        die("largest class is %u, not %u", classes[nclasses - 1].size, SMALL_SIZE_MAX);

    for (i = 1; i < nclasses; i++) {
        const struct sizeclass *c = &classes[i];
        uint32_t prev = classes[i - 1].size;
        uint32_t span = c->npages * PAGE_SIZE;

        if (c->size <= prev)
            die("class %u: size %u not above previous %u", i, c->size, prev);
        if (c->size % MIN_ALIGN != 0)
            die("class %u: size %u not a multiple of %u", i, c->size, MIN_ALIGN);
        if (c->size > STEP16_MAX && c->size % 128 != 0)
            die("class %u: size %u above %u not a multiple of 128", i, c->size, STEP16_MAX);
        if (!rounding_ok(prev, c->size))
            die("class %u: size %u after %u wastes more than 1/8 rounding", i, c->size, prev);
        if (c->npages < 1 || c->npages > MAX_NPAGES)
            die("class %u: %u pages", i, c->npages);
        if (c->nobjs != span / c->size || c->nobjs == 0 || c->nobjs > UINT16_MAX)
            die("class %u: bad object count %u", i, c->nobjs);
        if (!tail_ok(span, c->size))
            die("class %u: size %u in %u pages wastes more than 1/8 at the tail", i, c->size,
                c->npages);
        if (c->size <= MIN_OBJS_SIZE_MAX && c->nobjs < MIN_OBJS)
            die("class %u: size %u has only %u objects per span", i, c->size, c->nobjs);
        if (c->divmul != (uint32_t)(0xFFFFFFFFu / c->size + 1))
            die("class %u: bad divmul", i);
        for (off = 0; off < span; off++) {
            uint32_t q = (uint32_t)(((uint64_t)off * c->divmul) >> 32);
            if (q != off / c->size)
                die("class %u: divmul %u gives %u for offset %u / size %u, want %u", i,
                    c->divmul, q, off, c->size, off / c->size);
        }
    }

    for (size = 0; size <= SMALL_SIZE_MAX; size++) {
        unsigned c = size <= STEP16_MAX ? class16[(size + 15) >> 4]
                                        : class128[(size - STEP16_MAX + 127) >> 7];
        unsigned want = class_of(size == 0 ? 1 : size);
        if (c != want)
            die("lookup of size %u gives class %u, want %u", size, c, want);
    }
}

/* Percentage num/den with two decimals, rounded, in integer arithmetic. */
static void fmt_pct(char *buf, size_t len, uint64_t num, uint64_t den) {
    uint64_t bp = (num * 10000 + den / 2) / den;
    snprintf(buf, len, "%u.%02u%%", (unsigned)(bp / 100), (unsigned)(bp % 100));
}

static FILE *open_out(const char *dir, const char *name, char *path, size_t len) {
    FILE *f;
    if ((size_t)snprintf(path, len, "%s/%s", dir, name) >= len)
        die("path too long: %s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f)
        die("cannot open %s for writing", path);
    return f;
}

static void close_out(FILE *f, const char *path) {
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        die("error writing %s", path);
}

static const char banner[] =
    "/* Code generated by tools/mkclasses.c; DO NOT EDIT.\n"
    " * To change the size classes, edit tools/mkclasses.c and re-run\n"
    " * `mkclasses src` from the top of the source tree. */\n";

static void write_header(const char *dir) {
    char path[4096], tail[16], round[16];
    FILE *f = open_out(dir, "sizeclass_table.h", path, sizeof path);
    unsigned i;

    fputs(banner, f);
    fputs("\n"
          "/* class  bytes/obj  pages  bytes/span  objects  tail waste  tail %  max rounding\n",
          f);
    for (i = 1; i < nclasses; i++) {
        const struct sizeclass *c = &classes[i];
        uint32_t span = c->npages * PAGE_SIZE;
        uint32_t t = span % c->size;
        uint32_t prev = classes[i - 1].size;
        fmt_pct(tail, sizeof tail, t, span);
        fmt_pct(round, sizeof round, c->size - prev - 1, c->size);
        fprintf(f, " * %5u  %9u  %5u  %10u  %7u  %10u  %6s  %12s%s\n", i, c->size, c->npages,
                span, c->nobjs, t, tail, round,
                rounding_ok(prev, c->size) && (uint64_t)(c->size - prev - 1) * 8 > c->size
                    ? " *"
                    : "");
    }
    fprintf(f,
            " *\n"
            " * bytes/span = pages * %u; tail waste = bytes/span %% bytes/obj (<= 12.5%%).\n"
            " * max rounding waste = (bytes/obj - (previous bytes/obj + 1)) / bytes/obj,\n"
            " * the waste of the worst request rounded up to this class (<= 12.5%%).\n"
            " * (*) exceptions: classes of up to %u bytes are %u bytes apart, the\n"
            " * minimum alignment, and cannot meet the rounding bound.\n"
            " * Spans of classes up to %u bytes hold at least %u objects.\n"
            " * Neighbours with equal pages and objects stay apart where merging them\n"
            " * would break the rounding bound.  Classes grown to fill their span (as in\n"
            " * Go) keep it even where fewer pages would now meet the tail bound. */\n",
            PAGE_SIZE, EXCEPTION_SIZE_MAX, MIN_ALIGN, MIN_OBJS_SIZE_MAX, MIN_OBJS);
    fputs("\n"
          "#ifndef MHEAP_SIZECLASS_TABLE_H\n"
          "#define MHEAP_SIZECLASS_TABLE_H\n"
          "\n"
          "#include <stdint.h>\n"
          "\n",
          f);
    fprintf(f, "#define MHI_NUM_CLASSES %u /* including class 0 */\n", nclasses);
    fprintf(f, "#define MHI_SMALL_SIZE_MAX %u\n", SMALL_SIZE_MAX);
    fprintf(f, "#define MHI_SMALL_SIZE_STEP16_MAX %u\n", STEP16_MAX);
    fputs("\n"
          "/* Per class; class 0 (large objects) is all zero. */\n"
          "extern const uint32_t mhi_class_size[MHI_NUM_CLASSES];   /* bytes per object */\n"
          "extern const uint8_t mhi_class_npages[MHI_NUM_CLASSES];  /* pages per span */\n"
          "extern const uint16_t mhi_class_nobjs[MHI_NUM_CLASSES];  /* objects per span */\n"
          "extern const uint32_t mhi_class_divmul[MHI_NUM_CLASSES]; /* off / size == (off * divmul) >> 32 */\n"
          "\n"
          "/* Smallest class whose size is >= the request:\n"
          " * mhi_size_to_class16[(size + 15) >> 4] for size in 0..1024 (0 gives the\n"
          " * class of 16), mhi_size_to_class128[(size - 1024 + 127) >> 7] for size in\n"
          " * 1025..32768. */\n"
          "extern const uint8_t mhi_size_to_class16[1024 / 16 + 1];\n"
          "extern const uint8_t mhi_size_to_class128[(32768 - 1024) / 128 + 1];\n"
          "\n"
          "#endif\n",
          f);
    close_out(f, path);
}

/* Writes one array initializer, `per_line` values a line. */
static void write_array(FILE *f, const char *decl, const uint32_t *v, unsigned n,
                        unsigned per_line, int width) {
    unsigned i;
    fprintf(f, "\n%s = {\n", decl);
    for (i = 0; i < n; i++) {
        if (i % per_line == 0)
            fputs("   ", f);
        fprintf(f, " %*u,", width, v[i]);
        if (i % per_line == per_line - 1 || i == n - 1)
            fputc('\n', f);
    }
    fputs("};\n", f);
}

static void write_source(const char *dir) {
    char path[4096];
    FILE *f = open_out(dir, "sizeclass_table.c", path, sizeof path);
    uint32_t v[CLASS128_LEN > MAX_CLASSES ? CLASS128_LEN : MAX_CLASSES];
    unsigned i;

    fputs(banner, f);
    fputs("\n#include \"sizeclass_table.h\"\n", f);

    for (i = 0; i < nclasses; i++)
        v[i] = classes[i].size;
    write_array(f, "const uint32_t mhi_class_size[MHI_NUM_CLASSES]", v, nclasses, 8, 5);
    for (i = 0; i < nclasses; i++)
        v[i] = classes[i].npages;
    write_array(f, "const uint8_t mhi_class_npages[MHI_NUM_CLASSES]", v, nclasses, 16, 2);
    for (i = 0; i < nclasses; i++)
        v[i] = classes[i].nobjs;
    write_array(f, "const uint16_t mhi_class_nobjs[MHI_NUM_CLASSES]", v, nclasses, 12, 3);
    for (i = 0; i < nclasses; i++)
        v[i] = classes[i].divmul;
    write_array(f, "const uint32_t mhi_class_divmul[MHI_NUM_CLASSES]", v, nclasses, 6, 10);
    for (i = 0; i < CLASS16_LEN; i++)
        v[i] = class16[i];
    write_array(f, "const uint8_t mhi_size_to_class16[1024 / 16 + 1]", v, CLASS16_LEN, 16, 2);
    for (i = 0; i < CLASS128_LEN; i++)
        v[i] = class128[i];
    write_array(f, "const uint8_t mhi_size_to_class128[(32768 - 1024) / 128 + 1]", v,
                CLASS128_LEN, 16, 2);
    close_out(f, path);
}

int main(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '\0') {
        fprintf(stderr, "usage: mkclasses OUTDIR\n"
                        "writes OUTDIR/sizeclass_table.h and OUTDIR/sizeclass_table.c\n");
        return 2;
    }
#ifdef HAVE_MKDIR
    if (mkdir(argv[1], 0777) != 0 && errno != EEXIST)
        die("cannot create directory %s", argv[1]);
#endif
    make_classes();
    make_tables();
    verify();
    write_header(argv[1]);
    write_source(argv[1]);
    return 0;
}
