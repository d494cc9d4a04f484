//! User settings: one JSON file per user, edited by `spfs-fuse-macos config`
//! and the menu bar, read by the service at start and whenever it changes.
//!
//! Always-on is not a setting: it is whether the LaunchAgent (the systemd
//! user unit on Linux) is installed, so the two can never disagree.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Environment variable that overrides `idle_timeout_minutes` with a
/// duration (`90s`, `5m`, `2h`, `0` for never).
pub const IDLE_TIMEOUT_ENV: &str = "SPFS_FUSE_IDLE_TIMEOUT";

/// Environment variable naming the error-reporting address (a Sentry DSN);
/// it wins over the `sentry_dsn` setting.
pub const SENTRY_DSN_ENV: &str = "SPFS_SENTRY_DSN";

/// What the user can change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Stop the service after this many minutes with no runtime and no
    /// request (0 = never).
    pub idle_timeout_minutes: u32,
    /// Send crash and error reports (only where an address is configured).
    pub error_reporting: bool,
    /// Where reports go (a Sentry DSN), for studios to preinstall;
    /// `SPFS_SENTRY_DSN` wins over it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentry_dsn: Option<String>,
}

/// The default idle timeout, as design note 4.2 says.
pub const DEFAULT_IDLE_TIMEOUT_MINUTES: u32 = 30;

/// The longest idle timeout accepted: a week.
pub const MAX_IDLE_TIMEOUT_MINUTES: u32 = 7 * 24 * 60;

impl Default for Settings {
    fn default() -> Self {
        Self {
            idle_timeout_minutes: DEFAULT_IDLE_TIMEOUT_MINUTES,
            error_reporting: false,
            sentry_dsn: None,
        }
    }
}

/// The settings' keys, for `config get` and messages.
pub const KEYS: [&str; 3] = ["idle_timeout_minutes", "error_reporting", "sentry_dsn"];

/// Why settings could not be read, changed or written.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read or written.
    #[error("cannot {action} settings file {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid settings.
    #[error("settings file {path} is not valid ({reason}); fix or delete it to use the defaults")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No such key.
    #[error("unknown setting '{0}'; the settings are {keys}", keys = KEYS.join(", "))]
    UnknownKey(String),
    /// A value the key does not take.
    #[error("invalid value '{value}' for {key}: {allowed}")]
    BadValue {
        /// The key.
        key: String,
        /// What was given.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },
    /// A bad `SPFS_FUSE_IDLE_TIMEOUT`.
    #[error(
        "invalid {IDLE_TIMEOUT_ENV}='{0}': give a duration such as 90s, 5m or 2h, or 0 for never"
    )]
    BadDuration(String),
}

const IDLE_ALLOWED: &str = "a whole number of minutes from 0 (never) to 10080 (a week)";
const BOOL_ALLOWED: &str = "true or false (also on/off, yes/no, 1/0)";
const DSN_ALLOWED: &str =
    "a Sentry DSN such as https://KEY@sentry.example.com/42, or an empty value to remove it";

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Some(true),
        "false" | "off" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// Checks that `dsn` looks like a Sentry DSN: `http(s)://KEY@HOST[:PORT]/PROJECT`.
pub fn check_dsn(dsn: &str) -> bool {
    let Some(rest) = dsn
        .strip_prefix("https://")
        .or_else(|| dsn.strip_prefix("http://"))
    else {
        return false;
    };
    let Some((key, host_path)) = rest.split_once('@') else {
        return false;
    };
    let Some((host, project)) = host_path.split_once('/') else {
        return false;
    };
    let project = project.trim_end_matches('/');
    !key.is_empty()
        && !host.is_empty()
        && !project.is_empty()
        && !project.contains(char::is_whitespace)
        && !host.contains(char::is_whitespace)
}

/// The host part of a DSN (what `status` shows; the key is a secret).
pub fn dsn_host(dsn: &str) -> Option<&str> {
    let rest = dsn
        .strip_prefix("https://")
        .or_else(|| dsn.strip_prefix("http://"))?;
    let host_path = rest.split_once('@')?.1;
    Some(host_path.split_once('/').map_or(host_path, |(h, _)| h))
}

impl Settings {
    /// Reads settings from `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        match crate::bounded::read(path, crate::bounded::SMALL) {
            Ok(bytes) => Self::parse(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(SettingsError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            }),
        }
    }

    fn parse(path: &Path, bytes: &[u8]) -> Result<Self, SettingsError> {
        let s: Settings = serde_json::from_slice(bytes).map_err(|e| SettingsError::Invalid {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        s.validate().map_err(|e| SettingsError::Invalid {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        if self.idle_timeout_minutes > MAX_IDLE_TIMEOUT_MINUTES {
            return Err(SettingsError::BadValue {
                key: "idle_timeout_minutes".into(),
                value: self.idle_timeout_minutes.to_string(),
                allowed: IDLE_ALLOWED,
            });
        }
        if let Some(dsn) = &self.sentry_dsn {
            if !check_dsn(dsn) {
                return Err(SettingsError::BadValue {
                    key: "sentry_dsn".into(),
                    value: dsn.clone(),
                    allowed: DSN_ALLOWED,
                });
            }
        }
        Ok(())
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
        let json = serde_json::to_vec_pretty(self).map_err(|e| io("encode")(e.into()))?;
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

    /// Whether a reporting address is configured: `SPFS_SENTRY_DSN` or the
    /// `sentry_dsn` setting (the menu bar greys its toggle out without).
    pub fn reporting_address(&self) -> bool {
        std::env::var(SENTRY_DSN_ENV).is_ok_and(|d| check_dsn(d.trim()))
            || self.sentry_dsn.as_deref().is_some_and(check_dsn)
    }

    /// The value of `key` as `config get` prints it.
    pub fn get(&self, key: &str) -> Result<String, SettingsError> {
        Ok(match key {
            "idle_timeout_minutes" => self.idle_timeout_minutes.to_string(),
            "error_reporting" => self.error_reporting.to_string(),
            "sentry_dsn" => self.sentry_dsn.clone().unwrap_or_default(),
            other => return Err(SettingsError::UnknownKey(other.to_owned())),
        })
    }

    /// A copy with `key` set to `value` (checked; nothing is changed on
    /// error).
    pub fn with(&self, key: &str, value: &str) -> Result<Settings, SettingsError> {
        let bad = |allowed| SettingsError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
            allowed,
        };
        let mut s = self.clone();
        match key {
            "idle_timeout_minutes" => {
                s.idle_timeout_minutes = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|m| *m <= MAX_IDLE_TIMEOUT_MINUTES)
                    .ok_or_else(|| bad(IDLE_ALLOWED))?;
            }
            "error_reporting" => {
                s.error_reporting = parse_bool(value).ok_or_else(|| bad(BOOL_ALLOWED))?;
            }
            "sentry_dsn" => {
                let v = value.trim();
                s.sentry_dsn = if v.is_empty() {
                    None
                } else if check_dsn(v) {
                    Some(v.to_owned())
                } else {
                    return Err(bad(DSN_ALLOWED));
                };
            }
            other => return Err(SettingsError::UnknownKey(other.to_owned())),
        }
        Ok(s)
    }
}

/// How long the service waits, idle, before it stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleTimeout {
    /// It never stops by itself.
    Never,
    /// It stops after this long.
    After(Duration),
}

impl IdleTimeout {
    /// The timeout in effect: `SPFS_FUSE_IDLE_TIMEOUT` if set, else the
    /// setting.
    pub fn effective(settings: &Settings) -> Result<IdleTimeout, SettingsError> {
        match std::env::var(IDLE_TIMEOUT_ENV) {
            Ok(v) if !v.trim().is_empty() => parse_duration(&v),
            _ => Ok(Self::from_minutes(settings.idle_timeout_minutes)),
        }
    }

    /// The timeout in seconds; `None` for never.
    pub fn secs(self) -> Option<u64> {
        match self {
            IdleTimeout::Never => None,
            IdleTimeout::After(d) => Some(d.as_secs()),
        }
    }

    /// `minutes` as a timeout (0 = never).
    pub fn from_minutes(minutes: u32) -> IdleTimeout {
        if minutes == 0 {
            IdleTimeout::Never
        } else {
            IdleTimeout::After(Duration::from_secs(u64::from(minutes) * 60))
        }
    }
}

impl fmt::Display for IdleTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdleTimeout::Never => f.write_str("never"),
            IdleTimeout::After(d) => f.write_str(&human_duration(*d)),
        }
    }
}

/// A duration for people: `45 s`, `12 min`, `2 h 5 min`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        _ if s % 3600 < 60 => format!("{} h", s / 3600),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// Parses `90s`, `5m`, `2h`, `1h30m` or `0` (never).
pub fn parse_duration(text: &str) -> Result<IdleTimeout, SettingsError> {
    let bad = || SettingsError::BadDuration(text.to_owned());
    let t = text.trim();
    if t == "0" {
        return Ok(IdleTimeout::Never);
    }
    let mut total = 0u64;
    let mut digits = String::new();
    let mut any = false;
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        digits.clear();
        any = true;
    }
    if !digits.is_empty() || !any {
        return Err(bad());
    }
    Ok(if total == 0 {
        IdleTimeout::Never
    } else {
        IdleTimeout::After(Duration::from_secs(total))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_defaults_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/settings.json");
        assert_eq!(Settings::load(&path).unwrap(), Settings::default());
        assert_eq!(Settings::default().idle_timeout_minutes, 30);
        let s = Settings {
            idle_timeout_minutes: 5,
            error_reporting: true,
            sentry_dsn: Some("https://k@sentry.example.com/1".into()),
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
        std::fs::write(&path, r#"{"error_reporting": true}"#).unwrap();
        let s = Settings::load(&path).unwrap();
        assert!(s.error_reporting);
        assert_eq!(s.idle_timeout_minutes, 30);
        for bad in [
            "{",
            r#"{"error_reporting": "yes"}"#,
            r#"{"colour": 1}"#,
            r#"{"idle_timeout_minutes": 99999}"#,
            r#"{"sentry_dsn": "not a dsn"}"#,
        ] {
            std::fs::write(&path, bad).unwrap();
            let err = Settings::load(&path).unwrap_err().to_string();
            assert!(
                err.contains("settings.json") && err.contains("not valid"),
                "{err}"
            );
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }

    #[test]
    fn set_checks_keys_and_values() {
        let s = Settings::default();
        assert_eq!(
            s.with("idle_timeout_minutes", "5")
                .unwrap()
                .idle_timeout_minutes,
            5
        );
        assert!(s.with("error_reporting", "on").unwrap().error_reporting);
        let e = s
            .with("idle_timeout_minutes", "abc")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("idle_timeout_minutes") && e.contains("whole number"),
            "{e}"
        );
        let e = s.with("colour", "red").unwrap_err().to_string();
        assert!(
            e.contains("unknown setting 'colour'") && e.contains("error_reporting"),
            "{e}"
        );
        let e = s.with("sentry_dsn", "ftp://x").unwrap_err().to_string();
        assert!(e.contains("Sentry DSN"), "{e}");
        let dsn = "https://abc@o1.ingest.example.com/77";
        let with = s.with("sentry_dsn", dsn).unwrap();
        assert_eq!(with.get("sentry_dsn").unwrap(), dsn);
        assert_eq!(dsn_host(dsn), Some("o1.ingest.example.com"));
        assert_eq!(with.with("sentry_dsn", "").unwrap().sentry_dsn, None);
        assert!(s.get("nope").is_err());
    }

    #[test]
    fn durations() {
        use IdleTimeout::*;
        let secs = |n| After(Duration::from_secs(n));
        assert_eq!(parse_duration("90s").unwrap(), secs(90));
        assert_eq!(parse_duration("5m").unwrap(), secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), secs(5400));
        assert_eq!(parse_duration("0").unwrap(), Never);
        for bad in ["", "5", "m", "5x", "-1m", "99999999999999999999h"] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.contains(IDLE_TIMEOUT_ENV), "{bad}: {e}");
        }
        assert_eq!(IdleTimeout::from_minutes(0), Never);
        assert_eq!(human_duration(Duration::from_secs(750)), "12 min");
        assert_eq!(human_duration(Duration::from_secs(7500)), "2 h 5 min");
        assert_eq!(secs(1800).to_string(), "30 min");
    }
}
