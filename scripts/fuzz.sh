#!/usr/bin/env bash
# Runs every fuzz target of the ASan build (build-asan/, made by
# `scripts/test.sh --sanitize address`) for SECONDS each (default 30), starting from the
# checked-in seed corpus. New inputs go to a scratch copy, never into the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
targets=$(find build-asan/tests/fuzz -maxdepth 1 -type f -name '*_fuzz' -perm -u+x | sort)
[[ -n "$targets" ]] || { echo "fuzz: no targets in build-asan/tests/fuzz" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in $targets; do
  name=$(basename "$target" _fuzz)
  mkdir -p "$scratch/$name"
  if [[ -d "tests/fuzz/corpus/$name" ]]; then cp -r "tests/fuzz/corpus/$name/." "$scratch/$name/"; fi
  echo "fuzz: $name for ${seconds}s"
  "$target" -max_total_time="$seconds" -print_final_stats=1 "$scratch/$name" 2>&1 \
    | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done|==|SUMMARY)' || true
  # libFuzzer exits non-zero on a crash; pipefail would hide it behind grep, so re-check.
  test "${PIPESTATUS[0]}" -eq 0 || { echo "fuzz: $name FAILED" >&2; exit 1; }
done
echo "fuzz: all targets ran ${seconds}s without a crash"
