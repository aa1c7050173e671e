"""test_diff.py -- `heapsnap diff` on fx_grow, which grows one known site between captures.

fx_grow (under `heapsnap run`) holds steady_site 100 x 1000 bytes, churn_site 10 x 500,
grow_site 40 x 3000, and (run with --list) a list: one head of 64 bytes (list_site) with 5 nodes of 200
bytes (node_site) hanging from it. Each line on its stdin adds 25 x 3000 at grow_site,
appends 30 nodes to the list and frees churn_site's blocks (the first time). Ground truth
for A (before the line) -> B (after):
  * --by site: grow_site is the top row with delta_bytes 75000 and delta_count 25 exactly;
    node_site +6000 / +30; steady_site is matched (status both) with delta 0; churn_site
    is gone, -5000, -10;
  * same process: 55 chunks born since A: 25 at grow_site, 30 at node_site. Retained
    growth, in chunk bytes (CHUNK(n) below: the tracking library's 16-byte header, glibc's
    8-byte size field, 16-byte alignment): each grow_site chunk retains itself, 25 *
    CHUNK(3000); the 30 new nodes form one chain retained once, 30 * CHUNK(200); the A
    object that gained most is the list head, CHUNK(64) + 5 * CHUNK(200) before and
    CHUNK(64) + 35 * CHUNK(200) after, alone (its 5 old nodes gained the same and are
    folded into it);
  * with B captured --no-graph: the born chunks still, and no retained growth, saying why;
  * --by type (a C program: every chunk by its size): the CHUNK(3000) row +25, the
    CHUNK(200) row +30, the CHUNK(500) row -10; every row agrees with `histogram --by
    type --json` of each file; C++ classes of fx_graph_cxx appear as new rows with the
    counts of its truth file;
  * --sort count / name / before reorder the rows (checked against the JSON figures); a bad
    key exits 2 naming the allowed keys; top --sort, top --csv and histogram --csv too;
  * --by module: fx_grow's heap delta is 75000 - 5000 + 6000 bytes, +45 chunks;
  * --by region: the JSON agrees with `regions --json` of both snapshots per kind;
  * across a restart (a second run of the fixture, other load addresses by ASLR): the
    site-level diff still matches every site: grow_site +75000 / +25 on top, steady_site
    delta 0 and status both, no build-id mismatch flagged, no object-level diff.
"""
import json
import os
import subprocess

import hstest as T

T.require_ptrace()
d = T.tmpdir()
EXE = T.fixture("fx_grow")


def start():
    p = subprocess.Popen([T.HEAPSNAP, "run", "--", EXE, "--list"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    T._children.append(p)
    line = p.stdout.readline()
    T.check("ready" in line, "fixture not ready: %r" % line)
    return p


def grow(p):
    p.stdin.write("more\n")
    p.stdin.flush()
    line = p.stdout.readline()
    T.check(line.startswith("grown"), "fixture did not grow: %r" % line)


def diff(a, b, *extra):
    r = T.heapsnap("diff", a, b, "--json", *extra)
    T.check(r.returncode == 0, "diff %s failed (%d): %s" % (extra, r.returncode, r.stderr))
    return json.loads(r.stdout)


def CHUNK(n):
    return max(32, (n + 16 + 8 + 15) & ~15)


def row_of(rows, func):
    for r in rows:
        if r["label"].startswith(func + " "):
            return r
    T.fail("no row for %s in %s" % (func, [r["label"] for r in rows]))


p = start()
a = os.path.join(d, "a.hsnap")
b = os.path.join(d, "b.hsnap")
T.capture(p.pid, a)
grow(p)
T.capture(p.pid, b)

D = diff(a, b, "--by", "site")
rows = D["diff"]["rows"]
top = rows[0]
T.check(top["label"].startswith("grow_site "), "top row is grow_site: %r" % top["label"])
T.check_eq((top["delta_bytes"], top["delta_count"]), (75000, 25), "grow_site delta")
T.check_eq((top["before_bytes"], top["after_bytes"]), (120000, 195000), "grow_site before/after")
T.check(top["frames"] and top["frames"][0]["function"] is not None, "rows carry frames")
st = row_of(rows, "steady_site")
T.check_eq((st["delta_bytes"], st["status"]), (0, "both"), "steady_site unchanged")
ch = row_of(rows, "churn_site")
T.check_eq((ch["delta_bytes"], ch["delta_count"], ch["status"]), (-5000, -10, "gone"), "churn_site gone")
T.check_eq([r["delta_bytes"] for r in rows], sorted((r["delta_bytes"] for r in rows), reverse=True),
           "sorted by growth")
nd = row_of(rows, "node_site")
T.check_eq((nd["delta_bytes"], nd["delta_count"], nd["status"]), (6000, 30, "both"), "node_site delta")

# ---- object level: born chunks and their retained growth, computed by hand
obj = D["objects"]
T.check_eq(obj["born_count"], 55, "chunks born since A")
T.check_eq(obj["born_bytes"], 25 * CHUNK(3000) + 30 * CHUNK(200), "born chunk bytes")
T.check(obj["retained_available"] and obj["retained_missing"] is None, "retained growth available")
born = {r["site"].split()[0]: r for r in obj["by_site"]}
T.check_eq(sorted(born), ["grow_site", "node_site"], "born sites")
T.check_eq((born["grow_site"]["count"], born["grow_site"]["bytes"], born["grow_site"]["retained_bytes"]),
           (25, 25 * CHUNK(3000), 25 * CHUNK(3000)), "grow_site born and retained")
T.check_eq((born["node_site"]["count"], born["node_site"]["bytes"], born["node_site"]["retained_bytes"]),
           (30, 30 * CHUNK(200), 30 * CHUNK(200)), "node_site born; the chain retained once")
T.check_eq(obj["born_retained_bytes"], 25 * CHUNK(3000) + 30 * CHUNK(200), "born retained total")
T.check_eq(obj["by_site"][0]["site"].split()[0], "grow_site", "born sites ranked by retained bytes")
g = obj["grown"]
T.check(g and g[0]["site"].startswith("list_site "), "the list head gained most: %r" % g[:3])
T.check_eq((g[0]["size"], g[0]["retained_before"], g[0]["retained_after"], g[0]["retained_delta"]),
           (CHUNK(64), CHUNK(64) + 5 * CHUNK(200), CHUNK(64) + 35 * CHUNK(200), 30 * CHUNK(200)),
           "list head retained growth")
T.check(all(x["retained_delta"] < g[0]["retained_delta"] for x in g[1:]),
        "nothing else gained as much (old nodes folded into the head): %r" % g[1:4])
con = T.db(b)
head = con.execute("SELECT c.addr FROM chunk c JOIN alloc a ON a.addr = c.addr WHERE c.state = 0"
                   " AND a.requested = 64 AND c.size = ?", (CHUNK(64),)).fetchall()
T.check_eq([hex(x[0]) for x in head], [g[0]["address"]], "the one 64-byte block is the list head")
txt = T.heapsnap("diff", a, b, "--by", "site").stdout
T.check("born since A, retaining" in txt and "objects of A whose retained size grew most" in txt,
        "table shows the retained growth")
T.check(any(l.startswith(g[0]["address"]) and "list_site" in l for l in txt.splitlines()),
        "table row of the list head")

# ---- B without the pointer graph: born chunks only, and why
nog = os.path.join(d, "b_nograph.hsnap")
T.capture(p.pid, nog, "--no-graph")
N = diff(a, nog, "--by", "site")["objects"]
T.check_eq(N["born_count"], 55, "no graph: born chunks still")
T.check(not N["retained_available"] and "b_nograph.hsnap" in N["retained_missing"]
        and "no pointer graph" in N["retained_missing"], "no graph: why: %r" % N["retained_missing"])
T.check(all(r["retained_bytes"] is None for r in N["by_site"]) and N["grown"] == [], "no graph: no figures")
txt = T.heapsnap("diff", a, nog, "--by", "site").stdout
T.check("retained growth: not available: %s has no pointer graph" % nog in txt, "no graph: table says why")

# ---- --by type: chunks by C++ class, else by size
Y = diff(a, b, "--by", "type")["diff"]
T.check_eq(Y["by"], "type", "by type")
ty = {r["key"]: r for r in Y["rows"]}
for n, dc in ((3000, 25), (200, 30), (500, -10)):
    r = ty["size %d" % CHUNK(n)]
    T.check_eq((r["delta_count"], r["delta_bytes"]), (dc, dc * CHUNK(n)), "type row size %d" % CHUNK(n))
    T.check_eq((r["type"], r["size"]), (None, CHUNK(n)), "size row fields")
T.check_eq(Y["rows"][0]["key"], "size %d" % CHUNK(3000), "by type: the grown size class on top")
T.check_eq([r["delta_bytes"] for r in Y["rows"]], sorted((r["delta_bytes"] for r in Y["rows"]), reverse=True),
           "by type sorted by growth")
for snapfile, side in ((a, "before"), (b, "after")):
    h = json.loads(T.heapsnap("histogram", snapfile, "--by", "type", "--json").stdout)["rows"]
    hist = {("size %d" % x["size"]) if x.get("type") is None else x["type"]: x for x in h}
    for k, r in ty.items():
        want = hist.get(k, {"count": 0, "bytes": 0})
        T.check_eq((r[side + "_count"], r[side + "_bytes"]), (want["count"], want["bytes"]),
                   "type %s %s agrees with histogram" % (k, side))
    T.check_eq(sum(1 for k in hist), sum(1 for r in Y["rows"] if r[side + "_count"]), "same groups " + side)
cxx = T.capture_graph_cxx(d)
if cxx:
    xsnap, want = cxx
    X = {r["key"]: r for r in diff(a, xsnap, "--by", "type")["diff"]["rows"]}
    for cls, n in want.items():
        T.check(cls in X, "class %s has a row" % cls)
        T.check_eq((X[cls]["before_count"], X[cls]["after_count"], X[cls]["status"]), (0, n, "new"),
                   "class %s new in B" % cls)
        T.check_eq((X[cls]["type"], X[cls]["size"]), (cls, None), "class row fields")
    tt = T.heapsnap("diff", a, xsnap, "--by", "type").stdout.splitlines()
    T.check(tt[0].startswith("TYPE "), "by type table header: %r" % tt[0])
else:
    print("note: no fx_graph_cxx (no C++ compiler): C++ classes not checked")

# ---- --sort with several keys, and a bad key
def labels_sorted(extra, field, reverse):
    R = diff(a, b, "--by", "site", "--sort", *extra)["diff"]["rows"]
    vals = [field(r) for r in R]
    T.check_eq(vals, sorted(vals, reverse=reverse), "--sort %s order" % extra[0])
    return R

R = labels_sorted(["count"], lambda r: r["delta_count"], True)
T.check(R[0]["label"].startswith("node_site "), "--sort count: node_site (+30) first")
R = labels_sorted(["name"], lambda r: r["label"], False)
T.check(R[0]["label"].startswith("churn_site "), "--sort name: churn_site first")
R = labels_sorted(["before"], lambda r: r["before_bytes"], True)
T.check(R[0]["label"].startswith("grow_site ") and R[1]["label"].startswith("steady_site "),
        "--sort before: grow_site 120000, then steady_site 100000")
bad = T.heapsnap("diff", a, b, "--by", "site", "--sort", "size")
T.check_eq(bad.returncode, 2, "bad --sort exits 2")
T.check_eq(bad.stderr, "heapsnap diff: invalid --sort 'size' (allowed: delta, count, before, after, name)\n",
           "bad --sort lists the keys")
tp = json.loads(T.heapsnap("top", b, "--sort", "count", "--json").stdout)
T.check_eq([r["count"] for r in tp], sorted((r["count"] for r in tp), reverse=True), "top --sort count")
T.check_eq(tp[0]["frames"][0]["function"], "steady_site", "top --sort count: steady_site (100) first")
tp = json.loads(T.heapsnap("top", b, "--sort", "name", "--by", "function", "--json").stdout)
T.check_eq([r["key"] for r in tp], sorted(r["key"] for r in tp), "top --sort name")
bad = T.heapsnap("top", b, "--sort", "delta")
T.check(bad.returncode == 2 and "allowed: bytes, count, name" in bad.stderr, "top bad --sort: %r" % bad.stderr)

# ---- --csv through the shared table printer
import csv as csvmod
tc = list(csvmod.DictReader(T.heapsnap("top", b, "--csv").stdout.splitlines()))
gs = [r for r in tc if r["site"] == "grow_site"]
T.check(len(gs) == 1 and gs[0]["bytes"] == "195000" and gs[0]["count"] == "65", "top --csv grow_site: %r" % gs)
T.check(not any(r["site"].startswith("total") for r in tc), "top --csv has no total row")
hc = list(csvmod.DictReader(T.heapsnap("histogram", b, "--csv").stdout.splitlines()))
hj = json.loads(T.heapsnap("histogram", b, "--json").stdout)["rows"]
T.check_eq([(r["type_or_size"], int(r["chunks"]), int(r["bytes"])) for r in hc],
           [(x.get("type") or "size %d" % x["size"], x["count"], x["bytes"]) for x in hj],
           "histogram --csv agrees with --json")
dc = list(csvmod.DictReader(T.heapsnap("diff", a, b, "--by", "type", "--csv").stdout.splitlines()))
T.check_eq([(r["key"], int(r["delta_count"])) for r in dc], [(r["key"], r["delta_count"]) for r in Y["rows"]],
           "diff --by type --csv agrees with --json")

M = diff(a, b, "--by", "module")["diff"]["rows"]
fx = [r for r in M if r["key"] == "fx_grow"][0]
T.check_eq((fx["delta_heap_bytes"], fx["delta_heap_count"]), (76000, 45), "fx_grow heap delta")

R = diff(a, b)["diff"]["rows"]
for snapfile, side in ((a, "before"), (b, "after")):
    regs = json.loads(T.heapsnap("regions", snapfile, "--json").stdout)["regions"]
    for r in R:
        want = sum(x["rss_kb"] or 0 for x in regs if x["kind"] == r["key"])
        T.check_eq(r[side + "_rss_kb"], want, "region %s %s rss" % (r["key"], side))

# the table agrees with the JSON on the top row
t = T.heapsnap("diff", a, b, "--by", "site").stdout.splitlines()
T.check(t[1].startswith("grow_site (fx_grow)") and "+25" in t[1], "table top row: %r" % t[1])

# ---------------------------------------------------------------- across a restart
p2 = start()
grow(p2)
c = os.path.join(d, "c.hsnap")
T.capture(p2.pid, c)
bases = []
for f in (a, c):
    con = T.db(f)
    bases.append(con.execute("SELECT load_base FROM module WHERE is_main = 1").fetchone()[0])
if bases[0] == bases[1]:
    print("note: the two runs got the same load address (ASLR off?)")
X = diff(a, c, "--by", "site")
T.check("objects" not in X, "no object-level diff across processes")
rows = X["diff"]["rows"]
T.check(rows[0]["label"].startswith("grow_site "), "restart: top row grow_site")
T.check_eq((rows[0]["delta_bytes"], rows[0]["delta_count"]), (75000, 25), "restart: grow_site delta")
st = row_of(rows, "steady_site")
T.check_eq((st["delta_bytes"], st["status"]), (0, "both"), "restart: steady_site matched")
T.check(not any(r["build_id_mismatch"] for r in rows), "restart: no build-id mismatch")
for q in (p, p2):
    q.stdin.close()
    q.wait(10)
print("ok: grow_site +75000/+25 on top, same process and across a restart (bases %s)"
      % [hex(x) for x in bases])
