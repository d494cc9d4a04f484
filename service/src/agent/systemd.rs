//! The Linux twin of the LaunchAgent: a systemd user service and socket in
//! `~/.config/systemd/user/`, driven with `systemctl --user`. The socket
//! unit owns the control socket (the service takes it from `LISTEN_FDS`);
//! `Restart=on-failure` restarts a crashed service but not one that
//! stopped cleanly.

use std::path::PathBuf;

use super::{must, run, AgentError, Spec};

/// The units' name.
pub(crate) const UNIT: &str = "spfs-fuse-macos";

fn unit_dir() -> PathBuf {
    dirs::config_dir()
        .unwrap_or_else(|| {
            dirs::home_dir()
                .unwrap_or_else(|| PathBuf::from("/"))
                .join(".config")
        })
        .join("systemd/user")
}

/// The service unit, then the socket unit.
pub(crate) fn unit_paths() -> Vec<PathBuf> {
    let dir = unit_dir();
    vec![
        dir.join(format!("{UNIT}.service")),
        dir.join(format!("{UNIT}.socket")),
    ]
}

/// systemd's quoting of one word of `ExecStart=`.
fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@,".contains(c))
    {
        return word.to_owned();
    }
    let escaped = word
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
        .replace('$', "$$");
    format!("\"{escaped}\"")
}

/// The two unit files `install` writes, for `spec`.
pub(crate) fn units(spec: &Spec) -> Vec<(PathBuf, Vec<u8>)> {
    let mut exec = vec![quote(&spec.program.display().to_string())];
    exec.extend(spec.arguments().iter().map(|a| quote(a)));
    let mut service = format!(
        "# Written by `spfs-fuse-macos launchagent install`; removed by `uninstall`.\n\
         [Unit]\n\
         Description=SPFS runtimes at one FUSE mount\n\
         Requires={UNIT}.socket\n\
         After={UNIT}.socket\n\
         \n\
         [Service]\n\
         ExecStart={}\n\
         Restart=on-failure\n\
         RestartSec=10\n\
         StandardOutput=append:{}\n\
         StandardError=append:{}\n",
        exec.join(" "),
        spec.log.display(),
        spec.log.display(),
    );
    for (k, v) in &spec.env {
        service.push_str(&format!("Environment={}\n", quote(&format!("{k}={v}"))));
    }
    service.push_str("\n[Install]\nWantedBy=default.target\n");
    let socket = format!(
        "# Written by `spfs-fuse-macos launchagent install`; removed by `uninstall`.\n\
         [Unit]\n\
         Description=The control socket of SPFS runtimes\n\
         \n\
         [Socket]\n\
         ListenStream={}\n\
         SocketMode=0600\n\
         DirectoryMode=0700\n\
         \n\
         [Install]\n\
         WantedBy=sockets.target\n",
        spec.socket.display()
    );
    let paths = unit_paths();
    paths
        .into_iter()
        .zip([service.into_bytes(), socket.into_bytes()])
        .collect()
}

fn systemctl(args: &[&str]) -> Result<String, AgentError> {
    let mut all = vec!["--user"];
    all.extend_from_slice(args);
    must("systemctl", &all)
}

pub(super) fn reload() -> Result<(), AgentError> {
    systemctl(&["daemon-reload"]).map(drop)
}

pub(super) fn enable() -> Result<(), AgentError> {
    reload()?;
    let socket = format!("{UNIT}.socket");
    let service = format!("{UNIT}.service");
    systemctl(&["enable", &socket, &service])?;
    // A restart picks up a changed unit; a first start starts it.
    systemctl(&["restart", &socket, &service]).map(drop)
}

pub(super) fn disable() -> Result<(), AgentError> {
    let socket = format!("{UNIT}.socket");
    let service = format!("{UNIT}.service");
    systemctl(&["disable", "--now", &service, &socket]).map(drop)
}

/// (loaded, pid) from `systemctl --user show`.
pub(super) fn state() -> Result<(bool, Option<u32>), AgentError> {
    let r = run(
        "systemctl",
        &[
            "--user",
            "show",
            &format!("{UNIT}.service"),
            "--property=LoadState,ActiveState,MainPID",
        ],
    )?;
    if !r.ok {
        return Ok((false, None));
    }
    let field = |name: &str| {
        r.text
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .map(str::trim)
            .map(str::to_owned)
    };
    let loaded = field("LoadState").as_deref() == Some("loaded");
    let pid = field("MainPID")
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| *p != 0);
    Ok((loaded, pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_run_the_service_always_on_on_its_socket() {
        let spec = Spec {
            program: "/home/me/bin/spfs-fuse-macos".into(),
            mountpoint: Some("/home/me/my spfs".into()),
            socket: "/run/user/1000/spfs-fuse-macos/control.sock".into(),
            log: "/home/me/.local/state/spfs-fuse-macos/service.log".into(),
            env: vec![("SPFS_STORAGE_ROOT".into(), "/data/repo".into())],
        };
        let files = units(&spec);
        let service = String::from_utf8(files[0].1.clone()).unwrap();
        assert!(files[0].0.ends_with("systemd/user/spfs-fuse-macos.service"));
        assert!(service.contains(
            "ExecStart=/home/me/bin/spfs-fuse-macos service --always-on --mountpoint \"/home/me/my spfs\" --socket /run/user/1000/spfs-fuse-macos/control.sock\n"
        ), "{service}");
        assert!(service.contains("Environment=SPFS_STORAGE_ROOT=/data/repo\n"));
        assert!(service.contains("Restart=on-failure\n"));
        let socket = String::from_utf8(files[1].1.clone()).unwrap();
        assert!(socket.contains("ListenStream=/run/user/1000/spfs-fuse-macos/control.sock\n"));
        assert!(socket.contains("SocketMode=0600\n"));
        assert_eq!(quote("100%$"), "\"100%%$$\"");
    }
}
