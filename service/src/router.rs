//! Which runtime a FUSE request belongs to.
//!
//! A request carries the calling thread's id. The router maps it to its
//! process, then walks up the process's ancestors to the root of a
//! registered runtime. Every process met on the way is cached with a
//! [`ProcessWatch`], so:
//! - a cache hit costs one liveness check (a zero-timeout poll of a pidfd
//!   on Linux, a `proc_pidinfo` call on macOS), and a recycled pid never
//!   inherits a dead process's runtime;
//! - a member keeps its runtime after its parent exits (its entry stays
//!   while it lives, and its children stop their walk at it).
//!
//! A process first seen after its parents died (a double-forked daemon)
//! cannot be traced by ancestry; it is placed by the runtime token that
//! `run` exports in the environment ([`TOKEN_ENV`]), if that names a live
//! runtime.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::sys::process::{self, ProcInfo, ProcessWatch};

/// Environment variable holding the runtime token of a process tree.
pub const TOKEN_ENV: &str = "SPFS_FUSE_RUNTIME_TOKEN";

/// A runtime's identity inside the service.
pub type RuntimeId = u64;

/// Longest ancestor chain walked (deeper means a loop or a broken /proc).
const MAX_WALK: usize = 4096;

#[derive(Debug)]
struct Entry {
    /// The process the thread belongs to.
    tgid: u32,
    watch: Arc<ProcessWatch>,
    runtime: Option<RuntimeId>,
}

#[derive(Debug)]
struct Root {
    id: RuntimeId,
    watch: Arc<ProcessWatch>,
}

/// Maps callers to runtimes.
#[derive(Debug, Default)]
pub struct Router {
    /// This process, which is never placed in a runtime (the service may
    /// have been started from inside one). `None` when embedded in a
    /// process that itself belongs to a runtime (benchmarks).
    exclude: Option<u32>,
    /// Each runtime's root process, by pid (valid while its watch is alive).
    roots: RwLock<HashMap<u32, Root>>,
    /// Each runtime's token, with the uid of its root process: a token
    /// places only processes of that user (another account that copies it
    /// into its environment is not let in).
    tokens: RwLock<HashMap<String, (RuntimeId, u32)>>,
    /// Keyed by thread id (the process id for main threads).
    cache: RwLock<HashMap<u32, Entry>>,
}

/// Why a root could not be registered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegisterError {
    /// The process is gone.
    #[error("process {0} does not exist")]
    NoSuchProcess(u32),
    /// It roots a runtime already.
    #[error("process {0} is already the root of a runtime")]
    AlreadyRoot(u32),
}

impl Router {
    /// An empty router that never places this process in a runtime.
    pub fn new() -> Self {
        Self {
            exclude: Some(std::process::id()),
            ..Self::default()
        }
    }

    /// An empty router under which this process can be a runtime root too.
    pub fn including_own_process() -> Self {
        Self::default()
    }

    /// Makes process `pid` the root of runtime `id`; processes whose
    /// environment holds `token` join it too.
    pub fn register_root(
        &self,
        pid: u32,
        id: RuntimeId,
        token: &str,
    ) -> Result<ProcInfo, RegisterError> {
        let (watch, info) = ProcessWatch::open(pid).ok_or(RegisterError::NoSuchProcess(pid))?;
        {
            let mut roots = self.roots.write();
            if roots.get(&pid).is_some_and(|r| r.watch.alive()) {
                return Err(RegisterError::AlreadyRoot(pid));
            }
            roots.insert(
                pid,
                Root {
                    id,
                    watch: Arc::new(watch),
                },
            );
        }
        self.tokens.write().insert(token.to_owned(), (id, info.uid));
        // Processes seen outside any runtime may now be inside this one.
        self.cache.write().retain(|_, e| e.runtime.is_some());
        Ok(info)
    }

    /// Forgets runtime `id`: its root, its token and its members.
    pub fn unregister(&self, id: RuntimeId) {
        self.roots.write().retain(|_, r| r.id != id);
        self.tokens.write().retain(|_, (r, _)| *r != id);
        self.cache.write().retain(|_, e| e.runtime != Some(id));
    }

    /// The runtime of the thread `tid`, if any. The hot path of every request.
    pub fn route(&self, tid: u32) -> Option<RuntimeId> {
        {
            let cache = self.cache.read();
            if let Some(e) = cache.get(&tid) {
                if e.watch.alive() && process::thread_in_group(e.tgid, tid) {
                    return e.runtime;
                }
            }
        }
        self.resolve(tid)
    }

    /// The slow path: walk the ancestry, then cache what was learned.
    fn resolve(&self, tid: u32) -> Option<RuntimeId> {
        let tgid = process::thread_group(tid)?;
        // The service may have been started from inside a runtime; it is
        // never a member of one.
        if Some(tgid) == self.exclude {
            return None;
        }
        let mut visited: Vec<(ProcInfo, Arc<ProcessWatch>)> = Vec::new();
        let mut found: Option<Option<RuntimeId>> = None;
        let mut pid = tgid;
        for _ in 0..MAX_WALK {
            if let Some(hit) = self.cached_process(pid) {
                found = Some(hit);
                break;
            }
            let Some((watch, info)) = ProcessWatch::open(pid) else {
                break;
            };
            visited.push((info, Arc::new(watch)));
            let root = self
                .roots
                .read()
                .get(&pid)
                .filter(|r| r.watch.alive())
                .map(|r| r.id);
            if let Some(id) = root {
                found = Some(Some(id));
                break;
            }
            if info.ppid == 0 || info.ppid == pid {
                break;
            }
            pid = info.ppid;
        }
        let walked = found.flatten();
        // Not traceable through its ancestors: each process met is placed
        // by the runtime token in its environment, if any — the caller and
        // its ancestors alike, so that every process carrying a token is
        // in its runtime whichever of them asks first.
        let by_token = |info: &ProcInfo| {
            if self.tokens.read().is_empty() {
                return None;
            }
            let token = process::environ_var(info.pid, TOKEN_ENV)?;
            self.token_runtime(&token, info.uid)
        };
        let own = walked.or_else(|| {
            visited
                .first()
                .filter(|(info, _)| info.pid == tgid)
                .and_then(|(info, _)| by_token(info))
        });
        // Placed before the cache is locked: reading environments is slow.
        let placed: Vec<_> = visited
            .into_iter()
            .map(|(info, watch)| {
                let runtime = match walked {
                    Some(_) => walked,
                    None if info.pid == tgid => own,
                    None => by_token(&info),
                };
                (info, watch, runtime)
            })
            .collect();

        let mut cache = self.cache.write();
        for (info, watch, runtime) in placed {
            if info.pid == tgid && tid != tgid {
                cache.insert(
                    tid,
                    Entry {
                        tgid,
                        watch: watch.clone(),
                        runtime,
                    },
                );
            }
            cache.insert(
                info.pid,
                Entry {
                    tgid: info.pid,
                    watch,
                    runtime,
                },
            );
        }
        own
    }

    /// The runtime `token` names, if a process of `uid` may use it.
    fn token_runtime(&self, token: &str, uid: u32) -> Option<RuntimeId> {
        match self.tokens.read().get(token) {
            Some(&(id, owner)) if owner == uid => Some(id),
            Some(_) => {
                tracing::warn!(
                    uid,
                    "a process carries the runtime token of another user's runtime: ignored"
                );
                None
            }
            None => None,
        }
    }

    /// A valid cached answer for process `pid`.
    fn cached_process(&self, pid: u32) -> Option<Option<RuntimeId>> {
        let cache = self.cache.read();
        cache
            .get(&pid)
            .filter(|e| e.tgid == pid && e.watch.alive())
            .map(|e| e.runtime)
    }

    /// Drops entries of exited processes; returns the runtimes that still
    /// have a live root or a live known member.
    pub fn prune(&self) -> HashSet<RuntimeId> {
        let mut live = HashSet::new();
        self.cache.write().retain(|_, e| {
            let alive = e.watch.alive();
            if alive {
                if let Some(id) = e.runtime {
                    live.insert(id);
                }
            }
            alive
        });
        for r in self.roots.read().values() {
            if r.watch.alive() {
                live.insert(r.id);
            }
        }
        live
    }

    /// Finds live processes whose environment carries `token` (daemons that
    /// left the runtime's tree without ever touching the mount) and makes
    /// them known members of runtime `id`. Returns true if any was found.
    /// A scan of every process: only done when a runtime is about to end.
    pub fn adopt_by_token(&self, id: RuntimeId, token: &str) -> bool {
        let mut found = false;
        let owner = self.tokens.read().get(token).map(|&(_, uid)| uid);
        for pid in process::all_pids() {
            if Some(pid) == self.exclude
                || process::environ_var(pid, TOKEN_ENV).as_deref() != Some(token)
            {
                continue;
            }
            if let Some((watch, info)) = ProcessWatch::open(pid) {
                if Some(info.uid) != owner {
                    continue;
                }
                self.cache.write().insert(
                    pid,
                    Entry {
                        tgid: pid,
                        watch: Arc::new(watch),
                        runtime: Some(id),
                    },
                );
                found = true;
            }
        }
        found
    }

    /// Live processes known to belong to runtime `id`, root included.
    pub fn members(&self, id: RuntimeId) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .roots
            .read()
            .iter()
            .filter(|(_, r)| r.id == id && r.watch.alive())
            .map(|(pid, _)| *pid)
            .collect();
        for (key, e) in self.cache.read().iter() {
            if e.runtime == Some(id) && e.tgid == *key && e.watch.alive() && !pids.contains(key) {
                pids.push(*key);
            }
        }
        pids.sort_unstable();
        pids
    }

    /// Number of cached processes and threads (for status and tests).
    pub fn cached(&self) -> usize {
        self.cache.read().len()
    }
}
