"""Paths, allocator names and small helpers shared by the runner's modules."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
WL_SRC = ROOT / "bench" / "workloads"
RUN_PY = ROOT / "bench" / "run.py"
PEERS = ["glibc", "jemalloc", "tcmalloc", "mimalloc"]
ALLOCATORS = PEERS + ["mheap"]

# .so name and Debian package of each peer (glibc needs none).
PEER_LIBS = {
    "jemalloc": ("libjemalloc.so.2", "libjemalloc2"),
    "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
    "mimalloc": ("libmimalloc.so.2", "libmimalloc2.0"),
}

NPROC = os.cpu_count() or 1


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
