#!/usr/bin/env bash
# Installs dependencies, builds meshrpc and runs the demos:
#  1. meshrpc_demo (examples/demo/demo.cc): Env, transport and wire, simulated and real;
#  2. chunks_demo (examples/chunks/): typed calls on plain structs, a master and three chunk
#     servers with chain replication, and bad requests meeting their Status;
#  3. echo_server and echo_client (examples/echo/): a client calling every 100 ms through a
#     server crash (SIGKILL: calls fail with UNAVAILABLE), a restart on the same port (the
#     channel reconnects after its backoff) and a graceful shutdown (SIGTERM: drain, exit 0).
# Bounded (every wait has a timeout) and self-stopping; only 127.0.0.1. Exits 0 when the
# story went as told.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target meshrpc_demo chunks_demo echo_server echo_client
timeout 300 build/examples/meshrpc_demo
echo
timeout 120 build/examples/chunks/chunks_demo

server_bin=build/examples/echo_server
client_bin=build/examples/echo_client
dir=$(mktemp -d)
server_pid="" client_pid=""
cleanup() {
  for pid in $server_pid $client_pid; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

say() { echo "demo: $*"; }
die() {
  say "FAILED: $*" >&2
  exit 1
}
# Starts echo_server in the background, its output shown indented; sets server_pid, port.
fail() { die "$@"; }
# shellcheck source=lib/process.sh
source scripts/lib/process.sh

start_server() {  # HOST:PORT LOG
  "$server_bin" --listen "$1" --threads 2 >"$2" 2>&1 &
  server_pid=$!
  wait_for_lines "$2" '^echo_server listening on ' 1 10
  port=$(sed -n 's/^echo_server listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$2" | head -1)
  [[ -n "$port" ]] || die "no port in echo_server's first line"
  timeout 60 tail --pid="$server_pid" -n +1 -f "$2" | sed -u 's/^/    /' &
}

echo
say "echo_server and echo_client: a crash, a restart, a graceful shutdown"
start_server 127.0.0.1:0 "$dir/server1.log"
say "client: 30 calls, one every 100 ms, 1 s timeout each"
"$client_bin" --target "127.0.0.1:$port" --message hello --count 30 --interval 100ms \
  --timeout 1s >"$dir/client.log" 2>&1 &
client_pid=$!
timeout 60 tail --pid="$client_pid" -n +1 -f "$dir/client.log" | sed -u 's/^/    /' &

wait_for_lines "$dir/client.log" '^reply ' 8 15
say "killing echo_server (SIGKILL)"
kill -KILL "$server_pid"
wait_exit "$server_pid" 10 "killed echo_server"
wait_for_lines "$dir/client.log" '^call [0-9]+ failed: ' 8 15
say "restarting echo_server on port $port"
start_server "127.0.0.1:$port" "$dir/server2.log"

wait_exit "$client_pid" 30 echo_client
client_pid=""
ok=$(count_lines "$dir/client.log" '^reply [0-9]+: hello$')
failed=$(count_lines "$dir/client.log" '^call [0-9]+ failed: ')
unavailable=$(count_lines "$dir/client.log" '^call [0-9]+ failed: UNAVAILABLE: ')
last_failed=$(sed -n 's/^call \([0-9]*\) failed: .*/\1/p' "$dir/client.log" | sort -n | tail -1)
last_ok=$(sed -n 's/^reply \([0-9]*\): .*/\1/p' "$dir/client.log" | sort -n | tail -1)
say "echo_client exited $exit_code (1: some calls failed, as expected)"

say "stopping echo_server (SIGTERM)"
kill -TERM "$server_pid"
wait_exit "$server_pid" 15 echo_server
server_pid=""
sleep 0.2  # lets the output tail print the server's last line

((ok + failed == 30)) || die "$((ok + failed)) of 30 calls reported"
((failed > 0 && unavailable == failed)) || die "want UNAVAILABLE failures only, got $failed failed, $unavailable UNAVAILABLE"
((${last_ok:-0} > ${last_failed:-0})) || die "no call succeeded after the restart"
grep -q '^echo_server drained [0-9]* calls, exiting$' "$dir/server2.log" || die "no drain line"
((exit_code == 0)) || die "echo_server exited $exit_code after SIGTERM"
say "$ok calls ok, $failed failed while the server was down, server drained and exited 0"
