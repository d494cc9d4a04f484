//! The service's error reporting (design note 4.8; see
//! `spfs_shared::reporting`): panics and `tracing` error events (mount,
//! copy-up, commit, recovery, the control socket) go to Sentry when a
//! reporting address is configured and the user's `error_reporting`
//! setting is on, scrubbed of personal paths and names. Built without the
//! `sentry` feature it reports nothing and says so.

use spfs_shared::protocol::ReportingStatus;
use spfs_shared::settings::Settings;

/// This process's error reporting.
pub(crate) struct Reporting {
    #[cfg(feature = "sentry")]
    reporter: spfs_shared::reporting::Reporter,
    status: parking_lot::Mutex<ReportingStatus>,
}

impl Reporting {
    /// Sets reporting up for the service, off until [`Reporting::configure`].
    pub(crate) fn init() -> Reporting {
        #[cfg(feature = "sentry")]
        {
            let (home, user) = crate::sys::user::account();
            let scrubber =
                spfs_shared::reporting::Scrubber::for_this_user().with_account(home, user);
            let reporter = spfs_shared::reporting::Reporter::init(
                "service",
                env!("CARGO_PKG_VERSION"),
                vec![("os", std::env::consts::OS.to_owned())],
                scrubber,
            );
            Reporting {
                reporter,
                status: parking_lot::Mutex::new(ReportingStatus::default()),
            }
        }
        #[cfg(not(feature = "sentry"))]
        {
            Reporting {
                status: parking_lot::Mutex::new(ReportingStatus {
                    enabled: false,
                    host: None,
                    available: false,
                    summary: "off: built without error reporting (the sentry feature)".into(),
                }),
            }
        }
    }

    /// Tags every later report with the filesystem backend (`macfuse`…).
    pub(crate) fn set_backend(&self, name: &str) {
        #[cfg(feature = "sentry")]
        sentry::configure_scope(|scope| scope.set_tag("backend", name));
        #[cfg(not(feature = "sentry"))]
        let _ = name;
    }

    /// Applies `settings` (and `SPFS_SENTRY_DSN`): on only with an address
    /// and `error_reporting` on; off at once otherwise.
    pub(crate) fn configure(&self, settings: &Settings) -> ReportingStatus {
        #[cfg(feature = "sentry")]
        {
            let dsn = spfs_shared::reporting::effective_dsn(settings.sentry_dsn.as_deref());
            let status = self
                .reporter
                .configure(dsn.as_deref(), settings.error_reporting);
            let mut current = self.status.lock();
            if *current != status {
                tracing::info!(reporting = %status.summary, "error reporting");
            }
            *current = status.clone();
            status
        }
        #[cfg(not(feature = "sentry"))]
        {
            let _ = settings;
            self.status()
        }
    }

    /// Whether reports are sent, and where.
    pub(crate) fn status(&self) -> ReportingStatus {
        self.status.lock().clone()
    }

    /// Sends what is queued (at exit), waiting two seconds at most.
    pub(crate) fn flush(&self) {
        #[cfg(feature = "sentry")]
        self.reporter.flush();
    }
}

/// The `tracing` layers that turn error events into reports, and notes
/// and warnings into the breadcrumbs reports carry.
#[cfg(feature = "sentry")]
pub(crate) fn tracing_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer};
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::Layer;
    ErrorLayer::new()
        .with_filter(LevelFilter::ERROR)
        .and_then(BreadcrumbLayer::new().with_filter(LevelFilter::INFO))
}
