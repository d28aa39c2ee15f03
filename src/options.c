/* options.c - the option table and MHEAP_OPTIONS parsing. */
#include "options.h"

#include <stdlib.h>
#include <string.h>

#include "pageheap.h"
#include "print.h"

long mhi_options[MHI_OPT_COUNT] = {
#define MHI_X(name, dflt, apply, doc) [MHI_OPT_##name] = dflt,
    MHI_OPTIONS(MHI_X)
#undef MHI_X
};

const mhi_option_info mhi_option_table[MHI_OPT_COUNT] = {
#define MHI_X(name, dflt, apply, doc) [MHI_OPT_##name] = {#name, dflt, apply, doc},
    MHI_OPTIONS(MHI_X)
#undef MHI_X
};

void mhi_option_set_verbose(long value) { mhi_heap_.verbose = value != 0; }
void mhi_option_set_scavenge_delay(long value) { mhi_heap_set_scavenge_delay(value); }
_Atomic bool mhi_options_read;
static mhi_lock_t options_lock = MHI_LOCK_INIT(MHI_RANK_OPTIONS); /* the one-time read */
int mhi_stats_fd = 2;

int mhi_option_find(const char *name) {
    for (int i = 0; i < MHI_OPT_COUNT; i++)
        if (strcmp(mhi_option_table[i].name, name) == 0) return i;
    return -1;
}

bool mhi_option_apply(int index, long value) {
    if (index < 0 || index >= MHI_OPT_COUNT || value < 0) return false;
    mhi_options[index] = value;
    if (mhi_option_table[index].apply) mhi_option_table[index].apply(value);
    return true;
}

static bool parse_long(const char *s, size_t len, long *out) {
    if (len == 0 || len > 18) return false;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static void options_parse(void);

void mhi_options_init(void) {
    mhi_lock(&options_lock);
    if (!atomic_load_explicit(&mhi_options_read, memory_order_relaxed)) {
        options_parse();
        atomic_store_explicit(&mhi_options_read, true, memory_order_release);
    }
    mhi_unlock(&options_lock);
}

static void options_parse(void) {
    const char *env = getenv("MHEAP_OPTIONS");
    if (!env) return;
    for (const char *p = env; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        char name[64];
        size_t nlen = eq ? (size_t)(eq - p) : len;
        long value = 1; /* "key" alone means key=1 */
        bool ok = nlen > 0 && nlen < sizeof name;
        if (ok) {
            memcpy(name, p, nlen);
            name[nlen] = '\0';
            if (eq) ok = parse_long(eq + 1, len - nlen - 1, &value);
        }
        int idx = ok ? mhi_option_find(name) : -1;
        if (idx < 0 || !mhi_option_apply(idx, value)) {
            char item[96];
            size_t n = len < sizeof item - 1 ? len : sizeof item - 1;
            memcpy(item, p, n);
            item[n] = '\0';
            mhi_printf(2, "mheap: warning: ignoring option '%s' in MHEAP_OPTIONS\n", item);
        }
        p += len;
        if (*p == ',') p++;
    }
    /* Programs such as coreutils close stderr at exit before our
     * destructor runs: keep a copy for the statistics. */
    if (mhi_options[MHI_OPT_stats]) mhi_stats_fd = mhi_os_dup_fd(2);
    if (mhi_options[MHI_OPT_verbose])
        for (int i = 0; i < MHI_OPT_COUNT; i++)
            mhi_printf(2, "mheap: option %s=%ld (default %ld): %s\n", mhi_option_table[i].name,
                       mhi_options[i], mhi_option_table[i].dflt, mhi_option_table[i].doc);
}
