//! The runtimes the service knows: their views, their processes, their
//! lifecycle.
//!
//! Each runtime shows one [`RuntimeView`]: an immutable merged view plus
//! the inode *slot* its inode numbers are made from. Slots are never
//! reused while the service runs, so a runtime whose view changes wholesale
//! (a commit, a reset) moves to a new slot, and no kernel cache entry of an
//! old view can be mistaken for the new one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use crate::overlay::Overlay;
use crate::repo::{Digest, RepositorySet, View};
use crate::router::{RegisterError, Router, RuntimeId};
use crate::scratch::Scratch;

/// What one runtime shows, at one slot.
#[derive(Debug)]
pub struct RuntimeView {
    /// High 32 bits of every inode number of this view.
    pub slot: u32,
    /// The merged layers (the lower view, when editable).
    pub view: Arc<View>,
    pub repos: Arc<RepositorySet>,
    /// Editable runtimes: the layers under the scratch directory.
    pub overlay: Option<Overlay>,
    /// Owner of every file shown.
    pub uid: u32,
    pub gid: u32,
    /// Times reported for every file (the runtime's start).
    pub time: SystemTime,
}

/// A runtime: a process tree and the environment it sees at /spfs.
#[derive(Debug)]
pub struct Runtime {
    pub id: RuntimeId,
    pub name: String,
    pub uid: u32,
    pub root_pid: u32,
    /// The env spec as the user gave it.
    pub spec: String,
    /// Layers (or manifests) of the stack, bottom-up; a commit adds one.
    stack: RwLock<Vec<Digest>>,
    pub editable: bool,
    /// The edits of an editable runtime.
    pub scratch: Option<Arc<Scratch>>,
    /// Held while the edits are committed or reset.
    pub editing: std::sync::Mutex<()>,
    pub created: SystemTime,
    /// Exported to the runtime's processes (see `router::TOKEN_ENV`).
    pub token: String,
    view: RwLock<Arc<RuntimeView>>,
}

impl Runtime {
    /// The view the runtime shows now.
    pub fn view(&self) -> Arc<RuntimeView> {
        self.view.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Layers (or manifests) of the stack, bottom-up.
    pub fn stack(&self) -> Vec<Digest> {
        self.stack.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Everything needed to start a runtime.
pub struct NewRuntime {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub root_pid: u32,
    pub spec: String,
    pub stack: Vec<Digest>,
    pub view: View,
    pub repos: Arc<RepositorySet>,
    /// Editable runtimes: where the edits go.
    pub scratch: Option<Arc<Scratch>>,
    /// Exported to the runtime's processes; from [`new_token`], or kept
    /// from a record when a restarted service re-attaches the runtime.
    pub token: String,
}

/// A fresh runtime token.
pub fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Why a runtime could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("a runtime named '{0}' is already running; choose another --runtime-name")]
    NameTaken(String),
    #[error("invalid runtime name '{0}': use letters, digits, '.', '_' and '-' (at most 64)")]
    BadName(String),
    #[error(transparent)]
    Register(#[from] RegisterError),
}

/// A change to the set of runtimes.
#[derive(Clone, Debug)]
pub enum Change {
    Started(Arc<Runtime>),
    /// Its stack or its edits changed.
    Updated(Arc<Runtime>),
    Ended(Arc<Runtime>),
}

/// All runtimes, and the router that maps callers to them.
#[derive(Default)]
pub struct Runtimes {
    router: Router,
    by_id: RwLock<HashMap<RuntimeId, Arc<Runtime>>>,
    slots: RwLock<HashMap<u32, Arc<RuntimeView>>>,
    next_id: AtomicU64,
    next_slot: AtomicU32,
    listeners: RwLock<Vec<std::sync::mpsc::Sender<Change>>>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl Runtimes {
    /// No runtimes yet; this process is never placed in one.
    pub fn new() -> Self {
        Self::with_router(Router::new())
    }

    /// No runtimes yet; this process may be a runtime root (benchmarks
    /// that read through a mount they serve themselves).
    pub fn including_own_process() -> Self {
        Self::with_router(Router::including_own_process())
    }

    fn with_router(router: Router) -> Self {
        Self {
            router,
            next_id: AtomicU64::new(1),
            next_slot: AtomicU32::new(1),
            ..Default::default()
        }
    }

    /// Starts a runtime rooted at `new.root_pid`.
    pub fn start(&self, new: NewRuntime) -> Result<Arc<Runtime>, StartError> {
        if !valid_name(&new.name) {
            return Err(StartError::BadName(new.name));
        }
        let mut by_id = self.by_id.write().expect("runtimes lock");
        if by_id
            .values()
            .any(|r| r.name == new.name && r.uid == new.uid)
        {
            return Err(StartError::NameTaken(new.name));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let token = new.token;
        self.router.register_root(new.root_pid, id, &token)?;
        let created = SystemTime::now();
        let view = self.new_view(
            Arc::new(new.view),
            new.repos,
            new.scratch.clone(),
            (new.uid, new.gid),
            created,
        );
        let runtime = Arc::new(Runtime {
            id,
            name: new.name,
            uid: new.uid,
            root_pid: new.root_pid,
            spec: new.spec,
            stack: RwLock::new(new.stack),
            editable: new.scratch.is_some(),
            scratch: new.scratch,
            editing: std::sync::Mutex::new(()),
            created,
            token,
            view: RwLock::new(view),
        });
        by_id.insert(id, runtime.clone());
        drop(by_id);
        tracing::info!(runtime = %runtime.name, id, root = runtime.root_pid, spec = %runtime.spec, "runtime started");
        self.notify(Change::Started(runtime.clone()));
        Ok(runtime)
    }

    fn new_view(
        &self,
        view: Arc<View>,
        repos: Arc<RepositorySet>,
        scratch: Option<Arc<Scratch>>,
        (uid, gid): (u32, u32),
        time: SystemTime,
    ) -> Arc<RuntimeView> {
        let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
        let overlay =
            scratch.map(|s| Overlay::new(view.clone(), repos.clone(), s, slot, (uid, gid), time));
        let rv = Arc::new(RuntimeView {
            slot,
            view,
            repos,
            overlay,
            uid,
            gid,
            time,
        });
        self.slots
            .write()
            .expect("runtimes lock")
            .insert(slot, rv.clone());
        rv
    }

    /// The view a caller (thread id, user id) sees; `None` outside any
    /// runtime, or in a runtime of another user.
    pub fn view_for_caller(&self, tid: u32, uid: u32) -> Option<Arc<RuntimeView>> {
        let id = self.router.route(tid)?;
        let rt = self.by_id.read().expect("runtimes lock").get(&id)?.clone();
        (rt.uid == uid).then(|| rt.view())
    }

    /// The runtime of a caller, if any (same rules as `view_for_caller`).
    pub fn runtime_for_caller(&self, tid: u32, uid: u32) -> Option<Arc<Runtime>> {
        let id = self.router.route(tid)?;
        let rt = self.by_id.read().expect("runtimes lock").get(&id)?.clone();
        (rt.uid == uid).then_some(rt)
    }

    /// The view that owns inode slot `slot`.
    pub fn view_for_slot(&self, slot: u32) -> Option<Arc<RuntimeView>> {
        self.slots
            .read()
            .expect("runtimes lock")
            .get(&slot)
            .cloned()
    }

    /// A runtime by id.
    pub fn get(&self, id: RuntimeId) -> Option<Arc<Runtime>> {
        self.by_id.read().expect("runtimes lock").get(&id).cloned()
    }

    /// A runtime by name, among those of user `uid` (any user if `None`).
    pub fn find(&self, name: &str, uid: Option<u32>) -> Option<Arc<Runtime>> {
        self.by_id
            .read()
            .expect("runtimes lock")
            .values()
            .find(|r| r.name == name && uid.is_none_or(|u| u == r.uid))
            .cloned()
    }

    /// All runtimes, oldest first.
    pub fn list(&self) -> Vec<Arc<Runtime>> {
        let mut v: Vec<_> = self
            .by_id
            .read()
            .expect("runtimes lock")
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|r| r.id);
        v
    }

    /// Moves runtime `rt` to a new view (after a commit or a reset): a new
    /// inode slot, so nothing the kernel cached of the old view is reused.
    /// `stack`, if given, replaces the runtime's stack. Subscribers hear
    /// of it (with the scratch's size as it is now).
    pub fn replace_view(&self, rt: &Arc<Runtime>, view: Arc<View>, stack: Option<Vec<Digest>>) {
        let old = rt.view();
        if let Some(s) = &rt.scratch {
            s.next_generation();
        }
        let new = self.new_view(
            view,
            old.repos.clone(),
            rt.scratch.clone(),
            (old.uid, old.gid),
            old.time,
        );
        *rt.view.write().unwrap_or_else(|p| p.into_inner()) = new;
        if let Some(stack) = stack {
            *rt.stack.write().unwrap_or_else(|p| p.into_inner()) = stack;
        }
        self.slots
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&old.slot);
        if let Some(s) = &rt.scratch {
            s.take_changed();
        }
        self.updated(rt);
    }

    /// Ends runtime `id`: its view goes, and its processes see an empty /spfs.
    pub fn end(&self, id: RuntimeId) -> bool {
        let Some(rt) = self.by_id.write().expect("runtimes lock").remove(&id) else {
            return false;
        };
        self.router.unregister(id);
        let slot = rt.view().slot;
        self.slots.write().expect("runtimes lock").remove(&slot);
        if let Some(scratch) = &rt.scratch {
            // As upstream's runtimes: edits not committed end with them.
            if let Err(e) = scratch.remove() {
                tracing::warn!(runtime = %rt.name, error = %e, path = %scratch.root().display(), "could not remove the scratch directory");
            }
        }
        tracing::info!(runtime = %rt.name, id, "runtime ended");
        self.notify(Change::Ended(rt));
        true
    }

    /// Ends every runtime whose root and known members have all exited
    /// and no live process carries its token; returns the ids ended.
    pub fn reap(&self) -> Vec<RuntimeId> {
        let live = self.router.prune();
        let dead: Vec<Arc<Runtime>> = self
            .by_id
            .read()
            .expect("runtimes lock")
            .values()
            .filter(|rt| !live.contains(&rt.id))
            .cloned()
            .collect();
        dead.into_iter()
            .filter(|rt| !self.router.adopt_by_token(rt.id, &rt.token))
            .filter(|rt| self.end(rt.id))
            .map(|rt| rt.id)
            .collect()
    }

    /// Receives every later change.
    pub fn subscribe(&self) -> std::sync::mpsc::Receiver<Change> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.listeners.write().expect("runtimes lock").push(tx);
        rx
    }

    /// Tells subscribers that `rt`'s stack or edits changed.
    pub fn updated(&self, rt: &Arc<Runtime>) {
        self.notify(Change::Updated(rt.clone()));
    }

    /// Tells subscribers about each runtime whose edits changed since the
    /// last call (the service calls it once a second).
    pub fn report_edits(&self) {
        for rt in self.list() {
            if rt.scratch.as_ref().is_some_and(|s| s.take_changed()) {
                self.updated(&rt);
            }
        }
    }

    fn notify(&self, change: Change) {
        self.listeners
            .write()
            .expect("runtimes lock")
            .retain(|tx| tx.send(change.clone()).is_ok());
    }

    /// Live processes of runtime `id`, root first.
    pub fn members(&self, id: RuntimeId) -> Vec<u32> {
        self.router.members(id)
    }

    /// The router (for status and benchmarks).
    pub fn router(&self) -> &Router {
        &self.router
    }
}
