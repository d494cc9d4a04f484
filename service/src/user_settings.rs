//! The user's settings as the running service holds them: read at start,
//! changed by a `set_setting` request (checked, written to the file
//! atomically, applied at once) or by an edit of the file (noticed within
//! a second, see [`UserSettings::reload_if_changed`]).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use parking_lot::Mutex;
use spfs_shared::protocol::{IdleTimeoutSource, SettingsInfo};
use spfs_shared::settings::{IdleTimeout, Settings, SettingsError, IDLE_TIMEOUT_ENV};

/// What identifies one version of the file on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    ino: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        ino: m.ino(),
    })
}

#[derive(Debug)]
struct Current {
    settings: Settings,
    stamp: Option<Stamp>,
    /// The file's last error, reported once.
    error: Option<String>,
}

/// The settings of the service's user.
#[derive(Debug)]
pub(crate) struct UserSettings {
    path: PathBuf,
    current: Mutex<Current>,
    /// `SPFS_FUSE_IDLE_TIMEOUT`, which wins over the file.
    env_timeout: Option<IdleTimeout>,
    always_on: bool,
}

impl UserSettings {
    /// Reads the settings at `path`. A file that cannot be used is logged
    /// and the defaults are used (a typo must not keep runtimes from
    /// starting); a bad `SPFS_FUSE_IDLE_TIMEOUT` is an error.
    pub(crate) fn load(path: &Path, always_on: bool) -> Result<UserSettings, SettingsError> {
        let env_timeout = match std::env::var(IDLE_TIMEOUT_ENV) {
            Ok(v) if !v.trim().is_empty() => Some(spfs_shared::settings::parse_duration(&v)?),
            _ => None,
        };
        let (settings, error) = match Settings::load(path) {
            Ok(s) => (s, None),
            Err(e) => {
                tracing::warn!(error = %e, "using the default settings");
                (Settings::default(), Some(e.to_string()))
            }
        };
        Ok(UserSettings {
            path: path.to_owned(),
            current: Mutex::new(Current {
                settings,
                stamp: stamp(path),
                error,
            }),
            env_timeout,
            always_on,
        })
    }

    /// The settings now.
    pub(crate) fn settings(&self) -> Settings {
        self.current.lock().settings.clone()
    }

    /// The idle timeout in effect and where it comes from.
    pub(crate) fn idle_timeout(&self) -> (IdleTimeout, IdleTimeoutSource) {
        if self.always_on {
            return (IdleTimeout::Never, IdleTimeoutSource::AlwaysOn);
        }
        match self.env_timeout {
            Some(t) => (t, IdleTimeoutSource::Environment),
            None => (
                IdleTimeout::from_minutes(self.current.lock().settings.idle_timeout_minutes),
                IdleTimeoutSource::Setting,
            ),
        }
    }

    /// The settings and what is in effect, for clients.
    pub(crate) fn info(&self) -> SettingsInfo {
        let (timeout, source) = self.idle_timeout();
        SettingsInfo {
            settings: self.settings(),
            path: self.path.display().to_string(),
            idle_timeout_secs: timeout.secs(),
            idle_timeout_source: source,
        }
    }

    /// Sets `key` to `value`: checked, written atomically, in effect at
    /// once. The file is read again first, so an edit made by hand since
    /// is kept.
    pub(crate) fn set(&self, key: &str, value: &str) -> Result<Settings, SettingsError> {
        let mut current = self.current.lock();
        let on_disk = Settings::load(&self.path)?;
        let next = on_disk.with(key, value)?;
        next.save(&self.path)?;
        current.settings = next.clone();
        current.stamp = stamp(&self.path);
        current.error = None;
        Ok(next)
    }

    /// Reads the file again if it changed since it was last read; returns
    /// the new settings if they differ. A file that became invalid is
    /// logged once and the settings in effect stay.
    pub(crate) fn reload_if_changed(&self) -> Option<Settings> {
        let now = stamp(&self.path);
        let mut current = self.current.lock();
        if now == current.stamp {
            return None;
        }
        current.stamp = now;
        let loaded = if now.is_none() {
            // Deleted: the defaults.
            Ok(Settings::default())
        } else {
            Settings::load(&self.path)
        };
        match loaded {
            Ok(s) => {
                current.error = None;
                if s == current.settings {
                    return None;
                }
                current.settings = s.clone();
                tracing::info!(path = %self.path.display(), "settings changed");
                Some(s)
            }
            Err(e) => {
                let message = e.to_string();
                if current.error.as_deref() != Some(&message) {
                    tracing::warn!(error = %message, "settings file changed but cannot be used; keeping the settings in effect");
                    current.error = Some(message);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_writes_and_an_edit_of_the_file_is_noticed() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("settings.json");
        let s = UserSettings::load(&path, false).unwrap();
        assert_eq!(s.settings(), Settings::default());
        s.set("idle_timeout_minutes", "5").unwrap();
        assert_eq!(Settings::load(&path).unwrap().idle_timeout_minutes, 5);
        assert_eq!(s.reload_if_changed(), None, "our own write is not a change");
        assert!(s.set("idle_timeout_minutes", "soon").is_err());
        assert_eq!(s.settings().idle_timeout_minutes, 5, "nothing changed");
        // an edit by hand (a new file, as editors write it)
        std::fs::write(d.path().join("new"), r#"{"idle_timeout_minutes": 0}"#).unwrap();
        std::fs::rename(d.path().join("new"), &path).unwrap();
        assert_eq!(s.reload_if_changed().unwrap().idle_timeout_minutes, 0);
        assert_eq!(
            s.idle_timeout(),
            (IdleTimeout::Never, IdleTimeoutSource::Setting)
        );
        // a broken file keeps the settings in effect
        std::fs::write(&path, "{").unwrap();
        assert_eq!(s.reload_if_changed(), None);
        assert_eq!(s.settings().idle_timeout_minutes, 0);
        let always = UserSettings::load(&path, true).unwrap();
        assert_eq!(always.idle_timeout().1, IdleTimeoutSource::AlwaysOn);
    }
}
