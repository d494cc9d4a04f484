//! Advisory locks on files.

use std::fs::File;
use std::io;

/// Takes an exclusive advisory lock on `file` without waiting; false if
/// another open file (of any process) holds it. Released when the file is
/// closed, also when the process dies.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    match rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_lock_is_refused_until_the_first_goes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lock");
        let a = std::fs::File::create(&p).unwrap();
        let b = std::fs::File::open(&p).unwrap();
        assert!(super::try_lock_exclusive(&a).unwrap());
        assert!(!super::try_lock_exclusive(&b).unwrap());
        drop(a);
        assert!(super::try_lock_exclusive(&b).unwrap());
    }
}
