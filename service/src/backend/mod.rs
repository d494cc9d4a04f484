//! Which filesystem backend serves the mount, and what it can do.
//!
//! On Linux there is one: the kernel's FUSE. On macOS there are several
//! (see `docs/backends.md` for the research and the sources), and they
//! differ in the one thing the service cannot do without: **the caller's
//! pid**, by which every request is routed to its process tree's runtime.
//! A backend without it runs the service in single-runtime mode (one
//! runtime at a time, seen by all of the user's processes) instead of
//! silently mixing runtimes.
//!
//! Detection ([`detect`]) reads what is installed through a root
//! directory, so tests point it at a fake tree; [`choose`] turns the
//! user's `--backend` and what is installed into a [`Backend`] or a clear
//! refusal. Nothing here is platform code: the same logic runs on Linux.

mod detect;

pub(crate) use detect::{detect, system_root, Installed, Os};

use std::path::{Path, PathBuf};

use spfs_shared::protocol::BackendInfo;

/// A way to serve a FUSE filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// Linux's kernel FUSE (`/dev/fuse`).
    LinuxFuse,
    /// macFUSE's kernel extension (the VFS API).
    MacfuseKext,
    /// macFUSE on Apple's FSKit (`-o backend=fskit`, macFUSE 5, macOS 15.4+).
    MacfuseFskit,
    /// FUSE-T: a user-space NFS (or SMB) server in front of the filesystem.
    FuseT,
    /// A native FSKit module of our own: a named seam, not built.
    Fskit,
}

/// Where a backend can mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MountLocation {
    /// Any directory (`/spfs` from `synthetic.conf` on macOS).
    Anywhere,
    /// Only under `/Volumes` (FSKit): `/spfs` must then be a link there.
    UnderVolumes,
}

/// Whether the filesystem can drop entries from the kernel's caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Invalidation {
    /// Entry and inode notifications work, and reply timeouts are honoured.
    Full,
    /// Some notifications work; reply timeouts for names are ignored.
    Partial,
    /// None.
    None,
}

/// What a backend can do, as far as the service cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Capabilities {
    /// Each request carries the calling process's pid (routing needs it).
    pub caller_pid: bool,
    /// Whether the kernel's name and attribute caches can be steered.
    pub invalidation: Invalidation,
    /// Whether a zero entry timeout keeps a name out of the kernel's name
    /// cache (the service's isolation of `/spfs/<name>` relies on it; see
    /// [`Backend::mount_options`] for the backends where it does not).
    pub entry_timeouts: bool,
    /// Where it mounts.
    pub location: MountLocation,
    /// Requests are served one at a time.
    pub serial: bool,
    /// fuser, the FUSE library the service is built on, can serve it.
    pub served_by_fuser: bool,
}

impl Kind {
    /// Every backend, in the order `auto` prefers them on their platform.
    pub(crate) const ALL: [Kind; 5] = [
        Kind::LinuxFuse,
        Kind::MacfuseKext,
        Kind::MacfuseFskit,
        Kind::FuseT,
        Kind::Fskit,
    ];

    /// The name `--backend` takes and `status --json` shows.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::LinuxFuse => "linux",
            Kind::MacfuseKext => "macfuse",
            Kind::MacfuseFskit => "macfuse-fskit",
            Kind::FuseT => "fuse-t",
            Kind::Fskit => "fskit",
        }
    }

    /// For people.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Kind::LinuxFuse => "Linux FUSE",
            Kind::MacfuseKext => "macFUSE (kernel extension)",
            Kind::MacfuseFskit => "macFUSE on FSKit",
            Kind::FuseT => "FUSE-T",
            Kind::Fskit => "FSKit module",
        }
    }

    /// The platform it exists on.
    pub(crate) fn os(self) -> Os {
        match self {
            Kind::LinuxFuse => Os::Linux,
            _ => Os::MacOs,
        }
    }

    /// What it can do (see `docs/backends.md` for the evidence).
    pub(crate) fn capabilities(self) -> Capabilities {
        match self {
            Kind::LinuxFuse => Capabilities {
                caller_pid: true,
                invalidation: Invalidation::Full,
                entry_timeouts: true,
                location: MountLocation::Anywhere,
                serial: false,
                served_by_fuser: true,
            },
            // The pid comes with each request; entry timeouts are ignored
            // (macfuse/macfuse#712), FUSE_NOTIFY_INVAL_ENTRY is ineffective
            // since 4.9.1 (#1160) while FUSE_NOTIFY_DELETE works. fuser
            // serves it with one thread.
            Kind::MacfuseKext => Capabilities {
                caller_pid: true,
                invalidation: Invalidation::Partial,
                entry_timeouts: false,
                location: MountLocation::Anywhere,
                serial: true,
                served_by_fuser: true,
            },
            // FSKit does not give the caller (macFUSE wiki, "FUSE
            // Backends"); mounts only under /Volumes; no notifications;
            // one request at a time over a socket (#1147).
            Kind::MacfuseFskit => Capabilities {
                caller_pid: false,
                invalidation: Invalidation::None,
                entry_timeouts: false,
                location: MountLocation::UnderVolumes,
                serial: true,
                served_by_fuser: true,
            },
            // NFS/SMB carry a uid and gid, not a pid; notifications are
            // accepted and dropped; fuser cannot speak its protocol.
            Kind::FuseT => Capabilities {
                caller_pid: false,
                invalidation: Invalidation::None,
                entry_timeouts: false,
                location: MountLocation::Anywhere,
                serial: false,
                served_by_fuser: false,
            },
            // FSKit gives at most the caller's uid and gid.
            Kind::Fskit => Capabilities {
                caller_pid: false,
                invalidation: Invalidation::Partial,
                entry_timeouts: false,
                location: MountLocation::UnderVolumes,
                serial: false,
                served_by_fuser: false,
            },
        }
    }

    /// Parses a `--backend` name.
    pub(crate) fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// What the user asked for with `--backend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Choice {
    /// The best one installed.
    Auto,
    /// This one.
    Only(Kind),
}

impl std::str::FromStr for Choice {
    type Err = String;

    fn from_str(s: &str) -> Result<Choice, String> {
        if s == "auto" {
            return Ok(Choice::Auto);
        }
        Kind::parse(s).map(Choice::Only).ok_or_else(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown backend '{s}': use auto, {}", names.join(", "))
        })
    }
}

/// The backend the service runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Backend {
    /// Which.
    pub kind: Kind,
    /// Its version, when it could be read.
    pub version: Option<String>,
    /// One runtime at a time (no caller pid, or `--single-runtime`).
    pub single_runtime: bool,
}

/// Why no backend can serve.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum BackendError {
    /// Nothing installed.
    #[error("no FUSE backend is installed: {hint}")]
    NoneInstalled {
        /// What to install.
        hint: &'static str,
    },
    /// The one asked for is not installed.
    #[error("{title} is not installed: {hint}")]
    NotInstalled {
        /// The backend.
        title: &'static str,
        /// What to install.
        hint: &'static str,
    },
    /// The one asked for is of the other platform.
    #[error("{title} exists only on {os}; this is {here} (use --backend auto)")]
    WrongPlatform {
        /// The backend.
        title: &'static str,
        /// Its platform.
        os: &'static str,
        /// This one.
        here: &'static str,
    },
    /// Installed, but the service cannot be served by it yet.
    #[error("{title} is not supported yet: {why}")]
    NotSupported {
        /// The backend.
        title: &'static str,
        /// Why, and what to use instead.
        why: &'static str,
    },
    /// macFUSE's FSKit backend needs macFUSE 5 and macOS 15.4.
    #[error(
        "macFUSE on FSKit needs macFUSE 5 or later and macOS 15.4 or later (found {found}): {hint}"
    )]
    FskitUnavailable {
        /// What was found.
        found: String,
        /// What to do.
        hint: &'static str,
    },
}

const INSTALL_MACFUSE: &str =
    "install macFUSE (brew install --cask macfuse, or https://macfuse.github.io) and see docs/macos.md";

fn os_name(os: Os) -> &'static str {
    match os {
        Os::Linux => "Linux",
        Os::MacOs => "macOS",
    }
}

/// Picks the backend for `choice` among what `installed` holds.
/// `single_runtime` is the user's `--single-runtime`; a backend without
/// the caller's pid forces it.
pub(crate) fn choose(
    choice: Choice,
    installed: &Installed,
    single_runtime: bool,
) -> Result<Backend, BackendError> {
    let kind = match choice {
        Choice::Auto => auto(installed)?,
        Choice::Only(kind) => {
            if kind.os() != installed.os {
                return Err(BackendError::WrongPlatform {
                    title: kind.title(),
                    os: os_name(kind.os()),
                    here: os_name(installed.os),
                });
            }
            check(kind, installed)?;
            kind
        }
    };
    Ok(Backend {
        kind,
        version: installed.version_of(kind),
        single_runtime: single_runtime || !kind.capabilities().caller_pid,
    })
}

/// The best backend installed: one that gives the caller's pid first.
fn auto(installed: &Installed) -> Result<Kind, BackendError> {
    match installed.os {
        Os::Linux => {
            check(Kind::LinuxFuse, installed)?;
            Ok(Kind::LinuxFuse)
        }
        Os::MacOs => {
            if check(Kind::MacfuseKext, installed).is_ok() {
                return Ok(Kind::MacfuseKext);
            }
            if check(Kind::MacfuseFskit, installed).is_ok() {
                return Ok(Kind::MacfuseFskit);
            }
            if installed.fuse_t.is_some() {
                return Err(check(Kind::FuseT, installed).err().unwrap_or(
                    BackendError::NoneInstalled {
                        hint: INSTALL_MACFUSE,
                    },
                ));
            }
            if installed.macfuse.is_some() {
                // macFUSE without a kernel extension and without FSKit.
                return Err(check(Kind::MacfuseFskit, installed).err().unwrap_or(
                    BackendError::NoneInstalled {
                        hint: INSTALL_MACFUSE,
                    },
                ));
            }
            Err(BackendError::NoneInstalled {
                hint: INSTALL_MACFUSE,
            })
        }
    }
}

/// Whether `kind` can serve here.
fn check(kind: Kind, installed: &Installed) -> Result<(), BackendError> {
    match kind {
        Kind::LinuxFuse if installed.dev_fuse => Ok(()),
        Kind::LinuxFuse => Err(BackendError::NotInstalled {
            title: kind.title(),
            hint: "/dev/fuse is missing: load the fuse module (modprobe fuse) or install fuse3",
        }),
        Kind::MacfuseKext => match &installed.macfuse {
            Some(m) if m.kext => Ok(()),
            Some(_) => Err(BackendError::NotInstalled {
                title: kind.title(),
                hint: "this macFUSE has no kernel extension for this macOS; reinstall macFUSE, or use --backend macfuse-fskit",
            }),
            None => Err(BackendError::NotInstalled {
                title: kind.title(),
                hint: INSTALL_MACFUSE,
            }),
        },
        Kind::MacfuseFskit => {
            let Some(m) = &installed.macfuse else {
                return Err(BackendError::NotInstalled {
                    title: kind.title(),
                    hint: INSTALL_MACFUSE,
                });
            };
            let macfuse_ok = m.version.as_deref().is_some_and(|v| at_least(v, &[5]));
            let macos_ok = installed
                .os_version
                .as_deref()
                .is_some_and(|v| at_least(v, &[15, 4]));
            if macfuse_ok && macos_ok {
                Ok(())
            } else {
                Err(BackendError::FskitUnavailable {
                    found: format!(
                        "macFUSE {}, macOS {}",
                        m.version.as_deref().unwrap_or("of unknown version"),
                        installed.os_version.as_deref().unwrap_or("of unknown version")
                    ),
                    hint: "update macFUSE, or allow its kernel extension (docs/macos.md)",
                })
            }
        }
        Kind::FuseT => match installed.fuse_t {
            None => Err(BackendError::NotInstalled {
                title: kind.title(),
                hint: "install it from https://www.fuse-t.org (but see docs/backends.md: it is not supported yet)",
            }),
            Some(_) => Err(BackendError::NotSupported {
                title: kind.title(),
                why: "FUSE-T serves the filesystem over NFS, which carries no caller pid, and fuser (the FUSE library the service is built on) cannot speak its protocol (its FUSE-T pull requests were closed unmerged); install macFUSE instead (docs/backends.md)",
            }),
        },
        Kind::Fskit => Err(BackendError::NotSupported {
            title: kind.title(),
            why: "a native FSKit module would be an app extension of SPFS.app, and FSKit gives no caller pid (at most a uid), so it could only serve one runtime at a time; use macFUSE (docs/backends.md)",
        }),
    }
}

/// `version` (dotted numbers, trailing text ignored) ≥ `min`.
fn at_least(version: &str, min: &[u32]) -> bool {
    let parts: Vec<u32> = version
        .split(|c: char| !c.is_ascii_digit())
        .take_while(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect();
    for (i, want) in min.iter().enumerate() {
        let have = parts.get(i).copied().unwrap_or(0);
        if have != *want {
            return have > *want;
        }
    }
    true
}

/// Where the service mounts, and the link `/spfs` must be when the
/// backend mounts only under `/Volumes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MountPlan {
    /// The directory mounted on.
    pub mount_at: PathBuf,
    /// The path users use, when it is a link to `mount_at`.
    pub link: Option<PathBuf>,
}

/// The directory FSKit mounts use for `/spfs`.
pub(crate) const VOLUMES_MOUNTPOINT: &str = "/Volumes/spfs";

/// Why the mountpoint does not suit the backend.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{title} mounts only under /Volumes, not at {path}: use --mountpoint {VOLUMES_MOUNTPOINT} and make /spfs a link to it in /etc/synthetic.conf (docs/macos.md)")]
pub(crate) struct MountPlanError {
    title: &'static str,
    path: String,
}

impl Backend {
    /// What it can do.
    pub(crate) fn capabilities(&self) -> Capabilities {
        self.kind.capabilities()
    }

    /// For people: `macFUSE (kernel extension) 5.1.2`.
    pub(crate) fn describe(&self) -> String {
        match &self.version {
            Some(v) => format!("{} {v}", self.kind.title()),
            None => self.kind.title().to_owned(),
        }
    }

    /// Where to mount for `requested` (`is_default`: the user did not
    /// choose it, so a backend that mounts only under `/Volumes` mounts
    /// there and `/spfs` is expected to link to it).
    pub(crate) fn mount_plan(
        &self,
        requested: &Path,
        is_default: bool,
    ) -> Result<MountPlan, MountPlanError> {
        match self.capabilities().location {
            MountLocation::Anywhere => Ok(MountPlan {
                mount_at: requested.to_owned(),
                link: None,
            }),
            MountLocation::UnderVolumes if requested.starts_with("/Volumes") => Ok(MountPlan {
                mount_at: requested.to_owned(),
                link: None,
            }),
            MountLocation::UnderVolumes if is_default => Ok(MountPlan {
                mount_at: PathBuf::from(VOLUMES_MOUNTPOINT),
                link: Some(requested.to_owned()),
            }),
            MountLocation::UnderVolumes => Err(MountPlanError {
                title: self.kind.title(),
                path: requested.display().to_string(),
            }),
        }
    }

    /// Mount options beyond the common ones (fuser's `-o` strings).
    ///
    /// macFUSE's kernel extension ignores entry timeouts and keeps every
    /// name it looks up in the vnode name cache until the vnode goes
    /// (macfuse/macfuse#712), and XNU's lookup serves cached names
    /// without asking the filesystem. A name one runtime looked up in
    /// `/spfs` would be served to the next runtime from that cache, so
    /// unless there is only one runtime the name cache is turned off for
    /// the mount (`novncache`): every path component is looked up again,
    /// as Linux does for names in the root (docs/backends.md has the
    /// cost). AppleDouble files (`._name`) are refused: layers are
    /// immutable, and Finder's metadata must not land in a scratch.
    pub(crate) fn mount_options(&self) -> Vec<String> {
        let mut options = Vec::new();
        match self.kind {
            Kind::MacfuseKext => {
                if !self.single_runtime {
                    options.push("novncache".to_owned());
                }
                options.push("noappledouble".to_owned());
                options.push("volname=SPFS".to_owned());
            }
            Kind::MacfuseFskit => {
                options.push("backend=fskit".to_owned());
                options.push("noappledouble".to_owned());
                options.push("volname=SPFS".to_owned());
            }
            Kind::LinuxFuse | Kind::FuseT | Kind::Fskit => {}
        }
        options
    }

    /// What `status` shows.
    pub(crate) fn info(&self, plan: &MountPlan, link_state: Option<&str>) -> BackendInfo {
        let caps = self.capabilities();
        BackendInfo {
            name: self.kind.name().to_owned(),
            title: self.kind.title().to_owned(),
            version: self.version.clone(),
            caller_pid: caps.caller_pid,
            invalidation: match caps.invalidation {
                Invalidation::Full => "full",
                Invalidation::Partial => "partial",
                Invalidation::None => "none",
            }
            .to_owned(),
            entry_timeouts: caps.entry_timeouts,
            mount_location: match caps.location {
                MountLocation::Anywhere => "anywhere",
                MountLocation::UnderVolumes => "under /Volumes only",
            }
            .to_owned(),
            serial: caps.serial,
            single_runtime: self.single_runtime,
            mount_options: self.mount_options(),
            mounted_at: plan.mount_at.display().to_string(),
            link: plan.link.as_ref().map(|l| {
                format!(
                    "{} → {}{}",
                    l.display(),
                    plan.mount_at.display(),
                    link_state.map(|s| format!(" ({s})")).unwrap_or_default()
                )
            }),
        }
    }
}

/// Whether `link` is a symbolic link to `target` (as `synthetic.conf`
/// makes it): a short state for `status`, and `None` when it is one.
pub(crate) fn link_problem(link: &Path, target: &Path) -> Option<String> {
    match std::fs::read_link(link) {
        Ok(t) => {
            // synthetic.conf links are relative to / ("Volumes/spfs").
            let resolved = if t.is_absolute() {
                t.clone()
            } else {
                link.parent().unwrap_or(Path::new("/")).join(&t)
            };
            (resolved != target).then(|| format!("it links to {} instead", t.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(
            "missing: add 'spfs\\tVolumes/spfs' to /etc/synthetic.conf (docs/macos.md)".to_owned(),
        ),
        Err(_) => Some("not a link: make it one in /etc/synthetic.conf (docs/macos.md)".to_owned()),
    }
}

#[cfg(test)]
mod tests;
