// C++ twin of wl-handover.c (see xalloc.h): operator new and sized delete.
#include "wl-handover.c"
