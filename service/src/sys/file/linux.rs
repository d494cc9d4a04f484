//! Linux: FICLONE, copy_file_range, l*xattr.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use super::{check, check_len, create_new, CopyMethod};

/// `rename` flags as FUSE passes them.
pub const RENAME_NOREPLACE: u32 = libc::RENAME_NOREPLACE;
pub const RENAME_EXCHANGE: u32 = libc::RENAME_EXCHANGE;

pub fn clone_or_copy(src: &Path, dst: &Path) -> io::Result<(File, CopyMethod)> {
    let from = File::open(src)?;
    let to = create_new(dst)?;
    let result = copy(&from, &to);
    if result.is_err() {
        let _ = std::fs::remove_file(dst);
    }
    result.map(|m| (to, m))
}

fn copy(from: &File, to: &File) -> io::Result<CopyMethod> {
    // SAFETY: FICLONE takes the source fd as its argument.
    if unsafe { libc::ioctl(to.as_raw_fd(), libc::FICLONE, from.as_raw_fd()) } == 0 {
        return Ok(CopyMethod::Clone);
    }
    let len = from.metadata()?.len();
    let mut done = 0u64;
    let mut method = CopyMethod::Kernel;
    while done < len {
        // SAFETY: null offsets use and advance both files' positions.
        let n = unsafe {
            libc::copy_file_range(
                from.as_raw_fd(),
                std::ptr::null_mut(),
                to.as_raw_fd(),
                std::ptr::null_mut(),
                (len - done).min(1 << 30) as usize,
                0,
            )
        };
        if n > 0 {
            done += n as u64;
            continue;
        }
        if n == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EXDEV | libc::ENOSYS | libc::EOPNOTSUPP | libc::EINVAL) if done == 0 => {
                method = CopyMethod::ReadWrite;
                let mut r = from;
                let mut w = to;
                io::copy(&mut r, &mut w)?;
                break;
            }
            _ => return Err(e),
        }
    }
    Ok(method)
}

pub fn get_xattr(p: &CStr, n: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the buffer is writable for its length (NULL, 0 asks the size).
    check_len(unsafe {
        libc::lgetxattr(
            p.as_ptr(),
            n.as_ptr(),
            if buf.is_empty() {
                std::ptr::null_mut()
            } else {
                buf.as_mut_ptr().cast()
            },
            buf.len(),
        )
    })
}

pub fn list_xattr(p: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: as get_xattr.
    check_len(unsafe {
        libc::llistxattr(
            p.as_ptr(),
            if buf.is_empty() {
                std::ptr::null_mut()
            } else {
                buf.as_mut_ptr().cast()
            },
            buf.len(),
        )
    })
}

pub fn set_xattr(p: &CStr, n: &CStr, value: &[u8], flags: i32) -> io::Result<()> {
    // SAFETY: the value is readable for its length.
    check(unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })
}

pub fn remove_xattr(p: &CStr, n: &CStr) -> io::Result<()> {
    // SAFETY: NUL-terminated strings.
    check(unsafe { libc::lremovexattr(p.as_ptr(), n.as_ptr()) })
}
