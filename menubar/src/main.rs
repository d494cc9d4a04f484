//! `spfs-menubar`: the menu-bar app of SPFS for macOS — see and stop
//! runtimes, toggle always-on, the idle timeout and error reports. The
//! decisions are in [`model`]; [`gui`] only shows them.
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod actions;
mod client;
mod gui;
mod icon;
mod model;
mod sys;

use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use spfs_shared::settings::Settings;

use actions::Env;
use model::{Service, State};

const USAGE: &str =
    "Usage: spfs-menubar [--print-menu | --click ITEM | --write-icns PATH | --version]

The SPFS menu-bar app. With --print-menu it prints the menu it would show
for the running service, as indented text, and exits. With --click it does
what clicking menu item ITEM does (`shell/NAME`, `stop/NAME`,
`install-cli`, `start`, ...) and exits: for scripts and tests.";

/// The app's own error reports (its panics), as the service's: off unless
/// a reporting address is configured and `error_reporting` is on.
pub struct Reporting {
    #[cfg(feature = "sentry")]
    reporter: spfs_shared::reporting::Reporter,
}

impl Reporting {
    fn init(settings: &Settings) -> Reporting {
        #[cfg(feature = "sentry")]
        let reporting = {
            let reporter = spfs_shared::reporting::Reporter::init(
                "menubar",
                env!("CARGO_PKG_VERSION"),
                vec![("os", std::env::consts::OS.to_owned())],
                spfs_shared::reporting::Scrubber::for_this_user(),
            );
            // A panic ends the app (a GTK or AppKit callback cannot unwind):
            // the report must be sent before it goes.
            spfs_shared::reporting::flush_on_panic(true);
            Reporting { reporter }
        };
        #[cfg(not(feature = "sentry"))]
        let reporting = Reporting {};
        reporting.configure(settings);
        reporting
    }

    /// On only with an address and `error_reporting` on.
    pub fn configure(&self, settings: &Settings) {
        #[cfg(feature = "sentry")]
        {
            let dsn = spfs_shared::reporting::effective_dsn(settings.sentry_dsn.as_deref());
            self.reporter
                .configure(dsn.as_deref(), settings.error_reporting);
        }
        #[cfg(not(feature = "sentry"))]
        let _ = settings;
    }
}

/// A test hook (builds with the `fault-injection` feature only):
/// `SPFS_MENUBAR_FAULT_PANIC=MESSAGE` makes the app panic with MESSAGE
/// once its reporting is set up, to show the panic is reported.
fn fault_injection() {
    #[cfg(feature = "fault-injection")]
    if let Ok(message) = std::env::var("SPFS_MENUBAR_FAULT_PANIC") {
        panic!("fault injection: {message}");
    }
}

fn initial_state(env: &Env, service: Service, settings: Settings) -> State {
    let reporting_address = match &service {
        Service::Running(s) => s.status.reporting.host.is_some(),
        _ => settings.reporting_address(),
    };
    State {
        service,
        always_on: actions::always_on(env),
        settings,
        reporting_address,
        notice: None,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        log: env.log.clone(),
        command_line: actions::command_line_installed(env),
        cleanup: None,
    }
}

/// The settings file; a broken one gives the defaults and a notice for the
/// menu (the service refuses it too, with the same message).
fn load_settings(env: &Env) -> (Settings, Option<String>) {
    match Settings::load(&env.settings) {
        Ok(s) => (s, None),
        Err(e) => (Settings::default(), Some(e.to_string())),
    }
}

/// The service as the menu shows it now.
fn current_service(env: &Env) -> Service {
    match client::snapshot(&env.socket) {
        Ok(s) => Service::Running(Box::new(s)),
        Err(client::ClientError::NotRunning { .. }) => Service::NotRunning,
        Err(e) => Service::Error(e.to_string()),
    }
}

/// `--click ITEM`: what a click on ITEM does, now; its error on stderr.
/// `cleanup-now` looks first, as the menu did before offering it; what
/// "Clean up repository…" shows is printed.
fn click(env: &Env, settings: Settings, id: &str) -> ExitCode {
    let mut state = initial_state(env, current_service(env), settings);
    if id == "cleanup-now" {
        match actions::perform(&model::Action::LookForCleanup, env, &state) {
            Ok(actions::Performed::Cleanup(c)) => state.cleanup = Some(c),
            Ok(actions::Performed::Done) => {}
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let result = match model::action_for(id, &state) {
        None => Err(format!("no menu item '{id}' is clickable now")),
        Some(model::Action::CopyName(_) | model::Action::Quit) => Err(format!(
            "'{id}' is done by the app itself, not from the command line"
        )),
        Some(action) => actions::perform(&action, env, &state),
    };
    if let Ok(actions::Performed::Cleanup(c)) = &result {
        state.cleanup = Some(c.clone());
        for item in model::cleanup_items(&state) {
            if let model::Item::Label(text) = item {
                println!("{text}");
            }
        }
    }
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_menu(env: &Env, settings: Settings, notice: Option<String>) -> ExitCode {
    let service = current_service(env);
    let mut state = initial_state(env, service, settings);
    state.notice = notice;
    print!(
        "{}",
        model::render(&model::menu(&state, SystemTime::now(), Instant::now()))
    );
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    sys::prepare_toolkit();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env = Env::for_this_user();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["-V" | "--version"] => {
            println!("spfs-menubar {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        ["-h" | "--help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        ["--print-menu"] => {
            let (settings, notice) = load_settings(&env);
            let _reporting = Reporting::init(&settings);
            fault_injection();
            print_menu(&env, settings, notice)
        }
        ["--click", id] => {
            let (settings, _notice) = load_settings(&env);
            click(&env, settings, id)
        }
        ["--write-icns", path] => match icon::icns()
            .map_err(|e| e.to_string())
            .and_then(|d| std::fs::write(path, d).map_err(|e| format!("cannot write {path}: {e}")))
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        [] => {
            let (settings, notice) = load_settings(&env);
            let reporting = Reporting::init(&settings);
            fault_injection();
            let mut state = initial_state(&env, Service::NotRunning, settings);
            state.notice = notice;
            gui::run(env, state, reporting)
        }
        [other, ..] => {
            eprintln!("error: unknown argument '{other}' (try --help)");
            ExitCode::from(2)
        }
    }
}
