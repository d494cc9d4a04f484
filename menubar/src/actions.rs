//! Doing what a click asked for. Requests go to the service; what has no
//! service to go to (settings while it is not running, always-on, the
//! file manager) is done here. Each returns a one-line error for the menu.

use std::path::{Path, PathBuf};
use std::process::Command;

use spfs_shared::settings::Settings;

use crate::client;
use crate::model::{human_size, request_for, Action, Cleanup, Service, State};

/// Where things are.
#[derive(Clone, Debug)]
pub struct Env {
    /// The service's control socket.
    pub socket: PathBuf,
    /// The `spfs-fuse-macos` command.
    pub cli: PathBuf,
    /// The settings file.
    pub settings: PathBuf,
    /// The service's log.
    pub log: PathBuf,
    /// The `spfs` command: beside this binary, else on PATH.
    pub spfs: PathBuf,
    /// The directory of this app's binaries when `spfs` is among them
    /// (the app bundle, a build directory): what "Install command line
    /// tools" links to.
    pub tools_dir: Option<PathBuf>,
    /// Where those links go (see [`crate::sys::command_line_dir`]).
    pub bin_dir: PathBuf,
}

impl Env {
    /// The per-user locations, and the command beside this binary (as in
    /// the app bundle or a build directory), else on PATH
    /// (`SPFS_FUSE_CLI` overrides).
    pub fn for_this_user() -> Env {
        let cli = std::env::var_os("SPFS_FUSE_CLI")
            .map(PathBuf::from)
            .or_else(|| {
                let beside = std::env::current_exe()
                    .ok()?
                    .with_file_name("spfs-fuse-macos");
                beside.exists().then_some(beside)
            })
            .unwrap_or_else(|| PathBuf::from("spfs-fuse-macos"));
        let tools_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_owned))
            .filter(|dir| dir.join("spfs").is_file());
        Env {
            socket: spfs_shared::paths::socket_path(),
            cli,
            settings: spfs_shared::paths::settings_path(),
            log: spfs_shared::paths::log_path(),
            spfs: tools_dir
                .as_ref()
                .map_or_else(|| PathBuf::from("spfs"), |d| d.join("spfs")),
            tools_dir,
            bin_dir: crate::sys::command_line_dir(),
        }
    }
}

/// The command-line tools this app carries: (the binary, its link).
pub fn command_line_links(env: &Env) -> Vec<(PathBuf, PathBuf)> {
    let Some(dir) = &env.tools_dir else {
        return Vec::new();
    };
    ["spfs", "spfs-fuse-macos"]
        .iter()
        .map(|b| (dir.join(b), env.bin_dir.join(b)))
        .filter(|(target, _)| target.is_file())
        .collect()
}

/// Whether every tool is linked where the user's shells find it; `None`
/// when this app carries none (run from elsewhere).
pub fn command_line_installed(env: &Env) -> Option<bool> {
    let links = command_line_links(env);
    if links.is_empty() {
        return None;
    }
    Some(
        links
            .iter()
            .all(|(target, link)| std::fs::read_link(link).is_ok_and(|t| &t == target)),
    )
}

/// Runs `spfs-fuse-macos ARGS`; its first line of error output on failure.
fn cli(env: &Env, args: &[&str]) -> Result<String, String> {
    let out = Command::new(&env.cli)
        .args(args)
        .env("SPFS_FUSE_SOCKET", &env.socket)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", env.cli.display()))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("failed")
        .trim_start_matches("error: ")
        .to_owned();
    Err(line)
}

/// Whether always-on is installed: the bundle's login item on macOS
/// inside SPFS.app, else the LaunchAgent or systemd unit the command
/// manages. `None` if that cannot be told.
pub fn always_on(env: &Env) -> Option<bool> {
    #[cfg(target_os = "macos")]
    if crate::sys::in_app_bundle() {
        return Some(crate::sys::macos::registered());
    }
    let json = cli(env, &["launchagent", "status", "--json"]).ok()?;
    let v: serde_json::Value = serde_json::from_str(&json).ok()?;
    v.get("installed")?.as_bool()
}

fn set_always_on(env: &Env, on: bool) -> Result<(), String> {
    #[cfg(target_os = "macos")]
    if crate::sys::in_app_bundle() {
        return crate::sys::macos::set(on);
    }
    cli(
        env,
        &["launchagent", if on { "install" } else { "uninstall" }],
    )
    .map(drop)
}

/// Changes a setting in the file directly (no service to ask).
fn set_in_file(path: &Path, key: &str, value: &str) -> Result<(), String> {
    let next = Settings::load(path)
        .and_then(|s| s.with(key, value))
        .map_err(|e| e.to_string())?;
    next.save(path).map_err(|e| e.to_string())
}

fn open_log(env: &Env) -> Result<(), String> {
    if !env.log.exists() {
        return Err(format!("no log yet at {}", env.log.display()));
    }
    crate::sys::reveal(&env.log)
}

/// What an action gives back besides success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Performed {
    /// Nothing more.
    Done,
    /// What "Clean up repository…" found, or removed.
    Cleanup(Cleanup),
}

/// The local repository, as `spfs` finds it (its configuration and
/// `SPFS_*` variables).
fn local_repository() -> Result<spfs_repo::FsRepository, String> {
    let config = spfs_repo::Config::load().map_err(|e| e.to_string())?;
    spfs_repo::FsRepository::open(&config.storage.root).map_err(|e| e.to_string())
}

/// `3 objects and 1 payload (12.4 kB)`.
fn cleanup_summary(plan: &spfs_repo::clean::Plan) -> String {
    let count = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    format!(
        "{} and {} ({})",
        count(plan.objects.len(), "object"),
        count(plan.payloads.len(), "payload"),
        human_size(plan.bytes())
    )
}

/// What a clean of the local repository would remove now (as `spfs clean
/// --dry-run`).
fn look_for_cleanup() -> Result<Cleanup, String> {
    let repo = local_repository()?;
    let plan = spfs_repo::clean::plan(&repo, spfs_repo::clean::GRACE).map_err(|e| e.to_string())?;
    Ok(Cleanup {
        removable: !plan.objects.is_empty() || !plan.payloads.is_empty(),
        summary: cleanup_summary(&plan),
        young: plan.young,
        done: false,
    })
}

/// Removes what nothing uses now (planned again: a tag made since the
/// menu looked keeps what it names), as `spfs clean -y`.
fn cleanup() -> Result<Cleanup, String> {
    let repo = local_repository()?;
    let plan = spfs_repo::clean::plan(&repo, spfs_repo::clean::GRACE).map_err(|e| e.to_string())?;
    let plan = spfs_repo::clean::execute(&repo, &plan, spfs_repo::clean::GRACE)
        .map_err(|e| e.to_string())?;
    Ok(Cleanup {
        summary: cleanup_summary(&plan),
        young: plan.young,
        removable: false,
        done: true,
    })
}

/// Does `action` (all but copying a name and quitting, which the GUI
/// does); an error to show.
pub fn perform(action: &Action, env: &Env, state: &State) -> Result<Performed, String> {
    let running = matches!(state.service, Service::Running(_));
    if let Some(request) = request_for(action) {
        if running {
            return client::call(&env.socket, request)
                .map(|_| Performed::Done)
                .map_err(|e| e.to_string());
        }
        return match action {
            Action::IdleTimeout(m) => {
                set_in_file(&env.settings, "idle_timeout_minutes", &m.to_string())
            }
            Action::Reporting(on) => set_in_file(&env.settings, "error_reporting", &on.to_string()),
            _ => Err("the service is not running".into()),
        }
        .map(|()| Performed::Done);
    }
    match action {
        Action::LookForCleanup => return look_for_cleanup().map(Performed::Cleanup),
        Action::Cleanup => return cleanup().map(Performed::Cleanup),
        _ => {}
    }
    match action {
        Action::Reveal(p) => crate::sys::reveal(p),
        Action::OpenShell(name) => crate::sys::open_terminal(&[
            env.spfs.display().to_string(),
            "join".to_owned(),
            name.clone(),
        ]),
        Action::InstallCommandLine => crate::sys::install_links(&command_line_links(env)),
        Action::AlwaysOn(on) => set_always_on(env, *on),
        Action::StartService => cli(env, &["start"]).map(drop),
        Action::OpenLog => open_log(env),
        _ => Ok(()),
    }
    .map(|()| Performed::Done)
}
