//! Reads and closes of file descriptors handed to the kernel as FUSE file
//! handles. Using the fd as the handle saves a table lookup on every read.

use std::fs::File;
use std::io;
use std::os::fd::IntoRawFd;

/// Gives up ownership of `file`; its fd becomes a FUSE file handle.
pub fn into_handle(file: File) -> u64 {
    file.into_raw_fd() as u64
}

/// Reads up to `size` bytes at `offset` from the fd behind `handle`.
pub fn read_at(handle: u64, offset: u64, size: u32) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; size as usize];
    let mut done = 0usize;
    while done < buf.len() {
        // SAFETY: `buf[done..]` is writable for the length passed; a stale
        // fd only makes pread fail with EBADF.
        let n = unsafe {
            libc::pread(
                handle as libc::c_int,
                buf[done..].as_mut_ptr().cast(),
                buf.len() - done,
                (offset + done as u64) as libc::off_t,
            )
        };
        match n {
            0 => break,
            n if n > 0 => done += n as usize,
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
        }
    }
    buf.truncate(done);
    Ok(buf)
}

/// Closes the fd behind a handle the kernel released.
pub fn close_handle(handle: u64) {
    // SAFETY: the kernel releases each handle once; the fd was ours.
    unsafe { libc::close(handle as libc::c_int) };
}

/// Size and free space of a filesystem, as `statfs` replies want them.
#[derive(Clone, Copy, Debug)]
pub struct FsStats {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

/// Size and free space of the filesystem holding `path`.
pub fn statvfs(path: &std::path::Path) -> Option<FsStats> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain data; zeroed is valid; the path is NUL-terminated.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // field widths differ between platforms
    Some(FsStats {
        blocks: s.f_blocks as u64,
        bfree: s.f_bfree as u64,
        bavail: s.f_bavail as u64,
        files: s.f_files as u64,
        ffree: s.f_ffree as u64,
        bsize: s.f_bsize as u32,
        namelen: s.f_namemax as u32,
        frsize: s.f_frsize as u32,
    })
}

/// Runs `f` on the open file behind `handle`, which stays open.
pub fn with_handle<T>(handle: u64, f: impl FnOnce(&File) -> T) -> T {
    use std::os::fd::FromRawFd;
    // SAFETY: the fd stays open until the kernel releases the handle, and
    // ManuallyDrop keeps this borrow from closing it. A stale handle only
    // makes the calls in `f` fail with EBADF.
    let file = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(handle as libc::c_int) });
    f(&file)
}
