/* test_options.c - runtime options (options.h, mh_option_get/set): the
 * defaults (when MHEAP_OPTIONS is not set), set/get round trips, the
 * scavenger delay applied to the heap, and refusals of negative values,
 * unknown names, NULL and prefixes. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "mheap.h"
#include "options.h"
#include "pageheap.h"

static void test_options(void) {
    if (!getenv("MHEAP_OPTIONS")) {
        CHECK_EQ(mh_option_get("scavenge_delay_ms"), 500);
        CHECK_EQ(mh_option_get("stats"), 0);
        CHECK_EQ(mh_option_get("verbose"), 0);
        CHECK_EQ(mh_option_get("abort_on_oom"), 0);
        CHECK_EQ(mhi_heap_.scavenge_delay_ms, 500);
    }
    CHECK_EQ(mh_option_set("scavenge_delay_ms", 1234), 0);
    CHECK_EQ(mh_option_get("scavenge_delay_ms"), 1234);
    CHECK_EQ(mhi_heap_.scavenge_delay_ms, 1234); /* applied to the heap */
    CHECK_EQ(mh_option_set("scavenge_delay_ms", 0), 0);
    CHECK_EQ(mh_option_get("scavenge_delay_ms"), 0);

    errno = 0;
    CHECK_EQ(mh_option_set("scavenge_delay_ms", -5), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(mh_option_get("scavenge_delay_ms"), 0); /* unchanged */
    errno = 0;
    CHECK_EQ(mh_option_set("no_such_option", 1), -1);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(mh_option_set(NULL, 1), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(mh_option_get("no_such_option"), -1);
    CHECK_EQ(mh_option_get(""), -1);
    CHECK_EQ(mh_option_get("scavenge_delay"), -1); /* no prefix matching */
    CHECK_EQ(mh_option_get(NULL), -1);

    /* A long delay (an hour, what the page-heap tests use to keep the
     * scavenger idle) round-trips too. */
    CHECK_EQ(mh_option_set("scavenge_delay_ms", 3600000), 0);
    CHECK_EQ(mh_option_get("scavenge_delay_ms"), 3600000);
}

int main(void) {
    test_options();
    return check_done("test_options");
}
