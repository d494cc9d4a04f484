//! The node table of an overlay: which (parent, name) each inode stands
//! for, and the lower entry it shows or merges with. A file with several
//! hard links in the scratch is one node with several names, so both
//! names show one inode, as on any disk.

use std::collections::HashMap;

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
}

#[derive(Debug, Default)]
struct Table {
    list: Vec<Node>,
    index: HashMap<(Index, Box<[u8]>), Index>,
    /// Scratch files with several links: (device, inode) → their node.
    files: HashMap<(u64, u64), Index>,
}

/// A node's parent and its name there.
pub(super) type Named = (Index, Box<[u8]>);

/// Deeper than this is a corrupt table, not a tree.
const MAX_DEPTH: usize = 4096;

/// The nodes of one overlay; index 0 is the root.
#[derive(Debug)]
pub(super) struct Nodes {
    table: RwLock<Table>,
}

impl Nodes {
    pub(super) fn new() -> Self {
        let root = Node {
            parent: 0,
            name: Box::default(),
            links: Vec::new(),
            lower: Some(NodeId::ROOT),
            detached: false,
        };
        Nodes {
            table: RwLock::new(Table {
                list: vec![root],
                index: HashMap::new(),
                files: HashMap::new(),
            }),
        }
    }

    pub(super) fn contains(&self, idx: Index) -> bool {
        (idx as usize) < self.table.read().list.len()
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

    /// The node for `name` in `dir`, created if needed.
    pub(super) fn intern(&self, dir: Index, name: &[u8], lower: Option<NodeId>) -> Index {
        let key = (dir, Box::<[u8]>::from(name));
        if let Some(&i) = self.table.read().index.get(&key) {
            return i;
        }
        let mut table = self.table.write();
        if let Some(&i) = table.index.get(&key) {
            return i;
        }
        let i = table.list.len() as Index;
        table.list.push(Node {
            parent: dir,
            name: key.1.clone(),
            links: Vec::new(),
            lower,
            detached: false,
        });
        table.index.insert(key, i);
        i
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
    ) -> Index {
        if nlink <= 1 {
            return self.intern(dir, name, None);
        }
        let key = (dir, Box::<[u8]>::from(name));
        if let Some(&i) = self.table.read().index.get(&key) {
            return i;
        }
        let mut table = self.table.write();
        if let Some(&i) = table.index.get(&key) {
            return i;
        }
        let known = table
            .files
            .get(&file)
            .copied()
            .filter(|&i| table.list.get(i as usize).is_some_and(|n| !n.detached));
        if let Some(i) = known {
            table.index.insert(key.clone(), i);
            if let Some(n) = table.list.get_mut(i as usize) {
                n.links.push(key);
            }
            return i;
        }
        drop(table);
        let i = self.intern(dir, name, None);
        self.table.write().files.insert(file, i);
        i
    }

    /// Node `idx` is also `name` in `dir` now (a hard link made), whose
    /// scratch file is `file` (device, inode).
    pub(super) fn link(&self, idx: Index, dir: Index, name: &[u8], file: (u64, u64)) {
        let mut table = self.table.write();
        let key = (dir, Box::<[u8]>::from(name));
        if let Some(old) = table.index.insert(key.clone(), idx) {
            if old != idx {
                if let Some(n) = table.list.get_mut(old as usize) {
                    n.detached = true;
                }
            }
        }
        table.files.insert(file, idx);
        if let Some(n) = table.list.get_mut(idx as usize) {
            n.links.push(key);
        }
    }

    /// Removes name (`dir`, `name`) from its node; the node is detached
    /// when it has no name left (the name will mean a new file from now
    /// on), else another of its names becomes the one it is found by.
    pub(super) fn detach(&self, dir: Index, name: &[u8]) {
        let mut table = self.table.write();
        let key = (dir, Box::<[u8]>::from(name));
        let Some(i) = table.index.remove(&key) else {
            return;
        };
        let Some(n) = table.list.get_mut(i as usize) else {
            return;
        };
        if (n.parent, &n.name) == (key.0, &key.1) {
            if n.links.is_empty() {
                n.detached = true;
            } else {
                let (p, nm) = n.links.remove(0);
                n.parent = p;
                n.name = nm;
            }
        } else {
            n.links.retain(|l| *l != key);
        }
    }

    /// Shows the nodes over `view` instead of the view they were made for
    /// (a commit moved the edits into a layer): each live node's lower
    /// entry is looked up again by its path. Node numbers do not change,
    /// so the kernel's inodes stay valid.
    pub(super) fn rebase(&self, view: &View) {
        let mut table = self.table.write();
        // A parent is always interned before its children: one pass in
        // index order sees each parent's new entry first.
        for i in 1..table.list.len() {
            let (parent, detached) = (table.list[i].parent, table.list[i].detached);
            let parent_lower = if detached {
                None
            } else {
                table.list.get(parent as usize).and_then(|p| {
                    if p.detached && parent != 0 {
                        None
                    } else {
                        p.lower
                    }
                })
            };
            let lower = parent_lower.and_then(|pl| view.lookup(pl, &table.list[i].name));
            table.list[i].lower = lower;
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
    pub(super) fn detach_node(&self, idx: Index) -> Option<Named> {
        if idx == 0 {
            return None;
        }
        let mut table = self.table.write();
        let (parent, name, links) = {
            let n = table.list.get_mut(idx as usize)?;
            if n.detached {
                return None;
            }
            n.detached = true;
            (n.parent, n.name.clone(), std::mem::take(&mut n.links))
        };
        table.index.remove(&(parent, name.clone()));
        for l in links {
            table.index.remove(&l);
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
        if let Some(old) = table.index.remove(&(new_dir, Box::<[u8]>::from(new_name))) {
            if let Some(n) = table.list.get_mut(old as usize) {
                n.detached = true;
            }
        }
        let from = (dir, Box::<[u8]>::from(name));
        table.index.remove(&from);
        if let Some(n) = table.list.get_mut(src as usize) {
            let to: Named = (new_dir, new_name.into());
            if (n.parent, &n.name) == (from.0, &from.1) {
                n.parent = to.0;
                n.name = to.1;
            } else if let Some(l) = n.links.iter_mut().find(|l| **l == from) {
                *l = to;
            }
            n.lower = None;
        }
        table.index.insert((new_dir, new_name.into()), src);
    }
}
