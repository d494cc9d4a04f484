//! Requests on editable runtimes, answered by their [`Overlay`].
//!
//! The same cache rules as read-only views apply (zero timeout for names in
//! the root, a day below): every change to an editable runtime's files comes
//! through these requests, so the kernel's caches follow them exactly.
//! File pages are not kept across opens (content can change).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, ReplyXattr, Request,
};

use super::{inode, TTL_ROOT_ENTRY, TTL_VIEW};
use crate::overlay::{attr_of, Caller, Index, Listed, Overlay, SetAttr};
use crate::runtimes::RuntimeView;
use crate::sys;

/// Handles of open directories of editable runtimes carry this bit; the
/// rest indexes [`DirHandles`].
pub const DIR_HANDLE_BIT: u64 = 1 << 63;

/// A directory listing taken at `opendir`, so that `readdir` offsets stay
/// valid while the directory changes.
pub struct Snapshot {
    view: Arc<RuntimeView>,
    dir: Index,
    entries: Vec<Listed>,
}

/// Open directories of editable runtimes.
#[derive(Default)]
pub struct DirHandles {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Snapshot>>>,
}

impl DirHandles {
    fn insert(&self, s: Snapshot) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) | DIR_HANDLE_BIT;
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::new(s));
        id
    }

    fn get(&self, fh: u64) -> Option<Arc<Snapshot>> {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&fh)
            .cloned()
    }

    /// Forgets a released directory handle.
    pub fn remove(&self, fh: u64) {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&fh);
    }
}

/// An editable runtime's view and one of its nodes.
pub type Target = (Arc<RuntimeView>, Index);

fn ov(t: &Target) -> &Overlay {
    t.0.overlay.as_ref().expect("targets are editable views")
}

/// Enters an operation on `t` in its scratch (see `Scratch::enter`);
/// `None`: its view has been replaced.
pub fn enter(t: &Target, edit: bool) -> Option<crate::scratch::Entered<'_>> {
    ov(t).scratch().enter(ov(t).generation(), edit)
}

fn entry_ttl(parent: INodeNo) -> &'static std::time::Duration {
    if parent.0 == inode::ROOT {
        &TTL_ROOT_ENTRY
    } else {
        &TTL_VIEW
    }
}

fn caller(req: &Request, umask: u32) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
        umask,
    }
}

fn reply_entry(parent: INodeNo, r: Result<FileAttr, Errno>, reply: ReplyEntry) {
    match r {
        Ok(attr) => reply.entry_with_ttls(&TTL_VIEW, entry_ttl(parent), &attr, Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn reply_empty(r: Result<(), Errno>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

pub fn lookup(t: &Target, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
    reply_entry(
        parent,
        ov(t).lookup(t.1, name.as_bytes()).map(|x| x.1),
        reply,
    )
}

pub fn getattr(t: &Target, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
    match ov(t).getattr(t.1) {
        Ok(attr) => reply.attr(&TTL_VIEW, &attr),
        // Unlinked but still open: the open file knows.
        Err(e) => match fh.map(|h| sys::fd::with_handle(h.0, |f| f.metadata())) {
            Some(Ok(m)) => reply.attr(&TTL_VIEW, &attr_of(ino.0, &m)),
            _ => reply.error(e),
        },
    }
}

pub fn setattr(t: &Target, set: SetAttr, reply: ReplyAttr) {
    match ov(t).setattr(t.1, set) {
        Ok(attr) => reply.attr(&TTL_VIEW, &attr),
        Err(e) => reply.error(e),
    }
}

pub fn readlink(t: &Target, reply: ReplyData) {
    match ov(t).readlink(t.1) {
        Ok(target) => reply.data(&target),
        Err(e) => reply.error(e),
    }
}

/// Writes go straight to the scratch file (no writeback cache), so a
/// close has nothing to flush or report: spare it the round trip.
const NO_FLUSH: FopenFlags = FopenFlags::FOPEN_NOFLUSH;

pub fn open(t: &Target, flags: i32, reply: ReplyOpen) {
    match ov(t).open(t.1, flags) {
        Ok(f) => reply.opened(FileHandle(sys::fd::into_handle(f)), NO_FLUSH),
        Err(e) => reply.error(e),
    }
}

pub fn write(t: &Target, fh: FileHandle, offset: u64, data: &[u8], reply: ReplyWrite) {
    match sys::fd::with_handle(fh.0, |f| f.write_all_at(data, offset)) {
        Ok(()) => {
            ov(t).scratch().touched();
            reply.written(data.len() as u32)
        }
        Err(e) => reply.error(Errno::from(e)),
    }
}

pub fn fsync(fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
    let r = sys::fd::with_handle(fh.0, |f| {
        if datasync {
            f.sync_data()
        } else {
            f.sync_all()
        }
    });
    reply_empty(r.map_err(Errno::from), reply)
}

#[allow(clippy::too_many_arguments)] // the FUSE request's own fields
pub fn create(
    t: &Target,
    req: &Request,
    parent: INodeNo,
    name: &OsStr,
    mode: u32,
    umask: u32,
    flags: i32,
    reply: ReplyCreate,
) {
    match ov(t).create(t.1, name.as_bytes(), mode, flags, caller(req, umask)) {
        Ok((c, f)) => reply.created(
            entry_ttl(parent),
            &c.attr,
            Generation(0),
            FileHandle(sys::fd::into_handle(f)),
            NO_FLUSH,
        ),
        Err(e) => reply.error(e),
    }
}

pub fn mknod(
    t: &Target,
    req: &Request,
    parent: INodeNo,
    name: &OsStr,
    mode: u32,
    umask: u32,
    reply: ReplyEntry,
) {
    let r = ov(t).mknod(t.1, name.as_bytes(), mode, caller(req, umask));
    reply_entry(parent, r.map(|c| c.attr), reply)
}

pub fn mkdir(
    t: &Target,
    req: &Request,
    parent: INodeNo,
    name: &OsStr,
    mode: u32,
    umask: u32,
    reply: ReplyEntry,
) {
    let r = ov(t).mkdir(t.1, name.as_bytes(), mode, caller(req, umask));
    reply_entry(parent, r.map(|c| c.attr), reply)
}

pub fn symlink(
    t: &Target,
    req: &Request,
    parent: INodeNo,
    name: &OsStr,
    target: &Path,
    reply: ReplyEntry,
) {
    let r = ov(t).symlink(t.1, name.as_bytes(), target, caller(req, 0));
    reply_entry(parent, r.map(|c| c.attr), reply)
}

pub fn unlink(t: &Target, name: &OsStr, reply: ReplyEmpty) {
    reply_empty(ov(t).unlink(t.1, name.as_bytes()), reply)
}

pub fn rmdir(t: &Target, name: &OsStr, reply: ReplyEmpty) {
    reply_empty(ov(t).rmdir(t.1, name.as_bytes()), reply)
}

pub fn rename(
    t: &Target,
    name: &OsStr,
    new_parent: &Target,
    new_name: &OsStr,
    flags: u32,
    reply: ReplyEmpty,
) {
    if !Arc::ptr_eq(&t.0, &new_parent.0) {
        return reply.error(Errno::EXDEV);
    }
    reply_empty(
        ov(t).rename(
            t.1,
            name.as_bytes(),
            new_parent.1,
            new_name.as_bytes(),
            flags,
        ),
        reply,
    )
}

pub fn opendir(dirs: &DirHandles, t: &Target, reply: ReplyOpen) {
    match ov(t).listing(t.1) {
        Ok(entries) => {
            let fh = dirs.insert(Snapshot {
                view: t.0.clone(),
                dir: t.1,
                entries,
            });
            reply.opened(FileHandle(fh), FopenFlags::empty())
        }
        Err(e) => reply.error(e),
    }
}

/// (inode, kind, name) of a snapshot, "." and ".." first.
fn rows(s: &Snapshot) -> impl Iterator<Item = (Index, FileType, &[u8])> {
    let o = s.view.overlay.as_ref().expect("editable");
    [
        (s.dir, FileType::Directory, &b"."[..]),
        (o.parent(s.dir), FileType::Directory, &b".."[..]),
    ]
    .into_iter()
    .chain(s.entries.iter().map(|(i, k, n)| (*i, *k, &n[..])))
}

pub fn readdir(dirs: &DirHandles, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
    let Some(s) = dirs.get(fh.0) else {
        return reply.error(Errno::EBADF);
    };
    let o = s.view.overlay.as_ref().expect("editable");
    for (i, (idx, kind, name)) in rows(&s).enumerate().skip(offset as usize) {
        if reply.add(
            INodeNo(o.ino(idx)),
            i as u64 + 1,
            kind,
            OsStr::from_bytes(name),
        ) {
            break;
        }
    }
    reply.ok();
}

pub fn readdirplus(
    dirs: &DirHandles,
    ino: INodeNo,
    fh: FileHandle,
    offset: u64,
    mut reply: ReplyDirectoryPlus,
) {
    let Some(s) = dirs.get(fh.0) else {
        return reply.error(Errno::EBADF);
    };
    let o = s.view.overlay.as_ref().expect("editable");
    for (i, (idx, _kind, name)) in rows(&s).enumerate().skip(offset as usize) {
        // Entries deleted since the snapshot are skipped.
        let Ok(attr) = o.getattr(idx) else { continue };
        if reply.add(
            INodeNo(o.ino(idx)),
            i as u64 + 1,
            OsStr::from_bytes(name),
            entry_ttl(ino),
            &attr,
            Generation(0),
        ) {
            break;
        }
    }
    reply.ok();
}

pub fn statfs(t: &Target, reply: ReplyStatfs) {
    match sys::fd::statvfs(ov(t).scratch().upper()) {
        Some(s) => reply.statfs(
            s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
        ),
        None => reply.error(Errno::EIO),
    }
}

fn reply_xattr(r: Result<Vec<u8>, Errno>, size: u32, reply: ReplyXattr) {
    match r {
        Ok(v) if size == 0 => reply.size(v.len() as u32),
        Ok(v) if v.len() > size as usize => reply.error(Errno::ERANGE),
        Ok(v) => reply.data(&v),
        Err(e) => reply.error(e),
    }
}

pub fn getxattr(t: &Target, name: &OsStr, size: u32, reply: ReplyXattr) {
    reply_xattr(ov(t).getxattr(t.1, name), size, reply)
}

pub fn listxattr(t: &Target, size: u32, reply: ReplyXattr) {
    reply_xattr(ov(t).listxattr(t.1), size, reply)
}

pub fn setxattr(t: &Target, name: &OsStr, value: &[u8], flags: i32, reply: ReplyEmpty) {
    reply_empty(ov(t).setxattr(t.1, name, value, flags), reply)
}

pub fn removexattr(t: &Target, name: &OsStr, reply: ReplyEmpty) {
    reply_empty(ov(t).removexattr(t.1, name), reply)
}
