/* secure.h - the secure build (MHEAP_SECURE=1, libmheap-secure): a layer
 * above the core's malloc entry points that checks every block on free
 * and realloc, delays and randomises reuse and protects freed and
 * neighbouring memory.  docs/design.md, "Secure mode", has the layout and
 * what each check catches.  The default build compiles none of this. */
#ifndef MHEAP_SECURE_H
#define MHEAP_SECURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "span.h"

#if MHEAP_SECURE
void *mhi_secure_malloc(size_t size);
void *mhi_secure_calloc(size_t n, size_t size);
void *mhi_secure_realloc(void *p, size_t size);
void *mhi_secure_reallocarray(void *p, size_t n, size_t size);
void *mhi_secure_malloc_aligned(size_t align, size_t size);
void mhi_secure_free(void *p);
void mhi_secure_free_sized(void *p, size_t size, size_t align);
/* The size the block was asked for (what may be written before its
 * canary); 0 for NULL. */
size_t mhi_secure_usable_size(const void *p);

/* Draw the secret, install the fault handler (at load, and on first use
 * if that comes first). */
void mhi_secure_init(void);
/* At exit (process.c): check the blocks of this thread's quarantine. */
void mhi_secure_at_exit(void);
void mhi_secure_fork_prepare(void);
void mhi_secure_fork_parent(void);
void mhi_secure_fork_child(void);

/* A fresh small-object span (central.c, central lock held): make its last
 * page the guard page, zero its objects if its pages may hold old data,
 * and link its n objects of `size` bytes in a random order; returns the
 * head of the list. */
void *mhi_secure_span_setup(mhi_span *s, uint32_t size, uint32_t n);
/* The page heap takes s back: make its PROT_NONE pages accessible. */
void mhi_secure_unguard(mhi_span *s);
/* The fault handler (securefault.c): names a fault of the heap's, else
 * passes it on (mhi_os_fault_chain). */
void mhi_secure_fault_handler(int sig, void *info, void *ctx);
#endif

#endif
