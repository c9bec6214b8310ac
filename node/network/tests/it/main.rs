//! Multi-node scenarios of the network layer, all on 127.0.0.1 with OS-picked
//! ports. Every wait is on a condition, bounded by a timeout.

// Tests fail by panicking; the workspace forbids unwrap in production code.
#![allow(clippy::unwrap_used)]

mod context_isolation;
mod gossip_abuse;
mod gossip_n3;
mod n2_restart_static_peer;
mod push;
mod reconnect_heard;
mod reconnect_n4;
mod request_response;
mod slow_app;
mod stream_drop;
mod support;
