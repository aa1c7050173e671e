"""Soak: a 4-thread malloc storm captured 200 times in a row. Zero target deaths or
hangs (the storm checks its own blocks' tags on every free and watches its workers for
progress), every snapshot consistent, and the pause's median and maximum printed."""
import os
import signal
import statistics
import time

import hstest as T

T.require_ptrace()
N = int(os.environ.get("HEAPSNAP_SOAK_N", "200"))
storm = T.fixture("fx_storm")
d = T.tmpdir()
out = os.path.join(d, "soak.hsnap")

p = T.spawn([storm, "4", "3600"])
pauses, attempts, inconsistent, ran_out = [], [], 0, 0
t0 = time.time()
for i in range(N):
    T.capture(p.pid, out, "--quiet")
    con = T.db(out)
    pause, att, ro = con.execute(
        "SELECT pause_us, attempts, threads_ran_out FROM capture").fetchone()
    found = con.execute("SELECT heap_found FROM capture").fetchone()[0]
    T.check_eq(found, 1, "heap found in capture %d" % i)
    bad = con.execute("SELECT count(*) FROM arena WHERE consistent = 0").fetchone()[0]
    narenas = con.execute("SELECT count(*) FROM arena").fetchone()[0]
    T.check(narenas >= 2, "capture %d: arenas %d" % (i, narenas))
    con.close()
    os.unlink(out)
    pauses.append(pause)
    attempts.append(att)
    ran_out += ro or 0
    if bad:
        inconsistent += 1
    T.check(p.poll() is None, "storm died at capture %d (exit %s)" % (i, p.returncode))
    time.sleep(0.005)
elapsed = time.time() - t0

T.assert_running(p, "after the soak")
os.kill(p.pid, signal.SIGUSR1)
rc = p.wait(60)
pauses.sort()
print("soak: %d captures in %.1f s; consistent %d/%d (%.1f%%); pause median %d us, max %d us; "
      "attempts max %d, total re-freezes %d; threads run out of the allocator %d"
      % (N, elapsed, N - inconsistent, N, 100.0 * (N - inconsistent) / N,
         statistics.median(pauses), pauses[-1], max(attempts), sum(a - 1 for a in attempts), ran_out))
T.check_eq(rc, 0, "storm exit status (0: no corruption, no hang)")
T.check_eq(inconsistent, 0, "inconsistent snapshots")
print("ok: soak")
