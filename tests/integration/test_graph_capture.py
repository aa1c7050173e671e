"""The pointer graph at capture (issue #4), end to end through `heapsnap capture`:
  * fx_graph knows its own graph: every edge it lists is in chunk_edge (decoded from the
    packed blobs) with the right start/interior flag and word; the tree, cycle, diamond
    and interior-only blocks have global roots naming the fx_graph module and the global
    symbol; the stack-held list has a stack root of the main thread; nothing roots the
    leaked blocks directly, and no edge leads into them from outside the leaked subtree;
  * fx_graph_cxx: every object has exactly the class name the program gives;
  * --contents stores the bytes (the summary and capture table say which mode), the
    default does not.
"""
import os

import hstest as T

T.require_ptrace()
d = T.tmpdir()


def varint(b, i):
    x, shift = 0, 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7f) << shift
        shift += 7
        if not c & 0x80:
            return x, i


def edges_of(con):
    """{(src_addr, dst_addr): (interior, word)} decoded from chunk_edge."""
    nodes = [a for (a,) in con.execute("SELECT addr FROM chunk WHERE state = 0 ORDER BY addr")]
    index = {a: i for i, a in enumerate(nodes)}
    view = [a for (a,) in con.execute("SELECT addr FROM node ORDER BY idx")]
    T.check_eq(view, nodes, "the node view numbers in-use chunks in address order")
    out = {}
    for grp, n, blob in con.execute("SELECT grp, n, dst FROM chunk_edge"):
        i, total = 0, 0
        for s in range(64 * grp, min(len(nodes), 64 * grp + 64)):
            cnt, i = varint(blob, i)
            total += cnt
            prev = s
            for k in range(cnt):
                v, i = varint(blob, i)
                w, i = varint(blob, i)
                delta = v >> 1
                if k == 0:
                    node = s + (delta // 2 if delta % 2 == 0 else -(delta + 1) // 2)
                else:
                    node = prev + delta
                prev = node
                out[(nodes[s], nodes[node])] = (v & 1, w)
        T.check_eq(i, len(blob), "blob of group %d decodes exactly" % grp)
        T.check_eq(total, n, "edge count of group %d" % grp)
    return out


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
kinds = {k for (k,) in con.execute("SELECT DISTINCT kind FROM root")}
T.check(kinds >= {1, 2}, "root kinds present: %s" % kinds)
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
T.stop(p)
print("ok")
