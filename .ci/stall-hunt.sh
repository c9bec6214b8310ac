#!/usr/bin/env bash
# Hunts a stall at 1,000 tx/s (on demand, not part of CI): runs
#   conclave bench --validators 4 --rate 1000 --duration 10 --clients 16
# up to RUNS times (default 25) until one run's p99 latency exceeds
# LIMIT_MS (default 300), and keeps that run's validator logs and homes
# (stores, RocksDB's LOG, WALs) in OUT (default /tmp/stall-hunt). Runs
# that do not stall are summarised and their homes removed.
#
#   bash .ci/stall-hunt.sh [path/to/conclave]
#
# The binary defaults to $CARGO_TARGET_DIR/release/conclave (build it with
# `cargo build --release -p conclave-node`). Needs python3. Then read the
# validators' logs around the slow height: "slow disk sync" warnings name
# the file whose sync held the height up (docs/PERFORMANCE.md, twenty-fifth
# session).
set -euo pipefail

bin="${1:-${CARGO_TARGET_DIR:-target}/release/conclave}"
runs="${RUNS:-25}"
limit="${LIMIT_MS:-300}"
out="${OUT:-/tmp/stall-hunt}"
[ -x "$bin" ] || { echo "no conclave binary at $bin" >&2; exit 2; }
rm -rf "$out" && mkdir -p "$out"

for i in $(seq 1 "$runs"); do
  run="$out/run-$i"
  mkdir -p "$run/logs"
  CONCLAVE_BENCH_LOG_DIR="$run/logs" CONCLAVE_BENCH_KEEP_HOMES=1 \
    "$bin" bench --validators 4 --rate 1000 --duration 10 --clients 16 \
    > "$run/report.json" 2> "$run/stderr.txt" || { echo "run $i failed: $run/stderr.txt" >&2; exit 1; }
  homes="$(sed -n "s/^validators' homes kept in //p" "$run/stderr.txt" | head -n 1)"
  p99="$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
r = r["runs"][0] if "runs" in r else r
print("%d %.1f %.1f %d" % (r["latency_ms_p99"], r["latency_ms_p50"], r["latency_ms_p99"], r["blocks"]))
' "$run/report.json")"
  read -r p99_ms p50 p99_exact blocks <<< "$p99"
  echo "run $i: p50 $p50 ms, p99 $p99_exact ms, $blocks heights" | tee -a "$out/summary"
  if [ "$p99_ms" -gt "$limit" ]; then
    [ -n "$homes" ] && mv "$homes" "$run/homes"
    echo "stall in run $i: logs in $run/logs, homes in $run/homes" | tee -a "$out/summary"
    grep -h "slow disk sync" "$run"/logs/* | sort | tee -a "$out/summary" || true
    exit 0
  fi
  [ -n "$homes" ] && rm -rf "$homes"
  rm -rf "$run"
done
echo "no stall in $runs runs" | tee -a "$out/summary"
