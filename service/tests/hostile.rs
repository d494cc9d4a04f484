//! Misuse and failure, round 3: what a hostile trial with a second account,
//! a tampered repository and a tampered environment did not survive — a
//! payload that is a FIFO, another user's runtime token, a mount request
//! for pid 1, world-readable scratch directories, a symlinked
//! `durable_edits`. Each case fails on the code before its fix.
//!
//! Linux only: they use its tools (`setpriv`, fusectl, `/proc`); the Mac
//! checks are in `scripts/macos-check`.
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::service::*;

/// The uid of the second account the tests act as.
const OTHER: u32 = 65534;

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The payload file of `hello.txt` in fixture/base, found by its content.
fn hello_payload(repo: &Path) -> PathBuf {
    for d in std::fs::read_dir(repo.join("payloads")).unwrap() {
        let d = d.unwrap().path();
        if !d.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&d).unwrap() {
            let f = f.unwrap().path();
            if std::fs::read(&f).unwrap() == b"hello from base\n" {
                return f;
            }
        }
    }
    panic!("no payload of hello.txt in {}", repo.display())
}

/// Runs `cmd` with a deadline; `None` if it did not end in time (killed).
fn output_within(mut cmd: Command, limit: Duration) -> Option<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn a_payload_that_is_a_fifo_answers_eio_and_never_blocks_the_mount() {
    // One request thread, as macFUSE serves: a blocking open there would
    // stop every runtime.
    let svc = Service::start_env("repo", &[("SPFS_FUSE_THREADS", "1")]);
    let payload = hello_payload(&svc.repo);
    std::fs::remove_file(&payload).unwrap();
    let made = Command::new("mkfifo").arg(&payload).status().unwrap();
    assert!(made.success());
    let m = svc.mnt.display().to_string();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut c = svc.command(BIN);
            c.args([
                "run",
                "fixture/base",
                "--",
                "cat",
                &format!("{m}/hello.txt"),
            ]);
            std::thread::spawn(move || output_within(c, Duration::from_secs(20)))
        })
        .collect();
    // Another runtime lists its files meanwhile.
    let mut ls = svc.command(BIN);
    ls.args(["run", "fixture/top", "--", "ls", &m]);
    let listed = output_within(ls, Duration::from_secs(20)).expect("ls hung: /spfs is blocked");
    assert!(listed.status.success(), "{}", err(&listed));
    for r in readers {
        let o = r.join().unwrap().expect("a read of the FIFO payload hung");
        assert!(!o.status.success());
        assert!(err(&o).contains("Input/output error"), "{}", err(&o));
    }
    let log = svc.log();
    assert!(log.contains("is not a regular file"), "{log}");
    // The service still answers its socket.
    assert!(text(&svc.cli(&["status"])).contains("service running"));
}

/// The runtime token of the runtime `sh` runs in.
fn token_of(sh: &mut RuntimeShell) -> String {
    let t = sh.eval("echo $SPFS_FUSE_RUNTIME_TOKEN");
    assert!(!t[0].is_empty(), "no token in the runtime's environment");
    t[0].clone()
}

#[test]
fn a_runtime_token_copied_by_another_account_lets_nobody_in() {
    let svc = Service::start("repo");
    let mut sh = RuntimeShell::start(&svc, "private", "fixture/base");
    sh.eval("echo secret > $M/secret.txt; chmod 0644 $M/secret.txt");
    let token = token_of(&mut sh);
    let m = svc.mnt.display().to_string();
    // Another account, outside the runtime's process tree, with the token.
    let as_other = |token: &str| {
        let o = Command::new("setpriv")
            .args([
                "--reuid",
                &OTHER.to_string(),
                "--regid",
                &OTHER.to_string(),
                "--clear-groups",
                "ls",
                "-A",
                &m,
            ])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("SPFS_FUSE_RUNTIME_TOKEN", token)
            .output()
            .expect("setpriv (util-linux)");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(as_other(&token), "", "another account entered the runtime");
    // The runtime's own user, with the same token, is let in (a daemon
    // that left the runtime's tree).
    let own = Command::new("ls")
        .args(["-A", &m])
        .env("SPFS_FUSE_RUNTIME_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&own.stdout).contains("secret.txt"),
        "{own:?}"
    );
}

/// Sends one raw request line on the control socket; the reply line.
fn raw_request(sock: &Path, line: &str) -> String {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(line.as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).unwrap();
    reply
}

#[test]
fn a_mount_request_for_a_process_that_is_not_the_requesters_is_refused() {
    let svc = Service::start("repo");
    let repo = svc.repo.display().to_string();
    let mount = |pid: u32| {
        format!(
            "{{\"version\":1,\"request\":\"mount\",\"root_pid\":{pid},\"env_spec\":\"fixture/base\",\"repositories\":[{{\"root\":\"{repo}\"}}]}}\n"
        )
    };
    // pid 1: every process on the machine descends from it.
    let reply = raw_request(&svc.sock, &mount(1));
    assert!(reply.contains("\"response\":\"error\""), "{reply}");
    assert!(reply.contains("not the requesting process"), "{reply}");
    assert!(reply.contains(r#""code":"not_permitted""#), "{reply}");
    // A process of the same user that is not an ancestor of the requester.
    let mut other = Kill(Command::new("sleep").arg("30").spawn().unwrap());
    let reply = raw_request(&svc.sock, &mount(other.0.id()));
    assert!(reply.contains("not the requesting process"), "{reply}");
    let _ = other.0.kill();
    // Nothing started, and a process in no runtime sees an empty /spfs.
    assert!(text(&svc.cli(&["runtime", "ls"])).contains("no runtimes"));
    let listed = std::fs::read_dir(&svc.mnt).unwrap().count();
    assert_eq!(listed, 0, "an outsider sees a runtime's files");
}

#[test]
fn errors_cross_the_socket_with_a_code_clients_act_on() {
    let svc = Service::start("repo");
    let info = |name: &str| {
        raw_request(
            &svc.sock,
            &format!("{{\"version\":1,\"request\":\"runtime_info\",\"name\":\"{name}\"}}\n"),
        )
    };
    let reply = info("nobody-has-this");
    assert!(reply.contains(r#""code":"no_such_runtime""#), "{reply}");
    let reply = raw_request(
        &svc.sock,
        "{\"version\":1,\"request\":\"no_such_request\"}\n",
    );
    assert!(reply.contains(r#""code":"invalid_request""#), "{reply}");
    // A commit of a read-only runtime.
    let mut ro = RuntimeShell::start_read_only(&svc, "ro", "fixture/base");
    assert_eq!(ro.eval("echo up"), ["up"]);
    let reply = raw_request(
        &svc.sock,
        "{\"version\":1,\"request\":\"commit\",\"name\":\"ro\"}\n",
    );
    assert!(reply.contains(r#""code":"read_only""#), "{reply}");
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn scratch_directories_are_private_to_their_user_also_when_made_by_an_older_version() {
    let svc = Service::start_prepared("repo", |dir| {
        // An older version left the scratch root world-readable.
        let root = dir.join("scratch");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    });
    let root = svc.scratch_root();
    assert_eq!(mode(&root), 0o700, "scratch root");
    let mut sh = RuntimeShell::start(&svc, "edits", "fixture/base");
    sh.eval("echo x > $M/new.txt");
    let dir = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("the runtime's scratch directory");
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    assert_eq!(mode(&dir.join("upper")), 0o700, "upper");
    // A durable runtime's edits in the repository, too.
    let mut d = RuntimeShell::start_durable(&svc, "kept", "fixture/base");
    d.eval("echo x > $M/new.txt");
    let edits = svc.repo.join("durable_edits/kept");
    assert_eq!(mode(&edits), 0o700, "{}", edits.display());
    assert_eq!(mode(&edits.join("upper")), 0o700);
}

#[test]
fn a_symlinked_durable_edits_is_never_written_or_deleted_through() {
    let svc = Service::start("repo");
    // A saved durable runtime, its edits in the repository.
    let o = svc.cli(&[
        "run",
        "-k",
        "--edit",
        "--runtime-name",
        "kept",
        "fixture/base",
        "--",
        "true",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    // The repository is tampered with: durable_edits → a victim directory.
    let victim = svc.dir.path().join("victim");
    std::fs::create_dir_all(victim.join("kept/upper")).unwrap();
    std::fs::write(victim.join("kept/upper/precious"), b"mine").unwrap();
    std::fs::write(victim.join("other-file"), b"mine too").unwrap();
    let edits = svc.repo.join("durable_edits");
    std::fs::rename(&edits, svc.dir.path().join("edits-aside")).unwrap();
    std::os::unix::fs::symlink(&victim, &edits).unwrap();
    let before = common::snapshot(&victim);
    // A new durable runtime: refused, naming the link; nothing written.
    let o = svc.cli(&[
        "run",
        "-k",
        "--edit",
        "--runtime-name",
        "fresh",
        "fixture/base",
        "--",
        "true",
    ]);
    assert!(!o.status.success(), "ran through the link");
    assert!(
        err(&o).contains("durable_edits is a symlink or not a directory"),
        "{}",
        err(&o)
    );
    // Rerunning the saved one: refused the same way.
    let o = svc.cli(&[
        "run",
        "--rerun",
        "kept",
        "--",
        "sh",
        "-c",
        "echo x > \"$SPFS_FUSE_MOUNTPOINT\"/x",
    ]);
    assert!(!o.status.success(), "reran through the link");
    assert!(
        err(&o).contains("symlink or not a directory"),
        "{}",
        err(&o)
    );
    // Removing its edits through the link: refused, nothing deleted, and
    // its record is still there.
    let o = svc.cli(&["runtime", "rm", "--remove-durable", "kept"]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("symlink or not a directory"),
        "{}",
        err(&o)
    );
    assert_eq!(
        common::snapshot(&victim),
        before,
        "the directory behind the link changed"
    );
    assert!(text(&svc.cli(&["runtime", "ls"])).contains("kept"));
}

#[test]
fn concurrent_first_runs_end_with_one_service_and_every_run_succeeds() {
    let env = NoService::new();
    let hello = format!("{}/hello.txt", env.mnt().display());
    for round in 0..3 {
        let runs: Vec<_> = (0..8)
            .map(|_| {
                let mut c = env.command();
                c.args(["run", "fixture/base", "--", "cat", &hello]);
                std::thread::spawn(move || output_within(c, Duration::from_secs(60)))
            })
            .collect();
        for r in runs {
            let o = r.join().unwrap().expect("a run hung");
            assert!(
                o.status.success(),
                "round {round}: {}\n{}",
                err(&o),
                std::fs::read_to_string(
                    env.dir
                        .path()
                        .join(".local/state/spfs-fuse-macos/service.log")
                )
                .unwrap_or_default()
            );
            assert_eq!(String::from_utf8_lossy(&o.stdout), "hello from base\n");
        }
        // One service, whose mount answers.
        let o = env.command().arg("status").output().unwrap();
        assert!(o.status.success(), "{}", err(&o));
        std::fs::read_dir(env.mnt()).expect("the mount does not answer");
        let services = Command::new("pgrep")
            .args(["-f", &format!("{BIN} service")])
            .output()
            .unwrap();
        let mine = String::from_utf8_lossy(&services.stdout)
            .lines()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .map(|e| {
                        String::from_utf8_lossy(&e).contains(&env.dir.path().display().to_string())
                    })
                    .unwrap_or(false)
            })
            .count();
        assert_eq!(mine, 1, "round {round}: services running for this socket");
        env.shutdown();
    }
}

/// Waits until `check` holds, up to `limit`; false if it never did.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    check()
}

/// Aborts the FUSE connection of the mount at `mnt`, as `echo 1 >
/// /sys/fs/fuse/connections/N/abort` does (fusectl mounted if needed).
fn abort_fuse_connection(mnt: &Path) {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(mnt).unwrap().dev();
    let id = libc::minor(dev);
    let ctl = Path::new("/sys/fs/fuse/connections");
    if std::fs::read_dir(ctl).map_or(true, |mut d| d.next().is_none()) {
        let _ = Command::new("mount")
            .args(["-t", "fusectl", "none"])
            .arg(ctl)
            .status();
    }
    std::fs::write(ctl.join(format!("{id}/abort")), "1").unwrap();
}

#[test]
fn a_service_whose_mount_is_aborted_or_unmounted_from_outside_stops_and_the_next_run_works() {
    for how in ["abort", "umount"] {
        let mut svc = Service::start("repo");
        if how == "abort" {
            abort_fuse_connection(&svc.mnt);
        } else {
            assert!(Command::new("umount")
                .arg("-l")
                .arg(&svc.mnt)
                .status()
                .unwrap()
                .success());
        }
        assert!(
            eventually(Duration::from_secs(10), || svc
                .child
                .try_wait()
                .unwrap()
                .is_some()),
            "{how}: the service kept running without its mount"
        );
        assert!(
            svc.log().contains("unmounted or aborted from outside"),
            "{how}: {}",
            svc.log()
        );
        // The next run starts a new service, whose mount answers.
        let m = svc.mnt.display().to_string();
        let o = svc.run("fixture/base", &["cat", &format!("{m}/hello.txt")]);
        assert_eq!(ok(&o), "hello from base\n", "{how}");
    }
}

#[test]
fn clients_of_a_stopped_service_time_out_naming_its_pid() {
    let svc = Service::start("repo");
    let pid = svc.child.id();
    let _cont = Cont(pid);
    let _ = spfs_fuse_macos::sys::process::signal(pid, libc::SIGSTOP);
    for args in [
        &["status"][..],
        &["runtime", "ls"],
        &["run", "fixture/base", "--", "true"],
    ] {
        let started = Instant::now();
        let o = svc
            .command(BIN)
            .args(args)
            .env("SPFS_FUSE_CLIENT_TIMEOUT", "1")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} waited {:?}",
            started.elapsed()
        );
        let e = err(&o);
        assert!(
            e.contains(&format!(
                "the service (pid {pid}) did not answer within 1 s"
            )) && e.contains(&format!("kill {pid}")),
            "{args:?}: {e}"
        );
    }
}

/// Sends SIGCONT to a process when dropped (a stopped service is never
/// left stopped).
struct Cont(u32);
impl Drop for Cont {
    fn drop(&mut self) {
        let _ = spfs_fuse_macos::sys::process::signal(self.0, libc::SIGCONT);
    }
}

#[test]
fn shutdown_refuses_while_runtimes_run_and_ends_those_whose_processes_are_gone() {
    let mut svc = Service::start("repo");
    let sh = RuntimeShell::start(&svc, "busy", "fixture/base");
    let o = svc.cli(&["shutdown"]);
    assert_eq!(o.status.code(), Some(1));
    let e = err(&o);
    assert!(
        e.contains("1 running runtime ('busy')") && e.contains("shutdown --force"),
        "{e}"
    );
    assert!(text(&svc.cli(&["status"])).contains("service running"));
    // The runtime's processes end, and the service is stopped at once:
    // the runtime's records leave the repository all the same.
    drop(sh);
    ok(&svc.cli(&["shutdown", "--force"]));
    let _ = svc.child.wait();
    let tags = svc.repo.join("tags/spfs/runtimes/meta");
    let left: Vec<_> = std::fs::read_dir(&tags)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "records left behind: {left:?}");
}

#[test]
fn commands_that_cannot_be_found_or_run_exit_127_and_126_as_in_a_shell() {
    let svc = Service::start("repo");
    let o = svc.run("fixture/base", &["/no/such/cmd"]);
    assert_eq!(o.status.code(), Some(127), "{}", err(&o));
    assert!(err(&o).contains("cannot run '/no/such/cmd'"), "{}", err(&o));
    let not_exec = svc.dir.path().join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    let o = svc.run("fixture/base", &[not_exec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(126), "{}", err(&o));
}

/// `spfs-fuse-macos ARGS` for `home`, under a 4 GiB address-space limit
/// and a deadline: a file read whole would fail or time out.
fn limited(home: &Path, repo: &Path, args: &[&str]) -> Output {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("ulimit -v 4194304; exec \"$@\"")
        .arg("sh")
        .arg(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", home)
        .env("SPFS_STORAGE_ROOT", repo)
        .env("SPFS_FUSE_SOCKET", home.join("run/control.sock"))
        .env("SPFS_FUSE_MOUNTPOINT", home.join("spfs"))
        .env("SPFS_FUSE_SCRATCH_ROOT", home.join("scratch"));
    output_within(c, Duration::from_secs(30)).expect("it read the endless file")
}

#[test]
fn files_a_user_points_at_dev_zero_or_a_fifo_are_refused_quickly_by_name() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let repo = h.join("repo");
    common::copy_tree(&common::fixtures().join("repo"), &repo);
    let link = |target: &str, at: &Path| {
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(at);
        std::os::unix::fs::symlink(target, at).unwrap();
    };
    // The settings file.
    let settings = h.join(".config/spfs-fuse-macos/settings.json");
    link("/dev/zero", &settings);
    let o = limited(h, &repo, &["config", "get"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("settings.json") && err(&o).contains("not a regular file"),
        "{}",
        err(&o)
    );
    // A service started with it starts at once on the default settings
    // (its log says why).
    let o = limited(h, &repo, &["start"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let o = limited(h, &repo, &["shutdown"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let log = std::fs::read_to_string(h.join(".local/state/spfs-fuse-macos/service.log")).unwrap();
    assert!(
        log.contains("using the default settings") && log.contains("not a regular file"),
        "{log}"
    );
    std::fs::remove_file(&settings).unwrap();
    // A 50 GB (sparse) settings file: refused with the limit.
    let big = std::fs::File::create(&settings).unwrap();
    big.set_len(50 << 30).unwrap();
    let o = limited(h, &repo, &["config", "get"]);
    assert!(
        err(&o).contains("larger than the 1048576 bytes"),
        "{}",
        err(&o)
    );
    std::fs::remove_file(&settings).unwrap();
    // The spfs config.
    let conf = h.join(".config/spfs/spfs.toml");
    link("/dev/zero", &conf);
    let o = limited(h, &repo, &["info", "fixture/base"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("spfs.toml") && err(&o).contains("not a regular file"),
        "{}",
        err(&o)
    );
    std::fs::remove_file(&conf).unwrap();
    // A runspec.
    let spec = h.join("env.spfs.yaml");
    link("/dev/zero", &spec);
    let o = limited(h, &repo, &["info", spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("env.spfs.yaml") && err(&o).contains("not a regular file"),
        "{}",
        err(&o)
    );
    // A FIFO as the spfs config: never waited on.
    let made = Command::new("mkfifo").arg(&conf).status().unwrap();
    assert!(made.success());
    let o = limited(h, &repo, &["info", "fixture/base"]);
    assert!(err(&o).contains("not a regular file"), "{}", err(&o));
}

/// Writes and reads back 4 KiB blocks with O_DIRECT (page-aligned
/// buffers), on a new file and on a layer's file; prints "ok".
const DIRECT_IO: &str = r#"
import mmap, os, sys
def direct(path, create):
    flags = os.O_RDWR | os.O_DIRECT | (os.O_CREAT if create else 0)
    fd = os.open(path, flags, 0o644)
    block = mmap.mmap(-1, 4096)
    block.write(b"direct!" * 585)
    for i in range(4):
        assert os.pwrite(fd, block, i * 4096) == 4096
    back = mmap.mmap(-1, 4096)
    assert os.preadv(fd, [back], 4096) == 4096
    assert back[:] == block[:], "read back other bytes"
    os.close(fd)
    assert os.path.getsize(path) >= 4 * 4096
direct(sys.argv[1] + "/direct.bin", True)
direct(sys.argv[1] + "/hello.txt", False)
print("ok")
"#;

#[test]
fn direct_io_works_in_an_editable_runtime() {
    let svc = Service::start("repo");
    let m = svc.mnt.display().to_string();
    let o = svc.cli(&[
        "run",
        "--edit",
        "fixture/base",
        "--",
        "python3",
        "-c",
        DIRECT_IO,
        &m,
    ]);
    assert_eq!(ok(&o), "ok\n", "{}", err(&o));
}

/// Makes `levels` nested directories `d` under `root` (walking down by
/// relative paths: the whole path is longer than one call may name), with
/// `bottom.txt` in the deepest.
const DEEP_TREE: &str = r#"
import os, sys
os.chdir(sys.argv[1])
for _ in range(int(sys.argv[2])):
    os.mkdir("d")
    os.chdir("d")
with open("bottom.txt", "w") as f:
    f.write("deep\n")
print("made")
"#;

#[test]
fn a_layer_2000_directories_deep_is_listed_run_and_committed_from_a_runtime() {
    let svc = Service::start("repo");
    let src = svc.dir.path().join("deep-src");
    std::fs::create_dir_all(&src).unwrap();
    let made = Command::new("python3")
        .args(["-c", DEEP_TREE, src.to_str().unwrap(), "2000"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    // Committed by upstream's spfs where it is here (else by ours).
    let commit = match upstream_spfs_if_present() {
        Some(spfs) => svc
            .command(spfs.to_str().unwrap())
            .args([
                "commit",
                "--path",
                src.to_str().unwrap(),
                "-t",
                "deep/layer",
            ])
            .output()
            .unwrap(),
        None => svc.cli(&[
            "commit",
            "--path",
            src.to_str().unwrap(),
            "-t",
            "deep/layer",
        ]),
    };
    assert!(commit.status.success(), "{}", err(&commit));
    let info = svc.cli(&["info", "deep/layer"]);
    assert!(text(&info).contains("2000 directories"), "{}", text(&info));
    let listed = text(&svc.cli(&["ls", "-R", "deep/layer"]));
    assert!(
        listed
            .lines()
            .any(|l| l.ends_with("/bottom.txt") && l.matches("d/").count() == 2000),
        "the deepest file is not listed"
    );
    let m = svc.mnt.display().to_string();
    let found = svc.run(
        "deep/layer",
        &[
            "sh",
            "-c",
            &format!("cd {m} && find . -name bottom.txt | wc -l"),
        ],
    );
    assert_eq!(ok(&found).trim(), "1");
    // An editable runtime makes 1,500 levels and commits them; the tag is
    // written only with a layer that loads.
    let mut sh = RuntimeShell::start(&svc, "deep", "fixture/base");
    let out = sh.eval(&format!("python3 -c '{DEEP_TREE}' $M 1500"));
    assert_eq!(out, ["made"]);
    let o = svc.cli(&["commit", "--runtime", "deep", "-t", "deep/edited"]);
    assert!(o.status.success(), "{}", err(&o));
    let info = text(&svc.cli(&["info", "deep/edited"]));
    assert!(info.starts_with("layer "), "{info}");
    let found = svc.run(
        "deep/edited",
        &[
            "sh",
            "-c",
            &format!("cd {m} && find . -name bottom.txt | wc -l"),
        ],
    );
    assert_eq!(ok(&found).trim(), "1");
    // Deep edits, then the runtime ends: its scratch goes, the service stays.
    let out = sh.eval(&format!("mkdir $M/e && python3 -c '{DEEP_TREE}' $M/e 1500"));
    assert_eq!(out, ["made"]);
    drop(sh);
    assert!(eventually(Duration::from_secs(10), || {
        !text(&svc.cli(&["runtime", "ls"])).contains("deep")
    }));
    assert!(text(&svc.cli(&["status"])).contains("service running"));
    let left = svc.scratch_dirs_left();
    assert!(
        left.is_empty(),
        "the scratch directory was not removed: {left:?}\n{}",
        svc.log()
    );
}

/// Replaces the payload file at `path` by another of the same size.
fn swap_same_size(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x20;
    let aside = path.with_extension("swap");
    std::fs::write(&aside, &bytes).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

#[test]
fn a_payload_swapped_for_other_bytes_of_the_same_size_is_never_served() {
    let svc = Service::start("repo");
    let m = svc.mnt.display().to_string();
    // A small file (judged on the request thread) and a large one (its
    // first open finished off it), committed as a layer.
    let src = svc.dir.path().join("big-src");
    std::fs::create_dir_all(&src).unwrap();
    let big: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(src.join("big.bin"), &big).unwrap();
    ok(&svc.cli(&["commit", "--path", src.to_str().unwrap(), "-t", "big/layer"]));
    let sum = |spec: &str, file: &str| {
        svc.run(
            spec,
            &["sh", "-c", &format!("sha256sum {m}/{file} | cut -c1-16")],
        )
    };
    // Read once while right (the verdict is remembered), then swapped:
    // a changed file is judged again.
    assert!(sum("big/layer", "big.bin").status.success());
    swap_same_size(&hello_payload(&svc.repo));
    let big_payload = spfs_fuse_macos::repo::FsRepository::open(&svc.repo)
        .unwrap()
        .payload_path(&spfs_fuse_macos::repo::Digest::of(&big));
    swap_same_size(&big_payload);
    for (spec, file) in [("fixture/base", "hello.txt"), ("big/layer", "big.bin")] {
        // A small file is judged before its first byte is served; a large
        // one in the background while it is served, and every open after
        // the verdict fails.
        if file == "hello.txt" {
            let o = sum(spec, file);
            assert!(
                err(&o).contains("Input/output error"),
                "{file} was served: {}",
                text(&o)
            );
        }
        let refused = eventually(Duration::from_secs(10), || {
            err(&sum(spec, file)).contains("Input/output error")
        });
        assert!(refused, "{file} is still served: {}", svc.log());
        // The same in an editable runtime, reading or copying up.
        let o = svc.cli(&[
            "run",
            "--edit",
            spec,
            "--",
            "sh",
            "-c",
            &format!("cat {m}/{file} > /dev/null"),
        ]);
        assert!(
            err(&o).contains("Input/output error"),
            "{file} (editable): {}",
            err(&o)
        );
        let o = svc.cli(&[
            "run",
            "--edit",
            spec,
            "--",
            "sh",
            "-c",
            &format!("echo x >> {m}/{file}"),
        ]);
        assert!(!o.status.success(), "{file} was copied up");
    }
    let log = svc.log();
    assert!(log.contains("does not hash to its digest"), "{log}");
    // The other files of the layer are served as ever.
    let o = svc.run("fixture/base", &["cat", &format!("{m}/lib/big.bin")]);
    assert!(o.status.success(), "{}", err(&o));
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_and_a_failed_write_is_an_error() {
    let svc = Service::start("repo");
    // bash reports the writer's status: 0 (it wrote first) or 141 (SIGPIPE).
    for args in ["status", "backends", "config get", "info fixture/base"] {
        let o = svc
            .command("bash")
            .args([
                "-c",
                &format!("{BIN} {args} | (exec 0<&-; true); echo \"${{PIPESTATUS[0]}}\""),
            ])
            .output()
            .unwrap();
        let status = String::from_utf8_lossy(&o.stdout).trim().to_owned();
        assert!(
            status == "0" || status == "141",
            "{args}: exit {status}: {}",
            err(&o)
        );
        assert!(!err(&o).contains("panicked"), "{args}: {}", err(&o));
    }
    for args in [
        &["ls", "-R", "fixture/base"][..],
        &["runtime", "ls"],
        &["backends"],
    ] {
        let o = svc
            .command(BIN)
            .args(args)
            .stdout(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
            )
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", err(&o));
        assert!(
            err(&o).contains("cannot write the output"),
            "{args:?}: {}",
            err(&o)
        );
        assert!(!err(&o).contains("panicked"), "{args:?}: {}", err(&o));
    }
}

#[test]
fn huge_input_is_cut_in_messages_with_its_length() {
    let svc = Service::start("repo");
    let name = "n".repeat(100_000);
    let o = svc.cli(&["run", "--runtime-name", &name, "fixture/base", "--", "true"]);
    assert_eq!(o.status.code(), Some(1));
    let e = err(&o);
    assert!(
        e.len() < 1000 && e.contains("(100000 bytes)"),
        "{} bytes: {}",
        e.len(),
        &e[..e.len().min(300)]
    );
    // A 30 MB runspec: refused by its size, in one short line.
    let spec = svc.dir.path().join("huge.spfs.yaml");
    std::fs::write(&spec, "x".repeat(30 << 20)).unwrap();
    let o = svc.cli(&["info", spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = err(&o);
    assert!(
        e.len() < 1000 && e.contains("larger than the 1048576 bytes"),
        "{} bytes",
        e.len()
    );
    // A reference of 100 KB that names nothing.
    let o = svc.cli(&["info", &"a/".repeat(50_000)]);
    assert!(err(&o).len() < 1000, "{} bytes", err(&o).len());
}

#[test]
fn a_mistyped_repository_or_a_ref_that_names_nothing_fails_before_a_service_starts() {
    let env = NoService::new();
    let missing = env.dir.path().join("no-such-repo");
    let o = env
        .command()
        .args(["run", "fixture/base", "--", "true"])
        .env("SPFS_STORAGE_ROOT", &missing)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains(&format!("no spfs repository at {}", missing.display())),
        "{}",
        err(&o)
    );
    assert!(!missing.exists(), "a repository was made");
    let o = env
        .command()
        .args(["run", "fixture/nope", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("unknown reference 'fixture/nope'")
            && err(&o).contains(&env.repo.display().to_string()),
        "{}",
        err(&o)
    );
    assert!(
        !env.dir.path().join("run/control.sock").exists(),
        "a service was started"
    );
    assert!(!is_mounted(&env.mnt()));
}

#[test]
fn usage_lines_never_show_the_global_options_as_required() {
    let svc = Service::start("repo");
    let o = svc.cli(&["run"]);
    assert_eq!(o.status.code(), Some(2));
    let e = err(&o);
    assert!(e.contains("Usage: spfs-fuse-macos run"), "{e}");
    assert!(!e.contains("--socket <PATH> --mountpoint <PATH>"), "{e}");
    // The variables still work.
    assert!(text(&svc.cli(&["status"])).contains(&svc.mnt.display().to_string()));
}

#[test]
fn a_commit_says_which_tags_it_set() {
    let svc = Service::start("repo");
    let src = svc.dir.path().join("tagged");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    let o = svc.cli(&[
        "commit",
        "--path",
        src.to_str().unwrap(),
        "-t",
        "me/one",
        "-t",
        "me/two",
    ]);
    let digest = ok(&o).trim().to_owned();
    let e = err(&o);
    assert!(
        e.contains(&format!("tagged me/one: {digest}"))
            && e.contains(&format!("tagged me/two: {digest}")),
        "{e}"
    );
}

/// xfstests' `fsx` (ltp/fsx.c, built with a few defines; it cannot ship
/// with the project) in an editable runtime: buffered with mmap,
/// buffered without, and aligned direct I/O, 20,000 operations each.
/// Run it with `SPFS_FSX=/path/to/fsx cargo test --test hostile -- --ignored fsx`.
#[test]
#[ignore = "needs xfstests' fsx: set SPFS_FSX to its path and run with --ignored"]
fn fsx_passes_in_an_editable_runtime_buffered_mapped_and_direct() {
    let fsx = std::env::var("SPFS_FSX").expect("SPFS_FSX names the fsx binary");
    let svc = Service::start("repo");
    let m = svc.mnt.display().to_string();
    for (i, args) in [
        "-N 20000",
        "-N 20000 -R -W",
        "-N 20000 -Z -r 4096 -w 4096 -t 4096",
    ]
    .iter()
    .enumerate()
    {
        let mut cmd = vec!["run", "--edit", "fixture/base", "--", fsx.as_str(), "-q"];
        cmd.extend(args.split(' '));
        let file = format!("{m}/fsx{i}");
        cmd.push(&file);
        let o = svc.cli(&cmd);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("All 20000 operations completed A-OK!"),
            "fsx {args}: {}{}",
            text(&o),
            err(&o)
        );
    }
}
