//! From what a client sends (repository locations, an env spec) to what a
//! runtime shows: the repositories, the stack as digests, the merged view.
//! Stacks stay digests from here on (records, commits, restarts).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;
use spfs_shared::protocol::RepositoryLocation;

use crate::repo::tags::TagAuthor;
use crate::repo::{Digest, EnvSpec, Error, FsRepository, RepositorySet, Result, View};

/// True if `root` names a remote (payloads are fetched from it), not a
/// directory.
pub fn is_remote(root: &str) -> bool {
    root.starts_with("grpc://")
}

/// Shared by every runtime: one download per payload, a bound on
/// downloads at once (`SPFS_REMOTE_DOWNLOADS`, 4 by default).
fn fetcher() -> &'static spfs_remote::PayloadFetcher {
    static FETCHER: OnceLock<spfs_remote::PayloadFetcher> = OnceLock::new();
    FETCHER.get_or_init(|| {
        let max = std::env::var("SPFS_REMOTE_DOWNLOADS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(4);
        spfs_remote::PayloadFetcher::new(max)
    })
}

/// Shared by every runtime: payload files are judged by their content
/// once each (see `repo::verify`).
fn verifier() -> Arc<crate::repo::PayloadVerifier> {
    static VERIFIER: OnceLock<Arc<crate::repo::PayloadVerifier>> = OnceLock::new();
    VERIFIER.get_or_init(Default::default).clone()
}

/// Opens `locations`, the primary first. Remotes among them are where
/// payloads no directory holds are fetched from, when first opened.
pub fn open_repositories(locations: &[RepositoryLocation]) -> Result<RepositorySet> {
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
        opened.push(FsRepository::open(&loc.root)?.with_tag_namespace(loc.tag_namespace.clone()));
    }
    if opened.is_empty() {
        return Err(Error::Config {
            source_name: "mount request".into(),
            reason: "no repository given".into(),
        });
    }
    let primary = opened.remove(0);
    let set = RepositorySet::new(primary, opened, TagAuthor("spfs-fuse-macos".into()))
        .with_verifier(verifier());
    Ok(if remotes.is_empty() {
        set
    } else {
        set.with_payload_source(fetcher().source(remotes))
    })
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

/// Everything a runtime needs from its request: repositories and stack.
pub fn load(locations: &[RepositoryLocation], spec: &str) -> Result<(RepositorySet, Vec<Digest>)> {
    let repos = open_repositories(locations)?;
    let stack = resolve(&repos, spec)?;
    Ok((repos, stack))
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
