//! The compiled proxy in nearcore's VM (`near-vm-runner`, wasmtime): it
//! passes NEAR's preparation (feature and import checks), runs the vectors'
//! NEAR checkpoint and action end to end, and reports gas per member count;
//! the relayer's NEAR client and loop (`conclave-bridge-near`,
//! `conclave-bridge`) against a NEAR node (`node/`) that runs it.

mod cli;
mod client;
mod gas;
mod harness;
mod node;
mod relay;
mod vm;

use conclave_near_proxy::types as proxy_types;

#[path = "../../../proxy/src/tests/fixture.rs"]
mod fixture;
