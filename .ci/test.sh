#!/usr/bin/env bash
# The README's second command: set up and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/conclave/target}"
cargo test --workspace "$@"
# The NEAR contract is its own workspace (contracts/near/Cargo.toml). Its
# tests run the `conclave` binary against their NEAR node
# (contracts/near/wasm/tests/it/cli.rs):
# built here, into the same target directory.
cargo build -p conclave-node --bin conclave
cargo test --manifest-path contracts/near/Cargo.toml "$@"
