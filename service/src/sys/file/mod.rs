//! File operations std lacks: cloning a file's blocks, times and FIFOs on
//! paths without following symlinks, and extended attributes.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "linux")]
use linux as platform;
#[cfg(target_os = "macos")]
use macos as platform;

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::SystemTime;

pub use platform::{RENAME_EXCHANGE, RENAME_NOREPLACE};

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

/// Creates `dst` (which must not exist) with the content of `src`, cloning
/// blocks where the filesystem can, and returns it open for writing with
/// mode 0600 (the caller sets the final mode).
pub fn clone_or_copy(src: &Path, dst: &Path) -> io::Result<(File, CopyMethod)> {
    platform::clone_or_copy(src, dst)
}

pub(crate) fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn cname(n: &OsStr) -> io::Result<CString> {
    CString::new(n.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// A time to set: a moment, now, or unchanged.
#[derive(Clone, Copy, Debug)]
pub enum SetTime {
    At(SystemTime),
    Now,
    Omit,
}

fn timespec(t: SetTime) -> libc::timespec {
    match t {
        SetTime::Omit => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        SetTime::Now => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        SetTime::At(t) => {
            let (sec, nsec) = match t.duration_since(SystemTime::UNIX_EPOCH) {
                Ok(d) => (d.as_secs() as i64, d.subsec_nanos() as i64),
                Err(e) => {
                    let d = e.duration();
                    let nsec = d.subsec_nanos() as i64;
                    if nsec == 0 {
                        (-(d.as_secs() as i64), 0)
                    } else {
                        (-(d.as_secs() as i64) - 1, 1_000_000_000 - nsec)
                    }
                }
            };
            libc::timespec {
                tv_sec: sec as libc::time_t,
                tv_nsec: nsec as _,
            }
        }
    }
}

/// Sets the access and modification times of `path` itself (a symlink is
/// not followed).
pub fn set_times(path: &Path, atime: SetTime, mtime: SetTime) -> io::Result<()> {
    let c = cpath(path)?;
    let times = [timespec(atime), timespec(mtime)];
    // SAFETY: a NUL-terminated path and an array of two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates a FIFO at `path` with `mode` (less the umask).
pub fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    let c = cpath(path)?;
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), mode as libc::mode_t) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The value of extended attribute `name` of `path` itself.
pub fn get_xattr(path: &Path, name: &OsStr) -> io::Result<Vec<u8>> {
    let (p, n) = (cpath(path)?, cname(name)?);
    let mut buf = vec![0u8; 256];
    loop {
        match platform::get_xattr(&p, &n, &mut buf) {
            Ok(len) => {
                buf.truncate(len);
                return Ok(buf);
            }
            Err(e) if e.raw_os_error() == Some(libc::ERANGE) && buf.len() < 1 << 20 => {
                let len = platform::get_xattr(&p, &n, &mut [])?;
                buf.resize(len.max(buf.len() * 2), 0);
            }
            Err(e) => return Err(e),
        }
    }
}

/// The names of `path`'s extended attributes, NUL-terminated, as
/// listxattr(2) returns them.
pub fn list_xattr(path: &Path) -> io::Result<Vec<u8>> {
    let p = cpath(path)?;
    let mut buf = vec![0u8; 1024];
    loop {
        match platform::list_xattr(&p, &mut buf) {
            Ok(len) => {
                buf.truncate(len);
                return Ok(buf);
            }
            Err(e) if e.raw_os_error() == Some(libc::ERANGE) && buf.len() < 1 << 20 => {
                let len = platform::list_xattr(&p, &mut [])?;
                buf.resize(len.max(buf.len() * 2), 0);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sets extended attribute `name` of `path` itself; `flags` as setxattr(2).
pub fn set_xattr(path: &Path, name: &OsStr, value: &[u8], flags: i32) -> io::Result<()> {
    platform::set_xattr(&cpath(path)?, &cname(name)?, value, flags)
}

/// Removes extended attribute `name` of `path` itself.
pub fn remove_xattr(path: &Path, name: &OsStr) -> io::Result<()> {
    platform::remove_xattr(&cpath(path)?, &cname(name)?)
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn check_len(r: libc::ssize_t) -> io::Result<usize> {
    if r >= 0 {
        Ok(r as usize)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates `dst` exclusively with mode 0600.
fn create_new(dst: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
}

/// Takes an exclusive advisory lock on `file` without waiting; false if
/// another open file (of any process) holds it. Released when the file is
/// closed, also when the process dies.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this File owns for the whole call.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_or_copy_copies_everything() {
        let d = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(d.path().join("a"), &data).unwrap();
        let (_f, _method) = clone_or_copy(&d.path().join("a"), &d.path().join("b")).unwrap();
        assert_eq!(std::fs::read(d.path().join("b")).unwrap(), data);
        // dst must not exist
        assert!(clone_or_copy(&d.path().join("a"), &d.path().join("b")).is_err());
    }

    #[test]
    fn times_and_xattrs_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"x").unwrap();
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::new(1_000_000, 5000);
        set_times(&p, SetTime::At(t), SetTime::At(t)).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().modified().unwrap(), t);
        let name = OsStr::new("user.spfs-test");
        match set_xattr(&p, name, b"value", 0) {
            Ok(()) => {
                assert_eq!(get_xattr(&p, name).unwrap(), b"value");
                let list = list_xattr(&p).unwrap();
                assert!(list.split(|b| *b == 0).any(|n| n == name.as_bytes()));
                remove_xattr(&p, name).unwrap();
                assert!(get_xattr(&p, name).is_err());
            }
            // tmpfs without user xattrs
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP)),
        }
    }
}
