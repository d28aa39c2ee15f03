"""The report: markdown tables, the CSV of the runs, the markdown file, the
machine description and the plots."""

import csv
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .analysis import geomean
from .common import NPROC, PEER_LIBS, RUN_PY, apt_install, dpkg_version, matplotlib_python, sha16
from .workloads import size_note

CSV_FIELDS = ["mode", "round", "workload", "allocator", "status", "wall_s", "cost_s", "metric",
              "metric_value", "maxrss_kib", "minflt", "majflt", "utime_s", "stime_s", "check",
              "extra", "stderr_tail"]


# ---------------------------------------------------------------- tables

def fmt_metric(w, v):
    if v is None:
        return "-"
    if w.metric == "redis":
        return "%.0f req/s" % v
    return "%.3f s" % v


def cell(m, key, f):
    if key not in m:
        return "FAILED" if m.get("runs") else "-"
    return f(m[key])


def per_alloc_table(wls, allocs, med, fmt):
    """A table with one row per workload and one column per allocator;
    fmt(workload, its median record, allocator) gives a cell."""
    L = ["| workload | " + " | ".join(allocs) + " |", "|---|" + "---:|" * len(allocs)]
    for w in wls:
        L.append("| %s | " % w.name + " | ".join(fmt(w, med[(w.name, a)], a) for a in allocs) + " |")
    return L


def median_table(wls, allocs, med):
    L = ["Median of the rounds (time: lower is better; req/s: higher is better):", "",
         "| workload | metric | " + " | ".join(allocs) + " |",
         "|---|---|" + "---:|" * len(allocs)]
    for w in wls:
        name = {"time_s": "own time", "wall": "wall time", "redis": "throughput"}[w.metric]
        L.append("| %s | %s | " % (w.name, name) + " | ".join(
            cell(med[(w.name, a)], "metric", lambda v, w=w: fmt_metric(w, v)) for a in allocs) + " |")
    return L + [""]


def spread_table(wls, allocs, med):
    def spread_cell(w, m, a):
        sp = m.get("spread")
        if not sp:
            return "-"
        if w.metric == "redis":
            return "%.0fk - %.0fk" % (sp[0] / 1000, sp[1] / 1000)
        return "%.3f - %.3f" % sp

    return ["Spread of the rounds (lowest - highest of the metric above; a wide spread means "
            "the machine was disturbed during some rounds):", ""] + \
        per_alloc_table(wls, allocs, med, spread_cell) + [""]


def peer_ratio_table(wls, allocs, ratio, paired):
    L = ["Time relative to the best of the four peers for that workload (1.00 = as fast as "
         "the best peer; for redis, inverse throughput):", "",
         "| workload | " + " | ".join(allocs) + " | mheap, same round |",
         "|---|" + "---:|" * (len(allocs) + 1)]
    for w in wls:
        L.append("| %s | " % w.name + " | ".join(
            ("%.2f" % ratio[(w.name, a)]) if (w.name, a) in ratio else "-" for a in allocs) +
            " | %s |" % (("%.2f" % paired[w.name]) if w.name in paired else "-"))
    return L + ["", "(\"mheap, same round\": mheap's time over the best peer's time in the same "
                "round, median over the rounds.)", ""]


def rss_and_faults_tables(wls, allocs, med, rss_ratio):
    def rss_cell(w, m, a):
        if "rss_mib" not in m:
            return "-"
        rr = rss_ratio.get((w.name, a))
        return "%.1f (%.2f)" % (m["rss_mib"], rr) if rr else "%.1f" % m["rss_mib"]

    L = ["Peak RSS in MiB (ru_maxrss of the process and its children; redis: the server's "
         "VmHWM), and in brackets relative to mimalloc:", ""]
    L += per_alloc_table(wls, allocs, med, rss_cell)
    L += ["", "Minor page faults (median):", ""]
    L += per_alloc_table(wls, allocs, med, lambda w, m, a: cell(m, "minflt", lambda v: "%d" % v))
    return L + [""]


def frag_table(allocs, med):
    if not any("extra" in med[("frag", a)] for a in allocs if ("frag", a) in med):
        return []
    L = ["Fragmentation workload (MiB, medians): resident memory after the fill, right "
         "after freeing 90%, after 1 s of light activity, after allocating the freed "
         "amount again; live = bytes still allocated; live pages = the 4 KiB pages that "
         "hold a byte of a live object where this allocator put them (no policy that "
         "only releases whole free pages goes below it):", ""]
    keys = [("rss_full_mib", "full"), ("rss_after_free_mib", "after free"),
            ("rss_after_1s_mib", "after 1 s"), ("live_mib", "live"),
            ("floor_mib", "live pages"),
            ("rss_after_realloc_mib", "after realloc")]
    L += ["| allocator | " + " | ".join(k[1] for k in keys) + " | after 1 s / live |",
          "|---|" + "---:|" * (len(keys) + 1)]
    for a in allocs:
        ex = med.get(("frag", a), {}).get("extra")
        if not ex:
            continue
        L.append("| %s | " % a + " | ".join("%.1f" % ex.get(k[0], float("nan")) for k in keys) +
                 " | %.1f |" % (ex["rss_after_1s_mib"] / ex["live_mib"]))
    return L + [""]


def failures_section(wls, allocs, med, mismatch):
    fails = [(w.name, a, med[(w.name, a)]) for w in wls for a in allocs
             if med[(w.name, a)].get("failures")]
    if not fails and not mismatch:
        return ["No failures; every workload printed the same checksum under every allocator.", ""]
    L = ["Failures and output mismatches:", ""]
    for wn, a, m in fails:
        L.append("- %s under %s: %d of %d runs failed (%s)" % (wn, a, m["runs"] - m["ok"], m["runs"],
                                                             ", ".join(m["failures"])))
    for wn, checks in mismatch.items():
        L.append("- %s: the output checksum differs between runs: %s" % (
            wn, "; ".join("%s: %s" % (k, ",".join(v)) for k, v in checks.items())))
    return L + [""]


def summary_section(summ):
    if "time_geomean" not in summ and "rss_geomean" not in summ:
        return []
    paired = summ.get("paired", {})
    L = ["Summary for mheap:", ""]
    if "time_geomean" in summ:
        L.append("- time / best peer's time: geometric mean over %d workloads **%.2f**, "
                 "max **%.2f** (%s)" % (len(summ["time_ratios"]), summ["time_geomean"],
                                        summ["time_max"][0], summ["time_max"][1]))
    if paired:
        L.append("- the same, computed within each round (median over rounds of mheap / best "
                 "peer of that round): geometric mean **%.2f**, max %.2f (%s)" % (
                     geomean(paired.values()), max(paired.values()), max(paired, key=paired.get)))
    if "rss_geomean" in summ:
        L.append("- peak RSS / mimalloc's peak RSS: geometric mean **%.2f**, max %.2f (%s)" % (
            summ["rss_geomean"], summ["rss_max"][0], summ["rss_max"][1]))
    if "rss_geomean_big" in summ:
        L.append("- the same over the %d workloads where mimalloc peaks at 16 MiB or more (below "
                 "that the allocators' fixed footprint dominates): **%.2f**" % (
                     summ["rss_geomean_big"][1], summ["rss_geomean_big"][0]))
    if "large_faults" in summ:
        lm, lg = summ["large_faults"]
        L.append("- large blocks, minor page faults: mheap %d, glibc %d (ratio %.2f)" % (
            lm, lg, lm / lg if lg else float("nan")))
    if "frag" in summ:
        f = summ["frag"]
        L.append("- fragmentation: RSS %.1f MiB after 1 s for %.1f MiB live (%.1fx; live pages "
                 "%.1f MiB); %.1f MiB "
                 "right after the frees; %.1f MiB after allocating the freed amount again "
                 "(%.1f MiB after the first fill)" % (
                     f["rss_after_1s_mib"], f["live_mib"], f["rss_after_1s_mib"] / f["live_mib"],
                     f.get("floor_mib", float("nan")),
                     f["rss_after_free_mib"], f["rss_after_realloc_mib"], f["rss_full_mib"]))
    return L + [""]


def versus_table(wls, versus):
    """mheap against the extra allocators: per workload, for each of them,
    mheap's median time and peak RSS over its own, and the time ratio
    within a round; the last row is the geometric mean of each column."""
    if not versus:
        return []
    extras = list(versus)
    cols = [(x, k) for x in extras for k in ("time", "paired", "rss")]
    head = {"time": "time mheap/%s", "paired": "same round mheap/%s", "rss": "peak RSS mheap/%s"}
    L = ["mheap against %s: mheap's median over the other allocator's median (below 1.00: "
         "mheap is faster, or peaks lower; for redis, time is inverse throughput); \"same "
         "round\": mheap's time over the other's in the same round, median over the rounds:" %
         ", ".join(extras), "",
         "| workload | " + " | ".join(head[k] % x for x, k in cols) + " |",
         "|---|" + "---:|" * len(cols)]
    for w in wls:
        vals = [versus[x][w.name].get(k) for x, k in cols]
        L.append("| %s | " % w.name + " | ".join("-" if v is None else "%.3f" % v for v in vals)
                 + " |")
    means = [geomean(versus[x][w.name].get(k) for w in wls) for x, k in cols]
    L.append("| geometric mean | " + " | ".join("-" if v is None else "**%.3f**" % v
                                                 for v in means) + " |")
    return L + [""]


def tables(wls, allocs, med, ratio, rss_ratio, mismatch, summ):
    """The report's body, as a list of markdown lines."""
    return (median_table(wls, allocs, med) + spread_table(wls, allocs, med) +
            peer_ratio_table(wls, allocs, ratio, summ.get("paired", {})) +
            rss_and_faults_tables(wls, allocs, med, rss_ratio) + frag_table(allocs, med) +
            failures_section(wls, allocs, med, mismatch) + summary_section(summ) +
            versus_table(wls, summ.get("versus")))


# ---------------------------------------------------------------- files

def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        wr.writeheader()
        wr.writerows(rows)


def lib_note(path):
    """A library's real path, the start of its sha256 and its build time."""
    real = Path(path).resolve()
    return "%s (sha256 %s..., built %s)" % (
        real, sha16(real.read_bytes())[:12],
        datetime.datetime.fromtimestamp(real.stat().st_mtime).strftime("%Y-%m-%d %H:%M"))


def cpu_info():
    info = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "Thread(s) per core", "Core(s) per socket",
                             "Hypervisor vendor", "L2 cache", "L3 cache"):
                info[k.strip()] = v.strip()
    except OSError:
        pass
    info["nproc"] = str(NPROC)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["memory"] = "%.1f GiB" % (int(line.split()[1]) / 1048576.0)
    except OSError:
        pass
    return info


def machine_info(build, libs, extras=()):
    """The machine, toolchain and libraries, as {label: text}; extras: the
    names in libs of the extra allocators, each described like mheap."""
    info = cpu_info()
    info["kernel"] = platform.release()
    info["glibc"] = platform.libc_ver()[1] or ""
    try:
        info["gcc"] = subprocess.run(["gcc", "-dumpfullversion"], capture_output=True,
                                     text=True).stdout.strip()
    except OSError:
        pass
    bt = ""
    try:
        for line in (build / "CMakeCache.txt").read_text().splitlines():
            if line.startswith("CMAKE_BUILD_TYPE:"):
                bt = line.split("=", 1)[1]
    except OSError:
        pass
    info["mheap build type"] = bt or "(empty: the project's default, RelWithDebInfo)"
    for name in ["mheap"] + list(extras):
        if Path(libs.get(name) or "").is_file():
            info["%s library" % name] = lib_note(libs[name])
    vers = []
    for a, (so, pkg) in PEER_LIBS.items():
        v = dpkg_version(pkg)
        vers.append("%s %s" % (a, v or "?"))
    info["peers"] = ", ".join(vers)
    for prog, pkg in (("python3", "python3"), ("sqlite3", "sqlite3"), ("redis", "redis-server")):
        v = dpkg_version(pkg)
        if v:
            info[prog] = v
    return info


def in_turn(allocs):
    return allocs[0] if len(allocs) == 1 else ", ".join(allocs[:-1]) + " and " + allocs[-1]


def markdown(run, body, plots, plotter):
    """The lines of results-<mode>.md.  run: dict with mode, command, repeats,
    nrows, elapsed, info, libs, allocs, wls."""
    mode, allocs, libs = run["mode"], run["allocs"], run["libs"]
    md = ["# Allocator comparison, %s mode" % mode, "",
          "Generated by `bench/run.py` on %s." % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "",
          "Command: `%s`%s." % (run["command"], (" (run by `make %s`)" % (
              "bench-quick" if mode == "quick" else "bench")) if "MAKELEVEL" in os.environ else ""), "",
          "Runs: %d rounds; in each round every workload runs under %s in turn; %d runs, %.0f s "
          "in all." % (run["repeats"], in_turn(allocs), run["nrows"], run["elapsed"]), "",
          "Machine:", ""]
    md += ["- %s: %s" % (k, v) for k, v in run["info"].items()]
    md += ["- allocators: " + ", ".join("%s = %s" % (a, libs[a] or "system (no LD_PRELOAD)")
                                        for a in allocs), ""]
    md += ["Workloads (threads and sizes for this mode):", ""]
    md += ["- `%s`: %s (%s)" % (w.name, w.desc, size_note(w, mode)) for w in run["wls"]]
    md.append("")
    md += body
    if plots:
        md += ["Plots (%s):" % plotter, ""] + ["![%s](%s)" % (os.path.basename(p), os.path.basename(p))
                                               for p in plots] + [""]
    else:
        md += ["No plots: neither matplotlib nor gnuplot could be used.", ""]
    return md


# ---------------------------------------------------------------- plots

PLOT_COLORS = {"glibc": "#7f7f7f", "jemalloc": "#1f77b4", "tcmalloc": "#2ca02c",
               "mimalloc": "#ff7f0e", "mheap": "#d62728"}
# For the --lib allocators, in the order they come.
EXTRA_COLORS = ["#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


def plot_colors(allocs):
    extras = [a for a in allocs if a not in PLOT_COLORS]
    colors = dict(PLOT_COLORS)
    colors.update((a, EXTRA_COLORS[i % len(EXTRA_COLORS)]) for i, a in enumerate(extras))
    return colors


def plot(data, outdir, mode):
    """data: {'workloads': [...], 'allocs': [...], 'time': {alloc: [ratio...]},
    'rss': {alloc: [ratio...]}}; returns the list of files written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colors = plot_colors(data["allocs"])
    written = []
    for key, fname, title, ylabel in (
            ("time", "time-%s.png" % mode, "Time relative to the best peer (%s mode)" % mode,
             "time / best peer's time (log scale; lower is better)"),
            ("rss", "rss-%s.png" % mode, "Peak RSS relative to mimalloc (%s mode)" % mode,
             "peak RSS / mimalloc's peak RSS (log scale)")):
        wl = data["workloads"]
        allocs = data["allocs"]
        fig, ax = plt.subplots(figsize=(max(10, 0.9 * len(wl) + 2), 5.2))
        width = 0.8 / len(allocs)
        for i, a in enumerate(allocs):
            vals = [v if v else float("nan") for v in data[key][a]]
            xs = [j + (i - (len(allocs) - 1) / 2) * width for j in range(len(wl))]
            ax.bar(xs, vals, width, label=a, color=colors[a])
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(wl)))
        ax.set_xticklabels(wl, rotation=30, ha="right")
        ax.set_ylabel(ylabel)
        ax.set_title(title, pad=22)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.2g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%.2g"))
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.legend(ncol=len(allocs), fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0),
                  frameon=False)
        ax.grid(axis="y", which="both", alpha=0.3)
        fig.tight_layout()
        path = os.path.join(outdir, fname)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def plot_gnuplot(data, outdir, mode):
    written = []
    for key, fname, title in (("time", "time-%s.png" % mode, "time / best peer (%s)" % mode),
                              ("rss", "rss-%s.png" % mode, "peak RSS / mimalloc (%s)" % mode)):
        with tempfile.TemporaryDirectory() as td:
            dat = os.path.join(td, "d.dat")
            with open(dat, "w") as f:
                f.write("workload " + " ".join(data["allocs"]) + "\n")
                for j, w in enumerate(data["workloads"]):
                    f.write(w + " " + " ".join(
                        ("%.4f" % data[key][a][j]) if data[key][a][j] else "NaN" for a in data["allocs"]) + "\n")
            path = os.path.join(outdir, fname)
            script = ("set terminal png size 1200,520\nset output '%s'\nset title '%s'\n"
                      "set style data histogram\nset style histogram cluster gap 1\n"
                      "set style fill solid border -1\nset logscale y\nset key top left horizontal\n"
                      "set xtics rotate by -30\nset grid ytics\n"
                      "plot for [i=2:%d] '%s' using i:xtic(1) title columnheader(i)\n" % (
                          path, title, len(data["allocs"]) + 1, dat))
            if subprocess.run(["gnuplot"], input=script, text=True).returncode == 0:
                written.append(path)
    return written


def make_plots(wls, allocs, ratio, rss_ratio, outdir, mode, allow_install):
    """Plots with matplotlib (here, or in /usr/bin/python3 through run.py
    --plot-data) or gnuplot; returns (files written, what drew them)."""
    data = {"workloads": [w.name for w in wls], "allocs": allocs,
            "time": {a: [ratio.get((w.name, a)) for w in wls] for a in allocs},
            "rss": {a: [rss_ratio.get((w.name, a)) for w in wls] for a in allocs}}
    py = matplotlib_python()
    if py is None and not shutil.which("gnuplot"):
        apt_install(["python3-matplotlib"], allow_install)
        py = matplotlib_python()
    if py == sys.executable:
        return plot(data, outdir, mode), "matplotlib"
    if py:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(data, f)
        try:
            r = subprocess.run([py, str(RUN_PY), "--plot-data", f.name, "--out", outdir, "--mode", mode])
        finally:
            os.unlink(f.name)
        if r.returncode == 0:
            return [os.path.join(outdir, "%s-%s.png" % (k, mode)) for k in ("time", "rss")], \
                "matplotlib (%s)" % py
    if shutil.which("gnuplot"):
        return plot_gnuplot(data, outdir, mode), "gnuplot"
    return [], None
