"""Workload 10a: a Python program, run with PYTHONMALLOC=malloc so that every
object allocation goes to malloc (and so to the preloaded allocator).

Builds records (dicts of strings, ints, floats, lists), indexes them in
dicts, sorts them, round-trips them through json, builds and drops a binary
tree of small objects, and does string processing.  Prints
`result: check=<crc32> ...`; the checksum depends only on the arguments.

    python3 py_workload.py [scale [seed]]      (full: scale 1)
"""
import json
import random
import sys
import time
import zlib


class Node:
    __slots__ = ("key", "left", "right", "payload")

    def __init__(self, key, payload):
        self.key = key
        self.left = None
        self.right = None
        self.payload = payload


def tree_insert(root, key, payload):
    if root is None:
        return Node(key, payload)
    node = root
    while True:
        if key < node.key:
            if node.left is None:
                node.left = Node(key, payload)
                return root
            node = node.left
        else:
            if node.right is None:
                node.right = Node(key, payload)
                return root
            node = node.right


def tree_sum(root):
    total, stack = 0, [root]
    while stack:
        n = stack.pop()
        if n is None:
            continue
        total = (total + n.key * len(n.payload)) & 0xFFFFFFFF
        stack.append(n.left)
        stack.append(n.right)
    return total


def word(rng, lo=3, hi=12):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(lo, hi)))


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 42
    rng = random.Random(seed)
    n = max(1000, int(200000 * scale))
    crc = 0
    t0 = time.perf_counter()

    vocab = [word(rng) for _ in range(5000)]
    records = []
    for i in range(n):
        records.append({
            "id": i,
            "name": rng.choice(vocab) + "-" + rng.choice(vocab),
            "score": rng.random() * 1000.0,
            "tags": [rng.choice(vocab) for _ in range(rng.randint(0, 6))],
            "count": rng.randint(0, 1 << 20),
        })
    by_tag = {}
    for r in records:
        for t in r["tags"]:
            by_tag.setdefault(t, []).append(r["id"])
    crc = zlib.crc32(repr(sorted((k, len(v)) for k, v in by_tag.items())[:200]).encode(), crc)

    records.sort(key=lambda r: (r["name"], r["count"]))
    crc = zlib.crc32(",".join(str(r["id"]) for r in records[:: max(1, n // 1000)]).encode(), crc)

    # json round trip, in chunks
    for k in range(0, n, 5000):
        s = json.dumps(records[k:k + 5000], sort_keys=True)
        back = json.loads(s)
        crc = zlib.crc32(str(len(s)).encode(), crc)
        crc = zlib.crc32(str(sum(r["count"] for r in back)).encode(), crc)
        del s, back

    # a tree of small objects, built and dropped several times
    for rep in range(4):
        root = None
        for i in range(n // 4):
            root = tree_insert(root, rng.randrange(1 << 30), rng.choice(vocab) * rng.randint(1, 4))
        crc = zlib.crc32(str(tree_sum(root)).encode(), crc)
        del root

    # string processing: split, join, replace, format, counting
    text = " ".join(rng.choice(vocab) for _ in range(n))
    counts = {}
    for w in text.split():
        counts[w] = counts.get(w, 0) + 1
    lines = ["%s:%d" % (w, c) for w, c in sorted(counts.items())]
    crc = zlib.crc32("\n".join(lines).replace("a", "A").encode(), crc)

    # tuples and sets churn
    acc = set()
    for i in range(n):
        t = (i % 977, rng.choice(vocab), i * 3)
        acc.add(t[:2])
        if len(acc) > 20000:
            acc = set(sorted(acc)[:5000])
    crc = zlib.crc32(str(len(acc)).encode(), crc)

    dt = time.perf_counter() - t0
    del records, by_tag, text, counts, lines, acc
    print("result: time_s=%.4f records=%d check=%08x errors=0" % (dt, n, crc))


if __name__ == "__main__":
    main()
