//! Builds the guest workspace (`apps/Cargo.toml`) for wasm32-unknown-unknown
//! and copies each app's `.wasm` into `OUT_DIR` for `include_bytes!`.
//!
//! The nested build always uses the guest workspace's release profile and its
//! own target directory (`<target dir>/conclave-wasm`), which survives across
//! host builds and profiles, so CI and repeated `cargo test` runs reuse it.
//! Settings of the outer (host) build that would leak into the guest build
//! (rustflags, target, target dir, wrappers, jobserver) are cleared, and
//! paths are remapped so the wasm bytes (and so the app hashes) do not depend
//! on where the repository or the cargo home sits.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `(name, crate directory under apps/, artifact stem)`: add new apps here
/// and in `src/lib.rs`.
const APPS: &[(&str, &str, &str)] = &[
    ("kv", "kv", "conclave_app_kv"),
    ("faults", "faults", "conclave_app_faults"),
    ("dao", "dao", "conclave_app_dao"),
    ("chat", "chat", "conclave_app_chat"),
];
/// Guest crates that are not apps but that the apps depend on.
const SHARED_CRATES: &[&str] = &["sdk"];
const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Environment of the outer build that must not reach the nested one.
const LEAKY_VARS: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
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

fn main() {
    if let Err(err) = run() {
        // A build script reports failure by exiting non-zero; cargo shows stderr.
        eprintln!("error: conclave-apps: {err}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(var("CARGO_MANIFEST_DIR")?);
    let apps_dir = manifest_dir
        .parent()
        .ok_or("apps/bundle has no parent directory")?
        .to_path_buf();
    let out_dir = PathBuf::from(var("OUT_DIR")?);

    for file in ["Cargo.toml", "Cargo.lock"] {
        rerun_if_changed(&apps_dir.join(file));
    }
    for dir in SHARED_CRATES
        .iter()
        .chain(APPS.iter().map(|(_, dir, _)| dir))
    {
        rerun_if_changed(&apps_dir.join(dir).join("Cargo.toml"));
        rerun_if_changed(&apps_dir.join(dir).join("src"));
    }
    println!("cargo:rerun-if-env-changed=CARGO_HOME");

    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    ensure_wasm_target(&rustc)?;

    let target_dir = wasm_target_dir(&out_dir);
    let mut command = Command::new(&cargo);
    for name in LEAKY_VARS {
        command.env_remove(name);
    }
    command
        .current_dir(&apps_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", remap_flags(&apps_dir))
        .args(["build", "--release", "--locked", "--target", WASM_TARGET])
        .arg("--manifest-path")
        .arg(apps_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    let status = command
        .status()
        .map_err(|err| format!("cannot run {}: {err}", Path::new(&cargo).display()))?;
    if !status.success() {
        return Err(format!(
            "building the guest apps failed ({status}); run `cargo build --release \
             --target {WASM_TARGET}` in {} to see why",
            apps_dir.display()
        ));
    }

    let artifacts = target_dir.join(WASM_TARGET).join("release");
    for (name, _, stem) in APPS {
        let from = artifacts.join(format!("{stem}.wasm"));
        let to = out_dir.join(format!("{name}.wasm"));
        std::fs::copy(&from, &to)
            .map_err(|err| format!("cannot copy {} to {}: {err}", from.display(), to.display()))?;
    }
    Ok(())
}

fn var(name: &str) -> Result<OsString, String> {
    env::var_os(name).ok_or_else(|| format!("cargo did not set {name}"))
}

fn rerun_if_changed(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}

/// `<host target dir>/conclave-wasm`, found from `OUT_DIR`, which cargo puts
/// at `<target dir>[/<triple>]/<profile>/build/<pkg>-<hash>/out`.
fn wasm_target_dir(out_dir: &Path) -> PathBuf {
    match out_dir.ancestors().nth(4) {
        Some(target_dir) => target_dir.join("conclave-wasm"),
        None => out_dir.join("conclave-wasm"),
    }
}

/// Rustflags (in `CARGO_ENCODED_RUSTFLAGS` form) that strip machine-specific
/// path prefixes from the wasm (panic locations name source files).
fn remap_flags(apps_dir: &Path) -> OsString {
    let mut prefixes = vec![(apps_dir.to_path_buf(), "/conclave/apps")];
    if let Some(home) = cargo_home() {
        prefixes.push((home, "/cargo"));
    }
    let mut flags = OsString::new();
    for (i, (from, to)) in prefixes.iter().enumerate() {
        if i > 0 {
            flags.push("\x1f");
        }
        flags.push("--remap-path-prefix=");
        flags.push(from.as_os_str());
        flags.push("=");
        flags.push(to);
    }
    flags
}

fn cargo_home() -> Option<PathBuf> {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
}

/// Makes sure the rustc in use has the wasm32 standard library, installing it
/// with rustup once if it is missing.
fn ensure_wasm_target(rustc: &OsString) -> Result<(), String> {
    if has_wasm_target(rustc) {
        return Ok(());
    }
    println!("cargo:warning=installing the {WASM_TARGET} target with rustup");
    let installed = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .map(|status| status.success())
        .unwrap_or(false);
    if installed && has_wasm_target(rustc) {
        return Ok(());
    }
    Err(format!(
        "the {WASM_TARGET} target is not installed for this toolchain and \
         `rustup target add {WASM_TARGET}` failed; install it and build again"
    ))
}

fn has_wasm_target(rustc: &OsString) -> bool {
    let Ok(output) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&output.stdout);
    Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(WASM_TARGET)
        .join("lib")
        .is_dir()
}
