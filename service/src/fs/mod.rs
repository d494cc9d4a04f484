//! The FUSE filesystem mounted at /spfs.
//!
//! Two layers, as in fuse-backend-rs and virtiofsd: [`ops`] answers each
//! request with a `Result` (one resolution of the inode, then the
//! read-only view or the editable overlay), and this module is the only
//! place that writes replies. It also catches a panic in a request — it
//! should never happen — logs it, answers EIO and keeps serving: on macOS
//! the session has a single thread, and a panic there would leave `/spfs`
//! with nobody to answer it.
//!
//! Only the root directory is shared; what the kernel may cache follows
//! from that (see [`inode`]):
//!
//! | reply | timeout | why |
//! |---|---|---|
//! | entries in the root | 0 | the same name means another inode to another runtime |
//! | attributes of the root | 1 day | they are the same for every caller ([`Ops::root_attr`](ops)) |
//! | everything deeper, negative entries too | 1 day | the inode belongs to one tree |
//! | negative entries of an editable runtime | 1 s | a reset tells the kernel what it brings back |
//! | file pages | kept across opens (`FOPEN_KEEP_CACHE`) | content never changes under a read-only inode |
//! | listings of directories below the root | kept across opens (`FOPEN_CACHE_DIR`) | read-only: the same; editable: changes through the mount are seen by the kernel, a reset tells it |
//!
//! The cost: each path walk through `/spfs/<name>` asks the service for
//! `<name>` again (one routed lookup); nothing deeper does. An editable
//! runtime whose tree changes (a commit, a reset) keeps its slot and
//! tells the kernel which names and attributes to drop. Each reply that
//! hands the kernel an editable node (an entry, a `readdirplus` row) is
//! counted, and FORGET uncounts it: a node that no name leads to is freed
//! when the kernel forgets it.

mod fetch_pool;
mod handles;
pub mod inode;
mod ops;
mod tree;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use fuser::{
    AccessFlags, Errno, FileHandle, Filesystem, Generation, INodeNo, KernelConfig, OpenFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request,
};

use self::ops::Context;
use crate::overlay::{set_time, SetAttr};
use crate::runtimes::Runtimes;
use ops::{Entry, Ops, TTL_VIEW};

/// The filesystem: every request through [`ops`], every reply from here.
pub struct SpfsFs {
    ops: Ops,
    panics: Arc<AtomicU64>,
    fetches: fetch_pool::FetchPool,
}

impl SpfsFs {
    /// A filesystem serving `runtimes`; its root is owned by `owner`.
    pub fn new(runtimes: Arc<Runtimes>, owner: (u32, u32)) -> Self {
        Self {
            ops: Ops::new(runtimes, owner),
            panics: Arc::new(AtomicU64::new(0)),
            fetches: fetch_pool::FetchPool::new(fetch_pool::THREADS),
        }
    }

    /// Counts the requests that panicked (and were answered EIO).
    pub fn panic_counter(&self) -> Arc<AtomicU64> {
        self.panics.clone()
    }

    /// Runs one request; a panic becomes EIO (logged as an error, so error
    /// reporting sees it), and the service goes on.
    fn serve<T>(&self, op: &'static str, f: impl FnOnce() -> Result<T, Errno>) -> Result<T, Errno> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => r,
            Err(payload) => {
                self.panics.fetch_add(1, Ordering::Relaxed);
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                tracing::error!(request = op, panic = %what, "a request panicked; answered EIO");
                Err(Errno::EIO)
            }
        }
    }
}

fn entry(r: Result<Entry, Errno>, reply: ReplyEntry) {
    match r {
        Ok(e) => reply.entry_with_ttls(&TTL_VIEW, &e.entry_ttl, &e.attr, Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn attr(r: Result<fuser::FileAttr, Errno>, reply: ReplyAttr) {
    match r {
        Ok(a) => reply.attr(&TTL_VIEW, &a),
        Err(e) => reply.error(e),
    }
}

fn empty(r: Result<(), Errno>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn data(r: Result<Vec<u8>, Errno>, reply: ReplyData) {
    match r {
        Ok(d) => reply.data(&d),
        Err(e) => reply.error(e),
    }
}

fn opened(r: Result<ops::Opened, Errno>, reply: ReplyOpen) {
    match r {
        Ok(o) => reply.opened(FileHandle(o.fh), o.flags),
        Err(e) => reply.error(e),
    }
}

/// An xattr value or list: its size when asked with size 0, ERANGE when
/// it does not fit.
fn xattr(r: Result<Vec<u8>, Errno>, size: u32, reply: ReplyXattr) {
    match r {
        Ok(v) if size == 0 => match u32::try_from(v.len()) {
            Ok(n) => reply.size(n),
            Err(_) => reply.error(Errno::E2BIG),
        },
        Ok(v) if v.len() > size as usize => reply.error(Errno::ERANGE),
        Ok(v) => reply.data(&v),
        Err(e) => reply.error(e),
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

    // BATCH_FORGET comes here too: fuser's default splits it (its
    // `ForgetOne` is not public in 0.18, so it cannot be taken whole).
    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let _ = self.serve("forget", || {
            self.ops.forget(ino.0, nlookup);
            Ok(())
        });
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        entry(
            self.serve("lookup", || {
                self.ops.lookup(&Context::from(req), parent, name)
            }),
            reply,
        )
    }

    fn getattr(&self, req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        attr(
            self.serve("getattr", || {
                self.ops.getattr(&Context::from(req), ino, fh.map(|h| h.0))
            }),
            reply,
        )
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        data(
            self.serve("readlink", || self.ops.readlink(&Context::from(req), ino)),
            reply,
        )
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.serve("open", || self.ops.open(&Context::from(req), ino, flags.0)) {
            Ok(Ok(o)) => opened(Ok(o), reply),
            // The payload comes from a remote: answered from the fetch
            // pool when it is here, while this thread serves others.
            Ok(Err(pending)) => {
                let panics = self.panics.clone();
                self.fetches.submit(Box::new(move || {
                    let r =
                        catch_unwind(AssertUnwindSafe(|| pending.finish())).unwrap_or_else(|_| {
                            panics.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(
                                request = "open",
                                "a payload fetch panicked; answered EIO"
                            );
                            Err(Errno::EIO)
                        });
                    opened(r, reply)
                }))
            }
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        data(
            self.serve("read", || self.ops.read(ino, fh.0, offset, size)),
            reply,
        )
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lo: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        // Nothing is buffered: writes go straight to the scratch file.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        empty(self.serve("release", || self.ops.release(ino, fh.0)), reply)
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        opened(
            self.serve("opendir", || self.ops.opendir(&Context::from(req), ino)),
            reply,
        )
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.serve("readdir", || self.ops.readdir(ino, fh.0, offset, false)) {
            Ok(listing) => {
                for row in listing.rows {
                    if reply.add(
                        INodeNo(row.ino),
                        row.offset,
                        row.kind,
                        OsStr::from_bytes(&row.name),
                    ) {
                        break;
                    }
                }
                reply.ok()
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        match self.serve("readdirplus", || self.ops.readdir(ino, fh.0, offset, true)) {
            Ok(listing) => {
                for row in &listing.rows {
                    let Some(attr) = row.attr else { continue };
                    if reply.add(
                        INodeNo(row.ino),
                        row.offset,
                        OsStr::from_bytes(&row.name),
                        &listing.entry_ttl,
                        &attr,
                        Generation(0),
                    ) {
                        break;
                    }
                    listing.sent_plus(row);
                }
                reply.ok()
            }
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        empty(
            self.serve("releasedir", || self.ops.releasedir(ino, fh.0)),
            reply,
        )
    }

    fn statfs(&self, req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.serve("statfs", || self.ops.statfs(&Context::from(req))) {
            Ok(Some(s)) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
            ),
            Ok(None) => reply.statfs(0, 0, 0, 0, 0, 4096, 255, 4096),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        empty(
            self.serve("access", || self.ops.access(&Context::from(req), ino, mask)),
            reply,
        )
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        xattr(
            self.serve("getxattr", || {
                self.ops.getxattr(&Context::from(req), ino, name)
            }),
            size,
            reply,
        )
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        xattr(
            self.serve("listxattr", || self.ops.listxattr(&Context::from(req), ino)),
            size,
            reply,
        )
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
        };
        attr(
            self.serve("setattr", || {
                self.ops
                    .setattr(&Context::from(req), ino, set, fh.map(|h| h.0))
            }),
            reply,
        )
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        entry(
            self.serve("mknod", || {
                self.ops
                    .mknod(&Context::from(req), parent, name, mode, umask, rdev)
            }),
            reply,
        )
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
        entry(
            self.serve("mkdir", || {
                self.ops
                    .mkdir(&Context::from(req), parent, name, mode, umask)
            }),
            reply,
        )
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(
            self.serve("unlink", || {
                self.ops.unlink(&Context::from(req), parent, name)
            }),
            reply,
        )
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(
            self.serve("rmdir", || {
                self.ops.rmdir(&Context::from(req), parent, name)
            }),
            reply,
        )
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        entry(
            self.serve("symlink", || {
                self.ops.symlink(&Context::from(req), parent, name, target)
            }),
            reply,
        )
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
        empty(
            self.serve("rename", || {
                self.ops.rename(
                    &Context::from(req),
                    parent,
                    name,
                    new_parent,
                    new_name,
                    flags.bits(),
                )
            }),
            reply,
        )
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

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        new_parent: INodeNo,
        new_name: &OsStr,
        reply: ReplyEntry,
    ) {
        entry(
            self.serve("link", || {
                self.ops
                    .link(&Context::from(req), ino, new_parent, new_name)
            }),
            reply,
        )
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
        match self.serve("write", || {
            self.ops.write(&Context::from(req), ino, fh.0, offset, data)
        }) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(
            self.serve("fsync", || {
                self.ops.fsync(&Context::from(req), ino, fh.0, datasync)
            }),
            reply,
        )
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
        match self.serve("create", || {
            self.ops
                .create(&Context::from(req), parent, name, mode, umask, flags)
        }) {
            Ok((e, o)) => reply.created(
                &e.entry_ttl,
                &e.attr,
                Generation(0),
                FileHandle(o.fh),
                o.flags,
            ),
            Err(e) => reply.error(e),
        }
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
        empty(
            self.serve("setxattr", || {
                self.ops
                    .setxattr(&Context::from(req), ino, name, value, flags)
            }),
            reply,
        )
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(
            self.serve("removexattr", || {
                self.ops.removexattr(&Context::from(req), ino, name)
            }),
            reply,
        )
    }
}
