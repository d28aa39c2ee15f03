#!/usr/bin/env python3
"""Allocator comparison: mheap next to glibc malloc, jemalloc, tcmalloc and
mimalloc, on the workloads of bench/workloads/ and on real programs.

    python3 bench/run.py --build build --mode quick|full

(`make bench-quick` / `make bench` build the project first, then run this.)

Every workload runs under every allocator, interleaved (glibc, jemalloc,
tcmalloc, mimalloc, mheap, then again), for several rounds, so that drift
of a shared machine hits all allocators alike.  The allocators other than
glibc are put under the programs with LD_PRELOAD.  For each run the runner
records the wall time, the workload's own timing or throughput when it
prints one (`result: key=value ...`), and the peak RSS and minor page
faults from wait4, taken by a small launcher (bench/workloads/
rusage-launch.c: started from this process, a child would inherit its peak
RSS) and covering the program's own waited-for children (cc1 under gcc);
for redis, the server's VmHWM.  Every workload prints a checksum that must
be the same under every allocator.  It prints and writes (under docs/bench/,
or the directory given with --out):

    results-<mode>.csv   one row per run
    results-<mode>.md    medians, ratios, summary, machine, command
    time-<mode>.png      per workload: time / best peer's time, each allocator
    rss-<mode>.png       per workload: peak RSS / mimalloc's peak RSS

--cpus N sizes the thread counts of the multi-threaded workloads for N
CPUs instead of this machine's (the wl-* programs also take their thread
counts as their first argument: see bench/workloads/common.h).

--lib NAME=PATH (repeatable) adds an allocator preloaded from PATH, run in
the same rounds as the others; it is not a peer.  With it two builds of
mheap can be set side by side:

    python3 bench/run.py --allocators mheap --lib mheap-before=/tmp/old/src/libmheap.so

and the report then also gives, per workload, mheap's median time and
peak RSS over each such allocator's.  When --lib is given and --out is not,
the files go to a new temporary directory (printed), never to docs/bench/.

Missing peers and programs are installed with apt-get (libjemalloc2,
libtcmalloc-minimal4, libmimalloc2.0, sqlite3, redis-server, redis-tools,
python3-matplotlib) unless --no-install is given.  Standard library only;
the plots use matplotlib, from this interpreter or from Debian's
/usr/bin/python3, else gnuplot if present, else they are skipped.
The pieces live in bench/benchlib/ (see its __init__.py).

After the malloc section comes the garbage-collector section (benchlib/
gc.py): the programs of bench/gc/ under Debian's bdwgc as shipped, a tuned
bdwgc and mheap's collector, written to gc-results-<mode>.csv/.md in the
same directory.  --no-gc leaves it out; --gc-only runs it alone;
--gc-programs picks some of its programs.
"""

import argparse
import json
import os
import random
import re
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchlib.analysis import analyse
from benchlib.common import (ALLOCATORS, PEER_LIBS, ROOT, apt_install, cpu_busy_s, find_lib, log,
                             own_cpu_s)
from benchlib.gc import run_gc_section
from benchlib.report import machine_info, make_plots, markdown, plot, tables, write_csv
from benchlib.runner import run_one
from benchlib.workloads import PROGRAMS, ensure_workloads, prepare_inputs, workloads

DEFAULT_OUT = ROOT / "docs" / "bench"
LIB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\Z")


# ---------------------------------------------------------------- options

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="CMake build directory (libmheap.so in <build>/src)")
    ap.add_argument("--mode", choices=["quick", "full"], default="quick")
    ap.add_argument("--repeats", type=int, help="rounds (default: quick 5, full 5)")
    ap.add_argument("--only", help="comma-separated workloads to run")
    ap.add_argument("--allocators", help="comma-separated allocators (default: all five); the "
                    "--lib allocators are added to them (list a --lib NAME here to place it)")
    ap.add_argument("--lib", action="append", default=[], metavar="NAME=PATH",
                    help="also run allocator NAME, preloaded from the shared library PATH, in "
                    "the same rounds; not a peer (e.g. another build of mheap, to set against "
                    "this one); repeatable")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cpus", type=int, help="size the workloads' thread counts for this many "
                    "CPUs (default: this machine's)")
    ap.add_argument("--out", help="output directory (default: docs/bench/; with --lib, a new "
                    "temporary directory)")
    ap.add_argument("--no-install", action="store_true", help="never run apt-get")
    ap.add_argument("--timeout", type=float, help="per-run limit in seconds (quick 120, full 900)")
    sect = ap.add_mutually_exclusive_group()
    sect.add_argument("--gc-only", action="store_true", help="run only the garbage-collector "
                      "section (bench/gc/ under bdwgc and mheap)")
    sect.add_argument("--no-gc", action="store_true", help="leave out the garbage-collector "
                      "section")
    ap.add_argument("--gc-programs", help="comma-separated programs of the garbage-collector "
                    "section to run (default: all)")
    ap.add_argument("--plot-data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.extra_libs = parse_libs(ap, args.lib)
    return args


def parse_libs(ap, specs):
    """[(name, absolute path)] from the --lib NAME=PATH options."""
    libs = []
    for spec in specs:
        name, eq, path = spec.partition("=")
        if not eq or not name or not path:
            ap.error("--lib %s: expected NAME=PATH" % spec)
        if not LIB_NAME.match(name):
            ap.error("--lib %s: NAME may hold letters, digits and . _ + - only" % spec)
        if name in ALLOCATORS:
            ap.error("--lib %s: %s is a built-in allocator; choose another name" % (spec, name))
        if name in (n for n, _ in libs):
            ap.error("--lib %s: %s given twice" % (spec, name))
        path = os.path.abspath(os.path.expanduser(path))
        if not os.path.isfile(path):
            ap.error("--lib %s: %s is not a file" % (spec, path))
        if " " in path or ":" in path:
            ap.error("--lib %s: LD_PRELOAD cannot take a path with spaces or colons" % spec)
        libs.append((name, path))
    return libs


def output_dir(args):
    """The --out directory; without --out, docs/bench/, or a new temporary
    directory when --lib is given, so that comparisons of builds never
    replace the published results."""
    if args.out:
        outdir = Path(args.out)
    elif args.extra_libs:
        outdir = Path(tempfile.mkdtemp(prefix="mheap-bench-out-"))
        log("output directory: %s (a new temporary directory, since --lib is given; --out "
            "chooses another)" % outdir)
    else:
        outdir = DEFAULT_OUT
    outdir.mkdir(parents=True, exist_ok=True)
    return outdir


# ---------------------------------------------------------------- setup

def select_workloads(only, cpus=None):
    wls = workloads(cpus)
    if only:
        keep = only.split(",")
        unknown = [k for k in keep if k not in [w.name for w in wls]]
        if unknown:
            sys.exit("unknown workloads: " + ", ".join(unknown))
        wls = [w for w in wls if w.name in keep]
    return wls


def select_allocators(listed, extra_libs):
    """--allocators (default: the built-in five), then each --lib allocator
    that it does not already name."""
    allocs = listed.split(",") if listed else list(ALLOCATORS)
    return allocs + [n for n, _ in extra_libs if n not in allocs]


def install_missing(allocs, wls, allow):
    """apt-get the peers and programs that the chosen runs need."""
    need = []
    for a in allocs:
        if a in PEER_LIBS and not find_lib(PEER_LIBS[a][0]):
            need.append(PEER_LIBS[a][1])
    kinds = {w.kind for w in wls}
    if "sqlite" in kinds and not shutil.which("sqlite3"):
        need.append("sqlite3")
    if "redis" in kinds:
        if not shutil.which("redis-server"):
            need.append("redis-server")
        if not shutil.which("redis-benchmark"):
            need.append("redis-tools")
    if "python" in kinds and not Path("/usr/bin/python3").exists():
        need.append("python3")
    apt_install(need, allow)


def resolve_libs(allocs, build, extra_libs):
    """The library preloaded for each allocator (None for glibc), and the
    allocators that have one (or need none)."""
    libs = {"glibc": None}
    for a in allocs:
        if a in PEER_LIBS:
            libs[a] = find_lib(PEER_LIBS[a][0])
    libs["mheap"] = str(build / "src" / "libmheap.so")
    if "mheap" in allocs and not Path(libs["mheap"]).exists():
        sys.exit("%s not found: build the project first (make build)" % libs["mheap"])
    libs.update(extra_libs)
    missing = [a for a in allocs if a != "glibc" and not libs.get(a)]
    for a in missing:
        log("allocator %s not found: skipped" % a)
    return libs, [a for a in allocs if a not in missing]


def drop_missing_programs(wls):
    missing_prog = []
    for w in wls:
        progs = PROGRAMS.get(w.kind, [])
        if any(not shutil.which(p) for p in progs):
            log("workload %s skipped: %s not found" % (w.name, ", ".join(progs)))
            missing_prog.append(w.name)
    return [w for w in wls if w.name not in missing_prog]


# ---------------------------------------------------------------- the runs

def log_row(k, total, row, width):
    log("[%3d/%d] round %d %-10s %-*s %-8s %s  rss %.1f MiB  minflt %s%s" % (
        k, total, row["round"], row["workload"], width, row["allocator"], row["metric"] or "-",
        row["metric_value"] or "-", int(row["maxrss_kib"]) / 1024.0, row["minflt"],
        "" if row["status"] == "ok" else "  ** " + row["status"] +
        (": " + row["stderr_tail"].strip().splitlines()[-1]
         if row["stderr_tail"].strip() else "")))


def run_rounds(wls, allocs, libs, shim, ctx, args, mode, repeats, timeout):
    """Every workload under every allocator, round after round; the rows."""
    rows = []
    rng = random.Random(args.seed)
    total = repeats * len(wls) * len(allocs)
    width = max([9] + [len(a) + 1 for a in allocs])
    k = 0
    for rep in range(repeats):
        for w in wls:
            for a in allocs:
                k += 1
                preload = libs[a]
                if a == "glibc" and w.kind == "redis":
                    preload = shim  # Debian's redis-server is linked with jemalloc
                row = run_one(w, mode, a, preload, ctx, args.seed, rng, timeout)
                row = dict({"mode": mode, "round": rep + 1}, **row)
                rows.append(row)
                log_row(k, total, row, width)
    return rows


def load_note(elapsed, load_start, busy_start, mine_start, info):
    """Adds to info how busy the machine was during the run; returns the
    CPU-seconds used by other processes."""
    others = (cpu_busy_s() - busy_start) - (own_cpu_s() - mine_start)
    info["CPU used by other processes during the run"] = "%.0f CPU-seconds in %.0f s (%.0f%% of " \
        "one core on average; /proc/stat busy time minus this runner's own)" % (
            others, elapsed, 100.0 * others / elapsed if elapsed > 0 else 0)
    info["load average (1, 5, 15 min)"] = "%s at the start, %s at the end (other jobs on the " \
        "machine slow the multi-threaded workloads down most)" % (
            "/".join("%.2f" % x for x in load_start), "/".join("%.2f" % x for x in os.getloadavg()))
    return others


# ---------------------------------------------------------------- main

def main():
    args = parse_args()
    if args.plot_data:  # re-invoked under an interpreter that has matplotlib
        with open(args.plot_data) as f:
            plot(json.load(f), args.out or str(DEFAULT_OUT), args.mode)
        return 0

    build = Path(args.build)
    if not build.is_absolute():
        build = (Path.cwd() / build).resolve()
    outdir = output_dir(args)
    repeats = args.repeats or 5
    timeout = args.timeout or (120 if args.mode == "quick" else 900)
    command = "python3 bench/run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    bad = False
    if not args.gc_only:
        bad = malloc_section(args, build, outdir, repeats, timeout)
    if not args.no_gc:
        bad = run_gc_section(build, args.mode, repeats, args.seed, timeout, outdir,
                             not args.no_install, command, args.gc_programs) or bad
    return 1 if bad else 0


def malloc_section(args, build, outdir, repeats, timeout):
    """The allocator comparison; returns True when a run failed or a
    checksum differed."""
    t_start = time.time()
    load_start = os.getloadavg()
    busy_start, mine_start = cpu_busy_s(), own_cpu_s()
    mode = args.mode
    extras = [n for n, _ in args.extra_libs]

    wls = select_workloads(args.only, args.cpus)
    allocs = select_allocators(args.allocators, args.extra_libs)
    install_missing(allocs, wls, not args.no_install)
    libs, allocs = resolve_libs(allocs, build, args.extra_libs)
    wls = drop_missing_programs(wls)

    wl_dir = ensure_workloads(build)
    shim = str(wl_dir / "libwl-glibc-shim.so")
    inputs = prepare_inputs(build, mode, wls, args.seed)

    log("allocators: " + ", ".join("%s (%s)" % (a, libs[a] or "system, no LD_PRELOAD") for a in allocs))
    log("workloads:  " + ", ".join(w.name for w in wls))
    log("mode %s, %d rounds, interleaved; workload binaries in %s" % (mode, repeats, wl_dir))

    with tempfile.TemporaryDirectory(prefix="mheap-bench-") as tmp:
        ctx = {"wl_dir": wl_dir, "inputs": inputs, "tmp": tmp}
        rows = run_rounds(wls, allocs, libs, shim, ctx, args, mode, repeats, timeout)

    csv_path = outdir / ("results-%s.csv" % mode)
    write_csv(csv_path, rows)

    med, ratio, rss_ratio, mismatch, summ = analyse(rows, wls, allocs, extras)
    body = tables(wls, allocs, med, ratio, rss_ratio, mismatch, summ)
    plots, plotter = make_plots(wls, allocs, ratio, rss_ratio, str(outdir), mode, not args.no_install)

    elapsed = time.time() - t_start
    info = machine_info(build, libs, [x for x in extras if x in allocs])
    others = load_note(elapsed, load_start, busy_start, mine_start, info)
    run = {"mode": mode, "repeats": repeats, "nrows": len(rows), "elapsed": elapsed, "info": info,
           "libs": libs, "allocs": allocs, "wls": wls,
           "command": "python3 bench/run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])}
    md_path = outdir / ("results-%s.md" % mode)
    md_path.write_text("\n".join(markdown(run, body, plots, plotter)) + "\n")

    log("")
    for line in body:
        log(line)
    log("written: %s, %s%s" % (csv_path, md_path, "".join(", " + p for p in plots)))
    if not plots:
        log("no plots: neither matplotlib nor gnuplot available")
    log("total time %.0f s; other processes used %.0f CPU-seconds meanwhile" % (elapsed, others))
    return any(r["status"] != "ok" for r in rows) or bool(mismatch)


if __name__ == "__main__":
    sys.exit(main())
