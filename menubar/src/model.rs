//! The menu bar's decisions, kept pure so they are tested without a GUI:
//! what the service said ([`Snapshot`]) plus what the app knows
//! ([`State`]) → the menu to show ([`menu`]); a click → what to do
//! ([`action_for`], [`request_for`]).

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use spfs_shared::protocol::{
    BackendInfo, Event, IdleTimeoutSource, Request, RuntimeInfo, ServiceStatus, SettingsInfo,
};
use spfs_shared::settings::Settings;

/// The idle timeouts the menu offers, in minutes (0 = never).
pub const IDLE_CHOICES: [u32; 6] = [0, 5, 15, 30, 60, 120];

/// What a running service told us, kept current by its events.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Its status when asked.
    pub status: ServiceStatus,
    /// Its runtimes (the user's), oldest first.
    pub runtimes: Vec<RuntimeInfo>,
    /// Its settings.
    pub settings: SettingsInfo,
    /// When `status.lifecycle` was current (its countdown runs from there).
    pub lifecycle_at: Instant,
}

impl Snapshot {
    /// Applies a subscription event; `true` if the status should be asked
    /// again (the settings changed what the status says).
    pub fn apply(&mut self, event: Event, now: Instant) -> bool {
        match event {
            Event::Started { runtime } | Event::Updated { runtime } => {
                match self.runtimes.iter_mut().find(|r| r.id == runtime.id) {
                    Some(r) => *r = runtime,
                    None => self.runtimes.push(runtime),
                }
                self.runtimes.sort_by_key(|r| r.id);
                self.status.runtimes = self.runtimes.len();
                false
            }
            Event::Ended { id, .. } => {
                self.runtimes.retain(|r| r.id != id);
                self.status.runtimes = self.runtimes.len();
                false
            }
            Event::Settings { settings } => {
                self.settings = settings;
                true
            }
            Event::Lifecycle { lifecycle } => {
                self.status.lifecycle = lifecycle;
                self.lifecycle_at = now;
                false
            }
        }
    }

    /// Seconds until the idle service quits, counted down from the last
    /// lifecycle news; `None` if it is busy or never quits.
    pub fn quits_in(&self, now: Instant) -> Option<u64> {
        let left = self.status.lifecycle.exits_in_secs?;
        Some(left.saturating_sub(now.saturating_duration_since(self.lifecycle_at).as_secs()))
    }
}

/// The service, as far as the app can tell.
#[derive(Clone, Debug, PartialEq)]
pub enum Service {
    /// It answers.
    Running(Box<Snapshot>),
    /// Nobody answers on its socket.
    NotRunning,
    /// Something else went wrong (permission, protocol).
    Error(String),
}

/// Everything the menu is made from.
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// The service.
    pub service: Service,
    /// Whether always-on is installed (`None`: could not tell).
    pub always_on: Option<bool>,
    /// The settings file (what counts when the service is not running).
    pub settings: Settings,
    /// A reporting address is configured (the setting or the environment).
    pub reporting_address: bool,
    /// The last action's failure, shown until the next action.
    pub notice: Option<String>,
    /// This app's version.
    pub version: String,
    /// The service's log file.
    pub log: PathBuf,
    /// Whether this app's command-line tools are linked on PATH (`None`:
    /// it carries none).
    pub command_line: Option<bool>,
    /// What "Clean up repository…" found, once asked.
    pub cleanup: Option<Cleanup>,
}

/// What a clean of the local repository would remove, or did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cleanup {
    /// For the menu: `3 objects and 1 payload (12.4 kB)`.
    pub summary: String,
    /// Files nothing uses but kept for being new (the 15-minute rule).
    pub young: usize,
    /// Something to remove (false once removed, or when nothing is).
    pub removable: bool,
    /// The summary says what was removed, not what would be.
    pub done: bool,
}

/// How the icon looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IconState {
    /// Running, with this many runtimes (> 0).
    Runtimes(usize),
    /// Running, no runtime.
    Idle,
    /// Not running.
    NotRunning,
    /// An error to see.
    Error,
}

/// One item of the menu.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// Text that cannot be clicked.
    Label(String),
    /// A command (`enabled` false: greyed out).
    Action {
        /// What a click means (see [`action_for`]).
        id: String,
        /// Its text.
        text: String,
        /// Clickable.
        enabled: bool,
    },
    /// A check box.
    Check {
        /// What a click means.
        id: String,
        /// Its text.
        text: String,
        /// Checked.
        checked: bool,
        /// Clickable.
        enabled: bool,
    },
    /// A submenu.
    Submenu {
        /// Its title.
        text: String,
        /// What it holds.
        items: Vec<Item>,
    },
    /// A line between groups.
    Separator,
}

fn action(id: impl Into<String>, text: impl Into<String>, enabled: bool) -> Item {
    Item::Action {
        id: id.into(),
        text: text.into(),
        enabled,
    }
}

/// Bytes for people, as Finder counts them: `512 B`, `12.4 MB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1000.0;
    let mut unit = 0;
    while v >= 999.95 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS.get(unit).unwrap_or(&"PB"))
}

/// A duration for people: `under a minute`, `12 min`, `2 h 5 min`, `3 d`
/// (minutes at most, so a menu left open stays right with one update a
/// minute).
pub fn human_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => "under a minute".to_owned(),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 if s % 3600 < 60 => format!("{} h", s / 3600),
        3600..=86_399 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d", s / 86_400),
    }
}

/// Minutes, rounded up, for a countdown: `quits in 12 min`.
fn countdown(secs: u64) -> String {
    if secs < 60 {
        "less than a minute".to_owned()
    } else {
        format!("{} min", secs.div_ceil(60))
    }
}

/// An env spec in short form: digests cut to 8 characters, at most 40
/// characters in all.
pub fn short_spec(spec: &str) -> String {
    let parts: Vec<String> = spec
        .split('+')
        .map(|p| {
            let digest_like = p.len() >= 52
                && p.chars()
                    .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c) || c == '=');
            if digest_like {
                p[..8].to_owned()
            } else {
                p.to_owned()
            }
        })
        .collect();
    let s = spfs_shared::display::escape_control(&parts.join("+")).into_owned();
    if s.chars().count() > 40 {
        let cut: String = s.chars().take(39).collect();
        format!("{cut}…")
    } else {
        s
    }
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// The first line of the menu.
pub fn status_line(state: &State, now: Instant) -> String {
    match &state.service {
        Service::NotRunning => "SPFS not running".to_owned(),
        Service::Error(e) => format!("SPFS error: {e}"),
        Service::Running(s) if !s.runtimes.is_empty() => {
            format!("SPFS running · {}", plural(s.runtimes.len(), "runtime"))
        }
        Service::Running(s) => match s.quits_in(now) {
            Some(left) => format!("SPFS idle · quits in {}", countdown(left)),
            None if s.status.lifecycle.always_on => "SPFS idle · always on".to_owned(),
            None => "SPFS idle".to_owned(),
        },
    }
}

/// Seconds until [`human_age`] of `age_secs` reads differently.
fn age_changes_in(age_secs: u64) -> u64 {
    if age_secs < 86_400 {
        60 - age_secs % 60
    } else {
        86_400 - age_secs % 86_400
    }
}

/// Seconds until the countdown of `left` seconds reads differently; `None`
/// under a minute ("less than a minute" until the service quits and says so).
fn countdown_changes_in(left: u64) -> Option<u64> {
    match left {
        0..=59 => None,
        60 => Some(1),
        _ => Some(left - 60 * (left.div_ceil(60) - 1)),
    }
}

/// How long until the menu reads differently by itself — the idle
/// countdown's minute or a runtime's age changes; `None` when nothing
/// does. The app sleeps until then: at most one wake-up a minute.
pub fn next_change(state: &State, now: SystemTime, instant: Instant) -> Option<Duration> {
    let Service::Running(s) = &state.service else {
        return None;
    };
    let countdown = if s.runtimes.is_empty() {
        s.quits_in(instant).and_then(countdown_changes_in)
    } else {
        None
    };
    let ages = s.runtimes.iter().map(|rt| {
        let created = UNIX_EPOCH + Duration::from_secs(rt.created_unix);
        age_changes_in(now.duration_since(created).unwrap_or_default().as_secs())
    });
    let secs = countdown.into_iter().chain(ages).min()?;
    // Just past the boundary, so the new minute is what is shown.
    Some(Duration::from_secs(secs) + Duration::from_millis(200))
}

/// How the icon should look.
pub fn icon_state(state: &State) -> IconState {
    if state.notice.is_some() {
        return IconState::Error;
    }
    match &state.service {
        Service::Running(s) if !s.runtimes.is_empty() => IconState::Runtimes(s.runtimes.len()),
        Service::Running(_) => IconState::Idle,
        Service::NotRunning => IconState::NotRunning,
        Service::Error(_) => IconState::Error,
    }
}

/// The icon's title on macOS: the number of runtimes, when there are any.
pub fn icon_title(state: &State) -> Option<String> {
    match icon_state(state) {
        IconState::Runtimes(n) => Some(n.to_string()),
        _ => None,
    }
}

fn runtime_menu(rt: &RuntimeInfo, now: SystemTime) -> Item {
    let created = UNIX_EPOCH + Duration::from_secs(rt.created_unix);
    let age = human_age(now.duration_since(created).unwrap_or_default());
    let kind = if rt.durable {
        format!(
            "durable · edits {} ({}), kept when it stops",
            human_size(rt.scratch_bytes),
            plural(rt.scratch_files as usize, "file")
        )
    } else if rt.editable {
        format!(
            "editable · scratch {} ({})",
            human_size(rt.scratch_bytes),
            plural(rt.scratch_files as usize, "file")
        )
    } else {
        "read-only".to_owned()
    };
    // Names and specs come from records anyone can write: shown escaped.
    let name = spfs_shared::display::escape_control(&rt.name);
    let mut title = if rt.editable {
        format!(
            "{} — {} · {}",
            name,
            short_spec(&rt.env_spec),
            human_size(rt.scratch_bytes)
        )
    } else {
        format!("{} — {}", name, short_spec(&rt.env_spec))
    };
    let pulling = rt.fetching.filter(|f| f.in_flight > 0);
    if pulling.is_some() {
        title.push_str(" · pulling");
    }
    let mut items = vec![
        Item::Label(format!("Environment: {}", short_spec(&rt.env_spec))),
        Item::Label(kind),
        Item::Label(if age.starts_with("under") {
            "Started under a minute ago".to_owned()
        } else {
            format!("Started {age} ago")
        }),
    ];
    if let Some(f) = rt
        .fetching
        .filter(|f| f.in_flight + f.fetched + f.failed > 0)
    {
        let mut text = if f.in_flight > 0 {
            format!(
                "Pulling {} from the studio · {} fetched ({})",
                plural(f.in_flight as usize, "file"),
                f.fetched,
                human_size(f.bytes)
            )
        } else {
            format!(
                "Fetched {} ({}) from the studio",
                plural(f.fetched as usize, "file"),
                human_size(f.bytes)
            )
        };
        if f.failed > 0 {
            text.push_str(&format!(" · {} failed", f.failed));
        }
        items.push(Item::Label(text));
    }
    items.extend([
        Item::Separator,
        action(format!("shell/{}", rt.name), "Open shell here", true),
        action(format!("stop/{}", rt.name), "Stop", true),
    ]);
    if rt.editable && rt.scratch_dir.is_some() {
        items.push(action(
            format!("reveal/{}", rt.name),
            "Reveal scratch",
            true,
        ));
    }
    items.push(action(format!("copy/{}", rt.name), "Copy name", true));
    Item::Submenu { text: title, items }
}

/// "Clean up repository…", and once it looked, what it found (or
/// removed) and the item that removes it.
pub fn cleanup_items(state: &State) -> Vec<Item> {
    let mut items = vec![action("cleanup", "Clean up repository…", true)];
    if let Some(c) = &state.cleanup {
        let mut text = match (c.done, c.removable) {
            (true, _) => format!("Removed {}", c.summary),
            (false, true) => format!("Would remove {}", c.summary),
            (false, false) => "Nothing to remove".to_owned(),
        };
        if c.young > 0 {
            text.push_str(&format!(
                "; {} newer than 15 minutes kept",
                plural(c.young, "file")
            ));
        }
        items.push(Item::Label(text));
        if c.removable {
            items.push(action("cleanup-now", "Remove them", true));
        }
    }
    items
}

/// The idle timeout the menu shows as checked, in minutes.
fn idle_minutes(state: &State) -> u32 {
    match &state.service {
        Service::Running(s) => s.settings.settings.idle_timeout_minutes,
        _ => state.settings.idle_timeout_minutes,
    }
}

fn reporting_on(state: &State) -> bool {
    match &state.service {
        Service::Running(s) => s.settings.settings.error_reporting,
        _ => state.settings.error_reporting,
    }
}

/// The menu for `state` at `now` (ages) and `instant` (countdowns).
pub fn menu(state: &State, now: SystemTime, instant: Instant) -> Vec<Item> {
    let mut items = vec![Item::Label(status_line(state, instant))];
    if let Service::Running(s) = &state.service {
        let backend = s
            .status
            .backend
            .as_ref()
            .map_or_else(|| "FUSE".to_owned(), BackendInfo::summary);
        items.push(Item::Label(format!("{} · {backend}", s.status.mountpoint)));
    }
    if let Some(n) = &state.notice {
        items.push(Item::Label(format!("⚠ {n}")));
    }
    items.push(Item::Separator);
    if let Service::Running(s) = &state.service {
        if s.runtimes.is_empty() {
            items.push(Item::Label("No runtimes".to_owned()));
        }
        for rt in &s.runtimes {
            items.push(runtime_menu(rt, now));
        }
        items.push(Item::Separator);
    }
    items.push(Item::Check {
        id: "always-on".into(),
        text: "Start at login (always on)".into(),
        checked: state.always_on == Some(true),
        enabled: state.always_on.is_some(),
    });
    let current = idle_minutes(state);
    let mut idle: Vec<Item> = IDLE_CHOICES
        .iter()
        .map(|&m| Item::Check {
            id: format!("idle/{m}"),
            text: if m == 0 {
                "Never".into()
            } else {
                format!("{m} minutes")
            },
            checked: m == current,
            enabled: true,
        })
        .collect();
    if !IDLE_CHOICES.contains(&current) {
        idle.push(Item::Check {
            id: format!("idle/{current}"),
            text: format!("{current} minutes"),
            checked: true,
            enabled: true,
        });
    }
    if let Service::Running(s) = &state.service {
        match s.settings.idle_timeout_source {
            IdleTimeoutSource::Setting => {}
            IdleTimeoutSource::Environment => {
                idle.push(Item::Label("(overridden by SPFS_FUSE_IDLE_TIMEOUT)".into()))
            }
            IdleTimeoutSource::AlwaysOn => {
                idle.push(Item::Label("(always on: never quits)".into()))
            }
        }
    }
    items.push(Item::Submenu {
        text: "Quit when idle after".into(),
        items: idle,
    });
    items.push(Item::Check {
        id: "reporting".into(),
        text: "Send error reports".into(),
        checked: reporting_on(state) && state.reporting_address,
        enabled: state.reporting_address,
    });
    if !state.reporting_address {
        items.push(Item::Label(
            "  (no reporting address: set sentry_dsn or SPFS_SENTRY_DSN)".into(),
        ));
    }
    items.push(Item::Separator);
    match &state.service {
        Service::Running(_) => items.push(action("stop-service", "Stop service", true)),
        _ => items.push(action("start", "Start service", true)),
    }
    items.extend(cleanup_items(state));
    match state.command_line {
        Some(false) => items.push(action(
            "install-cli",
            "Install command line tools (spfs)…",
            true,
        )),
        Some(true) => items.push(Item::Label("Command line tools installed (spfs)".into())),
        None => {}
    }
    items.push(action("log", "Open log", true));
    items.push(Item::Label(format!("SPFS {}", state.version)));
    items.push(action("quit", "Quit", true));
    items
}

/// What a click asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Stop this runtime.
    StopRuntime(String),
    /// Show this runtime's scratch directory in the file manager.
    Reveal(PathBuf),
    /// Put this runtime's name on the clipboard.
    CopyName(String),
    /// Open a terminal in this runtime (`spfs join NAME`).
    OpenShell(String),
    /// Link the command-line tools where the user's shells find them.
    InstallCommandLine,
    /// Find what a clean of the local repository would remove.
    LookForCleanup,
    /// Remove it.
    Cleanup,
    /// Install (true) or remove the always-on agent.
    AlwaysOn(bool),
    /// Set the idle timeout, in minutes.
    IdleTimeout(u32),
    /// Turn error reporting on or off.
    Reporting(bool),
    /// Start the service.
    StartService,
    /// Stop the service.
    StopService,
    /// Open the service's log.
    OpenLog,
    /// Quit the app.
    Quit,
}

fn runtime<'a>(state: &'a State, name: &str) -> Option<&'a RuntimeInfo> {
    match &state.service {
        Service::Running(s) => s.runtimes.iter().find(|r| r.name == name),
        _ => None,
    }
}

/// What clicking item `id` means in `state` (a check box toggles).
pub fn action_for(id: &str, state: &State) -> Option<Action> {
    let (kind, arg) = id.split_once('/').unwrap_or((id, ""));
    Some(match kind {
        "stop" => Action::StopRuntime(runtime(state, arg)?.name.clone()),
        "reveal" => Action::Reveal(PathBuf::from(runtime(state, arg)?.scratch_dir.clone()?)),
        "copy" => Action::CopyName(runtime(state, arg)?.name.clone()),
        "shell" => Action::OpenShell(runtime(state, arg)?.name.clone()),
        "install-cli" if state.command_line == Some(false) => Action::InstallCommandLine,
        "cleanup" => Action::LookForCleanup,
        "cleanup-now" if state.cleanup.as_ref().is_some_and(|c| c.removable) => Action::Cleanup,
        "always-on" => Action::AlwaysOn(state.always_on != Some(true)),
        "idle" => Action::IdleTimeout(arg.parse().ok()?),
        "reporting" if state.reporting_address => Action::Reporting(!reporting_on(state)),
        "start" => Action::StartService,
        "stop-service" => Action::StopService,
        "log" => Action::OpenLog,
        "quit" => Action::Quit,
        _ => return None,
    })
}

/// The control request an action is, when it is one.
pub fn request_for(action: &Action) -> Option<Request> {
    Some(match action {
        Action::StopRuntime(name) => Request::StopRuntime {
            name: name.clone(),
            force: false,
        },
        Action::IdleTimeout(m) => Request::SetSetting {
            key: "idle_timeout_minutes".into(),
            value: m.to_string(),
        },
        Action::Reporting(on) => Request::SetSetting {
            key: "error_reporting".into(),
            value: on.to_string(),
        },
        Action::StopService => Request::Shutdown,
        _ => return None,
    })
}

/// The menu as indented text (for `--print-menu`).
pub fn render(items: &[Item]) -> String {
    let mut out = String::new();
    render_into(items, 0, &mut out);
    out
}

fn render_into(items: &[Item], depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    for item in items {
        match item {
            Item::Label(t) => out.push_str(&format!("{pad}{t}\n")),
            Item::Separator => out.push_str(&format!("{pad}---\n")),
            Item::Action { text, enabled, .. } => {
                let grey = if *enabled { "" } else { " (disabled)" };
                out.push_str(&format!("{pad}{text}{grey}\n"));
            }
            Item::Check {
                text,
                checked,
                enabled,
                ..
            } => {
                let mark = if *checked { "[x]" } else { "[ ]" };
                let grey = if *enabled { "" } else { " (disabled)" };
                out.push_str(&format!("{pad}{mark} {text}{grey}\n"));
            }
            Item::Submenu { text, items } => {
                out.push_str(&format!("{pad}{text} >\n"));
                render_into(items, depth + 1, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spfs_shared::protocol::{Lifecycle, ReportingStatus};

    fn rt(id: u64, name: &str, editable: bool, bytes: u64, created: u64) -> RuntimeInfo {
        RuntimeInfo {
            name: name.into(),
            id,
            uid: 501,
            root_pid: 100 + id as u32,
            env_spec: "fixture/base+fixture/top".into(),
            stack: vec![],
            editable,
            created_unix: created,
            entries: 10,
            scratch_bytes: bytes,
            scratch_files: if bytes > 0 { 3 } else { 0 },
            scratch_dir: editable.then(|| format!("/scratch/{name}")),
            durable: false,
            running: true,
            fetching: None,
        }
    }

    fn snapshot(runtimes: Vec<RuntimeInfo>, exits_in: Option<u64>) -> Snapshot {
        Snapshot {
            status: ServiceStatus {
                version: "0.1.0".into(),
                protocol: 1,
                pid: 42,
                mountpoint: "/spfs".into(),
                runtimes: runtimes.len(),
                uptime_secs: 10,
                lifecycle: Lifecycle {
                    idle_timeout_secs: Some(1800),
                    idle_secs: exits_in.map(|_| 60),
                    exits_in_secs: exits_in,
                    always_on: false,
                    socket_activated: false,
                },
                reporting: ReportingStatus::default(),
                backend: Some(BackendInfo {
                    name: "macfuse".into(),
                    title: "macFUSE (kernel extension)".into(),
                    version: Some("5.1.2".into()),
                    caller_pid: true,
                    ..BackendInfo::default()
                }),
            },
            runtimes,
            settings: SettingsInfo {
                settings: Settings::default(),
                path: "/s.json".into(),
                idle_timeout_secs: Some(1800),
                idle_timeout_source: IdleTimeoutSource::Setting,
            },
            lifecycle_at: Instant::now(),
        }
    }

    fn state(service: Service) -> State {
        State {
            service,
            always_on: Some(false),
            settings: Settings::default(),
            reporting_address: true,
            notice: None,
            version: "0.1.0".into(),
            log: "/log".into(),
            command_line: None,
            cleanup: None,
        }
    }

    #[test]
    fn sizes_ages_and_specs() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(12_400_000), "12.4 MB");
        assert_eq!(human_size(1_000), "1.0 kB");
        assert_eq!(human_size(999_999), "1.0 MB");
        assert_eq!(human_size(3_200_000_000), "3.2 GB");
        assert_eq!(human_age(Duration::from_secs(45)), "under a minute");
        assert_eq!(human_age(Duration::from_secs(180)), "3 min");
        assert_eq!(human_age(Duration::from_secs(7500)), "2 h 5 min");
        assert_eq!(human_age(Duration::from_secs(7200)), "2 h");
        assert_eq!(human_age(Duration::from_secs(3 * 86_400 + 5)), "3 d");
        let d = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGHIJKLMNOPQRSTUV====";
        assert_eq!(short_spec(&format!("{d}+org/tag")), "ABCDEFGH+org/tag");
        assert_eq!(short_spec(&"x".repeat(60)).chars().count(), 40);
    }

    #[test]
    fn names_and_specs_from_records_are_shown_with_control_characters_escaped() {
        let mut r = rt(1, "evil\x1b[2J\nname", false, 0, 0);
        r.env_spec = "org/\x07tag".into();
        let Item::Submenu { text: title, items } = runtime_menu(&r, UNIX_EPOCH) else {
            panic!("a runtime is a submenu");
        };
        assert!(
            title.starts_with("evil\\x1b[2J\\nname — org/\\x07tag"),
            "{title}"
        );
        assert!(!format!("{items:?}").contains('\x07'));
    }

    #[test]
    fn a_runtime_still_pulling_shows_its_progress() {
        let mut pulling = rt(1, "studio", false, 0, 0);
        pulling.fetching = Some(spfs_shared::protocol::FetchInfo {
            in_flight: 3,
            fetched: 12,
            failed: 1,
            bytes: 4_200_000,
        });
        let mut done = rt(2, "done", false, 0, 0);
        done.fetching = Some(spfs_shared::protocol::FetchInfo {
            in_flight: 0,
            fetched: 1,
            failed: 0,
            bytes: 1_000,
        });
        let local = rt(3, "local", false, 0, 0);
        let st = state(Service::Running(Box::new(snapshot(
            vec![pulling, done, local],
            None,
        ))));
        let text = render(&menu(&st, UNIX_EPOCH, Instant::now()));
        assert!(
            text.contains("studio — fixture/base+fixture/top · pulling >"),
            "{text}"
        );
        assert!(
            text.contains("Pulling 3 files from the studio · 12 fetched (4.2 MB) · 1 failed"),
            "{text}"
        );
        assert!(text.contains("done — fixture/base+fixture/top >"), "{text}");
        assert!(
            text.contains("Fetched 1 file (1.0 kB) from the studio"),
            "{text}"
        );
        assert_eq!(text.matches("from the studio").count(), 2, "{text}");
    }

    #[test]
    fn each_state_has_its_status_line_and_icon() {
        let now = Instant::now();
        let two = state(Service::Running(Box::new(snapshot(
            vec![rt(1, "a", false, 0, 0), rt(2, "b", true, 5, 0)],
            None,
        ))));
        assert_eq!(status_line(&two, now), "SPFS running · 2 runtimes");
        assert_eq!(icon_state(&two), IconState::Runtimes(2));
        assert_eq!(icon_title(&two).as_deref(), Some("2"));
        let one = state(Service::Running(Box::new(snapshot(
            vec![rt(1, "a", false, 0, 0)],
            None,
        ))));
        assert_eq!(status_line(&one, now), "SPFS running · 1 runtime");
        let idle = state(Service::Running(Box::new(snapshot(
            vec![],
            Some(12 * 60 - 5),
        ))));
        assert_eq!(status_line(&idle, now), "SPFS idle · quits in 12 min");
        assert_eq!(icon_state(&idle), IconState::Idle);
        assert_eq!(icon_title(&idle), None);
        // the countdown follows the clock from the last news
        let later = now + Duration::from_secs(6 * 60);
        assert_eq!(status_line(&idle, later), "SPFS idle · quits in 6 min");
        let not = state(Service::NotRunning);
        assert_eq!(status_line(&not, now), "SPFS not running");
        assert_eq!(icon_state(&not), IconState::NotRunning);
        let err = state(Service::Error("permission denied".into()));
        assert_eq!(status_line(&err, now), "SPFS error: permission denied");
        assert_eq!(icon_state(&err), IconState::Error);
        let mut failed = not.clone();
        failed.notice = Some("launchctl failed".into());
        assert_eq!(icon_state(&failed), IconState::Error);
    }

    #[test]
    fn the_menu_wakes_the_app_when_it_would_read_differently_and_not_otherwise() {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |left: u64| {
            let st = state(Service::Running(Box::new(snapshot(vec![], Some(left)))));
            next_change(&st, wall, now).map(|d| d.as_secs())
        };
        // 12 min shown for 11:01..12:00 left; it turns 11 at 11:00.
        assert_eq!(at(12 * 60), Some(60));
        assert_eq!(at(11 * 60 + 1), Some(1));
        assert_eq!(at(11 * 60 + 30), Some(30));
        assert_eq!(at(61), Some(1));
        assert_eq!(at(60), Some(1));
        assert_eq!(at(59), None);
        // the line after the wake-up differs from the one before it
        let st = state(Service::Running(Box::new(snapshot(
            vec![],
            Some(11 * 60 + 30),
        ))));
        let wake = now + next_change(&st, wall, now).unwrap();
        assert_ne!(status_line(&st, now), status_line(&st, wake));
        // a runtime's age: at its next minute (ages of days: next day)
        let started = 1_000_000 - 130;
        let busy = state(Service::Running(Box::new(snapshot(
            vec![
                rt(1, "a", false, 0, started),
                rt(2, "b", false, 0, 1_000_000 - 86_400 - 5),
            ],
            Some(600),
        ))));
        assert_eq!(next_change(&busy, wall, now).map(|d| d.as_secs()), Some(50));
        let menu_at = |w: SystemTime| render(&menu(&busy, w, now));
        let later = wall + next_change(&busy, wall, now).unwrap();
        assert_ne!(menu_at(wall), menu_at(later));
        let old = state(Service::Running(Box::new(snapshot(
            vec![rt(2, "b", false, 0, 1_000_000 - 86_400 - 5)],
            None,
        ))));
        assert_eq!(
            next_change(&old, wall, now).map(|d| d.as_secs()),
            Some(86_400 - 5)
        );
        // nothing to update: no wake-ups
        assert_eq!(next_change(&state(Service::NotRunning), wall, now), None);
        let never = state(Service::Running(Box::new(snapshot(vec![], None))));
        assert_eq!(next_change(&never, wall, now), None);
    }

    #[test]
    fn runtimes_are_sorted_and_events_keep_them_current() {
        let now = Instant::now();
        let mut s = snapshot(vec![rt(2, "b", false, 0, 0)], None);
        s.apply(
            Event::Started {
                runtime: rt(1, "a", true, 0, 0),
            },
            now,
        );
        let names: Vec<&str> = s.runtimes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        s.apply(
            Event::Updated {
                runtime: rt(1, "a", true, 12_400_000, 0),
            },
            now,
        );
        assert_eq!(s.runtimes[0].scratch_bytes, 12_400_000);
        s.apply(
            Event::Ended {
                name: "b".into(),
                id: 2,
            },
            now,
        );
        assert_eq!(s.runtimes.len(), 1);
        assert_eq!(s.status.runtimes, 1);
        assert!(!s.apply(
            Event::Lifecycle {
                lifecycle: Lifecycle {
                    exits_in_secs: Some(60),
                    ..Lifecycle::default()
                }
            },
            now
        ));
        assert_eq!(s.quits_in(now), Some(60));
        assert!(s.apply(
            Event::Settings {
                settings: s.settings.clone()
            },
            now
        ));
    }

    #[test]
    fn the_menu_shows_runtimes_with_sizes_and_the_idle_check_mark() {
        let created = 1_000_000;
        let now = UNIX_EPOCH + Duration::from_secs(created + 180);
        let mut snap = snapshot(
            vec![
                rt(1, "ed", true, 12_400_000, created),
                rt(2, "ro", false, 0, created),
            ],
            None,
        );
        snap.settings.settings.idle_timeout_minutes = 15;
        let st = state(Service::Running(Box::new(snap)));
        let text = render(&menu(&st, now, Instant::now()));
        assert!(
            text.contains(
            "SPFS running · 2 runtimes\n/spfs · macFUSE (kernel extension) 5.1.2, one runtime per process tree\n"
        ),
            "{text}"
        );
        assert!(text.contains("ed — fixture/base+fixture/top · 12.4 MB >\n  Environment: fixture/base+fixture/top\n  editable · scratch 12.4 MB (3 files)\n  Started 3 min ago\n  ---\n  Open shell here\n  Stop\n  Reveal scratch\n  Copy name\n"), "{text}");
        let mut durable = rt(3, "kept", true, 2048, created);
        durable.durable = true;
        let st = state(Service::Running(Box::new(snapshot(vec![durable], None))));
        let dtext = render(&menu(&st, now, Instant::now()));
        assert!(
            dtext.contains("durable · edits 2.0 kB (3 files), kept when it stops"),
            "{dtext}"
        );
        assert!(text.contains("ro — fixture/base+fixture/top >\n  Environment: fixture/base+fixture/top\n  read-only\n  Started 3 min ago\n  ---\n  Open shell here\n  Stop\n  Copy name\n"), "{text}");
        assert!(text.contains("Quit when idle after >\n  [ ] Never\n  [ ] 5 minutes\n  [x] 15 minutes\n  [ ] 30 minutes\n"), "{text}");
        assert!(text.contains("[ ] Start at login (always on)\n"));
        assert!(text.contains("Stop service\nClean up repository…\nOpen log\nSPFS 0.1.0\nQuit\n"));
        // a custom timeout is shown, checked
        let mut custom = st.clone();
        if let Service::Running(s) = &mut custom.service {
            s.settings.settings.idle_timeout_minutes = 45;
        }
        assert!(render(&menu(&custom, now, Instant::now())).contains("  [x] 45 minutes\n"));
    }

    #[test]
    fn reporting_is_greyed_out_without_an_address_and_not_running_offers_start() {
        let mut st = state(Service::NotRunning);
        st.reporting_address = false;
        let text = render(&menu(&st, SystemTime::now(), Instant::now()));
        assert!(
            text.contains("[ ] Send error reports (disabled)\n  (no reporting address"),
            "{text}"
        );
        assert!(text.contains("Start service\n"));
        assert!(!text.contains("No runtimes"));
        assert_eq!(action_for("reporting", &st), None);
    }

    #[test]
    fn each_click_asks_for_its_request() {
        let snap = snapshot(vec![rt(1, "ed", true, 5, 0)], None);
        let st = state(Service::Running(Box::new(snap)));
        let stop = action_for("stop/ed", &st).unwrap();
        assert_eq!(
            request_for(&stop),
            Some(Request::StopRuntime {
                name: "ed".into(),
                force: false
            })
        );
        assert_eq!(
            action_for("reveal/ed", &st),
            Some(Action::Reveal("/scratch/ed".into()))
        );
        assert_eq!(
            action_for("copy/ed", &st),
            Some(Action::CopyName("ed".into()))
        );
        assert_eq!(
            action_for("shell/ed", &st),
            Some(Action::OpenShell("ed".into()))
        );
        assert_eq!(request_for(&Action::OpenShell("ed".into())), None);
        assert_eq!(action_for("shell/ghost", &st), None);
        assert_eq!(action_for("stop/ghost", &st), None);
        assert_eq!(action_for("always-on", &st), Some(Action::AlwaysOn(true)));
        let idle = action_for("idle/60", &st).unwrap();
        assert_eq!(
            request_for(&idle),
            Some(Request::SetSetting {
                key: "idle_timeout_minutes".into(),
                value: "60".into()
            })
        );
        let rep = action_for("reporting", &st).unwrap();
        assert_eq!(rep, Action::Reporting(true));
        assert_eq!(
            request_for(&rep),
            Some(Request::SetSetting {
                key: "error_reporting".into(),
                value: "true".into()
            })
        );
        assert_eq!(
            request_for(&action_for("stop-service", &st).unwrap()),
            Some(Request::Shutdown)
        );
        assert_eq!(action_for("start", &st), Some(Action::StartService));
        assert_eq!(action_for("log", &st), Some(Action::OpenLog));
        assert_eq!(action_for("quit", &st), Some(Action::Quit));
        assert_eq!(request_for(&Action::Quit), None);
        assert_eq!(action_for("nonsense", &st), None);
    }

    #[test]
    fn cleanup_shows_what_it_would_remove_then_offers_to() {
        let mut st = state(Service::NotRunning);
        let text = |st: &State| render(&menu(st, SystemTime::now(), Instant::now()));
        assert!(
            text(&st).contains("Clean up repository…\nOpen log\n"),
            "{}",
            text(&st)
        );
        assert_eq!(action_for("cleanup", &st), Some(Action::LookForCleanup));
        assert_eq!(
            action_for("cleanup-now", &st),
            None,
            "nothing looked at yet"
        );
        st.cleanup = Some(Cleanup {
            summary: "3 objects and 1 payload (12.4 kB)".into(),
            young: 0,
            removable: true,
            done: false,
        });
        assert!(text(&st).contains(
            "Clean up repository…\nWould remove 3 objects and 1 payload (12.4 kB)\nRemove them\n"
        ));
        assert_eq!(action_for("cleanup-now", &st), Some(Action::Cleanup));
        st.cleanup = Some(Cleanup {
            summary: "3 objects and 1 payload (12.4 kB)".into(),
            young: 0,
            removable: false,
            done: true,
        });
        assert!(text(&st).contains("\nRemoved 3 objects and 1 payload (12.4 kB)\n"));
        assert_eq!(action_for("cleanup-now", &st), None);
        st.cleanup = Some(Cleanup {
            summary: String::new(),
            young: 2,
            removable: false,
            done: false,
        });
        assert!(text(&st).contains("\nNothing to remove; 2 files newer than 15 minutes kept\n"));
    }

    #[test]
    fn the_command_line_item_shows_only_what_can_be_done() {
        let mut st = state(Service::NotRunning);
        let text = |st: &State| render(&menu(st, SystemTime::now(), Instant::now()));
        // An app that carries no tools (run from elsewhere): no item.
        assert!(!text(&st).contains("ommand line tools"), "{}", text(&st));
        assert_eq!(action_for("install-cli", &st), None);
        st.command_line = Some(false);
        assert!(text(&st).contains("Install command line tools (spfs)…\n"));
        assert_eq!(
            action_for("install-cli", &st),
            Some(Action::InstallCommandLine)
        );
        st.command_line = Some(true);
        assert!(text(&st).contains("Command line tools installed (spfs)\n"));
        assert_eq!(action_for("install-cli", &st), None);
    }
}
