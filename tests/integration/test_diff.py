"""test_diff.py -- `heapsnap diff` on fx_grow, which grows one known site between captures.

fx_grow (under `heapsnap run`) holds steady_site 100 x 1000 bytes, churn_site 10 x 500
and grow_site 40 x 3000; each line on its stdin frees churn_site's blocks (the first time)
and adds 25 x 3000 at grow_site. Ground truth for A (before the line) -> B (after):
  * --by site: grow_site is the top row with delta_bytes 75000 and delta_count 25 exactly;
    steady_site is matched (status both) with delta 0; churn_site is gone, -5000, -10;
  * same process: 25 chunks born since A, all at grow_site;
  * --by module: fx_grow's heap delta is 75000 - 5000 bytes, +15 chunks;
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
    p = subprocess.Popen([T.HEAPSNAP, "run", "--", EXE], stdin=subprocess.PIPE,
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
obj = D["objects"]
T.check_eq(obj["born_count"], 25, "chunks born since A")
T.check(len(obj["by_site"]) == 1 and obj["by_site"][0]["site"].startswith("grow_site "),
        "born chunks all at grow_site: %r" % obj["by_site"])

M = diff(a, b, "--by", "module")["diff"]["rows"]
fx = [r for r in M if r["key"] == "fx_grow"][0]
T.check_eq((fx["delta_heap_bytes"], fx["delta_heap_count"]), (70000, 15), "fx_grow heap delta")

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
