//! The one error type of the repository library.
//!
//! Every variant renders as a single line that names what failed (a path, a
//! ref, a digest) and, where the user can act, what to do about it.

use std::io;
use std::path::{Path, PathBuf};

use spfs_shared::display::quoted;

use super::digest::Digest;

/// Data that hashes to another digest than the one it was asked for.
#[derive(Debug)]
pub struct Mismatch {
    /// `object` or `payload`.
    pub what: &'static str,
    /// The digest asked for.
    pub expected: Digest,
    /// The digest of what arrived.
    pub actual: Digest,
    /// Where it came from (`remote 'origin' (grpc://host:7737)`).
    pub source_name: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} from {} has digest {}: refused, nothing stored; the remote's repository may be damaged (run 'spfs check' there)",
            self.what, self.expected, self.source_name, self.actual
        )
    }
}

impl Error {
    /// What arrived from `source_name` as `expected` hashes to `actual`.
    pub fn mismatch(
        what: &'static str,
        expected: Digest,
        actual: Digest,
        source_name: impl Into<String>,
    ) -> Self {
        Error::DigestMismatch(Box::new(Mismatch {
            what,
            expected,
            actual,
            source_name: source_name.into(),
        }))
    }
}

/// Result alias for repository operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong reading or writing an spfs repository.
#[derive(Debug, thiserror::Error)]
// Each variant's fields are named in its message.
#[allow(missing_docs)]
pub enum Error {
    /// Digest text that is not 56 characters of base32.
    #[error("invalid digest '{}': {reason}", quoted(text))]
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

    /// A payload file whose size is not the one its manifest records.
    #[error("payload {digest} at {path} is {found} bytes but its manifest says {expected}: the repository is damaged; run 'spfs check --repair' (or pull the layer again)")]
    DamagedPayload {
        digest: Digest,
        path: PathBuf,
        expected: u64,
        found: u64,
    },

    /// A payload file whose content does not hash to its digest (replaced
    /// by another file of the same size, or damaged): never served.
    #[error("payload {digest} at {path} does not hash to its digest: the file was replaced or damaged; run 'spfs check --repair' (or pull the layer again)")]
    PayloadMismatch { digest: Digest, path: PathBuf },

    /// A payload path that holds something other than a regular file (a
    /// FIFO, a device, a directory): never opened for reading.
    #[error("payload {digest} at {path} is not a regular file: the repository is damaged; run 'spfs check --repair' (or pull the layer again)")]
    NotAPayloadFile { digest: Digest, path: PathBuf },

    /// Data received from elsewhere (a remote) that does not hash to the
    /// digest it was asked for: never stored.
    #[error("{0}")]
    DigestMismatch(Box<Mismatch>),

    /// A payload no repository holds that could not be fetched from the
    /// remotes either.
    #[error("payload {digest} could not be fetched: {reason}")]
    PayloadFetch { digest: Digest, reason: String },

    /// A ref that is neither a digest, a spec file, nor a tag.
    #[error(
        "unknown reference '{}': no tag, digest or spec file by that name in {searched}",
        quoted(reference)
    )]
    UnknownReference { reference: String, searched: String },

    /// A path that is not in an environment's merged view.
    #[error("{} does not exist in {}", quoted(path), quoted(env))]
    NoSuchPath { path: String, env: String },

    /// Something shaped like a digest that is not a valid one.
    #[error("'{}' looks like a digest but is not one: a digest is 52 base32 characters (A-Z, 2-7) and '====', a partial digest is a shorter prefix without '='", quoted(.0))]
    MalformedDigest(String),

    /// A partial digest (or a full one) that no repository holds.
    #[error(
        "'{}' looks like a digest, and no object in {searched} has it{tag}",
        quoted(reference)
    )]
    DigestNotFound {
        reference: String,
        searched: String,
        /// Also said when it could have been a tag name.
        tag: &'static str,
    },

    /// A partial digest that matches more than one object.
    #[error(
        "ambiguous reference '{}': it matches {count} objects: {examples}; type more characters",
        quoted(prefix)
    )]
    AmbiguousReference {
        prefix: String,
        count: usize,
        examples: String,
    },

    /// A ref resolved, but to the wrong kind of object for the operation.
    #[error("'{}' is a {found}, expected {expected}", quoted(reference))]
    WrongKind {
        reference: String,
        found: &'static str,
        expected: &'static str,
    },

    /// A tag spec that is not `[org/]name[~N]`.
    #[error("invalid tag '{}': {reason}", quoted(spec))]
    InvalidTag { spec: String, reason: String },

    /// A tag version further back than the stream's history.
    #[error(
        "tag '{}' has only {available} version(s); ~{requested} does not exist",
        quoted(spec)
    )]
    TagVersionOutOfRange {
        spec: String,
        available: usize,
        requested: u64,
    },

    /// A tag file whose records cannot be decoded.
    #[error("corrupt tag file {path}: {reason}")]
    CorruptTag { path: PathBuf, reason: String },

    /// An env spec (or one of its items) that cannot be understood.
    #[error("invalid environment spec '{}': {}", quoted(spec), quoted(reason))]
    InvalidEnvSpec { spec: String, reason: String },

    /// A `.spfs.yaml` spec file that cannot be used.
    #[error("spec file {path}: {}", quoted(reason))]
    SpecFile { path: PathBuf, reason: String },

    /// A repository written by an incompatible major version of spfs.
    #[error("repository {root} has version {found}, but this tool reads version {supported}.x repositories; use a matching spfs release")]
    IncompatibleVersion {
        root: PathBuf,
        found: String,
        supported: u64,
    },

    /// A `VERSION` file that holds no version.
    #[error("the repository at {root} has a VERSION file holding '{text}', not a version (spfs writes one like '0.44.0'): restore it, or check that {root} is an spfs repository")]
    BadVersionFile { root: PathBuf, text: String },

    /// A directory that exists but holds no repository.
    #[error("{0} is not an spfs repository (it has no VERSION file and no objects/): point SPFS_STORAGE_ROOT or [storage] root at a repository, or create one there with 'spfs init repo'")]
    NotARepository(PathBuf),

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

    /// Entries that cannot be committed, found before anything was
    /// written: each path (relative to the directory committed) and why.
    #[error("{}", uncommittable_message(.0))]
    UncommittableEntries(Vec<(PathBuf, &'static str)>),

    /// A runtime's record in a repository that cannot be read.
    #[error("the record of runtime '{name}' in {root} cannot be read ({reason}); remove it with 'spfs-fuse-macos runtime rm {name}'")]
    CorruptRuntimeRecord {
        name: String,
        root: PathBuf,
        reason: String,
    },

    /// A runtime commit with no edits.
    #[error("nothing to commit: the runtime has no edits")]
    NothingToCommit,
}

/// At most this many entries are named in one message.
const NAMED: usize = 10;

fn uncommittable_message(entries: &[(PathBuf, &'static str)]) -> String {
    let mut named: Vec<String> = entries
        .iter()
        .take(NAMED)
        .map(|(p, why)| format!("{} ({why})", p.display()))
        .collect();
    if entries.len() > NAMED {
        named.push(format!("and {} more", entries.len() - NAMED));
    }
    format!(
        "nothing was committed: {} {} cannot be committed (only files, directories and symlinks can): {}; reset or delete {}, then commit again",
        entries.len(),
        if entries.len() == 1 { "entry" } else { "entries" },
        named.join(", "),
        if entries.len() == 1 { "it" } else { "them" },
    )
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
            | Error::UnknownReference { .. }
            | Error::DigestNotFound { .. }
            | Error::NoRepository(_)
            | Error::NotARepository(_)
            | Error::NoSuchPath { .. } => libc::ENOENT,
            // A file that is there but whose data cannot be read.
            Error::MissingPayload { .. }
            | Error::DamagedPayload { .. }
            | Error::NotAPayloadFile { .. }
            | Error::PayloadMismatch { .. } => libc::EIO,
            Error::InvalidDigest { .. }
            | Error::InvalidTag { .. }
            | Error::InvalidEnvSpec { .. } => libc::EINVAL,
            _ => libc::EIO,
        }
    }
}
