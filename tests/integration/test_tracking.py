"""Allocation tracking end to end: fixtures run under `heapsnap run` (the tracking
library preloaded), stop themselves at a known point (FX_TRACK_STOP=1, see
tests/fixtures/fx_track.h), are captured, and the snapshot must say exactly what the
fixtures know they allocated:
  * bytes and counts per site, by function name (`top --by function --json`) and by
    file:line (`top --by line --json`, against the SITE lines the fixtures print), and
    per whole stack (a -> b -> c chains told apart by their middle frame);
  * C and C++ (new, new[], aligned new; exceptions unwinding through allocating frames),
    realloc that moves, the aligned allocators, threads, a fork child, before and
    after dlopen, and a module dlclosed while its blocks stay live (named through the
    library's unload table, with its build-id);
  * the tracking table's join: no header missing or extra against the library's own
    counters, few untracked chunks; `top --json` totals and `stacks --folded` sums equal
    the tracked bytes; a snapshot without tracking makes top exit 1 with a message;
  * the fx_heap fixture under the library: the heap walk still matches its ground truth
    (every live block an in-use chunk whose alloc.usable is the usable size the program
    saw, the program's pointer where the header says), and mallinfo2 is equal;
  * the fixture's output is the same with and without the library;
  * sampling: over several runs the scaled estimate for sites of known size is within
    the stated tolerance, and no allocation >= the interval is missed.
"""
import json
import os
import shutil
import signal
import subprocess
import time

import hstest as T

T.require_ptrace()
LIB = os.path.join(T.BUILD, "libheapsnap_preload.so")
if not os.path.exists(LIB):
    T.skip("libheapsnap_preload.so not built")
d = T.tmpdir()


def wait_stopped(pid, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = T.proc_state(pid)
        if st == "T":
            return
        if st is None or st == "Z":
            T.fail("process %d exited before stopping" % pid)
        time.sleep(0.02)
    T.fail("process %d never stopped itself" % pid)


def start(argv, run_opts=(), env_extra=None):
    env = dict(os.environ, FX_TRACK_STOP="1")
    env.update(env_extra or {})
    p = subprocess.Popen([T.HEAPSNAP, "run"] + list(run_opts) + ["--"] + argv,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    T._children.append(p)
    wait_stopped(p.pid)
    return p


def finish(p, what):
    os.kill(p.pid, signal.SIGCONT)
    out, err = p.communicate(timeout=120)
    T.check_eq(p.returncode, 0, what + ": fixture exit status")
    return out, err


def hs_json(*argv):
    r = T.heapsnap(*argv)
    if r.returncode != 0:
        T.fail("heapsnap %s failed (%d): %s" % (" ".join(map(str, argv)), r.returncode, r.stderr))
    return json.loads(r.stdout)


def by_key(snap, by):
    """{key: (bytes, count)} from top --json"""
    return {e["key"]: (e["bytes"], e["count"]) for e in hs_json("top", snap, "--by", by, "--limit", "0", "--json")}


def stack_funcs(snap):
    """[(tuple of functions innermost first, bytes, count)] from stacks --json"""
    return [(tuple(f["function"] for f in e["frames"]), e["bytes"], e["count"])
            for e in hs_json("stacks", snap, "--json")]


def tracking_row(snap):
    con = T.db(snap)
    con.row_factory = lambda c, r: {c.description[i][0]: r[i] for i in range(len(r))}
    row = con.execute("SELECT * FROM tracking").fetchone()
    con.close()
    T.check(row is not None, snap + ": a tracking row")
    T.check_eq(row["valid"], 1, snap + ": tracking valid (note: %s)" % row["note"])
    return row


def check_join(snap, what, untracked_max=16):
    """the join both ways, and top/stacks totals against the tracking table"""
    t = tracking_row(snap)
    T.check_eq((t["missing_count"], t["extra_count"]), (0, 0), what + ": headers vs the library's counters")
    T.check(t["untracked_count"] <= untracked_max, "%s: %d untracked chunks" % (what, t["untracked_count"]))
    con = T.db(snap)
    n, b = con.execute("SELECT count(*), coalesce(sum(requested), 0) FROM alloc WHERE origin NOT IN (1, 2)").fetchone()
    in_use_no_chunk = con.execute("SELECT count(*) FROM alloc a LEFT JOIN chunk c ON c.addr = a.addr"
                                  " WHERE c.addr IS NULL OR c.state != 0").fetchone()[0]
    bad_usable = con.execute("SELECT count(*) FROM alloc a JOIN chunk c ON c.addr = a.addr"
                             " WHERE a.usable > c.usable - 16 OR a.requested > a.usable").fetchone()[0]
    con.close()
    T.check_eq((n, b), (t["tracked_count"], t["tracked_bytes"]), what + ": alloc rows vs tracking totals")
    T.check_eq(in_use_no_chunk, 0, what + ": every alloc row is an in-use chunk")
    T.check_eq(bad_usable, 0, what + ": alloc.usable within the chunk, requested within usable")
    if t["sample_interval"] == 0:
        top = hs_json("top", snap, "--limit", "0", "--json")
        T.check_eq((sum(e["count"] for e in top), sum(e["bytes"] for e in top)),
                   (t["tracked_count"], t["tracked_bytes"]), what + ": top --json totals")
        r = T.heapsnap("stacks", snap, "--folded")
        T.check_eq(r.returncode, 0, what + ": stacks --folded exit")
        lines = [l for l in r.stdout.splitlines() if l]
        T.check(all(";" in l or l.startswith("(no stack)") for l in lines), what + ": folded lines")
        T.check_eq(sum(int(l.rsplit(" ", 1)[1]) for l in lines), t["tracked_bytes"], what + ": folded sum")
    return t


def site_lines(err):
    """{function: "file:line"} from the fixtures' "site NAME FILE:LINE" lines"""
    out = {}
    for l in err.splitlines():
        w = l.split()
        if len(w) == 3 and w[0] == "site":
            f, line = w[2].rsplit(":", 1)
            out[w[1]] = "%s:%s" % (os.path.realpath(f), line)
    return out


def expect(table, truth, what):
    for k, v in truth.items():
        T.check_eq(table.get(k), v, "%s: %s (bytes, count)" % (what, k))


# ---------------------------------------------------------------- C: a->b->c, realloc, aligned, threads
snap = os.path.join(d, "calls.hsnap")
p = start([T.fixture("fx_track_calls")])
T.capture(p.pid, snap)
out_lib, err = finish(p, "fx_track_calls")
truth = {"c_alloc": (5000, 30), "calloc_site": (750, 5), "realloc_grow": (4194304, 1),
         "rarray_site": (480, 1), "al_memalign": (100, 1), "al_posix": (200, 1),
         "al_aligned": (512, 1), "al_valloc": (300, 1), "al_pvalloc": (5000, 1),
         "t_alloc": (693, 21)}
fn = by_key(snap, "function")
expect(fn, truth, "calls by function")
for gone in ("freed_site", "x_alloc"):
    T.check(gone not in fn, "calls: %s has nothing live" % gone)
lines = site_lines(err)
byline = {os.path.realpath(k.rsplit(":", 1)[0]) + ":" + k.rsplit(":", 1)[1]: v
          for k, v in by_key(snap, "line").items() if ":" in k and k[0] == "/"}
for name, v in truth.items():
    T.check(name in lines, "calls: the fixture printed the line of " + name)
    T.check_eq(byline.get(lines[name]), v, "calls by line: %s %s" % (name, lines[name]))
stacks = stack_funcs(snap)
for mid, v in (("b_one", (1000, 10)), ("b_two", (4000, 20))):
    got = [(b, c) for f, b, c in stacks if f[:4] == ("c_alloc", mid, "a_path", "main")]
    T.check_eq(got, [v], "calls: the stack c_alloc<%s<a_path<main" % mid)
tstacks = [(b, c) for f, b, c in stacks if f[:2] == ("t_alloc", "thread_main")]
T.check_eq(tstacks, [(693, 21)], "calls: t_alloc<thread_main in threads made before and after")
t = check_join(snap, "calls")
print("calls: %d tracked chunks, %d bytes, %d untracked, %d sites exact by function and line"
      % (t["tracked_count"], t["tracked_bytes"], t["untracked_count"], len(truth)))

# the same output without the library
r = subprocess.run([T.fixture("fx_track_calls")], capture_output=True, text=True, timeout=120)
T.check_eq(r.returncode, 0, "fx_track_calls without the library")
T.check_eq(r.stdout, out_lib, "fx_track_calls output with and without the library")

# a snapshot without tracking: top and stacks say so and exit 1
plain = os.path.join(d, "plain.hsnap")
env = dict(os.environ, FX_TRACK_STOP="1")
q = subprocess.Popen([T.fixture("fx_track_hold")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True, env=env)
T._children.append(q)
wait_stopped(q.pid)
T.capture(q.pid, plain)
finish(q, "fx_track_hold (plain)")
for cmd in ("top", "stacks"):
    r = T.heapsnap(cmd, plain)
    T.check_eq(r.returncode, 1, "%s of an untracked snapshot: exit status" % cmd)
    T.check("did not run under 'heapsnap run'" in r.stderr, "%s says why: %r" % (cmd, r.stderr))
    T.check_eq(len(r.stderr.strip().splitlines()), 1, cmd + ": one-line message")

# ---------------------------------------------------------------- C++
snap = os.path.join(d, "cxx.hsnap")
p = start([T.fixture("fx_track_cxx")])
T.capture(p.pid, snap)
finish(p, "fx_track_cxx")
fn = by_key(snap, "function")
expect(fn, {"cx_new": (400, 4), "cx_obj": (144, 3), "cx_aligned": (512, 2), "cx_survivor": (4800, 200)},
       "c++ by function")
T.check("cx_throw" not in fn, "c++: the vectors freed by unwinding are not live")
surv = [(b, c) for f, b, c in stack_funcs(snap) if "cx_survivor" in f and "cx_mid" in f]
T.check_eq(surv, [(4800, 200)], "c++: cx_survivor<cx_mid")
check_join(snap, "c++")
print("c++: new, new[], aligned new and survivors of exceptions exact")

# ---------------------------------------------------------------- fork: the child, then the parent
def stopped_child(ppid):
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            s = open("/proc/%s/stat" % e).read()
        except OSError:
            continue
        f = s[s.rindex(")") + 2:].split()
        if int(f[1]) == ppid and f[0] == "T":
            return int(e)
    return None


env = dict(os.environ, FX_TRACK_STOP="1")
p = subprocess.Popen([T.HEAPSNAP, "run", "--", T.fixture("fx_track_fork")], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True, env=env)
T._children.append(p)
child = None
deadline = time.time() + 60
while child is None and time.time() < deadline and p.poll() is None:
    child = stopped_child(p.pid)
    time.sleep(0.02)
T.check(child is not None, "fork: the child stopped at its dump")
snap = os.path.join(d, "child.hsnap")
T.capture(child, snap)
os.kill(child, signal.SIGCONT)
expect(by_key(snap, "function"), {"p_alloc": (80, 2), "c_alloc": (200, 4)}, "fork child")
# The churn thread may be inside a hook at the instant of a fork: the child then has
# its counter update without the header (or the reverse), by one block. The library
# counts such threads (fork_torn); the counters may be off by at most that many, the
# headers and so the per-site figures above stay exact.
row = tracking_row(snap)
mc, xc, torn = row["missing_count"], row["extra_count"], row["fork_torn"]
if mc or xc:
    print("fork child: counters off by %d/%d, %d thread(s) torn by the fork" % (mc, xc, torn))
T.check(mc + xc <= torn, "fork child: counters off (missing %d, extra %d) beyond the %d torn hook(s)"
        % (mc, xc, torn))
wait_stopped(p.pid)
snap = os.path.join(d, "parent.hsnap")
T.capture(p.pid, snap)
finish(p, "fx_track_fork")
fn = by_key(snap, "function")
expect(fn, {"p_alloc": (120, 3)}, "fork parent")
T.check("c_alloc" not in fn, "fork parent: no child allocations")
print("fork: child and parent exact")

# ---------------------------------------------------------------- dlopen / dlclose
plugin = T.fixture("fx_track_plugin.so")
p = start([T.fixture("fx_track_dl"), os.path.join(d, "dl"), plugin])
s1 = os.path.join(d, "dl1.hsnap")
T.capture(p.pid, s1)
os.kill(p.pid, signal.SIGCONT)
wait_stopped(p.pid)
s2 = os.path.join(d, "dl2.hsnap")
T.capture(p.pid, s2)
finish(p, "fx_track_dl")
expect(by_key(s1, "function"), {"pre_dl": (48, 2), "pl_inner": (120, 3)}, "dl loaded")
expect(by_key(s2, "function"), {"pre_dl": (48, 2), "pl_inner": (161, 4), "post_dl": (112, 2)}, "dl unloaded")
con = T.db(s2)
mods = con.execute("SELECT DISTINCT m.path, m.build_id FROM alloc a JOIN callsite c ON c.id = a.callsite_id"
                   " JOIN frame f ON f.id = c.frame_id JOIN module m ON m.id = f.module_id"
                   " WHERE f.function = 'pl_inner'").fetchall()
con.close()
T.check_eq(len(mods), 1, "dl: pl_inner in one module")
T.check(mods[0][0].endswith("fx_track_plugin.so") and mods[0][1], "dl: the unloaded module with its build-id: %r" % (mods[0],))
print("dlopen/dlclose: before, inside and after exact; the unloaded module named")

# ---------------------------------------------------------------- the heap walk under the library
truth_path = os.path.join(d, "fx_heap.truth")
p = subprocess.Popen([T.HEAPSNAP, "run", "--", T.fixture("fx_heap"), truth_path], stdout=subprocess.PIPE,
                     text=True)
T._children.append(p)
deadline = time.time() + 120
while time.time() < deadline and "ready" not in (p.stdout.readline() or ""):
    T.check(p.poll() is None, "fx_heap under the library exited early")
mi, live, freed = None, {}, set()
for line in open(truth_path):
    w = line.split()
    if w and w[0] == "mallinfo":
        mi = {k: int(v) for k, v in (x.split("=") for x in w[1:])}
    elif w and w[0] == "live":
        live[int(w[1], 16)] = int(w[2])
    elif w and w[0] == "freed":
        freed.add(int(w[1], 16))
T.check(len(live) > 1000 and len(freed) > 100, "fx_heap under the library: truth complete")
snap = os.path.join(d, "heap.hsnap")
T.capture(p.pid, snap)
con = T.db(snap)
# the program's pointer: chunk user start + header (chunk.usable - alloc.usable)
prog = {c_addr + 16 + (c_usable - a_usable): a_usable for c_addr, c_usable, a_usable in
        con.execute("SELECT c.addr, c.usable, a.usable FROM alloc a JOIN chunk c ON c.addr = a.addr")}
bad = con.execute("SELECT count(*) FROM arena WHERE consistent = 0").fetchone()[0]
# a freed block's chunk starts 32 bytes below the pointer (16 of glibc, 16 of header;
# the fixture frees no aligned blocks): never in use
states = {a: st for a, st in con.execute("SELECT addr, state FROM chunk")}
freed_in_use = [hex(a) for a in freed if states.get(a - 32) == 0]
T.check(not freed_in_use, "fx_heap under the library: freed blocks in use: %s" % freed_in_use[:5])
T.check(sum(1 for a in freed if a - 32 in states) > len(freed) // 2,
        "fx_heap under the library: freed blocks found as chunks")
con.close()
missing = [hex(a) for a in live if a not in prog]
T.check(not missing, "fx_heap: %d live blocks not tracked, e.g. %s" % (len(missing), missing[:5]))
wrong = [(hex(a), u, prog[a]) for a, u in live.items() if prog[a] != u]
T.check(not wrong, "fx_heap: alloc.usable differs from malloc_usable_size: %s" % wrong[:5])
T.check_eq(bad, 0, "fx_heap: inconsistent arenas under the library")
ours = T.summary_json(snap)["mallinfo"]
for f in ["arena", "ordblks", "smblks", "hblks", "hblkhd", "uordblks", "fordblks", "fsmblks"]:
    T.check_eq(ours[f], mi[f], "fx_heap under the library: mallinfo " + f)
check_join(snap, "fx_heap", untracked_max=1 << 30)
T.stop(p)
print("fx_heap under the library: %d live blocks with the program's usable size, mallinfo equal" % len(live))

# ---------------------------------------------------------------- sampling
# R = 4096: a 64-byte block is recorded with P = 1 - exp(-64/4096) = 1.55%, so each of
# the 10 sites of 20000 blocks (1,280,000 bytes) gets ~310 recorded blocks: relative
# standard deviation 5.7%. Stated tolerance: every site within 25% in every run (4.4 sd),
# the 10 sites' sum within 8% in every run (4.4 sd), the mean of the sums over the runs
# within 4%. Blocks of >= R bytes are always recorded: big_site (50 x R) and huge_site
# (30 x 100000) exact in every run.
R, RUNS, SITE_BYTES = 4096, 5, 20000 * 64
sums = []
for run in range(RUNS):
    snap = os.path.join(d, "sample%d.hsnap" % run)
    p = start([T.fixture("fx_track_sample"), "/dev/null", str(R)], run_opts=["--sample", str(R)],
              env_extra={"HEAPSNAP_SEED": str(1000 + run)})
    T.capture(p.pid, snap, timeout=600)
    finish(p, "fx_track_sample")
    top = hs_json("top", snap, "--by", "function", "--limit", "0", "--json")
    T.check(all(e["sampled"] and e["sample_interval"] == R for e in top), "sampling: labelled in JSON")
    fn = {e["key"]: e for e in top}
    for big, (b, c) in (("big_site", (50 * R, 50)), ("huge_site", (3000000, 30))):
        T.check(big in fn, "sampling run %d: %s recorded" % (run, big))
        T.check_eq((fn[big]["recorded_bytes"], fn[big]["recorded_count"], fn[big]["bytes"]), (b, c, b),
                   "sampling run %d: %s exact (never missed)" % (run, big))
    total = 0
    for k in range(10):
        e = fn.get("site%d" % k)
        T.check(e is not None, "sampling run %d: site%d recorded" % (run, k))
        T.check(abs(e["bytes"] - SITE_BYTES) <= 0.25 * SITE_BYTES,
                "sampling run %d: site%d estimate %d vs %d" % (run, k, e["bytes"], SITE_BYTES))
        total += e["bytes"]
    T.check(abs(total - 10 * SITE_BYTES) <= 0.08 * 10 * SITE_BYTES,
            "sampling run %d: 10 sites estimate %d vs %d" % (run, total, 10 * SITE_BYTES))
    r = T.heapsnap("top", snap)
    T.check(r.returncode == 0 and "estimates" in r.stdout and "~" in r.stdout, "sampling: the table says estimates")
    # skipped blocks carry no header: they are the untracked chunks, with the few the
    # program made before the library loaded (at most 16, as in the runs above)
    t = check_join(snap, "sampling run %d" % run, untracked_max=1 << 30)
    T.check_eq(t["unsampled_count"], 0, "sampling run %d: no skipped block keeps a header" % run)
    recorded_small = sum(fn["site%d" % k]["recorded_count"] for k in range(10))
    T.check(0 <= t["untracked_count"] - (10 * 20000 - recorded_small) <= 16,
            "sampling run %d: %d untracked = the %d skipped site blocks (+ <= 16 from before the library)"
            % (run, t["untracked_count"], 10 * 20000 - recorded_small))
    T.check("not recorded:" in r.stdout and "skipped by sampling" in r.stdout, "sampling: top says what is not recorded")
    sums.append(total)
mean = sum(sums) / len(sums)
T.check(abs(mean - 10 * SITE_BYTES) <= 0.04 * 10 * SITE_BYTES, "sampling: mean estimate %d" % mean)
print("sampling R=%d: 10 sites x %d bytes estimated %s (mean %.1f%% off); big blocks never missed"
      % (R, SITE_BYTES, sums, 100.0 * (mean / (10 * SITE_BYTES) - 1)))
shutil.rmtree(d, ignore_errors=True)
print("ok: tracking data exact against the fixtures' ground truth")
