"""The garbage-collector section of bench/run.py: the programs of bench/gc/
under three collectors, interleaved round after round.

    bdwgc        Debian's libgc as shipped: the program linked with -lgc
    bdwgc-tuned  the same collector linked statically (libgc.a, when
                 present), interior pointers off (GC_set_all_interior_
                 pointers(0) before GC_INIT, through -DGCB_BDWGC_TUNED) and
                 the parallel markers started (GC_start_mark_threads, with
                 GC_MARKERS set to the number of CPUs)
    mheap        mheap's collector through include/gc.h, linked with
                 <build>/src/libmheap.so (with src/gc_boehm.c compiled in
                 when the library does not export the GC_* names yet);
                 skipped when the library lacks mh_gc_malloc

Each program is written once against the gc.h subset and compiled once per
collector under <build>/bench-gc/<collector>/.  A run records the
program's own time and checksum (its `result:` line), the peak RSS from
wait4 (bench/workloads/rusage-launch.c), the collections (GC_get_gc_no())
and the pauses, read from the collector's own log on stderr: bdwgc's
GC_PRINT_STATS=1 lines `Complete collection took <ms> ms <ns> ns` (also
`World-stopped marking took ...`), mheap's MHEAP_OPTIONS=gctrace=1 lines
`gc <n> @<t>s <pause> ms pause, ...`.  Results: gc-results-<mode>.csv (one
row per run) and gc-results-<mode>.md, next to the malloc results."""

import csv
import datetime
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import NPROC, ROOT, WL_SRC, apt_install, dpkg_version, find_lib, fnum, log, \
    multiarch_dirs, parse_result
from .report import cpu_info, in_turn, lib_note
from .runner import base_env, run_process

GC_SRC = ROOT / "bench" / "gc"
COLLECTORS = ["bdwgc", "bdwgc-tuned", "mheap"]
BASELINE = "bdwgc"
CFLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra", "-g"]

CSV_FIELDS = ["mode", "round", "program", "collector", "status", "time_s", "wall_s", "maxrss_kib",
              "gc_no", "traced", "pause_max_ms", "pause_median_ms", "pause_total_ms",
              "stw_max_ms", "heap_bytes", "utime_s", "stime_s", "check", "args", "stderr_tail"]

MHEAP_TRACE = re.compile(r"^gc \d+ @[0-9.]+s ([0-9.]+) ms pause", re.M)
BDW_COMPLETE = re.compile(r"^Complete collection took (\d+) ms (\d+) ns", re.M)
BDW_STOPPED = re.compile(r"^World-stopped marking took (\d+) ms (\d+) ns", re.M)


class GcProgram:
    """A bench/gc/ program: its source name, a description, and its
    arguments in each mode (the seed, where it takes one, is added last)."""

    def __init__(self, name, desc, quick, full, seeded=False, src=None):
        self.name, self.desc, self.seeded = name, desc, seeded
        self.src = src or name  # bench/gc/<src>.c (one source may serve two programs)
        self.args = {"quick": quick, "full": full}

    def argv(self, mode, seed):
        return [str(a) for a in self.args[mode]] + ([str(seed)] if self.seeded else [])


def programs():
    return [
        GcProgram("gcbench", "GCBench, 1 thread: stretch tree of depth D+1, long-lived tree of "
                  "depth 16 and 500,000-double atomic array, then top-down and bottom-up trees of "
                  "depth 4..D (step 2); argument D", quick=[18], full=[20]),
        GcProgram("gcbench_mt", "GCBench with 2 mutator threads sharing the trees of each "
                  "depth; arguments D, threads", quick=[18, 2], full=[20, 2]),
        GcProgram("gchash", "chained hash table of small nodes with atomic payloads, "
                  "randomly set (new node or GC_REALLOC), deleted (some with GC_FREE) and read; "
                  "arguments entries, operations, seed", quick=[400000, 1600000],
                  full=[1000000, 4000000], seeded=True),
        GcProgram("gcfinalize", "objects of 48..144 bytes with a buffer, each with a finalizer "
                  "(3/4 ordered, 1/4 no-order), 1/8 of the steps a chain of 2..6 of them, 1/16 "
                  "kept in a table of `live` slots; finalizers count, check, touch the next "
                  "object of a chain and now and then allocate or resurrect; finalizers as the "
                  "collector runs them by default; arguments objects, live, 0, seed",
                  quick=[400000, 20000, 0], full=[1000000, 20000, 0], seeded=True),
        GcProgram("gcfinalize_od", "gcfinalize with GC_set_finalize_on_demand(1), the main loop "
                  "calling GC_invoke_finalizers every 1024 steps when "
                  "GC_should_invoke_finalizers says so; arguments objects, live, 1, seed",
                  quick=[400000, 20000, 1], full=[1000000, 20000, 1], seeded=True,
                  src="gcfinalize"),
        GcProgram("gcweak", "weak-key intern table: symbols held by hidden keys registered "
                  "with GC_general_register_disappearing_link, interned, looked up, dropped and "
                  "deleted at random, cleared keys purged, the table rebuilt at twice its live "
                  "entries with GC_move_disappearing_link; arguments keys, roots, operations, "
                  "seed", quick=[400000, 40000, 1600000], full=[1000000, 100000, 4000000],
                  seeded=True),
    ]


# ---------------------------------------------------------------- building

def libgc_static():
    for d in multiarch_dirs():
        p = Path(d) / "libgc.a"
        if p.exists():
            return str(p)
    return None


def ensure_libgc(allow):
    """Installs libgc-dev when its header or library is missing; returns
    whether both are there."""
    if not Path("/usr/include/gc.h").exists() or not find_lib("libgc.so"):
        apt_install(["libgc-dev"], allow)
    return Path("/usr/include/gc.h").exists() and bool(find_lib("libgc.so"))


def dynamic_names(lib):
    """The names a shared library defines, from nm -D (empty on failure)."""
    try:
        r = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True)
    except OSError:
        return set()
    return {f[-1] for f in (line.split() for line in r.stdout.splitlines()) if f}


def mheap_link(build):
    """How to link a program with mheap's collector: (extra sources, linker
    arguments, note), or (None, None, why not)."""
    lib = build / "src" / "libmheap.so"
    if not lib.exists():
        return None, None, "%s not found (build the project first)" % lib
    names = dynamic_names(str(lib))
    if "mh_gc_malloc" not in names:
        return None, None, "%s does not export mh_gc_malloc (no collector in this build yet)" % lib
    libdir = str(lib.parent)
    link = ["-L", libdir, "-lmheap", "-Wl,-rpath," + libdir, "-lpthread"]
    if "GC_malloc" in names:
        return [], link, "GC_* from %s" % lib
    return [str(ROOT / "src" / "gc_boehm.c")], link, \
        "GC_* from src/gc_boehm.c compiled into the program (%s exports no GC_malloc)" % lib


def compile_plans(build):
    """({collector: (extra cflags, extra sources, link arguments, note)} for
    the collectors that can be built here, [why each other one is not])."""
    plans, skipped = {}, []
    plans["bdwgc"] = ([], [], ["-lgc", "-lpthread"], "dynamic -lgc (%s)" % find_lib("libgc.so"))
    static = libgc_static()
    if static:
        plans["bdwgc-tuned"] = (["-DGCB_BDWGC_TUNED"], [], [static, "-lpthread", "-ldl"],
                                "static %s, interior pointers off, %d markers" % (static, NPROC))
    else:
        plans["bdwgc-tuned"] = (["-DGCB_BDWGC_TUNED"], [], ["-lgc", "-lpthread"],
                                "dynamic -lgc (no libgc.a found), interior pointers off, "
                                "%d markers" % NPROC)
    extra, link, note = mheap_link(build)
    if link is None:
        log("gc: collector mheap skipped: " + note)
        skipped.append("mheap: " + note)
    else:
        plans["mheap"] = (["-I", str(ROOT / "include")], extra, link, note)
    return plans, skipped


def compile_one(cmd, out, inputs):
    """Runs cmd to make out unless out is newer than every input and was
    made by the same command; returns an error text or None."""
    stamp = Path(str(out) + ".cmd")
    line = shlex.join(cmd)
    if out.exists() and stamp.exists() and stamp.read_text() == line and \
            out.stat().st_mtime >= max(Path(i).stat().st_mtime for i in inputs):
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return (r.stderr or r.stdout).strip()[-1500:]
    stamp.write_text(line)
    return None


def build_all(build, progs, plans):
    """Compiles the launcher and every program for every collector in
    plans; returns (launcher path, {(program, collector): executable})."""
    cc = os.environ.get("CC", "cc")
    out_dir = build / "bench-gc"
    launcher = out_dir / "rusage-launch"
    src = WL_SRC / "rusage-launch.c"
    err = compile_one([cc, "-O2", str(src), "-o", str(launcher)], launcher, [src])
    if err:
        sys.exit("gc: building %s failed:\n%s" % (launcher, err))
    headers = [str(p) for p in GC_SRC.glob("*.h")] + [str(ROOT / "include" / "gc.h")]
    exes = {}
    for c, (cflags, extra, link, _) in plans.items():
        built = {}  # source -> executable, or None when it failed
        for p in progs:
            if p.src not in built:
                srcfile = str(GC_SRC / (p.src + ".c"))
                out = out_dir / c / p.src
                cmd = [cc] + CFLAGS + cflags + [srcfile] + extra + ["-o", str(out)] + link
                err = compile_one(cmd, out, [srcfile] + extra + headers)
                if err:
                    log("gc: %s for %s does not build (skipped):\n%s" % (p.src, c, err))
                built[p.src] = None if err else out
            if built[p.src]:
                exes[(p.name, c)] = built[p.src]
    return launcher, exes


# ---------------------------------------------------------------- one run

def collector_env(collector):
    """The environment of a run: the collector's log turned on."""
    env = base_env()
    for k in ("GC_PRINT_STATS", "GC_MARKERS", "GC_LOG_FILE", "GC_DONT_GC"):
        env.pop(k, None)
    if collector.startswith("bdwgc"):
        env["GC_PRINT_STATS"] = "1"
        if collector == "bdwgc-tuned":
            env["GC_MARKERS"] = str(NPROC)
    else:
        old = env.get("MHEAP_OPTIONS", "")
        env["MHEAP_OPTIONS"] = (old + "," if old else "") + "gctrace=1"
    return env


def pauses(collector, text):
    """(pauses in ms, world-stopped parts in ms) logged on stderr."""
    if collector.startswith("bdwgc"):
        full = [int(a) + int(b) / 1e6 for a, b in BDW_COMPLETE.findall(text)]
        stw = [int(a) + int(b) / 1e6 for a, b in BDW_STOPPED.findall(text)]
        return (full or stw), stw
    ps = [float(x) for x in MHEAP_TRACE.findall(text)]
    return ps, ps


def fmt_ms(xs, f):
    return "%.3f" % f(xs) if xs else ""


def run_gc_one(launcher, exe, p, collector, mode, seed, timeout, tmp):
    """One run; returns its CSV row (without mode and round)."""
    err_path = os.path.join(tmp, "stderr-%s-%s" % (p.name, collector))
    env = collector_env(collector)
    env["GCB_STDERR"] = err_path
    argv = p.argv(mode, seed)
    # The collector's log goes to a file, whole: sh redirects, then execs the
    # program in its own place, so that the launcher's rusage is the program's.
    cmd = ["/bin/sh", "-c", 'exec "$0" "$@" 2>"$GCB_STDERR"', str(exe)] + argv
    r = run_process(launcher, cmd, None, env, timeout)
    try:
        with open(err_path, "rb") as f:
            err = f.read().decode(errors="replace")
        os.unlink(err_path)
    except OSError:
        err = r["stderr"].decode(errors="replace")
    res = parse_result(r["stdout"].decode(errors="replace"))
    status = r["status"]
    if status == "ok" and "time_s" not in res:
        status = "no result line"
    if status in ("ok", "exit 3") and res.get("errors", "0") != "0":
        status = "damaged structures: errors=%s" % res["errors"]
    ps, stw = pauses(collector, err)
    ok = status == "ok"
    return {
        "program": p.name, "collector": collector, "status": status,
        "time_s": res.get("time_s", "") if ok else "", "wall_s": "%.4f" % r["wall_s"],
        "maxrss_kib": r["maxrss_kib"], "gc_no": res.get("gc_no", ""), "traced": len(ps),
        "pause_max_ms": fmt_ms(ps, max), "pause_median_ms": fmt_ms(ps, statistics.median),
        "pause_total_ms": fmt_ms(ps, sum), "stw_max_ms": fmt_ms(stw, max),
        "heap_bytes": res.get("heap_bytes", ""), "utime_s": "%.3f" % r["utime_s"],
        "stime_s": "%.3f" % r["stime_s"], "check": res.get("check", ""), "args": " ".join(argv),
        "stderr_tail": "" if ok else err[-400:],
    }


def run_gc_rounds(launcher, exes, progs, colls, mode, repeats, seed, timeout):
    """Every program under every collector, round after round; the rows."""
    rows = []
    total = repeats * len(exes)
    k = 0
    with tempfile.TemporaryDirectory(prefix="mheap-bench-gc-") as tmp:
        for rep in range(repeats):
            for p in progs:
                for c in colls:
                    if (p.name, c) not in exes:
                        continue
                    k += 1
                    row = run_gc_one(launcher, exes[(p.name, c)], p, c, mode, seed, timeout, tmp)
                    row = dict({"mode": mode, "round": rep + 1}, **row)
                    rows.append(row)
                    log_gc_row(k, total, row)
    return rows


def log_row_tail(row):
    if row["status"] == "ok":
        return ""
    lines = row["stderr_tail"].strip().splitlines()
    return "  ** " + row["status"] + (": " + lines[-1] if lines else "")


def log_gc_row(k, total, row):
    log("[%3d/%d] round %d %-13s %-11s time %-8s rss %6.1f MiB  gc %-5s max pause %s ms%s" % (
        k, total, row["round"], row["program"], row["collector"], row["time_s"] or "-",
        int(row["maxrss_kib"]) / 1024.0, row["gc_no"] or "-", row["pause_max_ms"] or "-",
        log_row_tail(row)))


# ---------------------------------------------------------------- analysis

def median_of(rows, key):
    vals = [fnum(r[key]) for r in rows if fnum(r[key]) is not None]
    return statistics.median(vals) if vals else None


def gc_medians(rows, progs, colls):
    """(program, collector) -> medians over its successful runs (a run's
    pause figures are its own max and median), the worst pause seen and
    the time range."""
    med = {}
    for p in progs:
        for c in colls:
            rs = [r for r in rows if r["program"] == p.name and r["collector"] == c]
            ok = [r for r in rs if r["status"] == "ok"]
            m = {"runs": len(rs), "ok": len(ok),
                 "failures": sorted(set(r["status"] for r in rs if r["status"] != "ok"))}
            if ok:
                for key in ("time_s", "wall_s", "gc_no", "pause_max_ms", "pause_median_ms",
                            "stw_max_ms", "heap_bytes"):
                    m[key] = median_of(ok, key)
                m["rss_mib"] = statistics.median(int(r["maxrss_kib"]) for r in ok) / 1024.0
                worst = [fnum(r["pause_max_ms"]) for r in ok if fnum(r["pause_max_ms"]) is not None]
                m["pause_worst_ms"] = max(worst) if worst else None
                times = sorted(float(r["time_s"]) for r in ok)
                m["range"] = (times[0], times[-1])
            med[(p.name, c)] = m
    return med


def gc_mismatch(rows, progs):
    """Programs whose checksum differs between successful runs."""
    out = {}
    for p in progs:
        checks = {}
        for r in rows:
            if r["program"] == p.name and r["status"] == "ok" and r["check"]:
                checks.setdefault(r["check"], set()).add(r["collector"])
        if len(checks) > 1:
            out[p.name] = {k: sorted(v) for k, v in checks.items()}
    return out


# ---------------------------------------------------------------- report

def fmt(v, f):
    return "-" if v is None else f % v


def ratio(m, base, key):
    a, b = m.get(key), base.get(key)
    return a / b if a is not None and b else None


def gc_table(progs, colls, med):
    """The results table, as markdown lines."""
    L = ["Medians over the rounds (time: the program's own, in seconds; peak RSS in MiB; "
         "pauses in ms, a run's max and median pause, then the worst over all runs); "
         "x%s: over %s as shipped:" % (BASELINE, BASELINE), "",
         "| program | collector | time | x%s | time range | peak RSS | x%s | cycles | "
         "max pause | x%s | median pause | worst pause |" % ((BASELINE,) * 3),
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in progs:
        base = med.get((p.name, BASELINE), {})
        for c in colls:
            m = med.get((p.name, c))
            if m is None:
                continue
            if not m["ok"]:
                L.append("| %s | %s | FAILED |" % (p.name, c) + " - |" * 9)
                continue
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                p.name, c, fmt(m["time_s"], "%.3f"), fmt(ratio(m, base, "time_s"), "%.2f"),
                "%.3f - %.3f" % m["range"], fmt(m["rss_mib"], "%.1f"),
                fmt(ratio(m, base, "rss_mib"), "%.2f"), fmt(m["gc_no"], "%.0f"),
                fmt(m["pause_max_ms"], "%.2f"), fmt(ratio(m, base, "pause_max_ms"), "%.2f"),
                fmt(m["pause_median_ms"], "%.2f"), fmt(m["pause_worst_ms"], "%.2f")))
    return L + [""]


def gc_failures(progs, colls, med, mismatch):
    fails = [(p.name, c, med[(p.name, c)]) for p in progs for c in colls
             if (p.name, c) in med and med[(p.name, c)]["failures"]]
    if not fails and not mismatch:
        return ["No failures; every program printed the same checksum under every collector.", ""]
    L = ["Failures and checksum mismatches:", ""]
    for pn, c, m in fails:
        L.append("- %s under %s: %d of %d runs failed (%s)" % (
            pn, c, m["runs"] - m["ok"], m["runs"], ", ".join(m["failures"])))
    for pn, checks in mismatch.items():
        L.append("- %s: the checksum differs between runs: %s" % (
            pn, "; ".join("%s: %s" % (k, ",".join(v)) for k, v in checks.items())))
    return L + [""]


PAUSE_NOTE = (
    "Pauses come from each collector's own log: for bdwgc, `Complete collection took` "
    "(GC_PRINT_STATS=1; the collecting thread's whole collection: world-stopped marking, then "
    "finalisation and sweep set-up under the allocation lock; the CSV's stw_max_ms is the "
    "world-stopped marking alone); for mheap, the pause field of MHEAP_OPTIONS=gctrace=1. "
    "Cycles: GC_get_gc_no() at the end (bdwgc counts its collection at start-up).")


def gc_machine(build, plans):
    info = cpu_info()
    info["kernel"] = platform.release()
    info["glibc"] = platform.libc_ver()[1] or ""
    try:
        info["gcc"] = subprocess.run(["gcc", "-dumpfullversion"], capture_output=True,
                                     text=True).stdout.strip()
    except OSError:
        pass
    info["bdwgc"] = "libgc-dev %s" % (dpkg_version("libgc-dev") or "?")
    lib = build / "src" / "libmheap.so"
    if "mheap" in plans and lib.is_file():
        info["mheap library"] = lib_note(str(lib))
    for c, plan in plans.items():
        info["collector %s" % c] = plan[3]
    return info


def gc_markdown(run, body):
    mode = run["mode"]
    md = ["# Garbage collector comparison, %s mode" % mode, "",
          "Generated by `bench/run.py` on %s." % datetime.datetime.now().strftime(
              "%Y-%m-%d %H:%M"), "",
          "Command: `%s`." % run["command"], "",
          "Runs: %d rounds; in each round every program runs under %s in turn; %d runs, %.0f s "
          "in all." % (run["repeats"], in_turn(run["colls"]), run["nrows"], run["elapsed"]), "",
          "Machine:", ""]
    md += ["- %s: %s" % (k, v) for k, v in run["info"].items()]
    md += ["", "Programs (bench/gc/, one source each, built once per collector):", ""]
    md += ["- `%s%s %s`: %s" % (p.name, "" if p.src == p.name else " (%s.c)" % p.src,
                                  " ".join(p.argv(mode, run["seed"])), p.desc)
           for p in run["progs"]]
    md += ["", PAUSE_NOTE, ""]
    for note in run["skipped"]:
        md += ["Skipped: " + note, ""]
    return md + body


def write_gc_csv(path, rows):
    with open(path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        wr.writeheader()
        wr.writerows(rows)


# ---------------------------------------------------------------- the section

def select_programs(only):
    """The programs named in only (comma-separated; None: all)."""
    progs = programs()
    if not only:
        return progs
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in [p.name for p in progs]]
    if unknown:
        sys.exit("gc: unknown program(s) %s (known: %s)" % (
            ", ".join(unknown), ", ".join(p.name for p in progs)))
    return [p for p in progs if p.name in names]


def run_gc_section(build, mode, repeats, seed, timeout, outdir, allow_install, command,
                   only=None):
    """Builds and runs the GC benchmarks (those named in only, or all),
    prints the table and writes gc-results-<mode>.csv/.md under outdir;
    returns True when a run failed or a checksum differed."""
    t_start = time.time()
    log("")
    log("==== garbage collectors: bench/gc/ under %s ====" % ", ".join(COLLECTORS))
    if not ensure_libgc(allow_install):
        log("gc: libgc-dev (bdwgc) is not installed: GC section skipped")
        return False
    progs = select_programs(only)
    plans, skipped = compile_plans(build)
    launcher, exes = build_all(build, progs, plans)
    colls = [c for c in COLLECTORS if any((p.name, c) in exes for p in progs)]
    log("gc: collectors %s; %d rounds, interleaved; programs in %s" % (
        ", ".join(colls), repeats, build / "bench-gc"))
    rows = run_gc_rounds(launcher, exes, progs, colls, mode, repeats, seed, timeout)

    csv_path = outdir / ("gc-results-%s.csv" % mode)
    write_gc_csv(csv_path, rows)
    med = gc_medians(rows, progs, colls)
    mismatch = gc_mismatch(rows, progs)
    body = gc_table(progs, colls, med) + gc_failures(progs, colls, med, mismatch)
    run = {"mode": mode, "repeats": repeats, "nrows": len(rows), "elapsed": time.time() - t_start,
           "info": gc_machine(build, plans), "colls": colls, "progs": progs, "seed": seed,
           "skipped": skipped, "command": command}
    md_path = outdir / ("gc-results-%s.md" % mode)
    md_path.write_text("\n".join(gc_markdown(run, body)) + "\n")

    log("")
    for line in body:
        log(line)
    for note in skipped:
        log("skipped: " + note)
    log("written: %s, %s" % (csv_path, md_path))
    log("GC section time %.0f s" % (time.time() - t_start))
    return any(r["status"] != "ok" for r in rows) or bool(mismatch)
