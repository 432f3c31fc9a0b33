# Bounded waiting on processes and their logs, shared by scripts/demo.sh and the echo
# process tests. Source it after defining fail() (print why, clean up, exit non-zero).

count_lines() {  # FILE REGEX
  local n
  n=$(grep -cE "$2" "$1" 2>/dev/null) || true
  echo "${n:-0}"
}

# Polls until FILE has COUNT lines matching REGEX; fails after SECONDS_MAX.
wait_for_lines() {  # FILE REGEX COUNT SECONDS_MAX
  local deadline=$((SECONDS + $4))
  while (($(count_lines "$1" "$2") < $3)); do
    ((SECONDS < deadline)) || fail "no $3 lines matching '$2' in ${1##*/} within $4 s"
    sleep 0.05
  done
}

# Waits for PID to exit (killing it after SECONDS_MAX, and failing); sets exit_code.
wait_exit() {  # PID SECONDS_MAX WHAT
  local deadline=$((SECONDS + $2))
  while kill -0 "$1" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      kill -9 "$1" 2>/dev/null || true
      fail "$3 did not exit within $2 s"
    fi
    sleep 0.05
  done
  exit_code=0
  wait "$1" 2>/dev/null || exit_code=$?
}
