//! `runtime ls|info|rm`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use spfs_shared::protocol::{Request, Response, RuntimeInfo};

use super::{CliResult, Endpoint};
use crate::client::ClientError;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List running runtimes.
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
    /// Stop a runtime: SIGTERM to its processes, then wait for them.
    Rm {
        name: String,
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

fn scratch(rt: &RuntimeInfo) -> String {
    if rt.editable {
        format!(
            "{} in {}",
            super::human_bytes(rt.scratch_bytes),
            plural(rt.scratch_files, "file")
        )
    } else {
        "read-only".into()
    }
}

/// Rows as columns as wide as their widest cell (the last left unpadded).
fn table(rows: &[Vec<String>], right: &[bool]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                line.push_str(cell);
            } else if right.get(c).copied().unwrap_or(false) {
                line.push_str(&format!("{cell:>w$}  ", w = widths[c]));
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
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
        Err(ClientError::Service(m)) if m.starts_with("no runtime named") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Waits up to `secs` for runtime `name` to end.
fn wait_ended(
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

pub fn run(cmd: Command, endpoint: &Endpoint) -> CliResult {
    let mut client = endpoint.connect()?;
    match cmd {
        Command::Ls { json } => {
            let Response::Runtimes { runtimes } = client.call(Request::ListRuntimes)? else {
                return Err("unexpected reply from the service".into());
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&runtimes)?);
                return Ok(());
            }
            if runtimes.is_empty() {
                println!("no runtimes");
                return Ok(());
            }
            let mut rows = vec![["NAME", "PID", "ENTRIES", "AGE", "SCRATCH", "ENV"]
                .map(str::to_owned)
                .to_vec()];
            for rt in &runtimes {
                rows.push(vec![
                    rt.name.clone(),
                    rt.root_pid.to_string(),
                    rt.entries.to_string(),
                    age(rt.created_unix),
                    scratch(rt),
                    rt.env_spec.clone(),
                ]);
            }
            print!("{}", table(&rows, &[false, true, true, true, false]));
        }
        Command::Info { name, json } => {
            let Response::Runtime { runtime: rt } = client.call(Request::RuntimeInfo { name })?
            else {
                return Err("unexpected reply from the service".into());
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&rt)?);
                return Ok(());
            }
            println!("runtime {}", rt.name);
            println!("  env: {}", rt.env_spec);
            println!("  root process: {} (uid {})", rt.root_pid, rt.uid);
            println!("  editable: {}", if rt.editable { "yes" } else { "no" });
            println!("  age: {}", age(rt.created_unix));
            println!("  entries: {}", rt.entries);
            println!("  scratch: {}", scratch(&rt));
            println!("  stack (top first):");
            for d in rt.stack.iter().rev() {
                println!("    {d}");
            }
        }
        Command::Rm { name, grace, force } => {
            let Response::Stopping { runtime, signalled } = client.call(Request::StopRuntime {
                name: name.clone(),
                force: false,
            })?
            else {
                return Err("unexpected reply from the service".into());
            };
            if signalled.is_empty() || wait_ended(&mut client, &name, grace)? {
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
            if wait_ended(&mut client, &name, 5)? {
                println!("stopped {runtime}: killed {names}, which ignored SIGTERM");
            } else {
                return Err(format!(
                    "runtime {runtime} still runs after SIGKILL to {names}; see '{} runtime info {runtime}'",
                    endpoint.command()
                )
                .into());
            }
        }
    }
    Ok(())
}
