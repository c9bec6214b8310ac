//! How short of the CPU it may use this node is lately: what decides
//! how long a busy node's contexts hold their heights for fuller blocks
//! and pace their pushes (`context::pace`). A height costs each member
//! about the same whatever it carries, so a node running many contexts'
//! heights holds them, to start fewer; but that pays only while the CPU
//! is short. With cores to spare a hold saves nothing anyone needs and
//! costs its whole length in latency: at 1,000 tx/s over 100 contexts and
//! four validators on this project's two-core machine (`conclave bench
//! --validators 4 --contexts 100 --rate 1000`), the machine sat 40-50 %
//! idle while the holds put the median latency at 530 ms.
//!
//! The measure is the share of CPU time left idle on the cores this node
//! may run on (`/proc/stat`'s lines for the CPUs of its affinity: all of
//! them, unless it was pinned to some with `taskset`, systemd's
//! `CPUAffinity` or a container's `cpuset`), or of a CPU quota left
//! unused where the node's cgroup or one above it has one (a container
//! limited to fewer cores than the host has, a service's `CPUQuota`:
//! [`cgroup`]), whichever is least; sampled at most every
//! [`SAMPLE_EVERY`] and only when asked, which a node's contexts do only
//! while two or more of its heights are under way (an idle node, or one
//! running a single context's heights, reads nothing). From it a
//! [`Shortage`] between 0 (no holds: start at once) and 1 (the full holds)
//! follows the idle share towards [`TARGET_IDLE`]: it rises while less is
//! idle and falls while more is, in proportion to the gap ([`GAIN`]), so
//! that the holds settle where the machine keeps about that much idle.
//! Saturated, nothing is idle and the holds are whole, as before this
//! measure; where nothing can be read (no `/proc`), the shortage stays 1.
//!
//! Each member measures its own machine: the holds are a proposer's own
//! choice, and what the members agree on (the longest a proposer may hold,
//! which their first propose timeout waits out) does not depend on it.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

mod cgroup;
mod cores;
use cgroup::{Cgroup, CgroupTimes};
pub use cores::CpuTicks;
use cores::HostTimes;

/// The machine's CPU time so far, all its CPUs together (`/proc/stat`);
/// none where it cannot be read.
pub fn machine_ticks() -> Option<CpuTicks> {
    CpuTicks::of_machine(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// How often the idle share is sampled, at most. `/proc/stat` counts in
/// hundredths of a second per core: at two cores a sample spans 40 of
/// them.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// The idle share the shortage steers the machine towards: below it the
/// holds grow, above it they shrink. Enough headroom that a burst finds a
/// core free, little enough that holds come off where they only cost
/// latency.
const TARGET_IDLE: f32 = 0.15;

/// How fast the shortage moves per second per unit of idle share off
/// [`TARGET_IDLE`]: fully idle past the target (45 % idle) it falls from 1
/// to 0 in about 1.7 s; with nothing idle it rises from 0 to 1 in about
/// 3.3 s. Slower than a hold (up to 2.5 s) takes to show in the idle share
/// would make the holds swing; faster would follow each sample's noise.
const GAIN: f32 = 2.0;

/// The longest span one sample counts for: after a long quiet spell the
/// first sample moves the shortage by no more than this much time's worth.
const MAX_STEP: Duration = Duration::from_secs(1);

/// How far a busy node holds its heights and paces its pushes: at 0 it
/// starts them at once, at 1 it keeps the pace rules' whole limits
/// (`context::pace`), between them it scales them down.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Shortage(f32);

impl Shortage {
    /// No CPU to spare: the whole holds.
    pub const FULL: Self = Self(1.0);
    /// CPU to spare: no holds.
    pub const NONE: Self = Self(0.0);

    /// `share` clamped to 0..=1 (a NaN is taken as full).
    pub fn new(share: f32) -> Self {
        if share.is_nan() {
            return Self::FULL;
        }
        Self(share.clamp(0.0, 1.0))
    }

    pub fn share(self) -> f32 {
        self.0
    }

    /// Whether there is any: without, nothing is held.
    pub fn any(self) -> bool {
        self.0 > 0.0
    }

    /// `limit` scaled by the shortage.
    pub fn of(self, limit: Duration) -> Duration {
        let nanos = limit.as_nanos() as f64 * f64::from(self.0);
        Duration::from_nanos(nanos.round() as u64)
    }
}

/// Where a node shows its CPU shortage and what it is measured against.
pub struct Gauges {
    /// `conclave_cpu_shortage`.
    pub shortage: prometheus::Gauge,
    /// `conclave_cpu_cores`: the cores' worth the node may use.
    pub cores: prometheus::Gauge,
}

/// The machine's CPU shortage as this node sees it, shared by its
/// contexts (one per node).
pub struct CpuShortage {
    /// Always this (tests: a machine that is, or is not, short).
    fixed: Option<Shortage>,
    state: Mutex<State>,
    /// The cgroups whose quotas count ([`cgroup`]), found at the start.
    cgroups: Vec<Cgroup>,
    gauges: Option<Gauges>,
}

struct State {
    shortage: Shortage,
    last: Option<Reading>,
}

impl CpuShortage {
    /// Measured on this machine; the shortage starts full (a node that
    /// cannot tell yet holds, as one that cannot read `/proc` always does).
    pub fn of_this_machine(gauges: Option<Gauges>) -> Self {
        let cgroups = cgroup::of_this_process();
        if let Some(g) = &gauges {
            g.shortage.set(1.0);
            if let Some(cores) = Reading::take(Instant::now(), &cgroups).cores() {
                g.cores.set(cores);
            }
        }
        Self {
            fixed: None,
            state: Mutex::new(State {
                shortage: Shortage::FULL,
                last: None,
            }),
            cgroups,
            gauges,
        }
    }

    /// Always `shortage`, whatever the machine does.
    pub fn fixed(shortage: Shortage) -> Self {
        Self {
            fixed: Some(shortage),
            state: Mutex::new(State {
                shortage,
                last: None,
            }),
            cgroups: Vec::new(),
            gauges: None,
        }
    }

    /// The shortage now, after a new sample if the last is
    /// [`SAMPLE_EVERY`] old.
    pub fn now(&self) -> Shortage {
        if let Some(fixed) = self.fixed {
            return fixed;
        }
        let now = Instant::now();
        let mut state = self.state.lock();
        if state
            .last
            .as_ref()
            .is_some_and(|last| now.duration_since(last.at) < SAMPLE_EVERY)
        {
            return state.shortage;
        }
        let reading = Reading::take(now, &self.cgroups);
        if let (Some(g), Some(cores)) = (&self.gauges, reading.cores()) {
            g.cores.set(cores);
        }
        if let Some(before) = &state.last {
            if let Some(idle) = idle_share(before, &reading) {
                let elapsed = reading.at.duration_since(before.at);
                state.shortage = step(state.shortage, idle, elapsed);
                if let Some(g) = &self.gauges {
                    g.shortage.set(f64::from(state.shortage.0));
                }
            }
        }
        state.last = Some(reading);
        state.shortage
    }
}

/// The shortage after `elapsed` at `idle` (the idle share over it).
fn step(shortage: Shortage, idle: f32, elapsed: Duration) -> Shortage {
    let secs = elapsed.min(MAX_STEP).as_secs_f32();
    Shortage::new(shortage.0 + GAIN * (TARGET_IDLE - idle) * secs)
}

/// CPU time counters read at one moment.
#[derive(Clone, Debug, PartialEq)]
struct Reading {
    at: Instant,
    /// How many CPUs this node may run on (its affinity), if known.
    cpus: Option<usize>,
    /// The idle and total time of the cores this node may run on
    /// (`/proc/stat`, in ticks).
    host: Option<HostTimes>,
    /// The quota and use of each of the node's cgroups
    /// ([`CpuShortage::cgroups`], in order); `None` where it has no quota.
    cgroups: Vec<Option<CgroupTimes>>,
}

impl Reading {
    fn take(at: Instant, cgroups: &[Cgroup]) -> Self {
        // Read each time: an affinity can change while the node runs
        // (`taskset -p`).
        let allowed = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| cores::allowed_cpus(&s));
        let host = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| cores::host_times(&s, allowed.as_deref()));
        Self {
            at,
            cpus: allowed.map(|a| a.iter().map(|r| r.end() + 1 - r.start()).sum()),
            host,
            cgroups: cgroups.iter().map(Cgroup::read).collect(),
        }
    }

    /// Cores' worth of CPU the node may use: its CPUs, or the least of
    /// its cgroups' quotas if less. `None` if neither is known.
    fn cores(&self) -> Option<f64> {
        let quota = self
            .cgroups
            .iter()
            .flatten()
            .map(|c| c.cores)
            .reduce(f64::min);
        match (self.cpus.map(|n| n as f64), quota) {
            (Some(cpus), Some(quota)) => Some(cpus.min(quota)),
            (cpus, quota) => cpus.or(quota),
        }
    }
}

/// The idle share between two readings: the cores', or the least unused
/// share of a cgroup's quota if less. `None` if none can be told.
fn idle_share(before: &Reading, after: &Reading) -> Option<f32> {
    let host = match (before.host, after.host) {
        (Some(a), Some(b)) if b.total > a.total => {
            let idle = b.idle.saturating_sub(a.idle) as f64;
            Some(idle / (b.total - a.total) as f64)
        }
        _ => None,
    };
    let secs = after.at.saturating_duration_since(before.at).as_secs_f64();
    let cgroup = before
        .cgroups
        .iter()
        .zip(&after.cgroups)
        .filter_map(|pair| match pair {
            (Some(a), Some(b)) if secs > 0.0 && b.cores > 0.0 => {
                let used = b.used_us.saturating_sub(a.used_us) as f64 / 1e6;
                Some(1.0 - used / (secs * b.cores))
            }
            _ => None,
        })
        .reduce(f64::min);
    let share = match (host, cgroup) {
        (Some(h), Some(c)) => h.min(c),
        (h, c) => h.or(c)?,
    };
    Some(share.clamp(0.0, 1.0) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(idle: u64, total: u64) -> Reading {
        Reading {
            at: Instant::now(),
            cpus: None,
            host: Some(HostTimes { idle, total }),
            cgroups: Vec::new(),
        }
    }

    #[test]
    fn a_pinned_node_s_idle_share_is_that_of_its_cores() {
        // A node pinned to the busy core of two, which the whole machine's
        // reading shows idle half the time, is idle none of it.
        let busy = "cpu  100 0 0 100 0 0 0 0\ncpu0 0 0 0 100 0 0 0 0\ncpu1 100 0 0 0 0 0 0 0\n";
        let zero = "cpu  0 0 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0\ncpu1 0 0 0 0 0 0 0 0\n";
        let reading = |stat: &str, allowed: Option<&[std::ops::RangeInclusive<usize>]>| Reading {
            at: Instant::now(),
            cpus: None,
            host: cores::host_times(stat, allowed),
            cgroups: Vec::new(),
        };
        let share = |allowed| idle_share(&reading(zero, allowed), &reading(busy, allowed));
        assert_eq!(share(None), Some(0.5));
        assert_eq!(share(Some(&[1..=1])), Some(0.0));
    }

    #[test]
    fn this_machine_s_counters_can_be_read() {
        let reading = Reading::take(Instant::now(), &cgroup::of_this_process());
        let times = reading
            .host
            .expect("/proc/stat has lines for this process's cpus");
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let allowed = cores::allowed_cpus(&status).expect("a Cpus_allowed_list line");
        assert!(!allowed.is_empty());
        assert!(times.idle <= times.total, "{times:?}");
        // Whatever the machine does, the shortage stays in 0..=1.
        let shortage = CpuShortage::of_this_machine(None).now();
        assert!((0.0..=1.0).contains(&shortage.share()), "{shortage:?}");
    }

    #[test]
    fn the_idle_share_is_the_idle_part_of_the_time_between_readings() {
        assert_eq!(idle_share(&host(100, 1_000), &host(130, 1_100)), Some(0.3));
        // No time passed, or counters that went back (a new boot): unknown.
        assert_eq!(idle_share(&host(100, 1_000), &host(100, 1_000)), None);
        assert_eq!(idle_share(&host(100, 1_000), &host(50, 900)), None);
        let unread = Reading {
            host: None,
            ..host(0, 0)
        };
        assert_eq!(idle_share(&unread, &host(50, 900)), None);
    }

    #[test]
    fn a_cgroup_s_unused_quota_counts_when_less_than_the_machine_s_idle() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        let limited = |idle, total, used_us: &[u64], at| Reading {
            cpus: None,
            host: Some(HostTimes { idle, total }),
            cgroups: used_us
                .iter()
                .map(|&used_us| {
                    Some(CgroupTimes {
                        cores: 2.0,
                        used_us,
                    })
                })
                .collect(),
            at,
        };
        // The host half idle, the cgroup using 1.8 of its 2 cores: 10 %.
        let share = idle_share(
            &limited(0, 0, &[0], t0),
            &limited(50, 100, &[1_800_000], t1),
        );
        assert!((share.unwrap() - 0.1).abs() < 1e-6, "{share:?}");
        // The cgroup using a quarter of its quota: the host's 20 % counts.
        let share = idle_share(&limited(0, 0, &[0], t0), &limited(20, 100, &[500_000], t1));
        assert!((share.unwrap() - 0.2).abs() < 1e-6, "{share:?}");
        // Quotas on the node's cgroup and one above it: the least unused
        // counts (the parent's 2 cores shared with others, 1.9 used).
        let share = idle_share(
            &limited(0, 0, &[0, 0], t0),
            &limited(50, 100, &[500_000, 1_900_000], t1),
        );
        assert!((share.unwrap() - 0.05).abs() < 1e-6, "{share:?}");
        // A cgroup whose quota was lifted (or read once only) counts for
        // nothing; nor does one read at the same moment.
        let mut lifted = limited(50, 100, &[1_800_000], t1);
        lifted.cgroups[0] = None;
        let share = idle_share(&limited(0, 0, &[0], t0), &lifted);
        assert!((share.unwrap() - 0.5).abs() < 1e-6, "{share:?}");
        assert_eq!(
            idle_share(
                &limited(0, 0, &[0], t1),
                &limited(50, 100, &[1_800_000], t1)
            ),
            Some(0.5)
        );
    }

    #[test]
    fn the_cores_are_the_cpus_or_the_least_quota() {
        let reading = |cpus, quotas: &[Option<f64>]| Reading {
            at: Instant::now(),
            cpus,
            host: None,
            cgroups: quotas
                .iter()
                .map(|q| q.map(|cores| CgroupTimes { cores, used_us: 0 }))
                .collect(),
        };
        assert_eq!(reading(Some(8), &[]).cores(), Some(8.0));
        assert_eq!(
            reading(Some(8), &[Some(1.5), None, Some(4.0)]).cores(),
            Some(1.5)
        );
        assert_eq!(
            reading(Some(2), &[Some(4.0)]).cores(),
            Some(2.0),
            "pinned below the quota"
        );
        assert_eq!(reading(None, &[Some(0.5)]).cores(), Some(0.5));
        assert_eq!(reading(None, &[None]).cores(), None);
        // This process's, read: at least part of a core.
        let own = Reading::take(Instant::now(), &cgroup::of_this_process());
        assert!(own.cores().is_some_and(|c| c > 0.0), "{:?}", own.cores());
    }

    #[test]
    fn the_shortage_rises_below_the_target_idle_and_falls_above_it() {
        let second = Duration::from_secs(1);
        let half = Shortage::new(0.5);
        assert!(step(half, 0.0, second) > half, "nothing idle: holds grow");
        assert!(step(half, 0.45, second) < half, "much idle: holds shrink");
        assert_eq!(step(half, TARGET_IDLE, second), half, "at the target: kept");
        // Bounded both ways, and a long gap counts as one second at most.
        assert_eq!(step(Shortage::FULL, 0.0, second), Shortage::FULL);
        assert_eq!(step(Shortage::NONE, 1.0, second), Shortage::NONE);
        assert_eq!(
            step(half, 0.0, Duration::from_secs(60)),
            step(half, 0.0, second)
        );
        // From full to none within two seconds at 45 % idle.
        let mut s = Shortage::FULL;
        for _ in 0..10 {
            s = step(s, 0.45, SAMPLE_EVERY);
        }
        assert!(s.share() < 0.01, "{s:?}");
    }

    #[test]
    fn a_shortage_scales_the_limits_it_is_applied_to() {
        let limit = Duration::from_millis(2_000);
        assert_eq!(Shortage::FULL.of(limit), limit);
        assert_eq!(Shortage::new(0.25).of(limit), Duration::from_millis(500));
        assert_eq!(Shortage::NONE.of(limit), Duration::ZERO);
        assert!(!Shortage::NONE.any() && Shortage::new(0.01).any());
        assert_eq!(Shortage::new(f32::NAN), Shortage::FULL);
        assert_eq!(Shortage::new(7.0), Shortage::FULL);
    }
}
