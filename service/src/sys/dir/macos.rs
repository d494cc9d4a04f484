//! macOS: `O_NOFOLLOW_ANY` (macOS 11+) to open beneath a directory without
//! any symlink, `fchmodat(AT_SYMLINK_NOFOLLOW)`, `mknodat` (macOS 13+),
//! `renameatx_np`, `fclonefileat` (APFS), and xattrs through descriptors.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};

use super::{CopyMethod, Dir, Kind, OpenHow};

/// `rename` flags as macFUSE passes them (renamex_np's).
pub const RENAME_NOREPLACE: u32 = libc::RENAME_EXCL;
/// See [`RENAME_NOREPLACE`].
pub const RENAME_EXCHANGE: u32 = libc::RENAME_SWAP;

pub(super) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

pub(super) fn open_beneath(dir: BorrowedFd<'_>, rel: &[u8]) -> io::Result<OwnedFd> {
    // Components are checked names (no "..", no "/"), so the only way out
    // would be a symlink, which O_NOFOLLOW_ANY refuses anywhere in `rel`.
    let flags = DIR_FLAGS | OFlags::from_bits_retain(libc::O_NOFOLLOW_ANY as u32);
    match rustix::fs::openat(dir, OsStr::from_bytes(rel), flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        // macOS before 11: one component at a time.
        Err(rustix::io::Errno::INVAL) => {
            let mut at: Option<OwnedFd> = None;
            for name in rel.split(|b| *b == b'/') {
                let from = at.as_ref().map_or(dir, |fd| std::os::fd::AsFd::as_fd(fd));
                at = Some(rustix::fs::openat(
                    from,
                    OsStr::from_bytes(name),
                    DIR_FLAGS | OFlags::NOFOLLOW,
                    Mode::empty(),
                )?);
            }
            at.ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) fn chmod(dir: BorrowedFd<'_>, name: &OsStr, perm: u32) -> io::Result<()> {
    Ok(rustix::fs::chmodat(
        dir,
        name,
        Mode::from_raw_mode(perm as _),
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

pub(super) fn mknod(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    kind: Kind,
    perm: u32,
    rdev: u64,
) -> io::Result<()> {
    let fmt = match kind {
        Kind::Fifo => libc::S_IFIFO,
        Kind::Socket => libc::S_IFSOCK,
        Kind::CharDevice => libc::S_IFCHR,
        Kind::BlockDevice => libc::S_IFBLK,
        Kind::File => libc::S_IFREG,
        Kind::Dir | Kind::Symlink => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
    };
    let c = cstr(name)?;
    let mode = fmt | (perm as libc::mode_t & 0o7777);
    // SAFETY: a valid directory fd, a NUL-terminated name, plain integers.
    let r = unsafe { libc::mknodat(dir.as_raw_fd(), c.as_ptr(), mode, rdev as libc::dev_t) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub(super) fn rename(
    from: BorrowedFd<'_>,
    name: &OsStr,
    to: BorrowedFd<'_>,
    to_name: &OsStr,
    flags: u32,
) -> io::Result<()> {
    Ok(rustix::fs::renameat_with(
        from,
        name,
        to,
        to_name,
        RenameFlags::from_bits_retain(flags),
    )?)
}

/// `name` itself, opened for its attributes: a symlink is opened as the
/// link (`O_SYMLINK`), a FIFO without waiting for a writer.
fn open_node(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY
        | OFlags::NONBLOCK
        | OFlags::CLOEXEC
        | OFlags::from_bits_retain(libc::O_SYMLINK as u32);
    Ok(rustix::fs::openat(dir, name, flags, Mode::empty())?)
}

fn len(r: isize) -> io::Result<usize> {
    if r >= 0 {
        Ok(r as usize)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn ok(r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn buf_ptr(buf: &mut [u8]) -> *mut libc::c_void {
    if buf.is_empty() {
        std::ptr::null_mut()
    } else {
        buf.as_mut_ptr().cast()
    }
}

pub(super) fn get_xattr(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    attr: &OsStr,
    buf: &mut [u8],
) -> io::Result<usize> {
    let fd = open_node(dir, name)?;
    let a = cstr(attr)?;
    // SAFETY: the buffer is writable for its length (NULL, 0 asks the size).
    len(unsafe { libc::fgetxattr(fd.as_raw_fd(), a.as_ptr(), buf_ptr(buf), buf.len(), 0, 0) })
}

pub(super) fn list_xattr(dir: BorrowedFd<'_>, name: &OsStr, buf: &mut [u8]) -> io::Result<usize> {
    let fd = open_node(dir, name)?;
    // SAFETY: as get_xattr.
    len(unsafe { libc::flistxattr(fd.as_raw_fd(), buf_ptr(buf).cast(), buf.len(), 0) })
}

pub(super) fn set_xattr(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    attr: &OsStr,
    value: &[u8],
    flags: i32,
) -> io::Result<()> {
    let fd = open_node(dir, name)?;
    let a = cstr(attr)?;
    // SAFETY: the value is readable for its length.
    ok(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            a.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
            flags,
        )
    })
}

pub(super) fn remove_xattr(dir: BorrowedFd<'_>, name: &OsStr, attr: &OsStr) -> io::Result<()> {
    let fd = open_node(dir, name)?;
    let a = cstr(attr)?;
    // SAFETY: NUL-terminated attribute name, a valid fd.
    ok(unsafe { libc::fremovexattr(fd.as_raw_fd(), a.as_ptr(), 0) })
}

pub(super) fn clone_or_copy(src: &File, dst: &Dir, name: &OsStr) -> io::Result<(File, CopyMethod)> {
    let how = OpenHow {
        write: true,
        ..OpenHow::default()
    };
    if rustix::fs::fclonefileat(src, dst, name, rustix::fs::CloneFlags::NOFOLLOW).is_ok() {
        let opened = dst.open_file(name.as_bytes(), how).and_then(|f| {
            rustix::fs::fchmod(&f, Mode::from_raw_mode(0o600))?;
            Ok(f)
        });
        if opened.is_err() {
            let _ = dst.unlink(name.as_bytes());
        }
        return opened.map(|f| (f, CopyMethod::Clone));
    }
    let to = dst.open_file(
        name.as_bytes(),
        OpenHow {
            create_new: Some(0o600),
            ..how
        },
    )?;
    let mut r = src;
    let mut w = &to;
    if let Err(e) = io::copy(&mut r, &mut w) {
        let _ = dst.unlink(name.as_bytes());
        return Err(e);
    }
    Ok((to, CopyMethod::ReadWrite))
}
