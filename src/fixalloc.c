/* fixalloc.c - fixed-size and persistent metadata allocators. */
#include "fixalloc.h"

#include "os.h"

#define FIX_CHUNK ((size_t)64 << 10)
#define PERSIST_CHUNK ((size_t)256 << 10)

static mhi_lock_t persist_lock = MHI_LOCK_INIT(MHI_RANK_PERSIST);
static char *persist_cur;
static size_t persist_left;

void *mhi_persistent_alloc(size_t size, size_t align, _Atomic uint64_t *stat) {
    if (align < 16) align = 16;
    if (size >= PERSIST_CHUNK / 4) return mhi_os_alloc((size + 4095) & ~(size_t)4095, stat);
    mhi_lock(&persist_lock);
    uintptr_t p = ((uintptr_t)persist_cur + align - 1) & ~(uintptr_t)(align - 1);
    size_t waste = p - (uintptr_t)persist_cur;
    if (!persist_cur || waste + size > persist_left) {
        char *c = mhi_os_alloc(PERSIST_CHUNK, stat);
        if (!c) {
            mhi_unlock(&persist_lock);
            return NULL;
        }
        persist_cur = c;
        persist_left = PERSIST_CHUNK;
        p = (uintptr_t)c;
        waste = 0;
    }
    persist_cur = (char *)(p + size);
    persist_left -= waste + size;
    mhi_unlock(&persist_lock);
    return (void *)p;
}

void mhi_fixalloc_init(mhi_fixalloc *f, size_t size, _Atomic uint64_t *stat) {
    f->size = (size + 15) & ~(size_t)15;
    f->list = NULL;
    f->chunk = NULL;
    f->nchunk = 0;
    f->inuse = 0;
    f->stat = stat;
}

void *mhi_fixalloc_alloc(mhi_fixalloc *f) {
    void *p;
    if (f->list) {
        p = f->list;
        f->list = f->list->next;
    } else {
        if (f->nchunk < f->size) {
            char *c = mhi_persistent_alloc(FIX_CHUNK, 64, f->stat);
            if (!c) return NULL;
            f->chunk = c;
            f->nchunk = FIX_CHUNK;
        }
        p = f->chunk;
        f->chunk += f->size;
        f->nchunk -= f->size;
    }
    f->inuse++;
    return p;
}

void mhi_fixalloc_free(mhi_fixalloc *f, void *p) {
    mhi_fixlink *l = p;
    l->next = f->list;
    f->list = l;
    f->inuse--;
}
