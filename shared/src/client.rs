//! The client side of the control socket, for the CLI and the menu bar:
//! one connection, one request and its answer at a time (each with a
//! timeout that fits it), then the messages of a subscription. Errors
//! are typed; a client acts on [`ClientError::is`], never on the text.

use std::io::{self, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::protocol::{self, ErrorCode, Request, RequestFrame, Response};

/// How long starting a runtime may take (its view is built first).
const MOUNT_TIMEOUT: Duration = Duration::from_secs(120);

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
        stream.set_write_timeout(Some(quick_timeout()))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Self {
            writer: stream,
            reader,
            pid: None,
        })
    }

    /// The connected socket (to ask the kernel who serves it).
    pub fn socket(&self) -> &UnixStream {
        &self.writer
    }

    /// Names the service's process (from the socket's peer credentials),
    /// for the message of a service that does not answer.
    pub fn set_service_pid(&mut self, pid: Option<u32>) {
        self.pid = pid.filter(|p| *p != 0);
    }

    /// The service's process id, if known (see [`Client::set_service_pid`]).
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

#[cfg(test)]
mod tests {
    use std::io::{BufRead, Write};
    use std::os::unix::net::UnixListener;

    use super::*;

    /// A service at `socket` that answers each request line with `answer`.
    fn serve(listener: UnixListener, answer: &'static str) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = io::BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                writer.write_all(answer.as_bytes()).unwrap();
                line.clear();
            }
        })
    }

    #[test]
    fn nobody_listening_is_not_running_and_an_error_answer_is_typed() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s");
        let e = Client::connect(&socket).err().unwrap();
        assert!(matches!(e, ClientError::NotRunning { .. }), "{e}");
        let server = serve(
            UnixListener::bind(&socket).unwrap(),
            "{\"response\":\"error\",\"message\":\"no runtime named 'x'\",\"code\":\"no_such_runtime\"}\n",
        );
        let mut c = Client::connect(&socket).unwrap();
        let e = c
            .call(Request::RuntimeInfo { name: "x".into() })
            .unwrap_err();
        assert!(e.is(ErrorCode::NoSuchRuntime), "{e:?}");
        assert!(!e.is(ErrorCode::ReadOnly));
        assert_eq!(e.to_string(), "no runtime named 'x'");
        drop(c);
        server.join().unwrap();
    }

    #[test]
    fn a_shutting_down_answer_and_a_closed_connection_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s");
        let server = serve(
            UnixListener::bind(&socket).unwrap(),
            "{\"response\":\"error\",\"message\":\"stopping\",\"code\":\"shutting_down\"}\n",
        );
        let mut c = Client::connect(&socket).unwrap();
        assert!(matches!(
            c.call(Request::Status),
            Err(ClientError::ShuttingDown(_))
        ));
        drop(c);
        server.join().unwrap();
        // A service that closes without answering.
        let listener = UnixListener::bind(dir.path().join("t")).unwrap();
        let closer = std::thread::spawn(move || drop(listener.accept().unwrap()));
        let mut c = Client::connect(&dir.path().join("t")).unwrap();
        closer.join().unwrap();
        assert!(matches!(
            c.call(Request::Status),
            Err(ClientError::Protocol(_) | ClientError::Io(_))
        ));
    }
}
