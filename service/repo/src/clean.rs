//! Removing what nothing needs: objects and payloads that no tag reaches
//! (tags of every namespace, runtime records included — so the stacks of
//! live and saved runtimes stay), except what is younger than a grace
//! period (what a commit or a pull is writing now, before its tag) and
//! all that such young objects reach. A writer that finds an object or
//! payload already stored touches it (`storage::in_place`), so what a
//! commit uses again is young too.
//!
//! Every removal is a move aside, a second look at the file's age and an
//! `unlink` (see [`execute`]); objects go before payloads, and each
//! object before the objects it names: a clean killed at any point leaves
//! no object naming an object or payload already removed, and the next
//! clean finishes the work.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::digest::DIGEST_TEXT_LEN;
use crate::object::{AnnotationValue, Object};
use crate::{Digest, Error, FsRepository, Result};

/// What is younger than this is never removed (upstream's required age).
pub const GRACE: Duration = Duration::from_secs(15 * 60);

/// Tag directories deeper than this are not read.
pub(crate) const MAX_TAG_DEPTH: usize = 64;

/// One file a clean removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The object or payload.
    pub digest: Digest,
    /// Its file.
    pub path: PathBuf,
    /// Its size on disk.
    pub bytes: u64,
}

/// What a clean removes: objects first, then payloads.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    /// Objects nothing reaches.
    pub objects: Vec<Removal>,
    /// Payloads nothing reaches.
    pub payloads: Vec<Removal>,
    /// Objects and payloads nothing reaches, kept because they are young.
    pub young: usize,
}

impl Plan {
    /// The bytes the plan frees.
    pub fn bytes(&self) -> u64 {
        self.objects
            .iter()
            .chain(&self.payloads)
            .map(|r| r.bytes)
            .sum()
    }
}

/// The digest files (objects or payloads) under `dir`.
fn digest_files(dir: &Path) -> Result<Vec<(Digest, PathBuf, fs::Metadata)>> {
    let mut out = Vec::new();
    let shards = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("list", dir)(e)),
    };
    for shard in shards {
        let shard = shard.map_err(Error::io("list", dir))?;
        let Ok(prefix) = shard.file_name().into_string() else {
            continue;
        };
        if prefix.len() != 2 || !shard.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let sdir = shard.path();
        for e in fs::read_dir(&sdir).map_err(Error::io("list", &sdir))? {
            let e = e.map_err(Error::io("list", &sdir))?;
            let Ok(rest) = e.file_name().into_string() else {
                continue;
            };
            if prefix.len() + rest.len() != DIGEST_TEXT_LEN {
                continue;
            }
            let Ok(d) = Digest::parse(&format!("{prefix}{rest}")) else {
                continue;
            };
            // (gone since it was listed: nothing to do for it)
            let Ok(meta) = fs::symlink_metadata(e.path()) else {
                continue;
            };
            if meta.is_file() {
                out.push((d, e.path(), meta));
            }
        }
    }
    Ok(out)
}

/// The target of every version of every tag in the repository, in every
/// namespace. A tag that cannot be read is an error: it may name what a
/// clean would otherwise remove.
fn tag_targets(repo: &FsRepository, pruned: &[crate::prune::StreamPrune]) -> Result<Vec<Digest>> {
    let mut files = Vec::new();
    crate::tags::stream_files(&repo.root().join("tags"), "", true, 0, &mut files)?;
    let mut out = Vec::new();
    for (path, _) in files {
        let stream = crate::tags::read_stream_file(&path)?;
        // Records a prune removes first reach nothing.
        let gone = pruned.iter().find(|p| p.file == path);
        out.extend(
            stream
                .iter()
                .filter(|t| gone.is_none_or(|g| !g.records.iter().any(|(_, r)| r == *t)))
                .map(|t| t.target),
        );
    }
    Ok(out)
}

/// Everything `roots` reach, themselves included (payloads too: a blob's
/// payload has its digest).
fn reached(repo: &FsRepository, roots: Vec<Digest>) -> Result<HashSet<Digest>> {
    let mut seen = HashSet::new();
    let mut todo = roots;
    while let Some(d) = todo.pop() {
        if !seen.insert(d) {
            continue;
        }
        match repo.read_object(&d)? {
            Some(Object::Platform(p)) => todo.extend(p.layers),
            Some(Object::Layer(l)) => {
                todo.extend(l.manifest);
                for a in l.annotations {
                    if let AnnotationValue::Digest(b) = a.value {
                        todo.push(b);
                    }
                }
            }
            Some(Object::Manifest(m)) => {
                for t in m.trees {
                    todo.extend(t.entries.iter().map(|e| e.object));
                }
            }
            Some(Object::Blob(b)) => {
                seen.insert(b.payload);
            }
            None => {}
        }
    }
    Ok(seen)
}

/// What a clean of `repo` would remove now, keeping what is younger than
/// `grace` (and what that reaches).
pub fn plan(repo: &FsRepository, grace: Duration) -> Result<Plan> {
    plan_after_prune(repo, grace, &[])
}

/// What a clean of `repo` would remove once the tag records of `pruned`
/// are gone (see [`crate::prune`]): for a dry run, before pruning.
pub fn plan_after_prune(
    repo: &FsRepository,
    grace: Duration,
    pruned: &[crate::prune::StreamPrune],
) -> Result<Plan> {
    let now = SystemTime::now();
    let young = |m: &fs::Metadata| is_young(m, now, grace);
    let objects = digest_files(&repo.root().join("objects"))?;
    let payloads = digest_files(&repo.root().join("payloads"))?;
    let tagged = reached(repo, tag_targets(repo, pruned)?)?;
    // What young objects reach is kept too: a commit's layer and manifest
    // name blobs and payloads written a moment before.
    let fresh: Vec<Digest> = objects
        .iter()
        .filter(|(d, _, m)| young(m) && !tagged.contains(d))
        .map(|(d, _, _)| *d)
        .collect();
    let fresh = reached(repo, fresh)?;
    let mut plan = Plan::default();
    for (digest, path, meta) in objects.into_iter().chain(payloads) {
        if tagged.contains(&digest) {
            continue;
        }
        if young(&meta) || fresh.contains(&digest) {
            plan.young += 1;
            continue;
        }
        let removal = Removal {
            digest,
            bytes: meta.len(),
            path,
        };
        if removal.path.starts_with(repo.root().join("objects")) {
            plan.objects.push(removal);
        } else {
            plan.payloads.push(removal);
        }
    }
    plan.objects = referrers_first(repo, plan.objects)?;
    Ok(plan)
}

/// Whether a file was written or used (touched) less than `grace` ago.
fn is_young(m: &fs::Metadata, now: SystemTime, grace: Duration) -> bool {
    m.modified()
        .ok()
        .and_then(|t| now.duration_since(t).ok())
        .is_none_or(|age| age < grace)
}

/// The digests object `d` names (none if it cannot be read).
fn children(repo: &FsRepository, d: &Digest) -> Vec<Digest> {
    match repo.read_object(d) {
        Ok(Some(Object::Platform(p))) => p.layers,
        Ok(Some(Object::Layer(l))) => {
            let mut out: Vec<Digest> = l.manifest.into_iter().collect();
            out.extend(l.annotations.into_iter().filter_map(|a| match a.value {
                AnnotationValue::Digest(b) => Some(b),
                AnnotationValue::String(_) => None,
            }));
            out
        }
        Ok(Some(Object::Manifest(m))) => m
            .trees
            .iter()
            .flat_map(|t| t.entries.iter().map(|e| e.object))
            .collect(),
        _ => Vec::new(),
    }
}

/// `objects` ordered so that each comes before every one it names: a
/// clean stopped part-way then leaves no object whose children are gone
/// (a platform before its layers, a layer before its manifest, a
/// manifest before its blobs).
fn referrers_first(repo: &FsRepository, objects: Vec<Removal>) -> Result<Vec<Removal>> {
    use std::collections::HashMap;
    let index: HashMap<Digest, usize> = objects
        .iter()
        .enumerate()
        .map(|(i, r)| (r.digest, i))
        .collect();
    // Depth-first over the edges among the objects to remove; each is
    // finished after all it names, so the reverse of the finishing order
    // puts referrers first.
    let mut finished = Vec::with_capacity(objects.len());
    // Each object's state, by its index: 0 new, 1 open, 2 done.
    let mut state = vec![0u8; objects.len()];
    let open = |state: &mut [u8], i: usize| -> Vec<usize> {
        if let Some(s) = state.get_mut(i) {
            *s = 1;
        }
        objects
            .get(i)
            .map(|o| children(repo, &o.digest))
            .unwrap_or_default()
            .iter()
            .filter_map(|c| index.get(c).copied())
            .collect()
    };
    for start in 0..objects.len() {
        if state.get(start) != Some(&0) {
            continue;
        }
        let kids = open(&mut state, start);
        let mut stack: Vec<(usize, Vec<usize>)> = vec![(start, kids)];
        while let Some((node, kids)) = stack.last_mut() {
            match kids.pop() {
                Some(k) if state.get(k) == Some(&0) => {
                    let grand = open(&mut state, k);
                    stack.push((k, grand));
                }
                Some(_) => {}
                None => {
                    let node = *node;
                    if let Some(s) = state.get_mut(node) {
                        *s = 2;
                    }
                    finished.push(node);
                    stack.pop();
                }
            }
        }
    }
    let mut slots: Vec<Option<Removal>> = objects.into_iter().map(Some).collect();
    Ok(finished
        .into_iter()
        .rev()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect())
}

/// Where a file of `store` (`objects` or `payloads`) is moved aside
/// while its age is checked again: the store's `work` directory, where
/// upstream's tools look for no object.
fn aside_path(root: &Path, store: &str, digest: &Digest) -> PathBuf {
    root.join(store)
        .join("work")
        .join(format!("{ASIDE}{digest}"))
}

/// The prefix of a file moved aside by a clean.
const ASIDE: &str = "clean-";

/// The two stores a clean removes from, objects first.
const STORES: [&str; 2] = ["objects", "payloads"];

/// Carries out `plan` on `repo`: objects, then payloads. Each file is
/// first moved aside and its age checked there: a writer that found it
/// in place touched it before the move (it is young: it goes back), and
/// one that comes after finds it gone and writes it again — so nothing a
/// concurrent commit or pull uses is removed, without a lock that
/// upstream's tools would not take. A file already gone is not an error.
/// Returns what was removed (`young` counts what went back too).
pub fn execute(repo: &FsRepository, plan: &Plan, grace: Duration) -> Result<Plan> {
    put_back_what_was_left_aside(repo, grace)?;
    let mut young = plan.young;
    let [objects, payloads] = STORES;
    let objects = remove_each(repo.root(), objects, &plan.objects, grace, &mut young)?;
    let payloads = remove_each(repo.root(), payloads, &plan.payloads, grace, &mut young)?;
    Ok(Plan {
        objects,
        payloads,
        young,
    })
}

/// Removes each of `list` (files of `store`) unless it turns out young
/// once aside (then it goes back, counted in `young`); returns those
/// removed.
fn remove_each(
    root: &Path,
    store: &str,
    list: &[Removal],
    grace: Duration,
    young: &mut usize,
) -> Result<Vec<Removal>> {
    let work = root.join(store).join("work");
    fs::create_dir_all(&work).map_err(Error::io("create work directory", &work))?;
    let mut removed = Vec::new();
    for r in list {
        let aside = aside_path(root, store, &r.digest);
        match fs::rename(&r.path, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("move aside", &r.path)(e)),
        }
        // (gone from aside: another clean, starting, dealt with it)
        let Ok(meta) = fs::symlink_metadata(&aside) else {
            continue;
        };
        if is_young(&meta, SystemTime::now(), grace) {
            put_back(&aside, &r.path)?;
            *young += 1;
        } else if remove_if_there(&aside)? {
            removed.push(r.clone());
        }
    }
    Ok(removed)
}

/// Removes a file; false if it was gone already.
fn remove_if_there(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("remove", path)(e)),
    }
}

/// Moves a file set aside back home (over a copy a writer stored again
/// meanwhile: the same content). Gone already is not an error.
fn put_back(aside: &Path, home: &Path) -> Result<()> {
    if let Some(dir) = home.parent() {
        fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
    }
    match fs::rename(aside, home) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("put back", home)(e)),
    }
}

/// What a clean killed between moving a file aside and removing it left
/// in the `work` directories: a young file goes back (a writer touched
/// it), an old one is removed.
fn put_back_what_was_left_aside(repo: &FsRepository, grace: Duration) -> Result<()> {
    let now = SystemTime::now();
    for store in STORES {
        let work = repo.root().join(store).join("work");
        let entries = match fs::read_dir(&work) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("list", &work)(e)),
        };
        for e in entries {
            let e = e.map_err(Error::io("list", &work))?;
            let name = e.file_name();
            let Some(digest) = name
                .to_str()
                .and_then(|n| n.strip_prefix(ASIDE))
                .and_then(|d| Digest::parse(d).ok())
            else {
                continue;
            };
            let Ok(meta) = fs::symlink_metadata(e.path()) else {
                continue;
            };
            if is_young(&meta, now, grace) {
                let home = match store {
                    "objects" => repo.object_path(&digest),
                    _ => repo.payload_path(&digest),
                };
                put_back(&e.path(), &home)?;
            } else {
                remove_if_there(&e.path())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit;
    use crate::tags::{TagAuthor, TagSpec};

    #[test]
    fn what_tags_reach_stays_and_the_rest_goes_once_old() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = FsRepository::open_or_create(tmp.path().join("repo")).unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("kept.txt"), "kept").unwrap();
        let kept = commit::commit_dir(&repo, &src).unwrap().layer;
        repo.push_tag(
            &TagSpec::parse("t/kept").unwrap(),
            kept,
            &TagAuthor("a@b".into()),
        )
        .unwrap();
        fs::write(src.join("kept.txt"), "stray").unwrap();
        let stray = commit::commit_dir(&repo, &src).unwrap().layer;
        // Young: nothing goes.
        let p = plan(&repo, GRACE).unwrap();
        assert!(p.objects.is_empty() && p.payloads.is_empty(), "{p:?}");
        assert!(p.young > 0);
        // Old: the stray layer, its manifest, blob and payload go.
        let p = plan(&repo, Duration::ZERO).unwrap();
        assert_eq!(p.objects.len(), 3, "{p:?}");
        assert_eq!(p.payloads.len(), 1, "{p:?}");
        assert!(p.objects.iter().any(|r| r.digest == stray));
        // The layer goes before its manifest, the manifest before its blob.
        assert_eq!(p.objects[0].digest, stray);
        assert!(matches!(
            repo.read_object(&p.objects[1].digest).unwrap(),
            Some(Object::Manifest(_))
        ));
        let done = execute(&repo, &p, Duration::ZERO).unwrap();
        assert_eq!(done.objects.len() + done.payloads.len(), 4);
        assert!(!repo.has_object(&stray));
        assert!(repo.has_object(&kept));
        assert!(plan(&repo, Duration::ZERO).unwrap().objects.is_empty());
        // A plan carried out again (a clean killed, then run again).
        let done = execute(&repo, &p, Duration::ZERO).unwrap();
        assert!(done.objects.is_empty() && done.payloads.is_empty());
    }

    #[test]
    fn an_old_object_a_commit_uses_again_is_young_again() {
        let (_tmp, repo, src) = committed(&[("a.txt", "again")]);
        // An hour passes: all of it is old and untagged.
        age_all(&repo);
        assert_eq!(plan(&repo, GRACE).unwrap().objects.len(), 3);
        // The same files committed again: what is reused is young again.
        commit::commit_dir(&repo, &src).unwrap();
        let p = plan(&repo, GRACE).unwrap();
        assert!(p.objects.is_empty() && p.payloads.is_empty(), "{p:?}");
    }

    /// A repository with a directory of `files` committed (untagged):
    /// the temporary directory holding both, the repository, the source.
    fn committed(files: &[(&str, &str)]) -> (tempfile::TempDir, FsRepository, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let repo = FsRepository::open_or_create(tmp.path().join("repo")).unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(&src).unwrap();
        for (name, text) in files {
            fs::write(src.join(name), text).unwrap();
        }
        commit::commit_dir(&repo, &src).unwrap();
        (tmp, repo, src)
    }

    /// Sets the modification time of every object and payload an hour back.
    fn age_all(repo: &FsRepository) {
        let old = SystemTime::now() - Duration::from_secs(3600);
        for (_, path, _) in digest_files(&repo.root().join("objects"))
            .unwrap()
            .into_iter()
            .chain(digest_files(&repo.root().join("payloads")).unwrap())
        {
            set_modified(&path, old);
        }
    }

    fn set_modified(path: &Path, t: SystemTime) {
        // (read-only files: made writable to set the time through a handle)
        let mut perms = fs::metadata(path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        fs::set_permissions(path, perms).unwrap();
        fs::File::options()
            .append(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn what_a_writer_touches_after_the_plan_is_put_back_not_removed() {
        let (_tmp, repo, src) = committed(&[("a.txt", "again")]);
        age_all(&repo);
        let p = plan(&repo, GRACE).unwrap();
        assert_eq!((p.objects.len(), p.payloads.len()), (3, 1), "{p:?}");
        // A commit of the same files between the plan and its execution.
        let again = commit::commit_dir(&repo, &src).unwrap().layer;
        let done = execute(&repo, &p, GRACE).unwrap();
        assert!(
            done.objects.is_empty() && done.payloads.is_empty(),
            "{done:?}"
        );
        assert_eq!(done.young, 4);
        assert!(repo.has_object(&again));
        for r in p.objects.iter().chain(&p.payloads) {
            assert!(r.path.is_file(), "{}", r.path.display());
        }
        // Nothing stays aside.
        for store in ["objects", "payloads"] {
            let work = repo.root().join(store).join("work");
            let left: Vec<_> = fs::read_dir(&work).map(|d| d.count()).into_iter().collect();
            assert!(left.iter().all(|n| *n == 0), "{store}: {left:?}");
        }
    }

    #[test]
    fn a_writer_after_the_move_aside_stores_the_file_again() {
        let (_tmp, repo, src) = committed(&[("a.txt", "again")]);
        let p = plan(&repo, Duration::ZERO).unwrap();
        let payload = &p.payloads[0].path;
        // What a clean does first: the payload is not at home.
        let aside = aside_path(repo.root(), "payloads", &p.payloads[0].digest);
        fs::create_dir_all(aside.parent().unwrap()).unwrap();
        fs::rename(payload, &aside).unwrap();
        // A commit now finds it missing and writes it again.
        commit::commit_dir(&repo, &src).unwrap();
        assert_eq!(fs::read(payload).unwrap(), b"again");
        fs::remove_file(&aside).unwrap();
    }

    #[test]
    fn a_clean_killed_with_files_aside_is_finished_by_the_next() {
        let (_tmp, repo, _) = committed(&[("a.txt", "one"), ("b.txt", "two")]);
        age_all(&repo);
        let p = plan(&repo, GRACE).unwrap();
        assert_eq!(p.payloads.len(), 2, "{p:?}");
        // Killed with both payloads aside: one touched before its move
        // (young), one not.
        let (young, old) = (&p.payloads[0], &p.payloads[1]);
        for r in [young, old] {
            let aside = aside_path(repo.root(), "payloads", &r.digest);
            fs::create_dir_all(aside.parent().unwrap()).unwrap();
            fs::rename(&r.path, &aside).unwrap();
        }
        set_modified(
            &aside_path(repo.root(), "payloads", &young.digest),
            SystemTime::now(),
        );
        // The next clean (with nothing of its own to remove) finishes.
        execute(&repo, &Plan::default(), GRACE).unwrap();
        assert!(young.path.is_file());
        assert!(!old.path.exists());
        assert!(!aside_path(repo.root(), "payloads", &young.digest).exists());
        assert!(!aside_path(repo.root(), "payloads", &old.digest).exists());
    }

    #[test]
    fn a_tag_that_cannot_be_read_stops_the_clean() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = FsRepository::open_or_create(tmp.path().join("repo")).unwrap();
        let dir = repo.root().join("tags/t");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("bad.tag"), b"not a tag stream").unwrap();
        assert!(matches!(
            plan(&repo, Duration::ZERO),
            Err(Error::CorruptTag { .. })
        ));
    }
}
