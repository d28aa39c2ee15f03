// C++ twin of wl-xmix.c (see xalloc.h): operator new and sized delete.
#include "wl-xmix.c"
