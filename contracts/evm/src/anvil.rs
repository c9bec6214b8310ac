//! A private anvil (a real Ethereum dev chain, from the npm package the
//! build installs) on a free loopback port, killed on drop: what the
//! contract tests, the relayer's end-to-end tests and local devnets run
//! against.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;
use alloy::providers::{Provider, ProviderBuilder};

/// anvil's first dev account's key (well known, test only).
pub const DEV_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// anvil's second and third dev accounts' keys (well known, test only).
pub const DEV_KEY_1: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
pub const DEV_KEY_2: &str = "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

pub struct Anvil {
    child: Child,
    pub url: String,
}

/// The anvil binary the build installed (contracts/evm/node_modules).
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
}

impl Anvil {
    /// Starts anvil and waits until it answers `eth_chainId`.
    pub async fn start() -> crate::Result<Anvil> {
        Self::start_with(&[]).await
    }

    /// [`Self::start`] with extra command-line arguments.
    pub async fn start_with(extra: &[&str]) -> crate::Result<Anvil> {
        let anvil_err = |e: &dyn std::fmt::Display| Error::Anvil(e.to_string());
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| anvil_err(&e))?
            .port();
        let child = Command::new(binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(extra)
            // Room for deploying 100 members (one PoP pairing each).
            .args(["--gas-limit", "100000000", "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                Error::Anvil(format!(
                    "cannot start {} ({e}); run .ci/setup.sh",
                    binary().display()
                ))
            })?;
        let anvil = Anvil {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let url = anvil.url.parse().map_err(|e| anvil_err(&e))?;
        let provider = ProviderBuilder::new().connect_http(url);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(id) = provider.get_chain_id().await {
                if id != 31337 {
                    return Err(Error::Anvil(format!("unexpected chain id {id}")));
                }
                return Ok(anvil);
            }
            if Instant::now() > deadline {
                return Err(Error::Anvil(format!(
                    "anvil did not answer on {}",
                    anvil.url
                )));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
