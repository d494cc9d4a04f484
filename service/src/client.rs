//! Starting the service on demand, and waiting for it to go; the
//! connection itself is `spfs_shared::client`'s, with the service's
//! process named from the socket's peer credentials.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) use spfs_shared::client::{Client, ClientError};
use spfs_shared::protocol::Request;

use crate::sys::daemon::Started;

/// How long to wait for a service started in the background.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest log tail read to say why a service did not start.
const LOG_TAIL_BYTES: u64 = 16 * 1024;
/// How long a stopping service may take to go.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Connects to the service listening on `socket`, naming its process
/// from the socket's peer credentials (for the message of a service that
/// does not answer).
pub(crate) fn connect(socket: &Path) -> Result<Client, ClientError> {
    use std::os::fd::AsFd;
    let mut c = Client::connect(socket)?;
    let pid = crate::sys::peer::credentials(c.socket().as_fd())
        .ok()
        .map(|p| p.pid);
    c.set_service_pid(pid);
    Ok(c)
}

/// Connects to the service, starting it in the background first if none
/// answers (detached, logging to `log`). A service on its way out (idle)
/// is waited for, then replaced.
pub(crate) fn connect_or_start(
    socket: &Path,
    mountpoint: &Path,
    log: &Path,
) -> Result<Client, ClientError> {
    if let Ok(mut c) = connect(socket) {
        match c.call(Request::Status) {
            Ok(_) => return Ok(c),
            Err(ClientError::ShuttingDown(_)) => wait_gone(socket),
            // A service is there but stopped or stuck: starting another
            // would only wait for it too.
            Err(e @ ClientError::NoAnswer { .. }) => return Err(e),
            Err(_) => {}
        }
    }
    start(socket, mountpoint, log)?;
    let mut c = connect(socket)?;
    c.call(Request::Status)?;
    Ok(c)
}

/// Waits (a few seconds at most) until process `pid` (a service asked
/// to stop) has exited; true if it has. (Connecting to find out would
/// start a socket-activated service again.)
pub(crate) fn wait_exit(pid: u32) -> bool {
    let deadline = Instant::now() + STOP_TIMEOUT;
    while crate::sys::process::is_running(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Waits (a few seconds at most) until the service at `socket` is gone.
pub(crate) fn wait_gone(socket: &Path) {
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline && std::os::unix::net::UnixStream::connect(socket).is_ok() {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The service's program: this one, or `spfs-fuse-macos` beside it when
/// this is `spfs` (links resolved: `/usr/local/bin/spfs` may link into
/// SPFS.app).
fn service_exe() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    if exe.file_name() == Some(std::ffi::OsStr::new("spfs")) {
        Ok(exe.with_file_name("spfs-fuse-macos"))
    } else {
        Ok(exe)
    }
}

/// Starts the service in the background and waits until it serves; its
/// own words if it cannot start.
fn start(socket: &Path, mountpoint: &Path, log: &Path) -> Result<(), ClientError> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut cmd = Command::new(service_exe()?);
    cmd.arg("service")
        .arg("--mountpoint")
        .arg(mountpoint)
        .arg("--socket")
        .arg(socket)
        .env_remove(crate::router::TOKEN_ENV)
        .env_remove("SPFS_RUNTIME")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    match crate::sys::daemon::spawn_daemon_reporting(&mut cmd, START_TIMEOUT)? {
        Started::Ready => Ok(()),
        // Another client started one at the same moment: use that one.
        Started::Busy(reason) => wait_serving(socket).map_err(|e| ClientError::Failed {
            reason: format!("{reason}, which did not answer: {e}"),
            log: log.to_owned(),
        }),
        Started::Failed(reason) => Err(ClientError::Failed {
            reason,
            log: log.to_owned(),
        }),
        Started::Exited | Started::TimedOut => {
            let text = read_tail(log, LOG_TAIL_BYTES);
            let tail = text
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(" | ");
            Err(ClientError::Start {
                log: log.to_owned(),
                tail,
            })
        }
    }
}

/// Waits until the service another client started answers on `socket`.
fn wait_serving(socket: &Path) -> Result<(), ClientError> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let answer = connect(socket).and_then(|mut c| c.call(Request::Status));
        match answer {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The last `max` bytes of the file at `path` (as text; empty if it
/// cannot be read): a log can be any size.
fn read_tail(path: &Path, max: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut bytes = Vec::new();
    let _ = f.take(max).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}
