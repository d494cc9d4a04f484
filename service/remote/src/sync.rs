//! Copies refs from one [`Store`] to another: pull (a remote into the
//! local repository) and push (the local repository into a remote).
//!
//! Objects are read first (from the destination when it has them), then
//! payloads are copied with bounded concurrency, then objects are written
//! children before parents, then tags: a destination never holds a tag or
//! an object whose children it lacks, and a sync stopped at any moment
//! leaves only whole, verified files behind.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use spfs_repo::object::{AnnotationValue, Blob, EntryKind};
use spfs_repo::storage::WriteBatch;
use spfs_repo::tags::Tag;
use spfs_repo::{
    Digest, DigestStrategy, EncodingFormat, EnvSpec, EnvSpecItem, FsRepository, Object, TagSpec,
};

use crate::error::{Error, Result};
use crate::progress::{Counting, Progress};
use crate::store::{decode_wire, Store};

/// Fewer payloads than this are made durable one by one: a flush of the
/// whole file system (`syncfs`) would cost a single small file more.
const MIN_BATCH: usize = 8;
/// A batch of payloads ends after so many files, bytes or seconds (far
/// less than the age at which a cleaner takes a staged file for a killed
/// writer's: `FsRepository::remove_stale_work`).
const BATCH_FILES: usize = 2048;
const BATCH_BYTES: u64 = 512 << 20;
const BATCH_TIME: Duration = Duration::from_secs(10);

/// What a sync copies.
#[derive(Clone, Copy, Debug)]
pub struct SyncOptions {
    /// Copy payloads too (a pull for later offline use, `--sync-all`, a
    /// push); without them only tags, objects and symlink targets are
    /// copied, and a runtime fetches file payloads when it first opens
    /// them.
    pub payloads: bool,
    /// Payloads copied at once.
    pub concurrency: usize,
    /// Walk what the destination holds already too, copying whatever
    /// below it is missing (upstream's `--check`).
    pub check: bool,
    /// Copy everything again, replacing what the destination holds (a
    /// damaged copy included; upstream's `--resync`).
    pub resync: bool,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            payloads: true,
            concurrency: 8,
            check: false,
            resync: false,
        }
    }
}

/// One ref a sync copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synced {
    /// As the user gave it.
    pub reference: String,
    /// What it named.
    pub digest: Digest,
    /// The tag record copied, if the ref was a tag.
    pub tag: Option<String>,
}

/// What a sync did.
#[derive(Clone, Debug, Default)]
pub struct SyncSummary {
    /// The refs copied, in order.
    pub synced: Vec<Synced>,
}

/// Copies from `src` to `dst`.
pub struct Syncer<'a> {
    src: &'a dyn Store,
    dst: &'a dyn Store,
    options: SyncOptions,
    progress: &'a Progress,
}

struct Plan {
    seen: HashSet<Digest>,
    /// Objects to write, children first.
    objects: Vec<(Digest, Vec<u8>)>,
    /// Of those, the ones that replace a damaged copy here.
    replace: HashSet<Digest>,
    /// Payloads with their manifest size (`None`: an annotation's).
    payloads: Vec<(Digest, Option<u64>)>,
    payload_seen: HashSet<Digest>,
}

impl<'a> Syncer<'a> {
    /// A sync from `src` to `dst` counted in `progress`.
    pub fn new(
        src: &'a dyn Store,
        dst: &'a dyn Store,
        options: SyncOptions,
        progress: &'a Progress,
    ) -> Self {
        Self {
            src,
            dst,
            options,
            progress,
        }
    }

    /// Copies every item of env spec `spec` (`a+b`, tags, digests).
    pub fn sync_spec(&self, spec: &str) -> Result<SyncSummary> {
        let parsed = EnvSpec::parse(spec)?;
        let mut summary = SyncSummary::default();
        for item in &parsed.items {
            self.sync_item(item, &mut summary)?;
        }
        Ok(summary)
    }

    fn sync_item(&self, item: &EnvSpecItem, summary: &mut SyncSummary) -> Result<()> {
        let (digest, tag) = match item {
            EnvSpecItem::SpecFile { items, .. } => {
                for i in items {
                    self.sync_item(i, summary)?;
                }
                return Ok(());
            }
            EnvSpecItem::Digest(d) => (*d, None),
            EnvSpecItem::Tag(t) => {
                let tag = self.tag(t, item)?;
                (tag.target, Some(tag))
            }
            // An all-capitals tag name parses as a partial digest too.
            EnvSpecItem::Partial(p) => match TagSpec::parse(p.as_str())
                .ok()
                .map(|t| self.src.resolve_tag(&t))
                .transpose()?
                .flatten()
            {
                Some(tag) => (tag.target, Some(tag)),
                None => {
                    return Err(Error::BadReference {
                        reference: item.to_string(),
                        reason: "a partial digest cannot be synced: give the full digest or a tag"
                            .into(),
                    })
                }
            },
        };
        self.sync_digest(&digest)?;
        if let Some(tag) = &tag {
            self.dst.insert_tag(tag)?;
        }
        summary.synced.push(Synced {
            reference: item.to_string(),
            digest,
            tag: tag.map(|t| {
                if t.org.is_empty() {
                    t.name
                } else {
                    format!("{}/{}", t.org, t.name)
                }
            }),
        });
        Ok(())
    }

    fn tag(&self, spec: &TagSpec, item: &EnvSpecItem) -> Result<Tag> {
        self.src
            .resolve_tag(spec)?
            .ok_or_else(|| Error::UnknownReference {
                reference: item.to_string(),
                remote: self.src.describe().to_owned(),
            })
    }

    /// Copies object `root` and everything below it.
    pub fn sync_digest(&self, root: &Digest) -> Result<()> {
        let mut plan = Plan {
            seen: HashSet::new(),
            objects: Vec::new(),
            replace: HashSet::new(),
            payloads: Vec::new(),
            payload_seen: HashSet::new(),
        };
        self.visit(root, &mut plan, 0)?;
        self.copy_payloads(&plan.payloads)?;
        for (d, bytes) in &plan.objects {
            if self.options.resync || plan.replace.contains(d) {
                self.dst.rewrite_object(d, bytes)?;
            } else {
                self.dst.write_object(d, bytes)?;
            }
            self.progress.object_done();
        }
        Ok(())
    }

    /// Copies payload `payload` (of `size` bytes, if known) alone: one a
    /// blob object here names but whose file is missing.
    pub fn sync_payload(&self, payload: &Digest, size: Option<u64>) -> Result<()> {
        self.copy_payloads(&[(*payload, size)])
    }

    fn visit(&self, d: &Digest, plan: &mut Plan, depth: usize) -> Result<()> {
        if depth > 64 || !plan.seen.insert(*d) {
            return Ok(());
        }
        // A resync takes every object from the source again.
        let mut present = !self.options.resync && self.dst.has_object(d)?;
        if present && !self.options.payloads && !self.options.check {
            // Written children first: what is below it is here too.
            return Ok(());
        }
        let here = if present {
            let read = self.dst.read_object(d);
            let decoded = read.and_then(|raw| decode_wire(&raw, d, self.dst.describe()));
            match decoded {
                Ok(done) => Some(done),
                // A checked sync replaces a copy here that does not decode
                // to its digest (damaged) with the source's.
                Err(_) if self.options.check => {
                    plan.replace.insert(*d);
                    present = false;
                    None
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let (bytes, object) = match here {
            Some(done) => done,
            None => decode_wire(&self.src.read_object(d)?, d, self.src.describe())?,
        };
        match &object {
            Object::Platform(p) => {
                for layer in &p.layers {
                    self.visit(layer, plan, depth + 1)?;
                }
            }
            Object::Layer(l) => {
                if let Some(m) = &l.manifest {
                    self.visit(m, plan, depth + 1)?;
                }
                for a in &l.annotations {
                    // Annotation values kept in payloads are small and
                    // read without opening a file: always copied.
                    if let AnnotationValue::Digest(p) = &a.value {
                        if plan.payload_seen.insert(*p) {
                            plan.payloads.push((*p, None));
                        }
                    }
                }
            }
            Object::Manifest(m) => {
                for entry in m.trees.iter().flat_map(|t| &t.entries) {
                    // Symlink targets are tiny and read by lookups of
                    // paths through them: always copied, so that no path
                    // walk waits for a download.
                    let wanted = self.options.payloads || entry.is_symlink();
                    if entry.kind == EntryKind::Blob
                        && wanted
                        && plan.payload_seen.insert(entry.object)
                    {
                        plan.payloads.push((entry.object, Some(entry.size)));
                    } else if entry.kind == EntryKind::Blob
                        && !wanted
                        && self.options.check
                        && plan.seen.insert(entry.object)
                        && !self.dst.has_object(&entry.object)?
                    {
                        // A checked graph has every blob object, also of
                        // payloads fetched later (written with a payload
                        // otherwise). Made here: it only names the payload.
                        let blob = Object::Blob(Blob {
                            payload: entry.object,
                            size: entry.size,
                        });
                        let bytes = blob
                            .encode(DigestStrategy::WithKindAndSalt, EncodingFormat::FlatBuffers)?;
                        plan.objects.push((entry.object, bytes));
                    }
                }
            }
            Object::Blob(_) => {}
        }
        if !present {
            plan.objects.push((*d, bytes));
        }
        Ok(())
    }

    fn copy_payloads(&self, payloads: &[(Digest, Option<u64>)]) -> Result<()> {
        if payloads.is_empty() {
            return Ok(());
        }
        self.progress.payloads_planned(
            payloads.len() as u64,
            payloads.iter().filter_map(|(_, s)| *s).sum(),
        );
        // Many files into the local repository reach its disk in batches
        // (one flush each); a few (a runtime's first open of one) and
        // payloads without a manifest's size (annotations') one by one,
        // as does a resync, which replaces what is here.
        match self.dst.local_repo() {
            Some(repo) if !self.options.resync && payloads.len() >= MIN_BATCH => {
                let (sized, unsized_): (Vec<_>, Vec<_>) =
                    payloads.iter().partition(|(_, size)| size.is_some());
                self.copy_each(&unsized_)?;
                self.copy_batched(repo, &sized)
            }
            _ => self.copy_each(payloads),
        }
    }

    /// Copies `payloads`, each made durable on its own.
    fn copy_each(&self, payloads: &[(Digest, Option<u64>)]) -> Result<()> {
        if payloads.is_empty() {
            return Ok(());
        }
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let failure: Mutex<Option<Error>> = Mutex::new(None);
        let workers = self.options.concurrency.clamp(1, 64).min(payloads.len());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Some((d, size)) = payloads.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    if let Err(e) = self.copy_payload(d, *size) {
                        stop.store(true, Ordering::Relaxed);
                        failure.lock().get_or_insert(e);
                        return;
                    }
                });
            }
        });
        match failure.into_inner() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Copies `payloads` (each with its manifest's size) into `repo` in
    /// [`WriteBatch`]es: each payload staged and verified as it arrives,
    /// several at a time, then the whole batch flushed to disk at once
    /// and put in place. A batch ends after so many files, bytes or
    /// seconds, so a slow remote never keeps staged files waiting long; a
    /// failure drops the batch it is in (nothing of it stays), and every
    /// earlier batch is whole in place.
    fn copy_batched(&self, repo: &FsRepository, payloads: &[(Digest, Option<u64>)]) -> Result<()> {
        let next = AtomicUsize::new(0);
        let workers = self.options.concurrency.clamp(1, 64).min(payloads.len());
        while next.load(Ordering::Relaxed) < payloads.len() {
            let batch = WriteBatch::new(repo);
            let started = Instant::now();
            let (files, bytes) = (AtomicUsize::new(0), AtomicU64::new(0));
            let full = || {
                files.load(Ordering::Relaxed) >= BATCH_FILES
                    || bytes.load(Ordering::Relaxed) >= BATCH_BYTES
                    || started.elapsed() >= BATCH_TIME
            };
            let stop = AtomicBool::new(false);
            let failure: Mutex<Option<Error>> = Mutex::new(None);
            std::thread::scope(|scope| {
                for _ in 0..workers {
                    scope.spawn(|| loop {
                        if stop.load(Ordering::Relaxed) || full() {
                            return;
                        }
                        let Some((d, size)) = payloads.get(next.fetch_add(1, Ordering::Relaxed))
                        else {
                            return;
                        };
                        let size = size.unwrap_or(0);
                        files.fetch_add(1, Ordering::Relaxed);
                        bytes.fetch_add(size, Ordering::Relaxed);
                        if let Err(e) = self.stage_payload(&batch, d, size) {
                            stop.store(true, Ordering::Relaxed);
                            failure.lock().get_or_insert(e);
                            return;
                        }
                    });
                }
            });
            if let Some(e) = failure.into_inner() {
                return Err(e);
            }
            batch.finish()?;
            for _ in 0..files.into_inner() {
                self.progress.payload_done();
            }
        }
        Ok(())
    }

    /// Stages payload `d` of `size` bytes (and its blob object) in
    /// `batch`, unless the repository has it.
    fn stage_payload(&self, batch: &WriteBatch<'_>, d: &Digest, size: u64) -> Result<()> {
        if self.dst.has_payload(d)? {
            self.progress.bytes(size);
            if !self.dst.has_object(d)? {
                batch.object(&Object::Blob(Blob { payload: *d, size }))?;
            }
            return Ok(());
        }
        let data = Counting {
            inner: self.src.open_payload(d)?,
            progress: self.progress,
        };
        // What the manifest says it is, and no more.
        let data =
            crate::expected::Expected::new(data, size, crate::timeout(), self.src.describe());
        batch.import_payload(d, data, self.src.describe())?;
        Ok(())
    }

    fn copy_payload(&self, d: &Digest, size: Option<u64>) -> Result<()> {
        if !self.options.resync && self.dst.has_payload(d)? {
            self.progress.bytes(size.unwrap_or(0));
        } else {
            let data = self.src.open_payload(d)?;
            let counted = Counting {
                inner: data,
                progress: self.progress,
            };
            // What the manifest says it is, and no more.
            let data: Box<dyn std::io::Read + Send + '_> = match size {
                Some(size) => Box::new(crate::expected::Expected::new(
                    counted,
                    size,
                    crate::timeout(),
                    self.src.describe(),
                )),
                None => Box::new(counted),
            };
            if self.options.resync {
                self.dst.rewrite_payload(d, data, self.src.describe())?;
            } else {
                self.dst.write_payload(d, data, self.src.describe())?;
            }
        }
        // Upstream keeps a blob object beside each file's payload (its
        // `spfs check` looks for them); ours are written the same way.
        if let Some(size) = size {
            if self.options.resync || !self.dst.has_object(d)? {
                let blob = Object::Blob(Blob { payload: *d, size });
                let bytes =
                    blob.encode(DigestStrategy::WithKindAndSalt, EncodingFormat::FlatBuffers)?;
                if self.options.resync {
                    self.dst.rewrite_object(d, &bytes)?;
                } else {
                    self.dst.write_object(d, &bytes)?;
                }
            }
        }
        self.progress.payload_done();
        Ok(())
    }
}

/// Copies every item of `spec` into `dst` from the first of `remotes`
/// that has it; returns what was copied and from where.
pub fn pull_from_first(
    remotes: &[std::sync::Arc<dyn Store>],
    dst: &dyn Store,
    spec: &str,
    options: SyncOptions,
    progress: &Progress,
) -> Result<Vec<(Synced, String)>> {
    let parsed = EnvSpec::parse(spec)?;
    let mut items = Vec::new();
    flatten(&parsed.items, &mut items);
    let mut done = Vec::new();
    for item in items {
        let mut missing_from = Vec::new();
        let mut pulled = None;
        for remote in remotes {
            let syncer = Syncer::new(remote.as_ref(), dst, options, progress);
            let mut summary = SyncSummary::default();
            match syncer.sync_item(item, &mut summary) {
                Ok(()) => {
                    pulled = summary
                        .synced
                        .pop()
                        .map(|s| (s, remote.describe().to_owned()));
                    break;
                }
                Err(Error::UnknownReference { .. }) | Err(Error::UnknownObject { .. }) => {
                    missing_from.push(remote.describe().to_owned())
                }
                Err(e) => return Err(e),
            }
        }
        match pulled {
            Some(p) => done.push(p),
            None => {
                return Err(Error::UnknownReference {
                    reference: item.to_string(),
                    remote: if missing_from.is_empty() {
                        "any remote: none is configured".to_owned()
                    } else {
                        missing_from.join(", nor in ")
                    },
                })
            }
        }
    }
    Ok(done)
}

/// The items of a spec, spec files expanded.
pub fn flatten<'s>(items: &'s [EnvSpecItem], out: &mut Vec<&'s EnvSpecItem>) {
    for item in items {
        match item {
            EnvSpecItem::SpecFile { items, .. } => flatten(items, out),
            other => out.push(other),
        }
    }
}
