//! End to end: the real `spfs-fuse-macos` binary serving real FUSE mounts.
//! Each test runs its own service on its own mountpoint and socket, and a
//! guard stops it (and removes any mount) even when the test fails.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::service::*;
use common::*;

#[test]
fn every_recorded_ref_shows_the_recorded_view() {
    for repo in REPOS {
        let svc = Service::start(repo);
        for (spec, tsv) in expected_views() {
            let mut expected: Vec<String> = std::fs::read_to_string(&tsv)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect();
            expected.sort();
            assert_eq!(svc.walk(&spec), expected, "{repo} {spec}");
        }
    }
}

#[test]
fn exit_status_env_and_bad_refs() {
    let svc = Service::start("repo");
    let o = svc.run("fixture/base", &["sh", "-c", "echo $SPFS_RUNTIME; exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("rt-"));
    let named = svc.cli(&[
        "run",
        "--runtime-name",
        "mine",
        "-",
        "--",
        "sh",
        "-c",
        "echo $SPFS_RUNTIME",
    ]);
    assert_eq!(text(&named).trim(), "mine");

    for (spec, needle) in [
        ("fixture/nope", "unknown reference 'fixture/nope'"),
        ("bad ref", "invalid environment spec"),
    ] {
        let marker = svc.dir.path().join("ran");
        let o = svc.run(spec, &["touch", marker.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{spec}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(needle),
            "{spec}"
        );
        assert!(!marker.exists(), "the command ran for {spec}");
    }
    // nothing was left behind by the failures
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(text(&svc.cli(&["runtime", "ls"])).trim(), "no runtimes");
}

#[test]
fn two_runtimes_only_ever_see_their_own_content() {
    let svc = Service::start("repo");
    // base has bin/other and hello.txt "hello from base"; top masks
    // bin/other and changes hello.txt
    let script = r#"
import os, sys
mnt, want, other_exists = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
bad = 0
for i in range(300):
    with open(os.path.join(mnt, "hello.txt")) as f:
        if f.read().strip() != want: bad += 1
    if os.path.exists(os.path.join(mnt, "bin/other")) != other_exists: bad += 1
    if os.stat(os.path.join(mnt, "hello.txt")).st_size != len(want) + 1: bad += 1
print(bad)
"#;
    let mnt = svc.mnt.to_str().unwrap().to_owned();
    let spawn = |spec: &str, want: &str, other: &str| {
        svc.command(BIN)
            .args([
                "run", spec, "--", "python3", "-c", script, &mnt, want, other,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn("fixture/base", "hello from base", "1");
    let b = spawn("fixture/base+fixture/top", "hello from top, changed", "0");
    for child in [a, b] {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success());
        assert_eq!(
            String::from_utf8(o.stdout).unwrap().trim(),
            "0",
            "mismatches"
        );
    }
    // this test process is in no runtime: an empty /spfs
    assert_eq!(std::fs::read_dir(&svc.mnt).unwrap().count(), 0);
}

#[test]
fn a_double_forked_daemon_keeps_its_view() {
    let svc = Service::start("repo");
    let out = svc.dir.path().join("daemon.out");
    // The root exits at once; the daemon's parent (a subshell) too; the
    // daemon reads /spfs only afterwards.
    let script = format!(
        "( ( sleep 0.5; cat {mnt}/hello.txt > {out} ) & ) ; exit 0",
        mnt = svc.mnt.display(),
        out = out.display()
    );
    let o = svc.run("fixture/base", &["sh", "-c", &script]);
    assert!(o.status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !out.exists() || std::fs::read_to_string(&out).unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the daemon wrote nothing");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().trim(),
        "hello from base"
    );
}

#[test]
fn a_reused_pid_does_not_get_a_dead_member_view() {
    let svc = Service::start("repo");
    // root waits on stdin; a member touches /spfs, prints its pid, sleeps
    let (mut root, line) = spawn_in_base(
        &svc,
        &format!(
            "sh -c 'ls {} > /dev/null; echo $$; exec sleep 30' & wait; read x",
            svc.mnt.display()
        ),
    );
    let member: u32 = line.trim().parse().unwrap();
    let _ = spfs_fuse_macos::sys::process::signal(member, libc::SIGKILL);
    // the root shell's `wait` reaps it, freeing the pid
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{member}")).exists() {
        assert!(Instant::now() < deadline, "member {member} was not reaped");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut reused = None;
    for _ in 0..300 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (member - 1).to_string()).unwrap();
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("ls -A {} | wc -l", svc.mnt.display()))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        if child.id() == member {
            reused = Some(child);
            break;
        }
        let _ = child.wait_with_output();
    }
    let o = reused
        .expect("could not reuse the pid")
        .wait_with_output()
        .unwrap();
    assert_eq!(
        String::from_utf8(o.stdout).unwrap().trim(),
        "0",
        "saw the dead member's view"
    );
    root.0.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
}

#[test]
fn members_keep_their_runtime_whatever_their_uid_and_other_users_cannot_use_the_socket() {
    let svc = Service::start("repo");
    const OTHER: u32 = 48213; // an unused uid, made up for the test
                              // another user cannot connect to the control socket
    let o = svc
        .command(BIN)
        .arg("status")
        .uid(OTHER)
        .gid(OTHER)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("ermission denied"), "{err}");
    // membership is by ancestry alone: a member that switches to another
    // uid (su, a build user) still sees its runtime, and the files' modes
    // decide what it may do (files there are root's, 0755/0644)
    let mnt = svc.mnt.to_str().unwrap();
    let o = svc.run(
        "fixture/base",
        &["python3", "-c", &format!("import os; os.setgid({OTHER}); os.setuid({OTHER}); print(len(os.listdir('{mnt}'))); print(open('{mnt}/hello.txt').read().strip())")],
    );
    assert_eq!(text(&o).trim(), "11\nhello from base");
    let o = svc.run(
        "fixture/base",
        &[
            "python3",
            "-c",
            &format!("import os; os.setgid({OTHER}); os.setuid({OTHER}); open('{mnt}/etc/x', 'w')"),
        ],
    );
    assert!(
        !o.status.success(),
        "another uid wrote into a read-only runtime"
    );
    // while a process of that user in no runtime sees an empty /spfs
    let o = Command::new("python3")
        .args(["-c", &format!("import os; os.setgid({OTHER}); os.setuid({OTHER}); print(len(os.listdir('{mnt}')))")])
        .output()
        .unwrap();
    assert_eq!(text(&o).trim(), "0");
    // and root's processes in the runtime see it as before
    let o = svc.run("fixture/base", &["sh", "-c", &format!("ls {mnt} | wc -l")]);
    assert_eq!(text(&o).trim(), "11");
}

#[test]
fn malformed_and_oversized_frames_leave_the_service_running() {
    let svc = Service::start("repo");
    let mut s = UnixStream::connect(&svc.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    for bad in [
        "not json\n",
        "{\"version\":1,\"request\":\"explode\"}\n",
        "{\"version\":99,\"request\":\"status\"}\n",
        "{\"version\":1,\"request\":\"mount\",\"root_pid\":\"x\"}\n",
    ] {
        s.write_all(bad.as_bytes()).unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.contains("\"response\":\"error\""), "{bad}: {line}");
    }
    // a good request on the same connection still works
    s.write_all(b"{\"version\":1,\"request\":\"status\"}\n")
        .unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains("\"response\":\"status\""), "{line}");
    // an oversized frame: an error, then the connection closes
    let mut big = UnixStream::connect(&svc.sock).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = big.write_all(&vec![b'x'; 600 * 1024]);
    let mut reply = String::new();
    let _ = big.read_to_string(&mut reply);
    assert!(reply.contains("longer than"), "{reply}");
    // a line that is not text: an error, then the connection closes
    let mut bin = UnixStream::connect(&svc.sock).unwrap();
    bin.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    bin.write_all(b"{\"version\":1,\xff\xfe}\n").unwrap();
    let mut reply = String::new();
    let _ = bin.read_to_string(&mut reply);
    assert!(reply.contains("not UTF-8"), "{reply}");
    assert!(text(&svc.cli(&["status"])).contains("service running"));
}

#[test]
fn runtime_commands_and_stop() {
    let svc = Service::start("repo");
    let mut holder = Kill(
        svc.command(BIN)
            .args([
                "run",
                "--runtime-name",
                "held",
                "fixture/platform",
                "--",
                "sleep",
                "30",
            ])
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !text(&svc.cli(&["runtime", "ls"])).contains("held") {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let ls = text(&svc.cli(&["runtime", "ls"]));
    assert!(ls.contains("fixture/platform"), "{ls}");
    let json = text(&svc.cli(&["runtime", "ls", "--json"]));
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed[0]["name"], "held");
    assert_eq!(parsed[0]["stack"].as_array().unwrap().len(), 2);
    let info = text(&svc.cli(&["runtime", "info", "held"]));
    assert!(
        info.contains("runtime held") && info.contains("stack (top first)"),
        "{info}"
    );
    assert!(text(&svc.cli(&["status"])).contains("1 runtime(s)"));

    let rm = text(&svc.cli(&["runtime", "rm", "held"]));
    assert!(rm.contains("stopped held"), "{rm}");
    let status = holder.0.wait().unwrap();
    assert_eq!(status.signal_or_none(), Some(libc::SIGTERM));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !text(&svc.cli(&["runtime", "ls"])).contains("no runtimes") {
        assert!(Instant::now() < deadline, "the runtime did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = svc.cli(&["runtime", "info", "held"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no runtime named 'held'"));
}

#[test]
fn shutdown_with_a_file_open_leaves_no_mount() {
    let mut svc = Service::start("repo");
    let _holder = hold_open(&svc, "lib/big.bin");
    let o = svc.cli(&["shutdown", "--force"]);
    assert!(text(&o).contains("stopped"));
    assert!(!is_mounted(&svc.mnt), "mount left behind");
    let status = svc.child.wait().unwrap();
    assert!(status.success(), "service exit: {status}");
    assert!(!svc.sock.exists());
}

trait SignalOrNone {
    fn signal_or_none(&self) -> Option<i32>;
}
impl SignalOrNone for std::process::ExitStatus {
    fn signal_or_none(&self) -> Option<i32> {
        std::os::unix::process::ExitStatusExt::signal(self)
    }
}

/// A subscription to `svc`'s runtime changes (10 s read timeout).
fn subscribe(svc: &Service) -> BufReader<UnixStream> {
    let mut s = UnixStream::connect(&svc.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"{\"version\":1,\"request\":\"subscribe\"}\n")
        .unwrap();
    BufReader::new(s)
}

#[test]
fn subscribers_see_runtimes_start_and_end() {
    let svc = Service::start("repo");
    let mut reader = subscribe(&svc);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(
        line.contains("\"response\":\"subscribed\"") && line.contains("\"runtimes\":[]"),
        "{line}"
    );
    let o = svc.cli(&[
        "run",
        "--runtime-name",
        "watched",
        "fixture/top",
        "--",
        "true",
    ]);
    assert!(o.status.success());
    let mut events = Vec::new();
    while events.len() < 2 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["response"], "event", "{line}");
        events.push(v);
    }
    assert_eq!(events[0]["event"], "started");
    assert_eq!(events[0]["runtime"]["name"], "watched");
    assert_eq!(events[1]["event"], "ended");
    assert_eq!(events[1]["name"], "watched");
}

#[test]
fn sigterm_with_a_file_open_unmounts_cleanly() {
    let mut svc = Service::start("repo");
    let _holder = hold_open(&svc, "hello.txt");
    let _ = spfs_fuse_macos::sys::process::signal(svc.child.id(), libc::SIGTERM);
    let status = svc.child.wait().unwrap();
    assert!(status.success(), "service exit: {status}");
    assert!(!is_mounted(&svc.mnt), "mount left behind");
    assert!(!svc.sock.exists(), "socket left behind");
}

// ---- editable runtimes -------------------------------------------------

/// A file of the `third` source directory, from `sources.tar`.
fn third_file(rel: &str) -> Vec<u8> {
    let o = Command::new("tar")
        .arg("xOf")
        .arg(fixtures().join("sources.tar"))
        .arg(format!("./third/{rel}"))
        .output()
        .unwrap();
    assert!(o.status.success());
    o.stdout
}

fn third_recreated() -> Vec<u8> {
    third_file("share/doc/recreated.txt")
}

#[test]
fn edits_reproducing_third_commit_to_its_digest() {
    let svc = Service::start("repo");
    let content = svc.dir.path().join("recreated.txt");
    std::fs::write(&content, third_recreated()).unwrap();
    let conf = svc.dir.path().join("a.conf");
    std::fs::write(&conf, third_file("etc/conf.d/a.conf")).unwrap();
    // chmod copies the file up; the truncating write then replaces its
    // content in place; cp creates a new file in a lower directory.
    let script = format!(
        "set -e; umask 022; M={m}
         chmod 600 $M/etc/conf.d/a.conf
         cat {conf} > $M/etc/conf.d/a.conf
         cp {c} $M/share/doc/recreated.txt
         {bin} commit",
        m = svc.mnt.display(),
        c = content.display(),
        conf = conf.display(),
        bin = BIN
    );
    let out = ok(&svc.cli(&[
        "run",
        "--edit",
        "--runtime-name",
        "ed",
        "fixture/base",
        "--",
        "sh",
        "-c",
        &script,
    ]));
    let expected = expected_layer_digests("repo")
        .into_iter()
        .find(|(t, _)| t == "fixture/third")
        .unwrap()
        .1;
    assert_eq!(out.trim(), expected);
    // The committed layer reads back with the edits.
    let view = svc.walk(&format!("fixture/base+{expected}"));
    assert!(view.contains(&format!(
        "share/doc/recreated.txt\tfile\t644\t{}\t{}",
        third_recreated().len(),
        sha256_hex(&third_recreated())
    )));
    assert!(view
        .iter()
        .any(|l| l.starts_with("etc/conf.d/a.conf\tfile\t600\t")));
    assert!(view
        .iter()
        .any(|l| l.starts_with("share/doc/with space.txt\t")));
}

#[test]
fn deletions_commit_as_masks_and_reset_discards() {
    use spfs_fuse_macos::repo::object::{EntryKind, Object};
    use spfs_fuse_macos::repo::{Digest, FsRepository};
    let svc = Service::start("repo");
    let script = format!(
        "set -e; M={m}
         rm $M/hello.txt
         rm -r $M/share/doc
         test ! -e $M/hello.txt
         ls $M/share | wc -l
         {bin} runtime info ed | grep -q scratch
         {bin} commit -t test/deleted
         test ! -e $M/share/doc
         echo again > $M/hello.txt
         {bin} reset $M/hello.txt
         test ! -e $M/hello.txt && echo reset-ok",
        m = svc.mnt.display(),
        bin = BIN
    );
    let out = ok(&svc.cli(&[
        "run",
        "--edit",
        "--runtime-name",
        "ed",
        "fixture/base",
        "--",
        "sh",
        "-c",
        &script,
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "0", "share/doc gone: {out}");
    assert_eq!(lines.last(), Some(&"reset-ok"), "{out}");
    let digest = Digest::parse(lines[1].trim()).unwrap();
    let repo = FsRepository::open(&svc.repo).unwrap();
    let Some(Object::Layer(layer)) = repo.read_object(&digest).unwrap() else {
        panic!("not a layer")
    };
    let Some(Object::Manifest(m)) = repo.read_object(&layer.manifest.unwrap()).unwrap() else {
        panic!("not a manifest")
    };
    let masks: Vec<(String, u32)> = m
        .trees
        .iter()
        .flat_map(|t| t.entries.iter())
        .filter(|e| e.kind == EntryKind::Mask)
        .map(|e| (e.name.clone(), e.mode))
        .collect();
    assert!(masks.contains(&("hello.txt".into(), 0o020000)), "{masks:?}");
    assert!(masks.contains(&("doc".into(), 0o020000)), "{masks:?}");
    let o = svc.cli(&["info", "test/deleted"]);
    assert!(text(&o).contains(&digest.to_string()));
}

/// File operations and what they answer, printed one per line: run on an
/// editable runtime and on a plain copy of the same tree, the outputs must
/// be the same.
const OPERATIONS: &str = r#"
import errno, os, shutil, stat, sys
root = sys.argv[1]
os.chdir(root)
def do(name, f):
    try:
        r = f()
        print(name, "ok", "" if r is None else r)
    except OSError as e:
        print(name, errno.errorcode[e.errno])
def append(p, data):
    with open(p, "ab") as f: f.write(data)
def read(p):
    with open(p, "rb") as f: return f.read()
def write(p, data, mode="wb"):
    with open(p, mode) as f: f.write(data)
do("append lower", lambda: append("etc/conf.d/a.conf", b"more"))
do("read appended", lambda: read("etc/conf.d/a.conf"))
do("truncate lower", lambda: write("etc/conf.d/b.conf", b"new"))
do("read truncated", lambda: read("etc/conf.d/b.conf"))
do("r+ lower", lambda: (lambda f: (f.seek(1), f.write(b"X"), f.close()))(open("hello.txt", "r+b")) and None)
do("read r+", lambda: read("hello.txt"))
do("create", lambda: write("etc/new.conf", b"n"))
do("create excl existing", lambda: os.close(os.open("etc/new.conf", os.O_CREAT | os.O_EXCL | os.O_WRONLY)))
do("mkdir", lambda: os.mkdir("newdir"))
do("mkdir existing", lambda: os.mkdir("etc"))
do("create in new dir", lambda: write("newdir/f", b"f"))
do("rmdir non-empty lower", lambda: os.rmdir("etc"))
do("unlink dir", lambda: os.unlink("etc"))
do("rmdir file", lambda: os.rmdir("hello.txt"))
do("unlink missing", lambda: os.unlink("nope"))
do("stat missing", lambda: os.stat("nope/x"))
do("rename file over file", lambda: os.rename("etc/new.conf", "etc/readonly.cfg"))
do("rename lower file into new dir", lambda: os.rename("empty.txt", "newdir/empty.txt"))
do("rename file over dir", lambda: os.rename("newdir/f", "var"))
do("rename dir over file", lambda: os.rename("newdir", "hello.txt"))
do("rename new dir", lambda: os.rename("newdir", "newdir2"))
do("rename dir over non-empty dir", lambda: os.rename("newdir2", "etc"))
do("symlink", lambda: os.symlink("hello.txt", "sl"))
do("readlink", lambda: os.readlink("sl"))
do("symlink existing", lambda: os.symlink("x", "sl"))
do("chmod lower", lambda: os.chmod("lib/big.bin", 0o600))
do("utime lower", lambda: os.utime("share/doc/with space.txt", (1000000, 2000000)))
do("mtime", lambda: int(os.stat("share/doc/with space.txt").st_mtime))
do("delete lower file", lambda: os.unlink("many/d1/f001.txt"))
do("stat deleted", lambda: os.stat("many/d1/f001.txt"))
do("re-create deleted", lambda: write("many/d1/f001.txt", b"again"))
do("delete lower tree", lambda: shutil.rmtree("share"))
do("re-create tree", lambda: os.makedirs("share/doc"))
do("list re-created", lambda: sorted(os.listdir("share/doc")))
do("truncate to 2", lambda: os.truncate("lib/big.bin", 2))
do("rmdir empty lower", lambda: os.rmdir("var/empty-dir"))
do("listdir var", lambda: sorted(os.listdir("var")))
# Nodes a build makes: FIFOs, sockets (bind), devices (as root).
import socket
def bind(p):
    s = socket.socket(socket.AF_UNIX)
    s.bind(p)
    s.close()
do("mkfifo", lambda: os.mkfifo("fifo", 0o640))
do("bind socket", lambda: bind("sock"))
do("mknod char", lambda: os.mknod("cdev", 0o600 | stat.S_IFCHR, os.makedev(1, 3)))
do("mknod block", lambda: os.mknod("bdev", 0o600 | stat.S_IFBLK, os.makedev(7, 0)))
do("stat nodes", lambda: [(oct(os.lstat(n).st_mode), os.major(os.lstat(n).st_rdev), os.minor(os.lstat(n).st_rdev)) for n in ("fifo", "sock", "cdev", "bdev")])
do("mknod over existing", lambda: os.mknod("fifo", 0o600 | stat.S_IFIFO))
# Hard links: one inode, two names.
do("link lower", lambda: os.link("many/d0/f000.txt", "many/d0/link000"))
do("same inode", lambda: os.stat("many/d0/f000.txt").st_ino == os.stat("many/d0/link000").st_ino)
do("nlink", lambda: (os.stat("many/d0/f000.txt").st_nlink, os.stat("many/d0/link000").st_nlink))
do("write through one", lambda: append("many/d0/link000", b"+linked"))
do("seen through other", lambda: read("many/d0/f000.txt"))
do("link new file", lambda: (write("l1", b"one"), os.link("l1", "l2"), os.link("l2", "var/l3")) and None)
do("nlink three", lambda: [os.stat(n).st_nlink for n in ("l1", "l2", "var/l3")])
do("unlink one name", lambda: os.unlink("l1"))
do("nlink after unlink", lambda: [os.stat(n).st_nlink for n in ("l2", "var/l3")])
do("rename a link over its twin", lambda: os.rename("l2", "var/l3"))
do("both still", lambda: sorted(n for n in os.listdir(".") if n.startswith("l")) + sorted(os.listdir("var")))
do("link a dir", lambda: os.link("etc", "etc2"))
do("link over existing", lambda: os.link("hello.txt", "empty.txt"))
do("link missing", lambda: os.link("nope", "nope2"))
# A member that switches to another uid: still sees the tree; the files'
# modes decide.
os.makedirs("pub", exist_ok=True)
os.chmod("pub", 0o1777)
def as_nobody(f):
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            f()
            os._exit(0)
        except OSError as e:
            os._exit(e.errno)
    _, status = os.waitpid(pid, 0)
    code = os.WEXITSTATUS(status)
    if code:
        raise OSError(code, os.strerror(code))
do("nobody reads", lambda: as_nobody(lambda: read("hello.txt")))
do("nobody writes root's file", lambda: as_nobody(lambda: append("hello.txt", b"x")))
do("nobody creates in root's dir", lambda: as_nobody(lambda: write("etc/nobody", b"x")))
do("nobody creates in a public dir", lambda: as_nobody(lambda: write("pub/nobody", b"x")))
do("owner of nobody's file", lambda: (os.stat("pub/nobody").st_uid, os.stat("pub/nobody").st_gid))
do("nobody removes its file", lambda: as_nobody(lambda: os.unlink("pub/nobody")))
out = []
for d, dirs, files in os.walk("."):
    for n in sorted(dirs + files):
        p = os.path.join(d, n)
        st = os.lstat(p)
        kind = "l" if stat.S_ISLNK(st.st_mode) else "d" if stat.S_ISDIR(st.st_mode) else "f" if stat.S_ISREG(st.st_mode) else "n"
        size = st.st_size if kind == "f" else "-"
        data = hash(read(p)) if kind == "f" else os.readlink(p) if kind == "l" else "-"
        out.append(f"{p} {kind} {oct(stat.S_IMODE(st.st_mode))} {size} {data}")
print("\n".join(sorted(out)))
"#;

#[test]
fn file_operations_match_a_plain_directory() {
    let svc = Service::start("repo");
    let plain = svc.dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let st = Command::new("tar")
        .arg("xf")
        .arg(fixtures().join("sources.tar"))
        .args(["-C", plain.to_str().unwrap(), "./base"])
        .status()
        .unwrap();
    assert!(st.success());
    let plain_base = plain.join("base");
    let on_plain = ok(&Command::new("python3")
        .env("PYTHONHASHSEED", "0")
        .args(["-c", OPERATIONS, plain_base.to_str().unwrap()])
        .output()
        .unwrap());
    let mnt = svc.mnt.to_str().unwrap().to_owned();
    let on_runtime = ok(&svc
        .command(BIN)
        .env("PYTHONHASHSEED", "0")
        .args([
            "run",
            "--edit",
            "fixture/base",
            "--",
            "python3",
            "-c",
            OPERATIONS,
            &mnt,
        ])
        .output()
        .unwrap());
    let (a, b): (Vec<&str>, Vec<&str>) = (on_plain.lines().collect(), on_runtime.lines().collect());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "plain directory vs editable runtime");
    }
    assert_eq!(a.len(), b.len());
}

#[test]
fn read_only_runtimes_refuse_writes_with_erofs() {
    let svc = Service::start("repo");
    let m = svc.mnt.display().to_string();
    let script = format!(
        "for op in 'touch {m}/new' 'mkdir {m}/d' 'rm {m}/hello.txt' 'chmod 600 {m}/hello.txt' 'ln -s x {m}/l'; do
           sh -c \"$op\" 2>&1 | grep -q 'Read-only file system' && echo erofs || echo \"no: $op\"
         done"
    );
    let out = ok(&svc.run("fixture/base", &["sh", "-c", &script]));
    assert_eq!(out.lines().filter(|l| *l == "erofs").count(), 5, "{out}");
}

#[test]
fn scratch_size_is_current_in_listings_and_subscriptions() {
    let svc = Service::start("repo");
    let mut events = subscribe(&svc);
    let mut next_event = || -> serde_json::Value {
        let mut line = String::new();
        events.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    };
    assert_eq!(next_event()["response"], "subscribed");
    let mut sh = RuntimeShell::start(&svc, "sized", "fixture/base");
    assert_eq!(next_event()["event"], "started");
    let listed = |svc: &Service| -> (u64, u64) {
        let v: serde_json::Value =
            serde_json::from_str(&ok(&svc.cli(&["runtime", "ls", "--json"]))).unwrap();
        let rt = &v.as_array().expect("a list")[0];
        (
            rt["scratch_bytes"].as_u64().unwrap(),
            rt["scratch_files"].as_u64().unwrap(),
        )
    };
    assert_eq!(listed(&svc), (0, 0));

    // 1,000 + 24 bytes in two new files; a deletion adds no file.
    sh.eval("head -c 1000 /dev/zero > \"$M/a.bin\"; head -c 24 /dev/zero > \"$M/etc/b.bin\"; rm \"$M/hello.txt\"");
    assert_eq!(listed(&svc), (1024, 2));
    // Subscribers hear of it within about a second, without asking.
    let started = Instant::now();
    let v = next_event();
    assert_eq!(v["event"], "updated", "{v}");
    assert_eq!(v["runtime"]["scratch_bytes"], 1024, "{v}");
    assert_eq!(v["runtime"]["scratch_files"], 2, "{v}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // A commit empties the scratch and grows the stack.
    sh.eval(&format!("{BIN} commit > /dev/null"));
    let v = next_event();
    assert_eq!(v["event"], "updated", "{v}");
    assert_eq!(v["runtime"]["scratch_bytes"], 0, "{v}");
    assert_eq!(v["runtime"]["stack"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(listed(&svc), (0, 0));
}
