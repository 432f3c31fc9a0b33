#!/usr/bin/env bash
# Builds meshrpc and runs every test through ctest. Installs dependencies first.
#   scripts/test.sh                      plain build in build/ (gcc, warnings as errors)
#   scripts/test.sh --sanitize address   clang ASan+UBSan build of the tests in build-asan/,
#                                        including the fuzz targets (run by .ci/run)
#   scripts/test.sh --sanitize thread    clang TSan build of the tests in build-tsan/
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=""
if [[ "${1:-}" == "--sanitize" ]]; then
  sanitize="${2:?--sanitize needs address or thread}"
fi

scripts/setup.sh
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-8G}"
# CI builds a fresh clone each time, at whatever path: make cache hits independent of it
# (relative paths under the checkout, and no working directory in the hash of -g builds).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
jobs=$(nproc)

if [[ -z "$sanitize" ]]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMESHRPC_WERROR=ON >/dev/null
  cmake --build build -j"$jobs"
  ctest --test-dir build --output-on-failure -j"$jobs"
  exit 0
fi

case "$sanitize" in
  address) dir=build-asan; extra=(-DMESHRPC_BUILD_FUZZ=ON)
           export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
           export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" ;;
  thread)  dir=build-tsan; extra=()
           export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" ;;
  *) echo "unknown sanitizer '$sanitize' (address or thread)" >&2; exit 2 ;;
esac
# Sanitizer builds cover the tests only (examples and the header check gain nothing there).
CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMESHRPC_SANITIZE="$sanitize" -DMESHRPC_WERROR=ON -DMESHRPC_BUILD_EXAMPLES=OFF \
  -DMESHRPC_HEADER_CHECK=OFF "${extra[@]}" >/dev/null
cmake --build "$dir" -j"$jobs"
ctest --test-dir "$dir" --output-on-failure -j"$jobs"
