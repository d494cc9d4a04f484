//! The client side of the control socket, used by the CLI.

use std::io::{self, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use spfs_shared::protocol::{self, ErrorCode, Request, RequestFrame, Response};

use crate::sys::daemon::Started;

/// How long to wait for a service started in the background.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a stopping service may take to go.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Why talking to the service failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the service is not running (no answer on {path}: {source}); {hint}")]
    NotRunning {
        path: PathBuf,
        #[source]
        source: io::Error,
        /// What to run (with the flags in use; see `cli::Endpoint`).
        hint: String,
    },
    #[error("permission denied on {0}: the service there belongs to another user")]
    PermissionDenied(PathBuf),
    #[error("lost the connection to the service: {0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Service(String),
    #[error("unexpected reply from the service: {0}")]
    Protocol(String),
    #[error("the service did not start; its log {log} ends with: {tail}")]
    Start { log: PathBuf, tail: String },
    #[error("the service could not start: {reason} (log: {log})")]
    Failed { reason: String, log: PathBuf },
    #[error("{0}")]
    ShuttingDown(String),
}

/// A connection to the service.
pub struct Client {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    /// Connects to the service listening on `socket`.
    pub fn connect(socket: &Path) -> Result<Self, ClientError> {
        let stream = UnixStream::connect(socket).map_err(|source| {
            if source.kind() == io::ErrorKind::PermissionDenied {
                ClientError::PermissionDenied(socket.to_owned())
            } else {
                ClientError::NotRunning {
                    path: socket.to_owned(),
                    source,
                    hint: "start it with 'spfs-fuse-macos start'".to_owned(),
                }
            }
        })?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Self {
            writer: stream,
            reader,
        })
    }

    /// Sends one request and reads its response; an error response becomes
    /// `ClientError::Service`.
    pub fn call(&mut self, request: Request) -> Result<Response, ClientError> {
        protocol::write_frame(
            &mut self.writer,
            &RequestFrame {
                version: protocol::VERSION,
                request,
            },
        )?;
        match self.receive()? {
            Some(Response::Error {
                message,
                code: Some(ErrorCode::ShuttingDown),
            }) => Err(ClientError::ShuttingDown(message)),
            Some(Response::Error { message, .. }) => Err(ClientError::Service(message)),
            Some(r) => Ok(r),
            None => Err(ClientError::Protocol(
                "the service closed the connection".into(),
            )),
        }
    }

    /// The next message (for subscriptions); `None` when the service closes.
    pub fn receive(&mut self) -> Result<Option<Response>, ClientError> {
        let line = match protocol::read_frame(&mut self.reader) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(None),
            Err(protocol::FrameError::Io(e)) => return Err(ClientError::Io(e)),
            Err(e) => return Err(ClientError::Protocol(e.to_string())),
        };
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| ClientError::Protocol(format!("{e}: {line}")))
    }
}

/// Connects to the service, starting it in the background first if none
/// answers (detached, logging to `log`). A service on its way out (idle)
/// is waited for, then replaced.
pub fn connect_or_start(
    socket: &Path,
    mountpoint: &Path,
    log: &Path,
) -> Result<Client, ClientError> {
    if let Ok(mut c) = Client::connect(socket) {
        match c.call(Request::Status) {
            Ok(_) => return Ok(c),
            Err(ClientError::ShuttingDown(_)) => wait_gone(socket),
            Err(_) => {}
        }
    }
    start(socket, mountpoint, log)?;
    let mut c = Client::connect(socket)?;
    c.call(Request::Status)?;
    Ok(c)
}

/// Waits (a few seconds at most) until process `pid` (a service asked
/// to stop) has exited; true if it has. (Connecting to find out would
/// start a socket-activated service again.)
pub fn wait_exit(pid: u32) -> bool {
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
pub fn wait_gone(socket: &Path) {
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline && std::os::unix::net::UnixStream::connect(socket).is_ok() {
        std::thread::sleep(Duration::from_millis(10));
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
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
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
        Started::Failed(reason) => Err(ClientError::Failed {
            reason,
            log: log.to_owned(),
        }),
        Started::Exited | Started::TimedOut => {
            let text = std::fs::read_to_string(log).unwrap_or_default();
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
