//! SPFS for macOS: the service that mounts `/spfs` and routes every request
//! to the runtime of the calling process tree.
//!
//! Today the crate holds the repository library ([`repo`]) and the user
//! commands built on it ([`cli`]).

pub use spfs_repo as repo;

pub mod cli;
pub mod client;
pub mod control;
pub mod fs;
pub mod mount;
pub mod overlay;
pub mod records;
pub mod recovery;
pub mod router;
pub mod runtimes;
pub mod scratch;
pub mod service;
pub mod sys;
