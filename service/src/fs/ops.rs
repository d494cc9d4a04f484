//! What each FUSE request does, as functions that return `Result<T,
//! Errno>` (the adapter in `fs/mod.rs` writes the replies). They take a
//! plain [`Context`] (who asks), not the kernel's request, so each is
//! unit-tested on both trees without a kernel (`ops/tests.rs`).
//!
//! Every request starts with one resolution of its inode to a [`Target`]:
//! the root resolves by the caller (routed to its runtime), any other
//! inode by the slot it names. Then it is answered by the read-only view
//! or the editable overlay the target holds; an editable operation runs
//! *entered* in the runtime's scratch (see `Scratch::enter`).

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{AccessFlags, Errno, FileAttr, FileType, FopenFlags, INodeNo};

use super::handles::{EditableFile, Handle, Handles, Open, Snapshot};
use super::inode;
use crate::overlay::{attr_of, Caller, Index, Overlay, SetAttr};
use crate::repo::{NodeId, NodeKind};
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

/// How the kernel treats an open payload of a read-only view: payloads
/// never change, so pages stay cached across opens, and there is nothing
/// to do on close(2) (no FLUSH) — once the file's content is known right.
/// While a background hash still judges it, its pages are not kept for
/// later opens (those find the verdict).
fn payload_open_flags(check: &Option<Arc<crate::repo::PayloadCheck>>) -> FopenFlags {
    match check {
        None => FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_NOFLUSH,
        Some(_) => FopenFlags::FOPEN_NOFLUSH,
    }
}

/// How the kernel treats an open file of an editable runtime: writes go
/// straight to the scratch file (no writeback cache), so a close has
/// nothing to flush. (An `O_DIRECT` open needs nothing here: the kernel
/// sends its I/O to the service uncached, and still lets it be mapped, as
/// a disk does; the scratch file itself is opened buffered.)
fn editable_open_flags(_flags: i32) -> FopenFlags {
    FopenFlags::FOPEN_NOFLUSH
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
    what: Pending,
}

enum Pending {
    /// A file of a read-only view.
    ReadOnly(Arc<ReadOnlyView>),
    /// A lower file of an editable runtime, read or copied up.
    Editable {
        overlay: Arc<Overlay>,
        idx: Index,
        flags: i32,
    },
}

impl PendingOpen {
    /// Fetches the payload (verified, stored in the local repository;
    /// one download for concurrent opens), then opens the file. Failure
    /// is EIO to the caller, logged with the reason.
    pub(crate) fn finish(self) -> Result<Opened, Errno> {
        let repos = match &self.what {
            Pending::ReadOnly(v) => &v.layers.repos,
            Pending::Editable { overlay, .. } => overlay.repos(),
        };
        let (file, check) = repos
            .open_payload_checked(&self.payload, self.size)
            .map_err(|e| crate::layers::cannot_open(&e))?;
        match self.what {
            Pending::ReadOnly(_) => Ok(Opened {
                flags: payload_open_flags(&check),
                fh: self.handles.insert(self.ino, Open::File(file, check)),
            }),
            // The payload is local now: the open goes on as on the
            // request thread (a copy-up for writing).
            Pending::Editable {
                overlay,
                idx,
                flags,
            } => {
                drop(file);
                let _in = overlay.enter(crate::overlay::is_write(flags))?;
                let file = overlay.open(idx, flags)?;
                let file = EditableFile::new(&overlay, idx, flags, file);
                Ok(Opened {
                    fh: self.handles.insert(self.ino, Open::EditableFile(file)),
                    flags: editable_open_flags(flags),
                })
            }
        }
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

    fn ro_attr(&self, v: &ReadOnlyView, id: NodeId) -> Result<FileAttr, Errno> {
        v.layers
            .attr(id, inode::encode(v.slot, id))
            .ok_or(Errno::ESTALE)
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
        match target {
            Target::Outside => Err(Errno::ENOENT),
            Target::ReadOnly(v, dir) => match v.layers.view.lookup(dir, name.as_bytes()) {
                Some(id) => Ok(Entry {
                    attr: self.ro_attr(&v, id)?,
                    entry_ttl: entry_ttl(parent.0),
                }),
                None if parent.0 == inode::ROOT => Err(Errno::ENOENT),
                None => Ok(self.negative_entry(TTL_VIEW)),
            },
            Target::Editable(o, dir) => match o.lookup(dir, name.as_bytes()) {
                Ok((idx, attr)) => {
                    o.remember(idx);
                    Ok(Entry {
                        attr,
                        entry_ttl: entry_ttl(parent.0),
                    })
                }
                // A negative entry, remembered so a reset can take it back.
                Err(e)
                    if e == Errno::ENOENT
                        && parent.0 != inode::ROOT
                        && o.remember_missing(dir, name.as_bytes()) =>
                {
                    Ok(self.negative_entry(TTL_MISSING_EDITABLE))
                }
                Err(e) => Err(e),
            },
        }
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
        match target {
            Target::Outside => Err(Errno::ESTALE),
            Target::ReadOnly(v, id) => self.ro_attr(&v, id),
            Target::Editable(o, idx) => {
                match o.getattr(idx) {
                    Ok(a) => Ok(a),
                    // Unlinked but still open: the open file knows.
                    Err(e) => match fh
                        .and_then(|fh| self.handles.file(fh, ino.0).ok())
                        .or_else(|| self.handles.any_editable_on(ino.0))
                    {
                        Some(h) => {
                            let f = h.as_editable().ok_or(e)?.bound.read().1.clone();
                            let m = Meta::of_file(&f).map_err(Errno::from)?;
                            Ok(attr_of(ino.0, &m))
                        }
                        None => Err(e),
                    },
                }
            }
        }
    }

    pub(crate) fn readlink(&self, cx: &Context, ino: INodeNo) -> Result<Vec<u8>, Errno> {
        let (target, _in) = self.resolve_entered(cx, ino, false)?;
        match target {
            Target::Outside => Err(Errno::EINVAL),
            Target::ReadOnly(v, id) => v.layers.read_link(id),
            Target::Editable(o, idx) => o.readlink(idx),
        }
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
        if let Some(pending) = self.pending_fetch(&target, ino, flags)? {
            return Ok(Err(pending));
        }
        self.open_target(target, ino, flags).map(Ok)
    }

    /// The open of `target` as a [`PendingOpen`] if it needs a payload
    /// fetched or a large one hashed first; `None`, decided from the
    /// manifest's size and a flag, for the rest.
    fn pending_fetch(
        &self,
        target: &Target,
        ino: INodeNo,
        flags: i32,
    ) -> Result<Option<PendingOpen>, Errno> {
        let write = crate::overlay::is_write(flags);
        let (payload, size, what) = match target {
            Target::ReadOnly(v, id) if !write => {
                let n = v.layers.view.get(*id).ok_or(Errno::ESTALE)?;
                // (A large payload's first hash runs in the background.)
                let prepare = |p: &crate::repo::Digest| {
                    v.layers.repos.fetches_payloads() && v.layers.repos.payload_needs_fetch(p)
                };
                match n.payload() {
                    Some(p) if n.kind() == NodeKind::File && prepare(&p) => {
                        (p, n.size(), Pending::ReadOnly(v.clone()))
                    }
                    _ => return Ok(None),
                }
            }
            // Truncated on open, a copy-up copies no data.
            Target::Editable(o, idx) if !(write && flags & libc::O_TRUNC != 0) => {
                match o.lower_payload_to_prepare(*idx)? {
                    Some((p, size)) => (
                        p,
                        size,
                        Pending::Editable {
                            overlay: o.clone(),
                            idx: *idx,
                            flags,
                        },
                    ),
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(PendingOpen {
            payload,
            size,
            ino: ino.0,
            handles: self.handles.clone(),
            what,
        }))
    }

    /// Opens `target` (resolved, and entered if editable) for `ino`.
    fn open_target(&self, target: Target, ino: INodeNo, flags: i32) -> Result<Opened, Errno> {
        let write = crate::overlay::is_write(flags);
        match target {
            Target::Outside => Err(Errno::EISDIR),
            Target::ReadOnly(v, id) => {
                let n = v.layers.view.get(id).ok_or(Errno::ESTALE)?;
                if n.kind() == NodeKind::Dir {
                    return Err(Errno::EISDIR);
                }
                if write {
                    return Err(Errno::EROFS);
                }
                // A payload of the wrong size is never served short or long.
                let (file, check) = v.layers.open_payload_checked(id)?;
                Ok(Opened {
                    flags: payload_open_flags(&check),
                    fh: self.handles.insert(ino.0, Open::File(file, check)),
                })
            }
            Target::Editable(o, idx) => {
                let file = o.open(idx, flags)?;
                let file = EditableFile::new(&o, idx, flags, file);
                // Writes go straight to the scratch file (no writeback
                // cache), so a close has nothing to flush or report.
                Ok(Opened {
                    fh: self.handles.insert(ino.0, Open::EditableFile(file)),
                    flags: editable_open_flags(flags),
                })
            }
        }
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
        match target {
            Target::Outside => Ok(Opened {
                fh: self.handles.insert(ino.0, Open::ReadOnlyDir(None)),
                flags: FopenFlags::empty(),
            }),
            Target::ReadOnly(v, id) => {
                if v.layers
                    .view
                    .get(id)
                    .is_some_and(|n| n.kind() != NodeKind::Dir)
                {
                    return Err(Errno::ENOTDIR);
                }
                // A directory below the root never changes under its
                // inode: the kernel may keep its listing across opens.
                Ok(Opened {
                    fh: self.handles.insert(ino.0, Open::ReadOnlyDir(Some((v, id)))),
                    flags: dir_cache_flags(ino.0),
                })
            }
            Target::Editable(o, dir) => {
                if o.getattr(dir)?.kind != FileType::Directory {
                    return Err(Errno::ENOTDIR);
                }
                // The kernel may keep the listing across opens: a change
                // through the mount makes it list again (the directory's
                // version changes), and a reset tells it to (runtimes.rs).
                Ok(Opened {
                    fh: self
                        .handles
                        .insert(ino.0, Open::EditableDir(Snapshot::new(o, dir))),
                    flags: dir_cache_flags(ino.0),
                })
            }
        }
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
        let mut rows = Vec::new();
        let mut counted = None;
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        match &h.open {
            Open::File(..) | Open::EditableFile(_) => return Err(Errno::ENOTDIR),
            Open::ReadOnlyDir(None) => {
                for (i, name) in [&b"."[..], b".."].into_iter().enumerate().skip(skip) {
                    rows.push(DirRow {
                        offset: i as u64 + 1,
                        ino: inode::ROOT,
                        kind: FileType::Directory,
                        name: name.to_vec(),
                        attr: plus.then(|| self.root_attr()),
                    });
                }
            }
            Open::ReadOnlyDir(Some((v, id))) => {
                let parent = v.layers.view.get(*id).map_or(NodeId::ROOT, |n| n.parent());
                let children = v.layers.view.children(*id).filter_map(|c| {
                    let n = v.layers.view.get(c)?;
                    Some((c, crate::layers::file_type(n.kind()), n.name().as_bytes()))
                });
                let all = [
                    (*id, FileType::Directory, &b"."[..]),
                    (parent, FileType::Directory, &b".."[..]),
                ]
                .into_iter()
                .chain(children);
                for (i, (node, kind, name)) in all.enumerate().skip(skip) {
                    let attr = if plus {
                        Some(self.ro_attr(v, node)?)
                    } else {
                        None
                    };
                    rows.push(DirRow {
                        offset: i as u64 + 1,
                        ino: inode::encode(v.slot, node),
                        kind,
                        name: name.to_vec(),
                        attr,
                    });
                }
            }
            Open::EditableDir(s) => {
                counted = Some(s.overlay.clone());
                for (i, (idx, kind, name)) in s.rows()?.enumerate().skip(skip) {
                    let attr = if plus {
                        // Entries removed since the snapshot are skipped
                        // (their nodes may be new files' now).
                        let dot = i < 2;
                        if !dot && !s.overlay.is_named(idx, s.dir, name) {
                            continue;
                        }
                        match s.overlay.getattr(idx) {
                            Ok(a) => Some(a),
                            Err(_) => continue,
                        }
                    } else {
                        None
                    };
                    rows.push(DirRow {
                        offset: i as u64 + 1,
                        ino: s.overlay.ino(idx),
                        kind,
                        name: name.to_vec(),
                        attr,
                    });
                }
            }
        }
        Ok(Listing {
            rows,
            entry_ttl: entry_ttl(ino.0),
            counted,
        })
    }

    pub(crate) fn releasedir(&self, ino: INodeNo, fh: u64) -> Result<(), Errno> {
        self.handles.remove(fh, ino.0)
    }

    pub(crate) fn statfs(&self, cx: &Context) -> Result<Option<FsStats>, Errno> {
        let (target, _in) = self.resolve_entered(cx, INodeNo(inode::ROOT), false)?;
        Ok(match target {
            Target::Outside => None,
            Target::ReadOnly(v, _) => sys::fd::statvfs(v.layers.repos.primary().root()),
            Target::Editable(o, _) => {
                let s = o.scratch().upper().statvfs().map_err(Errno::from)?;
                Some(sys::fd::FsStats::from(&s))
            }
        })
    }

    pub(crate) fn access(
        &self,
        cx: &Context,
        ino: INodeNo,
        mask: AccessFlags,
    ) -> Result<(), Errno> {
        let (v, id) = match self.resolve(cx, ino)? {
            // Editable runtimes: the kernel checks (default_permissions).
            Target::Editable(..) => return Ok(()),
            _ if mask.contains(AccessFlags::W_OK) => return Err(Errno::EROFS),
            Target::Outside => return Ok(()),
            Target::ReadOnly(v, id) => (v, id),
        };
        let perm = v.layers.view.get(id).ok_or(Errno::ESTALE)?.permissions();
        let root = cx.uid == 0;
        let has = |bit: u32| perm & (bit << 6) != 0 || root && perm & (bit * 0o111) != 0;
        if mask.contains(AccessFlags::X_OK) && !has(1)
            || mask.contains(AccessFlags::R_OK) && !has(4) && !root
        {
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    pub(crate) fn getxattr(
        &self,
        cx: &Context,
        ino: INodeNo,
        name: &OsStr,
    ) -> Result<Vec<u8>, Errno> {
        let (target, _in) = self.resolve_entered(cx, ino, false)?;
        match target {
            Target::Editable(o, idx) => o.getxattr(idx, name),
            _ => Err(Errno::NO_XATTR),
        }
    }

    pub(crate) fn listxattr(&self, cx: &Context, ino: INodeNo) -> Result<Vec<u8>, Errno> {
        let (target, _in) = self.resolve_entered(cx, ino, false)?;
        match target {
            Target::Editable(o, idx) => o.listxattr(idx),
            _ => Ok(Vec::new()),
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
                flags: editable_open_flags(flags),
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
