//! Starting the service in the background, detached from the caller.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Runs `cmd` as a daemon: in a new session, and reparented away from the
/// caller (double fork), so neither the caller's terminal nor its process
/// tree hold on to it. Returns once the daemon has been started.
pub fn spawn_daemon(cmd: &mut Command) -> io::Result<()> {
    // SAFETY: the closure runs between fork and exec and only calls
    // async-signal-safe functions (setsid, fork, _exit).
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            match libc::fork() {
                -1 => Err(io::Error::last_os_error()),
                0 => Ok(()),
                _ => libc::_exit(0),
            }
        });
    }
    let mut intermediate = cmd.spawn()?;
    intermediate.wait()?;
    Ok(())
}
