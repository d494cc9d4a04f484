//! Misuse and failure, end to end: what a hostile trial found (a second
//! service on the same mount, a killed service's dead mount, damaged
//! payloads, uncommittable scratches, tag and name mistakes, command-line
//! slips) — each answered with a clear line and nothing lost.

mod common;

use std::path::Path;
use std::process::Command;

use common::service::*;
use common::{fixture_copy, snapshot};

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `spfs-fuse-macos` with a clean environment and `repo` as storage.
fn cli_in(repo: &Path, home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", home)
        .env("SPFS_STORAGE_ROOT", repo)
        .output()
        .unwrap()
}

#[test]
fn a_second_service_on_a_live_mount_refuses_and_the_first_serves_on() {
    let svc = Service::start("repo");
    let (_rt, line) = spawn_in_base(&svc, "echo up; exec sleep 30");
    assert_eq!(line.trim(), "up");
    let other = svc.dir.path().join("other");
    let o = svc
        .command(BIN)
        .args(["service", "--threads", "1"])
        .env("SPFS_FUSE_SOCKET", other.join("control.sock"))
        .env("SPFS_FUSE_SCRATCH_ROOT", other.join("scratch"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = err(&o);
    let pid = svc.child.id();
    assert!(
        e.contains(&format!(
            "a service is already serving {} (pid {pid})",
            svc.mnt.display()
        )),
        "{e}"
    );
    assert!(!e.contains("stale"), "{e}");
    assert!(!other.join("control.sock").exists(), "its socket was left");
    // The first service's runtime still sees its files.
    let m = svc.mnt.display().to_string();
    let out = ok(&svc.run("fixture/base", &["cat", &format!("{m}/hello.txt")]));
    assert_eq!(out.trim(), "hello from base");
    assert!(text(&svc.cli(&["runtime", "ls"])).contains("fixture/base"));
}

#[test]
fn status_and_shutdown_clear_the_dead_mount_of_a_killed_service() {
    let mut svc = Service::start("repo");
    svc.sigkill();
    assert!(is_mounted(&svc.mnt), "SIGKILL leaves the mount");
    let o = svc.cli(&["status"]);
    assert_eq!(o.status.code(), Some(1));
    let e = err(&o);
    assert!(
        e.contains("removed the dead mount at") && e.contains("the service is not running"),
        "{e}"
    );
    assert!(!is_mounted(&svc.mnt), "the dead mount is still there");
    // The hint names the flags in use.
    assert!(
        e.contains(&format!(
            "start it with 'spfs-fuse-macos --socket {} --mountpoint {} start'",
            svc.sock.display(),
            svc.mnt.display()
        )),
        "{e}"
    );
    // And shutdown after another kill.
    svc.restart();
    svc.sigkill();
    let o = svc.cli(&["shutdown"]);
    assert!(o.status.success());
    assert!(text(&o).contains("the service is not running"));
    assert!(err(&o).contains("removed the dead mount"), "{}", err(&o));
    assert!(!is_mounted(&svc.mnt));
}

/// The payload file of `hello.txt` in fixture/base, found by its content.
fn hello_payload(repo: &Path) -> std::path::PathBuf {
    let mut found = None;
    for d in std::fs::read_dir(repo.join("payloads")).unwrap() {
        let d = d.unwrap().path();
        if !d.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&d).unwrap() {
            let f = f.unwrap().path();
            if std::fs::read(&f).unwrap() == b"hello from base\n" {
                found = Some(f);
            }
        }
    }
    found.expect("the payload of hello.txt")
}

#[test]
fn a_damaged_or_missing_payload_answers_eio_never_short_bytes() {
    let svc = Service::start("repo");
    let payload = hello_payload(&svc.repo);
    let m = svc.mnt.display().to_string();
    // Truncated: same name, fewer bytes.
    std::fs::write(&payload, b"hello ").unwrap();
    let o = svc.run("fixture/base", &["cat", &format!("{m}/hello.txt")]);
    assert!(!o.status.success());
    assert!(err(&o).contains("Input/output error"), "{}", err(&o));
    assert!(o.stdout.is_empty(), "served short bytes: {:?}", o.stdout);
    let log = svc.log();
    assert!(
        log.contains("is 6 bytes but its manifest says 16") && log.contains("spfs check --repair"),
        "{log}"
    );
    // Missing.
    std::fs::remove_file(&payload).unwrap();
    let o = svc.run("fixture/base", &["cat", &format!("{m}/hello.txt")]);
    assert!(err(&o).contains("Input/output error"), "{}", err(&o));
    assert!(svc.log().contains("is missing from"), "{}", svc.log());
}

#[test]
fn an_uncommittable_scratch_is_named_whole_and_nothing_is_written() {
    let svc = Service::start("repo");
    let mut sh = RuntimeShell::start(&svc, "odd", "fixture/base");
    sh.eval(
        "echo fine > $M/fine.txt; mkfifo $M/pipe; mkdir -p $M/deep/er; mkfifo $M/deep/er/pipe2
         python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.bind('$M/sock')\"",
    );
    let before = snapshot(&svc.repo.join("objects"));
    let o = svc.cli(&["commit", "--runtime", "odd"]);
    assert_eq!(o.status.code(), Some(1));
    let e = err(&o);
    assert!(
        e.contains("nothing was committed: 3 entries cannot be committed")
            && e.contains("deep/er/pipe2 (a FIFO)")
            && e.contains("pipe (a FIFO)")
            && e.contains("sock (a socket)")
            && e.contains("reset or delete them, then commit again"),
        "{e}"
    );
    assert!(
        snapshot(&svc.repo.join("objects")) == before,
        "objects were written"
    );
    // The edits are all still there.
    assert_eq!(sh.eval("cat $M/fine.txt"), ["fine"]);
}

#[test]
fn a_commit_with_no_edits_says_so_and_adds_no_layer() {
    let svc = Service::start("repo");
    let mut sh = RuntimeShell::start(&svc, "idle", "fixture/base");
    let o = svc.cli(&["commit", "--runtime", "idle"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("nothing to commit: the runtime has no edits"),
        "{}",
        err(&o)
    );
    let info: serde_json::Value =
        serde_json::from_str(&text(&svc.cli(&["runtime", "ls", "--json"]))).unwrap();
    assert_eq!(info[0]["stack"].as_array().unwrap().len(), 1, "{info}");
    sh.eval("echo x > $M/x");
    ok(&svc.cli(&["commit", "--runtime", "idle"]));
}

#[test]
fn tags_are_checked_before_anything_is_written_and_a_moved_tag_is_reported() {
    let (_t, repo) = fixture_copy("repo");
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("d");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f"), "one").unwrap();
    let d = dir.to_str().unwrap();
    let before = snapshot(&repo);
    let o = cli_in(&repo, home.path(), &["commit", "--path", d, "-t", "x~1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("'~1' names an earlier version of a tag"),
        "{}",
        err(&o)
    );
    let long = "a".repeat(300);
    let o = cli_in(&repo, home.path(), &["commit", "--path", d, "-t", &long]);
    assert!(
        err(&o).contains("is 300 characters long; at most 240"),
        "{}",
        err(&o)
    );
    assert!(snapshot(&repo) == before, "something was written");
    // Over an existing tag: done, and the previous target is named.
    let first = text(&cli_in(
        &repo,
        home.path(),
        &["commit", "--path", d, "-t", "x"],
    ));
    std::fs::write(dir.join("f"), "two").unwrap();
    let o = cli_in(&repo, home.path(), &["commit", "--path", d, "-t", "x"]);
    assert!(
        err(&o).contains(&format!(
            "note: tag x pointed to {}; that is x~1 now",
            first.trim()
        )),
        "{}",
        err(&o)
    );
}

#[test]
fn runtime_commits_are_attributed_to_the_user_as_upstream_does() {
    let svc = Service::start("repo");
    std::fs::create_dir_all(svc.dir.path().join(".config/spfs")).unwrap();
    std::fs::write(
        svc.dir.path().join(".config/spfs/spfs.toml"),
        format!(
            "[storage]\nroot = \"{}\"\n\n[user]\nname = \"jdoe\"\ndomain = \"studio.example\"\n",
            svc.repo.display()
        ),
    )
    .unwrap();
    let mut sh = RuntimeShell::start(&svc, "who", "fixture/base");
    sh.eval("echo x > $M/x");
    ok(&svc.cli(&["commit", "--runtime", "who", "-t", "by/jdoe"]));
    let info = text(&svc.cli(&["info", "by/jdoe"]));
    assert!(info.contains("(by jdoe@studio.example at "), "{info}");
}

#[test]
fn runtime_names_that_are_not_path_components_are_refused() {
    let svc = Service::start("repo");
    for bad in [".", "..", ".hidden", "-x", "a/b"] {
        let name = format!("--runtime-name={bad}");
        let o = svc.cli(&["run", &name, "fixture/base", "--", "true"]);
        assert_eq!(o.status.code(), Some(1), "{bad}");
        assert!(
            err(&o).contains(&format!("invalid runtime name '{bad}'")),
            "{}",
            err(&o)
        );
    }
}

#[test]
fn run_without_a_command_or_without_dashes_says_what_to_do() {
    let svc = Service::start("repo");
    let o = svc.cli(&["run", "fixture/base"]);
    assert_eq!(o.status.code(), Some(127));
    assert!(
        err(&o).contains("no command to run: give one after '--'"),
        "{}",
        err(&o)
    );
    let o = svc.cli(&["run", "fixture/base", "ls", "-l"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains("put '--' before the command: spfs-fuse-macos run fixture/base -- ls -l"),
        "{}",
        err(&o)
    );
}

#[test]
fn a_runspec_given_by_a_relative_path_is_found() {
    let svc = Service::start("repo");
    let work = svc.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join("env.spfs.yaml"),
        "api: spfs/v0/runspec\nlayers:\n  - fixture/base\n",
    )
    .unwrap();
    let m = svc.mnt.display().to_string();
    for spec in ["env.spfs.yaml", "./env.spfs.yaml"] {
        let o = svc
            .command(BIN)
            .args(["run", spec, "--", "cat", &format!("{m}/hello.txt")])
            .current_dir(&work)
            .output()
            .unwrap();
        assert_eq!(text(&o).trim(), "hello from base", "{spec}");
    }
}

#[test]
fn reading_commands_never_create_a_repository_and_bad_versions_are_named() {
    let home = tempfile::tempdir().unwrap();
    let missing = home.path().join("no-repo");
    let o = cli_in(&missing, home.path(), &["info", "fixture/base"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("no spfs repository at"), "{}", err(&o));
    assert!(!missing.exists(), "info created a repository");
    let (_t, repo) = fixture_copy("repo");
    std::fs::write(repo.join("VERSION"), "garbage\n").unwrap();
    let o = cli_in(&repo, home.path(), &["info", "fixture/base"]);
    assert!(
        err(&o).contains("has a VERSION file holding 'garbage', not a version")
            && !err(&o).contains("corrupt object"),
        "{}",
        err(&o)
    );
}

#[test]
fn digests_typed_wrong_are_called_digests() {
    let home = tempfile::tempdir().unwrap();
    let (_t, repo) = fixture_copy("repo");
    let o = cli_in(
        &repo,
        home.path(),
        &[
            "info",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ],
    );
    assert!(
        err(&o).contains("looks like a digest but is not one"),
        "{}",
        err(&o)
    );
    assert!(!err(&o).contains("contains '='"), "{}", err(&o));
    let o = cli_in(&repo, home.path(), &["ls", "AAAAAAAAAAAAAAAA"]);
    assert!(
        err(&o).contains("'AAAAAAAAAAAAAAAA' looks like a digest, and no object in"),
        "{}",
        err(&o)
    );
    // An ambiguous prefix lists every match.
    let o = cli_in(&repo, home.path(), &["info", "A"]);
    let e = err(&o);
    let n: usize = e
        .split("it matches ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{e}"));
    assert_eq!(e.matches("====").count(), n.min(10), "{e}");
}

#[test]
fn connections_are_bounded_per_process_and_answered_past_the_bound() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixStream;
    let svc = Service::start("repo");
    // Half-open connections: connected, never a request.
    let mut held = Vec::new();
    for _ in 0..32 {
        held.push(UnixStream::connect(&svc.sock).unwrap());
    }
    let extra = UnixStream::connect(&svc.sock).unwrap();
    extra
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(&extra).read_line(&mut line).unwrap();
    assert!(
        line.contains("has 32 connections to the service already (at most 32)"),
        "{line}"
    );
    // Others are still served, and the service did not grow a thread per
    // connection.
    assert!(text(&svc.cli(&["status"])).contains("service running"));
    let status = std::fs::read_to_string(format!("/proc/{}/status", svc.child.id())).unwrap();
    let threads: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(threads < 20, "{threads} threads for 33 connections");
    drop(held);
}

#[test]
fn a_service_that_cannot_start_is_reported_at_once() {
    let svc = Service::start("repo");
    // Another socket and mountpoint, the same scratch root: the started
    // service fails on the scratch root's lock.
    let other = svc.dir.path().join("other");
    let started = std::time::Instant::now();
    let o = svc
        .command(BIN)
        .args(["run", "fixture/base", "--", "true"])
        .env("SPFS_FUSE_SOCKET", other.join("control.sock"))
        .env("SPFS_FUSE_MOUNTPOINT", other.join("spfs"))
        .env("SPFS_FUSE_SCRATCH_ROOT", svc.scratch_root())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("the service could not start: another service uses the scratch root"),
        "{}",
        err(&o)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_token_joined_process_and_its_children_are_all_in_the_runtime() {
    let svc = Service::start("repo");
    let mut sh = RuntimeShell::start(&svc, "tok", "fixture/base");
    let token = sh.eval("echo $SPFS_FUSE_RUNTIME_TOKEN")[0].clone();
    let m = svc.mnt.display().to_string();
    // Not a descendant of the runtime: in it by the token alone. Its child
    // (ls) touches the mount before the shell does.
    let o = Command::new("sh")
        .args([
            "-c",
            &format!("ls {m} | wc -l; echo x > {m}/f && cat {m}/f"),
        ])
        .env("SPFS_FUSE_RUNTIME_TOKEN", &token)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let out = text(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].trim().parse::<usize>().unwrap() > 5, "{out}");
    assert_eq!(lines[1], "x", "{out}");
    assert_eq!(sh.eval("cat $M/f"), ["x"]);
}

#[test]
fn read_only_runtimes_come_back_after_a_restart_with_their_age() {
    let mut svc = Service::start("repo");
    let mut ro = RuntimeShell::start_read_only(&svc, "ro", "fixture/base");
    let ls = |svc: &Service| -> serde_json::Value {
        serde_json::from_str(&text(&svc.cli(&["runtime", "ls", "--json"]))).unwrap()
    };
    let before = ls(&svc);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for how in ["SIGKILL", "shutdown"] {
        if how == "shutdown" {
            ok(&svc.cli(&["shutdown", "--force"]));
        }
        svc.restart();
        let after = ls(&svc);
        assert_eq!(after.as_array().unwrap().len(), 1, "after {how}: {after}");
        assert_eq!(after[0]["name"], "ro");
        assert_eq!(after[0]["editable"], false);
        assert_eq!(
            after[0]["created_unix"], before[0]["created_unix"],
            "its age after {how}"
        );
        // Its processes see their /spfs again.
        assert_eq!(
            ro.eval("cat $M/hello.txt"),
            ["hello from base"],
            "after {how}"
        );
    }
    // When its processes end, its record goes too.
    drop(ro);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !text(&svc.cli(&["runtime", "ls"])).contains("no runtimes") {
        assert!(
            std::time::Instant::now() < deadline,
            "the runtime did not end"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let left = svc.scratch_dirs_left();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_runtime_made_editable_or_rebuilt_comes_back_so_after_a_restart() {
    let spfs = env!("CARGO_BIN_EXE_spfs");
    let mut svc = Service::start("repo");
    let mut rt = RuntimeShell::start_read_only(&svc, "ro", "fixture/base");
    let ls = |svc: &Service| -> serde_json::Value {
        serde_json::from_str(&text(&svc.cli(&["runtime", "ls", "--json"]))).unwrap()
    };
    let edited = rt.eval(&format!(
        "{spfs} edit 2>/dev/null && echo e > $M/new.txt && cat $M/new.txt"
    ));
    assert_eq!(edited, ["e"]);
    svc.restart();
    assert_eq!(ls(&svc)[0]["editable"], true, "{}", ls(&svc));
    assert_eq!(rt.eval("cat $M/new.txt"), ["e"]);
    assert_eq!(
        rt.eval(&format!("{spfs} reset -r fixture/top && echo done")),
        ["done"]
    );
    svc.restart();
    let after = ls(&svc);
    assert_eq!(after[0]["env_spec"], "fixture/top", "{after}");
    assert_eq!(
        rt.eval("wc -c < $M/new/added.txt; test -e $M/new.txt || echo gone"),
        ["13", "gone"]
    );
    let kept = rt.eval(&format!(
        "{spfs} edit --keep-runtime 2>/dev/null && echo k > $M/kept.txt && echo ok"
    ));
    assert_eq!(kept, ["ok"]);
    svc.restart();
    let after = ls(&svc);
    assert_eq!(after[0]["durable"], true, "{after}");
    assert_eq!(rt.eval("cat $M/kept.txt"), ["k"]);
    assert!(svc.repo.join("durable_edits/ro/upper/kept.txt").exists());
}

#[test]
fn runtime_rm_waits_says_what_survives_and_force_kills_it() {
    let svc = Service::start("repo");
    let (_rt, line) = spawn_in_base(&svc, "trap '' TERM; echo up; while :; do sleep 0.1; done");
    assert_eq!(line.trim(), "up");
    let name = {
        let v: serde_json::Value =
            serde_json::from_str(&text(&svc.cli(&["runtime", "ls", "--json"]))).unwrap();
        v[0]["name"].as_str().unwrap().to_owned()
    };
    let o = svc.cli(&["runtime", "rm", "--grace", "1", &name]);
    assert_eq!(o.status.code(), Some(1));
    let e = err(&o);
    assert!(
        e.contains(&format!("runtime {name} still runs 1 s after SIGTERM: "))
            && e.contains("(sh)")
            && e.contains(&format!("runtime rm --force {name}' kills")),
        "{e}"
    );
    let o = svc.cli(&["runtime", "rm", "--grace", "1", "--force", &name]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(text(&o).contains("killed"), "{}", text(&o));
    assert!(text(&svc.cli(&["runtime", "ls"])).contains("no runtimes"));
}

#[test]
fn runtime_ls_is_a_table_people_can_read() {
    let svc = Service::start("repo");
    let mut sh = RuntimeShell::start(&svc, "a-long-runtime-name", "fixture/base");
    sh.eval("head -c 1500000 /dev/zero > $M/big");
    let _ro = RuntimeShell::start_read_only(&svc, "ro", "fixture/base+fixture/top");
    ok(&svc.cli(&["commit", "--runtime", "a-long-runtime-name"]));
    sh.eval("echo x > $M/one");
    let ls = text(&svc.cli(&["runtime", "ls"]));
    let lines: Vec<&str> = ls.lines().collect();
    assert!(lines[0].starts_with("NAME "), "{ls}");
    // Columns line up: each header's position is where its column starts.
    let env_col = lines[0].find("ENV").unwrap();
    for l in &lines[1..] {
        assert!(
            l.len() > env_col && l.as_bytes()[env_col - 1] == b' ',
            "{ls}"
        );
    }
    assert!(ls.contains("2 B in 1 file"), "{ls}");
    assert!(ls.contains("read-only"), "{ls}");
    // The current stack's short form after a commit.
    let digest = {
        let v: serde_json::Value =
            serde_json::from_str(&text(&svc.cli(&["runtime", "ls", "--json"]))).unwrap();
        v[0]["stack"][1].as_str().unwrap()[..8].to_owned()
    };
    assert!(ls.contains(&format!("fixture/base+{digest}")), "{ls}");
}

#[test]
fn reset_takes_paths_in_the_mount_or_relative_to_it_and_names_those_without_edits() {
    let svc = Service::start("repo");
    let mut sh = RuntimeShell::start(&svc, "rp", "fixture/base");
    sh.eval("echo a > $M/etc/a; echo b > $M/etc/b; echo c > $M/c");
    let m = svc.mnt.display().to_string();
    // Outside the mount: refused, nothing reset.
    let o = svc.cli(&["reset", "--runtime", "rp", &format!("{m}/c"), "/etc/hosts"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("/etc/hosts is not inside the runtime"),
        "{}",
        err(&o)
    );
    assert_eq!(sh.eval("cat $M/c"), ["c"]);
    // Relative to a directory inside the mount (from inside the runtime,
    // where the mount shows it); one path without edits.
    let out = sh.eval(&format!(
        "cd $M/etc && {BIN} reset --runtime rp a hello-none.txt 2>&1; echo \"status $?\"; cd /"
    ));
    assert_eq!(
        out,
        [
            format!("note: {m}/etc/hello-none.txt had no edits"),
            "reset runtime 'rp': 4 B in 2 files of edits left".to_owned(),
            "status 0".to_owned()
        ],
        "{out:?}"
    );
    assert_eq!(
        sh.eval("ls $M/etc/a 2>/dev/null || echo gone; cat $M/etc/b"),
        ["gone", "b"]
    );
}

#[test]
fn a_clean_shutdown_logs_no_warning() {
    let mut svc = Service::start("repo");
    let mut sh = RuntimeShell::start(&svc, "w", "fixture/base");
    sh.eval("echo x > $M/x");
    drop(sh);
    ok(&svc.cli(&["shutdown"]));
    let _ = svc.child.wait();
    let log = svc.log();
    assert!(!log.contains(" WARN ") && !log.contains(" ERROR "), "{log}");
    // Times a person reads: local date and time to the millisecond.
    let first = log.lines().next().unwrap();
    assert!(
        first.len() > 23 && first.as_bytes()[10] == b' ' && first.as_bytes()[19] == b'.',
        "{first}"
    );
}

/// The README's first command: the built-in demo works with no repository
/// anywhere (a clone alone), and again.
#[test]
fn the_demo_works_from_nothing_and_again() {
    let svc = Service::start("repo");
    let fresh = svc.dir.path().join("fresh-repo");
    for round in 0..2 {
        let o = svc
            .command(BIN)
            .arg("demo")
            .env("SPFS_STORAGE_ROOT", &fresh)
            .output()
            .unwrap();
        let out = ok(&o);
        assert!(
            out.contains("Welcome to SPFS for macOS."),
            "round {round}: {out}"
        );
        assert!(out.contains("hello") && out.contains("demo.conf"), "{out}");
    }
    let o = svc
        .command(BIN)
        .args(["demo", "--"])
        .arg(svc.mnt.join("bin/hello"))
        .env("SPFS_STORAGE_ROOT", &fresh)
        .output()
        .unwrap();
    assert!(
        ok(&o).starts_with("hello from a layer at /spfs (runtime rt-"),
        "{}",
        text(&o)
    );
    // One layer, tagged once: the same digest each time.
    let info = ok(&svc
        .command(BIN)
        .args(["info", "spfs-macos/demo~0"])
        .env("SPFS_STORAGE_ROOT", &fresh)
        .output()
        .unwrap());
    assert!(info.contains("contents: 3 files"), "{info}");
    let o = svc
        .command(BIN)
        .args(["info", "spfs-macos/demo~1"])
        .env("SPFS_STORAGE_ROOT", &fresh)
        .output()
        .unwrap();
    assert!(!o.status.success(), "the tag moved: {}", text(&o));
}
