"""The target survives every capture path unharmed: a normal capture, a SIGSTOPped target
(stays stopped), the target exiting mid-capture (clear error, no file), SIGINT/SIGTERM/
SIGHUP to the capture while the target is frozen (target resumed, no file), bad pids and
no permission (one-line error, exit 2). The storm fixture checks its own heap tags and
exits non-zero on any corruption."""
import os
import signal
import stat
import subprocess
import time

import hstest as T

T.require_ptrace()
storm = T.fixture("fx_storm")
d = T.tmpdir()


def no_files_left(what):
    left = [f for f in os.listdir(d) if f.startswith("x.hsnap")]
    T.check(not left, "%s: files left behind: %s" % (what, left))


def wait_frozen(pid, timeout=10):
    """Until every thread is in a ptrace stop ('t')."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        sts = [T.proc_state(pid, t) for t in T.tasks(pid)]
        if sts and all(s == "t" for s in sts):
            return
        time.sleep(0.01)
    T.fail("target %d never frozen" % pid)


def progresses(p):
    a = T.cpu_ticks(p.pid)
    time.sleep(0.3)
    return T.cpu_ticks(p.pid) > a


p = T.spawn([storm, "4", "120"])

# 1. bad input: exit 2 with one line on stderr
r = T.heapsnap("capture", "-p", "999999999")
T.check_eq(r.returncode, 2, "invalid pid exit code")
r = T.heapsnap("capture", "-p", "4194303", "-o", os.path.join(d, "x.hsnap"))
T.check_eq(r.returncode, 2, "missing pid exit code")
T.check_eq(len(r.stderr.strip().splitlines()), 1, "missing pid: one line (%r)" % r.stderr)
r = T.heapsnap("capture")
T.check_eq(r.returncode, 2, "no -p exit code")
no_files_left("bad pid")

# 2. a normal capture: file 0600, target running afterwards
out = os.path.join(d, "x.hsnap")
T.capture(p.pid, out)
T.check_eq(stat.S_IMODE(os.stat(out).st_mode), 0o600, "snapshot mode")
T.assert_running(p, "after a capture")
T.check(progresses(p), "storm makes progress after capture")
os.unlink(out)

# 3. a SIGSTOPped target stays stopped, and continues after SIGCONT
os.kill(p.pid, signal.SIGSTOP)
deadline = time.time() + 5
while time.time() < deadline and not all(T.proc_state(p.pid, t) == "T" for t in T.tasks(p.pid)):
    time.sleep(0.01)
T.capture(p.pid, out)
for tid in T.tasks(p.pid):
    T.check_eq(T.proc_state(p.pid, tid), "T", "thread %d state after capturing a stopped target" % tid)
    T.check_eq(T.tracer(p.pid, tid), 0, "thread %d tracer" % tid)
con = T.db(out)
was = con.execute("SELECT count(*), sum(was_stopped) FROM thread").fetchone()
T.check(was[0] >= 5 and was[0] == was[1], "all threads recorded as was_stopped: %r" % (was,))
con.close()
os.unlink(out)
os.kill(p.pid, signal.SIGCONT)
time.sleep(0.2)
T.assert_running(p, "after SIGCONT")
T.check(progresses(p), "storm progresses after SIGCONT")

# 4. SIGINT / SIGTERM / SIGHUP to the capture while the target is frozen
env = dict(os.environ, HEAPSNAP_TEST_FROZEN_SLEEP_MS="3000")
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    c = subprocess.Popen([T.HEAPSNAP, "capture", "-p", str(p.pid), "-o", out], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_frozen(p.pid)
    t0 = time.time()
    c.send_signal(sig)
    _, err = c.communicate(timeout=10)
    T.check(c.returncode != 0, "capture interrupted by %d must fail" % sig)
    T.check(time.time() - t0 < 3, "capture stopped promptly on signal %d" % sig)
    time.sleep(0.1)
    T.assert_running(p, "after signal %d to the capture" % sig)
    T.check(progresses(p), "storm progresses after signal %d" % sig)
    no_files_left("signal %d" % sig)

# the storm checked every block on every free: it must end clean
os.kill(p.pid, signal.SIGUSR1)
T.check_eq(p.wait(30), 0, "storm exit status (0 = heap intact)")

# 5. the target exits while frozen: clear error, no output file
q = T.spawn([storm, "2", "120"])
c = subprocess.Popen([T.HEAPSNAP, "capture", "-p", str(q.pid), "-o", out], env=env,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
wait_frozen(q.pid)
q.kill()
q.wait()
_, err = c.communicate(timeout=20)
T.check(c.returncode != 0, "capture of a target that exited must fail")
T.check("exited" in err, "error says the process exited: %r" % err)
T.check_eq(len(err.strip().splitlines()), 1, "one-line error (%r)" % err)
no_files_left("target exit")

# 6. no permission: an unprivileged user cannot capture our (root) process
if os.geteuid() == 0:
    q = T.spawn([storm, "1", "60"])

    def drop():
        os.setgid(65534)
        os.setuid(65534)

    r = subprocess.run([T.HEAPSNAP, "capture", "-p", str(q.pid), "-o", "/tmp/never.hsnap"],
                       capture_output=True, text=True, preexec_fn=drop, timeout=60)
    T.check_eq(r.returncode, 2, "no permission exit code (%s)" % r.stderr)
    T.check_eq(len(r.stderr.strip().splitlines()), 1, "no permission: one line (%r)" % r.stderr)
    T.check(not os.path.exists("/tmp/never.hsnap"), "no file without permission")
    T.assert_running(q, "after a refused capture")
    os.kill(q.pid, signal.SIGUSR1)
    T.check_eq(q.wait(30), 0, "storm exit status")

print("ok: capture safety")
