//! The view of an editable runtime: the immutable merged view of its layers
//! (the *lower* view) under its scratch directory (the *upper* directory),
//! with overlayfs's semantics.
//!
//! - A name in the upper directory hides the same name below; an upper
//!   directory merges with a lower one unless it is opaque.
//! - `.wh.<name>` in an upper directory deletes `<name>` below.
//! - Changing a lower entry first copies it up (`copyup`), staged in the
//!   scratch's work directory and renamed into place.
//!
//! Every inode is a *node* of this overlay: an index into a table of
//! (parent, name) pairs. A node keeps its index for as long as the name
//! refers to the same file; unlinking, removing or replacing a name
//! *detaches* its node (open handles keep working) and a new file under
//! the same name gets a new node, so the kernel never sees one inode
//! number change type. A detached node is freed when the kernel forgets
//! its inode (FUSE's lookup count, as fuse-overlayfs keeps it) and its
//! index serves a later node, so the table holds the names in use, not
//! every name ever made. Inode numbers are `slot << 32 | (index + 1)` as
//! for read-only views (index 0 is the root); a table that would need
//! more than 2³² − 1 nodes answers ENOSPC.
//!
//! The upper directory is only ever touched through [`Dir`]: a node's
//! directory is opened beneath the scratch without following symlinks,
//! then the one name is acted on with the `*at` calls.
//!
//! All changes reach the scratch directory through this module, so the
//! kernel's caches of this runtime's inodes stay true without timeouts.

mod copyup;
mod missing;
mod nodes;
mod write;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use fuser::{Errno, FileAttr, FileType, INodeNo};
use parking_lot::Mutex;

use crate::fs::inode;
use crate::layers::Layers;
use crate::repo::{NodeId, NodeKind, RepositorySet, View};
use crate::scratch::{self, Entered, Scratch};
use crate::sys::dir::{is_not_beneath, Dir, Kind, Meta};

use missing::Missing;
use nodes::Nodes;
pub(crate) use write::{is_write, set_time, Caller, SetAttr};

/// Index of a node in an overlay's table; 0 is the root.
pub(crate) type Index = u32;

/// Where a node's content is now.
#[derive(Debug)]
pub enum Location {
    /// In the upper directory: `name` in `dir`, with these attributes.
    Upper(Upper),
    /// Only in the layers.
    Lower(NodeId),
}

/// A node's entry in the upper directory.
#[derive(Debug)]
pub struct Upper {
    /// The directory holding it.
    pub dir: Dir,
    /// Its name there.
    pub name: Box<[u8]>,
    /// Its attributes.
    pub meta: Meta,
}

/// An editable runtime's view.
#[derive(Debug)]
pub struct Overlay {
    /// The layers under the edits; their owner and time are those of
    /// lower entries and of their copies.
    layers: Layers,
    scratch: Arc<Scratch>,
    slot: u32,
    /// Shared by the successive views of one runtime (see
    /// [`Overlay::rebased`]): a commit keeps every inode number.
    nodes: Arc<Nodes>,
    /// Names answered missing, shared like `nodes`.
    missing: Arc<Missing>,
    /// Serialises copy-ups so that concurrent opens copy a file once.
    copying: Arc<Mutex<()>>,
    /// The scratch's view generation when this view was made.
    generation: u64,
}

/// How a node's lower entry changed when the runtime moved to another
/// stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LowerChange {
    /// The same file (content, mode), or the same directory.
    Same,
    /// A directory still, with other attributes: the kernel forgets them.
    Attributes,
    /// Another file, or none: the name becomes a new inode.
    Replaced,
}

/// One entry of a merged listing: node, kind, name.
pub(crate) type Listed = (Index, FileType, Box<[u8]>);

/// The errno of a failed system call (EIO when it carries none).
pub(crate) fn io_errno(e: io::Error) -> Errno {
    Errno::from(e)
}

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
        Kind::Fifo => FileType::NamedPipe,
        Kind::Socket => FileType::Socket,
        Kind::CharDevice => FileType::CharDevice,
        Kind::BlockDevice => FileType::BlockDevice,
        Kind::File => FileType::RegularFile,
    }
}

fn missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || is_not_beneath(e)
}

/// Attributes of a real file, under inode number `ino`.
pub(crate) fn attr_of(ino: u64, m: &Meta) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: m.size,
        blocks: m.blocks,
        atime: m.atime,
        mtime: m.mtime,
        ctime: m.ctime,
        crtime: m.ctime,
        kind: file_type(m.kind),
        perm: m.perm as u16,
        nlink: u32::try_from(m.nlink).unwrap_or(u32::MAX),
        uid: m.uid,
        gid: m.gid,
        rdev: m.rdev as u32,
        blksize: m.blksize,
        flags: 0,
    }
}

impl Overlay {
    /// The view of `lower` under `scratch`, with inode numbers at `slot`.
    pub fn new(
        lower: Arc<View>,
        repos: Arc<RepositorySet>,
        scratch: Arc<Scratch>,
        slot: u32,
        owner: (u32, u32),
        time: SystemTime,
    ) -> Overlay {
        Overlay {
            generation: scratch.generation(),
            layers: Layers {
                view: lower,
                repos,
                owner,
                time,
            },
            scratch,
            slot,
            nodes: Arc::new(Nodes::new()),
            missing: Arc::default(),
            copying: Arc::new(Mutex::new(())),
        }
    }

    /// As [`Overlay::new`], for a read-only runtime that becomes editable
    /// at the same slot: `lower` is the view it showed, and every inode
    /// number it gave out names the same file in the overlay.
    pub fn adopting(
        lower: Arc<View>,
        repos: Arc<RepositorySet>,
        scratch: Arc<Scratch>,
        slot: u32,
        owner: (u32, u32),
        time: SystemTime,
    ) -> Overlay {
        let nodes = Arc::new(Nodes::adopting(lower.clone()));
        Overlay {
            nodes,
            ..Self::new(lower, repos, scratch, slot, owner, time)
        }
    }

    /// The same runtime's view over `lower` from the scratch's current
    /// generation on: same slot, same nodes (their lower entries looked up
    /// again in `lower`), so every inode the kernel knows stays valid. For
    /// a commit, whose layer holds exactly what the edits showed, and a
    /// reset (which detaches the nodes it changed). Call with the
    /// scratch's views held, after [`Scratch::next_generation`].
    pub fn rebased(&self, lower: Arc<View>) -> Overlay {
        self.nodes.rebase(&lower);
        Overlay {
            generation: self.scratch.generation(),
            layers: Layers {
                view: lower,
                repos: self.layers.repos.clone(),
                owner: self.layers.owner,
                time: self.layers.time,
            },
            scratch: self.scratch.clone(),
            slot: self.slot,
            nodes: self.nodes.clone(),
            missing: self.missing.clone(),
            copying: self.copying.clone(),
        }
    }

    /// Detaches the node at `path` (names from the root), if the kernel
    /// was given one: from now on the path is a new inode. Returns the
    /// detached node's (parent inode, name, inode) for the kernel's
    /// caches to be told.
    pub fn detach_path(&self, path: &[&[u8]]) -> Option<(u64, Box<[u8]>, u64)> {
        let idx = self.nodes.find_path(path)?;
        let (parent, name) = self.nodes.detach_node(idx)?;
        Some((self.ino(parent), name, self.ino(idx)))
    }

    /// Detaches node `idx` (see [`Overlay::detach_path`]).
    pub fn detach_node(&self, idx: Index) -> Option<(u64, Box<[u8]>, u64)> {
        let (parent, name) = self.nodes.detach_node(idx)?;
        Some((self.ino(parent), name, self.ino(idx)))
    }

    /// Each node in use other than the root, with its lower entry (for
    /// [`Overlay::lower_change`] after a move to another stack).
    pub fn node_lowers(&self) -> Vec<(Index, Option<NodeId>)> {
        self.nodes.lowers()
    }

    /// The lower entry node `idx` shows or merges with.
    pub fn lower_of(&self, idx: Index) -> Option<NodeId> {
        self.nodes.lower(idx)
    }

    /// Records that `name` in `dir` was answered missing with an entry
    /// the kernel caches; false if it must be answered without one (see
    /// the `missing` module).
    pub fn remember_missing(&self, dir: Index, name: &[u8]) -> bool {
        self.missing.remember(dir, name)
    }

    /// `name` in `dir` was made through the kernel: no longer missing.
    pub fn name_made(&self, dir: Index, name: &[u8]) {
        self.missing.made(dir, name);
    }

    /// After a reset, the names answered missing that this view shows
    /// now, as (the directory's inode, name): the kernel must forget them.
    pub fn missing_names_found(&self) -> Vec<(u64, Box<[u8]>)> {
        self.missing
            .take_found(|dir, name| self.shows(dir, name))
            .into_iter()
            .map(|(dir, name)| (self.ino(dir), name))
            .collect()
    }

    /// Whether `name` in `dir` is shown, without making a node for it;
    /// `None` if `dir` is no longer a node.
    fn shows(&self, dir: Index, name: &[u8]) -> Option<bool> {
        if !self.nodes.contains(dir, &self.layers.view) {
            return None;
        }
        if let Ok(Some(d)) = self.dir_handle(dir) {
            if !scratch::is_reserved(name) && d.try_stat(name).is_ok_and(|m| m.is_some()) {
                return Some(true);
            }
            if Self::whited_out(&d, name) {
                return Some(false);
            }
        }
        Some(self.lower_child(dir, name).is_some())
    }

    /// The read-only view this overlay adopted (see [`Overlay::adopting`]),
    /// unless a move to another stack retired it.
    pub fn adopted_view(&self) -> Option<Arc<View>> {
        self.nodes.adopted_view()
    }

    /// After a move from `old` (a read-only view this overlay adopted,
    /// at the same inode numbers) to this overlay's layers: each name that
    /// one of the two has and the other lacks, in a directory that is a
    /// directory in both, as (the directory's inode, name). The kernel may
    /// hold such a name (or its absence: a negative entry), and the
    /// directory's listing, from the read-only view, and must forget them.
    /// The root's entries are not cached, so names directly below it are
    /// not listed.
    pub fn names_changed_since(&self, old: &View) -> Vec<(u64, Box<[u8]>)> {
        let mut out = Vec::new();
        let mut dirs = vec![(NodeId::ROOT, NodeId::ROOT)];
        while let Some((was, now)) = dirs.pop() {
            let at_root = was == NodeId::ROOT;
            for child in self.layers.view.children(now) {
                let Some(n) = self.layers.view.get(child) else {
                    continue;
                };
                let name = n.name().as_bytes();
                match old.lookup(was, name) {
                    None if !at_root => out.push((self.ino(was.0), name.into())),
                    None => {}
                    Some(o) => {
                        let both_dirs = old.get(o).is_some_and(|o| o.kind() == NodeKind::Dir)
                            && n.kind() == NodeKind::Dir;
                        if both_dirs {
                            dirs.push((o, child));
                        }
                    }
                }
            }
            if !at_root {
                for gone in old.children(was) {
                    let Some(g) = old.get(gone) else { continue };
                    let name = g.name().as_bytes();
                    if self.layers.view.lookup(now, name).is_none() {
                        out.push((self.ino(was.0), name.into()));
                    }
                }
            }
        }
        out
    }

    /// The inode of every directory node in use (the kernel may keep
    /// their listings), the root's excepted.
    pub fn directory_inodes(&self) -> Vec<u64> {
        self.nodes
            .lowers()
            .into_iter()
            .filter(
                |&(idx, lower)| match lower.and_then(|l| self.layers.view.get(l)) {
                    Some(n) => n.kind() == NodeKind::Dir,
                    // (upper only: as the scratch has it)
                    None => self
                        .getattr(idx)
                        .is_ok_and(|a| a.kind == FileType::Directory),
                },
            )
            .map(|(idx, _)| self.ino(idx))
            .collect()
    }

    /// Before a move to another stack: a node of an adopted read-only
    /// view not made by now is stale from now on.
    pub fn stop_adopting(&self) {
        self.nodes.stop_adopting();
    }

    /// How a node's lower entry changed from `was` in `old` to `now` in
    /// this overlay's layers.
    pub fn lower_change(
        &self,
        old: &View,
        was: Option<NodeId>,
        now: Option<NodeId>,
    ) -> LowerChange {
        let (a, b) = match (
            was.and_then(|w| old.get(w)),
            now.and_then(|n| self.layers.view.get(n)),
        ) {
            (None, None) => return LowerChange::Same,
            (Some(a), Some(b)) => (a, b),
            _ => return LowerChange::Replaced,
        };
        if a.kind() != b.kind() {
            LowerChange::Replaced
        } else if a.kind() == NodeKind::Dir {
            if a.mode() == b.mode() {
                LowerChange::Same
            } else {
                LowerChange::Attributes
            }
        } else if a.payload() == b.payload() && a.mode() == b.mode() && a.size() == b.size() {
            LowerChange::Same
        } else {
            LowerChange::Replaced
        }
    }

    /// Whether the layers have a directory at `path` (names from the root).
    pub fn lower_dir_at(&self, path: &[&[u8]]) -> bool {
        let mut at = NodeId::ROOT;
        for name in path {
            match self.layers.view.lookup(at, name) {
                Some(id) => at = id,
                None => return false,
            }
        }
        self.lower_is_dir(at)
    }

    /// The node at `path`, if the kernel was given one.
    pub fn node_at(&self, path: &[&[u8]]) -> Option<Index> {
        self.nodes.find_path(path)
    }

    /// The merged layers under the edits.
    pub fn lower(&self) -> &Arc<View> {
        &self.layers.view
    }

    /// The repositories the layers come from.
    pub fn repos(&self) -> &Arc<RepositorySet> {
        &self.layers.repos
    }

    /// The inode slot of this view.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The runtime's owner.
    pub fn owner(&self) -> (u32, u32) {
        self.layers.owner
    }

    /// The scratch's view generation this view belongs to (see
    /// [`Scratch::enter`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The scratch directory behind this view.
    pub fn scratch(&self) -> &Arc<Scratch> {
        &self.scratch
    }

    /// Enters one operation on this view (see [`Scratch::enter`]); ESTALE
    /// if the view has been replaced.
    pub fn enter(&self, edit: bool) -> Result<Entered, Errno> {
        let entered = self
            .scratch
            .enter(self.generation, edit)
            .ok_or(Errno::ESTALE)?;
        // Asked once entered: `edit --off` turns edits off while holding
        // them off, so an edit either finished before or is refused.
        if edit && self.scratch.read_only() {
            return Err(Errno::EROFS);
        }
        Ok(entered)
    }

    /// The inode number of node `idx`.
    pub fn ino(&self, idx: Index) -> u64 {
        inode::encode(self.slot, NodeId(idx))
    }

    /// True if `idx` names a node of this overlay.
    pub fn contains(&self, idx: Index) -> bool {
        self.nodes.contains(idx, &self.layers.view)
    }

    /// The kernel was given node `idx`'s inode (a reply with an entry):
    /// the node lives at least until the kernel forgets it.
    pub fn remember(&self, idx: Index) {
        self.nodes.remember(idx);
    }

    /// The kernel forgot `count` lookups of node `idx` (FORGET): a node
    /// no name leads to any more is freed when the last one goes.
    pub fn forget(&self, idx: Index, count: u64) {
        self.nodes.forget(idx, count);
    }

    /// How many nodes the overlay holds (the root included).
    pub fn live_nodes(&self) -> usize {
        self.nodes.live()
    }

    /// Whether node `idx` is still `name` in `dir` (a listing made
    /// earlier may hold nodes removed since, whose index is used again).
    pub fn is_named(&self, idx: Index, dir: Index, name: &[u8]) -> bool {
        self.nodes.is_named(idx, dir, name)
    }

    /// The parent of node `idx` (the root is its own parent).
    pub fn parent(&self, idx: Index) -> Index {
        self.nodes.parent(idx)
    }

    /// Node `idx`'s own directory in the upper directory; `None` when it
    /// is not there (only in the layers).
    fn upper_dir(&self, idx: Index) -> Result<Option<Dir>, Errno> {
        let names = self.nodes.path(idx)?;
        match self.scratch.upper().sub(names.iter().map(|n| &n[..])) {
            Ok(d) => Ok(Some(d)),
            Err(e) if missing(&e) => Ok(None),
            Err(e) => Err(io_errno(e)),
        }
    }

    /// Node `idx`'s entry in the upper directory, if it has one.
    fn upper_entry(&self, idx: Index) -> Result<Option<Upper>, Errno> {
        let Some((parent, name)) = self.nodes.parent_and_name(idx)? else {
            return Ok(None);
        };
        let Some(dir) = self.upper_dir(parent)? else {
            return Ok(None);
        };
        match dir.try_stat(&name) {
            Ok(Some(meta)) => Ok(Some(Upper { dir, name, meta })),
            Ok(None) => Ok(None),
            Err(e) => Err(io_errno(e)),
        }
    }

    /// Where node `idx` is: its upper entry, else its lower entry. The
    /// root is always in the upper directory.
    pub fn locate(&self, idx: Index) -> Result<Location, Errno> {
        match self.upper_entry(idx)? {
            Some(u) => Ok(Location::Upper(u)),
            None => self
                .nodes
                .lower(idx)
                .map(Location::Lower)
                .ok_or(Errno::ENOENT),
        }
    }

    /// The attributes of node `idx` at `loc`.
    pub fn attr(&self, idx: Index, loc: &Location) -> FileAttr {
        match loc {
            Location::Upper(u) => attr_of(self.ino(idx), &u.meta),
            Location::Lower(id) => self.lower_attr(idx, *id),
        }
    }

    fn lower_attr(&self, idx: Index, id: NodeId) -> FileAttr {
        let ino = self.ino(idx);
        // A node whose lower entry is gone (a rebase raced it): empty.
        self.layers.attr(id, ino).unwrap_or(FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: self.layers.time,
            mtime: self.layers.time,
            ctime: self.layers.time,
            crtime: self.layers.time,
            kind: FileType::RegularFile,
            perm: 0,
            nlink: 1,
            uid: self.layers.owner.0,
            gid: self.layers.owner.1,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    /// The attributes of node `idx`.
    pub fn getattr(&self, idx: Index) -> Result<FileAttr, Errno> {
        let loc = self.locate(idx)?;
        Ok(self.attr(idx, &loc))
    }

    /// The lower entry `name` in directory `dir` would merge with, if the
    /// directory merges with a lower one at all.
    fn lower_child(&self, dir: Index, name: &[u8]) -> Option<NodeId> {
        self.nodes
            .lower(dir)
            .and_then(|l| self.layers.view.lookup(l, name))
    }

    fn lower_is_dir(&self, id: NodeId) -> bool {
        self.layers
            .view
            .get(id)
            .is_some_and(|n| n.kind() == NodeKind::Dir)
    }

    /// Whether the upper directory `name` in `dir` hides what is below it.
    fn is_opaque(dir: &Dir, name: &[u8]) -> bool {
        dir.sub([name])
            .and_then(|d| d.try_stat(scratch::OPAQUE_MARKER.as_bytes()))
            .is_ok_and(|m| m.is_some())
    }

    /// The lower directory an upper directory `name` in `dir` merges with.
    fn merged_lower(&self, dir: Index, updir: &Dir, name: &[u8], meta: &Meta) -> Option<NodeId> {
        if !meta.is_dir() {
            return None;
        }
        // The table first: only a name that has a lower directory needs
        // the opaque marker looked for.
        self.lower_child(dir, name)
            .filter(|&l| self.lower_is_dir(l))
            .filter(|_| !Self::is_opaque(updir, name))
    }

    /// Directory node `dir` in the upper directory (`None` if only in the
    /// layers); ENOTDIR if it is not a directory at all.
    fn dir_handle(&self, dir: Index) -> Result<Option<Dir>, Errno> {
        if let Some(d) = self.upper_dir(dir)? {
            return Ok(Some(d));
        }
        match self.nodes.lower(dir) {
            Some(l) if self.lower_is_dir(l) => Ok(None),
            Some(_) => Err(Errno::ENOTDIR),
            None => match self.upper_entry(dir)? {
                Some(_) => Err(Errno::ENOTDIR),
                None => Err(Errno::ENOENT),
            },
        }
    }

    /// Looks `name` up in directory `dir`: the node and where it is.
    pub fn find(&self, dir: Index, name: &[u8]) -> Result<(Index, Location), Errno> {
        if scratch::is_reserved(name) {
            // Never an upper entry (there it is a whiteout or a marker);
            // a layer may hold such a name, as content.
            if let Some(d) = self.dir_handle(dir)? {
                if Self::whited_out(&d, name) {
                    return Err(Errno::ENOENT);
                }
            }
            let l = self.lower_child(dir, name).ok_or(Errno::ENOENT)?;
            return Ok((self.nodes.intern(dir, name, Some(l))?, Location::Lower(l)));
        }
        if let Some(d) = self.dir_handle(dir)? {
            if let Some(meta) = d.try_stat(name).map_err(io_errno)? {
                let lower = self.merged_lower(dir, &d, name, &meta);
                let idx = self.intern_upper(dir, name, &meta, lower)?;
                let name = name.into();
                return Ok((idx, Location::Upper(Upper { dir: d, name, meta })));
            }
            if Self::whited_out(&d, name) {
                return Err(Errno::ENOENT);
            }
        }
        let l = self.lower_child(dir, name).ok_or(Errno::ENOENT)?;
        Ok((self.nodes.intern(dir, name, Some(l))?, Location::Lower(l)))
    }

    /// The node for upper entry `name` in `dir` (with `meta`): one node for
    /// all the names of a file with several hard links.
    fn intern_upper(
        &self,
        dir: Index,
        name: &[u8],
        meta: &Meta,
        lower: Option<NodeId>,
    ) -> Result<Index, Errno> {
        if meta.kind != Kind::Dir && meta.nlink > 1 {
            self.nodes
                .intern_file(dir, name, meta.nlink, (meta.dev, meta.ino))
        } else {
            self.nodes.intern(dir, name, lower)
        }
    }

    fn whited_out(dir: &Dir, name: &[u8]) -> bool {
        write::can_white_out(name)
            && dir
                .try_stat(&scratch::whiteout_name(name))
                .is_ok_and(|m| m.is_some())
    }

    /// Looks `name` up in `dir`: its node and attributes.
    pub fn lookup(&self, dir: Index, name: &[u8]) -> Result<(Index, FileAttr), Errno> {
        let (idx, loc) = self.find(dir, name)?;
        Ok((idx, self.attr(idx, &loc)))
    }

    /// The merged listing of directory `dir`, sorted by name ("." and ".."
    /// not included).
    pub fn listing(&self, dir: Index) -> Result<Vec<Listed>, Errno> {
        let mut names: BTreeMap<Box<[u8]>, (Index, FileType)> = BTreeMap::new();
        let mut whiteouts: Vec<Box<[u8]>> = Vec::new();
        if let Some(d) = self.dir_handle(dir)? {
            for name in d.names().map_err(io_errno)? {
                if let Some(hidden) = name.strip_prefix(scratch::WHITEOUT_PREFIX) {
                    whiteouts.push(hidden.into());
                    continue;
                }
                let meta = match d.try_stat(&name) {
                    Ok(Some(m)) => m,
                    Ok(None) => continue,
                    Err(e) => return Err(io_errno(e)),
                };
                let lower = self.merged_lower(dir, &d, &name, &meta);
                let idx = self.intern_upper(dir, &name, &meta, lower)?;
                names.insert(name.into(), (idx, file_type(meta.kind)));
            }
        }
        if let Some(l) = self.nodes.lower(dir) {
            for child in self.layers.view.children(l) {
                let Some(n) = self.layers.view.get(child) else {
                    continue;
                };
                let name = n.name().as_bytes();
                if names.contains_key(name) || whiteouts.iter().any(|w| &**w == name) {
                    continue;
                }
                let idx = self.nodes.intern(dir, name, Some(child))?;
                names.insert(name.into(), (idx, crate::layers::file_type(n.kind())));
            }
        }
        Ok(names
            .into_iter()
            .map(|(name, (idx, kind))| (idx, kind, name))
            .collect())
    }

    /// The payload (and size) of node `idx` if opening it would read a
    /// lower file whose payload must first be fetched from a remote, or
    /// hashed for longer than a request thread should wait (its first
    /// open: see `repo::verify`).
    pub fn lower_payload_to_prepare(
        &self,
        idx: Index,
    ) -> Result<Option<(crate::repo::Digest, u64)>, Errno> {
        let fetches = self.layers.repos.fetches_payloads();
        // Decided from the node table where it can be (no upper stat):
        // most files are small, and most runtimes fetch nothing.
        let Some(id) = self.nodes.lower(idx) else {
            return Ok(None);
        };
        let Some(n) = self.layers.view.get(id) else {
            return Ok(None);
        };
        let Some(p) = n.payload().filter(|_| n.kind() == NodeKind::File) else {
            return Ok(None);
        };
        let prepare = self.layers.repos.open_may_hash_long(n.size())
            || (fetches && self.layers.repos.payload_needs_fetch(&p));
        if !prepare {
            return Ok(None);
        }
        // A copied-up file reads its upper copy.
        match self.locate(idx)? {
            Location::Lower(_) => Ok(Some((p, n.size()))),
            Location::Upper(_) => Ok(None),
        }
    }

    /// Opens lower file `id`'s payload for reading.
    fn open_payload(&self, id: NodeId) -> Result<File, Errno> {
        self.layers.open_payload(id)
    }

    /// The target of lower symlink `id` (EINVAL if it is not one).
    pub(crate) fn read_lower_link(&self, id: NodeId) -> Result<Vec<u8>, Errno> {
        self.layers.read_link(id)
    }

    /// The target of symlink `idx`.
    pub fn readlink(&self, idx: Index) -> Result<Vec<u8>, Errno> {
        match self.locate(idx)? {
            Location::Upper(u) if u.meta.kind == Kind::Symlink => {
                u.dir.read_link(&u.name).map_err(io_errno)
            }
            Location::Lower(id) => self.read_lower_link(id),
            Location::Upper(_) => Err(Errno::EINVAL),
        }
    }

    /// Value of extended attribute `name` of node `idx` (lower entries have
    /// none).
    pub fn getxattr(&self, idx: Index, name: &OsStr) -> Result<Vec<u8>, Errno> {
        match self.locate(idx)? {
            Location::Upper(u) => u.dir.get_xattr(&u.name, name).map_err(io_errno),
            Location::Lower(_) => Err(Errno::NO_XATTR),
        }
    }

    /// Names of node `idx`'s extended attributes, NUL-terminated.
    pub fn listxattr(&self, idx: Index) -> Result<Vec<u8>, Errno> {
        match self.locate(idx)? {
            Location::Upper(u) => u.dir.list_xattr(&u.name).map_err(io_errno),
            Location::Lower(_) => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests;
