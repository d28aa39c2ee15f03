#!/usr/bin/env python3
"""Thread scaling: the threaded workloads of bench/workloads/ from 1 thread
up to many, under mheap and the peers, interleaved.

    python3 bench/scaling.py --build build [--threads 1,2,4,8,16]
        [--workloads server,prodcons,...] [--scale 0.3] [--repeats 3]
        [--out DIR]

Each workload prints its throughput (`result: ... <x>_per_s=...`), and the
work per thread is fixed, so a flat line of time and a rising line of
throughput are perfect scaling.  For every thread count, round and
workload the allocators run in a new random order (glibc, jemalloc,
tcmalloc, mimalloc, mheap and any --lib), so that a shared machine's drift
hits them alike.  Each run's peak RSS comes from bench/workloads/
rusage-launch, as in run.py.  Output, in --out (default: a new temporary
directory):

    scaling.csv   one row per run
    scaling.md    per workload: median throughput of each allocator at each
                  thread count, mheap's over the best peer's, peak RSS,
                  throughput at N threads over 1 thread

For a machine without the build tools or the peers' packages (no network),
--bundle DIR copies what the runs need into DIR: the wl-* programs, the
launcher, libmheap.so and the peers' libraries, laid out as a build
directory, so that `python3 bench/scaling.py --build DIR --no-install`
runs there from a checkout.  Standard library only.
"""

import argparse
import csv
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib.common import PEER_LIBS, apt_install, find_lib, log, parse_result  # noqa: E402
from benchlib.runner import base_env, run_process  # noqa: E402

# The threaded workloads and the thread argument they take: "threads" is
# the number of worker threads, "pairs" the number of producer/consumer
# pairs (two threads each).
THREADED = {
    "server": "threads", "prodcons": "pairs", "fs-active": "threads", "churn": "threads",
    "handover": "threads", "handover-new": "threads", "xflow": "pairs", "xflow-new": "pairs",
    "xmix": "threads", "xmix-new": "threads",
}
DEFAULT_WORKLOADS = "server,prodcons,churn,handover,xflow,xmix,xmix-new,fs-active"
PEER_DIR = "peers"  # under --build: peer libraries copied by --bundle


def peer_lib(build, name):
    so = PEER_LIBS[name][0]
    local = build / PEER_DIR / so
    return str(local) if local.exists() else find_lib(so)


def allocators(build, args):
    """(name, preload path or '') for every allocator of the run."""
    out = []
    names = [a for a in args.allocators.split(",") if a]
    missing = [n for n in names if n in PEER_LIBS and not peer_lib(build, n)]
    if missing:
        apt_install([PEER_LIBS[n][1] for n in missing], not args.no_install)
    for n in names:
        if n == "glibc":
            out.append((n, ""))
        elif n == "mheap":
            out.append((n, str(build / "src" / "libmheap.so")))
        elif n in PEER_LIBS:
            p = peer_lib(build, n)
            if p:
                out.append((n, p))
            else:
                log("%s: %s not found, left out" % (n, PEER_LIBS[n][0]))
        else:
            sys.exit("unknown allocator %s" % n)
    for spec in args.lib:
        name, _, path = spec.partition("=")
        if not name or not path or not os.path.exists(path):
            sys.exit("--lib %s: want NAME=PATH to an existing library" % spec)
        out.append((name, os.path.abspath(path)))
    return out


def bundle(build, dest, args):
    """Copy the programs and libraries the runs need into dest."""
    wl = build / "bench" / "workloads"
    (dest / "bench" / "workloads").mkdir(parents=True, exist_ok=True)
    (dest / "src").mkdir(parents=True, exist_ok=True)
    (dest / PEER_DIR).mkdir(parents=True, exist_ok=True)
    names = ["rusage-launch"] + ["wl-" + w for w in THREADED]
    for n in names:
        if not (wl / n).exists():
            sys.exit("%s missing: build the project first (make build)" % (wl / n))
        shutil.copy2(wl / n, dest / "bench" / "workloads" / n)
    shutil.copy2(build / "src" / "libmheap.so", dest / "src" / "libmheap.so")
    for n in PEER_LIBS:
        p = peer_lib(build, n)
        if not p:
            apt_install([PEER_LIBS[n][1]], not args.no_install)
            p = peer_lib(build, n)
        if p:
            shutil.copy2(os.path.realpath(p), dest / PEER_DIR / PEER_LIBS[n][0])
        else:
            log("%s: not found, not bundled" % n)
    log("bundle in %s (%d programs); run there: python3 bench/scaling.py --build %s --no-install"
        % (dest, len(names), dest))


def throughput(res):
    for k, v in res.items():
        if k.endswith("_per_s"):
            try:
                return k, float(v)
            except ValueError:
                pass
    return None, None


def med(xs):
    return statistics.median(xs) if xs else None


def report(rows, allocs, threads, wls, out_md, cmdline, machine):
    lines = ["# Thread scaling", "", "```sh", cmdline, "```", "", machine, "",
             "Median throughput of the rounds (higher is better); \"mheap / best peer\" above 1:"
             " mheap ahead.", ""]
    names = [a for a, _ in allocs]
    peers = [a for a in names if a in ("glibc", "jemalloc", "tcmalloc", "mimalloc")]
    for w in wls:
        unit = next((r["metric"] for r in rows if r["workload"] == w and r["metric"]), "ops_per_s")
        lines += ["## %s (%s%s)" % (w, unit, "; threads / 2 pairs" if THREADED[w] == "pairs"
                                        else ""), ""]
        hdr = "| threads | " + " | ".join(names) + " | mheap / best peer | peak RSS MiB (" \
            + ", ".join(names) + ") |"
        lines += [hdr, "|" + "---:|" * (len(names) + 3)]
        for t in threads:
            cell, rss = {}, {}
            for a in names:
                sel = [r for r in rows if r["workload"] == w and r["threads"] == t and
                       r["allocator"] == a and r["status"] == "ok" and r["rate"] is not None]
                cell[a] = med([r["rate"] for r in sel])
                rss[a] = med([r["maxrss_kib"] / 1024.0 for r in sel])
            best = max((cell[p] for p in peers if cell.get(p)), default=None)
            ratio = "%.2f" % (cell["mheap"] / best) if best and cell.get("mheap") else "-"
            lines.append("| %d | " % t + " | ".join("%.4g" % cell[a] if cell[a] else "-"
                                                   for a in names) +
                         " | %s | %s |" % (ratio, ", ".join("%.0f" % rss[a] if rss[a] else "-"
                                                           for a in names)))
        lines.append("")
    out_md.write_text("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--threads", default=None,
                    help="comma-separated thread counts (default 1,2,4,... up to 2x the CPUs)")
    ap.add_argument("--workloads", default=DEFAULT_WORKLOADS)
    ap.add_argument("--allocators", default="glibc,jemalloc,tcmalloc,mimalloc,mheap")
    ap.add_argument("--lib", action="append", default=[], help="NAME=PATH: one more allocator")
    ap.add_argument("--scale", type=float, default=0.3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-install", action="store_true")
    ap.add_argument("--bundle", default=None, help="copy programs and libraries to this directory")
    args = ap.parse_args()
    build = Path(args.build).resolve()
    if args.bundle:
        bundle(build, Path(args.bundle).resolve(), args)
        return
    wls = [w for w in args.workloads.split(",") if w]
    for w in wls:
        if w not in THREADED:
            sys.exit("%s: not a threaded workload (%s)" % (w, ", ".join(THREADED)))
    ncpu = os.cpu_count() or 1
    if args.threads:
        threads = [int(t) for t in args.threads.split(",")]
    else:
        threads, t = [], 1
        while t <= 2 * ncpu:
            threads.append(t)
            t *= 2
    allocs = allocators(build, args)
    launcher = build / "bench" / "workloads" / "rusage-launch"
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="mheap-scaling-"))
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    rows, env = [], base_env()
    t0 = time.time()
    log("scaling: %s at %s threads, %d allocators, %d rounds -> %s" %
        (",".join(wls), ",".join(map(str, threads)), len(allocs), args.repeats, out))
    for t in threads:
        for rnd in range(args.repeats):
            for w in wls:
                order = list(allocs)
                rng.shuffle(order)
                # (pairs workloads take pairs: t threads means t/2 pairs, at least 1)
                arg = t if THREADED[w] == "threads" else max(1, t // 2)
                for a, lib in order:
                    exe = build / "bench" / "workloads" / ("wl-" + w)
                    r = run_process(launcher, [str(exe), str(arg), str(args.scale), str(args.seed)],
                                    lib, env, args.timeout)
                    res = parse_result(r["stdout"].decode(errors="replace"))
                    metric, rate = throughput(res) if r["status"] == "ok" else (None, None)
                    rows.append({"workload": w, "threads": t, "arg": arg, "round": rnd,
                                 "allocator": a, "status": r["status"], "metric": metric,
                                 "rate": rate, "time_s": res.get("time_s"),
                                 "wall_s": r["wall_s"], "utime_s": r["utime_s"],
                                 "stime_s": r["stime_s"], "maxrss_kib": r["maxrss_kib"],
                                 "check": res.get("check")})
                    if r["status"] != "ok":
                        log("  %s %s t=%d: %s %s" % (w, a, t, r["status"],
                                                      r["stderr"][-200:].decode(errors="replace")))
        log("  %d threads done (%.0f s)" % (t, time.time() - t0))
    with open(out / "scaling.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        wr.writeheader()
        wr.writerows(rows)
    # The checksum of a workload depends on its arguments only.
    for w in wls:
        for t in threads:
            checks = {r["check"] for r in rows if r["workload"] == w and r["threads"] == t and
                      r["status"] == "ok"}
            if len(checks) > 1:
                log("%s at %d threads: allocators disagree on the checksum %s" % (w, t, checks))
    try:
        load = os.getloadavg()
    except OSError:
        load = (0, 0, 0)
    machine = "%d CPUs; load average %.2f at the end; %.0f s" % (ncpu, load[0], time.time() - t0)
    report(rows, allocs, threads, wls, out / "scaling.md", " ".join(["python3"] + sys.argv),
           machine)
    log((out / "scaling.md").read_text())


if __name__ == "__main__":
    main()
