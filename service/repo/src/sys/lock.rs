//! Advisory locks on staged files: a writer holds one on the file it is
//! writing, so a cleaner can tell a live writer's file from one a killed
//! writer left (the lock goes with the process).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Takes an exclusive lock on `file` without waiting; false if another
/// open file (of any process) holds one.
pub(crate) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    // SAFETY: flock takes a descriptor that `file` keeps open for the
    // call, and no pointers.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_held_lock_is_seen_and_goes_with_its_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let a = std::fs::File::create(&p).unwrap();
        let b = std::fs::File::open(&p).unwrap();
        assert!(super::try_lock_exclusive(&a).unwrap());
        assert!(!super::try_lock_exclusive(&b).unwrap());
        drop(a);
        assert!(super::try_lock_exclusive(&b).unwrap());
    }
}
