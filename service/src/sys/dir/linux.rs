//! Linux: `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, and `O_PATH`
//! descriptors reached through `/proc/self/fd` for what has no `*at` call
//! that leaves symlinks alone (chmod, xattrs).

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{FileType, Mode, OFlags, RenameFlags, ResolveFlags};

use super::{CopyMethod, Dir, Kind, OpenHow};

/// `rename` flags as FUSE passes them.
pub const RENAME_NOREPLACE: u32 = libc::RENAME_NOREPLACE;
/// See [`RENAME_NOREPLACE`].
pub const RENAME_EXCHANGE: u32 = libc::RENAME_EXCHANGE;

/// Directories are opened as paths only: every `*at` call accepts them,
/// and no read permission is needed.
pub(super) const DIR_FLAGS: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);

pub(super) fn open_beneath(dir: BorrowedFd<'_>, rel: &[u8]) -> io::Result<OwnedFd> {
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(dir, rel, DIR_FLAGS, Mode::empty(), resolve) {
        Ok(fd) => Ok(fd),
        // Kernels before 5.6 (or a seccomp filter): one component at a time.
        Err(e) if e == rustix::io::Errno::NOSYS || e == rustix::io::Errno::PERM => walk(dir, rel),
        Err(e) => Err(e.into()),
    }
}

fn walk(dir: BorrowedFd<'_>, rel: &[u8]) -> io::Result<OwnedFd> {
    let mut at: Option<OwnedFd> = None;
    for name in rel.split(|b| *b == b'/') {
        let from = at.as_ref().map_or(dir, |fd| fd.as_fd());
        let next = rustix::fs::openat(
            from,
            OsStr::from_bytes(name),
            DIR_FLAGS | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        at = Some(next);
    }
    at.ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `/proc/self/fd/N` of a descriptor: a path to exactly that file.
fn proc_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// `name` itself, opened as a path (a symlink stays a symlink).
fn open_path(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

pub(super) fn chmod(dir: BorrowedFd<'_>, name: &OsStr, perm: u32) -> io::Result<()> {
    let fd = open_path(dir, name)?;
    if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) == FileType::Symlink {
        // Linux has no permissions on symlinks.
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    Ok(rustix::fs::chmod(
        proc_path(&fd).as_str(),
        Mode::from_raw_mode(perm),
    )?)
}

pub(super) fn mknod(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    kind: Kind,
    perm: u32,
    rdev: u64,
) -> io::Result<()> {
    let ft = match kind {
        Kind::Fifo => FileType::Fifo,
        Kind::Socket => FileType::Socket,
        Kind::CharDevice => FileType::CharacterDevice,
        Kind::BlockDevice => FileType::BlockDevice,
        Kind::File => FileType::RegularFile,
        Kind::Dir | Kind::Symlink => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
    };
    Ok(rustix::fs::mknodat(
        dir,
        name,
        ft,
        Mode::from_raw_mode(perm),
        rdev,
    )?)
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

pub(super) fn get_xattr(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    attr: &OsStr,
    buf: &mut [u8],
) -> io::Result<usize> {
    let fd = open_path(dir, name)?;
    if buf.is_empty() {
        return Ok(rustix::fs::getxattr_query(proc_path(&fd).as_str(), attr)?);
    }
    Ok(rustix::fs::getxattr(proc_path(&fd).as_str(), attr, buf)?)
}

pub(super) fn list_xattr(dir: BorrowedFd<'_>, name: &OsStr, buf: &mut [u8]) -> io::Result<usize> {
    let fd = open_path(dir, name)?;
    if buf.is_empty() {
        return Ok(rustix::fs::listxattr_query(proc_path(&fd).as_str())?);
    }
    Ok(rustix::fs::listxattr(proc_path(&fd).as_str(), buf)?)
}

pub(super) fn set_xattr(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    attr: &OsStr,
    value: &[u8],
    flags: i32,
) -> io::Result<()> {
    let fd = open_path(dir, name)?;
    Ok(rustix::fs::setxattr(
        proc_path(&fd).as_str(),
        attr,
        value,
        rustix::fs::XattrFlags::from_bits_retain(flags as u32),
    )?)
}

pub(super) fn remove_xattr(dir: BorrowedFd<'_>, name: &OsStr, attr: &OsStr) -> io::Result<()> {
    let fd = open_path(dir, name)?;
    Ok(rustix::fs::removexattr(proc_path(&fd).as_str(), attr)?)
}

pub(super) fn clone_or_copy(src: &File, dst: &Dir, name: &OsStr) -> io::Result<(File, CopyMethod)> {
    let to = dst.open_file(
        name.as_bytes(),
        OpenHow {
            write: true,
            create_new: Some(0o600),
            ..OpenHow::default()
        },
    )?;
    let copied = copy_into(src, &to);
    if copied.is_err() {
        // Only ever the file made just now.
        let _ = dst.unlink(name.as_bytes());
    }
    copied.map(|m| (to, m))
}

fn copy_into(src: &File, to: &File) -> io::Result<CopyMethod> {
    if rustix::fs::ioctl_ficlone(to, src).is_ok() {
        return Ok(CopyMethod::Clone);
    }
    let len = src.metadata()?.len();
    let mut done = 0u64;
    let (mut from_off, mut to_off) = (0u64, 0u64);
    while done < len {
        let want = (len - done).min(1 << 30) as usize;
        match rustix::fs::copy_file_range(src, Some(&mut from_off), to, Some(&mut to_off), want) {
            Ok(0) => break,
            Ok(n) => done += n as u64,
            Err(rustix::io::Errno::INTR) => continue,
            Err(
                rustix::io::Errno::XDEV
                | rustix::io::Errno::NOSYS
                | rustix::io::Errno::OPNOTSUPP
                | rustix::io::Errno::INVAL,
            ) if done == 0 => {
                let mut r = src;
                let mut w = to;
                io::copy(&mut r, &mut w)?;
                return Ok(CopyMethod::ReadWrite);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(CopyMethod::Kernel)
}
