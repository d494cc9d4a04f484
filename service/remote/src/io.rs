//! The tokio runtime a remote's calls run on, owned by the remote (no
//! process-wide state): callers are plain threads (the CLI, FUSE request
//! threads, the service's blocking pool), which wait for each call with
//! [`Io::block_on`] while the runtime's thread drives connections,
//! timers and downloads.

use std::future::Future;
use std::sync::Arc;

use crate::error::{Error, Result};

/// A runtime with one thread, shared by a remote and what it hands out
/// (downloads); it ends when the last of them is dropped.
#[derive(Clone, Debug)]
pub(crate) struct Io {
    handle: tokio::runtime::Handle,
    /// Keeps the runtime (and so `handle`) alive while any clone lives.
    _runtime: Arc<Owned>,
}

#[derive(Debug)]
struct Owned(Option<tokio::runtime::Runtime>);

impl Drop for Owned {
    fn drop(&mut self) {
        // Wherever the last user is dropped, even inside another runtime:
        // the threads are told to stop, not waited for.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Io {
    /// A runtime for the calls to `remote` (named in the error if its
    /// thread cannot start).
    pub(crate) fn new(remote: &str) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("spfs-remote")
            .enable_all()
            .build()
            .map_err(|e| Error::Unreachable {
                remote: remote.to_owned(),
                reason: format!("cannot start the thread that talks to it: {e}"),
            })?;
        Ok(Io {
            handle: rt.handle().clone(),
            _runtime: Arc::new(Owned(Some(rt))),
        })
    }

    /// A runtime only to wait on (tokio's semaphores and channels, from
    /// plain threads): no thread of its own, no I/O, no timers.
    pub(crate) fn for_waiting() -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread().build()?;
        Ok(Io {
            handle: rt.handle().clone(),
            _runtime: Arc::new(Owned(Some(rt))),
        })
    }

    /// The runtime's handle (to spawn on it, or to enter it).
    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Runs `future` to completion from a plain thread (not from inside
    /// an async task: the service calls remotes on its blocking pool).
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.handle().block_on(future)
    }
}
