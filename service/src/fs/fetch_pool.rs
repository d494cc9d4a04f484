//! Where opens waiting for a payload from a remote are finished, so that
//! a download never occupies a FUSE request thread (on macOS the session
//! has only one): tokio's blocking pool, whose threads start when there
//! is work and end after a while without any — a service whose runtimes
//! read only local payloads has none. The number of downloads running at
//! once is bounded again by the payload fetcher; these threads also wait
//! for downloads another open started.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;
use std::time::Duration;

/// At most this many threads: more than the downloads allowed at once,
/// so opens waiting for another's download do not hold up new downloads.
pub(crate) const THREADS: usize = 16;

/// How long an idle thread waits for work before it ends.
const IDLE: Duration = Duration::from_secs(30);

type Job = Box<dyn FnOnce() + Send>;

/// Up to `max` threads running jobs, made at the first job.
pub(crate) struct FetchPool {
    /// `None` if it could not be made: jobs then run where they are given.
    runtime: OnceLock<Option<tokio::runtime::Runtime>>,
    max: usize,
}

impl FetchPool {
    /// A pool of at most `max` threads; none runs yet.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            runtime: OnceLock::new(),
            max: max.max(1),
        }
    }

    fn handle(&self) -> Option<&tokio::runtime::Handle> {
        let runtime = self.runtime.get_or_init(|| {
            // Only its blocking pool is used: no scheduler thread, no I/O.
            let built = tokio::runtime::Builder::new_current_thread()
                .max_blocking_threads(self.max)
                .thread_keep_alive(IDLE)
                .thread_name("spfs-fetch")
                .build();
            built
                .inspect_err(|e| tracing::error!(error = %e, "cannot start the payload fetch pool"))
                .ok()
        });
        runtime.as_ref().map(|rt| rt.handle())
    }

    /// Runs `job` on a pool thread; if the pool cannot be made, here.
    pub(crate) fn submit(&self, job: Job) {
        let Some(handle) = self.handle() else {
            return job();
        };
        // tokio panics if no thread at all can be started: then the job
        // is dropped, and its reply with it (the kernel is answered EIO).
        let spawned = catch_unwind(AssertUnwindSafe(|| drop(handle.spawn_blocking(job))));
        if spawned.is_err() {
            tracing::error!("cannot start a payload fetch thread; the open is answered EIO");
        }
    }
}

impl Drop for FetchPool {
    fn drop(&mut self) {
        // A download that stalls must not hold up the unmount.
        if let Some(Some(rt)) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    #[test]
    fn jobs_run_at_once_on_at_most_max_threads() {
        let pool = FetchPool::new(3);
        assert!(
            pool.runtime.get().is_none(),
            "no thread before the first job"
        );
        // Three run at once: all three reach the barrier.
        let barrier = Arc::new(Barrier::new(4));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        for i in 0..9 {
            let (barrier, running, most, done) =
                (barrier.clone(), running.clone(), most.clone(), done.clone());
            pool.submit(Box::new(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                if i < 3 {
                    barrier.wait();
                }
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
                done.fetch_add(1, Ordering::SeqCst);
            }));
        }
        barrier.wait();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while done.load(Ordering::SeqCst) < 9 {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(most.load(Ordering::SeqCst), 3, "never more than three");
    }
}
