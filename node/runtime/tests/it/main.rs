//! Integration tests of `conclave-runtime`: the real guest apps from
//! `conclave-apps`, and hand-written WAT modules for hostile guests.

mod chat_app;
mod common;
mod dao_app;
mod determinism;
mod faults_app;
mod host_api;
mod hostile;
mod kv_app;
mod loading;
mod pool;
