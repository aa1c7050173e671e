#!/usr/bin/env bash
# capture_bench.sh -- issue #2's capture benchmark, all in one run, interleaved:
# a target with about 4 million chunks (bench/big_heap), then ROUNDS times in turn:
#   the raw floor (bench/rawcopy: one process_vm_readv pass into pre-faulted memory),
#   heapsnap capture (its recorded pause, and the whole wall time),
#   gcore on the same process (its wall time: the target is stopped all along).
# Then the snapshot size per chunk. usage: bench/capture_bench.sh [NCHUNKS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-4000000}; rounds=${2:-3}
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j"$(nproc)" --target heapsnap big_heap rawcopy >/dev/null
tmp=$(mktemp -d /tmp/hsbench.XXXXXX)
./build-bench/bench/big_heap "$n" > "$tmp/target.log" &
target=$!
trap 'kill $target 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 600); do grep -q ready "$tmp/target.log" && break; sleep 0.1; done
echo "target pid $target, $(grep VmRSS /proc/$target/status)"
now() { date +%s%N; }
for r in $(seq "$rounds"); do
  raw=$(./build-bench/bench/rawcopy "$target" 3)
  t0=$(now); ./build-bench/heapsnap capture -p "$target" -o "$tmp/b.hsnap" -q; t1=$(now)
  pause=$(sqlite3 "$tmp/b.hsnap" 'SELECT pause_us FROM capture')
  copy=$(sqlite3 "$tmp/b.hsnap" 'SELECT copy_us FROM capture')
  chunks=$(sqlite3 "$tmp/b.hsnap" 'SELECT count(*) FROM chunk')
  size=$(stat -c %s "$tmp/b.hsnap")
  if command -v gcore >/dev/null; then
    t2=$(now); gcore -o "$tmp/core" "$target" >/dev/null 2>&1; t3=$(now); rm -f "$tmp"/core*
    gc=$(( (t3 - t2) / 1000 ))
  else gc=NA; fi
  echo "round $r: $raw | heapsnap pause_us $pause copy_us $copy total_ms $(( (t1 - t0) / 1000000 )) | gcore_us $gc | chunks $chunks file_bytes $size bytes_per_chunk $(( size / (chunks > 0 ? chunks : 1) ))"
  rm -f "$tmp/b.hsnap"
done
