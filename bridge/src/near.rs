//! The NEAR proxy as a relayer's [`Anchor`]: `conclave-bridge-near`'s
//! client under the relayer loop. NEAR blocks are final once the client
//! reads them, so a pass's marks are final blocks and never replaced.

use conclave_bridge_near::Submitted;
use conclave_checkpoint::Domain;

pub use conclave_bridge_near::{
    client::read_key_file, parse_account, AccountId, NearAccount, NearClient, NearProxy, PROXY_WASM,
};

use crate::chain::{Anchor, Mark, Outcome};
use crate::plan::ChainView;
use crate::source::{Members, ProvenAction, SignedCheckpoint};
use crate::Result;

fn outcome(s: Submitted) -> Outcome {
    match s {
        Submitted::Done(sent) => Outcome::Done {
            tx: sent.tx,
            gas_used: sent.gas_burnt,
            block: sent.block,
        },
        Submitted::AlreadyDone(why) => Outcome::AlreadyDone(why),
        Submitted::ActionFails(why) => Outcome::ActionFails(why),
    }
}

impl Anchor for NearProxy {
    fn label(&self) -> String {
        format!("near:{}", self.client().network())
    }

    fn domain(&self) -> Result<Domain> {
        Ok(NearProxy::domain(self)?)
    }

    fn address(&self) -> String {
        self.account_id().to_string()
    }

    async fn head(&self) -> Result<Mark> {
        Ok(self.client().final_head().await?)
    }

    async fn block_hash(&self, number: u64) -> Result<Option<[u8; 32]>> {
        Ok(self.client().block_hash(number).await?)
    }

    async fn view(&self) -> Result<ChainView> {
        let s = self.state().await?;
        Ok(ChainView {
            latest: s.latest,
            epoch: s.epoch,
            members_hash: s.members_hash,
        })
    }

    async fn announced(&self, height: u64) -> Result<Option<[u8; 32]>> {
        Ok(NearProxy::announced(self, height).await?)
    }

    async fn roots_at(&self, height: u64) -> Result<([u8; 32], [u8; 32])> {
        Ok(self
            .checkpoint_at(height)
            .await?
            .map_or(([0; 32], [0; 32]), |c| (c.state_root, c.actions_root)))
    }

    async fn executed(&self, id: [u8; 32]) -> Result<bool> {
        Ok(NearProxy::executed(self, id).await?)
    }

    async fn submit_checkpoint(&self, c: &SignedCheckpoint) -> Result<Outcome> {
        Ok(outcome(
            NearProxy::submit_checkpoint(self, &c.payload, &c.signers, &c.signature).await?,
        ))
    }

    async fn rotate_members(&self, height: u64, members: &Members) -> Result<Outcome> {
        Ok(outcome(
            NearProxy::rotate_members(self, height, &members.keys).await?,
        ))
    }

    async fn execute_action(&self, a: &ProvenAction) -> Result<Outcome> {
        Ok(outcome(
            NearProxy::execute_action(self, a.height, &a.action, &a.proof).await?,
        ))
    }
}
