//! Durable runtimes, joining a runtime, and runtimes recorded in the
//! repository as upstream records them — end to end, through the real
//! binaries on a real mount, with upstream's own `spfs` as the peer that
//! reads what we record (`../shared/peers/spfs-0.44`: those tests are
//! ignored without it, and `scripts/test` runs them where it is).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::service::*;
use spfs_fuse_macos::repo::{Digest, FsRepository};

/// Upstream's `spfs ARGS` on the service's repository.
fn upstream(svc: &Service, spfs: &Path, args: &[&str]) -> Output {
    Command::new(spfs)
        .args(args)
        .env("SPFS_STORAGE_ROOT", &svc.repo)
        .env("HOME", svc.dir.path())
        .output()
        .unwrap()
}

fn fails(o: &Output) -> String {
    assert!(!o.status.success(), "should have failed: {}", text(o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `runtime ls --json`, by name.
fn listed(svc: &Service) -> Vec<serde_json::Value> {
    let o = svc.cli(&["runtime", "ls", "--json"]);
    serde_json::from_str(&ok(&o)).unwrap()
}

fn find<'a>(list: &'a [serde_json::Value], name: &str) -> Option<&'a serde_json::Value> {
    list.iter().find(|r| r["name"] == name)
}

fn tag_file(svc: &Service, org: &str, name: &str) -> PathBuf {
    svc.repo
        .join(format!("tags/spfs/runtimes/{org}/{name}.tag"))
}

/// A `run` in the background (its stdout piped), killed when dropped.
fn spawn_run(svc: &Service, args: &[&str]) -> Kill {
    Kill(
        svc.command(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn wait_running(svc: &Service, name: &str) {
    wait_until(&format!("runtime {name} to run"), || {
        find(&listed(svc), name).is_some_and(|r| r["running"] == true)
    });
}

#[test]
fn a_durable_runtime_is_saved_and_survives_kills_restarts_and_a_reboot() {
    let mut svc = Service::start("repo");
    let m = svc.mnt.display().to_string();
    let made = svc.cli(&[
        "run",
        "-k",
        "--runtime-name",
        "keep",
        "--edit",
        "fixture/base",
        "--",
        "sh",
        "-c",
        &format!("echo kept > {m}/kept.txt && rm {m}/hello.txt"),
    ]);
    ok(&made);

    // Saved, with its edits' size, in the repository's durable_edits.
    let list = listed(&svc);
    let keep = find(&list, "keep").expect("listed");
    assert_eq!(keep["running"], false, "{keep}");
    assert_eq!(keep["durable"], true, "{keep}");
    assert_eq!(keep["scratch_files"], 1, "{keep}");
    assert_eq!(keep["scratch_bytes"], 5, "{keep}");
    let table = ok(&svc.cli(&["runtime", "ls"]));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("keep ") && l.contains("saved") && l.contains("5 B in 1 file")),
        "{table}"
    );
    let upper = svc.repo.join("durable_edits/keep/upper");
    assert_eq!(std::fs::read(upper.join("kept.txt")).unwrap(), b"kept\n");
    assert!(
        upper.join(".wh.hello.txt").exists(),
        "whiteouts are .wh. files"
    );

    let sees_edits = |svc: &Service| {
        let o = svc.cli(&[
            "run",
            "--rerun",
            "keep",
            "--",
            "sh",
            "-c",
            &format!(
                "cat {m}/kept.txt; test -e {m}/hello.txt && echo hello-back || echo hello-gone"
            ),
        ]);
        assert_eq!(ok(&o), "kept\nhello-gone\n", "{}", svc.log());
    };
    sees_edits(&svc);

    // The service killed with SIGKILL, then started again.
    svc.sigkill();
    svc.restart();
    sees_edits(&svc);
    // A clean shutdown and start.
    ok(&svc.cli(&["shutdown", "--force"]));
    svc.restart();
    sees_edits(&svc);

    // A clean stop, then a "reboot": the service's state and every
    // scratch directory gone. The repository is all there is.
    svc.stop();
    std::fs::remove_dir_all(svc.scratch_root()).unwrap();
    svc.restart();
    let list = listed(&svc);
    assert_eq!(find(&list, "keep").unwrap()["running"], false);
    sees_edits(&svc);

    // Run again while it runs: refused, unless --force.
    let mut first = spawn_run(&svc, &["run", "--rerun", "keep", "--", "sleep", "60"]);
    wait_running(&svc, "keep");
    let e = fails(&svc.cli(&["run", "--rerun", "keep", "--", "true"]));
    assert!(
        e.contains("runtime 'keep' is running") && e.contains("--force"),
        "{e}"
    );
    let o = svc.cli(&[
        "run",
        "--rerun",
        "keep",
        "--force",
        "--",
        "cat",
        &format!("{m}/kept.txt"),
    ]);
    assert_eq!(ok(&o), "kept\n");
    // The first run's process lives on, outside the runtime: it holds it
    // no more.
    assert!(first.0.try_wait().unwrap().is_none());
    assert_eq!(find(&listed(&svc), "keep").unwrap()["running"], false);
    let _ = first.0.kill();
    let _ = first.0.wait();

    // --no-edit shows the edits and takes none.
    let o = svc.cli(&[
        "run",
        "--rerun",
        "keep",
        "--no-edit",
        "--",
        "sh",
        "-c",
        &format!("cat {m}/kept.txt; echo x > {m}/new.txt"),
    ]);
    assert!(!o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "kept\n");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Read-only file system"),
        "{}",
        text(&o)
    );

    // rm refuses a durable runtime unless asked, as upstream (status 2).
    let o = svc.cli(&["runtime", "rm", "keep"]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("won't delete runtime 'keep': it is marked as durable")
            && e.contains("--remove-durable"),
        "{e}"
    );
    assert!(tag_file(&svc, "meta", "keep").exists());
    assert!(upper.join("kept.txt").exists());
    ok(&svc.cli(&["runtime", "rm", "--remove-durable", "keep"]));
    assert!(!svc.repo.join("durable_edits/keep").exists());
    assert!(!tag_file(&svc, "meta", "keep").exists());
    assert!(!tag_file(&svc, "data", "keep").exists());
    assert!(find(&listed(&svc), "keep").is_none());
}

#[test]
fn a_live_durable_runtime_comes_back_after_sigkill_and_is_saved_when_it_ends() {
    let mut svc = Service::start("repo");
    let m = svc.mnt.display().to_string();
    let mut shell = RuntimeShell::start_durable(&svc, "live", "fixture/base");
    shell.eval(&format!("echo one > {m}/one.txt"));
    svc.sigkill();
    svc.restart();
    // Its processes have it back, edits and all.
    assert_eq!(shell.eval(&format!("cat {m}/one.txt")), vec!["one"]);
    assert_eq!(find(&listed(&svc), "live").unwrap()["running"], true);
    // Ends while the service is down: saved at the next start.
    svc.sigkill();
    drop(shell);
    svc.restart();
    let list = listed(&svc);
    let live = find(&list, "live").expect("listed");
    assert_eq!(live["running"], false, "{live}");
    assert_eq!(live["durable"], true, "{live}");
    let o = svc.cli(&[
        "run",
        "--rerun",
        "live",
        "--",
        "cat",
        &format!("{m}/one.txt"),
    ]);
    assert_eq!(ok(&o), "one\n");
}

#[test]
fn names_are_checked_and_kept_apart() {
    let svc = Service::start("repo");
    ok(&svc.cli(&[
        "run",
        "-k",
        "--runtime-name",
        "taken",
        "fixture/base",
        "--",
        "true",
    ]));
    let e = fails(&svc.cli(&[
        "run",
        "-k",
        "--runtime-name",
        "taken",
        "fixture/base",
        "--",
        "true",
    ]));
    assert!(e.contains("a runtime named 'taken' already exists"), "{e}");
    let e = fails(&svc.cli(&[
        "run",
        "--runtime-name",
        "taken",
        "fixture/base",
        "--",
        "true",
    ]));
    assert!(e.contains("already exists"), "{e}");
    // Edits left without a record are never taken over.
    std::fs::create_dir_all(svc.repo.join("durable_edits/orphan/upper")).unwrap();
    let e = fails(&svc.cli(&[
        "run",
        "-k",
        "--runtime-name",
        "orphan",
        "fixture/base",
        "--",
        "true",
    ]));
    assert!(
        e.contains("durable edits directory") && e.contains("orphan"),
        "{e}"
    );
    for bad in ["a/b", "..", "-x", "sp ace"] {
        let name = format!("--runtime-name={bad}");
        let e = fails(&svc.cli(&["run", "-k", &name, "fixture/base", "--", "true"]));
        assert!(e.contains("invalid runtime name"), "{bad}: {e}");
    }
    // SPFS_KEEP_RUNTIME as -k; without a name it says the runtime is not kept.
    let o = svc
        .command(BIN)
        .env("SPFS_KEEP_RUNTIME", "1")
        .args([
            "run",
            "--runtime-name",
            "by-env",
            "fixture/base",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(find(&listed(&svc), "by-env").unwrap()["durable"], true);
    let o = svc
        .command(BIN)
        .env("SPFS_KEEP_RUNTIME", "1")
        .args(["run", "fixture/base", "--", "true"])
        .output()
        .unwrap();
    ok(&o);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not kept"),
        "{}",
        text(&o)
    );
    let o = svc
        .command(BIN)
        .env("SPFS_KEEP_RUNTIME", "0")
        .args([
            "run",
            "--runtime-name",
            "not-kept",
            "fixture/base",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    ok(&o);
    assert!(find(&listed(&svc), "not-kept").is_none());
    let e = fails(&svc.cli(&["run", "--rerun", "nothing", "--", "true"]));
    assert!(e.contains("no saved runtime named 'nothing'"), "{e}");
    // Missing edits: run with none, and said so.
    std::fs::remove_dir_all(svc.repo.join("durable_edits/taken")).unwrap();
    let o = svc.cli(&["run", "--rerun", "taken", "--", "true"]);
    ok(&o);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("are missing"),
        "{}",
        text(&o)
    );
}

/// Deletes every object and payload the tags do not reach (what `spfs
/// clean` removes, without its grace period); returns how many went.
fn clean(repo: &FsRepository) -> usize {
    let plan = spfs_fuse_macos::repo::clean::plan(repo, Duration::ZERO).unwrap();
    let done = spfs_fuse_macos::repo::clean::execute(repo, &plan, Duration::ZERO).unwrap();
    done.objects.len() + done.payloads.len()
}

#[test]
fn runtimes_are_recorded_in_the_repository_while_they_run() {
    let svc = Service::start("repo");
    let m = svc.mnt.display().to_string();
    let mut shell = RuntimeShell::start(&svc, "rec", "fixture/base");
    assert!(tag_file(&svc, "meta", "rec").exists());
    assert!(tag_file(&svc, "data", "rec").exists());
    // A commit's new layer, tagged nowhere else, is kept by the record.
    shell.eval(&format!("echo committed > {m}/only-here.txt"));
    let layer = ok(&svc.cli(&["commit", "--runtime", "rec"]))
        .trim()
        .to_owned();
    let info: serde_json::Value =
        serde_json::from_str(&ok(&svc.cli(&["runtime", "info", "rec", "--json"]))).unwrap();
    let stack: Vec<String> = info["stack"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stack.last(), Some(&layer));
    // A stray payload goes in a clean; everything the runtime uses stays.
    let repo = FsRepository::open(&svc.repo).unwrap();
    let (stray, _) = repo.write_payload(&b"nobody keeps me"[..]).unwrap();
    assert!(clean(&repo) >= 1);
    assert!(
        !repo.has_payload(&stray),
        "the clean removes what no tag keeps"
    );
    // The runtime reads its layers from the repository: nothing is missing
    // (new processes, so nothing comes from an open handle).
    assert_eq!(
        shell.eval(&format!("cat {m}/only-here.txt")),
        vec!["committed"]
    );
    let o = svc.cli(&["run", &layer, "--", "cat", &format!("{m}/only-here.txt")]);
    assert_eq!(ok(&o), "committed\n");
    // A transient runtime's record goes when it ends.
    drop(shell);
    wait_until("the record to go", || {
        !tag_file(&svc, "meta", "rec").exists() && !tag_file(&svc, "data", "rec").exists()
    });
}

#[test]
fn a_runtime_upstream_saved_is_listed_rerun_and_committed() {
    let svc = Service::start("repo");
    let m = svc.mnt.display().to_string();
    // The fixture holds character devices: extracting needs root (CI is).
    let st = Command::new("tar")
        .arg("xf")
        .arg(common::fixtures().join("durable-runtime.tar"))
        .arg("-C")
        .arg(svc.dir.path())
        .status()
        .unwrap();
    assert!(st.success(), "tar (as root) of durable-runtime.tar");
    let list = listed(&svc);
    let sample = find(&list, "sample").expect("listed");
    assert_eq!(sample["running"], false);
    assert_eq!(sample["durable"], true);
    // Upstream's whiteout (a device) is not an edit of its own.
    assert_eq!(sample["scratch_files"], 1, "{sample}");
    // A record we cannot read is named, never fatal.
    let author = spfs_fuse_macos::repo::tags::TagAuthor("t@h".into());
    let repo = FsRepository::open(&svc.repo).unwrap();
    let bad = spfs_fuse_macos::repo::TagSpec::parse("spfs/runtimes/meta/broken").unwrap();
    repo.push_tag(&bad, Digest::of(b"x"), &author).unwrap();
    let o = svc.cli(&["runtime", "ls"]);
    let out = ok(&o);
    assert!(out.contains("sample"), "{out}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("runtime 'broken'"),
        "{}",
        text(&o)
    );
    // Its edit shows, and upstream's whiteout deletes hello.txt.
    let shows_its_edits = || {
        let script = format!("cat {m}/durable.txt; ls {m}");
        let out = ok(&svc.cli(&["run", "--rerun", "sample", "--", "sh", "-c", &script]));
        assert!(out.starts_with("hi\n"), "{out}");
        assert!(!out.contains("hello.txt"), "{out}");
    };
    shows_its_edits();
    // Its recorded command by default.
    let o = svc.cli(&["run", "--rerun", "sample"]);
    assert!(
        ok(&o).contains("durable.txt"),
        "its own command: {}",
        text(&o)
    );
    // Committed while saved: a layer on its stack, its edits emptied.
    let layer = ok(&svc.cli(&["commit", "--runtime", "sample"]))
        .trim()
        .to_owned();
    let info: serde_json::Value =
        serde_json::from_str(&ok(&svc.cli(&["runtime", "info", "sample", "--json"]))).unwrap();
    assert_eq!(info["stack"].as_array().unwrap().len(), 2, "{info}");
    assert_eq!(info["stack"][1], layer.as_str());
    assert_eq!(info["scratch_files"], 0, "{info}");
    shows_its_edits();
}

#[test]
fn join_runs_a_command_inside_a_live_runtime() {
    let svc = Service::start("repo");
    let m = svc.mnt.display().to_string();
    let mut shell = RuntimeShell::start(&svc, "joined", "fixture/base");
    shell.eval(&format!("echo mine > {m}/mine.txt"));
    let o = svc
        .command(BIN)
        .args([
            "join",
            "joined",
            "--",
            "sh",
            "-c",
            &format!("echo $SPFS_RUNTIME; cat {m}/mine.txt; echo more >> {m}/mine.txt; exit 3"),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "joined\nmine\n");
    assert_eq!(
        shell.eval(&format!("cat {m}/mine.txt")),
        vec!["mine", "more"]
    );
    // Not a member: sees no runtime.
    let outside = std::fs::read_dir(&svc.mnt).unwrap().count();
    assert_eq!(outside, 0);
    let e = fails(&svc.cli(&["join", "nobody-has-this", "--", "true"]));
    assert!(e.contains("no runtime named 'nobody-has-this'"), "{e}");
    // Another user cannot join.
    let o = svc
        .command("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            BIN,
            "join",
            "joined",
            "--",
            "ls",
            &m,
        ])
        .output()
        .expect("setpriv (util-linux)");
    assert!(!o.status.success(), "another user joined");
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(said.contains("another user"), "{said}");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("mine.txt"));
}

#[test]
fn runtimes_started_together_each_live_and_leave_no_record() {
    let svc = Service::start("repo");
    let mut runs: Vec<Kill> = (0..20)
        .map(|_| spawn_run(&svc, &["run", "fixture/base", "--", "sleep", "60"]))
        .collect();
    wait_until("20 runtimes", || {
        listed(&svc).iter().filter(|r| r["running"] == true).count() == 20
    });
    // None ended under its live process (a reap racing a start did).
    std::thread::sleep(Duration::from_millis(500));
    let list = listed(&svc);
    assert_eq!(
        list.iter().filter(|r| r["running"] == true).count(),
        20,
        "{list:?}"
    );
    assert!(list.iter().all(|r| r["running"] == true), "{list:?}");
    for r in &mut runs {
        let _ = r.0.kill();
        let _ = r.0.wait();
    }
    wait_until("every runtime to end", || listed(&svc).is_empty());
    let meta = svc.repo.join("tags/spfs/runtimes/meta");
    let left: Vec<_> = std::fs::read_dir(&meta)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "records left behind: {left:?}");
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn upstream_reads_our_record_of_a_saved_durable_runtime() {
    let spfs = upstream_spfs();
    let svc = Service::start("repo");
    let m = svc.mnt.display().to_string();
    ok(&svc.cli(&[
        "run",
        "-k",
        "--runtime-name",
        "keep",
        "--edit",
        "fixture/base",
        "--",
        "sh",
        "-c",
        &format!("echo kept > {m}/kept.txt"),
    ]));
    // Saved once its processes are gone (our listing settles that).
    assert_eq!(find(&listed(&svc), "keep").unwrap()["running"], false);
    let ls = ok(&upstream(&svc, &spfs, &["runtime", "ls"]));
    assert!(
        ls.lines().any(|l| l.starts_with("keep")
            && l.contains("durable=true")
            && l.contains("status=saved")),
        "{ls}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&ok(&upstream(&svc, &spfs, &["runtime", "info", "keep"]))).unwrap();
    assert_eq!(info["config"]["durable"], true, "{info}");
    assert_eq!(info["status"]["running"], false, "{info}");
    assert_eq!(
        info["config"]["upper_dir"],
        svc.repo
            .join("durable_edits/keep/upper")
            .display()
            .to_string(),
        "{info}"
    );
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn upstream_reads_our_record_of_a_live_runtime_and_its_committed_stack() {
    let spfs = upstream_spfs();
    let svc = Service::start("repo");
    let m = svc.mnt.display().to_string();
    let mut shell = RuntimeShell::start(&svc, "rec", "fixture/base");
    shell.eval(&format!("echo committed > {m}/only-here.txt"));
    let layer = ok(&svc.cli(&["commit", "--runtime", "rec"]))
        .trim()
        .to_owned();
    let info: serde_json::Value =
        serde_json::from_str(&ok(&svc.cli(&["runtime", "info", "rec", "--json"]))).unwrap();
    let mut top_down: Vec<String> = info["stack"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    top_down.reverse();
    assert_eq!(top_down.first(), Some(&layer));
    let up: serde_json::Value =
        serde_json::from_str(&ok(&upstream(&svc, &spfs, &["runtime", "info", "rec"]))).unwrap();
    assert_eq!(up["status"]["stack"], serde_json::json!(top_down), "{up}");
    assert_eq!(up["status"]["running"], true, "{up}");
    assert_eq!(up["status"]["editable"], true, "{up}");
    assert_eq!(up["config"]["durable"], false, "{up}");
}
