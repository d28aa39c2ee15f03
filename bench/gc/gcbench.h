/* gcbench.h - the GCBench workload (after the benchmark of John Ellis and
 * Pete Kovac, as adapted to C by Hans Boehm), shared by gcbench.c and
 * gcbench_mt.c.
 *
 * Shape, for a maximum depth D (default 20):
 *   1. a "stretch" tree of depth D+1 is built bottom-up and dropped;
 *   2. a long-lived tree of depth min(16, D) is built top-down and kept,
 *      with a pointer-free array of 500,000 doubles (GC_MALLOC_ATOMIC),
 *      half of them filled;
 *   3. for each depth d = 4, 6, ..., D: 2 * size(D+1) / size(d) trees of
 *      depth d are built top-down (a node, then its children filled in)
 *      and dropped, then the same number bottom-up (children first).
 * size(d) = 2^(d+1) - 1 nodes.  The last tree of each batch is counted, and
 * after each depth the long-lived tree and the array are checked. */
#ifndef GCBENCH_H
#define GCBENCH_H

#include "gcb.h"

#define GCBENCH_MIN_DEPTH 4
#define GCBENCH_ARRAY_SIZE 500000

typedef struct Node0 {
  struct Node0 *left;
  struct Node0 *right;
  int i, j;
} Node;

typedef struct {
  int max_depth;
  int stretch_depth;
  int long_lived_depth;
} gcbench_params;

/* What a mutator counted: folded into the checksum. */
typedef struct {
  uint64_t hash;
  uint64_t nodes;  /* nodes allocated */
  uint64_t errors; /* trees found with the wrong number of nodes */
} gcbench_tally;

/* The long-lived structures, kept in static storage (a root for both
 * collectors). */
static struct {
  Node *tree;
  double *array;
} gcbench_keep;

static inline long gcbench_tree_size(int depth) { return (1L << (depth + 1)) - 1; }

static inline long gcbench_iterations(const gcbench_params *p, int depth) {
  return 2 * gcbench_tree_size(p->stretch_depth) / gcbench_tree_size(depth);
}

static inline void gcbench_fold(gcbench_tally *t, uint64_t v) { t->hash = gcb_mix64(t->hash ^ v); }

static Node *gcbench_node(gcbench_tally *t, Node *left, Node *right) {
  Node *n = GC_NEW(Node);
  if (!n) {
    fprintf(stderr, "gcbench: out of memory\n");
    exit(2);
  }
  n->left = left;
  n->right = right;
  t->nodes++;
  return n;
}

/* Gives n children down to the given depth. */
static void gcbench_populate(gcbench_tally *t, int depth, Node *n) {
  if (depth <= 0)
    return;
  depth--;
  n->left = gcbench_node(t, NULL, NULL);
  n->right = gcbench_node(t, NULL, NULL);
  gcbench_populate(t, depth, n->left);
  gcbench_populate(t, depth, n->right);
}

static Node *gcbench_make_tree(gcbench_tally *t, int depth) {
  if (depth <= 0)
    return gcbench_node(t, NULL, NULL);
  Node *left = gcbench_make_tree(t, depth - 1);
  return gcbench_node(t, left, gcbench_make_tree(t, depth - 1));
}

static long gcbench_count(const Node *n) {
  long c = 0;
  while (n) {
    c += 1 + gcbench_count(n->right);
    n = n->left;
  }
  return c;
}

/* Counts a tree that should hold size(depth) nodes. */
static void gcbench_check_tree(gcbench_tally *t, const Node *n, int depth) {
  long c = gcbench_count(n);
  if (c != gcbench_tree_size(depth))
    t->errors++;
  gcbench_fold(t, (uint64_t)c);
}

static void gcbench_check_long_lived(gcbench_tally *t, const gcbench_params *p) {
  gcbench_check_tree(t, gcbench_keep.tree, p->long_lived_depth);
  if (gcbench_keep.array[1000] != 1.0 / 1000)
    t->errors++;
}

/* The trees of one depth numbered part, part + nparts, ... (all of them
 * for nparts 1); top-down first, then bottom-up. */
static void gcbench_depth(gcbench_tally *t, const gcbench_params *p, int depth, long part,
                          long nparts, double seconds[2]) {
  long iters = gcbench_iterations(p, depth);
  double t0 = gcb_now();
  for (long i = part; i < iters; i += nparts) {
    Node *tree = gcbench_node(t, NULL, NULL);
    gcbench_populate(t, depth, tree);
    if (i + nparts >= iters)
      gcbench_check_tree(t, tree, depth);
  }
  double t1 = gcb_now();
  for (long i = part; i < iters; i += nparts) {
    Node *tree = gcbench_make_tree(t, depth);
    if (i + nparts >= iters)
      gcbench_check_tree(t, tree, depth);
  }
  seconds[0] = t1 - t0;
  seconds[1] = gcb_now() - t1;
}

/* Steps 1 and 2. */
static void gcbench_setup(gcbench_tally *t, const gcbench_params *p) {
  Node *stretch = gcbench_make_tree(t, p->stretch_depth);
  gcbench_check_tree(t, stretch, p->stretch_depth);
  stretch = NULL;

  gcbench_keep.tree = gcbench_node(t, NULL, NULL);
  gcbench_populate(t, p->long_lived_depth, gcbench_keep.tree);
  double *a = GC_MALLOC_ATOMIC(sizeof(double) * GCBENCH_ARRAY_SIZE);
  if (!a) {
    fprintf(stderr, "gcbench: out of memory\n");
    exit(2);
  }
  for (int i = 0; i < GCBENCH_ARRAY_SIZE / 2; i++)
    a[i] = i ? 1.0 / i : 0.0;
  gcbench_keep.array = a;
}

/* Parameters from argv[1] (the maximum depth); exits on a bad one. */
static gcbench_params gcbench_parse(int argc, char **argv) {
  gcbench_params p;
  p.max_depth = (int)gcb_arg(argc, argv, 1, 20);
  if (p.max_depth < GCBENCH_MIN_DEPTH || p.max_depth > 26) {
    fprintf(stderr, "usage: %s [max_depth (4..26, default 20)]\n", argv[0]);
    exit(2);
  }
  p.stretch_depth = p.max_depth + 1;
  p.long_lived_depth = p.max_depth < 16 ? p.max_depth : 16;
  return p;
}

#endif
