//! The control socket: a per-user Unix socket (mode 0600, in a 0700
//! directory) speaking the protocol of `spfs_shared::protocol`, served on
//! the service's tokio runtime (one task per connection).
//!
//! Only the service's own user and root may talk to it (checked on the
//! peer's credentials, on top of the file mode). A malformed, unknown or
//! oversized message gets an error reply and affects nothing else.
//! Connections are bounded, per process and in total: past the bound a
//! client gets an error reply and its connection is closed.
//!
//! The socket is bound by the service, or handed over by launchd or
//! systemd (socket activation, [`crate::sys::activation`]); a handed-over
//! socket's file belongs to them and is left in place at exit.

pub(crate) mod handlers;

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use spfs_shared::protocol::{self, ErrorCode, FrameError, Request, Response, MAX_FRAME};
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast;
use tokio_stream::StreamExt;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

use crate::lifecycle::Lifecycle;
use crate::service::Notice;
use crate::sys::peer::{self, Peer};
use handlers::Handlers;

/// Connections one process may hold open at once.
pub(crate) const MAX_CONNECTIONS_PER_PROCESS: usize = 32;
/// Connections the service holds open at once.
pub(crate) const MAX_CONNECTIONS: usize = 256;

/// A control socket, bound or handed over.
pub(crate) struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    /// The service made the socket file (and removes it at exit).
    owned: bool,
}

/// Why the socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BindError {
    /// A live service answers there.
    #[error("a service is already listening on {0}")]
    InUse(PathBuf),
    /// It could not be made.
    #[error("cannot create control socket {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl ControlSocket {
    /// Binds `path`, replacing a stale socket file a dead service left.
    pub(crate) fn bind(path: &Path) -> Result<Self, BindError> {
        let io_err = |source| BindError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(io_err)?;
            }
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(BindError::InUse(path.to_owned()));
            }
            std::fs::remove_file(path).map_err(io_err)?;
        }
        let listener = UnixListener::bind(path).map_err(io_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
        Ok(Self {
            listener,
            path: path.to_owned(),
            owned: true,
        })
    }

    /// A listening socket launchd or systemd handed over, for `path`.
    pub(crate) fn inherited(listener: UnixListener, path: &Path) -> Self {
        Self {
            listener,
            path: path.to_owned(),
            owned: false,
        }
    }

    /// Where it listens.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it was handed over (socket activation).
    pub(crate) fn is_inherited(&self) -> bool {
        !self.owned
    }

    /// Removes the socket file at exit, if the service made it.
    pub(crate) fn remove_file(&self) {
        if self.owned {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Accepts connections until the task is dropped; each one is served
    /// by a task of its own.
    pub(crate) async fn serve(&self, server: Arc<Server>) -> io::Result<()> {
        self.listener.set_nonblocking(true)?;
        let listener = tokio::net::UnixListener::from_std(self.listener.try_clone()?)?;
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    // EMFILE and the like: wait a moment rather than spin.
                    tracing::error!(error = %e, "cannot accept a control connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let server = server.clone();
            tokio::spawn(async move {
                if let Err(e) = server.connection(stream).await {
                    tracing::debug!(error = %e, "control connection ended");
                }
            });
        }
    }
}

/// What each connection is served with.
pub(crate) struct Server {
    handlers: Arc<Handlers>,
    lifecycle: Arc<Lifecycle>,
    notices: broadcast::Sender<Notice>,
    owner: u32,
    open: Mutex<HashMap<u32, usize>>,
}

/// A connection counted against the bounds while it lives.
struct Slot<'a> {
    server: &'a Server,
    pid: u32,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut open = self.server.open.lock();
        if let Some(n) = open.get_mut(&self.pid) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.pid);
            }
        }
    }
}

async fn write_frame<T: serde::Serialize>(
    w: &mut (impl AsyncWriteExt + Unpin),
    msg: &T,
) -> io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await?;
    w.flush().await
}

/// The requests of one connection: lines of at most [`MAX_FRAME`] bytes.
type Lines = FramedRead<tokio::net::unix::OwnedReadHalf, LinesCodec>;

impl Server {
    /// A server of `handlers` for the service's user `owner`.
    pub(crate) fn new(
        handlers: Arc<Handlers>,
        lifecycle: Arc<Lifecycle>,
        notices: broadcast::Sender<Notice>,
        owner: u32,
    ) -> Self {
        Server {
            handlers,
            lifecycle,
            notices,
            owner,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn admit(&self, pid: u32) -> Result<Slot<'_>, String> {
        let mut open = self.open.lock();
        let total: usize = open.values().sum();
        let mine = open.get(&pid).copied().unwrap_or(0);
        if total >= MAX_CONNECTIONS {
            return Err(format!(
                "too many connections to the service ({MAX_CONNECTIONS}); try again when some have closed"
            ));
        }
        if mine >= MAX_CONNECTIONS_PER_PROCESS {
            return Err(format!(
                "process {pid} has {mine} connections to the service already (at most {MAX_CONNECTIONS_PER_PROCESS}); close some"
            ));
        }
        *open.entry(pid).or_default() += 1;
        Ok(Slot { server: self, pid })
    }

    async fn connection(&self, stream: tokio::net::UnixStream) -> io::Result<()> {
        let peer = peer::credentials(stream.as_fd())?;
        let (read, mut writer) = stream.into_split();
        if peer.uid != self.owner && peer.uid != 0 {
            tracing::warn!(
                uid = peer.uid,
                pid = peer.pid,
                "refused a control connection from another user"
            );
            let message = format!(
                "permission denied: this service belongs to uid {}",
                self.owner
            );
            return write_frame(
                &mut writer,
                &Response::error_with(ErrorCode::NotPermitted, message),
            )
            .await;
        }
        let _slot = match self.admit(peer.pid) {
            Ok(s) => s,
            Err(message) => {
                tracing::warn!(pid = peer.pid, "{message}");
                return write_frame(
                    &mut writer,
                    &Response::error_with(ErrorCode::Failed, message),
                )
                .await;
            }
        };
        let mut reader: Lines = FramedRead::new(read, LinesCodec::new_with_max_length(MAX_FRAME));
        loop {
            let line = match reader.next().await {
                Some(Ok(line)) => line,
                None => return Ok(()),
                Some(Err(e)) => {
                    // A line too long or not text: the rest of it cannot be
                    // told from the next message, so the connection ends.
                    let why = match e {
                        LinesCodecError::MaxLineLengthExceeded => FrameError::TooLong,
                        LinesCodecError::Io(e) if e.kind() == io::ErrorKind::InvalidData => {
                            FrameError::NotUtf8
                        }
                        LinesCodecError::Io(e) => return Err(e),
                    };
                    let message = format!("{why}; closing the connection");
                    let refused = Response::error_with(ErrorCode::InvalidRequest, message);
                    return write_frame(&mut writer, &refused).await;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let request = match protocol::parse_request(&line) {
                Ok(r) => r,
                Err(message) => {
                    let refused = Response::error_with(ErrorCode::InvalidRequest, message);
                    write_frame(&mut writer, &refused).await?;
                    continue;
                }
            };
            tracing::debug!(?request, uid = peer.uid, pid = peer.pid, "control request");
            let in_flight = match self.lifecycle.begin() {
                Ok(g) => g,
                Err(e) => {
                    let refused = Response::error_with(ErrorCode::ShuttingDown, e.to_string());
                    write_frame(&mut writer, &refused).await?;
                    continue;
                }
            };
            match request {
                Request::Subscribe(topics) => {
                    // Subscribing counts as activity once; the stream does not.
                    let changes = self.handlers.runtimes().subscribe();
                    let notices = self.notices.subscribe();
                    let handlers = self.handlers.clone();
                    let first = blocking(move || handlers.subscribed(&peer)).await?;
                    drop(in_flight);
                    write_frame(&mut writer, &first).await?;
                    return self
                        .stream_events(peer, topics, changes, notices, &mut reader, &mut writer)
                        .await;
                }
                Request::Shutdown => {
                    self.lifecycle.stop();
                    write_frame(&mut writer, &Response::ShuttingDown).await?;
                    drop(in_flight);
                    let _ = self.notices.send(Notice::Shutdown);
                    return Ok(());
                }
                request => {
                    let handlers = self.handlers.clone();
                    let response = blocking(move || handlers.handle(peer, request)).await?;
                    drop(in_flight);
                    write_frame(&mut writer, &response).await?;
                }
            }
        }
    }

    /// Sends each event `peer` may see until the client leaves.
    async fn stream_events(
        &self,
        peer: Peer,
        topics: protocol::SubscribeRequest,
        mut changes: broadcast::Receiver<crate::runtimes::Change>,
        mut notices: broadcast::Receiver<Notice>,
        reader: &mut Lines,
        writer: &mut tokio::net::unix::OwnedWriteHalf,
    ) -> io::Result<()> {
        loop {
            let event = tokio::select! {
                change = changes.recv() => match change {
                    Ok(change) => {
                        let handlers = self.handlers.clone();
                        blocking(move || handlers.event_for(&peer, &change)).await?
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let message = format!("this subscriber fell {n} events behind; subscribe again");
                        let lagged = Response::error_with(ErrorCode::Failed, message);
                        return write_frame(writer, &lagged).await;
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                notice = notices.recv() => match notice {
                    Ok(Notice::Shutdown) | Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    Ok(Notice::Settings(s)) if topics.settings => Notice::Settings(s).event(),
                    Ok(Notice::Lifecycle(l)) if topics.lifecycle => Notice::Lifecycle(l).event(),
                    Ok(_) => None,
                    Err(broadcast::error::RecvError::Lagged(_)) => None,
                },
                // The client closing its end ends the stream (a line it
                // writes meanwhile is not answered).
                read = reader.next() => match read {
                    None | Some(Err(_)) => return Ok(()),
                    Some(Ok(_)) => None,
                },
            };
            if let Some(event) = event {
                write_frame(writer, &Response::Event(event)).await?;
            }
        }
    }
}

/// Runs `f` on tokio's blocking pool: handlers read repositories and
/// write layers, which must not stall the other connections.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(format!("a control request failed: {e}")))
}
