//! Runtimes recorded in a repository, as upstream spfs records them, so
//! that upstream's `spfs runtime ls` lists them and `spfs clean` keeps
//! every object they use:
//!
//! ```text
//! tags/spfs/runtimes/meta/<name>.tag  → a blob whose payload is the record (JSON)
//! tags/spfs/runtimes/data/<name>.tag  → a platform of the runtime's stack
//! durable_edits/<name>/{upper,work}   a durable runtime's edits
//! ```
//!
//! The JSON is upstream's (`name`, `author`, `status`, `config`); fields
//! this library does not know are kept as they were read, and this
//! project's own additions live under one key upstream ignores.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::object::{Blob, Object, Platform};
use crate::tags::{TagAuthor, TagSpec};
use crate::{Digest, Error, FsRepository, Result};

/// Tag org of the records.
pub const META_ORG: &str = "spfs/runtimes/meta";
/// Tag org of the stacks.
pub const DATA_ORG: &str = "spfs/runtimes/data";
/// Where durable runtimes keep their edits, in the repository's root.
pub const DURABLE_EDITS_DIR: &str = "durable_edits";
/// Records larger than this are not read (a record is a few KiB).
const MAX_RECORD: u64 = 1 << 20;

/// Who made a runtime, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// Login name.
    pub user_name: String,
    /// Host it ran on.
    pub host_name: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// Fields this library does not know, kept as read.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// What the runtime is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Layers (or platforms) of the stack, top first, as digests.
    pub stack: Vec<String>,
    /// It takes edits.
    pub editable: bool,
    /// Its processes run.
    pub running: bool,
    /// Its root process while it runs.
    pub owner: Option<u32>,
    /// Upstream's monitor process (none here).
    pub monitor: Option<u32>,
    /// What it runs.
    pub command: Vec<String>,
    /// Fields this library does not know, kept as read.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// How the runtime is set up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    /// Upstream's runtime directory (kept for upstream).
    pub runtime_dir: PathBuf,
    /// Upstream's tmpfs size (kept for upstream).
    pub tmpfs_size: Option<String>,
    /// Where its edits are.
    pub upper_dir: PathBuf,
    /// Upstream's lower directory (kept for upstream).
    pub lower_dir: PathBuf,
    /// The work directory beside the edits.
    pub work_dir: PathBuf,
    /// Upstream's startup files (kept for upstream).
    pub ps_startup_file: PathBuf,
    /// (kept for upstream)
    pub sh_startup_file: PathBuf,
    /// (kept for upstream)
    pub csh_startup_file: PathBuf,
    /// (kept for upstream)
    pub csh_expect_file: PathBuf,
    /// Upstream's mount namespace (none here).
    pub mount_namespace: Option<PathBuf>,
    /// Upstream's setting (kept for upstream).
    pub include_secondary_tags: bool,
    /// Its edits outlive its processes (in `durable_edits/<name>`).
    pub durable: bool,
    /// Fields this library does not know, kept as read.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// What this project adds to a record (ignored by upstream).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extras {
    /// The runtime's user.
    pub uid: u32,
    /// The env spec as the user gave it.
    pub env_spec: String,
    /// Whiteouts in the edits are `.wh.` files (this project's scratch
    /// format); records without extras were written by upstream, whose
    /// whiteouts are character devices 0/0.
    pub file_whiteouts: bool,
}

/// The key under which [`Extras`] are stored.
pub const EXTRAS_KEY: &str = "spfs_fuse_macos";

/// A runtime's record, upstream's JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeRecord {
    /// Its name, a tag component.
    pub name: String,
    /// Who made it.
    pub author: Author,
    /// What it does.
    pub status: Status,
    /// How it is set up.
    pub config: RuntimeConfig,
    #[serde(
        rename = "spfs_fuse_macos",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    /// This project's additions (absent in upstream's records).
    pub extras: Option<Extras>,
    /// Fields this library does not know, kept as read.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl RuntimeRecord {
    /// A record for a runtime starting now; `stack` is bottom-up, `edits`
    /// holds `upper/` and `work/`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        user_name: &str,
        host_name: &str,
        stack: &[Digest],
        editable: bool,
        owner: u32,
        command: Vec<String>,
        durable: bool,
        edits: &Path,
        extras: Extras,
    ) -> RuntimeRecord {
        use chrono::SubsecRound;
        RuntimeRecord {
            name: name.to_owned(),
            author: Author {
                user_name: user_name.to_owned(),
                host_name: host_name.to_owned(),
                created: chrono::Utc::now()
                    .trunc_subsecs(9)
                    .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                other: Default::default(),
            },
            status: Status {
                stack: Vec::new(),
                editable,
                running: true,
                owner: Some(owner),
                monitor: None,
                command,
                other: Default::default(),
            },
            config: RuntimeConfig {
                // Upstream reads these; nothing here uses them.
                runtime_dir: "/spfs".into(),
                tmpfs_size: None,
                upper_dir: edits.join("upper"),
                lower_dir: "/spfs".into(),
                work_dir: edits.join("work"),
                ps_startup_file: "/dev/null".into(),
                sh_startup_file: "/dev/null".into(),
                csh_startup_file: "/dev/null".into(),
                csh_expect_file: "/dev/null".into(),
                mount_namespace: None,
                include_secondary_tags: true,
                durable,
                other: Default::default(),
            },
            extras: Some(extras),
            other: Default::default(),
        }
        .with_stack(stack)
    }

    /// The same record with stack `stack` (bottom-up).
    pub fn with_stack(mut self, stack: &[Digest]) -> RuntimeRecord {
        self.status.stack = stack.iter().rev().map(Digest::to_string).collect();
        self
    }

    /// The stack, bottom-up.
    pub fn stack(&self) -> Result<Vec<Digest>> {
        self.status.stack.iter().rev().map(|s| s.parse()).collect()
    }

    /// Marks the runtime ended (its processes are gone).
    pub fn stopped(mut self) -> RuntimeRecord {
        self.status.running = false;
        self.status.owner = None;
        self.status.monitor = None;
        self
    }

    /// Whether its edits use `.wh.` files (see [`Extras::file_whiteouts`]).
    pub fn file_whiteouts(&self) -> bool {
        self.extras.as_ref().is_some_and(|e| e.file_whiteouts)
    }
}

/// A record that could not be read, by name.
#[derive(Debug)]
pub struct UnreadableRecord {
    /// The runtime's name.
    pub name: String,
    /// Why.
    pub error: Error,
}

fn tag(org: &str, name: &str) -> Result<TagSpec> {
    TagSpec::parse_to_write(&format!("{org}/{name}"))
}

impl FsRepository {
    /// The directory of durable runtime `name`'s edits.
    pub fn durable_dir(&self, name: &str) -> PathBuf {
        self.root().join(DURABLE_EDITS_DIR).join(name)
    }

    /// Saves `record` (replacing any earlier one): the stack first, so an
    /// object the record names is always kept by a tag.
    pub fn save_runtime(&self, record: &RuntimeRecord, author: &TagAuthor) -> Result<()> {
        let name = &record.name;
        let platform = self.write_object(&Object::Platform(Platform {
            layers: record.stack()?,
        }))?;
        self.push_tag(&tag(DATA_ORG, name)?, platform, author)?;
        let mut json = serde_json::to_vec_pretty(record).map_err(|e| Error::Io {
            action: "encode the record of runtime",
            path: PathBuf::from(name),
            source: io::Error::other(e),
        })?;
        json.push(b'\n');
        let (payload, size) = self.write_payload(&json[..])?;
        let blob = self.write_object(&Object::Blob(Blob { payload, size }))?;
        self.push_tag(&tag(META_ORG, name)?, blob, author)?;
        Ok(())
    }

    /// The record of runtime `name`; `None` if there is none.
    pub fn runtime_record(&self, name: &str) -> Result<Option<RuntimeRecord>> {
        let Some(head) = self.resolve_tag(&tag(META_ORG, name)?)? else {
            return Ok(None);
        };
        let corrupt = |reason: String| Error::CorruptRuntimeRecord {
            name: name.to_owned(),
            root: self.root().to_owned(),
            reason,
        };
        let payload = match self.read_object(&head.target)? {
            Some(Object::Blob(b)) => b.payload,
            Some(other) => {
                return Err(corrupt(format!(
                    "its tag points to a {}, not a blob",
                    other.kind().name()
                )))
            }
            None => return Err(corrupt(format!("its blob {} is missing", head.target))),
        };
        let path = self.payload_path(&payload);
        let mut bytes = Vec::new();
        fs::File::open(&path)
            .and_then(|f| f.take(MAX_RECORD).read_to_end(&mut bytes))
            .map_err(|e| corrupt(format!("cannot read {}: {e}", path.display())))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| corrupt(e.to_string()))
    }

    /// The names of every recorded runtime, sorted.
    pub fn runtime_names(&self) -> Result<Vec<String>> {
        let dir = self.tags_root().join(META_ORG);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list runtimes in", &dir)(e)),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".tag"))
                    .map(str::to_owned)
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every recorded runtime, and the names of those whose record cannot
    /// be read.
    pub fn runtime_records(&self) -> Result<(Vec<RuntimeRecord>, Vec<UnreadableRecord>)> {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for name in self.runtime_names()? {
            match self.runtime_record(&name) {
                Ok(Some(r)) => ok.push(r),
                Ok(None) => {}
                Err(error) => bad.push(UnreadableRecord { name, error }),
            }
        }
        Ok((ok, bad))
    }

    /// Removes runtime `name`'s record and stack tags (not its durable
    /// edits); true if it had any.
    pub fn remove_runtime(&self, name: &str) -> Result<bool> {
        let mut removed = false;
        for org in [META_ORG, DATA_ORG] {
            let path = tag(org, name)?.file_in(&self.tags_root());
            match fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove tag", &path)(e)),
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPSTREAM: &str =
        include_str!("../tests/fixtures/spfs-upstream/durable-runtime-info.json");

    #[test]
    fn reads_upstreams_record_and_keeps_what_it_does_not_know() {
        let mut text: serde_json::Value = serde_json::from_str(UPSTREAM).unwrap();
        text["config"]["future_field"] = serde_json::json!([1, 2]);
        let r: RuntimeRecord = serde_json::from_value(text.clone()).unwrap();
        assert_eq!(r.name, "sample");
        assert!(r.config.durable && !r.status.running && r.status.owner.is_none());
        assert!(!r.file_whiteouts(), "upstream's whiteouts are devices");
        assert_eq!(r.stack().unwrap().len(), 1);
        assert_eq!(serde_json::to_value(&r).unwrap(), text);
    }

    #[test]
    fn save_read_list_remove() {
        let d = tempfile::tempdir().unwrap();
        let repo = FsRepository::open_or_create(d.path()).unwrap();
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let author = TagAuthor("me@here".into());
        let extras = Extras {
            uid: 7,
            env_spec: "x/y".into(),
            file_whiteouts: true,
        };
        let r = RuntimeRecord::new(
            "one",
            "me",
            "here",
            &[a, b],
            true,
            42,
            vec!["sh".into()],
            true,
            &repo.durable_dir("one"),
            extras,
        );
        assert_eq!(r.status.stack, vec![b.to_string(), a.to_string()]);
        repo.save_runtime(&r, &author).unwrap();
        assert_eq!(repo.runtime_record("one").unwrap(), Some(r.clone()));
        let stopped = r.clone().stopped();
        repo.save_runtime(&stopped, &author).unwrap();
        assert_eq!(repo.runtime_record("one").unwrap(), Some(stopped));
        // The stack is a platform the data tag keeps.
        let data = repo
            .resolve_tag(&TagSpec::parse("spfs/runtimes/data/one").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            repo.read_object(&data.target).unwrap(),
            Some(Object::Platform(Platform { layers: vec![a, b] }))
        );
        // An unreadable record is reported by name.
        let bad = TagSpec::parse("spfs/runtimes/meta/bad").unwrap();
        repo.push_tag(&bad, a, &author).unwrap();
        let (ok, unreadable) = repo.runtime_records().unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(unreadable.len(), 1);
        assert_eq!(unreadable[0].name, "bad");
        assert!(unreadable[0].error.to_string().contains("runtime 'bad'"));
        assert!(repo.remove_runtime("one").unwrap());
        assert!(!repo.remove_runtime("one").unwrap());
        assert_eq!(repo.runtime_names().unwrap(), vec!["bad".to_owned()]);
    }
}
