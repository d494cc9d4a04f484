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
/// How long a quick request (status, lists, settings, join, stop) may
/// take, unless `SPFS_FUSE_CLIENT_TIMEOUT` (seconds) says otherwise.
const QUICK_TIMEOUT: Duration = Duration::from_secs(15);
/// Overrides [`QUICK_TIMEOUT`] (seconds).
pub const TIMEOUT_ENV: &str = "SPFS_FUSE_CLIENT_TIMEOUT";

/// The quick requests' timeout in force.
fn quick_timeout() -> Duration {
    std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 86_400.0)
        .map_or(QUICK_TIMEOUT, Duration::from_secs_f64)
}
/// How long starting a runtime may take (its view is built first).
const MOUNT_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest log tail read to say why a service did not start.
const LOG_TAIL_BYTES: u64 = 16 * 1024;
/// How long a stopping service may take to go.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Why talking to the service failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody answers on the socket.
    #[error("the service is not running (no answer on {path}: {source}); {hint}")]
    NotRunning {
        /// The socket.
        path: PathBuf,
        /// Why the connection failed.
        #[source]
        source: io::Error,
        /// What to run (with the flags in use; see `cli::Endpoint`).
        hint: String,
    },
    /// The socket is another user's.
    #[error("permission denied on {0}: the service there belongs to another user")]
    PermissionDenied(PathBuf),
    /// The connection failed.
    #[error("lost the connection to the service: {0}")]
    Io(#[from] io::Error),
    /// The service answered with an error; `code` says what kind
    /// (`None` from a service that predates codes).
    #[error("{message}")]
    Service {
        /// One line for the user.
        message: String,
        /// What kind of failure.
        code: Option<ErrorCode>,
    },
    /// An answer that makes no sense.
    #[error("unexpected reply from the service: {0}")]
    Protocol(String),
    /// A service started in the background did not come up.
    #[error("the service did not start; its log {log} ends with: {tail}")]
    Start {
        /// Its log.
        log: PathBuf,
        /// The end of it.
        tail: String,
    },
    /// A service started in the background said why it could not start.
    #[error("the service could not start: {reason} (log: {log})")]
    Failed {
        /// Why.
        reason: String,
        /// Its log.
        log: PathBuf,
    },
    /// The service is on its way out (idle, or asked to stop).
    #[error("{0}")]
    ShuttingDown(String),
    /// No answer in time.
    #[error("the service{} did not answer within {:.0} s (it may be stopped or stuck): check it with 'ps -o pid,stat,cmd -p {}'; if it stays so, end it with 'kill {}' and run the command again (a new one starts)", pid.map_or_else(String::new, |p| format!(" (pid {p})")), timeout.as_secs_f64(), pid.map_or_else(|| "PID".to_owned(), |p| p.to_string()), pid.map_or_else(|| "PID".to_owned(), |p| p.to_string()))]
    NoAnswer {
        /// The service's process, as the socket's peer credentials say.
        pid: Option<u32>,
        /// How long it was waited for.
        timeout: Duration,
    },
}

impl ClientError {
    /// Whether the service answered with an error of kind `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        matches!(self, ClientError::Service { code: Some(c), .. } if *c == code)
    }
}

/// A connection to the service.
pub struct Client {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    /// The service's process (for messages).
    pid: Option<u32>,
}

/// How long the answer to `request` may take: `None` for commits and
/// resets (as long as the scratch takes; the service answers when done)
/// and subscriptions (they last).
fn answer_timeout(request: &Request) -> Option<Duration> {
    match request {
        Request::Commit(_) | Request::Reset { .. } | Request::Subscribe(_) => None,
        Request::Mount(_) => Some(MOUNT_TIMEOUT),
        _ => Some(quick_timeout()),
    }
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
        use std::os::fd::AsFd;
        let pid = crate::sys::peer::credentials(stream.as_fd())
            .ok()
            .map(|p| p.pid)
            .filter(|p| *p != 0);
        stream.set_write_timeout(Some(quick_timeout()))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Self {
            writer: stream,
            reader,
            pid,
        })
    }

    /// The service's process id, as the socket's peer credentials say.
    pub fn service_pid(&self) -> Option<u32> {
        self.pid
    }

    /// A timed-out read or write as [`ClientError::NoAnswer`].
    fn no_answer(&self, e: io::Error, timeout: Option<Duration>) -> ClientError {
        match (e.kind(), timeout) {
            (io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut, Some(timeout)) => {
                ClientError::NoAnswer {
                    pid: self.pid,
                    timeout,
                }
            }
            _ => ClientError::Io(e),
        }
    }

    /// Sends one request and reads its response; an error response becomes
    /// `ClientError::Service`.
    pub fn call(&mut self, request: Request) -> Result<Response, ClientError> {
        let timeout = answer_timeout(&request);
        protocol::write_frame(
            &mut self.writer,
            &RequestFrame {
                version: protocol::VERSION,
                request,
            },
        )
        .map_err(|e| self.no_answer(e, Some(quick_timeout())))?;
        self.reader.get_ref().set_read_timeout(timeout)?;
        let answer = self.receive_timed(timeout);
        // Later messages (a subscription's) come when they come.
        self.reader.get_ref().set_read_timeout(None)?;
        match answer? {
            Some(Response::Error {
                message,
                code: Some(ErrorCode::ShuttingDown),
            }) => Err(ClientError::ShuttingDown(message)),
            Some(Response::Error { message, code }) => Err(ClientError::Service { message, code }),
            Some(r) => Ok(r),
            None => Err(ClientError::Protocol(
                "the service closed the connection".into(),
            )),
        }
    }

    /// The next message (for subscriptions); `None` when the service closes.
    pub fn receive(&mut self) -> Result<Option<Response>, ClientError> {
        self.receive_timed(None)
    }

    fn receive_timed(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Option<Response>, ClientError> {
        let line = match protocol::read_frame(&mut self.reader) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(None),
            Err(protocol::FrameError::Io(e)) => return Err(self.no_answer(e, timeout)),
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
            // A service is there but stopped or stuck: starting another
            // would only wait for it too.
            Err(e @ ClientError::NoAnswer { .. }) => return Err(e),
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
        let answer = Client::connect(socket).and_then(|mut c| c.call(Request::Status));
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
