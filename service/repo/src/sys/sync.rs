//! Making many staged files durable at once.

use std::fs::File;
use std::io;

/// Flushes everything written on the file system that holds `file` to
/// disk (`syncfs`): one flush for a whole batch of staged files, instead
/// of one `fsync` each.
#[cfg(target_os = "linux")]
pub(crate) fn sync_file_system(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs takes a descriptor that `file` keeps open for the
    // call, and no pointers.
    if unsafe { libc::syncfs(file.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// (No `syncfs` here: the caller syncs each staged file instead.)
#[cfg(not(target_os = "linux"))]
pub(crate) fn sync_file_system(_file: &File) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Sets the modification (and access) time of `path` to now, without
/// following a symlink: an object or payload a writer found in place and
/// uses again is young once more, so a clean running at the same moment
/// leaves it alone (`clean::GRACE`).
pub(crate) fn touch(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let now = libc::timespec {
        tv_sec: 0,
        tv_nsec: libc::UTIME_NOW,
    };
    let times = [now, now];
    // SAFETY: `c` is a NUL-terminated path and `times` two timespecs, both
    // alive for the call.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
