//! Loading modules: what is refused, and the compile cache.

use conclave_runtime::{app_hash, Error, Limits, Runtime};

use crate::common::{runtime, wasm};

fn load_err(runtime: &Runtime, wat: &str) -> Error {
    match runtime.load(&wasm(wat)) {
        Ok(app) => panic!("module was accepted: {app:?}"),
        Err(err) => err,
    }
}

#[test]
fn an_unknown_host_function_is_refused() {
    let err = load_err(
        &runtime(),
        r#"(module (import "env" "syscall" (func)) (memory (export "memory") 1))"#,
    );
    assert!(
        matches!(&err, Error::UnknownImport { module, name } if module == "env" && name == "syscall"),
        "{err}"
    );
    assert!(err.to_string().contains("env::syscall"), "{err}");
}

#[test]
fn imports_from_other_modules_are_refused() {
    let err = load_err(
        &runtime(),
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
                   (memory (export "memory") 1))"#,
    );
    assert!(matches!(err, Error::UnknownImport { .. }), "{err}");
    let err = load_err(
        &runtime(),
        r#"(module (import "env" "memory" (memory 1)) (memory (export "memory") 1))"#,
    );
    assert!(
        matches!(err, Error::UnknownImport { .. } | Error::InvalidModule(_)),
        "{err}"
    );
}

#[test]
fn a_host_function_with_the_wrong_signature_is_refused() {
    let err = load_err(
        &runtime(),
        r#"(module (import "env" "log" (func (param i32))) (memory (export "memory") 1))"#,
    );
    match err {
        Error::ImportSignature {
            name,
            expected,
            found,
        } => {
            assert_eq!(name, "log");
            assert_eq!(expected, "(i32, i32) -> ()");
            assert_eq!(found, "(i32) -> ()");
        }
        other => panic!("expected a signature error, got {other}"),
    }
}

#[test]
fn the_memory_must_be_exported_and_fit_the_limit() {
    let rt = runtime();
    let err = load_err(&rt, r#"(module (memory 1) (func (export "f")))"#);
    assert!(matches!(err, Error::Memory(_)), "{err}");
    let err = load_err(&rt, r#"(module (memory (export "mem") 1))"#);
    assert!(matches!(err, Error::Memory(_)), "{err}");
    // 1,000 pages = 62.5 MiB > 32 MiB
    let err = load_err(&rt, r#"(module (memory (export "memory") 1000))"#);
    assert!(matches!(err, Error::Memory(_)), "{err}");
}

#[test]
fn threads_and_memory64_are_not_available() {
    let rt = runtime();
    let err = load_err(&rt, r#"(module (memory (export "memory") 1 1 shared))"#);
    assert!(
        matches!(err, Error::InvalidModule(_) | Error::Memory(_)),
        "{err}"
    );
    let err = load_err(&rt, r#"(module (memory (export "memory") i64 1))"#);
    assert!(matches!(err, Error::InvalidModule(_)), "{err}");
}

#[test]
fn text_garbage_and_oversized_modules_are_refused() {
    let rt = runtime();
    let text = br#"(module (memory (export "memory") 1))"#;
    assert!(matches!(rt.load(text), Err(Error::NotWasm)));
    assert!(matches!(
        rt.load(b"\0asm\x01\0\0\0garbage"),
        Err(Error::InvalidModule(_))
    ));
    let small = Runtime::new(Limits {
        max_module_bytes: 64,
        ..Limits::default()
    })
    .expect("valid limits");
    match small.load(conclave_apps::KV) {
        Err(Error::ModuleTooLarge { size, limit }) => {
            assert_eq!((size, limit), (conclave_apps::KV.len(), 64));
        }
        other => panic!("expected ModuleTooLarge, got {other:?}"),
    }
    assert_eq!(small.modules_compiled(), 0);
}

#[test]
fn each_module_is_compiled_once_per_hash() {
    let rt = runtime();
    let first = rt.load(conclave_apps::KV).expect("kv loads");
    let clone = rt.clone();
    let second = clone.load(conclave_apps::KV).expect("kv loads again");
    assert_eq!(first.hash(), second.hash());
    assert_eq!(first.hash(), app_hash(conclave_apps::KV));
    assert_eq!(rt.modules_compiled(), 1);
    assert_eq!(rt.cached_apps(), 1);

    let faults = rt.load(conclave_apps::FAULTS).expect("faults loads");
    assert_ne!(faults.hash(), first.hash());
    assert_eq!(rt.modules_compiled(), 2);
    assert_eq!(rt.cached_apps(), 2);

    // Another runtime has its own cache.
    let other = runtime();
    other.load(conclave_apps::KV).expect("kv loads");
    assert_eq!(other.modules_compiled(), 1);
}

#[test]
fn the_real_apps_expose_their_methods() {
    let rt = runtime();
    let kv = rt.load(conclave_apps::KV).expect("kv loads");
    assert_eq!(kv.methods(), ["delete", "get", "list", "set"]);
    let faults = rt.load(conclave_apps::FAULTS).expect("faults loads");
    assert_eq!(
        faults.methods(),
        ["abort", "hog", "ok", "spin", "trap", "write_then_trap"]
    );
}

#[test]
fn an_app_from_another_runtime_is_refused_without_panicking() {
    let (a, b) = (runtime(), runtime());
    let app = a.load(conclave_apps::FAULTS).expect("faults loads");
    let result = b.call(
        &app,
        crate::common::call("ok", b""),
        &crate::common::MemState::default(),
    );
    assert!(matches!(result, Err(Error::Internal(_))), "{result:?}");
}
