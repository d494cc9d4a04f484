//! `spfs-menubar`: the menu-bar app of SPFS for macOS.
//!
//! The tray interface (active runtimes, stop, always-on, idle timeout,
//! error reporting) comes with the service's control socket. Until then
//! this binary shows the settings the app will edit.

use std::process::ExitCode;

use spfs_shared::{paths, settings::Settings};

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        Some("-V" | "--version") => {
            println!("spfs-menubar {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some("-h" | "--help") | None => {}
        Some(other) => {
            eprintln!("error: unknown argument '{other}' (try --help)");
            return ExitCode::from(2);
        }
    }
    if arg.is_some() {
        println!("Usage: spfs-menubar [--version]\n\nShows the SPFS settings; the menu-bar interface is not built yet.");
        return ExitCode::SUCCESS;
    }
    let path = paths::settings_path();
    match Settings::load(&path) {
        Ok(s) => {
            println!("settings: {}", path.display());
            match s.idle_timeout_minutes {
                0 => println!("  idle timeout: never"),
                m => println!("  idle timeout: {m} minutes"),
            }
            println!(
                "  error reporting: {}",
                if s.error_reporting { "on" } else { "off" }
            );
            println!(
                "The menu-bar interface is not built yet; this binary only shows the settings."
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
