//! Tags: human names for objects, kept as an append-only history per name.
//!
//! `tags/<org>/<name>.tag` holds length-prefixed records, oldest first. The
//! newest record is `org/name` (or `~0`), the one before `org/name~1`, etc.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use super::digest::{Digest, DIGEST_SIZE};
use super::error::{Error, Result};
use super::storage::FsRepository;

/// `[org/]name[~N]`: a tag stream and how far back in it to look.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TagSpec {
    org: Option<String>,
    name: String,
    version: u64,
}

/// The longest tag name or org component: it becomes a file name with
/// `.tag.lock` after it, and file names are at most 255 bytes.
pub const MAX_COMPONENT: usize = 240;
/// Largest tag file read (about 200 bytes a version: hundreds of
/// thousands of versions).
pub(crate) const MAX_TAG_FILE_BYTES: u64 = 64 << 20;

fn valid_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

impl TagSpec {
    /// Parses `[org/]name[~N]`; org components use the name's characters.
    pub fn parse(spec: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidTag {
            spec: spec.to_owned(),
            reason,
        };
        let (path, version) = match spec.split_once('~') {
            Some((p, v)) => {
                let v = v
                    .parse::<u64>()
                    .map_err(|_| invalid(format!("version '~{v}' is not a whole number")))?;
                (p, v)
            }
            None => (spec, 0),
        };
        let (org, name) = match path.rsplit_once('/') {
            Some((org, name)) => (Some(org), name),
            None => (None, path),
        };
        let check = |part: &str, what: &str| -> Result<()> {
            if part.is_empty() {
                return Err(invalid(format!("{what} is empty")));
            }
            if part == "." || part == ".." {
                return Err(invalid(format!("{what} cannot be '{part}'")));
            }
            if let Some(c) = part.chars().find(|c| !valid_name_char(*c)) {
                return Err(invalid(format!(
                    "{what} '{part}' contains '{c}'; use letters, digits, '.', '_' and '-'"
                )));
            }
            // Each component is a file or directory name in the repository
            // (`name.tag`, `name.tag.lock`).
            if part.len() > MAX_COMPONENT {
                return Err(invalid(format!(
                    "{what} is {} characters long; at most {MAX_COMPONENT}",
                    part.len()
                )));
            }
            Ok(())
        };
        check(name, "tag name")?;
        if let Some(org) = org {
            for part in org.split('/') {
                check(part, "tag org component")?;
            }
        }
        Ok(Self {
            org: org.map(str::to_owned),
            name: name.to_owned(),
            version,
        })
    }

    /// Parses a tag to write (`commit -t`, `tag`): as [`TagSpec::parse`],
    /// and without a `~N` version, which names an earlier target of a tag
    /// and cannot be written.
    pub fn parse_to_write(spec: &str) -> Result<Self> {
        let t = Self::parse(spec)?;
        if t.version != 0 || spec.contains('~') {
            return Err(Error::InvalidTag {
                spec: spec.to_owned(),
                reason: format!(
                    "'~{}' names an earlier version of a tag; a tag is written without '~N' (the previous target becomes ~1)",
                    t.version
                ),
            });
        }
        Ok(t)
    }

    /// The org path, if any (`a/b` for `a/b/name`).
    pub fn org(&self) -> Option<&str> {
        self.org.as_deref()
    }
    /// The tag name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// How many records back from the newest (0 = newest).
    pub fn version(&self) -> u64 {
        self.version
    }
    /// The same stream at another version.
    pub fn with_version(&self, version: u64) -> Self {
        Self {
            version,
            ..self.clone()
        }
    }
    /// `org/name` without a version.
    pub fn path(&self) -> String {
        match &self.org {
            Some(org) => format!("{org}/{}", self.name),
            None => self.name.clone(),
        }
    }
    /// The tag file under `tags_root`.
    pub fn file_in(&self, tags_root: &Path) -> PathBuf {
        let mut p = tags_root.to_owned();
        if let Some(org) = &self.org {
            p.extend(org.split('/'));
        }
        p.push(format!("{}.tag", self.name));
        p
    }
}

impl fmt::Display for TagSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())?;
        if self.version != 0 {
            write!(f, "~{}", self.version)?;
        }
        Ok(())
    }
}

impl FromStr for TagSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// One record of a tag stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// Org path; empty when the tag has none.
    pub org: String,
    /// The tag's name within its org.
    pub name: String,
    /// The object it points at.
    pub target: Digest,
    /// `user@host` of the writer.
    pub user: String,
    /// RFC 3339 time, kept as written so re-encoding is byte-exact.
    pub time: String,
    /// Digest of the record this one replaced (NULL for the first).
    pub parent: Digest,
}

impl Tag {
    /// The record's encoding (without the length prefix).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        for s in [&self.org, &self.name] {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        out.extend_from_slice(self.target.as_bytes());
        for s in [&self.user, &self.time] {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        out.extend_from_slice(self.parent.as_bytes());
        out
    }

    /// sha256 of the encoded record; the next record's `parent`.
    pub fn digest(&self) -> Digest {
        Digest::of(&self.encode())
    }

    fn decode(rec: &[u8]) -> std::result::Result<Tag, String> {
        let mut pos = 0;
        let string = |pos: &mut usize, what: &str| -> std::result::Result<String, String> {
            let rest = rec.get(*pos..).unwrap_or_default();
            let len = rest
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| format!("{what} is not NUL-terminated"))?;
            let s = std::str::from_utf8(rest.get(..len).unwrap_or_default())
                .map_err(|_| format!("{what} is not UTF-8"))?
                .to_owned();
            *pos += len + 1;
            Ok(s)
        };
        let digest = |pos: &mut usize, what: &str| -> std::result::Result<Digest, String> {
            let d = rec
                .get(*pos..*pos + DIGEST_SIZE)
                .and_then(Digest::from_slice)
                .ok_or_else(|| format!("{what} is truncated"))?;
            *pos += DIGEST_SIZE;
            Ok(d)
        };
        let org = string(&mut pos, "org")?;
        let name = string(&mut pos, "name")?;
        let target = digest(&mut pos, "target")?;
        let user = string(&mut pos, "user")?;
        let time = string(&mut pos, "time")?;
        chrono::DateTime::parse_from_rfc3339(&time)
            .map_err(|_| format!("time '{time}' is not RFC 3339"))?;
        let parent = digest(&mut pos, "parent")?;
        Ok(Tag {
            org,
            name,
            target,
            user,
            time,
            parent,
        })
    }
}

/// Parses a whole tag file into its records, oldest first.
pub fn decode_stream(bytes: &[u8]) -> std::result::Result<Vec<Tag>, String> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    if bytes.is_empty() {
        return Err("the file is empty".to_owned());
    }
    while pos < bytes.len() {
        let len_bytes: [u8; 8] = bytes
            .get(pos..pos + 8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("record {} is truncated in its length", out.len()))?;
        let len = i64::from_be_bytes(len_bytes);
        let start = pos + 8;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|e| *e <= bytes.len())
            .ok_or_else(|| {
                format!(
                    "record {} claims {len} bytes but only {} remain",
                    out.len(),
                    bytes.len() - start
                )
            })?;
        let record = bytes.get(start..end).unwrap_or_default();
        let tag = Tag::decode(record).map_err(|r| format!("record {}: {r}", out.len()))?;
        out.push(tag);
        pos = end;
    }
    Ok(out)
}

/// Encodes records (oldest first) as a tag file.
pub fn encode_stream(tags: &[Tag]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in tags {
        let rec = t.encode();
        out.extend_from_slice(&(rec.len() as i64).to_be_bytes());
        out.extend_from_slice(&rec);
    }
    out
}

/// The `user@host` string recorded in new tags.
#[derive(Clone, Debug)]
pub struct TagAuthor(pub String);

impl FsRepository {
    /// Reads the records of a tag stream, oldest first; `None` if absent.
    pub fn read_tag_stream(&self, spec: &TagSpec) -> Result<Option<Vec<Tag>>> {
        let path = spec.file_in(&self.tags_root());
        let bytes = match spfs_shared::bounded::read(&path, MAX_TAG_FILE_BYTES) {
            Ok(b) => b,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(Error::io("read tag", &path)(e)),
        };
        decode_stream(&bytes)
            .map(Some)
            .map_err(|reason| Error::CorruptTag { path, reason })
    }

    /// The record `spec` names; `None` if the stream does not exist.
    pub fn resolve_tag(&self, spec: &TagSpec) -> Result<Option<Tag>> {
        let Some(stream) = self.read_tag_stream(spec)? else {
            return Ok(None);
        };
        let n = stream.len();
        let index = usize::try_from(spec.version())
            .ok()
            .filter(|v| *v < n)
            .ok_or(Error::TagVersionOutOfRange {
                spec: spec.to_string(),
                available: n,
                requested: spec.version(),
            })?;
        Ok(stream.get(n - 1 - index).cloned())
    }

    /// Points the tag stream `spec` at `target`, as upstream's `spfs tag`:
    /// nothing happens if the newest record already has that target.
    pub fn push_tag(&self, spec: &TagSpec, target: Digest, author: &TagAuthor) -> Result<Tag> {
        let path = spec.file_in(&self.tags_root());
        let parent_dir = path.parent().unwrap_or(&path);
        fs::create_dir_all(parent_dir).map_err(Error::io("create tag directory", parent_dir))?;
        let _lock = TagLock::acquire(&path)?;
        let mut stream = self.read_tag_stream(spec)?.unwrap_or_default();
        if let Some(head) = stream.last() {
            if head.target == target {
                return Ok(head.clone());
            }
        }
        let tag = Tag {
            org: spec.org().unwrap_or("").to_owned(),
            name: spec.name().to_owned(),
            target,
            user: author.0.clone(),
            time: now_rfc3339(),
            parent: stream.last().map(Tag::digest).unwrap_or(Digest::NULL),
        };
        stream.push(tag.clone());
        let work = path.with_extension("tag.work");
        super::storage::write_atomic(&work, &path, &encode_stream(&stream), 0o666)?;
        Ok(tag)
    }
}

impl FsRepository {
    /// Adds a record made elsewhere (pulled from a remote) to its stream,
    /// as upstream's sync does: kept as it is, the stream ordered by time;
    /// nothing happens if the stream holds the same record already.
    /// Returns whether it was added.
    pub fn insert_tag(&self, tag: &Tag) -> Result<bool> {
        let spec_text = if tag.org.is_empty() {
            tag.name.clone()
        } else {
            format!("{}/{}", tag.org, tag.name)
        };
        let spec = TagSpec::parse_to_write(&spec_text)?;
        if chrono::DateTime::parse_from_rfc3339(&tag.time).is_err() {
            return Err(Error::InvalidTag {
                spec: spec_text,
                reason: format!("its time '{}' is not RFC 3339", tag.time),
            });
        }
        let path = spec.file_in(&self.tags_root());
        let parent_dir = path.parent().unwrap_or(&path);
        fs::create_dir_all(parent_dir).map_err(Error::io("create tag directory", parent_dir))?;
        let _lock = TagLock::acquire(&path)?;
        let mut stream = self.read_tag_stream(&spec)?.unwrap_or_default();
        if stream.contains(tag) {
            return Ok(false);
        }
        stream.push(tag.clone());
        // RFC 3339 times of different offsets do not sort as text.
        stream.sort_by_key(|t| chrono::DateTime::parse_from_rfc3339(&t.time).ok());
        let work = path.with_extension("tag.work");
        super::storage::write_atomic(&work, &path, &encode_stream(&stream), 0o666)?;
        Ok(true)
    }
}

impl FsRepository {
    /// Removes version `spec` (`org/name~N`) from its stream, as upstream's
    /// `spfs untag`: the other records stay as they are; a stream left
    /// empty goes, and so do tag directories it leaves empty.
    /// `UnknownReference` if there is no such version.
    pub fn remove_tag_version(&self, spec: &TagSpec) -> Result<()> {
        let path = spec.file_in(&self.tags_root());
        let unknown = || Error::UnknownReference {
            reference: spec.to_string(),
            searched: self.root().display().to_string(),
        };
        if !path.is_file() {
            return Err(unknown());
        }
        let lock = TagLock::acquire(&path)?;
        let mut stream = self
            .read_tag_stream(&spec.with_version(0))?
            .unwrap_or_default();
        let version = usize::try_from(spec.version()).map_err(|_| unknown())?;
        if version >= stream.len() {
            return Err(unknown());
        }
        stream.remove(stream.len() - 1 - version);
        if stream.is_empty() {
            fs::remove_file(&path).map_err(Error::io("remove tag", &path))?;
            drop(lock);
            self.remove_empty_tag_dirs(&path);
            return Ok(());
        }
        let work = path.with_extension("tag.work");
        super::storage::write_atomic(&work, &path, &encode_stream(&stream), 0o666)
    }

    /// Removes each of `records` from the tag stream in `file` (a file
    /// under this repository's `tags/`, any namespace), comparing whole
    /// records, so one pushed meanwhile stays; a stream left empty goes
    /// with the directories it leaves empty. Returns how many went.
    pub fn remove_tag_records(&self, file: &Path, records: &[Tag]) -> Result<usize> {
        let tags = self.root().join("tags");
        if !file.starts_with(&tags) || !file.is_file() {
            return Ok(0);
        }
        let lock = TagLock::acquire(file)?;
        let bytes = match spfs_shared::bounded::read(file, MAX_TAG_FILE_BYTES) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::io("read tag", file)(e)),
        };
        let mut stream = decode_stream(&bytes).map_err(|reason| Error::CorruptTag {
            path: file.to_owned(),
            reason,
        })?;
        let before = stream.len();
        stream.retain(|t| !records.contains(t));
        let removed = before - stream.len();
        if removed == 0 {
            return Ok(0);
        }
        if stream.is_empty() {
            fs::remove_file(file).map_err(Error::io("remove tag", file))?;
            drop(lock);
            remove_empty_dirs(file, &tags);
            return Ok(removed);
        }
        let work = file.with_extension("tag.work");
        super::storage::write_atomic(&work, file, &encode_stream(&stream), 0o666)?;
        Ok(removed)
    }

    /// Removes the whole stream of `spec`, as `spfs untag --all`, and the
    /// tag directories it leaves empty. `UnknownReference` if there is
    /// none.
    pub fn remove_tag_stream(&self, spec: &TagSpec) -> Result<()> {
        let path = spec.file_in(&self.tags_root());
        if !path.is_file() {
            return Err(Error::UnknownReference {
                reference: spec.to_string(),
                searched: self.root().display().to_string(),
            });
        }
        let lock = TagLock::acquire(&path)?;
        fs::remove_file(&path).map_err(Error::io("remove tag", &path))?;
        drop(lock);
        self.remove_empty_tag_dirs(&path);
        Ok(())
    }

    /// Removes the directories above tag file `path` that are empty now,
    /// up to (not including) the tags root.
    fn remove_empty_tag_dirs(&self, path: &Path) {
        remove_empty_dirs(path, &self.tags_root());
    }
}

impl FsRepository {
    /// Points every tag of `tags` at `target` (see [`FsRepository::push_tag`]);
    /// returns the tags that pointed elsewhere before, with that earlier
    /// target (now reachable as `tag~1`).
    pub fn push_tags(
        &self,
        tags: &[TagSpec],
        target: Digest,
        author: &TagAuthor,
    ) -> Result<Vec<(String, String)>> {
        let mut moved = Vec::new();
        for t in tags {
            let before = self.resolve_tag(t)?.map(|old| old.target);
            self.push_tag(t, target, author)?;
            if let Some(old) = before.filter(|old| *old != target) {
                moved.push((t.to_string(), old.to_string()));
            }
        }
        Ok(moved)
    }
}

/// The current time as upstream writes it: UTC, microseconds.
fn now_rfc3339() -> String {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6).to_rfc3339()
}

/// `<tag>.lock`, created exclusively; removed on drop.
struct TagLock(PathBuf);

impl TagLock {
    fn acquire(tag_path: &Path) -> Result<Self> {
        let lock = tag_path.with_extension("tag.lock");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(mut f) => {
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(Self(lock));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if Instant::now() >= deadline {
                        return Err(Error::TagLocked {
                            path: tag_path.to_owned(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(Error::io("lock tag", &lock)(e)),
            }
        }
    }
}

impl Drop for TagLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// The tag stream files below `dir` with their names; into `#ns`
/// directories (other namespaces) only when `namespaces`.
pub(crate) fn stream_files(
    dir: &Path,
    prefix: &str,
    namespaces: bool,
    depth: usize,
    out: &mut Vec<(PathBuf, String)>,
) -> Result<()> {
    if depth > crate::clean::MAX_TAG_DEPTH {
        return Ok(());
    }
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list tags in", dir)(e)),
    };
    for e in entries {
        let e = e.map_err(Error::io("list tags in", dir))?;
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            if namespaces || !name.ends_with("#ns") {
                stream_files(&e.path(), &path, namespaces, depth + 1, out)?;
            }
        } else if kind.is_file() {
            if let Some(stream) = path.strip_suffix(".tag") {
                out.push((e.path(), stream.to_owned()));
            }
        }
    }
    Ok(())
}

/// Removes the directories above `path` that are empty now, up to (not
/// including) `root`.
fn remove_empty_dirs(path: &Path, root: &Path) {
    let mut at = path.parent();
    while let Some(dir) = at.filter(|d| d.starts_with(root) && *d != root) {
        if fs::remove_dir(dir).is_err() {
            break;
        }
        at = dir.parent();
    }
}

/// The records of the tag stream in `file` (size-bounded), oldest first.
pub(crate) fn read_stream_file(file: &Path) -> Result<Vec<Tag>> {
    let bytes = spfs_shared::bounded::read(file, MAX_TAG_FILE_BYTES)
        .map_err(Error::io("read tag", file))?;
    decode_stream(&bytes).map_err(|reason| Error::CorruptTag {
        path: file.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_specs() {
        let t = TagSpec::parse("fixture/moving~1").unwrap();
        assert_eq!(t.org(), Some("fixture"));
        assert_eq!(t.name(), "moving");
        assert_eq!(t.version(), 1);
        assert_eq!(t.to_string(), "fixture/moving~1");
        let t = TagSpec::parse("a/b/c.d-e_f").unwrap();
        assert_eq!(t.org(), Some("a/b"));
        assert_eq!(t.to_string(), "a/b/c.d-e_f");
        assert_eq!(TagSpec::parse("plain").unwrap().org(), None);
        for bad in [
            "", "a/", "/a", "a//b", "a/b~x", "a/b~-1", "a b", "../x", "a/..", "é", "a~1~2",
        ] {
            let err = TagSpec::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid tag"), "{bad}: {err}");
        }
    }

    #[test]
    fn inserted_records_are_kept_as_made_in_time_order_once() {
        let dir = tempfile::tempdir().unwrap();
        let repo = FsRepository::open_or_create(dir.path().join("r")).unwrap();
        let record = |time: &str, target: u8| Tag {
            org: "studio".into(),
            name: "pkg".into(),
            target: Digest::from_bytes([target; 32]),
            user: "someone@elsewhere".into(),
            time: time.into(),
            parent: Digest::NULL,
        };
        let newer = record("2026-11-23T20:40:54.490741+00:00", 2);
        // An older record given in another offset sorts before it.
        let older = record("2026-11-23T21:00:00+02:00", 1);
        assert!(repo.insert_tag(&newer).unwrap());
        assert!(repo.insert_tag(&older).unwrap());
        assert!(!repo.insert_tag(&newer).unwrap(), "inserted twice");
        let spec = TagSpec::parse("studio/pkg").unwrap();
        assert_eq!(
            repo.read_tag_stream(&spec).unwrap().unwrap(),
            vec![older.clone(), newer.clone()]
        );
        assert_eq!(repo.resolve_tag(&spec).unwrap().unwrap(), newer);
        let bad = record("2026-11-23 20:40:54 UTC", 3);
        let err = repo.insert_tag(&bad).unwrap_err().to_string();
        assert!(err.contains("not RFC 3339"), "{err}");
        assert_eq!(repo.read_tag_stream(&spec).unwrap().unwrap().len(), 2);
    }

    #[test]
    fn truncated_streams_are_errors() {
        let tag = Tag {
            org: "o".into(),
            name: "n".into(),
            target: Digest::of(b"t"),
            user: "u@h".into(),
            time: "2026-11-23T20:40:54.570226+00:00".into(),
            parent: Digest::NULL,
        };
        let one = encode_stream(std::slice::from_ref(&tag));
        let full = encode_stream(&[tag.clone(), tag]);
        assert_eq!(decode_stream(&full).unwrap().len(), 2);
        for cut in 0..full.len() {
            // A cut between records is a valid, shorter stream.
            if cut == one.len() {
                continue;
            }
            assert!(decode_stream(&full[..cut]).is_err(), "cut at {cut}");
        }
    }
}
