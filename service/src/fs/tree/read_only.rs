//! The read-only view of a runtime's layers as a tree: nothing in it
//! ever changes, so the kernel may keep all of it (see `fs/mod.rs`).

use std::ffi::OsStr;
use std::sync::Arc;

use fuser::{AccessFlags, Errno, FileAttr, FileType, FopenFlags};

use super::{Found, FsTree, Node, Opening, Prepared};
use crate::fs::handles::Open;
use crate::fs::inode;
use crate::fs::ops::{DirRow, TTL_VIEW};
use crate::repo::{Digest, NodeId, NodeKind, PayloadCheck, RepositorySet};
use crate::runtimes::ReadOnlyView;
use crate::scratch::Entered;
use crate::sys::fd::FsStats;

/// How the kernel treats an open payload: payloads never change, so
/// pages stay cached across opens, and there is nothing to do on
/// close(2) (no FLUSH) — once the file's content is known right. While a
/// background hash still judges it, its pages are not kept for later
/// opens (those find the verdict).
fn payload_open_flags(check: &Option<Arc<PayloadCheck>>) -> FopenFlags {
    match check {
        None => FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_NOFLUSH,
        Some(_) => FopenFlags::FOPEN_NOFLUSH,
    }
}

impl ReadOnlyView {
    /// The attributes of `id`, under its inode number in this view.
    fn attr(&self, id: NodeId) -> Result<FileAttr, Errno> {
        self.layers
            .attr(id, inode::encode(self.slot, id))
            .ok_or(Errno::ESTALE)
    }

    fn kind(&self, id: NodeId) -> Result<NodeKind, Errno> {
        Ok(self.layers.view.get(id).ok_or(Errno::ESTALE)?.kind())
    }
}

impl FsTree for ReadOnlyView {
    fn lookup(&self, dir: Node, name: &[u8]) -> Result<Found, Errno> {
        match self.layers.view.lookup(NodeId(dir), name) {
            Some(id) => Ok(Found::Entry(self.attr(id)?)),
            None if NodeId(dir) == NodeId::ROOT => Err(Errno::ENOENT),
            None => Ok(Found::Missing(TTL_VIEW)),
        }
    }

    fn getattr(&self, node: Node) -> Result<FileAttr, Errno> {
        self.attr(NodeId(node))
    }

    fn readlink(&self, node: Node) -> Result<Vec<u8>, Errno> {
        self.layers.read_link(NodeId(node))
    }

    fn payload_to_prepare(&self, node: Node, flags: i32) -> Result<Option<(Digest, u64)>, Errno> {
        if crate::overlay::is_write(flags) {
            return Ok(None);
        }
        let n = self.layers.view.get(NodeId(node)).ok_or(Errno::ESTALE)?;
        let repos = &self.layers.repos;
        // (A large payload's first hash runs in the background.)
        Ok(n.payload()
            .filter(|p| {
                n.kind() == NodeKind::File
                    && repos.fetches_payloads()
                    && repos.payload_needs_fetch(p)
            })
            .map(|p| (p, n.size())))
    }

    fn open(self: Arc<Self>, node: Node, flags: i32) -> Result<Opening, Errno> {
        let id = NodeId(node);
        if self.kind(id)? == NodeKind::Dir {
            return Err(Errno::EISDIR);
        }
        if crate::overlay::is_write(flags) {
            return Err(Errno::EROFS);
        }
        // A payload of the wrong size is never served short or long.
        let (file, check) = self.layers.open_payload_checked(id)?;
        let flags = payload_open_flags(&check);
        Ok((Open::File(file, check), flags))
    }

    fn open_prepared(
        self: Arc<Self>,
        _node: Node,
        _flags: i32,
        (file, check): Prepared,
    ) -> Result<Opening, Errno> {
        let flags = payload_open_flags(&check);
        Ok((Open::File(file, check), flags))
    }

    fn opendir(self: Arc<Self>, node: Node) -> Result<Open, Errno> {
        let id = NodeId(node);
        if self.kind(id)? != NodeKind::Dir {
            return Err(Errno::ENOTDIR);
        }
        Ok(Open::ReadOnlyDir(Some((self, id))))
    }

    fn access(&self, node: Node, mask: AccessFlags, uid: u32) -> Result<(), Errno> {
        if mask.contains(AccessFlags::W_OK) {
            return Err(Errno::EROFS);
        }
        let perm = self
            .layers
            .view
            .get(NodeId(node))
            .ok_or(Errno::ESTALE)?
            .permissions();
        let root = uid == 0;
        let has = |bit: u32| perm & (bit << 6) != 0 || root && perm & (bit * 0o111) != 0;
        if mask.contains(AccessFlags::X_OK) && !has(1)
            || mask.contains(AccessFlags::R_OK) && !has(4) && !root
        {
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    fn statfs(&self) -> Result<Option<FsStats>, Errno> {
        Ok(crate::sys::fd::statvfs(self.layers.repos.primary().root()))
    }

    fn getxattr(&self, _node: Node, _name: &OsStr) -> Result<Vec<u8>, Errno> {
        Err(Errno::NO_XATTR)
    }

    fn listxattr(&self, _node: Node) -> Result<Vec<u8>, Errno> {
        Ok(Vec::new())
    }

    fn repos(&self) -> &RepositorySet {
        &self.layers.repos
    }

    fn enter(&self, _edit: bool) -> Result<Option<Entered>, Errno> {
        Ok(None)
    }
}

/// The rows of directory `id` of `v` from row `skip` on ("." and ".."
/// first), with attributes when `plus`.
pub(crate) fn rows(
    v: &ReadOnlyView,
    id: NodeId,
    skip: usize,
    plus: bool,
) -> Result<Vec<DirRow>, Errno> {
    let view = &v.layers.view;
    let parent = view.get(id).map_or(NodeId::ROOT, |n| n.parent());
    let children = view.children(id).filter_map(|c| {
        let n = view.get(c)?;
        Some((c, crate::layers::file_type(n.kind()), n.name().as_bytes()))
    });
    let all = [
        (id, FileType::Directory, &b"."[..]),
        (parent, FileType::Directory, &b".."[..]),
    ]
    .into_iter()
    .chain(children);
    let mut rows = Vec::new();
    for (i, (node, kind, name)) in all.enumerate().skip(skip) {
        rows.push(DirRow {
            offset: i as u64 + 1,
            ino: inode::encode(v.slot, node),
            kind,
            name: name.to_vec(),
            attr: if plus { Some(v.attr(node)?) } else { None },
        });
    }
    Ok(rows)
}
