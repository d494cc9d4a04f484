//! macOS: `launch_activate_socket` (launch(3)) for the agent's
//! `Sockets` entry named `Listeners`.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use super::{listener, ActivationError};

/// The name of the socket in the LaunchAgent's `Sockets` dictionary.
pub(super) const SOCKET_NAME: &str = "Listeners";

extern "C" {
    fn launch_activate_socket(
        name: *const libc::c_char,
        fds: *mut *mut libc::c_int,
        cnt: *mut libc::size_t,
    ) -> libc::c_int;
}

/// The control socket launchd handed over, if the service was started by
/// an agent with a `Sockets` entry.
pub fn inherited_listener() -> Result<Option<UnixListener>, ActivationError> {
    let failed = |reason: String| ActivationError::Failed {
        manager: "launchd",
        reason,
    };
    let name = CString::new(SOCKET_NAME).map_err(|e| failed(e.to_string()))?;
    let mut fds: *mut libc::c_int = std::ptr::null_mut();
    let mut cnt: libc::size_t = 0;
    // SAFETY: a NUL-terminated name and two valid out-pointers; on success
    // launchd allocates `fds` (freed below) holding `cnt` descriptors.
    let rc = unsafe { launch_activate_socket(name.as_ptr(), &mut fds, &mut cnt) };
    match rc {
        0 => {}
        // Not started by launchd, or no such socket in the agent.
        libc::ESRCH | libc::ENOENT => return Ok(None),
        e => return Err(failed(std::io::Error::from_raw_os_error(e).to_string())),
    }
    let owned: Vec<OwnedFd> = (0..cnt)
        // SAFETY: `fds` holds `cnt` descriptors launchd passed to us.
        .map(|i| unsafe { OwnedFd::from_raw_fd(*fds.add(i)) })
        .collect();
    // SAFETY: the array was allocated by launchd with malloc.
    unsafe { libc::free(fds.cast()) };
    let mut owned = owned.into_iter();
    let Some(first) = owned.next() else {
        return Err(failed(
            "the Listeners socket came with no descriptor".into(),
        ));
    };
    if owned.next().is_some() {
        return Err(failed(
            "the Listeners socket came with several descriptors; give one SockPathName".into(),
        ));
    }
    listener(first, "launchd").map(Some)
}
