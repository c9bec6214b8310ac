//! `conclave anchor deploy|status --chain near` and `conclave relay --chain
//! near` as processes: a one-member `dao` context on a real `conclave`
//! node, the NEAR node of `node/`, a payout voted and relayed.
//!
//! The `conclave` binary comes from the root workspace: `.ci/test.sh`
//! builds it (`cargo build -p conclave-node --bin conclave`) into the same
//! target directory before these tests run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use conclave_bridge_near::PROXY_WASM;

use crate::client::{ALICE, RELAYER};
use crate::fixture::{ACCOUNT, NETWORK};
use crate::node::{key_for, Node, NEAR};

/// How long a step may take before the test fails.
const STEP: Duration = Duration::from_secs(60);

/// `<target dir>/<profile>/conclave`, next to this test's `deps/`.
fn conclave_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir")
        .join("conclave");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p conclave-node --bin conclave` \
         and the same CARGO_TARGET_DIR (.ci/test.sh does)",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A `conclave` node process over its own home; killed when dropped.
struct Conclave {
    home: tempfile_dir::Dir,
    node: Option<Child>,
    relayer: Option<Child>,
}

/// A temporary directory removed when dropped (no tempfile dependency in
/// this workspace).
mod tempfile_dir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "conclave-near-{tag}-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ));
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Conclave {
    fn home(&self) -> &Path {
        &self.home.0
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(conclave_bin());
        c.arg("--home").arg(self.home());
        c
    }

    /// Runs a CLI command; its output, whatever the exit status.
    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run conclave")
    }

    /// Runs a CLI command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "conclave {args:?} failed:\n{}\n{}\nnode log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log("node.log")
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.home().join(name)).unwrap_or_default()
    }

    fn spawn(&self, args: &[&str], log: &str) -> Child {
        let log = std::fs::File::create(self.home().join(log)).expect("log file");
        self.cmd()
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn conclave")
    }

    /// A fresh home with loopback ports, its node started and healthy.
    fn start() -> Self {
        let mut c = Conclave {
            home: tempfile_dir::Dir::new("home"),
            node: None,
            relayer: None,
        };
        let rpc = format!("127.0.0.1:{}", free_port());
        let metrics = format!("127.0.0.1:{}", free_port());
        c.ok(&[
            "init",
            "--rpc-listen",
            &rpc,
            "--metrics-listen",
            &metrics,
            "--p2p-listen",
            "/ip4/127.0.0.1/tcp/0",
        ]);
        c.node = Some(c.spawn(&["start"], "node.log"));
        let deadline = Instant::now() + STEP;
        while !c.run(&["health"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "node did not start:\n{}",
                c.log("node.log")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }
}

impl Drop for Conclave {
    fn drop(&mut self) {
        for child in [self.relayer.as_mut(), self.node.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchor_deploy_relay_and_status_on_near_as_processes() {
    let near = Node::start(NETWORK).await;
    let keys = tempfile_dir::Dir::new("keys");
    let owner = key_for(ACCOUNT, "owner");
    let relayer = key_for(RELAYER, "relayer");
    near.create_account(ACCOUNT, 50 * NEAR, Some(&owner.public_key));
    near.create_account(RELAYER, 10 * NEAR, Some(&relayer.public_key));
    near.create_account(ALICE, NEAR, None);
    let owner_file = keys.0.join("owner.json");
    std::fs::write(&owner_file, serde_json::to_string(&owner).unwrap()).unwrap();
    let relayer_file = keys.0.join("relayer.json");
    std::fs::write(&relayer_file, serde_json::to_string(&relayer).unwrap()).unwrap();

    let mut conclave = Conclave::start();
    let context = conclave.ok(&["context", "create", "--app", "dao"]);
    let context = context
        .lines()
        .last()
        .expect("context id")
        .trim()
        .to_owned();

    // Bad input first: another network, nothing deployed.
    let out = conclave.run(&[
        "anchor",
        "deploy",
        "--context",
        &context,
        "--chain",
        "near",
        "--rpc",
        &near.url,
        "--account",
        ACCOUNT,
        "--key-file",
        owner_file.to_str().unwrap(),
        "--network",
        "mainnet",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected \"mainnet\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(near.accepted(), 0);

    let out = conclave.run(&[
        "anchor",
        "deploy",
        "--context",
        &context,
        "--chain",
        "near",
        "--rpc",
        &near.url,
        "--account",
        ACCOUNT,
        "--key-file",
        owner_file.to_str().unwrap(),
        "--network",
        NETWORK,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), ACCOUNT);
    assert_eq!(near.code(ACCOUNT).as_deref(), Some(PROXY_WASM));
    // The domain it printed is the one members sign for.
    let domain = stderr
        .split("(domain ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("the domain on stderr")
        .to_owned();
    let expected = crate::fixture::near_domain(NETWORK, ACCOUNT);
    assert_eq!(domain, hex::encode(expected.encode()));

    conclave.relayer = Some(conclave.spawn(
        &[
            "relay",
            "--context",
            &context,
            "--chain",
            "near",
            "--proxy",
            ACCOUNT,
            "--rpc",
            &near.url,
            "--key-file",
            relayer_file.to_str().unwrap(),
            "--network",
            NETWORK,
            "--poll-ms",
            "100",
        ],
        "relay.log",
    ));
    let alice = near.balance(ALICE);
    conclave.ok(&[
        "tx",
        "submit",
        "--context",
        &context,
        "--method",
        "configure",
        "--args",
        r#"{"threshold":1}"#,
        "--wait",
    ]);
    // The proposer's vote reaches the threshold of 1: the payout is
    // requested in the proposal's block.
    let propose = format!(
        r#"{{"domain":"{domain}","action":{{"native":{{"to":"{ALICE}","amount":"{NEAR}"}}}}}}"#
    );
    conclave.ok(&[
        "tx",
        "submit",
        "--context",
        &context,
        "--method",
        "propose",
        "--args",
        &propose,
        "--wait",
    ]);
    let deadline = Instant::now() + STEP;
    while near.balance(ALICE) != alice + NEAR {
        assert!(
            Instant::now() < deadline,
            "alice was not paid; relay log:\n{}\nnode log:\n{}",
            conclave.log("relay.log"),
            conclave.log("node.log")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = near.calls();
    assert_eq!(
        calls.iter().filter(|c| *c == "execute_action").count(),
        1,
        "{calls:?}"
    );

    let status = conclave.ok(&[
        "anchor",
        "status",
        "--context",
        &context,
        "--chain",
        "near",
        "--proxy",
        ACCOUNT,
        "--rpc",
        &near.url,
    ]);
    let status: serde_json::Value = serde_json::from_str(&status).expect("status JSON");
    assert_eq!(status["chain"], "near:testnet");
    assert_eq!(status["proxy"], ACCOUNT);
    assert_eq!(status["actions"][0]["state"], "executed", "{status}");
    assert!(
        status["anchored_height"].as_u64().unwrap()
            >= status["actions"][0]["height"].as_u64().unwrap()
    );
    // Still paid exactly once.
    assert_eq!(near.balance(ALICE), alice + NEAR);
}
