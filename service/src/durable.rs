//! Runtimes in their primary repository, as upstream records them (see
//! [`crate::repo::runtime_records`]): every runtime has a record there
//! while it runs, so upstream's `spfs runtime ls` lists it and `spfs
//! clean` keeps its objects; a durable runtime's record stays when it
//! ends, `saved`, beside its edits in `durable_edits/<name>`.

use std::path::{Path, PathBuf};

use crate::repo::runtime_records::{Extras, RuntimeRecord};
use crate::repo::tags::TagAuthor;
use crate::repo::{Config, Digest, FsRepository};

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
    /// `durable_edits` (or a runtime's directory in it) is a symlink or
    /// not a directory: nothing is written or deleted through it.
    #[error("{0} is a symlink or not a directory: durable edits are never written or deleted through links; make it a plain directory (or remove it) and try again")]
    LinkedEdits(PathBuf),
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
pub(crate) fn author(uid: u32) -> (String, String) {
    let user = crate::sys::user::account_of(uid)
        .1
        .unwrap_or_else(|| uid.to_string());
    (user, Config::default_domain())
}

/// A record for a runtime starting now.
pub(crate) struct NewRecord<'a> {
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
    pub(crate) fn record(self) -> RuntimeRecord {
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

/// The live process a record names as running the runtime, if any: a
/// runtime another service (or an earlier one that died) runs. Only pids
/// on this machine can be checked.
pub(crate) fn live_owner(record: &RuntimeRecord) -> Option<u32> {
    record
        .status
        .owner
        .filter(|p| record.status.running && crate::sys::process::is_running(*p))
}

/// Whether user `uid` may see and use the runtime of `record`: root, its
/// own user, and anyone for upstream's records (which do not say whose
/// they are; the repository's permissions decide).
pub(crate) fn visible_to(record: &RuntimeRecord, uid: u32) -> bool {
    uid == 0 || record.extras.as_ref().is_none_or(|e| e.uid == uid)
}

/// What a saved runtime shows, for people: its env spec as given, or its
/// stack (bottom-up) as short digests.
pub(crate) fn display_spec(record: &RuntimeRecord) -> String {
    match record.extras.as_ref().map(|e| e.env_spec.as_str()) {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => record
            .status
            .stack
            .iter()
            .rev()
            // Characters, not bytes: the record is anyone's JSON.
            .map(|d| d.chars().take(8).collect::<String>())
            .collect::<Vec<_>>()
            .join("+"),
    }
}

/// Saves `record` in `repo`, as its user wrote it.
pub(crate) fn save(repo: &FsRepository, record: &RuntimeRecord) -> crate::repo::Result<()> {
    let author = TagAuthor(format!(
        "{}@{}",
        record.author.user_name, record.author.host_name
    ));
    repo.save_runtime(record, &author)
}

/// Checks that a new runtime may take `name` in `repo`: no record of that
/// name, and (durable) no edits directory of that name.
pub(crate) fn check_new_name(
    repo: &FsRepository,
    name: &str,
    durable: bool,
) -> Result<(), DurableError> {
    let exists = !matches!(repo.runtime_record(name), Ok(None));
    if exists {
        return Err(DurableError::Exists {
            name: name.to_owned(),
            repo: repo.root().to_owned(),
        });
    }
    if !durable {
        return Ok(());
    }
    check_edits_path(repo, name)?;
    let edits = repo.durable_dir(name);
    if edits.symlink_metadata().is_ok() {
        return Err(DurableError::EditsInUse(edits));
    }
    Ok(())
}

/// Refuses a `durable_edits` that is a symlink (or not a directory) in
/// `repo`: a tampered repository must not make the service write or
/// delete elsewhere. (A runtime's own directory in it that is not a
/// directory is moved aside by `prepare_edits`; whatever is written
/// there is opened without following links: `scratch::private_dir`.)
pub(crate) fn check_edits_path(repo: &FsRepository, name: &str) -> Result<(), DurableError> {
    let edits = repo.durable_dir(name);
    match edits.parent().map(|p| (p, p.symlink_metadata())) {
        Some((parent, Ok(m))) if !m.is_dir() => Err(DurableError::LinkedEdits(parent.to_owned())),
        _ => Ok(()),
    }
}

/// Records the end of the runtime of `record` in `repo` (also used when
/// it ended while the service was down).
pub(crate) fn ended(repo: &FsRepository, record: RuntimeRecord) {
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
/// again here: upstream's device whiteouts become `.wh.` files; edits that
/// are missing are made anew, and edits that are not a directory are
/// moved aside (never deleted), each with a notice saying so.
pub(crate) fn prepare_edits(
    repo: &FsRepository,
    record: &RuntimeRecord,
) -> Result<Option<String>, DurableError> {
    check_edits_path(repo, &record.name)?;
    let dir = repo.durable_dir(&record.name);
    let upper = dir.join("upper");
    let err = |source| DurableError::Edits {
        path: dir.clone(),
        source,
    };
    let is_dir = |p: &Path| p.symlink_metadata().is_ok_and(|m| m.is_dir());
    if dir.symlink_metadata().is_ok()
        && !(is_dir(&dir) && (is_dir(&upper) || upper.symlink_metadata().is_err()))
    {
        let aside = quarantine(&dir).map_err(err)?;
        tracing::warn!(runtime = %record.name, path = %dir.display(), moved_to = %aside.display(), "durable edits are damaged; moved aside");
        return Ok(Some(format!(
            "the edits of runtime '{}' ({}) were damaged (not a directory of edits): moved to {}; it runs with none",
            record.name,
            dir.display(),
            aside.display()
        )));
    }
    if !is_dir(&upper) {
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

/// Moves `path` aside to `<path>.damaged-<unix time>` (a fresh name).
fn quarantine(path: &Path) -> std::io::Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".damaged-{secs}"));
    let mut aside = PathBuf::from(&name);
    let mut n = 1;
    while aside.symlink_metadata().is_ok() {
        let mut again = name.clone();
        again.push(format!("-{n}"));
        aside = PathBuf::from(again);
        n += 1;
    }
    std::fs::rename(path, &aside)?;
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(repo: &FsRepository) -> RuntimeRecord {
        NewRecord {
            name: "d",
            uid: 0,
            stack: &[],
            editable: true,
            owner: 1,
            command: vec![],
            durable: true,
            edits: &repo.durable_dir("d"),
            env_spec: "",
        }
        .record()
    }

    #[test]
    fn a_saved_runtime_is_shown_by_its_spec_or_short_digests() {
        let d = tempfile::tempdir().unwrap();
        let repo = FsRepository::open_or_create(d.path().join("repo")).unwrap();
        let mut r = record(&repo);
        r.extras.as_mut().unwrap().env_spec = "a/b+c/d".into();
        assert_eq!(display_spec(&r), "a/b+c/d");
        // Anyone's JSON: cut by characters, never inside one.
        r.extras = None;
        r.status.stack = vec!["ÉÉÉÉÉÉÉÉÉÉ".into(), "ABCDEFGHIJ".into()];
        assert_eq!(display_spec(&r), "ABCDEFGH+ÉÉÉÉÉÉÉÉ");
        assert!(visible_to(&r, 501), "upstream's records say no owner");
    }

    #[test]
    fn damaged_or_missing_edits_are_said_and_never_deleted() {
        let d = tempfile::tempdir().unwrap();
        let repo = FsRepository::open_or_create(d.path().join("repo")).unwrap();
        let r = record(&repo);
        let dir = repo.durable_dir("d");
        // Missing: said.
        let n = prepare_edits(&repo, &r).unwrap().unwrap();
        assert!(n.contains("are missing"), "{n}");
        // upper is a file: the whole directory is moved aside.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("upper"), b"not a dir").unwrap();
        let n = prepare_edits(&repo, &r).unwrap().unwrap();
        assert!(n.contains("damaged") && n.contains("moved to"), "{n}");
        assert!(!dir.exists());
        let aside: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(aside.len(), 1);
        assert!(aside[0].starts_with("d.damaged-"), "{aside:?}");
        // A file where the directory should be: moved aside too.
        std::fs::write(&dir, b"x").unwrap();
        assert!(prepare_edits(&repo, &r)
            .unwrap()
            .unwrap()
            .contains("damaged"));
        assert!(!dir.exists());
        // Whole: nothing to say.
        std::fs::create_dir_all(dir.join("upper")).unwrap();
        assert_eq!(prepare_edits(&repo, &r).unwrap(), None);
    }
}
