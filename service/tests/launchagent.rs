//! `launchagent install | uninstall | status | plist`, with recording
//! stand-ins for `launchctl` and `systemctl` on PATH: the calls each
//! command makes, in order, and the files it leaves.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::service::*;

/// A stand-in that logs its arguments and keeps a "loaded" flag the way
/// the real tool would.
const LAUNCHCTL: &str = r#"#!/bin/sh
echo "launchctl $*" >> "$STANDIN_LOG"
case "$1" in
  print) [ -e "$STANDIN_STATE" ] && { echo "state = running"; echo "pid = 4242"; exit 0; }
         echo "Could not find service" >&2; exit 113 ;;
  bootstrap) [ -e "$STANDIN_STATE" ] && { echo "Bootstrap failed: 5: Input/output error" >&2; exit 5; }
         [ -n "$STANDIN_FAIL" ] && { echo "$STANDIN_FAIL" >&2; exit 1; }
         touch "$STANDIN_STATE" ;;
  bootout) rm -f "$STANDIN_STATE" ;;
esac
"#;

const SYSTEMCTL: &str = r#"#!/bin/sh
echo "systemctl $*" >> "$STANDIN_LOG"
case "$2" in
  show) if [ -e "$STANDIN_STATE" ]; then printf 'LoadState=loaded\nActiveState=active\nMainPID=4343\n';
        else printf 'LoadState=not-found\nActiveState=inactive\nMainPID=0\n'; fi ;;
  enable) touch "$STANDIN_STATE" ;;
  disable) rm -f "$STANDIN_STATE" ;;
esac
"#;

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for (name, script) in [("launchctl", LAUNCHCTL), ("systemctl", SYSTEMCTL)] {
            let p = bin.join(name);
            std::fs::write(&p, script).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Sandbox { dir }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn command(&self, kind: &str, sock: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap()
        );
        c.env_clear()
            .env("PATH", path)
            .env("HOME", self.home())
            .env("SPFS_FUSE_AGENT_KIND", kind)
            .env("SPFS_FUSE_SOCKET", sock)
            .env("SPFS_STORAGE_ROOT", "/studio/repo")
            .env("STANDIN_LOG", self.dir.path().join("calls.log"))
            .env("STANDIN_STATE", self.dir.path().join("loaded"))
            .args(["launchagent"])
            .args(args);
        c
    }

    fn agent(&self, kind: &str, args: &[&str]) -> Output {
        let sock = self.home().join("run/control.sock");
        self.command(kind, &sock, args).output().unwrap()
    }

    /// The calls logged since the last look.
    fn calls(&self) -> Vec<String> {
        let p = self.dir.path().join("calls.log");
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let _ = std::fs::remove_file(&p);
        let uid = spfs_fuse_macos::sys::user::effective_ids().0;
        text.lines()
            .map(|l| l.replace(&format!("gui/{uid}"), "gui/UID"))
            .map(|l| l.replace(&self.home().display().to_string(), "HOME"))
            .collect()
    }
}

#[test]
fn launchd_install_twice_uninstall_twice() {
    let sb = Sandbox::new();
    let plist = sb
        .home()
        .join("Library/LaunchAgents/ai.spk.spfs-fuse-macos.plist");
    let o = sb.agent("launchd", &["install"]);
    assert!(text(&o).contains("installed the LaunchAgent"));
    assert_eq!(
        sb.calls(),
        [
            "launchctl print gui/UID/ai.spk.spfs-fuse-macos",
            "launchctl bootstrap gui/UID HOME/Library/LaunchAgents/ai.spk.spfs-fuse-macos.plist",
        ]
    );
    let written = std::fs::read_to_string(&plist).unwrap();
    assert!(written.contains("<string>ai.spk.spfs-fuse-macos</string>"));
    assert!(written.contains("<string>--always-on</string>"));
    assert!(written.contains("<key>SPFS_STORAGE_ROOT</key>"));
    assert!(written.contains(&format!("{}/run/control.sock", sb.home().display())));
    // again: the older copy is booted out first
    assert!(sb.agent("launchd", &["install"]).status.success());
    assert_eq!(
        sb.calls(),
        [
            "launchctl print gui/UID/ai.spk.spfs-fuse-macos",
            "launchctl bootout gui/UID/ai.spk.spfs-fuse-macos",
            "launchctl bootstrap gui/UID HOME/Library/LaunchAgents/ai.spk.spfs-fuse-macos.plist",
        ]
    );
    let st = text(&sb.agent("launchd", &["status"]));
    assert!(
        st.contains("installed, loaded, running as pid 4242"),
        "{st}"
    );
    sb.calls();

    assert!(text(&sb.agent("launchd", &["uninstall"])).contains("removed the LaunchAgent"));
    assert_eq!(
        sb.calls(),
        [
            "launchctl print gui/UID/ai.spk.spfs-fuse-macos",
            "launchctl bootout gui/UID/ai.spk.spfs-fuse-macos",
        ]
    );
    assert!(!plist.exists());
    assert!(text(&sb.agent("launchd", &["uninstall"])).contains("not installed"));
    assert_eq!(
        sb.calls(),
        ["launchctl print gui/UID/ai.spk.spfs-fuse-macos"]
    );
    let st = text(&sb.agent("launchd", &["status"]));
    assert!(st.contains("not installed, not loaded"), "{st}");
}

#[test]
fn a_launchctl_failure_is_one_line_with_its_own_message() {
    let sb = Sandbox::new();
    let o = sb
        .command("launchd", &sb.home().join("s.sock"), &["install"])
        .env(
            "STANDIN_FAIL",
            "Bootstrap failed: 125: Domain does not support specified action",
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("launchctl bootstrap")
            && err.contains("Bootstrap failed: 125: Domain does not support specified action"),
        "{err}"
    );
}

#[test]
fn systemd_install_twice_uninstall_twice() {
    let sb = Sandbox::new();
    let units = sb.home().join(".config/systemd/user");
    assert!(sb.agent("systemd", &["install"]).status.success());
    let expected_install = [
        "systemctl --user daemon-reload",
        "systemctl --user enable spfs-fuse-macos.socket spfs-fuse-macos.service",
        "systemctl --user restart spfs-fuse-macos.socket spfs-fuse-macos.service",
    ];
    assert_eq!(sb.calls(), expected_install);
    let service = std::fs::read_to_string(units.join("spfs-fuse-macos.service")).unwrap();
    assert!(
        service.contains(" service --always-on --socket "),
        "{service}"
    );
    let socket = std::fs::read_to_string(units.join("spfs-fuse-macos.socket")).unwrap();
    assert!(socket.contains(&format!(
        "ListenStream={}/run/control.sock",
        sb.home().display()
    )));
    assert!(sb.agent("systemd", &["install"]).status.success());
    assert_eq!(sb.calls(), expected_install);
    let st = text(&sb.agent("systemd", &["status"]));
    assert!(
        st.contains("installed, loaded, running as pid 4343"),
        "{st}"
    );
    sb.calls();

    assert!(sb.agent("systemd", &["uninstall"]).status.success());
    assert_eq!(
        sb.calls(),
        [
            "systemctl --user show spfs-fuse-macos.service --property=LoadState,ActiveState,MainPID",
            "systemctl --user disable --now spfs-fuse-macos.service spfs-fuse-macos.socket",
            "systemctl --user daemon-reload",
        ]
    );
    assert!(!units.join("spfs-fuse-macos.service").exists());
    assert!(text(&sb.agent("systemd", &["uninstall"])).contains("not installed"));
    assert_eq!(
        sb.calls(),
        ["systemctl --user show spfs-fuse-macos.service --property=LoadState,ActiveState,MainPID"]
    );
}

#[test]
fn install_over_a_running_service_hands_it_over_or_says_why_not() {
    let sb = Sandbox::new();
    let svc = Service::start("repo");
    // A runtime is running: refused, nothing written or called.
    let (_holder, _) = spawn_in_base(&svc, "echo up; exec sleep 30");
    let o = sb
        .command("launchd", &svc.sock, &["install"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("has 1 runtime(s)") && err.contains("install again"),
        "{err}"
    );
    assert!(sb.calls().is_empty());
    assert!(text(&svc.cli(&["status"])).contains("service running"));
    drop(_holder);
    wait_runtimes_gone(&svc);
    // No runtime: the service stops, then launchd is asked to start it.
    let o = sb
        .command("launchd", &svc.sock, &["install"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!svc.sock.exists(), "the old service still runs");
    assert!(!is_mounted(&svc.mnt));
    assert_eq!(
        sb.calls().last().map(String::as_str),
        Some("launchctl bootstrap gui/UID HOME/Library/LaunchAgents/ai.spk.spfs-fuse-macos.plist")
    );
}

fn wait_runtimes_gone(svc: &Service) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !text(&svc.cli(&["runtime", "ls"])).contains("no runtimes") {
        assert!(
            std::time::Instant::now() < deadline,
            "the runtime did not end"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn plist_prints_the_same_parseable_plist_on_any_os() {
    let sb = Sandbox::new();
    let a = text(&sb.agent("systemd", &["plist"]));
    let b = text(&sb.agent("systemd", &["plist"]));
    assert_eq!(a, b);
    assert!(a.starts_with("<?xml"), "{a}");
    assert!(a.contains("<key>KeepAlive</key>") && a.contains("<key>Sockets</key>"));
    assert!(sb.calls().is_empty(), "plist runs nothing");
    let bundle = text(&sb.agent("launchd", &["plist", "--bundle"]));
    assert!(bundle.contains("<key>BundleProgram</key>"));
}
