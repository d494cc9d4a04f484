//! A real `spfs-fuse-macos service` on a private mountpoint, socket and
//! scratch root, stopped (and its mount removed) when dropped.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{copy_tree, fixtures};

pub const BIN: &str = env!("CARGO_BIN_EXE_spfs-fuse-macos");

/// The menu-bar app, a binary of the workspace's `spfs-menubar` package:
/// found beside this package's binary (`cargo test --workspace` builds both).
pub fn menubar_bin() -> PathBuf {
    let p = Path::new(BIN).with_file_name("spfs-menubar");
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build -p spfs-menubar` (`cargo test --workspace` does)",
        p.display()
    );
    p
}

/// Prints a tree as the fixture's TSV lines (path, kind, perm, size, sha256|target).
pub const WALKER: &str = r#"
import hashlib, os, stat, sys
root = sys.argv[1]
out = []
for d, dirs, files in os.walk(root):
    for name in dirs + files:
        p = os.path.join(d, name)
        rel = os.path.relpath(p, root)
        st = os.lstat(p)
        perm = format(stat.S_IMODE(st.st_mode), "o")
        if stat.S_ISLNK(st.st_mode):
            out.append(f"{rel}\tsymlink\t{perm}\t{st.st_size}\t{os.readlink(p)}")
        elif stat.S_ISDIR(st.st_mode):
            out.append(f"{rel}\tdir\t{perm}\t-\t-")
        else:
            with open(p, "rb") as f:
                h = hashlib.sha256(f.read()).hexdigest()
            out.append(f"{rel}\tfile\t{perm}\t{st.st_size}\t{h}")
print("\n".join(sorted(out)))
"#;

/// The optional material beside the project: `$SPFS_SHARED`, or
/// `../shared` next to the clone. Only tests marked
/// `#[ignore = "needs …"]` use it; `scripts/test` runs those when it is
/// there (and CI, which always has it, fails when it is not).
pub fn shared_dir() -> PathBuf {
    std::env::var_os("SPFS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

/// Upstream's `spfs` 0.44 in the material beside the project, if it is
/// there.
pub fn upstream_spfs_if_present() -> Option<PathBuf> {
    let p = shared_dir().join("peers/spfs-0.44/spfs");
    p.exists().then_some(p)
}

/// Upstream's `spfs` 0.44, the peer of interop tests (which are ignored
/// unless it is there): a failure naming where it was looked for when
/// such a test is run without it.
pub fn upstream_spfs() -> PathBuf {
    let p = shared_dir().join("peers/spfs-0.44/spfs");
    assert!(
        p.exists(),
        "this test needs upstream spfs at {} (set SPFS_SHARED to the folder that has peers/)",
        p.display()
    );
    p
}

/// A running service on a private mountpoint.
pub struct Service {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub mnt: PathBuf,
    pub sock: PathBuf,
    pub repo: PathBuf,
    /// Extra environment of the service process (kept for restarts).
    pub env: Vec<(String, String)>,
}

impl Service {
    /// A service on a private copy of fixture `repo` (every runtime is
    /// recorded in its repository, so the fixture itself is never used).
    pub fn start(repo: &str) -> Self {
        Self::start_prepared(repo, |_| {})
    }

    /// Like `start`, calling `prepare` with the service's private
    /// directory (the scratch root is its `scratch/`; the repository copy
    /// is its `repo/`) before it starts.
    pub fn start_prepared(repo: &str, prepare: impl FnOnce(&Path)) -> Self {
        Self::start_full(repo, prepare, &[])
    }

    /// Like `start`, with `env` added to the service's environment.
    pub fn start_env(repo: &str, env: &[(&str, &str)]) -> Self {
        Self::start_full(repo, |_| {}, env)
    }

    pub fn start_full(name: &str, prepare: impl FnOnce(&Path), env: &[(&str, &str)]) -> Self {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("spfs");
        let sock = dir.path().join("run/control.sock");
        let repo = dir.path().join("repo");
        copy_tree(&fixtures().join(name), &repo);
        prepare(dir.path());
        let child = spawn_service(dir.path(), &mnt, &sock, &env);
        let mut s = Self {
            child,
            mnt,
            sock,
            repo,
            dir,
            env,
        };
        s.wait_ready();
        s
    }

    /// The scratch root the service keeps editable runtimes in.
    pub fn scratch_root(&self) -> PathBuf {
        self.dir.path().join("scratch")
    }

    /// The scratch directories left under the scratch root once none is
    /// left or 10 s have passed: a runtime leaves `runtime ls` before its
    /// edits are removed, and a deep tree takes a moment to remove.
    #[allow(dead_code)] // not every test binary asks
    pub fn scratch_dirs_left(&self) -> Vec<PathBuf> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left: Vec<PathBuf> = std::fs::read_dir(self.scratch_root())
                .map(|d| {
                    d.flatten()
                        .map(|e| e.path())
                        .filter(|p| p.is_dir())
                        .collect()
                })
                .unwrap_or_default();
            if left.is_empty() || std::time::Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Kills the service with SIGKILL: its mount is left behind, dead.
    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the service again on the same mountpoint, socket and
    /// scratch root (after `sigkill` or a stop).
    pub fn restart(&mut self) {
        self.sigkill();
        self.child = spawn_service(self.dir.path(), &self.mnt, &self.sock, &self.env);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.cli(&["status"]).status.success() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("service exited: {status}; its log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        panic!("service did not become ready");
    }

    /// A command for this service's clients, with a clean environment.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", self.dir.path())
            .env("SPFS_STORAGE_ROOT", &self.repo)
            .env("SPFS_FUSE_MOUNTPOINT", &self.mnt)
            .env("SPFS_FUSE_SOCKET", &self.sock);
        c
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        self.command(BIN).args(args).output().unwrap()
    }

    /// `run SPEC -- CMD...`, its output.
    pub fn run(&self, spec: &str, cmd: &[&str]) -> Output {
        let mut args = vec!["run", spec, "--"];
        args.extend_from_slice(cmd);
        self.cli(&args)
    }

    pub fn walk(&self, spec: &str) -> Vec<String> {
        let mnt = self.mnt.to_str().unwrap();
        let o = self.run(spec, &["python3", "-c", WALKER, mnt]);
        assert!(
            o.status.success(),
            "{spec}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn stop(&mut self) {
        // A service a client started on this socket (after an idle exit,
        // say) is not our child: ask it to stop too.
        let _ = self
            .command(BIN)
            .args(["shutdown", "--force"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = spfs_fuse_macos::sys::process::signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if is_mounted(&self.mnt) {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
    }
}

fn spawn_service(dir: &Path, mnt: &Path, sock: &Path, env: &[(String, String)]) -> Child {
    // Two request threads, unless a test asks for another number
    // (`SPFS_FUSE_THREADS=1`: one, as macFUSE serves).
    let threads = env
        .iter()
        .find(|(k, _)| k == "SPFS_FUSE_THREADS")
        .map_or("2", |(_, v)| v.as_str());
    Command::new(BIN)
        .args(["service", "--threads", threads])
        // The user's files (settings) are the test's own.
        .env("HOME", dir)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("SPFS_FUSE_IDLE_TIMEOUT")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("SPFS_FUSE_MOUNTPOINT", mnt)
        .env("SPFS_FUSE_SOCKET", sock)
        .env("SPFS_FUSE_SCRATCH_ROOT", dir.join("scratch"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("service.log"))
                .unwrap(),
        )
        .spawn()
        .unwrap()
}

impl Service {
    /// What the service logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn is_mounted(p: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(p.to_str().unwrap()))
}

pub fn text(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// A process killed when dropped.
pub struct Kill(pub Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process in a runtime on `fixture/base` holding `rel` open (killed on
/// drop); returns once the file is open.
pub fn hold_open(svc: &Service, rel: &str) -> Kill {
    let script = format!("exec 3< {}/{rel}; echo open; sleep 30", svc.mnt.display());
    let (holder, line) = spawn_in_base(svc, &script);
    assert_eq!(line.trim(), "open");
    holder
}

/// `sh -c SCRIPT` in a runtime on `fixture/base` (killed on drop, stdin
/// piped); returns once it printed its first line, and that line.
pub fn spawn_in_base(svc: &Service, script: &str) -> (Kill, String) {
    let mut child = Kill(
        svc.command(BIN)
            .args(["run", "fixture/base", "--", "sh", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line)
}

pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {}: {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    text(o)
}

/// A shell in an editable runtime that runs the lines it is sent.
pub struct RuntimeShell {
    _child: Kill,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl RuntimeShell {
    pub fn start(svc: &Service, name: &str, spec: &str) -> RuntimeShell {
        Self::start_with(svc, name, spec, &["--edit"])
    }

    /// A shell in a read-only runtime.
    pub fn start_read_only(svc: &Service, name: &str, spec: &str) -> RuntimeShell {
        Self::start_with(svc, name, spec, &[])
    }

    /// A shell in an editable, durable runtime (`run -k`).
    pub fn start_durable(svc: &Service, name: &str, spec: &str) -> RuntimeShell {
        Self::start_with(svc, name, spec, &["--edit", "-k"])
    }

    fn start_with(svc: &Service, name: &str, spec: &str, flags: &[&str]) -> RuntimeShell {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.extend(["--runtime-name", name, spec, "--", "sh", "-c"]);
        let mut child = svc
            .command(BIN)
            .args(args)
            .arg("while read -r line; do eval \"$(echo \"$line\" | base64 -d)\"; echo '--end--'; done")
            .env("M", &svc.mnt)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut sh = RuntimeShell {
            _child: Kill(child),
            stdin,
            stdout,
        };
        assert_eq!(sh.eval("echo ready"), ["ready"]);
        sh
    }

    /// Runs `script` (any number of lines) in the runtime; its output lines.
    pub fn eval(&mut self, script: &str) -> Vec<String> {
        let line = data_encoding::BASE64.encode(script.as_bytes());
        writeln!(self.stdin, "{line}").unwrap();
        let mut out = Vec::new();
        loop {
            let mut l = String::new();
            assert!(self.stdout.read_line(&mut l).unwrap() > 0, "shell ended");
            let l = l.trim_end().to_owned();
            if l == "--end--" {
                return out;
            }
            out.push(l);
        }
    }
}

/// A private mountpoint, socket and scratch root with no service yet:
/// clients start one. The service (and its mount) go when dropped.
pub struct NoService {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
}

impl NoService {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        copy_tree(&fixtures().join("repo"), &repo);
        NoService { dir, repo }
    }

    pub fn mnt(&self) -> PathBuf {
        self.dir.path().join("spfs")
    }

    /// `spfs-fuse-macos` with this place's environment.
    pub fn command(&self) -> Command {
        self.command_of(BIN)
    }

    /// `program` with this place's environment.
    pub fn command_of(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        let d = self.dir.path();
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", d)
            .env("SPFS_STORAGE_ROOT", &self.repo)
            .env("SPFS_FUSE_MOUNTPOINT", self.mnt())
            .env("SPFS_FUSE_SOCKET", d.join("run/control.sock"))
            .env("SPFS_FUSE_SCRATCH_ROOT", d.join("scratch"))
            .env("SPFS_FUSE_IDLE_TIMEOUT", "10m");
        c
    }

    pub fn shutdown(&self) {
        let _ = self
            .command()
            .args(["shutdown", "--force"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for NoService {
    fn drop(&mut self) {
        self.shutdown();
        if is_mounted(&self.mnt()) {
            let _ = Command::new("umount").arg("-l").arg(self.mnt()).status();
        }
    }
}
