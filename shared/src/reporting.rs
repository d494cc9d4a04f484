//! Error reporting with Sentry (design note 4.8): off unless a reporting
//! address (a DSN) is configured *and* the user turned `error_reporting`
//! on; switchable at any moment without a restart; and scrubbed, so that
//! nothing personal leaves the machine.
//!
//! - One client is bound at start, with a [`Switch`] as its transport: the
//!   switch forwards envelopes to the HTTP transport of the current DSN
//!   only while reporting is on, and drops them otherwise. (A new client
//!   would not reach threads that already took a copy of the old one.)
//! - Every event passes [`Scrubber`] before it is queued: the home
//!   directory becomes `~`, other users' names in `/Users/NAME` and
//!   `/home/NAME` are hashed, the user's own name is replaced, and the
//!   host name and user fields are dropped. Environment variables and file
//!   contents are never attached.
//! - Sending happens on the transport's own thread: a reporting address
//!   that does not answer never slows the caller.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sentry::protocol::Event;
use sentry::{ClientOptions, Envelope, Transport, TransportFactory};

use crate::protocol::ReportingStatus;

/// A DSN the client is created with before (or without) a real one: it is
/// never sent to, the [`Switch`] decides where envelopes go.
const PLACEHOLDER_DSN: &str = "http://disabled@127.0.0.1:9/0";

/// How long a report in flight may hold up an exit.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// The transport the client is bound with: forwards to the current DSN's
/// HTTP transport while reporting is on.
#[derive(Default)]
pub struct Switch {
    on: AtomicBool,
    inner: RwLock<Option<(String, Arc<dyn Transport>)>>,
}

impl Switch {
    fn current(&self) -> Option<Arc<dyn Transport>> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.as_ref().map(|(_, t)| t.clone())
    }
}

impl Transport for Switch {
    fn send_envelope(&self, envelope: Envelope) {
        if self.on.load(Ordering::Acquire) {
            if let Some(t) = self.current() {
                t.send_envelope(envelope);
            }
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        // Off: nothing was queued.
        if !self.on.load(Ordering::Acquire) {
            return true;
        }
        self.current().is_none_or(|t| t.flush(timeout))
    }

    fn shutdown(&self, timeout: Duration) -> bool {
        self.current().is_none_or(|t| t.shutdown(timeout))
    }
}

/// Removes what is personal from event text.
#[derive(Clone, Debug, Default)]
pub struct Scrubber {
    /// Home directories, replaced by `~` (longest first).
    homes: Vec<String>,
    /// The user's own name.
    user: Option<String>,
}

/// A short stable stand-in for a name (FNV-1a).
fn hash(name: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("user-{h:08x}")
}

fn name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

impl Scrubber {
    /// A scrubber for these home directories and user name.
    pub fn new(homes: Vec<String>, user: Option<String>) -> Scrubber {
        let mut homes: Vec<String> = homes
            .into_iter()
            .map(|h| h.trim_end_matches('/').to_owned())
            .filter(|h| h.len() > 1)
            .collect();
        homes.sort_by_key(|h| std::cmp::Reverse(h.len()));
        homes.dedup();
        Scrubber {
            homes,
            // root is nobody's name, and "root" is a common word.
            user: user.filter(|u| u.len() >= 2 && u != "root"),
        }
    }

    /// The scrubber for the user running this process.
    pub fn for_this_user() -> Scrubber {
        let mut homes = Vec::new();
        if let Some(h) = dirs::home_dir() {
            homes.push(h.display().to_string());
        }
        if let Ok(h) = std::env::var("HOME") {
            homes.push(h);
        }
        let user = std::env::var("USER")
            .ok()
            .or_else(|| std::env::var("LOGNAME").ok());
        Scrubber::new(homes, user)
    }

    /// Adds the home directory and name the system has for this user
    /// (which `HOME` may not be).
    pub fn with_account(mut self, home: Option<String>, user: Option<String>) -> Scrubber {
        let mut homes = std::mem::take(&mut self.homes);
        homes.extend(home);
        Scrubber::new(homes, user.or(self.user))
    }

    /// `text` with home directories, user names in paths and the user's
    /// own name replaced.
    pub fn scrub(&self, text: &str) -> String {
        let mut s = text.to_owned();
        for home in &self.homes {
            s = replace_path_prefix(&s, home, "~");
        }
        for root in ["/Users/", "/home/"] {
            s = hash_component_after(&s, root);
        }
        if let Some(user) = &self.user {
            s = replace_word(&s, user, "<user>");
        }
        s
    }

    /// An event with every string scrubbed and the host and user dropped.
    pub fn scrub_event(&self, mut event: Event<'static>) -> Event<'static> {
        event.server_name = None;
        event.user = None;
        let Ok(mut value) = serde_json::to_value(&event) else {
            return event;
        };
        self.scrub_value(&mut value);
        serde_json::from_value(value).unwrap_or(event)
    }

    fn scrub_value(&self, v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => *s = self.scrub(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| self.scrub_value(x)),
            serde_json::Value::Object(o) => {
                for (_, x) in o.iter_mut() {
                    self.scrub_value(x);
                }
            }
            _ => {}
        }
    }
}

/// Replaces `prefix` where it starts a path (followed by `/`, the end, or
/// a character that cannot continue a name).
fn replace_path_prefix(s: &str, prefix: &str, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(prefix) {
        let after = &rest[i + prefix.len()..];
        let ends = after.chars().next().is_none_or(|c| !name_char(c));
        out.push_str(&rest[..i]);
        if ends {
            out.push_str(with);
        } else {
            out.push_str(prefix);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Hashes the path component after each `root` (`/Users/NAME/…`).
fn hash_component_after(s: &str, root: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(root) {
        out.push_str(&rest[..i + root.len()]);
        let after = &rest[i + root.len()..];
        let end = after.find(|c: char| !name_char(c)).unwrap_or(after.len());
        let name = &after[..end];
        if name.is_empty() || name == "Shared" || name.starts_with("user-") {
            out.push_str(name);
        } else {
            out.push_str(&hash(name));
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Replaces `word` where it stands alone (not inside a longer name).
fn replace_word(s: &str, word: &str, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut prev: Option<char> = None;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().last().or(prev);
        let after = rest[i + word.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_none_or(|c| !name_char(c)) && after.is_none_or(|c| !name_char(c)) {
            out.push_str(with);
        } else {
            out.push_str(word);
        }
        prev = word.chars().last();
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

/// Whether the panic hook waits for the report to be sent.
static FLUSH_ON_PANIC: AtomicBool = AtomicBool::new(false);

/// Makes the panic hook wait (at most two seconds) until a panic's report
/// is sent: for a process that a panic ends, such as the menu bar, whose
/// panics in GUI callbacks abort rather than unwind. The service does not:
/// it answers the request that panicked and serves on, and its exit
/// flushes.
pub fn flush_on_panic(on: bool) {
    FLUSH_ON_PANIC.store(on, Ordering::Release);
}

/// Reports every panic (without waiting for it to be sent, unless
/// [`flush_on_panic`]), then runs the hook that was there before.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let next = std::panic::take_hook();
        let integration = sentry::integrations::panic::PanicIntegration::new();
        std::panic::set_hook(Box::new(move |info| {
            sentry::capture_event(integration.event_from_panic_info(info));
            if FLUSH_ON_PANIC.load(Ordering::Acquire) {
                if let Some(client) = sentry::Hub::current().client() {
                    client.flush(Some(FLUSH_TIMEOUT));
                }
            }
            next(info);
        }));
    });
}

/// The reporting address in effect: `SPFS_SENTRY_DSN`, else the setting.
pub fn effective_dsn(setting: Option<&str>) -> Option<String> {
    std::env::var(crate::settings::SENTRY_DSN_ENV)
        .ok()
        .filter(|d| !d.trim().is_empty())
        .or_else(|| setting.map(str::to_owned))
        .filter(|d| crate::settings::check_dsn(d))
}

/// One process's error reporting.
pub struct Reporter {
    switch: Arc<Switch>,
    _guard: sentry::ClientInitGuard,
}

impl Reporter {
    /// Binds the client for this process (`component`: "service",
    /// "menubar"), off until [`Reporter::configure`] turns it on.
    pub fn init(
        component: &'static str,
        release: &'static str,
        tags: Vec<(&'static str, String)>,
        scrubber: Scrubber,
    ) -> Reporter {
        let switch = Arc::new(Switch::default());
        let factory: Arc<dyn TransportFactory> = Arc::new(switch.clone());
        let mut options = ClientOptions::new();
        options.dsn = PLACEHOLDER_DSN.parse().ok();
        options.release = Some(release.into());
        options.send_default_pii = false;
        options.server_name = None;
        options.attach_stacktrace = false;
        options.shutdown_timeout = FLUSH_TIMEOUT;
        options.transport = Some(factory);
        options.before_send = Some(Arc::new(move |e| Some(scrubber.scrub_event(e))));
        // sentry's own panic hook flushes after each panic, which would
        // hold a request thread for seconds when the address does not
        // answer: ours queues the report and returns (the exit flushes).
        options.default_integrations = false;
        options.integrations = vec![
            Arc::new(sentry::integrations::backtrace::AttachStacktraceIntegration),
            Arc::new(sentry::integrations::contexts::ContextIntegration::default()),
            Arc::new(sentry::integrations::backtrace::ProcessStacktraceIntegration),
        ];
        let guard = sentry::init(options);
        install_panic_hook();
        sentry::configure_scope(|scope| {
            scope.set_tag("component", component);
            for (k, v) in tags {
                scope.set_tag(k, v);
            }
        });
        Reporter {
            switch,
            _guard: guard,
        }
    }

    /// Reports to `dsn` if it is given and `enabled`; stops at once
    /// otherwise.
    pub fn configure(&self, dsn: Option<&str>, enabled: bool) -> ReportingStatus {
        let mut inner = self.switch.inner.write().unwrap_or_else(|p| p.into_inner());
        let same = inner.as_ref().map(|(d, _)| d.as_str()) == dsn;
        if !same {
            *inner = dsn.and_then(|d| {
                let mut o = ClientOptions::new();
                o.dsn = d.parse().ok();
                let t = sentry::TransportOptions::try_from_client_options(&o)?;
                Some((
                    d.to_owned(),
                    sentry::transports::DefaultTransportFactory.create_transport_with_options(t),
                ))
            });
        }
        let on = enabled && inner.is_some();
        self.switch.on.store(on, Ordering::Release);
        drop(inner);
        self.status_for(dsn, enabled)
    }

    fn status_for(&self, dsn: Option<&str>, enabled: bool) -> ReportingStatus {
        let host = dsn.and_then(crate::settings::dsn_host).map(str::to_owned);
        let reason = match (host.is_some(), enabled) {
            (true, true) => format!("on, to {}", host.as_deref().unwrap_or_default()),
            (true, false) => "off: error_reporting is off".to_owned(),
            (false, _) => format!(
                "off: no reporting address (set {} or the sentry_dsn setting)",
                crate::settings::SENTRY_DSN_ENV
            ),
        };
        ReportingStatus {
            enabled: self.switch.on.load(Ordering::Acquire),
            host,
            available: true,
            summary: reason,
        }
    }

    /// Sends what is queued (at exit), waiting at most two seconds.
    pub fn flush(&self) {
        let _ = self.switch.flush(FLUSH_TIMEOUT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homes_users_and_names_are_scrubbed() {
        let s = Scrubber::new(
            vec!["/Users/jdoe".into(), "/tmp/x/home/jdoe/".into()],
            Some("jdoe".into()),
        );
        assert_eq!(
            s.scrub("cannot commit /Users/jdoe/Library/Caches/SPFS/scratch/a"),
            "cannot commit ~/Library/Caches/SPFS/scratch/a"
        );
        assert_eq!(s.scrub("/Users/jdoe"), "~");
        assert_eq!(
            s.scrub("/Users/jdoennis/x"),
            format!("/Users/{}/x", hash("jdoennis"))
        );
        assert_eq!(
            s.scrub("/home/alice/.cache and /Users/Shared/x"),
            format!("/home/{}/.cache and /Users/Shared/x", hash("alice"))
        );
        assert_eq!(s.scrub("hello jdoe, jdoe_x"), "hello <user>, jdoe_x");
        assert_eq!(s.scrub("/tmp/x/home/jdoe/repo"), "~/repo");
        // idempotent
        let once = s.scrub("/home/alice/x");
        assert_eq!(s.scrub(&once), once);
    }

    #[test]
    fn events_lose_host_and_user_and_every_string_is_scrubbed() {
        let s = Scrubber::new(vec!["/home/jdoe".into()], Some("jdoe".into()));
        let mut e = Event {
            message: Some("open /home/jdoe/.cache/x failed for jdoe".into()),
            server_name: Some("jdoes-macbook".into()),
            ..Default::default()
        };
        e.extra.insert("path".into(), "/home/jdoe/repo".into());
        let e = s.scrub_event(e);
        assert_eq!(
            e.message.as_deref(),
            Some("open ~/.cache/x failed for <user>")
        );
        assert_eq!(e.server_name, None);
        assert_eq!(e.extra["path"], "~/repo");
    }

    #[test]
    fn the_effective_dsn_must_be_valid() {
        assert_eq!(effective_dsn(Some("nope")), None);
        assert_eq!(
            effective_dsn(Some("https://k@h.example/1")).as_deref(),
            Some("https://k@h.example/1")
        );
    }
}
