//! One table for every open file and directory.
//!
//! A handle is a number the kernel gives back with each later request on
//! the open file. Numbers are never reused while the service runs (a
//! counter, not a file descriptor), and each handle remembers the inode it
//! was opened on: a request that names another inode gets EBADF, so a
//! stale or forged handle can never reach another file.

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use fuser::{Errno, FileType};
use parking_lot::RwLock;

use crate::overlay::{Index, Listed, Overlay};
use crate::repo::{NodeId, PayloadCheck};
use crate::runtimes::ReadOnlyView;
use crate::scratch::Scratch;

/// What a handle holds open.
#[derive(Debug)]
pub(crate) enum Open {
    /// A payload of a read-only view's layers, and the verdict on its
    /// content while a background hash is still judging it (reads fail
    /// once it is found wrong).
    File(File, Option<Arc<PayloadCheck>>),
    /// A file of an editable runtime, which follows its node across
    /// commits and resets.
    EditableFile(EditableFile),
    /// A directory of a read-only view (`None`: the empty root a process
    /// outside any runtime sees).
    ReadOnlyDir(Option<(Arc<ReadOnlyView>, NodeId)>),
    /// A directory of an editable runtime, listed when it was opened so
    /// that offsets stay valid while it changes.
    EditableDir(Snapshot),
}

/// An editable directory's listing, made at its first read (the kernel
/// keeps listings across opens, so most opens read none) and kept for
/// the handle's life.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) overlay: Arc<Overlay>,
    pub(crate) dir: Index,
    entries: OnceLock<Result<Vec<Listed>, Errno>>,
}

impl Snapshot {
    /// A handle on directory `dir` of `overlay`, not listed yet.
    pub(crate) fn new(overlay: Arc<Overlay>, dir: Index) -> Self {
        Snapshot {
            overlay,
            dir,
            entries: OnceLock::new(),
        }
    }

    /// (node, kind, name) rows, "." and ".." first.
    pub(crate) fn rows(&self) -> Result<impl Iterator<Item = (Index, FileType, &[u8])>, Errno> {
        let entries = match self.entries.get_or_init(|| self.overlay.listing(self.dir)) {
            Ok(e) => e,
            Err(e) => return Err(*e),
        };
        Ok([
            (self.dir, FileType::Directory, &b"."[..]),
            (
                self.overlay.parent(self.dir),
                FileType::Directory,
                &b".."[..],
            ),
        ]
        .into_iter()
        .chain(entries.iter().map(|(i, k, n)| (*i, *k, &n[..]))))
    }
}

/// An editable runtime's open file: the node it was opened on, and the file
/// it is bound to in the view of one scratch generation. A commit or a
/// reset moves the runtime to a new view; the next read or write through
/// the handle binds it again there (see `Ops::bound`), so it keeps
/// working instead of writing to a file that left the scratch.
#[derive(Debug)]
pub(crate) struct EditableFile {
    /// The node opened.
    pub(crate) idx: Index,
    /// The open(2) flags, to open it again.
    pub(crate) flags: i32,
    /// The scratch, whose generation says when to bind again.
    pub(crate) scratch: Arc<Scratch>,
    /// (generation, file) it is bound to.
    pub(crate) bound: RwLock<(u64, Arc<File>)>,
}

impl EditableFile {
    /// `file`, opened on node `idx` of `overlay` with `flags`.
    pub(crate) fn new(overlay: &Overlay, idx: Index, flags: i32, file: File) -> EditableFile {
        EditableFile {
            idx,
            flags,
            scratch: overlay.scratch().clone(),
            bound: RwLock::new((overlay.generation(), Arc::new(file))),
        }
    }

    /// The file, if it is bound in the scratch's current generation.
    pub(crate) fn current(&self) -> Option<Arc<File>> {
        let b = self.bound.read();
        (b.0 == self.scratch.generation()).then(|| b.1.clone())
    }
}

#[derive(Debug)]
pub(crate) struct Handle {
    ino: u64,
    pub(crate) open: Open,
}

/// Shards of the table: every open and release writes to it, from all
/// request threads, and one lock for all measurably slowed small reads.
const SHARDS: usize = 16;

type Shard = RwLock<HashMap<u64, Arc<Handle>>>;

/// The open files and directories.
#[derive(Debug)]
pub(crate) struct Handles {
    next: AtomicU64,
    shards: [Shard; SHARDS],
}

impl Default for Handles {
    fn default() -> Self {
        Handles {
            // 0 is never a handle.
            next: AtomicU64::new(1),
            shards: std::array::from_fn(|_| RwLock::new(HashMap::new())),
        }
    }
}

impl Handles {
    #[allow(clippy::indexing_slicing)] // a remainder of SHARDS: in range
    fn shard(&self, fh: u64) -> &Shard {
        &self.shards[(fh % SHARDS as u64) as usize]
    }

    /// Keeps `open` for inode `ino`; returns its handle.
    pub(crate) fn insert(&self, ino: u64, open: Open) -> u64 {
        let fh = self.next.fetch_add(1, Ordering::Relaxed);
        self.shard(fh)
            .write()
            .insert(fh, Arc::new(Handle { ino, open }));
        fh
    }

    /// The handle `fh`, which must have been opened on `ino`.
    pub(crate) fn get(&self, fh: u64, ino: u64) -> Result<Arc<Handle>, Errno> {
        match self.shard(fh).read().get(&fh) {
            Some(h) if h.ino == ino => Ok(h.clone()),
            _ => Err(Errno::EBADF),
        }
    }

    /// The open file behind `fh` (EBADF for a directory).
    pub(crate) fn file(&self, fh: u64, ino: u64) -> Result<Arc<Handle>, Errno> {
        let h = self.get(fh, ino)?;
        match h.open {
            Open::File(..) | Open::EditableFile(_) => Ok(h),
            _ => Err(Errno::EBADF),
        }
    }

    /// An editable file open on inode `ino`, if any: what an unlinked file
    /// still open is asked about by (the kernel's `fstat` names the inode,
    /// not the handle). A scan of every handle: only done for a node that
    /// has no name left.
    pub(crate) fn any_editable_on(&self, ino: u64) -> Option<Arc<Handle>> {
        self.shards.iter().find_map(|s| {
            s.read()
                .values()
                .find(|h| h.ino == ino && h.as_editable().is_some())
                .cloned()
        })
    }

    /// Forgets handle `fh` (the kernel released it).
    pub(crate) fn remove(&self, fh: u64, ino: u64) -> Result<(), Errno> {
        let mut open = self.shard(fh).write();
        match open.get(&fh) {
            Some(h) if h.ino == ino => {
                let gone = open.remove(&fh);
                drop(open);
                // The file is closed here, outside the lock.
                drop(gone);
                Ok(())
            }
            _ => Err(Errno::EBADF),
        }
    }

    /// Handles open now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }
}

impl Handle {
    /// The read-only view's file (None for directories and editable
    /// files); EIO once its content was found not to match its digest.
    pub(crate) fn as_file(&self) -> Option<Result<&File, Errno>> {
        match &self.open {
            Open::File(_, Some(check)) if check.is_bad() => Some(Err(Errno::EIO)),
            Open::File(f, _) => Some(Ok(f)),
            _ => None,
        }
    }

    /// The editable runtime's file, if it is one.
    pub(crate) fn as_editable(&self) -> Option<&EditableFile> {
        match &self.open {
            Open::EditableFile(f) => Some(f),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_checked_against_their_inode_and_never_reused() {
        let t = Handles::default();
        let a = t.insert(10, Open::ReadOnlyDir(None));
        assert!(t.get(a, 10).is_ok());
        assert_eq!(t.get(a, 11).unwrap_err(), Errno::EBADF);
        assert_eq!(t.file(a, 10).unwrap_err(), Errno::EBADF, "not a file");
        assert_eq!(t.remove(a, 11).unwrap_err(), Errno::EBADF);
        t.remove(a, 10).unwrap();
        assert_eq!(t.get(a, 10).unwrap_err(), Errno::EBADF);
        let b = t.insert(10, Open::ReadOnlyDir(None));
        assert_ne!(a, b);
        assert_eq!(t.len(), 1);
    }
}
