/* options.h - runtime options: one table, read lazily from MHEAP_OPTIONS
 * ("key=value,key=value").  Unknown keys or bad values produce one warning
 * on stderr each and are ignored. */
#ifndef MHEAP_OPTIONS_H
#define MHEAP_OPTIONS_H

#include <stdatomic.h>
#include <stdbool.h>

/* The table: name, default, what to call when it is set (or 0), and its
 * meaning (README.md's table of options says the same; a test compares
 * them, and verbose=1 prints the table with the values in force). */
#define MHI_OPTIONS(X)                                                                       \
    X(stats, 0, 0, "print statistics to stderr at exit")                                     \
    X(verbose, 0, mhi_option_set_verbose,                                                    \
      "print every option with its value at start, then heap events (growth, releases, the first " \
      "finalization cycle found) to stderr") \
    X(scavenge_delay_ms, 500, mhi_option_set_scavenge_delay,                                  \
      "free pages unused this long go back to the OS")                                       \
    X(abort_on_oom, 0, 0, "abort with a message instead of returning NULL")                  \
    X(background, 1, 0,                                                                      \
      "a background thread returns idle pages after the delay even when the program makes "  \
      "no heap call, including free pages inside spans that still hold live objects; it "    \
      "starts at the first free of a large block or span (or when freed objects leave whole " \
      "pages of a span unused) in a process that has a thread of its own, while in a "       \
      "process that has only ever had one thread its heap calls do that work instead; `2` "  \
      "starts it in any process, `0` never (heap calls and `mh_trim()` only)")               \
    X(gc_percent, 100, mhi_option_set_gc_percent,                                            \
      "the GC heap grows to the live heap plus this percent of it (and of the roots) "       \
      "before the next collection")                                                          \
    X(gc_memory_limit, 0, mhi_option_set_gc_memory_limit,                                    \
      "a hard limit on the GC heap, in bytes (0: none): near it the collector collects, "    \
      "then allocation returns NULL with ENOMEM")                                            \
    X(gc_signal, 0, 0, "the signal that stops threads for a collection (0: SIGRTMIN+5)")     \
    X(gc_markers, 0, 0,                                                                      \
      "threads that mark in a collection (0: one per core, at most 8; 1: the collecting "    \
      "thread alone)")                                                                       \
    X(gc_scan_malloc, 0, 0,                                                                  \
      "`1`: collections also scan the live blocks of mheap's malloc as roots, so GC "        \
      "objects referenced only from malloc'd memory stay alive (longer pauses)")             \
    X(gctrace, 0, 0, "print one line per collection to stderr")

void mhi_option_set_verbose(long value);
void mhi_option_set_gc_percent(long value);
void mhi_option_set_gc_memory_limit(long value);
void mhi_option_set_scavenge_delay(long value);

enum mhi_option {
#define MHI_X(name, dflt, apply, doc) MHI_OPT_##name,
    MHI_OPTIONS(MHI_X)
#undef MHI_X
    MHI_OPT_COUNT
};

extern long mhi_options[MHI_OPT_COUNT];
extern _Atomic bool mhi_options_read;
extern int mhi_stats_fd; /* where stats=1 prints at exit */
void mhi_options_init(void);

static inline long mhi_option(enum mhi_option o) {
    if (__builtin_expect(!atomic_load_explicit(&mhi_options_read, memory_order_acquire), 0))
        mhi_options_init();
    return mhi_options[o];
}

/* Index of the option called name, or -1. */
int mhi_option_find(const char *name);
/* The table's entry i (0 <= i < MHI_OPT_COUNT). */
typedef struct {
    const char *name;
    long dflt;
    void (*apply)(long value);
    const char *doc;
} mhi_option_info;
extern const mhi_option_info mhi_option_table[MHI_OPT_COUNT];
/* Set an option and apply its effect.  Returns false on a bad value. */
bool mhi_option_apply(int index, long value);

#endif
