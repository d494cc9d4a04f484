//! macOS: getpeereid and LOCAL_PEERPID.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::Peer;

/// The credentials of the process that connected `stream`.
pub fn credentials(stream: BorrowedFd<'_>) -> io::Result<Peer> {
    let fd = stream.as_raw_fd();
    let (mut uid, mut gid) = (0, 0);
    // SAFETY: both out-pointers are valid.
    if unsafe { libc::getpeereid(fd, &mut uid, &mut gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut pid: libc::pid_t = 0;
    let mut len = std::mem::size_of::<libc::pid_t>() as libc::socklen_t;
    // SAFETY: `pid` is a pid_t of the size passed in `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_LOCAL,
            libc::LOCAL_PEERPID,
            (&mut pid as *mut libc::pid_t).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Peer {
        uid,
        gid,
        pid: pid as u32,
    })
}
