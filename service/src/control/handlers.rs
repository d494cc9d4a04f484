//! What the service does for each control request. Every handler returns
//! a `Result` with a [`ControlError`]; the socket server turns an error
//! into one `error` response line.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use spfs_shared::protocol::{
    self, CommitKind, CommitRequest, ErrorCode, Event, MountRequest, Request, Response,
    RuntimeInfo, ServiceStatus,
};
use spfs_shared::settings::SettingsError;
use tokio::sync::broadcast;

use crate::durable::{self, DurableError};
use crate::lifecycle::Lifecycle;
use crate::manager::{self, unix_secs, ChangeError, Commit, Manager, Rerun, Starting};
use crate::repo::tags::TagSpec;
use crate::runtimes::{self, Change, Mode, Runtime, Runtimes, StartError};
use crate::service::Notice;
use crate::stack;
use crate::sys;
use crate::sys::peer::Peer;
use crate::user_settings::UserSettings;

/// Why a control request failed; the message is what the client prints.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControlError {
    /// The process to root a runtime at is gone.
    #[error("process {0} does not exist")]
    NoSuchProcess(u32),
    /// The process belongs to another user.
    #[error(
        "process {0} belongs to another user; a runtime can only be started for your own processes"
    )]
    NotYourProcess(u32),
    /// A root pid that is neither the requesting process nor one of its
    /// ancestors, or one that every process descends from.
    #[error("process {0} is not the requesting process or one of its ancestors: a runtime's root is the process that asks (or its parent shell)")]
    NotAnAncestor(u32),
    /// No runtime of that name for this user.
    #[error("no runtime named '{}'", spfs_shared::display::quoted(.0))]
    NoSuchRuntime(String),
    /// The environment could not be loaded.
    #[error(transparent)]
    Repo(#[from] crate::repo::Error),
    /// The runtime could not be started.
    #[error(transparent)]
    Start(#[from] StartError),
    /// Making the scratch directory failed.
    #[error("cannot create the scratch directory {path}: {source}")]
    Scratch {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A setting could not be changed.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A path to reset that is not in the runtime.
    #[error("{path} is not inside the runtime (mounted at {}): nothing was reset; give paths under it, or relative to a directory inside it", mount.display())]
    OutsideMount {
        /// The path given.
        path: String,
        /// The mount.
        mount: PathBuf,
    },
    /// One runtime at a time, and this `run` is not of the one running.
    #[error("{0}")]
    OneAtATime(String),
    /// Subscriptions and shutdowns are served by the socket server.
    #[error("'{0}' is not answered here")]
    NotHere(&'static str),
    /// Durable runtimes: names, reruns, edits.
    #[error(transparent)]
    Durable(#[from] DurableError),
    /// `--keep-runtime` without `--runtime-name`.
    #[error("a durable runtime needs a name: give --runtime-name NAME with --keep-runtime")]
    DurableName,
    /// A change of a running runtime failed.
    #[error(transparent)]
    Change(#[from] ChangeError),
    /// `reset -r` with paths.
    #[error(
        "a reset to another stack resets everything: give either paths or a reference, not both"
    )]
    PathsWithStack,
}

impl From<manager::Error> for ControlError {
    fn from(e: manager::Error) -> Self {
        match e {
            manager::Error::Scratch { path, source } => ControlError::Scratch { path, source },
            manager::Error::Start(e) => ControlError::Start(e),
            manager::Error::Record(e) => DurableError::Repo(e).into(),
            manager::Error::Repo(e) => ControlError::Repo(e),
            manager::Error::Durable(e) => ControlError::Durable(e),
            manager::Error::NoSuchRuntime(name) => ControlError::NoSuchRuntime(name),
        }
    }
}

impl ControlError {
    /// What kind of failure this is, for clients that act on it (they
    /// never read the message for that).
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            ControlError::NoSuchProcess(_) | ControlError::NotHere(_) => ErrorCode::InvalidRequest,
            ControlError::NotYourProcess(_) | ControlError::NotAnAncestor(_) => {
                ErrorCode::NotPermitted
            }
            ControlError::NoSuchRuntime(_) => ErrorCode::NoSuchRuntime,
            ControlError::Repo(e) => repo_code(e),
            ControlError::Start(e) => match e {
                StartError::NameTaken(_) | StartError::OneAtATime(_) => ErrorCode::AlreadyExists,
                StartError::BadName(_) => ErrorCode::InvalidRequest,
                StartError::Register(crate::router::RegisterError::NoSuchProcess(_)) => {
                    ErrorCode::InvalidRequest
                }
                StartError::Register(_) => ErrorCode::AlreadyExists,
            },
            ControlError::Settings(e) => match e {
                SettingsError::Io { .. } => ErrorCode::Failed,
                _ => ErrorCode::InvalidRequest,
            },
            ControlError::OutsideMount { .. }
            | ControlError::DurableName
            | ControlError::PathsWithStack => ErrorCode::InvalidRequest,
            ControlError::OneAtATime(_) => ErrorCode::AlreadyExists,
            ControlError::Durable(e) => durable_code(e),
            ControlError::Change(e) => match e {
                ChangeError::Ended(_) => ErrorCode::NoSuchRuntime,
                ChangeError::ReadOnly(_) => ErrorCode::ReadOnly,
                ChangeError::Repo(e) | ChangeError::Commit { source: e, .. } => repo_code(e),
                ChangeError::Durable(e) => durable_code(e),
                ChangeError::NotEmptied { .. }
                | ChangeError::Reset { .. }
                | ChangeError::Edit { .. } => ErrorCode::Failed,
            },
            ControlError::Scratch { .. } => ErrorCode::Failed,
        }
    }

    /// The error as the socket carries it.
    pub(crate) fn to_response(&self) -> Response {
        Response::error_with(self.code(), self.to_string())
    }
}

/// The code of a durable runtime's error.
fn durable_code(e: &DurableError) -> ErrorCode {
    match e {
        DurableError::Exists { .. }
        | DurableError::EditsInUse(_)
        | DurableError::Running { .. }
        | DurableError::RunningElsewhere { .. } => ErrorCode::AlreadyExists,
        DurableError::NoSuchSaved { .. } => ErrorCode::NoSuchRuntime,
        DurableError::NotDurable(_) => ErrorCode::InvalidRequest,
        DurableError::Repo(e) => repo_code(e),
        DurableError::LinkedEdits(_) | DurableError::Edits { .. } => ErrorCode::Failed,
    }
}

/// The code of a repository error: an unknown reference, bad input, or
/// a failure.
fn repo_code(e: &crate::repo::Error) -> ErrorCode {
    match e {
        crate::repo::Error::UnknownReference { .. } => ErrorCode::UnknownReference,
        crate::repo::Error::InvalidDigest { .. } => ErrorCode::InvalidRequest,
        _ => ErrorCode::Failed,
    }
}

/// Converts a runtime for the protocol.
pub(crate) fn runtime_info(rt: &Runtime) -> RuntimeInfo {
    let usage = rt
        .editable()
        .map(|e| e.scratch().usage())
        .unwrap_or_default();
    RuntimeInfo {
        name: rt.name.clone(),
        id: rt.id,
        uid: rt.uid,
        root_pid: rt.root_pid,
        env_spec: rt.current_spec(),
        stack: stack::strings(&rt.stack()),
        editable: rt.is_editable(),
        created_unix: unix_secs(rt.created),
        entries: rt.tree().layers().len().saturating_sub(1) as u64,
        scratch_bytes: usage.bytes,
        scratch_files: usage.files,
        scratch_dir: rt
            .editable()
            .map(|e| e.scratch().root().display().to_string()),
        durable: rt.is_durable(),
        running: true,
        fetching: rt.repos.fetch_progress().map(|p| protocol::FetchInfo {
            in_flight: p.in_flight,
            fetched: p.fetched,
            failed: p.failed,
            bytes: p.bytes,
        }),
    }
}

/// The answer to a request that started or joined runtime `rt`.
fn mounted(rt: &Runtime, notice: Option<String>) -> Response {
    Response::Mounted {
        runtime: runtime_info(rt),
        token: rt.token.clone(),
        notice,
    }
}

/// Where the service runs, for its handlers.
pub(crate) struct Context {
    /// The runtimes, started, recorded and ended.
    pub manager: Arc<Manager>,
    /// Opens the repositories runtimes read (what they share: downloads,
    /// verdicts on payload files).
    pub repositories: stack::Opener,
    /// The filesystem backend.
    pub backend: crate::backend::Backend,
    /// The path users use, when the mountpoint is a link to the mount.
    pub link: Option<PathBuf>,
    /// The mount.
    pub mountpoint: PathBuf,
    /// The idle clock.
    pub lifecycle: Arc<Lifecycle>,
    /// The user's settings.
    pub settings: Arc<UserSettings>,
    /// Where settings and lifecycle changes are announced.
    pub notices: broadcast::Sender<Notice>,
    /// Error reports.
    pub reporting: Arc<crate::reporting::Reporting>,
}

/// The service's side of the control socket.
pub(crate) struct Handlers {
    cx: Context,
    started: Instant,
}

impl Handlers {
    /// Handlers for the service `cx` describes.
    pub(crate) fn new(cx: Context) -> Self {
        Handlers {
            cx,
            started: Instant::now(),
        }
    }

    /// The runtimes served.
    pub(crate) fn runtimes(&self) -> &Arc<Runtimes> {
        self.cx.manager.runtimes()
    }

    /// Answers one request from `peer` (all but subscriptions and
    /// shutdowns, which the socket server serves).
    pub(crate) fn handle(&self, peer: Peer, request: Request) -> Response {
        self.dispatch(peer, request)
            .unwrap_or_else(|e| e.to_response())
    }

    /// The first message of a subscription: the runtimes `peer` may see.
    pub(crate) fn subscribed(&self, peer: &Peer) -> Response {
        Response::Subscribed {
            runtimes: self.visible_runtimes(peer),
        }
    }

    /// What `change` means to subscriber `peer` (`None`: not theirs).
    pub(crate) fn event_for(&self, peer: &Peer, change: &Change) -> Option<Event> {
        let (rt, event) = match change {
            Change::Started(rt) => (
                rt,
                Event::Started {
                    runtime: runtime_info(rt),
                },
            ),
            Change::Updated(rt) => (
                rt,
                Event::Updated {
                    runtime: runtime_info(rt),
                },
            ),
            Change::Ended(rt) => (
                rt,
                Event::Ended {
                    name: rt.name.clone(),
                    id: rt.id,
                },
            ),
        };
        Self::visible(peer, rt).then_some(event)
    }

    fn visible(peer: &Peer, rt: &Runtime) -> bool {
        peer.uid == 0 || rt.uid == peer.uid
    }

    /// The runtimes `peer` may see, oldest first.
    fn visible_runtimes(&self, peer: &Peer) -> Vec<RuntimeInfo> {
        self.runtimes()
            .list()
            .iter()
            .filter(|r| Self::visible(peer, r))
            .map(|r| runtime_info(r))
            .collect()
    }

    fn find(&self, peer: &Peer, name: &str) -> Result<Arc<Runtime>, ControlError> {
        self.runtimes()
            .find(name, (peer.uid != 0).then_some(peer.uid))
            .ok_or_else(|| ControlError::NoSuchRuntime(name.to_owned()))
    }

    fn dispatch(&self, peer: Peer, request: Request) -> Result<Response, ControlError> {
        // A runtime whose processes just ended is ended now, not at the
        // next reaper tick: `run --rerun` right after its last run, a
        // name used again, `runtime ls` after an exit.
        if matches!(
            request,
            Request::Mount(_)
                | Request::ListRuntimes
                | Request::RuntimeInfo { .. }
                | Request::Join { .. }
                | Request::Commit(_)
                | Request::SetEditable { .. }
                | Request::MakeDurable { .. }
        ) {
            self.cx.manager.reap();
        }
        Ok(match request {
            Request::Status => Response::Status(self.status(&peer)),
            Request::Mount(req) => self.mount(peer, req)?,
            Request::ListRuntimes => Response::Runtimes {
                runtimes: self.visible_runtimes(&peer),
            },
            Request::RuntimeInfo { name } => Response::Runtime {
                runtime: runtime_info(&*self.find(&peer, &name)?),
            },
            Request::StopRuntime { name, force } => self.stop(&peer, &name, force)?,
            Request::Commit(req) => self.commit(&peer, req)?,
            Request::Reset {
                name,
                paths,
                to: None,
            } => self.reset(&peer, &name, &paths)?,
            Request::Reset {
                name,
                paths,
                to: Some(spec),
            } => self.restack(&peer, &name, &paths, &spec)?,
            Request::SetEditable { name, editable } => self.set_editable(&peer, &name, editable)?,
            Request::MakeDurable { name } => self.make_durable(&peer, &name)?,
            Request::Join { name, root_pid } => self.join_runtime(&peer, &name, root_pid)?,
            Request::GetSettings => Response::Settings(self.cx.settings.info()),
            Request::SetSetting { key, value } => self.set_setting(&key, &value)?,
            Request::Subscribe(_) => return Err(ControlError::NotHere("subscribe")),
            Request::Shutdown => return Err(ControlError::NotHere("shutdown")),
        })
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<Response, ControlError> {
        self.cx.settings.set(key, value)?;
        tracing::info!(key, value, "setting changed");
        self.settings_changed();
        Ok(Response::Settings(self.cx.settings.info()))
    }

    /// Applies the settings in effect and tells subscribers.
    pub(crate) fn settings_changed(&self) {
        let (timeout, _) = self.cx.settings.idle_timeout();
        self.cx.lifecycle.set_timeout(timeout);
        self.cx.reporting.configure(&self.cx.settings.settings());
        let _ = self
            .cx
            .notices
            .send(Notice::Settings(self.cx.settings.info()));
        let _ = self.cx.notices.send(Notice::Lifecycle(
            self.cx
                .lifecycle
                .report(self.runtimes().list().len(), false),
        ));
    }

    fn status(&self, peer: &Peer) -> ServiceStatus {
        ServiceStatus {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: protocol::VERSION,
            pid: std::process::id(),
            mountpoint: self.cx.mountpoint.display().to_string(),
            runtimes: self.visible_runtimes(peer).len(),
            uptime_secs: self.started.elapsed().as_secs(),
            lifecycle: self.cx.lifecycle.report(self.runtimes().list().len(), true),
            reporting: self.cx.reporting.status(),
            backend: Some(self.backend_info()),
        }
    }

    fn mount(&self, peer: Peer, req: MountRequest) -> Result<Response, ControlError> {
        let proc = check_root(&peer, req.root_pid)?;
        if let Some(name) = &req.runtime_name {
            if !runtimes::valid_name(name) {
                return Err(StartError::BadName(name.clone()).into());
            }
        }
        if req.rerun {
            return self.rerun(&peer, &proc, req);
        }
        if req.durable && req.runtime_name.is_none() {
            return Err(ControlError::DurableName);
        }
        let name = req
            .runtime_name
            .clone()
            .unwrap_or_else(|| format!("rt-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
        let (repos, stack) = self
            .cx
            .repositories
            .load(&req.repositories, &req.env_spec)?;
        if self.runtimes().mode() == Mode::Single {
            let running = self
                .runtimes()
                .list()
                .into_iter()
                .find(|r| r.uid == proc.uid);
            if let Some(rt) = running {
                return self.join(&rt, &req, &stack);
            }
        }
        if let Some(rt) = self.runtimes().find(&name, Some(proc.uid)) {
            return Err(StartError::NameTaken(rt.name.clone()).into());
        }
        // A name is recorded in the repository for as long as its
        // runtime (or a durable runtime's edits) lasts.
        durable::check_new_name(repos.primary(), &name, req.durable)?;
        let view = self.runtimes().view_of(&repos, &stack)?;
        let rt = self.cx.manager.start(Starting {
            name,
            uid: proc.uid,
            gid: peer.gid,
            root_pid: req.root_pid,
            root_start_time: proc.start_time,
            spec: req.env_spec.clone(),
            stack,
            view,
            repos,
            locations: req.repositories.clone(),
            // A durable runtime always has its edits directory (a
            // read-only one shows it, empty, and can be rerun --edit).
            scratch: if req.durable {
                Some(!req.editable)
            } else {
                req.editable.then_some(false)
            },
            durable: req.durable,
            command: req.command,
            saved: None,
        })?;
        Ok(mounted(&rt, None))
    }

    /// `run --rerun NAME` (see [`Manager::rerun`]).
    fn rerun(
        &self,
        peer: &Peer,
        proc: &sys::process::ProcInfo,
        req: MountRequest,
    ) -> Result<Response, ControlError> {
        let name = req.runtime_name.clone().ok_or(ControlError::DurableName)?;
        let (rt, notice) = self.cx.manager.rerun(Rerun {
            name,
            uid: proc.uid,
            gid: peer.gid,
            by_root: peer.uid == 0,
            root_pid: req.root_pid,
            root_start_time: proc.start_time,
            repos: self.cx.repositories.open(&req.repositories)?,
            locations: req.repositories,
            editable: req.editable,
            force: req.force,
            command: req.command,
        })?;
        Ok(mounted(&rt, notice))
    }

    /// `join NAME`: process `root_pid` of the runtime's user (or of root)
    /// becomes one more root of the runtime.
    fn join_runtime(
        &self,
        peer: &Peer,
        name: &str,
        root_pid: u32,
    ) -> Result<Response, ControlError> {
        let rt = self.find(peer, name)?;
        check_root(peer, root_pid)?;
        self.cx.manager.join(&rt, root_pid)?;
        Ok(mounted(&rt, None))
    }

    /// In single-runtime mode, a `run` of the environment already running
    /// joins it; any other is refused with why and what to do.
    fn join(
        &self,
        rt: &Arc<Runtime>,
        req: &MountRequest,
        stack: &[crate::repo::Digest],
    ) -> Result<Response, ControlError> {
        let why = if self.cx.backend.capabilities().caller_pid {
            "it was started with --single-runtime".to_owned()
        } else {
            format!(
                "{} does not tell which process asks, so every process of yours sees the same /spfs; for a runtime per process tree, use macFUSE's kernel extension (docs/backends.md)",
                self.cx.backend.kind.title()
            )
        };
        let refuse = |what: String| {
            Err(ControlError::OneAtATime(format!(
                "this service serves one runtime at a time ({why}), and runtime '{}' is running {}: {what}",
                rt.name,
                rt.spec()
            )))
        };
        if rt.stack() != stack {
            return refuse(format!(
                "run that environment to join it, or stop it first ('spfs-fuse-macos runtime rm {}')",
                rt.name
            ));
        }
        if rt.editable().is_some() != req.editable {
            let (has, asked) = if req.editable {
                ("read-only", "--edit")
            } else {
                ("editable", "without --edit")
            };
            return refuse(format!(
                "it is {has}, and this run asks {asked}; run it as it is to join it"
            ));
        }
        if let Some(name) = req.runtime_name.as_deref().filter(|n| *n != rt.name) {
            return refuse(format!(
                "this run names another runtime ('{name}'); drop --runtime-name or use '{}' to join it",
                rt.name
            ));
        }
        self.cx.manager.join(rt, req.root_pid)?;
        Ok(mounted(rt, None))
    }

    /// The backend, as `status` shows it.
    fn backend_info(&self) -> protocol::BackendInfo {
        let plan = crate::backend::MountPlan {
            mount_at: self.cx.mountpoint.clone(),
            link: self.cx.link.clone(),
        };
        let state = self.cx.link.as_deref().map(|l| {
            crate::backend::link_problem(l, &self.cx.mountpoint)
                .unwrap_or_else(|| "in place".to_owned())
        });
        self.cx.backend.info(&plan, state.as_deref())
    }

    fn stop(&self, peer: &Peer, name: &str, force: bool) -> Result<Response, ControlError> {
        let rt = self.find(peer, name)?;
        let mut signalled = Vec::new();
        let sig = if force { libc::SIGKILL } else { libc::SIGTERM };
        for pid in self.runtimes().members(rt.id) {
            // Only signal processes of the runtime's owner.
            if sys::process::proc_info(pid).is_some_and(|p| p.uid == rt.uid)
                && sys::process::signal(pid, sig).is_ok()
            {
                signalled.push(pid);
            }
        }
        if signalled.is_empty() {
            self.cx.manager.end(rt.id);
        }
        Ok(Response::Stopping {
            runtime: rt.name.clone(),
            signalled,
        })
    }

    fn commit(&self, peer: &Peer, req: CommitRequest) -> Result<Response, ControlError> {
        let rt = self.find(peer, &req.name)?;
        let tags = req
            .tags
            .iter()
            .map(|t| TagSpec::parse_to_write(t))
            .collect::<Result<Vec<_>, _>>()?;
        let committed = self.cx.manager.commit(
            &rt,
            Commit {
                tags,
                author: req.author,
                max_blobs: req.max_concurrent_blobs.map(|n| n as usize),
                platform: matches!(req.kind, CommitKind::Platform),
            },
        )?;
        Ok(Response::Committed {
            digest: committed.digest.to_string(),
            runtime: runtime_info(&rt),
            moved: committed.moved,
        })
    }

    fn reset(&self, peer: &Peer, name: &str, paths: &[String]) -> Result<Response, ControlError> {
        let rt = self.find(peer, name)?;
        // Every path is checked before anything is reset.
        let rels = paths
            .iter()
            .map(|p| self.relative(p).map(|r| (p.clone(), r)))
            .collect::<Result<Vec<_>, _>>()?;
        let unchanged = self.cx.manager.reset(&rt, &rels)?;
        Ok(Response::Reset {
            runtime: runtime_info(&rt),
            unchanged: unchanged.into_iter().map(str::to_owned).collect(),
        })
    }

    /// `reset -r SPEC` (see [`Manager::restack`]); `-` is no layers at all.
    fn restack(
        &self,
        peer: &Peer,
        name: &str,
        paths: &[String],
        spec: &str,
    ) -> Result<Response, ControlError> {
        let rt = self.find(peer, name)?;
        if !paths.is_empty() {
            return Err(ControlError::PathsWithStack);
        }
        self.cx
            .manager
            .restack(&rt, if spec == "-" { "" } else { spec })?;
        Ok(Response::Reset {
            runtime: runtime_info(&rt),
            unchanged: Vec::new(),
        })
    }

    /// `edit --keep-runtime` (see [`Manager::make_durable`]).
    fn make_durable(&self, peer: &Peer, name: &str) -> Result<Response, ControlError> {
        let rt = self.find(peer, name)?;
        let changed = self.cx.manager.make_durable(&rt)?;
        Ok(Response::Edited {
            runtime: runtime_info(&rt),
            changed,
        })
    }

    /// `edit` / `edit --off` (see [`Manager::set_editable`]).
    fn set_editable(
        &self,
        peer: &Peer,
        name: &str,
        editable: bool,
    ) -> Result<Response, ControlError> {
        let rt = self.find(peer, name)?;
        let changed = self.cx.manager.set_editable(&rt, editable)?;
        Ok(Response::Edited {
            runtime: runtime_info(&rt),
            changed,
        })
    }

    /// A path given as `/spfs/x`, `/x` or `x`, relative to the mount.
    /// `p` (an absolute path under the mount, or under the path users
    /// use for it) relative to the mount; anything else is refused.
    fn relative(&self, p: &str) -> Result<PathBuf, ControlError> {
        let path = Path::new(p);
        let under = |root: &Path| path.strip_prefix(root).ok().map(Path::to_owned);
        under(&self.cx.mountpoint)
            .or_else(|| self.cx.link.as_deref().and_then(under))
            .ok_or_else(|| ControlError::OutsideMount {
                path: p.to_owned(),
                mount: self.cx.mountpoint.clone(),
            })
    }
}

/// Longest ancestry walked to find a root pid above the requester.
const MAX_ANCESTRY: usize = 256;

/// Checks that process `root_pid` may become a runtime's root for `peer`:
/// it belongs to the peer's user (root too: a root process cannot claim
/// another user's processes), it is the peer itself or one of the peer's
/// ancestors, and it is not an ancestor of the service (pid 1, a session
/// manager): every process descends from those, so every user's
/// processes would land in the runtime.
fn check_root(peer: &Peer, root_pid: u32) -> Result<sys::process::ProcInfo, ControlError> {
    let proc = sys::process::proc_info(root_pid).ok_or(ControlError::NoSuchProcess(root_pid))?;
    if proc.uid != peer.uid {
        return Err(ControlError::NotYourProcess(root_pid));
    }
    let ancestry = |from: u32| {
        let mut chain = Vec::new();
        let mut pid = from;
        while let Some(info) = sys::process::proc_info(pid) {
            chain.push(pid);
            if info.ppid == 0 || info.ppid == pid || chain.len() >= MAX_ANCESTRY {
                break;
            }
            pid = info.ppid;
        }
        chain
    };
    let above_service = ancestry(std::process::id());
    if root_pid == 1 || above_service.contains(&root_pid) || !ancestry(peer.pid).contains(&root_pid)
    {
        return Err(ControlError::NotAnAncestor(root_pid));
    }
    Ok(proc)
}
