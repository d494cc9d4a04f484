//! Starting again after a crash, a kill or an upgrade: the scratch root is
//! locked to one service, and the runtimes recorded in it (see
//! [`crate::records`]; editable ones with their edits) are given back to
//! their processes or cleaned up.

use std::path::Path;
use std::sync::Arc;

use std::path::PathBuf;

use crate::manager::Manager;
use crate::records::RuntimeRecord;
use crate::runtimes::{NewRuntime, Runtime};
use crate::scratch::Scratch;
use crate::stack;
use crate::sys;

/// Held by the running service in its scratch root.
const SCRATCH_LOCK: &str = "service.lock";

/// Why the scratch root cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScratchRootError {
    /// Another service holds its lock.
    #[error("another service uses the scratch root {0}; stop it (spfs-fuse-macos shutdown) or give this one its own --scratch-root")]
    InUse(PathBuf),
    /// It cannot be created or locked.
    #[error("cannot use the scratch root {path}: {source}")]
    Io {
        /// The scratch root.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Creates the scratch root and locks it for this process (the lock goes
/// with the returned file).
pub fn lock_scratch_root(root: &Path) -> Result<std::fs::File, ScratchRootError> {
    let io_err = |source| ScratchRootError::Io {
        path: root.to_owned(),
        source,
    };
    std::fs::create_dir_all(root).map_err(io_err)?;
    // Private: other accounts never read the edits below it (older
    // versions left it 0755; fixed here, at every start).
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::symlink_metadata(root).map_err(io_err)?;
        if meta.is_dir() && meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))
                .map_err(io_err)?;
        }
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join(SCRATCH_LOCK))
        .map_err(io_err)?;
    match sys::lock::try_lock_exclusive(&file) {
        Ok(true) => Ok(file),
        Ok(false) => Err(ScratchRootError::InUse(root.to_owned())),
        Err(e) => Err(io_err(e)),
    }
}

/// Brings back the editable runtimes of an earlier run of the service
/// (which crashed, was killed or was upgraded) from the records in their
/// scratch directories, and empties every work directory:
/// - a runtime whose root process (same start time) or any process carrying
///   its token still lives is started again, edits and all;
/// - a runtime whose processes are all gone ends as it would have while the
///   service ran: its scratch directory is removed;
/// - directories without a readable record are left alone (only a work
///   directory of a scratch layout is emptied), so a mistaken scratch root
///   never loses anything.
///
/// Returns the runtimes re-attached.
pub fn recover(
    manager: &Manager,
    repositories: &stack::Opener,
    scratch_root: &Path,
) -> Vec<Arc<Runtime>> {
    let entries = match std::fs::read_dir(scratch_root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::error!(path = %scratch_root.display(), error = %e, "cannot read the scratch root");
            return Vec::new();
        }
    };
    let mut back = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let record = match RuntimeRecord::read(&dir) {
            Ok(Some(r)) => r,
            Ok(None) | Err(_) if !(dir.join("upper").is_dir() && dir.join("work").is_dir()) => {
                continue
            }
            other => {
                if let Err(e) = other {
                    tracing::warn!(error = %e, "scratch directory kept as it is");
                }
                if let Err(e) = Scratch::open(&dir) {
                    tracing::warn!(path = %dir.display(), error = %e, "cannot empty the work directory");
                }
                continue;
            }
        };
        match reattach(manager, repositories, &dir, &record) {
            Ok(Some(rt)) => {
                tracing::info!(runtime = %rt.name, root = rt.root_pid, editable = rt.editable().is_some(), "runtime re-attached");
                back.push(rt);
            }
            Ok(None) => {
                tracing::info!(runtime = %record.name, path = %dir.display(), "runtime ended while the service was down; removing its directory");
                record_ended_while_down(repositories, &record);
                if let Err(e) = crate::scratch::remove_all(&dir) {
                    tracing::warn!(path = %dir.display(), error = %e, "cannot remove the scratch directory");
                }
            }
            Err(e) => {
                tracing::error!(runtime = %record.name, path = %dir.display(), error = %e, "cannot re-attach the runtime; its edits are kept");
                if record.editable {
                    let _ = Scratch::open(record.edits_dir.as_deref().unwrap_or(&dir));
                }
            }
        }
    }
    back
}

/// Tells the repository that the runtime of `record` ended while no
/// service ran: a durable runtime is saved, any other's record removed.
fn record_ended_while_down(repositories: &stack::Opener, record: &RuntimeRecord) {
    let repos = match repositories.open(&record.repositories) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(runtime = %record.name, error = %e, "cannot open the runtime's repository to record its end");
            return;
        }
    };
    let repo = repos.primary();
    match repo.runtime_record(&record.name) {
        Ok(Some(r)) => crate::durable::ended(repo, r),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(runtime = %record.name, error = %e, "cannot read the runtime's record in its repository");
            if !record.durable {
                let _ = repo.remove_runtime(&record.name);
            }
        }
    }
}

/// Starts the runtime of `record` again if any of its processes lives;
/// None if none does.
fn reattach(
    manager: &Manager,
    repositories: &stack::Opener,
    dir: &Path,
    record: &RuntimeRecord,
) -> Result<Option<Arc<Runtime>>, String> {
    let ours = |p: &sys::process::ProcInfo| p.uid == record.uid;
    let root = sys::process::proc_info(record.root_pid)
        .filter(|p| ours(p) && p.start_time == record.root_start_time)
        .map(|p| p.pid)
        .or_else(|| {
            sys::process::all_pids().into_iter().find(|&pid| {
                sys::process::environ_var(pid, crate::router::TOKEN_ENV).as_deref()
                    == Some(record.token.as_str())
                    && sys::process::proc_info(pid).is_some_and(|p| ours(&p))
            })
        });
    let Some(root) = root else {
        return Ok(None);
    };
    let repos = repositories
        .open(&record.repositories)
        .map_err(|e| e.to_string())?;
    let stack = stack::parse(&record.stack).map_err(|e| e.to_string())?;
    let view = manager
        .runtimes()
        .view_of(&repos, &stack)
        .map_err(|e| e.to_string())?;
    // Layers committed before the restart are shown as such.
    let spec_layers = stack::resolve(&repos, &record.env_spec)
        .ok()
        .map(|s| s.len())
        .filter(|n| *n <= stack.len());
    let scratch = if record.editable {
        // A durable runtime's edits are in its repository's durable_edits/.
        let edits = record.edits_dir.as_deref().unwrap_or(dir);
        let scratch = Scratch::open_as(edits, record.read_only).map_err(|e| e.to_string())?;
        Some(Arc::new(scratch))
    } else {
        None
    };
    // Its record in the repository, as the earlier service left it.
    let repo_record = match repos.primary().runtime_record(&record.name) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(runtime = %record.name, error = %e, "cannot read the runtime's record in its repository");
            None
        }
    };
    let rt = manager
        .runtimes()
        .start(NewRuntime {
            name: record.name.clone(),
            uid: record.uid,
            gid: record.gid,
            root_pid: root,
            spec: record.env_spec.clone(),
            stack,
            view,
            repos: Arc::new(repos),
            scratch,
            token: record.token.clone(),
            created: Some(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(record.created_unix),
            ),
            spec_layers,
            record_dir: Some(dir.to_owned()),
            durable: record.durable,
            repo_record,
        })
        .map_err(|e| e.to_string())?;
    // Its records now name the root process that lives.
    let moved = root != record.root_pid;
    let start_time = sys::process::proc_info(root).map_or(0, |p| p.start_time);
    let _ = manager.persist_with(
        &rt,
        |r| {
            r.status.running = true;
            r.status.owner = Some(root);
        },
        |r| {
            if moved {
                r.root_pid = root;
                r.root_start_time = start_time;
            }
        },
    );
    Ok(Some(rt))
}
