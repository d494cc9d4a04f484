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
    /// Find and remove runtimes from the repository based on a pruning
    /// strategy.
    Prune(PruneArgs),
    /// Remove runtimes from the repository.
    #[command(visible_alias = "rm")]
    Remove(RemoveArgs),
}

/// What `runtime rm` and `prune` leave alone unless told.
#[derive(Debug, clap::Args)]
pub(crate) struct Spare {
    /// Remove the runtime even if it's owned by someone else.
    #[arg(long)]
    ignore_user: bool,
    /// Remove the runtime even if it appears to be from a different host.
    ///
    /// Implies --ignore-monitor.
    #[arg(long)]
    ignore_host: bool,
    /// Do not try and terminate the monitor process, just remove runtime
    /// data.
    #[arg(long)]
    ignore_monitor: bool,
}

impl Spare {
    /// Upstream's lines for why `r` is not removed (another user's,
    /// another machine's, its monitor running), in its order; `None` if
    /// nothing here spares it.
    fn reason(&self, r: &RuntimeRecord, me: &str, here: &str) -> Option<Vec<String>> {
        if !self.ignore_user && r.author.user_name != me {
            return Some(vec![
                format!(
                    "Won't delete, this runtime belongs to '{}'",
                    r.author.user_name
                ),
                " > use --ignore-user to ignore this error".into(),
            ]);
        }
        let same_host = r.author.host_name == here;
        if !self.ignore_host && !same_host {
            return Some(vec![
                format!(
                    "Won't delete, this runtime was spawned on a different machine: '{}'",
                    r.author.host_name
                ),
                " > use --ignore-host to ignore this error".into(),
            ]);
        }
        let monitor = r
            .status
            .monitor
            .is_some_and(crate::sys::process::is_running);
        if !self.ignore_monitor && same_host && monitor {
            return Some(vec![
                "Won't delete, the monitor process appears to still be running".into(),
                " > terminating the command should trigger the cleanup process".into(),
                " > use --ignore-monitor to ignore this error".into(),
            ]);
        }
        None
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct PruneArgs {
    #[command(flatten)]
    repos: Repositories,
    #[command(flatten)]
    spare: Spare,
    /// Remove runtimes started before last reboot.
    #[arg(long)]
    from_before_boot: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RemoveArgs {
    #[command(flatten)]
    repos: Repositories,
    /// Remove the runtime from the repository forcefully: here, also one
    /// that is running, whose processes are stopped first.
    #[arg(short, long)]
    force: bool,
    #[command(flatten)]
    spare: Spare,
    /// Allow durable runtimes to be removed, normally they will not be
    /// removed.
    #[arg(long)]
    remove_durable: bool,
    /// The name/id of the runtime to remove.
    name: Vec<String>,
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
        RuntimeCommand::Remove(args) => remove(args),
        RuntimeCommand::Prune(args) => prune(args),
    }
}

/// `runtime prune --from-before-boot`: each runtime started before the
/// machine last booted goes, but another user's or machine's, one whose
/// monitor runs, and durable ones (each said, as upstream says it).
fn prune(args: PruneArgs) -> CmdResult {
    let repo = args.repos.open()?;
    if !args.from_before_boot {
        super::log_info("No pruning strategy selected.");
        return Err(CmdError {
            diagnostic: None,
            message: String::new(),
            causes: Vec::new(),
            logged: true,
            status: 1,
        });
    }
    let Some(boot) = crate::sys::process::boot_time() else {
        return Err(wont(&["Failed to get system uptime"], 1));
    };
    let boot: chrono::DateTime<chrono::Utc> = boot.into();
    let (me, here) = crate::durable::author(crate::sys::user::real_uid());
    let (records, unreadable) = repo.runtime_records()?;
    for r in records {
        let created = chrono::DateTime::parse_from_rfc3339(&r.author.created)
            .map(|t| t.with_timezone(&chrono::Utc));
        // (A record whose time cannot be read is not known to be old.)
        if created.map_or(true, |c| c >= boot) {
            continue;
        }
        if let Some(lines) = args.spare.reason(&r, &me, &here) {
            for line in lines {
                super::log_info(&line);
            }
            continue;
        }
        if r.config.durable {
            super::log_info(&format!(
                "Won't delete {}, the runtime is durable. Use `spk runtime rm` to delete it.",
                r.name
            ));
            continue;
        }
        match repo.remove_runtime(&r.name) {
            Ok(_) => super::log_info(&format!("Pruned runtime {}", r.name)),
            Err(e) => eprintln!(
                "{} Failed to remove runtime {}: {e}",
                super::level_word("ERROR", 31),
                r.name
            ),
        }
    }
    for bad in unreadable {
        eprintln!("Failed to read runtime: {}", bad.error);
    }
    Ok(())
}

/// Refuses as upstream refuses: its `ERROR` lines, and status `status`.
fn wont(lines: &[&str], status: u8) -> CmdError {
    CmdError {
        diagnostic: None,
        message: lines.join("\n"),
        causes: Vec::new(),
        logged: true,
        status,
    }
}

/// `runtime rm NAME...`: each runtime's record (and, with
/// `--remove-durable`, a durable one's edits) leaves the repository,
/// with upstream's checks in upstream's order; one of ours that is
/// running is stopped first with `-f`, refused without.
fn remove(args: RemoveArgs) -> CmdResult {
    let repo = args.repos.open()?;
    let (me, here) = crate::durable::author(crate::sys::user::real_uid());
    for name in &args.name {
        // One whose processes just ended is still being saved by the
        // service: its record is read once that is done.
        if repo
            .runtime_record(name)?
            .is_some_and(|r| r.status.running && crate::durable::live_owner(&r).is_none())
        {
            wait_until_ended(name);
        }
        let Some(record) = repo.runtime_record(name)? else {
            return Err(no_such_runtime(&repo, name));
        };
        if let Some(lines) = args.spare.reason(&record, &me, &here) {
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            return Err(wont(&lines, 1));
        }
        let same_host = record.author.host_name == here;
        if record.config.durable && !args.remove_durable {
            return Err(wont(
                &[
                    "Won't delete, the runtime is marked as durable and",
                    " > '--remove-durable' was not specified",
                    " > use --remove-durable to remove a durable runtime",
                ],
                2,
            ));
        }
        // Ours, live: its processes go first (the service ends it).
        if let Some(pid) = crate::durable::live_owner(&record).filter(|_| same_host) {
            if !args.force {
                return Err(wont(
                    &[
                        &format!("Won't delete, the runtime is running (process {pid})"),
                        " > ending its processes ends it",
                        " > use --force to stop them and remove it",
                    ],
                    1,
                ));
            }
            stop_live(name)?;
        }
        let removed = if record.config.durable {
            crate::cli::runtime::delete_durable(&repo, name).map(|()| true)
        } else {
            repo.remove_runtime(name).map_err(Into::into)
        };
        removed.map_err(|e| CmdError::from(e.to_string()))?;
    }
    Ok(())
}

/// Waits (up to 10 s) until the service no longer serves runtime `name`.
fn wait_until_ended(name: &str) {
    if let Ok(mut client) = crate::cli::Endpoint::from_environment().connect() {
        let _ = crate::cli::runtime::wait_ended(&mut client, name, 10);
    }
}

/// Stops live runtime `name` through the service (SIGTERM, then SIGKILL
/// to what is left after 10 s).
fn stop_live(name: &str) -> CmdResult {
    let endpoint = crate::cli::Endpoint::from_environment();
    let mut client = match endpoint.connect() {
        Ok(c) => c,
        // No service: nothing serves it, whatever its record says.
        Err(crate::client::ClientError::NotRunning { .. }) => return Ok(()),
        Err(e) => return Err(e.to_string().into()),
    };
    match client.call(spfs_shared::protocol::Request::RuntimeInfo {
        name: name.to_owned(),
    }) {
        Ok(_) => {}
        Err(e) if e.is(spfs_shared::protocol::ErrorCode::NoSuchRuntime) => return Ok(()),
        Err(e) => return Err(e.to_string().into()),
    }
    crate::cli::runtime::stop(&mut client, &endpoint, name, 10, true)
        .map_err(|e| CmdError::from(e.to_string()))
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

/// The runtime this process is in (`SPFS_RUNTIME`, as `run` sets it);
/// upstream's error outside one.
pub(crate) fn active_name() -> Result<String, CmdError> {
    std::env::var("SPFS_RUNTIME")
        .ok()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| "No active runtime".into())
}

/// The record of the runtime this process is in, and its name.
pub(crate) fn active_record(repo: &FsRepository) -> Result<(String, RuntimeRecord), CmdError> {
    let name = active_name()?;
    match repo.runtime_record(&name)? {
        Some(record) => Ok((name, record)),
        None => Err(no_such_runtime(repo, &name)),
    }
}

/// Upstream's error for a runtime `repo` has no record of.
pub(crate) fn no_such_runtime(repo: &FsRepository, name: &str) -> CmdError {
    CmdError {
        diagnostic: None,
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
