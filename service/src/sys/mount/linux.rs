//! Linux: lazy unmount, then abort the connection in /sys/fs/fuse.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The FUSE connection serving the mount at `mountpoint` (its device minor).
pub fn connection_of(mountpoint: &Path) -> Option<u64> {
    let dev = std::fs::metadata(mountpoint).ok()?.dev();
    // SAFETY: minor() only does arithmetic on the device number.
    Some(libc::minor(dev) as u64)
}

/// Detaches the mount at `mountpoint` (MNT_DETACH): it disappears at once,
/// and files already open keep working until the connection ends.
pub fn detach(mountpoint: &Path) -> io::Result<()> {
    let c = CString::new(mountpoint.as_os_str().as_bytes())?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ends FUSE connection `id`: pending and future requests fail, and the
/// session's read loop returns.
pub fn abort_connection(id: u64) -> io::Result<()> {
    let path = PathBuf::from(format!("/sys/fs/fuse/connections/{id}/abort"));
    if !path.exists() {
        // fusectl is not mounted here; try to mount it (root only).
        let _ = std::fs::create_dir_all("/sys/fs/fuse/connections");
        let _ = std::process::Command::new("mount")
            .args(["-t", "fusectl", "none", "/sys/fs/fuse/connections"])
            .status();
    }
    std::fs::write(&path, "1")
}

/// Mount points of FUSE filesystems, from /proc/self/mounts.
pub fn mounted_fuse_paths() -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let (_src, target, fstype) = (f.next()?, f.next()?, f.next()?);
            fstype
                .starts_with("fuse")
                .then(|| PathBuf::from(unescape(target)))
        })
        .collect()
}

/// /proc/mounts escapes spaces and a few other bytes as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
