//! Clock skew (reliability). Two members of four run with their wall
//! clocks a minute off, one ahead and one behind, through a small
//! `LD_PRELOAD` library that shifts `CLOCK_REALTIME` (and
//! `gettimeofday`) by an offset: what a host whose NTP failed shows a
//! process. The monotonic clock, which the node's timeouts use, is left
//! alone.
//!
//! A block's time is its proposer's clock, bounded below by its parent's
//! and above by each validator's clock plus 10 s. So the member ahead
//! never gets a block decided (the others refuse blocks from their
//! future) and the member behind refuses the others' blocks when it votes;
//! neither may stop the chain, move its time off, or fall behind for good:
//! a decided block, with its certificate, is taken whatever the local
//! clock says.

use std::time::Instant;

use conclave_node::node::now_ms;
use conclave_node::rpc::ConclaveApiClient;
use conclave_tests::{build_preload, TestNet};

use crate::{assert_agreement, load, COMMIT_TIMEOUT};

const SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long long offset_ns(void) {
    static int read = 0;
    static long long offset = 0;
    if (!read) {
        const char *ms = getenv("CONCLAVE_CLOCK_OFFSET_MS");
        offset = ms ? atoll(ms) * 1000000LL : 0;
        read = 1;
    }
    return offset;
}

static void shift(struct timespec *ts) {
    long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + offset_ns();
    ts->tv_sec = ns / 1000000000LL;
    ts->tv_nsec = ns % 1000000000LL;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *) = 0;
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int r = real(id, ts);
    if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) shift(ts);
    return r;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    int r = clock_gettime(CLOCK_REALTIME, &ts);
    if (r == 0 && tv) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    (void)tz;
    return r;
}
"#;

const SKEW_MS: i64 = 60_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_with_skewed_clocks_neither_stop_the_chain_nor_move_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let Some(shim) = build_preload(dir.path(), "clock_skew", SHIM) else {
        eprintln!("skipped: no C compiler to build the clock shim");
        return;
    };
    let mut net = TestNet::start(4).await;
    let ctx = net.context;
    load(&net, 4).await;
    // Member 1 runs a minute ahead, member 2 a minute behind.
    let (ahead, behind) = (1, 2);
    for (i, offset) in [(ahead, SKEW_MS), (behind, -SKEW_MS)] {
        net.nodes[i].kill9();
        let offset = offset.to_string();
        let env = [
            ("LD_PRELOAD", shim.to_str().unwrap()),
            ("CONCLAVE_CLOCK_OFFSET_MS", offset.as_str()),
        ];
        net.nodes[i].start_with_env(&env).await;
    }
    let from = assert_agreement(&net).await;

    // Txs through every member, the skewed ones included, all commit, over
    // heights enough for each member's turn to propose (were the shim not
    // to work, member 1 would propose some of them: see below).
    for _ in 0..6 {
        load(&net, 4).await;
    }
    let tip = net.nodes[0]
        .client()
        .context_info(ctx)
        .await
        .unwrap()
        .height;
    assert!(tip >= from + 4, "only {} heights", tip - from);
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    for (i, node) in net.nodes.iter().enumerate() {
        while node.client().context_info(ctx).await.unwrap().height < tip {
            assert!(Instant::now() < deadline, "member {i} stopped behind");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    assert_eq!(assert_agreement(&net).await.min(tip), tip);

    // The chain's time stayed true: strictly increasing, never ahead of
    // the honest clocks by more than the bound, so never from the member
    // ahead, whose proposals were all refused.
    let c0 = net.nodes[0].client();
    let ahead_id = net.nodes[ahead].keys().member_id();
    let mut last = c0.block_get(ctx, Some(from)).await.unwrap().header.time_ms;
    let now = now_ms();
    for h in from + 1..=tip {
        let b = c0.block_get(ctx, Some(h)).await.unwrap();
        let t = b.header.time_ms;
        assert!(t > last, "height {h}: time {t} after {last}");
        assert!(
            t <= now + 10_000,
            "height {h}: time {t} is in the future ({now})"
        );
        assert_ne!(
            b.header.proposer, ahead_id,
            "height {h} came from the clock ahead"
        );
        last = t;
    }
}
