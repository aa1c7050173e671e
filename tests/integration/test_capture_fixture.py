"""End to end through `heapsnap capture`: the fx_heap fixture knows its own heap (every
live block with its malloc_usable_size, every freed block, its own mallinfo2()). For the
dynamic build with libc debug symbols, without them, and the static build:
  * every live block is an in_use chunk with exactly that usable size;
  * no freed block is in_use;
  * all eight mallinfo2 figures of `summary --json` equal the fixture's own;
  * every arena is consistent; the parked threads are recorded;
  * the target is running afterwards and its heap is unchanged (it checks itself);
  * the capture did not grow the target's memory: its VmRSS is the same before and
    after (fx_heap has ~100 MB it never touched: a 48 MiB .bss buffer, untouched ends
    of mmapped blocks and heap tops; reading them would fault them in), and the
    snapshot's per-mapping Rss adds up to that VmRSS.
"""
import os
import signal
import time

import hstest as T

T.require_ptrace()
FIELDS = ["arena", "ordblks", "smblks", "hblks", "hblkhd", "uordblks", "fordblks", "fsmblks"]
d = T.tmpdir()


def read_truth(path):
    mi, live, freed = None, {}, set()
    for line in open(path):
        w = line.split()
        if not w:
            continue
        if w[0] == "mallinfo":
            mi = {k: int(v) for k, v in (x.split("=") for x in w[1:])}
        elif w[0] == "live":
            live[int(w[1], 16)] = int(w[2])
        elif w[0] == "freed":
            freed.add(int(w[1], 16))
    return mi, live, freed


def vm_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def self_check(p, truth):
    chk = truth + ".check"
    if os.path.exists(chk):
        os.unlink(chk)
    os.kill(p.pid, signal.SIGUSR1)
    deadline = time.time() + 20
    while time.time() < deadline and not os.path.exists(chk):
        time.sleep(0.05)
    T.check(os.path.exists(chk), "fixture wrote no self-check")
    text = open(chk).read().strip()
    T.check_eq(text, "check ok", "fixture self-check after capture")


cases = [("dynamic, libc debug symbols", "fx_heap", []),
         ("dynamic, heuristics", "fx_heap", ["--no-debug-symbols"]),
         ("static", "fx_heap_static", [])]
for name, exe, opts in cases:
    truth = os.path.join(d, exe + ".truth")
    p = T.spawn([T.fixture(exe), truth], timeout=60)
    mi, live, freed = read_truth(truth)
    T.check(mi is not None and len(live) > 1000 and len(freed) > 100,
            "%s: truth file complete (%d live, %d freed)" % (name, len(live), len(freed)))
    out = os.path.join(d, exe + ".hsnap")
    rss0 = vm_rss_kb(p.pid)
    T.capture(p.pid, out, *opts)
    rss1 = vm_rss_kb(p.pid)
    T.check(rss1 - rss0 <= 512, "%s: the capture grew the target's RSS from %d to %d kB"
            % (name, rss0, rss1))

    con = T.db(out)
    chunks = {addr + 16: (usable, state) for addr, usable, state in
              con.execute("SELECT addr, usable, state FROM chunk")}
    missing = [a for a in live if a not in chunks]
    T.check(not missing, "%s: %d live blocks not found, e.g. %s" % (name, len(missing), [hex(a) for a in missing[:5]]))
    wrong = [(hex(a), u, chunks[a]) for a, u in live.items() if chunks[a] != (u, 0)]
    T.check(not wrong, "%s: live blocks with wrong usable size or state: %s" % (name, wrong[:5]))
    freed_in_use = [hex(a) for a in freed if a in chunks and chunks[a][1] == 0]
    T.check(not freed_in_use, "%s: freed blocks reported in use: %s" % (name, freed_in_use[:5]))
    bad = con.execute("SELECT count(*) FROM arena WHERE consistent = 0").fetchone()[0]
    T.check_eq(bad, 0, name + ": inconsistent arenas")
    narenas = con.execute("SELECT count(*) FROM arena").fetchone()[0]
    T.check(narenas >= 5, "%s: arenas %d" % (name, narenas))
    # every chunk state the fixture arranged is present
    states = {s for (s,) in con.execute("SELECT DISTINCT state FROM chunk")}
    T.check_eq(states, {0, 1, 2, 3, 4, 5}, name + ": chunk states present")
    parked = con.execute("SELECT count(*) FROM thread WHERE syscall_nr IS NOT NULL").fetchone()[0]
    T.check(parked >= 1, name + ": a thread parked in a syscall is recorded")
    smaps_rss = con.execute("SELECT sum(rss_kb) FROM mapping").fetchone()[0]
    T.check(abs(smaps_rss - rss1) <= 512, "%s: smaps Rss sums to %d kB, VmRSS is %d kB"
            % (name, smaps_rss, rss1))
    used_dbg = con.execute("SELECT debug_symbols FROM capture").fetchone()[0]
    if opts:
        T.check_eq(used_dbg, 0, name + ": heuristics were used")
    con.close()

    ours = T.summary_json(out)["mallinfo"]
    for f in FIELDS:
        T.check_eq(ours[f], mi[f], "%s: mallinfo %s" % (name, f))
    T.check(T.summary_json(out)["capture"]["pause_us"] > 0, name + ": pause recorded")

    T.assert_running(p, "after capture (%s)" % name)
    self_check(p, truth)
    T.check_eq(T.stop(p), 0, name + ": fixture exit status")
    print("%s: %d live blocks exact, %d freed not in use, %d arenas consistent, mallinfo %s; "
          "VmRSS %d -> %d kB"
          % (name, len(live), len(freed), narenas, " ".join("%s=%d" % (f, mi[f]) for f in FIELDS),
             rss0, rss1))
    os.unlink(out)
print("ok: fixture heap matches its ground truth")
