//! The service's lifecycle, end to end: the idle timeout, on-demand start
//! after an idle exit, settings changed live, and socket activation.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::service::*;

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn exited(svc: &mut Service) -> Option<std::process::ExitStatus> {
    svc.child.try_wait().unwrap()
}

#[test]
fn an_idle_service_exits_by_itself_and_the_next_run_starts_a_new_one() {
    let mut svc = Service::start_env("repo", &[("SPFS_FUSE_IDLE_TIMEOUT", "2s")]);
    let started = Instant::now();
    wait_until("the idle exit", Duration::from_secs(10), || {
        exited(&mut svc).is_some()
    });
    let status = exited(&mut svc).unwrap();
    assert!(status.success(), "exit: {status}");
    assert!(started.elapsed() >= Duration::from_millis(1900));
    assert!(!is_mounted(&svc.mnt), "mount left behind");
    assert!(!svc.sock.exists(), "socket left behind");
    assert!(
        svc.log().contains("idle timeout; shutting down"),
        "{}",
        svc.log()
    );
    // The next run starts a service (default timeout) and works.
    let m = svc.mnt.display().to_string();
    let out = ok(&svc.run("fixture/base", &["cat", &format!("{m}/hello.txt")]));
    assert_eq!(out.trim(), "hello from base");
    assert!(text(&svc.cli(&["status"])).contains("service running"));
}

/// `start` (the menu bar's Start service) starts a stopped service in the
/// background and leaves a running one alone.
#[test]
fn start_starts_a_stopped_service_once() {
    let mut svc = Service::start("repo");
    ok(&svc.cli(&["shutdown"]));
    wait_until("the shutdown", Duration::from_secs(10), || {
        exited(&mut svc).is_some()
    });
    assert!(!is_mounted(&svc.mnt));
    let first = text(&svc.cli(&["start"]));
    assert!(first.starts_with("the service is running: pid "), "{first}");
    assert!(is_mounted(&svc.mnt), "start did not mount");
    let again = text(&svc.cli(&["start"]));
    assert_eq!(first, again, "a second start started another service");
}

#[test]
fn a_runtime_keeps_it_alive_and_status_shows_the_countdown() {
    let mut svc = Service::start_env("repo", &[("SPFS_FUSE_IDLE_TIMEOUT", "2s")]);
    let mut runtime = Kill(
        svc.command(BIN)
            .args(["run", "fixture/base", "--", "sleep", "4"])
            .spawn()
            .unwrap(),
    );
    wait_until("the runtime", Duration::from_secs(5), || {
        text(&svc.cli(&["runtime", "ls"])).contains("fixture/base")
    });
    let busy = text(&svc.cli(&["status"]));
    assert!(busy.contains("running, 1 runtime"), "{busy}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(exited(&mut svc).is_none(), "stopped with a runtime alive");
    assert!(runtime.0.wait().unwrap().success());
    wait_until("the runtime's end", Duration::from_secs(5), || {
        text(&svc.cli(&["runtime", "ls"])).contains("no runtimes")
    });
    let idle = text(&svc.cli(&["status"]));
    assert!(idle.contains("idle for 0 s, exits in 1 s"), "{idle}");
    let json: serde_json::Value =
        serde_json::from_str(&text(&svc.cli(&["status", "--json"]))).unwrap();
    assert_eq!(json["lifecycle"]["idle_timeout_secs"], 2, "{json}");
    assert!(json["lifecycle"]["exits_in_secs"].as_u64().unwrap() <= 2);
    let ended = Instant::now();
    wait_until("the idle exit", Duration::from_secs(10), || {
        exited(&mut svc).is_some()
    });
    assert!(ended.elapsed() >= Duration::from_millis(1500));
    assert!(!is_mounted(&svc.mnt));
}

#[test]
fn an_always_on_service_never_stops_when_idle() {
    let mut svc = Service::start_env(
        "repo",
        &[
            ("SPFS_FUSE_IDLE_TIMEOUT", "1s"),
            ("SPFS_FUSE_ALWAYS_ON", "true"),
        ],
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(exited(&mut svc).is_none(), "an always-on service stopped");
    let s = text(&svc.cli(&["status"]));
    assert!(s.contains("idle timeout: never (always on)"), "{s}");
}

#[test]
fn a_timeout_of_never_says_so() {
    let svc = Service::start_env("repo", &[("SPFS_FUSE_IDLE_TIMEOUT", "0")]);
    let s = text(&svc.cli(&["status"]));
    assert!(s.contains("idle timeout: never"), "{s}");
}

/// The next event of `kind` on a subscription.
fn next_event(events: &mut BufReader<UnixStream>, kind: &str) -> serde_json::Value {
    loop {
        let mut line = String::new();
        assert!(
            events.read_line(&mut line).unwrap() > 0,
            "subscription ended"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["event"] == kind {
            return v;
        }
    }
}

#[test]
fn settings_changed_by_request_or_by_file_reach_the_service_and_subscribers() {
    let svc = Service::start("repo");
    let mut s = UnixStream::connect(&svc.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"{\"version\":1,\"request\":\"subscribe\",\"settings\":true,\"lifecycle\":true}\n",
    )
    .unwrap();
    let mut events = BufReader::new(s);
    let mut first = String::new();
    events.read_line(&mut first).unwrap();
    assert!(first.contains("subscribed"), "{first}");

    // Through the service.
    let out = ok(&svc.cli(&["config", "set", "idle_timeout_minutes", "7"]));
    assert_eq!(out.trim(), "idle_timeout_minutes = 7");
    let v = next_event(&mut events, "settings");
    assert_eq!(v["settings"]["settings"]["idle_timeout_minutes"], 7, "{v}");
    assert_eq!(v["settings"]["idle_timeout_secs"], 420, "{v}");
    let v = next_event(&mut events, "lifecycle");
    assert_eq!(v["lifecycle"]["idle_timeout_secs"], 420, "{v}");
    let path = text(&svc.cli(&["config", "path"])).trim().to_owned();
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(on_disk["idle_timeout_minutes"], 7);
    assert!(Path::new(&path).starts_with(svc.dir.path()));

    // By editing the file.
    std::fs::write(
        &path,
        "{\"idle_timeout_minutes\": 0, \"error_reporting\": true}\n",
    )
    .unwrap();
    let v = next_event(&mut events, "settings");
    assert_eq!(v["settings"]["settings"]["error_reporting"], true, "{v}");
    assert_eq!(v["settings"]["idle_timeout_secs"], serde_json::Value::Null);
    assert!(text(&svc.cli(&["status"])).contains("idle timeout: never"));
    assert_eq!(
        text(&svc.cli(&["config", "get", "error_reporting"])).trim(),
        "true"
    );
}

#[test]
fn bad_settings_are_one_line_errors_and_nothing_is_written() {
    let svc = Service::start("repo");
    let path = text(&svc.cli(&["config", "path"])).trim().to_owned();
    ok(&svc.cli(&["config", "set", "idle_timeout_minutes", "12"]));
    let before = std::fs::read(&path).unwrap();
    for (args, needle) in [
        (
            &["config", "set", "idle_timeout_minutes", "abc"][..],
            "invalid value 'abc' for idle_timeout_minutes",
        ),
        (
            &["config", "set", "colour", "red"],
            "unknown setting 'colour'",
        ),
        (
            &["config", "set", "error_reporting", "maybe"],
            "true or false",
        ),
        (&["config", "get", "colour"], "unknown setting 'colour'"),
    ] {
        let o = svc.cli(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), before, "the file changed");
    std::fs::write(&path, "{ not json").unwrap();
    let o = svc.cli(&["config", "set", "idle_timeout_minutes", "3"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&path) && err.contains("not valid"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"{ not json");
    // the service keeps the settings it had
    assert!(text(&svc.cli(&["status"])).contains("service running"));
}

#[test]
fn socket_activation_starts_the_service_on_the_first_request() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("control.sock");
    let mnt = dir.path().join("spfs");
    // Runtimes are recorded in their repository: a copy of the fixture.
    let repo = dir.path().join("repo");
    common::copy_tree(&common::fixtures().join("repo"), &repo);
    let mut activator = Kill(
        Command::new("systemd-socket-activate")
            .arg("-l")
            .arg(&sock)
            .arg(format!("--setenv=HOME={}", dir.path().display()))
            .arg(format!(
                "--setenv=SPFS_FUSE_SCRATCH_ROOT={}",
                dir.path().join("scratch").display()
            ))
            .arg(BIN)
            .args(["service", "--threads", "2", "--mountpoint"])
            .arg(&mnt)
            .arg("--socket")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("service.log")).unwrap())
            .spawn()
            .expect("systemd-socket-activate (Debian package systemd; scripts/setup installs it)"),
    );
    wait_until("the activation socket", Duration::from_secs(5), || {
        sock.exists()
    });
    assert!(!is_mounted(&mnt), "started before anyone asked");
    let cli = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("HOME", dir.path())
            .env("SPFS_FUSE_SOCKET", &sock)
            .env("SPFS_FUSE_MOUNTPOINT", &mnt)
            .env("SPFS_STORAGE_ROOT", &repo)
            .output()
            .unwrap()
    };
    let status: serde_json::Value =
        serde_json::from_str(&text(&cli(&["status", "--json"]))).unwrap();
    assert_eq!(status["lifecycle"]["socket_activated"], true, "{status}");
    assert!(is_mounted(&mnt));
    let out = text(&cli(&[
        "run",
        "fixture/base",
        "--",
        "cat",
        &format!("{}/hello.txt", mnt.display()),
    ]));
    assert_eq!(out.trim(), "hello from base");
    assert!(text(&cli(&["shutdown"])).contains("stopped"));
    assert!(!is_mounted(&mnt));
    // The socket is the activator's: it stays.
    assert!(sock.exists());
    let _ = activator.0.wait();
}
