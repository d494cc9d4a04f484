//! Payloads fetched the first time a runtime opens them.
//!
//! A runtime whose stack came from a remote starts once its objects are
//! local; the payload of a file is fetched when the file is first opened:
//! from the first remote that has it, verified, stored atomically in the
//! local repository, then served. Concurrent first opens of one payload
//! fetch it once; downloads across all runtimes are bounded.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use spfs_repo::{Digest, FsRepository, PayloadSource};
use tokio::sync::{watch, Semaphore};

use crate::io::Io;
use crate::progress::{Counting, Progress};
use crate::store::Store;
use crate::Error;

/// Shared by every runtime of the service: in-flight downloads and the
/// bound on how many run at once.
#[derive(Debug, Clone)]
pub struct PayloadFetcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The downloads running, by store and payload: others who want the
    /// same payload wait for its result instead of downloading it again.
    flights: Mutex<HashMap<Key, Flight>>,
    /// One permit per download allowed at once.
    slots: Semaphore,
    /// Where fetching threads wait for a permit or another's result.
    waiting: Io,
}

type Key = (PathBuf, Digest);

/// A download's result, once it is known (`None` before).
type Flight = watch::Receiver<Option<Result<(), String>>>;

/// What one runtime's payload fetches have done.
#[derive(Debug, Default)]
pub struct FetchStats {
    /// Payloads fetched and stored.
    pub fetched: AtomicU64,
    /// Fetches that failed.
    pub failed: AtomicU64,
    /// Fetches running or waiting for a download slot now.
    pub in_flight: AtomicU64,
    /// Bytes received.
    pub progress: Progress,
}

impl PayloadFetcher {
    /// At most `max_downloads` downloads at once (at least one).
    pub fn new(max_downloads: usize) -> std::io::Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                flights: Mutex::new(HashMap::new()),
                slots: Semaphore::new(max_downloads.max(1)),
                waiting: Io::for_waiting()?,
            }),
        })
    }

    /// The payload source of a runtime reading from `remotes`, in order.
    pub fn source(&self, remotes: Vec<Arc<dyn Store>>) -> Arc<RemotePayloads> {
        Arc::new(RemotePayloads {
            inner: self.inner.clone(),
            remotes,
            stats: Arc::new(FetchStats::default()),
        })
    }
}

/// Fetches the payloads of one runtime from its remotes.
#[derive(Debug)]
pub struct RemotePayloads {
    inner: Arc<Inner>,
    remotes: Vec<Arc<dyn Store>>,
    stats: Arc<FetchStats>,
}

impl RemotePayloads {
    /// This runtime's fetches so far.
    pub fn stats(&self) -> Arc<FetchStats> {
        self.stats.clone()
    }

    fn download(&self, d: &Digest, size: Option<u64>, into: &FsRepository) -> Result<u64, String> {
        let inner = &self.inner;
        let _slot = inner
            .waiting
            .block_on(inner.slots.acquire())
            .map_err(|e| e.to_string())?;
        let mut reasons = Vec::new();
        for remote in &self.remotes {
            let started = Instant::now();
            let data = match remote.open_payload(d) {
                Ok(data) => data,
                Err(Error::UnknownPayload { .. }) => {
                    reasons.push(format!("not in {}", remote.describe()));
                    continue;
                }
                Err(e) => {
                    reasons.push(e.to_string());
                    continue;
                }
            };
            let counted = Counting {
                inner: data,
                progress: &self.stats.progress,
            };
            let counted: Box<dyn std::io::Read + '_> = match size {
                Some(size) => Box::new(crate::expected::Expected::new(
                    counted,
                    size,
                    crate::timeout(),
                    remote.describe(),
                )),
                None => Box::new(counted),
            };
            let stored = into
                .import_payload(d, counted, remote.describe())
                .and_then(|size| {
                    // The blob object upstream keeps beside a payload.
                    into.write_object(&spfs_repo::Object::Blob(spfs_repo::object::Blob {
                        payload: *d,
                        size,
                    }))?;
                    Ok(size)
                });
            match stored {
                Ok(size) => {
                    tracing::info!(payload = %d, remote = remote.describe(), bytes = size,
                        secs = started.elapsed().as_secs_f64(), "fetched a payload");
                    return Ok(size);
                }
                Err(e) => reasons.push(e.to_string()),
            }
        }
        if reasons.is_empty() {
            reasons.push("no remote is configured".into());
        }
        Err(reasons.join("; "))
    }
}

impl PayloadSource for RemotePayloads {
    fn progress(&self) -> spfs_repo::FetchProgress {
        spfs_repo::FetchProgress {
            in_flight: self.stats.in_flight.load(Ordering::Relaxed),
            fetched: self.stats.fetched.load(Ordering::Relaxed),
            failed: self.stats.failed.load(Ordering::Relaxed),
            bytes: self.stats.progress.snapshot().bytes_done,
        }
    }

    fn fetch(&self, d: &Digest, size: Option<u64>, into: &FsRepository) -> spfs_repo::Result<()> {
        let key = (into.root().to_owned(), *d);
        let joined = {
            let mut flights = self.inner.flights.lock();
            if into.has_payload(d) {
                return Ok(());
            }
            match flights.get(&key) {
                Some(f) => Ok(f.clone()),
                None => {
                    let (tx, rx) = watch::channel(None);
                    flights.insert(key.clone(), rx);
                    Err(tx)
                }
            }
        };
        let result = match joined {
            // Another open of the same payload is downloading it.
            Ok(mut flight) => match self
                .inner
                .waiting
                .block_on(flight.wait_for(Option::is_some))
            {
                Ok(r) => r.clone().unwrap_or(Ok(())),
                Err(_) => Err("the download it waited for ended without a result".to_owned()),
            },
            Err(tx) => {
                // Taken out however the download ends (a panic too), so a
                // later open tries again.
                let _flight = Leaving(&self.inner, key);
                self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
                let result = self.download(d, size, into).map(|_| ());
                self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
                match &result {
                    Ok(()) => {
                        self.stats.fetched.fetch_add(1, Ordering::Relaxed);
                        self.stats.progress.payload_done();
                    }
                    Err(reason) => {
                        self.stats.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(payload = %d, %reason, "cannot fetch a payload; its readers get EIO");
                    }
                }
                tx.send_replace(Some(result.clone()));
                result
            }
        };
        result.map_err(|reason| spfs_repo::Error::PayloadFetch { digest: *d, reason })
    }
}

/// A download in flight, taken out of the list when it ends.
struct Leaving<'a>(&'a Inner, Key);

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        self.0.flights.lock().remove(&self.1);
    }
}
