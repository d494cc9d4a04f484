//! The FUSE filesystem mounted at /spfs.
//!
//! Every request is answered from the view of the caller's runtime. Only
//! the root directory is shared; what the kernel may cache follows from
//! that (see [`inode`]):
//!
//! | reply | timeout | why |
//! |---|---|---|
//! | entries in the root | 0 | the same name means another inode to another runtime |
//! | attributes of the root | 1 day | they are the same for every caller ([`SpfsFs::root_attr`]) |
//! | everything deeper, negative entries too | 1 day | the inode belongs to one immutable view |
//! | file pages | kept across opens (`FOPEN_KEEP_CACHE`) | content never changes under an inode |
//! | listings of read-only directories below the root | kept across opens (`FOPEN_CACHE_DIR`) | the same |
//!
//! The cost: each path walk through `/spfs/<name>` asks the service for
//! `<name>` again (one routed lookup); nothing deeper does. A runtime whose
//! view changes moves to a new inode slot instead of invalidating caches.
//!
//! Requests on inodes below the root are not routed: the inode names its
//! view, and the caller only has to be the view's user. Only lookups in
//! the root and its listing depend on who asks.

mod editable;
pub mod inode;

/// Resolves `ino` once: answers from an editable runtime's overlay (and
/// returns) when it belongs to one, replies the error if it is invalid, and
/// otherwise evaluates to the read-only view and node (`None`: the empty
/// root of a caller outside any runtime).
///
/// An editable view's operation runs entered in its scratch (see
/// `Scratch::enter`): with `edit = true` it waits while a commit or reset
/// runs, and any operation through a view that was replaced meanwhile
/// answers ESTALE, which makes the kernel look the path up again.
macro_rules! editable {
    ($self:ident, $req:ident, $ino:expr, $reply:ident, |$t:pat_param| $body:expr) => {
        editable!(edit = false, $self, $req, $ino, $reply, |$t| $body)
    };
    (edit = $edit:expr, $self:ident, $req:ident, $ino:expr, $reply:ident, |$t:pat_param| $body:expr) => {
        match $self.resolve($req, $ino) {
            Ok(Resolved::Editable(target)) => {
                let Some(_entered) = editable::enter(&target, $edit) else {
                    return $reply.error(Errno::ESTALE);
                };
                let $t = &target;
                return $body;
            }
            Ok(Resolved::ReadOnly(at)) => at,
            Err(e) => return $reply.error(e),
        }
    };
}

/// What an inode number means to a caller.
enum Resolved {
    /// A node of a read-only view; `None`: the empty root.
    ReadOnly(Option<Located>),
    Editable(editable::Target),
}

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, KernelConfig, OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr,
    Request,
};

use crate::overlay::{set_time, SetAttr};
use crate::repo::{NodeId, NodeKind};
use crate::runtimes::{RuntimeView, Runtimes};
use crate::sys;

/// Kernel cache lifetime of anything below the root, and of the root's
/// attributes.
const TTL_VIEW: Duration = Duration::from_secs(24 * 60 * 60);
/// Kernel cache lifetime of names in the root.
const TTL_ROOT_ENTRY: Duration = Duration::ZERO;

/// The filesystem: runtimes and the identity of the shared root.
pub struct SpfsFs {
    runtimes: Arc<Runtimes>,
    dirs: editable::DirHandles,
    mounted: SystemTime,
    owner: (u32, u32),
}

type Located = (Arc<RuntimeView>, NodeId);

fn errno(e: &crate::repo::Error) -> Errno {
    Errno::from_i32(e.errno())
}

impl SpfsFs {
    /// A filesystem serving `runtimes`; its root is owned by `owner`.
    pub fn new(runtimes: Arc<Runtimes>, owner: (u32, u32)) -> Self {
        Self {
            runtimes,
            dirs: editable::DirHandles::default(),
            mounted: SystemTime::now(),
            owner,
        }
    }

    fn caller_view(&self, req: &Request) -> Option<Arc<RuntimeView>> {
        self.runtimes.view_for_caller(req.pid(), req.uid())
    }

    /// What `ino` means to the caller: the root resolves to the caller's
    /// runtime, any other inode to the view its slot names. One route per
    /// request at most.
    fn resolve(&self, req: &Request, ino: INodeNo) -> Result<Resolved, Errno> {
        let (view, raw) = if ino.0 == inode::ROOT {
            match self.caller_view(req) {
                Some(v) => (v, NodeId::ROOT.0),
                None => return Ok(Resolved::ReadOnly(None)),
            }
        } else {
            let (slot, node) = inode::decode(ino.0).ok_or(Errno::ESTALE)?;
            let view = self.runtimes.view_for_slot(slot).ok_or(Errno::ESTALE)?;
            (view, node.0)
        };
        match &view.overlay {
            Some(overlay) => {
                if view.uid != req.uid() && req.uid() != 0 {
                    return Err(Errno::EACCES);
                }
                if !overlay.contains(raw) {
                    return Err(Errno::ESTALE);
                }
                Ok(Resolved::Editable((view, raw)))
            }
            None => {
                if view.uid != req.uid() {
                    return Err(Errno::EACCES);
                }
                if raw as usize >= view.view.len() {
                    return Err(Errno::ESTALE);
                }
                Ok(Resolved::ReadOnly(Some((view, NodeId(raw)))))
            }
        }
    }

    /// The view and node of an inode below the root.
    fn node(&self, req: &Request, ino: INodeNo) -> Result<Located, Errno> {
        let (slot, node) = inode::decode(ino.0).ok_or(Errno::ESTALE)?;
        let view = self.runtimes.view_for_slot(slot).ok_or(Errno::ESTALE)?;
        if view.uid != req.uid() {
            return Err(Errno::EACCES);
        }
        if node.0 as usize >= view.view.len() {
            return Err(Errno::ESTALE);
        }
        Ok((view, node))
    }

    fn attr(&self, view: &RuntimeView, id: NodeId) -> FileAttr {
        let n = view.view.get(id).expect("node ids are checked before use");
        let (kind, nlink) = match n.kind() {
            NodeKind::Dir => (FileType::Directory, 2),
            NodeKind::File => (FileType::RegularFile, 1),
            NodeKind::Symlink => (FileType::Symlink, 1),
        };
        FileAttr {
            ino: INodeNo(inode::encode(view.slot, id)),
            size: n.size(),
            blocks: n.size().div_ceil(512),
            atime: view.time,
            mtime: view.time,
            ctime: view.time,
            crtime: view.time,
            kind,
            perm: n.permissions() as u16,
            nlink,
            uid: view.uid,
            gid: view.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
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
    pub fn root_attr(&self) -> FileAttr {
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

    /// (inode, kind, name) of a directory's listing, "." and ".." first.
    fn listing(&self, dir: Option<&Located>) -> Vec<(u64, FileType, Vec<u8>)> {
        let mut out = Vec::new();
        let Some((view, id)) = dir else {
            out.push((inode::ROOT, FileType::Directory, b".".to_vec()));
            out.push((inode::ROOT, FileType::Directory, b"..".to_vec()));
            return out;
        };
        let parent = view
            .view
            .get(*id)
            .map(|n| n.parent())
            .unwrap_or(NodeId::ROOT);
        out.push((
            inode::encode(view.slot, *id),
            FileType::Directory,
            b".".to_vec(),
        ));
        out.push((
            inode::encode(view.slot, parent),
            FileType::Directory,
            b"..".to_vec(),
        ));
        for child in view.view.children(*id) {
            let n = view.view.get(child).expect("children are valid");
            let kind = match n.kind() {
                NodeKind::Dir => FileType::Directory,
                NodeKind::File => FileType::RegularFile,
                NodeKind::Symlink => FileType::Symlink,
            };
            out.push((
                inode::encode(view.slot, child),
                kind,
                n.name().as_bytes().to_vec(),
            ));
        }
        out
    }

    /// The directory an open directory handle lists.
    fn opened_dir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
    ) -> Result<Option<Located>, Errno> {
        if ino.0 == inode::ROOT {
            // opendir stored the slot of the caller's view (0: empty root)
            let slot = fh.0 as u32;
            Ok((slot != 0)
                .then(|| self.runtimes.view_for_slot(slot))
                .flatten()
                .map(|v| (v, NodeId::ROOT)))
        } else {
            self.node(req, ino).map(Some)
        }
    }
}

impl Filesystem for SpfsFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        use fuser::InitFlags;
        for flag in [
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_PARALLEL_DIROPS,
            // O_TRUNC arrives with the open: a copy-up then copies no data.
            InitFlags::FUSE_ATOMIC_O_TRUNC,
        ] {
            // Older kernels lack some; each is only an optimisation.
            let _ = config.add_capabilities(flag);
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let at = editable!(self, req, parent, reply, |t| editable::lookup(
            t, parent, name, reply
        ));
        let Some((view, dir)) = at else {
            return reply.error(Errno::ENOENT);
        };
        let entry_ttl = if parent.0 == inode::ROOT {
            TTL_ROOT_ENTRY
        } else {
            TTL_VIEW
        };
        match view.view.lookup(dir, name.as_bytes()) {
            Some(id) => {
                reply.entry_with_ttls(&TTL_VIEW, &entry_ttl, &self.attr(&view, id), Generation(0))
            }
            None if parent.0 == inode::ROOT => reply.error(Errno::ENOENT),
            None => {
                // A negative entry: the kernel remembers the name is missing.
                let mut attr = self.root_attr();
                attr.ino = INodeNo(0);
                reply.entry_with_ttls(&TTL_VIEW, &TTL_VIEW, &attr, Generation(0))
            }
        }
    }

    fn getattr(&self, req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        // Not routed: the root looks the same to everyone.
        if ino.0 == inode::ROOT {
            return reply.attr(&TTL_VIEW, &self.root_attr());
        }
        let at = editable!(self, req, ino, reply, |t| editable::getattr(
            t, ino, fh, reply
        ));
        match at {
            Some((v, id)) => reply.attr(&TTL_VIEW, &self.attr(&v, id)),
            // Only the root resolves to no view, and it was answered above.
            None => reply.error(Errno::ESTALE),
        }
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let at = editable!(self, req, ino, reply, |t| editable::readlink(t, reply));
        let Some((view, id)) = at else {
            return reply.error(Errno::EINVAL);
        };
        let n = view.view.get(id).expect("checked");
        if n.kind() != NodeKind::Symlink {
            return reply.error(Errno::EINVAL);
        }
        let Some(payload) = n.payload() else {
            return reply.error(Errno::EIO);
        };
        match view.repos.payload_path(&payload) {
            Ok(p) => match std::fs::read(&p) {
                Ok(target) => reply.data(&target),
                Err(e) => reply.error(Errno::from(e)),
            },
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let write = crate::overlay::is_write(flags.0);
        let at = editable!(edit = write, self, req, ino, reply, |t| editable::open(
            t, flags.0, reply
        ));
        // None: the empty root, a directory.
        let Some((view, id)) = at else {
            return reply.error(Errno::EISDIR);
        };
        let n = view.view.get(id).expect("checked");
        if n.kind() == NodeKind::Dir {
            return reply.error(Errno::EISDIR);
        }
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY || flags.0 & libc::O_TRUNC != 0 {
            return reply.error(Errno::EROFS);
        }
        let Some(payload) = n.payload() else {
            return reply.error(Errno::EIO);
        };
        // Payloads never change: pages stay cached across opens, and there
        // is nothing to do on close(2) (no FLUSH round trip).
        match view.repos.open_payload(&payload) {
            Ok(f) => reply.opened(
                FileHandle(sys::fd::into_handle(f)),
                FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_NOFLUSH,
            ),
            Err(e) => {
                tracing::warn!(error = %e, "open");
                reply.error(errno(&e))
            }
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        match sys::fd::read_at(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lo: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        // Nothing is buffered for read-only files.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        sys::fd::close_handle(fh.0);
        reply.ok();
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let at = editable!(self, req, ino, reply, |t| editable::opendir(
            &self.dirs, t, reply
        ));
        match at {
            Some((view, id)) => {
                if view.view.get(id).is_some_and(|n| n.kind() != NodeKind::Dir) {
                    return reply.error(Errno::ENOTDIR);
                }
                if ino.0 == inode::ROOT {
                    return reply.opened(FileHandle(u64::from(view.slot)), FopenFlags::empty());
                }
                // A directory below the root never changes under its inode:
                // the kernel may keep its listing across opens.
                reply.opened(
                    FileHandle(0),
                    FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
                )
            }
            None => reply.opened(FileHandle(0), FopenFlags::empty()),
        }
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if fh.0 & editable::DIR_HANDLE_BIT != 0 {
            return editable::readdir(&self.dirs, fh, offset, reply);
        }
        let dir = match self.opened_dir(req, ino, fh) {
            Ok(d) => d,
            Err(e) => return reply.error(e),
        };
        for (i, (ino, kind, name)) in self
            .listing(dir.as_ref())
            .into_iter()
            .enumerate()
            .skip(offset as usize)
        {
            if reply.add(INodeNo(ino), i as u64 + 1, kind, OsStr::from_bytes(&name)) {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        if fh.0 & editable::DIR_HANDLE_BIT != 0 {
            return editable::readdirplus(&self.dirs, ino, fh, offset, reply);
        }
        let dir = match self.opened_dir(req, ino, fh) {
            Ok(d) => d,
            Err(e) => return reply.error(e),
        };
        let entry_ttl = if ino.0 == inode::ROOT {
            TTL_ROOT_ENTRY
        } else {
            TTL_VIEW
        };
        let listing = self.listing(dir.as_ref());
        for (i, (child, _kind, name)) in listing.into_iter().enumerate().skip(offset as usize) {
            let attr = match (&dir, inode::decode(child)) {
                (Some((view, _)), Some((_, id))) => self.attr(view, id),
                (_, None) | (None, _) => self.root_attr(),
            };
            if reply.add(
                INodeNo(child),
                i as u64 + 1,
                OsStr::from_bytes(&name),
                &entry_ttl,
                &attr,
                Generation(0),
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        if fh.0 & editable::DIR_HANDLE_BIT != 0 {
            self.dirs.remove(fh.0);
        }
        reply.ok();
    }

    fn statfs(&self, req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let at = editable!(
            self,
            req,
            INodeNo(inode::ROOT),
            reply,
            |t| editable::statfs(t, reply)
        );
        let stats = at.and_then(|(v, _)| sys::fd::statvfs(v.repos.primary().root()));
        match stats {
            Some(s) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
            ),
            None => reply.statfs(0, 0, 0, 0, 0, 4096, 255, 4096),
        }
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        // Editable runtimes: the kernel checks (default_permissions).
        let at = editable!(self, req, ino, reply, |_t| reply.ok());
        if mask.contains(AccessFlags::W_OK) {
            return reply.error(Errno::EROFS);
        }
        let Some((view, id)) = at else {
            return reply.ok();
        };
        let perm = view.view.get(id).expect("checked").permissions();
        let need = |bit: u32| perm & (bit << 6) != 0 || req.uid() == 0 && perm & (bit * 0o111) != 0;
        if mask.contains(AccessFlags::X_OK) && !need(1)
            || mask.contains(AccessFlags::R_OK) && !need(4) && req.uid() != 0
        {
            return reply.error(Errno::EACCES);
        }
        reply.ok();
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        editable!(self, req, ino, reply, |t| editable::getxattr(
            t, name, size, reply
        ));
        reply.error(Errno::NO_XATTR);
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        editable!(self, req, ino, reply, |t| editable::listxattr(
            t, size, reply
        ));
        if size == 0 {
            reply.size(0)
        } else {
            reply.data(&[])
        }
    }

    // Changes: editable runtimes apply them, read-only ones answer EROFS.

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<fuser::TimeOrNow>,
        mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(set_time),
            mtime: mtime.map(set_time),
            handle: fh.map(|h| h.0),
        };
        editable!(edit = true, self, req, ino, reply, |t| {
            if ino.0 == inode::ROOT {
                // Shared by all runtimes: see `root_attr`.
                reply.error(Errno::EPERM)
            } else {
                editable::setattr(t, set, reply)
            }
        });
        reply.error(Errno::EROFS);
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        editable!(edit = true, self, req, parent, reply, |t| editable::mknod(
            t, req, parent, name, mode, umask, reply
        ));
        reply.error(Errno::EROFS);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        editable!(edit = true, self, req, parent, reply, |t| editable::mkdir(
            t, req, parent, name, mode, umask, reply
        ));
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        editable!(edit = true, self, req, parent, reply, |t| editable::unlink(
            t, name, reply
        ));
        reply.error(Errno::EROFS);
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        editable!(edit = true, self, req, parent, reply, |t| editable::rmdir(
            t, name, reply
        ));
        reply.error(Errno::EROFS);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        editable!(
            edit = true,
            self,
            req,
            parent,
            reply,
            |t| editable::symlink(t, req, parent, name, target, reply)
        );
        reply.error(Errno::EROFS);
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        new_parent: INodeNo,
        new_name: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        editable!(
            edit = true,
            self,
            req,
            parent,
            reply,
            |t| match self.resolve(req, new_parent) {
                Ok(Resolved::Editable(n)) => {
                    editable::rename(t, name, &n, new_name, flags.bits(), reply)
                }
                Ok(Resolved::ReadOnly(_)) => reply.error(Errno::EXDEV),
                Err(e) => reply.error(e),
            }
        );
        reply.error(Errno::EROFS);
    }

    /// No file here is a terminal or takes ioctls; answering ENOTTY at
    /// once keeps `isatty` (every Python `open`) to one quiet round trip.
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        reply.error(Errno::ENOTTY);
    }

    fn link(&self, req: &Request, ino: INodeNo, _np: INodeNo, _nn: &OsStr, reply: ReplyEntry) {
        // Hard links are not kept by layers; tools fall back to copies.
        editable!(self, req, ino, reply, |_t| reply.error(Errno::EPERM));
        reply.error(Errno::EROFS);
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _wf: fuser::WriteFlags,
        _flags: OpenFlags,
        _lo: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        editable!(edit = true, self, req, ino, reply, |t| editable::write(
            t, fh, offset, data, reply
        ));
        reply.error(Errno::EROFS);
    }

    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        editable!(self, req, ino, reply, |_t| editable::fsync(
            fh, datasync, reply
        ));
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        editable!(edit = true, self, req, parent, reply, |t| editable::create(
            t, req, parent, name, mode, umask, flags, reply
        ));
        reply.error(Errno::EROFS);
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        editable!(edit = true, self, req, ino, reply, |t| editable::setxattr(
            t, name, value, flags, reply
        ));
        reply.error(Errno::EROFS);
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        editable!(edit = true, self, req, ino, reply, |t| {
            editable::removexattr(t, name, reply)
        });
        reply.error(Errno::EROFS);
    }
}
