/* gcfinal.h - what the finalization files share: the record, bdwgc's
 * switches, the queue of ready records and the batches running, and the
 * calls between the files (internal; gcfinal.c keeps the records and the
 * pause's steps, gclinks.c the links, gcfinrun.c runs finalizers). */
#ifndef MHEAP_GCFINAL_H
#define MHEAP_GCFINAL_H

#include "gc.h"

/* bdwgc's switches (gc_boehm_final.c): plain variables a program may
 * write, read with relaxed atomic loads. */
extern int GC_finalize_on_demand;
extern int GC_java_finalization;
extern void (*GC_finalizer_notifier)(void);
#define SWITCH_GET(v) __atomic_load_n(&(v), __ATOMIC_RELAXED)
#define SWITCH_SET(v, x) __atomic_store_n(&(v), (x), __ATOMIC_RELAXED)

/* (sorted within an offset by kind) */
enum {
    SP_FINALIZER = 1,
    SP_CLEANUP = 2,
    SP_WEAK = 3,
};

typedef struct mhi_special mhi_special;
struct mhi_special {
    mhi_special *next;   /* on its span's list, or on the queue */
    mhi_special **pprev; /* on a span's list: the link to it (O(1) removal) */
    mhi_span *span;    /* the span it is on */
    size_t offset;     /* of the object in its span */
    uint8_t kind;
    uint8_t mode; /* finalizers: MH_GC_FINALIZE_* */
    uint8_t rooted; /* its root word (data, or weak: fn) may be a GC object */
    void *fn;     /* finalizer, cleanup: the function; weak: the handle (a
                   * pointer-free GC object) */
    void *data;   /* finalizer, cleanup: the argument (a root) */
    void *obj;    /* queued: the object (NULL for a cleanup); on a span, in
                   * the pause: the next candidate (finalize step 2) */
};

/* Ready finalizers and cleanups are their records, off their span and on
 * the queue (GC lock): nothing is allocated in the pause. */
extern mhi_special *mhi_gcf_queue_head, **mhi_gcf_queue_tail;
extern _Atomic uint64_t mhi_gcf_queue_len; /* on the queue and awaiting */
/* Made ready by the last pause, waiting for the await function (GC lock;
 * the world lock holds collections off until they are on the queue). */
extern mhi_special *mhi_gcf_await_head;
/* Ready finalizers are taken from the queue in batches, under one hold
 * of the GC lock: a batch's records stay on the list of batches running
 * (GC lock), whose objects and arguments the pause marks, until the
 * whole batch has run and its records are freed, under a second hold.
 * (Copies of the objects in the running thread's frame would do for one
 * at a time, but a frame's array may live where no collection looks: a
 * sanitizer's fake stack.) */
typedef struct run_batch run_batch;
struct run_batch {
    run_batch *next, **pprev;
    mhi_special *recs; /* off the queue, chained by next */
};
extern run_batch *mhi_gcf_running; /* (GC lock) */
#define RUN_BATCH 32
/* Set around mh_gc_finalize_all's collections: every finalizer is ready. */
extern _Atomic int mhi_gcf_all;
/* Free a record taken off every list (GC lock). */
void mhi_gcf_rec_free(mhi_special *x);
/* Finalizer records on spans, registered and not yet ready (GC lock). */
uint64_t mhi_gcf_finalizers_registered_locked(void);

/* gcfinal.c, for gclinks.c (GC lock held unless said). */
void mhi_gcf_init_locked(void);
void mhi_gcf_count_alloc(uint64_t bytes); /* (toward the next collection) */
mhi_span *mhi_gcf_object_of(const void *p, size_t *off);    /* p in a live GC object */
mhi_span *mhi_gcf_container_of(const void *p, size_t *off); /* the object holding p */
bool mhi_gcf_marked(const mhi_span *s, size_t off);

/* gclinks.c, for gcfinal.c (GC lock held). */
extern uint64_t mhi_gcf_links_live[2]; /* registered short and long links */
void mhi_gcf_links_walk(bool shorts, bool longs); /* the pause's steps 1 and 4 */
void mhi_gcf_links_freed(mhi_span *s, uintptr_t lo, uintptr_t hi); /* [lo, hi) freed */
uint64_t mhi_gcf_links_sys(void);   /* the index's memory from the OS (no lock) */
uint64_t mhi_gcf_links_bytes(void); /* the index's bytes, paced as heap */

#endif
