#!/usr/bin/env bash
# graph_analyze_bench.sh -- issue #4's analysis figures through the snapshot file, the
# user's path: `heapsnap leaks`, `dominators` and `retained` on a big pointer graph, each
# command's wall time, CPU time and peak RSS (/usr/bin/time -v), and bytes per chunk.
# Without SNAP, captures a bench/big_graph target of N blocks (default 10M: 10,000,001
# in-use chunks, 19,999,998 edges) into a temporary file under /tmp, deleted at the end.
# With OUTDIR, each command's --json output is kept there (to compare two builds). RUNS
# repeats the four commands (the machine is shared: compare the best of a few runs). The
# environment variable WRAP prefixes each analysis command (e.g. a program that turns
# transparent huge pages off with prctl(PR_SET_THP_DISABLE) and execs the rest).
# usage: bench/graph_analyze_bench.sh [-s SNAP] [-o OUTDIR] [-r RUNS] [N] [BUILDDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
snap=""; outdir=""; runs=1
while getopts s:o:r: opt; do
	case $opt in
	s) snap=$OPTARG ;;
	o) outdir=$OPTARG ;;
	r) runs=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
n=${1:-10000000}; b=${2:-build-bench}
if [ ! -x "$b/heapsnap" ] || [ -z "$snap" ]; then
	cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build "$b" -j2 --target heapsnap big_graph >/dev/null
fi
tmp=$(mktemp -d /tmp/hsanalyze.XXXXXX)
target=""
trap '[ -n "$target" ] && kill $target 2>/dev/null; rm -rf "$tmp"' EXIT
if [ -z "$snap" ]; then
	"$b/bench/big_graph" "$n" > "$tmp/target.log" &
	target=$!
	for _ in $(seq 1200); do grep -q ready "$tmp/target.log" && break; sleep 0.1; done
	"$b/heapsnap" capture -p "$target" -o "$tmp/g.hsnap" -q --no-unwind
	kill $target; target=""
	snap=$tmp/g.hsnap
fi
chunks=$(sqlite3 "$snap" "SELECT count(*) FROM chunk WHERE state = 0")
edges=$(sqlite3 "$snap" "SELECT sum(n) FROM chunk_edge")
echo "snapshot $snap: $chunks in-use chunks, $edges edges, $(stat -c %s "$snap") bytes"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
[ -n "$outdir" ] && mkdir -p "$outdir"
printf '%-28s %8s %8s %8s %10s %8s\n' command wall_s user_s sys_s peak_MiB B/chunk
total=0
for run in $(seq "$runs"); do
	for cmd in "leaks" "dominators" "retained --by type" "retained --by site"; do
		name=${cmd// /_}
		out=/dev/null
		[ -n "$outdir" ] && out=$outdir/$name.json
		/usr/bin/time -v ${WRAP:-} "$b/heapsnap" $cmd "$snap" --json > "$out" 2> "$tmp/time" ||
			{ cat "$tmp/time"; exit 1; }
		wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$tmp/time" |
			awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
		user=$(sed -n 's/.*User time (seconds): //p' "$tmp/time")
		sys=$(sed -n 's/.*System time (seconds): //p' "$tmp/time")
		kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tmp/time")
		printf '%-28s %8.2f %8.2f %8.2f %10.1f %8.1f\n' "$cmd" "$wall" "$user" "$sys" \
			"$(echo "$kb / 1024" | bc -l)" "$(echo "$kb * 1024 / $chunks" | bc -l)"
	done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
