//! Upstream's `spfs server` (from the peers beside the project) over a
//! private copy of the fixture repository, for the tests of remotes.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{copy_tree, fixtures};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Upstream's `spfs server` over a private copy of a fixture repository;
/// killed when dropped.
pub struct Server {
    /// The server's process, while it runs.
    pub child: Option<Child>,
    spfs: PathBuf,
    /// Holds the repository the server serves.
    pub dir: tempfile::TempDir,
    /// `grpc://127.0.0.1:PORT`.
    pub address: String,
}

impl Server {
    /// A server of a copy of the fixture repository, started.
    pub fn start(spfs: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&fixtures().join("repo"), &dir.path().join("repo"));
        let mut s = Self {
            child: None,
            spfs: spfs.to_owned(),
            dir,
            address: String::new(),
        };
        s.spawn();
        s
    }

    /// The repository it serves.
    pub fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// Starts it (again), on new ports.
    pub fn spawn(&mut self) {
        let (grpc, http) = (free_port(), free_port());
        let child = Command::new(&self.spfs)
            .args([
                "server",
                &format!("127.0.0.1:{grpc}"),
                &format!("127.0.0.1:{http}"),
                "--payloads-root",
                &format!("http://127.0.0.1:{http}"),
            ])
            .env_clear()
            .env("SPFS_STORAGE_ROOT", self.repo())
            .env("HOME", self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.address = format!("grpc://127.0.0.1:{grpc}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", grpc)).is_err()
            || TcpStream::connect(("127.0.0.1", http)).is_err()
        {
            assert!(Instant::now() < deadline, "spfs server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Upstream's `spfs ARGS` on the server's repository.
    pub fn upstream(&self, args: &[&str]) -> Output {
        Command::new(&self.spfs)
            .args(args)
            .env_clear()
            .env("SPFS_STORAGE_ROOT", self.repo())
            .env("HOME", self.dir.path())
            .output()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
