"""The pointer graph at capture (issue #4), end to end through `heapsnap capture`:
  * fx_graph knows its own graph: every edge it lists is in chunk_edge (decoded from the
    packed blobs) with the right start/interior flag and word; the tree, cycle, diamond
    and interior-only blocks have global roots naming the fx_graph module and the global
    symbol; the stack-held list has a stack root of the main thread, at the address of
    main()'s local, tagged with main's frame (its index among the thread's real frames,
    from the callsite chain) and shown so by `heapsnap path`; the block under a __thread
    pointer has a TLS root of the main thread at that variable's address, fs-relative;
    nothing roots the leaked blocks directly, and no edge leads into them from outside
    the leaked subtree;
  * relro is not scanned, because it holds no heap pointer: no word of any module's
    PT_GNU_RELRO range in the live fixtures points into an in-use chunk, and no root
    lies there;
  * fx_graph_cxx: every object has exactly the class name the program gives;
  * --contents stores the bytes (the summary and capture table say which mode), the
    default does not.
"""
import bisect
import json
import os
import shutil
import struct
import sys

import hstest as T

T.require_ptrace()
d = T.tmpdir()


def edges_of(con):
    """{(src_addr, dst_addr): (interior, word)} decoded from chunk_edge."""
    nodes, edges = T.chunk_edges(con)
    view = [a for (a,) in con.execute("SELECT addr FROM node ORDER BY idx")]
    T.check_eq(view, nodes, "the node view numbers in-use chunks in address order")
    return {(a, b): (interior, w) for a, b, interior, w in edges}


def real_frames(con, tid):
    """The functions of a thread's real frames, innermost first: its callsite chain
    without the inlined levels (a real frame's inlined levels precede it)."""
    cs = con.execute("SELECT callsite_id FROM thread WHERE tid = ?", (tid,)).fetchone()[0]
    out = []
    while cs is not None:
        parent, fn, depth = con.execute("SELECT c.parent_id, f.function, f.inline_depth FROM callsite c "
                                        "JOIN frame f ON f.id = c.frame_id WHERE c.id = ?", (cs,)).fetchone()
        if depth == 0:
            out.append(fn)
        cs = parent
    return out


GDB_FRAMES = """
import gdb
for th in gdb.selected_inferior().threads():
    th.switch()
    f = gdb.newest_frame()
    while f is not None:
        if f.type() not in (gdb.INLINE_FRAME, gdb.TAILCALL_FRAME):
            print("FRAME %d %d %s" % (th.ptid[1], int(f.read_register("rsp")), f.name()))
        f = f.older()
"""


def gdb_frame_check(pid, con, what):
    """Independent ground truth for root.frame_no: gdb's real frames (no inlined or
    tail-call ones) of the live target; frame k holds [its rsp, the next frame's rsp),
    frame 0 also what lies below its rsp (the red zone). Skipped without gdb/python."""
    if not shutil.which("gdb"):
        print("%s: gdb not installed, frames not checked against it" % what)
        return
    script = os.path.join(d, "frames.py")
    with open(script, "w") as f:
        f.write(GDB_FRAMES)
    r = T.run(["gdb", "-q", "-batch", "-nx", "-p", str(pid), "-x", script], timeout=120)
    sps = {}
    for line in r.stdout.splitlines():
        w = line.split()
        if w[:1] == ["FRAME"]:
            sps.setdefault(int(w[1]), []).append(int(w[2]))
    if not sps:
        print("%s: gdb gave no frames (no python in gdb, or no ptrace): not checked" % what)
        return
    n = 0
    for slot, tid, fno in con.execute("SELECT slot, tid, frame_no FROM root WHERE kind = 1"):
        sp = sps.get(tid)
        T.check(sp, "%s: gdb has no frames of thread %d" % (what, tid))
        k = bisect.bisect_right(sp, slot) - 1
        T.check_eq(fno, max(k, 0), "%s: frame of stack slot %#x of thread %d (gdb's rsps %s)"
                   % (what, slot, tid, [hex(x) for x in sp]))
        n += 1
    T.check(n > 0, "%s: stack roots to check" % what)
    print("%s: %d stack roots in the frame gdb puts them in" % (what, n))


def relro_check(pid, con, what):
    """No word of a module's PT_GNU_RELRO (read live from /proc/PID/mem) points into an
    in-use chunk's user region, and no root row lies in relro."""
    ch = con.execute("SELECT addr, size FROM chunk WHERE state = 0 ORDER BY addr").fetchall()
    lows = [a + 16 for a, _ in ch]
    slots = sorted(s for (s,) in con.execute("SELECT slot FROM root WHERE slot IS NOT NULL"))
    mem = open("/proc/%d/mem" % pid, "rb")
    words = 0
    for path, base in con.execute("SELECT path, load_base FROM module"):
        try:
            with open(path, "rb") as f:
                elf = f.read(1 << 16)
        except OSError:
            continue
        if elf[:4] != b"\x7fELF" or elf[4] != 2:
            continue
        phoff, = struct.unpack_from("<Q", elf, 32)
        phentsize, phnum = struct.unpack_from("<HH", elf, 54)
        for k in range(phnum):
            ptype, _, _, vaddr, _, _, memsz, _ = struct.unpack_from("<IIQQQQQQ", elf, phoff + k * phentsize)
            if ptype != 0x6474e552:          # PT_GNU_RELRO
                continue
            lo = base + vaddr
            mem.seek(lo)
            data = mem.read(memsz)
            for i in range(len(data) // 8):
                v, = struct.unpack_from("<Q", data, 8 * i)
                j = bisect.bisect_right(lows, v) - 1
                T.check(not (j >= 0 and v < ch[j][0] + ch[j][1]),
                        "%s: relro word %#x of %s points into chunk %#x" % (what, lo + 8 * i, path, ch[j][0]))
            words += len(data) // 8
            j = bisect.bisect_left(slots, lo)
            T.check(j == len(slots) or slots[j] >= lo + memsz, "%s: a root in the relro of %s" % (what, path))
    T.check(words > 100, "%s: relro words checked: %d" % (what, words))
    print("%s: %d relro words, none into the heap" % (what, words))
    return words


truth = os.path.join(d, "g.truth")
p = T.spawn([T.fixture("fx_graph"), truth])
blocks, edges, roots, leaked = {}, [], [], set()
for line in open(truth):
    w = line.split()
    if w[0] == "block":
        blocks[w[1]] = int(w[2], 16) - 16          # chunk address
    elif w[0] == "edge":
        edges.append((w[1], w[2], w[3], int(w[4])))
    elif w[0] == "root":
        roots.append(w[1:])
    elif w[0] == "leaked":
        leaked.add(w[1])
out = os.path.join(d, "g.hsnap")
T.capture(p.pid, out)
con = T.db(out)
got = edges_of(con)
for s, dd, kind, word in edges:
    key = (blocks[s], blocks[dd])
    T.check(key in got, "edge %s -> %s missing" % (s, dd))
    T.check_eq(got[key], (1 if kind == "interior" else 0, word), "edge %s -> %s (interior, word)" % (s, dd))
# the leaked blocks: no root, and no edge into them from a block outside the subtree
leaked_addrs = {blocks[n] for n in leaked}
lroots = con.execute("SELECT count(*) FROM root WHERE dst IN (%s)" % ",".join(map(str, leaked_addrs))).fetchone()[0]
T.check_eq(lroots, 0, "roots into the leaked subtree")
into = [(hex(a), hex(b)) for (a, b) in got if b in leaked_addrs and a not in leaked_addrs]
T.check(not into, "edges into the leaked subtree from outside: %s" % into)

for r in roots:
    name, kind = r[0], r[1]
    addr = blocks[name]
    if kind == "global":
        sym, flag = r[2], r[3]
        rows = con.execute("SELECT r.interior, r.offset, m.path FROM root r JOIN module m ON m.id = r.module_id "
                           "WHERE r.kind = 2 AND r.dst = ? AND r.symbol = ?", (addr, sym)).fetchall()
        T.check(len(rows) == 1, "one global root %s -> %s, got %s" % (sym, name, rows))
        T.check_eq(rows[0][0], 1 if flag == "interior" else 0, "interior flag of root %s" % sym)
        T.check_eq(rows[0][1], 0, "offset of root %s in its symbol" % sym)
        T.check(rows[0][2].endswith("/fx_graph"), "root %s names the fx_graph module: %s" % (sym, rows[0][2]))
    elif kind == "stack":
        tid = int(r[2])
        rows = con.execute("SELECT interior, offset, slot FROM root WHERE kind = 1 AND dst = ? AND tid = ?",
                           (addr, tid)).fetchall()
        T.check(any(x[0] == 0 and x[1] >= -128 for x in rows),
                "a stack root of thread %d for %s: %s" % (tid, name, rows))
        # main()'s local holds it: a word in main's frame
        frames = real_frames(con, tid)
        T.check("main" in frames, "main is in thread %d's backtrace: %s" % (tid, frames))
        rows = con.execute("SELECT r.offset, r.frame_no, f.function FROM root r LEFT JOIN frame f "
                           "ON f.id = r.frame_id WHERE r.kind = 1 AND r.dst = ? AND r.tid = ? AND "
                           "r.interior = 0", (addr, tid)).fetchall()
        in_main = [x for x in rows if x[1:] == (frames.index("main"), "main")]
        T.check(in_main, "a stack root of %s in main's frame (#%d): %s" % (name, frames.index("main"), rows))
        pa = json.loads(T.heapsnap("path", out, hex(addr + 16), "--all", "--json").stdout)
        srcs = [q["root_source"] for q in pa["paths"] if q["root_kind"] == "stack"]
        want = "thread %d stack sp+%#x frame #%d main (fx_graph.c:" % (tid, in_main[0][0], frames.index("main"))
        T.check(any(x.startswith(want) for x in srcs), "path names %r: %s" % (want, srcs))
    elif kind == "tls":
        tid, slot = int(r[2]), int(r[4], 16)
        fs = con.execute("SELECT fs_base FROM thread WHERE tid = ?", (tid,)).fetchone()[0]
        rows = con.execute("SELECT interior, offset, frame_no FROM root WHERE kind = 3 AND dst = ? AND tid = ? "
                           "AND slot = ?", (addr, tid, slot)).fetchall()
        T.check_eq(rows, [(0, slot - fs, None)], "TLS root of %s at the __thread variable" % name)
        T.check(slot < fs, "static TLS lies below the thread pointer")
        into = [hex(a) for (a, b) in got if b == addr]
        T.check(not into, "%s is held by its TLS root only, yet chunks point to it: %s" % (name, into))
        pa = json.loads(T.heapsnap("path", out, hex(addr + 16), "--json").stdout)
        T.check_eq([(q["root_kind"], q["root_source"]) for q in pa["paths"]][:1],
                   [("tls", "thread %d tls-%#x" % (tid, fs - slot))], "path to %s" % name)
T.check({r[1] for r in roots} >= {"global", "stack", "tls"}, "the fixture names every root kind it has")
T.check_eq(con.execute("SELECT count(*) FROM root WHERE kind != 1 AND (frame_no IS NOT NULL OR "
                       "frame_id IS NOT NULL)").fetchone()[0], 0, "only stack roots have a frame")
T.check_eq(con.execute("SELECT count(*) FROM root WHERE (frame_no IS NULL) != (frame_id IS NULL)").fetchone()[0],
           0, "frame_no and frame_id go together")
relro_check(p.pid, con, "fx_graph")
gdb_frame_check(p.pid, con, "fx_graph")
kinds = {k for (k,) in con.execute("SELECT DISTINCT kind FROM root")}
T.check(kinds >= {1, 2, 3}, "root kinds present: %s" % kinds)
T.check_eq(con.execute("SELECT contents FROM capture").fetchone()[0], 0, "contents off by default")
T.check_eq(con.execute("SELECT count(*) FROM chunk_content").fetchone()[0], 0, "no contents by default")
s = T.heapsnap("summary", out)
T.check("contents" in s.stdout and "not stored" in s.stdout, "summary says contents are not stored:\n" + s.stdout)

# --contents: the bytes of a known block (T0 holds T1 and T2 at words 0 and 1)
out2 = os.path.join(d, "g2.hsnap")
T.capture(p.pid, out2, "--contents")
con2 = T.db(out2)
T.check_eq(con2.execute("SELECT contents FROM capture").fetchone()[0], 1, "contents mode recorded")
b = con2.execute("SELECT bytes FROM chunk_content WHERE addr = ?", (blocks["T0"],)).fetchone()[0]
T.check_eq(int.from_bytes(b[0:8], "little"), blocks["T1"] + 16, "stored contents of T0, word 0")
T.check_eq(int.from_bytes(b[8:16], "little"), blocks["T2"] + 16, "stored contents of T0, word 1")
s = T.heapsnap("summary", out2)
T.check("contents" in s.stdout and "stored" in s.stdout and "not stored" not in s.stdout,
        "summary says contents are stored:\n" + s.stdout)
T.stop(p)

# C++ types
truth = os.path.join(d, "c.truth")
p = T.spawn([T.fixture("fx_graph_cxx"), truth])
want = {}
for line in open(truth):
    w = line.split()
    if w[0] == "type":
        want[int(w[1], 16) - 16] = w[2]
out = os.path.join(d, "c.hsnap")
T.capture(p.pid, out)
con = T.db(out)
have = {a: n for a, n in con.execute("SELECT c.addr, t.name FROM chunk_type c JOIN type t ON t.id = c.type_id")}
for a, n in want.items():
    T.check_eq(have.get(a), n, "class of the object at %#x" % (a + 16))
relro_check(p.pid, con, "fx_graph_cxx")
T.stop(p)

# deeper stacks for the frames: python3 (the interpreter running this test), two threads
# waiting in libc (inlined and tail-call frames there)
code = ("import threading, time\n"
        "threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
        "l = [dict(a=i) for i in range(1000)]\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n")
p = T.spawn([sys.executable, "-c", code])
out = os.path.join(d, "py.hsnap")
T.capture(p.pid, out)
con = T.db(out)
relro_check(p.pid, con, "python3")
gdb_frame_check(p.pid, con, "python3")
T.stop(p)
print("ok")
