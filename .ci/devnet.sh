#!/usr/bin/env bash
# The README's first command: set up, build, and start a local Conclave
# network with a `kv` context. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/conclave/target}"
cargo build --release -p conclave-node --bin conclave
exec "$CARGO_TARGET_DIR/release/conclave" --home "${CONCLAVE_HOME:-$PWD/.conclave}" devnet "$@"
