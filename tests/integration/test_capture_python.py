"""A real program nobody here wrote: python3 holding a large dict, with a few threads that
allocated (and now wait). heapsnap's mallinfo figures, computed from its chunk table,
must equal glibc's own mallinfo2() as gdb obtains it by calling into the process right
after our capture, field for field; and the capture must not have changed the heap."""
import os
import re
import shutil
import signal
import subprocess
import sys

import hstest as T

T.require_ptrace()
gdb = shutil.which("gdb")
if not gdb:
    T.skip("gdb is not installed (apt-get install gdb)")

PROG = r"""
import sys, threading, time, signal
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
big = {("key%d" % i): ("value-%d-" % i) * 8 for i in range(200000)}
blobs = []
go = threading.Event()
ready = threading.Barrier(4)
def worker(n):
    mine = [bytes(600 + (i * 37) % 5000) for i in range(3000)]
    blobs.append(mine)
    mine2 = [bytearray(130000 + n * 4096)]          # mmapped chunks
    blobs.append(mine2)
    del mine[::3]
    ready.wait()
    go.wait()
ths = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
for t in ths: t.start()
ready.wait()
print("ready", flush=True)
signal.sigwait([signal.SIGTERM, signal.SIGINT])
go.set()
"""

FIELDS = ["arena", "ordblks", "smblks", "hblks", "hblkhd", "uordblks", "fordblks", "fsmblks"]


def gdb_mallinfo(pid):
    r = T.run([gdb, "-batch", "-nx", "-p", str(pid), "-ex", "print mallinfo2()"], timeout=120)
    m = re.search(r"\$1 = \{(.*)\}", r.stdout)
    if not m:
        T.skip("gdb could not call mallinfo2() (libc6-dbg missing?): %s %s"
               % (r.stdout[-300:], r.stderr[-300:]))
    return {k: int(v) for k, v in re.findall(r"(\w+) = (\d+)", m.group(1))}


d = T.tmpdir()
p = T.spawn([sys.executable, "-c", PROG], timeout=120)
for mode in ([], ["--no-debug-symbols"]):
    out = os.path.join(d, "py.hsnap")
    T.capture(p.pid, out, *mode)
    ours = T.summary_json(out)["mallinfo"]
    glibc = gdb_mallinfo(p.pid)
    for f in FIELDS:
        T.check_eq(ours[f], glibc[f], "mallinfo %s (%s)" % (f, " ".join(mode) or "debug symbols"))
    con = T.db(out)
    narenas, bad = con.execute("SELECT count(*), sum(consistent = 0) FROM arena").fetchone()
    T.check(narenas >= 2, "python with threads has several arenas (%d)" % narenas)
    T.check_eq(bad, 0, "inconsistent arenas")
    nchunks = con.execute("SELECT count(*) FROM chunk WHERE state = 0").fetchone()[0]
    T.check(nchunks > 5000, "in-use chunks: %d" % nchunks)
    con.close()
    print("python3 %s: %d arenas, %d in-use chunks, mallinfo equal to gdb's: %s"
          % (" ".join(mode) or "(debug symbols)", narenas, nchunks,
             " ".join("%s=%d" % (f, ours[f]) for f in FIELDS)))
    os.unlink(out)
T.assert_running(p, "after captures")
p.send_signal(signal.SIGTERM)
T.check_eq(p.wait(60), 0, "python exit status")
print("ok: python3 vs gdb mallinfo2")
