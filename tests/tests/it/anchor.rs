//! Anchoring end to end on a real anvil: four validator processes run a
//! `dao` context, `conclave anchor deploy` deploys its proxy and anchors the
//! context to it, members vote a 1 ETH payout, and `conclave relay`
//! processes carry the checkpoint and the action to the chain.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use conclave_bridge::evm::{EvmChain, EvmConfig, Outcome, Proxy};
use conclave_bridge::source::{ProvenAction, SignedCheckpoint};
use conclave_checkpoint::{Account, Action, ActionKind, CheckpointPayload, Domain, MerkleProof};
use conclave_consensus::ContextId;
use conclave_evm::anvil::{Anvil, DEV_KEY, DEV_KEY_1, DEV_KEY_2};
use conclave_node::rpc::types::TxStatusView;
use conclave_node::rpc::{CheckpointApiClient, ConclaveApiClient};
use conclave_tests::{conclave_bin, free_port, NetOptions, TestNet, TestNode};

const ETH: u128 = 1_000_000_000_000_000_000;
/// A fresh account the DAO pays.
const RECIPIENT: &str = "0x1111111111111111111111111111111111111111";
/// How long a relayed payout may take on a loaded 2-core machine.
const RELAY_TIMEOUT: Duration = Duration::from_secs(120);

fn cli(home: &Path, args: &[&str]) -> Output {
    Command::new(conclave_bin())
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .expect("run conclave")
}

fn key_file(dir: &Path, name: &str, key: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("0x{key}\n")).expect("write key file");
    path
}

fn provider(anvil: &Anvil, key: &str) -> DynProvider {
    let signer: PrivateKeySigner = key.parse().expect("key");
    ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(anvil.url.parse().expect("url"))
        .erased()
}

async fn balance(p: &DynProvider, who: &str) -> U256 {
    p.get_balance(who.parse().expect("address"))
        .await
        .expect("balance")
}

/// A member's signed app call, waited for.
async fn call(net: &TestNet, i: usize, method: &str, args: &str) -> TxStatusView {
    crate::call_and_wait(&net.nodes[i], net.context, method, args).await
}

/// `conclave anchor deploy` from member 0's home; returns the proxy.
fn deploy(net: &TestNet, anvil: &Anvil, key: &Path) -> Address {
    deploy_from(net.nodes[0].home(), net.context, anvil, key)
}

/// `conclave anchor deploy --context ctx ... --rpc url --key-file key
/// extra..` from `home`: whether it succeeded, stdout and stderr.
fn try_deploy(
    home: &Path,
    ctx: ContextId,
    rpc: &str,
    key: &Path,
    extra: &[&str],
) -> (bool, String, String) {
    let ctx = ctx.to_hex();
    let mut args = vec![
        "anchor",
        "deploy",
        "--context",
        &ctx,
        "--chain",
        "evm",
        "--rpc",
        rpc,
        "--key-file",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = cli(home, &args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn deploy_from(home: &Path, ctx: ContextId, anvil: &Anvil, key: &Path) -> Address {
    let (ok, stdout, stderr) = try_deploy(home, ctx, &anvil.url, key, &["--chain-id", "31337"]);
    assert!(ok, "anchor deploy failed: {stderr}");
    assert!(stderr.contains("anchored"), "{stderr}");
    stdout
        .trim()
        .parse()
        .expect("deploy prints the proxy address")
}

/// A relayer process on `node`'s home.
struct Relayer {
    child: Child,
    metrics: String,
    log: PathBuf,
}

impl Relayer {
    /// `conclave relay` on `node`'s home for one proxy, from flags.
    fn start(
        node: &TestNode,
        ctx: ContextId,
        anvil: &Anvil,
        proxy: Address,
        key: &Path,
        env: &[(&str, &str)],
    ) -> Self {
        let (ctx, proxy) = (ctx.to_hex(), proxy.to_string());
        let args = [
            "--context",
            &ctx,
            "--chain",
            "evm",
            "--proxy",
            &proxy,
            "--rpc",
            &anvil.url,
            "--key-file",
            key.to_str().unwrap(),
            "--poll-ms",
            "200",
        ];
        Self::start_with(node, &args, env)
    }

    /// `conclave relay ARGS --metrics-listen <free port>` on `node`'s home.
    fn start_with(node: &TestNode, args: &[&str], env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = node.home().join(format!("relay-{port}.log"));
        let child = Command::new(conclave_bin())
            .arg("--home")
            .arg(node.home())
            .arg("relay")
            .args(args)
            .args(["--metrics-listen", &format!("127.0.0.1:{port}")])
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("relay log"))
            .spawn()
            .expect("spawn conclave relay");
        Self {
            child,
            metrics: format!("127.0.0.1:{port}"),
            log,
        }
    }

    /// The relayer's metric `series` (exact labels), once it serves it.
    fn metric(&self, series: &str) -> Option<i64> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.metrics).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: relay\r\n\r\n")
            .ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
            .map(|v| v as i64)
    }

    /// Waits for the process to end by itself.
    fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Relayer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- relayer log {} ---\n{log}", self.log.display());
        }
    }
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Proposes and votes a 1 ETH payout to [`RECIPIENT`]; returns the height
/// of the block that emitted the action.
async fn vote_payout(net: &TestNet, proxy: Address) -> u64 {
    let s = call(net, 0, "configure", r#"{"threshold":3}"#).await;
    assert_eq!(s.status, "committed", "{s:?}");
    let propose = format!(
        r#"{{"domain":{{"evm":{{"chain_id":31337,"proxy":"{proxy}"}}}},"action":{{"native":{{"to":"{RECIPIENT}","amount":"{ETH}"}}}},"description":"grant"}}"#
    );
    let s = call(net, 0, "propose", &propose).await;
    assert_eq!(s.status, "committed", "{s:?}");
    let s = call(net, 1, "vote", r#"{"id":0}"#).await;
    assert_eq!(s.status, "committed", "{s:?}");
    let s = call(net, 2, "vote", r#"{"id":0}"#).await;
    assert_eq!(s.status, "committed", "{s:?}");
    assert!(
        s.output.as_deref().unwrap().contains(r#""executed":true"#),
        "{s:?}"
    );
    s.height.unwrap()
}

/// Four validators with a `dao` context, an anvil, and the context's
/// proxy deployed with `conclave anchor deploy` and funded with 5 ETH.
struct Anchored {
    anvil: Anvil,
    net: TestNet,
    dir: tempfile::TempDir,
    /// Dev account 0, which deployed and funded the proxy.
    chain: DynProvider,
    proxy: Address,
    /// The recipient's balance before any payout.
    before: U256,
}

impl Anchored {
    async fn start() -> Self {
        let anvil = Anvil::start().await.expect("anvil");
        let opts = NetOptions {
            app: "dao".into(),
            anchors: vec![],
            // Far away: only action heights are checkpoints.
            checkpoint_interval: 1000,
            ..NetOptions::default()
        };
        let net = TestNet::start_with(4, opts).await;
        let dir = tempfile::tempdir().unwrap();
        let deployer = key_file(dir.path(), "deployer.key", DEV_KEY);
        let proxy = deploy(&net, &anvil, &deployer);
        fund(&anvil, proxy, 5 * ETH).await;
        let chain = provider(&anvil, DEV_KEY);
        let before = balance(&chain, RECIPIENT).await;
        Self {
            anvil,
            net,
            dir,
            chain,
            proxy,
            before,
        }
    }

    fn key(&self, name: &str, key: &str) -> PathBuf {
        key_file(self.dir.path(), name, key)
    }
}

async fn fund(anvil: &Anvil, proxy: Address, wei: u128) {
    let p = provider(anvil, DEV_KEY);
    let tx = TransactionRequest::default()
        .with_to(proxy)
        .with_value(U256::from(wei));
    let r = p
        .send_transaction(tx)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status());
}

async fn rogue_proxy(anvil: &Anvil, proxy: Address, ctx: ContextId) -> Proxy {
    let chain = EvmChain::connect(EvmConfig::new(anvil.url.clone(), DEV_KEY_2))
        .await
        .unwrap();
    chain.proxy(proxy, ctx.0).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_dao_payout_relayed_to_anvil_once() {
    let f = Anchored::start().await;
    let (anvil, net, dir, chain, proxy, before) =
        (&f.anvil, &f.net, &f.dir, &f.chain, f.proxy, f.before);
    let ctx = net.context;
    let key1 = f.key("relayer1.key", DEV_KEY_1);
    let key2 = f.key("relayer2.key", DEV_KEY_2);
    let height = vote_payout(net, proxy).await;

    // A relayer that dies right after posting the checkpoint, before the
    // action: the chain holds the checkpoint and has paid nothing.
    let mut crashing = Relayer::start(
        &net.nodes[0],
        ctx,
        anvil,
        proxy,
        &key1,
        &[("CONCLAVE_FAILPOINT", "relay_after_checkpoint")],
    );
    assert!(
        crashing.wait_exit(RELAY_TIMEOUT),
        "the relayer never reached its failpoint"
    );
    let rogue = rogue_proxy(anvil, proxy, ctx).await;
    assert_eq!(rogue.view().await.unwrap().latest, height);
    assert_eq!(balance(chain, RECIPIENT).await, before);

    // A rogue relayer: a forged checkpoint and a forged proof are refused.
    let c = net.nodes[0].client();
    let actions = c.action_list(ctx, None, None).await.unwrap();
    assert_eq!(actions.len(), 1, "{actions:?}");
    let proof = c.action_proof(ctx, actions[0].id.clone()).await.unwrap();
    let id: [u8; 32] = hex::decode(&actions[0].id).unwrap().try_into().unwrap();
    let domain = Domain::evm(31337, proxy.into_array());
    let to: [u8; 20] = hex::decode(&RECIPIENT[2..]).unwrap().try_into().unwrap();
    let forged_action = ProvenAction {
        action: Action {
            id,
            domain,
            kind: ActionKind::NativeTransfer {
                to: Account::Evm(to),
                amount: 2 * ETH,
            },
        },
        height,
        proof: MerkleProof {
            index: proof.proof_index,
            siblings: proof
                .proof
                .iter()
                .map(|s| hex::decode(s).unwrap().try_into().unwrap())
                .collect(),
        },
    };
    let err = rogue
        .execute_action(&forged_action)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("BadProof"), "{err}");
    let outsider = conclave_checkpoint::SecretKey::from_seed(&[42; 32]).unwrap();
    let forged = CheckpointPayload {
        domain,
        context_id: ctx.0,
        epoch: 0,
        height: height + 50,
        state_root: [9; 32],
        actions_root: [9; 32],
        next_members_hash: hex::decode(rogue_members_hash(&rogue).await)
            .unwrap()
            .try_into()
            .unwrap(),
    };
    let mut signers = [0u8; 32];
    signers[31] = 0b1111;
    let err = rogue
        .submit_checkpoint(&SignedCheckpoint {
            signature: conclave_checkpoint::sign_checkpoint(&outsider, &forged),
            payload: forged,
            signers,
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("BadSignature"), "{err}");
    assert_eq!(balance(chain, RECIPIENT).await, before);

    // The crashed relayer restarts next to a second one on another member's
    // node with another key: the payout happens exactly once.
    let r1 = Relayer::start(&net.nodes[0], ctx, anvil, proxy, &key1, &[]);
    let r2 = Relayer::start(&net.nodes[1], ctx, anvil, proxy, &key2, &[]);
    wait_until("the payout", RELAY_TIMEOUT, || async {
        balance(chain, RECIPIENT).await > before
    })
    .await;
    // Both relayers have seen the proxy at the action's height since.
    let series = format!(
        r#"conclave_anchor_height{{chain="evm:31337",context="{}"}}"#,
        ctx.to_hex()
    );
    wait_until("both relayers' passes", RELAY_TIMEOUT, || async {
        [&r1, &r2]
            .iter()
            .all(|r| r.metric(&series) == Some(height as i64))
    })
    .await;
    assert_eq!(balance(chain, RECIPIENT).await, before + U256::from(ETH));
    assert!(rogue.executed(id).await.unwrap());
    // A forged re-execution of the executed action is "already done".
    assert!(matches!(
        rogue.execute_action(&forged_action).await.unwrap(),
        Outcome::AlreadyDone(_)
    ));

    // `anchor status`: the anchored height, the lag, the executed action.
    let out = cli(
        net.nodes[2].home(),
        &[
            "anchor",
            "status",
            "--context",
            &ctx.to_hex(),
            "--chain",
            "evm",
            "--proxy",
            &proxy.to_string(),
            "--rpc",
            &anvil.url,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["anchored_height"], height);
    assert_eq!(status["actions"][0]["state"], "executed", "{status}");
    assert!(status["actions"][0]["tx"]
        .as_str()
        .unwrap()
        .starts_with("0x"));

    // A non-member checks a member's proof against the anchored root.
    let v = c
        .state_get(ctx, format!("p/{:020}", 0), Some(height))
        .await
        .unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, serde_json::to_vec(&v).unwrap()).unwrap();
    let verify = |file: &Path| {
        let out = Command::new(conclave_bin())
            .args([
                "verify",
                "--rpc",
                &anvil.url,
                "--proxy",
                &proxy.to_string(),
                "--proof",
            ])
            .arg(file)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = verify(&good);
    assert!(ok && text.starts_with("yes"), "{text}");
    let mut tampered = v.clone();
    let forged_value = tampered.value.clone().unwrap().replace("grant", "grift");
    tampered.value_hex = Some(hex::encode(forged_value.as_bytes()));
    tampered.value = Some(forged_value);
    let bad = dir.path().join("tampered.json");
    std::fs::write(&bad, serde_json::to_vec(&tampered).unwrap()).unwrap();
    let (ok, text) = verify(&bad);
    assert!(
        !ok && text.contains("no:") && text.contains("does not match"),
        "{text}"
    );
    // A newer height is not anchored yet (no checkpoint above the action's).
    let s = call(net, 3, "propose", &format!(
        r#"{{"domain":{{"evm":{{"chain_id":31337,"proxy":"{proxy}"}}}},"action":{{"native":{{"to":"{RECIPIENT}","amount":"1"}}}}}}"#
    ))
    .await;
    assert_eq!(s.status, "committed");
    // Committed on member 3's node; member 0's may be a block behind.
    let deadline = Instant::now() + crate::COMMIT_TIMEOUT;
    while c.context_info(ctx).await.unwrap().height < s.height.unwrap_or(0) {
        assert!(
            Instant::now() < deadline,
            "node 0 never reached {:?}",
            s.height
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let newer = c
        .state_get(ctx, format!("p/{:020}", 1), s.height)
        .await
        .unwrap();
    let later = dir.path().join("later.json");
    std::fs::write(&later, serde_json::to_vec(&newer).unwrap()).unwrap();
    let (ok, text) = verify(&later);
    assert!(!ok && text.contains("not anchored yet"), "{text}");
}

async fn rogue_members_hash(p: &Proxy) -> String {
    hex::encode(p.view().await.unwrap().members_hash)
}

/// anvil drops the block that held the posted checkpoint and the payout
/// (`evm_revert`): the relayer sees the proxy behind, posts again, and the
/// recipient is paid once on the surviving chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_reorg_dropping_the_checkpoint_is_reposted_and_paid_once() {
    let f = Anchored::start().await;
    let (anvil, net, chain, proxy, before) = (&f.anvil, &f.net, &f.chain, f.proxy, f.before);
    let ctx = net.context;
    f.key("relayer1.key", DEV_KEY_1);
    let snapshot: U256 = chain.raw_request("evm_snapshot".into(), ()).await.unwrap();
    let height = vote_payout(net, proxy).await;
    // This relayer reads a relay.toml (key file relative to it).
    let config = f.dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "poll_ms = 200\n[[relay]]\ncontext = \"{}\"\nchain = \"evm\"\nproxy = \"{proxy}\"\nrpc = \"{}\"\nkey_file = \"relayer1.key\"\nchain_id = 31337\n",
            ctx.to_hex(),
            anvil.url
        ),
    )
    .unwrap();
    let relayer = Relayer::start_with(&net.nodes[0], &["--config", config.to_str().unwrap()], &[]);
    wait_until("the payout", RELAY_TIMEOUT, || async {
        balance(chain, RECIPIENT).await > before
    })
    .await;
    // The chain reorganises back to before the checkpoint.
    let reverted: bool = chain
        .raw_request("evm_revert".into(), (snapshot,))
        .await
        .unwrap();
    assert!(reverted);
    let rogue = rogue_proxy(anvil, proxy, ctx).await;
    // The relayer notices and relays again on the surviving chain.
    wait_until("the re-post", RELAY_TIMEOUT, || async {
        rogue.view().await.unwrap().latest == height && balance(chain, RECIPIENT).await > before
    })
    .await;
    // It saw the reorg (the hash of the block its last pass ended on
    // changed), and the recipient holds exactly one payout.
    let series = r#"conclave_relay_errors_total{chain="evm:31337",reason="reorg"}"#;
    assert!(
        relayer.metric(series).unwrap_or(0) >= 1,
        "the reorg went unnoticed"
    );
    assert_eq!(balance(chain, RECIPIENT).await, before + U256::from(ETH));
    assert!(rogue
        .executed(
            hex::decode(
                &net.nodes[0]
                    .client()
                    .action_list(ctx, None, None)
                    .await
                    .unwrap()[0]
                    .id
            )
            .unwrap()
            .try_into()
            .unwrap()
        )
        .await
        .unwrap());
}

/// Bad input to `anchor deploy` and `relay`: each is refused with an error
/// that names what is wrong, and nothing reaches the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_chain_input_is_refused_and_sends_nothing() {
    let anvil = Anvil::start().await.expect("anvil");
    let (node, ctx) = crate::node_with_context("dao").await;
    let (other, other_ctx) = crate::node_with_context("dao").await;
    let dir = tempfile::tempdir().unwrap();
    let deployer = key_file(dir.path(), "deployer.key", DEV_KEY);
    let unfunded = key_file(dir.path(), "unfunded.key", &"11".repeat(32));
    let garbage = dir.path().join("garbage.key");
    std::fs::write(&garbage, "not a key").unwrap();
    let chain = provider(&anvil, DEV_KEY);
    let blocks = chain.get_block_number().await.unwrap();

    let dead = format!("http://127.0.0.1:{}", free_port());
    for (rpc, key, extra, expect) in [
        (dead.as_str(), &deployer, &[][..], "cannot reach the chain"),
        ("not a url", &deployer, &[][..], "bad RPC URL"),
        (
            anvil.url.as_str(),
            &deployer,
            &["--chain-id", "1"][..],
            "has chain id 31337, expected 1",
        ),
        (anvil.url.as_str(), &unfunded, &[][..], "holds no funds"),
        (anvil.url.as_str(), &garbage, &[][..], "garbage.key"),
    ] {
        let (ok, _, err) = try_deploy(node.home(), ctx, rpc, key, extra);
        assert!(
            !ok && err.contains(expect),
            "expected {expect:?}, got: {err}"
        );
    }
    assert_eq!(
        chain.get_block_number().await.unwrap(),
        blocks,
        "something was sent"
    );

    // A relayer pointed at the proxy of another context refuses it.
    let proxy = deploy_from(other.home(), other_ctx, &anvil, &deployer);
    let blocks = chain.get_block_number().await.unwrap();
    let relay = |node_url: Option<&str>| {
        let mut args = vec![];
        if let Some(url) = node_url {
            args.extend(["--node", url]);
        }
        let ctx = ctx.to_hex();
        let proxy = proxy.to_string();
        args.extend([
            "relay",
            "--context",
            &ctx,
            "--chain",
            "evm",
            "--proxy",
            &proxy,
            "--rpc",
            &anvil.url,
            "--key-file",
            deployer.to_str().unwrap(),
        ]);
        let out = cli(node.home(), &args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, err) = relay(None);
    assert!(!ok && err.contains("serves context"), "{err}");
    // The node is unreachable.
    let (ok, err) = relay(Some(&dead));
    assert!(!ok && err.contains("is the node running"), "{err}");
    assert_eq!(
        chain.get_block_number().await.unwrap(),
        blocks,
        "something was sent"
    );
}

/// A member is removed: the checkpoint of the last height its set signs
/// announces the remaining three, the relayer (woken by its checkpoint
/// subscription, not by polling) posts it and rotates the proxy, the next
/// payout is signed and paid by the three alone, and a checkpoint that
/// counts the removed member's share no longer verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_member_removed_rotation_relayed_and_its_share_no_longer_counts() {
    use conclave_checkpoint::{sign_checkpoint, Signature, SignerBitmap};
    use conclave_node::rpc::MembersApiClient;

    let f = Anchored::start().await;
    let (anvil, net, chain, proxy, before) = (&f.anvil, &f.net, &f.chain, f.proxy, f.before);
    let ctx = net.context;
    let key1 = f.key("relayer1.key", DEV_KEY_1);
    let rogue = rogue_proxy(anvil, proxy, ctx).await;
    let deployed = rogue.view().await.unwrap();
    assert_eq!(deployed.epoch, 0);
    // It polls only every 10 minutes: every pass below is woken by its
    // subscription to the node's checkpoints.
    let (ctx_hex, proxy_hex) = (ctx.to_hex(), proxy.to_string());
    let relayer = Relayer::start_with(
        &net.nodes[0],
        &[
            "--context",
            &ctx_hex,
            "--proxy",
            &proxy_hex,
            "--rpc",
            &anvil.url,
            "--key-file",
            key1.to_str().unwrap(),
            "--poll-ms",
            "600000",
        ],
        &[],
    );

    let c0 = net.nodes[0].client();
    let removed = net.nodes[3].keys();
    let tx = c0.context_remove(ctx, removed.member_id()).await.unwrap();
    let s = conclave_tests::wait_committed(&c0, tx.tx_hash, RELAY_TIMEOUT).await;
    assert_eq!(s.status, "committed", "{s:?}");
    let removal = s.height.unwrap();
    // The DAO's txs make the heights after the removal; the payout is
    // decided under the new set.
    let height = vote_payout(net, proxy).await;
    assert!(
        height >= removal + 2,
        "payout at {height}, removal at {removal}"
    );

    // The node announced the new set in the checkpoint of the last height
    // the old set signs.
    wait_until("the announcing checkpoint", RELAY_TIMEOUT, || async {
        c0.checkpoint_get(ctx, removal + 1).await.is_ok()
    })
    .await;
    let announcing = c0.checkpoint_get(ctx, removal + 1).await.unwrap();
    assert_eq!(announcing.epoch, 0);
    assert_ne!(announcing.next_members_hash, announcing.members_hash);
    assert!(announcing.verifies);

    wait_until("the rotation and the payout", RELAY_TIMEOUT, || async {
        balance(chain, RECIPIENT).await > before
    })
    .await;
    assert_eq!(balance(chain, RECIPIENT).await, before + U256::from(ETH));
    let view = rogue.view().await.unwrap();
    assert_eq!(view.epoch, 1, "the proxy rotated once");
    assert!(view.latest >= height);
    assert_eq!(hex::encode(view.members_hash), announcing.next_members_hash);
    let log = std::fs::read_to_string(&relayer.log).unwrap();
    assert!(log.contains("member set rotated"), "{log}");
    assert!(log.contains("following the node's checkpoints"), "{log}");
    let payout = c0.checkpoint_get(ctx, height).await.unwrap();
    assert_eq!(payout.epoch, 1);
    assert_eq!(payout.member_count, 3);

    // The removed member's share, counted among three signers of an epoch
    // 1 checkpoint, is refused; so is an epoch 0 checkpoint the old set
    // (removed member included) could still sign.
    let mut remaining: Vec<_> = net.nodes[..3].iter().map(|n| n.keys()).collect();
    remaining.sort_by_key(|k| k.member_id());
    let forged = |epoch: u64| CheckpointPayload {
        domain: Domain::evm(31337, proxy.into_array()),
        context_id: ctx.0,
        epoch,
        height: view.latest + 10,
        state_root: [9; 32],
        actions_root: [9; 32],
        next_members_hash: view.members_hash,
    };
    // Signed by `keys`, claiming the first three signers of the proxy's set.
    let signed = |epoch: u64, keys: &[&conclave_checkpoint::SecretKey]| {
        let payload = forged(epoch);
        let sigs: Vec<Signature> = keys.iter().map(|k| sign_checkpoint(k, &payload)).collect();
        SignedCheckpoint {
            signature: Signature::aggregate(&sigs).unwrap(),
            payload,
            signers: SignerBitmap::from_indices([0, 1, 2]).unwrap().to_bytes(),
        }
    };
    let with_removed = [&remaining[0].bls, &remaining[1].bls, &removed.bls];
    for (epoch, refusal) in [(1, "BadSignature"), (0, "WrongEpoch")] {
        let err = rogue
            .submit_checkpoint(&signed(epoch, &with_removed))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(refusal), "epoch {epoch}: {err}");
    }
    // The three remaining members alone still can.
    let honest = signed(1, &remaining.iter().map(|k| &k.bls).collect::<Vec<_>>());
    assert!(matches!(
        rogue.submit_checkpoint(&honest).await.unwrap(),
        Outcome::Done { .. }
    ));
}

/// A sent transaction that the chain forgets (here anvil, not mining,
/// drops it from its pool; a reorg does the same) is reported as dropped
/// within a few polls, not waited on until the receipt timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_transaction_is_reported_not_awaited() {
    let anvil = Anvil::start().await.expect("anvil");
    let mut config = EvmConfig::new(anvil.url.clone(), DEV_KEY_1);
    config.receipt_timeout = Duration::from_secs(600);
    let chain = EvmChain::connect(config).await.expect("connect");
    let rpc = provider(&anvil, DEV_KEY);
    let () = rpc
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .expect("automine off");
    let sending = tokio::spawn(async move {
        chain
            .send_value(RECIPIENT.parse().unwrap(), 1)
            .await
            .map(|_| ())
    });
    // Dropped once it is in the pool.
    let deadline = Instant::now() + RELAY_TIMEOUT;
    loop {
        let pending: serde_json::Value = rpc
            .raw_request("txpool_content".into(), ())
            .await
            .expect("txpool");
        if pending["pending"]
            .as_object()
            .is_some_and(|m| !m.is_empty())
        {
            break;
        }
        assert!(Instant::now() < deadline, "the transaction never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let () = rpc
        .raw_request("anvil_dropAllTransactions".into(), ())
        .await
        .expect("drop");
    let err = tokio::time::timeout(RELAY_TIMEOUT, sending)
        .await
        .expect("the wait ends long before the receipt timeout")
        .unwrap()
        .expect_err("a dropped transaction is an error");
    assert!(err.to_string().contains("was dropped"), "{err}");
    assert_eq!(balance(&rpc, RECIPIENT).await, U256::ZERO);
}
