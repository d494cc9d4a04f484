//! Threads that finish opens waiting for a payload from a remote, so that
//! a download never occupies a FUSE request thread (on macOS the session
//! has only one). The number of downloads running at once is bounded
//! again by the payload fetcher; these threads also wait for downloads
//! another open started. Threads start when there is work and none is
//! idle, and end after a while without work: a service whose runtimes
//! read only local payloads has none.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// At most this many threads: more than the downloads allowed at once,
/// so opens waiting for another's download do not hold up new downloads.
pub(crate) const THREADS: usize = 16;

/// How long an idle thread waits for work before it ends.
const IDLE: Duration = Duration::from_secs(30);

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

/// A pool of up to `max` threads running queued jobs in order.
pub(crate) struct FetchPool {
    shared: Arc<(Mutex<Queue>, Condvar)>,
    max: usize,
}

impl FetchPool {
    /// A pool of at most `max` threads; none runs yet.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            shared: Arc::new((Mutex::new(Queue::default()), Condvar::new())),
            max: max.max(1),
        }
    }

    /// Runs `job` on a pool thread (a new one if none is idle and there
    /// is room); if no thread can be started at all, here.
    pub(crate) fn submit(&self, job: Job) {
        let (queue, wake) = &*self.shared;
        let mut q = queue.lock();
        q.jobs.push_back(job);
        if q.idle > 0 {
            wake.notify_one();
            return;
        }
        if q.threads >= self.max {
            return;
        }
        q.threads += 1;
        let n = q.threads;
        drop(q);
        let shared = self.shared.clone();
        let started = std::thread::Builder::new()
            .name(format!("spfs-fetch-{n}"))
            .spawn(move || work(&shared));
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start a payload fetch thread");
            let mut q = queue.lock();
            q.threads -= 1;
            if q.threads == 0 {
                // Nobody would ever take them.
                let jobs: Vec<Job> = q.jobs.drain(..).collect();
                drop(q);
                for job in jobs {
                    job();
                }
            }
        }
    }
}

fn work(shared: &(Mutex<Queue>, Condvar)) {
    let (queue, wake) = shared;
    loop {
        let mut q = queue.lock();
        while q.jobs.is_empty() {
            q.idle += 1;
            let timed_out = wake.wait_for(&mut q, IDLE).timed_out();
            q.idle -= 1;
            if timed_out && q.jobs.is_empty() {
                q.threads -= 1;
                return;
            }
        }
        let Some(job) = q.jobs.pop_front() else {
            continue;
        };
        drop(q);
        job();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Barrier;

    #[test]
    fn jobs_run_on_at_most_max_threads_started_on_demand() {
        let pool = FetchPool::new(3);
        assert_eq!(pool.shared.0.lock().threads, 0);
        let barrier = Arc::new(Barrier::new(4));
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let (barrier, done) = (barrier.clone(), done.clone());
            pool.submit(Box::new(move || {
                // All three run at once: three threads.
                barrier.wait();
                done.fetch_add(1, Ordering::SeqCst);
            }));
        }
        // A fourth waits for a free thread instead of starting one.
        let later = done.clone();
        pool.submit(Box::new(move || {
            later.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(pool.shared.0.lock().threads, 3);
        barrier.wait();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while done.load(Ordering::SeqCst) < 4 {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
