//! The record of a runtime, kept in its directory under the scratch root
//! so that a restarted service (after a crash, a kill or an upgrade) finds
//! the runtime again — an editable one with its edits — and gives it back
//! to the runtime's processes.
//!
//! ```text
//! <scratch>/runtime.json   this record (written to a temp file, then renamed)
//! <scratch>/upper/ work/   see [`crate::scratch`] (editable runtimes only)
//! ```

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use spfs_shared::protocol::RepositoryLocation;

/// The record's file name inside a scratch directory.
pub const RECORD_FILE: &str = "runtime.json";
/// The record format written by this version.
pub const RECORD_VERSION: u32 = 1;

/// What a restarted service needs to bring an editable runtime back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeRecord {
    /// The record format's version ([`RECORD_VERSION`]).
    pub version: u32,
    /// The runtime's name.
    pub name: String,
    /// Its user.
    pub uid: u32,
    /// Its user's group.
    pub gid: u32,
    /// The runtime's root process, and its start time (so a recycled pid
    /// is not mistaken for it).
    pub root_pid: u32,
    /// (see `root_pid`)
    pub root_start_time: u64,
    /// The env spec as the user gave it.
    pub env_spec: String,
    /// Layers (or manifests) of the stack now, bottom-up: commits add to it.
    pub stack: Vec<String>,
    /// The primary repository first.
    pub repositories: Vec<RepositoryLocation>,
    /// Carried by the runtime's processes (see `router::TOKEN_ENV`).
    pub token: String,
    /// When it started (seconds since 1970).
    pub created_unix: u64,
    /// Editable (with `upper/` and `work/` beside the record); records
    /// written before read-only runtimes had one are all editable.
    #[serde(default = "editable_by_default")]
    pub editable: bool,
    /// A durable runtime: its edits are in `edits_dir` (in its
    /// repository's `durable_edits/`), not beside the record.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub durable: bool,
    /// Where the edits are when not beside the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edits_dir: Option<PathBuf>,
    /// The edits are shown but take no more (`--no-edit` of a durable
    /// runtime).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

fn editable_by_default() -> bool {
    true
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// It could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The record's file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// It is not a record this service writes.
    #[error("{path} is not a runtime record ({reason}); remove the directory if its edits are not needed")]
    Invalid {
        /// The record's file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl RuntimeRecord {
    /// Writes the record into scratch directory `dir`, replacing any older
    /// one atomically: a crash leaves the old record or the new, whole.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let tmp = dir.join(format!("{RECORD_FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        let mut json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        json.push(b'\n');
        f.write_all(&json)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(RECORD_FILE))
    }

    /// Records a runtime's new stack (after a commit) in scratch directory
    /// `dir`, if it has a record.
    pub fn update_stack(dir: &Path, stack: &[String]) -> io::Result<()> {
        Self::update(dir, |r| r.stack = stack.to_vec())
    }

    /// Changes the record in scratch directory `dir` with `change`, if it
    /// has one (replaced atomically, as [`RuntimeRecord::write`]).
    pub fn update(dir: &Path, change: impl FnOnce(&mut RuntimeRecord)) -> io::Result<()> {
        let Some(mut record) = RuntimeRecord::read(dir).map_err(io::Error::other)? else {
            return Ok(());
        };
        change(&mut record);
        record.write(dir)
    }

    /// The record of scratch directory `dir`, or None if it has none.
    pub fn read(dir: &Path) -> Result<Option<RuntimeRecord>, RecordError> {
        let path = dir.join(RECORD_FILE);
        let bytes = match spfs_shared::bounded::read(&path, spfs_shared::bounded::SMALL) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(RecordError::Io { path, source }),
        };
        let record: RuntimeRecord =
            serde_json::from_slice(&bytes).map_err(|e| RecordError::Invalid {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if record.version != RECORD_VERSION {
            return Err(RecordError::Invalid {
                path,
                reason: format!("version {} is not supported", record.version),
            });
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RuntimeRecord {
        RuntimeRecord {
            version: RECORD_VERSION,
            name: "ed".into(),
            uid: 501,
            gid: 20,
            root_pid: 42,
            root_start_time: 7,
            env_spec: "fixture/base".into(),
            stack: vec!["ABC".into()],
            repositories: vec![RepositoryLocation {
                root: "/repo".into(),
                tag_namespace: None,
                remote_name: None,
            }],
            token: "t".into(),
            created_unix: 1,
            editable: true,
            durable: false,
            edits_dir: None,
            read_only: false,
        }
    }

    #[test]
    fn round_trips_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(RuntimeRecord::read(dir.path()).unwrap(), None);
        let mut r = record();
        r.write(dir.path()).unwrap();
        r.stack.push("DEF".into());
        r.write(dir.path()).unwrap();
        assert_eq!(RuntimeRecord::read(dir.path()).unwrap(), Some(r));
        assert!(!dir.path().join("runtime.json.tmp").exists());
    }

    #[test]
    fn corrupt_or_future_records_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(RECORD_FILE), b"{\"version\":1").unwrap();
        let e = RuntimeRecord::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is not a runtime record"), "{e}");
        let mut r = record();
        r.version = 99;
        r.write(dir.path()).unwrap();
        let e = RuntimeRecord::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("version 99"), "{e}");
    }
}
