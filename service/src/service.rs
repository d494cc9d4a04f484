//! The service: one mount, the control socket, and the runtimes' lifecycle.
//!
//! FUSE requests are served by fuser's threads. Everything else — the
//! control socket and its subscriptions, the reaper of ended runtimes, the
//! idle clock, settings reloads and signals — runs as tasks on one
//! current-thread tokio runtime; control handlers that touch the disk run
//! on its blocking pool.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use spfs_shared::protocol::{self, Event, SettingsInfo};
use spfs_shared::settings::SettingsError;
use tokio::sync::broadcast;

use crate::control::handlers::{Context, Handlers};
use crate::control::{ControlSocket, Server};
use crate::fs::SpfsFs;
use crate::lifecycle::Lifecycle;
use crate::manager::{FsRecords, Manager};
use crate::mount::Mounted;
use crate::recovery;
use crate::reporting::Reporting;
use crate::runtimes::{Change, Mode, Runtimes};
use crate::stack;
use crate::sys;
use crate::sys::daemon::ReadyPipe;
use crate::user_settings::UserSettings;

/// How often exited runtimes are looked for.
const REAP_INTERVAL: Duration = Duration::from_millis(100);
/// How often subscribers hear of edits (scratch sizes) at most.
const EDITS_INTERVAL: Duration = Duration::from_secs(1);
/// How often the FUSE session is checked (a mount unmounted or aborted
/// from outside ends it).
const SESSION_INTERVAL: Duration = Duration::from_millis(250);
/// How often the settings file is checked for changes.
const SETTINGS_INTERVAL: Duration = Duration::from_secs(1);

/// Where and how the service runs.
#[derive(Clone, Debug)]
pub(crate) struct ServiceOptions {
    /// Where the filesystem is mounted.
    pub mountpoint: PathBuf,
    /// The control socket (when not handed over by launchd or systemd).
    pub socket: PathBuf,
    /// FUSE request threads (Linux; macOS uses one).
    pub threads: usize,
    /// Where editable runtimes keep their scratch directories.
    pub scratch_root: PathBuf,
    /// The user's settings file.
    pub settings: PathBuf,
    /// Started at login by launchd or systemd: never stops when idle.
    pub always_on: bool,
    /// The filesystem backend, and whether it serves one runtime at a time.
    pub backend: crate::backend::Backend,
    /// The path users use when the mountpoint is a link to where the
    /// backend mounts (`/spfs` → `/Volumes/spfs`).
    pub link: Option<PathBuf>,
}

/// Why the service could not run.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each variant's fields are named in its message
pub(crate) enum ServiceError {
    #[error(transparent)]
    Bind(#[from] crate::control::BindError),
    #[error(transparent)]
    Activation(#[from] sys::activation::ActivationError),
    #[error("cannot mount {path}: {source} (on macOS, /spfs must exist: see docs/macos.md)")]
    Mount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    MountBusy(String),
    #[error(transparent)]
    Scratch(#[from] recovery::ScratchRootError),
    /// The FUSE session ended under the service (unmounted or aborted).
    #[error("the mount at {0} was unmounted or aborted from outside; the service stopped (the next run starts a new one)")]
    MountLost(PathBuf),
    /// Another service is starting or serving on this socket.
    #[error("another service is starting or serving on {0}")]
    SocketLocked(PathBuf),
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("cannot start the service's event loop: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error("cannot unmount {path}: {source}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ServiceError {
    /// Another service won the start on this socket: the starter should
    /// use that one. (A scratch root locked by a service on another
    /// socket is a conflict to report, not a race.)
    pub(crate) fn is_busy(&self) -> bool {
        matches!(
            self,
            ServiceError::SocketLocked(_) | ServiceError::Bind(crate::control::BindError::InUse(_))
        )
    }
}

/// What the service announces besides runtime changes.
#[derive(Clone, Debug)]
pub(crate) enum Notice {
    /// The settings changed.
    Settings(SettingsInfo),
    /// Idle or busy, or a new timeout.
    Lifecycle(protocol::Lifecycle),
    /// The service is stopping: subscriptions end.
    Shutdown,
}

impl Notice {
    /// The event subscribers get (`None` for [`Notice::Shutdown`]).
    pub(crate) fn event(self) -> Option<Event> {
        match self {
            Notice::Settings(settings) => Some(Event::Settings { settings }),
            Notice::Lifecycle(lifecycle) => Some(Event::Lifecycle { lifecycle }),
            Notice::Shutdown => None,
        }
    }
}

/// Why the service stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Request,
    Signal(&'static str),
    Idle,
    Failed,
    /// The FUSE session ended under the service.
    MountLost,
}

/// Runs the service in the foreground until SIGTERM, SIGINT, a shutdown
/// request or the idle timeout; then unmounts (also with files open) and
/// removes the socket. A starter waiting on `ready` hears when the service
/// serves, or why it could not start.
pub(crate) fn run(
    opts: ServiceOptions,
    ready: Option<ReadyPipe>,
    reporting: Arc<Reporting>,
) -> Result<(), ServiceError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServiceError::Runtime);
    runtime.and_then(|rt| rt.block_on(serve(opts, ready, reporting)))
}

async fn serve(
    opts: ServiceOptions,
    mut ready: Option<ReadyPipe>,
    reporting: Arc<Reporting>,
) -> Result<(), ServiceError> {
    let started = start(&opts, reporting).await;
    let (control, mounted, cx, _lock) = match started {
        Ok(s) => s,
        Err(e) => {
            if let Some(r) = ready.take() {
                if e.is_busy() {
                    r.busy(&e.to_string());
                } else {
                    r.failed(&e.to_string());
                }
            }
            return Err(e);
        }
    };
    let lifecycle = cx.lifecycle.clone();
    let manager = cx.manager.clone();
    let runtimes = manager.runtimes().clone();
    let notices = cx.notices.clone();
    let settings = cx.settings.clone();
    let handlers = Arc::new(Handlers::new(cx));
    let server = Arc::new(Server::new(
        handlers.clone(),
        lifecycle.clone(),
        notices.clone(),
        sys::user::effective_ids().0,
    ));

    let mut stop_notices = notices.subscribe();
    let (idle_tx, mut idle_rx) = tokio::sync::mpsc::channel::<()>(1);
    // The service's tasks run until it stops; one that ends before (a
    // panic, reported like any other) stops the service cleanly.
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(reap(manager.clone()));
    tasks.spawn(watch_settings(settings, handlers.clone()));
    tasks.spawn(idle_clock(
        lifecycle.clone(),
        runtimes.clone(),
        notices.clone(),
        idle_tx,
    ));
    let control = Arc::new(control);
    {
        let control = control.clone();
        tasks.spawn(async move {
            if let Err(e) = control.serve(server).await {
                tracing::error!(error = %e, "the control socket failed");
            }
        });
    }
    tracing::info!(
        mountpoint = %opts.mountpoint.display(),
        socket = %control.path().display(),
        activated = control.is_inherited(),
        always_on = opts.always_on,
        backend = %opts.backend.describe(),
        single_runtime = opts.backend.single_runtime,
        idle_timeout = %lifecycle.timeout(),
        pid = std::process::id(),
        "service ready"
    );
    if let Some(r) = ready.take() {
        r.ready();
    }

    let why = {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(ServiceError::Signals)?;
        let mut int = signal(SignalKind::interrupt()).map_err(ServiceError::Signals)?;
        let mut hup = signal(SignalKind::hangup()).map_err(ServiceError::Signals)?;
        let mut session = tokio::time::interval(SESSION_INTERVAL);
        loop {
            tokio::select! {
                _ = session.tick() => if mounted.session_ended() {
                    break Stop::MountLost;
                },
                _ = term.recv() => break Stop::Signal("SIGTERM"),
                _ = int.recv() => break Stop::Signal("SIGINT"),
                _ = hup.recv() => break Stop::Signal("SIGHUP"),
                _ = idle_rx.recv() => break Stop::Idle,
                ended = tasks.join_next() => {
                    if let Some(Err(e)) = &ended {
                        tracing::error!(error = %e, "a task of the service failed");
                    }
                    break Stop::Failed;
                }
                notice = stop_notices.recv() => match notice {
                    Ok(Notice::Shutdown) | Err(broadcast::error::RecvError::Closed) => break Stop::Request,
                    _ => continue,
                },
            }
        }
    };
    match why {
        Stop::Request => tracing::info!("shutting down on request"),
        Stop::Signal(s) => tracing::info!(signal = s, "shutting down on signal"),
        Stop::Failed => tracing::error!("a part of the service stopped; shutting down"),
        Stop::MountLost => tracing::error!(
            mountpoint = %mounted.mountpoint().display(),
            "the mount was unmounted or aborted from outside: this service can no longer serve; stopping so that the next run starts a new one"
        ),
        Stop::Idle => tracing::info!(
            timeout = %lifecycle.timeout(),
            "no runtime and no request for the idle timeout; shutting down"
        ),
    }
    lifecycle.stop();
    let _ = notices.send(Notice::Shutdown);
    tasks.abort_all();
    // Runtimes whose processes are gone end as they would have (a
    // transient one's records leave the repository); the live ones stay
    // recorded, to come back with the next service.
    {
        let m = manager.clone();
        let _ = tokio::task::spawn_blocking(move || m.reap()).await;
    }
    let path = mounted.mountpoint().to_owned();
    let left = runtimes.list().len();
    let unmounted = tokio::task::spawn_blocking(move || mounted.unmount())
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
    // Clients wait for the socket to go: remove it only once unmounted.
    control.remove_file();
    unmounted.map_err(|source| ServiceError::Unmount {
        path: path.clone(),
        source,
    })?;
    tracing::info!(runtimes = left, "service stopped");
    if why == Stop::MountLost {
        return Err(ServiceError::MountLost(path));
    }
    Ok(())
}

type Started = (ControlSocket, Mounted, Context, [std::fs::File; 2]);

/// Locks `<socket>.lock` for this process: of the services that start on
/// one socket at the same moment (two first `run`s), one goes on and the
/// others stop before they touch the mount, the socket or the scratch.
fn lock_socket(socket: &std::path::Path) -> Result<std::fs::File, ServiceError> {
    let mut path = socket.as_os_str().to_owned();
    path.push(".lock");
    let path = PathBuf::from(path);
    let err = |source| ServiceError::Lock {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err)?;
        }
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(err)?;
    match sys::lock::try_lock_exclusive(&file) {
        Ok(true) => Ok(file),
        Ok(false) => Err(ServiceError::SocketLocked(socket.to_owned())),
        Err(e) => Err(err(e)),
    }
}

/// Everything before the service can serve: the scratch lock, the
/// settings, the control socket, the mount, and the runtimes of an earlier
/// run of the service.
async fn start(opts: &ServiceOptions, reporting: Arc<Reporting>) -> Result<Started, ServiceError> {
    // One service per scratch root: a second one would "recover" the
    // first one's live runtimes and empty its work directories.
    let socket_lock = lock_socket(&opts.socket)?;
    let lock = recovery::lock_scratch_root(&opts.scratch_root)?;
    let settings = Arc::new(UserSettings::load(&opts.settings, opts.always_on)?);
    reporting.configure(&settings.settings());
    let control = match sys::activation::inherited_listener()? {
        Some(listener) => ControlSocket::inherited(listener, &opts.socket),
        None => ControlSocket::bind(&opts.socket)?,
    };
    let runtimes = Arc::new(Runtimes::with_mode(if opts.backend.single_runtime {
        Mode::Single
    } else {
        Mode::PerProcessTree
    }));
    let owner = sys::user::effective_ids();
    let mounted = match Mounted::mount(
        SpfsFs::new(runtimes.clone(), owner),
        &opts.mountpoint,
        opts.threads,
        &opts.backend.mount_options(),
    ) {
        Ok(m) => m,
        Err(source) => {
            control.remove_file();
            if source.kind() == std::io::ErrorKind::AddrInUse {
                return Err(ServiceError::MountBusy(source.to_string()));
            }
            return Err(ServiceError::Mount {
                path: opts.mountpoint.clone(),
                source,
            });
        }
    };
    if let Some(n) = mounted.notifier() {
        runtimes.set_notifier(n);
    }
    let manager = Arc::new(Manager::new(
        runtimes,
        Box::new(FsRecords::new(&opts.scratch_root)),
    ));
    let repositories =
        stack::Opener::new(stack::Opener::downloads_from_env()).map_err(ServiceError::Runtime)?;
    // On the blocking pool: it reads the disk, and may open remotes.
    let recovered = {
        let (m, r, root) = (
            manager.clone(),
            repositories.clone(),
            opts.scratch_root.clone(),
        );
        tokio::task::spawn_blocking(move || drop(recovery::recover(&m, &r, &root))).await
    };
    if let Err(e) = recovered {
        tracing::error!(error = %e, "the recovery of earlier runtimes failed");
    }
    let (timeout, _) = settings.idle_timeout();
    let lifecycle = Arc::new(Lifecycle::new(
        timeout,
        opts.always_on,
        control.is_inherited(),
    ));
    let (notices, _) = broadcast::channel(256);
    let cx = Context {
        manager,
        repositories,
        backend: opts.backend.clone(),
        link: opts.link.clone(),
        mountpoint: mounted.mountpoint().to_owned(),
        lifecycle,
        settings,
        notices,
        reporting,
    };
    Ok((control, mounted, cx, [socket_lock, lock]))
}

/// Ends runtimes whose processes are gone; tells subscribers of edits.
async fn reap(manager: Arc<Manager>) {
    let mut tick = tokio::time::interval(REAP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let m = manager.clone();
        let report = reported.elapsed() >= EDITS_INTERVAL;
        // Scanning processes and counting scratch sizes touch the disk.
        let _ = tokio::task::spawn_blocking(move || {
            m.reap();
            if report {
                m.runtimes().report_edits();
            }
        })
        .await;
        if report {
            reported = tokio::time::Instant::now();
        }
    }
}

/// Applies edits of the settings file made behind the service's back.
async fn watch_settings(settings: Arc<UserSettings>, handlers: Arc<Handlers>) {
    let mut tick = tokio::time::interval(SETTINGS_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if settings.reload_if_changed().is_some() {
            handlers.settings_changed();
        }
    }
}

/// Stops the service once it has been idle for the timeout; tells
/// subscribers when it becomes idle or busy.
async fn idle_clock(
    lifecycle: Arc<Lifecycle>,
    runtimes: Arc<Runtimes>,
    notices: broadcast::Sender<Notice>,
    stop: tokio::sync::mpsc::Sender<()>,
) {
    let mut changes = runtimes.subscribe();
    let mut announced = None;
    loop {
        let count = runtimes.list().len();
        let deadline = lifecycle.deadline(count);
        // Subscribers hear of each new countdown (or of its end).
        if deadline != announced {
            announced = deadline;
            let _ = notices.send(Notice::Lifecycle(lifecycle.report(count, false)));
        }
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {
                if lifecycle.try_stop(runtimes.list().len(), std::time::Instant::now()) {
                    let _ = stop.send(()).await;
                    // Tasks never end by themselves (see `serve`).
                    std::future::pending::<()>().await;
                }
            }
            _ = lifecycle.changed() => {}
            change = changes.recv() => {
                if let Ok(Change::Started(_) | Change::Ended(_)) = change {
                    lifecycle.touch();
                }
            }
        }
    }
}
