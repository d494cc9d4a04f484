//! macOS: a forced unmount ends the macFUSE connection.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// macFUSE ends the connection with the forced unmount itself.
pub fn connection_of(_mountpoint: &Path) -> Option<u64> {
    None
}

/// Forcibly unmounts `mountpoint`, even with files open.
pub fn detach(mountpoint: &Path) -> io::Result<()> {
    let c = CString::new(mountpoint.as_os_str().as_bytes())?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::unmount(c.as_ptr(), libc::MNT_FORCE) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Nothing to do: `detach` already ended the connection.
pub fn abort_connection(_id: u64) -> io::Result<()> {
    Ok(())
}

/// The errno a path under a macFUSE mount whose server is gone answers
/// ("Device not configured").
pub const DEAD_MOUNT_ERRNO: i32 = libc::ENXIO;

/// The source name (`fsname`, macOS's "mounted from") of the macFUSE
/// mount at `path`, if there is one.
pub fn fuse_mount_source(path: &Path) -> Option<String> {
    mounted_fuse()
        .into_iter()
        .filter(|(_, p)| p == path)
        // The top one: what a path there reaches.
        .last()
        .map(|(s, _)| s)
}

/// Mount points of macFUSE filesystems, from getmntinfo.
pub fn mounted_fuse_paths() -> Vec<PathBuf> {
    mounted_fuse().into_iter().map(|(_, p)| p).collect()
}

/// (source, mount point) of every macFUSE mount.
fn mounted_fuse() -> Vec<(String, PathBuf)> {
    let mut buf: *mut libc::statfs = std::ptr::null_mut();
    // SAFETY: getmntinfo points `buf` at an array it owns of the returned length.
    let n = unsafe { libc::getmntinfo(&mut buf, libc::MNT_NOWAIT) };
    if n <= 0 || buf.is_null() {
        return Vec::new();
    }
    // SAFETY: `n` entries are valid until the next getmntinfo call on this thread.
    let entries = unsafe { std::slice::from_raw_parts(buf, n as usize) };
    entries
        .iter()
        .filter_map(|e| {
            // SAFETY: the three fields are NUL-terminated C strings in fixed arrays.
            let fstype = unsafe { std::ffi::CStr::from_ptr(e.f_fstypename.as_ptr()) };
            // SAFETY: as above.
            let path = unsafe { std::ffi::CStr::from_ptr(e.f_mntonname.as_ptr()) };
            // SAFETY: as above.
            let from = unsafe { std::ffi::CStr::from_ptr(e.f_mntfromname.as_ptr()) };
            fstype.to_bytes().starts_with(b"macfuse").then(|| {
                (
                    from.to_string_lossy().into_owned(),
                    PathBuf::from(std::ffi::OsStr::from_bytes(path.to_bytes())),
                )
            })
        })
        .collect()
}
