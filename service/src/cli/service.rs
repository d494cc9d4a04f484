//! `service`: run the service in the foreground.

use super::{CliResult, Endpoint};
use crate::backend::{self, Choice};
use crate::service::{self, ServiceOptions};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
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
    /// The filesystem backend: auto, linux, macfuse (kernel extension),
    /// macfuse-fskit, fuse-t [default: auto: the best installed; see
    /// `spfs-fuse-macos backends`].
    #[arg(
        long,
        env = "SPFS_FUSE_BACKEND",
        default_value = "auto",
        value_name = "NAME"
    )]
    backend: Choice,
    /// Serve one runtime at a time, seen by all of the user's processes (what
    /// a backend without the caller's pid does anyway).
    #[arg(long, env = "SPFS_FUSE_SINGLE_RUNTIME")]
    single_runtime: bool,
    /// Append output to the user's service log instead of standard error
    /// (for service managers that cannot name a per-user file).
    #[arg(long)]
    pub log_to_file: bool,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8))
}

pub(super) fn run(
    args: Args,
    endpoint: &Endpoint,
    reporting: Option<std::sync::Arc<crate::reporting::Reporting>>,
) -> CliResult {
    let ready = crate::sys::daemon::ReadyPipe::from_environment();
    let reporting =
        reporting.unwrap_or_else(|| std::sync::Arc::new(crate::reporting::Reporting::init()));
    let chosen = backend::choose(
        args.backend,
        &backend::detect(&backend::system_root(), backend::Os::current()),
        args.single_runtime,
    )
    .map_err(|e| e.to_string())
    .and_then(|b| {
        let is_default = endpoint.mountpoint == std::path::Path::new(super::DEFAULT_MOUNTPOINT);
        let plan = b
            .mount_plan(&endpoint.mountpoint, is_default)
            .map_err(|e| e.to_string())?;
        Ok((b, plan))
    });
    let (backend, plan) = match chosen {
        Ok(c) => c,
        Err(e) => {
            if let Some(r) = ready {
                r.failed(&e);
            }
            return Err(e.into());
        }
    };
    reporting.set_backend(backend.kind.name());
    if let Some(link) = &plan.link {
        if let Some(problem) = backend::link_problem(link, &plan.mount_at) {
            tracing::warn!(link = %link.display(), mount = %plan.mount_at.display(), problem, "the mountpoint is not linked where users look");
        }
    }
    let result = service::run(
        ServiceOptions {
            backend,
            link: plan.link.clone(),
            mountpoint: plan.mount_at.clone(),
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
