//! Where the records of runtimes are kept: the service's own (a private
//! directory per runtime beside the scratch root, so a restarted service
//! gives each runtime back to its processes) and upstream's (in the
//! runtime's repository, so upstream's tools see it).

use std::io;
use std::path::{Path, PathBuf};

use crate::records::RuntimeRecord;
use crate::repo::runtime_records::RuntimeRecord as RepoRecord;
use crate::repo::FsRepository;

/// The records of runtimes, as the [`Manager`](super::Manager) writes
/// them (a trait, so the manager is tested with records in memory).
pub trait RecordStore: Send + Sync {
    /// Makes the private directory `name` of a new runtime and writes its
    /// record there first; the directory's path. On failure the path it
    /// tried, and nothing is left behind.
    fn create(&self, name: &str, record: &RuntimeRecord) -> Result<PathBuf, (PathBuf, io::Error)>;

    /// Changes the record in runtime directory `dir`.
    fn update(&self, dir: &Path, change: &mut dyn FnMut(&mut RuntimeRecord)) -> io::Result<()>;

    /// Removes runtime directory `dir` with all it holds.
    fn remove(&self, dir: &Path) -> io::Result<()>;

    /// Records a running runtime in its repository.
    fn save_running(&self, repo: &FsRepository, record: &RepoRecord) -> crate::repo::Result<()>;

    /// Records a runtime's end in its repository: a durable runtime is
    /// kept, saved; any other's record goes. A failure is logged.
    fn save_ended(&self, repo: &FsRepository, record: RepoRecord);
}

/// The records on disk: the service's under `scratch_root`, upstream's in
/// each runtime's repository.
#[derive(Debug)]
pub struct FsRecords {
    scratch_root: PathBuf,
}

impl FsRecords {
    /// Records of runtimes whose private directories are in `scratch_root`.
    pub fn new(scratch_root: &Path) -> Self {
        FsRecords {
            scratch_root: scratch_root.to_owned(),
        }
    }
}

impl RecordStore for FsRecords {
    fn create(&self, name: &str, record: &RuntimeRecord) -> Result<PathBuf, (PathBuf, io::Error)> {
        let dir = self.scratch_root.join(name);
        let made = crate::scratch::private_dir(&self.scratch_root, &[name.as_bytes()]);
        match made.and_then(|_| record.write(&dir)) {
            Ok(()) => Ok(dir),
            Err(e) => {
                let _ = crate::scratch::remove_all(&dir);
                Err((dir, e))
            }
        }
    }

    fn update(&self, dir: &Path, change: &mut dyn FnMut(&mut RuntimeRecord)) -> io::Result<()> {
        RuntimeRecord::update(dir, change)
    }

    fn remove(&self, dir: &Path) -> io::Result<()> {
        crate::scratch::remove_all(dir)
    }

    fn save_running(&self, repo: &FsRepository, record: &RepoRecord) -> crate::repo::Result<()> {
        crate::durable::save(repo, record)
    }

    fn save_ended(&self, repo: &FsRepository, record: RepoRecord) {
        crate::durable::ended(repo, record);
    }
}
