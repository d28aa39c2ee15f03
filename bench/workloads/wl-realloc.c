/* Workload 8: growth by realloc.
 *
 * 2,000 live buffers, each grown by appending 1..32 bytes at a time until it
 * reaches its target length (log-uniform, 32 B..64 KiB); then its contents
 * are checked and hashed, it is freed and a new buffer starts in its slot.
 * A third of the buffers are C strings reallocated to the exact length at
 * every append, a third are vectors whose capacity doubles, a third grow
 * their capacity by 64-byte steps.
 *
 *   wl-realloc [threads(ignored) [scale [seed]]]
 *   full (scale 1): 20 million appends
 */
#include "common.h"

#define LIVE 2000

typedef struct {
  unsigned char *p;
  size_t len, cap, target;
  int kind;
  uint64_t seq; /* content generator */
} buf;

static uint32_t targets[WL_SIZETAB];

static inline unsigned char content(uint64_t seq, size_t i) {
  return (unsigned char)((seq >> 24) * 0x9E37u + i * 7u + (i >> 8));
}

static void start(buf *b, wl_rng *r, uint64_t *seq) {
  b->p = NULL;
  b->len = b->cap = 0;
  b->target = wl_draw(targets, r);
  b->kind = (int)wl_below(r, 3);
  b->seq = (*seq)++ << 24;
}

static uint64_t finish(buf *b, uint64_t *errors) {
  uint64_t h = 0xcbf29ce484222325ull ^ b->len;
  for (size_t i = 0; i < b->len; i += 61) {
    if (b->p[i] != content(b->seq, i)) (*errors)++;
    h = (h ^ b->p[i]) * 0x100000001B3ull;
  }
  if (b->kind == 0 && b->p[b->len] != 0) (*errors)++;
  free(b->p);
  return h;
}

static void append(buf *b, size_t add) {
  size_t need = b->len + add + (b->kind == 0);
  if (need > b->cap) {
    size_t cap;
    if (b->kind == 0)
      cap = need;
    else if (b->kind == 1) {
      cap = b->cap ? b->cap : 16;
      while (cap < need) cap *= 2;
    } else
      cap = (need + 63) & ~(size_t)63;
    b->p = wl_xrealloc(b->p, cap);
    b->cap = cap;
  }
  for (size_t i = 0; i < add; i++) b->p[b->len + i] = content(b->seq, b->len + i);
  b->len += add;
  if (b->kind == 0) b->p[b->len] = 0;
}

int main(int argc, char **argv) {
  wl_args a = wl_parse(argc, argv, 1);
  uint64_t ops = wl_scaled(20e6, a.scale, 1000);
  wl_powerlaw_table(targets, 32, 65536, 1.0);
  wl_rng r;
  wl_rng_seed(&r, a.seed);
  buf *bufs = wl_xmalloc(sizeof(buf) * LIVE);
  uint64_t seq = 1, h = 0, errors = 0, done = 0;
  double t0 = wl_now();
  for (int i = 0; i < LIVE; i++) start(&bufs[i], &r, &seq);
  for (uint64_t k = 0; k < ops; k++) {
    buf *b = &bufs[wl_below(&r, LIVE)];
    append(b, 1 + wl_below(&r, 32));
    if (b->len >= b->target) {
      h += finish(b, &errors);
      done++;
      start(b, &r, &seq);
    }
  }
  for (int i = 0; i < LIVE; i++)
    if (bufs[i].p) h += finish(&bufs[i], &errors);
  double dt = wl_now() - t0;
  free(bufs);
  printf("result: time_s=%.4f appends=%llu buffers_done=%llu mappends_per_s=%.3f check=%016llx "
         "errors=%llu\n",
         dt, (unsigned long long)ops, (unsigned long long)done, ops / dt * 1e-6,
         (unsigned long long)h, (unsigned long long)errors);
  return errors ? 3 : 0;
}
