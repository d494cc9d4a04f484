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

pub mod agent;
pub mod backend;
pub mod cli;
pub mod client;
pub mod control;
pub mod durable;
pub mod fs;
pub mod layers;
pub mod lifecycle;
pub mod manager;
pub mod mount;
pub mod overlay;
pub mod records;
pub mod recovery;
pub mod reporting;
pub mod router;
pub mod runtimes;
pub mod scratch;
pub mod service;
pub mod spfs_cli;
pub mod stack;
#[allow(unsafe_code)]
pub mod sys;
pub mod user_settings;
