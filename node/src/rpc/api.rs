//! The JSON-RPC methods. Their names are part of Conclave's interface.

use std::sync::Arc;

use conclave_consensus::{ContextId, Hash32, Height, SignedTx};
use conclave_runtime::Call;
use jsonrpsee::core::{async_trait, RpcResult, SubscriptionResult};
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::{Extensions, PendingSubscriptionSink};

use super::auth::Verifier;
use super::policy::{unauthorized, Authorized};
use super::types::*;
use super::{codes, err};
use crate::context::{BlockEvent, CheckpointEvent, SubmitError};
use crate::node::{now_ms, Node};
use crate::store::Overlay;
use crate::store::{app_key, TxStatus};

#[rpc(server, client)]
pub trait ConclaveApi {
    #[method(name = "node_status")]
    async fn node_status(&self) -> RpcResult<NodeStatus>;

    #[method(name = "node_health")]
    async fn node_health(&self) -> RpcResult<Health>;

    /// Trades a member's signature (hex, ed25519) over
    /// `"conclave/rpc-login/v1" ‖ this node's member id ‖ member ‖
    /// expires_ms (u64 BE)` for a member token valid on this node until
    /// `expires_ms` (at most 24 h ahead). See `rpc::auth`.
    #[method(name = "auth_login", param_kind = map)]
    async fn auth_login(
        &self,
        member: conclave_consensus::MemberId,
        expires_ms: u64,
        signature: String,
    ) -> RpcResult<LoginToken>;

    /// Creates a context running a bundled app (`app`, e.g. "kv") or the
    /// given wasm (`app_wasm`, hex), with this node and `members` as members,
    /// anchored to `anchors` (`evm:<chain id>:<0x address>`,
    /// `near:<network>:<account>` or a 41-byte domain in hex) and
    /// checkpointing every `checkpoint_interval` blocks (default: the
    /// node's `[checkpoint] interval`).
    #[method(name = "context_create", param_kind = map)]
    async fn context_create(
        &self,
        app: Option<String>,
        app_wasm: Option<String>,
        members: Option<Vec<conclave_consensus::MemberId>>,
        anchors: Option<Vec<String>>,
        checkpoint_interval: Option<u64>,
    ) -> RpcResult<ContextCreated>;

    /// The contexts of the caller (a member token), or all of them (the
    /// admin token).
    #[method(name = "context_list", with_extensions)]
    async fn context_list(&self) -> RpcResult<Vec<ContextSummary>>;

    #[method(name = "context_info", param_kind = map)]
    async fn context_info(
        &self,
        #[argument(rename = "context")] ctx: ContextId,
    ) -> RpcResult<ContextSummary>;

    /// The nonce `member` should use next (above committed and pending).
    #[method(name = "context_nonce", param_kind = map)]
    async fn context_nonce(
        &self,
        #[argument(rename = "context")] ctx: ContextId,
        member: conclave_consensus::MemberId,
    ) -> RpcResult<u64>;

    #[method(name = "tx_submit", param_kind = map)]
    async fn tx_submit(&self, tx: SignedTx) -> RpcResult<TxSubmitted>;

    /// A tx's status; a tx of a context the caller is not a member of
    /// reads as `unknown`.
    #[method(name = "tx_status", param_kind = map, with_extensions)]
    async fn tx_status(&self, hash: Hash32) -> RpcResult<TxStatusView>;

    /// An app storage value at `height` (default: latest) with its proof.
    #[method(name = "state_get", param_kind = map)]
    async fn state_get(
        &self,
        #[argument(rename = "context")] ctx: ContextId,
        key: String,
        height: Option<u64>,
    ) -> RpcResult<StateValue>;

    /// Calls an app method read-only on the latest state, with the
    /// authenticated member as the app's caller.
    #[method(name = "app_view", param_kind = map, with_extensions)]
    async fn app_view(
        &self,
        #[argument(rename = "context")] ctx: ContextId,
        method: String,
        args: Option<serde_json::Value>,
    ) -> RpcResult<ViewResult>;

    #[method(name = "block_get", param_kind = map)]
    async fn block_get(
        &self,
        #[argument(rename = "context")] ctx: ContextId,
        height: Option<u64>,
    ) -> RpcResult<BlockView>;

    /// Committed blocks, of one context or of all the caller's contexts.
    /// Ends when the caller's token expires or it leaves the context.
    #[subscription(name = "subscribe_blocks" => "block", unsubscribe = "unsubscribe_blocks", item = BlockEvent, param_kind = map, with_extensions)]
    async fn subscribe_blocks(
        &self,
        #[argument(rename = "context")] only: Option<ContextId>,
    ) -> SubscriptionResult;

    /// Checkpoints of `context` as this node stores them (at a quorum, and
    /// again when more members signed): what a relayer carries to chains.
    /// Ends when the caller's token expires or it leaves the context.
    #[subscription(name = "subscribe_checkpoints" => "checkpoint", unsubscribe = "unsubscribe_checkpoints", item = CheckpointEvent, param_kind = map, with_extensions)]
    async fn subscribe_checkpoints(
        &self,
        #[argument(rename = "context")] ctx: ContextId,
    ) -> SubscriptionResult;
}

pub struct RpcImpl {
    pub(super) node: Arc<Node>,
    verifier: Arc<Verifier>,
    tx_check: super::tx_check::TxChecker,
}

impl RpcImpl {
    pub fn new(node: Arc<Node>, verifier: Arc<Verifier>) -> Self {
        Self {
            node,
            verifier,
            tx_check: super::tx_check::TxChecker::start(Default::default()),
        }
    }

    fn may_read(&self, ctx: &ContextId, who: &conclave_consensus::MemberId) -> RpcResult<bool> {
        self.node.may_read(ctx, who).map_err(internal)
    }

    fn count(&self, method: &str) {
        self.node.metrics.count_rpc(method);
    }

    fn summary(&self, id: &ContextId) -> RpcResult<crate::store::ContextRecord> {
        self.node
            .store
            .context(id)
            .map_err(|e| err(codes::INTERNAL, e.to_string()))?
            .ok_or_else(|| err(codes::UNKNOWN_CONTEXT, format!("unknown context {id}")))
    }
}

fn utf8(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

fn submit_error(e: SubmitError) -> ErrorObjectOwned {
    match e {
        SubmitError::Rejected(r) => err(codes::TX_REJECTED, format!("tx rejected: {r}")),
        // The wait goes in the error's data, for clients to follow.
        SubmitError::Full {
            refused,
            retry_after,
        } => ErrorObjectOwned::owned(
            codes::MEMPOOL_FULL,
            refused.to_string(),
            Some(serde_json::json!({
                "retry_after_ms": u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX)
            })),
        ),
        SubmitError::Mempool(m) => err(codes::TX_REJECTED, format!("tx rejected: {m}")),
        e @ SubmitError::Storage(_) => err(codes::STORAGE_FAULT, e.to_string()),
        other => err(codes::INTERNAL, other.to_string()),
    }
}

fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    err(codes::INTERNAL, e.to_string())
}

#[async_trait]
impl ConclaveApiServer for RpcImpl {
    async fn node_status(&self) -> RpcResult<NodeStatus> {
        self.count("node_status");
        let me = self.node.member_info();
        Ok(NodeStatus {
            version: env!("CARGO_PKG_VERSION").into(),
            member_id: me.id,
            bls_public_key: me.bls_public_key,
            bls_pop: me.bls_pop,
            contexts: self.node.store.contexts().map_err(internal)?.len(),
            uptime_secs: self.node.uptime_secs(),
        })
    }

    async fn node_health(&self) -> RpcResult<Health> {
        self.count("node_health");
        // Public, so it names no context: only that one cannot write.
        let problems: Vec<String> = self
            .node
            .context_handles()
            .iter()
            .filter_map(|h| h.storage_fault())
            .map(|reason| format!("a context cannot write to disk: {reason}"))
            .collect();
        Ok(Health {
            ok: problems.is_empty(),
            problems,
        })
    }

    async fn auth_login(
        &self,
        member: conclave_consensus::MemberId,
        expires_ms: u64,
        signature: String,
    ) -> RpcResult<LoginToken> {
        self.count("auth_login");
        let token = self
            .verifier
            .login(&member, expires_ms, &signature, now_ms())
            .map_err(|e| unauthorized(e.to_string()))?;
        Ok(LoginToken { token, expires_ms })
    }

    async fn context_create(
        &self,
        app: Option<String>,
        app_wasm: Option<String>,
        members: Option<Vec<conclave_consensus::MemberId>>,
        anchors: Option<Vec<String>>,
        checkpoint_interval: Option<u64>,
    ) -> RpcResult<ContextCreated> {
        self.count("context_create");
        let anchors = anchors
            .unwrap_or_default()
            .iter()
            .map(|a| crate::checkpoint::parse_anchor(a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(codes::BAD_REQUEST, e))?;
        if let Some(i) = checkpoint_interval {
            if !(1..=crate::checkpoint::MAX_INTERVAL).contains(&i) {
                return Err(err(
                    codes::BAD_REQUEST,
                    format!(
                        "checkpoint_interval {i} outside 1..={}",
                        crate::checkpoint::MAX_INTERVAL
                    ),
                ));
            }
        }
        let wasm: Vec<u8> = match (app, app_wasm) {
            (Some(name), None) => conclave_apps::by_name(&name)
                .ok_or_else(|| {
                    err(
                        codes::BAD_REQUEST,
                        format!(
                            "unknown app {name:?}; bundled apps: {}",
                            conclave_apps::names().collect::<Vec<_>>().join(", ")
                        ),
                    )
                })?
                .to_vec(),
            (None, Some(hex_wasm)) => hex::decode(hex_wasm.trim_start_matches("0x"))
                .map_err(|e| err(codes::BAD_REQUEST, format!("app_wasm is not hex: {e}")))?,
            _ => {
                return Err(err(
                    codes::BAD_REQUEST,
                    "give exactly one of `app` (a bundled app's name) or `app_wasm` (hex)",
                ))
            }
        };
        let others = members.unwrap_or_default();
        let node = self.node.clone();
        let (record, offers) = if others.is_empty() {
            let record = tokio::task::spawn_blocking(move || {
                node.create_context_with(&wasm, Vec::new(), anchors, checkpoint_interval)
            })
            .await
            .map_err(internal)?
            .map_err(super::error_object)?;
            (record, Vec::new())
        } else {
            crate::onboarding::create_shared(&node, wasm, others, anchors, checkpoint_interval)
                .await
                .map_err(super::error_object)?
        };
        Ok(ContextCreated {
            context_id: record.id,
            app_hash: record.genesis.app_hash,
            offers,
        })
    }

    async fn context_list(&self, ext: &Extensions) -> RpcResult<Vec<ContextSummary>> {
        self.count("context_list");
        let caller = Authorized::of(ext);
        let records = self.node.store.contexts().map_err(internal)?;
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            let visible = match caller.member {
                _ if caller.admin => true,
                Some(me) => self.may_read(&record.id, &me.member)?,
                None => false,
            };
            if visible {
                out.push(summarize(record));
            }
        }
        Ok(out)
    }

    async fn context_info(&self, context: ContextId) -> RpcResult<ContextSummary> {
        self.count("context_info");
        let record = self.summary(&context)?;
        let pending = match self.node.context(&context) {
            Ok(h) => h.pending().await.ok(),
            Err(_) => None,
        };
        let mut s = summarize(record);
        s.pending_txs = pending;
        Ok(s)
    }

    async fn context_nonce(
        &self,
        context: ContextId,
        member: conclave_consensus::MemberId,
    ) -> RpcResult<u64> {
        self.count("context_nonce");
        let handle = self.node.context(&context)?;
        handle.next_nonce(member).await.map_err(submit_error)
    }

    async fn tx_submit(&self, tx: SignedTx) -> RpcResult<TxSubmitted> {
        self.count("tx_submit");
        let handle = self.node.context(&tx.tx.context_id)?;
        // The signature check is the expensive part: done here, in batches
        // with the other submitters' txs, and only here (the actor takes
        // the checked tx as it is); and not at all for a tx the pool
        // refuses anyway (a full pool, a stale nonce).
        handle.refuses(&tx).map_err(submit_error)?;
        let tx = self.tx_check.verified(tx).await.map_err(|e| match e {
            super::tx_check::CheckError::Rejected(_) => {
                err(codes::TX_REJECTED, "tx rejected: bad signature")
            }
            stopped => internal(stopped),
        })?;
        let tx_hash = handle.submit(tx).await.map_err(submit_error)?;
        Ok(TxSubmitted { tx_hash })
    }

    async fn tx_status(&self, ext: &Extensions, hash: Hash32) -> RpcResult<TxStatusView> {
        self.count("tx_status");
        let me = Authorized::of(ext)
            .member
            .ok_or_else(|| unauthorized("tx_status needs a member token"))?
            .member;
        let mut view = TxStatusView {
            tx_hash: hash,
            status: "unknown".into(),
            context_id: None,
            height: None,
            index: None,
            output: None,
            output_hex: None,
            error: None,
            events: Vec::new(),
            fuel_used: None,
        };
        // A tx of a context the caller may not read, and did not help
        // decide, is reported like one this node never saw.
        let committed = match self.node.store.tx(&hash).map_err(internal)? {
            Some(rec)
                if self.may_read(&rec.context_id, &me)?
                    || self
                        .node
                        .was_member_at(&rec.context_id, rec.height, &me)
                        .map_err(internal)? =>
            {
                Some(rec)
            }
            _ => None,
        };
        if let Some(rec) = committed {
            view.status = match rec.receipt.status {
                TxStatus::Ok => "committed".into(),
                TxStatus::Failed => "failed".into(),
            };
            view.context_id = Some(rec.context_id);
            view.height = Some(rec.height.0);
            view.index = Some(rec.index);
            view.output = utf8(&rec.receipt.output);
            view.output_hex = Some(hex::encode(&rec.receipt.output));
            view.error = rec.receipt.error;
            view.events = rec
                .receipt
                .events
                .into_iter()
                .map(|(name, data)| EventView {
                    name,
                    data: utf8(&data).unwrap_or_else(|| hex::encode(&data)),
                })
                .collect();
            view.fuel_used = Some(rec.receipt.fuel_used);
            return Ok(view);
        }
        let handles: Vec<_> = self
            .node
            .store
            .contexts()
            .map_err(internal)?
            .into_iter()
            .filter(|r| self.node.may_read(&r.id, &me).unwrap_or(false))
            .filter_map(|r| self.node.context(&r.id).ok())
            .collect();
        for h in handles {
            if h.is_pending(hash).await.unwrap_or(false) {
                view.status = "pending".into();
                view.context_id = Some(h.id);
                break;
            }
        }
        Ok(view)
    }

    async fn state_get(
        &self,
        context: ContextId,
        key: String,
        height: Option<u64>,
    ) -> RpcResult<StateValue> {
        self.count("state_get");
        let record = self.summary(&context)?;
        let height = height.unwrap_or(record.height.0);
        if height > record.height.0 {
            return Err(err(
                codes::NOT_FOUND,
                format!("height {height} is above the tip {}", record.height.0),
            ));
        }
        let state = self.node.store.state(context);
        let k = app_key(key.as_bytes());
        let (value, proof) = state.get_with_proof(&k, height).map_err(internal)?;
        let root = state.root(height).map_err(internal)?;
        Ok(StateValue {
            context_id: context,
            key,
            value: value.as_deref().and_then(utf8),
            value_hex: value.as_deref().map(hex::encode),
            height,
            state_root: root,
            proof: hex::encode(borsh::to_vec(&proof).map_err(internal)?),
        })
    }

    async fn app_view(
        &self,
        ext: &Extensions,
        context: ContextId,
        method: String,
        args: Option<serde_json::Value>,
    ) -> RpcResult<ViewResult> {
        self.count("app_view");
        let caller = Authorized::of(ext)
            .member
            .ok_or_else(|| unauthorized("app_view needs a member token"))?
            .member;
        let record = self.summary(&context)?;
        let args = match args {
            None => Vec::new(),
            Some(serde_json::Value::String(s)) => s.into_bytes(),
            Some(other) => other.to_string().into_bytes(),
        };
        let node = self.node.clone();
        let outcome = tokio::task::spawn_blocking(move || -> crate::Result<_> {
            let app = node.app(&record.genesis.app_hash)?;
            let state = node.store.state(context);
            let overlay = Overlay::new(&state, record.height);
            // The members who validate the next height: the set a tx
            // submitted now would execute under.
            let members: Vec<[u8; 32]> = crate::members::read(&overlay, &record.genesis)?
                .at(Height(record.height.0 + 1))
                .ids()
                .iter()
                .map(|m| *m.as_bytes())
                .collect();
            let view = crate::exec::ReadView::new(&overlay);
            let call = Call {
                method: &method,
                args: &args,
                caller: caller.0,
                context_id: *context.as_bytes(),
                block_height: record.height.0,
                block_time_ms: record.last_time_ms,
                members: &members,
                read_only: true,
            };
            Ok(node.runtime.call(&app, call, &view)?)
        })
        .await
        .map_err(internal)?
        .map_err(internal)?;
        let (output, error) = match outcome.result {
            Ok(out) => (Some(out), None),
            Err(f) => (None, Some(f.to_string())),
        };
        Ok(ViewResult {
            height: record.height.0,
            output: output.as_deref().and_then(utf8),
            output_hex: output.as_deref().map(hex::encode),
            error,
            fuel_used: outcome.fuel_used,
        })
    }

    async fn block_get(&self, context: ContextId, height: Option<u64>) -> RpcResult<BlockView> {
        self.count("block_get");
        let record = self.summary(&context)?;
        let h = Height(height.unwrap_or(record.height.0));
        let block = self
            .node
            .store
            .block(&context, h)
            .map_err(internal)?
            .ok_or_else(|| err(codes::NOT_FOUND, format!("no block at height {h}")))?;
        let cert = self
            .node
            .store
            .certificate(&context, h)
            .map_err(internal)?
            .ok_or_else(|| err(codes::INTERNAL, format!("no certificate at height {h}")))?;
        Ok(BlockView {
            hash: block.hash(),
            txs: block.txs.iter().map(|t| t.hash()).collect(),
            header: block.header,
            certificate_round: cert.round,
            signers: cert.signatures.iter().map(|(m, _)| *m).collect(),
        })
    }

    async fn subscribe_blocks(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
        only: Option<ContextId>,
    ) -> SubscriptionResult {
        self.count("subscribe_blocks");
        let rx = self.node.events.subscribe();
        self.stream(pending, ext, "subscribe_blocks", only, rx, |e| e.context_id)
            .await
    }

    async fn subscribe_checkpoints(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
        ctx: ContextId,
    ) -> SubscriptionResult {
        self.count("subscribe_checkpoints");
        let rx = self.node.checkpoint_events.subscribe();
        self.stream(pending, ext, "subscribe_checkpoints", Some(ctx), rx, |e| {
            e.context_id
        })
        .await
    }
}

fn summarize(r: crate::store::ContextRecord) -> ContextSummary {
    ContextSummary {
        context_id: r.id,
        app_hash: r.genesis.app_hash,
        height: r.height.0,
        last_block_hash: r.last_block_hash,
        state_root: r.state_root,
        members_hash: r.genesis.members_hash(),
        members: r.genesis.members,
        pending_txs: None,
    }
}
