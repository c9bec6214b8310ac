//! The CPU quotas of the cgroups this node runs in, and how much of them
//! it used: a container limited to fewer cores than its host has
//! (`docker run --cpus`, compose's `cpus`), a systemd service's
//! `CPUQuota`, a nested cgroup of the host's.
//!
//! A quota may be set on the node's own cgroup or on any cgroup above it,
//! so each of them counts, from the node's own up to the root of what the
//! process can see. Where each lies in the file system follows from the
//! process's cgroups (`/proc/self/cgroup`) and the cgroup file systems'
//! mounts (`/proc/self/mountinfo`: a container sees its own cgroup as the
//! root of the mount, a host process the whole tree). cgroup v2 keeps the
//! quota in `cpu.max` and the use in `cpu.stat`; v1 in `cpu`'s
//! `cpu.cfs_quota_us` and `cpuacct`'s `cpuacct.usage`, which may be
//! mounted together or apart.

use std::path::{Path, PathBuf};

/// One cgroup's CPU quota and use, read at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct CgroupTimes {
    /// Cores' worth of CPU the cgroup may use.
    pub(super) cores: f64,
    /// CPU time it used, in microseconds.
    pub(super) used_us: u64,
}

/// Where one cgroup above (or at) the node keeps its quota and use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Cgroup {
    /// cgroup v2: `cpu.max` and `cpu.stat` in one directory.
    V2(PathBuf),
    /// cgroup v1: `cpu.cfs_quota_us` and `cpu.cfs_period_us` in the first,
    /// `cpuacct.usage` in the second.
    V1 { cpu: PathBuf, cpuacct: PathBuf },
}

impl Cgroup {
    /// Its quota and use now, if it has a quota.
    pub(super) fn read(&self) -> Option<CgroupTimes> {
        let read = |dir: &Path, file: &str| std::fs::read_to_string(dir.join(file)).ok();
        match self {
            Self::V2(dir) => Some(CgroupTimes {
                cores: v2_cores(&read(dir, "cpu.max")?)?,
                used_us: v2_usage_us(&read(dir, "cpu.stat")?)?,
            }),
            Self::V1 { cpu, cpuacct } => {
                let quota = read(cpu, "cpu.cfs_quota_us")?.trim().parse().ok()?;
                let period = read(cpu, "cpu.cfs_period_us")?.trim().parse().ok()?;
                let cores = v1_cores(quota, period)?;
                let used_ns: u64 = read(cpuacct, "cpuacct.usage")?.trim().parse().ok()?;
                Some(CgroupTimes {
                    cores,
                    used_us: used_ns / 1_000,
                })
            }
        }
    }
}

/// The cgroups this process runs in that can carry a CPU quota (their
/// quota's file is there; set or not, it is read at each sample, since
/// `docker update --cpus` changes it): its own and each above it. Empty
/// where nothing can be read.
pub(super) fn of_this_process() -> Vec<Cgroup> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let mut all = cgroups(&read("/proc/self/mountinfo"), &read("/proc/self/cgroup"));
    all.retain(|c| match c {
        Cgroup::V2(dir) => dir.join("cpu.max").is_file(),
        Cgroup::V1 { cpu, cpuacct } => {
            cpu.join("cpu.cfs_quota_us").is_file() && cpuacct.join("cpuacct.usage").is_file()
        }
    });
    all
}

/// A cgroup file system mounted here: which hierarchy, the cgroup path of
/// its root, and where it is mounted.
struct Mount {
    /// A `cgroup2` mount, else v1.
    v2: bool,
    /// Its super options, which name a v1 mount's controllers.
    controllers: Vec<String>,
    /// The cgroup path of the cgroup it shows at `point`.
    root: String,
    /// Where it is mounted.
    point: PathBuf,
}

impl Mount {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// The directory of cgroup `path`, if this mount shows it. A path
    /// that leaves its namespace's root (`/..`, a cgroup namespace's view
    /// of a cgroup outside it) is shown by none.
    fn dir(&self, path: &str) -> Option<PathBuf> {
        if !path.starts_with('/') || path.split('/').any(|part| part == "..") {
            return None;
        }
        let rest = if self.root == "/" {
            path
        } else {
            let rest = path.strip_prefix(self.root.as_str())?;
            if !(rest.is_empty() || rest.starts_with('/')) {
                return None;
            }
            rest
        };
        let rest = rest.trim_start_matches('/');
        Some(if rest.is_empty() {
            self.point.clone()
        } else {
            self.point.join(rest)
        })
    }
}

/// The cgroups from the process's own up to its mounts' roots, nearest
/// first, from `mountinfo` (`/proc/self/mountinfo`) and `cgroup`
/// (`/proc/self/cgroup`); whether their directories exist is not checked.
fn cgroups(mountinfo: &str, cgroup: &str) -> Vec<Cgroup> {
    let mounts: Vec<Mount> = mountinfo.lines().filter_map(mount).collect();
    // `hierarchy:controllers:path`; v2's line has no controllers.
    let memberships: Vec<(&str, &str)> = cgroup
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            parts.next()?;
            Some((parts.next()?, parts.next()?))
        })
        .collect();
    let path_of = |controller: &str| {
        memberships
            .iter()
            .find(|(cs, _)| cs.split(',').any(|c| c == controller))
            .map(|(_, path)| *path)
    };
    let mut found = Vec::new();
    // v1: the quota in `cpu`'s hierarchy, the use in `cpuacct`'s (the
    // same one when mounted together), of the same cgroups: a node in
    // different cgroups of the two cannot tell its quota's use.
    if let (Some(path), Some(cpu), Some(acct)) = (
        path_of("cpu").filter(|p| path_of("cpuacct") == Some(*p)),
        mounts.iter().find(|m| !m.v2 && m.has("cpu")),
        mounts.iter().find(|m| !m.v2 && m.has("cpuacct")),
    ) {
        for (dir, path) in ancestors(path, cpu) {
            if let Some(cpuacct) = acct.dir(&path) {
                found.push(Cgroup::V1 { cpu: dir, cpuacct });
            }
        }
    }
    // v2: the one hierarchy.
    if let Some((_, path)) = memberships.iter().find(|(cs, _)| cs.is_empty()) {
        for m in mounts.iter().filter(|m| m.v2) {
            found.extend(
                ancestors(path, m)
                    .into_iter()
                    .map(|(dir, _)| Cgroup::V2(dir)),
            );
        }
    }
    found
}

/// The directories of cgroup `path` and of each cgroup above it that
/// mount `m` shows, nearest first, each with its cgroup path.
fn ancestors(path: &str, m: &Mount) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut path = path.to_owned();
    while let Some(dir) = m.dir(&path) {
        out.push((dir, path.clone()));
        if path == m.root || path == "/" {
            break;
        }
        match path.rfind('/') {
            Some(0) => path.truncate(1),
            Some(i) => path.truncate(i),
            None => break,
        }
    }
    out
}

/// A cgroup mount from a line of `/proc/self/mountinfo`: `id parent
/// major:minor root point options [optional...] - type source super`.
fn mount(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let mut before = before.split(' ');
    let root = unescape(before.nth(3)?);
    let point = PathBuf::from(unescape(before.next()?));
    let mut after = after.split(' ');
    let kind = after.next()?;
    let supers = after.nth(1).unwrap_or_default();
    let v2 = match kind {
        "cgroup2" => true,
        "cgroup" => false,
        _ => return None,
    };
    Some(Mount {
        v2,
        controllers: supers.split(',').map(str::to_owned).collect(),
        root,
        point,
    })
}

/// A mountinfo field with its octal escapes (`\040` for a space) undone.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Cores' worth of a v2 `cpu.max` (`<quota> <period>`, or `max` for none).
fn v2_cores(max: &str) -> Option<f64> {
    let mut parts = max.split_whitespace();
    let quota: f64 = parts.next()?.parse().ok()?;
    let period: f64 = parts.next()?.parse().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

/// `usage_usec` of a v2 `cpu.stat`.
fn v2_usage_us(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))?
        .trim()
        .parse()
        .ok()
}

/// Cores' worth of a v1 quota (`-1`: none).
fn v1_cores(quota: i64, period: i64) -> Option<f64> {
    (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(dirs: &[&str]) -> Vec<Cgroup> {
        dirs.iter().map(|d| Cgroup::V2(PathBuf::from(d))).collect()
    }

    #[test]
    fn a_host_service_counts_its_own_cgroup_and_each_above_it() {
        // systemd on cgroup v2: `CPUQuota` on the service or its slice.
        let mountinfo = "24 1 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n\
                         25 1 8:1 / / rw - ext4 /dev/sda1 rw\n";
        let cgroup = "0::/system.slice/conclave.service\n";
        assert_eq!(
            cgroups(mountinfo, cgroup),
            v2(&[
                "/sys/fs/cgroup/system.slice/conclave.service",
                "/sys/fs/cgroup/system.slice",
                "/sys/fs/cgroup",
            ])
        );
    }

    #[test]
    fn a_container_sees_its_own_cgroup_as_the_mount_s_root() {
        // Docker on v2 (a cgroup namespace of its own).
        let mountinfo = "600 500 0:26 / /sys/fs/cgroup ro - cgroup2 cgroup rw\n";
        assert_eq!(cgroups(mountinfo, "0::/\n"), v2(&["/sys/fs/cgroup"]));
        // Docker on v1: `cpu,cpuacct` mounted together, its root the
        // container's cgroup, which /proc/self/cgroup names in full.
        let mountinfo = "700 600 0:30 /docker/ab12 /sys/fs/cgroup/cpu,cpuacct ro - cgroup cgroup rw,cpu,cpuacct\n\
                         701 600 0:31 /docker/ab12 /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n";
        let cgroup = "4:memory:/docker/ab12\n3:cpu,cpuacct:/docker/ab12\n";
        let dir = PathBuf::from("/sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(
            cgroups(mountinfo, cgroup),
            vec![Cgroup::V1 {
                cpu: dir.clone(),
                cpuacct: dir
            }]
        );
    }

    #[test]
    fn v1_s_cpu_and_cpuacct_may_be_mounted_apart() {
        // This project's machine: a nested cgroup in both hierarchies.
        let mountinfo = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                         33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n\
                         38 31 0:35 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let cgroup = "2:cpuacct:/bench\n1:cpu:/bench\n0::/\n";
        let v1 = |cpu: &str, acct: &str| Cgroup::V1 {
            cpu: PathBuf::from(cpu),
            cpuacct: PathBuf::from(acct),
        };
        assert_eq!(
            cgroups(mountinfo, cgroup),
            vec![
                v1("/sys/fs/cgroup/cpu/bench", "/sys/fs/cgroup/cpuacct/bench"),
                v1("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpuacct"),
                Cgroup::V2(PathBuf::from("/sys/fs/cgroup/unified")),
            ]
        );
        // In different cgroups of the two, the use of the quota's cgroup
        // cannot be told: none counts.
        let apart = "2:cpuacct:/other\n1:cpu:/bench\n";
        assert_eq!(cgroups(mountinfo, apart), vec![]);
    }

    #[test]
    fn what_cannot_be_placed_counts_for_nothing() {
        let mountinfo = "700 600 0:30 /docker/ab12 /sys/fs/cgroup/cpu,cpuacct ro - cgroup cgroup rw,cpu,cpuacct\n";
        // A cgroup outside the mount's root (moved after the mount).
        assert_eq!(cgroups(mountinfo, "3:cpu,cpuacct:/docker/ab123\n"), vec![]);
        assert_eq!(cgroups(mountinfo, "3:cpu,cpuacct:/other\n"), vec![]);
        // Outside the process's cgroup namespace, or not a path at all.
        let v2 = "600 500 0:26 / /sys/fs/cgroup ro - cgroup2 cgroup rw\n";
        assert_eq!(cgroups(v2, "0::/../sibling\n"), vec![]);
        assert_eq!(cgroups(v2, "0::relative\n"), vec![]);
        // No mount, no lines, lines that are not cgroup lines.
        assert_eq!(cgroups("", "0::/\n"), vec![]);
        assert_eq!(cgroups(mountinfo, ""), vec![]);
        assert_eq!(cgroups("garbage\n", "garbage\n"), vec![]);
    }

    #[test]
    fn mount_points_are_unescaped() {
        let m = mount("1 2 0:1 / /mnt/with\\040space rw - cgroup2 x rw").unwrap();
        assert_eq!(m.point, PathBuf::from("/mnt/with space"));
        assert_eq!(unescape("a\\134b\\04"), "a\\b\\04");
    }

    #[test]
    fn cgroup_limits_are_read_in_both_versions() {
        assert_eq!(v2_cores("150000 100000\n"), Some(1.5));
        assert_eq!(v2_cores("max 100000\n"), None);
        assert_eq!(v2_usage_us("usage_usec 1234\nuser_usec 1000\n"), Some(1234));
        assert_eq!(v2_usage_us("user_usec 1000\n"), None);
        assert_eq!(v1_cores(200_000, 100_000), Some(2.0));
        assert_eq!(v1_cores(-1, 100_000), None);
    }

    #[test]
    fn a_cgroup_s_files_are_read_for_its_quota_and_use() {
        let dir = tempfile::tempdir().unwrap();
        let (cpu, acct) = (dir.path().join("cpu"), dir.path().join("cpuacct"));
        std::fs::create_dir_all(&cpu).unwrap();
        std::fs::create_dir_all(&acct).unwrap();
        let write = |d: &Path, f: &str, s: &str| std::fs::write(d.join(f), s).unwrap();
        write(&cpu, "cpu.max", "50000 100000\n");
        write(&cpu, "cpu.stat", "usage_usec 7000\nuser_usec 5000\n");
        assert_eq!(
            Cgroup::V2(cpu.clone()).read(),
            Some(CgroupTimes {
                cores: 0.5,
                used_us: 7000
            })
        );
        write(&cpu, "cpu.max", "max 100000\n");
        assert_eq!(Cgroup::V2(cpu.clone()).read(), None, "no quota");
        write(&cpu, "cpu.cfs_quota_us", "150000\n");
        write(&cpu, "cpu.cfs_period_us", "100000\n");
        write(&acct, "cpuacct.usage", "9000000\n");
        let v1 = Cgroup::V1 {
            cpu: cpu.clone(),
            cpuacct: acct.clone(),
        };
        assert_eq!(
            v1.read(),
            Some(CgroupTimes {
                cores: 1.5,
                used_us: 9000
            })
        );
        write(&cpu, "cpu.cfs_quota_us", "-1\n");
        assert_eq!(v1.read(), None, "no quota");
    }
}
