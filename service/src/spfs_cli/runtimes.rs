//! `runtime info` and `runtime ls`: the runtimes recorded in a
//! repository, printed as upstream prints them (the same records print
//! the same way under both tools). `runtime rm` and `prune` are still
//! `spfs-fuse-macos`'s.

use std::collections::HashMap;
use std::path::PathBuf;

use super::{CmdError, CmdResult, Repositories};
use crate::repo::runtime_records::RuntimeRecord;
use crate::repo::FsRepository;

/// View and manage spfs runtime information.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum RuntimeCommand {
    /// Show the complete state of a runtime.
    Info(InfoArgs),
    /// List runtime information from the repository.
    #[command(visible_alias = "ls")]
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct InfoArgs {
    #[command(flatten)]
    repos: Repositories,
    #[command(flatten)]
    annotation: super::annotations::AnnotationViewing,
    /// The name/id of the runtime to show.
    #[arg(env = "SPFS_RUNTIME")]
    name: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    repos: Repositories,
    /// Only print the name of each runtime, no additional data.
    #[arg(short, long)]
    quiet: bool,
}

pub(crate) fn run(cmd: RuntimeCommand) -> CmdResult {
    match cmd {
        RuntimeCommand::Info(args) => info(args),
        RuntimeCommand::List(args) => list(args),
    }
}

/// The repository's address as upstream names its storage.
fn storage_url(repo: &FsRepository) -> String {
    let root = repo.root().display().to_string();
    format!("file://{}/", root.trim_end_matches('/'))
}

fn info(args: InfoArgs) -> CmdResult {
    let repo = args.repos.open()?;
    let Some(record) = repo.runtime_record(&args.name)? else {
        return Err(no_such_runtime(&repo, &args.name));
    };
    if args.annotation.wanted() {
        return args.annotation.print(&repo, &record.stack()?);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&as_upstream_reads(record))?
    );
    Ok(())
}

/// Upstream's error for a runtime `repo` has no record of.
pub(crate) fn no_such_runtime(repo: &FsRepository, name: &str) -> CmdError {
    CmdError {
        message: format!(
            "Runtime does not exist: {name} in storage {}",
            storage_url(repo)
        ),
        causes: vec![format!(
            "Unknown Reference: {}/{name}",
            crate::repo::runtime_records::META_ORG
        )],
        logged: false,
        status: 1,
    }
}

/// The record as upstream holds it: the fields it knows, in its order
/// (this project's additions and fields nobody knows are not its).
fn as_upstream_reads(mut r: RuntimeRecord) -> RuntimeRecord {
    r.extras = None;
    r.other.clear();
    r.author.other.clear();
    r.status.other.clear();
    r.config.other.clear();
    r
}

fn list(args: ListArgs) -> CmdResult {
    let repo = args.repos.open()?;
    let (records, unreadable) = repo.runtime_records()?;
    let known: HashMap<u32, Option<PathBuf>> = crate::sys::process::all_pids()
        .into_iter()
        .map(|pid| (pid, crate::sys::process::mount_namespace(pid)))
        .collect();
    for r in records {
        if args.quiet {
            println!("{}", r.name);
            continue;
        }
        println!(
            "{:37}\trunning={}\tpid={:<7}\teditable={}\tdurable={}\tstatus={}",
            r.name,
            r.status.running,
            r.status
                .owner
                .map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
            r.status.editable,
            r.config.durable,
            process_status(&r, &known)
        );
    }
    if !args.quiet {
        for bad in unreadable {
            eprintln!("Failed to read runtime: {}", bad.error);
        }
    }
    Ok(())
}

/// Upstream's word for whether a runtime's processes (and monitor) are
/// still there, from the processes running now and their mount
/// namespaces. The words are distinct from each other, for grep.
fn process_status(r: &RuntimeRecord, known: &HashMap<u32, Option<PathBuf>>) -> &'static str {
    let owner = r.status.owner.map(|pid| known.contains_key(&pid));
    let monitor = r.status.monitor.map(|pid| known.contains_key(&pid));
    let in_namespace = r
        .config
        .mount_namespace
        .as_ref()
        .map(|ns| known.values().any(|p| p.as_ref() == Some(ns)));
    match (owner, monitor, in_namespace) {
        // The monitor died while processes still exist.
        (Some(true), Some(false), _) | (_, Some(false), Some(true)) => "unmonitored",
        (Some(true), _, _) | (_, _, Some(true)) | (Some(false), Some(true), None) => "running",
        // A monitor that will never quit on its own.
        (Some(false), Some(true), Some(false)) => "stopping",
        (Some(false), _, Some(false)) | (Some(false), Some(false), None) => "stopped",
        // The owner is gone, the rest unknown: a stale runtime.
        (Some(false), None, None) => "zombie",
        (None, None, _) if r.config.durable => "saved",
        (None, _, _) => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        owner: Option<u32>,
        monitor: Option<u32>,
        ns: Option<&str>,
        durable: bool,
    ) -> RuntimeRecord {
        let mut r: RuntimeRecord = serde_json::from_str(include_str!(
            "../../repo/tests/fixtures/spfs-upstream/durable-runtime-info.json"
        ))
        .unwrap();
        r.status.owner = owner;
        r.status.monitor = monitor;
        r.config.mount_namespace = ns.map(PathBuf::from);
        r.config.durable = durable;
        r
    }

    #[test]
    fn process_status_is_upstreams_word_for_each_case() {
        let known: HashMap<u32, Option<PathBuf>> =
            [(10, Some(PathBuf::from("mnt:[1]"))), (11, None)].into();
        let cases = [
            (Some(10), Some(99), None, "unmonitored"),
            (None, Some(99), Some("mnt:[1]"), "unmonitored"),
            (Some(10), None, None, "running"),
            (None, None, Some("mnt:[1]"), "running"),
            (Some(99), Some(11), None, "running"),
            (Some(99), Some(11), Some("mnt:[2]"), "stopping"),
            (Some(99), None, Some("mnt:[2]"), "stopped"),
            (Some(99), Some(98), None, "stopped"),
            (Some(99), None, None, "zombie"),
            (None, Some(11), None, "unknown"),
        ];
        for (owner, monitor, ns, word) in cases {
            let r = record(owner, monitor, ns, false);
            assert_eq!(
                process_status(&r, &known),
                word,
                "{owner:?} {monitor:?} {ns:?}"
            );
        }
        assert_eq!(
            process_status(&record(None, None, None, true), &known),
            "saved"
        );
        assert_eq!(
            process_status(&record(None, None, None, false), &known),
            "unknown"
        );
    }
}
