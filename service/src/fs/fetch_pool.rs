//! Threads that finish opens waiting for a payload from a remote, so that
//! a download never occupies a FUSE request thread (on macOS the session
//! has only one). The number of downloads running at once is bounded
//! again by the payload fetcher; these threads also wait for downloads
//! another open started.

use std::sync::mpsc;
use std::sync::Arc;

use parking_lot::Mutex;

/// Threads of the pool: more than the downloads allowed at once, so opens
/// waiting for another's download do not hold up new downloads.
pub(crate) const THREADS: usize = 16;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed pool of threads running queued jobs in order.
pub(crate) struct FetchPool {
    queue: mpsc::Sender<Job>,
}

impl FetchPool {
    /// `threads` threads, started now.
    pub(crate) fn new(threads: usize) -> Self {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads.max(1) {
            let jobs = jobs.clone();
            let started = std::thread::Builder::new()
                .name(format!("spfs-fetch-{i}"))
                .spawn(move || loop {
                    let job = jobs.lock().recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = started {
                tracing::error!(error = %e, "cannot start a payload fetch thread");
            }
        }
        Self { queue }
    }

    /// Runs `job` on a pool thread; if no thread can take it, here.
    pub(crate) fn submit(&self, job: Job) {
        if let Err(mpsc::SendError(job)) = self.queue.send(job) {
            job();
        }
    }
}
