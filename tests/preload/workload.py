# workload.py - an allocation-heavy Python workload for the LD_PRELOAD tests.
#
# Run with PYTHONMALLOC=malloc (so every Python object comes from malloc) and
# PYTHONHASHSEED=0; prints one digest line per stage and a final digest, all
# of which must be the same whichever allocator serves malloc.
#
# MHEAP_EXPECT=1: also check (through ctypes) that mheap is the allocator in
# this process: mh_stats_get is found and counts a 10 MiB bytearray as in
# use.  MHEAP_EXPECT=0: check that mh_stats_get is not found.  These checks
# write to stderr only, and a failure exits with status 1.
import ctypes
import gc
import hashlib
import json
import os
import random
import sys
import threading

TOTAL = hashlib.sha256()


def stage(name, value):
    h = hashlib.sha256(repr(value).encode()).hexdigest()[:16]
    TOTAL.update(name.encode() + b"=" + h.encode())
    print(f"{name}: {h}")


def dicts_and_strings(rng):
    d = {}
    for i in range(150_000):
        k = f"key-{rng.randrange(1 << 30):x}-{i}"
        d[k] = (i, str(i) * (i % 7), [i] * (i % 5))
    for k in list(d)[::3]:
        del d[k]
    words = " ".join(k.split("-")[1] for k in d)
    parts = words.upper().replace("A", "aa").split()
    counts = {}
    for w in parts:
        counts[w[:2]] = counts.get(w[:2], 0) + 1
    return len(d), sum(len(v[1]) for v in d.values()), sorted(counts.items())[:50]


def json_roundtrip(rng):
    doc = [
        {
            "id": i,
            "name": "".join(chr(97 + rng.randrange(26)) for _ in range(rng.randrange(1, 20))),
            "tags": [rng.randrange(1000) for _ in range(rng.randrange(8))],
            "nested": {"x": rng.random(), "y": [None, True, False, i * 0.5]},
        }
        for i in range(40_000)
    ]
    text = json.dumps(doc, sort_keys=True)
    back = json.loads(text)
    assert back == doc, "json round trip changed the document"
    text2 = json.dumps(back, indent=1, sort_keys=True)
    return len(text), hashlib.sha256(text.encode()).hexdigest(), len(text2)


def sorting(rng):
    rows = [(rng.randrange(1000), f"{rng.random():.6f}", rng.randrange(1 << 20)) for _ in range(200_000)]
    a = sorted(rows)
    b = sorted(rows, key=lambda r: (r[1], -r[2]))
    c = sorted((str(r[2]) for r in rows), reverse=True)
    return a[:5], a[-5:], b[:5], c[:5], sum(r[2] for r in a[::1000])


class Node:
    def __init__(self, ident, label):
        self.ident = ident
        self.label = label
        self.edges = []
        self.attrs = {"weight": ident % 13, "name": label * 2}


class Graph:
    def __init__(self):
        self.nodes = {}

    def add(self, node):
        self.nodes[node.ident] = node

    def bfs(self, start):
        seen = {start}
        order = [start]
        i = 0
        while i < len(order):
            for e in self.nodes[order[i]].edges:
                if e.ident not in seen:
                    seen.add(e.ident)
                    order.append(e.ident)
            i += 1
        return order


def object_graph(rng):
    g = Graph()
    n = 60_000
    for i in range(n):
        g.add(Node(i, f"n{i}"))
    for i in range(n):
        node = g.nodes[i]
        for _ in range(rng.randrange(1, 5)):
            node.edges.append(g.nodes[rng.randrange(n)])
    order = g.bfs(0)
    weight = sum(g.nodes[i].attrs["weight"] for i in order)
    # Make cycles garbage and let the collector free them.
    del g
    collected = gc.collect()
    return len(order), weight, order[:10], collected >= 0


def growth(rng):
    buf = bytearray()
    s = ""
    for i in range(30_000):
        buf += bytes([i & 255]) * rng.randrange(1, 40)
        if i % 3 == 0:
            s += chr(65 + i % 26)
    lst = []
    for i in range(100_000):
        lst.append(i)
        if i % 20 == 0:
            lst.pop(0)
    return len(buf), hashlib.sha256(bytes(buf)).hexdigest(), len(s), s[-20:], len(lst), sum(lst)


def threads(rng):
    seeds = [rng.randrange(1 << 30) for _ in range(4)]
    results = [None] * 4

    def work(k):
        r = random.Random(seeds[k])
        data = {}
        for i in range(20_000):
            data[r.randrange(5000)] = [str(i)] * r.randrange(4)
        results[k] = (len(data), sum(len(v) for v in data.values()))

    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return results


def expect_mheap(want):
    lib = ctypes.CDLL(None)
    try:
        fn = lib.mh_stats_get
    except AttributeError:
        fn = None
    if want == "0":
        if fn is not None:
            print("MHEAP_EXPECT=0 but mh_stats_get is defined", file=sys.stderr)
            return False
        print("python: malloc is the system allocator", file=sys.stderr)
        return True
    if fn is None:
        print("MHEAP_EXPECT=1 but mh_stats_get is not found: mheap not preloaded", file=sys.stderr)
        return False
    buf = (ctypes.c_uint64 * 32)()  # larger than mh_stats_t
    fn.restype = ctypes.c_size_t
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    n = fn(buf, ctypes.sizeof(buf))
    before = buf[2]  # heap_inuse: after version, size (two uint32) and heap_sys
    big = bytearray(10 << 20)
    fn(buf, ctypes.sizeof(buf))
    after = buf[2]
    del big
    ok = n >= 32 and after >= before + (10 << 20)
    print(f"python: malloc is mheap: heap_inuse {before} -> {after} after a 10 MiB bytearray",
          file=sys.stderr)
    return ok


def main():
    want = os.environ.get("MHEAP_EXPECT", "")
    ok = expect_mheap(want) if want else True
    rng = random.Random(20240601)
    stage("dicts_and_strings", dicts_and_strings(rng))
    stage("json", json_roundtrip(rng))
    stage("sorting", sorting(rng))
    stage("object_graph", object_graph(rng))
    stage("growth", growth(rng))
    stage("threads", threads(rng))
    print("digest:", TOTAL.hexdigest())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
