//! The real `chat` app, run through the runtime with its writes applied to
//! an in-memory state between calls, as a node applies them between txs,
//! and with several callers.

use conclave_runtime::{App, Call, Outcome, Runtime};
use serde_json::{json, Value};

use crate::common::{runtime, MemState};

const ALICE: [u8; 32] = [0xa1; 32];
const BOB: [u8; 32] = [0xb0; 32];
const ANONYMOUS: [u8; 32] = [0; 32];

struct Chat {
    rt: Runtime,
    app: App,
    state: MemState,
    height: u64,
}

fn hex(id: &[u8; 32]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

impl Chat {
    fn new() -> Self {
        let rt = runtime();
        let app = rt.load(conclave_apps::CHAT).expect("chat loads");
        Self {
            rt,
            app,
            state: MemState::default(),
            height: 0,
        }
    }

    fn call(&self, caller: [u8; 32], method: &str, args: &[u8], read_only: bool) -> Outcome {
        let call = Call {
            method,
            args,
            caller,
            context_id: [9; 32],
            block_height: self.height,
            block_time_ms: 1_700_000_000_000 + self.height,
            members: &[ALICE, BOB],
            read_only,
        };
        self.rt
            .call(&self.app, call, &self.state)
            .expect("no host failure")
    }

    /// A state-changing call in the next block; its writes are applied if
    /// it succeeded.
    fn tx_raw(&mut self, caller: [u8; 32], method: &str, args: &[u8]) -> Outcome {
        self.height += 1;
        let outcome = self.call(caller, method, args, false);
        if outcome.is_ok() {
            self.state.apply(&outcome);
        }
        outcome
    }

    fn tx(&mut self, caller: [u8; 32], method: &str, args: Value) -> Outcome {
        self.tx_raw(caller, method, args.to_string().as_bytes())
    }

    /// A call that must succeed; its JSON output.
    fn ok(&mut self, caller: [u8; 32], method: &str, args: Value) -> Value {
        let outcome = self.tx(caller, method, args);
        json_of(&outcome)
    }

    /// A call that must fail; its error, and the state must not change.
    fn err(&mut self, caller: [u8; 32], method: &str, args: &[u8]) -> String {
        let before = self.state.clone();
        let outcome = self.tx_raw(caller, method, args);
        let err = match outcome.result {
            Ok(out) => panic!(
                "{method} {} succeeded: {}",
                String::from_utf8_lossy(args),
                String::from_utf8_lossy(&out)
            ),
            Err(e) => e.to_string(),
        };
        assert!(outcome.events.is_empty());
        assert_eq!(self.state, before, "a failed call changes nothing");
        err
    }

    fn view_raw(&self, caller: [u8; 32], method: &str, args: &[u8]) -> Outcome {
        self.call(caller, method, args, true)
    }

    fn view(&self, caller: [u8; 32], method: &str, args: Value) -> Value {
        json_of(&self.view_raw(caller, method, args.to_string().as_bytes()))
    }

    fn view_err(&self, caller: [u8; 32], method: &str, args: &[u8]) -> String {
        match self.view_raw(caller, method, args).result {
            Ok(out) => panic!("{method} succeeded: {}", String::from_utf8_lossy(&out)),
            Err(e) => e.to_string(),
        }
    }
}

fn json_of(outcome: &Outcome) -> Value {
    match &outcome.result {
        Ok(out) => serde_json::from_slice(out).expect("output is JSON"),
        Err(e) => panic!("call failed: {e:?}"),
    }
}

fn seqs(page: &Value, field: &str) -> Vec<u64> {
    page[field]
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| m["seq"].as_u64().expect("seq"))
        .collect()
}

#[test]
fn post_stores_author_height_time_and_seq_and_emits_an_event() {
    let mut chat = Chat::new();
    assert_eq!(
        chat.view(ALICE, "messages", json!({})),
        json!({"messages": [], "total": 0})
    );
    let outcome = chat.tx(ALICE, "post", json!({"text": "hello, \"world\" ✓"}));
    assert_eq!(json_of(&outcome), json!({"seq": 1}));
    let message = json!({
        "seq": 1,
        "author": hex(&ALICE),
        "height": 1,
        "time_ms": 1_700_000_000_001u64,
        "text": "hello, \"world\" ✓",
    });
    assert_eq!(outcome.events.len(), 1);
    assert_eq!(outcome.events[0].name, "posted");
    assert_eq!(
        serde_json::from_slice::<Value>(&outcome.events[0].data).unwrap(),
        message
    );
    assert_eq!(
        chat.ok(BOB, "post", json!({"text": "hi"})),
        json!({"seq": 2})
    );

    let page = chat.view(BOB, "messages", json!({}));
    assert_eq!(page["total"], 2);
    assert_eq!(page["messages"][0], message);
    assert_eq!(page["messages"][1]["author"], hex(&BOB));
    assert_eq!(page["messages"][1]["height"], 2);
    // Anyone may read messages, an anonymous view too; empty args are `{}`.
    let anonymous = chat.view_raw(ANONYMOUS, "messages", b"");
    assert_eq!(json_of(&anonymous), page);
    // A view cannot post.
    let err = chat.view_err(ALICE, "post", br#"{"text":"x"}"#);
    assert!(err.contains("read-only"), "{err}");
}

#[test]
fn messages_are_paged_from_the_most_recent() {
    let mut chat = Chat::new();
    for i in 1..=25 {
        chat.ok(ALICE, "post", json!({"text": format!("m{i}")}));
    }
    let recent = chat.view(ALICE, "messages", json!({}));
    assert_eq!(recent["total"], 25);
    assert_eq!(seqs(&recent, "messages"), (6..=25).collect::<Vec<_>>());
    let back = chat.view(ALICE, "messages", json!({"before": 6, "limit": 3}));
    assert_eq!(seqs(&back, "messages"), [3, 4, 5]);
    let start = chat.view(ALICE, "messages", json!({"before": 3, "limit": 10}));
    assert_eq!(seqs(&start, "messages"), [1, 2]);
    assert_eq!(start["messages"][0]["text"], "m1");
    let none = chat.view(ALICE, "messages", json!({"before": 1}));
    assert_eq!(seqs(&none, "messages"), Vec::<u64>::new());
    let forward = chat.view(ALICE, "messages", json!({"after": 22}));
    assert_eq!(seqs(&forward, "messages"), [23, 24, 25]);
    let forward = chat.view(ALICE, "messages", json!({"after": 0, "limit": 2}));
    assert_eq!(seqs(&forward, "messages"), [1, 2]);
    let beyond = chat.view(ALICE, "messages", json!({"after": 25}));
    assert_eq!(seqs(&beyond, "messages"), Vec::<u64>::new());
    let huge = chat.view(ALICE, "messages", json!({"before": u64::MAX, "limit": 1}));
    assert_eq!(seqs(&huge, "messages"), [25]);
    let huge = chat.view(ALICE, "messages", json!({"after": u64::MAX}));
    assert_eq!(seqs(&huge, "messages"), Vec::<u64>::new());
    let all = chat.view(ALICE, "messages", json!({"limit": 100}));
    assert_eq!(seqs(&all, "messages"), (1..=25).collect::<Vec<_>>());
}

#[test]
fn a_page_of_large_messages_fits_in_one_answer() {
    let mut chat = Chat::new();
    // Quotes take two bytes in JSON: the largest messages, 4 KiB encoded.
    let text = "\"".repeat(2048);
    for _ in 0..30 {
        chat.ok(ALICE, "post", json!({ "text": text }));
    }
    let page = chat.view(ALICE, "messages", json!({"limit": 100}));
    let got = seqs(&page, "messages");
    assert!(got.len() >= 10 && got.len() < 30, "{}", got.len());
    assert_eq!(*got.last().unwrap(), 30, "the most recent are kept");
    assert!(got.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(page["messages"][0]["text"], text);
    let page = chat.view(ALICE, "messages", json!({"after": 0, "limit": 100}));
    assert_eq!(seqs(&page, "messages")[0], 1);
}

#[test]
fn notes_are_seen_by_their_author_only() {
    let mut chat = Chat::new();
    assert_eq!(
        chat.ok(ALICE, "note", json!({"text": "alice 1"})),
        json!({"seq": 1})
    );
    assert_eq!(
        chat.ok(BOB, "note", json!({"text": "bob 1"})),
        json!({"seq": 1})
    );
    let outcome = chat.tx(ALICE, "note", json!({"text": "alice 2"}));
    assert_eq!(json_of(&outcome), json!({"seq": 2}));
    assert!(outcome.events.is_empty(), "a note emits no event");

    let alice = chat.view(ALICE, "notes", json!({}));
    assert_eq!(alice["total"], 2);
    let texts: Vec<_> = alice["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["alice 1", "alice 2"]);
    assert_eq!(alice["notes"][1]["height"], 3);
    assert_eq!(alice["notes"][1]["seq"], 2);
    let bob = chat.view(BOB, "notes", json!({}));
    assert_eq!(bob["total"], 1);
    assert_eq!(bob["notes"][0]["text"], "bob 1");
    assert!(!bob.to_string().contains("alice"));
    // A member without notes sees none; paging works as for messages.
    assert_eq!(
        chat.view([0xcc; 32], "notes", json!({})),
        json!({"notes": [], "total": 0})
    );
    let page = chat.view(ALICE, "notes", json!({"after": 1, "limit": 5}));
    assert_eq!(seqs(&page, "notes"), [2]);
    // Notes are not messages.
    assert_eq!(chat.view(ALICE, "messages", json!({}))["total"], 0);

    // An anonymous view is refused, empty args or not.
    for args in [&b""[..], b"{}"] {
        let err = chat.view_err(ANONYMOUS, "notes", args);
        assert!(err.contains("anonymous"), "{err}");
    }
    let err = chat.err(ANONYMOUS, "note", br#"{"text":"x"}"#);
    assert!(err.contains("anonymous"), "{err}");
}

#[test]
fn notes_per_member_are_bounded() {
    let mut chat = Chat::new();
    // Fill Alice's count up to the bound directly, as 1000 calls would.
    let mut count_key = b"n#".to_vec();
    count_key.extend_from_slice(&ALICE);
    chat.state
        .0
        .insert(count_key, 999u64.to_le_bytes().to_vec());
    assert_eq!(
        chat.ok(ALICE, "note", json!({"text": "last"})),
        json!({"seq": 1000})
    );
    let err = chat.err(ALICE, "note", br#"{"text":"one too many"}"#);
    assert!(err.contains("at most 1000 notes"), "{err}");
    chat.ok(BOB, "note", json!({"text": "bob is not bounded by alice"}));
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let mut chat = Chat::new();
    chat.ok(ALICE, "post", json!({"text": "first"}));
    chat.ok(ALICE, "note", json!({"text": "first"}));
    let long = "x".repeat(2049);
    let at_limit = "é".repeat(1024); // 2048 bytes
    for method in ["post", "note"] {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (br#"{"text":""}"#.to_vec(), "empty"),
            (br#"{"text":"  \n\t "}"#.to_vec(), "empty"),
            (
                json!({ "text": long }).to_string().into_bytes(),
                "limit is 2048",
            ),
            (
                json!({ "text": format!("{at_limit}x") })
                    .to_string()
                    .into_bytes(),
                "2049 bytes",
            ),
            (b"not json".to_vec(), "invalid JSON"),
            (b"".to_vec(), "invalid JSON"),
            (br#"{"text":1}"#.to_vec(), "invalid JSON"),
            (br#"{"txt":"a"}"#.to_vec(), "invalid JSON"),
            (br#"{"text":"a","extra":1}"#.to_vec(), "invalid JSON"),
            // Invalid UTF-8 inside the string, and a lone surrogate.
            (b"{\"text\":\"\xff\xfe\"}".to_vec(), "invalid JSON"),
            (br#"{"text":"\ud800"}"#.to_vec(), "invalid JSON"),
        ];
        for (args, want) in cases {
            let err = chat.err(ALICE, method, &args);
            assert!(
                err.contains(want),
                "{method} {}: {err}",
                String::from_utf8_lossy(&args)
            );
        }
        let ok = chat.ok(ALICE, method, json!({ "text": at_limit }));
        assert_eq!(ok, json!({"seq": 2}), "{method} at the limit");
    }
    for (args, want) in [
        (&br#"{"limit":0}"#[..], "at least 1"),
        (br#"{"limit":101}"#, "at most 100"),
        (br#"{"before":2,"after":1}"#, "not both"),
        (br#"{"from":1}"#, "invalid JSON"),
        (b"[1]", "invalid JSON"),
    ] {
        let err = chat.view_err(ALICE, "messages", args);
        assert!(
            err.contains(want),
            "{}: {err}",
            String::from_utf8_lossy(args)
        );
    }
    for (args, want) in [
        (&br#"{"limit":0}"#[..], "at least 1"),
        (br#"{"before":2}"#, "invalid JSON"),
    ] {
        let err = chat.view_err(ALICE, "notes", args);
        assert!(
            err.contains(want),
            "{}: {err}",
            String::from_utf8_lossy(args)
        );
    }
}
