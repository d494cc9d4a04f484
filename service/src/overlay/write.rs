//! Changes to an editable runtime. Each one is ordered so that a crash
//! between two steps leaves the view either as before or as after (or, at
//! worst, an entry still visible that was being deleted) — never a partial
//! file and never a lost one.

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use fuser::{Errno, FileAttr};

use super::copyup::Content;
use super::{io_errno, Index, Location, Overlay};
use crate::scratch::{self, remove_all};
use crate::sys;
use crate::sys::file::SetTime;

/// A new file and where to find it.
#[derive(Debug)]
pub struct Created {
    pub idx: Index,
    pub attr: FileAttr,
}

/// The changes of a `setattr` request.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<SetTime>,
    pub mtime: Option<SetTime>,
    /// An open handle of the file, if the change came through one.
    pub handle: Option<u64>,
}

/// Who asks: new files are theirs.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
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
    Ok(())
}

/// Whether opening with `flags` may change the file.
pub fn is_write(flags: i32) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0
}

/// Opens an upper file as the kernel asked (creation flags removed).
fn open_upper(path: &Path, flags: i32) -> Result<File, Errno> {
    let acc = flags & libc::O_ACCMODE;
    let keep =
        flags & !(libc::O_ACCMODE | libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_APPEND);
    std::fs::OpenOptions::new()
        .read(acc == libc::O_RDONLY || acc == libc::O_RDWR)
        .write(acc == libc::O_WRONLY || acc == libc::O_RDWR)
        .custom_flags(keep)
        .open(path)
        .map_err(io_errno)
}

impl Overlay {
    fn whiteout_path(dpath: &Path, name: &[u8]) -> PathBuf {
        dpath.join(OsStr::from_bytes(&scratch::whiteout_name(name)))
    }

    /// Records that `name` of a lower layer is deleted from `dpath`.
    fn make_whiteout(&self, dpath: &Path, name: &[u8]) -> Result<(), Errno> {
        let w = Self::whiteout_path(dpath, name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o000)
            .open(&w)
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(io_errno(e)),
        }
    }

    fn drop_whiteout(&self, dpath: &Path, name: &[u8]) -> Result<(), Errno> {
        remove_all(&Self::whiteout_path(dpath, name)).map_err(io_errno)
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
    fn prepare_new(&self, dir: Index, name: &[u8]) -> Result<PathBuf, Errno> {
        check_name(name)?;
        if self.exists(dir, name)?.is_some() {
            return Err(Errno::EEXIST);
        }
        self.copy_up(dir, Content::Keep)
    }

    /// Finishes a new entry at `dpath/name`: whiteout gone, node fresh.
    fn finish_new(&self, dir: Index, dpath: &Path, name: &[u8]) -> Result<Created, Errno> {
        self.drop_whiteout(dpath, name)?;
        self.detach(dir, name);
        self.scratch.touched();
        let (idx, attr) = self.lookup(dir, name)?;
        Ok(Created { idx, attr })
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
        let dpath = self.prepare_new(dir, name)?;
        let path = dpath.join(OsStr::from_bytes(name));
        let acc = flags & libc::O_ACCMODE;
        let file = std::fs::OpenOptions::new()
            .read(acc != libc::O_WRONLY)
            .write(true)
            .create_new(true)
            .mode(mode & 0o7777 & !who.umask)
            .open(&path)
            .map_err(io_errno)?;
        self.chown(&path, who.uid, who.gid)?;
        let created = self.finish_new(dir, &dpath, name)?;
        Ok((created, file))
    }

    /// Creates a regular file or a FIFO (other node types: EPERM).
    #[allow(clippy::unnecessary_cast)] // mode_t is u16 on macOS
    pub fn mknod(&self, dir: Index, name: &[u8], mode: u32, who: Caller) -> Result<Created, Errno> {
        let kind = mode & libc::S_IFMT as u32;
        if kind != libc::S_IFREG as u32 && kind != libc::S_IFIFO as u32 && kind != 0 {
            return Err(Errno::EPERM);
        }
        let dpath = self.prepare_new(dir, name)?;
        let path = dpath.join(OsStr::from_bytes(name));
        let perm = mode & 0o7777 & !who.umask;
        if kind == libc::S_IFIFO as u32 {
            sys::file::mkfifo(&path, perm).map_err(io_errno)?;
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(perm)
                .open(&path)
                .map_err(io_errno)?;
        }
        self.chown(&path, who.uid, who.gid)?;
        self.finish_new(dir, &dpath, name)
    }

    /// Creates a directory. Over a deleted lower entry it is opaque: what
    /// was below stays deleted.
    pub fn mkdir(&self, dir: Index, name: &[u8], mode: u32, who: Caller) -> Result<Created, Errno> {
        let dpath = self.prepare_new(dir, name)?;
        let path = dpath.join(OsStr::from_bytes(name));
        let hides_lower = self.lower_child(dir, name).is_some();
        let stage = self.scratch.stage_path();
        let made = (|| {
            std::fs::create_dir(&stage).map_err(io_errno)?;
            if hides_lower {
                File::create(stage.join(scratch::OPAQUE_MARKER)).map_err(io_errno)?;
            }
            std::fs::set_permissions(
                &stage,
                PermissionsExt::from_mode(mode & 0o7777 & !who.umask),
            )
            .map_err(io_errno)?;
            self.chown(&stage, who.uid, who.gid)?;
            std::fs::rename(&stage, &path).map_err(io_errno)
        })();
        if let Err(e) = made {
            let _ = remove_all(&stage);
            return Err(e);
        }
        self.finish_new(dir, &dpath, name)
    }

    /// Creates a symlink.
    pub fn symlink(
        &self,
        dir: Index,
        name: &[u8],
        target: &Path,
        who: Caller,
    ) -> Result<Created, Errno> {
        let dpath = self.prepare_new(dir, name)?;
        let path = dpath.join(OsStr::from_bytes(name));
        std::os::unix::fs::symlink(target, &path).map_err(io_errno)?;
        self.chown(&path, who.uid, who.gid)?;
        self.finish_new(dir, &dpath, name)
    }

    /// Removes a non-directory.
    pub fn unlink(&self, dir: Index, name: &[u8]) -> Result<(), Errno> {
        let (_, loc) = self.find(dir, name)?;
        let is_dir = match &loc {
            Location::Upper(_, m) => m.is_dir(),
            Location::Lower(l) => self.lower_is_dir(*l),
        };
        if is_dir {
            return Err(Errno::EISDIR);
        }
        self.remove(dir, name, loc)
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, dir: Index, name: &[u8]) -> Result<(), Errno> {
        let (idx, loc) = self.find(dir, name)?;
        let is_dir = match &loc {
            Location::Upper(_, m) => m.is_dir(),
            Location::Lower(l) => self.lower_is_dir(*l),
        };
        if !is_dir {
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
            let dpath = self.copy_up(dir, Content::Keep)?;
            self.make_whiteout(&dpath, name)?;
        }
        if let Location::Upper(p, _) = loc {
            remove_all(&p).map_err(io_errno)?;
        }
        self.detach(dir, name);
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
        if flags & sys::file::RENAME_EXCHANGE != 0 {
            return Err(Errno::EINVAL);
        }
        check_name(new_name)?;
        let (src, src_loc) = self.find(dir, name)?;
        let src_is_dir = match &src_loc {
            Location::Upper(_, m) => m.is_dir(),
            Location::Lower(l) => self.lower_is_dir(*l),
        };
        let dst = self.exists(new_dir, new_name)?;
        if let Some((dst_idx, dst_loc)) = &dst {
            if *dst_idx == src {
                return Ok(());
            }
            if flags & sys::file::RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            let dst_is_dir = match dst_loc {
                Location::Upper(_, m) => m.is_dir(),
                Location::Lower(l) => self.lower_is_dir(*l),
            };
            match (src_is_dir, dst_is_dir) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !self.listing(*dst_idx)?.is_empty() => {
                    return Err(Errno::ENOTEMPTY)
                }
                _ => {}
            }
        }
        if src_is_dir && self.node_lower(src).is_some() {
            return Err(Errno::EXDEV);
        }
        let from = self.copy_up(src, Content::Keep)?;
        let to_dir = self.copy_up(new_dir, Content::Keep)?;
        let to = to_dir.join(OsStr::from_bytes(new_name));
        if let Some((_, Location::Upper(p, m))) = &dst {
            if m.is_dir() {
                // An empty merged directory: only whiteouts inside.
                remove_all(p).map_err(io_errno)?;
            }
        }
        if src_is_dir && self.lower_child(new_dir, new_name).is_some() {
            File::create(from.join(scratch::OPAQUE_MARKER)).map_err(io_errno)?;
        }
        std::fs::rename(&from, &to).map_err(io_errno)?;
        self.drop_whiteout(&to_dir, new_name)?;
        if self.lower_child(dir, name).is_some() {
            let from_dir = self.copy_up(dir, Content::Keep)?;
            self.make_whiteout(&from_dir, name)?;
        }
        let mut nodes = self.write_nodes();
        if let Some(old) = nodes.index.remove(&(new_dir, Box::<[u8]>::from(new_name))) {
            nodes.list[old as usize].detached = true;
        }
        nodes.index.remove(&(dir, Box::<[u8]>::from(name)));
        let n = &mut nodes.list[src as usize];
        n.parent = new_dir;
        n.name = new_name.into();
        n.lower = None;
        nodes.index.insert((new_dir, new_name.into()), src);
        drop(nodes);
        self.scratch.touched();
        Ok(())
    }

    /// Changes attributes; a lower entry is copied up first (without its
    /// content when it is being truncated to nothing).
    pub fn setattr(&self, idx: Index, set: SetAttr) -> Result<FileAttr, Errno> {
        let content = if set.size == Some(0) {
            Content::Truncate
        } else {
            Content::Keep
        };
        let path = self.copy_up(idx, content)?;
        let is_link = std::fs::symlink_metadata(&path)
            .map_err(io_errno)?
            .file_type()
            .is_symlink();
        if let Some(mode) = set.mode {
            if !is_link {
                std::fs::set_permissions(&path, PermissionsExt::from_mode(mode & 0o7777))
                    .map_err(io_errno)?;
            }
        }
        if set.uid.is_some() || set.gid.is_some() {
            std::os::unix::fs::lchown(&path, set.uid, set.gid).map_err(io_errno)?;
        }
        if let Some(size) = set.size {
            match set.handle {
                Some(h) => sys::fd::with_handle(h, |f| f.set_len(size)),
                None => std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(size)),
            }
            .map_err(io_errno)?;
        }
        if set.atime.is_some() || set.mtime.is_some() {
            sys::file::set_times(
                &path,
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
        let loc = self.locate(idx)?;
        let path = match loc {
            Location::Upper(p, m) => {
                if m.is_dir() {
                    return Err(Errno::EISDIR);
                }
                p
            }
            Location::Lower(l) => {
                if self.lower_is_dir(l) {
                    return Err(Errno::EISDIR);
                }
                if !is_write(flags) {
                    let n = self.lower.get(l).ok_or(Errno::ESTALE)?;
                    let payload = n.payload().ok_or(Errno::EIO)?;
                    return self
                        .repos
                        .open_payload(&payload)
                        .map_err(|e| Errno::from_i32(e.errno()));
                }
                let content = if flags & libc::O_TRUNC != 0 {
                    Content::Truncate
                } else {
                    Content::Keep
                };
                self.copy_up(idx, content)?
            }
        };
        if is_write(flags) {
            self.scratch.touched();
        }
        open_upper(&path, flags)
    }

    /// Sets an extended attribute (copying a lower entry up first).
    pub fn setxattr(
        &self,
        idx: Index,
        name: &OsStr,
        value: &[u8],
        flags: i32,
    ) -> Result<(), Errno> {
        let path = self.copy_up(idx, Content::Keep)?;
        sys::file::set_xattr(&path, name, value, flags).map_err(io_errno)
    }

    /// Removes an extended attribute.
    pub fn removexattr(&self, idx: Index, name: &OsStr) -> Result<(), Errno> {
        match self.locate(idx)? {
            Location::Upper(p, _) => sys::file::remove_xattr(&p, name).map_err(io_errno),
            Location::Lower(_) => Err(Errno::NO_XATTR),
        }
    }
}

/// Converts a FUSE time to a [`SetTime`].
pub fn set_time(t: fuser::TimeOrNow) -> SetTime {
    match t {
        fuser::TimeOrNow::Now => SetTime::Now,
        fuser::TimeOrNow::SpecificTime(t) => SetTime::At(t),
    }
}
