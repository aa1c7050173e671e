#!/usr/bin/env bash
# track_ab.sh -- many interleaved rounds of malloc-bench (5M pairs, 2 threads): plain,
# a forwarding-only preload (bench/pass_preload.c: the floor any interposer pays),
# HEAPSNAP_SAMPLE=524288 and full tracking. For the small ratios (sampling's <= 1.1x)
# that bench/track_bench.sh's few rounds cannot resolve on a shared machine.
# Prints, per variant, the median time and the median of the per-round ratios to plain
# (wall and user+sys CPU), and the ratio of the best times.
# usage: bench/track_ab.sh [-b BUILD_DIR] [-r ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build rounds=21
while getopts "b:r:h" o; do
  case $o in b) build=$OPTARG ;; r) rounds=$OPTARG ;; *) sed -n '2,8p' "$0"; exit 2 ;; esac
done
lib=$(readlink -f "${HEAPSNAP_PRELOAD:-$build/libheapsnap_preload.so}")
[ -r "$lib" ] || { echo "track_ab: no library at $lib" >&2; exit 2; }
out=$(mktemp -d /tmp/track_ab.XXXXXX)
trap 'rm -rf "$out"' EXIT
gcc -O2 -g -pthread -o "$out/bench" "$here/malloc-bench.c"
gcc -O2 -shared -fPIC -o "$out/libpass.so" "$here/pass_preload.c"
names=(plain pass sampling full)
envs=("" "LD_PRELOAD=$out/libpass.so" "LD_PRELOAD=$lib HEAPSNAP_SAMPLE=524288" "LD_PRELOAD=$lib")
echo "# $(date -u +%FT%TZ), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg), $rounds rounds"
for r in $(seq "$rounds"); do
  for i in "${!names[@]}"; do
    t=$( { env ${envs[$i]} /usr/bin/time -f "TIME %U %S" "$out/bench" 5000000 2 >/dev/null; } 2>&1 )
    awk -v n="${names[$i]}" '/in-process/{w=$(NF-2)} /^TIME/{c=$2+$3} END{print n, w, c}' <<<"$t"
  done
done > "$out/times"
echo "# load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out/times" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
names = []
W, C = {}, {}
for n, w, c in rows:
    if n not in names:
        names.append(n)
    W.setdefault(n, []).append(float(w))
    C.setdefault(n, []).append(float(c))
print("| variant | wall (median) | ratio | cpu (median) | ratio | best-time ratio wall / cpu |")
print("|---|---|---|---|---|---|")
for n in names:
    rw = st.median([a / b for a, b in zip(W[n], W["plain"])])
    rc = st.median([a / b for a, b in zip(C[n], C["plain"])])
    print("| %s | %.3f s | %.3fx | %.2f s | %.3fx | %.3fx / %.3fx |" % (
        n, st.median(W[n]), rw, st.median(C[n]), rc, min(W[n]) / min(W["plain"]), min(C[n]) / min(C["plain"])))
PY
