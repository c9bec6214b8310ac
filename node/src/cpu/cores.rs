//! Which cores this node may run on, and how much of their time was idle:
//! its affinity (`Cpus_allowed_list` in `/proc/self/status`: all the
//! machine's CPUs unless it was pinned with `taskset`, systemd's
//! `CPUAffinity` or a container's `cpuset`) and those CPUs' lines of
//! `/proc/stat`.

use std::ops::RangeInclusive;

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
    let line = stat.lines().find_map(|l| l.strip_prefix("cpu "))?;
    line_times(line)
}

/// The times of one line of `/proc/stat` past its name: `user nice
/// system idle iowait irq softirq steal ...` (guest time is counted in
/// user already). Idle is `idle` and `iowait`: a core waiting for the
/// disk runs nothing.
fn line_times(fields: &str) -> Option<HostTimes> {
    let fields: Vec<u64> = fields
        .split_whitespace()
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if fields.len() < 5 {
        return None;
    }
    Some(HostTimes {
        idle: fields[3] + fields[4],
        total: fields.iter().sum(),
    })
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
