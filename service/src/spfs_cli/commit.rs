//! `commit`: a directory (`--path`), a platform of existing items
//! (`--ref`), or the active runtime's edits (`layer`, `platform`), with
//! upstream's flags and log lines.
//!
//! Differs from upstream on purpose: a committed runtime stays editable
//! (its edits moved into the layer, the scratch empty) where upstream
//! turns edit mode off; `spfs edit --off` is how that will be asked for.

use std::path::PathBuf;

use spfs_shared::protocol::{CommitKind, CommitRequest, ErrorCode, Request, Response};

use super::{CmdError, CmdResult, Repositories};
use crate::repo::tags::{TagAuthor, TagSpec};
use crate::repo::{commit, Config, Digest};

#[derive(Debug, clap::Args)]
pub(crate) struct CommitArgs {
    #[command(flatten)]
    repos: Repositories,
    /// A human-readable tag for the generated object.
    ///
    /// Can be provided more than once.
    #[arg(short, long = "tag", value_name = "TAGS")]
    tags: Vec<String>,
    /// Commit this directory instead of the current spfs changes.
    #[arg(long)]
    path: Option<PathBuf>,
    /// Combine existing items into a platform, use a '+' to join multiple.
    #[arg(long = "ref", value_name = "REFERENCE")]
    reference: Option<String>,
    /// Hash the files while committing, rather than before.
    ///
    /// Always so here: each file is read once, hashed as it is written to
    /// the repository, and dropped if its payload was there already.
    #[arg(long)]
    hash_while_committing: bool,
    /// Deprecated, has no effect.
    #[arg(long, hide = true)]
    hash_first: bool,
    /// The total number of blobs that can be committed concurrently.
    #[arg(
        long,
        env = "SPFS_COMMIT_MAX_CONCURRENT_BLOBS",
        value_name = "MAX_CONCURRENT_BLOBS",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    max_concurrent_blobs: Option<u32>,
    /// The total number of branches that can be processed concurrently at
    /// each level of the rendered file tree.
    ///
    /// Accepted for upstream's scripts: the tree is walked once, on one
    /// thread, before its files are stored `--max-concurrent-blobs` at a
    /// time.
    #[arg(
        long,
        env = "SPFS_COMMIT_MAX_CONCURRENT_BRANCHES",
        value_name = "MAX_CONCURRENT_BRANCHES"
    )]
    max_concurrent_branches: Option<usize>,
    /// The desired object type to create, skip this when giving --path or
    /// --ref.
    #[arg(
        value_parser = ["layer", "platform"],
        conflicts_with_all = ["path", "remote", "reference"],
        required_unless_present_any = ["path", "reference"]
    )]
    kind: Option<String>,
}

pub(crate) fn commit(args: CommitArgs) -> CmdResult {
    let repo = args.repos.open()?;
    let config = Config::load()?;
    let author = TagAuthor(format!("{}@{}", config.user.name, config.user.domain));
    let digest = if let Some(dir) = &args.path {
        let empty = std::fs::read_dir(dir)
            .map_err(|e| CmdError {
                diagnostic: None,
                message: format!("Invalid path {}", dir.display()),
                causes: vec![e.to_string()],
                logged: false,
                status: 1,
            })?
            .next()
            .is_none();
        if empty {
            return Err("Nothing to commit, resulting filesystem would be empty".into());
        }
        let blobs = args
            .max_concurrent_blobs
            .map_or_else(commit::default_concurrency, |n| n as usize);
        commit::commit_dir_with(&repo, dir, blobs)?.layer
    } else if let Some(reference) = &args.reference {
        let mut layers = Vec::new();
        for item in reference.split('+').filter(|i| !i.trim().is_empty()) {
            // A stack holds each item once: pushed again, it moves up.
            let digest = super::objects::read_ref(&repo, item.trim())?.0;
            layers.retain(|d| *d != digest);
            layers.push(digest);
        }
        commit::commit_platform(&repo, layers)?
    } else {
        runtime_commit(
            args.kind.as_deref() == Some("platform"),
            &author,
            args.max_concurrent_blobs,
        )?
    };
    super::log_info_field("created", "digest", &digest.to_string());
    for tag in &args.tags {
        match TagSpec::parse_to_write(tag) {
            Ok(spec) => {
                repo.push_tag(&spec, digest, &author)?;
                super::log_info_field("created", "tag", &format!("{tag:?}"));
            }
            Err(e) => super::log_warn(&format!("cannot set invalid tag '{tag}': {e}")),
        }
    }
    Ok(())
}

/// Commits the active runtime's edits through the service (tags are
/// pushed by the caller, as upstream pushes them after the commit).
fn runtime_commit(
    platform: bool,
    author: &TagAuthor,
    max_concurrent_blobs: Option<u32>,
) -> Result<Digest, CmdError> {
    let name = super::runtimes::active_name()?;
    let endpoint = crate::cli::Endpoint::from_environment();
    let request = Request::Commit(CommitRequest {
        name: name.clone(),
        kind: if platform {
            CommitKind::Platform
        } else {
            CommitKind::Layer
        },
        tags: Vec::new(),
        author: Some(author.0.clone()),
        max_concurrent_blobs,
    });
    match endpoint.connect().and_then(|mut c| c.call(request)) {
        Ok(Response::Committed { digest, .. }) => Ok(Digest::parse(&digest)?),
        Ok(other) => Err(format!("unexpected reply from the service: {other:?}").into()),
        Err(e) if e.is(ErrorCode::ReadOnly) => {
            Err("Active runtime is not editable, nothing to commit".into())
        }
        Err(e) => Err(e.to_string().into()),
    }
}
