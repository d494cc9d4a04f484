//! What each FUSE request does, as functions that return `Result<T,
//! Errno>` (the adapter in `fs/mod.rs` writes the replies).
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

use fuser::{AccessFlags, Errno, FileAttr, FileType, FopenFlags, INodeNo, Request};

use super::handles::{Handles, Open, Snapshot};
use super::inode;
use crate::overlay::{attr_of, Caller, Index, Overlay, SetAttr};
use crate::repo::{NodeId, NodeKind};
use crate::runtimes::{ReadOnlyView, Runtimes, Tree};
use crate::sys;
use crate::sys::dir::Meta;

/// Kernel cache lifetime of anything below the root, and of the root's
/// attributes.
pub(crate) const TTL_VIEW: Duration = Duration::from_secs(24 * 60 * 60);
/// Kernel cache lifetime of names in the root.
pub(crate) const TTL_ROOT_ENTRY: Duration = Duration::ZERO;

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
pub(crate) struct Entry {
    pub(crate) attr: FileAttr,
    pub(crate) entry_ttl: Duration,
}

/// An open file or directory.
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
}

/// Size and free space, as `statfs` replies carry them.
pub(crate) type FsStats = sys::fd::FsStats;

fn entry_ttl(parent: u64) -> Duration {
    if parent == inode::ROOT {
        TTL_ROOT_ENTRY
    } else {
        TTL_VIEW
    }
}

fn repo_errno(e: &crate::repo::Error) -> Errno {
    Errno::from_i32(e.errno())
}

fn caller(req: &Request, umask: u32) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
        umask,
    }
}

fn lower_type(k: NodeKind) -> FileType {
    match k {
        NodeKind::Dir => FileType::Directory,
        NodeKind::File => FileType::RegularFile,
        NodeKind::Symlink => FileType::Symlink,
    }
}

/// The filesystem's state and its requests.
pub(crate) struct Ops {
    runtimes: Arc<Runtimes>,
    handles: Handles,
    mounted: SystemTime,
    owner: (u32, u32),
    /// A name whose lookup panics (tests of the panic guard only).
    panic_on_lookup: Option<Vec<u8>>,
}

impl Ops {
    pub(crate) fn new(runtimes: Arc<Runtimes>, owner: (u32, u32)) -> Self {
        Ops {
            runtimes,
            handles: Handles::default(),
            mounted: SystemTime::now(),
            owner,
            panic_on_lookup: fault_injection(),
        }
    }

    /// The one resolution step of every request.
    fn resolve(&self, req: &Request, ino: INodeNo) -> Result<Target, Errno> {
        let (tree, node) = if ino.0 == inode::ROOT {
            match self.runtimes.tree_for_caller(req.pid(), req.uid()) {
                Some(t) => (t, 0),
                None => return Ok(Target::Outside),
            }
        } else {
            let (slot, node) = inode::decode(ino.0).ok_or(Errno::ESTALE)?;
            let tree = self.runtimes.tree_for_slot(slot).ok_or(Errno::ESTALE)?;
            (tree, node.0)
        };
        // Below the root the inode names its tree: the caller has to be
        // the tree's user (or root).
        if tree.uid() != req.uid() && req.uid() != 0 {
            return Err(Errno::EACCES);
        }
        match tree {
            Tree::ReadOnly(v) if (node as usize) < v.view.len() => {
                Ok(Target::ReadOnly(v, NodeId(node)))
            }
            Tree::Editable(o) if o.contains(node) => Ok(Target::Editable(o, node)),
            _ => Err(Errno::ESTALE),
        }
    }

    fn ro_attr(&self, v: &ReadOnlyView, id: NodeId) -> Result<FileAttr, Errno> {
        let n = v.view.get(id).ok_or(Errno::ESTALE)?;
        let kind = lower_type(n.kind());
        Ok(FileAttr {
            ino: INodeNo(inode::encode(v.slot, id)),
            size: n.size(),
            blocks: n.size().div_ceil(512),
            atime: v.time,
            mtime: v.time,
            ctime: v.time,
            crtime: v.time,
            kind,
            perm: n.permissions() as u16,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            uid: v.uid,
            gid: v.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
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

    pub(crate) fn lookup(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
    ) -> Result<Entry, Errno> {
        if self.panic_on_lookup.as_deref() == Some(name.as_bytes()) {
            panic!("fault injection: a lookup of {name:?} panics");
        }
        match self.resolve(req, parent)? {
            Target::Outside => Err(Errno::ENOENT),
            Target::ReadOnly(v, dir) => match v.view.lookup(dir, name.as_bytes()) {
                Some(id) => Ok(Entry {
                    attr: self.ro_attr(&v, id)?,
                    entry_ttl: entry_ttl(parent.0),
                }),
                None if parent.0 == inode::ROOT => Err(Errno::ENOENT),
                None => {
                    // A negative entry: the kernel remembers the name is missing.
                    let mut attr = self.root_attr();
                    attr.ino = INodeNo(0);
                    Ok(Entry {
                        attr,
                        entry_ttl: TTL_VIEW,
                    })
                }
            },
            Target::Editable(o, dir) => {
                let _in = o.enter(false)?;
                let (_, attr) = o.lookup(dir, name.as_bytes())?;
                Ok(Entry {
                    attr,
                    entry_ttl: entry_ttl(parent.0),
                })
            }
        }
    }

    pub(crate) fn getattr(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: Option<u64>,
    ) -> Result<FileAttr, Errno> {
        // Not routed: the root looks the same to everyone.
        if ino.0 == inode::ROOT {
            return Ok(self.root_attr());
        }
        match self.resolve(req, ino)? {
            Target::Outside => Err(Errno::ESTALE),
            Target::ReadOnly(v, id) => self.ro_attr(&v, id),
            Target::Editable(o, idx) => {
                let _in = o.enter(false)?;
                match o.getattr(idx) {
                    Ok(a) => Ok(a),
                    // Unlinked but still open: the open file knows.
                    Err(e) => match fh.and_then(|fh| self.handles.file(fh, ino.0).ok()) {
                        Some(h) => {
                            let f = h.as_file().ok_or(e)?;
                            let m = Meta::of_file(f).map_err(Errno::from)?;
                            Ok(attr_of(ino.0, &m))
                        }
                        None => Err(e),
                    },
                }
            }
        }
    }

    pub(crate) fn readlink(&self, req: &Request, ino: INodeNo) -> Result<Vec<u8>, Errno> {
        match self.resolve(req, ino)? {
            Target::Outside => Err(Errno::EINVAL),
            Target::ReadOnly(v, id) => {
                let n = v.view.get(id).ok_or(Errno::ESTALE)?;
                if n.kind() != NodeKind::Symlink {
                    return Err(Errno::EINVAL);
                }
                let payload = n.payload().ok_or(Errno::EIO)?;
                let path = v.repos.payload_path(&payload).map_err(|e| repo_errno(&e))?;
                std::fs::read(path).map_err(Errno::from)
            }
            Target::Editable(o, idx) => {
                let _in = o.enter(false)?;
                o.readlink(idx)
            }
        }
    }

    pub(crate) fn open(&self, req: &Request, ino: INodeNo, flags: i32) -> Result<Opened, Errno> {
        let write = crate::overlay::is_write(flags);
        match self.resolve(req, ino)? {
            Target::Outside => Err(Errno::EISDIR),
            Target::ReadOnly(v, id) => {
                let n = v.view.get(id).ok_or(Errno::ESTALE)?;
                if n.kind() == NodeKind::Dir {
                    return Err(Errno::EISDIR);
                }
                if write {
                    return Err(Errno::EROFS);
                }
                let payload = n.payload().ok_or(Errno::EIO)?;
                let file = v.repos.open_payload(&payload).map_err(|e| {
                    tracing::error!(error = %e, "cannot open a payload");
                    repo_errno(&e)
                })?;
                // Payloads never change: pages stay cached across opens,
                // and there is nothing to do on close(2) (no FLUSH).
                Ok(Opened {
                    fh: self.handles.insert(ino.0, Open::File(file)),
                    flags: FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_NOFLUSH,
                })
            }
            Target::Editable(o, idx) => {
                let _in = o.enter(write)?;
                let file = o.open(idx, flags)?;
                // Writes go straight to the scratch file (no writeback
                // cache), so a close has nothing to flush or report.
                Ok(Opened {
                    fh: self.handles.insert(ino.0, Open::File(file)),
                    flags: FopenFlags::FOPEN_NOFLUSH,
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
        let file = h.as_file().ok_or(Errno::EBADF)?;
        read_at(file, offset, size).map_err(Errno::from)
    }

    pub(crate) fn release(&self, ino: INodeNo, fh: u64) -> Result<(), Errno> {
        self.handles.remove(fh, ino.0)
    }

    pub(crate) fn opendir(&self, req: &Request, ino: INodeNo) -> Result<Opened, Errno> {
        match self.resolve(req, ino)? {
            Target::Outside => Ok(Opened {
                fh: self.handles.insert(ino.0, Open::ReadOnlyDir(None)),
                flags: FopenFlags::empty(),
            }),
            Target::ReadOnly(v, id) => {
                if v.view.get(id).is_some_and(|n| n.kind() != NodeKind::Dir) {
                    return Err(Errno::ENOTDIR);
                }
                // A directory below the root never changes under its
                // inode: the kernel may keep its listing across opens.
                let flags = if ino.0 == inode::ROOT {
                    FopenFlags::empty()
                } else {
                    FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE
                };
                Ok(Opened {
                    fh: self.handles.insert(ino.0, Open::ReadOnlyDir(Some((v, id)))),
                    flags,
                })
            }
            Target::Editable(o, dir) => {
                let entries = {
                    let _in = o.enter(false)?;
                    o.listing(dir)?
                };
                let snapshot = Snapshot {
                    overlay: o,
                    dir,
                    entries,
                };
                Ok(Opened {
                    fh: self.handles.insert(ino.0, Open::EditableDir(snapshot)),
                    flags: FopenFlags::empty(),
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
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        match &h.open {
            Open::File(_) => return Err(Errno::ENOTDIR),
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
                let parent = v.view.get(*id).map_or(NodeId::ROOT, |n| n.parent());
                let children = v.view.children(*id).filter_map(|c| {
                    let n = v.view.get(c)?;
                    Some((c, lower_type(n.kind()), n.name().as_bytes()))
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
                for (i, (idx, kind, name)) in s.rows().enumerate().skip(skip) {
                    let attr = if plus {
                        // Entries deleted since the snapshot are skipped.
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
        })
    }

    pub(crate) fn releasedir(&self, ino: INodeNo, fh: u64) -> Result<(), Errno> {
        self.handles.remove(fh, ino.0)
    }

    pub(crate) fn statfs(&self, req: &Request) -> Result<Option<FsStats>, Errno> {
        Ok(match self.resolve(req, INodeNo(inode::ROOT))? {
            Target::Outside => None,
            Target::ReadOnly(v, _) => sys::fd::statvfs(v.repos.primary().root()),
            Target::Editable(o, _) => {
                let _in = o.enter(false)?;
                let s = o.scratch().upper().statvfs().map_err(Errno::from)?;
                Some(sys::fd::FsStats::from(&s))
            }
        })
    }

    pub(crate) fn access(
        &self,
        req: &Request,
        ino: INodeNo,
        mask: AccessFlags,
    ) -> Result<(), Errno> {
        let (v, id) = match self.resolve(req, ino)? {
            // Editable runtimes: the kernel checks (default_permissions).
            Target::Editable(..) => return Ok(()),
            _ if mask.contains(AccessFlags::W_OK) => return Err(Errno::EROFS),
            Target::Outside => return Ok(()),
            Target::ReadOnly(v, id) => (v, id),
        };
        let perm = v.view.get(id).ok_or(Errno::ESTALE)?.permissions();
        let root = req.uid() == 0;
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
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
    ) -> Result<Vec<u8>, Errno> {
        match self.resolve(req, ino)? {
            Target::Editable(o, idx) => {
                let _in = o.enter(false)?;
                o.getxattr(idx, name)
            }
            _ => Err(Errno::NO_XATTR),
        }
    }

    pub(crate) fn listxattr(&self, req: &Request, ino: INodeNo) -> Result<Vec<u8>, Errno> {
        match self.resolve(req, ino)? {
            Target::Editable(o, idx) => {
                let _in = o.enter(false)?;
                o.listxattr(idx)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The overlay and node an edit of `ino` goes to; EROFS outside
    /// editable runtimes.
    fn editable(&self, req: &Request, ino: INodeNo) -> Result<(Arc<Overlay>, Index), Errno> {
        match self.resolve(req, ino)? {
            Target::Editable(o, idx) => Ok((o, idx)),
            Target::Outside | Target::ReadOnly(..) => Err(Errno::EROFS),
        }
    }

    pub(crate) fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        set: SetAttr,
        fh: Option<u64>,
    ) -> Result<FileAttr, Errno> {
        let (o, idx) = self.editable(req, ino)?;
        if ino.0 == inode::ROOT {
            // Shared by all runtimes: see `root_attr`.
            return Err(Errno::EPERM);
        }
        let _in = o.enter(true)?;
        let handle = match fh {
            Some(fh) if set.size.is_some() => Some(self.handles.file(fh, ino.0)?),
            _ => None,
        };
        o.setattr(idx, set, handle.as_ref().and_then(|h| h.as_file()))
    }

    pub(crate) fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> Result<Entry, Errno> {
        let (o, dir) = self.editable(req, parent)?;
        let _in = o.enter(true)?;
        let c = o.mknod(dir, name.as_bytes(), mode, caller(req, umask))?;
        Ok(Entry {
            attr: c.attr,
            entry_ttl: entry_ttl(parent.0),
        })
    }

    pub(crate) fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> Result<Entry, Errno> {
        let (o, dir) = self.editable(req, parent)?;
        let _in = o.enter(true)?;
        let c = o.mkdir(dir, name.as_bytes(), mode, caller(req, umask))?;
        Ok(Entry {
            attr: c.attr,
            entry_ttl: entry_ttl(parent.0),
        })
    }

    pub(crate) fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        target: &std::path::Path,
    ) -> Result<Entry, Errno> {
        let (o, dir) = self.editable(req, parent)?;
        let _in = o.enter(true)?;
        let c = o.symlink(
            dir,
            name.as_bytes(),
            target.as_os_str().as_bytes(),
            caller(req, 0),
        )?;
        Ok(Entry {
            attr: c.attr,
            entry_ttl: entry_ttl(parent.0),
        })
    }

    pub(crate) fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr) -> Result<(), Errno> {
        let (o, dir) = self.editable(req, parent)?;
        let _in = o.enter(true)?;
        o.unlink(dir, name.as_bytes())
    }

    pub(crate) fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr) -> Result<(), Errno> {
        let (o, dir) = self.editable(req, parent)?;
        let _in = o.enter(true)?;
        o.rmdir(dir, name.as_bytes())
    }

    pub(crate) fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        new_parent: INodeNo,
        new_name: &OsStr,
        flags: u32,
    ) -> Result<(), Errno> {
        let (o, dir) = self.editable(req, parent)?;
        let _in = o.enter(true)?;
        let new_dir = match self.resolve(req, new_parent)? {
            Target::Editable(n, new_dir) if Arc::ptr_eq(&o, &n) => new_dir,
            _ => return Err(Errno::EXDEV),
        };
        o.rename(dir, name.as_bytes(), new_dir, new_name.as_bytes(), flags)
    }

    pub(crate) fn link(&self, req: &Request, ino: INodeNo) -> Result<Entry, Errno> {
        // Hard links are not kept by layers; tools fall back to copies.
        self.editable(req, ino)?;
        Err(Errno::EPERM)
    }

    pub(crate) fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<u32, Errno> {
        let (o, _) = self.editable(req, ino)?;
        let _in = o.enter(true)?;
        let h = self.handles.file(fh, ino.0)?;
        let file = h.as_file().ok_or(Errno::EBADF)?;
        file.write_all_at(data, offset).map_err(Errno::from)?;
        o.scratch().touched();
        u32::try_from(data.len()).map_err(|_| Errno::EINVAL)
    }

    pub(crate) fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: u64,
        datasync: bool,
    ) -> Result<(), Errno> {
        match self.resolve(req, ino)? {
            Target::Editable(..) => {
                let h = self.handles.file(fh, ino.0)?;
                let file = h.as_file().ok_or(Errno::EBADF)?;
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
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> Result<(Entry, Opened), Errno> {
        let (o, dir) = self.editable(req, parent)?;
        let _in = o.enter(true)?;
        let (c, file) = o.create(dir, name.as_bytes(), mode, flags, caller(req, umask))?;
        let fh = self.handles.insert(c.attr.ino.0, Open::File(file));
        Ok((
            Entry {
                attr: c.attr,
                entry_ttl: entry_ttl(parent.0),
            },
            Opened {
                fh,
                flags: FopenFlags::FOPEN_NOFLUSH,
            },
        ))
    }

    pub(crate) fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
    ) -> Result<(), Errno> {
        let (o, idx) = self.editable(req, ino)?;
        let _in = o.enter(true)?;
        o.setxattr(idx, name, value, flags)
    }

    pub(crate) fn removexattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
    ) -> Result<(), Errno> {
        let (o, idx) = self.editable(req, ino)?;
        let _in = o.enter(true)?;
        o.removexattr(idx, name)
    }
}

/// Reads up to `size` bytes at `offset` (fewer only at the end of the file).
fn read_at(file: &File, offset: u64, size: u32) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; size as usize];
    let mut done = 0usize;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
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
