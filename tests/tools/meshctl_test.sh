#!/usr/bin/env bash
# End-to-end tests of meshctl against a real echo_server on 127.0.0.1 (registered with ctest
# in tools/meshctl/CMakeLists.txt). Every check looks at the exact exit code and at stdout or
# stderr; every wait is bounded; on failure the logs are printed.
#   meshctl_test.sh call MESHCTL ECHO_SERVER
#   meshctl_test.sh list_health_metrics MESHCTL ECHO_SERVER
#   meshctl_test.sh bench MESHCTL ECHO_SERVER
#   meshctl_test.sh errors_and_usage MESHCTL ECHO_SERVER
set -euo pipefail
test_case=$1 meshctl_bin=$2 server_bin=$3

dir=$(mktemp -d)
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill -9 "$server_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

fail() {
  echo "FAIL ($test_case): $*" >&2
  for log in "$dir"/*.log "$dir"/out "$dir"/err; do
    [[ -f "$log" ]] && { echo "--- ${log##*/}"; cat "$log"; } >&2
  done
  exit 1
}

# shellcheck source=../../scripts/lib/process.sh
source "$(dirname "$0")/../../scripts/lib/process.sh"

start_server() {  # LOG [FLAGS...]; sets server_pid and addr
  local log=$1
  shift
  "$server_bin" --listen 127.0.0.1:0 --threads 2 "$@" >"$log" 2>&1 &
  server_pid=$!
  wait_for_lines "$log" '^echo_server listening on ' 1 10
  local port
  port=$(sed -n 's/^echo_server listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$log" | head -1)
  [[ -n "$port" ]] || fail "no port in ${log##*/}"
  addr=127.0.0.1:$port
}

stop_server() {
  kill -KILL "$server_pid"
  wait_exit "$server_pid" 10 echo_server
  server_pid=""
}

# Runs meshctl with a bound on its run time; stdout to $dir/out, stderr to $dir/err.
run() {  # ARGS...; sets rc
  rc=0
  timeout 30 "$meshctl_bin" "$@" >"$dir/out" 2>"$dir/err" || rc=$?
}

expect_rc() {  # WANT WHAT
  ((rc == $1)) || fail "$2: meshctl exited $rc, want $1"
}

expect_stderr() {  # REGEX WHAT
  grep -qE "$1" "$dir/err" || fail "$2: stderr does not match '$1'"
}

expect_stdout() {  # REGEX WHAT
  grep -qE "$1" "$dir/out" || fail "$2: stdout does not match '$1'"
}

call() {
  start_server "$dir/server.log"
  local want=$'{\n  "text": "hi"\n}'
  for method in meshrpc.examples.Echo.Say meshrpc.examples.Echo/Say /meshrpc.examples.Echo/Say; do
    run call "$addr" "$method" '{"text":"hi"}'
    expect_rc 0 "call $method"
    [[ "$(cat "$dir/out")" == "$want" ]] || fail "call $method: reply is not '$want'"
    [[ ! -s "$dir/err" ]] || fail "call $method: stderr is not empty"
  done

  # Metadata travels as headers; echo_server does not echo it, so the call must just succeed.
  run call "$addr" meshrpc.examples.Echo.Say '{"text":"meta"}' --metadata tenant=blue \
    -m trace-id=42 --timeout 2s --retries 3
  expect_rc 0 "call with --metadata"
  expect_stdout '^  "text": "meta"$' "call with --metadata"

  run call "$addr" meshrpc.examples.Echo.NoSuchMethod '{}'
  expect_rc 12 "unknown method"
  expect_stderr '^UNIMPLEMENTED: ' "unknown method"
  [[ ! -s "$dir/out" ]] || fail "unknown method: stdout is not empty"

  run call "$addr" meshrpc.examples.Echo.Say '{"text":'
  expect_rc 3 "JSON that does not parse"
  expect_stderr '^INVALID_ARGUMENT: ' "JSON that does not parse"

  # Valid JSON that does not fit SayRequest: the server's gateway rejects it.
  run call "$addr" meshrpc.examples.Echo.Say '{"count":"not a number"}'
  expect_rc 3 "JSON of the wrong type"
  expect_stderr '^INVALID_ARGUMENT: ' "JSON of the wrong type"

  # Not retried: only UNAVAILABLE and RESOURCE_EXHAUSTED are.
  run call "$addr" meshrpc.examples.Echo.Nope '{}' --retries 3
  expect_rc 12 "unknown method with --retries"
  (($(count_lines "$dir/err" '^attempt ') == 0)) || fail "UNIMPLEMENTED was retried"
}

list_health_metrics() {
  start_server "$dir/server.log"
  run list "$addr"
  expect_rc 0 list
  expect_stdout '^meshrpc\.examples\.Echo$' list
  for method in Say Stream Chat; do expect_stdout "^  $method +[a-z_]+ +[A-Z_]+" "list $method"; done
  expect_stdout '^  Say +unary +NO_SIDE_EFFECTS$' "list Say"
  expect_stdout \
    '^ +request   meshrpc\.examples\.SayRequest \{ string text = 1; int32 count = 2; \}$' \
    "list request schema"
  expect_stdout '^ +response  meshrpc\.examples\.SayReply \{ string text = 1; \}$' \
    "list response schema"

  run health "$addr"
  expect_rc 0 health
  [[ "$(cat "$dir/out")" == "SERVING  live=true  ready=true" ]] || fail "health: wrong output"

  # The echo server runs no gossip cluster (tests/tools/cluster_test.sh covers one that does).
  run members "$addr"
  expect_rc 5 "members of a server without a cluster"
  expect_stderr '^NOT_FOUND: .*no /members page' "members of a server without a cluster"

  # /metrics comes with the metrics page; check it only when the server answers it.
  local status_line
  exec 3<>"/dev/tcp/127.0.0.1/${addr##*:}"
  printf 'GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n' >&3
  read -r -t 10 status_line <&3 || true
  exec 3<&-
  if [[ "$status_line" == "HTTP/1.1 200"* ]]; then
    run metrics "$addr"
    expect_rc 0 metrics
    expect_stdout '^meshrpc_' metrics
    run metrics "$addr" --grep '^meshrpc_'
    expect_rc 0 "metrics --grep"
    [[ -s "$dir/out" ]] || fail "metrics --grep '^meshrpc_': no lines"
    (($(count_lines "$dir/out" '^meshrpc_') == $(wc -l <"$dir/out"))) ||
      fail "metrics --grep '^meshrpc_': a line does not match"
    run metrics "$addr" --grep 'no_such_metric_anywhere'
    expect_rc 0 "metrics --grep with no match"
    [[ ! -s "$dir/out" ]] || fail "metrics --grep with no match: output is not empty"
  else
    echo "SKIP metrics: GET /metrics answered '${status_line%$'\r'}'"
    run metrics "$addr"
    ((rc == 5 || rc == 12)) || fail "metrics without a /metrics page: exited $rc, want 5 or 12"
    expect_stderr '^(NOT_FOUND|UNIMPLEMENTED): ' "metrics without a /metrics page"
  fi
  run metrics "$addr" --grep '('
  expect_rc 64 "metrics --grep with a bad regular expression"
}

bench() {
  start_server "$dir/server.log"
  run bench "$addr" meshrpc.examples.Echo/Say '{"text":"b"}' --concurrency 4 --duration 2s
  expect_rc 0 bench
  expect_stdout '^bench /meshrpc\.examples\.Echo/Say at 127\.0\.0\.1:[0-9]+: 4 connections' bench
  expect_stdout '^  calls      [1-9][0-9,]*$' bench
  expect_stdout '^  calls/s    [1-9][0-9,]*$' bench
  expect_stdout '^  latency    p50 [0-9.]+[nmu]?s  p90 [0-9.]+[nmu]?s  p99 [0-9.]+[nmu]?s  p999 [0-9.]+[nmu]?s  max [0-9.]+[nmu]?s$' \
    "bench percentiles"
  expect_stdout '^  errors     0$' bench
  expect_stderr '  1s  [0-9,]+ calls/s  p99 [0-9.]+[nmu]?s  errors 0' "bench progress line"

  run bench "$addr" meshrpc.examples.Echo/Nope '{}' --concurrency 2 --duration 1s
  expect_rc 12 "bench of an unknown method"
  expect_stdout '^    UNIMPLEMENTED +[1-9]' "bench of an unknown method"
}

errors_and_usage() {
  # A call that outlives its --timeout.
  start_server "$dir/slow.log" --delay-ms 5000
  run call "$addr" meshrpc.examples.Echo.Say '{"text":"slow"}' --timeout 200ms
  expect_rc 4 "call past its deadline"
  expect_stderr '^DEADLINE_EXCEEDED: ' "call past its deadline"
  stop_server

  # A dead address: the killed server's port.
  for command in "call $addr meshrpc.examples.Echo.Say {}" "list $addr" "health $addr" \
    "metrics $addr" "members $addr" "bench $addr meshrpc.examples.Echo.Say {} -c 2 -d 1s"; do
    # shellcheck disable=SC2086
    run $command
    expect_rc 14 "$command (dead address)"
    expect_stderr '^UNAVAILABLE: ' "$command (dead address)"
  done
  run call "$addr" meshrpc.examples.Echo.Say '{}' --retries 2
  expect_rc 14 "call --retries 2 (dead address)"
  (($(count_lines "$dir/err" '^attempt [12] of 3: UNAVAILABLE: ') == 2)) ||
    fail "call --retries 2: want 2 retry lines"

  # Usage errors.
  local -a usage_cases=(
    ""
    "call"
    "call 127.0.0.1:1"
    "call not-an-address meshrpc.examples.Echo.Say {}"
    "call 127.0.0.1:0 meshrpc.examples.Echo.Say {}"
    "call 127.0.0.1:1 NoDots {}"
    "call 127.0.0.1:1 meshrpc.examples.Echo.Say {} --timeout 5"
    "call 127.0.0.1:1 meshrpc.examples.Echo.Say {} --metadata novalue"
    "call 127.0.0.1:1 meshrpc.examples.Echo.Say {} --retries -1"
    "call 127.0.0.1:1 meshrpc.examples.Echo.Say {} extra"
    "bench 127.0.0.1:1 meshrpc.examples.Echo.Say {} --concurrency 0"
    "bench 127.0.0.1:1 meshrpc.examples.Echo.Say {} --duration forever"
    "members"
    "members 127.0.0.1:1 --json extra"
    "frobnicate"
  )
  for args in "${usage_cases[@]}"; do
    # shellcheck disable=SC2086
    run $args
    expect_rc 64 "usage error 'meshctl $args'"
    [[ -s "$dir/err" ]] || fail "usage error 'meshctl $args': nothing on stderr"
  done
  run --help
  expect_rc 0 "--help"
  expect_stdout '64 a usage error' "--help"
  run --version
  expect_rc 0 "--version"
  expect_stdout '^[0-9]+\.[0-9]+\.[0-9]+$' "--version"
}

case "$test_case" in
  call | list_health_metrics | bench | errors_and_usage) "$test_case" ;;
  *) fail "unknown test case '$test_case'" ;;
esac
echo "PASS ($test_case)"
