#!/usr/bin/env bash
# demo.sh -- README's demo command: installs what is missing, builds heapsnap, starts the
# bundled demo service, captures it, prints the summary, and stops the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target heapsnap heapsnap-demo

out=${DEMO_OUT:-demo.hsnap}
./build/heapsnap-demo > build/demo.log &
demo=$!
trap 'kill $demo 2>/dev/null; wait $demo 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q ready build/demo.log 2>/dev/null && break; sleep 0.1; done

./build/heapsnap capture -p "$demo" -o "$out"
./build/heapsnap summary "$out"
echo
echo "snapshot: $out   (try: ./build/heapsnap regions $out --sort rss --limit 15)"
