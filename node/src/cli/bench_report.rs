//! What `conclave bench` reports: one run's figures ([`Report`]), the
//! medians over several runs ([`Medians`]), and how they are read off the
//! validators (CPU and memory from procfs, safety-net firings from their
//! metrics endpoints) and off the machine (how its cores' time went,
//! [`MachineShares`]).

use serde::Serialize;

use crate::cpu::CpuTicks;

#[derive(Serialize, Clone)]
pub(super) struct NodeUsage {
    /// CPU seconds spent while the load ran.
    pub(super) cpu_secs: f64,
    /// Times its threads left a core while the load ran, waiting
    /// (voluntary: a park, a sync, a read) or pushed off: what the
    /// hand-overs between its tasks cost, counted rather than timed, so
    /// it compares across runs on a machine whose speed varies.
    pub(super) context_switches: u64,
    pub(super) peak_rss_bytes: u64,
}

impl NodeUsage {
    /// What was used since `before`; the peak memory stays this one's.
    pub(super) fn since(self, before: &NodeUsage) -> NodeUsage {
        NodeUsage {
            cpu_secs: self.cpu_secs - before.cpu_secs,
            context_switches: self
                .context_switches
                .saturating_sub(before.context_switches),
            ..self
        }
    }
}

#[derive(Serialize, Clone)]
pub(super) struct Report {
    /// The cargo profile this binary was built with: figures from a `dev`
    /// build are not comparable with a `release` build's.
    pub(super) build: &'static str,
    pub(super) validators: usize,
    pub(super) contexts: usize,
    pub(super) clients: u64,
    /// `--keys`: the keys each member's txs to a context cycle through.
    pub(super) keys: u64,
    pub(super) rate: u64,
    pub(super) txs_submitted: u64,
    pub(super) txs_committed: u64,
    pub(super) blocks: u64,
    pub(super) duration_secs: f64,
    pub(super) offered_tx_per_sec: f64,
    pub(super) finalized_tx_per_sec: f64,
    pub(super) blocks_per_sec: f64,
    pub(super) latency_ms_p50: f64,
    pub(super) latency_ms_p95: f64,
    pub(super) latency_ms_p99: f64,
    /// How long `tx_submit` took to answer (the node's acknowledgement, as
    /// the client saw it), p50 and p99: what paces a closed-loop client.
    pub(super) submit_ms_p50: f64,
    pub(super) submit_ms_p99: f64,
    /// `tx_submit` answers that refused a tx for a full pool
    /// (`MEMPOOL_FULL`), each retried after the wait it advised
    /// (`retry_after_ms`): a closed loop with more clients than the blocks
    /// drain keeps the pools full, and every refusal costs a validator a
    /// request for no tx.
    pub(super) submits_refused: u64,
    /// Heights decided in each round (index 0: round 0): anything past
    /// round 0 is a round lost to a timeout.
    pub(super) heights_by_round: Vec<u64>,
    /// Times any validator's safety net fired (a struggling height asked
    /// for decided blocks or redialled a silent member), from their
    /// `conclave_consensus_fallbacks_total`; absent for one in-process
    /// validator, which has no one to fall back on.
    pub(super) fallbacks: Option<u64>,
    /// Frames the validators' push and direct lanes dropped (a full queue)
    /// or lost on the way, from their `conclave_p2p_pushes_failed_total`;
    /// absent for one in-process validator. A dropped push leaves its txs
    /// at one member until that member proposes.
    pub(super) pushes_failed: Option<u64>,
    /// Txs a push carried, on average over the validators' pushes
    /// (`conclave_txs_pushed_total` over `conclave_p2p_pushes_received_total`;
    /// absent for one in-process validator, or with no push received). A
    /// push costs each member about the same whatever it carries: near one
    /// tx a push, the pushes cost a frame a tx.
    pub(super) txs_per_push: Option<f64>,
    pub(super) nodes: Vec<NodeUsage>,
    /// The bench's own CPU over the load: the load generator's, on the
    /// cores the validators share unless `--pin`. Absent when a validator
    /// runs in this process.
    pub(super) load_cpu_secs: Option<f64>,
    /// How the machine's cores spent the load's time: whether the run was
    /// bound by the CPU (little idle), the disk (iowait) or the host
    /// (steal). Absent where there is no `/proc/stat`.
    pub(super) machine: Option<MachineShares>,
    /// With `--idle-secs`: each validator's CPU, in percent of one core,
    /// while every context sat idle before the load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) idle_cpu_percent: Option<Vec<f64>>,
}

/// The machine's CPU time over an interval, in percent of all its cores'
/// time (the five add up to 100).
#[derive(Serialize, Clone, Debug, PartialEq)]
pub(super) struct MachineShares {
    /// User code (`nice` included).
    pub(super) user_percent: f64,
    /// The kernel, its interrupts included.
    pub(super) system_percent: f64,
    /// Idle with a disk request outstanding.
    pub(super) iowait_percent: f64,
    pub(super) idle_percent: f64,
    /// Taken by the hypervisor for others while this machine had work.
    pub(super) steal_percent: f64,
}

impl MachineShares {
    /// How the machine's time from `before` to `after` went; none if no
    /// tick passed or a counter went back.
    pub(super) fn between(before: &CpuTicks, after: &CpuTicks) -> Option<Self> {
        let d = |now: u64, then: u64| now.checked_sub(then);
        let user = d(after.user + after.nice, before.user + before.nice)?;
        let system = d(
            after.system + after.irq + after.softirq,
            before.system + before.irq + before.softirq,
        )?;
        let iowait = d(after.iowait, before.iowait)?;
        let idle = d(after.idle, before.idle)?;
        let steal = d(after.steal, before.steal)?;
        let total = user + system + iowait + idle + steal;
        if total == 0 {
            return None;
        }
        let share = |ticks: u64| ticks as f64 * 100.0 / total as f64;
        Some(Self {
            user_percent: share(user),
            system_percent: share(system),
            iowait_percent: share(iowait),
            idle_percent: share(idle),
            steal_percent: share(steal),
        })
    }
}

/// The median of each figure over several runs.
#[derive(Serialize)]
pub(super) struct Medians {
    finalized_tx_per_sec: f64,
    offered_tx_per_sec: f64,
    blocks_per_sec: f64,
    pub(super) latency_ms_p50: f64,
    pub(super) latency_ms_p95: f64,
    pub(super) latency_ms_p99: f64,
    submit_ms_p50: f64,
    submit_ms_p99: f64,
    /// Per run, the answers that refused a tx.
    submits_refused: f64,
    /// Per run, the share of heights decided after round 0.
    heights_past_round_0: f64,
    /// Per run, the CPU seconds of the busiest validator.
    max_node_cpu_secs: f64,
    /// Per run, the load generator's CPU seconds (runs that have it).
    #[serde(skip_serializing_if = "Option::is_none")]
    load_cpu_secs: Option<f64>,
    /// Per run, the machine's idle share in percent (runs that have it).
    #[serde(skip_serializing_if = "Option::is_none")]
    machine_idle_percent: Option<f64>,
    /// Over all runs, the safety net's firings.
    fallbacks: u64,
    /// Over all runs, the frames the lanes dropped or lost.
    pushes_failed: u64,
    /// Per run, the txs a push carried (runs with pushes).
    #[serde(skip_serializing_if = "Option::is_none")]
    txs_per_push: Option<f64>,
}

pub(super) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The median of the runs that have a figure; none if no run has one.
fn median_of_some(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let values: Vec<f64> = values.flatten().collect();
    (!values.is_empty()).then(|| median(values))
}

impl Medians {
    pub(super) fn of(runs: &[Report]) -> Self {
        let m = |f: &dyn Fn(&Report) -> f64| median(runs.iter().map(f).collect());
        Self {
            finalized_tx_per_sec: m(&|r| r.finalized_tx_per_sec),
            offered_tx_per_sec: m(&|r| r.offered_tx_per_sec),
            blocks_per_sec: m(&|r| r.blocks_per_sec),
            latency_ms_p50: m(&|r| r.latency_ms_p50),
            latency_ms_p95: m(&|r| r.latency_ms_p95),
            latency_ms_p99: m(&|r| r.latency_ms_p99),
            submit_ms_p50: m(&|r| r.submit_ms_p50),
            submit_ms_p99: m(&|r| r.submit_ms_p99),
            submits_refused: m(&|r| r.submits_refused as f64),
            heights_past_round_0: m(&|r| {
                let all: u64 = r.heights_by_round.iter().sum();
                let late: u64 = r.heights_by_round.iter().skip(1).sum();
                if all == 0 {
                    0.0
                } else {
                    late as f64 / all as f64
                }
            }),
            max_node_cpu_secs: m(&|r| r.nodes.iter().map(|n| n.cpu_secs).fold(0.0, f64::max)),
            load_cpu_secs: median_of_some(runs.iter().map(|r| r.load_cpu_secs)),
            machine_idle_percent: median_of_some(
                runs.iter()
                    .map(|r| r.machine.as_ref().map(|m| m.idle_percent)),
            ),
            fallbacks: runs.iter().filter_map(|r| r.fallbacks).sum(),
            pushes_failed: runs.iter().filter_map(|r| r.pushes_failed).sum(),
            txs_per_push: median_of_some(runs.iter().map(|r| r.txs_per_push)),
        }
    }
}

/// What the bench reads from the validators' metrics at the end of a run,
/// summed over them ([`Scraped::add`]).
#[derive(Default)]
pub(super) struct Scraped {
    /// Every `conclave_consensus_fallbacks_total` sample, summed.
    pub(super) fallbacks: u64,
    /// `conclave_p2p_pushes_failed_total`.
    pub(super) pushes_failed: u64,
    /// `conclave_p2p_pushes_received_total`.
    pushes_received: u64,
    /// Every `conclave_txs_pushed_total` sample (all contexts, all
    /// outcomes), summed: the txs those pushes carried.
    txs_pushed: u64,
}

impl Scraped {
    /// Reads the figures from a metrics page in Prometheus' text format.
    fn from_text(text: &str) -> Self {
        Self {
            fallbacks: sum_samples(text, "conclave_consensus_fallbacks_total"),
            pushes_failed: sum_samples(text, "conclave_p2p_pushes_failed_total"),
            pushes_received: sum_samples(text, "conclave_p2p_pushes_received_total"),
            txs_pushed: sum_samples(text, "conclave_txs_pushed_total"),
        }
    }

    pub(super) fn add(&mut self, other: Self) {
        self.fallbacks += other.fallbacks;
        self.pushes_failed += other.pushes_failed;
        self.pushes_received += other.pushes_received;
        self.txs_pushed += other.txs_pushed;
    }

    /// Txs a push carried on average; none with no push received.
    pub(super) fn txs_per_push(&self) -> Option<f64> {
        (self.pushes_received > 0).then(|| self.txs_pushed as f64 / self.pushes_received as f64)
    }
}

/// Reads [`Scraped`] from the metrics endpoint at `addr`.
pub(super) async fn scrape(addr: std::net::SocketAddr) -> anyhow::Result<Scraped> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    Ok(Scraped::from_text(&text))
}

/// Sums the samples of metric `name` in Prometheus' text format.
fn sum_samples(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

pub(super) fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Each of `pids`' CPU over `secs` seconds, in percent of one core.
pub(super) async fn idle_cpu_percent(pids: &[String], secs: u64) -> Vec<f64> {
    let before: Vec<f64> = pids.iter().map(|p| usage(p).cpu_secs).collect();
    let t0 = std::time::Instant::now();
    tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
    let elapsed = t0.elapsed().as_secs_f64();
    pids.iter()
        .zip(before)
        .map(|(p, b)| (usage(p).cpu_secs - b) / elapsed * 100.0)
        .collect()
}

/// CPU seconds and peak resident memory of a process, from procfs.
pub(super) fn usage(pid: &str) -> NodeUsage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let peak_rss_bytes = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name: utime and stime are the 12th and 13th.
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11usize, 12]
        .iter()
        .filter_map(|&i| f.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    NodeUsage {
        cpu_secs: ticks / 100.0,
        context_switches: context_switches(pid),
        peak_rss_bytes,
    }
}

/// Context switches of the live threads of a process, from procfs.
fn context_switches(pid: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .map(|status| switches_in(&status))
        .sum()
}

/// The voluntary and involuntary switches a task's `status` counts.
fn switches_in(status: &str) -> u64 {
    status
        .lines()
        .filter(|l| {
            l.starts_with("voluntary_ctxt_switches:")
                || l.starts_with("nonvoluntary_ctxt_switches:")
        })
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
        // Runs without the figure are left out, not counted as zero.
        let some = [Some(3.0), None, Some(1.0), Some(2.0)];
        assert_eq!(median_of_some(some.into_iter()), Some(2.0));
        assert_eq!(median_of_some([None, None].into_iter()), None);
    }

    #[test]
    fn switches_are_read_from_a_tasks_status() {
        let status = "Name:\tconclave\nvoluntary_ctxt_switches:\t120\n\
            nonvoluntary_ctxt_switches:\t7\n";
        assert_eq!(switches_in(status), 127);
        assert_eq!(switches_in("Name:\tx\n"), 0);
        // A sleep is a switch of the thread running the test. (The whole
        // process's count is not compared over time: it is summed over the
        // live threads, and other tests' threads end meanwhile.)
        let this_thread = || {
            switches_in(&std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default())
        };
        let before = this_thread();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let after = this_thread();
        assert!(after > before);
        // This thread is among the process's, alive while it is read.
        assert!(usage(&std::process::id().to_string()).context_switches >= after);
    }

    /// Two readings 400 ticks apart (two cores, 2 s): each share is its
    /// counters' ticks over all of them.
    #[test]
    fn the_machine_s_shares_are_its_counters_over_all_its_ticks() {
        let at = |user: u64, idle: u64, iowait: u64, steal: u64| CpuTicks {
            user,
            nice: 10,
            system: 500,
            idle,
            iowait,
            irq: 0,
            softirq: 30,
            steal,
        };
        let before = at(1000, 5000, 40, 0);
        // user +200, system +0, idle +120, iowait +20, steal +60.
        let after = at(1200, 5120, 60, 60);
        assert_eq!(
            MachineShares::between(&before, &after),
            Some(MachineShares {
                user_percent: 50.0,
                system_percent: 0.0,
                iowait_percent: 5.0,
                idle_percent: 30.0,
                steal_percent: 15.0,
            })
        );
        // No time passed, or counters that went back (another boot): none.
        assert_eq!(MachineShares::between(&before, &before), None);
        assert_eq!(MachineShares::between(&after, &before), None);
        // This machine's own counters read, and move forward.
        if let Some(now) = crate::cpu::machine_ticks() {
            let later = crate::cpu::machine_ticks().unwrap();
            assert!(MachineShares::between(&now, &later).is_none_or(|s| {
                let sum = s.user_percent
                    + s.system_percent
                    + s.iowait_percent
                    + s.idle_percent
                    + s.steal_percent;
                (sum - 100.0).abs() < 1e-9
            }));
        }
    }

    #[test]
    fn samples_of_one_metric_are_summed() {
        let text = "# HELP conclave_consensus_fallbacks_total x\n\
            # TYPE conclave_consensus_fallbacks_total counter\n\
            conclave_consensus_fallbacks_total{context=\"a\",kind=\"sync\"} 2\n\
            conclave_consensus_fallbacks_total{context=\"a\",kind=\"reconnect\"} 3\n\
            conclave_consensus_height{context=\"a\"} 40\n";
        assert_eq!(sum_samples(text, "conclave_consensus_fallbacks_total"), 5);
        assert_eq!(sum_samples("", "conclave_consensus_fallbacks_total"), 0);
    }

    #[test]
    fn txs_a_push_carried_are_the_pushed_txs_over_the_pushes_of_every_validator() {
        let validator = |pushes: u64, admitted: u64, known: u64| {
            Scraped::from_text(&format!(
                "conclave_p2p_pushes_received_total {pushes}\n\
                 conclave_txs_pushed_total{{context=\"a\",outcome=\"admitted\"}} {admitted}\n\
                 conclave_txs_pushed_total{{context=\"b\",outcome=\"known\"}} {known}\n"
            ))
        };
        let mut all = Scraped::default();
        assert_eq!(all.txs_per_push(), None);
        all.add(validator(2, 10, 2));
        all.add(validator(4, 20, 4));
        assert_eq!(all.txs_per_push(), Some(6.0));
    }
}
