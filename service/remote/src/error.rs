//! The one error type of remote operations. Each message names the remote
//! (its config name and address) and what to do.

use spfs_repo::Digest;

/// Result alias for remote operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong talking to a remote.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)]
pub enum Error {
    /// Nothing answers at the address.
    #[error("{remote} cannot be reached: {reason}; check that its spfs server runs and the address in your spfs config")]
    Unreachable { remote: String, reason: String },

    /// The remote stopped answering.
    #[error("{remote} did not answer within {secs} s ({what}); the server may be down or overloaded: try again, or raise SPFS_REMOTE_TIMEOUT")]
    Timeout {
        remote: String,
        what: String,
        secs: u64,
    },

    /// The remote answered with an error.
    #[error("{remote} failed to {what}: {message}")]
    Server {
        remote: String,
        what: String,
        message: String,
    },

    /// A ref the remote does not have.
    #[error("'{reference}' is not in {remote}")]
    UnknownReference { reference: String, remote: String },

    /// An object the remote does not have.
    #[error("object {digest} is not in {remote}; the ref that names it may have been pushed incompletely")]
    UnknownObject { digest: Digest, remote: String },

    /// A payload the remote does not have.
    #[error("payload {digest} is not in {remote}")]
    UnknownPayload { digest: Digest, remote: String },

    /// An address this tool cannot read.
    #[error("remote '{remote}' has address '{address}', which this tool cannot read: use grpc:// (upstream's spfs server) or file://")]
    Unsupported { remote: String, address: String },

    /// A remote name missing from the config.
    #[error("no remote named '{name}' in the spfs config (configured: {known}); add [remote.{name}] address = \"grpc://HOST:PORT\"")]
    NoSuchRemote { name: String, known: String },

    /// A ref that cannot be pulled or pushed.
    #[error("cannot sync '{reference}': {reason}")]
    BadReference { reference: String, reason: String },

    /// The local repository (or a digest check) failed.
    #[error(transparent)]
    Repo(#[from] spfs_repo::Error),
}
