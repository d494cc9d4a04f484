//! A runtime's scratch directory: the edits of an editable runtime, kept in
//! overlayfs's upper-directory layout with aufs-style whiteouts (see
//! [`crate::repo::whiteout`]) so they survive a restart of the service and
//! can be committed as a layer.
//!
//! ```text
//! <scratch>/upper/            the edits: new and copied-up files, dirs, symlinks
//! <scratch>/upper/d/.wh.name  `d/name` of a lower layer is deleted
//! <scratch>/upper/d/.wh..wh..opq  `d` hides every lower entry (deleted, then re-created)
//! <scratch>/work/             copy-ups being staged; emptied on every start
//! ```
//!
//! The runtime's user owns these directories and may change them behind
//! the service's back, so everything inside `upper/` and `work/` is
//! reached through [`Dir`] (never following a symlink).

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::lock_api::ArcRwLockReadGuard;
use parking_lot::{Mutex, RawRwLock, RwLock, RwLockWriteGuard};

pub use crate::repo::whiteout::{is_reserved, whiteout_name, OPAQUE_MARKER, WHITEOUT_PREFIX};
use crate::sys::dir::{is_not_beneath, Dir, Kind};

/// How much a scratch directory holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Apparent size of every file and symlink.
    pub bytes: u64,
    /// Files, symlinks and other non-directories (whiteouts not counted).
    pub files: u64,
}

/// An operation admitted by [`Scratch::enter`] (owns its guards, so it can
/// be handed on with the view it entered).
pub struct Entered {
    _edit: Option<ArcRwLockReadGuard<RawRwLock, ()>>,
    _view: ArcRwLockReadGuard<RawRwLock, ()>,
}

impl std::fmt::Debug for Entered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Entered")
    }
}

/// The two phases of a commit or reset, held in order (see
/// [`Scratch::hold_edits`] and [`Scratch::hold_all`]).
pub type Held<'a> = RwLockWriteGuard<'a, ()>;

/// Where a scratch directory is.
#[derive(Debug)]
struct Place {
    root: PathBuf,
    upper_path: PathBuf,
    /// `root/` itself, where `upper/` is swapped when edits are detached.
    root_dir: Dir,
}

/// One runtime's scratch directory.
#[derive(Debug)]
pub struct Scratch {
    /// Where it is: moved once when its runtime becomes durable.
    place: RwLock<Arc<Place>>,
    /// `upper/`; replaced (under `views`) when the edits are detached.
    upper: RwLock<Arc<Dir>>,
    work: Dir,
    next_stage: AtomicU64,
    dirty: AtomicBool,
    /// Changed since the service last told subscribers.
    unreported: AtomicBool,
    usage: Mutex<Usage>,
    /// Held shared by each edit, exclusively by a commit or reset.
    edits: Arc<RwLock<()>>,
    /// Held shared by each operation, exclusively while the view switches.
    views: Arc<RwLock<()>>,
    /// Bumped whenever the runtime moves to a new view.
    generation: AtomicU64,
    /// Shown, but not changed (a durable runtime run with `--no-edit`,
    /// `spfs edit --off`).
    read_only: AtomicBool,
}

impl Scratch {
    /// Opens (creating if needed) the scratch directory at `root` and
    /// empties its work directory: anything there is a copy-up or a reset
    /// that a crash interrupted, never visible in the runtime.
    pub fn open(root: &Path) -> io::Result<Scratch> {
        Self::open_as(root, false)
    }

    /// Opens the scratch directory at `root` as [`Scratch::open`]; with
    /// `read_only`, the runtime shows its edits but takes no new ones.
    pub fn open_as(root: &Path, read_only: bool) -> io::Result<Scratch> {
        let (parent, name) = split(root)?;
        // The parent (the scratch root, a repository's durable_edits) is
        // made if missing; it is then opened without following a link.
        std::fs::create_dir_all(parent)?;
        Self::open_in(parent, &[name], read_only)
    }

    /// Opens (creating if needed, private to the user) the scratch
    /// directory `below` beneath `base`, following no symlink below
    /// `base` (see [`private_dir`]): a durable runtime's edits are
    /// `durable_edits/NAME` beneath its repository.
    pub fn open_in(base: &Path, below: &[&[u8]], read_only: bool) -> io::Result<Scratch> {
        let root_dir = private_dir(base, below)?;
        let mut root = base.to_owned();
        for n in below {
            root.push(std::ffi::OsStr::from_bytes(n));
        }
        for d in [&b"upper"[..], b"work"] {
            match root_dir.mkdir(d, 0o700) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                r => r?,
            }
        }
        let work = root_dir.sub([&b"work"[..]])?;
        for name in work.names()? {
            work.remove_all(&name)?;
        }
        let upper = root_dir.sub([&b"upper"[..]])?;
        Ok(Scratch {
            place: RwLock::new(Arc::new(Place {
                upper_path: root.join("upper"),
                root,
                root_dir,
            })),
            upper: RwLock::new(Arc::new(upper)),
            work,
            next_stage: AtomicU64::new(0),
            dirty: AtomicBool::new(true),
            unreported: AtomicBool::new(false),
            usage: Mutex::new(Usage::default()),
            edits: Arc::new(RwLock::new(())),
            views: Arc::new(RwLock::new(())),
            generation: AtomicU64::new(0),
            read_only: AtomicBool::new(read_only),
        })
    }

    /// Whether edits are refused (EROFS).
    pub fn read_only(&self) -> bool {
        self.read_only.load(Ordering::Acquire)
    }

    /// Refuses edits from now on (`spfs edit --off`), or takes them again
    /// (`spfs edit`). Turning edits off waits for those in progress: once
    /// it returns, the edits are what they stay.
    pub fn set_read_only(&self, read_only: bool) {
        let _edits = read_only.then(|| self.edits.write());
        self.read_only.store(read_only, Ordering::Release);
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
    pub fn enter(&self, generation: u64, edit: bool) -> Option<Entered> {
        // Always edits, then views: the order commits and resets take them.
        let edit = edit.then(|| self.edits.read_arc());
        let view = self.views.read_arc();
        (self.generation() == generation).then_some(Entered {
            _edit: edit,
            _view: view,
        })
    }

    /// Phase one of a commit or reset: waits for edits in progress and
    /// holds off new ones, so it sees exactly the edits made before it.
    /// Reads go on.
    pub fn hold_edits(&self) -> Held<'_> {
        self.edits.write()
    }

    /// Phase two (with phase one held): holds off every operation while
    /// the edits leave the scratch and the view is switched, so nothing
    /// sees the edits gone from the scratch but not yet in the layers.
    pub fn hold_all(&self) -> Held<'_> {
        self.views.write()
    }

    /// The scratch directory itself.
    pub fn root(&self) -> PathBuf {
        self.place.read().root.clone()
    }

    /// Where the edits are, in upper-directory layout (for reading them
    /// into a layer).
    pub fn upper_path(&self) -> PathBuf {
        self.place.read().upper_path.clone()
    }

    /// Moves the edits (`upper/` and `work/`) into the directory `below`
    /// beneath `base`, made private, which must hold none yet: a runtime
    /// made durable (`spfs edit --keep-runtime`) keeps them in its
    /// repository's `durable_edits/`. Two renames, so nothing is copied
    /// and every open file and directory handle stays valid; on another
    /// file system (EXDEV) nothing moves. Call with [`Scratch::hold_all`]
    /// held.
    pub fn move_to(&self, base: &Path, below: &[&[u8]]) -> io::Result<()> {
        let to = private_dir(base, below)?;
        if !to.names()?.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the destination holds edits already",
            ));
        }
        let mut place = self.place.write();
        place.root_dir.rename(b"upper", &to, b"upper", 0)?;
        if let Err(e) = place.root_dir.rename(b"work", &to, b"work", 0) {
            // Back where it was: a scratch is never split.
            to.rename(b"upper", &place.root_dir, b"upper", 0)?;
            return Err(e);
        }
        let mut root = base.to_owned();
        for n in below {
            root.push(std::ffi::OsStr::from_bytes(n));
        }
        *place = Arc::new(Place {
            upper_path: root.join("upper"),
            root,
            root_dir: to,
        });
        Ok(())
    }

    /// The edits' directory, to change them.
    pub fn upper(&self) -> Arc<Dir> {
        self.upper.read().clone()
    }

    /// The work directory, where copies are staged.
    pub fn work(&self) -> &Dir {
        &self.work
    }

    /// A fresh name in the work directory (same filesystem as `upper`,
    /// so a rename moves a staged file into place atomically).
    pub fn stage_name(&self) -> Vec<u8> {
        let n = self.next_stage.fetch_add(1, Ordering::Relaxed);
        format!("stage-{n}").into_bytes()
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
        let mut usage = self.usage.lock();
        if self.dirty.swap(false, Ordering::AcqRel) {
            let mut counted = Usage::default();
            count(&self.upper(), &mut counted, 0);
            *usage = counted;
        }
        *usage
    }

    /// Discards every edit: the upper directory is moved into the work
    /// directory (one rename, so the runtime never sees half of it), a new
    /// empty one takes its place, and the old one is deleted.
    pub fn clear(&self) -> io::Result<()> {
        let trash = self.detach()?;
        self.remove_staged(&trash)
    }

    /// Moves every edit out of the way at once (see `clear`) and returns
    /// the name they went to in the work directory: the caller removes it
    /// with [`Scratch::remove_staged`] (or a restart does).
    pub fn detach(&self) -> io::Result<Vec<u8>> {
        let trash = self.stage_name();
        let old = self.upper();
        let place = self.place.read().clone();
        place.root_dir.rename(b"upper", &self.work, &trash, 0)?;
        let fresh = place
            .root_dir
            .mkdir(b"upper", 0o700)
            .and_then(|()| place.root_dir.sub([&b"upper"[..]]))
            .and_then(|d| copy_owner_and_mode(&old, &place.root_dir).map(|()| d));
        self.touched();
        match fresh {
            Ok(d) => {
                *self.upper.write() = Arc::new(d);
                Ok(trash)
            }
            Err(e) => {
                // Put the edits back rather than lose the upper directory.
                let _ = place.root_dir.remove_all(b"upper");
                self.work.rename(&trash, &place.root_dir, b"upper", 0)?;
                Err(e)
            }
        }
    }

    /// Deletes what [`Scratch::detach`] moved aside.
    pub fn remove_staged(&self, name: &[u8]) -> io::Result<()> {
        self.work.remove_all(name)
    }

    /// Discards the edits of one path (relative to the runtime's root):
    /// the entry, everything below it, and its whiteout.
    pub fn reset_path(&self, rel: &Path) -> io::Result<bool> {
        use std::os::unix::ffi::OsStrExt;
        let mut names = Vec::new();
        for c in rel.components() {
            match c {
                std::path::Component::Normal(n) => names.push(n.as_bytes()),
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "{}: give a path inside the runtime, without '..'",
                            rel.display()
                        ),
                    ))
                }
            }
        }
        let Some((name, parents)) = names.split_last() else {
            return self.clear().map(|()| true);
        };
        let dir = match self.upper().sub(parents.iter().copied()) {
            Ok(d) => d,
            // No edits below a parent that is not in the scratch.
            Err(e) if e.kind() == io::ErrorKind::NotFound || is_not_beneath(&e) => {
                return Ok(false)
            }
            Err(e) => return Err(e),
        };
        let whiteout = whiteout_name(name);
        // A name too long for a whiteout cannot have one.
        let can_white_out = whiteout.len() <= 255;
        let edited =
            dir.try_stat(name)?.is_some() || (can_white_out && dir.try_stat(&whiteout)?.is_some());
        dir.remove_all(name)?;
        if can_white_out {
            dir.remove_all(&whiteout)?;
        }
        self.touched();
        Ok(edited)
    }

    /// Deletes the scratch directory and everything in it.
    pub fn remove(&self) -> io::Result<()> {
        remove_all(&self.root())
    }
}

/// Gives `root/upper` the owner and mode the old upper directory had.
fn copy_owner_and_mode(old: &Dir, root: &Dir) -> io::Result<()> {
    let m = old.meta()?;
    root.chmod(b"upper", m.perm)?;
    if crate::sys::user::is_root() {
        root.chown(b"upper", Some(m.uid), Some(m.gid))?;
    }
    Ok(())
}

/// Opens the directory `below` beneath `base` (a repository or the
/// scratch root, which the user chose), creating missing components with
/// mode 0700 and following no symlink below `base`: a link planted in a
/// repository (`durable_edits` → elsewhere) is refused, never written
/// through. The last component is made private (0700) if it was not, so
/// other accounts never read the edits (an older version made them 0755).
pub fn private_dir(base: &Path, below: &[&[u8]]) -> io::Result<Dir> {
    let mut dir = Dir::open(base).map_err(|e| not_a_directory(e, base, &[]))?;
    for (i, name) in below.iter().enumerate() {
        match dir.mkdir(name, 0o700) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            r => r?,
        }
        let sub = dir
            .sub([*name])
            .map_err(|e| not_a_directory(e, base, below))?;
        if i + 1 == below.len() && sub.meta()?.perm & 0o077 != 0 {
            dir.chmod(name, 0o700)?;
        }
        dir = sub;
    }
    Ok(dir)
}

/// Removes `below` beneath `base` and everything in it, following no
/// symlink below `base` (a symlink on the way is an error, and a symlink
/// at the end is removed, not followed); what is already gone is fine.
pub fn remove_beneath(base: &Path, below: &[&[u8]]) -> io::Result<()> {
    let Some((last, parents)) = below.split_last() else {
        return Ok(());
    };
    let dir = match Dir::open(base).and_then(|d| d.sub(parents.iter().copied())) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(not_a_directory(e, base, below)),
    };
    dir.remove_all(last)
}

/// The error for a path component below `base` that is not a directory
/// (a symlink, most likely): names the path.
fn not_a_directory(e: io::Error, base: &Path, below: &[&[u8]]) -> io::Error {
    let link = matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR));
    if !(link || crate::sys::dir::is_not_beneath(&e)) {
        return e;
    }
    let mut path = base.to_owned();
    for n in below {
        path.push(std::ffi::OsStr::from_bytes(n));
    }
    io::Error::other(format!(
        "{} is reached through a symlink or a file that is not a directory: refused (nothing is written or deleted through links)",
        path.display()
    ))
}

/// Splits the path of a scratch directory into its parent and its name.
fn split(path: &Path) -> io::Result<(&Path, &[u8])> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((
            if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            },
            name.as_bytes(),
        )),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory the service can use", path.display()),
        )),
    }
}

/// Removes a file or a whole tree the service chose the path of (a
/// scratch directory), tolerating what is already gone. Nothing is
/// followed: the last component is removed as what it is.
pub fn remove_all(path: &Path) -> io::Result<()> {
    let (parent, name) = split(path)?;
    remove_beneath(parent, &[name])
}

/// Bytes and files in the upper directory `upper` (a saved durable
/// runtime's edits, not open in any runtime).
pub fn usage_of(upper: &Path) -> io::Result<Usage> {
    let mut usage = Usage::default();
    count(&Dir::open(upper)?, &mut usage, 0);
    Ok(usage)
}

/// Deeper than this is not counted (a loop the user made, or a joke).
const MAX_COUNT_DEPTH: usize = 256;

/// A path in the upper directory (names from its root) and whether it is
/// a directory.
pub type UpperEntry = (Vec<Box<[u8]>>, bool);

impl Scratch {
    /// Every entry of the upper directory (whiteouts and markers left
    /// out), parents before their children; the kernel's caches of these
    /// paths are what a reset must correct.
    pub fn upper_entries(&self) -> Vec<UpperEntry> {
        let mut out = Vec::new();
        collect(&self.upper(), &mut Vec::new(), &mut out);
        out
    }

    /// Whether `path` (names from the root) is in the upper directory now.
    pub fn in_upper(&self, path: &[Box<[u8]>]) -> bool {
        let Some((name, dirs)) = path.split_last() else {
            return true;
        };
        self.upper()
            .sub(dirs.iter().map(|n| &n[..]))
            .and_then(|d| d.try_stat(name))
            .is_ok_and(|m| m.is_some())
    }
}

fn collect(dir: &Dir, prefix: &mut Vec<Box<[u8]>>, out: &mut Vec<UpperEntry>) {
    let Ok(names) = dir.names() else { return };
    for name in names {
        if is_reserved(&name) {
            continue;
        }
        let Ok(m) = dir.stat(&name) else { continue };
        prefix.push(name.clone().into());
        let is_dir = m.kind == Kind::Dir;
        out.push((prefix.clone(), is_dir));
        if is_dir && prefix.len() < MAX_COUNT_DEPTH {
            if let Ok(sub) = dir.sub([&name[..]]) {
                collect(&sub, prefix, out);
            }
        }
        prefix.pop();
    }
}

fn count(dir: &Dir, usage: &mut Usage, depth: usize) {
    let Ok(names) = dir.names() else { return };
    for name in names {
        if is_reserved(&name) {
            continue;
        }
        let Ok(m) = dir.stat(&name) else { continue };
        if m.kind == Kind::Dir {
            if depth < MAX_COUNT_DEPTH {
                if let Ok(sub) = dir.sub([&name[..]]) {
                    count(&sub, usage, depth + 1);
                }
            }
        } else if m.kind == Kind::CharDevice && m.rdev == 0 {
            // Upstream's whiteout (a durable runtime it made).
        } else {
            usage.files += 1;
            usage.bytes += m.size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_takes_the_edits_along_and_never_into_another_runtimes() {
        let tmp = tempfile::tempdir().unwrap();
        let sc = Scratch::open(&tmp.path().join("rt")).unwrap();
        let upper = sc.upper();
        upper.mkdir(b"d", 0o755).unwrap();
        std::fs::write(sc.upper_path().join("d/f"), b"edit").unwrap();
        // Somewhere holding edits already: refused, nothing moves.
        std::fs::create_dir_all(tmp.path().join("durable/taken/upper")).unwrap();
        let e = sc
            .move_to(&tmp.path().join("durable"), &[b"taken"])
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert!(sc.upper_path().join("d/f").exists());
        sc.move_to(&tmp.path().join("durable"), &[b"kept"]).unwrap();
        let kept = tmp.path().join("durable/kept");
        assert_eq!(sc.root(), kept);
        assert_eq!(sc.upper_path(), kept.join("upper"));
        assert_eq!(std::fs::read(kept.join("upper/d/f")).unwrap(), b"edit");
        assert!(!tmp.path().join("rt/upper").exists());
        // The handles it had still work, and a reset swaps upper there.
        assert!(upper.sub([&b"d"[..]]).is_ok());
        sc.clear().unwrap();
        assert!(kept.join("upper").is_dir());
        assert!(!kept.join("upper/d").exists());
    }

    #[test]
    fn open_cleans_work_and_counts_usage() {
        let d = tempfile::tempdir().unwrap();
        let s = Scratch::open(d.path()).unwrap();
        std::fs::write(d.path().join("work/stage-0"), b"partial").unwrap();
        std::fs::create_dir(d.path().join("upper/dir")).unwrap();
        std::fs::write(d.path().join("upper/dir/a"), b"12345").unwrap();
        std::fs::write(d.path().join("upper/.wh.gone"), b"").unwrap();
        s.touched();
        assert_eq!(s.usage(), Usage { bytes: 5, files: 1 });
        drop(s);
        let s = Scratch::open(d.path()).unwrap();
        assert_eq!(std::fs::read_dir(d.path().join("work")).unwrap().count(), 0);
        assert!(
            d.path().join("upper/.wh.gone").exists(),
            "whiteouts survive"
        );
        s.clear().unwrap();
        assert_eq!(
            std::fs::read_dir(d.path().join("upper")).unwrap().count(),
            0
        );
        assert_eq!(s.usage(), Usage::default());
        // the new upper directory is the one used from now on
        s.upper().mkdir(b"x", 0o755).unwrap();
        assert!(d.path().join("upper/x").is_dir());
    }

    #[test]
    fn reset_path_does_not_follow_a_swapped_directory() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("f"), b"keep").unwrap();
        let s = Scratch::open(&d.path().join("s")).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("s/upper/d")).unwrap();
        s.reset_path(Path::new("d/f")).unwrap();
        assert_eq!(std::fs::read(outside.path().join("f")).unwrap(), b"keep");
        assert!(s.reset_path(Path::new("../x")).is_err());
    }
}
