"""The workloads: their definitions, the wl-* programs and the generated
inputs of the gcc and sqlite workloads."""

import subprocess
import sys

from .common import NPROC, ROOT, WL_SRC, log


class Workload:
    """kind: 'exe' (a wl-* program), 'python', 'gcc', 'sqlite', 'redis'.
    metric: 'time_s' (the program's own timing, from its result line),
    'wall' (wall time of the process), 'redis' (requests/s)."""

    def __init__(self, name, kind, desc, metric="time_s", exe=None, threads=1,
                 quick=None, full=None):
        self.name, self.kind, self.desc, self.metric = name, kind, desc, metric
        self.exe, self.threads = exe, threads
        self.size = {"quick": quick, "full": full}


# Programs a workload kind needs on PATH (or at that path).
PROGRAMS = {"sqlite": ["sqlite3"], "redis": ["redis-server", "redis-benchmark"],
            "gcc": ["gcc"], "python": ["/usr/bin/python3"]}


def workloads(cpus=None):
    """The workloads, their thread counts sized for cpus CPUs (default: this
    machine's)."""
    cpus = cpus or NPROC
    t = max(2, cpus)
    pairs = max(1, cpus // 2)
    return [
        Workload("exprtree", "exe", "1 thread: big-number expression trees built and dropped "
                 "(small short-lived objects)", exe="wl-exprtree", quick=0.5, full=1.0),
        Workload("pool", "exe", "1 thread: 100k-slot pool, random replacement, 8 B..1 KiB "
                 "power-law", exe="wl-pool", quick=0.3, full=1.0),
        Workload("server", "exe", "%d threads, own pools, 15%% of objects freed by another "
                 "thread via hand-off queues" % t, exe="wl-server", threads=t, quick=0.5, full=1.0),
        Workload("prodcons", "exe", "%d producer(s) only allocate, %d consumer(s) only free "
                 "(bounded queues)" % (pairs, pairs), exe="wl-prodcons", threads=pairs,
                 quick=0.3, full=1.0),
        Workload("fs-active", "exe", "%d threads each malloc/write/free 8-byte objects "
                 "(active false sharing); time for a fixed number of writes" % t,
                 exe="wl-fs-active", threads=t, quick=0.6, full=1.0),
        Workload("fs-passive", "exe", "as fs-active, after each thread frees a neighbour "
                 "object allocated by main (passive false sharing)", exe="wl-fs-passive",
                 threads=t, quick=0.6, full=1.0),
        Workload("churn", "exe", "rounds of %d short-lived threads; 30%% of objects freed by "
                 "the next round's threads" % (2 * t), exe="wl-churn", threads=2 * t,
                 quick=0.4, full=1.0),
        Workload("handover", "exe", "%d lanes: a thread replaces random slots of its 10k live "
                 "objects (8 B..1000 B), then hands the whole array to a new thread and exits "
                 "(20k replacements per thread)" % t, exe="wl-handover", threads=t,
                 quick=0.3, full=1.0),
        Workload("handover-new", "exe", "handover in C++: operator new, sized operator delete",
                 exe="wl-handover-new", threads=t, quick=0.3, full=1.0),
        Workload("xflow", "exe", "%d producer(s) allocate 64 B blocks at full speed, %d other "
                 "thread(s) only free them (lock-free chains of 64, no bounded queue)" % (
                     pairs, pairs), exe="wl-xflow", threads=pairs, quick=0.3, full=1.0),
        Workload("xflow-new", "exe", "xflow in C++: operator new, sized operator delete",
                 exe="wl-xflow-new", threads=pairs, quick=0.3, full=1.0),
        Workload("xmix", "exe", "%d threads replace random slots of 2000 objects of 16 B..16 KiB "
                 "(log-uniform), written whole; 20%% handed to other threads to free "
                 "(lock-free chains)" % t, exe="wl-xmix", threads=t, quick=0.3, full=1.0),
        Workload("xmix-new", "exe", "xmix in C++: operator new, sized operator delete",
                 exe="wl-xmix-new", threads=t, quick=0.3, full=1.0),
        Workload("large", "exe", "5..25 MiB blocks, up to 20 live, every 4 KiB page written",
                 exe="wl-large", quick=0.2, full=1.0),
        Workload("realloc", "exe", "2000 buffers grown by 1..32-byte appends (exact, doubling, "
                 "+64 B realloc)", exe="wl-realloc", quick=0.3, full=1.0),
        Workload("frag", "exe", "fill 1 GiB (quick: 256 MiB) of mixed sizes, free 90%, 1 s of "
                 "light activity, allocate again; time excludes the 1 s", exe="wl-frag",
                 quick=0.25, full=1.0),
        Workload("python", "python", "/usr/bin/python3 (PYTHONMALLOC=malloc): records, dicts, "
                 "sort, json, object trees", metric="wall", quick=0.15, full=1.0),
        Workload("gcc", "gcc", "gcc -O2 -c of a generated C file", metric="wall",
                 quick=150, full=800),
        Workload("sqlite", "sqlite", "sqlite3 :memory: - inserts in transactions, indexes, "
                 "queries, updates", metric="wall", quick=80000, full=200000),
        Workload("redis", "redis", "redis-server under redis-benchmark -t set,get,lpush,lpop "
                 "-d 256 -c 50 -r 100000 -P 16 on 127.0.0.1", metric="redis", quick=150000,
                 full=1000000),
    ]


def size_note(w, mode):
    """The threads and size of w in this mode, as the markdown lists them."""
    if w.kind == "exe":
        return "threads %d, scale %s" % (w.threads, w.size[mode])
    return {"python": "scale %s", "gcc": "%s functions", "sqlite": "%s rows",
            "redis": "-n %s per test"}[w.kind] % w.size[mode]


def ensure_workloads(build):
    """The wl-* programs and the glibc shim: from <build>/bench/workloads when
    bench/CMakeLists.txt includes workloads.cmake; otherwise built here from
    the same workloads.cmake in a side project under <build>."""
    names = sorted(p.stem for p in list(WL_SRC.glob("wl-*.c")) + list(WL_SRC.glob("wl-*.cpp")))
    want = names + ["libwl-glibc-shim.so", "rusage-launch"]
    main_dir = build / "bench" / "workloads"
    newest_src = max(p.stat().st_mtime for p in list(WL_SRC.glob("*.[ch]")) +
                     list(WL_SRC.glob("*.cpp")))

    def complete(d):
        return all((d / n).exists() for n in want) and \
            min((d / n).stat().st_mtime for n in want) >= newest_src

    if complete(main_dir):
        return main_dir
    side = build / "bench-workloads"
    src = side / "src"
    src.mkdir(parents=True, exist_ok=True)
    cml = ("cmake_minimum_required(VERSION 3.16)\nproject(mheap_workloads C CXX)\n"
           "set(CMAKE_C_STANDARD 11)\nset(CMAKE_C_EXTENSIONS OFF)\n"
           'include("%s")\n' % (ROOT / "bench" / "workloads.cmake"))
    if not (src / "CMakeLists.txt").exists() or (src / "CMakeLists.txt").read_text() != cml:
        (src / "CMakeLists.txt").write_text(cml)
    log("workloads not in %s (bench/CMakeLists.txt does not include workloads.cmake yet?):"
        " building them in %s" % (main_dir, side / "build"))
    r = subprocess.run(["cmake", "-S", str(src), "-B", str(side / "build"),
                        "-DCMAKE_BUILD_TYPE=Release"], stdout=subprocess.DEVNULL)
    if r.returncode == 0:
        r = subprocess.run(["cmake", "--build", str(side / "build"), "-j", str(NPROC)],
                           stdout=subprocess.DEVNULL)
    if r.returncode != 0:
        sys.exit("building the workloads failed")
    return side / "build" / "bench" / "workloads"


def prepare_inputs(build, mode, wls, seed):
    """The generated input file of each gcc and sqlite workload, made once
    per size and seed under <build>/bench/inputs; {workload name: path}."""
    d = build / "bench" / "inputs"
    generators = {"gcc": ("gen-%d-%d.c", "gen_c.py"), "sqlite": ("sql-%d-%d.sql", "gen_sql.py")}
    inputs = {}
    for w in wls:
        if w.kind not in generators:
            continue
        pattern, script = generators[w.kind]
        n = w.size[mode]
        f = d / (pattern % (n, seed))
        if not f.exists():
            d.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, str(WL_SRC / script), str(n), str(seed), str(f)],
                           check=True)
        inputs[w.name] = f
    return inputs
