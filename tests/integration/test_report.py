"""test_report.py -- `heapsnap report`: one self-contained HTML page, loaded by headless
Chromium.

  * fx_grow --list under `heapsnap run`, captured before and after growing one site and
    one list (the object whose retained size grows: 30 nodes of 224-byte chunks); the report
    of B with --diff A is written 0600, holds no http(s) reference and one JSON blob
    whose summary equals `summary --json`;
  * Chromium loads it from file:// with no console message at all (errors, uncaught
    exceptions), renders every view (none says "could not render"), and the DOM shows the
    key figures of `summary --json` (pid, comm, VIRT/RES/SHR as the page formats them),
    the top site and the diff; a screenshot is kept in BUILD/test-artifacts/report.png;
  * XSS: fx_hostile named "<script>alert(1)</script>" (argv[0], process name, and a
    thread named "<img src=x on") is captured and reported: no tag from those names in
    the HTML source, the DOM shows them as literal text, and the page still has exactly
    its own two <script> elements.
Skips with a message when Chromium is missing (scripts/setup-deps.sh --test installs it).
"""
import json
import os
import re
import shutil
import stat
import subprocess

import hstest as T

T.require_ptrace()
d = T.tmpdir()
CHROME = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
ART = os.path.join(T.BUILD, "test-artifacts")
os.makedirs(ART, exist_ok=True)


def human(n):
    """the page's size(): as out_size()"""
    if n < 1024:
        return "%d B" % n
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    v, u = float(n), 0
    while v >= 1024 and u < 4:
        v /= 1024
        u += 1
    return "%.1f %s" % (v, units[u])


def chrome(url, *extra):
    args = [CHROME, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
            "--v=0", "--user-data-dir=" + os.path.join(d, "chrome-profile")] + list(extra) + [url]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    return r


def blob(html):
    m = re.search(r'<script type="application/json" id="hs-data">(.*?)</script>', html, re.S)
    T.check(m is not None, "data blob present")
    return json.loads(m.group(1))


def load(path):
    """DOM after the scripts ran; fails on any console message"""
    r = chrome("file://" + path, "--dump-dom")
    T.check(r.returncode == 0, "chromium failed (%d): %s" % (r.returncode, r.stderr[-2000:]))
    console = [l for l in r.stderr.splitlines() if "CONSOLE" in l]
    T.check(not console, "console messages: %s" % console)
    T.check('class="warn">could not render' not in r.stdout, "a view failed to render")
    return r.stdout


def start(argv, **kw):
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, **kw)
    T._children.append(p)
    line = p.stdout.readline()
    T.check("ready" in line, "fixture not ready: %r" % line)
    return p


# ---------------------------------------------------------------- the page itself
p = start([T.HEAPSNAP, "run", "--", T.fixture("fx_grow"), "--list"])
a, b = os.path.join(d, "a.hsnap"), os.path.join(d, "b.hsnap")
T.capture(p.pid, a)
p.stdin.write("more\n")
p.stdin.flush()
T.check(p.stdout.readline().startswith("grown"), "fixture grew")
T.capture(p.pid, b)
p.stdin.close()
p.wait(10)

out = os.path.join(d, "report.html")
r = T.heapsnap("report", b, "--diff", a, "-o", out)
T.check(r.returncode == 0, "report failed: " + r.stderr)
T.check_eq(stat.S_IMODE(os.stat(out).st_mode), 0o600, "report mode")
html = open(out, encoding="utf-8").read()
T.check(len(html) < 2 << 20, "report size bounded: %d bytes" % len(html))
T.check(not re.search(r'(src|href)\s*=\s*["\']?https?:', html, re.I), "no network references")
B = blob(html)
S = T.summary_json(b)
T.check_eq(B["summary"]["memory"], S["memory"], "blob summary = summary --json")
T.check_eq(B["diff_site"]["diff"]["rows"][0]["delta_bytes"], 75000, "blob diff top row")
G = B["diff_site"]["objects"]["grown"]
T.check(G and G[0]["retained_delta"] == 6720, "blob: the list head gained 30 nodes x 224 bytes")
bad = T.heapsnap("report", os.path.join(d, "missing.hsnap"))
T.check_eq(bad.returncode, 2, "missing file: exit 2")

if not CHROME:
    T.skip("chromium not installed (scripts/setup-deps.sh --test installs it); page checks done without a browser")

dom = load(out)
P, M = S["process"], S["memory"]
for what, text in (("pid", "pid %d" % P["pid"]), ("comm", P["comm"]),
                   ("VIRT", human(M["virt_kb"] * 1024)), ("RES", human(M["res_kb"] * 1024)),
                   ("SHR", human(M["shr_kb"] * 1024)), ("top site", "grow_site (fx_grow)"),
                   ("diff delta", "+" + human(75000)), ("born chunks", "55 chunks"),
                   ("grown objects", "gain the most retained bytes"),
                   ("list head's retained gain", "+" + human(6720)),
                   ("born retained by site", human(75600))):
    T.check(text in dom, "DOM shows %s (%r)" % (what, text))
if B.get("leaks"):
    dl = B["leaks"]["definitely_lost"]
    T.check("definitely lost" in dom and human(dl["bytes"]) + " in %d chunks" % dl["count"] in dom,
            "DOM shows the leak figures")
shot = os.path.join(ART, "report.png")
if os.path.exists(shot):
    os.unlink(shot)
r = chrome("file://" + out, "--screenshot=" + shot, "--window-size=1280,1600")
T.check(os.path.exists(shot) and os.path.getsize(shot) > 1000, "screenshot written: " + r.stderr[-500:])

# ---------------------------------------------------------------- hostile names
EVIL = "<script>alert(1)</script>"
p = start([EVIL, "--x=<b>bold</b>"], executable=T.fixture("fx_hostile"))
h = os.path.join(d, "hostile.hsnap")
T.capture(p.pid, h)
p.stdin.close()
p.wait(10)
hout = os.path.join(d, "hostile.html")
r = T.heapsnap("report", h, "-o", hout)
T.check(r.returncode == 0, "hostile report failed: " + r.stderr)
src = open(hout, encoding="utf-8").read()
for tag in ("<script>alert", "<b>bold", "<img src=x"):
    T.check(tag not in src, "unescaped %r in the report source" % tag)
HB = blob(src)
T.check_eq(HB["summary"]["process"]["cmdline"][0], EVIL, "argv[0] survives in the blob")
dom = load(hout)
T.check_eq(dom.count("<script"), 2, "only the page's own scripts in the DOM")
T.check("&lt;script&gt;alert(1)&lt;/script&gt;" in dom, "DOM shows argv[0] as literal text")
T.check("&lt;script&gt;alert(1" in dom, "DOM shows the process name as text")
T.check("&lt;img src=x on" in dom, "DOM shows the thread name as text")
T.check("<img" not in dom, "no <img> element injected")
print("ok: report %d bytes, screenshot %s" % (len(html), shot))
