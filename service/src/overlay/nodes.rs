//! The node table of an overlay: which (parent, name) each inode stands
//! for, and the lower entry it shows or merges with. A file with several
//! hard links in the scratch is one node with several names, so both
//! names show one inode, as on any disk.
//!
//! An overlay made for a read-only runtime that became editable (`spfs
//! edit`) *adopts* that runtime's view: node `i` below the view's length
//! is the view's node `i`, so every inode number the kernel was given
//! while the runtime was read-only names the same file after (a shell
//! `cd`'d into `/spfs` and open files keep working). Adopted nodes are
//! made when first asked for, and never freed: how many lookups of them
//! the kernel holds is not known.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fuser::Errno;
use parking_lot::RwLock;

use super::Index;
use crate::repo::{NodeId, View};

#[derive(Debug)]
struct Node {
    parent: Index,
    name: Box<[u8]>,
    /// Its other names (hard links), besides (parent, name).
    links: Vec<Named>,
    /// The lower entry this node shows or merges with.
    lower: Option<NodeId>,
    /// Unlinked, removed or replaced: the name now means something else.
    detached: bool,
    /// How many times the kernel was given this node's inode and has not
    /// forgotten it (FUSE's lookup count).
    lookups: AtomicU64,
    /// Names in the index whose parent this node is.
    children: u32,
    /// The scratch file (device, inode) that `files` maps to this node.
    file: Option<(u64, u64)>,
    /// Freed: detached, forgotten by the kernel and with no children; its
    /// index is on the free list for a new node.
    free: bool,
}

impl Node {
    fn new(parent: Index, name: Box<[u8]>, lower: Option<NodeId>) -> Node {
        Node {
            parent,
            name,
            links: Vec::new(),
            lower,
            detached: false,
            lookups: AtomicU64::new(0),
            children: 0,
            file: None,
            free: false,
        }
    }
}

/// The lookups an adopted node starts with: the kernel may hold its inode
/// from the read-only view any number of times, so it is never freed.
const HELD_FROM_BEFORE: u64 = u64::MAX / 2;

/// The read-only view an overlay took over (see the module's notes).
#[derive(Debug)]
struct Adopted {
    view: Arc<View>,
    /// Indexes `1..end` are the view's nodes; the table's own start at `end`.
    end: Index,
    /// Those made so far.
    nodes: HashMap<Index, Node>,
    /// The overlay still shows `view` below its edits: a name found there
    /// takes the index of the view's node (after a commit it does not).
    same_view: bool,
    /// The runtime moved to another stack (`reset -r`): a node not made
    /// by then is stale, its file gone with the view.
    retired: bool,
}

#[derive(Debug, Default)]
struct Table {
    /// The root, then the nodes made here (index `base() + k - 1` at `k`).
    list: Vec<Node>,
    adopted: Option<Adopted>,
    index: HashMap<(Index, Box<[u8]>), Index>,
    /// Scratch files with several links: (device, inode) → their node.
    files: HashMap<(u64, u64), Index>,
    /// Indexes of freed nodes, used again before the list grows.
    free: Vec<Index>,
    /// At most this many nodes (their inode numbers must fit in 32 bits).
    limit: usize,
}

impl Table {
    /// The index of `list[1]`: past the adopted view's nodes.
    fn base(&self) -> Index {
        self.adopted.as_ref().map_or(1, |a| a.end)
    }

    /// Node `idx`, if made.
    fn get(&self, idx: Index) -> Option<&Node> {
        let base = self.base();
        if idx == 0 || idx >= base {
            let at = if idx == 0 { 0 } else { idx - base + 1 };
            self.list.get(at as usize)
        } else {
            self.adopted.as_ref()?.nodes.get(&idx)
        }
    }

    fn get_mut(&mut self, idx: Index) -> Option<&mut Node> {
        let base = self.base();
        if idx == 0 || idx >= base {
            let at = if idx == 0 { 0 } else { idx - base + 1 };
            self.list.get_mut(at as usize)
        } else {
            self.adopted.as_mut()?.nodes.get_mut(&idx)
        }
    }

    /// Every index in use or free, the root first.
    fn indexes(&self) -> impl Iterator<Item = Index> + '_ {
        let base = self.base();
        let own = (1..self.list.len()).map(move |k| base + k as Index - 1);
        let adopted = self.adopted.iter().flat_map(|a| a.nodes.keys().copied());
        std::iter::once(0).chain(adopted).chain(own)
    }

    /// One past the highest index.
    fn end(&self) -> usize {
        self.base() as usize + self.list.len() - 1
    }

    /// Makes adopted node `idx` and the parents it needs, as the view
    /// names them (looked up again in `lower` once the overlay shows
    /// another view); false if `idx` is not a node of the adopted view.
    fn adopt(&mut self, idx: Index, lower: &View) -> bool {
        let Some(a) = &self.adopted else {
            return false;
        };
        if idx == 0 || idx >= a.end || a.retired {
            return false;
        }
        let mut chain = Vec::new();
        let mut at = idx;
        while at != 0 && !a.nodes.contains_key(&at) && chain.len() <= MAX_DEPTH {
            let Some(n) = a.view.get(NodeId(at)) else {
                return false;
            };
            chain.push((at, n.parent().0, Box::<[u8]>::from(n.name().as_bytes())));
            at = n.parent().0;
        }
        let same_view = a.same_view;
        while let Some((i, parent, name)) = chain.pop() {
            let lower = if same_view {
                Some(NodeId(i))
            } else {
                self.get(parent)
                    .and_then(|p| p.lower)
                    .and_then(|pl| lower.lookup(pl, &name))
            };
            let mut node = Node::new(parent, name.clone(), lower);
            node.lookups = AtomicU64::new(HELD_FROM_BEFORE);
            let key = (parent, name);
            // A name made anew since the view moved: this inode is a file
            // the runtime no longer shows by that name.
            node.detached = self.index.contains_key(&key);
            let named = !node.detached;
            if let Some(a) = self.adopted.as_mut() {
                a.nodes.insert(i, node);
            }
            if named {
                self.name(key, i);
            }
        }
        self.get(idx).is_some()
    }

    /// The adopted index a new name (`dir`, its lower entry `lower`) takes:
    /// the view's node of that name, if the overlay still shows that view
    /// and the node is not made yet.
    fn adoptable(&self, dir: Index, lower: Option<NodeId>) -> Option<Index> {
        let a = self.adopted.as_ref()?;
        let l = lower?;
        if !a.same_view || a.retired || l.0 == 0 || l.0 >= a.end || a.nodes.contains_key(&l.0) {
            return None;
        }
        let parent_lower = self.get(dir)?.lower?;
        (a.view.get(l)?.parent() == parent_lower).then_some(l.0)
    }

    /// Names `key` node `idx`; returns the node it named before, if any.
    fn name(&mut self, key: Named, idx: Index) -> Option<Index> {
        let parent = key.0;
        let old = self.index.insert(key, idx);
        if old.is_none() {
            if let Some(p) = self.get_mut(parent) {
                p.children = p.children.saturating_add(1);
            }
        }
        old
    }

    /// Removes name `key`; returns the node it named. Its parent may be
    /// freed (see [`Table::free_if_unused`]).
    fn unname(&mut self, key: &Named) -> Option<Index> {
        let idx = self.index.remove(key)?;
        if let Some(p) = self.get_mut(key.0) {
            p.children = p.children.saturating_sub(1);
        }
        self.free_if_unused(key.0);
        Some(idx)
    }

    /// Frees node `idx` once nothing can reach it: detached (no name
    /// leads to it), the kernel holds no inode of it, and no name has it
    /// as parent. Its index is then used again for a new node.
    fn free_if_unused(&mut self, idx: Index) {
        let Some(n) = self.get_mut(idx) else {
            return;
        };
        if idx == 0 || n.free || !n.detached || n.children > 0 || *n.lookups.get_mut() > 0 {
            return;
        }
        n.free = true;
        n.name = Box::default();
        n.links = Vec::new();
        n.lower = None;
        n.parent = 0;
        if let Some(file) = n.file.take() {
            if self.files.get(&file) == Some(&idx) {
                self.files.remove(&file);
            }
        }
        self.free.push(idx);
    }

    /// Marks node `idx` detached, and frees it if nothing holds it.
    fn detach(&mut self, idx: Index) {
        if let Some(n) = self.get_mut(idx) {
            n.detached = true;
        }
        self.free_if_unused(idx);
    }

    /// A new node; ENOSPC when the table is full.
    fn add(&mut self, node: Node) -> Result<Index, Errno> {
        if let Some(i) = self.free.pop() {
            if let Some(slot) = self.get_mut(i) {
                *slot = node;
                return Ok(i);
            }
        }
        if self.end() >= self.limit {
            return Err(Errno::ENOSPC);
        }
        let i = Index::try_from(self.end()).map_err(|_| Errno::ENOSPC)?;
        self.list.push(node);
        Ok(i)
    }

    /// A node for `name` in `dir` showing `lower`: the adopted view's own
    /// when it has one (see [`Table::adoptable`]), else a new one.
    fn add_named(
        &mut self,
        dir: Index,
        name: Box<[u8]>,
        lower: Option<NodeId>,
    ) -> Result<Index, Errno> {
        if let Some(i) = self.adoptable(dir, lower) {
            if let Some(a) = self.adopted.as_mut() {
                let mut node = Node::new(dir, name, lower);
                node.lookups = AtomicU64::new(HELD_FROM_BEFORE);
                a.nodes.insert(i, node);
                return Ok(i);
            }
        }
        self.add(Node::new(dir, name, lower))
    }
}

/// A node's parent and its name there.
pub(super) type Named = (Index, Box<[u8]>);

/// Deeper than this is a corrupt table, not a tree.
const MAX_DEPTH: usize = 4096;

/// The most nodes an overlay has at once: node `i` is inode number
/// `slot << 32 | (i + 1)`, so `i + 1` must fit in 32 bits.
const MAX_NODES: usize = u32::MAX as usize;

/// The nodes of one overlay; index 0 is the root.
///
/// A node lives while a name leads to it, or the kernel holds its inode
/// (counted by [`Nodes::remember`] and [`Nodes::forget`], as FUSE counts
/// lookups), or it is the parent of a name; then its index is used again.
/// So the table grows with the names in use, not with every name ever
/// made.
#[derive(Debug)]
pub(super) struct Nodes {
    table: RwLock<Table>,
}

impl Nodes {
    pub(super) fn new() -> Self {
        Self::with_limit(MAX_NODES)
    }

    /// A table of at most `limit` nodes.
    pub(super) fn with_limit(limit: usize) -> Self {
        Nodes {
            table: RwLock::new(Table {
                list: vec![Node::new(0, Box::default(), Some(NodeId::ROOT))],
                limit,
                ..Table::default()
            }),
        }
    }

    /// A table that adopts read-only view `view` (see the module's notes).
    pub(super) fn adopting(view: Arc<View>) -> Self {
        let nodes = Self::new();
        let end = Index::try_from(view.len().max(1)).unwrap_or(Index::MAX);
        nodes.table.write().adopted = Some(Adopted {
            view,
            end,
            nodes: HashMap::new(),
            same_view: true,
            retired: false,
        });
        nodes
    }

    /// Whether node `idx` is in use: made, or a node of the adopted view
    /// (made now, over `lower`, the view the overlay shows).
    pub(super) fn contains(&self, idx: Index, lower: &View) -> bool {
        if let Some(n) = self.table.read().get(idx) {
            return !n.free;
        }
        self.table.write().adopt(idx, lower)
    }

    /// How many nodes are in use (the root included).
    pub(super) fn live(&self) -> usize {
        let table = self.table.read();
        let adopted = table.adopted.as_ref().map_or(0, |a| a.nodes.len());
        table.list.len() - table.free.len() + adopted
    }

    /// The kernel was given node `idx`'s inode once more (a lookup, a
    /// create, a readdirplus entry).
    pub(super) fn remember(&self, idx: Index) {
        if let Some(n) = self.table.read().get(idx) {
            if !n.free {
                n.lookups.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The kernel forgot `count` of its lookups of node `idx`; a node
    /// that nothing else holds is freed.
    pub(super) fn forget(&self, idx: Index, count: u64) {
        let left = {
            let table = self.table.read();
            let Some(n) = table.get(idx).filter(|n| !n.free) else {
                return;
            };
            let before = n
                .lookups
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                    Some(c.saturating_sub(count))
                })
                .unwrap_or(0);
            before.saturating_sub(count)
        };
        if left == 0 {
            self.table.write().free_if_unused(idx);
        }
    }

    /// Whether node `idx` is (still) `name` in `dir`.
    pub(super) fn is_named(&self, idx: Index, dir: Index, name: &[u8]) -> bool {
        let table = self.table.read();
        table.get(idx).is_some_and(|n| {
            !n.detached
                && ((n.parent == dir && &*n.name == name)
                    || n.links.iter().any(|(p, l)| *p == dir && &**l == name))
        })
    }

    pub(super) fn parent(&self, idx: Index) -> Index {
        self.table.read().get(idx).map_or(0, |n| n.parent)
    }

    pub(super) fn lower(&self, idx: Index) -> Option<NodeId> {
        self.table.read().get(idx).and_then(|n| n.lower)
    }

    /// The names from the root down to node `idx` (empty for the root);
    /// ESTALE once the node or a parent is detached.
    pub(super) fn path(&self, idx: Index) -> Result<Vec<Box<[u8]>>, Errno> {
        let table = self.table.read();
        let mut names = Vec::new();
        let mut at = idx;
        while at != 0 {
            let n = table.get(at).ok_or(Errno::ESTALE)?;
            if n.detached || names.len() > MAX_DEPTH {
                return Err(Errno::ESTALE);
            }
            names.push(n.name.clone());
            at = n.parent;
        }
        names.reverse();
        Ok(names)
    }

    /// (parent, name) of node `idx`; `None` for the root; ESTALE once it
    /// is detached.
    pub(super) fn parent_and_name(&self, idx: Index) -> Result<Option<Named>, Errno> {
        if idx == 0 {
            return Ok(None);
        }
        let table = self.table.read();
        let n = table.get(idx).ok_or(Errno::ESTALE)?;
        if n.detached {
            return Err(Errno::ESTALE);
        }
        Ok(Some((n.parent, n.name.clone())))
    }

    /// The node for `name` in `dir`, created if needed (ENOSPC when the
    /// table is full).
    pub(super) fn intern(
        &self,
        dir: Index,
        name: &[u8],
        lower: Option<NodeId>,
    ) -> Result<Index, Errno> {
        let key = (dir, Box::<[u8]>::from(name));
        if let Some(&i) = self.table.read().index.get(&key) {
            return Ok(i);
        }
        let mut table = self.table.write();
        if let Some(&i) = table.index.get(&key) {
            return Ok(i);
        }
        let i = table.add_named(dir, key.1.clone(), lower)?;
        table.name(key, i);
        Ok(i)
    }

    /// The node for scratch file `name` in `dir` with `nlink` links and
    /// identity `file` (device, inode): another name of a node already
    /// made for that file joins it (a hard link the table did not see
    /// made, after a restart); otherwise as [`Nodes::intern`].
    pub(super) fn intern_file(
        &self,
        dir: Index,
        name: &[u8],
        nlink: u64,
        file: (u64, u64),
    ) -> Result<Index, Errno> {
        if nlink <= 1 {
            return self.intern(dir, name, None);
        }
        let key = (dir, Box::<[u8]>::from(name));
        if let Some(&i) = self.table.read().index.get(&key) {
            return Ok(i);
        }
        let mut table = self.table.write();
        if let Some(&i) = table.index.get(&key) {
            return Ok(i);
        }
        let known = table
            .files
            .get(&file)
            .copied()
            .filter(|&i| table.get(i).is_some_and(|n| !n.detached));
        let i = match known {
            Some(i) => {
                if let Some(n) = table.get_mut(i) {
                    n.links.push(key.clone());
                }
                i
            }
            None => {
                let mut node = Node::new(dir, key.1.clone(), None);
                node.file = Some(file);
                let i = table.add(node)?;
                table.files.insert(file, i);
                i
            }
        };
        table.name(key, i);
        Ok(i)
    }

    /// Node `idx` is also `name` in `dir` now (a hard link made), whose
    /// scratch file is `file` (device, inode).
    pub(super) fn link(&self, idx: Index, dir: Index, name: &[u8], file: (u64, u64)) {
        let mut table = self.table.write();
        let key = (dir, Box::<[u8]>::from(name));
        if let Some(old) = table.name(key.clone(), idx) {
            if old != idx {
                table.detach(old);
            }
        }
        table.files.insert(file, idx);
        if let Some(n) = table.get_mut(idx) {
            n.links.push(key);
            n.file = Some(file);
        }
    }

    /// Removes name (`dir`, `name`) from its node; the node is detached
    /// when it has no name left (the name will mean a new file from now
    /// on), else another of its names becomes the one it is found by.
    pub(super) fn detach(&self, dir: Index, name: &[u8]) {
        let mut table = self.table.write();
        let key = (dir, Box::<[u8]>::from(name));
        let Some(i) = table.unname(&key) else {
            return;
        };
        let Some(n) = table.get_mut(i) else {
            return;
        };
        if (n.parent, &n.name) != (key.0, &key.1) {
            n.links.retain(|l| *l != key);
        } else if n.links.is_empty() {
            table.detach(i);
        } else {
            let (p, nm) = n.links.remove(0);
            n.parent = p;
            n.name = nm;
        }
    }

    /// Shows the nodes over `view` instead of the view they were made for
    /// (a commit moved the edits into a layer): each live node's lower
    /// entry is looked up again by its path. Node numbers do not change,
    /// so the kernel's inodes stay valid.
    pub(super) fn rebase(&self, view: &View) {
        let mut table = self.table.write();
        if let Some(a) = table.adopted.as_mut() {
            // A reset keeps the view; a commit moves to another.
            a.same_view = std::ptr::eq(view, &*a.view);
        }
        // Parents first: a node's index says nothing of its depth (indexes
        // are used again, and a moved node keeps its own), so each node's
        // chain of parents not yet done is done from the top down.
        let mut done = vec![false; table.end()];
        if let Some(d) = done.first_mut() {
            *d = true;
        }
        let all: Vec<Index> = table.indexes().collect();
        let mut chain = Vec::new();
        for i in all {
            let mut at = i;
            while !done.get(at as usize).copied().unwrap_or(true) && chain.len() <= MAX_DEPTH {
                chain.push(at);
                at = table.get(at).map_or(0, |n| n.parent);
            }
            while let Some(j) = chain.pop() {
                let lower = match table.get(j) {
                    Some(n) if !n.detached => table
                        .get(n.parent)
                        .filter(|p| n.parent == 0 || !p.detached)
                        .and_then(|p| p.lower)
                        .and_then(|pl| view.lookup(pl, &n.name)),
                    _ => None,
                };
                if let Some(n) = table.get_mut(j) {
                    n.lower = lower;
                }
                if let Some(d) = done.get_mut(j as usize) {
                    *d = true;
                }
            }
        }
    }

    /// The view adopted, while it still is (not retired).
    pub(super) fn adopted_view(&self) -> Option<Arc<View>> {
        let table = self.table.read();
        let a = table.adopted.as_ref()?;
        (!a.retired).then(|| a.view.clone())
    }

    /// Adopts no more nodes of the view (see [`Adopted::retired`]).
    pub(super) fn stop_adopting(&self) {
        if let Some(a) = self.table.write().adopted.as_mut() {
            a.retired = true;
        }
    }

    /// Each node in use other than the root, with its lower entry.
    pub(super) fn lowers(&self) -> Vec<(Index, Option<NodeId>)> {
        let table = self.table.read();
        table
            .indexes()
            .filter(|&i| i != 0)
            .filter_map(|i| table.get(i).map(|n| (i, n)))
            .filter(|(_, n)| !n.free && !n.detached)
            .map(|(i, n)| (i, n.lower))
            .collect()
    }

    /// The live node at `path` (names from the root), if one was made.
    pub(super) fn find_path(&self, path: &[&[u8]]) -> Option<Index> {
        let table = self.table.read();
        let mut at: Index = 0;
        for name in path {
            at = *table.index.get(&(at, Box::<[u8]>::from(*name)))?;
        }
        Some(at)
    }

    /// Detaches node `idx` (not the root): its name will mean a new file.
    /// It is not freed here even if the kernel holds none of it: a lookup
    /// may be handing it out right now (this comes from a reset, not from
    /// the kernel, which serialises lookups and removals in a directory);
    /// the kernel's forget frees it.
    pub(super) fn detach_node(&self, idx: Index) -> Option<Named> {
        if idx == 0 {
            return None;
        }
        let mut table = self.table.write();
        let (parent, name, links) = {
            let n = table.get_mut(idx).filter(|n| !n.free)?;
            if n.detached {
                return None;
            }
            n.detached = true;
            (n.parent, n.name.clone(), std::mem::take(&mut n.links))
        };
        table.unname(&(parent, name.clone()));
        for l in links {
            table.unname(&l);
        }
        Some((parent, name))
    }

    /// Node `src` is now `new_name` in `new_dir` (what was there is
    /// detached), entirely in the upper directory.
    pub(super) fn moved(
        &self,
        src: Index,
        dir: Index,
        name: &[u8],
        new_dir: Index,
        new_name: &[u8],
    ) {
        let mut table = self.table.write();
        let to: Named = (new_dir, new_name.into());
        let from: Named = (dir, name.into());
        // The new name first: the old one's directory may be freed by its
        // last name going, and it is the new one's parent (a move within it).
        let replaced = table.name(to.clone(), src);
        table.unname(&from);
        if let Some(n) = table.get_mut(src) {
            if (n.parent, &n.name) == (from.0, &from.1) {
                n.parent = to.0;
                n.name = to.1;
            } else if let Some(l) = n.links.iter_mut().find(|l| **l == from) {
                *l = to;
            }
            n.lower = None;
        }
        if let Some(old) = replaced.filter(|&old| old != src) {
            table.detach(old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_delete_churn_keeps_the_table_at_the_names_in_use() {
        let nodes = Nodes::new();
        let dir = nodes.intern(0, b"tmp", None).unwrap();
        for i in 0..100_000u32 {
            let name = format!("t{i}");
            // create (the kernel gets the inode), unlink, then forget
            let idx = nodes.intern(dir, name.as_bytes(), None).unwrap();
            nodes.remember(idx);
            nodes.detach(dir, name.as_bytes());
            assert!(
                nodes.contains(idx, &View::empty()),
                "freed while the kernel holds it"
            );
            nodes.forget(idx, 1);
            assert!(!nodes.contains(idx, &View::empty()));
        }
        assert_eq!(nodes.live(), 2, "root and tmp");
        assert!(nodes.table.read().list.len() <= 3);
    }

    #[test]
    fn a_name_listed_but_never_given_to_the_kernel_goes_with_its_name() {
        let nodes = Nodes::new();
        let idx = nodes.intern(0, b"listed", None).unwrap();
        nodes.detach(0, b"listed");
        assert!(!nodes.contains(idx, &View::empty()));
        // Its index is a new file's now, and that file is found by name.
        let again = nodes.intern(0, b"new", None).unwrap();
        assert_eq!(again, idx);
        assert!(nodes.is_named(again, 0, b"new"));
        assert!(!nodes.is_named(again, 0, b"listed"));
    }

    #[test]
    fn a_node_with_names_under_it_or_lookups_left_is_kept() {
        let nodes = Nodes::new();
        let dir = nodes.intern(0, b"d", None).unwrap();
        let child = nodes.intern(dir, b"f", None).unwrap();
        nodes.remember(dir);
        // A reset detaches the directory; its child's name is still in
        // the index under it.
        nodes.detach_node(dir);
        nodes.forget(dir, 1);
        assert!(
            nodes.contains(dir, &View::empty()),
            "a parent of a name is kept"
        );
        // Two lookups, one forgotten: still held.
        let f = nodes.intern(0, b"g", None).unwrap();
        nodes.remember(f);
        nodes.remember(f);
        nodes.detach(0, b"g");
        nodes.forget(f, 1);
        assert!(nodes.contains(f, &View::empty()));
        nodes.forget(f, 5);
        assert!(!nodes.contains(f, &View::empty()));
        // A forget of a freed or unknown node does nothing.
        nodes.forget(f, 1);
        nodes.forget(999, 1);
        assert!(nodes.contains(child, &View::empty()));
    }

    #[test]
    fn a_full_table_is_enospc_not_a_wrapped_inode() {
        let nodes = Nodes::with_limit(3);
        nodes.intern(0, b"a", None).unwrap();
        nodes.intern(0, b"b", None).unwrap();
        assert_eq!(nodes.intern(0, b"c", None), Err(Errno::ENOSPC));
        // A name already made is still found, and a freed index is used.
        assert!(nodes.intern(0, b"a", None).is_ok());
        nodes.detach(0, b"b");
        assert!(nodes.intern(0, b"c", None).is_ok());
    }

    #[test]
    fn a_hard_linked_file_lives_while_any_name_or_lookup_does() {
        let nodes = Nodes::new();
        let f = nodes.intern_file(0, b"a", 2, (1, 7)).unwrap();
        assert_eq!(nodes.intern_file(0, b"b", 2, (1, 7)).unwrap(), f);
        nodes.remember(f);
        nodes.detach(0, b"a");
        assert!(nodes.is_named(f, 0, b"b"));
        nodes.detach(0, b"b");
        nodes.forget(f, 1);
        assert!(!nodes.contains(f, &View::empty()));
        // The file's identity no longer leads to the freed node.
        let g = nodes.intern_file(0, b"c", 2, (1, 7)).unwrap();
        assert!(nodes.is_named(g, 0, b"c"));
    }

    #[test]
    fn a_move_renames_and_frees_what_it_replaced() {
        let nodes = Nodes::new();
        let a = nodes.intern(0, b"a", None).unwrap();
        let b = nodes.intern(0, b"b", None).unwrap();
        nodes.moved(a, 0, b"a", 0, b"b");
        assert!(nodes.is_named(a, 0, b"b"));
        assert!(
            !nodes.contains(b, &View::empty()),
            "the replaced node, never looked up"
        );
        assert_eq!(nodes.find_path(&[b"b"]), Some(a));
        assert_eq!(nodes.find_path(&[b"a"]), None);
    }
}
