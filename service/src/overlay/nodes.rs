//! The node table of an overlay: which (parent, name) each inode stands
//! for, and the lower entry it shows or merges with. A file with several
//! hard links in the scratch is one node with several names, so both
//! names show one inode, as on any disk.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

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

#[derive(Debug, Default)]
struct Table {
    list: Vec<Node>,
    index: HashMap<(Index, Box<[u8]>), Index>,
    /// Scratch files with several links: (device, inode) → their node.
    files: HashMap<(u64, u64), Index>,
    /// Indexes of freed nodes, used again before the list grows.
    free: Vec<Index>,
    /// At most this many nodes (their inode numbers must fit in 32 bits).
    limit: usize,
}

impl Table {
    /// Names `key` node `idx`; returns the node it named before, if any.
    fn name(&mut self, key: Named, idx: Index) -> Option<Index> {
        let parent = key.0;
        let old = self.index.insert(key, idx);
        if old.is_none() {
            if let Some(p) = self.list.get_mut(parent as usize) {
                p.children = p.children.saturating_add(1);
            }
        }
        old
    }

    /// Removes name `key`; returns the node it named. Its parent may be
    /// freed (see [`Table::free_if_unused`]).
    fn unname(&mut self, key: &Named) -> Option<Index> {
        let idx = self.index.remove(key)?;
        if let Some(p) = self.list.get_mut(key.0 as usize) {
            p.children = p.children.saturating_sub(1);
        }
        self.free_if_unused(key.0);
        Some(idx)
    }

    /// Frees node `idx` once nothing can reach it: detached (no name
    /// leads to it), the kernel holds no inode of it, and no name has it
    /// as parent. Its index is then used again for a new node.
    fn free_if_unused(&mut self, idx: Index) {
        let Some(n) = self.list.get_mut(idx as usize) else {
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
        if let Some(n) = self.list.get_mut(idx as usize) {
            n.detached = true;
        }
        self.free_if_unused(idx);
    }

    /// A new node; ENOSPC when the table is full.
    fn add(&mut self, node: Node) -> Result<Index, Errno> {
        if let Some(i) = self.free.pop() {
            if let Some(slot) = self.list.get_mut(i as usize) {
                *slot = node;
                return Ok(i);
            }
        }
        if self.list.len() >= self.limit {
            return Err(Errno::ENOSPC);
        }
        let i = Index::try_from(self.list.len()).map_err(|_| Errno::ENOSPC)?;
        self.list.push(node);
        Ok(i)
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

    pub(super) fn contains(&self, idx: Index) -> bool {
        self.table
            .read()
            .list
            .get(idx as usize)
            .is_some_and(|n| !n.free)
    }

    /// How many nodes are in use (the root included).
    pub(super) fn live(&self) -> usize {
        let table = self.table.read();
        table.list.len() - table.free.len()
    }

    /// The kernel was given node `idx`'s inode once more (a lookup, a
    /// create, a readdirplus entry).
    pub(super) fn remember(&self, idx: Index) {
        if let Some(n) = self.table.read().list.get(idx as usize) {
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
            let Some(n) = table.list.get(idx as usize).filter(|n| !n.free) else {
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
        table.list.get(idx as usize).is_some_and(|n| {
            !n.detached
                && ((n.parent == dir && &*n.name == name)
                    || n.links.iter().any(|(p, l)| *p == dir && &**l == name))
        })
    }

    pub(super) fn parent(&self, idx: Index) -> Index {
        self.table
            .read()
            .list
            .get(idx as usize)
            .map_or(0, |n| n.parent)
    }

    pub(super) fn lower(&self, idx: Index) -> Option<NodeId> {
        self.table
            .read()
            .list
            .get(idx as usize)
            .and_then(|n| n.lower)
    }

    /// The names from the root down to node `idx` (empty for the root);
    /// ESTALE once the node or a parent is detached.
    pub(super) fn path(&self, idx: Index) -> Result<Vec<Box<[u8]>>, Errno> {
        let table = self.table.read();
        let mut names = Vec::new();
        let mut at = idx;
        while at != 0 {
            let n = table.list.get(at as usize).ok_or(Errno::ESTALE)?;
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
        let n = table.list.get(idx as usize).ok_or(Errno::ESTALE)?;
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
        let i = table.add(Node::new(dir, key.1.clone(), lower))?;
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
            .filter(|&i| table.list.get(i as usize).is_some_and(|n| !n.detached));
        let i = match known {
            Some(i) => {
                if let Some(n) = table.list.get_mut(i as usize) {
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
        if let Some(n) = table.list.get_mut(idx as usize) {
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
        let Some(n) = table.list.get_mut(i as usize) else {
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
        let list = &mut table.list;
        // Parents first: a node's index says nothing of its depth (indexes
        // are used again, and a moved node keeps its own), so each node's
        // chain of parents not yet done is done from the top down.
        let mut done = vec![false; list.len()];
        if let Some(d) = done.first_mut() {
            *d = true;
        }
        let mut chain = Vec::new();
        for i in 1..list.len() {
            let mut at = i;
            while !done.get(at).copied().unwrap_or(true) && chain.len() <= MAX_DEPTH {
                chain.push(at);
                at = list.get(at).map_or(0, |n| n.parent as usize);
            }
            while let Some(j) = chain.pop() {
                let lower = match list.get(j) {
                    Some(n) if !n.detached => list
                        .get(n.parent as usize)
                        .filter(|p| n.parent == 0 || !p.detached)
                        .and_then(|p| p.lower)
                        .and_then(|pl| view.lookup(pl, &n.name)),
                    _ => None,
                };
                if let Some(n) = list.get_mut(j) {
                    n.lower = lower;
                }
                if let Some(d) = done.get_mut(j) {
                    *d = true;
                }
            }
        }
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
            let n = table.list.get_mut(idx as usize).filter(|n| !n.free)?;
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
        if let Some(n) = table.list.get_mut(src as usize) {
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
            assert!(nodes.contains(idx), "freed while the kernel holds it");
            nodes.forget(idx, 1);
            assert!(!nodes.contains(idx));
        }
        assert_eq!(nodes.live(), 2, "root and tmp");
        assert!(nodes.table.read().list.len() <= 3);
    }

    #[test]
    fn a_name_listed_but_never_given_to_the_kernel_goes_with_its_name() {
        let nodes = Nodes::new();
        let idx = nodes.intern(0, b"listed", None).unwrap();
        nodes.detach(0, b"listed");
        assert!(!nodes.contains(idx));
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
        assert!(nodes.contains(dir), "a parent of a name is kept");
        // Two lookups, one forgotten: still held.
        let f = nodes.intern(0, b"g", None).unwrap();
        nodes.remember(f);
        nodes.remember(f);
        nodes.detach(0, b"g");
        nodes.forget(f, 1);
        assert!(nodes.contains(f));
        nodes.forget(f, 5);
        assert!(!nodes.contains(f));
        // A forget of a freed or unknown node does nothing.
        nodes.forget(f, 1);
        nodes.forget(999, 1);
        assert!(nodes.contains(child));
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
        assert!(!nodes.contains(f));
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
        assert!(!nodes.contains(b), "the replaced node, never looked up");
        assert_eq!(nodes.find_path(&[b"b"]), Some(a));
        assert_eq!(nodes.find_path(&[b"a"]), None);
    }
}
