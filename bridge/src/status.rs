//! `conclave anchor status`: what a proxy holds against what the context
//! decided, read from the chain and a member's node (no relayer state).

use serde::Serialize;

use crate::chain::Anchor;
use crate::source::Source;
use crate::Result;

/// One chain's view of a context.
#[derive(Clone, Debug, Serialize)]
pub struct AnchorStatus {
    pub chain: String,
    pub proxy: String,
    /// Height of the latest checkpoint on chain.
    pub anchored_height: u64,
    /// The context's committed height.
    pub tip: u64,
    /// `tip - anchored_height`.
    pub lag_blocks: u64,
    pub epoch: u64,
    pub actions: Vec<ActionStatus>,
}

/// Where one action stands on the chain.
#[derive(Clone, Debug, Serialize)]
pub struct ActionStatus {
    pub id: String,
    pub height: u64,
    /// `pending` (not on chain yet), `executed`.
    pub state: String,
    /// The transaction that executed it.
    pub tx: Option<String>,
}

/// Reads the status of `proxy` for the context behind `source`.
pub async fn status<S: Source, C: Anchor>(proxy: &C, source: &S) -> Result<AnchorStatus> {
    let view = proxy.view().await?;
    let tip = source.tip().await?;
    let domain = proxy.domain()?;
    let mut actions = Vec::new();
    let mut after = 0;
    loop {
        let page = source.actions(&domain, after, 500).await?;
        let Some(last) = page.last() else { break };
        if last.height <= after {
            break;
        }
        after = last.height;
        for a in page {
            let executed = proxy.executed(a.action.id).await?;
            let tx = if executed {
                proxy.executed_in(a.action.id).await?
            } else {
                None
            };
            actions.push(ActionStatus {
                id: hex::encode(a.action.id),
                height: a.height,
                state: if executed { "executed" } else { "pending" }.into(),
                tx,
            });
        }
    }
    Ok(AnchorStatus {
        chain: proxy.label(),
        proxy: proxy.address(),
        anchored_height: view.latest,
        tip,
        lag_blocks: tip.saturating_sub(view.latest),
        epoch: view.epoch,
        actions,
    })
}
