"""Retention analysis end to end (issue #4): fx_graph knows its own graph; capture it,
then check `leaks`, `dominators`, `path`, `retained` and `histogram` against that
ground truth, and compare the leak figures with valgrind memcheck on the same program.

Ground truth (tests/fixtures/fx_graph.c, its TRUTHFILE): every block is 64 requested
bytes; K0 -> K1, K2 is leaked; P is held only by an interior pointer from a global; T0..T4
form a tree under a global; C0 -> C1 -> C2 -> C0 a cycle under a global; DA and DB,
each under its own global, share DS. Capture is conservative (stale stack words and
registers are roots too), so the dominator checks are ones no extra root can break:
T1 retains T3 and T4, C0 retains the cycle, DA and DB retain only themselves.

valgrind: memcheck checks leaks at exit, after main has returned, while heapsnap
captured the live process: blocks held only by main's locals (the list L0..L2, and IN,
whose start pointer a local of main holds) are reachable for heapsnap and lost for
memcheck. The comparison is therefore over the blocks whose fate does not depend on
main's frame: the leaked subtree (allocated in make_leak) and the interior-only P. It
compares counts per category, and bytes as memcheck counts them (requested bytes:
64 per block), since memcheck runs the program on its own allocator where chunk sizes
mean nothing. --leak-check-heuristics=none: heapsnap applies no heuristics.
"""
import json
import os
import re
import shutil

import hstest as T

T.require_ptrace()
d = T.tmpdir()
FX = T.fixture("fx_graph")
if not os.path.exists(FX):
    T.skip("fx_graph fixture not built")


def truth_of(path):
    blocks, leaked = {}, set()
    for line in open(path):
        w = line.split()
        if w and w[0] == "block":
            blocks[w[1]] = int(w[2], 16)
        elif w and w[0] == "leaked":
            leaked.add(w[1])
    return blocks, leaked


truth = os.path.join(d, "truth")
p = T.spawn([FX, truth])
snap = os.path.join(d, "g.hsnap")
T.capture(p.pid, snap)
snap_c = os.path.join(d, "gc.hsnap")
T.capture(p.pid, snap_c, "--contents")
snap_ng = os.path.join(d, "gn.hsnap")
T.capture(p.pid, snap_ng, "--no-graph")
T.stop(p)
blocks, leaked = truth_of(truth)
con = T.db(snap)
chunk = {n: u - 16 for n, u in blocks.items()}          # chunk address = user pointer - 16
size = {n: con.execute("SELECT size FROM chunk WHERE addr = ?", (a,)).fetchone()[0]
        for n, a in chunk.items()}
in_use = con.execute("SELECT count(*) FROM chunk WHERE state = 0").fetchone()[0]


def hs_json(*argv):
    r = T.heapsnap(*argv, "--json")
    if r.returncode != 0:
        T.fail("heapsnap %s failed (%d): %s" % (" ".join(map(str, argv)), r.returncode, r.stderr))
    return json.loads(r.stdout)


# ---- leaks: memcheck's categories over the snapshot
lk = hs_json("leaks", snap)
T.check_eq(leaked, {"K0", "K1", "K2"}, "the fixture's leaked blocks")
T.check_eq(lk["definitely_lost"], {"count": 1, "bytes": size["K0"]}, "definitely lost = K0")
T.check_eq(lk["indirectly_lost"], {"count": 2, "bytes": size["K1"] + size["K2"]},
           "indirectly lost = K1, K2")
T.check_eq(lk["possibly_lost"], {"count": 1, "bytes": size["P"]}, "possibly lost = P")
T.check_eq(lk["still_reachable"]["count"], in_use - 4, "everything else is still reachable")
T.check_eq(len(lk["leak_roots"]), 1, "one leak root")
root = lk["leak_roots"][0]
T.check_eq(root["address"], hex(chunk["K0"]), "the leak root is K0")
T.check_eq(root["blocks"], 3, "K0 holds K1 and K2")
T.check_eq(root["bytes"], size["K0"] + size["K1"] + size["K2"], "bytes K0 holds")
T.check_eq(sum(s["count"] for s in lk["sites"]), in_use, "sites cover every chunk")

# ---- dominators and retained sizes
dom = hs_json("dominators", snap, "--depth", "12", "--limit", "0")
nodes = {}
stack = list(dom["nodes"])
while stack:
    n = stack.pop()
    nodes[int(n["address"], 16)] = n
    stack.extend(n["children"])
T.check_eq(dom["reached_chunks"], in_use - 3, "reached = all but the leaked subtree")


def retained(name):
    T.check(chunk[name] in nodes, "%s is in the dominator tree" % name)
    return nodes[chunk[name]]["retained_bytes"]


T.check_eq(retained("T1"), size["T1"] + size["T3"] + size["T4"], "T1 retains T3, T4")
T.check(retained("T0") >= sum(size[b] for b in ("T0", "T1", "T2", "T3", "T4")),
        "T0 retains its tree")
T.check_eq(retained("C0"), size["C0"] + size["C1"] + size["C2"], "C0 retains the cycle")
T.check_eq(retained("DA"), size["DA"], "the diamond's shared block is not DA's")
T.check_eq(retained("DB"), size["DB"], "the diamond's shared block is not DB's")
for k in ("K0", "K1", "K2"):
    T.check(chunk[k] not in nodes, "leaked %s is not in the dominator tree" % k)
sub = hs_json("dominators", snap, "--root", hex(blocks["T1"] + 8))   # any address inside
T.check_eq(sub["root_retained_bytes"], retained("T1"), "--root takes an inner address")
T.check_eq(sorted(int(n["address"], 16) for n in sub["nodes"]),
           sorted([chunk["T3"], chunk["T4"]]), "T1's dominator children")

# ---- exact group retention: DA and DB together retain DS unless something else roots it
grp = hs_json("retained", snap, "--by", "type")
T.check("groups" in grp, "retained --by type answers")

# ---- retained --by module|root: groups of roots, exact
# The whole snapshot graph (chunk_edge decoded here, root rows) for a brute force: a
# group retains what is unreachable once its root edges are removed.
nodes, edges = T.chunk_edges(con)
nsize = dict(con.execute("SELECT addr, size FROM chunk WHERE state = 0"))
succ = {a: [] for a in nodes}
word_of = {}                                    # (src, dst) -> word index of the pointer
for src, dst, _, w in edges:
    succ[src].append(dst)
    word_of[(src, dst)] = w
kind_name = {0: "registers", 1: "stack", 2: "globals", 3: "tls", 4: "other"}
root_rows = []                                  # (by-root key, by-module key or None, dst)
for kind, tid, mpath, mapath, mastart, dst in con.execute(
        "SELECT r.kind, r.tid, m.path, mp.path, mp.start, r.dst FROM root r LEFT JOIN module m "
        "ON m.id = r.module_id LEFT JOIN mapping mp ON mp.id = r.mapping_id"):
    if dst not in nsize:
        continue
    if kind == 2:
        base = os.path.basename(mpath)
        root_rows.append(("globals " + base, base, dst))
    elif kind == 4:
        root_rows.append(("other " + mapath if mapath else "other anon %#x" % mastart, None, dst))
    else:
        root_rows.append(("%s thread %d" % (kind_name[kind], tid), None, dst))


def reach(starts):
    seen, todo = set(starts), list(starts)
    while todo:
        for b in succ[todo.pop()]:
            if b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


everything = reach([r[2] for r in root_rows])
for by, col in (("root", 0), ("module", 1)):
    got = hs_json("retained", snap, "--by", by, "--limit", "0")
    keys = {r[col] for r in root_rows if r[col] is not None}
    T.check_eq(got["groups_total"], len(keys), "one group per %s" % by)
    for g in got["groups"]:
        T.check(g["key"] in keys, "group %r exists" % g["key"])
        left = reach([r[2] for r in root_rows if r[col] != g["key"]])
        gone = everything - left
        T.check_eq((g["retained_count"], g["retained_bytes"]),
                   (len(gone), sum(nsize[a] for a in gone)),
                   "retained --by %s %r = brute force" % (by, g["key"]))
        held = {r[2] for r in root_rows if r[col] == g["key"]}
        T.check_eq((g["roots"], g["count"], g["shallow_bytes"]),
                   (sum(r[col] == g["key"] for r in root_rows), len(held),
                    sum(nsize[a] for a in held)), "roots and chunks of %r" % g["key"])

# By hand, from the fixture's own graph: fx_graph's globals hold T0 (tree: T0..T4, IN via
# T2's interior pointer), C0 (cycle C0..C2), DA and DB (diamond: DS), P. The module retains
# all of these except what roots outside its globals also keep alive (stale stack slots
# and registers of main: the capture is conservative, and which ones depends on the
# compiler): those blocks, and all they point to, are shared by two groups, retained by
# neither.
fx_edges = {}
for line in open(truth):
    w = line.split()
    if w and w[0] == "edge":
        fx_edges.setdefault(w[1], []).append(w[2])
by_addr = {a: n for n, a in chunk.items()}
outside = set()
todo = [by_addr[r[2]] for r in root_rows if r[1] != "fx_graph" and r[2] in by_addr]
while todo:
    b = todo.pop()
    if b not in outside:
        outside.add(b)
        todo.extend(fx_edges.get(b, []))
fx_held = {"T0", "T1", "T2", "T3", "T4", "IN", "C0", "C1", "C2", "DA", "DB", "DS", "P"}
fx_want = fx_held - outside
mod = {g["key"]: g for g in hs_json("retained", snap, "--by", "module", "--limit", "0")["groups"]}
T.check("fx_graph" in mod, "the fx_graph module is a group")
T.check_eq(mod["fx_graph"]["retained_bytes"], sum(size[b] for b in fx_want),
           "fx_graph's globals retain %s" % sorted(fx_want))
T.check_eq(mod["fx_graph"]["roots"], 5, "g_tree, g_cycle, g_dia_a, g_dia_b, g_interior")
T.check_eq(mod["fx_graph"]["shallow_bytes"], sum(size[b] for b in ("T0", "C0", "DA", "DB", "P")),
           "the chunks fx_graph's globals point into")
T.check({"T0", "T1", "T3", "T4", "C0", "C1", "C2", "DA", "DB", "P"} - outside,
        "most of the fixture is held by its globals alone")
shared = sorted(fx_held & outside)
if shared:
    print("held by fx_graph's globals and by other roots, so retained by neither: %s" % shared)
T.check_eq(hs_json("retained", snap, "--by", "root", "--limit", "1")["groups_total"],
           len({r[0] for r in root_rows}), "--limit caps rows, not groups")
T.check_eq(len(hs_json("retained", snap, "--by", "root", "--limit", "1")["groups"]), 1,
           "--limit 1 shows one group")
r = T.heapsnap("retained", snap, "--by", "thread")
T.check_eq(r.returncode, 2, "an unknown --by is bad input")
txt = T.heapsnap("retained", snap, "--by", "module")
T.check(txt.returncode == 0 and "fx_graph" in txt.stdout, "retained --by module table")

# ---- libs: the heap each module's globals retain (issue 5), the same figure
lj = hs_json("libs", snap)
lmods = {m["name"]: m for m in lj["modules"]}
T.check_eq(lmods["fx_graph"]["globals_retained_bytes"], sum(size[b] for b in fx_want),
           "libs: fx_graph's globals retain the fixture's structures")
T.check_eq(lmods["fx_graph"]["globals_retained_count"], len(fx_want), "libs: chunks")
for name, m in lmods.items():
    T.check_eq(m["globals_retained_bytes"], mod[name]["retained_bytes"] if name in mod else 0,
               "libs = retained --by module for %s" % name)
T.check_eq(lj["heap"]["globals_retained_bytes"], sum(g["retained_bytes"] for g in mod.values()),
           "libs: all modules' globals")
lt = T.heapsnap("libs", snap)
T.check(lt.returncode == 0 and "RETAINED" in lt.stdout, "libs table has the retained column")
ln = hs_json("libs", snap_ng)
T.check(all(m["globals_retained_bytes"] is None for m in ln["modules"]),
        "libs without a pointer graph: null")
lt = T.heapsnap("libs", snap_ng)
T.check(lt.returncode == 0 and "RETAINED: n/a" in lt.stdout, "libs table says n/a")

# ---- path: why is T4 alive
pa = hs_json("path", snap, hex(blocks["T4"]))
T.check(pa["roots_reaching"] >= 1, "a root reaches T4")
hops = pa["paths"][0]["hops"]
T.check_eq(hops[-1]["address"], hex(chunk["T4"]), "the path ends at T4")
T.check(len(hops) <= 3, "at most g_tree -> T0 -> T1 -> T4")
# each hop's offset: where in the chunk before it the pointer sits. Ground truth: the
# fixture's own edge list (edge SRC DST kind WORD) and chunk_edge decoded above.
truth_word = {}
for line in open(truth):
    w = line.split()
    if w and w[0] == "edge":
        truth_word[(chunk[w[1]], chunk[w[2]])] = int(w[4])
T.check_eq(hops[0]["offset"], None, "the first hop's pointer is the root's word")


def check_offsets(path, what):
    for a, b in zip(path["hops"], path["hops"][1:]):
        pair = (int(a["address"], 16), int(b["address"], 16))
        T.check_eq(b["offset"], 8 * word_of[pair], "%s: offset of %s -> %s" % (what, *pair))
        if pair in truth_word:
            T.check_eq(b["offset"], 8 * truth_word[pair], "%s: the fixture's word" % what)


check_offsets(pa["paths"][0], "path to T4")
if len(hops) == 3:
    T.check_eq([h["offset"] for h in hops], [None, 0, 8], "g_tree -> T0 +0x0 -> T1 +0x8 -> T4")
    slot = con.execute("SELECT slot FROM root WHERE symbol = 'g_tree'").fetchone()[0]
    T.check_eq(pa["paths"][0]["root_slot"], hex(slot), "the root word is g_tree")
    T.check_eq(pa["paths"][0]["root_offset"], 0, "at g_tree+0")
    txt = T.heapsnap("path", snap, hex(blocks["T4"]))
    T.check(txt.returncode == 0 and "+0x8" in txt.stdout and "g_tree+0x0" in txt.stdout,
            "the table shows the offsets")
# IN: the only pointer from the heap is T2's interior pointer at word 2 (+0x10)
pi = hs_json("path", snap, hex(blocks["IN"]), "--all")
via_t2 = [q for q in pi["paths"] if len(q["hops"]) >= 2
          and q["hops"][-2]["address"] == hex(chunk["T2"])]
T.check(via_t2, "a path to IN through T2")
for q in pi["paths"]:
    check_offsets(q, "path to IN")
T.check_eq((via_t2[0]["hops"][-1]["pointer"], via_t2[0]["hops"][-1]["offset"]),
           ("interior", 16), "T2 -> IN + 8 is the interior pointer at +0x10")
pk = hs_json("path", snap, hex(blocks["K1"]), "--all")
T.check_eq(pk["paths"], [], "no path to a leaked block")
r = T.heapsnap("path", snap, "0x10")
T.check_eq(r.returncode, 2, "an address in no chunk is bad input")

# ---- show: referrers, referents, contents
sh = hs_json("show", snap_c, hex(blocks["T1"]), "--contents")
T.check_eq(sh["address"], hex(chunk["T1"]), "show finds T1")
T.check_eq(sh["state"], "in_use", "T1 is in use")
T.check({"address": hex(chunk["T0"]), "pointer": "start"} in sh["referrers"], "T0 -> T1")
T.check({"address": hex(chunk["T3"]), "pointer": "start"} in sh["referents"], "T1 -> T3")
T.check({"address": hex(chunk["T4"]), "pointer": "start"} in sh["referents"], "T1 -> T4")
raw = bytes.fromhex(sh["contents"])
T.check_eq(int.from_bytes(raw[0:8], "little"), blocks["T3"], "T1's word 0 is T3")
T.check_eq(int.from_bytes(raw[8:16], "little"), blocks["T4"], "T1's word 1 is T4")
T.check_eq(hs_json("show", snap, hex(blocks["T1"]), "--contents")["contents"], None,
           "no contents without capture --contents")
sp = hs_json("show", snap, hex(blocks["P"]))
T.check(any(r["kind"] == "global" and r["pointer"] == "interior" and "g_interior" in (r["source"] or "")
            for r in sp["roots"]), "P's root is g_interior, interior")
txt = T.heapsnap("show", snap_c, hex(blocks["T1"]), "--contents")
T.check(txt.returncode == 0 and "|" in txt.stdout, "the hex/ASCII dump")

# ---- histogram by size: every in-use chunk once
hi = hs_json("histogram", snap, "--by", "size")
T.check_eq(sum(x["count"] for x in hi["rows"]), in_use, "histogram covers every chunk")

# ---- --sort on the retention commands: the order asked for, and a bad key is exit 2
def keys_of(rows, k):
    return [r[k] for r in rows]
hc = hs_json("histogram", snap, "--by", "size", "--sort", "count")["rows"]
T.check(len(hc) >= 2 and keys_of(hc, "count") == sorted(keys_of(hc, "count"), reverse=True),
        "histogram --sort count: counts non-increasing")
T.check_eq(sorted(map(str, keys_of(hc, "count"))), sorted(map(str, keys_of(hi["rows"], "count"))),
           "histogram --sort count: the same rows")
hb = hs_json("histogram", snap, "--by", "size")["rows"]
T.check(keys_of(hb, "bytes") == sorted(keys_of(hb, "bytes"), reverse=True), "histogram: bytes by default")
# fx_graph: twenty 80-byte chunks and one 4112-byte buffer: the two orders differ
T.check(hc[0]["size"] != hb[0]["size"], "histogram: --sort count and --sort bytes differ here")
top_sh = [c["shallow_bytes"] for c in hs_json("dominators", snap, "--sort", "shallow", "--limit", "50")["nodes"]]
T.check(len(top_sh) >= 2 and top_sh == sorted(top_sh, reverse=True), "dominators --sort shallow: %s" % top_sh[:10])
top_ad = [int(c["address"], 16) for c in hs_json("dominators", snap, "--sort", "address", "--limit", "50")["nodes"]]
T.check(len(top_ad) >= 2 and top_ad == sorted(top_ad), "dominators --sort address: increasing")
for cmd in (["histogram", snap, "--by", "size"], ["leaks", snap], ["dominators", snap],
            ["retained", snap, "--by", "site"]):
    r = T.heapsnap(*(cmd + ["--sort", "bogus"]))
    T.check(r.returncode == 2 and "--sort" in r.stderr and len(r.stderr.strip().splitlines()) == 1,
            "%s --sort bogus: exit 2, one line (%d, %r)" % (cmd[0], r.returncode, r.stderr))

# ---- C++ classes: histogram and exact retained size per class (fx_graph_cxx)
cxx = T.capture_graph_cxx(d)
if cxx:
    xsnap, want = cxx
    hx = hs_json("histogram", xsnap, "--by", "type")
    got = {r["type"]: r["count"] for r in hx["rows"] if r.get("type")}
    T.check_eq(got, want, "objects per class")
    rx = hs_json("retained", xsnap, "--by", "type", "--limit", "0")
    T.check_eq(rx["groups_total"], len(want), "one group per class")
    for g in rx["groups"]:
        # objects point at nothing but their vtables: a class retains exactly its objects
        T.check_eq((g["retained_count"], g["retained_bytes"]), (g["count"], g["shallow_bytes"]),
                   "class %s retains its own objects" % g["key"])

# ---- valgrind memcheck on the same program
if not shutil.which("valgrind"):
    print("valgrind not installed: comparison with memcheck skipped")
    raise SystemExit(0)
vtruth = os.path.join(d, "vtruth")
vlog = os.path.join(d, "vg.log")
vp = T.spawn(["valgrind", "--leak-check=full", "--show-leak-kinds=all",
              "--leak-check-heuristics=none", "--log-file=" + vlog, FX, vtruth], timeout=120)
T.stop(vp, timeout=120)
log = open(vlog).read()
rec = re.compile(r"==\d+== ([\d,]+) (?:\(([\d,]+) direct, ([\d,]+) indirect\) )?bytes in "
                 r"([\d,]+) blocks are (definitely lost|indirectly lost|possibly lost|still "
                 r"reachable) in loss record [\d,]+ of [\d,]+\n((?:==\d+==    (?:at|by) .*\n)*)")
num = lambda s: int(s.replace(",", "")) if s else 0
records = [(m.group(5), num(m.group(4)), num(m.group(2)) or num(m.group(1)), num(m.group(3)),
            m.group(6)) for m in rec.finditer(log)]
T.check(records, "memcheck printed loss records")
src = open(os.path.join(T.SOURCE, "tests", "fixtures", "fx_graph.c")).read().splitlines()
# P's mk() is on the line before the (code, not comment) assignment to g_interior
p_line = next((i for i, l in enumerate(src) if l.strip().startswith("g_interior =")), None)
by_kind = {}
for kind, nblocks, direct, indirect, stack in records:
    if "make_leak" in stack:
        key = "K"
    elif p_line is not None and "fx_graph.c:%d)" % p_line in stack:
        key = "P"
    else:
        continue
    c = by_kind.setdefault((key, kind), [0, 0, 0])
    c[0] += nblocks
    c[1] += direct
    c[2] += indirect
# heapsnap: K0 definitely lost holding 2 indirectly lost blocks; P possibly lost
T.check_eq(by_kind.get(("K", "definitely lost")), [1, 64, 128],
           "memcheck: K0 definitely lost, 64 direct + 128 indirect bytes")
T.check_eq(by_kind.get(("K", "indirectly lost"), [0, 0, 0])[:2], [2, 128],
           "memcheck: K1, K2 indirectly lost")
T.check_eq(lk["definitely_lost"]["count"], by_kind[("K", "definitely lost")][0],
           "definitely lost blocks: heapsnap = memcheck")
T.check_eq(lk["indirectly_lost"]["count"], by_kind[("K", "indirectly lost")][0],
           "indirectly lost blocks: heapsnap = memcheck")
T.check_eq(64 * root["blocks"], by_kind[("K", "definitely lost")][1] +
           by_kind[("K", "definitely lost")][2], "requested bytes held by the leak root")
if p_line is not None:
    T.check_eq(by_kind.get(("P", "possibly lost")), [1, 64, 0], "memcheck: P possibly lost")
    T.check_eq(lk["possibly_lost"]["count"], 1, "possibly lost blocks: heapsnap = memcheck")
print("ok: leaks, dominators, path, retained, histogram; memcheck agrees on K0..K2 and P")
