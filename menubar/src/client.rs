//! Talking to the service over its control socket: a snapshot of its
//! state, single requests, and the subscription that keeps the menu
//! current (reconnecting, with backoff, when the service goes away).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub use spfs_shared::client::{Client, ClientError};
use spfs_shared::protocol::{Event, Request, Response, SubscribeRequest};

use crate::model::{Service, Snapshot};

/// The longest wait between two reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One request on a connection of its own.
pub fn call(socket: &Path, request: Request) -> Result<Response, ClientError> {
    Client::connect(socket)?.call(request)
}

/// The service's state now: status, runtimes, settings.
pub fn snapshot(socket: &Path) -> Result<Snapshot, ClientError> {
    let mut c = Client::connect(socket)?;
    let Response::Status(status) = c.call(Request::Status)? else {
        return Err(ClientError::Protocol("status".into()));
    };
    let Response::Runtimes { runtimes } = c.call(Request::ListRuntimes)? else {
        return Err(ClientError::Protocol("list_runtimes".into()));
    };
    let Response::Settings(settings) = c.call(Request::GetSettings)? else {
        return Err(ClientError::Protocol("get_settings".into()));
    };
    Ok(Snapshot {
        status,
        runtimes,
        settings,
        lifecycle_at: Instant::now(),
    })
}

/// What the subscription tells the app.
#[derive(Debug)]
pub enum Update {
    /// The whole state (on connecting, and when it had to be asked again).
    Service(Service),
    /// A change.
    Event(Event),
}

/// Keeps the app told about the service at `socket` until `send` fails
/// (the app quit): a snapshot on connecting, then every event; when the
/// service is not there, tries again after 1, 2, 4 … 60 s — or at once
/// when told to on `poke` (the user clicked Start).
pub fn follow(socket: PathBuf, poke: Receiver<()>, mut send: impl FnMut(Update) -> bool) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let result = follow_once(&socket, &mut send);
        let state = match result {
            // The app is gone.
            Ok(false) => return,
            Ok(true) => {
                backoff = Duration::from_secs(1);
                Service::NotRunning
            }
            Err(ClientError::NotRunning { .. }) => Service::NotRunning,
            Err(e) => Service::Error(e.to_string()),
        };
        if !send(Update::Service(state)) {
            return;
        }
        match poke.recv_timeout(backoff) {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(RecvTimeoutError::Timeout) => backoff = (backoff * 2).min(MAX_BACKOFF),
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// One subscription: `Ok(true)` when the service went away, `Ok(false)`
/// when the app did.
fn follow_once(socket: &Path, send: &mut impl FnMut(Update) -> bool) -> Result<bool, ClientError> {
    let snap = snapshot(socket)?;
    let mut sub = Client::connect(socket)?;
    let first = sub.call(Request::Subscribe(SubscribeRequest {
        settings: true,
        lifecycle: true,
    }))?;
    if !matches!(first, Response::Subscribed { .. }) {
        return Err(ClientError::Protocol("subscribe".into()));
    }
    // (The subscription's answer had no timeout: events come when they come.)
    if !send(Update::Service(Service::Running(Box::new(snap)))) {
        return Ok(false);
    }
    loop {
        match sub.receive() {
            Ok(Some(Response::Event(e))) => {
                let settings = matches!(e, Event::Settings { .. });
                if !send(Update::Event(e)) {
                    return Ok(false);
                }
                // The settings change what the status says (reporting).
                if settings {
                    if let Ok(snap) = snapshot(socket) {
                        if !send(Update::Service(Service::Running(Box::new(snap)))) {
                            return Ok(false);
                        }
                    }
                }
            }
            Ok(Some(Response::Error { message, .. })) => {
                // Fell behind: subscribe again.
                tracing_note(&message);
                return follow_once(socket, send);
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Ok(true),
        }
    }
}

fn tracing_note(message: &str) {
    eprintln!("spfs-menubar: {message}");
}
