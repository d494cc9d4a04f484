//! One fs repository on disk: objects, payloads and tags under a root.
//!
//! Reads never modify the repository. Writes are atomic by content: a file is
//! staged in `<store>/work/`, synced, given its final mode and renamed into
//! place, and skipped when the final path already exists.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::digest::{Digest, PartialDigest, DIGEST_TEXT_LEN};
use super::error::{Error, Result};
use super::object::{DigestStrategy, EncodingFormat, Object, ReceivedError};

/// The major repository version this library reads and writes.
pub const SUPPORTED_MAJOR: u64 = 0;
/// The version written into `VERSION` of repositories this library creates.
pub const WRITER_VERSION: &str = "0.44.0";

/// Largest object file read (a manifest of millions of entries is far
/// smaller): a file linked elsewhere is never read whole.
pub const MAX_OBJECT_BYTES: u64 = 1 << 30;
const OBJECT_MODE: u32 = 0o666;
const PAYLOAD_MODE: u32 = 0o444;

/// An spfs fs repository.
#[derive(Clone, Debug)]
pub struct FsRepository {
    root: PathBuf,
    tag_namespace: Option<String>,
    strategy: DigestStrategy,
    encoding: EncodingFormat,
}

impl FsRepository {
    /// Opens an existing repository, refusing other major versions.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        match fs::metadata(&root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Io {
                    action: "open repository",
                    path: root,
                    source: io::Error::from_raw_os_error(libc::ENOTDIR),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::NoRepository(root)),
            Err(e) => return Err(Error::io("open repository", &root)(e)),
        }
        check_version(&root)?;
        if !root.join("VERSION").exists() && !root.join("objects").is_dir() {
            return Err(Error::NotARepository(root));
        }
        Ok(Self {
            root,
            tag_namespace: None,
            strategy: DigestStrategy::default(),
            encoding: EncodingFormat::default(),
        })
    }

    /// Opens a repository, creating an empty one first if `root` is missing.
    pub fn open_or_create(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let empty_dir = fs::read_dir(&root).is_ok_and(|mut d| d.next().is_none());
        if !root.exists() || empty_dir {
            for sub in ["objects", "payloads", "tags"] {
                let dir = root.join(sub);
                fs::create_dir_all(&dir).map_err(Error::io("create repository directory", &dir))?;
            }
            let version = root.join("VERSION");
            if !version.exists() {
                write_atomic(
                    &root.join("VERSION.work"),
                    &version,
                    WRITER_VERSION.as_bytes(),
                    0o666,
                )?;
            }
        }
        Self::open(root)
    }

    /// Uses tags under the namespace `ns` (`a/b` → `tags/a#ns/b#ns/`).
    pub fn with_tag_namespace(mut self, ns: Option<String>) -> Self {
        self.tag_namespace = ns.filter(|s| !s.is_empty());
        self
    }

    /// Chooses how new objects are digested and encoded.
    pub fn with_write_format(mut self, strategy: DigestStrategy, encoding: EncodingFormat) -> Self {
        self.strategy = strategy;
        self.encoding = encoding;
        self
    }

    /// The repository's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The tag namespace in use, if any.
    pub fn tag_namespace(&self) -> Option<&str> {
        self.tag_namespace.as_deref()
    }

    /// The digest strategy new objects are written with.
    pub fn digest_strategy(&self) -> DigestStrategy {
        self.strategy
    }

    fn sharded(&self, store: &str, d: &Digest) -> PathBuf {
        let (shard, rest) = d.shard();
        self.root.join(store).join(shard).join(rest)
    }

    /// Where the object `d` is (or would be) stored.
    pub fn object_path(&self, d: &Digest) -> PathBuf {
        self.sharded("objects", d)
    }

    /// Where the payload `d` is (or would be) stored.
    pub fn payload_path(&self, d: &Digest) -> PathBuf {
        self.sharded("payloads", d)
    }

    /// True if the object file exists.
    pub fn has_object(&self, d: &Digest) -> bool {
        self.object_path(d).exists()
    }

    /// True if the payload file exists.
    pub fn has_payload(&self, d: &Digest) -> bool {
        self.payload_path(d).exists()
    }

    /// Reads and verifies the object `d`; `Ok(None)` if it is not here.
    pub fn read_object(&self, d: &Digest) -> Result<Option<Object>> {
        let path = self.object_path(d);
        let bytes = match spfs_shared::bounded::read(&path, MAX_OBJECT_BYTES) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read object", &path)(e)),
        };
        let corrupt = |reason: String| Error::CorruptObject {
            path: path.clone(),
            reason,
        };
        let (header, object) = Object::decode(&bytes).map_err(corrupt)?;
        let actual = object.digest(header.strategy);
        if actual != *d {
            return Err(corrupt(format!(
                "its content has digest {actual}, not the {d} it is stored as"
            )));
        }
        Ok(Some(object))
    }

    /// Full digests of the objects here whose text starts with `prefix`.
    pub fn find_digests(&self, prefix: &PartialDigest) -> Result<Vec<Digest>> {
        let p = prefix.as_str();
        let objects = self.root.join("objects");
        let mut shards = Vec::new();
        if p.len() >= 2 {
            shards.push(p[..2].to_owned());
        } else {
            for e in read_dir_names(&objects)? {
                if e.len() == 2 && e.starts_with(p) {
                    shards.push(e);
                }
            }
        }
        let mut found = Vec::new();
        for shard in shards {
            let rest_prefix = p.get(2..).unwrap_or("");
            for name in read_dir_names(&objects.join(&shard))? {
                if name.starts_with(rest_prefix) && shard.len() + name.len() == DIGEST_TEXT_LEN {
                    if let Ok(d) = Digest::parse(&format!("{shard}{name}")) {
                        found.push(d);
                    }
                }
            }
        }
        Ok(found)
    }

    /// Writes an object in this repository's format; returns its digest.
    pub fn write_object(&self, obj: &Object) -> Result<Digest> {
        let digest = obj.digest(self.strategy);
        let path = self.object_path(&digest);
        if in_place(&path) {
            return Ok(digest);
        }
        let bytes = obj.encode(self.strategy, self.encoding)?;
        self.store_file("objects", &path, &bytes, OBJECT_MODE)?;
        Ok(digest)
    }

    /// Streams `reader` into a payload; returns its digest and size.
    pub fn write_payload(&self, reader: impl Read) -> Result<(Digest, u64)> {
        let staged = self.stage_payload(reader)?;
        let (digest, size) = (staged.digest, staged.size);
        staged.finish(self)?;
        Ok((digest, size))
    }

    /// Streams a payload received from `source_name` into place, only if
    /// it hashes to `expected`; returns its size. A mismatch stores
    /// nothing (the staged copy is removed) and names both digests.
    pub fn import_payload(
        &self,
        expected: &Digest,
        reader: impl Read,
        source_name: &str,
    ) -> Result<u64> {
        self.import_payload_as(expected, reader, source_name, false)
    }

    /// [`FsRepository::import_payload`], replacing the copy here, if any
    /// (a resync: whatever that copy holds, the verified one takes its
    /// place in one rename).
    pub fn reimport_payload(
        &self,
        expected: &Digest,
        reader: impl Read,
        source_name: &str,
    ) -> Result<u64> {
        self.import_payload_as(expected, reader, source_name, true)
    }

    fn import_payload_as(
        &self,
        expected: &Digest,
        reader: impl Read,
        source_name: &str,
        replace: bool,
    ) -> Result<u64> {
        let staged = self.stage_received_payload(expected, reader, source_name)?;
        let size = staged.size;
        staged.finish_as(self, replace)?;
        Ok(size)
    }

    /// Stores the bytes of an object file received from `source_name` as
    /// they are, only if they decode to an object whose digest is
    /// `expected`. Objects sent over upstream's gRPC are always
    /// flatbuffers, even under a header that says legacy: such a header
    /// is corrected before storing.
    pub fn import_object(
        &self,
        expected: &Digest,
        bytes: &[u8],
        source_name: &str,
    ) -> Result<Object> {
        self.import_object_as(expected, bytes, source_name, false)
    }

    /// [`FsRepository::import_object`], replacing the file here, if any
    /// (a resync).
    pub fn reimport_object(
        &self,
        expected: &Digest,
        bytes: &[u8],
        source_name: &str,
    ) -> Result<Object> {
        self.import_object_as(expected, bytes, source_name, true)
    }

    fn import_object_as(
        &self,
        expected: &Digest,
        bytes: &[u8],
        source_name: &str,
        replace: bool,
    ) -> Result<Object> {
        let (bytes, object) = Object::decode_received(bytes, expected).map_err(|e| match e {
            ReceivedError::Mismatch(actual) => {
                Error::mismatch("object", *expected, actual, source_name.to_owned())
            }
            ReceivedError::Undecodable(reason) => {
                Error::Decode(format!("object {expected} from {source_name}: {reason}"))
            }
        })?;
        let path = self.object_path(expected);
        if replace || !in_place(&path) {
            self.store_file("objects", &path, &bytes, OBJECT_MODE)?;
        }
        Ok(object)
    }

    /// Removes files staged in `objects/work` and `payloads/work` that were
    /// last written more than `age` ago and that no writer holds locked:
    /// what a writer killed in the middle (a pull, a commit) left. This
    /// library's writers lock the payloads they stage (and their locks go
    /// with them), and every writer writes continuously, so `age` only
    /// needs to be longer than a pause of a writer that takes no lock
    /// (another tool's). Returns how many were removed.
    pub fn remove_stale_work(&self, age: std::time::Duration) -> Result<usize> {
        let mut removed = 0;
        for store in ["objects", "payloads"] {
            let dir = self.root.join(store).join("work");
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("list", &dir)(e)),
            };
            for entry in entries.flatten() {
                let stale = entry
                    .metadata()
                    .ok()
                    .filter(|m| m.is_file())
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|elapsed| elapsed > age);
                let unlocked = || {
                    fs::File::open(entry.path())
                        .and_then(|f| crate::sys::lock::try_lock_exclusive(&f))
                        .unwrap_or(false)
                };
                if stale && unlocked() && fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Copies `reader` into a work file while hashing it.
    /// Stages a payload received from `source_name`, refused (and removed)
    /// unless it hashes to `expected`.
    fn stage_received_payload(
        &self,
        expected: &Digest,
        reader: impl Read,
        source_name: &str,
    ) -> Result<StagedPayload> {
        let staged = self.stage_payload(reader)?;
        if staged.digest != *expected {
            return Err(Error::mismatch(
                "payload",
                *expected,
                staged.digest,
                source_name.to_owned(),
            ));
        }
        Ok(staged)
    }

    fn stage_payload(&self, mut reader: impl Read) -> Result<StagedPayload> {
        let work_dir = self.root.join("payloads").join("work");
        fs::create_dir_all(&work_dir).map_err(Error::io("create work directory", &work_dir))?;
        let work = work_dir.join(uuid::Uuid::new_v4().to_string());
        let guard = RemoveOnDrop(Some(work.clone()));
        let mut file = fs::File::create(&work).map_err(Error::io("create payload", &work))?;
        // Held while it is written: a cleaner leaves it alone.
        crate::sys::lock::try_lock_exclusive(&file).map_err(Error::io("lock", &work))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read payload source for", &work)(e)),
            };
            let read = buf.get(..n).unwrap_or_default();
            hasher.update(read);
            file.write_all(read)
                .map_err(Error::io("write payload", &work))?;
            size += n as u64;
        }
        Ok(StagedPayload {
            digest: Digest::from_bytes(hasher.finalize().into()),
            size,
            file,
            work: guard,
        })
    }

    fn store_file(&self, store: &str, dest: &Path, bytes: &[u8], mode: u32) -> Result<()> {
        let work_dir = self.root.join(store).join("work");
        fs::create_dir_all(&work_dir).map_err(Error::io("create work directory", &work_dir))?;
        let work = work_dir.join(uuid::Uuid::new_v4().to_string());
        write_atomic(&work, dest, bytes, mode)
    }

    /// The directory tags live under, namespace applied.
    pub fn tags_root(&self) -> PathBuf {
        let mut root = self.root.join("tags");
        if let Some(ns) = &self.tag_namespace {
            for part in ns.split('/').filter(|p| !p.is_empty()) {
                root.push(format!("{part}#ns"));
            }
        }
        root
    }
}

/// Refuses repositories whose VERSION has another major number.
fn check_version(root: &Path) -> Result<()> {
    let path = root.join("VERSION");
    let text = match spfs_shared::bounded::read_to_string(&path, spfs_shared::bounded::SMALL) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read", &path)(e)),
    };
    let text = text.trim();
    // Upstream reads an empty VERSION as the current version.
    if text.is_empty() {
        return Ok(());
    }
    let major = text
        .split('.')
        .next()
        .and_then(|m| m.parse::<u64>().ok())
        .ok_or_else(|| Error::BadVersionFile {
            root: root.to_owned(),
            text: text.chars().take(40).collect(),
        })?;
    if major != SUPPORTED_MAJOR {
        return Err(Error::IncompatibleVersion {
            root: root.to_owned(),
            found: text.to_owned(),
            supported: SUPPORTED_MAJOR,
        });
    }
    Ok(())
}

fn read_dir_names(dir: &Path) -> Result<Vec<String>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", dir)(e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(Error::io("list", dir))?;
        if let Ok(name) = e.file_name().into_string() {
            out.push(name);
        }
    }
    Ok(out)
}

/// One file of a [`WriteBatch`]: staged as `work`, to be `dest`. (Its
/// writer's lock goes once it is written; a batch is kept short — see
/// `commit` — so a cleaner never takes it for a killed writer's.)
struct Staged {
    work: PathBuf,
    dest: PathBuf,
    mode: u32,
}

/// Payloads and blob objects written as one batch, made durable at once:
/// each is staged (written and hashed; the payloads by several threads at
/// a time), then every staged file is flushed to disk together (one
/// `syncfs` on Linux; each file synced elsewhere), then renamed into
/// place. As with a single write, nothing appears under a digest's name
/// before its whole content is on disk; a batch dropped before
/// [`WriteBatch::finish`] leaves nothing behind.
pub struct WriteBatch<'r> {
    repo: &'r FsRepository,
    /// What is not in place yet.
    staged: parking_lot::Mutex<Vec<Staged>>,
}

impl<'r> WriteBatch<'r> {
    /// An empty batch for `repo`.
    pub fn new(repo: &'r FsRepository) -> Self {
        WriteBatch {
            repo,
            staged: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// Stages a payload read from `reader` and its blob object; returns
    /// the payload's digest and size. Payloads already in place are not
    /// staged again.
    pub fn payload(&self, reader: impl Read) -> Result<(Digest, u64)> {
        let staged = self.repo.stage_payload(reader)?;
        self.keep_payload(staged)
    }

    /// Stages a payload received from `source_name`, only if it hashes
    /// to `expected` (else nothing of it stays), and its blob object;
    /// returns its size.
    pub fn import_payload(
        &self,
        expected: &Digest,
        reader: impl Read,
        source_name: &str,
    ) -> Result<u64> {
        let staged = self
            .repo
            .stage_received_payload(expected, reader, source_name)?;
        Ok(self.keep_payload(staged)?.1)
    }

    /// Keeps `staged` in the batch (unless its payload is in place) with
    /// its blob object.
    fn keep_payload(&self, mut staged: StagedPayload) -> Result<(Digest, u64)> {
        let (digest, size) = (staged.digest, staged.size);
        let dest = self.repo.payload_path(&digest);
        if !in_place(&dest) {
            if let Some(work) = staged.work.0.take() {
                self.staged.lock().push(Staged {
                    work,
                    dest,
                    mode: PAYLOAD_MODE,
                });
            }
        }
        let blob = Object::Blob(crate::object::Blob {
            payload: digest,
            size,
        });
        self.object(&blob)?;
        Ok((digest, size))
    }

    /// Stages object `obj` (unless it is in place); returns its digest.
    pub fn object(&self, obj: &Object) -> Result<Digest> {
        let digest = obj.digest(self.repo.strategy);
        let dest = self.repo.object_path(&digest);
        if in_place(&dest) {
            return Ok(digest);
        }
        let bytes = obj.encode(self.repo.strategy, self.repo.encoding)?;
        let work_dir = self.repo.root.join("objects").join("work");
        fs::create_dir_all(&work_dir).map_err(Error::io("create work directory", &work_dir))?;
        let work = work_dir.join(uuid::Uuid::new_v4().to_string());
        let guard = RemoveOnDrop(Some(work.clone()));
        fs::write(&work, &bytes).map_err(Error::io("write", &work))?;
        std::mem::forget(guard);
        self.staged.lock().push(Staged {
            work,
            dest,
            mode: OBJECT_MODE,
        });
        Ok(digest)
    }

    /// Makes every staged file durable, then puts each in place.
    pub fn finish(self) -> Result<()> {
        let staged = std::mem::take(&mut *self.staged.lock());
        let guard = RemoveAllOnDrop(staged.iter().map(|s| s.work.clone()).collect());
        let synced = staged
            .first()
            .map(|s| fs::File::open(&s.work).and_then(|f| crate::sys::sync::sync_file_system(&f)));
        match synced {
            None | Some(Ok(())) => {}
            // No syncfs here: each file on its own.
            Some(Err(_)) => {
                for s in &staged {
                    fs::File::open(&s.work)
                        .and_then(|f| f.sync_all())
                        .map_err(Error::io("sync", &s.work))?;
                }
            }
        }
        for s in &staged {
            if in_place(&s.dest) {
                let _ = fs::remove_file(&s.work);
                continue;
            }
            finish_atomic(&s.work, &s.dest, s.mode)?;
        }
        std::mem::forget(guard);
        Ok(())
    }
}

impl Drop for WriteBatch<'_> {
    fn drop(&mut self) {
        for s in self.staged.lock().drain(..) {
            let _ = fs::remove_file(&s.work);
        }
    }
}

/// Removes staged files if a batch did not complete.
struct RemoveAllOnDrop(Vec<PathBuf>);

impl Drop for RemoveAllOnDrop {
    fn drop(&mut self) {
        for p in self.0.drain(..) {
            let _ = fs::remove_file(p);
        }
    }
}

/// Whether `path` (an object or payload) is already stored; one found is
/// made young again, as it is about to be used anew (a clean at the same
/// moment then keeps it: see `clean::GRACE`). Touching is best-effort: a
/// file of another user's shared repository may refuse it.
fn in_place(path: &Path) -> bool {
    // The touch itself is the test: a clean moves a file aside before it
    // checks its age (`clean::execute`), so a touch that finds the file
    // has made it young in time, and one that does not finds it gone and
    // the caller writes it again.
    match crate::sys::sync::touch(path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        // (someone else's file: it cannot be made young, only used)
        Err(_) => path.exists(),
    }
}

/// Removes a staged file if the write did not complete.
struct RemoveOnDrop(Option<PathBuf>);

/// A payload written to a work file and hashed, not yet in place; the
/// work file goes away unless [`StagedPayload::finish`] moves it.
struct StagedPayload {
    digest: Digest,
    size: u64,
    file: fs::File,
    work: RemoveOnDrop,
}

impl StagedPayload {
    /// Syncs it and renames it into place (unless it is there already).
    fn finish(self, repo: &FsRepository) -> Result<()> {
        self.finish_as(repo, false)
    }

    /// [`StagedPayload::finish`]; with `replace`, over what is there.
    fn finish_as(mut self, repo: &FsRepository, replace: bool) -> Result<()> {
        let dest = repo.payload_path(&self.digest);
        if !replace && in_place(&dest) {
            return Ok(());
        }
        let Some(work) = self.work.0.take() else {
            return Ok(());
        };
        let guard = RemoveOnDrop(Some(work.clone()));
        self.file
            .sync_all()
            .map_err(Error::io("sync payload", &work))?;
        finish_atomic(&work, &dest, PAYLOAD_MODE)?;
        std::mem::forget(guard);
        Ok(())
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Writes `bytes` to `work`, syncs, sets `mode` and renames it to `dest`.
pub(crate) fn write_atomic(work: &Path, dest: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let guard = RemoveOnDrop(Some(work.to_owned()));
    let mut f = fs::File::create(work).map_err(Error::io("create", work))?;
    f.write_all(bytes).map_err(Error::io("write", work))?;
    f.sync_all().map_err(Error::io("sync", work))?;
    drop(f);
    finish_atomic(work, dest, mode)?;
    std::mem::forget(guard);
    Ok(())
}

fn finish_atomic(work: &Path, dest: &Path, mode: u32) -> Result<()> {
    let cleanup = RemoveOnDrop(Some(work.to_owned()));
    fs::set_permissions(work, fs::Permissions::from_mode(mode))
        .map_err(Error::io("chmod", work))?;
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(Error::io("create directory", parent))?;
    }
    fs::rename(work, dest).map_err(Error::io("rename into place", dest))?;
    std::mem::forget(cleanup);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_store_only_what_hashes_to_the_digest_asked_for() {
        use crate::object::{Layer, Platform};
        let dir = tempfile::tempdir().unwrap();
        let repo = FsRepository::open_or_create(dir.path().join("r")).unwrap();
        // A payload: the right bytes are stored, others refused and gone.
        let good = Digest::of(b"payload bytes");
        let err = repo
            .import_payload(&good, &b"other bytes"[..], "remote 'origin' (grpc://h:1)")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&good.to_string()) && err.contains("grpc://h:1"),
            "{err}"
        );
        assert!(!repo.has_payload(&good));
        let work: Vec<_> = fs::read_dir(repo.root().join("payloads/work"))
            .unwrap()
            .collect();
        assert!(work.is_empty(), "staged files left behind");
        assert_eq!(
            repo.import_payload(&good, &b"payload bytes"[..], "r")
                .unwrap(),
            13
        );
        assert_eq!(
            fs::read(repo.payload_path(&good)).unwrap(),
            b"payload bytes"
        );
        // An object: stored as received, if its digest is the one asked for.
        let layer = Object::Layer(Layer {
            manifest: Some(Digest::from_bytes([7; 32])),
            annotations: vec![],
        });
        let bytes = layer
            .encode(DigestStrategy::WithKindAndSalt, EncodingFormat::FlatBuffers)
            .unwrap();
        let digest = layer.digest(DigestStrategy::WithKindAndSalt);
        let other = Object::Platform(Platform {
            layers: vec![digest],
        })
        .digest(DigestStrategy::WithKindAndSalt);
        let err = repo
            .import_object(&other, &bytes, "r")
            .unwrap_err()
            .to_string();
        assert!(err.contains("refused"), "{err}");
        assert!(!repo.has_object(&other));
        assert_eq!(repo.import_object(&digest, &bytes, "r").unwrap(), layer);
        assert_eq!(fs::read(repo.object_path(&digest)).unwrap(), bytes);
        // A flatbuffers body under a header that says legacy, as
        // upstream's gRPC may send: the header is corrected.
        let mut mislabelled = bytes.clone();
        mislabelled[10] = EncodingFormat::Legacy as u8;
        let dir2 = tempfile::tempdir().unwrap();
        let repo2 = FsRepository::open_or_create(dir2.path().join("r")).unwrap();
        assert_eq!(
            repo2.import_object(&digest, &mislabelled, "r").unwrap(),
            layer
        );
        assert_eq!(repo2.read_object(&digest).unwrap(), Some(layer));
        // What a killed writer left is removed once it is old enough.
        let work = repo.root().join("payloads/work");
        let old = work.join("killed-writer");
        let fresh = work.join("live-writer");
        fs::write(&old, b"partial").unwrap();
        fs::write(&fresh, b"partial").unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let n = repo
            .remove_stale_work(std::time::Duration::from_secs(600))
            .unwrap();
        assert_eq!(n, 1);
        assert!(!old.exists() && fresh.exists());
        // Garbage is an error naming where it came from.
        let err = repo2
            .import_object(&digest, b"garbage", "remote x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("remote x"), "{err}");
    }
}
