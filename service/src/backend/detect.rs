//! What is installed, read from files under a root directory (`/`, or a
//! fake tree in tests: [`SYSTEM_ROOT_ENV`]).
//!
//! | what | where (under the root) |
//! |---|---|
//! | macOS version | `System/Library/CoreServices/SystemVersion.plist` (`ProductVersion`) |
//! | macFUSE and its version | `Library/Filesystems/macfuse.fs/Contents/Info.plist` (`CFBundleShortVersionString`) |
//! | macFUSE's kernel extension | `Library/Filesystems/macfuse.fs/Contents/Extensions/*/macfuse.kext` |
//! | FUSE-T | `usr/local/lib/libfuse-t.dylib`; version from `usr/local/lib/pkgconfig/fuse-t.pc` |
//! | Linux FUSE | `dev/fuse`; kernel from `proc/sys/kernel/osrelease` |
//!
//! Files say what is installed, not whether macOS allows it: a kernel
//! extension the user has not approved is found here and fails at mount,
//! with a message that says how to approve it.

use std::path::{Path, PathBuf};

use plist::Value;

use super::Kind;

/// Points detection at another root directory (tests).
pub(crate) const SYSTEM_ROOT_ENV: &str = "SPFS_FUSE_SYSTEM_ROOT";

/// An operating system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Os {
    /// Linux.
    Linux,
    /// macOS.
    MacOs,
}

impl Os {
    /// The one this binary runs on.
    pub(crate) fn current() -> Os {
        if cfg!(target_os = "macos") {
            Os::MacOs
        } else {
            Os::Linux
        }
    }
}

/// macFUSE, when installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Macfuse {
    /// `CFBundleShortVersionString` of `macfuse.fs`.
    pub version: Option<String>,
    /// Whether it carries a kernel extension.
    pub kext: bool,
}

/// FUSE-T, when installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FuseT {
    /// From its pkg-config file.
    pub version: Option<String>,
}

/// What the system has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Installed {
    /// The platform.
    pub os: Os,
    /// macOS's product version, or Linux's kernel release.
    pub os_version: Option<String>,
    /// Linux: `/dev/fuse` exists.
    pub dev_fuse: bool,
    /// macOS: macFUSE.
    pub macfuse: Option<Macfuse>,
    /// macOS: FUSE-T.
    pub fuse_t: Option<FuseT>,
}

impl Installed {
    /// The version of `kind`, as far as it is known.
    pub(crate) fn version_of(&self, kind: Kind) -> Option<String> {
        match kind {
            Kind::LinuxFuse => self.os_version.as_ref().map(|v| format!("(kernel {v})")),
            Kind::MacfuseKext | Kind::MacfuseFskit => {
                self.macfuse.as_ref().and_then(|m| m.version.clone())
            }
            Kind::FuseT => self.fuse_t.as_ref().and_then(|f| f.version.clone()),
            Kind::Fskit => self.os_version.as_ref().map(|v| format!("(macOS {v})")),
        }
    }

    /// The backends found, each with its version.
    pub(crate) fn found(&self) -> Vec<(Kind, Option<String>)> {
        let mut out = Vec::new();
        if self.dev_fuse {
            out.push((Kind::LinuxFuse, self.version_of(Kind::LinuxFuse)));
        }
        if let Some(m) = &self.macfuse {
            if m.kext {
                out.push((Kind::MacfuseKext, m.version.clone()));
            }
            out.push((Kind::MacfuseFskit, m.version.clone()));
        }
        if let Some(f) = &self.fuse_t {
            out.push((Kind::FuseT, f.version.clone()));
        }
        out
    }
}

/// The root detection reads from: [`SYSTEM_ROOT_ENV`], else `/`.
pub(crate) fn system_root() -> PathBuf {
    std::env::var_os(SYSTEM_ROOT_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

fn plist_string(path: &Path, key: &str) -> Option<String> {
    let value = Value::from_file(path).ok()?;
    value
        .as_dictionary()?
        .get(key)?
        .as_string()
        .map(str::to_owned)
}

fn pc_version(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Version:"))
        .map(|v| v.trim().to_owned())
}

/// What is installed for `os`, read under `root`.
pub(crate) fn detect(root: &Path, os: Os) -> Installed {
    match os {
        Os::Linux => Installed {
            os,
            os_version: std::fs::read_to_string(root.join("proc/sys/kernel/osrelease"))
                .ok()
                .map(|v| v.trim().to_owned()),
            dev_fuse: root.join("dev/fuse").exists(),
            macfuse: None,
            fuse_t: None,
        },
        Os::MacOs => {
            let fs = root.join("Library/Filesystems/macfuse.fs/Contents");
            let macfuse = fs.join("Info.plist").is_file().then(|| {
                let version = plist_string(&fs.join("Info.plist"), "CFBundleShortVersionString")
                    .or_else(|| plist_string(&fs.join("Info.plist"), "CFBundleVersion"));
                // One kext per macOS release it supports.
                let kext = std::fs::read_dir(fs.join("Extensions"))
                    .map(|dirs| {
                        dirs.flatten()
                            .any(|d| d.path().join("macfuse.kext").exists())
                    })
                    .unwrap_or(false);
                Macfuse { version, kext }
            });
            let lib = root.join("usr/local/lib");
            let fuse_t = lib.join("libfuse-t.dylib").exists().then(|| FuseT {
                version: pc_version(&lib.join("pkgconfig/fuse-t.pc")),
            });
            Installed {
                os,
                os_version: plist_string(
                    &root.join("System/Library/CoreServices/SystemVersion.plist"),
                    "ProductVersion",
                ),
                dev_fuse: false,
                macfuse,
                fuse_t,
            }
        }
    }
}
