//! Completed checkpoints, kept per context by height (column family
//! `checkpoints`, key `context ‖ height (BE)`). Not sealed: a checkpoint
//! holds roots and BLS signatures, which leave the members anyway.

use conclave_consensus::{ContextId, Height};

use super::{decode, height_key, CheckpointRecord, Result, Store, StoreError, CF_CHECKPOINTS};

impl Store {
    /// Stores (or replaces, e.g. with more signers) a completed checkpoint.
    pub fn put_checkpoint(&self, ctx: &ContextId, c: &CheckpointRecord) -> Result<()> {
        let bytes = borsh::to_vec(c).map_err(|e| StoreError::Encode {
            cf: CF_CHECKPOINTS,
            msg: e.to_string(),
        })?;
        self.db.put_cf_opt(
            self.cf(CF_CHECKPOINTS)?,
            height_key(ctx, c.height),
            bytes,
            &Self::synced(),
        )?;
        Ok(())
    }

    pub fn checkpoint(&self, ctx: &ContextId, h: Height) -> Result<Option<CheckpointRecord>> {
        self.db
            .get_cf(self.cf(CF_CHECKPOINTS)?, height_key(ctx, h))?
            .map(|b| decode(CF_CHECKPOINTS, &b))
            .transpose()
    }

    /// Up to `limit` checkpoints of `ctx` from height `from` on, ascending.
    pub fn checkpoints_from(
        &self,
        ctx: &ContextId,
        from: Height,
        limit: usize,
    ) -> Result<Vec<CheckpointRecord>> {
        let start = height_key(ctx, from);
        self.scan(CF_CHECKPOINTS, &start, ctx.as_bytes(), limit)?
            .iter()
            .map(|(_, v)| decode(CF_CHECKPOINTS, v))
            .collect()
    }

    /// The highest checkpoint of `ctx`.
    pub fn latest_checkpoint(&self, ctx: &ContextId) -> Result<Option<CheckpointRecord>> {
        let end = height_key(ctx, Height(u64::MAX));
        let mut iter = self.db.iterator_cf(
            self.cf(CF_CHECKPOINTS)?,
            rocksdb::IteratorMode::From(&end, rocksdb::Direction::Reverse),
        );
        match iter.next() {
            Some(item) => {
                let (k, v) = item?;
                if k.starts_with(ctx.as_bytes()) {
                    Ok(Some(decode(CF_CHECKPOINTS, &v)?))
                } else {
                    Ok(None)
                }
            }
            None => Ok(None),
        }
    }
}
