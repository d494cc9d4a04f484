//! `status` and `shutdown`.

use std::time::Duration;

use spfs_shared::protocol::{Lifecycle, Request, Response};
use spfs_shared::settings::human_duration;

use super::{CliResult, Endpoint};
use crate::client::ClientError;

#[derive(Debug, clap::Args)]
pub(super) struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn status(args: StatusArgs, endpoint: &Endpoint) -> CliResult {
    let mut client = match endpoint.connect() {
        Ok(c) => c,
        Err(e) => {
            if matches!(e, ClientError::NotRunning { .. }) {
                clear_dead_mount(endpoint);
            }
            return Err(e.into());
        }
    };
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
        if let Some(b) = &s.backend {
            for line in backend_lines(b) {
                println!("  {line}");
            }
        }
        println!("  error reporting: {}", s.reporting.summary);
    }
    Ok(())
}

/// The backend as `status` prints it: what it is, what it can do, and the
/// mount's layout.
pub(super) fn backend_lines(b: &spfs_shared::protocol::BackendInfo) -> Vec<String> {
    let yes_no = |v: bool| if v { "yes" } else { "no" };
    let mut lines =
        vec![
            format!("backend: {}", b.summary()),
            format!(
            "  caller pid: {}; cache invalidation: {}; entry timeouts honoured: {}; mounts {}{}",
            yes_no(b.caller_pid),
            b.invalidation,
            yes_no(b.entry_timeouts),
            b.mount_location,
            if b.serial { "; one request at a time" } else { "" }
        ),
        ];
    if !b.mount_options.is_empty() {
        lines.push(format!("  mount options: {}", b.mount_options.join(",")));
    }
    if let Some(link) = &b.link {
        lines.push(format!("  mountpoint link: {link}"));
    }
    lines
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
pub(super) fn lifecycle_line(runtimes: usize, l: &Lifecycle) -> String {
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

pub(super) fn start(endpoint: &Endpoint) -> CliResult {
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

/// After finding no service: clears a dead mount a killed service left at
/// the mountpoint ("Transport endpoint is not connected"), and says so.
fn clear_dead_mount(endpoint: &Endpoint) {
    let m = &endpoint.mountpoint;
    match crate::mount::clear_dead(m) {
        Ok(true) => eprintln!(
            "note: removed the dead mount at {} that a service killed without unmounting left behind",
            m.display()
        ),
        Ok(false) => {}
        Err(e) => eprintln!(
            "note: a dead mount is left at {} and cannot be removed here ({e}): unmount it with '{}'",
            m.display(),
            if cfg!(target_os = "macos") {
                format!("umount -f {}", m.display())
            } else {
                format!("fusermount -u -z {}' or, as root, 'umount -l {}", m.display(), m.display())
            }
        ),
    }
}

#[derive(Debug, clap::Args)]
pub(super) struct ShutdownArgs {
    /// Stop even while runtimes run (their processes then lose /spfs).
    #[arg(short, long)]
    force: bool,
}

/// Runtimes listed in a refusal, at most.
const NAMED_RUNTIMES: usize = 10;

pub(super) fn shutdown(args: ShutdownArgs, endpoint: &Endpoint) -> CliResult {
    let mut client = match endpoint.connect() {
        Ok(c) => c,
        Err(ClientError::NotRunning { .. }) => {
            println!("the service is not running");
            clear_dead_mount(endpoint);
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let (pid, running) = match client.call(Request::Status) {
        Ok(Response::Status(s)) => (s.pid, s.runtimes),
        // Already on its way out (idle).
        Err(ClientError::ShuttingDown(_)) => {
            crate::client::wait_gone(&endpoint.socket);
            println!("the service stopped");
            return Ok(());
        }
        Ok(_) => return Err("unexpected reply from the service".into()),
        Err(e) => return Err(e.into()),
    };
    // (The list ends runtimes whose processes are gone first.)
    let live = match (running > 0 && !args.force).then(|| client.call(Request::ListRuntimes)) {
        Some(Ok(Response::Runtimes { runtimes })) => runtimes,
        Some(Ok(_)) => return Err("unexpected reply from the service".into()),
        Some(Err(e)) => return Err(e.into()),
        None => Vec::new(),
    };
    if !live.is_empty() {
        let running = live.len();
        let names: Vec<String> = live
            .iter()
            .take(NAMED_RUNTIMES)
            .map(|r| format!("'{}'", spfs_shared::display::escape_control(&r.name)))
            .collect();
        let more = running.saturating_sub(names.len());
        return Err(format!(
            "the service has {running} running runtime{} ({}{}): their processes would lose {}; end them first ('{} runtime rm NAME'), or stop it anyway with 'shutdown --force'",
            if running == 1 { "" } else { "s" },
            names.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() },
            endpoint.mountpoint.display(),
            endpoint.command(),
        )
        .into());
    }
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
