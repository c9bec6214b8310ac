//! Harness for Conclave's process-level tests: real `conclave` binaries on
//! loopback ports, each in its own temporary home, driven over JSON-RPC.
//! [`TestNode::client`] carries the credentials of the node's own member
//! and operator; [`TestNode::client_unauthenticated`] and
//! [`TestNode::client_with`] the ones a test chooses.

pub mod soak;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use conclave_consensus::{ContextId, Hash32, SignedTx, Tx};
use conclave_node::keys::{NodeKeys, RpcSecrets};
use conclave_node::rpc::auth::{Verifier, ADMIN_HEADER, AUTHORIZATION_HEADER, MAX_TOKEN_TTL_MS};
use conclave_node::rpc::types::TxStatusView;
use conclave_node::rpc::ConclaveApiClient;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};

/// The `conclave` binary under test: `conclave-it`, the same `main` built
/// by this crate (see `src/bin/conclave-it.rs`), which cargo builds next to
/// the integration test executables and this crate's binaries.
pub fn conclave_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().expect("executable dir");
    // A binary of this crate (`conclave-soak`) sits beside it in
    // target/<profile>; a test executable one level down, in deps/.
    let beside = dir.join("conclave-it");
    if beside.exists() {
        return beside;
    }
    dir.parent()
        .expect("target profile dir")
        .join("conclave-it")
}

/// The log filter of the nodes a test starts: `info`, or what
/// `CONCLAVE_NODE_LOG` says (an `EnvFilter` string, e.g.
/// `info,conclave_network=debug` to read a failure's network side).
fn node_log_filter() -> String {
    std::env::var("CONCLAVE_NODE_LOG").unwrap_or_else(|_| "info".into())
}

/// The first port of a block of `10 * nodes` ports for a [`TestNet`]:
/// below the kernel's ephemeral range (32768 and up), where `free_port` and
/// outgoing connections take their ports, so a killed node's port is not
/// taken by someone else before it restarts; and never the same block twice
/// in one test process, so concurrent testnets do not collide. Starts at an
/// offset from the process id, for concurrent test processes.
fn next_port_block(nodes: usize) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    const FIRST: u32 = 20_000;
    const BLOCK: u32 = 100;
    const BLOCKS: u32 = (32_000 - FIRST) / BLOCK;
    assert!(nodes * 10 <= BLOCK as usize, "at most 10 nodes per testnet");
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id() % BLOCKS,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    let slot = NEXT.fetch_add(1, Ordering::SeqCst) % BLOCKS;
    (FIRST + slot * BLOCK) as u16
}

/// Builds a small `LD_PRELOAD` library from C `source` with the system's
/// C compiler, into `dir`; `None` without one. Process tests use such
/// libraries to make a node's system calls fail or its clock lie, as a
/// failing disk or a wrong clock would, without touching the node's code.
pub fn build_preload(dir: &Path, name: &str, source: &str) -> Option<PathBuf> {
    let src = dir.join(format!("{name}.c"));
    let lib = dir.join(format!("lib{name}.so"));
    std::fs::write(&src, source).ok()?;
    let ok = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&lib)
        .arg(&src)
        .arg("-ldl")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(lib)
}

/// Two loopback ports for a node started alone, from a block below the
/// kernel's ephemeral range ([`next_port_block`]), both free when looked
/// at: a port [`free_port`] gave back may be taken by any outgoing
/// connection before the node binds it (a node once failed to start with
/// "Address already in use" so, under a loaded test run).
fn node_ports() -> (u16, u16) {
    loop {
        let base = next_port_block(1);
        if (0..2).all(|o| TcpListener::bind(("127.0.0.1", base + o)).is_ok()) {
            return (base, base + 1);
        }
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One node process with its own home.
pub struct TestNode {
    /// Keeps a home this node created alive (and removes it at the end).
    _dir: Option<tempfile::TempDir>,
    home: PathBuf,
    pub rpc: SocketAddr,
    pub metrics: SocketAddr,
    child: Option<Child>,
}

impl TestNode {
    /// Initialises a home with free ports.
    pub fn init() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut node = Self::init_at(dir.path().to_path_buf());
        node._dir = Some(dir);
        node
    }

    /// Initialises a home at `home` (which the caller owns) with free
    /// ports.
    pub fn init_at(home: PathBuf) -> Self {
        let (rpc, metrics) = node_ports();
        let rpc: SocketAddr = format!("127.0.0.1:{rpc}").parse().unwrap();
        let metrics: SocketAddr = format!("127.0.0.1:{metrics}").parse().unwrap();
        let out = Command::new(conclave_bin())
            .args(["--home"])
            .arg(&home)
            .args(["init", "--rpc-listen", &rpc.to_string()])
            .args(["--metrics-listen", &metrics.to_string()])
            .args(["--p2p-listen", "/ip4/127.0.0.1/tcp/0"])
            .output()
            .expect("run conclave init");
        assert!(out.status.success(), "init failed: {out:?}");
        Self {
            home,
            _dir: None,
            rpc,
            metrics,
            child: None,
        }
    }

    /// A node over an existing home (e.g. one `conclave testnet` wrote).
    pub fn from_home(home: PathBuf) -> Self {
        let config = conclave_node::config::Config::load(&home).expect("config");
        Self {
            _dir: None,
            home,
            rpc: config.rpc.listen,
            metrics: config.metrics.listen,
            child: None,
        }
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn keys(&self) -> NodeKeys {
        NodeKeys::load(self.home.as_path()).expect("keys")
    }

    /// The key this node's store is sealed under (`keys/storage.key`).
    pub fn storage_key(&self) -> conclave_node::store::StorageKey {
        conclave_node::keys::load_storage_key(self.home.as_path()).expect("storage key")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.rpc)
    }

    /// Starts the node and waits until it answers `node_health`.
    pub async fn start(&mut self) {
        self.start_with_env(&[]).await
    }

    /// Starts the node with extra environment variables (e.g. a
    /// `CONCLAVE_FAILPOINT`). Each start appends to `node.log`.
    pub async fn start_with_env(&mut self, env: &[(&str, &str)]) {
        self.spawn_with_env(env);
        let c = self.client();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if c.node_health().await.is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("node exited during start: {status}; log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "node did not start; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Spawns the node without waiting for it to serve.
    pub fn spawn_with_env(&mut self, env: &[(&str, &str)]) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home.as_path().join("node.log"))
            .expect("log file");
        let child = Command::new(conclave_bin())
            .arg("--home")
            .arg(&self.home)
            .arg("start")
            .env("RUST_LOG", node_log_filter())
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn conclave start");
        self.child = Some(child);
    }

    /// Starts the node expecting it to refuse: waits for it to exit by
    /// itself (failing if it serves instead) and returns what this start
    /// wrote to the log.
    pub async fn start_refused(&mut self) -> String {
        let before = self.log().len();
        self.spawn_with_env(&[]);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                assert!(!status.success(), "the node exited with success");
                return self.log().get(before..).unwrap_or_default().to_string();
            }
            assert!(
                self.client().node_health().await.is_err(),
                "the node started instead of refusing; log:\n{}",
                self.log()
            );
            assert!(
                Instant::now() < deadline,
                "the node neither served nor exited"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `conclave --home <home> <args>` to completion (the node's own
    /// command line, as an operator would) and returns its output.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(conclave_bin())
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .output()
            .expect("run conclave")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.as_path().join("node.log")).unwrap_or_default()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Waits up to `timeout` for the process to exit by itself (a crash
    /// point); returns whether it did. An exited node counts as stopped.
    pub async fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited {
                self.child = None;
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    fn signal(&self, sig: libc::c_int) {
        let pid = self.child.as_ref().expect("node running").id();
        // SAFETY: sending a signal to our own child process.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
    }

    /// The process's resident memory (`VmRSS`), in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let pid = self.child.as_ref().expect("node running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .expect("VmRSS")
            * 1024
    }

    /// The sum of the node's metric samples whose line starts with
    /// `prefix` (a name, or a name and the start of its labels).
    pub fn metric_sum(&self, prefix: &str) -> f64 {
        let (_, body) = http_raw(self.metrics, "GET", "/metrics", b"");
        body.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// SIGSTOP: the process freezes, its sockets stay open.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`TestNode::pause`].
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// Edits `config.toml` (the node must be stopped to take effect).
    pub fn edit_config(&self, f: impl FnOnce(&mut conclave_node::config::Config)) {
        let mut config = conclave_node::config::Config::load(&self.home).expect("config");
        f(&mut config);
        config.save(&self.home).expect("save config");
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.rpc)
    }

    /// The admin token of this node (`home/keys/admin.token`).
    pub fn admin_token(&self) -> String {
        RpcSecrets::load(&self.home)
            .expect("rpc secrets")
            .admin_token_hex()
    }

    /// A member token of this node for `member`, good until `expires_ms`,
    /// made with the node's token key as `auth_login` makes them (the
    /// harness holds the home, as the operator does).
    pub fn mint_token(&self, member: &conclave_consensus::MemberId, expires_ms: u64) -> String {
        let secrets = RpcSecrets::load(&self.home).expect("rpc secrets");
        Verifier::new(self.keys().member_id(), &secrets).mint(member, expires_ms)
    }

    /// Both credentials of this node's member and operator: a member token
    /// (good for a day) and the admin token.
    pub fn credentials(&self) -> HeaderMap {
        let expires = conclave_node::node::now_ms() + MAX_TOKEN_TTL_MS;
        let token = self.mint_token(&self.keys().member_id(), expires);
        let mut h = bearer(&token);
        h.insert(
            ADMIN_HEADER,
            HeaderValue::try_from(self.admin_token()).expect("header"),
        );
        h
    }

    /// A client with this node's member and admin credentials.
    pub fn client(&self) -> HttpClient {
        self.client_with(self.credentials())
    }

    /// A client without credentials.
    pub fn client_unauthenticated(&self) -> HttpClient {
        self.client_with(HeaderMap::new())
    }

    /// A client sending `headers` (see [`bearer`]) with every request.
    pub fn client_with(&self, headers: HeaderMap) -> HttpClient {
        HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(30))
            .set_headers(headers)
            .build(self.url())
            .expect("http client")
    }

    /// A WebSocket client with this node's member and admin credentials.
    pub async fn ws_client(&self) -> WsClient {
        self.ws_client_with(self.credentials())
            .await
            .expect("ws client")
    }

    /// A WebSocket client sending `headers` with its upgrade request.
    pub async fn ws_client_with(
        &self,
        headers: HeaderMap,
    ) -> Result<WsClient, jsonrpsee::core::ClientError> {
        WsClientBuilder::default()
            .set_headers(headers)
            .build(self.ws_url())
            .await
    }

    pub fn data_dir(&self) -> PathBuf {
        self.home.as_path().join("data")
    }
}

impl Drop for TestNode {
    /// Kills the process. When the test is failing, keeps the home and
    /// prints the end of the node's log, so the failure can be read after
    /// the fact (libtest shows it with the failing test's output).
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            if let Some(dir) = self._dir.take() {
                let _ = dir.keep();
            }
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            eprintln!(
                "---- node {} (home kept: {}), last {} log lines ----\n{}",
                self.rpc,
                self.home.display(),
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

/// How much of each node's log a failing test prints.
const LOG_TAIL_LINES: usize = 150;

/// Headers carrying `token` as `Authorization: Bearer <token>`.
pub fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        AUTHORIZATION_HEADER,
        HeaderValue::try_from(format!("Bearer {token}")).expect("header"),
    );
    h
}

/// Builds and signs a tx from `keys`.
pub fn signed(keys: &NodeKeys, ctx: ContextId, nonce: u64, method: &str, args: &str) -> SignedTx {
    Tx {
        context_id: ctx,
        sender: keys.member_id(),
        nonce,
        method: method.into(),
        args: args.as_bytes().to_vec(),
    }
    .sign(&keys.member)
}

/// Polls until the tx is committed or failed; panics after `timeout`.
pub async fn wait_committed(c: &HttpClient, hash: Hash32, timeout: Duration) -> TxStatusView {
    let deadline = Instant::now() + timeout;
    loop {
        let s = c.tx_status(hash).await.expect("tx_status");
        if s.status == "committed" || s.status == "failed" {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "tx {hash} not committed: {}",
            s.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A raw HTTP/1.1 request over a fresh connection; returns status and body.
/// For sending what a well-behaved client would not.
pub fn http_raw(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    http_raw_with(addr, method, path, &[], body)
}

/// [`http_raw`] with extra headers.
pub fn http_raw_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write head");
    // A server may refuse an oversized body before reading it all.
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// `n` validators on loopback sharing one `kv` context, written by
/// `conclave testnet` into a temporary directory. Ports are picked from a
/// random base and checked free.
pub struct TestNet {
    _dir: Option<tempfile::TempDir>,
    pub nodes: Vec<TestNode>,
    pub context: conclave_consensus::ContextId,
}

/// What a [`TestNet`]'s shared context runs.
#[derive(Clone, Debug)]
pub struct NetOptions {
    /// Bundled app.
    pub app: String,
    /// Anchors (`evm:<chain>:<addr>`, `near:<net>:<account>`).
    pub anchors: Vec<String>,
    pub checkpoint_interval: u64,
    /// `conclave testnet --worker-threads` (0: one per CPU).
    pub worker_threads: u64,
}

impl Default for NetOptions {
    fn default() -> Self {
        Self {
            app: "kv".into(),
            anchors: Vec::new(),
            checkpoint_interval: conclave_node::store::DEFAULT_CHECKPOINT_INTERVAL,
            worker_threads: 0,
        }
    }
}

impl TestNet {
    pub async fn start(n: usize) -> Self {
        Self::start_with(n, NetOptions::default()).await
    }

    pub async fn start_with(n: usize, opts: NetOptions) -> Self {
        Self::start_configured(n, opts, |_| {}).await
    }

    /// Like [`TestNet::start_with`], with `configure` applied to every
    /// node's config before it starts.
    pub async fn start_configured(
        n: usize,
        opts: NetOptions,
        configure: impl Fn(&mut conclave_node::config::Config),
    ) -> Self {
        Self::start_partial(n, n, opts, configure).await
    }

    /// Writes an `n`-member testnet but starts only the first `running`
    /// nodes. The others stay members with homes (keys, addresses, peers)
    /// that a test can use to play them itself, e.g. as a byzantine member.
    pub async fn start_partial(
        n: usize,
        running: usize,
        opts: NetOptions,
        configure: impl Fn(&mut conclave_node::config::Config),
    ) -> Self {
        assert!(running <= n, "cannot run {running} of {n} nodes");
        let dir = tempfile::tempdir().expect("tempdir");
        let base = loop {
            let base = next_port_block(n);
            let all_free = (0..n as u16).all(|i| {
                (0..3).all(|o| TcpListener::bind(("127.0.0.1", base + 10 * i + o)).is_ok())
            });
            if all_free {
                break base;
            }
        };
        let args = conclave_node::cli::testnet::TestnetArgs {
            validators: n,
            out: dir.path().to_path_buf(),
            host: "127.0.0.1".into(),
            hosts: Vec::new(),
            base_port: base,
            app: opts.app,
            anchors: opts.anchors,
            checkpoint_interval: opts.checkpoint_interval,
            worker_threads: opts.worker_threads,
        };
        let written = conclave_node::cli::testnet::write(&args).expect("testnet");
        let mut nodes: Vec<TestNode> = written.homes.into_iter().map(TestNode::from_home).collect();
        for node in &mut nodes {
            node.edit_config(&configure);
        }
        for node in nodes.iter_mut().take(running) {
            node.start().await;
        }
        Self {
            _dir: Some(dir),
            nodes,
            context: written.context,
        }
    }
}

impl TestNet {
    /// Keeps the nodes' homes (logs included) after the net is dropped;
    /// returns where they are.
    pub fn keep_homes(&mut self) -> Option<PathBuf> {
        self._dir.take().map(|d| d.keep())
    }

    /// Creates a context of `app` on node `creator` with the members at
    /// `members` (the creator among them); an error unless every other
    /// member accepted it.
    pub async fn create_context(
        &self,
        app: &str,
        creator: usize,
        members: &[usize],
    ) -> Result<ContextId, String> {
        let ids = members
            .iter()
            .map(|&i| self.nodes[i].keys().member_id())
            .collect();
        let created = self.nodes[creator]
            .client()
            .context_create(Some(app.into()), None, Some(ids), None, None)
            .await
            .map_err(|e| format!("context_create: {e}"))?;
        let others = members.iter().filter(|&&i| i != creator).count();
        if created.offers.len() != others || !created.offers.iter().all(|o| o.accepted) {
            return Err(format!("not every member joined: {created:?}"));
        }
        Ok(created.context_id)
    }
}

impl Drop for TestNet {
    /// Keeps the homes of a failing test (each node prints where).
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(dir) = self._dir.take() {
                let _ = dir.keep();
            }
        }
    }
}
