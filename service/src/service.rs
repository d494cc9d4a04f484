//! The service: one mount, the control socket, and the runtimes' lifecycle.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::control::handlers::Handlers;
use crate::control::ControlSocket;
use crate::fs::SpfsFs;
use crate::mount::Mounted;
use crate::recovery;
use crate::runtimes::Runtimes;
use crate::sys;

/// How often exited runtimes are looked for.
const REAP_INTERVAL: Duration = Duration::from_millis(100);
/// How often subscribers hear of edits (scratch sizes) at most.
const EDITS_INTERVAL: Duration = Duration::from_secs(1);

/// Where and how the service runs.
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    pub mountpoint: PathBuf,
    pub socket: PathBuf,
    /// FUSE request threads (Linux; macOS uses one).
    pub threads: usize,
    /// Where editable runtimes keep their scratch directories.
    pub scratch_root: PathBuf,
}

/// Why the service could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Bind(#[from] crate::control::BindError),
    #[error("cannot mount {path}: {source} (on macOS, /spfs must exist: see docs/macos.md)")]
    Mount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Scratch(#[from] recovery::ScratchRootError),
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error("cannot unmount {path}: {source}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Runs the service in the foreground until SIGTERM, SIGINT or a shutdown
/// request; then unmounts (also with files open) and removes the socket.
pub fn run(opts: ServiceOptions) -> Result<(), ServiceError> {
    // One service per scratch root: a second one would "recover" the
    // first one's live runtimes and empty its work directories.
    let _scratch_lock = recovery::lock_scratch_root(&opts.scratch_root)?;
    let control = ControlSocket::bind(&opts.socket)?;
    let socket_path = control.path().to_owned();
    let runtimes = Arc::new(Runtimes::new());
    let owner = sys::user::effective_ids();
    let mounted = Mounted::mount(
        SpfsFs::new(runtimes.clone(), owner),
        &opts.mountpoint,
        opts.threads,
    )
    .map_err(|source| {
        ControlSocket::remove(&socket_path);
        ServiceError::Mount {
            path: opts.mountpoint.clone(),
            source,
        }
    })?;

    let (tx, rx) = mpsc::channel::<()>();
    let stopping = Arc::new(AtomicBool::new(false));

    // SIGTERM / SIGINT
    let mut signals =
        signal_hook::iterator::Signals::new([libc::SIGTERM, libc::SIGINT, libc::SIGHUP])
            .map_err(ServiceError::Signals)?;
    let signal_handle = signals.handle();
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                tracing::info!(signal = sig, "shutting down on signal");
                let _ = tx.send(());
            }
        });
    }
    // runtimes whose processes are all gone
    {
        let runtimes = runtimes.clone();
        let stopping = stopping.clone();
        std::thread::spawn(move || {
            let mut reported = Instant::now();
            while !stopping.load(Ordering::Relaxed) {
                runtimes.reap();
                if reported.elapsed() >= EDITS_INTERVAL {
                    runtimes.report_edits();
                    reported = Instant::now();
                }
                std::thread::sleep(REAP_INTERVAL);
            }
        });
    }
    recovery::recover(&runtimes, &opts.scratch_root);
    let handlers = Arc::new(Handlers::new(
        runtimes.clone(),
        mounted.mountpoint().to_owned(),
        opts.scratch_root.clone(),
        tx,
    ));
    std::thread::spawn(move || control.serve(handlers));
    tracing::info!(
        mountpoint = %opts.mountpoint.display(),
        socket = %socket_path.display(),
        pid = std::process::id(),
        "service ready"
    );

    let _ = rx.recv();
    stopping.store(true, Ordering::Relaxed);
    signal_handle.close();
    let path = mounted.mountpoint().to_owned();
    let unmounted = mounted.unmount();
    // Clients wait for the socket to go: remove it only once unmounted.
    ControlSocket::remove(&socket_path);
    unmounted.map_err(|source| ServiceError::Unmount { path, source })?;
    tracing::info!(
        at = ?SystemTime::now(),
        runtimes = runtimes.list().len(),
        "service stopped"
    );
    Ok(())
}
