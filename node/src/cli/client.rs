//! CLI commands that talk to a node over JSON-RPC (the connection and its
//! credentials are `connect.rs`).

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use conclave_consensus::{Hash32, Tx};
use jsonrpsee::http_client::HttpClient;

use super::anchor::AnchorCommand;
use super::connect::{check_state_proof, connect, connect_as, login, parse_context, wait_for};
use super::{
    ActionsCommand, AuthCommand, CheckpointCommand, Cli, Command, ContextCommand, EvidenceCommand,
    QueryArgs, SubmitArgs, TxCommand,
};
use crate::keys::NodeKeys;
use crate::rpc::auth::MAX_TOKEN_TTL_MS;
use crate::rpc::{CheckpointApiClient, ConclaveApiClient, EvidenceApiClient, MembersApiClient};

fn parse_member(s: &str) -> anyhow::Result<conclave_consensus::MemberId> {
    s.parse()
        .map_err(|e: String| anyhow::anyhow!("--member: {e}"))
}

/// Waits for a membership tx to commit and says when it takes effect.
async fn membership_tx(
    c: &HttpClient,
    tx: crate::rpc::members::MembershipTx,
    done: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = c.tx_status(tx.tx_hash).await?;
        match status.status.as_str() {
            "committed" => {
                let h = status.height.unwrap_or(0);
                println!(
                    "{done}: tx {} committed at height {h}; in force from height {}",
                    tx.tx_hash,
                    h + tx.activation_offset
                );
                return Ok(());
            }
            "failed" => bail!(
                "membership tx {} failed: {}",
                tx.tx_hash,
                status.error.unwrap_or_default()
            ),
            _ if Instant::now() > deadline => {
                bail!("membership tx {} not committed after 60 s", tx.tx_hash)
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn run(cli: &Cli) -> anyhow::Result<()> {
    let url = cli.rpc_url();
    let ctx = |e| format!("RPC to {url} failed: {e} (is the node running?)");
    if let Command::Health = &cli.command {
        let c = connect(&url)?;
        return match c.node_health().await {
            Ok(h) if h.ok => {
                println!("ok");
                Ok(())
            }
            Ok(h) => bail!(
                "the node at {url} reports itself unhealthy: {}",
                h.problems.join("; ")
            ),
            Err(e) => bail!("the node at {url} does not answer: {}", ctx(e)),
        };
    }
    if let Command::Status = &cli.command {
        let c = connect(&url)?;
        return print_json(&c.node_status().await.map_err(|e| anyhow::anyhow!(ctx(e)))?);
    }
    if let Command::Auth {
        command: AuthCommand::Token { expires_in },
    } = &cli.command
    {
        return print_token(cli, &url, *expires_in).await;
    }
    let c = connect_as(&url, &cli.home()).await?;
    match &cli.command {
        Command::Context { command } => match command {
            ContextCommand::Create {
                app,
                app_file,
                anchors,
                checkpoint_interval,
                members,
            } => {
                let (name, wasm) = match (app, app_file) {
                    (Some(name), None) => (Some(name.clone()), None),
                    (None, Some(path)) => (
                        None,
                        Some(hex::encode(
                            std::fs::read(path)
                                .with_context(|| format!("reading {}", path.display()))?,
                        )),
                    ),
                    _ => bail!("give --app NAME (e.g. kv) or --app-file PATH"),
                };
                for a in anchors {
                    crate::checkpoint::parse_anchor(a)
                        .map_err(|e| anyhow::anyhow!("--anchor: {e}"))?;
                }
                let anchors = (!anchors.is_empty()).then(|| anchors.clone());
                let members = members
                    .iter()
                    .map(|m| {
                        m.parse::<conclave_consensus::MemberId>()
                            .map_err(|e| anyhow::anyhow!("--members {m}: {e}"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let members = (!members.is_empty()).then_some(members);
                let created = c
                    .context_create(name, wasm, members, anchors, *checkpoint_interval)
                    .await?;
                println!("{}", created.context_id);
                for offer in &created.offers {
                    match &offer.error {
                        None => eprintln!("member {}: joined", offer.member),
                        Some(e) => eprintln!("member {}: NOT joined: {e}", offer.member),
                    }
                }
                Ok(())
            }
            ContextCommand::List => print_json(&c.context_list().await?),
            ContextCommand::Info { context } => {
                print_json(&c.context_info(parse_context(context)?).await?)
            }
            ContextCommand::Invite { context, member } => {
                let tx = c
                    .context_invite(parse_context(context)?, parse_member(member)?)
                    .await?;
                membership_tx(&c, tx, "invited").await
            }
            ContextCommand::Remove { context, member } => {
                let tx = c
                    .context_remove(parse_context(context)?, parse_member(member)?)
                    .await?;
                membership_tx(&c, tx, "removed").await
            }
            ContextCommand::Leave { context } => {
                let tx = c.context_leave(parse_context(context)?).await?;
                membership_tx(&c, tx, "left").await
            }
            ContextCommand::Join { context, via } => {
                print_json(&c.context_join(parse_context(context)?, via.clone()).await?)
            }
            ContextCommand::Members { context, height } => {
                print_json(&c.context_members(parse_context(context)?, *height).await?)
            }
        },
        Command::Tx { command } => match command {
            TxCommand::Submit(args) => submit(cli, &c, args).await,
            TxCommand::Status { hash } => {
                let hash: Hash32 = hash
                    .parse()
                    .map_err(|e: String| anyhow::anyhow!("--hash: {e}"))?;
                print_json(&c.tx_status(hash).await?)
            }
        },
        Command::Query(args) => query(&c, args).await,
        Command::View {
            context,
            method,
            args,
        } => {
            let r = c
                .app_view(
                    parse_context(context)?,
                    method.clone(),
                    Some(serde_json::Value::String(args.clone())),
                )
                .await?;
            if let Some(e) = r.error {
                bail!("view failed: {e}");
            }
            println!("{}", r.output.or(r.output_hex).unwrap_or_default());
            Ok(())
        }
        Command::Block { context, height } => {
            print_json(&c.block_get(parse_context(context)?, *height).await?)
        }
        Command::Evidence {
            command: EvidenceCommand::List { context, limit },
        } => {
            let ctx = parse_context(context)?;
            super::evidence::print_list(&c.evidence_list(ctx, *limit).await?, &ctx);
            Ok(())
        }
        Command::Checkpoint { command } => match command {
            CheckpointCommand::List {
                context,
                from,
                limit,
            } => {
                let list = c
                    .checkpoint_list(parse_context(context)?, *from, *limit)
                    .await?;
                super::checkpoints::print_list(&list);
                Ok(())
            }
            CheckpointCommand::Show { context, height } => {
                print_json(&c.checkpoint_get(parse_context(context)?, *height).await?)
            }
        },
        Command::Actions {
            command:
                ActionsCommand::List {
                    context,
                    from,
                    limit,
                },
        } => super::checkpoints::actions(&c, parse_context(context)?, *from, *limit).await,
        Command::Anchor { command } => match command {
            AnchorCommand::Deploy {
                context,
                chain,
                evm,
                fund_wei,
                account,
                network,
            } => {
                let near = super::anchor::NearTarget {
                    account: account.clone(),
                    network: network.clone(),
                };
                let proxy = super::anchor::deploy(
                    &c,
                    &cli.home(),
                    parse_context(context)?,
                    *chain,
                    evm,
                    *fund_wei,
                    &near,
                )
                .await?;
                println!("{proxy}");
                Ok(())
            }
            AnchorCommand::Status {
                context,
                chain,
                proxy,
                rpc,
                network,
            } => {
                let source = super::anchor::NodeSource::new(c, parse_context(context)?);
                super::anchor::status(source, *chain, proxy, rpc, network.as_deref()).await
            }
        },
        _ => bail!("not an RPC command"),
    }
}

/// `conclave auth token`: a member token for the home's member key, on
/// stdout (its expiry on stderr).
async fn print_token(cli: &Cli, url: &str, expires_in: u64) -> anyhow::Result<()> {
    let max = MAX_TOKEN_TTL_MS / 1000;
    if !(1..=max).contains(&expires_in) {
        bail!("--expires-in {expires_in}: must be 1..={max} seconds");
    }
    let keys = NodeKeys::load(&cli.home())?;
    let (token, _) = login(&connect(url)?, &keys, Duration::from_secs(expires_in)).await?;
    println!("{}", token.token);
    eprintln!("member  {}", keys.member_id());
    eprintln!("expires {} ms (unix)", token.expires_ms);
    Ok(())
}

async fn submit(cli: &Cli, c: &HttpClient, args: &SubmitArgs) -> anyhow::Result<()> {
    let keys = NodeKeys::load(&cli.home())?;
    let context = parse_context(&args.context)?;
    let nonce = match args.nonce {
        Some(n) => n,
        None => c.context_nonce(context, keys.member_id()).await?,
    };
    let tx = Tx {
        context_id: context,
        sender: keys.member_id(),
        nonce,
        method: args.method.clone(),
        args: args.args.clone().into_bytes(),
    }
    .sign(&keys.member);
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let submitted = loop {
        match c.tx_submit(tx.clone()).await {
            Ok(submitted) => break submitted,
            // A full pool, and the caller asked to wait: come back when the
            // node says a block will have made room, within the timeout.
            Err(e) => match crate::rpc::advised_wait(&e) {
                Some(wait) if args.wait && Instant::now() + wait < deadline => {
                    eprintln!("the pool is full; trying again in {} ms", wait.as_millis());
                    tokio::time::sleep(wait).await;
                }
                _ => return Err(e.into()),
            },
        }
    };
    if !args.wait {
        println!("{}", submitted.tx_hash);
        return Ok(());
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let status = wait_for(c, submitted.tx_hash, left).await?;
    println!("tx      {}", status.tx_hash);
    println!("status  {}", status.status);
    println!("height  {}", status.height.unwrap_or_default());
    if let Some(out) = status.output.as_ref().or(status.output_hex.as_ref()) {
        if !out.is_empty() {
            println!("result  {out}");
        }
    }
    if let Some(e) = &status.error {
        println!("error   {e}");
    }
    if status.status == "failed" {
        bail!("the tx committed but the app call failed");
    }
    Ok(())
}

async fn query(c: &HttpClient, args: &QueryArgs) -> anyhow::Result<()> {
    let v = c
        .state_get(parse_context(&args.context)?, args.key.clone(), args.height)
        .await?;
    check_state_proof(&v)?;
    match (&v.value, &v.value_hex) {
        (Some(s), _) => println!("value       {s}"),
        (None, Some(h)) => println!("value_hex   {h}"),
        (None, None) => println!("value       (absent)"),
    }
    println!("height      {}", v.height);
    println!("state_root  {}", v.state_root);
    println!("proof       verified");
    Ok(())
}
