"""One run of one workload under one allocator, and the CSV row it gives."""

import csv
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

from .common import WL_SRC, fnum, parse_result, sha16


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


def base_env():
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


# ---------------------------------------------------------------- redis

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


def redis_benchmark(port, n, timeout, srv_pid, res):
    """Runs redis-benchmark against the server on port and records into res
    the requests/s of each test, the status and the server's VmHWM."""
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
        with open("/proc/%d/status" % srv_pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    res["vmhwm_kib"] = int(line.split()[1])
    except OSError:
        pass


def stop_server(srv):
    """Sends SIGTERM to a running server (SIGKILL to its group after 20 s)
    and reaps it; returns (was it still running, exit code, rusage)."""
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
    return alive, code, ru


def run_redis(w, mode, preload, seed, rng, timeout, tmp):
    n = w.size[mode]
    env = base_env()
    if preload:
        env["LD_PRELOAD"] = preload
    port = free_port(rng)
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
           "--logfile", "", "--dir", tmp]
    log_path = os.path.join(tmp, "redis-%d.log" % port)
    logf = open(log_path, "wb")
    t0 = time.perf_counter()
    srv = subprocess.Popen(cmd, env=env, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL,
                           start_new_session=True)
    res = {"status": "ok", "stdout": b"", "stderr": b"", "majflt": 0}
    try:
        if not redis_ping(port, time.time() + 15):
            res["status"] = "no server"
        else:
            redis_benchmark(port, n, timeout, srv.pid, res)
    except subprocess.TimeoutExpired:
        res["status"] = "timeout"
    finally:
        alive, code, ru = stop_server(srv)
        logf.close()
    res["wall_s"] = time.perf_counter() - t0
    if res["status"] == "ok" and code != 0:
        res["status"] = "signal %d" % -code if code < 0 else "exit %d" % code
    if not alive and res["status"] == "ok":
        res["status"] = "server died"
    res.update(maxrss_kib=res.get("vmhwm_kib", ru.ru_maxrss), minflt=ru.ru_minflt,
               majflt=ru.ru_majflt, utime_s=ru.ru_utime, stime_s=ru.ru_stime)
    with open(log_path, "rb") as f:
        res["stderr"] = f.read()[-2000:]
    os.unlink(log_path)
    return res


# ---------------------------------------------------------------- one run

def execute(w, mode, preload, ctx, seed, rng, timeout):
    """Runs w under preload; returns (the run's record, output checksum
    computed here ('' when the workload prints its own or has none))."""
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
    return r, check


def run_one(w, mode, alloc, preload, ctx, seed, rng, timeout):
    """One run; returns a row (dict) for the CSV."""
    r, check = execute(w, mode, preload, ctx, seed, rng, timeout)
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
