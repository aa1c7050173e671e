"""test_libs.py -- `heapsnap libs` against /proc/PID/smaps of the idle target.

fx_grow sits idle, blocked on stdin. /proc/PID/smaps is read right before and right
after the capture; for every module figure that did not move between the two reads
(PSS of shared libraries moves when other processes map or unmap them), the libs
figure must equal the smaps sum exactly, to the kB:
  * per module: RSS, PSS, PRIVATE (Private_Clean + Private_Dirty) over its VMAs (those
    with the module's path, plus the anonymous rw-p VMA right after its last one: bss);
  * per module, the text segment (its r-xp VMAs);
  * except PSS of a file heapsnap itself maps (libc, ld.so): while heapsnap reads the
    target's smaps it is one more sharer, so that PSS is lower at the capture; it must be
    at most the before/after figure;
  * modules + not attributed = all mappings = the smaps sum; VmRSS as /proc/PID/status said.
Then the same fixture under `heapsnap run`: the heap charged to fx_grow covers its three
known sites (100 x 1000 + 10 x 500 + 40 x 3000 bytes requested, 150 chunks) plus at most
its stdio buffer; no heap is charged to libc; the untracked run says heap null.
"""
import json
import os
import subprocess

import hstest as T

T.require_ptrace()
d = T.tmpdir()
EXE = T.fixture("fx_grow")


def smaps(pid):
    vmas, cur = [], None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            w = line.split()
            if "-" in w[0] and not w[0].endswith(":"):
                a, b = (int(x, 16) for x in w[0].split("-"))
                cur = {"start": a, "end": b, "perms": w[1],
                       "path": " ".join(w[5:]) if len(w) > 5 else None}
                vmas.append(cur)
            elif w[0].endswith(":") and len(w) >= 2 and w[1].isdigit():
                cur[w[0][:-1]] = int(w[1])
    return vmas


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def module_vmas(vmas, path):
    idx = [i for i, v in enumerate(vmas) if v["path"] == path]
    out = [vmas[i] for i in idx]
    if idx:
        nxt = idx[-1] + 1
        last = vmas[idx[-1]]
        if (nxt < len(vmas) and vmas[nxt]["path"] is None and vmas[nxt]["perms"] == "rw-p"
                and vmas[nxt]["start"] == last["end"] and last["perms"] == "rw-p"):
            out.append(vmas[nxt])
    return out


def figs(vl):
    return {"rss_kb": sum(v["Rss"] for v in vl), "pss_kb": sum(v["Pss"] for v in vl),
            "private_kb": sum(v["Private_Clean"] + v["Private_Dirty"] for v in vl)}


def libs_json(path):
    r = T.heapsnap("libs", path, "--json")
    T.check(r.returncode == 0, "libs failed: " + r.stderr)
    return json.loads(r.stdout)


def start(argv):
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    T._children.append(p)
    line = p.stdout.readline()
    T.check("ready" in line, "fixture not ready: %r" % line)
    return p


# ---------------------------------------------------------------- untracked: smaps
p = start([EXE])
# a first capture faults in the libc pages the freeze makes the target run (its read()
# is interrupted and restarted), so that the measured capture changes nothing
T.capture(p.pid, os.path.join(d, "warm.hsnap"))
before = smaps(p.pid)
rss_before = status_kb(p.pid, "VmRSS")
out = os.path.join(d, "grow.hsnap")
T.capture(p.pid, out)
after = smaps(p.pid)
rss_after = status_kb(p.pid, "VmRSS")
L = libs_json(out)
heapsnap_maps = set()
probe = subprocess.Popen(["ldd", T.HEAPSNAP], stdout=subprocess.PIPE, text=True)
for line in probe.communicate()[0].splitlines():
    w = line.split()
    for x in w:
        if x.startswith("/"):
            heapsnap_maps.add(os.path.realpath(x))
            heapsnap_maps.add(x)
checked = moved = 0
names = set()
for m in L["modules"]:
    names.add(m["name"])
    vb, va = module_vmas(before, m["path"]), module_vmas(after, m["path"])
    T.check(vb, "module %s not in smaps" % m["path"])
    fb, fa = figs(vb), figs(va)
    for k in ("rss_kb", "pss_kb", "private_kb"):
        if k == "pss_kb" and m["path"] in heapsnap_maps:
            # heapsnap itself maps this file while it reads the target's smaps: one more
            # sharer, so the target's PSS is lower during the capture than before/after
            T.check(m["total"][k] <= max(fb[k], fa[k]), "%s pss %d above smaps %d"
                    % (m["name"], m["total"][k], max(fb[k], fa[k])))
            continue
        if fb[k] != fa[k]:
            moved += 1
            print("moved between the smaps reads: %s %s %d -> %d (libs %d)"
                  % (m["name"], k, fb[k], fa[k], m["total"][k]))
            T.check(min(fb[k], fa[k]) <= m["total"][k] <= max(fb[k], fa[k]),
                    "%s %s %d outside smaps %d..%d" % (m["name"], k, m["total"][k], fb[k], fa[k]))
            continue
        T.check_eq(m["total"][k], fb[k], "%s %s vs smaps" % (m["name"], k))
        checked += 1
    tb = figs([v for v in vb if v["perms"] == "r-xp"])
    ta = figs([v for v in va if v["perms"] == "r-xp"])
    if tb["rss_kb"] == ta["rss_kb"]:
        T.check_eq(m["segments"]["text"]["rss_kb"], tb["rss_kb"], "%s text rss" % m["name"])
    T.check_eq(m["heap"], None, "untracked: heap of %s" % m["name"])
T.check("fx_grow" in names and "libc.so.6" in names, "modules listed: %s" % sorted(names))
T.check(checked >= 6, "figures compared exactly: %d (moved: %d)" % (checked, moved))

tot = L["totals"]
for k in ("rss_kb", "pss_kb", "private_kb", "virt_kb", "swap_kb"):
    T.check_eq(tot["modules"][k] + tot["unattributed"][k], tot["all_mappings"][k], "totals add up: " + k)
sb = sum(v["Rss"] for v in before)
sa = sum(v["Rss"] for v in after)
if sb == sa:
    T.check_eq(tot["all_mappings"]["rss_kb"], sb, "all mappings RSS = smaps sum")
T.check_eq(tot["all_mappings"]["mappings"], len(before), "every VMA counted once")
if rss_before == rss_after:
    T.check_eq(tot["vm_rss_kb"], rss_before, "VmRSS")
kinds = {u["kind"] for u in L["unattributed"]}
T.check({"heap", "stack"} <= kinds, "unattributed kinds: %s" % sorted(kinds))

# the table shows the same totals
r = T.heapsnap("libs", out)
T.check(r.returncode == 0 and "n/a (target not tracked)" in r.stdout, "table says untracked")
T.check("= all mappings" in r.stdout and "top's SHR" in r.stdout, "table reconciles")
p.stdin.close()
T.check_eq(p.wait(10), 0, "fixture exit")

# ---------------------------------------------------------------- tracked: heap by module
p = start([T.HEAPSNAP, "run", "--", EXE])
out2 = os.path.join(d, "grow-tracked.hsnap")
T.capture(p.pid, out2)
L = libs_json(out2)
T.check(L["tracked"], "tracked run: tracked")
mods = {m["name"]: m for m in L["modules"]}
fx = mods["fx_grow"]["heap"]
want = 100 * 1000 + 10 * 500 + 40 * 3000
T.check(want <= fx["bytes"] <= want + 65536 and 150 <= fx["count"] <= 152,
        "heap charged to fx_grow: %r (want %d bytes in 150 chunks + stdio buffer)" % (fx, want))
T.check_eq(mods["libc.so.6"]["heap"]["bytes"], 0, "nothing charged to libc")
p.stdin.close()
p.wait(10)
print("ok: %d figures exact, %d moved between smaps reads; fx_grow heap %r" % (checked, moved, fx))
