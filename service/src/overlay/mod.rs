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
//! number change type. Inode numbers are `slot << 32 | (index + 1)` as for
//! read-only views (index 0 is the root).
//!
//! All changes reach the scratch directory through this module, so the
//! kernel's caches of this runtime's inodes stay true without timeouts.

mod copyup;
mod write;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

use fuser::{Errno, FileAttr, FileType, INodeNo};

use crate::fs::inode;
use crate::repo::{NodeId, NodeKind, RepositorySet, View};
use crate::scratch::{self, Scratch};

pub use copyup::Content;
pub use write::{is_write, set_time, Caller, Created, SetAttr};

/// Index of a node in an overlay's table; 0 is the root.
pub type Index = u32;

#[derive(Debug)]
struct Node {
    parent: Index,
    name: Box<[u8]>,
    /// The lower entry this node shows or merges with.
    lower: Option<NodeId>,
    /// Unlinked, removed or replaced: the name now means something else.
    detached: bool,
}

#[derive(Debug, Default)]
struct Nodes {
    list: Vec<Node>,
    index: HashMap<(Index, Box<[u8]>), Index>,
}

/// Where a node's content is now.
#[derive(Debug)]
pub enum Location {
    Upper(PathBuf, Metadata),
    Lower(NodeId),
}

/// An editable runtime's view.
#[derive(Debug)]
pub struct Overlay {
    lower: Arc<View>,
    repos: Arc<RepositorySet>,
    scratch: Arc<Scratch>,
    slot: u32,
    /// Owner and times of lower entries (and of their copies).
    uid: u32,
    gid: u32,
    time: SystemTime,
    nodes: RwLock<Nodes>,
    /// Serialises copy-ups so that concurrent opens copy a file once.
    copying: Mutex<()>,
    /// The scratch's view generation when this view was made.
    generation: u64,
}

/// One entry of a merged listing: node, kind, name.
pub type Listed = (Index, FileType, Box<[u8]>);

pub(crate) fn io_errno(e: io::Error) -> Errno {
    Errno::from(e)
}

fn file_type(m: &Metadata) -> FileType {
    let t = m.file_type();
    if t.is_dir() {
        FileType::Directory
    } else if t.is_symlink() {
        FileType::Symlink
    } else if t.is_fifo() {
        FileType::NamedPipe
    } else if t.is_socket() {
        FileType::Socket
    } else if t.is_char_device() {
        FileType::CharDevice
    } else if t.is_block_device() {
        FileType::BlockDevice
    } else {
        FileType::RegularFile
    }
}

fn lower_type(k: NodeKind) -> FileType {
    match k {
        NodeKind::Dir => FileType::Directory,
        NodeKind::File => FileType::RegularFile,
        NodeKind::Symlink => FileType::Symlink,
    }
}

fn system_time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            + Duration::from_nanos(nsecs as u64)
    }
}

/// Attributes of a real file, under inode number `ino`.
pub fn attr_of(ino: u64, m: &Metadata) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: m.len(),
        blocks: m.blocks(),
        atime: system_time(m.atime(), m.atime_nsec()),
        mtime: system_time(m.mtime(), m.mtime_nsec()),
        ctime: system_time(m.ctime(), m.ctime_nsec()),
        crtime: system_time(m.ctime(), m.ctime_nsec()),
        kind: file_type(m),
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev() as u32,
        blksize: m.blksize() as u32,
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
        let root = Node {
            parent: 0,
            name: Box::default(),
            lower: Some(NodeId::ROOT),
            detached: false,
        };
        Overlay {
            generation: scratch.generation(),
            lower,
            repos,
            scratch,
            slot,
            uid: owner.0,
            gid: owner.1,
            time,
            nodes: RwLock::new(Nodes {
                list: vec![root],
                index: HashMap::new(),
            }),
            copying: Mutex::new(()),
        }
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

    fn read(&self) -> RwLockReadGuard<'_, Nodes> {
        self.nodes.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_nodes(&self) -> RwLockWriteGuard<'_, Nodes> {
        self.nodes.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The inode number of node `idx`.
    pub fn ino(&self, idx: Index) -> u64 {
        inode::encode(self.slot, NodeId(idx))
    }

    /// True if `idx` names a node of this overlay.
    pub fn contains(&self, idx: Index) -> bool {
        (idx as usize) < self.read().list.len()
    }

    /// The path of node `idx` in the upper directory (whether or not it
    /// exists there); ESTALE once the node or a parent is detached.
    pub fn upper_path(&self, idx: Index) -> Result<PathBuf, Errno> {
        let nodes = self.read();
        let mut names: Vec<&[u8]> = Vec::new();
        let mut at = idx;
        while at != 0 {
            let n = nodes.list.get(at as usize).ok_or(Errno::ESTALE)?;
            if n.detached {
                return Err(Errno::ESTALE);
            }
            names.push(&n.name);
            at = n.parent;
        }
        let mut p = self.scratch.upper().to_owned();
        for name in names.iter().rev() {
            p.push(OsStr::from_bytes(name));
        }
        Ok(p)
    }

    fn node_lower(&self, idx: Index) -> Option<NodeId> {
        self.read().list.get(idx as usize).and_then(|n| n.lower)
    }

    /// Where node `idx` is: its upper file, else its lower entry.
    pub fn locate(&self, idx: Index) -> Result<Location, Errno> {
        let path = self.upper_path(idx)?;
        match std::fs::symlink_metadata(&path) {
            Ok(m) => Ok(Location::Upper(path, m)),
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                self.node_lower(idx)
                    .map(Location::Lower)
                    .ok_or(Errno::ENOENT)
            }
            Err(e) => Err(io_errno(e)),
        }
    }

    /// The attributes of node `idx` at `loc`.
    pub fn attr(&self, idx: Index, loc: &Location) -> FileAttr {
        match loc {
            Location::Upper(_, m) => attr_of(self.ino(idx), m),
            Location::Lower(id) => self.lower_attr(idx, *id),
        }
    }

    fn lower_attr(&self, idx: Index, id: NodeId) -> FileAttr {
        let (kind, size, perm) = match self.lower.get(id) {
            Some(n) => (lower_type(n.kind()), n.size(), n.permissions() as u16),
            None => (FileType::RegularFile, 0, 0),
        };
        FileAttr {
            ino: INodeNo(self.ino(idx)),
            size,
            blocks: size.div_ceil(512),
            atime: self.time,
            mtime: self.time,
            ctime: self.time,
            crtime: self.time,
            kind,
            perm,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    /// The attributes of node `idx`.
    pub fn getattr(&self, idx: Index) -> Result<FileAttr, Errno> {
        let loc = self.locate(idx)?;
        Ok(self.attr(idx, &loc))
    }

    /// The lower entry `name` in directory `dir` would merge with, if the
    /// directory merges with a lower one at all.
    fn lower_child(&self, dir: Index, name: &[u8]) -> Option<NodeId> {
        self.node_lower(dir)
            .and_then(|l| self.lower.lookup(l, name))
    }

    fn lower_is_dir(&self, id: NodeId) -> bool {
        self.lower
            .get(id)
            .is_some_and(|n| n.kind() == NodeKind::Dir)
    }

    /// The node for `name` in `dir`, created if needed.
    fn intern(&self, dir: Index, name: &[u8], lower: Option<NodeId>) -> Index {
        let key = (dir, Box::<[u8]>::from(name));
        if let Some(&i) = self.read().index.get(&key) {
            return i;
        }
        let mut nodes = self.write_nodes();
        if let Some(&i) = nodes.index.get(&key) {
            return i;
        }
        let i = nodes.list.len() as Index;
        nodes.list.push(Node {
            parent: dir,
            name: key.1.clone(),
            lower,
            detached: false,
        });
        nodes.index.insert(key, i);
        i
    }

    /// Detaches the node for `name` in `dir`, if any: the name will mean a
    /// new file from now on.
    fn detach(&self, dir: Index, name: &[u8]) {
        let mut nodes = self.write_nodes();
        if let Some(i) = nodes.index.remove(&(dir, Box::<[u8]>::from(name))) {
            nodes.list[i as usize].detached = true;
        }
    }

    fn dir_path(&self, dir: Index) -> Result<PathBuf, Errno> {
        match self.locate(dir)? {
            Location::Upper(p, m) if m.is_dir() => Ok(p),
            Location::Lower(id) if self.lower_is_dir(id) => self.upper_path(dir),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// Looks `name` up in directory `dir`: the node and where it is.
    pub fn find(&self, dir: Index, name: &[u8]) -> Result<(Index, Location), Errno> {
        if scratch::is_reserved(name) {
            return Err(Errno::ENOENT);
        }
        let dpath = self.dir_path(dir)?;
        let path = dpath.join(OsStr::from_bytes(name));
        match std::fs::symlink_metadata(&path) {
            Ok(m) => {
                let lower = if m.is_dir() && !path.join(scratch::OPAQUE_MARKER).exists() {
                    self.lower_child(dir, name)
                        .filter(|&l| self.lower_is_dir(l))
                } else {
                    None
                };
                let idx = self.intern(dir, name, lower);
                Ok((idx, Location::Upper(path, m)))
            }
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                if self.whited_out(&dpath, name) {
                    return Err(Errno::ENOENT);
                }
                let l = self.lower_child(dir, name).ok_or(Errno::ENOENT)?;
                Ok((self.intern(dir, name, Some(l)), Location::Lower(l)))
            }
            Err(e) => Err(io_errno(e)),
        }
    }

    fn whited_out(&self, dpath: &std::path::Path, name: &[u8]) -> bool {
        let w = dpath.join(OsStr::from_bytes(&scratch::whiteout_name(name)));
        std::fs::symlink_metadata(w).is_ok()
    }

    /// Looks `name` up in `dir`: its node and attributes.
    pub fn lookup(&self, dir: Index, name: &[u8]) -> Result<(Index, FileAttr), Errno> {
        let (idx, loc) = self.find(dir, name)?;
        Ok((idx, self.attr(idx, &loc)))
    }

    /// The merged listing of directory `dir`, sorted by name ("." and ".."
    /// not included).
    pub fn listing(&self, dir: Index) -> Result<Vec<Listed>, Errno> {
        let dpath = self.dir_path(dir)?;
        let mut names: BTreeMap<Box<[u8]>, (Index, FileType)> = BTreeMap::new();
        let mut whiteouts: Vec<Box<[u8]>> = Vec::new();
        match std::fs::read_dir(&dpath) {
            Ok(entries) => {
                for e in entries {
                    let e = e.map_err(io_errno)?;
                    let name = e.file_name();
                    let name = name.as_bytes();
                    if let Some(hidden) = name.strip_prefix(scratch::WHITEOUT_PREFIX) {
                        whiteouts.push(hidden.into());
                        continue;
                    }
                    let m = match e.metadata() {
                        Ok(m) => m,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(io_errno(e)),
                    };
                    let lower = if m.is_dir() && !e.path().join(scratch::OPAQUE_MARKER).exists() {
                        self.lower_child(dir, name)
                            .filter(|&l| self.lower_is_dir(l))
                    } else {
                        None
                    };
                    let idx = self.intern(dir, name, lower);
                    names.insert(name.into(), (idx, file_type(&m)));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_errno(e)),
        }
        if let Some(l) = self.node_lower(dir) {
            for child in self.lower.children(l) {
                let Some(n) = self.lower.get(child) else {
                    continue;
                };
                let name = n.name().as_bytes();
                if names.contains_key(name) || whiteouts.iter().any(|w| &**w == name) {
                    continue;
                }
                let idx = self.intern(dir, name, Some(child));
                names.insert(name.into(), (idx, lower_type(n.kind())));
            }
        }
        Ok(names
            .into_iter()
            .map(|(name, (idx, kind))| (idx, kind, name))
            .collect())
    }

    /// The parent of node `idx` (the root is its own parent).
    pub fn parent(&self, idx: Index) -> Index {
        self.read()
            .list
            .get(idx as usize)
            .map(|n| n.parent)
            .unwrap_or(0)
    }

    /// The target of symlink `idx`.
    pub fn readlink(&self, idx: Index) -> Result<Vec<u8>, Errno> {
        match self.locate(idx)? {
            Location::Upper(p, m) if m.file_type().is_symlink() => std::fs::read_link(p)
                .map(|t| t.into_os_string().into_vec())
                .map_err(io_errno),
            Location::Lower(id) => {
                let n = self.lower.get(id).ok_or(Errno::ESTALE)?;
                let payload = n.payload().filter(|_| n.kind() == NodeKind::Symlink);
                let payload = payload.ok_or(Errno::EINVAL)?;
                let p = self
                    .repos
                    .payload_path(&payload)
                    .map_err(|e| Errno::from_i32(e.errno()))?;
                std::fs::read(p).map_err(io_errno)
            }
            Location::Upper(..) => Err(Errno::EINVAL),
        }
    }

    /// Value of extended attribute `name` of node `idx` (lower entries have
    /// none).
    pub fn getxattr(&self, idx: Index, name: &OsStr) -> Result<Vec<u8>, Errno> {
        match self.locate(idx)? {
            Location::Upper(p, _) => crate::sys::file::get_xattr(&p, name).map_err(io_errno),
            Location::Lower(_) => Err(Errno::NO_XATTR),
        }
    }

    /// Names of node `idx`'s extended attributes, NUL-terminated.
    pub fn listxattr(&self, idx: Index) -> Result<Vec<u8>, Errno> {
        match self.locate(idx)? {
            Location::Upper(p, _) => crate::sys::file::list_xattr(&p).map_err(io_errno),
            Location::Lower(_) => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests;
