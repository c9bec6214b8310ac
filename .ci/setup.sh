#!/usr/bin/env bash
# Installs what building and testing Conclave needs on a fresh Debian 12
# machine with rustup, and nothing else:
#   - a C and C++ compiler (RocksDB's C++, lz4, blst's assembly), make;
#   - libclang-dev: bindgen (clang-sys) loads the unversioned libclang.so,
#     which only libclang-dev ships; libclang1-14 and libclang-cpp14 (often
#     already on a machine) have versioned names only and do not do;
#   - nodejs + npm, and the npm packages of the contracts: solc and anvil
#     (the Ethereum contract and its tests), binaryen's wasm-opt (the NEAR
#     contract's wasm);
#   - the wasm32-unknown-unknown target (the guest apps, the NEAR contract).
# Each check asks for exactly what the build uses (a package's install
# state, a command, an installed target), never for a look-alike file.
# Idempotent: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# `dpkg -s` says "Status: install ok installed" only for a package that is
# fully installed (not merely known, or removed with its config left).
deb_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
command -v c++ >/dev/null 2>&1 || need_apt+=(g++)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
# bindgen finds libclang through LIBCLANG_PATH when it is set; otherwise it
# needs libclang-dev's unversioned libclang.so.
if [ -z "${LIBCLANG_PATH:-}" ]; then
  deb_installed libclang-dev || need_apt+=(libclang-dev)
fi
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  echo "setup: adding the wasm32-unknown-unknown target" >&2
  rustup target add wasm32-unknown-unknown
fi

# npm ci installs exactly the lock file; a folder left by an interrupted
# install (no marker of a complete one) is redone.
npm_install() {
  local dir=$1
  [ -f "$dir/package.json" ] || return 0
  if [ ! -f "$dir/node_modules/.package-lock.json" ]; then
    echo "setup: installing $dir npm packages" >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
npm_install contracts/evm
npm_install contracts/near/wasm
