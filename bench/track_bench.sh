#!/usr/bin/env bash
# track_bench.sh -- overhead of the allocation tracking library (issue #3) on the shared
# 2-thread malloc benchmark (bench/malloc-bench.c: 5M malloc/free pairs, live set 100k,
# stacks 9-24 deep) and its varying-stack-pointer variant (bench/bench_pad.c), run
# interleaved in one session: plain, full tracking, HEAPSNAP_SAMPLE=524288, heaptrack.
# Figures go to bench/README.md ("Tracking overhead (issue #3)").
#
# usage: bench/track_bench.sh [-b BUILD_DIR] [-r ROUNDS] [-n PAIRS] [-p PADS] [-H HEAPTRACK_ROUNDS]
# Ratios are medians over rounds of (variant / plain of the same round); the machine is
# shared and noisy, so both the wall time the benchmark measures and the CPU time
# (user+sys) are reported. Memory: max RSS of a run that only builds the 100k live set
# and frees it (0 pairs), tracked minus plain, divided by 100k; and bench/track_live.c
# (2 threads, 100k and 1M live blocks) reading its own RSS, PSS and private dirty
# memory at its peak, to split the cost into per-allocation and fixed parts and into
# memory the process alone consumes and shared library pages it maps.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build rounds=7 pairs=5000000 pads=256 ht_rounds=3
while getopts "b:r:n:p:H:h" o; do
  case $o in
    b) build=$OPTARG ;; r) rounds=$OPTARG ;; n) pairs=$OPTARG ;; p) pads=$OPTARG ;;
    H) ht_rounds=$OPTARG ;; *) sed -n '2,13p' "$0"; exit 2 ;;
  esac
done
lib=${HEAPSNAP_PRELOAD:-$build/libheapsnap_preload.so}
[ -r "$lib" ] || { echo "track_bench: no library at $lib (build heapsnap_preload first)" >&2; exit 2; }
lib=$(readlink -f "$lib")
out=$(mktemp -d /tmp/track_bench.XXXXXX)
trap 'rm -rf "$out"' EXIT
gcc -O2 -g -pthread -o "$out/bench" "$here/malloc-bench.c"
gcc -O2 -g -pthread -o "$out/bench_pad" "$here/bench_pad.c"
gcc -O2 -g -pthread -o "$out/live" "$here/track_live.c"
have_ht=0; command -v heaptrack >/dev/null && have_ht=1

# one run: prints "wall cpu maxrss_kb"
run() {  # run PROG PAIRS [ENV...]
  local prog=$1 n=$2; shift 2
  local t
  t=$( { env "$@" /usr/bin/time -f "TIME %U %S %M" "$out/$prog" "$n" 2 >/dev/null; } 2>&1 )
  awk '/in-process/{w=$(NF-2)} /^TIME/{c=$2+$3; m=$4} END{print w, c, m}' <<<"$t"
}
run_ht() {
  local t
  t=$( cd "$out" && { /usr/bin/time -f "TIME %U %S %M" heaptrack -o "$out/ht" "$out/bench" "$pairs" 2 >/dev/null; } 2>&1 )
  rm -f "$out"/ht*
  awk '/in-process/{w=$(NF-2)} /^TIME/{c=$2+$3; m=$4} END{print w, c, m}' <<<"$t"
}

declare -A R
add() { R[$1]+="$2 "; }
echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# library $lib, $rounds rounds, $pairs pairs, PADS=$pads"
for r in $(seq "$rounds"); do
  read -r w c m < <(run bench "$pairs");                         add plain_w $w; add plain_c $c
  read -r w c m < <(run bench "$pairs" LD_PRELOAD="$lib");       add full_w $w;  add full_c $c
  read -r w c m < <(run bench "$pairs" LD_PRELOAD="$lib" HEAPSNAP_SAMPLE=524288); add samp_w $w; add samp_c $c
  read -r w c m < <(run bench_pad "$pairs" PADS="$pads");        add padp_w $w;  add padp_c $c
  read -r w c m < <(run bench_pad "$pairs" PADS="$pads" LD_PRELOAD="$lib"); add padf_w $w; add padf_c $c
  if [ "$have_ht" = 1 ] && [ "$r" -le "$ht_rounds" ]; then
    read -r w c m < <(run_ht);                                   add ht_w $w;    add ht_c $c
    add htp_w "$(awk -v a="${R[plain_w]}" -v r="$r" 'BEGIN{split(a,x," "); print x[r]}')"
    add htp_c "$(awk -v a="${R[plain_c]}" -v r="$r" 'BEGIN{split(a,x," "); print x[r]}')"
  fi
  read -r w c m < <(run bench 0);                                add mem_plain $m
  read -r w c m < <(run bench 0 LD_PRELOAD="$lib");              add mem_full $m
  read -r w c m < <(run bench 0 LD_PRELOAD="$lib" HEAPSNAP_SAMPLE=524288); add mem_samp $m
  for n in 100000 1000000; do   # track_live prints "rss pss private_dirty" (kB) at its peak
    read -r a b c < <("$out/live" $n 2);                      add lrss_plain_$n $a; add lpss_plain_$n $b; add lpriv_plain_$n $c
    read -r a b c < <(LD_PRELOAD="$lib" "$out/live" $n 2);    add lrss_full_$n $a;  add lpss_full_$n $b;  add lpriv_full_$n $c
    read -r a b c < <(LD_PRELOAD="$lib" HEAPSNAP_SAMPLE=524288 "$out/live" $n 2); add lrss_samp_$n $a; add lpss_samp_$n $b; add lpriv_samp_$n $c
  done
  echo "# round $r done" >&2
done

med() { tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratios() { awk -v a="$1" -v b="$2" 'BEGIN{n=split(a,x," "); split(b,y," "); for(i=1;i<=n;i++) printf "%.4f ", x[i]/y[i]}'; }
line() {  # label num_w den_w num_c den_c
  printf "| %-34s | %7.3f s | %5.2fx | %7.2f s | %5.2fx |\n" "$1" "$(med "${R[$2]}")" \
    "$(med "$(ratios "${R[$2]}" "${R[$3]}")")" "$(med "${R[$4]}")" "$(med "$(ratios "${R[$4]}" "${R[$5]}")")"
}
echo
echo "| variant                            | wall (median) | ratio | cpu (median) | ratio |"
echo "|------------------------------------|---------|-------|---------|-------|"
line "plain" plain_w plain_w plain_c plain_c
line "full tracking" full_w plain_w full_c plain_c
line "sampling 524288" samp_w plain_w samp_c plain_c
[ "$have_ht" = 1 ] && [ "$ht_rounds" -gt 0 ] && line "heaptrack ($ht_rounds rounds)" ht_w htp_w ht_c htp_c
line "bench_pad plain (PADS=$pads)" padp_w padp_w padp_c padp_c
line "bench_pad full tracking" padf_w padp_w padf_c padp_c
mp=$(med "${R[mem_plain]}") mf=$(med "${R[mem_full]}") ms=$(med "${R[mem_samp]}")
echo
echo "max RSS building the 100k live set: plain $mp kB, full $mf kB, sampling $ms kB"
awk -v p="$mp" -v f="$mf" -v s="$ms" 'BEGIN{printf "memory overhead per live allocation (100k live, fixed costs included): full %.1f bytes, sampling %.1f bytes\n", (f-p)*1024/100000, (s-p)*1024/100000}'
echo
echo "track_live, 2 threads, at its peak: bytes per live allocation, tracked minus plain (fixed costs included)"
echo "| live blocks | variant | RSS | PSS | private dirty |"
echo "|---|---|---|---|---|"
for n in 100000 1000000; do
  for v in full samp; do
    row="| $n | $v |"
    for k in lrss lpss lpriv; do
      p=$(med "${R[${k}_plain_$n]}") t=$(med "${R[${k}_${v}_$n]}")
      row="$row $(awk -v p="$p" -v t="$t" -v n="$n" 'BEGIN{printf "%.1f B", (t-p)*1024/n}') |"
    done
    echo "$row"
  done
done
for k in lrss lpriv; do
  a=$(med "${R[${k}_plain_100000]}") b=$(med "${R[${k}_full_100000]}") c=$(med "${R[${k}_plain_1000000]}") d=$(med "${R[${k}_full_1000000]}")
  awk -v k="$k" -v a="$a" -v b="$b" -v c="$c" -v d="$d" 'BEGIN{printf "%s, full tracking: marginal (1M minus 100k) %.1f bytes per allocation; fixed %.0f kB\n", k == "lrss" ? "RSS" : "private dirty", ((d-c)-(b-a))*1024/9e5, (b-a) - ((d-c)-(b-a))/9}'
done
