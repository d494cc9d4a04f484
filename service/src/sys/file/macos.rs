//! macOS: clonefile (APFS), *xattr with XATTR_NOFOLLOW.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::path::Path;

use super::{check, check_len, cpath, create_new, CopyMethod};

/// `rename` flags as macFUSE passes them (renamex_np's).
pub const RENAME_NOREPLACE: u32 = libc::RENAME_EXCL;
pub const RENAME_EXCHANGE: u32 = libc::RENAME_SWAP;
/// clonefile(2): do not follow a symlink at the source.
const CLONE_NOFOLLOW: u32 = 0x0001;

pub fn clone_or_copy(src: &Path, dst: &Path) -> io::Result<(File, CopyMethod)> {
    let (s, d) = (cpath(src)?, cpath(dst)?);
    // SAFETY: NUL-terminated paths.
    if unsafe { libc::clonefile(s.as_ptr(), d.as_ptr(), CLONE_NOFOLLOW) } == 0 {
        use std::os::unix::fs::PermissionsExt;
        let f = std::fs::OpenOptions::new().write(true).open(dst)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        return Ok((f, CopyMethod::Clone));
    }
    let mut from = File::open(src)?;
    let mut to = create_new(dst)?;
    if let Err(e) = io::copy(&mut from, &mut to) {
        let _ = std::fs::remove_file(dst);
        return Err(e);
    }
    Ok((to, CopyMethod::ReadWrite))
}

pub fn get_xattr(p: &CStr, n: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the buffer is writable for its length (NULL, 0 asks the size).
    check_len(unsafe {
        libc::getxattr(
            p.as_ptr(),
            n.as_ptr(),
            if buf.is_empty() {
                std::ptr::null_mut()
            } else {
                buf.as_mut_ptr().cast()
            },
            buf.len(),
            0,
            libc::XATTR_NOFOLLOW,
        )
    })
}

pub fn list_xattr(p: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: as get_xattr.
    check_len(unsafe {
        libc::listxattr(
            p.as_ptr(),
            if buf.is_empty() {
                std::ptr::null_mut()
            } else {
                buf.as_mut_ptr().cast()
            },
            buf.len(),
            libc::XATTR_NOFOLLOW,
        )
    })
}

pub fn set_xattr(p: &CStr, n: &CStr, value: &[u8], flags: i32) -> io::Result<()> {
    // SAFETY: the value is readable for its length.
    check(unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
            flags | libc::XATTR_NOFOLLOW,
        )
    })
}

pub fn remove_xattr(p: &CStr, n: &CStr) -> io::Result<()> {
    // SAFETY: NUL-terminated strings.
    check(unsafe { libc::removexattr(p.as_ptr(), n.as_ptr(), libc::XATTR_NOFOLLOW) })
}
