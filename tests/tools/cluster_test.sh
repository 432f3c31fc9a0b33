#!/usr/bin/env bash
# Real processes on 127.0.0.1 form a gossip cluster (examples/cluster/cluster_node); one is
# killed with SIGKILL and `meshctl members` on every other must show it dead within the
# bound; one leaves with SIGTERM and the others must show it left. Registered with ctest in
# examples/CMakeLists.txt. Every wait is bounded; on failure the logs are printed.
#   cluster_test.sh MESHCTL CLUSTER_NODE
set -euo pipefail
meshctl_bin=$1 node_bin=$2

# The local preset (config.cc): probe interval 1 s, suspicion_mult 3. With 5 members the
# suspicion timeout is 3 s with one confirmation and 18 s (its maximum) with none; a probe
# reaches the dead node within 4 intervals, fails after 1 more, and the news spreads in about
# 1 s: 24 s at worst. 30 s leaves room for a loaded CI machine.
readonly kDeadBound=30
readonly kNodes=5

dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for log in "$dir"/*.log "$dir"/out "$dir"/err; do
    [[ -f "$log" ]] && { echo "--- ${log##*/}"; cat "$log"; } >&2
  done
  exit 1
}

# shellcheck source=../../scripts/lib/process.sh
source "$(dirname "$0")/../../scripts/lib/process.sh"

addrs=()
start_node() {  # INDEX [FLAGS...]
  local i=$1
  shift
  "$node_bin" --listen 127.0.0.1:0 --node-id "node-$i" --tags "index=$i" "$@" \
    >"$dir/node-$i.log" 2>&1 &
  pids[i]=$!
  wait_for_lines "$dir/node-$i.log" '^cluster_node node-[0-9]+ listening on ' 1 10
  addrs[i]=$(sed -n 's/^cluster_node node-[0-9]* listening on \(.*\)$/\1/p' "$dir/node-$i.log")
  [[ -n "${addrs[i]}" ]] || fail "node-$i printed no address"
}

# The state `meshctl members` on node I gives node-J, or "" if it does not list it.
state_of() {  # I J
  timeout 10 "$meshctl_bin" members "${addrs[$1]}" >"$dir/out" 2>"$dir/err" || return 0
  awk -v id="node-$2" '$1 == id { print ($2 == "*") ? $4 : $3 }' "$dir/out"
}

# Waits until every node in LIST shows node-J in STATE; prints the seconds it took.
wait_state() {  # J STATE BOUND LIST...
  local j=$1 want=$2 bound=$3
  shift 3
  local start=$SECONDS
  for i in "$@"; do
    until [[ "$(state_of "$i" "$j")" == "$want" ]]; do
      ((SECONDS - start <= bound)) ||
        fail "node-$i does not show node-$j $want after ${bound}s (shows '$(state_of "$i" "$j")')"
      sleep 0.2
    done
  done
  echo $((SECONDS - start))
}

start_node 1
for ((i = 2; i <= kNodes; i++)); do start_node "$i" --join "${addrs[1]}"; done
for ((j = 1; j <= kNodes; j++)); do wait_state "$j" alive 15 $(seq 1 $kNodes) >/dev/null; done
echo "cluster of $kNodes formed"

kill -KILL "${pids[kNodes]}"
took=$(wait_state "$kNodes" dead "$kDeadBound" $(seq 1 $((kNodes - 1))))
echo "node-$kNodes (SIGKILL) dead on every other node after ${took}s (bound ${kDeadBound}s)"

leaver=$((kNodes - 1))
kill -TERM "${pids[leaver]}"
took=$(wait_state "$leaver" left 10 $(seq 1 $((leaver - 1))))
wait_exit "${pids[leaver]}" 10 cluster_node
grep -q "^cluster_node node-$leaver left$" "$dir/node-$leaver.log" ||
  fail "node-$leaver did not say it left"
echo "node-$leaver (SIGTERM) left on every other node after ${took}s"

# The survivors still see each other alive.
for ((j = 1; j < leaver; j++)); do wait_state "$j" alive 5 $(seq 1 $((leaver - 1))) >/dev/null; done
echo "PASS"
