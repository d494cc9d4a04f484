//! Pull, push and first-open fetches between fs repositories (a `file://`
//! remote): the same sync and fetch code the gRPC remote uses, with the
//! upstream fixtures as the remote.

#[path = "../../repo/tests/common/mod.rs"]
mod common;

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use spfs_remote::{
    pull_from_first, LocalStore, PayloadFetcher, Progress, RemoteAddress, Store, SyncOptions,
    Syncer,
};
use spfs_repo::tags::Tag;
use spfs_repo::{Digest, FsRepository, Object, PayloadSource, TagSpec};

fn remote(path: &std::path::Path) -> Arc<dyn Store> {
    spfs_remote::open(&RemoteAddress {
        name: "origin".into(),
        address: format!("file://{}", path.display()),
    })
    .unwrap()
}

fn fixture_copy(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("remote");
    common::copy_tree(&common::fixtures().join("repo"), &p);
    p
}

fn empty(dir: &std::path::Path, name: &str) -> FsRepository {
    FsRepository::open_or_create(dir.join(name)).unwrap()
}

fn files(dir: &std::path::Path) -> usize {
    walkdir(dir).len()
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walkdir(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn a_pull_without_payloads_brings_tags_and_objects_then_payloads_come_later() {
    let dir = tempfile::tempdir().unwrap();
    let origin = remote(&fixture_copy(dir.path()));
    let local = LocalStore::local(empty(dir.path(), "local"));
    let progress = Progress::new();
    let lazy = SyncOptions {
        payloads: false,
        concurrency: 4,
        ..SyncOptions::default()
    };
    let done = pull_from_first(
        std::slice::from_ref(&origin),
        &local,
        "fixture/platform",
        lazy,
        &progress,
    )
    .unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0.tag.as_deref(), Some("fixture/platform"));
    assert!(done[0].1.contains("remote 'origin'"));
    let repo = local.repo();
    // The platform, two layers, two manifests; of the payloads, only the
    // symlinks' targets.
    assert_eq!(progress.snapshot().objects, 5);
    let mut symlinks = std::collections::HashSet::new();
    for p in walkdir(&repo.root().join("objects")) {
        let name = format!(
            "{}{}",
            p.parent().unwrap().file_name().unwrap().to_str().unwrap(),
            p.file_name().unwrap().to_str().unwrap()
        );
        if let Some(Object::Manifest(m)) = repo.read_object(&Digest::parse(&name).unwrap()).unwrap()
        {
            for e in m.trees.iter().flat_map(|t| &t.entries) {
                if e.is_symlink() {
                    symlinks.insert(e.object);
                }
            }
        }
    }
    assert!(!symlinks.is_empty(), "the fixture has symlinks");
    assert_eq!(files(&repo.root().join("payloads")), symlinks.len());
    assert!(symlinks.iter().all(|d| repo.has_payload(d)));
    let tag = repo
        .resolve_tag(&TagSpec::parse("fixture/platform").unwrap())
        .unwrap()
        .unwrap();
    let theirs = origin
        .resolve_tag(&TagSpec::parse("fixture/platform").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(tag, theirs, "the tag record is kept as made");
    // Every object is whole and verified.
    for p in walkdir(&repo.root().join("objects")) {
        let name = format!(
            "{}{}",
            p.parent().unwrap().file_name().unwrap().to_str().unwrap(),
            p.file_name().unwrap().to_str().unwrap()
        );
        let d = Digest::parse(&name).unwrap();
        assert!(repo.read_object(&d).unwrap().is_some());
    }
    // Pulled again with payloads: only payloads move.
    let progress = Progress::new();
    pull_from_first(
        &[origin],
        &local,
        "fixture/platform",
        SyncOptions::default(),
        &progress,
    )
    .unwrap();
    let s = progress.snapshot();
    assert_eq!(s.objects, 0);
    assert!(s.payloads_done > 200, "{s:?}");
    assert_eq!(s.bytes_done, s.bytes_total);
}

#[test]
fn each_ref_comes_from_the_first_remote_that_has_it() {
    let dir = tempfile::tempdir().unwrap();
    let empty_remote = empty(dir.path(), "empty");
    let first = remote(empty_remote.root());
    let second = remote(&fixture_copy(dir.path()));
    let local = LocalStore::local(empty(dir.path(), "local"));
    let done = pull_from_first(
        &[first.clone(), second.clone()],
        &local,
        "fixture/base+fixture/top",
        SyncOptions::default(),
        &Progress::new(),
    )
    .unwrap();
    assert_eq!(done.len(), 2);
    assert!(done.iter().all(|(_, from)| from == second.describe()));
    let err = pull_from_first(
        &[first, second],
        &local,
        "no/such",
        SyncOptions::default(),
        &Progress::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("'no/such' is not in remote 'origin'"), "{err}");
    assert!(err.contains("nor in"), "{err}");
    let err = Syncer::new(&local, &local, SyncOptions::default(), &Progress::new())
        .sync_spec("ABCDEF")
        .unwrap_err()
        .to_string();
    assert!(err.contains("partial digest"), "{err}");
}

#[test]
fn a_push_copies_everything_a_ref_needs_children_first() {
    let dir = tempfile::tempdir().unwrap();
    let ours = LocalStore::local(FsRepository::open(fixture_copy(dir.path())).unwrap());
    let studio = empty(dir.path(), "studio");
    let target = LocalStore::named(studio.clone(), "remote 'studio'".into());
    let progress = Progress::new();
    Syncer::new(&ours, &target, SyncOptions::default(), &progress)
        .sync_spec("fixture/top")
        .unwrap();
    let top = studio
        .resolve_tag(&TagSpec::parse("fixture/top").unwrap())
        .unwrap()
        .unwrap();
    let Some(Object::Layer(layer)) = studio.read_object(&top.target).unwrap() else {
        panic!("not a layer")
    };
    let Some(Object::Manifest(m)) = studio.read_object(&layer.manifest.unwrap()).unwrap() else {
        panic!("not a manifest")
    };
    for e in m.trees.iter().flat_map(|t| &t.entries) {
        if e.kind == spfs_repo::object::EntryKind::Blob {
            assert!(studio.has_payload(&e.object), "{} missing", e.name);
            // And the blob object upstream keeps beside it.
            assert!(studio.has_object(&e.object), "{} blob missing", e.name);
        }
    }
    // Nothing to do the second time.
    let again = Progress::new();
    Syncer::new(&ours, &target, SyncOptions::default(), &again)
        .sync_spec("fixture/top")
        .unwrap();
    assert_eq!(again.snapshot().objects, 0);
}

/// A remote that counts the payload downloads it starts.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn Store>,
    opens: AtomicUsize,
    /// Sends the payload's bytes, then more, without end.
    endless: bool,
}

impl Store for Counting {
    fn describe(&self) -> &str {
        self.inner.describe()
    }
    fn resolve_tag(&self, spec: &TagSpec) -> spfs_remote::Result<Option<Tag>> {
        self.inner.resolve_tag(spec)
    }
    fn has_object(&self, d: &Digest) -> spfs_remote::Result<bool> {
        self.inner.has_object(d)
    }
    fn read_object(&self, d: &Digest) -> spfs_remote::Result<Vec<u8>> {
        self.inner.read_object(d)
    }
    fn write_object(&self, d: &Digest, b: &[u8]) -> spfs_remote::Result<Object> {
        self.inner.write_object(d, b)
    }
    fn has_payload(&self, d: &Digest) -> spfs_remote::Result<bool> {
        self.inner.has_payload(d)
    }
    fn open_payload(&self, d: &Digest) -> spfs_remote::Result<Box<dyn Read + Send>> {
        self.opens.fetch_add(1, Ordering::SeqCst);
        if self.endless {
            return Ok(Box::new(
                self.inner.open_payload(d)?.chain(std::io::repeat(b'x')),
            ));
        }
        // Slow enough that the other readers arrive while it runs.
        std::thread::sleep(std::time::Duration::from_millis(200));
        self.inner.open_payload(d)
    }
    fn write_payload(
        &self,
        d: &Digest,
        data: Box<dyn Read + Send + '_>,
        from: &str,
    ) -> spfs_remote::Result<u64> {
        self.inner.write_payload(d, data, from)
    }
    fn insert_tag(&self, tag: &Tag) -> spfs_remote::Result<bool> {
        self.inner.insert_tag(tag)
    }
}

#[test]
fn concurrent_first_opens_of_one_payload_download_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Arc::new(Counting {
        inner: remote(&fixture_copy(dir.path())),
        opens: AtomicUsize::new(0),
        endless: false,
    });
    let local = empty(dir.path(), "local");
    let fetcher = PayloadFetcher::new(2).unwrap();
    let source = fetcher.source(vec![origin.clone() as Arc<dyn Store>]);
    let hello = Digest::of(b"hello from base\n");
    let barrier = Arc::new(Barrier::new(8));
    std::thread::scope(|s| {
        for _ in 0..8 {
            let (source, local, barrier) = (source.clone(), local.clone(), barrier.clone());
            s.spawn(move || {
                barrier.wait();
                source.fetch(&hello, Some(16), &local).unwrap();
            });
        }
    });
    assert_eq!(origin.opens.load(Ordering::SeqCst), 1);
    assert_eq!(
        std::fs::read(local.payload_path(&hello)).unwrap(),
        b"hello from base\n"
    );
    let p = source.progress();
    assert_eq!((p.fetched, p.failed, p.in_flight, p.bytes), (1, 0, 0, 16));
    // Already here: nothing is downloaded again.
    source.fetch(&hello, Some(16), &local).unwrap();
    assert_eq!(origin.opens.load(Ordering::SeqCst), 1);
}

#[test]
fn a_payload_no_remote_has_is_an_error_naming_each_remote() {
    let dir = tempfile::tempdir().unwrap();
    let a = empty(dir.path(), "a");
    let b = empty(dir.path(), "b");
    let local = empty(dir.path(), "local");
    let source = PayloadFetcher::new(1)
        .unwrap()
        .source(vec![remote(a.root()), remote(b.root())]);
    let missing = Digest::of(b"nowhere");
    let err = source
        .fetch(&missing, None, &local)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&missing.to_string()), "{err}");
    assert!(err.contains(&a.root().display().to_string()), "{err}");
    assert!(err.contains(&b.root().display().to_string()), "{err}");
    assert_eq!(source.progress().failed, 1);
    // A later remote that has it is used when an earlier one does not.
    let c = empty(dir.path(), "c");
    let (d, _) = c.write_payload(&b"somewhere"[..]).unwrap();
    let source = PayloadFetcher::new(1)
        .unwrap()
        .source(vec![remote(a.root()), remote(c.root())]);
    source.fetch(&d, None, &local).unwrap();
    assert!(local.has_payload(&d));
}

#[test]
fn a_remote_that_sends_more_than_the_payload_has_is_cut_off_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Arc::new(Counting {
        inner: remote(&fixture_copy(dir.path())),
        opens: AtomicUsize::new(0),
        endless: true,
    });
    let local = empty(dir.path(), "local");
    let hello = Digest::of(b"hello from base\n");
    // A first open (the manifest says 16 bytes).
    let source = PayloadFetcher::new(1)
        .unwrap()
        .source(vec![origin.clone() as Arc<dyn Store>]);
    let err = source
        .fetch(&hello, Some(16), &local)
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than the 16 bytes"), "{err}");
    assert!(!local.has_payload(&hello));
    // A pull of the environment that holds it.
    let store = LocalStore::local(local.clone());
    let all = SyncOptions {
        payloads: true,
        concurrency: 2,
        ..SyncOptions::default()
    };
    let origin: Arc<dyn Store> = origin;
    let err = pull_from_first(&[origin], &store, "fixture/base", all, &Progress::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than the"), "{err}");
    assert!(!local.has_payload(&hello));
    // Nothing staged is left behind (a few bytes at most were read).
    let staged: u64 = walkdir(&local.root().join("work"))
        .iter()
        .map(|p| p.metadata().map_or(0, |m| m.len()))
        .sum();
    assert!(staged < 4096, "{staged} bytes staged");
}

#[test]
fn a_checked_pull_fills_in_what_is_missing_below_what_is_here_and_a_resync_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let origin = remote(&fixture_copy(dir.path()));
    let local = LocalStore::local(empty(dir.path(), "local"));
    let lazy = SyncOptions {
        payloads: false,
        concurrency: 2,
        ..SyncOptions::default()
    };
    let pull = |options: SyncOptions| {
        let progress = Progress::new();
        pull_from_first(
            std::slice::from_ref(&origin),
            &local,
            "fixture/base",
            options,
            &progress,
        )
        .unwrap();
        progress.snapshot()
    };
    pull(lazy);
    let repo = local.repo();
    let layer = repo
        .resolve_tag(&TagSpec::parse("fixture/base").unwrap())
        .unwrap()
        .unwrap()
        .target;
    let Some(Object::Layer(l)) = repo.read_object(&layer).unwrap() else {
        panic!("a layer");
    };
    let manifest = l.manifest.unwrap();
    let Some(Object::Manifest(m)) = repo.read_object(&manifest).unwrap() else {
        panic!("a manifest");
    };
    // Lost below the layer: the manifest; and a blob object of a file.
    let file = m
        .trees
        .iter()
        .flat_map(|t| &t.entries)
        .find(|e| !e.is_symlink() && e.kind == spfs_repo::object::EntryKind::Blob)
        .unwrap()
        .object;
    std::fs::remove_file(repo.object_path(&manifest)).unwrap();
    // A plain lazy pull stops at the layer, which is here.
    pull(lazy);
    assert!(!repo.has_object(&manifest));
    let checked = SyncOptions {
        check: true,
        ..lazy
    };
    pull(checked);
    assert!(repo.has_object(&manifest), "the manifest is back");
    std::fs::remove_file(repo.object_path(&file)).unwrap();
    pull(checked);
    assert!(repo.has_object(&file), "the blob object is back");
    assert!(
        !repo.has_payload(&file),
        "its payload still comes when opened"
    );
    // A damaged object: a plain pull fails on it, a checked one replaces it.
    let damage = |path: &std::path::Path, with: &[u8]| {
        let mut perm = std::fs::metadata(path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o644);
        std::fs::set_permissions(path, perm).unwrap();
        std::fs::write(path, with).unwrap();
    };
    let path = repo.object_path(&layer);
    let good = std::fs::read(&path).unwrap();
    damage(&path, b"damaged");
    pull(checked);
    assert_eq!(std::fs::read(&path).unwrap(), good);
    // A damaged payload (it decodes as any bytes do): only a resync
    // copies it again.
    let all = SyncOptions {
        payloads: true,
        ..lazy
    };
    pull(all);
    let payload = repo.payload_path(&file);
    let good = std::fs::read(&payload).unwrap();
    damage(&payload, b"damaged");
    pull(SyncOptions { check: true, ..all });
    assert_eq!(std::fs::read(&payload).unwrap(), b"damaged");
    let s = pull(SyncOptions {
        resync: true,
        ..all
    });
    assert_eq!(std::fs::read(&payload).unwrap(), good);
    assert!(s.objects >= 2, "{s:?}");
}

/// A repository at `dir/name` holding one layer of `n` small files,
/// tagged `many/files`; each file's content.
fn many_files(dir: &std::path::Path, name: &str, n: usize) -> (FsRepository, Vec<Vec<u8>>) {
    let repo = empty(dir, name);
    let src = dir.join(format!("{name}-src"));
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let contents: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("file {i} of {n}\n").repeat(i % 7 + 1).into_bytes())
        .collect();
    for (i, c) in contents.iter().enumerate() {
        let at = if i % 2 == 0 { "sub/" } else { "" };
        std::fs::write(src.join(format!("{at}f{i}")), c).unwrap();
    }
    let layer = spfs_repo::commit::commit_dir(&repo, &src).unwrap().layer;
    repo.push_tags(
        &[TagSpec::parse_to_write("many/files").unwrap()],
        layer,
        &spfs_repo::tags::TagAuthor("t@h".into()),
    )
    .unwrap();
    (repo, contents)
}

#[test]
fn a_pull_of_many_files_puts_every_payload_and_blob_in_place_and_leaves_nothing_staged() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, contents) = many_files(dir.path(), "origin", 300);
    let origin = remote(origin.root());
    let store = LocalStore::local(empty(dir.path(), "local"));
    let all = SyncOptions {
        payloads: true,
        concurrency: 4,
        ..SyncOptions::default()
    };
    let progress = Progress::new();
    pull_from_first(&[origin], &store, "many/files", all, &progress).unwrap();
    let local = store.repo();
    for c in &contents {
        let d = Digest::of(c);
        assert!(local.has_payload(&d), "payload {d}");
        assert!(local.has_object(&d), "blob {d}");
        assert_eq!(&std::fs::read(local.payload_path(&d)).unwrap(), c);
    }
    for work in ["payloads/work", "objects/work"] {
        assert_eq!(
            walkdir(&local.root().join(work)),
            Vec::<std::path::PathBuf>::new()
        );
    }
}

#[test]
fn a_pull_of_many_files_with_one_wrong_payload_stores_none_of_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, contents) = many_files(dir.path(), "origin", 40);
    // One payload holds other bytes of the same length.
    let bad = Digest::of(&contents[17]);
    let path = origin.payload_path(&bad);
    let mut perm = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o644);
    std::fs::set_permissions(&path, perm).unwrap();
    std::fs::write(&path, vec![b'x'; contents[17].len()]).unwrap();
    let origin = remote(origin.root());
    let store = LocalStore::local(empty(dir.path(), "local"));
    let all = SyncOptions {
        payloads: true,
        concurrency: 3,
        ..SyncOptions::default()
    };
    let err = pull_from_first(&[origin], &store, "many/files", all, &Progress::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&bad.to_string()), "{err}");
    let local = store.repo();
    // All 40 fit one batch: none of them is in place, nothing is staged,
    // and no tag names what is not here.
    assert!(contents.iter().all(|c| !local.has_payload(&Digest::of(c))));
    for work in ["payloads/work", "objects/work"] {
        assert_eq!(
            walkdir(&local.root().join(work)),
            Vec::<std::path::PathBuf>::new()
        );
    }
    assert!(local
        .resolve_tag(&TagSpec::parse("many/files").unwrap())
        .unwrap()
        .is_none());
}
