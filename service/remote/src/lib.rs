#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

//! Remote spfs repositories, as upstream names them in its config:
//! upstream's `spfs server` (`grpc://`: gRPC for objects and tags, HTTP for
//! payloads) and fs repositories (`file://`).
//!
//! - [`store`]: what a sync reads and writes, for the local repository and
//!   every kind of remote
//! - [`grpc`]: the client of upstream's server, generated from its
//!   `.proto` files ([`proto`]); payloads over HTTP in [`http`]
//! - [`sync`]: pull and push of refs, verified, children before parents,
//!   payloads with bounded concurrency, with [`progress`]
//! - [`lazy`]: payloads fetched the first time a runtime opens them
//!
//! Everything received is checked against its digest before it is stored;
//! nothing is stored half-written (staged, then renamed).

pub mod error;
mod expected;
pub mod grpc;
pub mod http;
mod io;
pub mod lazy;
pub mod progress;
pub mod proto;
pub mod store;
pub mod sync;

use std::sync::Arc;
use std::time::Duration;

pub use error::{Error, Result};
pub use lazy::{FetchStats, PayloadFetcher};
pub use progress::Progress;
pub use store::{LocalStore, Store};
pub use sync::{pull_from_first, SyncOptions, SyncSummary, Synced, Syncer};

use spfs_repo::config::{Config, RemoteLocation};
use spfs_repo::FsRepository;

/// A remote as the user's config names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteAddress {
    /// `NAME` of `[remote.NAME]`.
    pub name: String,
    /// `grpc://host:port`, or `file:///path` for an fs repository.
    pub address: String,
}

/// How long a remote may stay silent: a connection, a request, or a pause
/// in a download (`SPFS_REMOTE_TIMEOUT`, seconds; 30 by default).
pub fn timeout() -> Duration {
    std::env::var("SPFS_REMOTE_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::from_secs(30), Duration::from_secs_f64)
}

/// The remotes `config` names that can be pulled from, in its order, as
/// addresses a client can send to the service.
pub fn configured(config: &Config) -> Vec<RemoteAddress> {
    config
        .remotes
        .iter()
        .filter_map(|r| {
            let address = match &r.location {
                RemoteLocation::Grpc { address } => address.clone(),
                RemoteLocation::Fs { path, .. } => format!("file://{}", path.display()),
                RemoteLocation::Unsupported(_) => return None,
            };
            Some(RemoteAddress {
                name: r.name.clone(),
                address,
            })
        })
        .collect()
}

/// Opens the remote at `address` (nothing is contacted until it is used).
pub fn open(remote: &RemoteAddress) -> Result<Arc<dyn Store>> {
    if let Some(path) = remote.address.strip_prefix("file://") {
        let repo = FsRepository::open(path)?;
        return Ok(Arc::new(LocalStore::named(
            repo,
            format!("remote '{}' ({})", remote.name, remote.address),
        )));
    }
    if remote.address.starts_with("grpc://") {
        return Ok(Arc::new(grpc::GrpcRemote::connect(
            &remote.name,
            &remote.address,
        )?));
    }
    Err(Error::Unsupported {
        remote: remote.name.clone(),
        address: remote.address.clone(),
    })
}

/// The remote named `name` among `config`'s.
pub fn open_named(config: &Config, name: &str) -> Result<Arc<dyn Store>> {
    let all = configured(config);
    match all.iter().find(|r| r.name == name) {
        Some(r) => open(r),
        None => Err(Error::NoSuchRemote {
            name: name.to_owned(),
            known: all
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}
