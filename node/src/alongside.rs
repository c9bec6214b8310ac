//! A short blocking job (an fsync) run on another thread while the caller
//! goes on with its own, then waited for.
//!
//! On a tokio runtime the job runs on the runtime's blocking pool, whose
//! threads stay alive between jobs: a thread spawned and joined per job
//! cost about 65 µs of CPU, mostly the kernel's, and a validator made one
//! for every signature it released and every block it proposed. Outside a
//! runtime (tools, some tests) the job gets a thread of its own, and if no
//! thread can be had it runs on the caller's.

use std::sync::mpsc;
use std::thread::JoinHandle;

/// A job under way; [`Alongside::wait`] for its result.
#[must_use = "the job's result is known only once `wait` returned"]
pub struct Alongside<T>(Running<T>);

enum Running<T> {
    Pooled(mpsc::Receiver<T>),
    /// A thread of its own, which receives the job once it started (so
    /// that a failed spawn leaves the job with the caller).
    Thread(JoinHandle<Result<T, mpsc::RecvError>>),
    Done(T),
}

/// Starts `job` on another thread; `name` names a thread of its own, when
/// one is made.
pub fn start<T, F>(name: &str, job: F) -> Alongside<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let (done, result) = mpsc::sync_channel(1);
        // A job that never runs (the runtime is shutting down) or panics
        // drops `done`: `wait` then says so.
        drop(runtime.spawn_blocking(move || {
            let _ = done.send(job());
        }));
        return Alongside(Running::Pooled(result));
    }
    let (tx, rx) = mpsc::sync_channel::<F>(1);
    match std::thread::Builder::new()
        .name(name.into())
        .spawn(move || rx.recv().map(|job| job()))
    {
        Ok(thread) => {
            let _ = tx.send(job);
            Alongside(Running::Thread(thread))
        }
        Err(_) => Alongside(Running::Done(job())),
    }
}

impl<T> Alongside<T> {
    /// Waits for the job: its result, or `None` if it did not complete
    /// (it panicked, or the runtime shut down before it ran).
    pub fn wait(self) -> Option<T> {
        match self.0 {
            Running::Pooled(result) => result.recv().ok(),
            Running::Thread(thread) => thread.join().ok().and_then(Result::ok),
            Running::Done(done) => Some(done),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    /// Whether `start` ran the job on another thread than the caller's.
    fn ran_elsewhere() -> Option<bool> {
        let caller = std::thread::current().id();
        start("t", move || std::thread::current().id() != caller).wait()
    }

    #[test]
    fn outside_a_runtime_the_job_runs_on_a_thread() {
        assert_eq!(ran_elsewhere(), Some(true));
    }

    #[test]
    fn on_a_runtime_the_pool_runs_it() {
        let rt = runtime();
        let _entered = rt.enter();
        assert_eq!(ran_elsewhere(), Some(true));
    }

    #[test]
    fn a_panicking_job_is_reported_not_propagated() {
        let boom = || start("t", || -> u32 { panic!("boom") }).wait();
        let rt = runtime();
        let entered = rt.enter();
        assert_eq!(boom(), None, "on the pool");
        drop(entered);
        assert_eq!(boom(), None, "on a thread of its own");
    }
}
