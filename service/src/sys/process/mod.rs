//! Facts about other processes: parent, owner, start time, liveness and
//! environment. One interface, with a Linux twin (`/proc`, pidfds) and a
//! macOS twin (`proc_pidinfo`, `sysctl`), so that everything above it is
//! tested on Linux.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub use macos::*;

/// What routing needs to know about one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    /// Its process id.
    pub pid: u32,
    /// Parent pid (0 for the first process).
    pub ppid: u32,
    /// Effective user id.
    pub uid: u32,
    /// When the process started, in a platform unit; only compared for
    /// equality, to tell a process from a later one with the same pid.
    pub start_time: u64,
}

/// Ends this process as SIGPIPE ends `ls` writing into a closed pipe
/// (`status | head -1`): quietly, with the status a shell reports for it.
/// (Rust programs ignore SIGPIPE, so that a closed socket is an error
/// rather than death; only standard output going away ends the command.)
pub fn die_of_sigpipe() -> ! {
    // SAFETY: restoring a signal's default disposition and raising it
    // have no memory preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    // Not reached: SIGPIPE's default action ends the process.
    std::process::exit(141)
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: i32) -> std::io::Result<()> {
    // SAFETY: kill has no memory preconditions.
    if unsafe { libc::kill(pid as libc::pid_t, signal) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
