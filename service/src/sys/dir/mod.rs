//! `Dir`: the safe-fd type through which every change to a scratch
//! directory is made.
//!
//! A scratch directory belongs to the runtime's user, who can change it
//! behind the service's back — for instance swap a directory for a symlink
//! to somewhere else. A service run by root must never follow such a
//! link. So nothing here takes a path: a `Dir` is an open directory, a
//! sub-directory is opened *beneath* it without following any symlink
//! (`openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` on Linux,
//! `O_NOFOLLOW_ANY` on macOS), and each operation acts on one name in it
//! with the `*at` calls, never following a symlink in that name either.
//! (As fuse-overlayfs does with its own safe-fd type.)
//!
//! Names are single path components as FUSE passes them: never empty, `.`,
//! `..` or holding a `/` (the callers check; [`valid_name`] says how).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as platform;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
use macos as platform;

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rustix::fs::{AtFlags, Mode, OFlags};

pub use platform::{RENAME_EXCHANGE, RENAME_NOREPLACE};

/// What kind of file a [`Meta`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A Unix socket node.
    Socket,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
}

/// The attributes of a file, as `lstat` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// What it is.
    pub kind: Kind,
    /// Permission bits, with set-id and sticky bits (`mode & 0o7777`).
    pub perm: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Hard links.
    pub nlink: u64,
    /// Device number, for device nodes.
    pub rdev: u64,
    /// The filesystem it is on.
    pub dev: u64,
    /// Its inode number there.
    pub ino: u64,
    /// Preferred I/O size.
    pub blksize: u32,
    /// Last access.
    pub atime: SystemTime,
    /// Last change of contents.
    pub mtime: SystemTime,
    /// Last change of attributes.
    pub ctime: SystemTime,
}

impl Meta {
    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }

    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)] // widths differ by platform
    fn from_stat(st: &rustix::fs::Stat) -> Meta {
        let kind = match rustix::fs::FileType::from_raw_mode(st.st_mode as _) {
            rustix::fs::FileType::Directory => Kind::Dir,
            rustix::fs::FileType::Symlink => Kind::Symlink,
            rustix::fs::FileType::Fifo => Kind::Fifo,
            rustix::fs::FileType::Socket => Kind::Socket,
            rustix::fs::FileType::CharacterDevice => Kind::CharDevice,
            rustix::fs::FileType::BlockDevice => Kind::BlockDevice,
            _ => Kind::File,
        };
        Meta {
            kind,
            perm: (st.st_mode as u32) & 0o7777,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            size: st.st_size as u64,
            blocks: st.st_blocks as u64,
            nlink: st.st_nlink as u64,
            rdev: st.st_rdev as u64,
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            blksize: st.st_blksize as u32,
            atime: system_time(st.st_atime as i64, st.st_atime_nsec as i64),
            mtime: system_time(st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: system_time(st.st_ctime as i64, st.st_ctime_nsec as i64),
        }
    }

    /// The attributes of an open file.
    pub fn of_file(f: &File) -> io::Result<Meta> {
        Ok(Meta::from_stat(&rustix::fs::fstat(f)?))
    }
}

fn system_time(secs: i64, nsecs: i64) -> SystemTime {
    let nsecs = nsecs.clamp(0, 999_999_999) as u64;
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64) + Duration::from_nanos(nsecs)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            + Duration::from_nanos(nsecs)
    }
}

/// A time to set: a moment, now, or unchanged.
#[derive(Clone, Copy, Debug)]
pub enum SetTime {
    /// This moment.
    At(SystemTime),
    /// The current time.
    Now,
    /// Leave it as it is.
    Omit,
}

fn timespec(t: SetTime) -> rustix::fs::Timespec {
    match t {
        SetTime::Omit => rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT,
        },
        SetTime::Now => rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_NOW,
        },
        SetTime::At(t) => {
            let (sec, nsec) = match t.duration_since(SystemTime::UNIX_EPOCH) {
                Ok(d) => (d.as_secs() as i64, i64::from(d.subsec_nanos())),
                Err(e) => {
                    let d = e.duration();
                    let nsec = i64::from(d.subsec_nanos());
                    if nsec == 0 {
                        (-(d.as_secs() as i64), 0)
                    } else {
                        (-(d.as_secs() as i64) - 1, 1_000_000_000 - nsec)
                    }
                }
            };
            rustix::fs::Timespec {
                tv_sec: sec as _,
                tv_nsec: nsec as _,
            }
        }
    }
}

/// How a file is opened by [`Dir::open_file`].
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenHow {
    /// Open for reading.
    pub read: bool,
    /// Open for writing.
    pub write: bool,
    /// Append every write.
    pub append: bool,
    /// Truncate to nothing.
    pub truncate: bool,
    /// Create it, failing if it exists; with this mode.
    pub create_new: Option<u32>,
    /// Do not block (FIFOs).
    pub nonblock: bool,
    /// Other open(2) flags, passed on as they are (`O_SYNC`, `O_DIRECT`…).
    pub extra: i32,
}

/// True for a name [`Dir`] operations accept: one non-empty path
/// component other than `.` and `..`.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

fn check(name: &[u8]) -> io::Result<&OsStr> {
    if valid_name(name) {
        Ok(OsStr::from_bytes(name))
    } else {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }
}

/// The error `sub` gives when a component is not a plain directory (a
/// symlink, or something that escapes): the caller treats the entry as
/// gone.
pub fn is_not_beneath(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ELOOP) | Some(libc::EXDEV) | Some(libc::ENOTDIR)
    )
}

/// The longest relative path opened in one step (under PATH_MAX, 4096).
const SUB_CHUNK: usize = 3072;

/// An open directory; see the module's documentation.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Dir {
    /// Opens the directory at `path`, which the service chose (a scratch
    /// root); its last component is not followed if it is a symlink.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let fd = rustix::fs::open(path, platform::DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())?;
        Ok(Dir { fd })
    }

    /// Another descriptor of the same directory.
    pub fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
        })
    }

    /// The directory reached from this one through `names`, without
    /// following any symlink and without leaving this one. An error that
    /// [`is_not_beneath`] accepts if a component is not a directory.
    pub fn sub<'a>(&self, names: impl IntoIterator<Item = &'a [u8]>) -> io::Result<Dir> {
        // Opened a chunk of names at a time, each chunk beneath the last
        // directory opened: a deep path may be longer than PATH_MAX, as
        // it may be on the runtime's side, and each step stays safe.
        let mut at: Option<Dir> = None;
        let mut rel: Vec<u8> = Vec::new();
        for n in names {
            check(n)?;
            if !rel.is_empty() && rel.len() + 1 + n.len() > SUB_CHUNK {
                let from = at.as_ref().unwrap_or(self);
                at = Some(Dir {
                    fd: platform::open_beneath(from.as_fd(), &rel)?,
                });
                rel.clear();
            }
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(n);
        }
        let from = at.as_ref().unwrap_or(self);
        if rel.is_empty() {
            return from.try_clone();
        }
        Ok(Dir {
            fd: platform::open_beneath(from.as_fd(), &rel)?,
        })
    }

    /// The attributes of this directory itself.
    pub fn meta(&self) -> io::Result<Meta> {
        Ok(Meta::from_stat(&rustix::fs::fstat(&self.fd)?))
    }

    /// The attributes of `name` (a symlink itself, not its target).
    pub fn stat(&self, name: &[u8]) -> io::Result<Meta> {
        let st = rustix::fs::statat(&self.fd, check(name)?, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(Meta::from_stat(&st))
    }

    /// The attributes of `name`, or `None` if nothing has that name.
    pub fn try_stat(&self, name: &[u8]) -> io::Result<Option<Meta>> {
        match self.stat(name) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens file `name` (never a symlink: `ELOOP`).
    pub fn open_file(&self, name: &[u8], how: OpenHow) -> io::Result<File> {
        let mut flags = OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
        flags |= match (how.read, how.write) {
            (_, false) => OFlags::RDONLY,
            (false, true) => OFlags::WRONLY,
            (true, true) => OFlags::RDWR,
        };
        if how.append {
            flags |= OFlags::APPEND;
        }
        if how.truncate {
            flags |= OFlags::TRUNC;
        }
        if how.nonblock {
            flags |= OFlags::NONBLOCK;
        }
        flags |= OFlags::from_bits_retain(how.extra as _);
        let mode = match how.create_new {
            Some(mode) => {
                flags |= OFlags::CREATE | OFlags::EXCL;
                Mode::from_raw_mode(mode as _)
            }
            None => Mode::empty(),
        };
        let fd = rustix::fs::openat(&self.fd, check(name)?, flags, mode)?;
        Ok(File::from(fd))
    }

    /// Creates directory `name` with `mode` (less the umask of this process).
    pub fn mkdir(&self, name: &[u8], mode: u32) -> io::Result<()> {
        Ok(rustix::fs::mkdirat(
            &self.fd,
            check(name)?,
            Mode::from_raw_mode(mode as _),
        )?)
    }

    /// Creates a FIFO, socket or device node `name`; `kind` and `perm` as
    /// in `st_mode`.
    pub fn mknod(&self, name: &[u8], kind: Kind, perm: u32, rdev: u64) -> io::Result<()> {
        platform::mknod(self.as_fd(), check(name)?, kind, perm, rdev)
    }

    /// Creates symlink `name` pointing at `target`.
    pub fn symlink(&self, target: &[u8], name: &[u8]) -> io::Result<()> {
        Ok(rustix::fs::symlinkat(
            OsStr::from_bytes(target),
            &self.fd,
            check(name)?,
        )?)
    }

    /// Makes `to_name` in `to` another name of `name` here (a hard link;
    /// a symlink is linked itself).
    pub fn link(&self, name: &[u8], to: &Dir, to_name: &[u8]) -> io::Result<()> {
        Ok(rustix::fs::linkat(
            &self.fd,
            check(name)?,
            &to.fd,
            check(to_name)?,
            AtFlags::empty(),
        )?)
    }

    /// Removes the non-directory `name`.
    pub fn unlink(&self, name: &[u8]) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(
            &self.fd,
            check(name)?,
            AtFlags::empty(),
        )?)
    }

    /// Removes the empty directory `name`.
    pub fn rmdir(&self, name: &[u8]) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(
            &self.fd,
            check(name)?,
            AtFlags::REMOVEDIR,
        )?)
    }

    /// Removes `name` and, if it is a directory, everything in it; a
    /// missing `name` is not an error. Symlinks inside are removed, never
    /// followed.
    pub fn remove_all(&self, name: &[u8]) -> io::Result<()> {
        let meta = match self.try_stat(name)? {
            Some(m) => m,
            None => return Ok(()),
        };
        if meta.kind != Kind::Dir {
            return match self.unlink(name) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                r => r,
            };
        }
        let sub = match self.sub([name]) {
            Ok(d) => d,
            // Swapped for something else since the stat: remove that.
            Err(e) if is_not_beneath(&e) => return self.remove_all(name),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for child in sub.names()? {
            sub.remove_all(&child)?;
        }
        match self.rmdir(name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }

    /// Moves `name` here to `to_name` in `to`, replacing what is there
    /// (`flags`: [`RENAME_NOREPLACE`], [`RENAME_EXCHANGE`], or 0).
    pub fn rename(&self, name: &[u8], to: &Dir, to_name: &[u8], flags: u32) -> io::Result<()> {
        platform::rename(
            self.as_fd(),
            check(name)?,
            to.as_fd(),
            check(to_name)?,
            flags,
        )
    }

    /// Changes the owner of `name` itself (a symlink is not followed).
    pub fn chown(&self, name: &[u8], uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        Ok(rustix::fs::chownat(
            &self.fd,
            check(name)?,
            uid.map(rustix::fs::Uid::from_raw),
            gid.map(rustix::fs::Gid::from_raw),
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Sets the permission bits of `name`, which must not be a symlink.
    pub fn chmod(&self, name: &[u8], perm: u32) -> io::Result<()> {
        platform::chmod(self.as_fd(), check(name)?, perm & 0o7777)
    }

    /// Sets the access and modification times of `name` itself.
    pub fn set_times(&self, name: &[u8], atime: SetTime, mtime: SetTime) -> io::Result<()> {
        let times = rustix::fs::Timestamps {
            last_access: timespec(atime),
            last_modification: timespec(mtime),
        };
        Ok(rustix::fs::utimensat(
            &self.fd,
            check(name)?,
            &times,
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// The target of symlink `name`.
    pub fn read_link(&self, name: &[u8]) -> io::Result<Vec<u8>> {
        let target = rustix::fs::readlinkat(&self.fd, check(name)?, Vec::new())?;
        Ok(target.into_bytes())
    }

    /// The names in this directory, `.` and `..` left out, in no order.
    pub fn names(&self) -> io::Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        // A readable descriptor of its own (ours may be a path-only one).
        let readable = rustix::fs::openat(
            &self.fd,
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let dir = rustix::fs::Dir::new(readable)?;
        for entry in dir {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                out.push(name.to_vec());
            }
        }
        Ok(out)
    }

    /// The value of extended attribute `attr` of `name` itself.
    pub fn get_xattr(&self, name: &[u8], attr: &OsStr) -> io::Result<Vec<u8>> {
        let name = check(name)?;
        let mut buf = vec![0u8; 256];
        loop {
            match platform::get_xattr(self.as_fd(), name, attr, &mut buf) {
                Ok(len) => {
                    buf.truncate(len);
                    return Ok(buf);
                }
                Err(e) if e.raw_os_error() == Some(libc::ERANGE) && buf.len() < 1 << 20 => {
                    let len = platform::get_xattr(self.as_fd(), name, attr, &mut [])?;
                    buf.resize(len.max(buf.len() * 2), 0);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The names of `name`'s extended attributes, each NUL-terminated, as
    /// listxattr(2) returns them.
    pub fn list_xattr(&self, name: &[u8]) -> io::Result<Vec<u8>> {
        let name = check(name)?;
        let mut buf = vec![0u8; 1024];
        loop {
            match platform::list_xattr(self.as_fd(), name, &mut buf) {
                Ok(len) => {
                    buf.truncate(len);
                    return Ok(buf);
                }
                Err(e) if e.raw_os_error() == Some(libc::ERANGE) && buf.len() < 1 << 20 => {
                    let len = platform::list_xattr(self.as_fd(), name, &mut [])?;
                    buf.resize(len.max(buf.len() * 2), 0);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sets extended attribute `attr` of `name`; `flags` as setxattr(2).
    pub fn set_xattr(&self, name: &[u8], attr: &OsStr, value: &[u8], flags: i32) -> io::Result<()> {
        platform::set_xattr(self.as_fd(), check(name)?, attr, value, flags)
    }

    /// Removes extended attribute `attr` of `name`.
    pub fn remove_xattr(&self, name: &[u8], attr: &OsStr) -> io::Result<()> {
        platform::remove_xattr(self.as_fd(), check(name)?, attr)
    }

    /// Creates file `name` here (which must not exist) with the content of
    /// `src`, sharing its blocks where the filesystem can, and returns it
    /// open for writing with mode 0600 (the caller sets the final mode).
    /// Whatever goes wrong, no partial `name` is left.
    pub fn clone_from(&self, src: &File, name: &[u8]) -> io::Result<(File, CopyMethod)> {
        platform::clone_or_copy(src, self, check(name)?)
    }

    /// Size and free space of the filesystem this directory is on.
    pub fn statvfs(&self) -> io::Result<rustix::fs::StatVfs> {
        Ok(rustix::fs::fstatvfs(&self.fd)?)
    }
}

/// How a copy was made, for the logs and the benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyMethod {
    /// Blocks shared with the source (FICLONE, clonefile): no data copied.
    Clone,
    /// Copied inside the kernel (copy_file_range).
    Kernel,
    /// Read and written through user space.
    ReadWrite,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn how_new(mode: u32) -> OpenHow {
        OpenHow {
            write: true,
            create_new: Some(mode),
            ..OpenHow::default()
        }
    }

    #[test]
    fn operations_stay_beneath_and_never_follow_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        symlink(&outside, root.join("link")).unwrap();
        symlink(&outside, root.join("a/b/link")).unwrap();
        std::fs::write(outside.join("f"), b"keep").unwrap();
        let dir = Dir::open(&root).unwrap();

        let b = dir.sub([&b"a"[..], b"b"]).unwrap();
        b.open_file(b"new", how_new(0o644)).unwrap();
        assert!(root.join("a/b/new").exists());
        for path in [&[&b"link"[..]][..], &[b"a", b"b", b"link"]] {
            let e = dir.sub(path.iter().copied()).unwrap_err();
            assert!(is_not_beneath(&e), "{e}");
        }
        // nothing through the symlinks: open, chmod, chown, times, remove
        let e = dir.open_file(b"link", OpenHow::default()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        assert!(dir.chmod(b"link", 0o777).is_err());
        dir.set_times(b"link", SetTime::Now, SetTime::Now).unwrap();
        dir.remove_all(b"link").unwrap();
        assert_eq!(std::fs::read(outside.join("f")).unwrap(), b"keep");
        assert_eq!(
            std::fs::metadata(&outside).unwrap().permissions().mode() & 0o777,
            0o755 & std::fs::metadata(&outside).unwrap().permissions().mode()
        );
        // names that are not one component are refused
        for bad in [&b""[..], b".", b"..", b"a/b"] {
            assert!(dir.stat(bad).is_err());
            assert!(dir.sub([bad]).is_err());
        }
        // remove_all of a tree that holds a symlink out removes the link only
        dir.remove_all(b"a").unwrap();
        assert!(!root.join("a").exists());
        assert_eq!(std::fs::read(outside.join("f")).unwrap(), b"keep");
    }

    #[test]
    fn files_links_nodes_times_and_renames() {
        let t = tempfile::tempdir().unwrap();
        let dir = Dir::open(t.path()).unwrap();
        let mut f = dir.open_file(b"f", how_new(0o600)).unwrap();
        std::io::Write::write_all(&mut f, b"data").unwrap();
        dir.link(b"f", &dir, b"g").unwrap();
        assert_eq!(dir.stat(b"g").unwrap().nlink, 2);
        assert_eq!(dir.stat(b"f").unwrap().ino, dir.stat(b"g").unwrap().ino);
        dir.chmod(b"g", 0o640).unwrap();
        assert_eq!(dir.stat(b"f").unwrap().perm, 0o640);
        dir.mknod(b"fifo", Kind::Fifo, 0o600, 0).unwrap();
        assert_eq!(dir.stat(b"fifo").unwrap().kind, Kind::Fifo);
        dir.symlink(b"f", b"sl").unwrap();
        assert_eq!(dir.read_link(b"sl").unwrap(), b"f");
        let t0 = SystemTime::UNIX_EPOCH + Duration::new(1_000_000, 5000);
        dir.set_times(b"f", SetTime::At(t0), SetTime::At(t0))
            .unwrap();
        assert_eq!(dir.stat(b"g").unwrap().mtime, t0);
        dir.mkdir(b"d", 0o755).unwrap();
        let d = dir.sub([&b"d"[..]]).unwrap();
        dir.rename(b"f", &d, b"moved", 0).unwrap();
        let e = dir
            .rename(b"g", &d, b"moved", RENAME_NOREPLACE)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        let mut names = dir.names().unwrap();
        names.sort();
        assert_eq!(names, [&b"d"[..], b"fifo", b"g", b"sl"]);
        assert_eq!(std::fs::read(t.path().join("d/moved")).unwrap(), b"data");
        // a clone or copy has the content and mode 0600
        let src = File::open(t.path().join("d/moved")).unwrap();
        let (_, _method) = dir.clone_from(&src, b"copy").unwrap();
        assert_eq!(std::fs::read(t.path().join("copy")).unwrap(), b"data");
        assert_eq!(dir.stat(b"copy").unwrap().perm, 0o600);
        assert!(dir.clone_from(&src, b"copy").is_err(), "copy exists");
        assert_eq!(std::fs::read(t.path().join("copy")).unwrap(), b"data");
    }

    #[test]
    fn xattrs_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let dir = Dir::open(t.path()).unwrap();
        dir.open_file(b"f", how_new(0o644)).unwrap();
        let name = OsStr::new("user.spfs-test");
        match dir.set_xattr(b"f", name, b"value", 0) {
            Ok(()) => {
                assert_eq!(dir.get_xattr(b"f", name).unwrap(), b"value");
                let list = dir.list_xattr(b"f").unwrap();
                assert!(list.split(|b| *b == 0).any(|n| n == name.as_bytes()));
                dir.remove_xattr(b"f", name).unwrap();
                assert!(dir.get_xattr(b"f", name).is_err());
            }
            // tmpfs without user xattrs
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP)),
        }
    }
}
