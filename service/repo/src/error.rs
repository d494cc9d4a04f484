//! The one error type of the repository library.
//!
//! Every variant renders as a single line that names what failed (a path, a
//! ref, a digest) and, where the user can act, what to do about it.

use std::io;
use std::path::{Path, PathBuf};

use super::digest::Digest;

/// Result alias for repository operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong reading or writing an spfs repository.
#[derive(Debug, thiserror::Error)]
// Each variant's fields are named in its message.
#[allow(missing_docs)]
pub enum Error {
    /// Digest text that is not 56 characters of base32.
    #[error("invalid digest '{text}': {reason}")]
    InvalidDigest { text: String, reason: String },

    /// An object file that cannot be decoded.
    #[error("corrupt object {path}: {reason}; the repository may need 'spfs check --repair'")]
    CorruptObject { path: PathBuf, reason: String },

    /// Decoding failed on bytes that did not come from a file.
    #[error("corrupt object data: {0}")]
    Decode(String),

    /// An object that is in none of the searched repositories.
    #[error("object {digest} was not found in {searched}")]
    UnknownObject { digest: Digest, searched: String },

    /// A payload (file contents) missing for a blob.
    #[error(
        "payload {digest} is missing from {searched}; pull or re-commit the layer that holds it"
    )]
    MissingPayload { digest: Digest, searched: String },

    /// A ref that is neither a digest, a spec file, nor a tag.
    #[error("unknown reference '{0}': no tag, digest or spec file by that name")]
    UnknownReference(String),

    /// A path that is not in an environment's merged view.
    #[error("{path} does not exist in {env}")]
    NoSuchPath { path: String, env: String },

    /// A partial digest that matches more than one object.
    #[error("ambiguous reference '{prefix}': it matches {count} objects ({examples}); type more characters")]
    AmbiguousReference {
        prefix: String,
        count: usize,
        examples: String,
    },

    /// A ref resolved, but to the wrong kind of object for the operation.
    #[error("'{reference}' is a {found}, expected {expected}")]
    WrongKind {
        reference: String,
        found: &'static str,
        expected: &'static str,
    },

    /// A tag spec that is not `[org/]name[~N]`.
    #[error("invalid tag '{spec}': {reason}")]
    InvalidTag { spec: String, reason: String },

    /// A tag version further back than the stream's history.
    #[error("tag '{spec}' has only {available} version(s); ~{requested} does not exist")]
    TagVersionOutOfRange {
        spec: String,
        available: usize,
        requested: u64,
    },

    /// A tag file whose records cannot be decoded.
    #[error("corrupt tag file {path}: {reason}")]
    CorruptTag { path: PathBuf, reason: String },

    /// An env spec (or one of its items) that cannot be understood.
    #[error("invalid environment spec '{spec}': {reason}")]
    InvalidEnvSpec { spec: String, reason: String },

    /// A `.spfs.yaml` spec file that cannot be used.
    #[error("spec file {path}: {reason}")]
    SpecFile { path: PathBuf, reason: String },

    /// A repository written by an incompatible major version of spfs.
    #[error("repository {root} has version {found}, but this tool reads version {supported}.x repositories; use a matching spfs release")]
    IncompatibleVersion {
        root: PathBuf,
        found: String,
        supported: u64,
    },

    /// A directory that is not an spfs repository.
    #[error("no spfs repository at {0}: the directory does not exist (create it with 'spfs init repo', or check [storage] root in the spfs config)")]
    NoRepository(PathBuf),

    /// A configuration file or variable that cannot be used.
    #[error("spfs config {source_name}: {reason}")]
    Config { source_name: String, reason: String },

    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A tag stayed locked by another writer for too long.
    #[error(
        "tag {path} is locked by another writer (remove {path}.lock if no spfs process is running)"
    )]
    TagLocked { path: PathBuf },

    /// A directory entry that cannot be committed.
    #[error("cannot commit {path}: {reason}")]
    Uncommittable { path: PathBuf, reason: String },
}

impl Error {
    /// Wraps an io error with what was being done and to which path.
    pub fn io(action: &'static str, path: impl AsRef<Path>) -> impl FnOnce(io::Error) -> Error {
        let path = path.as_ref().to_owned();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    /// The errno that best describes this error, for FUSE replies.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            Error::UnknownObject { .. }
            | Error::UnknownReference(_)
            | Error::NoRepository(_)
            | Error::NoSuchPath { .. }
            | Error::MissingPayload { .. } => libc::ENOENT,
            Error::InvalidDigest { .. }
            | Error::InvalidTag { .. }
            | Error::InvalidEnvSpec { .. } => libc::EINVAL,
            _ => libc::EIO,
        }
    }
}
