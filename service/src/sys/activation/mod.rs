//! Socket activation: a listening control socket handed over by launchd
//! (`launch_activate_socket`, the agent's `Sockets` entry) or systemd
//! (`LISTEN_FDS`/`LISTEN_PID`), so the service can be started by the first
//! connection and clients can connect while it restarts.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::inherited_listener;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub use macos::inherited_listener;

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;

/// Why a handed-over socket cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// It is not a listening Unix stream socket.
    #[error("the socket handed over by {manager} is not a listening Unix stream socket ({what}); check the ListenStream/Sockets entry of the unit or agent")]
    NotUnixStream {
        /// systemd or launchd.
        manager: &'static str,
        /// What it is instead.
        what: String,
    },
    /// It was handed over wrongly.
    #[error("socket activation by {manager} failed: {reason}")]
    Failed {
        /// systemd or launchd.
        manager: &'static str,
        /// Why.
        reason: String,
    },
}

/// Checks that `fd` is a listening Unix stream socket.
fn listener(fd: OwnedFd, manager: &'static str) -> Result<UnixListener, ActivationError> {
    use rustix::net::{sockopt, AddressFamily, SocketType};
    let not = |what: String| ActivationError::NotUnixStream { manager, what };
    let st = rustix::fs::fstat(&fd).map_err(|e| not(format!("fstat: {e}")))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode as _) != rustix::fs::FileType::Socket {
        return Err(not("not a socket".into()));
    }
    let ty = sockopt::socket_type(fd.as_fd()).map_err(|e| not(e.to_string()))?;
    if ty != SocketType::STREAM {
        return Err(not(format!("socket type {ty:?}")));
    }
    let addr = rustix::net::getsockname(&fd).map_err(|e| not(e.to_string()))?;
    if addr.address_family() != AddressFamily::UNIX {
        return Err(not(format!("address family {:?}", addr.address_family())));
    }
    // macOS has no SO_ACCEPTCONN; launchd only passes listening sockets.
    #[cfg(target_os = "linux")]
    if !sockopt::socket_acceptconn(fd.as_fd()).map_err(|e| not(e.to_string()))? {
        return Err(not("not listening".into()));
    }
    Ok(UnixListener::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_listening_unix_stream_socket_is_taken() {
        let d = tempfile::tempdir().unwrap();
        let good = UnixListener::bind(d.path().join("s")).unwrap();
        assert!(listener(OwnedFd::from(good), "systemd").is_ok());
        let dgram = std::os::unix::net::UnixDatagram::bind(d.path().join("d")).unwrap();
        let e = listener(OwnedFd::from(dgram), "systemd")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a listening Unix stream socket"), "{e}");
        let file = std::fs::File::create(d.path().join("f")).unwrap();
        let e = listener(OwnedFd::from(file), "launchd")
            .unwrap_err()
            .to_string();
        assert!(e.contains("launchd") && e.contains("not a socket"), "{e}");
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let e = listener(OwnedFd::from(tcp), "systemd")
            .unwrap_err()
            .to_string();
        assert!(e.contains("address family"), "{e}");
    }
}
