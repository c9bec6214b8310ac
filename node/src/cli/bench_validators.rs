//! The validators of `conclave bench` as processes of this binary: their
//! homes (written like `conclave testnet`), ports, worker threads, CPU
//! pinning and start-up.

use std::process::Child;
use std::time::{Duration, Instant};

use conclave_consensus::ContextId;
use ed25519_dalek::SigningKey;

use crate::config::Config;
use crate::keys::NodeKeys;
use crate::rpc::ConclaveApiClient;

/// A validator the load goes to: its RPC, the member key to sign with and
/// its home (for RPC credentials).
pub(super) struct Target {
    pub rpc: String,
    pub key: SigningKey,
    pub home: std::path::PathBuf,
}

pub(super) struct Processes(pub Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// CPU lists for `--pin`: (validators, load generator).
pub(super) fn pin_sets() -> anyhow::Result<(String, String)> {
    let cpus = std::thread::available_parallelism()?.get();
    anyhow::ensure!(
        cpus >= 2,
        "--pin needs at least 2 CPUs, this machine has {cpus}"
    );
    let validators = if cpus == 2 {
        "0".to_owned()
    } else {
        format!("0-{}", cpus - 2)
    };
    Ok((validators, (cpus - 1).to_string()))
}

/// Pins process `pid` to `cpus` with `taskset`.
pub(super) fn pin(pid: u32, cpus: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| anyhow::anyhow!("--pin runs taskset (util-linux): {e}"))?;
    anyhow::ensure!(status.success(), "taskset -p -c {cpus} {pid} failed");
    Ok(())
}

/// Writes `n` validator homes under `dir` (`conclave testnet`, a shared
/// context of `app`) and starts each as a process of this binary; returns
/// once every one answers `node_health`. Each gets `workers` worker
/// threads (default: its share of this machine's CPUs); `tune` may change
/// each home's configuration further.
pub(super) async fn spawn_validators(
    dir: &std::path::Path,
    n: usize,
    app: &str,
    checkpoint_interval: Option<u64>,
    workers: Option<usize>,
    tune: impl Fn(&mut Config),
) -> anyhow::Result<(Processes, Vec<Target>, ContextId)> {
    let workers = match workers {
        Some(w) => w,
        None => crate::config::NodeConfig::share_of_this_machine(n),
    };
    let written = super::testnet::write(&super::testnet::TestnetArgs {
        validators: n,
        out: dir.to_path_buf(),
        host: "127.0.0.1".into(),
        hosts: Vec::new(),
        base_port: free_base_port(n)?,
        app: app.into(),
        anchors: Vec::new(),
        checkpoint_interval: checkpoint_interval
            .unwrap_or(crate::store::DEFAULT_CHECKPOINT_INTERVAL),
        worker_threads: workers as u64,
    })?;
    let mut procs = Processes(Vec::new());
    let mut targets = Vec::new();
    for (i, home) in written.homes.iter().enumerate() {
        let mut config = Config::load(home)?;
        tune(&mut config);
        config.save(home)?;
        procs
            .0
            .push(start_validator(home, &format!("node{i}.log"))?);
        let rpc = config.rpc.listen.to_string();
        wait_healthy(&rpc, Duration::from_millis(100)).await?;
        targets.push(Target {
            rpc,
            key: NodeKeys::load(home)?.member,
            home: home.clone(),
        });
    }
    Ok((procs, targets, written.context))
}

/// A base port (`conclave testnet --base-port`) for `n` validators whose
/// ports are all free now. It is below the kernel's ephemeral range: the
/// outgoing connections of earlier runs hold ports there, and a validator
/// that cannot bind its port does not start.
fn free_base_port(n: usize) -> anyhow::Result<u16> {
    const LOW: u16 = 10_000;
    const SLOTS: u64 = 2_200 - 100;
    anyhow::ensure!(n <= 100, "at most 100 validators");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .subsec_nanos() as u64
        ^ u64::from(std::process::id());
    for attempt in 0..64u64 {
        let base = LOW + ((seed + attempt * 7_919) % SLOTS) as u16 * 10;
        let free = (0..n as u16 * 10)
            .all(|offset| std::net::TcpListener::bind(("127.0.0.1", base + offset)).is_ok());
        if free {
            return Ok(base);
        }
    }
    anyhow::bail!(
        "no free range of {} ports found below {}",
        n * 10,
        LOW + SLOTS as u16 * 10
    )
}

/// Starts the validator of `home` as a process of this binary. With
/// `CONCLAVE_BENCH_LOG_DIR=dir` its log goes to `dir/<log>` (appended: a
/// validator started again keeps one log).
pub(super) fn start_validator(home: &std::path::Path, log: &str) -> anyhow::Result<Child> {
    let stderr = match std::env::var_os("CONCLAVE_BENCH_LOG_DIR").map(std::path::PathBuf::from) {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(log))?;
            std::process::Stdio::from(file)
        }
        None => std::process::Stdio::null(),
    };
    Ok(std::process::Command::new(std::env::current_exe()?)
        .arg("--home")
        .arg(home)
        .arg("start")
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()?)
}

/// Waits (a minute at most) until the node at `rpc` answers `node_health`,
/// asking every `every`.
pub(super) async fn wait_healthy(rpc: &str, every: Duration) -> anyhow::Result<()> {
    let client = super::connect::connect(&format!("http://{rpc}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.node_health().await.is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "validator at {rpc} did not start"
        );
        tokio::time::sleep(every).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validator_ports_are_free_and_below_the_ephemeral_range() {
        let base = free_base_port(4).unwrap();
        assert!((10_000..32_000 - 40).contains(&base), "{base}");
        for offset in 0..40 {
            std::net::TcpListener::bind(("127.0.0.1", base + offset)).unwrap();
        }
        assert!(free_base_port(101).is_err());
    }

    #[test]
    fn pinning_splits_the_cpus() {
        let cpus = std::thread::available_parallelism().unwrap().get();
        match pin_sets() {
            Ok((validators, load)) => {
                assert!(cpus >= 2);
                assert_eq!(load, (cpus - 1).to_string());
                assert!(validators.starts_with('0'));
            }
            Err(e) => assert!(cpus < 2, "{e}"),
        }
    }
}
