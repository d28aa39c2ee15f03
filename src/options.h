/* options.h - runtime options: one table, read lazily from MHEAP_OPTIONS
 * ("key=value,key=value").  Unknown keys or bad values produce one warning
 * on stderr each and are ignored. */
#ifndef MHEAP_OPTIONS_H
#define MHEAP_OPTIONS_H

#include <stdatomic.h>
#include <stdbool.h>

#define MHI_OPTIONS(X)                                                          \
    X(stats, 0, "print statistics to stderr at exit")                           \
    X(verbose, 0, "print heap events (growth, scavenging) to stderr")           \
    X(scavenge_delay_ms, 500, "free pages idle this long go back to the OS")    \
    X(background, 1, "a background thread returns idle pages on time")        \
    X(abort_on_oom, 0, "abort with a message instead of returning NULL")

enum mhi_option {
#define MHI_X(name, dflt, doc) MHI_OPT_##name,
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
/* Set an option and apply its effect.  Returns false on a bad value. */
bool mhi_option_apply(int index, long value);

#endif
