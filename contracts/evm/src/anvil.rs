//! A private anvil per test: started from node_modules on a free loopback
//! port, killed on drop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::providers::{Provider, ProviderBuilder};
use anyhow::{bail, Context};

/// anvil's first dev account's key (well known, test only).
pub const DEV_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

pub struct Anvil {
    child: Child,
    pub url: String,
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
}

impl Anvil {
    /// Starts anvil and waits until it answers `eth_chainId`.
    pub async fn start() -> anyhow::Result<Anvil> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            // Room for deploying 100 members (one PoP pairing each).
            .args(["--gas-limit", "100000000", "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start anvil (run npm ci in contracts/evm)")?;
        let anvil = Anvil {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let provider = ProviderBuilder::new().connect_http(anvil.url.parse()?);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(id) = provider.get_chain_id().await {
                if id != 31337 {
                    bail!("unexpected chain id {id}");
                }
                return Ok(anvil);
            }
            if Instant::now() > deadline {
                bail!("anvil did not answer on {}", anvil.url);
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
