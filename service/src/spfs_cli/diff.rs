//! `diff A B`: how one environment's files differ from another's, as
//! upstream's `spfs diff` lists them.
//!
//! Environments are compared as upstream compares them: each stack's
//! manifests merged into one tree in which a mask is an entry of its own,
//! not as the views a runtime shows. A mask on the FROM side is an entry
//! (a path masked there and present on the TO side changed in mode and
//! content); on the TO side, a removal of whatever FROM has there.

use std::collections::{BTreeMap, HashMap};

use crate::repo::object::{EntryKind, Manifest};
use crate::repo::tags::TagAuthor;
use crate::repo::{Digest, EnvSpec, RepositorySet};

use super::{CmdError, CmdResult, Repositories};

#[derive(Debug, clap::Args)]
pub(crate) struct DiffArgs {
    #[command(flatten)]
    repos: Repositories,
    /// The tag or id to use as the base of the computed diff [default:
    /// the active runtime's stack].
    #[arg(value_name = "FROM")]
    base: Option<String>,
    /// The tag or id to diff the base against [default: the contents of
    /// the runtime's /spfs].
    #[arg(value_name = "TO")]
    top: Option<String>,
}

/// One entry of a merged tree.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) mode: u32,
    pub(crate) kind: EntryKind,
    pub(crate) object: Digest,
    pub(crate) size: u64,
    pub(crate) children: BTreeMap<String, Node>,
}

impl Node {
    /// Its size; a directory's is the sum of everything below it.
    pub(crate) fn total_size(&self) -> u64 {
        if self.kind == EntryKind::Tree {
            self.children.values().map(Node::total_size).sum()
        } else {
            self.size
        }
    }
}

/// Deeper than this is not merged (views refuse it anyway).
const MAX_DEPTH: usize = crate::repo::view::MAX_DEPTH as usize;

/// `diff FROM TO`: one line per path that differs, depth first, each
/// directory's subdirectories then its other entries by name:
/// `+/spfs/p` added, `-/spfs/p` removed, `~/spfs/p [mode {…}, content,
/// size {a=>b}]` changed (a directory is changed when anything below it
/// differs). Nothing differing: no output ("no changes" on standard
/// error).
pub(crate) fn diff(args: DiffArgs) -> CmdResult {
    let repo = args.repos.open()?;
    let set = RepositorySet::new(repo, Vec::new(), TagAuthor(String::new()));
    let a = match &args.base {
        Some(base) => merged(&set, base)?,
        None => {
            let stack = set.resolve_digests(&active_stack(set.primary())?)?;
            merged_stack(&set, &stack)?
        }
    };
    let b = match &args.top {
        Some(top) => merged(&set, top)?,
        None => {
            // What this process sees: its runtime's view at the mountpoint.
            active_stack(set.primary())?;
            let mount = crate::cli::Endpoint::from_environment()
                .mountpoint()
                .to_owned();
            live(&mount, 0).map_err(|e| format!("cannot read {}: {e}", mount.display()))?
        }
    };
    let mut lines = Vec::new();
    compare(&a, &b, "", &mut lines);
    if lines.is_empty() {
        super::log_info("no changes");
    }
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

/// The stack `spec` names, its manifests merged bottom-up.
pub(crate) fn merged(set: &RepositorySet, spec: &str) -> Result<BTreeMap<String, Node>, CmdError> {
    let parsed = EnvSpec::parse(spec)?;
    let stack = match set.resolve_stack(&parsed) {
        Ok(s) => s,
        Err(
            crate::repo::Error::UnknownReference { .. } | crate::repo::Error::DigestNotFound { .. },
        ) => return Err(super::tags::unknown(spec)),
        Err(e) => return Err(e.into()),
    };
    merged_stack(set, &stack)
}

/// The stack of the runtime this process is in (`SPFS_RUNTIME`), bottom
/// first, from its record; upstream's error outside a runtime.
fn active_stack(repo: &crate::repo::FsRepository) -> Result<Vec<Digest>, CmdError> {
    Ok(super::runtimes::active_record(repo)?.1.stack()?)
}

/// Stack `stack` (bottom first), its manifests merged bottom-up.
fn merged_stack(
    set: &RepositorySet,
    stack: &[crate::repo::StackItem],
) -> Result<BTreeMap<String, Node>, CmdError> {
    let mut root = BTreeMap::new();
    for m in set.read_stack_manifests(stack)? {
        apply(&m, &m.tree_index(), 0, &mut root, 0);
    }
    Ok(root)
}

/// The tree at `dir` as a manifest would hold it: each file's and
/// link's content digest and size, every entry's mode with its type.
fn live(dir: &std::path::Path, depth: usize) -> std::io::Result<BTreeMap<String, Node>> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path)?;
        let name = String::from_utf8_lossy(entry.file_name().as_bytes()).into_owned();
        let mode = meta.permissions().mode();
        let node = if meta.is_dir() {
            Node {
                mode,
                kind: EntryKind::Tree,
                object: Digest::NULL,
                size: 0,
                children: if depth < MAX_DEPTH {
                    live(&path, depth + 1)?
                } else {
                    BTreeMap::new()
                },
            }
        } else {
            let (object, size) = if meta.is_symlink() {
                let target = std::fs::read_link(&path)?;
                let bytes = target.as_os_str().as_bytes();
                (Digest::of(bytes), bytes.len() as u64)
            } else if meta.is_file() {
                Digest::of_reader(std::fs::File::open(&path)?)?
            } else {
                // (a device, FIFO or socket holds no content)
                (Digest::empty(), 0)
            };
            Node {
                mode,
                kind: EntryKind::Blob,
                object,
                size,
                children: BTreeMap::new(),
            }
        };
        out.insert(name, node);
    }
    Ok(out)
}

/// Lays tree `tree` of manifest `m` over `into`: a directory over a
/// directory merges, anything else replaces (a mask included).
fn apply(
    m: &Manifest,
    trees: &HashMap<Digest, usize>,
    tree: usize,
    into: &mut BTreeMap<String, Node>,
    depth: usize,
) {
    let Some(t) = m.trees.get(tree) else {
        return;
    };
    for e in &t.entries {
        let sub = (e.kind == EntryKind::Tree && depth < MAX_DEPTH)
            .then(|| trees.get(&e.object).copied())
            .flatten();
        match (into.get_mut(&e.name), sub) {
            (Some(existing), Some(i)) if existing.kind == EntryKind::Tree => {
                existing.mode = e.mode;
                apply(m, trees, i, &mut existing.children, depth + 1);
            }
            (_, sub) => {
                let mut node = Node {
                    mode: e.mode,
                    kind: e.kind,
                    object: if e.kind == EntryKind::Tree {
                        Digest::NULL
                    } else {
                        e.object
                    },
                    size: if e.kind == EntryKind::Blob { e.size } else { 0 },
                    children: BTreeMap::new(),
                };
                if let Some(i) = sub {
                    apply(m, trees, i, &mut node.children, depth + 1);
                }
                into.insert(e.name.clone(), node);
            }
        }
    }
}

/// The names of `a` and `b` together: directories first, then the rest,
/// each by name.
fn names<'n>(a: &'n BTreeMap<String, Node>, b: &'n BTreeMap<String, Node>) -> Vec<&'n str> {
    let mut all: Vec<(bool, &str)> = Vec::new();
    for (name, node) in a.iter().chain(b.iter()) {
        if !all.iter().any(|(_, n)| *n == name) {
            all.push((node.kind != EntryKind::Tree, name));
        }
    }
    all.sort_by(|x, y| (x.0, x.1.as_bytes()).cmp(&(y.0, y.1.as_bytes())));
    all.into_iter().map(|(_, n)| n).collect()
}

/// Appends the differences below `path` to `out`.
fn compare(
    a: &BTreeMap<String, Node>,
    b: &BTreeMap<String, Node>,
    path: &str,
    out: &mut Vec<String>,
) {
    for name in names(a, b) {
        let child = format!("{path}/{name}");
        let to = b.get(name).filter(|n| n.kind != EntryKind::Mask);
        match (a.get(name), to) {
            (Some(x), None) => listed(x, &child, '-', out),
            (None, Some(y)) => listed(y, &child, '+', out),
            (Some(x), Some(y)) => {
                // Changed: anything of it or below it differs (what is
                // listed below it is decided there).
                let mut abouts = Vec::new();
                if x.mode != y.mode {
                    abouts.push(format!("mode {{{:06o}=>{:06o}}}", x.mode, y.mode));
                }
                if x.object != y.object {
                    abouts.push("content".to_owned());
                }
                if x.size != y.size {
                    abouts.push(format!("size {{{}=>{}}}", x.size, y.size));
                }
                if x != y {
                    let about = if abouts.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", abouts.join(", "))
                    };
                    out.push(format!("~/spfs{child}{about}"));
                }
                compare(&x.children, &y.children, &child, out);
            }
            (None, None) => {}
        }
    }
}

/// `node` at `path` and everything below it, each as `sign/spfs/path`
/// (an added mask is no entry).
fn listed(node: &Node, path: &str, sign: char, out: &mut Vec<String>) {
    if sign == '+' && node.kind == EntryKind::Mask {
        return;
    }
    out.push(format!("{sign}/spfs{path}"));
    let none = BTreeMap::new();
    for name in names(&node.children, &none) {
        if let Some(child) = node.children.get(name) {
            listed(child, &format!("{path}/{name}"), sign, out);
        }
    }
}
