//! `spfs run`, `shell` and `join` with upstream's flags, through the real
//! binaries on a real mount: the service started on demand by `spfs`
//! itself, editability as upstream decides it, durable runtimes run
//! again, and bad input answered with upstream's exit status.

mod common;

use std::io::Write;
use std::process::{Output, Stdio};

use common::service::upstream_spfs;
use common::service::*;

const SPFS: &str = env!("CARGO_BIN_EXE_spfs");

fn spfs(place: &NoService, args: &[&str]) -> Output {
    place.command_of(SPFS).args(args).output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The digest `spfs commit` logged (`created digest=…`, NO_COLOR).
fn created_digest(o: &Output) -> String {
    err(o)
        .lines()
        .find_map(|l| l.split("digest=").nth(1).map(|d| d.trim().to_owned()))
        .unwrap()
}

/// The first line `child` prints (its stdout piped): it is running.
fn first_line(child: &mut std::process::Child) -> String {
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    line
}

#[test]
fn spfs_run_starts_the_service_and_runs_the_command_in_the_runtime() {
    let place = NoService::new();
    let m = place.mnt().display().to_string();
    let o = spfs(
        &place,
        &[
            "run",
            "fixture/base",
            "--",
            "cat",
            &format!("{m}/hello.txt"),
        ],
    );
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    assert_eq!(out(&o), "hello from base\n");
    // The command's exit status is the run's.
    let o = spfs(&place, &["run", "fixture/base", "--", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", err(&o));
}

#[test]
fn editability_is_upstreams_a_ref_is_read_only_an_empty_one_editable() {
    let place = NoService::new();
    let m = place.mnt().display().to_string();
    let write = format!("echo x > {m}/new.txt && cat {m}/new.txt");
    // A reference: read-only unless -e/--edit.
    let o = spfs(&place, &["run", "fixture/base", "--", "sh", "-c", &write]);
    assert!(!o.status.success(), "a read-only runtime took a write");
    for edit in ["-e", "--edit"] {
        let o = spfs(
            &place,
            &["run", edit, "fixture/base", "--", "sh", "-c", &write],
        );
        assert_eq!(out(&o), "x\n", "{edit}: {}", err(&o));
    }
    // Empty ('-' or ''): editable unless --no-edit.
    for empty in ["-", ""] {
        let o = spfs(&place, &["run", empty, "--", "sh", "-c", &write]);
        assert_eq!(out(&o), "x\n", "'{empty}': {}", err(&o));
        let o = spfs(
            &place,
            &["run", "--no-edit", empty, "--", "sh", "-c", &write],
        );
        assert!(!o.status.success(), "'{empty}' --no-edit took a write");
    }
}

#[test]
fn a_kept_runtime_runs_again_with_its_edits() {
    let place = NoService::new();
    let m = place.mnt().display().to_string();
    let o = spfs(
        &place,
        &[
            "run",
            "-k",
            "--runtime-name",
            "kept",
            "-e",
            "fixture/base",
            "--",
            "sh",
            "-c",
            &format!("echo kept > {m}/kept.txt"),
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    // (It is saved once its processes are gone.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let o = spfs(
            &place,
            &[
                "run",
                "--rerun",
                "kept",
                "--",
                "cat",
                &format!("{m}/kept.txt"),
            ],
        );
        if o.status.success() {
            assert_eq!(out(&o), "kept\n");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", err(&o));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // --force needs --rerun; --rerun and a REF exclude each other.
    let o = spfs(&place, &["run", "--force", "fixture/base", "--", "true"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    let o = spfs(
        &place,
        &["run", "--rerun", "kept", "fixture/base", "--", "true"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
}

#[test]
fn bad_input_is_one_report_with_upstreams_status() {
    let place = NoService::new();
    // No REF and no --rerun: a usage error.
    let o = spfs(&place, &["run", "--", "true"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    // An unknown reference: status 1, the reference named, nothing started.
    let o = spfs(&place, &["run", "no/such-tag", "--", "true"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("no/such-tag"), "{}", err(&o));
    assert!(err(&o).starts_with("Error:   × "), "{}", err(&o));
    // No command: as a shell answers one it cannot find, naming `spfs shell`.
    let o = spfs(&place, &["run", "fixture/base"]);
    assert_eq!(o.status.code(), Some(127), "{}", err(&o));
    assert!(err(&o).contains("spfs shell fixture/base"), "{}", err(&o));
    // Joining a runtime that does not exist.
    let o = spfs(&place, &["join", "nobody-has-this", "--", "true"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("nobody-has-this"), "{}", err(&o));
}

#[test]
fn shell_and_join_enter_the_runtime() {
    let place = NoService::new();
    let m = place.mnt().display().to_string();
    // `spfs shell`: $SHELL in the runtime, reading its commands.
    let mut sh = place
        .command_of(SPFS)
        .args(["shell", "--runtime-name", "sh1", "-e", "fixture/base"])
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = sh.stdin.take().unwrap();
    writeln!(stdin, "echo joined > {m}/from-shell.txt; echo ready").unwrap();
    let line = first_line(&mut sh);
    assert_eq!(line, "ready\n");
    // `spfs join`: another process in the same runtime sees its edit.
    let o = spfs(
        &place,
        &["join", "sh1", "--", "cat", &format!("{m}/from-shell.txt")],
    );
    assert_eq!(out(&o), "joined\n", "{}", err(&o));
    drop(stdin);
    assert!(sh.wait().unwrap().success());
}

/// `spfs runtime ARGS` by `bin` on `repo`.
fn runtime_cmd(bin: &str, repo: &std::path::Path, args: &[&str]) -> Output {
    std::process::Command::new(bin)
        .arg("runtime")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", repo.parent().unwrap())
        .env("SPFS_STORAGE_ROOT", repo)
        .output()
        .unwrap()
}

/// Both tools print the same, byte for byte, with the same status.
fn same_runtime_output(upstream: &str, repo: &std::path::Path, args: &[&str]) {
    let theirs = runtime_cmd(upstream, repo, args);
    let ours = runtime_cmd(SPFS, repo, args);
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "runtime {args:?}: {}",
        err(&ours)
    );
    assert_eq!(out(&ours), out(&theirs), "runtime {args:?}");
    assert_eq!(err(&ours), err(&theirs), "runtime {args:?}");
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn runtime_ls_and_info_print_what_upstream_prints_for_its_records_and_ours() {
    let upstream = upstream_spfs();
    let upstream = upstream.to_str().unwrap();
    // A durable runtime as upstream saved it.
    let place = NoService::new();
    let tar = common::fixtures().join("durable-runtime.tar");
    let st = std::process::Command::new("tar")
        .arg("xf")
        .arg(&tar)
        .arg("-C")
        .arg(place.repo.parent().unwrap())
        .status()
        .unwrap();
    assert!(st.success());
    for args in [
        &["ls"][..],
        &["list", "-q"],
        &["info", "sample"],
        &["info", "no-such-runtime"],
    ] {
        same_runtime_output(upstream, &place.repo, args);
    }
    // Ours, live and kept: both tools see the same states.
    let m = place.mnt().display().to_string();
    let mut live = place
        .command_of(SPFS)
        .args([
            "run",
            "--runtime-name",
            "live",
            "-e",
            "fixture/base",
            "--",
            "sh",
            "-c",
        ])
        .arg(format!("touch {m}/x; echo up; read line || true"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let line = first_line(&mut live);
    assert_eq!(line, "up\n");
    for args in [
        &["ls"][..],
        &["ls", "-q"],
        &["info", "live"],
        &["info", "sample"],
    ] {
        same_runtime_output(upstream, &place.repo, args);
    }
    let listed = out(&runtime_cmd(SPFS, &place.repo, &["ls"]));
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("live ") && l.ends_with("status=running")),
        "{listed}"
    );
    drop(live.stdin.take());
    assert!(live.wait().unwrap().success());
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn info_with_no_reference_shows_the_active_runtime_as_upstream_does() {
    let upstream = upstream_spfs();
    let place = NoService::new();
    let m = place.mnt().display().to_string();
    // Each tool's `info` inside the same runtime, then after an edit.
    let both = |args: &str| {
        format!(
            "{u} info {args} 2>&1; echo \"exit $?\"; echo ====; {o} info {args} 2>&1; echo \"exit $?\"",
            u = upstream.display(),
            o = SPFS
        )
    };
    for (run, script) in [
        (&["run", "fixture/base+fixture/top"][..], both("")),
        (&["run", "fixture/base+fixture/top"], both("-H")),
        (&["run", "fixture/base+fixture/top"], both("--short")),
        (&["run", "-"], both("")),
        (
            &["run", "-e", "fixture/base"],
            format!("{}; echo ++++; echo x > {m}/new; {}", both(""), both("")),
        ),
    ] {
        let mut args = run.to_vec();
        args.extend(["--", "sh", "-c", &script]);
        let o = spfs(&place, &args);
        assert!(o.status.success(), "{args:?}: {}", err(&o));
        for pair in out(&o).split("++++\n") {
            let (theirs, ours) = pair.split_once("====\n").unwrap();
            assert_eq!(ours, theirs, "{args:?}");
            assert!(
                ours.contains("Active Runtime:") && ours.ends_with("exit 0\n"),
                "{ours}"
            );
        }
    }
    // Outside any runtime: upstream's error, both ways.
    let o = spfs(&place, &["info"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(err(&o), "Error:   × No active runtime\n\n");
}

#[test]
fn diff_in_a_runtime_compares_its_stack_with_what_it_shows() {
    let place = NoService::new();
    let m = place.mnt().display().to_string();
    // Nothing changed: nothing listed ("no changes" logged).
    let o = spfs(&place, &["run", "fixture/base", "--", SPFS, "diff"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "");
    assert!(err(&o).contains("no changes"), "{}", err(&o));
    // Edits: one of each kind, against the stack and against a reference.
    let script = format!(
        "echo new > {m}/new.txt; echo changed >> {m}/hello.txt; rm {m}/empty.txt; chmod 700 {m}/etc; \
         {SPFS} diff; echo ====; {SPFS} diff fixture/base"
    );
    let o = spfs(
        &place,
        &["run", "-e", "fixture/base", "--", "sh", "-c", &script],
    );
    assert!(o.status.success(), "{}", err(&o));
    let expected = "~/spfs/etc [mode {040755=>040700}]\n-/spfs/empty.txt\n~/spfs/hello.txt [content, size {16=>24}]\n+/spfs/new.txt\n";
    assert_eq!(out(&o), format!("{expected}====\n{expected}"));
    // Outside any runtime: upstream's error.
    let o = spfs(&place, &["diff"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("No active runtime"), "{}", err(&o));
}

#[test]
fn annotations_given_to_run_are_read_back_in_the_runtime() {
    let place = NoService::new();
    let big = "x".repeat(20_000);
    let file = place.dir.path().join("notes.yaml");
    std::fs::write(&file, "from_file: yes-it-is\nb: from-file\n").unwrap();
    let script = format!(
        "{SPFS} info --get a --get b --get from_file --get nope; echo ====; {SPFS} info --get big | wc -c"
    );
    let big_pair = format!("big={big}");
    let o = spfs(
        &place,
        &[
            "run",
            "--annotation",
            "a:1",
            "--annotation",
            "b=2",
            "--annotation-file",
            file.to_str().unwrap(),
            "--annotation",
            &big_pair,
            "fixture/base",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    // --annotation supersedes the file; a missing key is an empty line.
    assert_eq!(out(&o), "1\n2\nyes-it-is\n\n====\n20001\n");
    assert!(
        err(&o).contains("No annotation stored under: nope"),
        "{}",
        err(&o)
    );
    // Malformed: one report, status 1, nothing started.
    let o = spfs(
        &place,
        &[
            "run",
            "--annotation",
            "novalue",
            "fixture/base",
            "--",
            "true",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("should be in the form name=value"),
        "{}",
        err(&o)
    );
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn annotations_read_the_same_with_upstreams_spfs_and_its_check_passes() {
    let upstream = upstream_spfs();
    let u = upstream.display().to_string();
    let place = NoService::new();
    let big = "y".repeat(20_000);
    let script = format!(
        "for t in {u} {SPFS}; do $t info --get a --get b --get c --get nope 2>&1; $t info --get-all; $t info; $t runtime info --get a \"$SPFS_RUNTIME\"; echo ====; done"
    );
    let big_pair = format!("c={big}");
    let o = spfs(
        &place,
        &[
            "run",
            "--annotation",
            "a:1",
            "--annotation",
            "{b: two, a: again}",
            "--annotation",
            &big_pair,
            "fixture/base",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    let parts: Vec<&str> = text.split("====\n").collect();
    assert_eq!(parts.len(), 3, "{text}");
    assert_eq!(parts[1], parts[0], "ours, then upstream's");
    assert!(parts[0].contains("two"), "{text}");
    // The annotation layers and blob are objects upstream checks whole.
    let check = std::process::Command::new(&upstream)
        .arg("check")
        .env("SPFS_STORAGE_ROOT", &place.repo)
        .env("HOME", place.dir.path())
        .output()
        .unwrap();
    assert!(check.status.success(), "{}{}", out(&check), err(&check));
}

#[test]
fn commit_in_a_runtime_makes_a_layer_of_its_edits() {
    let place = NoService::new();
    let m = place.mnt().display().to_string();
    let script = format!(
        "echo fixed > {m}/fix.txt && NO_COLOR=1 {SPFS} commit layer -t me/fix --max-concurrent-blobs 1"
    );
    let o = spfs(
        &place,
        &["run", "-e", "fixture/base", "--", "sh", "-c", &script],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "");
    let said = err(&o);
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 2, "{}", err(&o));
    assert!(lines[0].starts_with(" INFO created digest="), "{}", err(&o));
    assert_eq!(lines[1], " INFO created tag=\"me/fix\"");
    // The layer holds the edit; on the stack it shows it.
    let o = spfs(
        &place,
        &[
            "run",
            "fixture/base+me/fix",
            "--",
            "cat",
            &format!("{m}/fix.txt"),
        ],
    );
    assert_eq!(out(&o), "fixed\n", "{}", err(&o));
    // A read-only runtime has nothing to commit.
    let o = spfs(
        &place,
        &["run", "fixture/base", "--", SPFS, "commit", "layer"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("Active runtime is not editable, nothing to commit"),
        "{}",
        err(&o)
    );
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn runtime_rm_refuses_as_upstream_refuses() {
    let upstream = upstream_spfs();
    let u = upstream.to_str().unwrap();
    // A durable runtime upstream saved on another machine ('vm').
    let place = NoService::new();
    let st = std::process::Command::new("tar")
        .arg("xf")
        .arg(common::fixtures().join("durable-runtime.tar"))
        .arg("-C")
        .arg(place.repo.parent().unwrap())
        .status()
        .unwrap();
    assert!(st.success());
    for args in [
        &["rm", "sample"][..],
        &["rm", "--ignore-host", "sample"],
        &["remove", "no-such-runtime"],
    ] {
        same_runtime_output(u, &place.repo, args);
    }
    // (Upstream removes a durable runtime's edits with its spfs-clean
    // program, which is not among the peers: that case is ours alone.)
    let o = runtime_cmd(
        SPFS,
        &place.repo,
        &["rm", "--ignore-host", "--remove-durable", "sample"],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&runtime_cmd(u, &place.repo, &["ls"])), "");
    assert!(!place.repo.join("durable_edits/sample").exists());
}

#[test]
fn runtime_rm_removes_saved_runtimes_and_stops_live_ones_only_with_force() {
    let place = NoService::new();
    let m = place.mnt().display().to_string();
    // A saved durable runtime of ours: kept without --remove-durable.
    let o = spfs(
        &place,
        &[
            "run",
            "-k",
            "--runtime-name",
            "kept",
            "-e",
            "fixture/base",
            "--",
            "sh",
            "-c",
            &format!("echo k > {m}/k"),
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let edits = place.repo.join("durable_edits/kept");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let o = spfs(&place, &["runtime", "rm", "kept"]);
        if o.status.code() == Some(2) {
            assert!(err(&o).contains("marked as durable"), "{}", err(&o));
            break;
        }
        // (until its processes are seen gone and it is saved)
        assert!(std::time::Instant::now() < deadline, "{}", err(&o));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(edits.exists());
    let o = spfs(&place, &["runtime", "rm", "--remove-durable", "kept"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(!edits.exists());
    assert_eq!(out(&spfs(&place, &["runtime", "ls", "-q"])), "");
    // A live one: refused without -f; with it, its processes are stopped.
    let mut live = place
        .command_of(SPFS)
        .args([
            "run",
            "--runtime-name",
            "live",
            "fixture/base",
            "--",
            "sh",
            "-c",
            "echo up; exec sleep 60",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    first_line(&mut live);
    let o = spfs(&place, &["runtime", "rm", "live"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("the runtime is running"), "{}", err(&o));
    let o = spfs(&place, &["runtime", "rm", "-f", "live"]);
    assert!(o.status.success(), "{}", err(&o));
    let status = live.wait().unwrap();
    assert!(!status.success(), "its process was stopped");
    assert_eq!(out(&spfs(&place, &["runtime", "ls", "-q"])), "");
}

#[test]
fn reset_undoes_the_edits_its_patterns_match_or_all_of_them() {
    let place = NoService::new();
    let m = place.mnt().display().to_string();
    let script = format!(
        "mkdir -p {m}/lib; touch {m}/a.so {m}/lib/b.so {m}/lib/c.txt; rm {m}/hello.txt
         {SPFS} reset '*.so' && {SPFS} diff; echo ==
         {SPFS} reset /spfs/hello.txt && {SPFS} diff; echo ==
         {SPFS} reset no-such-edit && echo matched-nothing; echo ==
         {SPFS} reset && {SPFS} diff 2>&1; cat {m}/hello.txt"
    );
    let o = spfs(
        &place,
        &["run", "-e", "fixture/base", "--", "sh", "-c", &script],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        "~/spfs/lib\n+/spfs/lib/c.txt\n-/spfs/hello.txt\n==\n~/spfs/lib\n+/spfs/lib/c.txt\n==\nmatched-nothing\n==\n\u{1b}[32m INFO\u{1b}[0m no changes\nhello from base\n"
    );
    // A read-only runtime, and none at all.
    let o = spfs(&place, &["run", "fixture/base", "--", SPFS, "reset"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("not editable"), "{}", err(&o));
    let o = spfs(&place, &["reset"]);
    assert!(err(&o).contains("No active runtime"), "{}", err(&o));
    // A reference and paths: one or the other.
    let o = spfs(
        &place,
        &[
            "run",
            "-e",
            "fixture/base",
            "--",
            SPFS,
            "reset",
            "-r",
            "fixture/top",
            "x",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("not both"), "{}", err(&o));
}

#[test]
fn reset_ref_rebuilds_an_editable_runtime_live_keeping_what_both_stacks_share() {
    let place = NoService::new();
    let m = place.mnt().display().to_string();
    // A shell in a directory both stacks have stays there (same inode); a
    // file that changed is a new inode with its new content (the kernel
    // read the old one first); a file held open reads what it opened.
    let script = format!(
        "cd {m}/etc/conf.d; exec 3< {m}/hello.txt; cat {m}/hello.txt >/dev/null
         echo mine > {m}/mine.txt
         dir=$(stat -c %i .); file=$(stat -c %i {m}/hello.txt)
         {SPFS} reset --check --progress none -r fixture/base+fixture/top || exit 9
         [ \"$(stat -c %i .)\" = \"$dir\" ] && echo same-dir
         [ \"$(stat -c %i {m}/hello.txt)\" != \"$file\" ] && echo new-file
         ls; wc -c < {m}/hello.txt; cat {m}/new/added.txt | wc -c
         test -e {m}/mine.txt || echo edits-gone
         test -e {m}/bin/other || echo masked
         head -c 10 <&3; echo
         echo more > {m}/more.txt && echo editable"
    );
    let o = spfs(
        &place,
        &["run", "-e", "fixture/base", "--", "sh", "-c", &script],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        "same-dir\nnew-file\na.conf\nb.conf\n24\n13\nedits-gone\nmasked\nhello from\neditable\n"
    );
    // An unknown reference changes nothing.
    let script = format!("{SPFS} reset -r no/such; echo $?; cat {m}/mine.txt");
    let o = spfs(
        &place,
        &[
            "run",
            "-e",
            "fixture/base",
            "--",
            "sh",
            "-c",
            &format!("echo mine > {m}/mine.txt; {script}"),
        ],
    );
    assert_eq!(out(&o), "1\nmine\n", "{}", err(&o));
}

#[test]
fn a_name_missing_before_edit_shows_once_reset_r_brings_it() {
    let place = NoService::new();
    let m = place.mnt().display().to_string();
    // The kernel remembers that a name is missing (a negative entry) in
    // the read-only view; `edit` keeps the view's inodes, so `reset -r`
    // must make it forget the names the new stack brings (bin/other is
    // base's, masked by top).
    let script = format!(
        "test -e {m}/bin/other || echo missing; ls {m}/bin
         {SPFS} edit || exit 9
         test -e {m}/bin/other || echo still-missing
         {SPFS} reset -r fixture/base || exit 9
         cat {m}/bin/other >/dev/null && echo shown; ls {m}/bin"
    );
    let o = spfs(
        &place,
        &["run", "fixture/base+fixture/top", "--", "sh", "-c", &script],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        "missing\ntool\nstill-missing\nshown\nother\ntool\n",
        "{}",
        err(&o)
    );
    // The same in a runtime editable from the start.
    let script = format!(
        "test -e {m}/bin/other || echo missing; ls {m}/bin {m}/share
         {SPFS} reset -r fixture/base || exit 9
         cat {m}/bin/other >/dev/null && echo shown; ls {m}/bin {m}/share"
    );
    let o = spfs(
        &place,
        &[
            "run",
            "-e",
            "fixture/base+fixture/top",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        format!(
            "missing\n{m}/bin:\ntool\n\n{m}/share:\n\
             shown\n{m}/bin:\nother\ntool\n\n{m}/share:\ndoc\n"
        ),
        "{}",
        err(&o)
    );
}

#[test]
fn reset_ref_of_a_read_only_runtime_shows_the_new_stack_from_spfs_and_empty_is_editable() {
    let place = NoService::new();
    let m = place.mnt().display().to_string();
    // A process inside the old view keeps it, as one inside upstream's
    // old mount does; from /spfs every process sees the new stack.
    let script = format!(
        "cd {m}/etc
         {SPFS} reset -r fixture/top || exit 9
         ls {m}; ls; echo ==
         touch {m}/x 2>/dev/null || echo read-only
         {SPFS} reset -r - || exit 9
         ls {m}; touch {m}/x && echo editable"
    );
    let o = spfs(&place, &["run", "fixture/base", "--", "sh", "-c", &script]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        "bin\nhello.txt\nnew\nshare\nconf.d\nreadonly.cfg\n==\nread-only\neditable\n"
    );
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn runtime_prune_from_before_boot_prunes_and_spares_as_upstream_does() {
    use spfs_fuse_macos::repo::runtime_records::RuntimeRecord;
    use spfs_fuse_macos::repo::tags::TagAuthor;
    use spfs_fuse_macos::repo::FsRepository;
    let upstream = upstream_spfs();
    let u = upstream.to_str().unwrap();
    // Two copies: upstream prunes one, ours the other.
    let make = || {
        let place = NoService::new();
        let st = std::process::Command::new("tar")
            .arg("xf")
            .arg(common::fixtures().join("durable-runtime.tar"))
            .arg("-C")
            .arg(place.repo.parent().unwrap())
            .status()
            .unwrap();
        assert!(st.success());
        // Transient runtimes of this machine: one from before the boot,
        // one from now.
        let repo = FsRepository::open(&place.repo).unwrap();
        let sample: RuntimeRecord = repo.runtime_record("sample").unwrap().unwrap();
        let host = spfs_fuse_macos::repo::Config::default_domain();
        for (name, created) in [
            ("old", "2020-01-01T00:00:00Z"),
            ("new", "2099-01-01T00:00:00Z"),
        ] {
            let mut r = sample.clone();
            r.name = name.into();
            r.config.durable = false;
            r.author.host_name = host.clone();
            r.author.created = created.into();
            repo.save_runtime(&r, &TagAuthor("t@h".into())).unwrap();
        }
        place
    };
    let (theirs, ours) = (make(), make());
    for args in [
        &["prune"][..],
        &["prune", "--from-before-boot"],
        &["prune", "--from-before-boot", "--ignore-host"],
        &["ls", "-q"],
    ] {
        let t = runtime_cmd(u, &theirs.repo, args);
        let o = runtime_cmd(SPFS, &ours.repo, args);
        assert_eq!(o.status.code(), t.status.code(), "{args:?}: {}", err(&o));
        // (upstream lists in the file system's order)
        let sorted = |text: String| {
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            lines.sort();
            lines
        };
        assert_eq!(sorted(out(&o)), sorted(out(&t)), "{args:?}");
        assert_eq!(err(&o), err(&t), "{args:?}");
    }
    assert_eq!(
        out(&runtime_cmd(SPFS, &ours.repo, &["ls", "-q"])),
        "new\nsample\n"
    );
}

/// Makes every object and payload of `repo` an hour old.
fn age(repo: &std::path::Path) {
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg("find \"$1/objects\" \"$1/payloads\" -type f -exec touch -d '1 hour ago' {} +")
        .arg("sh")
        .arg(repo)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn clean_removes_what_nothing_uses_and_keeps_what_runtimes_and_tags_do() {
    let place = NoService::new();
    let m = place.mnt().display().to_string();
    let src = place.dir.path().join("stray");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("s.txt"), "nobody tags me").unwrap();
    let o = spfs(&place, &["commit", "--path", src.to_str().unwrap()]);
    assert!(o.status.success(), "{}", err(&o));
    // Young: nothing goes.
    let o = spfs(&place, &["clean", "--dry-run"]);
    assert!(
        out(&o).starts_with("would remove 0 objects and 0 payloads"),
        "{}",
        out(&o)
    );
    // A runtime on an untagged layer: only its record keeps it.
    std::fs::write(src.join("s.txt"), "a runtime uses me").unwrap();
    let o = place
        .command_of(SPFS)
        .args(["commit", "--path", src.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let used = created_digest(&o);
    let mut live = place
        .command_of(SPFS)
        .args(["run", &used, "--", "sh", "-c", "echo up; read line || true"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    first_line(&mut live);
    age(&place.repo);
    // Not asked and not told -y: nothing removed.
    let o = spfs(&place, &["clean"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("give -y"), "{}", err(&o));
    let o = spfs(&place, &["clean", "--dry-run"]);
    assert!(
        out(&o).starts_with("would remove 3 objects and 1 payload"),
        "{}",
        out(&o)
    );
    let o = spfs(&place, &["clean", "-y"]);
    assert!(
        out(&o).starts_with("removed 3 objects and 1 payload"),
        "{}{}",
        out(&o),
        err(&o)
    );
    // The runtime still reads its file; the tags all read; check passes.
    let o = spfs(&place, &["run", &used, "--", "cat", &format!("{m}/s.txt")]);
    assert_eq!(out(&o), "a runtime uses me", "{}", err(&o));
    for tag in ["fixture/base", "fixture/top"] {
        assert!(spfs(&place, &["info", tag]).status.success());
    }
    let o = spfs(&place, &["check"]);
    assert!(o.status.success(), "{}", out(&o));
    drop(live.stdin.take());
    assert!(live.wait().unwrap().success());
}

#[test]
fn a_clean_killed_at_any_moment_leaves_a_repository_that_checks() {
    let place = NoService::new();
    // 1,500 stray files (each a payload, a blob, in manifests and layers).
    for batch in 0..3 {
        let src = place.dir.path().join(format!("stray{batch}"));
        for i in 0..500 {
            let d = src.join(format!("d{}", i % 10));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("f{i}")), format!("{batch}/{i}")).unwrap();
        }
        let o = spfs(&place, &["commit", "--path", src.to_str().unwrap()]);
        assert!(o.status.success(), "{}", err(&o));
    }
    age(&place.repo);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for trial in 0..10 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = place
            .command_of(SPFS)
            .args(["clean", "-y"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(seed % 150_000));
        let _ = child.kill();
        let _ = child.wait();
        let o = spfs(&place, &["check"]);
        assert!(o.status.success(), "trial {trial}: {}", out(&o));
    }
    let o = spfs(&place, &["clean", "-y"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = spfs(&place, &["clean", "--dry-run"]);
    assert!(
        out(&o).starts_with("would remove 0 objects and 0 payloads"),
        "{}",
        out(&o)
    );
    assert!(spfs(&place, &["check"]).status.success());
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn upstream_checks_and_reads_a_repository_after_a_clean() {
    let upstream = upstream_spfs();
    let place = NoService::new();
    let src = place.dir.path().join("stray");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("s.txt"), "stray").unwrap();
    assert!(spfs(&place, &["commit", "--path", src.to_str().unwrap()])
        .status
        .success());
    age(&place.repo);
    let o = spfs(&place, &["clean", "-y"]);
    assert!(
        out(&o).starts_with("removed 3 objects and 1 payload"),
        "{}",
        out(&o)
    );
    let run = |args: &[&str]| {
        std::process::Command::new(&upstream)
            .args(args)
            .env("SPFS_STORAGE_ROOT", &place.repo)
            .env("HOME", place.dir.path())
            .output()
            .unwrap()
    };
    let o = run(&["check"]);
    assert!(o.status.success(), "{}", out(&o));
    for tag in ["fixture/base", "fixture/top", "fixture/moving~1"] {
        let o = run(&["ls", "-R", tag]);
        assert!(o.status.success(), "{tag}: {}", err(&o));
    }
}

#[test]
fn edit_makes_a_read_only_runtime_editable_and_off_again_live() {
    let place = NoService::new();
    let m = place.mnt().display().to_string();
    // A shell `cd`'d into the runtime and a file held open before the
    // edit keep working after it, and after `--off`.
    let script = format!(
        "cd {m}/etc/conf.d; exec 3< {m}/hello.txt
         touch new.conf 2>/dev/null || echo read-only
         {SPFS} edit; {SPFS} edit
         echo made > new.conf && cat {m}/etc/conf.d/new.conf && ls
         cat <&3
         {SPFS} edit --off
         touch {m}/more 2>/dev/null || echo read-only again
         cat new.conf; {SPFS} diff
         {SPFS} reset -e new.conf && ls && touch {m}/more && echo editable"
    );
    let o = spfs(&place, &["run", "fixture/base", "--", "sh", "-c", &script]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        "read-only\nmade\na.conf\nb.conf\nnew.conf\nhello from base\nread-only again\nmade\n\
         ~/spfs/etc\n~/spfs/etc/conf.d\n+/spfs/etc/conf.d/new.conf\na.conf\nb.conf\neditable\n"
    );
    // Upstream's lines: once when enabled, none when it already was.
    let info = "\u{1b}[32m INFO\u{1b}[0m";
    assert_eq!(
        err(&o),
        format!("{info} edit mode enabled\n{info} edit mode disabled\n")
    );
    // Outside a runtime.
    let o = spfs(&place, &["edit"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("No active runtime"), "{}", err(&o));
}

#[test]
fn edit_keep_runtime_makes_a_running_runtime_durable_live() {
    let place = NoService::new();
    let m = place.mnt().display().to_string();
    // Editable: its edits move into the repository while a shell is in a
    // directory of it and a file is held open for writing.
    let script = format!(
        "cd {m}/etc; echo a > {m}/a.txt; exec 3>> {m}/a.txt
         NO_COLOR=1 {SPFS} edit --keep-runtime || exit 9
         echo b > b.txt; echo more >&3; cat {m}/a.txt"
    );
    let o = spfs(
        &place,
        &[
            "run",
            "-e",
            "--runtime-name",
            "kept",
            "fixture/base",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "a\nmore\n");
    assert_eq!(err(&o), " INFO runtime changed to durable\n");
    assert!(place
        .repo
        .join("durable_edits/kept/upper/etc/b.txt")
        .exists());
    let o = spfs(
        &place,
        &[
            "run",
            "--rerun",
            "kept",
            "--",
            "cat",
            &format!("{m}/a.txt"),
            &format!("{m}/etc/b.txt"),
        ],
    );
    assert_eq!(out(&o), "a\nmore\nb\n", "{}", err(&o));
    // Read-only: durable, then editable, its edits kept.
    let script = format!("NO_COLOR=1 {SPFS} edit --keep-runtime && echo x > {m}/x.txt");
    let o = spfs(
        &place,
        &[
            "run",
            "--runtime-name",
            "ro",
            "fixture/base",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        err(&o),
        " INFO runtime changed to durable\n INFO edit mode enabled\n"
    );
    let o = spfs(
        &place,
        &["run", "--rerun", "ro", "--", "cat", &format!("{m}/x.txt")],
    );
    assert_eq!(out(&o), "x\n", "{}", err(&o));
    assert_eq!(out(&spfs(&place, &["runtime", "ls", "-q"])), "kept\nro\n");
    // A name whose durable edits exist already: refused, nothing moved.
    std::fs::create_dir_all(place.repo.join("durable_edits/clash/upper")).unwrap();
    let script = format!("echo e > {m}/e.txt; {SPFS} edit --keep-runtime; echo $?; cat {m}/e.txt");
    let o = spfs(
        &place,
        &[
            "run",
            "-e",
            "--runtime-name",
            "clash",
            "fixture/base",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    assert_eq!(out(&o), "1\ne\n", "{}", err(&o));
    assert!(
        err(&o).contains("already used by another runtime"),
        "{}",
        err(&o)
    );
    assert!(!place.repo.join("durable_edits/clash/upper/e.txt").exists());
}

#[test]
fn edit_of_a_durable_runtime_run_read_only_keeps_its_edits_for_the_next_run() {
    let place = NoService::new();
    let m = place.mnt().display().to_string();
    let o = spfs(
        &place,
        &[
            "run",
            "-k",
            "--runtime-name",
            "kept",
            "--no-edit",
            "fixture/base",
            "--",
            "sh",
            "-c",
            &format!("{SPFS} edit --keep-runtime && echo v1 > {m}/kept.txt"),
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        err(&o).contains("runtime is already durable"),
        "{}",
        err(&o)
    );
    let o = spfs(
        &place,
        &[
            "run",
            "--rerun",
            "kept",
            "--",
            "cat",
            &format!("{m}/kept.txt"),
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "v1\n");
}

/// `spfs commit --path DIR -t TAG` of a directory holding one file with
/// `text`, aged an hour; the layer's digest.
fn tagged_layer(place: &NoService, tag: &str, text: &str) -> String {
    let src = place.dir.path().join(format!("src-{text}"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f.txt"), text).unwrap();
    let o = place
        .command_of(SPFS)
        .args(["commit", "--path", src.to_str().unwrap(), "-t", tag])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    created_digest(&o)
}

#[test]
fn clean_prunes_tag_history_as_upstream_then_removes_what_it_reached() {
    let place = NoService::new();
    // my/tool: v1, v2, v1 again, v3 (versions 3 2 1 0).
    let v1 = tagged_layer(&place, "my/tool", "one");
    let v2 = tagged_layer(&place, "my/tool", "two");
    let o = spfs(&place, &["tag", &v1, "my/tool"]);
    assert!(o.status.success(), "{}", err(&o));
    let v3 = tagged_layer(&place, "my/tool", "three");
    age(&place.repo);
    // A runtime's record is never pruned, however old.
    let o = spfs(
        &place,
        &[
            "run",
            "-k",
            "--runtime-name",
            "old",
            "fixture/base",
            "--",
            "true",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let o = spfs(&place, &["clean", "--dry-run", "--prune-repeated"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with(&format!("would prune my/tool~3 {v1} ")),
        "{text}"
    );
    assert!(
        lines[1].starts_with("would prune 1 tag version in 1 stream and remove 0 objects"),
        "{text}"
    );
    // Versions above 0: v2 and both v1 records go (and fixture/moving~1),
    // and so do v1's and v2's layers, manifests, blobs and payloads.
    let o = spfs(&place, &["clean", "-y", "--prune-if-more-than", "0"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o)
            .starts_with("pruned 4 tag versions in 2 streams and removed 6 objects and 2 payloads"),
        "{}",
        out(&o)
    );
    assert_eq!(
        out(&spfs(&place, &["log", "my/tool"])).lines().count(),
        1,
        "only v3 left"
    );
    assert!(spfs(&place, &["info", &v3]).status.success());
    let o = spfs(&place, &["info", &v2]);
    assert_eq!(o.status.code(), Some(1), "v2 is gone: {}", out(&o));
    assert_eq!(out(&spfs(&place, &["runtime", "ls", "-q"])), "old\n");
    let o = spfs(&place, &["check"]);
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    // Keeps win: nothing is pruned below version 5 or newer than a day.
    for keep in [["--keep-if-less-than", "5"], ["--keep-if-newer-than", "1d"]] {
        let o = spfs(
            &place,
            &[
                "clean",
                "--dry-run",
                "--prune-if-more-than",
                "0",
                keep[0],
                keep[1],
            ],
        );
        assert!(out(&o).starts_with("would remove"), "{keep:?}: {}", out(&o));
    }
    // Bad ages: upstream's words, usage status.
    let o = spfs(&place, &["clean", "--prune-if-older-than", "3x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("Unknown age postfix: 'x'"), "{}", err(&o));
}

#[test]
fn clean_keeps_a_durable_runtimes_layers_and_remove_durable_only_its_edits() {
    let place = NoService::new();
    let m = place.mnt().display().to_string();
    let layer = tagged_layer(&place, "gone/soon", "kept by a runtime");
    let o = spfs(
        &place,
        &[
            "run",
            "-k",
            "--runtime-name",
            "keep",
            "-e",
            &layer,
            "--",
            "sh",
            "-c",
            &format!("echo edit > {m}/edit.txt"),
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let o = spfs(&place, &["untag", "gone/soon", "--all"]);
    assert!(o.status.success(), "{}", err(&o));
    age(&place.repo);
    let o = spfs(&place, &["clean", "-y"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).starts_with("nothing to remove"), "{}", out(&o));
    let o = spfs(
        &place,
        &[
            "run",
            "--rerun",
            "keep",
            "--",
            "cat",
            &format!("{m}/f.txt"),
            &format!("{m}/edit.txt"),
        ],
    );
    assert_eq!(out(&o), "kept by a runtimeedit\n", "{}", err(&o));
    // Only the edits go; the record (and so the layer) stays.
    let edits = place.repo.join("durable_edits/keep");
    assert!(edits.exists());
    let o = spfs(&place, &["clean", "--remove-durable", "keep", "--dry-run"]);
    assert_eq!(out(&o), format!("would remove {}\n", edits.display()));
    let o = spfs(&place, &["clean", "--remove-durable", "keep"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(!edits.exists());
    assert_eq!(out(&spfs(&place, &["runtime", "ls", "-q"])), "keep\n");
    // With prune flags: one or the other (usage).
    let o = spfs(
        &place,
        &["clean", "--remove-durable", "keep", "--prune-repeated"],
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn clean_of_a_missing_repository_says_so_and_makes_nothing() {
    let place = NoService::new();
    let missing = place.dir.path().join("no-repo");
    let o = place
        .command_of(SPFS)
        .args(["clean", "-y"])
        .env("SPFS_STORAGE_ROOT", &missing)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        err(&o).contains(&missing.display().to_string()),
        "{}",
        err(&o)
    );
    assert!(!missing.exists());
}

#[test]
fn a_clean_beside_concurrent_commits_never_takes_what_they_use() {
    let place = NoService::new();
    // Old untagged data: the same contents the commits below write, so
    // each commit finds its payloads and blobs stored already, an hour
    // old, and must keep them from the clean.
    let src = place.dir.path().join("src");
    for i in 0..300 {
        let d = src.join(format!("d{}", i % 10));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i}")), format!("shared {i}")).unwrap();
    }
    let o = spfs(&place, &["commit", "--path", src.to_str().unwrap()]);
    assert!(o.status.success(), "{}", err(&o));
    age(&place.repo);
    let cleaner = {
        let mut c = place.command_of(SPFS);
        c.args(["clean", "-y"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::thread::spawn(move || {
            for _ in 0..15 {
                let _ = c.status();
            }
        })
    };
    for round in 0..5 {
        std::fs::write(src.join("round.txt"), format!("round {round}")).unwrap();
        let tag = format!("busy/r{round}");
        let o = spfs(
            &place,
            &["commit", "--path", src.to_str().unwrap(), "-t", &tag],
        );
        assert!(o.status.success(), "round {round}: {}", err(&o));
    }
    cleaner.join().unwrap();
    let o = spfs(&place, &["clean", "-y"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = spfs(&place, &["check"]);
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    let m = place.mnt().display().to_string();
    for round in 0..5 {
        let o = spfs(
            &place,
            &[
                "run",
                &format!("busy/r{round}"),
                "--",
                "cat",
                &format!("{m}/d3/f123"),
                &format!("{m}/round.txt"),
            ],
        );
        assert_eq!(out(&o), format!("shared 123round {round}"), "{}", err(&o));
    }
}

#[test]
fn runtime_rm_of_another_users_runtime_is_refused_and_changes_nothing() {
    use spfs_fuse_macos::repo::runtime_records::RuntimeRecord;
    let place = NoService::new();
    let o = spfs(
        &place,
        &[
            "run",
            "-k",
            "--runtime-name",
            "theirs",
            "fixture/base",
            "--",
            "true",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    // The same record, as another user left it (once the service has
    // saved it as ended).
    let repo = spfs_fuse_macos::repo::FsRepository::open(&place.repo).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut record: RuntimeRecord = loop {
        let r = repo.runtime_record("theirs").unwrap().unwrap();
        if !r.status.running {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the runtime did not end"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    record.author.user_name = "someone-else".into();
    repo.save_runtime(
        &record,
        &spfs_fuse_macos::repo::tags::TagAuthor("someone-else@here".into()),
    )
    .unwrap();
    let o = spfs(&place, &["runtime", "rm", "--remove-durable", "theirs"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        err(&o).contains("Won't delete, this runtime belongs to 'someone-else'"),
        "{}",
        err(&o)
    );
    assert_eq!(out(&spfs(&place, &["runtime", "ls", "-q"])), "theirs\n");
    let o = spfs(
        &place,
        &[
            "runtime",
            "rm",
            "--remove-durable",
            "--ignore-user",
            "theirs",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&spfs(&place, &["runtime", "ls", "-q"])), "");
}

#[test]
fn commit_takes_upstreams_concurrency_flags_and_makes_the_same_layer() {
    let place = NoService::new();
    let src = place.dir.path().join("src");
    for i in 0..50 {
        let d = src.join(format!("d{}", i % 5));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i}")), format!("file {i}")).unwrap();
    }
    let digest = |args: &[&str]| {
        let o = place
            .command_of(SPFS)
            .args(["commit", "--path", src.to_str().unwrap()])
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", err(&o));
        created_digest(&o)
    };
    let plain = digest(&[]);
    for args in [
        &["--max-concurrent-blobs", "1"][..],
        &[
            "--max-concurrent-blobs",
            "64",
            "--max-concurrent-branches",
            "2",
        ],
        &["--hash-while-committing"],
        &["--hash-first"],
    ] {
        assert_eq!(digest(args), plain, "{args:?}");
    }
    let o = place
        .command_of(SPFS)
        .args([
            "commit",
            "--path",
            src.to_str().unwrap(),
            "--max-concurrent-blobs",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    let o = spfs(&place, &["check"]);
    assert!(o.status.success(), "{}", out(&o));
}

/// `spfs` on a local repository of its own, with place's repository as
/// the `file://` remote `origin`.
fn spfs_with_remote(place: &NoService, local: &std::path::Path, args: &[&str]) -> Output {
    place
        .command_of(SPFS)
        .args(args)
        .env("SPFS_STORAGE_ROOT", local)
        .env(
            "SPFS_REMOTE_origin_ADDRESS",
            format!("file://{}", place.repo.display()),
        )
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn upstreams_sync_flags_fill_in_and_repair_from_the_remote() {
    let place = NoService::new();
    let local = place.dir.path().join("local");
    let o = spfs_with_remote(
        &place,
        &local,
        &["pull", "--progress", "none", "fixture/base"],
    );
    assert!(o.status.success(), "{}", err(&o));
    let repo = spfs_fuse_macos::repo::FsRepository::open(&local).unwrap();
    let set = spfs_fuse_macos::repo::RepositorySet::new(
        repo.clone(),
        vec![],
        spfs_fuse_macos::repo::tags::TagAuthor("t@h".into()),
    );
    let stack = set
        .resolve_stack(&spfs_fuse_macos::repo::EnvSpec::parse("fixture/base").unwrap())
        .unwrap();
    let view =
        spfs_fuse_macos::repo::View::build(&set.read_stack_manifests(&stack).unwrap()).unwrap();
    let hello = view
        .get(view.resolve_path("hello.txt").unwrap())
        .unwrap()
        .payload()
        .unwrap();
    // A blob object lost: a checked pull fills it in.
    std::fs::remove_file(repo.object_path(&hello)).unwrap();
    let o = spfs_with_remote(&place, &local, &["check"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let o = spfs_with_remote(
        &place,
        &local,
        &[
            "pull",
            "--check",
            "--max-concurrent-payloads",
            "2",
            "fixture/base",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let o = spfs_with_remote(&place, &local, &["check"]);
    assert!(o.status.success(), "{}", out(&o));
    let m = place.mnt().display().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend(["fixture/base", "--", "cat"]);
        let file = format!("{m}/hello.txt");
        args.push(&file);
        let o = spfs_with_remote(&place, &local, &args);
        assert!(o.status.success(), "{extra:?}: {}", err(&o));
        out(&o)
    };
    // A payload damaged in place: only --resync copies it again.
    let payload = repo.payload_path(&hello);
    let mut perm = std::fs::metadata(&payload).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o644);
    std::fs::set_permissions(&payload, perm).unwrap();
    std::fs::write(&payload, "HELLO FROM BASE\n").unwrap();
    let o = spfs_with_remote(&place, &local, &["pull", "fixture/base"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        std::fs::read_to_string(&payload).unwrap(),
        "HELLO FROM BASE\n"
    );
    let o = spfs_with_remote(
        &place,
        &local,
        &["pull", "--resync", "--progress", "none", "fixture/base"],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        std::fs::read_to_string(&payload).unwrap(),
        "hello from base\n"
    );
    // run and shell take the same flags (a file:// remote is read in
    // place: nothing to pull for them here, unless named).
    assert_eq!(
        run(&[
            "--check",
            "--resync",
            "--progress",
            "bars",
            "--max-concurrent-manifests",
            "3"
        ]),
        "hello from base\n"
    );
    // Named with -r, a remote is pulled from, whatever its kind.
    std::fs::remove_file(repo.object_path(&hello)).unwrap();
    assert_eq!(run(&["-r", "origin", "--check"]), "hello from base\n");
    let o = spfs_with_remote(&place, &local, &["check"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = spfs_with_remote(
        &place,
        &local,
        &["run", "-r", "nosuch", "fixture/base", "--", "true"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("nosuch"), "{}", err(&o));
    // Bad values: usage.
    for bad in [["--max-concurrent-payloads", "0"], ["--progress", "loud"]] {
        let o = spfs_with_remote(&place, &local, &["pull", bad[0], bad[1], "fixture/base"]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
    }
}
