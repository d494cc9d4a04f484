//! Committing a directory: payloads, blobs, a manifest and a layer, with the
//! digests upstream's `spfs commit --path` computes.
//!
//! Objects are written bottom-up (payloads and blobs, then the manifest, then
//! the layer), so whatever a crash leaves behind is only unreferenced data:
//! no object ever names one that is missing.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::digest::Digest;
use super::error::{Error, Result};
use super::object::{Blob, Entry, EntryKind, Layer, Manifest, Object, Platform, Tree};
use super::storage::FsRepository;
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

/// Commits the directory `dir` as a new layer in `repo`.
pub fn commit_dir(repo: &FsRepository, dir: &Path) -> Result<Committed> {
    let meta = fs::metadata(dir).map_err(Error::io("commit", dir))?;
    if !meta.is_dir() {
        return Err(Error::Uncommittable {
            path: dir.to_owned(),
            reason: "not a directory".to_owned(),
        });
    }
    with_deep_stack(|| {
        check_committable(dir, Format::Plain)?;
        let mut stats = Stats::default();
        let mut trees = Vec::new();
        collect(repo, dir, Format::Plain, &mut stats, &mut trees, 0)?;
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
        check_committable(upper, format)?;
        let mut stats = Stats::default();
        let mut trees = Vec::new();
        collect(repo, upper, format, &mut stats, &mut trees, 0)?;
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
fn check_committable(dir: &Path, format: Format) -> Result<()> {
    let mut bad = Vec::new();
    scan(
        dir,
        Path::new(""),
        matches!(format, Format::Plain),
        &mut bad,
        0,
    )?;
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::UncommittableEntries(bad))
    }
}

fn scan(
    dir: &Path,
    rel: &Path,
    plain: bool,
    bad: &mut Vec<(std::path::PathBuf, &'static str)>,
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
            scan(&path, &rel, plain, bad, depth + 1)?;
            continue;
        } else if ft.is_file() || ft.is_symlink() {
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
    repo: &FsRepository,
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
            let object = collect(repo, &path, inner, stats, out, depth + 1)?;
            Entry {
                name,
                kind: EntryKind::Tree,
                object,
                mode: meta.mode(),
                size: 0,
            }
        } else if ft.is_file() {
            let file = fs::File::open(&path).map_err(Error::io("read", &path))?;
            let (payload, size) = repo.write_payload(file)?;
            store_blob(repo, payload, size, stats)?;
            Entry {
                name,
                kind: EntryKind::Blob,
                object: payload,
                mode: meta.mode(),
                size,
            }
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(Error::io("read link", &path))?;
            let bytes = target.as_os_str().as_encoded_bytes();
            let (payload, size) = repo.write_payload(bytes)?;
            store_blob(repo, payload, size, stats)?;
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
    out[own] = tree;
    Ok(digest)
}

fn store_blob(repo: &FsRepository, payload: Digest, size: u64, stats: &mut Stats) -> Result<()> {
    repo.write_object(&Object::Blob(Blob { payload, size }))?;
    stats.blobs += 1;
    stats.bytes += size;
    Ok(())
}
