//! Compiles the Solidity sources with solcjs (npm `solc`, pinned in
//! package.json) into `$OUT_DIR/artifacts/<Contract>.json`, installing the
//! npm packages first when `node_modules` is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn run(cmd: &mut Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("{what}: cannot start ({e}); node and npm must be on PATH"));
    assert!(status.success(), "{what} failed with {status}");
}

fn main() {
    let dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("artifacts");

    // node_modules/.package-lock.json is written by npm: if node_modules is
    // removed, the script runs again and reinstalls (tests need anvil).
    for f in [
        "package.json",
        "package-lock.json",
        "scripts/compile.js",
        "node_modules/.package-lock.json",
    ] {
        println!("cargo:rerun-if-changed={}", dir.join(f).display());
    }
    let sol = dir.join("sol");
    println!("cargo:rerun-if-changed={}", sol.display());
    let entries = std::fs::read_dir(&sol).expect("contracts/evm/sol exists");
    for e in entries.flatten() {
        println!("cargo:rerun-if-changed={}", e.path().display());
    }

    if !Path::new(&dir.join("node_modules/solc/package.json")).exists() {
        let sub = if dir.join("package-lock.json").exists() {
            "ci"
        } else {
            "install"
        };
        run(
            Command::new("npm")
                .args([sub, "--no-audit", "--no-fund"])
                .current_dir(&dir),
            "npm install",
        );
    }
    run(
        Command::new("node")
            .arg(dir.join("scripts/compile.js"))
            .arg(&out)
            .current_dir(&dir),
        "solc compile",
    );
}
