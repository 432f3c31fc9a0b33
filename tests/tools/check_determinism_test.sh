#!/usr/bin/env bash
# Proves the determinism check can fail: each planted violation, in a scratch tree, must be
# caught; the same code inside runtime/ or transport/ must pass.
set -uo pipefail
check="$1"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failures=0

expect() {  # expect <pass|fail> <relative file> <line>
  local want="$1" file="$2" line="$3"
  rm -rf "$scratch/tree"
  mkdir -p "$scratch/tree/src/core" "$scratch/tree/include/meshrpc/core"
  mkdir -p "$(dirname "$scratch/tree/$file")"
  printf '%s\n' "$line" > "$scratch/tree/$file"
  if "$check" "$scratch/tree" >/dev/null 2>&1; then got=pass; else got=fail; fi
  if [[ "$got" != "$want" ]]; then
    echo "FAILED: expected $want for '$line' in $file, got $got"
    failures=$((failures + 1))
  fi
}

for planted in \
  'auto t = std::chrono::steady_clock::now();' \
  'auto t = std::chrono::system_clock::now();' \
  'auto t = std::chrono::high_resolution_clock::now();' \
  'std::this_thread::sleep_for(1ms);' \
  'int r = rand();' \
  'std::random_device device;' \
  'std::thread worker([]{});' \
  'asio::steady_timer timer(ex);' \
  'boost::asio::system_timer timer(ex);' \
  'asio::deadline_timer timer(ex);' \
  'asio::ip::tcp::socket socket(ex);' \
  'asio::ip::tcp::acceptor acceptor(ex);' \
  'asio::ip::tcp::resolver resolver(ex);' \
  'asio::ip::udp::socket socket(ex);'; do
  expect fail src/core/planted.cc "$planted"
  expect fail include/meshrpc/core/planted.h "$planted"
  expect pass src/runtime/allowed.cc "$planted"
  expect pass src/transport/allowed.cc "$planted"
done
# Look-alikes that are not violations.
expect pass src/core/fine.cc 'int x = operand();'
expect pass src/core/fine.cc 'std::thread_local_thing x;'
expect pass src/core/fine.cc 'auto t = env.now();'
expect pass src/core/fine.cc 'co_await env.async_wait_for(1s, token);'
expect fail src/core/bad.cc 'co_await env.async_sleep_for(1s, token);'
expect pass src/core/fine.cc 'call->deadline_timer.emit(type);'
expect pass src/core/fine.cc 'state.deadline_timer.emit(type);'
expect fail src/core/bad.cc 'sleep_for(1s);'
expect fail src/core/bad.cc 'steady_timer timer(ex);'
expect pass src/core/fine.cc '// We never call std::chrono::steady_clock::now here.'

if ((failures)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "determinism check test: all planted violations caught"
