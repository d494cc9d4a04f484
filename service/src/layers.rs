//! A runtime's layers as files: what both trees read of them — a
//! read-only view's every node, an editable overlay's lower side — their
//! attributes, symlink targets and payloads, written once.

use std::fs::File;
use std::sync::Arc;
use std::time::SystemTime;

use fuser::{Errno, FileAttr, FileType, INodeNo};

use crate::repo::{Digest, NodeId, NodeKind, PayloadCheck, RepositorySet, View};

/// The merged layers of a runtime, and whose they are.
#[derive(Debug)]
pub struct Layers {
    /// The merged view of the stack.
    pub view: Arc<View>,
    /// Where payloads are read (and fetched from remotes).
    pub repos: Arc<RepositorySet>,
    /// Owner of every entry (the runtime's user and group).
    pub owner: (u32, u32),
    /// Time of every entry (the runtime's start).
    pub time: SystemTime,
}

/// The file type of a layer entry.
pub(crate) fn file_type(k: NodeKind) -> FileType {
    match k {
        NodeKind::Dir => FileType::Directory,
        NodeKind::File => FileType::RegularFile,
        NodeKind::Symlink => FileType::Symlink,
    }
}

fn errno(e: &crate::repo::Error) -> Errno {
    Errno::from_i32(e.errno())
}

impl Layers {
    /// The attributes of entry `id`, under inode number `ino`; `None` if
    /// the view has no such entry.
    pub fn attr(&self, id: NodeId, ino: u64) -> Option<FileAttr> {
        let n = self.view.get(id)?;
        let kind = file_type(n.kind());
        Some(FileAttr {
            ino: INodeNo(ino),
            size: n.size(),
            blocks: n.size().div_ceil(512),
            atime: self.time,
            mtime: self.time,
            ctime: self.time,
            crtime: self.time,
            kind,
            perm: n.permissions() as u16,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            uid: self.owner.0,
            gid: self.owner.1,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    /// The target of symlink `id` (EINVAL if it is not one), read with
    /// the size its manifest gives as the limit.
    pub fn read_link(&self, id: NodeId) -> Result<Vec<u8>, Errno> {
        let n = self.view.get(id).ok_or(Errno::ESTALE)?;
        if n.kind() != NodeKind::Symlink {
            return Err(Errno::EINVAL);
        }
        let payload = n.payload().ok_or(Errno::EIO)?;
        self.repos
            .read_symlink_target(&payload, n.size())
            .map_err(|e| {
                tracing::error!(error = %e, "cannot read a symlink's target");
                errno(&e)
            })
    }

    /// The payload digest and size of file `id`.
    fn payload(&self, id: NodeId) -> Result<(Digest, u64), Errno> {
        let n = self.view.get(id).ok_or(Errno::ESTALE)?;
        Ok((n.payload().ok_or(Errno::EIO)?, n.size()))
    }

    /// Opens file `id`'s payload, refused unless its size is the one the
    /// manifest gives.
    pub fn open_payload(&self, id: NodeId) -> Result<File, Errno> {
        let (payload, size) = self.payload(id)?;
        self.repos
            .open_payload_sized(&payload, size)
            .map_err(|e| cannot_open(&e))
    }

    /// [`Layers::open_payload`], with the verdict on its content while a
    /// background hash of a large one is still judging it.
    pub fn open_payload_checked(
        &self,
        id: NodeId,
    ) -> Result<(File, Option<Arc<PayloadCheck>>), Errno> {
        let (payload, size) = self.payload(id)?;
        self.repos
            .open_payload_checked(&payload, size)
            .map_err(|e| cannot_open(&e))
    }
}

/// A payload that cannot be opened: logged with the reason, its errno to
/// the caller.
pub(crate) fn cannot_open(e: &crate::repo::Error) -> Errno {
    tracing::error!(error = %e, "cannot open a payload");
    errno(e)
}
