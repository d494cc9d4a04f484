//! Linux: systemd's `LISTEN_PID`/`LISTEN_FDS` (sd_listen_fds(3)); the
//! first passed descriptor is 3.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use super::{listener, ActivationError};

const SD_LISTEN_FDS_START: i32 = 3;

/// The control socket systemd handed over, if it did.
pub fn inherited_listener() -> Result<Option<UnixListener>, ActivationError> {
    let failed = |reason: String| ActivationError::Failed {
        manager: "systemd",
        reason,
    };
    let Ok(pid) = std::env::var("LISTEN_PID") else {
        return Ok(None);
    };
    // Not for us (a parent's variables leaked into our environment).
    if pid.trim() != std::process::id().to_string() {
        return Ok(None);
    }
    let fds: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| {
            failed("LISTEN_PID is set but LISTEN_FDS is missing or not a number".into())
        })?;
    // Our children must not think these are theirs.
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    if fds != 1 {
        return Err(failed(format!(
            "{fds} sockets were passed; the service takes exactly one (one ListenStream)"
        )));
    }
    // SAFETY: sd_listen_fds(3): with LISTEN_PID naming this process, fd 3
    // was passed to it by the service manager and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(SD_LISTEN_FDS_START) };
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)
        .map_err(|e| failed(format!("fd 3: {e}")))?;
    listener(fd, "systemd").map(Some)
}
