//! Types and paths shared by the SPFS for macOS service and menu-bar app.
//!
//! - [`bounded`]: size-bounded reads of files a user can point anywhere
//! - [`client`]: the control socket's client side (CLI and menu bar)
//! - [`display`]: text from elsewhere made safe to show in a terminal
//! - [`paths`]: where the control socket, settings, logs and scratch live
//! - [`protocol`]: the control protocol between the service and its clients
//! - [`settings`]: the user settings the menu bar edits and the service reads
//! - `reporting` (feature `sentry`): opt-in, scrubbed error reports

#![warn(unreachable_pub)]
pub mod bounded;
pub mod client;
pub mod display;
pub mod paths;
pub mod protocol;
pub mod settings;

#[cfg(feature = "sentry")]
pub mod reporting;
