//! `conclave bench --anchor-payouts N`: how long anchoring takes. Starts a
//! local anvil and four validator processes of a `dao` context, deploys and
//! funds the context's proxy (`anchor deploy`), runs a relayer in this
//! process (woken by the node's checkpoint subscription, as `conclave
//! relay`), then N times: members 0 and 1 propose and vote a payout, member
//! 2 casts the deciding vote, and the bench times that vote's commit, the
//! checkpoint of its height on chain and the recipient's payout, polling
//! the chain every few milliseconds. Prints JSON.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use conclave_bridge::evm::{EvmChain, EvmConfig};
use conclave_bridge::relay::{EvmRelay, RelayOptions};
use conclave_consensus::{ContextId, Hash32, Tx};
use conclave_evm::anvil::{Anvil, DEV_KEY, DEV_KEY_1};
use jsonrpsee::http_client::HttpClient;
use serde::Serialize;
use tokio::sync::Notify;

use super::anchor::{EvmArgs, NodeSource};
use super::bench_validators::{spawn_validators, Target};
use crate::rpc::ConclaveApiClient;

const ETH: u128 = 1_000_000_000_000_000_000;
/// How often the chain is polled for the checkpoint and the payout.
const POLL: Duration = Duration::from_millis(5);
/// One payout may take this long at most.
const PAYOUT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Serialize, Default)]
struct Stats {
    p50: f64,
    p90: f64,
    max: f64,
}

#[derive(Serialize)]
struct Report {
    validators: usize,
    payouts: usize,
    /// The deciding vote's submission to its commit on the member's node.
    vote_to_commit_ms: Stats,
    /// That commit to the checkpoint of its height on the proxy.
    commit_to_checkpoint_on_chain_ms: Stats,
    /// That commit to the recipient's balance showing the payout.
    commit_to_payout_ms: Stats,
    /// The deciding vote's submission to the payout: what a member waits.
    vote_to_payout_ms: Stats,
    /// Gas the relayer spent per payout: its checkpoint and its action.
    relayer_gas_per_payout: u64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    if v.is_empty() {
        return Stats::default();
    }
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Stats {
        p50: at(0.5),
        p90: at(0.9),
        max: v[v.len() - 1],
    }
}

/// A member signing DAO calls through its own validator.
struct Member {
    client: HttpClient,
    target: Target,
}

impl Member {
    async fn connect(target: Target) -> anyhow::Result<Self> {
        let url = format!("http://{}", target.rpc);
        let client = super::connect::connect_as(&url, &target.home).await?;
        Ok(Self { client, target })
    }

    /// Submits `method(args)`; returns when it is submitted and the tx hash.
    async fn submit(&self, ctx: ContextId, method: &str, args: &str) -> anyhow::Result<Hash32> {
        let sender = conclave_consensus::MemberId(self.target.key.verifying_key().to_bytes());
        let nonce = self.client.context_nonce(ctx, sender).await?;
        let tx = Tx {
            context_id: ctx,
            sender,
            nonce,
            method: method.into(),
            args: args.as_bytes().to_vec(),
        }
        .sign(&self.target.key);
        Ok(self.client.tx_submit(tx).await?.tx_hash)
    }

    /// Waits for `hash` to commit; returns its height and output.
    async fn committed(&self, hash: Hash32) -> anyhow::Result<(u64, String)> {
        let deadline = Instant::now() + PAYOUT_TIMEOUT;
        loop {
            let s = self.client.tx_status(hash).await?;
            match s.status.as_str() {
                "committed" => {
                    return Ok((s.height.unwrap_or_default(), s.output.unwrap_or_default()))
                }
                "failed" => anyhow::bail!("tx {hash} failed: {}", s.error.unwrap_or_default()),
                _ if Instant::now() > deadline => anyhow::bail!("tx {hash} not committed"),
                _ => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }

    async fn call(&self, ctx: ContextId, method: &str, args: &str) -> anyhow::Result<String> {
        let hash = self.submit(ctx, method, args).await?;
        Ok(self.committed(hash).await?.1)
    }
}

pub async fn run(payouts: usize) -> anyhow::Result<()> {
    anyhow::ensure!(payouts >= 1, "--anchor-payouts must be at least 1");
    let anvil = Anvil::start().await?;
    let dir = tempfile::tempdir()?;
    // Far apart: only the payouts' heights are checkpoints.
    let (_procs, targets, ctx) =
        spawn_validators(dir.path(), 4, "dao", Some(100_000), None, |_| {}).await?;
    let node0 = format!("http://{}", targets[0].rpc);
    let home0 = targets[0].home.clone();
    let home1 = targets[1].home.clone();
    let url1 = format!("http://{}", targets[1].rpc);
    let mut members = Vec::new();
    for t in targets {
        members.push(Member::connect(t).await?);
    }

    let deployer = dir.path().join("deployer.key");
    std::fs::write(&deployer, DEV_KEY)?;
    let evm = EvmArgs {
        rpc: anvil.url.clone(),
        key_file: deployer,
        chain_id: None,
        max_fee_gwei: None,
        confirmations: 1,
    };
    let client0 = super::connect::connect_as(&node0, &home0).await?;
    let fund = ETH * (payouts as u128 + 1);
    let proxy = super::anchor::deploy_evm(&client0, &home0, ctx, &evm, Some(fund)).await?;

    // The relayer, on member 1's node, as `conclave relay` runs it.
    let chain = EvmChain::connect(EvmConfig::new(anvil.url.clone(), DEV_KEY_1)).await?;
    let relay_proxy = chain.proxy(proxy, ctx.0).await?;
    let source = NodeSource::connect(&url1, &home1, ctx).await?;
    let wake = Arc::new(Notify::new());
    tokio::spawn(super::relay::follow_checkpoints(
        url1,
        home1,
        ctx,
        wake.clone(),
    ));
    let metrics = conclave_bridge::metrics::Metrics::new();
    let mut relay = EvmRelay::new(
        source,
        relay_proxy.clone(),
        ctx.0,
        metrics.clone(),
        RelayOptions::default(),
    )?
    .woken_by(wake);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let relayer = tokio::spawn(async move {
        relay
            .run(async {
                let _ = stop_rx.await;
            })
            .await
    });

    let provider = chain.provider().clone();
    let recipient = Address::from([0x42; 20]);
    members[0]
        .call(ctx, "configure", r#"{"threshold":3}"#)
        .await?;
    let (mut to_commit, mut to_cp, mut to_paid, mut total) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..payouts {
        let propose = format!(
            r#"{{"domain":{{"evm":{{"chain_id":{},"proxy":"{proxy}"}}}},"action":{{"native":{{"to":"{recipient}","amount":"{ETH}"}}}},"description":"bench {i}"}}"#,
            chain.chain_id()
        );
        let out = members[0].call(ctx, "propose", &propose).await?;
        let id = serde_json::from_str::<serde_json::Value>(&out)?["id"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("propose answered {out}"))?;
        let vote = format!(r#"{{"id":{id}}}"#);
        members[1].call(ctx, "vote", &vote).await?;
        let before = provider.get_balance(recipient).await?;
        // The deciding vote.
        let sent = Instant::now();
        let hash = members[2].submit(ctx, "vote", &vote).await?;
        let (height, out) = members[2].committed(hash).await?;
        let committed = Instant::now();
        anyhow::ensure!(out.contains(r#""executed":true"#), "vote answered {out}");
        let deadline = committed + PAYOUT_TIMEOUT;
        let mut on_chain = None;
        loop {
            let now = Instant::now();
            anyhow::ensure!(now < deadline, "payout {i} not seen on chain");
            if on_chain.is_none() && relay_proxy.view().await?.latest >= height {
                on_chain = Some(now);
            }
            if provider.get_balance(recipient).await? >= before + U256::from(ETH) {
                let paid = Instant::now();
                let ms = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64() * 1e3;
                to_commit.push(ms(sent, committed));
                to_cp.push(ms(committed, on_chain.unwrap_or(paid)));
                to_paid.push(ms(committed, paid));
                total.push(ms(sent, paid));
                break;
            }
            tokio::time::sleep(POLL).await;
        }
    }
    let _ = stop_tx.send(());
    let _ = relayer.await;
    let gas = metrics
        .gas_used_total
        .with_label_values(&[&format!("evm:{}", chain.chain_id())])
        .get();
    let report = Report {
        validators: 4,
        payouts,
        vote_to_commit_ms: stats(to_commit),
        commit_to_checkpoint_on_chain_ms: stats(to_cp),
        commit_to_payout_ms: stats(to_paid),
        vote_to_payout_ms: stats(total),
        relayer_gas_per_payout: gas / payouts as u64,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
