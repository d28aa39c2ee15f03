/* xalloc.h - how the cross-thread workloads (wl-handover.c, wl-xflow.c,
 * wl-xmix.c) allocate and free their objects.
 *
 * Each of them is built twice: as C from wl-NAME.c, where objects come
 * from malloc and go back through free, and as C++ from wl-NAME-new.cpp,
 * which only includes wl-NAME.c: there objects come from operator new and
 * go back through the sized operator delete(void *, std::size_t), the
 * mangled _ZdlPvm, which a C++ program calls for `delete` of a complete
 * type (g++ -fsized-deallocation, the default from C++14 on).  The rest of
 * the program (its own arrays and queues) uses malloc in both. */
#ifndef WL_XALLOC_H
#define WL_XALLOC_H

#include "common.h"

#ifdef __cplusplus
#include <new>
#define WL_API "c++"
static inline void *wl_obj_new(size_t n) { return ::operator new(n); }
static inline void wl_obj_delete(void *p, size_t n) { ::operator delete(p, n); }
#else
#define WL_API "c"
static inline void *wl_obj_new(size_t n) { return wl_xmalloc(n); }
static inline void wl_obj_delete(void *p, size_t n) {
  (void)n;
  free(p);
}
#endif

/* Lock-free hand-off of chains of objects: a stack that any thread pushes
 * a whole chain onto with one compare-and-swap, and that its one reader
 * takes whole with one exchange (so no ABA: nothing is ever popped
 * singly).  The chain's links are wherever the workload puts them. */
typedef struct {
  void *head;
  uint64_t pending; /* objects pushed and not yet freed by the reader */
  char pad[48];
} wl_inbox;

/* Push the chain first .. (the object whose link is *last_link) of n
 * objects. */
static inline void wl_inbox_push(wl_inbox *b, void *first, void **last_link, uint64_t n) {
  __atomic_fetch_add(&b->pending, n, __ATOMIC_RELAXED); /* (first: the reader subtracts) */
  void *h = __atomic_load_n(&b->head, __ATOMIC_RELAXED);
  do {
    *last_link = h;
  } while (!__atomic_compare_exchange_n(&b->head, &h, first, 1, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED));
}

/* The reader: take every chain pushed so far (NULL: none); once it has
 * freed n of their objects it calls wl_inbox_done(b, n). */
static inline void *wl_inbox_take(wl_inbox *b) {
  if (__atomic_load_n(&b->head, __ATOMIC_RELAXED) == NULL) return NULL;
  return __atomic_exchange_n(&b->head, (void *)NULL, __ATOMIC_ACQUIRE);
}

static inline void wl_inbox_done(wl_inbox *b, uint64_t n) {
  __atomic_fetch_sub(&b->pending, n, __ATOMIC_RELAXED);
}

static inline uint64_t wl_inbox_pending(wl_inbox *b) {
  return __atomic_load_n(&b->pending, __ATOMIC_RELAXED);
}

#endif
