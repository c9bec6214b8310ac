//! One node per home: a second `conclave start` on a home in use is refused
//! with a clear error and leaves the running node alone (RELIABILITY.md
//! scenario 8: two processes must not sign with the same key from the same
//! sign guard and WAL).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conclave_node::rpc::ConclaveApiClient;
use conclave_tests::{conclave_bin, TestNode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_a_home_in_use_is_refused() {
    let mut node = TestNode::init();
    node.start().await;

    let mut second = Command::new(conclave_bin())
        .arg("--home")
        .arg(node.home())
        .arg("start")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a second conclave start");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            panic!("the second node kept running on a home in use");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("is in use by another conclave process"),
        "not the home lock's refusal: {stderr}"
    );

    // The first node never noticed.
    node.client()
        .node_health()
        .await
        .expect("first node still serving");
    // The lock names its holder.
    let holder = std::fs::read_to_string(node.home().join("node.lock")).unwrap();
    assert!(holder.trim().parse::<u32>().is_ok(), "{holder:?}");
}
