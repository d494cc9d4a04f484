//! SPFS for macOS: the service that mounts `/spfs` and routes every request
//! to the runtime of the calling process tree, its control socket, and the
//! command line. The repository library is the `spfs-repo` crate,
//! re-exported as [`repo`].
//!
//! No request may panic: `unwrap`/`expect` and indexing are refused
//! outside tests, and `unsafe` lives only in [`sys`].
#![deny(unsafe_code)]
#![warn(unreachable_pub)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub use spfs_repo as repo;

pub(crate) mod agent;
pub(crate) mod backend;
pub mod cli;
pub(crate) mod client;
pub(crate) mod control;
pub(crate) mod durable;
pub mod fs;
pub(crate) mod layers;
pub(crate) mod lifecycle;
pub mod manager;
pub mod mount;
pub(crate) mod overlay;
pub mod records;
pub mod recovery;
pub(crate) mod reporting;
pub mod router;
pub mod runtimes;
pub mod scratch;
pub(crate) mod service;
pub mod spfs_cli;
pub mod stack;
#[allow(unsafe_code)]
pub mod sys;
pub(crate) mod user_settings;
