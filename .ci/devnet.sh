#!/usr/bin/env bash
# The README's first command: set up, build, and start a local Conclave
# network with a `kv` context. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/conclave/target}"
# The dev profile builds dependencies optimised (see Cargo.toml) and shares
# the test build's artifacts, so the two README commands build once.
cargo build -p conclave-node --bin conclave
exec "$CARGO_TARGET_DIR/debug/conclave" --home "${CONCLAVE_HOME:-$PWD/.conclave}" devnet "$@"
