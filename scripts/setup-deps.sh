#!/usr/bin/env bash
# setup-deps.sh -- installs the Debian 12 packages heapsnap needs to build and test,
# only those missing (apt-get update runs once, first). Usage: scripts/setup-deps.sh [--test]
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libunwind-dev libdw-dev libelf-dev libsqlite3-dev)
# for the tests: python3 drives the integration tests; gdb gives glibc's own mallinfo2()
# of a program nobody here wrote; libc6-dbg lets the tests take both paths (libc debug
# symbols and heuristics); musl-tools builds a non-glibc target; sqlite3 for inspection;
# chromium loads `heapsnap report` pages headless (tests/integration/test_report.py)
test_pkgs=(python3 gdb libc6-dbg musl-tools libjemalloc2 sqlite3 chromium)

want=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then want+=("${test_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup-deps: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
