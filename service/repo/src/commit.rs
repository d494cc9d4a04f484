//! Committing a directory: payloads, blobs, a manifest and a layer, with the
//! digests upstream's `spfs commit --path` computes.
//!
//! Objects are written bottom-up (payloads and blobs, then the manifest, then
//! the layer), so whatever a crash leaves behind is only unreferenced data:
//! no object ever names one that is missing.

use std::collections::HashMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::digest::Digest;
use super::error::{Error, Result};
use super::object::{Entry, EntryKind, Layer, Manifest, Object, Platform, Tree};
use super::storage::{FsRepository, WriteBatch};
use super::view::{NodeId, NodeKind, View};
use crate::whiteout::{OPAQUE_MARKER, WHITEOUT_PREFIX};

/// Mode upstream records for every symlink.
const SYMLINK_MODE: u32 = 0o120777;
/// Mode of the masks upstream's runtimes commit (a character device 0/0
/// with no permission bits).
const MASK_MODE: u32 = 0o020000;

/// What a commit wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The layer made.
    pub layer: Digest,
    /// Its manifest.
    pub manifest: Digest,
    /// Files and symlinks stored.
    pub blobs: u64,
    /// Bytes of file contents stored.
    pub bytes: u64,
}

#[derive(Default)]
struct Stats {
    blobs: u64,
    bytes: u64,
}

/// Files hashed and written at once unless told: one per core, at most 8.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
}

/// Commits the directory `dir` as a new layer in `repo`.
pub fn commit_dir(repo: &FsRepository, dir: &Path) -> Result<Committed> {
    commit_dir_with(repo, dir, default_concurrency())
}

/// [`commit_dir`], hashing and writing `blobs` files at once.
pub fn commit_dir_with(repo: &FsRepository, dir: &Path, blobs: usize) -> Result<Committed> {
    let meta = fs::metadata(dir).map_err(Error::io("commit", dir))?;
    if !meta.is_dir() {
        return Err(Error::Uncommittable {
            path: dir.to_owned(),
            reason: "not a directory".to_owned(),
        });
    }
    with_deep_stack(|| {
        let files = check_committable(dir, Format::Plain)?;
        let stored = store_payloads(repo, &files, blobs)?;
        let mut stats = Stats::default();
        let mut trees = Vec::new();
        collect(&stored, dir, Format::Plain, &mut stats, &mut trees, 0)?;
        let manifest = Manifest {
            trees: dedup_trees(trees),
        };
        commit_manifest(repo, manifest, stats)
    })
}

/// Stack for walking a tree of up to `MAX_DEPTH` levels one frame a
/// level (a few KiB each); only the pages used are ever touched.
const DEEP_STACK: usize = 256 << 20;

/// Runs `f` (a recursive walk of a directory tree) on a thread whose
/// stack holds [`crate::view::MAX_DEPTH`] levels: a deep tree is an
/// error or a layer, never a stack overflow that ends the process.
fn with_deep_stack<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        let walker = std::thread::Builder::new()
            .name("commit".into())
            .stack_size(DEEP_STACK)
            .spawn_scoped(s, f)
            .map_err(Error::io("start a thread to commit", Path::new("-")))?;
        walker.join().unwrap_or_else(|_| {
            Err(Error::Decode(
                "the commit's walk of the directory failed".into(),
            ))
        })
    })
}

/// Commits the scratch directory `upper` of an editable runtime over the
/// merged view `lower` as a new layer: `.wh.<name>` whiteouts become masks
/// (mode 0o020000, as upstream's runtimes write them), and an opaque
/// directory masks every lower entry it does not hold itself.
pub fn commit_scratch(repo: &FsRepository, upper: &Path, lower: &View) -> Result<Committed> {
    commit_scratch_with(repo, upper, lower, default_concurrency())
}

/// [`commit_scratch`], hashing and writing `blobs` files at once.
pub fn commit_scratch_with(
    repo: &FsRepository,
    upper: &Path,
    lower: &View,
    blobs: usize,
) -> Result<Committed> {
    let format = Format::Scratch {
        lower,
        dir: Some(NodeId::ROOT),
    };
    let empty = fs::read_dir(upper)
        .map_err(Error::io("list", upper))?
        .next()
        .is_none();
    if empty {
        return Err(Error::NothingToCommit);
    }
    with_deep_stack(|| {
        let files = check_committable(upper, format)?;
        let stored = store_payloads(repo, &files, blobs)?;
        let mut stats = Stats::default();
        let mut trees = Vec::new();
        collect(&stored, upper, format, &mut stats, &mut trees, 0)?;
        let manifest = Manifest {
            trees: dedup_trees(trees),
        };
        commit_manifest(repo, manifest, stats)
    })
}

/// How deletions are written in the directory being committed.
#[derive(Clone, Copy)]
enum Format<'a> {
    /// Overlayfs: character devices 0/0.
    Plain,
    /// A runtime's scratch: whiteout files and opaque markers, over
    /// `lower` (at directory `dir` of it, if it has one there).
    Scratch {
        lower: &'a View,
        dir: Option<NodeId>,
    },
}

fn mask(name: String) -> Entry {
    Entry {
        name,
        kind: EntryKind::Mask,
        object: Digest::NULL,
        mode: MASK_MODE,
        size: 0,
    }
}

/// Writes `manifest` and a layer holding it.
fn commit_manifest(repo: &FsRepository, manifest: Manifest, stats: Stats) -> Result<Committed> {
    let manifest_digest = repo.write_object(&Object::Manifest(manifest))?;
    let layer = repo.write_object(&Object::Layer(Layer {
        manifest: Some(manifest_digest),
        annotations: Vec::new(),
    }))?;
    Ok(Committed {
        layer,
        manifest: manifest_digest,
        blobs: stats.blobs,
        bytes: stats.bytes,
    })
}

/// Writes a platform of `layers` (bottom-up).
pub fn commit_platform(repo: &FsRepository, layers: Vec<Digest>) -> Result<Digest> {
    repo.write_object(&Object::Platform(Platform { layers }))
}

/// Looks through `dir` for what cannot be committed (FIFOs, sockets,
/// devices, names that are not UTF-8) before anything is written, so a
/// commit either writes everything or nothing and names every problem.
/// Returns the files and symlinks to store (whiteouts and markers left
/// out).
fn check_committable(dir: &Path, format: Format) -> Result<Vec<(PathBuf, u64)>> {
    let mut bad = Vec::new();
    let mut files = Vec::new();
    scan(
        dir,
        Path::new(""),
        matches!(format, Format::Plain),
        &mut bad,
        &mut files,
        0,
    )?;
    if bad.is_empty() {
        Ok(files)
    } else {
        Err(Error::UncommittableEntries(bad))
    }
}

/// Files staged and put in place in one batch (one flush to disk), at
/// most: so many, or so many bytes — a batch lasts seconds, far less than
/// the age at which a cleaner takes a staged file for a killed writer's
/// (`FsRepository::remove_stale_work`).
const BATCH_FILES: usize = 4096;
const BATCH_BYTES: u64 = 1 << 30;

/// Stores the payload (and blob object) of every file and symlink of
/// `files`, `threads` at a time, in batches that each reach the disk at
/// once (see [`WriteBatch`]); returns each one's payload and size.
fn store_payloads(
    repo: &FsRepository,
    files: &[(PathBuf, u64)],
    threads: usize,
) -> Result<HashMap<PathBuf, (Digest, u64)>> {
    // As many as asked, within reason: each holds a file open.
    let threads = threads.clamp(1, 256);
    let mut stored = HashMap::with_capacity(files.len());
    for chunk in batches(files) {
        let batch = WriteBatch::new(repo);
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Result<(usize, Digest, u64)>>> = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..threads.min(chunk.len()) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((path, _)) = chunk.get(i) else {
                        return;
                    };
                    let done = store_one(&batch, path).map(|(d, n)| (i, d, n));
                    let failed = done.is_err();
                    results.lock().push(done);
                    if failed {
                        // The others stop at their next file.
                        next.store(chunk.len(), Ordering::Relaxed);
                        return;
                    }
                });
            }
        });
        for r in results.into_inner() {
            let (i, digest, size) = r?;
            if let Some((path, _)) = chunk.get(i) {
                stored.insert(path.clone(), (digest, size));
            }
        }
        batch.finish()?;
    }
    Ok(stored)
}

/// `files` cut into batches of at most [`BATCH_FILES`] files and (but for
/// a single larger file) [`BATCH_BYTES`] bytes.
fn batches(files: &[(PathBuf, u64)]) -> Vec<&[(PathBuf, u64)]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, (_, size)) in files.iter().enumerate() {
        let count = i - start;
        if count > 0 && (count >= BATCH_FILES || bytes + size > BATCH_BYTES) {
            out.extend(files.get(start..i));
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < files.len() {
        out.extend(files.get(start..));
    }
    out
}

/// Stages the payload of one file or symlink (its target) in `batch`.
fn store_one(batch: &WriteBatch<'_>, path: &Path) -> Result<(Digest, u64)> {
    let meta = fs::symlink_metadata(path).map_err(Error::io("stat", path))?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path).map_err(Error::io("read link", path))?;
        batch.payload(target.as_os_str().as_encoded_bytes())
    } else {
        let file = fs::File::open(path).map_err(Error::io("read", path))?;
        batch.payload(file)
    }
}

fn scan(
    dir: &Path,
    rel: &Path,
    plain: bool,
    bad: &mut Vec<(std::path::PathBuf, &'static str)>,
    files: &mut Vec<(PathBuf, u64)>,
    depth: u32,
) -> Result<()> {
    if depth >= crate::view::MAX_DEPTH {
        return Err(Error::Uncommittable {
            path: dir.to_owned(),
            reason: format!(
                "directories nest deeper than {} levels, the most a layer may have here",
                crate::view::MAX_DEPTH
            ),
        });
    }
    for e in fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let e = e.map_err(Error::io("list", dir))?;
        let name = e.file_name();
        let rel = rel.join(&name);
        if name.to_str().is_none() {
            bad.push((rel, "a name that is not UTF-8"));
            continue;
        }
        let path = dir.join(&name);
        let meta = fs::symlink_metadata(&path).map_err(Error::io("stat", &path))?;
        let ft = meta.file_type();
        let why = if ft.is_dir() {
            scan(&path, &rel, plain, bad, files, depth + 1)?;
            continue;
        } else if ft.is_file() || ft.is_symlink() {
            // In a scratch, whiteouts and markers are not content.
            if plain || !name.as_bytes().starts_with(WHITEOUT_PREFIX) {
                files.push((path, meta.len()));
            }
            continue;
        } else if ft.is_char_device() && meta.rdev() == 0 && plain {
            // An overlayfs whiteout.
            continue;
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_block_device() {
            "a block device"
        } else {
            "a character device"
        };
        bad.push((rel, why));
    }
    Ok(())
}

/// Keeps each tree only at its first occurrence.
fn dedup_trees(trees: Vec<Tree>) -> Vec<Tree> {
    let mut seen = std::collections::HashSet::new();
    trees
        .into_iter()
        .filter(|t| seen.insert(t.digest()))
        .collect()
}

/// Appends the trees of `dir` to `out` in depth-first pre-order (the
/// directory's own tree first, then each child directory's, by name) and
/// returns the digest of `dir`'s own tree.
fn collect(
    stored: &HashMap<PathBuf, (Digest, u64)>,
    dir: &Path,
    format: Format,
    stats: &mut Stats,
    out: &mut Vec<Tree>,
    depth: u32,
) -> Result<Digest> {
    // Views accept no deeper tree: refused here, before a layer is made.
    if depth >= crate::view::MAX_DEPTH {
        return Err(Error::Uncommittable {
            path: dir.to_owned(),
            reason: format!(
                "directories nest deeper than {} levels, the most a layer may have here",
                crate::view::MAX_DEPTH
            ),
        });
    }
    let mut names = Vec::new();
    let mut whiteouts = Vec::new();
    let mut opaque = false;
    for e in fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let e = e.map_err(Error::io("list", dir))?;
        let name = e
            .file_name()
            .into_string()
            .map_err(|n| Error::Uncommittable {
                path: dir.join(&n),
                reason: "the name is not valid UTF-8".to_owned(),
            })?;
        if let Format::Scratch { .. } = format {
            if name == OPAQUE_MARKER {
                opaque = true;
                continue;
            }
            if let Some(hidden) = name.as_bytes().strip_prefix(WHITEOUT_PREFIX) {
                whiteouts.push(String::from_utf8_lossy(hidden).into_owned());
                continue;
            }
        }
        names.push(name);
    }
    names.sort();
    let own = out.len();
    out.push(Tree::default());
    let mut entries = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        let meta = fs::symlink_metadata(&path).map_err(Error::io("stat", &path))?;
        let ft = meta.file_type();
        let entry = if ft.is_dir() {
            let inner = match format {
                Format::Plain => Format::Plain,
                Format::Scratch { lower, dir } => Format::Scratch {
                    lower,
                    dir: dir
                        .filter(|_| !opaque)
                        .and_then(|d| lower.lookup(d, name.as_bytes()))
                        .filter(|&c| lower.get(c).is_some_and(|n| n.kind() == NodeKind::Dir)),
                },
            };
            let object = collect(stored, &path, inner, stats, out, depth + 1)?;
            Entry {
                name,
                kind: EntryKind::Tree,
                object,
                mode: meta.mode(),
                size: 0,
            }
        } else if ft.is_file() {
            let (payload, size) = stored_payload(stored, &path, stats)?;
            Entry {
                name,
                kind: EntryKind::Blob,
                object: payload,
                mode: meta.mode(),
                size,
            }
        } else if ft.is_symlink() {
            let (payload, size) = stored_payload(stored, &path, stats)?;
            Entry {
                name,
                kind: EntryKind::Blob,
                object: payload,
                mode: SYMLINK_MODE,
                size,
            }
        } else if ft.is_char_device() && meta.rdev() == 0 {
            // An overlay whiteout: the deletion of this path in lower layers.
            Entry {
                name,
                kind: EntryKind::Mask,
                object: Digest::NULL,
                mode: meta.mode(),
                size: 0,
            }
        } else {
            return Err(Error::Uncommittable {
                path,
                reason: "only files, directories, symlinks and whiteouts (character devices 0/0) can be committed".to_owned(),
            });
        };
        entries.push(entry);
    }
    if let Format::Scratch { lower, dir } = format {
        let present = |n: &str| entries.iter().any(|e: &Entry| e.name == n);
        let mut masks: Vec<String> = whiteouts.into_iter().filter(|w| !present(w)).collect();
        if let (true, Some(d)) = (opaque, dir) {
            for c in lower.children(d) {
                if let Some(n) = lower.get(c) {
                    let name = n.name().to_owned();
                    if !present(&name) && !masks.contains(&name) {
                        masks.push(name);
                    }
                }
            }
        }
        entries.extend(masks.into_iter().map(mask));
    }
    let mut tree = Tree { entries };
    tree.sort();
    let digest = tree.digest();
    // `own` is the slot this call reserved in `out`.
    if let Some(slot) = out.get_mut(own) {
        *slot = tree;
    }
    Ok(digest)
}

/// The payload stored for `path` (by [`store_payloads`]), counted.
fn stored_payload(
    stored: &HashMap<PathBuf, (Digest, u64)>,
    path: &Path,
    stats: &mut Stats,
) -> Result<(Digest, u64)> {
    let &(payload, size) = stored.get(path).ok_or_else(|| Error::Uncommittable {
        path: path.to_owned(),
        reason: "it appeared while the directory was being committed; commit again".to_owned(),
    })?;
    stats.blobs += 1;
    stats.bytes += size;
    Ok((payload, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_bounded_by_files_and_bytes() {
        let files: Vec<(PathBuf, u64)> = (0..10_000)
            .map(|i| (PathBuf::from(format!("f{i}")), 10))
            .collect();
        let b = batches(&files);
        assert_eq!(
            b.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [4096, 4096, 1808]
        );
        let big: Vec<(PathBuf, u64)> = (0..5)
            .map(|i| (PathBuf::from(format!("g{i}")), 600 << 20))
            .collect();
        let b = batches(&big);
        assert!(b.iter().all(|c| c.len() == 1), "{}", b.len());
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn a_committed_directory_is_in_place_and_nothing_is_left_staged() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join("a/b")).unwrap();
        for i in 0..300 {
            std::fs::write(src.join("a/b").join(format!("f{i}")), format!("{}", i % 7)).unwrap();
        }
        std::os::unix::fs::symlink("a/b/f1", src.join("link")).unwrap();
        let repo = FsRepository::open_or_create(d.path().join("r")).unwrap();
        let c = commit_dir(&repo, &src).unwrap();
        assert_eq!(c.blobs, 301);
        // 7 distinct contents and the link's target: 8 payloads.
        let count = |store: &str| {
            let mut n = 0;
            for shard in std::fs::read_dir(d.path().join("r").join(store)).unwrap() {
                let shard = shard.unwrap().path();
                if shard.file_name().unwrap() == "work" {
                    assert_eq!(std::fs::read_dir(&shard).unwrap().count(), 0, "left staged");
                    continue;
                }
                n += std::fs::read_dir(&shard).unwrap().count();
            }
            n
        };
        assert_eq!(count("payloads"), 8);
        let view = View::build(&[match repo.read_object(&c.manifest).unwrap() {
            Some(Object::Manifest(m)) => m,
            other => panic!("{other:?}"),
        }])
        .unwrap();
        assert!(view.resolve_path("a/b/f299").is_some());
    }
}
