//! `runtime ls|info|rm`.

use spfs_shared::display::escape_control;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use spfs_shared::protocol::{ErrorCode, Request, Response, RuntimeInfo};

use super::{CliResult, Endpoint};
use crate::client::ClientError;
use crate::repo::runtime_records::RuntimeRecord as SavedRecord;
use crate::repo::{FsRepository, RepositorySet};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// List runtimes: those running, and those saved in the repository
    /// (durable runtimes, and records a crash left).
    Ls {
        /// Print JSON instead of a table (stacks bottom-up, as applied).
        #[arg(long)]
        json: bool,
    },
    /// Show one runtime.
    Info {
        name: String,
        /// Print JSON (its stack bottom-up, as applied).
        #[arg(long)]
        json: bool,
    },
    /// Stop a runtime: SIGTERM to its processes, then wait for them; a
    /// saved runtime's record is removed (a durable one's edits only with
    /// --remove-durable).
    Rm {
        name: String,
        /// Also delete a durable runtime's edits (durable_edits/NAME).
        #[arg(long)]
        remove_durable: bool,
        /// Seconds to wait for the processes to end.
        #[arg(long, default_value_t = 5, value_name = "SECS")]
        grace: u64,
        /// Send SIGKILL to what is still alive after the grace period.
        #[arg(long)]
        force: bool,
    },
}

fn age(created: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let s = now.saturating_sub(created);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        _ => format!("{}d{:02}h", s / 86_400, s / 3600 % 24),
    }
}

fn plural(n: u64, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// Rows as columns as wide as their widest cell (the last left unpadded).
fn table(rows: &[Vec<String>], right: &[bool]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            let width = |r: &Vec<String>| r.get(c).map_or(0, |cell| cell.chars().count());
            rows.iter().map(width).max().unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                line.push_str(cell);
            } else {
                let w = widths.get(c).copied().unwrap_or(0);
                if right.get(c).copied().unwrap_or(false) {
                    line.push_str(&format!("{cell:>w$}  "));
                } else {
                    line.push_str(&format!("{cell:<w$}  "));
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Whether runtime `name` still runs.
fn running(client: &mut crate::client::Client, name: &str) -> Result<bool, ClientError> {
    match client.call(Request::RuntimeInfo {
        name: name.to_owned(),
    }) {
        Ok(_) => Ok(true),
        Err(e) if e.is(ErrorCode::NoSuchRuntime) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Waits up to `secs` for runtime `name` to end.
pub(crate) fn wait_ended(
    client: &mut crate::client::Client,
    name: &str,
    secs: u64,
) -> Result<bool, ClientError> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if !running(client, name)? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn named(pids: &[u32]) -> String {
    pids.iter()
        .map(|p| match crate::sys::process::name(*p) {
            Some(n) => format!("{p} ({n})"),
            None => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The runtimes saved in the primary repository that `uid` may see
/// (its own, and upstream's, which do not say whose they are), not among
/// `live`; records that cannot be read are reported on stderr by name.
fn saved_runtimes(uid: u32, live: &[RuntimeInfo]) -> Vec<RuntimeInfo> {
    let Ok(repos) = RepositorySet::existing_from_environment() else {
        return Vec::new();
    };
    let repo = repos.primary();
    let (records, unreadable) = match repo.runtime_records() {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "warning: cannot list the runtimes saved in {}: {e}",
                repo.root().display()
            );
            return Vec::new();
        }
    };
    for bad in unreadable {
        eprintln!("warning: {}", bad.error);
    }
    records
        .into_iter()
        .filter(|r| !live.iter().any(|l| l.name == r.name))
        .filter(|r| crate::durable::visible_to(r, uid))
        .map(|r| saved_info(repo, &r, uid))
        .collect()
}

/// A saved runtime as the service describes live ones.
fn saved_info(repo: &FsRepository, r: &SavedRecord, uid: u32) -> RuntimeInfo {
    let stack: Vec<String> = r.status.stack.iter().rev().cloned().collect();
    let env_spec = crate::durable::display_spec(r);
    let edits = repo.durable_dir(&r.name);
    let usage = if r.config.durable {
        crate::scratch::usage_of(&edits.join("upper")).unwrap_or_default()
    } else {
        Default::default()
    };
    RuntimeInfo {
        name: r.name.clone(),
        id: 0,
        uid: r.extras.as_ref().map_or(uid, |e| e.uid),
        root_pid: 0,
        env_spec,
        stack,
        editable: r.status.editable,
        created_unix: chrono::DateTime::parse_from_rfc3339(&r.author.created)
            .map_or(0, |t| t.timestamp().max(0) as u64),
        entries: 0,
        scratch_bytes: usage.bytes,
        scratch_files: usage.files,
        scratch_dir: r.config.durable.then(|| edits.display().to_string()),
        durable: r.config.durable,
        running: false,
        fetching: None,
    }
}

/// `running`, `saved` (a durable runtime whose processes ended) or
/// `ended` (a record left by a runtime that ended while no service ran).
fn state(rt: &RuntimeInfo) -> &'static str {
    match (rt.running, rt.durable) {
        (true, _) => "running",
        (false, true) => "saved",
        (false, false) => "ended",
    }
}

fn edits(rt: &RuntimeInfo) -> String {
    if rt.durable || rt.editable {
        format!(
            "{} in {}",
            super::human_bytes(rt.scratch_bytes),
            plural(rt.scratch_files, "file")
        )
    } else {
        "read-only".into()
    }
}

/// The live runtimes, or `None` when the service is not running.
fn live_runtimes(endpoint: &Endpoint) -> Result<Option<Vec<RuntimeInfo>>, ClientError> {
    let mut client = match endpoint.connect() {
        Ok(c) => c,
        Err(ClientError::NotRunning { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    match client.call(Request::ListRuntimes)? {
        Response::Runtimes { runtimes } => Ok(Some(runtimes)),
        other => Err(ClientError::Protocol(format!("{other:?}"))),
    }
}

fn my_uid() -> u32 {
    // The real user: whose runtimes these are.
    crate::sys::user::real_uid()
}

pub(crate) fn run(cmd: Command, endpoint: &Endpoint) -> CliResult {
    match cmd {
        Command::Ls { json } => {
            let live = live_runtimes(endpoint)?;
            if live.is_none() && !json {
                eprintln!("note: the service is not running; only saved runtimes are listed");
            }
            let mut runtimes = live.unwrap_or_default();
            runtimes.extend(saved_runtimes(my_uid(), &runtimes));
            if json {
                println!("{}", serde_json::to_string_pretty(&runtimes)?);
                return Ok(());
            }
            if runtimes.is_empty() {
                println!("no runtimes");
                return Ok(());
            }
            let mut rows = vec![["NAME", "STATE", "PID", "AGE", "EDITS", "ENV"]
                .map(str::to_owned)
                .to_vec()];
            for rt in &runtimes {
                rows.push(vec![
                    escape_control(&rt.name).into_owned(),
                    format!(
                        "{}{}",
                        state(rt),
                        if rt.durable && rt.running {
                            " (durable)"
                        } else {
                            ""
                        }
                    ),
                    if rt.running {
                        rt.root_pid.to_string()
                    } else {
                        "-".into()
                    },
                    age(rt.created_unix),
                    edits(rt),
                    escape_control(&short_spec(&rt.env_spec)).into_owned(),
                ]);
            }
            print!("{}", table(&rows, &[false, false, true, true, false]));
        }
        Command::Info { name, json } => {
            let rt = match endpoint
                .connect()
                .and_then(|mut c| c.call(Request::RuntimeInfo { name: name.clone() }))
            {
                Ok(Response::Runtime { runtime }) => runtime,
                Ok(_) => return Err("unexpected reply from the service".into()),
                Err(e)
                    if e.is(ErrorCode::NoSuchRuntime)
                        || matches!(e, ClientError::NotRunning { .. }) =>
                {
                    let repos = RepositorySet::existing_from_environment()?;
                    match repos.primary().runtime_record(&name)? {
                        Some(r) if crate::durable::visible_to(&r, my_uid()) => {
                            saved_info(repos.primary(), &r, my_uid())
                        }
                        _ => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&rt)?);
                return Ok(());
            }
            println!("runtime {}", escape_control(&rt.name));
            println!(
                "  state: {}{}",
                state(&rt),
                if rt.durable {
                    ", durable (its edits are kept when it ends)"
                } else {
                    ""
                }
            );
            println!("  env: {}", escape_control(&rt.env_spec));
            if rt.running {
                println!("  root process: {} (uid {})", rt.root_pid, rt.uid);
            }
            println!("  editable: {}", if rt.editable { "yes" } else { "no" });
            println!("  age: {}", age(rt.created_unix));
            if rt.running {
                println!("  entries: {}", rt.entries);
            }
            println!(
                "  {}: {}",
                if rt.durable { "edits" } else { "scratch" },
                edits(&rt)
            );
            if let Some(dir) = rt.scratch_dir.as_deref().filter(|_| rt.durable) {
                println!("  edits in: {dir}");
            }
            println!("  stack (top first):");
            for d in rt.stack.iter().rev() {
                println!("    {}", escape_control(d));
            }
        }
        Command::Rm {
            name,
            remove_durable,
            grace,
            force,
        } => {
            let live = match endpoint.connect() {
                Ok(mut c) => match c.call(Request::RuntimeInfo { name: name.clone() }) {
                    Ok(Response::Runtime { runtime }) => Some((c, runtime)),
                    Ok(_) => return Err("unexpected reply from the service".into()),
                    Err(e) if e.is(ErrorCode::NoSuchRuntime) => None,
                    Err(e) => return Err(e.into()),
                },
                Err(ClientError::NotRunning { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            match live {
                Some((mut client, rt)) => {
                    stop(&mut client, endpoint, &name, grace, force)?;
                    if rt.durable {
                        finish_durable(&name, remove_durable, endpoint)?;
                    }
                }
                None => remove_saved(&name, remove_durable, endpoint)?,
            }
        }
    }
    Ok(())
}

/// After a durable runtime stopped: its edits go only if asked.
fn finish_durable(name: &str, remove_durable: bool, endpoint: &Endpoint) -> CliResult {
    let repos = RepositorySet::existing_from_environment()?;
    let dir = repos.primary().durable_dir(name);
    if remove_durable {
        delete_durable(repos.primary(), name)?;
        println!("removed its durable edits ({})", dir.display());
    } else {
        println!(
            "its edits are kept in {} (durable): '{} run --rerun {name}' runs it again, '{} runtime rm --remove-durable {name}' deletes them",
            dir.display(),
            endpoint.command(),
            endpoint.command()
        );
    }
    Ok(())
}

/// Removes durable runtime `name` from `repo`: its record, then its edits.
pub(crate) fn delete_durable(repo: &FsRepository, name: &str) -> CliResult {
    crate::durable::check_edits_path(repo, name).map_err(|e| e.to_string())?;
    repo.remove_runtime(name)?;
    let dir = repo.durable_dir(name);
    crate::scratch::remove_all(&dir).map_err(|e| {
        format!(
            "cannot delete the edits of runtime '{name}' in {}: {e}",
            dir.display()
        )
    })?;
    Ok(())
}

/// `runtime rm` of a runtime that is not live: its record (and, with
/// `remove_durable`, a durable runtime's edits) leave the repository.
fn remove_saved(name: &str, remove_durable: bool, endpoint: &Endpoint) -> CliResult {
    let repos = RepositorySet::existing_from_environment()?;
    let repo = repos.primary();
    let record = match repo.runtime_record(name) {
        Ok(Some(r)) => Some(r),
        Ok(None) => {
            if !repo.runtime_names()?.iter().any(|n| n == name) {
                return Err(format!("no runtime named '{name}'").into());
            }
            None
        }
        // Unreadable: removing it is what the message suggests.
        Err(e) => {
            eprintln!("note: {e}");
            None
        }
    };
    let uid = my_uid();
    if let Some(r) = &record {
        if !crate::durable::visible_to(r, uid) {
            return Err(format!("no runtime named '{name}'").into());
        }
        if let Some(pid) = crate::durable::live_owner(r) {
            return Err(format!("runtime '{name}' is recorded as running by process {pid}, not by this user's service; stop it there first").into());
        }
    }
    let durable = record.as_ref().is_some_and(|r| r.config.durable);
    let dir = repo.durable_dir(name);
    if durable && !remove_durable {
        // Refused as upstream refuses it (status 2): nothing is removed.
        return Err(super::ExitWith(
            2,
            format!(
                "won't delete runtime '{}': it is marked as durable and --remove-durable was not given (nothing was removed; its edits are in {}); use '{} runtime rm --remove-durable {}' to remove it and its edits",
                escape_control(name),
                dir.display(),
                endpoint.command(),
                escape_control(name),
            ),
        )
        .into());
    }
    if durable {
        delete_durable(repo, name)?;
        println!("removed {name} and its durable edits ({})", dir.display());
    } else {
        repo.remove_runtime(name)?;
        println!("removed {name}");
    }
    Ok(())
}

/// Stops live runtime `name` (see `Command::Rm`).
pub(crate) fn stop(
    client: &mut crate::client::Client,
    endpoint: &Endpoint,
    name: &str,
    grace: u64,
    force: bool,
) -> CliResult {
    let name = name.to_owned();
    let Response::Stopping { runtime, signalled } = client.call(Request::StopRuntime {
        name: name.clone(),
        force: false,
    })?
    else {
        return Err("unexpected reply from the service".into());
    };
    if signalled.is_empty() || wait_ended(client, &name, grace)? {
        println!("stopped {runtime}");
        return Ok(());
    }
    if !force {
        // Asked again: what is still alive (a second SIGTERM harms nothing).
        let alive = match client.call(Request::StopRuntime {
            name: name.clone(),
            force: false,
        })? {
            Response::Stopping { signalled, .. } => signalled,
            _ => signalled,
        };
        return Err(format!(
            "runtime {runtime} still runs {grace} s after SIGTERM: {} did not end; '{} runtime rm --force {runtime}' kills {}",
            named(&alive),
            endpoint.command(),
            if alive.len() == 1 { "it" } else { "them" }
        )
        .into());
    }
    let Response::Stopping {
        signalled: killed, ..
    } = client.call(Request::StopRuntime {
        name: name.clone(),
        force: true,
    })?
    else {
        return Err("unexpected reply from the service".into());
    };
    let names = named(&killed);
    if wait_ended(client, &name, 5)? {
        println!("stopped {runtime}: killed {names}, which ignored SIGTERM");
        Ok(())
    } else {
        Err(format!(
            "runtime {runtime} still runs after SIGKILL to {names}; see '{} runtime info {runtime}'",
            endpoint.command()
        )
        .into())
    }
}

/// `fixture/base+UFTF5WRY…` as it is, but digests cut to 8 characters.
fn short_spec(spec: &str) -> String {
    spec.split('+')
        .map(|item| {
            if item.len() == 56
                && item
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'=')
            {
                &item[..8]
            } else {
                item
            }
        })
        .collect::<Vec<_>>()
        .join("+")
}
