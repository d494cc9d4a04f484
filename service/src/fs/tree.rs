//! One trait for what every request asks of a runtime's tree, answered
//! by both kinds of tree: a read-only view of the layers
//! (`tree/read_only.rs`) and an editable overlay (`tree/editable.rs`).
//! `ops.rs` resolves an inode to a tree and a node, asks the tree, and
//! turns the answer into a reply; the changes only an overlay can make
//! (create, write, rename…) go to it directly.

mod editable;
mod read_only;

use std::ffi::OsStr;
use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

use fuser::{AccessFlags, Errno, FileAttr, FopenFlags};

use super::handles::Open;
use crate::repo::{Digest, PayloadCheck, RepositorySet};
use crate::scratch::Entered;
use crate::sys::fd::FsStats;

pub(crate) use self::editable::{rows as editable_rows, OPEN_FLAGS as EDITABLE_OPEN_FLAGS};
pub(crate) use self::read_only::rows as read_only_rows;

/// A node of a tree: its index in the view or the overlay's node table
/// (0 is the tree's root, reached through the mount's root inode).
pub(crate) type Node = u32;

/// What a lookup found.
#[derive(Debug)]
pub(crate) enum Found {
    /// The entry, with its attributes (and inode number).
    Entry(FileAttr),
    /// No such name; the kernel may remember that for this long.
    Missing(Duration),
}

/// A file opened: the handle's content and how the kernel may cache it.
pub(crate) type Opening = (Open, FopenFlags);

/// A payload opened off the request thread, with the verdict on its
/// content while a background hash still judges it.
pub(crate) type Prepared = (File, Option<Arc<PayloadCheck>>);

/// The operations both trees answer. A node is one of the tree's own;
/// an `Errno` is the reply.
pub(crate) trait FsTree: Send + Sync {
    /// `name` in directory `dir` (a name missing from the tree's root is
    /// ENOENT: the root's entries are never cached, see `fs/mod.rs`).
    fn lookup(&self, dir: Node, name: &[u8]) -> Result<Found, Errno>;

    /// The attributes of `node`.
    fn getattr(&self, node: Node) -> Result<FileAttr, Errno>;

    /// The target of symlink `node`.
    fn readlink(&self, node: Node) -> Result<Vec<u8>, Errno>;

    /// The payload (and its size) that opening `node` with `flags` must
    /// fetch from a remote or hash first, off the request thread; `None`
    /// when the open can run on it.
    fn payload_to_prepare(&self, node: Node, flags: i32) -> Result<Option<(Digest, u64)>, Errno>;

    /// Opens file `node` with open(2) `flags`.
    fn open(self: Arc<Self>, node: Node, flags: i32) -> Result<Opening, Errno>;

    /// Opens file `node` once its payload was prepared (see
    /// [`FsTree::payload_to_prepare`]) and opened as `payload`.
    fn open_prepared(
        self: Arc<Self>,
        node: Node,
        flags: i32,
        payload: Prepared,
    ) -> Result<Opening, Errno>;

    /// Opens directory `node` for listing.
    fn opendir(self: Arc<Self>, node: Node) -> Result<Open, Errno>;

    /// Whether user `uid` may access `node` as `mask` asks.
    fn access(&self, node: Node, mask: AccessFlags, uid: u32) -> Result<(), Errno>;

    /// Size and free space of where the tree keeps its files.
    fn statfs(&self) -> Result<Option<FsStats>, Errno>;

    /// Extended attribute `name` of `node`.
    fn getxattr(&self, node: Node, name: &OsStr) -> Result<Vec<u8>, Errno>;

    /// The names of `node`'s extended attributes, NUL-terminated.
    fn listxattr(&self, node: Node) -> Result<Vec<u8>, Errno>;

    /// Where the tree's payloads are read.
    fn repos(&self) -> &RepositorySet;

    /// Enters one operation (`edit`: one that changes the tree); `None`
    /// for a tree that never changes under it.
    fn enter(&self, edit: bool) -> Result<Option<Entered>, Errno>;
}
