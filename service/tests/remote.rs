//! Studio remotes end to end: upstream's own `spfs server` (from
//! `../shared/peers/spfs-0.44`: the tests are ignored without it, and
//! `scripts/test` runs them where it is) over a copy of the upstream fixtures, our service with
//! an empty local repository, and the real binaries on a real mount.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::server::Server;
use common::service::*;
use common::{copy_tree, fixtures};

/// Our service with an empty local repository (created by the first
/// client, as upstream creates it).
fn service() -> Service {
    service_env(&[])
}

fn service_env(env: &[(&str, &str)]) -> Service {
    Service::start_full(
        "repo",
        |dir| std::fs::remove_dir_all(dir.join("repo")).unwrap(),
        env,
    )
}

/// Tags `big/layer` on the server: one file `large.bin` of `mib` MiB;
/// returns its sha256.
fn big_layer(server: &Server, svc: &Service, mib: u32) -> String {
    use sha2::Digest as _;
    use std::io::Write;
    let big = server.dir.path().join("big");
    std::fs::create_dir_all(&big).unwrap();
    let block: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let mut hash = sha2::Sha256::new();
    let mut f = std::fs::File::create(big.join("large.bin")).unwrap();
    for i in 0..mib {
        f.write_all(&i.to_le_bytes()).unwrap();
        f.write_all(&block).unwrap();
        hash.update(i.to_le_bytes());
        hash.update(&block);
    }
    drop(f);
    let o = svc
        .command(BIN)
        .env("SPFS_STORAGE_ROOT", server.repo())
        .args(["commit", "--path", big.to_str().unwrap(), "-t", "big/layer"])
        .output()
        .unwrap();
    ok(&o);
    std::fs::remove_dir_all(&big).unwrap();
    format!("{:x}", hash.finalize())
}

/// Waits until a payload is arriving in `repo` (a staged file with data).
fn wait_arriving(repo: &Path) {
    let work = repo.join("payloads/work");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let arriving = std::fs::read_dir(&work)
            .map(|d| {
                d.flatten()
                    .any(|f| f.metadata().map(|m| m.len() > 0).unwrap_or(false))
            })
            .unwrap_or(false);
        if arriving {
            return;
        }
        assert!(Instant::now() < deadline, "the download never started");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn signal(server: &Server, sig: i32) {
    let pid = server.child.as_ref().unwrap().id();
    let sent = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{sig} {pid}");
}

/// Our CLI against `svc`, with `server` as remote `origin`.
fn cli(svc: &Service, server: &Server, args: &[&str]) -> Output {
    svc.command(BIN)
        .env("SPFS_REMOTE_origin_ADDRESS", &server.address)
        .args(args)
        .output()
        .unwrap()
}

/// Our CLI against `svc` with `server` as `origin`, running on, its
/// output piped.
fn spawn_cli(svc: &Service, server: &Server, args: &[&str]) -> Child {
    svc.command(BIN)
        .env("SPFS_REMOTE_origin_ADDRESS", &server.address)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Payload files in `repo` (none staged).
fn payload_files(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(shards) = std::fs::read_dir(repo.join("payloads")) else {
        return out;
    };
    for shard in shards.flatten() {
        if shard.file_name() == "work" {
            continue;
        }
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            out.push(f.path());
        }
    }
    out
}

fn expected(name: &str) -> Vec<String> {
    std::fs::read_to_string(fixtures().join("expected").join(name))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Lines of `o`'s stdout that parse as JSON.
fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.is_object())
        .collect()
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn a_stack_only_on_the_server_runs_at_once_and_each_file_is_fetched_when_first_opened() {
    let spfs = upstream_spfs();
    let server = Server::start(&spfs);
    let svc = service();
    let mnt = svc.mnt.to_str().unwrap();
    // In the runtime: the fetch counters and payload files at start, after
    // reading one file, then the whole view.
    let script = format!(
        r#"
        {BIN} runtime info --json "$SPFS_RUNTIME" | tr -d '\n'; echo
        python3 -c 'import os,sys; print(sum(len(f) for _,_,f in os.walk(sys.argv[1]+"/payloads")))' "$SPFS_STORAGE_ROOT"
        cat {mnt}/hello.txt > /dev/null
        {BIN} runtime info --json "$SPFS_RUNTIME" | tr -d '\n'; echo
        python3 -c 'import os,sys; print(sum(len(f) for _,_,f in os.walk(sys.argv[1]+"/payloads")))' "$SPFS_STORAGE_ROOT"
        echo WALK
        python3 -c '{WALKER}' {mnt}
        "#
    );
    let o = cli(
        &svc,
        &server,
        &["run", "fixture/base+fixture/top", "--", "sh", "-c", &script],
    );
    let out = ok(&o);
    let (head, walk) = out.split_once("WALK\n").unwrap();
    let infos = json_lines(&o);
    assert_eq!(infos.len(), 2, "{out}");
    let fetched = |i: usize| infos[i]["fetching"]["fetched"].as_u64().unwrap();
    assert_eq!(fetched(0), 0, "starting fetched payloads: {out}");
    assert_eq!(
        fetched(1),
        1,
        "reading one file fetched another number: {out}"
    );
    let counts: Vec<u64> = head.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert_eq!(counts[1], counts[0] + 1, "one payload file more: {out}");
    // The exact view upstream's own FUSE showed for this stack.
    let walked: Vec<String> = walk
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    assert_eq!(walked, expected("fixture__base_plus_fixture__top.tsv"));
    // Upstream reads what was pulled (a file masked in the view, never
    // opened, has no local payload: that is the point).
    let check = Command::new(&spfs)
        .args(["ls", "fixture/top", "new"])
        .env_clear()
        .env("SPFS_STORAGE_ROOT", &svc.repo)
        .env("HOME", svc.dir.path())
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", both(&check));
    assert!(both(&check).contains("added.txt"), "{}", both(&check));
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn sync_all_pulls_every_payload_before_the_command_starts() {
    let spfs = upstream_spfs();
    let server = Server::start(&spfs);
    let svc = service();
    let script = format!(
        r#"python3 -c 'import os,sys; print(sum(len(f) for _,_,f in os.walk(sys.argv[1]+"/payloads")))' "$SPFS_STORAGE_ROOT"
        {BIN} runtime info --json "$SPFS_RUNTIME" | tr -d '\n'; echo"#
    );
    let o = cli(
        &svc,
        &server,
        &[
            "run",
            "--sync-all",
            "fixture/base",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    let out = ok(&o);
    let files: u64 = out.lines().next().unwrap().trim().parse().unwrap();
    // fixture/base has 213 payloads; the runtime's record adds one.
    assert!(files >= 213, "{out}");
    let info = &json_lines(&o)[0];
    assert_eq!(info["fetching"]["fetched"].as_u64(), Some(0), "{out}");
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn a_layer_committed_on_the_mac_is_pushed_and_upstream_reads_it_from_the_server() {
    let spfs = upstream_spfs();
    let server = Server::start(&spfs);
    let svc = service();
    let mnt = svc.mnt.to_str().unwrap();
    let script = format!(
        "mkdir -p {mnt}/mac && echo 'made on a mac' > {mnt}/mac/note.txt && rm {mnt}/hello.txt && {BIN} commit -t mac/pushed"
    );
    let o = cli(
        &svc,
        &server,
        &["run", "--edit", "fixture/base", "--", "sh", "-c", &script],
    );
    ok(&o);
    let o = cli(&svc, &server, &["push", "mac/pushed", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(doc["pushed"][0]["tag"], "mac/pushed", "{doc}");
    assert!(doc["payloads"].as_u64().unwrap() >= 1, "{doc}");
    // Upstream, on the server's own repository.
    let read = server.upstream(&["read", "mac/pushed", "mac/note.txt"]);
    assert_eq!(
        String::from_utf8_lossy(&read.stdout),
        "made on a mac\n",
        "{}",
        both(&read)
    );
    let listed = server.upstream(&["ls", "mac/pushed"]);
    assert!(both(&listed).contains("mac"), "{}", both(&listed));
    let check = server.upstream(&["check"]);
    assert!(check.status.success(), "{}", both(&check));
    // And a second push has nothing to send.
    let o = cli(&svc, &server, &["push", "mac/pushed", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(doc["objects"], 0, "{doc}");
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn a_server_killed_in_the_middle_of_a_pull_leaves_no_partial_object() {
    let spfs = upstream_spfs();
    let mut server = Server::start(&spfs);
    let svc = service();
    big_layer(&server, &svc, 384);
    let pull = spawn_cli(&svc, &server, &["pull", "big/layer"]);
    // Kill the server once the payload is arriving.
    wait_arriving(&svc.repo);
    server.kill();
    let work = svc.repo.join("payloads/work");
    let out = pull.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the pull succeeded: {err}");
    assert!(
        err.contains(&server.address),
        "the error names no address: {err}"
    );
    // Nothing half-written, and nothing that names what is missing.
    assert_eq!(payload_files(&svc.repo), Vec::<PathBuf>::new());
    let staged: Vec<_> = std::fs::read_dir(&work).unwrap().flatten().collect();
    assert!(staged.is_empty(), "staged files left: {staged:?}");
    assert!(!svc.repo.join("tags/big/layer.tag").exists());
    let objects = walk_files(&svc.repo.join("objects"));
    assert!(
        objects.is_empty(),
        "objects written before their payload: {objects:?}"
    );
    // A remote that is down: its address and what to do, at once.
    let started = Instant::now();
    let o = cli(&svc, &server, &["pull", "big/layer"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success());
    assert!(
        err.contains(&server.address) && err.contains("cannot be reached"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn a_payload_that_cannot_be_fetched_is_eio_to_its_reader_and_nothing_else_stops() {
    let spfs = upstream_spfs();
    let mut server = Server::start(&spfs);
    let svc = service();
    let mnt = svc.mnt.to_str().unwrap();
    // Objects only, then the server goes away.
    let o = cli(
        &svc,
        &server,
        &["pull", "--no-payloads", "fixture/base", "--json"],
    );
    let doc: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    // Only its three symlinks' targets (see the fixture's README).
    assert_eq!(doc["payloads"], 3, "{doc}");
    server.kill();
    let script = format!(
        "cat {mnt}/hello.txt; echo \"cat=$?\"; ls {mnt} | wc -l; {BIN} runtime info --json \"$SPFS_RUNTIME\" | tr -d '\\n'; echo"
    );
    let o = cli(
        &svc,
        &server,
        &["run", "fixture/base", "--", "sh", "-c", &script],
    );
    let out = both(&o);
    assert!(out.contains("Input/output error"), "{out}");
    assert!(out.contains("cat=1"), "{out}");
    let info = &json_lines(&o)[0];
    assert_eq!(info["fetching"]["failed"].as_u64(), Some(1), "{out}");
    assert!(
        svc.log().contains("cannot fetch a payload") && svc.log().contains(&server.address),
        "the service's log does not say why: {}",
        svc.log()
    );
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn a_pull_killed_in_the_middle_leaves_no_partial_object_and_the_next_one_completes() {
    let spfs = upstream_spfs();
    let server = Server::start(&spfs);
    let svc = service();
    let sha = big_layer(&server, &svc, 384);
    let mut pull = spawn_cli(&svc, &server, &["pull", "big/layer"]);
    wait_arriving(&svc.repo);
    pull.kill().unwrap();
    pull.wait().unwrap();
    assert_eq!(payload_files(&svc.repo), Vec::<PathBuf>::new());
    assert!(walk_files(&svc.repo.join("objects")).is_empty());
    assert!(!svc.repo.join("tags/big/layer.tag").exists());
    // Pulled again: whole, with its progress on a terminal this time.
    let o = Command::new("script")
        .args(["-qec", &format!("{BIN} pull big/layer"), "/dev/null"])
        .envs(
            svc.command(BIN)
                .get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        )
        .env("SPFS_REMOTE_origin_ADDRESS", &server.address)
        .env("TERM", "xterm")
        .output()
        .unwrap();
    let shown = both(&o);
    assert!(o.status.success(), "{shown}");
    assert!(shown.contains("pull ["), "no progress bar: {shown}");
    assert!(
        shown.contains("MiB/s") && shown.contains("payloads"),
        "{shown}"
    );
    assert!(shown.contains("pulled big/layer"), "{shown}");
    let local: Vec<PathBuf> = payload_files(&svc.repo);
    assert_eq!(local.len(), 1, "{local:?}");
    let o = Command::new("sha256sum").arg(&local[0]).output().unwrap();
    assert!(both(&o).starts_with(&sha));
    // Without a terminal: plain lines, no escapes.
    let o = cli(&svc, &server, &["pull", "fixture/base"]);
    let plain = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{plain}");
    assert!(
        plain.contains("pulled fixture/base (") && plain.contains(&server.address),
        "{plain}"
    );
    assert!(plain.contains("pulled 2 objects, 213 payloads"), "{plain}");
    assert!(!plain.contains('\x1b'), "{plain}");
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn a_saved_runtime_on_a_remote_stack_runs_again_and_fetches_from_the_remote_configured_now() {
    let spfs = upstream_spfs();
    let mut server = Server::start(&spfs);
    let svc = service();
    let mnt = svc.mnt.to_str().unwrap();
    let o = cli(
        &svc,
        &server,
        &[
            "run",
            "-k",
            "--runtime-name",
            "studio-work",
            "--edit",
            "fixture/base",
            "--",
            "sh",
            "-c",
            &format!("echo mine > {mnt}/mine.txt"),
        ],
    );
    ok(&o);
    // The studio is down: the edits are here, what was never read is not.
    server.kill();
    let script = format!("cat {mnt}/mine.txt; cat {mnt}/hello.txt; echo hello=$?");
    let o = cli(
        &svc,
        &server,
        &["run", "--rerun", "studio-work", "--", "sh", "-c", &script],
    );
    let out = both(&o);
    assert!(out.contains("mine\n") && out.contains("hello=1"), "{out}");
    assert!(out.contains("Input/output error"), "{out}");
    // It is back, at another address: the rerun fetches from there.
    server.spawn();
    let o = cli(
        &svc,
        &server,
        &["run", "--rerun", "studio-work", "--", "sh", "-c", &script],
    );
    let out = both(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("mine\nhello from base\nhello=0"), "{out}");
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn an_editable_runtime_on_a_remote_stack_reads_and_copies_up_files_fetched_on_first_open() {
    let spfs = upstream_spfs();
    let server = Server::start(&spfs);
    let svc = service();
    let mnt = svc.mnt.to_str().unwrap();
    let fetched = format!(
        "{BIN} runtime info --json \"$SPFS_RUNTIME\" | python3 -c 'import json,sys; print(\"fetched\", json.load(sys.stdin)[\"fetching\"][\"fetched\"])'"
    );
    let script = format!(
        "{fetched}; echo more >> {mnt}/hello.txt; cat {mnt}/hello.txt; {fetched}; \
         echo replaced > {mnt}/bin/tool; cat {mnt}/bin/tool; {fetched}; \
         cat {mnt}/etc/conf.d/a.conf; {fetched}"
    );
    let o = cli(
        &svc,
        &server,
        &["run", "--edit", "fixture/base", "--", "sh", "-c", &script],
    );
    let out = both(&o);
    assert!(o.status.success(), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    // Nothing at start; the append copied hello.txt up after fetching it;
    // a write that truncates fetches nothing; a read fetches its file.
    assert_eq!(lines[0], "fetched 0", "{out}");
    assert_eq!(lines[1..3], ["hello from base", "more"], "{out}");
    assert_eq!(lines[3], "fetched 1", "{out}");
    assert_eq!(lines[4..6], ["replaced", "fetched 1"], "{out}");
    assert_eq!(lines[7], "fetched 2", "{out}");
    assert_eq!(lines.len(), 8, "{out}");
}

/// stdout and stderr of `o`, whether it succeeded or not.
fn both(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn a_runtime_still_pulling_shows_progress_to_subscribers_and_holds_up_no_one_else() {
    pulling_holds_up_no_one(false);
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn an_editable_runtime_still_pulling_holds_up_no_one_else_either() {
    pulling_holds_up_no_one(true);
}

/// A runtime (editable or not) reads a large file whose download the
/// server stalls: subscribers see it pulling, others are served at once.
fn pulling_holds_up_no_one(edit: bool) {
    use std::io::{BufRead, BufReader, Write};
    let spfs = upstream_spfs();
    let server = Server::start(&spfs);
    // One request thread, as macFUSE serves: a download on it would hold
    // up everyone.
    let svc = service_env(&[("SPFS_REMOTE_TIMEOUT", "60"), ("SPFS_FUSE_THREADS", "1")]);
    let sha = big_layer(&server, &svc, 256);
    let mnt = svc.mnt.to_str().unwrap().to_owned();
    let mut sub = std::os::unix::net::UnixStream::connect(&svc.sock).unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    sub.write_all(b"{\"version\":1,\"request\":\"subscribe\"}\n")
        .unwrap();
    let mut events = BufReader::new(sub);
    let large = format!("{mnt}/large.bin");
    let mut args = vec!["run", "big/layer", "--", "sha256sum", &large];
    if edit {
        args.insert(1, "--edit");
    }
    let reader = spawn_cli(&svc, &server, &args);
    wait_arriving(&svc.repo);
    // The server stops sending in the middle of the payload.
    signal(&server, libc::SIGSTOP);
    // Subscribers see the runtime pulling.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut line = String::new();
        events.read_line(&mut line).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["event"] == "updated" && v["runtime"]["fetching"]["in_flight"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no event showed the runtime pulling"
        );
    }
    // Meanwhile the file system answers everyone else: another runtime
    // of the same stack lists and stats files at once.
    let started = Instant::now();
    let o = cli(
        &svc,
        &server,
        &[
            "run",
            "big/layer",
            "--",
            "sh",
            "-c",
            &format!("ls -l {mnt} && stat {mnt}/large.bin"),
        ],
    );
    assert!(o.status.success(), "{}", both(&o));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    signal(&server, libc::SIGCONT);
    let out = reader.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(&sha),
        "{}",
        both(&out)
    );
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn a_download_that_stalls_past_the_timeout_is_eio_and_stores_nothing() {
    let spfs = upstream_spfs();
    let server = Server::start(&spfs);
    let svc = service_env(&[("SPFS_REMOTE_TIMEOUT", "2")]);
    big_layer(&server, &svc, 256);
    let mnt = svc.mnt.to_str().unwrap().to_owned();
    let script = format!("cat {mnt}/large.bin > /dev/null; echo cat=$?");
    let reader = spawn_cli(
        &svc,
        &server,
        &["run", "big/layer", "--", "sh", "-c", &script],
    );
    wait_arriving(&svc.repo);
    signal(&server, libc::SIGSTOP);
    let out = reader.wait_with_output().unwrap();
    signal(&server, libc::SIGCONT);
    let all = both(&out);
    assert!(
        all.contains("cat=1") && all.contains("Input/output error"),
        "{all}"
    );
    assert!(
        svc.log().contains("did not answer within 2 s"),
        "the log does not say why: {}",
        svc.log()
    );
    // No partial payload in place, nothing staged left.
    let large: Vec<_> = payload_files(&svc.repo)
        .into_iter()
        .filter(|p| std::fs::metadata(p).unwrap().len() > 1 << 20)
        .collect();
    assert!(large.is_empty(), "{large:?}");
    let staged: Vec<_> = std::fs::read_dir(svc.repo.join("payloads/work"))
        .unwrap()
        .flatten()
        .collect();
    assert!(staged.is_empty(), "{staged:?}");
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn a_payload_that_does_not_match_its_digest_is_eio_and_never_stored() {
    use spfs_fuse_macos::repo::{Digest, FsRepository};
    let spfs = upstream_spfs();
    let server = Server::start(&spfs);
    let svc = service();
    let mnt = svc.mnt.to_str().unwrap();
    // The server's copy of hello.txt is damaged: same size, other bytes.
    let hello = Digest::of(b"hello from base\n");
    let on_server = FsRepository::open(server.repo())
        .unwrap()
        .payload_path(&hello);
    assert!(
        on_server.exists(),
        "the fixture changed: {}",
        on_server.display()
    );
    let mut perms = std::fs::metadata(&on_server).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&on_server, perms).unwrap();
    std::fs::write(&on_server, b"hello, damaged\n!").unwrap();
    let script = format!("cat {mnt}/hello.txt; echo cat=$?; cat {mnt}/empty.txt; echo empty=$?");
    let o = cli(
        &svc,
        &server,
        &["run", "fixture/base", "--", "sh", "-c", &script],
    );
    let all = both(&o);
    assert!(
        all.contains("cat=1") && all.contains("Input/output error"),
        "{all}"
    );
    assert!(!all.contains("damaged"), "served the damaged bytes: {all}");
    assert!(all.contains("empty=0"), "{all}");
    let log = svc.log();
    assert!(
        log.contains(&hello.to_string())
            && log.contains(&server.address)
            && log.contains("refused"),
        "the log does not name the digest and remote: {log}"
    );
    let local = FsRepository::open(&svc.repo).unwrap().payload_path(&hello);
    assert!(!local.exists(), "the damaged payload was stored");
    // `pull` refuses it the same way.
    let o = cli(&svc, &server, &["pull", "fixture/base"]);
    let err = both(&o);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(&hello.to_string()) && err.contains(&server.address),
        "{err}"
    );
    assert!(!local.exists(), "the damaged payload was stored");
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk_files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn spfs_pull_and_push_move_what_upstream_serves_and_reads() {
    let spfs = upstream_spfs();
    let server = Server::start(&spfs);
    let svc = service();
    let ours = Path::new(BIN).with_file_name("spfs");
    let run = |args: &[&str]| {
        svc.command(ours.to_str().unwrap())
            .env("SPFS_REMOTE_origin_ADDRESS", &server.address)
            .args(args)
            .output()
            .unwrap()
    };
    // Pulled: the tag and every payload, read here without the server.
    ok(&run(&["pull", "fixture/base"]));
    let o = run(&["read", "fixture/base", "hello.txt"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hello from base\n",
        "{}",
        both(&o)
    );
    // Pushed: a layer made here, read by upstream on the server.
    let src = svc.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("note.txt"), "pushed by spfs\n").unwrap();
    ok(&run(&[
        "commit",
        "--path",
        src.to_str().unwrap(),
        "-t",
        "mac/note",
    ]));
    ok(&run(&["push", "mac/note"]));
    let read = server.upstream(&["read", "mac/note", "note.txt"]);
    assert_eq!(
        String::from_utf8_lossy(&read.stdout),
        "pushed by spfs\n",
        "{}",
        both(&read)
    );
    assert!(server.upstream(&["check"]).status.success());
    // An unknown reference: one report, status 1.
    let o = run(&["pull", "no/such-tag"]);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn check_pull_repairs_from_the_server_as_upstream_does() {
    let spfs = upstream_spfs();
    let server = Server::start(&spfs);
    let ours = Path::new(BIN).with_file_name("spfs");
    // Two local copies of the fixture, damaged alike: payloads and a
    // manifest gone.
    let dir = tempfile::tempdir().unwrap();
    let damaged = |name: &str| {
        let repo = dir.path().join(name).join("repo");
        copy_tree(&fixtures().join("repo"), &repo);
        for p in payload_files(&repo).iter().take(3) {
            std::fs::remove_file(p).unwrap();
        }
        let o = Command::new(&spfs)
            .args(["info", "fixture/top"])
            .env("SPFS_STORAGE_ROOT", &repo)
            .env("HOME", dir.path())
            .output()
            .unwrap();
        let manifest = String::from_utf8_lossy(&o.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(" manifest: ").map(str::to_owned))
            .unwrap();
        let (a, b) = manifest.split_at(2);
        std::fs::remove_file(repo.join("objects").join(a).join(b)).unwrap();
        repo
    };
    let (theirs, mine) = (damaged("theirs"), damaged("ours"));
    let run = |bin: &Path, repo: &Path, args: &[&str]| {
        Command::new(bin)
            .args(args)
            .env("SPFS_STORAGE_ROOT", repo)
            .env("HOME", dir.path())
            .env("SPFS_REMOTE_origin_ADDRESS", &server.address)
            .output()
            .unwrap()
    };
    // (The first line is the time taken.)
    let after_first = |o: &Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .join("\n")
    };
    for args in [
        &["check"][..],
        &["check", "--pull"],
        &["check"],
        &["check", "--pull", "origin", "-r", "origin"],
    ] {
        let t = run(&spfs, &theirs, args);
        let o = run(&ours, &mine, args);
        assert_eq!(o.status.code(), t.status.code(), "{args:?}: {}", both(&o));
        assert_eq!(after_first(&o), after_first(&t), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&t.stderr),
            "{args:?}"
        );
    }
    assert!(after_first(&run(&ours, &mine, &["check"])).ends_with("No issues found"));
}
