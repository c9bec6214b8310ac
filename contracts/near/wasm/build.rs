//! Builds the proxy (`../proxy`) for wasm32-unknown-unknown with the
//! workspace's release profile, then lowers it to the WebAssembly features
//! NEAR's runtime accepts (MVP plus mutable globals) with wasm-opt from the
//! npm package `binaryen` (pinned in package.json, installed here with
//! `npm ci` when missing), as cargo-near does: Rust's wasm32 target now
//! emits sign-extension, bulk-memory and non-trapping float-to-int
//! instructions, which NEAR refuses. The result is `$OUT_DIR/proxy.wasm`.
//!
//! The nested cargo build uses its own target directory
//! (`<target dir>/near-wasm`), kept across host builds and profiles.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const ARTIFACT: &str = "conclave_near_proxy.wasm";

/// Settings of the outer build that must not reach the nested one.
const LEAKY_VARS: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_INCREMENTAL",
    "CARGO_PROFILE_RELEASE_DEBUG",
    "CARGO_PROFILE_RELEASE_OPT_LEVEL",
    "CARGO_PROFILE_RELEASE_LTO",
    "CARGO_PROFILE_RELEASE_PANIC",
    "CARGO_PROFILE_RELEASE_CODEGEN_UNITS",
    "CARGO_PROFILE_RELEASE_STRIP",
    "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
    "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER",
    "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
];

/// wasm-opt arguments: accept what rustc emits, optimise for size, then
/// lower (last, so the optimiser cannot bring the instructions back), and
/// drop the features section so the output declares none.
const LOWER: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-nontrapping-float-to-int",
    "--enable-mutable-globals",
    "--enable-multivalue",
    "--enable-reference-types",
    "-Oz",
    "--signext-lowering",
    "--llvm-memory-copy-fill-lowering",
    "--llvm-nontrapping-fptoint-lowering",
    "--strip-debug",
    "--strip-producers",
    "--strip-target-features",
];

fn main() {
    if let Err(err) = run() {
        eprintln!("error: conclave-near-wasm: {err}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir
        .parent()
        .ok_or("contracts/near/wasm has no parent")?
        .to_path_buf();
    let out_dir = PathBuf::from(var("OUT_DIR")?);
    for path in [
        workspace.join("Cargo.toml"),
        workspace.join("Cargo.lock"),
        workspace.join("proxy/Cargo.toml"),
        workspace.join("proxy/src"),
        manifest_dir.join("package.json"),
        manifest_dir.join("package-lock.json"),
        manifest_dir.join("node_modules/.package-lock.json"),
    ] {
        println!("cargo:rerun-if-changed={}", path.display());
    }

    let target_dir = nested_target_dir(&out_dir);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut build = Command::new(&cargo);
    for name in LEAKY_VARS {
        build.env_remove(name);
    }
    // `--cfg near` (as cargo-near sets it) routes near-sdk's hashing and
    // panics to the host functions; without it they are compiled into the
    // wasm and a panic loses its message.
    build
        .current_dir(&workspace)
        .env("CARGO_ENCODED_RUSTFLAGS", "--cfg\u{1f}near")
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "conclave-near-proxy",
        ])
        .args(["--target", WASM_TARGET])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    run_status(&mut build, "cargo build of the proxy for wasm32")?;

    let raw = target_dir.join(WASM_TARGET).join("release").join(ARTIFACT);
    let wasm_opt = manifest_dir.join("node_modules/binaryen/bin/wasm-opt");
    if !wasm_opt.exists() {
        let sub = if manifest_dir.join("package-lock.json").exists() {
            "ci"
        } else {
            "install"
        };
        run_status(
            Command::new("npm")
                .args([sub, "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&manifest_dir),
            "npm install (binaryen)",
        )?;
    }
    // Kept for the test that shows NEAR refuses the unlowered module.
    let copy = out_dir.join("proxy.raw.wasm");
    std::fs::copy(&raw, &copy).map_err(|e| format!("cannot copy {}: {e}", raw.display()))?;
    let lowered = out_dir.join("proxy.lowered.wasm");
    run_status(
        Command::new("node")
            .arg(&wasm_opt)
            .arg(&raw)
            .args(LOWER)
            .arg("-o")
            .arg(&lowered),
        "wasm-opt lowering",
    )?;
    // A second pass with only MVP features (plus mutable globals) fails if
    // anything was left unlowered.
    let out = out_dir.join("proxy.wasm");
    run_status(
        Command::new("node")
            .arg(&wasm_opt)
            .arg(&lowered)
            .args(["--mvp-features", "--enable-mutable-globals"])
            .arg("-o")
            .arg(&out),
        "wasm-opt MVP validation",
    )?;
    Ok(())
}

fn run_status(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: cannot start ({e}); cargo, node and npm must be on PATH"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed with {status}"))
    }
}

/// `<target dir>/near-wasm`, from `OUT_DIR = <target dir>/[<triple>/]<profile>/build/<pkg>/out`.
fn nested_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(|build| build.parent())
        .and_then(|profile| profile.parent())
        .map(|t| t.join("near-wasm"))
        .unwrap_or_else(|| out_dir.join("near-wasm"))
}

fn var(name: &str) -> Result<String, String> {
    env::var(name).map_err(|_| format!("{name} is not set"))
}
