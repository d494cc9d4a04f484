//! Starting the service in the background, detached from the caller, and
//! hearing from it when it is ready (or why it is not) through a pipe.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

/// Environment variable naming the descriptor a starting service reports
/// on: `ready` once it serves, or `error: …` and exits.
pub const READY_FD_ENV: &str = "SPFS_FUSE_READY_FD";

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

/// Sends this process's standard output and error to the end of `log`
/// (made with its directory if missing): for a service started by a
/// service manager that cannot name a per-user log file (an agent inside
/// the app bundle, registered with `SMAppService`).
pub fn redirect_output(log: &std::path::Path) -> io::Result<()> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    rustix::stdio::dup2_stdout(&file)?;
    rustix::stdio::dup2_stderr(&file)?;
    Ok(())
}

/// What a service started with [`spawn_daemon_reporting`] said.
#[derive(Debug, PartialEq, Eq)]
pub enum Started {
    /// It serves.
    Ready,
    /// It failed at start, for this reason.
    Failed(String),
    /// Another service was starting or serving at the same moment, and
    /// serves instead (the reason says where).
    Busy(String),
    /// It exited without a word (a crash).
    Exited,
    /// Nothing within the wait; the service was ended (the process it
    /// said it was, if it said).
    TimedOut,
}

/// Starts `cmd` as a daemon (as [`spawn_daemon`]) with a pipe it reports
/// on, and waits up to `wait` for the report.
pub fn spawn_daemon_reporting(cmd: &mut Command, wait: Duration) -> io::Result<Started> {
    // (No pipe2 on macOS; the CLI has no other thread that could fork
    // in between.) The daemon inherits the write end, and only it.
    let (read, write) = rustix::pipe::pipe()?;
    rustix::io::fcntl_setfd(&read, rustix::io::FdFlags::CLOEXEC)?;
    cmd.env(READY_FD_ENV, write.as_raw_fd().to_string());
    let spawned = spawn_daemon(cmd);
    drop(write);
    spawned?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Lines, each bounded: the service's pid, then its verdict.
        let mut lines = io::BufReader::new(std::fs::File::from(read));
        loop {
            let mut line = String::new();
            match io::BufRead::read_line(&mut (&mut lines).take(REPORT_LINE_MAX), &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(line.trim_end().to_owned()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let deadline = std::time::Instant::now() + wait;
    let mut pid = None;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(Started::Exited),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                // Given up on: it must not live on holding the service's
                // locks (the next start would find them taken).
                if let Some(pid) = pid {
                    end(pid);
                }
                return Ok(Started::TimedOut);
            }
        };
        if line == "ready" {
            return Ok(Started::Ready);
        } else if let Some(reason) = line.strip_prefix("error: ") {
            return Ok(Started::Failed(reason.to_owned()));
        } else if let Some(reason) = line.strip_prefix("busy: ") {
            return Ok(Started::Busy(reason.to_owned()));
        } else if let Some(p) = line.strip_prefix("pid ") {
            pid = p.parse::<u32>().ok().filter(|p| *p > 1);
        } else {
            return Ok(Started::Exited);
        }
    }
}

/// Longest line read from a starting service's report.
const REPORT_LINE_MAX: u64 = 64 * 1024;

/// Ends process `pid`: SIGTERM, then SIGKILL if it is still there a
/// second later.
fn end(pid: u32) {
    let _ = crate::sys::process::signal(pid, libc::SIGTERM);
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while crate::sys::process::is_running(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if crate::sys::process::is_running(pid) {
        let _ = crate::sys::process::signal(pid, libc::SIGKILL);
    }
}

/// The pipe a starting service reports on, if its starter gave one.
#[derive(Debug)]
pub struct ReadyPipe(OwnedFd);

impl ReadyPipe {
    /// Takes the pipe named by `SPFS_FUSE_READY_FD` (and forgets the
    /// variable); `None` if there is none, or it is not a pipe.
    pub fn from_environment() -> Option<ReadyPipe> {
        let fd: i32 = std::env::var(READY_FD_ENV).ok()?.trim().parse().ok()?;
        std::env::remove_var(READY_FD_ENV);
        if fd < 3 {
            return None;
        }
        // SAFETY: the starter passed this descriptor for us alone; it is
        // checked to be open and a pipe before it is used.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let st = rustix::fs::fstat(&owned).ok()?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode as _) != rustix::fs::FileType::Fifo {
            // Not ours after all: do not close it.
            std::mem::forget(owned);
            return None;
        }
        let _ = rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC);
        // Who started: the starter ends this process if it gives up.
        let mut pipe = std::fs::File::from(owned);
        let _ = writeln!(pipe, "pid {}", std::process::id());
        Some(ReadyPipe(pipe.into()))
    }

    /// Says the service serves.
    pub fn ready(self) {
        let _ = std::fs::File::from(self.0).write_all(b"ready\n");
    }

    /// Says another service won the start (it serves instead).
    pub fn busy(self, reason: &str) {
        let line = format!("busy: {}\n", reason.replace('\n', " "));
        let _ = std::fs::File::from(self.0).write_all(line.as_bytes());
    }

    /// Says why the service could not start.
    pub fn failed(self, reason: &str) {
        let line = format!("error: {}\n", reason.replace('\n', " "));
        let _ = std::fs::File::from(self.0).write_all(line.as_bytes());
    }
}
