//! Runtimes in their primary repository, as upstream records them (see
//! [`crate::repo::runtime_records`]): every runtime has a record there
//! while it runs, so upstream's `spfs runtime ls` lists it and `spfs
//! clean` keeps its objects; a durable runtime's record stays when it
//! ends, `saved`, beside its edits in `durable_edits/<name>`.

use std::path::{Path, PathBuf};

use crate::repo::runtime_records::{Extras, RuntimeRecord};
use crate::repo::tags::TagAuthor;
use crate::repo::{Config, Digest, FsRepository};
use crate::runtimes::Runtime;

/// Why a durable runtime cannot be made or run again.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    /// A new runtime's name is recorded in the repository already.
    #[error("a runtime named '{name}' already exists in {repo}; run it again with 'run --rerun {name}', or remove it with 'runtime rm {name}' ('--remove-durable' deletes its edits)")]
    Exists {
        /// The name.
        name: String,
        /// The repository.
        repo: PathBuf,
    },
    /// Edits without a record: left by a runtime that was removed, or by
    /// another tool; never taken over silently.
    #[error("the durable edits directory {0} is already used by another runtime; choose another --runtime-name, or delete the directory if its edits are not needed")]
    EditsInUse(PathBuf),
    /// `--rerun` of a name without a record.
    #[error("no saved runtime named '{name}' in {repo}; 'runtime ls' lists them")]
    NoSuchSaved {
        /// The name.
        name: String,
        /// The repository.
        repo: PathBuf,
    },
    /// `--rerun` of a runtime that was not durable.
    #[error("runtime '{0}' is not durable: only runtimes made with --keep-runtime keep their edits and can be run again")]
    NotDurable(String),
    /// `--rerun` of a runtime this service runs.
    #[error("runtime '{name}' is running (process {pid}); open another shell in it with 'join {name}', or give --force to run it again here (its processes leave it)")]
    Running {
        /// The name.
        name: String,
        /// Its root process.
        pid: u32,
    },
    /// `--rerun` of a runtime that another service or machine runs.
    #[error("runtime '{name}' is recorded as running by process {pid}, not by this service; give --force if that process does not use it")]
    RunningElsewhere {
        /// The name.
        name: String,
        /// The process its record names.
        pid: u32,
    },
    /// The repository could not be read or written.
    #[error(transparent)]
    Repo(#[from] crate::repo::Error),
    /// The edits directory could not be prepared.
    #[error("cannot use the durable edits {path}: {source}")]
    Edits {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `user@host` of user `uid`, as tags record their author.
pub fn author(uid: u32) -> (String, String) {
    let user = crate::sys::user::account_of(uid)
        .1
        .unwrap_or_else(|| uid.to_string());
    (user, Config::default_domain())
}

/// A record for a runtime starting now.
pub struct NewRecord<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its user.
    pub uid: u32,
    /// Its stack, bottom-up.
    pub stack: &'a [Digest],
    /// It has edits.
    pub editable: bool,
    /// Its root process.
    pub owner: u32,
    /// What it runs.
    pub command: Vec<String>,
    /// Its edits outlive it.
    pub durable: bool,
    /// Where its edits are (`upper/` and `work/` inside).
    pub edits: &'a Path,
    /// The env spec as the user gave it.
    pub env_spec: &'a str,
}

impl NewRecord<'_> {
    /// The record, in upstream's format.
    pub fn record(self) -> RuntimeRecord {
        let (user, host) = author(self.uid);
        RuntimeRecord::new(
            self.name,
            &user,
            &host,
            self.stack,
            self.editable,
            self.owner,
            self.command,
            self.durable,
            self.edits,
            Extras {
                uid: self.uid,
                env_spec: self.env_spec.to_owned(),
                file_whiteouts: true,
            },
        )
    }
}

/// Saves `record` in `repo`, as its user wrote it.
pub fn save(repo: &FsRepository, record: &RuntimeRecord) -> crate::repo::Result<()> {
    let author = TagAuthor(format!(
        "{}@{}",
        record.author.user_name, record.author.host_name
    ));
    repo.save_runtime(record, &author)
}

/// Checks that a new runtime may take `name` in `repo`: no record of that
/// name, and (durable) no edits directory of that name.
pub fn check_new_name(repo: &FsRepository, name: &str, durable: bool) -> Result<(), DurableError> {
    let exists = !matches!(repo.runtime_record(name), Ok(None));
    if exists {
        return Err(DurableError::Exists {
            name: name.to_owned(),
            repo: repo.root().to_owned(),
        });
    }
    let edits = repo.durable_dir(name);
    if durable && edits.symlink_metadata().is_ok() {
        return Err(DurableError::EditsInUse(edits));
    }
    Ok(())
}

/// The record of runtime `rt` now (its stack may have grown by commits).
fn current(rt: &Runtime) -> Option<RuntimeRecord> {
    let record = rt.repo_record.lock().clone()?;
    Some(record.with_stack(&rt.stack()))
}

/// Records `rt` as it is now: at its start and after each commit.
/// A failure is logged: the runtime goes on, but upstream's tools do not
/// see it (or its newest commit).
pub fn record_running(rt: &Runtime) -> crate::repo::Result<()> {
    let Some(record) = current(rt) else {
        return Ok(());
    };
    save(rt.repos.primary(), &record).inspect_err(|e| {
        tracing::warn!(runtime = %rt.name, error = %e, "cannot record the runtime in its repository");
    })
}

/// Records the end of `rt`: a durable runtime is kept, `saved`; any other
/// runtime's record goes.
pub fn record_ended(rt: &Runtime) {
    let Some(record) = current(rt) else {
        return;
    };
    ended(rt.repos.primary(), record);
}

/// Records the end of the runtime of `record` in `repo` (also used when
/// it ended while the service was down).
pub fn ended(repo: &FsRepository, record: RuntimeRecord) {
    let name = record.name.clone();
    let done = if record.config.durable {
        save(repo, &record.stopped())
    } else {
        repo.remove_runtime(&name).map(drop)
    };
    if let Err(e) = done {
        tracing::warn!(runtime = %name, error = %e, "cannot record the end of the runtime in its repository");
    }
}

/// Prepares the edits of saved runtime `record` in `repo` to be run
/// again here: upstream's device whiteouts become `.wh.` files; missing
/// edits are made anew, with a notice saying so.
pub fn prepare_edits(
    repo: &FsRepository,
    record: &RuntimeRecord,
) -> Result<Option<String>, DurableError> {
    let dir = repo.durable_dir(&record.name);
    let upper = dir.join("upper");
    let err = |source| DurableError::Edits {
        path: dir.clone(),
        source,
    };
    if !upper.is_dir() {
        return Ok(Some(format!(
            "the edits of runtime '{}' ({}) are missing: it runs with none",
            record.name,
            upper.display()
        )));
    }
    if !record.file_whiteouts() {
        let n = crate::repo::whiteout::convert_device_whiteouts(&upper).map_err(err)?;
        if n > 0 {
            tracing::info!(runtime = %record.name, whiteouts = n, "upstream's whiteouts converted to .wh. files");
        }
    }
    Ok(None)
}
