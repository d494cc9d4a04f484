//! `config`: the spfs configuration as upstream prints it — every section
//! of upstream 0.44's configuration with its defaults, the values the
//! config files and `SPFS_*` variables set laid over them, as JSON in
//! upstream's field order.

use crate::repo::object::{DigestStrategy, EncodingFormat};
use crate::repo::Config;

use super::CmdResult;

/// A JSON value whose objects keep their field order.
#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(u64),
    Str(String),
    EmptyArray,
    Object(Vec<(String, Json)>),
}

impl Json {
    fn obj(fields: &[(&str, Json)]) -> Json {
        Json::Object(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// The field `key` of an object.
    fn field(&mut self, key: &str) -> Option<&mut Json> {
        match self {
            Json::Object(fields) => fields.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// `text` (a config value) as a value of this one's type: a setting
    /// that does not fit keeps the default.
    fn parsed_like(&self, text: &str) -> Option<Json> {
        match self {
            Json::Bool(_) => text.parse().ok().map(Json::Bool),
            Json::Number(_) => text.parse().ok().map(Json::Number),
            Json::Str(_) | Json::Null => Some(Json::str(text)),
            Json::EmptyArray | Json::Object(_) => None,
        }
    }

    /// Written as serde_json's pretty printer writes (two spaces).
    fn write(&self, out: &mut String, indent: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(&n.to_string()),
            Json::Str(s) => out.push_str(&serde_json::Value::String(s.clone()).to_string()),
            Json::EmptyArray => out.push_str("[]"),
            Json::Object(fields) if fields.is_empty() => out.push_str("{}"),
            Json::Object(fields) => {
                out.push_str("{\n");
                for (i, (k, v)) in fields.iter().enumerate() {
                    out.push_str(&"  ".repeat(indent + 1));
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push_str(": ");
                    v.write(out, indent + 1);
                    if i + 1 < fields.len() {
                        out.push(',');
                    }
                    out.push('\n');
                }
                out.push_str(&"  ".repeat(indent));
                out.push('}');
            }
        }
    }
}

/// Upstream 0.44's configuration with its defaults (the worker threads
/// follow the machine's CPUs, as upstream's do).
fn defaults(config: &Config) -> Json {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let strategy = match config.storage.digest_strategy {
        DigestStrategy::Legacy => "Legacy",
        DigestStrategy::WithKindAndSalt => "WithKindAndSalt",
    };
    let encoding = match config.storage.encoding_format {
        EncodingFormat::Legacy => "Legacy",
        EncodingFormat::FlatBuffers => "FlatBuffers",
    };
    Json::obj(&[
        (
            "user",
            Json::obj(&[
                ("name", Json::str(&config.user.name)),
                ("domain", Json::str(&config.user.domain)),
            ]),
        ),
        (
            "storage",
            Json::obj(&[
                ("root", Json::str(config.storage.root.display().to_string())),
                ("allow_payload_sharing_between_users", Json::Bool(false)),
                (
                    "tag_namespace",
                    config
                        .storage
                        .tag_namespace
                        .clone()
                        .map_or(Json::Null, Json::Str),
                ),
                ("digest_strategy", Json::str(strategy)),
                ("encoding_format", Json::str(encoding)),
            ]),
        ),
        (
            "filesystem",
            Json::obj(&[
                ("backend", Json::str("OverlayFsWithRenders")),
                (
                    "overlayfs_options",
                    Json::obj(&[
                        ("break_hardlinks", Json::Bool(false)),
                        ("metadata_copy_up", Json::Bool(false)),
                        ("redirect_dir", Json::str("Follow")),
                    ]),
                ),
                ("secondary_repositories", Json::EmptyArray),
                ("annotation_size_limit", Json::Number(0)),
                ("use_mount_syscalls", Json::Bool(false)),
            ]),
        ),
        ("remote", Json::Object(Vec::new())),
        (
            "fuse",
            Json::obj(&[
                ("worker_threads", Json::Number(cpus.min(8))),
                ("max_blocking_threads", Json::Number(512)),
                ("enable_heartbeat", Json::Bool(false)),
                ("heartbeat_interval_seconds", Json::Number(60)),
                ("heartbeat_grace_period_seconds", Json::Number(300)),
                ("include_secondary_tags", Json::Bool(true)),
            ]),
        ),
        (
            "monitor",
            Json::obj(&[
                ("worker_threads", Json::Number(cpus.min(2))),
                ("max_blocking_threads", Json::Number(2)),
            ]),
        ),
        (
            "sentry",
            Json::obj(&[
                ("dsn", Json::str("")),
                ("environment", Json::Null),
                ("username_override_var", Json::Null),
                ("email_domain", Json::Null),
            ]),
        ),
        (
            "environment",
            Json::obj(&[("variable_names_to_preserve", Json::EmptyArray)]),
        ),
    ])
}

/// The configuration in force, as upstream's `spfs config` prints it.
fn render(config: &Config) -> String {
    let mut json = defaults(config);
    for (key, value) in &config.settings {
        let parts: Vec<&str> = key.split('.').collect();
        match parts.as_slice() {
            // Resolved above (a path expanded, an enum checked).
            ["user" | "storage", ..] => {}
            ["remote", name, field] => {
                if let Some(Json::Object(remotes)) = json.field("remote") {
                    let remote = match remotes.iter_mut().find(|(n, _)| n == name) {
                        Some((_, r)) => r,
                        None => {
                            remotes.push(((*name).to_owned(), Json::Object(Vec::new())));
                            match remotes.last_mut() {
                                Some((_, r)) => r,
                                None => continue,
                            }
                        }
                    };
                    if let Json::Object(fields) = remote {
                        fields.push(((*field).to_owned(), Json::str(value)));
                    }
                }
            }
            path => {
                // A known setting of another section, in its type.
                let mut at = Some(&mut json);
                for p in path {
                    at = at.and_then(|j| j.field(p));
                }
                if let Some(slot) = at {
                    if let Some(v) = slot.parsed_like(value) {
                        *slot = v;
                    }
                }
            }
        }
    }
    let mut out = String::new();
    json.write(&mut out, 0);
    out
}

/// `config`: prints the configuration in force.
pub(crate) fn config() -> CmdResult {
    let config = Config::load()?;
    println!("{}", render(&config));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_laid_over_upstreams_defaults_in_their_types() {
        let src = crate::repo::config::ConfigSources {
            env: vec![
                ("SPFS_FUSE__WORKER_THREADS".into(), "5".into()),
                ("SPFS_FUSE__ENABLE_HEARTBEAT".into(), "true".into()),
                ("SPFS_SENTRY__DSN".into(), "https://x@y/1".into()),
                ("SPFS_REMOTE_origin_ADDRESS".into(), "grpc://h:7737".into()),
                ("SPFS_FUSE__WORKER_THREADS_TYPO".into(), "9".into()),
            ],
            default_root: "/data/spfs".into(),
            default_user: ("me".into(), "host".into()),
            ..Default::default()
        };
        let text = render(&Config::load_from(&src).unwrap());
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["fuse"]["worker_threads"], 5);
        assert_eq!(v["fuse"]["enable_heartbeat"], true);
        assert_eq!(v["sentry"]["dsn"], "https://x@y/1");
        assert_eq!(v["remote"]["origin"]["address"], "grpc://h:7737");
        assert_eq!(v["storage"]["root"], "/data/spfs");
        assert_eq!(v["user"]["name"], "me");
        assert!(v["fuse"].get("worker_threads_typo").is_none());
        assert!(
            text.starts_with("{\n  \"user\": {\n    \"name\": \"me\",\n"),
            "{text}"
        );
        assert!(text.contains("\"remote\": {\n    \"origin\": {"), "{text}");
    }
}
