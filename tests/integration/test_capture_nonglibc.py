"""Targets without glibc's heap still get mappings, threads and modules, and both the
snapshot and the summary say plainly that no glibc heap was found: a static musl program,
and (where Debian's libjemalloc2 is installed) a glibc program with jemalloc preloaded."""
import os
import signal

import hstest as T

T.require_ptrace()
d = T.tmpdir()
cases = []
musl = T.fixture("fx_musl")
if os.path.exists(musl):
    cases.append(("musl static", [musl], None))
else:
    print("note: fx_musl not built (musl-tools missing); musl case skipped")
jemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
if os.path.exists(jemalloc):
    cases.append(("glibc + jemalloc", [T.fixture("fx_nonglibc_dyn")],
                  dict(os.environ, LD_PRELOAD=jemalloc)))
if not cases:
    T.skip("neither musl-gcc nor libjemalloc2 available")

for name, argv, env in cases:
    if not os.path.exists(argv[0]):
        T.fail("fixture missing: " + argv[0])
    p = T.spawn(argv, env=env)
    out = os.path.join(d, "ng.hsnap")
    r = T.capture(p.pid, out)
    T.check("no glibc heap" in r.stdout, "%s: capture says no glibc heap: %r" % (name, r.stdout))
    con = T.db(out)
    found, note = con.execute("SELECT heap_found, heap_note FROM capture").fetchone()
    T.check_eq(found, 0, name + ": heap_found")
    T.check(note and "no glibc heap" in note, name + ": heap_note %r" % note)
    nthreads = con.execute("SELECT count(*) FROM thread").fetchone()[0]
    T.check_eq(nthreads, 3, name + ": threads")
    nmaps = con.execute("SELECT count(*) FROM mapping").fetchone()[0]
    T.check(nmaps >= 5, name + ": mappings %d" % nmaps)
    main = con.execute("SELECT path FROM module WHERE is_main = 1").fetchone()
    T.check(main and main[0].endswith(os.path.basename(argv[0])), name + ": main module %r" % (main,))
    nchunks = con.execute("SELECT count(*) FROM chunk").fetchone()[0]
    T.check_eq(nchunks, 0, name + ": no chunks reported as fact")
    con.close()
    s = T.heapsnap("summary", out)
    T.check_eq(s.returncode, 0, name + ": summary exit")
    T.check("no glibc heap found" in s.stdout, name + ": summary says so")
    js = T.summary_json(out)
    T.check(js is not None, name + ": summary --json parses")
    T.assert_running(p, "after capture of " + name)
    p.kill()
    p.wait()
    os.unlink(out)
    print("%s: %d threads, %d mappings, no glibc heap: %s" % (name, nthreads, nmaps, note))
print("ok: non-glibc targets")
