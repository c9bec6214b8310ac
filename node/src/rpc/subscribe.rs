//! Subscriptions: the stream loop shared by `subscribe_blocks` and
//! `subscribe_checkpoints` (who may subscribe, when a stream ends).

use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::{Extensions, PendingSubscriptionSink};
use tokio::sync::broadcast::error::RecvError;

use super::api::RpcImpl;
use super::policy::{forbidden, unauthorized, Authorized};
use super::{codes, err};
use crate::node::now_ms;
use conclave_consensus::ContextId;

impl RpcImpl {
    /// Streams `rx`'s events (of context `only`, or of every context the
    /// caller is a member of) to a subscriber with a member token, until
    /// it goes away, its token expires, it leaves the context, or it falls
    /// too far behind.
    pub(super) async fn stream<E: Clone + serde::Serialize>(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
        method: &str,
        only: Option<ContextId>,
        mut rx: tokio::sync::broadcast::Receiver<E>,
        context_of: impl Fn(&E) -> ContextId,
    ) -> SubscriptionResult {
        // The policy has checked the token and, when a context is named,
        // that the caller is its member.
        let Some(token) = Authorized::of(ext).member else {
            pending
                .reject(unauthorized(format!("{method} needs a member token")))
                .await;
            return Ok(());
        };
        let me = token.member;
        if let Some(id) = &only {
            if !self.node.may_read(id, &me)? {
                pending.reject(forbidden(&me, id)).await;
                return Ok(());
            }
            if self.node.context(id).is_err() {
                pending
                    .reject(err(codes::UNKNOWN_CONTEXT, format!("unknown context {id}")))
                    .await;
                return Ok(());
            }
        }
        let sink = pending.accept().await?;
        let expiry = tokio::time::Instant::now()
            + std::time::Duration::from_millis(token.expires_ms.saturating_sub(now_ms()));
        loop {
            tokio::select! {
                _ = sink.closed() => break,
                // The token is checked per call; a subscription outliving it
                // ends with it.
                _ = tokio::time::sleep_until(expiry) => break,
                event = rx.recv() => match event {
                    Ok(event) => {
                        let ctx = context_of(&event);
                        if only.is_some_and(|c| c != ctx) {
                            continue;
                        }
                        // Asked per event: a member who leaves the context
                        // stops seeing it.
                        if !self.node.may_read(&ctx, &me)? {
                            if only.is_some() {
                                break;
                            }
                            continue;
                        }
                        let msg = serde_json::value::to_raw_value(&event)?;
                        // A subscriber too slow to keep up is dropped rather
                        // than buffered without bound.
                        if sink.send_timeout(msg, std::time::Duration::from_secs(2)).await.is_err() {
                            self.dropped(method);
                            break;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        self.dropped(method);
                        break;
                    }
                    Err(RecvError::Closed) => break,
                },
            }
        }
        Ok(())
    }

    /// A subscriber of `method` fell behind and was dropped.
    fn dropped(&self, method: &str) {
        tracing::debug!(method, "dropped a subscriber that fell behind");
        self.node
            .metrics
            .rpc_subscribers_dropped_total
            .with_label_values(&[method])
            .inc();
    }
}
