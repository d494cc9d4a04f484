//! `service`: run the service in the foreground.

use super::{CliResult, Endpoint};
use crate::service::{self, ServiceOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// FUSE request threads (Linux only; macOS serves with one).
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    /// Where editable runtimes keep their edits [default: the user's cache dir].
    #[arg(long, env = "SPFS_FUSE_SCRATCH_ROOT", value_name = "PATH")]
    scratch_root: Option<std::path::PathBuf>,
    /// Run always-on (as the LaunchAgent or systemd unit does): never stop
    /// when idle.
    #[arg(long, env = "SPFS_FUSE_ALWAYS_ON")]
    always_on: bool,
    /// Append output to the user's service log instead of standard error
    /// (for service managers that cannot name a per-user file).
    #[arg(long)]
    pub log_to_file: bool,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8))
}

pub fn run(
    args: Args,
    endpoint: &Endpoint,
    reporting: Option<std::sync::Arc<crate::reporting::Reporting>>,
) -> CliResult {
    let ready = crate::sys::daemon::ReadyPipe::from_environment();
    let reporting =
        reporting.unwrap_or_else(|| std::sync::Arc::new(crate::reporting::Reporting::init()));
    let result = service::run(
        ServiceOptions {
            mountpoint: endpoint.mountpoint.clone(),
            socket: endpoint.socket.clone(),
            threads: args.threads,
            scratch_root: args
                .scratch_root
                .unwrap_or_else(spfs_shared::paths::scratch_root),
            settings: spfs_shared::paths::settings_path(),
            always_on: args.always_on,
        },
        ready,
        reporting.clone(),
    );
    if let Err(e) = &result {
        tracing::error!(error = %e, "the service failed");
    }
    reporting.flush();
    result?;
    Ok(())
}
