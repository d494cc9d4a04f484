//! Changes to a running runtime: commit, reset, a new stack, edits on
//! or off, edits that outlive it. Each changes the runtime through the
//! registry (which holds its processes' operations off meanwhile), then
//! writes both records from the result with one [`Manager::persist`].

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Manager;
use crate::durable::{self, DurableError};
use crate::repo::commit;
use crate::repo::tags::{TagAuthor, TagSpec};
use crate::repo::Digest;
use crate::runtimes::{Editable, Restack, Runtime};
use crate::stack;

/// Why a change of a running runtime failed. Each leaves the runtime as
/// it was, except [`ChangeError::NotEmptied`] (committed, edits kept).
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// It ended while the change was asked for.
    #[error("no runtime named '{}'", spfs_shared::display::quoted(.0))]
    Ended(String),
    /// Commit or reset of a runtime without edits.
    #[error("runtime '{0}' is read-only; make it editable with 'spfs edit' inside it, or start it with --edit")]
    ReadOnly(String),
    /// The stack to change to could not be loaded.
    #[error(transparent)]
    Repo(#[from] crate::repo::Error),
    /// Its edits cannot go where a durable runtime of its name keeps them.
    #[error(transparent)]
    Durable(#[from] DurableError),
    /// Writing the layer (or a tag) failed; nothing changed.
    #[error("commit of runtime '{runtime}' failed: {source}")]
    Commit {
        /// The runtime.
        runtime: String,
        /// Why.
        #[source]
        source: crate::repo::Error,
    },
    /// The layer was made, but its edits are still in the scratch.
    #[error("committed {digest}, but the scratch directory {path} could not be emptied: {source}")]
    NotEmptied {
        /// What was committed.
        digest: Digest,
        /// The scratch directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Discarding edits failed part-way.
    #[error("reset of runtime '{runtime}' failed: {source}")]
    Reset {
        /// The runtime.
        runtime: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The runtime could not be made editable, read-only again, or durable.
    #[error("cannot change whether runtime '{runtime}' is editable: {source}")]
    Edit {
        /// The runtime.
        runtime: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// What a commit makes (see [`Manager::commit`]).
#[derive(Debug, Default)]
pub struct Commit {
    /// Tags to point at what is made (written only once it loads).
    pub tags: Vec<TagSpec>,
    /// Who tags it; `None`: the runtime's user, never the service's
    /// account (which may be root serving several users).
    pub author: Option<String>,
    /// Files hashed and written at once; `None`: the default.
    pub max_blobs: Option<usize>,
    /// A platform of the whole new stack instead of the new layer.
    pub platform: bool,
}

/// What a commit made.
#[derive(Debug)]
pub struct Committed {
    /// The layer or platform.
    pub digest: Digest,
    /// Tags that pointed elsewhere before: (tag, its previous target).
    pub moved: Vec<(String, String)>,
}

impl Manager {
    /// Commits the edits of `rt` as a layer (or a platform of its new
    /// stack): the runtime goes on over its stack plus the new layer, its
    /// scratch emptied, and its records say so. A commit that fails
    /// writes no tag and changes nothing.
    pub fn commit(&self, rt: &Arc<Runtime>, c: Commit) -> Result<Committed, ChangeError> {
        let ed = editable(rt)?;
        let repos = rt.repos.clone();
        let author = TagAuthor(c.author.unwrap_or_else(|| {
            let (user, host) = durable::author(rt.uid);
            format!("{user}@{host}")
        }));
        let upper = ed.scratch().upper_path().to_owned();
        let blobs = c.max_blobs.unwrap_or_else(commit::default_concurrency);
        let committed = self.runtimes.commit(rt, ed, |overlay| {
            let repo = repos.primary();
            let layer = commit::commit_scratch_with(repo, &upper, overlay.lower(), blobs)?.layer;
            let mut stack = rt.stack();
            stack.push(layer);
            let digest = if c.platform {
                commit::commit_platform(repo, stack.clone())?
            } else {
                layer
            };
            // The new stack must load before any tag names it.
            let view = stack::view(&repos, &stack)?;
            let moved = repo.push_tags(&c.tags, digest, &author)?;
            Ok((Committed { digest, moved }, view, stack))
        });
        let (committed, emptied) = committed.map_err(|source| {
            // No edits is an answer to the user, not a failure of the service.
            if matches!(source, crate::repo::Error::NothingToCommit) {
                tracing::info!(runtime = %rt.name, "nothing to commit");
            } else {
                tracing::error!(runtime = %rt.name, error = %source, "commit failed");
            }
            ChangeError::Commit {
                runtime: rt.name.clone(),
                source,
            }
        })?;
        // The new layer is kept by the runtime's records from now on (a
        // record that cannot follow is logged: the commit itself is done).
        let _ = self.persist(rt);
        emptied.map_err(|source| ChangeError::NotEmptied {
            digest: committed.digest,
            path: ed.scratch().root().to_owned(),
            source,
        })?;
        tracing::info!(runtime = %rt.name, digest = %committed.digest, "committed");
        Ok(committed)
    }

    /// Discards the edits of `rt`: all of them when `paths` is empty,
    /// else those under each path (relative to the mount); the paths
    /// that had none.
    pub fn reset<'p>(
        &self,
        rt: &Arc<Runtime>,
        paths: &'p [(String, PathBuf)],
    ) -> Result<Vec<&'p str>, ChangeError> {
        let ed = editable(rt)?;
        let mut unchanged = Vec::new();
        self.runtimes
            .reset(rt, ed, |scratch| {
                if paths.is_empty() {
                    return scratch.clear();
                }
                for (given, rel) in paths {
                    if !scratch.reset_path(rel)? {
                        unchanged.push(given.as_str());
                    }
                }
                Ok(())
            })
            .map_err(|source| ChangeError::Reset {
                runtime: rt.name.clone(),
                source,
            })?;
        Ok(unchanged)
    }

    /// `reset -r SPEC`: `rt` rebuilt on the stack `spec` names (empty: no
    /// layers at all), its edits discarded (see `Runtimes::restack`);
    /// both records follow.
    pub fn restack(&self, rt: &Arc<Runtime>, spec: &str) -> Result<(), ChangeError> {
        let stack = if spec.is_empty() {
            Vec::new()
        } else {
            stack::resolve(&rt.repos, spec)?
        };
        let view = self.runtimes.view_of(&rt.repos, &stack)?;
        let to = Restack {
            spec: spec.to_owned(),
            stack,
            view,
        };
        self.runtimes
            .restack(rt, to)
            .map_err(|source| self.failed(rt, |runtime| ChangeError::Reset { runtime, source }))?;
        let _ = self.persist_with(
            rt,
            |r| {
                if let Some(extras) = r.extras.as_mut() {
                    extras.env_spec = spec.to_owned();
                }
            },
            |r| r.env_spec = spec.to_owned(),
        );
        tracing::info!(runtime = %rt.name, spec, "runtime rebuilt on another stack");
        Ok(())
    }

    /// `edit --keep-runtime`: the edits of `rt` outlive it, where a
    /// durable runtime of its name keeps them (which must not hold
    /// another's); both records say it is durable. False if it already was.
    pub fn make_durable(&self, rt: &Arc<Runtime>) -> Result<bool, ChangeError> {
        let repo = rt.repos.primary();
        durable::check_edits_path(repo, &rt.name)?;
        let edits = repo.durable_dir(&rt.name);
        let base = edits
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| repo.root().to_owned());
        if !rt.is_durable() && edits.exists() {
            return Err(DurableError::EditsInUse(edits).into());
        }
        let made = std::fs::create_dir_all(&base)
            .and_then(|()| self.runtimes.make_durable(rt, &base, &rt.name));
        let changed = made
            .map_err(|source| self.failed(rt, |runtime| ChangeError::Edit { runtime, source }))?;
        if changed {
            let read_only = rt.editable().is_some_and(|e| e.scratch().read_only());
            let _ = self.persist_with(
                rt,
                |r| {
                    r.config.durable = true;
                    r.config.upper_dir = edits.join("upper");
                    r.config.work_dir = edits.join("work");
                },
                |r| {
                    r.durable = true;
                    r.edits_dir = Some(edits.clone());
                    r.editable = true;
                    r.read_only = read_only;
                },
            );
        }
        Ok(changed)
    }

    /// `edit` / `edit --off` (see `Runtimes::set_editable`). A runtime
    /// that started read-only gets its edits where an editable one of its
    /// kind has them: beside its record, or (durable) in its repository's
    /// `durable_edits/`. Both records say what it is now; false if it
    /// already was as asked.
    pub fn set_editable(&self, rt: &Arc<Runtime>, editable: bool) -> Result<bool, ChangeError> {
        let edits = if rt.is_durable() {
            Some(rt.repos.primary().durable_dir(&rt.name))
        } else {
            rt.record_dir().map(Path::to_owned)
        };
        let changed = self
            .runtimes
            .set_editable(rt, editable, || {
                let dir = edits.as_deref().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::Unsupported, "it has no record directory")
                })?;
                crate::scratch::Scratch::open_as(dir, false)
            })
            .map_err(|source| self.failed(rt, |runtime| ChangeError::Edit { runtime, source }))?;
        if changed {
            let has_edits = rt.editable().is_some();
            let _ = self.persist_with(
                rt,
                |r| r.status.editable = editable,
                |r| {
                    r.editable = has_edits;
                    r.read_only = has_edits && !editable;
                },
            );
        }
        Ok(changed)
    }

    /// Why a change of `rt` failed: it ended meanwhile, or `failed`
    /// (given the runtime's name).
    fn failed(&self, rt: &Runtime, failed: impl FnOnce(String) -> ChangeError) -> ChangeError {
        match self.runtimes.get(rt.id) {
            None => ChangeError::Ended(rt.name.clone()),
            Some(_) => failed(rt.name.clone()),
        }
    }
}

/// The edits of `rt`, which a commit or a reset needs.
fn editable(rt: &Runtime) -> Result<&Editable, ChangeError> {
    rt.editable()
        .ok_or_else(|| ChangeError::ReadOnly(rt.name.clone()))
}
