#!/usr/bin/env bash
# Watches the test binaries of a run: one that has run longer than
# CONCLAVE_TEST_HANG_SECS (default 1200; the slowest, tests/it, takes about
# 5 minutes) is taken as hung. Prints the backtrace of each of its threads
# (with gdb, where it is installed) and kills it, so that the run fails
# with where it hung instead of running into CI's time limit in silence.
#
#   bash .ci/watchdog.sh TARGET_DIR &     # .ci/run starts and stops it
set -u
target=$(cd "$1" && pwd)
limit=${CONCLAVE_TEST_HANG_SECS:-1200}
while sleep 10; do
  for pid in $(pgrep -f "^$target/debug/deps/"); do
    age=$(ps -o etimes= -p "$pid" | tr -d ' ')
    [ "${age:-0}" -gt "$limit" ] || continue
    echo "watchdog: hung for ${age}s: $(tr '\0' ' ' < "/proc/$pid/cmdline")" >&2
    if command -v gdb > /dev/null; then
      echo "watchdog: its threads:" >&2
      timeout 300 gdb -p "$pid" -batch -ex "thread apply all bt 40" 2>&1 |
        grep -v '^\[New LWP\|^\[Thread debugging' >&2
    fi
    kill -9 "$pid"
  done
done
