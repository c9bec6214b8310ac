//! Which cores this node may run on, and how much of their time was idle:
//! its affinity (`Cpus_allowed_list` in `/proc/self/status`: all the
//! machine's CPUs unless it was pinned with `taskset`, systemd's
//! `CPUAffinity` or a container's `cpuset`) and those CPUs' lines of
//! `/proc/stat`.

use std::ops::RangeInclusive;

/// One line of `/proc/stat` past its name, in ticks: `user nice system
/// idle iowait irq softirq steal` (guest time is counted in user already;
/// kernels before 2.6.11 stop before steal, and what they lack counts as
/// zero). The node reads its idle share from it ([`HostTimes`]), `conclave
/// bench` how the machine spent a load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuTicks {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuTicks {
    /// The fields of a line past its name (`cpu`, `cpu0`, ...); none if
    /// one of the first eight is not a number or there are fewer than
    /// five.
    fn parse(fields: &str) -> Option<Self> {
        let fields: Vec<u64> = fields
            .split_whitespace()
            .take(8)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        if fields.len() < 5 {
            return None;
        }
        let at = |i: usize| fields.get(i).copied().unwrap_or(0);
        Some(Self {
            user: at(0),
            nice: at(1),
            system: at(2),
            idle: at(3),
            iowait: at(4),
            irq: at(5),
            softirq: at(6),
            steal: at(7),
        })
    }

    /// The machine's line (the aggregate `cpu` of all its CPUs) of a
    /// `/proc/stat` text.
    pub(crate) fn of_machine(stat: &str) -> Option<Self> {
        Self::parse(stat.lines().find_map(|l| l.strip_prefix("cpu "))?)
    }

    /// All of it.
    pub fn total(&self) -> u64 {
        self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
    }
}

/// Idle and total CPU time, in ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct HostTimes {
    pub(super) idle: u64,
    pub(super) total: u64,
}

/// The idle and total time in `/proc/stat` of the CPUs in `allowed`
/// (their `cpuN` lines), or of all of them (the aggregate `cpu` line)
/// when `allowed` is unknown or names none of the lines: a node pinned to
/// one core of two counts only that one, where the other's idle time would
/// have told it that half the machine was free.
pub(super) fn host_times(
    stat: &str,
    allowed: Option<&[RangeInclusive<usize>]>,
) -> Option<HostTimes> {
    if let Some(allowed) = allowed {
        let mut sum: Option<HostTimes> = None;
        for line in stat.lines() {
            let Some((cpu, times)) = line
                .strip_prefix("cpu")
                .and_then(|rest| rest.split_once(' '))
            else {
                continue;
            };
            let Ok(cpu) = cpu.parse::<usize>() else {
                continue;
            };
            if allowed.iter().any(|range| range.contains(&cpu)) {
                let times = line_times(times)?;
                let sum = sum.get_or_insert(HostTimes { idle: 0, total: 0 });
                sum.idle += times.idle;
                sum.total += times.total;
            }
        }
        if sum.is_some() {
            return sum;
        }
    }
    CpuTicks::of_machine(stat).map(HostTimes::from)
}

/// The times of one line of `/proc/stat` past its name.
fn line_times(fields: &str) -> Option<HostTimes> {
    CpuTicks::parse(fields).map(HostTimes::from)
}

impl From<CpuTicks> for HostTimes {
    /// Idle is `idle` and `iowait`: a core waiting for the disk runs
    /// nothing.
    fn from(ticks: CpuTicks) -> Self {
        Self {
            idle: ticks.idle + ticks.iowait,
            total: ticks.total(),
        }
    }
}

/// The CPUs this process may run on: `Cpus_allowed_list` in
/// `/proc/self/status` (`0-3,8`). `None` if it is missing or malformed.
pub(super) fn allowed_cpus(status: &str) -> Option<Vec<RangeInclusive<usize>>> {
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
        .trim();
    list.split(',')
        .map(|part| {
            let (first, last) = part.split_once('-').unwrap_or((part, part));
            let (first, last) = (first.parse().ok()?, last.parse().ok()?);
            (first <= last).then_some(first..=last)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aggregate_line_of_proc_stat_gives_idle_and_total_time() {
        let stat = "cpu  7334003 0 1065313 4680637 168457 0 169199 1754 0 0\n\
                    cpu0 3667001 0 532656 2340318 84228 0 84599 877 0 0\n\
                    intr 1 2 3\n";
        assert_eq!(
            host_times(stat, None),
            Some(HostTimes {
                idle: 4_680_637 + 168_457,
                total: 7_334_003 + 1_065_313 + 4_680_637 + 168_457 + 169_199 + 1_754,
            })
        );
        assert_eq!(
            host_times("cpu0 1 2 3 4 5\n", None),
            None,
            "no aggregate line"
        );
        assert_eq!(
            host_times("cpu  1 2 x 4 5\n", None),
            None,
            "a field that is no number"
        );
        assert_eq!(host_times("cpu  1 2 3\n", None), None, "too few fields");
    }

    #[test]
    fn the_machine_s_line_is_read_field_by_field() {
        let stat = "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 9 9 9 9 9 9 9 9 9 9\n";
        let ticks = CpuTicks::of_machine(stat).unwrap();
        assert_eq!(
            ticks,
            CpuTicks {
                user: 1,
                nice: 2,
                system: 3,
                idle: 4,
                iowait: 5,
                irq: 6,
                softirq: 7,
                steal: 8,
            }
        );
        // Guest time (fields 9 and 10) is in user already.
        assert_eq!(ticks.total(), 36);
        // An older kernel's line, without steal: what it lacks is zero.
        let old = CpuTicks::of_machine("cpu  1 2 3 4 5\n").unwrap();
        assert_eq!((old.iowait, old.irq, old.steal, old.total()), (5, 0, 0, 15));
        assert_eq!(CpuTicks::of_machine("cpu0 1 2 3 4 5\n"), None);
        assert_eq!(CpuTicks::of_machine("cpu  1 2 3 4\n"), None);
    }

    /// Two cores: the first idle, the second busy all the time.
    const ONE_BUSY_OF_TWO: &str = "cpu  100 0 0 100 0 0 0 0 0 0\n\
                                   cpu0 0 0 0 100 0 0 0 0 0 0\n\
                                   cpu1 100 0 0 0 0 0 0 0 0 0\n\
                                   intr 1 2 3\n";

    #[test]
    fn only_the_cores_the_node_may_run_on_count() {
        let all = host_times(ONE_BUSY_OF_TWO, None).unwrap();
        assert_eq!((all.idle, all.total), (100, 200), "the whole machine");
        let pinned = host_times(ONE_BUSY_OF_TWO, Some(&[1..=1])).unwrap();
        assert_eq!(
            (pinned.idle, pinned.total),
            (0, 100),
            "pinned to the busy one"
        );
        let both = host_times(ONE_BUSY_OF_TWO, Some(&[0..=0, 1..=1])).unwrap();
        assert_eq!((both.idle, both.total), (100, 200));
        // An affinity that names no line of the file: the whole machine.
        assert_eq!(host_times(ONE_BUSY_OF_TWO, Some(&[4..=7])), Some(all));
        // A malformed line among the allowed ones: unknown.
        assert_eq!(
            host_times("cpu  1 2 3 4 5\ncpu0 1 x 3 4 5\n", Some(&[0..=0])),
            None
        );
    }

    #[test]
    fn the_allowed_cpus_are_read_from_the_process_status() {
        let status = |list: &str| {
            format!(
                "Name:\tconclave\nCpus_allowed:\t3\nCpus_allowed_list:\t{list}\nMems_allowed:\t1\n"
            )
        };
        assert_eq!(allowed_cpus(&status("0-1")), Some(vec![0..=1]));
        assert_eq!(allowed_cpus(&status("1")), Some(vec![1..=1]));
        assert_eq!(
            allowed_cpus(&status("0-3,8,10-11")),
            Some(vec![0..=3, 8..=8, 10..=11])
        );
        for bad in ["", "3-1", "0-x", "1,,2", "-1"] {
            assert_eq!(allowed_cpus(&status(bad)), None, "{bad:?}");
        }
        assert_eq!(allowed_cpus("Name:\tconclave\n"), None, "no such line");
    }
}
