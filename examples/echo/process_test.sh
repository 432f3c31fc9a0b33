#!/usr/bin/env bash
# Process-level tests of echo_server and echo_client (registered with ctest in
# examples/CMakeLists.txt): real processes, signals and restarts, on 127.0.0.1 only. Every
# wait is bounded; on failure the processes' output is printed.
#   process_test.sh sigterm_drains_in_flight_calls ECHO_SERVER ECHO_CLIENT
#   process_test.sh killed_server_gives_unavailable_then_recovers ECHO_SERVER ECHO_CLIENT
#   process_test.sh stream_and_chat_then_killed_server_is_a_transport_error ECHO_SERVER ECHO_CLIENT
set -euo pipefail
test_case=$1 server_bin=$2 client_bin=$3

dir=$(mktemp -d)
server_pid="" client_pid=""
cleanup() {
  for pid in $server_pid $client_pid; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

fail() {
  echo "FAIL ($test_case): $*" >&2
  for log in "$dir"/*.log; do
    [[ -f "$log" ]] && { echo "--- ${log##*/}"; cat "$log"; } >&2
  done
  exit 1
}




# Starts echo_server on 127.0.0.1:PORT in the background; sets server_pid and port.
# shellcheck source=../../scripts/lib/process.sh
source "$(dirname "$0")/../../scripts/lib/process.sh"

start_server() {  # PORT LOG [FLAGS...]
  local want=$1 log=$2
  shift 2
  "$server_bin" --listen "127.0.0.1:$want" --threads 2 "$@" >"$log" 2>&1 &
  server_pid=$!
  wait_for_lines "$log" '^echo_server listening on ' 1 10
  port=$(sed -n 's/^echo_server listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$log" | head -1)
  [[ -n "$port" ]] || fail "no port in ${log##*/}"
}

run_client() {  # LOG [FLAGS...]; sets exit_code
  local log=$1
  shift
  exit_code=0
  timeout 20 "$client_bin" --target "127.0.0.1:$port" "$@" >"$log" 2>&1 || exit_code=$?
}

sigterm_drains_in_flight_calls() {
  # Each call takes 300 ms on the server; SIGTERM arrives once all four are running.
  start_server 0 "$dir/server.log" --delay-ms 300 --verbose
  "$client_bin" --target "127.0.0.1:$port" --message hello --count 4 --concurrency 4 \
    --timeout 10s >"$dir/client.log" 2>&1 &
  client_pid=$!
  wait_for_lines "$dir/server.log" '^echo_server call [0-9]+ started$' 4 10
  kill -TERM "$server_pid"
  wait_exit "$server_pid" 10 echo_server
  server_pid=""
  ((exit_code == 0)) || fail "echo_server exited $exit_code after SIGTERM, want 0"
  wait_exit "$client_pid" 15 echo_client
  client_pid=""
  ((exit_code == 0)) || fail "echo_client exited $exit_code, want 0"
  (($(count_lines "$dir/client.log" '^reply [1-4]: hello$') == 4)) || fail "want 4 replies"
  grep -qx 'echo_server drained 4 calls, exiting' "$dir/server.log" ||
    fail "no 'drained 4 calls' line"
}

killed_server_gives_unavailable_then_recovers() {
  start_server 0 "$dir/server1.log"
  run_client "$dir/client1.log" --message first --timeout 5s
  ((exit_code == 0)) || fail "first call: echo_client exited $exit_code, want 0"
  grep -qx 'reply 1: first' "$dir/client1.log" || fail "first call: no reply"

  kill -KILL "$server_pid"
  wait_exit "$server_pid" 10 echo_server
  server_pid=""
  run_client "$dir/client2.log" --message second --timeout 5s
  ((exit_code == 1)) || fail "call to a killed server: echo_client exited $exit_code, want 1"
  grep -qE '^call 1 failed: UNAVAILABLE: ' "$dir/client2.log" || fail "no UNAVAILABLE failure"

  start_server "$port" "$dir/server2.log"
  run_client "$dir/client3.log" --message third --timeout 5s
  ((exit_code == 0)) || fail "after restart: echo_client exited $exit_code, want 0"
  grep -qx 'reply 1: third' "$dir/client3.log" || fail "after restart: no reply"
  kill -TERM "$server_pid"
  wait_exit "$server_pid" 10 echo_server
  server_pid=""
  ((exit_code == 0)) || fail "restarted echo_server exited $exit_code after SIGTERM, want 0"
}

stream_and_chat_then_killed_server_is_a_transport_error() {
  start_server 0 "$dir/server.log"
  run_client "$dir/stream.log" --stream 1000 --timeout 5s
  ((exit_code == 0)) || fail "--stream 1000: echo_client exited $exit_code, want 0"
  grep -qE '^stream: 1000 of 1000 replies in order in ' "$dir/stream.log" ||
    fail "--stream 1000: no 'stream: 1000 of 1000 replies in order' line"
  run_client "$dir/chat.log" --chat 100 --timeout 5s
  ((exit_code == 0)) || fail "--chat 100: echo_client exited $exit_code, want 0"
  grep -qE '^chat: 100 round trips in ' "$dir/chat.log" || fail "--chat 100: no summary line"

  kill -KILL "$server_pid"
  wait_exit "$server_pid" 10 echo_server
  server_pid=""
  run_client "$dir/dead.log" --stream 10 --timeout 5s
  ((exit_code == 1)) || fail "--stream to a killed server: echo_client exited $exit_code, want 1"
  grep -qE '^stream failed: Transport\(UNAVAILABLE: ' "$dir/dead.log" ||
    fail "--stream to a killed server: no Transport(UNAVAILABLE) StreamError"
}

case "$test_case" in
  sigterm_drains_in_flight_calls | killed_server_gives_unavailable_then_recovers | \
    stream_and_chat_then_killed_server_is_a_transport_error) "$test_case" ;;
  *) fail "unknown test case '$test_case'" ;;
esac
echo "PASS ($test_case)"
