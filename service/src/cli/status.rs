//! `status` and `shutdown`.

use std::time::Duration;

use spfs_shared::protocol::{Lifecycle, Request, Response};
use spfs_shared::settings::human_duration;

use super::{CliResult, Endpoint};
use crate::client::ClientError;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn status(args: StatusArgs, endpoint: &Endpoint) -> CliResult {
    let mut client = endpoint.connect()?;
    let Response::Status(s) = client.call(Request::Status)? else {
        return Err("unexpected reply from the service".into());
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!(
            "service running: pid {}, version {} (protocol {}), mounted at {}, {} runtime(s), up {} s",
            s.pid, s.version, s.protocol, s.mountpoint, s.runtimes, s.uptime_secs
        );
        println!("  {}", lifecycle_line(s.runtimes, &s.lifecycle));
        println!("  error reporting: {}", s.reporting.summary);
    }
    Ok(())
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// `running, 2 runtimes`, `idle for 3 min, exits in 27 min`, or
/// `idle timeout: never`.
pub fn lifecycle_line(runtimes: usize, l: &Lifecycle) -> String {
    let mins = |secs: u64| human_duration(Duration::from_secs(secs));
    let mut line = match (l.idle_secs, l.exits_in_secs) {
        (None, _) => format!("running, {}", plural(runtimes, "runtime")),
        (Some(idle), Some(exits)) => format!("idle for {}, exits in {}", mins(idle), mins(exits)),
        (Some(idle), None) => format!("idle for {}", mins(idle)),
    };
    if l.idle_timeout_secs.is_none() {
        line.push_str(if l.always_on {
            "; idle timeout: never (always on)"
        } else {
            "; idle timeout: never"
        });
    }
    line
}

pub fn start(endpoint: &Endpoint) -> CliResult {
    let mut client = endpoint.connect_or_start()?;
    let Response::Status(s) = client.call(Request::Status)? else {
        return Err("unexpected reply from the service".into());
    };
    println!(
        "the service is running: pid {}, mounted at {}",
        s.pid, s.mountpoint
    );
    Ok(())
}

pub fn shutdown(endpoint: &Endpoint) -> CliResult {
    let mut client = match endpoint.connect() {
        Ok(c) => c,
        Err(ClientError::NotRunning { .. }) => {
            println!("the service is not running");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let pid = match client.call(Request::Status) {
        Ok(Response::Status(s)) => s.pid,
        // Already on its way out (idle).
        Err(ClientError::ShuttingDown(_)) => {
            crate::client::wait_gone(&endpoint.socket);
            println!("the service stopped");
            return Ok(());
        }
        Ok(_) => return Err("unexpected reply from the service".into()),
        Err(e) => return Err(e.into()),
    };
    client.call(Request::Shutdown)?;
    // It exits once it has unmounted and removed its socket.
    if !crate::client::wait_exit(pid) {
        return Err(format!(
            "the service (pid {pid}) was asked to stop but is still running; see its log {}",
            spfs_shared::paths::log_path().display()
        )
        .into());
    }
    println!("the service stopped");
    Ok(())
}
