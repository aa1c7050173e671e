"""hstest.py -- shared helpers for heapsnap's integration tests (python3 stdlib only).

Finds the build's binaries, starts fixture programs and waits for them to be ready,
runs heapsnap, reads snapshots with sqlite3, and makes sure no target is ever left
stopped or running when a test ends. A test exits 77 to be reported as skipped.
"""
import argparse
import atexit
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

SKIP = 77
_children = []


def args():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--source", required=True)
    a, _ = p.parse_known_args()
    return a


A = args()
BUILD = os.path.abspath(A.build)
SOURCE = os.path.abspath(A.source)
HEAPSNAP = os.path.join(BUILD, "heapsnap")
FIXTURES = os.path.join(BUILD, "tests", "fixtures")


def fixture(name):
    return os.path.join(FIXTURES, name)


def skip(why):
    print("SKIP: " + why)
    sys.exit(SKIP)


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def check_eq(a, b, what):
    if a != b:
        fail("%s: %r != %r" % (what, a, b))


def tmpdir():
    d = tempfile.mkdtemp(prefix="hstest-")
    return d


def _cleanup():
    for p in _children:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
                p.wait(5)
            except Exception:
                pass


atexit.register(_cleanup)


def spawn(argv, ready="ready", timeout=30, env=None, **kw):
    """Start a fixture; wait until a line containing `ready` appears on its stdout."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=None, text=True, env=env, **kw)
    _children.append(p)
    deadline = time.time() + timeout
    lines = []
    while time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            if p.poll() is not None:
                fail("%s exited early (%s): %s" % (argv[0], p.returncode, "".join(lines)))
            continue
        lines.append(line)
        if ready in line:
            return p
    fail("%s never became ready" % argv[0])


def stop(p, sig=signal.SIGTERM, timeout=10):
    """Stop a fixture politely; return its exit code."""
    if p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        p.send_signal(sig)
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        fail("%d did not exit on signal %d" % (p.pid, sig))


def run(argv, timeout=300, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def heapsnap(*argv, timeout=300, **kw):
    return run([HEAPSNAP] + [str(a) for a in argv], timeout=timeout, **kw)


def capture(pid, out, *extra, timeout=300):
    r = heapsnap("capture", "-p", pid, "-o", out, *extra, timeout=timeout)
    if r.returncode != 0:
        fail("capture of %d failed (%d): %s%s" % (pid, r.returncode, r.stdout, r.stderr))
    return r


def summary_json(path):
    r = heapsnap("summary", path, "--json")
    if r.returncode != 0:
        fail("summary failed: " + r.stderr)
    return json.loads(r.stdout)


def db(path):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    return con


def proc_state(pid, tid=None):
    """The state letter of a process or thread from /proc, None if gone."""
    path = "/proc/%d/task/%d/stat" % (pid, tid) if tid else "/proc/%d/stat" % pid
    try:
        with open(path) as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2]


def tasks(pid):
    try:
        return sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))
    except OSError:
        return []


def cpu_ticks(pid):
    """utime+stime of a process: rises while it runs."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def tracer(pid, tid=None):
    path = "/proc/%d/task/%d/status" % (pid, tid) if tid else "/proc/%d/status" % pid
    with open(path) as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


def require_ptrace():
    """Skip when this machine does not let us trace a child."""
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            scope = int(f.read())
    except OSError:
        scope = 0
    if scope >= 3:
        skip("ptrace is disabled (yama ptrace_scope 3)")
    if scope >= 1 and os.geteuid() != 0:
        skip("ptrace of non-children needs root or ptrace_scope 0")


def assert_running(p, what=""):
    """The target is alive, not stopped, not traced, and makes progress."""
    check(p.poll() is None, "target died %s (exit %s)" % (what, p.returncode))
    for tid in tasks(p.pid):
        st = proc_state(p.pid, tid)
        check(st not in ("t", "T"), "thread %d left stopped (%s) %s" % (tid, st, what))
        check(tracer(p.pid, tid) == 0, "thread %d still traced %s" % (tid, what))


def _varint(b, i):
    x, shift = 0, 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7f) << shift
        shift += 7
        if not c & 0x80:
            return x, i


def chunk_edges(con):
    """The pointer graph decoded from chunk_edge (schema/README.md), independently of
    heapsnap's reader: (nodes, edges), nodes the in-use chunk addresses in address order,
    edges a list of (src_addr, dst_addr, interior, word index). Checks that every group's
    blob decodes exactly to its edge count."""
    nodes = [a for (a,) in con.execute("SELECT addr FROM chunk WHERE state = 0 ORDER BY addr")]
    edges = []
    for grp, n, blob in con.execute("SELECT grp, n, dst FROM chunk_edge"):
        i, total = 0, 0
        for s in range(64 * grp, min(len(nodes), 64 * grp + 64)):
            cnt, i = _varint(blob, i)
            total += cnt
            prev = s
            for k in range(cnt):
                v, i = _varint(blob, i)
                w, i = _varint(blob, i)
                delta = v >> 1
                if k == 0:
                    node = s + (delta // 2 if delta % 2 == 0 else -(delta + 1) // 2)
                else:
                    node = prev + delta
                prev = node
                edges.append((nodes[s], nodes[node], v & 1, w))
        check_eq(i, len(blob), "blob of group %d decodes exactly" % grp)
        check_eq(total, n, "edge count of group %d" % grp)
    return nodes, edges


def capture_graph_cxx(d):
    """fx_graph_cxx (C++ objects with vtables) captured into d: (snapshot path,
    {class name: objects the program made}); None if the fixture is not built."""
    fxx = fixture("fx_graph_cxx")
    if not os.path.exists(fxx):
        return None
    truth = os.path.join(d, "xtruth")
    p = spawn([fxx, truth])
    snap = os.path.join(d, "x.hsnap")
    capture(p.pid, snap)
    stop(p)
    want = {}
    for line in open(truth):
        w = line.split()
        if w and w[0] == "type":
            want[" ".join(w[2:])] = want.get(" ".join(w[2:]), 0) + 1
    return snap, want
