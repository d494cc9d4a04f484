//! `launchagent install | uninstall | status | plist`: the always-on
//! service (a LaunchAgent on macOS, a systemd user unit on Linux; see
//! [`crate::agent`]).

use spfs_shared::protocol::{Request, Response};

use super::{CliResult, Endpoint};
use crate::agent::{launchd, Agent, Kind, Spec};
use crate::client::ClientError;

#[derive(Debug, clap::Subcommand)]
pub(super) enum Command {
    /// Start the service at login and keep it running (replaces an older agent).
    Install,
    /// Stop the always-on service and remove its agent.
    Uninstall,
    /// Whether the agent is installed and loaded, and the service's pid.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the LaunchAgent property list `install` writes (on any OS).
    Plist {
        /// The variant inside SPFS.app, for SMAppService (names no user's
        /// paths: the same for everyone who installs the app).
        #[arg(long)]
        bundle: bool,
    },
}

fn spec(endpoint: &Endpoint) -> Result<Spec, std::io::Error> {
    let default = std::path::Path::new(super::DEFAULT_MOUNTPOINT);
    let mountpoint = (endpoint.mountpoint != default).then_some(endpoint.mountpoint.as_path());
    Spec::for_this_binary(&endpoint.socket, mountpoint)
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Launchd => "LaunchAgent",
        Kind::Systemd => "systemd user unit",
    }
}

/// Stops a service running outside the agent, so the agent's can take
/// over — unless that would lose runtimes.
fn hand_over(endpoint: &Endpoint) -> CliResult {
    let mut c = match endpoint.connect() {
        Ok(c) => c,
        Err(ClientError::NotRunning { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let Response::Status(s) = c.call(Request::Status)? else {
        return Err("unexpected reply from the service".into());
    };
    if s.runtimes > 0 {
        return Err(format!(
            "the service running now (pid {}) has {} runtime(s); installing would restart it under the service manager, and read-only runtimes do not survive a restart. Let them end (or 'spfs-fuse-macos runtime rm NAME'), then install again",
            s.pid, s.runtimes
        )
        .into());
    }
    c.call(Request::Shutdown)?;
    if !crate::client::wait_exit(s.pid) {
        return Err(format!("the service (pid {}) did not stop; see its log", s.pid).into());
    }
    Ok(())
}

pub(super) fn run(cmd: Command, endpoint: &Endpoint) -> CliResult {
    let agent = Agent::new(Kind::for_platform());
    let name = kind_name(agent.kind());
    match cmd {
        Command::Plist { bundle } => {
            let bytes = if bundle {
                launchd::bundle_plist()?
            } else {
                launchd::plist(&spec(endpoint)?)?
            };
            print!("{}", String::from_utf8_lossy(&bytes));
        }
        Command::Install => {
            let spec = spec(endpoint)?;
            hand_over(endpoint)?;
            agent.install(&spec)?;
            let files = agent.files(&spec)?;
            println!(
                "installed the {name} ({}): the service now runs always-on and starts at login",
                files
                    .iter()
                    .map(|(p, _)| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Command::Uninstall => {
            if agent.uninstall()? {
                println!("removed the {name}: the service stops when idle and starts on demand");
            } else {
                println!("the {name} is not installed");
            }
        }
        Command::Status { json } => {
            let s = agent.status()?;
            if json {
                let v = serde_json::json!({
                    "kind": name,
                    "file": s.file.display().to_string(),
                    "installed": s.installed,
                    "loaded": s.loaded,
                    "pid": s.pid,
                });
                println!("{v}");
                return Ok(());
            }
            println!(
                "{name} {}: {}, {}",
                s.file.display(),
                if s.installed {
                    "installed"
                } else {
                    "not installed"
                },
                match (s.loaded, s.pid) {
                    (true, Some(pid)) => format!("loaded, running as pid {pid}"),
                    (true, None) => "loaded, not running".to_owned(),
                    (false, _) => "not loaded".to_owned(),
                }
            );
        }
    }
    Ok(())
}
