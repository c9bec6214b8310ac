//! Checking the database against itself: every stored byte readable with
//! its checksum, and each context's chain of blocks and state tree whole.
//! The node runs the quick check of each context's tip at every start (a
//! state that silently differs from its block is never served); `conclave
//! repair` runs the full scan and, on damage, RocksDB's own repair.

use std::path::Path;

use conclave_consensus::{Hash32, Height};
use rocksdb::{IteratorMode, Options};

use super::{ContextRecord, Result, Store, StoreError, ALL_CFS};

/// Whether `e` says the database files are damaged (rather than, say, a
/// wrong key or a bug): what `conclave repair` can try to fix.
pub fn is_damage(e: &StoreError) -> bool {
    match e {
        StoreError::Db(e) => matches!(
            e.kind(),
            rocksdb::ErrorKind::Corruption | rocksdb::ErrorKind::IOError
        ),
        StoreError::Corrupt { .. } | StoreError::Tree(_) => true,
        _ => false,
    }
}

/// RocksDB's repair of the database at `path` (the database must not be
/// open): it rebuilds the manifest from the table files it finds and sets
/// aside tables it cannot read (under `path/lost`). What it drops is found
/// by [`Store::check_context`] afterwards.
pub fn repair_files(path: &Path) -> Result<()> {
    let opts = Options::default();
    rocksdb::DB::repair(&opts, path)?;
    Ok(())
}

/// What [`Store::verify_checksums`] read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scanned {
    pub records: u64,
    pub bytes: u64,
}

/// How far [`Store::check_context`] looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// The tip only: its block, and the state root the tree gives for it.
    Tip,
    /// Every height: each block, its certificate, its link to its parent
    /// and its txs' records; and every key of the state at the tip.
    Chain,
}

impl Store {
    /// Reads every record of every column family, each block of the files
    /// checked against its checksum; the first damage is the error.
    pub fn verify_checksums(&self) -> Result<Scanned> {
        let mut scanned = Scanned::default();
        for name in ALL_CFS {
            let cf = self.cf(name)?;
            let mut opts = super::total_order();
            opts.set_verify_checksums(true);
            opts.fill_cache(false);
            for item in self.db().iterator_cf_opt(cf, opts, IteratorMode::Start) {
                let (k, v) = item?;
                scanned.records += 1;
                scanned.bytes += (k.len() + v.len()) as u64;
            }
        }
        Ok(scanned)
    }

    /// The database's directory.
    pub fn path(&self) -> &Path {
        self.db().path()
    }

    /// One small synced write (a fixed record of `meta`): whether the
    /// database takes writes again after a failed one (a full disk).
    pub fn probe_write(&self) -> Result<()> {
        let mut w = rocksdb::WriteOptions::default();
        w.set_sync(true);
        self.db()
            .put_cf_opt(self.cf(super::CF_META)?, b"write_probe", b"ok", &w)?;
        Ok(())
    }

    /// Writes every column family's memtable to table files: what was
    /// only in RocksDB's own log is then in `.sst` files (tests that damage
    /// table files, and a copy taken while the node is stopped).
    pub fn flush(&self) -> Result<()> {
        for name in ALL_CFS {
            self.db().flush_cf(self.cf(name)?)?;
        }
        Ok(())
    }

    /// Checks that `record`'s committed tip is what the database holds: its
    /// app is there, the tip's block hashes to the record's, carries its state root, and the
    /// state tree gives that root at the tip; with [`Depth::Chain`] also
    /// that every key of that state reads, and that every height has its
    /// block, linked to its parent, its certificate for that block and the
    /// records of its txs. The error says what is missing or wrong.
    pub fn check_context(&self, record: &ContextRecord, depth: Depth) -> Result<(), String> {
        let id = record.id;
        let tip = record.height;
        let root = self
            .state(id)
            .root(tip.0)
            .map_err(|e| format!("the state tree at height {tip}: {e}"))?;
        if root != record.state_root {
            return Err(format!(
                "the state tree gives root {root} at height {tip}, not the committed {}",
                record.state_root
            ));
        }
        let app = record.genesis.app_hash;
        match self.blob(&app) {
            Ok(Some(wasm)) if conclave_runtime::app_hash(&wasm) == app.0 => {}
            Ok(Some(_)) => return Err(format!("the app {app} does not hash to its name")),
            Ok(None) => return Err(format!("the app {app} is missing")),
            Err(e) => return Err(format!("the app {app}: {e}")),
        }
        if tip == Height(0) {
            return Ok(());
        }
        let block = self
            .block(&id, tip)
            .map_err(|e| format!("block {tip}: {e}"))?
            .ok_or_else(|| format!("block {tip} (the committed tip) is missing"))?;
        if block.hash() != record.last_block_hash || block.header.state_root != record.state_root {
            return Err(format!(
                "block {tip} is not the committed tip (hash {}, expected {})",
                block.hash(),
                record.last_block_hash
            ));
        }
        if depth == Depth::Tip {
            return Ok(());
        }
        self.state(id)
            .walk(tip.0)
            .map_err(|e| format!("the state at height {tip} is not whole: {e}"))?;
        let mut child: Option<(Height, Hash32)> = None;
        for h in (1..=tip.0).rev().map(Height) {
            let block = self
                .block(&id, h)
                .map_err(|e| format!("block {h}: {e}"))?
                .ok_or_else(|| format!("block {h} is missing"))?;
            let hash = block.hash();
            if let Some((above, parent)) = child {
                if parent != hash {
                    return Err(format!("block {above} does not link to block {h}"));
                }
            }
            let cert = self
                .certificate(&id, h)
                .map_err(|e| format!("certificate {h}: {e}"))?
                .ok_or_else(|| format!("the certificate of block {h} is missing"))?;
            if cert.block_hash != hash || cert.height != h {
                return Err(format!(
                    "the certificate of height {h} is for another block"
                ));
            }
            for tx in &block.txs {
                let hash = tx.hash();
                match self.tx(&hash) {
                    Ok(Some(rec)) if rec.height == h => {}
                    Ok(_) => {
                        return Err(format!("the record of tx {hash} of block {h} is missing"))
                    }
                    Err(e) => return Err(format!("the record of tx {hash} of block {h}: {e}")),
                }
            }
            child = Some((h, block.header.parent_hash));
        }
        Ok(())
    }
}
