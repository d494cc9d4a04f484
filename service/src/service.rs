//! The service: one mount, the control socket, and the runtimes' lifecycle.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use spfs_shared::protocol::{
    self, CommitKind, CommitRequest, MountRequest, RepositoryLocation, Request, Response,
    RuntimeEvent, RuntimeInfo, ServiceStatus,
};

use crate::control::{ControlSocket, Handler, Reply};
use crate::fs::SpfsFs;
use crate::mount::Mounted;
use crate::records::{RuntimeRecord, RECORD_VERSION};
use crate::recovery;
use crate::repo::commit;
use crate::repo::tags::{TagAuthor, TagSpec};
use crate::repo::{EnvSpec, FsRepository, RepositorySet, View};
use crate::runtimes::{self, Change, NewRuntime, Runtime, Runtimes};
use crate::scratch::Scratch;
use crate::sys;
use crate::sys::peer::Peer;

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
    #[error("another service uses the scratch root {0}; stop it (spfs-fuse-macos shutdown) or give this one its own --scratch-root")]
    ScratchInUse(PathBuf),
    #[error("cannot use the scratch root {path}: {source}")]
    ScratchRoot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot unmount {path}: {source}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

struct State {
    runtimes: Arc<Runtimes>,
    mountpoint: PathBuf,
    started: Instant,
    shutdown: Mutex<Sender<()>>,
    scratch_root: PathBuf,
}

/// Converts a runtime for the protocol.
pub fn runtime_info(rt: &Runtime) -> RuntimeInfo {
    let usage = rt.scratch.as_ref().map(|s| s.usage()).unwrap_or_default();
    RuntimeInfo {
        name: rt.name.clone(),
        id: rt.id,
        uid: rt.uid,
        root_pid: rt.root_pid,
        env_spec: rt.spec.clone(),
        stack: stack_strings(&rt.stack()),
        editable: rt.editable,
        created_unix: unix_secs(rt.created),
        entries: rt.view().view.len() as u64 - 1,
        scratch_bytes: usage.bytes,
        scratch_files: usage.files,
    }
}

fn error(message: impl ToString) -> Reply {
    Reply::One(Response::Error {
        message: message.to_string(),
    })
}

impl State {
    fn visible(&self, peer: &Peer, rt: &Runtime) -> bool {
        peer.uid == 0 || rt.uid == peer.uid
    }

    /// The runtimes `peer` may see, oldest first.
    fn visible_runtimes(&self, peer: &Peer) -> Vec<RuntimeInfo> {
        self.runtimes
            .list()
            .iter()
            .filter(|r| self.visible(peer, r))
            .map(|r| runtime_info(r))
            .collect()
    }

    fn mount(&self, peer: Peer, req: MountRequest) -> Reply {
        let Some(proc) = sys::process::proc_info(req.root_pid) else {
            return error(format!("process {} does not exist", req.root_pid));
        };
        if peer.uid != 0 && proc.uid != peer.uid {
            return error(format!(
                "process {} belongs to another user; a runtime can only be started for your own processes",
                req.root_pid
            ));
        }
        let name = req
            .runtime_name
            .clone()
            .unwrap_or_else(|| format!("rt-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
        let (repos, stack, view) = match load_spec(&req.repositories, &req.env_spec) {
            Ok(x) => x,
            Err(e) => return error(e),
        };
        let token = runtimes::new_token();
        let scratch = if req.editable {
            let dir = self.scratch_root.join(format!(
                "{name}-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ));
            let record = RuntimeRecord {
                version: RECORD_VERSION,
                name: name.clone(),
                uid: proc.uid,
                gid: peer.gid,
                root_pid: req.root_pid,
                root_start_time: proc.start_time,
                env_spec: req.env_spec.clone(),
                stack: stack_strings(&stack),
                repositories: req.repositories.clone(),
                token: token.clone(),
                created_unix: unix_secs(SystemTime::now()),
            };
            // The record goes first: a restarted service can always find
            // the edits of a runtime that has any.
            match Scratch::open(&dir).and_then(|s| record.write(&dir).map(|()| s)) {
                Ok(s) => Some(Arc::new(s)),
                Err(e) => {
                    let _ = crate::scratch::remove_all(&dir);
                    return error(format!(
                        "cannot create the scratch directory {}: {e}",
                        dir.display()
                    ));
                }
            }
        } else {
            None
        };
        let started = self.runtimes.start(NewRuntime {
            name,
            uid: proc.uid,
            gid: peer.gid,
            root_pid: req.root_pid,
            spec: req.env_spec.clone(),
            stack,
            view,
            repos: Arc::new(repos),
            scratch: scratch.clone(),
            token,
        });
        match started {
            Ok(rt) => Reply::One(Response::Mounted {
                runtime: runtime_info(&rt),
                token: rt.token.clone(),
            }),
            Err(e) => {
                if let Some(s) = scratch {
                    let _ = s.remove();
                }
                error(e)
            }
        }
    }

    fn editable(&self, peer: &Peer, name: &str) -> Result<(Arc<Runtime>, Arc<Scratch>), String> {
        let rt = self.find(peer, name)?;
        let scratch = rt.scratch.clone().ok_or_else(|| {
            format!("runtime '{name}' is read-only; only runtimes started with --edit have edits")
        })?;
        Ok((rt, scratch))
    }

    fn commit(&self, peer: Peer, req: CommitRequest) -> Reply {
        let (rt, scratch) = match self.editable(&peer, &req.name) {
            Ok(x) => x,
            Err(e) => return error(e),
        };
        let tags = match req
            .tags
            .iter()
            .map(|t| TagSpec::parse(t))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(t) => t,
            Err(e) => return error(e),
        };
        // One commit or reset of a runtime at a time, and no edit while it
        // runs: each edit lands before the snapshot or in the new view.
        let _busy = rt.editing.lock().unwrap_or_else(|p| p.into_inner());
        let _edits = scratch.hold_edits();
        let current = rt.view();
        let repos = current.repos.clone();
        let run =
            || -> crate::repo::Result<(crate::repo::Digest, Vec<crate::repo::Digest>, View)> {
                let repo = repos.primary();
                let layer = commit::commit_scratch(repo, scratch.upper(), &current.view)?.layer;
                let mut stack = rt.stack();
                stack.push(layer);
                let digest = match req.kind {
                    CommitKind::Layer => layer,
                    CommitKind::Platform => commit::commit_platform(repo, stack.clone())?,
                };
                for t in &tags {
                    repo.push_tag(t, digest, repos.author())?;
                }
                let items =
                    repos.resolve_stack(&EnvSpec::parse(&stack_strings(&stack).join("+"))?)?;
                let view = View::build(&repos.read_stack_manifests(&items)?)?;
                Ok((digest, stack, view))
            };
        let (digest, stack, view) = match run() {
            Ok(x) => x,
            Err(e) => return error(format!("commit of runtime '{}' failed: {e}", rt.name)),
        };
        // The edits leave the scratch and the new stack takes over as one
        // step for every reader; deleting them can wait.
        let detached = {
            let _all = scratch.hold_all();
            let detached = scratch.detach();
            self.runtimes
                .replace_view(&rt, Arc::new(view), Some(stack.clone()));
            detached
        };
        if let Err(e) = RuntimeRecord::update_stack(scratch.root(), &stack_strings(&stack)) {
            // Only matters if the service restarts: then the runtime would
            // come back on its old stack, with the committed edits still in
            // its scratch. Say so, but the commit itself is done.
            tracing::warn!(runtime = %rt.name, error = %e, "cannot update the runtime record");
        }
        match detached {
            Ok(trash) => {
                if let Err(e) = crate::scratch::remove_all(&trash) {
                    // The next start of the service empties the work dir.
                    tracing::warn!(path = %trash.display(), error = %e, "cannot delete committed edits");
                }
            }
            // The edits stay in the scratch, over the same content in the
            // new layer: the view is right, the scratch is not empty.
            Err(e) => {
                return error(format!(
                    "committed {digest}, but the scratch directory {} could not be emptied: {e}",
                    scratch.root().display()
                ))
            }
        }
        tracing::info!(runtime = %rt.name, %digest, "committed");
        Reply::One(Response::Committed {
            digest: digest.to_string(),
            runtime: runtime_info(&rt),
        })
    }

    fn reset(&self, peer: Peer, name: &str, paths: &[String]) -> Reply {
        let (rt, scratch) = match self.editable(&peer, name) {
            Ok(x) => x,
            Err(e) => return error(e),
        };
        let _busy = rt.editing.lock().unwrap_or_else(|p| p.into_inner());
        let _edits = scratch.hold_edits();
        let done = {
            let _all = scratch.hold_all();
            let done = if paths.is_empty() {
                scratch.clear()
            } else {
                paths
                    .iter()
                    .try_for_each(|p| scratch.reset_path(&self.relative(p)))
            };
            // Even after a failure some edits may be gone: a fresh view.
            self.runtimes
                .replace_view(&rt, rt.view().view.clone(), None);
            done
        };
        if let Err(e) = done {
            return error(format!("reset of runtime '{}' failed: {e}", rt.name));
        }
        Reply::One(Response::Reset {
            runtime: runtime_info(&rt),
        })
    }

    /// A path given as `/spfs/x`, `/x` or `x`, relative to the mount.
    fn relative(&self, p: &str) -> PathBuf {
        let path = std::path::Path::new(p);
        let rel = path
            .strip_prefix(&self.mountpoint)
            .or_else(|_| path.strip_prefix("/"))
            .unwrap_or(path);
        rel.to_owned()
    }

    fn find(&self, peer: &Peer, name: &str) -> Result<Arc<Runtime>, String> {
        self.runtimes
            .find(name, (peer.uid != 0).then_some(peer.uid))
            .ok_or_else(|| format!("no runtime named '{name}'"))
    }
}

/// Opens `locations` (the primary first) and builds the view of `spec`.
pub(crate) fn load_spec(
    locations: &[RepositoryLocation],
    spec: &str,
) -> crate::repo::Result<(RepositorySet, Vec<crate::repo::Digest>, View)> {
    let mut opened = Vec::with_capacity(locations.len());
    for loc in locations {
        opened.push(FsRepository::open(&loc.root)?.with_tag_namespace(loc.tag_namespace.clone()));
    }
    if opened.is_empty() {
        return Err(crate::repo::Error::Config {
            source_name: "mount request".into(),
            reason: "no repository given".into(),
        });
    }
    let primary = opened.remove(0);
    let repos = RepositorySet::new(primary, opened, TagAuthor("spfs-fuse-macos".into()));
    let spec = EnvSpec::parse(spec)?;
    let stack = repos.resolve_stack(&spec)?;
    let view = View::build(&repos.read_stack_manifests(&stack)?)?;
    Ok((repos, stack.into_iter().map(|s| s.digest).collect(), view))
}

/// Seconds since the Unix epoch (0 for earlier times).
fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The stack's digests as text, bottom-up.
fn stack_strings(stack: &[crate::repo::Digest]) -> Vec<String> {
    stack.iter().map(|d| d.to_string()).collect()
}

impl Handler for State {
    fn handle(&self, peer: Peer, request: Request) -> Reply {
        match request {
            Request::Status => Reply::One(Response::Status(ServiceStatus {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                protocol: protocol::VERSION,
                pid: std::process::id(),
                mountpoint: self.mountpoint.display().to_string(),
                runtimes: self.visible_runtimes(&peer).len(),
                uptime_secs: self.started.elapsed().as_secs(),
            })),
            Request::Mount(req) => self.mount(peer, req),
            Request::ListRuntimes => Reply::One(Response::Runtimes {
                runtimes: self.visible_runtimes(&peer),
            }),
            Request::RuntimeInfo { name } => match self.find(&peer, &name) {
                Ok(rt) => Reply::One(Response::Runtime {
                    runtime: runtime_info(&rt),
                }),
                Err(message) => error(message),
            },
            Request::StopRuntime { name } => match self.find(&peer, &name) {
                Ok(rt) => {
                    let members = self.runtimes.members(rt.id);
                    let mut signalled = Vec::new();
                    for pid in members {
                        // Only signal processes of the runtime's owner.
                        if sys::process::proc_info(pid).is_some_and(|p| p.uid == rt.uid)
                            && sys::process::signal(pid, libc::SIGTERM).is_ok()
                        {
                            signalled.push(pid);
                        }
                    }
                    if signalled.is_empty() {
                        self.runtimes.end(rt.id);
                    }
                    Reply::One(Response::Stopping {
                        runtime: rt.name.clone(),
                        signalled,
                    })
                }
                Err(message) => error(message),
            },
            Request::Shutdown => Reply::ThenShutdown(Response::ShuttingDown),
            Request::Commit(req) => self.commit(peer, req),
            Request::Reset { name, paths } => self.reset(peer, &name, &paths),
            Request::Subscribe => {
                let changes = self.runtimes.subscribe();
                let first = Response::Subscribed {
                    runtimes: self.visible_runtimes(&peer),
                };
                let (tx, rx) = mpsc::channel();
                std::thread::spawn(move || {
                    for change in changes {
                        let (rt, event) = match change {
                            Change::Started(rt) => {
                                let e = RuntimeEvent::Started {
                                    runtime: runtime_info(&rt),
                                };
                                (rt, e)
                            }
                            Change::Updated(rt) => {
                                let e = RuntimeEvent::Updated {
                                    runtime: runtime_info(&rt),
                                };
                                (rt, e)
                            }
                            Change::Ended(rt) => {
                                let e = RuntimeEvent::Ended {
                                    name: rt.name.clone(),
                                    id: rt.id,
                                };
                                (rt, e)
                            }
                        };
                        if peer.uid != 0 && rt.uid != peer.uid {
                            continue;
                        }
                        if tx.send(Response::Event(event)).is_err() {
                            break;
                        }
                    }
                });
                Reply::Stream(first, rx)
            }
        }
    }

    fn shutdown(&self) {
        let _ = self.shutdown.lock().expect("shutdown lock").send(());
    }
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
            .expect("signal handlers can be installed");
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
    let state = Arc::new(State {
        runtimes: runtimes.clone(),
        mountpoint: mounted.mountpoint().to_owned(),
        started: Instant::now(),
        shutdown: Mutex::new(tx),
        scratch_root: opts.scratch_root.clone(),
    });
    std::thread::spawn(move || control.serve(state));
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
