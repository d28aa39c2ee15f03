/* gc/gc.h - the same interface as <gc.h>, under the other path bdwgc
 * installs it at. */
#include "../gc.h"
