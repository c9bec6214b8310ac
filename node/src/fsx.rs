//! The few durable file operations the WAL, the sign guard and the key
//! files rely on.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus::{HistogramOpts, HistogramVec};

/// A sync that takes longer than this is logged: heights then wait on the
/// disk, not on the node (a disk shared with other busy writers, a device
/// flushing its cache, ext4 committing other files' data with it).
const SLOW_SYNC: Duration = Duration::from_millis(200);

/// How long each timed sync took, by what it synced:
/// `conclave_disk_sync_seconds{what}`, one histogram for the process,
/// registered with each node's metrics (`Metrics::new`).
static DISK_SYNC_SECONDS: LazyLock<Option<HistogramVec>> = LazyLock::new(|| {
    HistogramVec::new(
        HistogramOpts::new(
            "conclave_disk_sync_seconds",
            "Time of each sync on a height's path (wal, sign_guard, store_log) and of the store's writes that may wait on one (store_commit, store_write)",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ]),
        &["what"],
    )
    .ok()
});

/// The histogram of [`timed_sync`]'s durations, to register.
pub(crate) fn disk_sync_seconds() -> Option<&'static HistogramVec> {
    DISK_SYNC_SECONDS.as_ref()
}

/// Runs `sync`, one sync of `what` (`wal`, `sign_guard`, `store_log`) or a
/// write that may wait on one (`store_commit`, `store_write`: RocksDB's,
/// while it stalls writers), records how long it took, and warns when it
/// was slow.
pub(crate) fn timed_sync<R>(what: &str, sync: impl FnOnce() -> R) -> R {
    let started = Instant::now();
    let result = sync();
    let took = started.elapsed();
    if let Some(histogram) = disk_sync_seconds() {
        histogram
            .with_label_values(&[what])
            .observe(took.as_secs_f64());
    }
    if took >= SLOW_SYNC {
        tracing::warn!(what, ms = took.as_millis() as u64, "slow disk sync");
    }
    result
}

/// Makes a rename or a new file in `path`'s directory durable.
pub(crate) fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// `path` with `suffix` appended to its file name.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Replaces `path` with `bytes` atomically: write a temporary file, fsync
/// it, rename it over `path`, fsync the directory. A crash at any point
/// leaves either the old or the new content at `path`, never a mix.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = with_suffix(path, ".tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    sync_parent(path)
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Writes `bytes` durably to a new file `<name>.corrupt-<unix_ms>` next to
/// `path` (with a `-N` suffix if that name is taken) and returns its path.
pub(crate) fn backup(path: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    let base = format!(".corrupt-{}", unix_ms());
    for n in 0..1000u32 {
        let suffix = if n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let target = with_suffix(path, &suffix);
        let mut f = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        f.write_all(bytes)?;
        f.sync_all()?;
        sync_parent(&target)?;
        return Ok(target);
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free backup file name",
    ))
}

/// Bytes free for an unprivileged writer on the filesystem holding `path`.
pub(crate) fn free_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` a
    // buffer of the right type, which statvfs fills on success.
    #[allow(unsafe_code)]
    let stat = unsafe {
        if libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        stat.assume_init()
    };
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A log sink the test reads back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_slow_sync_is_logged_with_what_it_synced() {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let answer = tracing::subscriber::with_default(subscriber, || {
            timed_sync("test_file", || {
                std::thread::sleep(SLOW_SYNC);
                Ok::<u8, io::Error>(7)
            })
        });
        assert_eq!(answer.unwrap(), 7, "the sync's own result");
        let logged = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(logged.contains("slow disk sync"), "{logged}");
        assert!(logged.contains("test_file"), "{logged}");
        let recorded = disk_sync_seconds()
            .expect("the histogram")
            .with_label_values(&["test_file"]);
        assert_eq!(recorded.get_sample_count(), 1);
        assert!(recorded.get_sample_sum() >= SLOW_SYNC.as_secs_f64());
    }
}
