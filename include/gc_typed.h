/* gc_typed.h - the same interface as <gc/gc_typed.h>, under the other
 * path bdwgc installs it at. */
#include "gc/gc_typed.h"
