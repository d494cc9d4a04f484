//! The merged view of a layer stack: one immutable, compact directory tree.
//!
//! It is built once per runtime and backs the FUSE inode table: a node's
//! index is stable for the life of the view, lookup by (parent, name) is a
//! binary search over the parent's children, and readdir is a slice.
//!
//! Merge rules (upstream's): layers apply bottom-up; an upper entry replaces
//! the lower entry of the same path; directories merge recursively; a mask
//! removes the lower entry (a whole directory, if it was one) and is itself
//! invisible, so a directory re-created above a mask starts empty.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;

use super::digest::Digest;
use super::error::{Error, Result};
use super::object::{mode, Entry, EntryKind, Manifest, Tree};

/// Deepest directory nesting accepted (deeper means a corrupt or cyclic
/// manifest): what an editable runtime can make (its node table's limit)
/// and far past what upstream's tools are used with (a path of 2,048
/// one-letter directories is PATH_MAX).
pub const MAX_DEPTH: u32 = 4096;
/// Most nodes one view may hold.
const MAX_NODES: usize = 16 << 20;

/// A node's index in its view; the root is `NodeId::ROOT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The root directory.
    pub const ROOT: NodeId = NodeId(0);
}

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
}

/// 64 bytes per node; names live in one shared arena.
#[derive(Clone, Debug)]
struct Node {
    name_start: u32,
    name_len: u32,
    parent: u32,
    first_child: u32,
    child_count: u32,
    mode: u32,
    size: u64,
    /// The payload of a file or symlink; NULL for directories.
    payload: Digest,
}

/// The merged, read-only tree of a stack.
#[derive(Clone, Debug)]
pub struct View {
    nodes: Vec<Node>,
    names: String,
}

/// A borrowed node with its view, for reading attributes.
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    view: &'a View,
    id: NodeId,
    node: &'a Node,
}

impl<'a> NodeRef<'a> {
    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }
    /// The entry name (empty for the root).
    pub fn name(&self) -> &'a str {
        let s = self.node.name_start as usize;
        &self.view.names[s..s + self.node.name_len as usize]
    }
    /// Full `st_mode`, type bits included.
    pub fn mode(&self) -> u32 {
        self.node.mode
    }
    /// Permission bits only.
    pub fn permissions(&self) -> u32 {
        self.node.mode & 0o7777
    }
    /// Directory, file or symlink.
    pub fn kind(&self) -> NodeKind {
        match self.node.mode & mode::S_IFMT {
            m if m == mode::S_IFDIR => NodeKind::Dir,
            m if m == mode::S_IFLNK => NodeKind::Symlink,
            _ => NodeKind::File,
        }
    }
    /// Byte size (a symlink's is its target length; 0 for directories).
    pub fn size(&self) -> u64 {
        self.node.size
    }
    /// The payload holding the contents (or symlink target).
    pub fn payload(&self) -> Option<Digest> {
        (self.kind() != NodeKind::Dir).then_some(self.node.payload)
    }
    /// The parent directory (the root is its own parent).
    pub fn parent(&self) -> NodeId {
        NodeId(self.node.parent)
    }
    /// Number of entries in a directory.
    pub fn child_count(&self) -> u32 {
        self.node.child_count
    }
}

impl Default for View {
    fn default() -> Self {
        Self::empty()
    }
}

impl View {
    /// A view with only an empty root directory.
    pub fn empty() -> Self {
        Self {
            nodes: vec![Node {
                name_start: 0,
                name_len: 0,
                parent: 0,
                first_child: 1,
                child_count: 0,
                mode: mode::S_IFDIR | 0o755,
                size: 0,
                payload: Digest::NULL,
            }],
            names: String::new(),
        }
    }

    /// Merges `manifests` (bottom-up) into one view.
    pub fn build(manifests: &[Manifest]) -> Result<Self> {
        Self::build_limited(manifests, MAX_NODES)
    }

    /// As [`View::build`], refusing stacks of more than `max_nodes` entries.
    pub fn build_limited(manifests: &[Manifest], max_nodes: usize) -> Result<Self> {
        Builder::new(manifests, max_nodes)?.run()
    }

    /// Number of nodes, root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if only the root exists.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 1
    }

    /// The node `id`, if it exists.
    pub fn get(&self, id: NodeId) -> Option<NodeRef<'_>> {
        self.nodes.get(id.0 as usize).map(|node| NodeRef {
            view: self,
            id,
            node,
        })
    }

    fn name_bytes(&self, n: &Node) -> &[u8] {
        let s = n.name_start as usize;
        // In range by construction (the builder appends each name).
        self.names
            .as_bytes()
            .get(s..s + n.name_len as usize)
            .unwrap_or_default()
    }

    /// Ids of a directory's entries, sorted by name (empty for non-dirs).
    pub fn children(
        &self,
        dir: NodeId,
    ) -> impl DoubleEndedIterator<Item = NodeId> + ExactSizeIterator {
        self.child_range(dir).map(NodeId)
    }

    fn child_range(&self, dir: NodeId) -> Range<u32> {
        match self.nodes.get(dir.0 as usize) {
            Some(n) => n.first_child..n.first_child + n.child_count,
            None => 0..0,
        }
    }

    /// The entry `name` of directory `dir`.
    pub fn lookup(&self, dir: NodeId, name: &[u8]) -> Option<NodeId> {
        let r = self.child_range(dir);
        let kids = self
            .nodes
            .get(r.start as usize..r.end as usize)
            .unwrap_or_default();
        kids.binary_search_by(|n| self.name_bytes(n).cmp(name))
            .ok()
            .map(|i| NodeId(r.start + i as u32))
    }

    /// The node at a `/`-separated path relative to the root.
    pub fn resolve_path(&self, path: &str) -> Option<NodeId> {
        path.split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .try_fold(NodeId::ROOT, |dir, part| self.lookup(dir, part.as_bytes()))
    }

    /// The path of `id` relative to the root (`""` for the root).
    pub fn path_of(&self, id: NodeId) -> String {
        let mut parts = Vec::new();
        let mut cur = id;
        while cur != NodeId::ROOT {
            let Some(n) = self.get(cur) else { break };
            parts.push(n.name());
            cur = n.parent();
        }
        parts.reverse();
        parts.join("/")
    }

    /// Every node below `dir` in depth-first, name-sorted order.
    pub fn walk(&self, dir: NodeId) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut stack: Vec<NodeId> = self.children(dir).rev().collect();
        while let Some(id) = stack.pop() {
            out.push(id);
            stack.extend(self.children(id).rev());
        }
        out
    }

    /// Heap bytes held by the view (nodes and names).
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>() + self.names.capacity()
    }
}

/// Names a directory entry can have; others only come from corrupt data.
/// Row `i` of a directory being merged (`by_name` holds only positions
/// in it).
fn merged<'a, 'm>(
    out: &'a mut [(&'m str, Pending<'m>)],
    i: usize,
) -> Result<&'a mut (&'m str, Pending<'m>)> {
    out.get_mut(i)
        .ok_or_else(|| Error::Decode(format!("no merged entry {i}")))
}

/// Tree `t` of manifest `m` of the stack (a source the builder made).
fn tree_of(manifests: &[Manifest], m: u32, t: u32) -> Result<&Tree> {
    manifests
        .get(m as usize)
        .and_then(|mf| mf.trees.get(t as usize))
        .ok_or_else(|| Error::Decode(format!("no tree {t} in manifest {}", m + 1)))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// Where a directory's contents come from: (manifest index, tree index).
type Source = (u32, u32);

enum Pending<'m> {
    Dir { mode: u32, sources: Vec<Source> },
    Blob(&'m Entry),
}

struct Builder<'m> {
    max_nodes: usize,
    manifests: &'m [Manifest],
    /// Per manifest: tree digest → tree index.
    tree_index: Vec<HashMap<Digest, u32>>,
    view: View,
}

impl<'m> Builder<'m> {
    fn new(manifests: &'m [Manifest], max_nodes: usize) -> Result<Self> {
        let tree_index = manifests
            .iter()
            .map(|m| {
                m.trees
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.digest(), i as u32))
                    .collect()
            })
            .collect();
        let total: usize = manifests
            .iter()
            .flat_map(|m| m.trees.iter())
            .map(|t| t.entries.len())
            .sum();
        let mut view = View::empty();
        view.nodes.reserve(total.min(max_nodes));
        view.names.reserve(total.min(max_nodes) * 12);
        Ok(Self {
            max_nodes,
            manifests,
            tree_index,
            view,
        })
    }

    fn subtree(&self, m: u32, entry: &Entry) -> Result<Source> {
        self.tree_index
            .get(m as usize)
            .and_then(|trees| trees.get(&entry.object))
            .map(|t| (m, *t))
            .ok_or_else(|| {
                Error::Decode(format!(
                    "manifest {} of the stack lists directory '{}' with tree {}, which it does not contain",
                    m + 1,
                    entry.name,
                    entry.object
                ))
            })
    }

    fn run(mut self) -> Result<View> {
        let roots: Vec<Source> = (0..self.manifests.len() as u32).map(|m| (m, 0)).collect();
        let mut queue: VecDeque<(u32, u32, Vec<Source>)> = VecDeque::new();
        queue.push_back((0, 0, roots));
        let mut merged: Vec<(&'m str, Pending<'m>)> = Vec::new();
        let mut by_name: HashMap<&'m str, usize> = HashMap::new();
        while let Some((node, depth, sources)) = queue.pop_front() {
            if depth >= MAX_DEPTH {
                return Err(Error::Decode(format!(
                    "directories nest deeper than {MAX_DEPTH} levels (the most this tool accepts) at '{}': a corrupt or cyclic manifest",
                    self.view.path_of(NodeId(node))
                )));
            }
            merged.clear();
            by_name.clear();
            self.merge(&sources, &mut merged, &mut by_name)?;
            merged.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            let first = self.view.nodes.len();
            if first + merged.len() > self.max_nodes {
                return Err(Error::Decode(format!(
                    "the stack expands to more than {} entries",
                    self.max_nodes
                )));
            }
            for (name, pending) in merged.drain(..) {
                let id = self.view.nodes.len() as u32;
                let name_start = self.view.names.len() as u32;
                self.view.names.push_str(name);
                let (mode, size, payload) = match pending {
                    Pending::Dir { mode, sources } => {
                        queue.push_back((id, depth + 1, sources));
                        (mode, 0, Digest::NULL)
                    }
                    Pending::Blob(e) => {
                        let mode = if e.mode & mode::S_IFMT == 0 {
                            e.mode | mode::S_IFREG
                        } else {
                            e.mode
                        };
                        (mode, e.size, e.object)
                    }
                };
                self.view.nodes.push(Node {
                    name_start,
                    name_len: name.len() as u32,
                    parent: node,
                    first_child: 0,
                    child_count: 0,
                    mode,
                    size,
                    payload,
                });
            }
            let count = (self.view.nodes.len() - first) as u32;
            if let Some(n) = self.view.nodes.get_mut(node as usize) {
                n.first_child = first as u32;
                n.child_count = count;
            }
        }
        self.view.nodes.shrink_to_fit();
        self.view.names.shrink_to_fit();
        Ok(self.view)
    }

    /// Merges the trees of one directory, bottom-up, into `out`.
    fn merge(
        &self,
        sources: &[Source],
        out: &mut Vec<(&'m str, Pending<'m>)>,
        by_name: &mut HashMap<&'m str, usize>,
    ) -> Result<()> {
        let manifests: &'m [Manifest] = self.manifests;
        let dir_mode = |e: &Entry| mode::S_IFDIR | (e.mode & 0o7777);
        if let [(m, t)] = sources {
            // One source (the common case): nothing to merge, masks vanish.
            for e in &tree_of(manifests, *m, *t)?.entries {
                if !valid_name(&e.name) {
                    continue;
                }
                match e.kind {
                    EntryKind::Mask => {}
                    EntryKind::Blob => out.push((&e.name, Pending::Blob(e))),
                    EntryKind::Tree => out.push((
                        &e.name,
                        Pending::Dir {
                            mode: dir_mode(e),
                            sources: vec![self.subtree(*m, e)?],
                        },
                    )),
                }
            }
            return Ok(());
        }
        const REMOVED: usize = usize::MAX;
        let mut removed = 0usize;
        for (m, t) in sources {
            for e in &tree_of(manifests, *m, *t)?.entries {
                if !valid_name(&e.name) {
                    continue;
                }
                let slot = by_name
                    .get(e.name.as_str())
                    .copied()
                    .filter(|i| *i != REMOVED);
                match (e.kind, slot) {
                    (EntryKind::Mask, Some(i)) => {
                        by_name.insert(&e.name, REMOVED);
                        merged(out, i)?.0 = "";
                        removed += 1;
                    }
                    (EntryKind::Mask, None) => {}
                    (EntryKind::Blob, Some(i)) => merged(out, i)?.1 = Pending::Blob(e),
                    (EntryKind::Tree, Some(i)) => {
                        let src = self.subtree(*m, e)?;
                        match &mut merged(out, i)?.1 {
                            Pending::Dir { mode, sources } => {
                                *mode = dir_mode(e);
                                sources.push(src);
                            }
                            other => {
                                *other = Pending::Dir {
                                    mode: dir_mode(e),
                                    sources: vec![src],
                                }
                            }
                        }
                    }
                    (kind, None) => {
                        let pending = match kind {
                            EntryKind::Blob => Pending::Blob(e),
                            _ => Pending::Dir {
                                mode: dir_mode(e),
                                sources: vec![self.subtree(*m, e)?],
                            },
                        };
                        by_name.insert(&e.name, out.len());
                        out.push((&e.name, pending));
                    }
                }
            }
        }
        if removed > 0 {
            // Removed slots were renamed to "" (never a valid entry name).
            out.retain(|(name, _)| !name.is_empty());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Tree;

    fn blob(name: &str, data: &str) -> Entry {
        Entry {
            name: name.into(),
            kind: EntryKind::Blob,
            object: Digest::of(data.as_bytes()),
            mode: 0o100644,
            size: data.len() as u64,
        }
    }
    fn mask(name: &str) -> Entry {
        Entry {
            name: name.into(),
            kind: EntryKind::Mask,
            object: Digest::NULL,
            mode: 0o020000,
            size: 0,
        }
    }
    /// A manifest from `(path, entry)` pairs where directories are implied.
    fn manifest(items: &[(&str, Entry)]) -> Manifest {
        fn build(
            prefix: &str,
            items: &[(&str, Entry)],
            trees: &mut Vec<Tree>,
            mode: u32,
        ) -> Digest {
            let mut entries = Vec::new();
            let mut subdirs: Vec<&str> = Vec::new();
            for (path, e) in items {
                let Some(rest) = path.strip_prefix(prefix) else {
                    continue;
                };
                match rest.split_once('/') {
                    None => entries.push(e.clone()),
                    Some((d, _)) if !subdirs.contains(&d) => subdirs.push(d),
                    _ => {}
                }
            }
            let at = trees.len();
            trees.push(Tree::default());
            for d in subdirs {
                let digest = build(&format!("{prefix}{d}/"), items, trees, mode);
                entries.push(Entry {
                    name: d.into(),
                    kind: EntryKind::Tree,
                    object: digest,
                    mode,
                    size: 0,
                });
            }
            trees[at] = Tree { entries };
            trees[at].digest()
        }
        let mut trees = Vec::new();
        build("", items, &mut trees, 0o040755);
        Manifest { trees }
    }
    fn listing(v: &View) -> Vec<String> {
        v.walk(NodeId::ROOT)
            .into_iter()
            .map(|id| {
                let n = v.get(id).unwrap();
                format!("{} {:?} {:o}", v.path_of(id), n.kind(), n.permissions())
            })
            .collect()
    }

    #[test]
    fn merge_semantics() {
        let base = manifest(&[
            ("a/x", blob("x", "1")),
            ("a/y", blob("y", "1")),
            ("f", blob("f", "file")),
            ("d/deep/z", blob("z", "1")),
            ("keep", blob("keep", "k")),
        ]);
        let mut upper = manifest(&[
            ("a/x", blob("x", "2")),           // replaced
            ("a/new", blob("new", "n")),       // added to a merged dir
            ("f/inside", blob("inside", "i")), // a dir replaces a file
            ("d", mask("d")),                  // a whole dir removed
            ("gone", mask("gone")),            // masking nothing is invisible
        ]);
        upper.trees[0].entries.push(blob("keep", "k2"));
        let v = View::build(&[base, upper]).unwrap();
        assert_eq!(
            listing(&v),
            [
                "a Dir 755",
                "a/new File 644",
                "a/x File 644",
                "a/y File 644",
                "f Dir 755",
                "f/inside File 644",
                "keep File 644",
            ]
        );
        let x = v.get(v.resolve_path("a/x").unwrap()).unwrap();
        assert_eq!(x.payload(), Some(Digest::of(b"2")));
        assert_eq!(v.get(v.resolve_path("keep").unwrap()).unwrap().size(), 2);
    }

    #[test]
    fn recreated_dirs_start_empty_and_files_replace_dirs() {
        let base = manifest(&[("d/old", blob("old", "o")), ("e/sub", blob("sub", "s"))]);
        let masks = manifest(&[("d", mask("d"))]);
        let mut third = manifest(&[("d/fresh", blob("fresh", "f"))]);
        third.trees[0].entries.push(blob("e", "now a file"));
        let v = View::build(&[base, masks, third]).unwrap();
        assert_eq!(listing(&v), ["d Dir 755", "d/fresh File 644", "e File 644"]);
    }

    #[test]
    fn top_layer_sets_directory_mode() {
        let base = manifest(&[("d/a", blob("a", "a"))]);
        let mut top = manifest(&[("d/b", blob("b", "b"))]);
        top.trees[0].entries[0].mode = 0o040700;
        let v = View::build(&[base, top]).unwrap();
        assert_eq!(listing(&v)[0], "d Dir 700");
    }

    #[test]
    fn lookup_and_paths() {
        let v = View::build(&[manifest(&[
            ("b", blob("b", "")),
            ("a/c", blob("c", "")),
            ("é", blob("é", "")),
        ])])
        .unwrap();
        let a = v.lookup(NodeId::ROOT, b"a").unwrap();
        assert_eq!(v.get(a).unwrap().kind(), NodeKind::Dir);
        assert_eq!(v.lookup(a, b"c"), v.resolve_path("a/c"));
        assert_eq!(v.lookup(NodeId::ROOT, b"zz"), None);
        assert_eq!(
            v.lookup(v.resolve_path("b").unwrap(), b"x"),
            None,
            "files have no children"
        );
        assert_eq!(v.path_of(v.resolve_path("a/c").unwrap()), "a/c");
        assert!(v.resolve_path("é").is_some());
        let names: Vec<_> = v
            .children(NodeId::ROOT)
            .map(|c| v.get(c).unwrap().name())
            .collect();
        assert_eq!(names, ["a", "b", "é"]);
        assert!(v.get(NodeId(999)).is_none());
        assert_eq!(v.children(NodeId(999)).len(), 0);
        assert!(View::empty().is_empty());
    }

    #[test]
    fn corrupt_manifests_are_errors() {
        // a tree entry whose tree is not in the manifest
        let mut m = manifest(&[("d/a", blob("a", "a"))]);
        m.trees.truncate(1);
        let err = View::build(&[m]).unwrap_err().to_string();
        assert!(err.contains("does not contain"), "{err}");
        // hash cycles are impossible, but a few trees can fan out
        // exponentially: 40 levels of two links to the same tree
        let mut trees = vec![Tree {
            entries: vec![blob("leaf", "x")],
        }];
        for _ in 0..40 {
            let below = trees.last().unwrap().digest();
            let link = |name: &str| Entry {
                name: name.into(),
                kind: EntryKind::Tree,
                object: below,
                mode: 0o040755,
                size: 0,
            };
            trees.push(Tree {
                entries: vec![link("a"), link("b")],
            });
        }
        trees.reverse();
        let err = View::build_limited(&[Manifest { trees }], 100_000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 100000 entries"), "{err}");
        // names that are not entries are skipped, never exposed
        let bad = Manifest {
            trees: vec![Tree {
                entries: vec![
                    blob("..", ""),
                    blob("a/b", ""),
                    blob("", ""),
                    blob("ok", ""),
                ],
            }],
        };
        let v = View::build(&[bad]).unwrap();
        assert_eq!(listing(&v), ["ok File 644"]);
    }
}
