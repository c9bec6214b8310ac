//! The real `kv` app, run through the runtime with its writes applied to an
//! in-memory state between calls, as a node applies them between txs.

use conclave_runtime::{App, Failure, Outcome, Runtime};
use serde_json::{json, Value};

use crate::common::{call, runtime, view, MemState};

struct Kv {
    rt: Runtime,
    app: App,
    state: MemState,
}

impl Kv {
    fn new() -> Self {
        let rt = runtime();
        let app = rt.load(conclave_apps::KV).expect("kv loads");
        Self {
            rt,
            app,
            state: MemState::default(),
        }
    }

    /// Runs a state-changing call and applies its writes if it succeeded.
    fn tx(&mut self, method: &str, args: Value) -> Outcome {
        let args = args.to_string();
        let outcome = self
            .rt
            .call(&self.app, call(method, args.as_bytes()), &self.state)
            .expect("no host failure");
        if outcome.is_ok() {
            self.state.apply(&outcome);
        }
        outcome
    }

    /// Runs a read-only call and decodes its JSON output.
    fn query(&self, method: &str, args: Value) -> Value {
        let args = args.to_string();
        let outcome = self
            .rt
            .call(&self.app, view(method, args.as_bytes()), &self.state)
            .expect("no host failure");
        let out = outcome.result.expect("query succeeds");
        serde_json::from_slice(&out).expect("output is JSON")
    }

    fn set(&mut self, key: &str, value: &str) {
        let outcome = self.tx("set", json!({"key": key, "value": value}));
        assert!(outcome.is_ok(), "set {key}: {:?}", outcome.result);
    }

    fn list_keys(&self, args: Value) -> Vec<String> {
        match self.query("list", args) {
            Value::Array(entries) => entries
                .iter()
                .map(|entry| entry["key"].as_str().unwrap_or_default().to_owned())
                .collect(),
            other => panic!("list returned {other}"),
        }
    }
}

#[test]
fn set_get_delete_round_trip() {
    let mut kv = Kv::new();
    assert_eq!(
        kv.query("get", json!({"key": "a"})),
        json!({"key": "a", "value": null})
    );

    let outcome = kv.tx("set", json!({"key": "a", "value": "1"}));
    assert!(outcome.is_ok());
    assert_eq!(outcome.events.len(), 1);
    assert_eq!(outcome.events[0].name, "set");
    assert_eq!(
        serde_json::from_slice::<Value>(&outcome.events[0].data).expect("event data is JSON"),
        json!({"key": "a"})
    );
    assert_eq!(
        kv.query("get", json!({"key": "a"})),
        json!({"key": "a", "value": "1"})
    );

    kv.set("a", "2");
    assert_eq!(
        kv.query("get", json!({"key": "a"})),
        json!({"key": "a", "value": "2"})
    );

    let outcome = kv.tx("delete", json!({"key": "a"}));
    let out: Value =
        serde_json::from_slice(outcome.result.as_deref().expect("delete succeeds")).expect("JSON");
    assert_eq!(out, json!({"key": "a", "deleted": true}));
    assert_eq!(outcome.events[0].name, "delete");
    assert_eq!(
        kv.query("get", json!({"key": "a"})),
        json!({"key": "a", "value": null})
    );
    let outcome = kv.tx("delete", json!({"key": "a"}));
    assert!(outcome.events.is_empty());
    // Nothing but the (empty) index is left behind.
    assert!(kv.state.0.keys().all(|key| key.starts_with(b"\0i/")));
}

#[test]
fn list_is_sorted_by_key_and_filtered_by_prefix() {
    let mut kv = Kv::new();
    for key in ["b/2", "a/1", "b/1", "c", "b/10", "ba"] {
        kv.set(key, &format!("value of {key}"));
    }
    assert_eq!(
        kv.list_keys(json!({"prefix": "b/"})),
        ["b/1", "b/10", "b/2"]
    );
    assert_eq!(
        kv.list_keys(json!({"prefix": ""})),
        ["a/1", "b/1", "b/10", "b/2", "ba", "c"]
    );
    assert_eq!(
        kv.list_keys(json!({"prefix": "b", "limit": 2})),
        ["b/1", "b/10"]
    );
    assert_eq!(
        kv.list_keys(json!({"prefix": "b", "after": "b/10"})),
        ["b/2", "ba"]
    );
    assert!(kv.list_keys(json!({"prefix": "zzz"})).is_empty());
    assert_eq!(
        kv.query("list", json!({"prefix": "c"})),
        json!([{"key": "c", "value": "value of c"}])
    );
}

#[test]
fn the_index_stays_sorted_across_page_splits_and_deletes() {
    let mut kv = Kv::new();
    // 1,500 keys of ~24 bytes span several 16 KiB index pages. Insert them in
    // a scrambled (but fixed) order.
    let count = 1_500u64;
    let key = |i: u64| format!("user/{:06}/profile-key", i);
    for n in 0..count {
        let i = (n * 7_919) % count;
        kv.set(&key(i), "v");
    }
    let pages = kv
        .state
        .0
        .keys()
        .filter(|k| k.starts_with(b"\0i/p/"))
        .count();
    assert!(
        pages > 1,
        "expected the index to split, got {pages} page(s)"
    );

    let mut expected: Vec<String> = (0..count).map(key).collect();
    expected.sort();
    let mut listed = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut args = json!({"prefix": "user/", "limit": 1000});
        if let Some(after) = &after {
            args["after"] = json!(after);
        }
        let page = kv.list_keys(args);
        let Some(last) = page.last().cloned() else {
            break;
        };
        listed.extend(page);
        after = Some(last);
    }
    assert_eq!(listed, expected);

    // Delete every other key, in another order; the rest stay listed.
    for n in 0..count {
        let i = (n * 4_999) % count;
        if i.is_multiple_of(2) {
            assert!(kv.tx("delete", json!({"key": key(i)})).is_ok());
        }
    }
    let odd: Vec<String> = (0..count).filter(|i| i % 2 == 1).map(key).collect();
    assert_eq!(
        kv.list_keys(json!({"prefix": "user/000", "limit": 1000})),
        odd.iter()
            .filter(|k| k.starts_with("user/000"))
            .cloned()
            .collect::<Vec<_>>()
    );
}

#[test]
fn bad_arguments_abort_with_a_clear_message() {
    let mut kv = Kv::new();
    let cases = [
        ("set", json!({"key": "a"}), "invalid JSON arguments"),
        (
            "set",
            json!({"key": "", "value": "x"}),
            "key must not be empty",
        ),
        (
            "set",
            json!({"key": "k".repeat(257), "value": "x"}),
            "key is 257 bytes",
        ),
        (
            "set",
            json!({"key": "a", "value": "x".repeat(40_000)}),
            "value is 40000 bytes",
        ),
        (
            "list",
            json!({"prefix": "", "limit": 5000}),
            "limit is 5000",
        ),
        ("get", json!({"nope": 1}), "invalid JSON arguments"),
    ];
    for (method, args, expected) in cases {
        match kv.tx(method, args.clone()).result {
            Err(Failure::Abort(msg)) => assert!(msg.contains(expected), "{args}: {msg}"),
            other => panic!("{method} {args}: expected an abort, got {other:?}"),
        }
    }
    assert!(kv.state.0.is_empty(), "failed calls changed the state");
}

#[test]
fn set_in_a_read_only_call_is_a_violation() {
    let kv = Kv::new();
    let args = json!({"key": "a", "value": "1"}).to_string();
    let outcome = kv
        .rt
        .call(&kv.app, view("set", args.as_bytes()), &kv.state)
        .expect("no host failure");
    assert_eq!(outcome.result, Err(Failure::ReadOnlyViolation));
}
