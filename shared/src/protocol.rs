//! The control protocol between the service and its clients (the CLI and
//! the menu bar): one JSON object per line over a per-user Unix socket.
//!
//! Every request carries the protocol `version`; a service answers a
//! version it does not speak, an unknown request or malformed JSON with an
//! `error` response and keeps the connection. A line longer than
//! [`MAX_FRAME`] bytes is answered with an error and the connection is
//! closed (the stream cannot be resynchronised).

use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::settings::Settings;

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;
/// Longest accepted line, in bytes, newline included.
pub const MAX_FRAME: usize = 256 * 1024;

/// A request and the protocol version it was written for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFrame {
    /// The protocol version the client speaks ([`VERSION`]).
    pub version: u32,
    /// What it asks.
    #[serde(flatten)]
    pub request: Request,
}

/// What a client can ask.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
// Unknown top-level fields are ignored (newer clients may add some);
// unknown fields inside a request's own body are refused.
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// The service's own state.
    Status,
    /// Start a runtime rooted at a process of the requesting user.
    Mount(MountRequest),
    /// The requesting user's runtimes (all runtimes for root).
    ListRuntimes,
    /// One runtime by name.
    RuntimeInfo {
        /// Its name.
        name: String,
    },
    /// Send SIGTERM (SIGKILL with `force`) to a runtime's processes; it
    /// ends when they are gone.
    StopRuntime {
        /// The runtime's name.
        name: String,
        /// SIGKILL instead of SIGTERM.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
    },
    /// Unmount and exit.
    Shutdown,
    /// The current runtimes, then an `event` line for every change of
    /// them (and of the settings and the idle state, if asked for).
    Subscribe(SubscribeRequest),
    /// Turn an editable runtime's edits into a layer (and maybe a platform
    /// of the whole stack); the runtime continues on top of it.
    Commit(CommitRequest),
    /// Discard an editable runtime's edits: all, or those under `paths`;
    /// or, with `to` (an env spec; empty for none), discard them all and
    /// rebuild the runtime on that stack (`spfs reset -r`), editable or not.
    Reset {
        /// The runtime's name.
        name: String,
        /// Paths in the runtime whose edits go; none: all of them.
        #[serde(default)]
        paths: Vec<String>,
        /// An env spec to rebuild the runtime on (`reset -r`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// Make a live runtime editable (`spfs edit`) or read-only again, its
    /// edits still shown (`spfs edit --off`); its processes keep their
    /// working directories and open files.
    SetEditable {
        /// The runtime's name.
        name: String,
        /// Editable, or read-only again.
        editable: bool,
    },
    /// Make a live runtime durable (`spfs edit --keep-runtime`): its
    /// edits move into its repository's `durable_edits/NAME`, to outlive
    /// it; answered with `edited`.
    MakeDurable {
        /// The runtime's name.
        name: String,
    },
    /// Make process `root_pid` (the requester's) one more root of a live
    /// runtime: it and its children see that runtime.
    Join {
        /// The runtime's name.
        name: String,
        /// The new root: the requester or one of its ancestors.
        root_pid: u32,
    },
    /// The user's settings and the ones in effect.
    GetSettings,
    /// Change one setting (written to the settings file, applied at once).
    SetSetting {
        /// The setting's name, as in the settings file.
        key: String,
        /// Its new value, as text.
        value: String,
    },
}

/// Which events a subscription carries besides the runtimes' own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeRequest {
    /// `settings` events.
    #[serde(default)]
    pub settings: bool,
    /// `lifecycle` events (idle or busy, the countdown).
    #[serde(default)]
    pub lifecycle: bool,
}

/// What `commit` makes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitKind {
    /// One layer of the edits.
    #[default]
    Layer,
    /// That layer and a platform of the runtime's whole stack.
    Platform,
}

/// A commit of a runtime's edits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    /// The runtime.
    pub name: String,
    /// A layer of the edits, or a platform of the whole stack.
    #[serde(default)]
    pub kind: CommitKind,
    /// Tags to point at the result, in the primary repository.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Who the tags are attributed to (`user@host` from the client's spfs
    /// config, as upstream records it); the service's user when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Files hashed and written at once (`--max-concurrent-blobs`); the
    /// service's choice when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_blobs: Option<u32>,
}

/// Where a repository is, as the client's spfs configuration says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryLocation {
    /// A directory, or a remote's address (`grpc://host:port`), which
    /// payloads missing from the directories are fetched from.
    pub root: String,
    /// Tags are read and written in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_namespace: Option<String>,
    /// A remote's name in the spfs config (`[remote.NAME]`), for messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_name: Option<String>,
}

/// A runtime to start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountRequest {
    /// The process whose tree becomes the runtime (usually the client itself).
    pub root_pid: u32,
    /// Tags, digests or spec files joined by '+'.
    pub env_spec: String,
    /// An editable runtime (it has a scratch).
    #[serde(default)]
    pub editable: bool,
    /// Its name; a generated one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_name: Option<String>,
    /// The primary repository first, then read-only secondaries.
    pub repositories: Vec<RepositoryLocation>,
    /// The command the runtime runs (recorded, as upstream records it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// A durable runtime (`run --keep-runtime`): its edits are kept in
    /// the primary repository's `durable_edits/<name>` when it ends.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub durable: bool,
    /// Run saved durable runtime `runtime_name` again, with its stack and
    /// edits (`env_spec` is not used).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rerun: bool,
    /// With `rerun`: even if it is running (its processes leave it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// What the service answers.
// One is built per request and serialised at once: the status's size costs
// nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    /// The service's state.
    Status(ServiceStatus),
    /// A runtime started (or joined).
    Mounted {
        /// It.
        runtime: RuntimeInfo,
        /// Its token, for its processes' environment.
        token: String,
        /// Something the user should know (a durable runtime's missing
        /// edits, say).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notice: Option<String>,
    },
    /// The runtimes the requester may see.
    Runtimes {
        /// Oldest first.
        runtimes: Vec<RuntimeInfo>,
    },
    /// One runtime.
    Runtime {
        /// It.
        runtime: RuntimeInfo,
    },
    /// A runtime's processes were signalled; it ends when they are gone.
    Stopping {
        /// Its name.
        runtime: String,
        /// The processes signalled.
        signalled: Vec<u32>,
    },
    /// The service is shutting down.
    ShuttingDown,
    /// A subscription started; events follow.
    Subscribed {
        /// The runtimes now.
        runtimes: Vec<RuntimeInfo>,
    },
    /// A change (after `subscribed`).
    Event(Event),
    /// A commit's result: the digest of the layer or platform made.
    Committed {
        /// The digest of the layer or platform made.
        digest: String,
        /// The runtime, on its new stack.
        runtime: RuntimeInfo,
        /// Tags that pointed elsewhere before: (tag, its previous target,
        /// now reachable as `tag~1`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        moved: Vec<(String, String)>,
    },
    /// The edits were discarded.
    Reset {
        /// The runtime now.
        runtime: RuntimeInfo,
        /// Paths asked for that had no edits.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unchanged: Vec<String>,
    },
    /// A runtime's editability (or durability) as asked; `changed` is
    /// false if it already was.
    Edited {
        /// The runtime now.
        runtime: RuntimeInfo,
        /// False when it already was as asked.
        changed: bool,
    },
    /// The settings.
    Settings(SettingsInfo),
    /// The request failed.
    Error {
        /// One line for the user.
        message: String,
        /// What kind of failure, for clients that act on it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<ErrorCode>,
    },
}

/// Failures a client acts on rather than only shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The service is stopping (idle, or asked to): start a new one once
    /// its socket is gone.
    ShuttingDown,
    /// No live runtime of that name for the asking user (a saved durable
    /// one may still be in the repository).
    NoSuchRuntime,
    /// The runtime has no edits (commit or reset of a read-only runtime).
    ReadOnly,
    /// The asking user may not do this (another user's process or
    /// runtime, a root pid that is not theirs).
    NotPermitted,
    /// A runtime of that name exists or runs already.
    AlreadyExists,
    /// The request is malformed or names something invalid; nothing was
    /// changed.
    InvalidRequest,
    /// A reference (tag or digest) is in none of the repositories.
    UnknownReference,
    /// The operation was tried and failed (I/O, the repository); the
    /// message says where.
    Failed,
    /// A code this client does not know (a newer service).
    #[serde(other)]
    Other,
}

impl Response {
    /// An error response of a kind a client can act on.
    pub fn error_with(code: ErrorCode, message: impl Into<String>) -> Response {
        Response::Error {
            message: message.into(),
            code: Some(code),
        }
    }
}

/// The settings file and what is in effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsInfo {
    /// What the file holds (defaults filled in).
    pub settings: Settings,
    /// The file.
    pub path: String,
    /// The idle timeout in effect, in seconds; `None`: never.
    pub idle_timeout_secs: Option<u64>,
    /// Where it comes from.
    pub idle_timeout_source: IdleTimeoutSource,
}

/// Why the idle timeout in effect is what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdleTimeoutSource {
    /// `idle_timeout_minutes` in the settings file.
    Setting,
    /// `SPFS_FUSE_IDLE_TIMEOUT` in the service's environment.
    Environment,
    /// The service runs always-on (LaunchAgent, systemd unit): never.
    AlwaysOn,
}

/// Whether and when the service stops by itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// The idle timeout in effect, in seconds; `None`: never.
    pub idle_timeout_secs: Option<u64>,
    /// Seconds the service has been idle (no runtime, no request);
    /// `None` while it is busy.
    pub idle_secs: Option<u64>,
    /// Seconds until it stops if nothing happens; `None` if it will not.
    pub exits_in_secs: Option<u64>,
    /// Installed as always-on (started by launchd or systemd at login).
    pub always_on: bool,
    /// Its control socket was handed over by launchd or systemd.
    pub socket_activated: bool,
}

/// The service's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// The service's release (`CARGO_PKG_VERSION`).
    pub version: String,
    /// The protocol version it speaks.
    pub protocol: u32,
    /// Its process id.
    pub pid: u32,
    /// Where it is mounted.
    pub mountpoint: String,
    /// How many runtimes the requester may see.
    pub runtimes: usize,
    /// Seconds since it started.
    pub uptime_secs: u64,
    /// Idle state and timeout.
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// Whether errors are reported, and where.
    #[serde(default)]
    pub reporting: ReportingStatus,
    /// The filesystem backend serving the mount, and what it can do.
    #[serde(default)]
    pub backend: Option<BackendInfo>,
}

/// The filesystem backend of a service (see the service's `backend` module
/// and `docs/backends.md`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// `linux`, `macfuse`, `macfuse-fskit`, `fuse-t`.
    pub name: String,
    /// For people: `macFUSE (kernel extension)`.
    pub title: String,
    /// Its version, when known.
    pub version: Option<String>,
    /// Requests carry the caller's pid (per-process-tree runtimes need it).
    pub caller_pid: bool,
    /// Cache invalidation: `full`, `partial` or `none`.
    pub invalidation: String,
    /// Zero entry timeouts keep names out of the kernel's name cache.
    pub entry_timeouts: bool,
    /// `anywhere` or `under /Volumes only`.
    pub mount_location: String,
    /// Requests are served one at a time.
    pub serial: bool,
    /// One runtime at a time, seen by all of the user's processes.
    pub single_runtime: bool,
    /// Mount options the backend adds (`novncache`…).
    pub mount_options: Vec<String>,
    /// The directory mounted on.
    pub mounted_at: String,
    /// `/spfs → /Volumes/spfs` when the mountpoint is a link (and its state).
    pub link: Option<String>,
}

impl BackendInfo {
    /// One line for people: `macFUSE (kernel extension) 5.1.2, one runtime per process tree`.
    pub fn summary(&self) -> String {
        let mut s = self.title.clone();
        if let Some(v) = &self.version {
            s.push(' ');
            s.push_str(v);
        }
        s.push_str(if self.single_runtime {
            ", one runtime at a time"
        } else {
            ", one runtime per process tree"
        });
        s
    }
}

/// Whether error reports are sent, and to which host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportingStatus {
    /// Reports are being sent.
    pub enabled: bool,
    /// The reporting host (from the DSN; its key is not shown).
    pub host: Option<String>,
    /// The build can report at all (the `sentry` feature).
    pub available: bool,
    /// One line for people: `on, to sentry.example.com`, or why it is off.
    pub summary: String,
}

/// One runtime, as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// Its name, unique among its user's runtimes.
    pub name: String,
    /// Its id in this service.
    pub id: u64,
    /// Its user.
    pub uid: u32,
    /// The process whose tree it is.
    pub root_pid: u32,
    /// What it shows: its env spec, and each layer committed since.
    pub env_spec: String,
    /// Layer digests, bottom-up.
    pub stack: Vec<String>,
    /// Whether it takes edits now.
    pub editable: bool,
    /// Seconds since the Unix epoch.
    pub created_unix: u64,
    /// Entries in the merged view.
    pub entries: u64,
    /// Bytes and files in the runtime's scratch (0 for read-only runtimes).
    pub scratch_bytes: u64,
    /// Files in its scratch.
    pub scratch_files: u64,
    /// Where an editable runtime's edits are (its scratch directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch_dir: Option<String>,
    /// Its edits outlive its processes (`run --keep-runtime`).
    #[serde(default)]
    pub durable: bool,
    /// Its processes run (false: a saved durable runtime, or a record
    /// left in the repository).
    #[serde(default = "running_by_default")]
    pub running: bool,
    /// Payloads it fetches from remotes as files are first opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetching: Option<FetchInfo>,
}

/// A runtime's payload fetches from remotes, so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchInfo {
    /// Fetches running or waiting now.
    pub in_flight: u64,
    /// Payloads fetched.
    pub fetched: u64,
    /// Fetches that failed (their readers got EIO).
    pub failed: u64,
    /// Bytes received.
    pub bytes: u64,
}

fn running_by_default() -> bool {
    true
}

/// A change pushed to subscribers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A runtime started.
    Started {
        /// It.
        runtime: RuntimeInfo,
    },
    /// Its stack changed (a commit) or its edits did (scratch size):
    /// sent after each commit or reset, and at most once a second while
    /// edits go on.
    Updated {
        /// It, now.
        runtime: RuntimeInfo,
    },
    /// A runtime ended.
    Ended {
        /// Its name.
        name: String,
        /// Its id in the service.
        id: u64,
    },
    /// The settings changed (by a request or an edit of the file).
    Settings {
        /// The settings now.
        settings: SettingsInfo,
    },
    /// The service became idle or busy, or its timeout changed.
    Lifecycle {
        /// The idle state now.
        lifecycle: Lifecycle,
    },
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A line longer than the limit.
    #[error("message longer than {MAX_FRAME} bytes")]
    TooLong,
    /// A line that is not UTF-8.
    #[error("message is not UTF-8")]
    NotUtf8,
    /// The connection failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads one line (without its newline); `Ok(None)` at end of stream.
pub fn read_frame(r: &mut impl BufRead) -> Result<Option<String>, FrameError> {
    let mut buf = Vec::new();
    let n = io::Read::take(&mut *r, MAX_FRAME as u64).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        if n >= MAX_FRAME {
            return Err(FrameError::TooLong);
        }
        // end of stream without a newline: take what came
    } else {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| FrameError::NotUtf8)
}

/// Writes one message as a line.
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

/// Parses a request line, checking the version.
pub fn parse_request(line: &str) -> Result<Request, String> {
    #[derive(Deserialize)]
    struct VersionOnly {
        version: Option<u32>,
    }
    let v: VersionOnly =
        serde_json::from_str(line).map_err(|e| format!("malformed request: {e}"))?;
    match v.version {
        Some(VERSION) => {}
        Some(other) => {
            return Err(format!(
                "protocol version {other} is not supported; this service speaks version {VERSION}"
            ))
        }
        None => return Err("malformed request: missing 'version'".to_owned()),
    }
    serde_json::from_str::<RequestFrame>(line)
        .map(|f| f.request)
        .map_err(|e| format!("malformed request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_cross_the_socket_and_unknown_ones_are_other() {
        let e = Response::error_with(ErrorCode::NoSuchRuntime, "no runtime named 'x'");
        let line = serde_json::to_string(&e).unwrap();
        assert!(line.contains(r#""code":"no_such_runtime""#), "{line}");
        assert_eq!(serde_json::from_str::<Response>(&line).unwrap(), e);
        // From a newer service: still an error, of a kind this client
        // does not act on.
        let newer = line.replace("no_such_runtime", "quota_exceeded");
        assert_eq!(
            serde_json::from_str::<Response>(&newer).unwrap(),
            Response::error_with(ErrorCode::Other, "no runtime named 'x'")
        );
        // From an older one: no code at all.
        let older: Response =
            serde_json::from_str(&line.replace(r#","code":"no_such_runtime""#, "")).unwrap();
        assert!(
            matches!(older, Response::Error { code: None, .. }),
            "{older:?}"
        );
    }

    #[test]
    fn requests_round_trip() {
        for request in [
            Request::Status,
            Request::Mount(MountRequest {
                root_pid: 42,
                env_spec: "a/b+c/d".into(),
                editable: false,
                runtime_name: Some("x".into()),
                repositories: vec![RepositoryLocation {
                    root: "/r".into(),
                    tag_namespace: None,
                    remote_name: None,
                }],
                command: vec!["sh".into()],
                durable: true,
                rerun: false,
                force: false,
            }),
            Request::Join {
                name: "x".into(),
                root_pid: 7,
            },
            Request::StopRuntime {
                name: "x".into(),
                force: false,
            },
            Request::SetEditable {
                name: "x".into(),
                editable: true,
            },
            Request::MakeDurable { name: "x".into() },
            Request::Subscribe(SubscribeRequest::default()),
            Request::Subscribe(SubscribeRequest {
                settings: true,
                lifecycle: true,
            }),
        ] {
            let mut buf = Vec::new();
            write_frame(
                &mut buf,
                &RequestFrame {
                    version: VERSION,
                    request: request.clone(),
                },
            )
            .unwrap();
            let line = read_frame(&mut buf.as_slice()).unwrap().unwrap();
            assert_eq!(parse_request(&line).unwrap(), request);
        }
    }

    #[test]
    fn bad_frames() {
        for (line, needle) in [
            ("{", "malformed request"),
            ("{\"version\":1}", "malformed request"),
            ("{\"version\":1,\"request\":\"fly\"}", "unknown variant"),
            ("{\"version\":9,\"request\":\"status\"}", "version 9 is not supported"),
            ("{\"request\":\"status\"}", "missing 'version'"),
            (
                "{\"version\":1,\"request\":\"mount\",\"root_pid\":1,\"env_spec\":\"-\",\"repositories\":[],\"colour\":1}",
                "unknown field",
            ),
            ("[1,2]", "malformed"),
        ] {
            let err = parse_request(line).unwrap_err();
            assert!(err.contains(needle), "{line}: {err}");
        }
        let long = vec![b'x'; MAX_FRAME + 10];
        assert!(matches!(
            read_frame(&mut long.as_slice()),
            Err(FrameError::TooLong)
        ));
        assert!(read_frame(&mut &b""[..]).unwrap().is_none());
    }
}
