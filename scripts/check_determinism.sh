#!/usr/bin/env bash
# Fails if code outside runtime/ and transport/ reaches the real clock, sleeps, draws
# unseeded randomness, starts a thread, uses an Asio timer or resolver, or opens a socket
# (DESIGN.md principle 2): any of these silently breaks simulation determinism.
#   scripts/check_determinism.sh [ROOT]     checks ROOT/src, ROOT/include and ROOT/apps
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"

# The timer names count as words of their own: a member called x.deadline_timer is fine.
pattern='std::chrono::[a-z_]*_clock::now|sleep_for|(^|[^_a-zA-Z0-9:.>])rand\(\)|std::random_device|std::thread([^_a-zA-Z]|$)|(^|[^_a-zA-Z0-9.>])(steady|system|deadline|high_resolution)_timer|ip::tcp::(socket|acceptor|resolver)|ip::udp'

dirs=()
for d in src include apps tools; do
  [[ -d "$root/$d" ]] && dirs+=("$root/$d")
done
((${#dirs[@]})) || { echo "check_determinism: no source folders under $root" >&2; exit 2; }

# Layer folders allowed to touch the machine: runtime/ and transport/ (src/<layer>/ and
# include/meshrpc/<layer>/).
hits=$(grep -rnE --include='*.h' --include='*.hpp' --include='*.cc' --include='*.cpp' \
         "$pattern" "${dirs[@]}" \
       | grep -vE "^$root/(src|include/meshrpc)/(runtime|transport)/" \
       | grep -vE '^[^:]+:[0-9]+:\s*//' || true)

if [[ -n "$hits" ]]; then
  echo "check_determinism: nondeterministic calls outside runtime/ and transport/:" >&2
  echo "$hits" | sed "s|^$root/||" >&2
  echo "Use Env (now, timers, random_u64, executors) and transport/ instead." >&2
  exit 1
fi
echo "check_determinism: clean (${dirs[*]#$root/})"
