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

const FUSECTL: &str = "/sys/fs/fuse/connections";

/// Ends FUSE connection `id`: pending and future requests fail, and the
/// session's read loop returns. Mounts the FUSE control filesystem for
/// the moment if the system has not (root only), and leaves it as found.
pub fn abort_connection(id: u64) -> io::Result<()> {
    let path = PathBuf::from(format!("{FUSECTL}/{id}/abort"));
    let mounted_here = !fusectl_mounted() && mount_fusectl().is_ok();
    let result = std::fs::write(&path, "1");
    if mounted_here {
        let _ = detach(Path::new(FUSECTL));
    }
    result
}

fn fusectl_mounted() -> bool {
    mounts().any(|(target, fstype)| fstype == "fusectl" && target == FUSECTL)
}

fn mount_fusectl() -> io::Result<()> {
    let (src, target, fstype) = (c"none", CString::new(FUSECTL)?, c"fusectl");
    // SAFETY: NUL-terminated strings and no mount data.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// (mount point, filesystem type) of every mount, from /proc/self/mounts.
fn mounts() -> impl Iterator<Item = (String, String)> {
    mounts_with_source().map(|(_, target, fstype)| (target, fstype))
}

/// (source, mount point, filesystem type) of every mount.
fn mounts_with_source() -> impl Iterator<Item = (String, String, String)> {
    let text = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let (src, target, fstype) = (f.next()?, f.next()?, f.next()?);
            Some((unescape(src), unescape(target), fstype.to_owned()))
        })
        .collect::<Vec<_>>()
        .into_iter()
}

/// The source name (`fsname`) of the FUSE mount at `path`, if there is one.
pub fn fuse_mount_source(path: &Path) -> Option<String> {
    mounts_with_source()
        .filter(|(_, target, fstype)| {
            Path::new(target) == path && (fstype == "fuse" || fstype.starts_with("fuse."))
        })
        // The top one: what a path there reaches.
        .last()
        .map(|(src, _, _)| src)
}

/// The errno a path under a FUSE mount whose server is gone answers.
pub const DEAD_MOUNT_ERRNO: i32 = libc::ENOTCONN;

/// Mount points of FUSE filesystems (`fuse`, `fuse.*`; not the `fusectl`
/// control filesystem), from /proc/self/mounts.
pub fn mounted_fuse_paths() -> Vec<PathBuf> {
    mounts()
        .filter(|(_, fstype)| fstype == "fuse" || fstype.starts_with("fuse."))
        .map(|(target, _)| PathBuf::from(target))
        .collect()
}

/// /proc/mounts escapes spaces and a few other bytes as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let octal = |c: u8| (b'0'..=b'7').contains(&c).then(|| c - b'0');
    let mut rest = b;
    while let Some((&first, after)) = rest.split_first() {
        let escaped = match after {
            [x, y, z, ..] if first == b'\\' => octal(*x)
                .zip(octal(*y))
                .zip(octal(*z))
                .map(|((x, y), z)| x.wrapping_mul(64).wrapping_add(y * 8).wrapping_add(z)),
            _ => None,
        };
        match escaped {
            Some(v) => {
                out.push(v);
                rest = after.get(3..).unwrap_or_default();
            }
            None => {
                out.push(first);
                rest = after;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn mount_paths_are_unescaped_as_the_kernel_escapes_them() {
        assert_eq!(unescape(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape(r"/x\011y\012z\134"), "/x\ty\nz\\");
        // Not an escape: kept as it is, never a panic.
        assert_eq!(unescape(r"/a\04"), r"/a\04");
        assert_eq!(unescape(r"/a\9xy\"), r"/a\9xy\");
        assert_eq!(unescape(r"\777"), "\u{fffd}");
    }
}
