//! The registry of the runtimes the service serves: their trees, their
//! processes, their slots. Starting, recording and ending them is the
//! manager's (`crate::manager`); nothing here writes a record.
//!
//! A runtime shows one [`Tree`]: a read-only merged view, or an editable
//! overlay of its layers and scratch. Each tree has an inode *slot*, the
//! high half of all its inode numbers. Slots are never reused while the
//! service runs, so no kernel cache entry of an ended runtime can be
//! mistaken for another's. An editable runtime keeps its slot and its
//! nodes for life: a commit or a reset builds the next view over the same
//! node table (every inode the kernel holds stays valid) and tells the
//! kernel to forget the names and attributes that changed.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};
use tokio::sync::broadcast;

use crate::layers::Layers;
use crate::overlay::{LowerChange, Overlay};
use crate::repo::{Digest, RepositorySet, View};
use crate::router::{RegisterError, Router, RuntimeId};
use crate::scratch::Scratch;

/// What a read-only runtime shows, at one slot.
#[derive(Debug)]
pub struct ReadOnlyView {
    /// High 32 bits of every inode number of this view.
    pub slot: u32,
    /// The merged layers, and whose they are.
    pub layers: Layers,
}

/// The inodes of one slot: a read-only view or an editable overlay.
#[derive(Clone, Debug)]
pub enum Tree {
    /// The layers as they are.
    ReadOnly(Arc<ReadOnlyView>),
    /// The layers under a scratch directory.
    Editable(Arc<Overlay>),
}

impl Tree {
    /// The slot the tree's inode numbers are made from.
    pub fn slot(&self) -> u32 {
        match self {
            Tree::ReadOnly(v) => v.slot,
            Tree::Editable(o) => o.slot(),
        }
    }

    /// The merged layers (under the edits, when editable).
    pub fn layers(&self) -> &Arc<View> {
        match self {
            Tree::ReadOnly(v) => &v.layers.view,
            Tree::Editable(o) => o.lower(),
        }
    }

    /// The runtime's user, who owns what the tree shows.
    pub fn uid(&self) -> u32 {
        match self {
            Tree::ReadOnly(v) => v.layers.owner.0,
            Tree::Editable(o) => o.owner().0,
        }
    }
}

/// The editable part of a runtime: its scratch and its current overlay.
#[derive(Debug)]
pub struct Editable {
    scratch: Arc<Scratch>,
    overlay: RwLock<Arc<Overlay>>,
    /// One commit or reset at a time.
    busy: Mutex<()>,
}

impl Editable {
    /// The runtime's edits.
    pub fn scratch(&self) -> &Arc<Scratch> {
        &self.scratch
    }

    /// The overlay shown now.
    pub fn overlay(&self) -> Arc<Overlay> {
        self.overlay.read().clone()
    }
}

/// A runtime's tree: read-only, or editable.
#[derive(Debug)]
pub enum RuntimeTree {
    /// Read-only from its start; `spfs edit` may give it an editable
    /// part, an overlay at the same slot that adopts the view's inodes.
    ReadOnly {
        /// What it shows until then (`reset -r` replaces it, at a new
        /// slot).
        view: RwLock<Arc<ReadOnlyView>>,
        /// Set once it is made editable; never unset.
        edited: std::sync::OnceLock<Editable>,
    },
    /// Changes with commits and resets.
    Editable(Editable),
}

/// A runtime's stack and the env spec it came from.
#[derive(Debug)]
struct Stack {
    /// Layers (or manifests), bottom-up.
    digests: Vec<Digest>,
    /// The env spec as the user gave it (at the start, or to `reset -r`).
    spec: String,
    /// How many of `digests` the env spec named (the rest are commits).
    spec_layers: usize,
}

/// A runtime: a process tree and the environment it sees at /spfs.
#[derive(Debug)]
pub struct Runtime {
    /// Its identity inside the service.
    pub id: RuntimeId,
    /// Its name, unique among its user's runtimes.
    pub name: String,
    /// Its user.
    pub uid: u32,
    /// Its user's group.
    pub gid: u32,
    /// The process whose tree it is.
    pub root_pid: u32,
    /// When it started.
    pub created: SystemTime,
    /// Exported to the runtime's processes (see `router::TOKEN_ENV`).
    pub token: String,
    /// Where its layers are.
    pub repos: Arc<RepositorySet>,
    /// What it shows: a commit adds a layer, `reset -r` replaces it.
    stack: RwLock<Stack>,
    record_dir: Option<std::path::PathBuf>,
    tree: RuntimeTree,
    /// Its edits outlive it (`run --keep-runtime`, `edit
    /// --keep-runtime`), in the primary repository's
    /// `durable_edits/<name>`.
    durable: std::sync::atomic::AtomicBool,
    /// Its record in the primary repository (see [`crate::durable`]);
    /// `None` for runtimes that are not recorded (benchmarks).
    pub repo_record: Mutex<Option<crate::repo::runtime_records::RuntimeRecord>>,
    /// Its payload fetches as last told to subscribers.
    fetches_reported: Mutex<Option<crate::repo::FetchProgress>>,
    /// Slots of read-only views it showed before a `reset -r`: kept for
    /// the processes still inside them, gone with the runtime.
    retired_slots: Mutex<Vec<u32>>,
}

impl Runtime {
    /// The tree the runtime shows now.
    pub fn tree(&self) -> Tree {
        match self.editable() {
            Some(e) => Tree::Editable(e.overlay()),
            None => match &self.tree {
                RuntimeTree::ReadOnly { view, .. } => Tree::ReadOnly(view.read().clone()),
                RuntimeTree::Editable(e) => Tree::Editable(e.overlay()),
            },
        }
    }

    /// Whether it takes edits now (a durable runtime run again with
    /// `--no-edit` shows its edits but takes none).
    pub fn is_editable(&self) -> bool {
        self.editable().is_some_and(|e| !e.scratch.read_only())
    }

    /// Its editable part; `None` for a read-only runtime that was never
    /// made editable.
    pub fn editable(&self) -> Option<&Editable> {
        match &self.tree {
            RuntimeTree::ReadOnly { edited, .. } => edited.get(),
            RuntimeTree::Editable(e) => Some(e),
        }
    }

    /// Whether its edits outlive it (see [`Runtimes::make_durable`]).
    pub fn is_durable(&self) -> bool {
        self.durable.load(Ordering::Acquire)
    }

    /// The directory of its record beside the scratch root, if it has one.
    pub fn record_dir(&self) -> Option<&std::path::Path> {
        self.record_dir.as_deref()
    }

    /// Layers (or manifests) of the stack, bottom-up.
    pub fn stack(&self) -> Vec<Digest> {
        self.stack.read().digests.clone()
    }

    /// The env spec as the user gave it (at the start, or to `reset -r`).
    pub fn spec(&self) -> String {
        self.stack.read().spec.clone()
    }

    /// What the runtime shows now, in short: its env spec, and each layer
    /// committed since, by the first 8 characters of its digest
    /// (`fixture/base+UFTF5WRY`).
    pub fn current_spec(&self) -> String {
        let stack = self.stack.read();
        let mut s = stack.spec.clone();
        for d in stack.digests.iter().skip(stack.spec_layers) {
            s.push('+');
            s.push_str(&d.to_string()[..8]);
        }
        s
    }
}

/// The stack a runtime moves to (`reset -r`).
pub struct Restack {
    /// The env spec as the user gave it.
    pub spec: String,
    /// Its layers, bottom-up.
    pub stack: Vec<Digest>,
    /// Their merged view (see [`Runtimes::view_of`]).
    pub view: Arc<View>,
}

/// Everything needed to start a runtime.
pub struct NewRuntime {
    /// Its name.
    pub name: String,
    /// Its user.
    pub uid: u32,
    /// Its user's group.
    pub gid: u32,
    /// The process whose tree it is.
    pub root_pid: u32,
    /// The env spec as the user gave it.
    pub spec: String,
    /// The stack, bottom-up.
    pub stack: Vec<Digest>,
    /// The merged view of the stack (shared by the runtimes of one stack:
    /// see [`Runtimes::view_of`]).
    pub view: Arc<View>,
    /// Where the layers are.
    pub repos: Arc<RepositorySet>,
    /// Editable runtimes: where the edits go.
    pub scratch: Option<Arc<Scratch>>,
    /// Exported to the runtime's processes; from [`new_token`], or kept
    /// from a record when a restarted service re-attaches the runtime.
    pub token: String,
    /// When it started: now, or its record's time when a restarted
    /// service re-attaches it.
    pub created: Option<SystemTime>,
    /// How many layers of `stack` the env spec named (fewer when commits
    /// before a restart added some); `None`: all.
    pub spec_layers: Option<usize>,
    /// The directory of its record (a read-only runtime's is removed when
    /// it ends; an editable runtime's is its scratch).
    pub record_dir: Option<std::path::PathBuf>,
    /// Its edits outlive it (`scratch` is in `durable_edits/`).
    pub durable: bool,
    /// Its record in the primary repository, if it has one.
    pub repo_record: Option<crate::repo::runtime_records::RuntimeRecord>,
}

/// A fresh runtime token.
pub fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Why a runtime could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The user has a runtime of that name.
    #[error("a runtime named '{}' is already running; choose another --runtime-name", spfs_shared::display::quoted(.0))]
    NameTaken(String),
    /// Not a name a runtime can have.
    #[error("invalid runtime name '{}': use letters, digits, '.', '_' and '-', not first '.' or '-' (at most 64)", spfs_shared::display::quoted(.0))]
    BadName(String),
    /// The root process cannot be a root.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// One runtime at a time ([`Mode::Single`]), and the user has one.
    #[error("runtime '{0}' is running, and this service serves one runtime at a time")]
    OneAtATime(String),
}

/// What the kernel must forget after a reset.
#[derive(Debug)]
enum Forget {
    /// A name whose node was detached.
    Entry {
        parent: u64,
        name: Box<[u8]>,
        child: u64,
    },
    /// Attributes of a directory that stays.
    Attributes(u64),
    /// A name (or its absence: a negative entry) that changed.
    Name { parent: u64, name: Box<[u8]> },
}

/// `forget`, each directory's attributes and listing told once: those
/// of `dirs` (every directory the kernel may know, whose listing it may
/// keep) and of each parent of a name forgotten.
fn with_listings(forget: Vec<Forget>, dirs: Vec<u64>) -> Vec<Forget> {
    let mut listed: std::collections::BTreeSet<u64> = dirs.into_iter().collect();
    let mut out = Vec::with_capacity(forget.len() + listed.len());
    for f in forget {
        match f {
            Forget::Attributes(ino) => {
                listed.insert(ino);
            }
            Forget::Entry { parent, .. } | Forget::Name { parent, .. } => {
                listed.insert(parent);
                out.push(f);
            }
        }
    }
    out.extend(listed.into_iter().map(Forget::Attributes));
    out
}

/// A change to the set of runtimes.
#[derive(Clone, Debug)]
pub enum Change {
    /// A runtime started.
    Started(Arc<Runtime>),
    /// Its stack or its edits changed.
    Updated(Arc<Runtime>),
    /// A runtime ended.
    Ended(Arc<Runtime>),
}

/// Changes a subscriber may fall behind by before it is told to
/// subscribe again.
const CHANGES_BUFFERED: usize = 1024;

/// How callers are placed in runtimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Each process tree sees its own runtime (the caller's pid routes).
    PerProcessTree,
    /// One runtime at a time, seen by all of its user's processes: for a
    /// backend that does not give the caller's pid (see `backend`).
    Single,
}

/// All runtimes, and the router that maps callers to them.
pub struct Runtimes {
    mode: Mode,
    router: Router,
    by_id: RwLock<HashMap<RuntimeId, Arc<Runtime>>>,
    slots: RwLock<HashMap<u32, Tree>>,
    next_id: AtomicU64,
    next_slot: AtomicU32,
    changes: broadcast::Sender<Change>,
    /// Tells the kernel to forget cached entries (set once mounted).
    notifier: std::sync::OnceLock<fuser::Notifier>,
    /// The views runtimes use, by stack.
    views: crate::stack::ViewCache,
    /// One end at a time: a second `end` of the same runtime (the reaper
    /// and a request) waits until the first has recorded it, so nothing
    /// acts on a record that is still being written. A change of
    /// editability holds it too.
    ending: Mutex<()>,
}

impl Default for Runtimes {
    fn default() -> Self {
        Self::new()
    }
}

/// A runtime name is a directory name and a tag component (durable
/// runtimes are `spfs/runtimes/meta/<name>`): letters, digits, '.', '_'
/// and '-', not starting with '.' or '-' (so never "." or ".."), at most 64.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl Runtimes {
    /// No runtimes yet; this process is never placed in one.
    pub fn new() -> Self {
        Self::with_mode(Mode::PerProcessTree)
    }

    /// No runtimes yet, placing callers as `mode` says.
    pub fn with_mode(mode: Mode) -> Self {
        let mut runtimes = Self::with_router(Router::new());
        runtimes.mode = mode;
        runtimes
    }

    /// How callers are placed.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// No runtimes yet; this process may be a runtime root (benchmarks
    /// that read through a mount they serve themselves).
    pub fn including_own_process() -> Self {
        Self::with_router(Router::including_own_process())
    }

    fn with_router(router: Router) -> Self {
        Self {
            mode: Mode::PerProcessTree,
            router,
            by_id: RwLock::default(),
            slots: RwLock::default(),
            next_id: AtomicU64::new(1),
            next_slot: AtomicU32::new(1),
            changes: broadcast::channel(CHANGES_BUFFERED).0,
            notifier: std::sync::OnceLock::new(),
            ending: Mutex::new(()),
            views: Default::default(),
        }
    }

    /// The merged view of `stack`: the one a runtime of the same stack
    /// shows already, or a new one.
    pub fn view_of(
        &self,
        repos: &crate::repo::RepositorySet,
        stack: &[Digest],
    ) -> crate::repo::Result<Arc<View>> {
        self.views.get_or_build(repos, stack)
    }

    fn new_slot(&self) -> u32 {
        self.next_slot.fetch_add(1, Ordering::Relaxed)
    }

    /// Starts a runtime rooted at `new.root_pid`.
    pub fn start(&self, new: NewRuntime) -> Result<Arc<Runtime>, StartError> {
        if !valid_name(&new.name) {
            return Err(StartError::BadName(new.name));
        }
        let mut by_id = self.by_id.write();
        if by_id
            .values()
            .any(|r| r.name == new.name && r.uid == new.uid)
        {
            return Err(StartError::NameTaken(new.name));
        }
        if self.mode == Mode::Single {
            if let Some(other) = by_id.values().find(|r| r.uid == new.uid) {
                return Err(StartError::OneAtATime(other.name.clone()));
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.router.register_root(new.root_pid, id, &new.token)?;
        let created = new.created.unwrap_or_else(SystemTime::now);
        let slot = self.new_slot();
        let view = new.view;
        let tree = match new.scratch {
            None => RuntimeTree::ReadOnly {
                view: RwLock::new(Arc::new(ReadOnlyView {
                    slot,
                    layers: Layers {
                        view,
                        repos: new.repos.clone(),
                        owner: (new.uid, new.gid),
                        time: created,
                    },
                })),
                edited: std::sync::OnceLock::new(),
            },
            Some(scratch) => RuntimeTree::Editable(Editable {
                overlay: RwLock::new(Arc::new(Overlay::new(
                    view,
                    new.repos.clone(),
                    scratch.clone(),
                    slot,
                    (new.uid, new.gid),
                    created,
                ))),
                scratch,
                busy: Mutex::new(()),
            }),
        };
        let runtime = Arc::new(Runtime {
            id,
            name: new.name,
            uid: new.uid,
            gid: new.gid,
            root_pid: new.root_pid,
            created,
            token: new.token,
            repos: new.repos,
            record_dir: new.record_dir,
            stack: RwLock::new(Stack {
                spec_layers: new.spec_layers.unwrap_or(new.stack.len()),
                digests: new.stack,
                spec: new.spec,
            }),
            tree,
            durable: std::sync::atomic::AtomicBool::new(new.durable),
            repo_record: Mutex::new(new.repo_record),
            fetches_reported: Mutex::new(None),
            retired_slots: Mutex::new(Vec::new()),
        });
        self.slots.write().insert(slot, runtime.tree());
        by_id.insert(id, runtime.clone());
        drop(by_id);
        tracing::info!(runtime = %runtime.name, id, root = runtime.root_pid, spec = %runtime.spec(), "runtime started");
        self.notify(Change::Started(runtime.clone()));
        Ok(runtime)
    }

    /// The runtime of a caller (thread id, user id); `None` outside any
    /// runtime. Membership is by ancestry alone: a member that switched to
    /// another uid (`su`, a build user) is still a member, and the files'
    /// modes decide what it may do. In [`Mode::Single`] every process of
    /// the runtime's user is in it (there is no ancestry to go by).
    pub fn runtime_for_caller(&self, tid: u32, uid: u32) -> Option<Arc<Runtime>> {
        if self.mode == Mode::Single {
            return self.by_id.read().values().find(|r| r.uid == uid).cloned();
        }
        let id = self.router.route(tid)?;
        self.by_id.read().get(&id).cloned()
    }

    /// The tree a caller sees (same rules as `runtime_for_caller`).
    pub fn tree_for_caller(&self, tid: u32, uid: u32) -> Option<Tree> {
        if self.mode == Mode::Single {
            return self
                .by_id
                .read()
                .values()
                .find(|r| r.uid == uid)
                .map(|r| r.tree());
        }
        let id = self.router.route(tid)?;
        self.by_id.read().get(&id).map(|rt| rt.tree())
    }

    /// Makes process `pid` one more root of runtime `rt` (a `run` that
    /// joins the runtime in [`Mode::Single`]): the runtime lives while it
    /// does.
    pub fn join(&self, rt: &Runtime, pid: u32) -> Result<(), StartError> {
        self.router.register_root(pid, rt.id, &rt.token)?;
        tracing::info!(runtime = %rt.name, pid, "joined the runtime");
        Ok(())
    }

    /// The tree that owns inode slot `slot`.
    pub fn tree_for_slot(&self, slot: u32) -> Option<Tree> {
        self.slots.read().get(&slot).cloned()
    }

    /// A runtime by id.
    pub fn get(&self, id: RuntimeId) -> Option<Arc<Runtime>> {
        self.by_id.read().get(&id).cloned()
    }

    /// A runtime by name, among those of user `uid` (any user if `None`).
    pub fn find(&self, name: &str, uid: Option<u32>) -> Option<Arc<Runtime>> {
        self.by_id
            .read()
            .values()
            .find(|r| r.name == name && uid.is_none_or(|u| u == r.uid))
            .cloned()
    }

    /// All runtimes, oldest first.
    pub fn list(&self) -> Vec<Arc<Runtime>> {
        let mut v: Vec<_> = self.by_id.read().values().cloned().collect();
        v.sort_by_key(|r| r.id);
        v
    }

    /// Commits the edits of `rt` (editable part `ed`): with every edit
    /// held off, `make` turns the edits into what it returns, the new
    /// merged view and the new stack; then, for the moment it takes to
    /// move the edits out of the scratch, every operation is held off and
    /// the runtime moves to the new view (same slot, same nodes).
    ///
    /// The lock order, for every commit and reset: `busy`, then the
    /// scratch's edits, then its views. If `make` fails nothing changes.
    /// The inner result says whether the committed edits could be removed
    /// from the scratch (if not, they stay, over the same content in the
    /// new layer).
    pub fn commit<T, E>(
        &self,
        rt: &Arc<Runtime>,
        ed: &Editable,
        make: impl FnOnce(&Overlay) -> Result<(T, View, Vec<Digest>), E>,
    ) -> Result<(T, std::io::Result<()>), E> {
        let _busy = ed.busy.lock();
        let _edits = ed.scratch.hold_edits();
        let (made, view, stack) = make(&ed.overlay())?;
        let detached = {
            let _all = ed.scratch.hold_all();
            let detached = ed.scratch.detach();
            // The layer shows exactly what the edits showed: every inode
            // stays (a shell in /spfs, open files), over the new stack.
            self.rebase(ed, Arc::new(view));
            rt.stack.write().digests = stack;
            detached
        };
        self.updated(rt);
        let emptied = detached.map(|trash| {
            // Deleting the committed copies can wait until the view moved.
            if let Err(e) = ed.scratch.remove_staged(&trash) {
                // The next start of the service empties the work dir.
                tracing::warn!(runtime = %rt.name, error = %e, "cannot delete committed edits");
            }
        });
        Ok((made, emptied))
    }

    /// Discards edits of `rt` with `discard` (all, or some paths). The
    /// paths whose content changes become new inodes, and the kernel is
    /// told to forget their names; every other inode stays valid. Same
    /// locks as [`Runtimes::commit`].
    pub fn reset(
        &self,
        rt: &Arc<Runtime>,
        ed: &Editable,
        discard: impl FnOnce(&Scratch) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        self.discard_edits(rt, ed, discard, None)
    }

    /// `reset -r`: `rt` shows stack `to` from now on, every process of
    /// it at once, its edits discarded (as upstream's). An editable
    /// runtime stays at its slot, and the files that are the same in
    /// both stacks keep their inodes (a shell in a directory both have
    /// stays in it); the kernel forgets the rest. A read-only runtime
    /// moves to a new slot: a process inside the old view keeps seeing
    /// it, as one inside upstream's old mount does, until it looks again
    /// from `/spfs`.
    pub fn restack(&self, rt: &Arc<Runtime>, to: Restack) -> std::io::Result<()> {
        if let Some(ed) = rt.editable() {
            return self.discard_edits(rt, ed, |scratch| scratch.clear(), Some(to));
        }
        let RuntimeTree::ReadOnly { view, .. } = &rt.tree else {
            return Ok(());
        };
        // Serialized with `end` (which removes the runtime's slots) and
        // with `set_editable` (which adopts the view shown).
        let _one = self.while_running(rt)?;
        let old = view.read().clone();
        let new = Arc::new(ReadOnlyView {
            slot: self.new_slot(),
            layers: Layers {
                view: to.view,
                repos: old.layers.repos.clone(),
                owner: old.layers.owner,
                time: old.layers.time,
            },
        });
        rt.retired_slots.lock().push(old.slot);
        self.slots
            .write()
            .insert(new.slot, Tree::ReadOnly(new.clone()));
        *view.write() = new;
        *rt.stack.write() = Stack {
            spec_layers: to.stack.len(),
            digests: to.stack,
            spec: to.spec,
        };
        drop(_one);
        self.updated(rt);
        Ok(())
    }

    /// [`Runtimes::reset`], and with `to` [`Runtimes::restack`] of an
    /// editable runtime.
    fn discard_edits(
        &self,
        rt: &Arc<Runtime>,
        ed: &Editable,
        discard: impl FnOnce(&Scratch) -> std::io::Result<()>,
        to: Option<Restack>,
    ) -> std::io::Result<()> {
        let _busy = ed.busy.lock();
        let _edits = ed.scratch.hold_edits();
        let (done, forget) = {
            let _all = ed.scratch.hold_all();
            let before = ed.scratch.upper_entries();
            let old = ed.overlay();
            let done = discard(&ed.scratch);
            // Even after a failure some edits may be gone: a fresh view,
            // of the same stack then.
            let to = to.filter(|_| done.is_ok());
            let lowers = to.as_ref().map(|_| old.node_lowers());
            // The read-only view the runtime had before `edit`: the kernel
            // may remember names missing from it (negative entries).
            let adopted = to.as_ref().and_then(|_| old.adopted_view());
            let layers = match &to {
                Some(to) => {
                    old.stop_adopting();
                    to.view.clone()
                }
                None => old.lower().clone(),
            };
            let view = self.rebase(ed, layers);
            let mut forget = Vec::new();
            if let Some(to) = to {
                *rt.stack.write() = Stack {
                    spec_layers: to.stack.len(),
                    digests: to.stack,
                    spec: to.spec,
                };
                if let Some(adopted) = adopted {
                    forget.extend(
                        view.names_changed_since(&adopted)
                            .into_iter()
                            .map(|(parent, name)| Forget::Name { parent, name }),
                    );
                }
                for (idx, was) in lowers.unwrap_or_default() {
                    match view.lower_change(old.lower(), was, view.lower_of(idx)) {
                        LowerChange::Same => {}
                        LowerChange::Attributes => forget.push(Forget::Attributes(view.ino(idx))),
                        LowerChange::Replaced => {
                            if let Some((parent, name, child)) = view.detach_node(idx) {
                                forget.push(Forget::Entry {
                                    parent,
                                    name,
                                    child,
                                });
                            }
                        }
                    }
                }
            }
            // Names the kernel was told are missing that show now (a
            // whiteout discarded, a new stack).
            forget.extend(
                view.missing_names_found()
                    .into_iter()
                    .map(|(parent, name)| Forget::Name { parent, name }),
            );
            for (path, was_dir) in before {
                if ed.scratch.in_upper(&path) {
                    continue;
                }
                let names: Vec<&[u8]> = path.iter().map(|n| &n[..]).collect();
                // A directory merged with the layers' keeps its inode (a
                // shell in it stays); only its own attributes change.
                let merged_dir = was_dir && view.lower_dir_at(&names);
                if merged_dir {
                    if let Some(idx) = view.node_at(&names) {
                        forget.push(Forget::Attributes(view.ino(idx)));
                    }
                } else if let Some((parent, name, child)) = view.detach_path(&names) {
                    forget.push(Forget::Entry {
                        parent,
                        name,
                        child,
                    });
                }
            }
            (done, with_listings(forget, view.directory_inodes()))
        };
        drop(_edits);
        drop(_busy);
        // Told with no lock held: the kernel may wait for requests that
        // wait for these locks.
        self.forget(&forget);
        self.updated(rt);
        done
    }

    /// Makes `rt` editable (`spfs edit`) or read-only again, its edits
    /// still shown (`spfs edit --off`), live: its processes keep their
    /// working directories and open files. A runtime that started
    /// read-only gets an overlay at its slot that adopts its view's
    /// inodes, over the scratch `open_scratch` makes. Returns false if it
    /// already was as asked.
    pub fn set_editable(
        &self,
        rt: &Arc<Runtime>,
        editable: bool,
        open_scratch: impl FnOnce() -> std::io::Result<Scratch>,
    ) -> std::io::Result<bool> {
        // Serialized with `end` (a runtime that ended gets no slot back)
        // and with itself (two `edit`s would both make a scratch).
        let _one = self.while_running(rt)?;
        if let Some(ed) = rt.editable() {
            let _busy = ed.busy.lock();
            if ed.scratch.read_only() != editable {
                return Ok(false);
            }
            ed.scratch.set_read_only(!editable);
        } else {
            if !editable {
                return Ok(false);
            }
            if !self.adopt(rt, open_scratch()?) {
                return Ok(false);
            }
        }
        tracing::info!(runtime = %rt.name, editable, "runtime editability changed");
        self.updated(rt);
        Ok(true)
    }

    /// Holds off `end` (and every other change of a runtime's tree) for
    /// as long as the guard lives, once `rt` is known to be running:
    /// NotFound if it ended.
    fn while_running(&self, rt: &Runtime) -> std::io::Result<parking_lot::MutexGuard<'_, ()>> {
        let one = self.ending.lock();
        if self.get(rt.id).is_none() {
            return Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        }
        Ok(one)
    }

    /// Gives read-only runtime `rt` an editable part over `scratch`: an
    /// overlay at its slot that adopts its view's inodes (see
    /// [`Runtimes::set_editable`]). False if it has one already. Call
    /// with `ending` held.
    fn adopt(&self, rt: &Arc<Runtime>, scratch: Scratch) -> bool {
        let RuntimeTree::ReadOnly { view, edited } = &rt.tree else {
            return false;
        };
        let view = view.read().clone();
        let scratch = Arc::new(scratch);
        let overlay = Arc::new(Overlay::adopting(
            view.layers.view.clone(),
            rt.repos.clone(),
            scratch.clone(),
            view.slot,
            (rt.uid, rt.gid),
            view.layers.time,
        ));
        let made = edited.set(Editable {
            overlay: RwLock::new(overlay.clone()),
            scratch,
            busy: Mutex::new(()),
        });
        if made.is_err() {
            return false;
        }
        // From here on every request for the slot finds the overlay;
        // those in the read-only view finish there (it never changes).
        self.slots
            .write()
            .insert(view.slot, Tree::Editable(overlay));
        true
    }

    /// `edit --keep-runtime`: the edits of `rt` outlive it from now on,
    /// in the directory `name` beneath `base` (its repository's
    /// `durable_edits/`). An editable runtime's edits move there (two
    /// renames: every open file stays valid; on another file system
    /// nothing moves and this fails); a read-only one gets its (empty,
    /// read-only) scratch there, for `edit` to open. False if it already
    /// was durable.
    pub fn make_durable(
        &self,
        rt: &Arc<Runtime>,
        base: &Path,
        name: &str,
    ) -> std::io::Result<bool> {
        let _one = self.while_running(rt)?;
        if rt.is_durable() {
            return Ok(false);
        }
        match rt.editable() {
            Some(ed) => {
                let _busy = ed.busy.lock();
                let _edits = ed.scratch.hold_edits();
                let _all = ed.scratch.hold_all();
                ed.scratch.move_to(base, &[name.as_bytes()])?;
            }
            None => {
                let scratch = Scratch::open_in(base, &[name.as_bytes()], true)?;
                self.adopt(rt, scratch);
            }
        }
        rt.durable.store(true, Ordering::Release);
        tracing::info!(runtime = %rt.name, "runtime made durable");
        self.updated(rt);
        Ok(true)
    }

    /// Tells the kernel to drop what it caches for these inodes and names.
    fn forget(&self, what: &[Forget]) {
        let Some(n) = self.notifier.get() else {
            return;
        };
        for f in what {
            let told = match f {
                Forget::Entry {
                    parent,
                    name,
                    child,
                } => {
                    let name = std::ffi::OsStr::from_bytes(name);
                    let r = n.inval_entry(fuser::INodeNo(*parent), name);
                    // macFUSE ignores FUSE_NOTIFY_INVAL_ENTRY since 4.9.1
                    // (docs/backends.md); FUSE_NOTIFY_DELETE works there.
                    if cfg!(target_os = "macos") {
                        n.delete(fuser::INodeNo(*parent), fuser::INodeNo(*child), name)
                    } else {
                        r
                    }
                }
                Forget::Attributes(ino) => n.inval_inode(fuser::INodeNo(*ino), 0, 0),
                // (unverified on macOS, where only FUSE_NOTIFY_DELETE is
                // known to work and a missing name has no child to name)
                Forget::Name { parent, name } => {
                    n.inval_entry(fuser::INodeNo(*parent), std::ffi::OsStr::from_bytes(name))
                }
            };
            // ENOENT: the kernel had nothing cached.
            if let Err(e) = told {
                if e.raw_os_error() != Some(libc::ENOENT) {
                    tracing::debug!(error = %e, "cannot tell the kernel to forget an entry");
                }
            }
        }
    }

    /// Lets runtimes tell the kernel to forget entries (after a reset).
    pub fn set_notifier(&self, notifier: fuser::Notifier) {
        let _ = self.notifier.set(notifier);
    }

    /// Moves `ed` to a view of `view` from a new generation on, at the
    /// same slot and with the same inodes (its scratch's views held by
    /// the caller). Operations that entered the old view finish first;
    /// later ones find the new one by its slot.
    fn rebase(&self, ed: &Editable, view: Arc<View>) -> Arc<Overlay> {
        let old = ed.overlay();
        ed.scratch.next_generation();
        let new = Arc::new(old.rebased(view));
        *ed.overlay.write() = new.clone();
        self.slots
            .write()
            .insert(new.slot(), Tree::Editable(new.clone()));
        ed.scratch.take_changed();
        new
    }

    /// Takes runtime `id` out of the registry (no I/O: see
    /// `Manager::end`): its root, members and slots go, so its processes
    /// see an empty /spfs. `None` if it was not running.
    pub fn remove(&self, id: RuntimeId) -> Option<Arc<Runtime>> {
        // Serialized with every change of a runtime's tree (`while_running`).
        let _one = self.ending.lock();
        let rt = self.by_id.write().remove(&id)?;
        self.router.unregister(id);
        let mut slots = self.slots.write();
        slots.remove(&rt.tree().slot());
        for old in rt.retired_slots.lock().drain(..) {
            slots.remove(&old);
        }
        Some(rt)
    }

    /// Tells subscribers that `rt`, removed, has ended.
    pub fn ended(&self, rt: Arc<Runtime>) {
        tracing::info!(runtime = %rt.name, id = rt.id, "runtime ended");
        self.notify(Change::Ended(rt));
    }

    /// The runtimes whose root and known members have all exited and
    /// that no live process carries the token of (still registered: see
    /// `Manager::reap`).
    pub fn dead(&self) -> Vec<Arc<Runtime>> {
        // The runtimes known before the liveness scan: one that starts
        // during it (its root registered after the scan looked) is not
        // judged by it.
        let known: Vec<Arc<Runtime>> = self.by_id.read().values().cloned().collect();
        let live = self.router.prune();
        known
            .into_iter()
            .filter(|rt| !live.contains(&rt.id))
            .filter(|rt| !self.router.adopt_by_token(rt.id, &rt.token))
            .collect()
    }

    /// Receives every later change.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Tells subscribers that `rt`'s stack or edits changed.
    pub fn updated(&self, rt: &Arc<Runtime>) {
        self.notify(Change::Updated(rt.clone()));
    }

    /// Tells subscribers about each runtime whose edits or payload
    /// fetches (a runtime still pulling) changed since the last call (the
    /// service calls it once a second).
    pub fn report_edits(&self) {
        for rt in self.list() {
            let edits = rt.editable().is_some_and(|e| e.scratch.take_changed());
            let fetches = rt.repos.fetch_progress().is_some_and(|now| {
                let mut last = rt.fetches_reported.lock();
                let changed = *last != Some(now);
                *last = Some(now);
                changed
            });
            if edits || fetches {
                self.updated(&rt);
            }
        }
    }

    fn notify(&self, change: Change) {
        // No subscriber is not an error.
        let _ = self.changes.send(change);
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
