//! The client side of the control socket, used by the CLI.

use std::io::{self, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use spfs_shared::protocol::{self, Request, RequestFrame, Response};

/// How long to wait for a service started in the background.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Why talking to the service failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the service is not running (no answer on {path}: {source}); start it with 'spfs-fuse-macos service'")]
    NotRunning {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("permission denied on {0}: the service there belongs to another user")]
    PermissionDenied(PathBuf),
    #[error("lost the connection to the service: {0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Service(String),
    #[error("unexpected reply from the service: {0}")]
    Protocol(String),
    #[error("the service did not start within {} s; its log {log} ends with: {tail}", START_TIMEOUT.as_secs())]
    Start { log: PathBuf, tail: String },
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
            Some(Response::Error { message }) => Err(ClientError::Service(message)),
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
/// answers (detached, logging to `log`).
pub fn connect_or_start(
    socket: &Path,
    mountpoint: &Path,
    log: &Path,
) -> Result<Client, ClientError> {
    if let Ok(mut c) = Client::connect(socket) {
        if c.call(Request::Status).is_ok() {
            return Ok(c);
        }
    }
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
    crate::sys::daemon::spawn_daemon(&mut cmd)?;
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(mut c) = Client::connect(socket) {
            if c.call(Request::Status).is_ok() {
                return Ok(c);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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
