//! User settings: written by the menu bar, read by the service.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What the user can change from the menu bar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Keep the service running at login (a LaunchAgent).
    pub always_on: bool,
    /// Stop the service after this many minutes with no runtime (0 = never).
    pub idle_timeout_minutes: u32,
    /// Send crash and error reports.
    pub error_reporting: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            always_on: false,
            idle_timeout_minutes: 15,
            error_reporting: false,
        }
    }
}

/// Why settings could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot {action} settings file {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("settings file {path} is not valid ({source}); fix or delete it to use the defaults")]
    Invalid {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl Settings {
    /// Reads settings from `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| SettingsError::Invalid {
                path: path.to_owned(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(SettingsError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Writes settings to `path` atomically (a reader never sees half a file).
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let io = |action| {
            move |source| SettingsError::Io {
                action,
                path: path.to_owned(),
                source,
            }
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io("create the directory of"))?;
        }
        let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        let json = serde_json::to_vec_pretty(self).expect("settings always serialize");
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&json)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io("write"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_defaults_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/settings.json");
        assert_eq!(Settings::load(&path).unwrap(), Settings::default());
        let s = Settings {
            always_on: true,
            idle_timeout_minutes: 5,
            error_reporting: true,
        };
        s.save(&path).unwrap();
        assert_eq!(Settings::load(&path).unwrap(), s);
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn partial_files_fill_defaults_and_bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, r#"{"always_on": true}"#).unwrap();
        let s = Settings::load(&path).unwrap();
        assert!(s.always_on);
        assert_eq!(s.idle_timeout_minutes, 15);
        for bad in ["{", r#"{"always_on": "yes"}"#, r#"{"colour": 1}"#] {
            std::fs::write(&path, bad).unwrap();
            let err = Settings::load(&path).unwrap_err().to_string();
            assert!(
                err.contains("settings.json") && err.contains("not valid"),
                "{err}"
            );
        }
    }
}
