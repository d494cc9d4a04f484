//! What each FUSE request does, as functions that return `Result<T,
//! Errno>` (the adapter in `fs/mod.rs` writes the replies). They take a
//! plain [`Context`] (who asks), not the kernel's request, so each is
//! unit-tested on both trees without a kernel (`ops/tests.rs`).
//!
//! Every request starts with one resolution of its inode to a [`Target`]:
//! the root resolves by the caller (routed to its runtime), any other
//! inode by the slot it names. What both kinds of tree answer (names,
//! attributes, opens, listings, access) the target's tree answers through
//! one trait ([`FsTree`]: the read-only view and the editable overlay);
//! the changes only an overlay makes go to it directly. An editable
//! operation runs *entered* in the runtime's scratch (see
//! `Scratch::enter`).

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{AccessFlags, Errno, FileAttr, FileType, FopenFlags, INodeNo};

use super::handles::{EditableFile, Handle, Handles, Open};
use super::inode;
use super::tree::{self, Found, FsTree, Node};
use crate::overlay::{attr_of, Caller, Index, Overlay, SetAttr};
use crate::repo::NodeId;
use crate::runtimes::{ReadOnlyView, Runtimes, Tree};
use crate::scratch::Entered;
use crate::sys;
use crate::sys::dir::Meta;

/// Kernel cache lifetime of anything below the root, and of the root's
/// attributes.
pub(crate) const TTL_VIEW: Duration = Duration::from_secs(24 * 60 * 60);
/// Kernel cache lifetime of names in the root.
pub(crate) const TTL_ROOT_ENTRY: Duration = Duration::ZERO;
/// Kernel cache lifetime of a name an editable runtime does not have: a
/// build asks for the same missing names many times a second. Short,
/// though a reset tells the kernel what appeared (the overlay's
/// `missing_names_found`): a reply racing a reset is wrong this long.
pub(crate) const TTL_MISSING_EDITABLE: Duration = Duration::from_secs(1);

/// Who makes a request: all an operation needs of the kernel's request
/// (fuse-backend-rs's `Context`), so operations run without a kernel in
/// unit tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Context {
    /// The caller's user.
    pub(crate) uid: u32,
    /// The caller's group.
    pub(crate) gid: u32,
    /// The calling thread (on Linux the kernel sends the thread id; the
    /// router maps it to its process).
    pub(crate) pid: u32,
}

impl From<&fuser::Request> for Context {
    fn from(req: &fuser::Request) -> Self {
        Context {
            uid: req.uid(),
            gid: req.gid(),
            pid: req.pid(),
        }
    }
}

/// What an inode number means to a caller.
pub(crate) enum Target {
    /// The root, for a process outside any runtime: empty, read-only.
    Outside,
    /// A node of a read-only view.
    ReadOnly(Arc<ReadOnlyView>, NodeId),
    /// A node of an editable overlay.
    Editable(Arc<Overlay>, Index),
}

impl Target {
    /// The tree and node, for the operations both trees answer; `None`
    /// outside every runtime.
    fn tree(self) -> Option<(Arc<dyn FsTree>, Node)> {
        match self {
            Target::Outside => None,
            Target::ReadOnly(v, id) => Some((v, id.0)),
            Target::Editable(o, idx) => Some((o, idx)),
        }
    }
}

/// A name's inode, with the time the kernel may keep the name.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) attr: FileAttr,
    pub(crate) entry_ttl: Duration,
}

/// An open file or directory.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) fh: u64,
    pub(crate) flags: FopenFlags,
}

/// One row of a listing, at `offset` (the next row's offset is `offset`'s
/// successor).
pub(crate) struct DirRow {
    pub(crate) offset: u64,
    pub(crate) ino: u64,
    pub(crate) kind: FileType,
    pub(crate) name: Vec<u8>,
    /// For `readdirplus`.
    pub(crate) attr: Option<FileAttr>,
}

/// A listing from some offset on.
pub(crate) struct Listing {
    pub(crate) rows: Vec<DirRow>,
    pub(crate) entry_ttl: Duration,
    /// The overlay whose nodes the rows are, which counts the kernel's
    /// lookups of them (read-only views have nothing to count).
    counted: Option<Arc<Overlay>>,
}

impl Listing {
    /// Row `row` reached the kernel in a `readdirplus` reply: the kernel
    /// now holds its inode (except for "." and "..", which it never counts).
    pub(crate) fn sent_plus(&self, row: &DirRow) {
        if row.name == b"." || row.name == b".." {
            return;
        }
        if let (Some(o), Some((_, node))) = (&self.counted, inode::decode(row.ino)) {
            o.remember(node.0);
        }
    }
}

/// Size and free space, as `statfs` replies carry them.
pub(crate) type FsStats = sys::fd::FsStats;

/// Attempts to enter an editable view that moves (a commit or reset each
/// time) before giving up with ESTALE.
const ENTER_TRIES: usize = 8;

/// An open directory's flags: the kernel keeps the listing across opens,
/// but not the root's (another runtime lists another root).
fn dir_cache_flags(ino: u64) -> FopenFlags {
    if ino == inode::ROOT {
        FopenFlags::empty()
    } else {
        FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE
    }
}

fn entry_ttl(parent: u64) -> Duration {
    if parent == inode::ROOT {
        TTL_ROOT_ENTRY
    } else {
        TTL_VIEW
    }
}

fn caller(cx: &Context, umask: u32) -> Caller {
    Caller {
        uid: cx.uid,
        gid: cx.gid,
        umask,
    }
}

/// The filesystem's state and its requests.
pub(crate) struct Ops {
    runtimes: Arc<Runtimes>,
    handles: Arc<Handles>,
    mounted: SystemTime,
    owner: (u32, u32),
    /// A name whose lookup panics (tests of the panic guard only).
    panic_on_lookup: Option<Vec<u8>>,
}

/// An open waiting for a payload to be fetched from a remote, or hashed
/// (a large one's first open): finished off the request thread.
pub(crate) struct PendingOpen {
    payload: crate::repo::Digest,
    size: u64,
    ino: u64,
    handles: Arc<Handles>,
    tree: Arc<dyn FsTree>,
    node: Node,
    flags: i32,
}

impl PendingOpen {
    /// Fetches the payload (verified, stored in the local repository;
    /// one download for concurrent opens), then opens the file. Failure
    /// is EIO to the caller, logged with the reason.
    pub(crate) fn finish(self) -> Result<Opened, Errno> {
        let prepared = self
            .tree
            .repos()
            .open_payload_checked(&self.payload, self.size)
            .map_err(|e| crate::layers::cannot_open(&e))?;
        let _in = self.tree.enter(crate::overlay::is_write(self.flags))?;
        let (open, flags) = self.tree.open_prepared(self.node, self.flags, prepared)?;
        Ok(Opened {
            fh: self.handles.insert(self.ino, open),
            flags,
        })
    }
}

impl Ops {
    pub(crate) fn new(runtimes: Arc<Runtimes>, owner: (u32, u32)) -> Self {
        Ops {
            runtimes,
            handles: Arc::new(Handles::default()),
            mounted: SystemTime::now(),
            owner,
            panic_on_lookup: fault_injection(),
        }
    }

    /// The one resolution step of every request.
    fn resolve(&self, cx: &Context, ino: INodeNo) -> Result<Target, Errno> {
        let (tree, node) = if ino.0 == inode::ROOT {
            match self.runtimes.tree_for_caller(cx.pid, cx.uid) {
                Some(t) => (t, 0),
                None => return Ok(Target::Outside),
            }
        } else {
            let (slot, node) = inode::decode(ino.0).ok_or(Errno::ESTALE)?;
            let tree = self.runtimes.tree_for_slot(slot).ok_or(Errno::ESTALE)?;
            (tree, node.0)
        };
        // Below the root the inode names its tree. Its user's processes
        // (and root) go straight to it; a process of another uid must be a
        // member of the runtime (one that switched uid), found by ancestry.
        if ino.0 != inode::ROOT && tree.uid() != cx.uid && cx.uid != 0 {
            let member = self
                .runtimes
                .tree_for_caller(cx.pid, cx.uid)
                .is_some_and(|t| t.slot() == tree.slot());
            if !member {
                return Err(Errno::EACCES);
            }
        }
        match tree {
            Tree::ReadOnly(v) if (node as usize) < v.layers.view.len() => {
                Ok(Target::ReadOnly(v, NodeId(node)))
            }
            Tree::Editable(o) if o.contains(node) => Ok(Target::Editable(o, node)),
            _ => Err(Errno::ESTALE),
        }
    }

    /// The root's attributes, the same for every caller: the kernel keeps
    /// one copy for all processes, and checks permissions against it
    /// (`default_permissions`), so caller-dependent attributes would leak
    /// from one runtime to another and cost a `GETATTR` on every path walk.
    /// Owned by the service's user, mode 0755; a service run by root may
    /// serve runtimes of several users, so its root is 1777 (like `/tmp`)
    /// and each user's editable runtime can add top-level entries. Writes
    /// outside editable runtimes are refused by the service, not by mode.
    pub(crate) fn root_attr(&self) -> FileAttr {
        FileAttr {
            ino: INodeNo(inode::ROOT),
            size: 0,
            blocks: 0,
            atime: self.mounted,
            mtime: self.mounted,
            ctime: self.mounted,
            crtime: self.mounted,
            kind: FileType::Directory,
            perm: if self.owner.0 == 0 { 0o1777 } else { 0o755 },
            nlink: 2,
            uid: self.owner.0,
            gid: self.owner.1,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    /// A negative entry: the kernel remembers for `ttl` that the name is
    /// missing.
    fn negative_entry(&self, ttl: Duration) -> Entry {
        let mut attr = self.root_attr();
        attr.ino = INodeNo(0);
        Entry {
            attr,
            entry_ttl: ttl,
        }
    }

    pub(crate) fn lookup(
        &self,
        cx: &Context,
        parent: INodeNo,
        name: &OsStr,
    ) -> Result<Entry, Errno> {
        if self.panic_on_lookup.as_deref() == Some(name.as_bytes()) {
            panic!("fault injection: a lookup of {name:?} panics");
        }
        let (target, _in) = self.resolve_entered(cx, parent, false)?;
        let (tree, dir) = target.tree().ok_or(Errno::ENOENT)?;
        Ok(match tree.lookup(dir, name.as_bytes())? {
            Found::Entry(attr) => Entry {
                attr,
                entry_ttl: entry_ttl(parent.0),
            },
            Found::Missing(ttl) => self.negative_entry(ttl),
        })
    }

    pub(crate) fn getattr(
        &self,
        cx: &Context,
        ino: INodeNo,
        fh: Option<u64>,
    ) -> Result<FileAttr, Errno> {
        // Not routed: the root looks the same to everyone.
        if ino.0 == inode::ROOT {
            return Ok(self.root_attr());
        }
        let (target, _in) = self.resolve_entered(cx, ino, false)?;
        let (tree, node) = target.tree().ok_or(Errno::ESTALE)?;
        tree.getattr(node).or_else(|e| {
            // Unlinked but still open: the open file knows.
            let h = fh
                .and_then(|fh| self.handles.file(fh, ino.0).ok())
                .or_else(|| self.handles.any_editable_on(ino.0))
                .ok_or(e)?;
            let f = h.as_editable().ok_or(e)?.bound.read().1.clone();
            let m = Meta::of_file(&f).map_err(Errno::from)?;
            Ok(attr_of(ino.0, &m))
        })
    }

    pub(crate) fn readlink(&self, cx: &Context, ino: INodeNo) -> Result<Vec<u8>, Errno> {
        let (target, _in) = self.resolve_entered(cx, ino, false)?;
        let (tree, node) = target.tree().ok_or(Errno::EINVAL)?;
        tree.readlink(node)
    }

    /// Opens `ino`. A file whose payload is not local yet (of a read-only
    /// view, or a lower file of an editable runtime, to read or to copy
    /// up) is not opened here: the caller finishes the returned
    /// [`PendingOpen`] off the request thread, so a download never holds
    /// up the others.
    pub(crate) fn open(
        &self,
        cx: &Context,
        ino: INodeNo,
        flags: i32,
    ) -> Result<Result<Opened, PendingOpen>, Errno> {
        let write = crate::overlay::is_write(flags);
        let (target, _in) = self.resolve_entered(cx, ino, write)?;
        let (tree, node) = target.tree().ok_or(Errno::EISDIR)?;
        if let Some((payload, size)) = tree.payload_to_prepare(node, flags)? {
            return Ok(Err(PendingOpen {
                payload,
                size,
                ino: ino.0,
                handles: self.handles.clone(),
                tree,
                node,
                flags,
            }));
        }
        let (open, flags) = tree.open(node, flags)?;
        Ok(Ok(Opened {
            fh: self.handles.insert(ino.0, open),
            flags,
        }))
    }

    pub(crate) fn read(
        &self,
        ino: INodeNo,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> Result<Vec<u8>, Errno> {
        let h = self.handles.file(fh, ino.0)?;
        if let Some(file) = h.as_file() {
            return read_at(file?, offset, size).map_err(Errno::from);
        }
        let ef = h.as_editable().ok_or(Errno::EBADF)?;
        let file = match ef.current() {
            Some(f) => f,
            // The runtime moved to a new view since the last read.
            None => {
                let (o, _) = self.slot_overlay(ino)?;
                let _in = o.enter(false)?;
                self.rebind(&o, ef)?
            }
        };
        read_at(&file, offset, size).map_err(Errno::from)
    }

    pub(crate) fn release(&self, ino: INodeNo, fh: u64) -> Result<(), Errno> {
        self.handles.remove(fh, ino.0)
    }

    pub(crate) fn opendir(&self, cx: &Context, ino: INodeNo) -> Result<Opened, Errno> {
        let (target, _in) = self.resolve_entered(cx, ino, false)?;
        let Some((tree, node)) = target.tree() else {
            return Ok(Opened {
                fh: self.handles.insert(ino.0, Open::ReadOnlyDir(None)),
                flags: FopenFlags::empty(),
            });
        };
        let open = tree.opendir(node)?;
        // Below the root a listing may stay with the kernel across opens
        // (a read-only directory never changes; see the trees for an
        // editable one).
        Ok(Opened {
            fh: self.handles.insert(ino.0, open),
            flags: dir_cache_flags(ino.0),
        })
    }

    /// The rows of an open directory from `offset` on (with attributes
    /// when `plus`).
    pub(crate) fn readdir(
        &self,
        ino: INodeNo,
        fh: u64,
        offset: u64,
        plus: bool,
    ) -> Result<Listing, Errno> {
        let h = self.handles.get(fh, ino.0)?;
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        let (rows, counted) = match &h.open {
            Open::File(..) | Open::EditableFile(_) => return Err(Errno::ENOTDIR),
            Open::ReadOnlyDir(None) => (self.root_rows(skip, plus), None),
            Open::ReadOnlyDir(Some((v, id))) => (tree::read_only_rows(v, *id, skip, plus)?, None),
            Open::EditableDir(s) => (tree::editable_rows(s, skip, plus)?, Some(s.overlay.clone())),
        };
        Ok(Listing {
            rows,
            entry_ttl: entry_ttl(ino.0),
            counted,
        })
    }

    /// The empty root's rows from row `skip` on.
    fn root_rows(&self, skip: usize, plus: bool) -> Vec<DirRow> {
        [&b"."[..], b".."]
            .into_iter()
            .enumerate()
            .skip(skip)
            .map(|(i, name)| DirRow {
                offset: i as u64 + 1,
                ino: inode::ROOT,
                kind: FileType::Directory,
                name: name.to_vec(),
                attr: plus.then(|| self.root_attr()),
            })
            .collect()
    }

    pub(crate) fn releasedir(&self, ino: INodeNo, fh: u64) -> Result<(), Errno> {
        self.handles.remove(fh, ino.0)
    }

    pub(crate) fn statfs(&self, cx: &Context) -> Result<Option<FsStats>, Errno> {
        let (target, _in) = self.resolve_entered(cx, INodeNo(inode::ROOT), false)?;
        match target.tree() {
            None => Ok(None),
            Some((tree, _)) => tree.statfs(),
        }
    }

    pub(crate) fn access(
        &self,
        cx: &Context,
        ino: INodeNo,
        mask: AccessFlags,
    ) -> Result<(), Errno> {
        match self.resolve(cx, ino)?.tree() {
            Some((tree, node)) => tree.access(node, mask, cx.uid),
            None if mask.contains(AccessFlags::W_OK) => Err(Errno::EROFS),
            None => Ok(()),
        }
    }

    pub(crate) fn getxattr(
        &self,
        cx: &Context,
        ino: INodeNo,
        name: &OsStr,
    ) -> Result<Vec<u8>, Errno> {
        let (target, _in) = self.resolve_entered(cx, ino, false)?;
        let (tree, node) = target.tree().ok_or(Errno::NO_XATTR)?;
        tree.getxattr(node, name)
    }

    pub(crate) fn listxattr(&self, cx: &Context, ino: INodeNo) -> Result<Vec<u8>, Errno> {
        let (target, _in) = self.resolve_entered(cx, ino, false)?;
        match target.tree() {
            Some((tree, node)) => tree.listxattr(node),
            None => Ok(Vec::new()),
        }
    }

    /// [`Ops::resolve`], with one operation entered on an editable view
    /// (`edit`: one that changes it; see `Overlay::enter`). An operation
    /// that raced a commit or a reset, which move the runtime to a new
    /// view at the same slot with the same nodes, enters the new view
    /// instead of failing.
    fn resolve_entered(
        &self,
        cx: &Context,
        ino: INodeNo,
        edit: bool,
    ) -> Result<(Target, Option<Entered>), Errno> {
        for _ in 0..ENTER_TRIES {
            let target = self.resolve(cx, ino)?;
            let Target::Editable(o, _) = &target else {
                return Ok((target, None));
            };
            match o.enter(edit) {
                Ok(entered) => return Ok((target, Some(entered))),
                Err(Errno::ESTALE) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Errno::ESTALE)
    }

    /// The overlay and node an edit of `ino` goes to, the edit entered
    /// (see [`Ops::resolve_entered`]); EROFS outside editable runtimes.
    fn enter_editable(
        &self,
        cx: &Context,
        ino: INodeNo,
    ) -> Result<(Arc<Overlay>, Index, Entered), Errno> {
        match self.resolve_entered(cx, ino, true)? {
            (Target::Editable(o, idx), Some(entered)) => Ok((o, idx, entered)),
            _ => Err(Errno::EROFS),
        }
    }

    /// The editable view `ino` belongs to (by its slot, whoever asks).
    fn slot_overlay(&self, ino: INodeNo) -> Result<(Arc<Overlay>, Index), Errno> {
        let (slot, node) = inode::decode(ino.0).ok_or(Errno::EBADF)?;
        match self.runtimes.tree_for_slot(slot) {
            Some(Tree::Editable(o)) => Ok((o, node.0)),
            _ => Err(Errno::ESTALE),
        }
    }

    /// The file an editable handle writes to in `o` (entered by the
    /// caller), bound again if the runtime moved to a new view.
    fn bound(&self, o: &Overlay, h: &Handle) -> Result<Arc<File>, Errno> {
        let ef = h.as_editable().ok_or(Errno::EBADF)?;
        match ef.current() {
            Some(f) => Ok(f),
            None => self.rebind(o, ef),
        }
    }

    /// Binds `ef` to its node in `o`'s view (entered by the caller). A
    /// commit put the file's content into a layer: a writing handle copies
    /// it up again (the same bytes) and goes on, a reading one reads where
    /// the file is now. A node a reset removed keeps its old file, as an
    /// unlinked file does.
    fn rebind(&self, o: &Overlay, ef: &EditableFile) -> Result<Arc<File>, Errno> {
        let mut b = ef.bound.write();
        if b.0 != o.generation() {
            let flags = ef.flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC);
            match o.open(ef.idx, flags) {
                Ok(f) => b.1 = Arc::new(f),
                Err(e) if e == Errno::ESTALE || e == Errno::ENOENT => {}
                Err(e) => return Err(e),
            }
            b.0 = o.generation();
        }
        Ok(b.1.clone())
    }

    /// The overlay and node an edit of `ino` goes to; EROFS outside
    /// editable runtimes.
    fn editable(&self, cx: &Context, ino: INodeNo) -> Result<(Arc<Overlay>, Index), Errno> {
        let (target, _in) = self.resolve_entered(cx, ino, false)?;
        match target {
            Target::Editable(o, idx) => Ok((o, idx)),
            Target::Outside | Target::ReadOnly(..) => Err(Errno::EROFS),
        }
    }

    pub(crate) fn setattr(
        &self,
        cx: &Context,
        ino: INodeNo,
        set: SetAttr,
        fh: Option<u64>,
    ) -> Result<FileAttr, Errno> {
        if ino.0 == inode::ROOT {
            self.editable(cx, ino)?;
            // Shared by all runtimes: see `root_attr`.
            return Err(Errno::EPERM);
        }
        let (o, idx, _in) = self.enter_editable(cx, ino)?;
        let file = match fh {
            Some(fh) if set.size.is_some() => {
                let h = self.handles.file(fh, ino.0)?;
                Some(self.bound(&o, &h)?)
            }
            _ => None,
        };
        o.setattr(idx, set, file.as_deref())
    }

    /// The kernel forgot `count` lookups of inode `ino` (FORGET): an
    /// editable runtime's node may be freed. Inodes of read-only views and
    /// of runtimes that ended need nothing.
    pub(crate) fn forget(&self, ino: u64, count: u64) {
        let Some((slot, node)) = inode::decode(ino) else {
            return;
        };
        if let Some(Tree::Editable(o)) = self.runtimes.tree_for_slot(slot) {
            o.forget(node.0, count);
        }
    }

    pub(crate) fn mknod(
        &self,
        cx: &Context,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
    ) -> Result<Entry, Errno> {
        let (o, dir, _in) = self.enter_editable(cx, parent)?;
        let c = o.mknod(dir, name.as_bytes(), mode, rdev, caller(cx, umask))?;
        o.name_made(dir, name.as_bytes());
        o.remember(c.idx);
        Ok(Entry {
            attr: c.attr,
            entry_ttl: entry_ttl(parent.0),
        })
    }

    pub(crate) fn mkdir(
        &self,
        cx: &Context,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> Result<Entry, Errno> {
        let (o, dir, _in) = self.enter_editable(cx, parent)?;
        let c = o.mkdir(dir, name.as_bytes(), mode, caller(cx, umask))?;
        o.name_made(dir, name.as_bytes());
        o.remember(c.idx);
        Ok(Entry {
            attr: c.attr,
            entry_ttl: entry_ttl(parent.0),
        })
    }

    pub(crate) fn symlink(
        &self,
        cx: &Context,
        parent: INodeNo,
        name: &OsStr,
        target: &std::path::Path,
    ) -> Result<Entry, Errno> {
        let (o, dir, _in) = self.enter_editable(cx, parent)?;
        let c = o.symlink(
            dir,
            name.as_bytes(),
            target.as_os_str().as_bytes(),
            caller(cx, 0),
        )?;
        o.name_made(dir, name.as_bytes());
        o.remember(c.idx);
        Ok(Entry {
            attr: c.attr,
            entry_ttl: entry_ttl(parent.0),
        })
    }

    pub(crate) fn unlink(&self, cx: &Context, parent: INodeNo, name: &OsStr) -> Result<(), Errno> {
        let (o, dir, _in) = self.enter_editable(cx, parent)?;
        o.unlink(dir, name.as_bytes())
    }

    pub(crate) fn rmdir(&self, cx: &Context, parent: INodeNo, name: &OsStr) -> Result<(), Errno> {
        let (o, dir, _in) = self.enter_editable(cx, parent)?;
        o.rmdir(dir, name.as_bytes())
    }

    pub(crate) fn rename(
        &self,
        cx: &Context,
        parent: INodeNo,
        name: &OsStr,
        new_parent: INodeNo,
        new_name: &OsStr,
        flags: u32,
    ) -> Result<(), Errno> {
        let (o, dir, _in) = self.enter_editable(cx, parent)?;
        let new_dir = match self.resolve(cx, new_parent)? {
            Target::Editable(n, new_dir) if Arc::ptr_eq(&o, &n) => new_dir,
            _ => return Err(Errno::EXDEV),
        };
        o.rename(dir, name.as_bytes(), new_dir, new_name.as_bytes(), flags)?;
        o.name_made(new_dir, new_name.as_bytes());
        Ok(())
    }

    pub(crate) fn link(
        &self,
        cx: &Context,
        ino: INodeNo,
        new_parent: INodeNo,
        new_name: &OsStr,
    ) -> Result<Entry, Errno> {
        let (o, src, _in) = self.enter_editable(cx, ino)?;
        let new_dir = match self.resolve(cx, new_parent)? {
            Target::Editable(n, d) if Arc::ptr_eq(&o, &n) => d,
            _ => return Err(Errno::EXDEV),
        };
        let c = o.link(src, new_dir, new_name.as_bytes())?;
        o.name_made(new_dir, new_name.as_bytes());
        o.remember(c.idx);
        Ok(Entry {
            attr: c.attr,
            entry_ttl: entry_ttl(new_parent.0),
        })
    }

    pub(crate) fn write(
        &self,
        cx: &Context,
        ino: INodeNo,
        fh: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<u32, Errno> {
        let (o, _, _in) = self.enter_editable(cx, ino)?;
        let h = self.handles.file(fh, ino.0)?;
        let file = self.bound(&o, &h)?;
        file.write_all_at(data, offset).map_err(Errno::from)?;
        o.scratch().touched();
        u32::try_from(data.len()).map_err(|_| Errno::EINVAL)
    }

    pub(crate) fn fsync(
        &self,
        cx: &Context,
        ino: INodeNo,
        fh: u64,
        datasync: bool,
    ) -> Result<(), Errno> {
        let (target, _in) = self.resolve_entered(cx, ino, false)?;
        match target {
            Target::Editable(o, _) => {
                let h = self.handles.file(fh, ino.0)?;
                let file = self.bound(&o, &h)?;
                if datasync {
                    file.sync_data()
                } else {
                    file.sync_all()
                }
                .map_err(Errno::from)
            }
            _ => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)] // the FUSE request's own fields
    pub(crate) fn create(
        &self,
        cx: &Context,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> Result<(Entry, Opened), Errno> {
        let (o, dir, _in) = self.enter_editable(cx, parent)?;
        let (c, file) = o.create(dir, name.as_bytes(), mode, flags, caller(cx, umask))?;
        o.name_made(dir, name.as_bytes());
        o.remember(c.idx);
        let file = EditableFile::new(&o, c.idx, flags, file);
        let fh = self.handles.insert(c.attr.ino.0, Open::EditableFile(file));
        Ok((
            Entry {
                attr: c.attr,
                entry_ttl: entry_ttl(parent.0),
            },
            Opened {
                fh,
                flags: tree::EDITABLE_OPEN_FLAGS,
            },
        ))
    }

    pub(crate) fn setxattr(
        &self,
        cx: &Context,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
    ) -> Result<(), Errno> {
        let (o, idx, _in) = self.enter_editable(cx, ino)?;
        o.setxattr(idx, name, value, flags)
    }

    pub(crate) fn removexattr(
        &self,
        cx: &Context,
        ino: INodeNo,
        name: &OsStr,
    ) -> Result<(), Errno> {
        let (o, idx, _in) = self.enter_editable(cx, ino)?;
        o.removexattr(idx, name)
    }
}

/// Reads up to `size` bytes at `offset` (fewer only at the end of the file).
fn read_at(file: &File, offset: u64, size: u32) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; size as usize];
    let mut done = 0usize;
    while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
        match file.read_at(rest, offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(done);
    Ok(buf)
}

/// The lookup name that panics, for the test of the panic guard: set by
/// `SPFS_FUSE_FAULT_PANIC_ON_LOOKUP` in builds with the `fault-injection`
/// feature, never otherwise.
fn fault_injection() -> Option<Vec<u8>> {
    if cfg!(feature = "fault-injection") {
        std::env::var_os("SPFS_FUSE_FAULT_PANIC_ON_LOOKUP").map(|v| v.as_bytes().to_vec())
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
