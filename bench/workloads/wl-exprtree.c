/* Workload 1: single thread, many small short-lived objects.
 *
 * Builds random expression trees whose leaves are big numbers (arrays of
 * 32-bit limbs, 1..12 limbs, with a short malloc'd label), evaluates each
 * tree bottom-up into freshly allocated big numbers (add, subtract,
 * multiply truncated to 48 limbs), prints the root as a malloc'd hex string,
 * folds that into the checksum and drops everything.  Size mix: 32-byte
 * nodes, 8..24-byte labels, 8..200-byte numbers, strings up to ~400 bytes.
 *
 *   wl-exprtree [threads(ignored) [scale [seed]]]
 *   full (scale 1): 60000 trees
 */
#include "common.h"

#define MAXL 48

typedef struct {
  uint32_t n;
  uint32_t limb[];
} big;

typedef struct node {
  int op; /* 0 leaf, 1 add, 2 sub, 3 mul */
  struct node *l, *r;
  big *leaf;
  char *label;
} node;

static big *big_new(uint32_t n) {
  big *b = wl_xmalloc(sizeof(big) + 4u * n);
  b->n = n;
  return b;
}

static void big_norm(big *b) {
  while (b->n > 1 && b->limb[b->n - 1] == 0) b->n--;
}

static big *big_add(const big *a, const big *b) {
  if (a->n < b->n) {
    const big *t = a;
    a = b;
    b = t;
  }
  uint32_t n = a->n + 1;
  if (n > MAXL) n = MAXL;
  big *c = big_new(n);
  uint64_t carry = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t s = carry;
    if (i < a->n) s += a->limb[i];
    if (i < b->n) s += b->limb[i];
    c->limb[i] = (uint32_t)s;
    carry = s >> 32;
  }
  big_norm(c);
  return c;
}

static int big_cmp(const big *a, const big *b) {
  if (a->n != b->n) return a->n < b->n ? -1 : 1;
  for (uint32_t i = a->n; i-- > 0;)
    if (a->limb[i] != b->limb[i]) return a->limb[i] < b->limb[i] ? -1 : 1;
  return 0;
}

/* |a - b| */
static big *big_sub(const big *a, const big *b) {
  if (big_cmp(a, b) < 0) {
    const big *t = a;
    a = b;
    b = t;
  }
  big *c = big_new(a->n);
  int64_t borrow = 0;
  for (uint32_t i = 0; i < a->n; i++) {
    int64_t s = (int64_t)a->limb[i] - borrow - (i < b->n ? (int64_t)b->limb[i] : 0);
    borrow = s < 0;
    c->limb[i] = (uint32_t)(s + (borrow ? (int64_t)1 << 32 : 0));
  }
  big_norm(c);
  return c;
}

/* a * b mod 2^(32*MAXL) */
static big *big_mul(const big *a, const big *b) {
  uint32_t n = a->n + b->n;
  if (n > MAXL) n = MAXL;
  big *c = big_new(n);
  memset(c->limb, 0, 4u * n);
  for (uint32_t i = 0; i < a->n && i < n; i++) {
    uint64_t carry = 0;
    for (uint32_t j = 0; j < b->n && i + j < n; j++) {
      uint64_t t = (uint64_t)a->limb[i] * b->limb[j] + c->limb[i + j] + carry;
      c->limb[i + j] = (uint32_t)t;
      carry = t >> 32;
    }
    if (i + b->n < n) c->limb[i + b->n] = (uint32_t)carry;
  }
  big_norm(c);
  return c;
}

static char *big_hex(const big *b) {
  static const char dig[] = "0123456789abcdef";
  char *s = wl_xmalloc(8u * b->n + 1);
  char *p = s;
  for (uint32_t i = b->n; i-- > 0;)
    for (int k = 7; k >= 0; k--) *p++ = dig[(b->limb[i] >> (4 * k)) & 15];
  *p = 0;
  return s;
}

static node *build(wl_rng *r, int depth) {
  node *n = wl_xmalloc(sizeof(node));
  if (depth <= 0 || wl_below(r, 100) < 12) {
    uint32_t nl = 1 + wl_below(r, 12);
    n->op = 0;
    n->l = n->r = NULL;
    n->leaf = big_new(nl);
    for (uint32_t i = 0; i < nl; i++) n->leaf->limb[i] = (uint32_t)wl_rand(r);
    n->leaf->limb[nl - 1] |= 1;
    big_norm(n->leaf);
    uint32_t ll = 8 + wl_below(r, 17);
    n->label = wl_xmalloc(ll);
    for (uint32_t i = 0; i + 1 < ll; i++) n->label[i] = (char)('a' + wl_below(r, 26));
    n->label[ll - 1] = 0;
  } else {
    n->op = 1 + (int)wl_below(r, 3);
    n->leaf = NULL;
    n->label = NULL;
    n->l = build(r, depth - 1);
    n->r = build(r, depth - 1);
  }
  return n;
}

static big *eval(const node *n, uint64_t *h) {
  if (n->op == 0) {
    big *c = big_new(n->leaf->n);
    memcpy(c->limb, n->leaf->limb, 4u * n->leaf->n);
    for (const char *p = n->label; *p; p++) *h = (*h ^ (unsigned char)*p) * 0x100000001B3ull;
    return c;
  }
  big *a = eval(n->l, h), *b = eval(n->r, h), *c;
  if (n->op == 1)
    c = big_add(a, b);
  else if (n->op == 2)
    c = big_sub(a, b);
  else
    c = big_mul(a, b);
  free(a);
  free(b);
  return c;
}

static void drop(node *n) {
  if (n->op == 0) {
    free(n->leaf);
    free(n->label);
  } else {
    drop(n->l);
    drop(n->r);
  }
  free(n);
}

int main(int argc, char **argv) {
  wl_args a = wl_parse(argc, argv, 1);
  uint64_t trees = wl_scaled(60000, a.scale, 10);
  wl_rng r;
  wl_rng_seed(&r, a.seed);
  uint64_t h = 0xcbf29ce484222325ull;
  double t0 = wl_now();
  for (uint64_t t = 0; t < trees; t++) {
    node *root = build(&r, 4 + (int)wl_below(&r, 5));
    big *v = eval(root, &h);
    char *s = big_hex(v);
    for (const char *p = s; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001B3ull;
    free(s);
    free(v);
    drop(root);
  }
  double dt = wl_now() - t0;
  printf("result: time_s=%.4f trees=%llu trees_per_s=%.0f check=%016llx errors=0\n", dt,
         (unsigned long long)trees, trees / dt, (unsigned long long)h);
  return 0;
}
