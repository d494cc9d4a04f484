//! When the service stops by itself (design note 4.2).
//!
//! The service is *idle* when it has no runtime and no request is being
//! served. It stops after the idle timeout; a runtime starting or ending,
//! a request, or a subscriber connecting restarts the count (the
//! subscription itself does not keep it alive). Always-on services
//! (started by launchd or systemd at login) never stop by themselves.
//!
//! Stopping is decided under one lock with the request count: once
//! decided, every new request is refused with `shutting_down` (clients
//! then start a new service), so no runtime can start in a service that is
//! on its way out.

use std::time::Instant;

use parking_lot::Mutex;
use spfs_shared::protocol;
use spfs_shared::settings::IdleTimeout;

#[derive(Debug)]
struct State {
    timeout: IdleTimeout,
    /// Start of the current idle count.
    since: Instant,
    in_flight: usize,
    shutting_down: bool,
}

/// The idle clock of one service.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    state: Mutex<State>,
    always_on: bool,
    socket_activated: bool,
    /// Woken whenever the deadline may have moved.
    changed: tokio::sync::Notify,
}

/// Refused: the service is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the service is shutting down; a new one starts on the next request")]
pub(crate) struct ShuttingDown;

/// A request being served (the service is not idle while it lives).
#[derive(Debug)]
pub(crate) struct InFlight<'a> {
    lifecycle: &'a Lifecycle,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut s = self.lifecycle.state.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        s.since = Instant::now();
        drop(s);
        self.lifecycle.changed.notify_one();
    }
}

impl Lifecycle {
    /// A clock with `timeout`; `always_on` services never stop by themselves.
    pub(crate) fn new(timeout: IdleTimeout, always_on: bool, socket_activated: bool) -> Self {
        Lifecycle {
            state: Mutex::new(State {
                timeout,
                since: Instant::now(),
                in_flight: 0,
                shutting_down: false,
            }),
            always_on,
            socket_activated,
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Waits until the deadline may have moved (a request ended, a
    /// runtime started or ended, the timeout changed).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await
    }

    /// The timeout in effect (never, for an always-on service).
    pub(crate) fn timeout(&self) -> IdleTimeout {
        if self.always_on {
            IdleTimeout::Never
        } else {
            self.state.lock().timeout
        }
    }

    /// Applies a new timeout (a settings change); the count goes on.
    pub(crate) fn set_timeout(&self, timeout: IdleTimeout) {
        self.state.lock().timeout = timeout;
        self.changed.notify_one();
    }

    /// Starts serving a request; refused once stopping was decided.
    pub(crate) fn begin(&self) -> Result<InFlight<'_>, ShuttingDown> {
        let mut s = self.state.lock();
        if s.shutting_down {
            return Err(ShuttingDown);
        }
        s.in_flight += 1;
        s.since = Instant::now();
        Ok(InFlight { lifecycle: self })
    }

    /// Something happened (a runtime started or ended): count again.
    pub(crate) fn touch(&self) {
        self.state.lock().since = Instant::now();
        self.changed.notify_one();
    }

    /// Whether stopping was decided.
    #[cfg(test)]
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.state.lock().shutting_down
    }

    /// When the service stops if nothing happens (with `runtimes` live);
    /// `None` while busy or if it never stops.
    pub(crate) fn deadline(&self, runtimes: usize) -> Option<Instant> {
        let s = self.state.lock();
        self.deadline_of(&s, runtimes)
    }

    fn deadline_of(&self, s: &State, runtimes: usize) -> Option<Instant> {
        match (self.always_on, s.timeout) {
            (false, IdleTimeout::After(d)) if runtimes == 0 && s.in_flight == 0 => {
                Some(s.since + d)
            }
            _ => None,
        }
    }

    /// Decides to stop if the deadline has passed at `now` with `runtimes`
    /// live; true if decided (from then on requests are refused).
    pub(crate) fn try_stop(&self, runtimes: usize, now: Instant) -> bool {
        let mut s = self.state.lock();
        if s.shutting_down {
            return true;
        }
        match self.deadline_of(&s, runtimes) {
            Some(deadline) if deadline <= now => {
                s.shutting_down = true;
                true
            }
            _ => false,
        }
    }

    /// Decides to stop now (a shutdown request or a signal).
    pub(crate) fn stop(&self) {
        self.state.lock().shutting_down = true;
    }

    /// The state for `status` and subscribers. `in_request` is true when
    /// asked from inside a request (which does not count as busy here).
    pub(crate) fn report(&self, runtimes: usize, in_request: bool) -> protocol::Lifecycle {
        let s = self.state.lock();
        let others = s.in_flight.saturating_sub(usize::from(in_request));
        let idle = runtimes == 0 && others == 0;
        let timeout = if self.always_on {
            IdleTimeout::Never
        } else {
            s.timeout
        };
        let idle_secs = idle.then(|| s.since.elapsed().as_secs());
        let exits_in_secs = match (idle, timeout) {
            (true, IdleTimeout::After(d)) => Some(d.saturating_sub(s.since.elapsed()).as_secs()),
            _ => None,
        };
        protocol::Lifecycle {
            idle_timeout_secs: timeout.secs(),
            idle_secs,
            exits_in_secs,
            always_on: self.always_on,
            socket_activated: self.socket_activated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn secs(n: u64) -> IdleTimeout {
        IdleTimeout::After(Duration::from_secs(n))
    }

    #[test]
    fn stops_only_when_idle_past_the_timeout() {
        let l = Lifecycle::new(secs(60), false, false);
        let now = Instant::now();
        assert!(!l.try_stop(0, now), "not yet");
        assert!(
            !l.try_stop(1, now + Duration::from_secs(120)),
            "a runtime lives"
        );
        {
            let _req = l.begin().unwrap();
            assert!(
                !l.try_stop(0, now + Duration::from_secs(120)),
                "a request runs"
            );
            assert_eq!(l.deadline(0), None);
        }
        // the request restarted the count
        let deadline = l.deadline(0).unwrap();
        assert!(deadline > now + Duration::from_secs(59));
        assert!(l.try_stop(0, deadline));
        assert_eq!(l.begin().unwrap_err(), ShuttingDown);
        assert!(l.is_shutting_down());
    }

    #[test]
    fn never_and_always_on_do_not_stop() {
        let later = Instant::now() + Duration::from_secs(1_000_000);
        let never = Lifecycle::new(IdleTimeout::Never, false, false);
        assert!(!never.try_stop(0, later));
        let always = Lifecycle::new(secs(1), true, true);
        assert!(!always.try_stop(0, later));
        let r = always.report(0, false);
        assert_eq!((r.idle_timeout_secs, r.exits_in_secs), (None, None));
        assert!(r.always_on && r.socket_activated);
        // a new timeout applies at once
        never.set_timeout(secs(1));
        assert!(never.try_stop(0, later));
    }

    #[test]
    fn reports_the_countdown() {
        let l = Lifecycle::new(secs(1800), false, false);
        let r = l.report(0, false);
        assert_eq!(r.idle_timeout_secs, Some(1800));
        assert!(r.exits_in_secs.unwrap() > 1790);
        assert!(r.idle_secs.unwrap() < 5);
        let busy = l.report(2, false);
        assert_eq!((busy.idle_secs, busy.exits_in_secs), (None, None));
        // asked from inside a request: that request does not count
        let _req = l.begin().unwrap();
        assert!(l.report(0, true).exits_in_secs.is_some());
        assert!(l.report(0, false).exits_in_secs.is_none());
    }
}
