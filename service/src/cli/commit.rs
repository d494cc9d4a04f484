//! `commit` and `reset`: an editable runtime's edits into a layer, or away.

use std::path::PathBuf;

use spfs_shared::protocol::{CommitKind, CommitRequest, ErrorCode, Request, Response};

use super::{CliResult, Endpoint};
use crate::client::ClientError;
use crate::repo::tags::TagSpec;
use crate::repo::{commit, RepositorySet};

/// The runtime a command acts on: `--runtime`, else this shell's.
fn runtime_name(given: Option<String>) -> Result<String, Box<dyn std::error::Error>> {
    given
        .or_else(|| std::env::var("SPFS_RUNTIME").ok())
        .ok_or_else(|| {
            "no runtime: give --runtime NAME, or run this inside a runtime (SPFS_RUNTIME)".into()
        })
}

#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub(super) enum Kind {
    /// One layer of the edits.
    #[default]
    Layer,
    /// That layer, and a platform of the runtime's whole stack.
    Platform,
}

#[derive(Debug, clap::Args)]
pub(super) struct CommitArgs {
    /// What to make.
    #[arg(value_enum, default_value_t = Kind::Layer)]
    kind: Kind,
    /// The runtime whose edits to commit [default: $SPFS_RUNTIME].
    #[arg(long, value_name = "NAME", conflicts_with = "path")]
    runtime: Option<String>,
    /// Commit this directory instead of a runtime (as `spfs commit --path`).
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,
    /// Tag the result (repeatable).
    #[arg(short, long = "tag", value_name = "TAG")]
    tags: Vec<String>,
}

pub(super) fn commit(args: CommitArgs, endpoint: &Endpoint) -> CliResult {
    let tag_names = args.tags.clone();
    let tags = args
        .tags
        .iter()
        .map(|t| TagSpec::parse_to_write(t))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(dir) = args.path {
        let repos = RepositorySet::from_environment()?;
        let repo = repos.primary();
        let layer = commit::commit_dir(repo, &dir)?.layer;
        let digest = match args.kind {
            Kind::Layer => layer,
            Kind::Platform => commit::commit_platform(repo, vec![layer])?,
        };
        let moved = repo.push_tags(&tags, digest, repos.author())?;
        print_moved(&moved);
        print_tagged(&args.tags, digest);
        println!("{digest}");
        return Ok(());
    }
    let name = runtime_name(args.runtime)?;
    let request = Request::Commit(CommitRequest {
        name: name.clone(),
        kind: match args.kind {
            Kind::Layer => CommitKind::Layer,
            Kind::Platform => CommitKind::Platform,
        },
        tags: args.tags,
        author: crate::repo::Config::load()
            .ok()
            .map(|c| format!("{}@{}", c.user.name, c.user.domain)),
        max_concurrent_blobs: None,
    });
    let reply = endpoint.connect().and_then(|mut c| c.call(request));
    let reply = match reply {
        // Not live: a saved durable runtime is committed here.
        Err(e) if e.is(ErrorCode::NoSuchRuntime) => {
            commit_saved(&name, args.kind, &tags)?.ok_or(e)?;
            return Ok(());
        }
        Err(e @ ClientError::NotRunning { .. }) => {
            commit_saved(&name, args.kind, &tags)?.ok_or(e)?;
            return Ok(());
        }
        other => other?,
    };
    let Response::Committed { digest, moved, .. } = reply else {
        return Err("unexpected reply from the service".into());
    };
    print_moved(&moved);
    print_tagged(&tag_names, &digest);
    println!("{digest}");
    Ok(())
}

/// Commits the edits of saved durable runtime `name` (one whose processes
/// have ended) from its `durable_edits/` as a layer on its stack, as a
/// commit of a live runtime would: its record then shows the new stack
/// and its edits are emptied. `None` if there is no such runtime.
fn commit_saved(
    name: &str,
    kind: Kind,
    tags: &[TagSpec],
) -> Result<Option<()>, Box<dyn std::error::Error>> {
    let repos = RepositorySet::from_environment()?;
    let repo = repos.primary();
    let Some(record) = repo.runtime_record(name)? else {
        return Ok(None);
    };
    if !record.config.durable {
        return Err(format!(
            "runtime '{name}' has ended and was not durable: nothing is left to commit"
        )
        .into());
    }
    if let Some(pid) = crate::durable::live_owner(&record) {
        return Err(format!("runtime '{name}' is recorded as running by process {pid}, not by this user's service; commit it from there").into());
    }
    if let Some(notice) = crate::durable::prepare_edits(repo, &record)? {
        return Err(format!("nothing to commit: {notice}").into());
    }
    let dir = repo.durable_dir(name);
    let mut stack = record.stack()?;
    let view = crate::stack::view(&repos, &stack)?;
    let layer = commit::commit_scratch(repo, &dir.join("upper"), &view)?.layer;
    stack.push(layer);
    let digest = match kind {
        Kind::Layer => layer,
        Kind::Platform => commit::commit_platform(repo, stack.clone())?,
    };
    let moved = repo.push_tags(tags, digest, repos.author())?;
    let mut record = record.with_stack(&stack);
    record
        .extras
        .get_or_insert_with(Default::default)
        .file_whiteouts = true;
    crate::durable::save(repo, &record)?;
    // The edits are in the layer now; the record keeps the layer.
    crate::scratch::Scratch::open(&dir)
        .and_then(|s| s.clear())
        .map_err(|e| {
            format!(
                "committed {digest}, but the edits in {} could not be emptied: {e}",
                dir.display()
            )
        })?;
    print_moved(&moved);
    print_tagged(tags, digest);
    println!("{digest}");
    Ok(Some(()))
}

/// Says which tags pointed elsewhere before (upstream replaces them
/// silently; the old target stays reachable as `TAG~1`).
fn print_moved(moved: &[(String, String)]) {
    for (tag, old) in moved {
        eprintln!("note: tag {tag} pointed to {old}; that is {tag}~1 now");
    }
}

/// Says which tags now name `digest` (on stderr, as upstream logs them;
/// stdout stays the digest alone, for scripts).
fn print_tagged<T: std::fmt::Display>(tags: &[T], digest: impl std::fmt::Display) {
    for tag in tags {
        eprintln!("tagged {tag}: {digest}");
    }
}

#[derive(Debug, clap::Args)]
pub(super) struct ResetArgs {
    /// Paths to reset: under the mount (/spfs/etc/a.conf), or relative to the current directory inside it [default: all edits].
    paths: Vec<String>,
    /// The runtime [default: $SPFS_RUNTIME].
    #[arg(long, value_name = "NAME")]
    runtime: Option<String>,
}

/// `p` as an absolute path with `.` and `..` taken out (without following
/// links: paths under the mount are the runtime's), relative ones from the
/// current directory.
fn absolute(p: &str) -> Result<String, std::io::Error> {
    use std::path::Component;
    let path = std::path::Path::new(p);
    let joined = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut out = std::path::PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(out.display().to_string())
}

pub(super) fn reset(args: ResetArgs, endpoint: &Endpoint) -> CliResult {
    let name = runtime_name(args.runtime)?;
    let paths = args
        .paths
        .iter()
        .map(|p| absolute(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut client = endpoint.connect()?;
    let reply = client.call(Request::Reset {
        name,
        paths,
        to: None,
    })?;
    let Response::Reset { runtime, unchanged } = reply else {
        return Err("unexpected reply from the service".into());
    };
    for p in unchanged {
        eprintln!("note: {p} had no edits");
    }
    println!(
        "reset runtime '{}': {} in {} {} of edits left",
        runtime.name,
        super::human_bytes(runtime.scratch_bytes),
        runtime.scratch_files,
        if runtime.scratch_files == 1 {
            "file"
        } else {
            "files"
        }
    );
    Ok(())
}
