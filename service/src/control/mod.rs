//! The control socket: a per-user Unix socket (mode 0600, in a 0700
//! directory) speaking the protocol of `spfs_shared::protocol`.
//!
//! Each connection is served by its own thread. Only the service's own
//! user and root may talk to it (checked on the peer's credentials, on top
//! of the file mode). A malformed, unknown or oversized message gets an
//! error reply and affects nothing else.

use std::io::{self, BufReader};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use spfs_shared::protocol::{self, FrameError, Request, Response};

use crate::sys::peer::{self, Peer};

pub mod handlers;

/// How a request is answered.
pub enum Reply {
    /// One response.
    One(Response),
    /// A response, then every message from `events` until the client leaves.
    Stream(Response, Receiver<Response>),
    /// A response, then the service shuts down.
    ThenShutdown(Response),
}

/// What serves requests.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request from `peer`.
    fn handle(&self, peer: Peer, request: Request) -> Reply;
    /// Starts shutting the service down.
    fn shutdown(&self);
}

/// A bound control socket.
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

/// Why the socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("a service is already listening on {0}")]
    InUse(PathBuf),
    #[error("cannot create control socket {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ControlSocket {
    /// Binds `path`, replacing a stale socket file a dead service left.
    pub fn bind(path: &Path) -> Result<Self, BindError> {
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
        })
    }

    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts connections until the listener fails; each gets a thread.
    pub fn serve(self, handler: Arc<dyn Handler>) {
        let owner = crate::sys::user::effective_ids().0;
        for stream in self.listener.incoming() {
            let Ok(stream) = stream else { continue };
            let handler = handler.clone();
            let spawned = std::thread::Builder::new()
                .name("control".into())
                .spawn(move || {
                    if let Err(e) = serve_connection(stream, owner, &*handler) {
                        tracing::debug!(error = %e, "control connection ended");
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a control thread");
            }
        }
    }

    /// Removes the socket file (at shutdown).
    pub fn remove(path: &Path) {
        let _ = std::fs::remove_file(path);
    }
}

fn serve_connection(stream: UnixStream, owner: u32, handler: &dyn Handler) -> io::Result<()> {
    let peer = peer::credentials(&stream)?;
    let mut writer = stream.try_clone()?;
    if peer.uid != owner && peer.uid != 0 {
        tracing::warn!(
            uid = peer.uid,
            pid = peer.pid,
            "refused a control connection from another user"
        );
        let message = format!("permission denied: this service belongs to uid {owner}");
        return protocol::write_frame(&mut writer, &Response::Error { message });
    }
    let mut reader = BufReader::new(stream);
    loop {
        let line = match protocol::read_frame(&mut reader) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(()),
            Err(FrameError::Io(e)) => return Err(e),
            Err(e @ FrameError::TooLong) => {
                // The rest of the line cannot be told from the next message.
                let message = format!("{e}; closing the connection");
                return protocol::write_frame(&mut writer, &Response::Error { message });
            }
            Err(e) => {
                protocol::write_frame(
                    &mut writer,
                    &Response::Error {
                        message: e.to_string(),
                    },
                )?;
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let request = match protocol::parse_request(&line) {
            Ok(r) => r,
            Err(message) => {
                protocol::write_frame(&mut writer, &Response::Error { message })?;
                continue;
            }
        };
        tracing::debug!(?request, uid = peer.uid, pid = peer.pid, "control request");
        match handler.handle(peer, request) {
            Reply::One(r) => protocol::write_frame(&mut writer, &r)?,
            Reply::ThenShutdown(r) => {
                protocol::write_frame(&mut writer, &r)?;
                handler.shutdown();
                return Ok(());
            }
            Reply::Stream(first, events) => {
                protocol::write_frame(&mut writer, &first)?;
                for event in events {
                    protocol::write_frame(&mut writer, &event)?;
                }
                return Ok(());
            }
        }
    }
}
