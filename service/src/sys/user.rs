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

/// This process's real user id.
pub fn real_uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

/// The home directory and login name the system has for this process's
/// real user (`HOME` may say otherwise).
pub fn account() -> (Option<String>, Option<String>) {
    // SAFETY: getuid has no preconditions.
    account_of(unsafe { libc::getuid() })
}

/// The home directory and login name the system has for user `uid`.
pub fn account_of(uid: u32) -> (Option<String>, Option<String>) {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: passwd is plain data; all-zero is a valid value.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call and `buf` is as long as
    // we say; `result` is null or points at `pwd`.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return (None, None);
    }
    let text = |p: *const libc::c_char| {
        if p.is_null() {
            return None;
        }
        // SAFETY: getpwuid_r filled the field with a NUL-terminated string in `buf`.
        let s = unsafe { std::ffi::CStr::from_ptr(p) };
        s.to_str().ok().map(str::to_owned)
    };
    (text(pwd.pw_dir), text(pwd.pw_name))
}
