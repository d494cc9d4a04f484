//! Error reporting, end to end, against a local HTTP endpoint that records
//! the envelopes the service sends (a stand-in for Sentry).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::service::*;

/// Records the body of every POST; answers 200.
struct Recorder {
    port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
}

fn read_request(stream: TcpStream) -> std::io::Result<String> {
    let mut r = BufReader::new(stream);
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if l.starts_with("transfer-encoding:") && l.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(length, 0);
        r.read_exact(&mut body)?;
    }
    let mut stream = r.into_inner();
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let keep = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Ok(body) = read_request(stream) {
                    keep.lock().unwrap().push(body);
                }
            }
        });
        Recorder { port, bodies }
    }

    fn dsn(&self) -> String {
        format!("http://publickey@127.0.0.1:{}/42", self.port)
    }

    fn all(&self) -> String {
        self.bodies.lock().unwrap().join("\n")
    }

    /// Waits until an envelope containing `needle` arrived.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let all = self.all();
            if all.contains(needle) {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "no report containing {needle:?}; got: {all}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A commit that fails (a FIFO cannot be committed): an error event whose
/// message names a path in the scratch, under the home directory.
fn failed_commit(svc: &Service, name: &str) {
    let mut sh = RuntimeShell::start(svc, name, "fixture/base");
    sh.eval("mkfifo $M/pipe");
    let o = svc.cli(&["commit", "--runtime", name]);
    assert_eq!(o.status.code(), Some(1), "the commit should fail");
}

fn start(dsn: Option<&str>, reporting: bool, scratch: &str) -> Service {
    let mut env = vec![
        ("SPFS_FUSE_FAULT_PANIC_ON_LOOKUP", "boom"),
        ("SPFS_FUSE_SCRATCH_ROOT", scratch),
    ];
    if let Some(d) = dsn {
        env.push(("SPFS_SENTRY_DSN", d));
    }
    Service::start_full(
        "repo",
        |dir| {
            if reporting {
                let p = dir.join(".config/spfs-fuse-macos/settings.json");
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, "{\"error_reporting\": true}").unwrap();
            }
        },
        &env,
    )
}

fn needs_fault_injection() {
    if !cfg!(feature = "fault-injection") {
        panic!("this test needs --features fault-injection (scripts/test builds with it)");
    }
}

/// A scratch root in a directory named like a user's home.
fn user_scratch() -> (tempfile::TempDir, String) {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("home/jdoe-spfs/scratch");
    (t, p.display().to_string())
}

#[test]
fn an_error_and_a_panic_reach_the_endpoint_scrubbed() {
    needs_fault_injection();
    let rec = Recorder::start();
    let (_t, scratch) = user_scratch();
    let svc = start(Some(&rec.dsn()), true, &scratch);
    let s = text(&svc.cli(&["status"]));
    assert!(
        s.contains(&format!("error reporting: on, to 127.0.0.1:{}", rec.port)),
        "{s}"
    );

    failed_commit(&svc, "reported");
    let all = rec.wait_for("commit failed");
    assert!(all.contains("\"release\":\"0.1.0\""), "{all}");
    assert!(all.contains("\"backend\":\"linux\""), "{all}");
    // the panic of a request, caught and answered EIO, is reported too
    let m = svc.mnt.display().to_string();
    let _ = svc.run("fixture/base", &["stat", &format!("{m}/boom")]);
    let all = rec.wait_for("fault injection");
    let home = svc.dir.path().display().to_string();
    assert!(!all.contains(&home), "the home directory was sent: {all}");
    assert!(!all.contains("jdoe-spfs"), "a user name was sent: {all}");
    assert!(!all.contains("/root/"), "root's home was sent: {all}");
    assert!(all.contains("~/"), "paths should start with ~: {all}");
    assert!(!all.contains("SPFS_SENTRY_DSN"), "the environment was sent");
}

#[test]
fn nothing_is_sent_when_off_or_without_an_address_and_turning_it_off_is_immediate() {
    let rec = Recorder::start();
    let (_t, scratch) = user_scratch();
    // An address, but error_reporting off.
    let svc = start(Some(&rec.dsn()), false, &scratch);
    assert!(text(&svc.cli(&["status"])).contains("error reporting: off: error_reporting is off"));
    failed_commit(&svc, "quiet");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(rec.all(), "", "sent while off");
    // On, live: the next error goes out.
    ok(&svc.cli(&["config", "set", "error_reporting", "on"]));
    failed_commit(&svc, "loud");
    rec.wait_for("commit failed");
    // Off again, live: nothing more.
    ok(&svc.cli(&["config", "set", "error_reporting", "off"]));
    let before = rec.bodies.lock().unwrap().len();
    failed_commit(&svc, "quiet-again");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        rec.bodies.lock().unwrap().len(),
        before,
        "sent after turning it off"
    );
    drop(svc);

    // On, but no address anywhere.
    let (_t2, scratch2) = user_scratch();
    let svc = start(None, true, &scratch2);
    let s = text(&svc.cli(&["status"]));
    assert!(
        s.contains("error reporting: off: no reporting address"),
        "{s}"
    );
    failed_commit(&svc, "nowhere");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(rec.bodies.lock().unwrap().len(), before);
}

#[test]
fn an_address_that_never_answers_slows_nothing_down() {
    // Accepts connections and never reads or answers them.
    let blackhole = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blackhole.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    {
        let held = held.clone();
        std::thread::spawn(move || {
            for s in blackhole.incoming().flatten() {
                held.lock().unwrap().push(s);
            }
        });
    }
    needs_fault_injection();
    let (_t, scratch) = user_scratch();
    let dsn = format!("http://k@127.0.0.1:{port}/1");
    let svc = start(Some(&dsn), true, &scratch);
    let m = svc.mnt.display().to_string();
    // Many reports queued (each panic is one), then a burst of requests.
    let script = format!(
        "for i in $(seq 40); do stat {m}/boom 2>/dev/null; done
         start=$(date +%s%N)
         for i in $(seq 300); do stat {m}/hello.txt > /dev/null; done
         echo $(( ($(date +%s%N) - start) / 1000000 ))"
    );
    let started = Instant::now();
    let out = svc.run("fixture/base", &["sh", "-c", &script]);
    let ms: u64 = text(&out).trim().parse().unwrap();
    assert!(ms < 5_000, "300 stats took {ms} ms with reports stuck");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(text(&svc.cli(&["status"])).contains("service running"));
    assert!(
        !held.lock().unwrap().is_empty(),
        "the reports were never attempted"
    );
}

/// The menu bar reports its own panics as the service does: scrubbed,
/// with its release, and only when the user turned reporting on.
#[test]
fn the_menu_bar_reports_its_own_panics_scrubbed_and_only_when_on() {
    let rec = Recorder::start();
    let home = tempfile::tempdir().unwrap();
    let home = home.path().join("home/jdoe-spfs");
    let settings = home.join(".config/spfs-fuse-macos/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    let panic_with = |message: &str| {
        std::process::Command::new(menubar_bin())
            .arg("--print-menu")
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .env("SPFS_FUSE_SOCKET", home.join("none.sock"))
            .env("SPFS_SENTRY_DSN", rec.dsn())
            .env("SPFS_MENUBAR_FAULT_PANIC", message)
            .output()
            .unwrap()
    };
    std::fs::write(&settings, "{\"error_reporting\": false}").unwrap();
    let off = panic_with("while off");
    assert_eq!(
        off.status.code(),
        Some(101),
        "spfs-menubar did not panic: build it with --features fault-injection (scripts/test does)"
    );
    std::fs::write(&settings, "{\"error_reporting\": true}").unwrap();
    let message = format!("cannot read {}/Library/x", home.display());
    assert_eq!(panic_with(&message).status.code(), Some(101));
    // Sent before the app ended: it is there already.
    let all = rec.all();
    assert!(
        all.contains("fault injection: cannot read ~/Library/x"),
        "{all}"
    );
    assert!(!all.contains("while off"), "sent while off: {all}");
    assert!(all.contains("\"release\":\"0.1.0\""), "{all}");
    assert!(all.contains("\"component\":\"menubar\""), "{all}");
    assert!(!all.contains("jdoe-spfs"), "a user name was sent: {all}");
    assert!(!all.contains(&home.display().to_string()), "{all}");
}
