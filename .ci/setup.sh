#!/usr/bin/env bash
# Installs what building and testing Conclave needs on a fresh Debian
# machine with rustup: clang (RocksDB's bindings), the wasm32 target (the
# apps), Node.js packages (solc and anvil for the Ethereum contract, binaryen's
# wasm-opt for the NEAR contract).
# Idempotent: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 || need_apt+=(libclang-dev)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  echo "setup: adding the wasm32-unknown-unknown target" >&2
  rustup target add wasm32-unknown-unknown
fi

if [ -f contracts/evm/package.json ] && [ ! -d contracts/evm/node_modules ]; then
  echo "setup: installing contracts/evm npm packages" >&2
  (cd contracts/evm && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ -f contracts/near/wasm/package.json ] && [ ! -d contracts/near/wasm/node_modules ]; then
  echo "setup: installing contracts/near/wasm npm packages" >&2
  (cd contracts/near/wasm && npm ci --no-audit --no-fund --loglevel=error)
fi
