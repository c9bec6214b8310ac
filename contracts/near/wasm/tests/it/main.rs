//! The compiled proxy in nearcore's VM (`near-vm-runner`, wasmtime): it
//! passes NEAR's preparation (feature and import checks), runs the vectors'
//! NEAR checkpoint and action end to end, and reports gas per member count.

mod gas;
mod harness;
mod vm;

use conclave_near_proxy::types as proxy_types;

#[path = "../../../proxy/src/tests/fixture.rs"]
mod fixture;
