//! `pull` and `push`: objects and payloads between the local repository
//! and a remote (`grpc://` or `file://`), on this project's transfer code
//! (`spfs-fuse-macos pull`/`push`): the same data moves as with upstream,
//! and what is printed is that code's progress and summary, not
//! upstream's. Upstream's sync flags ([`SyncArgs`]) are `pull`'s, `run`'s
//! and `shell`'s.

use super::{CmdError, CmdResult};
use crate::cli::remote::Transfer;

/// How progress is shown (upstream's `--progress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ProgressKind {
    /// A bar on a terminal (lines in a log).
    Bars,
    /// Nothing.
    None,
}

/// Upstream's sync flags, shared by `pull`, `run` and `shell`.
#[derive(Debug, clap::Args)]
pub(crate) struct SyncArgs {
    /// Sync the latest information for each tag even if it already exists
    /// (`run`, `shell`: pull everything the runtime needs, payloads too,
    /// before it starts).
    #[arg(long, alias = "pull")]
    pub(crate) sync: bool,
    /// Traverse and check the entire graph, filling in any missing data.
    ///
    /// When a repository is in good health, this should not be necessary,
    /// but if some subset of the data has been deleted or lost, this
    /// option may help recover it.
    #[arg(long)]
    check: bool,
    /// Forcefully sync all associated graph data even if it already exists.
    ///
    /// When a repository is in good health, this should not be necessary,
    /// but if some subset of the data has been deleted, lost, or corrupted
    /// this option may help recover it.
    #[arg(long)]
    resync: bool,
    /// The total number of manifests that can be synced concurrently
    /// (accepted for upstream's scripts: objects are walked one at a time,
    /// and are small).
    #[arg(long, env = "SPFS_SYNC_MAX_CONCURRENT_MANIFESTS", value_name = "N")]
    max_concurrent_manifests: Option<usize>,
    /// The total number of file payloads that can be synced concurrently.
    #[arg(
        long,
        env = "SPFS_SYNC_MAX_CONCURRENT_PAYLOADS",
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=256)
    )]
    max_concurrent_payloads: Option<u32>,
    /// Options for showing progress.
    #[arg(long, value_enum)]
    progress: Option<ProgressKind>,
}

impl SyncArgs {
    /// What the transfer code takes from these flags.
    pub(crate) fn transfer(&self) -> Transfer {
        Transfer {
            remote: None,
            check: self.check,
            resync: self.resync,
            payloads_at_once: self.max_concurrent_payloads.map(|n| n as usize),
            progress: self.progress.map(|p| p == ProgressKind::Bars),
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct PullArgs {
    #[command(flatten)]
    sync: SyncArgs,
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
    crate::cli::remote::pull(crate::cli::remote::PullArgs::of(
        args.refs,
        args.remote,
        args.sync.transfer(),
    ))
    .map_err(status_of)
}

pub(crate) fn push(args: PushArgs) -> CmdResult {
    crate::cli::remote::push(crate::cli::remote::PushArgs::of(args.refs, args.remote))
        .map_err(status_of)
}
