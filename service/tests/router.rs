//! The router against real processes: threads, children, double forks,
//! exits and a recycled pid.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use spfs_fuse_macos::router::{Router, TOKEN_ENV};

/// A child process killed when dropped, so failed tests leave nothing behind.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
        }
    }
    fn sh(script: &str) -> Self {
        Self::spawn(Command::new("sh").arg("-c").arg(script))
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
    fn line(&mut self) -> String {
        let mut s = String::new();
        self.stdout.read_line(&mut s).unwrap();
        s.trim().to_owned()
    }
    fn send(&mut self, s: &str) {
        let w = self.stdin.as_mut().unwrap();
        w.write_all(s.as_bytes()).unwrap();
        w.flush().unwrap();
    }
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Kills a process we did not spawn (a reparented daemon).
struct Pid(u32);
impl Drop for Pid {
    fn drop(&mut self) {
        let _ = spfs_fuse_macos::sys::process::signal(self.0, libc::SIGKILL);
    }
}

fn wait_gone(pid: u32) {
    for _ in 0..200 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("process {pid} did not exit");
}

#[test]
fn roots_children_and_outsiders() {
    let router = Router::new();
    let mut root = Proc::sh("sleep 30 & echo $!; wait");
    let grandchild = root.line().parse::<u32>().unwrap();
    router.register_root(root.pid(), 7, "tok-a").unwrap();
    assert_eq!(router.route(root.pid()), Some(7));
    assert_eq!(router.route(grandchild), Some(7));
    assert_eq!(
        router.route(std::process::id()),
        None,
        "the test itself is outside"
    );
    assert_eq!(router.route(1), None);
    assert_eq!(router.route(u32::MAX - 5), None, "no such process");
    assert_eq!(
        router
            .register_root(root.pid(), 8, "tok-b")
            .unwrap_err()
            .to_string(),
        format!("process {} is already the root of a runtime", root.pid())
    );
    assert!(router.prune().contains(&7));
    router.unregister(7);
    assert_eq!(router.route(grandchild), None);
}

#[test]
fn threads_route_to_their_process() {
    let router = Router::new();
    let mut py = Proc::spawn(Command::new("python3").args([
        "-c",
        "import threading, sys\n\
         def run():\n    print(threading.get_native_id(), flush=True); sys.stdin.readline()\n\
         t = threading.Thread(target=run); t.start(); t.join()",
    ]));
    let tid: u32 = py.line().parse().unwrap();
    assert_ne!(tid, py.pid());
    router.register_root(py.pid(), 3, "tok-t").unwrap();
    assert_eq!(router.route(tid), Some(3));
    assert_eq!(router.route(tid), Some(3), "cached");
    py.send("\n");
}

#[test]
fn a_member_keeps_its_runtime_after_its_parent_exits() {
    let router = Router::new();
    // outer (root) -> inner -> sleep; inner waits for a line before exiting
    let mut root = Proc::sh("read a; sh -c 'sleep 30 & echo $!; read b'; read c");
    router.register_root(root.pid(), 1, "tok-m").unwrap();
    root.send("go\n");
    let daemon: u32 = root.line().parse().unwrap();
    let _guard = Pid(daemon);
    assert_eq!(router.route(daemon), Some(1), "seen while its parent lives");
    root.send("x\n"); // the inner shell exits; the sleep is reparented
    for _ in 0..100 {
        let ppid = std::fs::read_to_string(format!("/proc/{daemon}/stat")).unwrap();
        if !ppid.contains(&format!(" {} ", root.pid())) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        router.route(daemon),
        Some(1),
        "kept after its parent exited"
    );
}

#[test]
fn a_daemon_first_seen_after_its_parent_died_is_placed_by_token() {
    let router = Router::new();
    let mut root = Proc::spawn(
        Command::new("sh")
            .arg("-c")
            .arg("read a; sh -c 'sleep 30 & echo $!'; read c")
            .env(TOKEN_ENV, "tok-d"),
    );
    router.register_root(root.pid(), 2, "tok-d").unwrap();
    root.send("go\n");
    let daemon: u32 = root.line().parse().unwrap();
    let _guard = Pid(daemon);
    // its parent (the inner shell) has exited before anything routed it
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(router.route(daemon), Some(2));

    // a token that names no runtime places nobody
    let mut stranger = Proc::spawn(
        Command::new("sleep")
            .arg("30")
            .env(TOKEN_ENV, "tok-unknown"),
    );
    assert_eq!(router.route(stranger.pid()), None);
    stranger.kill();
}

#[test]
fn runtimes_end_with_their_last_known_process() {
    let router = Router::new();
    let mut root = Proc::sh("sleep 30 & echo $!; read a");
    let member: u32 = root.line().parse().unwrap();
    let _guard = Pid(member);
    router.register_root(root.pid(), 5, "tok-e").unwrap();
    assert_eq!(router.route(member), Some(5), "known member");
    assert!(router.prune().contains(&5));
    root.kill();
    wait_gone(root.pid());
    assert!(
        router.prune().contains(&5),
        "a known member keeps the runtime"
    );
    let _ = spfs_fuse_macos::sys::process::signal(member, libc::SIGKILL);
    // the member is reparented and reaped by init
    for _ in 0..200 {
        if !router.prune().contains(&5) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("runtime 5 outlived its last process");
}

#[test]
fn a_recycled_pid_does_not_inherit_a_dead_runtime() {
    let router = Router::new();
    let mut old = Proc::spawn(Command::new("sleep").arg("30"));
    let pid = old.pid();
    router.register_root(pid, 9, "tok-r").unwrap();
    assert_eq!(router.route(pid), Some(9));
    old.kill();
    wait_gone(pid);

    // Ask the kernel for the same pid again (root only), retrying if some
    // other process takes it first.
    let mut reused = None;
    for _ in 0..200 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string())
            .expect("writing ns_last_pid needs root");
        let p = Proc::spawn(Command::new("sleep").arg("30"));
        if p.pid() == pid {
            reused = Some(p);
            break;
        }
    }
    let mut new = reused.expect("could not get the pid reused");
    assert_eq!(router.route(pid), None, "new process with a reused pid");
    new.kill();
}
