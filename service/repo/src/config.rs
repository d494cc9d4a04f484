//! Which repositories to use, decided the way upstream spfs decides.
//!
//! Sources, later overriding earlier: `/etc/spfs.conf` (INI), `/etc/spfs.toml`,
//! then the user's `spfs/spfs.conf` and `spfs/spfs.toml` in `~/.config` and in
//! the platform config dir, then `SPFS_*` environment variables
//! (`SPFS_STORAGE_ROOT`, `SPFS_STORAGE_TAG_NAMESPACE`,
//! `SPFS_REMOTE_<NAME>_ADDRESS`, or any key as `SPFS_SECTION__KEY`, e.g.
//! `SPFS_STORAGE__ROOT`, `SPFS_REMOTE__ORIGIN__ADDRESS`).

use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use super::object::{DigestStrategy, EncodingFormat};

/// The resolved spfs configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The primary repository.
    pub storage: StorageConfig,
    /// Who new tags are attributed to.
    pub user: UserConfig,
    /// Remotes in the order they first appear in the sources.
    pub remotes: Vec<Remote>,
    /// Every `section.key` set by a file or variable, in the order first
    /// set, with its last value (settings this library does not act on
    /// included: `spfs config` shows them).
    pub settings: Vec<(String, String)>,
}

/// `[storage]`: the primary (local) repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageConfig {
    /// The repository's directory.
    pub root: PathBuf,
    /// Tags are read and written under this namespace, if set.
    pub tag_namespace: Option<String>,
    /// How new objects are digested.
    pub digest_strategy: DigestStrategy,
    /// How new objects are encoded.
    pub encoding_format: EncodingFormat,
}

/// `[user]`: who new tags are attributed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserConfig {
    /// The user name.
    pub name: String,
    /// The host or domain name.
    pub domain: String,
}

/// `[remote.NAME]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// `NAME` of `[remote.NAME]`.
    pub name: String,
    /// Where it is.
    pub location: RemoteLocation,
}

/// Where a remote lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteLocation {
    /// A local or network-mounted fs repository.
    Fs {
        /// The repository's directory.
        path: PathBuf,
        /// Its tag namespace, if any.
        tag_namespace: Option<String>,
    },
    /// Upstream's `spfs server`: gRPC for objects and tags, HTTP for
    /// payloads. Read through the `spfs-remote` crate, never in place.
    Grpc {
        /// `grpc://host:port` as configured.
        address: String,
    },
    /// A kind this tool cannot read (tar, proxy); kept to report it.
    Unsupported(String),
}

/// The inputs of config resolution, separated so tests can supply their own.
#[derive(Clone, Debug, Default)]
pub struct ConfigSources {
    /// Config files in increasing precedence; missing ones are skipped.
    pub files: Vec<PathBuf>,
    /// Environment variables (all of them; non-`SPFS_` ones are ignored).
    pub env: Vec<(String, String)>,
    /// Used for `~` expansion.
    pub home: Option<PathBuf>,
    /// Storage root when nothing sets one.
    pub default_root: PathBuf,
    /// `user.name` / `user.domain` defaults.
    pub default_user: (String, String),
}

impl ConfigSources {
    /// The sources upstream spfs reads on this machine.
    pub fn standard() -> Self {
        let mut files = vec![
            PathBuf::from("/etc/spfs.conf"),
            PathBuf::from("/etc/spfs.toml"),
        ];
        let mut user_dirs = Vec::new();
        if let Some(home) = dirs::home_dir() {
            user_dirs.push(home.join(".config").join("spfs"));
        }
        if let Some(cfg) = dirs::config_dir() {
            let d = cfg.join("spfs");
            if !user_dirs.contains(&d) {
                user_dirs.push(d);
            }
        }
        for d in user_dirs {
            files.push(d.join("spfs.conf"));
            files.push(d.join("spfs.toml"));
        }
        Self {
            files,
            env: std::env::vars().collect(),
            home: dirs::home_dir(),
            default_root: dirs::data_local_dir()
                .map(|d| d.join("spfs"))
                .unwrap_or_else(|| PathBuf::from("/tmp/spfs")),
            default_user: (crate::sys::user::username(), crate::sys::user::hostname()),
        }
    }
}

/// Ordered `section.key` → value pairs; a later set keeps the first position.
#[derive(Default)]
struct Flat(Vec<(String, String)>);

impl Flat {
    fn set(&mut self, key: String, value: String) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_owned();
        }
    }
    v.to_owned()
}

fn flatten_toml(prefix: &str, table: &toml::Table, out: &mut Flat) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.to_lowercase()
        } else {
            format!("{prefix}.{}", k.to_lowercase())
        };
        match v {
            toml::Value::Table(t) => flatten_toml(&key, t, out),
            toml::Value::String(s) => out.set(key, s.clone()),
            toml::Value::Array(_) => {}
            other => out.set(key, other.to_string()),
        }
    }
}

fn read_file_into(path: &Path, out: &mut Flat) -> Result<()> {
    let text = match spfs_shared::bounded::read_to_string(path, spfs_shared::bounded::SMALL) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read config", path)(e)),
    };
    let bad = |reason: String| Error::Config {
        source_name: path.display().to_string(),
        reason,
    };
    if path.extension().is_some_and(|e| e == "toml") {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| bad(e.message().to_owned()))?;
        flatten_toml("", &table, out);
    } else {
        let ini = ini::Ini::load_from_str(&text).map_err(|e| bad(e.to_string()))?;
        for (section, props) in ini.iter() {
            for (k, v) in props.iter() {
                let key = match section {
                    Some(s) => format!("{}.{}", s.trim().to_lowercase(), k.trim().to_lowercase()),
                    None => k.trim().to_lowercase(),
                };
                out.set(key, unquote(v));
            }
        }
    }
    Ok(())
}

fn env_key(var: &str) -> Option<String> {
    let rest = var.strip_prefix("SPFS_")?;
    if rest.contains("__") {
        return Some(
            rest.split("__")
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
                .join("."),
        );
    }
    // Upstream's single-underscore names for the keys users set this way.
    if let Some(name) = rest
        .strip_prefix("REMOTE_")
        .and_then(|r| r.strip_suffix("_ADDRESS"))
        .filter(|n| !n.is_empty())
    {
        return Some(format!("remote.{}.address", name.to_lowercase()));
    }
    Some(
        match rest {
            "STORAGE_ROOT" => "storage.root",
            "STORAGE_TAG_NAMESPACE" => "storage.tag_namespace",
            "USER_NAME" => "user.name",
            "USER_DOMAIN" => "user.domain",
            _ => return None,
        }
        .to_owned(),
    )
}

fn expand_tilde(p: &str, home: Option<&Path>) -> PathBuf {
    match (p.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            home.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(p),
    }
}

impl Config {
    /// The `user.domain` used when the config sets none: this host's name.
    pub fn default_domain() -> String {
        crate::sys::user::hostname()
    }

    /// Loads the configuration from the standard places.
    pub fn load() -> Result<Self> {
        Self::load_from(&ConfigSources::standard())
    }

    /// Loads the configuration from explicit sources.
    pub fn load_from(src: &ConfigSources) -> Result<Self> {
        let mut flat = Flat::default();
        for f in &src.files {
            read_file_into(f, &mut flat)?;
        }
        for (k, v) in &src.env {
            if let Some(key) = env_key(k) {
                flat.set(key, v.clone());
            }
        }
        let home = src.home.as_deref();
        let bad = |key: &str, reason: String| Error::Config {
            source_name: key.to_owned(),
            reason,
        };
        let root = match flat.get("storage.root") {
            Some(r) if !r.is_empty() => expand_tilde(r, home),
            _ => src.default_root.clone(),
        };
        let digest_strategy = match flat.get("storage.digest_strategy") {
            None | Some("WithKindAndSalt") => DigestStrategy::WithKindAndSalt,
            Some("Legacy") => DigestStrategy::Legacy,
            Some(other) => {
                return Err(bad(
                    "storage.digest_strategy",
                    format!("'{other}' is not one of Legacy, WithKindAndSalt"),
                ))
            }
        };
        let encoding_format = match flat.get("storage.encoding_format") {
            None | Some("FlatBuffers") => EncodingFormat::FlatBuffers,
            Some("Legacy") => EncodingFormat::Legacy,
            Some(other) => {
                return Err(bad(
                    "storage.encoding_format",
                    format!("'{other}' is not one of Legacy, FlatBuffers"),
                ))
            }
        };
        let storage = StorageConfig {
            root,
            tag_namespace: flat.get("storage.tag_namespace").map(str::to_owned),
            digest_strategy,
            encoding_format,
        };
        let user = UserConfig {
            name: flat
                .get("user.name")
                .map_or_else(|| src.default_user.0.clone(), str::to_owned),
            domain: flat
                .get("user.domain")
                .map_or_else(|| src.default_user.1.clone(), str::to_owned),
        };

        let mut names: Vec<String> = Vec::new();
        for (k, _) in &flat.0 {
            if let Some(rest) = k.strip_prefix("remote.") {
                if let Some((name, _)) = rest.rsplit_once('.') {
                    if !names.iter().any(|n| n == name) {
                        names.push(name.to_owned());
                    }
                }
            }
        }
        let mut remotes = Vec::new();
        for name in names {
            let get = |field: &str| flat.get(&format!("remote.{name}.{field}"));
            let key = format!("remote.{name}");
            let location = match (get("scheme"), get("address")) {
                (Some("fs"), _) => {
                    let path = get("path")
                        .ok_or_else(|| bad(&key, "scheme 'fs' needs a 'path'".to_owned()))?;
                    RemoteLocation::Fs {
                        path: expand_tilde(path, home),
                        tag_namespace: get("tag_namespace").map(str::to_owned),
                    }
                }
                (Some("grpc"), Some(address)) => RemoteLocation::Grpc {
                    address: address.to_owned(),
                },
                (Some(scheme), _) => RemoteLocation::Unsupported(format!("scheme '{scheme}'")),
                (None, Some(address)) => {
                    parse_address(address, home).map_err(|reason| bad(&key, reason))?
                }
                (None, None) => {
                    return Err(bad(
                        &key,
                        "set 'address' (a URL) or 'scheme' and its fields".to_owned(),
                    ))
                }
            };
            remotes.push(Remote { name, location });
        }
        Ok(Config {
            storage,
            user,
            remotes,
            settings: flat.0,
        })
    }
}

fn parse_address(
    address: &str,
    home: Option<&Path>,
) -> std::result::Result<RemoteLocation, String> {
    // A bare path is taken as a file address, as upstream does.
    if address.starts_with('/') || address.starts_with('~') {
        return Ok(RemoteLocation::Fs {
            path: expand_tilde(address, home),
            tag_namespace: None,
        });
    }
    let url =
        url::Url::parse(address).map_err(|e| format!("address '{address}' is not a URL: {e}"))?;
    if url.scheme() == "grpc" {
        if url.host_str().is_none() {
            return Err(format!("address '{address}' names no host"));
        }
        return Ok(RemoteLocation::Grpc {
            address: address.to_owned(),
        });
    }
    if url.scheme() != "file" {
        return Ok(RemoteLocation::Unsupported(address.to_owned()));
    }
    let path = url
        .to_file_path()
        .map_err(|_| format!("address '{address}' is not a local file URL"))?;
    let tag_namespace = url
        .query_pairs()
        .find(|(k, _)| k == "tag_namespace")
        .map(|(_, v)| v.into_owned());
    Ok(RemoteLocation::Fs {
        path,
        tag_namespace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(dir: &Path, files: &[(&str, &str)], env: &[(&str, &str)]) -> ConfigSources {
        let mut paths = Vec::new();
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            paths.push(p);
        }
        paths.push(dir.join("missing.toml"));
        ConfigSources {
            files: paths,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            home: Some(PathBuf::from("/home/u")),
            default_root: PathBuf::from("/default/spfs"),
            default_user: ("u".into(), "h".into()),
        }
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::load_from(&sources(dir.path(), &[], &[])).unwrap();
        assert_eq!(c.storage.root, PathBuf::from("/default/spfs"));
        assert_eq!(c.storage.digest_strategy, DigestStrategy::WithKindAndSalt);
        assert_eq!(c.user.name, "u");
        assert!(c.remotes.is_empty());
    }

    #[test]
    fn files_then_env_in_precedence_order() {
        let dir = tempfile::tempdir().unwrap();
        let src = sources(
            dir.path(),
            &[
                (
                    "spfs.conf",
                    "[storage]\nroot = \"~/from-ini\"\n[remote.studio]\naddress = file:///mnt/studio/spfs?tag_namespace=show\n",
                ),
                (
                    "spfs.toml",
                    "[storage]\nroot = \"/from/toml\"\ndigest_strategy = \"Legacy\"\n[remote.origin]\nscheme = \"fs\"\npath = \"~/origin\"\n[remote.grpc]\naddress = \"http2://host:7737\"\n[remote.studio2]\naddress = \"grpc://spfs.studio:7737\"\n",
                ),
            ],
            &[],
        );
        let c = Config::load_from(&src).unwrap();
        assert_eq!(c.storage.root, PathBuf::from("/from/toml"));
        assert_eq!(c.storage.digest_strategy, DigestStrategy::Legacy);
        let names: Vec<_> = c.remotes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["studio", "origin", "grpc", "studio2"]);
        assert_eq!(
            c.remotes[0].location,
            RemoteLocation::Fs {
                path: "/mnt/studio/spfs".into(),
                tag_namespace: Some("show".into())
            }
        );
        assert_eq!(
            c.remotes[1].location,
            RemoteLocation::Fs {
                path: "/home/u/origin".into(),
                tag_namespace: None
            }
        );
        assert!(matches!(
            c.remotes[2].location,
            RemoteLocation::Unsupported(_)
        ));
        assert_eq!(
            c.remotes[3].location,
            RemoteLocation::Grpc {
                address: "grpc://spfs.studio:7737".into()
            }
        );

        let mut src = src;
        src.env = vec![("SPFS_STORAGE_ROOT".into(), "/env/legacy".into())];
        assert_eq!(
            Config::load_from(&src).unwrap().storage.root,
            PathBuf::from("/env/legacy")
        );
        src.env = vec![("SPFS_STORAGE__ROOT".into(), "/env/new".into())];
        assert_eq!(
            Config::load_from(&src).unwrap().storage.root,
            PathBuf::from("/env/new")
        );
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        for (file, text, needle) in [
            ("a.toml", "[storage\nroot=1", "a.toml"),
            (
                "b.toml",
                "[storage]\ndigest_strategy = \"Fast\"",
                "digest_strategy",
            ),
            ("c.toml", "[remote.x]\nscheme = \"fs\"", "needs a 'path'"),
            ("d.toml", "[remote.x]\nfoo = \"bar\"", "remote.x"),
            ("e.toml", "[remote.x]\naddress = \"not a url\"", "not a URL"),
        ] {
            let err = Config::load_from(&sources(dir.path(), &[(file, text)], &[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{file}: {err}");
        }
    }
}
