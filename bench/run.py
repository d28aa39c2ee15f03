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
be the same under every allocator.  It prints and writes (under docs/bench/):

    results-<mode>.csv   one row per run
    results-<mode>.md    medians, ratios, summary, machine, command
    time-<mode>.png      per workload: time / best peer's time, each allocator
    rss-<mode>.png       per workload: peak RSS / mimalloc's peak RSS

Missing peers and programs are installed with apt-get (libjemalloc2,
libtcmalloc-minimal4, libmimalloc2.0, sqlite3, redis-server, redis-tools,
python3-matplotlib) unless --no-install is given.  Standard library only;
the plots use matplotlib, from this interpreter or from Debian's
/usr/bin/python3, else gnuplot if present, else they are skipped.
"""

import argparse
import csv
import datetime
import hashlib
import json
import math
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WL_SRC = ROOT / "bench" / "workloads"
PEERS = ["glibc", "jemalloc", "tcmalloc", "mimalloc"]
ALLOCATORS = PEERS + ["mheap"]

# .so name and Debian package of each peer (glibc needs none).
PEER_LIBS = {
    "jemalloc": ("libjemalloc.so.2", "libjemalloc2"),
    "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
    "mimalloc": ("libmimalloc.so.2", "libmimalloc2.0"),
}

NPROC = os.cpu_count() or 1


# ---------------------------------------------------------------- workloads

class Workload:
    """kind: 'exe' (a wl-* program), 'python', 'gcc', 'sqlite', 'redis'.
    metric: 'time_s' (the program's own timing, from its result line),
    'wall' (wall time of the process), 'redis' (requests/s)."""

    def __init__(self, name, kind, desc, metric="time_s", exe=None, threads=1,
                 quick=None, full=None):
        self.name, self.kind, self.desc, self.metric = name, kind, desc, metric
        self.exe, self.threads = exe, threads
        self.size = {"quick": quick, "full": full}


def workloads():
    t = max(2, NPROC)
    pairs = max(1, NPROC // 2)
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


# ---------------------------------------------------------------- helpers

def log(msg=""):
    print(msg, flush=True)


def multiarch_dirs():
    dirs = []
    try:
        ma = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True).stdout.strip()
        if ma:
            dirs += ["/usr/lib/" + ma, "/lib/" + ma]
    except OSError:
        pass
    return dirs + ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib", "/lib64"]


def find_lib(name):
    for d in multiarch_dirs():
        p = Path(d) / name
        if p.exists():
            return str(p)
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.strip().startswith(name + " ") and "=>" in line:
                return line.split("=>")[1].strip()
    except OSError:
        pass
    return None


def apt_install(pkgs, allow):
    pkgs = sorted(set(pkgs))
    if not pkgs:
        return
    if not allow:
        log("missing (not installing, --no-install): " + " ".join(pkgs))
        return
    if not shutil.which("apt-get"):
        log("missing, and no apt-get to install them: " + " ".join(pkgs))
        return
    prefix = [] if os.geteuid() == 0 else (["sudo"] if shutil.which("sudo") else None)
    if prefix is None:
        log("missing, not root and no sudo: " + " ".join(pkgs))
        return
    log("installing with apt-get: " + " ".join(pkgs))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = prefix + ["apt-get", "install", "-y", "-q", "--no-install-recommends"] + pkgs
    if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(prefix + ["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL)


def cpu_busy_s():
    """Busy CPU time of the whole machine so far (all CPUs, seconds)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...
        return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def own_cpu_s():
    """CPU time of this runner and of its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def dpkg_version(pkg):
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""
    except OSError:
        return ""


def matplotlib_python():
    """An interpreter that can import matplotlib, or None."""
    try:
        import matplotlib  # noqa: F401
        return sys.executable
    except ImportError:
        pass
    for py in ("/usr/bin/python3",):
        if Path(py).exists() and subprocess.run([py, "-c", "import matplotlib"],
                                                capture_output=True).returncode == 0:
            return py
    return None


def parse_result(text):
    res = {}
    for line in text.splitlines():
        if line.startswith("result:"):
            for tok in line[len("result:"):].split():
                if "=" in tok:
                    k, v = tok.split("=", 1)
                    res[k] = v
    return res


def fnum(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def sha16(data):
    return hashlib.sha256(data).hexdigest()[:16]


def run_process(launcher, cmd, preload, env, timeout, cwd=None, stdin_path=None):
    """Runs cmd through rusage-launch (which sets LD_PRELOAD=preload in the
    child only) and returns dict: status ('ok', 'exit N', 'signal S',
    'timeout'), wall_s, stdout (bytes), stderr tail, rusage fields."""
    env = dict(env)
    env.pop("LD_PRELOAD", None)
    fd, ru_path = tempfile.mkstemp(prefix="rusage-")
    os.close(fd)
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        fin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
        timed_out = []
        try:
            t0 = time.perf_counter()
            p = subprocess.Popen([str(launcher), ru_path, preload or "", "--"] + cmd, env=env,
                                 cwd=cwd, stdin=fin, stdout=fo, stderr=fe, start_new_session=True)

            def kill():
                timed_out.append(1)
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass

            timer = threading.Timer(timeout, kill)
            timer.start()
            p.wait()
            wall = time.perf_counter() - t0
            timer.cancel()
        finally:
            if stdin_path:
                fin.close()
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    with open(ru_path) as f:
        ru = {k: fnum(v) for k, _, v in (t.partition("=") for t in f.read().split())}
    os.unlink(ru_path)
    code = int(ru["status"]) if "status" in ru else None
    if timed_out:
        st = "timeout"
    elif code is None:
        st = "launcher failed (exit %s)" % p.returncode
    else:
        st = "ok" if code == 0 else ("signal %d" % -code if code < 0 else "exit %d" % code)
    return {"status": st, "wall_s": ru.get("wall_s") or wall, "stdout": out, "stderr": err[-2000:],
            "maxrss_kib": int(ru.get("maxrss_kib") or 0), "minflt": int(ru.get("minflt") or 0),
            "majflt": int(ru.get("majflt") or 0), "utime_s": ru.get("utime_s") or 0.0,
            "stime_s": ru.get("stime_s") or 0.0}


# ---------------------------------------------------------------- setup

def ensure_workloads(build, allow_cmake=True):
    """The wl-* programs and the glibc shim: from <build>/bench/workloads when
    bench/CMakeLists.txt includes workloads.cmake; otherwise built here from
    the same workloads.cmake in a side project under <build>."""
    names = sorted(p.stem for p in WL_SRC.glob("wl-*.c"))
    want = names + ["libwl-glibc-shim.so", "rusage-launch"]
    main_dir = build / "bench" / "workloads"
    newest_src = max(p.stat().st_mtime for p in WL_SRC.glob("*.[ch]"))

    def complete(d):
        return all((d / n).exists() for n in want) and \
            min((d / n).stat().st_mtime for n in want) >= newest_src

    if complete(main_dir):
        return main_dir
    side = build / "bench-workloads"
    src = side / "src"
    src.mkdir(parents=True, exist_ok=True)
    cml = ("cmake_minimum_required(VERSION 3.16)\nproject(mheap_workloads C)\n"
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
    d = build / "bench" / "inputs"
    d.mkdir(parents=True, exist_ok=True)
    inputs = {}
    for w in wls:
        n = w.size[mode]
        if w.kind == "gcc":
            f = d / ("gen-%d-%d.c" % (n, seed))
            if not f.exists():
                subprocess.run([sys.executable, str(WL_SRC / "gen_c.py"), str(n), str(seed), str(f)],
                               check=True)
            inputs[w.name] = f
        elif w.kind == "sqlite":
            f = d / ("sql-%d-%d.sql" % (n, seed))
            if not f.exists():
                subprocess.run([sys.executable, str(WL_SRC / "gen_sql.py"), str(n), str(seed), str(f)],
                               check=True)
            inputs[w.name] = f
    return inputs


# ---------------------------------------------------------------- one run

def base_env():
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


def free_port(rng):
    for _ in range(100):
        port = rng.randint(20000, 60999)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port")


def redis_ping(port, deadline):
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def run_redis(w, mode, preload, seed, rng, timeout, tmp):
    n = w.size[mode]
    env = base_env()
    if preload:
        env["LD_PRELOAD"] = preload
    port = free_port(rng)
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
           "--logfile", "", "--dir", tmp]
    logf = open(os.path.join(tmp, "redis-%d.log" % port), "wb")
    t0 = time.perf_counter()
    srv = subprocess.Popen(cmd, env=env, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL,
                           start_new_session=True)
    res = {"status": "ok", "stdout": b"", "stderr": b"", "majflt": 0}
    try:
        if not redis_ping(port, time.time() + 15):
            res["status"] = "no server"
        else:
            bcmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", str(n),
                    "-t", "set,get,lpush,lpop", "-d", "256", "-c", "50", "-r", "100000", "-P", "16",
                    "--csv"]
            b = subprocess.run(bcmd, env=base_env(), capture_output=True, timeout=timeout)
            res["stdout"] = b.stdout
            rps = {}
            for row in csv.reader(b.stdout.decode(errors="replace").splitlines()):
                if len(row) >= 2 and fnum(row[1]) is not None:
                    rps[row[0].strip().lower()] = float(row[1])
            res["rps"] = rps
            if len(rps) != 4 or min(rps.values()) <= 0:
                res["status"] = "bad benchmark output"
            # peak RSS of the server, before it shuts down
            try:
                with open("/proc/%d/status" % srv.pid) as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            res["vmhwm_kib"] = int(line.split()[1])
            except OSError:
                pass
    except subprocess.TimeoutExpired:
        res["status"] = "timeout"
    finally:
        alive = srv.poll() is None
        if alive:
            os.kill(srv.pid, signal.SIGTERM)
        def kill():
            try:
                os.killpg(srv.pid, signal.SIGKILL)
            except OSError:
                pass

        timer = threading.Timer(20, kill)
        timer.start()
        _, status, ru = os.wait4(srv.pid, 0)
        timer.cancel()
        srv.returncode = code = os.waitstatus_to_exitcode(status)
        logf.close()
    res["wall_s"] = time.perf_counter() - t0
    if res["status"] == "ok" and code != 0:
        res["status"] = "signal %d" % -code if code < 0 else "exit %d" % code
    if not alive and res["status"] == "ok":
        res["status"] = "server died"
    res.update(maxrss_kib=res.get("vmhwm_kib", ru.ru_maxrss), minflt=ru.ru_minflt,
               majflt=ru.ru_majflt, utime_s=ru.ru_utime, stime_s=ru.ru_stime)
    with open(os.path.join(tmp, "redis-%d.log" % port), "rb") as f:
        res["stderr"] = f.read()[-2000:]
    os.unlink(os.path.join(tmp, "redis-%d.log" % port))
    return res


def run_one(w, mode, alloc, preload, ctx, seed, rng, timeout):
    """One run; returns a row (dict) for the CSV."""
    wl_dir, inputs, tmp = ctx["wl_dir"], ctx["inputs"], ctx["tmp"]
    launcher = wl_dir / "rusage-launch"
    env = base_env()
    check = ""
    if w.kind == "exe":
        cmd = [str(wl_dir / w.exe), str(w.threads), str(w.size[mode]), str(seed)]
        r = run_process(launcher, cmd, preload, env, timeout)
    elif w.kind == "python":
        env["PYTHONMALLOC"] = "malloc"
        env["PYTHONHASHSEED"] = "0"
        cmd = ["/usr/bin/python3", str(WL_SRC / "py_workload.py"), str(w.size[mode]), str(seed)]
        r = run_process(launcher, cmd, preload, env, timeout)
    elif w.kind == "gcc":
        obj = os.path.join(tmp, "gen.o")
        if os.path.exists(obj):
            os.unlink(obj)
        cmd = ["gcc", "-O2", "-c", str(inputs[w.name]), "-o", obj]
        r = run_process(launcher, cmd, preload, env, timeout, cwd=tmp)
        if r["status"] == "ok":
            with open(obj, "rb") as f:
                check = sha16(f.read())
    elif w.kind == "sqlite":
        cmd = ["sqlite3", ":memory:"]
        r = run_process(launcher, cmd, preload, env, timeout, stdin_path=str(inputs[w.name]))
        if r["status"] == "ok":
            check = sha16(r["stdout"])
    elif w.kind == "redis":
        r = run_redis(w, mode, preload, seed, rng, timeout, tmp)
    else:
        raise ValueError(w.kind)

    res = parse_result(r["stdout"].decode(errors="replace")) if w.kind in ("exe", "python") else {}
    if "check" in res:
        check = res["check"]
    status = r["status"]
    if status == "ok" and w.kind in ("exe", "python") and "time_s" not in res:
        status = "no result line"
    if status == "ok" and res.get("errors", "0") != "0":
        status = "corrupted objects: errors=%s" % res["errors"]
    cost, metric_name, metric_value = None, "", None
    if status == "ok":
        if w.metric == "time_s":
            cost = fnum(res.get("time_s"))
            metric_name, metric_value = "time_s", cost
        elif w.metric == "wall":
            cost = r["wall_s"]
            metric_name, metric_value = "wall_s", cost
        elif w.metric == "redis":
            n = w.size[mode]
            cost = sum(n / v for v in r["rps"].values())  # seconds to serve all requests
            metric_name, metric_value = "req_per_s", 4 * n / cost
            res = {"rps_" + k: "%.0f" % v for k, v in r["rps"].items()}
    extra = " ".join("%s=%s" % (k, v) for k, v in res.items() if k not in ("check", "errors"))
    return {
        "workload": w.name, "allocator": alloc, "status": status,
        "wall_s": "%.4f" % r["wall_s"], "cost_s": "" if cost is None else "%.6f" % cost,
        "metric": metric_name, "metric_value": "" if metric_value is None else "%.6g" % metric_value,
        "maxrss_kib": r["maxrss_kib"], "minflt": r["minflt"], "majflt": r["majflt"],
        "utime_s": "%.3f" % r["utime_s"], "stime_s": "%.3f" % r["stime_s"],
        "check": check, "extra": extra,
        "stderr_tail": "" if status == "ok" else r["stderr"].decode(errors="replace")[-400:],
    }


# ---------------------------------------------------------------- analysis

def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def analyse(rows, wls, allocs):
    med = {}  # (workload, alloc) -> dict of medians
    for w in wls:
        for a in allocs:
            rs = [r for r in rows if r["workload"] == w.name and r["allocator"] == a]
            ok = [r for r in rs if r["status"] == "ok"]
            m = {"runs": len(rs), "ok": len(ok),
                 "failures": sorted(set(r["status"] for r in rs if r["status"] != "ok"))}
            if ok:
                m["cost"] = statistics.median(float(r["cost_s"]) for r in ok)
                m["metric"] = statistics.median(float(r["metric_value"]) for r in ok)
                m["rss_mib"] = statistics.median(int(r["maxrss_kib"]) for r in ok) / 1024.0
                m["minflt"] = statistics.median(int(r["minflt"]) for r in ok)
                m["wall"] = statistics.median(float(r["wall_s"]) for r in ok)
                vals = sorted(float(r["metric_value"]) for r in ok)
                m["spread"] = (vals[0], vals[-1])
                ex = {}
                for r in ok:
                    for tok in r["extra"].split():
                        k, _, v = tok.partition("=")
                        if fnum(v) is not None:
                            ex.setdefault(k, []).append(float(v))
                m["extra"] = {k: statistics.median(v) for k, v in ex.items()}
            med[(w.name, a)] = m
    # consistency of the output checksums across allocators and rounds
    mismatch = {}
    for w in wls:
        checks = {}
        for r in rows:
            if r["workload"] == w.name and r["status"] == "ok" and r["check"]:
                checks.setdefault(r["check"], set()).add(r["allocator"])
        if len(checks) > 1:
            mismatch[w.name] = {k: sorted(v) for k, v in checks.items()}
    ratio, rss_ratio = {}, {}
    for w in wls:
        peer_costs = [med[(w.name, p)]["cost"] for p in PEERS if (w.name, p) in med and "cost" in med[(w.name, p)]]
        best = min(peer_costs) if peer_costs else None
        mi = med.get((w.name, "mimalloc"), {}).get("rss_mib")
        for a in allocs:
            m = med[(w.name, a)]
            if best and "cost" in m:
                ratio[(w.name, a)] = m["cost"] / best
            if mi and "rss_mib" in m:
                rss_ratio[(w.name, a)] = m["rss_mib"] / mi
    # mheap against the best peer of the same round, median over rounds:
    # less sensitive to drift between rounds than the ratio of medians.
    paired = {}
    for w in wls:
        by_round = {}
        for r in rows:
            if r["workload"] == w.name and r["status"] == "ok":
                by_round.setdefault(r["round"], {})[r["allocator"]] = float(r["cost_s"])
        rs = []
        for costs in by_round.values():
            peers = [costs[p] for p in PEERS if p in costs]
            if "mheap" in costs and peers:
                rs.append(costs["mheap"] / min(peers))
        if rs:
            paired[w.name] = statistics.median(rs)
    summ = {"paired": paired}
    if "mheap" in allocs:
        r = {w.name: ratio[(w.name, "mheap")] for w in wls if (w.name, "mheap") in ratio}
        if r:
            summ["time_geomean"] = geomean(r.values())
            worst = max(r, key=r.get)
            summ["time_max"] = (r[worst], worst)
            summ["time_ratios"] = r
        rr = {w.name: rss_ratio[(w.name, "mheap")] for w in wls if (w.name, "mheap") in rss_ratio}
        if rr:
            summ["rss_geomean"] = geomean(rr.values())
            worst = max(rr, key=rr.get)
            summ["rss_max"] = (rr[worst], worst)
            big = [v for k, v in rr.items() if med[(k, "mimalloc")]["rss_mib"] >= 16]
            if big:
                summ["rss_geomean_big"] = (geomean(big), len(big))
        lm, lg = med.get(("large", "mheap"), {}), med.get(("large", "glibc"), {})
        if "minflt" in lm and "minflt" in lg:
            summ["large_faults"] = (lm["minflt"], lg["minflt"])
        fr = med.get(("frag", "mheap"), {}).get("extra", {})
        if "rss_after_1s_mib" in fr:
            summ["frag"] = fr
    return med, ratio, rss_ratio, mismatch, summ


# ---------------------------------------------------------------- reports

def fmt_metric(w, v):
    if v is None:
        return "-"
    if w.metric == "redis":
        return "%.0f req/s" % v
    return "%.3f s" % v


def tables(wls, allocs, med, ratio, rss_ratio, mismatch, summ):
    L = []
    hdr = "| workload | metric | " + " | ".join(allocs) + " |"
    sep = "|---|---|" + "---:|" * len(allocs)

    def cell(m, key, f):
        if key not in m:
            return "FAILED" if m.get("runs") else "-"
        return f(m[key])

    def per_alloc_table(fmt):
        """A table with one row per workload and one column per allocator;
        fmt(workload, its median record, allocator) gives a cell."""
        L.extend(["| workload | " + " | ".join(allocs) + " |", "|---|" + "---:|" * len(allocs)])
        for w in wls:
            cells = []
            for a in allocs:
                cells.append(fmt(w, med[(w.name, a)], a))
            L.append("| %s | " % w.name + " | ".join(cells) + " |")

    L.append("Median of the rounds (time: lower is better; req/s: higher is better):")
    L.append("")
    L += [hdr, sep]
    for w in wls:
        name = {"time_s": "own time", "wall": "wall time", "redis": "throughput"}[w.metric]
        L.append("| %s | %s | " % (w.name, name) + " | ".join(
            cell(med[(w.name, a)], "metric", lambda v, w=w: fmt_metric(w, v)) for a in allocs) + " |")
    L.append("")
    L.append("Spread of the rounds (lowest - highest of the metric above; a wide spread means "
             "the machine was disturbed during some rounds):")
    L.append("")
    def spread_cell(w, m, a):
        sp = m.get("spread")
        if not sp:
            return "-"
        if w.metric == "redis":
            return "%.0fk - %.0fk" % (sp[0] / 1000, sp[1] / 1000)
        return "%.3f - %.3f" % sp

    per_alloc_table(spread_cell)
    L.append("")
    L.append("Time relative to the best of the four peers for that workload (1.00 = as fast as "
             "the best peer; for redis, inverse throughput):")
    L.append("")
    paired = summ.get("paired", {})
    L += ["| workload | " + " | ".join(allocs) + " | mheap, same round |",
          "|---|" + "---:|" * (len(allocs) + 1)]
    for w in wls:
        L.append("| %s | " % w.name + " | ".join(
            ("%.2f" % ratio[(w.name, a)]) if (w.name, a) in ratio else "-" for a in allocs) +
            " | %s |" % (("%.2f" % paired[w.name]) if w.name in paired else "-"))
    L.append("")
    L.append("(\"mheap, same round\": mheap's time over the best peer's time in the same round, "
             "median over the rounds.)")
    L.append("")
    L.append("Peak RSS in MiB (ru_maxrss of the process and its children; redis: the server's "
             "VmHWM), and in brackets relative to mimalloc:")
    L.append("")
    def rss_cell(w, m, a):
        if "rss_mib" not in m:
            return "-"
        rr = rss_ratio.get((w.name, a))
        return "%.1f (%.2f)" % (m["rss_mib"], rr) if rr else "%.1f" % m["rss_mib"]

    per_alloc_table(rss_cell)
    L.append("")
    L.append("Minor page faults (median):")
    L.append("")
    per_alloc_table(lambda w, m, a: cell(m, "minflt", lambda v: "%d" % v))
    L.append("")
    if any("extra" in med[("frag", a)] for a in allocs if ("frag", a) in med):
        L.append("Fragmentation workload (MiB, medians): resident memory after the fill, right "
                 "after freeing 90%, after 1 s of light activity, after allocating the freed "
                 "amount again; live = bytes still allocated; live pages = the 4 KiB pages that "
                 "hold a byte of a live object where this allocator put them (no policy that "
                 "only releases whole free pages goes below it):")
        L.append("")
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
        L.append("")
    fails = [(w.name, a, med[(w.name, a)]) for w in wls for a in allocs
             if med[(w.name, a)].get("failures")]
    if fails or mismatch:
        L.append("Failures and output mismatches:")
        L.append("")
        for wn, a, m in fails:
            L.append("- %s under %s: %d of %d runs failed (%s)" % (wn, a, m["runs"] - m["ok"], m["runs"],
                                                                 ", ".join(m["failures"])))
        for wn, checks in mismatch.items():
            L.append("- %s: the output checksum differs between runs: %s" % (
                wn, "; ".join("%s: %s" % (k, ",".join(v)) for k, v in checks.items())))
        L.append("")
    else:
        L.append("No failures; every workload printed the same checksum under every allocator.")
        L.append("")
    if "time_geomean" in summ or "rss_geomean" in summ:
        L.append("Summary for mheap:")
        L.append("")
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
        L.append("")
    return L


def machine_info(build, libs):
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
    so = Path(libs.get("mheap") or "")
    if so.is_file():
        real = so.resolve()
        info["mheap library"] = "%s (sha256 %s..., built %s)" % (
            real, sha16(real.read_bytes())[:12],
            datetime.datetime.fromtimestamp(real.stat().st_mtime).strftime("%Y-%m-%d %H:%M"))
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


def plot(data, outdir, mode):
    """data: {'workloads': [...], 'allocs': [...], 'time': {alloc: [ratio...]},
    'rss': {alloc: [ratio...]}}; returns the list of files written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colors = {"glibc": "#7f7f7f", "jemalloc": "#1f77b4", "tcmalloc": "#2ca02c",
              "mimalloc": "#ff7f0e", "mheap": "#d62728"}
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
            ax.bar(xs, vals, width, label=a, color=colors.get(a))
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
            r = subprocess.run([py, str(Path(__file__).resolve()), "--plot-data", f.name, "--out", outdir, "--mode", mode])
        finally:
            os.unlink(f.name)
        if r.returncode == 0:
            return [os.path.join(outdir, "%s-%s.png" % (k, mode)) for k in ("time", "rss")], \
                "matplotlib (%s)" % py
    if shutil.which("gnuplot"):
        return plot_gnuplot(data, outdir, mode), "gnuplot"
    return [], None


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="CMake build directory (libmheap.so in <build>/src)")
    ap.add_argument("--mode", choices=["quick", "full"], default="quick")
    ap.add_argument("--repeats", type=int, help="rounds (default: quick 5, full 5)")
    ap.add_argument("--only", help="comma-separated workloads to run")
    ap.add_argument("--allocators", help="comma-separated allocators (default: all five)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench"), help="output directory")
    ap.add_argument("--no-install", action="store_true", help="never run apt-get")
    ap.add_argument("--timeout", type=float, help="per-run limit in seconds (quick 120, full 900)")
    ap.add_argument("--plot-data", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.plot_data:  # re-invoked under an interpreter that has matplotlib
        with open(args.plot_data) as f:
            plot(json.load(f), args.out, args.mode)
        return 0

    t_start = time.time()
    load_start = os.getloadavg()
    busy_start, mine_start = cpu_busy_s(), own_cpu_s()
    mode = args.mode
    repeats = args.repeats or 5
    timeout = args.timeout or (120 if mode == "quick" else 900)
    build = Path(args.build)
    if not build.is_absolute():
        build = (Path.cwd() / build).resolve()
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)

    wls = workloads()
    if args.only:
        keep = args.only.split(",")
        unknown = [k for k in keep if k not in [w.name for w in wls]]
        if unknown:
            sys.exit("unknown workloads: " + ", ".join(unknown))
        wls = [w for w in wls if w.name in keep]
    allocs = args.allocators.split(",") if args.allocators else list(ALLOCATORS)

    # peers and programs
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
    apt_install(need, not args.no_install)

    libs = {"glibc": None}
    for a in allocs:
        if a in PEER_LIBS:
            libs[a] = find_lib(PEER_LIBS[a][0])
    libs["mheap"] = str(build / "src" / "libmheap.so")
    if "mheap" in allocs and not Path(libs["mheap"]).exists():
        sys.exit("%s not found: build the project first (make build)" % libs["mheap"])
    missing = [a for a in allocs if a != "glibc" and not libs.get(a)]
    for a in missing:
        log("allocator %s not found: skipped" % a)
    allocs = [a for a in allocs if a not in missing]
    missing_prog = []
    for w in list(wls):
        progs = {"sqlite": ["sqlite3"], "redis": ["redis-server", "redis-benchmark"],
                 "gcc": ["gcc"], "python": ["/usr/bin/python3"]}.get(w.kind, [])
        if any(not shutil.which(p) for p in progs):
            log("workload %s skipped: %s not found" % (w.name, ", ".join(progs)))
            missing_prog.append(w.name)
    wls = [w for w in wls if w.name not in missing_prog]

    wl_dir = ensure_workloads(build)
    shim = str(wl_dir / "libwl-glibc-shim.so")
    inputs = prepare_inputs(build, mode, wls, args.seed)

    log("allocators: " + ", ".join("%s (%s)" % (a, libs[a] or "system, no LD_PRELOAD") for a in allocs))
    log("workloads:  " + ", ".join(w.name for w in wls))
    log("mode %s, %d rounds, interleaved; workload binaries in %s" % (mode, repeats, wl_dir))

    rows = []
    rng = random.Random(args.seed)
    total = repeats * len(wls) * len(allocs)
    k = 0
    with tempfile.TemporaryDirectory(prefix="mheap-bench-") as tmp:
        ctx = {"wl_dir": wl_dir, "inputs": inputs, "tmp": tmp}
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
                    log("[%3d/%d] round %d %-10s %-9s %-8s %s  rss %.1f MiB  minflt %s%s" % (
                        k, total, rep + 1, w.name, a, row["metric"] or "-",
                        row["metric_value"] or "-", int(row["maxrss_kib"]) / 1024.0, row["minflt"],
                        "" if row["status"] == "ok" else "  ** " + row["status"] +
                        (": " + row["stderr_tail"].strip().splitlines()[-1]
                         if row["stderr_tail"].strip() else "")))

    csv_path = outdir / ("results-%s.csv" % mode)
    fields = ["mode", "round", "workload", "allocator", "status", "wall_s", "cost_s", "metric",
              "metric_value", "maxrss_kib", "minflt", "majflt", "utime_s", "stime_s", "check",
              "extra", "stderr_tail"]
    with open(csv_path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=fields)
        wr.writeheader()
        wr.writerows(rows)

    med, ratio, rss_ratio, mismatch, summ = analyse(rows, wls, allocs)
    body = tables(wls, allocs, med, ratio, rss_ratio, mismatch, summ)
    plots, plotter = make_plots(wls, allocs, ratio, rss_ratio, str(outdir), mode, not args.no_install)
    elapsed = time.time() - t_start

    info = machine_info(build, libs)
    others = (cpu_busy_s() - busy_start) - (own_cpu_s() - mine_start)
    info["CPU used by other processes during the run"] = "%.0f CPU-seconds in %.0f s (%.0f%% of " \
        "one core on average; /proc/stat busy time minus this runner's own)" % (
            others, elapsed, 100.0 * others / elapsed if elapsed > 0 else 0)
    info["load average (1, 5, 15 min)"] = "%s at the start, %s at the end (other jobs on the " \
        "machine slow the multi-threaded workloads down most)" % (
            "/".join("%.2f" % x for x in load_start), "/".join("%.2f" % x for x in os.getloadavg()))
    cmd = "python3 bench/run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    md = ["# Allocator comparison, %s mode" % mode, "",
          "Generated by `bench/run.py` on %s." % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "",
          "Command: `%s`%s." % (cmd, (" (run by `make %s`)" % ("bench-quick" if mode == "quick" else "bench"))
                                 if "MAKELEVEL" in os.environ else ""), "",
          "Runs: %d rounds; in each round every workload runs under glibc, jemalloc, tcmalloc, "
          "mimalloc and mheap in turn; %d runs, %.0f s in all." % (repeats, len(rows), elapsed), "",
          "Machine:", ""]
    md += ["- %s: %s" % (k, v) for k, v in info.items()]
    md += ["- allocators: " + ", ".join("%s = %s" % (a, libs[a] or "system (no LD_PRELOAD)")
                                        for a in allocs), ""]
    md += ["Workloads (threads and sizes for this mode):", ""]
    for w in wls:
        arg = ("threads %d, scale %s" % (w.threads, w.size[mode])) if w.kind == "exe" else \
            {"python": "scale %s", "gcc": "%s functions", "sqlite": "%s rows",
             "redis": "-n %s per test"}[w.kind] % w.size[mode]
        md.append("- `%s`: %s (%s)" % (w.name, w.desc, arg))
    md.append("")
    md += body
    if plots:
        md += ["Plots (%s):" % plotter, ""] + ["![%s](%s)" % (os.path.basename(p), os.path.basename(p))
                                               for p in plots] + [""]
    else:
        md += ["No plots: neither matplotlib nor gnuplot could be used.", ""]
    md_path = outdir / ("results-%s.md" % mode)
    md_path.write_text("\n".join(md) + "\n")

    log("")
    for line in body:
        log(line)
    log("written: %s, %s%s" % (csv_path, md_path, "".join(", " + p for p in plots)))
    if not plots:
        log("no plots: neither matplotlib nor gnuplot available")
    log("total time %.0f s; other processes used %.0f CPU-seconds meanwhile" % (elapsed, others))
    bad = any(r["status"] != "ok" for r in rows) or mismatch
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
