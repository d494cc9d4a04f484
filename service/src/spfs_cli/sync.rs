//! `pull` and `push`: objects and payloads between the local repository
//! and a remote (`grpc://` or `file://`), on this project's transfer code
//! (`spfs-fuse-macos pull`/`push`): the same data moves as with upstream,
//! and what is printed is that code's progress and summary, not
//! upstream's.

use super::{CmdError, CmdResult};

#[derive(Debug, clap::Args)]
pub(crate) struct PullArgs {
    /// The remote to pull from [default: the first configured remote that
    /// has each reference].
    #[arg(short, long, value_name = "REMOTE")]
    remote: Option<String>,
    /// The reference(s) to pull/localize: tags or digests, or several
    /// joined by a '+'.
    #[arg(required = true, value_name = "REF")]
    refs: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PushArgs {
    /// The name of the remote to push to.
    #[arg(short, long, value_name = "REMOTE", default_value = "origin")]
    remote: String,
    /// The reference(s) to push: tags or digests, or several joined by a
    /// '+'.
    #[arg(required = true, value_name = "REF")]
    refs: Vec<String>,
}

fn status_of(e: Box<dyn std::error::Error>) -> CmdError {
    CmdError::from(e.to_string())
}

pub(crate) fn pull(args: PullArgs) -> CmdResult {
    crate::cli::remote::pull(crate::cli::remote::PullArgs::of(args.refs, args.remote))
        .map_err(status_of)
}

pub(crate) fn push(args: PushArgs) -> CmdResult {
    crate::cli::remote::push(crate::cli::remote::PushArgs::of(args.refs, args.remote))
        .map_err(status_of)
}
