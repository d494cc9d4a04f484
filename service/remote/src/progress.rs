//! Counters of a sync in progress, shared with whoever shows them (a
//! progress bar, plain lines, the service's runtime list).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// What a sync has done so far and what it knows it has to do.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    objects: AtomicU64,
    payloads_done: AtomicU64,
    payloads_total: AtomicU64,
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
}

/// One reading of a [`Progress`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Objects (platforms, layers, manifests) copied.
    pub objects: u64,
    /// Payloads copied.
    pub payloads_done: u64,
    /// Payloads to copy (known once the objects are read).
    pub payloads_total: u64,
    /// Payload bytes copied.
    pub bytes_done: u64,
    /// Payload bytes to copy.
    pub bytes_total: u64,
    /// Seconds since the sync started.
    pub elapsed: f64,
}

impl Snapshot {
    /// Bytes per second so far.
    pub fn rate(&self) -> f64 {
        if self.elapsed > 0.0 {
            self.bytes_done as f64 / self.elapsed
        } else {
            0.0
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    /// Counters at zero, the clock started now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            objects: AtomicU64::new(0),
            payloads_done: AtomicU64::new(0),
            payloads_total: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
        }
    }

    pub(crate) fn object_done(&self) {
        self.objects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn payloads_planned(&self, count: u64, bytes: u64) {
        self.payloads_total.fetch_add(count, Ordering::Relaxed);
        self.bytes_total.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn payload_done(&self) {
        self.payloads_done.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn bytes(&self, n: u64) {
        self.bytes_done.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            objects: self.objects.load(Ordering::Relaxed),
            payloads_done: self.payloads_done.load(Ordering::Relaxed),
            payloads_total: self.payloads_total.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            elapsed: self.started.elapsed().as_secs_f64(),
        }
    }
}

/// Counts bytes read through it into a [`Progress`].
pub(crate) struct Counting<'a, R> {
    pub(crate) inner: R,
    pub(crate) progress: &'a Progress,
}

impl<R: std::io::Read> std::io::Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.bytes(n as u64);
        Ok(n)
    }
}
