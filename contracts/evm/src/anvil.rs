//! A private anvil (a real Ethereum dev chain, from the npm package the
//! build installs) on a loopback port of its own, killed on drop: what the
//! contract tests, the relayer's end-to-end tests and local devnets run
//! against.

use std::io::{BufRead, BufReader};
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
    ///
    /// anvil binds a port the kernel picks (`--port 0`) and says which on
    /// its output. A port picked here and handed to it was free only until
    /// the check let go of it: two anvils started at once could be given
    /// the same one, the second then failed to bind, and its test talked to
    /// the first one's chain (a contract test failed with "nonce too low").
    pub async fn start_with(extra: &[&str]) -> crate::Result<Anvil> {
        let anvil_err = |e: &dyn std::fmt::Display| Error::Anvil(e.to_string());
        let mut child = Command::new(binary())
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(extra)
            // Room for deploying 100 members (one PoP pairing each).
            .args(["--gas-limit", "100000000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                Error::Anvil(format!(
                    "cannot start {} ({e}); run .ci/setup.sh",
                    binary().display()
                ))
            })?;
        let stdout = child.stdout.take().expect("piped");
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        // Finds the line that names the port, then reads the rest of the
        // output (anvil logs every call) so that anvil never blocks on a
        // full pipe; it ends when anvil does.
        std::thread::spawn(move || {
            let mut port_tx = Some(port_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.trim().strip_prefix("Listening on ") {
                    if let Some(tx) = port_tx.take() {
                        let _ = tx.send(addr.to_string());
                    }
                }
            }
        });
        let mut anvil = Anvil {
            child,
            url: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            match port_rx.try_recv() {
                Ok(addr) => break addr,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    return Err(Error::Anvil("anvil exited before listening".into()))
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
            }
            if Instant::now() > deadline {
                return Err(Error::Anvil("anvil did not say where it listens".into()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        anvil.url = format!("http://{addr}");
        let url = anvil.url.parse().map_err(|e| anvil_err(&e))?;
        let provider = ProviderBuilder::new().connect_http(url);
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
