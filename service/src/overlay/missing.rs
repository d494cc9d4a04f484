//! The names an editable runtime told the kernel are missing (negative
//! entries, which the kernel caches for [`crate::fs::ops`]'s short
//! lifetime): a compiler searching its include path, or Python its
//! finders, asks for the same missing names again and again. A reset
//! makes names appear behind the kernel's back (a discarded whiteout, a
//! new stack); those it finds here are the ones the kernel must forget.
//!
//! Bounded: past [`MAX_MISSING`] names, a missing name is answered
//! without caching (as before there was this table) until a reset
//! empties it.

use std::collections::HashSet;

use parking_lot::Mutex;

use super::Index;

/// At most this many names are remembered (about 100 bytes each).
pub(super) const MAX_MISSING: usize = 65_536;

/// Names (directory, name) a negative entry was given for.
#[derive(Debug, Default)]
pub(super) struct Missing {
    names: Mutex<HashSet<(Index, Box<[u8]>)>>,
}

impl Missing {
    /// Records that `name` in `dir` was answered missing; false if the
    /// table is full (then it must be answered without caching).
    pub(super) fn remember(&self, dir: Index, name: &[u8]) -> bool {
        let mut names = self.names.lock();
        if names.len() >= MAX_MISSING {
            return names.contains(&(dir, name.into()));
        }
        names.insert((dir, name.into()));
        true
    }

    /// `name` in `dir` exists now, made through the kernel (which knows).
    pub(super) fn made(&self, dir: Index, name: &[u8]) {
        let mut names = self.names.lock();
        if !names.is_empty() {
            names.remove(&(dir, name.into()) as &(Index, Box<[u8]>));
        }
    }

    /// Takes out the names `now` finds shown (`Some(true)`), and forgets
    /// those whose directory is gone (`None`).
    pub(super) fn take_found(
        &self,
        mut now: impl FnMut(Index, &[u8]) -> Option<bool>,
    ) -> Vec<(Index, Box<[u8]>)> {
        let mut found = Vec::new();
        self.names
            .lock()
            .retain(|(dir, name)| match now(*dir, name) {
                Some(true) => {
                    found.push((*dir, name.clone()));
                    false
                }
                Some(false) => true,
                None => false,
            });
        found
    }

    /// How many names are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.names.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_names_are_taken_made_ones_forgotten_and_the_table_is_bounded() {
        let m = Missing::default();
        assert!(m.remember(1, b"a"));
        assert!(m.remember(1, b"b"));
        assert!(m.remember(2, b"a"));
        m.made(1, b"b");
        assert_eq!(m.len(), 2);
        assert!(m.remember(5, b"gone"));
        let found = m.take_found(|dir, name| (dir != 5).then_some(dir == 2 && name == b"a"));
        assert_eq!(found, vec![(2, b"a".to_vec().into_boxed_slice())]);
        assert_eq!(m.len(), 1, "found and gone are out");
        for i in 0..MAX_MISSING {
            m.remember(3, format!("n{i}").as_bytes());
        }
        assert_eq!(m.len(), MAX_MISSING);
        assert!(!m.remember(4, b"new"), "full: answered without caching");
        assert!(m.remember(1, b"a"), "known already: still cached");
    }
}
