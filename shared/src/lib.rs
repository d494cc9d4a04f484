//! Types and paths shared by the SPFS for macOS service and menu-bar app.
//!
//! - [`paths`]: where the control socket, settings, logs and scratch live
//! - [`protocol`]: the control protocol between the service and its clients
//! - [`settings`]: the user settings the menu bar edits and the service reads
//! - `reporting` (feature `sentry`): opt-in, scrubbed error reports

pub mod paths;
pub mod protocol;
pub mod settings;

#[cfg(feature = "sentry")]
pub mod reporting;
