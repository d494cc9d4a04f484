//! The primary repository plus read-only secondaries, searched in order, and
//! the resolution of env specs into layer stacks.

use std::path::PathBuf;
use std::sync::Arc;

use super::config::{Config, RemoteLocation};
use super::digest::{Digest, PartialDigest};
use super::env_spec::{EnvSpec, EnvSpecItem};
use super::error::{Error, Result};
use super::object::{Manifest, Object};
use super::storage::FsRepository;
use super::tags::{Tag, TagAuthor, TagSpec};
use super::verify::{Admitted, PayloadCheck, PayloadVerifier};

/// The repositories a user reads from: the primary first.
#[derive(Clone, Debug)]
pub struct RepositorySet {
    repos: Vec<FsRepository>,
    author: TagAuthor,
    fetcher: Option<Arc<dyn PayloadSource>>,
    /// Judges payload files by their content before they are served.
    verifier: Option<Arc<PayloadVerifier>>,
}

/// Where payloads that no repository of a set holds are fetched from (a
/// remote): they are fetched into the primary on first use.
pub trait PayloadSource: Send + Sync + std::fmt::Debug {
    /// Fetches payload `d` into `into`: verified against `d` and stored
    /// atomically, or not at all. Concurrent calls for one digest fetch
    /// it once. The error names the remote and why. `size`, when the
    /// manifest says it, bounds what is accepted (a remote that sends more
    /// is refused).
    fn fetch(&self, d: &Digest, size: Option<u64>, into: &FsRepository) -> Result<()>;

    /// What this source has fetched so far.
    fn progress(&self) -> FetchProgress;
}

/// What a [`PayloadSource`] has fetched so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchProgress {
    /// Fetches running or waiting now.
    pub in_flight: u64,
    /// Payloads fetched.
    pub fetched: u64,
    /// Fetches that failed.
    pub failed: u64,
    /// Bytes received.
    pub bytes: u64,
}

/// One element of a resolved stack: a layer or a bare manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackItem {
    /// The layer (or manifest) digest.
    pub digest: Digest,
    /// The manifest it contributes; `None` for an annotation-only layer.
    pub manifest: Option<Digest>,
}

impl RepositorySet {
    /// A set of explicit repositories (the first is primary).
    pub fn new(primary: FsRepository, secondaries: Vec<FsRepository>, author: TagAuthor) -> Self {
        let mut repos = vec![primary];
        repos.extend(secondaries);
        Self {
            repos,
            author,
            fetcher: None,
            verifier: None,
        }
    }

    /// Payloads opened through this set are served only once `verifier`
    /// found (or is finding) that they hash to their digest.
    pub fn with_verifier(mut self, verifier: Arc<PayloadVerifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Payloads none of these repositories hold are fetched from `source`
    /// into the primary when they are first opened.
    pub fn with_payload_source(mut self, source: Arc<dyn PayloadSource>) -> Self {
        self.fetcher = Some(source);
        self
    }

    /// What the payload source (if any) has fetched so far.
    pub fn fetch_progress(&self) -> Option<FetchProgress> {
        self.fetcher.as_ref().map(|f| f.progress())
    }

    /// True if payloads missing here are fetched from a source (remotes).
    pub fn fetches_payloads(&self) -> bool {
        self.fetcher.is_some()
    }

    /// True if payload `d` is in none of these repositories but can be
    /// fetched: opening it will wait for a download.
    pub fn payload_needs_fetch(&self, d: &Digest) -> bool {
        self.fetcher.is_some() && !self.repos.iter().any(|r| r.has_payload(d))
    }

    /// Fetches payload `d` into the primary if no repository holds it and
    /// there is a source to fetch it from.
    fn fetch_missing(&self, d: &Digest, size: Option<u64>) -> Result<bool> {
        match &self.fetcher {
            Some(f) => f.fetch(d, size, self.primary()).map(|()| true),
            None => Ok(false),
        }
    }

    /// Opens the repositories the config names. The primary is created if
    /// missing, as upstream does; fs remotes must exist.
    pub fn from_config(config: &Config) -> Result<Self> {
        let primary = FsRepository::open_or_create(&config.storage.root)?
            .with_tag_namespace(config.storage.tag_namespace.clone())
            .with_write_format(
                config.storage.digest_strategy,
                config.storage.encoding_format,
            );
        let mut secondaries = Vec::new();
        for remote in &config.remotes {
            match &remote.location {
                RemoteLocation::Fs {
                    path,
                    tag_namespace,
                } => secondaries.push(
                    FsRepository::open(path)
                        .map_err(|e| Error::Config {
                            source_name: format!("remote.{}", remote.name),
                            reason: e.to_string(),
                        })?
                        .with_tag_namespace(tag_namespace.clone()),
                ),
                // Pulled from (spfs-remote), never read in place.
                RemoteLocation::Grpc { .. } => {}
                RemoteLocation::Unsupported(what) => {
                    tracing::info!(remote = %remote.name, %what, "skipping a remote this tool cannot read");
                }
            }
        }
        let author = TagAuthor(format!("{}@{}", config.user.name, config.user.domain));
        Ok(Self::new(primary, secondaries, author))
    }

    /// Opens the repositories of the standard spfs configuration (the
    /// primary created if missing).
    pub fn from_environment() -> Result<Self> {
        Self::from_config(&Config::load()?)
    }

    /// Opens the repositories of the standard spfs configuration, all of
    /// which must exist: for commands that only read, which must never
    /// create a repository where the user may have mistyped a path.
    pub fn existing_from_environment() -> Result<Self> {
        let config = Config::load()?;
        match FsRepository::open(&config.storage.root) {
            Ok(_) => Self::from_config(&config),
            // No local repository yet: the remotes alone can still be read.
            Err(Error::NoRepository(_)) if !config.remotes.is_empty() => {
                Self::remotes_only(&config)
            }
            Err(e) => Err(e),
        }
    }

    /// The fs remotes of `config` alone, the first as primary (for
    /// reading only).
    fn remotes_only(config: &Config) -> Result<Self> {
        let mut opened = Vec::new();
        for remote in &config.remotes {
            if let RemoteLocation::Fs {
                path,
                tag_namespace,
            } = &remote.location
            {
                opened.push(
                    FsRepository::open(path)
                        .map_err(|e| Error::Config {
                            source_name: format!("remote.{}", remote.name),
                            reason: e.to_string(),
                        })?
                        .with_tag_namespace(tag_namespace.clone()),
                );
            }
        }
        if opened.is_empty() {
            return Err(Error::NoRepository(config.storage.root.clone()));
        }
        let primary = opened.remove(0);
        let author = TagAuthor(format!("{}@{}", config.user.name, config.user.domain));
        Ok(Self::new(primary, opened, author))
    }

    /// The repository new objects and tags are written to.
    #[allow(clippy::indexing_slicing)] // never empty: `new` takes the primary
    pub fn primary(&self) -> &FsRepository {
        &self.repos[0]
    }

    /// All repositories, primary first.
    pub fn all(&self) -> &[FsRepository] {
        &self.repos
    }

    /// Who new tags are attributed to.
    pub fn author(&self) -> &TagAuthor {
        &self.author
    }

    /// `reference` names nothing in these repositories.
    fn unknown(&self, reference: String) -> Error {
        Error::UnknownReference {
            reference,
            searched: self.searched(),
        }
    }

    fn searched(&self) -> String {
        let roots: Vec<String> = self
            .repos
            .iter()
            .map(|r| r.root().display().to_string())
            .collect();
        roots.join(", ")
    }

    /// Reads the object `d` from the first repository that has it.
    pub fn read_object(&self, d: &Digest) -> Result<Object> {
        for r in &self.repos {
            if let Some(o) = r.read_object(d)? {
                return Ok(o);
            }
        }
        Err(Error::UnknownObject {
            digest: *d,
            searched: self.searched(),
        })
    }

    /// Reads `d`, which must be a manifest.
    pub fn read_manifest(&self, d: &Digest) -> Result<Manifest> {
        match self.read_object(d)? {
            Object::Manifest(m) => Ok(m),
            other => Err(Error::WrongKind {
                reference: d.to_string(),
                found: other.kind().name(),
                expected: "a manifest",
            }),
        }
    }

    /// The path of payload `d` in the first repository that has it.
    pub fn payload_path(&self, d: &Digest) -> Result<PathBuf> {
        let found = || {
            self.repos
                .iter()
                .map(|r| r.payload_path(d))
                .find(|p| p.exists())
        };
        if let Some(p) = found() {
            return Ok(p);
        }
        if self.fetch_missing(d, None)? {
            if let Some(p) = found() {
                return Ok(p);
            }
        }
        Err(Error::MissingPayload {
            digest: *d,
            searched: self.searched(),
        })
    }

    /// Opens payload `d` for a file whose manifest records `size` bytes:
    /// a payload of another size (truncated, replaced) is refused rather
    /// than served short or long.
    ///
    /// With a verifier ([`RepositorySet::with_verifier`]), its content is
    /// judged first: a file that does not hash to `d` is refused (each
    /// file is hashed once; see [`crate::verify`]).
    pub fn open_payload_sized(&self, d: &Digest, size: u64) -> Result<std::fs::File> {
        self.open_payload_judged(d, size, true).map(|(f, _)| f)
    }

    /// Opens payload `d` as [`RepositorySet::open_payload_sized`] does, but
    /// a large file not judged yet is served at once, hashed in the
    /// background: the check returned (`Some`) says when it is found
    /// wrong, and the reader then fails its reads.
    pub fn open_payload_checked(
        &self,
        d: &Digest,
        size: u64,
    ) -> Result<(std::fs::File, Option<Arc<PayloadCheck>>)> {
        self.open_payload_judged(d, size, false)
    }

    fn open_payload_judged(
        &self,
        d: &Digest,
        size: u64,
        now: bool,
    ) -> Result<(std::fs::File, Option<Arc<PayloadCheck>>)> {
        let f = self.open_payload_sized_unverified(d, size)?;
        let Some(verifier) = &self.verifier else {
            return Ok((f, None));
        };
        let admitted = verifier
            .admit(d, &f, now)
            .map_err(|e| Error::io("verify payload", self.payload_location(d))(e))?;
        match admitted {
            Admitted::Good => Ok((f, None)),
            Admitted::Pending(check) => Ok((f, Some(check))),
            Admitted::Bad => Err(Error::PayloadMismatch {
                digest: *d,
                path: self.payload_location(d),
            }),
        }
    }

    /// True if [`RepositorySet::open_payload_sized`] of a payload of
    /// `size` bytes may hash more than a request thread should wait for
    /// (a first open, or one after the file changed): the service then
    /// finishes it off the thread.
    pub fn open_may_hash_long(&self, size: u64) -> bool {
        self.verifier.is_some() && size > crate::verify::INLINE_MAX
    }

    fn open_payload_sized_unverified(&self, d: &Digest, size: u64) -> Result<std::fs::File> {
        let f = self.open_payload_fetching(d, Some(size))?;
        let found = f
            .metadata()
            .map_err(|e| Error::io("stat payload", self.payload_location(d))(e))?
            .len();
        if found != size {
            return Err(Error::DamagedPayload {
                digest: *d,
                path: self.payload_location(d),
                expected: size,
                found,
            });
        }
        Ok(f)
    }

    /// Where payload `d` is (the first repository that has it, else the
    /// primary's path for it).
    fn payload_location(&self, d: &Digest) -> std::path::PathBuf {
        self.repos
            .iter()
            .map(|r| r.payload_path(d))
            .find(|p| p.exists())
            .unwrap_or_else(|| self.primary().payload_path(d))
    }

    /// Opens payload `d` from the first repository that has it (one open
    /// per repository tried, no separate existence check).
    pub fn open_payload(&self, d: &Digest) -> Result<std::fs::File> {
        self.open_payload_fetching(d, None)
    }

    /// [`RepositorySet::open_payload`], fetching at most `size` bytes.
    fn open_payload_fetching(&self, d: &Digest, size: Option<u64>) -> Result<std::fs::File> {
        if let Some(f) = self.open_local_payload(d)? {
            return Ok(f);
        }
        if self.fetch_missing(d, size)? {
            if let Some(f) = self.open_local_payload(d)? {
                return Ok(f);
            }
        }
        Err(Error::MissingPayload {
            digest: *d,
            searched: self.searched(),
        })
    }

    ///
    /// Opened non-blocking and checked to be a regular file: a payload
    /// replaced by a FIFO or a device must not block the opener (a FUSE
    /// request thread) or serve endless bytes.
    fn open_local_payload(&self, d: &Digest) -> Result<Option<std::fs::File>> {
        use std::os::unix::fs::OpenOptionsExt;
        for r in &self.repos {
            let path = r.payload_path(d);
            let opened = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&path);
            match opened {
                Ok(f) => {
                    let meta = f
                        .metadata()
                        .map_err(|e| Error::io("stat payload", &path)(e))?;
                    if !meta.is_file() {
                        return Err(Error::NotAPayloadFile { digest: *d, path });
                    }
                    return Ok(Some(f));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("open payload", &path)(e)),
            }
        }
        Ok(None)
    }

    /// The target of a symlink whose manifest entry records `size` bytes,
    /// read from payload `d` (fetched first if only a remote has it).
    /// Bounded: a payload longer than the manifest says is damaged.
    pub fn read_symlink_target(&self, d: &Digest, size: u64) -> Result<Vec<u8>> {
        use std::io::Read;
        let f = self.open_payload_sized(d, size)?;
        let mut target = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(4096));
        f.take(size)
            .read_to_end(&mut target)
            .map_err(|e| Error::io("read symlink target", self.payload_location(d))(e))?;
        Ok(target)
    }

    /// The one object whose digest starts with `prefix`, in any repository.
    pub fn resolve_partial(&self, prefix: &PartialDigest) -> Result<Digest> {
        let mut found: Vec<Digest> = Vec::new();
        for r in &self.repos {
            for d in r.find_digests(prefix)? {
                if !found.contains(&d) {
                    found.push(d);
                }
            }
        }
        match (found.first(), found.len()) {
            (None, _) => Err(self.unknown(prefix.to_string())),
            (Some(one), 1) => Ok(*one),
            (_, n) => {
                found.sort();
                const LISTED: usize = 10;
                let mut listed: Vec<String> =
                    found.iter().take(LISTED).map(|d| d.to_string()).collect();
                if n > LISTED {
                    listed.push(format!("and {} more", n - LISTED));
                }
                Err(Error::AmbiguousReference {
                    prefix: prefix.to_string(),
                    count: n,
                    examples: listed.join(", "),
                })
            }
        }
    }

    /// The tag record `spec` names, from the first repository holding it.
    pub fn resolve_tag(&self, spec: &TagSpec) -> Result<Tag> {
        for r in &self.repos {
            if let Some(t) = r.resolve_tag(spec)? {
                return Ok(t);
            }
        }
        Err(self.unknown(spec.to_string()))
    }

    /// The object digest one (non-file) env spec item refers to.
    pub fn resolve_item(&self, item: &EnvSpecItem) -> Result<Digest> {
        match item {
            EnvSpecItem::Digest(d) => Ok(*d),
            EnvSpecItem::Tag(t) => self.resolve_tag(t).map(|t| t.target),
            EnvSpecItem::Partial(p) => {
                match self.resolve_partial(p) {
                    // An all-capitals tag name parses as a partial digest too.
                    Err(Error::UnknownReference { .. }) => match TagSpec::parse(p.as_str()) {
                        Ok(t) => self.resolve_tag(&t).map(|t| t.target).map_err(|_| {
                            Error::DigestNotFound {
                                reference: p.to_string(),
                                searched: self.searched(),
                                tag: " (and no tag is named so)",
                            }
                        }),
                        Err(_) => Err(Error::DigestNotFound {
                            reference: p.to_string(),
                            searched: self.searched(),
                            tag: "",
                        }),
                    },
                    other => other,
                }
            }
            EnvSpecItem::SpecFile { path, .. } => Err(Error::SpecFile {
                path: path.clone(),
                reason: "a spec file names a stack, not one object".to_owned(),
            }),
        }
    }

    /// Resolves an env spec into its stack of layers, bottom-up. Platforms
    /// expand to their layers; a layer already in the stack moves to the
    /// top, as upstream's stacks do.
    pub fn resolve_stack(&self, spec: &EnvSpec) -> Result<Vec<StackItem>> {
        let mut stack = Vec::new();
        for item in &spec.items {
            self.push_item(item, &mut stack, 0)?;
        }
        Ok(stack)
    }

    /// The stack of layers `digests` name (layers, manifests or
    /// platforms, bottom-up), expanded as [`RepositorySet::resolve_stack`]
    /// does: for stacks already resolved once (a runtime's, a record's).
    pub fn resolve_digests(&self, digests: &[Digest]) -> Result<Vec<StackItem>> {
        let mut stack = Vec::new();
        for d in digests {
            self.push_digest(&d.to_string(), *d, &mut stack, 0)?;
        }
        Ok(stack)
    }

    fn push_item(
        &self,
        item: &EnvSpecItem,
        stack: &mut Vec<StackItem>,
        depth: usize,
    ) -> Result<()> {
        if let EnvSpecItem::SpecFile { items, .. } = item {
            for i in items {
                self.push_item(i, stack, depth)?;
            }
            return Ok(());
        }
        let digest = self.resolve_item(item).map_err(|e| match e {
            Error::UnknownObject { .. } => self.unknown(item.to_string()),
            e => e,
        })?;
        self.push_digest(&item.to_string(), digest, stack, depth)
    }

    fn push_digest(
        &self,
        reference: &str,
        digest: Digest,
        stack: &mut Vec<StackItem>,
        depth: usize,
    ) -> Result<()> {
        if depth > 32 {
            return Err(Error::WrongKind {
                reference: reference.to_owned(),
                found: "platform nested more than 32 deep",
                expected: "a layer stack",
            });
        }
        let object = self.read_object(&digest).map_err(|e| match e {
            // The digest the user typed.
            Error::UnknownObject { .. } if reference == digest.to_string() => {
                Error::DigestNotFound {
                    reference: reference.to_owned(),
                    searched: self.searched(),
                    tag: "",
                }
            }
            Error::UnknownObject { .. } => self.unknown(format!("{reference} ({digest})")),
            e => e,
        })?;
        let entry = match object {
            Object::Platform(p) => {
                for layer in p.layers {
                    self.push_digest(reference, layer, stack, depth + 1)?;
                }
                return Ok(());
            }
            Object::Layer(l) => StackItem {
                digest,
                manifest: l.manifest,
            },
            Object::Manifest(_) => StackItem {
                digest,
                manifest: Some(digest),
            },
            Object::Blob(_) => {
                return Err(Error::WrongKind {
                    reference: reference.to_owned(),
                    found: "blob",
                    expected: "a layer, platform or manifest",
                })
            }
        };
        stack.retain(|s| s.digest != digest);
        stack.push(entry);
        Ok(())
    }

    /// Reads the manifests of a resolved stack, bottom-up.
    pub fn read_stack_manifests(&self, stack: &[StackItem]) -> Result<Vec<Manifest>> {
        stack
            .iter()
            .filter_map(|s| s.manifest)
            .map(|m| self.read_manifest(&m))
            .collect()
    }
}
