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
