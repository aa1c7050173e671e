#!/usr/bin/env bash
# graph_capture_bench.sh -- issue #4's capture-side figures: a bench/big_graph target with
# N blocks (default 10M, about 2N edges), captured with and without the pointer graph:
# the graph scan's share of the capture (from `capture --verbose`), the whole capture
# wall time, and the bytes of the edge and root tables in the file (sqlite3's dbstat).
# usage: bench/graph_capture_bench.sh [N] [BUILDDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000000}; b=${2:-build-bench}
cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$b" -j2 --target heapsnap big_graph >/dev/null
tmp=$(mktemp -d /tmp/hsgraph.XXXXXX)
"./$b/bench/big_graph" "$n" > "$tmp/target.log" &
target=$!
trap 'kill $target 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1200); do grep -q ready "$tmp/target.log" && break; sleep 0.1; done
echo "target pid $target, $(grep VmRSS /proc/$target/status)"
now() { date +%s%N; }
t0=$(now); "./$b/heapsnap" capture -p "$target" -o "$tmp/g.hsnap" -q -v --no-unwind; t1=$(now)
echo "capture with graph: $(( (t1 - t0) / 1000000 )) ms wall"
t0=$(now); "./$b/heapsnap" capture -p "$target" -o "$tmp/n.hsnap" -q -v --no-unwind --no-graph; t1=$(now)
echo "capture without graph: $(( (t1 - t0) / 1000000 )) ms wall"
sqlite3 "$tmp/g.hsnap" "SELECT count(*), sum(n) FROM chunk_edge" | sed 's/^/edge rows|edges: /'
size=$(stat -c %s "$tmp/g.hsnap"); size0=$(stat -c %s "$tmp/n.hsnap")
echo "file: $size bytes with the graph, $size0 without"
sqlite3 "$tmp/g.hsnap" "SELECT name, sum(pgsize) FROM dbstat WHERE name IN ('chunk_edge','root','chunk','type','chunk_type') GROUP BY name" 2>/dev/null \
  | sed 's/^/table bytes: /' || echo "(sqlite3 without dbstat)"
