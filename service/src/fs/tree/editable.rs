//! An editable runtime's overlay as a tree. Every node it hands the
//! kernel (an entry, a `readdirplus` row) is counted, so FORGET can free
//! a node no name leads to; names it does not have are remembered, so a
//! reset can take them back from the kernel.

use std::ffi::OsStr;
use std::sync::Arc;

use fuser::{AccessFlags, Errno, FileAttr, FileType, FopenFlags};

use super::{Found, FsTree, Node, Opening, Prepared};
use crate::fs::handles::{EditableFile, Open, Snapshot};
use crate::fs::ops::{DirRow, TTL_MISSING_EDITABLE};
use crate::overlay::Overlay;
use crate::repo::{Digest, RepositorySet};
use crate::scratch::Entered;
use crate::sys::fd::FsStats;

/// How the kernel treats an open file: writes go straight to the scratch
/// file (no writeback cache), so a close has nothing to flush. (An
/// `O_DIRECT` open needs nothing here: the kernel sends its I/O to the
/// service uncached, and still lets it be mapped, as a disk does; the
/// scratch file itself is opened buffered.)
pub(crate) const OPEN_FLAGS: FopenFlags = FopenFlags::FOPEN_NOFLUSH;

impl FsTree for Overlay {
    fn lookup(&self, dir: Node, name: &[u8]) -> Result<Found, Errno> {
        match Overlay::lookup(self, dir, name) {
            Ok((idx, attr)) => {
                self.remember(idx);
                Ok(Found::Entry(attr))
            }
            // A negative entry, remembered so a reset can take it back.
            Err(e) if e == Errno::ENOENT && dir != 0 && self.remember_missing(dir, name) => {
                Ok(Found::Missing(TTL_MISSING_EDITABLE))
            }
            Err(e) => Err(e),
        }
    }

    fn getattr(&self, node: Node) -> Result<FileAttr, Errno> {
        Overlay::getattr(self, node)
    }

    fn readlink(&self, node: Node) -> Result<Vec<u8>, Errno> {
        Overlay::readlink(self, node)
    }

    fn payload_to_prepare(&self, node: Node, flags: i32) -> Result<Option<(Digest, u64)>, Errno> {
        // Truncated on open, a copy-up copies no data.
        if crate::overlay::is_write(flags) && flags & libc::O_TRUNC != 0 {
            return Ok(None);
        }
        self.lower_payload_to_prepare(node)
    }

    fn open(self: Arc<Self>, node: Node, flags: i32) -> Result<Opening, Errno> {
        let file = Overlay::open(&self, node, flags)?;
        let file = EditableFile::new(&self, node, flags, file);
        Ok((Open::EditableFile(file), OPEN_FLAGS))
    }

    fn open_prepared(
        self: Arc<Self>,
        node: Node,
        flags: i32,
        _payload: Prepared,
    ) -> Result<Opening, Errno> {
        // The payload is local now: the open goes on as on the request
        // thread (a copy-up for writing).
        FsTree::open(self, node, flags)
    }

    fn opendir(self: Arc<Self>, node: Node) -> Result<Open, Errno> {
        if Overlay::getattr(&self, node)?.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        // The kernel may keep the listing across opens: a change through
        // the mount makes it list again (the directory's version
        // changes), and a reset tells it to (runtimes.rs).
        Ok(Open::EditableDir(Snapshot::new(self, node)))
    }

    /// The kernel checks (`default_permissions`).
    fn access(&self, _node: Node, _mask: AccessFlags, _uid: u32) -> Result<(), Errno> {
        Ok(())
    }

    fn statfs(&self) -> Result<Option<FsStats>, Errno> {
        let s = self.scratch().upper().statvfs().map_err(Errno::from)?;
        Ok(Some(FsStats::from(&s)))
    }

    fn getxattr(&self, node: Node, name: &OsStr) -> Result<Vec<u8>, Errno> {
        Overlay::getxattr(self, node, name)
    }

    fn listxattr(&self, node: Node) -> Result<Vec<u8>, Errno> {
        Overlay::listxattr(self, node)
    }

    fn repos(&self) -> &RepositorySet {
        Overlay::repos(self)
    }

    fn enter(&self, edit: bool) -> Result<Option<Entered>, Errno> {
        Overlay::enter(self, edit).map(Some)
    }
}

/// The rows of snapshot `s` from row `skip` on, with attributes when
/// `plus` (then the entries removed since the snapshot are skipped:
/// their nodes may be new files' now).
pub(crate) fn rows(s: &Snapshot, skip: usize, plus: bool) -> Result<Vec<DirRow>, Errno> {
    let o = &s.overlay;
    let mut rows = Vec::new();
    for (i, (idx, kind, name)) in s.rows()?.enumerate().skip(skip) {
        let attr = if plus {
            let dot = i < 2;
            if !dot && !o.is_named(idx, s.dir, name) {
                continue;
            }
            match o.getattr(idx) {
                Ok(a) => Some(a),
                Err(_) => continue,
            }
        } else {
            None
        };
        rows.push(DirRow {
            offset: i as u64 + 1,
            ino: o.ino(idx),
            kind,
            name: name.to_vec(),
            attr,
        });
    }
    Ok(rows)
}
