//! A runtime's scratch directory: the edits of an editable runtime, kept in
//! overlayfs's upper-directory layout with aufs-style whiteouts so they
//! survive a restart of the service and can be committed as a layer.
//!
//! ```text
//! <scratch>/upper/            the edits: new and copied-up files, dirs, symlinks
//! <scratch>/upper/d/.wh.name  `d/name` of a lower layer is deleted
//! <scratch>/upper/d/.wh..wh..opq  `d` hides every lower entry (deleted, then re-created)
//! <scratch>/work/             copy-ups being staged; emptied on every start
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use crate::repo::whiteout::{is_reserved, whiteout_name, OPAQUE_MARKER, WHITEOUT_PREFIX};

/// How much a scratch directory holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Apparent size of every file and symlink.
    pub bytes: u64,
    /// Files, symlinks and other non-directories (whiteouts not counted).
    pub files: u64,
}

/// An operation admitted by [`Scratch::enter`].
#[derive(Debug)]
pub struct Entered<'a> {
    _edit: Option<RwLockReadGuard<'a, ()>>,
    _view: RwLockReadGuard<'a, ()>,
}

/// One runtime's scratch directory.
#[derive(Debug)]
pub struct Scratch {
    root: PathBuf,
    upper: PathBuf,
    work: PathBuf,
    next_stage: AtomicU64,
    dirty: AtomicBool,
    /// Changed since the service last told subscribers.
    unreported: AtomicBool,
    usage: Mutex<Usage>,
    /// Held shared by each edit, exclusively by a commit or reset.
    edits: RwLock<()>,
    /// Held shared by each operation, exclusively while the view switches.
    views: RwLock<()>,
    /// Bumped whenever the runtime moves to a new view.
    generation: AtomicU64,
}

impl Scratch {
    /// Opens (creating if needed) the scratch directory at `root` and
    /// empties its work directory: anything there is a copy-up or a reset
    /// that a crash interrupted, never visible in the runtime.
    pub fn open(root: &Path) -> io::Result<Scratch> {
        let upper = root.join("upper");
        let work = root.join("work");
        for d in [root, &upper] {
            std::fs::create_dir_all(d)?;
        }
        if work.exists() {
            remove_all(&work)?;
        }
        std::fs::create_dir(&work)?;
        let s = Scratch {
            root: root.to_owned(),
            upper,
            work,
            next_stage: AtomicU64::new(0),
            dirty: AtomicBool::new(true),
            unreported: AtomicBool::new(false),
            usage: Mutex::new(Usage::default()),
            edits: RwLock::new(()),
            views: RwLock::new(()),
            generation: AtomicU64::new(0),
        };
        Ok(s)
    }

    /// The view generation edits are admitted for.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Starts a new view generation: edits through views of older ones
    /// are refused from now on (their inodes are gone).
    pub fn next_generation(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Enters one operation through a view of generation `generation`,
    /// held for as long as the guard lives; `None` if that view has been
    /// replaced (the caller answers ESTALE, and the kernel looks the path
    /// up afresh). An `edit` waits while a commit or reset runs; other
    /// operations only wait for the moment the view is switched.
    pub fn enter(&self, generation: u64, edit: bool) -> Option<Entered<'_>> {
        // Always edits, then views: the order commits and resets take them.
        let edit = edit.then(|| self.edits.read().unwrap_or_else(|p| p.into_inner()));
        let view = self.views.read().unwrap_or_else(|p| p.into_inner());
        (self.generation() == generation).then_some(Entered {
            _edit: edit,
            _view: view,
        })
    }

    /// Phase one of a commit or reset: waits for edits in progress and
    /// holds off new ones, so it sees exactly the edits made before it.
    /// Reads go on.
    pub fn hold_edits(&self) -> RwLockWriteGuard<'_, ()> {
        self.edits.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Phase two (with phase one held): holds off every operation while
    /// the edits leave the scratch and the view is switched, so nothing
    /// sees the edits gone from the scratch but not yet in the layers.
    pub fn hold_all(&self) -> RwLockWriteGuard<'_, ()> {
        self.views.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The scratch directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The edits, in upper-directory layout.
    pub fn upper(&self) -> &Path {
        &self.upper
    }

    /// A fresh path in the work directory (same filesystem as `upper`,
    /// so a rename moves a staged file into place atomically).
    pub fn stage_path(&self) -> PathBuf {
        let n = self.next_stage.fetch_add(1, Ordering::Relaxed);
        self.work.join(format!("stage-{n}"))
    }

    /// Records that the edits changed (usage is recounted when asked).
    pub fn touched(&self) {
        self.dirty.store(true, Ordering::Release);
        self.unreported.store(true, Ordering::Release);
    }

    /// Whether the edits changed since the last call.
    pub fn take_changed(&self) -> bool {
        self.unreported.swap(false, Ordering::AcqRel)
    }

    /// Bytes and files in the edits, recounted if anything changed.
    pub fn usage(&self) -> Usage {
        let mut usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        if self.dirty.swap(false, Ordering::AcqRel) {
            *usage = count(&self.upper);
        }
        *usage
    }

    /// Discards every edit: the upper directory is moved into the work
    /// directory (one rename, so the runtime never sees half of it), a new
    /// empty one takes its place, and the old one is deleted.
    pub fn clear(&self) -> io::Result<()> {
        let trash = self.detach()?;
        remove_all(&trash)
    }

    /// Moves every edit out of the way at once (see `clear`) and returns
    /// where they went, inside the work directory: the caller deletes them
    /// (or a restart does).
    pub fn detach(&self) -> io::Result<PathBuf> {
        let trash = self.stage_path();
        std::fs::rename(&self.upper, &trash)?;
        let fresh = std::fs::create_dir(&self.upper)
            .and_then(|()| copy_owner_and_mode(&trash, &self.upper));
        self.touched();
        if let Err(e) = fresh {
            // Put the edits back rather than lose the upper directory.
            let _ = remove_all(&self.upper);
            std::fs::rename(&trash, &self.upper)?;
            return Err(e);
        }
        Ok(trash)
    }

    /// Discards the edits of one path (relative to the runtime's root):
    /// the entry, everything below it, and its whiteout.
    pub fn reset_path(&self, rel: &Path) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: give a path inside the runtime, without '..'",
                    rel.display()
                ),
            ));
        }
        let Some(name) = rel.file_name() else {
            return self.clear();
        };
        let dir = self.upper.join(rel.parent().unwrap_or(Path::new("")));
        remove_all(&self.upper.join(rel))?;
        remove_all(&dir.join(std::ffi::OsStr::from_bytes(&whiteout_name(name.as_bytes()))))?;
        self.touched();
        Ok(())
    }

    /// Deletes the scratch directory and everything in it.
    pub fn remove(&self) -> io::Result<()> {
        remove_all(&self.root)
    }
}

fn copy_owner_and_mode(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(from)?;
    std::fs::set_permissions(to, m.permissions())?;
    if crate::sys::user::is_root() {
        std::os::unix::fs::chown(to, Some(m.uid()), Some(m.gid()))?;
    }
    Ok(())
}

/// Removes a file or a whole tree, tolerating what is already gone.
pub fn remove_all(path: &Path) -> io::Result<()> {
    let r = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

fn count(dir: &Path) -> Usage {
    let mut usage = Usage::default();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            use std::os::unix::ffi::OsStrExt;
            if is_reserved(e.file_name().as_bytes()) {
                continue;
            }
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                usage.files += 1;
                usage.bytes += m.len();
            }
        }
    }
    usage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_cleans_work_and_counts_usage() {
        let d = tempfile::tempdir().unwrap();
        let s = Scratch::open(d.path()).unwrap();
        std::fs::write(s.stage_path(), b"partial").unwrap();
        std::fs::create_dir(s.upper().join("dir")).unwrap();
        std::fs::write(s.upper().join("dir/a"), b"12345").unwrap();
        std::fs::write(s.upper().join(".wh.gone"), b"").unwrap();
        s.touched();
        assert_eq!(s.usage(), Usage { bytes: 5, files: 1 });
        drop(s);
        let s = Scratch::open(d.path()).unwrap();
        assert_eq!(std::fs::read_dir(d.path().join("work")).unwrap().count(), 0);
        assert!(s.upper().join(".wh.gone").exists(), "whiteouts survive");
        s.clear().unwrap();
        assert_eq!(std::fs::read_dir(s.upper()).unwrap().count(), 0);
        assert_eq!(s.usage(), Usage::default());
    }
}
