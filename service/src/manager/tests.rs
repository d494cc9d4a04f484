//! The manager with its records in memory: what each step writes, in which
//! order, and what a failure leaves.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::*;
use crate::repo::tags::{TagAuthor, TagSpec};
use crate::repo::{commit, EnvSpec, FsRepository};
use crate::runtimes::Change;

/// Records kept in memory; the runtimes' directories are real (editable
/// runtimes keep their edits there), their records are not.
#[derive(Default)]
struct Memory {
    root: PathBuf,
    own: Mutex<HashMap<PathBuf, RuntimeRecord>>,
    /// Upstream's record of each runtime, and whether it says "running".
    repo: Mutex<HashMap<String, (RepoRecord, bool)>>,
    /// Each write, in order.
    log: Mutex<Vec<&'static str>>,
    fail_create: AtomicBool,
    fail_save: AtomicBool,
}

impl Memory {
    fn log(&self) -> Vec<&'static str> {
        self.log.lock().clone()
    }
}

impl RecordStore for Arc<Memory> {
    fn create(&self, name: &str, record: &RuntimeRecord) -> Result<PathBuf, (PathBuf, io::Error)> {
        let dir = self.root.join(name);
        if self.fail_create.load(Ordering::Relaxed) {
            return Err((dir, io::Error::from(io::ErrorKind::PermissionDenied)));
        }
        std::fs::create_dir(&dir).map_err(|e| (dir.clone(), e))?;
        self.own.lock().insert(dir.clone(), record.clone());
        self.log.lock().push("create");
        Ok(dir)
    }

    fn update(&self, dir: &Path, change: &mut dyn FnMut(&mut RuntimeRecord)) -> io::Result<()> {
        let mut own = self.own.lock();
        let r = own.get_mut(dir).ok_or(io::ErrorKind::NotFound)?;
        change(r);
        self.log.lock().push("update");
        Ok(())
    }

    fn remove(&self, dir: &Path) -> io::Result<()> {
        self.own.lock().remove(dir);
        self.log.lock().push("remove");
        crate::scratch::remove_all(dir)
    }

    fn save_running(&self, _: &FsRepository, record: &RepoRecord) -> crate::repo::Result<()> {
        if self.fail_save.load(Ordering::Relaxed) {
            return Err(crate::repo::Error::NothingToCommit);
        }
        let name = record.name.clone();
        self.repo.lock().insert(name, (record.clone(), true));
        self.log.lock().push("save_running");
        Ok(())
    }

    fn save_ended(&self, _: &FsRepository, record: RepoRecord) {
        let name = record.name.clone();
        self.repo.lock().insert(name, (record, false));
        self.log.lock().push("save_ended");
    }
}

struct Fixture {
    manager: Manager,
    records: Arc<Memory>,
    repo_root: PathBuf,
    /// The runtimes' root process.
    root: std::process::Child,
    _tmp: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.root.kill();
        let _ = self.root.wait();
    }
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let records = Arc::new(Memory {
        root: tmp.path().join("scratch"),
        ..Memory::default()
    });
    std::fs::create_dir(&records.root).unwrap();
    let repo_root = tmp.path().join("repo");
    FsRepository::open_or_create(&repo_root).unwrap();
    let manager = Manager::new(Arc::new(Runtimes::new()), Box::new(records.clone()));
    let root = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    Fixture {
        manager,
        records,
        repo_root,
        root,
        _tmp: tmp,
    }
}

impl Fixture {
    /// A runtime `name` of one layer holding a.txt.
    fn starting(&self, name: &str, scratch: Option<bool>, durable: bool) -> Starting {
        let repo = FsRepository::open_or_create(&self.repo_root).unwrap();
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("a.txt"), b"a").unwrap();
        let layer = commit::commit_dir(&repo, src.path()).unwrap().layer;
        let repos = RepositorySet::new(repo, vec![], TagAuthor("t@h".into()));
        let spec = layer.to_string();
        let items = repos
            .resolve_stack(&EnvSpec::parse(&spec).unwrap())
            .unwrap();
        let view = View::build(&repos.read_stack_manifests(&items).unwrap()).unwrap();
        let (uid, gid) = crate::sys::user::effective_ids();
        Starting {
            name: name.into(),
            uid,
            gid,
            root_pid: self.root.id(),
            root_start_time: 0,
            spec,
            stack: items.iter().map(|i| i.digest).collect(),
            view: Arc::new(view),
            repos,
            locations: Vec::new(),
            scratch,
            durable,
            command: vec!["sh".into()],
            saved: None,
        }
    }

    fn own_record(&self, rt: &Runtime) -> RuntimeRecord {
        let dir = rt.record_dir().unwrap();
        self.records.own.lock().get(dir).cloned().unwrap()
    }

    fn repo_record(&self, name: &str) -> (RepoRecord, bool) {
        self.records.repo.lock().get(name).cloned().unwrap()
    }
}

#[test]
fn a_runtime_starts_recorded_twice_and_ends_recorded_before_it_leaves() {
    let f = fixture();
    let mut changes = f.manager.runtimes().subscribe();
    let rt = f.manager.start(f.starting("one", None, false)).unwrap();
    let own = f.own_record(&rt);
    assert_eq!((own.name.as_str(), own.root_pid), ("one", f.root.id()));
    assert_eq!(own.stack, stack::strings(&rt.stack()));
    assert_eq!(own.token, rt.token);
    assert!(!own.editable && !own.durable);
    let (repo, running) = f.repo_record("one");
    assert!(running);
    assert_eq!(repo.status.owner, Some(f.root.id()));
    assert_eq!(repo.status.stack.len(), 1);
    assert!(matches!(changes.try_recv(), Ok(Change::Started(_))));
    // The service's record first: a restarted service can always find
    // it. Each record is written once.
    assert_eq!(f.records.log(), ["create", "save_running"]);

    let dir = rt.record_dir().unwrap().to_owned();
    assert!(f.manager.end(rt.id));
    assert!(f.manager.runtimes().get(rt.id).is_none());
    assert!(!f.repo_record("one").1, "its end is recorded");
    assert!(!dir.exists());
    assert!(f.records.own.lock().is_empty());
    assert_eq!(
        f.records.log()[2..],
        ["save_ended", "remove"],
        "its end recorded before anything else goes"
    );
    assert!(matches!(changes.try_recv(), Ok(Change::Ended(_))));
    assert!(!f.manager.end(rt.id), "an ended runtime ends once");
}

#[test]
fn a_record_written_after_the_end_says_ended() {
    let f = fixture();
    let rt = f.manager.start(f.starting("late", None, false)).unwrap();
    f.manager.end(rt.id);
    // A commit or edit finishing after the end must not bring back a
    // record of a running runtime.
    f.manager.persist(&rt).unwrap();
    assert!(!f.repo_record("late").1);
    assert_eq!(f.records.log().last(), Some(&"save_ended"));
}

#[test]
fn persist_writes_both_records_from_the_runtime_and_the_changes_given() {
    let f = fixture();
    let rt = f
        .manager
        .start(f.starting("two", Some(false), false))
        .unwrap();
    f.manager
        .persist_with(
            &rt,
            |r| r.status.editable = false,
            |r| r.env_spec = "other".into(),
        )
        .unwrap();
    let own = f.own_record(&rt);
    assert_eq!(own.env_spec, "other");
    assert_eq!(own.stack, stack::strings(&rt.stack()));
    let (repo, running) = f.repo_record("two");
    assert!(running && !repo.status.editable);
    assert_eq!(
        repo.status.stack,
        rt.stack()
            .iter()
            .rev()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_transient_runtimes_edits_end_with_it_and_a_durable_ones_stay() {
    let f = fixture();
    let transient = f
        .manager
        .start(f.starting("t", Some(false), false))
        .unwrap();
    let edits = transient.editable().unwrap().scratch().root().to_owned();
    assert!(edits.starts_with(&f.records.root), "beside its record");
    std::fs::write(edits.join("upper/new"), b"x").unwrap();
    f.manager.end(transient.id);
    assert!(!edits.exists());

    let durable = f.manager.start(f.starting("d", Some(false), true)).unwrap();
    let edits = durable.editable().unwrap().scratch().root().to_owned();
    assert!(edits.starts_with(&f.repo_root), "in the repository");
    assert_eq!(f.own_record(&durable).edits_dir.as_deref(), Some(&*edits));
    std::fs::write(edits.join("upper/new"), b"x").unwrap();
    let dir = durable.record_dir().unwrap().to_owned();
    f.manager.end(durable.id);
    assert_eq!(std::fs::read(edits.join("upper/new")).unwrap(), b"x");
    assert!(!dir.exists(), "the service's record goes");
    let (record, running) = f.repo_record("d");
    assert!(!running && record.config.durable, "saved, to run again");
}

#[test]
fn a_durable_runtime_that_cannot_be_recorded_does_not_start_and_leaves_nothing() {
    let f = fixture();
    f.records.fail_save.store(true, Ordering::Relaxed);
    let err = f
        .manager
        .start(f.starting("d", Some(false), true))
        .unwrap_err();
    assert!(matches!(err, Error::Record(_)), "{err}");
    assert!(f.manager.runtimes().list().is_empty());
    assert!(f.records.own.lock().is_empty());
    let repo = FsRepository::open_or_create(&f.repo_root).unwrap();
    assert!(!repo.durable_dir("d").exists(), "its new edits went too");
    assert_eq!(std::fs::read_dir(&f.records.root).unwrap().count(), 0);
    // Any other runtime starts anyway: only upstream's tools miss it.
    let rt = f.manager.start(f.starting("t", None, false)).unwrap();
    assert!(f.manager.runtimes().get(rt.id).is_some());
}

#[test]
fn a_refused_start_leaves_nothing_behind() {
    let f = fixture();
    let first = f
        .manager
        .start(f.starting("same", Some(false), false))
        .unwrap();
    let err = f
        .manager
        .start(f.starting("same", Some(false), false))
        .unwrap_err();
    assert!(
        matches!(err, Error::Start(StartError::NameTaken(_))),
        "{err}"
    );
    // Only the first runtime's directory and record are left.
    assert_eq!(f.records.own.lock().len(), 1);
    let dirs: Vec<_> = std::fs::read_dir(&f.records.root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs, [first.record_dir().unwrap().to_owned()]);

    f.records.fail_create.store(true, Ordering::Relaxed);
    let err = f.manager.start(f.starting("new", None, false)).unwrap_err();
    assert!(matches!(err, Error::Scratch { .. }), "{err}");
    assert_eq!(f.manager.runtimes().list().len(), 1);
}

#[test]
fn edits_that_cannot_be_made_leave_no_record() {
    let f = fixture();
    let repo = FsRepository::open_or_create(&f.repo_root).unwrap();
    let edits = repo.durable_dir("d");
    std::fs::create_dir_all(edits.parent().unwrap()).unwrap();
    // A file where the edits directory would be.
    std::fs::write(&edits, b"not a directory").unwrap();
    let err = f
        .manager
        .start(f.starting("d", Some(false), true))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Scratch { path, .. } if *path == edits),
        "{err}"
    );
    assert!(f.records.own.lock().is_empty());
    assert_eq!(std::fs::read_dir(&f.records.root).unwrap().count(), 0);
    assert!(f.manager.runtimes().list().is_empty());
}

#[test]
fn a_runtime_whose_processes_are_gone_is_reaped() {
    let mut f = fixture();
    let rt = f.manager.start(f.starting("gone", None, false)).unwrap();
    assert!(f.manager.reap().is_empty(), "its root lives");
    f.root.kill().unwrap();
    f.root.wait().unwrap();
    assert_eq!(f.manager.reap(), [rt.id]);
    assert!(f.manager.runtimes().list().is_empty());
    assert!(!f.repo_record("gone").1);
}

#[test]
fn a_commit_adds_a_layer_empties_the_edits_tags_it_and_both_records_follow() {
    let f = fixture();
    let rt = f
        .manager
        .start(f.starting("c", Some(false), false))
        .unwrap();
    let before = rt.stack();
    let upper = rt.editable().unwrap().scratch().upper_path().to_owned();
    std::fs::write(upper.join("new.txt"), b"new").unwrap();
    let committed = f
        .manager
        .commit(
            &rt,
            Commit {
                tags: vec![TagSpec::parse_to_write("t/one").unwrap()],
                ..Commit::default()
            },
        )
        .unwrap();
    let stack = rt.stack();
    assert_eq!(stack.len(), before.len() + 1);
    assert_eq!(stack.last(), Some(&committed.digest));
    assert!(
        !upper.join("new.txt").exists(),
        "the edits are in the layer now"
    );
    assert_eq!(f.own_record(&rt).stack, stack::strings(&stack));
    assert_eq!(f.repo_record("c").0.status.stack.len(), stack.len());
    let repo = FsRepository::open_or_create(&f.repo_root).unwrap();
    let tag = repo
        .resolve_tag(&TagSpec::parse("t/one").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(tag.target, committed.digest);
    // Without an author given, the runtime's user (here: this process's).
    let (user, host) = durable::author(rt.uid);
    assert_eq!(tag.user, format!("{user}@{host}"));

    // Nothing more to commit: refused, nothing changes.
    let err = f.manager.commit(&rt, Commit::default()).unwrap_err();
    assert!(
        matches!(
            err,
            ChangeError::Commit {
                source: crate::repo::Error::NothingToCommit,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(rt.stack(), stack);
}

#[test]
fn a_read_only_runtime_is_neither_committed_nor_reset() {
    let f = fixture();
    let rt = f.manager.start(f.starting("ro", None, false)).unwrap();
    let err = f.manager.commit(&rt, Commit::default()).unwrap_err();
    assert!(matches!(err, ChangeError::ReadOnly(_)), "{err}");
    let err = f.manager.reset(&rt, &[]).unwrap_err();
    assert!(matches!(err, ChangeError::ReadOnly(_)), "{err}");
}

#[test]
fn a_reset_of_paths_says_which_had_no_edits() {
    let f = fixture();
    let rt = f
        .manager
        .start(f.starting("r", Some(false), false))
        .unwrap();
    let upper = rt.editable().unwrap().scratch().upper_path().to_owned();
    std::fs::write(upper.join("new.txt"), b"new").unwrap();
    let paths = [
        ("/spfs/new.txt".to_owned(), PathBuf::from("new.txt")),
        ("/spfs/a.txt".to_owned(), PathBuf::from("a.txt")),
    ];
    let unchanged = f.manager.reset(&rt, &paths).unwrap();
    assert_eq!(unchanged, ["/spfs/a.txt"]);
    assert!(!upper.join("new.txt").exists());
}

#[test]
fn a_new_stack_and_a_change_of_editability_are_recorded_twice() {
    let f = fixture();
    let rt = f.manager.start(f.starting("e", None, false)).unwrap();
    f.manager.restack(&rt, "").unwrap();
    assert!(rt.stack().is_empty());
    assert_eq!(f.own_record(&rt).env_spec, "");
    assert!(f.repo_record("e").0.status.stack.is_empty());

    assert!(f.manager.set_editable(&rt, true).unwrap());
    assert!(!f.manager.set_editable(&rt, true).unwrap(), "once");
    let edits = rt.editable().unwrap().scratch().root().to_owned();
    assert_eq!(Some(&*edits), rt.record_dir(), "beside its record");
    assert!(f.own_record(&rt).editable && !f.own_record(&rt).read_only);
    assert!(f.repo_record("e").0.status.editable);

    assert!(f.manager.set_editable(&rt, false).unwrap());
    assert!(f.own_record(&rt).read_only);
    assert!(!f.repo_record("e").0.status.editable);

    f.manager.end(rt.id);
    let err = f.manager.set_editable(&rt, true).unwrap_err();
    assert!(matches!(err, ChangeError::Ended(_)), "{err}");
}

#[test]
fn edits_made_durable_move_into_the_repository_and_both_records_say_so() {
    let f = fixture();
    let rt = f
        .manager
        .start(f.starting("k", Some(false), false))
        .unwrap();
    let upper = rt.editable().unwrap().scratch().upper_path().to_owned();
    std::fs::write(upper.join("kept.txt"), b"kept").unwrap();
    assert!(f.manager.make_durable(&rt).unwrap());
    assert!(!f.manager.make_durable(&rt).unwrap(), "once");
    let repo = FsRepository::open_or_create(&f.repo_root).unwrap();
    let edits = repo.durable_dir("k");
    assert_eq!(rt.editable().unwrap().scratch().root(), edits);
    assert_eq!(
        std::fs::read(edits.join("upper/kept.txt")).unwrap(),
        b"kept"
    );
    let own = f.own_record(&rt);
    assert!(own.durable && own.edits_dir.as_deref() == Some(&*edits));
    let (record, running) = f.repo_record("k");
    assert!(running && record.config.durable);
    assert_eq!(record.config.upper_dir, edits.join("upper"));
    f.manager.end(rt.id);
    assert!(edits.join("upper/kept.txt").exists(), "kept after its end");
}

#[test]
fn a_saved_durable_runtime_runs_again_with_its_edits_and_only_once() {
    let f = fixture();
    // Saved records are read from the repository: these go to disk.
    let manager = Manager::new(
        Arc::new(Runtimes::new()),
        Box::new(FsRecords::new(&f.records.root)),
    );
    let rt = manager.start(f.starting("d", Some(false), true)).unwrap();
    let upper = rt.editable().unwrap().scratch().upper_path().to_owned();
    std::fs::write(upper.join("kept.txt"), b"kept").unwrap();
    let rerun = |force| {
        let s = f.starting("d", None, false);
        Rerun {
            name: "d".into(),
            uid: s.uid,
            gid: s.gid,
            by_root: false,
            root_pid: s.root_pid,
            root_start_time: 0,
            repos: s.repos,
            locations: Vec::new(),
            editable: true,
            force,
            command: Vec::new(),
        }
    };
    let err = manager.rerun(rerun(false)).unwrap_err();
    assert!(
        matches!(err, Error::Durable(DurableError::Running { .. })),
        "{err}"
    );
    manager.end(rt.id);
    let (again, _notice) = manager.rerun(rerun(false)).unwrap();
    assert!(again.is_durable() && again.stack() == rt.stack());
    let upper = again.editable().unwrap().scratch().upper_path().to_owned();
    assert_eq!(std::fs::read(upper.join("kept.txt")).unwrap(), b"kept");
    // With force, the running one ends first and its edits stay.
    let (third, _) = manager.rerun(rerun(true)).unwrap();
    assert!(manager.runtimes().get(again.id).is_none());
    let upper = third.editable().unwrap().scratch().upper_path().to_owned();
    assert!(upper.join("kept.txt").exists());

    let err = manager
        .rerun(Rerun {
            name: "nothing".into(),
            ..rerun(false)
        })
        .unwrap_err();
    assert!(
        matches!(err, Error::Durable(DurableError::NoSuchSaved { .. })),
        "{err}"
    );
}
