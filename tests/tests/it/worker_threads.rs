//! `[node] worker_threads`: validators sharing a machine may each run on
//! one worker thread (what `conclave bench` gives four validators on two
//! cores), and a count the node cannot honour is refused at start.

use conclave_tests::{NetOptions, TestNet, TestNode};

use crate::{assert_agreement, load};

/// Four validators with a single worker thread each agree on every block
/// of a load: nothing in consensus, execution or commit waits on a second
/// worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_on_one_worker_thread_each_commit_and_agree() {
    let opts = NetOptions {
        worker_threads: 1,
        ..NetOptions::default()
    };
    let net = TestNet::start_with(4, opts).await;
    // `conclave testnet --worker-threads` wrote it into every home.
    for node in &net.nodes {
        let config = conclave_node::config::Config::load(node.home()).unwrap();
        assert_eq!(config.node.worker_threads, 1);
    }
    load(&net, 60).await;
    assert!(assert_agreement(&net).await >= 1);
}

/// More worker threads than the node allows: it refuses to start, saying
/// which setting is wrong, and serves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_count_out_of_range_is_refused_at_start() {
    let mut node = TestNode::init();
    node.edit_config(|c| c.node.worker_threads = 5_000);
    let log = node.start_refused().await;
    assert!(
        log.contains("[node] worker_threads = 5000: at most 1024"),
        "not the worker count's refusal: {log}"
    );
}
