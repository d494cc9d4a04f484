#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

//! Reading and writing the repositories of the upstream `spfs` tool.
//!
//! - [`digest`]: digests and partial digests
//! - [`object`]: graph objects, their encodings and digest strategies
//! - [`storage`]: one fs repository on disk (objects, payloads)
//! - [`tags`]: tag streams and tag specs
//! - [`config`]: which repositories to use, as upstream decides
//! - [`repos`]: the primary plus secondaries; env spec → layer stack
//! - [`env_spec`]: what users type to name an environment
//! - [`view`]: the merged view of a stack, for the FUSE inode table
//! - [`commit`]: a directory into a layer
//! - [`whiteout`]: how deletions are written in an upper directory
//!
//! The crate knows nothing of FUSE or of the service: the fuzz targets and
//! the benchmarks use it alone. `unsafe` lives only in `sys`.

pub mod clean;
pub mod commit;
pub mod config;
pub mod digest;
pub mod env_spec;
pub mod error;
pub mod listing;
pub mod object;
pub mod prune;
pub mod repos;
pub mod runtime_records;
pub mod storage;
pub mod tags;
pub mod verify;
pub mod view;
pub mod whiteout;

mod sys;

pub use config::Config;
pub use digest::{Digest, PartialDigest};
pub use env_spec::{EnvSpec, EnvSpecItem};
pub use error::{Error, Result};
pub use object::{DigestStrategy, EncodingFormat, Object};
pub use repos::{FetchProgress, PayloadSource, RepositorySet, StackItem};
pub use storage::FsRepository;
pub use tags::TagSpec;
pub use verify::{PayloadCheck, PayloadVerifier};
pub use view::{NodeId, NodeKind, View};

/// Decodes arbitrary bytes as an object file; the fuzz target's entry point.
pub fn fuzz_object(bytes: &[u8]) {
    if let Ok((header, obj)) = Object::decode(bytes) {
        let _ = obj.digest(header.strategy);
        if let Object::Manifest(m) = &obj {
            let _ = View::build_limited(std::slice::from_ref(m), 100_000);
        }
    }
}

/// Parses arbitrary text as an env spec; the fuzz target's entry point.
pub fn fuzz_env_spec(text: &str) {
    if let Ok(spec) = EnvSpec::parse(text) {
        let _ = spec.to_string();
    }
}
