//! `runtime ls|info|rm`.

use std::time::{SystemTime, UNIX_EPOCH};

use spfs_shared::protocol::{Request, Response, RuntimeInfo};

use super::{CliResult, Endpoint};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List running runtimes.
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one runtime.
    Info {
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop a runtime: SIGTERM to its processes; it ends when they are gone.
    Rm { name: String },
}

fn age(created: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let s = now.saturating_sub(created);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

fn scratch(rt: &RuntimeInfo) -> String {
    if rt.editable {
        format!("{} B / {} files", rt.scratch_bytes, rt.scratch_files)
    } else {
        "-".into()
    }
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
            println!(
                "{:<20} {:>8} {:>8} {:>6} {:<12} ENV",
                "NAME", "PID", "ENTRIES", "AGE", "SCRATCH"
            );
            for rt in runtimes {
                println!(
                    "{:<20} {:>8} {:>8} {:>6} {:<12} {}",
                    rt.name,
                    rt.root_pid,
                    rt.entries,
                    age(rt.created_unix),
                    scratch(&rt),
                    rt.env_spec
                );
            }
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
        Command::Rm { name } => {
            let Response::Stopping { runtime, signalled } =
                client.call(Request::StopRuntime { name })?
            else {
                return Err("unexpected reply from the service".into());
            };
            if signalled.is_empty() {
                println!("stopped {runtime}");
            } else {
                let pids: Vec<String> = signalled.iter().map(u32::to_string).collect();
                println!("stopping {runtime}: sent SIGTERM to {}", pids.join(", "));
            }
        }
    }
    Ok(())
}
