//! From what a client sends (repository locations, an env spec) to what a
//! runtime shows: the repositories, the stack as digests, the merged view.
//! Stacks stay digests from here on (records, commits, restarts).

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use spfs_shared::protocol::RepositoryLocation;

use crate::repo::tags::TagAuthor;
use crate::repo::{Digest, EnvSpec, Error, FsRepository, RepositorySet, Result, View};

/// True if `root` names a remote (payloads are fetched from it), not a
/// directory.
pub fn is_remote(root: &str) -> bool {
    root.starts_with("grpc://")
}

/// What the repositories of every runtime of a service share: payloads
/// fetched from remotes once each, at most a set number at once, and
/// payload files judged by their content once each (see `repo::verify`).
#[derive(Debug, Clone)]
pub struct Opener {
    fetcher: spfs_remote::PayloadFetcher,
    verifier: Arc<crate::repo::PayloadVerifier>,
}

impl Opener {
    /// Repositories that download at most `downloads` payloads at once.
    pub fn new(downloads: usize) -> std::io::Result<Self> {
        Ok(Opener {
            fetcher: spfs_remote::PayloadFetcher::new(downloads)?,
            verifier: Arc::default(),
        })
    }

    /// The number of downloads at once the environment asks for
    /// (`SPFS_REMOTE_DOWNLOADS`), 4 by default.
    pub fn downloads_from_env() -> usize {
        std::env::var("SPFS_REMOTE_DOWNLOADS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(4)
    }

    /// Opens `locations`, the primary first. Remotes among them are where
    /// payloads no directory holds are fetched from, when first opened.
    pub fn open(&self, locations: &[RepositoryLocation]) -> Result<RepositorySet> {
        let mut opened = Vec::with_capacity(locations.len());
        let mut remotes = Vec::new();
        for loc in locations {
            if is_remote(&loc.root) {
                let name = loc.remote_name.clone().unwrap_or_else(|| loc.root.clone());
                let remote = spfs_remote::RemoteAddress {
                    name: name.clone(),
                    address: loc.root.clone(),
                };
                remotes.push(spfs_remote::open(&remote).map_err(|e| Error::Config {
                    source_name: format!("remote.{name}"),
                    reason: e.to_string(),
                })?);
                continue;
            }
            opened
                .push(FsRepository::open(&loc.root)?.with_tag_namespace(loc.tag_namespace.clone()));
        }
        if opened.is_empty() {
            return Err(Error::Config {
                source_name: "mount request".into(),
                reason: "no repository given".into(),
            });
        }
        let primary = opened.remove(0);
        let set = RepositorySet::new(primary, opened, TagAuthor("spfs-fuse-macos".into()))
            .with_verifier(self.verifier.clone());
        Ok(if remotes.is_empty() {
            set
        } else {
            set.with_payload_source(self.fetcher.source(remotes))
        })
    }

    /// Everything a runtime needs from its request: repositories and stack.
    pub fn load(
        &self,
        locations: &[RepositoryLocation],
        spec: &str,
    ) -> Result<(RepositorySet, Vec<Digest>)> {
        let repos = self.open(locations)?;
        let stack = resolve(&repos, spec)?;
        Ok((repos, stack))
    }
}

/// The stack `spec` names, bottom-up.
pub fn resolve(repos: &RepositorySet, spec: &str) -> Result<Vec<Digest>> {
    let stack = repos.resolve_stack(&EnvSpec::parse(spec)?)?;
    Ok(stack.into_iter().map(|s| s.digest).collect())
}

/// The merged view of `stack` (layers, manifests or platforms, bottom-up).
pub fn view(repos: &RepositorySet, stack: &[Digest]) -> Result<View> {
    let items = repos.resolve_digests(stack)?;
    View::build(&repos.read_stack_manifests(&items)?)
}

/// Merged views by stack, so that runtimes of the same stack share one
/// (a view holds only names, modes and digests; its payloads are found
/// through each runtime's own repositories). Views are kept only while a
/// runtime uses them.
#[derive(Debug, Default)]
pub struct ViewCache(Mutex<HashMap<Vec<Digest>, Weak<View>>>);

impl ViewCache {
    /// The view of `stack`: one a runtime uses already, or a new one.
    pub fn get_or_build(&self, repos: &RepositorySet, stack: &[Digest]) -> Result<Arc<View>> {
        if let Some(v) = self.0.lock().get(stack).and_then(Weak::upgrade) {
            return Ok(v);
        }
        // Built with no lock held: a large stack takes a while.
        let built = Arc::new(view(repos, stack)?);
        let mut views = self.0.lock();
        if let Some(v) = views.get(stack).and_then(Weak::upgrade) {
            return Ok(v);
        }
        views.retain(|_, w| w.strong_count() > 0);
        views.insert(stack.to_vec(), Arc::downgrade(&built));
        Ok(built)
    }
}

/// The stack's digests as text, bottom-up.
pub fn strings(stack: &[Digest]) -> Vec<String> {
    stack.iter().map(|d| d.to_string()).collect()
}

/// Digests written as text (a record's stack).
pub fn parse(stack: &[String]) -> Result<Vec<Digest>> {
    stack.iter().map(|s| Digest::parse(s)).collect()
}
