//! The LaunchAgent: `~/Library/LaunchAgents/ai.spk.spfs-fuse-macos.plist`,
//! loaded into the user's GUI domain with `launchctl bootstrap gui/<uid>`.
//!
//! Its `Sockets` entry has launchd own the control socket (the service
//! takes it with `launch_activate_socket`); `KeepAlive` restarts a crashed
//! service but not one that stopped cleanly (`shutdown`).

use std::path::PathBuf;

use plist::{Dictionary, Value};

use super::{must, run, AgentError, Spec};

/// The agent's label.
pub(crate) const LABEL: &str = "ai.spk.spfs-fuse-macos";
/// The `Sockets` key the service asks launchd for.
pub(crate) const SOCKET_NAME: &str = "Listeners";
/// The app bundle's identifier (`SPFS.app`), whose agent this is.
pub(crate) const BUNDLE_ID: &str = "ai.spk.spfs";
/// Seconds launchd waits before starting a crashed service again.
pub(crate) const THROTTLE_SECS: i64 = 10;

/// Where the agent's property list goes.
pub(crate) fn plist_path() -> PathBuf {
    dirs::home_dir()
        .unwrap_or_else(|| PathBuf::from("/"))
        .join("Library/LaunchAgents")
        .join(format!("{LABEL}.plist"))
}

/// Started at load, restarted after a crash but not after a clean exit.
fn keep_alive(d: &mut Dictionary) {
    d.insert("RunAtLoad".into(), Value::Boolean(true));
    let mut keep = Dictionary::new();
    keep.insert("SuccessfulExit".into(), Value::Boolean(false));
    d.insert("KeepAlive".into(), Value::Dictionary(keep));
    d.insert(
        "ThrottleInterval".into(),
        Value::Integer(THROTTLE_SECS.into()),
    );
    d.insert("ProcessType".into(), Value::String("Interactive".into()));
}

fn common(d: &mut Dictionary, spec: &Spec) {
    keep_alive(d);
    let log = Value::String(spec.log.display().to_string());
    d.insert("StandardOutPath".into(), log.clone());
    d.insert("StandardErrorPath".into(), log);
    let mut listener = Dictionary::new();
    listener.insert(
        "SockPathName".into(),
        Value::String(spec.socket.display().to_string()),
    );
    // 0600: only the user (and root) may connect.
    listener.insert("SockPathMode".into(), Value::Integer(0o600.into()));
    let mut sockets = Dictionary::new();
    sockets.insert(SOCKET_NAME.into(), Value::Dictionary(listener));
    d.insert("Sockets".into(), Value::Dictionary(sockets));
    if !spec.env.is_empty() {
        let mut env = Dictionary::new();
        for (k, v) in &spec.env {
            env.insert(k.clone(), Value::String(v.clone()));
        }
        d.insert("EnvironmentVariables".into(), Value::Dictionary(env));
    }
}

fn xml(d: Dictionary) -> Result<Vec<u8>, AgentError> {
    let mut out = Vec::new();
    Value::Dictionary(d)
        .to_writer_xml(&mut out)
        .map_err(|e| AgentError::Plist(e.to_string()))?;
    out.push(b'\n');
    Ok(out)
}

/// The property list `install` writes, for `spec`.
pub(crate) fn plist(spec: &Spec) -> Result<Vec<u8>, AgentError> {
    let mut d = Dictionary::new();
    d.insert("Label".into(), Value::String(LABEL.into()));
    let mut args = vec![Value::String(spec.program.display().to_string())];
    args.extend(spec.arguments().into_iter().map(Value::String));
    d.insert("ProgramArguments".into(), Value::Array(args));
    common(&mut d, spec);
    xml(d)
}

/// The property list inside `SPFS.app/Contents/Library/LaunchAgents/`
/// for `SMAppService`. It is built once, with the app, for every user, so
/// it names nothing of one user's: the program is named relative to the
/// bundle (`BundleProgram`), the service binds its default socket itself
/// (no `Sockets` entry: launchd cannot expand `~`) and appends to the
/// user's log itself (`--log-to-file`), and no environment is recorded.
pub(crate) fn bundle_plist() -> Result<Vec<u8>, AgentError> {
    let mut d = Dictionary::new();
    d.insert("Label".into(), Value::String(LABEL.into()));
    d.insert(
        "BundleProgram".into(),
        Value::String("Contents/MacOS/spfs-fuse-macos".into()),
    );
    let args = ["spfs-fuse-macos", "service", "--always-on", "--log-to-file"];
    d.insert(
        "ProgramArguments".into(),
        Value::Array(args.iter().map(|a| Value::String((*a).into())).collect()),
    );
    d.insert(
        "AssociatedBundleIdentifiers".into(),
        Value::Array(vec![Value::String(BUNDLE_ID.into())]),
    );
    keep_alive(&mut d);
    xml(d)
}

fn domain() -> String {
    format!("gui/{}", crate::sys::user::effective_ids().0)
}

fn target() -> String {
    format!("{}/{LABEL}", domain())
}

/// Whether launchd has the agent loaded.
pub(super) fn loaded() -> Result<bool, AgentError> {
    Ok(run("launchctl", &["print", &target()])?.ok)
}

/// (loaded, pid) from `launchctl print`.
pub(super) fn state() -> Result<(bool, Option<u32>), AgentError> {
    let r = run("launchctl", &["print", &target()])?;
    if !r.ok {
        return Ok((false, None));
    }
    let pid = r
        .text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pid = "))
        .find_map(|p| p.trim().parse().ok());
    Ok((true, pid))
}

pub(super) fn bootout() -> Result<(), AgentError> {
    must("launchctl", &["bootout", &target()]).map(drop)
}

pub(super) fn bootstrap() -> Result<(), AgentError> {
    let path = plist_path().display().to_string();
    must("launchctl", &["bootstrap", &domain(), &path]).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            program: "/opt/spfs/bin/spfs-fuse-macos".into(),
            mountpoint: None,
            socket: "/Users/me/Library/Application Support/SPFS/control.sock".into(),
            log: "/Users/me/Library/Logs/spfs/service.log".into(),
            env: vec![("SPFS_STORAGE_ROOT".into(), "/Volumes/studio/repo".into())],
        }
    }

    #[test]
    fn the_plist_parses_back_with_every_key() {
        let bytes = plist(&spec()).unwrap();
        let v: Value = plist::from_bytes(&bytes).unwrap();
        let d = v.as_dictionary().unwrap();
        assert_eq!(d["Label"].as_string(), Some(LABEL));
        let args: Vec<&str> = d["ProgramArguments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "/opt/spfs/bin/spfs-fuse-macos",
                "service",
                "--always-on",
                "--socket",
                "/Users/me/Library/Application Support/SPFS/control.sock"
            ]
        );
        assert_eq!(d["RunAtLoad"].as_boolean(), Some(true));
        let keep = d["KeepAlive"].as_dictionary().unwrap();
        assert_eq!(keep["SuccessfulExit"].as_boolean(), Some(false));
        assert_eq!(d["ThrottleInterval"].as_signed_integer(), Some(10));
        assert_eq!(
            d["StandardErrorPath"].as_string(),
            Some("/Users/me/Library/Logs/spfs/service.log")
        );
        let sock = d["Sockets"].as_dictionary().unwrap()[SOCKET_NAME]
            .as_dictionary()
            .unwrap();
        assert_eq!(
            sock["SockPathName"].as_string(),
            Some("/Users/me/Library/Application Support/SPFS/control.sock")
        );
        assert_eq!(sock["SockPathMode"].as_signed_integer(), Some(0o600));
        let env = d["EnvironmentVariables"].as_dictionary().unwrap();
        assert_eq!(
            env["SPFS_STORAGE_ROOT"].as_string(),
            Some("/Volumes/studio/repo")
        );
    }

    #[test]
    fn the_plist_is_stable() {
        let text = String::from_utf8(plist(&spec()).unwrap()).unwrap();
        // UPDATE_TESTDATA=1 writes what the code makes now (then review it).
        if std::env::var_os("UPDATE_TESTDATA").is_some() {
            let p = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/agent/testdata/launchagent.plist"
            );
            std::fs::write(p, &text).unwrap();
        }
        assert_eq!(text, include_str!("testdata/launchagent.plist"));
    }

    #[test]
    fn the_bundle_plist_names_nothing_of_one_user() {
        let bytes = bundle_plist().unwrap();
        let bundle = plist::from_bytes::<Value>(&bytes).unwrap();
        let d = bundle.as_dictionary().unwrap();
        assert_eq!(
            d["BundleProgram"].as_string(),
            Some("Contents/MacOS/spfs-fuse-macos")
        );
        let args: Vec<&str> = d["ProgramArguments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_string().unwrap())
            .collect();
        assert_eq!(
            args,
            ["spfs-fuse-macos", "service", "--always-on", "--log-to-file"]
        );
        assert_eq!(d["Label"].as_string(), Some(LABEL));
        assert_eq!(d["RunAtLoad"].as_boolean(), Some(true));
        for key in ["Sockets", "StandardErrorPath", "EnvironmentVariables"] {
            assert!(!d.contains_key(key), "{key}");
        }
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            !text.contains("/Users/") && !text.contains("/home/"),
            "{text}"
        );
    }
}
