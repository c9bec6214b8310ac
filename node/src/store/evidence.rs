//! Evidence of equivocation a node saw, kept durably per context (column
//! family `evidence`, key `context ‖ height (BE) ‖ sha256 of the record`,
//! so the same evidence seen twice is kept once). Not sealed: it holds two
//! signed consensus messages (positions, block hashes, signatures), none
//! of a context's content.

use conclave_consensus::{types::sha256, ContextId, Evidence};

use super::{decode, height_key, Result, Store, StoreError, CF_EVIDENCE};

impl Store {
    /// Keeps `evidence` of `ctx` (synced); says whether it is new.
    pub fn put_evidence(&self, ctx: &ContextId, evidence: &Evidence) -> Result<bool> {
        let bytes = borsh::to_vec(evidence).map_err(|e| StoreError::Encode {
            cf: CF_EVIDENCE,
            msg: e.to_string(),
        })?;
        let mut key = height_key(ctx, evidence.height).to_vec();
        key.extend_from_slice(&sha256(&[&bytes]).0);
        let cf = self.cf(CF_EVIDENCE)?;
        if self.db.get_pinned_cf(cf, &key)?.is_some() {
            return Ok(false);
        }
        self.db.put_cf_opt(cf, key, bytes, &Self::synced())?;
        Ok(true)
    }

    /// The evidence kept for `ctx`, lowest height first, at most `limit`.
    pub fn evidence(&self, ctx: &ContextId, limit: usize) -> Result<Vec<Evidence>> {
        self.scan(CF_EVIDENCE, ctx.as_bytes(), ctx.as_bytes(), limit)?
            .iter()
            .map(|(_, v)| decode(CF_EVIDENCE, v))
            .collect()
    }
}
