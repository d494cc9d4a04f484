//! Changes to an editable runtime. Each one is ordered so that a crash
//! between two steps leaves the view either as before or as after (or, at
//! worst, an entry still visible that was being deleted) — never a partial
//! file and never a lost one.

use std::ffi::OsStr;
use std::fs::File;

use fuser::{Errno, FileAttr};

use super::copyup::Content;
use super::{io_errno, Index, Location, Overlay, Upper};
use crate::scratch;
use crate::sys::dir::{Dir, Kind, OpenHow, SetTime, RENAME_EXCHANGE, RENAME_NOREPLACE};

/// A new file and where to find it.
#[derive(Debug)]
pub struct Created {
    /// Its node.
    pub idx: Index,
    /// Its attributes.
    pub attr: FileAttr,
}

/// The changes of a `setattr` request.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    /// New permission bits.
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size.
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<SetTime>,
    /// New modification time.
    pub mtime: Option<SetTime>,
}

/// Who asks: new files are theirs.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    /// The caller's user.
    pub uid: u32,
    /// The caller's group.
    pub gid: u32,
    /// The caller's umask.
    pub umask: u32,
}

fn check_name(name: &[u8]) -> Result<(), Errno> {
    if scratch::is_reserved(name) {
        // Reserved by the scratch format (whiteouts).
        return Err(Errno::EINVAL);
    }
    if name.len() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    if !crate::sys::dir::valid_name(name) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Whether a whiteout of `name` fits in a file name (`.wh.` + name).
pub(super) fn can_white_out(name: &[u8]) -> bool {
    scratch::whiteout_name(name).len() <= 255
}

/// Whether opening with `flags` may change the file.
pub(crate) fn is_write(flags: i32) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0
}

/// How to open an upper file as the kernel asked (creation flags removed;
/// the kernel applies `O_APPEND` itself by the offsets it sends).
fn open_how(flags: i32) -> OpenHow {
    let acc = flags & libc::O_ACCMODE;
    OpenHow {
        read: acc == libc::O_RDONLY || acc == libc::O_RDWR,
        write: acc == libc::O_WRONLY || acc == libc::O_RDWR,
        truncate: flags & libc::O_TRUNC != 0,
        extra: flags & PASSED_FLAGS,
        ..OpenHow::default()
    }
}

/// Open flags passed on to the upper file as they are. Not `O_DIRECT`:
/// the kernel already does the caller's I/O uncached through the mount,
/// and the service's buffers are not aligned as direct I/O on the
/// scratch file would need (EINVAL), nor does tmpfs take it.
#[cfg(target_os = "linux")]
const PASSED_FLAGS: i32 = libc::O_SYNC | libc::O_DSYNC | libc::O_NOATIME;
#[cfg(not(target_os = "linux"))]
const PASSED_FLAGS: i32 = libc::O_SYNC | libc::O_DSYNC;

fn is_dir_at(ov: &Overlay, loc: &Location) -> bool {
    match loc {
        Location::Upper(u) => u.meta.is_dir(),
        Location::Lower(l) => ov.lower_is_dir(*l),
    }
}

impl Overlay {
    /// Records that `name` of a lower layer is deleted from `dir`.
    fn make_whiteout(&self, dir: &Dir, name: &[u8]) -> Result<(), Errno> {
        if !can_white_out(name) {
            // A layer's name longer than 251 bytes cannot be deleted in the
            // `.wh.` format (overlayfs's character devices can; macOS
            // cannot make those without root). See docs/posix.md.
            return Err(Errno::ENAMETOOLONG);
        }
        let how = OpenHow {
            write: true,
            create_new: Some(0o000),
            ..OpenHow::default()
        };
        match dir.open_file(&scratch::whiteout_name(name), how) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(io_errno(e)),
        }
    }

    fn drop_whiteout(&self, dir: &Dir, name: &[u8]) -> Result<(), Errno> {
        if !can_white_out(name) {
            // No whiteout can exist for it.
            return Ok(());
        }
        match dir.unlink(&scratch::whiteout_name(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_errno(e)),
            _ => Ok(()),
        }
    }

    /// Whether `name` in `dir` exists in the merged view.
    fn exists(&self, dir: Index, name: &[u8]) -> Result<Option<(Index, Location)>, Errno> {
        match self.find(dir, name) {
            Ok(x) => Ok(Some(x)),
            Err(e) if e == Errno::ENOENT => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Prepares `dir` for a new entry `name`: the directory in the upper
    /// directory, and the name free.
    fn prepare_new(&self, dir: Index, name: &[u8]) -> Result<Dir, Errno> {
        check_name(name)?;
        let lower = self.lower_child(dir, name).is_some();
        match self.dir_handle(dir)? {
            Some(d) => {
                if d.try_stat(name).map_err(io_errno)?.is_some()
                    || lower && !Self::whited_out(&d, name)
                {
                    return Err(Errno::EEXIST);
                }
                Ok(d)
            }
            None if lower => Err(Errno::EEXIST),
            None => self.copy_up_dir(dir),
        }
    }

    /// Finishes a new entry `name` in `dir` (upper directory `updir`):
    /// whiteout gone, node fresh.
    fn finish_new(&self, dir: Index, updir: &Dir, name: &[u8]) -> Result<Created, Errno> {
        self.drop_whiteout(updir, name)?;
        self.nodes.detach(dir, name);
        self.scratch.touched();
        let meta = updir.stat(name).map_err(io_errno)?;
        let lower = self.merged_lower(dir, updir, name, &meta);
        let idx = self.nodes.intern(dir, name, lower)?;
        Ok(Created {
            idx,
            attr: super::attr_of(self.ino(idx), &meta),
        })
    }

    /// Creates and opens a regular file.
    pub fn create(
        &self,
        dir: Index,
        name: &[u8],
        mode: u32,
        flags: i32,
        who: Caller,
    ) -> Result<(Created, File), Errno> {
        let updir = self.prepare_new(dir, name)?;
        let perm = mode & 0o7777 & !who.umask;
        let how = OpenHow {
            read: flags & libc::O_ACCMODE != libc::O_WRONLY,
            write: true,
            create_new: Some(perm),
            ..open_how(flags & !libc::O_TRUNC)
        };
        let file = updir.open_file(name, how).map_err(io_errno)?;
        self.chown(&updir, name, who.uid, who.gid)?;
        // Exactly `perm`: the service's own umask masked the open, and a
        // change of owner clears set-id bits.
        updir.chmod(name, perm).map_err(io_errno)?;
        let created = self.finish_new(dir, &updir, name)?;
        Ok((created, file))
    }

    /// Creates a regular file or a FIFO (other node types: EPERM).
    #[allow(clippy::unnecessary_cast)] // mode_t is u16 on macOS
    /// Makes a file system node: a regular file, a FIFO, a socket (what
    /// `bind` makes), or a device — as overlayfs does in its upper layer.
    /// The kernel has already checked that the caller may make devices
    /// (CAP_MKNOD); the node is made with the service's own rights, so a
    /// per-user service cannot make one even for root (EPERM).
    pub fn mknod(
        &self,
        dir: Index,
        name: &[u8],
        mode: u32,
        rdev: u32,
        who: Caller,
    ) -> Result<Created, Errno> {
        let kind = match mode & libc::S_IFMT as u32 {
            0 => None,
            k if k == libc::S_IFREG as u32 => None,
            k if k == libc::S_IFIFO as u32 => Some(Kind::Fifo),
            k if k == libc::S_IFSOCK as u32 => Some(Kind::Socket),
            k if k == libc::S_IFCHR as u32 => Some(Kind::CharDevice),
            k if k == libc::S_IFBLK as u32 => Some(Kind::BlockDevice),
            _ => return Err(Errno::EINVAL),
        };
        let updir = self.prepare_new(dir, name)?;
        let perm = mode & 0o7777 & !who.umask;
        if let Some(kind) = kind {
            let rdev = if matches!(kind, Kind::CharDevice | Kind::BlockDevice) {
                u64::from(rdev)
            } else {
                0
            };
            updir.mknod(name, kind, perm, rdev).map_err(io_errno)?;
        } else {
            let how = OpenHow {
                write: true,
                create_new: Some(perm),
                ..OpenHow::default()
            };
            updir.open_file(name, how).map_err(io_errno)?;
        }
        self.chown(&updir, name, who.uid, who.gid)?;
        // As in `create`: exactly `perm`.
        updir.chmod(name, perm).map_err(io_errno)?;
        self.finish_new(dir, &updir, name)
    }

    /// Creates a directory. Over a deleted lower entry it is opaque: what
    /// was below stays deleted.
    pub fn mkdir(&self, dir: Index, name: &[u8], mode: u32, who: Caller) -> Result<Created, Errno> {
        let updir = self.prepare_new(dir, name)?;
        let hides_lower = self.lower_child(dir, name).is_some();
        let work = self.scratch.work();
        let stage = self.scratch.stage_name();
        let made = (|| {
            work.mkdir(&stage, 0o700).map_err(io_errno)?;
            if hides_lower {
                let inside = work.sub([&stage[..]]).map_err(io_errno)?;
                let how = OpenHow {
                    write: true,
                    create_new: Some(0o644),
                    ..OpenHow::default()
                };
                inside
                    .open_file(scratch::OPAQUE_MARKER.as_bytes(), how)
                    .map_err(io_errno)?;
            }
            self.chown(work, &stage, who.uid, who.gid)?;
            work.chmod(&stage, mode & 0o7777 & !who.umask)
                .map_err(io_errno)?;
            work.rename(&stage, &updir, name, RENAME_NOREPLACE)
                .map_err(io_errno)
        })();
        if let Err(e) = made {
            let _ = work.remove_all(&stage);
            return Err(e);
        }
        self.finish_new(dir, &updir, name)
    }

    /// Creates a symlink.
    pub fn symlink(
        &self,
        dir: Index,
        name: &[u8],
        target: &[u8],
        who: Caller,
    ) -> Result<Created, Errno> {
        let updir = self.prepare_new(dir, name)?;
        updir.symlink(target, name).map_err(io_errno)?;
        self.chown(&updir, name, who.uid, who.gid)?;
        self.finish_new(dir, &updir, name)
    }

    /// Removes a non-directory.
    /// Makes `new_name` in `new_dir` another name of file `src`, as
    /// overlayfs does: a lower file is copied up first, then linked in the
    /// scratch. Both names are one node (one inode), so a write through one
    /// is seen through the other and the link count is the file's.
    pub fn link(&self, src: Index, new_dir: Index, new_name: &[u8]) -> Result<Created, Errno> {
        let src_loc = self.locate(src)?;
        if is_dir_at(self, &src_loc) {
            return Err(Errno::EPERM);
        }
        let to_dir = self.prepare_new(new_dir, new_name)?;
        let from = self.copy_up(src, Content::Keep)?;
        from.dir
            .link(&from.name, &to_dir, new_name)
            .map_err(io_errno)?;
        self.drop_whiteout(&to_dir, new_name)?;
        let meta = to_dir.stat(new_name).map_err(io_errno)?;
        self.nodes
            .link(src, new_dir, new_name, (meta.dev, meta.ino));
        self.scratch.touched();
        Ok(Created {
            idx: src,
            attr: super::attr_of(self.ino(src), &meta),
        })
    }

    /// Removes file `name` from `dir` (a whiteout hides a lower one).
    pub fn unlink(&self, dir: Index, name: &[u8]) -> Result<(), Errno> {
        let (_, loc) = self.find(dir, name)?;
        if is_dir_at(self, &loc) {
            return Err(Errno::EISDIR);
        }
        self.remove(dir, name, loc)
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, dir: Index, name: &[u8]) -> Result<(), Errno> {
        let (idx, loc) = self.find(dir, name)?;
        if !is_dir_at(self, &loc) {
            return Err(Errno::ENOTDIR);
        }
        if !self.listing(idx)?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        self.remove(dir, name, loc)
    }

    /// Deletes `name` from `dir`: a whiteout first if a lower layer has the
    /// name, then the upper entry (which holds at most whiteouts).
    fn remove(&self, dir: Index, name: &[u8], loc: Location) -> Result<(), Errno> {
        if self.lower_child(dir, name).is_some() {
            let updir = self.copy_up_dir(dir)?;
            self.make_whiteout(&updir, name)?;
        }
        if let Location::Upper(u) = loc {
            u.dir.remove_all(&u.name).map_err(io_errno)?;
        }
        self.nodes.detach(dir, name);
        self.scratch.touched();
        Ok(())
    }

    /// Renames `name` in `dir` to `new_name` in `new_dir`. A directory that
    /// merges with a lower one answers EXDEV, as overlayfs does (callers
    /// then copy and delete).
    pub fn rename(
        &self,
        dir: Index,
        name: &[u8],
        new_dir: Index,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        if flags & RENAME_EXCHANGE != 0 {
            return Err(Errno::EINVAL);
        }
        check_name(new_name)?;
        let (src, src_loc) = self.find(dir, name)?;
        let src_is_dir = is_dir_at(self, &src_loc);
        let dst = self.exists(new_dir, new_name)?;
        if let Some((dst_idx, dst_loc)) = &dst {
            if *dst_idx == src {
                return Ok(());
            }
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            match (src_is_dir, is_dir_at(self, dst_loc)) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !self.listing(*dst_idx)?.is_empty() => {
                    return Err(Errno::ENOTEMPTY)
                }
                _ => {}
            }
        }
        // A directory with lower content, or a layer's `.wh.` entry (it
        // cannot be copied up under its name): EXDEV, as overlayfs answers
        // for directories; `mv` then copies and deletes.
        if (src_is_dir && self.nodes.lower(src).is_some()) || scratch::is_reserved(name) {
            return Err(Errno::EXDEV);
        }
        // The entry named moves, never another name of the same file (a
        // hard link): an upper entry as it is, a lower one copied up.
        let from = match src_loc {
            Location::Upper(u) => u,
            Location::Lower(_) => self.copy_up(src, Content::Keep)?,
        };
        let to_dir = self.copy_up_dir(new_dir)?;
        if let Some((_, Location::Upper(u))) = &dst {
            if u.meta.is_dir() {
                // An empty merged directory: only whiteouts inside.
                u.dir.remove_all(&u.name).map_err(io_errno)?;
            }
        }
        if src_is_dir && self.lower_child(new_dir, new_name).is_some() {
            let inside = from.dir.sub([&from.name[..]]).map_err(io_errno)?;
            let how = OpenHow {
                write: true,
                create_new: Some(0o644),
                ..OpenHow::default()
            };
            match inside.open_file(scratch::OPAQUE_MARKER.as_bytes(), how) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(io_errno(e)),
                _ => {}
            }
        }
        from.dir
            .rename(&from.name, &to_dir, new_name, 0)
            .map_err(io_errno)?;
        self.drop_whiteout(&to_dir, new_name)?;
        if self.lower_child(dir, name).is_some() {
            let from_dir = self.copy_up_dir(dir)?;
            self.make_whiteout(&from_dir, name)?;
        }
        self.nodes.moved(src, dir, name, new_dir, new_name);
        self.scratch.touched();
        Ok(())
    }

    /// Changes attributes; a lower entry is copied up first (without its
    /// content when it is being truncated to nothing). A size change
    /// through an open handle goes to `handle`.
    pub fn setattr(
        &self,
        idx: Index,
        set: SetAttr,
        handle: Option<&File>,
    ) -> Result<FileAttr, Errno> {
        let content = if set.size == Some(0) {
            Content::Truncate
        } else {
            Content::Keep
        };
        let Upper { dir, name, meta } = self.copy_up(idx, content)?;
        if set.uid.is_some() || set.gid.is_some() {
            dir.chown(&name, set.uid, set.gid).map_err(io_errno)?;
        }
        if let Some(mode) = set.mode {
            if meta.kind != Kind::Symlink {
                dir.chmod(&name, mode & 0o7777).map_err(io_errno)?;
            }
        }
        if let Some(size) = set.size {
            match handle {
                Some(f) => f.set_len(size),
                None => dir
                    .open_file(
                        &name,
                        OpenHow {
                            write: true,
                            ..OpenHow::default()
                        },
                    )
                    .and_then(|f| f.set_len(size)),
            }
            .map_err(io_errno)?;
        }
        if set.atime.is_some() || set.mtime.is_some() {
            dir.set_times(
                &name,
                set.atime.unwrap_or(SetTime::Omit),
                set.mtime.unwrap_or(SetTime::Omit),
            )
            .map_err(io_errno)?;
        }
        self.scratch.touched();
        self.getattr(idx)
    }

    /// Opens node `idx`. Reading a lower file opens its payload; anything
    /// that may write copies it up first (`O_TRUNC`: without content).
    pub fn open(&self, idx: Index, flags: i32) -> Result<File, Errno> {
        let upper = match self.locate(idx)? {
            Location::Upper(u) => u,
            Location::Lower(l) => {
                if self.lower_is_dir(l) {
                    return Err(Errno::EISDIR);
                }
                if !is_write(flags) {
                    return self.open_payload(l);
                }
                let content = if flags & libc::O_TRUNC != 0 {
                    Content::Truncate
                } else {
                    Content::Keep
                };
                self.copy_up(idx, content)?
            }
        };
        if upper.meta.is_dir() {
            return Err(Errno::EISDIR);
        }
        if is_write(flags) {
            self.scratch.touched();
        }
        upper
            .dir
            .open_file(&upper.name, open_how(flags))
            .map_err(io_errno)
    }

    /// Sets an extended attribute (copying a lower entry up first).
    pub fn setxattr(
        &self,
        idx: Index,
        name: &OsStr,
        value: &[u8],
        flags: i32,
    ) -> Result<(), Errno> {
        let u = self.copy_up(idx, Content::Keep)?;
        u.dir
            .set_xattr(&u.name, name, value, flags)
            .map_err(io_errno)
    }

    /// Removes an extended attribute.
    pub fn removexattr(&self, idx: Index, name: &OsStr) -> Result<(), Errno> {
        match self.locate(idx)? {
            Location::Upper(u) => u.dir.remove_xattr(&u.name, name).map_err(io_errno),
            Location::Lower(_) => Err(Errno::NO_XATTR),
        }
    }
}

/// Converts a FUSE time to a [`SetTime`].
pub(crate) fn set_time(t: fuser::TimeOrNow) -> SetTime {
    match t {
        fuser::TimeOrNow::Now => SetTime::Now,
        fuser::TimeOrNow::SpecificTime(t) => SetTime::At(t),
    }
}
