#!/usr/bin/env python3
"""test_analyze_cli.py -- `heapsnap summary` and `heapsnap regions` on snapshots made
here with python's sqlite3 from schema/schema.sql (no capture involved).

Checks: the JSON parses and its figures equal ones computed here from the rows
inserted (mallinfo with glibc's formulas, per arena, per thread, per region kind);
the text tables show the same figures; CSV equals JSON; hostile strings survive JSON
and never reach the terminal raw; every bad input (missing, text, plain SQLite,
foreign application_id, user_version 99, truncated) gives exactly one line on stderr
and exit code 2; usage errors give 2; a full stdout gives 1.

Usage: test_analyze_cli.py --build BUILD_DIR --source SRC_DIR  (python3 stdlib only)
"""
import argparse
import csv
import io
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--build", required=True)
ap.add_argument("--source", required=True)
A, _ = ap.parse_known_args()
HEAPSNAP = os.path.join(os.path.abspath(A.build), "heapsnap")
SCHEMA = os.path.join(os.path.abspath(A.source), "schema", "schema.sql")

failures = 0


def fail(msg):
    global failures
    failures += 1
    print("FAIL: " + msg)


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


def check_eq(a, b, what):
    if a != b:
        fail("%s: %r != %r" % (what, a, b))


def run(*args, stdout=subprocess.PIPE):
    p = subprocess.run([HEAPSNAP] + list(args), stdout=stdout, stderr=subprocess.PIPE, timeout=120)
    out = p.stdout.decode("utf-8", "replace") if p.stdout is not None else ""
    return p.returncode, out, p.stderr.decode("utf-8", "replace")


def human(n):
    """out_size()'s format, for comparing text output with JSON figures"""
    if n < 1024:
        return "%d B" % n
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    v, u = float(n), 0
    while v >= 1024.0 and u < 6:
        v /= 1024.0
        u += 1
    if v >= 1023.95 and u < 6:
        v /= 1024.0
        u += 1
    return "%.1f %s" % (v, units[u])


# ------------------------------------------------------------------ a synthetic snapshot
COMM = '<script>"x"</script>'
ARGV = ["demo", '--name="q"', "two\nlines", "esc\x1b[31mred", "", "\u00fcnic\u00f6de"]
PID = 4242
MAIN_ARENA = 0x7F0000001000
ARENA2 = 0x7E0000000020


def make_snapshot(path, heap=True, seed=1):
    rnd = random.Random(seed)
    db = sqlite3.connect(path)
    db.executescript(open(SCHEMA).read())
    db.execute(
        "INSERT INTO process VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (PID, 1, 1000, 1000, "/usr/bin/demo", json.dumps(ARGV), COMM, 5555, "6.1.0-test",
         "2.36" if heap else None, 4096, 1714566896123456, 204800, 51200, 40000, 9000, 2200,
         0, 210000, 52000, 150000, 132))
    db.execute("INSERT INTO capture VALUES (?,?,?,?,?,?,?,?,?,?,?,?,0)",
               ("0.1.0", 1234, 100, 300, 800, 10485760, 1, 2, 0, 1 if heap else 0,
                None if heap else "no glibc heap found: the target does not use glibc malloc",
                0 if heap else None))
    db.execute("INSERT INTO module VALUES (1,'/usr/bin/demo','ab12',?,?,?,1,1)",
               (0x555500000000, 0x555500000000, 0x555500005000))
    db.execute("INSERT INTO module VALUES (2,'/usr/lib/x86_64-linux-gnu/libc.so.6',NULL,?,?,?,0,0)",
               (0x7F0000100000, 0x7F0000100000, 0x7F0000300000))
    # mappings: (start, end, perms, path, kind, module_id, tid, size, rss, pss, sc, sd, pc, pd, swap)
    maps = [
        (0x555500000000, 0x555500002000, "r-xp", "/usr/bin/demo", 5, 1, None, 8, 8, 8, 0, 0, 8, 0, 0),
        (0x555500002000, 0x555500005000, "rw-p", "/usr/bin/demo", 7, 1, None, 12, 12, 12, 0, 0, 4, 8, 0),
        (0x555500100000, 0x555500200000, "rw-p", "[heap]", 1, None, None, 1024, 900, 900, 0, 0, 0, 900, 24),
        (0x7E0000000000, 0x7E0000021000, "rw-p", None, 2, None, None, 132, 100, 100, 0, 0, 0, 100, 0),
        (0x7E0000021000, 0x7E0004000000, "---p", None, 2, None, None, 65404, 0, 0, 0, 0, 0, 0, 0),
        (0x7F0000100000, 0x7F0000200000, "r-xp", "/usr/lib/x86_64-linux-gnu/libc.so.6", 5, 2, None,
         1024, 800, 40, 800, 0, 0, 0, 0),
        (0x7F0000500000, 0x7F0000D00000, "rw-p", None, 4, None, PID + 1, 8192, 16, 16, 0, 0, 0, 16, 0),
        (0x7FFC00000000, 0x7FFC00021000, "rw-p", "[stack]", 4, None, PID, 132, 20, 20, 0, 0, 0, 20, 4),
        (0x7FFC00100000, 0x7FFC00102000, "r-xp", "[vdso]", 9, None, None, 8, 4, 0, 4, 0, 0, 0, 0),
        (0x7F0000E00000, 0x7F0000E10000, "rw-s", "/dev/shm/x\nevil", 12, None, None, 64, 64, 32, 64, 0, 0, 0, None),
    ]
    for i, m in enumerate(maps, 1):
        (start, end, perms, path_, kind, mod, tid, size, rss, pss, sc, sd, pcl, pd, swap) = m
        db.execute("INSERT INTO mapping (id, start, end, perms, offset, dev, inode, path, kind, module_id,"
                   " tid, size_kb, rss_kb, pss_kb, shared_clean_kb, shared_dirty_kb, private_clean_kb,"
                   " private_dirty_kb, swap_kb) VALUES (?,?,?,?,0,'00:00',NULL,?,?,?,?,?,?,?,?,?,?,?,?)",
                   (i, start, end, perms, path_, kind, mod, tid, size, rss, pss, sc, sd, pcl, pd, swap))
    db.execute("INSERT INTO frame VALUES (1,1,4660,'main',16,'demo.c',42,0)")
    db.execute("INSERT INTO callsite VALUES (1,NULL,1,0)")
    chunks = []
    if heap:
        db.execute("INSERT INTO arena (id, addr, is_main, top, system_mem, max_system_mem, mutex, flags,"
                   " attached_threads, top_size, consistent, note) VALUES"
                   " (1,?,1,NULL,?,?,0,0,1,NULL,1,NULL)", (MAIN_ARENA, 0x100000, 0x100000))
        db.execute("INSERT INTO arena (id, addr, is_main, top, system_mem, max_system_mem, mutex, flags,"
                   " attached_threads, top_size, consistent, note) VALUES"
                   " (2,?,0,NULL,?,?,0,2,1,NULL,0,'fastbin 3: \"bad\"\npointer')", (ARENA2, 0x21000, 0x21000))
        db.execute("INSERT INTO heap VALUES (2, ?, ?, ?)", (0x7E0000000000, 0x21000, 0x21000))

        def tile(base, total, arena_id, first_internal):
            a, end = base, base + total
            out = [(a, first_internal, 5, arena_id, 1 if arena_id == 1 else 2)]
            a += first_internal
            while end - a > 0x3000:
                size = rnd.choice([32, 48, 64, 96, 128, 256, 1040, 4096])
                state = rnd.choice([0, 0, 0, 0, 1, 2, 3])
                out.append((a, size, state, arena_id, None))
                a += size
            out.append((a, end - a, 4, arena_id, None))
            return out
        chunks += tile(0x555500100000, 0x100000, 1, 0x290)
        chunks += tile(0x7E0000000000, 0x21000, 2, 0x8E0)
        chunks.append((0x7F0000600000, 0x1000, 5, None, 4))
        chunks.append((0x7F0000601000, 0x40000, 0, None, None))
        chunks.append((0x7F0000700000, 0x22000, 0, None, None))
        db.executemany("INSERT INTO chunk (addr, size, state, arena_id, internal) VALUES (?,?,?,?,?)", chunks)
        db.execute("INSERT INTO malloc_params VALUES (?,?,72,2,?,131072,131072,0,64,7)",
                   (MAIN_ARENA, 0x7F0000002000, 0x63000))
    else:
        db.execute("INSERT INTO malloc_params DEFAULT VALUES")
    db.execute("INSERT INTO thread VALUES (?,?,'S',0,1,2,3,?,?,1,NULL,?,?,1,NULL)",
               (PID, "demo", 0x7FFC00000000, 0x7FFC00021000, 0x555500100010 if heap else None,
                1 if heap else None))
    db.execute("INSERT INTO thread VALUES (?,?,'R',1,NULL,NULL,NULL,NULL,NULL,5,NULL,NULL,?,NULL,'unwind error -3')",
               (PID + 1, "work\x1b]0;er", 2 if heap else None))
    if heap:
        db.execute("INSERT INTO thread_tcache VALUES (?, 32, 3, 96)", (PID,))
        db.execute("INSERT INTO thread_tcache VALUES (?, 64, 1, 64)", (PID,))
    db.commit()
    db.close()
    return chunks, maps


def mallinfo_of(chunks):
    """glibc's mallinfo2() formulas over the chunk rows (an independent reference)"""
    mi = dict(arena=0, ordblks=0, smblks=0, hblks=0, hblkhd=0, uordblks=0, fordblks=0, fsmblks=0, keepcost=0)
    for addr, size, state, arena, internal in chunks:
        if arena is None:
            mi["hblkhd"] += size
            mi["hblks"] += state == 0
            continue
        mi["arena"] += size
        mi["ordblks"] += state in (1, 4)
        mi["smblks"] += state == 3
        mi["fsmblks"] += size if state == 3 else 0
        if state in (1, 3, 4):
            mi["fordblks"] += size
        else:
            mi["uordblks"] += size
        if state == 4 and arena == 1:
            mi["keepcost"] += size
    return mi


# ------------------------------------------------------------------ the tests
def test_summary(path, chunks, maps):
    rc, out, err = run("summary", path, "--json")
    check_eq(rc, 0, "summary --json exit code (stderr %r)" % err)
    try:
        j = json.loads(out)
    except ValueError as e:
        fail("summary --json is not JSON: %s" % e)
        return
    p = j["process"]
    check_eq(p["pid"], PID, "pid")
    check_eq(p["comm"], COMM, "comm round trip")
    check_eq(p["cmdline"], ARGV, "cmdline round trip")
    check_eq(p["capture_time"], "2024-05-01T12:34:56.123456Z", "capture time")
    check_eq(p["glibc_version"], "2.36", "glibc")
    check("<script>" not in out, "JSON output holds a raw <script>")
    m = j["memory"]
    check_eq((m["virt_kb"], m["res_kb"], m["shr_kb"]), (204800, 51200, 9000 + 2200), "VIRT/RES/SHR")
    check_eq(j["capture"]["pause_us"], 1234, "capture.pause_us")
    check_eq(j["capture"]["attempts"], 1, "attempts")
    check_eq(j["capture"]["threads_ran_out"], 2, "threads_ran_out")

    want = mallinfo_of(chunks)
    check_eq(j["mallinfo"], want, "mallinfo vs the reference formulas")
    db = sqlite3.connect(path)
    view = dict(zip(want.keys(), db.execute("SELECT %s FROM mallinfo" % ",".join(want.keys())).fetchone()))
    check_eq(j["mallinfo"], view, "mallinfo vs the file's view")
    check_eq(want["arena"], 0x100000 + 0x21000, "arena chunks tile system_mem")

    arenas = {a["id"]: a for a in j["heap"]["arenas"]}
    check_eq(sorted(arenas), [1, 2], "arena ids")
    for aid in (1, 2):
        for state, name in [(0, "in_use"), (1, "free"), (2, "tcache"), (3, "fastbin"), (4, "top"), (5, "internal")]:
            sel = [c for c in chunks if c[3] == aid and c[2] == state]
            check_eq((arenas[aid][name + "_count"], arenas[aid][name + "_bytes"]),
                     (len(sel), sum(c[1] for c in sel)), "arena %d %s" % (aid, name))
    check_eq(arenas[2]["consistent"], False, "arena 2 consistency")
    check_eq(arenas[2]["note"], 'fastbin 3: "bad"\npointer', "arena note")
    mm = [c for c in chunks if c[3] is None and c[2] == 0]
    check_eq((j["heap"]["mmapped"]["in_use_count"], j["heap"]["mmapped"]["in_use_bytes"]),
             (len(mm), sum(c[1] for c in mm)), "mmapped chunks")
    in_use = sorted([c for c in chunks if c[2] == 0], key=lambda c: (-c[1], c[0]))[:10]
    check_eq([(c["addr"], c["size"]) for c in j["heap"]["largest_in_use"]],
             [(c[0], c[1]) for c in in_use], "largest in-use chunks")
    classes = {}
    for c in chunks:
        if c[2] == 0:
            n, b = classes.get(c[1], (0, 0))
            classes[c[1]] = (n + 1, b + c[1])
    top = sorted(classes.items(), key=lambda kv: (-kv[1][1], kv[0]))[:10]
    check_eq([(c["size"], c["count"], c["bytes"]) for c in j["heap"]["size_classes"]],
             [(s, n, b) for s, (n, b) in top], "size classes")

    th = {t["tid"]: t for t in j["threads"]}
    check_eq((th[PID]["tcache_count"], th[PID]["tcache_bytes"]), (4, 160), "thread tcache holdings")
    check_eq((th[PID]["stack_kb"], th[PID]["stack_rss_kb"]), (132, 20), "main thread stack")
    check_eq((th[PID + 1]["stack_kb"], th[PID + 1]["stack_rss_kb"]), (8192, 16), "worker stack")
    check_eq(th[PID + 1]["name"], "work\x1b]0;er", "thread name round trip")
    check_eq(th[PID + 1]["safepoint"], "unknown", "safepoint name")
    check_eq(th[PID]["arena_id"], 1, "thread arena")

    kinds = {k["kind"]: k for k in j["regions_by_kind"]}
    check_eq(kinds["stack"]["count"], 2, "stack regions")
    check_eq(kinds["stack"]["size_kb"], 8192 + 132, "stack size")
    check_eq(kinds["arena_heap"]["size_kb"], 132 + 65404, "arena heap size")

    # the text shows the same figures
    rc, text, err = run("summary", path)
    check_eq(rc, 0, "summary exit code (stderr %r)" % err)
    check_eq(err, "", "summary stderr")
    for s in ["VIRT %s" % human(204800 * 1024), "RES %s" % human(51200 * 1024),
              "SHR %s" % human(11200 * 1024), "paused 1234 us", "2024-05-01T12:34:56Z",
              "ordblks %d" % want["ordblks"], "hblks %d" % want["hblks"],
              "keepcost %s" % human(want["keepcost"]), human(arenas[1]["in_use_bytes"]),
              "%d" % arenas[1]["in_use_count"], "%#x" % in_use[0][0]]:
        check(s in text, "summary text lacks %r" % s)
    check("\x1b" not in text, "summary text holds a raw escape character")
    check("work\\x1b]0;er" in text, "thread name shown escaped")
    for line in text.splitlines():
        check(line == line.rstrip(), "trailing blanks in %r" % line)


def test_regions(path, maps):
    rc, out, err = run("regions", path, "--json")
    check_eq(rc, 0, "regions --json exit code (stderr %r)" % err)
    j = json.loads(out)
    rows = j["regions"]
    check_eq(len(rows), len(maps), "region count")
    check_eq([r["start"] for r in rows], sorted(m[0] for m in maps), "default order is by address")
    check_eq(j["total"]["count"], len(maps), "total count")
    check_eq(j["total"]["rss_kb"], sum(m[8] for m in maps), "total rss")
    check_eq(j["total"]["swap_kb"], sum(m[14] or 0 for m in maps), "total swap")
    by_start = {r["start"]: r for r in rows}
    for m in maps:
        r = by_start[m[0]]
        check_eq((r["end"], r["perms"], r["size_kb"], r["rss_kb"], r["pss_kb"]), (m[1], m[2], m[7], m[8], m[9]),
                 "region %#x" % m[0])
        check_eq(r["private_kb"], m[12] + m[13], "private of %#x" % m[0])
        check_eq(r["shared_kb"], m[10] + m[11], "shared of %#x" % m[0])
        check_eq(r["swap_kb"], m[14], "swap of %#x" % m[0])
        check_eq(r["path"], m[3], "path of %#x" % m[0])
    check_eq(by_start[0x7F0000100000]["module"], "/usr/lib/x86_64-linux-gnu/libc.so.6", "module owner")
    check_eq(by_start[0x7FFC00000000]["tid"], PID, "stack owner")
    check_eq(by_start[0x7E0000000000]["arena_id"], 2, "arena heap owner")

    # text table: same rows in the same order, same human sizes
    rc, text, err = run("regions", path)
    check_eq(rc, 0, "regions exit code")
    lines = text.splitlines()
    check(lines[0].startswith("START-END"), "regions header")
    body = lines[1:-1]
    check_eq(len(body), len(rows), "table rows")
    for line, r in zip(body, rows):
        check(line.startswith("%012x-%012x" % (r["start"], r["end"])), "table row %r" % line)
        check(human(r["rss_kb"] * 1024) in line, "rss of %r" % line)
    check(lines[-1].startswith("total: %d mappings" % len(rows)), "total line %r" % lines[-1])
    check(human(j["total"]["size_kb"] * 1024) in lines[-1], "total size in the table")
    check("\x1b" not in text and "evil" in text, "path escaped in the table")
    check("/dev/shm/x\\x0aevil" in text, "newline in a path shown as \\x0a")

    # sorting and limits
    rc, out, _ = run("regions", path, "--json", "--sort", "rss", "--limit", "3")
    j3 = json.loads(out)
    check_eq([r["rss_kb"] for r in j3["regions"]], sorted((m[8] for m in maps), reverse=True)[:3], "--sort rss")
    check_eq((j3["total"]["count"], j3["total"]["shown"]), (len(maps), 3), "--limit totals")
    for key, col in [("size", "size_kb"), ("pss", "pss_kb"), ("private", "private_kb"), ("shared", "shared_kb")]:
        rc, out, _ = run("regions", path, "--json", "--sort=" + key)
        vals = [r[col] for r in json.loads(out)["regions"]]
        check_eq(vals, sorted(vals, reverse=True), "--sort " + key)

    # CSV equals JSON
    rc, out, _ = run("regions", path, "--csv")
    check_eq(rc, 0, "regions --csv exit code")
    recs = list(csv.DictReader(io.StringIO(out)))
    check_eq(len(recs), len(rows), "csv rows")
    check_eq(len(out.splitlines()), len(rows) + 1, "one csv record per line")
    for c, r in zip(recs, rows):
        check_eq(int(c["start"], 16), r["start"], "csv start")
        check_eq(c["kind"], r["kind"], "csv kind")
        check_eq(int(c["rss_kb"]), r["rss_kb"], "csv rss")
        check_eq(c["swap_kb"], "" if r["swap_kb"] is None else str(r["swap_kb"]), "csv swap (NULL empty)")


def test_no_heap(tmp):
    path = os.path.join(tmp, "noheap.hsnap")
    make_snapshot(path, heap=False)
    rc, text, err = run("summary", path)
    check_eq(rc, 0, "summary of a heapless snapshot (stderr %r)" % err)
    check("no glibc heap found: the target does not use glibc malloc" in text, "no-heap line: %r" % text)
    rc, out, _ = run("summary", path, "--json")
    j = json.loads(out)
    check_eq(j["heap"]["found"], False, "heap.found")
    check_eq(j["heap"]["note"], "no glibc heap found: the target does not use glibc malloc", "heap.note")
    check_eq(j["mallinfo"]["arena"], 0, "empty mallinfo")


def one_line_2(args, what):
    rc, out, err = run(*args)
    check_eq(rc, 2, "%s: exit code" % what)
    check_eq(len(err.splitlines()), 1, "%s: stderr lines (%r)" % (what, err))
    check(err.startswith("heapsnap "), "%s: message %r" % (what, err))
    return err


def test_bad_input(tmp, good):
    bad = {}
    bad["missing"] = os.path.join(tmp, "missing.hsnap")
    bad["text"] = os.path.join(tmp, "text.txt")
    open(bad["text"], "w").write("just text\n" * 100)
    bad["plain sqlite"] = os.path.join(tmp, "plain.db")
    db = sqlite3.connect(bad["plain sqlite"])
    db.execute("CREATE TABLE t(x)")
    db.commit()
    db.close()
    for name, pragma in [("foreign application_id", "PRAGMA application_id = 305419896"),
                         ("user_version 99", "PRAGMA user_version = 99")]:
        p = os.path.join(tmp, name.replace(" ", "_") + ".hsnap")
        shutil.copy(good, p)
        db = sqlite3.connect(p)
        db.execute(pragma)
        db.commit()
        db.close()
        bad[name] = p
    data = open(good, "rb").read()
    bad["truncated"] = os.path.join(tmp, "half.hsnap")
    open(bad["truncated"], "wb").write(data[: len(data) // 2])
    expect = {"missing": "No such file", "text": "not a heapsnap snapshot",
              "plain sqlite": "not a heapsnap snapshot (application_id 0x00000000)",
              "foreign application_id": "not a heapsnap snapshot (application_id 0x12345678)",
              "user_version 99": "written by a newer heapsnap (format 99, this build reads up to 1)",
              "truncated": "truncated"}
    for name, p in bad.items():
        for cmd in (["summary", p], ["summary", p, "--json"], ["regions", p], ["regions", p, "--csv"]):
            err = one_line_2(cmd, "%s (%s)" % (name, " ".join(cmd[:1] + cmd[2:])))
            check(expect[name] in err, "%s: %r lacks %r" % (name, err, expect[name]))
            check(("'%s'" % p) in err, "%s: the message names the file: %r" % (name, err))

    # unreadable: a 0600 file of another user (needs root to switch to nobody)
    if os.geteuid() == 0:
        p = os.path.join(tmp, "private.hsnap")
        shutil.copy(good, p)
        os.chmod(p, 0o600)
        os.chmod(tmp, 0o755)
        try:
            r = subprocess.run([HEAPSNAP, "summary", p], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=lambda: os.setuid(65534), timeout=60)
        except OSError:
            r = None  # the build tree is not reachable for nobody: nothing to learn here
        if r is not None:
            err = r.stderr.decode("utf-8", "replace")
            check_eq(r.returncode, 2, "unreadable: exit code")
            check_eq(len(err.splitlines()), 1, "unreadable: one line (%r)" % err)
            check("Permission denied" in err, "unreadable: message %r" % err)

    # usage errors
    for args in (["frobnicate"], ["--frob"], ["summary"], ["summary", good, "--frob"], ["regions", good, "--sort", "x"],
                 ["regions", good, "--limit", "-1"], ["regions", good, "--json", "--csv"], ["summary", good, good],
                 ["help", "frobnicate"]):
        rc, _, err = run(*args)
        check_eq(rc, 2, "usage error %r" % (args,))
        check(err.strip() != "", "usage error %r says something" % (args,))
    rc, _, _ = run()
    check_eq(rc, 2, "no arguments")
    for args in (["help"], ["--help"], ["help", "summary"], ["help", "regions"], ["summary", "-h"], ["regions", "--help"],
                 ["--version"]):
        rc, out, err = run(*args)
        check_eq(rc, 0, "%r exit code" % (args,))
        check(out.strip() != "" and err == "", "%r prints to stdout only" % (args,))
    rc, out, _ = run("help", "regions")
    check("--sort" in out and "example" in out, "regions help has options and examples")

    # a write error on stdout is an error
    with open("/dev/full", "w") as full:
        rc, _, err = run("summary", good, stdout=full)
    check_eq(rc, 1, "stdout full: exit code")
    check("cannot write to standard output" in err, "stdout full: message %r" % err)


def test_sql_threads_libs_diff_report(tmp, path, maps):
    """sql, threads, libs, diff, report on the synthetic snapshot: JSON parses, agrees
    with the rows inserted above and with the table; help and -h of every command."""
    q = "SELECT kind, count(*) AS n, sum(rss_kb) AS rss FROM mapping GROUP BY kind ORDER BY kind"
    rc, out, err = run("sql", path, q, "--json")
    check_eq(rc, 0, "sql --json exit")
    js = json.loads(out)
    want = {}
    for m in maps:
        k = want.setdefault(m[4], [0, 0])
        k[0] += 1
        k[1] += m[8]
    check_eq(js["columns"], ["kind", "n", "rss"], "sql columns")
    check_eq({r[0]: r[1:] for r in js["rows"]}, want, "sql rows")
    rc, out, err = run("sql", path, q)
    lines = out.splitlines()
    check_eq(lines[0].split(), ["kind", "n", "rss"], "sql table header")
    check_eq([[int(x) for x in l.split()] for l in lines[1:-1]], js["rows"], "sql table = JSON")
    rc, out, err = run("sql", path, q, "--csv")
    check_eq([[int(x) for x in r] for r in list(csv.reader(io.StringIO(out)))[1:]], js["rows"], "sql CSV = JSON")
    for bad in ("DELETE FROM chunk", "PRAGMA user_version = 7", "SELECT 1; SELECT 2", "SELEC"):
        rc, out, err = run("sql", path, bad)
        check(rc == 2 and len(err.splitlines()) == 1, "sql %r refused with one line, exit 2 (%d)" % (bad, rc))

    rc, out, err = run("threads", path, "--json")
    check_eq(rc, 0, "threads --json exit")
    th = {t["tid"]: t for t in json.loads(out)["threads"]}
    check_eq(sorted(th), [PID, PID + 1], "threads listed")
    check_eq(th[PID + 1]["name"], "work\x1b]0;er", "thread name raw in JSON")
    check_eq(th[PID + 1]["unwind_error"], "unwind error -3", "unwind error")
    f0 = th[PID]["frames"][0]
    check_eq((f0["function"], f0["func_offset"], f0["file"], f0["line"]), ("main", 16, "demo.c", 42), "frame")
    rc, out, err = run("threads", path)
    check("thread %d (demo)" % PID in out and "#0  main+0x10 (demo) at demo.c:42" in out, "threads table: " + out)
    check("\x1b" not in out, "no raw escape in the threads table")

    rc, out, err = run("libs", path, "--json")
    check_eq(rc, 0, "libs --json exit")
    L = json.loads(out)
    mods = {m["path"]: m for m in L["modules"]}
    for mid, mpath in ((1, "/usr/bin/demo"), (2, "/usr/lib/x86_64-linux-gnu/libc.so.6")):
        mm = [m for m in maps if m[5] == mid]
        check_eq(mods[mpath]["total"]["rss_kb"], sum(m[8] for m in mm), "libs rss " + mpath)
        check_eq(mods[mpath]["total"]["pss_kb"], sum(m[9] for m in mm), "libs pss " + mpath)
        check_eq(mods[mpath]["total"]["private_kb"], sum(m[12] + m[13] for m in mm), "libs private " + mpath)
        check_eq(mods[mpath]["heap"], None, "untracked heap")
    check_eq(mods["/usr/bin/demo"]["segments"]["data"]["rss_kb"], 12, "libs data segment")
    check_eq(L["totals"]["all_mappings"]["rss_kb"], sum(m[8] for m in maps), "libs all mappings")
    check_eq(L["totals"]["unattributed"]["rss_kb"], sum(m[8] for m in maps if m[5] is None), "libs unattributed")
    rc, out, err = run("libs", path)
    check(human(sum(m[8] for m in maps) * 1024) in out and "n/a (target not tracked)" in out, "libs table: " + out)

    rc, out, err = run("diff", path, path, "--json")
    check_eq(rc, 0, "diff --json exit")
    D = json.loads(out)
    check(all(r["delta_rss_kb"] == 0 for r in D["diff"]["rows"]), "diff of a file with itself is zero")
    check_eq({r["key"] for r in D["diff"]["rows"]}, {"heap", "arena_heap", "module_text", "module_data",
                                                       "stack", "vdso", "shm"}, "diff kinds")
    rc, out, err = run("diff", path, path, "--by", "module", "--json")
    check_eq(rc, 0, "diff --by module exit")
    check_eq(sorted(r["key"] for r in json.loads(out)["diff"]["rows"]), ["demo", "libc.so.6"], "diff modules")
    rc, out, err = run("diff", path, path, "--by", "site")
    check(rc == 1 and len(err.splitlines()) == 1, "diff --by site untracked: exit 1, one line")
    rc, out, err = run("diff", path, path, "--by", "colour")
    check_eq(rc, 2, "diff bad --by")

    html = os.path.join(tmp, "r.html")
    rc, out, err = run("report", path, "-o", html)
    check_eq(rc, 0, "report exit: " + err)
    src = open(html, encoding="utf-8").read()
    check(COMM not in src and "<script>\"x\"" not in src, "report escapes the comm")
    check_eq(os.stat(html).st_mode & 0o777, 0o600, "report mode")

    rc, out, err = run("help")
    for cmd in ("summary", "regions", "threads", "sql", "libs", "diff", "report"):
        check(("  " + cmd + " ") in out, "help lists " + cmd)
        rc, hout, err = run(cmd, "-h")
        check(rc == 0 and "usage: heapsnap " + cmd in hout and "example" in hout, cmd + " -h")
    check("exit status: 0 success, 1" in out, "help documents exit codes")


def main():
    if not os.path.exists(HEAPSNAP):
        print("FAIL: no heapsnap binary at " + HEAPSNAP)
        return 1
    tmp = tempfile.mkdtemp(prefix="hs-analyze-")
    try:
        good = os.path.join(tmp, "good.hsnap")
        chunks, maps = make_snapshot(good)
        test_summary(good, chunks, maps)
        test_regions(good, maps)
        test_no_heap(tmp)
        test_bad_input(tmp, good)
        test_sql_threads_libs_diff_report(tmp, good, maps)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d failure(s)" % failures)
        return 1
    print("test_analyze_cli: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
