"""A Python workload for the mheap demo: many small, short- and long-lived
objects (dicts, lists, strings, tuples), JSON round trips, sorting, and a
release of most of the data at the end.  Prints a digest of its results
(identical under any allocator), its time and its peak resident memory."""
import hashlib
import json
import random
import resource
import time

start = time.perf_counter()
rng = random.Random(1234)
digest = hashlib.sha256()

# A long-lived table of records, replaced at random.
table = {}
for i in range(200_000):
    table[i] = {"id": i, "name": "item-%d" % i, "tags": [rng.random() for _ in range(rng.randint(0, 8))]}
for _ in range(300_000):
    k = rng.randrange(200_000)
    table[k] = {"id": k, "name": "x" * rng.randint(1, 200), "tags": list(range(rng.randint(0, 20)))}

# JSON round trips of slices of the table.
for j in range(20):
    chunk = {str(k): table[k] for k in range(j * 5000, (j + 1) * 5000)}
    text = json.dumps(chunk, sort_keys=True)
    back = json.loads(text)
    digest.update(text.encode())
    assert len(back) == len(chunk)

# Sorting tuples and building strings.
rows = sorted((len(v["name"]), k) for k, v in table.items())
digest.update(repr(rows[:1000]).encode())
words = " ".join(v["name"][:5] for v in table.values())
digest.update(words.encode())

# An object graph: a tree of small objects, built and dropped.
class Node:
    __slots__ = ("left", "right", "value")

    def __init__(self, value, left=None, right=None):
        self.value, self.left, self.right = value, left, right

def build(depth):
    if depth == 0:
        return Node(rng.random())
    return Node(depth, build(depth - 1), build(depth - 1))

def total(n):
    return 0 if n is None else 1 + total(n.left) + total(n.right)

for _ in range(4):
    digest.update(str(total(build(16))).encode())

# Most data goes away; a little stays.
del rows, words
for k in list(table):
    if k % 10:
        del table[k]

elapsed = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("digest %s" % digest.hexdigest()[:16])
print("time %.2f s, peak RSS %.1f MiB" % (elapsed, peak_kib / 1024))
