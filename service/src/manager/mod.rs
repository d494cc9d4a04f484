//! The runtime manager: starts runtimes (new, or a saved durable one
//! again), joins processes to them, changes them (commit, reset, a new
//! stack, edits on or off or made durable: `changes.rs`), and ends them.
//!
//! [`Runtimes`] is the registry (which runtimes exist, which process and
//! inode belongs to which) and does no I/O of records; the control
//! handlers only turn requests into calls here and results into
//! responses. Records go through a [`RecordStore`], so each step is
//! tested with records in memory (`manager/tests.rs`). A runtime's two
//! records — the service's own beside the scratch root and upstream's in
//! its repository — are written from one snapshot of its stack by
//! [`Manager::persist`].

mod changes;
mod store;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;

pub use self::changes::{ChangeError, Commit, Committed};
pub use self::store::{FsRecords, RecordStore};
use crate::durable;
pub use crate::durable::DurableError;
use crate::records::{RuntimeRecord, RECORD_VERSION};
use crate::repo::runtime_records::RuntimeRecord as RepoRecord;
use crate::repo::{Digest, RepositorySet, View};
use crate::router::RuntimeId;
use crate::runtimes::{self, NewRuntime, Runtime, Runtimes, StartError};
use crate::scratch::Scratch;
use crate::stack;

/// A runtime about to start (see [`Manager::start`]).
#[derive(Debug)]
pub struct Starting {
    /// Its name (unique for its user).
    pub name: String,
    /// Its user.
    pub uid: u32,
    /// Its group.
    pub gid: u32,
    /// The process it is rooted at.
    pub root_pid: u32,
    /// When that process started (to tell it from a later one of its pid).
    pub root_start_time: u64,
    /// The reference it was started from, as the user gave it.
    pub spec: String,
    /// Its layers, bottom first.
    pub stack: Vec<Digest>,
    /// The merged view of `stack`.
    pub view: Arc<View>,
    /// Where its layers are read from.
    pub repos: RepositorySet,
    /// The same repositories, as the client named them.
    pub locations: Vec<spfs_shared::protocol::RepositoryLocation>,
    /// `None`: read-only; `Some(read_only)`: with edits, which take more
    /// unless `read_only`.
    pub scratch: Option<bool>,
    /// Whether its edits outlive it.
    pub durable: bool,
    /// The command it runs (for upstream's record).
    pub command: Vec<String>,
    /// A saved durable runtime's record (a rerun).
    pub saved: Option<RepoRecord>,
}

/// Why a runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Its private directory or its edits could not be made.
    #[error("cannot create the scratch directory {path}: {source}")]
    Scratch {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The registry refused it.
    #[error(transparent)]
    Start(#[from] StartError),
    /// A durable runtime could not be recorded in its repository (it
    /// could not be found again: refused rather than its edits lost later).
    #[error(transparent)]
    Record(crate::repo::Error),
    /// Its repository or its saved record could not be read.
    #[error(transparent)]
    Repo(#[from] crate::repo::Error),
    /// A saved durable runtime cannot run again (see the variants).
    #[error(transparent)]
    Durable(#[from] DurableError),
    /// No runtime of that name that the asking user may see.
    #[error("no runtime named '{}'", spfs_shared::display::quoted(.0))]
    NoSuchRuntime(String),
}

/// A saved durable runtime to run again (see [`Manager::rerun`]).
#[derive(Debug)]
pub struct Rerun {
    /// Its name.
    pub name: String,
    /// The user it runs for.
    pub uid: u32,
    /// Their group.
    pub gid: u32,
    /// Whether the asking client is root (who may see every saved runtime).
    pub by_root: bool,
    /// The process it is rooted at.
    pub root_pid: u32,
    /// When that process started.
    pub root_start_time: u64,
    /// Its repositories.
    pub repos: RepositorySet,
    /// The same repositories, as the client named them.
    pub locations: Vec<spfs_shared::protocol::RepositoryLocation>,
    /// Whether its edits take more (else shown, read-only).
    pub editable: bool,
    /// Whether processes still in it (here or elsewhere) are left behind.
    pub force: bool,
    /// The command it runs.
    pub command: Vec<String>,
}

/// Starts, records and ends runtimes (see the module's documentation).
pub struct Manager {
    runtimes: Arc<Runtimes>,
    records: Box<dyn RecordStore>,
    /// Held while a runtime's repository record is written, and from the
    /// record of its end until it has left the registry: no record of a
    /// running runtime is written after its end's.
    recording: Mutex<()>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

impl Manager {
    /// A manager of `runtimes` whose records `records` keeps.
    pub fn new(runtimes: Arc<Runtimes>, records: Box<dyn RecordStore>) -> Self {
        Manager {
            runtimes,
            records,
            recording: Mutex::new(()),
        }
    }

    /// The registry.
    pub fn runtimes(&self) -> &Arc<Runtimes> {
        &self.runtimes
    }

    /// Starts the runtime `s` describes: its record in a private
    /// directory first (so a restarted service can always find the edits
    /// of a runtime that has any), its edits (beside the record, or in
    /// the repository's `durable_edits/` for a durable runtime), the
    /// runtime itself, and its record in the repository. A failure at any
    /// step leaves nothing of it behind — but never removes the edits of
    /// a saved durable runtime.
    pub fn start(&self, s: Starting) -> Result<Arc<Runtime>, Error> {
        let token = runtimes::new_token();
        let dir_name = format!(
            "{}-{}",
            s.name,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let edits_if_durable = s.durable.then(|| s.repos.primary().durable_dir(&s.name));
        let record = RuntimeRecord {
            version: RECORD_VERSION,
            name: s.name.clone(),
            uid: s.uid,
            gid: s.gid,
            root_pid: s.root_pid,
            root_start_time: s.root_start_time,
            env_spec: s.spec.clone(),
            stack: stack::strings(&s.stack),
            repositories: s.locations.clone(),
            token: token.clone(),
            created_unix: unix_secs(SystemTime::now()),
            editable: s.scratch.is_some(),
            durable: s.durable,
            edits_dir: edits_if_durable.clone(),
            read_only: s.scratch == Some(true),
        };
        let dir = self
            .records
            .create(&dir_name, &record)
            .map_err(|(path, source)| Error::Scratch { path, source })?;
        let edits = edits_if_durable.unwrap_or_else(|| dir.clone());
        // Edits this start made (a saved runtime's are the user's); a
        // transient runtime's are in its directory.
        let own_edits = s.saved.is_none();
        let remove_edits = || {
            if own_edits && edits != dir {
                let _ = crate::scratch::remove_all(&edits);
            }
        };
        let undo = || {
            if let Err(e) = self.records.remove(&dir) {
                tracing::warn!(runtime = %s.name, error = %e, path = %dir.display(), "cannot remove the record of a runtime that did not start");
            }
            remove_edits();
        };
        let scratch = match s.scratch {
            None => None,
            Some(read_only) => match Scratch::open_as(&edits, read_only) {
                Ok(sc) => Some(Arc::new(sc)),
                Err(source) => {
                    undo();
                    return Err(Error::Scratch {
                        path: edits,
                        source,
                    });
                }
            },
        };
        let repo_record = match s.saved {
            Some(saved) => rerun_record(
                saved, &s.spec, s.uid, s.root_pid, s.scratch, &s.command, &edits,
            ),
            None => durable::NewRecord {
                name: &s.name,
                uid: s.uid,
                stack: &s.stack,
                editable: s.scratch == Some(false),
                owner: s.root_pid,
                command: s.command.clone(),
                durable: s.durable,
                edits: &edits,
                env_spec: &s.spec,
            }
            .record(),
        };
        let started = self.runtimes.start(NewRuntime {
            name: s.name.clone(),
            uid: s.uid,
            gid: s.gid,
            root_pid: s.root_pid,
            spec: s.spec.clone(),
            stack: s.stack,
            view: s.view,
            repos: Arc::new(s.repos),
            scratch,
            token,
            created: None,
            spec_layers: None,
            record_dir: Some(dir.clone()),
            durable: s.durable,
            repo_record: Some(repo_record),
        });
        let rt = match started {
            Ok(rt) => rt,
            Err(e) => {
                undo();
                return Err(e.into());
            }
        };
        // Upstream's record (the service's own was written first, with
        // this stack).
        if let Err(source) = self.save_repo_record(&rt, &rt.stack(), |_| {}) {
            if rt.is_durable() {
                // Not recorded, it could not be found again.
                *rt.repo_record.lock() = None;
                // Its directory goes with it.
                self.end(rt.id);
                remove_edits();
                return Err(Error::Record(source));
            }
        }
        Ok(rt)
    }

    /// `run --rerun NAME`: saved durable runtime NAME again, with its
    /// stack and edits; what the user should know about those edits (a
    /// notice), if anything. One still running here is refused, or with
    /// `force` ended first (its processes leave it).
    pub fn rerun(&self, r: Rerun) -> Result<(Arc<Runtime>, Option<String>), Error> {
        let repo = r.repos.primary();
        let name = r.name;
        let no_such = || DurableError::NoSuchSaved {
            name: name.clone(),
            repo: repo.root().to_owned(),
        };
        let record = repo.runtime_record(&name)?.ok_or_else(no_such)?;
        if !record.config.durable {
            return Err(DurableError::NotDurable(name).into());
        }
        if !durable::visible_to(&record, r.uid) && !r.by_root {
            return Err(Error::NoSuchRuntime(name));
        }
        match self.runtimes.find(&name, None) {
            Some(live) if live.uid != r.uid => {
                return Err(StartError::NameTaken(name).into());
            }
            Some(live) if !r.force => {
                return Err(DurableError::Running {
                    name,
                    pid: live.root_pid,
                }
                .into());
            }
            Some(live) => {
                tracing::info!(runtime = %name, "run again with --force: its processes leave it");
                self.end(live.id);
            }
            None => {
                if let Some(pid) = durable::live_owner(&record).filter(|_| !r.force) {
                    return Err(DurableError::RunningElsewhere { name, pid }.into());
                }
            }
        }
        // Read again: ending a live runtime saved it.
        let record = repo.runtime_record(&name)?.ok_or_else(no_such)?;
        let notice = durable::prepare_edits(repo, &record)?;
        let stack = record.stack()?;
        let view = self.runtimes.view_of(&r.repos, &stack)?;
        let spec = durable::display_spec(&record);
        let rt = self.start(Starting {
            name,
            uid: r.uid,
            gid: r.gid,
            root_pid: r.root_pid,
            root_start_time: r.root_start_time,
            spec,
            stack,
            view,
            repos: r.repos,
            locations: r.locations,
            // Its edits are always shown; `--no-edit` takes no more.
            scratch: Some(!r.editable),
            durable: true,
            command: r.command,
            saved: Some(record),
        })?;
        Ok((rt, notice))
    }

    /// Process `pid` becomes one more root of `rt` (`join`, or a `run`
    /// of the environment a single-runtime service is running).
    pub fn join(&self, rt: &Runtime, pid: u32) -> Result<(), StartError> {
        self.runtimes.join(rt, pid)
    }

    /// Writes both records of `rt` as it is now, from one snapshot of its
    /// stack: upstream's in its repository (the result: a failure there is
    /// also logged) and the service's own (a failure only matters if the
    /// service restarts — the runtime would come back on its old stack —
    /// so it is logged). A runtime that has ended meanwhile has its end
    /// recorded again instead, so no record says it runs.
    pub fn persist(&self, rt: &Arc<Runtime>) -> crate::repo::Result<()> {
        self.persist_with(rt, |_| {}, |_| {})
    }

    /// [`Manager::persist`], after changing what the records say of
    /// `rt` that its state does not (after `edit`, `edit --keep-runtime`,
    /// `reset -r`): `repo` for upstream's, `own` for the service's.
    pub fn persist_with(
        &self,
        rt: &Arc<Runtime>,
        repo: impl FnOnce(&mut RepoRecord),
        own: impl FnOnce(&mut RuntimeRecord),
    ) -> crate::repo::Result<()> {
        let stack = rt.stack();
        let saved = self.save_repo_record(rt, &stack, repo);
        if let Some(dir) = rt.record_dir() {
            let stack = stack::strings(&stack);
            let mut own = Some(own);
            let updated = self.records.update(dir, &mut |r| {
                if let Some(own) = own.take() {
                    own(r);
                }
                r.stack = stack.clone();
            });
            if let Err(e) = updated {
                tracing::warn!(runtime = %rt.name, error = %e, "cannot update the runtime record");
            }
        }
        saved
    }

    /// Writes upstream's record of `rt` (changed by `change`) with stack
    /// `stack` in its repository — or, once `rt` has ended, its end
    /// again. A failure is logged, and returned.
    fn save_repo_record(
        &self,
        rt: &Arc<Runtime>,
        stack: &[Digest],
        change: impl FnOnce(&mut RepoRecord),
    ) -> crate::repo::Result<()> {
        let _one = self.recording.lock();
        let record = {
            let mut r = rt.repo_record.lock();
            if let Some(r) = r.as_mut() {
                change(r);
            }
            r.clone().map(|r| r.with_stack(stack))
        };
        match record {
            None => Ok(()),
            Some(record) if self.runtimes.get(rt.id).is_none() => {
                self.records.save_ended(rt.repos.primary(), record);
                Ok(())
            }
            Some(record) => self
                .records
                .save_running(rt.repos.primary(), &record)
                .inspect_err(|e| {
                    tracing::warn!(runtime = %rt.name, error = %e, "cannot record the runtime in its repository");
                }),
        }
    }

    /// Ends runtime `id`: its end recorded in its repository first (once
    /// it has left the registry a client may act on that record), then it
    /// leaves the registry (its processes see an empty /spfs), then its
    /// edits go unless it is durable, and its private directory. False if
    /// it was not running.
    pub fn end(&self, id: RuntimeId) -> bool {
        let rt = {
            let _one = self.recording.lock();
            let Some(rt) = self.runtimes.get(id) else {
                return false;
            };
            let record = rt.repo_record.lock().clone();
            if let Some(record) = record {
                self.records
                    .save_ended(rt.repos.primary(), record.with_stack(&rt.stack()));
            }
            match self.runtimes.remove(id) {
                Some(rt) => rt,
                None => return false,
            }
        };
        let transient_edits = rt.editable().filter(|_| !rt.is_durable());
        if let Some(ed) = transient_edits {
            // As upstream's runtimes: edits not committed end with them.
            if let Err(e) = ed.scratch().remove() {
                tracing::warn!(runtime = %rt.name, error = %e, path = %ed.scratch().root().display(), "could not remove the scratch directory");
            }
        } else if let Some(dir) = rt.record_dir() {
            if let Err(e) = self.records.remove(dir) {
                tracing::warn!(runtime = %rt.name, error = %e, path = %dir.display(), "could not remove the runtime's record");
            }
        }
        self.runtimes.ended(rt);
        true
    }

    /// Ends every runtime whose processes are all gone (see
    /// [`Runtimes::dead`]); the ids ended.
    pub fn reap(&self) -> Vec<RuntimeId> {
        self.runtimes
            .dead()
            .into_iter()
            .filter(|rt| self.end(rt.id))
            .map(|rt| rt.id)
            .collect()
    }
}

/// Upstream's record of saved durable runtime `saved`, running again.
fn rerun_record(
    mut r: RepoRecord,
    spec: &str,
    uid: u32,
    root_pid: u32,
    scratch: Option<bool>,
    command: &[String],
    edits: &std::path::Path,
) -> RepoRecord {
    r.status.running = true;
    r.status.owner = Some(root_pid);
    r.status.editable = scratch == Some(false);
    if !command.is_empty() {
        r.status.command = command.to_vec();
    }
    r.config.upper_dir = edits.join("upper");
    r.config.work_dir = edits.join("work");
    let extras = r.extras.get_or_insert_with(Default::default);
    extras.uid = uid;
    extras.file_whiteouts = true;
    if extras.env_spec.is_empty() {
        extras.env_spec = spec.to_owned();
    }
    r
}

/// Seconds since the epoch (0 before it).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
