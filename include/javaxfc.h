/* javaxfc.h - the same interface as <gc/javaxfc.h>, under the other
 * path bdwgc installs it at. */
#include "gc/javaxfc.h"
