//! Who the service runs as.

/// True when running with root's effective user id.
pub fn is_root() -> bool {
    effective_ids().0 == 0
}

/// (effective uid, effective gid) of this process.
pub fn effective_ids() -> (u32, u32) {
    // SAFETY: geteuid and getegid have no preconditions.
    unsafe { (libc::geteuid(), libc::getegid()) }
}
