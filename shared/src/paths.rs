//! Per-user locations, the same for the service and the menu bar.
//!
//! | what | macOS | Linux |
//! |---|---|---|
//! | control socket | `~/Library/Application Support/SPFS/control.sock` | `$XDG_RUNTIME_DIR/spfs-fuse-macos/control.sock` |
//! | settings | `~/Library/Application Support/SPFS/settings.json` | `~/.config/spfs-fuse-macos/settings.json` |
//! | service log | `~/Library/Logs/spfs/service.log` | `~/.local/state/spfs-fuse-macos/service.log` |
//! | runtime scratch | `~/Library/Caches/SPFS/scratch` | `~/.cache/spfs-fuse-macos/scratch` |
//!
//! `SPFS_FUSE_SOCKET` overrides the socket path.

use std::path::PathBuf;

/// Environment variable that overrides the control socket path.
pub const SOCKET_ENV: &str = "SPFS_FUSE_SOCKET";

#[cfg(target_os = "macos")]
const APP_DIR: &str = "SPFS";
#[cfg(not(target_os = "macos"))]
const APP_DIR: &str = "spfs-fuse-macos";

/// The user's home directory (`/tmp` if none is known).
pub fn home() -> PathBuf {
    dirs::home_dir().unwrap_or_else(|| PathBuf::from("/tmp"))
}

/// Per-user configuration and state directory of the app.
pub fn app_dir() -> PathBuf {
    dirs::config_dir()
        .unwrap_or_else(|| home().join(".config"))
        .join(APP_DIR)
}

/// The control socket the service listens on.
pub fn socket_path() -> PathBuf {
    if let Some(p) = std::env::var_os(SOCKET_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    socket_path_default()
}

/// The per-user control socket, whatever `SPFS_FUSE_SOCKET` says.
pub fn socket_path_default() -> PathBuf {
    match dirs::runtime_dir() {
        Some(run) => run.join(APP_DIR).join("control.sock"),
        None => app_dir().join("control.sock"),
    }
}

/// The settings file.
pub fn settings_path() -> PathBuf {
    app_dir().join("settings.json")
}

/// The service's log file when it runs in the background.
pub fn log_path() -> PathBuf {
    #[cfg(target_os = "macos")]
    let dir = home().join("Library/Logs/spfs");
    #[cfg(not(target_os = "macos"))]
    let dir = dirs::state_dir()
        .unwrap_or_else(|| home().join(".local/state"))
        .join(APP_DIR);
    dir.join("service.log")
}

/// Where editable runtimes keep their scratch directories.
pub fn scratch_root() -> PathBuf {
    dirs::cache_dir()
        .unwrap_or_else(|| home().join(".cache"))
        .join(APP_DIR)
        .join("scratch")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_absolute_and_distinct() {
        let all = [socket_path(), settings_path(), log_path(), scratch_root()];
        for p in &all {
            assert!(p.is_absolute(), "{}", p.display());
        }
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert!(socket_path().ends_with("control.sock"));
    }
}
