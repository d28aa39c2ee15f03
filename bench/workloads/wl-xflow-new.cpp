// C++ twin of wl-xflow.c (see xalloc.h): operator new and sized delete.
#include "wl-xflow.c"
