//! The peers: what serves the data set, how a view of it is made (a fresh
//! one for writing workloads), and how the worker runs inside it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A view the worker runs in; unmounted or removed when dropped.
pub struct View {
    /// Where the worker finds the data set.
    pub root: PathBuf,
    /// The command the worker is run under (our `run`), if any.
    pub prefix: Vec<OsString>,
    cleanup: Vec<Cleanup>,
}

enum Cleanup {
    Unmount(PathBuf),
    Remove(PathBuf),
}

impl Drop for View {
    fn drop(&mut self) {
        for c in &self.cleanup {
            match c {
                Cleanup::Unmount(p) => unmount(p),
                Cleanup::Remove(p) => {
                    let _ = std::fs::remove_dir_all(p);
                }
            }
        }
    }
}

fn unmount(p: &Path) {
    let ok = Command::new("umount")
        .arg(p)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let _ = Command::new("umount").arg("-l").arg(p).status();
    }
}

/// The layer directories and the merged directory, and a place for views.
pub struct Layout {
    pub base: PathBuf,
    pub top: PathBuf,
    pub merged: PathBuf,
    pub scratch: PathBuf,
}

/// One way of serving the data set.
pub enum Peer {
    /// This project's service: `run` (read-only) or `run --edit`.
    Ours {
        bin: PathBuf,
        env: Vec<(String, OsString)>,
        spec: String,
    },
    /// Upstream's `spfs-fuse` (read-only only), mounted once.
    UpstreamFuse { mount: PathBuf },
    /// fuse-overlayfs over the layer directories.
    FuseOverlayfs,
    /// The kernel's overlayfs over the layer directories.
    KernelOverlay,
    /// A plain directory holding the merged tree.
    Plain,
}

impl Peer {
    /// The name in tables.
    pub fn name(&self) -> &'static str {
        match self {
            Peer::Ours { .. } => "ours",
            Peer::UpstreamFuse { .. } => "spfs-fuse",
            Peer::FuseOverlayfs => "fuse-overlayfs",
            Peer::KernelOverlay => "overlayfs",
            Peer::Plain => "plain",
        }
    }

    /// Whether it can serve writing workloads.
    pub fn writable(&self) -> bool {
        !matches!(self, Peer::UpstreamFuse { .. })
    }

    /// A view for one worker run: shared read-only ones are mounted per
    /// call too (cheap), so every round starts from the same state.
    pub fn view(&self, l: &Layout, writable: bool, n: usize) -> std::io::Result<View> {
        let dir = l.scratch.join(format!("{}-{n}", self.name()));
        std::fs::create_dir_all(&dir)?;
        let mut cleanup = vec![Cleanup::Remove(dir.clone())];
        let lower = format!("{}:{}", l.top.display(), l.base.display());
        let (root, prefix) = match self {
            Peer::Ours { bin, spec, .. } => {
                let mut p: Vec<OsString> = vec![bin.clone().into(), "run".into()];
                if writable {
                    p.push("--edit".into());
                }
                p.extend([spec.into(), "--".into()]);
                (PathBuf::new(), p)
            }
            Peer::UpstreamFuse { mount } => (mount.clone(), Vec::new()),
            Peer::FuseOverlayfs | Peer::KernelOverlay => {
                let mnt = dir.join("mnt");
                std::fs::create_dir_all(&mnt)?;
                let mut opts = format!("lowerdir={lower}");
                if writable {
                    for d in ["upper", "work"] {
                        std::fs::create_dir_all(dir.join(d))?;
                    }
                    opts = format!(
                        "{opts},upperdir={},workdir={}",
                        dir.join("upper").display(),
                        dir.join("work").display()
                    );
                }
                let status = if matches!(self, Peer::FuseOverlayfs) {
                    Command::new("fuse-overlayfs")
                        .arg("-o")
                        .arg(&opts)
                        .arg(&mnt)
                        .status()?
                } else {
                    Command::new("mount")
                        .args(["-t", "overlay", "overlay", "-o", &opts])
                        .arg(&mnt)
                        .status()?
                };
                if !status.success() {
                    return Err(std::io::Error::other(format!(
                        "{} mount failed: {status}",
                        self.name()
                    )));
                }
                // Unmounted before its directory goes.
                cleanup.insert(0, Cleanup::Unmount(mnt.clone()));
                (mnt, Vec::new())
            }
            Peer::Plain if writable => {
                let copy = dir.join("tree");
                let st = Command::new("cp")
                    .arg("-a")
                    .arg(&l.merged)
                    .arg(&copy)
                    .status()?;
                if !st.success() {
                    return Err(std::io::Error::other("cp -a of the merged tree failed"));
                }
                (copy, Vec::new())
            }
            Peer::Plain => (l.merged.clone(), Vec::new()),
        };
        Ok(View {
            root,
            prefix,
            cleanup,
        })
    }

    /// The worker command `sub` for a view (ours: inside a new runtime,
    /// where the data set is at the mount).
    pub fn command(&self, view: &View, worker: &Path, sub: &str, mountpoint: &Path) -> Command {
        let root = if matches!(self, Peer::Ours { .. }) {
            mountpoint
        } else {
            &view.root
        };
        let mut c = match view.prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(worker);
                c
            }
            None => Command::new(worker),
        };
        if let Peer::Ours { env, .. } = self {
            c.envs(env.iter().map(|(k, v)| (k, v)));
        }
        c.arg(sub).arg("--root").arg(root);
        c
    }
}

/// Upstream's `spfs-fuse -f REF MNT`, stopped when dropped.
pub struct UpstreamMount {
    child: Child,
    pub mount: PathBuf,
}

impl UpstreamMount {
    pub fn start(
        bin: &Path,
        repo: &Path,
        spec: &str,
        mount: &Path,
    ) -> std::io::Result<UpstreamMount> {
        std::fs::create_dir_all(mount)?;
        let child = Command::new(bin)
            .args(["-f", spec])
            .arg(mount)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SPFS_STORAGE_ROOT", repo)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let m = UpstreamMount {
            child,
            mount: mount.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !is_mounted(mount) {
            if Instant::now() > deadline {
                return Err(std::io::Error::other("spfs-fuse did not mount in 20 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(m)
    }
}

impl Drop for UpstreamMount {
    fn drop(&mut self) {
        unmount(&self.mount);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Our service on a private mountpoint and socket, stopped when dropped.
pub struct OurService {
    child: Child,
    pub bin: PathBuf,
    pub mount: PathBuf,
    pub env: Vec<(String, OsString)>,
}

impl OurService {
    pub fn start(bin: &Path, repo: &Path, dir: &Path) -> std::io::Result<OurService> {
        std::fs::create_dir_all(dir)?;
        let mount = dir.join("spfs");
        let env: Vec<(String, OsString)> = vec![
            ("SPFS_STORAGE_ROOT".into(), repo.into()),
            ("SPFS_FUSE_MOUNTPOINT".into(), mount.clone().into()),
            ("SPFS_FUSE_SOCKET".into(), dir.join("control.sock").into()),
            ("SPFS_FUSE_SCRATCH_ROOT".into(), dir.join("scratch").into()),
            ("SPFS_FUSE_IDLE_TIMEOUT".into(), "0".into()),
            ("HOME".into(), dir.into()),
        ];
        let child = Command::new(bin)
            .arg("service")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("service.log"))?)
            .spawn()?;
        let s = OurService {
            child,
            bin: bin.to_owned(),
            mount,
            env,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = Command::new(bin)
                .arg("status")
                .envs(s.env.iter().map(|(k, v)| (k, v)))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|st| st.success());
            if ok {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other("our service did not start in 20 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The service's resident memory, in bytes.
    pub fn rss(&self) -> u64 {
        rss_of(self.child.id())
    }
}

impl Drop for OurService {
    fn drop(&mut self) {
        let _ = Command::new(&self.bin)
            .args(["shutdown", "--force"])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if is_mounted(&self.mount) {
            unmount(&self.mount);
        }
    }
}

/// VmRSS of process `pid`, in bytes (0 if unknown).
pub fn rss_of(pid: u32) -> u64 {
    status_field(pid, "VmRSS:")
}

/// A `kB` field of /proc/PID/status, in bytes.
pub fn status_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Whether a FUSE filesystem is mounted at `p` (the service's own check).
pub fn is_mounted(p: &Path) -> bool {
    spfs_fuse_macos::sys::mount::fuse_mount_source(p).is_some()
}

/// Whether a program is on PATH.
pub fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(name).is_file()))
}
